// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_tdisp_requester`: the TSM side (`tdisp/requester.rs`), response
//! validation and report assembly.

use kernel::prelude::*;

#[kunit_tests(devsec_tdisp_requester)]
mod tests {
    use crate::suites::common::*;
    use crate::tdisp::*;

    // ---- Requester ------------------------------------------------------------------------

    #[test]
    fn requester_rejects_unexpected_response_type() {
        let host = Requester::new(FID);
        let rsp = encode_rsp(FID, &Response::DeviceInterfaceState(State::Run));
        assert_eq!(
            host.parse_lock(rsp.bytes()),
            Err(RequesterError::UnexpectedResponse {
                expected: 0x03,
                got: 0x05
            })
        );
        assert_eq!(host.parse_state(rsp.bytes()), Ok(State::Run));
    }

    #[test]
    fn requester_surfaces_tdisp_error() {
        let host = Requester::new(FID);
        let rsp = encode_rsp(
            FID,
            &Response::Error {
                code: ErrorCode::Busy as u32,
                data: 9,
                ext: &[],
            },
        );
        let err = RequesterError::Tdisp { code: 3, data: 9 };
        assert_eq!(host.parse_version(rsp.bytes()), Err(err));
        assert_eq!(host.parse_capabilities(rsp.bytes()).err(), Some(err));
        assert_eq!(host.parse_lock(rsp.bytes()), Err(err));
        assert_eq!(host.parse_report(rsp.bytes()), Err(err));
        assert_eq!(host.parse_state(rsp.bytes()), Err(err));
        assert_eq!(host.parse_start(rsp.bytes()), Err(err));
        assert_eq!(host.parse_stop(rsp.bytes()), Err(err));
    }

    #[test]
    fn requester_rejects_other_interface() {
        let host = Requester::new(FID);
        let rsp = encode_rsp(OTHER_FID, &Response::StopInterface);
        assert_eq!(
            host.parse_stop(rsp.bytes()),
            Err(RequesterError::InterfaceMismatch {
                expected: iid(FID),
                got: iid(OTHER_FID)
            })
        );
    }

    #[test]
    fn requester_compares_reserved_interface_id_bytes() {
        let host = Requester::new(FID);
        let id = InterfaceId {
            function_id: FID,
            reserved: 0x100,
        };
        let rsp = encode_rsp_as(SPDM_VERSION, id, &Response::StopInterface);
        assert_eq!(
            host.parse_stop(rsp.bytes()),
            Err(RequesterError::InterfaceMismatch {
                expected: iid(FID),
                got: id
            })
        );
        let rsp = encode_rsp(FID, &Response::StopInterface);
        assert_eq!(host.parse_stop(rsp.bytes()), Ok(()));
    }

    #[test]
    fn vendor_specific_error_is_decoded_with_its_extended_data() {
        let host = Requester::new(FID);
        // registry ID 0, vendor ID length 2, vendor ID, two bytes of vendor error data.
        let ext = [0u8, 2, 0x86, 0x80, 0x12, 0x34];
        let rsp = encode_rsp(
            FID,
            &Response::Error {
                code: ErrorCode::VendorSpecificError as u32,
                data: 0,
                ext: &ext,
            },
        );
        assert_eq!(
            decode_response(rsp.bytes()).map(|(_, rsp)| rsp),
            Ok(Response::Error {
                code: 0xff,
                data: 0,
                ext: &ext
            })
        );
        assert_eq!(
            host.parse_lock(rsp.bytes()),
            Err(RequesterError::Tdisp {
                code: 0xff,
                data: 0
            })
        );
        // Without vendor error data, and with an empty vendor ID, still well formed.
        for ext in [&[0u8, 2, 0x86, 0x80][..], &[1, 0][..]] {
            let rsp = encode_rsp(
                FID,
                &Response::Error {
                    code: 0xff,
                    data: 0,
                    ext,
                },
            );
            assert!(matches!(
                decode_response(rsp.bytes()),
                Ok((_, Response::Error { code: 0xff, .. }))
            ));
        }
    }

    #[test]
    fn vendor_specific_error_with_truncated_vendor_id_is_malformed() {
        for ext in [&[][..], &[0u8][..], &[0, 2, 0x86][..], &[0, 255][..]] {
            let rsp = encode_rsp(
                FID,
                &Response::Error {
                    code: 0xff,
                    data: 0,
                    ext,
                },
            );
            assert_eq!(decode_response(rsp.bytes()), Err(CodecError::Truncated));
        }
        // Other errors carry no extended data.
        let rsp = encode_rsp(
            FID,
            &Response::Error {
                code: ErrorCode::Busy as u32,
                data: 0,
                ext: &[0, 0],
            },
        );
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::TrailingBytes));
    }

    #[test]
    fn spdm_error_is_reported_as_such() {
        let host = Requester::new(FID);
        let rsp = [
            SPDM_VERSION,
            SPDM_ERROR,
            spdm_error::UNSUPPORTED_REQUEST,
            0xfe,
        ];
        let err = RequesterError::Spdm {
            code: spdm_error::UNSUPPORTED_REQUEST,
            data: 0xfe,
        };
        assert_eq!(host.parse_version(&rsp), Err(err));
        assert_eq!(host.parse_lock(&rsp), Err(err));
        assert_eq!(host.parse_stop(&rsp), Err(err));
        // Extended error data up to 32 bytes is allowed, more is malformed.
        let mut long = [0u8; 4 + 33];
        long[..4].copy_from_slice(&rsp);
        assert_eq!(host.parse_stop(&long[..36]), Err(err));
        assert!(matches!(
            host.parse_stop(&long),
            Err(RequesterError::Codec(_))
        ));
        // An SPDM ERROR in another version is not an answer to our requests.
        let other = [0x11, SPDM_ERROR, spdm_error::INVALID_REQUEST, 0];
        assert_eq!(
            host.parse_stop(&other),
            Err(RequesterError::Codec(CodecError::BadSpdmVersion(0x11)))
        );
        assert_eq!(decode_spdm_error(&rsp[..3]), None);
    }

    #[test]
    fn requester_rejects_zero_nonce() {
        let host = Requester::new(FID);
        let rsp = encode_rsp(FID, &Response::LockInterface { nonce: [0; 32] });
        assert_eq!(host.parse_lock(rsp.bytes()), Err(RequesterError::ZeroNonce));
    }

    #[test]
    fn requester_rejects_version_list_without_1_0() {
        let host = Requester::new(FID);
        let rsp = encode_rsp(FID, &Response::Version { versions: &[0x11] });
        assert_eq!(
            host.parse_version(rsp.bytes()),
            Err(RequesterError::VersionUnsupported)
        );
        let rsp = encode_rsp(FID, &Response::Version { versions: &[] });
        assert_eq!(
            host.parse_version(rsp.bytes()),
            Err(RequesterError::VersionUnsupported)
        );
    }

    #[test]
    fn requester_rejects_malformed_response() {
        let host = Requester::new(FID);
        assert_eq!(
            host.parse_state(&[]),
            Err(RequesterError::Codec(CodecError::Truncated))
        );
        let req = encode(FID, &Request::GetDeviceInterfaceState);
        assert_eq!(
            host.parse_state(req.bytes()),
            Err(RequesterError::Codec(CodecError::BadSpdmCode(0xfe)))
        );
    }

    #[test]
    fn assembler_requests_pages_until_complete() {
        let mut asm = ReportAssembler::new(4);
        assert_eq!(
            asm.next_request(),
            Some(Request::GetDeviceInterfaceReport {
                offset: 0,
                length: 4
            })
        );
        assert_eq!(asm.add(&[1, 2, 3, 4], 2), Ok(()));
        assert_eq!(
            asm.next_request(),
            Some(Request::GetDeviceInterfaceReport {
                offset: 4,
                length: 4
            })
        );
        assert_eq!(asm.add(&[5, 6], 0), Ok(()));
        assert_eq!(asm.next_request(), None);
        assert!(asm.is_complete());
        assert_eq!(asm.bytes(), &[1, 2, 3, 4, 5, 6][..]);
        assert_eq!(
            asm.report().map(|r| r.ranges().len()),
            Err(RequesterError::Report(ReportError::Truncated))
        );
    }

    #[test]
    fn assembler_rejects_inconsistent_total() {
        let mut asm = ReportAssembler::new(4);
        assert_eq!(asm.add(&[1, 2, 3, 4], 4), Ok(()));
        assert_eq!(asm.add(&[5, 6], 1), Err(RequesterError::ReportInconsistent));
        assert!(!asm.is_complete());
        assert_eq!(asm.report(), Err(RequesterError::ReportInconsistent));
    }

    #[test]
    fn assembler_rejects_portion_longer_than_requested() {
        let mut asm = ReportAssembler::new(4);
        assert_eq!(asm.add(&[0; 5], 0), Err(RequesterError::ReportInconsistent));
    }

    #[test]
    fn assembler_rejects_empty_portion_with_remainder() {
        let mut asm = ReportAssembler::new(4);
        assert_eq!(asm.add(&[], 1), Err(RequesterError::ReportNoProgress));
    }

    #[test]
    fn assembler_rejects_oversized_report() {
        let mut asm = ReportAssembler::new(4);
        assert_eq!(
            asm.add(&[0; 4], (MAX_REPORT_LEN - 3) as u16),
            Err(RequesterError::ReportTooLarge)
        );
        assert_eq!(
            asm.add(&[0; 4], 0xffff),
            Err(RequesterError::ReportTooLarge)
        );
        assert_eq!(asm.add(&[0; 4], (MAX_REPORT_LEN - 4) as u16), Ok(()));
    }

    #[test]
    fn assembler_page_of_zero_requests_one_byte() {
        let asm = ReportAssembler::new(0);
        assert_eq!(
            asm.next_request(),
            Some(Request::GetDeviceInterfaceReport {
                offset: 0,
                length: 1
            })
        );
    }

    #[test]
    fn fetch_report_passes_transport_errors_through() {
        let host = Requester::new(FID);
        let mut calls = 0;
        let result = host.fetch_report(16, |_: &[u8], _: &mut [u8]| {
            calls += 1;
            Err::<usize, RequesterError>(RequesterError::ReportNoProgress)
        });
        assert_eq!(result.err(), Some(RequesterError::ReportNoProgress));
        assert_eq!(calls, 1);
    }

    #[test]
    fn fetch_report_rejects_device_error() {
        let mut bench = Bench::new();
        assert_eq!(
            bench.fetch(16),
            Err(RequesterError::Tdisp {
                code: ErrorCode::InvalidInterfaceState as u32,
                data: 0
            })
        );
    }

    #[test]
    fn requester_reports_its_interface() {
        assert_eq!(Requester::new(FID).function_id(), FID);
        assert_eq!(Requester::new(OTHER_FID).function_id(), OTHER_FID);
    }
}
