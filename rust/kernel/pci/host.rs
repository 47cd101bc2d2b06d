// SPDX-License-Identifier: GPL-2.0

//! Software PCI host bridges.
//!
//! A [`HostBridge`] is a PCI host bridge whose configuration space is implemented in Rust by a
//! [`ConfigSpace`]: emulated buses, test fixtures and the like. The PCI core enumerates the root
//! bus through the [`ConfigSpace`] callbacks, assigns BARs from a [`MemWindow`] claimed from
//! `iomem_resource`, and adds the devices it finds, as for any other host bridge.
//!
//! A [`HostBridge`] is registered below a bound parent device and lives in a [`Devres`]: the
//! root bus, with every device on it, is removed when the [`Devres`] is dropped or when the
//! parent is unbound, whichever comes first.
//!
//! x86 only for now: there the bus `sysdata` must be a `struct pci_sysdata` carrying the domain.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)

use crate::{
    bindings,
    device,
    devres::Devres,
    error::to_result,
    ffi::{
        c_int,
        c_uint,
        c_ulong, //
    },
    prelude::*,
    str::CStr,
    types::Opaque, //
};
use core::ptr::NonNull;

/// Size of the extended configuration space of a PCI Express function.
pub const CONFIG_SPACE_SIZE: u16 = 4096;

/// Converts a register offset or capability field from `include/uapi/linux/pci_regs.h`, which
/// `bindings` exposes as `u32`, to a configuration space offset.
///
/// Meant for constant context, where an offset outside the configuration space fails the
/// build:
///
/// ```
/// use kernel::{bindings, pci::host::config_offset};
///
/// const COMMAND: u16 = config_offset(bindings::PCI_COMMAND);
/// assert_eq!(COMMAND, 0x04);
/// ```
pub const fn config_offset(reg: u32) -> u16 {
    assert!(
        reg < CONFIG_SPACE_SIZE as u32,
        "not a configuration space offset"
    );
    // CAST: `reg` is below `CONFIG_SPACE_SIZE`, so it fits in a `u16`.
    reg as u16
}

/// First domain number handed out to emulated host bridges (above any ACPI segment).
pub const FIRST_EMULATED_DOMAIN: u32 = 0x10000;

/// Why a configuration access failed, as reported to the PCI core (`PCIBIOS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No function at this address (`PCIBIOS_DEVICE_NOT_FOUND`); reads return all ones.
    DeviceNotFound,
    /// Invalid register offset or access size (`PCIBIOS_BAD_REGISTER_NUMBER`).
    BadRegisterNumber,
}

impl ConfigError {
    fn to_raw(self) -> c_int {
        let code = match self {
            Self::DeviceNotFound => bindings::PCIBIOS_DEVICE_NOT_FOUND,
            Self::BadRegisterNumber => bindings::PCIBIOS_BAD_REGISTER_NUMBER,
        };
        // The `PCIBIOS_*` codes are small positive constants.
        code as c_int
    }
}

/// Width of a configuration access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessSize {
    /// One byte.
    Byte,
    /// Two bytes, at an even offset.
    Word,
    /// Four bytes, at an offset that is a multiple of four.
    Dword,
}

impl AccessSize {
    /// Returns the width in bytes.
    pub const fn bytes(self) -> u16 {
        match self {
            Self::Byte => 1,
            Self::Word => 2,
            Self::Dword => 4,
        }
    }

    /// Returns the mask of the value bits of an access of this width.
    pub const fn mask(self) -> u32 {
        match self {
            Self::Byte => 0xff,
            Self::Word => 0xffff,
            Self::Dword => 0xffff_ffff,
        }
    }

    /// Validates a raw access from the PCI core: known width, naturally aligned, inside the
    /// 4 KiB configuration space.
    fn from_raw(offset: c_int, size: c_int) -> Result<(u16, Self), ConfigError> {
        let size = match size {
            1 => Self::Byte,
            2 => Self::Word,
            4 => Self::Dword,
            _ => return Err(ConfigError::BadRegisterNumber),
        };
        let offset = u16::try_from(offset).map_err(|_| ConfigError::BadRegisterNumber)?;
        if offset >= CONFIG_SPACE_SIZE || offset % size.bytes() != 0 {
            return Err(ConfigError::BadRegisterNumber);
        }
        Ok((offset, size))
    }
}

/// The configuration space behind a [`HostBridge`].
///
/// The PCI core calls these for every configuration access to a bus of the bridge: while it
/// enumerates, on behalf of drivers, and from sysfs. Accesses are naturally aligned and inside
/// the 4 KiB configuration space; the abstraction rejects anything else before calling.
///
/// The callbacks run in atomic context, possibly with raw spinlocks held (`pci_lock`) and local
/// interrupts disabled, and concurrently on several CPUs: they must not sleep or allocate. Use a
/// [`RawSpinLockIrq`](crate::sync::RawSpinLockIrq) for mutable state.
pub trait ConfigSpace: Send + Sync {
    /// Reads `size` bytes at `offset` of function `devfn` on bus `bus`.
    ///
    /// Returning [`ConfigError::DeviceNotFound`] makes the PCI core see all ones, which is how
    /// an absent function answers.
    fn read(&self, bus: u8, devfn: u8, offset: u16, size: AccessSize) -> Result<u32, ConfigError>;

    /// Writes the low `size` bytes of `value` at `offset` of function `devfn` on bus `bus`.
    fn write(
        &self,
        bus: u8,
        devfn: u8,
        offset: u16,
        size: AccessSize,
        value: u32,
    ) -> Result<(), ConfigError>;
}

/// An unused range of physical address space, claimed from `iomem_resource`.
///
/// A [`HostBridge`] assigns BARs inside it. The range is taken from address space no other
/// resource (RAM, firmware reservations, other devices) uses, so mapping a BAR in it is safe.
/// It is released when dropped.
///
/// # Invariants
///
/// `res` is inserted in the resource tree under `iomem_resource` until `self` is dropped.
pub struct MemWindow {
    res: Pin<KBox<Opaque<bindings::resource>>>,
}

// SAFETY: `MemWindow` only holds a `struct resource`; the resource tree is protected by its own
// lock, so it may be released from any thread.
unsafe impl Send for MemWindow {}

// SAFETY: `MemWindow` offers no interior mutability; reading the start and end of an inserted
// resource is safe from any thread.
unsafe impl Sync for MemWindow {}

impl MemWindow {
    /// Claims `size` bytes aligned to `align` (a power of two) within `min..=max` of the
    /// physical address space; `max` is clamped to what the CPU can address.
    ///
    /// The range appears in `/proc/iomem` as `name` and is a 64-bit non-prefetchable memory
    /// window.
    pub fn claim(name: &'static CStr, size: u64, align: u64, min: u64, max: u64) -> Result<Self> {
        if size == 0 || !align.is_power_of_two() {
            return Err(EINVAL);
        }
        let res = KBox::pin(Opaque::<bindings::resource>::zeroed(), GFP_KERNEL)?;
        let raw = res.get();
        // SAFETY: `raw` points to a zeroed, pinned `struct resource` nobody else knows about.
        unsafe {
            (*raw).name = name.as_char_ptr();
            (*raw).flags = (bindings::IORESOURCE_MEM | bindings::IORESOURCE_MEM_64) as c_ulong;
        }
        // SAFETY: `iomem_resource` is the root of the memory resource tree and lives forever;
        // `raw` is valid and pinned, and stays in the tree until `Drop` releases it. A NULL
        // `alignf` selects the default alignment function.
        to_result(unsafe {
            bindings::allocate_resource(
                &raw mut bindings::iomem_resource,
                raw,
                size,
                min,
                max,
                align,
                None,
                core::ptr::null_mut(),
            )
        })?;
        // INVARIANT: `allocate_resource()` succeeded, so the resource is in the tree.
        Ok(Self { res })
    }

    /// Returns the first address of the window.
    pub fn start(&self) -> u64 {
        // SAFETY: By the type invariant the resource is valid; its bounds do not change.
        unsafe { (*self.res.get()).start }
    }

    /// Returns the last address of the window (inclusive).
    pub fn end(&self) -> u64 {
        // SAFETY: By the type invariant the resource is valid; its bounds do not change.
        unsafe { (*self.res.get()).end }
    }

    /// Returns true if `start..start + len` lies inside the window.
    pub fn contains(&self, start: u64, len: u64) -> bool {
        len > 0
            && start >= self.start()
            && start
                .checked_add(len - 1)
                .is_some_and(|last| last <= self.end())
    }
}

impl Drop for MemWindow {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the resource is in the tree. Its users (the BARs of the
        // bridge's devices) are children that the PCI core released when it removed the bus.
        let ret = unsafe { bindings::release_resource(self.res.get()) };
        if ret != 0 {
            pr_err!("pci host: releasing memory window failed: {}\n", ret);
        }
    }
}

/// The part of a [`HostBridge`] the PCI core points to: the bus `sysdata` and the config space.
#[repr(C)]
#[pin_data]
struct Inner<T> {
    #[pin]
    sysdata: Opaque<bindings::pci_sysdata>,
    #[pin]
    data: T,
}

/// A registered PCI host bridge whose configuration space is a [`ConfigSpace`].
///
/// Only handed out inside a [`Devres`] of the parent device (see [`HostBridge::new`]), so the
/// bridge never outlives the parent's binding.
///
/// # Invariants
///
/// - `bridge` is a host bridge registered with `pci_host_probe()` in PCI domain `domain`, and
///   `self` owns the reference `pci_alloc_host_bridge()` returned.
/// - `bridge->bus` is its root bus; its `sysdata` points to `inner.sysdata` and its `ops` to
///   `Self::OPS`.
/// - The root bus stays registered until `Drop` removes it; `inner` and `window` outlive it.
pub struct HostBridge<T: ConfigSpace> {
    bridge: NonNull<bindings::pci_host_bridge>,
    domain: u32,
    window: MemWindow,
    inner: Pin<KBox<Inner<T>>>,
}

// SAFETY: The raw bus pointer is only used to remove the bus and to look up devices, which the
// PCI core serialises itself; `T` is `Send + Sync` by the `ConfigSpace` bound.
unsafe impl<T: ConfigSpace> Send for HostBridge<T> {}

// SAFETY: See `Send`; shared references only read immutable fields or call into the PCI core.
unsafe impl<T: ConfigSpace> Sync for HostBridge<T> {}

impl<T: ConfigSpace + 'static> HostBridge<T> {
    const OPS: bindings::pci_ops = bindings::pci_ops {
        read: Some(Self::read_callback),
        write: Some(Self::write_callback),
        // SAFETY: All-zero is a valid `pci_ops`: every other member is an optional callback.
        ..unsafe { core::mem::zeroed() }
    };

    /// Registers a host bridge below `parent` with root bus `busnr` in a new emulated PCI
    /// domain (the first free one from [`FIRST_EMULATED_DOMAIN`] on), scans it, assigns BARs
    /// from `window` and adds the devices found.
    ///
    /// `parent` becomes the parent device of the host bridge in sysfs. The bridge is removed
    /// when the returned [`Devres`] is dropped or when `parent` is unbound, whichever comes
    /// first.
    pub fn new<E>(
        parent: &device::Device<device::Bound>,
        busnr: u8,
        window: MemWindow,
        data: impl PinInit<T, E>,
    ) -> Result<Devres<Self>>
    where
        Error: From<E>,
    {
        // Registering in the initialiser of the `Devres` makes `pci_host_probe()` the last step
        // that can fail: the `Devres` is allocated before it, and adding its devres node after
        // it cannot fail.
        Devres::new::<Error>(
            parent,
            pin_init::pin_init_scope(move || Ok(Self::register(parent, busnr, window, data))),
        )
    }

    /// Registers the bridge; see [`HostBridge::new`]. Everything fallible precedes
    /// `pci_host_probe()`, so a registered bridge is never dropped on an error path.
    fn register<E>(
        parent: &device::Device<device::Bound>,
        busnr: u8,
        window: MemWindow,
        data: impl PinInit<T, E>,
    ) -> Result<Self>
    where
        Error: From<E>,
    {
        let inner = KBox::pin_init(
            try_pin_init!(Inner {
                sysdata: Opaque::zeroed(),
                data <- data,
            }? E),
            GFP_KERNEL,
        )?;

        // SAFETY: Plain allocation from the domain IDA; no preconditions.
        let domain = unsafe {
            bindings::pci_bus_find_emul_domain_nr(0, FIRST_EMULATED_DOMAIN, i32::MAX as u32)
        };
        let domain = u32::try_from(domain).map_err(|_| Error::from_errno(domain))?;
        let release_domain = crate::types::ScopeGuard::new(|| {
            // SAFETY: `domain` was allocated above and is not used by any bus.
            unsafe { bindings::pci_bus_release_emul_domain_nr(domain as c_int) }
        });

        let sysdata = inner.sysdata.get();
        // SAFETY: `sysdata` points to a zeroed, pinned `struct pci_sysdata` that nothing else
        // uses yet. The domain fits in an `int` as it came from the IDA.
        unsafe {
            (*sysdata).domain = domain as c_int;
            (*sysdata).node = bindings::NUMA_NO_NODE;
        }

        // SAFETY: Plain allocation; no preconditions.
        let bridge = NonNull::new(unsafe { bindings::pci_alloc_host_bridge(0) }).ok_or(ENOMEM)?;
        let raw = bridge.as_ptr();
        // `parent` is kept alive by the reference `device_add()` takes, and stays bound while
        // the bridge exists (it is only handed out in a `Devres` of `parent`); `OPS` is a
        // promoted constant ('static).
        // SAFETY: `bridge` is fresh and unregistered, so its members may be set; `sysdata` and
        // the window stay valid while the bus exists (type invariant); `parent` and `OPS`
        // outlive it, see above.
        let ret = unsafe {
            (*raw).dev.parent = parent.as_raw();
            (*raw).sysdata = sysdata.cast();
            (*raw).ops = core::ptr::from_ref(&Self::OPS).cast_mut();
            (*raw).busnr = c_int::from(busnr);
            bindings::pci_add_resource(&raw mut (*raw).windows, window.res.get());
            bindings::pci_host_probe(raw)
        };
        if ret != 0 {
            // SAFETY: Registration failed, so the bridge is ours again; dropping the last
            // reference frees it together with its window list.
            unsafe { bindings::pci_free_host_bridge(raw) };
            return Err(Error::from_errno(ret));
        }

        // The bus now owns the domain number until `Drop`.
        release_domain.dismiss();
        // INVARIANT: `pci_host_probe()` succeeded, so `bridge->bus` is the root bus, registered
        // in `domain` with our `sysdata` and `OPS`.
        Ok(Self {
            bridge,
            domain,
            window,
            inner,
        })
    }

    /// Returns the root bus.
    fn bus(&self) -> *mut bindings::pci_bus {
        // SAFETY: By the type invariant `bridge` is registered; its root bus does not change.
        unsafe { (*self.bridge.as_ptr()).bus }
    }

    /// Returns the configuration space implementation.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// Returns the PCI domain of the bridge.
    pub fn domain(&self) -> u32 {
        self.domain
    }

    /// Returns the number of the root bus.
    pub fn bus_number(&self) -> u8 {
        // SAFETY: By the type invariant the root bus is registered; its number does not change.
        unsafe { (*self.bus()).number }
    }

    /// Returns the memory window BARs are assigned from.
    pub fn window(&self) -> &MemWindow {
        &self.window
    }

    /// Stops and removes the device at `devfn` on the root bus, unbinding its driver, as a
    /// hot-unplug does. Returns `ENODEV` if there is no such device.
    ///
    /// Must be called from process context; it sleeps.
    pub fn remove_device(&self, devfn: u8) -> Result {
        remove_function(self.domain, self.bus_number(), devfn)
    }

    /// Returns the configuration space behind `bus`.
    ///
    /// # Safety
    ///
    /// `bus` must be a valid bus of a bridge registered by [`HostBridge::<T>::new`] that has
    /// not been removed yet.
    unsafe fn data_of<'a>(bus: *mut bindings::pci_bus) -> &'a T {
        // SAFETY: The caller guarantees that `bus` is valid. Child buses inherit the root bus'
        // `sysdata`, which points to `Inner::<T>::sysdata` (type invariant).
        let sysdata = unsafe { (*bus).sysdata }.cast::<Opaque<bindings::pci_sysdata>>();
        // SAFETY: `sysdata` is the `sysdata` member of a live `Inner<T>`, which outlives the bus.
        let inner = unsafe { &*crate::container_of!(sysdata, Inner<T>, sysdata) };
        &inner.data
    }

    /// `pci_ops::read` callback.
    ///
    /// # Safety
    ///
    /// Called by the PCI core with a valid `bus` of this bridge and a `val` valid for writes.
    unsafe extern "C" fn read_callback(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        offset: c_int,
        size: c_int,
        val: *mut u32,
    ) -> c_int {
        // SAFETY: The PCI core only calls `OPS` for buses of a registered `HostBridge<T>`.
        let data = unsafe { Self::data_of(bus) };
        // SAFETY: `bus` is valid (see above).
        let busnr = unsafe { (*bus).number };
        let result = AccessSize::from_raw(offset, size).and_then(|(offset, size)| {
            // `devfn` is an 8-bit value by construction of the PCI core.
            data.read(busnr, devfn as u8, offset, size)
                .map(|v| v & size.mask())
        });
        let (value, ret) = match result {
            Ok(v) => (v, 0),
            Err(e) => (!0, e.to_raw()),
        };
        // SAFETY: The PCI core passes a valid `val`.
        unsafe { *val = value };
        ret
    }

    /// `pci_ops::write` callback.
    ///
    /// # Safety
    ///
    /// Called by the PCI core with a valid `bus` of this bridge.
    unsafe extern "C" fn write_callback(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        offset: c_int,
        size: c_int,
        val: u32,
    ) -> c_int {
        // SAFETY: The PCI core only calls `OPS` for buses of a registered `HostBridge<T>`.
        let data = unsafe { Self::data_of(bus) };
        // SAFETY: `bus` is valid (see above).
        let busnr = unsafe { (*bus).number };
        let result = AccessSize::from_raw(offset, size).and_then(|(offset, size)| {
            // `devfn` is an 8-bit value by construction of the PCI core.
            data.write(busnr, devfn as u8, offset, size, val & size.mask())
        });
        match result {
            Ok(()) => 0,
            Err(e) => e.to_raw(),
        }
    }
}

impl<T: ConfigSpace> Drop for HostBridge<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `bridge` is registered; its root bus does not change.
        let bus = unsafe { (*self.bridge.as_ptr()).bus };
        // SAFETY: By the type invariant `bus` is a registered root bus. Stopping and removing it
        // under the rescan lock unbinds all drivers and removes all devices and the bridge, after
        // which the PCI core makes no more calls to `OPS` for it.
        unsafe {
            bindings::pci_lock_rescan_remove();
            bindings::pci_stop_root_bus(bus);
            bindings::pci_remove_root_bus(bus);
            bindings::pci_unlock_rescan_remove();
        }
        // SAFETY: `pci_remove_root_bus()` only unregisters the bridge; the reference from
        // `pci_alloc_host_bridge()` is ours (type invariant) and is dropped here. The bridge is
        // freed once the last `pci_dev` and bus references are gone too.
        unsafe { bindings::pci_free_host_bridge(self.bridge.as_ptr()) };
        // SAFETY: The bus using the domain is gone. On x86 the host bridge does not own the
        // domain number (its `domain_nr` is unset), so we release it.
        unsafe { bindings::pci_bus_release_emul_domain_nr(self.domain as c_int) };
        // `window` and `inner` are dropped next, after the bus is gone.
    }
}

/// Stops and removes the PCI function `devfn` on bus `bus` of PCI domain `domain`, unbinding its
/// driver, as a hot-unplug (or a write to its sysfs `remove` attribute) does. Returns `ENODEV`
/// if there is no such function.
///
/// Unlike [`HostBridge::remove_device`] this needs no reference to the bridge, so it can be
/// called by code that must not keep the bridge alive (the bridge may be gone already, in which
/// case there is no function to remove).
///
/// Must be called from process context; it sleeps.
pub fn remove_function(domain: u32, bus: u8, devfn: u8) -> Result {
    let domain = c_int::try_from(domain).map_err(|_| ENODEV)?;
    // SAFETY: Looks the function up in the global device list; returns a counted reference or
    // NULL. No preconditions.
    let pdev = unsafe {
        bindings::pci_get_domain_bus_and_slot(domain, c_uint::from(bus), c_uint::from(devfn))
    };
    if pdev.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: `pdev` is a counted reference, which keeps it valid until `pci_dev_put()`.
    // Removal takes the rescan lock itself and does nothing for a function that another path
    // removed concurrently (`pci_dev_test_and_set_removed()`).
    unsafe {
        bindings::pci_stop_and_remove_bus_device_locked(pdev);
        bindings::pci_dev_put(pdev);
    }
    Ok(())
}
