// SPDX-License-Identifier: GPL-2.0

//! Device authentication of the devsec TSM: SPDM 1.2 before TDISP.
//!
//! Before it sends a TDISP message, the TSM authenticates the device security manager behind
//! the function's CMA/SPDM mailbox ([`authenticate`]):
//!
//! 1. VCA: GET_VERSION (1.2 required), GET_CAPABILITIES (certificates, CHALLENGE and signed
//!    measurements required), NEGOTIATE_ALGORITHMS (RSASSA-3072 with SHA-384 and DMTF
//!    measurements with SHA-384, nothing else);
//! 2. certificates: GET_DIGESTS, then the chain of slot 0 with GET_CERTIFICATE in portions of
//!    [`CERT_PORTION_LEN`] bytes, unless the chain the TSM validated last time for this
//!    function has the digest DIGESTS announces ([`ChainCache`]). The chain is validated
//!    against the trust anchors ([`TrustAnchors`]) with the kernel's X.509 parser and
//!    asymmetric keys: each certificate, root first, is added to a fresh keyring restricted
//!    to certificates signed by an anchor or by a certificate added before it;
//! 3. CHALLENGE with a fresh nonce: CHALLENGE_AUTH's signature over the SPDM 1.2 transcript
//!    (VCA, DIGESTS/CERTIFICATE, CHALLENGE/CHALLENGE_AUTH) and signing context is verified
//!    with the leaf certificate's key;
//! 4. GET_MEASUREMENTS of all blocks with a fresh nonce, signed: the signature over the
//!    measurement transcript (VCA, GET_MEASUREMENTS/MEASUREMENTS) is verified the same way.
//!
//! The chain, the signed MEASUREMENTS and its nonce become evidence of the lock. At accept
//! the TSM measures again ([`remeasure`]): the chain must have the digest of the lock and the
//! measurement record must be byte for byte that of the lock.
//!
//! # Trust anchors
//!
//! The anchors are root certificates in the keyring `.devsec_tsm`, which the module creates
//! empty and root fills with `add_key(2)` (`devsec-agent trust ROOT.der`, or `keyctl padd
//! asymmetric "" <serial>`), so that the guest owner, not the kernel image, decides which
//! device vendors it trusts; the keyring's serial is in `/proc/keys`. A keyring rather than a
//! sysfs file or a firmware file because it is the kernel's store for exactly this, with its
//! own permission checks, and the X.509 parser and the chain restriction come with it.
//!
//! # What is not authenticated
//!
//! There is no SPDM secure session: the TDISP messages after authentication travel in the
//! clear over the mailbox and are not bound to the authenticated device by SPDM. What binds
//! them is weaker: the signed measurements are of the device that answers the mailbox at
//! lock time, and the TDISP interface report is checked against the BARs. A host that swaps
//! devices on the mailbox after authentication is not detected. Certificate validity periods
//! are not checked (the kernel's X.509 parser does not, and a guest has no trusted time);
//! revocation is not checked.

use crate::spdm::{
    self,
    first_certificate,
    meas,
    summary,
    AlgorithmsOffer,
    CodecError,
    CryptoError,
    Nonce,
    Reply,
    Request,
    Requester,
    RequesterError,
    Signature,
    SignedMessage,
    Verifier,
    CERT_CHAIN_HEADER_LEN,
    MAX_CERT_CHAIN_LEN,
    OUR_CAPABILITIES,
    SLOT, //
};
use crate::spdm_hash::KernelSha384;
use kernel::{
    alloc::AllocError,
    bindings,
    crypto::Sha384,
    fmt,
    key::{
        Key,
        Keyring, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    time::{
        Instant,
        Monotonic, //
    },
};

/// Portion requested per GET_CERTIFICATE.
pub(crate) const CERT_PORTION_LEN: u16 = 1024;

/// Upper bound of GET_CERTIFICATE requests: the longest chain in full portions, plus slack
/// for a device that returns shorter ones.
const MAX_CERT_ROUNDS: usize = 4 * MAX_CERT_CHAIN_LEN.div_ceil(CERT_PORTION_LEN as usize);

/// Most functions whose chain the TSM keeps ([`ChainCache`]).
const CACHE_ENTRIES: usize = 64;

/// Why authentication failed.
pub(crate) enum Failure {
    /// The DOE exchange failed.
    Doe(Error),
    /// The response is unacceptable, or the device answered SPDM ERROR.
    Protocol(RequesterError),
    /// The device needed more than [`MAX_CERT_ROUNDS`] GET_CERTIFICATE requests.
    TooManyRounds,
    /// The keyring refused a certificate of the chain (the error: `ENOKEY` no anchor signed
    /// it, `EBADMSG` not a certificate the X.509 parser takes, `EKEYREJECTED` a wrong
    /// signature, ...), the zero-based index of the certificate.
    Chain(Error, usize),
    /// The chain has no certificate at all.
    EmptyChain,
    /// Allocating or setting up the keyring failed.
    Keyring(Error),
    /// The device did not negotiate DMTF measurements.
    NoMeasurements,
    /// At accept: the chain is not the one of the lock.
    ChainChanged,
    /// At accept: the measurements are not those of the lock.
    MeasurementsChanged,
}

impl From<RequesterError> for Failure {
    fn from(err: RequesterError) -> Self {
        Self::Protocol(err)
    }
}

impl From<CodecError> for Failure {
    fn from(err: CodecError) -> Self {
        Self::Protocol(RequesterError::Codec(err))
    }
}

impl From<AllocError> for Failure {
    fn from(_: AllocError) -> Self {
        Self::Keyring(ENOMEM)
    }
}

impl Failure {
    /// Returns the errno reported for this failure (see the table in the TSM's
    /// documentation).
    pub(crate) fn errno(&self) -> Error {
        match self {
            Self::Doe(err) | Self::Keyring(err) | Self::Chain(err, _) => *err,
            Self::TooManyRounds | Self::EmptyChain => EPROTO,
            Self::NoMeasurements => EOPNOTSUPP,
            Self::ChainChanged | Self::MeasurementsChanged => EBADMSG,
            Self::Protocol(err) => match err {
                RequesterError::VersionUnsupported => EPROTONOSUPPORT,
                RequesterError::MissingCapabilities(_) => EOPNOTSUPP,
                RequesterError::BadAlgorithms => ENOPKG,
                RequesterError::SignatureInvalid => EKEYREJECTED,
                RequesterError::Spdm { code, .. } => match spdm::ErrorCode::from_u8(*code) {
                    Some(spdm::ErrorCode::VersionMismatch) => EPROTONOSUPPORT,
                    Some(spdm::ErrorCode::UnsupportedRequest) => EOPNOTSUPP,
                    _ => EPROTO,
                },
                _ => EPROTO,
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Doe(err) => write!(f, "DOE exchange failed ({})", err.to_errno()),
            Self::Protocol(RequesterError::Spdm { code, data }) => {
                let name = spdm::ErrorCode::from_u8(*code).map_or("unknown", |c| c.name());
                write!(
                    f,
                    "device answered SPDM ERROR {name} ({code:#x}, data {data:#x})"
                )
            }
            Self::Protocol(RequesterError::SignatureInvalid) => {
                write!(f, "signature over the transcript does not verify")
            }
            Self::Protocol(RequesterError::BadAlgorithms) => {
                write!(f, "device selected algorithms the TSM does not support")
            }
            Self::Protocol(err) => write!(f, "unacceptable response: {err:?}"),
            Self::TooManyRounds => write!(
                f,
                "certificate chain needs more than {MAX_CERT_ROUNDS} requests"
            ),
            Self::Chain(err, n) if *err == ENOKEY => write!(
                f,
                "certificate {n} of the chain is not signed by a trust anchor (untrusted root)"
            ),
            Self::Chain(err, n) if *err == EBADMSG => {
                write!(f, "certificate {n} of the chain is malformed")
            }
            Self::Chain(err, n) if *err == EKEYREJECTED => write!(
                f,
                "certificate {n} of the chain: its issuer's signature does not verify"
            ),
            Self::Chain(err, n) => write!(
                f,
                "certificate {n} of the chain refused ({})",
                err.to_errno()
            ),
            Self::EmptyChain => write!(f, "certificate chain has no certificate"),
            Self::Keyring(err) => write!(f, "keyring setup failed ({})", err.to_errno()),
            Self::NoMeasurements => write!(f, "device does not offer DMTF measurements"),
            Self::ChainChanged => write!(f, "certificate chain changed since the lock"),
            Self::MeasurementsChanged => write!(f, "measurements changed since the lock"),
        }
    }
}

/// The trust anchors: the keyring `.devsec_tsm` of root certificates userspace provides.
pub(crate) struct TrustAnchors(Keyring);

impl TrustAnchors {
    /// Creates the empty keyring. Root (its owner) may view, read, search and add to it.
    pub(crate) fn new() -> Result<Self> {
        let perm = bindings::KEY_POS_ALL
            | bindings::KEY_USR_VIEW
            | bindings::KEY_USR_READ
            | bindings::KEY_USR_WRITE
            | bindings::KEY_USR_SEARCH;
        Ok(Self(Keyring::new(c".devsec_tsm", perm)?))
    }

    /// Returns the keyring's serial.
    pub(crate) fn serial(&self) -> i32 {
        self.0.serial()
    }

    /// Validates `chain`, an SPDM certificate chain whose framing the requester checked,
    /// against the anchors; returns the key of its leaf certificate.
    fn validate(&self, chain: &[u8]) -> Result<Key, Failure> {
        let ring =
            Keyring::new(c"devsec_tsm:chain", Keyring::OWNER_ALL).map_err(Failure::Keyring)?;
        ring.restrict_to_chain_of(&self.0)
            .map_err(Failure::Keyring)?;
        let mut rest = chain.get(CERT_CHAIN_HEADER_LEN..).unwrap_or(&[]);
        let mut leaf = None;
        let mut n = 0;
        while let Some(cert) = first_certificate(rest) {
            leaf = Some(
                ring.add_asymmetric(cert)
                    .map_err(|err| Failure::Chain(err, n))?,
            );
            rest = rest.get(cert.len()..).unwrap_or(&[]);
            n += 1;
        }
        leaf.ok_or(Failure::EmptyChain)
    }
}

/// Checks SPDM signatures with the key of the chain's leaf certificate.
struct LeafKey<'a>(Option<&'a Key>);

impl Verifier for LeafKey<'_> {
    fn verify(
        &self,
        _chain: &[u8],
        message: &SignedMessage,
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        // The chain is the one validated into the key before CHALLENGE.
        let key = self.0.ok_or(CryptoError)?;
        let digest = Sha384::digest(message);
        key.verify_signature(signature, &digest, c"rsa", c"sha384", c"pkcs1")
            .map_err(|_| CryptoError)
    }
}

/// The chains validated before, by function, so that a chain whose digest did not change is
/// not fetched again (it is still validated against the anchors of the moment). At most
/// [`CACHE_ENTRIES`]; the oldest goes first.
#[derive(Default)]
struct ChainCache(KVec<(u32, KVec<u8>)>);

impl ChainCache {
    /// Returns the chain kept for function `id`, if any.
    fn get(&self, id: u32) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(key, _)| *key == id)
            .map(|(_, chain)| chain.as_slice())
    }

    /// Keeps `chain` for function `id`.
    fn put(&mut self, id: u32, chain: &[u8]) -> Result<(), AllocError> {
        let copy = copy(chain)?;
        if let Some(pos) = self.0.iter().position(|(key, _)| *key == id) {
            let _ = self.0.remove(pos);
        } else if self.0.len() >= CACHE_ENTRIES {
            let _ = self.0.remove(0);
        }
        self.0.push((id, copy), GFP_KERNEL)
    }
}

/// How long the parts of the last authentication took, in nanoseconds, for `make bench`
/// (`/sys/kernel/debug/devsec_tsm/timing/`).
pub(crate) struct Timing {
    pub(crate) vca: Atomic<u64>,
    pub(crate) certificates: Atomic<u64>,
    pub(crate) challenge: Atomic<u64>,
    pub(crate) measurements: Atomic<u64>,
    pub(crate) tdisp: Atomic<u64>,
    /// 1 if the chain came from the cache.
    pub(crate) chain_cached: Atomic<u64>,
}

/// The timing of the last lock.
pub(crate) static TIMING: Timing = Timing {
    vca: Atomic::new(0),
    certificates: Atomic::new(0),
    challenge: Atomic::new(0),
    measurements: Atomic::new(0),
    tdisp: Atomic::new(0),
    chain_cached: Atomic::new(0),
};

/// Stores the time since `*since` into `slot` and restarts `*since`.
pub(crate) fn lap(slot: &Atomic<u64>, since: &mut Instant<Monotonic>) {
    let now = Instant::<Monotonic>::now();
    let ns = (now - *since).as_nanos();
    slot.store(u64::try_from(ns).unwrap_or(0), Relaxed);
    *since = now;
}

/// What authentication leaves: the evidence and what accept compares with.
pub(crate) struct Authenticated {
    /// The certificate chain of slot 0, as the device returned it.
    pub(crate) chain: KVec<u8>,
    /// The signed MEASUREMENTS response, as received.
    pub(crate) measurements: KVec<u8>,
    /// Its measurement record.
    pub(crate) record: KVec<u8>,
    /// The requester nonce of its GET_MEASUREMENTS.
    pub(crate) nonce: Nonce,
}

/// How SPDM messages reach the device: the TSM's DOE exchange on the function's mailbox.
pub(crate) trait Transport {
    /// Exchanges `req`; returns the response.
    fn exchange(&mut self, req: &[u8]) -> Result<&[u8], Failure>;
}

/// One SPDM connection of the TSM.
struct Connection<'t, T: Transport> {
    transport: &'t mut T,
    /// Reused from connection to connection: GET_VERSION restarts it.
    requester: &'t mut Requester<KernelSha384>,
    req: [u8; spdm::MAX_REQUEST_LEN],
}

/// Returns a fresh nonce from the kernel's CRNG.
fn fresh_nonce() -> Nonce {
    let mut nonce = Nonce::default();
    // SAFETY: `nonce` is valid for writes of `nonce.len()` bytes.
    unsafe { bindings::get_random_bytes(nonce.as_mut_ptr().cast(), nonce.len()) };
    nonce
}

impl<'t, T: Transport> Connection<'t, T> {
    fn open(transport: &'t mut T, requester: &'t mut Requester<KernelSha384>) -> Self {
        Self {
            transport,
            requester,
            req: [0; spdm::MAX_REQUEST_LEN],
        }
    }

    /// Sends `request` and hands the response to `f` with the decoded reply.
    fn step<R>(
        &mut self,
        request: &Request,
        key: Option<&Key>,
        f: impl FnOnce(Reply<'_>, &[u8]) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let len = self.requester.encode(request, &mut self.req)?;
        let req = self.req.get(..len).ok_or(CodecError::BufferTooSmall)?;
        let rsp = self.transport.exchange(req)?;
        let reply = self.requester.decode(rsp, &LeafKey(key))?;
        f(reply, rsp)
    }

    /// VCA; fails unless DMTF measurements were negotiated.
    fn vca(&mut self) -> Result<(), Failure> {
        self.step(&Request::GetVersion, None, |_, _| Ok(()))?;
        self.step(&Request::GetCapabilities(OUR_CAPABILITIES), None, |_, _| {
            Ok(())
        })?;
        let offer = Request::NegotiateAlgorithms(AlgorithmsOffer::ours());
        let measurements = self.step(&offer, None, |reply, _| {
            Ok(matches!(reply, Reply::Algorithms { measurements: true }))
        })?;
        if !measurements {
            return Err(Failure::NoMeasurements);
        }
        Ok(())
    }

    /// GET_DIGESTS, then the chain: `cached` if its digest is the one announced, else
    /// fetched. Returns whether `cached` was used.
    fn certificates(&mut self, cached: Option<&[u8]>) -> Result<bool, Failure> {
        self.step(&Request::GetDigests, None, |_, _| Ok(()))?;
        if let Some(chain) = cached {
            if self.requester.use_cached_chain(chain).is_ok() {
                return Ok(true);
            }
        }
        for _ in 0..MAX_CERT_ROUNDS {
            let request = self.requester.next_certificate(CERT_PORTION_LEN);
            let remainder = self.step(&request, None, |reply, _| match reply {
                Reply::Certificate { remainder } => Ok(remainder),
                _ => Err(Failure::Protocol(RequesterError::WrongState)),
            })?;
            if remainder == 0 {
                return Ok(false);
            }
        }
        Err(Failure::TooManyRounds)
    }

    /// GET_MEASUREMENTS of all blocks, signed, with a fresh nonce.
    fn measurements(&mut self, key: &Key) -> Result<Authenticated, Failure> {
        let nonce = fresh_nonce();
        let request = Request::GetMeasurements {
            attributes: meas::ATTR_SIGNATURE,
            operation: meas::OP_ALL,
            nonce,
            slot: SLOT,
        };
        let (measurements, record) = self.step(&request, Some(key), |reply, rsp| match reply {
            Reply::Measurements {
                record,
                signed: Some(_),
                ..
            } => Ok((copy(rsp)?, copy(record)?)),
            _ => Err(Failure::Protocol(RequesterError::BadMeasurements)),
        })?;
        Ok(Authenticated {
            chain: copy(self.requester.cert_chain().unwrap_or(&[]))?,
            measurements,
            record,
            nonce,
        })
    }
}

/// Returns a copy of `bytes`.
fn copy(bytes: &[u8]) -> Result<KVec<u8>, AllocError> {
    let mut v = KVec::with_capacity(bytes.len(), GFP_KERNEL)?;
    v.extend_from_slice(bytes, GFP_KERNEL)?;
    Ok(v)
}

/// The TSM's SPDM side: trust anchors, chain cache and a requester. The TSM's operations are
/// serialised, and so are the callers of this.
pub(crate) struct Authenticator {
    anchors: TrustAnchors,
    cache: ChainCache,
    /// About 9 KiB, allocated once (not on the stack of every lock).
    requester: KBox<Requester<KernelSha384>>,
}

impl Authenticator {
    /// Creates the empty trust-anchor keyring and the requester.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            anchors: TrustAnchors::new()?,
            cache: ChainCache::default(),
            requester: KBox::new(Requester::new(), GFP_KERNEL)?,
        })
    }

    /// Returns the serial of the trust-anchor keyring.
    pub(crate) fn anchors_serial(&self) -> i32 {
        self.anchors.serial()
    }

    /// Authenticates the device behind `transport` for function `id` (see the module
    /// documentation); records the time of each part in [`TIMING`].
    pub(crate) fn authenticate(
        &mut self,
        transport: &mut impl Transport,
        id: u32,
    ) -> Result<Authenticated, Failure> {
        let mut since = Instant::<Monotonic>::now();
        let mut conn = Connection::open(transport, &mut self.requester);
        conn.vca()?;
        lap(&TIMING.vca, &mut since);

        let from_cache = conn.certificates(self.cache.get(id))?;
        let chain = conn.requester.cert_chain().unwrap_or(&[]);
        let key = self.anchors.validate(chain)?;
        if !from_cache {
            // Best effort: without it, the chain is fetched next time.
            let _ = self.cache.put(id, chain);
        }
        TIMING.chain_cached.store(u64::from(from_cache), Relaxed);
        lap(&TIMING.certificates, &mut since);

        let challenge = Request::Challenge {
            slot: SLOT,
            summary: summary::NONE,
            nonce: fresh_nonce(),
        };
        conn.step(&challenge, Some(&key), |_, _| Ok(()))?;
        lap(&TIMING.challenge, &mut since);

        let auth = conn.measurements(&key)?;
        lap(&TIMING.measurements, &mut since);
        Ok(auth)
    }

    /// Measures the device again for accept: a new connection whose chain must have the
    /// digest of `lock`'s (it is not fetched) and validate against the anchors, and a signed
    /// measurement record that must be `lock`'s byte for byte.
    pub(crate) fn remeasure(
        &mut self,
        transport: &mut impl Transport,
        lock: &Authenticated,
    ) -> Result<(), Failure> {
        let mut conn = Connection::open(transport, &mut self.requester);
        conn.vca()?;
        conn.step(&Request::GetDigests, None, |_, _| Ok(()))?;
        conn.requester
            .use_cached_chain(&lock.chain)
            .map_err(|err| match err {
                RequesterError::DigestMismatch => Failure::ChainChanged,
                err => Failure::Protocol(err),
            })?;
        let key = self.anchors.validate(&lock.chain)?;
        let now = conn.measurements(&key)?;
        if now.record != lock.record {
            return Err(Failure::MeasurementsChanged);
        }
        Ok(())
    }
}
