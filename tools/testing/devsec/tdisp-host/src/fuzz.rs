// SPDX-License-Identifier: GPL-2.0

//! Fuzz targets of the TDISP library.
//!
//! Each target takes an arbitrary byte string and panics if, and only if, a property of the
//! library is violated (or the library itself panics):
//!
//! - [`responder`]: a stream of operations on one emulated interface — raw requests,
//!   well-formed requests with fuzzed fields, configuration changes, fault injection, report
//!   layouts. Every request is answered with a decodable TDISP response or an SPDM ERROR,
//!   and the interface reaches RUN only from CONFIG_LOCKED through a START_INTERFACE that
//!   carries the nonce of the LOCK_INTERFACE_RESPONSE which locked it.
//! - [`requester`]: the bytes as a response to every requester parser, as a device serving a
//!   report in portions, and as BARs to check a report against; a report the requester
//!   accepts satisfies, by an independent check, every rule
//!   [`check_report_against_bars`](crate::tdisp::check_report_against_bars) states.
//! - [`roundtrip`]: requests, responses and reports built from the bytes decode to
//!   themselves after encoding.
//! - [`spdm_responder`]: a stream of operations on one SPDM responder (`samples/devsec/spdm/`)
//!   with an SPDM requester beside it: raw and damaged requests, and the requester's own
//!   requests. Every request is answered with a decodable SPDM response of its request code
//!   or an ERROR; an ERROR changes no state; while nothing but the requester talked to the
//!   responder since the last GET_VERSION, the requester accepts every non-ERROR response,
//!   signatures included (both ends keep the same transcript).

use crate::tdisp::*;

/// Bytes of the fuzz input read as the fields of structured values; reads past the end
/// yield zeroes, so every input is usable.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&byte, rest)) => {
                self.data = rest;
                byte
            }
            None => 0,
        }
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for byte in out.iter_mut() {
            *byte = self.u8();
        }
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }

    /// Takes up to `max` bytes, the count given by the next byte.
    fn slice(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.u8()).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// A small value, usually picked from `common` so that fuzzed values hit the
    /// interesting cases often.
    fn pick_u64(&mut self, common: &[u64]) -> u64 {
        let selector = usize::from(self.u8());
        match common.get(selector % (common.len() + 1)) {
            Some(&value) => value,
            None => self.u64(),
        }
    }
}

/// The interface the targets talk to.
const FID: u32 = function_id(0x0100, Some(1));

/// BARs of the emulated interface unless the input sets others.
const DEFAULT_BARS: [Bar; 2] = [
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

fn fuzz_request(input: &mut Input<'_>, nonce: &Nonce) -> Request {
    match input.u8() % 8 {
        0 => Request::GetVersion,
        1 => Request::GetCapabilities {
            tsm_caps: input.u32(),
        },
        2 => Request::LockInterface(LockParams {
            flags: input.u8().into(),
            default_stream_id: input.u8(),
            mmio_reporting_offset: input.pick_u64(&[0, 0x10_0000_0000, 0x800, !0xfff]),
            bind_p2p_address_mask: input.u64(),
        }),
        3 => Request::GetDeviceInterfaceReport {
            offset: input.pick_u64(&[0, 16, 32]) as u16,
            length: input.pick_u64(&[0x100, 16, 1, 0]) as u16,
        },
        4 => Request::GetDeviceInterfaceState,
        // Mostly the right nonce, so that RUN is reachable.
        5 if input.u8() % 4 != 0 => Request::StartInterface { nonce: *nonce },
        5 => Request::StartInterface {
            nonce: input.bytes(),
        },
        _ => Request::StopInterface,
    }
}

fn fuzz_bars(input: &mut Input<'_>) -> ([Bar; MAX_RANGES], usize) {
    let mut bars = [Bar::default(); MAX_RANGES];
    let count = usize::from(input.u8()) % (MAX_RANGES + 1);
    for (i, bar) in bars.iter_mut().take(count).enumerate() {
        *bar = Bar {
            index: u16::try_from(i).unwrap_or(0),
            start: input.pick_u64(&[0xe000_0000, 0xe010_0000, 0xe000_1000, 0]),
            len: input.pick_u64(&[0x1000, 0x4000, 0x800]),
        };
    }
    (bars, count)
}

fn fuzz_segments(input: &mut Input<'_>) -> ([Segment; MAX_RANGES], usize) {
    let mut segments = [Segment::default(); MAX_RANGES];
    let count = usize::from(input.u8()) % (MAX_RANGES + 1);
    for segment in segments.iter_mut().take(count) {
        *segment = Segment {
            bar: u16::from(input.u8() % 3),
            first_page: input.pick_u64(&[0, 1, 2, 3]),
            pages: u32::from(input.u8() % 5),
            attributes: u16::from(input.u8() & 0x1f),
            range_id: input.u16(),
        };
    }
    (segments, count)
}

/// Decodes a TDISP response in a VENDOR_DEFINED_RESPONSE of any SPDM 1.x version.
fn decode_any(rsp: &[u8]) -> Option<Response<'_>> {
    let tdisp = unwrap_spdm(rsp, SPDM_VENDOR_DEFINED_RESPONSE).ok()?;
    let (hdr, body) = TdispHeader::decode(tdisp).ok()?;
    if hdr.version != TDISP_VERSION {
        return None;
    }
    Response::decode(hdr.message_type, body).ok()
}

/// Returns whether `rsp` is a well-formed answer: a TDISP response in a VENDOR_DEFINED
/// message or an SPDM ERROR.
fn is_answer(rsp: &[u8]) -> bool {
    match rsp {
        [_, SPDM_ERROR, _, _] => spdm_version_of(rsp).is_some(),
        _ => decode_any(rsp).is_some(),
    }
}

/// Fuzzes one responder with a stream of operations (see the module documentation).
pub fn responder(data: &[u8]) {
    let mut input = Input::new(data);
    let mut dev = Responder::new(FID);
    let host = Requester::new(FID);
    let _ = dev.set_bars(&DEFAULT_BARS);
    // The nonce of the LOCK_INTERFACE_RESPONSE that locked the interface, if it is locked,
    // and the nonce of the last one.
    let mut lock_nonce: Option<Nonce> = None;
    let mut last_nonce: Option<Nonce> = None;
    let mut seed = 0x2545_f491_u32 ^ u32::from(input.u8());
    let mut req = [0u8; MAX_MESSAGE_LEN];
    let mut rsp = [0u8; MAX_MESSAGE_LEN];
    let mut steps = 0usize;
    while !input.is_empty() && steps < 256 {
        steps += 1;
        let request: &[u8] = match input.u8() % 10 {
            0 | 1 => input.slice(MAX_MESSAGE_LEN),
            2..=5 => {
                let r = fuzz_request(&mut input, &lock_nonce.unwrap_or_default());
                let len = host.encode(&r, &mut req).unwrap_or(0);
                // Sometimes damage one byte of a well-formed request.
                if input.u8() % 8 == 0 {
                    let at = usize::from(input.u8()) % len.max(1);
                    if let Some(byte) = req.get_mut(at) {
                        *byte ^= input.u8() | 1;
                    }
                }
                req.get(..len).unwrap_or(&[])
            }
            6 => {
                match input.u8() % 4 {
                    0 => dev.config_changed(),
                    1 => dev.force_error(),
                    2 => dev.fail_next_start(),
                    _ => dev.fail_next_request(
                        ErrorCode::from_u32(u32::from(input.u8())).unwrap_or(ErrorCode::Busy),
                    ),
                }
                &[]
            }
            7 => {
                let (bars, count) = fuzz_bars(&mut input);
                let _ = dev.set_bars(bars.get(..count).unwrap_or(&[]));
                &[]
            }
            8 => {
                let (segments, count) = fuzz_segments(&mut input);
                let _ = dev.set_segments(segments.get(..count).unwrap_or(&[]));
                &[]
            }
            _ => {
                let corruption = match input.u8() % 6 {
                    0 => ReportCorruption::None,
                    1 => ReportCorruption::RangeMismatch,
                    2 => ReportCorruption::RangeCount,
                    3 => ReportCorruption::Truncated,
                    4 => ReportCorruption::Changed,
                    _ => ReportCorruption::Missing,
                };
                dev.set_report_corruption(corruption);
                &[]
            }
        };
        let before = dev.state();
        let mut sent = false;
        if !request.is_empty() || input.u8() % 2 == 0 {
            // Mostly a full buffer, sometimes one that is too short or clamps reports.
            let room = match input.u8() % 8 {
                0 => usize::from(input.u8()),
                1 => MIN_RESPONSE_LEN + usize::from(input.u8()),
                _ => MAX_MESSAGE_LEN,
            }
            .min(MAX_MESSAGE_LEN);
            let out = rsp.get_mut(..room).unwrap_or(&mut []);
            let len = dev.handle(request, out, &mut |buf: &mut [u8]| {
                for byte in buf.iter_mut() {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    *byte = seed.to_le_bytes()[0];
                }
            });
            let answer = out.get(..len).unwrap_or(&[]);
            if room < MIN_RESPONSE_LEN {
                assert_eq!(len, 0, "short buffer must not be answered");
                assert_eq!(dev.state(), before, "unanswered request changed the state");
                continue;
            }
            assert!(
                is_answer(answer),
                "request {request:02x?} not answered: {answer:02x?} room {room}"
            );
            sent = true;
            if let Some(Response::LockInterface { nonce }) = decode_any(answer) {
                assert_eq!(
                    before,
                    State::ConfigUnlocked,
                    "LOCK outside CONFIG_UNLOCKED"
                );
                assert_eq!(dev.state(), State::ConfigLocked);
                assert_ne!(nonce, [0; NONCE_LEN], "zero LOCK nonce");
                assert_ne!(Some(nonce), last_nonce, "LOCK nonce reused");
                lock_nonce = Some(nonce);
                last_nonce = Some(nonce);
            }
        }
        let after = dev.state();
        if after == State::ConfigLocked && before != State::ConfigLocked {
            assert!(
                lock_nonce.is_some() && sent,
                "CONFIG_LOCKED reached without LOCK"
            );
        }
        if after == State::Run && before != State::Run {
            // Only a START_INTERFACE with the lock nonce, sent in CONFIG_LOCKED, reaches RUN.
            assert!(sent, "RUN reached without a request");
            assert_eq!(before, State::ConfigLocked, "RUN reached from {before:?}");
            let decoded = decode_request(request);
            let nonce = match decoded {
                Ok((_, Request::StartInterface { nonce })) => nonce,
                other => panic!("RUN reached by {other:?}"),
            };
            assert_eq!(Some(nonce), lock_nonce, "RUN reached with a foreign nonce");
        }
        if after == State::ConfigUnlocked {
            lock_nonce = None;
        }
    }
}

/// Checks `checked` against `report` and `bars` without the code under test.
fn verify_checked(
    report: &InterfaceReport,
    bars: &[Bar],
    offset: u64,
    lock: u16,
    checked: &CheckedReport,
) {
    assert_eq!(report.interface_info & !0x1f, 0, "reserved interface_info");
    assert_eq!(checked.ranges().len(), report.ranges().len());
    for (i, (got, range)) in checked.ranges().iter().zip(report.ranges()).enumerate() {
        let start = (u128::from(range.first_page) * 4096).checked_sub(u128::from(offset));
        assert!(start.is_some(), "range below the reporting offset accepted");
        let start = start.unwrap_or(0);
        let len = u128::from(range.number_of_pages) * 4096;
        assert!(len > 0, "empty range accepted");
        assert_eq!(start % 4096, 0, "misaligned range accepted");
        assert_eq!((u128::from(got.start), u128::from(got.len)), (start, len));
        assert_eq!(range.attributes & !0x7, 0, "reserved or UPDATABLE accepted");
        let holders: Vec<&Bar> = bars
            .iter()
            .filter(|bar| {
                u128::from(bar.start) <= start
                    && start + len <= u128::from(bar.start) + u128::from(bar.len)
            })
            .collect();
        assert_eq!(holders.len(), 1, "range not in exactly one BAR");
        assert_eq!(holders.first().map(|bar| bar.index), Some(got.bar));
        for other in checked.ranges().get(..i).unwrap_or(&[]) {
            assert!(
                got.start >= other.start + other.len || other.start >= got.start + got.len,
                "overlapping ranges accepted"
            );
        }
        let non_tee = range.attributes & 0x4 != 0;
        let msix = range.attributes & 0x3 != 0;
        assert_eq!(got.private, !non_tee && (!msix || lock & 0x4 != 0));
    }
    for bar in bars {
        assert!(
            checked.ranges().iter().any(|range| range.bar == bar.index),
            "BAR without range accepted"
        );
    }
}

/// Fuzzes the requester: the first byte selects raw parsing, a raw report fetch, or a
/// structured report (mostly well formed, so that the checks are reached) fetched from an
/// honest device and checked against fuzzed BARs.
pub fn requester(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => parse_all(rest),
        1 => fetch_raw(rest),
        _ => check_structured(rest),
    }
}

/// The bytes as a response to every parser.
fn parse_all(data: &[u8]) {
    let host = Requester::new(FID);
    let _ = host.parse_version(data);
    let _ = host.parse_capabilities(data);
    let _ = host.parse_report(data);
    let _ = host.parse_state(data);
    let _ = host.parse_start(data);
    let _ = host.parse_stop(data);
    let _ = decode_spdm_error(data);
    if let Ok(nonce) = host.parse_lock(data) {
        assert_ne!(nonce, [0; NONCE_LEN], "zero nonce accepted");
    }
    if let Ok(report) = InterfaceReport::decode(data) {
        // Re-encoding yields the same bytes except the reserved field, which decode ignores.
        let mut buf = [0u8; MAX_REPORT_LEN];
        let len = report.encode(&mut buf).unwrap_or(0);
        assert_eq!(len, data.len());
        for (i, (a, b)) in buf.iter().zip(data).enumerate() {
            assert!(a == b || matches!(i, 2 | 3), "report byte {i} changed");
        }
    }
}

/// Slices of the bytes as the device's answers to a report fetch.
fn fetch_raw(data: &[u8]) {
    let host = Requester::new(FID);
    let mut input = Input::new(data);
    let page = input.pick_u64(&[0x100, 16, 7, 1]) as u16;
    let mut rounds = 0;
    let fetched = host.fetch_report(page, |_req: &[u8], rsp: &mut [u8]| {
        rounds += 1;
        let msg = input.slice(rsp.len());
        let dst = rsp
            .get_mut(..msg.len())
            .ok_or(RequesterError::ReportTooLarge)?;
        dst.copy_from_slice(msg);
        Ok::<usize, RequesterError>(msg.len())
    });
    assert!(rounds <= MAX_REPORT_LEN, "report fetch did not terminate");
    if let Ok(assembler) = fetched {
        assert!(assembler.is_complete());
        let _ = assembler.report();
    }
}

/// A report built around fuzzed BARs, served by an honest device, fetched and checked.
fn check_structured(data: &[u8]) {
    let mut input = Input::new(data);
    let (bars, count) = fuzz_bars(&mut input);
    let bars = bars.get(..count).unwrap_or(&[]);
    let offset = input.pick_u64(&[0, 0x10_0000_0000, 0x800]);
    let lock = u16::from(input.u8() & 0x1f);
    let mut report = InterfaceReport::new();
    report.interface_info = input.pick_u64(&[0x2, 0x3, 0x1f, 0x20]) as u16;
    for _ in 0..usize::from(input.u8()) % (MAX_RANGES + 1) {
        let bar = bars
            .get(usize::from(input.u8()) % bars.len().max(1))
            .copied()
            .unwrap_or_default();
        let page = input.pick_u64(&[0, 1, 2, 3]);
        let start = bar
            .start
            .wrapping_add(page.wrapping_mul(4096))
            .wrapping_add(offset);
        let _ = report.push_range(MmioRange {
            first_page: start / 4096,
            number_of_pages: input.pick_u64(&[1, 2, 4, 0]) as u32,
            attributes: input.pick_u64(&[0, 0, 0x1, 0x2, 0x4, 0x8, 0x10]) as u16,
            range_id: input.u16(),
        });
    }
    let _ = report.set_device_specific(input.slice(MAX_DEVICE_SPECIFIC));
    let mut encoded = [0u8; MAX_REPORT_LEN];
    let len = report.encode(&mut encoded).unwrap_or(0);
    let served = encoded.get(..len).unwrap_or(&[]);

    let host = Requester::new(FID);
    let page = input.pick_u64(&[0x100, 16, 7, 1]) as u16;
    let fetched = host.fetch_report(page, |req: &[u8], rsp: &mut [u8]| {
        let (offset, length) = match decode_request(req) {
            Ok((_, Request::GetDeviceInterfaceReport { offset, length })) => (offset, length),
            _ => return Err(RequesterError::ReportInconsistent),
        };
        let from = usize::from(offset).min(served.len());
        let to = from.saturating_add(usize::from(length)).min(served.len());
        let portion = served.get(from..to).unwrap_or(&[]);
        let remainder = u16::try_from(served.len() - to).unwrap_or(0);
        let answer = Response::DeviceInterfaceReport { portion, remainder };
        Ok(encode_response(
            SPDM_VERSION,
            InterfaceId::new(FID),
            &answer,
            rsp,
        )?)
    });
    let fetched = fetched.and_then(|assembler| assembler.report());
    assert_eq!(fetched, Ok(report), "honest report not fetched intact");
    if let Ok(checked) = check_report_against_bars(&report, bars, offset, lock) {
        verify_checked(&report, bars, offset, lock, &checked);
    }
}

fn fuzz_response<'a>(input: &mut Input<'a>) -> Response<'a> {
    match input.u8() % 8 {
        0 => Response::Version {
            versions: input.slice(255),
        },
        1 => Response::Capabilities(Capabilities {
            dsm_caps: input.u32(),
            req_msgs_supported: input.bytes(),
            lock_flags_supported: input.u16(),
            dev_addr_width: input.u8(),
            num_req_this: input.u8(),
            num_req_all: input.u8(),
        }),
        2 => Response::LockInterface {
            nonce: input.bytes(),
        },
        3 => Response::DeviceInterfaceReport {
            portion: input.slice(MAX_REPORT_LEN),
            remainder: input.u16(),
        },
        4 => Response::DeviceInterfaceState(match input.u8() % 4 {
            0 => State::ConfigUnlocked,
            1 => State::ConfigLocked,
            2 => State::Run,
            _ => State::Error,
        }),
        5 => Response::StartInterface,
        6 => Response::StopInterface,
        _ => {
            let code = match input.u8() % 3 {
                0 => ErrorCode::VendorSpecificError as u32,
                1 => u32::from(input.u8()),
                _ => input.u32(),
            };
            let ext = if code == ErrorCode::VendorSpecificError as u32 {
                input.slice(SPDM_MAX_EXTENDED_ERROR)
            } else {
                &[]
            };
            Response::Error {
                code,
                data: input.u32(),
                ext,
            }
        }
    }
}

/// Encodes requests, responses and a report built from `data` and checks that they decode
/// to themselves.
pub fn roundtrip(data: &[u8]) {
    let mut input = Input::new(data);
    let nonce: Nonce = input.bytes();
    let id = InterfaceId {
        function_id: input.u32(),
        reserved: input.pick_u64(&[0]),
    };
    let mut buf = [0u8; MAX_MESSAGE_LEN];

    let req = fuzz_request(&mut input, &nonce);
    let len = Requester::new(id.function_id)
        .encode(&req, &mut buf)
        .unwrap_or(0);
    assert_eq!(
        decode_request(buf.get(..len).unwrap_or(&[])),
        Ok((InterfaceId::new(id.function_id), req))
    );

    let rsp = fuzz_response(&mut input);
    let version = 0x10 | (input.u8() & 0xf);
    if let Ok(len) = encode_response(version, id, &rsp, &mut buf) {
        let msg = buf.get(..len).unwrap_or(&[]);
        let tdisp = unwrap_spdm(msg, SPDM_VENDOR_DEFINED_RESPONSE).unwrap_or(&[]);
        let decoded = TdispHeader::decode(tdisp).and_then(|(hdr, body)| {
            Ok((hdr.interface_id, Response::decode(hdr.message_type, body)?))
        });
        // A vendor-specific error whose extended data is not a vendor ID plus data does
        // not decode; everything else must.
        let malformed_ext = matches!(rsp, Response::Error { code: 0xff, ext, .. }
            if ext.len() < 2 || usize::from(ext.get(1).copied().unwrap_or(0)) > ext.len() - 2);
        if malformed_ext {
            assert_eq!(decoded, Err(CodecError::Truncated));
        } else {
            assert_eq!(decoded, Ok((id, rsp)));
            if version == SPDM_VERSION {
                assert_eq!(decode_response(msg), Ok((id, rsp)));
            }
        }
    }

    let mut report = InterfaceReport::new();
    report.interface_info = input.u16();
    report.msi_x_message_control = input.u16();
    report.lnr_control = input.u16();
    report.tph_control = input.u32();
    for _ in 0..usize::from(input.u8()) % (MAX_RANGES + 2) {
        let _ = report.push_range(MmioRange {
            first_page: input.u64(),
            number_of_pages: input.u32(),
            attributes: input.u16(),
            range_id: input.u16(),
        });
    }
    let _ = report.set_device_specific(input.slice(MAX_DEVICE_SPECIFIC + 1));
    let mut enc = [0u8; MAX_REPORT_LEN];
    let len = report.encode(&mut enc);
    assert!(len.is_ok());
    let decoded = InterfaceReport::decode(enc.get(..len.unwrap_or(0)).unwrap_or(&[]));
    assert_eq!(decoded, Ok(report));
}

pub use spdm_target::spdm_responder;

/// The SPDM target, apart so that its names do not clash with the TDISP ones.
mod spdm_target {
    use super::Input;
    use crate::spdm::*;

    /// A stand-in for SHA-384: six 64-bit FNV-style lanes. Not cryptography.
    struct FuzzHash([u64; 6], u64);

    impl Hash for FuzzHash {
        fn start() -> Result<Self, CryptoError> {
            Ok(Self([0xcbf2_9ce4_8422_2325; 6], 0))
        }

        fn update(&mut self, data: &[u8]) -> Result<(), CryptoError> {
            for &byte in data {
                let mut carry = u64::from(byte) ^ self.1;
                for lane in self.0.iter_mut() {
                    *lane = (*lane ^ carry).wrapping_mul(0x0000_0100_0000_01b3);
                    carry = lane.rotate_left(29);
                }
                self.1 = self.1.wrapping_add(1);
            }
            Ok(())
        }

        fn finish(self) -> Result<Digest, CryptoError> {
            let mut out = [0u8; HASH_LEN];
            for (chunk, lane) in out.chunks_exact_mut(8).zip(self.0.iter()) {
                chunk.copy_from_slice(&(lane ^ self.1).to_le_bytes());
            }
            Ok(out)
        }
    }

    fn fuzz_hash(parts: &[&[u8]]) -> Digest {
        hash_of::<FuzzHash>(parts).unwrap_or([0; HASH_LEN])
    }

    /// A stand-in signature: the hash of the message, repeated. Not cryptography.
    fn fuzz_sign(message: &[u8]) -> Signature {
        let digest = fuzz_hash(&[b"key", message]);
        let mut sig = [0u8; SIGNATURE_LEN];
        for chunk in sig.chunks_exact_mut(HASH_LEN) {
            chunk.copy_from_slice(&digest);
        }
        sig
    }

    /// The fuzzed device: a chain of two DER-framed certificates, three measurements.
    struct FuzzDevice {
        chain: [u8; 1400],
    }

    impl FuzzDevice {
        fn new() -> Self {
            let mut chain = [0u8; 1400];
            let len = chain.len() as u16;
            // Root: 600 content bytes at 52; leaf: the rest.
            let certs = [(52usize, 600u16), (656, 1400 - 656 - 4)];
            for (at, content) in certs {
                let [hi, lo] = content.to_be_bytes();
                if let Some(dst) = chain.get_mut(at..at + 4) {
                    dst.copy_from_slice(&[0x30, 0x82, hi, lo]);
                }
            }
            let root = fuzz_hash(&[chain.get(52..656).unwrap_or(&[])]);
            if let Some(dst) = chain.get_mut(4..52) {
                dst.copy_from_slice(&root);
            }
            if let Some(dst) = chain.get_mut(..2) {
                dst.copy_from_slice(&len.to_le_bytes());
            }
            Self { chain }
        }
    }

    const VALUES: [[u8; HASH_LEN]; 3] = [[1; HASH_LEN], [2; HASH_LEN], [3; HASH_LEN]];

    impl DeviceIdentity for FuzzDevice {
        fn cert_chain(&self) -> &[u8] {
            &self.chain
        }

        fn sign(&self, message: &SignedMessage, sig: &mut Signature) -> Result<(), CryptoError> {
            *sig = fuzz_sign(message);
            Ok(())
        }

        fn measurement(&self, n: usize) -> Option<Measurement<'_>> {
            Some(Measurement {
                index: *[1u8, 2, 5].get(n)?,
                value_type: u8::try_from(n).ok()?,
                value: VALUES.get(n)?,
                tcb: n < 2,
            })
        }
    }

    struct FuzzVerifier;

    impl Verifier for FuzzVerifier {
        fn verify(
            &self,
            _chain: &[u8],
            message: &SignedMessage,
            signature: &Signature,
        ) -> Result<(), CryptoError> {
            if fuzz_sign(message) == *signature {
                Ok(())
            } else {
                Err(CryptoError)
            }
        }
    }

    fn nonce(input: &mut Input<'_>) -> Nonce {
        input.bytes()
    }

    /// A request with fuzzed fields, well-formed or not.
    fn fuzz_request(input: &mut Input<'_>) -> Request {
        match input.u8() % 7 {
            0 => Request::GetVersion,
            1 => Request::GetCapabilities(CapabilityParams {
                ct_exponent: input.u8(),
                flags: input.u32(),
                data_transfer_size: input.pick_u64(&[42, 41, 0x1000, 0]) as u32,
                max_message_size: input.pick_u64(&[0x1000, 42, 0]) as u32,
            }),
            2 => {
                let mut offer = AlgorithmsOffer {
                    measurement_spec: input.u8() & 3,
                    other_params: input.u8(),
                    base_asym: input.pick_u64(&[0x4, 0x84, 0x80]) as u32,
                    base_hash: input.pick_u64(&[0x2, 0x3, 0x1]) as u32,
                    ext_asym_count: input.u8() % 24,
                    ext_hash_count: input.u8() % 4,
                    ..AlgorithmsOffer::ours()
                };
                offer.struct_count = input.u8() % 5;
                for s in offer.structs.iter_mut() {
                    *s = AlgStruct {
                        alg_type: input.u8() % 7,
                        supported: input.u16(),
                        ext_count: input.u8() % 3,
                    };
                }
                Request::NegotiateAlgorithms(offer)
            }
            3 => Request::GetDigests,
            4 => Request::GetCertificate {
                slot: input.u8() % 3,
                offset: input.pick_u64(&[0, 1000, 1399, 1400]) as u16,
                length: input.pick_u64(&[0xffff, 1, 0, 100]) as u16,
            },
            5 => Request::Challenge {
                slot: input.pick_u64(&[0, 1, 0xff]) as u8,
                summary: input.pick_u64(&[0, 1, 0xff, 2]) as u8,
                nonce: nonce(input),
            },
            _ => Request::GetMeasurements {
                attributes: input.u8() & 3,
                operation: input.pick_u64(&[0, 0xff, 1, 5, 3]) as u8,
                nonce: nonce(input),
                slot: input.u8() % 2,
            },
        }
    }

    /// One of the requests the requester sends, in or out of order.
    fn requester_request(input: &mut Input<'_>, requester: &Requester<FuzzHash>) -> Request {
        match input.u8() % 7 {
            0 => Request::GetVersion,
            1 => Request::GetCapabilities(OUR_CAPABILITIES),
            2 => Request::NegotiateAlgorithms(AlgorithmsOffer::ours()),
            3 => Request::GetDigests,
            4 => requester.next_certificate(input.pick_u64(&[0xffff, 1, 100, 512]) as u16),
            5 => Request::Challenge {
                slot: 0,
                summary: input.pick_u64(&[0, 1, 0xff]) as u8,
                nonce: nonce(input),
            },
            _ => Request::GetMeasurements {
                attributes: input.u8() & 1,
                operation: input.pick_u64(&[0, 0xff, 1, 2, 5]) as u8,
                nonce: nonce(input),
                slot: 0,
            },
        }
    }

    /// Checks that `rsp` is a decodable answer to `req`: an ERROR with an SPDM 1.2 error
    /// code, or the response code of the request in its version.
    fn check_answer(req: &[u8], rsp: &[u8]) {
        assert!(rsp.len() >= HEADER_LEN, "answer too short: {rsp:02x?}");
        if let Some((_, code, _)) = decode_error(rsp) {
            assert!(
                ErrorCode::from_u8(code).is_some(),
                "undefined error {code:#x}"
            );
            return;
        }
        let code = req.get(1).copied().unwrap_or(0);
        assert_eq!(
            rsp.get(1).copied(),
            Some(code & 0x7f),
            "answer to {req:02x?}: {rsp:02x?}"
        );
        let version = if code == Code::GetVersion as u8 {
            0x10
        } else {
            0x12
        };
        assert_eq!(
            rsp.first().copied(),
            Some(version),
            "answer in another version"
        );
    }

    /// Fuzzes one SPDM responder (see the module documentation).
    pub fn spdm_responder(data: &[u8]) {
        let mut input = Input::new(data);
        let mut dev: Responder<FuzzDevice, FuzzHash> = Responder::new(FuzzDevice::new());
        let mut host: Requester<FuzzHash> = Requester::new();
        let mut in_sync = true;
        let mut seed = 0x2545_f491_u32 ^ u32::from(input.u8());
        let mut req = [0u8; MAX_MESSAGE_LEN];
        let mut rsp = [0u8; MAX_MESSAGE_LEN];
        let mut steps = 0usize;
        while !input.is_empty() && steps < 128 {
            steps += 1;
            let op = input.u8() % 4;
            let mut ours = None;
            let len = match op {
                0 => {
                    let raw = input.slice(MAX_MESSAGE_LEN);
                    if let Some(dst) = req.get_mut(..raw.len()) {
                        dst.copy_from_slice(raw);
                    }
                    raw.len()
                }
                1 => {
                    let r = fuzz_request(&mut input);
                    let len = r.encode(&mut req).unwrap_or(0);
                    if input.u8() % 4 == 0 {
                        let at = usize::from(input.u8()) % len.max(1);
                        if let Some(byte) = req.get_mut(at) {
                            *byte ^= input.u8() | 1;
                        }
                    }
                    len
                }
                _ => {
                    let r = requester_request(&mut input, &host);
                    match host.encode(&r, &mut req) {
                        Ok(len) => {
                            ours = Some(r);
                            len
                        }
                        Err(_) => continue,
                    }
                }
            };
            let request = req.get(..len).unwrap_or(&[]);
            let room = match input.u8() % 8 {
                0 => usize::from(input.u8()),
                1 => MIN_RESPONSE_LEN + usize::from(input.u8()),
                _ => MAX_MESSAGE_LEN,
            };
            let before = dev.state();
            let out = rsp.get_mut(..room).unwrap_or(&mut []);
            let n = dev.handle(request, out, &mut |buf: &mut [u8]| {
                for byte in buf.iter_mut() {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    *byte = seed.to_le_bytes()[0];
                }
            });
            let answer = out.get(..n).unwrap_or(&[]);
            if room < MIN_RESPONSE_LEN {
                assert_eq!(n, 0, "short buffer must not be answered");
                // Neither end changed: the requester's request is simply dropped.
                assert_eq!(dev.state(), before, "unanswered request changed the state");
                continue;
            }
            check_answer(request, answer);
            let is_error = decode_error(answer).is_some();
            if is_error {
                assert_eq!(dev.state(), before, "ERROR changed the state");
            }
            match ours {
                // A raw request desynchronises the ends unless it was refused, and any
                // ERROR to GET_MEASUREMENTS resets the responder's L1/L2.
                None => in_sync &= is_error && request.get(1) != Some(&0xe0),
                Some(r) => {
                    let got = host.decode(answer, &FuzzVerifier);
                    if in_sync && !is_error {
                        assert!(
                            got.is_ok(),
                            "requester refused {answer:02x?} to {r:?}: {got:?}"
                        );
                        assert_eq!(host.state(), dev.state(), "states differ");
                    }
                    if r == Request::GetVersion && got.is_ok() {
                        in_sync = true;
                    }
                }
            }
        }
    }
}
