// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_tdisp_codec`: the protocol constants and the SPDM/TDISP message
//! codec (`tdisp/codec.rs`, with the codec halves in `tdisp/responder.rs` and
//! `tdisp/requester.rs`).

use kernel::prelude::*;

#[kunit_tests(devsec_tdisp_codec)]
mod tests {
    use crate::suites::common::*;
    use crate::tdisp::*;

    // ---- Constants ------------------------------------------------------------------------

    #[test]
    fn function_id_layout() {
        assert_eq!(function_id(0x0100, None), 0x0000_0100);
        assert_eq!(function_id(0xabcd, Some(0x12)), 0x0112_abcd);
        assert_eq!(FID, 0x0101_0100);
    }

    #[test]
    fn message_types_have_spec_codes_and_directions() {
        for code in 0u8..=255 {
            if let Some(t) = MessageType::from_u8(code) {
                assert_eq!(t as u8, code);
                assert_eq!(t.is_request(), code >= 0x80);
                assert!(!t.name().is_empty());
            }
        }
        assert_eq!(MessageType::from_u8(0x83), Some(MessageType::LockInterface));
        assert_eq!(MessageType::from_u8(0x7f), Some(MessageType::Error));
        assert_eq!(MessageType::from_u8(0x80), None);
        assert_eq!(MessageType::from_u8(0x88), None);
        assert_eq!(MessageType::from_u8(0x08), None);
        assert_eq!(MessageType::Error.name(), "TDISP_ERROR");
    }

    #[test]
    fn error_codes_have_spec_values_and_names() {
        let codes = [
            (ErrorCode::InvalidRequest, 0x1, "INVALID_REQUEST"),
            (ErrorCode::Busy, 0x3, "BUSY"),
            (
                ErrorCode::InvalidInterfaceState,
                0x4,
                "INVALID_INTERFACE_STATE",
            ),
            (ErrorCode::Unspecified, 0x5, "UNSPECIFIED"),
            (ErrorCode::UnsupportedRequest, 0x7, "UNSUPPORTED_REQUEST"),
            (ErrorCode::VersionMismatch, 0x41, "VERSION_MISMATCH"),
            (
                ErrorCode::VendorSpecificError,
                0xff,
                "VENDOR_SPECIFIC_ERROR",
            ),
            (ErrorCode::InvalidInterface, 0x101, "INVALID_INTERFACE"),
            (ErrorCode::InvalidNonce, 0x102, "INVALID_NONCE"),
            (
                ErrorCode::InsufficientEntropy,
                0x103,
                "INSUFFICIENT_ENTROPY",
            ),
            (
                ErrorCode::InvalidDeviceConfiguration,
                0x104,
                "INVALID_DEVICE_CONFIGURATION",
            ),
        ];
        for (code, value, name) in codes {
            assert_eq!(code as u32, value);
            assert_eq!(ErrorCode::from_u32(value), Some(code));
            assert_eq!(code.name(), name);
        }
        assert_eq!(ErrorCode::from_u32(0), None);
        assert_eq!(ErrorCode::from_u32(0x2), None);
        assert_eq!(ErrorCode::from_u32(0x105), None);
    }

    #[test]
    fn states_have_spec_values_and_names() {
        let states = [
            (State::ConfigUnlocked, 0, "CONFIG_UNLOCKED"),
            (State::ConfigLocked, 1, "CONFIG_LOCKED"),
            (State::Run, 2, "RUN"),
            (State::Error, 3, "ERROR"),
        ];
        for (state, value, name) in states {
            assert_eq!(state as u8, value);
            assert_eq!(State::from_u8(value), Some(state));
            assert_eq!(state.name(), name);
        }
        assert_eq!(State::from_u8(4), None);
    }

    #[test]
    fn flag_and_attribute_bits_match_spec() {
        assert_eq!(lock_flags::NO_FW_UPDATE, 0x1);
        assert_eq!(lock_flags::SYSTEM_CACHE_LINE_SIZE, 0x2);
        assert_eq!(lock_flags::LOCK_MSIX, 0x4);
        assert_eq!(lock_flags::BIND_P2P, 0x8);
        assert_eq!(lock_flags::ALL_REQUEST_REDIRECT, 0x10);
        assert_eq!(interface_info::NO_UPDATE_AFTER_LOCK, 0x1);
        assert_eq!(interface_info::DMA_WITHOUT_PASID, 0x2);
        assert_eq!(interface_info::DMA_WITH_PASID, 0x4);
        assert_eq!(interface_info::ATS, 0x8);
        assert_eq!(interface_info::PRS, 0x10);
        assert_eq!(interface_info::ALL, 0x1f);
        assert_eq!(range_attr::ALL, 0xf);
        assert_eq!(SPDM_ERROR, 0x7f);
        assert_eq!(spdm_error::INVALID_REQUEST, 0x01);
        assert_eq!(spdm_error::UNSUPPORTED_REQUEST, 0x07);
        assert_eq!(spdm_error::VERSION_MISMATCH, 0x41);
        assert_eq!(ErrorCode::VendorSpecificError as u32, 0xff);
        assert_eq!(range_attr::MSIX_TABLE, 0x1);
        assert_eq!(range_attr::MSIX_PBA, 0x2);
        assert_eq!(range_attr::NON_TEE, 0x4);
        assert_eq!(range_attr::UPDATABLE, 0x8);
    }

    #[test]
    fn limits_are_consistent() {
        assert_eq!(MAX_REPORT_LEN, 16 + 8 * 16 + 4 + 64);
        assert_eq!(MAX_MESSAGE_LEN, 11 + 1 + 16 + 4 + MAX_REPORT_LEN);
        assert_eq!(MIN_RESPONSE_LEN, 11 + 1 + 16 + 32);
    }

    // ---- SPDM / TDISP codec ---------------------------------------------------------------

    #[test]
    fn request_wire_layout() {
        let msg = encode(
            FID,
            &Request::GetDeviceInterfaceReport {
                offset: 0x1234,
                length: 0x40,
            },
        );
        let expected: [u8; 32] = [
            0x12, 0xfe, 0, 0, 0x03, 0, 2, 0x01, 0, 21, 0,    // SPDM VENDOR_DEFINED_REQUEST
            0x01, // protocol ID: TDISP
            0x10, 0x84, 0, 0, 0x00, 0x01, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, // header
            0x34, 0x12, 0x40, 0, // offset, length
        ];
        assert_eq!(msg.bytes(), &expected[..]);
    }

    #[test]
    fn response_wire_layout() {
        let msg = encode_rsp(
            FID,
            &Response::Error {
                code: ErrorCode::InvalidNonce as u32,
                data: 7,
                ext: &[],
            },
        );
        let expected: [u8; 36] = [
            0x12, 0x7e, 0, 0, 0x03, 0, 2, 0x01, 0, 25, 0,    // SPDM VENDOR_DEFINED_RESPONSE
            0x01, // protocol ID: TDISP
            0x10, 0x7f, 0, 0, 0x00, 0x01, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, // header
            0x02, 0x01, 0, 0, 7, 0, 0, 0, // error code, error data
        ];
        assert_eq!(msg.bytes(), &expected[..]);
    }

    #[test]
    fn lock_request_wire_layout() {
        let msg = encode(
            FID,
            &Request::LockInterface(LockParams {
                flags: 0x0011,
                default_stream_id: 5,
                mmio_reporting_offset: 0x0102_0304_0506_0708,
                bind_p2p_address_mask: 0xffff_0000,
            }),
        );
        assert_eq!(msg.len, 28 + 20);
        assert_eq!(
            msg.buf.get(28..48),
            Some(&[0x11, 0, 5, 0, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0][..])
        );
    }

    #[test]
    fn every_request_round_trips() {
        let mut nonce = [0u8; NONCE_LEN];
        fill(&mut 7, &mut nonce);
        let requests = [
            Request::GetVersion,
            Request::GetCapabilities { tsm_caps: 0xa5a5 },
            Request::LockInterface(LockParams {
                flags: ALL_LOCK_FLAGS,
                default_stream_id: 3,
                mmio_reporting_offset: OFFSET,
                bind_p2p_address_mask: u64::MAX,
            }),
            Request::GetDeviceInterfaceReport {
                offset: 17,
                length: 0xffff,
            },
            Request::GetDeviceInterfaceState,
            Request::StartInterface { nonce },
            Request::StopInterface,
        ];
        for req in requests {
            let msg = encode(OTHER_FID, &req);
            assert!(msg.len >= TDISP_OVERHEAD);
            assert_eq!(decode_request(msg.bytes()), Ok((iid(OTHER_FID), req)));
        }
    }

    #[test]
    fn every_response_round_trips() {
        let mut nonce = [0u8; NONCE_LEN];
        fill(&mut 9, &mut nonce);
        let caps = Capabilities {
            dsm_caps: 1,
            req_msgs_supported: [0xfe; 16],
            lock_flags_supported: 0x1f,
            dev_addr_width: 52,
            num_req_this: 2,
            num_req_all: 3,
        };
        let portion = [1u8, 2, 3, 4, 5];
        let responses = [
            Response::Version {
                versions: &[0x10, 0x11],
            },
            Response::Capabilities(caps),
            Response::LockInterface { nonce },
            Response::DeviceInterfaceReport {
                portion: &portion,
                remainder: 99,
            },
            Response::DeviceInterfaceReport {
                portion: &[],
                remainder: 0,
            },
            Response::DeviceInterfaceState(State::Run),
            Response::StartInterface,
            Response::StopInterface,
            Response::Error {
                code: 4,
                data: 2,
                ext: &[],
            },
            Response::Error {
                code: ErrorCode::VendorSpecificError as u32,
                data: 0,
                ext: &[0, 2, 0x34, 0x12, 0xde, 0xad],
            },
        ];
        for rsp in responses {
            let msg = encode_rsp(FID, &rsp);
            assert!(msg.len >= TDISP_OVERHEAD);
            assert_eq!(decode_response(msg.bytes()), Ok((iid(FID), rsp)));
        }
    }

    #[test]
    fn spdm_layer_faults_map_to_spdm_error_codes() {
        assert_eq!(
            CodecError::BadSpdmVersion(0x20).spdm_error(),
            (spdm_error::VERSION_MISMATCH, 0)
        );
        assert_eq!(
            CodecError::BadSpdmCode(0x81).spdm_error(),
            (spdm_error::UNSUPPORTED_REQUEST, 0x81)
        );
        for err in [
            CodecError::BadStandardId(4),
            CodecError::BadVendorIdLen(0),
            CodecError::BadVendorId(0x8086),
            CodecError::BadProtocol(PROTOCOL_IDE_KM),
        ] {
            assert_eq!(
                err.spdm_error(),
                (spdm_error::UNSUPPORTED_REQUEST, SPDM_VENDOR_DEFINED_REQUEST)
            );
        }
        for err in [CodecError::Truncated, CodecError::TrailingBytes] {
            assert_eq!(err.spdm_error(), (spdm_error::INVALID_REQUEST, 0));
        }
    }

    #[test]
    fn interface_id_encodes_all_12_bytes() {
        let id = InterfaceId {
            function_id: FID,
            reserved: 0x0807_0605_0403_0201,
        };
        let msg = encode_rsp_as(0x11, id, &Response::StopInterface);
        assert_eq!(msg.buf.first(), Some(&0x11));
        assert_eq!(
            msg.buf.get(INTERFACE_RESERVED..INTERFACE_RESERVED + 8),
            Some(&[1, 2, 3, 4, 5, 6, 7, 8][..])
        );
        let tdisp = unwrap_spdm(msg.bytes(), SPDM_VENDOR_DEFINED_RESPONSE).unwrap_or(&[]);
        assert_eq!(
            TdispHeader::decode(tdisp).map(|(hdr, _)| hdr.interface_id),
            Ok(id)
        );
    }

    #[test]
    fn capabilities_body_is_28_bytes() {
        let msg = encode_rsp(FID, &Response::Capabilities(Capabilities::default()));
        assert_eq!(msg.len, TDISP_OVERHEAD + CAPABILITIES_LEN);
    }

    #[test]
    fn encode_fails_cleanly_on_every_short_buffer() {
        let msg = encode(FID, &lock_request());
        for len in 0..msg.len {
            let mut buf = [0u8; MAX_MESSAGE_LEN];
            let short = buf.get_mut(..len).unwrap_or(&mut []);
            assert_eq!(
                encode_request(FID, &lock_request(), short),
                Err(CodecError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn decode_rejects_every_truncation() {
        let msg = encode(FID, &lock_request());
        for len in 0..msg.len {
            assert!(decode_request(msg.prefix(len)).is_err());
        }
        let rsp = encode_rsp(FID, &Response::LockInterface { nonce: [1; 32] });
        for len in 0..rsp.len {
            assert!(decode_response(rsp.prefix(len)).is_err());
        }
    }

    #[test]
    fn decode_rejects_zero_length_message() {
        assert_eq!(decode_request(&[]), Err(CodecError::Truncated));
        assert_eq!(decode_response(&[]), Err(CodecError::Truncated));
    }

    #[test]
    fn decode_rejects_zero_payload_length() {
        let mut msg = encode(FID, &Request::GetVersion);
        msg.set_u16(PAYLOAD_LEN, 0);
        msg.len = SPDM_VD_HEADER_LEN;
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::Truncated));
    }

    #[test]
    fn decode_rejects_payload_length_beyond_buffer() {
        let mut msg = encode(FID, &Request::GetVersion);
        msg.set_u16(PAYLOAD_LEN, 18);
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::Truncated));
        msg.set_u16(PAYLOAD_LEN, 0xffff);
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::Truncated));
        // Even with a maximum-size buffer behind it.
        msg.len = MAX_MESSAGE_LEN;
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::Truncated));
    }

    #[test]
    fn decode_accepts_doe_padding_only() {
        let mut msg = encode(FID, &Request::GetVersion);
        let len = msg.len;
        for pad in 1..4 {
            msg.len = len + pad;
            assert_eq!(
                decode_request(msg.bytes()),
                Ok((iid(FID), Request::GetVersion))
            );
        }
        msg.len = len + 4;
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::TrailingBytes));
    }

    #[test]
    fn decode_rejects_body_longer_than_message_type() {
        let mut msg = encode(FID, &Request::GetDeviceInterfaceState);
        msg.len += 1;
        msg.set_u16(PAYLOAD_LEN, (msg.len - SPDM_VD_HEADER_LEN) as u16);
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::TrailingBytes));
    }

    #[test]
    fn decode_rejects_wrong_spdm_code() {
        let req = encode(FID, &Request::GetVersion);
        assert_eq!(
            decode_response(req.bytes()),
            Err(CodecError::BadSpdmCode(0xfe))
        );
        let rsp = encode_rsp(FID, &Response::StopInterface);
        assert_eq!(
            decode_request(rsp.bytes()),
            Err(CodecError::BadSpdmCode(0x7e))
        );
    }

    #[test]
    fn decode_rejects_wrong_spdm_version() {
        let mut msg = encode(FID, &Request::GetVersion);
        msg.set(0, 0x20);
        assert_eq!(
            decode_request(msg.bytes()),
            Err(CodecError::BadSpdmVersion(0x20))
        );
        msg.set(0, 0x10);
        assert!(decode_request(msg.bytes()).is_ok());
    }

    #[test]
    fn decode_rejects_foreign_vendor_defined_messages() {
        let mut msg = encode(FID, &Request::GetVersion);
        msg.set_u16(STANDARD_ID, 0x0004);
        assert_eq!(
            decode_request(msg.bytes()),
            Err(CodecError::BadStandardId(4))
        );

        let mut msg = encode(FID, &Request::GetVersion);
        msg.set(VENDOR_ID_LEN, 4);
        assert_eq!(
            decode_request(msg.bytes()),
            Err(CodecError::BadVendorIdLen(4))
        );

        let mut msg = encode(FID, &Request::GetVersion);
        msg.set_u16(VENDOR_ID, 0x8086);
        assert_eq!(
            decode_request(msg.bytes()),
            Err(CodecError::BadVendorId(0x8086))
        );

        let mut msg = encode(FID, &Request::GetVersion);
        msg.set(PROTOCOL, PROTOCOL_IDE_KM);
        assert_eq!(decode_request(msg.bytes()), Err(CodecError::BadProtocol(0)));
    }

    #[test]
    fn decode_rejects_wrong_tdisp_version() {
        let mut msg = encode(FID, &Request::GetVersion);
        msg.set(TDISP_VER, 0x11);
        assert_eq!(
            decode_request(msg.bytes()),
            Err(CodecError::VersionMismatch(0x11))
        );
    }

    #[test]
    fn decode_rejects_message_of_wrong_direction() {
        let mut msg = encode(FID, &Request::GetVersion);
        msg.set(TDISP_TYPE, MessageType::Version as u8);
        assert_eq!(
            decode_request(msg.bytes()),
            Err(CodecError::UnknownMessage(0x01))
        );
        let mut rsp = encode_rsp(FID, &Response::StopInterface);
        rsp.set(TDISP_TYPE, MessageType::StopInterface as u8);
        assert_eq!(
            decode_response(rsp.bytes()),
            Err(CodecError::UnknownMessage(0x87))
        );
    }

    #[test]
    fn decode_rejects_undefined_state_value() {
        let mut rsp = encode_rsp(FID, &Response::DeviceInterfaceState(State::Error));
        rsp.set(TDISP_OVERHEAD, 4);
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::InvalidField));
    }

    #[test]
    fn decode_rejects_report_portion_length_beyond_message() {
        let portion = [0u8; 8];
        let mut rsp = encode_rsp(
            FID,
            &Response::DeviceInterfaceReport {
                portion: &portion,
                remainder: 0,
            },
        );
        rsp.set_u16(TDISP_OVERHEAD, 9);
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::Truncated));
        rsp.set_u16(TDISP_OVERHEAD, 0xffff);
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::Truncated));
        rsp.set_u16(TDISP_OVERHEAD, 7);
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::TrailingBytes));
    }

    #[test]
    fn decode_rejects_version_count_beyond_message() {
        let mut rsp = encode_rsp(FID, &Response::Version { versions: &[0x10] });
        rsp.set(TDISP_OVERHEAD, 2);
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::Truncated));
        rsp.set(TDISP_OVERHEAD, 255);
        assert_eq!(decode_response(rsp.bytes()), Err(CodecError::Truncated));
    }

    #[test]
    fn header_ignores_reserved_field_but_keeps_interface_id_whole() {
        let mut msg = encode(FID, &Request::GetDeviceInterfaceState);
        msg.set(14, 0xff);
        msg.set(15, 0xff);
        assert_eq!(
            decode_request(msg.bytes()),
            Ok((iid(FID), Request::GetDeviceInterfaceState))
        );
        msg.set(INTERFACE_RESERVED + 7, 0xff);
        let id = InterfaceId {
            function_id: FID,
            reserved: 0xff00_0000_0000_0000,
        };
        assert_eq!(
            decode_request(msg.bytes()),
            Ok((id, Request::GetDeviceInterfaceState))
        );
    }

    #[test]
    fn decode_response_requires_spdm_1_2() {
        for version in [0x10, 0x11, 0x13, 0x20] {
            let rsp = encode_rsp_as(version, iid(FID), &Response::StopInterface);
            assert_eq!(
                decode_response(rsp.bytes()),
                Err(CodecError::BadSpdmVersion(version))
            );
        }
        assert_eq!(decode_response(&[]), Err(CodecError::Truncated));
    }

    #[test]
    fn spdm_version_of_accepts_1_x_only() {
        assert_eq!(spdm_version_of(&[0x10]), Some(0x10));
        assert_eq!(spdm_version_of(&[0x1f, 0]), Some(0x1f));
        assert_eq!(spdm_version_of(&[0x20]), None);
        assert_eq!(spdm_version_of(&[0x0f]), None);
        assert_eq!(spdm_version_of(&[]), None);
    }
}
