// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the devsec SPDM library in `spdm/`.
//!
//! Built into the kernel (no `module!`); the suites run at boot: `devsec_spdm_codec`,
//! `devsec_spdm_responder`, `devsec_spdm_requester` and `devsec_spdm_session` (the requester
//! against the responder), each in its own file under `spdm_test/`, with the fixtures they
//! share in `spdm_test/common.rs`. The fixtures keep their responders, requesters (about
//! 9 KiB each, for the certificate chain), chains and message buffers in `KBox`es, so that
//! the tests fit on a kernel stack. As for the TDISP suites, the same files run on the host
//! with `#[kunit_tests]` mapped to `#[cfg(test)]` (`make test` runs them in the tdisp-host
//! crate).
//!
//! This crate includes every file of the library and is built with all of its cfgs
//! (`spdm_responder`, `spdm_requester` and `spdm_kunit`, see the Makefile).

/// The whole SPDM library in `spdm/`.
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

/// The KUnit suites, in `spdm_test/`.
#[path = "spdm_test"]
mod spdm_suites {
    mod codec;
    mod common;
    mod requester;
    mod responder;
    mod session;
}
