// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_spdm_requester`: the TSM side (`spdm/requester.rs`): every check a
//! verifier makes, exercised with responses of the test responder tampered on the way.

use kernel::prelude::*;

#[kunit_tests(devsec_spdm_requester)]
mod tests {
    use crate::spdm::*;
    use crate::spdm_suites::common::*;

    const N: Nonce = [0x3e; NONCE_LEN];

    /// Runs VCA with `tamper` applied to the response of step `step` (0 VERSION, 1
    /// CAPABILITIES, 2 ALGORITHMS); returns the result of that step.
    fn vca_with(step: usize, tamper: impl FnOnce(&mut Msg)) -> Result<(), RequesterError> {
        let Ok(mut s) = Session::new() else {
            return Err(RequesterError::WrongState);
        };
        let steps = [Request::GetVersion, get_capabilities(), negotiate()];
        for req in steps.iter().take(step) {
            s.exchange(req)?;
        }
        let req = steps.get(step).copied().unwrap_or(Request::GetVersion);
        s.exchange_with(&req, tamper).map(|_| ())
    }

    // ---- Request order --------------------------------------------------------------------

    #[test]
    fn requests_out_of_order_are_refused_before_sending() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        let mut buf = HeapBuf::<MAX_MESSAGE_LEN>::new();
        let early = [
            get_capabilities(),
            negotiate(),
            Request::GetDigests,
            get_certificate(0, 64),
            challenge(summary::NONE, N),
            get_measurements(false, meas::OP_ALL, N),
        ];
        for req in early {
            assert_eq!(
                s.requester.encode(&req, &mut buf),
                Err(RequesterError::WrongState)
            );
        }
        assert!(s.negotiate());
        assert_eq!(
            s.requester.encode(&get_capabilities(), &mut buf),
            Err(RequesterError::WrongState)
        );
        // CHALLENGE and signed measurements need the chain; certificates go in order.
        let chain_needed = [
            challenge(summary::NONE, N),
            get_measurements(true, meas::OP_ALL, N),
            get_certificate(64, 64),
        ];
        for req in chain_needed {
            assert_eq!(
                s.requester.encode(&req, &mut buf),
                Err(RequesterError::WrongState)
            );
        }
        assert!(s
            .requester
            .encode(&get_measurements(false, 1, N), &mut buf)
            .is_ok());
        Ok(())
    }

    #[test]
    fn response_without_a_request_is_refused() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        let verifier = ToyVerifier::new();
        let rsp = [0x10, 0x04, 0, 0, 0, 1, 0, 0x12];
        assert_eq!(
            s.requester.decode(&rsp, &verifier),
            Err(RequesterError::NoRequest)
        );
        Ok(())
    }

    #[test]
    fn error_responses_are_reported_with_code_and_data() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        let got = s.exchange_with(&Request::GetVersion, |rsp| {
            *rsp = Msg::from(&[0x10, 0x7f, 0x03, 0])
        });
        assert_eq!(
            got,
            Err(RequesterError::Spdm {
                code: 0x03,
                data: 0
            })
        );
        assert_eq!(s.requester.state(), ConnectionState::NotStarted);
        // The request is used up.
        let verifier = ToyVerifier::new();
        let rsp = [0x10, 0x04, 0, 0, 0, 1, 0, 0x12];
        assert_eq!(
            s.requester.decode(&rsp, &verifier),
            Err(RequesterError::NoRequest)
        );
        Ok(())
    }

    #[test]
    fn response_with_another_code_is_unexpected_response() {
        let got = vca_with(1, |rsp| rsp.set(1, Code::Algorithms as u8));
        assert_eq!(
            got,
            Err(RequesterError::UnexpectedResponse {
                expected: 0x61,
                got: 0x63
            })
        );
    }

    // ---- VERSION, CAPABILITIES, ALGORITHMS ------------------------------------------------

    #[test]
    fn version_must_list_1_2() {
        let only_1_1 = vca_with(0, |rsp| rsp.set(7, 0x11));
        assert_eq!(only_1_1, Err(RequesterError::VersionUnsupported));
        let several = vca_with(0, |rsp| {
            *rsp = Msg::from(&[0x10, 0x04, 0, 0, 0, 3, 0x00, 0x10, 0x00, 0x11, 0x10, 0x12]);
        });
        assert_eq!(several, Ok(()));
        let none = vca_with(0, |rsp| *rsp = Msg::from(&[0x10, 0x04, 0, 0, 0, 0]));
        assert_eq!(none, Err(RequesterError::Codec(CodecError::InvalidField)));
        let truncated = vca_with(0, |rsp| rsp.pop());
        assert_eq!(truncated, Err(RequesterError::Codec(CodecError::Truncated)));
        let padded = vca_with(0, |rsp| (0..MAX_PADDING).for_each(|_| rsp.push(0)));
        assert_eq!(padded, Ok(()));
        let trailing = vca_with(0, |rsp| (0..=MAX_PADDING).for_each(|_| rsp.push(0)));
        assert_eq!(
            trailing,
            Err(RequesterError::Codec(CodecError::TrailingBytes))
        );
        let in_1_2 = vca_with(0, |rsp| rsp.set(0, 0x12));
        assert_eq!(in_1_2, Err(RequesterError::VersionMismatch(0x12)));
    }

    #[test]
    fn capabilities_must_have_cert_chal_and_signed_measurements() {
        for (missing, flags) in [
            (cap_flags::CERT_CAP, RESPONDER_FLAGS & !cap_flags::CERT_CAP),
            (cap_flags::CHAL_CAP, RESPONDER_FLAGS & !cap_flags::CHAL_CAP),
            (
                cap_flags::MEAS_CAP_SIG,
                (RESPONDER_FLAGS & !cap_flags::MEAS_CAP_MASK) | cap_flags::MEAS_CAP_NO_SIG,
            ),
        ] {
            let got = vca_with(1, |rsp| rsp.set(8, flags as u8));
            assert_eq!(got, Err(RequesterError::MissingCapabilities(missing)));
        }
        let reserved = vca_with(1, |rsp| rsp.set(8, 0x1e));
        assert_eq!(reserved, Err(RequesterError::BadCapabilities));
    }

    #[test]
    fn capabilities_must_have_valid_transfer_sizes() {
        let small = vca_with(1, |rsp| rsp.set_u16(12, 41));
        assert_eq!(small, Err(RequesterError::BadCapabilities));
        let max_below = vca_with(1, |rsp| rsp.set(17, 0));
        assert_eq!(max_below, Err(RequesterError::BadCapabilities));
        let in_1_1 = vca_with(1, |rsp| rsp.set(0, 0x11));
        assert_eq!(in_1_1, Err(RequesterError::VersionMismatch(0x11)));
        let truncated = vca_with(1, |rsp| rsp.pop());
        assert!(truncated.is_err());
    }

    #[test]
    fn algorithms_must_select_what_was_offered_and_is_supported() {
        let cases: [(usize, u8); 8] = [
            (12, 0x80), // ECDSA P-384, not offered
            (12, 0x0c), // two asymmetric algorithms
            (16, 0x01), // SHA-256
            (6, 0x02),  // another measurement specification
            (8, 0x02),  // SHA-256 measurements
            (32, 1),    // an extended asymmetric algorithm
            (7, 0x1),   // an opaque data format not offered
            (12, 0x00), // nothing selected
        ];
        for (at, value) in cases {
            let got = vca_with(2, |rsp| rsp.set(at, value));
            assert_eq!(got, Err(RequesterError::BadAlgorithms));
        }
        let length = vca_with(2, |rsp| rsp.set(4, 37));
        assert_eq!(length, Err(RequesterError::Codec(CodecError::InvalidField)));
        let no_measurements = vca_with(2, |rsp| {
            rsp.set(6, 0);
            rsp.set(8, 0);
        });
        assert_eq!(no_measurements, Ok(()));
    }

    #[test]
    fn algorithms_alg_struct_selections_must_be_empty() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.exchange(&Request::GetVersion).is_ok());
        assert!(s.exchange(&get_capabilities()).is_ok());
        let offer = Request::NegotiateAlgorithms(libspdm_like_offer());
        let got = s.exchange_with(&offer, |rsp| rsp.set(38, 0x10));
        assert_eq!(got, Err(RequesterError::BadAlgorithms));
        let mut s = Session::new()?;
        assert!(s.exchange(&Request::GetVersion).is_ok());
        assert!(s.exchange(&get_capabilities()).is_ok());
        assert_eq!(
            s.exchange(&offer),
            Ok(Reply::Algorithms { measurements: true })
        );
        Ok(())
    }

    // ---- DIGESTS and CERTIFICATE ----------------------------------------------------------

    #[test]
    fn digests_must_include_slot_0() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        let got = s.exchange_with(&Request::GetDigests, |rsp| rsp.set(3, 0x02));
        assert_eq!(got, Err(RequesterError::SlotMismatch));
        let got = s.exchange_with(&Request::GetDigests, |rsp| rsp.set(3, 0x03));
        assert_eq!(got, Err(RequesterError::Codec(CodecError::Truncated)));
        let got = s.exchange(&Request::GetDigests);
        assert_eq!(
            got,
            Ok(Reply::Digests(toy_hash(&[default_chain().bytes()])))
        );
        Ok(())
    }

    #[test]
    fn chain_must_have_the_digest_announced_by_digests() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        let got = s.exchange_with(&Request::GetDigests, |rsp| rsp.flip(10));
        assert!(got.is_ok());
        assert_eq!(s.fetch_chain(4096), None);
        let got = s.exchange(&s.requester.next_certificate(4096));
        assert_eq!(got, Err(RequesterError::DigestMismatch));
        assert_eq!(s.requester.cert_chain(), None);
        Ok(())
    }

    /// Fetches the first portion of `length` with `tamper` applied.
    fn first_portion(length: u16, tamper: impl FnOnce(&mut Msg)) -> Result<(), RequesterError> {
        let Ok(mut s) = Session::new() else {
            return Err(RequesterError::WrongState);
        };
        if !s.negotiate() {
            return Err(RequesterError::WrongState);
        }
        s.exchange_with(&get_certificate(0, length), tamper)
            .map(|_| ())
    }

    #[test]
    fn certificate_portion_checks() {
        let longer = first_portion(64, |rsp| {
            rsp.set_u16(4, 65);
            rsp.push(0);
        });
        assert_eq!(longer, Err(RequesterError::ChainInconsistent));
        let empty = first_portion(64, |rsp| {
            rsp.set_u16(4, 0);
            rsp.len = CERTIFICATE_HEADER_LEN;
        });
        assert_eq!(empty, Err(RequesterError::ChainNoProgress));
        let huge = first_portion(64, |rsp| rsp.set_u16(6, 0xff00));
        assert_eq!(huge, Err(RequesterError::ChainTooLarge));
        let slot = first_portion(64, |rsp| rsp.set(2, 1));
        assert_eq!(slot, Err(RequesterError::SlotMismatch));
        let short = first_portion(64, |rsp| rsp.pop());
        assert_eq!(short, Err(RequesterError::Codec(CodecError::Truncated)));
        assert_eq!(first_portion(64, |_| {}), Ok(()));
    }

    #[test]
    fn certificate_remainder_must_stay_consistent() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        assert!(s.exchange(&get_certificate(0, 100)).is_ok());
        let req = s.requester.next_certificate(100);
        let got = s.exchange_with(&req, |rsp| {
            let remainder = u16::from_le_bytes([rsp.get(6), rsp.get(7)]);
            rsp.set_u16(6, remainder + 1);
        });
        assert_eq!(got, Err(RequesterError::ChainInconsistent));
        // The failed portion changed nothing: the fetch goes on from offset 100.
        let portions = default_chain().len.div_ceil(100);
        assert_eq!(s.fetch_chain(100), Some(portions - 1));
        assert_eq!(s.requester.cert_chain(), Some(default_chain().bytes()));
        // Fetching again starts from offset 0.
        assert_eq!(s.fetch_chain(100), Some(portions));
        assert!(s.exchange(&get_certificate(0, 100)).is_ok());
        assert_eq!(s.requester.cert_chain(), None);
        Ok(())
    }

    /// Fetches a chain served by a device with `chain`.
    fn fetch(chain: Chain) -> Result<(), RequesterError> {
        let Ok(mut s) = Session::with(ToyDevice::with_chain(chain)) else {
            return Err(RequesterError::WrongState);
        };
        if !s.negotiate() {
            return Err(RequesterError::WrongState);
        }
        s.exchange(&get_certificate(0, 0xffff)).map(|_| ())
    }

    #[test]
    fn assembled_chain_must_be_well_formed() {
        assert_eq!(fetch(default_chain()), Ok(()));
        let mut length = default_chain();
        length.flip(0);
        assert_eq!(fetch(length), Err(RequesterError::BadChain));
        let mut root_hash = default_chain();
        root_hash.flip(10);
        assert_eq!(fetch(root_hash), Err(RequesterError::RootHashMismatch));
        let mut tag = default_chain();
        tag.set(CERT_CHAIN_HEADER_LEN, 0x31);
        assert_eq!(fetch(tag), Err(RequesterError::BadChain));
        let mut framing = default_chain();
        framing.flip(CERT_CHAIN_HEADER_LEN + 3);
        assert_eq!(fetch(framing), Err(RequesterError::BadChain));
        let mut no_certs = Chain::new(0, 0);
        no_certs.len = CERT_CHAIN_HEADER_LEN;
        no_certs.set(0, CERT_CHAIN_HEADER_LEN as u8);
        no_certs.set(1, 0);
        assert_eq!(fetch(no_certs), Err(RequesterError::BadChain));
    }

    #[test]
    fn first_certificate_walks_der_framing() {
        assert_eq!(
            first_certificate(&[0x30, 0x01, 0xaa, 0x30, 0x00]),
            Some(&[0x30, 0x01, 0xaa][..])
        );
        let mut long = Msg::from(&[0x30, 0x81, 0x80]);
        for _ in 0..0x80 {
            long.push(0);
        }
        assert_eq!(first_certificate(long.bytes()).map(|c| c.len()), Some(0x83));
        let mut longer = Msg::from(&[0x30, 0x82, 0x01, 0x00]);
        for _ in 0..0x100 {
            longer.push(0);
        }
        assert_eq!(
            first_certificate(longer.bytes()).map(|c| c.len()),
            Some(0x104)
        );
        let mut three = Msg::from(&[0x30, 0x83, 0x00, 0x00, 0x02, 1, 2]);
        assert_eq!(first_certificate(three.bytes()).map(|c| c.len()), Some(7));
        three.push(0);
        assert_eq!(first_certificate(three.bytes()), None);
        assert_eq!(first_certificate(&[]), None);
        assert_eq!(first_certificate(&[0x30, 0x02, 0]), None);
        assert_eq!(first_certificate(&[0x30, 0x84, 0, 0, 0, 0]), None);
        assert_eq!(first_certificate(&[0x02, 0x00]), None);
    }

    // ---- CHALLENGE_AUTH -------------------------------------------------------------------

    /// Runs up to CHALLENGE with `tamper` applied to CHALLENGE_AUTH.
    fn challenge_with(kind: u8, tamper: impl FnOnce(&mut Msg)) -> Result<(), RequesterError> {
        let Ok(mut s) = Session::new() else {
            return Err(RequesterError::WrongState);
        };
        if !s.authenticate_prelude() {
            return Err(RequesterError::WrongState);
        }
        let got = s.exchange_with(&challenge(kind, N), tamper).map(|_| ());
        if got.is_err() && s.requester.state() == ConnectionState::Authenticated {
            return Err(RequesterError::WrongState);
        }
        got
    }

    #[test]
    fn challenge_auth_checks() {
        assert_eq!(challenge_with(summary::ALL, |_| {}), Ok(()));
        let chain_hash = challenge_with(summary::NONE, |rsp| rsp.flip(4));
        assert_eq!(chain_hash, Err(RequesterError::ChainHashMismatch));
        let slot = challenge_with(summary::NONE, |rsp| rsp.set(2, 1));
        assert_eq!(slot, Err(RequesterError::SlotMismatch));
        let mask = challenge_with(summary::NONE, |rsp| rsp.set(3, 2));
        assert_eq!(mask, Err(RequesterError::SlotMismatch));
        let mut_auth = challenge_with(summary::NONE, |rsp| rsp.set(2, 0x80));
        assert_eq!(mut_auth, Err(RequesterError::BadChallengeAuth));
        let truncated = challenge_with(summary::ALL, |rsp| rsp.pop());
        assert_eq!(truncated, Err(RequesterError::Codec(CodecError::Truncated)));
        let trailing = challenge_with(summary::ALL, |rsp| (0..4).for_each(|_| rsp.push(0)));
        assert_eq!(
            trailing,
            Err(RequesterError::Codec(CodecError::TrailingBytes))
        );
        // DOE padding is not part of the signed response.
        let padded = challenge_with(summary::ALL, |rsp| (0..2).for_each(|_| rsp.push(0xff)));
        assert_eq!(padded, Ok(()));
        // Opaque data longer than 1024 bytes.
        let opaque = challenge_with(summary::NONE, |rsp| rsp.set_u16(84, 1025));
        assert_eq!(opaque, Err(RequesterError::BadChallengeAuth));
    }

    #[test]
    fn challenge_auth_with_a_tampered_field_fails_the_signature() {
        // The nonce, the summary hash and the signature itself.
        for at in [52, 83, 84, 131, 134, 134 + SIGNATURE_LEN - 1] {
            let got = challenge_with(summary::ALL, |rsp| rsp.flip(at));
            assert_eq!(got, Err(RequesterError::SignatureInvalid));
        }
    }

    // ---- MEASUREMENTS ---------------------------------------------------------------------

    /// Runs up to GET_MEASUREMENTS with `tamper` applied to MEASUREMENTS.
    fn measurements_with(
        req: Request,
        tamper: impl FnOnce(&mut Msg),
    ) -> Result<(), RequesterError> {
        let Ok(mut s) = Session::new() else {
            return Err(RequesterError::WrongState);
        };
        if !s.authenticate_prelude() {
            return Err(RequesterError::WrongState);
        }
        s.exchange_with(&req, tamper).map(|_| ())
    }

    #[test]
    fn measurements_record_must_be_consistent() {
        let all = get_measurements(false, meas::OP_ALL, N);
        assert_eq!(measurements_with(all, |_| {}), Ok(()));
        let count = measurements_with(all, |rsp| rsp.set(4, 2));
        assert_eq!(count, Err(RequesterError::BadMeasurements));
        let record_len = measurements_with(all, |rsp| rsp.set(5, rsp.get(5) - 1));
        assert!(record_len.is_err());
        let block_size = measurements_with(all, |rsp| rsp.set(10, 52));
        assert_eq!(block_size, Err(RequesterError::BadMeasurements));
        let value_size = measurements_with(all, |rsp| rsp.set(13, 47));
        assert_eq!(value_size, Err(RequesterError::BadMeasurements));
        let spec = measurements_with(all, |rsp| rsp.set(9, 2));
        assert_eq!(spec, Err(RequesterError::BadMeasurements));
        let index_zero = measurements_with(all, |rsp| rsp.set(8, 0));
        assert_eq!(index_zero, Err(RequesterError::BadMeasurements));
        let opaque = measurements_with(all, |rsp| {
            let at = rsp.len - 2;
            rsp.set_u16(at, 1025);
        });
        assert_eq!(opaque, Err(RequesterError::BadMeasurements));
    }

    #[test]
    fn measurements_must_answer_the_operation_asked_for() {
        let count = get_measurements(false, meas::OP_COUNT, N);
        assert_eq!(measurements_with(count, |_| {}), Ok(()));
        let with_block = measurements_with(count, |rsp| rsp.set(4, 1));
        assert_eq!(with_block, Err(RequesterError::BadMeasurements));
        let one = get_measurements(false, 2, N);
        assert_eq!(measurements_with(one, |_| {}), Ok(()));
        let other_index = measurements_with(one, |rsp| rsp.set(8, 1));
        assert_eq!(other_index, Err(RequesterError::BadMeasurements));
    }

    #[test]
    fn signed_measurements_checks() {
        let signed = get_measurements(true, meas::OP_ALL, N);
        assert_eq!(measurements_with(signed, |_| {}), Ok(()));
        let slot = measurements_with(signed, |rsp| rsp.set(3, 1));
        assert_eq!(slot, Err(RequesterError::SlotMismatch));
        let unsigned = measurements_with(signed, |rsp| rsp.len -= SIGNATURE_LEN);
        assert!(unsigned.is_err());
        for at in [15, 60, 100, 4 + 4 + 3 * 55 + 5] {
            let value = measurements_with(signed, |rsp| rsp.flip(at));
            assert_eq!(value, Err(RequesterError::SignatureInvalid));
        }
        let sig = measurements_with(signed, |rsp| rsp.flip(rsp.len - 1));
        assert_eq!(sig, Err(RequesterError::SignatureInvalid));
    }

    #[test]
    fn measurement_blocks_iterate_over_a_checked_record() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        let got = s.exchange(&get_measurements(false, meas::OP_ALL, N));
        let Ok(Reply::Measurements { record, blocks, .. }) = got else {
            assert!(got.is_ok());
            return Ok(());
        };
        assert_eq!(blocks, 3);
        let mut n = 0;
        for (block, (index, value)) in
            MeasurementBlocks::new(record).zip(MEAS_INDICES.iter().zip(MEAS_VALUES.iter()))
        {
            assert_eq!((block.index, block.value), (*index, &value[..]));
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(MeasurementBlocks::new(&[1, 1, 9, 0]).count(), 0);
        Ok(())
    }
}
