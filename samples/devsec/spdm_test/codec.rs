// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_spdm_codec`: the shared wire format (`spdm/codec.rs`) and the
//! transcript bookkeeping (`spdm/transcript.rs`): codes and constants as DSP0274 1.2 (and
//! libspdm's `spdm.h`) define them, request encoding and decoding, the signing context.

use kernel::prelude::*;

#[kunit_tests(devsec_spdm_codec)]
mod tests {
    use crate::spdm::*;
    use crate::spdm_suites::common::*;

    const N: Nonce = [0xa7; NONCE_LEN];

    #[test]
    fn request_and_response_codes_are_those_of_dsp0274() {
        let codes = [
            (Code::GetDigests, 0x81),
            (Code::GetCertificate, 0x82),
            (Code::Challenge, 0x83),
            (Code::GetVersion, 0x84),
            (Code::GetMeasurements, 0xe0),
            (Code::GetCapabilities, 0xe1),
            (Code::NegotiateAlgorithms, 0xe3),
            (Code::VendorDefinedRequest, 0xfe),
            (Code::Digests, 0x01),
            (Code::Certificate, 0x02),
            (Code::ChallengeAuth, 0x03),
            (Code::Version, 0x04),
            (Code::Measurements, 0x60),
            (Code::Capabilities, 0x61),
            (Code::Algorithms, 0x63),
            (Code::VendorDefinedResponse, 0x7e),
            (Code::Error, 0x7f),
        ];
        for (code, value) in codes {
            assert_eq!(code as u8, value);
            assert_eq!(Code::from_u8(value), Some(code));
            assert_eq!(code.is_request(), value >= 0x80);
            assert!(!code.name().is_empty());
        }
        assert_eq!(Code::from_u8(0xff), None);
        assert_eq!(Code::from_u8(0xe4), None);
    }

    #[test]
    fn error_codes_are_those_of_spdm_1_2() {
        let codes = [
            (ErrorCode::InvalidRequest, 0x01),
            (ErrorCode::Busy, 0x03),
            (ErrorCode::UnexpectedRequest, 0x04),
            (ErrorCode::Unspecified, 0x05),
            (ErrorCode::DecryptError, 0x06),
            (ErrorCode::UnsupportedRequest, 0x07),
            (ErrorCode::RequestInFlight, 0x08),
            (ErrorCode::InvalidResponseCode, 0x09),
            (ErrorCode::SessionLimitExceeded, 0x0a),
            (ErrorCode::SessionRequired, 0x0b),
            (ErrorCode::ResetRequired, 0x0c),
            (ErrorCode::ResponseTooLarge, 0x0d),
            (ErrorCode::RequestTooLarge, 0x0e),
            (ErrorCode::LargeResponse, 0x0f),
            (ErrorCode::MessageLost, 0x10),
            (ErrorCode::VersionMismatch, 0x41),
            (ErrorCode::ResponseNotReady, 0x42),
            (ErrorCode::RequestResynch, 0x43),
            (ErrorCode::VendorDefined, 0xff),
        ];
        for (code, value) in codes {
            assert_eq!(code as u8, value);
            assert_eq!(ErrorCode::from_u8(value), Some(code));
            assert!(!code.name().is_empty());
        }
        // 0x02 (InvalidSession) is deprecated in 1.2.
        assert_eq!(ErrorCode::from_u8(0x02), None);
        assert_eq!(ErrorCode::from_u8(0x00), None);
    }

    #[test]
    fn capability_and_algorithm_values_are_those_of_spdm_h() {
        assert_eq!(cap_flags::CACHE_CAP, 0x1);
        assert_eq!(cap_flags::CERT_CAP, 0x2);
        assert_eq!(cap_flags::CHAL_CAP, 0x4);
        assert_eq!(cap_flags::MEAS_CAP_NO_SIG, 0x8);
        assert_eq!(cap_flags::MEAS_CAP_SIG, 0x10);
        assert_eq!(cap_flags::MEAS_FRESH_CAP, 0x20);
        assert_eq!(cap_flags::CHUNK_CAP, 0x2_0000);
        assert_eq!(meas::ATTR_SIGNATURE, 0x1);
        assert_eq!(meas::ATTR_RAW_BIT_STREAM, 0x2);
        assert_eq!(meas::TYPE_IMMUTABLE_ROM, 0x0);
        assert_eq!(meas::TYPE_MUTABLE_FIRMWARE, 0x1);
        assert_eq!(meas::TYPE_RAW_BIT_STREAM, 0x80);
        assert_eq!(alg::BASE_ASYM_RSASSA_3072, 0x4);
        assert_eq!(alg::BASE_HASH_SHA_384, 0x2);
        assert_eq!(alg::MEASUREMENT_SPEC_DMTF, 0x1);
        assert_eq!(alg::MEASUREMENT_HASH_SHA_384, 0x4);
        assert_eq!(VERSION_ENTRY_12, 0x1200);
        assert_eq!(MIN_DATA_TRANSFER_SIZE, 42);
    }

    // ---- Signing context ------------------------------------------------------------------

    #[test]
    fn challenge_auth_signing_context_is_right_aligned_after_four_prefixes() {
        let digest = [0xdd; HASH_LEN];
        let msg = signed_message(SignedOp::ChallengeAuth, &digest);
        for part in msg.chunks_exact(16).take(4) {
            assert_eq!(part, b"dmtf-spdm-v1.2.*");
        }
        assert_eq!(msg.get(64..68), Some(&[0u8; 4][..]));
        assert_eq!(
            msg.get(68..100),
            Some(&b"responder-challenge_auth signing"[..])
        );
        assert_eq!(msg.get(100..), Some(&digest[..]));
        assert_eq!(msg.len(), 148);
    }

    #[test]
    fn measurements_signing_context_is_right_aligned_after_four_prefixes() {
        let digest = [0x3c; HASH_LEN];
        let msg = signed_message(SignedOp::Measurements, &digest);
        assert_eq!(msg.get(..16), Some(&b"dmtf-spdm-v1.2.*"[..]));
        assert_eq!(msg.get(48..64), Some(&b"dmtf-spdm-v1.2.*"[..]));
        assert_eq!(msg.get(64..70), Some(&[0u8; 6][..]));
        assert_eq!(
            msg.get(70..100),
            Some(&b"responder-measurements signing"[..])
        );
        assert_eq!(msg.get(100..), Some(&digest[..]));
    }

    // ---- Requests -------------------------------------------------------------------------

    fn requests() -> [Request; 11] {
        [
            Request::GetVersion,
            get_capabilities(),
            negotiate(),
            Request::NegotiateAlgorithms(libspdm_like_offer()),
            Request::GetDigests,
            get_certificate(0x123, 0x456),
            challenge(summary::TCB, N),
            challenge(summary::ALL, N),
            get_measurements(false, meas::OP_COUNT, [0; NONCE_LEN]),
            get_measurements(true, meas::OP_ALL, N),
            get_measurements(true, 7, N),
        ]
    }

    #[test]
    fn requests_round_trip_through_encode_and_decode() {
        for req in requests() {
            let msg = encode(&req);
            assert!(msg.len >= HEADER_LEN);
            assert_eq!(Request::decode(msg.bytes()), Ok(req));
            assert_eq!(code_of(&msg), Some(req.code()));
        }
    }

    #[test]
    fn requests_have_the_lengths_of_spdm_1_2() {
        let lengths = [4, 20, 32, 48, 4, 8, 36, 36, 4, 37, 37];
        for (req, len) in requests().iter().zip(lengths) {
            assert_eq!(encode(req).len, len);
        }
    }

    #[test]
    fn get_version_is_sent_in_1_0_and_everything_else_in_1_2() {
        assert_eq!(encode(&Request::GetVersion).bytes(), &[0x10, 0x84, 0, 0]);
        for req in requests().iter().skip(1) {
            assert_eq!(encode(req).get(0), 0x12);
        }
    }

    #[test]
    fn get_capabilities_has_the_1_2_layout() {
        let req = Request::GetCapabilities(CapabilityParams {
            ct_exponent: 9,
            flags: 0x0102_0304,
            data_transfer_size: 0x1200,
            max_message_size: 0x0001_0000,
        });
        let want = [
            0x12, 0xe1, 0, 0, 0, 9, 0, 0, 4, 3, 2, 1, 0, 0x12, 0, 0, 0, 0, 1, 0,
        ];
        assert_eq!(encode(&req).bytes(), &want);
    }

    #[test]
    fn negotiate_algorithms_carries_its_length_and_alg_structs() {
        let msg = encode(&Request::NegotiateAlgorithms(libspdm_like_offer()));
        assert_eq!((msg.get(2), msg.get(4), msg.get(5)), (4, 48, 0));
        assert_eq!((msg.get(6), msg.get(7)), (alg::MEASUREMENT_SPEC_DMTF, 0x2));
        assert_eq!(msg.buf.get(8..12), Some(&0x84u32.to_le_bytes()[..]));
        assert_eq!(msg.buf.get(12..16), Some(&0x3u32.to_le_bytes()[..]));
        assert_eq!(msg.buf.get(32..36), Some(&[2, 0x20, 0x10, 0][..]));
        assert_eq!(msg.buf.get(44..48), Some(&[5, 0x20, 0x10, 0][..]));
    }

    #[test]
    fn negotiate_algorithms_extended_algorithms_are_skipped() {
        let mut offer = libspdm_like_offer();
        offer.ext_asym_count = 2;
        offer.ext_hash_count = 1;
        offer.structs[1].ext_count = 3;
        let msg = encode(&Request::NegotiateAlgorithms(offer));
        assert_eq!(msg.len, 48 + 4 * 6);
        assert_eq!(
            Request::decode(msg.bytes()),
            Ok(Request::NegotiateAlgorithms(offer))
        );
    }

    #[test]
    fn truncated_or_extended_requests_do_not_decode() {
        for req in requests() {
            let msg = encode(&req);
            for len in 0..msg.len {
                let prefix = msg.buf.get(..len).unwrap_or(&[]);
                assert!(Request::decode(prefix).is_err());
            }
            let mut long = msg;
            long.push(0);
            assert!(Request::decode(long.bytes()).is_err());
        }
    }

    #[test]
    fn requests_may_carry_doe_padding() {
        for req in requests() {
            let msg = encode(&req);
            let mut padded = msg.clone();
            for pad in 1..=MAX_PADDING + 1 {
                padded.push(0xff);
                let got = Request::decode_padded(padded.bytes());
                if pad <= MAX_PADDING {
                    assert_eq!(got, Ok((req, msg.len)));
                } else {
                    assert_eq!(got, Err(CodecError::TrailingBytes));
                }
                assert_eq!(
                    Request::decode(padded.bytes()),
                    Err(CodecError::TrailingBytes)
                );
            }
        }
    }

    #[test]
    fn response_codes_do_not_decode_as_requests() {
        for code in [0x01u8, 0x04, 0x60, 0x7f, 0xfe, 0xff, 0xe4] {
            assert_eq!(
                Request::decode(&[0x12, code, 0, 0]),
                Err(CodecError::InvalidField)
            );
        }
    }

    // ---- ERROR ----------------------------------------------------------------------------

    #[test]
    fn error_messages_encode_and_decode() {
        let mut buf = [0u8; 8];
        let len = encode_error(0x12, ErrorCode::UnexpectedRequest, 0, &mut buf);
        assert_eq!(len, Ok(4));
        assert_eq!(buf.get(..4), Some(&[0x12, 0x7f, 0x04, 0][..]));
        assert_eq!(
            decode_error(&[0x12, 0x7f, 0x07, 0xe4]),
            Some((0x12, 0x07, 0xe4))
        );
        let mut ext = Msg::from(&[0x12, 0x7f, 0x42, 0]);
        for _ in 0..MAX_EXTENDED_ERROR_LEN {
            ext.push(1);
        }
        assert!(decode_error(ext.bytes()).is_some());
        ext.push(1);
        assert_eq!(decode_error(ext.bytes()), None);
        assert_eq!(decode_error(&[0x20, 0x7f, 1, 0]), None);
        assert_eq!(decode_error(&[0x12, 0x7f, 1]), None);
        assert_eq!(decode_error(&[0x12, 0x61, 1, 0]), None);
        assert_eq!(
            encode_error(0x12, ErrorCode::Busy, 0, &mut [0; 3]),
            Err(CodecError::BufferTooSmall)
        );
    }

    // ---- Transcript -----------------------------------------------------------------------

    #[test]
    fn transcript_m1_is_the_hash_of_vca_b_and_c_and_resets_b() {
        let mut t = Transcript::<ToyHash>::new();
        assert!(t.append_vca(&[b"vca-1", b"vca-2"]).is_ok());
        assert!(t.append_b(&[b"b-1"]).is_ok());
        assert!(t.append_b(&[b"b-2"]).is_ok());
        let m1 = t.finish_m1(&[b"c-1", b"c-2"]);
        assert_eq!(m1, Ok(toy_hash(&[b"vca-1vca-2b-1b-2c-1c-2"])));
        // B was reset: the next M1 is VCA || C.
        assert_eq!(t.finish_m1(&[b"c"]), Ok(toy_hash(&[b"vca-1vca-2c"])));
        assert_eq!(t.vca(), b"vca-1vca-2");
    }

    #[test]
    fn transcript_l1_is_the_hash_of_vca_and_measurements_since_the_last_signed() {
        let mut t = Transcript::<ToyHash>::new();
        assert!(t.append_vca(&[b"vca"]).is_ok());
        assert!(t.append_l1(&[b"m1"]).is_ok());
        assert_eq!(t.finish_l1(&[b"m2"]), Ok(toy_hash(&[b"vcam1m2"])));
        assert_eq!(t.finish_l1(&[b"m3"]), Ok(toy_hash(&[b"vcam3"])));
        assert!(t.append_l1(&[b"m4"]).is_ok());
        t.reset_l1();
        assert_eq!(t.finish_l1(&[b"m5"]), Ok(toy_hash(&[b"vcam5"])));
        t.reset();
        assert_eq!(t.vca(), b"");
    }

    #[test]
    fn transcript_hash_failure_breaks_it_until_reset() {
        let mut t = Transcript::<FlakyHash>::new();
        assert!(t.append_vca(&[b"vca"]).is_ok());
        assert!(t.append_b(&[b"b-1"]).is_ok());
        assert_eq!(t.append_b(&[b"FAIL"]), Err(TranscriptError::Crypto));
        // B lost a part: M1 must not be computed from what is left.
        assert_eq!(t.append_b(&[b"b-2"]), Err(TranscriptError::Crypto));
        assert_eq!(t.finish_m1(&[b"c"]), Err(TranscriptError::Crypto));
        assert_eq!(t.finish_m1(&[b"c"]), Err(TranscriptError::Crypto));
        // L1/L2 is a computation of its own.
        assert!(t.finish_l1(&[b"m"]).is_ok());
        assert_eq!(t.finish_l1(&[b"FAIL"]), Err(TranscriptError::Crypto));
        assert_eq!(t.finish_l1(&[b"m"]), Err(TranscriptError::Crypto));
        t.reset_l1();
        assert!(t.finish_l1(&[b"m"]).is_ok());
        t.reset();
        assert!(t.append_vca(&[b"vca"]).is_ok());
        assert!(t.finish_m1(&[b"c"]).is_ok());
    }

    #[test]
    fn transcript_vca_is_bounded() {
        let mut t = Transcript::<ToyHash>::new();
        let big = [0u8; MAX_VCA_LEN];
        assert!(t.append_vca(&[&big]).is_ok());
        assert_eq!(t.append_vca(&[b"x"]), Err(TranscriptError::TooLong));
        assert_eq!(t.vca().len(), MAX_VCA_LEN);
        t.reset();
        assert_eq!(t.append_vca(&[&big, b"x"]), Err(TranscriptError::TooLong));
        assert_eq!(t.vca().len(), 0);
    }
}
