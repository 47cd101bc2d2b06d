// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the devsec TDISP codec and responder state machine (`tdisp.rs`).
//!
//! Built into the kernel (no `module!`); the suite runs at boot. The same file also runs on
//! the host under `cargo test`, where `#[kunit_tests]` simply becomes `#[cfg(test)]`. Tests
//! only use `assert!` and `assert_eq!` without messages, which KUnit maps to its own asserts,
//! and never unwrap: a failure is reported, it does not panic the kernel.

use kernel::prelude::*;

#[path = "tdisp.rs"]
mod tdisp;

#[kunit_tests(devsec_tdisp)]
mod tests {
    use super::tdisp::*;

    const FID: u32 = function_id(0x0100, Some(1));
    const OTHER_FID: u32 = function_id(0x0200, None);

    const BARS: [Bar; 2] = [
        Bar {
            index: 0,
            start: 0xe000_0000,
            len: 0x4000,
        },
        Bar {
            index: 2,
            start: 0xe010_0000,
            len: 0x1000,
        },
    ];

    const OFFSET: u64 = 0x10_0000_0000;

    /// A message buffer large enough for any message of the protocol.
    struct Msg {
        buf: [u8; MAX_MESSAGE_LEN],
        len: usize,
    }

    impl Msg {
        fn new() -> Self {
            Self {
                buf: [0; MAX_MESSAGE_LEN],
                len: 0,
            }
        }

        fn bytes(&self) -> &[u8] {
            self.buf.get(..self.len).unwrap_or(&[])
        }

        fn prefix(&self, len: usize) -> &[u8] {
            self.buf.get(..len).unwrap_or(&[])
        }

        fn set(&mut self, at: usize, value: u8) {
            if let Some(byte) = self.buf.get_mut(at) {
                *byte = value;
            }
        }

        fn set_u16(&mut self, at: usize, value: u16) {
            let [lo, hi] = value.to_le_bytes();
            self.set(at, lo);
            self.set(at + 1, hi);
        }
    }

    /// Offsets into an encoded message.
    const SPDM_CODE: usize = 1;
    const STANDARD_ID: usize = 4;
    const VENDOR_ID_LEN: usize = 6;
    const VENDOR_ID: usize = 7;
    const PAYLOAD_LEN: usize = 9;
    const PROTOCOL: usize = 11;
    const TDISP_VER: usize = 12;
    const TDISP_TYPE: usize = 13;

    /// Xorshift32: deterministic, never returns all zeroes from a non-zero seed.
    fn fill(seed: &mut u32, buf: &mut [u8]) {
        for byte in buf.iter_mut() {
            let mut x = *seed;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *seed = x;
            let [low, ..] = x.to_le_bytes();
            *byte = low;
        }
    }

    fn encode(fid: u32, req: &Request) -> Msg {
        let mut msg = Msg::new();
        msg.len = encode_request(fid, req, &mut msg.buf).unwrap_or(0);
        msg
    }

    fn encode_rsp(fid: u32, rsp: &Response<'_>) -> Msg {
        let mut msg = Msg::new();
        msg.len = encode_response(fid, rsp, &mut msg.buf).unwrap_or(0);
        msg
    }

    fn error_of(msg: &Msg) -> Option<ErrorCode> {
        match decode_response(msg.bytes()) {
            Ok((_, Response::Error { code, .. })) => ErrorCode::from_u32(code),
            _ => None,
        }
    }

    fn type_of(msg: &Msg) -> Option<MessageType> {
        decode_response(msg.bytes())
            .ok()
            .map(|(_, rsp)| rsp.message_type())
    }

    fn lock_request() -> Request {
        Request::LockInterface(LockParams::default())
    }

    fn lock_at(offset: u64) -> Request {
        Request::LockInterface(LockParams {
            mmio_reporting_offset: offset,
            ..LockParams::default()
        })
    }

    fn all_requests(nonce: Nonce) -> [Request; 7] {
        [
            Request::GetVersion,
            Request::GetCapabilities { tsm_caps: 0 },
            lock_at(OFFSET),
            Request::GetDeviceInterfaceReport {
                offset: 0,
                length: 0x100,
            },
            Request::GetDeviceInterfaceState,
            Request::StartInterface { nonce },
            Request::StopInterface,
        ]
    }

    /// A responder with the test BARs plus the TSM-side requester talking to it.
    struct Bench {
        dev: Responder,
        host: Requester,
        seed: u32,
    }

    impl Bench {
        fn new() -> Self {
            let mut dev = Responder::new(FID);
            // BARS has fewer than MAX_RANGES entries; `set_bars_accepts_device_bars` checks it.
            let _ = dev.set_bars(&BARS);
            Self {
                dev,
                host: Requester::new(FID),
                seed: 0x2545_f491,
            }
        }

        /// A bench driven into `state`; returns it with the nonce of its lock (if any).
        fn in_state(state: State) -> (Self, Nonce) {
            let mut bench = Self::new();
            let mut nonce = [0; NONCE_LEN];
            match state {
                State::ConfigUnlocked => {}
                State::ConfigLocked => nonce = bench.lock().unwrap_or_default(),
                State::Run => {
                    nonce = bench.lock().unwrap_or_default();
                    let _ = bench.start(nonce);
                }
                State::Error => {
                    nonce = bench.lock().unwrap_or_default();
                    bench.dev.config_changed();
                }
            }
            (bench, nonce)
        }

        fn raw_with(&mut self, req: &[u8], rng: &mut impl FnMut(&mut [u8])) -> Msg {
            let mut rsp = Msg::new();
            rsp.len = self.dev.handle(req, &mut rsp.buf, rng);
            rsp
        }

        fn raw(&mut self, req: &[u8]) -> Msg {
            let seed = &mut self.seed;
            let mut rsp = Msg::new();
            rsp.len = self
                .dev
                .handle(req, &mut rsp.buf, &mut |buf: &mut [u8]| fill(seed, buf));
            rsp
        }

        fn send(&mut self, req: &Request) -> Msg {
            let msg = encode(FID, req);
            self.raw(msg.bytes())
        }

        fn lock_with(&mut self, req: &Request) -> Result<Nonce, RequesterError> {
            let rsp = self.send(req);
            self.host.parse_lock(rsp.bytes())
        }

        fn lock(&mut self) -> Result<Nonce, RequesterError> {
            self.lock_with(&lock_request())
        }

        fn start(&mut self, nonce: Nonce) -> Result<(), RequesterError> {
            let rsp = self.send(&Request::StartInterface { nonce });
            self.host.parse_start(rsp.bytes())
        }

        fn stop(&mut self) -> Result<(), RequesterError> {
            let rsp = self.send(&Request::StopInterface);
            self.host.parse_stop(rsp.bytes())
        }

        fn state(&mut self) -> Result<State, RequesterError> {
            let rsp = self.send(&Request::GetDeviceInterfaceState);
            self.host.parse_state(rsp.bytes())
        }

        fn fetch(&mut self, page: u16) -> Result<InterfaceReport, RequesterError> {
            let host = self.host;
            let dev = &mut self.dev;
            let seed = &mut self.seed;
            host.fetch_report(page, |req: &[u8], rsp: &mut [u8]| {
                Ok::<usize, RequesterError>(
                    dev.handle(req, rsp, &mut |buf: &mut [u8]| fill(seed, buf)),
                )
            })
        }
    }

    /// Sends the request built by `req` (from the lock nonce) to a fresh bench in `state`;
    /// returns the response and the state afterwards.
    fn answer_in(state: State, req: impl Fn(Nonce) -> Request) -> (Msg, State) {
        let (mut bench, nonce) = Bench::in_state(state);
        let rsp = bench.send(&req(nonce));
        (rsp, bench.dev.state())
    }

    fn report_with(ranges: &[MmioRange], blob: &[u8]) -> InterfaceReport {
        let mut report = InterfaceReport::new();
        report.interface_info = interface_info::DMA_WITHOUT_PASID;
        for range in ranges {
            let _ = report.push_range(*range);
        }
        let _ = report.set_device_specific(blob);
        report
    }

    fn range(first_page: u64, number_of_pages: u32, range_id: u16) -> MmioRange {
        MmioRange {
            first_page,
            number_of_pages,
            attributes: 0,
            range_id,
        }
    }

    /// The report a device with BARS produces for a lock at `offset`.
    fn good_report(offset: u64) -> InterfaceReport {
        report_with(
            &[
                range((0xe000_0000 + offset) / 4096, 4, 0),
                range((0xe010_0000 + offset) / 4096, 1, 2),
            ],
            &[],
        )
    }

    struct Encoded {
        buf: [u8; MAX_REPORT_LEN + 8],
        len: usize,
    }

    impl Encoded {
        fn of(report: &InterfaceReport) -> Self {
            let mut enc = Self {
                buf: [0; MAX_REPORT_LEN + 8],
                len: 0,
            };
            enc.len = report.encode(&mut enc.buf).unwrap_or(0);
            enc
        }

        fn bytes(&self) -> &[u8] {
            self.buf.get(..self.len).unwrap_or(&[])
        }

        fn set_u32(&mut self, at: usize, value: u32) {
            for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
                if let Some(dst) = self.buf.get_mut(at + i) {
                    *dst = byte;
                }
            }
        }
    }

    /// Offset of `mmio_range_count` in an encoded report.
    const RANGE_COUNT: usize = 12;

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
        assert_eq!(hdr.map(|h| h.payload_dw()), Ok(10));
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
        assert_eq!(
            DoeHeader::decode(0x0001_0001, 2).map(|h| h.payload_dw()),
            Ok(0)
        );
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
                flags: lock_flags::ALL,
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
            assert_eq!(decode_request(msg.bytes()), Ok((OTHER_FID, req)));
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
            Response::Error { code: 4, data: 2 },
        ];
        for rsp in responses {
            let msg = encode_rsp(FID, &rsp);
            assert!(msg.len >= TDISP_OVERHEAD);
            assert_eq!(decode_response(msg.bytes()), Ok((FID, rsp)));
        }
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
            assert_eq!(decode_request(msg.bytes()), Ok((FID, Request::GetVersion)));
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
    fn header_ignores_reserved_fields() {
        let mut msg = encode(FID, &Request::GetDeviceInterfaceState);
        msg.set(14, 0xff);
        msg.set(15, 0xff);
        msg.set(27, 0xff);
        assert_eq!(
            decode_request(msg.bytes()),
            Ok((FID, Request::GetDeviceInterfaceState))
        );
    }

    // ---- Interface report -----------------------------------------------------------------

    #[test]
    fn report_round_trips() {
        let report = report_with(
            &[
                MmioRange {
                    first_page: 0x12_3456_789a,
                    number_of_pages: 16,
                    attributes: range_attr::MSIX_TABLE,
                    range_id: 0,
                },
                range(0x400, 1, 4),
            ],
            b"devsec",
        );
        let enc = Encoded::of(&report);
        assert_eq!(enc.len, report.encoded_len());
        assert_eq!(enc.len, 16 + 2 * 16 + 4 + 6);
        assert_eq!(InterfaceReport::decode(enc.bytes()), Ok(report));
    }

    #[test]
    fn report_wire_layout() {
        let mut report = report_with(&[range(0x0102_0304, 5, 2)], &[0xaa]);
        report.msi_x_message_control = 0x8001;
        report.lnr_control = 0x0203;
        report.tph_control = 0x0405_0607;
        let enc = Encoded::of(&report);
        let expected: [u8; 37] = [
            0x02, 0, 0, 0, 0x01, 0x80, 0x03, 0x02, 0x07, 0x06, 0x05, 0x04, // fixed part
            1, 0, 0, 0, // mmio_range_count
            0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 2, 0, // range
            1, 0, 0, 0, 0xaa, // device specific
        ];
        assert_eq!(enc.bytes(), &expected[..]);
    }

    #[test]
    fn report_of_maximum_size_round_trips() {
        let mut report = InterfaceReport::new();
        for id in 0..MAX_RANGES as u16 {
            assert!(report
                .push_range(range(u64::from(id) << 20, u32::MAX, id))
                .is_ok());
        }
        assert_eq!(
            report.push_range(range(0, 1, 9)),
            Err(ReportError::TooManyRanges)
        );
        assert!(report
            .set_device_specific(&[0x5a; MAX_DEVICE_SPECIFIC])
            .is_ok());
        let enc = Encoded::of(&report);
        assert_eq!(enc.len, MAX_REPORT_LEN);
        assert_eq!(InterfaceReport::decode(enc.bytes()), Ok(report));
    }

    #[test]
    fn report_of_zero_ranges_round_trips() {
        let report = InterfaceReport::new();
        let enc = Encoded::of(&report);
        assert_eq!(enc.len, 20);
        assert_eq!(InterfaceReport::decode(enc.bytes()), Ok(report));
    }

    #[test]
    fn report_encode_fails_on_short_buffer() {
        let report = good_report(0);
        let mut buf = [0u8; 20];
        assert_eq!(report.encode(&mut buf), Err(ReportError::BufferTooSmall));
    }

    #[test]
    fn report_device_specific_is_bounded() {
        let mut report = InterfaceReport::new();
        assert_eq!(
            report.set_device_specific(&[0; MAX_DEVICE_SPECIFIC + 1]),
            Err(ReportError::DeviceSpecificTooLong)
        );
        assert!(report.device_specific().is_empty());
    }

    #[test]
    fn report_decode_rejects_truncated_fixed_part() {
        let enc = Encoded::of(&InterfaceReport::new());
        for len in 0..REPORT_FIXED_LEN {
            let bytes = enc.buf.get(..len).unwrap_or(&[]);
            assert_eq!(InterfaceReport::decode(bytes), Err(ReportError::Truncated));
        }
        // Missing device_specific_len.
        let bytes = enc.buf.get(..REPORT_FIXED_LEN).unwrap_or(&[]);
        assert_eq!(InterfaceReport::decode(bytes), Err(ReportError::Truncated));
    }

    #[test]
    fn report_decode_rejects_count_beyond_bytes() {
        let mut enc = Encoded::of(&good_report(0));
        enc.set_u32(RANGE_COUNT, 3);
        assert_eq!(
            InterfaceReport::decode(enc.bytes()),
            Err(ReportError::RangesTruncated)
        );
        enc.set_u32(RANGE_COUNT, u32::MAX);
        assert_eq!(
            InterfaceReport::decode(enc.bytes()),
            Err(ReportError::RangesTruncated)
        );
    }

    #[test]
    fn report_decode_rejects_truncated_range() {
        let enc = Encoded::of(&good_report(0));
        let full_ranges = REPORT_FIXED_LEN + 2 * REPORT_RANGE_LEN;
        for len in REPORT_FIXED_LEN..full_ranges {
            let bytes = enc.buf.get(..len).unwrap_or(&[]);
            assert_eq!(
                InterfaceReport::decode(bytes),
                Err(ReportError::RangesTruncated)
            );
        }
    }

    #[test]
    fn report_decode_rejects_too_many_ranges() {
        let mut buf = [0u8; REPORT_FIXED_LEN + 9 * REPORT_RANGE_LEN + 4];
        if let Some(count) = buf.get_mut(RANGE_COUNT) {
            *count = 9;
        }
        assert_eq!(
            InterfaceReport::decode(&buf),
            Err(ReportError::TooManyRanges)
        );
    }

    #[test]
    fn report_decode_rejects_device_specific_length_mismatch() {
        let mut enc = Encoded::of(&report_with(&[range(1, 1, 0)], b"abcd"));
        let ds_len = REPORT_FIXED_LEN + REPORT_RANGE_LEN;
        for wrong in [0, 3, 5, u32::MAX] {
            enc.set_u32(ds_len, wrong);
            assert_eq!(
                InterfaceReport::decode(enc.bytes()),
                Err(ReportError::LengthMismatch)
            );
        }
        // Trailing byte after a consistent blob.
        enc.set_u32(ds_len, 4);
        enc.len += 1;
        assert_eq!(
            InterfaceReport::decode(enc.bytes()),
            Err(ReportError::LengthMismatch)
        );
    }

    #[test]
    fn report_decode_rejects_oversized_device_specific() {
        let mut buf = [0u8; 20 + MAX_DEVICE_SPECIFIC + 1];
        if let Some(len) = buf.get_mut(REPORT_FIXED_LEN) {
            *len = (MAX_DEVICE_SPECIFIC + 1) as u8;
        }
        assert_eq!(
            InterfaceReport::decode(&buf),
            Err(ReportError::DeviceSpecificTooLong)
        );
    }

    // ---- Report against BARs --------------------------------------------------------------

    #[test]
    fn check_accepts_matching_report() {
        assert_eq!(check_report_against_bars(&good_report(0), &BARS, 0), Ok(()));
    }

    #[test]
    fn check_accepts_matching_report_with_reporting_offset() {
        assert_eq!(
            check_report_against_bars(&good_report(OFFSET), &BARS, OFFSET),
            Ok(())
        );
        assert_eq!(
            check_report_against_bars(&good_report(OFFSET), &BARS, 0),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_accepts_ranges_in_any_order() {
        let report = report_with(
            &[
                range(0xe010_0000 / 4096, 1, 2),
                range(0xe000_0000 / 4096, 4, 0),
            ],
            &[],
        );
        assert_eq!(check_report_against_bars(&report, &BARS, 0), Ok(()));
    }

    #[test]
    fn check_rejects_range_count_mismatch() {
        let report = report_with(&[range(0xe000_0000 / 4096, 4, 0)], &[]);
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::RangeCountMismatch {
                reported: 1,
                expected: 2
            })
        );
        assert_eq!(
            check_report_against_bars(&good_report(0), &[], 0),
            Err(ReportCheckError::RangeCountMismatch {
                reported: 2,
                expected: 0
            })
        );
    }

    #[test]
    fn check_rejects_range_outside_bar() {
        let report = report_with(
            &[
                range(0xe000_1000 / 4096, 4, 0),
                range(0xe010_0000 / 4096, 1, 2),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_range_below_reporting_offset() {
        assert_eq!(
            check_report_against_bars(&good_report(0), &BARS, OFFSET),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_first_page_overflow() {
        let report = report_with(&[range(u64::MAX, 4, 0), range(0xe0100, 1, 2)], &[]);
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::RangeOutsideBar { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_unknown_bar() {
        let report = report_with(
            &[
                range(0xe000_0000 / 4096, 4, 0),
                range(0xe010_0000 / 4096, 1, 3),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::UnknownBar { range_id: 3 })
        );
    }

    #[test]
    fn check_rejects_size_mismatch() {
        let report = report_with(
            &[
                range(0xe000_0000 / 4096, 3, 0),
                range(0xe010_0000 / 4096, 1, 2),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::SizeMismatch { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_duplicate_range() {
        let report = report_with(
            &[
                range(0xe000_0000 / 4096, 4, 0),
                range(0xe000_0000 / 4096, 4, 0),
            ],
            &[],
        );
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::DuplicateRange { range_id: 0 })
        );
    }

    #[test]
    fn check_rejects_reserved_attributes() {
        let mut report = good_report(0);
        let mut ranges = [MmioRange::default(); 2];
        for (dst, src) in ranges.iter_mut().zip(report.ranges()) {
            *dst = *src;
        }
        ranges[1].attributes = 0x10 | range_attr::MSIX_PBA;
        report = report_with(&ranges, &[]);
        assert_eq!(
            check_report_against_bars(&report, &BARS, 0),
            Err(ReportCheckError::BadAttributes {
                range_id: 2,
                attributes: 0x12
            })
        );
        ranges[1].attributes = range_attr::ALL;
        report = report_with(&ranges, &[]);
        assert_eq!(check_report_against_bars(&report, &BARS, 0), Ok(()));
    }

    #[test]
    fn check_rejects_too_many_bars() {
        let bars = [Bar::default(); MAX_RANGES + 1];
        assert_eq!(
            check_report_against_bars(&InterfaceReport::new(), &bars, 0),
            Err(ReportCheckError::TooManyBars)
        );
    }

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
            Ok((FID, Response::DeviceInterfaceState(s)))
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
            Ok((FID, Response::DeviceInterfaceState(s)))
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
            Ok((FID, Response::DeviceInterfaceState(s)))
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
            Ok((FID, Response::DeviceInterfaceState(s)))
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
    fn invalid_interface_state_error_carries_state() {
        let (rsp, _) = answer_in(State::Run, |_| lock_request());
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((
                FID,
                Response::Error {
                    code: ErrorCode::InvalidInterfaceState as u32,
                    data: State::Run as u32
                }
            ))
        );
    }

    // ---- Responder: individual messages ---------------------------------------------------

    #[test]
    fn version_lists_tdisp_1_0() {
        let mut bench = Bench::new();
        let rsp = bench.send(&Request::GetVersion);
        assert_eq!(
            decode_response(rsp.bytes()),
            Ok((FID, Response::Version { versions: &[0x10] }))
        );
        assert_eq!(bench.host.parse_version(rsp.bytes()), Ok(()));
    }

    #[test]
    fn capabilities_list_supported_requests() {
        let mut bench = Bench::new();
        let rsp = bench.send(&Request::GetCapabilities { tsm_caps: 0 });
        let caps = bench.host.parse_capabilities(rsp.bytes());
        assert!(caps.is_ok());
        let caps = caps.unwrap_or_default();
        for code in 0x81..=0x87 {
            assert!(MessageType::from_u8(code).is_some_and(|t| caps.supports(t)));
        }
        assert!(!caps.supports(MessageType::Version));
        assert_eq!(caps.lock_flags_supported, lock_flags::ALL);
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
            flags: lock_flags::ALL,
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
            report.map(|r| check_report_against_bars(&r, &BARS, 0)),
            Ok(Ok(()))
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
        let total = good_report(0).encoded_len();
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
            report.map(|r| check_report_against_bars(&r, &BARS, OFFSET)),
            Ok(Ok(()))
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
        let total = good_report(0).encoded_len() as u16;
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
        let total = good_report(0).encoded_len();
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
        assert_eq!(report.map(|r| r.encoded_len()), Ok(MAX_REPORT_LEN));
        assert_eq!(
            report.map(|r| check_report_against_bars(&r, &bars, 0)),
            Ok(Ok(()))
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
    fn wrong_interface_is_invalid_interface() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        for req in all_requests(nonce) {
            let msg = encode(OTHER_FID, &req);
            let rsp = bench.raw(msg.bytes());
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidInterface));
            // The error names the interface the request named.
            assert_eq!(
                decode_response(rsp.bytes()).map(|(id, _)| id),
                Ok(OTHER_FID)
            );
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn truncated_request_is_invalid_request() {
        let (mut bench, nonce) = Bench::in_state(State::ConfigLocked);
        let msg = encode(FID, &Request::StartInterface { nonce });
        for len in 0..msg.len {
            let rsp = bench.raw(msg.prefix(len));
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        }
        assert_eq!(bench.dev.state(), State::ConfigLocked);
    }

    #[test]
    fn zero_length_request_is_invalid_request() {
        let mut bench = Bench::new();
        let rsp = bench.raw(&[]);
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        assert_eq!(decode_response(rsp.bytes()).map(|(id, _)| id), Ok(FID));
    }

    #[test]
    fn payload_length_beyond_buffer_is_invalid_request() {
        let mut bench = Bench::new();
        let mut req = encode(FID, &Request::GetVersion);
        req.set_u16(PAYLOAD_LEN, 0xffff);
        req.len = MAX_MESSAGE_LEN;
        let rsp = bench.raw(req.bytes());
        assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
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
    fn non_tdisp_framing_is_invalid_request() {
        let mut bench = Bench::new();
        let edits: [(usize, u8); 5] = [
            (0, 0x20),
            (SPDM_CODE, 0x7e),
            (STANDARD_ID, 0x04),
            (VENDOR_ID_LEN, 0),
            (PROTOCOL, PROTOCOL_IDE_KM),
        ];
        for (at, value) in edits {
            let mut req = encode(FID, &Request::GetVersion);
            req.set(at, value);
            let rsp = bench.raw(req.bytes());
            assert_eq!(error_of(&rsp), Some(ErrorCode::InvalidRequest));
        }
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
            assert!(rsp.len >= TDISP_OVERHEAD);
            assert!(decode_response(rsp.bytes()).is_ok());
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
            report.map(|r| check_report_against_bars(&r, &BARS, 0)),
            Ok(Err(ReportCheckError::RangeOutsideBar { range_id: 0 }))
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
            report.map(|r| check_report_against_bars(&r, &BARS, 0)),
            Ok(Err(ReportCheckError::RangeCountMismatch {
                reported: 1,
                expected: 2
            }))
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
                .map(|r| check_report_against_bars(&r, &[], 0));
            assert!(matches!(checked, Ok(Err(_))));
        }
        bench.dev.set_report_corruption(ReportCorruption::Truncated);
        assert_eq!(
            bench.fetch(0x100),
            Err(RequesterError::Report(ReportError::Truncated))
        );
    }

    #[test]
    fn report_corruption_names_round_trip() {
        for c in [
            ReportCorruption::None,
            ReportCorruption::RangeMismatch,
            ReportCorruption::RangeCount,
            ReportCorruption::Truncated,
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
            report.map(|r| check_report_against_bars(&r, &BARS, OFFSET)),
            Ok(Ok(()))
        );

        assert_eq!(bench.start(nonce.unwrap_or_default()), Ok(()));
        assert_eq!(bench.state(), Ok(State::Run));
        assert_eq!(bench.stop(), Ok(()));
        assert_eq!(bench.state(), Ok(State::ConfigUnlocked));
    }

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
            },
        );
        let err = RequesterError::Tdisp { code: 3, data: 9 };
        assert_eq!(host.parse_version(rsp.bytes()), Err(err));
        assert_eq!(host.parse_capabilities(rsp.bytes()), Err(err));
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
                expected: FID,
                got: OTHER_FID
            })
        );
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
        assert_eq!(result, Err(RequesterError::ReportNoProgress));
        assert_eq!(calls, 1);
    }

    #[test]
    fn fetch_report_rejects_device_error() {
        let mut bench = Bench::new();
        assert_eq!(
            bench.fetch(16),
            Err(RequesterError::Tdisp {
                code: ErrorCode::InvalidInterfaceState as u32,
                data: State::ConfigUnlocked as u32
            })
        );
    }
}
