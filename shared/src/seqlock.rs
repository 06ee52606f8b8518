//! A sequence lock over a few 64-bit words: one writer, many readers that never block it.
//!
//! Used where a reader needs a consistent multi-word snapshot of something another
//! thread rarely rewrites: a parameter's mapping (written by the control module, read by
//! the engine on the audio thread) and the host transport (written by the bridge on the
//! audio thread, read by the control worker). Readers never wait: [`SeqLock::read`] gives
//! up after a few attempts and returns `None`, and the caller keeps its previous snapshot.
//!
//! All-zero memory is a valid lock holding all-zero words (sequence 0 is "stable").
//! The words are atomics, so a torn read is never undefined behaviour; the sequence check
//! only decides whether a snapshot is consistent.

use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

/// A sequence lock guarding `W` words.
///
/// # Examples
/// ```
/// use trio::seqlock::SeqLock;
/// let lock = SeqLock::<2>::new();
/// lock.write([1, 2]);
/// assert_eq!(lock.read(), Some([1, 2]));
/// ```
#[repr(C)]
pub struct SeqLock<const W: usize> {
    /// Even: stable; odd: a write is in progress.
    seq: AtomicU32,
    _pad: u32,
    words: [AtomicU64; W],
}

/// How many times a reader retries before giving up for now.
const READ_ATTEMPTS: usize = 4;

impl<const W: usize> SeqLock<W> {
    /// An unlocked lock holding zeros.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self { seq: AtomicU32::new(0), _pad: 0, words: [const { AtomicU64::new(0) }; W] }
    }

    /// An unlocked lock holding zeros (loom atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self { seq: AtomicU32::new(0), _pad: 0, words: core::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// Publishes new words.
    ///
    /// One thread writes a given lock at a time (callers serialise writers: only the
    /// audio thread writes the transport, only the engine its held keys). Two concurrent
    /// writers cannot cause undefined behaviour (every word is an atomic) but could leave
    /// the sequence even over words from both writes.
    pub fn write(&self, words: [u64; W]) {
        // Relaxed: only this (single) writer modifies `seq`, so it reads its own last store.
        let seq = self.seq.load(Ordering::Relaxed);
        // Relaxed store, then a Release fence: the fence orders this odd store before
        // the word stores below for any reader whose Acquire fence observes a new word
        // (the classic seqlock writer; pairs with the reader's `fence(Acquire)`).
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, word) in self.words.iter().zip(words) {
            // Relaxed: ordered by the fence above and the Release store below.
            slot.store(word, Ordering::Relaxed);
        }
        // Release: a reader that Acquire-loads this even value sees every word above.
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Reads a consistent snapshot, or `None` if a write kept overlapping the read.
    /// Never blocks and never spins for long: safe on the audio thread.
    pub fn read(&self) -> Option<[u64; W]> {
        for _ in 0..READ_ATTEMPTS {
            // Acquire: pairs with the writer's final Release store, so the words of the
            // write that produced this even value are visible below.
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let mut out = [0u64; W];
            for (o, slot) in out.iter_mut().zip(&self.words) {
                // Relaxed: consistency is decided by the sequence re-check below.
                *o = slot.load(Ordering::Relaxed);
            }
            // Acquire fence: pairs with the writer's Release fence, so if any word above
            // came from a newer write, the re-load below sees that write's odd sequence.
            fence(Ordering::Acquire);
            // Relaxed: ordered after the word loads by the fence above.
            let after = self.seq.load(Ordering::Relaxed);
            if before == after {
                return Some(out);
            }
        }
        None
    }
}

/// A sequence counter guarding a region of atomics kept elsewhere: the shared block's
/// parameter definitions, which are far too many words for one [`SeqLock`].
///
/// The protocol is the seqlock's: the writer makes the counter odd, writes the region,
/// and makes it even again; a reader copies the region between two loads of the counter
/// and keeps the copy only if both loads saw the same even value. All-zero memory is a
/// stable counter.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use trio::seqlock::SeqCounter;
/// let counter = SeqCounter::new();
/// let region = [AtomicU64::new(0), AtomicU64::new(0)];
/// counter.write(|| {
///     region[0].store(7, Ordering::Relaxed);
///     region[1].store(7, Ordering::Relaxed);
/// });
/// let copy = counter.read(|| [region[0].load(Ordering::Relaxed), region[1].load(Ordering::Relaxed)]);
/// assert_eq!(copy, Some([7, 7]));
/// assert_eq!(counter.version(), 2);
/// ```
#[repr(C)]
pub struct SeqCounter {
    seq: AtomicU64,
}

impl SeqCounter {
    /// A stable counter at 0.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self { seq: AtomicU64::new(0) }
    }

    /// A stable counter at 0 (loom atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self { seq: AtomicU64::new(0) }
    }

    /// Runs `write`, which rewrites the guarded region with Relaxed atomic stores, inside
    /// the odd phase of the counter.
    ///
    /// One thread writes a given region at a time (the control worker writes the
    /// parameter definitions). Concurrent writers cannot cause undefined behaviour (the
    /// region is atomics) but readers could accept a mixed copy.
    pub fn write<R>(&self, write: impl FnOnce() -> R) -> R {
        // Relaxed: only the (single) writer modifies `seq`, so it reads its own last store.
        let seq = self.seq.load(Ordering::Relaxed);
        // Relaxed odd store, then a Release fence: orders the odd value before the region
        // stores for any reader whose Acquire fence observes one of them (pairs with the
        // reader's `fence(Acquire)`).
        self.seq.store(seq.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let result = write();
        // Release: a reader that Acquire-loads this even value sees every store above.
        self.seq.store((seq | 1).wrapping_add(1), Ordering::Release);
        result
    }

    /// Copies the region with `read` (Relaxed atomic loads) and returns the copy if no
    /// write overlapped it; `None` after a few overlapping attempts. Never blocks: safe on
    /// the audio thread, where the caller keeps the copy it had.
    pub fn read<R>(&self, mut read: impl FnMut() -> R) -> Option<R> {
        for _ in 0..READ_ATTEMPTS {
            // Acquire: pairs with the writer's final Release store, so the region as that
            // write left it is visible to `read`.
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let copy = read();
            // Acquire fence: pairs with the writer's Release fence, so if `read` saw any
            // store of a newer write, the re-load below sees that write's odd value.
            fence(Ordering::Acquire);
            // Relaxed: ordered after the region loads by the fence above.
            if self.seq.load(Ordering::Relaxed) == before {
                return Some(copy);
            }
        }
        None
    }

    /// The current counter: even while stable, bumped by 2 by each completed write. A
    /// reader that cached a copy compares this with the version it copied at.
    pub fn version(&self) -> u64 {
        // Acquire: pairs with the writer's final Release store (see `read`).
        self.seq.load(Ordering::Acquire)
    }
}

#[cfg(not(loom))]
impl Default for SeqCounter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
impl<const W: usize> Default for SeqLock<W> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn zeroed_is_stable_zero() {
        // SAFETY: SeqLock is atomics and a u32; all-zero is a valid value of each.
        let lock: SeqLock<3> = unsafe { core::mem::zeroed() };
        assert_eq!(lock.read(), Some([0, 0, 0]));
    }

    #[test]
    fn reader_never_sees_mixed_words() {
        let lock = SeqLock::<4>::new();
        let n = if cfg!(miri) { 200 } else { 200_000 };
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=n {
                    lock.write([i; 4]);
                }
            });
            let mut seen = 0;
            while seen < n {
                if let Some(w) = lock.read() {
                    assert!(w.iter().all(|&x| x == w[0]), "torn snapshot {w:?}");
                    seen = w[0];
                }
            }
        });
    }

    #[test]
    fn counter_readers_never_accept_a_mixed_region() {
        let counter = SeqCounter::new();
        let region: [AtomicU64; 5] = core::array::from_fn(|_| AtomicU64::new(0));
        let n = if cfg!(miri) { 200 } else { 100_000 };
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=n {
                    counter.write(|| region.iter().for_each(|w| w.store(i, Ordering::Relaxed)));
                }
            });
            let mut seen = 0;
            while seen < n {
                let copy = counter.read(|| region.iter().map(|w| w.load(Ordering::Relaxed)).collect::<Vec<_>>());
                if let Some(w) = copy {
                    assert!(w.iter().all(|&x| x == w[0]), "mixed copy {w:?}");
                    seen = w[0];
                }
            }
        });
        assert_eq!(counter.version(), 2 * n);
    }
}
