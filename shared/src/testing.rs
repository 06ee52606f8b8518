//! A test harness for a plugin's engine and control module together, in process: a
//! [`Rig`] runs both in `cargo test`, without building a bundle or loading a host.
//!
//! The rig owns a shared block on the heap, creates the control instance (which
//! defines the parameters), then the engine, activates it, and renders blocks through
//! the same functions the export macros generate for the bridge: the engine's
//! `process` wrapper (flush-to-zero, the allocation check, panic capture, parameter
//! changes at their sample, the control module's timed events, the sample clock, the
//! transport, NaN checks) and the control module's `tick`, state and preset functions.
//! Like the bridge, it does not call an engine that declared itself asleep for blocks
//! that bring it nothing ([`crate::sleep`]); [`Rig::set_sleep_allowed`]`(false)` calls
//! it for every block, so a test can render both ways and compare.
//! What a test can check that a DSP unit test cannot: events at sample offsets,
//! parameter changes given in plain units by the plugin's ids, latency and tail as the
//! host reads them, tempo sync from the host transport, control-rate logic (an
//! arpeggiator or sequencer) landing on its samples, state and presets, and that
//! `process` never allocates.
//!
//! # Examples
//!
//! A gain effect with one parameter, tested through the rig:
//!
//! ```
//! use trio::control::{Control, ControlContext};
//! use trio::engine::{Block, Engine, EngineContext, Event, Tail};
//! use trio::params::{ParamDef, ParamMapping};
//! use trio::testing::{HostEvent, Rig, RigError, Setup};
//!
//! const GAIN: u32 = 0;
//!
//! /// The engine: multiplies the input by the gain, which changes at its sample.
//! struct Gain {
//!     gain: f32,
//! }
//!
//! impl Engine for Gain {
//!     type Area = ();
//!     fn new(ctx: &mut EngineContext<'_, ()>) -> Self {
//!         ctx.set_tail(Tail::None);
//!         Gain { gain: ctx.params().plain(GAIN) as f32 }
//!     }
//!     fn process(&mut self, block: &mut Block<'_, ()>) {
//!         let mut pos = 0;
//!         while let Some(timed) = block.next_event() {
//!             self.render(block, pos, timed.offset);
//!             pos = timed.offset;
//!             if let Event::Param { id: GAIN, plain, .. } = timed.event {
//!                 self.gain = plain as f32;
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
//!
//! /// The control module: defines the parameter.
//! struct GainControl;
//!
//! impl Control for GainControl {
//!     type Area = ();
//!     const STATE_FORMAT: &'static str = "gain-state";
//!     fn params() -> Vec<ParamDef> {
//!         vec![ParamDef::float(GAIN, "gain", "Gain", ParamMapping::linear(0.0, 2.0), 1.0)]
//!     }
//!     fn new(_ctx: &mut ControlContext<'_, ()>) -> Self {
//!         GainControl
//!     }
//! }
//!
//! let mut rig = Rig::<Gain, GainControl>::new(Setup { main_channels: 1, max_block: 256, ..Setup::default() })?;
//!
//! // 1000 samples of ones, in blocks of 256, with the gain halved at sample 600.
//! let input = vec![vec![1.0f32; 1000]];
//! let out = rig.render_input(&input, &[(600, HostEvent::param(GAIN, 0.5))])?;
//! assert_eq!((out[0][599], out[0][600]), (1.0, 0.5));
//! assert_eq!(rig.param(GAIN)?, 0.5);
//! assert_eq!((rig.latency(), rig.tail()), (0, Tail::None));
//!
//! // The state round-trips; a value set since is undone by loading it.
//! let state = rig.save_state()?;
//! rig.set_param(GAIN, 2.0)?;
//! rig.load_state(&state)?;
//! assert_eq!(rig.param(GAIN)?, 0.5);
//!
//! // Mistakes are errors that say what is wrong.
//! let err = rig.set_param(GAIN, 50.0).unwrap_err();
//! assert_eq!(err.to_string(), "50 is outside the range of parameter 0 (Gain): its plain values go from 0 to 2");
//! assert!(matches!(rig.set_param(7, 1.0), Err(RigError::UnknownParam { id: 7, .. })));
//!
//! // Here the doctest's allocator cannot see allocations; in the engine crate's own
//! // tests (which link `export_engine!`'s allocator) this is `Some(0)`.
//! assert!(matches!(rig.alloc_violations(), None | Some(0)));
//! # Ok::<(), RigError>(())
//! ```
//!
//! # What the rig does as the bridge does
//!
//! - **Creation**: the block's header gets the setup (sample rate, largest block,
//!   realtime or offline, main and sidechain channels) before anything else; then the
//!   control instance is created fresh (its declarations are checked and the
//!   parameters defined with their defaults), then the engine, which is activated.
//! - **Blocks**: each goes through the engine export's own wrapper, so the engine sees
//!   what it sees behind the bridge: host events and the control module's events
//!   merged in time order, parameter values applied at their sample, the transport,
//!   its sample clock. Values set with [`Rig::set_param`] reach the engine at the start
//!   of its next block, like a host's `setParamNormalized`; parameter changes given as
//!   [`HostEvent::param`] arrive at their sample, like a host's automation points.
//! - **Offline ticks**: with [`Setup::offline`], before each block the control module
//!   is ticked up to the end of that block, under the bridge's own conditions (the
//!   control logic asked for ticks, or a parameter value changed, or the engine sent it
//!   messages). Control-rate logic therefore lands on the
//!   same samples as in an offline render in a host (DESIGN §6).
//! - **State and presets** go through the control module's exports, as the bridge's
//!   control worker calls them.
//!
//! # What it does differently, and what it leaves out
//!
//! - **Real-time ticks**: the bridge's control worker ticks on a wall-clock timer (every
//!   2 ms or whatever the logic asked for; 200 ms when idle) with the real-time horizon
//!   (the engine's clock plus the largest block plus 20 ms). The rig has no timer: in
//!   real-time mode it ticks once before every block with that same horizon, so the
//!   result does not depend on how fast the test runs. Offline it ticks only as
//!   described above (the bridge's timer keeps ticking offline too; well-behaved logic
//!   gives the same music either way).
//! - **Threads**: control code runs on the test's own thread, not on a worker, with no
//!   time limit (a control module that hangs hangs the test).
//! - **No shared memory, no loading**: the block is on the heap; there are no libraries
//!   to open, so no ELF, descriptor, symbol or layout-hash checks (the plugin area is
//!   checked by type: `C::Area` must be `E::Area`). No hot reload.
//! - **No VST3 layer**: buffers must have the setup's channel count and at most
//!   [`Setup::max_block`] samples (the rig refuses the rest with an error instead of
//!   sanitising them as the bridge does for a host); no bus changes after creation; a
//!   latency change is read with [`Rig::latency`] instead of being announced through
//!   `restartComponent`; parameter texts are not formatted through the bridge (use
//!   [`Rig::param_info`] and [`ParamInfo::format`]). MIDI controllers that the plugin's
//!   MIDI map assigns become changes of their parameter, as a VST3 host sends them; other
//!   controllers, pitch bend and channel pressure are handed to the engine as the ABI's
//!   events (the engine and the control module see them; whether a given host sends them
//!   is up to the VST3 layer).
//! - **The bridge's own allocation check** wraps its whole `process`; the rig has no
//!   bridge code on the audio path, so only the engine's check applies.
//!
//! # The allocation check
//!
//! The engine's `process` runs inside `assert_no_alloc`, which counts an allocation only
//! when the program's global allocator is `assert_no_alloc`'s: a plugin's engine library
//! gets it from [`export_engine!`](crate::export_engine!), and so does every test binary
//! that links the engine crate (its integration tests, or a control crate's tests with
//! the engine as a dev-dependency). Violations are counted in the block
//! (`stats.alloc_violations`) as in a host. [`Rig::alloc_violations`] returns that count
//! when the check can see allocations and `None` when it cannot (a test binary with the
//! standard allocator): `assert_eq!(rig.alloc_violations(), Some(0))` both proves the
//! check was armed and that nothing allocated. What it cannot see, as in a host: an
//! allocation by a function of another library (another allocator), and allocation in
//! `new`, `activate` or `reset`, which may allocate. Finding out whether the check is
//! armed costs one deliberate allocation inside the check, once per test binary.
//!
//! # Panics
//!
//! Plugin code is called through the same exports as in a host, which catch every panic:
//! a panic in the engine's `process` faults the engine (it outputs silence until
//! [`Rig::reset`], as in a host) and comes back as [`RigError::EnginePanicked`] with the
//! panic's message and location; a panic in control code comes back as
//! [`RigError::Control`]. To record the message (the SDK keeps the audio path silent),
//! the rig installs a panic hook (twice per process: before its first call and after the
//! engine export installed its own) that notes the message of a panic during a rig call
//! and hands every panic on to the hook that was there before (so a panic outside
//! `process` is also printed as usual). The rig itself never panics on bad input: it
//! returns a [`RigError`].

use core::cell::{Cell, RefCell};
use core::ffi::c_void;
use core::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::abi::{self, AreaLayout, TickResult, TransportInfo, control as control_abi, read_text, status};
use crate::abi::{event_kind, process_mode, transport_flags};
use crate::block::{Definitions, HeapBlock, INFINITE_TAIL, SharedBlock, voice_activity};
use crate::control::Control;
use crate::engine::{Engine, MAX_CHANNELS, Tail, VoiceInfo};
use crate::params::ParamInfo;

/// How a [`Rig`] is set up: what a host gives in `setupProcessing` and its bus
/// arrangement.
///
/// # Examples
/// ```
/// use trio::testing::Setup;
/// let setup = Setup { sample_rate: 44_100.0, offline: true, ..Setup::default() };
/// assert_eq!((setup.max_block, setup.main_channels), (512, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setup {
    /// Sample rate in Hz, `1000..=1_536_000`.
    pub sample_rate: f64,
    /// The largest block the engine is given, `1..=65_536`; [`Rig::render`] splits into
    /// blocks of this size.
    pub max_block: usize,
    /// Channels of the main bus (an instrument's output, an effect's input and output),
    /// `1..=8`.
    pub main_channels: usize,
    /// Channels of the sidechain input, `0..=8` (0: none).
    pub sidechain_channels: usize,
    /// Render offline (a bounce): the control module catches up before each block. In
    /// real time it is ticked before each block with the real-time lookahead.
    pub offline: bool,
}

impl Default for Setup {
    /// 48 kHz, blocks of 512, stereo, no sidechain, real time.
    fn default() -> Self {
        Self { sample_rate: 48_000.0, max_block: 512, main_channels: 2, sidechain_channels: 0, offline: false }
    }
}

impl Setup {
    fn validate(&self) -> Result<(), RigError> {
        let reason = if !(self.sample_rate.is_finite() && (1_000.0..=1_536_000.0).contains(&self.sample_rate)) {
            format!("sample rate {} Hz is outside 1000..=1536000 Hz", self.sample_rate)
        } else if !(1..=1 << 16).contains(&self.max_block) {
            format!("max_block {} is outside 1..=65536 samples", self.max_block)
        } else if !(1..=MAX_CHANNELS).contains(&self.main_channels) {
            format!("main_channels {} is outside 1..={MAX_CHANNELS}", self.main_channels)
        } else if self.sidechain_channels > MAX_CHANNELS {
            format!("sidechain_channels {} is above {MAX_CHANNELS}", self.sidechain_channels)
        } else {
            return Ok(());
        };
        Err(RigError::Setup { reason })
    }
}

/// An event from the host, given to [`Rig::process`] and [`Rig::render`] with its sample
/// offset. Build one with the constructors and refine it with [`HostEvent::channel`] and
/// [`HostEvent::note_id`]; the rig checks the fields when the event is used.
///
/// # Examples
/// ```
/// use trio::testing::HostEvent;
/// let on = HostEvent::note_on(60, 0.8).channel(1).note_id(7);
/// assert_eq!(on, HostEvent::NoteOn { note: 60, velocity: 0.8, channel: 1, note_id: 7 });
/// assert_eq!(HostEvent::param(3, 440.0), HostEvent::Param { id: 3, plain: 440.0 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HostEvent {
    /// A key went down.
    NoteOn {
        /// MIDI note number `0..=127`.
        note: u8,
        /// Velocity `0..=1` (0 is a note-off, as in MIDI).
        velocity: f32,
        /// MIDI channel `0..=15`.
        channel: u8,
        /// The host's note id, or -1.
        note_id: i32,
    },
    /// A key came up.
    NoteOff {
        /// MIDI note number `0..=127`.
        note: u8,
        /// Release velocity `0..=1`.
        velocity: f32,
        /// MIDI channel `0..=15`.
        channel: u8,
        /// The host's note id, or -1.
        note_id: i32,
    },
    /// An automation point: parameter `id` takes the plain value `plain` (in its own
    /// unit: seconds, Hz, a list index...) at this sample.
    Param {
        /// The plugin's parameter id.
        id: u32,
        /// The plain value, inside the parameter's range.
        plain: f64,
    },
    /// A MIDI continuous controller. One the plugin's MIDI map assigns becomes a change
    /// of that parameter to the normalized value `value`, as a VST3 host sends it.
    MidiCc {
        /// Controller `0..=127`.
        cc: u8,
        /// Value `0..=1`.
        value: f32,
        /// MIDI channel `0..=15`.
        channel: u8,
    },
    /// The pitch wheel.
    PitchBend {
        /// `-1..=1`, 0 at rest.
        value: f32,
        /// MIDI channel `0..=15`.
        channel: u8,
    },
    /// Channel aftertouch.
    ChannelPressure {
        /// `0..=1`.
        value: f32,
        /// MIDI channel `0..=15`.
        channel: u8,
    },
    /// Polyphonic aftertouch on one note.
    PolyPressure {
        /// MIDI note number `0..=127`.
        note: u8,
        /// `0..=1`.
        value: f32,
        /// MIDI channel `0..=15`.
        channel: u8,
        /// The host's note id, or -1.
        note_id: i32,
    },
    /// Release every sounding voice.
    AllNotesOff,
}

impl HostEvent {
    /// A note-on on channel 0 without a note id.
    pub fn note_on(note: u8, velocity: f32) -> Self {
        Self::NoteOn { note, velocity, channel: 0, note_id: -1 }
    }

    /// A note-off (release velocity 0) on channel 0 without a note id.
    pub fn note_off(note: u8) -> Self {
        Self::NoteOff { note, velocity: 0.0, channel: 0, note_id: -1 }
    }

    /// Parameter `id` takes the plain value `plain` at this sample.
    pub fn param(id: u32, plain: f64) -> Self {
        Self::Param { id, plain }
    }

    /// Controller `cc` moves to `value` (`0..=1`) on channel 0.
    pub fn cc(cc: u8, value: f32) -> Self {
        Self::MidiCc { cc, value, channel: 0 }
    }

    /// The pitch wheel moves to `value` (`-1..=1`) on channel 0.
    pub fn pitch_bend(value: f32) -> Self {
        Self::PitchBend { value, channel: 0 }
    }

    /// Channel aftertouch `value` (`0..=1`) on channel 0.
    pub fn channel_pressure(value: f32) -> Self {
        Self::ChannelPressure { value, channel: 0 }
    }

    /// Aftertouch `value` (`0..=1`) on `note`, channel 0, without a note id.
    pub fn poly_pressure(note: u8, value: f32) -> Self {
        Self::PolyPressure { note, value, channel: 0, note_id: -1 }
    }

    /// The same event on MIDI channel `channel` (events without a channel are unchanged).
    pub fn channel(mut self, channel: u8) -> Self {
        match &mut self {
            Self::NoteOn { channel: c, .. }
            | Self::NoteOff { channel: c, .. }
            | Self::MidiCc { channel: c, .. }
            | Self::PitchBend { channel: c, .. }
            | Self::ChannelPressure { channel: c, .. }
            | Self::PolyPressure { channel: c, .. } => *c = channel,
            Self::Param { .. } | Self::AllNotesOff => {}
        }
        self
    }

    /// The same event with the host's note id `note_id` (events without one are
    /// unchanged).
    pub fn note_id(mut self, note_id: i32) -> Self {
        match &mut self {
            Self::NoteOn { note_id: n, .. }
            | Self::NoteOff { note_id: n, .. }
            | Self::PolyPressure { note_id: n, .. } => *n = note_id,
            _ => {}
        }
        self
    }
}

/// The host's transport, as a [`Rig`] hands it to the engine with each block. While it
/// plays with a tempo and a position, the position moves on with the samples rendered,
/// as a host's does.
///
/// The default is a host that gives no transport information at all.
///
/// # Examples
/// ```
/// use trio::testing::HostTransport;
/// let t = HostTransport::playing(120.0);
/// assert_eq!((t.tempo_bpm, t.ppq_position, t.playing), (Some(120.0), Some(0.0), true));
/// assert_eq!(HostTransport::tempo(90.0).playing, false);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HostTransport {
    /// The tempo in BPM, if the host gives one.
    pub tempo_bpm: Option<f64>,
    /// Whether the host is playing.
    pub playing: bool,
    /// The musical position in quarter notes, if the host gives one: when set with
    /// [`Rig::set_transport`], the position of the next block's start.
    pub ppq_position: Option<f64>,
    /// The time signature (numerator, denominator), if the host gives one; with a
    /// position, the rig also gives the current bar's start.
    pub time_sig: Option<(u32, u32)>,
}

impl HostTransport {
    /// Playing from the song's start at `tempo_bpm`, in 4/4.
    pub fn playing(tempo_bpm: f64) -> Self {
        Self { tempo_bpm: Some(tempo_bpm), playing: true, ppq_position: Some(0.0), time_sig: Some((4, 4)) }
    }

    /// Stopped, giving only a tempo.
    pub fn tempo(tempo_bpm: f64) -> Self {
        Self { tempo_bpm: Some(tempo_bpm), ..Self::default() }
    }

    fn info(&self) -> TransportInfo {
        let mut t = TransportInfo::default();
        if self.playing {
            t.flags |= transport_flags::PLAYING;
        }
        if let Some(bpm) = self.tempo_bpm {
            t.tempo_bpm = bpm;
            t.flags |= transport_flags::TEMPO;
        }
        if let Some(ppq) = self.ppq_position {
            t.ppq_position = ppq;
            t.flags |= transport_flags::POSITION;
        }
        if let Some((num, den)) = self.time_sig {
            t.time_sig_numerator = num;
            t.time_sig_denominator = den;
            t.flags |= transport_flags::TIME_SIG;
            let bar = f64::from(num) * 4.0 / f64::from(den);
            if let Some(ppq) = self.ppq_position
                && bar.is_finite()
                && bar > 0.0
            {
                t.bar_start_ppq = (ppq / bar).floor() * bar;
                t.flags |= transport_flags::BAR;
            }
        }
        t
    }

    /// The same transport `frames` samples later at `sample_rate`: the position moves on
    /// while playing with a tempo.
    fn after(mut self, frames: u64, sample_rate: f64) -> Self {
        if let (true, Some(bpm), Some(ppq)) = (self.playing, self.tempo_bpm, self.ppq_position.as_mut()) {
            *ppq += frames as f64 * bpm / 60.0 / sample_rate;
        }
        self
    }
}

/// Why a [`Rig`] call failed. `Display` gives a sentence saying what and why.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RigError {
    /// The [`Setup`] is out of range.
    Setup {
        /// Which value, and its range.
        reason: String,
    },
    /// The plugin defines no parameter with this id.
    UnknownParam {
        /// The id asked for.
        id: u32,
        /// The ids the plugin defines, in its order.
        defined: Vec<u32>,
    },
    /// A plain value outside the parameter's range (or not a number).
    OutOfRange {
        /// The parameter's id.
        id: u32,
        /// Its name.
        name: String,
        /// The value given.
        plain: f64,
        /// The plain value at normalized 0.
        min: f64,
        /// The plain value at normalized 1.
        max: f64,
    },
    /// Buffers or an event the rig cannot hand to the engine (wrong channel count or
    /// length, an offset beyond the block, a field out of range).
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The engine panicked. After a panic in `process` it is faulted and outputs
    /// silence until [`Rig::reset`].
    EnginePanicked {
        /// The engine function (`new`, `activate`, `reset` or `process`).
        function: &'static str,
        /// The panic's message and location, as the panic hook saw them.
        message: String,
    },
    /// The engine is faulted after an earlier panic and outputs silence: call
    /// [`Rig::reset`].
    EngineFaulted,
    /// An engine function returned an error status (not a panic).
    Engine {
        /// The engine function.
        function: &'static str,
        /// The status code ([`abi::status`]).
        code: i32,
    },
    /// A control-module call failed (a panic included).
    Control {
        /// The control export, e.g. `"trio_control_load_state"`.
        function: &'static str,
        /// The status code ([`abi::status`]).
        code: i32,
        /// The control module's message (or the panic's).
        message: String,
    },
}

impl core::fmt::Display for RigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup { reason } => write!(f, "invalid rig setup: {reason}"),
            Self::UnknownParam { id, defined } => {
                write!(f, "no parameter has id {id}; the plugin defines ids {defined:?}")
            }
            Self::OutOfRange { id, name, plain, min, max } => write!(
                f,
                "{plain} is outside the range of parameter {id} ({name}): its plain values go from {min} to {max}"
            ),
            Self::Invalid { reason } => f.write_str(reason),
            Self::EnginePanicked { function, message } => {
                write!(f, "the engine panicked in {function}: {message}")?;
                if *function == "process" {
                    f.write_str(" (it outputs silence until Rig::reset)")?;
                }
                Ok(())
            }
            Self::EngineFaulted => {
                f.write_str("the engine is faulted after an earlier panic and outputs silence: call Rig::reset")
            }
            Self::Engine { function, code } => {
                write!(f, "the engine's {function} failed with status {code}: {}", status::describe(*code))
            }
            Self::Control { function, code, message } => write!(f, "{function} failed (status {code}): {message}"),
        }
    }
}

impl std::error::Error for RigError {}

fn invalid(reason: String) -> RigError {
    RigError::Invalid { reason }
}

/// Whether allocations inside the engine's allocation check are seen: true when the
/// program's global allocator is `assert_no_alloc`'s (a test binary that links an engine
/// crate using [`export_engine!`](crate::export_engine!)). Probed once per process with
/// one deliberate allocation inside the check (counted, not printed).
///
/// # Examples
/// ```
/// // A doctest links the standard allocator: the check cannot see allocations.
/// assert!(!trio::testing::alloc_check_active());
/// ```
pub fn alloc_check_active() -> bool {
    static ACTIVE: OnceLock<bool> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let ((), made) = crate::realtime::count_allocations(|| drop(std::hint::black_box(Box::new(0u8))));
        made > 0
    })
}

thread_local! {
    /// Set while this thread is inside a rig call into plugin code.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    /// The first panic message seen during the current rig call.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook that notes panic messages during rig calls and hands every panic on
/// to the hook installed before it: once before the first rig call, and once more right
/// after the first engine is created. The engine export installs its own hook when it
/// creates an engine (silent inside `process`, where it does not hand panics on), so only
/// a hook installed after that one sees the engine's panics.
fn install_panic_hook(once: &'static std::sync::Once) {
    once.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                // The panic may come from inside the engine's allocation check: noting it
                // is the rig's allocation, not the engine's.
                assert_no_alloc::permit_alloc(|| {
                    CAUGHT.with(|c| {
                        c.borrow_mut().get_or_insert_with(|| info.to_string());
                    });
                });
            }
            previous(info);
        }));
    });
}

/// Guards [`install_panic_hook`] before the first rig call.
static HOOK_BEFORE: std::sync::Once = std::sync::Once::new();
/// Guards [`install_panic_hook`] after the first engine was created.
static HOOK_AFTER_ENGINE: std::sync::Once = std::sync::Once::new();

/// Runs `f` (a call into plugin code) and returns its result with the message of the
/// first panic it caught inside, if any.
fn capture<R>(f: impl FnOnce() -> R) -> (R, Option<String>) {
    struct Capturing;
    impl Drop for Capturing {
        fn drop(&mut self) {
            CAPTURING.with(|c| c.set(false));
        }
    }
    install_panic_hook(&HOOK_BEFORE);
    CAUGHT.with(|c| c.borrow_mut().take());
    CAPTURING.with(|c| c.set(true));
    let guard = Capturing;
    let result = f();
    drop(guard);
    (result, CAUGHT.with(|c| c.borrow_mut().take()))
}

/// A plugin's engine and control module, running together in process. See the
/// [module docs](self) for what it does like the bridge and what it does not.
///
/// `E` is the engine type (the one given to `export_engine!`), `C` the control type
/// (given to `export_control!`); their plugin areas must be the same type.
pub struct Rig<E: Engine, C: Control<Area = E::Area>> {
    setup: Setup,
    /// The control instance made by `control::__export::create::<C>` (null until then).
    control: *mut c_void,
    /// The engine instance made by `engine::__export::create::<E>` (null until then).
    engine: *mut c_void,
    /// The transport as last set, and the engine clock then.
    transport: HostTransport,
    transport_set_at: u64,
    /// The parameter definitions as last read from the block.
    defs: Definitions,
    /// What the control logic's last tick asked for: more ticks (not idle).
    wants_ticks: bool,
    /// The last block carried host parameter changes (the bridge's `params_moved`).
    params_moved: bool,
    /// The block's `values_epoch` at the last offline catch-up check.
    ticked_epoch: u64,
    /// Whether the engine sleeps, as the bridge keeps it.
    sleep: crate::sleep::SleepGate,
    /// Dropped last: both instances point into it and are destroyed in `Drop::drop`.
    block: HeapBlock,
    _types: core::marker::PhantomData<fn() -> (E, C)>,
}

impl<E: Engine, C: Control<Area = E::Area>> Rig<E, C> {
    /// Creates the block, the control instance (which defines the parameters, as for a
    /// new plugin instance in a host) and the engine, and activates the engine for
    /// `setup`.
    ///
    /// # Errors
    /// [`RigError::Setup`] for a setup out of range; [`RigError::Control`] if the control
    /// module refuses (its message says why: an invalid parameter table, a bad preset...);
    /// [`RigError::EnginePanicked`] or [`RigError::Engine`] if the engine's `new` or
    /// `activate` fails.
    ///
    /// # Examples
    /// See the [module docs](self).
    pub fn new(setup: Setup) -> Result<Self, RigError> {
        Self::build(setup, None)
    }

    /// Creates the plugin as a host gets a module's later instances (every one after the
    /// first in a process): the bridge defines the block from the parameters an earlier
    /// instance published, the host may set values at once (here `host_values`, plain, by
    /// id), the engine starts, and the control instance is created last, in the
    /// background (`CREATE_DEFINED`), keeping those values. A test that passes with
    /// [`Rig::new`] and fails here has a `Control::new` that assumes defaults or prepares
    /// something the engine needs from its first block.
    ///
    /// # Errors
    /// As [`Rig::new`]; [`RigError::UnknownParam`] or [`RigError::OutOfRange`] for a host
    /// value the plugin does not take.
    pub fn new_later(setup: Setup, host_values: &[(u32, f64)]) -> Result<Self, RigError> {
        Self::build(setup, Some(host_values))
    }

    fn build(setup: Setup, later: Option<&[(u32, f64)]>) -> Result<Self, RigError> {
        setup.validate()?;
        let area = AreaLayout::of::<E::Area>();
        let block = HeapBlock::new(&area);
        let header = &block.block().header;
        block.block().init_header(1, setup.sample_rate, setup.max_block as u32, &area);
        // Relaxed: setup values, read by the modules when they are created and activated
        // below, on this thread.
        header.main_channels.store(setup.main_channels as u32, Ordering::Relaxed);
        header.sidechain_channels.store(setup.sidechain_channels as u32, Ordering::Relaxed);
        let mode = if setup.offline { process_mode::OFFLINE } else { process_mode::REALTIME };
        header.process_mode.store(mode, Ordering::Relaxed);
        let mut rig = Self {
            setup,
            control: core::ptr::null_mut(),
            engine: core::ptr::null_mut(),
            transport: HostTransport::default(),
            transport_set_at: 0,
            defs: Definitions::default(),
            wants_ticks: false,
            params_moved: false,
            ticked_epoch: u64::MAX,
            sleep: crate::sleep::SleepGate::new(),
            block,
            _types: core::marker::PhantomData,
        };

        match later {
            // Control first: it publishes the definitions and defaults the engine reads.
            None => rig.create_control(control_abi::CREATE_FRESH)?,
            // As the bridge: the definitions of an earlier (fresh) instance, then the
            // host's values; the control instance comes after the engine.
            Some(host_values) => {
                let defs = Self::build(setup, None)?.defs.clone();
                rig.block.block().params.define(&defs.params, &defs.midi_map(), true).map_err(|e| {
                    RigError::Control {
                        function: "define",
                        code: status::REJECTED,
                        message: format!("the parameters of an earlier instance could not be defined again: {e}"),
                    }
                })?;
                rig.refresh_definitions();
                for &(id, plain) in host_values {
                    rig.set_param(id, plain)?;
                }
            }
        }

        let mut engine: *mut c_void = core::ptr::null_mut();
        let (code, panic) = capture(|| {
            // SAFETY: as above, for `E::Area`; `engine` is a local.
            unsafe { crate::engine::__export::create::<E>(rig.block.as_ptr(), &mut engine) }
        });
        // The engine export has installed its panic hook by now: put the rig's above it.
        install_panic_hook(&HOOK_AFTER_ENGINE);
        rig.engine = engine;
        if code != status::OK || engine.is_null() {
            rig.engine = core::ptr::null_mut();
            return Err(engine_error("new", code, panic));
        }
        let (code, panic) = capture(|| {
            // SAFETY: a live engine made above for `E`; `&mut rig` excludes other calls.
            unsafe { crate::engine::__export::activate::<E>(rig.engine, setup.sample_rate, setup.max_block as u32) }
        });
        if code != status::OK {
            return Err(engine_error("activate", code, panic));
        }
        if later.is_some() {
            rig.create_control(control_abi::CREATE_DEFINED)?;
        }
        Ok(rig)
    }

    /// Creates the control instance in `mode`.
    fn create_control(&mut self, mode: u32) -> Result<(), RigError> {
        let mut control: *mut c_void = core::ptr::null_mut();
        let (code, panic) = capture(|| {
            // SAFETY: the block's header is initialised for `C::Area` (the same type as
            // `E::Area`); the heap block outlives the instance (destroyed in `drop`
            // before the block is freed); `as_ptr` has provenance over block and area;
            // `control` is a local.
            unsafe { crate::control::__export::create::<C>(self.block.as_ptr(), mode, &mut control) }
        });
        self.control = control;
        if code != status::OK || control.is_null() {
            self.control = core::ptr::null_mut();
            return Err(self.control_error("trio_control_create", code, panic));
        }
        self.refresh_definitions();
        Ok(())
    }

    /// The setup the rig was created with.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The shared block: statistics (`stats`), meters, voice states, the header.
    pub fn block(&self) -> &SharedBlock {
        self.block.block()
    }

    /// The plugin's shared area.
    pub fn area(&self) -> &E::Area {
        // SAFETY: the block's header was initialised for `E::Area`'s layout and both
        // modules checked it; the heap block holds the area at `AREA_OFFSET`, page-aligned,
        // zero-filled and written only through the area's atomics; `as_ptr` has
        // provenance over all of it; the reference lives no longer than `self`.
        unsafe { crate::area::area_at(self.block.as_ptr()) }
    }

    /// The engine's sample clock: samples rendered so far, the time of the next block's
    /// start (the time base of the control module's timed events).
    pub fn clock(&self) -> u64 {
        // Acquire: pairs with the engine's Release store after each block.
        self.block().header.sample_clock.load(Ordering::Acquire)
    }

    /// The host transport given with the next block (its position moved on by the
    /// samples rendered since it was set, while it plays).
    pub fn transport(&self) -> HostTransport {
        self.transport.after(self.clock() - self.transport_set_at, self.setup.sample_rate)
    }

    /// Sets the host transport given from the next block on.
    pub fn set_transport(&mut self, transport: HostTransport) {
        self.transport = transport;
        self.transport_set_at = self.clock();
    }

    /// The latency the engine reports, in samples.
    pub fn latency(&self) -> u32 {
        // Relaxed: a setting the engine writes; read after its call returned.
        self.block().header.latency_samples.load(Ordering::Relaxed)
    }

    /// The tail the engine reports, as the host reads it from the block (where
    /// `Tail::Samples(0)` and `Tail::None` are the same value: both read as `Tail::None`).
    pub fn tail(&self) -> Tail {
        // Relaxed: as above.
        match self.block().header.tail_samples.load(Ordering::Relaxed) {
            0 => Tail::None,
            INFINITE_TAIL => Tail::Infinite,
            n => Tail::Samples(n),
        }
    }

    /// The voices the engine reports as sounding (or releasing) at the end of the last
    /// block, with their index. `age` is in samples since the note started, so a note
    /// started at sample `rig.clock() - age`.
    pub fn voices(&self) -> Vec<(usize, VoiceInfo)> {
        let block = self.block();
        // Relaxed: voice states are telemetry the engine wrote during its last block,
        // which returned on this thread.
        block
            .voices
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let active = v.active.load(Ordering::Relaxed);
                (active != voice_activity::IDLE).then(|| {
                    (
                        i,
                        VoiceInfo {
                            active: true,
                            releasing: active == voice_activity::RELEASING,
                            note: (v.note.load(Ordering::Relaxed) & 0x7f) as u8,
                            channel: (v.channel.load(Ordering::Relaxed) & 0x0f) as u8,
                            note_id: v.note_id.load(Ordering::Relaxed),
                            velocity: v.velocity.load(Ordering::Relaxed),
                            level: v.level.load(Ordering::Relaxed),
                            age: v.age.load(Ordering::Relaxed),
                        },
                    )
                })
            })
            .collect()
    }

    /// Allocations the engine made inside `process` so far, as the block counts them in
    /// a host; `None` when this program's allocator cannot see them (see the
    /// [module docs](self#the-allocation-check)).
    pub fn alloc_violations(&self) -> Option<u64> {
        // Relaxed: a counter the engine updated during calls that returned on this thread.
        alloc_check_active().then(|| self.block().stats.alloc_violations.load(Ordering::Relaxed))
    }

    /// The definition of parameter `id`, as the control module published it (name,
    /// mapping, range, default, display).
    ///
    /// # Errors
    /// [`RigError::UnknownParam`] if the plugin defines no such parameter.
    pub fn param_info(&self, id: u32) -> Result<ParamInfo, RigError> {
        self.info(id).cloned()
    }

    /// The plain value of parameter `id` in the block (the value the engine uses from its
    /// next block on; after a block, the last automation point it applied).
    ///
    /// # Errors
    /// [`RigError::UnknownParam`] if the plugin defines no such parameter.
    pub fn param(&self, id: u32) -> Result<f64, RigError> {
        let mapping = self.info(id)?.mapping;
        let normalized = self.block().params.value(id).ok_or_else(|| self.unknown(id))?;
        Ok(mapping.to_plain(normalized))
    }

    /// Sets parameter `id` to a plain value, as a host's `setParamNormalized` does: the
    /// engine applies it at the start of its next block. For a change at a given sample
    /// use [`HostEvent::param`].
    ///
    /// # Errors
    /// [`RigError::UnknownParam`], or [`RigError::OutOfRange`] for a value outside the
    /// parameter's range or not a number.
    pub fn set_param(&mut self, id: u32, plain: f64) -> Result<(), RigError> {
        let normalized = self.normalized(id, plain)?;
        if self.block().params.set_value(id, normalized) { Ok(()) } else { Err(self.unknown(id)) }
    }

    /// Renders `frames` samples of an instrument (the main bus starts as silence), in
    /// blocks of at most [`Setup::max_block`], with `events` at their sample offsets from
    /// the start of this render (`0..=frames`; unsorted is fine, ties keep their order).
    /// Returns the main bus, one `Vec` per channel.
    ///
    /// # Errors
    /// As [`Rig::process`]; the render stops at the failing block.
    pub fn render(&mut self, frames: usize, events: &[(usize, HostEvent)]) -> Result<Vec<Vec<f32>>, RigError> {
        let mut main = vec![vec![0.0f32; frames]; self.setup.main_channels];
        self.render_blocks(&mut main, &[], events)?;
        Ok(main)
    }

    /// Renders an effect: `input` (one slice per main channel, all the same length) goes
    /// through the main bus in blocks, as [`Rig::render`]. Returns the output.
    ///
    /// # Errors
    /// [`RigError::Invalid`] if `input` does not have the setup's main channels of one
    /// length; otherwise as [`Rig::process`].
    pub fn render_input<S: AsRef<[f32]>>(
        &mut self,
        input: &[S],
        events: &[(usize, HostEvent)],
    ) -> Result<Vec<Vec<f32>>, RigError> {
        self.render_sidechain(input, &[] as &[&[f32]], events)
    }

    /// As [`Rig::render_input`], with a sidechain input (one slice per sidechain channel,
    /// at most [`Setup::sidechain_channels`], each as long as the input).
    ///
    /// # Errors
    /// As [`Rig::render_input`].
    pub fn render_sidechain<S: AsRef<[f32]>, T: AsRef<[f32]>>(
        &mut self,
        input: &[S],
        sidechain: &[T],
        events: &[(usize, HostEvent)],
    ) -> Result<Vec<Vec<f32>>, RigError> {
        let mut main: Vec<Vec<f32>> = input.iter().map(|c| c.as_ref().to_vec()).collect();
        let side: Vec<&[f32]> = sidechain.iter().map(AsRef::as_ref).collect();
        self.render_blocks(&mut main, &side, events)?;
        Ok(main)
    }

    fn render_blocks(
        &mut self,
        main: &mut [Vec<f32>],
        sidechain: &[&[f32]],
        events: &[(usize, HostEvent)],
    ) -> Result<(), RigError> {
        let frames = main.first().map_or(0, Vec::len);
        self.check_channels(main.len(), main.iter().map(Vec::len), sidechain, frames)?;
        if let Some((offset, _)) = events.iter().find(|(offset, _)| *offset > frames) {
            return Err(invalid(format!("an event at offset {offset} is beyond the render's {frames} samples")));
        }
        let mut start = 0;
        loop {
            let end = (start + self.setup.max_block).min(frames);
            let last = end == frames;
            let block_events: Vec<(usize, HostEvent)> = events
                .iter()
                .filter(|(offset, _)| *offset >= start && (*offset < end || (last && *offset == end)))
                .map(|&(offset, e)| (offset - start, e))
                .collect();
            let mut channels: Vec<&mut [f32]> = main.iter_mut().map(|c| &mut c[start..end]).collect();
            let side: Vec<&[f32]> = sidechain.iter().map(|c| &c[start..end]).collect();
            self.process(&mut channels, &side, &block_events)?;
            if last {
                return Ok(());
            }
            start = end;
        }
    }

    /// Renders one block in place: `main` holds the main input (zeros for an
    /// instrument) and receives the output; `sidechain` (`&[]` for none) is read-only.
    /// `events` have sample offsets in `0..=len` (unsorted is fine, ties keep their
    /// order). Before the block the control module is ticked as the rig's mode says
    /// (see the [module docs](self)).
    ///
    /// # Errors
    /// [`RigError::Invalid`] for buffers that do not match the setup (channel counts,
    /// equal lengths, at most [`Setup::max_block`] samples) or an event out of range,
    /// [`RigError::UnknownParam`] / [`RigError::OutOfRange`] for a parameter event,
    /// [`RigError::EnginePanicked`] if the engine panicked in this block,
    /// [`RigError::EngineFaulted`] if it is faulted from an earlier panic,
    /// [`RigError::Control`] if the control module's tick failed.
    pub fn process(
        &mut self,
        main: &mut [&mut [f32]],
        sidechain: &[&[f32]],
        events: &[(usize, HostEvent)],
    ) -> Result<(), RigError> {
        let len = main.first().map_or(0, |c| c.len());
        self.check_channels(main.len(), main.iter().map(|c| c.len()), sidechain, len)?;
        if len > self.setup.max_block {
            return Err(invalid(format!(
                "a block of {len} samples is longer than the setup's max_block ({}): render splits longer audio",
                self.setup.max_block
            )));
        }
        let mut raw = Vec::with_capacity(events.len());
        for &(offset, event) in events {
            if offset > len {
                return Err(invalid(format!("an event at offset {offset} is beyond the block's {len} samples")));
            }
            raw.push(self.encode(offset as u64, &event)?);
        }
        // Stable: events at the same offset keep the order they were given in.
        raw.sort_by_key(|e| e.time);

        if self.setup.offline {
            self.catch_up_control(len)?;
        } else {
            self.tick(0)?;
        }
        if raw.iter().any(|e| e.kind == event_kind::PARAM) {
            self.params_moved = true;
        }

        let Some(ptrs) = crate::abi::ChannelPointers::new(main, sidechain) else {
            return Err(invalid(format!("at most {MAX_CHANNELS} channels per bus")));
        };
        let mode = if self.setup.offline { process_mode::OFFLINE } else { process_mode::REALTIME };
        let mut data = ptrs.process_data(len, &raw, self.transport().info(), mode);
        let Some(call) = self.sleep.before(self.block.block(), &mut data) else {
            // A sleeping engine's block with nothing for it: answered as the bridge does.
            return Ok(());
        };
        let (code, panic) = capture(|| {
            // SAFETY: a live engine made for `E` with no other call running (`&mut self`);
            // `data`'s channel pointers are `main.len()` distinct slices of `len` samples
            // (checked above) that outlive the call, the sidechain's likewise (read-only,
            // and not aliasing `main`, which the borrows guarantee), and the events are
            // `raw.len()` valid events sorted by offset.
            unsafe { crate::engine::__export::process::<E>(self.engine, &mut data) }
        });
        self.sleep.after(call, &data, code);
        match code {
            status::OK => Ok(()),
            status::FAULTED => Err(RigError::EngineFaulted),
            code => Err(engine_error("process", code, panic)),
        }
    }

    /// Whether blocks that bring a sleeping engine nothing skip it, as in the bridge
    /// (`true`, the default). With `false` every block reaches the engine: render a test
    /// both ways to check that sleeping changes nothing audible.
    pub fn set_sleep_allowed(&mut self, allowed: bool) {
        self.sleep.set_allowed(allowed);
    }

    /// Blocks the rig answered in a sleeping engine's place so far.
    pub fn slept_blocks(&self) -> u64 {
        self.sleep.slept_blocks()
    }

    /// Silences every voice and clears an engine fault (the host's reset).
    ///
    /// # Errors
    /// [`RigError::EnginePanicked`] if the engine's `reset` panicked.
    pub fn reset(&mut self) -> Result<(), RigError> {
        self.sleep.wake();
        let (code, panic) = capture(|| {
            // SAFETY: a live engine made for `E` with no other call running (`&mut self`).
            unsafe { crate::engine::__export::reset::<E>(self.engine) }
        });
        if code == status::OK { Ok(()) } else { Err(engine_error("reset", code, panic)) }
    }

    /// The plugin's state as the control module saves it (versioned JSON).
    ///
    /// # Errors
    /// [`RigError::Control`] if the control module fails.
    pub fn save_state(&mut self) -> Result<String, RigError> {
        let mut bytes: Vec<u8> = Vec::new();
        let (code, panic) = capture(|| {
            // SAFETY: a live control instance made for `C`, no other call running; `append_to_vec`
            // matches `WriteFn` and `ctx` is `&mut bytes`, alive for the call.
            unsafe {
                crate::control::__export::save_state::<C>(
                    self.control,
                    Some(crate::abi::append_to_vec),
                    (&mut bytes as *mut Vec<u8>).cast(),
                )
            }
        });
        if code != status::OK {
            return Err(self.control_error("trio_control_save_state", code, panic));
        }
        String::from_utf8(bytes).map_err(|e| RigError::Control {
            function: "trio_control_save_state",
            code: status::REJECTED,
            message: format!("the saved state is not UTF-8: {e}"),
        })
    }

    /// Loads a state (all or nothing). The engine sees the new values from its next
    /// block on.
    ///
    /// # Errors
    /// [`RigError::Control`] with the control module's reason when it rejects the state.
    pub fn load_state(&mut self, state: &str) -> Result<(), RigError> {
        let (code, panic) = capture(|| {
            // SAFETY: a live control instance made for `C`, no other call running; the
            // bytes are valid for the call.
            unsafe { crate::control::__export::load_state::<C>(self.control, state.as_ptr(), state.len()) }
        });
        if code != status::OK {
            return Err(self.control_error("trio_control_load_state", code, panic));
        }
        self.refresh_definitions();
        Ok(())
    }

    /// The names of the factory presets, in bank order.
    ///
    /// # Errors
    /// [`RigError::Control`] if the control module fails.
    pub fn presets(&mut self) -> Result<Vec<String>, RigError> {
        let (count, _) = capture(|| {
            // SAFETY: a live control instance made for `C`, no other call running.
            unsafe { crate::control::__export::preset_count::<C>(self.control) }
        });
        let mut names = Vec::with_capacity(count as usize);
        for index in 0..count {
            let (name, panic) = capture(|| {
                read_text(|buf, cap, len| {
                    // SAFETY: as above; the export writes only into the buffer it is given.
                    unsafe { crate::control::__export::preset_name::<C>(self.control, index, buf, cap, len) }
                })
            });
            match name {
                Ok(name) => names.push(name),
                Err(code) => return Err(self.control_error("trio_control_preset_name", code, panic)),
            }
        }
        Ok(names)
    }

    /// Loads factory preset `index` (it sets the sound, not the bypass). The engine sees
    /// the new values from its next block on.
    ///
    /// # Errors
    /// [`RigError::Control`] for an index out of range (the message gives the range).
    pub fn load_preset(&mut self, index: u32) -> Result<(), RigError> {
        let (code, panic) = capture(|| {
            // SAFETY: a live control instance made for `C`, no other call running.
            unsafe { crate::control::__export::load_preset::<C>(self.control, index) }
        });
        if code == status::OK { Ok(()) } else { Err(self.control_error("trio_control_load_preset", code, panic)) }
    }

    /// Ticks the control logic with horizon `until` (0: the real-time lookahead) and
    /// records whether it asked for more ticks.
    fn tick(&mut self, until: u64) -> Result<(), RigError> {
        let mut result = TickResult::default();
        let (code, panic) = capture(|| {
            // SAFETY: a live control instance made for `C`, no other call running; `result`
            // is a local.
            unsafe { crate::control::__export::tick::<C>(self.control, until, &mut result) }
        });
        if code != status::OK {
            return Err(self.control_error("trio_control_tick", code, panic));
        }
        self.wants_ticks = result.next_tick_us != 0;
        Ok(())
    }

    /// The bridge's offline catch-up (`Instance::catch_up_control`): ticks the control
    /// logic up to the end of the next block of `len` samples, when the logic asked for
    /// ticks or something changed since its last one.
    fn catch_up_control(&mut self, len: usize) -> Result<(), RigError> {
        let block = self.block.block();
        // Acquire: pairs with the engine's Release store of its clock.
        let end = block.header.sample_clock.load(Ordering::Acquire) + len as u64;
        // Relaxed: written on this thread.
        let epoch = block.params.values_epoch.load(Ordering::Relaxed);
        let moved =
            core::mem::take(&mut self.params_moved) | (core::mem::replace(&mut self.ticked_epoch, epoch) != epoch);
        if !(self.wants_ticks || moved || !block.from_engine.is_empty()) {
            return Ok(());
        }
        self.tick(end)
    }

    /// Re-reads the definitions if the control module changed them (it does so only when
    /// created and when a state changes the MIDI map).
    fn refresh_definitions(&mut self) {
        let params = &self.block.block().params;
        if (self.defs.params.is_empty() || self.defs.version != params.version())
            && let Some(fresh) = params.read_definitions()
        {
            self.defs = fresh;
        }
    }

    fn unknown(&self, id: u32) -> RigError {
        RigError::UnknownParam { id, defined: self.defs.params.iter().map(|p| p.id).collect() }
    }

    fn info(&self, id: u32) -> Result<&ParamInfo, RigError> {
        match self.defs.params.iter().position(|p| p.id == id) {
            Some(i) => Ok(&self.defs.params[i]),
            None => Err(self.unknown(id)),
        }
    }

    /// The normalized value of a plain value of parameter `id`.
    fn normalized(&self, id: u32, plain: f64) -> Result<f64, RigError> {
        let info = self.info(id)?;
        let (lo, hi) = (info.mapping.min.min(info.mapping.max), info.mapping.min.max(info.mapping.max));
        if !(lo..=hi).contains(&plain) {
            return Err(RigError::OutOfRange {
                id,
                name: info.name.clone(),
                plain,
                min: info.mapping.min,
                max: info.mapping.max,
            });
        }
        Ok(info.mapping.to_normalized(info.clamp(plain)))
    }

    /// The ABI event for a host event at `time` (a sample offset in the block).
    fn encode(&self, time: u64, event: &HostEvent) -> Result<abi::Event, RigError> {
        fn note(n: u8) -> Result<u32, RigError> {
            if n < 128 { Ok(u32::from(n)) } else { Err(invalid(format!("note {n} is not a MIDI note (0..=127)"))) }
        }
        fn unit(what: &str, v: f32, lo: f32) -> Result<f64, RigError> {
            if (lo..=1.0).contains(&v) {
                Ok(f64::from(v))
            } else {
                Err(invalid(format!("{what} {v} is outside {lo}..=1")))
            }
        }
        let channel = |c: u8| {
            if c < 16 { Ok(u32::from(c)) } else { Err(invalid(format!("MIDI channel {c} is outside 0..=15"))) }
        };
        let e = |kind, index, value, note_id, channel| abi::Event { time, kind, index, value, note_id, channel };
        Ok(match *event {
            HostEvent::NoteOn { note: n, velocity, channel: c, note_id } => {
                e(event_kind::NOTE_ON, note(n)?, unit("velocity", velocity, 0.0)?, note_id, channel(c)?)
            }
            HostEvent::NoteOff { note: n, velocity, channel: c, note_id } => {
                e(event_kind::NOTE_OFF, note(n)?, unit("release velocity", velocity, 0.0)?, note_id, channel(c)?)
            }
            HostEvent::Param { id, plain } => abi::Event::param(time, id, self.normalized(id, plain)?),
            HostEvent::MidiCc { cc, value, channel: c } => {
                if cc > 127 {
                    return Err(invalid(format!("controller {cc} is not a MIDI controller (0..=127)")));
                }
                let value = unit("controller value", value, 0.0)?;
                let channel = channel(c)?;
                match self.defs.cc_map[usize::from(cc)] {
                    Some(id) => abi::Event::param(time, id, value),
                    None => e(event_kind::MIDI_CC, u32::from(cc), value, -1, channel),
                }
            }
            HostEvent::PitchBend { value, channel: c } => {
                e(event_kind::PITCH_BEND, 0, unit("pitch bend", value, -1.0)?, -1, channel(c)?)
            }
            HostEvent::ChannelPressure { value, channel: c } => {
                e(event_kind::CHANNEL_PRESSURE, 0, unit("channel pressure", value, 0.0)?, -1, channel(c)?)
            }
            HostEvent::PolyPressure { note: n, value, channel: c, note_id } => {
                e(event_kind::POLY_PRESSURE, note(n)?, unit("poly pressure", value, 0.0)?, note_id, channel(c)?)
            }
            HostEvent::AllNotesOff => e(event_kind::ALL_NOTES_OFF, 0, 0.0, -1, 0),
        })
    }

    /// Checks buffers against the setup: `main` channels of `len` samples each, at most
    /// the largest block for a single block; a sidechain of at most the setup's channels.
    fn check_channels(
        &self,
        main: usize,
        mut lens: impl Iterator<Item = usize>,
        sidechain: &[&[f32]],
        len: usize,
    ) -> Result<(), RigError> {
        let s = &self.setup;
        if main != s.main_channels {
            return Err(invalid(format!("the rig has {} main channels; {main} were given", s.main_channels)));
        }
        if lens.any(|l| l != len) {
            return Err(invalid("the main channels have different lengths".to_owned()));
        }
        if sidechain.len() > s.sidechain_channels {
            return Err(invalid(format!(
                "the rig has {} sidechain channels; {} were given",
                s.sidechain_channels,
                sidechain.len()
            )));
        }
        if let Some(c) = sidechain.iter().find(|c| c.len() != len) {
            return Err(invalid(format!("a sidechain channel has {} samples; the main bus has {len}", c.len())));
        }
        Ok(())
    }

    /// A control call's failure, with its message: the panic's for a panic, otherwise the
    /// module's `last_error`.
    fn control_error(&self, function: &'static str, code: i32, panic: Option<String>) -> RigError {
        let message = match panic {
            Some(message) if code == status::PANIC => format!("the control module panicked: {message}"),
            _ if code == status::PANIC => status::describe(code).to_owned(),
            _ => {
                let text = read_text(|buf, cap, len| {
                    // SAFETY: `self.control` is a live instance made for `C` or null (then
                    // the message of the last failed create); the export writes only into
                    // the buffer it is given.
                    unsafe { crate::control::__export::last_error::<C>(self.control, buf, cap, len) }
                })
                .unwrap_or_default();
                if text.is_empty() { status::describe(code).to_owned() } else { text }
            }
        };
        RigError::Control { function, code, message }
    }
}

/// An engine call's failure: its panic, or its status.
fn engine_error(function: &'static str, code: i32, panic: Option<String>) -> RigError {
    match (code, panic) {
        (status::PANIC, message) => RigError::EnginePanicked {
            function,
            message: message.unwrap_or_else(|| "(the message was not recorded)".to_owned()),
        },
        (code, _) => RigError::Engine { function, code },
    }
}

impl<E: Engine, C: Control<Area = E::Area>> Drop for Rig<E, C> {
    fn drop(&mut self) {
        // Engine first, then control, as the bridge does; the block is freed after this.
        // SAFETY: each is a live instance made for its type (or null, which the exports
        // ignore), destroyed once; `&mut self` excludes other calls.
        unsafe {
            crate::engine::__export::destroy::<E>(self.engine);
            crate::control::__export::destroy::<C>(self.control);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{ControlContext, NextTick, TickContext};
    use crate::engine::{Block, EngineContext, Event};
    use crate::params::{ParamDef, ParamMapping};

    const LEVEL: u32 = 1;
    const RATE: u32 = 2;

    /// An instrument that outputs the `Level` from a host note-on to its note-off on
    /// channel 0 (reporting the note as voice 0), marks each note the control module
    /// scheduled with a -1 sample, reports a pitch bend of `b` as a latency of `100 b`
    /// samples, panics on note 0, outputs 1000 (+60 dBFS) on note 1, on note 2 plays
    /// while declaring the block silent, and declares itself asleep at the note-off of
    /// note 3. A second channel copies the first: at half its level while note 5 is held,
    /// and with one NaN in the middle of the block of note 4.
    struct Probe {
        level: f32,
        /// Level of a second channel relative to the first.
        right_scale: f32,
        /// Whether this block puts a NaN into the second channel.
        right_nan: bool,
        /// The host note sounding and the sample time it started at.
        voice: Option<(u8, u64)>,
    }

    impl Engine for Probe {
        type Area = ();
        fn new(_ctx: &mut EngineContext<'_, ()>) -> Self {
            Probe { level: 0.0, right_scale: 1.0, right_nan: false, voice: None }
        }
        fn process(&mut self, block: &mut Block<'_, ()>) {
            let (mut marks, mut marked) = ([0usize; 16], 0);
            let mut pos = 0;
            while let Some(timed) = block.next_event() {
                let level = self.level;
                block.main()[0][pos..timed.offset].fill(level);
                pos = timed.offset;
                match timed.event {
                    Event::NoteOn { note: 0, .. } => panic!("note 0 is not for me"),
                    Event::NoteOn { note: 1, .. } => self.level = 1000.0,
                    Event::NoteOn { note: 4, .. } => self.right_nan = true,
                    Event::NoteOn { note: 5, .. } => self.right_scale = 0.5,
                    // Claims a silent block while it plays: a bug the debug check catches.
                    Event::NoteOn { note: 2, .. } => {
                        self.level = 0.5;
                        block.set_silent();
                    }
                    Event::NoteOn { .. } if timed.from_control => {
                        // At most 16 marks per block (the test schedules far fewer).
                        marks[marked.min(15)] = timed.offset;
                        marked = (marked + 1).min(16);
                    }
                    Event::NoteOn { note, .. } => {
                        self.level = block.params().plain(LEVEL) as f32;
                        self.voice = Some((note, block.clock() + timed.offset as u64));
                    }
                    Event::NoteOff { note: 5, .. } => self.right_scale = 1.0,
                    Event::NoteOff { note, .. } => {
                        self.level = 0.0;
                        self.voice = None;
                        if note == 3 {
                            block.set_asleep();
                        }
                    }
                    Event::PitchBend { value, .. } => block.set_latency((value * 100.0) as u32),
                    _ => {}
                }
            }
            let (level, len) = (self.level, block.len());
            let main = block.main();
            main[0][pos..len].fill(level);
            for &m in &marks[..marked] {
                if let Some(s) = main[0].get_mut(m) {
                    *s = -1.0;
                }
            }
            if let [left, right, ..] = main {
                for (r, l) in right.iter_mut().zip(left.iter()) {
                    *r = l * self.right_scale;
                }
                if core::mem::take(&mut self.right_nan)
                    && let Some(s) = right.get_mut(len / 2)
                {
                    *s = f32::NAN;
                }
            }
            let end = block.clock() + len as u64;
            let info = match self.voice {
                Some((note, start)) => VoiceInfo { active: true, note, age: end - start, ..VoiceInfo::default() },
                None => VoiceInfo::default(),
            };
            block.publish_voice(0, &info);
        }
    }

    /// Once `Rate` is above 0, schedules a note every `Rate` samples from sample 0.
    struct Ticker {
        next: u64,
    }

    impl Control for Ticker {
        type Area = ();
        const STATE_FORMAT: &'static str = "probe-state";
        fn params() -> Vec<ParamDef> {
            vec![
                ParamDef::float(LEVEL, "level", "Level", ParamMapping::linear(0.0, 2.0), 1.0),
                ParamDef::float(RATE, "rate", "Rate", ParamMapping::stepped(0.0, 1000.0), 0.0),
            ]
        }
        fn new(_ctx: &mut ControlContext<'_, ()>) -> Self {
            Ticker { next: 0 }
        }
        fn default_midi_cc() -> Vec<(u8, u32)> {
            vec![(7, LEVEL)]
        }
        fn tick(&mut self, ctx: &mut TickContext<'_, ()>) -> NextTick {
            let rate = ctx.params().plain(RATE) as u64;
            if rate == 0 {
                return NextTick::Idle;
            }
            while self.next < ctx.horizon() {
                let on = Event::NoteOn { note: 60, velocity: 1.0, channel: 0, note_id: -1 };
                if ctx.schedule(self.next, on).is_err() {
                    break;
                }
                self.next += rate;
            }
            NextTick::After(std::time::Duration::from_millis(2))
        }
    }

    type ProbeRig = Rig<Probe, Ticker>;

    fn rig(offline: bool) -> ProbeRig {
        ProbeRig::new(Setup { main_channels: 1, max_block: 64, offline, ..Setup::default() }).unwrap()
    }

    /// A later instance: the host's values are there before the engine and the control
    /// logic start, and survive the control instance's creation; the control logic then
    /// works as in a fresh instance (its notes land on their samples).
    #[test]
    fn a_later_instance_keeps_the_hosts_values_and_plays_like_a_fresh_one() {
        let setup = Setup { main_channels: 1, max_block: 64, offline: true, ..Setup::default() };
        let mut later = ProbeRig::new_later(setup, &[(LEVEL, 0.5), (RATE, 100.0)]).unwrap();
        assert_eq!(later.param(LEVEL).unwrap(), 0.5);
        assert_eq!(later.param(RATE).unwrap(), 100.0);
        let mut fresh = ProbeRig::new(setup).unwrap();
        fresh.set_param(LEVEL, 0.5).unwrap();
        fresh.set_param(RATE, 100.0).unwrap();
        let (a, b) = (later.render(400, &[]).unwrap(), fresh.render(400, &[]).unwrap());
        assert_eq!(a, b);
        let marks: Vec<usize> = (0..400).filter(|&i| a[0][i] == -1.0).collect();
        assert_eq!(marks, [0, 100, 200, 300]);
        assert!(matches!(ProbeRig::new_later(setup, &[(99, 0.0)]), Err(RigError::UnknownParam { id: 99, .. })));
    }

    #[test]
    fn host_events_land_on_their_samples_across_blocks() {
        let mut r = rig(true);
        let out = r.render(200, &[(150, HostEvent::note_off(61)), (10, HostEvent::note_on(61, 0.5))]).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0][..10].iter().all(|&s| s == 0.0));
        assert!(out[0][10..150].iter().all(|&s| s == 1.0));
        assert!(out[0][150..].iter().all(|&s| s == 0.0));
        assert_eq!(r.clock(), 200);
        // A parameter change at its sample: a controller the MIDI map assigns is one.
        let events =
            [(0, HostEvent::note_on(61, 1.0)), (30, HostEvent::cc(7, 0.25)), (30, HostEvent::note_on(62, 1.0))];
        let out = r.render(100, &events).unwrap();
        assert_eq!((out[0][29], out[0][30]), (1.0, 0.5));
        assert_eq!(r.param(LEVEL).unwrap(), 0.5);
        // The voice report: note 62 started 70 samples before the end, at sample 230.
        let voices = r.voices();
        assert_eq!(voices.len(), 1);
        assert_eq!((voices[0].1.note, r.clock() - voices[0].1.age), (62, 230));
        // An event at the very end of a render is applied in its last block.
        r.render(64, &[(64, HostEvent::pitch_bend(0.5))]).unwrap();
        assert_eq!(r.latency(), 50);
        assert_eq!(r.tail(), Tail::None);
    }

    #[test]
    fn control_events_are_sample_exact_offline_and_in_real_time() {
        for offline in [true, false] {
            let mut r = rig(offline);
            r.set_param(RATE, 100.0).unwrap();
            let out = r.render(512, &[]).unwrap();
            let marks: Vec<usize> = (0..512).filter(|&i| out[0][i] == -1.0).collect();
            assert_eq!(marks, [0, 100, 200, 300, 400, 500], "offline: {offline}");
            assert_eq!(r.block().stats.late_events.load(Ordering::Relaxed), 0, "offline: {offline}");
        }
    }

    #[test]
    fn mistakes_are_errors_that_say_what_is_wrong() {
        let mut r = rig(false);
        let e = r.set_param(9, 1.0).unwrap_err();
        assert_eq!(e.to_string(), "no parameter has id 9; the plugin defines ids [1, 2]");
        let e = r.set_param(LEVEL, f64::NAN).unwrap_err();
        assert_eq!(e.to_string(), "NaN is outside the range of parameter 1 (Level): its plain values go from 0 to 2");
        let e = r.render(10, &[(11, HostEvent::note_on(60, 1.0))]).unwrap_err();
        assert_eq!(e.to_string(), "an event at offset 11 is beyond the render's 10 samples");
        let e = r.render(10, &[(1, HostEvent::note_on(128, 1.0))]).unwrap_err();
        assert_eq!(e.to_string(), "note 128 is not a MIDI note (0..=127)");
        let e = r.render(10, &[(1, HostEvent::note_on(60, 1.0).channel(16))]).unwrap_err();
        assert_eq!(e.to_string(), "MIDI channel 16 is outside 0..=15");
        let e = r.render(10, &[(1, HostEvent::pitch_bend(1.5))]).unwrap_err();
        assert_eq!(e.to_string(), "pitch bend 1.5 is outside -1..=1");
        let e = r.render_input(&[vec![0.0; 4], vec![0.0; 4]], &[]).unwrap_err();
        assert_eq!(e.to_string(), "the rig has 1 main channels; 2 were given");
        let mut long = [0.0f32; 65];
        let e = r.process(&mut [&mut long[..]], &[], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a block of 65 samples is longer than the setup's max_block (64): render splits longer audio"
        );
        let e = r.load_state("{}").unwrap_err();
        assert!(e.to_string().starts_with("trio_control_load_state failed (status -5): state rejected"), "{e}");
        let e = r.load_preset(3).unwrap_err();
        assert!(e.to_string().ends_with("preset index 3 is out of range (0..0)"), "{e}");
        let e = ProbeRig::new(Setup { max_block: 0, ..Setup::default() }).err().unwrap();
        assert_eq!(e.to_string(), "invalid rig setup: max_block 0 is outside 1..=65536 samples");
    }

    #[test]
    fn an_engine_panic_is_an_error_with_its_message_and_faults_the_engine() {
        let mut r = rig(false);
        let e = r.render(10, &[(3, HostEvent::note_on(0, 1.0))]).unwrap_err();
        let RigError::EnginePanicked { function: "process", message } = &e else { panic!("{e:?}") };
        assert!(message.contains("note 0 is not for me") && message.contains("testing.rs"), "{message}");
        assert_eq!(r.render(10, &[]).unwrap_err(), RigError::EngineFaulted);
        r.reset().unwrap();
        r.render(10, &[]).unwrap();
    }

    #[test]
    fn a_block_declared_silent_that_is_not_fails_in_debug_builds() {
        let mut r = rig(false);
        let e = r.render(64, &[(3, HostEvent::note_on(2, 1.0))]).unwrap_err();
        let RigError::EnginePanicked { message, .. } = &e else { panic!("{e:?}") };
        assert!(message.contains("declared a block silent that is not"), "{message}");
    }

    #[test]
    fn the_block_that_declares_sleep_keeps_the_end_of_its_sound() {
        let mut r = rig(false);
        r.render(64, &[(0, HostEvent::note_on(3, 1.0))]).unwrap();
        // Asleep from the next block on; this one still plays up to the note-off.
        let out = r.render(64, &[(40, HostEvent::note_off(3))]).unwrap();
        assert!(out[0][..40].iter().all(|&s| s == 1.0), "{:?}", &out[0][..40]);
        assert!(out[0][40..].iter().all(|&s| s == 0.0), "{:?}", &out[0][40..]);
        let peak = |r: &ProbeRig| r.block().meters.peak[0].load(core::sync::atomic::Ordering::Relaxed);
        assert_eq!(peak(&r), 1.0, "the declaring block is metered as it sounds");
        let slept = r.slept_blocks();
        let out = r.render(64, &[]).unwrap();
        assert!(out[0].iter().all(|&s| s == 0.0));
        assert_eq!(r.slept_blocks(), slept + 1, "the next block was not skipped");
        assert_eq!(peak(&r), 0.0, "a skipped block is metered silent");
    }

    #[test]
    fn output_above_40_dbfs_is_silenced_and_counted() {
        let mut r = rig(false);
        let out = r.render(64, &[(0, HostEvent::note_on(60, 1.0))]).unwrap();
        assert!(out[0].iter().all(|&s| s == 1.0));
        let out = r.render(64, &[(10, HostEvent::note_on(1, 1.0))]).unwrap();
        assert!(out[0].iter().all(|&s| s == 0.0), "a block above +40 dBFS is silenced whole");
        let meters = &r.block().meters;
        let level = |m: &atomic_float::AtomicF32| m.load(core::sync::atomic::Ordering::Relaxed);
        assert_eq!((level(&meters.peak[0]), level(&meters.rms[0])), (0.0, 0.0), "and meters as silence");
        let stats = &r.block().stats;
        assert_eq!(stats.runaway_blocks.load(core::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(stats.nonfinite_blocks.load(core::sync::atomic::Ordering::Relaxed), 0);
        let out = r.render(64, &[(0, HostEvent::note_off(1)), (0, HostEvent::note_on(60, 1.0))]).unwrap();
        assert!(out[0].iter().all(|&s| s == 1.0), "the next sane block plays");
        let meters = &r.block().meters;
        assert_eq!(level(&meters.peak[0]), 1.0, "and meters as it sounds");
        assert_eq!(level(&meters.rms[0]), 1.0);
    }

    /// A second channel that copies the first is compared rather than scanned: it meters
    /// like the first, one that differs meters as itself, and a copy but for one NaN
    /// sample silences the block like any NaN.
    #[test]
    fn a_second_channel_is_checked_and_metered_whether_or_not_it_copies_the_first() {
        let setup = Setup { main_channels: 2, max_block: 64, ..Setup::default() };
        let mut r = ProbeRig::new(setup).unwrap();
        let level = |r: &ProbeRig, c: usize| {
            let m = &r.block().meters;
            (
                m.peak[c].load(core::sync::atomic::Ordering::Relaxed),
                m.rms[c].load(core::sync::atomic::Ordering::Relaxed),
            )
        };
        let out = r.render(64, &[(0, HostEvent::note_on(60, 1.0))]).unwrap();
        assert!(out[1].iter().all(|&s| s == 1.0), "the copy plays");
        assert_eq!((level(&r, 0), level(&r, 1)), ((1.0, 1.0), (1.0, 1.0)));
        let out = r.render(64, &[(0, HostEvent::note_on(5, 1.0))]).unwrap();
        assert!(out[0].iter().all(|&s| s == 1.0) && out[1].iter().all(|&s| s == 0.5));
        assert_eq!((level(&r, 0), level(&r, 1)), ((1.0, 1.0), (0.5, 0.5)), "each channel its own levels");
        let stats = &r.block().stats;
        assert_eq!(stats.nonfinite_blocks.load(core::sync::atomic::Ordering::Relaxed), 0);
        let out = r.render(64, &[(0, HostEvent::note_off(5)), (0, HostEvent::note_on(4, 1.0))]).unwrap();
        assert!(out.iter().flatten().all(|&s| s == 0.0), "a NaN in the copy silences the block");
        let stats = &r.block().stats;
        assert_eq!(stats.nonfinite_blocks.load(core::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!((level(&r, 0), level(&r, 1)), ((0.0, 0.0), (0.0, 0.0)));
    }

    #[test]
    fn state_transport_and_the_allocation_check() {
        let mut r = rig(true);
        r.set_param(LEVEL, 1.5).unwrap();
        let state = r.save_state().unwrap();
        assert!(state.contains("probe-state"), "{state}");
        r.set_param(LEVEL, 0.0).unwrap();
        r.load_state(&state).unwrap();
        assert_eq!(r.param(LEVEL).unwrap(), 1.5);
        assert!(r.presets().unwrap().is_empty());
        assert_eq!(r.param_info(RATE).unwrap().mapping, ParamMapping::stepped(0.0, 1000.0));

        r.set_transport(HostTransport::playing(120.0));
        r.render(48_000, &[]).unwrap();
        // One second at 120 BPM: two quarter notes.
        assert_eq!(r.transport().ppq_position, Some(2.0));
        let t = r.block().transport.read().unwrap();
        assert_eq!((t.tempo_bpm, t.playing, t.time_sig), (120.0, true, (4, 4)));

        // This test binary has the standard allocator: the check sees nothing.
        assert!(!alloc_check_active());
        assert_eq!(r.alloc_violations(), None);
    }
}
