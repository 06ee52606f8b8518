//! The plugin object: one COM object that is both the audio processor and its own edit
//! controller (a "single component" plugin, as nih-plug builds them), so the processor
//! and controller share the instance's block without any message passing.
//!
//! Which host call, on which thread, touches what:
//! - `process` (audio thread): the engine, through [`Instance::process_raw`], and the
//!   audio scratch. Never allocates, locks or waits (offline renders excepted, see
//!   [`Instance::process_raw`]).
//! - `setupProcessing`, `setActive`, `setBusArrangements`, `activateBus` (any non-audio
//!   thread): the engine through the instance's non-blocking engine guard; the bus state.
//! - parameter reads and writes (any thread, hosts do not obey the spec): block atomics.
//! - parameter info, value texts and parsing (any non-audio thread): the definitions in
//!   the block, on the caller's thread; only a parameter with custom formatting asks the
//!   control worker.
//! - state and presets (any non-audio thread): the control worker.
//! - the component handler: called only on the host's main thread (the thread that called
//!   `initialize`), at entry of a controller call, never while a lock of ours is held.
//!
//! Main-thread work: a hot reload runs on a background thread and leaves restart flags in
//! the instance ([`Instance::take_restart_request`]); a latency the engine changed must be
//! announced too. The plugin cannot call the host from another thread (the spec wants
//! `restartComponent` on the UI thread), so it delivers them at the entry of the next call
//! the host makes on its main thread: hosts make them all the time (parameter display,
//! state, automation read-back).

use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use atomic_refcell::AtomicRefCell;
use trio::abi::{self, Event, TransportInfo, event_kind, param_flags, status, transport_flags};
use trio::block::{CHANNEL_PRESSURE, Definitions, MIDI_CONTROLLERS, PITCH_BEND, state_flags};
use trio::params::{midi_controller_of, midi_param_default, midi_param_id, midi_param_name};
use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{Class, ComPtr, ComRef};

use super::run_loop;
use super::util::{copy_wstr, guard, guard_value, read_stream, read_wstr, write_stream};
use crate::config::{Layout, PluginConfig, PluginKind};
use crate::instance::Buses;
use crate::latest::Latest;
use crate::{Instance, Modules, ProcessSetup};

/// Events one block can carry; more are dropped and counted in `stats.events_dropped`.
const MAX_BLOCK_EVENTS: usize = 4096;

/// The root unit's id.
const ROOT_UNIT: UnitID = 0;

/// Channels per bus the bridge passes (mono or stereo buses).
const BUS_CHANNELS: usize = 2;

/// Audio-thread scratch, borrowed inside `process`, and resized by `setupProcessing`
/// (which the host never calls during `process`; if one does, setup is refused).
struct AudioScratch {
    /// The block's events, with a sort key (offset, arrival) for a stable order.
    keyed: Vec<(u64, Event)>,
    events: Vec<Event>,
    /// 32-bit buffers for the main bus when the host processes in 64 bits or gives a null
    /// channel pointer; each holds the setup's max block size.
    main: [Vec<f32>; BUS_CHANNELS],
    /// The same for the sidechain.
    side: [Vec<f32>; BUS_CHANNELS],
}

impl AudioScratch {
    fn new(max_block: usize) -> Self {
        Self {
            keyed: Vec::with_capacity(MAX_BLOCK_EVENTS),
            events: Vec::with_capacity(MAX_BLOCK_EVENTS),
            main: [vec![0.0; max_block], vec![0.0; max_block]],
            side: [vec![0.0; max_block], vec![0.0; max_block]],
        }
    }
}

/// What the controller reports about parameters, derived from the block's definitions.
struct ParamTables {
    defs: Arc<Definitions>,
    /// Unit names; a parameter's unit is its group's position here plus one.
    units: Vec<String>,
    /// Unit of each parameter of `defs.params`.
    unit_of: Vec<UnitID>,
    /// Position in `defs.params` of each id.
    by_id: HashMap<u32, usize>,
    /// The MIDI controllers the engine receives as events, by map number: each is listed
    /// after the plugin's parameters as a hidden parameter ([`midi_param_id`]).
    midi: Vec<u8>,
}

impl ParamTables {
    fn build(defs: Arc<Definitions>) -> Self {
        let mut units: Vec<String> = Vec::new();
        let mut unit_of = Vec::with_capacity(defs.params.len());
        for p in &defs.params {
            let unit = if p.group.is_empty() {
                ROOT_UNIT
            } else {
                let i = units.iter().position(|u| *u == p.group).unwrap_or_else(|| {
                    units.push(p.group.clone());
                    units.len() - 1
                });
                i as UnitID + 1
            };
            unit_of.push(unit);
        }
        let by_id = defs.params.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let midi = (0..MIDI_CONTROLLERS).filter(|&n| defs.raw_midi[n]).map(|n| n as u8).collect();
        Self { defs, units, unit_of, by_id, midi }
    }

    /// The MIDI controller behind `id`, if it is a listed controller parameter.
    fn midi_controller(&self, id: ParamID) -> Option<u8> {
        midi_controller_of(id).filter(|n| self.defs.raw_midi[usize::from(*n)])
    }

    fn info(&self, id: ParamID) -> Option<&trio::params::ParamInfo> {
        self.by_id.get(&id).and_then(|&i| self.defs.params.get(i))
    }
}

/// The calling thread's identity, without allocating or a system call (unlike
/// `std::thread::current`, which may allocate the first time on a thread).
fn current_thread() -> u64 {
    // SAFETY: `pthread_self` has no preconditions and always succeeds.
    unsafe { libc::pthread_self() as u64 }
}

/// The host's component handler, kept for notifications (`restartComponent`).
struct HandlerSlot(Option<ComPtr<IComponentHandler>>);

// SAFETY: a component handler is a host object the VST3 spec lets plugins keep and call;
// the slot is only used under its mutex, from non-audio threads.
unsafe impl Send for HandlerSlot {}

/// A plugin instance as the host sees it.
pub struct TrioPlugin {
    /// The timer on the host's run loop, when its context offers one. First, so it is
    /// unregistered before anything else of the plugin is dropped.
    run_loop: run_loop::Slot,
    config: &'static PluginConfig,
    instance: Instance,
    /// Rebuilt by any controller call when the definitions' version changed; never
    /// touched by `process`.
    tables: Latest<ParamTables>,
    /// Borrowed by `process` (audio thread); resized by `setupProcessing`.
    scratch: AtomicRefCell<AudioScratch>,
    /// Set by `setComponentHandler`, cleared by `terminate`; cloned out (lock released)
    /// before any call into the host.
    handler: Mutex<HandlerSlot>,
    /// `pthread_self` of the thread that called `initialize` (the host's main thread);
    /// 0 before `initialize`.
    main_thread: AtomicU64,
    /// The latency last reported by `getLatencySamples`, to notice a change.
    reported_latency: AtomicU32,
    /// Channels of the main bus in the current arrangement (`setBusArrangements`).
    main_channels: AtomicU32,
    /// Channels of the sidechain bus in the current arrangement.
    side_channels: AtomicU32,
    /// Whether the host activated the sidechain bus (`activateBus`).
    side_active: AtomicBool,
    /// The audio thread's problem counters when last reported (main thread):
    /// allocation violations, engine panics, non-finite blocks, runaway blocks, late events.
    reported_problems: [AtomicU64; 5],
    /// The last normalized value (`f64` bits) the host gave each MIDI controller
    /// parameter, for `getParamNormalized`.
    midi_values: [AtomicU64; MIDI_CONTROLLERS],
}

impl Class for TrioPlugin {
    type Interfaces =
        (IComponent, IAudioProcessor, IProcessContextRequirements, IEditController, IMidiMapping, IUnitInfo);
}

impl TrioPlugin {
    /// Creates the instance: shared block, control module instance, engine.
    ///
    /// # Errors
    /// A sentence saying which part refused.
    pub fn new(config: &'static PluginConfig, modules: &Modules) -> Result<Self, String> {
        let setup = ProcessSetup::default();
        let main = config.default_layout().channels();
        let instance = Instance::with_buses(modules, setup, Buses { main, sidechain: 0 }).map_err(|e| e.to_string())?;
        // A new component is inactive until the host's `setActive(true)`: until then idle
        // control logic is not ticked (a loaded instance the host does not use costs nothing).
        instance.note_host_state(state_flags::ACTIVE, false);
        // An instrument's main bus holds the zeros `process_block` writes: nothing there
        // can wake a sleeping engine.
        instance.set_main_input(config.kind == PluginKind::Effect);
        let tables = ParamTables::build(Arc::clone(instance.definitions()));
        Ok(Self {
            run_loop: Default::default(),
            config,
            instance,
            tables: Latest::new(tables),
            scratch: AtomicRefCell::new(AudioScratch::new(setup.max_block_size as usize)),
            handler: Mutex::new(HandlerSlot(None)),
            main_thread: AtomicU64::new(0),
            // The host has not read it yet: nothing to tell it about a change.
            reported_latency: AtomicU32::new(NOT_REPORTED),
            main_channels: AtomicU32::new(main),
            side_channels: AtomicU32::new(if config.sidechain { main } else { 0 }),
            side_active: AtomicBool::new(false),
            reported_problems: Default::default(),
            midi_values: core::array::from_fn(|n| AtomicU64::new(midi_param_default(n as u8).to_bits())),
        })
    }

    /// The instance behind this plugin object.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The current parameter tables, rebuilt if the control module changed the
    /// definitions since they were built. No lock and no reference count while they are
    /// unchanged.
    fn tables(&self) -> &ParamTables {
        let defs = self.instance.definitions();
        let cached = self.tables.get();
        if Arc::ptr_eq(&cached.defs, defs) {
            return cached;
        }
        self.tables.update(|cached| {
            // Another thread may have rebuilt them meanwhile.
            let defs = self.instance.definitions();
            (!Arc::ptr_eq(&cached.defs, defs)).then(|| ParamTables::build(Arc::clone(defs)))
        })
    }

    /// [`Self::main_thread_work`] from a call that has no panic guard of its own: a host's
    /// main-thread call of any kind is a chance to deliver restart requests.
    fn deliver_main_thread_work(&self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.main_thread_work()));
    }

    /// Logs, from the main thread, what the audio thread counted since the last report
    /// (the audio thread itself never prints): allocations where none are allowed, engine
    /// panics (with where and why, from the block), blocks silenced for NaN or infinite
    /// samples or for output above +40 dBFS, and events of the control module that came
    /// after their sample.
    fn report_audio_thread_problems(&self) {
        let stats = &self.instance.block().stats;
        let counters = [
            &stats.alloc_violations,
            &stats.engine_panics,
            &stats.nonfinite_blocks,
            &stats.runaway_blocks,
            &stats.late_events,
        ];
        for (kind, (counter, reported)) in counters.iter().zip(&self.reported_problems).enumerate() {
            // Relaxed: telemetry counters. Loads only, unless something is new: hosts
            // make main-thread calls by the thousand.
            let count = counter.load(Ordering::Relaxed);
            let last = reported.load(Ordering::Relaxed);
            if count > last {
                reported.store(count, Ordering::Relaxed);
                self.log_audio_thread_problem(kind, count, count - last);
            }
        }
    }

    /// Logs what [`Self::report_audio_thread_problems`] found new: `new` more of problem
    /// `kind`, `count` in all. Kept out of line: the check runs on every host call.
    #[cold]
    #[inline(never)]
    fn log_audio_thread_problem(&self, kind: usize, count: u64, new: u64) {
        let stats = &self.instance.block().stats;
        let name = &self.config.name;
        match kind {
            0 => log::warn!(
                "{name}: the audio thread made {new} allocator call(s) where none are allowed ({count} since the \
                 plugin was created); the engine or the bridge allocates while processing"
            ),
            1 => log::error!(
                "{name}: the engine panicked while processing ({count} time(s) so far), last at {}; it outputs \
                 silence until the host resets it (deactivate and activate the plugin)",
                stats.panic_note.read().as_deref().unwrap_or("an unknown place")
            ),
            2 => log::warn!(
                "{name}: {new} block(s) of engine output held NaN or infinite samples and were replaced by silence \
                 ({count} so far)"
            ),
            3 => log::warn!(
                "{name}: {new} block(s) of engine output went above +40 dBFS and were replaced by silence ({count} so \
                 far): a filter or feedback loop is running away"
            ),
            _ => log::warn!(
                "{name}: {new} event(s) the control module scheduled came after their sample time and played at the \
                 start of the next block ({count} so far): the control worker ran later than its lookahead (a busy \
                 machine, or a host rendering faster than real time without saying it renders offline), or the \
                 control logic scheduled them in the past"
            ),
        }
    }

    /// Whether the calling thread is the one that called `initialize`.
    fn on_main_thread(&self) -> bool {
        // Relaxed: the value is the caller's own thread id or another thread's; a stale
        // read can only make a call skip delivery, which the next call makes up.
        let main = self.main_thread.load(Ordering::Relaxed);
        main != 0 && main == current_thread()
    }

    /// Main-thread work, run at the entry of every host call but `process` and the state
    /// transitions (initialize's end aside; a host may re-enter from `restartComponent`):
    /// delivers pending restart flags (from reloads) and a changed latency to the host. Does nothing on any other thread
    /// than the host's main thread, so never on the audio thread; holds no lock while
    /// calling the host (which may call back).
    pub(super) fn main_thread_work(&self) {
        if !self.on_main_thread() {
            return;
        }
        self.report_audio_thread_problems();
        let mut flags = self.instance.take_restart_request();
        let latency = self.instance.latency_samples();
        // Relaxed: only this (main) thread compares; `getLatencySamples` stores.
        let reported = self.reported_latency.load(Ordering::Relaxed);
        if reported != NOT_REPORTED && latency != reported {
            flags |= RestartFlags_::kLatencyChanged;
        }
        if flags == 0 {
            return;
        }
        let handler = match self.handler.lock() {
            Ok(slot) => slot.0.clone(),
            Err(_) => None,
        };
        match handler {
            Some(handler) => {
                if flags & RestartFlags_::kLatencyChanged != 0 {
                    // Relaxed: see above. Stored before the call: the host re-reads it.
                    self.reported_latency.store(latency, Ordering::Relaxed);
                }
                // SAFETY: a live handler the host gave us (we hold a reference); called
                // on the host's main thread with no lock of ours held.
                let result = unsafe { handler.restartComponent(flags) };
                if result != kResultOk {
                    log::debug!("restartComponent({flags:#x}) returned {result}");
                }
            }
            // No handler yet: keep the request for when there is one.
            None => self.instance.request_restart(flags & !(RestartFlags_::kLatencyChanged)),
        }
    }

    fn load_state_from(&self, stream: *mut IBStream) -> tresult {
        self.main_thread_work();
        // SAFETY: the host passes a valid stream or null.
        let Some(bytes) = (unsafe { read_stream(stream) }) else { return kInvalidArgument };
        match self.instance.load_state(&bytes) {
            Ok(()) => kResultOk,
            Err(e) => {
                log::warn!("setState: {e}");
                kResultFalse
            }
        }
    }

    fn save_state_to(&self, stream: *mut IBStream) -> tresult {
        self.main_thread_work();
        if stream.is_null() {
            return kInvalidArgument;
        }
        match self.instance.save_state() {
            // SAFETY: the host passes a valid stream (checked non-null).
            Ok(bytes) if unsafe { write_stream(stream, &bytes) } => kResultOk,
            Ok(_) => kResultFalse,
            Err(e) => {
                log::warn!("getState: {e}");
                kResultFalse
            }
        }
    }

    /// The block's events, sorted by offset (stable), from the host's parameter changes and
    /// event list. Allocation-free: fills the scratch vectors up to their capacity.
    fn collect_events(&self, data: &ProcessData, scratch: &mut AudioScratch) {
        let AudioScratch { keyed, events, .. } = scratch;
        keyed.clear();
        events.clear();
        let num_samples = data.numSamples.max(0);
        let mut dropped = 0u64;
        let mut push = |keyed: &mut Vec<(u64, Event)>, event: Event| {
            if keyed.len() < keyed.capacity() {
                let key = (event.time << 32) | keyed.len() as u64;
                keyed.push((key, event));
            } else {
                dropped += 1;
            }
        };
        let params = &self.instance.block().params;
        // SAFETY: the host's parameter changes are valid for this call, or null.
        if let Some(changes) = unsafe { ComRef::from_raw(data.inputParameterChanges) } {
            // SAFETY: a valid interface for this call (all calls below likewise).
            let count = unsafe { changes.getParameterCount() };
            for i in 0..count {
                // SAFETY: as above.
                let Some(queue) = (unsafe { ComRef::from_raw(changes.getParameterData(i)) }) else { continue };
                // SAFETY: as above.
                let id = unsafe { queue.getParameterId() };
                let midi = midi_controller_of(id).filter(|&n| params.is_raw_midi(n));
                if midi.is_none() && !params.is_defined(id) {
                    // Unknown ids (stale automation, another plugin's) are ignored.
                    continue;
                }
                // SAFETY: as above.
                for p in 0..unsafe { queue.getPointCount() } {
                    let (mut offset, mut value) = (0, 0.0);
                    // SAFETY: as above; the out pointers are locals.
                    if unsafe { queue.getPoint(p, &mut offset, &mut value) } != kResultOk || !value.is_finite() {
                        continue;
                    }
                    let time = offset.clamp(0, num_samples) as u64;
                    match midi {
                        Some(number) => push(keyed, midi_event(time, number, value.clamp(0.0, 1.0))),
                        None => push(keyed, Event::param(time, id, value)),
                    }
                }
            }
        }
        // SAFETY: the host's event list is valid for this call, or null.
        if let Some(list) = unsafe { ComRef::from_raw(data.inputEvents) } {
            // SAFETY: as above.
            for i in 0..unsafe { list.getEventCount() } {
                // SAFETY: `Event` is plain data; zeroed is a valid value to be overwritten.
                let mut e: vst3::Steinberg::Vst::Event = unsafe { std::mem::zeroed() };
                // SAFETY: as above; `e` is a local.
                if unsafe { list.getEvent(i, &mut e) } != kResultOk {
                    continue;
                }
                let time = e.sampleOffset.clamp(0, num_samples) as u64;
                let event = match u32::from(e.r#type) {
                    t if t == Event_::EventTypes_::kNoteOnEvent => {
                        // SAFETY: the type tag says the union holds a note-on.
                        let on = unsafe { e.__field0.noteOn };
                        note(time, event_kind::NOTE_ON, on.pitch, f64::from(on.velocity), on.noteId, on.channel)
                    }
                    t if t == Event_::EventTypes_::kNoteOffEvent => {
                        // SAFETY: the type tag says the union holds a note-off.
                        let off = unsafe { e.__field0.noteOff };
                        note(time, event_kind::NOTE_OFF, off.pitch, f64::from(off.velocity), off.noteId, off.channel)
                    }
                    t if t == Event_::EventTypes_::kPolyPressureEvent => {
                        // SAFETY: the type tag says the union holds poly pressure.
                        let pp = unsafe { e.__field0.polyPressure };
                        note(time, event_kind::POLY_PRESSURE, pp.pitch, f64::from(pp.pressure), pp.noteId, pp.channel)
                    }
                    _ => None,
                };
                if let Some(event) = event {
                    push(keyed, event);
                }
            }
        }
        // Unstable sort by (offset, arrival): stable in effect, and allocation-free.
        keyed.sort_unstable_by_key(|&(key, _)| key);
        events.extend(keyed.iter().map(|&(_, e)| e));
        if dropped > 0 {
            // Relaxed: a telemetry counter.
            self.instance.block().stats.events_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// The audio callback body. Runs on the host's audio thread.
    fn process_block(&self, data: &mut ProcessData) -> tresult {
        let Ok(mut scratch) = self.scratch.try_borrow_mut() else { return kResultFalse };
        self.collect_events(data, &mut scratch);
        let n = data.numSamples.max(0) as usize;
        let wide = data.symbolicSampleSize as SymbolicSampleSizes == SymbolicSampleSizes_::kSample64;
        let max_block = scratch.main[0].len();
        // SAFETY: the host's process context is valid for this call, or null.
        let transport = transport_of(unsafe { data.processContext.as_ref() });
        let AudioScratch { events, main: main_scratch, side: side_scratch, .. } = &mut *scratch;

        // The host's buses for this call (VST3: `inputs`/`outputs` valid for their counts).
        // SAFETY: valid for `numOutputs` buses when non-null.
        let out_bus = if data.numOutputs > 0 { unsafe { data.outputs.as_mut() } } else { None };
        let in_buses: &[AudioBusBuffers] = if data.numInputs > 0 && !data.inputs.is_null() {
            // SAFETY: valid for `numInputs` buses (VST3 contract).
            unsafe { std::slice::from_raw_parts(data.inputs, data.numInputs as usize) }
        } else {
            &[]
        };
        // Relaxed: written by `setBusArrangements`, which the host never runs during process.
        let arranged = self.main_channels.load(Ordering::Relaxed) as usize;
        let channels = match &out_bus {
            Some(bus) if n > 0 && n <= max_block => arranged.min(bus.numChannels.max(0) as usize).min(BUS_CHANNELS),
            _ => 0,
        };
        let n_engine = if n > max_block { 0 } else { n };
        let mut main_ptrs = [std::ptr::null_mut::<f32>(); BUS_CHANNELS];
        let mut side_ptrs = [std::ptr::null::<f32>(); BUS_CHANNELS];
        let effect = self.config.kind == PluginKind::Effect;
        let main_in = if effect { in_buses.first() } else { None };
        let side_in = if effect && self.config.sidechain && self.side_active.load(Ordering::Relaxed) {
            in_buses.get(1)
        } else {
            None
        };
        let side_channels = side_in.map_or(0, |b| {
            (b.numChannels.max(0) as usize).min(self.side_channels.load(Ordering::Relaxed) as usize).min(BUS_CHANNELS)
        });
        if channels > 0
            && let Some(bus) = &out_bus
        {
            for c in 0..channels {
                let target: *mut f32 = if wide {
                    main_scratch[c].as_mut_ptr()
                } else {
                    // SAFETY: a 32-bit call: the union holds 32-bit pointers, valid for
                    // `numChannels` entries when non-null.
                    let ptr = unsafe { channel_ptr32(bus.__field0.channelBuffers32, bus.numChannels, c) };
                    if ptr.is_null() { main_scratch[c].as_mut_ptr() } else { ptr }
                };
                // SAFETY: `target` is a host channel or a scratch buffer, valid for `n`
                // samples (`n <= max_block`).
                let out = unsafe { std::slice::from_raw_parts_mut(target, n) };
                match main_in {
                    // SAFETY: the input bus's pointers are valid for `numSamples` samples.
                    Some(input) => unsafe { fill_from(out, input, c, wide) },
                    None => out.fill(0.0),
                }
                main_ptrs[c] = target;
            }
            for (c, slot) in side_ptrs.iter_mut().enumerate().take(side_channels) {
                let Some(input) = side_in else { break };
                let scratch = side_scratch[c].as_mut_ptr();
                let direct = if wide {
                    std::ptr::null()
                } else {
                    // SAFETY: a 32-bit call: the input bus's union holds 32-bit pointers,
                    // valid for `numChannels` entries when non-null.
                    unsafe { channel_ptr32(input.__field0.channelBuffers32, input.numChannels, c) as *const f32 }
                };
                let aliases_main = main_ptrs[..channels].iter().any(|&m| std::ptr::eq(m as *const f32, direct));
                if !direct.is_null() && !aliases_main {
                    *slot = direct;
                } else {
                    // SAFETY: `scratch` is valid for `n` samples.
                    let buf = unsafe { std::slice::from_raw_parts_mut(scratch, n) };
                    // SAFETY: as above.
                    unsafe { fill_from(buf, input, c, wide) };
                    *slot = scratch;
                }
            }
        }
        let mut block = abi::ProcessData {
            num_samples: n_engine as u32,
            num_main: channels as u32,
            main: main_ptrs.as_ptr(),
            num_sidechain: side_channels as u32,
            num_events: events.len() as u32,
            sidechain: if side_channels > 0 { side_ptrs.as_ptr() } else { std::ptr::null() },
            events: if events.is_empty() { std::ptr::null() } else { events.as_ptr() },
            transport,
            process_mode: 0,
            engine_state: 0,
            silence_flags: 0,
        };
        let code = self.instance.process_raw(&mut block);
        if let Some(bus) = out_bus {
            // A block longer than the host promised in `setupProcessing` is not rendered;
            // its outputs are cleared, but never beyond that promise: the host's buffers
            // may be no longer.
            // SAFETY: the host's output bus is valid for this call, for `min(n, max_block)`.
            unsafe { finish_outputs(bus, &main_ptrs[..channels], n.min(max_block), wide, block.silence_flags) };
        }
        if n > max_block {
            return kInvalidArgument;
        }
        match code {
            status::OK | status::FAULTED => kResultOk,
            _ => kResultFalse,
        }
    }

    fn current_buses(&self) -> Buses {
        let side = if self.config.sidechain && self.side_active.load(Ordering::Relaxed) {
            self.side_channels.load(Ordering::Relaxed)
        } else {
            0
        };
        Buses { main: self.main_channels.load(Ordering::Relaxed), sidechain: side }
    }

    /// Buses in a direction as (bus type, name, channels) per index.
    fn bus(&self, media: MediaTypes, dir: BusDirections, index: i32) -> Option<(BusTypes, &'static str, i32)> {
        let effect = self.config.kind == PluginKind::Effect;
        let main = self.main_channels.load(Ordering::Relaxed) as i32;
        match (media, dir, index) {
            (MediaTypes_::kAudio, BusDirections_::kOutput, 0) => Some((BusTypes_::kMain, "Output", main)),
            (MediaTypes_::kAudio, BusDirections_::kInput, 0) if effect => Some((BusTypes_::kMain, "Input", main)),
            (MediaTypes_::kAudio, BusDirections_::kInput, 1) if effect && self.config.sidechain => {
                Some((BusTypes_::kAux, "Sidechain", self.side_channels.load(Ordering::Relaxed) as i32))
            }
            (MediaTypes_::kEvent, BusDirections_::kInput, 0) if self.config.midi_input => {
                Some((BusTypes_::kMain, "MIDI In", 16))
            }
            _ => None,
        }
    }
}

/// The `c`-th channel pointer of a 32-bit bus, or null.
///
/// # Safety
/// `ptrs` is null or valid for `count` pointers.
unsafe fn channel_ptr32(ptrs: *mut *mut f32, count: i32, c: usize) -> *mut f32 {
    if ptrs.is_null() || c >= count.max(0) as usize {
        return std::ptr::null_mut();
    }
    // SAFETY: within `count` (caller's guarantee).
    unsafe { *ptrs.add(c) }
}

/// Copies channel `c` of an input bus into `out` (zeros for a missing channel). Handles a
/// host that processes in place (the input pointer is `out`).
///
/// # Safety
/// `input` is a host bus valid for this call, its channels valid for `out.len()` samples.
unsafe fn fill_from(out: &mut [f32], input: &AudioBusBuffers, c: usize, wide: bool) {
    let n = out.len();
    if wide {
        // SAFETY: a 64-bit call: the union holds 64-bit pointers.
        let ptrs = unsafe { input.__field0.channelBuffers64 };
        if ptrs.is_null() || c >= input.numChannels.max(0) as usize {
            out.fill(0.0);
            return;
        }
        // SAFETY: within `numChannels`.
        let src = unsafe { *ptrs.add(c) };
        if src.is_null() {
            out.fill(0.0);
            return;
        }
        // SAFETY: valid for `n` doubles (VST3 contract); distinct from `out` (scratch).
        let src = unsafe { std::slice::from_raw_parts(src, n) };
        out.iter_mut().zip(src).for_each(|(o, &s)| *o = s as f32);
    } else {
        // SAFETY: a 32-bit call, see `channel_ptr32`.
        let src = unsafe { channel_ptr32(input.__field0.channelBuffers32, input.numChannels, c) };
        if src.is_null() {
            out.fill(0.0);
        } else if !std::ptr::eq(src, out.as_ptr()) {
            // SAFETY: valid for `n` floats; `copy` allows the (unusual) overlap of two host
            // buffers.
            unsafe { std::ptr::copy(src, out.as_mut_ptr(), n) };
        }
    }
}

/// Writes the engine's output to the host's output bus: 64-bit conversion, null channel
/// stand-ins, extra channels cleared, silence flags.
///
/// # Safety
/// `bus` is the host's output bus valid for this call; `main` are the pointers the engine
/// wrote, valid for `n` samples.
unsafe fn finish_outputs(bus: &mut AudioBusBuffers, main: &[*mut f32], n: usize, wide: bool, silence: u64) {
    let count = bus.numChannels.max(0) as usize;
    let mut flags = 0u64;
    for c in 0..count {
        let from = main.get(c).copied().filter(|p| !p.is_null());
        if wide {
            // SAFETY: a 64-bit call.
            let ptrs = unsafe { bus.__field0.channelBuffers64 };
            if ptrs.is_null() {
                break;
            }
            // SAFETY: within `numChannels`.
            let out = unsafe { *ptrs.add(c) };
            if out.is_null() {
                continue;
            }
            // SAFETY: valid for `n` doubles.
            let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
            match from {
                // SAFETY: a scratch buffer valid for `n` floats.
                Some(src) => out.iter_mut().zip(unsafe { std::slice::from_raw_parts(src, n) }).for_each(|(o, &s)| {
                    *o = f64::from(s);
                }),
                None => out.fill(0.0),
            }
        } else {
            // SAFETY: a 32-bit call.
            let out = unsafe { channel_ptr32(bus.__field0.channelBuffers32, bus.numChannels, c) };
            if out.is_null() {
                continue;
            }
            if from.is_none_or(|p| !std::ptr::eq(p, out)) {
                // SAFETY: valid for `n` floats.
                let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
                match from {
                    // SAFETY: a scratch buffer valid for `n` floats, distinct from `out`.
                    Some(src) => out.copy_from_slice(unsafe { std::slice::from_raw_parts(src, n) }),
                    None => out.fill(0.0),
                }
            }
        }
        let silent = if c < main.len() { (silence >> c) & 1 == 1 } else { true };
        if c < 64 && silent {
            flags |= 1 << c;
        }
    }
    bus.silenceFlags = flags;
}

/// The host's process context as the engine's transport.
fn transport_of(ctx: Option<&ProcessContext>) -> TransportInfo {
    use ProcessContext_::StatesAndFlags_ as F;
    let Some(ctx) = ctx else { return TransportInfo::default() };
    let has = |flag: u32| ctx.state & flag != 0;
    let mut flags = 0;
    for (theirs, ours) in [
        (F::kPlaying, transport_flags::PLAYING),
        (F::kTempoValid, transport_flags::TEMPO),
        (F::kProjectTimeMusicValid, transport_flags::POSITION),
        (F::kBarPositionValid, transport_flags::BAR),
        (F::kTimeSigValid, transport_flags::TIME_SIG),
        (F::kCycleActive, transport_flags::LOOPING),
    ] {
        if has(theirs) {
            flags |= ours;
        }
    }
    TransportInfo {
        tempo_bpm: ctx.tempo,
        ppq_position: ctx.projectTimeMusic,
        bar_start_ppq: ctx.barPositionMusic,
        time_sig_numerator: ctx.timeSigNumerator.max(0) as u32,
        time_sig_denominator: ctx.timeSigDenominator.max(0) as u32,
        flags,
        reserved: 0,
    }
}

/// `reported_latency` before the host first asked for the latency.
const NOT_REPORTED: u32 = u32::MAX;

/// The engine event for a MIDI controller parameter's change to `normalized`.
fn midi_event(time: u64, number: u8, normalized: f64) -> Event {
    let (kind, value) = match number {
        PITCH_BEND => (event_kind::PITCH_BEND, normalized * 2.0 - 1.0),
        CHANNEL_PRESSURE => (event_kind::CHANNEL_PRESSURE, normalized),
        _ => (event_kind::MIDI_CC, normalized),
    };
    Event { time, kind, index: u32::from(number), value, note_id: -1, channel: 0 }
}

fn note(time: u64, kind: u32, pitch: i16, value: f64, note_id: i32, channel: i16) -> Option<Event> {
    let pitch = u32::try_from(pitch).ok().filter(|p| *p < 128)?;
    let value = if value.is_finite() { value } else { 0.0 };
    Some(Event { time, kind, index: pitch, value, note_id, channel: channel.clamp(0, 15) as u32 })
}

impl IPluginBaseTrait for TrioPlugin {
    unsafe fn initialize(&self, context: *mut FUnknown) -> tresult {
        guard(|| {
            // Relaxed: read back only by this object's own calls on the same or later
            // host calls (the host orders `initialize` before everything else).
            self.main_thread.store(current_thread(), Ordering::Relaxed);
            if let Ok(mut slot) = self.run_loop.lock()
                && slot.is_none()
            {
                *slot = run_loop::Registration::register(context, self);
            }
            self.main_thread_work();
            kResultOk
        })
    }

    unsafe fn terminate(&self) -> tresult {
        guard(|| {
            if let Ok(mut slot) = self.run_loop.lock() {
                slot.take();
            }
            if let Ok(mut slot) = self.handler.lock() {
                slot.0 = None;
            }
            kResultOk
        })
    }
}

impl IComponentTrait for TrioPlugin {
    unsafe fn getControllerClassId(&self, _class_id: *mut TUID) -> tresult {
        self.deliver_main_thread_work();
        // This object is its own controller.
        kNotImplemented
    }

    unsafe fn setIoMode(&self, _mode: IoMode) -> tresult {
        kResultOk
    }

    unsafe fn getBusCount(&self, media_type: MediaType, dir: BusDirection) -> int32 {
        guard_value(0, || {
            self.main_thread_work();
            (0..2).filter(|&i| self.bus(media_type as MediaTypes, dir as BusDirections, i).is_some()).count() as int32
        })
    }

    unsafe fn getBusInfo(&self, media_type: MediaType, dir: BusDirection, index: int32, bus: *mut BusInfo) -> tresult {
        guard(|| {
            self.main_thread_work();
            // SAFETY: the host passes a valid `BusInfo` or null.
            let Some(out) = (unsafe { bus.as_mut() }) else { return kInvalidArgument };
            let Some((kind, name, channels)) = self.bus(media_type as MediaTypes, dir as BusDirections, index) else {
                return kInvalidArgument;
            };
            out.mediaType = media_type;
            out.direction = dir;
            out.channelCount = channels;
            copy_wstr(name, &mut out.name);
            out.busType = kind as BusType;
            out.flags = if kind == BusTypes_::kMain { BusInfo_::BusFlags_::kDefaultActive as uint32 } else { 0 };
            kResultOk
        })
    }

    unsafe fn getRoutingInfo(&self, _in_info: *mut RoutingInfo, _out_info: *mut RoutingInfo) -> tresult {
        self.deliver_main_thread_work();
        kNotImplemented
    }

    unsafe fn activateBus(&self, media_type: MediaType, dir: BusDirection, index: int32, state: TBool) -> tresult {
        guard(|| {
            let Some((kind, _, _)) = self.bus(media_type as MediaTypes, dir as BusDirections, index) else {
                return kInvalidArgument;
            };
            if kind == BusTypes_::kAux && media_type as MediaTypes == MediaTypes_::kAudio {
                // Relaxed: read by `process`, which the host does not run concurrently.
                self.side_active.store(state != 0, Ordering::Relaxed);
                self.instance.set_buses(self.current_buses());
            }
            kResultOk
        })
    }

    unsafe fn setActive(&self, state: TBool) -> tresult {
        guard(|| {
            self.instance.note_host_state(state_flags::ACTIVE, state != 0);
            if state != 0 {
                self.instance.expect_blocks();
            } else {
                self.instance.note_host_state(state_flags::PROCESSING, false);
                // Processing is over: what the audio thread counted is told now, not lost
                // with a host that exits without another main-thread call (this only
                // logs; it calls nothing of the host's).
                self.report_audio_thread_problems();
            }
            match self.instance.reset() {
                status::OK => kResultOk,
                _ => kResultFalse,
            }
        })
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        guard(|| self.load_state_from(state))
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        self.deliver_main_thread_work();
        guard(|| self.save_state_to(state))
    }
}

impl IAudioProcessorTrait for TrioPlugin {
    unsafe fn setBusArrangements(
        &self,
        inputs: *mut SpeakerArrangement,
        num_ins: int32,
        outputs: *mut SpeakerArrangement,
        num_outs: int32,
    ) -> tresult {
        guard(|| {
            let read = |ptr: *mut SpeakerArrangement, count: int32| -> Option<Vec<u64>> {
                if count < 0 || (count > 0 && ptr.is_null()) || count > 8 {
                    return None;
                }
                // SAFETY: valid for `count` entries when non-null (VST3 contract).
                Some((0..count as usize).map(|i| unsafe { *ptr.add(i) }).collect())
            };
            let (Some(ins), Some(outs)) = (read(inputs, num_ins), read(outputs, num_outs)) else {
                return kInvalidArgument;
            };
            let accepted = |arr: u64| Layout::from_speakers(arr).filter(|l| self.config.layouts.contains(l));
            let Some(main) = outs.first().copied().and_then(accepted).filter(|_| outs.len() == 1) else {
                return kResultFalse;
            };
            let side = match (self.config.kind, ins.as_slice()) {
                (PluginKind::Instrument, []) => None,
                (PluginKind::Effect, [input]) if *input == main.speakers() => None,
                (PluginKind::Effect, [input, side]) if *input == main.speakers() && self.config.sidechain => {
                    match Layout::from_speakers(*side) {
                        Some(l) => Some(l),
                        None => return kResultFalse,
                    }
                }
                _ => return kResultFalse,
            };
            // Relaxed: bus state read by `process`, which the host does not run meanwhile.
            self.main_channels.store(main.channels(), Ordering::Relaxed);
            if let Some(side) = side {
                self.side_channels.store(side.channels(), Ordering::Relaxed);
            }
            self.instance.set_buses(self.current_buses());
            kResultTrue
        })
    }

    unsafe fn getBusArrangement(&self, dir: BusDirection, index: int32, arr: *mut SpeakerArrangement) -> tresult {
        guard(|| {
            self.main_thread_work();
            // SAFETY: the host passes a valid pointer or null.
            let Some(arr) = (unsafe { arr.as_mut() }) else { return kInvalidArgument };
            let Some((_, _, channels)) = self.bus(MediaTypes_::kAudio, dir as BusDirections, index) else {
                return kInvalidArgument;
            };
            *arr = if channels == 1 { SpeakerArr::kMono } else { SpeakerArr::kStereo };
            kResultOk
        })
    }

    unsafe fn canProcessSampleSize(&self, size: int32) -> tresult {
        self.deliver_main_thread_work();
        // 64-bit: the engine renders 32-bit into scratch buffers sized by
        // `setupProcessing`, converted on the way in and out.
        match size as SymbolicSampleSizes {
            SymbolicSampleSizes_::kSample32 | SymbolicSampleSizes_::kSample64 => kResultTrue,
            _ => kResultFalse,
        }
    }

    unsafe fn getLatencySamples(&self) -> uint32 {
        guard_value(0, || {
            let latency = self.instance.latency_samples();
            // Relaxed: compared only by `main_thread_work`, see there.
            self.reported_latency.store(latency, Ordering::Relaxed);
            latency
        })
    }

    unsafe fn setupProcessing(&self, setup: *mut vst3::Steinberg::Vst::ProcessSetup) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid setup or null.
            let Some(setup) = (unsafe { setup.as_ref() }) else { return kInvalidArgument };
            match setup.symbolicSampleSize as SymbolicSampleSizes {
                SymbolicSampleSizes_::kSample32 | SymbolicSampleSizes_::kSample64 => {}
                _ => return kResultFalse,
            }
            let wanted = ProcessSetup {
                sample_rate: setup.sampleRate,
                max_block_size: u32::try_from(setup.maxSamplesPerBlock).unwrap_or(0),
                offline: setup.processMode == ProcessModes_::kOffline as int32,
            };
            // The host never calls this during `process`; if one does, refuse.
            let Ok(mut scratch) = self.scratch.try_borrow_mut() else { return kResultFalse };
            self.instance.set_buses(self.current_buses());
            match self.instance.setup_processing(wanted) {
                Ok(()) => {
                    *scratch = AudioScratch::new(wanted.max_block_size as usize);
                    kResultOk
                }
                Err(e) => {
                    log::warn!("setupProcessing: {e}");
                    kResultFalse
                }
            }
        })
    }

    unsafe fn setProcessing(&self, state: TBool) -> tresult {
        guard(|| {
            self.instance.note_host_state(state_flags::PROCESSING, state != 0);
            if state != 0 {
                self.instance.expect_blocks();
            }
            kResultOk
        })
    }

    unsafe fn process(&self, data: *mut vst3::Steinberg::Vst::ProcessData) -> tresult {
        guard(|| {
            // SAFETY: the host passes valid process data or null.
            match unsafe { data.as_mut() } {
                Some(data) => {
                    // The whole call is checked, not only the engine's part; a violation is
                    // counted here and reported by the host's main thread (never printed on
                    // this one).
                    let (result, made) = trio::realtime::count_allocations(|| self.process_block(data));
                    self.instance.block().stats.add_alloc_violations(made);
                    result
                }
                None => kInvalidArgument,
            }
        })
    }

    /// What the engine reports (`set_tail`).
    unsafe fn getTailSamples(&self) -> uint32 {
        self.deliver_main_thread_work();
        guard_value(kNoTail, || match self.instance.tail_samples() {
            None => kInfiniteTail,
            Some(0) => kNoTail,
            Some(n) => n,
        })
    }
}

impl IProcessContextRequirementsTrait for TrioPlugin {
    unsafe fn getProcessContextRequirements(&self) -> uint32 {
        self.deliver_main_thread_work();
        use IProcessContextRequirements_::Flags_ as F;
        (F::kNeedTempo
            | F::kNeedTimeSignature
            | F::kNeedProjectTimeMusic
            | F::kNeedBarPositionMusic
            | F::kNeedTransportState
            | F::kNeedCycleMusic) as uint32
    }
}

impl IEditControllerTrait for TrioPlugin {
    unsafe fn setComponentState(&self, _state: *mut IBStream) -> tresult {
        // The component and the controller are one object sharing one state.
        kResultOk
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        guard(|| self.load_state_from(state))
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        self.deliver_main_thread_work();
        guard(|| self.save_state_to(state))
    }

    unsafe fn getParameterCount(&self) -> int32 {
        guard_value(0, || {
            self.main_thread_work();
            let tables = self.tables();
            (tables.defs.params.len() + tables.midi.len()) as int32
        })
    }

    unsafe fn getParameterInfo(&self, index: int32, info: *mut ParameterInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `ParameterInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            self.main_thread_work();
            let tables = self.tables();
            let Some(i) = usize::try_from(index).ok() else { return kInvalidArgument };
            if let Some(&number) = i.checked_sub(tables.defs.params.len()).and_then(|m| tables.midi.get(m)) {
                // A MIDI controller for the engine: hidden, for hosts to map controllers to.
                out.id = midi_param_id(number);
                copy_wstr(&midi_param_name(number), &mut out.title);
                copy_wstr(&midi_param_name(number), &mut out.shortTitle);
                copy_wstr("", &mut out.units);
                out.stepCount = 0;
                out.defaultNormalizedValue = midi_param_default(number);
                out.unitId = ROOT_UNIT;
                out.flags = ParameterInfo_::ParameterFlags_::kIsHidden as int32;
                return kResultOk;
            }
            if i >= tables.defs.params.len() {
                return kInvalidArgument;
            }
            let p = &tables.defs.params[i];
            out.id = p.id;
            copy_wstr(&p.name, &mut out.title);
            copy_wstr(&p.short_name, &mut out.shortTitle);
            copy_wstr(&p.unit, &mut out.units);
            out.stepCount = p.mapping.step_count() as int32;
            out.defaultNormalizedValue = p.default_normalized;
            out.unitId = tables.unit_of[i];
            let mut flags = 0;
            for (ours, theirs) in [
                (param_flags::AUTOMATABLE, ParameterInfo_::ParameterFlags_::kCanAutomate),
                (param_flags::BYPASS, ParameterInfo_::ParameterFlags_::kIsBypass),
                (param_flags::LIST, ParameterInfo_::ParameterFlags_::kIsList),
                (param_flags::READ_ONLY, ParameterInfo_::ParameterFlags_::kIsReadOnly),
                (param_flags::HIDDEN, ParameterInfo_::ParameterFlags_::kIsHidden),
            ] {
                if p.flags & ours != 0 {
                    flags |= theirs;
                }
            }
            out.flags = flags as int32;
            kResultOk
        })
    }

    unsafe fn getParamStringByValue(&self, id: ParamID, value: ParamValue, string: *mut String128) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `String128` or null.
            let Some(out) = (unsafe { string.as_mut() }) else { return kInvalidArgument };
            self.main_thread_work();
            // The range check first: the tables are looked at only for the framework's ids.
            if midi_controller_of(id).is_some() && self.tables().midi_controller(id).is_some() {
                copy_wstr(&format!("{:.3}", value.clamp(0.0, 1.0)), out);
                return kResultOk;
            }
            match self.instance.format_value(id, value) {
                Ok(text) => {
                    copy_wstr(&text, out);
                    kResultOk
                }
                Err(_) => kInvalidArgument,
            }
        })
    }

    unsafe fn getParamValueByString(&self, id: ParamID, string: *mut TChar, value: *mut ParamValue) -> tresult {
        guard(|| {
            // SAFETY: the host passes a NUL-terminated string (a String128) or null.
            let Some(text) = (unsafe { read_wstr(string, 128) }) else { return kInvalidArgument };
            // SAFETY: the host passes a valid out pointer or null.
            let Some(out) = (unsafe { value.as_mut() }) else { return kInvalidArgument };
            self.main_thread_work();
            // The range check first: the tables are looked at only for the framework's ids.
            if midi_controller_of(id).is_some() && self.tables().midi_controller(id).is_some() {
                return match text.trim().parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => {
                        *out = v;
                        kResultOk
                    }
                    _ => kResultFalse,
                };
            }
            match self.instance.parse_value(id, &text) {
                Ok(v) => {
                    *out = v;
                    kResultOk
                }
                Err(_) => kResultFalse,
            }
        })
    }

    // MIDI controller parameters have no mapping: plain = normalized (`map_or` below).
    unsafe fn normalizedParamToPlain(&self, id: ParamID, value: ParamValue) -> ParamValue {
        guard_value(0.0, || {
            self.main_thread_work();
            self.tables().info(id).map_or(value, |p| p.mapping.to_plain(value))
        })
    }

    unsafe fn plainParamToNormalized(&self, id: ParamID, plain: ParamValue) -> ParamValue {
        guard_value(0.0, || {
            self.main_thread_work();
            self.tables().info(id).map_or(plain, |p| p.mapping.to_normalized(plain))
        })
    }

    unsafe fn getParamNormalized(&self, id: ParamID) -> ParamValue {
        guard_value(0.0, || {
            self.main_thread_work();
            if let Some(n) = midi_controller_of(id) {
                // Relaxed: an independent value, read back as the host last set it.
                return f64::from_bits(self.midi_values[usize::from(n)].load(Ordering::Relaxed));
            }
            self.instance.param_normalized(id).unwrap_or(0.0)
        })
    }

    /// Safe on the audio thread (hosts call it there): atomics only.
    unsafe fn setParamNormalized(&self, id: ParamID, value: ParamValue) -> tresult {
        guard(|| {
            if let Some(n) = midi_controller_of(id) {
                if !value.is_finite() {
                    return kInvalidArgument;
                }
                // Relaxed: see `getParamNormalized`. The engine hears a controller only
                // through `process` (its parameter changes), like any MIDI event.
                self.midi_values[usize::from(n)].store(value.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
                return kResultOk;
            }
            if self.instance.set_param_normalized(id, value) { kResultOk } else { kInvalidArgument }
        })
    }

    unsafe fn setComponentHandler(&self, handler: *mut IComponentHandler) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid handler or null; `from_raw` adds a reference.
            let handler = unsafe { ComRef::from_raw(handler) }.map(|h| h.to_com_ptr());
            match self.handler.lock() {
                Ok(mut slot) => slot.0 = handler,
                Err(_) => return kResultFalse,
            }
            // Requests made before the host gave a handler go out now (lock released).
            self.main_thread_work();
            kResultOk
        })
    }

    unsafe fn createView(&self, _name: *const c_char) -> *mut IPlugView {
        std::ptr::null_mut()
    }
}

impl IMidiMappingTrait for TrioPlugin {
    unsafe fn getMidiControllerAssignment(
        &self,
        bus_index: int32,
        _channel: int16,
        cc: CtrlNumber,
        id: *mut ParamID,
    ) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid out pointer or null.
            let Some(out) = (unsafe { id.as_mut() }) else { return kInvalidArgument };
            self.main_thread_work();
            if !self.config.midi_input || bus_index != 0 {
                return kResultFalse;
            }
            let tables = self.tables();
            let Some(number) = usize::try_from(cc).ok().filter(|&n| n < MIDI_CONTROLLERS) else { return kResultFalse };
            let target = match tables.defs.cc_map[number] {
                Some(param) => Some(param),
                None => tables.defs.raw_midi[number].then(|| midi_param_id(number as u8)),
            };
            match target {
                Some(param) => {
                    *out = param;
                    kResultTrue
                }
                None => kResultFalse,
            }
        })
    }
}

impl IUnitInfoTrait for TrioPlugin {
    unsafe fn getUnitCount(&self) -> int32 {
        guard_value(1, || {
            self.main_thread_work();
            self.tables().units.len() as int32 + 1
        })
    }

    unsafe fn getUnitInfo(&self, index: int32, info: *mut UnitInfo) -> tresult {
        guard(|| {
            self.main_thread_work();
            // SAFETY: the host passes a valid `UnitInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            let tables = self.tables();
            let name = match index {
                0 => "Root",
                i => match usize::try_from(i - 1).ok().and_then(|i| tables.units.get(i)) {
                    Some(name) => name.as_str(),
                    None => return kInvalidArgument,
                },
            };
            out.id = index;
            out.parentUnitId = if index == 0 { kNoParentUnitId } else { ROOT_UNIT };
            copy_wstr(name, &mut out.name);
            out.programListId = kNoProgramListId;
            kResultOk
        })
    }

    unsafe fn getProgramListCount(&self) -> int32 {
        self.deliver_main_thread_work();
        0
    }

    unsafe fn getProgramListInfo(&self, _index: int32, _info: *mut ProgramListInfo) -> tresult {
        self.deliver_main_thread_work();
        kInvalidArgument
    }

    unsafe fn getProgramName(&self, _list: ProgramListID, _index: int32, _name: *mut String128) -> tresult {
        self.deliver_main_thread_work();
        kInvalidArgument
    }

    unsafe fn getProgramInfo(
        &self,
        _list: ProgramListID,
        _index: int32,
        _attribute: vst3::Steinberg::Vst::CString,
        _value: *mut String128,
    ) -> tresult {
        self.deliver_main_thread_work();
        kInvalidArgument
    }

    unsafe fn hasProgramPitchNames(&self, _list: ProgramListID, _index: int32) -> tresult {
        self.deliver_main_thread_work();
        kResultFalse
    }

    unsafe fn getProgramPitchName(
        &self,
        _list: ProgramListID,
        _index: int32,
        _pitch: int16,
        _name: *mut String128,
    ) -> tresult {
        self.deliver_main_thread_work();
        kResultFalse
    }

    unsafe fn getSelectedUnit(&self) -> UnitID {
        self.deliver_main_thread_work();
        ROOT_UNIT
    }

    unsafe fn selectUnit(&self, _id: UnitID) -> tresult {
        kResultOk
    }

    unsafe fn getUnitByBus(
        &self,
        _media_type: MediaType,
        _dir: BusDirection,
        _bus_index: int32,
        _channel: int32,
        unit: *mut UnitID,
    ) -> tresult {
        guard(|| {
            self.main_thread_work();
            // SAFETY: the host passes a valid out pointer or null.
            let Some(out) = (unsafe { unit.as_mut() }) else { return kInvalidArgument };
            *out = ROOT_UNIT;
            kResultOk
        })
    }

    unsafe fn setUnitProgramData(&self, _list_or_unit: int32, _index: int32, _data: *mut IBStream) -> tresult {
        kNotImplemented
    }
}
