// SPDX-License-Identifier: GPL-2.0

//! libFuzzer target: [`devsec_tdisp_host::fuzz::spdm_responder`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| devsec_tdisp_host::fuzz::spdm_responder(data));
