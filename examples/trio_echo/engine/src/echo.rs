//! TrioEcho's DSP, in plain Rust: no framework types, so every figure can be measured by
//! a unit test.
//!
//! Per channel (one or two; the two are processed alike and the limiter links them):
//!
//! ```text
//! input ──┬──────────────────────────────────────── dry ──┐
//!         │                                                mix ── limiter ──┐
//!         └─(+)── delay line ──┬── × ducker gain ── wet ──┘                  bypass fade ── output
//!            ↑                 │                    input ── latency delay ──┘
//!            └── × feedback ── low cut ── tone ──┘
//! ```
//!
//! - **Delay**: a [`DelayLine`] of 2 s plus a margin, read with cubic interpolation at
//!   a delay in samples that glides to its target ([`Glide`]: a one-pole approach with
//!   a 50 ms time constant, at most half a sample of delay change per sample, so the
//!   pitch bends by less than an octave instead of clicking, and at least 0.002, so it
//!   arrives) and then rests on the target exactly. Targets are whole samples, so a
//!   steady echo lands on exactly the right sample and is the input bit for bit.
//! - **Feedback**: the echo passes the Tone low-pass and the Low Cut high-pass (both
//!   12 dB/octave Butterworth state-variable filters, so neither boosts anything and the
//!   loop gain stays below the Feedback amount), is scaled by Feedback and written back
//!   with the input. The first echo is the input as it came in; every repeat passes the
//!   filters once more, so repeats grow darker and thinner.
//! - **Ducker**: a peak follower (1 ms attack, Duck Release) on the sidechain summed to
//!   mono, or on the input when there is none. `s` rises from 0 at Duck Threshold to 1
//!   at 12 dB above it; the echoes are scaled by `1 − Duck × s` (the echo loop itself
//!   is not ducked: the repeats come back when the key signal stops).
//! - **Mix**: `dry + mix × (wet − dry)`, with 0 giving the dry sample itself and 1 the
//!   wet one.
//! - **Limiter**: [`Limiter`] with linked channels, the Ceiling, a 50 ms release and the
//!   Lookahead as latency. Below the ceiling it is a pure delay, bit for bit.
//! - **Bypass**: a 10 ms linear fade to the input delayed by the same latency (a plain
//!   delay line, no gain change), so the host's latency compensation stays right.
//!
//! Mix, Feedback, Duck and Bypass ramp linearly (20 ms, 20 ms, 20 ms, 10 ms) and land
//! exactly on their targets; Tone and Low Cut glide in log frequency over 20 ms, their
//! coefficients updated every 16 samples while they move.
//!
//! Nothing here allocates after [`Echo::new`], and no input can poison the state: input
//! samples are sanitised (NaN and ±∞ count as 0, magnitudes above 1e6 are clamped)
//! before they reach anything with memory, and every parameter is clamped (NaN gives its
//! default).

use std::f32::consts::FRAC_1_SQRT_2;

use trio_dsp::buffer::db_to_gain;
use trio_dsp::delay::{DelayLine, Interpolation};
use trio_dsp::limiter::Limiter;
use trio_dsp::math::sanitize_sample;
use trio_dsp::smooth::Smoother;
use trio_dsp::svf::{Svf, SvfMode};
use trio_echo_common::{MAX_DELAY_S, MAX_LOOKAHEAD_S, MIN_DELAY_S};

/// Channels processed (a mono bus uses the first).
pub const CHANNELS: usize = 2;
/// Ramp time of Mix, Feedback and Duck changes, seconds.
pub const PARAM_RAMP_S: f32 = 0.020;
/// Fade time of the bypass, seconds.
pub const BYPASS_FADE_S: f32 = 0.010;
/// Glide time of the Tone and Low Cut cutoffs, seconds.
pub const FILTER_RAMP_S: f32 = 0.020;
/// Samples between coefficient updates while a cutoff glides.
pub const CONTROL_PERIOD: u32 = 16;
/// Time constant of the delay-time glide, seconds.
pub const GLIDE_TIME_S: f64 = 0.050;
/// Largest change of the delay per sample while it glides, in samples: the read position
/// moves at 0.5 to 1.5 times the normal speed (at most an octave down or a fifth up).
pub const MAX_GLIDE_RATE: f64 = 0.5;
/// Smallest change of the delay per sample while it glides, in samples (a pitch bend of
/// 3.5 cents): the exponential approach ends in a short linear one that reaches the
/// target, instead of creeping towards it for seconds. Within this distance of the
/// target the delay jumps onto it.
pub const MIN_GLIDE_RATE: f64 = 0.002;
/// Extra samples of delay-line capacity beyond the longest delay.
pub const DELAY_MARGIN: usize = 8;
/// Attack of the ducker's envelope follower, seconds.
pub const DUCK_ATTACK_S: f64 = 0.001;
/// Level above the threshold at which the ducker reaches its full depth, dB.
pub const DUCK_RANGE_DB: f32 = 12.0;
/// Release time constant of the limiter, seconds.
pub const LIMITER_RELEASE_S: f32 = 0.050;
/// Level the tail runs down to: -80 dB.
pub const TAIL_FLOOR: f64 = 1e-4;
/// Longest tail reported, seconds.
pub const MAX_TAIL_S: f64 = 30.0;
/// Q of the Tone and Low Cut filters (Butterworth: no resonant peak).
const FILTER_Q: f32 = FRAC_1_SQRT_2;

/// The settings of an [`Echo`], in plain units. Every field is clamped into its range by
/// [`Echo::set_params`] (NaN gives the default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EchoParams {
    /// Dry/wet, 0..1.
    pub mix: f32,
    /// Delay time, seconds (`MIN_DELAY_S..=MAX_DELAY_S`), already resolved from the
    /// tempo when synced ([`trio_echo_common::delay_seconds`]).
    pub delay_s: f64,
    /// Feedback, 0..0.95.
    pub feedback: f32,
    /// Tone (low-pass) cutoff, Hz, 200..20 000.
    pub tone_hz: f32,
    /// Low Cut (high-pass) cutoff, Hz, 20..2 000.
    pub low_cut_hz: f32,
    /// Ducking depth, 0..1.
    pub duck: f32,
    /// Ducker threshold, dB, -60..0.
    pub duck_threshold_db: f32,
    /// Ducker release, seconds, 0.01..2.
    pub duck_release_s: f32,
    /// Limiter ceiling, dB, -24..0.
    pub ceiling_db: f32,
    /// Limiter lookahead (the latency), seconds, 0..0.02.
    pub lookahead_s: f64,
    /// Bypass.
    pub bypass: bool,
}

impl Default for EchoParams {
    /// The parameters' defaults (with the free time, 375 ms).
    fn default() -> Self {
        Self {
            mix: 0.35,
            delay_s: 0.375,
            feedback: 0.4,
            tone_hz: 6000.0,
            low_cut_hz: 80.0,
            duck: 0.0,
            duck_threshold_db: -30.0,
            duck_release_s: 0.25,
            ceiling_db: -0.3,
            lookahead_s: 0.005,
            bypass: false,
        }
    }
}

fn clamp32(x: f32, lo: f32, hi: f32, default: f32) -> f32 {
    if x.is_nan() { default } else { x.clamp(lo, hi) }
}

fn clamp64(x: f64, lo: f64, hi: f64, default: f64) -> f64 {
    if x.is_nan() { default } else { x.clamp(lo, hi) }
}

impl EchoParams {
    /// The same settings with every field inside its range.
    pub fn sanitized(&self) -> Self {
        let d = Self::default();
        Self {
            mix: clamp32(self.mix, 0.0, 1.0, d.mix),
            delay_s: clamp64(self.delay_s, MIN_DELAY_S, MAX_DELAY_S, d.delay_s),
            feedback: clamp32(self.feedback, 0.0, 0.95, d.feedback),
            tone_hz: clamp32(self.tone_hz, 200.0, 20_000.0, d.tone_hz),
            low_cut_hz: clamp32(self.low_cut_hz, 20.0, 2000.0, d.low_cut_hz),
            duck: clamp32(self.duck, 0.0, 1.0, d.duck),
            duck_threshold_db: clamp32(self.duck_threshold_db, -60.0, 0.0, d.duck_threshold_db),
            duck_release_s: clamp32(self.duck_release_s, 0.01, 2.0, d.duck_release_s),
            ceiling_db: clamp32(self.ceiling_db, -24.0, 0.0, d.ceiling_db),
            lookahead_s: clamp64(self.lookahead_s, 0.0, MAX_LOOKAHEAD_S, d.lookahead_s),
            bypass: self.bypass,
        }
    }
}

/// The delay time in samples, gliding to its target: each sample it moves by
/// `(target − value) / (GLIDE_TIME_S · fs)`, at least [`MIN_GLIDE_RATE`] and at most
/// [`MAX_GLIDE_RATE`], and jumps onto the target once within [`MIN_GLIDE_RATE`] of it. At
/// rest it is exactly the target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Glide {
    value: f64,
    target: f64,
    /// Share of the remaining distance covered per sample.
    k: f64,
}

impl Glide {
    /// A glide at rest at `value` samples, at `sample_rate`.
    pub fn new(value: f64, sample_rate: f64) -> Self {
        Self { value, target: value, k: 1.0 - (-1.0 / (GLIDE_TIME_S * sample_rate)).exp() }
    }

    /// Sets the value to glide to.
    pub fn set_target(&mut self, target: f64) {
        if target.is_finite() {
            self.target = target;
        }
    }

    /// Jumps to the target.
    pub fn snap(&mut self) {
        self.value = self.target;
    }

    /// The target.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The current value.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Advances one sample and returns the new value.
    #[inline]
    pub fn next_value(&mut self) -> f64 {
        let d = self.target - self.value;
        if d != 0.0 {
            if d.abs() <= MIN_GLIDE_RATE {
                self.value = self.target;
            } else {
                self.value += d.signum() * (d.abs() * self.k).clamp(MIN_GLIDE_RATE, MAX_GLIDE_RATE);
            }
        }
        self.value
    }
}

/// The ducker's envelope follower and gain curve.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ducker {
    env: f32,
    attack: f32,
    release: f32,
    threshold: f32,
}

impl Ducker {
    fn coef(time_s: f64, sample_rate: f64) -> f32 {
        (-1.0 / (time_s * sample_rate)).exp() as f32
    }

    fn new(sample_rate: f64) -> Self {
        Self { env: 0.0, attack: Self::coef(DUCK_ATTACK_S, sample_rate), release: 0.0, threshold: 1.0 }
    }

    fn set(&mut self, threshold_db: f32, release_s: f32, sample_rate: f64) {
        self.threshold = db_to_gain(threshold_db);
        self.release = Self::coef(f64::from(release_s), sample_rate);
    }

    /// Follows the (sanitised) key sample; returns the envelope.
    #[inline]
    fn follow(&mut self, key: f32) -> f32 {
        let x = key.abs();
        let a = if x > self.env { self.attack } else { self.release };
        let env = x + a * (self.env - x);
        // Flush to exact silence instead of lingering in subnormal numbers.
        self.env = if env < 1e-20 { 0.0 } else { env };
        self.env
    }

    /// The wet gain for envelope `env` at depth `depth` (> 0).
    #[inline]
    fn gain(&self, env: f32, depth: f32) -> f32 {
        if env <= self.threshold {
            return 1.0;
        }
        let over_db = 20.0 * (env / self.threshold).log10();
        let s = (over_db / DUCK_RANGE_DB).min(1.0);
        1.0 - depth * s
    }
}

/// The whole effect for up to two channels.
#[derive(Clone, Debug)]
pub struct Echo {
    sample_rate: f64,
    params: EchoParams,
    /// Longest delay, samples.
    max_delay: usize,
    /// Longest lookahead, samples.
    max_lookahead: usize,
    lines: [DelayLine; CHANNELS],
    lows: [Svf; CHANNELS],
    highs: [Svf; CHANNELS],
    /// The input delayed by the latency, for the bypass.
    latency_lines: [DelayLine; CHANNELS],
    limiter: Limiter,
    lookahead: usize,
    glide: Glide,
    mix: Smoother,
    feedback: Smoother,
    duck: Smoother,
    bypass: Smoother,
    /// Cutoffs as log2(Hz).
    tone: Smoother,
    low_cut: Smoother,
    /// Samples until the next coefficient update of a gliding cutoff.
    countdown: u32,
    ducker: Ducker,
    /// The longest delay target (samples), the highest feedback and the longest lookahead
    /// set since the state was last cleared: what the lines can still hold is bounded by
    /// them, however far a glide has come ([`Echo::quiet_after`]).
    bound_delay: f64,
    bound_feedback: f32,
    bound_lookahead: usize,
    /// [`Echo::quiet_after`] for those bounds, recomputed when they change (the engine
    /// asks for it at every span of every block).
    quiet: u64,
}

impl Echo {
    /// An effect at `sample_rate` Hz with the default parameters; allocates its delay
    /// lines (2 s plus a margin) and the limiter (20 ms of lookahead).
    pub fn new(sample_rate: f64) -> Self {
        let sr = if sample_rate.is_finite() { sample_rate.clamp(1000.0, 1_536_000.0) } else { 48_000.0 };
        let max_delay = (MAX_DELAY_S * sr).ceil() as usize;
        let max_lookahead = (MAX_LOOKAHEAD_S * sr).ceil() as usize;
        let line = || {
            let mut l = DelayLine::new(max_delay + DELAY_MARGIN);
            l.set_interpolation(Interpolation::Cubic);
            l
        };
        let fr = sr as f32;
        let ramp = |s: f32| Smoother::steps_for(s, fr);
        let filter_steps = Smoother::steps_for(FILTER_RAMP_S, fr / CONTROL_PERIOD as f32);
        let p = EchoParams::default();
        let mut echo = Self {
            sample_rate: sr,
            params: p,
            max_delay,
            max_lookahead,
            lines: [line(), line()],
            lows: [Svf::new(SvfMode::LowPass); CHANNELS],
            highs: [Svf::new(SvfMode::HighPass); CHANNELS],
            latency_lines: [DelayLine::new(max_lookahead + DELAY_MARGIN), DelayLine::new(max_lookahead + DELAY_MARGIN)],
            limiter: Limiter::new(max_lookahead, CHANNELS),
            lookahead: usize::MAX,
            glide: Glide::new(1.0, sr),
            mix: Smoother::new(p.mix, ramp(PARAM_RAMP_S)),
            feedback: Smoother::new(p.feedback, ramp(PARAM_RAMP_S)),
            duck: Smoother::new(p.duck, ramp(PARAM_RAMP_S)),
            bypass: Smoother::new(0.0, ramp(BYPASS_FADE_S)),
            tone: Smoother::new(p.tone_hz.log2(), filter_steps),
            low_cut: Smoother::new(p.low_cut_hz.log2(), filter_steps),
            countdown: 0,
            ducker: Ducker::new(sr),
            // NaN: the first `set_bounds` always computes `quiet` (`max` ignores NaN).
            bound_delay: f64::NAN,
            bound_feedback: 0.0,
            bound_lookahead: 0,
            quiet: 0,
        };
        echo.apply(&p, true);
        echo.snap();
        echo
    }

    /// The sample rate, Hz.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The settings in force (sanitised).
    pub fn params(&self) -> &EchoParams {
        &self.params
    }

    /// The latency in samples: the limiter's lookahead.
    pub fn latency(&self) -> usize {
        self.lookahead
    }

    /// The delay-time glide.
    pub fn glide(&self) -> &Glide {
        &self.glide
    }

    /// The delay target in samples for `delay_s`: whole samples, 1 ..= the maximum.
    pub fn delay_samples(&self, delay_s: f64) -> f64 {
        (delay_s * self.sample_rate).round().clamp(1.0, self.max_delay as f64)
    }

    /// Changes the settings. Mix, Feedback, Duck, Bypass, Tone, Low Cut and the delay
    /// time move smoothly to the new values; the ducker and the ceiling apply at once.
    /// A new lookahead changes the latency and restarts the limiter (its delay line is
    /// cleared). Returns whether the latency changed.
    pub fn set_params(&mut self, params: &EchoParams) -> bool {
        self.apply(&params.sanitized(), false)
    }

    fn apply(&mut self, p: &EchoParams, force: bool) -> bool {
        let old = self.params;
        self.params = *p;
        self.glide.set_target(self.delay_samples(p.delay_s));
        self.mix.set_target(p.mix);
        self.feedback.set_target(p.feedback);
        self.duck.set_target(p.duck);
        self.bypass.set_target(if p.bypass { 1.0 } else { 0.0 });
        self.tone.set_target(p.tone_hz.log2());
        self.low_cut.set_target(p.low_cut_hz.log2());
        if force || old.duck_threshold_db != p.duck_threshold_db || old.duck_release_s != p.duck_release_s {
            self.ducker.set(p.duck_threshold_db, p.duck_release_s, self.sample_rate);
        }
        let lookahead = ((p.lookahead_s * self.sample_rate).round() as usize).min(self.max_lookahead);
        let latency_changed = lookahead != self.lookahead;
        if force || latency_changed || old.ceiling_db != p.ceiling_db {
            let ceiling = db_to_gain(p.ceiling_db);
            self.limiter.set(lookahead, ceiling, LIMITER_RELEASE_S, self.sample_rate as f32);
            self.lookahead = lookahead;
        }
        self.set_bounds(
            self.bound_delay.max(self.glide.target()),
            self.bound_feedback.max(p.feedback),
            self.bound_lookahead.max(lookahead),
        );
        latency_changed
    }

    /// Jumps every gliding value (delay time, mix, feedback, duck, bypass, cutoffs) to its
    /// target.
    pub fn snap(&mut self) {
        self.glide.snap();
        self.snap_delay();
        self.mix.snap();
        self.feedback.snap();
        self.duck.snap();
        self.bypass.snap();
        self.tone.snap();
        self.low_cut.snap();
        self.update_filters();
    }

    /// Jumps the delay time to its target (at the start of playback, where a glide from
    /// the free time to the synced one would be heard).
    pub fn snap_delay(&mut self) {
        self.glide.snap();
    }

    /// [`Echo::snap`] for an effect whose state is clear (reset, and given nothing but
    /// silence since): also forgets the longer delays and higher feedback set before, which
    /// left nothing behind ([`Echo::quiet_after`] then counts from the settings in force).
    pub fn snap_clear(&mut self) {
        self.snap();
        self.set_bounds(self.glide.target(), self.params.feedback, self.lookahead);
    }

    /// Silence: clears the delay lines, filters, limiter and ducker, and snaps every
    /// gliding value to its target.
    pub fn reset(&mut self) {
        for line in self.lines.iter_mut().chain(self.latency_lines.iter_mut()) {
            line.clear();
        }
        for f in self.lows.iter_mut().chain(self.highs.iter_mut()) {
            f.reset();
        }
        self.limiter.reset();
        self.ducker.env = 0.0;
        // The control-rate grid of the cutoff ramps restarts too, as in a new effect.
        self.countdown = 0;
        self.snap_clear();
    }

    /// How long the effect keeps sounding after its input stops, in samples: until the
    /// repeats have decayed below -80 dB, `delay × (1 + ln(1e-4) / ln(feedback))` (one
    /// delay time when Feedback is 0; at most 30 s), plus the latency.
    pub fn tail_samples(&self) -> u32 {
        let delay = self.glide.target.max(self.glide.value);
        let fb = f64::from(self.params.feedback);
        let repeats = if fb > 0.0 { (TAIL_FLOOR.ln() / fb.ln()).ceil().max(0.0) } else { 0.0 };
        let echo = (delay * (1.0 + repeats)).min(MAX_TAIL_S * self.sample_rate);
        (echo.ceil() as u64 + self.lookahead as u64).min(u64::from(u32::MAX - 1)) as u32
    }

    /// Samples of silent input after which everything the effect still holds is below
    /// -80 dB ([`TAIL_FLOOR`]) of what went in, from the longest delay, the highest
    /// feedback and the longest lookahead set since the state was last cleared
    /// ([`Echo::reset`]), so the answer depends only on the settings given, not on how far
    /// a glide or a ramp has come. Unlike [`Echo::tail_samples`] (what the host is told,
    /// capped at 30 s) it is not capped, and it is conservative: the repeats left in the
    /// line after `n` passes add up to at most `feedback^n / (1 - feedback)` of the input,
    /// and each pass is counted two samples longer than the delay (the cubic
    /// interpolation reads two samples past a fractional delay).
    pub fn quiet_after(&self) -> u64 {
        self.quiet
    }

    /// Sets the bounds [`Echo::quiet_after`] is computed from, and recomputes it when they
    /// changed.
    fn set_bounds(&mut self, delay: f64, feedback: f32, lookahead: usize) {
        if (delay, feedback, lookahead) == (self.bound_delay, self.bound_feedback, self.bound_lookahead) {
            return;
        }
        (self.bound_delay, self.bound_feedback, self.bound_lookahead) = (delay, feedback, lookahead);
        let fb = f64::from(feedback);
        let repeats = if fb > 0.0 { ((TAIL_FLOOR.ln() + (1.0 - fb).ln()) / fb.ln()).ceil().max(0.0) } else { 0.0 };
        self.quiet = ((delay + 2.0) * (1.0 + repeats)).ceil() as u64 + lookahead as u64;
    }

    fn update_filters(&mut self) {
        let sr = self.sample_rate as f32;
        let tone = self.tone.value().exp2();
        let low_cut = self.low_cut.value().exp2();
        for (lp, hp) in self.lows.iter_mut().zip(self.highs.iter_mut()) {
            lp.set(tone, FILTER_Q, sr);
            hp.set(low_cut, FILTER_Q, sr);
        }
    }

    /// Processes samples `from..to` of `main` (one or two channels) in place, with the
    /// ducker keyed by `sidechain` (its first two channels summed to mono) or, when it is
    /// empty, by the input summed to mono. Channels beyond the second are silenced.
    pub fn process(&mut self, main: &mut [&mut [f32]], sidechain: &[&[f32]], from: usize, to: usize) {
        let n = main.len().min(CHANNELS);
        let Some(shortest) = main.iter().take(n).map(|c| c.len()).min() else {
            return;
        };
        let to = to.min(shortest);
        let side = &sidechain[..sidechain.len().min(CHANNELS)];
        for i in from..to {
            let mut x = [0.0f32; CHANNELS];
            for (xc, ch) in x.iter_mut().zip(main.iter()) {
                *xc = ch.get(i).map_or(0.0, |&s| sanitize_sample(s));
            }
            let key = if side.is_empty() {
                x[..n].iter().sum::<f32>() / n as f32
            } else {
                side.iter().map(|ch| ch.get(i).map_or(0.0, |&s| sanitize_sample(s))).sum::<f32>() / side.len() as f32
            };
            let y = self.tick(&x, n, key);
            for (ch, yc) in main.iter_mut().zip(y) {
                if let Some(s) = ch.get_mut(i) {
                    *s = yc;
                }
            }
        }
        for extra in main.iter_mut().skip(n) {
            if let Some(s) = extra.get_mut(from..to) {
                s.fill(0.0);
            }
        }
    }

    /// One frame of `n` channels (sanitised input) and the ducker's key sample.
    #[inline]
    fn tick(&mut self, x: &[f32; CHANNELS], n: usize, key: f32) -> [f32; CHANNELS] {
        if self.countdown == 0 {
            self.countdown = CONTROL_PERIOD;
            if self.tone.is_ramping() || self.low_cut.is_ramping() {
                // One step per control period (the ramps count control periods).
                self.tone.next_value();
                self.low_cut.next_value();
                self.update_filters();
            }
        }
        self.countdown -= 1;
        let delay = self.glide.next_value() as f32;
        let feedback = self.feedback.next_value();
        let mix = self.mix.next_value();
        let depth = self.duck.next_value();
        let bypass = self.bypass.next_value();
        let env = self.ducker.follow(key);
        let duck_gain = if depth > 0.0 { self.ducker.gain(env, depth) } else { 1.0 };

        let mut frame = [0.0f32; CHANNELS];
        for c in 0..n {
            let dry = x[c];
            // Read before writing: the line's newest sample is one sample old.
            let echo = self.lines[c].read(delay - 1.0);
            let shaped = self.highs[c].process(self.lows[c].process(echo));
            self.lines[c].push(dry + feedback * shaped);
            let wet = if duck_gain == 1.0 { echo } else { echo * duck_gain };
            frame[c] = if mix == 0.0 {
                dry
            } else if mix == 1.0 {
                wet
            } else {
                dry + mix * (wet - dry)
            };
        }
        self.limiter.process_frame(&mut frame[..n]);
        let mut out = [0.0f32; CHANNELS];
        for c in 0..n {
            let line = &mut self.latency_lines[c];
            line.push(x[c]);
            let dry = line.read_integer(self.lookahead);
            out[c] = if bypass == 0.0 {
                frame[c]
            } else if bypass == 1.0 {
                dry
            } else {
                frame[c] + bypass * (dry - frame[c])
            };
        }
        out
    }
}

#[cfg(test)]
mod tests;
