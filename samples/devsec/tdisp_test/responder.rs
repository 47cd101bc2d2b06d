// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `devsec_tdisp_responder`: the device-side state machine
//! (`tdisp/responder.rs`): every request in every state, individual messages, malformed
//! requests, fault injection and the full life cycle.

use kernel::prelude::*;

#[kunit_tests(devsec_tdisp_responder)]
mod tests {
    use crate::suites::common::*;
    use crate::tdisp::*;

    const B0: u64 = 0xe000_0000 / 4096;
    const B2: u64 = 0xe010_0000 / 4096;

    // ---- Responder: every request in every state ------------------------------------------

    #[test]
    fn requests_in_config_unlocked() {
        let s = State::ConfigUnlocked;
        let (rsp, state) = answer_in(s, |_| Request::GetVersion);
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Version), s));
        let (rsp, state) = answer_in(s, |_| Request::GetCapabilities { tsm_caps: 0 });
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Capabilities), s));
        let (rsp, state) = answer_in(s, |_| lock_request());
        assert_eq!(
            (type_of(&rsp), state),
            (
                Some(MessageType::LockInterfaceResponse),
                State::ConfigLocked
            )
        );
        let (rsp, state) = answer_in(s, |n| all_requests(n)[3]);
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::GetDeviceInterfaceState);
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((iid(FID), Response::DeviceInterfaceState(s)))
        );
        assert_eq!(state, s);
        let (rsp, state) = answer_in(s, |nonce| Request::StartInterface { nonce });
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::StopInterface);
        assert_eq!(
            (type_of(&rsp), state),
            (Some(MessageType::StopInterfaceResponse), s)
        );
    }

    #[test]
    fn requests_in_config_locked() {
        let s = State::ConfigLocked;
        let (rsp, state) = answer_in(s, |_| Request::GetVersion);
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Version), s));
        let (rsp, state) = answer_in(s, |_| Request::GetCapabilities { tsm_caps: 0 });
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Capabilities), s));
        let (rsp, state) = answer_in(s, |_| lock_request());
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |n| all_requests(n)[3]);
        assert_eq!(
            (type_of(&rsp), state),
            (Some(MessageType::DeviceInterfaceReport), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::GetDeviceInterfaceState);
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((iid(FID), Response::DeviceInterfaceState(s)))
        );
        assert_eq!(state, s);
        let (rsp, state) = answer_in(s, |nonce| Request::StartInterface { nonce });
        assert_eq!(
            (type_of(&rsp), state),
            (Some(MessageType::StartInterfaceResponse), State::Run)
        );
        let (rsp, state) = answer_in(s, |_| Request::StopInterface);
        assert_eq!(
            (type_of(&rsp), state),
            (
                Some(MessageType::StopInterfaceResponse),
                State::ConfigUnlocked
            )
        );
    }

    #[test]
    fn requests_in_run() {
        let s = State::Run;
        let (rsp, state) = answer_in(s, |_| Request::GetVersion);
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Version), s));
        let (rsp, state) = answer_in(s, |_| Request::GetCapabilities { tsm_caps: 0 });
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Capabilities), s));
        let (rsp, state) = answer_in(s, |_| lock_request());
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |n| all_requests(n)[3]);
        assert_eq!(
            (type_of(&rsp), state),
            (Some(MessageType::DeviceInterfaceReport), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::GetDeviceInterfaceState);
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((iid(FID), Response::DeviceInterfaceState(s)))
        );
        assert_eq!(state, s);
        let (rsp, state) = answer_in(s, |nonce| Request::StartInterface { nonce });
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::StopInterface);
        assert_eq!(
            (type_of(&rsp), state),
            (
                Some(MessageType::StopInterfaceResponse),
                State::ConfigUnlocked
            )
        );
    }

    #[test]
    fn requests_in_error() {
        let s = State::Error;
        let (rsp, state) = answer_in(s, |_| Request::GetVersion);
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Version), s));
        let (rsp, state) = answer_in(s, |_| Request::GetCapabilities { tsm_caps: 0 });
        assert_eq!((type_of(&rsp), state), (Some(MessageType::Capabilities), s));
        let (rsp, state) = answer_in(s, |_| lock_request());
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |n| all_requests(n)[3]);
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::GetDeviceInterfaceState);
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((iid(FID), Response::DeviceInterfaceState(s)))
        );
        assert_eq!(state, s);
        let (rsp, state) = answer_in(s, |nonce| Request::StartInterface { nonce });
        assert_eq!(
            (error_of(&rsp), state),
            (Some(ErrorCode::InvalidInterfaceState), s)
        );
        let (rsp, state) = answer_in(s, |_| Request::StopInterface);
        assert_eq!(
            (type_of(&rsp), state),
            (
                Some(MessageType::StopInterfaceResponse),
                State::ConfigUnlocked
            )
        );
    }

    #[test]
    fn invalid_interface_state_error_data_is_zero() {
        type Case = (State, fn(Nonce) -> Request);
        let cases: [Case; 4] = [
            (State::Run, |_| lock_request()),
            (State::Error, |_| lock_request()),
            (State::ConfigUnlocked, |nonce| Request::StartInterface {
                nonce,
            }),
            (State::Error, |_| Request::GetDeviceInterfaceReport {
                offset: 0,
                length: 16,
            }),
        ];
        for (state, req) in cases {
            let (rsp, after) = answer_in(state, req);
            assert_eq!(
                decode_response(rsp.bytes()),
                Ok((
                    iid(FID),
                    Response::Error {
                        code: ErrorCode::InvalidInterfaceState as u32,
                        data: 0,
                        ext: &[],
                    }
                ))
            );
            assert_eq!(after, state);
        }
    }

    // ---- Responder: individual messages ---------------------------------------------------

    #[test]
    fn version_lists_tdisp_1_0() {
        let mut bench = Bench::new();
        let rsp = bench.send(&Request::GetVersion);
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((iid(FID), Response::Version { versions: &[0x10] }))
        );
        assert_eq!(bench.host.parse_version(rsp.bytes()), Ok(()));
    }

    #[test]
    fn capabilities_list_supported_requests() {
        let mut bench = Bench::new();
        let rsp = bench.send(&Request::GetCapabilities { tsm_caps: 0 });
        let parsed = bench.host.parse_capabilities(rsp.bytes());
        assert!(parsed.is_ok());
        let (caps, body) = parsed.unwrap_or_default();
        // The body is what the caps were decoded from: 28 bytes, lock flags at offset 20.
        assert_eq!(body.len(), 28);
        assert_eq!(
            body.get(20..22),
            Some(&caps.lock_flags_supported.to_le_bytes()[..])
        );
        for code in 0x81..=0x87 {
            assert!(MessageType::from_u8(code).is_some_and(|t| caps.supports(t)));
        }
        assert!(!caps.supports(MessageType::Version));
    }

    #[test]
    fn capabilities_advertise_only_implemented_lock_flags() {
        let mut bench = Bench::new();
        let rsp = bench.send(&Request::GetCapabilities { tsm_caps: 0 });
        let (caps, _) = bench
            .host
            .parse_capabilities(rsp.bytes())
            .unwrap_or_default();
        assert_eq!(
            caps.lock_flags_supported,
            lock_flags::NO_FW_UPDATE | lock_flags::SYSTEM_CACHE_LINE_SIZE | lock_flags::LOCK_MSIX
        );
        assert_eq!(caps.lock_flags_supported, LOCK_FLAGS_SUPPORTED);
        assert_eq!(caps.lock_flags_supported & lock_flags::BIND_P2P, 0);
        assert_eq!(
            caps.lock_flags_supported & lock_flags::ALL_REQUEST_REDIRECT,
            0
        );
    }

    #[test]
    fn lock_with_unimplemented_flag_is_invalid_request() {
        for flag in [lock_flags::BIND_P2P, lock_flags::ALL_REQUEST_REDIRECT] {
            let mut bench = Bench::new();
            let rsp = bench.send(&Request::LockInterface(LockParams {
                flags: flag | lock_flags::NO_FW_UPDATE,
                ..LockParams::default()
            }));
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
            assert_eq!(bench.dev.state(), State::ConfigUnlocked);
            assert_eq!(bench.state(), Ok(State::ConfigUnlocked));
        }
    }

    #[test]
    fn lock_from_config_unlocked_returns_nonce() {
        let mut bench = Bench::new();
        let nonce = bench.lock();
        assert!(nonce.is_ok());
        assert!(nonce.unwrap_or_default() != [0; NONCE_LEN]);
        assert_eq!(bench.dev.state(), State::ConfigLocked);
        assert_eq!(bench.dev.lock_params(), LockParams::default());
    }

    #[test]
    fn lock_nonce_is_fresh_across_locks() {
        let mut bench = Bench::new();
        let first = bench.lock().unwrap_or_default();
        assert_eq!(bench.stop(), Ok(()));
        let second = bench.lock().unwrap_or_default();
        assert!(first != [0; NONCE_LEN]);
        assert!(second != [0; NONCE_LEN]);
        assert!(first != second);
        // The old nonce is dead.
        assert_eq!(
            bench.start(first),
            Err(RequesterError::Tdisp {
                code: ErrorCode::InvalidNonce as u32,
                data: 0
            })
        );
        assert_eq!(bench.start(second), Ok(()));
    }

    #[test]
    fn lock_with_zero_entropy_is_insufficient_entropy() {
        let mut bench = Bench::new();
        let req = encode(FID, &lock_request());
        let rsp = bench.raw_with(req.bytes(), &mut |buf: &mut [u8]| buf.fill(0));
        assert_eq!(error_of(&rsp), Some(ErrorCode::InsufficientEntropy));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn lock_with_repeated_nonce_is_insufficient_entropy() {
        let mut bench = Bench::new();
        let req = encode(FID, &lock_request());
        let rsp = bench.raw_with(req.bytes(), &mut |buf: &mut [u8]| buf.fill(0x42));
        assert_eq!(type_of(&rsp), Some(MessageType::LockInterfaceResponse));
        assert_eq!(bench.stop(), Ok(()));
        let rsp = bench.raw_with(req.bytes(), &mut |buf: &mut [u8]| buf.fill(0x42));
        assert_eq!(error_of(&rsp), Some(ErrorCode::InsufficientEntropy));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn lock_rejects_reserved_flags() {
        let mut bench = Bench::new();
        let rsp = bench.send(&Request::LockInterface(LockParams {
            flags: 0x20,
            ..LockParams::default()
        }));
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
        let rsp = bench.send(&Request::LockInterface(LockParams {
            flags: LOCK_FLAGS_SUPPORTED,
            ..LockParams::default()
        }));
        assert_eq!(type_of(&rsp), Some(MessageType::LockInterfaceResponse));
    }

    #[test]
    fn lock_rejects_unaligned_reporting_offset() {
        let mut bench = Bench::new();
        let rsp = bench.send(&lock_at(0x800));
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn lock_rejects_reporting_offset_overflow() {
        let mut bench = Bench::new();
        let rsp = bench.send(&lock_at(!0xfff_u64));
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn lock_rejects_invalid_device_configuration() {
        let bad = [
            Bar {
                index: 0,
                start: 0,
                len: 0x1000,
            },
            Bar {
                index: 0,
                start: 0xe000_0800,
                len: 0x1000,
            },
            Bar {
                index: 0,
                start: 0xe000_0000,
                len: 0x800,
            },
            Bar {
                index: 0,
                start: 0xe000_0000,
                len: 0,
            },
            Bar {
                index: 0,
                start: !0xfff_u64,
                len: 0x2000,
            },
            Bar {
                index: 0,
                start: 0x1000,
                len: 0x1000 << 32,
            },
        ];
        for bar in bad {
            let mut bench = Bench::new();
            assert_eq!(bench.dev.set_bars(&[bar]), Ok(()));
            let rsp = bench.send(&lock_request());
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidDeviceConfiguration));
            assert_eq!(bench.dev.state(), State::ConfigUnlocked);
        }
    }

    #[test]
    fn start_with_matching_nonce_enters_run() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        assert_eq!(bench.start(nonce), Ok(()));
        assert_eq!(bench.state(), Ok(State::Run));
    }

    #[test]
    fn start_with_wrong_nonce_is_invalid_nonce_and_keeps_lock() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        for i in [0, 1, NONCE_LEN - 1] {
            let mut wrong = nonce;
            if let Some(byte) = wrong.get_mut(i) {
                *byte ^= 0x80;
            }
            assert_eq!(
                bench.start(wrong),
                Err(RequesterError::Tdisp {
                    code: ErrorCode::InvalidNonce as u32,
                    data: 0
                })
            );
            assert_eq!(bench.dev.state(), State::ConfigLocked);
        }
        assert!(bench.start([0; NONCE_LEN]).is_err());
        assert_eq!(bench.start(nonce), Ok(()));
    }

    #[test]
    fn stop_in_config_unlocked_is_idempotent() {
        let mut bench = Bench::new();
        assert_eq!(bench.stop(), Ok(()));
        assert_eq!(bench.stop(), Ok(()));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
        assert!(bench.lock().is_ok());
    }

    #[test]
    fn state_is_answered_in_every_state() {
        for s in [
            State::ConfigUnlocked,
            State::ConfigLocked,
            State::Run,
            State::Error,
        ] {
            let (mut bench, _) = Bench::in_state(s);
            assert_eq!(bench.state(), Ok(s));
        }
    }

    #[test]
    fn report_in_config_locked_matches_bars() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        let report = bench.fetch(0xffff);
        assert_eq!(report, Ok(good_report(0)));
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &BARS, 0, 0).is_ok()),
            Ok(true)
        );
    }

    #[test]
    fn report_in_run_is_served() {
        let (mut bench, _) = Bench::in_state(State::Run);
        assert_eq!(bench.fetch(64), Ok(good_report(0)));
    }

    #[test]
    fn report_is_paged() {
        for page in [1, 7, 16, 51, 52, 53] {
            let (mut bench, _) = Bench::in_state(State::ConfigLocked);
            assert_eq!(bench.fetch(page), Ok(good_report(0)));
        }
    }

    #[test]
    fn report_portion_and_remainder() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        let total = encoded_len(&good_report(0));
        let rsp = bench.send(&Request::GetDeviceInterfaceReport {
            offset: 10,
            length: 20,
        });
        let parsed = bench.host.parse_report(rsp.bytes());
        assert_eq!(
            parsed.map(|(p, r)| (p.len(), r)),
            Ok((20, (total - 30) as u16))
        );
        let rsp = bench.send(&Request::GetDeviceInterfaceReport {
            offset: (total - 1) as u16,
            length: 20,
        });
        let parsed = bench.host.parse_report(rsp.bytes());
        assert_eq!(parsed.map(|(p, r)| (p.len(), r)), Ok((1, 0)));
    }

    #[test]
    fn report_reflects_mmio_reporting_offset() {
        let mut bench = Bench::new();
        assert!(bench.lock_with(&lock_at(OFFSET)).is_ok());
        let report = bench.fetch(0x100);
        assert_eq!(report, Ok(good_report(OFFSET)));
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &BARS, OFFSET, 0).is_ok()),
            Ok(true)
        );
    }

    #[test]
    fn report_interface_info_reflects_no_fw_update() {
        let mut bench = Bench::new();
        assert!(bench
            .lock_with(&Request::LockInterface(LockParams {
                flags: lock_flags::NO_FW_UPDATE,
                ..LockParams::default()
            }))
            .is_ok());
        let info = bench.fetch(0x100).map(|r| r.interface_info);
        assert_eq!(
            info,
            Ok(interface_info::DMA_WITHOUT_PASID | interface_info::NO_UPDATE_AFTER_LOCK)
        );
    }

    #[test]
    fn report_carries_device_specific_blob() {
        let mut bench = Bench::new();
        assert_eq!(bench.dev.set_device_specific(b"devsec-ep0"), Ok(()));
        assert!(bench.lock().is_ok());
        let report = bench.fetch(8);
        assert!(report.is_ok());
        let report = report.unwrap_or_default();
        assert_eq!(report.device_specific(), &b"devsec-ep0"[..]);
    }

    #[test]
    fn report_is_frozen_at_lock() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        assert_eq!(bench.dev.set_device_specific(b"later"), Ok(()));
        assert_eq!(bench.fetch(0x100), Ok(good_report(0)));
    }

    #[test]
    fn report_offset_beyond_end_is_invalid_request() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        let total = encoded_len(&good_report(0)) as u16;
        for offset in [total, total + 1, 0xffff] {
            let rsp = bench.send(&Request::GetDeviceInterfaceReport { offset, length: 1 });
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn report_zero_length_is_invalid_request() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        let rsp = bench.send(&Request::GetDeviceInterfaceReport {
            offset: 0,
            length: 0,
        });
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn report_length_is_clamped_to_response_buffer() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        let total = encoded_len(&good_report(0));
        let req = encode(
            FID,
            &Request::GetDeviceInterfaceReport {
                offset: 0,
                length: 0xffff,
            },
        );
        let mut rsp = Msg::new();
        let small = rsp.buf.get_mut(..MIN_RESPONSE_LEN + 3).unwrap_or(&mut []);
        rsp.len = bench
            .dev
            .handle(req.bytes(), small, &mut |b: &mut [u8]| b.fill(1));
        assert_eq!(rsp.len, MIN_RESPONSE_LEN + 3);
        let portion = MIN_RESPONSE_LEN + 3 - REPORT_RESPONSE_OVERHEAD;
        let parsed = bench.host.parse_report(rsp.bytes());
        assert_eq!(
            parsed.map(|(p, r)| (p.len(), r)),
            Ok((portion, (total - portion) as u16))
        );
    }

    #[test]
    fn maximum_report_fits_maximum_message() {
        let mut bench = Bench::new();
        let mut bars = [Bar::default(); MAX_RANGES];
        for (i, bar) in bars.iter_mut().enumerate() {
            *bar = Bar {
                index: i as u16,
                start: 0xe000_0000 + ((i as u64) << 20),
                len: 0x1000,
            };
        }
        assert_eq!(bench.dev.set_bars(&bars), Ok(()));
        assert_eq!(
            bench.dev.set_device_specific(&[7; MAX_DEVICE_SPECIFIC]),
            Ok(())
        );
        assert!(bench.lock().is_ok());
        let rsp = bench.send(&Request::GetDeviceInterfaceReport {
            offset: 0,
            length: 0xffff,
        });
        assert_eq!(rsp.len, MAX_MESSAGE_LEN);
        let report = bench.fetch(0xffff);
        assert_eq!(report.map(|r| encoded_len(&r)), Ok(MAX_REPORT_LEN));
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &bars, 0, 0).is_ok()),
            Ok(true)
        );
    }

    #[test]
    fn response_buffer_below_minimum_is_not_processed() {
        let mut bench = Bench::new();
        let req = encode(FID, &lock_request());
        let mut buf = [0u8; MIN_RESPONSE_LEN - 1];
        let mut rng = |b: &mut [u8]| b.fill(1);
        assert_eq!(bench.dev.handle(req.bytes(), &mut buf, &mut rng), 0);
        assert_eq!(bench.dev.handle(req.bytes(), &mut [], &mut rng), 0);
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
        let mut buf = [0u8; MIN_RESPONSE_LEN];
        let len = bench.dev.handle(req.bytes(), &mut buf, &mut rng);
        assert_eq!(len, MIN_RESPONSE_LEN);
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    // ---- Responder: malformed requests ----------------------------------------------------

    #[test]
    fn wrong_tdisp_version_is_version_mismatch() {
        let mut bench = Bench::new();
        for version in [0x00, 0x11, 0x20, 0xff] {
            let mut req = encode(FID, &lock_request());
            req.set(TDISP_VER, version);
            let rsp = bench.raw(req.bytes());
            assert_eq!(error_of(&rsp), Some(ErrorCode::VersionMismatch));
        }
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn unknown_request_code_is_unsupported_request() {
        let mut bench = Bench::new();
        for code in [0x80, 0x88, 0xff, 0x00, 0x03, 0x7f] {
            let mut req = encode(FID, &Request::GetVersion);
            req.set(TDISP_TYPE, code);
            let rsp = bench.raw(req.bytes());
            assert_eq!(error_of(&rsp), Some(ErrorCode::UnsupportedRequest));
        }
    }

    #[test]
    fn unsupported_request_error_data_is_request_code() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        // Undefined codes and response codes sent as requests.
        for code in [0x80, 0x88, 0xff, 0x00, 0x03, 0x7f] {
            let mut req = encode(FID, &Request::GetVersion);
            req.set(TDISP_TYPE, code);
            let rsp = bench.raw(req.bytes());
            assert_eq!(
                decode_response(rsp.bytes()),
                Ok((
                    iid(FID),
                    Response::Error {
                        code: ErrorCode::UnsupportedRequest as u32,
                        data: u32::from(code),
                        ext: &[],
                    }
                ))
            );
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn wrong_interface_is_invalid_interface() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        for req in all_requests(nonce) {
            let msg = encode(OTHER_FID, &req);
            let rsp = bench.raw(msg.bytes());
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidInterface));
            // The error names the interface the request named.
            assert_eq!(
                decode_response(rsp.bytes()).map(|(id, _)| id),
                Ok(iid(OTHER_FID))
            );
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn reserved_interface_id_bytes_are_compared() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        for at in 0..8 {
            let mut req = encode(FID, &Request::StartInterface { nonce });
            req.set(INTERFACE_RESERVED + at, 0x01);
            let rsp = bench.raw(req.bytes());
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidInterface));
            // The error echoes all 12 bytes of the ID the request named.
            let id = InterfaceId {
                function_id: FID,
                reserved: 1 << (8 * at),
            };
            assert_eq!(decode_response(rsp.bytes()).map(|(id, _)| id), Ok(id));
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
        assert_eq!(bench.start(nonce), Ok(()));
    }

    #[test]
    fn truncated_request_is_spdm_invalid_request() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        let msg = encode(FID, &Request::StartInterface { nonce });
        for len in 0..msg.len {
            let rsp = bench.raw(msg.prefix(len));
            assert_eq!(
                spdm_error_of(&rsp),
                Some((SPDM_VERSION, spdm_error::INVALID_REQUEST, 0))
            );
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn zero_length_request_is_spdm_invalid_request() {
        let mut bench = Bench::new();
        let rsp = bench.raw(&[]);
        assert_eq!(
            spdm_error_of(&rsp),
            Some((SPDM_VERSION, spdm_error::INVALID_REQUEST, 0))
        );
        assert_eq!(
            bench.host.parse_state(rsp.bytes()),
            Err(RequesterError::Spdm {
                code: spdm_error::INVALID_REQUEST,
                data: 0
            })
        );
    }

    #[test]
    fn truncated_tdisp_header_is_invalid_request() {
        let mut bench = Bench::new();
        let mut req = encode(FID, &Request::GetVersion);
        // Keep the SPDM framing consistent, cut the TDISP header.
        req.len = PROTOCOL + 1 + TDISP_HEADER_LEN - 1;
        req.set_u16(PAYLOAD_LEN, (req.len - SPDM_VD_HEADER_LEN) as u16);
        let rsp = bench.raw(req.bytes());
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(decode_response(rsp.bytes()).map(|(id, _)| id), Ok(iid(FID)));
    }

    #[test]
    fn payload_length_beyond_buffer_is_spdm_invalid_request() {
        let mut bench = Bench::new();
        let mut req = encode(FID, &Request::GetVersion);
        req.set_u16(PAYLOAD_LEN, 0xffff);
        req.len = MAX_MESSAGE_LEN;
        let rsp = bench.raw(req.bytes());
        assert_eq!(
            spdm_error_of(&rsp),
            Some((SPDM_VERSION, spdm_error::INVALID_REQUEST, 0))
        );
    }

    #[test]
    fn body_too_short_is_invalid_request() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        let mut req = encode(FID, &Request::StartInterface { nonce });
        req.len -= 1;
        req.set_u16(PAYLOAD_LEN, (req.len - SPDM_VD_HEADER_LEN) as u16);
        let rsp = bench.raw(req.bytes());
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn body_too_long_is_invalid_request() {
        let mut bench = Bench::new();
        let mut req = encode(FID, &lock_request());
        req.len += 1;
        req.set_u16(PAYLOAD_LEN, (req.len - SPDM_VD_HEADER_LEN) as u16);
        let rsp = bench.raw(req.bytes());
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn spdm_major_version_2_is_spdm_version_mismatch() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        for version in [0x20, 0x00, 0xff] {
            let mut req = encode(FID, &Request::StartInterface { nonce });
            req.set(0, version);
            let rsp = bench.raw(req.bytes());
            assert_eq!(
                spdm_error_of(&rsp),
                Some((SPDM_VERSION, spdm_error::VERSION_MISMATCH, 0))
            );
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn other_spdm_request_code_is_spdm_unsupported_request() {
        let mut bench = Bench::new();
        for code in [0x7e, 0x81, 0xe0] {
            let mut req = encode(FID, &lock_request());
            req.set(SPDM_CODE, code);
            let rsp = bench.raw(req.bytes());
            assert_eq!(
                spdm_error_of(&rsp),
                Some((SPDM_VERSION, spdm_error::UNSUPPORTED_REQUEST, code))
            );
        }
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn foreign_vendor_defined_request_is_spdm_unsupported_request() {
        let mut bench = Bench::new();
        let edits: [(usize, u8); 5] = [
            (STANDARD_ID, 0x04),
            (VENDOR_ID_LEN, 0),
            (VENDOR_ID, 0x86),
            (VENDOR_ID + 1, 0x80),
            (PROTOCOL, PROTOCOL_IDE_KM),
        ];
        for (at, value) in edits {
            let mut req = encode(FID, &lock_request());
            req.set(at, value);
            let rsp = bench.raw(req.bytes());
            assert_eq!(
                spdm_error_of(&rsp),
                Some((
                    SPDM_VERSION,
                    spdm_error::UNSUPPORTED_REQUEST,
                    SPDM_VENDOR_DEFINED_REQUEST
                ))
            );
            assert_eq!(error_of(&rsp), None);
        }
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn response_echoes_request_spdm_version() {
        let mut bench = Bench::new();
        for version in [0x10, 0x11, 0x12, 0x13] {
            let mut req = encode(FID, &Request::GetDeviceInterfaceState);
            req.set(0, version);
            let rsp = bench.raw(req.bytes());
            assert_eq!(rsp.buf.first(), Some(&version));
            assert!(unwrap_spdm(rsp.bytes(), SPDM_VENDOR_DEFINED_RESPONSE).is_ok());
            // The requester speaks 1.2 only.
            let parsed = bench.host.parse_state(rsp.bytes());
            if version == SPDM_VERSION {
                assert_eq!(parsed, Ok(State::ConfigUnlocked));
            } else {
                assert_eq!(
                    parsed,
                    Err(RequesterError::Codec(CodecError::BadSpdmVersion(version)))
                );
            }
        }
        // An SPDM ERROR for a VENDOR_DEFINED fault is in the request's version too.
        let mut req = encode(FID, &Request::GetVersion);
        req.set(0, 0x11);
        req.set(PROTOCOL, PROTOCOL_IDE_KM);
        let rsp = bench.raw(req.bytes());
        assert_eq!(spdm_error_of(&rsp).map(|(version, ..)| version), Some(0x11));
    }

    #[test]
    fn request_with_doe_padding_is_answered() {
        let mut bench = Bench::new();
        let mut req = encode(FID, &Request::GetDeviceInterfaceState);
        req.len += 3;
        let rsp = bench.raw(req.bytes());
        assert_eq!(
            bench.host.parse_state(rsp.bytes()),
            Ok(State::ConfigUnlocked)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut bench = Bench::new();
        let mut seed = 0x9e37_79b9u32;
        let mut buf = [0u8; 64];
        for round in 0..512usize {
            fill(&mut seed, &mut buf);
            // Keep the framing valid half of the time so the TDISP layer is exercised too.
            if round % 2 == 0 {
                let valid = encode(FID, &Request::GetVersion);
                for (dst, src) in buf.iter_mut().zip(valid.prefix(12)) {
                    *dst = *src;
                }
                let [lo, hi] = ((round % 60) as u16).to_le_bytes();
                buf[9] = lo;
                buf[10] = hi;
            }
            let len = round % buf.len();
            let rsp = bench.raw(buf.get(..len).unwrap_or(&[]));
            // Every request is answered: a TDISP response or an SPDM ERROR.
            assert!(decode_response(rsp.bytes()).is_ok() || spdm_error_of(&rsp).is_some());
            let _ = InterfaceReport::decode(buf.get(..len).unwrap_or(&[]));
            let _ = decode_request(buf.get(..len).unwrap_or(&[]));
            let _ = decode_response(buf.get(..len).unwrap_or(&[]));
        }
    }

    // ---- Fault injection and configuration changes ----------------------------------------

    #[test]
    fn injected_error_answers_next_request_once() {
        for code in [
            ErrorCode::Busy,
            ErrorCode::Unspecified,
            ErrorCode::InvalidRequest,
        ] {
            let mut bench = Bench::new();
            bench.dev.fail_next_request(code);
            let rsp = bench.send(&lock_request());
            assert_eq!(error_of(&rsp), Some(code));
            assert_eq!(bench.dev.state(), State::ConfigUnlocked);
            assert!(bench.lock().is_ok());
        }
    }

    #[test]
    fn injected_vendor_specific_error_carries_extended_data() {
        let mut bench = Bench::new();
        bench.dev.fail_next_request(ErrorCode::VendorSpecificError);
        let rsp = bench.send(&lock_request());
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((
                iid(FID),
                Response::Error {
                    code: 0xff,
                    data: 0,
                    ext: &[3, 2, 0x01, 0x00],
                }
            ))
        );
        assert_eq!(
            bench.host.parse_lock(rsp.bytes()),
            Err(RequesterError::Tdisp {
                code: 0xff,
                data: 0
            })
        );
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
    }

    #[test]
    fn injected_start_failure_is_invalid_nonce_once() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        bench.dev.fail_next_start();
        assert_eq!(
            bench.start(nonce),
            Err(RequesterError::Tdisp {
                code: ErrorCode::InvalidNonce as u32,
                data: 0
            })
        );
        assert_eq!(bench.dev.state(), State::ConfigLocked);
        assert_eq!(bench.start(nonce), Ok(()));
    }

    #[test]
    fn corrupted_report_range_is_caught_by_check() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        bench
            .dev
            .set_report_corruption(ReportCorruption::RangeMismatch);
        let report = bench.fetch(0x100);
        assert!(report.is_ok());
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &BARS, 0, 0)),
            Ok(Err(ReportCheckError::OutsideBars { range_id: 0 }))
        );
    }

    #[test]
    fn corrupted_report_range_count_is_caught_by_check() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        bench
            .dev
            .set_report_corruption(ReportCorruption::RangeCount);
        let report = bench.fetch(0x100);
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &BARS, 0, 0)),
            Ok(Err(ReportCheckError::BarNotReported { bar: 2 }))
        );
    }

    #[test]
    fn corrupted_report_truncation_is_caught_by_decode() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        bench.dev.set_report_corruption(ReportCorruption::Truncated);
        assert_eq!(
            bench.fetch(0x100),
            Err(RequesterError::Report(ReportError::RangesTruncated))
        );
        bench.dev.set_report_corruption(ReportCorruption::None);
        assert_eq!(bench.fetch(0x100), Ok(good_report(0)));
    }

    #[test]
    fn corrupted_report_without_bars_is_still_wrong() {
        let mut bench = Bench::new();
        assert_eq!(bench.dev.set_bars(&[]), Ok(()));
        assert!(bench.lock().is_ok());
        for corruption in [
            ReportCorruption::RangeMismatch,
            ReportCorruption::RangeCount,
        ] {
            bench.dev.set_report_corruption(corruption);
            let checked = bench
                .fetch(0x100)
                .map(|r| check_report_against_bars(&r, &[], 0, 0));
            assert!(matches!(checked, Ok(Err(_))));
        }
        bench.dev.set_report_corruption(ReportCorruption::Truncated);
        assert_eq!(
            bench.fetch(0x100),
            Err(RequesterError::Report(ReportError::Truncated))
        );
    }

    #[test]
    fn changed_report_passes_every_check_but_identity() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        let good = bench.fetch(0x100);
        bench.dev.set_report_corruption(ReportCorruption::Changed);
        let changed = bench.fetch(0x100);
        assert!(changed.is_ok());
        assert_ne!(changed, good);
        assert_eq!(
            changed.map(|r| check_report_against_bars(&r, &BARS, 0, 0).is_ok()),
            Ok(true)
        );
        bench.dev.set_report_corruption(ReportCorruption::None);
        assert_eq!(bench.fetch(0x100), good);
    }

    #[test]
    fn missing_report_is_refused() {
        let (mut bench, _) = Bench::in_state(State::ConfigLocked);
        bench.dev.set_report_corruption(ReportCorruption::Missing);
        assert_eq!(
            bench.fetch(0x100),
            Err(RequesterError::Tdisp {
                code: ErrorCode::InvalidRequest as u32,
                data: 0
            })
        );
    }

    #[test]
    fn report_corruption_names_round_trip() {
        for c in [
            ReportCorruption::None,
            ReportCorruption::RangeMismatch,
            ReportCorruption::RangeCount,
            ReportCorruption::Truncated,
            ReportCorruption::Changed,
            ReportCorruption::Missing,
        ] {
            assert_eq!(ReportCorruption::from_name(c.name()), Some(c));
        }
        assert_eq!(ReportCorruption::from_name("bogus"), None);
        let mut dev = Responder::new(FID);
        dev.set_report_corruption(ReportCorruption::Truncated);
        assert_eq!(dev.report_corruption(), ReportCorruption::Truncated);
    }

    #[test]
    fn config_change_in_config_locked_enters_error() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        bench.dev.config_changed();
        assert_eq!(bench.state(), Ok(State::Error));
        assert!(bench.start(nonce).is_err());
        assert_eq!(bench.dev.state(), State::Error);
    }

    #[test]
    fn config_change_in_run_enters_error() {
        let (mut bench, _) = Bench::in_state(State::Run);
        bench.dev.config_changed();
        assert_eq!(bench.state(), Ok(State::Error));
    }

    #[test]
    fn config_change_in_config_unlocked_is_ignored() {
        let mut bench = Bench::new();
        bench.dev.config_changed();
        assert_eq!(bench.state(), Ok(State::ConfigUnlocked));
        assert!(bench.lock().is_ok());
    }

    #[test]
    fn bar_rewrite_while_locked_enters_error() {
        let (mut bench, _) = Bench::in_state(State::Run);
        assert_eq!(bench.dev.set_bars(&BARS), Ok(()));
        assert_eq!(bench.dev.state(), State::Error);
    }

    #[test]
    fn only_stop_leaves_error() {
        let (mut bench, nonce) = Bench::in_state(State::Error);
        for req in all_requests(nonce) {
            if req == Request::StopInterface {
                continue;
            }
            let _ = bench.send(&req);
            assert_eq!(bench.dev.state(), State::Error);
        }
        bench.dev.config_changed();
        assert_eq!(bench.dev.state(), State::Error);
        assert_eq!(bench.stop(), Ok(()));
        assert_eq!(bench.dev.state(), State::ConfigUnlocked);
        assert!(bench.lock().is_ok());
    }

    #[test]
    fn force_error_works_from_every_state() {
        for s in [
            State::ConfigUnlocked,
            State::ConfigLocked,
            State::Run,
            State::Error,
        ] {
            let (mut bench, _) = Bench::in_state(s);
            bench.dev.force_error();
            assert_eq!(bench.state(), Ok(State::Error));
            assert_eq!(bench.stop(), Ok(()));
            assert_eq!(bench.state(), Ok(State::ConfigUnlocked));
        }
    }

    #[test]
    fn set_bars_accepts_device_bars() {
        let mut dev = Responder::new(FID);
        assert_eq!(dev.set_bars(&BARS), Ok(()));
        assert_eq!(dev.bars(), &BARS[..]);
        assert_eq!(dev.function_id(), FID);
    }

    #[test]
    fn configuration_limits_are_enforced() {
        let mut dev = Responder::new(FID);
        assert_eq!(
            dev.set_bars(&[Bar::default(); MAX_RANGES + 1]),
            Err(ConfigError::TooManyBars)
        );
        assert_eq!(
            dev.set_device_specific(&[0; MAX_DEVICE_SPECIFIC + 1]),
            Err(ConfigError::DeviceSpecificTooLong)
        );
        assert_eq!(dev.set_bars(&[Bar::default(); MAX_RANGES]), Ok(()));
        assert_eq!(dev.set_device_specific(&[0; MAX_DEVICE_SPECIFIC]), Ok(()));
    }

    #[test]
    fn segments_limit_is_enforced() {
        let mut dev = Responder::new(FID);
        assert_eq!(
            dev.set_segments(&[Segment::default(); MAX_RANGES + 1]),
            Err(ConfigError::TooManySegments)
        );
        assert_eq!(dev.segments(), &[]);
        assert_eq!(dev.set_segments(&[Segment::default(); MAX_RANGES]), Ok(()));
        assert_eq!(dev.segments().len(), MAX_RANGES);
        assert_eq!(dev.set_segments(&[]), Ok(()));
        assert_eq!(dev.segments(), &[]);
    }

    /// Locks a bench whose report has `segments`; returns the fetched report.
    fn report_of(segments: &[Segment]) -> Result<InterfaceReport, RequesterError> {
        let mut bench = Bench::new();
        let _ = bench.dev.set_segments(segments);
        bench.lock()?;
        bench.fetch(0x100)
    }

    #[test]
    fn report_layout_follows_segments() {
        let segments = [
            Segment {
                bar: 0,
                first_page: 0,
                pages: 1,
                attributes: range_attr::NON_TEE,
                range_id: 0x10,
            },
            Segment {
                bar: 0,
                first_page: 1,
                pages: 2,
                attributes: 0,
                range_id: 0x11,
            },
            Segment {
                bar: 0,
                first_page: 3,
                pages: 0,
                attributes: range_attr::MSIX_TABLE | range_attr::MSIX_PBA,
                range_id: 0x12,
            },
            Segment {
                bar: 2,
                ..Segment::default()
            },
        ];
        let report = report_of(&segments);
        let expected = [
            range_with(B0, 1, 0x10, range_attr::NON_TEE),
            range(B0 + 1, 2, 0x11),
            range_with(
                B0 + 3,
                1,
                0x12,
                range_attr::MSIX_TABLE | range_attr::MSIX_PBA,
            ),
            range(B2, 1, 0),
        ];
        assert_eq!(report.map(|r| r.ranges() == expected), Ok(true));
        let checked = report.map(|r| check_report_against_bars(&r, &BARS, 0, 0));
        assert_eq!(
            checked.map(|c| c.map(|c| c.private_ranges().count())),
            Ok(Ok(2))
        );
    }

    #[test]
    fn report_layout_without_segments_is_one_range_per_bar() {
        assert_eq!(
            report_of(&[]).map(|r| r.ranges() == [range(B0, 4, 0), range(B2, 1, 2)]),
            Ok(true)
        );
    }

    #[test]
    fn segment_outside_its_bar_fails_the_lock() {
        let bad = [
            // Past the end of BAR0 (4 pages).
            Segment {
                bar: 0,
                first_page: 2,
                pages: 3,
                ..Segment::default()
            },
            // Starts past the end.
            Segment {
                bar: 0,
                first_page: 4,
                ..Segment::default()
            },
            Segment {
                bar: 0,
                first_page: u64::MAX,
                pages: 1,
                ..Segment::default()
            },
            // A BAR the device does not have.
            Segment {
                bar: 1,
                ..Segment::default()
            },
        ];
        for segment in bad {
            let mut bench = Bench::new();
            let _ = bench.dev.set_segments(&[segment]);
            let rsp = bench.send(&lock_request());
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidDeviceConfiguration));
            assert_eq!(bench.dev.state(), State::ConfigUnlocked);
        }
    }

    // ---- Full life cycle ------------------------------------------------------------------

    #[test]
    fn happy_path_lock_report_start_run_stop() {
        let mut bench = Bench::new();
        let mut req = Msg::new();
        let rsp = bench.send(&Request::GetVersion);
        assert_eq!(bench.host.parse_version(rsp.bytes()), Ok(()));

        req.len = bench
            .host
            .encode(&lock_at(OFFSET), &mut req.buf)
            .unwrap_or(0);
        let rsp = bench.raw(req.bytes());
        let nonce = bench.host.parse_lock(rsp.bytes());
        assert!(nonce.is_ok());
        assert_eq!(bench.state(), Ok(State::ConfigLocked));

        let report = bench.fetch(32);
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &BARS, OFFSET, 0).is_ok()),
            Ok(true)
        );

        assert_eq!(bench.start(nonce.unwrap_or_default()), Ok(()));
        assert_eq!(bench.state(), Ok(State::Run));
        assert_eq!(bench.stop(), Ok(()));
        assert_eq!(bench.state(), Ok(State::ConfigUnlocked));
    }
}
