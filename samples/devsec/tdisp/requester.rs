// SPDX-License-Identifier: GPL-2.0

//! TSM side of TDISP: request encoding, response and report decoding, the check of an
//! interface report against the device's BARs, and [`Requester`], which validates every
//! response before the TSM acts on it.

use super::codec::{
    encode_message,
    lock_flags,
    nonce_eq,
    unwrap_spdm,
    Capabilities,
    CodecError,
    ErrorCode,
    InterfaceId,
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
    SPDM_MAX_EXTENDED_ERROR,
    SPDM_VENDOR_DEFINED_REQUEST,
    SPDM_VENDOR_DEFINED_RESPONSE,
    SPDM_VERSION,
    TDISP_OVERHEAD,
    TDISP_VERSION, //
};
use super::report::{
    interface_info,
    range_attr,
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

/// Reasons why an interface report does not describe the function's BARs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportCheckError {
    /// More BARs than [`MAX_RANGES`] were passed in.
    TooManyBars,
    /// `interface_info` has these reserved bits set.
    ReservedInterfaceInfo(u16),
    /// A range uses reserved attribute bits.
    BadAttributes {
        /// The offending range.
        range_id: u16,
        /// Its attributes.
        attributes: u16,
    },
    /// A range is UPDATABLE.
    Updatable {
        /// The offending range.
        range_id: u16,
    },
    /// A range has no pages.
    EmptyRange {
        /// The offending range.
        range_id: u16,
    },
    /// A range is not page aligned after subtracting the reporting offset.
    Misaligned {
        /// The offending range.
        range_id: u16,
    },
    /// A range does not lie inside any BAR of the function.
    OutsideBars {
        /// The offending range.
        range_id: u16,
    },
    /// A range lies inside more than one BAR (the BARs overlap).
    AmbiguousBar {
        /// The offending range.
        range_id: u16,
    },
    /// A range overlaps an earlier range of the report.
    Overlap {
        /// The offending range.
        range_id: u16,
    },
    /// No range lies inside this BAR.
    BarNotReported {
        /// The BAR index.
        bar: u16,
    },
}

/// Requester-side errors: everything that makes a response unacceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequesterError {
    /// The response could not be decoded, or the request not encoded.
    Codec(CodecError),
    /// The response names another interface (any of the 12 bytes differs).
    InterfaceMismatch {
        /// Our interface.
        expected: InterfaceId,
        /// The interface in the response.
        got: InterfaceId,
    },
    /// The response has another type than the one expected.
    UnexpectedResponse {
        /// The expected message type.
        expected: u8,
        /// The message type received.
        got: u8,
    },
    /// The device answered with an SPDM ERROR message instead of a TDISP response.
    Spdm {
        /// The SPDM error code.
        code: u8,
        /// The SPDM error data.
        data: u8,
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
            Some(MessageType::Error) => {
                let code = r.u32()?;
                let data = r.u32()?;
                let ext = if code == ErrorCode::VendorSpecificError as u32 {
                    decode_vendor_error(&mut r)?
                } else {
                    &[]
                };
                Self::Error { code, data, ext }
            }
            _ => return Err(CodecError::UnknownMessage(code)),
        };
        r.finish()?;
        Ok(rsp)
    }
}

/// Decodes the extended error data of VENDOR_SPECIFIC_ERROR, the rest of the message:
/// `u8 registry_id`, `u8 vendor_id_len`, the vendor ID of that length, then vendor error
/// data. Returns all of it.
fn decode_vendor_error<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], CodecError> {
    let ext = r.rest();
    let _registry_id = r.u8()?;
    let vendor_id_len = usize::from(r.u8()?);
    let _vendor_id = r.take(vendor_id_len)?;
    let _vendor_data = r.take(r.remaining())?;
    Ok(ext)
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
            0xff => Self::VendorSpecificError,
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
            Self::VendorSpecificError => "VENDOR_SPECIFIC_ERROR",
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
        SPDM_VERSION,
        SPDM_VENDOR_DEFINED_REQUEST,
        req.message_type(),
        InterfaceId::new(function_id),
        buf,
        |w| req.encode_body(w),
    )
}

/// Decodes a complete SPDM VENDOR_DEFINED_RESPONSE to a request of ours; returns the
/// interface ID and the response. The SPDM version must be [`SPDM_VERSION`], the version of
/// our requests.
pub(crate) fn decode_response(msg: &[u8]) -> Result<(InterfaceId, Response<'_>), CodecError> {
    match msg.first() {
        Some(&SPDM_VERSION) => {}
        Some(&version) => return Err(CodecError::BadSpdmVersion(version)),
        None => return Err(CodecError::Truncated),
    }
    let tdisp = unwrap_spdm(msg, SPDM_VENDOR_DEFINED_RESPONSE)?;
    let (hdr, body) = TdispHeader::decode(tdisp)?;
    if hdr.version != TDISP_VERSION {
        return Err(CodecError::VersionMismatch(hdr.version));
    }
    Ok((hdr.interface_id, Response::decode(hdr.message_type, body)?))
}

/// Decodes an SPDM ERROR message answering a request of ours: `u8 version`
/// ([`SPDM_VERSION`]), `u8 code` ([`SPDM_ERROR`]), `u8 error code`, `u8 error data`, then
/// at most [`SPDM_MAX_EXTENDED_ERROR`] bytes of extended error data. Returns the error code
/// and data, or `None` if `msg` is not such a message.
pub(crate) fn decode_spdm_error(msg: &[u8]) -> Option<(u8, u8)> {
    match msg {
        [SPDM_VERSION, SPDM_ERROR, code, data, ext @ ..]
            if ext.len() <= SPDM_MAX_EXTENDED_ERROR =>
        {
            Some((*code, *data))
        }
        _ => None,
    }
}

/// One MMIO range of a checked report, located in a BAR of the function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckedRange {
    /// Index of the BAR the range lies in.
    pub(crate) bar: u16,
    /// Physical start address (the reported address minus the MMIO reporting offset).
    pub(crate) start: u64,
    /// Length in bytes.
    pub(crate) len: u64,
    /// The reported [`range_attr`] bits.
    pub(crate) attributes: u16,
    /// The reported range ID.
    pub(crate) range_id: u16,
    /// Whether the range is TEE memory: neither NON_TEE nor (without LOCK_MSIX) MSI-X.
    pub(crate) private: bool,
}

/// The MMIO ranges of a report that passed [`check_report_against_bars`], in report order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckedReport {
    ranges: [CheckedRange; MAX_RANGES],
    count: usize,
}

impl CheckedReport {
    /// Returns the checked ranges.
    pub(crate) fn ranges(&self) -> &[CheckedRange] {
        self.ranges.get(..self.count).unwrap_or(&[])
    }

    /// Returns the ranges that are TEE memory.
    pub(crate) fn private_ranges(&self) -> impl Iterator<Item = &CheckedRange> {
        self.ranges().iter().filter(|range| range.private)
    }
}

/// Checks `report` against the function's `bars` for an interface locked with `lock_flags`
/// and MMIO reporting offset `mmio_reporting_offset`; returns where every
/// range lies and whether it is private.
///
/// The report is accepted if
/// - `interface_info` has no reserved bit set,
/// - no range has a reserved attribute bit or UPDATABLE (nothing here can track a range
///   that changes after the lock),
/// - every range is non-empty and, after subtracting the reporting offset, page aligned
///   and inside exactly one BAR,
/// - no two ranges overlap, and
/// - every BAR holds at least one range (a report lists all MMIO of the interface).
///
/// A range may cover part of a BAR, a BAR may hold several ranges, and `range_id` is not
/// interpreted. NON_TEE ranges, and MSI-X table and PBA ranges of an interface locked
/// without LOCK_MSIX, are legal but shared; every other range is private. Parts of a BAR
/// that no range covers are shared too.
pub(crate) fn check_report_against_bars(
    report: &InterfaceReport,
    bars: &[Bar],
    mmio_reporting_offset: u64,
    lock_flags: u16,
) -> Result<CheckedReport, ReportCheckError> {
    if bars.len() > MAX_RANGES {
        return Err(ReportCheckError::TooManyBars);
    }
    let reserved = report.interface_info & !interface_info::ALL;
    if reserved != 0 {
        return Err(ReportCheckError::ReservedInterfaceInfo(reserved));
    }
    let mut checked = CheckedReport::default();
    for (slot, range) in report.ranges().iter().enumerate() {
        let range_id = range.range_id;
        if range.attributes & !range_attr::ALL != 0 {
            return Err(ReportCheckError::BadAttributes {
                range_id,
                attributes: range.attributes,
            });
        }
        if range.attributes & range_attr::UPDATABLE != 0 {
            return Err(ReportCheckError::Updatable { range_id });
        }
        if range.number_of_pages == 0 {
            return Err(ReportCheckError::EmptyRange { range_id });
        }
        let start = range
            .first_page
            .checked_mul(TDISP_PAGE_SIZE)
            .and_then(|addr| addr.checked_sub(mmio_reporting_offset))
            .ok_or(ReportCheckError::OutsideBars { range_id })?;
        if start % TDISP_PAGE_SIZE != 0 {
            return Err(ReportCheckError::Misaligned { range_id });
        }
        // Cannot overflow: u32::MAX * 4096 < 2^44.
        let len = u64::from(range.number_of_pages) * TDISP_PAGE_SIZE;
        let end = start
            .checked_add(len)
            .ok_or(ReportCheckError::OutsideBars { range_id })?;
        let mut holders = bars.iter().filter(|bar| {
            bar.start <= start && bar.start.checked_add(bar.len).is_some_and(|e| end <= e)
        });
        let bar = holders
            .next()
            .ok_or(ReportCheckError::OutsideBars { range_id })?;
        if holders.next().is_some() {
            return Err(ReportCheckError::AmbiguousBar { range_id });
        }
        if checked
            .ranges()
            .iter()
            .any(|other| start < other.start.saturating_add(other.len) && other.start < end)
        {
            return Err(ReportCheckError::Overlap { range_id });
        }
        let msix = range.attributes & (range_attr::MSIX_TABLE | range_attr::MSIX_PBA) != 0;
        let private = range.attributes & range_attr::NON_TEE == 0
            && (!msix || lock_flags & lock_flags::LOCK_MSIX != 0);
        let dst = checked
            .ranges
            .get_mut(slot)
            .ok_or(ReportCheckError::TooManyBars)?;
        *dst = CheckedRange {
            bar: bar.index,
            start,
            len,
            attributes: range.attributes,
            range_id,
            private,
        };
        checked.count = slot.saturating_add(1);
    }
    if let Some(bar) = bars
        .iter()
        .find(|bar| !checked.ranges().iter().any(|range| range.bar == bar.index))
    {
        return Err(ReportCheckError::BarNotReported { bar: bar.index });
    }
    Ok(checked)
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

    /// Decodes `rsp` and checks that it is for our interface (all 12 bytes of the ID) and of
    /// type `expected`. An SPDM ERROR becomes [`RequesterError::Spdm`], TDISP_ERROR
    /// [`RequesterError::Tdisp`].
    pub(crate) fn check_response<'a>(
        &self,
        rsp: &'a [u8],
        expected: MessageType,
    ) -> Result<Response<'a>, RequesterError> {
        if let Some((code, data)) = decode_spdm_error(rsp) {
            return Err(RequesterError::Spdm { code, data });
        }
        let (id, response) = decode_response(rsp)?;
        let ours = InterfaceId::new(self.function_id);
        if id != ours {
            return Err(RequesterError::InterfaceMismatch {
                expected: ours,
                got: id,
            });
        }
        if let Response::Error { code, data, .. } = response {
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
