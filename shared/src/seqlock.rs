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
/// use shared::seqlock::SeqLock;
/// let lock = SeqLock::<2>::new();
/// // SAFETY: this is the only writer of `lock`.
/// unsafe { lock.write([1, 2]) };
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
    /// # Safety
    /// At most one thread writes a given lock at a time (callers serialise writers, e.g.
    /// only the control worker writes mappings, only the audio thread writes transport).
    /// Two concurrent writers could leave the sequence even over mixed words.
    pub unsafe fn write(&self, words: [u64; W]) {
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
                    // SAFETY: this thread is the only writer.
                    unsafe { lock.write([i; 4]) };
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
}
