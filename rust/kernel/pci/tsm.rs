// SPDX-License-Identifier: GPL-2.0

//! PCI TEE Security Manager (TSM), device security ("devsec") side.
//!
//! A devsec TSM manages the TDISP security state of PCI functions assigned to a confidential
//! guest: it locks a function's configuration, validates and starts the locked function so the
//! PCI core can accept it into the guest's TEE, and unlocks it again. The PCI core drives these
//! operations (`drivers/pci/tsm.c`); a driver implements [`DevsecTsm`] and registers it with
//! [`Registration`], below a bound parent device.
//!
//! The PCI core keeps one context per locked function (`pdev->tsm`, a `struct pci_tsm`). Here
//! that context is a [`DevsecTsm::Context`] the driver creates in [`DevsecTsm::lock`], stored
//! in a pinned allocation next to the `struct pci_tsm` the PCI core sees, and dropped after
//! [`DevsecTsm::unlock`].
//!
//! C headers: [`include/linux/pci-tsm.h`](srctree/include/linux/pci-tsm.h),
//! [`include/linux/tsm.h`](srctree/include/linux/tsm.h)

use super::doe;
use crate::{
    bindings,
    container_of,
    device,
    devres::Devres,
    error::{
        from_err_ptr,
        to_result, //
    },
    prelude::*,
    types::Opaque, //
};
use core::{
    ops::{
        Deref,
        Range, //
    },
    ptr::NonNull, //
};

/// A PCI function handed to a devsec TSM operation.
///
/// # Invariants
///
/// The PCI core runs a devsec operation ([`DevsecTsm::lock`], [`DevsecTsm::accept`] or
/// [`DevsecTsm::unlock`]) on this function with `pci_tsm_rwsem` held for write. The function
/// has not been deleted: `pci_destroy_dev()` tears down the function's TSM state under the
/// same rwsem before it deletes the device, and deleting the device drains the sysfs writes
/// that start these operations, so the function's DOE mailboxes stay valid for the duration
/// of the operation.
#[repr(transparent)]
pub struct Device(super::Device);

impl Device {
    /// # Safety
    ///
    /// `ptr` is a valid `struct pci_dev` on which the PCI core runs a devsec TSM operation for
    /// the lifetime `'a` (see the type invariants).
    unsafe fn from_raw<'a>(ptr: *mut bindings::pci_dev) -> &'a Self {
        // SAFETY: `Device` and `pci::Device` are transparent wrappers of `struct pci_dev`, and
        // the caller guarantees the invariants.
        unsafe { &*ptr.cast() }
    }

    /// Returns the function that carries the TDISP messages of this one: the function itself
    /// or, for an SR-IOV virtual function, its physical function (the VF's Device Security
    /// Manager). [`None`] if that physical function is being removed.
    pub fn dsm(&self) -> Option<&super::Device> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev` on which a devsec operation runs
        // (type invariants), with `pci_tsm_rwsem` held, as `pci_tsm_devsec_dsm()` requires.
        let dsm = unsafe { bindings::pci_tsm_devsec_dsm(self.0.as_raw()) };
        if dsm.is_null() {
            return None;
        }
        // SAFETY: `dsm` is `self` or its physical function, which the virtual function holds
        // a reference to; both are valid `struct pci_dev`s for as long as `self` is borrowed.
        // `pci::Device` is a transparent wrapper of `struct pci_dev`.
        Some(unsafe { &*dsm.cast() })
    }

    /// Returns the first DOE mailbox that supports `vendor` and `object_type` of the function
    /// that carries this function's TDISP messages (see [`Device::dsm`]).
    pub fn doe_mailbox(&self, vendor: u16, object_type: u8) -> Option<doe::Mailbox<'_>> {
        let dsm = self.dsm()?;
        // SAFETY: By the type invariants the function is not deleted while `self` is borrowed,
        // and by `pci_tsm_devsec_dsm()` neither is the physical function `dsm()` returned
        // while the operation holds `pci_tsm_rwsem`, which it does while `self` is borrowed.
        unsafe { doe::Mailbox::find_unchecked(dsm, vendor, object_type) }
    }

    /// Returns the CMA/SPDM DOE mailbox (vendor PCI-SIG, type [`doe::FEATURE_CMA`]) that
    /// carries the function's TDISP messages: its own, or its physical function's.
    pub fn cma_mailbox(&self) -> Option<doe::Mailbox<'_>> {
        self.doe_mailbox(bindings::PCI_VENDOR_ID_PCI_SIG as u16, doe::FEATURE_CMA)
    }

    /// Registers the function's private MMIO: the physical address `ranges` that the accepted
    /// function serves as TEE memory, validated against its interface report.
    ///
    /// The PCI core registers one "PCI MMIO Encrypted" resource per range, nested in the BAR
    /// that contains it, and releases them when the function leaves the TEE or the accept
    /// fails. Ranges not passed stay shared. All or nothing: on error nothing is registered.
    ///
    /// Only valid in [`DevsecTsm::accept`], once: fails with [`ENXIO`] in the other
    /// operations, with [`EBUSY`] if called before in this accept or if a range overlaps
    /// another one or a resource in its BAR, and with [`EINVAL`] if a range is empty, not
    /// page aligned or not inside one memory BAR of the function.
    pub fn set_private_mmio(&self, ranges: &[Range<u64>]) -> Result {
        let mut raw = KVec::with_capacity(ranges.len(), GFP_KERNEL)?;
        for range in ranges {
            // `struct range` has an inclusive end: an empty range becomes one that ends
            // before it starts (or, starting at 0, one that ends at the last address), which
            // the PCI core refuses.
            raw.push(
                bindings::range {
                    start: range.start,
                    end: range.end.wrapping_sub(1),
                },
                GFP_KERNEL,
            )?;
        }
        let nr = u32::try_from(raw.len())?;
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev` on which a devsec operation runs
        // with the device lock and `pci_tsm_rwsem` held (type invariants), as the function
        // requires; `raw` holds `nr` initialised ranges, which it only reads during the call.
        to_result(unsafe { bindings::pci_tsm_mmio_set_private(self.0.as_raw(), raw.as_ptr(), nr) })
    }
}

impl super::Device {
    /// Returns whether `range`, given as offsets into BAR `bar`, lies inside one private MMIO
    /// range of this accepted function (see [`Device::set_private_mmio`]), so that it can be
    /// requested and mapped as private in one piece.
    ///
    /// `false` for an empty range or an invalid BAR index, for MMIO that is shared and for a
    /// range that spans several private ranges or private and shared MMIO: a driver of a partly
    /// private BAR requests and maps those parts separately, as one mapping cannot be both
    /// private and shared.
    ///
    /// Takes `pci_tsm_rwsem`, so it may sleep.
    pub fn mmio_is_private(&self, bar: u32, range: Range<u64>) -> bool {
        let Ok(bar_start) = self.resource_start(bar) else {
            return false;
        };
        if range.is_empty() {
            return false;
        }
        let (Some(first), Some(last)) = (
            bar_start.checked_add(range.start),
            bar_start.checked_add(range.end - 1),
        ) else {
            return false;
        };
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; the function takes
        // `pci_tsm_rwsem` itself and may sleep, which process context with a device reference
        // allows.
        unsafe { bindings::pci_tsm_mmio_is_private(self.as_raw(), first, last) }
    }
}

impl Deref for Device {
    type Target = super::Device;

    fn deref(&self) -> &super::Device {
        &self.0
    }
}

impl AsRef<device::Device> for Device {
    fn as_ref(&self) -> &device::Device {
        self.0.as_ref()
    }
}

/// Evidence a devsec TSM collected from a function while locking it.
///
/// The PCI core numbers it with a generation and shows it to root in the function's `tsm/`
/// directory (`tdisp_version`, `tdisp_caps`, `interface_report`, and for a device the TSM
/// authenticated with SPDM `cert_chain`, `measurements` and `measurements_nonce`) while the
/// function is locked, so that userspace can verify it and accept exactly what it verified.
#[derive(Clone, Copy, Debug, Default)]
pub struct Evidence<'a> {
    /// TDISP version in use with the device: major version in bits 7:4, minor in bits 3:0.
    pub tdisp_version: u8,
    /// Body of the device's TDISP_CAPABILITIES response, as received.
    pub caps: &'a [u8],
    /// The DEVICE_INTERFACE_REPORT, as the device returned it.
    pub report: &'a [u8],
    /// The SPDM certificate chain (slot 0) the device was authenticated with, as returned;
    /// empty if the TSM does not authenticate devices with SPDM.
    pub cert_chain: &'a [u8],
    /// The signed SPDM MEASUREMENTS response the TSM verified, as received; or empty.
    pub measurements: &'a [u8],
    /// The requester nonce of the GET_MEASUREMENTS that `measurements` answers; or empty.
    pub measurements_nonce: &'a [u8],
}

/// The operations of a devsec TSM.
///
/// The PCI core calls them with `pci_tsm_rwsem` held for write, so they are serialised
/// against each other, against unregistration of the TSM and against removal of the function.
/// They may sleep.
///
/// # Examples
///
/// ```
/// use kernel::{pci::tsm, prelude::*};
///
/// struct MyTsm;
///
/// struct Locked {
///     nonce: [u8; 32],
///     report: [u8; 16],
/// }
///
/// impl tsm::DevsecTsm for MyTsm {
///     type Context = Locked;
///
///     fn lock<'a>(
///         &'a self,
///         pdev: &'a tsm::Device,
///     ) -> impl PinInit<Self::Context, Error> + 'a {
///         let _mailbox = pdev.cma_mailbox().ok_or(ENODEV)?;
///         // ... lock the interface, receive a start nonce, fetch the report ...
///         Ok(Locked {
///             nonce: [0; 32],
///             report: [0; 16],
///         })
///     }
///
///     fn evidence(ctx: &Locked) -> tsm::Evidence<'_> {
///         tsm::Evidence {
///             tdisp_version: 0x10,
///             report: &ctx.report,
///             ..Default::default()
///         }
///     }
///
///     fn accept(&self, _pdev: &tsm::Device, ctx: Pin<&mut Locked>) -> Result {
///         // ... fetch the report again, refuse unless it equals `ctx.report` ...
///         // ... validate the interface, start it with `ctx.nonce` ...
///         let _ = ctx.nonce;
///         Err(EIO)
///     }
///
///     fn unlock(&self, _pdev: &tsm::Device, _ctx: Pin<&Locked>) {
///         // ... stop the interface ...
///     }
/// }
/// ```
pub trait DevsecTsm: Send + Sync + Sized + 'static {
    /// Per-function state of a locked function, kept from `lock` to `unlock`.
    type Context: Send + Sync;

    /// Locks the configuration of `pdev` (TDISP `CONFIG_LOCKED`) and returns its context.
    ///
    /// On error the function must be left unlocked; the error is returned to the writer of
    /// the `tsm/lock` attribute.
    fn lock<'a>(&'a self, pdev: &'a Device) -> impl PinInit<Self::Context, Error> + 'a;

    /// Returns the evidence [`DevsecTsm::lock`] collected, kept in `ctx`.
    ///
    /// Called after `lock` and after each `accept`. The evidence must not change while the
    /// function stays locked: userspace reads it at any time and accepts on its strength.
    fn evidence(ctx: &Self::Context) -> Evidence<'_>;

    /// Validates the locked function and starts it (TDISP `RUN`).
    ///
    /// The TSM must refuse a function whose evidence changed since `lock` (for example an
    /// interface report that differs from the one in [`DevsecTsm::evidence`]).
    ///
    /// Returns `Ok(())` only if the function may be accepted into the TEE; the PCI core then
    /// calls `device_cc_accept()`. On error the function must be left locked and not running:
    /// a TSM that finds a problem after starting it stops it and locks it again, which is why
    /// the context is mutable here (the PCI core runs the operations of one function one at a
    /// time).
    fn accept(&self, pdev: &Device, ctx: Pin<&mut Self::Context>) -> Result;

    /// Returns the function to `CONFIG_UNLOCKED`. The context is dropped afterwards.
    ///
    /// Also called when the TSM is unregistered or the function is removed while locked, so
    /// the function may not answer anymore; this cannot fail.
    fn unlock(&self, pdev: &Device, ctx: Pin<&Self::Context>);
}

/// The PCI core's context of a locked function: the `struct pci_tsm` it sees, followed by the
/// driver's context.
///
/// # Invariants
///
/// `tsm` is initialised with `pdev` = the locked function, `tsm_dev` = the TSM device of a
/// [`Registration<T>`], `dsm_dev`, `tdi` and `mmio_private` = NULL, and `evidence` pointing to
/// the buffers of [`DevsecTsm::evidence`] of `ctx`, as last returned. Instances are only created by
/// `Registration::<T>::lock_callback` in a pinned [`KBox`] whose ownership passes to the PCI
/// core, and freed by `Registration::<T>::unlock_callback`.
#[repr(C)]
#[pin_data]
struct Locked<T: DevsecTsm> {
    tsm: Opaque<bindings::pci_tsm>,
    #[pin]
    ctx: T::Context,
}

/// The allocation shared with the PCI core: the `struct pci_tsm_ops` that the TSM device points
/// to, followed by the driver's data.
#[repr(C)]
#[pin_data]
struct Inner<T: DevsecTsm> {
    ops: Opaque<bindings::pci_tsm_ops>,
    #[pin]
    data: T,
}

impl<T: DevsecTsm> Inner<T> {
    /// # Safety
    ///
    /// `tsm_dev` is the TSM device of a live [`Registration<T>`].
    unsafe fn from_tsm_dev<'a>(tsm_dev: *const bindings::tsm_dev) -> &'a Self {
        // SAFETY: The caller guarantees `tsm_dev` is valid; `Registration::new` registered it
        // with `pci_ops` pointing to the `ops` field of an `Inner<T>`.
        let ops = unsafe { (*tsm_dev).pci_ops }
            .cast_mut()
            .cast::<Opaque<bindings::pci_tsm_ops>>();
        // SAFETY: `ops` points to the `ops` field of a pinned `Inner<T>` that lives as long as
        // the registration, which the caller guarantees for `'a`.
        unsafe { &*container_of!(ops, Self, ops) }
    }
}

/// A registered devsec TSM.
///
/// Registering creates a TSM class device (`/sys/class/tsm/tsmN`) below a bound parent device,
/// whose `pci_ops` are the devsec operations of `T`. The registration lives in a [`Devres`] of
/// the parent (see [`Registration::new`]): it is unregistered when the [`Devres`] is dropped or
/// when the parent is unbound, whichever comes first. Unregistering first unlocks every
/// function the TSM still holds, calling [`DevsecTsm::unlock`] for each.
///
/// # Invariants
///
/// `tsm_dev` is a TSM device registered by `tsm_register()` with `inner.ops`, and is
/// unregistered only in `drop`.
pub struct Registration<T: DevsecTsm> {
    tsm_dev: NonNull<bindings::tsm_dev>,
    inner: Pin<KBox<Inner<T>>>,
}

// SAFETY: The registration only hands out shared access to `T`, which is `Send + Sync`, and
// `tsm_unregister()` may be called from any thread.
unsafe impl<T: DevsecTsm> Send for Registration<T> {}

// SAFETY: Shared references only reach `T: Sync` and the immutable TSM device ID.
unsafe impl<T: DevsecTsm> Sync for Registration<T> {}

impl<T: DevsecTsm> Registration<T> {
    /// Registers `data` as a devsec TSM below `parent`.
    ///
    /// The TSM is unregistered when the returned [`Devres`] is dropped or when `parent` is
    /// unbound, whichever comes first.
    pub fn new(
        parent: &device::Device<device::Bound>,
        data: impl PinInit<T, Error>,
    ) -> Result<Devres<Self>> {
        // Registering in the initialiser of the `Devres` makes `tsm_register()` the last step
        // that can fail: the `Devres` is allocated before it, and adding its devres node after
        // it cannot fail.
        Devres::new::<Error>(
            parent,
            pin_init::pin_init_scope(move || Ok(Self::register(parent, data))),
        )
    }

    /// Registers the TSM; see [`Registration::new`].
    fn register(
        parent: &device::Device<device::Bound>,
        data: impl PinInit<T, Error>,
    ) -> Result<Self> {
        let inner = KBox::pin_init(
            try_pin_init!(Inner {
                ops: Opaque::new(Self::ops()),
                data <- data,
            }),
            GFP_KERNEL,
        )?;

        // SAFETY: `parent` is a valid device (`device_add()` takes a reference to it); `inner.ops`
        // is a valid `struct pci_tsm_ops` in a pinned allocation that outlives the TSM device,
        // because `drop` unregisters the device before `inner` is freed.
        let tsm_dev = unsafe { bindings::tsm_register(parent.as_raw(), inner.ops.get()) };
        // `tsm_register()` returns a registered TSM device or an error pointer, never NULL; the
        // NULL check is for the type only: with NULL, nothing would be registered.
        let tsm_dev = NonNull::new(from_err_ptr(tsm_dev)?).ok_or(ENOMEM)?;

        // INVARIANT: `tsm_register()` returned a registered TSM device using `inner.ops`.
        Ok(Self { tsm_dev, inner })
    }

    /// Returns the TSM's ID, the `N` in `tsmN`.
    pub fn id(&self) -> u32 {
        // SAFETY: `self.tsm_dev` is a registered TSM device by the type invariants; `id` is
        // set before registration and never changes.
        let id = unsafe { (*self.tsm_dev.as_ptr()).id };
        // CAST: IDs come from an IDA and are never negative.
        id as u32
    }

    /// Returns the driver's data.
    pub fn data(&self) -> Pin<&T> {
        // SAFETY: `data` is structurally pinned in `inner`.
        unsafe { self.inner.as_ref().map_unchecked(|inner| &inner.data) }
    }

    fn ops() -> bindings::pci_tsm_ops {
        let mut ops = bindings::pci_tsm_ops::default();
        // `devsec_ops` is the tagged half (`struct pci_tsm_devsec_ops`) of a `struct_group`.
        ops.__bindgen_anon_2.devsec_ops = bindings::pci_tsm_ops__bindgen_ty_2_pci_tsm_devsec_ops {
            lock: Some(Self::lock_callback),
            unlock: Some(Self::unlock_callback),
            accept: Some(Self::accept_callback),
        };
        ops
    }

    extern "C" fn lock_callback(
        tsm_dev: *mut bindings::tsm_dev,
        pdev: *mut bindings::pci_dev,
    ) -> *mut bindings::pci_tsm {
        // SAFETY: The PCI core calls `lock` only through the ops of a registered TSM device,
        // which `Registration::new` created, and only while the TSM is registered.
        let inner = unsafe { Inner::<T>::from_tsm_dev(tsm_dev) };
        // SAFETY: The PCI core passes a valid function and runs this operation on it with
        // `pci_tsm_rwsem` held for write, as `Device` requires.
        let dev = unsafe { Device::from_raw(pdev) };

        let base = bindings::pci_tsm {
            pdev,
            // A devsec TSM does not talk to a Device Security Manager itself.
            dsm_dev: core::ptr::null_mut(),
            tsm_dev,
            tdi: core::ptr::null_mut(),
            // Set by `set_evidence` once the context exists.
            evidence: bindings::pci_tsm_evidence::default(),
            // Owned by the PCI core, which sets them during accept.
            mmio_private: core::ptr::null_mut(),
            nr_mmio_private: 0,
        };
        let init = try_pin_init!(Locked::<T> {
            tsm: Opaque::new(base),
            ctx <- inner.data.lock(dev),
        });

        match KBox::pin_init(init, GFP_KERNEL) {
            Ok(locked) => {
                // SAFETY: The allocation is never moved out of: ownership passes to the PCI
                // core, which hands it back to `unlock_callback`.
                let locked = KBox::into_raw(unsafe { Pin::into_inner_unchecked(locked) });
                // SAFETY: `locked` is valid and not shared yet.
                unsafe { Self::set_evidence(locked) };
                // INVARIANT: The context is initialised as `Locked` requires and owned by the
                // PCI core from now on.
                // SAFETY: `locked` is valid.
                unsafe { (*locked).tsm.get() }
            }
            Err(err) => err.to_ptr(),
        }
    }

    extern "C" fn unlock_callback(tsm: *mut bindings::pci_tsm) {
        // SAFETY: The PCI core passes back a context returned by `lock_callback` of this TSM,
        // that is the `tsm` field of a `Locked<T>` in a leaked `KBox`, exactly once.
        let locked = unsafe { container_of!(Opaque::cast_from(tsm).cast_mut(), Locked<T>, tsm) };
        // SAFETY: `locked` is valid (see above) and `tsm_dev` was set by `lock_callback` to the
        // TSM device of the registration, which is alive while the PCI core calls its ops.
        let inner = unsafe { Inner::<T>::from_tsm_dev((*tsm).tsm_dev) };
        // SAFETY: `pdev` was set by `lock_callback`; the PCI core runs `unlock` on the function
        // with `pci_tsm_rwsem` held for write.
        let dev = unsafe { Device::from_raw((*tsm).pdev) };
        // SAFETY: The allocation is pinned and not moved; see above for validity.
        let ctx = unsafe { Pin::new_unchecked(&(*locked).ctx) };

        inner.data.unlock(dev, ctx);

        // SAFETY: `locked` came from `KBox::into_raw` in `lock_callback` and the PCI core gives
        // up its pointer with this call, so nothing references the allocation anymore.
        drop(unsafe { KBox::from_raw(locked) });
    }

    extern "C" fn accept_callback(pdev: *mut bindings::pci_dev) -> c_int {
        // SAFETY: The PCI core passes a valid function and runs this operation with
        // `pci_tsm_rwsem` held for write, as `Device` requires.
        let dev = unsafe { Device::from_raw(pdev) };
        // SAFETY: `pdev` is valid; `pdev->tsm` is stable under `pci_tsm_rwsem`.
        let tsm = unsafe { (*pdev).tsm };
        if tsm.is_null() {
            dev_err!(dev, "accept: function is not locked\n");
            return ENXIO.to_errno();
        }
        // The PCI core calls `accept` through the ops of the TSM that locked the function, so
        // `tsm` is the `tsm` field of a live `Locked<T>` whose `tsm_dev` is the TSM device of a
        // live registration. It runs the operations of a function one at a time (device lock
        // and `pci_tsm_rwsem`), and the context stays in its allocation until `unlock_callback`.
        // SAFETY: `tsm` is the `tsm` field of a live `Locked<T>`, see above.
        let locked = unsafe { container_of!(Opaque::cast_from(tsm).cast_mut(), Locked<T>, tsm) };
        // SAFETY: `tsm_dev` is the TSM device of a live registration, see above.
        let inner = unsafe { Inner::<T>::from_tsm_dev((*tsm).tsm_dev) };
        // SAFETY: No other reference to the context exists during this call and it is never
        // moved, see above.
        let ctx = unsafe { Pin::new_unchecked(&mut (*locked).ctx) };

        let result = inner.data.accept(dev, ctx);
        // `accept` had the context mutably: point the PCI core at the evidence as it is now.
        // SAFETY: `locked` is valid (see above) and `ctx` is no longer borrowed.
        unsafe { Self::set_evidence(locked) };

        match result {
            Ok(()) => 0,
            Err(err) => err.to_errno(),
        }
    }

    /// Points `tsm.evidence` of `locked` at the evidence of its context, keeping the
    /// generation the PCI core assigned.
    ///
    /// # Safety
    ///
    /// `locked` is a valid `Locked<T>` that nothing else accesses during the call: not yet
    /// handed to the PCI core, or during an operation on its function (the PCI core reads the
    /// evidence only with `pci_tsm_rwsem` held for read, and runs operations with it held for
    /// write).
    unsafe fn set_evidence(locked: *mut Locked<T>) {
        // SAFETY: `locked` is valid and not accessed concurrently (see above).
        let (tsm, ctx) = unsafe { ((*locked).tsm.get(), &(*locked).ctx) };
        let evidence = T::evidence(ctx);
        // SAFETY: As above; the buffers are part of, or outlive, the context, which stays in
        // place until `unlock_callback` frees it after the PCI core has stopped reading them.
        unsafe {
            (*tsm).evidence = bindings::pci_tsm_evidence {
                generation: (*tsm).evidence.generation,
                tdisp_version: evidence.tdisp_version,
                caps: evidence.caps.as_ptr().cast(),
                caps_len: evidence.caps.len(),
                report: evidence.report.as_ptr().cast(),
                report_len: evidence.report.len(),
                cert_chain: evidence.cert_chain.as_ptr().cast(),
                cert_chain_len: evidence.cert_chain.len(),
                measurements: evidence.measurements.as_ptr().cast(),
                measurements_len: evidence.measurements.len(),
                measurements_nonce: evidence.measurements_nonce.as_ptr().cast(),
                measurements_nonce_len: evidence.measurements_nonce.len(),
            }
        };
    }
}

impl<T: DevsecTsm> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `self.tsm_dev` is registered by the type invariants and unregistered only
        // here. The PCI core unlocks all functions of this TSM before this returns, while
        // `self.inner` is still alive.
        unsafe { bindings::tsm_unregister(self.tsm_dev.as_ptr()) };
    }
}
