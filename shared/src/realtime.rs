//! Helpers for the audio path.

/// Sets flush-to-zero and denormals-are-zero for the current thread while it lives, and
/// restores the previous floating-point mode when dropped. Create one at the top of each
/// audio callback: denormal numbers in filter and envelope tails can cost a hundred times
/// the normal cycles.
///
/// # Examples
/// ```
/// let _ftz = trio::realtime::DenormalGuard::new();
/// let tiny = std::hint::black_box(1e-39_f32);
/// # #[cfg(target_arch = "x86_64")]
/// assert_eq!(tiny * 0.5, 0.0);
/// ```
pub struct DenormalGuard {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

impl DenormalGuard {
    /// Enables flush-to-zero until the guard is dropped.
    #[inline]
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            write_mxcsr(saved | FTZ_DAZ);
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self {}
        }
    }
}

impl Default for DenormalGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DenormalGuard {
    #[inline]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_mxcsr() -> u32 {
    let mut value: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR register to the given address, which is a
    // valid, aligned local; it has no other effect.
    unsafe {
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags));
    }
    value
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn write_mxcsr(value: u32) {
    // SAFETY: `ldmxcsr` loads MXCSR from a valid local. The values written are either one
    // read from MXCSR or that value with the FTZ and DAZ bits set, both valid settings
    // that only change how this thread rounds denormals.
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, preserves_flags, readonly));
    }
}

/// This library's state of one thread on the audio path, in one thread-local: entering and
/// leaving [`count_allocations`] looks it up once. (In a dynamically loaded library every
/// thread-local lookup is a call into the dynamic linker, and an idle block is short.)
struct AudioPath {
    /// Whether this thread is inside [`count_allocations`] (of this library).
    counting: core::cell::Cell<bool>,
    /// Whether it is inside the engine's `process` ([`count_engine_allocations`]): its
    /// panic hook stays silent there.
    in_engine: core::cell::Cell<bool>,
    /// Allocator calls counted inside a [`count_allocations`] that a panic unwound out
    /// of, until [`take_unwound_allocations`] collects them.
    unwound: core::cell::Cell<u32>,
}

std::thread_local! {
    static AUDIO_PATH: AudioPath = const {
        AudioPath {
            counting: core::cell::Cell::new(false),
            in_engine: core::cell::Cell::new(false),
            unwound: core::cell::Cell::new(0),
        }
    };
}

/// Allocator calls made on this thread inside a [`count_allocations`] that a panic
/// unwound out of (so it could not return its count), since the last call; resets the
/// tally. Call it where the panic is caught.
pub fn take_unwound_allocations() -> u32 {
    AUDIO_PATH.with(|path| path.unwound.replace(0))
}

/// Whether this thread is inside the engine's `process` ([`count_engine_allocations`]).
pub(crate) fn in_engine_process() -> bool {
    AUDIO_PATH.with(|path| path.in_engine.get())
}

/// Whether this thread is inside [`count_allocations`].
fn is_counting() -> bool {
    AUDIO_PATH.with(|path| path.counting.get())
}

/// Runs `f` with allocation forbidden on this thread (`assert_no_alloc`, whose allocator
/// is the library's global allocator) and returns how many allocator calls it made. Never
/// prints: `assert_no_alloc` on its own writes a warning to stderr from the offending
/// thread, which on the audio thread is itself a system call; here the count is returned,
/// for the caller to record where another thread reports it. Inside another
/// `count_allocations` of the same library, runs `f` and leaves the counting to the
/// outer one (returning 0).
///
/// # Examples
/// ```
/// let (sum, calls) = trio::realtime::count_allocations(|| 2 + 2);
/// assert_eq!((sum, calls), (4, 0));
/// ```
pub fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, u32) {
    count(false, f)
}

/// [`count_allocations`] around the engine's `process`, where the engine library's panic
/// hook stays silent (printing allocates and makes system calls on the audio thread).
pub(crate) fn count_engine_allocations<T>(f: impl FnOnce() -> T) -> (T, u32) {
    count(true, f)
}

fn count<T>(in_engine: bool, f: impl FnOnce() -> T) -> (T, u32) {
    /// Sets a flag back to what it was however the section ends.
    struct Restore<'a>(&'a core::cell::Cell<bool>, bool);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0.set(self.1);
        }
    }
    AUDIO_PATH.with(|path| {
        let _engine = in_engine.then(|| Restore(&path.in_engine, path.in_engine.replace(true)));
        if path.counting.get() {
            return (f(), 0);
        }
        path.counting.set(true);
        // Dropped after `assert_no_alloc` has restored the thread's allocation policy.
        let _leave = Restore(&path.counting, false);
        /// Keeps the count of a closure a panic unwinds out of, for
        /// [`take_unwound_allocations`].
        struct Tally<'a> {
            before: u32,
            unwound: &'a core::cell::Cell<u32>,
        }
        impl Drop for Tally<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let made = assert_no_alloc::violation_count().wrapping_sub(self.before);
                    assert_no_alloc::reset_violation_count();
                    self.unwound.set(self.unwound.get().saturating_add(made));
                }
            }
        }
        assert_no_alloc::assert_no_alloc(|| {
            let tally = Tally { before: assert_no_alloc::violation_count(), unwound: &path.unwound };
            let out = f();
            let made = assert_no_alloc::violation_count().wrapping_sub(tally.before);
            if made > 0 {
                // `assert_no_alloc` prints when the count rose across its closure: it does
                // not now (it compares with the count it saw on entry, at least `before`).
                assert_no_alloc::reset_violation_count();
            }
            (out, made)
        })
    })
}

/// The global allocator of a library with an audio path (the engine export and the
/// bridge use it): `assert_no_alloc`'s [`AllocDisabler`](assert_no_alloc::AllocDisabler),
/// which counts allocations inside [`count_allocations`], plus an **emergency arena** for
/// panics there. A panic allocates its payload and the unwinder's exception object; while
/// a thread inside [`count_allocations`] is panicking, those come from a static arena
/// (a lock-free bump allocator, no system call, no lock) instead of the system allocator,
/// so catching an engine panic on the audio thread neither allocates nor counts as a
/// violation. The arena empties whenever its last block is freed; a panic that does not
/// fit it (a message of several KiB) falls back to the system allocator, counted.
pub struct RealtimeAllocator;

/// Bytes of the emergency arena, shared by all threads of the library.
const ARENA_BYTES: usize = 16 * 1024;

#[repr(C, align(64))]
struct ArenaBytes(core::cell::UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the bytes are handed out in disjoint ranges by the atomic bump state of
// `Arena`; no two live allocations overlap, so no byte is shared between threads.
unsafe impl Sync for ArenaBytes {}

/// A bump allocator over `ArenaBytes`. `state` packs the next free offset (low 32 bits)
/// and the number of live allocations (high 32 bits) into one atomic, so the "last block
/// freed → start over" reset cannot race with a new allocation.
struct Arena {
    bytes: ArenaBytes,
    state: core::sync::atomic::AtomicU64,
}

static ARENA: Arena = Arena {
    bytes: ArenaBytes(core::cell::UnsafeCell::new([0; ARENA_BYTES])),
    state: core::sync::atomic::AtomicU64::new(0),
};

impl Arena {
    fn base(&self) -> usize {
        self.bytes.0.get().addr()
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let p = ptr.addr();
        p >= self.base() && p < self.base() + ARENA_BYTES
    }

    fn alloc(&self, layout: core::alloc::Layout) -> Option<*mut u8> {
        use core::sync::atomic::Ordering;
        let base = self.base();
        // Relaxed here; the successful exchange below is Acquire.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let (offset, live) = (state & 0xFFFF_FFFF, state >> 32);
            let start = (base + offset as usize).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size().max(1))?;
            if end > ARENA_BYTES {
                return None;
            }
            let next = ((live + 1) << 32) | end as u64;
            // Acquire: pairs with the Release of the `dealloc` that emptied the arena, so
            // the writes into a block freed then happen before this thread reuses its bytes.
            match self.state.compare_exchange_weak(state, next, Ordering::Acquire, Ordering::Relaxed) {
                // SAFETY: `start..end` lies inside the arena (checked above).
                Ok(_) => return Some(unsafe { self.bytes.0.get().cast::<u8>().add(start) }),
                Err(now) => state = now,
            }
        }
    }

    fn dealloc(&self) {
        use core::sync::atomic::Ordering;
        // Relaxed here; the successful exchange below is Release.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let live = (state >> 32).saturating_sub(1);
            let next = if live == 0 { 0 } else { (live << 32) | (state & 0xFFFF_FFFF) };
            // Release: this thread's writes into the freed block happen before a later
            // `alloc` (Acquire) hands its bytes out again.
            match self.state.compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }
}

/// Whether this thread is panicking inside [`count_allocations`]: its allocations are the
/// panic's own (payload, exception object) and go to the arena.
fn panicking_on_audio_path() -> bool {
    std::thread::panicking() && is_counting()
}

// SAFETY: every block comes either from the arena (disjoint, aligned ranges of static
// memory, recognised by address when freed) or from `AllocDisabler`, which forwards to
// the system allocator; each is freed by the allocator it came from.
unsafe impl core::alloc::GlobalAlloc for RealtimeAllocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if panicking_on_audio_path()
            && let Some(ptr) = ARENA.alloc(layout)
        {
            return ptr;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { assert_no_alloc::AllocDisabler.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: core::alloc::Layout) -> *mut u8 {
        if panicking_on_audio_path()
            && let Some(ptr) = ARENA.alloc(layout)
        {
            // SAFETY: `ptr` is valid for `layout.size()` bytes.
            unsafe { ptr.write_bytes(0, layout.size()) };
            return ptr;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { assert_no_alloc::AllocDisabler.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        if ARENA.contains(ptr) {
            ARENA.dealloc();
            return;
        }
        // SAFETY: `ptr` came from `AllocDisabler` (it is not in the arena).
        unsafe { assert_no_alloc::AllocDisabler.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: core::alloc::Layout, new_size: usize) -> *mut u8 {
        if !ARENA.contains(ptr) && !panicking_on_audio_path() {
            // SAFETY: forwarded with the caller's guarantees; `ptr` is not in the arena.
            return unsafe { assert_no_alloc::AllocDisabler.realloc(ptr, layout, new_size) };
        }
        // Grow or shrink across the two allocators: new block, copy, free the old one.
        let Ok(new_layout) = core::alloc::Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (the caller's guarantee for realloc).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and distinct;
            // `ptr` was allocated by this allocator with `layout`.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{ARENA_BYTES, Arena, ArenaBytes};
    use core::alloc::Layout;
    use core::sync::atomic::AtomicU64;

    fn arena() -> Box<Arena> {
        Box::new(Arena { bytes: ArenaBytes(core::cell::UnsafeCell::new([0; ARENA_BYTES])), state: AtomicU64::new(0) })
    }

    #[test]
    fn the_arena_hands_out_aligned_disjoint_blocks_to_racing_threads_and_empties() {
        let arena = arena();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let arena = &arena;
                s.spawn(move || {
                    let mut seed = 0x9E37_79B9u32.wrapping_mul(u32::from(t) + 1);
                    for _ in 0..if cfg!(miri) { 200 } else { 20_000 } {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        let layout = Layout::from_size_align(1 + seed as usize % 200, 1 << ((seed >> 28) % 7)).unwrap();
                        let Some(ptr) = arena.alloc(layout) else { continue };
                        assert_eq!(ptr.addr() % layout.align(), 0);
                        assert!(arena.contains(ptr) && arena.contains(ptr.wrapping_add(layout.size() - 1)));
                        // SAFETY: the block is this thread's for `layout.size()` bytes.
                        let block = unsafe { core::slice::from_raw_parts_mut(ptr, layout.size()) };
                        block.fill(t);
                        std::hint::spin_loop();
                        assert!(block.iter().all(|&b| b == t), "another thread wrote into this block");
                        arena.dealloc();
                    }
                });
            }
        });
        // Everything was freed: the arena starts over from its first byte.
        assert_eq!(arena.state.load(core::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_arena_refuses_and_empties_when_its_last_block_goes() {
        let arena = arena();
        let big = Layout::from_size_align(ARENA_BYTES / 2, 8).unwrap();
        let (a, b) = (arena.alloc(big).unwrap(), arena.alloc(big).unwrap());
        assert_ne!(a, b);
        assert!(arena.alloc(Layout::new::<u8>()).is_none(), "a full arena hands out nothing");
        assert!(arena.alloc(Layout::from_size_align(ARENA_BYTES + 1, 1).unwrap()).is_none());
        arena.dealloc();
        assert!(arena.alloc(Layout::new::<u8>()).is_none(), "one block is still live");
        arena.dealloc();
        assert_eq!(arena.alloc(big), Some(a), "empty again: the next block starts at the beginning");
    }
}
