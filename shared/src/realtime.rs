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

std::thread_local! {
    /// Whether this thread is inside [`count_allocations`] (of this library).
    static COUNTING: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
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
    if COUNTING.with(core::cell::Cell::get) {
        return (f(), 0);
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            COUNTING.with(|c| c.set(false));
        }
    }
    COUNTING.with(|c| c.set(true));
    let _reset = Reset;
    assert_no_alloc::assert_no_alloc(|| {
        let before = assert_no_alloc::violation_count();
        let out = f();
        let made = assert_no_alloc::violation_count().wrapping_sub(before);
        if made > 0 {
            // `assert_no_alloc` prints when the count rose across its closure: it does not
            // now (it compares with the count it saw on entry, at least `before`).
            assert_no_alloc::reset_violation_count();
        }
        (out, made)
    })
}
