//! ADSR amplitude envelope.
//!
//! Every stage is one *segment* `env = clamp(env * mul + add, floor, 1)`,
//! evaluated per sample for every voice with no branches. Exponential
//! segments approach a target that lies slightly beyond the level they aim
//! for (the "target ratio" technique), so they reach it in finite time and
//! the clamp then pins the value exactly:
//!
//! * attack: convex exponential rise from the current level towards
//!   `1 + ATTACK_RATIO`; reaches exactly 1.0 after `attack_s` when starting
//!   from 0;
//! * decay: exponential fall towards `sustain - DR_RATIO`, clamped at the
//!   sustain level; `decay_s` is the time a full-scale fall (1 → 0) takes;
//! * release: exponential fall towards `-DR_RATIO`, clamped at exactly 0.0;
//!   `release_s` is the time from full scale to exact silence;
//! * steal: a linear fade to 0 over [`STEAL_FADE_S`] used when a voice is
//!   taken for a new note.
//!
//! Stage changes (attack → decay, freeing a silent voice) are checked at the
//! control rate. Attack, decay and release times are latched when a stage
//! starts; the sustain level follows parameter changes live.

/// Target overshoot of the attack segment (larger = more linear).
pub(crate) const ATTACK_RATIO: f32 = 0.3;
/// Target undershoot of the decay and release segments (smaller = more
/// exponential).
pub(crate) const DR_RATIO: f32 = 1e-3;
/// Level (-100 dB) below which a releasing voice is freed.
pub(crate) const SILENCE: f32 = 1e-5;
/// Duration of the fade applied to a stolen voice.
pub(crate) const STEAL_FADE_S: f32 = 0.003;
/// Longest accepted attack, decay or release time.
pub(crate) const MAX_TIME_S: f32 = 60.0;

/// Envelope stage of one voice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Free voice.
    #[default]
    Idle,
    /// Rising towards full level.
    Attack,
    /// Falling to, then holding, the sustain level.
    Decay,
    /// Falling to silence after note-off.
    Release,
    /// Fading out quickly because the voice was stolen.
    Steal,
}

/// One envelope segment: `env = clamp(env * mul + add, floor, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Segment {
    pub mul: f32,
    pub add: f32,
    pub floor: f32,
}

impl Segment {
    /// A segment that holds the level at 0.
    pub const SILENT: Segment = Segment { mul: 0.0, add: 0.0, floor: 0.0 };

    /// Exponential approach to `target`, with `mul` already rounded to f32 so
    /// that the fixed point of the recurrence is exactly `target`.
    fn towards(mul: f32, target: f32, floor: f32) -> Segment {
        Segment { mul, add: target * (1.0 - mul), floor }
    }

    /// One sample of the segment.
    #[inline(always)]
    pub fn step(env: f32, mul: f32, add: f32, floor: f32) -> f32 {
        let e = env * mul + add;
        let e = if e > floor { e } else { floor };
        if e < 1.0 { e } else { 1.0 }
    }
}

/// Per-sample multiplier of an exponential segment that covers the distance
/// ratio `(1 + ratio) / ratio` in `time_s`.
fn exp_mul(time_s: f32, sample_rate: f32, ratio: f32) -> f32 {
    let samples = (f64::from(time_s) * f64::from(sample_rate)).max(1.0);
    let r = f64::from(ratio);
    (-((1.0 + r) / r).ln() / samples).exp() as f32
}

/// Precomputed segment coefficients for the current parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct EnvCoefs {
    attack: Segment,
    decay_mul: f32,
    sustain: f32,
    release: Segment,
    steal: Segment,
}

impl EnvCoefs {
    /// Coefficients for the given (already sanitised) times and level.
    pub fn new(attack_s: f32, decay_s: f32, sustain: f32, release_s: f32, sample_rate: f32) -> Self {
        let sustain = sustain.clamp(0.0, 1.0);
        let fade_samples = (STEAL_FADE_S * sample_rate).max(1.0);
        EnvCoefs {
            attack: Segment::towards(exp_mul(attack_s, sample_rate, ATTACK_RATIO), 1.0 + ATTACK_RATIO, 0.0),
            decay_mul: exp_mul(decay_s, sample_rate, DR_RATIO),
            sustain,
            release: Segment::towards(exp_mul(release_s, sample_rate, DR_RATIO), -DR_RATIO, 0.0),
            steal: Segment { mul: 1.0, add: -1.0 / fade_samples, floor: 0.0 },
        }
    }

    /// Attack segment.
    pub fn attack(&self) -> Segment {
        self.attack
    }

    /// Decay segment for a voice at level `env`, from the latched decay
    /// multiplier `mul` and the current sustain level. Above the sustain
    /// level it falls onto it and stays there exactly; below it (the sustain
    /// level was raised) it glides up with the same time constant, and the
    /// next control update switches it to the falling form.
    pub fn decay_with(&self, mul: f32, env: f32) -> Segment {
        if env >= self.sustain {
            Segment::towards(mul, self.sustain - DR_RATIO, self.sustain)
        } else {
            Segment::towards(mul, self.sustain + DR_RATIO, 0.0)
        }
    }

    /// Current decay multiplier (latched by a voice when its decay starts).
    pub fn decay_mul(&self) -> f32 {
        self.decay_mul
    }

    /// Current sustain level.
    pub fn sustain(&self) -> f32 {
        self.sustain
    }

    /// Release segment.
    pub fn release(&self) -> Segment {
        self.release
    }

    /// Linear fade used for stolen voices.
    pub fn steal(&self) -> Segment {
        self.steal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seg: Segment, mut env: f32, n: usize) -> f32 {
        for _ in 0..n {
            env = Segment::step(env, seg.mul, seg.add, seg.floor);
        }
        env
    }

    #[test]
    fn attack_reaches_one_in_attack_time() {
        let c = EnvCoefs::new(0.01, 0.1, 0.5, 0.1, 48_000.0);
        assert!(run(c.attack(), 0.0, 470) < 1.0);
        assert_eq!(run(c.attack(), 0.0, 481), 1.0);
    }

    #[test]
    fn decay_settles_exactly_on_sustain() {
        let c = EnvCoefs::new(0.01, 0.1, 0.5, 0.1, 48_000.0);
        let d = c.decay_with(c.decay_mul(), 1.0);
        assert!(run(d, 1.0, 100) > 0.5);
        assert_eq!(run(d, 1.0, 4800), 0.5);
    }

    #[test]
    fn release_reaches_exact_zero_in_release_time() {
        let c = EnvCoefs::new(0.01, 0.1, 0.5, 0.25, 48_000.0);
        let r = c.release();
        assert!(run(r, 1.0, 11_000) > 0.0);
        assert_eq!(run(r, 1.0, 12_001), 0.0);
    }

    #[test]
    fn steal_fade_is_short_and_linear() {
        let c = EnvCoefs::new(0.01, 0.1, 0.5, 0.25, 48_000.0);
        let s = c.steal();
        let half = run(s, 1.0, 72);
        assert!((half - 0.5).abs() < 1e-3);
        assert_eq!(run(s, 1.0, 145), 0.0);
    }

    #[test]
    fn zero_times_are_one_sample() {
        let c = EnvCoefs::new(0.0, 0.0, 0.3, 0.0, 48_000.0);
        assert_eq!(run(c.attack(), 0.0, 1), 1.0);
        assert_eq!(run(c.release(), 1.0, 2), 0.0);
    }
}
