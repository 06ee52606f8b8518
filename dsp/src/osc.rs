//! Band-limited oscillators: PolyBLEP saw and square, PolyBLAMP triangle,
//! and a polynomial sine.
//!
//! The kernels ([`blep_saw`], [`blep_square`], [`blamp_triangle`],
//! [`sine`]) are pure functions of the phase (in cycles, `[0, 1)`) and the
//! phase increment, written without branches so that a loop over voices
//! vectorises. [`blep_saw`], the square and [`sine`] are the example synth's
//! kernels with the same arithmetic, so they produce bit-identical samples.
//! Phases are kept in fixed point ([`phase_step`], [`phase_to_unit`]), as the
//! synth's voices and [`Oscillator`] keep them: a `u32` phase wraps by itself
//! and advances exactly, so a pitch does not drift with rounding.
//!
//! # Alias rejection (measured)
//!
//! 8192 samples at 48 kHz, fundamental an odd multiple of 48000/8192 Hz so
//! the signal is exactly periodic in the window (no leakage) and no alias
//! lands on a harmonic; Hann window, FFT; energy in the non-harmonic bins
//! divided by the energy in the harmonic bins (±2 bins around each
//! harmonic, odd harmonics only for square and triangle), i.e. how far the
//! aliases lie below the harmonics:
//!
//! | fundamental | saw: PolyBLEP / naive | square: PolyBLEP / naive | triangle: PolyBLAMP / naive |
//! |-------------|-----------------------|--------------------------|-----------------------------|
//! | 1002.0 Hz   | −31.3 / −15.8 dB      | −33.8 / −17.7 dB         | −61.7 / −49.3 dB            |
//! | 2630.9 Hz   | −28.5 / −11.7 dB      | −32.5 / −13.8 dB         | −53.1 / −37.9 dB            |
//! | 4189.5 Hz   | −23.8 / −9.1 dB       | −29.2 / −11.4 dB         | −45.9 / −31.4 dB            |
//! | 8009.8 Hz   | −16.7 / −5.0 dB       | −16.6 / −6.3 dB          | −26.1 / −18.3 dB            |
//!
//! So the two-sample polynomial correction removes 12 to 19 dB of alias
//! energy (8 to 15 dB for the triangle); most of what remains lies in the
//! top octave, where the correction is weakest. The unit test
//! `alias_rejection` re-measures every figure (to 0.1 dB) and asserts a gain
//! of at least 10 dB over the naive waveform (7 dB for the triangle at
//! 8 kHz). Fundamentals that divide 48 kHz exactly (1 kHz, 8 kHz) fold
//! every alias onto a harmonic, which hides it from this measurement; the
//! ones above avoid that.

/// Highest phase increment [`Oscillator::set_frequency`] accepts (cycles per
/// sample, i.e. 0.45 × the sample rate).
pub const MAX_INC: f32 = 0.45;

/// Oscillator waveform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Waveform {
    /// Band-limited (PolyBLEP) rising sawtooth, `-1 → 1` over a period,
    /// [`blep_saw`].
    #[default]
    Saw,
    /// Band-limited (PolyBLEP) square, 50 % duty cycle: `+1` for the first
    /// half of the period, `-1` for the second, [`blep_square`].
    Square,
    /// Band-limited (PolyBLAMP) triangle in phase with the sine: 0 at phase
    /// 0, +1 at 1/4, −1 at 3/4, [`blamp_triangle`].
    Triangle,
    /// Sine `sin(2π phase)`, [`sine`].
    Sine,
}

/// `max(x, 0)` written so that it lowers to a single `maxps`.
#[inline(always)]
fn pos(x: f32) -> f32 {
    if x > 0.0 { x } else { 0.0 }
}

/// Wraps a phase that is in `[0, 2)` back to `[0, 1)` by subtracting 1 when
/// it is at least 1.
///
/// # Examples
///
/// ```
/// use trio_dsp::osc::wrap;
/// assert_eq!(wrap(1.25), 0.25);
/// assert_eq!(wrap(0.75), 0.75);
/// ```
#[inline(always)]
pub fn wrap(p: f32) -> f32 {
    p - if p >= 1.0 { 1.0 } else { 0.0 }
}

/// The fixed-point phase increment of a phase increment in cycles per sample: cycles in
/// units of `2^-32`, so that a phase kept as a `u32` wraps by itself and advances exactly
/// (`phase + k step` from any start is the phase `k` steps later, bit for bit). Negative
/// and NaN increments give 0; increments of a whole cycle or more (which no oscillator
/// uses) saturate at `u32::MAX`.
///
/// # Examples
///
/// ```
/// use trio_dsp::osc::{phase_step, phase_to_unit};
/// let step = phase_step(0.25);
/// assert_eq!(phase_to_unit(step.wrapping_mul(5)), 0.25);
/// ```
#[inline]
pub fn phase_step(inc: f32) -> u32 {
    // The saturating cast maps NaN and negatives to 0; increments are below 1.
    (f64::from(inc) * 4_294_967_296.0).round() as u32
}

/// `1 / increment` for a fixed-point step (see [`phase_step`]), as the band-limited
/// kernels take it: 0 for a stopped oscillator.
#[inline]
pub fn step_reciprocal(step: u32) -> f32 {
    if step > 0 { 4_294_967_296.0 / step as f32 } else { 0.0 }
}

/// A fixed-point phase (see [`phase_step`]) as cycles in `[0, 1)`, exactly (its top 24
/// bits).
#[inline(always)]
pub fn phase_to_unit(p: u32) -> f32 {
    (p >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Sawtooth `2p - 1` with the two-sample polynomial BLEP residual applied on
/// both sides of the wrap. `p` is the phase in `[0, 1)`, `inv_inc` is
/// `1 / increment` (0 for a stopped oscillator). With `t = p / inc` just
/// after the wrap the correction is `(1 - t)^2`, and with
/// `t = (1 - p) / inc` just before it the correction is `-(1 - t)^2`, both
/// written with a clamp instead of a branch.
#[inline(always)]
pub fn blep_saw(p: f32, inv_inc: f32) -> f32 {
    let a = pos(1.0 - p * inv_inc);
    let b = pos(1.0 - (1.0 - p) * inv_inc);
    (2.0 * p - 1.0) + (a * a - b * b)
}

/// `x[k] = f(phase_to_unit(phase + k step))` over a [`BLOCK`](crate::BLOCK), from a
/// fixed-point phase and step ([`phase_step`]), four phases at a time: a serial phase
/// accumulator does not vectorise, and the baseline x86-64 target has no 32-bit vector
/// multiply to compute `k step` directly. The phases are exactly those stepping gives.
///
/// # Examples
///
/// ```
/// use trio_dsp::osc::{fill_phases, phase_step, phase_to_unit};
/// let mut x = [0.0f32; trio_dsp::BLOCK];
/// fill_phases(0, phase_step(0.25), &mut x, |p| p);
/// assert_eq!(x[..5], [0.0, 0.25, 0.5, 0.75, 0.0]);
/// ```
#[inline(always)]
pub fn fill_phases(phase: u32, step: u32, x: &mut [f32; crate::BLOCK], f: impl Fn(f32) -> f32) {
    const { assert!(crate::BLOCK.is_multiple_of(4)) };
    let mut p: [u32; 4] = core::array::from_fn(|j| phase.wrapping_add(step.wrapping_mul(j as u32)));
    let step4 = step.wrapping_mul(4);
    for chunk in x.chunks_exact_mut(4) {
        for (v, &p) in chunk.iter_mut().zip(&p) {
            *v = f(phase_to_unit(p));
        }
        for p in &mut p {
            *p = p.wrapping_add(step4);
        }
    }
}

/// `x[k] = blep_saw(phase_to_unit(phase + k step), inv_inc) * amp` over a
/// [`BLOCK`](crate::BLOCK), bit for bit, in less work for most blocks: below a few kHz a
/// block usually holds no wrap and stays more than one increment away from it, where both
/// corrections of [`blep_saw`] are exactly 0 and the sample is exactly `2p - 1`; such a
/// block leaves them out. Within a block that does not wrap the phases rise, so the
/// correction before the wrap is largest at the first sample and the one after it at the
/// last (each is a monotone function of the phase, and so is every rounding on the way):
/// checking those two covers the block.
#[inline(always)]
pub fn blep_saw_block(phase: u32, step: u32, inv_inc: f32, amp: f32, x: &mut [f32; crate::BLOCK]) {
    let last = u64::from(phase) + (crate::BLOCK as u64 - 1) * u64::from(step);
    if let Ok(last) = u32::try_from(last) {
        let (first, last) = (phase_to_unit(phase), phase_to_unit(last));
        // Written as `blep_saw` computes them: not positive means its `pos` gives 0.
        if 1.0 - first * inv_inc <= 0.0 && 1.0 - (1.0 - last) * inv_inc <= 0.0 {
            fill_phases(phase, step, x, |p| (2.0 * p - 1.0) * amp);
            return;
        }
    }
    fill_phases(phase, step, x, |p| blep_saw(p, inv_inc) * amp);
}

/// Square as the difference of two PolyBLEP saws half a period apart:
/// `+1` for the first half of the period, `-1` for the second. Same
/// arguments as [`blep_saw`].
#[inline(always)]
pub fn blep_square(phase: f32, inv_inc: f32) -> f32 {
    let shifted = wrap(phase + 0.5);
    blep_saw(shifted, inv_inc) - blep_saw(phase, inv_inc)
}

/// Triangle with the two-sample polynomial BLAMP residual at both corners.
/// `phase` in `[0, 1)`, `inc` the phase increment (at most 0.25 for the
/// corner corrections not to overlap), `inv_inc = 1 / inc` (0 when stopped).
///
/// The naive triangle `4 |wrap(p + 3/4) - 1/2| - 1` changes slope by
/// `∓8 inc` per sample at its peak (phase 1/4) and trough (phase 3/4); the
/// integrated BLEP residual of a unit slope change is `(1 - |t|)^3 / 6` for
/// `|t| < 1` samples from the corner, so each corner gets that times its
/// slope change.
#[inline(always)]
pub fn blamp_triangle(phase: f32, inc: f32, inv_inc: f32) -> f32 {
    let q = wrap(phase + 0.75);
    let naive = 4.0 * (q - 0.5).abs() - 1.0;
    // Distance in samples to the peak (q = 0, circular) and trough (q = 1/2).
    let d_peak = if q < 0.5 { q } else { 1.0 - q } * inv_inc;
    let d_trough = (q - 0.5).abs() * inv_inc;
    let a = pos(1.0 - d_peak);
    let b = pos(1.0 - d_trough);
    naive + (8.0 / 6.0) * inc * (b * b * b - a * a * a)
}

/// The sawtooth without band limiting, `2p - 1` (a reference for
/// measurements).
#[inline(always)]
pub fn naive_saw(p: f32) -> f32 {
    2.0 * p - 1.0
}

/// `sin(2π p)` for `p` in `[0, 1)`, folded to `[-π/2, π/2]` and evaluated
/// with a degree-11 odd polynomial (error below 2e-6).
///
/// # Examples
///
/// ```
/// use trio_dsp::osc::sine;
/// assert!((sine(0.25) - 1.0).abs() < 2e-6);
/// assert!(sine(0.5).abs() < 2e-6);
/// ```
#[inline(always)]
pub fn sine(p: f32) -> f32 {
    // sin(2πp) = -sin(2πx) with x = p - 1/2 in [-1/2, 1/2).
    let x = p - 0.5;
    let ax = x.abs();
    let r = if ax > 0.25 { 0.5 - ax } else { ax };
    let y = if x < 0.0 { -r } else { r };
    let t = y * core::f32::consts::TAU;
    let t2 = t * t;
    let s = t
        * (1.0
            + t2 * (-1.0 / 6.0
                + t2 * (1.0 / 120.0 + t2 * (-1.0 / 5040.0 + t2 * (1.0 / 362_880.0 + t2 * (-1.0 / 39_916_800.0))))));
    -s
}

/// A phase-accumulator oscillator over the kernels of this module.
///
/// Each call to [`Oscillator::next_sample`] returns the waveform at the
/// current phase, then advances the phase by the increment
/// (`frequency / sample_rate`, at most [`MAX_INC`]), like the example synth's
/// voice loop: the phase is fixed point ([`phase_step`]), so it wraps by itself
/// and its pitch does not drift with rounding.
///
/// # Examples
///
/// ```
/// use trio_dsp::osc::{Oscillator, Waveform};
/// let mut osc = Oscillator::new(Waveform::Sine);
/// osc.set_frequency(12_000.0, 48_000.0); // a quarter cycle per sample
/// let s: Vec<f32> = (0..4).map(|_| osc.next_sample()).collect();
/// assert!(s[0].abs() < 1e-6 && (s[1] - 1.0).abs() < 1e-5 && (s[3] + 1.0).abs() < 1e-5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Oscillator {
    waveform: Waveform,
    /// Fixed point, see [`phase_step`].
    phase: u32,
    step: u32,
    inc: f32,
    inv_inc: f32,
}

impl Default for Oscillator {
    fn default() -> Self {
        Oscillator::new(Waveform::Saw)
    }
}

impl Oscillator {
    /// A stopped oscillator (frequency 0) at phase 0.
    pub fn new(waveform: Waveform) -> Self {
        Oscillator { waveform, phase: 0, step: 0, inc: 0.0, inv_inc: 0.0 }
    }

    /// Sets the frequency in Hz at `sample_rate` Hz. The increment
    /// `hz / sample_rate` is clamped to `0..=MAX_INC`; NaN frequencies and
    /// non-positive or NaN sample rates stop the oscillator.
    pub fn set_frequency(&mut self, hz: f32, sample_rate: f32) {
        let inc = if sample_rate > 0.0 { hz / sample_rate } else { 0.0 };
        self.set_increment(inc);
    }

    /// Sets the phase increment in cycles per sample directly (clamped to
    /// `0..=MAX_INC`, NaN gives 0).
    pub fn set_increment(&mut self, inc: f32) {
        let inc = crate::math::clamp_or(inc, 0.0, MAX_INC, 0.0);
        self.inc = inc;
        self.step = phase_step(inc);
        self.inv_inc = step_reciprocal(self.step);
    }

    /// The phase increment in cycles per sample.
    pub fn increment(&self) -> f32 {
        self.inc
    }

    /// Sets the waveform; takes effect on the next sample.
    pub fn set_waveform(&mut self, waveform: Waveform) {
        self.waveform = waveform;
    }

    /// The waveform.
    pub fn waveform(&self) -> Waveform {
        self.waveform
    }

    /// The phase in cycles, `[0, 1)`, of the next sample.
    pub fn phase(&self) -> f32 {
        phase_to_unit(self.phase)
    }

    /// Sets the phase in cycles; any finite value is reduced to `[0, 1)`,
    /// NaN and ±∞ give 0.
    pub fn set_phase(&mut self, phase: f32) {
        let p = if phase.is_finite() { phase.rem_euclid(1.0) } else { 0.0 };
        // `p < 1`, so the product is below 2^32 (a `p` that rounded to 1.0 wraps to 0).
        self.phase = (f64::from(p) * 4_294_967_296.0) as u64 as u32;
    }

    /// Sets the phase to 0 (the frequency is kept).
    pub fn reset(&mut self) {
        self.phase = 0;
    }

    /// The waveform value at the current phase, then advances the phase.
    #[inline]
    pub fn next_sample(&mut self) -> f32 {
        let p = phase_to_unit(self.phase);
        let s = match self.waveform {
            Waveform::Saw => blep_saw(p, self.inv_inc),
            Waveform::Square => blep_square(p, self.inv_inc),
            Waveform::Triangle => blamp_triangle(p, self.inc, self.inv_inc),
            Waveform::Sine => sine(p),
        };
        self.phase = self.phase.wrapping_add(self.step);
        s
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [f32]) {
        for y in out.iter_mut() {
            *y = self.next_sample();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block saw equals the per-sample kernel bit for bit, on blocks far from the
    /// wrap (the shortcut), across it, ending right before or at it, and stopped.
    #[test]
    fn blep_saw_block_equals_blep_saw() {
        let mut shortcuts = 0;
        for step in [0, 1, 257, phase_step(0.001), phase_step(0.01), phase_step(0.3), u32::MAX / 15] {
            let inv_inc = step_reciprocal(step);
            let span = step.wrapping_mul(crate::BLOCK as u32 - 1);
            let mut starts: Vec<u32> = (0..64u32).map(|i| i.wrapping_mul(0x0400_0001)).collect();
            for d in 0..4u32 {
                starts.extend([
                    0u32.wrapping_sub(span).wrapping_sub(step.wrapping_mul(d)),
                    u32::MAX.wrapping_sub(span).wrapping_add(d),
                ]);
            }
            for phase in starts {
                let mut x = [0.0f32; crate::BLOCK];
                blep_saw_block(phase, step, inv_inc, 0.7, &mut x);
                let mut p = phase;
                for (k, v) in x.iter().enumerate() {
                    let want = blep_saw(phase_to_unit(p), inv_inc) * 0.7;
                    assert_eq!(v.to_bits(), want.to_bits(), "phase {phase} step {step}, sample {k}");
                    p = p.wrapping_add(step);
                }
                let last = u64::from(phase) + 15 * u64::from(step);
                let corrections = |p: u32| blep_saw(phase_to_unit(p), inv_inc) != 2.0 * phase_to_unit(p) - 1.0;
                shortcuts += usize::from(
                    last <= u64::from(u32::MAX)
                        && !(0..16).any(|k| corrections(phase.wrapping_add(step.wrapping_mul(k)))),
                );
            }
        }
        assert!(shortcuts > 50, "{shortcuts} blocks without corrections");
    }
    use crate::test_util::{db, hann_power_spectrum};

    fn render(f: impl Fn(f32, f32, f32) -> f32, inc: f32, n: usize) -> Vec<f32> {
        let inv = 1.0 / inc;
        let mut p = 0.0f32;
        (0..n)
            .map(|_| {
                let s = f(p, inc, inv);
                p = wrap(p + inc);
                s
            })
            .collect()
    }

    /// Alias energy over harmonic energy, in dB. `m` is the fundamental's
    /// bin; `odd_only` for square and triangle.
    fn alias_db(x: &[f32], m: usize, odd_only: bool) -> f64 {
        let spec = hann_power_spectrum(x);
        let (mut harm, mut other) = (0.0, 0.0);
        for (k, e) in spec.iter().enumerate().skip(3) {
            let h = (k as f64 / m as f64).round() as usize;
            let near = h >= 1 && k.abs_diff(h * m) <= 2 && (!odd_only || h % 2 == 1);
            if near {
                harm += e;
            } else {
                other += e;
            }
        }
        10.0 * (other / harm).log10()
    }

    fn naive_square(p: f32) -> f32 {
        if p < 0.5 { 1.0 } else { -1.0 }
    }

    fn naive_triangle(p: f32) -> f32 {
        4.0 * (wrap(p + 0.75) - 0.5).abs() - 1.0
    }

    /// Measured alias-to-harmonic energy ratios in dB (band-limited,
    /// naive), as quoted in the module docs, per waveform and fundamental
    /// bin (of 8192 at 48 kHz).
    const ALIAS_TABLE: [(Waveform, usize, f64, f64); 12] = [
        (Waveform::Saw, 171, -31.3, -15.8),
        (Waveform::Saw, 449, -28.5, -11.7),
        (Waveform::Saw, 715, -23.8, -9.1),
        (Waveform::Saw, 1367, -16.7, -5.0),
        (Waveform::Square, 171, -33.8, -17.7),
        (Waveform::Square, 449, -32.5, -13.8),
        (Waveform::Square, 715, -29.2, -11.4),
        (Waveform::Square, 1367, -16.6, -6.3),
        (Waveform::Triangle, 171, -61.7, -49.3),
        (Waveform::Triangle, 449, -53.1, -37.9),
        (Waveform::Triangle, 715, -45.9, -31.4),
        (Waveform::Triangle, 1367, -26.1, -18.3),
    ];

    #[test]
    fn alias_rejection() {
        const N: usize = 8192;
        // Odd bins: exactly periodic in the window, and the first aliases
        // land 16, 110, 327 and 10 bins from the nearest harmonic (bin 1365,
        // i.e. 7998 Hz, would put them within 2 bins and hide them).
        // 48000 / 8192 = 5.859375 Hz per bin.
        for (w, m, bl_want, naive_want) in ALIAS_TABLE {
            let inc = m as f32 / N as f32;
            let hz = m as f64 * 48_000.0 / N as f64;
            let (bl, naive, odd) = match w {
                Waveform::Saw => {
                    (render(|p, _, i| blep_saw(p, i), inc, N), render(|p, _, _| naive_saw(p), inc, N), false)
                }
                Waveform::Square => {
                    (render(|p, _, i| blep_square(p, i), inc, N), render(|p, _, _| naive_square(p), inc, N), true)
                }
                _ => (render(blamp_triangle, inc, N), render(|p, _, _| naive_triangle(p), inc, N), true),
            };
            let a = alias_db(&bl, m, odd);
            let b = alias_db(&naive, m, odd);
            println!("alias {w:?} {hz:.1} Hz: band-limited {a:.1} dB, naive {b:.1} dB");
            assert!((a - bl_want).abs() < 0.1 && (b - naive_want).abs() < 0.1, "{w:?} {hz} Hz: {a} / {b}");
            // Band limiting gains at least 10 dB (7 dB for the triangle at
            // 8 kHz, where the naive triangle is already fairly clean).
            let margin = if w == Waveform::Triangle && m == 1367 { 7.0 } else { 10.0 };
            assert!(a < b - margin, "{w:?} at {hz} Hz: {a} dB vs naive {b} dB");
        }
    }

    #[test]
    fn sine_is_accurate() {
        for i in 0..10_000 {
            let p = i as f32 / 10_000.0;
            let want = (std::f64::consts::TAU * p as f64).sin();
            let got = sine(p) as f64;
            assert!((got - want).abs() < 2e-6, "p={p} got {got} want {want}");
        }
    }

    #[test]
    fn saw_and_square_stay_bounded_and_continuous_at_wrap() {
        let inc = 0.01f32;
        let inv = 1.0 / inc;
        let mut p = 0.0f32;
        for _ in 0..1000 {
            let s = blep_saw(p, inv);
            let q = blep_square(p, inv);
            assert!(s.abs() <= 1.0 && q.abs() <= 1.0001, "p={p} saw={s} sq={q}");
            p = wrap(p + inc);
        }
        // Exactly at the wrap the saw sits at the midpoint of the step.
        assert_eq!(blep_saw(0.0, inv), 0.0);
        // A stopped oscillator (inv 0) stays finite.
        assert!(blep_saw(0.0, 0.0).is_finite());
        assert!(blamp_triangle(0.0, 0.0, 0.0).is_finite());
    }

    #[test]
    fn square_matches_the_synth_formula() {
        // `SquareOsc::sample` of the example synth, written out.
        let inv = 1.0 / 0.013f32;
        for i in 0..1000 {
            let p = i as f32 / 1000.0;
            let want = blep_saw(wrap(p + 0.5), inv) - blep_saw(p, inv);
            assert_eq!(blep_square(p, inv).to_bits(), want.to_bits());
        }
    }

    #[test]
    fn triangle_shape_and_corner_rounding() {
        let inc = 0.01f32;
        let inv = 1.0 / inc;
        // Away from the corners the triangle is the naive one exactly.
        for p in [0.0f32, 0.1, 0.4, 0.5, 0.6, 0.9] {
            assert_eq!(blamp_triangle(p, inc, inv), naive_triangle(p), "p={p}");
        }
        // At the peak the correction is -8 inc / 6.
        let peak = blamp_triangle(0.25, inc, inv);
        assert!((peak - (1.0 - 8.0 * 0.01 / 6.0)).abs() < 1e-6, "peak {peak}");
        let trough = blamp_triangle(0.75, inc, inv);
        assert!((trough + (1.0 - 8.0 * 0.01 / 6.0)).abs() < 1e-6, "trough {trough}");
        // Mean over a period is 0 and the signal stays within ±1.
        let x = render(blamp_triangle, 1.0 / 64.0, 64);
        let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / 64.0;
        assert!(mean.abs() < 1e-6, "mean {mean}");
        assert!(x.iter().all(|v| v.abs() <= 1.0));
    }

    #[test]
    fn phase_step_rounds_to_the_nearest_step() {
        // 1.5 steps rounds up (truncating would give 1), 1.25 down.
        assert_eq!(phase_step(1.5 / 4_294_967_296.0), 2);
        assert_eq!(phase_step(1.25 / 4_294_967_296.0), 1);
        let mut worst = 0.0f64;
        for i in 1..10_000u32 {
            let inc = i as f32 * (MAX_INC / 10_000.0);
            let exact = f64::from(inc) * 4_294_967_296.0;
            worst = worst.max((f64::from(phase_step(inc)) - exact).abs());
        }
        assert!(worst <= 0.5, "{worst}");
        assert_eq!(phase_step(f32::NAN), 0);
        assert_eq!(phase_step(-0.1), 0);
        // The unit phase is exact and below 1.
        assert_eq!(phase_to_unit(u32::MAX), 1.0 - 1.0 / 16_777_216.0);
        assert_eq!(phase_to_unit(1 << 31), 0.5);
    }

    #[test]
    fn oscillator_matches_kernels_and_sanitises() {
        let mut o = Oscillator::new(Waveform::Saw);
        o.set_frequency(440.0, 48_000.0);
        let inc = 440.0f32 / 48_000.0;
        assert_eq!(o.increment(), inc);
        // The kernel at the fixed-point phase, with the reciprocal of the fixed-point step.
        let step = phase_step(inc);
        let inv_inc = 4_294_967_296.0 / step as f32;
        assert!((inv_inc * inc - 1.0).abs() < 1e-6);
        let mut p = 0u32;
        for _ in 0..500 {
            assert_eq!(o.next_sample().to_bits(), blep_saw(phase_to_unit(p), inv_inc).to_bits());
            p = p.wrapping_add(step);
        }
        assert_eq!(o.phase(), phase_to_unit(step.wrapping_mul(500)));
        // Exactly: after a million samples the phase stands a million steps on.
        for _ in 500..1_000_000 {
            o.next_sample();
        }
        assert_eq!(o.phase(), phase_to_unit(step.wrapping_mul(1_000_000)));
        o.set_frequency(f32::NAN, 48_000.0);
        assert_eq!(o.increment(), 0.0);
        o.set_frequency(1e9, 48_000.0);
        assert_eq!(o.increment(), MAX_INC);
        o.set_frequency(440.0, 0.0);
        assert_eq!(o.increment(), 0.0);
        o.set_phase(-0.25);
        assert_eq!(o.phase(), 0.75);
        o.set_phase(f32::INFINITY);
        assert_eq!(o.phase(), 0.0);
        for w in [Waveform::Saw, Waveform::Square, Waveform::Triangle, Waveform::Sine] {
            o.set_waveform(w);
            o.set_increment(MAX_INC);
            for _ in 0..1000 {
                let s = o.next_sample();
                assert!(s.is_finite() && s.abs() <= 1.5, "{w:?} {s}");
                assert!((0.0..1.0).contains(&o.phase()));
            }
        }
    }

    #[test]
    fn oscillator_frequency_is_exact() {
        // 1.5 kHz at 48 kHz: increment 1/32 (exact in f32), so the phase
        // is exact: zero crossings every 16 samples, peaks of exactly ±1
        // (to the polynomial's 2e-6) at samples 8 and 24 of each period.
        let mut o = Oscillator::new(Waveform::Sine);
        o.set_frequency(1500.0, 48_000.0);
        let mut buf = [0.0f32; 4800];
        o.fill(&mut buf);
        let peak = buf.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((db(peak as f64)).abs() < 2e-5, "peak {peak}");
        for k in 0..300 {
            assert!(buf[16 * k].abs() < 2e-6, "k={k} {}", buf[16 * k]);
            assert!((buf[16 * k + 8].abs() - 1.0).abs() < 2e-6);
        }
        // The saw's period is 32 samples exactly.
        o.set_waveform(Waveform::Saw);
        o.fill(&mut buf);
        assert!((0..4700).all(|i| buf[i] == buf[i + 32]));
    }
}
