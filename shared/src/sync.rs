//! The one place where `shared` imports its synchronisation primitives.
//!
//! Under `--cfg loom` every atomic and cell comes from `loom`, so the same protocol code
//! (the SPSC ring, the parameter-mapping seqlock) is model-checked by the tests in
//! `shared/tests/loom.rs`. In normal builds they are the `core` types, whose layout is
//! the plain integer layout the shared block relies on.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// An `UnsafeCell` with loom's closure-based access API, so ring code is identical under
/// loom (which tracks every access) and in normal builds (where this is a zero-cost
/// `#[repr(transparent)]` wrapper around `core::cell::UnsafeCell`).
#[cfg(not(loom))]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[allow(dead_code)]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
