// SPDX-License-Identifier: GPL-2.0

//! A kernel raw spinlock.
//!
//! This module allows Rust code to use the kernel's `raw_spinlock_t`. Unlike `spinlock_t`, a raw
//! spinlock never sleeps, not even on PREEMPT_RT, so it may be taken where the caller already
//! holds another raw spinlock: in PCI configuration accessors (called under `pci_lock`), interrupt
//! controller callbacks and the like. Keep the critical sections short and allocation free.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)

use super::*;

/// Creates a [`RawSpinLockIrq`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_raw_spinlock_irq {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::sync::RawSpinLockIrq::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_raw_spinlock_irq;

/// A raw spinlock that keeps local interrupts disabled in the critical section.
///
/// Exposes the kernel's [`raw_spinlock_t`], locked with `raw_spin_lock_irq_disable()`: the guard
/// holds a reference on the local processor's interrupt disable count, so the lock can be taken
/// from any context, including hard interrupt context and with other raw spinlocks held.
///
/// # Examples
///
/// ```
/// use kernel::sync::{new_raw_spinlock_irq, RawSpinLockIrq};
///
/// #[pin_data]
/// struct Example {
///     #[pin]
///     regs: RawSpinLockIrq<[u32; 4]>,
/// }
///
/// let e = KBox::pin_init(
///     pin_init!(Example { regs <- new_raw_spinlock_irq!([0; 4]) }),
///     GFP_KERNEL,
/// )?;
/// e.regs.lock()[1] = 42;
/// assert_eq!(e.regs.lock()[1], 42);
/// # Ok::<(), Error>(())
/// ```
///
/// [`raw_spinlock_t`]: srctree/include/linux/spinlock_types_raw.h
pub type RawSpinLockIrq<T> = Lock<T, RawSpinLockIrqBackend>;

/// A kernel `raw_spinlock_t` lock backend that disables local interrupts while held.
pub struct RawSpinLockIrqBackend;

/// A [`Guard`] acquired from locking a [`RawSpinLockIrq`].
pub type RawSpinLockIrqGuard<'a, T> = Guard<'a, T, RawSpinLockIrqBackend>;

// SAFETY: The underlying kernel `raw_spinlock_t` object ensures mutual exclusion. `relock` uses
// the default implementation that always calls the same locking method.
unsafe impl Backend for RawSpinLockIrqBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = ();

    #[inline]
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::raw_spin_lock_init_with_key(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe { bindings::raw_spin_lock_irq_disable(ptr) }
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller is the owner of the spinlock.
        unsafe { bindings::raw_spin_unlock_irq_enable(ptr) }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: The `ptr` pointer is guaranteed to be valid and initialized before use.
        let result = unsafe { bindings::raw_spin_trylock_irq_disable(ptr) };

        if result != 0 {
            Some(())
        } else {
            None
        }
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The `ptr` pointer is guaranteed to be valid and initialized before use.
        unsafe { bindings::raw_spin_assert_is_held(ptr) }
    }
}
