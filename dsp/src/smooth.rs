//! Parameter smoothing: a linear ramp ([`Smoother`], the example synth's,
//! with the same arithmetic) and a one-pole exponential smoother
//! ([`OnePole`]).

use crate::math::{clamp_or, sanitize_sample_rate};

/// A linear-ramp smoother: a new target is reached in a fixed number of
/// steps, then held exactly. Setting the same target again does not restart
/// the ramp, so hosts may resend unchanged parameters every block.
///
/// Advanced once per sample (gain, bypass fade) or once per control period
/// (cutoff, resonance); the step count is chosen accordingly. Non-finite
/// values given to [`Smoother::new`] (which then starts at 0),
/// [`Smoother::set_target`] and [`Smoother::reset_to`] are ignored; finite
/// values behave exactly as in the example synth.
///
/// # Examples
///
/// ```
/// use trio_dsp::smooth::Smoother;
/// let mut s = Smoother::new(0.0, 4);
/// s.set_target(1.0);
/// let v: Vec<f32> = (0..6).map(|_| s.next_value()).collect();
/// assert_eq!(v, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Smoother {
    current: f32,
    target: f32,
    step: f32,
    remaining: u32,
    steps: u32,
}

impl Smoother {
    /// A smoother resting at `value` that ramps over `steps` steps (0 counts
    /// as 1).
    pub fn new(value: f32, steps: u32) -> Self {
        let value = if value.is_finite() { value } else { 0.0 };
        Smoother { current: value, target: value, step: 0.0, remaining: 0, steps }
    }

    /// Number of steps needed to ramp over `time_s` seconds when advanced at
    /// `rate_hz` (at least 1; NaN gives 1).
    pub fn steps_for(time_s: f32, rate_hz: f32) -> u32 {
        let s = (time_s * rate_hz).round();
        if s >= 1.0 { s.min(u32::MAX as f32) as u32 } else { 1 }
    }

    /// Changes the ramp length used by later targets.
    pub fn set_steps(&mut self, steps: u32) {
        self.steps = steps.max(1);
    }

    /// Starts a ramp from the current value to `target` (no-op if `target`
    /// is already the target or is not finite).
    pub fn set_target(&mut self, target: f32) {
        if !target.is_finite() || target == self.target {
            return;
        }
        self.target = target;
        self.remaining = self.steps.max(1);
        self.step = (target - self.current) / self.remaining as f32;
    }

    /// Jumps to the target immediately.
    pub fn snap(&mut self) {
        self.current = self.target;
        self.remaining = 0;
    }

    /// Jumps to `value` and makes it the target (ignored if not finite).
    pub fn reset_to(&mut self, value: f32) {
        if !value.is_finite() {
            return;
        }
        self.target = value;
        self.snap();
    }

    /// Advances one step and returns the new value.
    #[inline]
    pub fn next_value(&mut self) -> f32 {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.current = if self.remaining == 0 { self.target } else { self.current + self.step };
        }
        self.current
    }

    /// Current value.
    pub fn value(&self) -> f32 {
        self.current
    }

    /// Target value.
    pub fn target(&self) -> f32 {
        self.target
    }

    /// Whether a ramp is in progress.
    pub fn is_ramping(&self) -> bool {
        self.remaining > 0
    }

    /// Multiplies each sample of `buf` by the next value of the smoother
    /// (one step per sample). When no ramp is in progress this is a plain
    /// scale by the (exact) current value.
    pub fn apply_gain(&mut self, buf: &mut [f32]) {
        if !self.is_ramping() {
            crate::buffer::scale(buf, self.current);
            return;
        }
        for x in buf.iter_mut() {
            *x *= self.next_value();
        }
    }
}

/// A one-pole exponential smoother (first-order low-pass):
/// `y[n] = x + a (y[n-1] - x)` with `a = e^(-1 / (time_s · fs))`, so a step
/// covers `1 - 1/e` (63.2 %) of the distance in `time_s`.
///
/// The state is kept in f64: in f32 the recurrence stops moving once
/// `(1 - a) · |y - x|` is below half an ulp, which for a 1 s time constant
/// at 48 kHz leaves it stuck 0.15 % short of the target. In f64 the stall
/// distance is below 1e-11 relative; when the value stops changing (or is
/// within 1e-30) it is set to the target exactly.
///
/// # Examples
///
/// ```
/// use trio_dsp::smooth::OnePole;
/// let mut s = OnePole::new(0.01, 48_000.0); // 10 ms time constant
/// s.set_target(1.0);
/// let mut y = 0.0;
/// for _ in 0..480 {
///     y = s.next_value();
/// }
/// assert!((y - (1.0 - (-1.0f32).exp())).abs() < 1e-4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnePole {
    a: f64,
    y: f64,
    target: f64,
}

impl OnePole {
    /// A smoother at rest at 0 with time constant `time_s` seconds (clamped
    /// to `0..=3600`, NaN gives 0 = no smoothing) at `sample_rate` Hz.
    pub fn new(time_s: f32, sample_rate: f32) -> Self {
        let mut s = OnePole { a: 0.0, y: 0.0, target: 0.0 };
        s.set_time(time_s, sample_rate);
        s
    }

    /// Changes the time constant (seconds) and sample rate (Hz); the value
    /// is kept.
    pub fn set_time(&mut self, time_s: f32, sample_rate: f32) {
        let t = f64::from(clamp_or(time_s, 0.0, 3600.0, 0.0));
        let sr = f64::from(sanitize_sample_rate(sample_rate));
        self.a = if t > 0.0 { (-1.0 / (t * sr)).exp() } else { 0.0 };
    }

    /// The per-sample coefficient `a`.
    pub fn coef(&self) -> f64 {
        self.a
    }

    /// Sets the value the smoother moves towards (ignored if not finite).
    pub fn set_target(&mut self, target: f32) {
        if target.is_finite() {
            self.target = f64::from(target);
        }
    }

    /// Jumps to `value` and makes it the target (ignored if not finite).
    pub fn reset_to(&mut self, value: f32) {
        if value.is_finite() {
            self.target = f64::from(value);
            self.y = self.target;
        }
    }

    /// Advances one sample towards the target and returns the new value.
    #[inline]
    pub fn next_value(&mut self) -> f32 {
        let d = self.y - self.target;
        let y = self.target + self.a * d;
        self.y = if d.abs() < 1e-30 || y == self.y { self.target } else { y };
        self.y as f32
    }

    /// Sets the target to `x` (ignored if not finite) and advances one
    /// sample: the smoother used as a low-pass filter.
    #[inline]
    pub fn process(&mut self, x: f32) -> f32 {
        self.set_target(x);
        self.next_value()
    }

    /// Current value.
    pub fn value(&self) -> f32 {
        self.y as f32
    }

    /// Target value.
    pub fn target(&self) -> f32 {
        self.target as f32
    }

    /// Multiplies each sample of `buf` by the next value of the smoother.
    pub fn apply_gain(&mut self, buf: &mut [f32]) {
        for x in buf.iter_mut() {
            *x *= self.next_value();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example synth's Smoother tests.

    #[test]
    fn ramps_linearly_and_lands_exactly() {
        let mut s = Smoother::new(0.0, 4);
        s.set_target(1.0);
        let v: Vec<f32> = (0..6).map(|_| s.next_value()).collect();
        assert_eq!(v, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
        assert!(!s.is_ramping());
    }

    #[test]
    fn same_target_does_not_restart() {
        let mut s = Smoother::new(0.0, 4);
        s.set_target(1.0);
        s.next_value();
        s.set_target(1.0);
        s.next_value();
        s.next_value();
        assert_eq!(s.next_value(), 1.0);
    }

    #[test]
    fn retarget_mid_ramp_starts_from_current_value() {
        let mut s = Smoother::new(0.0, 2);
        s.set_target(1.0);
        assert_eq!(s.next_value(), 0.5);
        s.set_target(0.0);
        assert_eq!(s.next_value(), 0.25);
        assert_eq!(s.next_value(), 0.0);
    }

    #[test]
    fn steps_for_rounds_and_is_at_least_one() {
        assert_eq!(Smoother::steps_for(0.01, 48_000.0), 480);
        assert_eq!(Smoother::steps_for(0.0, 48_000.0), 1);
        assert_eq!(Smoother::steps_for(f32::NAN, 48_000.0), 1);
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut s = Smoother::new(f32::NAN, 4);
        assert_eq!(s.value(), 0.0);
        s.set_target(f32::INFINITY);
        s.reset_to(f32::NAN);
        assert_eq!((s.value(), s.target(), s.is_ramping()), (0.0, 0.0, false));
    }

    #[test]
    fn smoother_gain_ramp_over_a_buffer() {
        let mut s = Smoother::new(0.0, 8);
        s.set_target(1.0);
        let mut buf = [2.0f32; 12];
        s.apply_gain(&mut buf);
        let want: Vec<f32> = (1..=12).map(|i| 2.0 * (i.min(8) as f32 / 8.0)).collect();
        assert_eq!(buf.to_vec(), want);
        let mut buf = [3.0f32; 4];
        s.apply_gain(&mut buf);
        assert_eq!(buf, [3.0; 4]);
    }

    // OnePole.

    #[test]
    fn one_pole_reaches_63_percent_in_the_time_constant() {
        for (t, sr) in [(0.01f32, 48_000.0f32), (0.05, 44_100.0), (0.001, 96_000.0)] {
            let mut s = OnePole::new(t, sr);
            s.set_target(1.0);
            let n = (t * sr).round() as usize;
            let mut y = 0.0;
            for _ in 0..n {
                y = s.next_value();
            }
            // Exactly n = t·sr samples (all three are integers): 1 - 1/e.
            let want = 1.0 - (-1.0f64).exp();
            assert!((y as f64 - want).abs() < 2e-5, "t={t}: {y} vs {want}");
            // And 5 time constants: 99.33 %.
            for _ in 0..4 * n {
                y = s.next_value();
            }
            assert!((y as f64 - (1.0 - (-5.0f64).exp())).abs() < 1e-4, "{y}");
        }
    }

    #[test]
    fn one_pole_lands_exactly_and_sanitises() {
        // Long and short time constants both land exactly on the target.
        for (t, n) in [(0.001f32, 20_000usize), (1.0, 2_000_000)] {
            let mut s = OnePole::new(t, 48_000.0);
            s.reset_to(1.0);
            s.set_target(0.25);
            for _ in 0..n {
                s.next_value();
            }
            assert_eq!(s.value(), 0.25, "t={t}");
        }
        let mut s = OnePole::new(0.001, 48_000.0);
        s.reset_to(0.25);
        s.set_target(0.0);
        for _ in 0..200_000 {
            s.next_value();
        }
        assert_eq!(s.value(), 0.0);
        s.process(f32::NAN);
        assert_eq!(s.target(), 0.0);
        let mut z = OnePole::new(f32::NAN, f32::NAN);
        assert_eq!(z.coef(), 0.0);
        assert_eq!(z.process(0.7), 0.7);
        let mut g = OnePole::new(0.0001, 48_000.0);
        g.set_target(1.0);
        let mut buf = [1.0f32; 4];
        g.apply_gain(&mut buf);
        assert!(buf[0] > 0.0 && buf.windows(2).all(|w| w[1] > w[0]));
    }
}
