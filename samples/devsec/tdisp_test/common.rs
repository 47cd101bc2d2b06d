// SPDX-License-Identifier: GPL-2.0

//! Fixtures shared by the TDISP KUnit suites: a test device, message buffers, a responder
//! wired to a requester, reference reports.
//!
//! Nothing here asserts: a fixture that cannot be set up leaves its value empty or default,
//! and the test using it fails on its own `assert!` inside a `#[kunit_tests]` module.

use crate::tdisp::*;

pub(crate) const FID: u32 = function_id(0x0100, Some(1));
pub(crate) const OTHER_FID: u32 = function_id(0x0200, None);

pub(crate) const BARS: [Bar; 2] = [
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

pub(crate) const OFFSET: u64 = 0x10_0000_0000;

/// A message buffer large enough for any message of the protocol.
pub(crate) struct Msg {
    pub(crate) buf: [u8; MAX_MESSAGE_LEN],
    pub(crate) len: usize,
}

impl Msg {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; MAX_MESSAGE_LEN],
            len: 0,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn prefix(&self, len: usize) -> &[u8] {
        self.buf.get(..len).unwrap_or(&[])
    }

    pub(crate) fn set(&mut self, at: usize, value: u8) {
        if let Some(byte) = self.buf.get_mut(at) {
            *byte = value;
        }
    }

    pub(crate) fn set_u16(&mut self, at: usize, value: u16) {
        let [lo, hi] = value.to_le_bytes();
        self.set(at, lo);
        self.set(at + 1, hi);
    }
}

/// Protocol ID of IDE key management, a PCI-SIG VENDOR_DEFINED protocol that is not TDISP.
pub(crate) const PROTOCOL_IDE_KM: u8 = 0x00;

/// Length of the TDISP_CAPABILITIES body in TDISP 1.0.
pub(crate) const CAPABILITIES_LEN: usize = 28;

/// Offsets into an encoded message.
pub(crate) const SPDM_CODE: usize = 1;
pub(crate) const STANDARD_ID: usize = 4;
pub(crate) const VENDOR_ID_LEN: usize = 6;
pub(crate) const VENDOR_ID: usize = 7;
pub(crate) const PAYLOAD_LEN: usize = 9;
pub(crate) const PROTOCOL: usize = 11;
pub(crate) const TDISP_VER: usize = 12;
pub(crate) const TDISP_TYPE: usize = 13;

/// Xorshift32: deterministic, never returns all zeroes from a non-zero seed.
pub(crate) fn fill(seed: &mut u32, buf: &mut [u8]) {
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

pub(crate) fn encode(fid: u32, req: &Request) -> Msg {
    let mut msg = Msg::new();
    msg.len = encode_request(fid, req, &mut msg.buf).unwrap_or(0);
    msg
}

pub(crate) fn encode_rsp(fid: u32, rsp: &Response<'_>) -> Msg {
    encode_rsp_as(SPDM_VERSION, InterfaceId::new(fid), rsp)
}

pub(crate) fn encode_rsp_as(version: u8, id: InterfaceId, rsp: &Response<'_>) -> Msg {
    let mut msg = Msg::new();
    msg.len = encode_response(version, id, rsp, &mut msg.buf).unwrap_or(0);
    msg
}

/// The interface ID of `fid` with reserved bytes zero.
pub(crate) const fn iid(fid: u32) -> InterfaceId {
    InterfaceId::new(fid)
}

/// Every LOCK_INTERFACE flag TDISP 1.0 defines.
pub(crate) const ALL_LOCK_FLAGS: u16 = lock_flags::NO_FW_UPDATE
    | lock_flags::SYSTEM_CACHE_LINE_SIZE
    | lock_flags::LOCK_MSIX
    | lock_flags::BIND_P2P
    | lock_flags::ALL_REQUEST_REDIRECT;

/// Offset of the 8 reserved bytes of the interface ID in an encoded message.
pub(crate) const INTERFACE_RESERVED: usize = TDISP_VER + 8;

/// Returns the SPDM version, error code and error data of an SPDM ERROR message without
/// extended error data.
pub(crate) fn spdm_error_of(msg: &Msg) -> Option<(u8, u8, u8)> {
    match msg.bytes() {
        [version, SPDM_ERROR, code, data] => Some((*version, *code, *data)),
        _ => None,
    }
}

pub(crate) fn error_of(msg: &Msg) -> Option<ErrorCode> {
    match decode_response(msg.bytes()) {
        Ok((_, Response::Error { code, .. })) => ErrorCode::from_u32(code),
        _ => None,
    }
}

pub(crate) fn type_of(msg: &Msg) -> Option<MessageType> {
    decode_response(msg.bytes())
        .ok()
        .map(|(_, rsp)| rsp.message_type())
}

pub(crate) fn lock_request() -> Request {
    Request::LockInterface(LockParams::default())
}

pub(crate) fn lock_at(offset: u64) -> Request {
    Request::LockInterface(LockParams {
        mmio_reporting_offset: offset,
        ..LockParams::default()
    })
}

pub(crate) fn all_requests(nonce: Nonce) -> [Request; 7] {
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
pub(crate) struct Bench {
    pub(crate) dev: Responder,
    pub(crate) host: Requester,
    pub(crate) seed: u32,
}

impl Bench {
    pub(crate) fn new() -> Self {
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
    pub(crate) fn in_state(state: State) -> (Self, Nonce) {
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

    pub(crate) fn raw_with(&mut self, req: &[u8], rng: &mut impl FnMut(&mut [u8])) -> Msg {
        let mut rsp = Msg::new();
        rsp.len = self.dev.handle(req, &mut rsp.buf, rng);
        rsp
    }

    pub(crate) fn raw(&mut self, req: &[u8]) -> Msg {
        let seed = &mut self.seed;
        let mut rsp = Msg::new();
        rsp.len = self
            .dev
            .handle(req, &mut rsp.buf, &mut |buf: &mut [u8]| fill(seed, buf));
        rsp
    }

    pub(crate) fn send(&mut self, req: &Request) -> Msg {
        let msg = encode(FID, req);
        self.raw(msg.bytes())
    }

    pub(crate) fn lock_with(&mut self, req: &Request) -> Result<Nonce, RequesterError> {
        let rsp = self.send(req);
        self.host.parse_lock(rsp.bytes())
    }

    pub(crate) fn lock(&mut self) -> Result<Nonce, RequesterError> {
        self.lock_with(&lock_request())
    }

    pub(crate) fn start(&mut self, nonce: Nonce) -> Result<(), RequesterError> {
        let rsp = self.send(&Request::StartInterface { nonce });
        self.host.parse_start(rsp.bytes())
    }

    pub(crate) fn stop(&mut self) -> Result<(), RequesterError> {
        let rsp = self.send(&Request::StopInterface);
        self.host.parse_stop(rsp.bytes())
    }

    pub(crate) fn state(&mut self) -> Result<State, RequesterError> {
        let rsp = self.send(&Request::GetDeviceInterfaceState);
        self.host.parse_state(rsp.bytes())
    }

    pub(crate) fn fetch(&mut self, page: u16) -> Result<InterfaceReport, RequesterError> {
        let host = self.host;
        let dev = &mut self.dev;
        let seed = &mut self.seed;
        host.fetch_report(page, |req: &[u8], rsp: &mut [u8]| {
            Ok::<usize, RequesterError>(dev.handle(req, rsp, &mut |buf: &mut [u8]| fill(seed, buf)))
        })?
        .report()
    }
}

/// Sends the request built by `req` (from the lock nonce) to a fresh bench in `state`;
/// returns the response and the state afterwards.
pub(crate) fn answer_in(state: State, req: impl Fn(Nonce) -> Request) -> (Msg, State) {
    let (mut bench, nonce) = Bench::in_state(state);
    let rsp = bench.send(&req(nonce));
    (rsp, bench.dev.state())
}

pub(crate) fn report_with(ranges: &[MmioRange], blob: &[u8]) -> InterfaceReport {
    let mut report = InterfaceReport::new();
    report.interface_info = interface_info::DMA_WITHOUT_PASID;
    for range in ranges {
        let _ = report.push_range(*range);
    }
    let _ = report.set_device_specific(blob);
    report
}

pub(crate) fn range(first_page: u64, number_of_pages: u32, range_id: u16) -> MmioRange {
    MmioRange {
        first_page,
        number_of_pages,
        attributes: 0,
        range_id,
    }
}

/// A range with `attributes`.
pub(crate) fn range_with(
    first_page: u64,
    number_of_pages: u32,
    range_id: u16,
    attributes: u16,
) -> MmioRange {
    MmioRange {
        attributes,
        ..range(first_page, number_of_pages, range_id)
    }
}

/// The report a device with BARS produces for a lock at `offset`.
pub(crate) fn good_report(offset: u64) -> InterfaceReport {
    report_with(
        &[
            range((0xe000_0000 + offset) / 4096, 4, 0),
            range((0xe010_0000 + offset) / 4096, 1, 2),
        ],
        &[],
    )
}

pub(crate) struct Encoded {
    pub(crate) buf: [u8; MAX_REPORT_LEN + 8],
    pub(crate) len: usize,
}

impl Encoded {
    pub(crate) fn of(report: &InterfaceReport) -> Self {
        let mut enc = Self {
            buf: [0; MAX_REPORT_LEN + 8],
            len: 0,
        };
        enc.len = report.encode(&mut enc.buf).unwrap_or(0);
        enc
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn set_u32(&mut self, at: usize, value: u32) {
        for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
            if let Some(dst) = self.buf.get_mut(at + i) {
                *dst = byte;
            }
        }
    }
}

/// Offset of `mmio_range_count` in an encoded report.
pub(crate) const RANGE_COUNT: usize = 12;

/// Returns the length `report` encodes to, from the report layout.
pub(crate) fn encoded_len(report: &InterfaceReport) -> usize {
    REPORT_FIXED_LEN + report.ranges().len() * REPORT_RANGE_LEN + 4 + report.device_specific().len()
}
