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
//! to which sample and the note-offs still due all live in [`SynthArea::cursor`], which
//! only this module writes. A control module loaded in place of this one (a hot reload)
//! adopts the block and continues on the next step not yet scheduled, bit for bit, with
//! its own [`sequence`].
//!
//! The first step of each phrase is the engine's: it is decided and played there, and
//! recorded with the held keys ([`HeldKeys::first_step`](synth_common::HeldKeys::first_step),
//! which only the engine writes). This module takes a phrase up at step 1.
//!
//! # Timing
//!
//! - The host gives a tempo and is playing: steps sit on the host's beat grid (multiples
//!   of the step length in quarter notes from the song start); the first step of a phrase
//!   is the first grid point at or after the first key. Each block brings the host's
//!   position anew, rounded and jittering by a few samples in some hosts (Ardour), or
//!   jumping at a tempo change or loop: a key within
//!   [`POSITION_TOLERANCE_BEATS`](synth_common::arp::POSITION_TOLERANCE_BEATS) after a
//!   grid point counts as on it, and each next step is the first grid point at least half
//!   a step after the last, so no step is doubled or skipped.
//! - The host gives a tempo but is stopped: steps follow the host tempo from the first key.
//! - No host tempo: steps follow the `Arp Tempo` parameter from the first key.
//!
//! The first step (step 0) of a phrase falls on the first key's own sample when the arp
//! runs free, on the first grid point at or after it when the host plays. The control
//! module learns of the key only after the engine has rendered the block holding it, too
//! late for that step, so the **engine** plays it: when the first key goes down it decides
//! the step's exact position ([`Timebase::first_pos`](synth_common::arp::Timebase::first_pos),
//! with the block's transport), and when that sample comes (in the same block or a later
//! one), after every event at that sample has been applied, it plays the first entry of
//! [`Sequence`] over the keys held then (all keys of a chord pressed on one sample count),
//! with the key's velocity, the note id `arp_note_id(phrase, 0)` and a note-off
//! `gate × step length` later, which it also plays itself. It records the position (and what it played) in
//! [`HeldKeys::first_step`](synth_common::HeldKeys::first_step); [`tick`] starts the phrase
//! at step 1, at the step after that position, and schedules every later step ahead of the
//! engine's clock. So every step, the first included, falls on a sample that depends
//! neither on the block size nor on when the control module ticks, offline and in real
//! time alike. (Step 1 is this module's, so it needs the key to have been seen in time:
//! offline, it must fall after the block holding the first key; in real time, after the
//! block the engine renders when the next tick comes, up to 2 ms later. That holds for a
//! step longer than the host's block offline, longer than about two blocks plus 2 ms in
//! real time.)
//!
//! A step's length and notes are decided when it is scheduled, so a change of rate,
//! pattern, octaves, gate or tempo (or a new build of [`sequence`]) applies from the next
//! step not yet scheduled; the engine's step 0 always follows the shared [`Sequence`] (a
//! build of [`sequence`] that changes the order, like the `reload-variant` one, applies
//! from step 1).
//!
//! Each note-off falls `gate × step length` after its note-on (the gate is below one
//! step). Releasing every key ends the phrase: the engine drops arp note-ons scheduled for
//! it after that sample (and a step 0 still waiting for its grid point), and the sounding
//! note ends at its own note-off. Switching the arp off does the same and pushes the
//! note-offs still due at once.

use core::sync::atomic::Ordering;

pub use synth_common::arp::{Pattern, RATE_BEATS, Settings};
use synth_common::arp::{Sequence, Timebase, note_off_time, sample_time};
use synth_common::{ArpCursor, HeldKey, HeldKeys, MAX_ARP_PENDING_OFFS, SynthArea, arp_note_id};
use trio::control::TickContext;
use trio::engine::Event;

/// One cycle of notes that `pattern` plays over `keys` (in press order) across `octaves`
/// octaves. Step `n` of a phrase plays `sequence(..)[n % len]`.
///
/// The order itself is [`synth_common::arp::Sequence`], which the engine also uses for
/// the first step of each phrase; this build may change it for the steps it schedules
/// (the `reload-variant` build does). Edit it, rebuild the control module, and the next
/// step not yet scheduled plays the new pattern while audio keeps running.
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
    let notes = Sequence::new(pattern, keys, octaves).as_slice().to_vec();
    if pattern == Pattern::Up { up(notes) } else { notes }
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
    let timebase = Timebase::new(ctx.sample_rate(), &settings, &transport);
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

/// Starts a new phrase or ends the current one, following the held keys. The engine
/// takes each phrase's step 0 ([`synth_common::FirstStep`]): a new phrase continues at
/// step 1, one step after the position the engine chose for step 0.
fn follow_keys(cursor: &mut Cursor, keys: &HeldKeys) {
    if keys.count > 0 && (!cursor.running || cursor.phrase != keys.phrase) {
        cursor.running = true;
        cursor.phrase = keys.phrase;
        if keys.first_step.taken_for(keys.phrase) {
            cursor.step = 1;
            cursor.last_step_pos = keys.first_step.pos;
        } else {
            // An engine that left step 0 to us: it plays at the first key's position.
            cursor.step = 0;
            cursor.last_step_pos = 0.0;
        }
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
        let off_time = note_off_time(pos, time, settings.gate, timebase.step_len(settings.rate_beats));
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

    /// The steps this module schedules follow the order the engine uses for step 0
    /// (synth_common's tests check that order note by note).
    #[cfg(not(feature = "reload-variant"))]
    #[test]
    fn the_sequence_is_the_engines() {
        for pattern in [Pattern::Up, Pattern::Down, Pattern::UpDown, Pattern::AsPlayed] {
            for octaves in 1..=4 {
                let held = keys(&[64, 60, 67, 100]);
                assert_eq!(sequence(pattern, &held, octaves), Sequence::new(pattern, &held, octaves).as_slice());
            }
        }
    }

    #[cfg(feature = "reload-variant")]
    #[test]
    fn the_variant_plays_up_reversed() {
        assert_eq!(notes(Pattern::Up, &[64, 60, 67], 1), [67, 64, 60]);
        assert_eq!(notes(Pattern::Down, &[64, 60, 67], 1), [67, 64, 60]);
    }

    #[test]
    fn octaves_stop_at_the_top_of_the_midi_range() {
        assert_eq!(notes(Pattern::Down, &[110, 120], 3), [122, 120, 110]);
        assert!(sequence(Pattern::Up, &[], 4).is_empty());
    }

    #[test]
    fn a_phrase_whose_first_step_the_engine_took_continues_at_step_1() {
        use synth_common::{FirstStep, FirstStepState};
        let mut held = HeldKeys { phrase: 4, count: 1, phrase_start: 1000, ..HeldKeys::default() };
        held.first_step = FirstStep { phrase: 4, state: FirstStepState::Pending, pos: 1500.5, ..FirstStep::default() };
        let mut cursor = Cursor { phrase: 3, running: true, step: 9, last_step_pos: 99.0, ..Cursor::default() };
        follow_keys(&mut cursor, &held);
        assert_eq!((cursor.running, cursor.phrase, cursor.step, cursor.last_step_pos), (true, 4, 1, 1500.5));
        // Another step later the phrase goes on where it is.
        cursor.step = 2;
        follow_keys(&mut cursor, &held);
        assert_eq!(cursor.step, 2);
        // An engine that did not take step 0 leaves it to this module.
        held.phrase = 5;
        let mut cursor = Cursor::default();
        follow_keys(&mut cursor, &held);
        assert_eq!((cursor.phrase, cursor.step), (5, 0));
        // All keys up: the phrase ends.
        held.count = 0;
        follow_keys(&mut cursor, &held);
        assert!(!cursor.running);
    }
}
