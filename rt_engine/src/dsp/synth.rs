//! The polyphonic synthesizer: voice allocation, control-rate updates and the
//! block renderer.

use super::envelope::{EnvCoefs, MAX_TIME_S, SILENCE, Segment, Stage};
use super::filter::{self, FilterControl};
use super::osc::{Oscillator, SawOsc, SineOsc, SquareOsc, Waveform};
use super::smoother::Smoother;
use super::voice::{Group, PendingNote, VoiceCtl, VoiceSnapshot};
use super::{CONTROL_PERIOD, LANES};

/// Number of voice groups.
const GROUPS: usize = Synth::MAX_VOICES / LANES;
/// Fixed output scaling so that a 16-note chord at full velocity stays
/// around full scale at the default gain.
const HEADROOM: f32 = 0.25;
/// Ramp time of the gain, cutoff and resonance smoothers.
const SMOOTH_S: f32 = 0.01;
/// Duration of the bypass fade.
const BYPASS_FADE_S: f32 = 0.01;
/// Gains at or below this many dB are treated as silence.
const MIN_GAIN_DB: f32 = -96.0;
/// Highest gain accepted, in dB.
const MAX_GAIN_DB: f32 = 24.0;
/// Highest oscillator phase increment (cycles per sample).
const MAX_INC: f32 = 0.45;
/// Accepted sample-rate range; anything else (or NaN) falls back to 48 kHz.
const MIN_SAMPLE_RATE: f32 = 4_000.0;
const MAX_SAMPLE_RATE: f32 = 768_000.0;
const DEFAULT_SAMPLE_RATE: f32 = 48_000.0;

/// All user parameters of the synthesizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthParams {
    /// Output gain in dB (-96 dB and below is silence, at most +24 dB).
    pub gain_db: f32,
    /// Oscillator waveform.
    pub waveform: Waveform,
    /// Attack time in seconds (0 → 1).
    pub attack_s: f32,
    /// Decay time in seconds for a full-scale fall (1 → 0).
    pub decay_s: f32,
    /// Sustain level, `0..=1`.
    pub sustain: f32,
    /// Release time in seconds from full scale to silence.
    pub release_s: f32,
    /// Filter cutoff in Hz (20 Hz..20 kHz).
    pub cutoff_hz: f32,
    /// Filter resonance, `0..=1` (Q from 0.5 to 20).
    pub resonance: f32,
    /// Envelope to cutoff modulation depth in octaves, `-6..=6`.
    pub filter_env_octaves: f32,
    /// Velocity sensitivity, `0..=1`.
    pub velocity_sens: f32,
    /// Instrument bypass: fades the output to silence (and back) over 10 ms.
    pub bypass: bool,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            gain_db: -6.0,
            waveform: Waveform::Saw,
            attack_s: 0.005,
            decay_s: 0.2,
            sustain: 0.7,
            release_s: 0.3,
            cutoff_hz: 8000.0,
            resonance: 0.2,
            filter_env_octaves: 2.0,
            velocity_sens: 0.7,
            bypass: false,
        }
    }
}

/// Clamps `x` to `lo..=hi`, replacing NaN by `default`.
fn sane(x: f32, default: f32, lo: f32, hi: f32) -> f32 {
    if x.is_nan() { default } else { x.clamp(lo, hi) }
}

impl SynthParams {
    /// The parameters with every value clamped to its range and NaN replaced
    /// by the default.
    pub fn sanitized(&self) -> SynthParams {
        let d = SynthParams::default();
        SynthParams {
            gain_db: sane(self.gain_db, d.gain_db, MIN_GAIN_DB, MAX_GAIN_DB),
            waveform: self.waveform,
            attack_s: sane(self.attack_s, d.attack_s, 0.0, MAX_TIME_S),
            decay_s: sane(self.decay_s, d.decay_s, 0.0, MAX_TIME_S),
            sustain: sane(self.sustain, d.sustain, 0.0, 1.0),
            release_s: sane(self.release_s, d.release_s, 0.0, MAX_TIME_S),
            cutoff_hz: sane(self.cutoff_hz, d.cutoff_hz, 20.0, 20_000.0),
            resonance: sane(self.resonance, d.resonance, 0.0, 1.0),
            filter_env_octaves: sane(self.filter_env_octaves, d.filter_env_octaves, -6.0, 6.0),
            velocity_sens: sane(self.velocity_sens, d.velocity_sens, 0.0, 1.0),
            bypass: self.bypass,
        }
    }

    fn linear_gain(&self) -> f32 {
        if self.gain_db <= MIN_GAIN_DB {
            0.0
        } else {
            10f32.powf(self.gain_db / 20.0)
        }
    }

    fn env_coefs(&self, sample_rate: f32) -> EnvCoefs {
        EnvCoefs::new(
            self.attack_s,
            self.decay_s,
            self.sustain,
            self.release_s,
            sample_rate,
        )
    }
}

/// What starting a note needs from the synth.
struct StartCtx<'a> {
    note_inc: &'a [f32; 128],
    attack: Segment,
    velocity_sens: f32,
    filter: FilterControl,
    clock: u64,
}

/// Starts `n` on lane `l` of `group`, whose bookkeeping is `ctl`.
fn start_note(group: &mut Group, l: usize, ctl: &mut VoiceCtl, n: PendingNote, ctx: &StartCtx) {
    let inc = ctx.note_inc[usize::from(n.note.min(127))];
    let amp = 1.0 - ctx.velocity_sens + ctx.velocity_sens * n.velocity;
    group.start(l, inc, amp, ctx.attack, &ctx.filter);
    *ctl = VoiceCtl {
        stage: Stage::Attack,
        note: n.note,
        note_id: n.note_id,
        velocity: n.velocity,
        start_clock: ctx.clock,
        serial: n.serial,
        decay_mul: 1.0,
        pending: None,
    };
}

/// Sum of the lanes of one output frame, pairwise (fixed order).
#[inline(always)]
fn lane_sum(f: &[f32; LANES]) -> f32 {
    let mut v = *f;
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            v[i] += v[i + w];
        }
    }
    v[0]
}

/// Renders one segment of every active group with oscillator `O`.
#[inline(never)]
fn render_groups<O: Oscillator>(groups: &mut [Group; GROUPS], acc: &mut [[f32; LANES]]) {
    for g in groups.iter_mut() {
        if g.active != 0 {
            g.render::<O>(acc);
        }
    }
}

/// A 128-voice subtractive synthesizer.
///
/// Allocation happens only in [`Synth::new`] (the whole state is a
/// fixed-size value; no heap at all); every other method is real-time safe
/// and never panics. Output is deterministic and independent of how a block
/// is split into [`Synth::render`] calls between events.
#[derive(Clone, Debug)]
pub struct Synth {
    sample_rate: f32,
    max_block: usize,
    params: SynthParams,
    env: EnvCoefs,
    note_inc: [f32; 128],
    groups: [Group; GROUPS],
    voices: [VoiceCtl; Synth::MAX_VOICES],
    gain: Smoother,
    bypass: Smoother,
    cutoff: Smoother,
    resonance: Smoother,
    filter: FilterControl,
    /// Position inside the current control period.
    tick_pos: usize,
    /// Samples rendered since the last reset.
    clock: u64,
    /// Note-on counter.
    serial: u64,
}

impl Synth {
    /// Number of voices.
    pub const MAX_VOICES: usize = 128;

    /// A synth with default parameters at `sample_rate` for blocks of at most
    /// `max_block` samples (longer blocks are rendered too; the value is only
    /// recorded).
    pub fn new(sample_rate: f32, max_block: usize) -> Self {
        let params = SynthParams::default();
        let mut s = Synth {
            sample_rate: DEFAULT_SAMPLE_RATE,
            max_block,
            params,
            env: params.env_coefs(DEFAULT_SAMPLE_RATE),
            note_inc: [0.0; 128],
            groups: [Group::default(); GROUPS],
            voices: [VoiceCtl::default(); Synth::MAX_VOICES],
            gain: Smoother::new(params.linear_gain(), 1),
            bypass: Smoother::new(1.0, 1),
            cutoff: Smoother::new(params.cutoff_hz.log2(), 1),
            resonance: Smoother::new(params.resonance, 1),
            filter: FilterControl {
                log2_cutoff: params.cutoff_hz.log2(),
                env_octaves: params.filter_env_octaves,
                log2_min: 0.0,
                log2_max: 0.0,
                angle_scale: 0.0,
                k: filter::resonance_to_k(params.resonance),
            },
            tick_pos: 0,
            clock: 0,
            serial: 0,
        };
        s.set_sample_rate(sample_rate, max_block);
        s
    }

    /// Changes the sample rate and maximum block size, recomputes every
    /// rate-dependent coefficient and resets all voices.
    pub fn set_sample_rate(&mut self, sample_rate: f32, max_block: usize) {
        let sr = if sample_rate.is_finite() {
            sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        } else {
            DEFAULT_SAMPLE_RATE
        };
        self.sample_rate = sr;
        self.max_block = max_block;
        for (n, inc) in self.note_inc.iter_mut().enumerate() {
            let hz = 440.0 * 2f64.powf((n as f64 - 69.0) / 12.0);
            *inc = ((hz / f64::from(sr)) as f32).min(MAX_INC);
        }
        self.env = self.params.env_coefs(sr);
        let per_sample = Smoother::steps_for(SMOOTH_S, sr);
        let per_tick = Smoother::steps_for(SMOOTH_S, sr / CONTROL_PERIOD as f32);
        self.gain.set_steps(per_sample);
        self.bypass.set_steps(Smoother::steps_for(BYPASS_FADE_S, sr));
        self.cutoff.set_steps(per_tick);
        self.resonance.set_steps(per_tick);
        let (lo, hi) = filter::log2_cutoff_range(sr);
        self.filter.log2_min = lo;
        self.filter.log2_max = hi;
        self.filter.angle_scale = filter::angle_scale(sr);
        self.reset();
    }

    /// Silences every voice at once, jumps all smoothers to their targets and
    /// restarts the control-rate grid.
    pub fn reset(&mut self) {
        for (gi, g) in self.groups.iter_mut().enumerate() {
            for l in 0..LANES {
                g.free(l);
            }
            debug_assert_eq!(g.active, 0, "group {gi}");
        }
        self.voices = [VoiceCtl::default(); Synth::MAX_VOICES];
        self.gain.snap();
        self.bypass.snap();
        self.cutoff.snap();
        self.resonance.snap();
        self.filter.log2_cutoff = self.cutoff.value();
        self.filter.k = filter::resonance_to_k(self.resonance.value());
        self.filter.env_octaves = self.params.filter_env_octaves;
        self.tick_pos = 0;
        self.clock = 0;
    }

    /// Applies new parameters. Gain, cutoff and resonance ramp over 10 ms;
    /// envelope times apply from the next stage a voice enters (the sustain
    /// level glides there live); the waveform switches on the next sample;
    /// velocity sensitivity applies to later notes; bypass starts a 10 ms
    /// fade. NaN and out-of-range values are sanitised.
    pub fn set_params(&mut self, p: &SynthParams) {
        let p = p.sanitized();
        let old = self.params;
        if p.gain_db != old.gain_db {
            self.gain.set_target(p.linear_gain());
        }
        self.cutoff.set_target(p.cutoff_hz.log2());
        self.resonance.set_target(p.resonance);
        self.bypass.set_target(if p.bypass { 0.0 } else { 1.0 });
        if p.attack_s != old.attack_s
            || p.decay_s != old.decay_s
            || p.sustain != old.sustain
            || p.release_s != old.release_s
        {
            self.env = p.env_coefs(self.sample_rate);
        }
        self.params = p;
    }

    /// The current (sanitised) parameters.
    pub fn params(&self) -> &SynthParams {
        &self.params
    }

    /// The sample rate in use.
    pub fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    /// The maximum block size given at construction or by
    /// [`Synth::set_sample_rate`].
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// Starts a note (`note` is clamped to 0..=127, `velocity` to 0..=1).
    /// Takes the lowest free voice; when all voices are busy it steals one
    /// (see [`Synth::steal_candidate`]), which fades out over 3 ms before the
    /// new note starts on it.
    pub fn note_on(&mut self, note: u8, velocity: f32, note_id: i32) {
        self.serial += 1;
        let n = PendingNote {
            note: note.min(127),
            velocity: if velocity.is_nan() {
                1.0
            } else {
                velocity.clamp(0.0, 1.0)
            },
            note_id,
            serial: self.serial,
        };
        if let Some(i) = self.voices.iter().position(|v| v.stage == Stage::Idle) {
            let ctx = StartCtx {
                note_inc: &self.note_inc,
                attack: self.env.attack(),
                velocity_sens: self.params.velocity_sens,
                filter: self.filter,
                clock: self.clock,
            };
            if let (Some(g), Some(v)) = (self.groups.get_mut(i / LANES), self.voices.get_mut(i)) {
                start_note(g, i % LANES, v, n, &ctx);
            }
            return;
        }
        let Some(i) = self.steal_candidate() else {
            return;
        };
        let steal = self.env.steal();
        if let (Some(g), Some(v)) = (self.groups.get_mut(i / LANES), self.voices.get_mut(i)) {
            if v.stage != Stage::Steal {
                v.stage = Stage::Steal;
                g.set_segment(i % LANES, steal);
            }
            v.pending = Some(n);
        }
    }

    /// The voice to steal when none is free, by priority:
    /// 1. a voice already fading out with no note waiting for it;
    /// 2. the oldest releasing voice;
    /// 3. the oldest held voice;
    /// 4. the fading voice whose waiting note is oldest (that note is
    ///    dropped).
    fn steal_candidate(&self) -> Option<usize> {
        let key = |v: &VoiceCtl| -> (u8, u64) {
            match (v.stage, v.pending) {
                (Stage::Steal, None) => (0, 0),
                (Stage::Release, _) => (1, v.serial),
                (Stage::Attack | Stage::Decay, _) => (2, v.serial),
                (Stage::Steal, Some(p)) => (3, p.serial),
                (Stage::Idle, _) => (0, 0),
            }
        };
        self.voices
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| key(v))
            .map(|(i, _)| i)
    }

    /// Releases the held voices of a note: those whose id is `note_id`, or,
    /// when `note_id` is -1 (or no voice carries that id), those playing
    /// `note` that were started without an id (any id when `note_id` is
    /// -1). A matching note still waiting for a stolen voice is cancelled.
    pub fn note_off(&mut self, note: u8, note_id: i32) {
        let mut matched = false;
        if note_id != -1 {
            matched = self.release_where(|n, id| id == note_id && n <= 127);
        }
        if !matched {
            self.release_where(|n, id| n == note && (note_id == -1 || id == -1));
        }
    }

    /// Releases every held voice and cancels every waiting note.
    pub fn all_notes_off(&mut self) {
        self.release_where(|_, _| true);
    }

    /// Releases held voices and cancels waiting notes for which
    /// `f(note, note_id)` holds; returns whether any matched.
    fn release_where(&mut self, f: impl Fn(u8, i32) -> bool) -> bool {
        let release = self.env.release();
        let mut any = false;
        for (g, ctls) in self.groups.iter_mut().zip(self.voices.chunks_exact_mut(LANES)) {
            for (l, v) in ctls.iter_mut().enumerate() {
                if v.is_held() && f(v.note, v.note_id) {
                    v.stage = Stage::Release;
                    g.set_segment(l, release);
                    any = true;
                }
                if let Some(p) = v.pending
                    && f(p.note, p.note_id)
                {
                    v.pending = None;
                    any = true;
                }
            }
        }
        any
    }

    /// Number of sounding voices (including releasing and fading ones).
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.stage != Stage::Idle).count()
    }

    /// A snapshot of voice `i` (an inactive snapshot when `i` is out of
    /// range).
    pub fn voice(&self, i: usize) -> VoiceSnapshot {
        let (Some(v), Some(g)) = (self.voices.get(i), self.groups.get(i / LANES)) else {
            return VoiceSnapshot::default();
        };
        if v.stage == Stage::Idle {
            return VoiceSnapshot::default();
        }
        let l = i % LANES;
        VoiceSnapshot {
            active: true,
            note: v.note,
            velocity: v.velocity,
            level: (g.env(l) * g.amp(l)).clamp(0.0, 1.0),
            age_samples: self.clock.saturating_sub(v.start_clock),
            releasing: matches!(v.stage, Stage::Release | Stage::Steal),
        }
    }

    /// Control-rate update at the start of each control period: advances the
    /// cutoff and resonance smoothers, moves envelopes between stages, frees
    /// silent voices, starts notes waiting for stolen voices, and recomputes
    /// every active voice's filter coefficients.
    fn control_tick(&mut self) {
        self.filter.log2_cutoff = self.cutoff.next_value();
        self.filter.k = filter::resonance_to_k(self.resonance.next_value());
        self.filter.env_octaves = self.params.filter_env_octaves;
        let env = self.env;
        let ctx = StartCtx {
            note_inc: &self.note_inc,
            attack: env.attack(),
            velocity_sens: self.params.velocity_sens,
            filter: self.filter,
            clock: self.clock,
        };
        for (g, ctls) in self.groups.iter_mut().zip(self.voices.chunks_exact_mut(LANES)) {
            if g.active == 0 {
                continue;
            }
            for (l, v) in ctls.iter_mut().enumerate() {
                let e = g.env(l);
                match v.stage {
                    Stage::Idle => {}
                    Stage::Attack => {
                        if e >= 1.0 {
                            v.stage = Stage::Decay;
                            v.decay_mul = env.decay_mul();
                            g.set_segment(l, env.decay_with(v.decay_mul, e));
                        }
                    }
                    Stage::Decay => {
                        if env.sustain() <= 0.0 && e <= SILENCE {
                            g.free(l);
                            *v = VoiceCtl::default();
                        } else {
                            g.set_segment(l, env.decay_with(v.decay_mul, e));
                        }
                    }
                    Stage::Release => {
                        if e <= SILENCE {
                            g.free(l);
                            *v = VoiceCtl::default();
                        }
                    }
                    Stage::Steal => {
                        if e <= 0.0 {
                            match v.pending {
                                Some(p) => start_note(g, l, v, p, &ctx),
                                None => {
                                    g.free(l);
                                    *v = VoiceCtl::default();
                                }
                            }
                        }
                    }
                }
            }
            if g.active != 0 {
                g.update_filter(&ctx.filter);
            }
        }
    }

    /// Renders the mix into `left` and `right`, overwriting them (the right
    /// channel is a copy of the left). Any length works, including 0; if the
    /// lengths differ the extra samples of the longer slice are zeroed.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        let (left, left_rest) = left.split_at_mut(n);
        let (right, right_rest) = right.split_at_mut(n);
        left_rest.fill(0.0);
        right_rest.fill(0.0);
        let mut done = 0;
        while done < n {
            if self.tick_pos == 0 {
                self.control_tick();
            }
            let len = (CONTROL_PERIOD - self.tick_pos).min(n - done);
            let mut acc = [[0.0f32; LANES]; CONTROL_PERIOD];
            let acc = &mut acc[..len];
            match self.params.waveform {
                Waveform::Saw => render_groups::<SawOsc>(&mut self.groups, acc),
                Waveform::Square => render_groups::<SquareOsc>(&mut self.groups, acc),
                Waveform::Sine => render_groups::<SineOsc>(&mut self.groups, acc),
            }
            let out = left.iter_mut().skip(done).take(len);
            for (o, f) in out.zip(acc.iter()) {
                let sum = lane_sum(f);
                let g = self.gain.next_value() * self.bypass.next_value();
                *o = sum * HEADROOM * g;
            }
            self.tick_pos = (self.tick_pos + len) % CONTROL_PERIOD;
            self.clock += len as u64;
            done += len;
        }
        right.copy_from_slice(left);
    }
}
