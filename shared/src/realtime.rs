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
