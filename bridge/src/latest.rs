//! [`Latest`]: a value that hosts read on nearly every call and that changes rarely.

use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A value read from any thread with no lock and no atomic read-modify-write, and replaced
/// rarely: the parameter definitions and the tables built from them, which hosts read on
/// almost every call (JUCE asks for a MIDI controller's parameter 2,080 times per instance
/// at load, pedalboard for 1,001 value texts per parameter). A lock and a reference count
/// cost those calls several atomic read-modify-writes each.
///
/// Every value set stays allocated until the cell is dropped, so a reference handed out
/// stays valid for as long as the cell is borrowed. It is meant for values replaced a
/// bounded number of times: the definitions change only when a reload changes what the
/// host sees, a few kilobytes each time.
pub(crate) struct Latest<T> {
    current: AtomicPtr<T>,
    /// Every value set (from `Box::into_raw`), oldest first; the last is `current`. Freed
    /// only by `drop`. Also serialises writers.
    all: Mutex<Vec<*mut T>>,
}

impl<T> Latest<T> {
    pub(crate) fn new(value: T) -> Self {
        let first = Box::into_raw(Box::new(value));
        Latest { current: AtomicPtr::new(first), all: Mutex::new(vec![first]) }
    }

    /// The value set last (or one being set at this moment).
    pub(crate) fn get(&self) -> &T {
        // Acquire: pairs with the Release in `update`, so the value is seen whole.
        let ptr = self.current.load(Ordering::Acquire);
        // SAFETY: `ptr` is one of `all`'s values, which are freed only when `self` is
        // dropped, and never written after they are published.
        unsafe { &*ptr }
    }

    /// Runs `update` with the current value, alone among writers; the value it returns,
    /// if any, becomes the current one. Returns the current value afterwards.
    pub(crate) fn update(&self, update: impl FnOnce(&T) -> Option<T>) -> &T {
        let mut all = self.all.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Under the lock no other writer replaces it.
        if let Some(fresh) = update(self.get()) {
            let fresh = Box::into_raw(Box::new(fresh));
            all.push(fresh);
            // Release: see `get`.
            self.current.store(fresh, Ordering::Release);
        }
        self.get()
    }
}

impl<T> Drop for Latest<T> {
    fn drop(&mut self) {
        let all = self.all.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ptr in all.drain(..) {
            // SAFETY: from `Box::into_raw`, freed once, here; no reference to it outlives
            // the `&self` borrows that `drop`'s `&mut self` excludes.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

// SAFETY: readers share `&T` across threads (needs `T: Sync`); values are created on one
// thread and dropped on another (needs `T: Send`).
unsafe impl<T: Send + Sync> Sync for Latest<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Latest<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_outlive_replacements_and_readers_see_the_last_value() {
        let cell = Latest::new(String::from("first"));
        let first = cell.get();
        let second = cell.update(|v| Some(format!("{v} then second")));
        assert_eq!(second, "first then second");
        // Unchanged: no new value, the same allocation.
        let same = cell.update(|_| None);
        assert!(std::ptr::eq(same, second));
        // The first reference still reads its value (Miri checks it is not freed).
        assert_eq!(first, "first");
        assert_eq!(cell.get(), "first then second");
    }

    #[test]
    fn concurrent_readers_see_whole_values_while_a_writer_replaces_them() {
        let cell = Latest::new(vec![0u64; 64]);
        let rounds = if cfg!(miri) { 20 } else { 2_000 };
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut last = 0;
                    for _ in 0..rounds {
                        let v = cell.get();
                        // Every element of one value is the same, and values only grow.
                        assert!(v.iter().all(|&x| x == v[0]), "a torn value: {v:?}");
                        assert!(v[0] >= last);
                        last = v[0];
                    }
                });
            }
            for n in 1..=rounds as u64 / 10 {
                cell.update(|_| Some(vec![n; 64]));
            }
        });
        assert_eq!(cell.get()[0], rounds as u64 / 10);
    }
}
