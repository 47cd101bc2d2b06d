// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the devsec SPDM library in `spdm/`.
//!
//! Built into the kernel (no `module!`); the suite `devsec_spdm_codec` (`spdm_test/codec.rs`,
//! with the fixtures in `spdm_test/common.rs`) runs at boot. As for the TDISP suites, the same
//! files run on the host with `#[kunit_tests]` mapped to `#[cfg(test)]`, and there also
//! `devsec_spdm_responder`, `devsec_spdm_requester` and `devsec_spdm_session`: their fixtures
//! keep a responder, a requester (about 9 KiB, for the certificate chain) and message buffers
//! on the stack, more than a kernel stack holds, so they run on the host only until the
//! fixtures move to the heap (`make test` runs them in the tdisp-host crate).
//!
//! This crate includes every file of the library and is built with all of its cfgs
//! (`spdm_responder`, `spdm_requester` and `spdm_kunit`, see the Makefile).

/// The whole SPDM library in `spdm/`. The requester half is here for the shared fixtures;
/// the suites that exercise it run on the host, so parts of it are unused in this crate.
#[allow(dead_code)]
mod spdm {
    mod codec;
    mod requester;
    mod responder;
    mod transcript;

    pub(crate) use codec::*;
    pub(crate) use requester::*;
    pub(crate) use responder::*;
    pub(crate) use transcript::*;
}

/// The KUnit suites, in `spdm_test/`. Some fixtures serve only the host-only suites.
#[allow(dead_code)]
#[path = "spdm_test"]
mod spdm_suites {
    mod codec;
    mod common;
}
