//! The engine behind the C ABI: reads parameters and events from the shared block and
//! the host's block, drives the synth sample-accurately, and reports voices, meters and
//! statistics back into the block.
//!
//! # Arpeggiator keys
//!
//! While the `ARP_ON` parameter is on, the host's note-ons and note-offs are not played:
//! they are recorded, at their exact sample time, as held keys in the block's arp area
//! (`SharedBlock::arp.held`), which the control module turns into timed notes in the
//! `to_engine` ring. A host note-off for a key that was not recorded (a note started
//! before the arp went on) still releases its voice. Arpeggiator note-ons from the ring
//! (note ids made by `shared::block::arp_note_id`) play only while the arp is on, a key
//! is held and their phrase is the current one, so notes the control module scheduled
//! ahead never sound after the keys are released or the arp is switched off. Switching the
//! arp off ends the phrase (the held keys are forgotten). Everything here is fixed-size:
//! no allocation.

use core::sync::atomic::Ordering;
use std::time::Instant;

use shared::abi::{Event, ProcessData, event_kind, status};
use shared::block::{HeldKey, HeldKeys, MAX_HELD_KEYS, SharedBlock, Statistics, arp_note_phrase};
use shared::params::{ParamMapping, id};

use crate::dsp::{Synth, SynthParams, Waveform};

const PARAM_COUNT: usize = id::COUNT as usize;
const DEFAULT_MAX_BLOCK: u32 = 1024;
/// Largest block `rt_activate` accepts (a host asking for more gets `INVALID_ARGUMENT`).
const MAX_BLOCK_LIMIT: u32 = 1 << 16;

/// One engine instance.
pub(crate) struct Engine {
    block: &'static SharedBlock,
    synth: Synth,
    /// Current normalized value of each parameter as the synth last applied it.
    normalized: [f64; PARAM_COUNT],
    /// Last consistent mapping read from the block, per parameter.
    mappings: [ParamMapping; PARAM_COUNT],
    params: SynthParams,
    /// Scratch for the right channel when the host gives a mono output.
    scratch: Vec<f32>,
    sample_rate: f64,
    max_block: u32,
    /// Engine sample clock: sample time of the start of the next block.
    clock: u64,
    faulted: bool,
    /// Whether each voice slot in the block was last published as sounding; idle slots
    /// that are already published idle are not rewritten every block.
    published_active: [bool; shared::block::MAX_VOICES],
    /// Whether the arpeggiator is on (host notes become held keys).
    arp_on: bool,
    /// The keys held for the arpeggiator; published to the block when `held_dirty`.
    held: HeldKeys,
    held_dirty: bool,
    /// Absolute sample time of the event being applied.
    now: u64,
}

impl Engine {
    pub(crate) fn new(block: &'static SharedBlock) -> Self {
        let sample_rate = 48_000.0;
        let mut engine = Self {
            block,
            synth: Synth::new(sample_rate as f32, DEFAULT_MAX_BLOCK as usize),
            normalized: [f64::NAN; PARAM_COUNT],
            mappings: [ParamMapping::linear(0.0, 1.0); PARAM_COUNT],
            params: SynthParams::default(),
            scratch: vec![0.0; DEFAULT_MAX_BLOCK as usize],
            sample_rate,
            max_block: DEFAULT_MAX_BLOCK,
            // Acquire: pairs with the Release store after each block, so a new engine on an
            // old block continues its clock.
            clock: block.header.sample_clock.load(Ordering::Acquire),
            faulted: false,
            published_active: [true; shared::block::MAX_VOICES],
            arp_on: false,
            // A new engine on a used block continues its held keys.
            held: block.arp.held.read().unwrap_or_default(),
            held_dirty: false,
            now: 0,
        };
        engine.now = engine.clock;
        engine.refresh_from_block();
        engine
    }

    pub(crate) fn activate(&mut self, sample_rate: f64, max_block: u32) -> i32 {
        if !(sample_rate.is_finite() && (1_000.0..=1_536_000.0).contains(&sample_rate)) {
            return status::INVALID_ARGUMENT;
        }
        if max_block == 0 || max_block > MAX_BLOCK_LIMIT {
            return status::INVALID_ARGUMENT;
        }
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.synth.set_sample_rate(sample_rate as f32, max_block as usize);
        self.scratch = vec![0.0; max_block as usize];
        self.normalized = [f64::NAN; PARAM_COUNT];
        self.refresh_from_block();
        self.synth.reset();
        status::OK
    }

    pub(crate) fn reset(&mut self) {
        self.synth.reset();
        self.faulted = false;
        // Relaxed: a telemetry flag.
        self.block.stats.engine_faulted.store(0, Ordering::Relaxed);
    }

    /// After a caught panic: silence this block and every later one until reset.
    pub(crate) fn fault(&mut self, data: &mut ProcessData) {
        self.faulted = true;
        Statistics::bump(&self.block.stats.engine_panics);
        // Relaxed: a telemetry flag.
        self.block.stats.engine_faulted.store(1, Ordering::Relaxed);
        silence_outputs(data);
    }

    pub(crate) fn record_violations(&self, violations: u32) {
        if violations > 0 {
            // Relaxed: a telemetry counter.
            self.block.stats.alloc_violations.fetch_add(u64::from(violations), Ordering::Relaxed);
        }
    }

    /// Reads mappings and values from the block; applies changed values at the start of
    /// the block. Values written by other threads (the host's UI, a preset the control
    /// module loaded) reach the engine this way.
    fn refresh_from_block(&mut self) {
        let mut changed = false;
        for i in 0..PARAM_COUNT {
            let slot = &self.block.params[i];
            if let Some(m) = slot.mapping()
                && m != self.mappings[i]
                && m.validate().is_ok()
            {
                self.mappings[i] = m;
                changed = true;
            }
            // Relaxed: each value is independent; no other data is published through it.
            let v = slot.value.load(Ordering::Relaxed);
            if v.to_bits() != self.normalized[i].to_bits() {
                self.normalized[i] = v;
                changed = true;
            }
        }
        if changed {
            self.update_params();
        }
    }

    fn plain(&self, param: u32) -> f32 {
        let i = param as usize;
        let n = self.normalized[i];
        let n = if n.is_finite() { n } else { 0.0 };
        self.mappings[i].to_plain(n) as f32
    }

    fn update_params(&mut self) {
        self.params = SynthParams {
            gain_db: self.plain(id::GAIN),
            waveform: match self.plain(id::WAVEFORM).round() as i32 {
                1 => Waveform::Square,
                2 => Waveform::Sine,
                _ => Waveform::Saw,
            },
            attack_s: self.plain(id::ATTACK),
            decay_s: self.plain(id::DECAY),
            sustain: self.plain(id::SUSTAIN),
            release_s: self.plain(id::RELEASE),
            cutoff_hz: self.plain(id::CUTOFF),
            resonance: self.plain(id::RESONANCE),
            filter_env_octaves: self.plain(id::FILTER_ENV),
            velocity_sens: self.plain(id::VELOCITY_SENS),
            bypass: self.plain(id::BYPASS) >= 0.5,
        };
        self.synth.set_params(&self.params);
        let arp_on = self.plain(id::ARP_ON) >= 0.5;
        if self.arp_on && !arp_on {
            // Switching the arp off ends the phrase; the keys are forgotten.
            self.release_all_keys();
        }
        self.arp_on = arp_on;
    }

    /// Records a key going down for the arpeggiator. A key already held moves to the end
    /// of the press order with its new velocity.
    fn key_down(&mut self, note: u8, velocity: f32) {
        self.remove_key(note);
        let h = &mut self.held;
        if h.count == 0 {
            h.phrase = h.phrase.wrapping_add(1);
            h.phrase_start = self.now;
        }
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
            self.held.released_at = self.now;
        }
        true
    }

    /// Ends the current phrase: no key is held any more.
    fn release_all_keys(&mut self) {
        if self.held.count > 0 {
            self.held.count = 0;
            self.held.released_at = self.now;
            self.held_dirty = true;
        }
    }

    /// A note or other event from the host's event list.
    fn apply_host(&mut self, event: &Event) {
        if self.arp_on && event.index < 128 {
            let note = event.index as u8;
            match event.kind {
                event_kind::NOTE_ON if event.value.is_finite() && event.value > 0.0 => {
                    self.key_down(note, event.value.min(1.0) as f32);
                    return;
                }
                event_kind::NOTE_ON | event_kind::NOTE_OFF if self.key_up(note) => return,
                _ => {}
            }
        }
        if self.arp_on && event.kind == event_kind::ALL_NOTES_OFF {
            self.release_all_keys();
        }
        self.apply(event);
    }

    /// An event from the control module's ring.
    fn apply_ring(&mut self, event: &Event) {
        if event.kind == event_kind::NOTE_ON
            && let Some(phrase) = arp_note_phrase(event.note_id)
            && !(self.arp_on && self.held.count > 0 && phrase == self.held.phrase as u8)
        {
            // An arp note scheduled ahead for a phrase that has ended (or with the arp off).
            return;
        }
        self.apply(event);
    }

    fn apply(&mut self, event: &Event) {
        match event.kind {
            event_kind::NOTE_ON if event.index < 128 => {
                let velocity = if event.value.is_finite() { event.value.clamp(0.0, 1.0) } else { 0.0 };
                if velocity == 0.0 {
                    // MIDI convention: a note-on with velocity 0 is a note-off.
                    self.synth.note_off(event.index as u8, event.note_id);
                } else {
                    self.synth.note_on(event.index as u8, velocity as f32, event.note_id);
                }
            }
            event_kind::NOTE_OFF if event.index < 128 => self.synth.note_off(event.index as u8, event.note_id),
            event_kind::ALL_NOTES_OFF => self.synth.all_notes_off(),
            event_kind::PARAM if (event.index as usize) < PARAM_COUNT && event.value.is_finite() => {
                let v = event.value.clamp(0.0, 1.0);
                let i = event.index as usize;
                self.normalized[i] = v;
                // Relaxed: publishes the applied automation value for readers of the block
                // (the controller, the control module); nothing else depends on it.
                self.block.params[i].value.store(v, Ordering::Relaxed);
                self.update_params();
            }
            _ => {}
        }
    }

    /// Renders one block. Runs inside `assert_no_alloc`.
    pub(crate) fn process(&mut self, data: &mut ProcessData) -> i32 {
        let start = Instant::now();
        let n = data.num_samples;
        if n > self.max_block || (n > 0 && (data.outputs.is_null() || data.num_outputs == 0)) {
            silence_outputs(data);
            return status::INVALID_ARGUMENT;
        }
        if self.faulted {
            silence_outputs(data);
            return status::FAULTED;
        }
        self.now = self.clock;
        self.refresh_from_block();
        #[cfg(feature = "alloc-probe")]
        std::hint::black_box(Vec::<u8>::with_capacity(64));

        let host_events: &[Event] = if data.events.is_null() || data.num_events == 0 {
            &[]
        } else {
            // SAFETY: `rt_process`'s caller guarantees `events` is valid for
            // `num_events` events for the duration of the call.
            unsafe { core::slice::from_raw_parts(data.events, data.num_events as usize) }
        };
        let len = n as usize;
        // Taken out of `self` for the block (no allocation: `take` leaves an empty Vec) so
        // the synth can be borrowed while the slices are alive.
        let mut scratch = core::mem::take(&mut self.scratch);
        // SAFETY: the caller of `rt_process` guarantees `num_outputs` valid channel
        // pointers, each valid for `num_samples` floats, not aliased during the call;
        // `scratch` holds `max_block >= len` samples.
        let (left, right) = unsafe { output_pair(data, len, &mut scratch) };

        // SAFETY: the engine is the only consumer of `to_engine` (DESIGN §4: control
        // produces, the engine consumes), and one engine serves one block.
        let mut ring = unsafe { self.block.to_engine.consumer() };
        let block_start = self.clock;
        let block_end = block_start + u64::from(n);
        let mut host = host_events.iter().peekable();
        let mut pos = 0usize;
        loop {
            // The next event: whichever of the host list and the ring comes first (the
            // host's first on a tie, so a key recorded at a sample gates a ring note there).
            let host_next = host.peek().map(|e| e.time.min(u64::from(n)));
            let ring_next = ring.peek().filter(|e| e.time < block_end).map(|e| e.time.saturating_sub(block_start));
            let (offset, event, from_ring) = match (host_next, ring_next) {
                (None, None) => break,
                (Some(h), Some(r)) if r < h => match ring.pop() {
                    Ok(e) => (r, e, true),
                    Err(_) => break,
                },
                (Some(h), _) => match host.next() {
                    Some(e) => (h, *e, false),
                    None => break,
                },
                (None, Some(r)) => match ring.pop() {
                    Ok(e) => (r, e, true),
                    Err(_) => break,
                },
            };
            let offset = (offset as usize).clamp(pos, len);
            if offset > pos {
                self.synth.render(&mut left[pos..offset], &mut right[pos..offset]);
                pos = offset;
            }
            self.now = block_start + offset as u64;
            if from_ring {
                self.apply_ring(&event);
            } else {
                self.apply_host(&event);
            }
        }
        if pos < len {
            self.synth.render(&mut left[pos..len], &mut right[pos..len]);
        }
        self.scratch = scratch;
        self.finish_block(data, n, start);
        status::OK
    }

    fn finish_block(&mut self, data: &mut ProcessData, n: u32, start: Instant) {
        let len = n as usize;
        // SAFETY: as in `process`: valid channel pointers for `num_samples` floats.
        let channels = unsafe { channels(data) };
        let mut silence = 0u64;
        for (c, &ptr) in channels.iter().enumerate() {
            // SAFETY: as above.
            let out = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
            if c >= 2 {
                // The instrument is stereo: clear any extra channel.
                out.fill(0.0);
            }
            let mut peak = 0.0f32;
            let mut sum = 0.0f32;
            for &s in out.iter() {
                peak = peak.max(s.abs());
                sum += s * s;
            }
            if peak == 0.0 && c < 64 {
                silence |= 1 << c;
            }
            if c < 2 {
                let meters = &self.block.meters;
                let rms = if len > 0 { (sum / len as f32).sqrt() } else { 0.0 };
                // Relaxed: meters are telemetry.
                meters.peak[c].store(peak, Ordering::Relaxed);
                meters.rms[c].store(rms, Ordering::Relaxed);
            }
        }
        data.silence_flags = silence;

        for (i, slot) in self.block.voices.iter().enumerate() {
            let v = self.synth.voice(i);
            let was_active = core::mem::replace(&mut self.published_active[i], v.active);
            if !v.active && !was_active {
                continue;
            }
            // Relaxed: voice states are telemetry.
            slot.active.store(
                if !v.active {
                    0
                } else if v.releasing {
                    2
                } else {
                    1
                },
                Ordering::Relaxed,
            );
            slot.note.store(u32::from(v.note), Ordering::Relaxed);
            slot.velocity.store(v.velocity, Ordering::Relaxed);
            slot.level.store(v.level, Ordering::Relaxed);
            slot.age.store(v.age_samples, Ordering::Relaxed);
        }
        if self.held_dirty {
            self.held_dirty = false;
            // SAFETY: the engine is the only writer of the held keys (DESIGN §4 table in
            // `shared::block`), and one engine serves one block.
            unsafe { self.block.arp.held.publish(&self.held) };
        }
        let stats = &self.block.stats;
        // Relaxed: telemetry.
        self.block.meters.active_voices.store(self.synth.active_voices() as u32, Ordering::Relaxed);
        self.clock += u64::from(n);
        // Release: pairs with the control module's Acquire load; events it schedules after
        // reading this clock are timed against a block that has been rendered.
        self.block.header.sample_clock.store(self.clock, Ordering::Release);
        Statistics::bump(&stats.blocks_processed);
        // Relaxed: telemetry counters.
        stats.samples_processed.fetch_add(u64::from(n), Ordering::Relaxed);
        let elapsed = start.elapsed().as_nanos() as u64;
        stats.last_process_ns.store(elapsed, Ordering::Relaxed);
        stats.worst_process_ns.fetch_max(elapsed, Ordering::Relaxed);
        let deadline_ns = (f64::from(n) / self.sample_rate * 1e9) as u64;
        if n > 0 && elapsed > deadline_ns {
            Statistics::bump(&stats.deadline_misses);
        }
    }
}

/// The output channel pointers.
///
/// # Safety
/// `data.outputs` is null or valid for `data.num_outputs` pointers.
unsafe fn channels(data: &ProcessData) -> &[*mut f32] {
    if data.outputs.is_null() {
        return &[];
    }
    // SAFETY: non-null, and valid for `num_outputs` pointers (caller's guarantee).
    unsafe { core::slice::from_raw_parts(data.outputs, data.num_outputs as usize) }
}

/// Left and right output slices; when the host gives one channel, right is `scratch`.
///
/// # Safety
/// `data` has at least one valid, non-aliased output channel of `len` floats (or
/// `len == 0`), and `scratch.len() >= len`.
unsafe fn output_pair<'a>(data: &ProcessData, len: usize, scratch: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
    // SAFETY: caller's guarantee.
    let channels = unsafe { channels(data) };
    match channels {
        [] => (&mut [], &mut []),
        [l] => {
            // SAFETY: a valid channel of `len` floats (caller's guarantee).
            let left = unsafe { core::slice::from_raw_parts_mut(*l, len) };
            (left, &mut scratch[..len])
        }
        [l, r, ..] => {
            // SAFETY: two valid, distinct channels of `len` floats (caller's guarantee).
            unsafe { (core::slice::from_raw_parts_mut(*l, len), core::slice::from_raw_parts_mut(*r, len)) }
        }
    }
}

/// Writes zeros to every output channel (as far as the pointers are usable).
fn silence_outputs(data: &mut ProcessData) {
    let len = data.num_samples as usize;
    // SAFETY: `rt_process`'s caller guarantees valid channel pointers for `num_samples`.
    for &ptr in unsafe { channels(data) } {
        if !ptr.is_null() {
            // SAFETY: as above.
            unsafe { core::slice::from_raw_parts_mut(ptr, len) }.fill(0.0);
        }
    }
    data.silence_flags = if data.num_outputs >= 64 { u64::MAX } else { (1u64 << data.num_outputs) - 1 };
}
