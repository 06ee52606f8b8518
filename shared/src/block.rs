//! The shared block: one `#[repr(C)]` struct in OS shared memory per plugin instance.
//!
//! Every field is an atomic (or a ring/seqlock made of atomics), so every library may
//! hold a `&SharedBlock` at once, and the all-zero memory a new segment starts with is a
//! valid block: empty rings, zero statistics, no active voices. The bridge then writes
//! the header ([`SharedBlock::init_header`]), the control module writes parameter
//! mappings and defaults, and the engine writes voice states, meters and statistics.
//!
//! Who writes what (single writer per field unless stated):
//!
//! | field | writer | readers |
//! |---|---|---|
//! | `header` | bridge, at creation and on `setupProcessing` | all |
//! | `header.sample_clock` | engine, after each block | control, bridge |
//! | `transport` | bridge, on the audio thread, each block | control |
//! | `params[i].value` | any host thread through the bridge, the control module, the engine (applied automation) | all |
//! | `params[i].mapping`, `flags` | control module (on the control worker) | engine, bridge |
//! | `voices`, `meters` | engine | control, bridge, tests |
//! | `stats` | engine and bridge (counters are atomic adds) | all |
//! | `to_engine` ring | producer: control worker | consumer: engine |
//! | `from_engine` ring | producer: engine | consumer: control worker |
//! | `arp.held` | engine (seqlock, once per block when it changed) | control worker |
//! | `arp.cursor` | control worker (the control instance ticking the block) | control worker, tests |
//! | `header.control_lookahead_samples` | bridge or a test, before ticking | control worker |

use atomic_float::{AtomicF32, AtomicF64};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::abi::{ABI_VERSION, Event};
use crate::params::{MappingKind, ParamMapping};
use crate::ring::SpscRing;
use crate::seqlock::SeqLock;

/// `"TRIOBLK1"`: marks an initialised block.
pub const BLOCK_MAGIC: u64 = u64::from_le_bytes(*b"TRIOBLK1");
/// Parameter slots in a block. Parameter ids index this array.
pub const MAX_PARAMS: usize = 128;
/// Voice-state slots in a block.
pub const MAX_VOICES: usize = 128;
/// Capacity of the control → engine event ring.
pub const TO_ENGINE_CAPACITY: usize = 1024;
/// Capacity of the engine → control event ring.
pub const FROM_ENGINE_CAPACITY: usize = 256;
/// Most keys the arpeggiator's held-key record keeps; further keys are ignored.
pub const MAX_HELD_KEYS: usize = 32;
/// Most arpeggiator note-offs the control module keeps waiting to be scheduled.
pub const MAX_ARP_PENDING_OFFS: usize = 16;

/// Identity and processing setup of the instance.
#[repr(C)]
pub struct BlockHeader {
    /// [`BLOCK_MAGIC`] once the bridge has initialised the header (stored last, Release).
    pub magic: AtomicU64,
    /// [`ABI_VERSION`] of the bridge that created the block.
    pub abi_version: AtomicU32,
    /// Number of parameters the control module defined (`<= MAX_PARAMS`).
    pub param_count: AtomicU32,
    /// [`crate::layout::LAYOUT_HASH`] of the bridge that created the block.
    pub layout_hash: AtomicU64,
    /// `size_of::<SharedBlock>()` as the creating bridge saw it.
    pub size: AtomicU64,
    /// Process-unique id of the instance.
    pub instance_id: AtomicU64,
    /// Sample rate from the host's `setupProcessing`.
    pub sample_rate: AtomicF64,
    /// Largest block the host will send.
    pub max_block_size: AtomicU32,
    /// Bit 0: the engine is active (between activate and deactivate).
    pub state_flags: AtomicU32,
    /// Samples the engine has rendered since activation: the sample time of the start of
    /// the next block. Control schedules timed events against it. Written by the engine
    /// with Release after each block.
    pub sample_clock: AtomicU64,
    /// How far ahead of `sample_clock` the control module schedules timed events, in
    /// samples; 0 (the initial value) means the default, `max_block_size` plus 20 ms.
    /// Written by the bridge or a test; read by the control module on each tick.
    pub control_lookahead_samples: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
}

/// Host transport as of the last block, published by the bridge through a seqlock so the
/// control worker reads a consistent set.
#[repr(C)]
pub struct TransportCell {
    lock: SeqLock<6>,
}

/// A consistent transport snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Transport {
    /// Engine sample clock at the start of the block this describes.
    pub sample_time: u64,
    /// Tempo in beats per minute; 0 when the host gives none.
    pub tempo_bpm: f64,
    /// Musical position of the block start, in quarter notes.
    pub ppq_position: f64,
    /// Position of the current bar start, in quarter notes.
    pub bar_start_ppq: f64,
    /// Time signature numerator and denominator (0 when unknown).
    pub time_sig: (u32, u32),
    /// Whether the host transport is playing.
    pub playing: bool,
}

impl TransportCell {
    /// Publishes a snapshot.
    ///
    /// # Safety
    /// Only one thread publishes at a time (the bridge, from the audio thread).
    pub unsafe fn publish(&self, t: &Transport) {
        let sig = (u64::from(t.time_sig.0) << 32) | u64::from(t.time_sig.1);
        // SAFETY: the caller guarantees a single writer.
        unsafe {
            self.lock.write([
                t.sample_time,
                t.tempo_bpm.to_bits(),
                t.ppq_position.to_bits(),
                t.bar_start_ppq.to_bits(),
                sig,
                u64::from(t.playing),
            ]);
        }
    }

    /// The last published snapshot, or `None` if a write kept overlapping the read.
    pub fn read(&self) -> Option<Transport> {
        let w = self.lock.read()?;
        Some(Transport {
            sample_time: w[0],
            tempo_bpm: f64::from_bits(w[1]),
            ppq_position: f64::from_bits(w[2]),
            bar_start_ppq: f64::from_bits(w[3]),
            time_sig: ((w[4] >> 32) as u32, w[4] as u32),
            playing: w[5] != 0,
        })
    }
}

/// One parameter: its current normalized value and its mapping.
#[repr(C)]
pub struct ParamSlot {
    /// Normalized value `0..=1`.
    pub value: AtomicF64,
    /// Bit flags from the control module ([`crate::abi::PARAM_FLAG_AUTOMATABLE`], ...).
    pub flags: AtomicU32,
    /// Nonzero once the control module has defined this slot.
    pub defined: AtomicU32,
    /// `(kind, min, max, skew)`, written by the control module.
    mapping: SeqLock<4>,
}

impl ParamSlot {
    /// Publishes a mapping. Call only from the control worker (the single writer).
    ///
    /// # Safety
    /// At most one thread writes mappings at a time.
    pub unsafe fn set_mapping(&self, m: &ParamMapping) {
        // SAFETY: the caller guarantees a single writer.
        unsafe {
            self.mapping.write([m.kind as u64, m.min.to_bits(), m.max.to_bits(), m.skew.to_bits()]);
        }
    }

    /// The current mapping, or `None` if it is being rewritten right now or holds an
    /// unknown kind (a reader then keeps the mapping it had).
    pub fn mapping(&self) -> Option<ParamMapping> {
        let w = self.mapping.read()?;
        Some(ParamMapping {
            kind: MappingKind::from_u32(u32::try_from(w[0]).ok()?)?,
            min: f64::from_bits(w[1]),
            max: f64::from_bits(w[2]),
            skew: f64::from_bits(w[3]),
        })
    }
}

/// What the engine reports about one voice after each block.
#[repr(C)]
pub struct VoiceState {
    /// 0 idle, 1 sounding, 2 releasing.
    pub active: AtomicU32,
    /// MIDI note number.
    pub note: AtomicU32,
    /// Note-on velocity `0..=1`.
    pub velocity: AtomicF32,
    /// Current envelope level `0..=1`.
    pub level: AtomicF32,
    /// Samples since the note started.
    pub age: AtomicU64,
}

/// Output meters, written by the engine after each block.
#[repr(C)]
pub struct Meters {
    /// Peak absolute sample of the last block, per channel.
    pub peak: [AtomicF32; 2],
    /// RMS of the last block, per channel.
    pub rms: [AtomicF32; 2],
    /// Voices sounding at the end of the last block.
    pub active_voices: AtomicU32,
    _pad: u32,
}

/// Counters; all monotonic except the `*_ns` figures.
#[repr(C)]
pub struct Statistics {
    /// Blocks the engine processed.
    pub blocks_processed: AtomicU64,
    /// Samples the engine processed.
    pub samples_processed: AtomicU64,
    /// Longest `rt_process` call, nanoseconds.
    pub worst_process_ns: AtomicU64,
    /// Last `rt_process` call, nanoseconds.
    pub last_process_ns: AtomicU64,
    /// Blocks whose processing took longer than their duration in real time.
    pub deadline_misses: AtomicU64,
    /// Events that did not fit a ring or a block's event list and were dropped.
    pub events_dropped: AtomicU64,
    /// Allocations caught on the audio path (engine and bridge).
    pub alloc_violations: AtomicU64,
    /// Panics caught in the engine.
    pub engine_panics: AtomicU64,
    /// Nonzero while the engine is faulted (after a panic, until reset): it outputs silence.
    pub engine_faulted: AtomicU64,
    /// Successful control-module reloads.
    pub reloads: AtomicU64,
    /// Rejected control-module reloads.
    pub reload_failures: AtomicU64,
    /// Errors returned by control-module calls (including caught panics).
    pub control_errors: AtomicU64,
}

impl Statistics {
    /// Adds one to a counter. `Relaxed`: counters are telemetry; no other memory is
    /// published through them.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

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
/// ([`BlockHeader::sample_clock`]), exact to the sample of the host's note event.
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
    /// The held keys in press order; entries from `count` on are unused.
    pub keys: [HeldKey; MAX_HELD_KEYS],
}

impl HeldKeys {
    /// The held keys, in press order.
    pub fn held(&self) -> &[HeldKey] {
        &self.keys[..(self.count as usize).min(MAX_HELD_KEYS)]
    }
}

/// Words of the held-key seqlock: phrase and count, phrase start, release time, then
/// one word per key.
const HELD_WORDS: usize = 3 + MAX_HELD_KEYS;

/// The keys the engine holds for the arpeggiator, published through a seqlock so the
/// control module reads a consistent set. All-zero memory is "no phrase yet, no key".
#[repr(C)]
pub struct HeldKeysCell {
    lock: SeqLock<HELD_WORDS>,
}

impl HeldKeysCell {
    /// Publishes a snapshot.
    ///
    /// # Safety
    /// Only one thread publishes at a time (the engine, from the audio thread).
    pub unsafe fn publish(&self, k: &HeldKeys) {
        let mut words = [0u64; HELD_WORDS];
        words[0] = u64::from(k.phrase) | (u64::from(k.count) << 32);
        words[1] = k.phrase_start;
        words[2] = k.released_at;
        for (w, key) in words[3..].iter_mut().zip(&k.keys) {
            *w = u64::from(key.note) | (u64::from(key.velocity.to_bits()) << 32);
        }
        // SAFETY: the caller guarantees a single writer.
        unsafe { self.lock.write(words) };
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
            keys: [HeldKey::default(); MAX_HELD_KEYS],
        };
        for (key, &word) in k.keys.iter_mut().zip(&w[3..]) {
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
/// use shared::block::{arp_note_id, arp_note_phrase};
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

/// An arpeggiator note-off that is due but not yet in the `to_engine` ring.
#[repr(C)]
pub struct ArpPendingOff {
    /// Absolute sample time of the note-off.
    pub time: AtomicU64,
    /// MIDI note number.
    pub note: AtomicU32,
    /// The note's id ([`arp_note_id`]).
    pub note_id: AtomicI32,
}

/// The arpeggiator's runtime state, owned by the control module. It lives in the block,
/// not in the control instance, so a control module loaded in place of another (a hot
/// reload, `CREATE_ADOPT`) continues the sequence exactly where the old one stopped.
///
/// All-zero memory is "idle, nothing scheduled". Only the control instance serving the
/// block writes it, from the control worker; at most one instance ticks a block at a
/// time, and a handover to a new instance is ordered by the bridge. Each tick reads
/// `seq` first (Acquire) and bumps it last (Release), so even a handover across threads
/// sees the cursor as the last completed tick left it.
#[repr(C)]
pub struct ArpCursor {
    /// Completed ticks that changed the cursor.
    pub seq: AtomicU64,
    /// The phrase ([`HeldKeys::phrase`]) being played.
    pub phrase: AtomicU32,
    /// Nonzero while a phrase is being played.
    pub running: AtomicU32,
    /// Steps of the current phrase already scheduled; the next step has this index.
    pub step: AtomicU64,
    /// Exact (fractional) sample position of the last scheduled step.
    pub last_step_pos: AtomicF64,
    /// Time of the last event pushed into `to_engine`; later events are never earlier, so
    /// the ring stays in time order.
    pub last_pushed: AtomicU64,
    /// Every arp event before this sample time has been scheduled.
    pub scheduled_until: AtomicU64,
    /// Entries of `pending` in use.
    pub pending_count: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
    /// Note-offs of sounding arp notes not yet pushed (the first `pending_count`).
    pub pending: [ArpPendingOff; MAX_ARP_PENDING_OFFS],
}

/// The arpeggiator's area of the block: the keys the engine records (engine-written) and
/// the sequence cursor (control-owned). See [`HeldKeysCell`] and [`ArpCursor`].
#[repr(C)]
pub struct ArpArea {
    /// Keys held, written by the engine while the arp is on.
    pub held: HeldKeysCell,
    /// The sequence cursor, written by the control module.
    pub cursor: ArpCursor,
}

/// The whole block. See the module docs for who writes which field.
#[repr(C, align(64))]
pub struct SharedBlock {
    /// Identity and setup.
    pub header: BlockHeader,
    /// Host transport.
    pub transport: TransportCell,
    /// Statistics.
    pub stats: Statistics,
    /// Meters.
    pub meters: Meters,
    /// Parameters, indexed by parameter id.
    pub params: [ParamSlot; MAX_PARAMS],
    /// Voice states, indexed by engine voice slot.
    pub voices: [VoiceState; MAX_VOICES],
    /// Control → engine: timed notes, parameter gestures, program changes.
    pub to_engine: SpscRing<Event, TO_ENGINE_CAPACITY>,
    /// Engine → control: telemetry and MIDI-learn captures.
    pub from_engine: SpscRing<Event, FROM_ENGINE_CAPACITY>,
    /// Arpeggiator: held keys (engine) and sequence cursor (control).
    pub arp: ArpArea,
}

/// Why a block failed [`SharedBlock::check_header`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockHeaderError {
    /// The magic is missing: the block was never initialised.
    NotInitialised,
    /// The block was created by a bridge with another ABI version.
    AbiVersion {
        /// The version in the block.
        found: u32,
        /// This library's version.
        expected: u32,
    },
    /// The block was created with another layout.
    LayoutHash {
        /// The hash in the block.
        found: u64,
        /// This library's hash.
        expected: u64,
    },
}

impl core::fmt::Display for BlockHeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotInitialised => write!(f, "the shared block was never initialised by the bridge"),
            Self::AbiVersion { found, expected } => write!(
                f,
                "the shared block has ABI version {found} but this module was built for {expected}: rebuild all modules together"
            ),
            Self::LayoutHash { found, expected } => write!(
                f,
                "the shared block has layout hash {found:#018x} but this module was built for {expected:#018x}: rebuild all modules together"
            ),
        }
    }
}

impl std::error::Error for BlockHeaderError {}

impl SharedBlock {
    /// Writes the header of a zero-filled block. Called once by the bridge, before any
    /// module sees the block.
    pub fn init_header(&self, instance_id: u64, sample_rate: f64, max_block_size: u32) {
        let h = &self.header;
        // Relaxed stores: published by the Release store of `magic` below.
        h.abi_version.store(ABI_VERSION, Ordering::Relaxed);
        h.layout_hash.store(crate::layout::LAYOUT_HASH, Ordering::Relaxed);
        h.size.store(core::mem::size_of::<Self>() as u64, Ordering::Relaxed);
        h.instance_id.store(instance_id, Ordering::Relaxed);
        h.sample_rate.store(sample_rate, Ordering::Relaxed);
        h.max_block_size.store(max_block_size, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `check_header`.
        h.magic.store(BLOCK_MAGIC, Ordering::Release);
    }

    /// Checks that this library and the block's creator agree on the layout. Modules
    /// call it in their create functions.
    ///
    /// # Errors
    /// Names both values when the version or hash differ.
    pub fn check_header(&self) -> Result<(), BlockHeaderError> {
        let h = &self.header;
        // Acquire: pairs with the Release store in `init_header`.
        if h.magic.load(Ordering::Acquire) != BLOCK_MAGIC {
            return Err(BlockHeaderError::NotInitialised);
        }
        // Relaxed: published by the magic's Release/Acquire pair above.
        let found = h.abi_version.load(Ordering::Relaxed);
        if found != ABI_VERSION {
            return Err(BlockHeaderError::AbiVersion { found, expected: ABI_VERSION });
        }
        let found = h.layout_hash.load(Ordering::Relaxed);
        if found != crate::layout::LAYOUT_HASH {
            return Err(BlockHeaderError::LayoutHash { found, expected: crate::layout::LAYOUT_HASH });
        }
        Ok(())
    }

    /// The parameter slot for `id`, or `None` if `id >= MAX_PARAMS`.
    pub fn param(&self, id: u32) -> Option<&ParamSlot> {
        self.params.get(id as usize)
    }

    /// Allocates a zeroed block on the heap, for tests and tools that need a block
    /// outside shared memory.
    pub fn new_boxed() -> Box<Self> {
        let layout = std::alloc::Layout::new::<Self>();
        // SAFETY: `layout` has nonzero size (the block is a few tens of KiB).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Self>();
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `ptr` is a fresh allocation with this type's layout, and all-zero bytes
        // are a valid `SharedBlock` (every field is an atomic, a ring or a seqlock, each
        // documented as valid when zeroed).
        unsafe { Box::from_raw(ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_block_has_no_held_keys_and_an_idle_arp() {
        let block = SharedBlock::new_boxed();
        let held = block.arp.held.read().unwrap();
        assert_eq!(held, HeldKeys::default());
        assert!(held.held().is_empty());
        assert_eq!(block.arp.cursor.running.load(Ordering::Relaxed), 0);
        assert_eq!(block.header.control_lookahead_samples.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn held_keys_round_trip() {
        let block = SharedBlock::new_boxed();
        let mut k = HeldKeys { phrase: 7, count: 3, phrase_start: 12_345, released_at: 99, ..HeldKeys::default() };
        k.keys[0] = HeldKey { note: 64, velocity: 0.5 };
        k.keys[1] = HeldKey { note: 60, velocity: 1.0 };
        k.keys[2] = HeldKey { note: 127, velocity: 0.25 };
        // SAFETY: this test is the only writer.
        unsafe { block.arp.held.publish(&k) };
        let back = block.arp.held.read().unwrap();
        assert_eq!(back, k);
        assert_eq!(back.held().iter().map(|k| k.note).collect::<Vec<_>>(), [64, 60, 127]);
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
