//! The control side of the SDK: the [`Control`] trait a plugin's control module
//! implements, and [`export_control!`](crate::export_control!), which turns it into the
//! control library the bridge loads (and reloads while audio plays).
//!
//! ```
//! use trio::control::{Control, ControlContext};
//! use trio::params::{ParamDef, ParamMapping};
//!
//! pub struct GainControl;
//!
//! impl Control for GainControl {
//!     type Area = ();
//!     const STATE_FORMAT: &'static str = "my-gain-state";
//!
//!     fn params() -> Vec<ParamDef> {
//!         vec![
//!             ParamDef::float(0, "gain", "Gain", ParamMapping::linear(-60.0, 12.0), 0.0).decibels(),
//!             ParamDef::bypass(1, "bypass"),
//!         ]
//!     }
//!
//!     fn new(_ctx: &mut ControlContext<'_, ()>) -> Self {
//!         GainControl
//!     }
//! }
//! // In the control crate's lib.rs: trio::export_control!(GainControl);
//! ```
//!
//! # What the framework does
//!
//! From [`Control::params`] it publishes every parameter's definition (names, mapping,
//! default, display rule) into the shared block, where the bridge reads them to answer
//! hosts without a thread hand-off, and the engine reads values by id. It saves and loads
//! the state as versioned JSON ([`crate::state`]: parameter values by key, the preset
//! name, the MIDI CC map, plus the plugin's own fields), runs the plugin's migration hook
//! for older versions, serves factory presets, and calls [`Control::tick`] for
//! control-rate logic.
//!
//! # Threads
//!
//! Every method runs on the bridge's control worker thread, one call at a time; it may
//! allocate and take its time (a call that takes longer than the bridge's limit, 5 s by
//! default, marks the module hung). Nothing here runs on the audio thread.
//!
//! # Control-rate logic: the same music in real time and offline
//!
//! [`Control::tick`] schedules timed events into the engine's queue ahead of the
//! engine's sample clock: every event before [`TickContext::horizon`]. In real time the
//! framework ticks on a timer and the horizon is the clock plus a lookahead; when the host
//! renders offline (faster than real time), the bridge ticks before each block with the
//! block's end as the horizon, and waits for the tick. Logic that schedules everything
//! before the horizon, and keeps its position in the plugin area (not in the control
//! value, which a reload replaces), plays the same notes at the same samples in both
//! modes.

use core::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::abi::{self, TickResult, param_flags, process_mode};
use crate::area::Area;
use crate::block::{FROM_ENGINE_CAPACITY, SharedBlock, Statistics, TO_ENGINE_CAPACITY, Transport};
use crate::engine::Event;
use crate::params::ParamDef;
use crate::ring::{Consumer, Producer};
use crate::state::{PresetData, StateData, StateSchema};

/// A plugin's control module.
pub trait Control: Sized + Send + 'static {
    /// The plugin's shared area type ([`crate::area`](mod@crate::area)); `()` for none. Must be the
    /// engine's.
    type Area: Area;

    /// The `format` tag of this plugin's saved states, e.g. `"my-synth-state"`.
    const STATE_FORMAT: &'static str;

    /// The `format` tag of this plugin's preset files.
    const PRESET_FORMAT: &'static str = "trio-preset";

    /// The state version this build writes (and the newest it reads). Raise it when the
    /// meaning of saved data changes, and teach [`Control::migrate_state`] the step.
    const STATE_VERSION: u32 = 1;

    /// The parameters, in the order hosts list them. Ids are the plugin's own and must
    /// stay stable across versions (saved projects and automation refer to them).
    fn params() -> Vec<ParamDef>;

    /// Creates the control value. Parameters are already defined and hold their values.
    ///
    /// Apart from a module's first instance, the bridge creates this value in the
    /// background: the host may already have set parameter values and the engine may
    /// already be processing blocks when it runs. Do not prepare here anything the engine
    /// needs from its first block on; the engine's own `new` is the place for that.
    /// [`crate::testing::Rig::new_later`] creates a plugin in that order for tests.
    fn new(ctx: &mut ControlContext<'_, Self::Area>) -> Self;

    /// Factory presets. The default has none.
    fn presets() -> Vec<Preset> {
        Vec::new()
    }

    /// The MIDI CC map a new instance starts with: `(controller, parameter id)`. Hosts
    /// send those controllers as changes of those parameters. The default is empty.
    fn default_midi_cc() -> Vec<(u8, u32)> {
        Vec::new()
    }

    /// The MIDI controllers the engine receives as events ([`crate::engine::Event::PitchBend`],
    /// [`crate::engine::Event::ChannelPressure`], [`crate::engine::Event::MidiCc`]) rather
    /// than as parameter changes. VST3 gives plugins no MIDI controller events: hosts map
    /// controllers to parameters (`IMidiMapping`). For each controller listed here the
    /// bridge lists a hidden, non-automatable parameter, maps the controller to it on
    /// every channel, and turns its changes back into events at their sample (channel 0:
    /// VST3 does not say which channel a mapped controller came on). A controller that
    /// the MIDI CC map assigns to a parameter goes to the parameter. The default is none.
    fn midi_controllers() -> Vec<MidiController> {
        Vec::new()
    }

    /// Brings a saved state from version `from` to `from + 1` by editing the JSON object
    /// (the framework then reads `params`, `preset` and `midi_cc`). Called once per
    /// version step. The default changes nothing.
    ///
    /// # Errors
    /// A sentence saying why the document cannot be migrated; nothing is loaded.
    fn migrate_state(from: u32, doc: &mut Map<String, Value>) -> Result<(), String> {
        let _ = (from, doc);
        Ok(())
    }

    /// Adds the plugin's own fields to a state being saved. The default adds none.
    fn save_extra(&self, extra: &mut Map<String, Value>) {
        let _ = extra;
    }

    /// Reads the plugin's own fields of a state being loaded (after migration). Called
    /// before any parameter value changes; an error rejects the whole state.
    ///
    /// # Errors
    /// A sentence naming the field and the problem.
    fn load_extra(&mut self, extra: &Map<String, Value>) -> Result<(), String> {
        let _ = extra;
        Ok(())
    }

    /// Control-rate work: schedule every timed event before [`TickContext::horizon`]
    /// into the engine's queue, follow the engine's messages. Return when to tick next.
    /// The default does nothing and stays idle.
    fn tick(&mut self, ctx: &mut TickContext<'_, Self::Area>) -> NextTick {
        let _ = ctx;
        NextTick::Idle
    }

    /// The text for a plain value of a parameter defined with
    /// [`ParamDef::custom_display`]; `None` falls back to a plain number.
    fn format_value(&self, id: u32, plain: f64) -> Option<String> {
        let _ = (id, plain);
        None
    }

    /// Parses text typed for a parameter with a custom display into a plain value;
    /// `None` rejects the text.
    fn parse_value(&self, id: u32, text: &str) -> Option<f64> {
        let _ = (id, text);
        None
    }
}

/// When [`Control::tick`] wants to run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextTick {
    /// Nothing to do until something changes: the framework ticks it again when a
    /// parameter moves or the engine sends it a message, and every [`IDLE_TICK`] while the
    /// host has the plugin active. A plugin the host has switched off (or not yet on) is
    /// not ticked until it is switched on: it costs nothing while loaded and unused.
    Idle,
    /// After this long (at most [`IDLE_TICK`]; at least 1 ms).
    After(Duration),
}

/// How often an idle control module is ticked in real time when nothing happens, while
/// the host has the plugin active or processing (never while it is switched off). A
/// parameter that moves or a message from the engine gets it ticked sooner (the bridge
/// checks for those every 20 ms while blocks come); offline, the bridge ticks it before
/// the next block.
pub const IDLE_TICK: Duration = Duration::from_millis(200);

/// Lookahead beyond the largest block when `header.control_lookahead_samples` is 0.
pub const DEFAULT_LOOKAHEAD_S: f64 = 0.020;

/// A factory preset: a JSON preset file (see [`crate::state`]) or values given in code.
#[derive(Clone, Debug, PartialEq)]
pub enum Preset {
    /// The text of a preset file, e.g. `include_str!("../presets/init.json")`.
    Json(&'static str),
    /// A name and `(parameter id, plain value)` pairs; missing parameters take their
    /// defaults.
    Values(String, Vec<(u32, f64)>),
}

/// A MIDI controller an engine can receive as events ([`Control::midi_controllers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MidiController {
    /// Continuous controller 0..=127 ([`crate::engine::Event::MidiCc`]).
    Cc(u8),
    /// Channel pressure, "aftertouch" ([`crate::engine::Event::ChannelPressure`]).
    ChannelPressure,
    /// The pitch wheel ([`crate::engine::Event::PitchBend`]).
    PitchBend,
}

impl MidiController {
    /// Its number in the block's MIDI map (VST3's controller numbers: CC 0..=127,
    /// [`crate::block::CHANNEL_PRESSURE`], [`crate::block::PITCH_BEND`]).
    pub fn number(self) -> u8 {
        match self {
            Self::Cc(cc) => cc,
            Self::ChannelPressure => crate::block::CHANNEL_PRESSURE,
            Self::PitchBend => crate::block::PITCH_BEND,
        }
    }
}

/// The block's MIDI map: the CC map's assignments, then the raw controllers no
/// assignment takes.
fn midi_map(cc_map: &[(u8, u32)], raw: &[u8]) -> Vec<(u8, u32)> {
    let mut map = cc_map.to_vec();
    map.extend(raw.iter().filter(|&&n| !cc_map.iter().any(|&(cc, _)| cc == n)).map(|&n| (n, crate::block::RAW_MIDI)));
    map
}

/// The parameters' plain values as the control module reads them from the block.
pub struct ControlParams<'a> {
    shared: &'a SharedBlock,
    defs: &'a [ParamDef],
}

impl ControlParams<'_> {
    /// The plain value of parameter `id` (NaN for an id the plugin does not define).
    pub fn plain(&self, id: u32) -> f64 {
        match (self.defs.iter().find(|d| d.id() == id), self.shared.params.value(id)) {
            (Some(def), Some(n)) => def.info.mapping.to_plain(n),
            (Some(def), None) => def.default_plain(),
            _ => f64::NAN,
        }
    }

    /// Whether a switch parameter is on (plain value ≥ 0.5).
    pub fn is_on(&self, id: u32) -> bool {
        self.plain(id) >= 0.5
    }

    /// The list index of a list parameter (0 when undefined).
    pub fn index(&self, id: u32) -> usize {
        let v = self.plain(id);
        if v.is_finite() && v > 0.0 { v.round() as usize } else { 0 }
    }

    /// The definition of parameter `id`.
    pub fn def(&self, id: u32) -> Option<&ParamDef> {
        self.defs.iter().find(|d| d.id() == id)
    }
}

/// What every [`Control`] method can see: the block's setup, the parameters, the area.
pub struct ControlContext<'a, A> {
    shared: &'a SharedBlock,
    area: &'a A,
    defs: &'a [ParamDef],
}

impl<'a, A: Area> ControlContext<'a, A> {
    /// The parameters' values.
    pub fn params(&self) -> ControlParams<'_> {
        ControlParams { shared: self.shared, defs: self.defs }
    }

    /// Sets parameter `id` to a plain value (clamped into its range); the engine applies
    /// it at its next block. `false` for an unknown id or a non-finite value.
    pub fn set_param(&mut self, id: u32, plain: f64) -> bool {
        match self.defs.iter().find(|d| d.id() == id) {
            Some(def) if plain.is_finite() => {
                self.shared.params.set_value(id, def.info.mapping.to_normalized(def.info.clamp(plain)))
            }
            _ => false,
        }
    }

    /// The plugin's shared area.
    pub fn area(&self) -> &'a A {
        self.area
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> f64 {
        self.shared.sample_rate()
    }

    /// The host's largest block, in samples.
    pub fn max_block(&self) -> u32 {
        // Relaxed: a setup value.
        self.shared.header.max_block_size.load(Ordering::Relaxed)
    }

    /// The engine's sample clock: the sample time of the start of its next block.
    pub fn sample_clock(&self) -> u64 {
        // Acquire: pairs with the engine's Release store after each block.
        self.shared.header.sample_clock.load(Ordering::Acquire)
    }

    /// The host transport as of the engine's last block (`None` while it is being
    /// written; try again at the next tick).
    pub fn transport(&self) -> Option<Transport> {
        self.shared.transport.read()
    }

    /// Whether the host renders offline (faster than real time).
    pub fn is_offline(&self) -> bool {
        // Relaxed: a setup value.
        self.shared.header.process_mode.load(Ordering::Relaxed) == process_mode::OFFLINE
    }

    /// Whether the host is processing audio (between `setProcessing(true)` and
    /// `setProcessing(false)` or deactivation): while it is not, the engine renders no
    /// block and the sample clock stands still, so timed events wait.
    pub fn is_processing(&self) -> bool {
        self.shared.header.has_state_flag(crate::block::state_flags::PROCESSING)
    }
}

/// The event queue to the engine was full; the event was not scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

impl core::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the engine's event queue ({TO_ENGINE_CAPACITY} events) is full: schedule less far ahead")
    }
}

impl std::error::Error for QueueFull {}

/// What [`Control::tick`] can see and do: everything of [`ControlContext`], plus the
/// engine's event queue and its messages.
pub struct TickContext<'a, A> {
    base: ControlContext<'a, A>,
    horizon: u64,
    queue: &'a mut Producer<'static, abi::Event, TO_ENGINE_CAPACITY>,
    messages: &'a mut Consumer<'static, abi::Event, FROM_ENGINE_CAPACITY>,
}

impl<'a, A: Area> core::ops::Deref for TickContext<'a, A> {
    type Target = ControlContext<'a, A>;
    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

impl<A: Area> core::ops::DerefMut for TickContext<'_, A> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.base
    }
}

impl<A: Area> TickContext<'_, A> {
    /// Schedule every event whose sample time is before this: the engine's clock plus the
    /// lookahead in real time, the end of the block about to be rendered offline.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Queues `event` for the engine at absolute sample time `time` (the engine's clock,
    /// see [`ControlContext::sample_clock`]). Events are kept in time order: one earlier
    /// than an event already queued plays at that event's time. One in the past plays at
    /// the start of the engine's next block and is counted as late.
    ///
    /// # Errors
    /// [`QueueFull`]: nothing was queued; try again at the next tick.
    pub fn schedule(&mut self, time: u64, event: Event) -> Result<(), QueueFull> {
        let header = &self.base.shared.header;
        // Relaxed: only the serving control instance writes it, from the control worker.
        let last = header.to_engine_last.load(Ordering::Relaxed);
        let time = time.max(last);
        match self.queue.push(crate::engine::encode(time, &event)) {
            Ok(()) => {
                header.to_engine_last.store(time, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                Statistics::bump(&self.base.shared.stats.events_dropped);
                Err(QueueFull)
            }
        }
    }

    /// Free places in the engine's queue.
    pub fn queue_space(&self) -> usize {
        self.queue.free_slots()
    }

    /// The next message from the engine (MIDI controllers it received, the plugin's own
    /// messages), with the engine's sample time at which it was sent.
    pub fn next_message(&mut self) -> Option<(u64, Event)> {
        loop {
            let raw = self.messages.pop().ok()?;
            if let Some(event) = crate::engine::decode(&raw) {
                return Some((raw.time, event));
            }
        }
    }
}

/// The module's view of one instance's last failure, for `last_error`.
fn remember(slot: &mut String, message: String, code: i32) -> i32 {
    *slot = message;
    code
}

/// One control instance behind the exports.
pub struct Runner<C: Control> {
    control: C,
    shared: &'static SharedBlock,
    area: &'static C::Area,
    defs: Vec<ParamDef>,
    presets: Vec<PresetData>,
    default_cc_map: Vec<(u8, u32)>,
    cc_map: Vec<(u8, u32)>,
    /// [`Control::midi_controllers`], as map numbers.
    raw_midi: Vec<u8>,
    preset: Option<String>,
    last_error: String,
    /// Set when the instance adopted a block (a reload) until its first state load or
    /// tick: the parameters whose mapping this build changed (or newly defined).
    handover: Option<Vec<u32>>,
    queue: Producer<'static, abi::Event, TO_ENGINE_CAPACITY>,
    messages: Consumer<'static, abi::Event, FROM_ENGINE_CAPACITY>,
}

/// Checks a plugin's parameter table as a whole.
fn validate_params(defs: &[ParamDef]) -> Result<(), String> {
    if defs.len() > crate::block::MAX_PARAMS {
        return Err(format!(
            "the plugin defines {} parameters; the shared block holds {}",
            defs.len(),
            crate::block::MAX_PARAMS
        ));
    }
    for (i, d) in defs.iter().enumerate() {
        d.validate()?;
        if let Some(other) = defs[..i].iter().find(|o| o.id() == d.id()) {
            return Err(format!(
                "parameters {:?} and {:?} both have the id {}: give each its own",
                other.key,
                d.key,
                d.id()
            ));
        }
        if let Some(other) = defs[..i].iter().find(|o| o.key == d.key) {
            return Err(format!(
                "parameters {} and {} both have the key {:?}: give each its own",
                other.id(),
                d.id(),
                d.key
            ));
        }
    }
    Ok(())
}

/// The state schema of control module `C` with these parameters and default MIDI map.
fn schema_of<'a, C: Control>(defs: &'a [ParamDef], default_cc_map: &'a [(u8, u32)]) -> StateSchema<'a> {
    StateSchema {
        format: C::STATE_FORMAT,
        preset_format: C::PRESET_FORMAT,
        version: C::STATE_VERSION,
        params: defs,
        default_cc_map,
        migrate: &C::migrate_state,
    }
}

/// A control module's declarations, checked: what [`Control::params`],
/// [`Control::default_midi_cc`] and [`Control::presets`] return.
struct Declarations {
    defs: Vec<ParamDef>,
    default_cc_map: Vec<(u8, u32)>,
    /// [`Control::midi_controllers`], as map numbers.
    raw_midi: Vec<u8>,
    presets: Vec<PresetData>,
}

/// Reads and checks `C`'s declarations, as the framework does when a host creates an
/// instance. The error names the parameter, preset or controller at fault.
fn declarations<C: Control>() -> Result<Declarations, String> {
    let defs = C::params();
    validate_params(&defs).map_err(|e| format!("the parameter table is invalid: {e}"))?;
    let default_cc_map = C::default_midi_cc();
    for &(cc, id) in &default_cc_map {
        if cc > 127 {
            return Err(format!("default_midi_cc maps controller {cc}, which is not a MIDI controller (0..=127)"));
        }
        if !defs.iter().any(|d| d.id() == id) {
            return Err(format!("default_midi_cc maps controller {cc} to parameter id {id}, which is not defined"));
        }
    }
    let mut raw_midi: Vec<u8> = Vec::new();
    for controller in C::midi_controllers() {
        let n = controller.number();
        if let MidiController::Cc(cc) = controller
            && cc > 127
        {
            return Err(format!("midi_controllers lists MidiController::Cc({cc}): MIDI controllers go from 0 to 127"));
        }
        if let Some(&(_, id)) = default_cc_map.iter().find(|&&(cc, _)| cc == n) {
            return Err(format!(
                "midi_controllers lists {controller:?}, which default_midi_cc also assigns to parameter {id}: \
                 choose one (a parameter, or events for the engine)"
            ));
        }
        if raw_midi.contains(&n) {
            return Err(format!("midi_controllers lists {controller:?} twice"));
        }
        raw_midi.push(n);
    }
    let schema = schema_of::<C>(&defs, &default_cc_map);
    let mut presets: Vec<PresetData> = Vec::new();
    for (i, preset) in C::presets().into_iter().enumerate() {
        let data = match preset {
            Preset::Json(text) => {
                schema.preset_from_json(text).map_err(|e| format!("factory preset {i} is invalid: {e}"))?
            }
            Preset::Values(name, values) => {
                let mut all: Vec<(u32, f64)> = defs.iter().map(|d| (d.id(), d.default_plain())).collect();
                for (id, plain) in values {
                    let Some(d) = defs.iter().find(|d| d.id() == id) else {
                        return Err(format!("factory preset {name:?} sets parameter id {id}, which is not defined"));
                    };
                    if let Some(v) = all.iter_mut().find(|(i, _)| *i == id) {
                        v.1 = d.info.clamp(plain);
                    }
                }
                PresetData { name, values: all }
            }
        };
        if presets.iter().any(|p| p.name == data.name) {
            return Err(format!("two factory presets are named {:?}: hosts list them by name, rename one", data.name));
        }
        presets.push(data);
    }
    Ok(Declarations { defs, default_cc_map, raw_midi, presets })
}

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSummary {
    /// How many parameters the plugin defines.
    pub params: usize,
    /// How many factory presets it has.
    pub presets: usize,
    /// How many controllers its default MIDI map assigns.
    pub midi_cc: usize,
}

/// Checks a control module's declarations without a host, the way the framework checks
/// them when a host creates the plugin: the parameter table (ids and keys unique, ranges,
/// defaults and display rules valid, at most [`crate::block::MAX_PARAMS`]), the default
/// MIDI map, every factory preset (it parses, names only defined parameters, has a name
/// of its own), and that a state of the defaults and of every preset saves and loads back
/// to the same values. Call it from a unit test of the control crate, so a mistake fails
/// `cargo test` instead of the plugin failing to load in a host.
///
/// # Errors
/// The first problem found, naming the parameter, preset or controller at fault.
///
/// # Examples
/// ```
/// use trio::control::{Control, ControlContext};
/// use trio::params::{ParamDef, ParamMapping};
///
/// struct Gain;
/// impl Control for Gain {
///     type Area = ();
///     const STATE_FORMAT: &'static str = "gain-state";
///     fn params() -> Vec<ParamDef> {
///         vec![ParamDef::float(0, "gain", "Gain", ParamMapping::linear(-24.0, 24.0), 0.0).decibels()]
///     }
///     fn new(_: &mut ControlContext<'_, ()>) -> Self {
///         Gain
///     }
/// }
///
/// let summary = trio::control::check::<Gain>().unwrap();
/// assert_eq!(summary.params, 1);
/// ```
pub fn check<C: Control>() -> Result<CheckSummary, String> {
    let Declarations { defs, default_cc_map, presets, .. } = declarations::<C>()?;
    let schema = schema_of::<C>(&defs, &default_cc_map);
    let defaults: Vec<(u32, f64)> = defs.iter().map(|d| (d.id(), d.default_plain())).collect();
    let mut states = vec![("the defaults".to_owned(), defaults)];
    states.extend(presets.iter().map(|p| (format!("preset {:?}", p.name), p.values.clone())));
    for (what, values) in states {
        let state = StateData { values, preset: None, cc_map: default_cc_map.clone(), extra: Map::new() };
        let json = schema.to_json(&state);
        let back =
            schema.from_json(json.as_bytes()).map_err(|e| format!("a state of {what} does not load back: {e}"))?;
        for ((id, saved), (_, loaded)) in state.values.iter().zip(&back.values) {
            if saved.to_bits() != loaded.to_bits() {
                return Err(format!("a state of {what} saves parameter {id} as {saved} and loads it as {loaded}"));
            }
        }
    }
    Ok(CheckSummary { params: defs.len(), presets: presets.len(), midi_cc: default_cc_map.len() })
}

impl<C: Control> Runner<C> {
    fn schema<R>(&self, f: impl FnOnce(&StateSchema<'_>) -> R) -> R {
        f(&schema_of::<C>(&self.defs, &self.default_cc_map))
    }

    fn def(&self, id: u32) -> Option<&ParamDef> {
        self.defs.iter().find(|d| d.id() == id)
    }

    fn state(&self) -> StateData {
        let values = self
            .defs
            .iter()
            .map(|d| {
                let n = self.shared.params.value(d.id()).unwrap_or(d.info.default_normalized);
                (d.id(), d.info.mapping.exact_plain(n))
            })
            .collect();
        let mut extra = Map::new();
        self.control.save_extra(&mut extra);
        StateData { values, preset: self.preset.clone(), cc_map: self.cc_map.clone(), extra }
    }

    fn save_state(&self) -> String {
        let state = self.state();
        self.schema(|s| s.to_json(&state))
    }

    /// Writes plain values into the block. A value that saves as exactly this plain value
    /// is kept bit for bit: a reload saves the old instance's state and loads it into the
    /// new one on the same block, and must not move an automated value by an ulp.
    fn apply_values(&self, values: &[(u32, f64)]) {
        for &(id, plain) in values {
            let (Some(def), Some(current)) = (self.def(id), self.shared.params.value(id)) else { continue };
            if def.info.mapping.exact_plain(current) == plain {
                continue;
            }
            self.shared.params.set_value(id, def.info.mapping.to_normalized(plain));
        }
    }

    fn load_state(&mut self, bytes: &[u8]) -> i32 {
        let data = match self.schema(|s| s.from_json(bytes)) {
            Ok(data) => data,
            Err(e) => {
                return remember(
                    &mut self.last_error,
                    format!("state rejected, nothing changed: {e}"),
                    status::REJECTED,
                );
            }
        };
        if let Err(e) = self.control.load_extra(&data.extra) {
            return remember(&mut self.last_error, format!("state rejected, nothing changed: {e}"), status::REJECTED);
        }
        match self.handover.take() {
            // The first state after adopting a block is a reload's handover: the block holds
            // the live values (the host and automation may be writing them right now), so
            // only parameters whose mapping changed take their value from the state.
            Some(remapped) => {
                let values: Vec<(u32, f64)> =
                    data.values.iter().copied().filter(|(id, _)| remapped.contains(id)).collect();
                self.apply_values(&values);
            }
            None => self.apply_values(&data.values),
        }
        self.preset = data.preset;
        if data.cc_map != self.cc_map {
            self.cc_map = data.cc_map;
            let infos: Vec<_> = self.defs.iter().map(|d| d.info.clone()).collect();
            if let Err(e) = self.shared.params.define(&infos, &midi_map(&self.cc_map, &self.raw_midi), false) {
                return remember(
                    &mut self.last_error,
                    format!("the MIDI CC map could not be published: {e}"),
                    status::REJECTED,
                );
            }
        }
        status::OK
    }

    fn load_preset(&mut self, index: u32) -> i32 {
        let Some(preset) = self.presets.get(index as usize) else {
            let n = self.presets.len();
            return remember(
                &mut self.last_error,
                format!("preset index {index} is out of range (0..{n})"),
                status::INVALID_ARGUMENT,
            );
        };
        // A preset sets the sound, not the bypass switch.
        let values: Vec<(u32, f64)> = preset
            .values
            .iter()
            .copied()
            .filter(|&(id, _)| !self.def(id).is_some_and(|d| d.info.has_flag(param_flags::BYPASS)))
            .collect();
        let name = preset.name.clone();
        self.apply_values(&values);
        self.preset = Some(name);
        status::OK
    }

    fn lookahead(&self) -> u64 {
        let h = &self.shared.header;
        // Relaxed: a setting, read afresh each tick.
        let set = h.control_lookahead_samples.load(Ordering::Relaxed);
        if set > 0 {
            return u64::from(set);
        }
        let sample_rate = self.shared.sample_rate();
        // Relaxed: a setup value.
        let max_block = u64::from(h.max_block_size.load(Ordering::Relaxed));
        let extra = if sample_rate.is_finite() && sample_rate > 0.0 {
            (DEFAULT_LOOKAHEAD_S * sample_rate).round()
        } else {
            0.0
        };
        max_block + extra as u64
    }

    fn tick(&mut self, until: u64) -> TickResult {
        self.handover = None;
        // Acquire: pairs with the engine's Release store of its clock.
        let clock = self.shared.header.sample_clock.load(Ordering::Acquire);
        let horizon = if until == 0 { clock + self.lookahead() } else { until };
        let mut ctx = TickContext {
            base: ControlContext { shared: self.shared, area: self.area, defs: &self.defs },
            horizon,
            queue: &mut self.queue,
            messages: &mut self.messages,
        };
        let next = self.control.tick(&mut ctx);
        Statistics::bump(&self.shared.stats.control_ticks);
        // Release: pairs with the bridge's Acquire load before an offline block: the
        // events scheduled above are in the queue.
        self.shared.header.scheduled_until.store(horizon, Ordering::Release);
        let next_tick_us = match next {
            NextTick::Idle => 0,
            NextTick::After(d) => d.clamp(Duration::from_millis(1), IDLE_TICK).as_micros() as u64,
        };
        TickResult { next_tick_us, scheduled_until: horizon }
    }
}

use crate::abi::status;

/// The message of the last failed `create` in this library (for `last_error` with a null
/// instance).
static CREATE_ERROR: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// The functions behind the control exports, generic over the plugin's control type.
/// Called only by the code [`export_control!`](crate::export_control!) generates.
#[doc(hidden)]
pub mod __export {
    use core::ffi::c_void;

    use super::{CREATE_ERROR, Control, ControlContext, Declarations, Runner, declarations, midi_map, remember};
    use crate::abi::{self, AreaLayout, TickResult, WriteFn, catch_status, control, status};
    use crate::block::SharedBlock;
    use crate::params::DisplayKind;

    fn with<C: Control>(ptr: *mut c_void, f: impl FnOnce(&mut Runner<C>) -> i32) -> i32 {
        catch_status(|| {
            // SAFETY: the export contract: null or a live instance made by `create` with
            // the same `C`, with no concurrent call (the bridge's worker serialises calls).
            match unsafe { ptr.cast::<Runner<C>>().as_mut() } {
                Some(runner) => f(runner),
                None => status::NULL_POINTER,
            }
        })
    }

    fn create_error(message: String, code: i32) -> i32 {
        let mut slot = CREATE_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        remember(&mut slot, message, code)
    }

    /// `trio_control_create`.
    ///
    /// # Safety
    /// `block` points to an initialised segment (block and area) that outlives the
    /// instance, with provenance over the whole segment; `out` is valid for a write.
    pub unsafe fn create<C: Control>(block: *const SharedBlock, mode: u32, out: *mut *mut c_void) -> i32 {
        catch_status(|| {
            if block.is_null() || out.is_null() {
                return status::NULL_POINTER;
            }
            #[cfg(feature = "fault-injection")]
            crate::fault::point(crate::fault::CREATE);
            // SAFETY: non-null; the caller guarantees a live block that outlives the instance.
            let shared: &'static SharedBlock = unsafe { &*block };
            if let Err(e) = shared.check_header(&AreaLayout::of::<C::Area>()) {
                return create_error(e.to_string(), status::ABI_MISMATCH);
            }
            if !matches!(mode, control::CREATE_FRESH | control::CREATE_ADOPT | control::CREATE_DEFINED) {
                return create_error(format!("unknown create mode {mode}"), status::INVALID_ARGUMENT);
            }
            let fresh = mode == control::CREATE_FRESH;
            // SAFETY: the header check passed for this area type, and the caller
            // guarantees provenance over the whole segment.
            let area: &'static C::Area = unsafe { crate::area::area_at(block) };
            let Declarations { defs, default_cc_map, raw_midi, presets } = match declarations::<C>() {
                Ok(d) => d,
                Err(e) => return create_error(e, status::REJECTED),
            };
            let infos: Vec<_> = defs.iter().map(|d| d.info.clone()).collect();
            // What the bridge defined, to compare with the module's own declarations.
            let defined_before = if mode == control::CREATE_DEFINED { shared.params.read_definitions() } else { None };
            let report = match shared.params.define(&infos, &midi_map(&default_cc_map, &raw_midi), fresh) {
                Ok(report) => report,
                Err(e) => return create_error(format!("the parameters could not be published: {e}"), status::REJECTED),
            };
            if mode == control::CREATE_DEFINED {
                // The bridge defined the block from an earlier instance: a parameter it got
                // wrong (declarations that changed between calls: another mapping or
                // default) starts at the module's default.
                let differs = |info: &crate::params::ParamInfo| {
                    report.remapped.contains(&info.id)
                        || defined_before.as_ref().and_then(|d| d.param(info.id)).is_none_or(|before| {
                            before.default_normalized.to_bits() != info.default_normalized.to_bits()
                        })
                };
                for info in infos.iter().filter(|i| differs(i)) {
                    shared.params.set_value(info.id, info.default_normalized);
                }
            }
            // SAFETY: the serving control instance is the only producer of `to_engine` and
            // the only consumer of `from_engine`; the bridge creates a new instance on a
            // block only after the old one stopped ticking (a reload).
            let (queue, messages) = unsafe { (shared.to_engine.producer(), shared.from_engine.consumer()) };
            let mut ctx = ControlContext { shared, area, defs: &defs };
            let control = C::new(&mut ctx);
            let runner = Box::new(Runner::<C> {
                control,
                shared,
                area,
                defs,
                presets,
                cc_map: default_cc_map.clone(),
                default_cc_map,
                raw_midi,
                preset: None,
                last_error: String::new(),
                handover: if mode == control::CREATE_ADOPT { Some(report.remapped) } else { None },
                queue,
                messages,
            });
            // SAFETY: `out` is non-null and writable (caller's guarantee).
            unsafe { out.write(Box::into_raw(runner).cast()) };
            status::OK
        })
    }

    /// `trio_control_destroy`.
    ///
    /// # Safety
    /// `instance` came from [`create`] with the same `C` and is not used afterwards.
    pub unsafe fn destroy<C: Control>(instance: *mut c_void) {
        let _ = catch_status(|| {
            if !instance.is_null() {
                // SAFETY: made by `Box::into_raw` in `create`, destroyed once.
                drop(unsafe { Box::from_raw(instance.cast::<Runner<C>>()) });
            }
            status::OK
        });
    }

    /// `trio_control_format_value`.
    ///
    /// # Safety
    /// `buf` is null or valid for `cap` bytes; `out_len` is null or writable.
    pub unsafe fn format_value<C: Control>(
        instance: *mut c_void,
        id: u32,
        normalized: f64,
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> i32 {
        with::<C>(instance, |r| {
            #[cfg(feature = "fault-injection")]
            crate::fault::point(crate::fault::FORMAT);
            let Some(def) = r.def(id) else {
                return remember(&mut r.last_error, format!("no parameter has id {id}"), status::INVALID_ARGUMENT);
            };
            let plain = def.info.mapping.to_plain(normalized);
            let text = match def.info.display.kind {
                DisplayKind::Custom => r.control.format_value(id, plain).unwrap_or_else(|| def.format(plain)),
                _ => def.format(plain),
            };
            // SAFETY: the caller's guarantees for `buf` and `out_len`.
            unsafe { abi::write_text(&text, buf, cap, out_len) }
        })
    }

    /// `trio_control_parse_value`.
    ///
    /// # Safety
    /// `text` is null or valid for `len` bytes; `out` is null or writable.
    pub unsafe fn parse_value<C: Control>(
        instance: *mut c_void,
        id: u32,
        text: *const u8,
        len: usize,
        out: *mut f64,
    ) -> i32 {
        with::<C>(instance, |r| {
            if (text.is_null() && len > 0) || out.is_null() {
                return status::NULL_POINTER;
            }
            let bytes: &[u8] = if len == 0 {
                &[]
            } else {
                // SAFETY: non-null and valid for `len` bytes (caller's guarantee).
                unsafe { core::slice::from_raw_parts(text, len) }
            };
            let Ok(text) = core::str::from_utf8(bytes) else {
                return remember(&mut r.last_error, "the text is not valid UTF-8".to_owned(), status::REJECTED);
            };
            let Some(def) = r.def(id) else {
                return remember(&mut r.last_error, format!("no parameter has id {id}"), status::INVALID_ARGUMENT);
            };
            let parsed = match def.info.display.kind {
                DisplayKind::Custom => r
                    .control
                    .parse_value(id, text)
                    .map(|p| def.info.clamp(p))
                    .ok_or_else(|| format!("{text:?} is not a value for {}", def.info.name)),
                _ => def.parse(text).map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(plain) => {
                    // SAFETY: non-null and writable (caller's guarantee).
                    unsafe { out.write(def.info.mapping.to_normalized(plain)) };
                    status::OK
                }
                Err(message) => remember(&mut r.last_error, message, status::REJECTED),
            }
        })
    }

    /// `trio_control_save_state`.
    ///
    /// # Safety
    /// `write` is the caller's callback, valid with `ctx`.
    pub unsafe fn save_state<C: Control>(instance: *mut c_void, write: Option<WriteFn>, ctx: *mut c_void) -> i32 {
        with::<C>(instance, |r| {
            #[cfg(feature = "fault-injection")]
            crate::fault::point(crate::fault::SAVE_STATE);
            let Some(write) = write else {
                return status::NULL_POINTER;
            };
            let json = r.save_state();
            // SAFETY: the caller's callback with its own context; the bytes are valid for
            // the call.
            unsafe { write(ctx, json.as_ptr(), json.len()) };
            status::OK
        })
    }

    /// `trio_control_load_state`.
    ///
    /// # Safety
    /// `data` is null or valid for `len` bytes.
    pub unsafe fn load_state<C: Control>(instance: *mut c_void, data: *const u8, len: usize) -> i32 {
        with::<C>(instance, |r| {
            #[cfg(feature = "fault-injection")]
            crate::fault::point(crate::fault::LOAD_STATE);
            if data.is_null() && len > 0 {
                return status::NULL_POINTER;
            }
            let bytes: &[u8] = if len == 0 {
                &[]
            } else {
                // SAFETY: non-null and valid for `len` bytes (caller's guarantee).
                unsafe { core::slice::from_raw_parts(data, len) }
            };
            r.load_state(bytes)
        })
    }

    /// `trio_control_preset_count`.
    ///
    /// # Safety
    /// As the other exports.
    pub unsafe fn preset_count<C: Control>(instance: *mut c_void) -> u32 {
        let mut count = 0;
        let _ = with::<C>(instance, |r| {
            count = r.presets.len() as u32;
            status::OK
        });
        count
    }

    /// `trio_control_preset_name`.
    ///
    /// # Safety
    /// `buf` is null or valid for `cap` bytes; `out_len` is null or writable.
    pub unsafe fn preset_name<C: Control>(
        instance: *mut c_void,
        index: u32,
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> i32 {
        with::<C>(instance, |r| match r.presets.get(index as usize) {
            // SAFETY: the caller's guarantees for `buf` and `out_len`.
            Some(p) => unsafe { abi::write_text(&p.name, buf, cap, out_len) },
            None => {
                let n = r.presets.len();
                remember(
                    &mut r.last_error,
                    format!("preset index {index} is out of range (0..{n})"),
                    status::INVALID_ARGUMENT,
                )
            }
        })
    }

    /// `trio_control_load_preset`.
    ///
    /// # Safety
    /// As the other exports.
    pub unsafe fn load_preset<C: Control>(instance: *mut c_void, index: u32) -> i32 {
        with::<C>(instance, |r| r.load_preset(index))
    }

    /// `trio_control_tick`.
    ///
    /// # Safety
    /// `out` is null or writable.
    pub unsafe fn tick<C: Control>(instance: *mut c_void, until: u64, out: *mut TickResult) -> i32 {
        with::<C>(instance, |r| {
            #[cfg(feature = "fault-injection")]
            crate::fault::point(crate::fault::TICK);
            let result = r.tick(until);
            if !out.is_null() {
                // SAFETY: non-null and writable (caller's guarantee).
                unsafe { out.write(result) };
            }
            status::OK
        })
    }

    /// `trio_control_last_error`: the message of the last failed call on `instance`, or of
    /// the last failed create when `instance` is null.
    ///
    /// # Safety
    /// `buf` is null or valid for `cap` bytes; `out_len` is null or writable.
    pub unsafe fn last_error<C: Control>(instance: *mut c_void, buf: *mut u8, cap: usize, out_len: *mut usize) -> i32 {
        if instance.is_null() {
            return catch_status(|| {
                let message = CREATE_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                // SAFETY: the caller's guarantees for `buf` and `out_len`.
                unsafe { abi::write_text(&message, buf, cap, out_len) }
            });
        }
        // SAFETY: the caller's guarantees for `buf` and `out_len`.
        with::<C>(instance, |r| unsafe { abi::write_text(&r.last_error, buf, cap, out_len) })
    }

    /// `trio_control_module_shutdown`: nothing to join yet. No panic leaves it.
    pub fn module_shutdown() -> i32 {
        catch_status(|| status::OK)
    }
}

/// Exports the control library's C ABI for control type `$control` (which implements
/// [`Control`]): its descriptor and every function the bridge calls. Use it once, in the
/// control crate's `lib.rs`:
///
/// ```ignore
/// trio::export_control!(MySynthControl);
/// ```
///
/// The crate needs `crate-type = ["cdylib", "rlib"]`.
#[macro_export]
macro_rules! export_control {
    ($control:ty) => {
        /// This control module's descriptor: ABI version, layout hash, plugin area,
        /// "allocation allowed".
        #[unsafe(no_mangle)]
        pub static trio_control_descriptor: $crate::abi::ModuleDescriptor = $crate::abi::ModuleDescriptor::new(
            $crate::abi::module_kind::CONTROL,
            $crate::abi::alloc_policy::ALLOW,
            $crate::abi::AreaLayout::of::<<$control as $crate::control::Control>::Area>(),
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        );

        /// See `trio::control::__export::create`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_create(
            block: *const $crate::block::SharedBlock,
            mode: u32,
            out: *mut *mut ::core::ffi::c_void,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::create::<$control>(block, mode, out) }
        }

        /// See `trio::control::__export::destroy`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_destroy(instance: *mut ::core::ffi::c_void) {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::destroy::<$control>(instance) }
        }

        /// See `trio::control::__export::format_value`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_format_value(
            instance: *mut ::core::ffi::c_void,
            id: u32,
            normalized: f64,
            buf: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::format_value::<$control>(instance, id, normalized, buf, cap, out_len) }
        }

        /// See `trio::control::__export::parse_value`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_parse_value(
            instance: *mut ::core::ffi::c_void,
            id: u32,
            text: *const u8,
            len: usize,
            out: *mut f64,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::parse_value::<$control>(instance, id, text, len, out) }
        }

        /// See `trio::control::__export::save_state`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_save_state(
            instance: *mut ::core::ffi::c_void,
            write: Option<$crate::abi::WriteFn>,
            ctx: *mut ::core::ffi::c_void,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::save_state::<$control>(instance, write, ctx) }
        }

        /// See `trio::control::__export::load_state`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_load_state(
            instance: *mut ::core::ffi::c_void,
            data: *const u8,
            len: usize,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::load_state::<$control>(instance, data, len) }
        }

        /// See `trio::control::__export::preset_count`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_preset_count(instance: *mut ::core::ffi::c_void) -> u32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::preset_count::<$control>(instance) }
        }

        /// See `trio::control::__export::preset_name`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_preset_name(
            instance: *mut ::core::ffi::c_void,
            index: u32,
            buf: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::preset_name::<$control>(instance, index, buf, cap, out_len) }
        }

        /// See `trio::control::__export::load_preset`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_load_preset(instance: *mut ::core::ffi::c_void, index: u32) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::load_preset::<$control>(instance, index) }
        }

        /// See `trio::control::__export::tick`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_tick(
            instance: *mut ::core::ffi::c_void,
            until: u64,
            out: *mut $crate::abi::TickResult,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::tick::<$control>(instance, until, out) }
        }

        /// See `trio::control::__export::last_error`.
        ///
        /// # Safety
        /// As there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn trio_control_last_error(
            instance: *mut ::core::ffi::c_void,
            buf: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> i32 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { $crate::control::__export::last_error::<$control>(instance, buf, cap, out_len) }
        }

        /// See `trio::control::__export::module_shutdown`.
        #[unsafe(no_mangle)]
        pub extern "C" fn trio_control_module_shutdown() -> i32 {
            $crate::control::__export::module_shutdown()
        }
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use core::ffi::c_void;

    use super::*;
    use crate::abi::{AreaLayout, control, status};
    use crate::params::ParamMapping;

    /// A control module whose MIDI declarations come from a thread-local, per test.
    struct Midi;

    /// `(default_midi_cc, midi_controllers)`.
    type Declared = (Vec<(u8, u32)>, Vec<MidiController>);

    thread_local! {
        static DECLARED: std::cell::RefCell<Declared> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }

    impl Control for Midi {
        type Area = ();
        const STATE_FORMAT: &'static str = "midi-test";
        fn params() -> Vec<ParamDef> {
            vec![ParamDef::float(3, "cutoff", "Cutoff", ParamMapping::logarithmic(20.0, 20_000.0), 1_000.0)]
        }
        fn new(_: &mut ControlContext<'_, ()>) -> Self {
            Midi
        }
        fn default_midi_cc() -> Vec<(u8, u32)> {
            DECLARED.with(|d| d.borrow().0.clone())
        }
        fn midi_controllers() -> Vec<MidiController> {
            DECLARED.with(|d| d.borrow().1.clone())
        }
    }

    fn check_with(cc: Vec<(u8, u32)>, raw: Vec<MidiController>) -> Result<CheckSummary, String> {
        DECLARED.with(|d| *d.borrow_mut() = (cc, raw));
        check::<Midi>()
    }

    #[test]
    fn midi_controllers_are_checked_against_the_cc_map() {
        use MidiController::*;
        assert!(check_with(vec![(74, 3)], vec![PitchBend, ChannelPressure, Cc(1)]).is_ok());
        let e = check_with(vec![(74, 3)], vec![Cc(74)]).unwrap_err();
        assert!(e.contains("Cc(74)") && e.contains("default_midi_cc also assigns"), "{e}");
        let e = check_with(vec![], vec![Cc(128)]).unwrap_err();
        assert!(e.contains("from 0 to 127"), "{e}");
        let e = check_with(vec![], vec![PitchBend, PitchBend]).unwrap_err();
        assert!(e.contains("PitchBend twice"), "{e}");
        let e = check_with(vec![(200, 3)], vec![]).unwrap_err();
        assert!(e.contains("controller 200"), "{e}");
    }

    /// Two parameters, for the creation modes.
    struct Two;

    impl Control for Two {
        type Area = ();
        const STATE_FORMAT: &'static str = "two-test";
        fn params() -> Vec<ParamDef> {
            vec![
                ParamDef::float(1, "gain", "Gain", ParamMapping::linear(-24.0, 24.0), 0.0),
                ParamDef::float(3, "cutoff", "Cutoff", ParamMapping::logarithmic(20.0, 20_000.0), 1_000.0),
            ]
        }
        fn new(_: &mut ControlContext<'_, ()>) -> Self {
            Two
        }
    }

    /// `CREATE_DEFINED` on a block the bridge defined keeps the values the host set since,
    /// and gives a parameter the bridge defined differently (a stale default) the module's
    /// default.
    #[test]
    fn a_block_defined_by_the_bridge_keeps_the_hosts_values_and_fixes_what_differs() {
        let area = AreaLayout::of::<()>();
        let heap = crate::block::HeapBlock::new(&area);
        let block = heap.block();
        block.init_header(1, 48_000.0, 512, &area);
        let declared: Vec<_> = Two::params().into_iter().map(|d| d.info).collect();
        let (gain_default, cutoff_default) = (declared[0].default_normalized, declared[1].default_normalized);
        let mut stale = declared.clone();
        stale[1].default_normalized = 0.9;
        block.params.define(&stale, &[], true).unwrap();
        assert!(block.params.set_value(1, 0.3));
        let mut instance: *mut c_void = core::ptr::null_mut();
        // SAFETY: an initialised block that outlives the instance; a local out pointer.
        let code = unsafe { __export::create::<Two>(block, control::CREATE_DEFINED, &mut instance) };
        assert_eq!(code, status::OK);
        assert_eq!(block.params.value(1), Some(0.3), "the host's value was lost");
        assert_ne!(0.3, gain_default);
        assert_eq!(block.params.value(3), Some(cutoff_default), "the stale default stayed");
        assert_eq!(block.params.read_definitions().unwrap().params, declared);
        // SAFETY: made above, destroyed once.
        unsafe { __export::destroy::<Two>(instance) };
    }

    #[test]
    fn the_block_map_puts_assignments_before_raw_controllers() {
        let map = midi_map(&[(74, 3)], &[74, crate::block::PITCH_BEND]);
        assert_eq!(map, [(74, 3), (crate::block::PITCH_BEND, crate::block::RAW_MIDI)]);
    }
}
