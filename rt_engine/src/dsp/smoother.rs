//! Parameter smoothing.

/// A linear-ramp smoother: a new target is reached in a fixed number of
/// steps, then held exactly. Setting the same target again does not restart
/// the ramp, so hosts may resend unchanged parameters every block.
///
/// Advanced once per sample (gain, bypass fade) or once per control period
/// (cutoff, resonance); the step count is chosen accordingly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Smoother {
    current: f32,
    target: f32,
    step: f32,
    remaining: u32,
    steps: u32,
}

impl Smoother {
    /// A smoother resting at `value` that ramps over `steps` steps.
    pub fn new(value: f32, steps: u32) -> Self {
        Smoother { current: value, target: value, step: 0.0, remaining: 0, steps }
    }

    /// Number of steps needed to ramp over `time_s` when advanced at
    /// `rate_hz` (at least 1).
    pub fn steps_for(time_s: f32, rate_hz: f32) -> u32 {
        let s = (time_s * rate_hz).round();
        if s >= 1.0 { s.min(u32::MAX as f32) as u32 } else { 1 }
    }

    /// Changes the ramp length used by later targets.
    pub fn set_steps(&mut self, steps: u32) {
        self.steps = steps.max(1);
    }

    /// Starts a ramp from the current value to `target` (no-op if `target`
    /// is already the target).
    pub fn set_target(&mut self, target: f32) {
        if target == self.target {
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

    /// Jumps to `value` and makes it the target.
    pub fn reset_to(&mut self, value: f32) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
