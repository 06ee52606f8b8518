//! Resonant low-pass filter: the trapezoidal-integrated state-variable
//! filter (Simper / Cytomic "SvfLinearTrapOptimised2"), which is
//! unconditionally stable for any positive damping and any cutoff below
//! Nyquist, plus the fast approximations used to compute its coefficients at
//! the control rate.

use core::f32::consts::PI;

/// Lowest cutoff the filter is set to, in Hz.
pub(crate) const MIN_CUTOFF_HZ: f32 = 20.0;
/// Highest cutoff as a fraction of the sample rate (safely below Nyquist).
pub(crate) const MAX_CUTOFF_RATIO: f32 = 0.45;
/// `log2(40)`: resonance 1 gives a Q 40 times that of resonance 0.
const LOG2_Q_RANGE: f32 = 5.321_928;

/// `2^x` for `x` in `[-125, 125]` (clamped): the exponent bits of the
/// nearest integer plus a degree-6 polynomial on the remainder in
/// `[-1/2, 1/2]` (relative error below 1e-6). Written without float → int
/// conversions so that it vectorises.
#[inline(always)]
pub(crate) fn exp2_fast(x: f32) -> f32 {
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

/// Sine and cosine of `w` in `[0, 0.45π]` by degree-9 / degree-10 Taylor
/// polynomials (absolute errors below 1.5e-6 and 2e-7), whose ratio is
/// `tan(w)` to a relative error below 1e-5.
#[inline(always)]
pub(crate) fn sin_cos_fast(w: f32) -> (f32, f32) {
    let w2 = w * w;
    let s = w * (1.0 + w2 * (-1.0 / 6.0 + w2 * (1.0 / 120.0 + w2 * (-1.0 / 5040.0 + w2 * (1.0 / 362_880.0)))));
    let c =
        1.0 + w2 * (-0.5 + w2 * (1.0 / 24.0 + w2 * (-1.0 / 720.0 + w2 * (1.0 / 40_320.0 + w2 * (-1.0 / 3_628_800.0)))));
    (s, c)
}

/// Damping `k = 1/Q` for resonance in `[0, 1]`: Q goes exponentially from
/// 0.5 (no resonance) to 20 (strong, still stable, resonance).
pub(crate) fn resonance_to_k(res: f32) -> f32 {
    2.0 * exp2_fast(-res.clamp(0.0, 1.0) * LOG2_Q_RANGE)
}

/// Cutoff limits in the log2 domain for a sample rate.
pub(crate) fn log2_cutoff_range(sample_rate: f32) -> (f32, f32) {
    (MIN_CUTOFF_HZ.log2(), (sample_rate * MAX_CUTOFF_RATIO).max(MIN_CUTOFF_HZ).log2())
}

/// Scale from cutoff in Hz to the pre-warping angle `π fc / fs`.
pub(crate) fn angle_scale(sample_rate: f32) -> f32 {
    PI / sample_rate
}

/// Control-rate inputs to the per-voice coefficient computation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FilterControl {
    /// Smoothed base cutoff, log2 Hz.
    pub log2_cutoff: f32,
    /// Envelope modulation depth in octaves.
    pub env_octaves: f32,
    /// Lower clamp of the modulated cutoff, log2 Hz.
    pub log2_min: f32,
    /// Upper clamp of the modulated cutoff, log2 Hz.
    pub log2_max: f32,
    /// `π / fs`.
    pub angle_scale: f32,
    /// Damping `1/Q` from the smoothed resonance.
    pub k: f32,
}

/// SVF coefficients `(a1, a2, a3)` for envelope value `env`: the cutoff is
/// `2^(log2_cutoff + env * env_octaves)` clamped to the safe range.
///
/// With `g = tan(w) = s / c` the textbook `a1 = 1 / (1 + g (g + k))`,
/// `a2 = g a1`, `a3 = g a2` become `c², s c, s²` over
/// `c² + s (s + k c)`, which needs a single division.
#[inline(always)]
pub(crate) fn coefs(env: f32, c: &FilterControl) -> (f32, f32, f32) {
    let x = c.log2_cutoff + env * c.env_octaves;
    let x = if x > c.log2_min { x } else { c.log2_min };
    let x = if x < c.log2_max { x } else { c.log2_max };
    let (s, co) = sin_cos_fast(exp2_fast(x) * c.angle_scale);
    let inv = 1.0 / (co * co + s * (s + c.k * co));
    (co * co * inv, s * co * inv, s * s * inv)
}

/// One sample of the low-pass output; `ic1` / `ic2` are the integrator
/// states.
#[inline(always)]
pub(crate) fn lowpass(x: f32, ic1: &mut f32, ic2: &mut f32, a1: f32, a2: f32, a3: f32) -> f32 {
    let v3 = x - *ic2;
    let v1 = a1 * *ic1 + a2 * v3;
    let v2 = *ic2 + a2 * *ic1 + a3 * v3;
    *ic1 = 2.0 * v1 - *ic1;
    *ic2 = 2.0 * v2 - *ic2;
    v2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_is_accurate() {
        let mut x = -20.0f32;
        while x < 20.0 {
            let want = 2f64.powf(x as f64);
            let got = exp2_fast(x) as f64;
            assert!(((got - want) / want).abs() < 1e-6, "x={x} got {got} want {want}");
            x += 0.0137;
        }
    }

    #[test]
    fn tan_is_accurate_up_to_the_cutoff_limit() {
        let top = PI * MAX_CUTOFF_RATIO;
        for i in 1..=1000 {
            let w = top * i as f32 / 1000.0;
            let want = (w as f64).tan();
            let (s, c) = sin_cos_fast(w);
            let got = (s / c) as f64;
            assert!(((got - want) / want).abs() < 1e-5, "w={w} got {got} want {want}");
        }
    }

    fn control(cut: f32, res: f32, sr: f32) -> FilterControl {
        let (lo, hi) = log2_cutoff_range(sr);
        FilterControl {
            log2_cutoff: cut.log2(),
            env_octaves: 0.0,
            log2_min: lo,
            log2_max: hi,
            angle_scale: angle_scale(sr),
            k: resonance_to_k(res),
        }
    }

    /// Steady-state gain of the low-pass for a sine at `freq`.
    fn gain_at(freq: f32, c: &FilterControl, sr: f32) -> f32 {
        let (a1, a2, a3) = coefs(0.0, c);
        let (mut s1, mut s2) = (0.0, 0.0);
        let mut peak = 0.0f32;
        for i in 0..(sr as usize) {
            let x = (std::f32::consts::TAU * freq * i as f32 / sr).sin();
            let y = lowpass(x, &mut s1, &mut s2, a1, a2, a3);
            if i > sr as usize / 2 {
                peak = peak.max(y.abs());
            }
        }
        peak
    }

    #[test]
    fn low_pass_response() {
        let sr = 48_000.0;
        let c = control(1000.0, 0.0, sr);
        assert!((gain_at(100.0, &c, sr) - 1.0).abs() < 0.02);
        assert!(gain_at(8000.0, &c, sr) < 0.03);
        // Q = 0.5 at the cutoff: -6 dB.
        assert!((gain_at(1000.0, &c, sr) - 0.5).abs() < 0.02);
        // Full resonance peaks at Q = 20.
        let r = control(1000.0, 1.0, sr);
        assert!((gain_at(1000.0, &r, sr) - 20.0).abs() < 1.0);
    }

    #[test]
    fn coefficients_are_finite_at_the_extremes() {
        for sr in [8_000.0f32, 44_100.0, 192_000.0] {
            let (lo, hi) = log2_cutoff_range(sr);
            for env in [0.0f32, 1.0] {
                for oct in [-6.0f32, 6.0] {
                    for cut in [20.0f32, 20_000.0] {
                        let c = FilterControl {
                            log2_cutoff: cut.log2(),
                            env_octaves: oct,
                            log2_min: lo,
                            log2_max: hi,
                            angle_scale: angle_scale(sr),
                            k: resonance_to_k(1.0),
                        };
                        let (a1, a2, a3) = coefs(env, &c);
                        assert!(a1.is_finite() && a2.is_finite() && a3.is_finite());
                        assert!(a1 > 0.0 && a2 > 0.0 && a3 > 0.0);
                    }
                }
            }
        }
    }
}
