// SPDX-License-Identifier: GPL-2.0

//! Trust anchors of the devsec TSM: the root certificates in its keyring `.devsec_tsm`.
//!
//! The TSM authenticates a device with SPDM only against root certificates userspace put
//! into that keyring, which it creates empty. `trust` adds DER certificates to it with
//! `add_key(2)` (key type "asymmetric": the kernel parses the X.509 certificate) and
//! `trust --clear` empties it with `keyctl(KEYCTL_CLEAR)`. The keyring is found by name in
//! `/proc/keys`.

use std::ffi::{c_long, CString};
use std::io;

/// Name of the TSM's trust-anchor keyring.
pub const KEYRING: &str = ".devsec_tsm";

/// `keyctl(2)` operation that unlinks every key from a keyring.
const KEYCTL_CLEAR: c_long = 7;

/// x86_64 system call numbers of `add_key` and `keyctl`.
const SYS_ADD_KEY: c_long = 248;
const SYS_KEYCTL: c_long = 250;

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
}

/// Returns the serial of the keyring named `name` in the contents of `/proc/keys`: the
/// first column (hex) of the line whose type is "keyring" and whose description is `name`.
pub fn find_keyring(proc_keys: &str, name: &str) -> Option<i32> {
    proc_keys.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // serial flags usage timeout perm uid gid type description: summary
        let (serial, kind, desc) = (fields.first()?, fields.get(7)?, fields.get(8)?);
        if *kind != "keyring" || desc.strip_suffix(':') != Some(name) {
            return None;
        }
        u32::from_str_radix(serial, 16).ok().map(|s| s as i32)
    })
}

/// Returns the serial of the TSM's keyring, from `/proc/keys`.
pub fn tsm_keyring() -> Result<i32, String> {
    let keys = std::fs::read_to_string("/proc/keys")
        .map_err(|e| format!("cannot read /proc/keys: {e}"))?;
    find_keyring(&keys, KEYRING)
        .ok_or_else(|| format!("no keyring {KEYRING} in /proc/keys (is devsec_tsm loaded?)"))
}

/// Explains an `add_key(2)` failure.
fn add_key_error(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(74) => "not an X.509 certificate the kernel can parse (EBADMSG)".to_string(),
        Some(13) | Some(1) => "permission denied (root only)".to_string(),
        _ => format!("add_key failed: {err}"),
    }
}

/// Adds the DER certificate `der` to keyring `serial`; returns the new key's serial.
pub fn add_certificate(serial: i32, der: &[u8]) -> Result<i32, String> {
    let kind = CString::new("asymmetric").map_err(|e| e.to_string())?;
    // SAFETY: add_key(2) with a NUL-terminated type, no description (the kernel derives one
    // from the certificate), a payload valid for `der.len()` bytes and a keyring serial; it
    // reads the buffers only during the call.
    let ret = unsafe {
        syscall(
            SYS_ADD_KEY,
            kind.as_ptr(),
            std::ptr::null::<u8>(),
            der.as_ptr(),
            der.len(),
            serial as c_long,
        )
    };
    if ret < 0 {
        return Err(add_key_error(&io::Error::last_os_error()));
    }
    Ok(ret as i32)
}

/// Unlinks every key from keyring `serial`.
pub fn clear(serial: i32) -> Result<(), String> {
    // SAFETY: keyctl(2) KEYCTL_CLEAR takes the keyring serial only.
    let ret = unsafe { syscall(SYS_KEYCTL, KEYCTL_CLEAR, serial as c_long) };
    if ret < 0 {
        return Err(format!(
            "keyctl clear failed: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_KEYS: &str = "\
0123cb9a I------     1 perm 3f0f0000     0     0 keyring   .devsec_tsm: empty
2ed5fdbd I--Q---     1 perm 39010000     0     0 asymmetri devsec test root CA: d4: X509.rsa 89ef6861 []
0badf00d I------     1 perm 3f0f0000     0     0 keyring   .devsec_tsm_other: 1
";

    #[test]
    fn finds_the_tsm_keyring_by_type_and_name() {
        assert_eq!(find_keyring(PROC_KEYS, KEYRING), Some(0x0123cb9a));
        assert_eq!(
            find_keyring(PROC_KEYS, ".devsec_tsm_other"),
            Some(0x0badf00d)
        );
    }

    #[test]
    fn ignores_other_types_prefixes_and_garbage() {
        assert_eq!(find_keyring(PROC_KEYS, "devsec test root CA"), None);
        assert_eq!(find_keyring(PROC_KEYS, ".devsec"), None);
        assert_eq!(find_keyring("", KEYRING), None);
        assert_eq!(
            find_keyring("zz I 1 perm 0 0 0 keyring .devsec_tsm: empty", KEYRING),
            None
        );
        assert_eq!(find_keyring("0123 short line", KEYRING), None);
    }

    #[test]
    fn high_serials_keep_their_bits() {
        let line = "fffffffe I------ 1 perm 3f0f0000 0 0 keyring .devsec_tsm: 1";
        assert_eq!(find_keyring(line, KEYRING), Some(-2));
    }
}
