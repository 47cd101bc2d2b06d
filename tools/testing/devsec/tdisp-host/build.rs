// SPDX-License-Identifier: GPL-2.0

//! Compiles the libraries with every cfg, as samples/devsec/Makefile does for the KUnit suite.

fn main() {
    for cfg in [
        "tdisp_responder",
        "tdisp_requester",
        "tdisp_kunit",
        "spdm_responder",
        "spdm_requester",
        "spdm_kunit",
    ] {
        println!("cargo::rustc-cfg={cfg}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
