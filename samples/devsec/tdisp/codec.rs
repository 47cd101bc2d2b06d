// SPDX-License-Identifier: GPL-2.0

//! TDISP wire format shared by both ends: SPDM VENDOR_DEFINED framing, the TDISP header,
//! message types, error codes, states and the byte cursors the encoders and decoders use.
//!
//! This is the part of the devsec TDISP library that both the device side (`responder`)
//! and the TSM side (`requester`) need. Each side only ever encodes one direction and
//! decodes the other, so the direction-specific halves of the codec live next to the side
//! that uses them: request decoding and response encoding in `responder.rs`, request
//! encoding and response decoding in `requester.rs`.
//!
//! # Files and users
//!
//! The library is shared by source, not as a crate: each user declares an inline `tdisp`
//! module naming exactly the files it needs and re-exports their items, so nothing it does
//! not use is compiled into it.
//!
//! | file           | contents                                              | users        |
//! |----------------|-------------------------------------------------------|--------------|
//! | `codec.rs`     | framing, header, message types, shared codec parts    | all          |
//! | `doe.rs`       | DOE object header, DOE Discovery (device side)        | bus, tests   |
//! | `report.rs`    | interface report type and limits, `Bar`               | all          |
//! | `responder.rs` | device half of the codec, `Responder`                 | bus, tests   |
//! | `requester.rs` | TSM half of the codec, report check, `Requester`      | TSM, tests   |
//!
//! A few items of the shared files are only needed by one side; they carry
//! `#[cfg(tdisp_responder)]` or `#[cfg(tdisp_requester)]`, and hooks only the KUnit suite
//! uses carry `#[cfg(tdisp_kunit)]`. `samples/devsec/Makefile` sets `tdisp_responder` for
//! the bus, `tdisp_requester` for the TSM and all three for the KUnit suite.
//!
//! # Layering
//!
//! ```text
//! DOE data object        dword0 = vendor[15:0] | type[23:16], dword1 = length in dwords
//! |                      (type 0 Discovery, 1 CMA/SPDM; see doe.rs)
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
//! The whole library is safe Rust using only `core`: no allocation, no `unsafe`, no kernel
//! imports, so the same files build into the kernel modules, the KUnit suite and a host
//! crate. Input is untrusted: parsers never index out of bounds, never panic and use checked
//! arithmetic on every length field. Buffers are fixed size; the limits are
//! [`super::report::MAX_RANGES`], [`super::report::MAX_DEVICE_SPECIFIC`],
//! [`super::report::MAX_REPORT_LEN`] and [`super::report::MAX_MESSAGE_LEN`].

use core::hint::black_box;

/// Length of a start nonce.
pub(crate) const NONCE_LEN: usize = 32;

/// A start nonce, handed out by LOCK_INTERFACE and required by START_INTERFACE.
pub(crate) type Nonce = [u8; NONCE_LEN];

/// PCI-SIG vendor ID, used for DOE object types and as SPDM VendorID.
pub(crate) const VENDOR_ID_PCI_SIG: u16 = 0x0001;

/// SPDM version byte the requester sends (1.2) and requires in responses. The responder
/// accepts any 1.x request and answers in the version of the request.
pub(crate) const SPDM_VERSION: u8 = 0x12;

/// SPDM ERROR response code. An SPDM responder answers with it what it cannot hand to a
/// vendor-defined protocol: a malformed or unsupported VENDOR_DEFINED_REQUEST header.
pub(crate) const SPDM_ERROR: u8 = 0x7f;

/// SPDM ERROR error codes (`param1` of an SPDM ERROR message) used by this library.
pub(crate) mod spdm_error {
    /// The request is malformed.
    #[cfg(tdisp_responder)]
    pub(crate) const INVALID_REQUEST: u8 = 0x01;
    /// The request (error data: its request code) or its vendor protocol is not supported.
    pub(crate) const UNSUPPORTED_REQUEST: u8 = 0x07;
    /// The requested SPDM major version is not supported.
    pub(crate) const VERSION_MISMATCH: u8 = 0x41;
}

/// Longest extended error data of an SPDM ERROR message (SPDM 1.2).
#[cfg(tdisp_requester)]
pub(crate) const SPDM_MAX_EXTENDED_ERROR: usize = 32;

/// SPDM VENDOR_DEFINED_REQUEST code.
pub(crate) const SPDM_VENDOR_DEFINED_REQUEST: u8 = 0xfe;

/// SPDM VENDOR_DEFINED_RESPONSE code.
pub(crate) const SPDM_VENDOR_DEFINED_RESPONSE: u8 = 0x7e;

/// SPDM StandardID of PCI-SIG.
pub(crate) const SPDM_STANDARD_ID_PCI_SIG: u16 = 0x0003;

/// Length of the SPDM VENDOR_DEFINED header, up to and including the payload length.
pub(crate) const SPDM_VD_HEADER_LEN: usize = 11;

/// Protocol ID of TDISP inside a PCI-SIG VENDOR_DEFINED payload.
pub(crate) const PROTOCOL_TDISP: u8 = 0x01;

/// The TDISP version (1.0) carried in every TDISP header.
pub(crate) const TDISP_VERSION: u8 = 0x10;

/// Length of the TDISP message header.
pub(crate) const TDISP_HEADER_LEN: usize = 16;

/// Bytes in front of a TDISP body: SPDM header, protocol ID, TDISP header.
pub(crate) const TDISP_OVERHEAD: usize = SPDM_VD_HEADER_LEN + 1 + TDISP_HEADER_LEN;

/// Builds a TDISP `function_id`: requester ID in bits 15:0, segment in 23:16, bit 24 set when
/// the segment is valid.
pub(crate) const fn function_id(requester_id: u16, segment: Option<u8>) -> u32 {
    match segment {
        Some(seg) => (requester_id as u32) | ((seg as u32) << 16) | (1 << 24),
        None => requester_id as u32,
    }
}

/// A TDISP interface ID as carried in every TDISP header: the `function_id` (see
/// [`function_id`]) and 8 reserved bytes, which a well-formed ID has all zero. Both sides
/// compare all 12 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct InterfaceId {
    /// Requester ID, segment and segment-valid bit.
    pub(crate) function_id: u32,
    /// The reserved bytes 4..12, little endian.
    pub(crate) reserved: u64,
}

impl InterfaceId {
    /// Returns the well-formed interface ID of `function_id` (reserved bytes zero).
    pub(crate) const fn new(function_id: u32) -> Self {
        Self {
            function_id,
            reserved: 0,
        }
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
}

/// TDISP_ERROR error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ErrorCode {
    /// Malformed request or request with invalid fields.
    InvalidRequest = 0x1,
    /// The responder cannot handle the request now; retry later.
    #[cfg(tdisp_requester)]
    Busy = 0x3,
    /// The request is not allowed in the current interface state.
    InvalidInterfaceState = 0x4,
    /// Unspecified failure.
    Unspecified = 0x5,
    /// Unknown or unsupported request.
    UnsupportedRequest = 0x7,
    /// The TDISP version in the header is not supported.
    VersionMismatch = 0x41,
    /// A vendor-defined error, described by the extended error data.
    #[cfg(any(tdisp_requester, tdisp_kunit))]
    VendorSpecificError = 0xff,
    /// The interface ID does not name an interface of this device.
    InvalidInterface = 0x101,
    /// START_INTERFACE carried the wrong nonce.
    InvalidNonce = 0x102,
    /// The device could not generate a nonce.
    InsufficientEntropy = 0x103,
    /// The device configuration does not allow locking the interface.
    InvalidDeviceConfiguration = 0x104,
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
    #[cfg(tdisp_responder)]
    pub(crate) const SYSTEM_CACHE_LINE_SIZE: u16 = 0x2;
    /// Lock the MSI-X table and PBA: they become TEE memory of the interface.
    pub(crate) const LOCK_MSIX: u16 = 0x4;
    /// Bind peer-to-peer streams (not implemented by the emulated device).
    #[cfg(tdisp_kunit)]
    pub(crate) const BIND_P2P: u16 = 0x8;
    /// Redirect all requests to the host (not implemented by the emulated device).
    #[cfg(tdisp_kunit)]
    pub(crate) const ALL_REQUEST_REDIRECT: u16 = 0x10;
}

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
    #[cfg(tdisp_requester)]
    InvalidField,
}

impl CodecError {
    /// Returns the SPDM ERROR code and error data a responder answers for a VENDOR_DEFINED
    /// request that fails to unwrap with this error ([`unwrap_spdm`]): an unsupported major
    /// version is VERSION_MISMATCH; another request code, or a vendor protocol other than
    /// PCI-SIG TDISP, is UNSUPPORTED_REQUEST with the request code as data; anything else
    /// is INVALID_REQUEST.
    #[cfg(tdisp_responder)]
    pub(crate) fn spdm_error(self) -> (u8, u8) {
        match self {
            Self::BadSpdmVersion(_) => (spdm_error::VERSION_MISMATCH, 0),
            Self::BadSpdmCode(code) => (spdm_error::UNSUPPORTED_REQUEST, code),
            Self::BadStandardId(_)
            | Self::BadVendorIdLen(_)
            | Self::BadVendorId(_)
            | Self::BadProtocol(_) => {
                (spdm_error::UNSUPPORTED_REQUEST, SPDM_VENDOR_DEFINED_REQUEST)
            }
            _ => (spdm_error::INVALID_REQUEST, 0),
        }
    }
}

/// Bounds-checked little-endian reader over untrusted bytes.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        let head = self.rest.get(..len).ok_or(CodecError::Truncated)?;
        self.rest = self.rest.get(len..).unwrap_or(&[]);
        Ok(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        self.take(N)?.try_into().map_err(|_| CodecError::Truncated)
    }

    pub(super) fn u8(&mut self) -> Result<u8, CodecError> {
        let [byte] = self.array()?;
        Ok(byte)
    }

    pub(super) fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(super) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Returns the bytes not read yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(super) fn finish(&self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes)
        }
    }
}

/// Bounds-checked little-endian writer.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(super) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(super) fn put(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
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

    /// Returns the number of bytes written so far.
    pub(super) fn len(&self) -> usize {
        self.pos
    }

    pub(super) fn u8(&mut self, v: u8) -> Result<(), CodecError> {
        self.put(&[v])
    }

    pub(super) fn u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    pub(super) fn u32(&mut self, v: u32) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    pub(super) fn u64(&mut self, v: u64) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    pub(super) fn patch(&mut self, at: usize, bytes: &[u8]) -> Result<(), CodecError> {
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
pub(super) fn nonce_eq(a: &Nonce, b: &Nonce) -> bool {
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        acc |= x ^ y;
    }
    black_box(acc) == 0
}

/// Writes an SPDM `version` VENDOR_DEFINED message with `code` carrying a TDISP message of
/// `message_type` for interface `id`; `body` writes the TDISP body.
pub(super) fn encode_message(
    version: u8,
    code: u8,
    message_type: MessageType,
    id: InterfaceId,
    buf: &mut [u8],
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), CodecError>,
) -> Result<usize, CodecError> {
    let mut w = Writer::new(buf);
    w.u8(version)?;
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
    w.u32(id.function_id)?;
    w.u64(id.reserved)?;
    body(&mut w)?;
    let len = w.len();
    let payload = len
        .checked_sub(SPDM_VD_HEADER_LEN)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(CodecError::TooLong)?;
    w.patch(SPDM_VD_HEADER_LEN - 2, &payload.to_le_bytes())?;
    Ok(len)
}

/// Returns whether `version` is an SPDM 1.x version byte.
const fn is_spdm_1(version: u8) -> bool {
    version >> 4 == 1
}

/// Returns the SPDM version of `msg` if it is a 1.x version, the version a responder answers
/// in.
#[cfg(tdisp_responder)]
pub(crate) fn spdm_version_of(msg: &[u8]) -> Option<u8> {
    msg.first().copied().filter(|&version| is_spdm_1(version))
}

/// Unwraps an SPDM 1.x VENDOR_DEFINED message with `code` and returns the TDISP message in it.
///
/// `msg` may carry up to three bytes of DOE dword padding after the SPDM payload; more
/// trailing bytes are rejected.
pub(crate) fn unwrap_spdm(msg: &[u8], code: u8) -> Result<&[u8], CodecError> {
    let mut r = Reader::new(msg);
    let version = r.u8()?;
    if !is_spdm_1(version) {
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
    Ok(p.rest())
}

/// The TDISP message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TdispHeader {
    /// TDISP version, [`TDISP_VERSION`] for well-formed messages.
    pub(crate) version: u8,
    /// Raw message type (see [`MessageType`]).
    pub(crate) message_type: u8,
    /// The interface ID, all 12 bytes.
    pub(crate) interface_id: InterfaceId,
}

impl TdispHeader {
    /// Splits a TDISP message into header and body. The reserved field after the message
    /// type is ignored, the version is not checked, so the caller can answer
    /// VERSION_MISMATCH, and the interface ID is returned whole for the caller to compare.
    pub(crate) fn decode(msg: &[u8]) -> Result<(Self, &[u8]), CodecError> {
        let mut r = Reader::new(msg);
        let version = r.u8()?;
        let message_type = r.u8()?;
        let _reserved = r.u16()?;
        let function_id = r.u32()?;
        let reserved = r.u64()?;
        Ok((
            Self {
                version,
                message_type,
                interface_id: InterfaceId {
                    function_id,
                    reserved,
                },
            },
            r.rest(),
        ))
    }
}

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
        /// Extended error data: only VENDOR_SPECIFIC_ERROR (0xff) carries any, `u8
        /// registry_id`, `u8 vendor_id_len`, the vendor ID and vendor error data.
        ext: &'a [u8],
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
}
