// SPDX-License-Identifier: GPL-2.0

//! Confidential device acceptance, driver side.
//!
//! In a confidential guest a device may only be used once it has been accepted into the guest's
//! Trusted Execution Environment (TEE). Drivers of such devices call [`Device::cc_probe`] first
//! thing in probe; the driver core defers the probe until bus code has accepted the device and
//! then probes it again.
//!
//! Accepting and rejecting devices is the business of bus code and is deliberately not offered
//! here.
//!
//! C header: [`include/linux/device.h`](srctree/include/linux/device.h)

use super::{Core, Device};
use crate::prelude::*;

impl Device<Core<'_>> {
    /// Defers the current probe until the device is accepted into the guest's TEE.
    ///
    /// Returns `Ok(())` when the device is accepted and `EPROBE_DEFER` while acceptance is
    /// pending; the driver core records "TEE acceptance pending" as the deferral reason
    /// (`/sys/kernel/debug/devices_deferred`) and probes again once the device is accepted.
    /// Without `CONFIG_CONFIDENTIAL_DEVICES` every device counts as usable and this returns
    /// `Ok(())`.
    ///
    /// The [`Core`] context proves the call happens inside a bus callback such as `probe()`,
    /// where the driver core holds the device lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{device::Core, pci, prelude::*};
    ///
    /// fn probe_start(pdev: &pci::Device<Core<'_>>) -> Result {
    ///     // Nothing may touch MMIO or DMA before the device is accepted.
    ///     pdev.as_ref().cc_probe()?;
    ///     // ... map BARs, enable DMA ...
    ///     Ok(())
    /// }
    /// ```
    #[inline(never)]
    pub fn cc_probe(&self) -> Result {
        #[cfg(CONFIG_CONFIDENTIAL_DEVICES)]
        {
            // SAFETY: `self.as_raw()` is a valid device, and the `Core` context guarantees that
            // we run inside a bus callback with the device lock held, as the C function requires.
            crate::error::to_result(unsafe { bindings::device_cc_probe(self.as_raw()) })
        }
        #[cfg(not(CONFIG_CONFIDENTIAL_DEVICES))]
        Ok(())
    }
}

impl Device {
    /// Returns whether the device is accepted into the guest's TEE.
    ///
    /// Always `false` without `CONFIG_CONFIDENTIAL_DEVICES`. The answer cannot change while a
    /// driver is bound, since bus code only accepts and rejects unbound devices.
    ///
    /// Like `device_cc_accepted()` in C, this is for code built into the kernel (DMA mapping,
    /// ioremap, IOMMU): the C function is not exported, and this method is always inlined into
    /// its caller, so a module that calls it fails to link exactly as a C module would. Drivers
    /// do not need it: [`Device::cc_probe`] already keeps them from running before acceptance.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::device::Device;
    ///
    /// fn log_state(dev: &Device) {
    ///     let state = if dev.cc_accepted() { "accepted" } else { "not accepted" };
    ///     dev_info!(dev, "device is {}\n", state);
    /// }
    /// ```
    // Always inlined: an out-of-line copy in the kernel crate would be exported to every Rust
    // module and bypass the C export policy.
    #[inline(always)]
    pub fn cc_accepted(&self) -> bool {
        #[cfg(CONFIG_CONFIDENTIAL_DEVICES)]
        {
            // SAFETY: `self.as_raw()` is a valid device for the lifetime of `self`.
            unsafe { bindings::device_cc_accepted(self.as_raw()) }
        }
        #[cfg(not(CONFIG_CONFIDENTIAL_DEVICES))]
        false
    }
}
