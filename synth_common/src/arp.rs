//! The arpeggiator's musical rules, shared by the engine and the control module: the
//! order of the notes ([`Sequence`]), the arp parameters ([`Settings`]) and where steps
//! fall in time ([`Timebase`]).
//!
//! Both sides play steps of the same phrase: the engine plays step 0 itself, at its exact
//! sample (it is the first to know of the key), and the control module schedules step 1
//! on. So both decide a step's time, notes, velocity, note-off and note id with these
//! functions. Everything here is pure and allocation-free, so the engine can use it on
//! the audio thread.

use trio::block::Transport;
use trio::control::ControlParams;
use trio::engine::Params;

use crate::{HeldKey, MAX_HELD_KEYS, id};

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

/// Most octaves a sequence spans (the `Arp Octaves` range is 1..4).
pub const MAX_OCTAVES: u32 = 4;

/// Most entries of a [`Sequence`]: up-down over [`MAX_HELD_KEYS`] keys and
/// [`MAX_OCTAVES`] octaves.
pub const MAX_SEQUENCE: usize = 2 * MAX_HELD_KEYS * MAX_OCTAVES as usize;

/// One cycle of the notes a pattern plays over the held keys: step `n` of a phrase plays
/// entry `n % len` ([`Sequence::step`]). Fixed-size, built without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Sequence {
    notes: [HeldKey; MAX_SEQUENCE],
    len: usize,
}

impl Sequence {
    /// The cycle `pattern` plays over `keys` (in press order) across `octaves` octaves:
    /// each key, then each key an octave up, and so on (notes above 127 are left out).
    /// Keys beyond [`MAX_HELD_KEYS`] are ignored; `octaves` is clamped to
    /// `1..=`[`MAX_OCTAVES`].
    ///
    /// # Examples
    /// ```
    /// use synth_common::HeldKey;
    /// use synth_common::arp::{Pattern, Sequence};
    /// let keys = [HeldKey { note: 64, velocity: 1.0 }, HeldKey { note: 60, velocity: 0.5 }];
    /// let notes = |p| Sequence::new(p, &keys, 2).as_slice().iter().map(|k| k.note).collect::<Vec<_>>();
    /// assert_eq!(notes(Pattern::Up), [60, 64, 72, 76]);
    /// assert_eq!(notes(Pattern::Down), [76, 72, 64, 60]);
    /// assert_eq!(notes(Pattern::UpDown), [60, 64, 72, 76, 72, 64]);
    /// assert_eq!(notes(Pattern::AsPlayed), [64, 60, 76, 72]);
    /// assert_eq!(Sequence::new(Pattern::Down, &keys, 2).step(5).map(|k| k.note), Some(72));
    /// ```
    pub fn new(pattern: Pattern, keys: &[HeldKey], octaves: u32) -> Self {
        let keys = &keys[..keys.len().min(MAX_HELD_KEYS)];
        let mut base = [HeldKey::default(); MAX_HELD_KEYS];
        let base = &mut base[..keys.len()];
        base.copy_from_slice(keys);
        if pattern != Pattern::AsPlayed {
            sort_by_pitch(base);
        }
        let mut s = Self { notes: [HeldKey::default(); MAX_SEQUENCE], len: 0 };
        for octave in 0..octaves.clamp(1, MAX_OCTAVES) {
            for k in base.iter() {
                let note = u32::from(k.note) + 12 * octave;
                if note < 128 {
                    s.notes[s.len] = HeldKey { note: note as u8, velocity: k.velocity };
                    s.len += 1;
                }
            }
        }
        match pattern {
            Pattern::Up | Pattern::AsPlayed => {}
            Pattern::Down => s.notes[..s.len].reverse(),
            Pattern::UpDown => {
                let n = s.len;
                if n > 2 {
                    // The way down: entries n-2 .. 1.
                    for i in (1..n - 1).rev() {
                        s.notes[s.len] = s.notes[i];
                        s.len += 1;
                    }
                }
            }
        }
        s
    }

    /// The entries, in playing order.
    pub fn as_slice(&self) -> &[HeldKey] {
        &self.notes[..self.len]
    }

    /// Entries in one cycle.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cycle is empty (no key held).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What step `step` of a phrase plays: entry `step % len`; `None` when empty.
    pub fn step(&self, step: u64) -> Option<HeldKey> {
        (self.len > 0).then(|| self.notes[(step % self.len as u64) as usize])
    }
}

/// Sorts by note, keeping the press order of equal notes (an insertion sort: stable and
/// allocation-free, for at most [`MAX_HELD_KEYS`] keys).
fn sort_by_pitch(keys: &mut [HeldKey]) {
    for i in 1..keys.len() {
        let mut j = i;
        while j > 0 && keys[j - 1].note > keys[j].note {
            keys.swap(j - 1, j);
            j -= 1;
        }
    }
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

impl Default for Settings {
    /// The parameters' defaults: off, 1/16, up, one octave, half a step, 120 BPM.
    fn default() -> Self {
        Self { on: false, rate_beats: 0.25, pattern: Pattern::Up, octaves: 1, gate: 0.5, tempo_bpm: 120.0 }
    }
}

impl Settings {
    /// The settings from a function giving each parameter's plain value by id.
    pub fn from_plain(plain: impl Fn(u32) -> f64) -> Self {
        let index = |id: u32| {
            let v = plain(id);
            if v.is_finite() && v > 0.0 { v.round() as usize } else { 0 }
        };
        let rate = index(id::ARP_RATE).min(RATE_BEATS.len() - 1);
        Self {
            on: plain(id::ARP_ON) >= 0.5,
            rate_beats: RATE_BEATS[rate],
            pattern: Pattern::from_index(index(id::ARP_PATTERN) as u32),
            octaves: plain(id::ARP_OCTAVES).round().clamp(1.0, MAX_OCTAVES as f64) as u32,
            gate: plain(id::ARP_GATE).clamp(0.01, 0.99),
            tempo_bpm: plain(id::ARP_TEMPO).clamp(1.0, 999.0),
        }
    }

    /// Reads the arp parameters, as the control module sees them.
    pub fn read(p: &ControlParams<'_>) -> Self {
        Self::from_plain(|id| p.plain(id))
    }

    /// Reads the arp parameters, as the engine sees them at its current position.
    pub fn from_engine(p: &Params) -> Self {
        Self::from_plain(|id| p.plain(id))
    }
}

/// How far a host's musical position may be off the exact one, in quarter notes. Hosts
/// round it (Ardour 7 to 1/1920 of a quarter note, 12.5 samples at 120 BPM and 48 kHz)
/// and it may be early or late from block to block, so a key this close after a grid
/// point counts as on it: it plays at once instead of a whole step later.
pub const POSITION_TOLERANCE_BEATS: f64 = 1.0 / 480.0;

/// Where steps fall: the tempo in use and, when the host is playing, its beat grid.
///
/// Positions are exact, fractional sample times on the engine's clock; a step plays at
/// [`sample_time`] of its position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timebase {
    /// Samples per second.
    pub sample_rate: f64,
    /// The tempo steps follow, BPM.
    pub tempo_bpm: f64,
    /// The host transport, when it gives a tempo and is playing.
    pub grid: Option<Transport>,
}

impl Timebase {
    /// The timebase for a host `transport` (as the engine publishes it for each block) and
    /// the arp `settings`; a `sample_rate` that is not positive counts as 48 kHz.
    ///
    /// - The host gives a tempo and is playing: steps sit on its beat grid.
    /// - The host gives a tempo but is stopped: steps follow that tempo.
    /// - No host tempo: steps follow [`Settings::tempo_bpm`].
    pub fn new(sample_rate: f64, settings: &Settings, transport: &Transport) -> Self {
        let host_tempo = transport.tempo_bpm.is_finite() && transport.tempo_bpm > 0.0;
        Self {
            sample_rate: if sample_rate > 0.0 { sample_rate } else { 48_000.0 },
            tempo_bpm: if host_tempo { transport.tempo_bpm } else { settings.tempo_bpm },
            grid: (host_tempo && transport.playing && transport.ppq_position.is_finite()).then_some(*transport),
        }
    }

    /// Length of a step of `rate_beats` quarter notes, in samples.
    pub fn step_len(&self, rate_beats: f64) -> f64 {
        rate_beats * 60.0 / self.tempo_bpm * self.sample_rate
    }

    /// Quarter notes per sample.
    fn beats_per_sample(&self) -> f64 {
        self.tempo_bpm / 60.0 / self.sample_rate
    }

    /// Position of the first step of a phrase whose first key went down at `start`: the
    /// key's own sample when the arp runs free, the first grid point at or after it when
    /// the host plays (a grid point up to [`POSITION_TOLERANCE_BEATS`] before the key
    /// counts: the step plays on the key's sample).
    pub fn first_pos(&self, start: u64, rate_beats: f64) -> f64 {
        let Some(t) = self.grid else {
            return start as f64;
        };
        let bps = self.beats_per_sample();
        let ppq = t.ppq_position + (start as f64 - t.sample_time as f64) * bps;
        let k = ((ppq - POSITION_TOLERANCE_BEATS) / rate_beats).ceil();
        (t.sample_time as f64 + (k * rate_beats - t.ppq_position) / bps).max(start as f64)
    }

    /// Position of the step after one at `last`: `last` plus a step when the arp runs
    /// free; when the host plays, the first grid point at least half a step after `last`.
    ///
    /// Each block brings its own transport, so the grid is seen anew at every tick: host
    /// positions rounded or jittering by a few samples, a tempo change and a loop that
    /// jumps back all move it. Half a step of slack keeps such a move from placing a
    /// step a few samples after the last one (a double trigger) or skipping one.
    pub fn next_pos(&self, last: f64, rate_beats: f64) -> f64 {
        let Some(t) = self.grid else {
            return last + self.step_len(rate_beats);
        };
        let bps = self.beats_per_sample();
        let ppq = t.ppq_position + (last - t.sample_time as f64) * bps;
        let k = ((ppq + rate_beats / 2.0) / rate_beats).ceil();
        t.sample_time as f64 + (k * rate_beats - t.ppq_position) / bps
    }
}

/// The sample time a fractional step position plays at.
pub fn sample_time(pos: f64) -> u64 {
    if pos.is_finite() && pos > 0.0 { pos.round() as u64 } else { 0 }
}

/// The note-off time of a step at position `pos` whose note-on was queued at `on_time`:
/// `gate × step_len` after the position, and at least one sample after the note-on.
pub fn note_off_time(pos: f64, on_time: u64, gate: f64, step_len: f64) -> u64 {
    sample_time(pos + gate * step_len).max(on_time + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(notes: &[u8]) -> Vec<HeldKey> {
        notes.iter().map(|&note| HeldKey { note, velocity: 0.8 }).collect()
    }

    fn notes(p: Pattern, held: &[u8], octaves: u32) -> Vec<u8> {
        Sequence::new(p, &keys(held), octaves).as_slice().iter().map(|k| k.note).collect()
    }

    #[test]
    fn patterns_play_in_their_order() {
        let held = [64, 60, 67];
        assert_eq!(notes(Pattern::Up, &held, 1), [60, 64, 67]);
        assert_eq!(notes(Pattern::Down, &held, 1), [67, 64, 60]);
        assert_eq!(notes(Pattern::UpDown, &held, 1), [60, 64, 67, 64]);
        assert_eq!(notes(Pattern::AsPlayed, &held, 1), [64, 60, 67]);
        assert_eq!(notes(Pattern::Up, &held, 2), [60, 64, 67, 72, 76, 79]);
        assert_eq!(notes(Pattern::UpDown, &held, 2), [60, 64, 67, 72, 76, 79, 76, 72, 67, 64]);
        assert_eq!(notes(Pattern::UpDown, &[60], 1), [60]);
        assert_eq!(notes(Pattern::UpDown, &[60, 62], 1), [60, 62]);
        assert_eq!(notes(Pattern::Down, &[60], 4), [96, 84, 72, 60]);
        assert_eq!(notes(Pattern::AsPlayed, &[64, 60], 4), [64, 60, 76, 72, 88, 84, 100, 96]);
    }

    #[test]
    fn octaves_stop_at_the_top_of_the_midi_range_and_at_four() {
        assert_eq!(notes(Pattern::Down, &[110, 120], 3), [122, 120, 110]);
        assert_eq!(notes(Pattern::Up, &[60], 9), [60, 72, 84, 96]);
        assert_eq!(notes(Pattern::Up, &[60], 0), [60]);
        assert!(Sequence::new(Pattern::Up, &[], 4).is_empty());
        assert_eq!(Sequence::new(Pattern::Up, &[], 4).step(0), None);
    }

    #[test]
    fn the_largest_sequence_fits() {
        let held: Vec<u8> = (0..MAX_HELD_KEYS as u8).collect();
        let s = Sequence::new(Pattern::UpDown, &keys(&held), MAX_OCTAVES);
        assert_eq!(s.len(), MAX_SEQUENCE - 2);
        // Keys beyond the record's capacity are ignored.
        let more: Vec<u8> = (0..40).collect();
        assert_eq!(Sequence::new(Pattern::Up, &keys(&more), 1).len(), MAX_HELD_KEYS);
    }

    #[test]
    fn equal_notes_keep_their_press_order() {
        let held = [
            HeldKey { note: 62, velocity: 0.1 },
            HeldKey { note: 60, velocity: 0.2 },
            HeldKey { note: 62, velocity: 0.3 },
        ];
        let s = Sequence::new(Pattern::Up, &held, 1);
        assert_eq!(s.as_slice().iter().map(|k| k.velocity).collect::<Vec<_>>(), [0.2, 0.1, 0.3]);
        assert_eq!(s.step(4), Some(held[0]));
    }

    #[test]
    fn settings_follow_the_plain_values() {
        let s = Settings::from_plain(|id| match id {
            id::ARP_ON => 1.0,
            id::ARP_RATE => 3.0,
            id::ARP_PATTERN => 2.0,
            id::ARP_OCTAVES => 7.0,
            id::ARP_GATE => 0.25,
            id::ARP_TEMPO => 90.0,
            _ => f64::NAN,
        });
        assert_eq!(
            s,
            Settings { on: true, rate_beats: 0.125, pattern: Pattern::UpDown, octaves: 4, gate: 0.25, tempo_bpm: 90.0 }
        );
    }

    #[test]
    fn free_running_steps_follow_the_tempo() {
        let settings = Settings { on: true, ..Settings::default() };
        let tb = Timebase::new(48_000.0, &settings, &Transport::default());
        assert_eq!(tb.step_len(0.25), 6000.0);
        assert_eq!(tb.first_pos(1234, 0.25), 1234.0);
        assert_eq!(tb.next_pos(1234.0, 0.25), 7234.0);
        // A host tempo without a playing transport sets the tempo, not a grid.
        let stopped = Transport { tempo_bpm: 150.0, ppq_position: 3.3, ..Transport::default() };
        let tb = Timebase::new(48_000.0, &settings, &stopped);
        assert_eq!((tb.first_pos(1234, 0.25), tb.step_len(0.25)), (1234.0, 4800.0));
    }

    #[test]
    fn playing_steps_sit_on_the_host_grid() {
        let settings = Settings { on: true, rate_beats: 0.5, ..Settings::default() };
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
        // A key a hair after a grid point (within the host's rounding) plays at once ...
        assert_eq!(tb.first_pos(10_001, 0.5), 10_001.0);
        // ... one clearly after it waits for the next grid point.
        assert_eq!(tb.first_pos(10_100, 0.5), 24_400.0);
        assert_eq!(tb.next_pos(10_000.0, 0.5), 24_400.0);
        assert_eq!(tb.next_pos(24_400.0, 0.5), 38_800.0);
        // A step off the grid: the next grid point at least half a step later.
        assert_eq!(tb.next_pos(14_000.0, 0.5), 24_400.0);
        assert_eq!(tb.next_pos(20_000.0, 0.5), 38_800.0);
        // The same grid seen from a later block gives the same first step.
        let later = Transport { sample_time: 30_000, ppq_position: 2.0 + 20_000.0 / 28_800.0, ..t };
        let tb2 = Timebase::new(48_000.0, &settings, &later);
        assert_eq!(sample_time(tb2.first_pos(10_100, 0.5)), 24_400);
    }

    /// Replays positions as Ardour 7 passes them (rounded down to 1/1920 of a quarter
    /// note, then up to another 1/1920 early or late from block to block), with a tempo
    /// change and a loop: every step lands within the rounding of its grid point, a step
    /// apart, never doubled or skipped.
    #[test]
    fn steps_stay_on_the_grid_with_rounded_jittering_positions_tempo_changes_and_loops() {
        let settings = Settings { on: true, rate_beats: 0.25, ..Settings::default() };
        const SR: f64 = 48_000.0;
        const BLOCK: u64 = 256;
        // The exact song: 120 BPM until beat 16, then 90 BPM; from sample LOOP on, the
        // host loops beats 16..24 (at 90 BPM: 8 beats of 32_000 samples).
        let tempo_change = 16.0 * 24_000.0;
        let loop_start = tempo_change + 8.0 * 32_000.0;
        let exact = |s: f64| -> (f64, f64) {
            if s < tempo_change {
                (120.0, s / 24_000.0)
            } else {
                let beats = (s - tempo_change) / 32_000.0;
                (90.0, 16.0 + if s < loop_start { beats } else { beats % 8.0 })
            }
        };
        let mut seed = 0x2545_f491u32;
        let mut jitter = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (f64::from(seed % 3) - 1.0) / 1920.0
        };
        let mut steps = vec![0.0f64];
        let mut last = 0.0;
        let end = loop_start + 3.0 * 8.0 * 32_000.0;
        let mut block = 0u64;
        while (block * BLOCK) as f64 <= end {
            let start = block * BLOCK;
            let (tempo, ppq) = exact(start as f64);
            let host = ((ppq * 1920.0).floor() / 1920.0 + jitter()).max(0.0);
            let t = Transport {
                sample_time: start,
                tempo_bpm: tempo,
                ppq_position: host,
                playing: true,
                ..Default::default()
            };
            let tb = Timebase::new(SR, &settings, &t);
            // The control module schedules every step due before the block's end.
            loop {
                let next = tb.next_pos(last, settings.rate_beats);
                if next >= (start + BLOCK) as f64 {
                    break;
                }
                steps.push(next);
                last = next;
            }
            block += 1;
        }
        // 64 steps at 120 BPM, 32 at 90 BPM, then 32 per pass of the loop.
        assert_eq!(steps.len(), 64 + 32 + 3 * 32 + 1, "steps doubled or skipped");
        for (n, pair) in steps.windows(2).enumerate() {
            let (_, ppq) = exact(pair[1]);
            let grid = (ppq / 0.25).round() * 0.25;
            let samples_per_beat = if pair[1] < tempo_change { 24_000.0 } else { 32_000.0 };
            let off = (ppq - grid) * samples_per_beat;
            assert!(off.abs() <= 2.0 * samples_per_beat / 1920.0, "step {} is {off:.1} samples off the grid", n + 1);
            let step = (pair[1] - pair[0]) / samples_per_beat;
            assert!((step - 0.25).abs() < 0.01, "steps {n} and {} are {step} beats apart", n + 1);
        }
    }

    #[test]
    fn note_offs_fall_a_gate_after_the_step() {
        assert_eq!(note_off_time(1000.0, 1000, 0.5, 6000.0), 4000);
        assert_eq!(note_off_time(1000.4, 1000, 0.0001, 10.0), 1001);
        assert_eq!(sample_time(-3.0), 0);
        assert_eq!(sample_time(f64::NAN), 0);
        assert_eq!(sample_time(2.5), 3);
    }
}
