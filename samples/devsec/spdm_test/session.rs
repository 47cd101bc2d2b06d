// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_spdm_session`: the requester against the responder, end to end,
//! over the test doubles: both sides sign and verify exactly the same bytes, those bytes
//! are the SPDM 1.2 transcripts, and any change of the transcript changes them.

use kernel::prelude::*;

#[kunit_tests(devsec_spdm_session)]
mod tests {
    use crate::spdm::*;
    use crate::spdm_suites::common::*;

    const N: Nonce = [0x9c; NONCE_LEN];

    /// The messages of a session, in order: requests and responses.
    struct Log {
        msgs: [Msg; 24],
        count: usize,
    }

    impl Log {
        fn new() -> Self {
            Self {
                msgs: core::array::from_fn(|_| Msg::new()),
                count: 0,
            }
        }

        fn push(&mut self, msg: &Msg) {
            if let Some(slot) = self.msgs.get_mut(self.count) {
                *slot = msg.clone();
                self.count += 1;
            }
        }

        fn get(&self, n: usize) -> &[u8] {
            self.msgs.get(n).map(Msg::bytes).unwrap_or(&[])
        }
    }

    /// A session that logs every message.
    struct Logged {
        s: Session,
        log: Log,
    }

    impl Logged {
        fn new() -> Result<Self, NoMemory> {
            Ok(Self {
                s: Session::new()?,
                log: Log::new(),
            })
        }

        fn exchange(&mut self, req: &Request) -> Result<Reply<'_>, RequesterError> {
            let mut msg = Msg::new();
            msg.len = self.s.requester.encode(req, &mut msg.buf)?;
            let rsp = self.s.device.send(msg.bytes());
            self.log.push(&msg);
            self.log.push(&rsp);
            self.s.last = rsp;
            self.s
                .requester
                .decode(self.s.last.bytes(), &self.s.verifier)
        }

        fn ok(&mut self, req: &Request) -> bool {
            self.exchange(req).is_ok()
        }

        fn device_signed(&self) -> Option<SignedMessage> {
            self.s.device.responder.device().signed.get()
        }
    }

    /// Without its signature: a response of `len` bytes.
    fn unsigned(msg: &[u8]) -> &[u8] {
        msg.get(..msg.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or(&[])
    }

    #[test]
    fn full_session_authenticates_and_verifies_measurements() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        assert!(s.exchange(&Request::GetDigests).is_ok());
        assert_eq!(s.fetch_chain(700), Some(3));
        let got = s.exchange(&challenge(summary::ALL, N));
        assert!(matches!(
            got,
            Ok(Reply::ChallengeAuth {
                summary: Some(_),
                ..
            })
        ));
        assert_eq!(s.requester.state(), ConnectionState::Authenticated);
        assert_eq!(s.device.responder.state(), ConnectionState::Authenticated);
        assert_eq!(s.requester.responder_capabilities().flags, RESPONDER_FLAGS);
        assert_eq!(s.verifier.chain_len.get(), default_chain().len);
        let got = s.exchange(&get_measurements(true, meas::OP_ALL, N));
        let signed = match got {
            Ok(Reply::Measurements {
                blocks: 3, signed, ..
            }) => signed,
            _ => None,
        };
        assert!(signed.is_some());
        assert_eq!(signed, s.device.responder.device().signed.get());
        assert_eq!(signed, s.verifier.verified.get());
        Ok(())
    }

    #[test]
    fn requester_and_responder_sign_the_same_challenge_auth_bytes() -> Result<(), NoMemory> {
        for kind in [summary::NONE, summary::TCB, summary::ALL] {
            let mut s = Session::new()?;
            assert!(s.authenticate_prelude());
            let got = s.exchange(&challenge(kind, N));
            let signed = match got {
                Ok(Reply::ChallengeAuth { signed, .. }) => Some(signed),
                _ => None,
            };
            assert!(signed.is_some());
            assert_eq!(signed, s.device.responder.device().signed.get());
            assert_eq!(signed, s.verifier.verified.get());
        }
        Ok(())
    }

    #[test]
    fn challenge_auth_signature_covers_vca_digests_certificate_challenge() -> Result<(), NoMemory> {
        let mut l = Logged::new()?;
        assert!(l.ok(&Request::GetVersion));
        assert!(l.ok(&get_capabilities()));
        assert!(l.ok(&negotiate()));
        assert!(l.ok(&Request::GetDigests));
        assert!(l.ok(&get_certificate(0, 1000)));
        assert!(l.ok(&l.s.requester.next_certificate(1000)));
        assert!(l.ok(&challenge(summary::TCB, N)));
        assert_eq!(l.log.count, 14);
        let mut parts = [&[][..]; 14];
        for (n, part) in parts.iter_mut().enumerate() {
            *part = l.log.get(n);
        }
        parts[13] = unsigned(l.log.get(13));
        let m1 = toy_hash(&parts);
        let want = signed_message(SignedOp::ChallengeAuth, &m1);
        assert_eq!(l.device_signed(), Some(want));
        assert_eq!(l.s.verifier.verified.get(), Some(want));
        Ok(())
    }

    #[test]
    fn flipped_byte_anywhere_in_the_transcript_changes_the_signed_bytes() -> Result<(), NoMemory> {
        let mut l = Logged::new()?;
        assert!(l.ok(&Request::GetVersion));
        assert!(l.ok(&get_capabilities()));
        assert!(l.ok(&negotiate()));
        assert!(l.ok(&Request::GetDigests));
        assert!(l.ok(&get_certificate(0, 0xffff)));
        assert!(l.ok(&challenge(summary::ALL, N)));
        assert_eq!(l.log.count, 12);
        let signed = l.device_signed();
        assert!(signed.is_some());
        // Rebuilds M1 from the log with byte `at` of message `flip` flipped.
        let rebuild = |flip: usize, at: usize| {
            let mut flipped = l.log.msgs.get(flip).cloned();
            if let Some(msg) = flipped.as_mut() {
                msg.flip(at);
            }
            let part = |n: usize| match &flipped {
                Some(msg) if n == flip => msg.bytes(),
                _ => l.log.get(n),
            };
            let mut t = Transcript::<ToyHash>::new();
            let vca = [part(0), part(1), part(2), part(3), part(4), part(5)];
            let b = [part(6), part(7), part(8), part(9)];
            let ok = t.append_vca(&vca).is_ok() && t.append_b(&b).is_ok();
            let m1 = t.finish_m1(&[part(10), unsigned(part(11))]);
            match (ok, m1) {
                (true, Ok(m1)) => Some(signed_message(SignedOp::ChallengeAuth, &m1)),
                _ => None,
            }
        };
        assert_eq!(rebuild(usize::MAX, 0), signed);
        for flip in 0..12 {
            let len = l.log.get(flip).len();
            let covered = if flip == 11 { len - SIGNATURE_LEN } else { len };
            for at in 0..covered {
                let got = rebuild(flip, at);
                assert!(got.is_some());
                assert!(got != signed);
            }
        }
        Ok(())
    }

    #[test]
    fn measurements_signature_covers_vca_and_measurements_since_the_last_signed(
    ) -> Result<(), NoMemory> {
        let mut l = Logged::new()?;
        assert!(l.ok(&Request::GetVersion));
        assert!(l.ok(&get_capabilities()));
        assert!(l.ok(&negotiate()));
        assert!(l.ok(&Request::GetDigests));
        assert!(l.ok(&get_certificate(0, 0xffff)));
        assert!(l.ok(&get_measurements(false, meas::OP_COUNT, N)));
        assert!(l.ok(&get_measurements(false, 1, N)));
        assert!(l.ok(&get_measurements(true, meas::OP_ALL, N)));
        let vca = [
            l.log.get(0),
            l.log.get(1),
            l.log.get(2),
            l.log.get(3),
            l.log.get(4),
            l.log.get(5),
        ];
        let parts = [
            &vca[..],
            &[l.log.get(10), l.log.get(11), l.log.get(12), l.log.get(13)],
            &[l.log.get(14), unsigned(l.log.get(15))],
        ];
        let mut flat = [&[][..]; 12];
        for (dst, src) in flat.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
            *dst = src;
        }
        let l1 = toy_hash(&flat);
        assert_eq!(
            l.device_signed(),
            Some(signed_message(SignedOp::Measurements, &l1))
        );
        // The next signed MEASUREMENTS covers only itself after the VCA.
        assert!(l.ok(&get_measurements(true, 2, N)));
        let l1 = toy_hash(&[
            l.log.get(0),
            l.log.get(1),
            l.log.get(2),
            l.log.get(3),
            l.log.get(4),
            l.log.get(5),
            l.log.get(16),
            unsigned(l.log.get(17)),
        ]);
        assert_eq!(
            l.device_signed(),
            Some(signed_message(SignedOp::Measurements, &l1))
        );
        assert_eq!(l.s.verifier.verified.get(), l.device_signed());
        Ok(())
    }

    #[test]
    fn a_request_other_than_get_measurements_resets_l1_l2() -> Result<(), NoMemory> {
        let mut l = Logged::new()?;
        assert!(l.ok(&Request::GetVersion));
        assert!(l.ok(&get_capabilities()));
        assert!(l.ok(&negotiate()));
        assert!(l.ok(&get_certificate(0, 0xffff)));
        assert!(l.ok(&get_measurements(false, meas::OP_ALL, N)));
        assert!(l.ok(&Request::GetDigests));
        assert!(l.ok(&get_measurements(true, meas::OP_ALL, N)));
        let l1 = toy_hash(&[
            l.log.get(0),
            l.log.get(1),
            l.log.get(2),
            l.log.get(3),
            l.log.get(4),
            l.log.get(5),
            l.log.get(12),
            unsigned(l.log.get(13)),
        ]);
        assert_eq!(
            l.device_signed(),
            Some(signed_message(SignedOp::Measurements, &l1))
        );
        assert_eq!(l.s.verifier.verified.get(), l.device_signed());
        Ok(())
    }

    #[test]
    fn error_to_get_measurements_resets_l1_l2_on_both_ends() -> Result<(), NoMemory> {
        let mut l = Logged::new()?;
        assert!(l.ok(&Request::GetVersion));
        assert!(l.ok(&get_capabilities()));
        assert!(l.ok(&negotiate()));
        assert!(l.ok(&get_certificate(0, 0xffff)));
        assert!(l.ok(&get_measurements(false, 1, N)));
        let got = l.exchange(&get_measurements(false, 3, N));
        assert_eq!(
            got,
            Err(RequesterError::Spdm {
                code: 0x01,
                data: 0
            })
        );
        assert!(l.ok(&get_measurements(true, 2, N)));
        let l1 = toy_hash(&[
            l.log.get(0),
            l.log.get(1),
            l.log.get(2),
            l.log.get(3),
            l.log.get(4),
            l.log.get(5),
            l.log.get(12),
            unsigned(l.log.get(13)),
        ]);
        assert_eq!(
            l.device_signed(),
            Some(signed_message(SignedOp::Measurements, &l1))
        );
        assert_eq!(l.s.verifier.verified.get(), l.device_signed());
        Ok(())
    }

    #[test]
    fn refused_measurements_restart_l1_l2_on_the_requester() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.authenticate_prelude());
        let got = s.exchange_with(&get_measurements(false, 1, N), |rsp| rsp.set(9, 2));
        assert_eq!(got, Err(RequesterError::BadMeasurements));
        // The responder kept the refused pair in L1/L2, the requester did not.
        let got = s.exchange(&get_measurements(true, 2, N));
        assert_eq!(got.map(|_| ()), Err(RequesterError::SignatureInvalid));
        // The failed verification ended L1/L2 on both ends.
        assert!(s.exchange(&get_measurements(true, 2, N)).is_ok());
        Ok(())
    }

    #[test]
    fn get_measurements_before_challenge_resets_b_and_c_and_get_digests_resets_b(
    ) -> Result<(), NoMemory> {
        let mut l = Logged::new()?;
        assert!(l.ok(&Request::GetVersion));
        assert!(l.ok(&get_capabilities()));
        assert!(l.ok(&negotiate()));
        assert!(l.ok(&get_certificate(0, 0xffff)));
        assert!(l.ok(&get_measurements(false, meas::OP_COUNT, N)));
        assert!(l.ok(&Request::GetDigests));
        assert!(l.ok(&Request::GetDigests));
        assert!(l.ok(&challenge(summary::NONE, N)));
        // M1 = VCA || the last GET_DIGESTS/DIGESTS || C.
        let m1 = toy_hash(&[
            l.log.get(0),
            l.log.get(1),
            l.log.get(2),
            l.log.get(3),
            l.log.get(4),
            l.log.get(5),
            l.log.get(12),
            l.log.get(13),
            l.log.get(14),
            unsigned(l.log.get(15)),
        ]);
        assert_eq!(
            l.device_signed(),
            Some(signed_message(SignedOp::ChallengeAuth, &m1))
        );
        assert_eq!(l.s.verifier.verified.get(), l.device_signed());
        Ok(())
    }

    #[test]
    fn second_challenge_covers_only_what_followed_the_first() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.authenticate_prelude());
        assert!(s.exchange(&challenge(summary::NONE, N)).is_ok());
        assert!(s.exchange(&get_measurements(false, 1, N)).is_ok());
        assert!(s.exchange(&challenge(summary::TCB, N)).is_ok());
        assert_eq!(
            s.verifier.verified.get(),
            s.device.responder.device().signed.get()
        );
        Ok(())
    }

    #[test]
    fn tampered_vca_in_transit_fails_the_challenge_signature() -> Result<(), NoMemory> {
        // CTExponent of CAPABILITIES, the reserved byte of VERSION, OtherParams reserved bits.
        for (step, at) in [(1usize, 5usize), (0, 4), (2, 7)] {
            let mut s = Session::new()?;
            let steps = [Request::GetVersion, get_capabilities(), negotiate()];
            for (n, req) in steps.iter().enumerate() {
                let value = if at == 7 { 0x10 } else { 0x01 };
                let got = s.exchange_with(req, |rsp| {
                    if n == step {
                        rsp.set(at, rsp.get(at) ^ value);
                    }
                });
                assert!(got.is_ok());
            }
            assert_eq!(s.fetch_chain(0xffff), Some(1));
            let got = s.exchange(&challenge(summary::NONE, N));
            assert_eq!(got, Err(RequesterError::SignatureInvalid));
            assert_eq!(s.requester.state(), ConnectionState::Negotiated);
        }
        Ok(())
    }

    #[test]
    fn tampered_request_in_transit_fails_the_challenge_signature() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.authenticate_prelude());
        let mut msg = Msg::new();
        msg.len = s
            .requester
            .encode(&challenge(summary::NONE, N), &mut msg.buf)
            .unwrap_or(0);
        msg.flip(10);
        s.last = s.device.send(msg.bytes());
        let got = s.requester.decode(s.last.bytes(), &s.verifier);
        assert_eq!(got, Err(RequesterError::SignatureInvalid));
        Ok(())
    }

    #[test]
    fn get_version_mid_session_restarts_both_ends() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.authenticate_prelude());
        assert!(s.exchange(&challenge(summary::NONE, N)).is_ok());
        assert!(s.exchange(&Request::GetVersion).is_ok());
        assert_eq!(s.requester.state(), ConnectionState::AfterVersion);
        assert_eq!(s.device.responder.state(), ConnectionState::AfterVersion);
        assert_eq!(s.requester.cert_chain(), None);
        assert_eq!(s.requester.vca(), s.device.responder.vca());
        assert!(s.exchange(&get_capabilities()).is_ok());
        assert!(s.exchange(&negotiate()).is_ok());
        assert_eq!(s.requester.vca(), s.device.responder.vca());
        assert_eq!(s.fetch_chain(64), Some(default_chain().len.div_ceil(64)));
        assert!(s.exchange(&challenge(summary::ALL, N)).is_ok());
        Ok(())
    }

    #[test]
    fn libspdm_like_offer_negotiates_and_authenticates() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.exchange(&Request::GetVersion).is_ok());
        assert!(s.exchange(&get_capabilities()).is_ok());
        let offer = Request::NegotiateAlgorithms(libspdm_like_offer());
        assert_eq!(
            s.exchange(&offer),
            Ok(Reply::Algorithms { measurements: true })
        );
        assert_eq!(s.fetch_chain(0xffff), Some(1));
        assert!(s.exchange(&challenge(summary::ALL, N)).is_ok());
        Ok(())
    }

    #[test]
    fn chain_of_various_sizes_is_fetched_in_portions_of_various_sizes() -> Result<(), NoMemory> {
        for (root, leaf) in [(0, 1), (100, 100), (1200, 1700), (1000, 3000)] {
            for length in [1u16, 3, 48, 256, 2040, 0xffff] {
                let chain = Chain::new(root, leaf);
                let mut s = Session::with(ToyDevice::with_chain(chain.clone()))?;
                assert!(s.negotiate());
                let max = usize::from(length).min(MAX_MESSAGE_LEN - CERTIFICATE_HEADER_LEN);
                assert_eq!(s.fetch_chain(length), Some(chain.len.div_ceil(max)));
                assert_eq!(s.requester.cert_chain(), Some(chain.bytes()));
                assert!(s.exchange(&challenge(summary::NONE, N)).is_ok());
            }
        }
        Ok(())
    }

    #[test]
    fn cached_chain_authenticates_without_get_certificate() -> Result<(), NoMemory> {
        // The chain of the device, as an earlier connection fetched it.
        let chain = default_chain();
        let kept = chain.bytes();

        // A new connection: VCA, DIGESTS, then CHALLENGE and signed MEASUREMENTS on the kept
        // chain; both ends sign and verify the same transcripts.
        let mut s = Session::new()?;
        assert!(s.negotiate());
        assert_eq!(
            s.requester.use_cached_chain(kept),
            Err(RequesterError::WrongState)
        );
        assert!(s.exchange(&Request::GetDigests).is_ok());
        assert_eq!(s.requester.use_cached_chain(kept), Ok(()));
        assert_eq!(s.requester.cert_chain(), Some(kept));
        // Only once per connection, before any CERTIFICATE.
        assert_eq!(
            s.requester.use_cached_chain(kept),
            Err(RequesterError::WrongState)
        );
        assert!(s.exchange(&challenge(summary::NONE, N)).is_ok());
        assert_eq!(s.requester.state(), ConnectionState::Authenticated);
        let got = s.exchange(&get_measurements(true, meas::OP_ALL, N));
        assert!(matches!(
            got,
            Ok(Reply::Measurements {
                signed: Some(_),
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn cached_chain_of_another_digest_or_malformed_is_refused() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        assert!(s.exchange(&Request::GetDigests).is_ok());
        let other = Chain::new(300, 400);
        assert_eq!(
            s.requester.use_cached_chain(other.bytes()),
            Err(RequesterError::DigestMismatch)
        );
        assert_eq!(
            s.requester.use_cached_chain(&[0u8; 10]),
            Err(RequesterError::BadChain)
        );
        // A static, too large for the stack.
        static HUGE: [u8; MAX_CERT_CHAIN_LEN + 1] = [0; MAX_CERT_CHAIN_LEN + 1];
        assert_eq!(
            s.requester.use_cached_chain(&HUGE),
            Err(RequesterError::ChainTooLarge)
        );
        assert_eq!(s.requester.cert_chain(), None);
        // Nothing was taken: the chain is still fetched and the connection authenticates.
        assert!(s.fetch_chain(0xffff).is_some());
        assert!(s.exchange(&challenge(summary::NONE, N)).is_ok());
        Ok(())
    }

    /// Pads `msg` with `fill` to whole dwords, as a DOE mailbox carries it.
    fn pad(msg: &mut Msg, fill: u8) {
        while msg.len % 4 != 0 {
            msg.push(fill);
        }
    }

    #[test]
    fn whole_session_over_doe_padding_in_both_directions() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        let steps = [
            Request::GetVersion,
            get_capabilities(),
            negotiate(),
            Request::GetDigests,
            get_certificate(0, 333),
            get_certificate(333, 0xffff),
            challenge(summary::ALL, N),
            get_measurements(false, 2, N),
            get_measurements(true, meas::OP_ALL, N),
            get_measurements(true, 5, N),
        ];
        let mut padded_some = false;
        for req in steps {
            let mut msg = Msg::new();
            msg.len = s.requester.encode(&req, &mut msg.buf).unwrap_or(0);
            padded_some |= msg.len % 4 != 0;
            pad(&mut msg, 0);
            let mut rsp = s.device.send(msg.bytes());
            padded_some |= rsp.len % 4 != 0;
            pad(&mut rsp, 0xa5);
            s.last = rsp;
            let got = s.requester.decode(s.last.bytes(), &s.verifier);
            assert!(got.is_ok());
        }
        assert!(padded_some);
        assert_eq!(s.requester.state(), ConnectionState::Authenticated);
        let signed = s.device.responder.device().signed.get();
        assert!(signed.is_some());
        assert_eq!(s.verifier.verified.get(), signed);
        Ok(())
    }

    #[test]
    fn unsigned_measurements_need_no_chain() -> Result<(), NoMemory> {
        let mut s = Session::new()?;
        assert!(s.negotiate());
        let got = s.exchange(&get_measurements(false, meas::OP_COUNT, N));
        assert!(matches!(
            got,
            Ok(Reply::Measurements {
                total: 3,
                blocks: 0,
                ..
            })
        ));
        Ok(())
    }
}
