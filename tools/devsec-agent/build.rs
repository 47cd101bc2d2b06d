// SPDX-License-Identifier: GPL-2.0

//! Sets the cfgs the shared TDISP library in `samples/devsec/tdisp/` expects.
//!
//! The agent includes the TSM side of the library (`codec.rs`, `report.rs`,
//! `requester.rs`), so it is built like the kernel's devsec TSM: with `tdisp_requester`,
//! without `tdisp_responder` and `tdisp_kunit` (see `samples/devsec/Makefile`). All three
//! are declared so that `unexpected_cfgs` stays quiet about the ones not set.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tdisp_requester)");
    println!("cargo::rustc-check-cfg=cfg(tdisp_responder)");
    println!("cargo::rustc-check-cfg=cfg(tdisp_kunit)");
    println!("cargo::rustc-cfg=tdisp_requester");
    for file in ["codec.rs", "report.rs", "requester.rs"] {
        println!("cargo::rerun-if-changed=../../samples/devsec/tdisp/{file}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
