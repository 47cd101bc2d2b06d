// SPDX-License-Identifier: GPL-2.0

//! Cryptography: SHA-384 and signatures.
//!
//! [`Sha384`] is the SHA-384 of the kernel's crypto library (`lib/crypto`): no allocation, no
//! failure, any context. [`Sig`] is a signature transform of the crypto API (`crypto_sig`),
//! for example RSASSA-PKCS1-v1.5 with SHA-384 (`"pkcs1(rsa,sha384)"`), which signs and
//! verifies digests with a raw key.
//!
//! Certificates and the keys in them belong to the key retention service instead, see
//! [`kernel::key`](crate::key).
//!
//! C headers: [`include/crypto/sha2.h`](srctree/include/crypto/sha2.h),
//! [`include/crypto/sig.h`](srctree/include/crypto/sig.h)

use crate::{
    bindings,
    error::{from_err_ptr, to_result},
    prelude::*,
};
use core::ptr::NonNull;

/// Size of a SHA-384 digest in bytes.
pub const SHA384_DIGEST_SIZE: usize = bindings::SHA384_DIGEST_SIZE as usize;

/// A SHA-384 digest.
pub type Sha384Digest = [u8; SHA384_DIGEST_SIZE];

/// An incremental SHA-384 computation.
///
/// # Examples
///
/// ```
/// use kernel::crypto::Sha384;
///
/// let mut hash = Sha384::new();
/// hash.update(b"a");
/// hash.update(b"bc");
/// let digest = hash.finish();
/// assert_eq!(digest, Sha384::digest(b"abc"));
/// // FIPS 180-2, appendix D.1.
/// assert_eq!(&digest[..8], &[0xcb, 0x00, 0x75, 0x3f, 0x45, 0xa3, 0x5e, 0x8b]);
/// assert_eq!(&digest[40..], &[0x58, 0xba, 0xec, 0xa1, 0x34, 0xc8, 0x25, 0xa7]);
/// assert_ne!(Sha384::digest(b"abd"), digest);
/// ```
pub struct Sha384(bindings::sha384_ctx);

impl Sha384 {
    /// Starts a new computation.
    pub fn new() -> Self {
        let mut ctx: bindings::sha384_ctx = pin_init::zeroed();
        // SAFETY: `ctx` is a valid, writable `struct sha384_ctx`.
        unsafe { bindings::sha384_init(&mut ctx) };
        Self(ctx)
    }

    /// Hashes `data` after what was hashed so far.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: `self.0` was initialised by `sha384_init()` and `data` is valid for reads of
        // `data.len()` bytes.
        unsafe { bindings::sha384_update(&mut self.0, data.as_ptr(), data.len()) };
    }

    /// Returns the digest of everything hashed. `sha384_final()` wipes the context.
    pub fn finish(mut self) -> Sha384Digest {
        let mut out = [0u8; SHA384_DIGEST_SIZE];
        // SAFETY: `self.0` was initialised by `sha384_init()` and `out` has room for a
        // SHA-384 digest.
        unsafe { bindings::sha384_final(&mut self.0, out.as_mut_ptr()) };
        out
    }

    /// Returns the SHA-384 digest of `data`.
    pub fn digest(data: &[u8]) -> Sha384Digest {
        let mut out = [0u8; SHA384_DIGEST_SIZE];
        // SAFETY: `data` is valid for reads of `data.len()` bytes and `out` has room for a
        // SHA-384 digest.
        unsafe { bindings::sha384(data.as_ptr(), data.len(), out.as_mut_ptr()) };
        out
    }
}

impl Default for Sha384 {
    fn default() -> Self {
        Self::new()
    }
}

/// A signature transform of the crypto API with its key.
///
/// The algorithm is named as in `/proc/crypto`, for example `"pkcs1(rsa,sha384)"`:
/// RSASSA-PKCS1-v1.5, which signs a SHA-384 digest with a private key (a DER `RSAPrivateKey`,
/// RFC 8017 appendix A.1.2) and verifies one with a public key (a DER `RSAPublicKey`).
/// Allocating the transform, setting a key, signing and verifying may sleep.
///
/// # Invariants
///
/// `tfm` is a valid `struct crypto_sig` returned by `crypto_alloc_sig()`, owned by this object
/// and freed when it is dropped.
///
/// # Examples
///
/// ```
/// use kernel::{crypto::Sig, prelude::*};
///
/// let mut sig = Sig::new(c"pkcs1(rsa,sha384)")?;
/// // Neither key is a DER RSA key: the transform refuses both and keeps no key.
/// assert!(sig.set_privkey(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
/// assert!(sig.set_pubkey(&[0u8; 16]).is_err());
/// // Without a key there is nothing to verify with.
/// assert!(sig.verify(&[0u8; 384], &[0u8; 48]).is_err());
/// # Ok::<(), Error>(())
/// ```
pub struct Sig {
    tfm: NonNull<bindings::crypto_sig>,
}

// SAFETY: A transform is not tied to the thread that allocated it.
unsafe impl Send for Sig {}

impl Sig {
    /// Allocates a transform of the signature algorithm `alg`.
    ///
    /// Fails with `ENOENT` if the crypto API has no such algorithm.
    pub fn new(alg: &CStr) -> Result<Self> {
        // SAFETY: `alg` is a valid NUL-terminated string.
        let tfm = unsafe { bindings::crypto_alloc_sig(alg.as_char_ptr(), 0, 0) };
        let tfm = from_err_ptr(tfm)?;
        // INVARIANT: `crypto_alloc_sig()` returned a transform, not an error.
        Ok(Self {
            tfm: NonNull::new(tfm).ok_or(ENOMEM)?,
        })
    }

    /// Sets the public key the transform verifies with (and drops any key it had).
    pub fn set_pubkey(&mut self, key: &[u8]) -> Result {
        let len = u32::try_from(key.len()).map_err(|_| EINVAL)?;
        // SAFETY: By the type invariant `self.tfm` is valid; `key` is valid for reads of `len`
        // bytes, and the transform copies what it keeps.
        to_result(unsafe {
            bindings::crypto_sig_set_pubkey(self.tfm.as_ptr(), key.as_ptr().cast(), len)
        })
    }

    /// Sets the private key the transform signs (and verifies) with.
    pub fn set_privkey(&mut self, key: &[u8]) -> Result {
        let len = u32::try_from(key.len()).map_err(|_| EINVAL)?;
        // SAFETY: As in `set_pubkey`.
        to_result(unsafe {
            bindings::crypto_sig_set_privkey(self.tfm.as_ptr(), key.as_ptr().cast(), len)
        })
    }

    /// Returns the largest signature the transform makes with its key, in bytes (for RSA, the
    /// size of the modulus).
    pub fn max_size(&self) -> usize {
        // SAFETY: By the type invariant `self.tfm` is valid.
        unsafe { bindings::crypto_sig_maxsize(self.tfm.as_ptr()) as usize }
    }

    /// Signs `digest` into `signature` with the private key; returns the signature's length.
    pub fn sign(&self, digest: &[u8], signature: &mut [u8]) -> Result<usize> {
        let slen = u32::try_from(digest.len()).map_err(|_| EINVAL)?;
        let dlen = u32::try_from(signature.len()).map_err(|_| EINVAL)?;
        // SAFETY: By the type invariant `self.tfm` is valid; `digest` is valid for reads of
        // `slen` bytes and `signature` for writes of `dlen` bytes.
        let ret = unsafe {
            bindings::crypto_sig_sign(
                self.tfm.as_ptr(),
                digest.as_ptr().cast(),
                slen,
                signature.as_mut_ptr().cast(),
                dlen,
            )
        };
        to_result(ret)?;
        // A non-negative return is the length of the signature, at most `dlen`.
        usize::try_from(ret).map_err(|_| EINVAL)
    }

    /// Checks that `signature` is a signature of `digest` by the key.
    ///
    /// Fails with `EKEYREJECTED` (or `EBADMSG` for a signature that is not even well formed)
    /// if it is not.
    pub fn verify(&self, signature: &[u8], digest: &[u8]) -> Result {
        let slen = u32::try_from(signature.len()).map_err(|_| EINVAL)?;
        let dlen = u32::try_from(digest.len()).map_err(|_| EINVAL)?;
        // SAFETY: By the type invariant `self.tfm` is valid; both buffers are valid for reads
        // of their lengths.
        to_result(unsafe {
            bindings::crypto_sig_verify(
                self.tfm.as_ptr(),
                signature.as_ptr().cast(),
                slen,
                digest.as_ptr().cast(),
                dlen,
            )
        })
    }
}

impl Drop for Sig {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `self.tfm` is a transform this object owns; it is not
        // used after this.
        unsafe { bindings::crypto_free_sig(self.tfm.as_ptr()) };
    }
}
