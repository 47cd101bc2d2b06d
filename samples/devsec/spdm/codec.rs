// SPDX-License-Identifier: GPL-2.0

//! SPDM 1.2 wire format shared by both ends: message codes, error codes, capability and
//! algorithm bits, the requests, the signing context and the byte cursors the encoders and
//! decoders use.
//!
//! This is the part of the devsec SPDM library that both the device side (`responder`) and
//! the TSM side (`requester`) need. As in the TDISP library next door (`tdisp/`), each side
//! only encodes one direction and decodes the other, so request decoding and response
//! encoding live in `responder.rs`, request encoding and response decoding in
//! `requester.rs`. The transcripts that SPDM signs, and the hash trait they are computed
//! with, are in `transcript.rs`.
//!
//! # Files and users
//!
//! The library is shared by source, not as a crate: each user declares an inline `spdm`
//! module naming the files it needs and re-exports their items.
//!
//! | file            | contents                                                | users  |
//! |-----------------|---------------------------------------------------------|--------|
//! | `codec.rs`      | codes, constants, requests, signing context, cursors    | all    |
//! | `transcript.rs` | `Hash`, VCA buffer, M1/M2 and L1/L2 running hashes      | all    |
//! | `responder.rs`  | device half of the codec, `DeviceIdentity`, `Responder` | device |
//! | `requester.rs`  | TSM half of the codec, `Verifier`, `Requester`          | TSM    |
//!
//! Items only one side needs carry `#[cfg(spdm_responder)]` or `#[cfg(spdm_requester)]`,
//! hooks only the KUnit suites use `#[cfg(spdm_kunit)]`, like the `tdisp_*` cfgs.
//!
//! # Scope
//!
//! SPDM 1.2 (DMTF DSP0274 1.2) without sessions: GET_VERSION, GET_CAPABILITIES,
//! NEGOTIATE_ALGORITHMS, GET_DIGESTS, GET_CERTIFICATE, CHALLENGE and GET_MEASUREMENTS, and
//! ERROR. One certificate slot (0), one algorithm set: BaseAsymAlgo TPM_ALG_RSASSA_3072,
//! BaseHashAlgo TPM_ALG_SHA_384, MeasurementSpecification DMTF, MeasurementHashAlgo
//! TPM_ALG_SHA_384. No chunking (CHUNK_CAP), no extended algorithms, no opaque data of our
//! own.
//!
//! # Wire facts relied on
//!
//! Checked against DMTF libspdm, `include/industry_standard/spdm.h` (the SPDM 1.2
//! definitions) and `library/spdm_crypt_lib/libspdm_crypt_asym.c` (signing context). All
//! multi-byte fields are little endian; every message starts with `u8 SPDMVersion, u8
//! RequestResponseCode, u8 Param1, u8 Param2`.
//!
//! - Request codes: GET_DIGESTS 0x81, GET_CERTIFICATE 0x82, CHALLENGE 0x83, GET_VERSION 0x84,
//!   GET_MEASUREMENTS 0xE0, GET_CAPABILITIES 0xE1, NEGOTIATE_ALGORITHMS 0xE3,
//!   VENDOR_DEFINED_REQUEST 0xFE, RESPOND_IF_READY 0xFF. Response codes: DIGESTS 0x01,
//!   CERTIFICATE 0x02, CHALLENGE_AUTH 0x03, VERSION 0x04, MEASUREMENTS 0x60, CAPABILITIES
//!   0x61, ALGORITHMS 0x63, VENDOR_DEFINED_RESPONSE 0x7E, ERROR 0x7F.
//! - GET_VERSION is always sent as version 0x10. VERSION: `u8 reserved, u8 count`, then
//!   `count` u16 entries, bits 15:12 major, 11:8 minor, 7:4 update, 3:0 alpha (1.2 = 0x1200).
//! - GET_CAPABILITIES and CAPABILITIES (1.2, 20 bytes): `u8 reserved, u8 CTExponent, u16
//!   reserved, u32 Flags, u32 DataTransferSize, u32 MaxSPDMmsgSize`. DataTransferSize is at
//!   least 42 in 1.2. Response flags: CACHE 0x1, CERT 0x2, CHAL 0x4, MEAS 0x18 (0x8 without,
//!   0x10 with signature), MEAS_FRESH 0x20, ..., CHUNK 0x20000.
//! - NEGOTIATE_ALGORITHMS (32 bytes fixed, Param1 = number of AlgStructs): `u16 Length, u8
//!   MeasurementSpecification, u8 OtherParamsSupport, u32 BaseAsymAlgo, u32 BaseHashAlgo, u8
//!   reserved[12], u8 ExtAsymCount, u8 ExtHashCount, u16 reserved`, 4-byte extended
//!   algorithms, then AlgStructs `u8 AlgType, u8 AlgCount` (bits 7:4 fixed byte count, 2;
//!   bits 3:0 extended count), `u16 supported`, extended algorithms. AlgTypes: DHE 2, AEAD
//!   3, ReqBaseAsymAlg 4, KeySchedule 5. The request is at most 128 bytes, with at most 20
//!   extended algorithms.
//! - ALGORITHMS (36 bytes fixed): `u16 Length, u8 MeasurementSpecificationSel, u8
//!   OtherParamsSelection, u32 MeasurementHashAlgo, u32 BaseAsymSel, u32 BaseHashSel, u8
//!   reserved[12], u8 ExtAsymSelCount, u8 ExtHashSelCount, u16 reserved`, then the selected
//!   extended algorithms and AlgStructs. BaseAsymAlgo RSASSA_3072 = 0x4, BaseHashAlgo SHA_384
//!   = 0x2, MeasurementSpecification DMTF = 0x1, MeasurementHashAlgo SHA_384 = 0x4.
//! - GET_DIGESTS (4 bytes); DIGESTS: Param2 slot mask, one digest per slot in the mask.
//! - GET_CERTIFICATE: Param1 bits 3:0 slot, `u16 Offset, u16 Length`. CERTIFICATE: Param1
//!   slot, `u16 PortionLength, u16 RemainderLength`, the portion. The chain: `u16 Length`
//!   (of the whole chain, this header included), `u16 reserved`, the root certificate hash,
//!   the DER certificates, root first, leaf last.
//! - CHALLENGE: Param1 slot, Param2 measurement summary hash type (0 none, 1 TCB, 0xFF all),
//!   32-byte nonce. CHALLENGE_AUTH: Param1 bits 3:0 slot (bit 7, basic mutual
//!   authentication, deprecated in 1.2), Param2 slot mask, cert chain hash, the
//!   responder's 32-byte nonce, measurement summary hash (absent for type 0), `u16
//!   OpaqueDataLength` (at most 1024), opaque data, signature.
//! - GET_MEASUREMENTS: Param1 bit 0 signature requested (bit 1 raw bit stream), Param2
//!   operation (0 count, 0xFF all, else an index); with a signature requested a 32-byte
//!   nonce and `u8 SlotIDParam` follow. MEASUREMENTS: Param1 total count (operation 0),
//!   Param2 bits 3:0 slot, `u8 NumberOfBlocks, u24 MeasurementRecordLength`, the record,
//!   the responder's 32-byte nonce, `u16 OpaqueDataLength`, opaque data, the signature if
//!   requested. A block: `u8 Index, u8 MeasurementSpecification, u16 MeasurementSize`, and
//!   for DMTF `u8 DMTFSpecMeasurementValueType, u16 DMTFSpecMeasurementValueSize`, value.
//! - ERROR: Param1 error code, Param2 error data, up to 32 bytes extended error data.
//! - SPDM 1.2 signatures are over `combined_spdm_prefix || Hash(M)` where the 100-byte
//!   prefix is "dmtf-spdm-v1.2.*" four times, then the signing context string right
//!   aligned in 36 bytes (zero padding in front): "responder-challenge_auth signing" (32
//!   bytes) or "responder-measurements signing" (30 bytes).
//!
//! # Choices of this library
//!
//! Where the specification leaves a choice, or where it was not checked against a
//! reference, this library decides as follows:
//!
//! - NEGOTIATE_ALGORITHMS without RSASSA-3072 or SHA-384 is InvalidRequest (no common
//!   algorithm); without DMTF measurements it selects none and GET_MEASUREMENTS becomes
//!   UnexpectedRequest.
//! - The TCB measurement summary hash covers the blocks the embedder marks as TCB, the
//!   "all" summary every block, each as MEASUREMENTS serves it (headers included). That is
//!   how libspdm's sample device library computes it
//!   (`os_stub/spdm_device_secret_lib_sample`), which counts the immutable-ROM blocks as
//!   TCB; which blocks are TCB is the device's to say.
//! - GET_CERTIFICATE with Length 0 or an Offset at or past the end is InvalidRequest.
//! - RESPOND_IF_READY (never needed: the responder never answers ResponseNotReady) and
//!   every session, chunking or provisioning request is UnsupportedRequest.
//! - VENDOR_DEFINED_REQUEST after ALGORITHMS is UnsupportedRequest here: the device hands
//!   it to its TDISP responder instead.
//! - ERROR is sent in 1.0 before VERSION and for GET_VERSION, in 1.2 after.
//!
//! # Robustness
//!
//! As the TDISP library: safe Rust using only `core`, no allocation, no `unsafe`, no panics
//! on untrusted input, checked arithmetic on every length field, fixed-size buffers
//! ([`MAX_MESSAGE_LEN`], `transcript::MAX_VCA_LEN`, `requester::MAX_CERT_CHAIN_LEN`).

/// SPDM version 1.0, the version GET_VERSION and VERSION are always sent in.
pub(crate) const SPDM_VERSION_10: u8 = 0x10;

/// SPDM version 1.2, the only version negotiated.
pub(crate) const SPDM_VERSION_12: u8 = 0x12;

/// The VERSION entry of SPDM 1.2 (major 1, minor 2, update and alpha 0).
#[cfg(spdm_responder)]
pub(crate) const VERSION_ENTRY_12: u16 = 0x1200;

/// Length of the SPDM message header.
pub(crate) const HEADER_LEN: usize = 4;

/// Length of a nonce.
pub(crate) const NONCE_LEN: usize = 32;

/// A CHALLENGE, CHALLENGE_AUTH, GET_MEASUREMENTS or MEASUREMENTS nonce.
pub(crate) type Nonce = [u8; NONCE_LEN];

/// Length of a SHA-384 digest, the negotiated hash.
pub(crate) const HASH_LEN: usize = 48;

/// A digest of the negotiated hash.
pub(crate) type Digest = [u8; HASH_LEN];

/// Length of an RSASSA-3072 signature.
pub(crate) const SIGNATURE_LEN: usize = 384;

/// An RSASSA-3072 signature.
pub(crate) type Signature = [u8; SIGNATURE_LEN];

/// Longest opaque data a CHALLENGE_AUTH or MEASUREMENTS may carry.
#[cfg(spdm_requester)]
pub(crate) const MAX_OPAQUE_LEN: usize = 1024;

/// Smallest DataTransferSize of SPDM 1.2.
pub(crate) const MIN_DATA_TRANSFER_SIZE: u32 = 42;

/// Longest NEGOTIATE_ALGORITHMS request of SPDM 1.2.
pub(crate) const MAX_NEGOTIATE_ALGORITHMS_LEN: usize = 128;

/// Longest ALGORITHMS response either side handles (the responder sends at most 52 bytes).
pub(crate) const MAX_ALGORITHMS_LEN: usize = 128;

/// Most extended algorithms a NEGOTIATE_ALGORITHMS request may carry in total.
#[cfg(spdm_responder)]
pub(crate) const MAX_EXT_ALG_COUNT: usize = 20;

/// Most AlgStructs: one of each type, DHE, AEAD, ReqBaseAsymAlg and KeySchedule.
pub(crate) const MAX_ALG_STRUCTS: usize = 4;

/// Most VERSION entries handled (SPDM 1.0 to 1.3 are 4).
pub(crate) const MAX_VERSION_ENTRIES: usize = 16;

/// Most bytes of DOE dword padding a message may carry after its end: over PCIe DOE an
/// SPDM message fills whole dwords, and only its fields tell where it ends. The padding is
/// not part of the message: it is neither checked nor hashed into a transcript.
pub(crate) const MAX_PADDING: usize = 3;

/// Longest extended error data of an ERROR message.
#[cfg(spdm_requester)]
pub(crate) const MAX_EXTENDED_ERROR_LEN: usize = 32;

/// Longest SPDM message either side sends or accepts: the DataTransferSize and
/// MaxSPDMmsgSize the responder announces.
pub(crate) const MAX_MESSAGE_LEN: usize = 2048;

/// Length of the fixed part of NEGOTIATE_ALGORITHMS.
#[cfg(spdm_kunit)]
pub(crate) const NEGOTIATE_ALGORITHMS_FIXED_LEN: usize = 32;

/// Length of the fixed part of ALGORITHMS.
pub(crate) const ALGORITHMS_FIXED_LEN: usize = 36;

/// Length of GET_CAPABILITIES and CAPABILITIES in SPDM 1.2.
pub(crate) const CAPABILITIES_LEN: usize = 20;

/// Length of the header of a DMTF measurement block: common header (`u8 index, u8 spec,
/// u16 size`) and DMTF header (`u8 type, u16 value size`).
#[cfg(spdm_responder)]
pub(crate) const MEASUREMENT_BLOCK_HEADER_LEN: usize = 7;

/// SPDM request and response codes. A requester only constructs the ones it sends and
/// compares the ones it receives, so some are unused there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[cfg_attr(not(any(spdm_responder, spdm_kunit)), allow(dead_code))]
pub(crate) enum Code {
    /// GET_DIGESTS request.
    GetDigests = 0x81,
    /// GET_CERTIFICATE request.
    GetCertificate = 0x82,
    /// CHALLENGE request.
    Challenge = 0x83,
    /// GET_VERSION request.
    GetVersion = 0x84,
    /// GET_MEASUREMENTS request.
    GetMeasurements = 0xe0,
    /// GET_CAPABILITIES request.
    GetCapabilities = 0xe1,
    /// NEGOTIATE_ALGORITHMS request.
    NegotiateAlgorithms = 0xe3,
    /// VENDOR_DEFINED_REQUEST.
    VendorDefinedRequest = 0xfe,
    /// DIGESTS response.
    Digests = 0x01,
    /// CERTIFICATE response.
    Certificate = 0x02,
    /// CHALLENGE_AUTH response.
    ChallengeAuth = 0x03,
    /// VERSION response.
    Version = 0x04,
    /// MEASUREMENTS response.
    Measurements = 0x60,
    /// CAPABILITIES response.
    Capabilities = 0x61,
    /// ALGORITHMS response.
    Algorithms = 0x63,
    /// VENDOR_DEFINED_RESPONSE.
    VendorDefinedResponse = 0x7e,
    /// ERROR response.
    Error = 0x7f,
}

impl Code {
    /// Returns the code with value `code`, if this library knows it.
    #[cfg(any(spdm_responder, spdm_kunit))]
    pub(crate) fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0x81 => Self::GetDigests,
            0x82 => Self::GetCertificate,
            0x83 => Self::Challenge,
            0x84 => Self::GetVersion,
            0xe0 => Self::GetMeasurements,
            0xe1 => Self::GetCapabilities,
            0xe3 => Self::NegotiateAlgorithms,
            0xfe => Self::VendorDefinedRequest,
            0x01 => Self::Digests,
            0x02 => Self::Certificate,
            0x03 => Self::ChallengeAuth,
            0x04 => Self::Version,
            0x60 => Self::Measurements,
            0x61 => Self::Capabilities,
            0x63 => Self::Algorithms,
            0x7e => Self::VendorDefinedResponse,
            0x7f => Self::Error,
            _ => return None,
        })
    }

    /// Returns true for request (requester to responder) codes.
    #[cfg(spdm_responder)]
    pub(crate) fn is_request(self) -> bool {
        (self as u8) & 0x80 != 0
    }

    /// Returns the specification name of the message.
    #[cfg(spdm_kunit)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetDigests => "GET_DIGESTS",
            Self::GetCertificate => "GET_CERTIFICATE",
            Self::Challenge => "CHALLENGE",
            Self::GetVersion => "GET_VERSION",
            Self::GetMeasurements => "GET_MEASUREMENTS",
            Self::GetCapabilities => "GET_CAPABILITIES",
            Self::NegotiateAlgorithms => "NEGOTIATE_ALGORITHMS",
            Self::VendorDefinedRequest => "VENDOR_DEFINED_REQUEST",
            Self::Digests => "DIGESTS",
            Self::Certificate => "CERTIFICATE",
            Self::ChallengeAuth => "CHALLENGE_AUTH",
            Self::Version => "VERSION",
            Self::Measurements => "MEASUREMENTS",
            Self::Capabilities => "CAPABILITIES",
            Self::Algorithms => "ALGORITHMS",
            Self::VendorDefinedResponse => "VENDOR_DEFINED_RESPONSE",
            Self::Error => "ERROR",
        }
    }
}

/// SPDM ERROR codes (Param1 of ERROR) of SPDM 1.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ErrorCode {
    /// The request is malformed or has invalid fields.
    InvalidRequest = 0x01,
    /// The responder cannot handle the request now; retry.
    #[cfg(spdm_requester)]
    Busy = 0x03,
    /// The request is not allowed in the current connection state.
    UnexpectedRequest = 0x04,
    /// Unspecified failure.
    Unspecified = 0x05,
    /// Decryption failed (sessions only).
    #[cfg(spdm_requester)]
    DecryptError = 0x06,
    /// The request code (error data) is not supported.
    UnsupportedRequest = 0x07,
    /// A request is already being processed.
    #[cfg(spdm_requester)]
    RequestInFlight = 0x08,
    /// The response code of an encapsulated response is invalid.
    #[cfg(spdm_requester)]
    InvalidResponseCode = 0x09,
    /// No more sessions.
    #[cfg(spdm_requester)]
    SessionLimitExceeded = 0x0a,
    /// The request needs a session.
    #[cfg(spdm_requester)]
    SessionRequired = 0x0b,
    /// The device needs a reset to complete the request.
    #[cfg(spdm_requester)]
    ResetRequired = 0x0c,
    /// The response does not fit the requester's buffers.
    #[cfg(spdm_requester)]
    ResponseTooLarge = 0x0d,
    /// The request does not fit the responder's buffers.
    #[cfg(spdm_requester)]
    RequestTooLarge = 0x0e,
    /// The response must be fetched in chunks.
    #[cfg(spdm_requester)]
    LargeResponse = 0x0f,
    /// A message was lost.
    #[cfg(spdm_requester)]
    MessageLost = 0x10,
    /// The requested version is not supported, or not the negotiated one.
    VersionMismatch = 0x41,
    /// The response is not ready; ask again with RESPOND_IF_READY.
    #[cfg(spdm_requester)]
    ResponseNotReady = 0x42,
    /// The requester must start over with GET_VERSION.
    #[cfg(spdm_requester)]
    RequestResynch = 0x43,
    /// A vendor-defined error.
    #[cfg(spdm_requester)]
    VendorDefined = 0xff,
}

impl ErrorCode {
    /// Returns the error code with value `code`, if SPDM 1.2 defines it.
    #[cfg(spdm_requester)]
    pub(crate) fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::InvalidRequest,
            0x03 => Self::Busy,
            0x04 => Self::UnexpectedRequest,
            0x05 => Self::Unspecified,
            0x06 => Self::DecryptError,
            0x07 => Self::UnsupportedRequest,
            0x08 => Self::RequestInFlight,
            0x09 => Self::InvalidResponseCode,
            0x0a => Self::SessionLimitExceeded,
            0x0b => Self::SessionRequired,
            0x0c => Self::ResetRequired,
            0x0d => Self::ResponseTooLarge,
            0x0e => Self::RequestTooLarge,
            0x0f => Self::LargeResponse,
            0x10 => Self::MessageLost,
            0x41 => Self::VersionMismatch,
            0x42 => Self::ResponseNotReady,
            0x43 => Self::RequestResynch,
            0xff => Self::VendorDefined,
            _ => return None,
        })
    }

    /// Returns the specification name of the error.
    #[cfg(spdm_requester)]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::Busy => "Busy",
            Self::UnexpectedRequest => "UnexpectedRequest",
            Self::Unspecified => "Unspecified",
            Self::DecryptError => "DecryptError",
            Self::UnsupportedRequest => "UnsupportedRequest",
            Self::RequestInFlight => "RequestInFlight",
            Self::InvalidResponseCode => "InvalidResponseCode",
            Self::SessionLimitExceeded => "SessionLimitExceeded",
            Self::SessionRequired => "SessionRequired",
            Self::ResetRequired => "ResetRequired",
            Self::ResponseTooLarge => "ResponseTooLarge",
            Self::RequestTooLarge => "RequestTooLarge",
            Self::LargeResponse => "LargeResponse",
            Self::MessageLost => "MessageLost",
            Self::VersionMismatch => "VersionMismatch",
            Self::ResponseNotReady => "ResponseNotReady",
            Self::RequestResynch => "RequestResynch",
            Self::VendorDefined => "Vendor/Other Standards Defined",
        }
    }
}

/// CAPABILITIES flags (responder side) used here.
pub(crate) mod cap_flags {
    /// The responder can cache the negotiated state across resets.
    #[cfg(spdm_kunit)]
    pub(crate) const CACHE_CAP: u32 = 0x1;
    /// The responder supports GET_DIGESTS and GET_CERTIFICATE.
    pub(crate) const CERT_CAP: u32 = 0x2;
    /// The responder supports CHALLENGE.
    pub(crate) const CHAL_CAP: u32 = 0x4;
    /// The two-bit MEAS_CAP field.
    #[cfg(spdm_requester)]
    pub(crate) const MEAS_CAP_MASK: u32 = 0x18;
    /// MEAS_CAP: measurements without signature.
    #[cfg(spdm_kunit)]
    pub(crate) const MEAS_CAP_NO_SIG: u32 = 0x8;
    /// MEAS_CAP: measurements with and without signature.
    pub(crate) const MEAS_CAP_SIG: u32 = 0x10;
    /// The responder recomputes measurements on every request.
    #[cfg(spdm_kunit)]
    pub(crate) const MEAS_FRESH_CAP: u32 = 0x20;
    /// Large messages in chunks (not supported here).
    #[cfg(spdm_kunit)]
    pub(crate) const CHUNK_CAP: u32 = 0x2_0000;
}

/// Algorithm identifiers and AlgStruct types used here.
pub(crate) mod alg {
    /// BaseAsymAlgo TPM_ALG_RSASSA_3072.
    pub(crate) const BASE_ASYM_RSASSA_3072: u32 = 0x4;
    /// BaseAsymAlgo TPM_ALG_ECDSA_ECC_NIST_P384 (not supported; for tests and fault injection).
    #[cfg(any(spdm_kunit, spdm_responder))]
    pub(crate) const BASE_ASYM_ECDSA_P384: u32 = 0x80;
    /// BaseHashAlgo TPM_ALG_SHA_256 (not supported; for tests).
    #[cfg(spdm_kunit)]
    pub(crate) const BASE_HASH_SHA_256: u32 = 0x1;
    /// BaseHashAlgo TPM_ALG_SHA_384.
    pub(crate) const BASE_HASH_SHA_384: u32 = 0x2;
    /// MeasurementSpecification DMTF.
    pub(crate) const MEASUREMENT_SPEC_DMTF: u8 = 0x1;
    /// MeasurementHashAlgo TPM_ALG_SHA_384.
    pub(crate) const MEASUREMENT_HASH_SHA_384: u32 = 0x4;
    /// AlgStruct type DHE.
    #[cfg(spdm_responder)]
    pub(crate) const STRUCT_DHE: u8 = 2;
    /// AlgStruct type AEAD.
    #[cfg(spdm_kunit)]
    pub(crate) const STRUCT_AEAD: u8 = 3;
    /// AlgStruct type ReqBaseAsymAlg.
    #[cfg(spdm_kunit)]
    pub(crate) const STRUCT_REQ_BASE_ASYM: u8 = 4;
    /// AlgStruct type KeySchedule.
    #[cfg(spdm_responder)]
    pub(crate) const STRUCT_KEY_SCHEDULE: u8 = 5;
    /// Fixed algorithm byte count of every SPDM 1.2 AlgStruct (bits 7:4 of AlgCount).
    pub(crate) const STRUCT_FIXED_BYTES: u8 = 2;
}

/// CHALLENGE measurement summary hash types (Param2).
pub(crate) mod summary {
    /// No measurement summary hash.
    pub(crate) const NONE: u8 = 0;
    /// Hash of the TCB measurements.
    #[cfg(spdm_responder)]
    pub(crate) const TCB: u8 = 1;
    /// Hash of all measurements.
    #[cfg(spdm_responder)]
    pub(crate) const ALL: u8 = 0xff;
}

/// GET_MEASUREMENTS operations (Param2) and attributes (Param1).
pub(crate) mod meas {
    /// Operation: return the number of measurement blocks only.
    pub(crate) const OP_COUNT: u8 = 0;
    /// Operation: return all measurement blocks.
    pub(crate) const OP_ALL: u8 = 0xff;
    /// Attribute: sign the response.
    pub(crate) const ATTR_SIGNATURE: u8 = 0x1;
    /// Attribute: return raw bit streams where possible (not distinguished here).
    #[cfg(spdm_kunit)]
    pub(crate) const ATTR_RAW_BIT_STREAM: u8 = 0x2;
    /// DMTFSpecMeasurementValueType: immutable ROM.
    #[cfg(any(spdm_kunit, spdm_responder))]
    pub(crate) const TYPE_IMMUTABLE_ROM: u8 = 0;
    /// DMTFSpecMeasurementValueType: mutable firmware.
    #[cfg(any(spdm_kunit, spdm_responder))]
    pub(crate) const TYPE_MUTABLE_FIRMWARE: u8 = 1;
    /// DMTFSpecMeasurementValueType: hardware configuration.
    #[cfg(spdm_kunit)]
    pub(crate) const TYPE_HARDWARE_CONFIG: u8 = 2;
    /// DMTFSpecMeasurementValueType bit 7: the value is a raw bit stream, not a digest.
    #[cfg(spdm_kunit)]
    pub(crate) const TYPE_RAW_BIT_STREAM: u8 = 0x80;
}

/// Mask of the slot ID in GET_CERTIFICATE Param1, CHALLENGE_AUTH Param1, SlotIDParam and
/// MEASUREMENTS Param2.
pub(crate) const SLOT_MASK: u8 = 0xf;

/// The only certificate slot this library serves and requests.
pub(crate) const SLOT: u8 = 0;

/// Slot mask of DIGESTS and CHALLENGE_AUTH: slot 0 only.
#[cfg(spdm_responder)]
pub(crate) const SLOT_MASK_0: u8 = 0x1;

/// One part of "dmtf-spdm-v1.2.*", repeated four times in the signing prefix.
pub(crate) const SIGNING_PREFIX: &[u8; 16] = b"dmtf-spdm-v1.2.*";

/// Length of the SPDM 1.2 signing prefix: four prefixes and 36 bytes of padded context.
pub(crate) const SIGNING_PREFIX_LEN: usize = 100;

/// Length of the space the context string is right aligned in.
const SIGNING_CONTEXT_SPACE: usize = 36;

/// Length of the message an SPDM 1.2 signature is computed over: the prefix and a digest.
pub(crate) const SIGNED_MESSAGE_LEN: usize = SIGNING_PREFIX_LEN + HASH_LEN;

/// The exact bytes an SPDM 1.2 signature is over (RSASSA hashes them once more with
/// SHA-384, as for any PKCS#1 v1.5 signature).
pub(crate) type SignedMessage = [u8; SIGNED_MESSAGE_LEN];

/// The two responses a responder signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignedOp {
    /// CHALLENGE_AUTH, over M1/M2.
    ChallengeAuth,
    /// MEASUREMENTS, over L1/L2.
    Measurements,
}

impl SignedOp {
    /// Returns the signing context string.
    pub(crate) fn context(self) -> &'static [u8] {
        match self {
            Self::ChallengeAuth => b"responder-challenge_auth signing",
            Self::Measurements => b"responder-measurements signing",
        }
    }
}

/// Returns the bytes a responder signs for `op` over the transcript digest `digest`:
/// "dmtf-spdm-v1.2.*" four times, zero padding, the context string ending at byte 100, then
/// the digest.
pub(crate) fn signed_message(op: SignedOp, digest: &Digest) -> SignedMessage {
    let mut out = [0u8; SIGNED_MESSAGE_LEN];
    for chunk in out.chunks_exact_mut(SIGNING_PREFIX.len()).take(4) {
        chunk.copy_from_slice(SIGNING_PREFIX);
    }
    let context = op.context();
    let start = SIGNING_PREFIX_LEN.saturating_sub(context.len());
    // The context strings are shorter than SIGNING_CONTEXT_SPACE, so they fit.
    if context.len() <= SIGNING_CONTEXT_SPACE {
        if let Some(dst) = out.get_mut(start..SIGNING_PREFIX_LEN) {
            dst.copy_from_slice(context);
        }
    }
    if let Some(dst) = out.get_mut(SIGNING_PREFIX_LEN..) {
        dst.copy_from_slice(digest);
    }
    out
}

/// Connection states of either end, in the order a connection goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ConnectionState {
    /// Nothing received yet; only GET_VERSION is expected.
    NotStarted,
    /// VERSION sent; GET_CAPABILITIES expected.
    AfterVersion,
    /// CAPABILITIES sent; NEGOTIATE_ALGORITHMS expected.
    AfterCapabilities,
    /// ALGORITHMS sent: certificates, CHALLENGE and measurements may follow.
    Negotiated,
    /// A CHALLENGE_AUTH was sent.
    Authenticated,
}

/// Capability fields of GET_CAPABILITIES and CAPABILITIES (SPDM 1.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CapabilityParams {
    /// Cryptographic timeout exponent: 2^CTExponent microseconds.
    pub(crate) ct_exponent: u8,
    /// Capability flags ([`cap_flags`] for a responder).
    pub(crate) flags: u32,
    /// Largest message the sender can receive in one transfer.
    pub(crate) data_transfer_size: u32,
    /// Largest SPDM message the sender can receive, after chunk reassembly.
    pub(crate) max_message_size: u32,
}

/// An AlgStruct of NEGOTIATE_ALGORITHMS or ALGORITHMS, without extended algorithms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlgStruct {
    /// AlgType ([`alg`]`::STRUCT_*`).
    pub(crate) alg_type: u8,
    /// The supported (request) or selected (response) algorithms.
    pub(crate) supported: u16,
    /// Number of extended algorithms (4 bytes each) following the fixed field.
    pub(crate) ext_count: u8,
}

/// The fields of a NEGOTIATE_ALGORITHMS request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlgorithmsOffer {
    /// MeasurementSpecification bits.
    pub(crate) measurement_spec: u8,
    /// OtherParamsSupport (opaque data formats).
    pub(crate) other_params: u8,
    /// BaseAsymAlgo bits.
    pub(crate) base_asym: u32,
    /// BaseHashAlgo bits.
    pub(crate) base_hash: u32,
    /// ExtAsymCount (the extended algorithms are encoded as zeroes and ignored).
    pub(crate) ext_asym_count: u8,
    /// ExtHashCount.
    pub(crate) ext_hash_count: u8,
    /// The AlgStructs, the first `struct_count` of them.
    pub(crate) structs: [AlgStruct; MAX_ALG_STRUCTS],
    /// Number of AlgStructs (Param1).
    pub(crate) struct_count: u8,
}

impl AlgorithmsOffer {
    /// Returns the offer the requester of this library makes: RSASSA-3072, SHA-384,
    /// DMTF measurements, no extended algorithms, no AlgStructs (no sessions).
    #[cfg(spdm_requester)]
    pub(crate) const fn ours() -> Self {
        Self {
            measurement_spec: alg::MEASUREMENT_SPEC_DMTF,
            other_params: 0,
            base_asym: alg::BASE_ASYM_RSASSA_3072,
            base_hash: alg::BASE_HASH_SHA_384,
            ext_asym_count: 0,
            ext_hash_count: 0,
            structs: [AlgStruct {
                alg_type: 0,
                supported: 0,
                ext_count: 0,
            }; MAX_ALG_STRUCTS],
            struct_count: 0,
        }
    }

    /// Returns the AlgStructs.
    pub(crate) fn structs(&self) -> &[AlgStruct] {
        self.structs
            .get(..usize::from(self.struct_count))
            .unwrap_or(&[])
    }
}

/// An SPDM request of this library's scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// GET_VERSION (always version 0x10).
    GetVersion,
    /// GET_CAPABILITIES.
    GetCapabilities(CapabilityParams),
    /// NEGOTIATE_ALGORITHMS.
    NegotiateAlgorithms(AlgorithmsOffer),
    /// GET_DIGESTS.
    GetDigests,
    /// GET_CERTIFICATE.
    GetCertificate {
        /// Slot ID.
        slot: u8,
        /// Offset of the portion in the chain.
        offset: u16,
        /// Most bytes of the portion.
        length: u16,
    },
    /// CHALLENGE.
    Challenge {
        /// Slot ID.
        slot: u8,
        /// Measurement summary hash type ([`summary`]).
        summary: u8,
        /// Requester nonce.
        nonce: Nonce,
    },
    /// GET_MEASUREMENTS.
    GetMeasurements {
        /// Attributes ([`meas`]`::ATTR_*`); bit 0 requests a signature, and with it the
        /// nonce and slot.
        attributes: u8,
        /// Operation ([`meas`]`::OP_*` or an index).
        operation: u8,
        /// Requester nonce (only sent with a signature requested).
        nonce: Nonce,
        /// Slot ID (only sent with a signature requested).
        slot: u8,
    },
}

impl Request {
    /// Returns the request code.
    #[cfg(spdm_kunit)]
    pub(crate) fn code(&self) -> Code {
        match self {
            Self::GetVersion => Code::GetVersion,
            Self::GetCapabilities(_) => Code::GetCapabilities,
            Self::NegotiateAlgorithms(_) => Code::NegotiateAlgorithms,
            Self::GetDigests => Code::GetDigests,
            Self::GetCertificate { .. } => Code::GetCertificate,
            Self::Challenge { .. } => Code::Challenge,
            Self::GetMeasurements { .. } => Code::GetMeasurements,
        }
    }
}

/// Encoding and decoding errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// The input ends before a field or before the length a length field announces.
    Truncated,
    /// The input carries bytes after the message.
    TrailingBytes,
    /// The output buffer is too small.
    BufferTooSmall,
    /// A length does not fit its field or a limit of this library.
    TooLong,
    /// A field holds a value this library does not accept.
    InvalidField,
}

/// Bounds-checked little-endian reader over untrusted bytes.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Takes the next `len` bytes.
    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        let head = self.rest.get(..len).ok_or(CodecError::Truncated)?;
        self.rest = self.rest.get(len..).unwrap_or(&[]);
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        self.take(N)?.try_into().map_err(|_| CodecError::Truncated)
    }

    /// Reads a byte.
    pub(super) fn u8(&mut self) -> Result<u8, CodecError> {
        let [byte] = self.array()?;
        Ok(byte)
    }

    /// Reads a little-endian u16.
    pub(super) fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian 24-bit length.
    #[cfg(spdm_requester)]
    pub(super) fn u24(&mut self) -> Result<u32, CodecError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// Reads a little-endian u32.
    pub(super) fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Returns the number of bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Fails unless everything was read.
    #[cfg(spdm_requester)]
    pub(super) fn finish(&self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes)
        }
    }

    /// Ends a message that `msg` starts with, this reader having read all of its fields:
    /// returns the message without the at most [`MAX_PADDING`] bytes of padding after it.
    pub(super) fn finish_padded<'m>(&self, msg: &'m [u8]) -> Result<&'m [u8], CodecError> {
        if self.rest.len() > MAX_PADDING {
            return Err(CodecError::TrailingBytes);
        }
        msg.len()
            .checked_sub(self.rest.len())
            .and_then(|len| msg.get(..len))
            .ok_or(CodecError::Truncated)
    }
}

/// Bounds-checked little-endian writer.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Writes from the start of `buf`.
    pub(super) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Appends `bytes`.
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

    /// Appends a byte.
    pub(super) fn u8(&mut self, v: u8) -> Result<(), CodecError> {
        self.put(&[v])
    }

    /// Appends a little-endian u16.
    pub(super) fn u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a little-endian u32.
    pub(super) fn u32(&mut self, v: u32) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }

    /// Appends `len` zero bytes.
    pub(super) fn zeroes(&mut self, len: usize) -> Result<(), CodecError> {
        for _ in 0..len {
            self.u8(0)?;
        }
        Ok(())
    }

    /// Overwrites already written bytes at `at`.
    pub(super) fn patch(&mut self, at: usize, bytes: &[u8]) -> Result<(), CodecError> {
        let end = at
            .checked_add(bytes.len())
            .filter(|&end| end <= self.pos)
            .ok_or(CodecError::BufferTooSmall)?;
        let dst = self
            .buf
            .get_mut(at..end)
            .ok_or(CodecError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

/// Compares two byte strings in constant time for equal lengths: every byte is looked at,
/// no early exit.
#[cfg(spdm_requester)]
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        acc |= x ^ y;
    }
    core::hint::black_box(acc) == 0
}

/// Length of the header of an SPDM certificate chain: Length, reserved, the root hash.
pub(crate) const CERT_CHAIN_HEADER_LEN: usize = 4 + HASH_LEN;

/// Walks the DER certificates of a chain: each must be a SEQUENCE (0x30) with a definite
/// length of at most three length bytes, and together they must fill `certs` exactly.
/// Returns the first certificate.
pub(crate) fn first_certificate(certs: &[u8]) -> Option<&[u8]> {
    let mut rest = certs;
    let mut first = None;
    while !rest.is_empty() {
        let mut r = Reader::new(rest);
        let start = rest;
        if r.u8().ok()? != 0x30 {
            return None;
        }
        let len = match r.u8().ok()? {
            short @ 0..=0x7f => usize::from(short),
            0x81 => usize::from(r.u8().ok()?),
            0x82 => usize::from(r.u16().ok()?.swap_bytes()),
            0x83 => {
                let [a, b, c] = r.array().ok()?;
                (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c)
            }
            _ => return None,
        };
        let header = start.len().checked_sub(r.remaining())?;
        let _body = r.take(len).ok()?;
        let total = header.checked_add(len)?;
        if first.is_none() {
            first = start.get(..total);
        }
        rest = start.get(total..)?;
    }
    first
}

/// Writes the SPDM header `version, code, param1, param2`.
pub(super) fn put_header(
    w: &mut Writer<'_>,
    version: u8,
    code: Code,
    param1: u8,
    param2: u8,
) -> Result<(), CodecError> {
    w.put(&[version, code as u8, param1, param2])
}

/// Encodes an SPDM `version` ERROR with error `code` and `data`, without extended error
/// data, into `buf`; returns the message length.
#[cfg(spdm_responder)]
pub(crate) fn encode_error(
    version: u8,
    code: ErrorCode,
    data: u8,
    buf: &mut [u8],
) -> Result<usize, CodecError> {
    let mut w = Writer::new(buf);
    put_header(&mut w, version, Code::Error, code as u8, data)?;
    Ok(w.len())
}

/// Decodes an SPDM ERROR message: returns the raw error code and data, or `None` if `msg`
/// is not an ERROR of an SPDM 1.x version with at most [`MAX_EXTENDED_ERROR_LEN`] bytes of
/// extended error data.
#[cfg(spdm_requester)]
pub(crate) fn decode_error(msg: &[u8]) -> Option<(u8, u8, u8)> {
    match msg {
        [version, 0x7f, code, data, ext @ ..]
            if version >> 4 == 1 && ext.len() <= MAX_EXTENDED_ERROR_LEN =>
        {
            Some((*version, *code, *data))
        }
        _ => None,
    }
}
