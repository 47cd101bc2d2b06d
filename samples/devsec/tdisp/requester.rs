// SPDX-License-Identifier: GPL-2.0

//! TSM side of TDISP: request encoding, response and report decoding, the check of an
//! interface report against the device's BARs, and [`Requester`], which validates every
//! response before the TSM acts on it.

use super::codec::{
    encode_message,
    nonce_eq,
    unwrap_spdm,
    Capabilities,
    CodecError,
    ErrorCode,
    MessageType,
    Nonce,
    Reader,
    Request,
    Response,
    State,
    TdispHeader,
    Writer,
    NONCE_LEN,
    SPDM_VENDOR_DEFINED_REQUEST,
    SPDM_VENDOR_DEFINED_RESPONSE,
    TDISP_OVERHEAD,
    TDISP_VERSION, //
};
use super::report::{
    Bar,
    InterfaceReport,
    MmioRange,
    ReportError,
    MAX_MESSAGE_LEN,
    MAX_RANGES,
    MAX_REPORT_LEN,
    REPORT_RANGE_LEN,
    TDISP_PAGE_SIZE, //
};

/// Reasons why an interface report does not describe the device's BARs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportCheckError {
    /// More BARs than [`MAX_RANGES`] were passed in.
    TooManyBars,
    /// The report does not have exactly one range per BAR.
    RangeCountMismatch {
        /// Ranges in the report.
        reported: usize,
        /// BARs of the device.
        expected: usize,
    },
    /// A range uses reserved attribute bits.
    BadAttributes {
        /// The offending range.
        range_id: u16,
        /// Its attributes.
        attributes: u16,
    },
    /// A range names a BAR the device does not have.
    UnknownBar {
        /// The offending range.
        range_id: u16,
    },
    /// Two ranges name the same BAR.
    DuplicateRange {
        /// The offending range.
        range_id: u16,
    },
    /// A range does not start where its BAR starts.
    RangeOutsideBar {
        /// The offending range.
        range_id: u16,
    },
    /// A range is not exactly as long as its BAR.
    SizeMismatch {
        /// The offending range.
        range_id: u16,
    },
}

/// Requester-side errors: everything that makes a response unacceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequesterError {
    /// The response could not be decoded, or the request not encoded.
    Codec(CodecError),
    /// The response names another interface.
    InterfaceMismatch {
        /// Our interface.
        expected: u32,
        /// The interface in the response.
        got: u32,
    },
    /// The response has another type than the one expected.
    UnexpectedResponse {
        /// The expected message type.
        expected: u8,
        /// The message type received.
        got: u8,
    },
    /// The device answered with TDISP_ERROR.
    Tdisp {
        /// The error code (see [`ErrorCode::from_u32`]).
        code: u32,
        /// The error data.
        data: u32,
    },
    /// The device does not support TDISP 1.0.
    VersionUnsupported,
    /// The device handed out an all-zero nonce.
    ZeroNonce,
    /// The report is larger than [`MAX_REPORT_LEN`].
    ReportTooLarge,
    /// A report portion contradicts the previous ones or the request.
    ReportInconsistent,
    /// A report portion was empty although data remained.
    ReportNoProgress,
    /// The assembled report is malformed.
    Report(ReportError),
}

impl From<CodecError> for RequesterError {
    fn from(err: CodecError) -> Self {
        Self::Codec(err)
    }
}

impl From<ReportError> for RequesterError {
    fn from(err: ReportError) -> Self {
        Self::Report(err)
    }
}

impl Request {
    /// Returns the message type of the request.
    pub(crate) fn message_type(&self) -> MessageType {
        match self {
            Self::GetVersion => MessageType::GetVersion,
            Self::GetCapabilities { .. } => MessageType::GetCapabilities,
            Self::LockInterface(_) => MessageType::LockInterface,
            Self::GetDeviceInterfaceReport { .. } => MessageType::GetDeviceInterfaceReport,
            Self::GetDeviceInterfaceState => MessageType::GetDeviceInterfaceState,
            Self::StartInterface { .. } => MessageType::StartInterface,
            Self::StopInterface => MessageType::StopInterface,
        }
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self {
            Self::GetVersion | Self::GetDeviceInterfaceState | Self::StopInterface => Ok(()),
            Self::GetCapabilities { tsm_caps } => w.u32(*tsm_caps),
            Self::LockInterface(p) => {
                w.u16(p.flags)?;
                w.u8(p.default_stream_id)?;
                w.u8(0)?;
                w.u64(p.mmio_reporting_offset)?;
                w.u64(p.bind_p2p_address_mask)
            }
            Self::GetDeviceInterfaceReport { offset, length } => {
                w.u16(*offset)?;
                w.u16(*length)
            }
            Self::StartInterface { nonce } => w.put(nonce),
        }
    }
}

impl<'a> Response<'a> {
    /// Decodes the body of a response with message type `code`. The body must have exactly
    /// the length its fields announce.
    pub(crate) fn decode(code: u8, body: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(body);
        let rsp = match MessageType::from_u8(code) {
            Some(MessageType::Version) => {
                let count = usize::from(r.u8()?);
                Self::Version {
                    versions: r.take(count)?,
                }
            }
            Some(MessageType::Capabilities) => Self::Capabilities(Capabilities::decode(&mut r)?),
            Some(MessageType::LockInterfaceResponse) => Self::LockInterface { nonce: r.array()? },
            Some(MessageType::DeviceInterfaceReport) => {
                let portion_len = usize::from(r.u16()?);
                let remainder = r.u16()?;
                Self::DeviceInterfaceReport {
                    portion: r.take(portion_len)?,
                    remainder,
                }
            }
            Some(MessageType::DeviceInterfaceState) => {
                Self::DeviceInterfaceState(State::from_u8(r.u8()?).ok_or(CodecError::InvalidField)?)
            }
            Some(MessageType::StartInterfaceResponse) => Self::StartInterface,
            Some(MessageType::StopInterfaceResponse) => Self::StopInterface,
            Some(MessageType::Error) => Self::Error {
                code: r.u32()?,
                data: r.u32()?,
            },
            _ => return Err(CodecError::UnknownMessage(code)),
        };
        r.finish()?;
        Ok(rsp)
    }
}

impl MessageType {
    /// Returns the specification name of the message.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetVersion => "GET_TDISP_VERSION",
            Self::GetCapabilities => "GET_TDISP_CAPABILITIES",
            Self::LockInterface => "LOCK_INTERFACE_REQUEST",
            Self::GetDeviceInterfaceReport => "GET_DEVICE_INTERFACE_REPORT",
            Self::GetDeviceInterfaceState => "GET_DEVICE_INTERFACE_STATE",
            Self::StartInterface => "START_INTERFACE_REQUEST",
            Self::StopInterface => "STOP_INTERFACE_REQUEST",
            Self::Version => "TDISP_VERSION",
            Self::Capabilities => "TDISP_CAPABILITIES",
            Self::LockInterfaceResponse => "LOCK_INTERFACE_RESPONSE",
            Self::DeviceInterfaceReport => "DEVICE_INTERFACE_REPORT",
            Self::DeviceInterfaceState => "DEVICE_INTERFACE_STATE",
            Self::StartInterfaceResponse => "START_INTERFACE_RESPONSE",
            Self::StopInterfaceResponse => "STOP_INTERFACE_RESPONSE",
            Self::Error => "TDISP_ERROR",
        }
    }
}

impl ErrorCode {
    /// Returns the error code with value `code`, if it is defined.
    pub(crate) fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            0x1 => Self::InvalidRequest,
            0x3 => Self::Busy,
            0x4 => Self::InvalidInterfaceState,
            0x5 => Self::Unspecified,
            0x7 => Self::UnsupportedRequest,
            0x41 => Self::VersionMismatch,
            0x101 => Self::InvalidInterface,
            0x102 => Self::InvalidNonce,
            0x103 => Self::InsufficientEntropy,
            0x104 => Self::InvalidDeviceConfiguration,
            _ => return None,
        })
    }

    /// Returns the specification name of the error.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::Busy => "BUSY",
            Self::InvalidInterfaceState => "INVALID_INTERFACE_STATE",
            Self::Unspecified => "UNSPECIFIED",
            Self::UnsupportedRequest => "UNSUPPORTED_REQUEST",
            Self::VersionMismatch => "VERSION_MISMATCH",
            Self::InvalidInterface => "INVALID_INTERFACE",
            Self::InvalidNonce => "INVALID_NONCE",
            Self::InsufficientEntropy => "INSUFFICIENT_ENTROPY",
            Self::InvalidDeviceConfiguration => "INVALID_DEVICE_CONFIGURATION",
        }
    }
}

impl State {
    /// Returns the state with value `value`, if it is defined.
    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::ConfigUnlocked,
            1 => Self::ConfigLocked,
            2 => Self::Run,
            3 => Self::Error,
            _ => return None,
        })
    }
}

impl Capabilities {
    /// Returns whether request `code` is marked as supported (always false for responses).
    pub(crate) fn supports(&self, code: MessageType) -> bool {
        if !code.is_request() {
            return false;
        }
        let bit = usize::from((code as u8) & 0x7f);
        match self.req_msgs_supported.get(bit / 8) {
            Some(byte) => byte & (1 << (bit % 8)) != 0,
            None => false,
        }
    }

    /// Decodes the body of a TDISP_CAPABILITIES response (what follows the TDISP header).
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let dsm_caps = r.u32()?;
        let req_msgs_supported = r.array()?;
        let lock_flags_supported = r.u16()?;
        let _reserved = r.take(3)?;
        Ok(Self {
            dsm_caps,
            req_msgs_supported,
            lock_flags_supported,
            dev_addr_width: r.u8()?,
            num_req_this: r.u8()?,
            num_req_all: r.u8()?,
        })
    }
}

impl InterfaceReport {
    /// Decodes and structurally validates a complete report.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, ReportError> {
        let truncated = |_| ReportError::Truncated;
        let mut r = Reader::new(bytes);
        let mut report = Self::new();
        report.interface_info = r.u16().map_err(truncated)?;
        let _reserved = r.u16().map_err(truncated)?;
        report.msi_x_message_control = r.u16().map_err(truncated)?;
        report.lnr_control = r.u16().map_err(truncated)?;
        report.tph_control = r.u32().map_err(truncated)?;
        let count = r.u32().map_err(truncated)?;

        let range_bytes = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(REPORT_RANGE_LEN))
            .ok_or(ReportError::RangesTruncated)?;
        if range_bytes > r.remaining() {
            return Err(ReportError::RangesTruncated);
        }
        if range_bytes > MAX_RANGES * REPORT_RANGE_LEN {
            return Err(ReportError::TooManyRanges);
        }
        let ranges = r.take(range_bytes).map_err(truncated)?;
        for chunk in ranges.chunks_exact(REPORT_RANGE_LEN) {
            let mut rr = Reader::new(chunk);
            report.push_range(MmioRange {
                first_page: rr.u64().map_err(truncated)?,
                number_of_pages: rr.u32().map_err(truncated)?,
                attributes: rr.u16().map_err(truncated)?,
                range_id: rr.u16().map_err(truncated)?,
            })?;
        }

        let ds_len = r.u32().map_err(truncated)?;
        if usize::try_from(ds_len).ok() != Some(r.remaining()) {
            return Err(ReportError::LengthMismatch);
        }
        report.set_device_specific(r.rest())?;
        Ok(report)
    }
}

/// Encodes `req` for interface `function_id` as a complete SPDM VENDOR_DEFINED_REQUEST into
/// `buf`; returns the message length.
pub(crate) fn encode_request(
    function_id: u32,
    req: &Request,
    buf: &mut [u8],
) -> Result<usize, CodecError> {
    encode_message(
        SPDM_VENDOR_DEFINED_REQUEST,
        req.message_type(),
        function_id,
        buf,
        |w| req.encode_body(w),
    )
}

/// Decodes a complete SPDM VENDOR_DEFINED_RESPONSE; returns the interface ID and the
/// response.
pub(crate) fn decode_response(msg: &[u8]) -> Result<(u32, Response<'_>), CodecError> {
    let tdisp = unwrap_spdm(msg, SPDM_VENDOR_DEFINED_RESPONSE)?;
    let (hdr, body) = TdispHeader::decode(tdisp)?;
    if hdr.version != TDISP_VERSION {
        return Err(CodecError::VersionMismatch(hdr.version));
    }
    Ok((hdr.function_id, Response::decode(hdr.message_type, body)?))
}

/// Interface report MMIO range attribute bits.
pub(crate) mod range_attr {
    /// The range holds the MSI-X table.
    pub(crate) const MSIX_TABLE: u16 = 0x1;
    /// The range holds the MSI-X PBA.
    pub(crate) const MSIX_PBA: u16 = 0x2;
    /// The range is not TEE memory.
    pub(crate) const NON_TEE: u16 = 0x4;
    /// The range may be updated after LOCK_INTERFACE.
    pub(crate) const UPDATABLE: u16 = 0x8;
    /// All defined attributes.
    pub(crate) const ALL: u16 = MSIX_TABLE | MSIX_PBA | NON_TEE | UPDATABLE;
}

/// Checks that `report` describes exactly the device's `bars`.
///
/// The report must have exactly one range per BAR, and for every range:
/// - no reserved attribute bits are set,
/// - `range_id` is the index of one of `bars`, and no other range names the same BAR,
/// - `first_page * 4096 - mmio_reporting_offset` equals the BAR's start,
/// - `number_of_pages * 4096` equals the BAR's length.
///
/// One range per BAR, distinct BARs and equal counts mean every BAR is covered.
pub(crate) fn check_report_against_bars(
    report: &InterfaceReport,
    bars: &[Bar],
    mmio_reporting_offset: u64,
) -> Result<(), ReportCheckError> {
    if bars.len() > MAX_RANGES {
        return Err(ReportCheckError::TooManyBars);
    }
    let ranges = report.ranges();
    if ranges.len() != bars.len() {
        return Err(ReportCheckError::RangeCountMismatch {
            reported: ranges.len(),
            expected: bars.len(),
        });
    }
    let mut covered = [false; MAX_RANGES];
    for range in ranges {
        let range_id = range.range_id;
        if range.attributes & !range_attr::ALL != 0 {
            return Err(ReportCheckError::BadAttributes {
                range_id,
                attributes: range.attributes,
            });
        }
        let (slot, bar) = bars
            .iter()
            .enumerate()
            .find(|(_, bar)| bar.index == range_id)
            .ok_or(ReportCheckError::UnknownBar { range_id })?;
        let seen = covered.get_mut(slot).ok_or(ReportCheckError::TooManyBars)?;
        if *seen {
            return Err(ReportCheckError::DuplicateRange { range_id });
        }
        *seen = true;
        let start = range
            .first_page
            .checked_mul(TDISP_PAGE_SIZE)
            .and_then(|addr| addr.checked_sub(mmio_reporting_offset));
        if start != Some(bar.start) {
            return Err(ReportCheckError::RangeOutsideBar { range_id });
        }
        // Cannot overflow: u32::MAX * 4096 < 2^44.
        if u64::from(range.number_of_pages) * TDISP_PAGE_SIZE != bar.len {
            return Err(ReportCheckError::SizeMismatch { range_id });
        }
    }
    Ok(())
}

/// Collects a report from DEVICE_INTERFACE_REPORT portions.
///
/// The first portion fixes the total length (`portion + remainder`); every later portion
/// must continue exactly where the previous one ended, be no longer than requested, make
/// progress, and agree on the total. The total is bounded by [`MAX_REPORT_LEN`], so the
/// request/response loop ends after at most [`MAX_REPORT_LEN`] rounds.
#[derive(Clone, Debug)]
pub(crate) struct ReportAssembler {
    buf: [u8; MAX_REPORT_LEN],
    len: usize,
    total: Option<usize>,
    page: u16,
}

impl ReportAssembler {
    /// Creates an assembler requesting portions of at most `page` bytes (at least 1).
    pub(crate) fn new(page: u16) -> Self {
        Self {
            buf: [0; MAX_REPORT_LEN],
            len: 0,
            total: None,
            page: page.max(1),
        }
    }

    /// Returns the next request to send, or `None` once the report is complete.
    pub(crate) fn next_request(&self) -> Option<Request> {
        if self.is_complete() {
            return None;
        }
        Some(Request::GetDeviceInterfaceReport {
            offset: u16::try_from(self.len).unwrap_or(u16::MAX),
            length: self.page,
        })
    }

    /// Adds the portion answering the last [`ReportAssembler::next_request`].
    pub(crate) fn add(&mut self, portion: &[u8], remainder: u16) -> Result<(), RequesterError> {
        if portion.len() > usize::from(self.page) {
            return Err(RequesterError::ReportInconsistent);
        }
        if portion.is_empty() && remainder != 0 {
            return Err(RequesterError::ReportNoProgress);
        }
        let end = self
            .len
            .checked_add(portion.len())
            .ok_or(RequesterError::ReportTooLarge)?;
        let total = end
            .checked_add(usize::from(remainder))
            .ok_or(RequesterError::ReportTooLarge)?;
        match self.total {
            None if total > MAX_REPORT_LEN => return Err(RequesterError::ReportTooLarge),
            None => self.total = Some(total),
            Some(t) if t != total => return Err(RequesterError::ReportInconsistent),
            Some(_) => {}
        }
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(RequesterError::ReportTooLarge)?;
        dst.copy_from_slice(portion);
        self.len = end;
        Ok(())
    }

    /// Returns whether the whole report has been received.
    pub(crate) fn is_complete(&self) -> bool {
        self.total == Some(self.len)
    }

    /// Returns the bytes received so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Decodes the complete report.
    pub(crate) fn report(&self) -> Result<InterfaceReport, RequesterError> {
        if !self.is_complete() {
            return Err(RequesterError::ReportInconsistent);
        }
        Ok(InterfaceReport::decode(self.bytes())?)
    }
}

/// TSM-side helper: builds requests for one interface and validates the responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Requester {
    function_id: u32,
}

impl Requester {
    /// Creates a requester talking to interface `function_id`.
    pub(crate) const fn new(function_id: u32) -> Self {
        Self { function_id }
    }

    /// Returns the interface ID.
    pub(crate) fn function_id(&self) -> u32 {
        self.function_id
    }

    /// Encodes `req` into `buf`; returns the message length.
    pub(crate) fn encode(&self, req: &Request, buf: &mut [u8]) -> Result<usize, RequesterError> {
        Ok(encode_request(self.function_id, req, buf)?)
    }

    /// Decodes `rsp` and checks that it is for our interface and of type `expected`.
    /// TDISP_ERROR becomes [`RequesterError::Tdisp`].
    pub(crate) fn check_response<'a>(
        &self,
        rsp: &'a [u8],
        expected: MessageType,
    ) -> Result<Response<'a>, RequesterError> {
        let (id, response) = decode_response(rsp)?;
        if id != self.function_id {
            return Err(RequesterError::InterfaceMismatch {
                expected: self.function_id,
                got: id,
            });
        }
        if let Response::Error { code, data } = response {
            return Err(RequesterError::Tdisp { code, data });
        }
        let got = response.message_type();
        if got != expected {
            return Err(RequesterError::UnexpectedResponse {
                expected: expected as u8,
                got: got as u8,
            });
        }
        Ok(response)
    }

    /// Parses TDISP_VERSION; succeeds if version 1.0 is offered.
    pub(crate) fn parse_version(&self, rsp: &[u8]) -> Result<(), RequesterError> {
        match self.check_response(rsp, MessageType::Version)? {
            Response::Version { versions } if versions.contains(&TDISP_VERSION) => Ok(()),
            _ => Err(RequesterError::VersionUnsupported),
        }
    }

    /// Parses TDISP_CAPABILITIES; returns the capabilities and the body they were decoded
    /// from, as received (what follows the TDISP header), for a TSM that keeps it as evidence.
    pub(crate) fn parse_capabilities<'a>(
        &self,
        rsp: &'a [u8],
    ) -> Result<(Capabilities, &'a [u8]), RequesterError> {
        match self.check_response(rsp, MessageType::Capabilities)? {
            // A decoded response is at least framing and header long.
            Response::Capabilities(caps) => Ok((caps, rsp.get(TDISP_OVERHEAD..).unwrap_or(&[]))),
            other => Err(self.unexpected(MessageType::Capabilities, &other)),
        }
    }

    /// Parses LOCK_INTERFACE_RESPONSE; returns the start nonce, which must not be all zero.
    pub(crate) fn parse_lock(&self, rsp: &[u8]) -> Result<Nonce, RequesterError> {
        match self.check_response(rsp, MessageType::LockInterfaceResponse)? {
            Response::LockInterface { nonce } if nonce_eq(&nonce, &[0; NONCE_LEN]) => {
                Err(RequesterError::ZeroNonce)
            }
            Response::LockInterface { nonce } => Ok(nonce),
            other => Err(self.unexpected(MessageType::LockInterfaceResponse, &other)),
        }
    }

    /// Parses DEVICE_INTERFACE_REPORT; returns the portion and the remainder length.
    pub(crate) fn parse_report<'a>(
        &self,
        rsp: &'a [u8],
    ) -> Result<(&'a [u8], u16), RequesterError> {
        match self.check_response(rsp, MessageType::DeviceInterfaceReport)? {
            Response::DeviceInterfaceReport { portion, remainder } => Ok((portion, remainder)),
            other => Err(self.unexpected(MessageType::DeviceInterfaceReport, &other)),
        }
    }

    /// Parses DEVICE_INTERFACE_STATE.
    pub(crate) fn parse_state(&self, rsp: &[u8]) -> Result<State, RequesterError> {
        match self.check_response(rsp, MessageType::DeviceInterfaceState)? {
            Response::DeviceInterfaceState(state) => Ok(state),
            other => Err(self.unexpected(MessageType::DeviceInterfaceState, &other)),
        }
    }

    /// Parses START_INTERFACE_RESPONSE.
    pub(crate) fn parse_start(&self, rsp: &[u8]) -> Result<(), RequesterError> {
        self.check_response(rsp, MessageType::StartInterfaceResponse)
            .map(|_| ())
    }

    /// Parses STOP_INTERFACE_RESPONSE.
    pub(crate) fn parse_stop(&self, rsp: &[u8]) -> Result<(), RequesterError> {
        self.check_response(rsp, MessageType::StopInterfaceResponse)
            .map(|_| ())
    }

    /// Fetches the whole interface report in portions of at most `page` bytes; returns the
    /// complete report as received (decode it with [`ReportAssembler::report`]).
    ///
    /// `xfer` sends one request and fills the response buffer, returning the response length;
    /// its errors are passed through, protocol errors are converted with `From`.
    pub(crate) fn fetch_report<E: From<RequesterError>>(
        &self,
        page: u16,
        mut xfer: impl FnMut(&[u8], &mut [u8]) -> Result<usize, E>,
    ) -> Result<ReportAssembler, E> {
        let mut assembler = ReportAssembler::new(page);
        let mut req = [0u8; MAX_MESSAGE_LEN];
        let mut rsp = [0u8; MAX_MESSAGE_LEN];
        while let Some(request) = assembler.next_request() {
            let req_len = self.encode(&request, &mut req)?;
            let req_bytes = req.get(..req_len).unwrap_or(&[]);
            let rsp_len = xfer(req_bytes, &mut rsp)?;
            let rsp_bytes = rsp
                .get(..rsp_len)
                .ok_or(RequesterError::Codec(CodecError::Truncated))?;
            let (portion, remainder) = self.parse_report(rsp_bytes)?;
            assembler.add(portion, remainder)?;
        }
        Ok(assembler)
    }

    fn unexpected(&self, expected: MessageType, got: &Response<'_>) -> RequesterError {
        RequesterError::UnexpectedResponse {
            expected: expected as u8,
            got: got.message_type() as u8,
        }
    }
}
