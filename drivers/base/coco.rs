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
//! The state is the `cc_accepted` bit in `struct device_private`, next to `dead`. Both bits
//! share a byte and every writer of that byte holds the device lock, see `base.h`.
//!
//! C header: [`include/linux/device.h`](srctree/include/linux/device.h)

use kernel::{bindings, ffi::c_int, prelude::*};

const __LOG_PREFIX: &[u8] = b"device_cc\0";

/// Whether the current task holds `dev->mutex`.
///
/// With lockdep this is exact; without it, the best available approximation is whether anyone
/// holds it.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
#[inline]
unsafe fn lock_held(dev: *mut bindings::device) -> bool {
    // SAFETY: `dev` is valid by the function's safety requirements, so is its mutex.
    let mutex = unsafe { &raw mut (*dev).mutex };

    #[cfg(CONFIG_LOCKDEP)]
    // SAFETY: `mutex` is a valid, initialised mutex; `dep_map` exists with lockdep.
    let held = unsafe { bindings::lock_is_held_type(&raw const (*mutex).dep_map, -1) } != 0;

    #[cfg(not(CONFIG_LOCKDEP))]
    // SAFETY: `mutex` is a valid, initialised mutex.
    let held = unsafe { bindings::mutex_is_locked(mutex) };

    held
}

/// Warns, once per boot, about a call without the device lock.
fn warn_unlocked(what: &str) {
    kernel::do_once_lite! {
        pr_err!("{what}() called without the device lock held\n");
        kernel::warn_on!(true);
    };
}

/// Sets or clears the accepted bit of `dev`; see `device_cc_accept()`.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
unsafe fn set_accepted(dev: *mut bindings::device, accepted: bool, what: &str) -> c_int {
    // SAFETY: `dev` is valid by the function's safety requirements.
    if !unsafe { lock_held(dev) } {
        warn_unlocked(what);
        return EINVAL.to_errno();
    }

    // SAFETY: `dev` is valid; `driver` is only written under the device lock, which we hold.
    if !unsafe { (*dev).driver }.is_null() {
        return EBUSY.to_errno();
    }

    // SAFETY: `dev` is valid; `p` is set once by `device_add()` and stays until release.
    let p = unsafe { (*dev).p };
    if p.is_null() {
        // Not registered with the driver core: there is nothing to accept.
        return ENODEV.to_errno();
    }

    // SAFETY: `p` is valid (checked above); we hold the device lock, under which alone the bits
    // are written.
    let changed = unsafe { bindings::device_private::cc_accepted_raw(p) } != u8::from(accepted);

    // SAFETY: `p` is valid (checked above). The bitfield byte is shared with `dead` and
    // `cc_waiting`, whose writers (`kill_device()`, `set_waiting()`) also hold the device lock,
    // which we hold.
    unsafe { bindings::device_private::set_cc_accepted_raw(p, accepted.into()) };

    // SAFETY: As above.
    if changed && unsafe { bindings::device_private::cc_waiting_raw(p) } != 0 {
        // The driver waits for acceptance: once accepted the device goes back to the deferred
        // probe retries (and the bus probes it), once rejected again it is parked, unprobed.
        // SAFETY: `dev` is valid and registered, and we hold its device lock.
        unsafe {
            if accepted {
                bindings::driver_deferred_probe_unpark(dev)
            } else {
                bindings::driver_deferred_probe_park(dev)
            }
        };
    }
    0
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
    // SAFETY: `dev` is valid by the function's safety requirements.
    if !unsafe { lock_held(dev) } {
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
    unsafe { set_accepted(dev, true, "device_cc_accept") }
}

/// Removes `dev` from the guest's TEE; the reverse of [`device_cc_accept`].
///
/// # Safety
///
/// `dev` must point to a valid `struct device`, and the caller must hold its device lock.
#[export]
pub unsafe extern "C" fn device_cc_reject(dev: *mut bindings::device) -> c_int {
    // SAFETY: Forwarded from the caller.
    unsafe { set_accepted(dev, false, "device_cc_reject") }
}

/// Returns whether `dev` is accepted into the guest's TEE.
///
/// A single load and bit test, no locking: the answer is stable for callers that hold the device
/// lock or run inside the bound driver's lifetime, since the state only changes while unbound.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
#[export]
pub unsafe extern "C" fn device_cc_accepted(dev: *mut bindings::device) -> bool {
    // SAFETY: `dev` is valid by the function's safety requirements.
    let p = unsafe { (*dev).p };

    // SAFETY: `p` is either NULL or points to the device's live `struct device_private`.
    !p.is_null() && unsafe { bindings::device_private::cc_accepted_raw(p) } != 0
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
    // SAFETY: `dev` is valid by the function's safety requirements.
    if !unsafe { lock_held(dev) } {
        warn_unlocked("device_cc_probe");
    }

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
