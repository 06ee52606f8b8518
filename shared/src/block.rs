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

use atomic_float::{AtomicF32, AtomicF64};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
