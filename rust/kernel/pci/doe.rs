// SPDX-License-Identifier: GPL-2.0

//! PCIe Data Object Exchange (DOE) mailboxes.
//!
//! A DOE mailbox (PCIe r6.0 sec 6.30) carries request/response data objects, for example
//! CMA/SPDM messages, through a device's configuration space. The PCI core finds the mailboxes
//! when it enumerates a device and drives them (`drivers/pci/doe.c`); this module looks one up
//! and exchanges objects on it.
//!
//! An exchange never hangs on a device that stops answering: the DOE core waits at most
//! `PCI_DOE_TIMEOUT` (one second) for the mailbox to become ready and again at most one second
//! for the response, then aborts the exchange (another second at most). A mailbox still busy
//! after the first second fails with `EBUSY`; a missing response fails with `EIO` from
//! `pci_doe()`, which [`Mailbox::exchange`] reports as `ETIMEDOUT`.
//!
//! C header: [`include/linux/pci-doe.h`](srctree/include/linux/pci-doe.h)

use super::Device;
use crate::{
    bindings,
    device,
    prelude::*,
    time::{
        Instant,
        Monotonic, //
    }, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// DOE object type of DOE Discovery.
pub const FEATURE_DISCOVERY: u8 = bindings::PCI_DOE_FEATURE_DISCOVERY as u8;

/// DOE object type of CMA/SPDM (Component Measurement and Authentication).
pub const FEATURE_CMA: u8 = bindings::PCI_DOE_FEATURE_CMA as u8;

/// DOE object type of secured CMA/SPDM (SPDM secure session).
pub const FEATURE_SSESSION: u8 = bindings::PCI_DOE_FEATURE_SSESSION as u8;

/// Alignment `pci_doe()` needs for its payload buffers: it moves them in dwords.
const DWORD: usize = 4;

/// An `EIO` from `pci_doe()` after at least this long is a response timeout: the DOE core
/// polls one second (`PCI_DOE_TIMEOUT`) for the response before it gives up, while the
/// other `EIO` causes (error bit, wrong object type, dead mailbox) show up at once. The margin
/// below one second covers the jiffy granularity of the DOE core's deadline.
const DOE_TIMEOUT_MS: i64 = 900;

/// A DOE mailbox of a PCI device, borrowed for as long as the mailbox is known to exist.
///
/// The PCI core creates a device's mailboxes when it enumerates the device and destroys them
/// after the device has been deleted (`pci_destroy_dev()`), so the borrow must not outlive the
/// device's registration.
///
/// # Invariants
///
/// `mb` points to a valid `struct pci_doe_mb` for the lifetime `'a`, and the mailbox supports
/// objects of vendor `vendor`.
pub struct Mailbox<'a> {
    mb: NonNull<bindings::pci_doe_mb>,
    vendor: u16,
    _p: PhantomData<&'a Device>,
}

impl<'a> Mailbox<'a> {
    /// Finds the first mailbox of `pdev` that supports objects of `vendor` and `object_type`.
    ///
    /// A bound device cannot be deleted before its driver is unbound, so its mailboxes stay
    /// valid for as long as the bound device reference.
    pub fn find(pdev: &'a Device<device::Bound>, vendor: u16, object_type: u8) -> Option<Self> {
        // SAFETY: The device is bound for `'a`, so it has not been deleted and its mailboxes
        // exist for `'a`.
        unsafe { Self::find_unchecked(pdev, vendor, object_type) }
    }

    /// Finds the first mailbox of `pdev` that supports objects of `vendor` and `object_type`.
    ///
    /// # Safety
    ///
    /// The caller guarantees that `pdev` is not deleted from the PCI core during `'a` (for
    /// example because the PCI core holds a lock that removal has to take first), so that
    /// `pci_doe_destroy()` cannot free the mailbox while it is borrowed.
    pub unsafe fn find_unchecked(pdev: &'a Device, vendor: u16, object_type: u8) -> Option<Self> {
        // SAFETY: `pdev.as_raw()` is a valid `struct pci_dev`; its mailbox array is valid until
        // the device is deleted, which the caller rules out.
        let mb = unsafe { bindings::pci_find_doe_mailbox(pdev.as_raw(), vendor, object_type) };

        // INVARIANT: `pci_find_doe_mailbox()` returns NULL or a mailbox of `pdev` that supports
        // `vendor`/`object_type`; it stays valid for `'a` as argued above.
        Some(Self {
            mb: NonNull::new(mb)?,
            vendor,
            _p: PhantomData,
        })
    }

    /// Finds the CMA/SPDM mailbox (vendor PCI-SIG, type [`FEATURE_CMA`]) of a bound device.
    pub fn find_cma(pdev: &'a Device<device::Bound>) -> Option<Self> {
        Self::find(pdev, bindings::PCI_VENDOR_ID_PCI_SIG as u16, FEATURE_CMA)
    }

    /// Sends `request` as one data object of type `object_type` (of the vendor the mailbox was
    /// found for) and receives the response object into `response`.
    ///
    /// Returns the number of response bytes stored. That is the object's payload length in
    /// bytes (a multiple of four) when it fits into `response`, and `response.len()` otherwise:
    /// a larger object is cut off silently, so callers that need to detect that pass a buffer
    /// larger than the largest valid response and treat a full buffer as an error.
    ///
    /// Both payloads are byte streams of any length; the last dword of a request is padded with
    /// zeroes. `pci_doe()` reads and writes the buffers in whole dwords, so buffers that are not
    /// dword aligned are bounced through an aligned allocation.
    ///
    /// Sleeps. Errors: `EINVAL` if the mailbox does not support `object_type`, `EBUSY` if the
    /// mailbox stays busy for one second, `ETIMEDOUT` if the device does not answer within one
    /// second, `EIO` if the device reports an error, answers with another object type, or the
    /// mailbox is dead (device removed), `ENOMEM` if a bounce buffer cannot be allocated.
    pub fn exchange(&self, object_type: u8, request: &[u8], response: &mut [u8]) -> Result<usize> {
        let aligned = |p: *const u8| p.cast::<u32>().is_aligned();
        if aligned(request.as_ptr()) && aligned(response.as_ptr()) {
            return self.exchange_aligned(object_type, request, response);
        }

        let mut req = bounce(request.len())?;
        let mut rsp = bounce(response.len())?;
        let req_bytes = &mut dwords_as_bytes_mut(&mut req)[..request.len()];
        req_bytes.copy_from_slice(request);
        let rsp_bytes = &mut dwords_as_bytes_mut(&mut rsp)[..response.len()];
        let len = self.exchange_aligned(object_type, req_bytes, rsp_bytes)?;
        response[..len].copy_from_slice(&rsp_bytes[..len]);
        Ok(len)
    }

    fn exchange_aligned(
        &self,
        object_type: u8,
        request: &[u8],
        response: &mut [u8],
    ) -> Result<usize> {
        let start = Instant::<Monotonic>::now();
        // `request` and `response` are dword aligned (checked by the caller or allocated as
        // `u32`s); `pci_doe()` accesses at most their lengths (a last partial dword byte-wise).
        // SAFETY: `self.mb` is valid (type invariant); the buffers are valid for reads resp.
        // writes of their lengths; `pci_doe()` finishes before returning and keeps no pointer.
        let ret = unsafe {
            bindings::pci_doe(
                self.mb.as_ptr(),
                self.vendor,
                object_type,
                request.as_ptr().cast(),
                request.len(),
                response.as_mut_ptr().cast(),
                response.len(),
            )
        };
        if ret == EIO.to_errno() && start.elapsed().as_millis() >= DOE_TIMEOUT_MS {
            return Err(ETIMEDOUT);
        }
        let len = crate::error::to_result(ret).map(|()| ret as usize)?;
        // `pci_doe()` never reports more than it was given room for.
        Ok(len.min(response.len()))
    }
}

/// Allocates a zeroed dword buffer of at least `len` bytes.
fn bounce(len: usize) -> Result<KVec<u32>> {
    Ok(KVec::from_elem(0, len.div_ceil(DWORD), GFP_KERNEL)?)
}

/// Views a dword buffer as bytes.
fn dwords_as_bytes_mut(v: &mut [u32]) -> &mut [u8] {
    let len = core::mem::size_of_val(v);
    // SAFETY: `v` is valid for reads and writes of `len` bytes, `u8` has no alignment
    // requirement and every bit pattern is valid for both `u8` and `u32`; the returned slice
    // borrows `v` mutably, so nothing else accesses it meanwhile.
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), len) }
}
