// SPDX-License-Identifier: GPL-2.0

//! The SPDM 1.2 responder of an emulated endpoint: its identity (certificate chains, signing
//! key, measurements) and the fault knobs that make it misbehave.
//!
//! The identity of endpoint `i` comes from firmware files that the test harness generates per
//! build (`tools/testing/devsec/spdm-keys.sh`) and loads on the first SPDM request:
//!
//! - `devsec/ep<i>.chain`: the DER certificates of the device, root first, leaf last (the
//!   harness's test root and a leaf for the endpoint);
//! - `devsec/ep<i>-untrusted.chain`: the same leaf key certified by another root, served with
//!   the `spdm_untrusted_root` fault;
//! - `devsec/key<i % 8>.der`: the leaf's private key, a DER PKCS#1 `RSAPrivateKey` (RSA-3072).
//!
//! It signs with the kernel's `pkcs1(rsa,sha384)` transform and hashes with the crypto
//! library's SHA-384. Its measurements: block 1, the immutable ROM, SHA-384 of
//! [`ROM_IMAGE`]; block 2, the mutable firmware, SHA-384 of [`FIRMWARE_IMAGES`]`[0]` (or
//! `[1]` once updated, see `spdm_measurement_changes`). Both count as TCB.

use crate::spdm::{
    self,
    alg,
    encode_cert_chain,
    meas,
    signed_message,
    Code,
    ConnectionState,
    CryptoError,
    DeviceIdentity,
    Digest,
    Measurement,
    Responder,
    Signature,
    SignedMessage,
    SignedOp,
    CERT_CHAIN_HEADER_LEN,
    SIGNATURE_LEN,
    SIGNING_PREFIX_LEN, //
};
use crate::spdm_hash::KernelSha384;
use core::{cell::Cell, fmt};
use kernel::{
    crypto::{Sha384, Sig},
    device::Device,
    firmware::Firmware,
    prelude::*,
    str::CString,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    time::{
        Instant,
        Monotonic, //
    },
};

/// The device's immutable ROM, as measured into block 1.
pub(crate) const ROM_IMAGE: &[u8] = b"devsec_bus immutable ROM v1";

/// The device's firmware, as measured into block 2: as shipped, and after the update the
/// `spdm_measurement_changes` fault applies.
pub(crate) const FIRMWARE_IMAGES: [&[u8]; 2] =
    [b"devsec_bus firmware v1", b"devsec_bus firmware v2"];

/// Nanoseconds the endpoints spent signing since the module was loaded (debugfs
/// `devsec_bus/spdm/sign_ns`): the device's share of an SPDM exchange, which a real device
/// spends in its own hardware, not on the host's CPUs.
pub(crate) static SIGN_NS: Atomic<u64> = Atomic::new(0);

/// Number of distinct device keys the harness generates; endpoint `i` uses key `i % KEYS`.
const KEYS: usize = 8;

/// The nonce a replaying device puts into the GET_MEASUREMENTS it answers (fault
/// `spdm_stale_nonce`).
const STALE_NONCE: u8 = 0x5a;

/// SPDM fault knobs of an endpoint; each stays armed until `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpdmFaults {
    /// CHALLENGE_AUTH carries a signature that does not verify.
    pub(crate) challenge_bad_sig: bool,
    /// MEASUREMENTS carries a signature that does not verify.
    pub(crate) meas_bad_sig: bool,
    /// The device presents its chain to a root the TSM was not given.
    pub(crate) untrusted_root: bool,
    /// The leaf certificate of the chain is not valid DER X.509 (the chain framing and its
    /// digests are consistent, so only the certificate parser notices).
    pub(crate) malformed_cert: bool,
    /// The leaf certificate's signature is not its issuer's over it (the certificate parses
    /// and names the trusted root as issuer; its serial number changed after signing).
    pub(crate) forged_cert: bool,
    /// After the next MEASUREMENTS it serves, the device reports updated firmware.
    pub(crate) measurement_changes: bool,
    /// The device answers GET_MEASUREMENTS as if asked with another nonce: a replayed,
    /// stale signed response, not bound to the requester's nonce.
    pub(crate) stale_nonce: bool,
    /// CERTIFICATE responses lose their last 16 bytes.
    pub(crate) truncated_cert: bool,
    /// ALGORITHMS selects ECDSA P-384 instead of RSASSA-3072.
    pub(crate) bad_algorithms: bool,
    /// ALGORITHMS selects no measurement specification: the device offers no measurements.
    pub(crate) no_measurements: bool,
    /// CERTIFICATE responses carry at most [`SHORT_PORTION_LEN`] bytes, whatever was asked
    /// for: valid SPDM, but the chain takes more requests than the TSM allows.
    pub(crate) short_portions: bool,
}

impl SpdmFaults {
    /// No fault armed.
    pub(crate) const NONE: Self = Self {
        challenge_bad_sig: false,
        meas_bad_sig: false,
        untrusted_root: false,
        malformed_cert: false,
        forged_cert: false,
        measurement_changes: false,
        stale_nonce: false,
        truncated_cert: false,
        bad_algorithms: false,
        no_measurements: false,
        short_portions: false,
    };
}

/// The portion of a CERTIFICATE response with the `spdm_short_portions` fault.
const SHORT_PORTION_LEN: u16 = 16;

/// The `fault` words of the SPDM faults, in the order of [`SpdmFaults::flags`].
pub(crate) const SPDM_FAULT_NAMES: [&str; 11] = [
    "spdm_challenge_bad_sig",
    "spdm_meas_bad_sig",
    "spdm_untrusted_root",
    "spdm_malformed_cert",
    "spdm_forged_cert",
    "spdm_measurement_changes",
    "spdm_stale_nonce",
    "spdm_truncated_cert",
    "spdm_bad_algorithms",
    "spdm_no_measurements",
    "spdm_short_portions",
];

impl SpdmFaults {
    /// Returns the faults as flags, in the order of [`SPDM_FAULT_NAMES`].
    pub(crate) fn flags(&self) -> [bool; 11] {
        [
            self.challenge_bad_sig,
            self.meas_bad_sig,
            self.untrusted_root,
            self.malformed_cert,
            self.forged_cert,
            self.measurement_changes,
            self.stale_nonce,
            self.truncated_cert,
            self.bad_algorithms,
            self.no_measurements,
            self.short_portions,
        ]
    }

    /// Arms the fault named `word`; returns false for a word that names none.
    pub(crate) fn arm(&mut self, word: &str) -> bool {
        let flag = match word {
            "spdm_challenge_bad_sig" => &mut self.challenge_bad_sig,
            "spdm_meas_bad_sig" => &mut self.meas_bad_sig,
            "spdm_untrusted_root" => &mut self.untrusted_root,
            "spdm_malformed_cert" => &mut self.malformed_cert,
            "spdm_forged_cert" => &mut self.forged_cert,
            "spdm_measurement_changes" => &mut self.measurement_changes,
            "spdm_stale_nonce" => &mut self.stale_nonce,
            "spdm_truncated_cert" => &mut self.truncated_cert,
            "spdm_bad_algorithms" => &mut self.bad_algorithms,
            "spdm_no_measurements" => &mut self.no_measurements,
            "spdm_short_portions" => &mut self.short_portions,
            _ => return false,
        };
        *flag = true;
        true
    }
}

/// Which of its chains the device serves.
#[derive(Clone, Copy)]
enum ChainKind {
    Trusted = 0,
    Untrusted = 1,
    Malformed = 2,
    Forged = 3,
}

/// The identity of one endpoint.
struct Identity {
    /// SPDM chains, by [`ChainKind`].
    chains: [KVec<u8>; 4],
    /// The leaf's private key.
    key: Sig,
    /// Block 1.
    rom: Digest,
    /// Block 2, as shipped and updated.
    firmware: [Digest; 2],
    /// The faults for the request being handled.
    faults: Cell<SpdmFaults>,
    /// The firmware was updated (fault `spdm_measurement_changes`).
    updated: Cell<bool>,
}

/// Requests firmware file `name`.
fn firmware(dev: &Device, name: fmt::Arguments<'_>) -> Result<Firmware> {
    let name = CString::try_from_fmt(name)?;
    Firmware::request(&name, dev)
}

/// Returns the SPDM chain of the DER certificates `certs`.
fn spdm_chain(certs: &[u8]) -> Result<KVec<u8>> {
    let mut chain = KVec::from_elem(0u8, certs.len() + CERT_CHAIN_HEADER_LEN, GFP_KERNEL)?;
    let len = encode_cert_chain::<KernelSha384>(certs, &mut chain).map_err(|_| EINVAL)?;
    chain.truncate(len);
    Ok(chain)
}

/// Returns a copy of the SPDM chain `chain` with `alter` applied to its leaf certificate
/// (the second, after the root), which keeps its length; the chain's framing and root hash
/// stay as they are.
fn with_leaf(chain: &[u8], alter: impl FnOnce(&mut [u8]) -> Result) -> Result<KVec<u8>> {
    let certs = chain.get(CERT_CHAIN_HEADER_LEN..).ok_or(EINVAL)?;
    let root = spdm::first_certificate(certs).ok_or(EINVAL)?;
    let mut copy = KVec::with_capacity(chain.len(), GFP_KERNEL)?;
    copy.extend_from_slice(chain, GFP_KERNEL)?;
    alter(
        copy.get_mut(CERT_CHAIN_HEADER_LEN + root.len()..)
            .ok_or(EINVAL)?,
    )?;
    Ok(copy)
}

/// Returns `chain` with its leaf certificate made unparsable: the tag of its first field
/// (the version, `[0]`) becomes an OCTET STRING, which the X.509 grammar does not allow
/// there. The DER framing of the certificates stays intact.
fn malformed(chain: &[u8]) -> Result<KVec<u8>> {
    with_leaf(chain, |leaf| {
        // Certificate SEQUENCE header (4 bytes), TBSCertificate SEQUENCE header (4 bytes),
        // then the version's tag.
        *leaf.get_mut(8).ok_or(EINVAL)? = 0x04;
        Ok(())
    })
}

/// Returns `chain` with the serial number of its leaf certificate changed after the root
/// signed it: the certificate parses and names the root as issuer, its signature is a valid
/// signature of the root, but not over this certificate.
fn forged(chain: &[u8]) -> Result<KVec<u8>> {
    with_leaf(chain, |leaf| {
        // Certificate and TBSCertificate SEQUENCE headers (4 bytes each), the version (5
        // bytes), then the serial number's INTEGER: tag, length, value.
        let (Some(0x02), Some(&len)) = (leaf.get(13), leaf.get(14)) else {
            return Err(EINVAL);
        };
        // The last byte of the value: the number stays positive and its encoding minimal.
        *leaf.get_mut(14 + usize::from(len)).ok_or(EINVAL)? ^= 1;
        Ok(())
    })
}

impl Identity {
    /// Loads the identity of endpoint `index` for device `dev`.
    fn load(dev: &Device, index: usize) -> Result<Self> {
        let certs = firmware(dev, fmt!("devsec/ep{index}.chain"))?;
        let other = firmware(dev, fmt!("devsec/ep{index}-untrusted.chain"))?;
        let der = firmware(dev, fmt!("devsec/key{}.der", index % KEYS))?;
        let mut key = Sig::new(c"pkcs1(rsa,sha384)")?;
        key.set_privkey(der.data())?;
        if key.max_size() != SIGNATURE_LEN {
            return Err(EINVAL);
        }
        let trusted = spdm_chain(certs.data())?;
        let bad = malformed(&trusted)?;
        let fake = forged(&trusted)?;
        Ok(Self {
            chains: [trusted, spdm_chain(other.data())?, bad, fake],
            key,
            rom: Sha384::digest(ROM_IMAGE),
            firmware: [
                Sha384::digest(FIRMWARE_IMAGES[0]),
                Sha384::digest(FIRMWARE_IMAGES[1]),
            ],
            faults: Cell::new(SpdmFaults::NONE),
            updated: Cell::new(false),
        })
    }
}

/// Returns whether `message` is signed in the context of `op`.
fn signs(message: &SignedMessage, op: SignedOp) -> bool {
    let prefix = signed_message(op, &[0; spdm::HASH_LEN]);
    message.get(..SIGNING_PREFIX_LEN) == prefix.get(..SIGNING_PREFIX_LEN)
}

impl DeviceIdentity for Identity {
    fn cert_chain(&self) -> &[u8] {
        let faults = self.faults.get();
        let kind = if faults.untrusted_root {
            ChainKind::Untrusted
        } else if faults.malformed_cert {
            ChainKind::Malformed
        } else if faults.forged_cert {
            ChainKind::Forged
        } else {
            ChainKind::Trusted
        };
        &self.chains[kind as usize]
    }

    fn sign(&self, message: &SignedMessage, signature: &mut Signature) -> Result<(), CryptoError> {
        let start = Instant::<Monotonic>::now();
        let digest = Sha384::digest(message);
        let signed = self.key.sign(&digest, signature);
        SIGN_NS.add(
            u64::try_from(start.elapsed().as_nanos()).unwrap_or(0),
            Relaxed,
        );
        if signed != Ok(SIGNATURE_LEN) {
            return Err(CryptoError);
        }
        let faults = self.faults.get();
        let corrupt = if signs(message, SignedOp::ChallengeAuth) {
            faults.challenge_bad_sig
        } else {
            faults.meas_bad_sig
        };
        if corrupt {
            signature[SIGNATURE_LEN / 2] ^= 1;
        }
        Ok(())
    }

    fn measurement(&self, n: usize) -> Option<Measurement<'_>> {
        match n {
            0 => Some(Measurement {
                index: 1,
                value_type: meas::TYPE_IMMUTABLE_ROM,
                value: &self.rom,
                tcb: true,
            }),
            1 => Some(Measurement {
                index: 2,
                value_type: meas::TYPE_MUTABLE_FIRMWARE,
                value: &self.firmware[usize::from(self.updated.get())],
                tcb: true,
            }),
            _ => None,
        }
    }
}

/// Longest SPDM response of the device.
pub(crate) const RESPONSE_LEN: usize = spdm::MAX_MESSAGE_LEN;

/// A loaded responder and its response buffer.
struct Loaded {
    responder: Responder<Identity, KernelSha384>,
    rsp: [u8; RESPONSE_LEN],
}

/// The SPDM side of one endpoint, used in process context only (signing sleeps).
pub(crate) struct SpdmEndpoint {
    index: usize,
    loaded: Option<KBox<Loaded>>,
}

impl SpdmEndpoint {
    /// Returns the SPDM side of endpoint `index`; its identity is loaded on first use.
    pub(crate) fn new(index: usize) -> Self {
        Self {
            index,
            loaded: None,
        }
    }

    /// Returns the name of the connection state, `none` before the first request.
    pub(crate) fn state_name(&self) -> &'static str {
        match self.loaded.as_deref().map(|l| l.responder.state()) {
            None => "none",
            Some(ConnectionState::NotStarted) => "NOT_STARTED",
            Some(ConnectionState::AfterVersion) => "AFTER_VERSION",
            Some(ConnectionState::AfterCapabilities) => "AFTER_CAPABILITIES",
            Some(ConnectionState::Negotiated) => "NEGOTIATED",
            Some(ConnectionState::Authenticated) => "AUTHENTICATED",
        }
    }

    /// Handles `request` with the faults `faults` armed; returns the response and whether
    /// algorithms are negotiated afterwards (TDISP may then run), or `None` if the device has
    /// no identity (the firmware files are missing).
    pub(crate) fn handle(
        &mut self,
        dev: &Device,
        request: &mut [u8],
        faults: SpdmFaults,
        rng: &mut impl FnMut(&mut [u8]),
    ) -> Option<(&[u8], bool)> {
        if self.loaded.is_none() {
            let loaded = Identity::load(dev, self.index).and_then(|identity| {
                Ok(KBox::new(
                    Loaded {
                        responder: Responder::new(identity),
                        rsp: [0; RESPONSE_LEN],
                    },
                    GFP_KERNEL,
                )?)
            });
            match loaded {
                Ok(loaded) => self.loaded = Some(loaded),
                Err(err) => {
                    pr_err!(
                        "endpoint {}: no SPDM identity ({:?}); see spdm-keys.sh\n",
                        self.index,
                        err
                    );
                    return None;
                }
            }
        }
        let loaded = self.loaded.as_deref_mut()?;
        let code = request.get(1).copied();
        let identity = loaded.responder.device();
        identity.faults.set(faults);
        if !faults.measurement_changes {
            identity.updated.set(false);
        }
        let is_meas = code == Some(Code::GetMeasurements as u8);
        if is_meas && faults.stale_nonce {
            if let Some(nonce) = request.get_mut(4..4 + spdm::NONCE_LEN) {
                nonce.fill(STALE_NONCE);
            }
        }
        if faults.short_portions && code == Some(Code::GetCertificate as u8) {
            // Length, after the header and Offset: the device answers as if asked for less.
            let len = request
                .get_mut(6..8)
                .and_then(|b| <&mut [u8; 2]>::try_from(b).ok());
            if let Some(len) = len {
                *len = u16::from_le_bytes(*len)
                    .min(SHORT_PORTION_LEN)
                    .to_le_bytes();
            }
        }

        let mut n = loaded.responder.handle(request, &mut loaded.rsp, rng);
        let rsp = loaded.rsp.get_mut(..n)?;
        let answer = rsp.get(1).copied();
        if faults.truncated_cert && answer == Some(Code::Certificate as u8) {
            n = n.saturating_sub(16);
        }
        if faults.bad_algorithms && answer == Some(Code::Algorithms as u8) {
            // BaseAsymSel: after the header, Length, MeasurementSpecificationSel,
            // OtherParamsSelection and MeasurementHashAlgo.
            if let Some(sel) = rsp.get_mut(12..16) {
                sel.copy_from_slice(&alg::BASE_ASYM_ECDSA_P384.to_le_bytes());
            }
        }
        if faults.no_measurements && answer == Some(Code::Algorithms as u8) {
            // MeasurementSpecificationSel and MeasurementHashAlgo.
            if let Some([spec, _, hash @ ..]) = rsp.get_mut(6..12) {
                *spec = 0;
                hash.fill(0);
            }
        }
        if faults.measurement_changes && answer == Some(Code::Measurements as u8) {
            loaded.responder.device().updated.set(true);
        }
        let negotiated = loaded.responder.is_negotiated();
        Some((loaded.rsp.get(..n)?, negotiated))
    }
}
