// SPDX-License-Identifier: GPL-2.0

//! The devsec TDISP and SPDM libraries on the host.
//!
//! `samples/devsec/tdisp/` is core-only safe Rust, so the very files the kernel modules
//! include build here unchanged, with every cfg the KUnit suite uses (see `build.rs`).
//! `cargo test` runs the KUnit suites of `samples/devsec/tdisp_test/` as ordinary tests
//! (the `kunit-shim` crate stands in for `#[kunit_tests]`), and [`fuzz`] holds the fuzz
//! targets that both the libFuzzer harness (`fuzz/`) and the seeded stable-toolchain runner
//! (`src/bin/tdisp-fuzz-quick.rs`) drive.

// The suites say `use kernel::prelude::*;`: on the host that is this crate's `prelude`.
extern crate self as kernel;

/// What the suites take from the kernel prelude: the `#[kunit_tests]` attribute, and `KBox`
/// with `GFP_KERNEL` for the fixtures kept on the heap.
pub mod prelude {
    pub use crate::alloc::{flags::GFP_KERNEL, KBox};
    pub use kunit_shim::kunit_tests;
}

/// Host stand-in for the parts of `kernel::alloc` the suites use, with the kernel's API and
/// paths: `KBox::new(value, GFP_KERNEL)` returns a `Result`, as it may fail in the kernel.
/// Here it is a `Box` and never fails. As in the kernel, `AllocError` is not in the prelude.
pub mod alloc {
    use core::ops::{Deref, DerefMut};

    /// Host stand-in for `kernel::alloc::AllocError`: an allocation failed.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct AllocError;

    /// Host stand-in for `kernel::alloc::Flags`, the GFP flags of an allocation; ignored.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct Flags(u32);

    /// Host stand-in for `kernel::alloc::flags`.
    pub mod flags {
        use super::Flags;

        /// Host stand-in for `GFP_KERNEL`, the flags of ordinary kernel allocations.
        pub const GFP_KERNEL: Flags = Flags(0);
    }

    /// Host stand-in for `kernel::alloc::KBox`, a kmalloc'ed box: a `Box`.
    pub struct KBox<T>(Box<T>);

    impl<T> KBox<T> {
        /// Moves `value` to the heap; never fails on the host (`Box` aborts instead).
        pub fn new(value: T, _flags: Flags) -> Result<Self, AllocError> {
            Ok(Self(Box::new(value)))
        }
    }

    impl<T> Deref for KBox<T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.0
        }
    }

    impl<T> DerefMut for KBox<T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.0
        }
    }
}

/// The whole TDISP library, by path. Items only the kernel users or only the suites need
/// are unused in a plain host build.
#[allow(dead_code, unused_imports)]
#[path = "../../../../../samples/devsec/tdisp"]
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

/// The whole SPDM library, by path, with the same allowances.
#[allow(dead_code, unused_imports)]
#[path = "../../../../../samples/devsec/spdm"]
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

/// The KUnit suites, by path.
#[cfg(test)]
#[path = "../../../../../samples/devsec/tdisp_test"]
mod suites {
    mod codec;
    mod common;
    mod doe;
    mod report;
    mod requester;
    mod responder;
}

/// The KUnit suites of the SPDM library, by path.
#[cfg(test)]
#[path = "../../../../../samples/devsec/spdm_test"]
mod spdm_suites {
    mod codec;
    mod common;
    mod requester;
    mod responder;
    mod session;
}

pub mod fuzz;
