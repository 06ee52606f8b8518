//! The engine side of the SDK: the [`Engine`] trait a plugin's real-time engine
//! implements, and [`export_engine!`](crate::export_engine!), which turns it into the
//! engine library the bridge loads.
//!
//! ```
//! use trio::engine::{Block, Engine, EngineContext, Event};
//!
//! /// A gain effect with one parameter.
//! pub struct Gain {
//!     gain: f32,
//! }
//!
//! const GAIN_DB: u32 = 0;
//!
//! impl Engine for Gain {
//!     type Area = ();
//!     fn new(ctx: &mut EngineContext<'_, ()>) -> Self {
//!         Gain { gain: db_to_gain(ctx.params().plain(GAIN_DB)) }
//!     }
//!     fn process(&mut self, block: &mut Block<'_, ()>) {
//!         let mut pos = 0;
//!         // Every event arrives at its sample: render up to it with the old value, then
//!         // take the new one (`block.params()` already holds it).
//!         while let Some(timed) = block.next_event() {
//!             self.render(block, pos, timed.offset);
//!             pos = timed.offset;
//!             if let Event::Param { id: GAIN_DB, plain, .. } = timed.event {
//!                 self.gain = db_to_gain(plain);
//!             }
//!         }
//!         self.render(block, pos, block.len());
//!     }
//! }
//!
//! impl Gain {
//!     fn render(&self, block: &mut Block<'_, ()>, from: usize, to: usize) {
//!         for channel in block.main() {
//!             channel[from..to].iter_mut().for_each(|s| *s *= self.gain);
//!         }
//!     }
//! }
//! # fn db_to_gain(db: f64) -> f32 { 10f64.powf(db / 20.0) as f32 }
//! // In the engine crate's lib.rs: trio::export_engine!(Gain);
//! ```
//!
//! # What the framework does around `process`
//!
//! The export wraps every block exactly once, in [`__export::process`]: flush-to-zero,
//! the allocation check (an allocation is counted in the block's `alloc_violations`, the
//! host keeps running), panic capture (a panicking engine outputs silence until reset,
//! and its panic message is not printed on the audio thread), the parameter values
//! (applied at their sample, including every automation point), the control module's
//! timed events merged in time order with the host's, the engine's sample clock, the
//! host transport for the control module, meters and silence flags, and a check for
//! NaN and infinite samples, which are replaced by silence and counted. The engine's
//! own code only renders.
//!
//! # Rules for engine code
//!
//! `process` must not allocate, lock, wait or make system calls, and must call nothing
//! outside its own crate and the SDK (a function of another library allocates through
//! that library's allocator, which the check cannot see). `new` and `activate` run off
//! the audio thread and may allocate: size every buffer there for
//! [`EngineContext::max_block`].

use core::sync::atomic::Ordering;
use std::time::Instant;

use crate::abi::{self, ProcessData, TransportInfo, event_kind, process_mode, status, transport_flags};
use crate::area::Area;
use crate::block::{
    FROM_ENGINE_CAPACITY, INFINITE_TAIL, MAX_PARAMS, MAX_VOICES, ParamTable, RUNAWAY_PEAK, SharedBlock, Statistics,
    TO_ENGINE_CAPACITY, Transport, voice_activity,
};
use crate::params::ParamMapping;
use crate::ring::{Consumer, Producer};

pub use crate::abi::MAX_CHANNELS;

/// A plugin's real-time engine.
///
/// One value per plugin instance. The framework calls `new` and `activate` off the audio
/// thread (they may allocate), and `process` on the audio thread, never concurrently with
/// the others.
pub trait Engine: Sized + Send + 'static {
    /// The plugin's shared area type ([`crate::area`](mod@crate::area)); `()` for none.
    type Area: Area;

    /// Creates the engine. Parameters already hold their values (the control module
    /// defined them first); the sample rate and block size are the host's defaults until
    /// [`Engine::activate`] gives the real ones.
    fn new(ctx: &mut EngineContext<'_, Self::Area>) -> Self;

    /// The sample rate, largest block size or bus layout changed (the host's
    /// `setupProcessing`): resize buffers, recompute coefficients. Called once before the
    /// first block. May allocate. The default does nothing.
    fn activate(&mut self, ctx: &mut EngineContext<'_, Self::Area>) {
        let _ = ctx;
    }

    /// Silence every voice, clear delay lines and filter states (the host stopped and
    /// restarted processing, or a fault is being cleared). The default does nothing.
    fn reset(&mut self) {}

    /// Renders one block. Never allocates, locks or waits.
    fn process(&mut self, block: &mut Block<'_, Self::Area>);
}

/// How long the engine keeps sounding after its input stops ([`EngineContext::set_tail`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Silent as soon as the input is.
    None,
    /// Sounds for this many more samples.
    Samples(u32),
    /// May sound forever (a self-oscillating feedback loop).
    Infinite,
}

impl Tail {
    fn encode(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Samples(n) => n.min(INFINITE_TAIL - 1),
            Self::Infinite => INFINITE_TAIL,
        }
    }
}

/// Latency and tail reporting, shared by [`EngineContext`] and [`Block`].
fn set_latency(shared: &SharedBlock, samples: u32) {
    // Relaxed: a setting the bridge reads on the host's main thread; the bridge tells the
    // host when it changes (`restartComponent(kLatencyChanged)`).
    shared.header.latency_samples.store(samples, Ordering::Relaxed);
}

fn set_tail(shared: &SharedBlock, tail: Tail) {
    // Relaxed: a setting the bridge reads when the host asks.
    shared.header.tail_samples.store(tail.encode(), Ordering::Relaxed);
}

/// What [`Engine::new`] and [`Engine::activate`] can see and set.
pub struct EngineContext<'a, A> {
    shared: &'a SharedBlock,
    area: &'a A,
    params: &'a Params,
    sample_rate: f64,
    max_block: usize,
}

impl<'a, A: Area> EngineContext<'a, A> {
    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The largest block `process` will be given, in samples.
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// Channels of the main bus (an instrument's output, an effect's input and output).
    pub fn main_channels(&self) -> usize {
        // Relaxed: a setup value the bridge writes before activating.
        (self.shared.header.main_channels.load(Ordering::Relaxed) as usize).min(MAX_CHANNELS)
    }

    /// Channels of the sidechain input (0 when the plugin has none or it is inactive).
    pub fn sidechain_channels(&self) -> usize {
        // Relaxed: as above.
        (self.shared.header.sidechain_channels.load(Ordering::Relaxed) as usize).min(MAX_CHANNELS)
    }

    /// The parameters' current values.
    pub fn params(&self) -> &Params {
        self.params
    }

    /// The plugin's shared area.
    pub fn area(&self) -> &'a A {
        self.area
    }

    /// Reports the latency the engine adds, in samples (a lookahead limiter's lookahead).
    /// The host is told when it changes and shifts the output back into line.
    pub fn set_latency(&mut self, samples: u32) {
        set_latency(self.shared, samples);
    }

    /// Reports how long the engine sounds after its input stops.
    pub fn set_tail(&mut self, tail: Tail) {
        set_tail(self.shared, tail);
    }
}

/// The parameters' values as the engine sees them, by the plugin's own ids.
///
/// Values change at their sample: while [`Block::next_event`] walks a block, `plain(id)`
/// returns the value in force at the current position. Reading is a few loads (an index
/// lookup in the shared block and a cached value), allocation-free and wait-free.
pub struct Params {
    table: &'static ParamTable,
    /// The counter version the mappings were read at.
    version: u64,
    /// The `values_epoch` last scanned.
    epoch: u64,
    normalized: [f64; MAX_PARAMS],
    plain: [f64; MAX_PARAMS],
    mappings: [Option<ParamMapping>; MAX_PARAMS],
    /// Slots whose value changed at the start of this block, reported as events first.
    changed: [u16; MAX_PARAMS],
    changed_len: usize,
    changed_next: usize,
}

impl Params {
    fn new(table: &'static ParamTable) -> Box<Self> {
        let mut p = Box::new(Self {
            table,
            version: u64::MAX,
            epoch: u64::MAX,
            normalized: [f64::NAN; MAX_PARAMS],
            plain: [f64::NAN; MAX_PARAMS],
            mappings: [None; MAX_PARAMS],
            changed: [0; MAX_PARAMS],
            changed_len: 0,
            changed_next: 0,
        });
        p.refresh();
        p.changed_len = 0;
        p
    }

    /// The plain value of parameter `id` (in its own unit: Hz, dB, a list index...), or
    /// NaN if the plugin defines no such parameter.
    pub fn plain(&self, id: u32) -> f64 {
        self.table.slot_of(id).map_or(f64::NAN, |s| self.plain[s])
    }

    /// The plain value of parameter `id`, or `None` if it is not defined.
    pub fn get(&self, id: u32) -> Option<f64> {
        let slot = self.table.slot_of(id)?;
        self.mappings[slot].map(|_| self.plain[slot])
    }

    /// The normalized value `0..=1` of parameter `id`, or `None` if it is not defined.
    pub fn normalized(&self, id: u32) -> Option<f64> {
        let slot = self.table.slot_of(id)?;
        self.mappings[slot].map(|_| self.normalized[slot])
    }

    /// Whether a switch parameter is on (plain value ≥ 0.5); `false` if undefined.
    pub fn is_on(&self, id: u32) -> bool {
        self.plain(id) >= 0.5
    }

    /// The list index (plain value rounded, at least 0) of a list parameter; 0 if
    /// undefined.
    pub fn index(&self, id: u32) -> usize {
        let v = self.plain(id);
        if v.is_finite() && v > 0.0 { v.round() as usize } else { 0 }
    }

    fn set_slot(&mut self, slot: usize, normalized: f64) -> bool {
        let n = if normalized.is_finite() { normalized.clamp(0.0, 1.0) } else { 0.0 };
        let plain = match self.mappings[slot] {
            Some(m) => m.to_plain(n),
            None => f64::NAN,
        };
        let changed = n.to_bits() != self.normalized[slot].to_bits() || plain.to_bits() != self.plain[slot].to_bits();
        self.normalized[slot] = n;
        self.plain[slot] = plain;
        changed
    }

    /// Re-reads mappings (if the definitions changed) and values (if any writer other than
    /// the engine changed one); the slots that changed become events at offset 0.
    fn refresh(&mut self) {
        self.changed_len = 0;
        self.changed_next = 0;
        let version = self.table.version();
        let remapped = version != self.version && self.table.read_mappings(&mut self.mappings).is_some();
        if remapped {
            self.version = version;
        }
        // Acquire: pairs with the Release bump of writers after their value stores.
        let epoch = self.table.values_epoch.load(Ordering::Acquire);
        if !remapped && epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        for slot in 0..self.table.assigned() {
            let Some(s) = self.table.slot(slot) else { break };
            // Relaxed: values are independent atomics (ordered by the epoch above).
            let n = s.value.load(Ordering::Relaxed);
            if self.set_slot(slot, n) && self.mappings[slot].is_some() {
                self.changed[self.changed_len] = slot as u16;
                self.changed_len += 1;
            }
        }
    }

    fn next_changed(&mut self) -> Option<(u32, f64, f64)> {
        if self.changed_next >= self.changed_len {
            return None;
        }
        let slot = usize::from(self.changed[self.changed_next]);
        self.changed_next += 1;
        let s = self.table.slot(slot)?;
        // Relaxed: the id is written once, before the slot was published.
        Some((s.id.load(Ordering::Relaxed), self.normalized[slot], self.plain[slot]))
    }

    /// Applies a value change from an event; returns the slot and the plain value.
    fn apply(&mut self, id: u32, normalized: f64) -> Option<(usize, f64)> {
        let slot = self.table.slot_of(id)?;
        self.mappings[slot]?;
        self.set_slot(slot, normalized);
        Some((slot, self.plain[slot]))
    }
}

/// An event, as the engine receives it: sanitised, with MIDI conventions applied (a
/// note-on with velocity 0 arrives as a note-off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// A key went down.
    NoteOn {
        /// MIDI note number 0..=127.
        note: u8,
        /// Velocity in `(0, 1]`.
        velocity: f32,
        /// MIDI channel 0..=15.
        channel: u8,
        /// The host's note id, or -1.
        note_id: i32,
    },
    /// A key came up.
    NoteOff {
        /// MIDI note number.
        note: u8,
        /// Release velocity `0..=1`.
        velocity: f32,
        /// MIDI channel.
        channel: u8,
        /// The host's note id, or -1 (then match by note and channel).
        note_id: i32,
    },
    /// A parameter changed; [`Block::params`] already returns the new value.
    Param {
        /// The parameter's id.
        id: u32,
        /// The new normalized value.
        normalized: f64,
        /// The new plain value.
        plain: f64,
    },
    /// Release every sounding voice.
    AllNotesOff,
    /// A MIDI continuous controller moved (one the plugin receives raw).
    MidiCc {
        /// MIDI channel.
        channel: u8,
        /// Controller number 0..=127.
        cc: u8,
        /// Value `0..=1`.
        value: f32,
    },
    /// The pitch wheel moved.
    PitchBend {
        /// MIDI channel.
        channel: u8,
        /// `-1..=1`, 0 at rest.
        value: f32,
    },
    /// Channel aftertouch.
    ChannelPressure {
        /// MIDI channel.
        channel: u8,
        /// `0..=1`.
        value: f32,
    },
    /// Polyphonic aftertouch on one note.
    PolyPressure {
        /// MIDI channel.
        channel: u8,
        /// MIDI note number.
        note: u8,
        /// The host's note id, or -1.
        note_id: i32,
        /// `0..=1`.
        value: f32,
    },
    /// A message of the plugin's own (kind [`abi::event_kind::USER`] and up) from its
    /// control module.
    User {
        /// The plugin's message kind.
        kind: u32,
        /// The plugin's field.
        index: u32,
        /// The plugin's field.
        value: f64,
        /// The plugin's field (a note id, say).
        note_id: i32,
    },
}

/// An [`Event`] at its sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timed {
    /// Sample offset in the block, `0..=len`.
    pub offset: usize,
    /// The event.
    pub event: Event,
    /// `true` for an event the control module scheduled (the to-engine ring), `false`
    /// for the host's (and for parameter changes found at the block's start).
    pub from_control: bool,
}

fn clamp01(v: f64) -> f32 {
    if v.is_finite() { v.clamp(0.0, 1.0) as f32 } else { 0.0 }
}

/// Turns an SDK event into the ABI's record at `time`.
pub(crate) fn encode(time: u64, event: &Event) -> abi::Event {
    let (kind, index, value, note_id, channel) = match *event {
        Event::NoteOn { note, velocity, channel, note_id } => {
            (event_kind::NOTE_ON, u32::from(note), f64::from(velocity), note_id, channel)
        }
        Event::NoteOff { note, velocity, channel, note_id } => {
            (event_kind::NOTE_OFF, u32::from(note), f64::from(velocity), note_id, channel)
        }
        Event::Param { id, normalized, .. } => (event_kind::PARAM, id, normalized, -1, 0),
        Event::AllNotesOff => (event_kind::ALL_NOTES_OFF, 0, 0.0, -1, 0),
        Event::MidiCc { channel, cc, value } => (event_kind::MIDI_CC, u32::from(cc), f64::from(value), -1, channel),
        Event::PitchBend { channel, value } => (event_kind::PITCH_BEND, 0, f64::from(value), -1, channel),
        Event::ChannelPressure { channel, value } => (event_kind::CHANNEL_PRESSURE, 0, f64::from(value), -1, channel),
        Event::PolyPressure { channel, note, note_id, value } => {
            (event_kind::POLY_PRESSURE, u32::from(note), f64::from(value), note_id, channel)
        }
        Event::User { kind, index, value, note_id } => (kind.max(event_kind::USER), index, value, note_id, 0),
    };
    abi::Event { time, kind, index, value, note_id, channel: u32::from(channel) }
}

/// Turns an ABI event into an SDK event; `None` for malformed or unknown ones.
pub(crate) fn decode(e: &abi::Event) -> Option<Event> {
    let channel = e.channel.min(15) as u8;
    let note = u8::try_from(e.index).ok().filter(|n| *n < 128);
    Some(match e.kind {
        event_kind::NOTE_ON => {
            let velocity = clamp01(e.value);
            if velocity == 0.0 {
                Event::NoteOff { note: note?, velocity: 0.0, channel, note_id: e.note_id }
            } else {
                Event::NoteOn { note: note?, velocity, channel, note_id: e.note_id }
            }
        }
        event_kind::NOTE_OFF => Event::NoteOff { note: note?, velocity: clamp01(e.value), channel, note_id: e.note_id },
        event_kind::ALL_NOTES_OFF => Event::AllNotesOff,
        event_kind::MIDI_CC => Event::MidiCc { channel, cc: note?, value: clamp01(e.value) },
        event_kind::PITCH_BEND => {
            Event::PitchBend { channel, value: if e.value.is_finite() { e.value.clamp(-1.0, 1.0) as f32 } else { 0.0 } }
        }
        event_kind::CHANNEL_PRESSURE => Event::ChannelPressure { channel, value: clamp01(e.value) },
        event_kind::POLY_PRESSURE => {
            Event::PolyPressure { channel, note: note?, note_id: e.note_id, value: clamp01(e.value) }
        }
        k if k >= event_kind::USER => Event::User { kind: k, index: e.index, value: e.value, note_id: e.note_id },
        _ => return None,
    })
}

/// A voice as the engine reports it ([`Block::publish_voice`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VoiceInfo {
    /// Sounding (including its release).
    pub active: bool,
    /// Released, fading out.
    pub releasing: bool,
    /// MIDI note number.
    pub note: u8,
    /// MIDI channel.
    pub channel: u8,
    /// The host's note id, or -1.
    pub note_id: i32,
    /// Note-on velocity `0..=1`.
    pub velocity: f32,
    /// Current level `0..=1`.
    pub level: f32,
    /// Samples since the note started.
    pub age: u64,
}

/// One block: the audio, the events in time order, the parameters, and what the engine
/// reports back. Given to [`Engine::process`].
pub struct Block<'a, A> {
    len: usize,
    main: [&'a mut [f32]; MAX_CHANNELS],
    main_count: usize,
    sidechain: [&'a [f32]; MAX_CHANNELS],
    sidechain_count: usize,
    host_events: &'a [abi::Event],
    host_next: usize,
    ring: &'a mut Consumer<'static, abi::Event, TO_ENGINE_CAPACITY>,
    to_control: &'a mut Producer<'static, abi::Event, FROM_ENGINE_CAPACITY>,
    params: &'a mut Params,
    area: &'a A,
    shared: &'a SharedBlock,
    published: &'a mut [bool; MAX_VOICES],
    transport: TransportInfo,
    start: u64,
    pos: usize,
    sample_rate: f64,
    mode: u32,
    late: u64,
    silent: bool,
    asleep: bool,
    slept: u64,
}

impl<'a, A: Area> Block<'a, A> {
    /// Samples in this block.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block has no samples (a parameter flush).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The main bus, processed in place: an effect finds its input here and overwrites it
    /// with the output; an instrument finds zeros. Each channel holds [`Block::len`]
    /// samples.
    pub fn main(&mut self) -> &mut [&'a mut [f32]] {
        &mut self.main[..self.main_count]
    }

    /// The sidechain input (empty when the plugin has none or the host gives none).
    pub fn sidechain(&self) -> &[&'a [f32]] {
        &self.sidechain[..self.sidechain_count]
    }

    /// The main bus, the sidechain and the parameters at once (for code that needs them
    /// together).
    pub fn parts(&mut self) -> (&mut [&'a mut [f32]], &[&'a [f32]], &Params) {
        (&mut self.main[..self.main_count], &self.sidechain[..self.sidechain_count], self.params)
    }

    /// The parameters, with the values in force at the current position.
    pub fn params(&self) -> &Params {
        self.params
    }

    /// The plugin's shared area.
    pub fn area(&self) -> &'a A {
        self.area
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The host's transport for this block.
    pub fn transport(&self) -> &TransportInfo {
        &self.transport
    }

    /// Whether the host renders offline (faster than real time, no deadline).
    pub fn is_offline(&self) -> bool {
        self.mode == process_mode::OFFLINE
    }

    /// The engine's sample clock at the start of this block (samples rendered or slept
    /// through since the engine was created): the time base of the control module's
    /// timed events.
    pub fn clock(&self) -> u64 {
        self.start
    }

    /// The next event in time order (the host's and the control module's merged, the
    /// host's first on a tie), or `None` when the block has no more. Parameter changes
    /// are applied before they are returned, so [`Block::params`] gives the new value.
    /// Offsets never go backwards and never exceed [`Block::len`].
    pub fn next_event(&mut self) -> Option<Timed> {
        if let Some((id, normalized, plain)) = self.params.next_changed() {
            return Some(Timed {
                offset: self.pos,
                event: Event::Param { id, normalized, plain },
                from_control: false,
            });
        }
        loop {
            let block_end = self.start + self.len as u64;
            let host =
                self.host_events.get(self.host_next).map(|e| (e.time.min(self.len as u64) as usize).max(self.pos));
            let ring = self.ring.peek().filter(|e| e.time < block_end).map(|e| {
                if e.time < self.start {
                    self.late += 1;
                }
                (e.time.saturating_sub(self.start) as usize).max(self.pos)
            });
            let (offset, raw, from_control) = match (host, ring) {
                (None, None) => return None,
                (Some(h), Some(r)) if r < h => (r, self.ring.pop().ok()?, true),
                (Some(h), _) => {
                    let e = self.host_events[self.host_next];
                    self.host_next += 1;
                    (h, e, false)
                }
                (None, Some(r)) => (r, self.ring.pop().ok()?, true),
            };
            self.pos = offset.min(self.len);
            if raw.kind == event_kind::PARAM {
                if let Some((slot, plain)) = self.params.apply(raw.index, raw.value)
                    && let Some(s) = self.params.table.slot(slot)
                {
                    // Relaxed: publishes the applied automation value for readers of the
                    // block (the host's controller, the control module).
                    s.value.store(self.params.normalized[slot], Ordering::Relaxed);
                    let normalized = self.params.normalized[slot];
                    return Some(Timed {
                        offset: self.pos,
                        event: Event::Param { id: raw.index, normalized, plain },
                        from_control,
                    });
                }
                continue;
            }
            if raw.kind == event_kind::MIDI_CC && !from_control {
                // The control module follows the controllers (MIDI learn); a full ring
                // drops the copy, never the event.
                let _ = self.to_control.push(raw);
            }
            if let Some(event) = decode(&raw) {
                return Some(Timed { offset: self.pos, event, from_control });
            }
        }
    }

    /// Sends a message of the plugin's own to the control module (kind
    /// [`abi::event_kind::USER`] and up; `time` is the engine clock at the current
    /// position). `false` if the ring is full (the message is dropped and counted).
    pub fn send_to_control(&mut self, kind: u32, index: u32, value: f64) -> bool {
        let event = abi::Event {
            time: self.start + self.pos as u64,
            kind: kind.max(event_kind::USER),
            index,
            value,
            note_id: -1,
            channel: 0,
        };
        let ok = self.to_control.push(event).is_ok();
        if !ok {
            Statistics::bump(&self.shared.stats.events_dropped);
        }
        ok
    }

    /// Reports voice `index` (`0..128`) for meters, editors and the control module.
    /// Writes to the block only when something an observer needs changed (an idle voice
    /// that was already reported idle costs nothing).
    pub fn publish_voice(&mut self, index: usize, voice: &VoiceInfo) {
        let (Some(slot), Some(published)) = (self.shared.voices.get(index), self.published.get_mut(index)) else {
            return;
        };
        let was = core::mem::replace(published, voice.active);
        if !voice.active && !was {
            return;
        }
        let active = match (voice.active, voice.releasing) {
            (false, _) => voice_activity::IDLE,
            (true, false) => voice_activity::SOUNDING,
            (true, true) => voice_activity::RELEASING,
        };
        // Relaxed: voice states are telemetry.
        slot.active.store(active, Ordering::Relaxed);
        slot.note.store(u32::from(voice.note), Ordering::Relaxed);
        slot.channel.store(u32::from(voice.channel), Ordering::Relaxed);
        slot.note_id.store(voice.note_id, Ordering::Relaxed);
        slot.velocity.store(voice.velocity, Ordering::Relaxed);
        slot.level.store(voice.level, Ordering::Relaxed);
        slot.age.store(voice.age, Ordering::Relaxed);
    }

    /// Declares that every main channel holds only zeros at the end of this block (an
    /// instrument's channels start zeroed, so one with nothing sounding just leaves them;
    /// an effect must have written the zeros). The framework then skips its scan of the
    /// output (meters, NaN and runaway checks) and reports the channels silent to the
    /// host, so a block with nothing to do costs almost nothing. Debug builds check the
    /// claim.
    pub fn set_silent(&mut self) {
        self.silent = true;
    }

    /// Declares the engine asleep after this block: until an event reaches it (a note, a
    /// parameter, a message of the control module) or its input holds a non-zero sample,
    /// a block would leave the output silent and change nothing in the engine but the
    /// time. This block itself may still hold the end of a sound (the last samples of a
    /// release): declare it silent as well ([`Block::set_silent`]) only if it is. The
    /// framework may then skip calling `process` for such blocks (it still advances the
    /// sample clock, statistics and transport, and its meters read silence), and on the
    /// next call reports how many samples went by unseen in [`Block::slept`]. An idle
    /// instance then costs the host almost nothing. Declare it only when it is true of every block that
    /// follows: anything that moves on its own (a free-running LFO, a smoother still
    /// ramping, an echo still decaying) keeps the engine awake. What wakes it is listed
    /// in [`crate::sleep`]: host events, the control module's events, parameter values,
    /// input, the host's tempo, time signature or play state, a reset. Data the control
    /// module writes into the plugin area is not among them: send an event with it.
    pub fn set_asleep(&mut self) {
        self.asleep = true;
    }

    /// Samples that went by since the engine's previous block without a call to
    /// `process`, because it had declared itself asleep ([`Block::set_asleep`]): 0
    /// unless it did, and 0 after a reset or activation (the engine starts anew then). An
    /// engine that keeps time (a sample counter, a phase in a fixed grid) advances it by
    /// this much before rendering this block, which starts at [`Block::clock`].
    pub fn slept(&self) -> u64 {
        self.slept
    }

    /// Reports how many voices sound (for meters).
    pub fn set_active_voices(&mut self, count: usize) {
        // Relaxed: telemetry.
        self.shared.meters.active_voices.store(count as u32, Ordering::Relaxed);
    }

    /// Reports the latency the engine adds, in samples; the host is told when it changes.
    pub fn set_latency(&mut self, samples: u32) {
        set_latency(self.shared, samples);
    }

    /// Reports how long the engine sounds after its input stops.
    pub fn set_tail(&mut self, tail: Tail) {
        set_tail(self.shared, tail);
    }
}

impl TransportInfo {
    /// Whether the host is playing.
    pub fn is_playing(&self) -> bool {
        self.flags & transport_flags::PLAYING != 0
    }

    /// The tempo in BPM, if the host gives one.
    pub fn tempo(&self) -> Option<f64> {
        (self.flags & transport_flags::TEMPO != 0 && self.tempo_bpm.is_finite() && self.tempo_bpm > 0.0)
            .then_some(self.tempo_bpm)
    }

    /// The musical position of the block's start in quarter notes, if the host gives one.
    pub fn position(&self) -> Option<f64> {
        (self.flags & transport_flags::POSITION != 0 && self.ppq_position.is_finite()).then_some(self.ppq_position)
    }
}

thread_local! {
    /// Where and why the engine's `process` last panicked on this thread, noted by the
    /// hook into fixed memory (no allocation) for the export to publish in the block.
    static PANIC_TEXT: core::cell::RefCell<FixedText> = const { core::cell::RefCell::new(FixedText::new()) };
}

/// A text in fixed memory, filled with `write!` without allocating; longer text is cut.
struct FixedText {
    bytes: [u8; crate::block::PanicNote::CAPACITY],
    len: usize,
}

impl FixedText {
    const fn new() -> Self {
        Self { bytes: [0; crate::block::PanicNote::CAPACITY], len: 0 }
    }

    fn as_str(&self) -> &str {
        // The bytes were written from `&str`s, cut at character boundaries.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for FixedText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let cut = s.floor_char_boundary(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + cut].copy_from_slice(&s.as_bytes()[..cut]);
        self.len += cut;
        Ok(())
    }
}

/// Installs, once per engine library, a panic hook that is silent inside `process` (it
/// notes the location and message in fixed memory instead) and hands every other panic
/// to the hook that was there before.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::realtime::in_engine_process() {
                previous(info);
                return;
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(a panic payload that is not text)");
            let _ = PANIC_TEXT.try_with(|text| {
                if let Ok(mut text) = text.try_borrow_mut() {
                    use core::fmt::Write;
                    text.len = 0;
                    let _ = match info.location() {
                        Some(at) => write!(text, "{}:{}:{}: {message}", at.file(), at.line(), at.column()),
                        None => write!(text, "{message}"),
                    };
                }
            });
        }));
    });
}

/// One engine instance behind the exports: the plugin's engine and everything the
/// framework keeps around it.
pub struct Runner<E: Engine> {
    engine: E,
    shared: &'static SharedBlock,
    area: &'static E::Area,
    params: Box<Params>,
    ring: Consumer<'static, abi::Event, TO_ENGINE_CAPACITY>,
    to_control: Producer<'static, abi::Event, FROM_ENGINE_CAPACITY>,
    published: [bool; MAX_VOICES],
    sample_rate: f64,
    max_block: u32,
    clock: u64,
    faulted: bool,
    /// The engine declared itself asleep at the end of its last block, and was neither
    /// reset nor activated since: samples the caller skipped are reported as slept.
    asleep: bool,
}

/// Largest block activate accepts.
const MAX_BLOCK_LIMIT: u32 = 1 << 16;

impl<E: Engine> Runner<E> {
    fn context(&mut self) -> (&mut E, EngineContext<'_, E::Area>) {
        let ctx = EngineContext {
            shared: self.shared,
            area: self.area,
            params: &self.params,
            sample_rate: self.sample_rate,
            max_block: self.max_block as usize,
        };
        (&mut self.engine, ctx)
    }

    fn activate(&mut self, sample_rate: f64, max_block: u32) -> i32 {
        if !(sample_rate.is_finite() && (1_000.0..=1_536_000.0).contains(&sample_rate)) {
            return status::INVALID_ARGUMENT;
        }
        if max_block == 0 || max_block > MAX_BLOCK_LIMIT {
            return status::INVALID_ARGUMENT;
        }
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.asleep = false;
        self.params.refresh();
        self.params.changed_len = 0;
        let (engine, mut ctx) = self.context();
        engine.activate(&mut ctx);
        engine.reset();
        status::OK
    }

    fn reset(&mut self) {
        self.engine.reset();
        self.faulted = false;
        self.asleep = false;
        // Relaxed: a telemetry flag.
        self.shared.stats.engine_faulted.store(0, Ordering::Relaxed);
    }

    fn fault(&mut self, data: &mut ProcessData) {
        self.faulted = true;
        let _ = PANIC_TEXT.try_with(|text| {
            if let Ok(text) = text.try_borrow() {
                self.shared.stats.panic_note.write(text.as_str());
            }
        });
        Statistics::bump(&self.shared.stats.engine_panics);
        // Relaxed: a telemetry flag.
        self.shared.stats.engine_faulted.store(1, Ordering::Relaxed);
        silence(data);
    }

    /// One block. Runs inside the allocation check.
    fn process(&mut self, data: &mut ProcessData) -> i32 {
        // Timed in real time only: an offline block has no deadline, and reading the clock
        // twice costs more than an idle block's work.
        let start_time = (data.process_mode != process_mode::OFFLINE).then(Instant::now);
        let n = data.num_samples;
        let channels = (data.num_main as usize).min(MAX_CHANNELS);
        if n > self.max_block || (n > 0 && channels > 0 && data.main.is_null()) {
            silence(data);
            return status::INVALID_ARGUMENT;
        }
        if self.faulted {
            silence(data);
            return status::FAULTED;
        }
        #[cfg(feature = "fault-injection")]
        crate::fault::point(crate::fault::PROCESS);
        #[cfg(feature = "alloc-probe")]
        std::hint::black_box(Vec::<u8>::with_capacity(64));
        let len = n as usize;
        let mut main: [&mut [f32]; MAX_CHANNELS] = Default::default();
        if channels > 0 && len > 0 {
            // SAFETY: the bridge passes `num_main` channel pointers (checked non-null above),
            // each valid for `num_samples` floats, distinct and not aliased during the call.
            let ptrs = unsafe { core::slice::from_raw_parts(data.main, channels) };
            for (slot, &ptr) in main.iter_mut().zip(ptrs) {
                if !ptr.is_null() {
                    // SAFETY: as above.
                    *slot = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
                }
            }
        }
        let side_count = (data.num_sidechain as usize).min(MAX_CHANNELS);
        let mut side: [&[f32]; MAX_CHANNELS] = Default::default();
        if side_count > 0 && len > 0 && !data.sidechain.is_null() {
            // SAFETY: the bridge passes `num_sidechain` read-only channel pointers, each
            // valid for `num_samples` floats and never aliasing `main`.
            let ptrs = unsafe { core::slice::from_raw_parts(data.sidechain, side_count) };
            for (slot, &ptr) in side.iter_mut().zip(ptrs) {
                if !ptr.is_null() {
                    // SAFETY: as above.
                    *slot = unsafe { core::slice::from_raw_parts(ptr, len) };
                }
            }
        }
        let events: &[abi::Event] = if data.events.is_null() || data.num_events == 0 {
            &[]
        } else {
            // SAFETY: the bridge passes `num_events` events sorted by time, valid for the call.
            unsafe { core::slice::from_raw_parts(data.events, data.num_events as usize) }
        };
        // The caller moves the block's clock on over the blocks it answers for a sleeping
        // engine (`crate::sleep`); otherwise only this engine writes it. Samples skipped
        // since a reset or activation are not reported as slept: the engine starts anew.
        // Acquire: pairs with the caller's Release store when it skipped blocks.
        let published = self.shared.header.sample_clock.load(Ordering::Acquire);
        let slept = if self.asleep { published.wrapping_sub(self.clock) } else { 0 };
        self.clock = published;
        self.asleep = false;
        self.params.refresh();
        let transport = data.transport;
        self.shared.transport.publish(&Transport::of_host(self.clock, &transport));
        let (late, silent, asleep) = {
            let mut block = Block {
                len,
                main,
                main_count: channels,
                sidechain: side,
                sidechain_count: side_count,
                host_events: events,
                host_next: 0,
                ring: &mut self.ring,
                to_control: &mut self.to_control,
                params: &mut self.params,
                area: self.area,
                shared: self.shared,
                published: &mut self.published,
                transport,
                start: self.clock,
                pos: 0,
                sample_rate: self.sample_rate,
                mode: data.process_mode,
                late: 0,
                silent: false,
                asleep: false,
                slept,
            };
            self.engine.process(&mut block);
            // Events the engine did not ask for are still applied, so parameters and the
            // ring stay in step whatever the engine does.
            while block.next_event().is_some() {}
            (block.late, block.silent, block.asleep)
        };
        if late > 0 {
            // Relaxed: a telemetry counter.
            self.shared.stats.late_events.fetch_add(late, Ordering::Relaxed);
        }
        let mut main: [&mut [f32]; MAX_CHANNELS] = Default::default();
        if channels > 0 && len > 0 {
            // SAFETY: as above; the block that borrowed the channels has been dropped.
            let ptrs = unsafe { core::slice::from_raw_parts(data.main, channels) };
            for (slot, &ptr) in main.iter_mut().zip(ptrs) {
                if !ptr.is_null() {
                    // SAFETY: as above.
                    *slot = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
                }
            }
        }
        self.finish(data, &mut main[..channels], len, start_time, silent);
        if asleep {
            data.engine_state |= abi::engine_state::ASLEEP;
        }
        self.asleep = asleep;
        status::OK
    }

    fn finish(
        &mut self,
        data: &mut ProcessData,
        main: &mut [&mut [f32]],
        len: usize,
        start_time: Option<Instant>,
        declared_silent: bool,
    ) {
        let mut silence = 0u64;
        let mut finite = true;
        let mut loudest = 0.0f32;
        let meters = &self.shared.meters;
        if declared_silent {
            debug_assert!(
                main.iter().all(|c| c.iter().all(|&s| s == 0.0)),
                "the engine declared a block silent that is not (Block::set_silent)"
            );
            for c in 0..main.len().min(2) {
                // Relaxed: meters are telemetry.
                meters.peak[c].store(0.0, Ordering::Relaxed);
                meters.rms[c].store(0.0, Ordering::Relaxed);
            }
            silence = all_channels(main.len());
        }
        // Peak and RMS of the first two channels, stored once the block is known to stand.
        let mut levels = [(0.0f32, 0.0f32); 2];
        let mut first = None;
        for (c, channel) in main.iter().enumerate().filter(|_| !declared_silent) {
            let (peak, sum) = match first {
                // A channel that is a copy of the first (a mono instrument on a stereo bus)
                // has its levels: a byte compare costs a fraction of a scan.
                Some((first_channel, levels)) if same_bits(first_channel, channel) => levels,
                _ => peak_and_energy(channel),
            };
            if c == 0 {
                first = Some((&**channel, (peak, sum)));
            }
            // A NaN sample makes `sum` NaN; an infinite one makes both infinite.
            finite &= peak.is_finite() && sum.is_finite();
            loudest = loudest.max(peak);
            if peak == 0.0 {
                silence |= 1 << c;
            }
            if let Some(level) = levels.get_mut(c) {
                *level = (peak, if len > 0 { (sum / len as f32).sqrt() } else { 0.0 });
            }
        }
        let runaway = finite && loudest > RUNAWAY_PEAK;
        if !declared_silent {
            // A block replaced by silence (below) meters as silence.
            let stands = finite && !runaway;
            for (c, &(peak, rms)) in levels.iter().enumerate().take(main.len()) {
                // Relaxed: meters are telemetry.
                meters.peak[c].store(if stands { peak } else { 0.0 }, Ordering::Relaxed);
                meters.rms[c].store(if stands { rms } else { 0.0 }, Ordering::Relaxed);
            }
        }
        if !finite || runaway {
            for channel in main.iter_mut() {
                channel.fill(0.0);
            }
            silence = all_channels(main.len());
            let stats = &self.shared.stats;
            Statistics::bump(if runaway { &stats.runaway_blocks } else { &stats.nonfinite_blocks });
        }
        data.silence_flags = silence;
        let n = len as u64;
        self.clock += n;
        // Release: pairs with the control module's Acquire load; events it schedules after
        // reading this clock are timed against a block that has been rendered.
        self.shared.header.sample_clock.store(self.clock, Ordering::Release);
        let stats = &self.shared.stats;
        // Relaxed loads and stores, no read-modify-write: this engine is the only writer
        // of these counters (one `process` at a time), and readers want telemetry.
        let add = |counter: &core::sync::atomic::AtomicU64, by: u64| {
            counter.store(counter.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
        };
        add(&stats.blocks_processed, 1);
        add(&stats.samples_processed, n);
        let Some(start_time) = start_time else { return };
        let elapsed = start_time.elapsed().as_nanos() as u64;
        stats.last_process_ns.store(elapsed, Ordering::Relaxed);
        if elapsed > stats.worst_process_ns.load(Ordering::Relaxed) {
            stats.worst_process_ns.store(elapsed, Ordering::Relaxed);
        }
        let deadline_ns = (n as f64 / self.sample_rate * 1e9) as u64;
        if n > 0 && elapsed > deadline_ns {
            add(&stats.deadline_misses, 1);
        }
    }
}

crate::cpu::with_cpu_feature!(
    "avx",
    /// The largest magnitude and the sum of squares of `channel`: [`peak_and_energy_of`],
    /// in 256-bit vectors on a CPU with AVX (half the instructions of the baseline's
    /// 128-bit ones, and the same results bit for bit: each lane sees the same samples in
    /// the same order).
    fn peak_and_energy(channel: &[f32]) -> (f32, f32) = peak_and_energy_of
);

/// The largest magnitude and the sum of squares of `channel`, in four independent
/// accumulators of four lanes each, so the compiler keeps them in vector registers with no
/// lane shuffling (a serial `max`/`+=` chain does not vectorise, and one accumulator of
/// eight lanes came out with shuffles in every iteration). The maximum is written so that
/// it lowers to one `maxps` into the accumulator. A NaN sample makes the sum NaN (the
/// peak of such a block means nothing: the block is replaced by silence).
#[inline(always)]
fn peak_and_energy_of(channel: &[f32]) -> (f32, f32) {
    const W: usize = 4;
    const K: usize = 4;
    let (mut peak, mut sum) = ([[0.0f32; W]; K], [[0.0f32; W]; K]);
    let chunks = channel.chunks_exact(W * K);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (k, (p, q)) in peak.iter_mut().zip(&mut sum).enumerate() {
            for i in 0..W {
                let s = chunk[k * W + i];
                let a = s.abs();
                p[i] = if p[i] > a { p[i] } else { a };
                q[i] += s * s;
            }
        }
    }
    for (i, &s) in tail.iter().enumerate() {
        let (p, q) = (&mut peak[i / W % K][i % W], &mut sum[i / W % K][i % W]);
        let a = s.abs();
        *p = if *p > a { *p } else { a };
        *q += s * s;
    }
    let peak = peak.iter().flatten().fold(0.0f32, |m, &p| if p > m { p } else { m });
    (peak, sum.iter().flatten().sum())
}

/// Whether `a` and `b` hold the same samples bit for bit (compared as bytes, which the C
/// library does with the widest vectors the machine has, and stops at the first difference).
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    // SAFETY: any `f32` is four initialised bytes; the views cover exactly the slices and
    // live no longer than the borrows they come from.
    let bytes = |x: &[f32]| unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<u8>(), size_of_val(x)) };
    bytes(a) == bytes(b)
}

/// Writes zeros to every main channel (as far as the pointers are usable).
fn silence(data: &mut ProcessData) {
    let len = data.num_samples as usize;
    let channels = (data.num_main as usize).min(MAX_CHANNELS);
    if !data.main.is_null() && len > 0 {
        // SAFETY: the bridge passes `num_main` channel pointers valid for `num_samples`.
        for &ptr in unsafe { core::slice::from_raw_parts(data.main, channels) } {
            if !ptr.is_null() {
                // SAFETY: as above.
                unsafe { core::slice::from_raw_parts_mut(ptr, len) }.fill(0.0);
            }
        }
    }
    data.silence_flags = all_channels(channels);
}

/// Silence flags with the bits of `channels` channels set.
pub(crate) fn all_channels(channels: usize) -> u64 {
    if channels >= 64 { u64::MAX } else { (1u64 << channels) - 1 }
}

/// The functions behind the engine exports, generic over the plugin's engine. Called only
/// by the code [`export_engine!`](crate::export_engine!) generates.
#[doc(hidden)]
pub mod __export {
    use core::ffi::c_void;

    use super::{Engine, Params, Runner};
    use crate::abi::{AreaLayout, ProcessData, catch_status, status};
    use crate::block::{MAX_VOICES, SharedBlock};

    /// `trio_engine_create`.
    ///
    /// # Safety
    /// `block` points to an initialised segment (block and area) that outlives the engine,
    /// with provenance over the whole segment; `out` is valid for a write.
    pub unsafe fn create<E: Engine>(block: *const SharedBlock, out: *mut *mut c_void) -> i32 {
        catch_status(|| {
            if block.is_null() || out.is_null() {
                return status::NULL_POINTER;
            }
            super::install_quiet_panic_hook();
            // SAFETY: non-null; the caller guarantees a live block that outlives the engine.
            let shared: &'static SharedBlock = unsafe { &*block };
            if shared.check_header(&AreaLayout::of::<E::Area>()).is_err() {
                return status::ABI_MISMATCH;
            }
            // SAFETY: the header check passed for this area type, and the caller
            // guarantees provenance over the whole segment.
            let area: &'static E::Area = unsafe { crate::area::area_at(block) };
            // SAFETY: one engine serves one block: it is the only consumer of `to_engine`
            // and the only producer of `from_engine` (DESIGN §4).
            let (ring, to_control) = unsafe { (shared.to_engine.consumer(), shared.from_engine.producer()) };
            let params = Params::new(&shared.params);
            let sample_rate = shared.sample_rate();
            // Relaxed: setup values written before the engine is created.
            let max_block = shared.header.max_block_size.load(core::sync::atomic::Ordering::Relaxed).max(1);
            let mut ctx =
                super::EngineContext { shared, area, params: &params, sample_rate, max_block: max_block as usize };
            // Built in its place on the heap, the engine straight into its field: an engine
            // can be large (the example synth's is 65 KiB), and building the runner on the
            // stack copied it twice more, and made the host's thread hold it three times
            // over on its stack (some hosts create plugins on threads with small stacks).
            let mut slot = Box::<Runner<E>>::new_uninit();
            let runner = slot.as_mut_ptr();
            // SAFETY: `runner` points to an allocation of a `Runner<E>`, ours alone; the
            // engine is written first, so a panic in `E::new` leaves nothing written to
            // drop, and every other field is written below before `assume_init`.
            unsafe { core::ptr::addr_of_mut!((*runner).engine).write(E::new(&mut ctx)) };
            // Acquire: pairs with the Release store after each block, so an engine on a used
            // block continues its clock.
            let clock = shared.header.sample_clock.load(core::sync::atomic::Ordering::Acquire);
            macro_rules! init {
                ($($field:ident: $value:expr),* $(,)?) => {
                    // The engine and these are every field: a field added to `Runner` and
                    // not here fails to compile (the pattern has no `..`).
                    let _every_field = |r: &Runner<E>| {
                        let Runner { engine: _, $($field: _),* } = r;
                    };
                    // SAFETY: as above: each field of the allocation written once.
                    $(unsafe { core::ptr::addr_of_mut!((*runner).$field).write($value) };)*
                };
            }
            init!(
                shared: shared,
                area: area,
                params: params,
                ring: ring,
                to_control: to_control,
                published: [true; MAX_VOICES],
                sample_rate: sample_rate,
                max_block: max_block,
                clock: clock,
                faulted: false,
                asleep: false,
            );
            // SAFETY: every field was written above (checked by the pattern in `init!`).
            let runner = unsafe { slot.assume_init() };
            // SAFETY: `out` is non-null and valid for a write (caller's guarantee).
            unsafe { out.write(Box::into_raw(runner).cast()) };
            status::OK
        })
    }

    /// `trio_engine_destroy`.
    ///
    /// # Safety
    /// `engine` came from [`create`] with the same `E`, is not used afterwards, and no
    /// other call on it is running.
    pub unsafe fn destroy<E: Engine>(engine: *mut c_void) {
        let _ = catch_status(|| {
            if !engine.is_null() {
                // SAFETY: made by `Box::into_raw` in `create`, destroyed once (caller's guarantee).
                drop(unsafe { Box::from_raw(engine.cast::<Runner<E>>()) });
            }
            status::OK
        });
    }

    /// `trio_engine_activate`.
    ///
    /// # Safety
    /// `engine` came from [`create`] with the same `E` and no other call on it is running.
    pub unsafe fn activate<E: Engine>(engine: *mut c_void, sample_rate: f64, max_block: u32) -> i32 {
        catch_status(|| {
            // SAFETY: caller's guarantee: a live engine with no concurrent call.
            match unsafe { engine.cast::<Runner<E>>().as_mut() } {
                Some(runner) => runner.activate(sample_rate, max_block),
                None => status::NULL_POINTER,
            }
        })
    }

    /// `trio_engine_reset`.
    ///
    /// # Safety
    /// As [`activate`].
    pub unsafe fn reset<E: Engine>(engine: *mut c_void) -> i32 {
        catch_status(|| {
            // SAFETY: caller's guarantee: a live engine with no concurrent call.
            match unsafe { engine.cast::<Runner<E>>().as_mut() } {
                Some(runner) => {
                    runner.reset();
                    status::OK
                }
                None => status::NULL_POINTER,
            }
        })
    }

    /// `trio_engine_process`: the one place the engine's audio path is wrapped.
    ///
    /// # Safety
    /// `engine` came from [`create`] with the same `E` and no other call on it is running;
    /// `data` points to a `ProcessData` whose pointers are valid as documented there.
    pub unsafe fn process<E: Engine>(engine: *mut c_void, data: *mut ProcessData) -> i32 {
        if engine.is_null() || data.is_null() {
            return status::NULL_POINTER;
        }
        let _ftz = crate::realtime::DenormalGuard::new();
        let runner_ptr = engine.cast::<Runner<E>>();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: caller's guarantee: a live engine with no concurrent call, and a
            // valid `ProcessData` (both non-null, checked above).
            let (runner, data) = unsafe { (&mut *runner_ptr, &mut *data) };
            let (code, violations) = crate::realtime::count_engine_allocations(|| runner.process(data));
            runner.shared.stats.add_alloc_violations(violations);
            code
        }));
        match result {
            Ok(code) => code,
            Err(payload) => {
                // Dropping the payload frees it (into the emergency arena it came from).
                drop(payload);
                // SAFETY: same pointers as above; the panicking borrow has ended.
                let (runner, data) = unsafe { (&mut *runner_ptr, &mut *data) };
                runner.shared.stats.add_alloc_violations(crate::realtime::take_unwound_allocations());
                runner.fault(data);
                status::PANIC
            }
        }
    }
}

/// Exports the engine library's C ABI for engine type `$engine` (which implements
/// [`Engine`]): its descriptor, `create`, `destroy`, `activate`, `reset`, `process`, and
/// the allocator that catches allocation on the audio path. Use it once, in the engine
/// crate's `lib.rs`:
///
/// ```ignore
/// trio::export_engine!(MySynth);
/// ```
///
/// The crate needs `crate-type = ["cdylib", "rlib"]`.
#[macro_export]
macro_rules! export_engine {
    ($engine:ty) => {
        #[global_allocator]
        static TRIO_ENGINE_ALLOCATOR: $crate::realtime::RealtimeAllocator = $crate::realtime::RealtimeAllocator;

        /// This engine's descriptor: ABI version, layout hash, plugin area, "allocation forbidden".
        #[unsafe(no_mangle)]
        pub static trio_engine_descriptor: $crate::abi::ModuleDescriptor = $crate::abi::ModuleDescriptor::new(
            $crate::abi::module_kind::ENGINE,
            $crate::abi::alloc_policy::FORBID,
            $crate::abi::AreaLayout::of::<<$engine as $crate::engine::Engine>::Area>(),
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        );

        /// See `trio::engine::__export::create`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_engine_create(
            block: *const $crate::block::SharedBlock,
            out: *mut *mut ::core::ffi::c_void,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::engine::__export::create::<$engine>(block, out) }
        }

        /// See `trio::engine::__export::destroy`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_engine_destroy(engine: *mut ::core::ffi::c_void) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::engine::__export::destroy::<$engine>(engine) }
        }

        /// See `trio::engine::__export::activate`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_engine_activate(
            engine: *mut ::core::ffi::c_void,
            sample_rate: f64,
            max_block: u32,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::engine::__export::activate::<$engine>(engine, sample_rate, max_block) }
        }

        /// See `trio::engine::__export::reset`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_engine_reset(engine: *mut ::core::ffi::c_void) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::engine::__export::reset::<$engine>(engine) }
        }

        /// See `trio::engine::__export::process`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_engine_process(
            engine: *mut ::core::ffi::c_void,
            data: *mut $crate::abi::ProcessData,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::engine::__export::process::<$engine>(engine, data) }
        }
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{__export, Block, Engine, EngineContext, Runner, peak_and_energy, peak_and_energy_of, same_bits};
    use crate::abi::{AreaLayout, status};
    use crate::block::HeapBlock;

    /// An engine far larger than the rest of its runner.
    struct Large {
        samples: [f32; 8192],
        rate: f64,
    }

    impl Engine for Large {
        type Area = ();
        fn new(ctx: &mut EngineContext<'_, ()>) -> Self {
            Large { samples: [0.25; 8192], rate: ctx.sample_rate() }
        }
        fn process(&mut self, _: &mut Block<'_, ()>) {}
    }

    /// An engine whose construction panics.
    struct Refuses;

    impl Engine for Refuses {
        type Area = ();
        fn new(_: &mut EngineContext<'_, ()>) -> Self {
            panic!("this engine refuses to be created")
        }
        fn process(&mut self, _: &mut Block<'_, ()>) {}
    }

    /// `create` builds the runner field by field in its allocation (Miri checks every
    /// field is initialised and nothing leaks), and a panic in `Engine::new` returns
    /// `PANIC` with nothing written and nothing left allocated.
    #[test]
    fn engines_are_built_in_place_and_a_failed_one_leaves_nothing() {
        let heap = HeapBlock::new(&AreaLayout::of::<()>());
        let mut out = core::ptr::null_mut();
        // SAFETY: a live block that outlives the engine; `out` is a valid slot.
        assert_eq!(unsafe { __export::create::<Large>(heap.as_ptr(), &mut out) }, status::OK);
        // SAFETY: made by `create::<Large>` just above, not yet destroyed.
        let runner = unsafe { &*out.cast::<Runner<Large>>() };
        assert!(runner.engine.samples.iter().all(|&s| s == 0.25));
        assert_eq!((runner.engine.rate, runner.sample_rate, runner.max_block), (48_000.0, 48_000.0, 1024));
        assert!(runner.published.iter().all(|&p| p) && !runner.faulted && !runner.asleep);
        // SAFETY: made by `create::<Large>`, destroyed once, no call running.
        unsafe { __export::destroy::<Large>(out) };

        let mut out = core::ptr::null_mut();
        // SAFETY: as above.
        assert_eq!(unsafe { __export::create::<Refuses>(heap.as_ptr(), &mut out) }, status::PANIC);
        assert!(out.is_null(), "a failed creation writes no engine");
    }

    /// The scan the CPU runs (256-bit vectors where it has AVX) gives the baseline's
    /// results bit for bit, at every length and alignment.
    #[test]
    fn the_wide_scan_gives_the_baseline_results() {
        // Irregular values of both signs (as the other scan tests make theirs).
        let signal: Vec<f32> = (0..1200).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 3.0).collect();
        for start in 0..8 {
            for len in [0, 1, 5, 15, 16, 17, 31, 32, 33, 64, 100, 511, 512, 513, 1024, 1100] {
                let channel = &signal[start..start + len];
                let (p, e) = peak_and_energy(channel);
                let (bp, be) = peak_and_energy_of(channel);
                assert_eq!((p.to_bits(), e.to_bits()), (bp.to_bits(), be.to_bits()), "start {start}, length {len}");
            }
        }
    }

    #[test]
    fn peak_and_energy_see_every_sample_of_any_length() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 513] {
            let signal: Vec<f32> = (0..len).map(|i| ((i * 37 % 19) as f32 - 9.0) / 10.0).collect();
            let (peak, sum) = peak_and_energy(&signal);
            let want_peak = signal.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            let want_sum: f32 = signal.iter().map(|s| s * s).sum();
            assert_eq!(peak, want_peak, "length {len}");
            assert!((sum - want_sum).abs() <= 1e-4 * want_sum.max(1.0), "length {len}: {sum} vs {want_sum}");
        }
        let mut signal = vec![0.25f32; 100];
        signal[97] = -3.0;
        assert_eq!(peak_and_energy(&signal).0, 3.0, "a peak in the tail");
        signal[40] = f32::NAN;
        assert!(peak_and_energy(&signal).1.is_nan(), "a NaN shows in the energy");
        signal[40] = f32::NEG_INFINITY;
        assert!(peak_and_energy(&signal).0.is_infinite());
        assert_eq!(peak_and_energy(&[0.0; 99]), (0.0, 0.0), "silence");
    }

    #[test]
    fn peak_and_energy_find_a_lone_spike_at_any_position() {
        for len in [1, 3, 15, 16, 17, 31, 32, 33, 64, 100, 512] {
            for at in 0..len {
                let mut signal = vec![0.125f32; len];
                signal[at] = -2.0;
                let (peak, sum) = peak_and_energy(&signal);
                assert_eq!(peak, 2.0, "length {len}, spike at {at}");
                let want = 4.0 + 0.015_625 * (len - 1) as f32;
                assert!((sum - want).abs() <= 1e-5 * want, "length {len}, spike at {at}: {sum} vs {want}");
            }
        }
    }

    #[test]
    fn same_bits_compares_every_sample_bit_for_bit() {
        let a: Vec<f32> = (0..513).map(|i| i as f32 * 0.25 - 9.0).collect();
        assert!(same_bits(&a, &a.clone()));
        assert!(same_bits(&[], &[]));
        for at in [0, 1, 255, 512] {
            let mut b = a.clone();
            b[at] = f32::from_bits(b[at].to_bits() ^ 1);
            assert!(!same_bits(&a, &b), "a difference at {at}");
        }
        assert!(!same_bits(&[0.0], &[-0.0]), "zero and minus zero differ");
        assert!(!same_bits(&a[..10], &a[..11]), "lengths differ");
    }
}
