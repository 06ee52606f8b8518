//! The shared block: one `#[repr(C)]` struct in OS shared memory per plugin instance,
//! followed (at [`AREA_OFFSET`]) by the plugin's own area ([`crate::area`](mod@crate::area)).
//!
//! Every field is an atomic (or a ring, seqlock or counter made of atomics), so every
//! library may hold a `&SharedBlock` at once, and the all-zero memory a new segment starts
//! with is a valid block: empty rings, zero statistics, no parameters, no active voices.
//! The bridge writes the header ([`SharedBlock::init_header`]), the control module
//! publishes the parameter definitions and defaults ([`ParamTable::define`]), and the
//! engine writes voice states, meters, statistics, latency and tail.
//!
//! Who writes what (single writer per field unless stated):
//!
//! | field | writer | readers |
//! |---|---|---|
//! | `header` setup fields | bridge, at creation and on `setupProcessing` | all |
//! | `header.sample_clock` | engine; the bridge in its place for blocks it skips while the engine sleeps (`crate::sleep`), on the same thread | control, bridge |
//! | `header.latency_samples`, `tail_samples` | engine | control, bridge |
//! | `header.scheduled_until` | control (after each tick) | bridge |
//! | `transport` | engine, on the audio thread, each block (the bridge for skipped blocks) | control |
//! | `params` definitions | control module (on the control worker) | engine, bridge |
//! | `params` slot values | any host thread through the bridge, the control module, the engine (applied automation) | all |
//! | `voices`, `meters` | engine | control, bridge, tests |
//! | `stats` | engine, bridge and control (counters shared between threads are atomic adds; those only the processing thread writes, a load and a store) | all |
//! | `to_engine` ring | producer: control worker | consumer: engine |
//! | `from_engine` ring | producer: engine | consumer: control worker |

use atomic_float::{AtomicF32, AtomicF64};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::abi::{ABI_VERSION, AreaLayout, Event, param_flags};
use crate::params::{Display, DisplayKind, MappingKind, ParamInfo, ParamMapping};
use crate::ring::SpscRing;
use crate::seqlock::{SeqCounter, SeqLock};

/// `"TRIOBLK2"`: marks an initialised block.
pub const BLOCK_MAGIC: u64 = u64::from_le_bytes(*b"TRIOBLK2");
/// Parameters a block holds.
pub const MAX_PARAMS: usize = 1024;
/// Entries of the id → slot index (a power of two, twice [`MAX_PARAMS`]).
pub const PARAM_INDEX_LEN: usize = 2 * MAX_PARAMS;
/// Bytes for the value names of every list parameter together.
pub const VALUE_NAMES_BYTES: usize = 32 * 1024;
/// Voice-state slots in a block.
pub const MAX_VOICES: usize = 128;
/// Capacity of the control → engine event ring.
pub const TO_ENGINE_CAPACITY: usize = 1024;
/// Capacity of the engine → control event ring.
pub const FROM_ENGINE_CAPACITY: usize = 256;
/// MIDI continuous controllers (CC 0 to 127).
pub const CC_COUNT: usize = 128;
/// The MIDI controllers a VST3 host can map (`IMidiMapping`): CC 0 to 127, then channel
/// pressure ([`CHANNEL_PRESSURE`], VST3's `kAfterTouch`) and pitch bend ([`PITCH_BEND`]).
pub const MIDI_CONTROLLERS: usize = 130;
/// Controller number of channel pressure in the MIDI map (VST3 `kAfterTouch`).
pub const CHANNEL_PRESSURE: u8 = 128;
/// Controller number of pitch bend in the MIDI map (VST3 `kPitchBend`).
pub const PITCH_BEND: u8 = 129;
/// The parameter id that, in a MIDI map given to [`ParamTable::define`], means "deliver
/// this controller to the engine as events" instead of "move this parameter".
pub const RAW_MIDI: u32 = u32::MAX;
/// `tail_samples` value for "the plugin rings forever" (VST3 `kInfiniteTail`).
pub const INFINITE_TAIL: u32 = u32::MAX;
/// Where the plugin-defined area starts in the segment: the block's size rounded up to
/// a page.
pub const AREA_OFFSET: usize = size_of::<SharedBlock>().next_multiple_of(4096);
/// The largest alignment an area type may have (the area starts on a page).
pub const MAX_AREA_ALIGN: u64 = 4096;

/// Bytes of a segment holding the block and an area of `area`'s size.
pub const fn segment_size(area: &AreaLayout) -> usize {
    AREA_OFFSET + (area.size as usize).next_multiple_of(64)
}

/// Identity and processing setup of the instance.
#[repr(C)]
pub struct BlockHeader {
    /// [`BLOCK_MAGIC`] once the bridge has initialised the header (stored last, Release).
    pub magic: AtomicU64,
    /// [`ABI_VERSION`] of the bridge that created the block.
    pub abi_version: AtomicU32,
    /// [`crate::abi::process_mode`] from the host's `setupProcessing`.
    pub process_mode: AtomicU32,
    /// [`crate::layout::LAYOUT_HASH`] of the bridge that created the block.
    pub layout_hash: AtomicU64,
    /// Bytes of the segment (block and area).
    pub size: AtomicU64,
    /// Process-unique id of the instance.
    pub instance_id: AtomicU64,
    /// Sample rate from the host's `setupProcessing`.
    pub sample_rate: AtomicF64,
    /// Largest block the host will send.
    pub max_block_size: AtomicU32,
    /// What the host has switched on, as [`state_flags`] bits (written by the bridge from
    /// `setActive` and `setProcessing`; read by control logic and by tools that read the
    /// block from outside the process).
    pub state_flags: AtomicU32,
    /// Samples the engine has rendered since it was created: the sample time of the start
    /// of the next block. Control schedules timed events against it. Written by the engine
    /// with Release after each block.
    pub sample_clock: AtomicU64,
    /// How far ahead of `sample_clock` control-rate logic schedules timed events, in
    /// samples; 0 (the initial value) means the default, `max_block_size` plus 20 ms.
    pub control_lookahead_samples: AtomicU32,
    /// The latency the engine adds, in samples (written by the engine).
    pub latency_samples: AtomicU32,
    /// How long the engine keeps sounding after its input stops, in samples;
    /// [`INFINITE_TAIL`] for forever (written by the engine).
    pub tail_samples: AtomicU32,
    /// Channels of the main bus in the current arrangement (written by the bridge).
    pub main_channels: AtomicU32,
    /// Channels of the sidechain input in the current arrangement, 0 when none.
    pub sidechain_channels: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
    /// Engine sample time up to which the control logic has scheduled every timed event
    /// (written by the control module after each tick).
    pub scheduled_until: AtomicU64,
    /// Time of the last event the control module put into `to_engine`; later events are
    /// never earlier, so the queue stays in time order (written by the control module).
    pub to_engine_last: AtomicU64,
    /// The plugin area's layout hash, written by the bridge from the modules' descriptors.
    pub area_hash: AtomicU64,
    /// The plugin area's size in bytes.
    pub area_size: AtomicU64,
    /// Where the plugin area starts, in bytes from the block's start ([`AREA_OFFSET`]).
    pub area_offset: AtomicU64,
}

/// Host transport as of the last block, published by the engine through a seqlock so the
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

impl Transport {
    /// The snapshot of a block starting at engine sample `clock` with the host's
    /// `transport`: what the framework publishes for the control module.
    pub fn of_host(clock: u64, transport: &crate::abi::TransportInfo) -> Self {
        use crate::abi::transport_flags;
        Self {
            sample_time: clock,
            tempo_bpm: transport.tempo().unwrap_or(0.0),
            ppq_position: transport.position().unwrap_or(0.0),
            bar_start_ppq: if transport.flags & transport_flags::BAR != 0 { transport.bar_start_ppq } else { 0.0 },
            time_sig: if transport.flags & transport_flags::TIME_SIG != 0 {
                (transport.time_sig_numerator, transport.time_sig_denominator)
            } else {
                (0, 0)
            },
            playing: transport.is_playing(),
        }
    }
}

impl TransportCell {
    /// Publishes a snapshot. One thread publishes (the engine, on the audio thread).
    pub fn publish(&self, t: &Transport) {
        let sig = (u64::from(t.time_sig.0) << 32) | u64::from(t.time_sig.1);
        self.lock.write([
            t.sample_time,
            t.tempo_bpm.to_bits(),
            t.ppq_position.to_bits(),
            t.bar_start_ppq.to_bits(),
            sig,
            u64::from(t.playing),
        ]);
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

/// Words of a parameter definition in its slot (see [`ParamSlot`]).
pub const DEF_WORDS: usize = 25;

/// One parameter slot: its value (live) and its definition (under the table's counter).
///
/// Definition words: 0 `id | flags << 32`; 1 `mapping kind | display kind << 8 |
/// precision << 16 | value-name count << 32`; 2 min; 3 max; 4 skew; 5 default
/// (normalized), all as `f64` bits; 6 value-name offset in the pool; 7..15 name (64
/// bytes); 15..19 short name (32); 19..21 unit (16); 21..25 group (32). Texts are UTF-8,
/// NUL-padded.
#[repr(C)]
pub struct ParamSlot {
    /// Normalized value `0..=1`.
    pub value: AtomicF64,
    /// The parameter id this slot belongs to. Written once, when the slot is assigned,
    /// before its index entry is published; never changes for the block's lifetime.
    pub id: AtomicU32,
    /// Nonzero while the serving control module defines the parameter.
    pub defined: AtomicU32,
    def: [AtomicU64; DEF_WORDS],
}

/// The parameters: values, definitions, and an id → slot index.
///
/// Slots are assigned to ids in the order the control module first defines them and keep
/// their id for the life of the block, so a reloaded control module finds every value
/// where it was; an id it drops keeps its slot (undefined) and its value. The index is
/// open addressing with linear probing; entries are only ever added, so lookups need no
/// lock ([`ParamTable::slot_of`]). Definitions (and the order, the MIDI CC map and the
/// value names) change only when a control module is created, under `counter`.
#[repr(C)]
pub struct ParamTable {
    /// Guards the definitions: odd while the control module rewrites them.
    counter: SeqCounter,
    /// Bumped by every writer of a value other than the engine (the host through the
    /// bridge, the control module), so the engine rescans values only when one changed.
    pub values_epoch: AtomicU64,
    /// Parameters the serving control module defines (length of `order`).
    count: AtomicU32,
    /// Slots assigned to ids so far; never decreases.
    assigned: AtomicU32,
    /// Bytes of `names` in use.
    names_len: AtomicU32,
    _pad: u32,
    /// Slots in the order hosts list the parameters, `count` of them.
    order: [AtomicU32; MAX_PARAMS],
    /// `slot + 1` per hashed id, 0 when empty.
    index: [AtomicU32; PARAM_INDEX_LEN],
    /// Per MIDI controller ([`MIDI_CONTROLLERS`]): `slot + 1` of the parameter it
    /// controls, [`RAW_MIDI`] when the engine receives it as events, 0 for neither.
    cc_map: [AtomicU32; MIDI_CONTROLLERS],
    /// Value names of list parameters, NUL-separated UTF-8.
    names: [AtomicU64; VALUE_NAMES_BYTES / 8],
    slots: [ParamSlot; MAX_PARAMS],
}

/// What a voice is doing ([`VoiceState::active`]).
pub mod voice_activity {
    /// Free.
    pub const IDLE: u32 = 0;
    /// Sounding, key held.
    pub const SOUNDING: u32 = 1;
    /// Sounding, released.
    pub const RELEASING: u32 = 2;
}

/// What the engine reports about one voice.
#[repr(C)]
pub struct VoiceState {
    /// [`voice_activity`].
    pub active: AtomicU32,
    /// MIDI note number.
    pub note: AtomicU32,
    /// MIDI channel.
    pub channel: AtomicU32,
    /// The host's note id, or -1.
    pub note_id: AtomicI32,
    /// Note-on velocity `0..=1`.
    pub velocity: AtomicF32,
    /// Current level `0..=1`.
    pub level: AtomicF32,
    /// Samples since the note started.
    pub age: AtomicU64,
}

/// Output meters, written by the engine after each block.
#[repr(C)]
pub struct Meters {
    /// Peak absolute sample of the last block, per main channel (first two).
    pub peak: [AtomicF32; 2],
    /// RMS of the last block, per main channel (first two).
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
    /// Longest engine process call in real-time processing, nanoseconds (offline blocks
    /// have no deadline and are not timed).
    pub worst_process_ns: AtomicU64,
    /// Last engine process call in real-time processing, nanoseconds.
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
    /// Timed events from the control module that arrived after their sample time and
    /// played at the start of the next block.
    pub late_events: AtomicU64,
    /// Blocks whose output held NaN or infinite samples and were replaced by silence.
    pub nonfinite_blocks: AtomicU64,
    /// Control ticks run.
    pub control_ticks: AtomicU64,
    /// Blocks whose output went above [`RUNAWAY_PEAK`] (+40 dBFS) and were replaced by
    /// silence: a runaway filter or feedback loop, kept from the host's speakers.
    pub runaway_blocks: AtomicU64,
    /// Where and why the engine last panicked (written by the engine export after it
    /// caught the panic, read by the bridge to log it).
    pub panic_note: PanicNote,
}

/// Bits of [`BlockHeader::state_flags`].
pub mod state_flags {
    /// The host activated the plugin (`setActive(true)`, until `setActive(false)`).
    pub const ACTIVE: u32 = 1;
    /// The host is processing (`setProcessing(true)`, until `setProcessing(false)` or
    /// deactivation).
    pub const PROCESSING: u32 = 2;
}

impl BlockHeader {
    /// Sets or clears `flag` (one of [`state_flags`]).
    pub fn set_state_flag(&self, flag: u32, on: bool) {
        // Relaxed: a status word; no other memory is published through it.
        if on {
            self.state_flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.state_flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    /// Whether `flag` (one of [`state_flags`]) is set.
    pub fn has_state_flag(&self, flag: u32) -> bool {
        // Relaxed: as in `set_state_flag`.
        self.state_flags.load(Ordering::Relaxed) & flag != 0
    }
}

/// Output peak above which a block counts as runaway and is silenced: +40 dBFS (100 times
/// full scale). No instrument or effect plays there on purpose; a filter or feedback loop
/// that blew up does, and the host would pass it to the speakers.
pub const RUNAWAY_PEAK: f32 = 100.0;

/// A short text (at most [`PanicNote::CAPACITY`] bytes of UTF-8) behind a seqlock: where
/// and why the engine last panicked. Written without allocating (on the audio thread),
/// read anywhere.
#[repr(C)]
pub struct PanicNote {
    lock: SeqLock<{ PanicNote::WORDS }>,
}

impl PanicNote {
    const WORDS: usize = 32;
    /// Longest text kept, in bytes (longer texts are cut at a character boundary).
    pub const CAPACITY: usize = (Self::WORDS - 1) * 8;

    /// Stores `text`, cut to [`Self::CAPACITY`] bytes. One writer at a time (the engine
    /// of this block). Does not allocate.
    pub fn write(&self, text: &str) {
        let cut = text.floor_char_boundary(Self::CAPACITY);
        let bytes = &text.as_bytes()[..cut];
        let mut words = [0u64; Self::WORDS];
        words[0] = cut as u64;
        for (word, chunk) in words[1..].iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_le_bytes(b);
        }
        self.lock.write(words);
    }

    /// The stored text; `None` when nothing was stored or a write kept overlapping the read.
    pub fn read(&self) -> Option<String> {
        let words = self.lock.read()?;
        let len = (words[0] as usize).min(Self::CAPACITY);
        if len == 0 {
            return None;
        }
        let bytes: Vec<u8> = words[1..].iter().flat_map(|w| w.to_le_bytes()).take(len).collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Statistics {
    /// Adds one to a counter. `Relaxed`: counters are telemetry; no other memory is
    /// published through them.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records `count` allocator calls caught on the audio path (none when 0). Wait-free.
    pub fn add_alloc_violations(&self, count: u32) {
        if count > 0 {
            // Relaxed: a telemetry counter.
            self.alloc_violations.fetch_add(u64::from(count), Ordering::Relaxed);
        }
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
    /// Parameters.
    pub params: ParamTable,
    /// Voice states, indexed by the engine's voice slot.
    pub voices: [VoiceState; MAX_VOICES],
    /// Control → engine: timed notes, parameter gestures, the plugin's messages.
    pub to_engine: SpscRing<Event, TO_ENGINE_CAPACITY>,
    /// Engine → control: MIDI controllers seen, the plugin's messages.
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
    /// The block's plugin area is not the one this module was built with.
    Area {
        /// The area in the block.
        found: AreaLayout,
        /// This module's area.
        expected: AreaLayout,
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
            Self::Area { found, expected } => write!(
                f,
                "the shared block's plugin area has hash {:#018x} and {} bytes but this module was built with {:#018x} and {} bytes: rebuild the engine and the control module together",
                found.hash, found.size, expected.hash, expected.size
            ),
        }
    }
}

impl std::error::Error for BlockHeaderError {}

impl SharedBlock {
    /// Writes the header of a zero-filled segment of `segment_size` bytes whose area has
    /// layout `area`. Called once by the bridge, before any module sees the block.
    pub fn init_header(&self, instance_id: u64, sample_rate: f64, max_block_size: u32, area: &AreaLayout) {
        let h = &self.header;
        // Relaxed stores: published by the Release store of `magic` below.
        h.abi_version.store(ABI_VERSION, Ordering::Relaxed);
        h.layout_hash.store(crate::layout::LAYOUT_HASH, Ordering::Relaxed);
        h.size.store(segment_size(area) as u64, Ordering::Relaxed);
        h.instance_id.store(instance_id, Ordering::Relaxed);
        h.sample_rate.store(sample_rate, Ordering::Relaxed);
        h.max_block_size.store(max_block_size, Ordering::Relaxed);
        h.area_hash.store(area.hash, Ordering::Relaxed);
        h.area_size.store(area.size, Ordering::Relaxed);
        h.area_offset.store(AREA_OFFSET as u64, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `check_header`.
        h.magic.store(BLOCK_MAGIC, Ordering::Release);
    }

    /// Checks that this library and the block's creator agree on the layout and that the
    /// block's area is `area`. Modules call it in their create functions.
    ///
    /// # Errors
    /// Names both values when the version, hash or area differ.
    pub fn check_header(&self, area: &AreaLayout) -> Result<(), BlockHeaderError> {
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
        let found = AreaLayout {
            hash: h.area_hash.load(Ordering::Relaxed),
            size: h.area_size.load(Ordering::Relaxed),
            align: area.align,
        };
        let fits = h.area_offset.load(Ordering::Relaxed) == AREA_OFFSET as u64
            && h.size.load(Ordering::Relaxed) >= segment_size(area) as u64
            && area.align <= MAX_AREA_ALIGN;
        if found.hash != area.hash || found.size != area.size || !fits {
            return Err(BlockHeaderError::Area { found, expected: *area });
        }
        Ok(())
    }

    /// The sample rate of the current setup.
    pub fn sample_rate(&self) -> f64 {
        // Relaxed: a setup value written before processing starts.
        self.header.sample_rate.load(Ordering::Relaxed)
    }
}

/// A zeroed, page-aligned block with room for an area, on the heap: for tests and tools
/// that need a block outside shared memory.
pub struct HeapBlock {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: the memory is only reached through `&SharedBlock` (atomics) and raw pointers
// handed to modules, which use atomics too; the allocation lives as long as the value.
unsafe impl Send for HeapBlock {}
// SAFETY: as above.
unsafe impl Sync for HeapBlock {}

impl HeapBlock {
    /// A block whose area has layout `area`, header initialised.
    pub fn new(area: &AreaLayout) -> Self {
        let size = segment_size(area);
        let Ok(layout) = std::alloc::Layout::from_size_align(size, 4096) else {
            panic!("a block of {size} bytes cannot be allocated");
        };
        // SAFETY: `layout` has a nonzero size (the block alone is hundreds of KiB).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let block = Self { ptr, layout };
        block.block().init_header(1, 48_000.0, 1024, area);
        block
    }

    /// The block.
    pub fn block(&self) -> &SharedBlock {
        // SAFETY: page-aligned, zero-initialised memory of at least the block's size; all
        // zeros is a valid `SharedBlock`; it lives as long as `self`.
        unsafe { &*self.ptr.cast::<SharedBlock>() }
    }

    /// The start of the memory, with provenance over the whole allocation (block and area).
    pub fn as_ptr(&self) -> *const SharedBlock {
        self.ptr.cast::<SharedBlock>()
    }
}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// FNV-1a of a parameter id, for the index.
fn id_hash(id: u32) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.to_le_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as usize & (PARAM_INDEX_LEN - 1)
}

fn pack_text(words: &[AtomicU64], text: &str) {
    let mut bytes = [0u8; 64];
    let n = text.len().min(words.len() * 8 - 1);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    for (i, w) in words.iter().enumerate() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        // Relaxed: inside the definitions counter's write phase.
        w.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
    }
}

fn unpack_text(words: &[u64]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    crate::abi::str_from_fixed(&bytes).to_owned()
}

/// Why [`ParamTable::define`] refused a set of definitions. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefineError {
    /// More parameters than the block holds, or no free slot left for a new id.
    TooMany {
        /// Parameters that needed a slot.
        wanted: usize,
    },
    /// The value names of all lists together do not fit.
    NamesTooLong {
        /// Bytes needed.
        bytes: usize,
    },
    /// Two definitions share an id.
    DuplicateId {
        /// The id.
        id: u32,
    },
    /// The MIDI CC map names a parameter that is not defined, or a controller above 127.
    BadCcMap {
        /// The controller.
        cc: u32,
        /// The parameter id.
        id: u32,
    },
}

impl core::fmt::Display for DefineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooMany { wanted } => write!(
                f,
                "{wanted} parameters need a slot but the shared block holds {MAX_PARAMS} (ids ever defined in this \
                 instance count too): define fewer parameters"
            ),
            Self::NamesTooLong { bytes } => write!(
                f,
                "the value names of the list parameters take {bytes} bytes but the block holds {VALUE_NAMES_BYTES}: \
                 shorten them or use fewer list entries"
            ),
            Self::DuplicateId { id } => write!(f, "two parameters have the id {id}: give each its own id"),
            Self::BadCcMap { cc, id } => write!(
                f,
                "the MIDI CC map assigns controller {cc} to parameter id {id}, which is not defined (or the \
                 controller is above 129)"
            ),
        }
    }
}

impl std::error::Error for DefineError {}

/// What [`ParamTable::define`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefineReport {
    /// Ids that had no slot before (their value was set to the default).
    pub new_ids: Vec<u32>,
    /// Ids whose mapping differs from the one the block held (or that were undefined).
    pub remapped: Vec<u32>,
}

/// A copy of a table's definitions, to put back when a reload fails
/// ([`ParamTable::snapshot`], [`ParamTable::restore`]).
#[derive(Clone, Debug)]
pub struct DefinitionsSnapshot {
    defs: Vec<[u64; DEF_WORDS]>,
    defined: Vec<u32>,
    values: Vec<f64>,
    order: Vec<u32>,
    cc_map: Vec<u32>,
    names: Vec<u64>,
    count: u32,
    names_len: u32,
}

/// The definitions as the bridge reads them ([`ParamTable::read_definitions`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Definitions {
    /// The counter's version they were read at.
    pub version: u64,
    /// Every defined parameter, in the order hosts list them.
    pub params: Vec<ParamInfo>,
    /// Slot of each parameter of `params`.
    pub slots: Vec<usize>,
    /// The parameter id each MIDI controller ([`MIDI_CONTROLLERS`]) controls.
    pub cc_map: [Option<u32>; MIDI_CONTROLLERS],
    /// The controllers the engine receives as events (no parameter of the plugin's):
    /// the bridge lists a hidden parameter for each, for hosts to map controllers to.
    pub raw_midi: [bool; MIDI_CONTROLLERS],
    /// `(id, position in params)`, sorted by id ([`Definitions::param`]).
    by_id: Vec<(u32, usize)>,
}

impl Definitions {
    /// Definitions of `params` (in host order) in `slots`, with their MIDI maps.
    pub fn new(
        params: Vec<ParamInfo>,
        slots: Vec<usize>,
        cc_map: [Option<u32>; MIDI_CONTROLLERS],
        raw_midi: [bool; MIDI_CONTROLLERS],
    ) -> Self {
        let mut by_id: Vec<(u32, usize)> = params.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        by_id.sort_unstable();
        Self { version: 0, params, slots, cc_map, raw_midi, by_id }
    }

    /// Whether both hold the same definitions, whatever versions they were read at.
    pub fn same_as(&self, other: &Definitions) -> bool {
        self.params == other.params
            && self.slots == other.slots
            && self.cc_map == other.cc_map
            && self.raw_midi == other.raw_midi
    }

    /// The MIDI map as [`ParamTable::define`] takes it: `(controller, parameter id)` for
    /// each mapped controller, `(controller, RAW_MIDI)` for each the engine receives.
    /// Defining an empty table with `params` and this map gives these definitions again.
    pub fn midi_map(&self) -> Vec<(u8, u32)> {
        (0..MIDI_CONTROLLERS)
            .filter_map(|cc| match (self.cc_map[cc], self.raw_midi[cc]) {
                (Some(id), _) => Some((cc as u8, id)),
                (None, true) => Some((cc as u8, RAW_MIDI)),
                (None, false) => None,
            })
            .collect()
    }

    /// The definition of parameter `id` (a binary search: hosts look parameters up on
    /// every text call).
    pub fn param(&self, id: u32) -> Option<&ParamInfo> {
        let i = self.by_id.binary_search_by_key(&id, |&(id, _)| id).ok()?;
        self.params.get(self.by_id[i].1)
    }
}

impl Default for Definitions {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new(), [None; MIDI_CONTROLLERS], [false; MIDI_CONTROLLERS])
    }
}

impl ParamTable {
    /// The slot of parameter `id`, if it has one. Lock-free and wait-free (a few atomic
    /// loads): safe on any thread, the audio thread included. A slot may be undefined
    /// (the serving control module dropped the id); see [`ParamTable::is_defined`].
    pub fn slot_of(&self, id: u32) -> Option<usize> {
        let start = id_hash(id);
        for probe in 0..PARAM_INDEX_LEN {
            // Acquire: pairs with the Release store of the entry in `assign`, so the
            // slot's `id` written before it is visible.
            let entry = self.index[(start + probe) & (PARAM_INDEX_LEN - 1)].load(Ordering::Acquire);
            if entry == 0 {
                return None;
            }
            let slot = entry as usize - 1;
            // Relaxed: published by the Acquire load of the entry above.
            if self.slots.get(slot).is_some_and(|s| s.id.load(Ordering::Relaxed) == id) {
                return Some(slot);
            }
        }
        None
    }

    /// The slot at `index` (`None` beyond [`MAX_PARAMS`]).
    pub fn slot(&self, index: usize) -> Option<&ParamSlot> {
        self.slots.get(index)
    }

    /// Slots assigned so far (every slot below this has an id).
    pub fn assigned(&self) -> usize {
        // Acquire: pairs with the Release bump in `assign`, so those slots' ids are set.
        (self.assigned.load(Ordering::Acquire) as usize).min(MAX_PARAMS)
    }

    /// Parameters the serving control module defines.
    pub fn count(&self) -> usize {
        // Relaxed: informational; consistent reads go through `read_definitions`.
        (self.count.load(Ordering::Relaxed) as usize).min(MAX_PARAMS)
    }

    /// Whether parameter `id` is defined by the serving control module.
    pub fn is_defined(&self, id: u32) -> bool {
        // Relaxed: set before the instance is handed out; a reload changes it while the
        // host is told to re-read the parameters anyway.
        self.slot_of(id).is_some_and(|s| self.slots[s].defined.load(Ordering::Relaxed) != 0)
    }

    /// Whether the engine receives MIDI controller `number` (the map's numbering) as
    /// events. Lock-free: safe on the audio thread.
    pub fn is_raw_midi(&self, number: u8) -> bool {
        // Relaxed: like `is_defined`, a declaration that changes only with a new control
        // module.
        self.cc_map.get(usize::from(number)).is_some_and(|e| e.load(Ordering::Relaxed) == RAW_MIDI)
    }

    /// The normalized value of parameter `id`.
    pub fn value(&self, id: u32) -> Option<f64> {
        // Relaxed: parameter values are independent atomics.
        self.slot_of(id).map(|s| self.slots[s].value.load(Ordering::Relaxed))
    }

    /// Sets the normalized value of a defined parameter (clamped to `0..=1`) and tells the
    /// engine a value changed. `false` for an unknown id or a non-finite value. Safe on
    /// any thread (hosts call `setParamNormalized` from the audio thread too).
    pub fn set_value(&self, id: u32, normalized: f64) -> bool {
        match self.slot_of(id) {
            Some(s) if normalized.is_finite() && self.slots[s].defined.load(Ordering::Relaxed) != 0 => {
                // Relaxed: values are independent atomics; the epoch below is the signal.
                self.slots[s].value.store(normalized.clamp(0.0, 1.0), Ordering::Relaxed);
                self.bump_epoch();
                true
            }
            _ => false,
        }
    }

    /// Tells the engine that values changed (see `values_epoch`).
    pub fn bump_epoch(&self) {
        // Release: pairs with the engine's Acquire load, so the value stores before it are
        // seen by the rescan it triggers.
        self.values_epoch.fetch_add(1, Ordering::Release);
    }

    /// The definitions counter's version (even while stable).
    pub fn version(&self) -> u64 {
        self.counter.version()
    }

    /// The mapping of slot `index`, read under the definitions counter; `None` if a
    /// rewrite overlapped the read or the slot holds an unknown mapping kind. Never waits.
    pub fn mapping(&self, index: usize) -> Option<ParamMapping> {
        let slot = self.slots.get(index)?;
        let words = self.counter.read(|| {
            // Relaxed: consistency is decided by the counter.
            [1, 2, 3, 4].map(|w| slot.def[w].load(Ordering::Relaxed))
        })?;
        decode_mapping(&words)
    }

    /// Reads every mapping of the assigned slots into `out` (`None` for undefined slots),
    /// under the counter. Returns the version read, or `None` if a rewrite overlapped (the
    /// caller keeps what it had). Allocation-free: for the engine.
    pub fn read_mappings(&self, out: &mut [Option<ParamMapping>; MAX_PARAMS]) -> Option<u64> {
        let assigned = self.assigned();
        let version = self.counter.version();
        let ok = self.counter.read(|| {
            for (slot, o) in self.slots[..assigned].iter().zip(out.iter_mut()) {
                // Relaxed: consistency is decided by the counter.
                *o = if slot.defined.load(Ordering::Relaxed) != 0 {
                    decode_mapping(&[1, 2, 3, 4].map(|w| slot.def[w].load(Ordering::Relaxed)))
                } else {
                    None
                };
            }
        });
        if ok.is_some() && self.counter.version() == version { Some(version) } else { None }
    }

    /// A consistent copy of every definition, retrying while the control module rewrites
    /// them (it takes microseconds). `None` only if rewrites kept overlapping for ~10 ms.
    /// Allocates: not for the audio thread.
    pub fn read_definitions(&self) -> Option<Definitions> {
        for attempt in 0..1000 {
            let version = self.counter.version();
            let copy = self.counter.read(|| self.copy_definitions());
            if let Some(mut defs) = copy
                && self.counter.version() == version
            {
                defs.version = version;
                return Some(defs);
            }
            if attempt > 10 {
                std::thread::sleep(std::time::Duration::from_micros(10));
            }
        }
        None
    }

    fn copy_definitions(&self) -> Definitions {
        // Relaxed loads throughout: consistency is decided by the counter.
        let count = (self.count.load(Ordering::Relaxed) as usize).min(MAX_PARAMS);
        let names_len = (self.names_len.load(Ordering::Relaxed) as usize).min(VALUE_NAMES_BYTES);
        let pool: Vec<u8> = self.names[..names_len.div_ceil(8)]
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .take(names_len)
            .collect();
        let mut params = Vec::with_capacity(count);
        let mut slots = Vec::with_capacity(count);
        for o in &self.order[..count] {
            let slot = o.load(Ordering::Relaxed) as usize;
            let Some(s) = self.slots.get(slot) else { continue };
            let words: [u64; DEF_WORDS] = core::array::from_fn(|i| s.def[i].load(Ordering::Relaxed));
            if let Some(info) = decode_info(&words, &pool) {
                params.push(info);
                slots.push(slot);
            }
        }
        let mut cc_map = [None; MIDI_CONTROLLERS];
        let mut raw_midi = [false; MIDI_CONTROLLERS];
        for ((out, raw), entry) in cc_map.iter_mut().zip(raw_midi.iter_mut()).zip(&self.cc_map) {
            let e = entry.load(Ordering::Relaxed);
            if e == RAW_MIDI {
                *raw = true;
            } else if e > 0
                && let Some(s) = self.slots.get(e as usize - 1)
            {
                *out = Some(s.id.load(Ordering::Relaxed));
            }
        }
        Definitions::new(params, slots, cc_map, raw_midi)
    }

    /// Assigns a slot to `id` (which has none); `None` when every slot is taken.
    fn assign(&self, id: u32) -> Option<usize> {
        // Relaxed: only the definitions writer assigns slots.
        let slot = self.assigned.load(Ordering::Relaxed) as usize;
        if slot >= MAX_PARAMS {
            return None;
        }
        // Relaxed: published by the Release stores below.
        self.slots[slot].id.store(id, Ordering::Relaxed);
        self.slots[slot].value.store(0.0, Ordering::Relaxed);
        let start = id_hash(id);
        for probe in 0..PARAM_INDEX_LEN {
            let entry = &self.index[(start + probe) & (PARAM_INDEX_LEN - 1)];
            // Relaxed: only this writer stores entries.
            if entry.load(Ordering::Relaxed) == 0 {
                // Release: pairs with the Acquire load in `slot_of`: a reader that finds the
                // entry sees the slot's id.
                entry.store(slot as u32 + 1, Ordering::Release);
                // Release: pairs with the Acquire load in `assigned`.
                self.assigned.store(slot as u32 + 1, Ordering::Release);
                return Some(slot);
            }
        }
        None
    }

    /// Publishes a control module's parameter definitions and MIDI CC map. Parameters
    /// that had a slot keep it, and their value unless `fresh`; new ones get a slot and
    /// their default; slots of parameters no longer defined keep their id and value but
    /// are marked undefined. Call from one thread at a time (the control worker).
    ///
    /// # Errors
    /// [`DefineError`], with nothing changed.
    pub fn define(&self, params: &[ParamInfo], cc_map: &[(u8, u32)], fresh: bool) -> Result<DefineReport, DefineError> {
        let mut seen = std::collections::HashSet::with_capacity(params.len());
        for p in params {
            if !seen.insert(p.id) {
                return Err(DefineError::DuplicateId { id: p.id });
            }
        }
        for &(cc, id) in cc_map {
            if usize::from(cc) >= MIDI_CONTROLLERS || (id != RAW_MIDI && !seen.contains(&id)) {
                return Err(DefineError::BadCcMap { cc: u32::from(cc), id });
            }
        }
        let new_count = params.iter().filter(|p| self.slot_of(p.id).is_none()).count();
        if params.len() > MAX_PARAMS || self.assigned() + new_count > MAX_PARAMS {
            return Err(DefineError::TooMany { wanted: self.assigned() + new_count });
        }
        let mut pool: Vec<u8> = Vec::new();
        let mut name_refs = Vec::with_capacity(params.len());
        for p in params {
            let offset = pool.len();
            for name in &p.value_names {
                pool.extend_from_slice(name.as_bytes());
                pool.push(0);
            }
            name_refs.push((offset as u32, p.value_names.len() as u32));
        }
        if pool.len() > VALUE_NAMES_BYTES {
            return Err(DefineError::NamesTooLong { bytes: pool.len() });
        }

        let mut report = DefineReport::default();
        self.counter.write(|| {
            // Relaxed stores throughout: published by the counter's final Release store.
            // Only slots that leave the definitions are marked undefined: a value the host
            // sets while the same parameters are defined again (a control instance created
            // in the background, a state's MIDI map, a reload) must never be refused.
            for slot in &self.slots[..self.assigned()] {
                if !seen.contains(&slot.id.load(Ordering::Relaxed)) {
                    slot.defined.store(0, Ordering::Relaxed);
                }
            }
            for (i, (p, (offset, names))) in params.iter().zip(&name_refs).enumerate() {
                let slot = match self.slot_of(p.id) {
                    Some(s) => s,
                    None => {
                        // Cannot fail: the free slots were counted above.
                        let Some(s) = self.assign(p.id) else { continue };
                        report.new_ids.push(p.id);
                        s
                    }
                };
                let s = &self.slots[slot];
                let old_mapping = decode_mapping(&[1, 2, 3, 4].map(|w| s.def[w].load(Ordering::Relaxed)));
                let was_defined_with_same = old_mapping == Some(p.mapping) && !report.new_ids.contains(&p.id);
                if !was_defined_with_same {
                    report.remapped.push(p.id);
                }
                encode_info(s, p, *offset, *names);
                s.defined.store(1, Ordering::Relaxed);
                if fresh || report.new_ids.contains(&p.id) {
                    s.value.store(p.default_normalized, Ordering::Relaxed);
                }
                self.order[i].store(slot as u32, Ordering::Relaxed);
            }
            self.count.store(params.len() as u32, Ordering::Relaxed);
            for (i, w) in self.names.iter().enumerate().take(pool.len().div_ceil(8)) {
                let mut chunk = [0u8; 8];
                let end = (i * 8 + 8).min(pool.len());
                chunk[..end - i * 8].copy_from_slice(&pool[i * 8..end]);
                w.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
            }
            self.names_len.store(pool.len() as u32, Ordering::Relaxed);
            for entry in &self.cc_map {
                entry.store(0, Ordering::Relaxed);
            }
            for &(cc, id) in cc_map {
                if id == RAW_MIDI {
                    self.cc_map[usize::from(cc)].store(RAW_MIDI, Ordering::Relaxed);
                } else if let Some(slot) = self.slot_of(id) {
                    self.cc_map[usize::from(cc)].store(slot as u32 + 1, Ordering::Relaxed);
                }
            }
        });
        self.bump_epoch();
        Ok(report)
    }

    /// A copy of the definitions (and the values of every assigned slot), to restore.
    pub fn snapshot(&self) -> DefinitionsSnapshot {
        let assigned = self.assigned();
        // Relaxed loads: the caller holds the definitions writer role (no concurrent
        // rewrite); values are independent atomics.
        DefinitionsSnapshot {
            defs: self.slots[..assigned]
                .iter()
                .map(|s| core::array::from_fn(|i| s.def[i].load(Ordering::Relaxed)))
                .collect(),
            defined: self.slots[..assigned].iter().map(|s| s.defined.load(Ordering::Relaxed)).collect(),
            values: self.slots[..assigned].iter().map(|s| s.value.load(Ordering::Relaxed)).collect(),
            order: self.order.iter().map(|o| o.load(Ordering::Relaxed)).collect(),
            cc_map: self.cc_map.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            names: self.names.iter().map(|n| n.load(Ordering::Relaxed)).collect(),
            count: self.count.load(Ordering::Relaxed),
            names_len: self.names_len.load(Ordering::Relaxed),
        }
    }

    /// Puts back the definitions of a [`ParamTable::snapshot`]. Values stay live (the
    /// host and the engine's automation keep writing them), except where the mapping
    /// differs from the snapshot's: those get their snapshot value back. Slots assigned
    /// since stay assigned, undefined. Call from the definitions writer's thread.
    pub fn restore(&self, snap: &DefinitionsSnapshot) {
        self.counter.write(|| {
            // Relaxed stores: published by the counter's final Release store.
            for (i, slot) in self.slots[..self.assigned()].iter().enumerate() {
                match (snap.defs.get(i), snap.defined.get(i), snap.values.get(i)) {
                    (Some(words), Some(&defined), Some(&value)) => {
                        let remapped = (1..6).any(|w| slot.def[w].load(Ordering::Relaxed) != words[w]);
                        for (w, &word) in slot.def.iter().zip(words) {
                            w.store(word, Ordering::Relaxed);
                        }
                        slot.defined.store(defined, Ordering::Relaxed);
                        if remapped {
                            slot.value.store(value, Ordering::Relaxed);
                        }
                    }
                    _ => slot.defined.store(0, Ordering::Relaxed),
                }
            }
            for (o, &v) in self.order.iter().zip(&snap.order) {
                o.store(v, Ordering::Relaxed);
            }
            for (c, &v) in self.cc_map.iter().zip(&snap.cc_map) {
                c.store(v, Ordering::Relaxed);
            }
            for (n, &v) in self.names.iter().zip(&snap.names) {
                n.store(v, Ordering::Relaxed);
            }
            self.count.store(snap.count, Ordering::Relaxed);
            self.names_len.store(snap.names_len, Ordering::Relaxed);
        });
        self.bump_epoch();
    }
}

fn decode_mapping(words: &[u64; 4]) -> Option<ParamMapping> {
    Some(ParamMapping {
        kind: MappingKind::from_u32((words[0] & 0xff) as u32)?,
        min: f64::from_bits(words[1]),
        max: f64::from_bits(words[2]),
        skew: f64::from_bits(words[3]),
    })
    .filter(|m| m.validate().is_ok())
}

fn encode_info(slot: &ParamSlot, p: &ParamInfo, names_offset: u32, names_count: u32) {
    let w = &slot.def;
    let words = [
        u64::from(p.id) | (u64::from(p.flags) << 32),
        u64::from(p.mapping.kind as u32)
            | (u64::from(p.display.kind as u8) << 8)
            | (u64::from(p.display.precision) << 16)
            | (u64::from(names_count) << 32),
        p.mapping.min.to_bits(),
        p.mapping.max.to_bits(),
        p.mapping.skew.to_bits(),
        p.default_normalized.to_bits(),
        u64::from(names_offset),
    ];
    for (slot_word, word) in w.iter().zip(words) {
        // Relaxed: inside the definitions counter's write phase.
        slot_word.store(word, Ordering::Relaxed);
    }
    pack_text(&w[7..15], &p.name);
    pack_text(&w[15..19], &p.short_name);
    pack_text(&w[19..21], &p.unit);
    pack_text(&w[21..25], &p.group);
}

fn decode_info(w: &[u64; DEF_WORDS], pool: &[u8]) -> Option<ParamInfo> {
    let mapping = decode_mapping(&[w[1], w[2], w[3], w[4]])?;
    let display =
        Display { kind: DisplayKind::from_u8(((w[1] >> 8) & 0xff) as u8)?, precision: ((w[1] >> 16) & 0xff) as u8 };
    let names_count = (w[1] >> 32) as usize;
    let offset = (w[6] as usize).min(pool.len());
    let value_names: Vec<String> =
        pool[offset..].split(|&b| b == 0).take(names_count).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    Some(ParamInfo {
        id: w[0] as u32,
        flags: (w[0] >> 32) as u32
            & (param_flags::AUTOMATABLE
                | param_flags::BYPASS
                | param_flags::LIST
                | param_flags::READ_ONLY
                | param_flags::HIDDEN),
        mapping,
        default_normalized: f64::from_bits(w[5]).clamp(0.0, 1.0),
        display,
        value_names,
        name: unpack_text(&w[7..15]),
        short_name: unpack_text(&w[15..19]),
        unit: unpack_text(&w[19..21]),
        group: unpack_text(&w[21..25]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ParamDef, ParamMapping};

    fn defs() -> Vec<ParamInfo> {
        vec![
            ParamDef::float(100, "gain", "Gain", ParamMapping::linear(-60.0, 6.0), -6.0).decibels().group("Out").info,
            ParamDef::list(7, "wave", "Waveform", &["Saw", "Square", "Sine"], 1).info,
            ParamDef::bypass(0xFFFE, "bypass").info,
        ]
    }

    /// What a bridge copies from one instance's block to define the next one's must give
    /// the same table, word for word: definitions, slots, MIDI map, value names, values.
    #[test]
    fn definitions_read_back_define_an_identical_table() {
        let first = HeapBlock::new(&AreaLayout::default());
        first.block().params.define(&defs(), &[(74, 100), (1, RAW_MIDI), (128, 7)], true).unwrap();
        let read = first.block().params.read_definitions().unwrap();
        assert_eq!(read.midi_map(), [(1, RAW_MIDI), (74, 100), (128, 7)]);
        let second = HeapBlock::new(&AreaLayout::default());
        second.block().params.define(&read.params, &read.midi_map(), true).unwrap();
        let again = second.block().params.read_definitions().unwrap();
        assert_eq!(Definitions { version: read.version, ..again }, read);
        let (a, b) = (first.block().params.snapshot(), second.block().params.snapshot());
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        // The snapshot sees a difference (so the comparison above could fail).
        second.block().params.set_value(7, 0.0);
        assert_ne!(format!("{a:?}"), format!("{:?}", second.block().params.snapshot()));
    }

    /// Defining the same parameters again (a background creation, a state's MIDI map, a
    /// reload) while the host sets values never refuses a value.
    #[test]
    fn values_set_while_the_same_parameters_are_redefined_are_never_refused() {
        let heap = HeapBlock::new(&AreaLayout::default());
        let table = &heap.block().params;
        table.define(&defs(), &[], true).unwrap();
        let done = core::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..2_000 {
                    table.define(&defs(), &[(74, 100)], false).unwrap();
                }
                done.store(true, Ordering::Relaxed);
            });
            let mut sets = 0u32;
            while !done.load(Ordering::Relaxed) || sets < 1_000 {
                let value = f64::from(sets % 100) / 100.0;
                assert!(table.set_value(100, value), "set {sets} was refused");
                sets += 1;
            }
        });
        // A parameter that leaves the definitions is refused.
        table.define(&defs()[1..], &[], false).unwrap();
        assert!(!table.set_value(100, 0.5));
        assert!(table.set_value(7, 0.0));
    }

    #[test]
    fn definitions_round_trip_through_the_block() {
        let heap = HeapBlock::new(&AreaLayout::default());
        let table = &heap.block().params;
        let report = table.define(&defs(), &[(74, 100)], true).unwrap();
        assert_eq!(report.new_ids, [100, 7, 0xFFFE]);
        let read = table.read_definitions().unwrap();
        assert_eq!(read.params, defs());
        assert_eq!(read.cc_map[74], Some(100));
        assert_eq!(read.cc_map[7], None);
        assert_eq!(table.slot_of(7), Some(1));
        assert_eq!(table.slot_of(8), None);
        assert_eq!(table.value(7), Some(0.5));
        assert!(table.set_value(100, 2.0));
        assert_eq!(table.value(100), Some(1.0));
        assert!(!table.set_value(8, 0.5));
        assert!(!table.set_value(100, f64::NAN));
    }

    #[test]
    fn a_redefinition_keeps_slots_and_values_and_reports_changes() {
        let heap = HeapBlock::new(&AreaLayout::default());
        let table = &heap.block().params;
        table.define(&defs(), &[], true).unwrap();
        table.set_value(100, 0.25);
        let mut next = defs();
        next.remove(1);
        next[0].mapping = ParamMapping::linear(-40.0, 6.0);
        next.push(ParamDef::float(9, "new", "New", ParamMapping::linear(0.0, 1.0), 0.3).info);
        let before = table.snapshot();
        let report = table.define(&next, &[], false).unwrap();
        assert_eq!(report.new_ids, [9]);
        assert_eq!(report.remapped, [100, 9]);
        assert_eq!(table.value(100), Some(0.25));
        assert_eq!(table.slot_of(9), Some(3));
        assert!(!table.is_defined(7));
        assert!((table.value(9).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(table.read_definitions().unwrap().params.len(), 3);
        table.restore(&before);
        assert_eq!(table.read_definitions().unwrap().params, defs());
        assert!(table.is_defined(7) && !table.is_defined(9));
    }

    #[test]
    fn raw_midi_controllers_are_kept_apart_from_parameter_assignments() {
        let heap = HeapBlock::new(&AreaLayout::default());
        let table = &heap.block().params;
        table.define(&defs(), &[(74, 100), (PITCH_BEND, RAW_MIDI), (1, RAW_MIDI)], true).unwrap();
        let read = table.read_definitions().unwrap();
        assert_eq!(read.cc_map[74], Some(100));
        assert_eq!((read.cc_map[usize::from(PITCH_BEND)], read.raw_midi[usize::from(PITCH_BEND)]), (None, true));
        assert!(read.raw_midi[1] && !read.raw_midi[74] && !read.raw_midi[usize::from(CHANNEL_PRESSURE)]);
        assert!(table.is_raw_midi(PITCH_BEND) && table.is_raw_midi(1) && !table.is_raw_midi(74));
        assert!(!table.is_raw_midi(200), "out of the map's range");
        assert_eq!(
            table.define(&defs(), &[(130, RAW_MIDI)], false),
            Err(DefineError::BadCcMap { cc: 130, id: RAW_MIDI })
        );
        // A new map replaces the raw controllers too.
        table.define(&defs(), &[], false).unwrap();
        assert!(!table.is_raw_midi(PITCH_BEND));
    }

    #[test]
    fn bad_definitions_change_nothing() {
        let heap = HeapBlock::new(&AreaLayout::default());
        let table = &heap.block().params;
        table.define(&defs(), &[], true).unwrap();
        let version = table.version();
        let mut dup = defs();
        dup[1].id = 100;
        assert_eq!(table.define(&dup, &[], false), Err(DefineError::DuplicateId { id: 100 }));
        assert_eq!(table.define(&defs(), &[(5, 42)], false), Err(DefineError::BadCcMap { cc: 5, id: 42 }));
        let many: Vec<ParamInfo> = (0..MAX_PARAMS as u32 + 1)
            .map(|i| ParamDef::float(i + 1000, "p", "P", ParamMapping::linear(0.0, 1.0), 0.0).info)
            .collect();
        assert!(matches!(table.define(&many, &[], false), Err(DefineError::TooMany { .. })));
        let mut long = defs();
        long[1].value_names = vec!["x".repeat(40_000), String::new(), String::new()];
        assert!(matches!(table.define(&long, &[], false), Err(DefineError::NamesTooLong { .. })));
        assert_eq!(table.version(), version);
        assert_eq!(table.read_definitions().unwrap().params, defs());
    }

    #[test]
    fn a_thousand_and_twenty_four_parameters_fit_and_are_found() {
        let heap = HeapBlock::new(&AreaLayout::default());
        let table = &heap.block().params;
        let many: Vec<ParamInfo> = (0..MAX_PARAMS as u32)
            .map(|i| {
                ParamDef::float(i.wrapping_mul(2_654_435_761) >> 1, "p", "P", ParamMapping::linear(0.0, 1.0), 0.5).info
            })
            .collect();
        table.define(&many, &[], true).unwrap();
        for (slot, p) in many.iter().enumerate() {
            assert_eq!(table.slot_of(p.id), Some(slot));
        }
        let mut mappings = [None; MAX_PARAMS];
        assert!(table.read_mappings(&mut mappings).is_some());
        assert!(mappings.iter().all(Option::is_some));
    }

    #[test]
    fn the_header_check_names_a_wrong_area() {
        let area = AreaLayout { hash: 42, size: 100, align: 8 };
        let heap = HeapBlock::new(&area);
        let block = heap.block();
        assert!(block.check_header(&area).is_ok());
        let other = AreaLayout { hash: 43, size: 100, align: 8 };
        let err = block.check_header(&other).unwrap_err();
        assert!(err.to_string().contains("rebuild the engine and the control module together"), "{err}");
        assert!(block.check_header(&AreaLayout::default()).is_err());
    }
}
