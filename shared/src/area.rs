//! Plugin-defined areas: a plugin's own shared data in the shared block.
//!
//! A plugin whose engine and control module share more than parameters and events (an
//! arpeggiator's held keys and its sequence position, a spectrum for an editor, a sample
//! loaded by the control module) declares one `#[repr(C)]` type in a small crate that both
//! depend on, with [`area!`](crate::area!):
//!
//! ```
//! use std::sync::atomic::{AtomicU32, AtomicU64};
//! use trio::seqlock::SeqLock;
//!
//! trio::area! {
//!     /// What the engine tells the control module about the keys.
//!     pub struct KeysArea {
//!         /// Keys held right now, written by the engine.
//!         pub held: AtomicU32,
//!         /// The last key's note and velocity, consistently.
//!         pub last: SeqLock<2>,
//!         /// A histogram of notes played.
//!         pub counts: [AtomicU64; 128],
//!     }
//! }
//! # use trio::area::AreaField;
//! assert_ne!(KeysArea::HASH, 0);
//! ```
//!
//! The area lives in the instance's shared-memory segment right after the framework's
//! block; the engine and the control module reach it through their contexts
//! (`area()`). Every field must be an [`AreaField`]: an atomic, a [`SeqLock`], a
//! [`SeqCounter`], an array of those, or another area type. That makes the area valid
//! when all its bytes are zero (a new segment) and safe to share between threads and
//! libraries. The type's layout hash (names, sizes and offsets of every field, folded
//! recursively) goes into both modules' descriptors; the bridge refuses an engine and a
//! control module built with different areas, and a reload that would change the area.
//! A plugin without an area uses `()`.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64};

use atomic_float::{AtomicF32, AtomicF64};

use crate::abi::Event;
use crate::layout::{FNV_OFFSET, fold, fold_str};
use crate::ring::SpscRing;
use crate::seqlock::{SeqCounter, SeqLock};

/// A type that may be part of a plugin area.
///
/// # Safety
/// Implementors are valid when every byte is zero, are `Sync` through atomic operations
/// only (no locks, no pointers, no heap), have a layout fixed by `#[repr(C)]` or by being
/// a primitive, and give a `HASH` that changes whenever their layout does. Use
/// [`area!`](crate::area!) instead of implementing it by hand.
pub unsafe trait AreaField: Sync + Send + 'static {
    /// A fingerprint of the type's layout.
    const HASH: u64;
}

/// A plugin area: an [`AreaField`] used as the whole area. Implemented for every
/// [`AreaField`]; `()` is "no area".
pub trait Area: AreaField {}

impl<T: AreaField> Area for T {}

/// The hash of a primitive: its name and size.
const fn primitive(name: &str, size: usize) -> u64 {
    fold(fold_str(FNV_OFFSET, name), size as u64)
}

macro_rules! primitive_field {
    ($($t:ty),*) => {$(
        // SAFETY: an atomic primitive: all-zero is a valid value, it is `Sync` through
        // atomic operations, and its layout is that of the integer.
        unsafe impl AreaField for $t {
            const HASH: u64 = primitive(stringify!($t), size_of::<$t>());
        }
    )*};
}

primitive_field!(AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicI32, AtomicI64, AtomicF32, AtomicF64);

// SAFETY: zero-sized; nothing to share.
unsafe impl AreaField for () {
    const HASH: u64 = 0;
}

// SAFETY: an array of area fields is contiguous fields: all-zero valid, `Sync` as its
// elements, layout fixed by the element's.
unsafe impl<T: AreaField, const N: usize> AreaField for [T; N] {
    const HASH: u64 = fold(fold(fold_str(T::HASH, "[]"), N as u64), size_of::<[T; N]>() as u64);
}

// SAFETY: a `#[repr(C)]` sequence counter and words, all atomics; all-zero is a stable
// lock holding zeros.
unsafe impl<const W: usize> AreaField for SeqLock<W> {
    const HASH: u64 = fold(primitive("SeqLock", size_of::<SeqLock<W>>()), W as u64);
}

// SAFETY: a `#[repr(C)]` atomic counter; all-zero is a stable counter.
unsafe impl AreaField for SeqCounter {
    const HASH: u64 = primitive("SeqCounter", size_of::<SeqCounter>());
}

// SAFETY: the ring is `#[repr(C)]`, all-zero is an empty ring (documented in `ring`),
// and `Event` is plain data valid when zeroed. Its slots are reached only through the
// ring's producer and consumer, whose single-producer/single-consumer contract is the
// user's (the SDK offers them through safe wrappers only).
unsafe impl<const N: usize> AreaField for SpscRing<Event, N> {
    const HASH: u64 = fold(primitive("SpscRing<Event>", size_of::<SpscRing<Event, N>>()), N as u64);
}

/// Starts the hash of an area struct (used by [`area!`](crate::area!)).
#[doc(hidden)]
pub const fn __hash_struct(name: &str, size: usize, align: usize) -> u64 {
    fold(fold(fold_str(FNV_OFFSET, name), size as u64), align as u64)
}

/// Folds one field into an area struct's hash (used by [`area!`](crate::area!)).
#[doc(hidden)]
pub const fn __hash_field(h: u64, name: &str, offset: usize, field_hash: u64) -> u64 {
    fold(fold(fold_str(h, name), offset as u64), field_hash)
}

/// Declares a plugin area type: a `#[repr(C)]` struct whose fields are all
/// [`AreaField`]s, with its layout hash. See the [module docs](mod@crate::area).
///
/// Methods go in an ordinary `impl` block beside it.
#[macro_export]
macro_rules! area {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty, )*
        }

        // SAFETY: `#[repr(C)]`, and every field is an `AreaField` (the `HASH` below names
        // `<$ty as AreaField>::HASH`, which does not compile otherwise), so the struct is
        // valid all-zero, `Sync` through atomics, and its hash covers every field's name,
        // offset and own layout.
        unsafe impl $crate::area::AreaField for $name {
            const HASH: u64 = {
                #[allow(unused_mut)]
                let mut h = $crate::area::__hash_struct(
                    stringify!($name),
                    ::core::mem::size_of::<$name>(),
                    ::core::mem::align_of::<$name>(),
                );
                $(
                    h = $crate::area::__hash_field(
                        h,
                        stringify!($field),
                        ::core::mem::offset_of!($name, $field),
                        <$ty as $crate::area::AreaField>::HASH,
                    );
                )*
                h
            };
        }
    };
}

/// A reference to the area of type `A` in the segment starting at `base`.
///
/// # Safety
/// `base` points to a block whose header passed `check_header` for `A`'s layout, with
/// provenance over the whole segment (block and area), and the segment outlives `'a`.
pub(crate) unsafe fn area_at<'a, A: Area>(base: *const crate::block::SharedBlock) -> &'a A {
    // SAFETY: the caller guarantees the segment holds `AREA_OFFSET + size_of::<A>()`
    // bytes, page-aligned at the start, so the area is aligned for `A` (checked: align
    // <= 4096); it was zero-filled and only ever written through `A`'s atomics, so it is
    // a valid `A` (an `AreaField` is valid all-zero).
    unsafe { &*base.cast::<u8>().add(crate::block::AREA_OFFSET).cast::<A>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::area! {
        /// A test area.
        pub struct Small {
            pub a: AtomicU32,
            pub b: [AtomicU64; 4],
        }
    }

    mod other {
        use super::*;
        crate::area! {
            /// Same name, another field name.
            pub struct Small {
                pub a: AtomicU32,
                pub c: [AtomicU64; 4],
            }
        }
    }

    crate::area! {
        /// Nested.
        pub struct Outer {
            pub inner: Small,
            pub lock: SeqLock<3>,
        }
    }

    #[test]
    fn hashes_differ_with_names_sizes_and_nesting() {
        assert_ne!(Small::HASH, other::Small::HASH);
        assert_ne!(<[AtomicU64; 4]>::HASH, <[AtomicU64; 5]>::HASH);
        assert_ne!(<[AtomicU64; 4]>::HASH, <[AtomicU32; 4]>::HASH);
        assert_ne!(Outer::HASH, Small::HASH);
        assert_eq!(<()>::HASH, 0);
        let layout = crate::abi::AreaLayout::of::<Outer>();
        assert_eq!(layout.size as usize, size_of::<Outer>());
    }
}
