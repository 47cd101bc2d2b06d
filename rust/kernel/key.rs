// SPDX-License-Identifier: GPL-2.0

//! Keys and keyrings of the key retention service.
//!
//! A [`Keyring`] holds keys; userspace can add keys to one it may write to with `add_key(2)`.
//! [`Keyring::add_asymmetric`] parses an X.509 certificate into an asymmetric key, and a
//! keyring restricted with [`Keyring::restrict`] (for example to keys signed by a key in a
//! trusted keyring, see `Documentation/crypto/asymmetric-keys.rst`) accepts only certificates
//! the restriction lets through: that is how a certificate chain is validated against a trust
//! anchor without parsing ASN.1 outside the X.509 parser. [`Key::verify_signature`] then
//! checks a signature with the public key of a certificate.
//!
//! C headers: [`include/linux/key.h`](srctree/include/linux/key.h),
//! [`include/crypto/public_key.h`](srctree/include/crypto/public_key.h)

use crate::{
    bindings,
    error::{from_err_ptr, to_result},
    prelude::*,
    str::CString,
};
use core::ptr::{self, NonNull};

/// `KEY_ALLOC_NOT_IN_QUOTA`: keys the kernel allocates for itself are not charged to a user.
// CAST: a flag bit, as `unsigned long`.
const NOT_IN_QUOTA: usize = bindings::KEY_ALLOC_NOT_IN_QUOTA as usize;

/// Permissions of a key (`key_perm_t`): possessor, user, group and other bits.
pub type Perm = bindings::key_perm_t;

/// A key with a reference held on it.
///
/// # Invariants
///
/// `key` points to a valid `struct key` on which this object holds one reference (usage count),
/// dropped with `key_put()` when the object is dropped.
pub struct Key {
    key: NonNull<bindings::key>,
}

// SAFETY: Key references may be dropped on any thread, and keys are not tied to a thread.
unsafe impl Send for Key {}

// SAFETY: The methods taking `&self` only read immutable fields of the key or call functions of
// the key service that do their own locking.
unsafe impl Sync for Key {}

impl Key {
    /// Takes over the reference `key_ref` holds.
    ///
    /// # Safety
    ///
    /// `key_ref` must be a valid key reference (not an error pointer) that the caller owns
    /// one reference through; it is transferred to the returned object.
    unsafe fn from_ref(key_ref: bindings::key_ref_t) -> Result<Self> {
        // SAFETY: `key_ref` is a valid key reference.
        let key = unsafe { bindings::key_ref_to_ptr(key_ref) };
        // INVARIANT: The caller transfers its reference on the key.
        Ok(Self {
            key: NonNull::new(key).ok_or(EINVAL)?,
        })
    }

    fn as_ptr(&self) -> *mut bindings::key {
        self.key.as_ptr()
    }

    /// Returns the serial number of the key, as userspace sees it (`keyctl(2)`).
    pub fn serial(&self) -> i32 {
        // SAFETY: By the type invariant `self.key` is valid.
        unsafe { bindings::key_serial(self.as_ptr()) }
    }

    /// Checks that `signature` is a signature of `digest` by the public key of this asymmetric
    /// key, with public key algorithm `pkey_algo` (e.g. `"rsa"`), digest algorithm
    /// `hash_algo` (e.g. `"sha384"`) and signature encoding `encoding` (e.g. `"pkcs1"`).
    ///
    /// Fails with `EKEYREJECTED` if the signature does not match, `EBADMSG` if it is
    /// malformed, `ENOPKG` if the algorithms are not available and `EINVAL` if they do not
    /// fit the key.
    pub fn verify_signature(
        &self,
        signature: &[u8],
        digest: &[u8],
        pkey_algo: &CStr,
        hash_algo: &CStr,
        encoding: &CStr,
    ) -> Result {
        let sig = bindings::public_key_signature {
            auth_ids: [ptr::null_mut(); 3],
            // The verifier only reads the signature and the digest.
            s: signature.as_ptr().cast_mut(),
            m: digest.as_ptr().cast_mut(),
            s_size: u32::try_from(signature.len()).map_err(|_| EINVAL)?,
            m_size: u32::try_from(digest.len()).map_err(|_| EINVAL)?,
            m_free: false,
            algo_takes_data: false,
            pkey_algo: pkey_algo.as_char_ptr(),
            hash_algo: hash_algo.as_char_ptr(),
            encoding: encoding.as_char_ptr(),
        };
        // SAFETY: By the type invariant `self.key` is valid; `sig` and the buffers and strings
        // it points to are valid for the duration of the call, which does not keep them.
        to_result(unsafe { bindings::verify_signature(self.as_ptr(), &sig) })
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this object owns a reference on the key.
        unsafe { bindings::key_put(self.as_ptr()) };
    }
}

/// A keyring with a reference held on it.
///
/// # Examples
///
/// ```
/// use kernel::{key::Keyring, prelude::*};
///
/// let ring = Keyring::new(c"rust-doctest", Keyring::OWNER_ALL)?;
/// assert!(ring.serial() > 0);
/// // Not an X.509 certificate: the parser refuses it and the keyring stays empty.
/// assert_eq!(ring.add_asymmetric(&[0x30, 0x03, 0x02, 0x01, 0x00]).err(), Some(EBADMSG));
/// // A restriction the asymmetric key type does not know.
/// assert!(ring.restrict(c"asymmetric", c"no_such_restriction").is_err());
/// // Restricted to keys signed by a key of an empty keyring, it takes no key at all.
/// let anchors = Keyring::new(c"rust-doctest-anchors", Keyring::OWNER_ALL)?;
/// ring.restrict_to_chain_of(&anchors)?;
/// ring.clear()?;
/// # Ok::<(), Error>(())
/// ```
pub struct Keyring(Key);

impl Keyring {
    /// All permissions for the possessor and for the owner (root): view, read, write, search,
    /// link, set attributes.
    pub const OWNER_ALL: Perm = bindings::KEY_POS_ALL | bindings::KEY_USR_ALL;

    /// Allocates an empty keyring named `description`, owned by root in the initial user
    /// namespace, with permissions `perm`, not charged to anyone's quota and not linked into
    /// any other keyring: it lives for as long as references to it do.
    pub fn new(description: &CStr, perm: Perm) -> Result<Self> {
        let root_uid = bindings::kuid_t { val: 0 };
        let root_gid = bindings::kgid_t { val: 0 };
        // SAFETY: `description` is a valid string that `keyring_alloc()` copies; the
        // credentials of the current task are valid during the call; there is no restriction
        // and no destination keyring.
        let key = unsafe {
            bindings::keyring_alloc(
                description.as_char_ptr(),
                root_uid,
                root_gid,
                bindings::current_cred(),
                perm,
                NOT_IN_QUOTA,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let key = from_err_ptr(key)?;
        // INVARIANT: `keyring_alloc()` returned a new keyring with one reference, ours.
        Ok(Self(Key {
            key: NonNull::new(key).ok_or(ENOMEM)?,
        }))
    }

    /// Returns the serial number of the keyring.
    pub fn serial(&self) -> i32 {
        self.0.serial()
    }

    fn as_ref_possessed(&self) -> bindings::key_ref_t {
        // SAFETY: By the type invariant of `Key` the keyring is valid; the kernel possesses
        // the keyrings it allocated.
        unsafe { bindings::make_key_ref(self.0.as_ptr(), true) }
    }

    /// Restricts which keys of type `key_type` may be linked into the keyring from now on,
    /// with a restriction of that type (see `keyctl_restrict_keyring(3)`). A restriction
    /// cannot be lifted.
    pub fn restrict(&self, key_type: &CStr, restriction: &CStr) -> Result {
        // SAFETY: The key reference is valid; both strings are valid and only read (the
        // restriction is parsed into the keyring's own restriction record).
        to_result(unsafe {
            bindings::keyring_restrict(
                self.as_ref_possessed(),
                key_type.as_char_ptr(),
                restriction.as_char_ptr(),
            )
        })
    }

    /// Restricts the keyring to asymmetric keys whose certificate is signed by a key in
    /// `anchors` or by a key already in this keyring (`key_or_keyring:<anchors>:chain`): adding
    /// a chain's certificates root first then validates the chain against the anchors. Keys
    /// added to `anchors` later count too.
    pub fn restrict_to_chain_of(&self, anchors: &Keyring) -> Result {
        let restriction = CString::try_from_fmt(fmt!("key_or_keyring:{}:chain", anchors.serial()))?;
        self.restrict(c"asymmetric", &restriction)
    }

    /// Parses the DER X.509 certificate `der` into an asymmetric key, adds it to the keyring
    /// and returns it.
    ///
    /// Fails with `EBADMSG` if `der` is not a certificate the kernel can parse, and, in a
    /// restricted keyring, with the restriction's error for a certificate it refuses
    /// (`ENOKEY` if no key it trusts signed the certificate, `EKEYREJECTED` if the signature is
    /// wrong).
    pub fn add_asymmetric(&self, der: &[u8]) -> Result<Key> {
        let perm = bindings::KEY_POS_VIEW
            | bindings::KEY_POS_READ
            | bindings::KEY_POS_SEARCH
            | bindings::KEY_USR_VIEW
            | bindings::KEY_USR_READ;
        // SAFETY: The key reference is valid; `der` is valid for reads of its length and
        // copied by the parser; the description is generated from the certificate.
        let key_ref = unsafe {
            bindings::key_create_or_update(
                self.as_ref_possessed(),
                c"asymmetric".as_char_ptr(),
                ptr::null(),
                der.as_ptr().cast(),
                der.len(),
                perm,
                NOT_IN_QUOTA,
            )
        };
        let key_ref = from_err_ptr(key_ref)?;
        // SAFETY: `key_create_or_update()` returned a key reference (not an error) and gave
        // us its reference on the key.
        unsafe { Key::from_ref(key_ref) }
    }

    /// Unlinks every key from the keyring.
    pub fn clear(&self) -> Result {
        // SAFETY: By the type invariant of `Key` the keyring is valid.
        to_result(unsafe { bindings::keyring_clear(self.0.as_ptr()) })
    }
}
