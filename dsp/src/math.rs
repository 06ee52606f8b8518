//! Fast approximations and input sanitising helpers.
//!
//! [`exp2_fast`] and [`sin_cos_fast`] are the approximations the example
//! synth uses to compute its filter coefficients at the control rate; they
//! are copied here with the same arithmetic, so results are bit-identical.

/// Largest sample magnitude the stateful processors accept (+120 dBFS).
/// Larger finite inputs are clamped to it, non-finite inputs become 0, so a
/// filter state can never overflow to infinity.
pub const MAX_SAMPLE: f32 = 1.0e6;

/// `2^x` for `x` in `[-125, 125]` (clamped): the exponent bits of the
/// nearest integer plus a degree-6 polynomial on the remainder in
/// `[-1/2, 1/2]` (relative error below 1e-6). Written without float → int
/// conversions so that it vectorises. A NaN argument gives 2^125.
///
/// # Examples
///
/// ```
/// use trio_dsp::math::exp2_fast;
/// assert!((exp2_fast(3.0) - 8.0).abs() < 1e-5);
/// assert!((exp2_fast(-0.5) - 0.5f32.sqrt()).abs() < 1e-6);
/// ```
#[inline(always)]
pub fn exp2_fast(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = if x > -125.0 { x } else { -125.0 };
    let x = if x < 125.0 { x } else { 125.0 };
    let r = x + ROUND;
    let n = r - ROUND; // nearest integer to x
    let f = x - n;
    // The low mantissa bits of `r` hold `n` (two's complement).
    let i = r.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(i.wrapping_add(127) << 23);
    // Taylor series of e^(f ln 2).
    let p = 1.0
        + f * (core::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11 + f * (0.009_618_129 + f * (0.001_333_355_8 + f * 0.000_154_035_3)))));
    p * scale
}

/// Sine and cosine of `w` (radians) in `[0, 0.45π]` by degree-9 /
/// degree-10 Taylor polynomials (absolute errors below 1.5e-6 and 2e-7),
/// whose ratio is `tan(w)` to a relative error below 1e-5. Outside that
/// range the error grows quickly; there is no range reduction.
///
/// # Examples
///
/// ```
/// use trio_dsp::math::sin_cos_fast;
/// let (s, c) = sin_cos_fast(0.5);
/// assert!((s - 0.5f32.sin()).abs() < 2e-6 && (c - 0.5f32.cos()).abs() < 2e-6);
/// ```
#[inline(always)]
pub fn sin_cos_fast(w: f32) -> (f32, f32) {
    let w2 = w * w;
    let s = w * (1.0 + w2 * (-1.0 / 6.0 + w2 * (1.0 / 120.0 + w2 * (-1.0 / 5040.0 + w2 * (1.0 / 362_880.0)))));
    let c =
        1.0 + w2 * (-0.5 + w2 * (1.0 / 24.0 + w2 * (-1.0 / 720.0 + w2 * (1.0 / 40_320.0 + w2 * (-1.0 / 3_628_800.0)))));
    (s, c)
}

/// `x` clamped to `lo..=hi`, or `default` when `x` is NaN. Infinities clamp
/// to the nearer bound. Used to sanitise every parameter in this crate.
///
/// # Examples
///
/// ```
/// use trio_dsp::math::clamp_or;
/// assert_eq!(clamp_or(f32::NAN, 0.0, 1.0, 0.5), 0.5);
/// assert_eq!(clamp_or(f32::INFINITY, 0.0, 1.0, 0.5), 1.0);
/// assert_eq!(clamp_or(0.25, 0.0, 1.0, 0.5), 0.25);
/// ```
#[inline]
pub fn clamp_or(x: f32, lo: f32, hi: f32, default: f32) -> f32 {
    if x.is_nan() {
        default
    } else if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// An audio sample made safe for a stateful processor: NaN and ±∞ become
/// 0, finite values are clamped to `±MAX_SAMPLE`. Every other value is
/// returned unchanged (bit for bit).
///
/// # Examples
///
/// ```
/// use trio_dsp::math::{sanitize_sample, MAX_SAMPLE};
/// assert_eq!(sanitize_sample(f32::NAN), 0.0);
/// assert_eq!(sanitize_sample(f32::NEG_INFINITY), 0.0);
/// assert_eq!(sanitize_sample(-1e9), -MAX_SAMPLE);
/// assert_eq!(sanitize_sample(0.5), 0.5);
/// ```
#[inline(always)]
pub fn sanitize_sample(x: f32) -> f32 {
    if x.is_finite() { x.clamp(-MAX_SAMPLE, MAX_SAMPLE) } else { 0.0 }
}

/// A pair of filter states, or `(0, 0)` when both are below 1e-30 in
/// magnitude. Applied to filter states so that after the input falls silent
/// they reach exactly 0 instead of lingering in subnormal numbers (slow on
/// most CPUs). Both are flushed together: zeroing one state while the other
/// still rings would inject a tiny error every sample, which a resonant
/// filter amplifies into a sustained limit cycle around 1e-28.
#[inline(always)]
pub fn flush_pair(a: f32, b: f32) -> (f32, f32) {
    if a.abs() < 1e-30 && b.abs() < 1e-30 { (0.0, 0.0) } else { (a, b) }
}

/// A coefficient computed in f64, rounded to f32, with magnitudes below 1e-30 (where f32
/// turns subnormal) set to 0: a table entry that small changes no result, and a
/// subnormal operand would slow down every product it enters on most CPUs.
#[inline]
pub fn table_entry(x: f64) -> f32 {
    if x.abs() < 1e-30 { 0.0 } else { x as f32 }
}

/// A sample rate made safe: NaN and ±∞ give 48 kHz, finite values are
/// clamped to 1 kHz ..= 1.536 MHz.
#[inline]
pub fn sanitize_sample_rate(sample_rate: f32) -> f32 {
    if sample_rate.is_finite() { sample_rate.clamp(1_000.0, 1_536_000.0) } else { 48_000.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::f32::consts::PI;

    #[test]
    fn exp2_is_accurate() {
        let mut x = -20.0f32;
        let mut worst = 0.0f64;
        while x < 20.0 {
            let want = 2f64.powf(x as f64);
            let got = exp2_fast(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 1e-6, "worst relative error {worst:e}");
    }

    #[test]
    fn exp2_clamps_extremes() {
        assert_eq!(exp2_fast(1000.0), exp2_fast(125.0));
        assert_eq!(exp2_fast(-1000.0), exp2_fast(-125.0));
        assert!(exp2_fast(f32::NAN).is_finite());
        assert!(exp2_fast(f32::NEG_INFINITY) >= 0.0);
    }

    #[test]
    fn tan_is_accurate_up_to_045_pi() {
        let top = PI * 0.45;
        let mut worst = 0.0f64;
        for i in 1..=1000 {
            let w = top * i as f32 / 1000.0;
            let want = (w as f64).tan();
            let (s, c) = sin_cos_fast(w);
            worst = worst.max((((s / c) as f64 - want) / want).abs());
        }
        assert!(worst < 1e-5, "worst relative error {worst:e}");
    }

    #[test]
    fn sanitizers() {
        assert_eq!(clamp_or(-3.0, -1.0, 1.0, 0.0), -1.0);
        assert_eq!(sanitize_sample(f32::INFINITY), 0.0);
        assert_eq!(sanitize_sample(2e6), MAX_SAMPLE);
        assert_eq!(sanitize_sample(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(flush_pair(1e-31, -1e-31), (0.0, 0.0));
        assert_eq!(flush_pair(1e-31, 1e-29), (1e-31, 1e-29));
        assert_eq!(sanitize_sample_rate(f32::NAN), 48_000.0);
        assert_eq!(sanitize_sample_rate(10.0), 1_000.0);
        assert_eq!(sanitize_sample_rate(44_100.0), 44_100.0);
    }
}
