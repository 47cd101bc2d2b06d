// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_tdisp_doe`: the DOE data object header and DOE Discovery
//! (`tdisp/doe.rs`).

use kernel::prelude::*;

#[kunit_tests(devsec_tdisp_doe)]
mod tests {
    use crate::tdisp::*;

    // The requester side of DOE, which the kernel's DOE core does for the TSM.

    /// Returns the payload length of `hdr` in dwords.
    fn payload_dw(hdr: DoeHeader) -> u32 {
        hdr.length_dw.saturating_sub(DOE_HEADER_DW)
    }

    /// Builds the payload dword of a DOE Discovery request for `index`.
    fn doe_discovery_request(index: u8) -> u32 {
        u32::from(index)
    }

    /// Splits a DOE Discovery response dword into (vendor, type, next index).
    fn doe_discovery_decode(response: u32) -> (u16, u8, u8) {
        let [vendor_lo, vendor_hi, object_type, next_index] = response.to_le_bytes();
        (
            u16::from_le_bytes([vendor_lo, vendor_hi]),
            object_type,
            next_index,
        )
    }

    // ---- DOE ------------------------------------------------------------------------------

    #[test]
    fn doe_header_round_trips() {
        let hdr = DoeHeader::for_payload(VENDOR_ID_PCI_SIG, DOE_TYPE_CMA, 40);
        assert_eq!(
            hdr,
            Ok(DoeHeader {
                vendor: 1,
                object_type: 1,
                length_dw: 12
            })
        );
        let [dw0, dw1] = hdr.map(|h| h.encode()).unwrap_or([0, 0]);
        assert_eq!(dw0, 0x0001_0001);
        assert_eq!(dw1, 12);
        assert_eq!(DoeHeader::decode(dw0, dw1), hdr);
        assert_eq!(hdr.map(payload_dw), Ok(10));
    }

    #[test]
    fn doe_header_pads_payload_to_dwords() {
        let len = |bytes| DoeHeader::for_payload(1, 1, bytes).map(|h| h.length_dw);
        assert_eq!(len(0), Ok(2));
        assert_eq!(len(1), Ok(3));
        assert_eq!(len(4), Ok(3));
        assert_eq!(len(5), Ok(4));
    }

    #[test]
    fn doe_header_max_length_is_encoded_as_zero() {
        let max_payload = (DOE_MAX_LENGTH_DW as usize - 2) * 4;
        let hdr = DoeHeader::for_payload(1, 1, max_payload);
        assert_eq!(hdr.map(|h| h.length_dw), Ok(DOE_MAX_LENGTH_DW));
        assert_eq!(hdr.map(|h| h.encode()[1]), Ok(0));
        assert_eq!(
            DoeHeader::decode(0x0001_0001, 0).map(|h| h.length_dw),
            Ok(DOE_MAX_LENGTH_DW)
        );
        assert_eq!(
            DoeHeader::for_payload(1, 1, max_payload + 1),
            Err(CodecError::TooLong)
        );
        assert_eq!(
            DoeHeader::for_payload(1, 1, usize::MAX),
            Err(CodecError::TooLong)
        );
    }

    #[test]
    fn doe_header_rejects_length_below_header() {
        assert_eq!(
            DoeHeader::decode(0x0001_0001, 1),
            Err(CodecError::Truncated)
        );
        assert_eq!(DoeHeader::decode(0x0001_0001, 2).map(payload_dw), Ok(0));
        // Bits above the 18-bit length field are reserved and ignored.
        assert_eq!(
            DoeHeader::decode(0x0001_0001, 0xfffc_0005).map(|h| h.length_dw),
            Ok(5)
        );
    }

    #[test]
    fn doe_discovery_request_index_is_low_byte() {
        assert_eq!(doe_discovery_request(5), 5);
        // Bits 15:8 carry the discovery version (2 for DOE capability version 2).
        assert_eq!(doe_discovery_index(0x0000_0201), 1);
        assert_eq!(doe_discovery_index(0xffff_ff00), 0);
    }

    #[test]
    fn doe_discovery_walks_all_features() {
        assert_eq!(doe_discovery_answer(0), 0x0100_0001);
        assert_eq!(doe_discovery_answer(1), 0x0001_0001);
        assert_eq!(doe_discovery_decode(doe_discovery_answer(0)), (1, 0, 1));
        assert_eq!(doe_discovery_decode(doe_discovery_answer(1)), (1, 1, 0));
        assert_eq!(doe_discovery_response(0x1e98, 3, 7), 0x0703_1e98);
    }

    #[test]
    fn doe_discovery_out_of_range_index_ends_walk() {
        assert_eq!(doe_discovery_decode(doe_discovery_answer(2)), (1, 0, 0));
        assert_eq!(doe_discovery_decode(doe_discovery_answer(255)), (1, 0, 0));
    }
}
