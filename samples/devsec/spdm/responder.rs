// SPDX-License-Identifier: GPL-2.0

//! Device side of SPDM 1.2: request decoding, response encoding and the connection state
//! machine ([`Responder`]). The certificate chain, the signing key and the measurements
//! belong to the embedder, behind [`DeviceIdentity`]; the hash is the embedder's [`Hash`].

use super::codec::{
    alg,
    cap_flags,
    encode_error,
    first_certificate,
    meas,
    put_header,
    signed_message,
    summary,
    AlgStruct,
    AlgorithmsOffer,
    CapabilityParams,
    Code,
    CodecError,
    ConnectionState,
    Digest,
    ErrorCode,
    Nonce,
    Reader,
    Request,
    Signature,
    SignedMessage,
    SignedOp,
    Writer,
    ALGORITHMS_FIXED_LEN,
    CERT_CHAIN_HEADER_LEN,
    HASH_LEN,
    HEADER_LEN,
    MAX_ALG_STRUCTS,
    MAX_EXT_ALG_COUNT,
    MAX_MESSAGE_LEN,
    MAX_NEGOTIATE_ALGORITHMS_LEN,
    MEASUREMENT_BLOCK_HEADER_LEN,
    MIN_DATA_TRANSFER_SIZE,
    NONCE_LEN,
    SIGNATURE_LEN,
    SLOT,
    SLOT_MASK,
    SLOT_MASK_0,
    SPDM_VERSION_10,
    SPDM_VERSION_12,
    VERSION_ENTRY_12, //
};
use super::transcript::{
    hash_of,
    CryptoError,
    Hash,
    Transcript, //
};

/// Length of the longest CHALLENGE_AUTH: header, cert chain hash, nonce, measurement
/// summary hash, empty opaque data, signature.
pub(crate) const CHALLENGE_AUTH_MAX_LEN: usize =
    HEADER_LEN + HASH_LEN + NONCE_LEN + HASH_LEN + 2 + SIGNATURE_LEN;

/// Shortest response buffer [`Responder::handle`] works with: every response but
/// CERTIFICATE and MEASUREMENTS has a bounded length of at most this. CERTIFICATE portions
/// are clamped to the buffer; MEASUREMENTS that do not fit are answered Unspecified.
pub(crate) const MIN_RESPONSE_LEN: usize = CHALLENGE_AUTH_MAX_LEN;

/// CAPABILITIES flags of the responder: certificates, CHALLENGE, signed measurements.
pub(crate) const RESPONDER_FLAGS: u32 =
    cap_flags::CERT_CAP | cap_flags::CHAL_CAP | cap_flags::MEAS_CAP_SIG;

/// CTExponent of the responder: signing may take up to 2^20 microseconds (about a second).
pub(crate) const CT_EXPONENT: u8 = 20;

/// Length of the CERTIFICATE header: SPDM header, PortionLength, RemainderLength.
pub(crate) const CERTIFICATE_HEADER_LEN: usize = HEADER_LEN + 4;

/// Length of the MEASUREMENTS fields before the record: NumberOfBlocks and the 24-bit
/// MeasurementRecordLength.
const MEASUREMENTS_RECORD_HEADER_LEN: usize = 4;

/// Most measurement blocks a MEASUREMENTS can carry (NumberOfBlocks is a byte).
pub(crate) const MAX_MEASUREMENT_BLOCKS: usize = 0xfe;

/// One measurement of the device, served as a DMTF measurement block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Measurement<'a> {
    /// Index, 1 to 0xFE; the embedder serves them in increasing order.
    pub(crate) index: u8,
    /// DMTFSpecMeasurementValueType ([`meas`]`::TYPE_*`, bit 7 for a raw bit stream).
    pub(crate) value_type: u8,
    /// The value: a SHA-384 digest, or a raw bit stream.
    pub(crate) value: &'a [u8],
    /// Whether the block measures the trusted computing base (CHALLENGE's TCB summary
    /// hash covers exactly these blocks).
    pub(crate) tcb: bool,
}

/// Writes the SPDM certificate chain of the DER certificates `certs` (root first, leaf
/// last, concatenated) to `out`: `u16 Length`, `u16 reserved`, the root certificate's hash,
/// `certs`. Returns its length.
///
/// Fails with [`CodecError::InvalidField`] if `certs` is not a sequence of well-framed DER
/// certificates and with [`CodecError::BufferTooSmall`] if the chain is longer than `out` or
/// than the 65535 bytes of its Length field; a failing hash is [`CodecError::InvalidField`].
pub(crate) fn encode_cert_chain<H: Hash>(
    certs: &[u8],
    out: &mut [u8],
) -> Result<usize, CodecError> {
    let root = first_certificate(certs).ok_or(CodecError::InvalidField)?;
    let len = certs
        .len()
        .checked_add(CERT_CHAIN_HEADER_LEN)
        .ok_or(CodecError::BufferTooSmall)?;
    let length = u16::try_from(len).map_err(|_| CodecError::BufferTooSmall)?;
    let root_hash = hash_of::<H>(&[root]).map_err(|_| CodecError::InvalidField)?;
    let mut w = Writer::new(out);
    w.u16(length)?;
    w.u16(0)?;
    w.put(&root_hash)?;
    w.put(certs)?;
    Ok(len)
}

/// What the embedder of a [`Responder`] provides: the identity of the device and its
/// measurements. The kernel implements it over its crypto API and keys; the KUnit suites
/// with a test double.
pub(crate) trait DeviceIdentity {
    /// Returns the certificate chain of slot 0 in SPDM format: `u16 Length` (the whole
    /// chain), `u16 reserved`, SHA-384 of the root certificate, the DER certificates, root
    /// first. At most 65535 bytes.
    fn cert_chain(&self) -> &[u8];

    /// Signs `message` with the leaf key of the chain: RSASSA-3072 (PKCS#1 v1.5) over
    /// SHA-384 of `message`, which is the SPDM 1.2 signing prefix and a transcript digest.
    fn sign(&self, message: &SignedMessage, signature: &mut Signature) -> Result<(), CryptoError>;

    /// Returns the `n`th measurement (from 0), or `None` after the last one.
    fn measurement(&self, n: usize) -> Option<Measurement<'_>>;
}

impl Request {
    /// Decodes a whole request message. The version byte is not checked (the responder
    /// answers VersionMismatch itself); the message must have exactly the length of its
    /// request.
    #[cfg(spdm_kunit)]
    pub(crate) fn decode(msg: &[u8]) -> Result<Self, CodecError> {
        let (req, len) = Self::decode_padded(msg)?;
        if len != msg.len() {
            return Err(CodecError::TrailingBytes);
        }
        Ok(req)
    }

    /// Decodes a request that `msg` starts with, followed by at most
    /// [`MAX_PADDING`](super::codec::MAX_PADDING) bytes of DOE padding; returns it and its
    /// length.
    pub(crate) fn decode_padded(msg: &[u8]) -> Result<(Self, usize), CodecError> {
        let mut r = Reader::new(msg);
        // The Length field of NEGOTIATE_ALGORITHMS.
        let mut declared = None;
        let _version = r.u8()?;
        let code = r.u8()?;
        let param1 = r.u8()?;
        let param2 = r.u8()?;
        let req = match Code::from_u8(code) {
            Some(Code::GetVersion) => Self::GetVersion,
            Some(Code::GetCapabilities) => {
                let _reserved = r.u8()?;
                let ct_exponent = r.u8()?;
                let _reserved = r.u16()?;
                Self::GetCapabilities(CapabilityParams {
                    ct_exponent,
                    flags: r.u32()?,
                    data_transfer_size: r.u32()?,
                    max_message_size: r.u32()?,
                })
            }
            Some(Code::NegotiateAlgorithms) => {
                let (offer, length) = decode_offer(&mut r, param1)?;
                declared = Some(length);
                Self::NegotiateAlgorithms(offer)
            }
            Some(Code::GetDigests) => Self::GetDigests,
            Some(Code::GetCertificate) => Self::GetCertificate {
                slot: param1 & SLOT_MASK,
                offset: r.u16()?,
                length: r.u16()?,
            },
            Some(Code::Challenge) => Self::Challenge {
                slot: param1,
                summary: param2,
                nonce: r.array()?,
            },
            Some(Code::GetMeasurements) => {
                let (nonce, slot) = if param1 & meas::ATTR_SIGNATURE != 0 {
                    (r.array()?, r.u8()? & SLOT_MASK)
                } else {
                    ([0; NONCE_LEN], 0)
                };
                Self::GetMeasurements {
                    attributes: param1,
                    operation: param2,
                    nonce,
                    slot,
                }
            }
            _ => return Err(CodecError::InvalidField),
        };
        let exact = r.finish_padded(msg)?;
        if declared.is_some_and(|length| length != exact.len()) {
            return Err(CodecError::InvalidField);
        }
        Ok((req, exact.len()))
    }
}

/// Decodes the NEGOTIATE_ALGORITHMS fields after the header of a request with
/// `struct_count` AlgStructs; returns them and the Length field, at most 128 (the caller
/// compares it with the length of the message). At most 20 extended algorithms in all;
/// AlgStructs of increasing type, each of DHE, AEAD, ReqBaseAsymAlg or KeySchedule, with 2
/// fixed bytes.
fn decode_offer(
    r: &mut Reader<'_>,
    struct_count: u8,
) -> Result<(AlgorithmsOffer, usize), CodecError> {
    let length = usize::from(r.u16()?);
    if length > MAX_NEGOTIATE_ALGORITHMS_LEN {
        return Err(CodecError::InvalidField);
    }
    let mut offer = AlgorithmsOffer {
        measurement_spec: r.u8()?,
        other_params: r.u8()?,
        base_asym: r.u32()?,
        base_hash: r.u32()?,
        ..AlgorithmsOffer::default()
    };
    let _reserved = r.take(12)?;
    offer.ext_asym_count = r.u8()?;
    offer.ext_hash_count = r.u8()?;
    let _reserved = r.u16()?;
    let mut ext_total = usize::from(offer.ext_asym_count) + usize::from(offer.ext_hash_count);
    let _ext = r.take(ext_total.checked_mul(4).ok_or(CodecError::TooLong)?)?;
    if usize::from(struct_count) > MAX_ALG_STRUCTS {
        return Err(CodecError::InvalidField);
    }
    let mut last_type = 0;
    for slot in offer.structs.iter_mut().take(usize::from(struct_count)) {
        let alg_type = r.u8()?;
        let alg_count = r.u8()?;
        if !(alg::STRUCT_DHE..=alg::STRUCT_KEY_SCHEDULE).contains(&alg_type)
            || alg_type <= last_type
            || alg_count >> 4 != alg::STRUCT_FIXED_BYTES
        {
            return Err(CodecError::InvalidField);
        }
        last_type = alg_type;
        let ext_count = alg_count & 0xf;
        *slot = AlgStruct {
            alg_type,
            supported: r.u16()?,
            ext_count,
        };
        ext_total = ext_total.saturating_add(usize::from(ext_count));
        let _ext = r.take(usize::from(ext_count) * 4)?;
    }
    if ext_total > MAX_EXT_ALG_COUNT {
        return Err(CodecError::InvalidField);
    }
    offer.struct_count = struct_count;
    Ok((offer, length))
}

/// Result of processing a request: the response length, or an error code and its data.
type Outcome = Result<usize, (ErrorCode, u8)>;

/// The error of a failure that is the responder's own (buffer, hash, signing, nonce).
fn unspecified<E>(_: E) -> (ErrorCode, u8) {
    (ErrorCode::Unspecified, 0)
}

/// The error of a malformed request.
const INVALID: (ErrorCode, u8) = (ErrorCode::InvalidRequest, 0);

/// Returns the part of `buf` written so far.
fn written(buf: &[u8], len: usize) -> &[u8] {
    buf.get(..len).unwrap_or(&[])
}

/// Device-side SPDM 1.2 responder of one connection.
///
/// Every request is answered, with its response or an ERROR, checked in this order:
/// 1. A message shorter than the header is InvalidRequest.
/// 2. A request code this library does not serve (response codes, SPDM 1.1 and 1.2
///    session, chunking and certificate provisioning requests, RESPOND_IF_READY) is
///    UnsupportedRequest with the code as error data.
/// 3. GET_VERSION must be version 0x10 (else VersionMismatch) and resets the connection
///    from any state. Every other request is checked against the state (UnexpectedRequest):
///    GET_CAPABILITIES only after VERSION, NEGOTIATE_ALGORITHMS only after CAPABILITIES,
///    GET_DIGESTS, GET_CERTIFICATE and CHALLENGE once negotiated, GET_MEASUREMENTS once
///    negotiated with DMTF measurements. VENDOR_DEFINED_REQUEST is UnexpectedRequest
///    before ALGORITHMS and UnsupportedRequest after it: a device that carries TDISP
///    hands those requests to its TDISP responder once [`Responder::is_negotiated`].
/// 4. The version must be 1.2 (VersionMismatch).
/// 5. The request must have exactly its length and valid fields (InvalidRequest). Up to
///    [`MAX_PADDING`](super::codec::MAX_PADDING) bytes of DOE padding may follow it; they
///    are ignored and not part of the transcript.
///
/// A request answered with ERROR changes nothing, with two exceptions: an ERROR to
/// GET_MEASUREMENTS (even one too short to decode) resets L1/L2, as libspdm's responder
/// does; and when the embedder's hash or signature fails, the transcript part being
/// computed is lost (B and C, or L1/L2) until GET_DIGESTS or GET_VERSION starts it again.
/// ERROR is sent in version 1.2 once VERSION was sent, and in 1.0 before that and for
/// GET_VERSION.
///
/// Requester capabilities are recorded; the requester's DataTransferSize bounds
/// CERTIFICATE portions. Other responses are assumed to fit it (no chunking).
pub(crate) struct Responder<D, H> {
    device: D,
    state: ConnectionState,
    transcript: Transcript<H>,
    requester: CapabilityParams,
    measurements: bool,
}

impl<D: DeviceIdentity, H: Hash> Responder<D, H> {
    /// Creates a responder for `device`, in state NotStarted.
    pub(crate) fn new(device: D) -> Self {
        Self {
            device,
            state: ConnectionState::NotStarted,
            transcript: Transcript::new(),
            requester: CapabilityParams::default(),
            measurements: false,
        }
    }

    /// Returns the connection state.
    pub(crate) fn state(&self) -> ConnectionState {
        self.state
    }

    /// Returns whether algorithms are negotiated, the point from which vendor-defined
    /// protocols (TDISP) may run.
    pub(crate) fn is_negotiated(&self) -> bool {
        self.state >= ConnectionState::Negotiated
    }

    /// Returns the device.
    pub(crate) fn device(&self) -> &D {
        &self.device
    }

    /// Returns the capabilities of the requester of the connection (zero before
    /// GET_CAPABILITIES).
    #[cfg(spdm_kunit)]
    pub(crate) fn requester_capabilities(&self) -> CapabilityParams {
        self.requester
    }

    /// Returns the VCA of the connection so far.
    #[cfg(spdm_kunit)]
    pub(crate) fn vca(&self) -> &[u8] {
        self.transcript.vca()
    }

    /// Handles one request and writes the response to `response`; returns its length.
    ///
    /// `response` must be at least [`MIN_RESPONSE_LEN`] bytes; with a shorter buffer the
    /// request is ignored (no state change) and 0 is returned. `rng` fills a buffer with
    /// random bytes (the CHALLENGE_AUTH and MEASUREMENTS nonces).
    pub(crate) fn handle(
        &mut self,
        request: &[u8],
        response: &mut [u8],
        rng: &mut impl FnMut(&mut [u8]),
    ) -> usize {
        if response.len() < MIN_RESPONSE_LEN {
            return 0;
        }
        match self.process(request, response, rng) {
            Ok(len) => len,
            Err((code, data)) => {
                // As libspdm: an ERROR to GET_MEASUREMENTS ends the measurement transcript,
                // so that the requester knows where L1/L2 starts again.
                if request.get(1) == Some(&(Code::GetMeasurements as u8)) {
                    self.transcript.reset_l1();
                }
                let version = if request.get(1) == Some(&(Code::GetVersion as u8))
                    || self.state == ConnectionState::NotStarted
                {
                    SPDM_VERSION_10
                } else {
                    SPDM_VERSION_12
                };
                encode_error(version, code, data, response).unwrap_or(0)
            }
        }
    }

    /// Checks `request` against the state and version, decodes and executes it.
    fn process(
        &mut self,
        request: &[u8],
        rsp: &mut [u8],
        rng: &mut impl FnMut(&mut [u8]),
    ) -> Outcome {
        let (Some(&version), Some(&raw), Some(_), Some(_)) = (
            request.first(),
            request.get(1),
            request.get(2),
            request.get(3),
        ) else {
            return Err(INVALID);
        };
        let Some(code) = Code::from_u8(raw).filter(|code| code.is_request()) else {
            return Err((ErrorCode::UnsupportedRequest, raw));
        };
        let unexpected = Err((ErrorCode::UnexpectedRequest, 0));
        let negotiated = self.is_negotiated();
        match code {
            Code::GetVersion if version != SPDM_VERSION_10 => {
                return Err((ErrorCode::VersionMismatch, 0));
            }
            Code::GetVersion => {}
            Code::VendorDefinedRequest if negotiated => {
                return Err((ErrorCode::UnsupportedRequest, raw));
            }
            Code::GetCapabilities if self.state == ConnectionState::AfterVersion => {}
            Code::NegotiateAlgorithms if self.state == ConnectionState::AfterCapabilities => {}
            Code::GetDigests | Code::GetCertificate | Code::Challenge if negotiated => {}
            Code::GetMeasurements if negotiated && self.measurements => {}
            _ => return unexpected,
        }
        if code != Code::GetVersion && version != SPDM_VERSION_12 {
            return Err((ErrorCode::VersionMismatch, 0));
        }
        let (req, len) = Request::decode_padded(request).map_err(|_| INVALID)?;
        // The transcript takes the request without its padding.
        let request = written(request, len);
        match req {
            Request::GetVersion => self.version(request, rsp),
            Request::GetCapabilities(params) => self.capabilities(params, request, rsp),
            Request::NegotiateAlgorithms(offer) => self.algorithms(&offer, request, rsp),
            Request::GetDigests => self.digests(request, rsp),
            Request::GetCertificate {
                slot,
                offset,
                length,
            } => self.certificate(slot, offset, length, request, rsp),
            Request::Challenge { slot, summary, .. } => {
                self.challenge_auth(slot, summary, request, rsp, rng)
            }
            Request::GetMeasurements {
                attributes,
                operation,
                slot,
                ..
            } => self.measurements(attributes, operation, slot, request, rsp, rng),
        }
    }

    /// VERSION: SPDM 1.2 only. Resets the connection.
    fn version(&mut self, req: &[u8], rsp: &mut [u8]) -> Outcome {
        let mut w = Writer::new(rsp);
        put_header(&mut w, SPDM_VERSION_10, Code::Version, 0, 0).map_err(unspecified)?;
        w.put(&[0, 1]).map_err(unspecified)?;
        w.u16(VERSION_ENTRY_12).map_err(unspecified)?;
        let len = w.len();
        self.state = ConnectionState::NotStarted;
        self.requester = CapabilityParams::default();
        self.measurements = false;
        self.transcript.reset();
        self.transcript
            .append_vca(&[req, written(rsp, len)])
            .map_err(unspecified)?;
        self.state = ConnectionState::AfterVersion;
        Ok(len)
    }

    /// CAPABILITIES. The requester's DataTransferSize must be at least 42 and at most its
    /// MaxSPDMmsgSize; its flags are recorded, not interpreted.
    fn capabilities(&mut self, params: CapabilityParams, req: &[u8], rsp: &mut [u8]) -> Outcome {
        if params.data_transfer_size < MIN_DATA_TRANSFER_SIZE
            || params.max_message_size < params.data_transfer_size
        {
            return Err(INVALID);
        }
        let size = u32::try_from(MAX_MESSAGE_LEN).map_err(unspecified)?;
        let mut w = Writer::new(rsp);
        put_header(&mut w, SPDM_VERSION_12, Code::Capabilities, 0, 0).map_err(unspecified)?;
        w.put(&[0, CT_EXPONENT, 0, 0]).map_err(unspecified)?;
        w.u32(RESPONDER_FLAGS).map_err(unspecified)?;
        w.u32(size).map_err(unspecified)?;
        w.u32(size).map_err(unspecified)?;
        let len = w.len();
        self.transcript
            .append_vca(&[req, written(rsp, len)])
            .map_err(unspecified)?;
        self.requester = params;
        self.state = ConnectionState::AfterCapabilities;
        Ok(len)
    }

    /// ALGORITHMS: RSASSA-3072 and SHA-384 must be offered (InvalidRequest otherwise: there
    /// is no common algorithm). DMTF measurements with SHA-384 are selected if offered.
    /// Each requested AlgStruct is answered with an empty selection (no sessions).
    fn algorithms(&mut self, offer: &AlgorithmsOffer, req: &[u8], rsp: &mut [u8]) -> Outcome {
        if offer.base_asym & alg::BASE_ASYM_RSASSA_3072 == 0
            || offer.base_hash & alg::BASE_HASH_SHA_384 == 0
        {
            return Err(INVALID);
        }
        let measurements = offer.measurement_spec & alg::MEASUREMENT_SPEC_DMTF != 0;
        let (spec, meas_hash) = if measurements {
            (alg::MEASUREMENT_SPEC_DMTF, alg::MEASUREMENT_HASH_SHA_384)
        } else {
            (0, 0)
        };
        let structs = offer.structs();
        let length = structs
            .len()
            .checked_mul(4)
            .and_then(|n| n.checked_add(ALGORITHMS_FIXED_LEN))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(INVALID)?;
        let mut w = Writer::new(rsp);
        put_header(
            &mut w,
            SPDM_VERSION_12,
            Code::Algorithms,
            offer.struct_count,
            0,
        )
        .map_err(unspecified)?;
        w.u16(length).map_err(unspecified)?;
        w.u8(spec).map_err(unspecified)?;
        w.u8(0).map_err(unspecified)?;
        w.u32(meas_hash).map_err(unspecified)?;
        w.u32(alg::BASE_ASYM_RSASSA_3072).map_err(unspecified)?;
        w.u32(alg::BASE_HASH_SHA_384).map_err(unspecified)?;
        w.zeroes(12 + 4).map_err(unspecified)?;
        for s in structs {
            w.put(&[s.alg_type, alg::STRUCT_FIXED_BYTES << 4, 0, 0])
                .map_err(unspecified)?;
        }
        let len = w.len();
        self.transcript
            .append_vca(&[req, written(rsp, len)])
            .map_err(unspecified)?;
        self.measurements = measurements;
        self.state = ConnectionState::Negotiated;
        Ok(len)
    }

    /// Returns the digest of the certificate chain of slot 0, or Unspecified if there is no
    /// valid chain.
    fn chain_digest(&self) -> Result<Digest, (ErrorCode, u8)> {
        let chain = self.device.cert_chain();
        if chain.is_empty() || chain.len() > usize::from(u16::MAX) {
            return Err(unspecified(()));
        }
        super::transcript::hash_of::<H>(&[chain]).map_err(unspecified)
    }

    /// DIGESTS: the digest of slot 0. Resets B (and L1/L2), then starts B with this pair.
    fn digests(&mut self, req: &[u8], rsp: &mut [u8]) -> Outcome {
        let digest = self.chain_digest()?;
        let mut w = Writer::new(rsp);
        put_header(&mut w, SPDM_VERSION_12, Code::Digests, 0, SLOT_MASK_0).map_err(unspecified)?;
        w.put(&digest).map_err(unspecified)?;
        let len = w.len();
        self.transcript.reset_m1();
        self.transcript
            .append_b(&[req, written(rsp, len)])
            .map_err(unspecified)?;
        self.transcript.reset_l1();
        Ok(len)
    }

    /// CERTIFICATE: a portion of the chain of slot 0 at `offset`, at most `length` bytes,
    /// clamped to the response buffer and to the requester's DataTransferSize. An offset
    /// at or past the end of the chain, a zero length or another slot is InvalidRequest.
    fn certificate(
        &mut self,
        slot: u8,
        offset: u16,
        length: u16,
        req: &[u8],
        rsp: &mut [u8],
    ) -> Outcome {
        let chain = self.device.cert_chain();
        if chain.is_empty() || chain.len() > usize::from(u16::MAX) {
            return Err(unspecified(()));
        }
        let offset = usize::from(offset);
        let available = chain.len().checked_sub(offset).filter(|&n| n > 0);
        let (Some(available), true, SLOT) = (available, length > 0, slot) else {
            return Err(INVALID);
        };
        let transfer = usize::try_from(self.requester.data_transfer_size).unwrap_or(usize::MAX);
        let portion_len = available
            .min(usize::from(length))
            .min(rsp.len().saturating_sub(CERTIFICATE_HEADER_LEN))
            .min(transfer.saturating_sub(CERTIFICATE_HEADER_LEN));
        let end = offset.checked_add(portion_len).ok_or(INVALID)?;
        let portion = chain.get(offset..end).ok_or(INVALID)?;
        let portion_u16 = u16::try_from(portion_len).map_err(unspecified)?;
        let remainder = available
            .checked_sub(portion_len)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(unspecified(()))?;
        let mut w = Writer::new(rsp);
        put_header(&mut w, SPDM_VERSION_12, Code::Certificate, slot, 0).map_err(unspecified)?;
        w.u16(portion_u16).map_err(unspecified)?;
        w.u16(remainder).map_err(unspecified)?;
        w.put(portion).map_err(unspecified)?;
        let len = w.len();
        self.transcript
            .append_b(&[req, written(rsp, len)])
            .map_err(unspecified)?;
        self.transcript.reset_l1();
        Ok(len)
    }

    /// Returns a fresh nonce from `rng`; all zeroes means the generator failed.
    fn nonce(rng: &mut impl FnMut(&mut [u8])) -> Result<Nonce, (ErrorCode, u8)> {
        let mut nonce = [0u8; NONCE_LEN];
        rng(&mut nonce);
        if nonce.iter().all(|&b| b == 0) {
            return Err(unspecified(()));
        }
        Ok(nonce)
    }

    /// Returns the measurement summary hash of `kind`: the digest of the concatenated
    /// measurement blocks (all of them, or the TCB ones), as MEASUREMENTS would serve them.
    fn measurement_summary(&self, kind: u8) -> Result<Digest, (ErrorCode, u8)> {
        let mut h = H::start().map_err(unspecified)?;
        let mut n = 0;
        while let Some(m) = self.device.measurement(n) {
            n = n.saturating_add(1);
            if kind == summary::TCB && !m.tcb {
                continue;
            }
            let header = block_header(&m).ok_or(unspecified(()))?;
            h.update(&header).map_err(unspecified)?;
            h.update(m.value).map_err(unspecified)?;
        }
        h.finish().map_err(unspecified)
    }

    /// CHALLENGE_AUTH for slot 0, signed over M1/M2; moves to Authenticated.
    fn challenge_auth(
        &mut self,
        slot: u8,
        kind: u8,
        req: &[u8],
        rsp: &mut [u8],
        rng: &mut impl FnMut(&mut [u8]),
    ) -> Outcome {
        let known = matches!(kind, summary::NONE | summary::TCB | summary::ALL);
        if slot != SLOT || !known || (kind != summary::NONE && !self.measurements) {
            return Err(INVALID);
        }
        let chain_digest = self.chain_digest()?;
        let nonce = Self::nonce(rng)?;
        let summary_hash = match kind {
            summary::NONE => None,
            _ => Some(self.measurement_summary(kind)?),
        };
        let mut w = Writer::new(rsp);
        put_header(
            &mut w,
            SPDM_VERSION_12,
            Code::ChallengeAuth,
            slot,
            SLOT_MASK_0,
        )
        .map_err(unspecified)?;
        w.put(&chain_digest).map_err(unspecified)?;
        w.put(&nonce).map_err(unspecified)?;
        if let Some(hash) = summary_hash {
            w.put(&hash).map_err(unspecified)?;
        }
        w.u16(0).map_err(unspecified)?;
        let unsigned = w.len();
        let digest = self
            .transcript
            .finish_m1(&[req, written(rsp, unsigned)])
            .map_err(unspecified)?;
        let mut signature = [0u8; SIGNATURE_LEN];
        self.device
            .sign(
                &signed_message(SignedOp::ChallengeAuth, &digest),
                &mut signature,
            )
            .map_err(unspecified)?;
        let len = unsigned.checked_add(SIGNATURE_LEN).ok_or(unspecified(()))?;
        rsp.get_mut(unsigned..len)
            .ok_or(unspecified(()))?
            .copy_from_slice(&signature);
        self.transcript.reset_l1();
        self.state = ConnectionState::Authenticated;
        Ok(len)
    }

    /// MEASUREMENTS: the count (operation 0), all blocks (0xFF) or the block of one index
    /// (InvalidRequest if there is none), signed over L1/L2 if requested (slot 0 only).
    fn measurements(
        &mut self,
        attributes: u8,
        operation: u8,
        slot: u8,
        req: &[u8],
        rsp: &mut [u8],
        rng: &mut impl FnMut(&mut [u8]),
    ) -> Outcome {
        let signed = attributes & meas::ATTR_SIGNATURE != 0;
        if signed && slot != SLOT {
            return Err(INVALID);
        }
        let mut total = 0usize;
        while self.device.measurement(total).is_some() && total < MAX_MEASUREMENT_BLOCKS {
            total = total.saturating_add(1);
        }
        let total_u8 = u8::try_from(total).map_err(unspecified)?;
        let param1 = if operation == meas::OP_COUNT {
            total_u8
        } else {
            0
        };
        let param2 = if signed { slot } else { 0 };
        let mut w = Writer::new(rsp);
        put_header(&mut w, SPDM_VERSION_12, Code::Measurements, param1, param2)
            .map_err(unspecified)?;
        let record_at = w.len();
        w.zeroes(MEASUREMENTS_RECORD_HEADER_LEN)
            .map_err(unspecified)?;
        let mut blocks = 0u8;
        if operation != meas::OP_COUNT {
            for n in 0..total {
                let Some(m) = self.device.measurement(n) else {
                    break;
                };
                if operation != meas::OP_ALL && m.index != operation {
                    continue;
                }
                let header = block_header(&m).ok_or(unspecified(()))?;
                w.put(&header).map_err(unspecified)?;
                w.put(m.value).map_err(unspecified)?;
                blocks = blocks.saturating_add(1);
            }
            if blocks == 0 && operation != meas::OP_ALL {
                return Err(INVALID);
            }
        }
        let record_len = w
            .len()
            .checked_sub(record_at + MEASUREMENTS_RECORD_HEADER_LEN)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(unspecified(()))?;
        let [a, b, c, d] = record_len.to_le_bytes();
        if d != 0 {
            return Err(unspecified(()));
        }
        w.patch(record_at, &[blocks, a, b, c])
            .map_err(unspecified)?;
        let nonce = Self::nonce(rng)?;
        w.put(&nonce).map_err(unspecified)?;
        w.u16(0).map_err(unspecified)?;
        let unsigned = w.len();
        if signed && rsp.len() < unsigned.saturating_add(SIGNATURE_LEN) {
            return Err(unspecified(()));
        }
        if !signed {
            self.transcript
                .append_l1(&[req, written(rsp, unsigned)])
                .map_err(unspecified)?;
            self.reset_m1_unless_authenticated();
            return Ok(unsigned);
        }
        let digest = self
            .transcript
            .finish_l1(&[req, written(rsp, unsigned)])
            .map_err(unspecified)?;
        let mut signature = [0u8; SIGNATURE_LEN];
        self.device
            .sign(
                &signed_message(SignedOp::Measurements, &digest),
                &mut signature,
            )
            .map_err(unspecified)?;
        let len = unsigned.saturating_add(SIGNATURE_LEN);
        rsp.get_mut(unsigned..len)
            .ok_or(unspecified(()))?
            .copy_from_slice(&signature);
        self.reset_m1_unless_authenticated();
        Ok(len)
    }

    /// GET_MEASUREMENTS before CHALLENGE_AUTH resets B and C.
    fn reset_m1_unless_authenticated(&mut self) {
        if self.state < ConnectionState::Authenticated {
            self.transcript.reset_m1();
        }
    }
}

/// Returns the 7-byte header of the DMTF measurement block of `m`: index, specification
/// DMTF, MeasurementSize, value type, value size; `None` if the value is too long.
pub(crate) fn block_header(m: &Measurement<'_>) -> Option<[u8; MEASUREMENT_BLOCK_HEADER_LEN]> {
    let value_size = u16::try_from(m.value.len()).ok()?;
    let size = value_size.checked_add(3)?;
    let [s0, s1] = size.to_le_bytes();
    let [v0, v1] = value_size.to_le_bytes();
    Some([
        m.index,
        alg::MEASUREMENT_SPEC_DMTF,
        s0,
        s1,
        m.value_type,
        v0,
        v1,
    ])
}
