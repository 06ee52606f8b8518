//! TrioSynth's engine: a 128-voice subtractive synthesizer ([`dsp::Synth`]) driven by the
//! SDK's events, the arpeggiator's key recording and the first step of each arpeggiator
//! phrase.
//!
//! # Arpeggiator keys
//!
//! While the `Arpeggiator` parameter is on, the host's note-ons and note-offs are not
//! played: they are recorded, at their exact sample time, as held keys in the plugin area
//! ([`SynthArea::held`]), which the control module turns into timed notes in the engine's
//! queue. A host note-off for a key that was not recorded (a note started before the arp
//! went on) still releases its voice. Arpeggiator note-ons from the control module (note
//! ids made by [`synth_common::arp_note_id`]) play only while the arp is on, a key is held
//! and their phrase is the current one, so notes the control module scheduled ahead never
//! sound after the keys are released or the arp is switched off. Switching the arp off ends
//! the phrase (the held keys are forgotten). Everything here is fixed-size: no allocation.
//!
//! # The first step of a phrase
//!
//! The control module hears of a key only once the block holding it has been rendered,
//! too late for the phrase's first step, so the engine plays that step itself, at its
//! exact sample, whatever the block size and whenever the control module ticks:
//!
//! - When a key goes down while none is held (a new phrase), the engine decides where
//!   step 0 falls, with the rules the control module uses for every step
//!   ([`synth_common::arp::Timebase::first_pos`], with this block's transport as the
//!   framework publishes it to the control module): the key's own sample when the arp runs
//!   free (no host tempo: the `Arp Tempo`; or a host tempo, stopped), the first grid point
//!   at or after the key (multiples of the step length in quarter notes from the song
//!   start) when the host plays. It records the position as pending in
//!   [`HeldKeys::first_step`](synth_common::HeldKeys::first_step).
//! - When that sample comes, in this block or a later one, after every event at that
//!   sample has been applied and before rendering from it, it plays the first entry of the
//!   pattern's [`Sequence`] over the keys held then (a chord's note-ons on one sample all
//!   count), with the key's velocity and the note id `arp_note_id(phrase, 0)`, and keeps
//!   its note-off, `gate × step length` later, to play at its sample too (with a short gate
//!   it is due a few milliseconds later, before a control tick might come round). The
//!   record becomes "played", with the note and the note-off time. If every key comes up
//!   (or the arp goes off) first, the step is dropped.
//!
//! The control module takes the phrase up at step 1, one step after the recorded
//! position ([`HeldKeys`] is engine-written, the control module's
//! [`ArpCursor`](synth_common::ArpCursor) control-written).
//!
//! # Pitch wheel
//!
//! The control module lists the pitch wheel among its MIDI controllers, so hosts' pitch
//! bends arrive as [`Event::PitchBend`] at their sample. The wheel's full travel bends by
//! a fixed [`PITCH_BEND_RANGE_SEMITONES`] (±2 semitones, the General MIDI default): every
//! sounding voice from the event's sample on, and notes started while the wheel is off
//! centre start bent ([`Synth::set_pitch_bend`]). The wheel is global, whatever its MIDI
//! channel, and applies with the arpeggiator on too. At rest the output is bit for bit
//! what it is without a wheel. [`Engine::reset`] returns the wheel to rest (the host's
//! next wheel movement sets it again); all-notes-off leaves it where it is.
#![forbid(unsafe_code)]

pub mod dsp;

use synth_common::arp::{self, Sequence, Timebase};
use synth_common::{
    FirstStep, FirstStepState, HeldKey, HeldKeys, MAX_HELD_KEYS, SynthArea, arp_note_id, arp_note_phrase, id,
};
use trio::block::Transport;
use trio::engine::{Block, Engine, EngineContext, Event, Params, Tail, VoiceInfo};

use crate::dsp::{Synth, SynthParams, Waveform};

/// Pitch bend at the wheel's full travel, in semitones either way: an
/// [`Event::PitchBend`] of value `v` (-1..=1) bends by `v × 2` semitones.
pub const PITCH_BEND_RANGE_SEMITONES: f32 = 2.0;

/// Margin added to the release time for the tail: the filter's ring-out and the bypass and
/// steal fades, all shorter than this.
const TAIL_MARGIN_S: f64 = 0.010;

/// Most note-offs of first steps the engine keeps waiting (one per phrase, each due
/// within a step of its note-on); when full, the earliest is played at once.
const MAX_FIRST_STEP_OFFS: usize = 8;

/// A note-off of a first step the engine played, due at `time`.
#[derive(Clone, Copy, Debug, Default)]
struct DueOff {
    time: u64,
    note: u8,
    note_id: i32,
}

/// The engine of one TrioSynth instance.
pub struct SynthEngine {
    synth: Synth,
    /// Scratch for the right channel when a host gives a mono output.
    scratch: Vec<f32>,
    sample_rate: f64,
    /// Whether the arpeggiator is on (host notes become held keys).
    arp_on: bool,
    /// The arp parameters as of the events applied so far.
    arp: arp::Settings,
    /// The host transport of the block being processed, as the control module sees it.
    transport: Transport,
    /// The keys held for the arpeggiator and the phrase's first step; published to the
    /// area when `held_dirty`.
    held: HeldKeys,
    held_dirty: bool,
    /// Note-offs of first steps still due (the first `offs_len`).
    offs: [DueOff; MAX_FIRST_STEP_OFFS],
    offs_len: usize,
    /// Absolute sample time of the event being applied.
    now: u64,
    /// The voices last published as sounding (all of them before the first publish, so
    /// that it overwrites whatever the block held).
    shown: u128,
    /// Every span of the current block left the output at zero.
    all_silent: bool,
}

trio::export_engine!(SynthEngine);

/// The synth's parameters from the current plain values.
fn synth_params(p: &Params) -> SynthParams {
    let plain = |id: u32| p.plain(id) as f32;
    SynthParams {
        gain_db: plain(id::GAIN),
        waveform: match p.index(id::WAVEFORM) {
            1 => Waveform::Square,
            2 => Waveform::Sine,
            _ => Waveform::Saw,
        },
        attack_s: plain(id::ATTACK),
        decay_s: plain(id::DECAY),
        sustain: plain(id::SUSTAIN),
        release_s: plain(id::RELEASE),
        cutoff_hz: plain(id::CUTOFF),
        resonance: plain(id::RESONANCE),
        filter_env_octaves: plain(id::FILTER_ENV),
        velocity_sens: plain(id::VELOCITY_SENS),
        bypass: p.is_on(id::BYPASS),
    }
}

/// The tail: the release time at the current setting plus a margin (the envelope reaches
/// exact zero in the release time; a release changed while a voice releases does not
/// lengthen it, the time is latched when the release starts).
fn tail(p: &Params, sample_rate: f64) -> Tail {
    let release = p.plain(id::RELEASE);
    let release = if release.is_finite() { release.max(0.0) } else { 0.0 };
    Tail::Samples(((release + TAIL_MARGIN_S) * sample_rate).ceil().min(f64::from(u32::MAX - 1)) as u32)
}

impl Engine for SynthEngine {
    type Area = SynthArea;

    fn new(ctx: &mut EngineContext<'_, SynthArea>) -> Self {
        let mut engine = Self {
            synth: Synth::new(ctx.sample_rate() as f32, ctx.max_block()),
            scratch: vec![0.0; ctx.max_block()],
            sample_rate: ctx.sample_rate(),
            arp_on: false,
            arp: arp::Settings::default(),
            transport: Transport::default(),
            // A new engine on a used block continues its held keys (and a first step
            // still to play).
            held: ctx.area().held.read().unwrap_or_default(),
            held_dirty: false,
            offs: [DueOff::default(); MAX_FIRST_STEP_OFFS],
            offs_len: 0,
            now: 0,
            shown: u128::MAX,
            all_silent: true,
        };
        engine.apply_params(ctx.params());
        let t = tail(ctx.params(), engine.sample_rate);
        ctx.set_tail(t);
        engine
    }

    fn activate(&mut self, ctx: &mut EngineContext<'_, SynthArea>) {
        self.sample_rate = ctx.sample_rate();
        self.synth.set_sample_rate(ctx.sample_rate() as f32, ctx.max_block());
        self.scratch = vec![0.0; ctx.max_block()];
        self.apply_params(ctx.params());
        self.synth.reset();
        ctx.set_tail(tail(ctx.params(), self.sample_rate));
    }

    fn reset(&mut self) {
        self.synth.reset();
    }

    fn process(&mut self, block: &mut Block<'_, SynthArea>) {
        let len = block.len();
        if block.slept() > 0 {
            // The framework skipped the blocks this engine slept through (it said so at the
            // end of its last one): only the synth's time moved on.
            self.synth.skip_silence(block.slept());
        }
        self.all_silent = true;
        self.transport = transport_of(block);
        let mut pos = 0;
        while let Some(timed) = block.next_event() {
            if timed.offset > pos {
                // Every event at `pos` has been applied: the arp's own notes due from
                // there play before the audio is rendered on.
                self.render_span(block, pos, timed.offset);
                pos = timed.offset;
            }
            self.now = block.clock() + timed.offset as u64;
            match timed.event {
                Event::Param { id: param, .. } => {
                    self.apply_params(block.params());
                    if param == id::RELEASE {
                        block.set_tail(tail(block.params(), self.sample_rate));
                    }
                }
                event if timed.from_control => self.apply_from_control(&event),
                event => self.apply_from_host(&event),
            }
        }
        self.render_span(block, pos, len);
        // A voice is published while it sounds, and once more after it stopped (so
        // observers see it idle): one voice costs one voice's publishing, not 128.
        let sounding = self.synth.active_mask();
        self.publish_voices(block, sounding | self.shown);
        self.shown = sounding;
        block.set_active_voices(sounding.count_ones() as usize);
        if self.all_silent {
            // Nothing was written over the zeroed output: the framework need not scan it.
            block.set_silent();
        }
        if self.held_dirty {
            self.held_dirty = false;
            block.area().held.publish(&self.held);
        }
        if self.all_silent && self.synth.is_asleep() && self.next_arp_time().is_none() {
            // Silent, settled, and no arp note of its own to play: only an event changes
            // anything now, and the framework need not call this engine until one comes.
            block.set_asleep();
        }
    }
}

/// The block's host transport exactly as the framework publishes it for the control
/// module, so both sides compute the same step times.
fn transport_of(block: &Block<'_, SynthArea>) -> Transport {
    let t = block.transport();
    Transport {
        sample_time: block.clock(),
        tempo_bpm: t.tempo().unwrap_or(0.0),
        ppq_position: t.position().unwrap_or(0.0),
        playing: t.is_playing(),
        ..Transport::default()
    }
}

impl SynthEngine {
    /// Reports the state of the voices in `which` (bit `i` for voice `i`) in the block.
    fn publish_voices(&self, block: &mut Block<'_, SynthArea>, which: u128) {
        let mut which = which;
        while which != 0 {
            let i = which.trailing_zeros() as usize;
            which &= which - 1;
            let v = self.synth.voice(i);
            block.publish_voice(
                i,
                &VoiceInfo {
                    active: v.active,
                    releasing: v.releasing,
                    note: v.note,
                    channel: 0,
                    note_id: v.note_id,
                    velocity: v.velocity,
                    level: v.level,
                    age: v.age_samples,
                },
            );
        }
    }
    /// Renders `from..to` of the block, stopping on the way at each arp note of the
    /// engine's own (a first step, a first step's note-off) due in that span to play it
    /// at its sample.
    fn render_span(&mut self, block: &mut Block<'_, SynthArea>, from: usize, to: usize) {
        let clock = block.clock();
        let end = clock + to as u64;
        let mut pos = from;
        while let Some(time) = self.next_arp_time().filter(|&t| t < end) {
            let at = (time.saturating_sub(clock) as usize).clamp(pos, to);
            if at > pos {
                self.render(block, pos, at);
                pos = at;
            }
            self.now = clock + pos as u64;
            self.play_due_arp(time);
        }
        if to > pos {
            self.render(block, pos, to);
        }
    }

    /// Time of the first step waiting for its time, if any.
    fn first_step_time(&self) -> Option<u64> {
        let f = &self.held.first_step;
        (f.state == FirstStepState::Pending).then(|| arp::sample_time(f.pos))
    }

    /// The earliest of the arp notes the engine still has to play.
    fn next_arp_time(&self) -> Option<u64> {
        let off = self.offs[..self.offs_len].iter().map(|o| o.time).min();
        match (off, self.first_step_time()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Plays what is due at `time`: note-offs first (a repeated note is released before it
    /// restarts), then the first step.
    fn play_due_arp(&mut self, time: u64) {
        if let Some(i) = self.offs[..self.offs_len].iter().position(|o| o.time == time) {
            let off = self.offs[i];
            self.offs.copy_within(i + 1..self.offs_len, i);
            self.offs_len -= 1;
            self.synth.note_off(off.note, off.note_id);
        } else if self.first_step_time() == Some(time) {
            self.play_first_step();
        }
    }

    /// Plays the current phrase's step 0, which is due now: the first entry of the
    /// pattern's sequence over the keys held now, with the note id, velocity and note-off
    /// the control module gives any step.
    fn play_first_step(&mut self) {
        let settings = self.arp;
        let f = self.held.first_step;
        let key = if self.arp_on && self.held.count > 0 && f.phrase == self.held.phrase {
            Sequence::new(settings.pattern, self.held.held(), settings.octaves).step(0)
        } else {
            None
        };
        self.held_dirty = true;
        let Some(key) = key else {
            self.held.first_step.state = FirstStepState::Dropped;
            return;
        };
        let note_id = arp_note_id(f.phrase, 0);
        self.synth.note_on(key.note, key.velocity, note_id);
        let step_len = self.timebase().step_len(settings.rate_beats);
        let off_time = arp::note_off_time(f.pos, self.now, settings.gate, step_len);
        if self.offs_len == MAX_FIRST_STEP_OFFS {
            // Phrases started faster than their first notes end: end the oldest now.
            if let Some((i, _)) = self.offs.iter().enumerate().min_by_key(|(_, o)| o.time) {
                let old = self.offs[i];
                self.offs.copy_within(i + 1.., i);
                self.offs_len -= 1;
                self.synth.note_off(old.note, old.note_id);
            }
        }
        self.offs[self.offs_len] = DueOff { time: off_time, note: key.note, note_id };
        self.offs_len += 1;
        self.held.first_step = FirstStep { state: FirstStepState::Played, note: key.note, off_time, ..f };
    }

    /// Where steps fall, with the arp settings and the block's transport.
    fn timebase(&self) -> Timebase {
        Timebase::new(self.sample_rate, &self.arp, &self.transport)
    }

    /// Renders `from..to` into the block's channels, which hold zeros until rendered (an
    /// instrument's output starts zeroed). Clears `all_silent` unless the synth left
    /// them so.
    fn render(&mut self, block: &mut Block<'_, SynthArea>, from: usize, to: usize) {
        let silent = match block.main() {
            // The instrument is stereo: any further channel stays silent (zero).
            [left, right, ..] => self.synth.render_over_zeros(&mut left[from..to], &mut right[from..to]),
            [mono] => {
                let to = to.min(self.scratch.len());
                // The scratch channel is the discarded right one: what it holds is of no use.
                self.synth.render_over_zeros(&mut mono[from..to], &mut self.scratch[from..to])
            }
            [] => true,
        };
        self.all_silent &= silent;
    }

    fn apply_params(&mut self, params: &Params) {
        self.synth.set_params(&synth_params(params));
        self.arp = arp::Settings::from_engine(params);
        let arp_on = self.arp.on;
        if self.arp_on && !arp_on {
            // Switching the arp off ends the phrase; the keys are forgotten.
            self.release_all_keys();
        }
        self.arp_on = arp_on;
    }

    /// Records a key going down for the arpeggiator. A key already held moves to the end
    /// of the press order with its new velocity. The first key of a phrase decides where
    /// the phrase's step 0 falls; the engine plays it there.
    fn key_down(&mut self, note: u8, velocity: f32) {
        self.remove_key(note);
        if self.held.count == 0 {
            let pos = self.timebase().first_pos(self.now, self.arp.rate_beats);
            let h = &mut self.held;
            h.phrase = h.phrase.wrapping_add(1);
            h.phrase_start = self.now;
            h.first_step = FirstStep { phrase: h.phrase, state: FirstStepState::Pending, pos, note: 0, off_time: 0 };
        }
        let h = &mut self.held;
        if let Some(slot) = h.keys.get_mut(h.count as usize) {
            *slot = HeldKey { note, velocity };
            h.count += 1;
        }
        self.held_dirty = true;
    }

    /// Removes `note` from the held keys; `false` if it was not held.
    fn remove_key(&mut self, note: u8) -> bool {
        let h = &mut self.held;
        let count = (h.count as usize).min(MAX_HELD_KEYS);
        let Some(i) = h.keys[..count].iter().position(|k| k.note == note) else {
            return false;
        };
        h.keys.copy_within(i + 1..count, i);
        h.count = count as u32 - 1;
        self.held_dirty = true;
        true
    }

    /// Records a key coming up; `false` if it was not held (the caller plays the note-off).
    fn key_up(&mut self, note: u8) -> bool {
        if !self.remove_key(note) {
            return false;
        }
        if self.held.count == 0 {
            self.end_phrase();
        }
        true
    }

    /// Ends the current phrase: no key is held any more.
    fn release_all_keys(&mut self) {
        if self.held.count > 0 {
            self.held.count = 0;
            self.end_phrase();
        }
    }

    /// The last key came up: a first step still waiting for its time is not played.
    fn end_phrase(&mut self) {
        self.held.released_at = self.now;
        if self.held.first_step.state == FirstStepState::Pending {
            self.held.first_step.state = FirstStepState::Dropped;
        }
        self.held_dirty = true;
    }

    /// A note or other event from the host.
    fn apply_from_host(&mut self, event: &Event) {
        if self.arp_on {
            match *event {
                Event::NoteOn { note, velocity, .. } => {
                    self.key_down(note, velocity.min(1.0));
                    return;
                }
                Event::NoteOff { note, .. } if self.key_up(note) => return,
                Event::AllNotesOff => self.release_all_keys(),
                _ => {}
            }
        }
        self.play(event);
    }

    /// An event the control module scheduled.
    fn apply_from_control(&mut self, event: &Event) {
        if let Event::NoteOn { note_id, .. } = *event
            && let Some(phrase) = arp_note_phrase(note_id)
            && !(self.arp_on && self.held.count > 0 && phrase == self.held.phrase as u8)
        {
            // An arp note scheduled ahead for a phrase that has ended (or with the arp off).
            return;
        }
        self.play(event);
    }

    fn play(&mut self, event: &Event) {
        match *event {
            Event::NoteOn { note, velocity, note_id, .. } => self.synth.note_on(note, velocity, note_id),
            Event::NoteOff { note, note_id, .. } => self.synth.note_off(note, note_id),
            Event::AllNotesOff => self.synth.all_notes_off(),
            Event::PitchBend { value, .. } => self.synth.set_pitch_bend(value * PITCH_BEND_RANGE_SEMITONES),
            _ => {}
        }
    }
}
