// SPDX-License-Identifier: GPL-2.0

//! The SPDM library's [`Hash`](crate::spdm::Hash), SHA-384 of the kernel's crypto library;
//! shared by source by the bus and the TSM.

use crate::spdm::{CryptoError, Digest, Hash};
use kernel::crypto::Sha384;

/// SHA-384 for the SPDM transcripts and digests. It cannot fail.
pub(crate) struct KernelSha384(Sha384);

impl Hash for KernelSha384 {
    fn start() -> Result<Self, CryptoError> {
        Ok(Self(Sha384::new()))
    }

    fn update(&mut self, data: &[u8]) -> Result<(), CryptoError> {
        self.0.update(data);
        Ok(())
    }

    fn finish(self) -> Result<Digest, CryptoError> {
        Ok(self.0.finish())
    }
}
