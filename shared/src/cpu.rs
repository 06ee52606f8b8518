//! [`with_cpu_feature!`]: one function, compiled twice (for the baseline target and for a
//! CPU feature such as AVX2), with the choice made at run time.

/// Defines `fn $name`, which runs `$kernel` compiled for the CPU feature `$feature` when
/// the CPU has it (the standard library's detection, cached after the first call) and the
/// baseline build of `$kernel` otherwise. Both builds give the same results: only the width
/// of the vectors differs. Off x86-64, and under Miri, only the baseline exists.
///
/// `$kernel` must be `#[inline(always)]` (so each build gets its own copy) and written with
/// plain loops: an iterator adapter's closure can be left out of line and compiled without
/// the feature, which loses the gain. An `unsafe fn` forwards its caller's promises.
macro_rules! with_cpu_feature {
    (
        $feature:tt,
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $kernel:ident
    ) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            {
                #[target_feature(enable = $feature)]
                fn wide($($arg: $ty),*) -> $ret {
                    $kernel($($arg),*)
                }
                if std::arch::is_x86_feature_detected!($feature) {
                    // SAFETY: the CPU has the feature (checked just above).
                    return unsafe { wide($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    };
    (
        $feature:tt,
        $(#[$attr:meta])*
        $vis:vis unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $kernel:ident
    ) => {
        $(#[$attr])*
        $vis unsafe fn $name($($arg: $ty),*) -> $ret {
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            {
                #[target_feature(enable = $feature)]
                unsafe fn wide($($arg: $ty),*) -> $ret {
                    // SAFETY: the caller's promises, forwarded.
                    unsafe { $kernel($($arg),*) }
                }
                if std::arch::is_x86_feature_detected!($feature) {
                    // SAFETY: the CPU has the feature (checked just above); the rest is
                    // the caller's promise.
                    return unsafe { wide($($arg),*) };
                }
            }
            // SAFETY: the caller's promises, forwarded.
            unsafe { $kernel($($arg),*) }
        }
    };
}

pub(crate) use with_cpu_feature;
