//! The plugin object: one COM object that is both the audio processor and its own edit
//! controller (a "single component" plugin, as nih-plug builds them), so the processor
//! and controller share the instance's block without any message passing.
//!
//! Which host call, on which thread, touches what:
//! - `process` (audio thread): the engine, through [`Instance::process_raw`], and the
//!   scratch event list. Never allocates, locks or waits.
//! - `setupProcessing`, `setActive` (any non-audio thread): the engine, through the
//!   instance's non-blocking engine guard.
//! - parameter reads and writes (any thread, hosts do not obey the spec): block atomics.
//! - formatting, parsing, state, presets (any non-audio thread): the control worker.
//! - the cached parameter table, units and MIDI CC map ([`ParamTables`]): rebuilt on the
//!   host's main thread when the control module serving the instance changed, read by
//!   controller calls on any thread; `process` never reads them.
//! - the component handler: called only on the host's main thread (the thread that called
//!   `initialize`), at entry of a controller call, never while a lock of ours is held.
//!
//! Main-thread work: a hot reload runs on a background thread and leaves restart flags in
//! the instance ([`Instance::take_restart_request`]). The plugin cannot call the host from
//! there (the spec wants `restartComponent` on the UI thread, and Linux hosts offer no
//! run loop to all plugins), so it delivers them at the entry of the next controller call
//! the host makes on its main thread: the host calls those all the time (parameter
//! display, state, automation read-back). Before delivering, it rebuilds the cached
//! tables, so the host's re-query after `kParamTitlesChanged` sees the new parameters.

use std::ffi::c_char;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use atomic_refcell::AtomicRefCell;
use shared::abi::{self, Event, ParamInfo, status};
use shared::block::Transport;
use shared::params::{MappingKind, ParamMapping};
use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{Class, ComPtr, ComRef};

use super::util::{copy_wstr, guard, guard_value, read_stream, read_wstr, write_stream};
use crate::{Instance, Modules, ProcessSetup};

/// Events one block can carry; more are dropped and counted in `stats.events_dropped`.
const MAX_BLOCK_EVENTS: usize = 4096;

/// The root unit and the first group unit's id.
const ROOT_UNIT: UnitID = 0;

/// Output channels the engine renders into scratch buffers for 64-bit processing.
const SCRATCH_CHANNELS: usize = 2;

/// Audio-thread scratch, borrowed inside `process`, and resized by `setupProcessing`
/// (which the host never calls during `process`; if one does, setup is refused).
struct AudioScratch {
    events: Vec<Event>,
    /// 32-bit buffers the engine renders into when the host processes in 64 bits; each
    /// holds the setup's max block size, so `process` never allocates.
    wide: [Vec<f32>; SCRATCH_CHANNELS],
}

/// What the controller reports about parameters, cached from the control module.
struct ParamTables {
    /// The [`Instance::control_generation`] these were built from.
    generation: u64,
    params: Vec<ParamInfo>,
    /// Unit names; a parameter's unit is its group's position here plus one.
    units: Vec<String>,
    midi_map: [Option<u32>; 128],
}

impl ParamTables {
    /// Asks the control module (on its worker) for the parameters and the CC map.
    fn build(instance: &Instance) -> Result<Self, String> {
        // Read the generation first: if a reload lands while building, the tables are
        // tagged with the older generation and rebuilt at the next check.
        let generation = instance.control_generation();
        let params = instance.param_infos().map_err(|e| e.to_string())?;
        let mut units: Vec<String> = Vec::new();
        for p in &params {
            let group = abi::str_from_fixed(&p.group).to_owned();
            if !group.is_empty() && !units.contains(&group) {
                units.push(group);
            }
        }
        let mut midi_map = [None; 128];
        for (cc, slot) in midi_map.iter_mut().enumerate() {
            *slot = instance.midi_cc_param(cc as u32).map_err(|e| e.to_string())?;
        }
        Ok(Self { generation, params, units, midi_map })
    }

    fn param_by_id(&self, id: ParamID) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.id == id)
    }

    fn unit_of(&self, info: &ParamInfo) -> UnitID {
        let group = abi::str_from_fixed(&info.group);
        self.units.iter().position(|u| u == group).map_or(ROOT_UNIT, |i| i as UnitID + 1)
    }
}

/// The calling thread's identity, without allocating or a system call (unlike
/// `std::thread::current`, which may allocate the first time on a thread).
fn current_thread() -> u64 {
    // SAFETY: `pthread_self` has no preconditions and always succeeds.
    unsafe { libc::pthread_self() as u64 }
}

/// Safety margin added to the release time in [`IAudioProcessorTrait::getTailSamples`]:
/// the filter's ring-out and the bypass and steal fades, all shorter than this.
const TAIL_MARGIN_S: f64 = 0.010;

/// The host's component handler, kept for notifications (`restartComponent`).
struct HandlerSlot(Option<ComPtr<IComponentHandler>>);

// SAFETY: a component handler is a host object the VST3 spec lets plugins keep and call;
// the slot is only used under its mutex, from non-audio threads.
unsafe impl Send for HandlerSlot {}

/// A plugin instance as the host sees it.
pub struct TrioPlugin {
    instance: Instance,
    /// Written on the main thread by [`TrioPlugin::main_thread_work`] (and at creation);
    /// read by controller calls on any thread. Never touched by `process`.
    tables: RwLock<Arc<ParamTables>>,
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
}

impl Class for TrioPlugin {
    type Interfaces =
        (IComponent, IAudioProcessor, IProcessContextRequirements, IEditController, IMidiMapping, IUnitInfo);
}

impl TrioPlugin {
    /// Creates the instance: shared block, engine, control module instance.
    ///
    /// # Errors
    /// A sentence saying which part refused.
    pub fn new(modules: &Modules) -> Result<Self, String> {
        let setup = ProcessSetup::default();
        let instance = Instance::new(modules, setup).map_err(|e| e.to_string())?;
        let tables = ParamTables::build(&instance)?;
        let block = setup.max_block_size as usize;
        Ok(Self {
            instance,
            tables: RwLock::new(Arc::new(tables)),
            scratch: AtomicRefCell::new(AudioScratch {
                events: Vec::with_capacity(MAX_BLOCK_EVENTS),
                wide: [vec![0.0; block], vec![0.0; block]],
            }),
            handler: Mutex::new(HandlerSlot(None)),
            main_thread: AtomicU64::new(0),
            reported_latency: AtomicU32::new(0),
        })
    }

    /// The instance behind this plugin object.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The current parameter tables (a reference-count increment under a read lock that
    /// is only ever held for that long).
    fn tables(&self) -> Arc<ParamTables> {
        let guard = self.tables.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    /// Whether the calling thread is the one that called `initialize`.
    fn on_main_thread(&self) -> bool {
        // Relaxed: the value is the caller's own thread id or another thread's; a stale
        // read can only make a call skip delivery, which the next call makes up.
        let main = self.main_thread.load(Ordering::Relaxed);
        main != 0 && main == current_thread()
    }

    /// Main-thread work, run at the entry of controller calls: rebuilds the cached tables
    /// if a new control module serves the instance, then delivers pending restart flags
    /// to the host. Does nothing on any other thread than the host's main thread, so never
    /// on the audio thread; holds no lock while calling the host (which may call back).
    fn main_thread_work(&self) {
        if !self.on_main_thread() {
            return;
        }
        self.refresh_tables();
        let mut flags = self.instance.take_restart_request();
        let latency = self.current_latency();
        // Relaxed: only this (main) thread compares; `getLatencySamples` stores.
        if latency != self.reported_latency.load(Ordering::Relaxed) {
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

    /// Rebuilds the parameter tables if they come from an older control module.
    fn refresh_tables(&self) {
        let generation = self.instance.control_generation();
        if self.tables().generation == generation {
            return;
        }
        match ParamTables::build(&self.instance) {
            Ok(tables) => {
                let mut guard = self.tables.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                *guard = Arc::new(tables);
            }
            Err(e) => log::warn!("could not re-read the parameters after a control reload: {e}"),
        }
    }

    /// The processing latency the plugin adds, in samples. The engine adds none; an
    /// engine that did would report it here, and [`TrioPlugin::main_thread_work`] tells
    /// the host when it changes (`kLatencyChanged`).
    fn current_latency(&self) -> u32 {
        0
    }

    /// Whether the control module defined parameter `id` (a block atomic: any thread).
    fn param_defined(&self, id: ParamID) -> bool {
        // Relaxed: set once by the control module before the instance is handed out.
        self.instance.block().param(id).is_some_and(|slot| slot.defined.load(Ordering::Relaxed) != 0)
    }

    fn mapping(&self, id: ParamID) -> Option<ParamMapping> {
        self.instance.block().param(id).and_then(|slot| slot.mapping()).or_else(|| {
            let tables = self.tables();
            let p = tables.param_by_id(id)?;
            Some(ParamMapping { kind: MappingKind::from_u32(p.mapping_kind)?, min: p.min, max: p.max, skew: p.skew })
        })
    }

    fn load_state_from(&self, stream: *mut IBStream) -> tresult {
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

    /// The audio callback body. Runs on the host's audio thread.
    fn process_block(&self, data: &mut ProcessData) -> tresult {
        let Ok(mut scratch) = self.scratch.try_borrow_mut() else { return kResultFalse };
        let events = &mut scratch.events;
        events.clear();
        let num_samples = data.numSamples.max(0) as u32;
        let mut dropped = 0u64;
        // SAFETY: the host's parameter changes are valid for this call, or null.
        if let Some(changes) = unsafe { ComRef::from_raw(data.inputParameterChanges) } {
            // SAFETY: a valid interface for this call (all calls below likewise).
            let count = unsafe { changes.getParameterCount() };
            for i in 0..count {
                // SAFETY: as above.
                let Some(queue) = (unsafe { ComRef::from_raw(changes.getParameterData(i)) }) else { continue };
                // SAFETY: as above.
                let id = unsafe { queue.getParameterId() };
                // SAFETY: as above.
                for p in 0..unsafe { queue.getPointCount() } {
                    let (mut offset, mut value) = (0, 0.0);
                    // SAFETY: as above; the out pointers are locals.
                    if unsafe { queue.getPoint(p, &mut offset, &mut value) } != kResultOk {
                        continue;
                    }
                    push_event(
                        events,
                        &mut dropped,
                        Event::param(offset.clamp(0, num_samples as i32) as u64, id, value),
                    );
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
                let time = e.sampleOffset.clamp(0, num_samples as i32) as u64;
                let event = match u32::from(e.r#type) {
                    t if t == Event_::EventTypes_::kNoteOnEvent => {
                        // SAFETY: the type tag says the union holds a note-on.
                        let on = unsafe { e.__field0.noteOn };
                        note(time, abi::event_kind::NOTE_ON, on.pitch, f64::from(on.velocity), on.noteId, on.channel)
                    }
                    t if t == Event_::EventTypes_::kNoteOffEvent => {
                        // SAFETY: the type tag says the union holds a note-off.
                        let off = unsafe { e.__field0.noteOff };
                        note(
                            time,
                            abi::event_kind::NOTE_OFF,
                            off.pitch,
                            f64::from(off.velocity),
                            off.noteId,
                            off.channel,
                        )
                    }
                    _ => None,
                };
                if let Some(event) = event {
                    push_event(events, &mut dropped, event);
                }
            }
        }
        sort_by_time(events);
        if dropped > 0 {
            // Relaxed: a telemetry counter.
            self.instance.block().stats.events_dropped.fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the host's process context is valid for this call, or null.
        if let Some(ctx) = unsafe { data.processContext.as_ref() } {
            self.publish_transport(ctx);
        }

        // Output bus 0. No buses, no channels or no samples: a parameter flush.
        // SAFETY: `outputs` is valid for `numOutputs` buses when non-null (VST3 contract).
        let bus = if data.numOutputs > 0 { unsafe { data.outputs.as_mut() } } else { None };
        let wide = data.symbolicSampleSize as SymbolicSampleSizes == SymbolicSampleSizes_::kSample64;
        let AudioScratch { events, wide: scratch_channels } = &mut *scratch;
        let mut block = abi::ProcessData {
            num_samples: 0,
            num_outputs: 0,
            outputs: std::ptr::null(),
            num_inputs: 0,
            num_events: events.len() as u32,
            inputs: std::ptr::null(),
            events: if events.is_empty() { std::ptr::null() } else { events.as_ptr() },
            silence_flags: 0,
        };
        let code = match bus {
            Some(bus) if bus.numChannels > 0 && wide => {
                // SAFETY: a 64-bit call, so the union holds 64-bit channel pointers.
                let ptrs = unsafe { bus.__field0.channelBuffers64 };
                if ptrs.is_null() {
                    self.instance.process_raw(&mut block)
                } else {
                    let len = num_samples as usize;
                    if scratch_channels.iter().any(|c| c.len() < len) {
                        // More than the setup's max block: the engine would refuse too.
                        return kResultFalse;
                    }
                    let [left, right] = scratch_channels;
                    let pointers = [left.as_mut_ptr(), right.as_mut_ptr()];
                    block.num_samples = num_samples;
                    block.num_outputs = SCRATCH_CHANNELS as u32;
                    block.outputs = pointers.as_ptr();
                    let code = self.instance.process_raw(&mut block);
                    // SAFETY: the host gives `numChannels` channel pointers, each valid for
                    // `numSamples` doubles (VST3 contract).
                    let outs = unsafe { std::slice::from_raw_parts(ptrs, bus.numChannels as usize) };
                    let mut silence = 0u64;
                    for (c, &out) in outs.iter().enumerate() {
                        if out.is_null() {
                            continue;
                        }
                        // SAFETY: as above.
                        let out = unsafe { std::slice::from_raw_parts_mut(out, len) };
                        match scratch_channels.get(c) {
                            Some(src) => out.iter_mut().zip(&src[..len]).for_each(|(o, &s)| *o = f64::from(s)),
                            None => out.fill(0.0),
                        }
                        // Extra channels are cleared, so silent; the others as the engine says.
                        let silent = c >= SCRATCH_CHANNELS || (block.silence_flags >> c) & 1 == 1;
                        if c < 64 && silent {
                            silence |= 1 << c;
                        }
                    }
                    bus.silenceFlags = silence;
                    code
                }
            }
            Some(bus) if bus.numChannels > 0 => {
                // SAFETY: a 32-bit call, so the union holds 32-bit channel pointers.
                let ptrs = unsafe { bus.__field0.channelBuffers32 };
                if !ptrs.is_null() {
                    block.num_samples = num_samples;
                    block.num_outputs = bus.numChannels as u32;
                    block.outputs = ptrs as *const *mut f32;
                }
                let code = self.instance.process_raw(&mut block);
                bus.silenceFlags = block.silence_flags;
                code
            }
            _ => self.instance.process_raw(&mut block),
        };
        match code {
            status::OK | status::FAULTED => kResultOk,
            _ => kResultFalse,
        }
    }

    fn publish_transport(&self, ctx: &ProcessContext) {
        use ProcessContext_::StatesAndFlags_ as F;
        let has = |flag: u32| ctx.state & flag != 0;
        let transport = Transport {
            // Relaxed: the engine's own clock, for the control module's scheduling.
            sample_time: self.instance.block().header.sample_clock.load(std::sync::atomic::Ordering::Relaxed),
            tempo_bpm: if has(F::kTempoValid) { ctx.tempo } else { 0.0 },
            ppq_position: if has(F::kProjectTimeMusicValid) { ctx.projectTimeMusic } else { 0.0 },
            bar_start_ppq: if has(F::kBarPositionValid) { ctx.barPositionMusic } else { 0.0 },
            time_sig: if has(F::kTimeSigValid) {
                (ctx.timeSigNumerator.max(0) as u32, ctx.timeSigDenominator.max(0) as u32)
            } else {
                (0, 0)
            },
            playing: has(F::kPlaying),
        };
        // SAFETY: only `process` publishes, and the host calls it on one thread at a time
        // (the scratch borrow above enforces it).
        unsafe { self.instance.block().transport.publish(&transport) };
    }
}

fn note(time: u64, kind: u32, pitch: i16, value: f64, note_id: i32, channel: i16) -> Option<Event> {
    let pitch = u32::try_from(pitch).ok().filter(|p| *p < 128)?;
    Some(Event { time, kind, index: pitch, value, note_id, channel: channel.clamp(0, 15) as u32 })
}

fn push_event(events: &mut Vec<Event>, dropped: &mut u64, event: Event) {
    if events.len() < events.capacity() {
        events.push(event);
    } else {
        *dropped += 1;
    }
}

/// Stable insertion sort by time: no allocation, and events of one source keep their
/// order (a note-off and note-on at the same sample stay in the host's order).
fn sort_by_time(events: &mut [Event]) {
    for i in 1..events.len() {
        let mut j = i;
        while j > 0 && events[j - 1].time > events[j].time {
            events.swap(j - 1, j);
            j -= 1;
        }
    }
}

impl IPluginBaseTrait for TrioPlugin {
    unsafe fn initialize(&self, _context: *mut FUnknown) -> tresult {
        guard(|| {
            // Relaxed: read back only by this object's own calls on the same or later
            // host calls (the host orders `initialize` before everything else).
            self.main_thread.store(current_thread(), Ordering::Relaxed);
            self.main_thread_work();
            kResultOk
        })
    }

    unsafe fn terminate(&self) -> tresult {
        guard(|| {
            if let Ok(mut slot) = self.handler.lock() {
                slot.0 = None;
            }
            kResultOk
        })
    }
}

impl IComponentTrait for TrioPlugin {
    unsafe fn getControllerClassId(&self, _class_id: *mut TUID) -> tresult {
        // This object is its own controller.
        kNotImplemented
    }

    unsafe fn setIoMode(&self, _mode: IoMode) -> tresult {
        kResultOk
    }

    unsafe fn getBusCount(&self, media_type: MediaType, dir: BusDirection) -> int32 {
        match (media_type as MediaTypes, dir as BusDirections) {
            (MediaTypes_::kAudio, BusDirections_::kOutput) => 1,
            (MediaTypes_::kEvent, BusDirections_::kInput) => 1,
            _ => 0,
        }
    }

    unsafe fn getBusInfo(&self, media_type: MediaType, dir: BusDirection, index: int32, bus: *mut BusInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `BusInfo` or null.
            let Some(bus) = (unsafe { bus.as_mut() }) else { return kInvalidArgument };
            if index != 0 {
                return kInvalidArgument;
            }
            match (media_type as MediaTypes, dir as BusDirections) {
                (MediaTypes_::kAudio, BusDirections_::kOutput) => {
                    bus.mediaType = media_type;
                    bus.direction = dir;
                    bus.channelCount = 2;
                    copy_wstr("Output", &mut bus.name);
                    bus.busType = BusTypes_::kMain as BusType;
                    bus.flags = BusInfo_::BusFlags_::kDefaultActive as uint32;
                    kResultOk
                }
                (MediaTypes_::kEvent, BusDirections_::kInput) => {
                    bus.mediaType = media_type;
                    bus.direction = dir;
                    bus.channelCount = 16;
                    copy_wstr("MIDI In", &mut bus.name);
                    bus.busType = BusTypes_::kMain as BusType;
                    bus.flags = BusInfo_::BusFlags_::kDefaultActive as uint32;
                    kResultOk
                }
                _ => kInvalidArgument,
            }
        })
    }

    unsafe fn getRoutingInfo(&self, _in_info: *mut RoutingInfo, _out_info: *mut RoutingInfo) -> tresult {
        kNotImplemented
    }

    unsafe fn activateBus(&self, media_type: MediaType, dir: BusDirection, index: int32, _state: TBool) -> tresult {
        // SAFETY: `getBusCount` reads only its arguments.
        if index >= 0 && index < unsafe { self.getBusCount(media_type, dir) } { kResultOk } else { kInvalidArgument }
    }

    unsafe fn setActive(&self, _state: TBool) -> tresult {
        guard(|| match self.instance.reset() {
            status::OK => kResultOk,
            _ => kResultFalse,
        })
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        guard(|| {
            self.main_thread_work();
            self.load_state_from(state)
        })
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        guard(|| {
            self.main_thread_work();
            self.save_state_to(state)
        })
    }
}

impl IAudioProcessorTrait for TrioPlugin {
    unsafe fn setBusArrangements(
        &self,
        _inputs: *mut SpeakerArrangement,
        num_ins: int32,
        outputs: *mut SpeakerArrangement,
        num_outs: int32,
    ) -> tresult {
        guard(|| {
            // SAFETY: `outputs` is valid for `num_outs` entries when non-null.
            let stereo_out = num_outs == 1 && unsafe { outputs.as_ref() } == Some(&SpeakerArr::kStereo);
            if num_ins == 0 && stereo_out { kResultTrue } else { kResultFalse }
        })
    }

    unsafe fn getBusArrangement(&self, dir: BusDirection, index: int32, arr: *mut SpeakerArrangement) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid pointer or null.
            let Some(arr) = (unsafe { arr.as_mut() }) else { return kInvalidArgument };
            if dir as BusDirections == BusDirections_::kOutput && index == 0 {
                *arr = SpeakerArr::kStereo;
                kResultOk
            } else {
                kInvalidArgument
            }
        })
    }

    unsafe fn canProcessSampleSize(&self, size: int32) -> tresult {
        // 64-bit: the engine renders 32-bit into scratch buffers sized by
        // `setupProcessing`, converted on the way out.
        match size as SymbolicSampleSizes {
            SymbolicSampleSizes_::kSample32 | SymbolicSampleSizes_::kSample64 => kResultTrue,
            _ => kResultFalse,
        }
    }

    unsafe fn getLatencySamples(&self) -> uint32 {
        guard_value(0, || {
            let latency = self.current_latency();
            // Relaxed: compared only by `main_thread_work`, see there.
            self.reported_latency.store(latency, Ordering::Relaxed);
            latency
        })
    }

    unsafe fn setupProcessing(&self, setup: *mut vst3::Steinberg::Vst::ProcessSetup) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid setup or null.
            let Some(setup) = (unsafe { setup.as_ref() }) else { return kInvalidArgument };
            let wide = match setup.symbolicSampleSize as SymbolicSampleSizes {
                SymbolicSampleSizes_::kSample32 => false,
                SymbolicSampleSizes_::kSample64 => true,
                _ => return kResultFalse,
            };
            let wanted = ProcessSetup {
                sample_rate: setup.sampleRate,
                max_block_size: u32::try_from(setup.maxSamplesPerBlock).unwrap_or(0),
            };
            // The host never calls this during `process`; if one does, refuse.
            let Ok(mut scratch) = self.scratch.try_borrow_mut() else { return kResultFalse };
            match self.instance.setup_processing(wanted) {
                Ok(()) => {
                    // 64-bit scratch only when asked for; 32-bit frees it.
                    let len = if wide { wanted.max_block_size as usize } else { 0 };
                    for channel in &mut scratch.wide {
                        channel.clear();
                        channel.resize(len, 0.0);
                        channel.shrink_to_fit();
                    }
                    kResultOk
                }
                Err(e) => {
                    log::warn!("setupProcessing: {e}");
                    kResultFalse
                }
            }
        })
    }

    unsafe fn setProcessing(&self, _state: TBool) -> tresult {
        kResultOk
    }

    unsafe fn process(&self, data: *mut vst3::Steinberg::Vst::ProcessData) -> tresult {
        guard(|| {
            // SAFETY: the host passes valid process data or null.
            match unsafe { data.as_mut() } {
                Some(data) => self.process_block(data),
                None => kInvalidArgument,
            }
        })
    }

    /// The release time at the current `Release` setting plus a small margin: after the
    /// last note-off the instrument is silent within that (the envelope reaches exact
    /// zero in the release time). A release changed while a voice releases does not
    /// lengthen it: the time is latched when the release starts.
    unsafe fn getTailSamples(&self) -> uint32 {
        guard_value(kNoTail, || {
            let release = shared::params::id::RELEASE;
            let Some(seconds) =
                self.instance.param_normalized(release).and_then(|n| Some(self.mapping(release)?.to_plain(n)))
            else {
                return kNoTail;
            };
            let samples = (seconds.max(0.0) + TAIL_MARGIN_S) * self.instance.setup().sample_rate;
            samples.ceil().min(f64::from(u32::MAX - 1)) as uint32
        })
    }
}

impl IProcessContextRequirementsTrait for TrioPlugin {
    unsafe fn getProcessContextRequirements(&self) -> uint32 {
        use IProcessContextRequirements_::Flags_ as F;
        (F::kNeedTempo
            | F::kNeedTimeSignature
            | F::kNeedProjectTimeMusic
            | F::kNeedBarPositionMusic
            | F::kNeedTransportState) as uint32
    }
}

impl IEditControllerTrait for TrioPlugin {
    unsafe fn setComponentState(&self, _state: *mut IBStream) -> tresult {
        // The component and the controller are one object sharing one state.
        kResultOk
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        guard(|| {
            self.main_thread_work();
            self.load_state_from(state)
        })
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        guard(|| {
            self.main_thread_work();
            self.save_state_to(state)
        })
    }

    unsafe fn getParameterCount(&self) -> int32 {
        guard_value(0, || {
            self.main_thread_work();
            self.tables().params.len() as int32
        })
    }

    unsafe fn getParameterInfo(&self, index: int32, info: *mut ParameterInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `ParameterInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            self.main_thread_work();
            let tables = self.tables();
            let Some(p) = usize::try_from(index).ok().and_then(|i| tables.params.get(i)) else {
                return kInvalidArgument;
            };
            out.id = p.id;
            copy_wstr(abi::str_from_fixed(&p.name), &mut out.title);
            copy_wstr(abi::str_from_fixed(&p.short_name), &mut out.shortTitle);
            copy_wstr(abi::str_from_fixed(&p.unit), &mut out.units);
            out.stepCount = p.step_count as int32;
            out.defaultNormalizedValue = p.default_normalized;
            out.unitId = tables.unit_of(p);
            let mut flags = 0;
            if p.flags & abi::PARAM_FLAG_AUTOMATABLE != 0 {
                flags |= ParameterInfo_::ParameterFlags_::kCanAutomate;
            }
            if p.flags & abi::PARAM_FLAG_BYPASS != 0 {
                flags |= ParameterInfo_::ParameterFlags_::kIsBypass;
            }
            if p.flags & abi::PARAM_FLAG_LIST != 0 {
                flags |= ParameterInfo_::ParameterFlags_::kIsList;
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
            match self.instance.parse_value(id, &text) {
                Ok(v) => {
                    *out = v;
                    kResultOk
                }
                Err(_) => kResultFalse,
            }
        })
    }

    unsafe fn normalizedParamToPlain(&self, id: ParamID, value: ParamValue) -> ParamValue {
        guard_value(0.0, || self.mapping(id).map_or(value, |m| m.to_plain(value)))
    }

    unsafe fn plainParamToNormalized(&self, id: ParamID, plain: ParamValue) -> ParamValue {
        guard_value(0.0, || self.mapping(id).map_or(plain, |m| m.to_normalized(plain)))
    }

    unsafe fn getParamNormalized(&self, id: ParamID) -> ParamValue {
        guard_value(0.0, || {
            self.main_thread_work();
            self.instance.param_normalized(id).unwrap_or(0.0)
        })
    }

    /// Safe on the audio thread (hosts call it there): block atomics only.
    unsafe fn setParamNormalized(&self, id: ParamID, value: ParamValue) -> tresult {
        guard(|| {
            if self.param_defined(id) && self.instance.set_param_normalized(id, value) {
                kResultOk
            } else {
                kInvalidArgument
            }
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
            let tables = self.tables();
            let mapped = usize::try_from(cc).ok().and_then(|cc| tables.midi_map.get(cc).copied().flatten());
            match mapped {
                Some(param) if bus_index == 0 => {
                    *out = param;
                    kResultTrue
                }
                _ => kResultFalse,
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
        0
    }

    unsafe fn getProgramListInfo(&self, _index: int32, _info: *mut ProgramListInfo) -> tresult {
        kInvalidArgument
    }

    unsafe fn getProgramName(&self, _list: ProgramListID, _index: int32, _name: *mut String128) -> tresult {
        kInvalidArgument
    }

    unsafe fn getProgramInfo(
        &self,
        _list: ProgramListID,
        _index: int32,
        _attribute: vst3::Steinberg::Vst::CString,
        _value: *mut String128,
    ) -> tresult {
        kInvalidArgument
    }

    unsafe fn hasProgramPitchNames(&self, _list: ProgramListID, _index: int32) -> tresult {
        kResultFalse
    }

    unsafe fn getProgramPitchName(
        &self,
        _list: ProgramListID,
        _index: int32,
        _pitch: int16,
        _name: *mut String128,
    ) -> tresult {
        kResultFalse
    }

    unsafe fn getSelectedUnit(&self) -> UnitID {
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
