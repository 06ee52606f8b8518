//! The polyphonic synthesizer: voice allocation, control-rate updates and the
//! block renderer.

use super::envelope::{EnvCoefs, MAX_TIME_S, SILENCE, Segment, Stage};
use super::filter::{self, FilterControl};
use super::osc::{Oscillator, SawOsc, SineOsc, SquareOsc, Waveform};
use super::smoother::Smoother;
use super::voice::{Group, Part, PendingNote, VoiceCtl, VoiceSnapshot, is_sparse};
use super::{CONTROL_PERIOD, LANES, set_bits};

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
/// Lowest accepted sample rate (lower rates are raised to it).
const MIN_SAMPLE_RATE: f32 = 4_000.0;
/// Highest accepted sample rate (higher rates are lowered to it).
const MAX_SAMPLE_RATE: f32 = 768_000.0;
/// Sample rate used when the given one is NaN or infinite.
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
        if self.gain_db <= MIN_GAIN_DB { 0.0 } else { 10f32.powf(self.gain_db / 20.0) }
    }

    fn env_coefs(&self, sample_rate: f32) -> EnvCoefs {
        EnvCoefs::new(self.attack_s, self.decay_s, self.sustain, self.release_s, sample_rate)
    }
}

/// The phase increment of a note whose unbent increment is `base` under the
/// pitch-bend frequency ratio `ratio`: at rest (`ratio == 1.0`) `base` itself,
/// untouched, otherwise scaled and capped at [`MAX_INC`].
#[inline]
fn bent_inc(base: f32, ratio: f32) -> f32 {
    if ratio == 1.0 { base } else { (base * ratio).min(MAX_INC) }
}

/// What starting a note needs from the synth.
struct StartCtx<'a> {
    note_inc: &'a [f32; 128],
    /// Frequency ratio of the current pitch bend (exactly 1.0 at rest).
    bend_ratio: f32,
    attack: Segment,
    velocity_sens: f32,
    filter: FilterControl,
    clock: u64,
}

/// Starts `n` on lane `l` of `group`, whose bookkeeping is `ctl`.
fn start_note(group: &mut Group, l: usize, ctl: &mut VoiceCtl, n: PendingNote, ctx: &StartCtx) {
    let inc = bent_inc(ctx.note_inc[usize::from(n.note.min(127))], ctx.bend_ratio);
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

/// One segment's voices before they are mixed: groups rendered whole add lane `l` of
/// frame `i` into `acc[i][l]`, voices rendered on their own add into `lone[i]`.
struct Mix {
    acc: [[f32; LANES]; CONTROL_PERIOD],
    lone: [f32; CONTROL_PERIOD],
}

impl Mix {
    fn new() -> Self {
        Mix { acc: [[0.0; LANES]; CONTROL_PERIOD], lone: [0.0; CONTROL_PERIOD] }
    }
}

/// Renders `len` samples from position `pos` of the control period, of every active group
/// with oscillator `O`, into `mix`; returns whether a group was rendered whole (only then
/// is `mix.acc` written, and cleared first).
#[inline(always)]
fn render_groups<O: Oscillator>(
    groups: &mut [Group; GROUPS],
    live: u32,
    pos: usize,
    len: usize,
    mix: &mut Mix,
) -> bool {
    let len = len.min(CONTROL_PERIOD);
    let mut whole = false;
    for gi in set_bits::<GROUPS>(live) {
        let Some(g) = groups.get_mut(gi) else { continue };
        // An empty group (none is live) would render nothing either way.
        if is_sparse(g.active) {
            g.render_sparse::<O>(pos, &mut mix.lone[..len]);
        } else {
            if !whole {
                whole = true;
                mix.acc[..len].fill([0.0; LANES]);
            }
            g.render::<O>(&mut mix.acc[..len]);
        }
    }
    whole
}

/// Writes the first `out.len()` samples of `mix`, times `gain(i)`, to `out`: the voices
/// rendered on their own, plus the lanes of the groups rendered whole when `whole`
/// (`+ 0.0` turns a lone `-0.0` into `0.0`, as a sum with the others would).
#[inline(always)]
fn mix_down(out: &mut [f32], mix: &Mix, whole: bool, mut gain: impl FnMut() -> f32) {
    if whole {
        for ((o, f), lone) in out.iter_mut().zip(&mix.acc).zip(&mix.lone) {
            *o = (lane_sum(f) + lone) * HEADROOM * gain();
        }
    } else if let Ok(out) = <&mut [f32; CONTROL_PERIOD]>::try_from(&mut *out) {
        // Voices alone over a whole period (the common case): a fixed-length loop.
        mix_lone(out, &mix.lone, gain);
    } else {
        mix_lone(out, &mix.lone, gain);
    }
}

/// The voices rendered alone, into `out`. Inlined, so a caller that passes a whole
/// period gets a loop of fixed length.
#[inline(always)]
fn mix_lone(out: &mut [f32], lone: &[f32], mut gain: impl FnMut() -> f32) {
    for (o, lone) in out.iter_mut().zip(lone) {
        *o = (lone + 0.0) * HEADROOM * gain();
    }
}

// Voices are counted in a `u128` ([`Synth::active_mask`]).
const _: () = assert!(Synth::MAX_VOICES <= 128);

/// A 128-voice subtractive synthesizer.
///
/// The whole state is one fixed-size value (about 65 KiB, no heap), so no
/// method allocates; every method is real-time safe and never panics,
/// whatever its input. Output is deterministic and independent of how a
/// block is split into [`Synth::render`] calls between events.
#[derive(Clone, Debug)]
pub struct Synth {
    sample_rate: f32,
    max_block: usize,
    params: SynthParams,
    env: EnvCoefs,
    /// Unbent phase increment of each MIDI note.
    note_inc: [f32; 128],
    /// Pitch bend in semitones (0.0 at rest, never -0.0 or NaN).
    bend_semitones: f32,
    /// `2^(bend_semitones / 12)`: exactly 1.0 at rest.
    bend_ratio: f32,
    groups: [Group; GROUPS],
    voices: [VoiceCtl; Synth::MAX_VOICES],
    gain: Smoother,
    bypass: Smoother,
    cutoff: Smoother,
    resonance: Smoother,
    filter: FilterControl,
    /// The resonance `filter.k` was computed from.
    k_resonance: f32,
    /// Changes whenever `filter` does: voice groups keep their filter coefficients while
    /// it and their envelopes stand still.
    filter_gen: u32,
    /// Position inside the current control period.
    tick_pos: usize,
    /// Samples rendered since the last reset.
    clock: u64,
    /// Note-on counter.
    serial: u64,
    /// Counts what a control tick must look at anew: bumped by every method that changes
    /// notes, parameters, the bend or the state ([`Synth::touch`]), and by a tick that
    /// moves the filter.
    changes: u32,
    /// `changes` as of the last control tick that found every voice held at its sustain
    /// level (or no voice at all): until `changes` moves, a tick would set every voice
    /// what it has, so ticks only advance the smoothers, and a silent synth skips them
    /// altogether. This is what a held chord costs between its notes, and an idle synth.
    settled_at: Option<u32>,
    /// Bit `g` set when group `g` holds an active voice: the control tick and the render
    /// loop visit only these groups.
    live: u32,
}

impl Synth {
    /// Number of voices.
    pub const MAX_VOICES: usize = 128;
    /// Widest pitch bend [`Synth::set_pitch_bend`] accepts, in semitones
    /// either way.
    pub const MAX_BEND_SEMITONES: f32 = 48.0;

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
            bend_semitones: 0.0,
            bend_ratio: 1.0,
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
            k_resonance: params.resonance,
            filter_gen: 0,
            tick_pos: 0,
            clock: 0,
            serial: 0,
            changes: 0,
            settled_at: None,
            live: 0,
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

    /// Silences every voice at once, jumps all smoothers to their targets,
    /// returns the pitch bend to 0 and restarts the control-rate grid.
    pub fn reset(&mut self) {
        self.touch();
        for g in self.groups.iter_mut() {
            for l in 0..LANES {
                g.free(l);
            }
        }
        self.voices = [VoiceCtl::default(); Synth::MAX_VOICES];
        self.live = 0;
        self.bend_semitones = 0.0;
        self.bend_ratio = 1.0;
        self.gain.snap();
        self.bypass.snap();
        self.cutoff.snap();
        self.resonance.snap();
        self.filter.log2_cutoff = self.cutoff.value();
        self.k_resonance = self.resonance.value();
        self.filter.k = filter::resonance_to_k(self.k_resonance);
        self.filter.env_octaves = self.params.filter_env_octaves;
        // The sample rate may have changed the clamps and the angle scale too.
        self.filter_gen = self.filter_gen.wrapping_add(1);
        self.tick_pos = 0;
        self.clock = 0;
    }

    /// Applies new parameters. Gain, cutoff and resonance ramp over 10 ms;
    /// envelope times apply from the next stage a voice enters (the sustain
    /// level glides there live); the waveform switches on the next sample;
    /// velocity sensitivity applies to later notes; bypass starts a 10 ms
    /// fade. NaN and out-of-range values are sanitised.
    pub fn set_params(&mut self, p: &SynthParams) {
        self.touch();
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
        if p.waveform != old.waveform {
            // Voices alone compute a period's samples from their anchors: the new waveform
            // starts here, not at the anchors.
            self.groups.iter_mut().for_each(Group::reanchor);
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

    /// Starts a note (`note` is clamped to 0..=127, `velocity` to 0..=1,
    /// NaN velocity counts as 1). Takes the lowest free voice. When all
    /// voices are busy it steals one, preferring a voice already fading out
    /// with no note waiting, then the oldest releasing voice, then the oldest
    /// held one; the stolen voice fades out linearly (3 ms from full level)
    /// and the new note starts on it at the first control update after the
    /// fade. If every voice is already fading out for a waiting note, the
    /// oldest waiting note is replaced.
    pub fn note_on(&mut self, note: u8, velocity: f32, note_id: i32) {
        self.touch();
        self.serial = self.serial.wrapping_add(1);
        let n = PendingNote {
            note: note.min(127),
            velocity: if velocity.is_nan() { 1.0 } else { velocity.clamp(0.0, 1.0) },
            note_id,
            serial: self.serial,
        };
        if let Some(i) = self.voices.iter().position(|v| v.stage == Stage::Idle) {
            let ctx = StartCtx {
                note_inc: &self.note_inc,
                bend_ratio: self.bend_ratio,
                attack: self.env.attack(),
                velocity_sens: self.params.velocity_sens,
                filter: self.filter,
                clock: self.clock,
            };
            if let (Some(g), Some(v)) = (self.groups.get_mut(i / LANES), self.voices.get_mut(i)) {
                start_note(g, i % LANES, v, n, &ctx);
                self.live |= 1 << (i / LANES);
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
        self.voices.iter().enumerate().min_by_key(|(_, v)| key(v)).map(|(i, _)| i)
    }

    /// Releases the held voices of a note: those whose id is `note_id`, or,
    /// when `note_id` is -1 (or no voice carries that id), those playing
    /// `note` that were started without an id (any id when `note_id` is
    /// -1). A matching note still waiting for a stolen voice is cancelled.
    pub fn note_off(&mut self, note: u8, note_id: i32) {
        let mut matched = false;
        if note_id != -1 {
            matched = self.release_where(|_, id| id == note_id);
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
        if any {
            // Nothing matched, nothing changed: a stray note-off leaves a settled (or
            // sleeping) synth so.
            self.touch();
        }
        any
    }

    /// Bends the pitch of every sounding voice, and of every note started
    /// later, by `semitones` from its note's pitch (clamped to
    /// ±[`Synth::MAX_BEND_SEMITONES`]; NaN and infinities count as 0). The bend is
    /// absolute, not added to the previous one. Each voice's oscillator keeps
    /// its phase and only its increment changes, so the new pitch applies
    /// from the next rendered sample on, without a click: a bend between two
    /// [`Synth::render`] calls is sample-accurate. Increments are capped at
    /// the highest the oscillators allow (0.45 cycles per sample), as
    /// unbent ones are. At 0 every increment is exactly its note's unbent
    /// one (no multiplication happens), so a synth whose bend is 0 renders
    /// bit-identically to one never bent. Setting the bend it already has
    /// does nothing; otherwise the cost is one `powf` and a pass over the
    /// 128 voices, never a per-sample cost. [`Synth::reset`] (and so a
    /// sample-rate change) returns the bend to 0; [`Synth::all_notes_off`]
    /// leaves it (the wheel is not a note).
    pub fn set_pitch_bend(&mut self, semitones: f32) {
        let semitones = if semitones.is_finite() {
            semitones.clamp(-Self::MAX_BEND_SEMITONES, Self::MAX_BEND_SEMITONES)
        } else {
            0.0
        };
        // -0.0 is rest too.
        let semitones = if semitones == 0.0 { 0.0 } else { semitones };
        if semitones.to_bits() == self.bend_semitones.to_bits() {
            return;
        }
        self.touch();
        self.bend_semitones = semitones;
        self.bend_ratio = if semitones == 0.0 { 1.0 } else { 2f64.powf(f64::from(semitones) / 12.0) as f32 };
        let ratio = self.bend_ratio;
        for (g, ctls) in self.groups.iter_mut().zip(self.voices.chunks_exact(LANES)) {
            if g.active == 0 {
                continue;
            }
            for (l, v) in ctls.iter().enumerate() {
                if v.stage != Stage::Idle {
                    g.set_inc(l, bent_inc(self.note_inc[usize::from(v.note.min(127))], ratio));
                }
            }
        }
    }

    /// The current pitch bend in semitones (0 at rest).
    pub fn pitch_bend(&self) -> f32 {
        self.bend_semitones
    }

    /// Whether no voice sounds (cheaper than [`Synth::active_voices`]` == 0`).
    pub fn is_silent(&self) -> bool {
        debug_assert_eq!(self.live == 0, self.groups.iter().all(|g| g.active == 0));
        self.live == 0
    }

    /// Nothing sounds, nothing moves and the settled control tick is done: until a note,
    /// a parameter, the bend or a reset changes something, rendering leaves the output
    /// zero and changes nothing but the time ([`Synth::skip_silence`] stands for it).
    pub fn is_asleep(&self) -> bool {
        self.settled() && self.silent_and_settled()
    }

    /// Advances the time of a synth that [`Synth::is_asleep`] by `n` samples: what
    /// rendering `n` samples of silence would change in it.
    pub fn skip_silence(&mut self, n: u64) {
        debug_assert!(self.is_asleep(), "skip_silence on a synth that is not asleep");
        let n_in_period = (n % CONTROL_PERIOD as u64) as usize;
        self.tick_pos = (self.tick_pos + n_in_period) % CONTROL_PERIOD;
        self.clock = self.clock.wrapping_add(n);
    }

    /// Something changed that the next control tick must look at: a note, a parameter,
    /// the bend, a reset. Every method that changes one calls this.
    fn touch(&mut self) {
        self.changes = self.changes.wrapping_add(1);
    }

    /// The last control tick found nothing to do, and nothing changed since.
    fn settled(&self) -> bool {
        self.settled_at == Some(self.changes)
    }

    /// The number of sounding voices, if every group that holds one renders its lanes on
    /// their own ([`is_sparse`]).
    #[inline(always)]
    fn sparse_voices(&self) -> Option<usize> {
        let mut voices = 0;
        for gi in set_bits::<GROUPS>(self.live) {
            let active = self.groups[gi].active;
            if !is_sparse(active) {
                return None;
            }
            voices += active.count_ones() as usize;
        }
        Some(voices)
    }

    /// A control tick now would change nothing: it is settled, and the cutoff and resonance
    /// smoothers (the only state it moves then) stand still, so their next values are the
    /// ones the filter already has. A held note in its sustain skips its ticks this way.
    fn tick_is_idle(&self) -> bool {
        self.settled() && !(self.cutoff.is_ramping() || self.resonance.is_ramping())
    }

    /// No voice sounds and no smoothed parameter is moving.
    fn silent_and_settled(&self) -> bool {
        self.is_silent()
            && !(self.gain.is_ramping()
                || self.bypass.is_ramping()
                || self.cutoff.is_ramping()
                || self.resonance.is_ramping())
    }

    /// Number of sounding voices (including releasing and fading ones).
    pub fn active_voices(&self) -> usize {
        debug_assert_eq!(
            self.active_mask().count_ones() as usize,
            self.voices.iter().filter(|v| v.stage != Stage::Idle).count()
        );
        self.active_mask().count_ones() as usize
    }

    /// The sounding voices as a bit set: bit `i` is set when voice `i` sounds (what
    /// [`Synth::voice`]`(i).active` says), read from the groups that hold a voice.
    pub fn active_mask(&self) -> u128 {
        let mut mask = 0u128;
        for gi in set_bits::<GROUPS>(self.live) {
            if let Some(g) = self.groups.get(gi) {
                mask |= u128::from(g.active) << (gi * LANES);
            }
        }
        mask
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
            note_id: v.note_id,
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
        let log2_cutoff = self.cutoff.next_value();
        let resonance = self.resonance.next_value();
        if resonance.to_bits() != self.k_resonance.to_bits() {
            self.k_resonance = resonance;
            self.filter.k = filter::resonance_to_k(resonance);
            self.filter_gen = self.filter_gen.wrapping_add(1);
            self.touch();
        }
        let env_octaves = self.params.filter_env_octaves;
        if log2_cutoff.to_bits() != self.filter.log2_cutoff.to_bits()
            || env_octaves.to_bits() != self.filter.env_octaves.to_bits()
        {
            self.filter.log2_cutoff = log2_cutoff;
            self.filter.env_octaves = env_octaves;
            self.filter_gen = self.filter_gen.wrapping_add(1);
            self.touch();
        }
        let generation = self.filter_gen;
        if self.settled() {
            return;
        }
        // Whether every voice is held at its sustain level (set below).
        let mut held = true;
        let env = &self.env;
        for gi in set_bits::<GROUPS>(self.live) {
            let (Some(g), Some(ctls)) = (self.groups.get_mut(gi), self.voices.get_mut(gi * LANES..(gi + 1) * LANES))
            else {
                continue;
            };
            // Only active lanes have a stage to move (a free lane is idle).
            for l in set_bits::<LANES>(g.active) {
                let Some(v) = ctls.get_mut(l) else { continue };
                let e = g.env(l);
                match v.stage {
                    Stage::Idle => held = false,
                    Stage::Attack => {
                        held = false;
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
                            held = false;
                        } else {
                            g.set_segment(l, env.decay_with(v.decay_mul, e));
                            // At the sustain level the segment holds it there: the next
                            // tick would set the same one.
                            held &= e.to_bits() == env.sustain().to_bits();
                        }
                    }
                    Stage::Release => {
                        held = false;
                        if e <= SILENCE {
                            g.free(l);
                            *v = VoiceCtl::default();
                        }
                    }
                    Stage::Steal => {
                        held = false;
                        if e <= 0.0 {
                            match v.pending {
                                Some(p) => {
                                    let ctx = StartCtx {
                                        note_inc: &self.note_inc,
                                        bend_ratio: self.bend_ratio,
                                        attack: env.attack(),
                                        velocity_sens: self.params.velocity_sens,
                                        filter: self.filter,
                                        clock: self.clock,
                                    };
                                    start_note(g, l, v, p, &ctx);
                                }
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
                g.update_filter(&self.filter, generation);
            } else {
                self.live &= !(1 << gi);
            }
        }
        self.settled_at = held.then_some(self.changes);
    }

    /// Renders the mix into `left` and `right`, overwriting them (the right
    /// channel is a copy of the left). Any length works, including 0; if the
    /// lengths differ the extra samples of the longer slice are zeroed.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len());
        left[n..].fill(0.0);
        right[n..].fill(0.0);
        if self.render_over_zeros(&mut left[..n], &mut right[..n]) {
            left[..n].fill(0.0);
            right[..n].fill(0.0);
        }
    }

    /// As [`Synth::render`] into channels that already hold zeros (an instrument's
    /// output before it renders): when nothing sounds it leaves them untouched and
    /// returns `true` (the output is exactly zero); otherwise it renders and returns
    /// `false`.
    pub fn render_over_zeros(&mut self, left: &mut [f32], right: &mut [f32]) -> bool {
        let n = left.len().min(right.len());
        let (left, left_rest) = left.split_at_mut(n);
        let (right, right_rest) = right.split_at_mut(n);
        left_rest.fill(0.0);
        right_rest.fill(0.0);
        if self.silent_and_settled() {
            // Nothing sounds and nothing moves: the output is exactly zero, and the state
            // after `n` samples is what the full path would leave (a control tick of a
            // settled synth with no voice only re-reads settled values, so one stands for
            // all the period boundaries crossed).
            let crossed = self.tick_pos + n > CONTROL_PERIOD || (self.tick_pos == 0 && n > 0);
            if crossed && !self.settled() {
                // With no voice the tick finds nothing to do, and settles.
                self.control_tick();
            }
            self.tick_pos = (self.tick_pos + n) % CONTROL_PERIOD;
            self.clock = self.clock.wrapping_add(n as u64);
            return true;
        }
        match self.params.waveform {
            Waveform::Saw => self.render_periods::<SawOsc>(left),
            Waveform::Square => self.render_periods::<SquareOsc>(left),
            Waveform::Sine => self.render_periods::<SineOsc>(left),
        }
        right.copy_from_slice(left);
        false
    }

    /// Renders `out.len()` samples of the voices with oscillator `O` into `out`, control
    /// period by control period: one call per host block, so a voice alone does not pay
    /// for a call and its set-up at every period.
    #[inline(never)]
    fn render_periods<O: Oscillator>(&mut self, out: &mut [f32]) {
        let n = out.len();
        // Made only when a period takes the general path (a block of voices on their own
        // over whole periods does not use it).
        let mut mix = None;
        let mut done = 0;
        while done < n {
            if self.tick_pos == 0 && !self.tick_is_idle() {
                self.control_tick();
            }
            let len = (CONTROL_PERIOD - self.tick_pos).min(n - done);
            if len == CONTROL_PERIOD
                && !(self.gain.is_ramping() || self.bypass.is_ramping())
                && let Some(voices @ 1..) = self.sparse_voices()
            {
                // Voices on their own over whole periods at a settled gain (a line of
                // single notes or a few held ones, the common case): straight from each
                // voice to the output. This period, and the ones after it too when their
                // ticks would change nothing (nothing that rendering does makes a tick
                // needed again).
                let periods = if self.tick_is_idle() { (n - done) / CONTROL_PERIOD } else { 1 };
                let out = &mut out[done..done + periods * CONTROL_PERIOD];
                let gain = self.gain.value() * self.bypass.value();
                let mut k = 0;
                for gi in set_bits::<GROUPS>(self.live) {
                    let g = &mut self.groups[gi];
                    for (rank, l) in set_bits::<LANES>(g.active).enumerate() {
                        g.render_lane_periods::<O>(l, rank, Part::of(k, voices), HEADROOM, gain, out);
                        k += 1;
                    }
                }
                self.clock = self.clock.wrapping_add(out.len() as u64);
                done += out.len();
                continue;
            }
            let mix = mix.get_or_insert_with(Mix::new);
            mix.lone = [0.0; CONTROL_PERIOD];
            let whole = render_groups::<O>(&mut self.groups, self.live, self.tick_pos, len, mix);
            let out = &mut out[done..done + len];
            if self.gain.is_ramping() || self.bypass.is_ramping() {
                let (gain, bypass) = (&mut self.gain, &mut self.bypass);
                mix_down(out, mix, whole, || gain.next_value() * bypass.next_value());
            } else {
                // Settled gains: the same product every sample (what `next_value` returns
                // when not ramping), without two branches per sample.
                let g = self.gain.value() * self.bypass.value();
                mix_down(out, mix, whole, || g);
            }
            self.tick_pos = (self.tick_pos + len) % CONTROL_PERIOD;
            self.clock = self.clock.wrapping_add(len as u64);
            done += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;
    const BLOCK: usize = 512;

    /// Power of `x` at `freq` (Hann window, Goertzel in f64).
    fn power_at(x: &[f32], freq: f64, sr: f32) -> f64 {
        let n = x.len();
        let w = std::f64::consts::TAU * freq / f64::from(sr);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for (i, &v) in x.iter().enumerate() {
            let h = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            let s0 = f64::from(v) * h + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    }

    /// Frequency of the strongest component between `lo` and `hi` Hz: a
    /// 1 Hz scan refined to 0.02 Hz around the peak.
    fn peak_freq(x: &[f32], lo: f64, hi: f64, sr: f32) -> f64 {
        let scan = |from: f64, to: f64, step: f64| {
            let mut best = (from, f64::MIN);
            let mut f = from;
            while f <= to {
                let p = power_at(x, f, sr);
                if p > best.1 {
                    best = (f, p);
                }
                f += step;
            }
            best.0
        };
        let coarse = scan(lo, hi, 1.0);
        scan(coarse - 1.5, coarse + 1.5, 0.02)
    }

    /// Renders `n` samples in blocks of `block`, returning the left channel
    /// and checking that the right one is identical.
    fn render_n(s: &mut Synth, n: usize, block: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        let mut l = vec![0.0; block];
        let mut r = vec![0.0; block];
        while out.len() < n {
            let len = block.min(n - out.len());
            s.render(&mut l[..len], &mut r[..len]);
            assert_eq!(l[..len], r[..len]);
            out.extend_from_slice(&l[..len]);
        }
        out
    }

    fn synth_with(p: SynthParams) -> Synth {
        let mut s = Synth::new(SR, BLOCK);
        s.set_params(&p);
        s.reset();
        s
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn a4_fundamental_is_440_hz_for_every_waveform() {
        for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
            let mut s = synth_with(SynthParams { waveform, ..SynthParams::default() });
            s.note_on(69, 1.0, -1);
            render_n(&mut s, 4800, BLOCK);
            let x = render_n(&mut s, 16_384, BLOCK);
            let f = peak_freq(&x, 50.0, 2000.0, SR);
            assert!((f - 440.0).abs() <= 1.0, "{waveform:?}: peak at {f} Hz");
        }
    }

    /// The phase is fixed point: after any number of samples, in any split, a voice alone
    /// or in a full group stands exactly that many steps on, so its pitch does not drift
    /// with rounding, even at the highest sample rate, where a step is tiny.
    #[test]
    fn phases_advance_exactly_without_drift() {
        for voices in [1usize, 3] {
            let mut s = Synth::new(MAX_SAMPLE_RATE, 512);
            for i in 0..voices {
                s.note_on(33 + 12 * i as u8, 1.0, i as i32);
            }
            let (mut l, mut r) = (vec![0.0f32; 4099], vec![0.0f32; 4099]);
            let mut total = 0u32;
            for len in [1usize, 4099, 16, 17, 3, 512, 4000] {
                s.render(&mut l[..len], &mut r[..len]);
                total += len as u32;
            }
            let g = &s.groups[0];
            for lane in 0..voices {
                // The voices hold the group's first lanes, each at its note's step.
                assert!(g.active & (1 << lane) != 0 && g.step[lane] > 0);
                assert_eq!(g.step[lane], crate::dsp::osc::phase_step(s.note_inc[33 + 12 * lane]));
                assert_eq!(g.phase[lane], g.step[lane].wrapping_mul(total), "{voices} voices, lane {lane}");
            }
        }
    }

    #[test]
    fn pitch_follows_the_equal_tempered_scale() {
        for (note, hz) in [(57u8, 220.0), (81, 880.0), (60, 261.625_565)] {
            let mut s = synth_with(SynthParams { waveform: Waveform::Sine, ..SynthParams::default() });
            s.note_on(note, 1.0, -1);
            render_n(&mut s, 4800, BLOCK);
            let x = render_n(&mut s, 16_384, BLOCK);
            let f = peak_freq(&x, 50.0, 2000.0, SR);
            assert!((f - hz).abs() <= 1.0, "note {note}: peak at {f} Hz, want {hz}");
        }
    }

    #[test]
    fn chord_is_audible_and_not_clipping_wildly() {
        let mut s = synth_with(SynthParams::default());
        for (i, n) in [60u8, 64, 67, 72].into_iter().enumerate() {
            s.note_on(n, 0.9, i as i32);
        }
        let x = render_n(&mut s, 24_000, BLOCK);
        assert!(rms(&x) > 0.02, "rms {}", rms(&x));
        assert_eq!(s.active_voices(), 4);

        let mut s = synth_with(SynthParams::default());
        for i in 0..16u8 {
            s.note_on(36 + 3 * i, 1.0, -1);
        }
        let x = render_n(&mut s, 24_000, BLOCK);
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak < 2.0, "16-note chord peaks at {peak}");
        assert!(rms(&x) > 0.05);
    }

    #[test]
    fn output_is_exactly_zero_after_release() {
        for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
            let p = SynthParams { waveform, release_s: 0.3, ..SynthParams::default() };
            let mut s = synth_with(p);
            s.note_on(60, 1.0, 7);
            s.note_on(67, 0.5, 8);
            let held = render_n(&mut s, 9_600, 333);
            assert!(rms(&held) > 0.01);
            s.note_off(60, 7);
            s.note_off(67, 8);
            assert!(s.voice(0).releasing);
            // Release time plus a 20 ms margin, in odd block sizes.
            render_n(&mut s, (0.32 * SR) as usize, 97);
            assert_eq!(s.active_voices(), 0);
            let tail = render_n(&mut s, 4096, 61);
            assert!(tail.iter().all(|&v| v == 0.0), "{waveform:?}: not silent");
        }
    }

    #[test]
    fn lower_cutoff_reduces_high_frequency_energy() {
        let hf = |cutoff_hz: f32| {
            let mut s = synth_with(SynthParams {
                cutoff_hz,
                filter_env_octaves: 0.0,
                resonance: 0.0,
                ..SynthParams::default()
            });
            s.note_on(45, 1.0, -1); // 110 Hz
            render_n(&mut s, 4800, BLOCK);
            let x = render_n(&mut s, 8192, BLOCK);
            let high: f64 = (20..80).map(|h| power_at(&x, 110.0 * f64::from(h), SR)).sum();
            let low = power_at(&x, 110.0, SR);
            (high, low)
        };
        let (open_hf, open_lf) = hf(8000.0);
        let (closed_hf, closed_lf) = hf(500.0);
        assert!(closed_hf * 100.0 < open_hf, "{closed_hf:e} vs {open_hf:e}");
        // The fundamental passes through both.
        assert!(closed_lf > open_lf * 0.5);
    }

    /// A fixed script of events at block starts, rendered with `split`
    /// deciding how each 512-sample block is cut into `render` calls.
    fn scripted_run(split: &dyn Fn(usize) -> Vec<usize>) -> Vec<f32> {
        let mut s = synth_with(SynthParams::default());
        let mut out = Vec::new();
        let mut l = [0.0f32; BLOCK];
        let mut r = [0.0f32; BLOCK];
        for block in 0..60usize {
            match block {
                0 => {
                    for i in 0..20u8 {
                        s.note_on(30 + 3 * i, 0.3 + 0.03 * f32::from(i), i32::from(i));
                    }
                }
                5 => s.set_params(&SynthParams {
                    cutoff_hz: 600.0,
                    resonance: 0.9,
                    gain_db: 3.0,
                    ..SynthParams::default()
                }),
                9 => {
                    for i in 0..150u8 {
                        s.note_on(i % 128, 0.7, 100 + i32::from(i));
                    }
                }
                12 => {
                    s.set_params(&SynthParams { waveform: Waveform::Square, release_s: 0.05, ..SynthParams::default() })
                }
                20 => s.all_notes_off(),
                30 => {
                    s.set_params(&SynthParams { waveform: Waveform::Sine, bypass: true, ..SynthParams::default() });
                    s.note_on(69, 1.0, -1);
                }
                33 => s.set_params(&SynthParams::default()),
                45 => s.note_off(69, -1),
                _ => {}
            }
            let mut pos = 0;
            for len in split(block) {
                let end = (pos + len).min(BLOCK);
                s.render(&mut l[pos..end], &mut r[pos..end]);
                pos = end;
            }
            s.render(&mut l[pos..], &mut r[pos..]);
            assert_eq!(l, r);
            out.extend_from_slice(&l);
        }
        out
    }

    /// Skipping the control ticks of held voices changes nothing: a synth rendered in
    /// 333-sample calls (which skips them) and one whose every tick runs in full, through
    /// holds that reach the sustain level and every change that must end a hold (sustain,
    /// cutoff and resonance glides, envelope depth, bend, notes on and off, a reset), give
    /// the same output bit for bit, for voices alone and for a whole group.
    #[test]
    fn skipping_the_ticks_of_held_voices_is_inaudible() {
        type Action = fn(&mut Synth);
        let script: [(usize, Action); 11] = [
            (0, |s| {
                s.note_on(60, 0.8, 1);
                s.note_on(64, 0.6, 2);
            }),
            (24_000, |s| s.set_params(&SynthParams { sustain: 0.3, ..*s.params() })),
            (48_000, |s| s.set_params(&SynthParams { cutoff_hz: 500.0, ..*s.params() })),
            (72_000, |s| s.set_params(&SynthParams { resonance: 0.8, ..*s.params() })),
            (96_000, |s| s.set_params(&SynthParams { filter_env_octaves: -1.0, ..*s.params() })),
            (120_000, |s| s.set_pitch_bend(1.5)),
            (144_000, |s| {
                for n in 0..5 {
                    s.note_on(67 + n, 0.7, 10 + i32::from(n));
                }
            }),
            (168_000, |s| s.note_off(60, 1)),
            (192_000, |s| s.all_notes_off()),
            (216_000, |s| s.note_on(72, 1.0, 20)),
            (240_000, |s| {
                s.reset();
                s.note_on(48, 0.9, 21);
            }),
        ];
        let end = 264_000;
        let (mut fast, mut full) = (synth_with(SynthParams::default()), synth_with(SynthParams::default()));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut held_seen = 0;
        for (i, &(at, action)) in script.iter().enumerate() {
            let until = script.get(i + 1).map_or(end, |&(next, _)| next);
            action(&mut fast);
            action(&mut full);
            a.extend(render_n(&mut fast, until - at, 333));
            // Every tick in full: one control period per call, the skip forgotten first.
            for _ in 0..(until - at) / CONTROL_PERIOD {
                full.settled_at = None;
                b.extend(render_n(&mut full, CONTROL_PERIOD, CONTROL_PERIOD));
            }
            held_seen += usize::from(fast.settled());
        }
        assert_eq!(a.len(), b.len());
        let first = a.iter().zip(&b).position(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(first, None, "the renders part at sample {first:?}");
        // The skip was taken: voices reached their sustain before most changes.
        assert!(held_seen >= 8, "{held_seen}");
    }

    /// The same with random scripts: notes (also by id, and enough to steal), releases,
    /// every parameter (sustain 0 and 1 among them), the bend and resets, at random
    /// samples, mid-period too, rendered in random call lengths against a synth whose
    /// every tick runs in full. Whenever the fast synth is asleep, its time is skipped
    /// instead of rendered, as the framework does for a sleeping engine.
    #[test]
    fn skipping_the_ticks_of_held_voices_is_inaudible_in_random_scripts() {
        use super::super::Lcg;
        let len = 150_000;
        let (mut skipped, mut slept) = (0, 0);
        for seed in 1..=4u64 {
            let mut r = Lcg(seed);
            let mut p = SynthParams { attack_s: 0.001, decay_s: 0.01, release_s: 0.02, ..SynthParams::default() };
            let (mut fast, mut full) = (synth_with(p), synth_with(p));
            let (mut a, mut b) = (vec![0.0f32; len], vec![0.0f32; len]);
            let mut right = vec![0.0f32; len];
            let (mut pos, mut id) = (0usize, 0i32);
            while pos < len {
                let note = 40 + r.below(12) as u8;
                let action: Box<dyn Fn(&mut Synth)> = match r.below(20) {
                    0..=6 => {
                        id += 1;
                        let (v, nid) = (r.below(100) as f32 / 99.0, if r.below(2) == 0 { -1 } else { id });
                        Box::new(move |s| s.note_on(note, v, nid))
                    }
                    7..=9 => {
                        let nid = if r.below(3) == 0 { -1 } else { r.below(id.max(1) as u32) as i32 };
                        Box::new(move |s| s.note_off(note, nid))
                    }
                    10 => Box::new(|s| s.all_notes_off()),
                    11..=15 => {
                        match r.below(8) {
                            0 => p.sustain = [0.0, 0.3, 0.7, 1.0, 5e-6][r.below(5) as usize],
                            1 => p.cutoff_hz = [200.0, 1000.0, 8000.0][r.below(3) as usize],
                            2 => p.resonance = r.below(10) as f32 / 9.0,
                            3 => p.filter_env_octaves = r.below(13) as f32 - 6.0,
                            4 => p.waveform = [Waveform::Saw, Waveform::Square, Waveform::Sine][r.below(3) as usize],
                            5 => p.velocity_sens = r.below(2) as f32,
                            6 => p.bypass = r.below(4) == 0,
                            _ => p.decay_s = [0.0, 0.01, 0.05][r.below(3) as usize],
                        }
                        Box::new(move |s| s.set_params(&p))
                    }
                    16 => {
                        let bend = r.below(5) as f32 - 2.0;
                        Box::new(move |s| s.set_pitch_bend(bend))
                    }
                    17 => Box::new(|s| s.reset()),
                    _ => {
                        let k = if r.below(3) == 0 { 140 } else { 3 + r.below(8) as u8 };
                        Box::new(move |s| (0..k).for_each(|i| s.note_on(30 + i % 90, 0.5, 1000 + i32::from(i))))
                    }
                };
                action(&mut fast);
                action(&mut full);
                let until = (pos
                    + [r.below(40), r.below(500), r.below(6000), r.below(6000)][r.below(4) as usize] as usize)
                    .min(len);
                let mut at = pos;
                while at < until {
                    let n = ([r.below(17), r.below(700), 16][r.below(3) as usize] as usize).clamp(1, until - at);
                    if fast.is_asleep() {
                        // What the framework does for a sleeping engine: no render, the
                        // time skipped (`a` holds zeros there).
                        fast.skip_silence(n as u64);
                        slept += n;
                    } else {
                        fast.render(&mut a[at..at + n], &mut right[at..at + n]);
                    }
                    skipped += usize::from(fast.settled());
                    at += n;
                }
                while pos < until {
                    // One control period at most per call, the skip forgotten before each tick.
                    let n = (CONTROL_PERIOD - full.tick_pos).min(until - pos);
                    full.settled_at = None;
                    full.render(&mut b[pos..pos + n], &mut right[pos..pos + n]);
                    pos += n;
                }
            }
            let first = a.iter().zip(&b).position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(first, None, "seed {seed}: the renders part at sample {first:?}");
        }
        assert!(skipped > 100, "{skipped}");
        assert!(slept > 50_000, "samples skipped asleep: {slept}");
    }

    /// A group rendered lane by lane (few voices, as blocks from each lane's anchor) gives
    /// the output and the state of the group rendered whole, up to rounding, for every
    /// waveform, through attack, decay and release, from any position in the period.
    #[test]
    fn sparse_groups_render_like_whole_groups() {
        for waveform in [Waveform::Sine, Waveform::Saw, Waveform::Square] {
            let mut s = Synth::new(SR, BLOCK);
            s.set_params(&SynthParams { waveform, resonance: 0.7, ..SynthParams::default() });
            // Three voices: a group rendered lane by lane holds at most three.
            const { assert!(super::super::voice::SPARSE_LANES == 3) };
            for (i, note) in [40u8, 55, 67].into_iter().enumerate() {
                s.note_on(note, 0.3 + 0.2 * i as f32, i as i32);
            }
            let mut out = vec![0.0f32; 3001];
            let mut right = out.clone();
            for step in 0..6 {
                s.render(&mut out, &mut right);
                if step == 3 {
                    s.note_off(67, 1);
                }
                let g = s.groups.iter().find(|g| g.active != 0).copied().expect("an active group");
                let (mut dense, mut sparse) = (g, g);
                let (mut acc_dense, mut lone) = ([[0.0f32; LANES]; 64], [0.0f32; 64]);
                // Period by period from where the synth stands, as the synth renders.
                let (mut done, mut pos) = (0, s.tick_pos);
                while done < 64 {
                    let len = (CONTROL_PERIOD - pos).min(64 - done);
                    let (acc, out) = (&mut acc_dense[done..done + len], &mut lone[done..done + len]);
                    match waveform {
                        Waveform::Saw => (dense.render::<SawOsc>(acc), sparse.render_sparse::<SawOsc>(pos, out)),
                        Waveform::Square => {
                            (dense.render::<SquareOsc>(acc), sparse.render_sparse::<SquareOsc>(pos, out))
                        }
                        Waveform::Sine => (dense.render::<SineOsc>(acc), sparse.render_sparse::<SineOsc>(pos, out)),
                    };
                    (done, pos) = (done + len, (pos + len) % CONTROL_PERIOD);
                }
                let mixed: Vec<f32> = acc_dense.iter().map(lane_sum).collect();
                let peak = mixed.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(peak > 1e-3, "{waveform:?}, step {step}");
                // Rounding: both paths run the same phases bit for bit.
                let tol = 2e-5;
                let diff = mixed.iter().zip(&lone).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(diff <= tol * peak, "{waveform:?}, step {step}: {:.2e} of the peak", diff / peak);
                for l in 0..LANES {
                    let env = (dense.env[l] - sparse.env[l]).abs();
                    assert!(env <= 1e-6, "{waveform:?}, step {step}, lane {l}: envelope {env:e}");
                    let scale = dense.ic1[l].abs().max(dense.ic2[l].abs()).max(1e-3);
                    let ic = (dense.ic1[l] - sparse.ic1[l]).abs().max((dense.ic2[l] - sparse.ic2[l]).abs());
                    // The f32 step form's own error reaches 4e-5 of the signal (trio_dsp's
                    // `block_matches_the_step_form`).
                    assert!(ic <= 1e-4 * scale, "{waveform:?}, step {step}, lane {l}: filter state {ic:e}");
                    assert_eq!(dense.phase[l], sparse.phase[l], "{waveform:?}, step {step}, lane {l}: phase");
                }
            }
        }
    }

    /// A voice alone (rendered as blocks) sounds like the same voice in a group rendered
    /// whole, through events in the middle of control periods: a second note, pitch bends,
    /// a release, sustain and cutoff moves, a waveform switch, a new note. The whole group is forced by two more
    /// held notes of velocity 0 at full velocity sensitivity, which add exactly nothing.
    /// Then the same script is cut into other `render` calls: the lone voice's output does
    /// not change by a bit.
    #[test]
    fn a_voice_alone_sounds_like_a_voice_in_a_full_group() {
        let script = |s: &mut Synth, at: usize, p: SynthParams| match at {
            37 => s.set_pitch_bend(2.5),
            301 => s.set_params(&SynthParams { sustain: 0.9, cutoff_hz: 300.0, ..p }),
            1000 => s.note_on(72, 0.6, 7),
            1501 if p.waveform == Waveform::Saw => {
                s.set_params(&SynthParams { sustain: 0.9, cutoff_hz: 300.0, waveform: Waveform::Square, ..p });
            }
            1203 => s.set_pitch_bend(-7.0),
            2011 => s.note_off(72, 7),
            2999 => s.note_off(45, 1),
            3333 => s.note_on(57, 1.0, 2),
            _ => {}
        };
        let run = |p: SynthParams, padding: bool, cuts: &[usize]| {
            let mut s = synth_with(p);
            s.note_on(45, 0.9, 1);
            if padding {
                s.note_on(90, 0.0, 100);
                s.note_on(91, 0.0, 101);
            }
            let (mut l, mut r) = (vec![0.0f32; 5000], vec![0.0f32; 5000]);
            let mut stops = vec![37, 301, 1000, 1203, 1501, 2011, 2999, 3333, 5000];
            stops.extend_from_slice(cuts);
            stops.sort_unstable();
            let mut pos = 0;
            for stop in stops {
                s.render(&mut l[pos..stop], &mut r[pos..stop]);
                script(&mut s, stop, p);
                pos = stop;
            }
            l
        };
        // Rounding of the envelope and the filter (both paths run the same phases).
        for (waveform, tol) in [(Waveform::Sine, 5e-5), (Waveform::Saw, 5e-5)] {
            let p = SynthParams { velocity_sens: 1.0, resonance: 0.6, waveform, ..SynthParams::default() };
            let alone = run(p, false, &[]);
            let grouped = run(p, true, &[]);
            let peak = grouped.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(peak > 0.05, "{waveform:?}");
            let diff = alone.iter().zip(&grouped).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff < tol * peak, "{waveform:?}: {:.2e} of the peak", diff / peak);
            let cut = run(p, false, &[1, 2, 3, 50, 51, 1001, 1017, 4095]);
            assert!(bits(&alone) == bits(&cut), "{waveform:?}: cut into other calls");
        }
    }

    /// Voices that sound on their own (one, two or three) render whole control periods on
    /// a path of their own, straight into the output; they give bit for bit what the
    /// general path gives when the same samples come in calls of other lengths (where it
    /// is not taken), for each waveform, from a low note to the top of the keyboard,
    /// through attack, decay (where each period steps the filter), a held sustain (where
    /// it runs from its tables), a gain glide, a cutoff glide, a bend and the release to
    /// silence.
    #[test]
    fn voices_alone_render_the_same_by_the_period_and_by_the_sample() {
        let run = |p: SynthParams, notes: &[u8], cuts: &dyn Fn(usize) -> usize| {
            let mut s = synth_with(p);
            for (i, &note) in notes.iter().enumerate() {
                s.note_on(note, 0.8 - 0.2 * i as f32, i as i32);
            }
            let (mut l, mut r) = (vec![0.0f32; 40_000], vec![0.0f32; 40_000]);
            let mut pos = 0;
            while pos < l.len() {
                match pos {
                    8192 => s.set_params(&SynthParams { gain_db: -20.0, ..p }),
                    12_288 => s.set_params(&SynthParams { gain_db: -20.0, cutoff_hz: 500.0, ..p }),
                    16_384 => s.set_pitch_bend(3.0),
                    20_480 => notes.iter().enumerate().for_each(|(i, &note)| s.note_off(note, i as i32)),
                    _ => {}
                }
                // Calls end at the events, whatever their lengths.
                let event = [8192, 12_288, 16_384, 20_480, l.len()].into_iter().find(|&e| e > pos).unwrap_or(l.len());
                let end = (pos + cuts(pos)).min(event);
                s.render(&mut l[pos..end], &mut r[pos..end]);
                pos = end;
            }
            assert_eq!(s.active_voices(), 0, "the release of {notes:?} ends ({:?})", p.waveform);
            l
        };
        let chords: [&[u8]; 6] = [&[21], &[60], &[96], &[127], &[60, 67], &[36, 79, 100]];
        for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
            let p = SynthParams { waveform, release_s: 0.05, ..SynthParams::default() };
            for notes in chords {
                let periods = run(p, notes, &|_| 512);
                assert!(rms(&periods) > 1e-3, "{waveform:?} {notes:?}");
                let samples = run(p, notes, &|_| 1);
                assert!(bits(&periods) == bits(&samples), "{waveform:?} {notes:?}: calls of one sample differ");
                let odd = run(p, notes, &|pos| [7, 16, 9, 100, 32][pos % 5]);
                assert!(bits(&periods) == bits(&odd), "{waveform:?} {notes:?}: calls of odd lengths differ");
            }
        }
    }

    /// The same for a lone voice in another group and lane than the first, through the
    /// voice count going from ten to one, one to two and back, a resonance glide alone,
    /// a waveform switch, bypass on and off, and all notes off.
    #[test]
    fn a_lone_voice_anywhere_renders_the_same_through_voice_changes() {
        const END: usize = 53_248;
        let events = [2048, 12_288, 16_384, 20_480, 28_672, 32_768, 36_864, 40_960, END];
        let run = |cuts: &dyn Fn(usize) -> usize, check_lane: bool| {
            let p = SynthParams { release_s: 0.02, ..SynthParams::default() };
            let mut s = synth_with(p);
            for i in 0..10u8 {
                s.note_on(40 + i, 0.8, i32::from(i));
            }
            let (mut l, mut r) = (vec![0.0f32; END], vec![0.0f32; END]);
            let mut pos = 0;
            while pos < END {
                match pos {
                    2048 => (0..9u8).for_each(|i| s.note_off(40 + i, i32::from(i))),
                    12_288 => {
                        if check_lane {
                            let mask = s.active_mask();
                            let (g, l) =
                                (mask.trailing_zeros() as usize / LANES, mask.trailing_zeros() as usize % LANES);
                            assert!(mask.count_ones() == 1 && g > 0 && l > 0, "the lone voice: {mask:#x}");
                        }
                        s.set_params(&SynthParams { resonance: 0.7, ..p });
                    }
                    16_384 => s.note_on(70, 0.5, 70),
                    20_480 => s.note_off(70, 70),
                    28_672 => s.set_params(&SynthParams { resonance: 0.7, waveform: Waveform::Square, ..p }),
                    32_768 => {
                        s.set_params(&SynthParams { resonance: 0.7, waveform: Waveform::Square, bypass: true, ..p })
                    }
                    36_864 => s.set_params(&SynthParams { resonance: 0.7, waveform: Waveform::Square, ..p }),
                    40_960 => s.all_notes_off(),
                    _ => {}
                }
                let event = events.into_iter().find(|&e| e > pos).unwrap_or(END);
                let end = (pos + cuts(pos)).min(event);
                s.render(&mut l[pos..end], &mut r[pos..end]);
                pos = end;
            }
            assert_eq!(s.active_voices(), 0, "every release ends");
            l
        };
        let periods = run(&|_| 512, true);
        assert!(rms(&periods[12_288..16_384]) > 1e-3);
        let samples = run(&|_| 1, false);
        assert!(bits(&periods) == bits(&samples), "calls of one sample differ");
        let odd = run(&|pos| [7, 16, 9, 100, 32][pos % 5], false);
        assert!(bits(&periods) == bits(&odd), "calls of odd lengths differ");
    }

    /// Filter coefficients kept while a lane's envelope and the filter controls stand still
    /// render bit for bit like coefficients recomputed at every control tick, through
    /// cutoff, resonance and envelope-amount moves, sustain changes, steals and releases.
    #[test]
    fn kept_filter_coefficients_render_like_recomputed_ones() {
        for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
            let run = |recompute: bool| {
                let mut s =
                    synth_with(SynthParams { waveform, attack_s: 0.001, decay_s: 0.02, ..SynthParams::default() });
                let mut out = Vec::new();
                let mut l = [0.0f32; CONTROL_PERIOD];
                let mut r = [0.0f32; CONTROL_PERIOD];
                for period in 0..6000usize {
                    match period % 1500 {
                        0 => (0..20u8).for_each(|i| s.note_on(30 + i * 3, 0.9, -1)),
                        200 => s.set_params(&SynthParams { waveform, cutoff_hz: 300.0, ..*s.params() }),
                        400 => s.set_params(&SynthParams { waveform, resonance: 0.9, ..*s.params() }),
                        600 => s.set_params(&SynthParams { waveform, filter_env_octaves: -3.0, ..*s.params() }),
                        800 => s.set_params(&SynthParams { waveform, sustain: 0.3, ..*s.params() }),
                        900 => (0..20u8).for_each(|i| s.note_off(30 + i * 3, -1)),
                        1000 => (0..3u8).for_each(|i| s.note_on(70 + i, 0.5, -1)),
                        _ => {}
                    }
                    if recompute {
                        // No lane's coefficients match its envelope: all are recomputed.
                        s.groups.iter_mut().for_each(|g| g.coef_cutoff = [f32::NAN; LANES]);
                    }
                    s.render(&mut l, &mut r);
                    out.extend_from_slice(&l);
                }
                out
            };
            let (kept, recomputed) = (run(false), run(true));
            assert!(rms(&kept) > 0.01, "{waveform:?}");
            assert!(bits(&kept) == bits(&recomputed), "{waveform:?}");
        }
    }

    #[test]
    fn split_rendering_is_bit_identical_to_one_shot() {
        let whole = scripted_run(&|_| vec![BLOCK]);
        assert!(rms(&whole) > 0.01);
        let splits: [&dyn Fn(usize) -> Vec<usize>; 4] = [
            &|_| vec![1; BLOCK],
            &|_| vec![0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 0, 7],
            &|b| vec![(b * 37) % 511 + 1],
            &|b| (0..40).map(|i| (i * 7 + b) % 23).collect(),
        ];
        for (i, split) in splits.iter().enumerate() {
            let parts = scripted_run(*split);
            assert!(bits(&whole) == bits(&parts), "split pattern {i} differs");
        }
    }

    #[test]
    fn identical_runs_are_bit_identical() {
        let a = scripted_run(&|_| vec![100, 200]);
        let b = scripted_run(&|_| vec![100, 200]);
        assert!(bits(&a) == bits(&b));
        // Reset brings a used synth back to the same start, also when the lane is left
        // with the coefficients the new note starts with (a reset right after the note
        // started, or a filter the envelope does not move).
        for (octaves, used) in [(2.0, 5000), (2.0, 10), (0.0, 5000)] {
            let p = SynthParams { filter_env_octaves: octaves, ..SynthParams::default() };
            let mut fresh = synth_with(p);
            fresh.note_on(40, 1.0, -1);
            let first = render_n(&mut fresh, 5000, 256);
            let mut s = synth_with(p);
            s.note_on(40, 1.0, -1);
            render_n(&mut s, used, 256);
            s.reset();
            s.note_on(40, 1.0, -1);
            let second = render_n(&mut s, 5000, 256);
            assert!(bits(&first) == bits(&second), "octaves {octaves}, {used} samples before the reset");
        }
    }

    /// Every stale lane of a group rendered lane by lane gets the coefficients of its own
    /// envelope, in either half of the group, one lane or several at once.
    #[test]
    fn every_stale_lane_of_a_sparse_group_gets_its_coefficients() {
        let s = synth_with(SynthParams::default());
        let fc = s.filter;
        for mask in [0b1010_0100u32, 0b1000_0001, 0b0000_0110, 0b1110_0000, 0b0001_0011, 0b0100_0000] {
            let mut g = Group::default();
            for l in set_bits::<LANES>(mask) {
                g.start(l, 0.01, 0.5, Segment::SILENT, &fc);
                g.env[l] = 0.1 * (l + 1) as f32;
            }
            g.fresh = 0;
            g.update_filter(&fc, g.coef_gen.wrapping_add(1));
            for l in set_bits::<LANES>(mask) {
                let want = filter::step_coefs(g.env[l], &fc);
                let got = (g.fm[l], g.fq[l], g.fd[l]);
                assert_eq!(
                    [got.0, got.1, got.2].map(f32::to_bits),
                    [want.0, want.1, want.2].map(f32::to_bits),
                    "lanes {mask:#010b}, lane {l}"
                );
            }
            assert_eq!(g.fresh, mask, "lanes {mask:#010b}: new coefficients are new to the next block");
        }
    }

    /// A voice steps its filter while its envelope moves its coefficients (attack, decay,
    /// release) and runs from the block tables once it holds at its sustain level.
    #[test]
    fn a_voice_steps_its_filter_while_its_envelope_moves_and_not_once_it_holds() {
        let mut s = synth_with(SynthParams { cutoff_hz: 1000.0, ..SynthParams::default() });
        let (mut l, mut r) = ([0.0f32; CONTROL_PERIOD], [0.0f32; CONTROL_PERIOD]);
        s.note_on(60, 0.8, 1);
        s.render(&mut l, &mut r);
        assert!(s.groups[0].blocks[0].stepped(), "attack");
        for _ in 0..100 {
            s.render(&mut l, &mut r);
        }
        assert!(s.groups[0].blocks[0].stepped(), "decay");
        for _ in 0..6000 {
            s.render(&mut l, &mut r);
        }
        assert!(!s.groups[0].blocks[0].stepped(), "held at the sustain level");
        s.note_off(60, 1);
        for _ in 0..3 {
            s.render(&mut l, &mut r);
        }
        assert!(s.groups[0].blocks[0].stepped(), "release");
    }

    #[test]
    fn two_hundred_note_ons_steal_without_panicking() {
        // All at once, before any rendering.
        let mut s = synth_with(SynthParams::default());
        for i in 0..200u32 {
            s.note_on((i % 128) as u8, 1.0, i as i32);
        }
        assert_eq!(s.active_voices(), Synth::MAX_VOICES);
        let x = render_n(&mut s, 4800, BLOCK);
        assert!(x.iter().all(|v| v.is_finite()));
        assert_eq!(s.active_voices(), Synth::MAX_VOICES);

        // 128 sounding notes, then 72 more: the 72 oldest voices fade out
        // and take the new notes.
        let mut s = synth_with(SynthParams::default());
        let note = |i: u32| ((i * 5) % 128) as u8;
        for i in 0..128u32 {
            s.note_on(note(i), 1.0, i as i32);
        }
        render_n(&mut s, 4800, BLOCK);
        for i in 128..200u32 {
            s.note_on(note(i), 0.5, i as i32);
        }
        assert!((0..72).all(|i| s.voice(i).releasing && s.voice(i).note == note(i as u32)));
        assert!((72..128).all(|i| !s.voice(i).releasing));
        let x = render_n(&mut s, 480, BLOCK);
        assert!(x.iter().all(|v| v.is_finite()));
        for i in 0..72usize {
            let v = s.voice(i);
            assert_eq!(v.note, note(i as u32 + 128));
            assert!(v.velocity == 0.5 && !v.releasing);
            // Started once the fade (3 ms from full scale, so about 102
            // samples from the sustain level 0.71) was over, on the
            // 16-sample control grid.
            assert!((480 - 128..=480 - 96).contains(&v.age_samples), "{}", v.age_samples);
        }
        s.all_notes_off();
        render_n(&mut s, SR as usize, BLOCK);
        assert_eq!(s.active_voices(), 0);
        assert!(!s.voice(Synth::MAX_VOICES).active && !s.voice(usize::MAX).active);
    }

    #[test]
    fn stealing_prefers_releasing_voices_and_fades() {
        let mut s = synth_with(SynthParams { release_s: 5.0, ..SynthParams::default() });
        for i in 0..128u8 {
            s.note_on(i, 1.0, i32::from(i));
        }
        render_n(&mut s, 2400, BLOCK);
        s.note_off(50, 50);
        s.note_off(20, 20);
        render_n(&mut s, 100, BLOCK);
        // Oldest releasing voice (note 20, slot 20) is taken first.
        s.note_on(100, 1.0, 1000);
        let v = s.voice(20);
        assert!(v.releasing && v.note == 20);
        let mut last = v.level;
        let mut l = [0.0f32; 1];
        let mut r = [0.0f32; 1];
        for _ in 0..200 {
            s.render(&mut l, &mut r);
            let v = s.voice(20);
            if v.note == 100 {
                break;
            }
            // A 3 ms linear fade: small steps, never a jump.
            assert!(last - v.level <= 1.0 / 144.0 + 1e-6, "{last} -> {}", v.level);
            last = v.level;
        }
        let v = s.voice(20);
        assert_eq!(v.note, 100);
        assert!(!v.releasing && v.age_samples < 20);
        s.note_on(101, 1.0, 1001);
        assert_eq!(s.voice(50).note, 50);
        assert!(s.voice(50).releasing);
        // With no releasing voice left the oldest held one goes.
        s.note_on(102, 1.0, 1002);
        assert!(s.voice(0).releasing && s.voice(0).note == 0);
    }

    #[test]
    fn note_off_matches_by_id_or_by_note() {
        let mut s = synth_with(SynthParams::default());
        s.note_on(60, 1.0, 5);
        s.note_on(60, 1.0, 6);
        s.note_on(62, 1.0, -1);
        render_n(&mut s, 64, BLOCK);
        s.note_off(60, 5);
        assert!(s.voice(0).releasing && !s.voice(1).releasing && !s.voice(2).releasing);
        // An unknown id falls back to the note number for id-less notes only.
        s.note_off(60, 99);
        assert!(!s.voice(1).releasing);
        s.note_off(62, 99);
        assert!(s.voice(2).releasing);
        s.note_off(60, -1);
        assert!(s.voice(1).releasing);
        assert_eq!(s.active_voices(), 3);
    }

    #[test]
    fn extreme_parameters_stay_finite() {
        for sr in [8_000.0f32, 44_100.0, 192_000.0] {
            for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
                for env in [-6.0f32, 6.0] {
                    let mut s = Synth::new(sr, 256);
                    s.set_params(&SynthParams {
                        gain_db: 24.0,
                        waveform,
                        attack_s: 0.0,
                        decay_s: 0.0,
                        sustain: 1.0,
                        release_s: 0.0,
                        cutoff_hz: 20_000.0,
                        resonance: 1.0,
                        filter_env_octaves: env,
                        velocity_sens: 1.0,
                        bypass: false,
                    });
                    for n in 0..128u8 {
                        s.note_on(n, 1.0, -1);
                    }
                    let x = render_n(&mut s, (sr * 0.25) as usize, 256);
                    assert!(x.iter().all(|v| v.is_finite() && v.abs() < 1e4), "sr {sr}");
                    s.all_notes_off();
                    let x = render_n(&mut s, 1024, 256);
                    assert!(x.iter().all(|v| v.is_finite()));
                    assert_eq!(s.active_voices(), 0);
                }
            }
        }
    }

    #[test]
    fn nan_and_infinite_inputs_are_sanitised() {
        let mut s = Synth::new(f32::NAN, 128);
        assert_eq!(s.sample_rate(), DEFAULT_SAMPLE_RATE);
        s.set_sample_rate(f32::INFINITY, 128);
        assert_eq!(s.sample_rate(), DEFAULT_SAMPLE_RATE);
        s.set_sample_rate(1.0, 128);
        assert_eq!(s.sample_rate(), MIN_SAMPLE_RATE);
        s.set_sample_rate(SR, 128);
        let bad = SynthParams {
            gain_db: f32::NAN,
            waveform: Waveform::Saw,
            attack_s: f32::INFINITY,
            decay_s: f32::NAN,
            sustain: f32::NEG_INFINITY,
            release_s: -1.0,
            cutoff_hz: f32::NAN,
            resonance: f32::INFINITY,
            filter_env_octaves: f32::NAN,
            velocity_sens: f32::NAN,
            bypass: false,
        };
        s.set_params(&bad);
        let p = *s.params();
        assert_eq!(p.gain_db, -6.0);
        assert_eq!(p.attack_s, MAX_TIME_S);
        assert_eq!(p.sustain, 0.0);
        assert_eq!(p.release_s, 0.0);
        assert_eq!(p.resonance, 1.0);
        s.note_on(255, f32::NAN, -1);
        s.note_on(60, f32::INFINITY, -1);
        assert_eq!(s.voice(0).note, 127);
        let x = render_n(&mut s, 4096, 128);
        assert!(x.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn render_accepts_any_length() {
        let mut s = Synth::new(SR, 64);
        s.note_on(60, 1.0, -1);
        let mut l = vec![1.0f32; 1000];
        let mut r = vec![1.0f32; 1000];
        s.render(&mut [], &mut []);
        s.render(&mut l[..1], &mut r[..1]);
        s.render(&mut l[..64], &mut r[..64]);
        s.render(&mut l, &mut r); // longer than max_block
        assert!(l.iter().any(|&v| v != 0.0) && l == r);
        // Mismatched lengths: the common part is rendered, the rest zeroed.
        s.render(&mut l[..10], &mut r[..7]);
        assert!(l[7..10].iter().all(|&v| v == 0.0));
        assert_eq!(l[..7], r[..7]);
    }

    #[test]
    fn bypass_fades_to_exact_silence_and_back() {
        let mut s = synth_with(SynthParams { waveform: Waveform::Sine, ..SynthParams::default() });
        s.note_on(69, 1.0, -1);
        render_n(&mut s, 4800, BLOCK);
        s.set_params(&SynthParams { waveform: Waveform::Sine, bypass: true, ..SynthParams::default() });
        let fade = render_n(&mut s, 480, 480);
        let silent = render_n(&mut s, 2000, 480);
        assert!(silent.iter().all(|&v| v == 0.0));
        assert!(fade[..100].iter().any(|&v| v.abs() > 0.01));
        // No step: consecutive samples of a 440 Hz sine move by < 2π·440/48k.
        let max_step = fade.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        assert!(max_step < 0.06 * 0.5, "step {max_step}");
        s.set_params(&SynthParams { waveform: Waveform::Sine, ..SynthParams::default() });
        let back = render_n(&mut s, 960, 480);
        assert!(back[0].abs() < 0.01 && rms(&back[480..]) > 0.05);
    }

    #[test]
    fn gain_jump_is_ramped_over_ten_ms() {
        let p = SynthParams { waveform: Waveform::Sine, ..SynthParams::default() };
        let mut a = synth_with(p);
        let mut b = synth_with(p);
        a.note_on(69, 1.0, -1);
        b.note_on(69, 1.0, -1);
        render_n(&mut a, 4800, BLOCK);
        render_n(&mut b, 4800, BLOCK);
        b.set_params(&SynthParams { gain_db: 12.0, ..p });
        let ya = render_n(&mut a, 960, BLOCK);
        let yb = render_n(&mut b, 960, BLOCK);
        let full = 10f32.powf(18.0 / 20.0);
        for (i, (x, y)) in ya.iter().zip(&yb).enumerate() {
            if x.abs() < 0.02 {
                continue;
            }
            let ratio = y / x;
            let want = 1.0 + (full - 1.0) * ((i + 1) as f32 / 480.0).min(1.0);
            assert!((ratio - want).abs() < 0.01 * want, "sample {i}: {ratio} vs {want}");
        }
    }

    #[test]
    fn velocity_scales_level() {
        let level = |velocity_sens: f32, velocity: f32| {
            let mut s = synth_with(SynthParams { velocity_sens, ..SynthParams::default() });
            s.note_on(57, velocity, -1);
            rms(&render_n(&mut s, 9600, BLOCK))
        };
        let full = level(1.0, 1.0);
        assert!((level(1.0, 0.5) / full - 0.5).abs() < 1e-3);
        assert!((level(0.0, 0.1) / full - 1.0).abs() < 1e-3);
        assert!((level(0.7, 0.0) / full - 0.3).abs() < 1e-3);
    }

    #[test]
    fn snapshots_track_voices() {
        let mut s = synth_with(SynthParams::default());
        s.note_on(64, 0.5, 3);
        let v = s.voice(0);
        assert!(v.active && v.note == 64 && v.velocity == 0.5 && v.age_samples == 0);
        render_n(&mut s, 1000, 300);
        let v = s.voice(0);
        assert_eq!(v.age_samples, 1000);
        assert!(v.level > 0.3 && v.level <= 1.0 && !v.releasing);
        assert!(!s.voice(1).active);
        s.note_off(64, 3);
        assert!(s.voice(0).releasing);
    }

    #[test]
    fn sustain_change_glides_without_jumps() {
        let mut s = synth_with(SynthParams { sustain: 0.2, ..SynthParams::default() });
        s.note_on(60, 1.0, -1);
        render_n(&mut s, 48_000, BLOCK);
        assert!((s.voice(0).level - 0.2 * 1.0).abs() < 1e-6);
        s.set_params(&SynthParams { sustain: 0.9, ..SynthParams::default() });
        let mut last = s.voice(0).level;
        let mut l = [0.0f32; 1];
        let mut r = [0.0f32; 1];
        for _ in 0..48_000 {
            s.render(&mut l, &mut r);
            let now = s.voice(0).level;
            assert!((now - last).abs() < 0.01);
            last = now;
        }
        assert!((last - 0.9).abs() < 1e-6, "{last}");
    }

    #[test]
    fn free_lanes_keep_an_exactly_zero_state() {
        for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
            let mut s = synth_with(SynthParams { waveform, release_s: 0.01, ..SynthParams::default() });
            s.note_on(60, 1.0, -1);
            s.note_on(61, 1.0, -1);
            render_n(&mut s, 4800, BLOCK);
            s.note_off(61, -1);
            // Lane 1 is freed while lane 0 keeps its group rendering.
            render_n(&mut s, 48_000, BLOCK);
            assert_eq!(s.active_voices(), 1);
            let g = &s.groups[0];
            assert!(g.ic1[1] == 0.0 && g.ic2[1] == 0.0 && g.env[1] == 0.0, "{waveform:?}");
        }
    }

    /// A4 bent 2 semitones up and down: B4 and G4.
    const B4: f64 = 493.883_301;
    const G4: f64 = 391.995_436;

    /// Times (in samples, linearly interpolated) of the rising zero crossings of `x`.
    fn rising_crossings(x: &[f32]) -> Vec<f64> {
        x.windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, w)| i as f64 + f64::from(-w[0]) / f64::from(w[1] - w[0]))
            .collect()
    }

    /// Frequency of `x` from its rising zero crossings (whole periods between the first
    /// and the last).
    fn crossing_freq(x: &[f32], sr: f32) -> f64 {
        let c = rising_crossings(x);
        assert!(c.len() >= 3, "{} crossings", c.len());
        (c.len() - 1) as f64 / (c[c.len() - 1] - c[0]) * f64::from(sr)
    }

    /// A sine synth (so the fundamental is the whole signal) playing A4.
    fn sine_a4() -> Synth {
        let mut s = synth_with(SynthParams { waveform: Waveform::Sine, ..SynthParams::default() });
        s.note_on(69, 1.0, -1);
        s
    }

    #[test]
    fn pitch_bend_of_two_semitones_turns_a4_into_b4_and_g4() {
        for (semitones, want) in [(2.0f32, B4), (-2.0, G4)] {
            // A held note bent after it started.
            let mut s = sine_a4();
            render_n(&mut s, 4800, BLOCK);
            s.set_pitch_bend(semitones);
            render_n(&mut s, 480, BLOCK);
            let x = render_n(&mut s, 16_384, BLOCK);
            let held = peak_freq(&x, 50.0, 2000.0, SR);
            let held_zc = crossing_freq(&x, SR);
            // A note started while the wheel is bent starts bent.
            let mut s = synth_with(SynthParams { waveform: Waveform::Sine, ..SynthParams::default() });
            s.set_pitch_bend(semitones);
            s.note_on(69, 1.0, -1);
            render_n(&mut s, 4800, BLOCK);
            let x = render_n(&mut s, 16_384, BLOCK);
            let new = peak_freq(&x, 50.0, 2000.0, SR);
            println!(
                "bend {semitones:+} st: held A4 {held:.3} Hz (zero crossings {held_zc:.3} Hz), \
                 new A4 {new:.3} Hz, want {want:.3} Hz"
            );
            for f in [held, held_zc, new] {
                assert!((f - want).abs() <= 0.5, "bend {semitones}: {f} Hz, want {want}");
            }
        }
    }

    #[test]
    fn pitch_bend_applies_from_its_sample_on() {
        // 1234 is not on the 16-sample control grid: the bend is not quantised to it.
        const AT: usize = 1234 + 9600;
        let mut plain = sine_a4();
        let reference = render_n(&mut plain, AT + 9600, 333);
        let mut s = sine_a4();
        let mut x = render_n(&mut s, AT, 333);
        s.set_pitch_bend(2.0);
        x.extend(render_n(&mut s, 9600, 333));
        // Everything before AT is the unbent render, bit for bit. Sample AT is the
        // oscillator's current phase, so it is the unbent one up to rounding (a voice alone
        // computes its samples from where it stands at the bend); the bent increment moves
        // the phase on from the next sample.
        let first_difference = x.iter().zip(&reference).position(|(a, b)| a.to_bits() != b.to_bits());
        assert!(first_difference >= Some(AT), "{first_difference:?}");
        let ulps = |k: usize| (i64::from(x[k].to_bits() as i32) - i64::from(reference[k].to_bits() as i32)).abs();
        assert!(ulps(AT) <= 4, "sample {AT} differs by {} ulps", ulps(AT));
        assert!(ulps(AT + 1) > 1_000, "sample {} differs by only {} ulps", AT + 1, ulps(AT + 1));
        // 20 ms windows right before and right after the bend.
        let before = crossing_freq(&x[AT - 960..AT], SR);
        let after = crossing_freq(&x[AT + 1..AT + 961], SR);
        let later = peak_freq(&x[AT + 1..AT + 8193], 50.0, 2000.0, SR);
        println!("bend at sample {AT}: {before:.3} Hz before, {after:.3} Hz in the 20 ms after, {later:.3} Hz later");
        assert!((before - 440.0).abs() <= 0.5, "{before}");
        assert!((after - B4).abs() <= 0.5, "{after}");
        assert!((later - B4).abs() <= 0.5, "{later}");
        // No click: the phase is continuous, so no step is larger than a B4 sine's.
        let max_step = x[AT - 100..AT + 100].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        let sine_step =
            std::f32::consts::TAU * B4 as f32 / SR * x[AT - 960..AT].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max_step <= sine_step * 1.01, "step {max_step} vs {sine_step}");
    }

    #[test]
    fn pitch_bend_at_rest_is_bit_identical_to_no_bend() {
        for waveform in [Waveform::Saw, Waveform::Square, Waveform::Sine] {
            let p = SynthParams { waveform, ..SynthParams::default() };
            let run = |bend_events: bool| {
                let mut s = synth_with(p);
                let mut out = Vec::new();
                for block in 0..40usize {
                    if block % 3 == 0 {
                        for i in 0..10u8 {
                            s.note_on(((block * 7 + usize::from(i) * 11) % 128) as u8, 0.8, -1);
                        }
                    }
                    if block % 5 == 4 {
                        s.all_notes_off();
                    }
                    if bend_events {
                        s.set_pitch_bend(if block % 2 == 0 { 0.0 } else { -0.0 });
                    }
                    out.extend(render_n(&mut s, 257, 100));
                }
                out
            };
            assert!(bits(&run(true)) == bits(&run(false)), "{waveform:?}");
        }
        // Back at rest after a bend, every increment is exactly its note's unbent one.
        let mut s = synth_with(SynthParams::default());
        for n in 0..128u8 {
            s.note_on(n, 1.0, -1);
        }
        let unbent = s.groups;
        s.set_pitch_bend(1.37);
        assert!(s.groups.iter().zip(&unbent).all(|(a, b)| a.inc != b.inc));
        s.set_pitch_bend(0.0);
        assert_eq!(s.pitch_bend().to_bits(), 0.0f32.to_bits());
        for (a, b) in s.groups.iter().zip(&unbent) {
            assert!(bits(&a.inc) == bits(&b.inc) && bits(&a.inv_inc) == bits(&b.inv_inc));
        }
    }

    #[test]
    fn pitch_bend_is_sanitised_and_capped() {
        let mut s = Synth::new(8_000.0, 256);
        s.set_params(&SynthParams { waveform: Waveform::Saw, ..SynthParams::default() });
        s.note_on(100, 1.0, -1); // 2637 Hz: an increment of 0.33 at 8 kHz
        s.set_pitch_bend(100.0);
        assert_eq!(s.pitch_bend(), Synth::MAX_BEND_SEMITONES);
        assert_eq!(s.groups[0].inc[0], MAX_INC);
        s.set_pitch_bend(-1000.0);
        assert_eq!(s.pitch_bend(), -Synth::MAX_BEND_SEMITONES);
        assert!(s.groups[0].inc[0] > 0.0 && s.groups[0].inc[0] < 0.33 / 16.0 + 1e-6);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            s.set_pitch_bend(5.0);
            s.set_pitch_bend(bad);
            assert_eq!(s.pitch_bend(), 0.0);
            assert_eq!(s.groups[0].inc[0], s.note_inc[100]);
        }
        s.set_pitch_bend(48.0);
        let x = render_n(&mut s, 4096, 256);
        assert!(x.iter().all(|v| v.is_finite()) && rms(&x) > 0.01);
    }

    #[test]
    fn reset_returns_the_bend_to_rest_and_all_notes_off_does_not() {
        let mut s = sine_a4();
        s.set_pitch_bend(-2.0);
        s.all_notes_off();
        assert_eq!(s.pitch_bend(), -2.0);
        s.reset();
        assert_eq!(s.pitch_bend(), 0.0);
        s.note_on(69, 1.0, -1);
        let after_reset = render_n(&mut s, 5000, 256);
        let mut fresh = sine_a4();
        assert!(bits(&after_reset) == bits(&render_n(&mut fresh, 5000, 256)));
        // A sample-rate change resets too.
        s.set_pitch_bend(1.0);
        s.set_sample_rate(44_100.0, 256);
        assert_eq!(s.pitch_bend(), 0.0);
    }

    #[test]
    fn a_note_waiting_for_a_stolen_voice_starts_bent() {
        let mut s = synth_with(SynthParams::default());
        for i in 0..128u8 {
            s.note_on(i, 1.0, i32::from(i));
        }
        render_n(&mut s, 480, BLOCK);
        s.note_on(69, 1.0, 500); // steals voice 0 (the oldest)
        s.set_pitch_bend(2.0);
        render_n(&mut s, 480, BLOCK);
        let v = s.voice(0);
        assert!(v.note == 69 && v.note_id == 500 && !v.releasing);
        let want = s.note_inc[69] * 2f32.powf(2.0 / 12.0);
        assert!((s.groups[0].inc[0] / want - 1.0).abs() < 1e-6);
        // Every other voice is bent as well.
        for i in 1..128usize {
            let bent = s.note_inc[i] * 2f32.powf(2.0 / 12.0);
            let inc = s.groups[i / LANES].inc[i % LANES];
            assert!((inc / bent.min(MAX_INC) - 1.0).abs() < 1e-6, "voice {i}");
        }
    }
}
