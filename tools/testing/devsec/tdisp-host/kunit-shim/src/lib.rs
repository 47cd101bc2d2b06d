// SPDX-License-Identifier: GPL-2.0

//! Host stand-in for the kernel's `#[kunit_tests(suite)]` attribute.
//!
//! In the kernel the attribute turns the `#[test]` functions of a module into a KUnit
//! suite. On the host the same module is an ordinary `cargo test` module, so the attribute
//! only has to make it `#[cfg(test)]`; the suite name is dropped (cargo names tests by
//! module path).

use proc_macro::TokenStream;

/// Marks a KUnit suite module as a `#[cfg(test)]` module on the host.
#[proc_macro_attribute]
pub fn kunit_tests(_suite: TokenStream, module: TokenStream) -> TokenStream {
    let mut out: TokenStream = "#[cfg(test)]".parse().unwrap_or_default();
    out.extend(module);
    out
}
