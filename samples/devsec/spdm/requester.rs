// SPDX-License-Identifier: GPL-2.0

//! TSM side of SPDM 1.2: request encoding, response decoding, and [`Requester`], which
//! checks every response as a verifier must before the TSM relies on it, keeps the
//! transcript, reassembles the certificate chain and hands the exact signed bytes to the
//! embedder's [`Verifier`].

use super::codec::{
    alg,
    cap_flags,
    ct_eq,
    decode_error,
    first_certificate,
    meas,
    put_header,
    signed_message,
    summary,
    AlgorithmsOffer,
    CapabilityParams,
    Code,
    CodecError,
    ConnectionState,
    Digest,
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
    MAX_ALGORITHMS_LEN,
    MAX_ALG_STRUCTS,
    MAX_MESSAGE_LEN,
    MAX_NEGOTIATE_ALGORITHMS_LEN,
    MAX_OPAQUE_LEN,
    MAX_VERSION_ENTRIES,
    MIN_DATA_TRANSFER_SIZE,
    SIGNATURE_LEN,
    SLOT,
    SLOT_MASK,
    SPDM_VERSION_10,
    SPDM_VERSION_12, //
};
use super::transcript::{
    hash_of,
    CryptoError,
    Hash,
    Transcript,
    TranscriptError, //
};

/// Longest certificate chain the requester reassembles.
pub(crate) const MAX_CERT_CHAIN_LEN: usize = 8192;

/// Longest request the requester sends (NEGOTIATE_ALGORITHMS at most).
pub(crate) const MAX_REQUEST_LEN: usize = MAX_NEGOTIATE_ALGORITHMS_LEN;

/// CAPABILITIES flags a responder must announce for device authentication: certificates,
/// CHALLENGE and signed measurements.
pub(crate) const REQUIRED_FLAGS: u32 =
    cap_flags::CERT_CAP | cap_flags::CHAL_CAP | cap_flags::MEAS_CAP_SIG;

/// The GET_CAPABILITIES this requester sends: no capabilities of its own (no mutual
/// authentication, no sessions), messages up to [`MAX_MESSAGE_LEN`].
pub(crate) const OUR_CAPABILITIES: CapabilityParams = CapabilityParams {
    ct_exponent: 0,
    flags: 0,
    data_transfer_size: MAX_MESSAGE_LEN as u32,
    max_message_size: MAX_MESSAGE_LEN as u32,
};

/// What the embedder of a [`Requester`] provides to check signatures: the kernel verifies
/// with the public key of the leaf certificate of the chain through its crypto API; the
/// KUnit suites use a test double.
pub(crate) trait Verifier {
    /// Checks that `signature` is an RSASSA-3072 (PKCS#1 v1.5, SHA-384) signature over
    /// `message` by the leaf key of `cert_chain`, the whole SPDM chain of slot 0 as
    /// reassembled from CERTIFICATE (see [`Requester::cert_chain`]).
    fn verify(
        &self,
        cert_chain: &[u8],
        message: &SignedMessage,
        signature: &Signature,
    ) -> Result<(), CryptoError>;
}

/// Everything that makes a request impossible or a response unacceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequesterError {
    /// The response could not be decoded, or the request not encoded.
    Codec(CodecError),
    /// The request is not allowed in the current state of the connection (or, for
    /// GET_CERTIFICATE, not at the offset the reassembly is at).
    WrongState,
    /// A response arrived without a request waiting for it.
    NoRequest,
    /// The device answered with ERROR.
    Spdm {
        /// The error code ([`super::codec::ErrorCode::from_u8`]).
        code: u8,
        /// The error data.
        data: u8,
    },
    /// The response has another code than the one expected.
    UnexpectedResponse {
        /// The expected response code.
        expected: u8,
        /// The response code received.
        got: u8,
    },
    /// The response is not in the version of the request.
    VersionMismatch(u8),
    /// VERSION does not list SPDM 1.2.
    VersionUnsupported,
    /// CAPABILITIES lacks these of the [`REQUIRED_FLAGS`].
    MissingCapabilities(u32),
    /// CAPABILITIES has an invalid DataTransferSize or MaxSPDMmsgSize, or a reserved
    /// MEAS_CAP value.
    BadCapabilities,
    /// ALGORITHMS selects something not offered or not supported here.
    BadAlgorithms,
    /// The response names another slot, or the slot mask lacks the slot.
    SlotMismatch,
    /// The certificate chain is longer than [`MAX_CERT_CHAIN_LEN`].
    ChainTooLarge,
    /// A certificate portion contradicts the request or the previous portions.
    ChainInconsistent,
    /// A certificate portion was empty although data remained.
    ChainNoProgress,
    /// The assembled chain is malformed: Length field, root hash or DER framing.
    BadChain,
    /// The root hash of the chain is not the digest of its first certificate.
    RootHashMismatch,
    /// The assembled chain does not have the digest DIGESTS announced.
    DigestMismatch,
    /// CHALLENGE_AUTH names another certificate chain than the one assembled.
    ChainHashMismatch,
    /// A MEASUREMENTS record is malformed or not what was asked for.
    BadMeasurements,
    /// CHALLENGE_AUTH is malformed (reserved attribute, opaque data length).
    BadChallengeAuth,
    /// The signature does not verify over the transcript.
    SignatureInvalid,
    /// The transcript could not be kept (VCA too long, hash failure).
    Transcript(TranscriptError),
}

impl From<CodecError> for RequesterError {
    fn from(err: CodecError) -> Self {
        Self::Codec(err)
    }
}

impl From<TranscriptError> for RequesterError {
    fn from(err: TranscriptError) -> Self {
        Self::Transcript(err)
    }
}

impl From<CryptoError> for RequesterError {
    fn from(_: CryptoError) -> Self {
        Self::Transcript(TranscriptError::Crypto)
    }
}

impl Request {
    /// Encodes the request into `buf`; returns the message length. GET_VERSION is sent in
    /// version 1.0, everything else in 1.2.
    pub(crate) fn encode(&self, buf: &mut [u8]) -> Result<usize, CodecError> {
        let mut w = Writer::new(buf);
        let v = SPDM_VERSION_12;
        match self {
            Self::GetVersion => put_header(&mut w, SPDM_VERSION_10, Code::GetVersion, 0, 0)?,
            Self::GetCapabilities(p) => {
                put_header(&mut w, v, Code::GetCapabilities, 0, 0)?;
                w.put(&[0, p.ct_exponent, 0, 0])?;
                w.u32(p.flags)?;
                w.u32(p.data_transfer_size)?;
                w.u32(p.max_message_size)?;
            }
            Self::NegotiateAlgorithms(o) => encode_offer(&mut w, o)?,
            Self::GetDigests => put_header(&mut w, v, Code::GetDigests, 0, 0)?,
            Self::GetCertificate {
                slot,
                offset,
                length,
            } => {
                put_header(&mut w, v, Code::GetCertificate, *slot, 0)?;
                w.u16(*offset)?;
                w.u16(*length)?;
            }
            Self::Challenge {
                slot,
                summary,
                nonce,
            } => {
                put_header(&mut w, v, Code::Challenge, *slot, *summary)?;
                w.put(nonce)?;
            }
            Self::GetMeasurements {
                attributes,
                operation,
                nonce,
                slot,
            } => {
                put_header(&mut w, v, Code::GetMeasurements, *attributes, *operation)?;
                if attributes & meas::ATTR_SIGNATURE != 0 {
                    w.put(nonce)?;
                    w.u8(*slot)?;
                }
            }
        }
        Ok(w.len())
    }
}

/// Encodes NEGOTIATE_ALGORITHMS for `o`; extended algorithms are written as zeroes.
fn encode_offer(w: &mut Writer<'_>, o: &AlgorithmsOffer) -> Result<(), CodecError> {
    let structs = o.structs();
    if usize::from(o.struct_count) > MAX_ALG_STRUCTS {
        return Err(CodecError::TooLong);
    }
    put_header(
        w,
        SPDM_VERSION_12,
        Code::NegotiateAlgorithms,
        o.struct_count,
        0,
    )?;
    let length_at = w.len();
    w.u16(0)?;
    w.u8(o.measurement_spec)?;
    w.u8(o.other_params)?;
    w.u32(o.base_asym)?;
    w.u32(o.base_hash)?;
    w.zeroes(12)?;
    w.u8(o.ext_asym_count)?;
    w.u8(o.ext_hash_count)?;
    w.u16(0)?;
    let ext = usize::from(o.ext_asym_count) + usize::from(o.ext_hash_count);
    w.zeroes(ext * 4)?;
    for s in structs {
        w.u8(s.alg_type)?;
        w.u8((alg::STRUCT_FIXED_BYTES << 4) | (s.ext_count & 0xf))?;
        w.u16(s.supported)?;
        w.zeroes(usize::from(s.ext_count & 0xf) * 4)?;
    }
    let length = u16::try_from(w.len()).map_err(|_| CodecError::TooLong)?;
    w.patch(length_at, &length.to_le_bytes())
}

/// Checks the header of response `msg`: `version` and `code`; returns Param1, Param2 and a
/// reader positioned after the header. ERROR is [`RequesterError::Spdm`].
fn expect(msg: &[u8], version: u8, code: Code) -> Result<(u8, u8, Reader<'_>), RequesterError> {
    if let Some((_, code, data)) = decode_error(msg) {
        return Err(RequesterError::Spdm { code, data });
    }
    let mut r = Reader::new(msg);
    let got_version = r.u8()?;
    let got = r.u8()?;
    let param1 = r.u8()?;
    let param2 = r.u8()?;
    if got != code as u8 {
        return Err(RequesterError::UnexpectedResponse {
            expected: code as u8,
            got,
        });
    }
    if got_version != version {
        return Err(RequesterError::VersionMismatch(got_version));
    }
    Ok((param1, param2, r))
}

/// Checks an assembled SPDM certificate chain: the Length field is the chain's length, a
/// root hash follows the header, the certificates are well-framed DER, and the root hash
/// is the digest of the first (root) certificate.
pub(crate) fn check_cert_chain<H: Hash>(chain: &[u8]) -> Result<(), RequesterError> {
    let mut r = Reader::new(chain);
    let length = r.u16().map_err(|_| RequesterError::BadChain)?;
    let _reserved = r.u16().map_err(|_| RequesterError::BadChain)?;
    let root_hash: Digest = r.array().map_err(|_| RequesterError::BadChain)?;
    if usize::from(length) != chain.len() || r.remaining() == 0 {
        return Err(RequesterError::BadChain);
    }
    let certs = chain.get(CERT_CHAIN_HEADER_LEN..).unwrap_or(&[]);
    let root = first_certificate(certs).ok_or(RequesterError::BadChain)?;
    if !ct_eq(&hash_of::<H>(&[root])?, &root_hash) {
        return Err(RequesterError::RootHashMismatch);
    }
    Ok(())
}

/// A DMTF measurement block of a checked MEASUREMENTS record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MeasurementBlock<'a> {
    /// Index.
    pub(crate) index: u8,
    /// DMTFSpecMeasurementValueType.
    pub(crate) value_type: u8,
    /// The value.
    pub(crate) value: &'a [u8],
}

/// Iterator over the blocks of a measurement record. On a malformed record it stops early;
/// records a [`Requester`] returned are well-formed.
#[derive(Clone, Debug)]
pub(crate) struct MeasurementBlocks<'a> {
    rest: &'a [u8],
}

impl<'a> MeasurementBlocks<'a> {
    /// Iterates over the blocks of `record`.
    pub(crate) fn new(record: &'a [u8]) -> Self {
        Self { rest: record }
    }

    /// Decodes the next block and the bytes after it.
    fn split(rest: &'a [u8]) -> Result<(MeasurementBlock<'a>, &'a [u8]), CodecError> {
        let mut r = Reader::new(rest);
        let index = r.u8()?;
        let spec = r.u8()?;
        let size = usize::from(r.u16()?);
        let mut block = Reader::new(r.take(size)?);
        let value_type = block.u8()?;
        let value_size = usize::from(block.u16()?);
        let value = block.take(value_size)?;
        block.finish()?;
        if spec != alg::MEASUREMENT_SPEC_DMTF || index == 0 {
            return Err(CodecError::InvalidField);
        }
        let used = rest.len().saturating_sub(r.remaining());
        Ok((
            MeasurementBlock {
                index,
                value_type,
                value,
            },
            rest.get(used..).unwrap_or(&[]),
        ))
    }
}

impl<'a> Iterator for MeasurementBlocks<'a> {
    type Item = MeasurementBlock<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Self::split(self.rest) {
            Ok((block, rest)) => {
                self.rest = rest;
                Some(block)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Checks a measurement record of `count` blocks: DMTF blocks with consistent sizes that
/// fill the record exactly, non-zero indices. Returns whether it is well-formed.
fn check_record(record: &[u8], count: u8) -> bool {
    let mut rest = record;
    let mut blocks = 0usize;
    while !rest.is_empty() {
        match MeasurementBlocks::split(rest) {
            Ok((_, next)) => rest = next,
            Err(_) => return false,
        }
        blocks = blocks.saturating_add(1);
    }
    blocks == usize::from(count)
}

/// What a checked response tells the TSM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    /// VERSION lists 1.2.
    Version,
    /// CAPABILITIES of the responder.
    Capabilities(CapabilityParams),
    /// ALGORITHMS selected RSASSA-3072 and SHA-384.
    Algorithms {
        /// Whether DMTF measurements with SHA-384 were selected.
        measurements: bool,
    },
    /// DIGESTS: the digest of the chain of slot 0.
    Digests(Digest),
    /// CERTIFICATE: a portion was added to the chain.
    Certificate {
        /// Bytes of the chain still to fetch; 0 once the chain is complete and checked.
        remainder: u16,
    },
    /// CHALLENGE_AUTH verified.
    ChallengeAuth {
        /// The bytes whose signature was verified.
        signed: SignedMessage,
        /// The measurement summary hash, if one was requested.
        summary: Option<Digest>,
    },
    /// MEASUREMENTS checked (and verified, if signed).
    Measurements {
        /// Param1 of the response: the number of blocks, for operation 0.
        total: u8,
        /// NumberOfBlocks.
        blocks: u8,
        /// The measurement record ([`MeasurementBlocks`]).
        record: &'a [u8],
        /// The bytes whose signature was verified, if a signature was requested.
        signed: Option<SignedMessage>,
    },
}

/// TSM-side SPDM 1.2 requester of one connection.
///
/// The TSM encodes each request with [`Requester::encode`], sends it and hands the response
/// to [`Requester::decode`]. Requests must follow the protocol: GET_VERSION at any time
/// (restarting the connection), GET_CAPABILITIES after VERSION, NEGOTIATE_ALGORITHMS after
/// CAPABILITIES, then GET_DIGESTS, GET_CERTIFICATE (in order from offset 0, see
/// [`Requester::next_certificate`]), CHALLENGE once the chain is complete, and
/// GET_MEASUREMENTS once DMTF measurements are negotiated. Slot 0 only.
///
/// A response is accepted only if it passes every check below; only then does it enter the
/// transcript (see `transcript.rs`) and change the state. An ERROR answer changes nothing
/// but uses up the request, except that after an ERROR (or a refused response) to
/// GET_MEASUREMENTS, L1/L2 starts again after the VCA, as the responder's does.
///
/// - VERSION: version 1.0, at most [`MAX_VERSION_ENTRIES`] entries, 1.2 among them.
/// - Every later response: version 1.2, the code of the request, exactly its length (up to
///   [`MAX_PADDING`](super::codec::MAX_PADDING) bytes of DOE padding after it are
///   ignored).
/// - CAPABILITIES: [`REQUIRED_FLAGS`], a DataTransferSize of at least 42, a MaxSPDMmsgSize
///   not below it, no reserved MEAS_CAP value.
/// - ALGORITHMS: Length field right, BaseAsymSel RSASSA-3072 and BaseHashSel SHA-384, both
///   offered; MeasurementSpecificationSel DMTF (if offered) with MeasurementHashAlgo SHA-384,
///   or neither; no extended algorithms, no opaque data format, empty AlgStruct selections.
/// - DIGESTS: slot 0 in the slot mask, one digest per slot of the mask.
/// - CERTIFICATE: the slot asked for; PortionLength at most the Length asked for and not 0
///   while data remain; offset + PortionLength + RemainderLength the total of the first
///   portion, at most [`MAX_CERT_CHAIN_LEN`]. The complete chain: Length field the
///   assembled length, a root hash, DER-framed certificates, root hash the digest of the
///   first certificate, and the digest DIGESTS announced (if it came).
/// - CHALLENGE_AUTH: the slot asked for, no mutual authentication, cert chain hash the
///   digest of the assembled chain, a measurement summary hash exactly if asked for, at
///   most 1024 bytes of opaque data, a signature that verifies over M1/M2.
/// - MEASUREMENTS: for operation 0 no blocks; for an index exactly that block; for all,
///   NumberOfBlocks blocks; blocks DMTF with consistent sizes filling the record exactly;
///   the slot asked for and a signature exactly if requested, verifying over L1/L2; at most
///   1024 bytes of opaque data.
///
/// SPDM puts no requester nonce into CHALLENGE_AUTH or MEASUREMENTS: freshness comes from
/// the requester nonce being part of the signed transcript (C, or L1/L2).
pub(crate) struct Requester<H> {
    state: ConnectionState,
    transcript: Transcript<H>,
    pending: Option<Request>,
    pending_msg: [u8; MAX_REQUEST_LEN],
    pending_len: usize,
    responder: CapabilityParams,
    measurements: bool,
    digest: Option<Digest>,
    chain: [u8; MAX_CERT_CHAIN_LEN],
    chain_len: usize,
    chain_total: usize,
    chain_done: bool,
}

impl<H: Hash> Requester<H> {
    /// Creates a requester in state NotStarted.
    pub(crate) fn new() -> Self {
        Self {
            state: ConnectionState::NotStarted,
            transcript: Transcript::new(),
            pending: None,
            pending_msg: [0; MAX_REQUEST_LEN],
            pending_len: 0,
            responder: CapabilityParams::default(),
            measurements: false,
            digest: None,
            chain: [0; MAX_CERT_CHAIN_LEN],
            chain_len: 0,
            chain_total: 0,
            chain_done: false,
        }
    }

    /// Returns the connection state.
    #[cfg(spdm_kunit)]
    pub(crate) fn state(&self) -> ConnectionState {
        self.state
    }

    /// Returns the responder's capabilities (zero before CAPABILITIES).
    #[cfg(spdm_kunit)]
    pub(crate) fn responder_capabilities(&self) -> CapabilityParams {
        self.responder
    }

    /// Returns the complete, checked certificate chain of slot 0, if it was fetched.
    pub(crate) fn cert_chain(&self) -> Option<&[u8]> {
        if self.chain_done {
            self.chain.get(..self.chain_len)
        } else {
            None
        }
    }

    /// Returns the VCA of the connection so far.
    #[cfg(spdm_kunit)]
    pub(crate) fn vca(&self) -> &[u8] {
        self.transcript.vca()
    }

    /// Returns the GET_CERTIFICATE that fetches the next portion of the chain, at most
    /// `length` bytes (the responder may send less).
    pub(crate) fn next_certificate(&self, length: u16) -> Request {
        let offset = if self.chain_done { 0 } else { self.chain_len };
        Request::GetCertificate {
            slot: SLOT,
            offset: u16::try_from(offset).unwrap_or(u16::MAX),
            length,
        }
    }

    /// Takes `chain` as the certificate chain of slot 0 instead of fetching it with
    /// GET_CERTIFICATE: a chain the TSM kept from an earlier connection with the device.
    ///
    /// Allowed after DIGESTS and before any CERTIFICATE of this connection. The chain must
    /// pass the checks of a fetched one, and its digest must be the one DIGESTS announced:
    /// a device whose chain changed is refused with [`RequesterError::DigestMismatch`] and
    /// its chain must then be fetched. The transcript does not change (B holds the messages
    /// exchanged, which the responder records the same way).
    pub(crate) fn use_cached_chain(&mut self, chain: &[u8]) -> Result<(), RequesterError> {
        let Some(digest) = self.digest else {
            return Err(RequesterError::WrongState);
        };
        if self.state < ConnectionState::Negotiated || self.chain_len != 0 || self.pending.is_some()
        {
            return Err(RequesterError::WrongState);
        }
        let dst = self
            .chain
            .get_mut(..chain.len())
            .ok_or(RequesterError::ChainTooLarge)?;
        check_cert_chain::<H>(chain)?;
        if !ct_eq(&hash_of::<H>(&[chain])?, &digest) {
            return Err(RequesterError::DigestMismatch);
        }
        dst.copy_from_slice(chain);
        self.chain_len = chain.len();
        self.chain_total = chain.len();
        self.chain_done = true;
        Ok(())
    }

    /// Checks that `req` may be sent now.
    fn allowed(&self, req: &Request) -> bool {
        let negotiated = self.state >= ConnectionState::Negotiated;
        match *req {
            Request::GetVersion => true,
            Request::GetCapabilities(_) => self.state == ConnectionState::AfterVersion,
            Request::NegotiateAlgorithms(_) => self.state == ConnectionState::AfterCapabilities,
            Request::GetDigests => negotiated,
            Request::GetCertificate { slot, offset, .. } => {
                let offset = usize::from(offset);
                negotiated
                    && slot == SLOT
                    && (offset == 0 || (!self.chain_done && offset == self.chain_len))
            }
            Request::Challenge { slot, summary, .. } => {
                negotiated
                    && slot == SLOT
                    && self.chain_done
                    && (summary == summary::NONE || self.measurements)
            }
            Request::GetMeasurements {
                attributes, slot, ..
            } => {
                negotiated
                    && self.measurements
                    && (attributes & meas::ATTR_SIGNATURE == 0 || (slot == SLOT && self.chain_done))
            }
        }
    }

    /// Encodes `req` into `buf` and waits for its response; returns the message length.
    pub(crate) fn encode(
        &mut self,
        req: &Request,
        buf: &mut [u8],
    ) -> Result<usize, RequesterError> {
        if !self.allowed(req) {
            return Err(RequesterError::WrongState);
        }
        let len = req.encode(&mut self.pending_msg)?;
        let msg = self
            .pending_msg
            .get(..len)
            .ok_or(CodecError::BufferTooSmall)?;
        buf.get_mut(..len)
            .ok_or(CodecError::BufferTooSmall)?
            .copy_from_slice(msg);
        self.pending_len = len;
        self.pending = Some(*req);
        Ok(len)
    }

    /// Checks `rsp`, the response to the request last encoded, and acts on it. Signatures
    /// are checked with `verifier` against the assembled chain. `rsp` may carry up to
    /// [`MAX_PADDING`](super::codec::MAX_PADDING) bytes of DOE padding after the response;
    /// they are ignored (and not part of the transcript).
    pub(crate) fn decode<'r>(
        &mut self,
        rsp: &'r [u8],
        verifier: &impl Verifier,
    ) -> Result<Reply<'r>, RequesterError> {
        let req = self.pending.take().ok_or(RequesterError::NoRequest)?;
        let mut msg = [0u8; MAX_REQUEST_LEN];
        let len = self.pending_len;
        msg.get_mut(..len)
            .ok_or(CodecError::BufferTooSmall)?
            .copy_from_slice(self.pending_msg.get(..len).unwrap_or(&[]));
        let req_msg = msg.get(..len).unwrap_or(&[]);
        match req {
            Request::GetVersion => self.version(req_msg, rsp),
            Request::GetCapabilities(_) => self.capabilities(req_msg, rsp),
            Request::NegotiateAlgorithms(offer) => self.algorithms(&offer, req_msg, rsp),
            Request::GetDigests => self.digests(req_msg, rsp),
            Request::GetCertificate { offset, length, .. } => {
                self.certificate(offset, length, req_msg, rsp)
            }
            Request::Challenge { summary, .. } => {
                self.challenge_auth(summary, req_msg, rsp, verifier)
            }
            Request::GetMeasurements {
                attributes,
                operation,
                slot,
                ..
            } => {
                let reply = self.measurements(attributes, operation, slot, req_msg, rsp, verifier);
                if reply.is_err() {
                    // The responder ended L1/L2 if it answered ERROR (libspdm's and ours
                    // do), or it took a response we refuse: start again after the VCA.
                    self.transcript.reset_l1();
                }
                reply
            }
        }
    }

    fn version<'r>(&mut self, req: &[u8], rsp: &'r [u8]) -> Result<Reply<'r>, RequesterError> {
        let (_, _, mut r) = expect(rsp, SPDM_VERSION_10, Code::Version)?;
        let _reserved = r.u8()?;
        let count = usize::from(r.u8()?);
        if count == 0 || count > MAX_VERSION_ENTRIES {
            return Err(CodecError::InvalidField.into());
        }
        let mut has_12 = false;
        for _ in 0..count {
            has_12 |= r.u16()? >> 8 == u16::from(SPDM_VERSION_12);
        }
        let rsp = r.finish_padded(rsp)?;
        if !has_12 {
            return Err(RequesterError::VersionUnsupported);
        }
        self.state = ConnectionState::NotStarted;
        self.responder = CapabilityParams::default();
        self.measurements = false;
        self.digest = None;
        self.chain_len = 0;
        self.chain_total = 0;
        self.chain_done = false;
        self.transcript.reset();
        self.transcript.append_vca(&[req, rsp])?;
        self.state = ConnectionState::AfterVersion;
        Ok(Reply::Version)
    }

    fn capabilities<'r>(&mut self, req: &[u8], rsp: &'r [u8]) -> Result<Reply<'r>, RequesterError> {
        let (_, _, mut r) = expect(rsp, SPDM_VERSION_12, Code::Capabilities)?;
        let _reserved = r.u8()?;
        let ct_exponent = r.u8()?;
        let _reserved = r.u16()?;
        let params = CapabilityParams {
            ct_exponent,
            flags: r.u32()?,
            data_transfer_size: r.u32()?,
            max_message_size: r.u32()?,
        };
        let rsp = r.finish_padded(rsp)?;
        if params.flags & cap_flags::MEAS_CAP_MASK == cap_flags::MEAS_CAP_MASK
            || params.data_transfer_size < MIN_DATA_TRANSFER_SIZE
            || params.max_message_size < params.data_transfer_size
        {
            return Err(RequesterError::BadCapabilities);
        }
        let missing = REQUIRED_FLAGS & !params.flags;
        if missing != 0 {
            return Err(RequesterError::MissingCapabilities(missing));
        }
        self.transcript.append_vca(&[req, rsp])?;
        self.responder = params;
        self.state = ConnectionState::AfterCapabilities;
        Ok(Reply::Capabilities(params))
    }

    fn algorithms<'r>(
        &mut self,
        offer: &AlgorithmsOffer,
        req: &[u8],
        rsp: &'r [u8],
    ) -> Result<Reply<'r>, RequesterError> {
        let (count, _, mut r) = expect(rsp, SPDM_VERSION_12, Code::Algorithms)?;
        let length = usize::from(r.u16()?);
        if !(ALGORITHMS_FIXED_LEN..=MAX_ALGORITHMS_LEN).contains(&length) {
            return Err(CodecError::InvalidField.into());
        }
        let spec = r.u8()?;
        let other = r.u8()?;
        let meas_hash = r.u32()?;
        let asym = r.u32()?;
        let hash = r.u32()?;
        let _reserved = r.take(12)?;
        let ext_asym = r.u8()?;
        let ext_hash = r.u8()?;
        let _reserved = r.u16()?;
        if usize::from(count) > MAX_ALG_STRUCTS {
            return Err(RequesterError::BadAlgorithms);
        }
        for _ in 0..count {
            let _alg_type = r.u8()?;
            let alg_count = r.u8()?;
            let supported = r.u16()?;
            if alg_count != alg::STRUCT_FIXED_BYTES << 4 || supported != 0 {
                return Err(RequesterError::BadAlgorithms);
            }
        }
        let rsp = r.finish_padded(rsp)?;
        if length != rsp.len() {
            return Err(CodecError::InvalidField.into());
        }
        let measurements = match (spec, meas_hash) {
            (alg::MEASUREMENT_SPEC_DMTF, alg::MEASUREMENT_HASH_SHA_384) => true,
            (0, 0) => false,
            _ => return Err(RequesterError::BadAlgorithms),
        };
        if asym != alg::BASE_ASYM_RSASSA_3072
            || offer.base_asym & asym == 0
            || hash != alg::BASE_HASH_SHA_384
            || offer.base_hash & hash == 0
            || offer.measurement_spec & spec != spec
            || ext_asym != 0
            || ext_hash != 0
            || other & 0xf != 0
        {
            return Err(RequesterError::BadAlgorithms);
        }
        self.transcript.append_vca(&[req, rsp])?;
        self.measurements = measurements;
        self.state = ConnectionState::Negotiated;
        Ok(Reply::Algorithms { measurements })
    }

    fn digests<'r>(&mut self, req: &[u8], rsp: &'r [u8]) -> Result<Reply<'r>, RequesterError> {
        let (_, mask, mut r) = expect(rsp, SPDM_VERSION_12, Code::Digests)?;
        if mask & (1 << SLOT) == 0 {
            return Err(RequesterError::SlotMismatch);
        }
        // Digests are in slot order; slot 0 comes first.
        let digest: Digest = r.array()?;
        for _ in 1..mask.count_ones() {
            let _other: Digest = r.array()?;
        }
        let rsp = r.finish_padded(rsp)?;
        if self.chain_done {
            let ours = hash_of::<H>(&[self.chain.get(..self.chain_len).unwrap_or(&[])])?;
            if !ct_eq(&ours, &digest) {
                return Err(RequesterError::DigestMismatch);
            }
        }
        self.transcript.reset_l1();
        self.transcript.reset_m1();
        self.transcript.append_b(&[req, rsp])?;
        self.digest = Some(digest);
        Ok(Reply::Digests(digest))
    }

    fn certificate<'r>(
        &mut self,
        offset: u16,
        length: u16,
        req: &[u8],
        rsp: &'r [u8],
    ) -> Result<Reply<'r>, RequesterError> {
        let (slot, _, mut r) = expect(rsp, SPDM_VERSION_12, Code::Certificate)?;
        if slot & SLOT_MASK != SLOT {
            return Err(RequesterError::SlotMismatch);
        }
        let portion_len = r.u16()?;
        let remainder = r.u16()?;
        let portion = r.take(usize::from(portion_len))?;
        let rsp = r.finish_padded(rsp)?;
        if portion_len > length {
            return Err(RequesterError::ChainInconsistent);
        }
        if portion_len == 0 {
            return Err(RequesterError::ChainNoProgress);
        }
        let offset = usize::from(offset);
        let end = offset
            .checked_add(portion.len())
            .ok_or(RequesterError::ChainInconsistent)?;
        let total = end
            .checked_add(usize::from(remainder))
            .ok_or(RequesterError::ChainInconsistent)?;
        if offset != 0 && total != self.chain_total {
            return Err(RequesterError::ChainInconsistent);
        }
        if total > MAX_CERT_CHAIN_LEN {
            return Err(RequesterError::ChainTooLarge);
        }
        self.chain
            .get_mut(offset..end)
            .ok_or(RequesterError::ChainTooLarge)?
            .copy_from_slice(portion);
        if remainder == 0 {
            let chain = self.chain.get(..end).unwrap_or(&[]);
            check_cert_chain::<H>(chain)?;
            if let Some(digest) = self.digest {
                if !ct_eq(&hash_of::<H>(&[chain])?, &digest) {
                    return Err(RequesterError::DigestMismatch);
                }
            }
        }
        self.transcript.reset_l1();
        self.transcript.append_b(&[req, rsp])?;
        self.chain_total = total;
        self.chain_len = end;
        self.chain_done = remainder == 0;
        Ok(Reply::Certificate { remainder })
    }

    fn challenge_auth<'r>(
        &mut self,
        kind: u8,
        req: &[u8],
        rsp: &'r [u8],
        verifier: &impl Verifier,
    ) -> Result<Reply<'r>, RequesterError> {
        let (attributes, mask, mut r) = expect(rsp, SPDM_VERSION_12, Code::ChallengeAuth)?;
        if attributes & SLOT_MASK != SLOT || mask & (1 << SLOT) == 0 {
            return Err(RequesterError::SlotMismatch);
        }
        if attributes & 0x80 != 0 {
            return Err(RequesterError::BadChallengeAuth);
        }
        let chain_hash: Digest = r.array()?;
        let _nonce: Nonce = r.array()?;
        let summary_hash = if kind == summary::NONE {
            None
        } else {
            Some(r.array::<HASH_LEN>()?)
        };
        let opaque_len = usize::from(r.u16()?);
        if opaque_len > MAX_OPAQUE_LEN {
            return Err(RequesterError::BadChallengeAuth);
        }
        let _opaque = r.take(opaque_len)?;
        let signature: Signature = r.array()?;
        let rsp = r.finish_padded(rsp)?;
        let chain = self.chain.get(..self.chain_len).unwrap_or(&[]);
        if !self.chain_done || !ct_eq(&hash_of::<H>(&[chain])?, &chain_hash) {
            return Err(RequesterError::ChainHashMismatch);
        }
        let unsigned = rsp
            .get(..rsp.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or(&[]);
        self.transcript.reset_l1();
        let digest = self.transcript.finish_m1(&[req, unsigned])?;
        let signed = signed_message(SignedOp::ChallengeAuth, &digest);
        verifier
            .verify(chain, &signed, &signature)
            .map_err(|_| RequesterError::SignatureInvalid)?;
        self.state = ConnectionState::Authenticated;
        Ok(Reply::ChallengeAuth {
            signed,
            summary: summary_hash,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn measurements<'r>(
        &mut self,
        attributes: u8,
        operation: u8,
        slot: u8,
        req: &[u8],
        rsp: &'r [u8],
        verifier: &impl Verifier,
    ) -> Result<Reply<'r>, RequesterError> {
        let (total, param2, mut r) = expect(rsp, SPDM_VERSION_12, Code::Measurements)?;
        let signed = attributes & meas::ATTR_SIGNATURE != 0;
        let blocks = r.u8()?;
        let record_len = usize::try_from(r.u24()?).map_err(|_| CodecError::TooLong)?;
        let record = r.take(record_len)?;
        let _nonce: Nonce = r.array()?;
        let opaque_len = usize::from(r.u16()?);
        if opaque_len > MAX_OPAQUE_LEN {
            return Err(RequesterError::BadMeasurements);
        }
        let _opaque = r.take(opaque_len)?;
        let signature: Option<Signature> = if signed { Some(r.array()?) } else { None };
        let rsp = r.finish_padded(rsp)?;
        if signed && param2 & SLOT_MASK != slot {
            return Err(RequesterError::SlotMismatch);
        }
        let well_formed = match operation {
            meas::OP_COUNT => blocks == 0 && record.is_empty(),
            meas::OP_ALL => check_record(record, blocks),
            index => {
                check_record(record, blocks)
                    && blocks == 1
                    && MeasurementBlocks::new(record).all(|b| b.index == index)
            }
        };
        if !well_formed {
            return Err(RequesterError::BadMeasurements);
        }
        if self.state < ConnectionState::Authenticated {
            self.transcript.reset_m1();
        }
        let Some(signature) = signature else {
            self.transcript.append_l1(&[req, rsp])?;
            return Ok(Reply::Measurements {
                total,
                blocks,
                record,
                signed: None,
            });
        };
        let unsigned = rsp
            .get(..rsp.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or(&[]);
        let digest = self.transcript.finish_l1(&[req, unsigned])?;
        let message = signed_message(SignedOp::Measurements, &digest);
        let chain = self.cert_chain().ok_or(RequesterError::ChainHashMismatch)?;
        verifier
            .verify(chain, &message, &signature)
            .map_err(|_| RequesterError::SignatureInvalid)?;
        Ok(Reply::Measurements {
            total,
            blocks,
            record,
            signed: Some(message),
        })
    }
}

impl<H: Hash> Default for Requester<H> {
    fn default() -> Self {
        Self::new()
    }
}
