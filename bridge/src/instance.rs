//! One plugin instance: a shared block, an engine instance and a control instance.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use trio::abi::{Event, ProcessData, TransportInfo, control, process_mode, read_text, status};
use trio::block::{CC_COUNT, Definitions, INFINITE_TAIL, SharedBlock, Statistics};
use trio::params::{DisplayKind, ParamInfo};
use trio::segment::BlockSegment;
use trio::sleep::SleepGate;

use crate::error::{ControlError, InstanceError};
use crate::latest::Latest;
use crate::modules::{ControlModule, EngineModule, Modules};
use crate::worker::{ControlFns, ControlPtr, TickFeedback, create_instance};

/// Most channels per bus [`Instance::process`] passes to the engine.
pub const MAX_CHANNELS: usize = trio::engine::MAX_CHANNELS;

static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

/// Processing setup, as a host gives it in `setupProcessing` (and the bus arrangement).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessSetup {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// Largest block the host will send.
    pub max_block_size: u32,
    /// Whether the host renders offline (faster than real time, no deadline).
    pub offline: bool,
}

impl Default for ProcessSetup {
    fn default() -> Self {
        Self { sample_rate: 48_000.0, max_block_size: 1024, offline: false }
    }
}

/// The control module serving an instance, and the control instance it made for it.
pub(crate) struct ControlBinding {
    pub(crate) module: Arc<ControlModule>,
    pub(crate) ptr: ControlPtr,
}

/// The part of an instance that a reload reaches: its block and its control binding.
/// The hub keeps a weak reference to every live one, so a reload can move all instances
/// to the new module at once.
pub(crate) struct Core {
    /// `None` once the instance has been dropped. Every control call holds the read lock
    /// for its whole duration; a reload holds the write lock while it swaps, so no call
    /// ever reaches a control instance that is being replaced, and none runs after the
    /// instance is gone.
    pub(crate) control: RwLock<Option<ControlBinding>>,
    /// VST3 `RestartFlags` bits a reload asks the host for, not yet delivered.
    restart_request: AtomicI32,
    /// Bumped each time a different control module starts serving this instance.
    control_generation: AtomicU64,
    /// What the control logic's last tick asked for (written by the worker).
    pub(crate) tick_feedback: Arc<TickFeedback>,
    segment: std::mem::ManuallyDrop<BlockSegment>,
    /// Set when a call into a control module on this block outlived its time limit: it
    /// may still write the block, so the mapping is never released.
    keep_mapped: AtomicBool,
}

impl Drop for Core {
    fn drop(&mut self) {
        if *self.keep_mapped.get_mut() {
            if let Err(e) = self.segment.unlink() {
                log::warn!("{e}");
            }
            return;
        }
        // SAFETY: dropped once, here, and never used afterwards.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.segment) };
    }
}

impl Core {
    pub(crate) fn block(&self) -> &SharedBlock {
        self.segment.block()
    }

    /// The segment's start, with provenance over block and area, for modules.
    pub(crate) fn block_addr(&self) -> usize {
        self.segment.as_ptr() as usize
    }

    /// A call into a control module on this block outlived its time limit and may still
    /// use the block: keep it mapped for good (a few hundred KB), its name removed.
    pub(crate) fn keep_mapped_forever(&self) {
        // Relaxed: read by the core's own drop, after every use.
        self.keep_mapped.store(true, Ordering::Relaxed);
    }

    pub(crate) fn instance_id(&self) -> u64 {
        // Relaxed: written once before the core is shared.
        self.block().header.instance_id.load(Ordering::Relaxed)
    }

    /// Adds VST3 `RestartFlags` bits and bumps the generation: a new module serves.
    pub(crate) fn new_generation(&self, restart_flags: i32) {
        if restart_flags != 0 {
            // Release: see `Instance::take_restart_request`.
            self.restart_request.fetch_or(restart_flags, Ordering::Release);
        }
        // Release: see `Instance::control_generation`.
        self.control_generation.fetch_add(1, Ordering::Release);
    }
}

/// Reads a lock, ignoring poisoning: nothing panics while holding these locks, and a
/// plugin must keep working rather than propagate a panic into the host.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes a lock, ignoring poisoning (see [`read`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One plugin instance.
///
/// `process` is for the audio thread; parameter reads and writes, definitions and value
/// texts are block reads, safe from any thread without waiting; state, presets and
/// custom texts run on the control worker and wait for it.
pub struct Instance {
    engine: Arc<EngineModule>,
    engine_ptr: *mut c_void,
    engine_busy: AtomicBool,
    /// Sample rate (f64 bits), max block size and mode of the current setup.
    setup_rate: AtomicU64,
    setup_block: AtomicU32,
    setup_offline: AtomicBool,
    /// Set by `process` when a block carried parameter changes, so an offline render ticks
    /// the control logic before the next block even if it said it was idle.
    params_moved: AtomicBool,
    /// The block's `values_epoch` at the last offline tick: a value set since (by the host
    /// or a preset) also wakes idle control logic.
    ticked_epoch: AtomicU64,
    /// Whether the engine sleeps (`Block::set_asleep`): blocks with nothing for it are
    /// answered in its place.
    sleep: SleepGate,
    /// The parameter definitions as last read from the block (any non-audio thread). A
    /// rewrite of the same definitions keeps the same `Arc`, so tables built from it stay
    /// valid.
    definitions: Latest<Arc<Definitions>>,
    /// The block's definitions version that `definitions` was last found current for.
    definitions_version: AtomicU64,
    // Dropped last (after `Drop::drop` destroyed both module instances that point into it).
    core: Arc<Core>,
}

// SAFETY: `engine_ptr` is only dereferenced by the engine while `engine_busy` is held
// (see `EngineGuard`) or in `drop`, so it may be used from whichever thread holds the
// guard. The control pointer is only dereferenced on the control worker. Everything else
// is `Send`.
unsafe impl Send for Instance {}
// SAFETY: as above: concurrent `&self` calls reach the engine only one at a time through
// the non-blocking `engine_busy` guard, the control module only through the worker's
// queue (which serialises calls), and the block only through atomics.
unsafe impl Sync for Instance {}

/// Exclusive use of the engine, taken without ever waiting: a second caller gets `None`.
/// Hosts must not call `process` and `setupProcessing` at once; if one does, the second
/// call fails instead of racing.
struct EngineGuard<'a>(&'a AtomicBool);

impl<'a> EngineGuard<'a> {
    fn try_take(flag: &'a AtomicBool) -> Option<Self> {
        // Acquire on success: pairs with the Release in `drop`, so this holder sees every
        // write the previous holder made to the engine.
        flag.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok().map(|_| Self(flag))
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        // Release: publishes this holder's engine writes to the next holder.
        self.0.store(false, Ordering::Release);
    }
}

/// The channels of the main bus and the sidechain for [`Instance::set_buses`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buses {
    /// Channels of the main bus.
    pub main: u32,
    /// Channels of the sidechain input (0: none or inactive).
    pub sidechain: u32,
}

impl Instance {
    /// Creates the shared block (sized for the modules' plugin area), the control instance
    /// (which publishes the parameters into the block) and the engine instance, activated
    /// for `setup` with a stereo main bus.
    ///
    /// # Errors
    /// [`InstanceError`] saying which part refused; nothing is left behind.
    pub fn new(modules: &Modules, setup: ProcessSetup) -> Result<Self, InstanceError> {
        Self::with_buses(modules, setup, Buses { main: 2, sidechain: 0 })
    }

    /// As [`Instance::new`], with the given bus channels.
    ///
    /// # Errors
    /// As [`Instance::new`].
    pub fn with_buses(modules: &Modules, setup: ProcessSetup, buses: Buses) -> Result<Self, InstanceError> {
        validate_setup(setup)?;
        // Where a load's time goes, for `TRIO_LOG=debug` (four clock reads per instance).
        let started = std::time::Instant::now();
        let area = modules.engine.descriptor().area;
        let segment = BlockSegment::create(&area).map_err(InstanceError::Segment)?;
        let instance_id = NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed);
        let block = segment.block();
        block.init_header(instance_id, setup.sample_rate, setup.max_block_size, &area);
        write_setup(block, setup, buses);

        // Control first: it publishes the definitions and defaults the engine reads at
        // creation. Holding the hub's reload lock: a reload cannot start between choosing
        // the module and registering the instance with the hub.
        let hub = &modules.control;
        let reloads = hub.lock_reloads();
        let control = hub.current();
        let feedback = Arc::new(TickFeedback::default());
        let segment_done = std::time::Instant::now();
        // The definitions the instance starts with, and the block's version they are for.
        let (control_ptr, in_background, definitions) = match control.definitions() {
            // The module's parameters are known: define them here and let the worker
            // create the control instance while the host goes on (DESIGN §3: nothing at
            // load waits for the worker). Jobs run in order, so every later call to the
            // instance (state, presets, destruction) finds it created.
            Some(defs) => {
                block.params.define(&defs.params, &defs.midi_map(), true).map_err(|e| {
                    InstanceError::Control(ControlError::Failed {
                        function: "ParamTable::define (the bridge, before trio_control_create)",
                        code: status::REJECTED,
                        message: format!(
                            "the parameters the module's first instance published could not be defined again: {e}"
                        ),
                    })
                })?;
                // Read before the creation is queued: a rewrite by the module bumps it.
                let version = block.params.version();
                let ptr = create_control_in_background(&control, segment.as_ptr() as usize, instance_id, &feedback)
                    .map_err(InstanceError::Control)?;
                (ptr, true, (version, defs))
            }
            // The module's first instance: its parameters are known once it exists.
            None => {
                let ptr = match create_control(&control, segment.as_ptr() as usize, control::CREATE_FRESH) {
                    Ok(ptr) => ptr,
                    Err(e) => {
                        if matches!(e, InstanceError::Control(ControlError::Timeout { .. })) {
                            // The create that timed out may still write the block.
                            let _ = segment.unlink();
                            std::mem::forget(segment);
                        }
                        return Err(e);
                    }
                };
                let defs = match block.params.read_definitions() {
                    Some(defs) => {
                        let defs = Arc::new(defs);
                        control.remember_definitions(Arc::clone(&defs));
                        defs
                    }
                    None => Arc::default(),
                };
                if let Err(e) = control.worker.start_ticking(ptr.clone(), Arc::clone(&feedback)) {
                    destroy_control(&control, &ptr);
                    return Err(InstanceError::Control(e));
                }
                (ptr, false, (defs.version, defs))
            }
        };
        let control_done = std::time::Instant::now();
        let core = Arc::new(Core {
            control: RwLock::new(Some(ControlBinding { module: control, ptr: control_ptr })),
            restart_request: AtomicI32::new(0),
            control_generation: AtomicU64::new(0),
            tick_feedback: feedback,
            segment: std::mem::ManuallyDrop::new(segment),
            keep_mapped: AtomicBool::new(false),
        });
        hub.register(&core);
        drop(reloads);

        let mut engine_ptr: *mut c_void = core::ptr::null_mut();
        let engine = Arc::clone(&modules.engine);
        // SAFETY: the segment is initialised and outlives the engine (destroyed in `drop`
        // before the core); the pointer has provenance over block and area; `engine_ptr`
        // is a local.
        let code = unsafe { (engine.fns.create)(core.block_addr() as *const SharedBlock, &mut engine_ptr) };
        let mut instance = Self {
            engine,
            engine_ptr,
            engine_busy: AtomicBool::new(false),
            setup_rate: AtomicU64::new(setup.sample_rate.to_bits()),
            setup_block: AtomicU32::new(setup.max_block_size),
            setup_offline: AtomicBool::new(setup.offline),
            params_moved: AtomicBool::new(false),
            ticked_epoch: AtomicU64::new(u64::MAX),
            sleep: SleepGate::new(),
            definitions_version: AtomicU64::new(definitions.0),
            definitions: Latest::new(definitions.1),
            core,
        };
        if code != status::OK || instance.engine_ptr.is_null() {
            instance.engine_ptr = core::ptr::null_mut();
            return Err(InstanceError::Engine { code });
        }
        instance.setup_processing(setup)?;
        let done = std::time::Instant::now();
        log::debug!(
            "instance {instance_id} created in {:?}: shared block {:?}, control instance {} {:?}, engine and setup {:?}",
            done - started,
            segment_done - started,
            if in_background { "queued for the worker" } else { "on the worker" },
            control_done - segment_done,
            done - control_done
        );
        Ok(instance)
    }

    /// The shared block.
    pub fn block(&self) -> &SharedBlock {
        self.core.block()
    }

    /// The plugin area, typed as `A`; `None` unless the block's area was built from `A`
    /// (its layout hash and size). For tests and tools that watch a plugin's own data.
    pub fn area<A: trio::area::Area>(&self) -> Option<&A> {
        let layout = trio::abi::AreaLayout::of::<A>();
        self.block().check_header(&layout).ok()?;
        // SAFETY: the header check passed for `A`'s layout: the segment holds a zero-filled
        // (then atomics-only) `A` at the area offset, page-aligned; the pointer has
        // provenance over the whole segment, which lives as long as `self`.
        Some(unsafe { &*(self.core.block_addr() as *const u8).add(trio::block::AREA_OFFSET).cast::<A>() })
    }

    /// The OS name of the shared-memory segment.
    pub fn segment_name(&self) -> &str {
        self.core.segment.os_id()
    }

    /// The current setup.
    pub fn setup(&self) -> ProcessSetup {
        // Relaxed: informational; written only under the engine guard.
        ProcessSetup {
            sample_rate: f64::from_bits(self.setup_rate.load(Ordering::Relaxed)),
            max_block_size: self.setup_block.load(Ordering::Relaxed),
            offline: self.setup_offline.load(Ordering::Relaxed),
        }
    }

    /// Changes sample rate, block size and mode (the host's `setupProcessing`), and
    /// activates the engine for them. Not on the audio thread: the engine allocates here.
    ///
    /// # Errors
    /// [`InstanceError::Setup`] for invalid values, [`InstanceError::Engine`] if the engine refuses.
    pub fn setup_processing(&self, setup: ProcessSetup) -> Result<(), InstanceError> {
        validate_setup(setup)?;
        let Some(_guard) = EngineGuard::try_take(&self.engine_busy) else {
            return Err(InstanceError::Engine { code: status::BUSY });
        };
        let header = &self.block().header;
        // Relaxed: setup values the engine reads in activate, on this thread.
        header.sample_rate.store(setup.sample_rate, Ordering::Relaxed);
        header.max_block_size.store(setup.max_block_size, Ordering::Relaxed);
        let mode = if setup.offline { process_mode::OFFLINE } else { process_mode::REALTIME };
        header.process_mode.store(mode, Ordering::Relaxed);
        self.sleep.wake();
        // SAFETY: a live engine; the guard excludes any concurrent engine call.
        let code = unsafe { (self.engine.fns.activate)(self.engine_ptr, setup.sample_rate, setup.max_block_size) };
        if code != status::OK {
            return Err(InstanceError::Engine { code });
        }
        // Relaxed: informational copies, read by `setup()`.
        self.setup_rate.store(setup.sample_rate.to_bits(), Ordering::Relaxed);
        self.setup_block.store(setup.max_block_size, Ordering::Relaxed);
        self.setup_offline.store(setup.offline, Ordering::Relaxed);
        Ok(())
    }

    /// Records the bus channels (the host's `setBusArrangements`, `activateBus`); the
    /// engine sees them at its next activation.
    pub fn set_buses(&self, buses: Buses) {
        write_setup(self.block(), self.setup(), buses);
    }

    /// The bus channels as last set.
    pub fn buses(&self) -> Buses {
        let h = &self.block().header;
        // Relaxed: setup values.
        Buses { main: h.main_channels.load(Ordering::Relaxed), sidechain: h.sidechain_channels.load(Ordering::Relaxed) }
    }

    /// Silences every voice and clears an engine fault. Not on the audio thread.
    pub fn reset(&self) -> i32 {
        let Some(_guard) = EngineGuard::try_take(&self.engine_busy) else {
            return status::BUSY;
        };
        self.sleep.wake();
        // SAFETY: a live engine; the guard excludes any concurrent engine call.
        unsafe { (self.engine.fns.reset)(self.engine_ptr) }
    }

    /// Renders one block of an instrument into `outputs` (every channel the same length,
    /// at most `max_block_size`; zeroed first), with `events` timed by sample offset and
    /// sorted. Real-time safe. Returns the engine's status code.
    pub fn process(&self, outputs: &mut [&mut [f32]], events: &[Event]) -> i32 {
        for channel in outputs.iter_mut() {
            channel.fill(0.0);
        }
        self.process_in_place(outputs, &[], events, &TransportInfo::default())
    }

    /// Renders one block in place: `main` holds the main input (an effect's; zeros for an
    /// instrument) and receives the output; `sidechain` is read-only. Real-time safe.
    pub fn process_in_place(
        &self,
        main: &mut [&mut [f32]],
        sidechain: &[&[f32]],
        events: &[Event],
        transport: &TransportInfo,
    ) -> i32 {
        let num_samples = main.first().map_or(0, |c| c.len());
        if main.iter().any(|c| c.len() != num_samples) || sidechain.iter().any(|c| c.len() != num_samples) {
            return status::INVALID_ARGUMENT;
        }
        let Some(ptrs) = trio::abi::ChannelPointers::new(main, sidechain) else { return status::INVALID_ARGUMENT };
        // The mode is set by `process_raw` from the setup.
        let mut data = ptrs.process_data(num_samples, events, *transport, 0);
        self.process_raw(&mut data)
    }

    /// The bridge's audio path, wrapped in exactly this one place: the allocation check
    /// (violations are counted in the block) and panic capture (flush-to-zero is the
    /// engine export's, around the engine's own code). Sets `data.process_mode` from the
    /// setup. A block that brings a sleeping engine nothing is answered without calling
    /// it ([`SleepGate`]). Never waits in real time: if another thread is inside the
    /// engine (a host calling `process` and `setupProcessing` at once), returns
    /// [`status::BUSY`] with the outputs untouched. Offline, it first lets the control
    /// logic schedule up to the end of the block (the one wait allowed, DESIGN §6).
    pub fn process_raw(&self, data: &mut ProcessData) -> i32 {
        let Some(_guard) = EngineGuard::try_take(&self.engine_busy) else {
            return status::BUSY;
        };
        // Relaxed: written by `setup_processing`, which the host never runs during process.
        let offline = self.setup_offline.load(Ordering::Relaxed);
        data.process_mode = if offline { process_mode::OFFLINE } else { process_mode::REALTIME };
        if offline {
            self.catch_up_control(data);
        }
        let Some(call) = self.sleep.before(self.block(), data) else {
            // Answered in the sleeping engine's place. The worker still sees blocks
            // coming, for control logic that asks for ticks.
            self.core.tick_feedback.count_block();
            return status::OK;
        };
        let engine = self.engine_ptr;
        let process = self.engine.fns.process;
        let (result, violations) = trio::realtime::count_allocations(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if data.num_events > 0 && !data.events.is_null() {
                    // SAFETY: the caller's `ProcessData` holds `num_events` valid events.
                    let events = unsafe { core::slice::from_raw_parts(data.events, data.num_events as usize) };
                    if events.iter().any(|e| e.kind == trio::abi::event_kind::PARAM) {
                        // Relaxed: a hint for the next offline block.
                        self.params_moved.store(true, Ordering::Relaxed);
                        // Idle control logic looks at the new values soon (wait-free).
                        self.core.tick_feedback.poke();
                    }
                }
                // SAFETY: a live engine; the guard excludes any concurrent engine call;
                // `data`'s pointers are valid for this call (the caller built it).
                unsafe { process(engine, data) }
            }))
        });
        self.sleep.after(call, data, *result.as_ref().unwrap_or(&status::PANIC));
        self.core.tick_feedback.count_block();
        if !self.block().from_engine.is_empty() {
            // The engine sent the control module something: tick it soon (wait-free).
            self.core.tick_feedback.poke();
        }
        self.block().stats.add_alloc_violations(violations);
        result.unwrap_or(status::PANIC)
    }

    /// Whether blocks a sleeping engine needs not see skip it (`true`, the default); see
    /// [`SleepGate::set_allowed`].
    pub fn set_sleep_allowed(&self, allowed: bool) {
        self.sleep.set_allowed(allowed);
    }

    /// Whether the main bus carries the host's input (`true`, the default, for an
    /// effect); see [`SleepGate::set_main_input`].
    pub fn set_main_input(&self, carries_input: bool) {
        self.sleep.set_main_input(carries_input);
    }

    /// Blocks a sleeping engine was not called for, since the instance was created.
    pub fn slept_blocks(&self) -> u64 {
        self.sleep.slept_blocks()
    }

    /// Offline: ticks the control logic up to the end of this block and waits for it, when
    /// it asked for ticks or something changed since its last one. Even when an earlier
    /// tick (the worker's timer) already scheduled past this block: that tick may predate
    /// what the engine recorded in the previous block (a key went down), which the logic
    /// must see before this block renders.
    fn catch_up_control(&self, data: &ProcessData) {
        let block = self.block();
        // Acquire: pairs with the engine's Release store of its clock.
        let end = block.header.sample_clock.load(Ordering::Acquire) + u64::from(data.num_samples);
        // Relaxed: hints; a missed one is caught by the next block or the idle poll.
        // Loads first, stores only on a change: an idle block writes nothing here.
        let epoch = block.params.values_epoch.load(Ordering::Relaxed);
        let epoch_moved = self.ticked_epoch.load(Ordering::Relaxed) != epoch;
        if epoch_moved {
            self.ticked_epoch.store(epoch, Ordering::Relaxed);
        }
        let params_moved = self.params_moved.load(Ordering::Relaxed);
        if params_moved {
            self.params_moved.store(false, Ordering::Relaxed);
        }
        if !(self.core.tick_feedback.wants_ticks() || epoch_moved || params_moved || !block.from_engine.is_empty()) {
            return;
        }
        // Offline there is no deadline: allocating and waiting for the worker is fine.
        assert_no_alloc::permit_alloc(|| {
            let binding = read(&self.core.control);
            if let Some(b) = binding.as_ref()
                && let Err(e) = b.module.worker.tick_now(&b.ptr, end)
            {
                log::debug!("offline tick failed: {e}");
            }
        });
    }

    /// Records in the block that the host switched `flag` (a
    /// [`trio::block::state_flags`] bit) on or off.
    pub fn note_host_state(&self, flag: u32, on: bool) {
        let header = &self.block().header;
        header.set_state_flag(flag, on);
        let active = header.has_state_flag(trio::block::state_flags::ACTIVE)
            || header.has_state_flag(trio::block::state_flags::PROCESSING);
        self.core.tick_feedback.set_host_active(active);
    }

    /// The host is about to process (call from `setActive(true)` or `setProcessing(true)`,
    /// never from the audio thread): the control worker starts looking for parameter
    /// moves and engine messages every few milliseconds, until blocks stop coming.
    pub fn expect_blocks(&self) {
        let binding = read(&self.core.control);
        if let Some(b) = binding.as_ref()
            && let Err(e) = b.module.worker.expect_blocks(&b.ptr, &self.core.tick_feedback)
        {
            log::debug!("the control worker was not told that blocks are coming: {e}");
        }
    }

    /// A parameter's normalized value (any thread; wait-free).
    pub fn param_normalized(&self, id: u32) -> Option<f64> {
        self.block().params.value(id)
    }

    /// Sets a parameter's normalized value (any thread, the audio thread included). The
    /// engine applies it at the start of its next block; for sample-accurate changes pass
    /// [`Event::param`] to `process`. `false` for an undefined id or a non-finite value.
    pub fn set_param_normalized(&self, id: u32, value: f64) -> bool {
        let set = self.block().params.set_value(id, value);
        if set {
            // Idle control logic looks at the new value soon (wait-free).
            self.core.tick_feedback.poke();
        }
        set
    }

    /// The parameter definitions, read from the block (re-read only when the control
    /// module changed them). Any thread but the audio thread. No lock and no reference
    /// count while they are unchanged: hosts ask on nearly every call.
    pub fn definitions(&self) -> &Arc<Definitions> {
        let version = self.block().params.version();
        // Acquire: pairs with the Release store in `refresh_definitions`, made after the
        // definitions it confirms were published.
        if self.definitions_version.load(Ordering::Acquire) == version {
            return self.definitions.get();
        }
        self.refresh_definitions()
    }

    /// [`Self::definitions`] when the block's version moved: reads them again.
    #[cold]
    fn refresh_definitions(&self) -> &Arc<Definitions> {
        let params = &self.block().params;
        let mut confirmed = None;
        let defs = self.definitions.update(|cached| match params.read_definitions() {
            // The same definitions written again (a control instance created in the
            // background, a reload that changed nothing the host sees).
            Some(fresh) if fresh.same_as(cached) => {
                confirmed = Some(fresh.version);
                None
            }
            Some(fresh) => {
                confirmed = Some(fresh.version);
                Some(Arc::new(fresh))
            }
            // A rewrite in progress: the last ones until it ends.
            None => None,
        });
        if let Some(version) = confirmed {
            // Release: see `definitions`. Under no lock: a racing refresh can only store
            // an older version, which costs the next call one more read.
            self.definitions_version.store(version, Ordering::Release);
        }
        defs
    }

    /// The definition of parameter `id`.
    pub fn param_info(&self, id: u32) -> Option<ParamInfo> {
        self.definitions().param(id).cloned()
    }

    /// The latency the engine reports, in samples.
    pub fn latency_samples(&self) -> u32 {
        // Relaxed: a setting the engine updates; the host re-reads it when told.
        self.block().header.latency_samples.load(Ordering::Relaxed)
    }

    /// The tail the engine reports: `Some(samples)`, or `None` for an infinite tail.
    pub fn tail_samples(&self) -> Option<u32> {
        // Relaxed: as above.
        match self.block().header.tail_samples.load(Ordering::Relaxed) {
            INFINITE_TAIL => None,
            n => Some(n),
        }
    }

    fn control_call<R: Send + 'static>(
        &self,
        function: &'static str,
        f: impl FnOnce(&ControlFns, *mut c_void) -> Result<R, i32> + Send + 'static,
    ) -> Result<R, ControlError> {
        let binding = read(&self.core.control);
        let result = match binding.as_ref() {
            None => Err(ControlError::WorkerGone),
            Some(b) => b.call(function, f),
        };
        drop(binding);
        if result.is_err() {
            Statistics::bump(&self.block().stats.control_errors);
        }
        result
    }

    /// Display text for a normalized value of parameter `id` ("440 Hz"), from its display
    /// rule in the block, on the calling thread; only a parameter with custom formatting
    /// asks the control module.
    ///
    /// # Errors
    /// [`ControlError::Failed`] for an unknown id; [`ControlError`] if custom formatting
    /// fails.
    pub fn format_value(&self, id: u32, normalized: f64) -> Result<String, ControlError> {
        // Hosts call this thousands of times at load: no copy of the definition.
        let defs = self.definitions();
        let Some(info) = defs.param(id) else {
            return Err(unknown_param("trio_control_format_value", id));
        };
        if info.display.kind != DisplayKind::Custom {
            return Ok(info.format_normalized(normalized));
        }
        self.control_call("trio_control_format_value", move |fns, inst| {
            // SAFETY: a live control instance, on the worker; the closure writes only into
            // the buffer it is given.
            read_text(|buf, cap, len| unsafe { (fns.format_value)(inst, id, normalized, buf, cap, len) })
        })
    }

    /// Parses display text for parameter `id` into a normalized value, like
    /// [`Instance::format_value`].
    ///
    /// # Errors
    /// [`ControlError::Failed`] with the reason when the text is not a value.
    pub fn parse_value(&self, id: u32, text: &str) -> Result<f64, ControlError> {
        let defs = self.definitions();
        let Some(info) = defs.param(id) else {
            return Err(unknown_param("trio_control_parse_value", id));
        };
        if info.display.kind != DisplayKind::Custom {
            return info.parse(text).map(|plain| info.mapping.to_normalized(plain)).map_err(|e| ControlError::Failed {
                function: "trio_control_parse_value",
                code: status::REJECTED,
                message: e.to_string(),
            });
        }
        let text = text.to_owned();
        self.control_call("trio_control_parse_value", move |fns, inst| {
            let mut out = 0.0;
            // SAFETY: a live control instance, on the worker; `text` and `out` are locals.
            check(unsafe { (fns.parse_value)(inst, id, text.as_ptr(), text.len(), &mut out) })?;
            Ok(out)
        })
    }

    /// The state as versioned JSON.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    ///
    /// When the control module is hung (a call to it timed out), or never created this
    /// instance's control instance (a background creation failed), it cannot be asked:
    /// the state is then the parameter values and MIDI CC map read from the block, as a
    /// [`trio::state::VALUES_FORMAT`] document (the plugin's own fields are lost), and a
    /// warning says so. The user's settings are saved either way.
    pub fn save_state(&self) -> Result<Vec<u8>, ControlError> {
        match read(&self.core.control).as_ref() {
            Some(b) => state_of(b, &self.core),
            None => Err(ControlError::WorkerGone),
        }
    }

    /// Loads a state. All or nothing: a rejected state changes nothing.
    ///
    /// # Errors
    /// [`ControlError::Failed`] with the module's reason.
    pub fn load_state(&self, bytes: &[u8]) -> Result<(), ControlError> {
        let bytes = bytes.to_vec();
        self.control_call("trio_control_load_state", move |fns, inst| load_state_of(fns, inst, &bytes))
    }

    /// Names of the factory presets.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    pub fn preset_names(&self) -> Result<Vec<String>, ControlError> {
        self.control_call("trio_control_preset_name", |fns, inst| {
            // SAFETY: a live control instance, on the worker.
            let count = unsafe { (fns.preset_count)(inst) };
            (0..count)
                // SAFETY: as above; the closure writes only into the buffer it is given.
                .map(|i| read_text(|buf, cap, len| unsafe { (fns.preset_name)(inst, i, buf, cap, len) }))
                .collect()
        })
    }

    /// Loads factory preset `index`.
    ///
    /// # Errors
    /// [`ControlError`] for a bad index or a failing module.
    pub fn load_preset(&self, index: u32) -> Result<(), ControlError> {
        self.control_call("trio_control_load_preset", move |fns, inst| {
            // SAFETY: a live control instance, on the worker.
            check(unsafe { (fns.load_preset)(inst, index) })
        })
    }

    /// The parameter MIDI CC `cc` controls, if any (from the block).
    pub fn midi_cc_param(&self, cc: u32) -> Option<u32> {
        self.definitions().cc_map.get(cc as usize).copied().flatten()
    }

    /// Runs the control module's control-rate work once, now, scheduling up to `until`
    /// (0: the real-time lookahead), and waits for it.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    pub fn tick(&self, until: u64) -> Result<trio::abi::TickResult, ControlError> {
        let binding = read(&self.core.control);
        let Some(b) = binding.as_ref() else { return Err(ControlError::WorkerGone) };
        match b.module.worker.tick_now(&b.ptr, until)? {
            Ok(result) => Ok(result),
            Err((code, message)) => Err(ControlError::Failed { function: "trio_control_tick", code, message }),
        }
    }

    /// Whether the control logic asked to be ticked at its last tick (it is not idle).
    pub fn control_wants_ticks(&self) -> bool {
        self.core.tick_feedback.wants_ticks()
    }

    /// Takes the VST3 `RestartFlags` bits that reloads have asked for since the last call
    /// (0 if none). The plugin delivers them to the host's `restartComponent` on a thread
    /// the host accepts; the reload itself runs on a background thread.
    pub fn take_restart_request(&self) -> i32 {
        // Relaxed: a cheap look first (hosts call this path thousands of times); a request
        // missed here is taken by the next call.
        if self.core.restart_request.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        // AcqRel: pairs with the Release in `request_restart`, so a caller that sees the
        // flags also sees the new module's parameter definitions.
        self.core.restart_request.swap(0, Ordering::AcqRel)
    }

    /// Adds VST3 `RestartFlags` bits for the plugin to deliver to the host.
    pub fn request_restart(&self, flags: i32) {
        // Release: see `take_restart_request`.
        self.core.restart_request.fetch_or(flags, Ordering::Release);
    }

    /// How many times a new control module has started serving this instance (0 for the
    /// one it was created with).
    pub fn control_generation(&self) -> u64 {
        // Acquire: pairs with the Release bump after a swap.
        self.core.control_generation.load(Ordering::Acquire)
    }

    /// The control module serving this instance now (`None` only while it is dropped).
    pub fn control_module(&self) -> Option<Arc<ControlModule>> {
        read(&self.core.control).as_ref().map(|b| Arc::clone(&b.module))
    }
}

fn unknown_param(function: &'static str, id: u32) -> ControlError {
    ControlError::Failed { function, code: status::INVALID_ARGUMENT, message: format!("no parameter has id {id}") }
}

/// Writes setup values and bus channels into the block's header.
fn write_setup(block: &SharedBlock, setup: ProcessSetup, buses: Buses) {
    let h = &block.header;
    // Relaxed: setup values, read by the modules at their next activation.
    h.main_channels.store(buses.main.min(MAX_CHANNELS as u32), Ordering::Relaxed);
    h.sidechain_channels.store(buses.sidechain.min(MAX_CHANNELS as u32), Ordering::Relaxed);
    let mode = if setup.offline { process_mode::OFFLINE } else { process_mode::REALTIME };
    h.process_mode.store(mode, Ordering::Relaxed);
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.engine_ptr.is_null() {
            // SAFETY: a live engine, destroyed once; `&mut self` excludes other calls.
            unsafe { (self.engine.fns.destroy)(self.engine_ptr) };
        }
        // Waits for a control call or a reload in progress; afterwards no new control call
        // can reach this instance.
        let binding = write(&self.core.control).take();
        let Some(b) = binding else { return };
        // Nothing can open the segment from now on; the mapping stays while the worker
        // may still use it.
        if let Err(e) = self.core.segment.unlink() {
            log::warn!("{e}; the segment is removed once the control instance is destroyed");
        }
        let core = Arc::clone(&self.core);
        let ptr = b.ptr.clone();
        // Queued, not waited for: the worker stops ticking the control instance, destroys
        // it and then releases the block (the last use of its mapping), after every call
        // queued before.
        let posted = b.module.worker.post(move |ctx| {
            ctx.stop_ticking(&ptr);
            destroy_on_worker(&ctx.fns, &ptr);
            drop(core);
        });
        if b.module.worker.is_hung() {
            // A call into this module outlived its time limit and may still be running on
            // this instance's control instance, reading and writing its block, and the
            // worker runs no queued job after it: keep the block mapped (leaked, a few
            // hundred KB) so that call cannot touch freed memory.
            log::warn!(
                "the control module is hung: keeping this instance's shared block mapped, since a call still running \
                 in the module may use it"
            );
            self.core.keep_mapped_forever();
        } else if let Err(e) = posted {
            log::error!("could not destroy the control instance: {e}");
        }
    }
}

impl ControlBinding {
    /// Runs `f` with this binding's control instance on its module's worker; a failing
    /// status becomes [`ControlError::Failed`] with the module's own message.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        function: &'static str,
        f: impl FnOnce(&ControlFns, *mut c_void) -> Result<R, i32> + Send + 'static,
    ) -> Result<R, ControlError> {
        let ptr = self.ptr.clone();
        self.module
            .worker
            .call(function, move |fns| {
                let instance = ptr.ensure_created(fns)?;
                f(fns, instance).map_err(|code| (code, last_error(fns, instance, code)))
            })
            .and_then(|r| r.map_err(|(code, message)| ControlError::Failed { function, code, message }))
    }
}

/// The state as JSON. Runs on the worker.
pub(crate) fn save_state_of(fns: &ControlFns, inst: *mut c_void) -> Result<Vec<u8>, i32> {
    let mut bytes: Vec<u8> = Vec::new();
    // SAFETY: a live control instance, on the worker; `append_to_vec` matches `WriteFn` and
    // `ctx` is `&mut bytes`, alive for the call.
    check(unsafe { (fns.save_state)(inst, trio::abi::append_to_vec, (&mut bytes as *mut Vec<u8>).cast()) })?;
    Ok(bytes)
}

/// The state of `b`'s control instance on `core`'s block; when the module cannot give it
/// (it is hung, or never created the instance), the values in the block (see
/// [`Instance::save_state`]). The one rule for a host's `getState` and a reload's handover.
pub(crate) fn state_of(b: &ControlBinding, core: &Core) -> Result<Vec<u8>, ControlError> {
    let from_block = |why: &str| {
        log::warn!(
            "instance {}: the control module {why}, so the state is taken from the shared block: the parameter values \
             and MIDI CC map only (the plugin's own state fields are lost); reload or restart the plugin",
            core.instance_id()
        );
        Ok(values_only_state(core.block()))
    };
    if b.module.worker.is_hung() {
        return from_block("is hung");
    }
    let result = b.call("trio_control_save_state", save_state_of);
    if result.is_err() {
        Statistics::bump(&core.block().stats.control_errors);
    }
    match result {
        Err(ControlError::Timeout { .. }) => from_block("is hung"),
        Err(_) if b.ptr.failure().is_some() => from_block("could not create this instance's control instance"),
        other => other,
    }
}

/// The parameter values (plain) and MIDI CC map in `block`, as a
/// [`trio::state::VALUES_FORMAT`] state, without calling the control module.
pub(crate) fn values_only_state(block: &SharedBlock) -> Vec<u8> {
    let Some(defs) = block.params.read_definitions() else {
        // Definitions change only when a control module publishes them: an empty state
        // loads as every parameter at its default.
        return trio::state::values_to_json(&[], &[]).into_bytes();
    };
    let values: Vec<(u32, f64)> =
        defs.params.iter().filter_map(|p| Some((p.id, p.mapping.to_plain(block.params.value(p.id)?)))).collect();
    // States map controllers 0..=127 only (pressure and pitch bend follow the plugin's
    // declarations, not the user's map).
    let cc_map: Vec<(u8, u32)> =
        defs.cc_map.iter().take(CC_COUNT).enumerate().filter_map(|(cc, id)| Some((cc as u8, (*id)?))).collect();
    trio::state::values_to_json(&values, &cc_map).into_bytes()
}

/// Loads a state. Runs on the worker.
pub(crate) fn load_state_of(fns: &ControlFns, inst: *mut c_void, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: a live control instance, on the worker; `bytes` is valid for the call.
    check(unsafe { (fns.load_state)(inst, bytes.as_ptr(), bytes.len()) })
}

/// Creates a control instance on `module`'s worker for the segment at `block_addr`.
pub(crate) fn create_control(
    module: &ControlModule,
    block_addr: usize,
    mode: u32,
) -> Result<ControlPtr, InstanceError> {
    module
        .worker
        .call("trio_control_create", move |fns| {
            // SAFETY: the segment is initialised and outlives the control instance (it is
            // destroyed before its core drops the segment).
            unsafe { create_instance(fns, block_addr, mode) }.map(|instance| instance as usize)
        })
        .map_err(InstanceError::Control)?
        .map(|instance| ControlPtr::created(instance as *mut c_void))
        .map_err(|(code, message)| {
            InstanceError::Control(ControlError::Failed { function: "trio_control_create", code, message })
        })
}

/// Queues the creation of a control instance (`CREATE_DEFINED`) for the segment at
/// `block_addr`, whose parameters the caller has defined, and its ticks; returns at once.
/// A failure is logged and kept in the handle: each later call tries again, or reports it.
///
/// The segment must outlive the job: the instance's owner releases it only through a job
/// queued after this one (see `Drop for Instance`).
fn create_control_in_background(
    module: &ControlModule,
    block_addr: usize,
    instance_id: u64,
    feedback: &Arc<TickFeedback>,
) -> Result<ControlPtr, ControlError> {
    let ptr = ControlPtr::pending(block_addr);
    let slot = ptr.clone();
    let feedback = Arc::clone(feedback);
    module.worker.post(move |ctx| {
        if let Err((code, message)) = slot.ensure_created(&ctx.fns) {
            log::error!(
                "instance {instance_id}: {message} ({code}); the plugin plays with its parameters, each call to its \
                 control logic tries to create it again, and until then a saved state holds only the parameter values"
            );
        }
        // Ticked once created (a failed creation is left alone by the schedule).
        ctx.start_ticking(slot, feedback);
    })?;
    Ok(ptr)
}

/// Destroys a control instance, if it was created. Runs on the worker.
fn destroy_on_worker(fns: &ControlFns, ptr: &ControlPtr) {
    let instance = ptr.get();
    if !instance.is_null() {
        // SAFETY: a live control instance, destroyed once (its only handle is dropped by
        // the caller), on the worker.
        unsafe { (fns.destroy)(instance) }
    }
}

/// Destroys a control instance on its module's worker and waits, logging a failure.
pub(crate) fn destroy_control(module: &ControlModule, ptr: &ControlPtr) {
    let ptr = ptr.clone();
    if let Err(e) = module.worker.call("trio_control_destroy", move |fns| destroy_on_worker(fns, &ptr)) {
        log::error!("could not destroy the control instance: {e}");
    }
}

fn validate_setup(setup: ProcessSetup) -> Result<(), InstanceError> {
    if !(setup.sample_rate.is_finite() && (1_000.0..=1_536_000.0).contains(&setup.sample_rate)) {
        return Err(InstanceError::Setup {
            reason: format!("sample rate {} Hz is outside 1000..=1536000 Hz", setup.sample_rate),
        });
    }
    if setup.max_block_size == 0 || setup.max_block_size > 1 << 16 {
        return Err(InstanceError::Setup {
            reason: format!("max block size {} is outside 1..=65536 samples", setup.max_block_size),
        });
    }
    Ok(())
}

pub(crate) fn check(code: i32) -> Result<(), i32> {
    if code == status::OK { Ok(()) } else { Err(code) }
}

/// The control module's message for a failed call, or the status description.
pub(crate) fn last_error(fns: &ControlFns, instance: *mut c_void, code: i32) -> String {
    // SAFETY: a live control instance (or null, which the export handles), on the worker.
    let text = read_text(|buf, cap, len| unsafe { (fns.last_error)(instance, buf, cap, len) }).unwrap_or_default();
    if text.is_empty() || code == status::PANIC { status::describe(code).to_owned() } else { text }
}
