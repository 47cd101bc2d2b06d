// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_spdm_responder`: the device side (`spdm/responder.rs`): every
//! request in every state, every error code it sends, individual messages, malformed
//! requests and chunked certificates.

use kernel::prelude::*;

#[kunit_tests(devsec_spdm_responder)]
mod tests {
    use crate::spdm::*;
    use crate::spdm_suites::common::*;

    const N: Nonce = [0x5a; NONCE_LEN];

    /// The well-formed requests of our requester, one of each kind.
    fn all_requests() -> [Request; 8] {
        [
            Request::GetVersion,
            get_capabilities(),
            negotiate(),
            Request::GetDigests,
            get_certificate(0, 64),
            challenge(summary::ALL, N),
            get_measurements(false, meas::OP_ALL, N),
            get_measurements(true, meas::OP_ALL, N),
        ]
    }

    /// A VENDOR_DEFINED_REQUEST as TDISP sends it (GET_TDISP_VERSION).
    fn vendor_defined() -> Msg {
        let mut msg = Msg::from(&[0x12, 0xfe, 0, 0, 0x03, 0x00, 2, 0x01, 0x00]);
        for byte in [17, 0, 0x01, 0x10, 0x81, 0, 0] {
            msg.push(byte);
        }
        for _ in 0..12 {
            msg.push(0);
        }
        msg
    }

    /// Returns the response code or error expected for `req` in `state`.
    fn expected(state: ConnectionState, req: &Request) -> Result<Code, ErrorCode> {
        use ConnectionState::*;
        let negotiated = state >= Negotiated;
        let ok = |cond: bool, code| {
            if cond {
                Ok(code)
            } else {
                Err(ErrorCode::UnexpectedRequest)
            }
        };
        match req {
            Request::GetVersion => Ok(Code::Version),
            Request::GetCapabilities(_) => ok(state == AfterVersion, Code::Capabilities),
            Request::NegotiateAlgorithms(_) => ok(state == AfterCapabilities, Code::Algorithms),
            Request::GetDigests => ok(negotiated, Code::Digests),
            Request::GetCertificate { .. } => ok(negotiated, Code::Certificate),
            Request::Challenge { .. } => ok(negotiated, Code::ChallengeAuth),
            Request::GetMeasurements { .. } => ok(negotiated, Code::Measurements),
        }
    }

    /// Returns the state a successful `req` leaves the responder in, from `state`.
    fn next_state(state: ConnectionState, req: &Request) -> ConnectionState {
        match req {
            Request::GetVersion => ConnectionState::AfterVersion,
            Request::GetCapabilities(_) => ConnectionState::AfterCapabilities,
            Request::NegotiateAlgorithms(_) => ConnectionState::Negotiated,
            Request::Challenge { .. } => ConnectionState::Authenticated,
            _ => state,
        }
    }

    // ---- Every request in every state -----------------------------------------------------

    #[test]
    fn cert_chain_is_encoded_with_its_length_and_root_hash() {
        let chain = default_chain();
        let certs = chain.bytes().get(CERT_CHAIN_HEADER_LEN..).unwrap_or(&[]);
        let mut out = HeapBuf::<CHAIN_CAP>::new();
        assert_eq!(encode_cert_chain::<ToyHash>(certs, &mut out), Ok(chain.len));
        assert_eq!(out.get(..chain.len), Some(chain.bytes()));
        // Too small for the chain, and not DER at all.
        let mut small = [0u8; 100];
        assert_eq!(
            encode_cert_chain::<ToyHash>(certs, &mut small),
            Err(CodecError::BufferTooSmall)
        );
        assert_eq!(
            encode_cert_chain::<ToyHash>(&[0x31, 0x00], &mut out),
            Err(CodecError::InvalidField)
        );
        assert_eq!(
            encode_cert_chain::<ToyHash>(&[], &mut out),
            Err(CodecError::InvalidField)
        );
    }

    #[test]
    fn every_request_in_every_state_is_answered_or_unexpected_request() -> Result<(), NoMemory> {
        for state in STATES {
            for req in all_requests() {
                let mut dev = Device::new()?;
                dev.reach(state);
                assert_eq!(dev.responder.state(), state);
                let rsp = dev.request(&req);
                match expected(state, &req) {
                    Ok(code) => {
                        assert_eq!(code_of(&rsp), Some(code));
                        assert_eq!(dev.responder.state(), next_state(state, &req));
                    }
                    Err(err) => {
                        assert_eq!(error_code(&rsp), Some(err));
                        assert_eq!(dev.responder.state(), state);
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn vendor_defined_before_negotiation_is_unexpected_request() -> Result<(), NoMemory> {
        for state in [
            ConnectionState::NotStarted,
            ConnectionState::AfterVersion,
            ConnectionState::AfterCapabilities,
        ] {
            let mut dev = Device::new()?;
            dev.reach(state);
            let rsp = dev.send(vendor_defined().bytes());
            assert_eq!(
                error_of(&rsp),
                Some((ErrorCode::UnexpectedRequest as u8, 0))
            );
            assert_eq!(dev.responder.state(), state);
            assert!(!dev.responder.is_negotiated());
        }
        Ok(())
    }

    #[test]
    fn vendor_defined_after_negotiation_is_unsupported_request_for_the_tdisp_layer(
    ) -> Result<(), NoMemory> {
        for state in [ConnectionState::Negotiated, ConnectionState::Authenticated] {
            let mut dev = Device::new()?;
            dev.reach(state);
            assert!(dev.responder.is_negotiated());
            let rsp = dev.send(vendor_defined().bytes());
            assert_eq!(
                error_of(&rsp),
                Some((ErrorCode::UnsupportedRequest as u8, 0xfe))
            );
            assert_eq!(dev.responder.state(), state);
        }
        Ok(())
    }

    #[test]
    fn unknown_request_codes_are_unsupported_request_with_the_code() -> Result<(), NoMemory> {
        // KEY_EXCHANGE, FINISH, END_SESSION, GET_CSR, CHUNK_SEND, RESPOND_IF_READY, an
        // undefined request code, and response codes sent as requests.
        let codes = [0xe4, 0xe5, 0xec, 0xed, 0x85, 0xff, 0x80, 0x01, 0x04, 0x7f];
        for state in STATES {
            for code in codes {
                let mut dev = Device::new()?;
                dev.reach(state);
                let rsp = dev.send(&[0x12, code, 0, 0]);
                assert_eq!(
                    error_of(&rsp),
                    Some((ErrorCode::UnsupportedRequest as u8, code))
                );
                assert_eq!(dev.responder.state(), state);
            }
        }
        Ok(())
    }

    #[test]
    fn message_shorter_than_the_header_is_invalid_request() -> Result<(), NoMemory> {
        for len in 0..HEADER_LEN {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            let full = [0x12, 0x81, 0, 0];
            let rsp = dev.send(full.get(..len).unwrap_or(&[]));
            assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
            assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        }
        Ok(())
    }

    #[test]
    fn short_response_buffer_ignores_the_request() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        let mut buf = HeapBuf::<{ MIN_RESPONSE_LEN - 1 }>::new();
        assert_eq!(buf.len(), MIN_RESPONSE_LEN - 1);
        let req = encode(&Request::GetVersion);
        let len = dev
            .responder
            .handle(req.bytes(), &mut buf, &mut |b| b.fill(1));
        assert_eq!(len, 0);
        assert_eq!(dev.responder.state(), ConnectionState::NotStarted);
        Ok(())
    }

    // ---- Versions -------------------------------------------------------------------------

    #[test]
    fn get_version_answers_1_2_in_every_state() -> Result<(), NoMemory> {
        for state in STATES {
            let mut dev = Device::new()?;
            dev.reach(state);
            let rsp = dev.request(&Request::GetVersion);
            assert_eq!(rsp.bytes(), &[0x10, 0x04, 0, 0, 0, 1, 0x00, 0x12]);
            assert_eq!(dev.responder.state(), ConnectionState::AfterVersion);
        }
        Ok(())
    }

    #[test]
    fn get_version_resets_the_connection_from_every_state() -> Result<(), NoMemory> {
        for state in STATES {
            let mut dev = Device::new()?;
            dev.reach(state);
            let rsp = dev.request(&Request::GetVersion);
            assert_eq!(dev.responder.vca().len(), 4 + rsp.len);
            let rsp = dev.request(&Request::GetDigests);
            assert_eq!(error_code(&rsp), Some(ErrorCode::UnexpectedRequest));
            assert_eq!(
                code_of(&dev.request(&get_capabilities())),
                Some(Code::Capabilities)
            );
        }
        Ok(())
    }

    #[test]
    fn get_version_other_than_1_0_is_version_mismatch_in_1_0() -> Result<(), NoMemory> {
        for version in [0x11, 0x12, 0x13, 0x20, 0x00] {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            let rsp = dev.send(&[version, 0x84, 0, 0]);
            assert_eq!(error_code(&rsp), Some(ErrorCode::VersionMismatch));
            assert_eq!(rsp.get(0), 0x10);
            assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        }
        Ok(())
    }

    #[test]
    fn requests_in_another_version_than_1_2_are_version_mismatch() -> Result<(), NoMemory> {
        for req in all_requests().into_iter().skip(1) {
            for version in [0x10, 0x11, 0x13, 0x21] {
                let state = match req {
                    Request::GetCapabilities(_) => ConnectionState::AfterVersion,
                    Request::NegotiateAlgorithms(_) => ConnectionState::AfterCapabilities,
                    _ => ConnectionState::Negotiated,
                };
                let mut dev = Device::new()?;
                dev.reach(state);
                let mut msg = encode(&req);
                msg.set(0, version);
                let rsp = dev.send(msg.bytes());
                assert_eq!(error_code(&rsp), Some(ErrorCode::VersionMismatch));
                assert_eq!(rsp.get(0), 0x12);
                assert_eq!(dev.responder.state(), state);
            }
        }
        Ok(())
    }

    #[test]
    fn errors_are_sent_in_1_0_before_version_and_in_1_2_after() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        let rsp = dev.request(&Request::GetDigests);
        assert_eq!(rsp.bytes(), &[0x10, 0x7f, 0x04, 0]);
        dev.reach(ConnectionState::AfterVersion);
        let rsp = dev.request(&Request::GetDigests);
        assert_eq!(rsp.bytes(), &[0x12, 0x7f, 0x04, 0]);
        Ok(())
    }

    // ---- Malformed requests ---------------------------------------------------------------

    #[test]
    fn truncated_or_oversized_requests_are_invalid_request() -> Result<(), NoMemory> {
        let mut requests = all_requests();
        if let Some(last) = requests.last_mut() {
            *last = get_measurements(true, 1, N);
        }
        for req in requests {
            let state = match req {
                Request::GetVersion => ConnectionState::NotStarted,
                Request::GetCapabilities(_) => ConnectionState::AfterVersion,
                Request::NegotiateAlgorithms(_) => ConnectionState::AfterCapabilities,
                _ => ConnectionState::Negotiated,
            };
            let full = encode(&req);
            let mut short = full.clone();
            short.pop();
            let mut long = full;
            for _ in 0..=MAX_PADDING {
                long.push(0);
            }
            for msg in [short, long] {
                let mut dev = Device::new()?;
                dev.reach(state);
                let rsp = dev.send(msg.bytes());
                assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
                assert_eq!(dev.responder.state(), state);
            }
        }
        Ok(())
    }

    #[test]
    fn requests_with_doe_padding_are_answered_as_without() -> Result<(), NoMemory> {
        for req in all_requests() {
            let state = match req {
                Request::GetVersion => ConnectionState::NotStarted,
                Request::GetCapabilities(_) => ConnectionState::AfterVersion,
                Request::NegotiateAlgorithms(_) => ConnectionState::AfterCapabilities,
                _ => ConnectionState::Negotiated,
            };
            let mut plain = Device::new()?;
            plain.reach(state);
            let want = plain.request(&req);
            for pad in 1..=MAX_PADDING {
                let mut msg = encode(&req);
                for _ in 0..pad {
                    msg.push(0);
                }
                let mut dev = Device::new()?;
                dev.reach(state);
                let rsp = dev.send(msg.bytes());
                assert_eq!(rsp.bytes(), want.bytes());
                assert_eq!(dev.responder.vca(), plain.responder.vca());
            }
        }
        Ok(())
    }

    // ---- GET_CAPABILITIES -----------------------------------------------------------------

    #[test]
    fn capabilities_has_the_1_2_layout_and_flags() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::AfterVersion);
        let rsp = dev.request(&get_capabilities());
        let size = (MAX_MESSAGE_LEN as u32).to_le_bytes();
        let flags = RESPONDER_FLAGS.to_le_bytes();
        let mut want = Msg::from(&[0x12, 0x61, 0, 0, 0, CT_EXPONENT, 0, 0]);
        for &byte in flags.iter().chain(&size).chain(&size) {
            want.push(byte);
        }
        assert_eq!(rsp.bytes(), want.bytes());
        assert_eq!(rsp.len, CAPABILITIES_LEN);
        assert_eq!(RESPONDER_FLAGS, 0x16);
        assert_eq!(dev.responder.requester_capabilities(), OUR_CAPABILITIES);
        Ok(())
    }

    #[test]
    fn get_capabilities_with_bad_transfer_sizes_is_invalid_request() -> Result<(), NoMemory> {
        let bad = [(41, 41), (0, 4096), (4096, 4095)];
        for (data_transfer_size, max_message_size) in bad {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::AfterVersion);
            let req = Request::GetCapabilities(CapabilityParams {
                ct_exponent: 0,
                flags: 0,
                data_transfer_size,
                max_message_size,
            });
            assert_eq!(
                error_code(&dev.request(&req)),
                Some(ErrorCode::InvalidRequest)
            );
            assert_eq!(dev.responder.state(), ConnectionState::AfterVersion);
        }
        Ok(())
    }

    // ---- NEGOTIATE_ALGORITHMS -------------------------------------------------------------

    /// Sends NEGOTIATE_ALGORITHMS with `offer`; returns the device and the response.
    fn algorithms_for(offer: AlgorithmsOffer) -> Result<(Device, Msg), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::AfterCapabilities);
        let rsp = dev.request(&Request::NegotiateAlgorithms(offer));
        Ok((dev, rsp))
    }

    #[test]
    fn algorithms_select_rsassa_3072_sha_384_and_dmtf_measurements() -> Result<(), NoMemory> {
        let (dev, rsp) = algorithms_for(libspdm_like_offer())?;
        assert_eq!(code_of(&rsp), Some(Code::Algorithms));
        assert_eq!(rsp.len, ALGORITHMS_FIXED_LEN + 4 * 4);
        assert_eq!(rsp.get(2), 4);
        assert_eq!(rsp.get(4), rsp.len as u8);
        assert_eq!(rsp.get(6), alg::MEASUREMENT_SPEC_DMTF);
        assert_eq!(rsp.get(7), 0);
        assert_eq!(rsp.buf.get(8..12), Some(&0x4u32.to_le_bytes()[..]));
        assert_eq!(rsp.buf.get(12..16), Some(&0x4u32.to_le_bytes()[..]));
        assert_eq!(rsp.buf.get(16..20), Some(&0x2u32.to_le_bytes()[..]));
        assert_eq!(rsp.buf.get(32..36), Some(&[0u8; 4][..]));
        assert_eq!(rsp.buf.get(36..40), Some(&[2, 0x20, 0, 0][..]));
        assert_eq!(rsp.buf.get(48..52), Some(&[5, 0x20, 0, 0][..]));
        assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        Ok(())
    }

    #[test]
    fn algorithms_without_a_common_algorithm_is_invalid_request() -> Result<(), NoMemory> {
        let only_ecdsa = AlgorithmsOffer {
            base_asym: alg::BASE_ASYM_ECDSA_P384,
            ..AlgorithmsOffer::ours()
        };
        let only_sha_256 = AlgorithmsOffer {
            base_hash: alg::BASE_HASH_SHA_256,
            ..AlgorithmsOffer::ours()
        };
        for offer in [only_ecdsa, only_sha_256] {
            let (dev, rsp) = algorithms_for(offer)?;
            assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
            assert_eq!(dev.responder.state(), ConnectionState::AfterCapabilities);
        }
        Ok(())
    }

    #[test]
    fn negotiate_algorithms_length_field_must_be_the_message_length() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::AfterCapabilities);
        let mut msg = encode(&negotiate());
        msg.set_u16(4, msg.len as u16 + 1);
        assert_eq!(
            error_code(&dev.send(msg.bytes())),
            Some(ErrorCode::InvalidRequest)
        );
        msg.set_u16(4, msg.len as u16 - 1);
        assert_eq!(
            error_code(&dev.send(msg.bytes())),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(dev.responder.state(), ConnectionState::AfterCapabilities);
        Ok(())
    }

    #[test]
    fn negotiate_algorithms_limits_extended_algorithms_and_length() -> Result<(), NoMemory> {
        let ext = |asym, hash| AlgorithmsOffer {
            ext_asym_count: asym,
            ext_hash_count: hash,
            ..AlgorithmsOffer::ours()
        };
        let (_, rsp) = algorithms_for(ext(10, 10))?;
        assert_eq!(code_of(&rsp), Some(Code::Algorithms));
        let (_, rsp) = algorithms_for(ext(11, 10))?;
        assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
        // 32 + 4 * 24 = 128 bytes is the longest request, but 24 extended algorithms are
        // too many; one struct more makes it too long anyway.
        let mut offer = ext(20, 4);
        offer.struct_count = 1;
        offer.structs[0].alg_type = alg::STRUCT_DHE;
        let (_, rsp) = algorithms_for(offer)?;
        assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
        Ok(())
    }

    #[test]
    fn negotiate_algorithms_alg_structs_must_be_known_and_ordered() -> Result<(), NoMemory> {
        let with = |types: &[u8]| {
            let mut offer = AlgorithmsOffer::ours();
            for (s, &alg_type) in offer.structs.iter_mut().zip(types) {
                s.alg_type = alg_type;
            }
            offer.struct_count = types.len() as u8;
            offer
        };
        for bad in [&[1u8][..], &[6], &[3, 2], &[2, 2], &[0]] {
            let (_, rsp) = algorithms_for(with(bad))?;
            assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
        }
        let (_, rsp) = algorithms_for(with(&[2, 4]))?;
        assert_eq!(code_of(&rsp), Some(Code::Algorithms));
        // A fixed byte count other than 2.
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::AfterCapabilities);
        let mut msg = encode(&Request::NegotiateAlgorithms(with(&[2])));
        msg.set(NEGOTIATE_ALGORITHMS_FIXED_LEN + 1, 0x30);
        assert_eq!(
            error_code(&dev.send(msg.bytes())),
            Some(ErrorCode::InvalidRequest)
        );
        // More AlgStructs in Param1 than the message holds.
        let mut msg = encode(&Request::NegotiateAlgorithms(with(&[2])));
        msg.set(2, 2);
        assert_eq!(
            error_code(&dev.send(msg.bytes())),
            Some(ErrorCode::InvalidRequest)
        );
        Ok(())
    }

    #[test]
    fn algorithms_without_dmtf_measurements_disable_measurements() -> Result<(), NoMemory> {
        let offer = AlgorithmsOffer {
            measurement_spec: 0,
            ..AlgorithmsOffer::ours()
        };
        let (mut dev, rsp) = algorithms_for(offer)?;
        assert_eq!(code_of(&rsp), Some(Code::Algorithms));
        assert_eq!((rsp.get(6), rsp.buf.get(8..12)), (0, Some(&[0u8; 4][..])));
        let rsp = dev.request(&get_measurements(false, meas::OP_COUNT, N));
        assert_eq!(error_code(&rsp), Some(ErrorCode::UnexpectedRequest));
        let rsp = dev.request(&challenge(summary::TCB, N));
        assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
        let rsp = dev.request(&challenge(summary::NONE, N));
        assert_eq!(code_of(&rsp), Some(Code::ChallengeAuth));
        Ok(())
    }

    // ---- GET_DIGESTS and GET_CERTIFICATE --------------------------------------------------

    #[test]
    fn digests_carries_the_chain_digest_of_slot_0() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::Negotiated);
        let rsp = dev.request(&Request::GetDigests);
        assert_eq!(rsp.len, HEADER_LEN + HASH_LEN);
        assert_eq!(rsp.buf.get(..4), Some(&[0x12, 0x01, 0, 0x01][..]));
        let digest = toy_hash(&[default_chain().bytes()]);
        assert_eq!(rsp.buf.get(4..4 + HASH_LEN), Some(&digest[..]));
        Ok(())
    }

    #[test]
    fn missing_chain_is_unspecified() -> Result<(), NoMemory> {
        let mut device = ToyDevice::new();
        device.chain.len = 0;
        let mut dev = Device::with(device)?;
        dev.reach(ConnectionState::Negotiated);
        assert_eq!(
            error_code(&dev.request(&Request::GetDigests)),
            Some(ErrorCode::Unspecified)
        );
        let rsp = dev.request(&get_certificate(0, 64));
        assert_eq!(error_code(&rsp), Some(ErrorCode::Unspecified));
        let rsp = dev.request(&challenge(summary::NONE, N));
        assert_eq!(error_code(&rsp), Some(ErrorCode::Unspecified));
        assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        Ok(())
    }

    #[test]
    fn hash_failure_is_unspecified_and_changes_nothing() -> Result<(), NoMemory> {
        let mut device = ToyDevice::new();
        if let Some(dst) = device.chain.buf.get_mut(200..204) {
            dst.copy_from_slice(b"FAIL");
        }
        let mut responder =
            boxed(Responder::<ToyDevice, FlakyHash>::new(device)).ok_or(NoMemory)?;
        let mut seed = 7;
        let mut send = |responder: &mut Responder<ToyDevice, FlakyHash>, req: &Request| {
            let msg = encode(req);
            let mut rsp = Msg::new();
            rsp.len = responder.handle(msg.bytes(), &mut rsp.buf, &mut |b| fill(&mut seed, b));
            rsp
        };
        for req in [Request::GetVersion, get_capabilities(), negotiate()] {
            assert!(code_of(&send(&mut responder, &req)).is_some_and(|c| c != Code::Error));
        }
        let failing = [
            Request::GetDigests,
            get_certificate(0, 0xffff),
            challenge(summary::NONE, N),
        ];
        for req in failing {
            assert_eq!(
                error_code(&send(&mut responder, &req)),
                Some(ErrorCode::Unspecified)
            );
            assert_eq!(responder.state(), ConnectionState::Negotiated);
        }
        // B is broken until a reset: even a portion without the failing bytes cannot enter
        // it. L1/L2 is another computation and still works.
        let rsp = send(&mut responder, &get_certificate(0, 100));
        assert_eq!(error_code(&rsp), Some(ErrorCode::Unspecified));
        let rsp = send(&mut responder, &get_measurements(true, meas::OP_ALL, N));
        assert_eq!(code_of(&rsp), Some(Code::Measurements));
        for req in [Request::GetVersion, get_capabilities(), negotiate()] {
            assert!(code_of(&send(&mut responder, &req)).is_some_and(|c| c != Code::Error));
        }
        let rsp = send(&mut responder, &get_certificate(0, 100));
        assert_eq!(code_of(&rsp), Some(Code::Certificate));
        Ok(())
    }

    /// Fetches the chain from `dev` in portions of `length`; returns the chain, its length
    /// and the number of portions.
    fn fetch_raw(dev: &mut Device, length: u16) -> (Chain, usize, usize) {
        let mut out = Chain::new(0, 0);
        let mut offset = 0usize;
        let mut portions = 0;
        while portions < 5000 {
            let rsp = dev.request(&get_certificate(offset as u16, length));
            portions += 1;
            if code_of(&rsp) != Some(Code::Certificate) {
                break;
            }
            let portion_len = usize::from(u16::from_le_bytes([rsp.get(4), rsp.get(5)]));
            let remainder = usize::from(u16::from_le_bytes([rsp.get(6), rsp.get(7)]));
            if portion_len > usize::from(length) || rsp.len != CERTIFICATE_HEADER_LEN + portion_len
            {
                break;
            }
            let portion = rsp.buf.get(8..8 + portion_len).unwrap_or(&[]);
            if let Some(dst) = out.buf.get_mut(offset..offset + portion_len) {
                dst.copy_from_slice(portion);
            }
            offset += portion_len;
            if remainder == 0 || portion_len == 0 {
                break;
            }
        }
        out.len = offset;
        (out, offset, portions)
    }

    #[test]
    fn get_certificate_chunks_reassemble_the_chain() -> Result<(), NoMemory> {
        let chain = default_chain();
        let len = chain.len;
        for length in [1u16, 7, 64, 100, 511, 512, 1000, 0xffff] {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            let (got, got_len, portions) = fetch_raw(&mut dev, length);
            assert_eq!(got_len, len);
            assert_eq!(got.bytes(), chain.bytes());
            let max_portion = usize::from(length).min(MAX_MESSAGE_LEN - CERTIFICATE_HEADER_LEN);
            assert_eq!(portions, len.div_ceil(max_portion));
        }
        Ok(())
    }

    #[test]
    fn get_certificate_remainder_counts_down_to_zero() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::Negotiated);
        let len = default_chain().len;
        let rsp = dev.request(&get_certificate(100, 50));
        assert_eq!(rsp.buf.get(..4), Some(&[0x12, 0x02, 0, 0][..]));
        assert_eq!(u16::from_le_bytes([rsp.get(4), rsp.get(5)]), 50);
        assert_eq!(
            usize::from(u16::from_le_bytes([rsp.get(6), rsp.get(7)])),
            len - 150
        );
        let rsp = dev.request(&get_certificate((len - 1) as u16, 50));
        assert_eq!(
            (rsp.get(4), rsp.get(6), rsp.len),
            (1, 0, CERTIFICATE_HEADER_LEN + 1)
        );
        Ok(())
    }

    #[test]
    fn get_certificate_portion_is_clamped_to_the_requester_transfer_size() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::AfterVersion);
        let req = Request::GetCapabilities(CapabilityParams {
            ct_exponent: 0,
            flags: 0,
            data_transfer_size: MIN_DATA_TRANSFER_SIZE,
            max_message_size: 4096,
        });
        dev.request(&req);
        dev.request(&negotiate());
        let rsp = dev.request(&get_certificate(0, 0xffff));
        assert_eq!(rsp.len, MIN_DATA_TRANSFER_SIZE as usize);
        let (got, len, _) = fetch_raw(&mut dev, 0xffff);
        assert_eq!(
            (got.bytes(), len),
            (default_chain().bytes(), default_chain().len)
        );
        Ok(())
    }

    #[test]
    fn get_certificate_past_the_end_empty_or_other_slot_is_invalid_request() -> Result<(), NoMemory>
    {
        let len = default_chain().len as u16;
        let bad = [
            get_certificate(len, 16),
            get_certificate(0xffff, 16),
            get_certificate(0, 0),
            Request::GetCertificate {
                slot: 1,
                offset: 0,
                length: 16,
            },
            Request::GetCertificate {
                slot: 0xf,
                offset: 0,
                length: 16,
            },
        ];
        for req in bad {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            assert_eq!(
                error_code(&dev.request(&req)),
                Some(ErrorCode::InvalidRequest)
            );
        }
        Ok(())
    }

    // ---- CHALLENGE ------------------------------------------------------------------------

    /// The measurement summary hash over blocks `blocks` of the test device.
    fn summary_of(blocks: &[usize]) -> Digest {
        let dev = ToyDevice::new();
        let mut record = Msg::new();
        for &n in blocks {
            if let Some(m) = dev.measurement(n) {
                for &byte in block_header(&m).unwrap_or([0; 7]).iter().chain(m.value) {
                    record.push(byte);
                }
            }
        }
        toy_hash(&[record.bytes()])
    }

    #[test]
    fn challenge_auth_has_the_1_2_layout_for_each_summary_type() -> Result<(), NoMemory> {
        let cases = [
            (summary::NONE, None),
            (summary::TCB, Some(summary_of(&[0, 1]))),
            (summary::ALL, Some(summary_of(&[0, 1, 2]))),
        ];
        for (kind, summary_hash) in cases {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            let rsp = dev.request(&challenge(kind, N));
            let hash_len = if summary_hash.is_some() { HASH_LEN } else { 0 };
            let unsigned = HEADER_LEN + HASH_LEN + NONCE_LEN + hash_len + 2;
            assert_eq!(rsp.len, unsigned + SIGNATURE_LEN);
            assert_eq!(rsp.buf.get(..4), Some(&[0x12, 0x03, 0, 0x01][..]));
            let chain_hash = toy_hash(&[default_chain().bytes()]);
            assert_eq!(rsp.buf.get(4..52), Some(&chain_hash[..]));
            assert!(rsp.buf.get(52..84).is_some_and(|n| n != [0; 32]));
            if let Some(hash) = summary_hash {
                assert_eq!(rsp.buf.get(84..132), Some(&hash[..]));
            }
            assert_eq!(rsp.buf.get(unsigned - 2..unsigned), Some(&[0u8, 0][..]));
            let signed = dev
                .responder
                .device()
                .signed
                .get()
                .unwrap_or([0; SIGNED_MESSAGE_LEN]);
            assert_eq!(rsp.buf.get(unsigned..rsp.len), Some(&toy_sign(&signed)[..]));
            assert_eq!(dev.responder.state(), ConnectionState::Authenticated);
        }
        Ok(())
    }

    #[test]
    fn challenge_with_another_slot_or_summary_type_is_invalid_request() -> Result<(), NoMemory> {
        let bad = [
            Request::Challenge {
                slot: 1,
                summary: 0,
                nonce: N,
            },
            Request::Challenge {
                slot: 0xff,
                summary: 0,
                nonce: N,
            },
            challenge(2, N),
            challenge(0xfe, N),
        ];
        for req in bad {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            assert_eq!(
                error_code(&dev.request(&req)),
                Some(ErrorCode::InvalidRequest)
            );
            assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        }
        Ok(())
    }

    #[test]
    fn challenge_signing_failure_is_unspecified() -> Result<(), NoMemory> {
        let mut device = ToyDevice::new();
        device.fail_sign = true;
        let mut dev = Device::with(device)?;
        dev.reach(ConnectionState::Negotiated);
        let rsp = dev.request(&challenge(summary::NONE, N));
        assert_eq!(error_code(&rsp), Some(ErrorCode::Unspecified));
        assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        let rsp = dev.request(&get_measurements(true, meas::OP_ALL, N));
        assert_eq!(error_code(&rsp), Some(ErrorCode::Unspecified));
        Ok(())
    }

    #[test]
    fn zero_nonce_from_the_generator_is_unspecified() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::Negotiated);
        let req = encode(&challenge(summary::NONE, N));
        let mut rsp = Msg::new();
        rsp.len = dev
            .responder
            .handle(req.bytes(), &mut rsp.buf, &mut |b| b.fill(0));
        assert_eq!(error_code(&rsp), Some(ErrorCode::Unspecified));
        assert_eq!(dev.responder.state(), ConnectionState::Negotiated);
        Ok(())
    }

    // ---- GET_MEASUREMENTS -----------------------------------------------------------------

    const BLOCK_LEN: usize = MEASUREMENT_BLOCK_HEADER_LEN + HASH_LEN;

    #[test]
    fn measurements_count_all_and_one_index() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::Negotiated);
        let rsp = dev.request(&get_measurements(false, meas::OP_COUNT, N));
        assert_eq!(rsp.len, HEADER_LEN + 4 + NONCE_LEN + 2);
        assert_eq!(rsp.buf.get(..8), Some(&[0x12, 0x60, 3, 0, 0, 0, 0, 0][..]));

        let rsp = dev.request(&get_measurements(false, meas::OP_ALL, N));
        assert_eq!(rsp.len, HEADER_LEN + 4 + 3 * BLOCK_LEN + NONCE_LEN + 2);
        let record = (3 * BLOCK_LEN) as u8;
        assert_eq!(
            rsp.buf.get(..8),
            Some(&[0x12, 0x60, 0, 0, 3, record, 0, 0][..])
        );
        // The first block: index 1, DMTF, size 51, immutable ROM, value size 48.
        assert_eq!(rsp.buf.get(8..15), Some(&[1, 1, 51, 0, 0, 48, 0][..]));
        assert_eq!(rsp.buf.get(15..15 + HASH_LEN), Some(&MEAS_VALUES[0][..]));

        let rsp = dev.request(&get_measurements(false, 5, N));
        assert_eq!(rsp.len, HEADER_LEN + 4 + BLOCK_LEN + NONCE_LEN + 2);
        assert_eq!(
            rsp.buf.get(4..11),
            Some(&[1, BLOCK_LEN as u8, 0, 0, 5, 1, 51][..])
        );
        Ok(())
    }

    #[test]
    fn measurements_of_a_missing_index_is_invalid_request() -> Result<(), NoMemory> {
        for index in [3u8, 4, 0xfe] {
            let mut dev = Device::new()?;
            dev.reach(ConnectionState::Negotiated);
            let rsp = dev.request(&get_measurements(false, index, N));
            assert_eq!(error_code(&rsp), Some(ErrorCode::InvalidRequest));
        }
        Ok(())
    }

    #[test]
    fn measurements_of_a_device_without_measurements_are_empty() -> Result<(), NoMemory> {
        let mut device = ToyDevice::new();
        device.no_measurements = true;
        let mut dev = Device::with(device)?;
        dev.reach(ConnectionState::Negotiated);
        let rsp = dev.request(&get_measurements(false, meas::OP_ALL, N));
        assert_eq!(rsp.buf.get(2..8), Some(&[0, 0, 0, 0, 0, 0][..]));
        let rsp = dev.request(&get_measurements(false, meas::OP_COUNT, N));
        assert_eq!(rsp.get(2), 0);
        Ok(())
    }

    #[test]
    fn signed_measurements_carry_the_slot_and_a_signature() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::Negotiated);
        let rsp = dev.request(&get_measurements(true, meas::OP_ALL, N));
        let unsigned = HEADER_LEN + 4 + 3 * BLOCK_LEN + NONCE_LEN + 2;
        assert_eq!(rsp.len, unsigned + SIGNATURE_LEN);
        assert_eq!(rsp.get(3), 0);
        let signed = dev
            .responder
            .device()
            .signed
            .get()
            .unwrap_or([0; SIGNED_MESSAGE_LEN]);
        assert_eq!(
            signed.get(70..100),
            Some(&b"responder-measurements signing"[..])
        );
        assert_eq!(rsp.buf.get(unsigned..rsp.len), Some(&toy_sign(&signed)[..]));
        let other_slot = Request::GetMeasurements {
            attributes: meas::ATTR_SIGNATURE,
            operation: meas::OP_ALL,
            nonce: N,
            slot: 1,
        };
        assert_eq!(
            error_code(&dev.request(&other_slot)),
            Some(ErrorCode::InvalidRequest)
        );
        Ok(())
    }

    #[test]
    fn unsigned_get_measurements_has_no_nonce_or_slot() -> Result<(), NoMemory> {
        let mut dev = Device::new()?;
        dev.reach(ConnectionState::Negotiated);
        let rsp = dev.send(&[0x12, 0xe0, 0, 0xff]);
        assert_eq!(code_of(&rsp), Some(Code::Measurements));
        let mut with_nonce = Msg::from(&[0x12, 0xe0, 0, 0xff]);
        for _ in 0..NONCE_LEN + 1 {
            with_nonce.push(1);
        }
        assert_eq!(
            error_code(&dev.send(with_nonce.bytes())),
            Some(ErrorCode::InvalidRequest)
        );
        Ok(())
    }
}
