// SPDX-License-Identifier: GPL-2.0

//! Fixtures shared by the SPDM KUnit suites: test doubles of the embedder's cryptography,
//! a test device, message buffers and a responder wired to a requester.
//!
//! # Test doubles, not cryptography
//!
//! [`ToyHash`] is a 48-byte mixing function over the input bytes and [`ToyDevice`] "signs"
//! by filling the 384-byte signature with [`ToyHash`] of a fixed key and the message;
//! [`ToyVerifier`] recomputes that. They only stand in for SHA-384 and RSASSA-3072 so that
//! the suites can check *which bytes* are hashed and signed: any change of the input
//! changes the output with overwhelming likelihood for the inputs used here. They have no
//! security whatsoever and must never be used outside the tests.
//!
//! # On the heap
//!
//! The suites run in the kernel, on a 16 KiB stack, so every buffer and every fixture
//! larger than a few hundred bytes lives in a [`KBox`]: the message buffers ([`Msg`]),
//! the certificate chains ([`Chain`]) and the responders and requesters of [`Device`] and
//! [`Session`]. Only a requester (about 9 KiB) is still built on the stack before it moves,
//! in a frame of its own ([`Session::with`]).
//!
//! Nothing here asserts: a buffer that cannot be allocated has no bytes, and the test using
//! it fails on its own `assert!`; a responder or requester that cannot be allocated is
//! [`NoMemory`], which the test returns (`?`), failing.

use crate::spdm::*;
use core::{
    cell::Cell,
    ops::{Deref, DerefMut},
};
use kernel::prelude::{KBox, GFP_KERNEL};

/// A fixture could not be allocated; a test that returns it fails.
#[derive(Debug)]
pub(crate) struct NoMemory;

/// Moves `value` to the heap; `None` if there is no memory.
pub(crate) fn boxed<T>(value: T) -> Option<KBox<T>> {
    KBox::new(value, GFP_KERNEL).ok()
}

/// `N` bytes on the heap, zeroed; no bytes at all if they could not be allocated. Derefs to
/// its bytes.
pub(crate) struct HeapBuf<const N: usize>(Option<KBox<[u8; N]>>);

impl<const N: usize> HeapBuf<N> {
    /// Allocates `N` zeroed bytes.
    pub(crate) fn new() -> Self {
        Self(boxed([0; N]))
    }
}

impl<const N: usize> Clone for HeapBuf<N> {
    fn clone(&self) -> Self {
        Self(self.0.as_deref().and_then(|bytes| {
            let mut copy = boxed([0; N])?;
            *copy = *bytes;
            Some(copy)
        }))
    }
}

impl<const N: usize> Deref for HeapBuf<N> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Some(bytes) => bytes.as_slice(),
            None => &[],
        }
    }
}

impl<const N: usize> DerefMut for HeapBuf<N> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Some(bytes) => bytes.as_mut_slice(),
            None => &mut [],
        }
    }
}

/// The test double of SHA-384: six 64-bit lanes, each byte mixed into all of them.
pub(crate) struct ToyHash {
    lanes: [u64; 6],
    len: u64,
}

impl Hash for ToyHash {
    fn start() -> Result<Self, CryptoError> {
        let mut lanes = [0u64; 6];
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = 0xcbf2_9ce4_8422_2325 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        Ok(Self { lanes, len: 0 })
    }

    fn update(&mut self, data: &[u8]) -> Result<(), CryptoError> {
        for &byte in data {
            let mut carry = u64::from(byte) ^ self.len.rotate_left(17);
            for lane in self.lanes.iter_mut() {
                *lane = (*lane ^ carry).wrapping_mul(0x0000_0100_0000_01b3);
                carry = lane.rotate_left(29);
            }
            self.len = self.len.wrapping_add(1);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Digest, CryptoError> {
        let len = self.len.to_le_bytes();
        self.update(&len)?;
        self.update(&[0xa5; 16])?;
        let mut out = [0u8; HASH_LEN];
        for (chunk, lane) in out.chunks_exact_mut(8).zip(self.lanes.iter()) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        Ok(out)
    }
}

/// A [`ToyHash`] that fails on any update whose data contain "FAIL", to exercise the
/// failure paths of the embedder's hash.
pub(crate) struct FlakyHash(ToyHash);

impl Hash for FlakyHash {
    fn start() -> Result<Self, CryptoError> {
        Ok(Self(ToyHash::start()?))
    }

    fn update(&mut self, data: &[u8]) -> Result<(), CryptoError> {
        if data.windows(4).any(|w| w == b"FAIL") {
            return Err(CryptoError);
        }
        self.0.update(data)
    }

    fn finish(self) -> Result<Digest, CryptoError> {
        self.0.finish()
    }
}

/// Returns [`ToyHash`] of the concatenation of `parts`, or zeroes (it cannot fail).
pub(crate) fn toy_hash(parts: &[&[u8]]) -> Digest {
    hash_of::<ToyHash>(parts).unwrap_or([0; HASH_LEN])
}

/// The "key" of the toy signature.
const TOY_KEY: &[u8] = b"devsec spdm test key, not a key";

/// The toy signature of `message`: eight [`ToyHash`] blocks of the key, a counter and the
/// message.
pub(crate) fn toy_sign(message: &[u8]) -> Signature {
    let mut sig = [0u8; SIGNATURE_LEN];
    for (i, chunk) in sig.chunks_exact_mut(HASH_LEN).enumerate() {
        chunk.copy_from_slice(&toy_hash(&[TOY_KEY, &[i as u8], message]));
    }
    sig
}

/// A DER SEQUENCE of `len` content bytes, each `fill`, with a two-byte length.
fn fake_cert(out: &mut [u8], len: usize, fill: u8) -> usize {
    let [hi, lo] = (len as u16).to_be_bytes();
    let mut n = 0;
    for byte in [0x30, 0x82, hi, lo] {
        if let Some(b) = out.get_mut(n) {
            *b = byte;
        }
        n += 1;
    }
    for i in 0..len {
        if let Some(b) = out.get_mut(n) {
            *b = fill ^ (i as u8);
        }
        n += 1;
    }
    n
}

/// Longest chain a [`ToyDevice`] holds.
pub(crate) const CHAIN_CAP: usize = 4096;

/// A certificate chain in SPDM format: header, root hash, a root and a leaf "certificate"
/// (DER-framed filler).
#[derive(Clone)]
pub(crate) struct Chain {
    pub(crate) buf: HeapBuf<CHAIN_CAP>,
    pub(crate) len: usize,
}

impl Chain {
    /// A chain with a root of `root_len` and a leaf of `leaf_len` content bytes.
    pub(crate) fn new(root_len: usize, leaf_len: usize) -> Self {
        let mut buf = HeapBuf::new();
        let certs_at = CERT_CHAIN_HEADER_LEN;
        let root = fake_cert(buf.get_mut(certs_at..).unwrap_or(&mut []), root_len, 0x11);
        let leaf_at = certs_at + root;
        let leaf = fake_cert(buf.get_mut(leaf_at..).unwrap_or(&mut []), leaf_len, 0x77);
        let len = leaf_at + leaf;
        let root_hash = toy_hash(&[buf.get(certs_at..leaf_at).unwrap_or(&[])]);
        if let Some(dst) = buf.get_mut(4..CERT_CHAIN_HEADER_LEN) {
            dst.copy_from_slice(&root_hash);
        }
        if let Some(dst) = buf.get_mut(..2) {
            dst.copy_from_slice(&(len as u16).to_le_bytes());
        }
        Self { buf, len }
    }

    /// Returns the chain.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Flips bit 0 of byte `at`.
    pub(crate) fn flip(&mut self, at: usize) {
        if let Some(byte) = self.buf.get_mut(at) {
            *byte ^= 0x01;
        }
    }

    /// Sets byte `at` to `value`.
    pub(crate) fn set(&mut self, at: usize, value: u8) {
        if let Some(byte) = self.buf.get_mut(at) {
            *byte = value;
        }
    }
}

/// The default chain: 1500 bytes or so, several portions at small lengths.
pub(crate) fn default_chain() -> Chain {
    Chain::new(600, 840)
}

/// Values of the measurements of the test device.
pub(crate) const MEAS_VALUES: [[u8; HASH_LEN]; 3] =
    [[0x01; HASH_LEN], [0x02; HASH_LEN], [0x03; 48]];

/// Indices of the measurements of the test device.
pub(crate) const MEAS_INDICES: [u8; 3] = [1, 2, 5];

/// The test device: a chain, toy signatures, three measurements (indices 1 and 2 TCB).
pub(crate) struct ToyDevice {
    pub(crate) chain: Chain,
    pub(crate) fail_sign: bool,
    pub(crate) no_measurements: bool,
    /// The last message signed.
    pub(crate) signed: Cell<Option<SignedMessage>>,
}

impl ToyDevice {
    pub(crate) fn new() -> Self {
        Self::with_chain(default_chain())
    }

    pub(crate) fn with_chain(chain: Chain) -> Self {
        Self {
            chain,
            fail_sign: false,
            no_measurements: false,
            signed: Cell::new(None),
        }
    }
}

impl DeviceIdentity for ToyDevice {
    fn cert_chain(&self) -> &[u8] {
        self.chain.bytes()
    }

    fn sign(&self, message: &SignedMessage, signature: &mut Signature) -> Result<(), CryptoError> {
        if self.fail_sign {
            return Err(CryptoError);
        }
        self.signed.set(Some(*message));
        *signature = toy_sign(message);
        Ok(())
    }

    fn measurement(&self, n: usize) -> Option<Measurement<'_>> {
        if self.no_measurements {
            return None;
        }
        let value_type = [
            meas::TYPE_IMMUTABLE_ROM,
            meas::TYPE_MUTABLE_FIRMWARE,
            meas::TYPE_HARDWARE_CONFIG,
        ];
        Some(Measurement {
            index: *MEAS_INDICES.get(n)?,
            value_type: *value_type.get(n)?,
            value: MEAS_VALUES.get(n)?,
            tcb: n < 2,
        })
    }
}

/// The verifier double: accepts exactly [`toy_sign`] of the message, and records it.
pub(crate) struct ToyVerifier {
    pub(crate) verified: Cell<Option<SignedMessage>>,
    pub(crate) chain_len: Cell<usize>,
}

impl ToyVerifier {
    pub(crate) fn new() -> Self {
        Self {
            verified: Cell::new(None),
            chain_len: Cell::new(0),
        }
    }
}

impl Verifier for ToyVerifier {
    fn verify(
        &self,
        cert_chain: &[u8],
        message: &SignedMessage,
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        self.chain_len.set(cert_chain.len());
        if ct_eq(&toy_sign(message), signature) {
            self.verified.set(Some(*message));
            Ok(())
        } else {
            Err(CryptoError)
        }
    }
}

/// Xorshift32: deterministic, never all zeroes from a non-zero seed.
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

/// A message buffer large enough for any message of the library.
#[derive(Clone)]
pub(crate) struct Msg {
    pub(crate) buf: HeapBuf<MAX_MESSAGE_LEN>,
    pub(crate) len: usize,
}

impl Msg {
    /// Returns an empty message.
    pub(crate) fn new() -> Self {
        Self {
            buf: HeapBuf::new(),
            len: 0,
        }
    }

    pub(crate) fn from(bytes: &[u8]) -> Self {
        let mut msg = Self::new();
        if let Some(dst) = msg.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            msg.len = bytes.len();
        }
        msg
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn get(&self, at: usize) -> u8 {
        self.buf.get(at).copied().unwrap_or(0)
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

    pub(crate) fn flip(&mut self, at: usize) {
        let value = self.get(at) ^ 0x01;
        self.set(at, value);
    }

    /// Appends a byte.
    pub(crate) fn push(&mut self, value: u8) {
        self.set(self.len, value);
        self.len += 1;
    }

    /// Drops the last byte.
    pub(crate) fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
}

/// Encodes `req`.
pub(crate) fn encode(req: &Request) -> Msg {
    let mut msg = Msg::new();
    msg.len = req.encode(&mut msg.buf).unwrap_or(0);
    msg
}

/// The GET_CAPABILITIES of the requester of this library.
pub(crate) fn get_capabilities() -> Request {
    Request::GetCapabilities(OUR_CAPABILITIES)
}

/// The NEGOTIATE_ALGORITHMS of the requester of this library.
pub(crate) fn negotiate() -> Request {
    Request::NegotiateAlgorithms(AlgorithmsOffer::ours())
}

/// What libspdm's requester offers by default, roughly: several algorithms, the four
/// AlgStructs of SPDM 1.2.
pub(crate) fn libspdm_like_offer() -> AlgorithmsOffer {
    let mut offer = AlgorithmsOffer {
        base_asym: alg::BASE_ASYM_ECDSA_P384 | alg::BASE_ASYM_RSASSA_3072,
        base_hash: alg::BASE_HASH_SHA_256 | alg::BASE_HASH_SHA_384,
        other_params: 0x2,
        ..AlgorithmsOffer::ours()
    };
    let types = [
        alg::STRUCT_DHE,
        alg::STRUCT_AEAD,
        alg::STRUCT_REQ_BASE_ASYM,
        alg::STRUCT_KEY_SCHEDULE,
    ];
    for (s, alg_type) in offer.structs.iter_mut().zip(types) {
        *s = AlgStruct {
            alg_type,
            supported: 0x10,
            ext_count: 0,
        };
    }
    offer.struct_count = 4;
    offer
}

/// A GET_CERTIFICATE for slot 0.
pub(crate) const fn get_certificate(offset: u16, length: u16) -> Request {
    Request::GetCertificate {
        slot: SLOT,
        offset,
        length,
    }
}

/// A CHALLENGE for slot 0.
pub(crate) const fn challenge(summary: u8, nonce: Nonce) -> Request {
    Request::Challenge {
        slot: SLOT,
        summary,
        nonce,
    }
}

/// A GET_MEASUREMENTS for slot 0.
pub(crate) const fn get_measurements(signed: bool, operation: u8, nonce: Nonce) -> Request {
    Request::GetMeasurements {
        attributes: if signed { meas::ATTR_SIGNATURE } else { 0 },
        operation,
        nonce,
        slot: SLOT,
    }
}

/// A responder over the test device.
pub(crate) type TestResponder = Responder<ToyDevice, ToyHash>;

/// A responder and its random number generator.
pub(crate) struct Device {
    pub(crate) responder: KBox<TestResponder>,
    pub(crate) seed: u32,
}

impl Device {
    /// A responder over the test device.
    pub(crate) fn new() -> Result<Self, NoMemory> {
        Self::with(ToyDevice::new())
    }

    /// A responder over `device`.
    pub(crate) fn with(device: ToyDevice) -> Result<Self, NoMemory> {
        Ok(Self {
            responder: boxed(Responder::new(device)).ok_or(NoMemory)?,
            seed: 0x1234_5678,
        })
    }

    /// Sends raw `request`; returns the response.
    pub(crate) fn send(&mut self, request: &[u8]) -> Msg {
        let mut rsp = Msg::new();
        let seed = &mut self.seed;
        rsp.len = self
            .responder
            .handle(request, &mut rsp.buf, &mut |buf| fill(seed, buf));
        rsp
    }

    /// Sends `req`; returns the response.
    pub(crate) fn request(&mut self, req: &Request) -> Msg {
        let msg = encode(req);
        self.send(msg.bytes())
    }

    /// Brings the responder into `state` with well-formed requests of our requester.
    pub(crate) fn reach(&mut self, state: ConnectionState) {
        if state == ConnectionState::NotStarted {
            return;
        }
        self.request(&Request::GetVersion);
        if state >= ConnectionState::AfterCapabilities {
            self.request(&get_capabilities());
        }
        if state >= ConnectionState::Negotiated {
            self.request(&negotiate());
        }
        if state >= ConnectionState::Authenticated {
            self.request(&challenge(summary::NONE, [0x42; NONCE_LEN]));
        }
    }
}

/// Returns the ERROR code and data of `rsp`, if it is an ERROR.
pub(crate) fn error_of(rsp: &Msg) -> Option<(u8, u8)> {
    decode_error(rsp.bytes()).map(|(_, code, data)| (code, data))
}

/// Returns the ERROR code of `rsp` as an [`ErrorCode`], if it is an ERROR.
pub(crate) fn error_code(rsp: &Msg) -> Option<ErrorCode> {
    error_of(rsp).and_then(|(code, _)| ErrorCode::from_u8(code))
}

/// Returns the response code of `rsp`.
pub(crate) fn code_of(rsp: &Msg) -> Option<Code> {
    rsp.buf
        .get(1)
        .copied()
        .and_then(Code::from_u8)
        .filter(|_| rsp.len >= 4)
}

/// Every connection state.
pub(crate) const STATES: [ConnectionState; 5] = [
    ConnectionState::NotStarted,
    ConnectionState::AfterVersion,
    ConnectionState::AfterCapabilities,
    ConnectionState::Negotiated,
    ConnectionState::Authenticated,
];

/// A requester wired to a responder over the test device.
pub(crate) struct Session {
    pub(crate) device: Device,
    pub(crate) requester: KBox<Requester<ToyHash>>,
    pub(crate) verifier: ToyVerifier,
    pub(crate) last: Msg,
}

impl Session {
    /// A session with the test device.
    pub(crate) fn new() -> Result<Self, NoMemory> {
        Self::with(ToyDevice::new())
    }

    /// A session with `device`.
    ///
    /// Never inlined: the requester is built on the stack before it moves to the heap, and
    /// that frame must be gone before the test goes on.
    #[inline(never)]
    pub(crate) fn with(device: ToyDevice) -> Result<Self, NoMemory> {
        Ok(Self {
            device: Device::with(device)?,
            requester: boxed(Requester::new()).ok_or(NoMemory)?,
            verifier: ToyVerifier::new(),
            last: Msg::new(),
        })
    }

    /// Sends `req` through the requester, lets `tamper` change the response, and hands it
    /// back to the requester.
    pub(crate) fn exchange_with(
        &mut self,
        req: &Request,
        tamper: impl FnOnce(&mut Msg),
    ) -> Result<Reply<'_>, RequesterError> {
        let mut msg = Msg::new();
        msg.len = self.requester.encode(req, &mut msg.buf)?;
        let mut rsp = self.device.send(msg.bytes());
        tamper(&mut rsp);
        self.last = rsp;
        self.requester.decode(self.last.bytes(), &self.verifier)
    }

    /// Sends `req` and hands the response back unchanged.
    pub(crate) fn exchange(&mut self, req: &Request) -> Result<Reply<'_>, RequesterError> {
        self.exchange_with(req, |_| {})
    }

    /// Runs VCA; returns whether every step succeeded.
    pub(crate) fn negotiate(&mut self) -> bool {
        self.exchange(&Request::GetVersion).is_ok()
            && self.exchange(&get_capabilities()).is_ok()
            && self.exchange(&negotiate()).is_ok()
    }

    /// Fetches the chain in portions of at most `length` bytes; returns the number of
    /// portions, or `None` on an error.
    pub(crate) fn fetch_chain(&mut self, length: u16) -> Option<usize> {
        let mut portions = 0;
        loop {
            let req = self.requester.next_certificate(length);
            portions += 1;
            match self.exchange(&req) {
                Ok(Reply::Certificate { remainder: 0 }) => return Some(portions),
                Ok(Reply::Certificate { .. }) if portions < 10_000 => {}
                _ => return None,
            }
        }
    }

    /// Runs VCA, GET_DIGESTS and the whole chain; returns whether every step succeeded.
    pub(crate) fn authenticate_prelude(&mut self) -> bool {
        self.negotiate()
            && self.exchange(&Request::GetDigests).is_ok()
            && self.fetch_chain(512).is_some()
    }
}
