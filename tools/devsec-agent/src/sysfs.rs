// SPDX-License-Identifier: GPL-2.0

//! Access to sysfs, behind a small trait so the decision logic can run against a test
//! double instead of a kernel.
//!
//! Paths are relative to the sysfs root (`bus/pci/devices/<BDF>/tsm/lock`); [`DirSysfs`]
//! resolves them below a configurable directory (`--sysfs`, default `/sys`).

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

/// Linux errno values the kernel ABI uses (x86_64 and every other architecture that uses the
/// generic numbers). The agent has no libc dependency, so they are spelled out here.
pub mod errno {
    /// No such device or address: not locked, unknown TSM.
    pub const ENXIO: i32 = 6;
    /// Device or resource busy: already locked, driver bound.
    pub const EBUSY: i32 = 16;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Bad message: the interface report changed since it was locked.
    pub const EBADMSG: i32 = 74;
    /// Stale file handle: the evidence generation is no longer current.
    pub const ESTALE: i32 = 116;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No data available: SPDM evidence of a device the TSM did not authenticate.
    pub const ENODATA: i32 = 61;
}

/// Returns the symbolic name of an I/O error's errno, or the error text.
pub fn errno_name(err: &io::Error) -> String {
    let name = match err.raw_os_error() {
        Some(errno::ENXIO) => "ENXIO",
        Some(errno::EBUSY) => "EBUSY",
        Some(errno::EINVAL) => "EINVAL",
        Some(errno::EBADMSG) => "EBADMSG",
        Some(errno::ESTALE) => "ESTALE",
        Some(errno::ENOENT) => "ENOENT",
        Some(errno::EACCES) => "EACCES",
        Some(errno::EPERM) => "EPERM",
        _ => return err.to_string(),
    };
    name.to_string()
}

/// The sysfs operations the agent needs.
pub trait Sysfs {
    /// Reads a whole attribute.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Writes `data` to an attribute in one `write()`, as sysfs requires.
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Returns whether `path` exists.
    fn exists(&self, path: &str) -> bool;
    /// Returns the last component of the target of symlink `path`, `None` if there is no
    /// such link.
    fn link_name(&self, path: &str) -> io::Result<Option<String>>;
    /// Lists the entries of directory `path`, sorted.
    fn list(&self, path: &str) -> io::Result<Vec<String>>;

    /// Reads an attribute as text without the trailing newline.
    fn read_str(&self, path: &str) -> io::Result<String> {
        let bytes = self.read(path)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
        Ok(text.trim_end_matches('\n').to_string())
    }
}

/// Sysfs below a directory: `/sys` on a real system, a temporary tree in tests.
#[derive(Clone, Debug)]
pub struct DirSysfs {
    root: PathBuf,
}

impl DirSysfs {
    /// Creates an accessor for the tree below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Returns the absolute path of `path`.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

impl Sysfs for DirSysfs {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(path))
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        // No O_CREAT and no O_TRUNC: attributes exist or the write is wrong.
        let mut file = fs::OpenOptions::new().write(true).open(self.path(path))?;
        let written = file.write(data)?;
        if written != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({written} of {} bytes)", data.len()),
            ));
        }
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }

    fn link_name(&self, path: &str) -> io::Result<Option<String>> {
        match fs::read_link(self.path(path)) {
            Ok(target) => Ok(target
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.path(path))? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}
