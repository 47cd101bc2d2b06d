// SPDX-License-Identifier: GPL-2.0

//! Confidential device acceptance.
//!
//! A confidential guest (TDX, SEV-SNP, CCA) only lets a device reach private memory or map
//! encrypted MMIO once the device has been verified and *accepted* into the guest's Trusted
//! Execution Environment (TEE). This file records that decision for every device, in one
//! bus-neutral place:
//!
//! - bus code (the PCI TSM core) sets and clears it with `device_cc_accept()` and
//!   `device_cc_reject()`, under the device lock and only while no driver is bound, because
//!   mappings a driver made before the transition cannot survive it;
//! - built-in subsystems ask `device_cc_accepted()`;
//! - drivers call `device_cc_probe()` from probe to defer until the device is accepted.
//!
//! The state is the `cc_accepted` byte in `struct device_private`, next to `dead` and in what
//! was its tail padding (the structure does not grow). Writers hold the device lock; readers
//! need no lock, so every access is a marked (`READ_ONCE()`/`WRITE_ONCE()`) one, see `base.h`.
//! `cc_waiting`, a bit next to `dead`, records that the probing driver waits for acceptance;
//! it is only accessed under the device lock.
//!
//! C header: [`include/linux/device.h`](srctree/include/linux/device.h)

use kernel::{bindings, error::from_result, ffi::c_int, prelude::*};

const __LOG_PREFIX: &[u8] = b"device_cc\0";

// The state byte lives in what used to be the tail padding of `struct device_private`: the
// members after `device` (the `dead` bitfield and `cc_accepted`) still fit in one word.
const _: () = assert!(
    size_of::<bindings::device_private>()
        == core::mem::offset_of!(bindings::device_private, device) + 2 * size_of::<usize>()
);

/// Returns a pointer to the acceptance state of `p`.
///
/// `cc_accepted` is a whole `bool`, not a bitfield, so that it can be read without the device
/// lock: readers use [`read_once`], writers (who hold the device lock) [`write_once`], so no
/// access to it is a plain racing one.
///
/// # Safety
///
/// `p` must point to a live `struct device_private`.
#[inline(always)]
unsafe fn state(p: *mut bindings::device_private) -> *mut bool {
    // SAFETY: `p` is live by the function's safety requirements.
    unsafe { &raw mut (*p).cc_accepted }
}

/// `READ_ONCE()` of the acceptance state: one volatile load of a naturally aligned byte, which
/// the kernel memory model (tools/memory-model) treats as a marked access. An atomic load
/// through `kernel::sync::atomic` would do the same, but calls out of line for a byte.
///
/// # Safety
///
/// `p` must point to a live `struct device_private`.
#[inline(always)]
unsafe fn read_once(p: *mut bindings::device_private) -> bool {
    // SAFETY: `state()` is valid and aligned for a `bool` that C and Rust only ever set to
    // `true` or `false`; all accesses to it are marked, see `state()`.
    unsafe { state(p).read_volatile() }
}

/// `WRITE_ONCE()` of the acceptance state, see [`read_once`].
///
/// # Safety
///
/// `p` must point to a live `struct device_private` whose device lock the caller holds.
unsafe fn write_once(p: *mut bindings::device_private, accepted: bool) {
    // SAFETY: As in `read_once()`; writers are serialised by the device lock.
    unsafe { state(p).write_volatile(accepted) }
}

/// Checks that `dev->mutex` is held, the same way with and without lockdep.
///
/// Without the lock the call fails with `-EINVAL` and warns once per boot, whatever the
/// configuration: the check is whether the mutex is locked at all. With lockdep,
/// `device_lock_assert()` additionally reports a caller that does not hold it itself.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
unsafe fn check_locked(dev: *mut bindings::device, what: &str) -> Result {
    // SAFETY: `dev` is valid by the function's safety requirements.
    unsafe { bindings::device_lock_assert(dev) };

    // SAFETY: `dev` is valid, so is its initialised mutex.
    if unsafe { bindings::mutex_is_locked(&raw mut (*dev).mutex) } {
        return Ok(());
    }
    kernel::do_once_lite! {
        pr_err!("{what}() called without the device lock held\n");
        kernel::warn_on!(true);
    };
    Err(EINVAL)
}

/// Sets or clears the accepted state of `dev`; see `device_cc_accept()`.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
unsafe fn set_accepted(dev: *mut bindings::device, accepted: bool, what: &str) -> Result {
    // SAFETY: `dev` is valid by the function's safety requirements.
    unsafe { check_locked(dev, what) }?;

    // SAFETY: `dev` is valid; `driver` is only written under the device lock, which is held.
    if !unsafe { (*dev).driver }.is_null() {
        return Err(EBUSY);
    }

    // SAFETY: `dev` is valid; `p` is set once by `device_add()` and stays until release.
    let p = unsafe { (*dev).p };
    if p.is_null() {
        // Not registered with the driver core: there is nothing to accept.
        return Err(ENODEV);
    }

    // SAFETY: `p` is live (checked above) and the device lock is held.
    let changed = unsafe { read_once(p) } != accepted;
    // SAFETY: As above.
    unsafe { write_once(p, accepted) };

    // SAFETY: `p` is live. `cc_waiting` shares the bitfield byte with `dead`; every access to
    // that byte, read or write, happens under the device lock, which is held.
    if changed && unsafe { bindings::device_private::cc_waiting_raw(p) } != 0 {
        // The driver waits for acceptance: once accepted the device goes back to the deferred
        // probe retries (and the bus probes it), once rejected again it is parked, unprobed.
        // SAFETY: `dev` is valid and registered, and its device lock is held.
        unsafe {
            if accepted {
                bindings::driver_deferred_probe_unpark(dev)
            } else {
                bindings::driver_deferred_probe_park(dev)
            }
        };
    }
    Ok(())
}

/// Records whether the driver probing `dev` waits for acceptance, parking `dev` if it does.
///
/// The driver core's deferred-probe retries leave a parked device alone: they could not get past
/// `device_cc_probe()` anyway. Without the device lock, under which alone the bit may be written,
/// nothing is recorded and the device is retried like any deferred device.
///
/// # Safety
///
/// `dev` must point to a valid `struct device` that a driver is probing.
unsafe fn set_waiting(dev: *mut bindings::device, waiting: bool) {
    // SAFETY: `dev` is valid, so is its initialised mutex.
    if !unsafe { bindings::mutex_is_locked(&raw mut (*dev).mutex) } {
        return;
    }

    // SAFETY: `dev` is being probed, so it is registered and `p` is valid. We hold the device
    // lock, under which every bit of the byte is written (see `set_accepted()`).
    unsafe { bindings::device_private::set_cc_waiting_raw((*dev).p, waiting.into()) };
    if waiting {
        // SAFETY: `dev` is valid and registered, and we hold its device lock.
        unsafe { bindings::driver_deferred_probe_park(dev) };
    }
}

/// Accepts `dev` into the guest's TEE.
///
/// Returns 0, or `-EBUSY` when a driver is bound (state unchanged), `-EINVAL` (with a warning)
/// when the device lock is not held, `-ENODEV` when `dev` is not registered.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`, and the caller must hold its device lock.
#[export]
pub unsafe extern "C" fn device_cc_accept(dev: *mut bindings::device) -> c_int {
    // SAFETY: Forwarded from the caller.
    from_result(|| unsafe { set_accepted(dev, true, "device_cc_accept") }.map(|()| 0))
}

/// Removes `dev` from the guest's TEE; the reverse of [`device_cc_accept`].
///
/// # Safety
///
/// `dev` must point to a valid `struct device`, and the caller must hold its device lock.
#[export]
pub unsafe extern "C" fn device_cc_reject(dev: *mut bindings::device) -> c_int {
    // SAFETY: Forwarded from the caller.
    from_result(|| unsafe { set_accepted(dev, false, "device_cc_reject") }.map(|()| 0))
}

/// Returns whether `dev` is accepted into the guest's TEE.
///
/// A single marked load, no locking: the answer is stable for callers that hold the device lock
/// or run inside the bound driver's lifetime, since the state only changes while unbound.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
#[export]
pub unsafe extern "C" fn device_cc_accepted(dev: *mut bindings::device) -> bool {
    // SAFETY: `dev` is valid by the function's safety requirements.
    let p = unsafe { (*dev).p };

    // SAFETY: `p` is either NULL or points to the device's live `struct device_private`.
    !p.is_null() && unsafe { read_once(p) }
}

/// Defers the probe of `dev` until it is accepted.
///
/// Returns 0 when accepted, `-EPROBE_DEFER` (reason "TEE acceptance pending", visible in
/// `/sys/kernel/debug/devices_deferred`) when not, `-EINVAL` when no driver is probing `dev`.
/// A deferred device is parked: the deferred-probe retries after other binds skip it until it is
/// accepted.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`. Callers are drivers inside their probe callback,
/// where the driver core holds the device lock.
#[export]
pub unsafe extern "C" fn device_cc_probe(dev: *mut bindings::device) -> c_int {
    // A probe runs under the device lock; without it, warn but answer all the same.
    // SAFETY: `dev` is valid by the function's safety requirements.
    let _ = unsafe { check_locked(dev, "device_cc_probe") };

    // SAFETY: `dev` is valid; the driver core sets `driver` before calling probe.
    if unsafe { (*dev).driver }.is_null() {
        return EINVAL.to_errno();
    }

    // SAFETY: `dev` is valid.
    if unsafe { device_cc_accepted(dev) } {
        // SAFETY: `dev` is valid and being probed.
        unsafe { set_waiting(dev, false) };
        return 0;
    }

    // SAFETY: `dev` is valid and being probed.
    unsafe { set_waiting(dev, true) };

    // SAFETY: `dev` is valid and the format string is a NUL-terminated literal without
    // conversion specifiers, so no variadic arguments are read.
    unsafe {
        bindings::dev_err_probe(
            dev,
            EPROBE_DEFER.to_errno(),
            c"TEE acceptance pending\n".as_char_ptr(),
        )
    }
}
