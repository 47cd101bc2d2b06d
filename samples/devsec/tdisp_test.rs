// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the devsec TDISP library in `tdisp/`.
//!
//! Built into the kernel (no `module!`); the suites run at boot, one per part of the library:
//! `devsec_tdisp_doe`, `devsec_tdisp_codec`, `devsec_tdisp_report`, `devsec_tdisp_responder`
//! and `devsec_tdisp_requester`, each in its own file under `tdisp_test/`, with the fixtures
//! they share in `tdisp_test/common.rs`. On the host, `#[kunit_tests]` simply becomes
//! `#[cfg(test)]`. Tests only use `assert!` and `assert_eq!` without messages, which KUnit
//! maps to its own asserts, and never unwrap: a failure is reported, it does not panic the
//! kernel.
//!
//! This crate includes every file of the library and is built with all of its cfgs
//! (`tdisp_responder`, `tdisp_requester` and `tdisp_kunit`, see the Makefile).

/// The whole TDISP library in `tdisp/`.
mod tdisp {
    mod codec;
    mod doe;
    mod report;
    mod requester;
    mod responder;

    pub(crate) use codec::*;
    pub(crate) use doe::*;
    pub(crate) use report::*;
    pub(crate) use requester::*;
    pub(crate) use responder::*;
}

/// The KUnit suites, in `tdisp_test/`.
#[path = "tdisp_test"]
mod suites {
    mod codec;
    mod common;
    mod doe;
    mod report;
    mod requester;
    mod responder;
}
