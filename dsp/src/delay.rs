//! Fractional delay line with a capacity fixed at construction.
//!
//! [`DelayLine::push`] appends a sample; [`DelayLine::read`]`(d)` returns
//! the signal `d` samples before the most recently pushed sample, so
//! `read(0.0)` is that sample and, after pushing `x[n]`, `read(d)` is
//! `x[n - d]`. Fractional delays are interpolated:
//!
//! * [`Interpolation::Linear`]: `x0 + t (x1 - x0)`; error for a sine of
//!   `ω` rad/sample at most `t (1 - t) ω² / 2` (relative to its amplitude);
//! * [`Interpolation::Cubic`]: 4-point, 3rd-order Hermite (Catmull-Rom),
//!   exact for quadratics; error `O(ω³)`.
//!
//! Integer delays return the stored sample bit for bit with either
//! interpolation. The delay is clamped to `[0, capacity]` (NaN gives 0).
//!
//! # Accuracy (measured)
//!
//! A unit sine delayed by 10.37 samples, against the analytically delayed
//! sine (worst absolute error over 20 000 samples):
//!
//! | frequency (48 kHz) | linear  | theory `t (1 - t) ω² / 2` | cubic   |
//! |--------------------|---------|---------------------------|---------|
//! | 200 Hz             | 7.99e-5 | 7.99e-5                   | 2.0e-7 (f32 rounding) |
//! | 2 kHz              | 7.92e-3 | 7.99e-3                   | 2.0e-4  |
//!
//! The test `fractional_delay_of_a_sine` asserts these.

use crate::math::sanitize_sample;

/// Interpolation used by [`DelayLine::read`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Interpolation {
    /// Two-point linear interpolation.
    #[default]
    Linear,
    /// Four-point, third-order Hermite (Catmull-Rom) interpolation.
    Cubic,
}

/// A delay line holding up to `capacity` samples of delay.
///
/// # Examples
///
/// A feedback echo of 2.5 samples (read before push, so the read delay is
/// one less than the loop delay):
///
/// ```
/// use trio_dsp::delay::{DelayLine, Interpolation};
/// let mut dl = DelayLine::new(16);
/// dl.set_interpolation(Interpolation::Linear);
/// let mut out = Vec::new();
/// for n in 0..8 {
///     let x = if n == 0 { 1.0 } else { 0.0 };
///     let echo = dl.read(2.5 - 1.0);
///     dl.push(x + 0.5 * echo);
///     out.push(x + echo);
/// }
/// assert_eq!(out, [1.0, 0.0, 0.5, 0.5, 0.125, 0.25, 0.15625, 0.09375]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DelayLine {
    buf: Vec<f32>,
    mask: usize,
    /// Index of the most recently pushed sample.
    pos: usize,
    capacity: usize,
    interp: Interpolation,
}

/// Extra samples kept beyond the capacity for the cubic interpolator.
const GUARD: usize = 3;

impl DelayLine {
    /// A silent line for delays up to `max_delay_samples` (clamped to
    /// 2^28); allocates the buffer (the next power of two above
    /// `max_delay_samples + 3` samples). Linear interpolation.
    pub fn new(max_delay_samples: usize) -> Self {
        let capacity = max_delay_samples.min(1 << 28);
        let len = (capacity + GUARD + 1).next_power_of_two();
        DelayLine { buf: vec![0.0; len], mask: len - 1, pos: 0, capacity, interp: Interpolation::Linear }
    }

    /// The longest delay in samples.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Selects the interpolation of [`DelayLine::read`].
    pub fn set_interpolation(&mut self, interp: Interpolation) {
        self.interp = interp;
    }

    /// The interpolation of [`DelayLine::read`].
    pub fn interpolation(&self) -> Interpolation {
        self.interp
    }

    /// Sets every stored sample to 0.
    pub fn clear(&mut self) {
        self.buf.fill(0.0);
    }

    /// Appends a sample (NaN and ±∞ are stored as 0, magnitudes above
    /// `MAX_SAMPLE` clamped).
    #[inline]
    pub fn push(&mut self, x: f32) {
        self.pos = (self.pos + 1) & self.mask;
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = sanitize_sample(x);
        }
    }

    /// The sample pushed `k` pushes before the last one (`k` clamped to
    /// `capacity + 3`).
    #[inline(always)]
    fn at(&self, k: usize) -> f32 {
        let k = k.min(self.capacity + GUARD);
        self.buf.get(self.pos.wrapping_sub(k) & self.mask).copied().unwrap_or(0.0)
    }

    /// The signal `delay` samples back with the selected interpolation;
    /// `delay` is clamped to `[0, capacity]`, NaN gives 0.
    #[inline]
    pub fn read(&self, delay: f32) -> f32 {
        match self.interp {
            Interpolation::Linear => self.read_linear(delay),
            Interpolation::Cubic => self.read_cubic(delay),
        }
    }

    /// The sample `delay` pushes back, exactly (clamped to `capacity`).
    #[inline]
    pub fn read_integer(&self, delay: usize) -> f32 {
        self.at(delay.min(self.capacity))
    }

    /// Splits a clamped delay into an integer part and a fraction in
    /// `[0, 1)`.
    #[inline(always)]
    fn split(&self, delay: f32) -> (usize, f32) {
        let cap = self.capacity as f32;
        let d = if delay > 0.0 { delay } else { 0.0 }; // NaN → 0
        let d = if d < cap { d } else { cap };
        let i = d.floor();
        let t = d - i;
        let i = i as usize;
        if i >= self.capacity { (self.capacity, 0.0) } else { (i, t) }
    }

    /// Linear interpolation, whatever the selected mode.
    #[inline]
    pub fn read_linear(&self, delay: f32) -> f32 {
        let (i, t) = self.split(delay);
        let x0 = self.at(i);
        if t == 0.0 {
            return x0;
        }
        let x1 = self.at(i + 1);
        x0 + t * (x1 - x0)
    }

    /// Cubic (Hermite) interpolation, whatever the selected mode. Below one
    /// sample of delay the missing newer sample is taken equal to the
    /// newest.
    #[inline]
    pub fn read_cubic(&self, delay: f32) -> f32 {
        let (i, t) = self.split(delay);
        let x0 = self.at(i);
        if t == 0.0 {
            return x0;
        }
        let xm1 = self.at(i.saturating_sub(1));
        let x1 = self.at(i + 1);
        let x2 = self.at(i + 2);
        let c1 = 0.5 * (x1 - xm1);
        let c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2;
        let c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1);
        ((c3 * t + c2) * t + c1) * t + x0
    }

    /// Pushes `x`, then returns [`DelayLine::read`]`(delay)` (so a delay of
    /// 0 passes `x` through).
    #[inline]
    pub fn process(&mut self, x: f32, delay: f32) -> f32 {
        self.push(x);
        self.read(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Lcg;

    #[test]
    fn integer_delays_are_exact() {
        let mut dl = DelayLine::new(100);
        let mut rng = Lcg(1);
        let xs: Vec<f32> = (0..1000).map(|_| rng.next_f32()).collect();
        for (n, &x) in xs.iter().enumerate() {
            dl.push(x);
            for d in [0usize, 1, 7, 50, 100] {
                let want = if n >= d { xs[n - d] } else { 0.0 };
                for interp in [Interpolation::Linear, Interpolation::Cubic] {
                    dl.set_interpolation(interp);
                    assert_eq!(dl.read(d as f32).to_bits(), want.to_bits());
                }
                assert_eq!(dl.read_integer(d).to_bits(), want.to_bits());
            }
        }
    }

    /// Worst error of reading a sine of `w` rad/sample at `delay`.
    fn sine_error(interp: Interpolation, w: f64, delay: f32) -> f64 {
        let mut dl = DelayLine::new(64);
        dl.set_interpolation(interp);
        let mut worst = 0.0f64;
        for n in 0..20_000 {
            dl.push((w * n as f64).sin() as f32);
            if n > 100 {
                let want = (w * (n as f64 - delay as f64)).sin();
                worst = worst.max((dl.read(delay) as f64 - want).abs());
            }
        }
        worst
    }

    #[test]
    fn fractional_delay_of_a_sine() {
        let tau = std::f64::consts::TAU;
        let d = 10.37f32;
        let t = 0.37f64;
        for (hz, cubic_want) in [(200.0, 2.0e-7), (2000.0, 2.04e-4)] {
            let w = tau * hz / 48_000.0;
            let lin = sine_error(Interpolation::Linear, w, d);
            let cub = sine_error(Interpolation::Cubic, w, d);
            // Linear: the bound t(1-t)w²/2 is reached at the sine's peaks.
            let bound = t * (1.0 - t) * w * w / 2.0;
            println!("delay {hz} Hz: linear {lin:.2e} (theory {bound:.2e}), cubic {cub:.2e}");
            assert!(lin <= bound * 1.05 + 1e-6 && lin >= bound * 0.75, "linear {lin} vs {bound}");
            assert!(cub <= cubic_want * 1.25 && cub < lin / 8.0, "cubic {cub}");
        }
    }

    #[test]
    fn delay_is_clamped() {
        let mut dl = DelayLine::new(10);
        for i in 0..50 {
            dl.push(i as f32);
        }
        for interp in [Interpolation::Linear, Interpolation::Cubic] {
            dl.set_interpolation(interp);
            assert_eq!(dl.read(-3.0), 49.0);
            assert_eq!(dl.read(f32::NAN), 49.0);
            assert_eq!(dl.read(10.0), 39.0);
            assert_eq!(dl.read(10.5), 39.0);
            assert_eq!(dl.read(f32::INFINITY), 39.0);
            assert_eq!(dl.read(1e30), 39.0);
            // A ramp is interpolated exactly by both.
            assert!((dl.read(9.25) - 39.75).abs() < 1e-5);
            assert!((dl.read(0.5) - 48.5).abs() < 1e-5 || interp == Interpolation::Cubic);
        }
        assert_eq!(dl.read_integer(1000), 39.0);
        assert_eq!(dl.capacity(), 10);
    }

    #[test]
    fn no_growth_and_clear() {
        let mut dl = DelayLine::new(1000);
        let len = dl.buf.len();
        assert_eq!(len, 1024);
        for i in 0..100_000 {
            dl.process(i as f32, 999.5);
        }
        assert_eq!(dl.buf.len(), len);
        assert_eq!(dl.buf.capacity(), len);
        dl.clear();
        assert_eq!(dl.read(500.0), 0.0);
        dl.push(f32::NAN);
        assert_eq!(dl.read(0.0), 0.0);
        let tiny = DelayLine::new(0);
        assert_eq!(tiny.read(5.0), 0.0);
    }
}
