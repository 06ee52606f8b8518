//! One plugin instance driven by the host: component, processor and controller, set up
//! and processed block by block.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{ComPtr, ComWrapper, Interface};

use crate::com::{
    ComponentHandler, EventList, HandlerCall, HandlerCallKind, HostApplication, MAX_POINTS_PER_QUEUE, MemoryStream,
    ParameterChanges, copy_wstr, lock, w_str,
};
use crate::error::HostError;
use crate::module::{ClassInfo, Module};

/// Sample size of the audio buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats (`kSample32`), which every plugin supports.
    F32,
    /// 64-bit floats (`kSample64`), only when the plugin says it can.
    F64,
}

impl Precision {
    fn symbolic(self) -> i32 {
        match self {
            Self::F32 => SymbolicSampleSizes_::kSample32 as i32,
            Self::F64 => SymbolicSampleSizes_::kSample64 as i32,
        }
    }
}

/// What `setupProcessing` is given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setup {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// Largest block [`Plugin::process`] will be asked for.
    pub max_block: usize,
    /// Sample size.
    pub precision: Precision,
    /// `true` for offline rendering (`kOffline`), `false` for real time (`kRealtime`).
    pub offline: bool,
}

impl Setup {
    /// 32-bit, real time.
    pub fn new(sample_rate: f64, max_block: usize) -> Self {
        Self { sample_rate, max_block, precision: Precision::F32, offline: false }
    }
}

/// A note event at a sample offset within a block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoteEvent {
    /// Sample offset within the block.
    pub offset: u32,
    /// MIDI note number.
    pub pitch: u8,
    /// Velocity `0..=1`.
    pub velocity: f32,
    /// Note-on (`true`) or note-off.
    pub on: bool,
    /// MIDI channel `0..16` (clamped into it unless [`Hostile::any_channel`]).
    pub channel: u8,
}

impl NoteEvent {
    /// A note-on on channel 0.
    pub fn on(offset: u32, pitch: u8, velocity: f32) -> Self {
        Self { offset, pitch, velocity, on: true, channel: 0 }
    }

    /// A note-off on channel 0.
    pub fn off(offset: u32, pitch: u8) -> Self {
        Self { offset, pitch, velocity: 0.0, on: false, channel: 0 }
    }

    fn to_vst(self, any_channel: bool) -> Event {
        // SAFETY: `Event` is plain data; all-zero is a valid value, overwritten below.
        let mut e: Event = unsafe { std::mem::zeroed() };
        e.busIndex = 0;
        e.sampleOffset = self.offset as i32;
        e.flags = Event_::EventFlags_::kIsLive as u16;
        let channel = i16::from(if any_channel { self.channel } else { self.channel.min(15) });
        if self.on {
            e.r#type = Event_::EventTypes_::kNoteOnEvent as u16;
            e.__field0.noteOn = NoteOnEvent {
                channel,
                pitch: i16::from(self.pitch),
                tuning: 0.0,
                velocity: self.velocity,
                length: 0,
                noteId: -1,
            };
        } else {
            e.r#type = Event_::EventTypes_::kNoteOffEvent as u16;
            e.__field0.noteOff = NoteOffEvent {
                channel,
                pitch: i16::from(self.pitch),
                velocity: self.velocity,
                noteId: -1,
                tuning: 0.0,
            };
        }
        e
    }
}

/// One automation point: parameter `id` takes normalized `value` at sample `offset` of
/// the block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamPoint {
    /// Parameter id.
    pub id: u32,
    /// Sample offset within the block.
    pub offset: u32,
    /// Normalized value `0..=1`.
    pub value: f64,
}

/// How [`Plugin::process_with`] hands the output buffers over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffers {
    /// Every bus with its channels.
    Normal,
    /// No buses at all (`numOutputs = 0`): a parameter flush.
    NoBuses,
    /// The buses with zero channels each.
    ZeroChannels,
    /// Every bus, with the main output's channels at the same addresses as the main
    /// input's (in-place processing, as many hosts do for effects): the plugin reads its
    /// input from, and writes its output to, the same memory.
    InPlace,
}

/// What a misbehaving host does to a block ([`Plugin::process_hostile`]), to test that a
/// plugin survives it. The default is a well-behaved block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hostile {
    /// Every channel pointer of every bus is null (the buffers array itself is valid).
    pub null_channels: bool,
    /// `numChannels` of every audio bus, instead of the negotiated count: fewer, or more
    /// (the extra channels are valid buffers the host made up).
    pub channels: Option<i32>,
    /// `numSamples`, instead of the block's length: 0, negative, or more than the
    /// `maxSamplesPerBlock` of the setup (the buffers hold twice that, so a plugin that
    /// writes past the maximum corrupts nothing; see [`Plugin::wrote_past_the_maximum`]).
    pub num_samples: Option<i32>,
    /// Events are passed in the given order (hosts sort them by offset), with their
    /// offsets as given (even beyond the block).
    pub unsorted: bool,
    /// Note channels are passed as given, even 16 and above (otherwise they are clamped
    /// to MIDI's 16 channels).
    pub any_channel: bool,
}

/// A parameter as the controller describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParameterInfo {
    /// Id.
    pub id: u32,
    /// Title.
    pub title: String,
    /// Short title.
    pub short_title: String,
    /// Unit label ("Hz").
    pub units: String,
    /// Steps (0 continuous).
    pub step_count: i32,
    /// Default, normalized.
    pub default_normalized: f64,
    /// Unit (group) id.
    pub unit_id: i32,
    /// `ParameterFlags`.
    pub flags: i32,
}

/// A bus as the component describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct BusInfo {
    /// Audio or event.
    pub media_type: i32,
    /// Input or output.
    pub direction: i32,
    /// Index within its media type and direction.
    pub index: i32,
    /// Channels.
    pub channel_count: i32,
    /// Name.
    pub name: String,
    /// Main or aux.
    pub bus_type: i32,
    /// `BusFlags`.
    pub flags: u32,
}

/// A unit (parameter group) as `IUnitInfo` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitInfo {
    /// Id.
    pub id: i32,
    /// Parent id.
    pub parent: i32,
    /// Name.
    pub name: String,
    /// Its program list, or `kNoProgramListId`.
    pub program_list: i32,
}

/// A program list as `IUnitInfo` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramList {
    /// Id.
    pub id: i32,
    /// Name.
    pub name: String,
    /// Program names.
    pub programs: Vec<String>,
}

/// Raw pointers into the plugin's own buffers, rebuilt before each `process`.
struct BufferPointers {
    outputs32: Vec<Vec<*mut f32>>,
    outputs64: Vec<Vec<*mut f64>>,
    inputs32: Vec<Vec<*mut f32>>,
    inputs64: Vec<Vec<*mut f64>>,
    out_buses: Vec<AudioBusBuffers>,
    in_buses: Vec<AudioBusBuffers>,
}

// SAFETY: the pointers point only into buffers owned by the same `Plugin`, and are only
// dereferenced (by the plugin) during a `&mut Plugin` call, so moving them to another
// thread together with the plugin is sound.
unsafe impl Send for BufferPointers {}

/// Audio buffers for every bus, sized by `setup_processing`.
struct AudioBuffers {
    /// `[bus][channel][frame]`.
    out32: Vec<Vec<Vec<f32>>>,
    out64: Vec<Vec<Vec<f64>>>,
    in32: Vec<Vec<Vec<f32>>>,
    in64: Vec<Vec<Vec<f64>>>,
    /// Bus 0's channels in 32 bits, returned by [`Plugin::process`] (converted from the
    /// 64-bit buffers in 64-bit mode).
    main: Vec<Vec<f32>>,
}

/// A plugin instance, initialised with a host context and a component handler.
///
/// Drive it from one loop: [`Plugin::setup_processing`] (or [`Plugin::start`]), then
/// [`Plugin::process`] for each block, and [`Plugin::idle`] now and then on the thread
/// that created it. Dropping it stops processing, deactivates and terminates.
pub struct Plugin {
    component: ComPtr<IComponent>,
    processor: ComPtr<IAudioProcessor>,
    controller: ComPtr<IEditController>,
    /// Set when the controller is a separate object (connected through IConnectionPoint).
    separate: Option<(ComPtr<IConnectionPoint>, ComPtr<IConnectionPoint>)>,
    handler: ComWrapper<ComponentHandler>,
    host: ComWrapper<HostApplication>,
    events: ComWrapper<EventList>,
    changes: ComWrapper<ParameterChanges>,
    main_thread: ThreadId,
    class: ClassInfo,
    setup: Option<Setup>,
    active: bool,
    processing: bool,
    buffers: AudioBuffers,
    pointers: BufferPointers,
    /// Project time in samples, advanced by each block.
    position: i64,
    /// Tempo in the process context.
    pub tempo: f64,
    /// Whether the process context says the transport plays.
    pub playing: bool,
    /// Whether to pass a process context at all (`false`: `processContext` is null, as
    /// hosts without a transport, e.g. pedalboard, do).
    pub transport: bool,
    last_silence: Vec<u64>,
    /// Handler calls already seen by `idle`.
    seen_calls: usize,
    // Dropped last: the module must outlive every object made from it. `None` for a
    // component the caller made itself ([`Plugin::from_component`]).
    module: Option<Arc<Module>>,
}

/// Most events one block carries.
const MAX_EVENTS: usize = 16_384;
/// What the buffers hold beyond `maxSamplesPerBlock` ([`Plugin::wrote_past_the_maximum`]).
const SENTINEL: f64 = 1234.5;
/// Most parameters automated in one block.
const MAX_QUEUES: usize = 256;

impl Plugin {
    /// Creates the module's first audio processor class and its controller, as hosts do.
    ///
    /// # Errors
    /// See [`Plugin::create`].
    pub fn new(module: Arc<Module>) -> Result<Self, HostError> {
        let class = module.audio_class()?;
        Self::create(module, &class)
    }

    /// Creates `class`: the component, initialised with a host context; its controller,
    /// queried from the component or, failing that, created from `getControllerClassId`,
    /// initialised and connected through `IConnectionPoint`, and given the component's
    /// state; then a component handler. The calling thread becomes the plugin's main
    /// thread.
    ///
    /// # Errors
    /// [`HostError::CreateFailed`], [`HostError::MissingInterface`] or
    /// [`HostError::Refused`] saying which step failed.
    pub fn create(module: Arc<Module>, class: &ClassInfo) -> Result<Self, HostError> {
        let component: ComPtr<IComponent> = create_instance(&module, &class.cid, &class.name)?;
        Self::initialize(component, Some(module), class.clone())
    }

    /// Drives a component the caller created itself (for example a plugin object linked
    /// into the same program), exactly as [`Plugin::create`] drives one from a factory.
    /// Its controller must be the component itself: there is no factory to create a
    /// separate one from.
    ///
    /// # Errors
    /// As [`Plugin::create`].
    pub fn from_component(component: ComPtr<IComponent>, name: &str) -> Result<Self, HostError> {
        let class = ClassInfo {
            cid: [0; 16],
            category: "Audio Module Class".into(),
            name: name.into(),
            cardinality: 1,
            sub_categories: String::new(),
            vendor: String::new(),
            version: String::new(),
            sdk_version: String::new(),
            class_flags: 0,
        };
        Self::initialize(component, None, class)
    }

    fn initialize(
        component: ComPtr<IComponent>,
        module: Option<Arc<Module>>,
        class: ClassInfo,
    ) -> Result<Self, HostError> {
        let main_thread = std::thread::current().id();
        let host = ComWrapper::new(HostApplication::default());
        let host_unknown = host.as_com_ref::<FUnknown>().map_or(std::ptr::null_mut(), |h| h.as_ptr());
        // SAFETY: a valid component and host context.
        let code = unsafe { component.initialize(host_unknown) };
        if code != kResultOk {
            return Err(HostError::Refused { call: "IComponent::initialize", code });
        }
        let processor = component
            .cast::<IAudioProcessor>()
            .ok_or(HostError::MissingInterface { object: "component", interface: "IAudioProcessor" })?;
        let (controller, separate) = match component.cast::<IEditController>() {
            Some(controller) => (controller, None),
            None => {
                let mut cid: TUID = [0; 16];
                // SAFETY: a valid component and out array.
                let code = unsafe { component.getControllerClassId(&mut cid) };
                if code != kResultOk {
                    // SAFETY: a valid, initialised component.
                    unsafe { component.terminate() };
                    return Err(HostError::MissingInterface { object: "component", interface: "IEditController" });
                }
                let cid = cid.map(|b| b as u8);
                let Some(module) = &module else {
                    // SAFETY: a valid, initialised component.
                    unsafe { component.terminate() };
                    return Err(HostError::MissingInterface { object: "component", interface: "IEditController" });
                };
                let controller: ComPtr<IEditController> =
                    create_instance(module, &cid, &format!("the controller of {}", class.name))?;
                // SAFETY: a valid controller and host context.
                let code = unsafe { controller.initialize(host_unknown) };
                if code != kResultOk {
                    // SAFETY: a valid, initialised component.
                    unsafe { component.terminate() };
                    return Err(HostError::Refused { call: "IEditController::initialize", code });
                }
                let points = component.cast::<IConnectionPoint>().zip(controller.cast::<IConnectionPoint>());
                if let Some((a, b)) = &points {
                    // SAFETY: two valid connection points.
                    unsafe {
                        a.connect(b.as_ptr());
                        b.connect(a.as_ptr());
                    }
                }
                (controller, points)
            }
        };
        let handler = ComWrapper::new(ComponentHandler { main_thread, calls: Mutex::new(Vec::new()) });
        let handler_ptr = handler.as_com_ref::<IComponentHandler>().map_or(std::ptr::null_mut(), |h| h.as_ptr());
        // SAFETY: a valid controller and handler (the controller keeps its own reference).
        unsafe { controller.setComponentHandler(handler_ptr) };
        let events = ComWrapper::new(EventList { events: Mutex::new(Vec::with_capacity(MAX_EVENTS)) });
        let changes = ComWrapper::new(ParameterChanges::with_capacity(MAX_QUEUES));
        let plugin = Self {
            component,
            processor,
            controller,
            separate,
            handler,
            host,
            events,
            changes,
            main_thread,
            class,
            setup: None,
            active: false,
            processing: false,
            buffers: AudioBuffers { out32: vec![], out64: vec![], in32: vec![], in64: vec![], main: vec![] },
            pointers: BufferPointers {
                outputs32: vec![],
                outputs64: vec![],
                inputs32: vec![],
                inputs64: vec![],
                out_buses: vec![],
                in_buses: vec![],
            },
            position: 0,
            tempo: 120.0,
            playing: true,
            transport: true,
            last_silence: vec![],
            seen_calls: 0,
            module,
        };
        if plugin.separate.is_some() {
            // Hosts hand the component's state to a separate controller.
            if let Ok(state) = plugin.component_state() {
                let _ = plugin.set_controller_component_state(&state);
            }
        }
        Ok(plugin)
    }

    /// The class this plugin was created from.
    pub fn class(&self) -> &ClassInfo {
        &self.class
    }

    /// The module it came from (`None` for [`Plugin::from_component`]).
    pub fn module(&self) -> Option<&Arc<Module>> {
        self.module.as_ref()
    }

    /// The component, for calls this API does not wrap.
    pub fn component(&self) -> &ComPtr<IComponent> {
        &self.component
    }

    /// The audio processor.
    pub fn processor(&self) -> &ComPtr<IAudioProcessor> {
        &self.processor
    }

    /// The edit controller.
    pub fn controller(&self) -> &ComPtr<IEditController> {
        &self.controller
    }

    /// Whether the controller is a separate object from the component.
    pub fn has_separate_controller(&self) -> bool {
        self.separate.is_some()
    }

    /// The thread that created the plugin (the host's main thread).
    pub fn main_thread(&self) -> ThreadId {
        self.main_thread
    }

    /// The current setup, if any.
    pub fn setup(&self) -> Option<Setup> {
        self.setup
    }

    // ----- description -----

    /// Every bus of one media type and direction.
    pub fn buses(&self, media_type: MediaTypes, direction: BusDirections) -> Vec<BusInfo> {
        // SAFETY: a valid component.
        let count = unsafe { self.component.getBusCount(media_type as i32, direction as i32) };
        (0..count.max(0))
            .filter_map(|index| {
                // SAFETY: plain data, filled by the plugin.
                let mut info: vst3::Steinberg::Vst::BusInfo = unsafe { std::mem::zeroed() };
                // SAFETY: a valid component and out struct.
                let code = unsafe { self.component.getBusInfo(media_type as i32, direction as i32, index, &mut info) };
                (code == kResultOk).then(|| BusInfo {
                    media_type: info.mediaType,
                    direction: info.direction,
                    index,
                    channel_count: info.channelCount,
                    name: w_str(&info.name),
                    bus_type: info.busType,
                    flags: info.flags,
                })
            })
            .collect()
    }

    /// Every parameter, in the controller's order.
    pub fn parameters(&self) -> Vec<ParameterInfo> {
        // SAFETY: a valid controller.
        let count = unsafe { self.controller.getParameterCount() };
        (0..count.max(0)).filter_map(|i| self.parameter_at(i)).collect()
    }

    /// The parameter at `index`, if the controller describes it.
    pub fn parameter_at(&self, index: i32) -> Option<ParameterInfo> {
        // SAFETY: plain data, filled by the plugin.
        let mut info: vst3::Steinberg::Vst::ParameterInfo = unsafe { std::mem::zeroed() };
        // SAFETY: a valid controller and out struct.
        if unsafe { self.controller.getParameterInfo(index, &mut info) } != kResultOk {
            return None;
        }
        Some(ParameterInfo {
            id: info.id,
            title: w_str(&info.title),
            short_title: w_str(&info.shortTitle),
            units: w_str(&info.units),
            step_count: info.stepCount,
            default_normalized: info.defaultNormalizedValue,
            unit_id: info.unitId,
            flags: info.flags,
        })
    }

    /// A parameter's normalized value.
    pub fn param_normalized(&self, id: u32) -> f64 {
        // SAFETY: a valid controller.
        unsafe { self.controller.getParamNormalized(id) }
    }

    /// Sets a parameter's normalized value on the controller (as a UI would).
    ///
    /// # Errors
    /// [`HostError::Refused`] if the controller refuses.
    pub fn set_param_normalized(&self, id: u32, value: f64) -> Result<(), HostError> {
        // SAFETY: a valid controller.
        let code = unsafe { self.controller.setParamNormalized(id, value) };
        check("setParamNormalized", code)
    }

    /// The controller's display text for a normalized value.
    pub fn param_text(&self, id: u32, value: f64) -> Option<String> {
        let mut text: String128 = [0; 128];
        // SAFETY: a valid controller and out string.
        let code = unsafe { self.controller.getParamStringByValue(id, value, &mut text) };
        (code == kResultOk).then(|| w_str(&text))
    }

    /// The normalized value the controller reads from display text.
    pub fn param_from_text(&self, id: u32, text: &str) -> Option<f64> {
        let mut wide: String128 = [0; 128];
        copy_wstr(text, &mut wide);
        let mut value = 0.0;
        // SAFETY: a valid controller, a NUL-terminated string and an out value.
        let code = unsafe { self.controller.getParamValueByString(id, wide.as_mut_ptr(), &mut value) };
        (code == kResultOk).then_some(value)
    }

    /// Normalized to plain, by the controller.
    pub fn to_plain(&self, id: u32, normalized: f64) -> f64 {
        // SAFETY: a valid controller.
        unsafe { self.controller.normalizedParamToPlain(id, normalized) }
    }

    /// Plain to normalized, by the controller.
    pub fn to_normalized(&self, id: u32, plain: f64) -> f64 {
        // SAFETY: a valid controller.
        unsafe { self.controller.plainParamToNormalized(id, plain) }
    }

    /// The units (`IUnitInfo`), empty if the controller has none.
    pub fn units(&self) -> Vec<UnitInfo> {
        let Some(info) = self.controller.cast::<IUnitInfo>() else { return Vec::new() };
        // SAFETY: a valid interface.
        let count = unsafe { info.getUnitCount() };
        (0..count.max(0))
            .filter_map(|i| {
                // SAFETY: plain data, filled by the plugin.
                let mut unit: vst3::Steinberg::Vst::UnitInfo = unsafe { std::mem::zeroed() };
                // SAFETY: a valid interface and out struct.
                (unsafe { info.getUnitInfo(i, &mut unit) } == kResultOk).then(|| UnitInfo {
                    id: unit.id,
                    parent: unit.parentUnitId,
                    name: w_str(&unit.name),
                    program_list: unit.programListId,
                })
            })
            .collect()
    }

    /// The program lists (`IUnitInfo`), empty if none.
    pub fn program_lists(&self) -> Vec<ProgramList> {
        let Some(info) = self.controller.cast::<IUnitInfo>() else { return Vec::new() };
        // SAFETY: a valid interface.
        let count = unsafe { info.getProgramListCount() };
        (0..count.max(0))
            .filter_map(|i| {
                // SAFETY: plain data, filled by the plugin.
                let mut list: ProgramListInfo = unsafe { std::mem::zeroed() };
                // SAFETY: a valid interface and out struct.
                if unsafe { info.getProgramListInfo(i, &mut list) } != kResultOk {
                    return None;
                }
                let programs = (0..list.programCount.max(0))
                    .map(|p| {
                        let mut name: String128 = [0; 128];
                        // SAFETY: a valid interface and out string.
                        unsafe { info.getProgramName(list.id, p, &mut name) };
                        w_str(&name)
                    })
                    .collect();
                Some(ProgramList { id: list.id, name: w_str(&list.name), programs })
            })
            .collect()
    }

    /// The parameter MIDI controller `cc` on event bus `bus`, channel `channel` is
    /// mapped to (`IMidiMapping`), if any.
    pub fn midi_cc_assignment(&self, bus: i32, channel: i16, cc: i16) -> Option<u32> {
        let mapping = self.controller.cast::<IMidiMapping>()?;
        let mut id = 0;
        // SAFETY: a valid interface and out value.
        let code = unsafe { mapping.getMidiControllerAssignment(bus, channel, cc, &mut id) };
        (code == kResultOk).then_some(id)
    }

    /// Whether the processor accepts 64-bit samples.
    pub fn can_process_f64(&self) -> bool {
        // SAFETY: a valid processor.
        unsafe { self.processor.canProcessSampleSize(SymbolicSampleSizes_::kSample64 as i32) == kResultOk }
    }

    /// `getLatencySamples`.
    pub fn latency_samples(&self) -> u32 {
        // SAFETY: a valid processor.
        unsafe { self.processor.getLatencySamples() }
    }

    /// `getTailSamples`.
    pub fn tail_samples(&self) -> u32 {
        // SAFETY: a valid processor.
        unsafe { self.processor.getTailSamples() }
    }

    // ----- state -----

    /// The component's state (`IComponent::getState`).
    ///
    /// # Errors
    /// [`HostError::Refused`] if the plugin refuses.
    pub fn component_state(&self) -> Result<Vec<u8>, HostError> {
        let stream = MemoryStream::new(Vec::new());
        // SAFETY: a valid component and stream.
        let code = unsafe { self.component.getState(stream_ptr(&stream)) };
        check("IComponent::getState", code)?;
        Ok(stream.bytes())
    }

    /// The controller's own state (`IEditController::getState`).
    ///
    /// # Errors
    /// [`HostError::Refused`] if the plugin refuses.
    pub fn controller_state(&self) -> Result<Vec<u8>, HostError> {
        let stream = MemoryStream::new(Vec::new());
        // SAFETY: a valid controller and stream.
        let code = unsafe { self.controller.getState(stream_ptr(&stream)) };
        check("IEditController::getState", code)?;
        Ok(stream.bytes())
    }

    /// Restores a component state as hosts do: `IComponent::setState`, then
    /// `IEditController::setComponentState` with the same bytes.
    ///
    /// # Errors
    /// [`HostError::Refused`] with the call that refused.
    pub fn set_component_state(&self, bytes: &[u8]) -> Result<(), HostError> {
        let stream = MemoryStream::new(bytes.to_vec());
        // SAFETY: a valid component and stream.
        let code = unsafe { self.component.setState(stream_ptr(&stream)) };
        check("IComponent::setState", code)?;
        self.set_controller_component_state(bytes)
    }

    /// `IEditController::setComponentState` alone.
    ///
    /// # Errors
    /// [`HostError::Refused`] if the controller refuses.
    pub fn set_controller_component_state(&self, bytes: &[u8]) -> Result<(), HostError> {
        let stream = MemoryStream::new(bytes.to_vec());
        // SAFETY: a valid controller and stream.
        let code = unsafe { self.controller.setComponentState(stream_ptr(&stream)) };
        check("IEditController::setComponentState", code)
    }

    /// `IEditController::setState`.
    ///
    /// # Errors
    /// [`HostError::Refused`] if the controller refuses.
    pub fn set_controller_state(&self, bytes: &[u8]) -> Result<(), HostError> {
        let stream = MemoryStream::new(bytes.to_vec());
        // SAFETY: a valid controller and stream.
        let code = unsafe { self.controller.setState(stream_ptr(&stream)) };
        check("IEditController::setState", code)
    }

    // ----- state transitions -----

    /// `setupProcessing`, and buffers for every bus sized for `setup.max_block`. Only
    /// while inactive (the spec's rule).
    ///
    /// # Errors
    /// [`HostError::BadValue`] for a 64-bit setup the plugin does not support or a zero
    /// block; [`HostError::Refused`] if the plugin refuses.
    pub fn setup_processing(&mut self, setup: Setup) -> Result<(), HostError> {
        if setup.max_block == 0 || setup.max_block > i32::MAX as usize {
            return Err(HostError::BadValue {
                name: "max block".into(),
                value: setup.max_block.to_string(),
                expected: "a block size of at least 1 frame".into(),
            });
        }
        if setup.precision == Precision::F64 && !self.can_process_f64() {
            return Err(HostError::BadValue {
                name: "precision".into(),
                value: "64-bit".into(),
                expected: "32-bit: the plugin does not process 64-bit samples".into(),
            });
        }
        let mut vst_setup = vst3::Steinberg::Vst::ProcessSetup {
            processMode: if setup.offline { ProcessModes_::kOffline } else { ProcessModes_::kRealtime } as i32,
            symbolicSampleSize: setup.precision.symbolic(),
            maxSamplesPerBlock: setup.max_block as i32,
            sampleRate: setup.sample_rate,
        };
        // SAFETY: a valid processor and setup struct.
        let code = unsafe { self.processor.setupProcessing(&mut vst_setup) };
        check("setupProcessing", code)?;
        self.allocate_buffers(setup);
        self.setup = Some(setup);
        Ok(())
    }

    fn allocate_buffers(&mut self, setup: Setup) {
        // Twice the maximum: room for a hostile `numSamples` (see `Hostile::num_samples`).
        let n = setup.max_block * 2;
        let wide = setup.precision == Precision::F64;
        let channels = |buses: Vec<BusInfo>| buses.iter().map(|b| b.channel_count.max(0) as usize).collect::<Vec<_>>();
        let outs = channels(self.buses(MediaTypes_::kAudio, BusDirections_::kOutput));
        let ins = channels(self.buses(MediaTypes_::kAudio, BusDirections_::kInput));
        // The second half holds a sentinel: a plugin that writes past the maximum shows.
        let half = setup.max_block;
        let make32 = |c: &[usize], on: bool| {
            let buf = || (0..if on { n } else { 0 }).map(|i| if i < half { 0.0 } else { SENTINEL as f32 }).collect();
            c.iter().map(|&ch| (0..ch).map(|_| buf()).collect()).collect()
        };
        let make64 = |c: &[usize], on: bool| {
            let buf = || (0..if on { n } else { 0 }).map(|i| if i < half { 0.0 } else { SENTINEL }).collect();
            c.iter().map(|&ch| (0..ch).map(|_| buf()).collect()).collect()
        };
        self.buffers.out32 = make32(&outs, !wide);
        self.buffers.in32 = make32(&ins, !wide);
        self.buffers.out64 = make64(&outs, wide);
        self.buffers.in64 = make64(&ins, wide);
        self.buffers.main = (0..outs.first().copied().unwrap_or(0)).map(|_| Vec::with_capacity(n)).collect();
        let p = &mut self.pointers;
        p.outputs32 = outs.iter().map(|&c| vec![std::ptr::null_mut(); c]).collect();
        p.outputs64 = outs.iter().map(|&c| vec![std::ptr::null_mut(); c]).collect();
        p.inputs32 = ins.iter().map(|&c| vec![std::ptr::null_mut(); c]).collect();
        p.inputs64 = ins.iter().map(|&c| vec![std::ptr::null_mut(); c]).collect();
        // SAFETY: plain data; every field is set before each `process`.
        p.out_buses = outs.iter().map(|_| unsafe { std::mem::zeroed() }).collect();
        // SAFETY: as above.
        p.in_buses = ins.iter().map(|_| unsafe { std::mem::zeroed() }).collect();
        self.last_silence = vec![0; outs.len()];
    }

    /// `activateBus` on every bus of every kind.
    ///
    /// # Errors
    /// [`HostError::Refused`] naming the first bus refused.
    /// Asks for bus arrangements (`setBusArrangements`), one speaker arrangement per
    /// input and output audio bus. On success the audio buffers follow the new channel
    /// counts (when processing is already set up).
    ///
    /// # Errors
    /// [`HostError::Refused`] with the plugin's answer when it refuses.
    pub fn set_bus_arrangements(&mut self, inputs: &[u64], outputs: &[u64]) -> Result<(), HostError> {
        let (mut ins, mut outs) = (inputs.to_vec(), outputs.to_vec());
        let ptr = |v: &mut Vec<u64>| if v.is_empty() { std::ptr::null_mut() } else { v.as_mut_ptr() };
        // SAFETY: a valid processor; the arrays are valid for their lengths.
        let code = unsafe {
            self.processor.setBusArrangements(ptr(&mut ins), ins.len() as i32, ptr(&mut outs), outs.len() as i32)
        };
        if code != kResultOk && code != kResultTrue {
            return Err(HostError::Refused { call: "setBusArrangements", code });
        }
        if let Some(setup) = self.setup {
            self.allocate_buffers(setup);
        }
        Ok(())
    }

    pub fn activate_all_buses(&self, state: bool) -> Result<(), HostError> {
        for media in [MediaTypes_::kAudio, MediaTypes_::kEvent] {
            for dir in [BusDirections_::kInput, BusDirections_::kOutput] {
                // SAFETY: a valid component.
                let count = unsafe { self.component.getBusCount(media as i32, dir as i32) };
                for index in 0..count.max(0) {
                    // SAFETY: a valid component.
                    let code = unsafe { self.component.activateBus(media as i32, dir as i32, index, state.into()) };
                    check("activateBus", code)?;
                }
            }
        }
        Ok(())
    }

    /// `IComponent::setActive`.
    ///
    /// # Errors
    /// [`HostError::Refused`] if the plugin refuses.
    pub fn set_active(&mut self, state: bool) -> Result<(), HostError> {
        // SAFETY: a valid component.
        let code = unsafe { self.component.setActive(state.into()) };
        check("setActive", code)?;
        self.active = state;
        Ok(())
    }

    /// `IAudioProcessor::setProcessing`.
    ///
    /// # Errors
    /// [`HostError::Refused`] if the plugin refuses (`kNotImplemented` counts as success,
    /// as the spec allows).
    pub fn set_processing(&mut self, state: bool) -> Result<(), HostError> {
        // SAFETY: a valid processor.
        let code = unsafe { self.processor.setProcessing(state.into()) };
        if code != kNotImplemented {
            check("setProcessing", code)?;
        }
        self.processing = state;
        Ok(())
    }

    /// The usual start: `setupProcessing`, every bus activated, `setActive(true)`, the
    /// latency read (as hosts do, to compensate it), `setProcessing(true)`.
    ///
    /// # Errors
    /// The first step that fails.
    pub fn start(&mut self, setup: Setup) -> Result<(), HostError> {
        self.setup_processing(setup)?;
        self.activate_all_buses(true)?;
        self.set_active(true)?;
        // Hosts read the latency once active, to compensate it (JUCE in prepareToPlay).
        let _ = self.latency_samples();
        self.set_processing(true)
    }

    /// The usual stop: `setProcessing(false)`, `setActive(false)`. Errors are ignored:
    /// this also runs on drop.
    pub fn stop(&mut self) {
        if self.processing {
            let _ = self.set_processing(false);
        }
        if self.active {
            let _ = self.set_active(false);
        }
    }

    // ----- processing -----

    /// Renders one block of `frames` with `notes` and automation `points` (each at its
    /// sample offset; several points per parameter allowed, in offset order), and returns
    /// the first output bus's channels (in 32 bits; see [`Plugin::output_f64`] for the
    /// 64-bit samples). Allocates nothing once set up (up to 1024 events, 256 parameters
    /// and 64 points per parameter per block).
    ///
    /// # Errors
    /// [`HostError::NotSetUp`], [`HostError::BlockTooLarge`], or
    /// [`HostError::Refused`] with the plugin's result code.
    pub fn process(
        &mut self,
        frames: usize,
        notes: &[NoteEvent],
        points: &[ParamPoint],
    ) -> Result<&[Vec<f32>], HostError> {
        self.process_audio(frames, &[], notes, points)
    }

    /// Renders one block of `frames` frames with audio input: `inputs[bus][channel]`
    /// holds each input bus's channels (an effect's main input is bus 0, its sidechain bus
    /// 1); each given channel holds at least `frames` samples. Buses and channels not given
    /// are silence. Returns the main output bus's channels, as [`Plugin::process`].
    ///
    /// # Errors
    /// As [`Plugin::process_with`]; [`HostError::BadValue`] for an input shorter than
    /// `frames`.
    pub fn process_audio(
        &mut self,
        frames: usize,
        inputs: &[&[&[f32]]],
        notes: &[NoteEvent],
        points: &[ParamPoint],
    ) -> Result<&[Vec<f32>], HostError> {
        self.process_audio_with(frames, inputs, notes, points, Buffers::Normal)
    }

    /// [`Plugin::process_audio`] with a choice of buffers, e.g. [`Buffers::InPlace`].
    ///
    /// # Errors
    /// As [`Plugin::process_audio`].
    pub fn process_audio_with(
        &mut self,
        frames: usize,
        inputs: &[&[&[f32]]],
        notes: &[NoteEvent],
        points: &[ParamPoint],
        buffers: Buffers,
    ) -> Result<&[Vec<f32>], HostError> {
        self.set_inputs(frames, inputs)?;
        self.process_with(frames, notes, points, buffers)?;
        Ok(&self.buffers.main)
    }

    /// Copies `inputs[bus][channel]` into the input buffers for the next block (silence
    /// where none is given).
    fn set_inputs(&mut self, frames: usize, inputs: &[&[&[f32]]]) -> Result<(), HostError> {
        let setup = self.setup.ok_or(HostError::NotSetUp)?;
        if frames > setup.max_block {
            return Err(HostError::BlockTooLarge { frames, max: setup.max_block });
        }
        let wide = setup.precision == Precision::F64;
        let b = &mut self.buffers;
        let buses = if wide { b.in64.len() } else { b.in32.len() };
        for bus in 0..buses {
            let channels = if wide { b.in64[bus].len() } else { b.in32[bus].len() };
            for c in 0..channels {
                let given = inputs.get(bus).and_then(|chs| chs.get(c)).copied();
                if let Some(given) = given
                    && given.len() < frames
                {
                    return Err(HostError::BadValue {
                        name: format!("input bus {bus} channel {c}"),
                        value: format!("{} samples", given.len()),
                        expected: format!("at least {frames} samples, the block's length"),
                    });
                }
                if wide {
                    let buf = &mut b.in64[bus][c][..frames];
                    match given {
                        Some(g) => buf.iter_mut().zip(g).for_each(|(o, &s)| *o = f64::from(s)),
                        None => buf.fill(0.0),
                    }
                } else {
                    let buf = &mut b.in32[bus][c][..frames];
                    match given {
                        Some(g) => buf.copy_from_slice(&g[..frames]),
                        None => buf.fill(0.0),
                    }
                }
            }
        }
        Ok(())
    }

    /// Like [`Plugin::process`], with the buffers handed over as `buffers` says; returns
    /// the output buses' silence flags.
    ///
    /// # Errors
    /// As [`Plugin::process`].
    pub fn process_with(
        &mut self,
        frames: usize,
        notes: &[NoteEvent],
        points: &[ParamPoint],
        buffers: Buffers,
    ) -> Result<&[u64], HostError> {
        self.process_hostile(frames, notes, points, buffers, Hostile::default())
    }

    /// [`Plugin::process_with`] as a misbehaving host would call it ([`Hostile`]). The
    /// plugin's return code is returned as an error like any other refusal.
    ///
    /// # Errors
    /// As [`Plugin::process_with`].
    pub fn process_hostile(
        &mut self,
        frames: usize,
        notes: &[NoteEvent],
        points: &[ParamPoint],
        buffers: Buffers,
        hostile: Hostile,
    ) -> Result<&[u64], HostError> {
        let setup = self.setup.ok_or(HostError::NotSetUp)?;
        if frames > setup.max_block {
            return Err(HostError::BlockTooLarge { frames, max: setup.max_block });
        }
        let wide = setup.precision == Precision::F64;
        {
            let mut events = lock(&self.events.events);
            events.clear();
            for n in notes.iter().take(MAX_EVENTS) {
                events.push(n.to_vst(hostile.any_channel));
            }
            // Hosts deliver events sorted by time. Insertion sort: stable (a note-off and
            // a note-on at one offset keep their order) and allocation-free.
            for i in (1..events.len()).filter(|_| !hostile.unsorted) {
                let mut j = i;
                while j > 0 && events[j - 1].sampleOffset > events[j].sampleOffset {
                    events.swap(j - 1, j);
                    j -= 1;
                }
            }
        }
        self.fill_changes(points);
        // Buffers: clear outputs (plugins may add), point the bus structs at ours.
        let p = &mut self.pointers;
        let b = &mut self.buffers;
        let in_channels = b.in32.first().map_or(0, Vec::len);
        let in_place = |bus: usize, c: usize| buffers == Buffers::InPlace && bus == 0 && c < in_channels;
        for (bus, (ptrs32, ptrs64)) in p.outputs32.iter_mut().zip(p.outputs64.iter_mut()).enumerate() {
            for (c, (p32, p64)) in ptrs32.iter_mut().zip(ptrs64.iter_mut()).enumerate() {
                if in_place(bus, c) {
                    // The input's own memory: holds the input, receives the output.
                    *p64 = b.in64[0][c].as_mut_ptr();
                    *p32 = b.in32[0][c].as_mut_ptr();
                } else if wide {
                    let buf = &mut b.out64[bus][c];
                    buf[..frames].fill(0.0);
                    *p64 = buf.as_mut_ptr();
                } else {
                    let buf = &mut b.out32[bus][c];
                    buf[..frames].fill(0.0);
                    *p32 = buf.as_mut_ptr();
                }
            }
        }
        for (bus, (ptrs32, ptrs64)) in p.inputs32.iter_mut().zip(p.inputs64.iter_mut()).enumerate() {
            for (c, (p32, p64)) in ptrs32.iter_mut().zip(ptrs64.iter_mut()).enumerate() {
                if wide {
                    *p64 = b.in64[bus][c].as_mut_ptr();
                } else {
                    *p32 = b.in32[bus][c].as_mut_ptr();
                }
            }
        }
        let fill = |buses: &mut [AudioBusBuffers], p32: &mut [Vec<*mut f32>], p64: &mut [Vec<*mut f64>]| {
            for (i, bus) in buses.iter_mut().enumerate() {
                bus.silenceFlags = 0;
                bus.numChannels = if buffers == Buffers::ZeroChannels { 0 } else { p32[i].len() as i32 };
                bus.__field0 = if wide {
                    AudioBusBuffers__type0 { channelBuffers64: p64[i].as_mut_ptr() }
                } else {
                    AudioBusBuffers__type0 { channelBuffers32: p32[i].as_mut_ptr() }
                };
            }
        };
        fill(&mut p.out_buses, &mut p.outputs32, &mut p.outputs64);
        fill(&mut p.in_buses, &mut p.inputs32, &mut p.inputs64);
        // A hostile host's buffers. Locals that outlive the `process` call below.
        let (mut made_up32, mut made_up64) = (Vec::<Vec<f32>>::new(), Vec::<Vec<f64>>::new());
        let mut ptrs32: Vec<Vec<*mut f32>> = Vec::new();
        let mut ptrs64: Vec<Vec<*mut f64>> = Vec::new();
        if hostile.null_channels || hostile.channels.is_some() {
            let buses = p.out_buses.iter_mut().zip(p.outputs32.iter().zip(&p.outputs64));
            let buses = buses.chain(p.in_buses.iter_mut().zip(p.inputs32.iter().zip(&p.inputs64)));
            let buses: Vec<_> = buses.collect();
            let most = buses.iter().map(|(_, (c, _))| c.len()).max().unwrap_or(0);
            let wanted = hostile.channels.map_or(most, |n| n.max(0) as usize);
            made_up32.extend((0..wanted.saturating_sub(most) * buses.len()).map(|_| vec![0.0; setup.max_block]));
            made_up64.extend((0..wanted.saturating_sub(most) * buses.len()).map(|_| vec![0.0; setup.max_block]));
            let (mut extra32, mut extra64) = (made_up32.iter_mut(), made_up64.iter_mut());
            for (bus, (own32, own64)) in buses {
                let count = wanted.max(own32.len());
                let mut a: Vec<*mut f32> = own32.clone();
                let mut b: Vec<*mut f64> = own64.clone();
                while a.len() < count {
                    a.push(extra32.next().map_or(core::ptr::null_mut(), |v| v.as_mut_ptr()));
                    b.push(extra64.next().map_or(core::ptr::null_mut(), |v| v.as_mut_ptr()));
                }
                if hostile.null_channels {
                    a.iter_mut().for_each(|c| *c = core::ptr::null_mut());
                    b.iter_mut().for_each(|c| *c = core::ptr::null_mut());
                }
                bus.numChannels = hostile.channels.unwrap_or(bus.numChannels);
                bus.__field0 = if wide {
                    AudioBusBuffers__type0 { channelBuffers64: b.as_mut_ptr() }
                } else {
                    AudioBusBuffers__type0 { channelBuffers32: a.as_mut_ptr() }
                };
                // The vectors' heap arrays do not move when the vectors do.
                ptrs32.push(a);
                ptrs64.push(b);
            }
        }
        let no_buses = buffers == Buffers::NoBuses;
        // SAFETY: plain data; every field that matters is set below.
        let mut context: ProcessContext = unsafe { std::mem::zeroed() };
        {
            use ProcessContext_::StatesAndFlags_ as F;
            context.state = (F::kTempoValid | F::kTimeSigValid | F::kProjectTimeMusicValid | F::kContTimeValid)
                | if self.playing { F::kPlaying } else { 0 };
            context.sampleRate = setup.sample_rate;
            context.projectTimeSamples = self.position;
            context.continousTimeSamples = self.position;
            context.tempo = self.tempo;
            context.projectTimeMusic = self.position as f64 / setup.sample_rate * self.tempo / 60.0;
            context.timeSigNumerator = 4;
            context.timeSigDenominator = 4;
        }
        let mut data = ProcessData {
            processMode: if setup.offline { ProcessModes_::kOffline } else { ProcessModes_::kRealtime } as i32,
            symbolicSampleSize: setup.precision.symbolic(),
            numSamples: hostile.num_samples.unwrap_or(frames as i32),
            numInputs: if no_buses { 0 } else { p.in_buses.len() as i32 },
            numOutputs: if no_buses { 0 } else { p.out_buses.len() as i32 },
            inputs: if no_buses || p.in_buses.is_empty() { std::ptr::null_mut() } else { p.in_buses.as_mut_ptr() },
            outputs: if no_buses || p.out_buses.is_empty() { std::ptr::null_mut() } else { p.out_buses.as_mut_ptr() },
            inputParameterChanges: self
                .changes
                .as_com_ref::<IParameterChanges>()
                .map_or(std::ptr::null_mut(), |c| c.as_ptr()),
            outputParameterChanges: std::ptr::null_mut(),
            inputEvents: self.events.as_com_ref::<IEventList>().map_or(std::ptr::null_mut(), |e| e.as_ptr()),
            outputEvents: std::ptr::null_mut(),
            processContext: if self.transport { &mut context } else { std::ptr::null_mut() },
        };
        // SAFETY: every pointer in `data` points into this plugin's own buffers and host
        // objects, valid and sized for `frames` for the duration of the call.
        let code = unsafe { self.processor.process(&mut data) };
        check("process", code)?;
        self.position += frames as i64;
        for (flags, bus) in self.last_silence.iter_mut().zip(&self.pointers.out_buses) {
            *flags = if no_buses { 0 } else { bus.silenceFlags };
        }
        // Bus 0 in 32 bits for the caller.
        let b = &mut self.buffers;
        let in_channels = b.in32.first().map_or(0, Vec::len);
        for (c, main) in b.main.iter_mut().enumerate() {
            main.clear();
            let shared = buffers == Buffers::InPlace && c < in_channels;
            match (wide, shared) {
                (true, true) => main.extend(b.in64[0][c][..frames].iter().map(|&s| s as f32)),
                (true, false) => main.extend(b.out64[0][c][..frames].iter().map(|&s| s as f32)),
                (false, true) => main.extend_from_slice(&b.in32[0][c][..frames]),
                (false, false) => main.extend_from_slice(&b.out32[0][c][..frames]),
            }
        }
        Ok(&self.last_silence)
    }

    fn fill_changes(&mut self, points: &[ParamPoint]) {
        let changes = &self.changes;
        let mut used = lock(&changes.used);
        for queue in &changes.queues[..*used] {
            lock(&queue.data).1.clear();
        }
        *used = 0;
        for point in points {
            let slot = match changes.queues[..*used].iter().position(|q| lock(&q.data).0 == point.id) {
                Some(i) => i,
                None if *used < changes.queues.len() => {
                    lock(&changes.queues[*used].data).0 = point.id;
                    *used += 1;
                    *used - 1
                }
                None => continue,
            };
            let mut data = lock(&changes.queues[slot].data);
            if data.1.len() < MAX_POINTS_PER_QUEUE {
                data.1.push((point.offset as i32, point.value));
            }
        }
    }

    /// The first output bus's last block in 64 bits (empty in 32-bit mode).
    pub fn output_f64(&self) -> Vec<&[f64]> {
        self.buffers.out64.first().map(|bus| bus.iter().map(|c| c.as_slice()).collect()).unwrap_or_default()
    }

    /// The silence flags the plugin set on each output bus in the last block (bit `c`
    /// set = channel `c` is silent).
    pub fn silence_flags(&self) -> &[u64] {
        &self.last_silence
    }

    /// Whether the plugin ever wrote into any output buffer beyond the setup's
    /// `maxSamplesPerBlock` (the buffers have room for twice that; see
    /// [`Hostile::num_samples`]).
    pub fn wrote_past_the_maximum(&self) -> bool {
        let Some(setup) = self.setup else { return false };
        let b = &self.buffers;
        let past32 = b
            .out32
            .iter()
            .chain(&b.in32)
            .flatten()
            .any(|c| c.iter().skip(setup.max_block).any(|&x| x != SENTINEL as f32));
        let past64 =
            b.out64.iter().chain(&b.in64).flatten().any(|c| c.iter().skip(setup.max_block).any(|&x| x != SENTINEL));
        past32 || past64
    }

    /// The main output of the last block, 32-bit.
    pub fn output(&self) -> &[Vec<f32>] {
        &self.buffers.main
    }

    // ----- main thread -----

    /// Main-thread housekeeping, for a driver to call between blocks (a few times a
    /// second is plenty): gives the plugin a main-thread controller call
    /// (`getParameterCount`) at whose entry it can deliver pending work, then acts on the
    /// `restartComponent` flags it delivered since the last call: `kLatencyChanged` makes
    /// the host re-read the latency and restart processing (`setActive` off and on), as
    /// the spec asks. Returns those flags (0 if none).
    ///
    /// # Errors
    /// [`HostError::WrongThread`] if called on another thread than the plugin's main
    /// thread; a restart that fails.
    pub fn idle(&mut self) -> Result<i32, HostError> {
        if std::thread::current().id() != self.main_thread {
            return Err(HostError::WrongThread { call: "idle" });
        }
        // SAFETY: a valid controller.
        unsafe { self.controller.getParameterCount() };
        let flags = {
            let calls = lock(&self.handler.calls);
            let flags = calls[self.seen_calls..]
                .iter()
                .filter_map(|c| match c.kind {
                    HandlerCallKind::RestartComponent(f) => Some(f),
                    _ => None,
                })
                .fold(0, |a, f| a | f);
            self.seen_calls = calls.len();
            flags
        };
        if flags & RestartFlags_::kLatencyChanged != 0 && self.active {
            let processing = self.processing;
            if processing {
                self.set_processing(false)?;
            }
            self.set_active(false)?;
            let _ = self.latency_samples();
            self.set_active(true)?;
            if processing {
                self.set_processing(true)?;
            }
        }
        Ok(flags)
    }

    /// Runs the host's run loop once, on this (the main) thread: calls every timer the
    /// plugin registered on the run loop the host context offers. Returns how many ran.
    ///
    /// # Errors
    /// [`HostError::WrongThread`] on another thread than the plugin's main thread.
    pub fn run_loop_once(&self) -> Result<usize, HostError> {
        if std::thread::current().id() != self.main_thread {
            return Err(HostError::WrongThread { call: "run_loop_once" });
        }
        Ok(self.host.run_timers())
    }

    /// The timers the plugin has registered on the host's run loop, as their intervals
    /// in milliseconds.
    pub fn run_loop_timers(&self) -> Vec<u64> {
        crate::com::lock(&self.host.timers).iter().map(|&(_, ms)| ms).collect()
    }

    /// Every component-handler call the plugin made, with its thread.
    pub fn handler_calls(&self) -> Vec<HandlerCall> {
        lock(&self.handler.calls).clone()
    }

    /// The flags of every `restartComponent` call so far, in order.
    pub fn restart_requests(&self) -> Vec<i32> {
        lock(&self.handler.calls)
            .iter()
            .filter_map(|c| match c.kind {
                HandlerCallKind::RestartComponent(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// `terminate` then `initialize` again on the component (and a separate controller),
    /// with the handler re-installed: the validator's "terminate/initialize" cycle.
    ///
    /// # Errors
    /// [`HostError::Refused`] with the call that refused.
    pub fn reinitialize(&mut self) -> Result<(), HostError> {
        self.stop();
        let host = self.host.as_com_ref::<FUnknown>().map_or(std::ptr::null_mut(), |h| h.as_ptr());
        // SAFETY: valid objects; the host context outlives the plugin.
        unsafe {
            if self.separate.is_some() {
                check("IEditController::terminate", self.controller.terminate())?;
            }
            check("IComponent::terminate", self.component.terminate())?;
            check("IComponent::initialize", self.component.initialize(host))?;
            if self.separate.is_some() {
                check("IEditController::initialize", self.controller.initialize(host))?;
            }
            let handler = self.handler.as_com_ref::<IComponentHandler>().map_or(std::ptr::null_mut(), |h| h.as_ptr());
            check("setComponentHandler", self.controller.setComponentHandler(handler))?;
        }
        self.setup = None;
        Ok(())
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: valid objects, torn down in the spec's order.
        unsafe {
            self.controller.setComponentHandler(std::ptr::null_mut());
            if let Some((a, b)) = &self.separate {
                a.disconnect(b.as_ptr());
                b.disconnect(a.as_ptr());
                self.controller.terminate();
            }
            self.component.terminate();
        }
    }
}

fn check(call: &'static str, code: tresult) -> Result<(), HostError> {
    if code == kResultOk { Ok(()) } else { Err(HostError::Refused { call, code }) }
}

fn stream_ptr(stream: &ComWrapper<MemoryStream>) -> *mut IBStream {
    stream.as_com_ref::<IBStream>().map_or(std::ptr::null_mut(), |s| s.as_ptr())
}

/// `createInstance` of class `cid` for interface `I`.
fn create_instance<I: Interface>(module: &Module, cid: &[u8; 16], what: &str) -> Result<ComPtr<I>, HostError> {
    let cid: TUID = cid.map(|b| b as _);
    let mut obj: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid TUIDs and out pointer; a returned object carries a reference we own.
    let code = unsafe { module.factory().createInstance(cid.as_ptr(), I::IID.as_ptr() as FIDString, &mut obj) };
    if code != kResultOk {
        return Err(HostError::CreateFailed { what: what.to_owned(), code });
    }
    // SAFETY: a new reference to an `I`.
    unsafe { ComPtr::from_raw(obj.cast()) }.ok_or(HostError::CreateFailed { what: what.to_owned(), code })
}
