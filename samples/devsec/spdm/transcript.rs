// SPDX-License-Identifier: GPL-2.0

//! The transcripts SPDM 1.2 signs, and the [`Hash`] trait they are computed with.
//!
//! Both ends keep the same [`Transcript`]: the responder to sign, the requester to compute
//! the very bytes whose signature it verifies. In SPDM 1.2
//!
//! - A (VCA) is GET_VERSION, VERSION, GET_CAPABILITIES, CAPABILITIES, NEGOTIATE_ALGORITHMS
//!   and ALGORITHMS, requests and responses as sent;
//! - B is GET_DIGESTS, DIGESTS, GET_CERTIFICATE and CERTIFICATE messages;
//! - C is CHALLENGE and CHALLENGE_AUTH without its signature;
//! - M1/M2 = A || B || C is what CHALLENGE_AUTH signs;
//! - L1/L2 = A || the GET_MEASUREMENTS/MEASUREMENTS pairs since the last signed one, the
//!   last MEASUREMENTS without its signature, is what a signed MEASUREMENTS signs.
//!
//! Which messages reset which part follows DMTF libspdm
//! (`libspdm_reset_message_buffer_via_request_code` in `library/spdm_common_lib`, and the
//! CHALLENGE_AUTH handling of `library/spdm_requester_lib`):
//!
//! - GET_VERSION resets everything;
//! - every request other than GET_MEASUREMENTS resets L1/L2;
//! - GET_DIGESTS resets B;
//! - GET_MEASUREMENTS before the connection is authenticated resets B and C;
//! - a CHALLENGE_AUTH resets B and C once it is signed (or verified).
//!
//! Resets and appends only happen for requests that are answered with their response, not
//! with ERROR, on both sides, with one exception taken from libspdm's responder
//! (`library/spdm_responder_lib/libspdm_rsp_measurements.c`): an ERROR to GET_MEASUREMENTS
//! resets L1/L2.
//!
//! Nothing is buffered except A, which both M1/M2 and L1/L2 start with: it is at most
//! [`MAX_VCA_LEN`] bytes. B, C and the measurement messages go straight into running hash
//! computations ([`Hash`]) started from A when they are first needed, so a certificate
//! chain of any length costs no memory here.

use super::codec::{
    Digest,
    ALGORITHMS_FIXED_LEN,
    CAPABILITIES_LEN,
    HEADER_LEN,
    MAX_ALGORITHMS_LEN,
    MAX_NEGOTIATE_ALGORITHMS_LEN,
    MAX_VERSION_ENTRIES, //
};

/// Longest VCA this library keeps: GET_VERSION, a VERSION with [`MAX_VERSION_ENTRIES`]
/// entries, GET_CAPABILITIES and CAPABILITIES, the longest NEGOTIATE_ALGORITHMS and
/// ALGORITHMS.
pub(crate) const MAX_VCA_LEN: usize = HEADER_LEN
    + HEADER_LEN
    + 2
    + 2 * MAX_VERSION_ENTRIES
    + 2 * CAPABILITIES_LEN
    + MAX_NEGOTIATE_ALGORITHMS_LEN
    + MAX_ALGORITHMS_LEN;

// The ALGORITHMS limit covers its fixed part.
const _: () = assert!(ALGORITHMS_FIXED_LEN <= MAX_ALGORITHMS_LEN);

/// A failure of the embedder's cryptography (hash, signature, verification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CryptoError;

/// An incremental SHA-384 computation, provided by the embedder (the kernel crypto API; a
/// test double in the KUnit suites).
///
/// Every method may fail, as the kernel's may; a failure makes the whole transcript it
/// belongs to unusable until the next reset.
pub(crate) trait Hash: Sized {
    /// Starts a new computation.
    fn start() -> Result<Self, CryptoError>;

    /// Feeds `data`.
    fn update(&mut self, data: &[u8]) -> Result<(), CryptoError>;

    /// Ends the computation and returns the digest.
    fn finish(self) -> Result<Digest, CryptoError>;
}

/// Returns the digest of the concatenation of `parts`.
pub(crate) fn hash_of<H: Hash>(parts: &[&[u8]]) -> Result<Digest, CryptoError> {
    let mut h = H::start()?;
    for part in parts {
        h.update(part)?;
    }
    h.finish()
}

/// Transcript errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TranscriptError {
    /// The VCA would exceed [`MAX_VCA_LEN`].
    TooLong,
    /// The hash failed, now or since the last reset.
    Crypto,
}

impl From<CryptoError> for TranscriptError {
    fn from(_: CryptoError) -> Self {
        Self::Crypto
    }
}

/// One running hash: absent, running, or broken by a failed hash operation.
enum Running<H> {
    Idle,
    Active(H),
    Broken,
}

impl<H: Hash> Running<H> {
    /// Feeds `parts`, starting from `vca` if idle.
    fn append(&mut self, vca: &[u8], parts: &[&[u8]]) -> Result<(), TranscriptError> {
        let mut h = match core::mem::replace(self, Self::Broken) {
            Self::Idle => {
                let mut h = H::start()?;
                h.update(vca)?;
                h
            }
            Self::Active(h) => h,
            Self::Broken => return Err(TranscriptError::Crypto),
        };
        for part in parts {
            h.update(part)?;
        }
        *self = Self::Active(h);
        Ok(())
    }

    /// Feeds `parts` and ends the computation; leaves the hash idle.
    fn finish(&mut self, vca: &[u8], parts: &[&[u8]]) -> Result<Digest, TranscriptError> {
        self.append(vca, parts)?;
        match core::mem::replace(self, Self::Idle) {
            Self::Active(h) => Ok(h.finish()?),
            _ => Err(TranscriptError::Crypto),
        }
    }
}

/// The SPDM 1.2 transcript of one connection: the VCA bytes, the running M1/M2 hash (A ||
/// B so far) and the running L1/L2 hash (A || measurements so far).
pub(crate) struct Transcript<H> {
    vca: [u8; MAX_VCA_LEN],
    vca_len: usize,
    m1: Running<H>,
    l1: Running<H>,
}

impl<H: Hash> Transcript<H> {
    /// Returns an empty transcript.
    pub(crate) fn new() -> Self {
        Self {
            vca: [0; MAX_VCA_LEN],
            vca_len: 0,
            m1: Running::Idle,
            l1: Running::Idle,
        }
    }

    /// Forgets everything (GET_VERSION).
    pub(crate) fn reset(&mut self) {
        self.vca_len = 0;
        self.m1 = Running::Idle;
        self.l1 = Running::Idle;
    }

    /// Returns the VCA so far.
    #[cfg(spdm_kunit)]
    pub(crate) fn vca(&self) -> &[u8] {
        self.vca.get(..self.vca_len).unwrap_or(&[])
    }

    /// Appends `parts` to the VCA. Nothing is appended if they do not fit.
    pub(crate) fn append_vca(&mut self, parts: &[&[u8]]) -> Result<(), TranscriptError> {
        parts
            .iter()
            .try_fold(self.vca_len, |len, part| len.checked_add(part.len()))
            .filter(|&len| len <= MAX_VCA_LEN)
            .ok_or(TranscriptError::TooLong)?;
        for part in parts {
            let end = self.vca_len.saturating_add(part.len());
            let dst = self
                .vca
                .get_mut(self.vca_len..end)
                .ok_or(TranscriptError::TooLong)?;
            dst.copy_from_slice(part);
            self.vca_len = end;
        }
        Ok(())
    }

    /// Resets B and C (M1/M2 back to A).
    pub(crate) fn reset_m1(&mut self) {
        self.m1 = Running::Idle;
    }

    /// Resets the measurement messages (L1/L2 back to A).
    pub(crate) fn reset_l1(&mut self) {
        self.l1 = Running::Idle;
    }

    /// Appends `parts` to B.
    pub(crate) fn append_b(&mut self, parts: &[&[u8]]) -> Result<(), TranscriptError> {
        let vca = self.vca.get(..self.vca_len).unwrap_or(&[]);
        self.m1.append(vca, parts)
    }

    /// Appends C, `parts`, and returns Hash(M1/M2); B and C are reset.
    pub(crate) fn finish_m1(&mut self, parts: &[&[u8]]) -> Result<Digest, TranscriptError> {
        let vca = self.vca.get(..self.vca_len).unwrap_or(&[]);
        self.m1.finish(vca, parts)
    }

    /// Appends an unsigned GET_MEASUREMENTS/MEASUREMENTS pair, `parts`, to L1/L2.
    pub(crate) fn append_l1(&mut self, parts: &[&[u8]]) -> Result<(), TranscriptError> {
        let vca = self.vca.get(..self.vca_len).unwrap_or(&[]);
        self.l1.append(vca, parts)
    }

    /// Appends the signed pair, `parts`, and returns Hash(L1/L2); L1/L2 is reset.
    pub(crate) fn finish_l1(&mut self, parts: &[&[u8]]) -> Result<Digest, TranscriptError> {
        let vca = self.vca.get(..self.vca_len).unwrap_or(&[]);
        self.l1.finish(vca, parts)
    }
}

impl<H: Hash> Default for Transcript<H> {
    fn default() -> Self {
        Self::new()
    }
}
