// SPDX-License-Identifier: GPL-2.0

//! KUnit tests for confidential device acceptance (`drivers/base/coco.rs`).
//!
//! Every test uses a real platform device and, where a driver is needed, a real platform driver
//! whose probe calls `device_cc_probe()`, so the driver core's own probe, deferral and binding
//! paths are exercised rather than a mock. The suite calls the C entry points declared in
//! `include/linux/device.h`, exactly as bus code and drivers do.
//!
//! Set-up failures are returned as errors, never asserted: outside the `#[kunit_tests]` module
//! an `assert!` would be a kernel panic rather than a failed test case.

use core::{
    ptr,
    sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering},
};
use kernel::{
    bindings::{
        self,
        device_cc_accept,
        device_cc_accepted,
        device_cc_probe,
        device_cc_reject, //
    },
    error::to_result,
    ffi::c_int,
    prelude::*,
    str::CStr,
};

const NAME: &CStr = c"coco-kunit";
/// Name of an unrelated device and driver that binds on its second probe.
const OTHER: &CStr = c"coco-kunit-other";

/// Probe calls seen by the test driver, and the result of the last one.
static PROBES: AtomicU32 = AtomicU32::new(0);
static LAST_PROBE: AtomicI32 = AtomicI32::new(0);
/// Whether the first deferred probe recorded "TEE acceptance pending" as the deferral reason.
static REASON_SEEN: AtomicBool = AtomicBool::new(false);
/// Probe calls seen by the unrelated driver.
static OTHER_PROBES: AtomicU32 = AtomicU32::new(0);

/// Probe callback of the unrelated driver: defers once, as if a resource were missing, then binds.
///
/// # Safety
///
/// Called by the platform bus with a valid device, under its device lock.
unsafe extern "C" fn other_probe(_pdev: *mut bindings::platform_device) -> c_int {
    if OTHER_PROBES.fetch_add(1, Ordering::SeqCst) == 0 {
        EPROBE_DEFER.to_errno()
    } else {
        0
    }
}

/// Runs the driver core's deferred-probe retry, as every successful bind does, and waits for it.
fn retry_deferred() {
    // SAFETY: Both may be called from any process context.
    unsafe {
        bindings::driver_deferred_probe_trigger();
        bindings::wait_for_device_probe();
        bindings::wait_for_device_probe();
    }
}

/// Probe callback of the test driver.
///
/// # Safety
///
/// Called by the platform bus with a valid device, under its device lock.
unsafe extern "C" fn test_probe(pdev: *mut bindings::platform_device) -> c_int {
    // SAFETY: `pdev` is valid for the duration of probe.
    let dev = unsafe { &raw mut (*pdev).dev };
    let first = PROBES.fetch_add(1, Ordering::SeqCst) == 0;
    // SAFETY: `dev` is valid and the driver core holds its lock during probe.
    let ret = unsafe { device_cc_probe(dev) };
    LAST_PROBE.store(ret, Ordering::SeqCst);

    if first && ret == EPROBE_DEFER.to_errno() {
        // On the first probe of a fresh device nothing else references the deferral reason
        // yet: it is not on a deferred list the retry work could clear it from.
        // SAFETY: `dev` is registered, so `p` is valid.
        let reason = unsafe { (*(*dev).p).deferred_probe_reason };
        if !reason.is_null() {
            // SAFETY: The reason is a NUL-terminated string set by `dev_err_probe()`.
            let reason = unsafe { CStr::from_char_ptr(reason) }.to_bytes();
            let want = b"TEE acceptance pending";
            REASON_SEEN.store(
                reason.windows(want.len()).any(|w| w == want),
                Ordering::SeqCst,
            );
        }
    }
    ret
}

/// A registered platform device, optionally with the test driver registered for it.
struct Fixture {
    pdev: *mut bindings::platform_device,
    drv: Option<KBox<bindings::platform_driver>>,
    name: &'static CStr,
    probe: unsafe extern "C" fn(*mut bindings::platform_device) -> c_int,
}

impl Fixture {
    fn new() -> Result<Self> {
        PROBES.store(0, Ordering::SeqCst);
        LAST_PROBE.store(0, Ordering::SeqCst);
        REASON_SEEN.store(false, Ordering::SeqCst);
        Self::with(NAME, test_probe)
    }

    /// A device called `name`, whose driver (see `register_driver`) probes with `probe`.
    fn with(
        name: &'static CStr,
        probe: unsafe extern "C" fn(*mut bindings::platform_device) -> c_int,
    ) -> Result<Self> {
        let id = bindings::PLATFORM_DEVID_AUTO;
        // SAFETY: `name` is NUL-terminated; the core copies it.
        let pdev = unsafe { bindings::platform_device_alloc(name.as_char_ptr(), id) };
        if pdev.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `pdev` was allocated just above and is not yet added.
        if let Err(e) = to_result(unsafe { bindings::platform_device_add(pdev) }) {
            // SAFETY: `pdev` was allocated above and never added.
            unsafe { bindings::platform_device_put(pdev) };
            return Err(e);
        }
        Ok(Self {
            pdev,
            drv: None,
            name,
            probe,
        })
    }

    fn dev(&self) -> *mut bindings::device {
        // SAFETY: `pdev` stays registered until `drop`.
        unsafe { &raw mut (*self.pdev).dev }
    }

    /// Registers the test driver; the driver core probes the device synchronously.
    fn register_driver(&mut self) -> Result {
        // SAFETY: An all-zero `platform_driver` is a valid "no callbacks" driver.
        let mut drv: bindings::platform_driver = unsafe { core::mem::zeroed() };
        drv.driver.name = self.name.as_char_ptr();
        drv.driver.probe_type = bindings::probe_type_PROBE_FORCE_SYNCHRONOUS;
        drv.probe = Some(self.probe);
        let mut drv = KBox::new(drv, GFP_KERNEL)?;
        let (owner, modname) = (ptr::null_mut(), self.name.as_char_ptr());
        // SAFETY: `drv` is fully initialised and lives in the heap until it is unregistered
        // in `drop`; built-in code has no owning module.
        to_result(unsafe { bindings::__platform_driver_register(&mut *drv, owner, modname) })?;
        self.drv = Some(drv);
        Ok(())
    }

    /// Runs `f` with the device lock held, as bus code does.
    fn locked<R>(&self, f: impl FnOnce(*mut bindings::device) -> R) -> R {
        let dev = self.dev();
        // SAFETY: `dev` is valid; its mutex is initialised.
        unsafe { bindings::mutex_lock(&raw mut (*dev).mutex) };
        let r = f(dev);
        // SAFETY: Locked just above.
        unsafe { bindings::mutex_unlock(&raw mut (*dev).mutex) };
        r
    }

    fn accept(&self) -> c_int {
        // SAFETY: `dev` is valid and locked by `locked`.
        self.locked(|dev| unsafe { device_cc_accept(dev) })
    }

    fn reject(&self) -> c_int {
        // SAFETY: `dev` is valid and locked by `locked`.
        self.locked(|dev| unsafe { device_cc_reject(dev) })
    }

    fn accepted(&self) -> bool {
        // SAFETY: `dev` is valid.
        unsafe { device_cc_accepted(self.dev()) }
    }

    fn bound(&self) -> bool {
        // SAFETY: `dev` is valid.
        self.locked(|dev| !unsafe { (*dev).driver }.is_null())
    }

    /// Asks the driver core to probe the device again (what bus code does after acceptance).
    fn attach(&self) -> c_int {
        // SAFETY: `dev` is valid and registered.
        unsafe { bindings::device_attach(self.dev()) }
    }

    fn release_driver(&self) {
        // SAFETY: `dev` is valid and registered.
        unsafe { bindings::device_release_driver(self.dev()) };
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut drv) = self.drv.take() {
            // SAFETY: Registered in `register_driver`.
            unsafe { bindings::platform_driver_unregister(&mut *drv) };
        }
        // SAFETY: Registered in `new`; not used afterwards.
        unsafe { bindings::platform_device_unregister(self.pdev) };
    }
}

#[kunit_tests(device_cc)]
mod tests {
    use super::*;

    #[test]
    fn new_device_is_not_accepted() -> Result {
        let f = Fixture::new()?;
        assert!(!f.accepted());
        Ok(())
    }

    #[test]
    fn accept_without_driver_succeeds() -> Result {
        let f = Fixture::new()?;
        assert_eq!(f.accept(), 0);
        assert!(f.accepted());
        Ok(())
    }

    #[test]
    fn reject_without_driver_succeeds() -> Result {
        let f = Fixture::new()?;
        assert_eq!(f.accept(), 0);
        assert_eq!(f.reject(), 0);
        assert!(!f.accepted());
        Ok(())
    }

    #[test]
    fn accept_is_idempotent() -> Result {
        let f = Fixture::new()?;
        assert_eq!(f.accept(), 0);
        assert_eq!(f.accept(), 0);
        assert!(f.accepted());
        assert_eq!(f.reject(), 0);
        assert_eq!(f.reject(), 0);
        assert!(!f.accepted());
        Ok(())
    }

    #[test]
    fn probe_without_driver_is_einval() -> Result {
        let f = Fixture::new()?;
        // SAFETY: `dev` is valid and locked by `locked`.
        let ret = f.locked(|dev| unsafe { device_cc_probe(dev) });
        assert_eq!(ret, EINVAL.to_errno());
        Ok(())
    }

    #[test]
    fn probe_defers_while_pending() -> Result {
        let mut f = Fixture::new()?;
        f.register_driver()?;
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);
        assert_eq!(LAST_PROBE.load(Ordering::SeqCst), EPROBE_DEFER.to_errno());
        assert!(REASON_SEEN.load(Ordering::SeqCst));
        assert!(!f.bound());
        assert!(!f.accepted());
        Ok(())
    }

    #[test]
    fn probe_after_accept_binds() -> Result {
        let mut f = Fixture::new()?;
        f.register_driver()?;
        assert!(!f.bound());
        assert_eq!(f.accept(), 0);
        assert_eq!(f.attach(), 1);
        assert_eq!(LAST_PROBE.load(Ordering::SeqCst), 0);
        assert!(f.bound());
        Ok(())
    }

    #[test]
    fn accepted_before_driver_binds_at_once() -> Result {
        let mut f = Fixture::new()?;
        assert_eq!(f.accept(), 0);
        f.register_driver()?;
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);
        assert_eq!(LAST_PROBE.load(Ordering::SeqCst), 0);
        assert!(f.bound());
        Ok(())
    }

    #[test]
    fn accept_reject_with_driver_bound_is_ebusy() -> Result {
        let mut f = Fixture::new()?;
        assert_eq!(f.accept(), 0);
        f.register_driver()?;
        assert!(f.bound());
        assert_eq!(f.reject(), EBUSY.to_errno());
        assert!(f.accepted());
        assert_eq!(f.accept(), EBUSY.to_errno());
        assert!(f.accepted());
        Ok(())
    }

    #[test]
    fn reject_then_probe_defers_again() -> Result {
        let mut f = Fixture::new()?;
        assert_eq!(f.accept(), 0);
        f.register_driver()?;
        assert!(f.bound());
        f.release_driver();
        assert!(!f.bound());
        assert_eq!(f.reject(), 0);
        assert!(!f.accepted());
        assert_eq!(f.attach(), 0);
        assert_eq!(LAST_PROBE.load(Ordering::SeqCst), EPROBE_DEFER.to_errno());
        assert!(!f.bound());
        Ok(())
    }

    #[test]
    fn waiting_device_is_not_retried_by_unrelated_bind() -> Result {
        let mut f = Fixture::new()?;
        f.register_driver()?;
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);

        // An unrelated device defers for another reason, then binds on the retry: the retry
        // works, and the bind triggers it again, yet the device waiting for acceptance is not
        // probed by either.
        OTHER_PROBES.store(0, Ordering::SeqCst);
        let mut other = Fixture::with(OTHER, other_probe)?;
        other.register_driver()?;
        assert_eq!(OTHER_PROBES.load(Ordering::SeqCst), 1);
        retry_deferred();
        assert_eq!(OTHER_PROBES.load(Ordering::SeqCst), 2);
        assert!(other.bound());
        retry_deferred();
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);
        assert!(!f.bound());
        Ok(())
    }

    #[test]
    fn waiting_device_is_probed_once_on_accept() -> Result {
        let mut f = Fixture::new()?;
        f.register_driver()?;
        retry_deferred();
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);
        assert_eq!(f.accept(), 0);
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);
        assert_eq!(f.attach(), 1);
        assert_eq!(PROBES.load(Ordering::SeqCst), 2);
        assert!(f.bound());
        retry_deferred();
        assert_eq!(PROBES.load(Ordering::SeqCst), 2);
        Ok(())
    }

    #[test]
    fn accepted_waiting_device_is_retried_by_trigger() -> Result {
        // Once accepted, the device is back in the ordinary regime: a retry probes and binds it.
        let mut f = Fixture::new()?;
        f.register_driver()?;
        assert_eq!(f.accept(), 0);
        retry_deferred();
        assert_eq!(PROBES.load(Ordering::SeqCst), 2);
        assert_eq!(LAST_PROBE.load(Ordering::SeqCst), 0);
        assert!(f.bound());
        Ok(())
    }

    #[test]
    fn reject_while_waiting_parks_again() -> Result {
        let mut f = Fixture::new()?;
        f.register_driver()?;
        assert_eq!(f.accept(), 0);
        assert_eq!(f.reject(), 0);
        retry_deferred();
        assert_eq!(PROBES.load(Ordering::SeqCst), 1);
        assert!(!f.bound());
        assert!(!f.accepted());

        // Still waiting: an explicit attach probes it, it defers and stays parked.
        assert_eq!(f.attach(), 0);
        assert_eq!(PROBES.load(Ordering::SeqCst), 2);
        assert_eq!(LAST_PROBE.load(Ordering::SeqCst), EPROBE_DEFER.to_errno());
        retry_deferred();
        assert_eq!(PROBES.load(Ordering::SeqCst), 2);
        Ok(())
    }

    #[test]
    fn accepted_is_false_for_unregistered_device() -> Result {
        // SAFETY: An all-zero `struct device` that was never added has a NULL `p`.
        let mut dev: bindings::device = unsafe { core::mem::zeroed() };
        // SAFETY: `dev` is a valid (if unregistered) `struct device` on our stack.
        assert!(!unsafe { device_cc_accepted(&mut dev) });
        Ok(())
    }
}
