// SPDX-License-Identifier: GPL-2.0

//! TDISP codec and device-side responder for the devsec sample.
//!
//! This module encodes and decodes the messages of the PCIe TEE Device Interface Security
//! Protocol (TDISP 1.0) and implements the state machine of a device interface answering
//! them. The emulated bus (`devsec_bus`) uses [`Responder`], the devsec TSM (`devsec_tsm`)
//! uses [`Requester`] and [`check_report_against_bars`].
//!
//! # Layering
//!
//! ```text
//! DOE data object        dword0 = vendor[15:0] | type[23:16], dword1 = length in dwords
//! |                      (type 0 Discovery, 1 CMA/SPDM, 2 secured CMA/SPDM)
//! +- SPDM VENDOR_DEFINED_REQUEST (0xFE) / VENDOR_DEFINED_RESPONSE (0x7E), 11 bytes:
//!    |  u8 version, u8 code, u8 param1, u8 param2, u16 StandardID (0x0003, PCI-SIG),
//!    |  u8 vendor-ID length (2), u16 VendorID (0x0001), u16 payload length
//!    +- u8 protocol ID (0x01 TDISP)
//!       +- TDISP message: 16-byte header (version 0x10, message type, interface ID) + body
//! ```
//!
//! All multi-byte fields are little endian.
//!
//! # Simplification
//!
//! TDISP travels in plain SPDM VENDOR_DEFINED messages inside DOE type 1 (CMA/SPDM) objects.
//! There is no SPDM secure session: no key exchange, no certificates, no measurements. The
//! start nonce therefore protects against stale or replayed STARTs, not against an attacker
//! on the link.
//!
//! # Robustness
//!
//! Everything here is safe Rust using only `core`: no allocation, no kernel imports, so the
//! same file is built into the bus and TSM modules, the KUnit suite and a host test harness.
//! Input is untrusted: parsers never index out of bounds, never panic and use checked
//! arithmetic on every length field. Buffers are fixed size; the limits are [`MAX_RANGES`],
//! [`MAX_DEVICE_SPECIFIC`], [`MAX_REPORT_LEN`] and [`MAX_MESSAGE_LEN`].

// Each user (bus, TSM, tests) needs a different subset of this module.
#![allow(dead_code)]

use core::hint::black_box;

/// Maximum number of MMIO ranges in an interface report (and of BARs per interface).
pub(crate) const MAX_RANGES: usize = 8;

/// Maximum length of the device-specific blob at the end of an interface report.
pub(crate) const MAX_DEVICE_SPECIFIC: usize = 64;

/// Length of the fixed part of an interface report, up to and including `mmio_range_count`.
pub(crate) const REPORT_FIXED_LEN: usize = 16;

/// Length of one MMIO range in an interface report.
pub(crate) const REPORT_RANGE_LEN: usize = 16;

/// Maximum length of an encoded interface report.
pub(crate) const MAX_REPORT_LEN: usize =
    REPORT_FIXED_LEN + MAX_RANGES * REPORT_RANGE_LEN + 4 + MAX_DEVICE_SPECIFIC;

/// Page size used by interface reports (`first_page` and `number_of_pages`).
pub(crate) const PAGE_SIZE: u64 = 4096;

/// Length of a start nonce.
pub(crate) const NONCE_LEN: usize = 32;

/// A start nonce, handed out by LOCK_INTERFACE and required by START_INTERFACE.
pub(crate) type Nonce = [u8; NONCE_LEN];

// ---------------------------------------------------------------------------------------------
// DOE
// ---------------------------------------------------------------------------------------------

/// PCI-SIG vendor ID, used for DOE object types and as SPDM VendorID.
pub(crate) const VENDOR_ID_PCI_SIG: u16 = 0x0001;

/// DOE object type: DOE Discovery.
pub(crate) const DOE_TYPE_DISCOVERY: u8 = 0;

/// DOE object type: CMA/SPDM.
pub(crate) const DOE_TYPE_CMA: u8 = 1;

/// DOE object type: secured CMA/SPDM.
pub(crate) const DOE_TYPE_SECURED_CMA: u8 = 2;

/// Length of a DOE object header in dwords.
pub(crate) const DOE_HEADER_DW: u32 = 2;

/// Maximum length of a DOE object in dwords (encoded as 0 in the header).
pub(crate) const DOE_MAX_LENGTH_DW: u32 = 1 << 18;

/// The (vendor, type) pairs answered by DOE Discovery, in index order.
pub(crate) const DOE_FEATURES: [(u16, u8); 2] = [
    (VENDOR_ID_PCI_SIG, DOE_TYPE_DISCOVERY),
    (VENDOR_ID_PCI_SIG, DOE_TYPE_CMA),
];

/// Header of a DOE data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DoeHeader {
    /// Vendor ID of the object type.
    pub(crate) vendor: u16,
    /// Object type.
    pub(crate) object_type: u8,
    /// Length of the object in dwords, header included (2 ..= [`DOE_MAX_LENGTH_DW`]).
    pub(crate) length_dw: u32,
}

impl DoeHeader {
    /// Builds the header of an object carrying `payload_len` bytes (padded to dwords).
    pub(crate) fn for_payload(
        vendor: u16,
        object_type: u8,
        payload_len: usize,
    ) -> Result<Self, CodecError> {
        let payload_dw = payload_len.div_ceil(4);
        let length_dw = u32::try_from(payload_dw)
            .ok()
            .and_then(|dw| dw.checked_add(DOE_HEADER_DW))
            .filter(|&dw| dw <= DOE_MAX_LENGTH_DW)
            .ok_or(CodecError::TooLong)?;
        Ok(Self {
            vendor,
            object_type,
            length_dw,
        })
    }

    /// Returns the two header dwords.
    pub(crate) fn encode(&self) -> [u32; 2] {
        let dw0 = u32::from(self.vendor) | (u32::from(self.object_type) << 16);
        // The maximum length is encoded as 0.
        let dw1 = self.length_dw & (DOE_MAX_LENGTH_DW - 1);
        [dw0, dw1]
    }

    /// Parses the two header dwords; a length below the header size is rejected.
    pub(crate) fn decode(dw0: u32, dw1: u32) -> Result<Self, CodecError> {
        let [vendor_lo, vendor_hi, object_type, _] = dw0.to_le_bytes();
        let length_dw = match dw1 & (DOE_MAX_LENGTH_DW - 1) {
            0 => DOE_MAX_LENGTH_DW,
            n if n < DOE_HEADER_DW => return Err(CodecError::Truncated),
            n => n,
        };
        Ok(Self {
            vendor: u16::from_le_bytes([vendor_lo, vendor_hi]),
            object_type,
            length_dw,
        })
    }

    /// Returns the payload length in dwords.
    pub(crate) fn payload_dw(&self) -> u32 {
        self.length_dw.saturating_sub(DOE_HEADER_DW)
    }
}

/// Builds the payload dword of a DOE Discovery request for `index`.
pub(crate) fn doe_discovery_request(index: u8) -> u32 {
    u32::from(index)
}

/// Extracts the index (bits 7:0) from a DOE Discovery request payload dword.
pub(crate) fn doe_discovery_index(request: u32) -> u8 {
    let [index, ..] = request.to_le_bytes();
    index
}

/// Builds a DOE Discovery response dword: vendor[15:0], type[23:16], next index[31:24].
pub(crate) fn doe_discovery_response(vendor: u16, object_type: u8, next_index: u8) -> u32 {
    u32::from(vendor) | (u32::from(object_type) << 16) | (u32::from(next_index) << 24)
}

/// Splits a DOE Discovery response dword into (vendor, type, next index).
pub(crate) fn doe_discovery_decode(response: u32) -> (u16, u8, u8) {
    let [vendor_lo, vendor_hi, object_type, next_index] = response.to_le_bytes();
    (
        u16::from_le_bytes([vendor_lo, vendor_hi]),
        object_type,
        next_index,
    )
}

/// Answers a DOE Discovery request for `index` from [`DOE_FEATURES`].
///
/// The last entry has next index 0, which ends the requester's walk. An index past the end
/// is answered with entry 0 and next index 0, so a confused requester terminates too.
pub(crate) fn doe_discovery_answer(index: u8) -> u32 {
    let slot = usize::from(index);
    match DOE_FEATURES.get(slot) {
        Some(&(vendor, object_type)) => {
            let next = match DOE_FEATURES.get(slot + 1) {
                Some(_) => index.wrapping_add(1),
                None => 0,
            };
            doe_discovery_response(vendor, object_type, next)
        }
        None => doe_discovery_response(VENDOR_ID_PCI_SIG, DOE_TYPE_DISCOVERY, 0),
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol constants
// ---------------------------------------------------------------------------------------------

/// SPDM version byte we send (1.2). Any 1.x version is accepted on input.
pub(crate) const SPDM_VERSION: u8 = 0x12;

/// SPDM VENDOR_DEFINED_REQUEST code.
pub(crate) const SPDM_VENDOR_DEFINED_REQUEST: u8 = 0xfe;

/// SPDM VENDOR_DEFINED_RESPONSE code.
pub(crate) const SPDM_VENDOR_DEFINED_RESPONSE: u8 = 0x7e;

/// SPDM StandardID of PCI-SIG.
pub(crate) const SPDM_STANDARD_ID_PCI_SIG: u16 = 0x0003;

/// Length of the SPDM VENDOR_DEFINED header, up to and including the payload length.
pub(crate) const SPDM_VD_HEADER_LEN: usize = 11;

/// Protocol ID of IDE key management inside a PCI-SIG VENDOR_DEFINED payload.
pub(crate) const PROTOCOL_IDE_KM: u8 = 0x00;

/// Protocol ID of TDISP inside a PCI-SIG VENDOR_DEFINED payload.
pub(crate) const PROTOCOL_TDISP: u8 = 0x01;

/// The TDISP version (1.0) carried in every TDISP header.
pub(crate) const TDISP_VERSION: u8 = 0x10;

/// Length of the TDISP message header.
pub(crate) const TDISP_HEADER_LEN: usize = 16;

/// Bytes in front of a TDISP body: SPDM header, protocol ID, TDISP header.
pub(crate) const TDISP_OVERHEAD: usize = SPDM_VD_HEADER_LEN + 1 + TDISP_HEADER_LEN;

/// Bytes of a DEVICE_INTERFACE_REPORT response in front of the report portion.
pub(crate) const REPORT_RESPONSE_OVERHEAD: usize = TDISP_OVERHEAD + 4;

/// Length of the largest message of this protocol (a report response carrying a whole
/// [`MAX_REPORT_LEN`] report). Buffers of this size never truncate anything.
pub(crate) const MAX_MESSAGE_LEN: usize = REPORT_RESPONSE_OVERHEAD + MAX_REPORT_LEN;

/// Length of the largest fixed-size response (LOCK_INTERFACE_RESPONSE). [`Responder::handle`]
/// needs a response buffer at least this long; report portions are clamped to the rest.
pub(crate) const MIN_RESPONSE_LEN: usize = TDISP_OVERHEAD + NONCE_LEN;

/// Builds a TDISP `function_id`: requester ID in bits 15:0, segment in 23:16, bit 24 set when
/// the segment is valid.
pub(crate) const fn function_id(requester_id: u16, segment: Option<u8>) -> u32 {
    match segment {
        Some(seg) => (requester_id as u32) | ((seg as u32) << 16) | (1 << 24),
        None => requester_id as u32,
    }
}

/// TDISP message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MessageType {
    /// GET_TDISP_VERSION request.
    GetVersion = 0x81,
    /// GET_TDISP_CAPABILITIES request.
    GetCapabilities = 0x82,
    /// LOCK_INTERFACE_REQUEST.
    LockInterface = 0x83,
    /// GET_DEVICE_INTERFACE_REPORT request.
    GetDeviceInterfaceReport = 0x84,
    /// GET_DEVICE_INTERFACE_STATE request.
    GetDeviceInterfaceState = 0x85,
    /// START_INTERFACE_REQUEST.
    StartInterface = 0x86,
    /// STOP_INTERFACE_REQUEST.
    StopInterface = 0x87,
    /// TDISP_VERSION response.
    Version = 0x01,
    /// TDISP_CAPABILITIES response.
    Capabilities = 0x02,
    /// LOCK_INTERFACE_RESPONSE.
    LockInterfaceResponse = 0x03,
    /// DEVICE_INTERFACE_REPORT response.
    DeviceInterfaceReport = 0x04,
    /// DEVICE_INTERFACE_STATE response.
    DeviceInterfaceState = 0x05,
    /// START_INTERFACE_RESPONSE.
    StartInterfaceResponse = 0x06,
    /// STOP_INTERFACE_RESPONSE.
    StopInterfaceResponse = 0x07,
    /// TDISP_ERROR response.
    Error = 0x7f,
}

impl MessageType {
    /// Returns the message type with code `code`, if it is defined.
    pub(crate) fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0x81 => Self::GetVersion,
            0x82 => Self::GetCapabilities,
            0x83 => Self::LockInterface,
            0x84 => Self::GetDeviceInterfaceReport,
            0x85 => Self::GetDeviceInterfaceState,
            0x86 => Self::StartInterface,
            0x87 => Self::StopInterface,
            0x01 => Self::Version,
            0x02 => Self::Capabilities,
            0x03 => Self::LockInterfaceResponse,
            0x04 => Self::DeviceInterfaceReport,
            0x05 => Self::DeviceInterfaceState,
            0x06 => Self::StartInterfaceResponse,
            0x07 => Self::StopInterfaceResponse,
            0x7f => Self::Error,
            _ => return None,
        })
    }

    /// Returns true for request (requester to responder) messages.
    pub(crate) fn is_request(self) -> bool {
        (self as u8) & 0x80 != 0
    }

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

/// TDISP_ERROR error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ErrorCode {
    /// Malformed request or request with invalid fields.
    InvalidRequest = 0x1,
    /// The responder cannot handle the request now; retry later.
    Busy = 0x3,
    /// The request is not allowed in the current interface state.
    InvalidInterfaceState = 0x4,
    /// Unspecified failure.
    Unspecified = 0x5,
    /// Unknown or unsupported request.
    UnsupportedRequest = 0x7,
    /// The TDISP version in the header is not supported.
    VersionMismatch = 0x41,
    /// The interface ID does not name an interface of this device.
    InvalidInterface = 0x101,
    /// START_INTERFACE carried the wrong nonce.
    InvalidNonce = 0x102,
    /// The device could not generate a nonce.
    InsufficientEntropy = 0x103,
    /// The device configuration does not allow locking the interface.
    InvalidDeviceConfiguration = 0x104,
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

/// TDISP device interface states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    /// Configuration may change; the interface is not trusted.
    ConfigUnlocked = 0,
    /// Configuration is locked; the TSM may verify the interface.
    ConfigLocked = 1,
    /// The interface is started and may access TEE memory.
    Run = 2,
    /// A security-relevant change happened; only STOP leaves this state.
    Error = 3,
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

    /// Returns the specification name, as shown in debugfs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ConfigUnlocked => "CONFIG_UNLOCKED",
            Self::ConfigLocked => "CONFIG_LOCKED",
            Self::Run => "RUN",
            Self::Error => "ERROR",
        }
    }
}

/// LOCK_INTERFACE_REQUEST flags.
pub(crate) mod lock_flags {
    /// No firmware update while the interface is locked.
    pub(crate) const NO_FW_UPDATE: u16 = 0x1;
    /// System cache line size is 128 bytes.
    pub(crate) const SYSTEM_CACHE_LINE_SIZE: u16 = 0x2;
    /// Lock the MSI-X table and PBA.
    pub(crate) const LOCK_MSIX: u16 = 0x4;
    /// Bind peer-to-peer streams.
    pub(crate) const BIND_P2P: u16 = 0x8;
    /// Redirect all requests to the host.
    pub(crate) const ALL_REQUEST_REDIRECT: u16 = 0x10;
    /// All defined flags.
    pub(crate) const ALL: u16 =
        NO_FW_UPDATE | SYSTEM_CACHE_LINE_SIZE | LOCK_MSIX | BIND_P2P | ALL_REQUEST_REDIRECT;
}

/// Interface report `interface_info` bits.
pub(crate) mod interface_info {
    /// No firmware update happens after LOCK_INTERFACE.
    pub(crate) const NO_UPDATE_AFTER_LOCK: u16 = 0x1;
    /// DMA without PASID is supported.
    pub(crate) const DMA_WITHOUT_PASID: u16 = 0x2;
    /// DMA with PASID is supported.
    pub(crate) const DMA_WITH_PASID: u16 = 0x4;
    /// ATS is supported.
    pub(crate) const ATS: u16 = 0x8;
    /// PRS is supported.
    pub(crate) const PRS: u16 = 0x10;
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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Encoding and decoding errors of the SPDM and TDISP layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// The input ends before a field or before the length a length field announces.
    Truncated,
    /// The input carries bytes after the message.
    TrailingBytes,
    /// The output buffer is too small.
    BufferTooSmall,
    /// A length does not fit its field.
    TooLong,
    /// The SPDM major version is not 1.
    BadSpdmVersion(u8),
    /// The SPDM code is not the expected VENDOR_DEFINED code.
    BadSpdmCode(u8),
    /// The StandardID is not PCI-SIG.
    BadStandardId(u16),
    /// The vendor-ID length is not 2.
    BadVendorIdLen(u8),
    /// The VendorID is not PCI-SIG.
    BadVendorId(u16),
    /// The protocol ID is not TDISP.
    BadProtocol(u8),
    /// The TDISP version is not 1.0.
    VersionMismatch(u8),
    /// The message type is unknown or of the wrong direction.
    UnknownMessage(u8),
    /// A field holds an undefined value.
    InvalidField,
}

/// Interface report decoding errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportError {
    /// The report ends inside its fixed part or inside `device_specific_len`.
    Truncated,
    /// `mmio_range_count` announces more ranges than the report holds.
    RangesTruncated,
    /// More than [`MAX_RANGES`] ranges.
    TooManyRanges,
    /// `device_specific_len` does not match the bytes that follow it.
    LengthMismatch,
    /// The device-specific blob is longer than [`MAX_DEVICE_SPECIFIC`].
    DeviceSpecificTooLong,
    /// The output buffer is too small.
    BufferTooSmall,
}

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

/// Responder configuration errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConfigError {
    /// More BARs than [`MAX_RANGES`].
    TooManyBars,
    /// Device-specific blob longer than [`MAX_DEVICE_SPECIFIC`].
    DeviceSpecificTooLong,
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

// ---------------------------------------------------------------------------------------------
// Byte cursors
// ---------------------------------------------------------------------------------------------

/// Bounds-checked little-endian reader over untrusted bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        let head = self.rest.get(..len).ok_or(CodecError::Truncated)?;
        self.rest = self.rest.get(len..).unwrap_or(&[]);
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        self.take(N)?.try_into().map_err(|_| CodecError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        let [byte] = self.array()?;
        Ok(byte)
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn finish(&self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes)
        }
    }
}

/// Bounds-checked little-endian writer.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(CodecError::BufferTooSmall)?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(CodecError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn u8(&mut self, v: u8) -> Result<(), CodecError> {
        self.put(&[v])
    }

    fn u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    fn patch(&mut self, at: usize, bytes: &[u8]) -> Result<(), CodecError> {
        let end = at
            .checked_add(bytes.len())
            .ok_or(CodecError::BufferTooSmall)?;
        let dst = self
            .buf
            .get_mut(at..end)
            .ok_or(CodecError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

/// Compares two nonces in constant time: every byte is looked at, no early exit.
fn nonce_eq(a: &Nonce, b: &Nonce) -> bool {
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        acc |= x ^ y;
    }
    black_box(acc) == 0
}

// ---------------------------------------------------------------------------------------------
// SPDM VENDOR_DEFINED and TDISP header
// ---------------------------------------------------------------------------------------------

/// Writes an SPDM VENDOR_DEFINED message with `code` carrying a TDISP message of `message_type`
/// for `function_id`; `body` writes the TDISP body.
fn encode_message(
    code: u8,
    message_type: MessageType,
    function_id: u32,
    buf: &mut [u8],
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), CodecError>,
) -> Result<usize, CodecError> {
    let mut w = Writer::new(buf);
    w.u8(SPDM_VERSION)?;
    w.u8(code)?;
    w.u8(0)?;
    w.u8(0)?;
    w.u16(SPDM_STANDARD_ID_PCI_SIG)?;
    w.u8(2)?;
    w.u16(VENDOR_ID_PCI_SIG)?;
    // Payload length, patched below.
    w.u16(0)?;
    w.u8(PROTOCOL_TDISP)?;
    w.u8(TDISP_VERSION)?;
    w.u8(message_type as u8)?;
    w.u16(0)?;
    w.u32(function_id)?;
    w.u64(0)?;
    body(&mut w)?;
    let len = w.pos;
    let payload = len
        .checked_sub(SPDM_VD_HEADER_LEN)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(CodecError::TooLong)?;
    w.patch(SPDM_VD_HEADER_LEN - 2, &payload.to_le_bytes())?;
    Ok(len)
}

/// Unwraps an SPDM VENDOR_DEFINED message with `code` and returns the TDISP message in it.
///
/// `msg` may carry up to three bytes of DOE dword padding after the SPDM payload; more
/// trailing bytes are rejected.
pub(crate) fn unwrap_spdm(msg: &[u8], code: u8) -> Result<&[u8], CodecError> {
    let mut r = Reader::new(msg);
    let version = r.u8()?;
    if version >> 4 != 1 {
        return Err(CodecError::BadSpdmVersion(version));
    }
    let got = r.u8()?;
    if got != code {
        return Err(CodecError::BadSpdmCode(got));
    }
    let _param1 = r.u8()?;
    let _param2 = r.u8()?;
    let standard_id = r.u16()?;
    if standard_id != SPDM_STANDARD_ID_PCI_SIG {
        return Err(CodecError::BadStandardId(standard_id));
    }
    let vendor_id_len = r.u8()?;
    if vendor_id_len != 2 {
        return Err(CodecError::BadVendorIdLen(vendor_id_len));
    }
    let vendor_id = r.u16()?;
    if vendor_id != VENDOR_ID_PCI_SIG {
        return Err(CodecError::BadVendorId(vendor_id));
    }
    let payload_len = usize::from(r.u16()?);
    let payload = r.take(payload_len)?;
    if r.remaining() >= 4 {
        return Err(CodecError::TrailingBytes);
    }
    let mut p = Reader::new(payload);
    let protocol = p.u8()?;
    if protocol != PROTOCOL_TDISP {
        return Err(CodecError::BadProtocol(protocol));
    }
    Ok(p.rest)
}

/// The TDISP message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TdispHeader {
    /// TDISP version, [`TDISP_VERSION`] for well-formed messages.
    pub(crate) version: u8,
    /// Raw message type (see [`MessageType`]).
    pub(crate) message_type: u8,
    /// Interface ID `function_id` (see [`function_id`]).
    pub(crate) function_id: u32,
}

impl TdispHeader {
    /// Splits a TDISP message into header and body. Reserved fields are ignored and the
    /// version is not checked, so the caller can answer VERSION_MISMATCH.
    pub(crate) fn decode(msg: &[u8]) -> Result<(Self, &[u8]), CodecError> {
        let mut r = Reader::new(msg);
        let version = r.u8()?;
        let message_type = r.u8()?;
        let _reserved = r.u16()?;
        let function_id = r.u32()?;
        let _reserved = r.u64()?;
        Ok((
            Self {
                version,
                message_type,
                function_id,
            },
            r.rest,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// LOCK_INTERFACE_REQUEST parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LockParams {
    /// [`lock_flags`].
    pub(crate) flags: u16,
    /// Default IDE stream ID.
    pub(crate) default_stream_id: u8,
    /// Offset added to MMIO addresses in the interface report (4 KiB aligned).
    pub(crate) mmio_reporting_offset: u64,
    /// Address mask for peer-to-peer binding.
    pub(crate) bind_p2p_address_mask: u64,
}

/// TDISP_CAPABILITIES body, modelled on TDISP 1.0 (28 bytes):
///
/// `u32 dsm_caps`, `u8 req_msgs_supported[16]` (bit `n` = request code `0x80 + n`),
/// `u16 lock_interface_flags_supported`, `u8 reserved[3]`, `u8 dev_addr_width`,
/// `u8 num_req_this`, `u8 num_req_all`.
///
/// The GET_TDISP_CAPABILITIES request body is a single `u32 tsm_caps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// Device security manager capabilities (none defined; 0).
    pub(crate) dsm_caps: u32,
    /// Bitmap of supported requests.
    pub(crate) req_msgs_supported: [u8; 16],
    /// Supported [`lock_flags`].
    pub(crate) lock_flags_supported: u16,
    /// Width of DMA addresses the device generates.
    pub(crate) dev_addr_width: u8,
    /// Outstanding requests supported on this interface.
    pub(crate) num_req_this: u8,
    /// Outstanding requests supported on all interfaces.
    pub(crate) num_req_all: u8,
}

/// Length of the TDISP_CAPABILITIES body.
pub(crate) const CAPABILITIES_LEN: usize = 28;

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

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.u32(self.dsm_caps)?;
        w.put(&self.req_msgs_supported)?;
        w.u16(self.lock_flags_supported)?;
        w.put(&[0; 3])?;
        w.u8(self.dev_addr_width)?;
        w.u8(self.num_req_this)?;
        w.u8(self.num_req_all)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
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

/// A TDISP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// GET_TDISP_VERSION (no body).
    GetVersion,
    /// GET_TDISP_CAPABILITIES.
    GetCapabilities {
        /// TSM capabilities (none defined; 0).
        tsm_caps: u32,
    },
    /// LOCK_INTERFACE_REQUEST.
    LockInterface(LockParams),
    /// GET_DEVICE_INTERFACE_REPORT.
    GetDeviceInterfaceReport {
        /// Offset of the requested portion in the report.
        offset: u16,
        /// Maximum length of the requested portion.
        length: u16,
    },
    /// GET_DEVICE_INTERFACE_STATE (no body).
    GetDeviceInterfaceState,
    /// START_INTERFACE_REQUEST.
    StartInterface {
        /// The nonce from LOCK_INTERFACE_RESPONSE.
        nonce: Nonce,
    },
    /// STOP_INTERFACE_REQUEST (no body).
    StopInterface,
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

/// A TDISP response; variable-length parts borrow from the decoded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Response<'a> {
    /// TDISP_VERSION: `u8 count` followed by `count` version bytes.
    Version {
        /// Supported versions.
        versions: &'a [u8],
    },
    /// TDISP_CAPABILITIES.
    Capabilities(Capabilities),
    /// LOCK_INTERFACE_RESPONSE.
    LockInterface {
        /// The start nonce.
        nonce: Nonce,
    },
    /// DEVICE_INTERFACE_REPORT: `u16 portion_length`, `u16 remainder_length`, portion.
    DeviceInterfaceReport {
        /// This portion of the report.
        portion: &'a [u8],
        /// Bytes of the report after this portion.
        remainder: u16,
    },
    /// DEVICE_INTERFACE_STATE.
    DeviceInterfaceState(State),
    /// START_INTERFACE_RESPONSE (no body).
    StartInterface,
    /// STOP_INTERFACE_RESPONSE (no body).
    StopInterface,
    /// TDISP_ERROR.
    Error {
        /// Error code (see [`ErrorCode`]).
        code: u32,
        /// Error data.
        data: u32,
    },
}

impl<'a> Response<'a> {
    /// Returns the message type of the response.
    pub(crate) fn message_type(&self) -> MessageType {
        match self {
            Self::Version { .. } => MessageType::Version,
            Self::Capabilities(_) => MessageType::Capabilities,
            Self::LockInterface { .. } => MessageType::LockInterfaceResponse,
            Self::DeviceInterfaceReport { .. } => MessageType::DeviceInterfaceReport,
            Self::DeviceInterfaceState(_) => MessageType::DeviceInterfaceState,
            Self::StartInterface => MessageType::StartInterfaceResponse,
            Self::StopInterface => MessageType::StopInterfaceResponse,
            Self::Error { .. } => MessageType::Error,
        }
    }

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
            Self::Error { code, data } => {
                w.u32(*code)?;
                w.u32(*data)
            }
        }
    }

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

/// Decodes a complete SPDM VENDOR_DEFINED_REQUEST; returns the interface ID and the request.
pub(crate) fn decode_request(msg: &[u8]) -> Result<(u32, Request), CodecError> {
    let tdisp = unwrap_spdm(msg, SPDM_VENDOR_DEFINED_REQUEST)?;
    let (hdr, body) = TdispHeader::decode(tdisp)?;
    if hdr.version != TDISP_VERSION {
        return Err(CodecError::VersionMismatch(hdr.version));
    }
    Ok((hdr.function_id, Request::decode(hdr.message_type, body)?))
}

/// Encodes `rsp` for interface `function_id` as a complete SPDM VENDOR_DEFINED_RESPONSE into
/// `buf`; returns the message length.
pub(crate) fn encode_response(
    function_id: u32,
    rsp: &Response<'_>,
    buf: &mut [u8],
) -> Result<usize, CodecError> {
    encode_message(
        SPDM_VENDOR_DEFINED_RESPONSE,
        rsp.message_type(),
        function_id,
        buf,
        |w| rsp.encode_body(w),
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

// ---------------------------------------------------------------------------------------------
// Interface report
// ---------------------------------------------------------------------------------------------

/// One MMIO range of an interface report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MmioRange {
    /// First page, in 4 KiB units, including the MMIO reporting offset.
    pub(crate) first_page: u64,
    /// Number of 4 KiB pages.
    pub(crate) number_of_pages: u32,
    /// [`range_attr`] bits.
    pub(crate) attributes: u16,
    /// Range ID: the BAR index.
    pub(crate) range_id: u16,
}

/// A device interface report.
///
/// Layout: `u16 interface_info`, `u16 reserved`, `u16 msi_x_message_control`,
/// `u16 lnr_control`, `u32 tph_control`, `u32 mmio_range_count`, `mmio_range_count` ranges of
/// `{u64 first_page, u32 number_of_pages, u16 attributes, u16 range_id}`,
/// `u32 device_specific_len`, `device_specific_len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InterfaceReport {
    /// [`interface_info`] bits.
    pub(crate) interface_info: u16,
    /// MSI-X message control register value.
    pub(crate) msi_x_message_control: u16,
    /// LN requester control register value.
    pub(crate) lnr_control: u16,
    /// TPH control register value.
    pub(crate) tph_control: u32,
    ranges: [MmioRange; MAX_RANGES],
    range_count: usize,
    device_specific: [u8; MAX_DEVICE_SPECIFIC],
    device_specific_len: usize,
}

impl Default for InterfaceReport {
    fn default() -> Self {
        Self::new()
    }
}

impl InterfaceReport {
    /// Returns an empty report.
    pub(crate) const fn new() -> Self {
        Self {
            interface_info: 0,
            msi_x_message_control: 0,
            lnr_control: 0,
            tph_control: 0,
            ranges: [MmioRange {
                first_page: 0,
                number_of_pages: 0,
                attributes: 0,
                range_id: 0,
            }; MAX_RANGES],
            range_count: 0,
            device_specific: [0; MAX_DEVICE_SPECIFIC],
            device_specific_len: 0,
        }
    }

    /// Returns the MMIO ranges.
    pub(crate) fn ranges(&self) -> &[MmioRange] {
        self.ranges.get(..self.range_count).unwrap_or(&[])
    }

    /// Returns the device-specific blob.
    pub(crate) fn device_specific(&self) -> &[u8] {
        self.device_specific
            .get(..self.device_specific_len)
            .unwrap_or(&[])
    }

    /// Appends an MMIO range.
    pub(crate) fn push_range(&mut self, range: MmioRange) -> Result<(), ReportError> {
        let count = self.range_count;
        let slot = self
            .ranges
            .get_mut(count)
            .ok_or(ReportError::TooManyRanges)?;
        *slot = range;
        self.range_count = count.saturating_add(1);
        Ok(())
    }

    /// Removes the last MMIO range, if any.
    pub(crate) fn pop_range(&mut self) -> Option<MmioRange> {
        let last = self.range_count.checked_sub(1)?;
        let range = self.ranges.get(last).copied();
        self.range_count = last;
        range
    }

    /// Replaces the device-specific blob.
    pub(crate) fn set_device_specific(&mut self, data: &[u8]) -> Result<(), ReportError> {
        let dst = self
            .device_specific
            .get_mut(..data.len())
            .ok_or(ReportError::DeviceSpecificTooLong)?;
        dst.copy_from_slice(data);
        self.device_specific_len = data.len();
        Ok(())
    }

    /// Returns the length of the encoded report.
    pub(crate) fn encoded_len(&self) -> usize {
        // At most MAX_REPORT_LEN: the ranges and the blob are bounded by construction.
        self.ranges()
            .len()
            .saturating_mul(REPORT_RANGE_LEN)
            .saturating_add(REPORT_FIXED_LEN + 4)
            .saturating_add(self.device_specific().len())
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
        Ok(w.pos)
    }

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
        report.set_device_specific(r.rest)?;
        Ok(report)
    }
}

/// A BAR of the device as the TSM (or the emulated bus) sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bar {
    /// BAR index; reported as the range ID.
    pub(crate) index: u16,
    /// Physical start address.
    pub(crate) start: u64,
    /// Length in bytes.
    pub(crate) len: u64,
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
            .checked_mul(PAGE_SIZE)
            .and_then(|addr| addr.checked_sub(mmio_reporting_offset));
        if start != Some(bar.start) {
            return Err(ReportCheckError::RangeOutsideBar { range_id });
        }
        // Cannot overflow: u32::MAX * 4096 < 2^44.
        if u64::from(range.number_of_pages) * PAGE_SIZE != bar.len {
            return Err(ReportCheckError::SizeMismatch { range_id });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Responder (device side)
// ---------------------------------------------------------------------------------------------

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
}

impl ReportCorruption {
    /// Returns the name used in debugfs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::RangeMismatch => "range",
            Self::RangeCount => "count",
            Self::Truncated => "truncated",
        }
    }

    /// Parses a debugfs name (see [`ReportCorruption::name`]).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [
            Self::None,
            Self::RangeMismatch,
            Self::RangeCount,
            Self::Truncated,
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

/// Device-side TDISP responder for one device interface.
///
/// Rules (TDISP 1.0 as used here):
/// - LOCK_INTERFACE only from CONFIG_UNLOCKED, which moves to CONFIG_LOCKED with a fresh nonce
///   and freezes the report; other states answer INVALID_INTERFACE_STATE.
/// - START_INTERFACE only from CONFIG_LOCKED with the matching nonce, which moves to RUN; a
///   wrong nonce answers INVALID_NONCE and keeps the state.
/// - STOP_INTERFACE from any state moves to CONFIG_UNLOCKED. In CONFIG_UNLOCKED it succeeds
///   and changes nothing (idempotent), so a TSM can always return a device to a known state.
/// - GET_DEVICE_INTERFACE_REPORT only in CONFIG_LOCKED and RUN.
/// - GET_DEVICE_INTERFACE_STATE, GET_TDISP_VERSION and GET_TDISP_CAPABILITIES in any state.
/// - A security-relevant configuration change in CONFIG_LOCKED or RUN moves to ERROR
///   ([`Responder::config_changed`]); only STOP leaves ERROR.
///
/// Requests are checked in this order: SPDM framing and TDISP header (INVALID_REQUEST),
/// version (VERSION_MISMATCH), message type (UNSUPPORTED_REQUEST), interface ID
/// (INVALID_INTERFACE), body (INVALID_REQUEST), an injected error, then the state machine.
/// INVALID_INTERFACE_STATE carries the current state as error data; other errors carry 0.
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
    pub(crate) fn lock_params(&self) -> LockParams {
        self.lock
    }

    /// Sets the device's BARs. Changing them while CONFIG_LOCKED or RUN is a configuration
    /// change and moves the interface to ERROR.
    pub(crate) fn set_bars(&mut self, bars: &[Bar]) -> Result<(), ConfigError> {
        let dst = self
            .bars
            .get_mut(..bars.len())
            .ok_or(ConfigError::TooManyBars)?;
        dst.copy_from_slice(bars);
        self.bar_count = bars.len();
        self.config_changed();
        Ok(())
    }

    /// Sets the device-specific blob reported by the next LOCK_INTERFACE.
    pub(crate) fn set_device_specific(&mut self, data: &[u8]) -> Result<(), ConfigError> {
        let dst = self
            .device_specific
            .get_mut(..data.len())
            .ok_or(ConfigError::DeviceSpecificTooLong)?;
        dst.copy_from_slice(data);
        self.device_specific_len = data.len();
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
    pub(crate) fn fail_next_start(&mut self) {
        self.fail_next_start = true;
    }

    /// Answers the next well-formed request with TDISP_ERROR `code` without acting on it
    /// (fault injection, one shot).
    pub(crate) fn fail_next_request(&mut self, code: ErrorCode) {
        self.pending_error = Some(code);
    }

    /// Handles one SPDM VENDOR_DEFINED_REQUEST and writes the SPDM VENDOR_DEFINED_RESPONSE
    /// to `response`; returns the response length.
    ///
    /// Every request gets a response or a TDISP_ERROR. The only exception is a `response`
    /// buffer shorter than [`MIN_RESPONSE_LEN`]: the request is then ignored (no state change)
    /// and 0 is returned. Report portions are clamped to what fits in `response`, so a buffer
    /// of [`MAX_MESSAGE_LEN`] bytes never truncates anything.
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
        let (function_id, outcome) = self.process(request, rng, &mut report, room);
        let rsp = outcome.unwrap_or_else(|(code, data)| Response::Error {
            code: code as u32,
            data,
        });
        // Cannot fail: every response but a report fits in MIN_RESPONSE_LEN, and report
        // portions are clamped to `room`.
        encode_response(function_id, &rsp, response).unwrap_or(0)
    }

    /// Decodes and executes `request`; returns the interface ID to answer with and the
    /// outcome. Errors name our own interface until the request's header is known, and echo
    /// the request's interface ID afterwards.
    fn process<'s>(
        &mut self,
        request: &[u8],
        rng: &mut impl FnMut(&mut [u8]),
        report: &'s mut [u8; MAX_REPORT_LEN],
        room: usize,
    ) -> (u32, Outcome<'s>) {
        let fail = |code| Err((code, 0));
        let Ok(tdisp) = unwrap_spdm(request, SPDM_VENDOR_DEFINED_REQUEST) else {
            return (self.function_id, fail(ErrorCode::InvalidRequest));
        };
        let Ok((hdr, body)) = TdispHeader::decode(tdisp) else {
            return (self.function_id, fail(ErrorCode::InvalidRequest));
        };
        let id = hdr.function_id;
        if hdr.version != TDISP_VERSION {
            return (id, fail(ErrorCode::VersionMismatch));
        }
        if !MessageType::from_u8(hdr.message_type).is_some_and(MessageType::is_request) {
            return (id, fail(ErrorCode::UnsupportedRequest));
        }
        if id != self.function_id {
            return (id, fail(ErrorCode::InvalidInterface));
        }
        let Ok(req) = Request::decode(hdr.message_type, body) else {
            return (id, fail(ErrorCode::InvalidRequest));
        };
        if let Some(code) = self.pending_error.take() {
            return (id, fail(code));
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
        (id, outcome)
    }

    fn wrong_state<'a>(&self) -> Outcome<'a> {
        Err((
            ErrorCode::InvalidInterfaceState,
            u32::from(self.state as u8),
        ))
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
            lock_flags_supported: lock_flags::ALL,
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
        if params.flags & !lock_flags::ALL != 0 || params.mmio_reporting_offset % PAGE_SIZE != 0 {
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

    /// Builds the report frozen by LOCK_INTERFACE: one range per BAR.
    fn build_report(&self, params: &LockParams) -> Result<InterfaceReport, (ErrorCode, u32)> {
        let bad_config = (ErrorCode::InvalidDeviceConfiguration, 0);
        let mut report = InterfaceReport::new();
        report.interface_info = interface_info::DMA_WITHOUT_PASID;
        if params.flags & lock_flags::NO_FW_UPDATE != 0 {
            report.interface_info |= interface_info::NO_UPDATE_AFTER_LOCK;
        }
        for bar in self.bars() {
            let pages = bar.len / PAGE_SIZE;
            if bar.start == 0
                || bar.len == 0
                || bar.start % PAGE_SIZE != 0
                || bar.len % PAGE_SIZE != 0
                || bar.start.checked_add(bar.len).is_none()
            {
                return Err(bad_config);
            }
            let number_of_pages = u32::try_from(pages).map_err(|_| bad_config)?;
            let reported = bar
                .start
                .checked_add(params.mmio_reporting_offset)
                .ok_or((ErrorCode::InvalidRequest, 0))?;
            report
                .push_range(MmioRange {
                    first_page: reported / PAGE_SIZE,
                    number_of_pages,
                    attributes: 0,
                    range_id: bar.index,
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

// ---------------------------------------------------------------------------------------------
// Requester (TSM side)
// ---------------------------------------------------------------------------------------------

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

    /// Parses TDISP_CAPABILITIES.
    pub(crate) fn parse_capabilities(&self, rsp: &[u8]) -> Result<Capabilities, RequesterError> {
        match self.check_response(rsp, MessageType::Capabilities)? {
            Response::Capabilities(caps) => Ok(caps),
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

    /// Fetches and decodes the whole interface report in portions of at most `page` bytes.
    ///
    /// `xfer` sends one request and fills the response buffer, returning the response length;
    /// its errors are passed through, protocol errors are converted with `From`.
    pub(crate) fn fetch_report<E: From<RequesterError>>(
        &self,
        page: u16,
        mut xfer: impl FnMut(&[u8], &mut [u8]) -> Result<usize, E>,
    ) -> Result<InterfaceReport, E> {
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
        Ok(assembler.report()?)
    }

    fn unexpected(&self, expected: MessageType, got: &Response<'_>) -> RequesterError {
        RequesterError::UnexpectedResponse {
            expected: expected as u8,
            got: got.message_type() as u8,
        }
    }
}
