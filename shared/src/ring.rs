//! A bounded, wait-free single-producer single-consumer (SPSC) ring that can live in
//! shared memory.
//!
//! [`SpscRing`] is a plain `#[repr(C)]` value: two indices and an inline array of slots,
//! no pointers and no heap allocation. It can therefore be placed inside a block of memory
//! that several libraries (or processes) map, and each side talks to it through a handle:
//! a [`Producer`] that [pushes](Producer::push) values and a [`Consumer`] that
//! [pops](Consumer::pop) them. The API follows the [`rtrb`](https://docs.rs/rtrb) crate.
//!
//! # Layout
//!
//! ```text
//! offset 0          head: u32   (consumer index), padded to a 64-byte cache line
//! offset 64         tail: u32   (producer index), padded to a 64-byte cache line
//! offset 128        slots: [T; N]
//! ```
//!
//! The indices are free-running `u32` counters: they are never reduced modulo `N`; slot
//! `i % N` holds element `i`, and `tail - head` (wrapping) is the number of queued
//! elements. `N` must be a power of two no larger than 2³¹, which is checked at compile
//! time, so the counters can wrap past `u32::MAX` without a discontinuity.
//!
//! **All-zero memory is a valid empty ring**: zero indices mean "empty", and the slot
//! contents of an empty ring are never read. A ring inside a zero-filled shared-memory
//! block is therefore ready to use without calling [`SpscRing::new`].
//!
//! For the layout to mean the same thing to every library mapping the block, `T` should
//! itself be `#[repr(C)]` (or a primitive) and all of them must agree on `T` and `N`.
//!
//! # Memory ordering
//!
//! * [`Producer::push`] writes the slot, then publishes it with a `Release` store of
//!   `tail`.
//! * [`Consumer::pop`] loads `tail` with `Acquire` (so the slot write is visible), reads
//!   the slot, then frees it with a `Release` store of `head`.
//! * The producer loads `head` with `Acquire` before reusing a slot, so the consumer's read
//!   of the old value happens before the slot is overwritten.
//!
//! Each handle caches the other side's index and only reloads it when the cached value
//! says the ring is full (producer) or empty (consumer), so the hot path touches the other
//! side's cache line only when it has to.
//!
//! # Robustness
//!
//! The indices live in memory that another library can write. If they ever claim more
//! than `N` queued elements (`tail - head > N`, wrapping), the ring is corrupt: the
//! producer then sees it as full and the consumer as empty. No index ever reaches outside
//! the slot array (every access is masked with `N - 1`), and nothing panics.
//!
//! An index that is wrong but *in range* cannot be detected: the consumer may then return
//! a stale or never-written slot. In a zero-filled shared block that is a zero or an old
//! value, so `T` should be plain data for which every bit pattern is valid (integers,
//! floats and `#[repr(C)]` structs of them).
//!
//! # Examples
//!
//! ```
//! use trio::ring::{PopError, PushError, SpscRing};
//!
//! let ring = SpscRing::<u32, 2>::new();
//! // SAFETY: these are the only producer and the only consumer of `ring`.
//! let (mut producer, mut consumer) = unsafe { (ring.producer(), ring.consumer()) };
//!
//! assert_eq!(producer.push(10), Ok(()));
//! assert_eq!(producer.push(20), Ok(()));
//! assert_eq!(producer.push(30), Err(PushError::Full(30)));
//!
//! assert_eq!(consumer.pop(), Ok(10));
//! assert_eq!(consumer.pop(), Ok(20));
//! assert_eq!(consumer.pop(), Err(PopError::Empty));
//! ```
//!
//! Moving the handles to two threads:
//!
//! ```
//! use trio::ring::SpscRing;
//!
//! let ring = SpscRing::<u64, 16>::new();
//! // SAFETY: these are the only producer and the only consumer of `ring`.
//! let (mut producer, mut consumer) = unsafe { (ring.producer(), ring.consumer()) };
//!
//! std::thread::scope(|s| {
//!     s.spawn(move || {
//!         for i in 0..100 {
//!             while producer.push(i).is_err() {
//!                 std::hint::spin_loop();
//!             }
//!         }
//!     });
//!     s.spawn(move || {
//!         for i in 0..100 {
//!             loop {
//!                 if let Ok(value) = consumer.pop() {
//!                     assert_eq!(value, i);
//!                     break;
//!                 }
//!                 std::hint::spin_loop();
//!             }
//!         }
//!     });
//! });
//! ```

use core::cell::Cell;
use core::fmt;
use core::mem::MaybeUninit;

use crate::sync::{AtomicU32, Ordering, UnsafeCell};

/// Aligns (and so pads) its contents to a 64-byte cache line, so the consumer's and the
/// producer's index never share a line.
#[repr(C, align(64))]
struct CachePadded<T>(T);

/// A bounded single-producer single-consumer ring of `N` values of type `T`.
///
/// See the [module documentation](self) for the layout, the memory-ordering protocol and
/// what happens when the indices are corrupted.
///
/// # Zeroed memory
///
/// All-zero bytes are a valid, empty ring (outside loom builds), so a ring that is part of
/// a zero-filled shared-memory block needs no initialisation:
///
/// ```
/// use trio::ring::SpscRing;
///
/// let block = Box::<SpscRing<u32, 8>>::new_zeroed();
/// // SAFETY: all-zero bytes are a valid `SpscRing`: zero indices and unread slots.
/// let ring = unsafe { block.assume_init() };
/// assert!(ring.is_empty());
/// ```
///
/// # Examples
///
/// A ring can be a `static` (or part of one), because [`SpscRing::new`] is `const`:
///
/// ```
/// use trio::ring::SpscRing;
///
/// static RING: SpscRing<f32, 8> = SpscRing::new();
///
/// // SAFETY: nothing else creates a producer or consumer for `RING`.
/// let (mut producer, mut consumer) = unsafe { (RING.producer(), RING.consumer()) };
/// producer.push(0.5).unwrap();
/// assert_eq!(consumer.pop(), Ok(0.5));
/// ```
///
/// `N` must be a power of two (and at most 2³¹); anything else fails to compile:
///
/// ```compile_fail
/// use trio::ring::SpscRing;
///
/// let ring = SpscRing::<u8, 3>::new();
/// ```
#[repr(C)]
pub struct SpscRing<T: Copy, const N: usize> {
    /// Index of the next element to pop. Written only by the consumer.
    head: CachePadded<AtomicU32>,
    /// Index of the next slot to push into. Written only by the producer.
    tail: CachePadded<AtomicU32>,
    /// Element `i` lives in slot `i % N`. Slots `head..tail` (wrapping) hold values that
    /// the producer has published and the consumer has not yet popped.
    slots: [UnsafeCell<MaybeUninit<T>>; N],
}

// SAFETY: the slots are only reached through a `Producer` or a `Consumer`, and the
// contract of `SpscRing::producer` / `SpscRing::consumer` allows at most one of each.
// The index protocol gives every slot a single owner at a time: the producer writes only
// slots outside `head..tail` and publishes them with a Release store of `tail`; the
// consumer reads only slots inside `head..tail` (after an Acquire load of `tail`) and
// hands them back with a Release store of `head`, which the producer Acquire-loads before
// reusing a slot. So no slot is accessed from two threads without a happens-before edge.
// Values cross threads by copy, hence `T: Send`.
unsafe impl<T: Copy + Send, const N: usize> Sync for SpscRing<T, N> {}

impl<T: Copy, const N: usize> SpscRing<T, N> {
    /// The number of slots, `N`.
    ///
    /// Evaluating this constant (which every constructor and handle does) checks at compile
    /// time that `N` is a power of two no larger than 2³¹.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// assert_eq!(SpscRing::<u8, 64>::CAPACITY, 64);
    /// ```
    pub const CAPACITY: usize = {
        assert!(N.is_power_of_two(), "SpscRing: N must be a power of two");
        assert!(N <= 1 << 31, "SpscRing: N must be at most 2^31");
        N
    };

    /// `N` as a `u32`, for comparisons with index distances.
    const N32: u32 = Self::CAPACITY as u32;

    /// Reduces a free-running index to a slot number.
    const MASK: u32 = Self::N32 - 1;

    /// Creates an empty ring.
    ///
    /// The result is the same as all-zero memory, which is also a valid empty ring.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// assert_eq!(ring.len(), 0);
    /// assert_eq!(ring.capacity(), 4);
    /// ```
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        // Naming the constant makes the compiler check `N` for this instantiation.
        let _ = Self::CAPACITY;
        Self {
            head: CachePadded(AtomicU32::new(0)),
            tail: CachePadded(AtomicU32::new(0)),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }

    /// Creates an empty ring (the loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        // Naming the constant makes the compiler check `N` for this instantiation.
        let _ = Self::CAPACITY;
        Self {
            head: CachePadded(AtomicU32::new(0)),
            tail: CachePadded(AtomicU32::new(0)),
            slots: core::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        }
    }

    /// Returns the number of slots, `N`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64, 1024>::new();
    /// assert_eq!(ring.capacity(), 1024);
    /// ```
    #[inline]
    #[must_use]
    pub const fn capacity(&self) -> usize {
        Self::CAPACITY
    }

    /// Returns the number of queued elements, for telemetry.
    ///
    /// The value is approximate: both sides may move while it is computed. It is never
    /// more than [`capacity`](Self::capacity); a corrupt ring reports a full one.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// // SAFETY: this is the only producer of `ring`.
    /// let mut producer = unsafe { ring.producer() };
    /// producer.push(1).unwrap();
    /// producer.push(2).unwrap();
    /// assert_eq!(ring.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        // Acquire: pairs with the consumer's Release store of `head`, which it made after
        // Acquire-loading a `tail` no smaller than that `head`; so the `tail` load below
        // cannot return an older `tail` than that one, and the distance is not negative.
        let head = self.head.0.load(Ordering::Acquire);
        // Relaxed: telemetry only; no slot is read on the strength of this value.
        let tail = self.tail.0.load(Ordering::Relaxed);
        tail.wrapping_sub(head).min(Self::N32) as usize
    }

    /// Returns `true` if [`len`](Self::len) is zero (with the same caveat: approximate).
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// assert!(SpscRing::<u32, 4>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Creates the producer handle.
    ///
    /// The handle continues from the ring's current `tail`, so a producer can be dropped
    /// and recreated (for example when a library is reloaded) without losing elements.
    ///
    /// # Safety
    ///
    /// At most one [`Producer`] may exist for a ring at any time, across all threads and
    /// all processes or libraries that map the memory holding it. When one producer is
    /// replaced by another, dropping the old one must happen before creating the new one
    /// (for example, by joining its thread or handing over through a lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// {
    ///     // SAFETY: this is the only producer of `ring` while it lives.
    ///     let mut producer = unsafe { ring.producer() };
    ///     producer.push(1).unwrap();
    /// }
    /// // SAFETY: the previous producer has been dropped.
    /// let mut producer = unsafe { ring.producer() };
    /// assert_eq!(producer.free_slots(), 3);
    /// ```
    #[must_use]
    pub unsafe fn producer(&self) -> Producer<'_, T, N> {
        Producer {
            ring: self,
            // Relaxed: only producers store `tail`, and the caller guarantees that the
            // previous producer's last store happened before this call, so coherence
            // makes that store visible here.
            tail: self.tail.0.load(Ordering::Relaxed),
            // Acquire: pairs with the consumer's Release store of `head` in `pop`, because
            // `push` may trust this cached value to reuse slots the consumer has read.
            cached_head: Cell::new(self.head.0.load(Ordering::Acquire)),
        }
    }

    /// Creates the consumer handle.
    ///
    /// The handle continues from the ring's current `head`, so a consumer can be dropped
    /// and recreated without losing elements.
    ///
    /// # Safety
    ///
    /// At most one [`Consumer`] may exist for a ring at any time, across all threads and
    /// all processes or libraries that map the memory holding it. When one consumer is
    /// replaced by another, dropping the old one must happen before creating the new one.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// // SAFETY: these are the only producer and the only consumer of `ring`.
    /// let (mut producer, mut consumer) = unsafe { (ring.producer(), ring.consumer()) };
    /// producer.push(7).unwrap();
    /// assert_eq!(consumer.pop(), Ok(7));
    /// ```
    #[must_use]
    pub unsafe fn consumer(&self) -> Consumer<'_, T, N> {
        Consumer {
            ring: self,
            // Relaxed: only consumers store `head`, and the caller guarantees that the
            // previous consumer's last store happened before this call, so coherence
            // makes that store visible here.
            head: self.head.0.load(Ordering::Relaxed),
            // Acquire: pairs with the producer's Release store of `tail` in `push`, because
            // `pop` may trust this cached value to read slots the producer has written.
            cached_tail: Cell::new(self.tail.0.load(Ordering::Acquire)),
        }
    }

    /// The slot that holds element `index`. Always in bounds: the index is masked.
    #[inline(always)]
    fn slot(&self, index: u32) -> &UnsafeCell<MaybeUninit<T>> {
        &self.slots[(index & Self::MASK) as usize]
    }
}

impl<T: Copy, const N: usize> Default for SpscRing<T, N> {
    /// Same as [`SpscRing::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> fmt::Debug for SpscRing<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscRing").field("capacity", &N).field("len", &self.len()).finish_non_exhaustive()
    }
}

/// The writing side of an [`SpscRing`], created by [`SpscRing::producer`].
///
/// It can be moved to another thread ([`Send`]) but not shared between threads.
///
/// # Examples
///
/// ```
/// use trio::ring::SpscRing;
///
/// let ring = SpscRing::<u32, 2>::new();
/// // SAFETY: this is the only producer of `ring`.
/// let mut producer = unsafe { ring.producer() };
/// assert!(producer.push(1).is_ok());
/// assert!(producer.push(2).is_ok());
/// assert!(producer.push(3).is_err());
/// ```
pub struct Producer<'a, T: Copy, const N: usize> {
    ring: &'a SpscRing<T, N>,
    /// Our own index. Only this handle writes `ring.tail`, so the local copy is the truth
    /// (and a foreign write to `ring.tail` is overwritten by the next push).
    tail: u32,
    /// The consumer's `head` as last loaded; the real one can only be further ahead.
    cached_head: Cell<u32>,
}

impl<T: Copy, const N: usize> Producer<'_, T, N> {
    /// Appends `value` to the ring.
    ///
    /// Wait-free: never blocks, never allocates.
    ///
    /// # Errors
    ///
    /// If the ring is full, returns [`PushError::Full`] with `value`. A corrupt ring
    /// (indices further apart than the capacity) also reports `Full`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::{PushError, SpscRing};
    ///
    /// let ring = SpscRing::<u32, 1>::new();
    /// // SAFETY: this is the only producer of `ring`.
    /// let mut producer = unsafe { ring.producer() };
    /// assert_eq!(producer.push(10), Ok(()));
    /// assert_eq!(producer.push(20), Err(PushError::Full(20)));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        let tail = self.tail;
        if tail.wrapping_sub(self.cached_head.get()) >= SpscRing::<T, N>::N32 {
            // Acquire: pairs with the consumer's Release store of `head` in `pop`, so the
            // consumer's read of the slot we are about to overwrite happens before our write.
            let head = self.ring.head.0.load(Ordering::Acquire);
            self.cached_head.set(head);
            if tail.wrapping_sub(head) >= SpscRing::<T, N>::N32 {
                return Err(PushError::Full(value));
            }
        }
        self.ring.slot(tail).with_mut(|slot| {
            // SAFETY: slot `tail % N` is free: `tail - head < N` was checked above against a
            // `head` loaded with Acquire, so the consumer has finished reading it, and it will
            // not read it again until the Release store of `tail` below. We are the only
            // producer (contract of `SpscRing::producer`), so nobody else writes it. The
            // pointer comes from a live `UnsafeCell` and is aligned.
            unsafe { slot.write(MaybeUninit::new(value)) };
        });
        self.tail = tail.wrapping_add(1);
        // Release: pairs with the consumer's Acquire load of `tail` in `pop`/`peek`, so the
        // slot write above is visible before the consumer reads the slot.
        self.ring.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Returns the number of slots free for pushing.
    ///
    /// The consumer may free more slots at any time, so this is a lower bound. A corrupt
    /// ring reports 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// // SAFETY: this is the only producer of `ring`.
    /// let mut producer = unsafe { ring.producer() };
    /// assert_eq!(producer.free_slots(), 4);
    /// producer.push(1).unwrap();
    /// assert_eq!(producer.free_slots(), 3);
    /// ```
    #[must_use]
    pub fn free_slots(&self) -> usize {
        // Acquire: pairs with the consumer's Release store of `head` in `pop`; the value goes
        // into the cache that `push` trusts to reuse slots.
        let head = self.ring.head.0.load(Ordering::Acquire);
        self.cached_head.set(head);
        let used = self.tail.wrapping_sub(head);
        SpscRing::<T, N>::N32.saturating_sub(used) as usize
    }

    /// Returns the ring this handle writes to.
    #[must_use]
    pub fn ring(&self) -> &SpscRing<T, N> {
        self.ring
    }
}

impl<T: Copy, const N: usize> fmt::Debug for Producer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &N)
            .field("tail", &self.tail)
            .field("cached_head", &self.cached_head.get())
            .finish_non_exhaustive()
    }
}

/// The reading side of an [`SpscRing`], created by [`SpscRing::consumer`].
///
/// It can be moved to another thread ([`Send`]) but not shared between threads.
///
/// # Examples
///
/// ```
/// use trio::ring::SpscRing;
///
/// let ring = SpscRing::<u32, 4>::new();
/// // SAFETY: these are the only producer and the only consumer of `ring`.
/// let (mut producer, mut consumer) = unsafe { (ring.producer(), ring.consumer()) };
/// producer.push(1).unwrap();
/// producer.push(2).unwrap();
/// assert_eq!(consumer.len(), 2);
/// assert_eq!(consumer.pop(), Ok(1));
/// assert_eq!(consumer.pop(), Ok(2));
/// assert!(consumer.is_empty());
/// ```
pub struct Consumer<'a, T: Copy, const N: usize> {
    ring: &'a SpscRing<T, N>,
    /// Our own index. Only this handle writes `ring.head`, so the local copy is the truth
    /// (and a foreign write to `ring.head` is overwritten by the next pop).
    head: u32,
    /// The producer's `tail` as last loaded; the real one can only be further ahead.
    cached_tail: Cell<u32>,
}

impl<T: Copy, const N: usize> Consumer<'_, T, N> {
    /// Returns `true` if slot `head % N` holds a published element, reloading `tail` only
    /// when the cached value says the ring is empty (or corrupt).
    #[inline(always)]
    fn front_ready(&self) -> bool {
        // `d - 1 < N` (wrapping) is `1 <= d <= N`: non-empty and not corrupt.
        let n = SpscRing::<T, N>::N32;
        if self.cached_tail.get().wrapping_sub(self.head).wrapping_sub(1) < n {
            return true;
        }
        // Acquire: pairs with the producer's Release store of `tail` in `push`, so the slot
        // writes before that store are visible to the slot read that follows.
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        self.cached_tail.set(tail);
        tail.wrapping_sub(self.head).wrapping_sub(1) < n
    }

    /// Copies the element at slot `head % N`. Only called after `front_ready` returned true.
    #[inline(always)]
    fn read_front(&self) -> T {
        self.ring.slot(self.head).with(|slot| {
            // SAFETY: slot `head % N` holds a published element: `front_ready` checked
            // `1 <= tail - head <= N` against a `tail` loaded with Acquire, so the producer's
            // write of this slot happened before this read, and the producer will not write
            // it again until our Release store of a larger `head`. We are the only consumer
            // (contract of `SpscRing::consumer`). The pointer comes from a live `UnsafeCell`.
            unsafe { (*slot).assume_init() }
        })
    }

    /// Removes and returns the oldest element.
    ///
    /// Wait-free: never blocks, never allocates.
    ///
    /// # Errors
    ///
    /// If the ring is empty, returns [`PopError::Empty`]. A corrupt ring (indices further
    /// apart than the capacity) also reports `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::{PopError, SpscRing};
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// // SAFETY: these are the only producer and the only consumer of `ring`.
    /// let (mut producer, mut consumer) = unsafe { (ring.producer(), ring.consumer()) };
    /// assert_eq!(consumer.pop(), Err(PopError::Empty));
    /// producer.push(10).unwrap();
    /// assert_eq!(consumer.pop(), Ok(10));
    /// // For an `Option`, use `.ok()`:
    /// assert_eq!(consumer.pop().ok(), None);
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopError> {
        if !self.front_ready() {
            return Err(PopError::Empty);
        }
        let value = self.read_front();
        self.head = self.head.wrapping_add(1);
        // Release: pairs with the producer's Acquire load of `head` in `push`, so our read of
        // the slot above happens before the producer overwrites it.
        self.ring.head.0.store(self.head, Ordering::Release);
        Ok(value)
    }

    /// Returns a copy of the oldest element without removing it, or `None` if the ring is
    /// empty (or corrupt).
    ///
    /// Useful to leave an element in the ring until it is due: the real-time engine peeks
    /// at the next event and pops it only if it falls inside the current block.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64, 8>::new();
    /// // SAFETY: these are the only producer and the only consumer of `ring`.
    /// let (mut producer, mut consumer) = unsafe { (ring.producer(), ring.consumer()) };
    /// for time in [10, 200, 900] {
    ///     producer.push(time).unwrap();
    /// }
    /// let block_end = 512;
    /// let mut handled = Vec::new();
    /// while let Some(time) = consumer.peek() {
    ///     if time >= block_end {
    ///         break; // stays in the ring for a later block
    ///     }
    ///     handled.push(consumer.pop().unwrap());
    /// }
    /// assert_eq!(handled, [10, 200]);
    /// assert_eq!(consumer.peek(), Some(900));
    /// ```
    #[inline]
    #[must_use]
    pub fn peek(&self) -> Option<T> {
        if self.front_ready() { Some(self.read_front()) } else { None }
    }

    /// Returns the number of elements ready to pop.
    ///
    /// The producer may push more at any time, so this is a lower bound. A corrupt ring
    /// reports 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// // SAFETY: these are the only producer and the only consumer of `ring`.
    /// let (mut producer, consumer) = unsafe { (ring.producer(), ring.consumer()) };
    /// assert_eq!(consumer.len(), 0);
    /// producer.push(1).unwrap();
    /// assert_eq!(consumer.len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        // Acquire: pairs with the producer's Release store of `tail` in `push`; the value
        // goes into the cache that `pop` trusts to read slots.
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        self.cached_tail.set(tail);
        let available = tail.wrapping_sub(self.head);
        if available > SpscRing::<T, N>::N32 { 0 } else { available as usize }
    }

    /// Returns `true` if there is nothing to pop (or the ring is corrupt).
    ///
    /// Only loads the producer's index if the cached one says the ring is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u32, 4>::new();
    /// // SAFETY: these are the only producer and the only consumer of `ring`.
    /// let (mut producer, consumer) = unsafe { (ring.producer(), ring.consumer()) };
    /// assert!(consumer.is_empty());
    /// producer.push(1).unwrap();
    /// assert!(!consumer.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.front_ready()
    }

    /// Returns the ring this handle reads from.
    #[must_use]
    pub fn ring(&self) -> &SpscRing<T, N> {
        self.ring
    }
}

impl<T: Copy, const N: usize> fmt::Debug for Consumer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &N)
            .field("head", &self.head)
            .field("cached_tail", &self.cached_tail.get())
            .finish_non_exhaustive()
    }
}

/// The error of [`Producer::push`]: the value could not be queued and is handed back.
///
/// # Examples
///
/// ```
/// use trio::ring::{PushError, SpscRing};
///
/// let ring = SpscRing::<u32, 1>::new();
/// // SAFETY: this is the only producer of `ring`.
/// let mut producer = unsafe { ring.producer() };
/// producer.push(1).unwrap();
/// let error = producer.push(2).unwrap_err();
/// assert_eq!(error.to_string(), "the ring is full, so the value was not queued");
/// assert_eq!(error.into_inner(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// Every slot is occupied (or the ring is corrupt). Contains the value that was not
    /// pushed.
    Full(T),
}

impl<T> PushError<T> {
    /// Returns the value that could not be pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// use trio::ring::PushError;
    ///
    /// assert_eq!(PushError::Full(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) => value,
        }
    }
}

/// Does not print the value, so `T` need not implement `Debug`.
impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.pad("Full(_)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.pad("the ring is full, so the value was not queued"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// The error of [`Consumer::pop`].
///
/// # Examples
///
/// ```
/// use trio::ring::{PopError, SpscRing};
///
/// let ring = SpscRing::<u32, 4>::new();
/// // SAFETY: this is the only consumer of `ring`.
/// let mut consumer = unsafe { ring.consumer() };
/// assert_eq!(consumer.pop(), Err(PopError::Empty));
/// assert_eq!(PopError::Empty.to_string(), "the ring is empty, so there is nothing to pop");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// No element is queued (or the ring is corrupt).
    Empty,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.pad("the ring is empty, so there is nothing to pop"),
        }
    }
}

impl std::error::Error for PopError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::mem::offset_of;

    /// Sets both indices, as if the ring had already carried `index` elements.
    fn set_indices<T: Copy, const N: usize>(ring: &SpscRing<T, N>, head: u32, tail: u32) {
        ring.head.0.store(head, Ordering::Relaxed);
        ring.tail.0.store(tail, Ordering::Relaxed);
    }

    #[test]
    fn layout_is_two_cache_lines_then_slots() {
        type Ring = SpscRing<u64, 8>;
        assert_eq!(offset_of!(Ring, head), 0);
        assert_eq!(offset_of!(Ring, tail), 64);
        assert_eq!(offset_of!(Ring, slots), 128);
        assert_eq!(align_of::<Ring>(), 64);
        assert_eq!(size_of::<Ring>(), 128 + 64);
        assert_eq!(size_of::<SpscRing<[u8; 24], 1024>>(), 128 + 24 * 1024);
    }

    #[test]
    fn fill_then_drain() {
        let ring = SpscRing::<u32, 8>::new();
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        for round in 0..5 {
            assert!(c.is_empty());
            for i in 0..8 {
                assert_eq!(p.free_slots(), 8 - i as usize);
                assert_eq!(p.push(round * 100 + i), Ok(()));
                assert_eq!(ring.len(), i as usize + 1);
            }
            assert_eq!(p.free_slots(), 0);
            assert_eq!(c.len(), 8);
            for i in 0..8 {
                assert_eq!(c.pop(), Ok(round * 100 + i));
            }
            assert_eq!(c.pop(), Err(PopError::Empty));
            assert_eq!(ring.len(), 0);
        }
    }

    #[test]
    fn full_returns_the_value() {
        let ring = SpscRing::<[u8; 3], 2>::new();
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        p.push([1, 1, 1]).unwrap();
        p.push([2, 2, 2]).unwrap();
        let error = p.push([3, 3, 3]).unwrap_err();
        assert_eq!(error, PushError::Full([3, 3, 3]));
        assert_eq!(error.into_inner(), [3, 3, 3]);
        assert_eq!(c.pop(), Ok([1, 1, 1]));
        assert_eq!(p.push([3, 3, 3]), Ok(()));
        assert_eq!(c.pop(), Ok([2, 2, 2]));
        assert_eq!(c.pop(), Ok([3, 3, 3]));
    }

    #[test]
    fn capacity_one() {
        let ring = SpscRing::<u8, 1>::new();
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        for i in 0..10 {
            assert_eq!(p.push(i), Ok(()));
            assert_eq!(p.push(i), Err(PushError::Full(i)));
            assert_eq!(c.peek(), Some(i));
            assert_eq!(c.pop(), Ok(i));
            assert_eq!(c.pop(), Err(PopError::Empty));
        }
    }

    #[test]
    fn wraps_around_past_u32_max() {
        let ring = SpscRing::<u32, 4>::new();
        let start = u32::MAX - 5;
        set_indices(&ring, start, start);
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        let mut next_in = 0;
        let mut next_out = 0;
        for _ in 0..10 {
            while p.push(next_in).is_ok() {
                next_in += 1;
            }
            assert_eq!(ring.len(), 4);
            assert_eq!(c.len(), 4);
            while let Ok(value) = c.pop() {
                assert_eq!(value, next_out);
                next_out += 1;
            }
        }
        assert_eq!(next_out, 40);
        assert_eq!(ring.tail.0.load(Ordering::Relaxed), start.wrapping_add(40));
        assert_eq!(ring.head.0.load(Ordering::Relaxed), start.wrapping_add(40));
    }

    #[test]
    fn peek_copies_without_removing() {
        let ring = SpscRing::<u32, 4>::new();
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        assert_eq!(c.peek(), None);
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(c.peek(), Some(1));
        assert_eq!(c.peek(), Some(1));
        assert_eq!(c.len(), 2);
        assert_eq!(c.pop(), Ok(1));
        assert_eq!(c.peek(), Some(2));
        assert_eq!(c.pop(), Ok(2));
        assert_eq!(c.peek(), None);
    }

    #[test]
    fn zeroed_memory_is_an_empty_ring() {
        // SAFETY: all-zero bytes are a valid `SpscRing` (zero atomics, uninit-able slots).
        let ring: SpscRing<u64, 16> = unsafe { core::mem::zeroed() };
        assert!(ring.is_empty());
        assert_eq!(ring.len(), 0);

        // The same through a zero-filled heap block, like a fresh shared-memory mapping.
        let block = Box::<SpscRing<u64, 256>>::new_zeroed();
        // SAFETY: as above, all-zero bytes are a valid `SpscRing`.
        let ring = unsafe { block.assume_init() };
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        assert_eq!(c.pop(), Err(PopError::Empty));
        assert_eq!(c.peek(), None);
        assert_eq!(p.free_slots(), 256);
        for i in 0..256 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(256), Err(PushError::Full(256)));
        for i in 0..256 {
            assert_eq!(c.pop(), Ok(i));
        }
    }

    #[test]
    fn handles_can_be_recreated() {
        let ring = SpscRing::<u32, 4>::new();
        {
            // SAFETY: the only producer of `ring` while it lives.
            let mut p = unsafe { ring.producer() };
            p.push(1).unwrap();
            p.push(2).unwrap();
        }
        {
            // SAFETY: the only consumer of `ring` while it lives.
            let mut c = unsafe { ring.consumer() };
            assert_eq!(c.pop(), Ok(1));
        }
        // SAFETY: the previous handles are gone.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        p.push(3).unwrap();
        assert_eq!(c.pop(), Ok(2));
        assert_eq!(c.pop(), Ok(3));
        assert_eq!(c.pop(), Err(PopError::Empty));
    }

    #[test]
    fn corrupt_indices_read_as_full_and_empty() {
        // Every ring here starts from zeroed memory, so even a wrong in-range read would
        // see initialised bytes; the point is that out-of-range distances are refused.
        let cases: [(u32, u32); 5] = [
            (0, 5),                   // tail - head = N + 1
            (7, 0),                   // head ahead of tail
            (u32::MAX - 1, 100),      // far apart across the wrap
            (0, u32::MAX),            // head just ahead of tail (distance 2^32 - 1)
            (u32::MAX, u32::MAX - 1), // head one ahead of tail
        ];
        for (head, tail) in cases {
            let block = Box::<SpscRing<u32, 4>>::new_zeroed();
            // SAFETY: all-zero bytes are a valid `SpscRing`.
            let ring = unsafe { block.assume_init() };
            set_indices(&ring, head, tail);
            // SAFETY: the only producer and consumer of `ring`.
            let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
            assert_eq!(p.push(9), Err(PushError::Full(9)), "head {head} tail {tail}");
            assert_eq!(p.free_slots(), 0);
            assert_eq!(c.pop(), Err(PopError::Empty), "head {head} tail {tail}");
            assert_eq!(c.peek(), None);
            assert_eq!(c.len(), 0);
            assert!(c.is_empty());
            assert_eq!(ring.len(), 4);
        }
    }

    #[test]
    fn corruption_after_the_handles_exist_is_refused_and_healed() {
        let ring = SpscRing::<u32, 4>::new();
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        p.push(1).unwrap();
        assert_eq!(c.pop(), Ok(1));
        // Another library scribbles over both indices.
        ring.head.0.store(1_000, Ordering::Relaxed);
        ring.tail.0.store(500_000, Ordering::Relaxed);
        // The consumer keeps its own `head` (1); the reloaded `tail` is too far: empty.
        assert_eq!(c.pop(), Err(PopError::Empty));
        assert_eq!(c.len(), 0);
        // The producer keeps its own `tail` (1) and trusts its cached `head` (0) until that
        // says full; then the reloaded `head` (ahead of `tail`) reads as full.
        for i in 2..=4 {
            assert_eq!(p.push(i), Ok(()));
        }
        assert_eq!(p.push(5), Err(PushError::Full(5)));
        assert_eq!(p.free_slots(), 0);
        // The pushes rewrote `tail`, so the consumer sees the real elements again, and its
        // pops rewrite `head`, which lets the producer continue.
        for i in 2..=4 {
            assert_eq!(c.pop(), Ok(i));
        }
        assert_eq!(p.push(5), Ok(()));
        assert_eq!(c.pop(), Ok(5));
    }

    #[test]
    fn errors_display_for_humans() {
        assert_eq!(PushError::Full(1u8).to_string(), "the ring is full, so the value was not queued");
        assert_eq!(format!("{:?}", PushError::Full(1u8)), "Full(_)");
        assert_eq!(PopError::Empty.to_string(), "the ring is empty, so there is nothing to pop");
        let boxed: Box<dyn std::error::Error> = Box::new(PopError::Empty);
        assert!(boxed.source().is_none());
        let boxed: Box<dyn std::error::Error> = Box::new(PushError::Full(()));
        assert!(boxed.source().is_none());
    }

    #[test]
    fn debug_output() {
        let ring = SpscRing::<u32, 4>::new();
        assert_eq!(format!("{ring:?}"), "SpscRing { capacity: 4, len: 0, .. }");
        // SAFETY: the only producer and consumer of `ring`.
        let (p, c) = unsafe { (ring.producer(), ring.consumer()) };
        assert!(format!("{p:?}").starts_with("Producer"));
        assert!(format!("{c:?}").starts_with("Consumer"));
        assert!(core::ptr::eq(p.ring(), c.ring()));
    }

    #[test]
    fn two_threads_keep_order_and_lose_nothing() {
        const COUNT: u64 = if cfg!(miri) { 1_000 } else { 100_000 };
        let ring = SpscRing::<u64, 64>::new();
        // SAFETY: the only producer and consumer of `ring`.
        let (mut p, mut c) = unsafe { (ring.producer(), ring.consumer()) };
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..COUNT {
                    let mut value = i;
                    while let Err(PushError::Full(v)) = p.push(value) {
                        value = v;
                        std::thread::yield_now();
                    }
                }
            });
            s.spawn(move || {
                let mut expected = 0;
                while expected < COUNT {
                    match c.pop() {
                        Ok(value) => {
                            assert_eq!(value, expected);
                            expected += 1;
                        }
                        Err(PopError::Empty) => std::thread::yield_now(),
                    }
                }
                assert_eq!(c.pop(), Err(PopError::Empty));
            });
        });
        assert!(ring.is_empty());
    }
}
