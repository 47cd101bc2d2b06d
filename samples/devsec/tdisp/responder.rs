// SPDX-License-Identifier: GPL-2.0

//! Device side of TDISP: request decoding, response and report encoding, and the state
//! machine of one device interface ([`Responder`]), with the fault injection the devsec bus
//! offers in debugfs.

use super::codec::{
    encode_message,
    lock_flags,
    nonce_eq,
    spdm_version_of,
    unwrap_spdm,
    Capabilities,
    CodecError,
    ErrorCode,
    InterfaceId,
    LockParams,
    MessageType,
    Nonce,
    Reader,
    Request,
    Response,
    State,
    TdispHeader,
    Writer,
    NONCE_LEN,
    SPDM_ERROR,
    SPDM_VENDOR_DEFINED_REQUEST,
    SPDM_VENDOR_DEFINED_RESPONSE,
    SPDM_VERSION,
    TDISP_OVERHEAD,
    TDISP_VERSION, //
};
use super::report::{
    interface_info,
    Bar,
    InterfaceReport,
    MmioRange,
    ReportError,
    MAX_DEVICE_SPECIFIC,
    MAX_RANGES,
    MAX_REPORT_LEN,
    REPORT_FIXED_LEN,
    REPORT_RANGE_LEN,
    REPORT_RESPONSE_OVERHEAD,
    TDISP_PAGE_SIZE, //
};

/// Length of the largest fixed-size response (LOCK_INTERFACE_RESPONSE). [`Responder::handle`]
/// needs a response buffer at least this long; report portions are clamped to the rest.
pub(crate) const MIN_RESPONSE_LEN: usize = TDISP_OVERHEAD + NONCE_LEN;

/// LOCK_INTERFACE flags the emulated device implements and advertises. BIND_P2P and
/// ALL_REQUEST_REDIRECT are not implemented, so a LOCK_INTERFACE asking for them is refused
/// with INVALID_REQUEST.
pub(crate) const LOCK_FLAGS_SUPPORTED: u16 =
    lock_flags::NO_FW_UPDATE | lock_flags::SYSTEM_CACHE_LINE_SIZE | lock_flags::LOCK_MSIX;

/// Responder configuration errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConfigError {
    /// More BARs than [`MAX_RANGES`].
    TooManyBars,
    /// More report segments than [`MAX_RANGES`].
    TooManySegments,
    /// Device-specific blob longer than [`MAX_DEVICE_SPECIFIC`].
    #[cfg(tdisp_kunit)]
    DeviceSpecificTooLong,
}

impl Request {
    /// Decodes the body of a request with message type `code`. The body must have exactly
    /// the length of its message type.
    pub(crate) fn decode(code: u8, body: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(body);
        let req = match MessageType::from_u8(code) {
            Some(MessageType::GetVersion) => Self::GetVersion,
            Some(MessageType::GetCapabilities) => Self::GetCapabilities { tsm_caps: r.u32()? },
            Some(MessageType::LockInterface) => {
                let flags = r.u16()?;
                let default_stream_id = r.u8()?;
                let _reserved = r.u8()?;
                Self::LockInterface(LockParams {
                    flags,
                    default_stream_id,
                    mmio_reporting_offset: r.u64()?,
                    bind_p2p_address_mask: r.u64()?,
                })
            }
            Some(MessageType::GetDeviceInterfaceReport) => Self::GetDeviceInterfaceReport {
                offset: r.u16()?,
                length: r.u16()?,
            },
            Some(MessageType::GetDeviceInterfaceState) => Self::GetDeviceInterfaceState,
            Some(MessageType::StartInterface) => Self::StartInterface { nonce: r.array()? },
            Some(MessageType::StopInterface) => Self::StopInterface,
            _ => return Err(CodecError::UnknownMessage(code)),
        };
        r.finish()?;
        Ok(req)
    }
}

impl Response<'_> {
    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self {
            Self::Version { versions } => {
                w.u8(u8::try_from(versions.len()).map_err(|_| CodecError::TooLong)?)?;
                w.put(versions)
            }
            Self::Capabilities(caps) => caps.encode(w),
            Self::LockInterface { nonce } => w.put(nonce),
            Self::DeviceInterfaceReport { portion, remainder } => {
                w.u16(u16::try_from(portion.len()).map_err(|_| CodecError::TooLong)?)?;
                w.u16(*remainder)?;
                w.put(portion)
            }
            Self::DeviceInterfaceState(state) => w.u8(*state as u8),
            Self::StartInterface | Self::StopInterface => Ok(()),
            Self::Error { code, data, ext } => {
                w.u32(*code)?;
                w.u32(*data)?;
                w.put(ext)
            }
        }
    }
}

impl Capabilities {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.u32(self.dsm_caps)?;
        w.put(&self.req_msgs_supported)?;
        w.u16(self.lock_flags_supported)?;
        w.put(&[0; 3])?;
        w.u8(self.dev_addr_width)?;
        w.u8(self.num_req_this)?;
        w.u8(self.num_req_all)
    }
}

impl InterfaceReport {
    /// Returns the device-specific blob.
    pub(crate) fn device_specific(&self) -> &[u8] {
        self.device_specific
            .get(..self.device_specific_len)
            .unwrap_or(&[])
    }

    /// Removes the last MMIO range, if any.
    pub(crate) fn pop_range(&mut self) -> Option<MmioRange> {
        let last = self.range_count.checked_sub(1)?;
        let range = self.ranges.get(last).copied();
        self.range_count = last;
        range
    }

    /// Encodes the report into `buf`; returns its length.
    pub(crate) fn encode(&self, buf: &mut [u8]) -> Result<usize, ReportError> {
        self.encode_inner(buf)
            .map_err(|_| ReportError::BufferTooSmall)
    }

    fn encode_inner(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        let mut w = Writer::new(buf);
        let count = u32::try_from(self.ranges().len()).map_err(|_| CodecError::TooLong)?;
        let ds_len =
            u32::try_from(self.device_specific().len()).map_err(|_| CodecError::TooLong)?;
        w.u16(self.interface_info)?;
        w.u16(0)?;
        w.u16(self.msi_x_message_control)?;
        w.u16(self.lnr_control)?;
        w.u32(self.tph_control)?;
        w.u32(count)?;
        for range in self.ranges() {
            w.u64(range.first_page)?;
            w.u32(range.number_of_pages)?;
            w.u16(range.attributes)?;
            w.u16(range.range_id)?;
        }
        w.u32(ds_len)?;
        w.put(self.device_specific())?;
        Ok(w.len())
    }
}

/// Decodes a complete SPDM VENDOR_DEFINED_REQUEST; returns the interface ID and the request.
pub(crate) fn decode_request(msg: &[u8]) -> Result<(InterfaceId, Request), CodecError> {
    let tdisp = unwrap_spdm(msg, SPDM_VENDOR_DEFINED_REQUEST)?;
    let (hdr, body) = TdispHeader::decode(tdisp)?;
    if hdr.version != TDISP_VERSION {
        return Err(CodecError::VersionMismatch(hdr.version));
    }
    Ok((hdr.interface_id, Request::decode(hdr.message_type, body)?))
}

/// Encodes `rsp` for interface `id` as a complete SPDM `version` VENDOR_DEFINED_RESPONSE
/// into `buf`; returns the message length.
pub(crate) fn encode_response(
    version: u8,
    id: InterfaceId,
    rsp: &Response<'_>,
    buf: &mut [u8],
) -> Result<usize, CodecError> {
    encode_message(
        version,
        SPDM_VENDOR_DEFINED_RESPONSE,
        rsp.message_type(),
        id,
        buf,
        |w| rsp.encode_body(w),
    )
}

/// Encodes an SPDM `version` ERROR message with error `code` and `data`, without extended
/// error data, into `buf`; returns the message length.
pub(crate) fn encode_spdm_error(
    version: u8,
    code: u8,
    data: u8,
    buf: &mut [u8],
) -> Result<usize, CodecError> {
    let mut w = Writer::new(buf);
    w.put(&[version, SPDM_ERROR, code, data])?;
    Ok(w.len())
}

/// What the responder answers a request with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer<'a> {
    /// A TDISP response (or TDISP_ERROR) in a VENDOR_DEFINED_RESPONSE.
    Tdisp {
        /// SPDM version of the request, echoed.
        version: u8,
        /// Interface ID to answer with.
        id: InterfaceId,
        /// The response, or the TDISP_ERROR code and data.
        outcome: Outcome<'a>,
    },
    /// An SPDM ERROR: the request is not a well-formed VENDOR_DEFINED_REQUEST for TDISP.
    Spdm {
        /// SPDM version to answer in.
        version: u8,
        /// SPDM error code.
        code: u8,
        /// SPDM error data.
        data: u8,
    },
}

/// A part of the interface report of the emulated device: pages of one BAR and their
/// attributes. With no segments configured, the report has one range per BAR covering it
/// whole, with the BAR index as range ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Index of the BAR ([`Bar::index`]).
    pub(crate) bar: u16,
    /// Offset of the first page in the BAR, in pages.
    pub(crate) first_page: u64,
    /// Number of pages; 0 means up to the end of the BAR.
    pub(crate) pages: u32,
    /// [`range_attr`](super::report::range_attr) bits.
    pub(crate) attributes: u16,
    /// Range ID reported.
    pub(crate) range_id: u16,
}

/// Report corruption the emulated device can be told to apply (fault injection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ReportCorruption {
    /// Serve the correct report.
    #[default]
    None,
    /// The first range starts one page after its BAR.
    RangeMismatch,
    /// The last range is missing (or, without BARs, a bogus range is added).
    RangeCount,
    /// The report ends in the middle of its last range.
    Truncated,
    /// The device-specific data differ from the report of the lock (a report that is still
    /// well formed and matches the BARs, as a device changing behind the TSM's back would
    /// serve).
    Changed,
    /// No report at all: every GET_DEVICE_INTERFACE_REPORT is answered INVALID_REQUEST.
    Missing,
}

impl ReportCorruption {
    /// Returns a short name of the corruption.
    #[cfg(tdisp_kunit)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::RangeMismatch => "range",
            Self::RangeCount => "count",
            Self::Truncated => "truncated",
            Self::Changed => "changed",
            Self::Missing => "missing",
        }
    }

    /// Parses a name returned by [`ReportCorruption::name`].
    #[cfg(tdisp_kunit)]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [
            Self::None,
            Self::RangeMismatch,
            Self::RangeCount,
            Self::Truncated,
            Self::Changed,
            Self::Missing,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

/// Range added by report corruption when the device has no BARs.
const BOGUS_RANGE: MmioRange = MmioRange {
    first_page: 0,
    number_of_pages: 1,
    attributes: 0,
    range_id: 0,
};

/// TDISP versions the responder supports.
const SUPPORTED_VERSIONS: [u8; 1] = [TDISP_VERSION];

/// Result of processing a request: a response, or an error code with its error data.
type Outcome<'a> = Result<Response<'a>, (ErrorCode, u32)>;

/// Extended error data of the VENDOR_SPECIFIC_ERROR the responder sends (only through fault
/// injection): registry ID 3 (PCI-SIG), a 2-byte vendor ID 0x0001, no vendor error data.
#[cfg(tdisp_kunit)]
const VENDOR_ERROR_EXT: [u8; 4] = [3, 2, 0x01, 0x00];

/// Error data of TDISP_ERROR INVALID_INTERFACE_STATE: none, as in the references. A TSM
/// that needs the state asks with GET_DEVICE_INTERFACE_STATE.
const NO_ERROR_DATA: u32 = 0;

/// Copies `src` to the front of `dst`; returns its length, or `None` (and `dst` unchanged)
/// if it does not fit.
fn fill_front<T: Copy>(dst: &mut [T], src: &[T]) -> Option<usize> {
    dst.get_mut(..src.len())?.copy_from_slice(src);
    Some(src.len())
}

/// Device-side TDISP responder for one device interface.
///
/// Rules (TDISP 1.0 as used here):
/// - LOCK_INTERFACE only from CONFIG_UNLOCKED, which moves to CONFIG_LOCKED with a fresh nonce
///   and freezes the report; other states answer INVALID_INTERFACE_STATE.
/// - START_INTERFACE only from CONFIG_LOCKED with the matching nonce, which moves to RUN; a
///   wrong nonce answers INVALID_NONCE and keeps the state.
/// - STOP_INTERFACE from any state moves to CONFIG_UNLOCKED. In CONFIG_UNLOCKED it succeeds
///   and changes nothing (idempotent), so a TSM can always return a device to a known state.
///   TDISP leaves this case to the device; DMTF spdm-emu answers INVALID_INTERFACE_STATE
///   there instead (the devsec TSM's unlock then logs that STOP failed and releases the
///   interface anyway).
/// - GET_DEVICE_INTERFACE_REPORT only in CONFIG_LOCKED and RUN.
/// - GET_DEVICE_INTERFACE_STATE, GET_TDISP_VERSION and GET_TDISP_CAPABILITIES in any state.
/// - A security-relevant configuration change in CONFIG_LOCKED or RUN moves to ERROR
///   ([`Responder::config_changed`]); only STOP leaves ERROR.
///
/// Requests are checked in this order:
/// 1. SPDM framing. A message that is not an SPDM 1.x VENDOR_DEFINED_REQUEST with the
///    PCI-SIG standard and vendor IDs and the TDISP protocol ID is answered with an SPDM
///    ERROR, as an SPDM responder does ([`CodecError::spdm_error`]).
/// 2. TDISP header (INVALID_REQUEST), version (VERSION_MISMATCH), message type
///    (UNSUPPORTED_REQUEST, error data the request's message type), interface ID, all 12
///    bytes (INVALID_INTERFACE), body length (INVALID_REQUEST), an injected error, then the
///    state machine (INVALID_INTERFACE_STATE, error data 0).
///
/// This is the order of DMTF spdm-emu except that spdm-emu checks the body length before
/// the interface ID; TDISP does not fix an order. Responses echo the SPDM version of the
/// request and its interface ID; errors found before the TDISP header is known name our own
/// interface.
#[derive(Clone, Debug)]
pub(crate) struct Responder {
    function_id: u32,
    state: State,
    nonce: Nonce,
    bars: [Bar; MAX_RANGES],
    bar_count: usize,
    device_specific: [u8; MAX_DEVICE_SPECIFIC],
    device_specific_len: usize,
    lock: LockParams,
    report: InterfaceReport,
    segments: [Segment; MAX_RANGES],
    segment_count: usize,
    corruption: ReportCorruption,
    fail_next_start: bool,
    pending_error: Option<ErrorCode>,
}

impl Responder {
    /// Creates the responder of interface `function_id`, in CONFIG_UNLOCKED without BARs.
    pub(crate) fn new(function_id: u32) -> Self {
        Self {
            function_id,
            state: State::ConfigUnlocked,
            nonce: [0; NONCE_LEN],
            bars: [Bar::default(); MAX_RANGES],
            bar_count: 0,
            device_specific: [0; MAX_DEVICE_SPECIFIC],
            device_specific_len: 0,
            lock: LockParams::default(),
            report: InterfaceReport::new(),
            segments: [Segment::default(); MAX_RANGES],
            segment_count: 0,
            corruption: ReportCorruption::None,
            fail_next_start: false,
            pending_error: None,
        }
    }

    /// Returns the interface ID.
    pub(crate) fn function_id(&self) -> u32 {
        self.function_id
    }

    /// Returns the interface state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Returns the BARs.
    pub(crate) fn bars(&self) -> &[Bar] {
        self.bars.get(..self.bar_count).unwrap_or(&[])
    }

    /// Returns the parameters of the last LOCK_INTERFACE that succeeded.
    #[cfg(tdisp_kunit)]
    pub(crate) fn lock_params(&self) -> LockParams {
        self.lock
    }

    /// Sets the device's BARs. Changing them while CONFIG_LOCKED or RUN is a configuration
    /// change and moves the interface to ERROR.
    pub(crate) fn set_bars(&mut self, bars: &[Bar]) -> Result<(), ConfigError> {
        self.bar_count = fill_front(&mut self.bars, bars).ok_or(ConfigError::TooManyBars)?;
        self.config_changed();
        Ok(())
    }

    /// Sets the report layout used by the next LOCK_INTERFACE; an empty `segments` restores
    /// the default of one range per BAR. Segments are checked against the BARs at lock time
    /// (a segment outside its BAR fails the lock with INVALID_DEVICE_CONFIGURATION).
    pub(crate) fn set_segments(&mut self, segments: &[Segment]) -> Result<(), ConfigError> {
        self.segment_count =
            fill_front(&mut self.segments, segments).ok_or(ConfigError::TooManySegments)?;
        Ok(())
    }

    /// Returns the configured report layout (empty: one range per BAR).
    pub(crate) fn segments(&self) -> &[Segment] {
        self.segments.get(..self.segment_count).unwrap_or(&[])
    }

    /// Sets the device-specific blob reported by the next LOCK_INTERFACE.
    #[cfg(tdisp_kunit)]
    pub(crate) fn set_device_specific(&mut self, data: &[u8]) -> Result<(), ConfigError> {
        self.device_specific_len = fill_front(&mut self.device_specific, data)
            .ok_or(ConfigError::DeviceSpecificTooLong)?;
        Ok(())
    }

    /// Reports a security-relevant configuration change (a BAR rewritten, bus master or
    /// memory decoding disabled): CONFIG_LOCKED and RUN move to ERROR, other states stay.
    pub(crate) fn config_changed(&mut self) {
        if matches!(self.state, State::ConfigLocked | State::Run) {
            self.state = State::Error;
        }
    }

    /// Moves the interface to ERROR from any state (fault injection).
    pub(crate) fn force_error(&mut self) {
        self.state = State::Error;
    }

    /// Sets the report corruption applied from the next report request on (fault injection).
    pub(crate) fn set_report_corruption(&mut self, corruption: ReportCorruption) {
        self.corruption = corruption;
    }

    /// Returns the report corruption in effect.
    pub(crate) fn report_corruption(&self) -> ReportCorruption {
        self.corruption
    }

    /// Makes the next START_INTERFACE that reaches the nonce check fail with INVALID_NONCE,
    /// whatever nonce it carries (fault injection, one shot).
    #[cfg(tdisp_kunit)]
    pub(crate) fn fail_next_start(&mut self) {
        self.fail_next_start = true;
    }

    /// Answers the next well-formed request with TDISP_ERROR `code` without acting on it
    /// (fault injection, one shot).
    #[cfg(tdisp_kunit)]
    pub(crate) fn fail_next_request(&mut self, code: ErrorCode) {
        self.pending_error = Some(code);
    }

    /// Handles one SPDM VENDOR_DEFINED_REQUEST and writes the SPDM VENDOR_DEFINED_RESPONSE
    /// to `response`; returns the response length.
    ///
    /// Every request gets a response, a TDISP_ERROR or an SPDM ERROR. The only exception is
    /// a `response` buffer shorter than [`MIN_RESPONSE_LEN`]: the request is then ignored (no
    /// state change) and 0 is returned. Report portions are clamped to what fits in
    /// `response`, so a buffer of [`MAX_MESSAGE_LEN`] bytes never truncates anything.
    ///
    /// `rng` fills a buffer with random bytes; it is used for the start nonce.
    pub(crate) fn handle(
        &mut self,
        request: &[u8],
        response: &mut [u8],
        rng: &mut impl FnMut(&mut [u8]),
    ) -> usize {
        if response.len() < MIN_RESPONSE_LEN {
            return 0;
        }
        let mut report = [0u8; MAX_REPORT_LEN];
        let room = response.len().saturating_sub(REPORT_RESPONSE_OVERHEAD);
        // Cannot fail: every response but a report fits in MIN_RESPONSE_LEN, and report
        // portions are clamped to `room`.
        match self.process(request, rng, &mut report, room) {
            Answer::Tdisp {
                version,
                id,
                outcome,
            } => {
                let rsp = outcome.unwrap_or_else(|(code, data)| Response::Error {
                    code: code as u32,
                    data,
                    ext: match code {
                        #[cfg(tdisp_kunit)]
                        ErrorCode::VendorSpecificError => &VENDOR_ERROR_EXT,
                        _ => &[],
                    },
                });
                encode_response(version, id, &rsp, response).unwrap_or(0)
            }
            Answer::Spdm {
                version,
                code,
                data,
            } => encode_spdm_error(version, code, data, response).unwrap_or(0),
        }
    }

    /// Decodes and executes `request`; returns the answer.
    fn process<'s>(
        &mut self,
        request: &[u8],
        rng: &mut impl FnMut(&mut [u8]),
        report: &'s mut [u8; MAX_REPORT_LEN],
        room: usize,
    ) -> Answer<'s> {
        let version = spdm_version_of(request).unwrap_or(SPDM_VERSION);
        let tdisp = match unwrap_spdm(request, SPDM_VENDOR_DEFINED_REQUEST) {
            Ok(tdisp) => tdisp,
            Err(err) => {
                let (code, data) = err.spdm_error();
                return Answer::Spdm {
                    version,
                    code,
                    data,
                };
            }
        };
        let answer = |id, outcome| Answer::Tdisp {
            version,
            id,
            outcome,
        };
        let fail = |id, code| answer(id, Err((code, NO_ERROR_DATA)));
        let ours = InterfaceId::new(self.function_id);
        let Ok((hdr, body)) = TdispHeader::decode(tdisp) else {
            return fail(ours, ErrorCode::InvalidRequest);
        };
        let id = hdr.interface_id;
        if hdr.version != TDISP_VERSION {
            return fail(id, ErrorCode::VersionMismatch);
        }
        if !MessageType::from_u8(hdr.message_type).is_some_and(MessageType::is_request) {
            let data = u32::from(hdr.message_type);
            return answer(id, Err((ErrorCode::UnsupportedRequest, data)));
        }
        if id != ours {
            return fail(id, ErrorCode::InvalidInterface);
        }
        let Ok(req) = Request::decode(hdr.message_type, body) else {
            return fail(id, ErrorCode::InvalidRequest);
        };
        if let Some(code) = self.pending_error.take() {
            return fail(id, code);
        }
        let outcome = match req {
            Request::GetVersion => Ok(Response::Version {
                versions: &SUPPORTED_VERSIONS,
            }),
            Request::GetCapabilities { .. } => Ok(Response::Capabilities(self.capabilities())),
            Request::LockInterface(params) => self.lock_interface(params, rng),
            Request::GetDeviceInterfaceReport { offset, length } => {
                self.report_portion(offset, length, report, room)
            }
            Request::GetDeviceInterfaceState => Ok(Response::DeviceInterfaceState(self.state)),
            Request::StartInterface { nonce } => self.start_interface(&nonce),
            Request::StopInterface => {
                self.state = State::ConfigUnlocked;
                Ok(Response::StopInterface)
            }
        };
        answer(id, outcome)
    }

    fn wrong_state<'a>(&self) -> Outcome<'a> {
        Err((ErrorCode::InvalidInterfaceState, NO_ERROR_DATA))
    }

    fn capabilities(&self) -> Capabilities {
        let mut req_msgs_supported = [0u8; 16];
        // Requests 0x81..=0x87 are bits 1..=7 of the first byte.
        if let Some(byte) = req_msgs_supported.first_mut() {
            *byte = 0xfe;
        }
        Capabilities {
            dsm_caps: 0,
            req_msgs_supported,
            lock_flags_supported: LOCK_FLAGS_SUPPORTED,
            dev_addr_width: 52,
            num_req_this: 1,
            num_req_all: 1,
        }
    }

    fn lock_interface<'a>(
        &mut self,
        params: LockParams,
        rng: &mut impl FnMut(&mut [u8]),
    ) -> Outcome<'a> {
        if self.state != State::ConfigUnlocked {
            return self.wrong_state();
        }
        if params.flags & !LOCK_FLAGS_SUPPORTED != 0
            || params.mmio_reporting_offset % TDISP_PAGE_SIZE != 0
        {
            return Err((ErrorCode::InvalidRequest, 0));
        }
        let report = self.build_report(&params)?;
        let mut nonce = [0u8; NONCE_LEN];
        rng(&mut nonce);
        // A nonce equal to the previous one is not fresh; all zeroes means no entropy.
        if nonce_eq(&nonce, &[0; NONCE_LEN]) || nonce_eq(&nonce, &self.nonce) {
            return Err((ErrorCode::InsufficientEntropy, 0));
        }
        self.nonce = nonce;
        self.report = report;
        self.lock = params;
        self.state = State::ConfigLocked;
        Ok(Response::LockInterface { nonce })
    }

    /// Builds the report frozen by LOCK_INTERFACE from the BARs and the segments (one range
    /// per BAR without segments).
    fn build_report(&self, params: &LockParams) -> Result<InterfaceReport, (ErrorCode, u32)> {
        let bad_config = (ErrorCode::InvalidDeviceConfiguration, 0);
        let mut report = InterfaceReport::new();
        report.interface_info = interface_info::DMA_WITHOUT_PASID;
        if params.flags & lock_flags::NO_FW_UPDATE != 0 {
            report.interface_info |= interface_info::NO_UPDATE_AFTER_LOCK;
        }
        for bar in self.bars() {
            if bar.start == 0
                || bar.len == 0
                || bar.start % TDISP_PAGE_SIZE != 0
                || bar.len % TDISP_PAGE_SIZE != 0
                || bar.start.checked_add(bar.len).is_none()
            {
                return Err(bad_config);
            }
        }
        let mut whole = [Segment::default(); MAX_RANGES];
        let segments = if self.segments().is_empty() {
            for (dst, bar) in whole.iter_mut().zip(self.bars()) {
                *dst = Segment {
                    bar: bar.index,
                    range_id: bar.index,
                    ..Segment::default()
                };
            }
            whole.get(..self.bars().len()).unwrap_or(&[])
        } else {
            self.segments()
        };
        for segment in segments {
            let bar = self
                .bars()
                .iter()
                .find(|bar| bar.index == segment.bar)
                .ok_or(bad_config)?;
            let bar_pages = bar.len / TDISP_PAGE_SIZE;
            let pages = match segment.pages {
                0 => bar_pages
                    .checked_sub(segment.first_page)
                    .ok_or(bad_config)?,
                n => u64::from(n),
            };
            let inside = matches!(
                segment.first_page.checked_add(pages),
                Some(end) if end <= bar_pages
            );
            if pages == 0 || !inside {
                return Err(bad_config);
            }
            let number_of_pages = u32::try_from(pages).map_err(|_| bad_config)?;
            let reported = bar
                .start
                .checked_add(segment.first_page * TDISP_PAGE_SIZE)
                .and_then(|start| start.checked_add(params.mmio_reporting_offset))
                .ok_or((ErrorCode::InvalidRequest, 0))?;
            report
                .push_range(MmioRange {
                    first_page: reported / TDISP_PAGE_SIZE,
                    number_of_pages,
                    attributes: segment.attributes,
                    range_id: segment.range_id,
                })
                .map_err(|_| bad_config)?;
        }
        let device_specific = self
            .device_specific
            .get(..self.device_specific_len)
            .unwrap_or(&[]);
        report
            .set_device_specific(device_specific)
            .map_err(|_| bad_config)?;
        Ok(report)
    }

    /// Encodes the report as served, with the configured corruption; returns its length.
    fn served_report(&self, buf: &mut [u8; MAX_REPORT_LEN]) -> usize {
        let mut report = self.report;
        match self.corruption {
            ReportCorruption::None | ReportCorruption::Truncated => {}
            ReportCorruption::Missing => return 0,
            ReportCorruption::RangeMismatch => {
                if report.range_count == 0 {
                    let _ = report.push_range(BOGUS_RANGE);
                } else if let Some(range) = report.ranges.first_mut() {
                    range.first_page = range.first_page.wrapping_add(1);
                }
            }
            ReportCorruption::RangeCount => {
                if report.pop_range().is_none() {
                    let _ = report.push_range(BOGUS_RANGE);
                }
            }
            ReportCorruption::Changed => {
                // Flip the first device-specific byte, adding one if there is none.
                let len = report.device_specific_len.max(1);
                let mut data = report.device_specific;
                if let Some(byte) = data.first_mut() {
                    *byte ^= 0xff;
                }
                let _ = report.set_device_specific(data.get(..len).unwrap_or(&[]));
            }
        }
        let len = report.encode(buf).unwrap_or(0);
        if self.corruption == ReportCorruption::Truncated {
            // Cut the report in the middle of its last range (or of its fixed part).
            let cut = match report.ranges().len() {
                0 => REPORT_FIXED_LEN / 2,
                n => n
                    .saturating_mul(REPORT_RANGE_LEN)
                    .saturating_add(REPORT_FIXED_LEN - REPORT_RANGE_LEN / 2),
            };
            return len.min(cut);
        }
        len
    }

    fn report_portion<'s>(
        &self,
        offset: u16,
        length: u16,
        buf: &'s mut [u8; MAX_REPORT_LEN],
        room: usize,
    ) -> Outcome<'s> {
        if !matches!(self.state, State::ConfigLocked | State::Run) {
            return self.wrong_state();
        }
        let len = self.served_report(buf);
        let offset = usize::from(offset);
        let Some(available) = len.checked_sub(offset).filter(|&n| n > 0) else {
            return Err((ErrorCode::InvalidRequest, 0));
        };
        if length == 0 {
            return Err((ErrorCode::InvalidRequest, 0));
        }
        let portion_len = available.min(usize::from(length)).min(room);
        let end = offset.saturating_add(portion_len);
        let remainder = available
            .checked_sub(portion_len)
            .and_then(|rest| u16::try_from(rest).ok());
        let (Some(portion), Some(remainder)) = (buf.get(offset..end), remainder) else {
            return Err((ErrorCode::Unspecified, 0));
        };
        Ok(Response::DeviceInterfaceReport { portion, remainder })
    }

    fn start_interface<'a>(&mut self, nonce: &Nonce) -> Outcome<'a> {
        if self.state != State::ConfigLocked {
            return self.wrong_state();
        }
        if self.fail_next_start {
            self.fail_next_start = false;
            return Err((ErrorCode::InvalidNonce, 0));
        }
        if !nonce_eq(nonce, &self.nonce) {
            return Err((ErrorCode::InvalidNonce, 0));
        }
        self.state = State::Run;
        Ok(Response::StartInterface)
    }
}
