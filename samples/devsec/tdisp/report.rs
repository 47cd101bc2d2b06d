// SPDX-License-Identifier: GPL-2.0

//! TDISP device interface report: the report type, its limits and the BAR description both
//! sides compare it with.
//!
//! Encoding (device side) is in `responder.rs`, decoding and the check against the BARs (TSM
//! side) in `requester.rs`.

use super::codec::TDISP_OVERHEAD;

/// Maximum number of MMIO ranges in an interface report (and of BARs per interface).
pub(crate) const MAX_RANGES: usize = 8;

/// Maximum length of the device-specific blob at the end of an interface report.
pub(crate) const MAX_DEVICE_SPECIFIC: usize = 64;

/// Length of the fixed part of an interface report, up to and including `mmio_range_count`.
pub(crate) const REPORT_FIXED_LEN: usize = 16;

/// Length of one MMIO range in an interface report.
pub(crate) const REPORT_RANGE_LEN: usize = 16;

/// Maximum length of an encoded interface report.
pub(crate) const MAX_REPORT_LEN: usize =
    REPORT_FIXED_LEN + MAX_RANGES * REPORT_RANGE_LEN + 4 + MAX_DEVICE_SPECIFIC;

/// Unit of `first_page` and `number_of_pages` in interface reports: 4 KiB, fixed by TDISP
/// whatever the page size of the host or the guest.
pub(crate) const TDISP_PAGE_SIZE: u64 = 4096;

/// Bytes of a DEVICE_INTERFACE_REPORT response in front of the report portion.
pub(crate) const REPORT_RESPONSE_OVERHEAD: usize = TDISP_OVERHEAD + 4;

/// Length of the largest message of this protocol (a report response carrying a whole
/// [`MAX_REPORT_LEN`] report). Buffers of this size never truncate anything.
pub(crate) const MAX_MESSAGE_LEN: usize = REPORT_RESPONSE_OVERHEAD + MAX_REPORT_LEN;

/// Interface report `interface_info` bits (TDISP 1.0); bits 15:5 are reserved.
pub(crate) mod interface_info {
    /// No firmware update happens after LOCK_INTERFACE.
    pub(crate) const NO_UPDATE_AFTER_LOCK: u16 = 0x1;
    /// DMA without PASID is supported.
    pub(crate) const DMA_WITHOUT_PASID: u16 = 0x2;
    /// DMA with PASID is supported.
    #[cfg(tdisp_requester)]
    pub(crate) const DMA_WITH_PASID: u16 = 0x4;
    /// ATS is supported and enabled.
    #[cfg(tdisp_requester)]
    pub(crate) const ATS: u16 = 0x8;
    /// PRS is supported and enabled.
    #[cfg(tdisp_requester)]
    pub(crate) const PRS: u16 = 0x10;
    /// All defined bits.
    #[cfg(tdisp_requester)]
    pub(crate) const ALL: u16 =
        NO_UPDATE_AFTER_LOCK | DMA_WITHOUT_PASID | DMA_WITH_PASID | ATS | PRS;
}

/// Interface report MMIO range attribute bits (TDISP 1.0); bits 15:4 are reserved.
pub(crate) mod range_attr {
    /// The range holds the MSI-X table. It is TEE memory only if the interface was locked
    /// with LOCK_MSIX.
    pub(crate) const MSIX_TABLE: u16 = 0x1;
    /// The range holds the MSI-X PBA, like [`MSIX_TABLE`] TEE memory only with LOCK_MSIX.
    pub(crate) const MSIX_PBA: u16 = 0x2;
    /// The range is not TEE memory: it stays shared with the host.
    pub(crate) const NON_TEE: u16 = 0x4;
    /// The range may be updated after LOCK_INTERFACE.
    pub(crate) const UPDATABLE: u16 = 0x8;
    /// All defined attributes.
    #[cfg(tdisp_requester)]
    pub(crate) const ALL: u16 = MSIX_TABLE | MSIX_PBA | NON_TEE | UPDATABLE;
}

/// Errors building, encoding or decoding an interface report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportError {
    /// The report ends inside its fixed part or inside `device_specific_len`.
    #[cfg(tdisp_requester)]
    Truncated,
    /// `mmio_range_count` announces more ranges than the report holds.
    #[cfg(tdisp_requester)]
    RangesTruncated,
    /// More than [`MAX_RANGES`] ranges.
    TooManyRanges,
    /// `device_specific_len` does not match the bytes that follow it.
    #[cfg(tdisp_requester)]
    LengthMismatch,
    /// The device-specific blob is longer than [`MAX_DEVICE_SPECIFIC`].
    DeviceSpecificTooLong,
    /// The output buffer is too small.
    #[cfg(tdisp_responder)]
    BufferTooSmall,
}

/// One MMIO range of an interface report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MmioRange {
    /// First page, in 4 KiB units, including the MMIO reporting offset.
    pub(crate) first_page: u64,
    /// Number of 4 KiB pages.
    pub(crate) number_of_pages: u32,
    /// [`range_attr`] bits.
    pub(crate) attributes: u16,
    /// Range ID. Device specific: TDISP gives it no meaning the TSM could check; ranges are
    /// matched to BARs by address.
    pub(crate) range_id: u16,
}

/// A device interface report.
///
/// Layout: `u16 interface_info`, `u16 reserved`, `u16 msi_x_message_control`,
/// `u16 lnr_control`, `u32 tph_control`, `u32 mmio_range_count`, `mmio_range_count` ranges of
/// `{u64 first_page, u32 number_of_pages, u16 attributes, u16 range_id}`,
/// `u32 device_specific_len`, `device_specific_len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InterfaceReport {
    /// [`interface_info`] bits.
    pub(crate) interface_info: u16,
    /// MSI-X message control register value.
    pub(crate) msi_x_message_control: u16,
    /// LN requester control register value.
    pub(crate) lnr_control: u16,
    /// TPH control register value.
    pub(crate) tph_control: u32,
    // The accessors keep `range_count <= MAX_RANGES` and
    // `device_specific_len <= MAX_DEVICE_SPECIFIC`; the encoder and the fault injection in
    // `responder.rs` rely on that but still never index unchecked.
    pub(super) ranges: [MmioRange; MAX_RANGES],
    pub(super) range_count: usize,
    pub(super) device_specific: [u8; MAX_DEVICE_SPECIFIC],
    pub(super) device_specific_len: usize,
}

impl Default for InterfaceReport {
    fn default() -> Self {
        Self::new()
    }
}

impl InterfaceReport {
    /// Returns an empty report.
    pub(crate) const fn new() -> Self {
        Self {
            interface_info: 0,
            msi_x_message_control: 0,
            lnr_control: 0,
            tph_control: 0,
            ranges: [MmioRange {
                first_page: 0,
                number_of_pages: 0,
                attributes: 0,
                range_id: 0,
            }; MAX_RANGES],
            range_count: 0,
            device_specific: [0; MAX_DEVICE_SPECIFIC],
            device_specific_len: 0,
        }
    }

    /// Returns the MMIO ranges.
    pub(crate) fn ranges(&self) -> &[MmioRange] {
        self.ranges.get(..self.range_count).unwrap_or(&[])
    }

    /// Appends an MMIO range.
    pub(crate) fn push_range(&mut self, range: MmioRange) -> Result<(), ReportError> {
        let count = self.range_count;
        let slot = self
            .ranges
            .get_mut(count)
            .ok_or(ReportError::TooManyRanges)?;
        *slot = range;
        self.range_count = count.saturating_add(1);
        Ok(())
    }

    /// Replaces the device-specific blob.
    pub(crate) fn set_device_specific(&mut self, data: &[u8]) -> Result<(), ReportError> {
        let dst = self
            .device_specific
            .get_mut(..data.len())
            .ok_or(ReportError::DeviceSpecificTooLong)?;
        dst.copy_from_slice(data);
        self.device_specific_len = data.len();
        Ok(())
    }
}

/// A BAR of the device as the TSM (or the emulated bus) sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bar {
    /// BAR index (0..=5).
    pub(crate) index: u16,
    /// Physical start address.
    pub(crate) start: u64,
    /// Length in bytes.
    pub(crate) len: u64,
}
