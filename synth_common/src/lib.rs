//! TrioSynth's shared contract: what its engine and its control module both know.
//!
//! - [`id`]: the parameter ids (the VST3 `ParamID`s; stable across versions, saved
//!   projects refer to them);
//! - [`SynthArea`]: the plugin area of the shared block, where the engine records the
//!   keys held for the arpeggiator and the first step of each phrase, which it plays
//!   itself ([`FirstStep`]), and the control module keeps the arpeggiator's position from
//!   the second step on, so a reloaded control module continues the sequence bit for bit;
//! - [`arp_note_id`]: how the arpeggiator marks its notes;
//! - [`arp`]: the arpeggiator's musical rules (note order, step times), which the engine
//!   (for the first step of each phrase) and the control module (for the rest) share.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

use trio::seqlock::SeqLock;

pub use trio::atomic_float::AtomicF64;

/// Parameter ids: the contract between the engine and the control module. The id is the
/// VST3 `ParamID` the host saves automation under; never change one after release.
pub mod id {
    /// Output gain, dB.
    pub const GAIN: u32 = 0;
    /// Oscillator waveform index: 0 saw, 1 square, 2 sine.
    pub const WAVEFORM: u32 = 1;
    /// Amplitude (and filter) envelope attack, seconds.
    pub const ATTACK: u32 = 2;
    /// Envelope decay, seconds.
    pub const DECAY: u32 = 3;
    /// Envelope sustain level, 0..1.
    pub const SUSTAIN: u32 = 4;
    /// Envelope release, seconds.
    pub const RELEASE: u32 = 5;
    /// Low-pass filter cutoff, Hz.
    pub const CUTOFF: u32 = 6;
    /// Filter resonance, 0..1 (1 is the edge of self-oscillation).
    pub const RESONANCE: u32 = 7;
    /// Envelope → cutoff amount, octaves (may be negative).
    pub const FILTER_ENV: u32 = 8;
    /// How much note velocity scales the level, 0..1.
    pub const VELOCITY_SENS: u32 = 9;
    /// Bypass: 0 off, 1 on (the output fades to silence).
    pub const BYPASS: u32 = 10;
    /// Arpeggiator: 0 off (host notes play), 1 on (host notes are held keys the control
    /// module arpeggiates).
    pub const ARP_ON: u32 = 11;
    /// Arpeggiator step length, a list index: 0 = 1/4, 1 = 1/8, 2 = 1/16, 3 = 1/32 note.
    pub const ARP_RATE: u32 = 12;
    /// Arpeggiator pattern, a list index: 0 up, 1 down, 2 up-down, 3 as played.
    pub const ARP_PATTERN: u32 = 13;
    /// Octaves the arpeggiator spans, 1..4.
    pub const ARP_OCTAVES: u32 = 14;
    /// Arpeggiator gate: note length as a fraction of a step, below 1.
    pub const ARP_GATE: u32 = 15;
    /// Arpeggiator tempo in BPM when the host gives none.
    pub const ARP_TEMPO: u32 = 16;
    /// Number of parameters.
    pub const COUNT: u32 = 17;
}

/// Most keys the arpeggiator's held-key record keeps; further keys are ignored.
pub const MAX_HELD_KEYS: usize = 32;
/// Most arpeggiator note-offs the control module keeps waiting to be scheduled.
pub const MAX_ARP_PENDING_OFFS: usize = 16;

/// One key the engine recorded as held for the arpeggiator.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeldKey {
    /// MIDI note number.
    pub note: u8,
    /// Note-on velocity `0..=1`.
    pub velocity: f32,
}

/// A consistent snapshot of the keys held for the arpeggiator (see [`HeldKeysCell`]).
///
/// A *phrase* is the time from the moment the first key goes down (no key was held
/// before) to the moment the last key comes up. Times are absolute engine sample times
/// ([`BlockHeader::sample_clock`](trio::block::BlockHeader::sample_clock)), exact to the sample of the host's note event.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeldKeys {
    /// Phrases started since the block was created (0: none yet). Bumped when a key goes
    /// down while none was held.
    pub phrase: u32,
    /// Keys held, in the order they went down (`keys[..count]`).
    pub count: u32,
    /// Sample time at which the current (or last) phrase started.
    pub phrase_start: u64,
    /// Sample time at which the last phrase ended (the last key came up, or the arp was
    /// switched off); meaningful when `count == 0`.
    pub released_at: u64,
    /// Step 0 of the current (or last) phrase, which the engine plays itself.
    pub first_step: FirstStep,
    /// The held keys in press order; entries from `count` on are unused.
    pub keys: [HeldKey; MAX_HELD_KEYS],
}

impl HeldKeys {
    /// The held keys, in press order.
    pub fn held(&self) -> &[HeldKey] {
        &self.keys[..(self.count as usize).min(MAX_HELD_KEYS)]
    }
}

/// What became of a phrase's step 0 ([`FirstStep::state`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirstStepState {
    /// No phrase yet, or a phrase whose step 0 the engine did not take: the control module
    /// plays it.
    #[default]
    None,
    /// Decided, waiting for its time (a grid point after the first key).
    Pending,
    /// Played: its note sounds from `sample_time(pos)`, and the engine plays its note-off
    /// at `off_time`.
    Played,
    /// Not played: every key came up (or the arp went off) before its time.
    Dropped,
}

impl FirstStepState {
    fn code(self) -> u64 {
        match self {
            Self::None => 0,
            Self::Pending => 1,
            Self::Played => 2,
            Self::Dropped => 3,
        }
    }

    fn from_code(code: u64) -> Self {
        match code {
            1 => Self::Pending,
            2 => Self::Played,
            3 => Self::Dropped,
            _ => Self::None,
        }
    }
}

/// Step 0 of a phrase, which the engine plays at its exact sample: the control module
/// learns of a phrase only after the engine has rendered the block with its first key,
/// too late for that step. The engine decides the step's position when the first key goes
/// down (the key's own sample when the arp runs free, the first grid point at or after it
/// when the host plays, see [`arp::Timebase::first_pos`]) and plays it when its time comes
/// (note, velocity, note id and note-off exactly as the control module plays any other
/// step); the control module continues the phrase at step 1, one step after `pos`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FirstStep {
    /// The phrase ([`HeldKeys::phrase`]) this step belongs to; the engine took the current
    /// phrase's step 0 when it equals [`HeldKeys::phrase`] and `state` is not `None`.
    pub phrase: u32,
    /// What became of it.
    pub state: FirstStepState,
    /// Exact (fractional) sample position of the step; it plays at
    /// [`arp::sample_time`]`(pos)`.
    pub pos: f64,
    /// The note played (`Played` only).
    pub note: u8,
    /// Sample time of its note-off, played by the engine (`Played` only).
    pub off_time: u64,
}

impl FirstStep {
    /// Whether the engine took step 0 of `phrase` (played it, will play it or dropped it
    /// with the phrase): the control module starts that phrase at step 1.
    pub fn taken_for(&self, phrase: u32) -> bool {
        self.phrase == phrase && self.state != FirstStepState::None
    }
}

/// Words of the held-key seqlock: phrase and count, phrase start, release time, the first
/// step (phrase, state and note; position; note-off time), then one word per key.
const HELD_WORDS: usize = 6 + MAX_HELD_KEYS;

trio::area! {
    /// The keys the engine holds for the arpeggiator, published through a seqlock so the
    /// control module reads a consistent set. All-zero memory is "no phrase yet, no key".
    pub struct HeldKeysCell {
        lock: SeqLock<HELD_WORDS>,
    }
}

impl HeldKeysCell {
    /// Publishes a snapshot. One thread publishes: the engine, from the audio thread.
    pub fn publish(&self, k: &HeldKeys) {
        let mut words = [0u64; HELD_WORDS];
        words[0] = u64::from(k.phrase) | (u64::from(k.count) << 32);
        words[1] = k.phrase_start;
        words[2] = k.released_at;
        let f = &k.first_step;
        words[3] = u64::from(f.phrase) | (f.state.code() << 32) | (u64::from(f.note) << 40);
        words[4] = f.pos.to_bits();
        words[5] = f.off_time;
        for (w, key) in words[6..].iter_mut().zip(&k.keys) {
            *w = u64::from(key.note) | (u64::from(key.velocity.to_bits()) << 32);
        }
        self.lock.write(words);
    }

    /// The last published snapshot, or `None` if a write kept overlapping the read (try
    /// again later). A count above [`MAX_HELD_KEYS`] is clamped.
    pub fn read(&self) -> Option<HeldKeys> {
        let w = self.lock.read()?;
        let mut k = HeldKeys {
            phrase: w[0] as u32,
            count: ((w[0] >> 32) as u32).min(MAX_HELD_KEYS as u32),
            phrase_start: w[1],
            released_at: w[2],
            first_step: FirstStep {
                phrase: w[3] as u32,
                state: FirstStepState::from_code((w[3] >> 32) & 0xff),
                pos: f64::from_bits(w[4]),
                note: ((w[3] >> 40) & 0x7f) as u8,
                off_time: w[5],
            },
            keys: [HeldKey::default(); MAX_HELD_KEYS],
        };
        for (key, &word) in k.keys.iter_mut().zip(&w[6..]) {
            *key = HeldKey { note: (word & 0x7f) as u8, velocity: f32::from_bits((word >> 32) as u32) };
        }
        Some(k)
    }
}

/// Bit that marks a note id as the arpeggiator's ([`arp_note_id`]).
pub const ARP_NOTE_ID_FLAG: i32 = 0x4000_0000;

/// The note id the arpeggiator gives the notes of step `step` of phrase `phrase`: bit 30
/// set, the phrase's low 8 bits in bits 22..30, the step's low 22 bits below. Always
/// positive. The engine plays an arpeggiator note-on only while the arp is on, a key is
/// held and the id's phrase is the current one, so notes scheduled ahead for a phrase that
/// has ended never sound; note-offs with the id release exactly that note's voice.
///
/// # Examples
/// ```
/// use synth_common::{arp_note_id, arp_note_phrase};
/// let id = arp_note_id(3, 17);
/// assert!(id > 0);
/// assert_eq!(arp_note_phrase(id), Some(3));
/// assert_eq!(arp_note_phrase(-1), None);
/// assert_eq!(arp_note_phrase(42), None);
/// ```
pub const fn arp_note_id(phrase: u32, step: u64) -> i32 {
    ARP_NOTE_ID_FLAG | (((phrase & 0xff) as i32) << 22) | ((step & 0x3f_ffff) as i32)
}

/// The phrase bits (low 8 bits of the phrase number) of an arpeggiator note id, or
/// `None` if `note_id` is not one ([`arp_note_id`]).
pub const fn arp_note_phrase(note_id: i32) -> Option<u8> {
    if note_id >= 0 && note_id & ARP_NOTE_ID_FLAG != 0 { Some(((note_id >> 22) & 0xff) as u8) } else { None }
}

trio::area! {
    /// An arpeggiator note-off that is due but not yet in the engine's queue.
    pub struct ArpPendingOff {
        /// Absolute sample time of the note-off.
        pub time: AtomicU64,
        /// MIDI note number.
        pub note: AtomicU32,
        /// The note's id ([`arp_note_id`]).
        pub note_id: AtomicI32,
    }
}

trio::area! {
    /// The arpeggiator's runtime state, owned by the control module. It lives in the
    /// plugin area, not in the control value, so a control module loaded in place of
    /// another (a hot reload) continues the sequence exactly where the old one stopped.
    ///
    /// All-zero memory is "idle, nothing scheduled". Only the control instance serving
    /// the block writes it, from the control worker; at most one instance ticks a block at
    /// a time, and a handover to a new instance is ordered by the bridge. Each tick reads
    /// `seq` first (Acquire) and bumps it last (Release), so even a handover across
    /// threads sees the cursor as the last completed tick left it.
    pub struct ArpCursor {
        /// Completed ticks that changed the cursor.
        pub seq: AtomicU64,
        /// The phrase ([`HeldKeys::phrase`]) being played.
        pub phrase: AtomicU32,
        /// Nonzero while a phrase is being played.
        pub running: AtomicU32,
        /// Steps of the current phrase already scheduled; the next step has this index.
        /// Step 0 is the engine's ([`FirstStep`]), so a phrase starts here at 1.
        pub step: AtomicU64,
        /// Exact (fractional) sample position of the last scheduled step.
        pub last_step_pos: AtomicF64,
        /// Time of the last event queued for the engine; later events are never earlier.
        pub last_pushed: AtomicU64,
        /// Every arp event before this sample time has been scheduled.
        pub scheduled_until: AtomicU64,
        /// Entries of `pending` in use.
        pub pending_count: AtomicU32,
        /// Reserved, zero.
        pub reserved: AtomicU32,
        /// Note-offs of sounding arp notes not yet queued (the first `pending_count`).
        pub pending: [ArpPendingOff; MAX_ARP_PENDING_OFFS],
    }
}

trio::area! {
    /// TrioSynth's plugin area: the keys the engine records for the arpeggiator and the
    /// first step of each phrase, which the engine plays (engine-written), and the
    /// sequence cursor from the second step on (control-owned).
    pub struct SynthArea {
        /// Keys held and each phrase's first step, written by the engine while the arp is
        /// on.
        pub held: HeldKeysCell,
        /// The sequence cursor, written by the control module.
        pub cursor: ArpCursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;
    use trio::area::AreaField;

    #[test]
    fn a_zeroed_area_has_no_held_keys_and_an_idle_arp() {
        let block = trio::block::HeapBlock::new(&trio::abi::AreaLayout::of::<SynthArea>());
        assert!(block.block().check_header(&trio::abi::AreaLayout::of::<SynthArea>()).is_ok());
        let area: SynthArea = unsafe_free_zeroed();
        assert_eq!(area.held.read().unwrap(), HeldKeys::default());
        assert_eq!(area.cursor.running.load(Ordering::Relaxed), 0);
        assert_ne!(SynthArea::HASH, 0);
    }

    /// A zeroed area built field by field (the area's all-zero state, without unsafe).
    fn unsafe_free_zeroed() -> SynthArea {
        SynthArea {
            held: HeldKeysCell { lock: SeqLock::new() },
            cursor: ArpCursor {
                seq: AtomicU64::new(0),
                phrase: AtomicU32::new(0),
                running: AtomicU32::new(0),
                step: AtomicU64::new(0),
                last_step_pos: AtomicF64::new(0.0),
                last_pushed: AtomicU64::new(0),
                scheduled_until: AtomicU64::new(0),
                pending_count: AtomicU32::new(0),
                reserved: AtomicU32::new(0),
                pending: core::array::from_fn(|_| ArpPendingOff {
                    time: AtomicU64::new(0),
                    note: AtomicU32::new(0),
                    note_id: AtomicI32::new(0),
                }),
            },
        }
    }

    #[test]
    fn held_keys_round_trip() {
        let area = unsafe_free_zeroed();
        let first_step =
            FirstStep { phrase: 7, state: FirstStepState::Played, pos: 12_345.25, note: 127, off_time: 15_000 };
        let mut k =
            HeldKeys { phrase: 7, count: 3, phrase_start: 12_345, released_at: 99, first_step, ..HeldKeys::default() };
        k.keys[0] = HeldKey { note: 64, velocity: 0.5 };
        k.keys[1] = HeldKey { note: 60, velocity: 1.0 };
        k.keys[2] = HeldKey { note: 127, velocity: 0.25 };
        area.held.publish(&k);
        let back = area.held.read().unwrap();
        assert_eq!(back, k);
        assert_eq!(back.held().iter().map(|k| k.note).collect::<Vec<_>>(), [64, 60, 127]);
        assert!(back.first_step.taken_for(7) && !back.first_step.taken_for(8));
        for state in [FirstStepState::None, FirstStepState::Pending, FirstStepState::Dropped] {
            area.held.publish(&HeldKeys { first_step: FirstStep { state, ..first_step }, ..k });
            assert_eq!(area.held.read().unwrap().first_step.state, state);
        }
    }

    #[test]
    fn arp_note_ids_carry_the_phrase() {
        for phrase in [0u32, 1, 255, 256, 1000] {
            for step in [0u64, 1, 0x3f_ffff, 0x40_0000, u64::MAX] {
                let id = arp_note_id(phrase, step);
                assert!(id > 0);
                assert_eq!(arp_note_phrase(id), Some(phrase as u8));
            }
        }
        assert_eq!(arp_note_phrase(0), None);
        assert_eq!(arp_note_phrase(i32::MIN), None);
    }
}
