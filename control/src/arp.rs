//! The arpeggiator: control-rate logic that turns the keys the engine holds into timed
//! notes, scheduled into the `to_engine` ring ahead of the engine's sample clock.
//!
//! # How it runs
//!
//! The framework ticks the control module every 2 ms while the arp is on (and before
//! every block when the host renders offline). Each [`tick`] reads the arp parameters, the
//! held keys the engine recorded ([`SynthArea::held`]), the host transport and the
//! engine's sample clock, and queues every arp event whose time is before the tick's
//! horizon ([`TickContext::horizon`]) and that was not queued yet. Events carry absolute
//! sample times, so their timing is exact although this code runs on an ordinary thread;
//! in real time the horizon is the engine's clock plus a lookahead (the host's largest
//! block plus 20 ms) that covers the time between ticks, offline it is the end of the
//! block the engine is about to render, so offline renders play the same steps at the
//! same samples.
//!
//! # Where the state lives
//!
//! Nothing of the arpeggiator's runtime state is kept in the control instance: the step
//! index, the last step's exact position, the phrase being played, what has been pushed up
//! to which sample and the note-offs still due all live in [`SynthArea::cursor`]. A
//! control module loaded in place of this one (a hot reload) adopts the block and
//! continues on the next step not yet scheduled, bit for bit, with its own [`sequence`].
//!
//! # Timing
//!
//! - The host gives a tempo and is playing: steps sit on the host's beat grid (multiples
//!   of the step length in quarter notes from the song start); the first step of a phrase
//!   is the first grid point at or after the first key.
//! - The host gives a tempo but is stopped: steps follow the host tempo from the first key.
//! - No host tempo: steps follow the `Arp Tempo` parameter from the first key.
//!
//! A step's length and notes are decided when it is scheduled, so a change of rate,
//! pattern, octaves, gate or tempo (or a new build of [`sequence`]) applies from the next
//! step not yet scheduled. The first step of a phrase falls on the first key's own sample;
//! the control module learns of the key only after the engine has rendered that block, so
//! the engine plays that first note at the start of its next block (up to one block plus
//! one tick late). Every later step is exact.
//!
//! Each note-off falls `gate × step length` after its note-on (the gate is below one
//! step). Releasing every key ends the phrase: the engine drops arp note-ons scheduled for
//! it after that sample, and the sounding note ends at its own note-off. Switching the
//! arp off does the same and pushes the note-offs still due at once.

use core::sync::atomic::Ordering;

use synth_common::{ArpCursor, HeldKey, HeldKeys, MAX_ARP_PENDING_OFFS, SynthArea, arp_note_id, id};
use trio::block::Transport;
use trio::control::{ControlParams, TickContext};
use trio::engine::Event;

/// The order in which the held keys are played.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Lowest to highest, octave by octave.
    Up,
    /// Highest to lowest.
    Down,
    /// Up, then down, without repeating the top and bottom notes.
    UpDown,
    /// In the order the keys went down.
    AsPlayed,
}

impl Pattern {
    /// The pattern for a plain value of the `Arp Pattern` parameter (a list index).
    pub fn from_index(index: u32) -> Self {
        match index {
            1 => Self::Down,
            2 => Self::UpDown,
            3 => Self::AsPlayed,
            _ => Self::Up,
        }
    }
}

/// Step length in quarter notes for each index of the `Arp Rate` list (1/4 .. 1/32).
pub const RATE_BEATS: [f64; 4] = [1.0, 0.5, 0.25, 0.125];

/// One cycle of notes that `pattern` plays over `keys` (in press order) across `octaves`
/// octaves. Step `n` of a phrase plays `sequence(..)[n % len]`.
///
/// This is the arpeggiator's musical logic: edit it, rebuild the control module, and the
/// next step not yet scheduled plays the new pattern while audio keeps running.
///
/// # Examples
/// ```
/// use control::arp::{Pattern, sequence};
/// use synth_common::HeldKey;
/// let keys = [HeldKey { note: 64, velocity: 1.0 }, HeldKey { note: 60, velocity: 0.5 }];
/// let notes = |p| sequence(p, &keys, 2).iter().map(|k| k.note).collect::<Vec<_>>();
/// assert_eq!(notes(Pattern::Down), [76, 72, 64, 60]);
/// assert_eq!(notes(Pattern::UpDown), [60, 64, 72, 76, 72, 64]);
/// assert_eq!(notes(Pattern::AsPlayed), [64, 60, 76, 72]);
/// ```
pub fn sequence(pattern: Pattern, keys: &[HeldKey], octaves: u32) -> Vec<HeldKey> {
    let mut by_pitch = keys.to_vec();
    by_pitch.sort_by_key(|k| k.note);
    let spread = |base: &[HeldKey]| -> Vec<HeldKey> {
        (0..octaves.max(1))
            .flat_map(|octave| {
                base.iter().filter_map(move |k| {
                    let note = u32::from(k.note) + 12 * octave;
                    (note < 128).then_some(HeldKey { note: note as u8, velocity: k.velocity })
                })
            })
            .collect()
    };
    match pattern {
        Pattern::Up => up(spread(&by_pitch)),
        Pattern::Down => {
            let mut notes = spread(&by_pitch);
            notes.reverse();
            notes
        }
        Pattern::UpDown => {
            let mut notes = spread(&by_pitch);
            if notes.len() > 2 {
                let back: Vec<HeldKey> = notes[1..notes.len() - 1].iter().rev().copied().collect();
                notes.extend(back);
            }
            notes
        }
        Pattern::AsPlayed => spread(keys),
    }
}

/// The "up" order: lowest first.
#[cfg(not(feature = "reload-variant"))]
fn up(notes: Vec<HeldKey>) -> Vec<HeldKey> {
    notes
}

/// The `reload-variant` build (test-only) plays "up" reversed, so a test hears a reload
/// that changed the logic.
#[cfg(feature = "reload-variant")]
fn up(mut notes: Vec<HeldKey>) -> Vec<HeldKey> {
    notes.reverse();
    notes
}

/// The arp parameters, in plain units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// `Arpeggiator` is on.
    pub on: bool,
    /// Step length in quarter notes.
    pub rate_beats: f64,
    /// Pattern.
    pub pattern: Pattern,
    /// Octaves spanned, 1..4.
    pub octaves: u32,
    /// Note length as a fraction of a step.
    pub gate: f64,
    /// Tempo when the host gives none, BPM.
    pub tempo_bpm: f64,
}

impl Settings {
    /// Reads the arp parameters.
    pub fn read(p: &ControlParams<'_>) -> Self {
        let rate = p.index(id::ARP_RATE).min(RATE_BEATS.len() - 1);
        Self {
            on: p.is_on(id::ARP_ON),
            rate_beats: RATE_BEATS[rate],
            pattern: Pattern::from_index(p.index(id::ARP_PATTERN) as u32),
            octaves: p.plain(id::ARP_OCTAVES).round().clamp(1.0, 4.0) as u32,
            gate: p.plain(id::ARP_GATE).clamp(0.01, 0.99),
            tempo_bpm: p.plain(id::ARP_TEMPO).clamp(1.0, 999.0),
        }
    }
}

/// Where steps fall: the tempo in use and, when the host is playing, its beat grid.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Timebase {
    sample_rate: f64,
    tempo_bpm: f64,
    /// The host transport, when it gives a tempo and is playing.
    grid: Option<Transport>,
}

/// Tolerance, in steps, for a position that should be on a grid point.
const GRID_EPSILON: f64 = 1e-6;

impl Timebase {
    fn new(sample_rate: f64, settings: &Settings, transport: &Transport) -> Self {
        let host_tempo = transport.tempo_bpm.is_finite() && transport.tempo_bpm > 0.0;
        Self {
            sample_rate,
            tempo_bpm: if host_tempo { transport.tempo_bpm } else { settings.tempo_bpm },
            grid: (host_tempo && transport.playing && transport.ppq_position.is_finite()).then_some(*transport),
        }
    }

    /// Length of a step of `rate_beats` quarter notes, in samples.
    fn step_len(&self, rate_beats: f64) -> f64 {
        rate_beats * 60.0 / self.tempo_bpm * self.sample_rate
    }

    /// Quarter notes per sample.
    fn beats_per_sample(&self) -> f64 {
        self.tempo_bpm / 60.0 / self.sample_rate
    }

    /// Position of the first step of a phrase that started at `start`.
    fn first_pos(&self, start: u64, rate_beats: f64) -> f64 {
        let Some(t) = self.grid else {
            return start as f64;
        };
        let bps = self.beats_per_sample();
        let ppq = t.ppq_position + (start as f64 - t.sample_time as f64) * bps;
        let k = (ppq / rate_beats - GRID_EPSILON).ceil();
        (t.sample_time as f64 + (k * rate_beats - t.ppq_position) / bps).max(start as f64)
    }

    /// Position of the step after one at `last`.
    fn next_pos(&self, last: f64, rate_beats: f64) -> f64 {
        let Some(t) = self.grid else {
            return last + self.step_len(rate_beats);
        };
        let bps = self.beats_per_sample();
        let ppq = t.ppq_position + (last - t.sample_time as f64) * bps;
        let mut k = (ppq / rate_beats + GRID_EPSILON).floor() + 1.0;
        let mut pos = t.sample_time as f64 + (k * rate_beats - t.ppq_position) / bps;
        if pos < last + 0.5 {
            k += 1.0;
            pos = t.sample_time as f64 + (k * rate_beats - t.ppq_position) / bps;
        }
        pos
    }
}

/// The sample time a fractional step position plays at.
fn sample_time(pos: f64) -> u64 {
    if pos.is_finite() && pos > 0.0 { pos.round() as u64 } else { 0 }
}

/// A note-off still due, as the cursor holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingOff {
    /// Absolute sample time.
    pub time: u64,
    /// MIDI note.
    pub note: u8,
    /// The note's id.
    pub note_id: i32,
}

/// A plain copy of [`ArpCursor`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cursor {
    /// Phrase being played.
    pub phrase: u32,
    /// A phrase is being played.
    pub running: bool,
    /// Steps of the phrase scheduled so far.
    pub step: u64,
    /// Exact position of the last scheduled step.
    pub last_step_pos: f64,
    /// Time of the last event pushed.
    pub last_pushed: u64,
    /// Everything before this sample time has been scheduled.
    pub scheduled_until: u64,
    /// Note-offs still due (the first `pending_count`).
    pub pending: [PendingOff; MAX_ARP_PENDING_OFFS],
    /// Entries of `pending` in use.
    pub pending_count: usize,
}

impl Cursor {
    /// Reads the cursor. Call after the Acquire load of `seq` (see [`tick`]).
    pub fn load(c: &ArpCursor) -> Self {
        // Relaxed loads: ordered after the Acquire load of `seq` by the caller, which pairs
        // with the Release bump that ended the last tick; only the control worker writes.
        let mut out = Self {
            phrase: c.phrase.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed) != 0,
            step: c.step.load(Ordering::Relaxed),
            last_step_pos: c.last_step_pos.load(Ordering::Relaxed),
            last_pushed: c.last_pushed.load(Ordering::Relaxed),
            scheduled_until: c.scheduled_until.load(Ordering::Relaxed),
            pending: [PendingOff::default(); MAX_ARP_PENDING_OFFS],
            pending_count: (c.pending_count.load(Ordering::Relaxed) as usize).min(MAX_ARP_PENDING_OFFS),
        };
        for (p, slot) in out.pending.iter_mut().zip(&c.pending).take(out.pending_count) {
            *p = PendingOff {
                time: slot.time.load(Ordering::Relaxed),
                note: (slot.note.load(Ordering::Relaxed) & 0x7f) as u8,
                note_id: slot.note_id.load(Ordering::Relaxed),
            };
        }
        out
    }

    /// Writes the cursor back and publishes it by bumping `seq` (Release).
    fn store(&self, c: &ArpCursor) {
        // Relaxed stores: published by the Release bump of `seq` below.
        c.phrase.store(self.phrase, Ordering::Relaxed);
        c.running.store(u32::from(self.running), Ordering::Relaxed);
        c.step.store(self.step, Ordering::Relaxed);
        c.last_step_pos.store(self.last_step_pos, Ordering::Relaxed);
        c.last_pushed.store(self.last_pushed, Ordering::Relaxed);
        c.scheduled_until.store(self.scheduled_until, Ordering::Relaxed);
        c.pending_count.store(self.pending_count as u32, Ordering::Relaxed);
        for (p, slot) in self.pending.iter().zip(&c.pending).take(self.pending_count) {
            slot.time.store(p.time, Ordering::Relaxed);
            slot.note.store(u32::from(p.note), Ordering::Relaxed);
            slot.note_id.store(p.note_id, Ordering::Relaxed);
        }
        // Release: pairs with the Acquire load at the start of the next tick, possibly by
        // another control instance on another thread after a reload.
        c.seq.fetch_add(1, Ordering::Release);
    }

    /// Index and time of the earliest pending note-off.
    fn earliest_off(&self) -> Option<(usize, u64)> {
        self.pending[..self.pending_count].iter().enumerate().map(|(i, p)| (i, p.time)).min_by_key(|&(_, t)| t)
    }

    fn remove_off(&mut self, i: usize) {
        self.pending.copy_within(i + 1..self.pending_count, i);
        self.pending_count -= 1;
    }
}

/// What one [`tick`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The arp was off with nothing left to do: the tick returned at once.
    pub idle: bool,
    /// Events pushed into the ring.
    pub pushed: u32,
    /// The ring was full: the rest waits for the next tick.
    pub ring_full: bool,
}

/// Whether the arp has anything to do: it is on, or a phrase or note-offs are left.
pub fn is_active(area: &SynthArea, settings: &Settings) -> bool {
    let arp = &area.cursor;
    // Acquire: pairs with the Release bump of `seq` at the end of the last tick.
    let _ = arp.seq.load(Ordering::Acquire);
    // Relaxed: ordered by the Acquire load above.
    settings.on || arp.running.load(Ordering::Relaxed) != 0 || arp.pending_count.load(Ordering::Relaxed) != 0
}

/// One control-rate step of the arpeggiator: queues every arp event before the tick's
/// horizon not queued yet. Cheap when the arp is off (a few atomic loads). Never blocks:
/// when the engine's queue is full it leaves the rest for the next tick.
pub fn tick(ctx: &mut TickContext<'_, SynthArea>) -> TickReport {
    let settings = Settings::read(&ctx.params());
    let area = ctx.area();
    if !is_active(area, &settings) {
        return TickReport { idle: true, ..TickReport::default() };
    }
    let Some(keys) = area.held.read() else {
        // The engine is publishing right now: try again next tick.
        return TickReport::default();
    };
    let Some(transport) = ctx.transport() else {
        return TickReport::default();
    };
    let sample_rate = ctx.sample_rate();
    let timebase = Timebase::new(if sample_rate > 0.0 { sample_rate } else { 48_000.0 }, &settings, &transport);
    let mut cursor = Cursor::load(&area.cursor);
    let horizon = if settings.on {
        follow_keys(&mut cursor, &keys);
        ctx.horizon()
    } else {
        // Switched off: the phrase ends; every note-off still due goes out now.
        cursor.running = false;
        u64::MAX
    };
    let report = schedule(ctx, &mut cursor, &keys, &settings, &timebase, horizon);
    if !report.ring_full {
        cursor.scheduled_until = cursor.scheduled_until.max(horizon.min(ctx.horizon()));
    }
    cursor.store(&area.cursor);
    report
}

/// Starts a new phrase or ends the current one, following the held keys.
fn follow_keys(cursor: &mut Cursor, keys: &HeldKeys) {
    if keys.count > 0 && (!cursor.running || cursor.phrase != keys.phrase) {
        cursor.running = true;
        cursor.phrase = keys.phrase;
        cursor.step = 0;
        cursor.last_step_pos = 0.0;
    } else if keys.count == 0 {
        cursor.running = false;
    }
}

/// Queues note-offs and steps in time order until `horizon` (or the queue is full).
fn schedule(
    ctx: &mut TickContext<'_, SynthArea>,
    cursor: &mut Cursor,
    keys: &HeldKeys,
    settings: &Settings,
    timebase: &Timebase,
    horizon: u64,
) -> TickReport {
    let mut report = TickReport::default();
    let mut notes: Option<Vec<HeldKey>> = None;
    loop {
        let off = cursor.earliest_off();
        let step_pos = (cursor.running && cursor.pending_count < MAX_ARP_PENDING_OFFS).then(|| {
            if cursor.step == 0 {
                timebase.first_pos(keys.phrase_start, settings.rate_beats)
            } else {
                timebase.next_pos(cursor.last_step_pos, settings.rate_beats)
            }
        });
        let step_time = step_pos.map(sample_time);
        // Note-offs first on a tie, so a repeated note is released before it restarts.
        let take_off = match (off, step_time) {
            (Some((_, t)), Some(s)) => t <= s,
            (Some(_), None) => true,
            _ => false,
        };
        if take_off {
            let Some((i, time)) = off else { break };
            if time >= horizon {
                break;
            }
            let p = cursor.pending[i];
            let time = time.max(cursor.last_pushed);
            let event = Event::NoteOff { note: p.note, velocity: 0.0, channel: 0, note_id: p.note_id };
            if ctx.schedule(time, event).is_err() {
                report.ring_full = true;
                break;
            }
            cursor.last_pushed = time;
            cursor.remove_off(i);
            report.pushed += 1;
            continue;
        }
        let (Some(pos), Some(time)) = (step_pos, step_time) else { break };
        if time >= horizon {
            break;
        }
        let notes = notes.get_or_insert_with(|| sequence(settings.pattern, keys.held(), settings.octaves));
        let Some(key) = (!notes.is_empty()).then(|| notes[(cursor.step % notes.len() as u64) as usize]) else {
            break;
        };
        let time = time.max(cursor.last_pushed);
        let note_id = arp_note_id(cursor.phrase, cursor.step);
        let event = Event::NoteOn { note: key.note, velocity: key.velocity, channel: 0, note_id };
        if ctx.schedule(time, event).is_err() {
            report.ring_full = true;
            break;
        }
        cursor.last_pushed = time;
        let gate = settings.gate * timebase.step_len(settings.rate_beats);
        let off_time = sample_time(pos + gate).max(time + 1);
        cursor.pending[cursor.pending_count] = PendingOff { time: off_time, note: key.note, note_id };
        cursor.pending_count += 1;
        cursor.step += 1;
        cursor.last_step_pos = pos;
        report.pushed += 1;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(notes: &[u8]) -> Vec<HeldKey> {
        notes.iter().map(|&note| HeldKey { note, velocity: 0.8 }).collect()
    }

    fn notes(p: Pattern, held: &[u8], octaves: u32) -> Vec<u8> {
        sequence(p, &keys(held), octaves).iter().map(|k| k.note).collect()
    }

    #[cfg(not(feature = "reload-variant"))]
    #[test]
    fn patterns_play_in_their_order() {
        let held = [64, 60, 67];
        assert_eq!(notes(Pattern::Up, &held, 1), [60, 64, 67]);
        assert_eq!(notes(Pattern::Down, &held, 1), [67, 64, 60]);
        assert_eq!(notes(Pattern::UpDown, &held, 1), [60, 64, 67, 64]);
        assert_eq!(notes(Pattern::AsPlayed, &held, 1), [64, 60, 67]);
        assert_eq!(notes(Pattern::Up, &held, 2), [60, 64, 67, 72, 76, 79]);
        assert_eq!(notes(Pattern::UpDown, &[60], 1), [60]);
        assert_eq!(notes(Pattern::UpDown, &[60, 62], 1), [60, 62]);
    }

    #[cfg(feature = "reload-variant")]
    #[test]
    fn the_variant_plays_up_reversed() {
        assert_eq!(notes(Pattern::Up, &[64, 60, 67], 1), [67, 64, 60]);
    }

    #[test]
    fn octaves_stop_at_the_top_of_the_midi_range() {
        assert_eq!(notes(Pattern::Down, &[110, 120], 3), [122, 120, 110]);
        assert!(sequence(Pattern::Up, &[], 4).is_empty());
    }

    #[test]
    fn free_running_steps_follow_the_tempo() {
        let settings =
            Settings { on: true, rate_beats: 0.25, pattern: Pattern::Up, octaves: 1, gate: 0.5, tempo_bpm: 120.0 };
        let tb = Timebase::new(48_000.0, &settings, &Transport::default());
        assert_eq!(tb.step_len(0.25), 6000.0);
        assert_eq!(tb.first_pos(1234, 0.25), 1234.0);
        assert_eq!(tb.next_pos(1234.0, 0.25), 7234.0);
    }

    #[test]
    fn playing_steps_sit_on_the_host_grid() {
        let settings =
            Settings { on: true, rate_beats: 0.5, pattern: Pattern::Up, octaves: 1, gate: 0.5, tempo_bpm: 120.0 };
        // 100 BPM at 48 kHz: 28_800 samples per beat; beat 2.0 at sample 10_000.
        let t = Transport {
            sample_time: 10_000,
            tempo_bpm: 100.0,
            ppq_position: 2.0,
            playing: true,
            ..Transport::default()
        };
        let tb = Timebase::new(48_000.0, &settings, &t);
        assert_eq!(tb.first_pos(10_000, 0.5), 10_000.0);
        assert_eq!(tb.first_pos(10_001, 0.5), 24_400.0);
        assert_eq!(tb.next_pos(10_000.0, 0.5), 24_400.0);
        assert_eq!(tb.next_pos(24_400.0, 0.5), 38_800.0);
        // A position between grid points moves to the next one.
        assert_eq!(tb.next_pos(20_000.0, 0.5), 24_400.0);
    }
}
