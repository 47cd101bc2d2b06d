// SPDX-License-Identifier: GPL-2.0

//! DOE data object header and DOE Discovery, device side.
//!
//! Used by the emulated mailbox of the devsec bus; the TSM goes through the kernel's DOE core
//! instead. The object types and the PCI-SIG vendor ID are spelled as in the DOE
//! specification. This file depends only on `core`, so it cannot name the kernel's
//! `PCI_DOE_FEATURE_*` and `PCI_VENDOR_ID_PCI_SIG`; the kernel-side user checks at compile
//! time that the values agree (see the `tdisp` module in `devsec_bus.rs`).

use super::codec::{CodecError, VENDOR_ID_PCI_SIG};

/// DOE object type: DOE Discovery.
pub(crate) const DOE_TYPE_DISCOVERY: u8 = 0;

/// DOE object type: CMA/SPDM.
pub(crate) const DOE_TYPE_CMA: u8 = 1;

/// Length of a DOE object header in dwords.
pub(crate) const DOE_HEADER_DW: u32 = 2;

/// Maximum length of a DOE object in dwords (encoded as 0 in the header).
pub(crate) const DOE_MAX_LENGTH_DW: u32 = 1 << 18;

/// The (vendor, type) pairs answered by DOE Discovery, in index order.
pub(crate) const DOE_FEATURES: [(u16, u8); 2] = [
    (VENDOR_ID_PCI_SIG, DOE_TYPE_DISCOVERY),
    (VENDOR_ID_PCI_SIG, DOE_TYPE_CMA),
];

/// Header of a DOE data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DoeHeader {
    /// Vendor ID of the object type.
    pub(crate) vendor: u16,
    /// Object type.
    pub(crate) object_type: u8,
    /// Length of the object in dwords, header included (2 ..= [`DOE_MAX_LENGTH_DW`]).
    pub(crate) length_dw: u32,
}

impl DoeHeader {
    /// Builds the header of an object carrying `payload_len` bytes (padded to dwords).
    pub(crate) fn for_payload(
        vendor: u16,
        object_type: u8,
        payload_len: usize,
    ) -> Result<Self, CodecError> {
        let payload_dw = payload_len.div_ceil(4);
        let length_dw = u32::try_from(payload_dw)
            .ok()
            .and_then(|dw| dw.checked_add(DOE_HEADER_DW))
            .filter(|&dw| dw <= DOE_MAX_LENGTH_DW)
            .ok_or(CodecError::TooLong)?;
        Ok(Self {
            vendor,
            object_type,
            length_dw,
        })
    }

    /// Returns the two header dwords.
    pub(crate) fn encode(&self) -> [u32; 2] {
        let dw0 = u32::from(self.vendor) | (u32::from(self.object_type) << 16);
        // The maximum length is encoded as 0.
        let dw1 = self.length_dw & (DOE_MAX_LENGTH_DW - 1);
        [dw0, dw1]
    }

    /// Parses the two header dwords; a length below the header size is rejected.
    pub(crate) fn decode(dw0: u32, dw1: u32) -> Result<Self, CodecError> {
        let [vendor_lo, vendor_hi, object_type, _] = dw0.to_le_bytes();
        let length_dw = match dw1 & (DOE_MAX_LENGTH_DW - 1) {
            0 => DOE_MAX_LENGTH_DW,
            n if n < DOE_HEADER_DW => return Err(CodecError::Truncated),
            n => n,
        };
        Ok(Self {
            vendor: u16::from_le_bytes([vendor_lo, vendor_hi]),
            object_type,
            length_dw,
        })
    }
}

/// Extracts the index (bits 7:0) from a DOE Discovery request payload dword.
pub(crate) fn doe_discovery_index(request: u32) -> u8 {
    let [index, ..] = request.to_le_bytes();
    index
}

/// Builds a DOE Discovery response dword: vendor[15:0], type[23:16], next index[31:24].
pub(crate) fn doe_discovery_response(vendor: u16, object_type: u8, next_index: u8) -> u32 {
    u32::from(vendor) | (u32::from(object_type) << 16) | (u32::from(next_index) << 24)
}

/// Answers a DOE Discovery request for `index` from [`DOE_FEATURES`].
///
/// The last entry has next index 0, which ends the requester's walk. An index past the end
/// is answered with entry 0 and next index 0, so a confused requester terminates too.
pub(crate) fn doe_discovery_answer(index: u8) -> u32 {
    let slot = usize::from(index);
    match DOE_FEATURES.get(slot) {
        Some(&(vendor, object_type)) => {
            let next = match DOE_FEATURES.get(slot + 1) {
                Some(_) => index.wrapping_add(1),
                None => 0,
            };
            doe_discovery_response(vendor, object_type, next)
        }
        None => doe_discovery_response(VENDOR_ID_PCI_SIG, DOE_TYPE_DISCOVERY, 0),
    }
}
