//! Oscillators: PolyBLEP saw and square, and a polynomial sine.
//!
//! Every oscillator is a pure function of the phase (in `[0, 1)`) and the
//! reciprocal of the phase increment, written without branches so that the
//! voice loop vectorises across voices.

/// The oscillator waveform, shared by all voices. Switching it takes effect
/// on the next rendered sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Waveform {
    /// Band-limited (PolyBLEP) rising sawtooth.
    #[default]
    Saw,
    /// Band-limited (PolyBLEP) square, 50 % duty cycle.
    Square,
    /// Sine.
    Sine,
}

/// A waveform kernel used by the monomorphised voice loop.
pub(crate) trait Oscillator {
    /// One output sample for `phase` in `[0, 1)`; `inv_inc` is `1 / increment`
    /// (0 for a silent lane).
    fn sample(phase: f32, inv_inc: f32) -> f32;
}

/// PolyBLEP sawtooth kernel.
pub(crate) struct SawOsc;
/// PolyBLEP square kernel.
pub(crate) struct SquareOsc;
/// Sine kernel.
pub(crate) struct SineOsc;

/// `max(x, 0)` written so that it lowers to a single `maxps`.
#[inline(always)]
fn pos(x: f32) -> f32 {
    if x > 0.0 { x } else { 0.0 }
}

/// Wraps a phase that is in `[0, 2)` back to `[0, 1)`.
#[inline(always)]
pub(crate) fn wrap(p: f32) -> f32 {
    p - if p >= 1.0 { 1.0 } else { 0.0 }
}

/// Sawtooth `2p - 1` with the two-sample polynomial BLEP residual applied on
/// both sides of the wrap. With `t = p / inc` just after the wrap the
/// correction is `(1 - t)^2`, and with `t = (1 - p) / inc` just before it the
/// correction is `-(1 - t)^2`, both written with a clamp instead of a branch.
#[inline(always)]
pub(crate) fn blep_saw(p: f32, inv_inc: f32) -> f32 {
    let a = pos(1.0 - p * inv_inc);
    let b = pos(1.0 - (1.0 - p) * inv_inc);
    (2.0 * p - 1.0) + (a * a - b * b)
}

/// The same saw without band limiting (only used as a reference).
#[cfg(test)]
pub(crate) fn naive_saw(p: f32) -> f32 {
    2.0 * p - 1.0
}

/// `sin(2π p)` for `p` in `[0, 1)`, folded to `[-π/2, π/2]` and evaluated
/// with a degree-11 odd polynomial (error below 1e-6).
#[inline(always)]
pub(crate) fn sine(p: f32) -> f32 {
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

impl Oscillator for SawOsc {
    #[inline(always)]
    fn sample(phase: f32, inv_inc: f32) -> f32 {
        blep_saw(phase, inv_inc)
    }
}

impl Oscillator for SquareOsc {
    /// Difference of two PolyBLEP saws half a period apart: `+1` for the
    /// first half of the period, `-1` for the second.
    #[inline(always)]
    fn sample(phase: f32, inv_inc: f32) -> f32 {
        let shifted = wrap(phase + 0.5);
        blep_saw(shifted, inv_inc) - blep_saw(phase, inv_inc)
    }
}

impl Oscillator for SineOsc {
    #[inline(always)]
    fn sample(phase: f32, _inv_inc: f32) -> f32 {
        sine(phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Magnitude spectrum (bins `0..n/2`) of a Hann-windowed signal, by a
    /// plain DFT in f64.
    fn spectrum(x: &[f32]) -> Vec<f64> {
        let n = x.len();
        let w: Vec<f64> = (0..n)
            .map(|i| {
                let h = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
                h * x[i] as f64
            })
            .collect();
        (0..n / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                let step = std::f64::consts::TAU * k as f64 / n as f64;
                for (i, v) in w.iter().enumerate() {
                    let a = step * i as f64;
                    re += v * a.cos();
                    im -= v * a.sin();
                }
                re * re + im * im
            })
            .collect()
    }

    fn render(f: impl Fn(f32, f32) -> f32, freq: f32, sr: f32, n: usize) -> Vec<f32> {
        let inc = freq / sr;
        let inv = 1.0 / inc;
        let mut p = 0.0f32;
        (0..n)
            .map(|_| {
                let s = f(p, inv);
                p = wrap(p + inc);
                s
            })
            .collect()
    }

    /// Energy outside the harmonic bins (and DC) divided by the energy in them.
    fn alias_ratio(x: &[f32], freq: f32, sr: f32) -> f64 {
        let spec = spectrum(x);
        let n = x.len() as f64;
        let bin_hz = sr as f64 / n;
        let (mut harm, mut other) = (0.0, 0.0);
        for (k, e) in spec.iter().enumerate().skip(3) {
            let f = k as f64 * bin_hz;
            let h = (f / freq as f64).round();
            let near = h >= 1.0 && (f - h * freq as f64).abs() <= 3.0 * bin_hz;
            if near {
                harm += e;
            } else {
                other += e;
            }
        }
        other / harm
    }

    #[test]
    fn polyblep_saw_aliases_far_less_than_naive() {
        let sr = 48_000.0;
        let freq = 440.0 * 2f32.powf((100.0 - 69.0) / 12.0);
        let blep = render(blep_saw, freq, sr, 4096);
        let naive = render(|p, _| naive_saw(p), freq, sr, 4096);
        let rb = alias_ratio(&blep, freq, sr);
        let rn = alias_ratio(&naive, freq, sr);
        assert!(rb * 10.0 < rn, "polyblep {rb:e} vs naive {rn:e}");
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
            let q = SquareOsc::sample(p, inv);
            assert!(s.abs() <= 1.0 && q.abs() <= 1.0001, "p={p} saw={s} sq={q}");
            p = wrap(p + inc);
        }
        // Exactly at the wrap the saw sits at the midpoint of the step.
        assert_eq!(blep_saw(0.0, inv), 0.0);
        // A silent lane (inv 0) must stay finite.
        assert!(blep_saw(0.0, 0.0).is_finite());
    }
}
