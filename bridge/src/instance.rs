//! One plugin instance: a shared block, an engine instance and a control instance.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use shared::abi::{Event, ParamInfo, ProcessData, control, status};
use shared::block::{SharedBlock, Statistics};
use shared::segment::BlockSegment;

use crate::error::{ControlError, InstanceError};
use crate::modules::{ControlModule, EngineModule, Modules};
use crate::worker::ControlFns;

/// Most output channels [`Instance::process`] passes to the engine.
pub const MAX_CHANNELS: usize = 8;

static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

/// Processing setup, as a host gives it in `setupProcessing`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessSetup {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// Largest block the host will send.
    pub max_block_size: u32,
}

impl Default for ProcessSetup {
    fn default() -> Self {
        Self { sample_rate: 48_000.0, max_block_size: 1024 }
    }
}

/// A control instance pointer, moved to the worker thread and back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ControlPtr(pub(crate) usize);

impl ControlPtr {
    pub(crate) fn get(self) -> *mut c_void {
        self.0 as *mut c_void
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
    /// ever reaches a control instance that is being replaced.
    pub(crate) control: RwLock<Option<ControlBinding>>,
    /// VST3 `RestartFlags` bits a reload asks the host for, not yet delivered.
    restart_request: AtomicI32,
    /// Bumped each time a different control module starts serving this instance.
    control_generation: AtomicU64,
    segment: BlockSegment,
}

impl Core {
    pub(crate) fn block(&self) -> &SharedBlock {
        self.segment.block()
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
/// `process` is for the audio thread; parameter reads and writes are atomics and safe
/// from any thread; everything that calls the control module runs on the control worker
/// and waits for it.
pub struct Instance {
    engine: Arc<EngineModule>,
    engine_ptr: *mut c_void,
    engine_busy: AtomicBool,
    /// Sample rate (f64 bits) and max block size of the current setup.
    setup_rate: AtomicU64,
    setup_block: AtomicU32,
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

impl Instance {
    /// Creates the shared block, the engine instance (activated for `setup`) and the
    /// control instance (which writes parameter mappings and defaults into the block).
    ///
    /// # Errors
    /// [`InstanceError`] saying which part refused; nothing is left behind.
    pub fn new(modules: &Modules, setup: ProcessSetup) -> Result<Self, InstanceError> {
        validate_setup(setup)?;
        let segment = BlockSegment::create().map_err(InstanceError::Segment)?;
        let instance_id = NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed);
        segment.block().init_header(instance_id, setup.sample_rate, setup.max_block_size);

        // Control first: it writes the mappings and defaults the engine reads at creation.
        // Holding the hub's reload lock: a reload cannot start between choosing the module
        // and registering the instance with the hub.
        let hub = &modules.control;
        let reloads = hub.lock_reloads();
        let control = hub.current();
        let block_addr = segment.as_ptr() as usize;
        let control_ptr = create_control(&control, block_addr, control::CREATE_FRESH)?;
        if let Err(e) = control.worker.start_ticking(control_ptr.0) {
            destroy_control(&control, control_ptr);
            return Err(InstanceError::Control(e));
        }
        let core = Arc::new(Core {
            control: RwLock::new(Some(ControlBinding { module: control, ptr: control_ptr })),
            restart_request: AtomicI32::new(0),
            control_generation: AtomicU64::new(0),
            segment,
        });
        hub.register(&core);
        drop(reloads);

        let mut engine_ptr: *mut c_void = core::ptr::null_mut();
        let engine = Arc::clone(&modules.engine);
        // SAFETY: as above for the block; `engine_ptr` is a local.
        let code = unsafe { (engine.fns.create)(core.block(), &mut engine_ptr) };
        let mut instance = Self {
            engine,
            engine_ptr,
            engine_busy: AtomicBool::new(false),
            setup_rate: AtomicU64::new(setup.sample_rate.to_bits()),
            setup_block: AtomicU32::new(setup.max_block_size),
            core,
        };
        if code != status::OK || instance.engine_ptr.is_null() {
            instance.engine_ptr = core::ptr::null_mut();
            return Err(InstanceError::Engine { code });
        }
        instance.setup_processing(setup)?;
        Ok(instance)
    }

    /// The shared block.
    pub fn block(&self) -> &SharedBlock {
        self.core.block()
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
        }
    }

    /// Changes sample rate and block size (the host's `setupProcessing`). Not on the
    /// audio thread: the engine allocates its buffers here.
    ///
    /// # Errors
    /// [`InstanceError::Setup`] for invalid values, [`InstanceError::Engine`] if the engine refuses.
    pub fn setup_processing(&self, setup: ProcessSetup) -> Result<(), InstanceError> {
        validate_setup(setup)?;
        let Some(_guard) = EngineGuard::try_take(&self.engine_busy) else {
            return Err(InstanceError::Engine { code: status::BUSY });
        };
        // SAFETY: a live engine; the guard excludes any concurrent engine call.
        let code = unsafe { (self.engine.fns.activate)(self.engine_ptr, setup.sample_rate, setup.max_block_size) };
        if code != status::OK {
            return Err(InstanceError::Engine { code });
        }
        let header = &self.block().header;
        // Relaxed: informational copies for other readers of the block.
        header.sample_rate.store(setup.sample_rate, Ordering::Relaxed);
        header.max_block_size.store(setup.max_block_size, Ordering::Relaxed);
        // Relaxed: informational copies, read by `setup()`.
        self.setup_rate.store(setup.sample_rate.to_bits(), Ordering::Relaxed);
        self.setup_block.store(setup.max_block_size, Ordering::Relaxed);
        Ok(())
    }

    /// Silences every voice and clears an engine fault. Not on the audio thread.
    pub fn reset(&self) -> i32 {
        let Some(_guard) = EngineGuard::try_take(&self.engine_busy) else {
            return status::BUSY;
        };
        // SAFETY: a live engine; the guard excludes any concurrent engine call.
        unsafe { (self.engine.fns.reset)(self.engine_ptr) }
    }

    /// Renders one block into `outputs` (every channel the same length, at most
    /// `max_block_size`), with `events` timed by sample offset and sorted. Real-time safe.
    /// Returns the engine's status code.
    pub fn process(&self, outputs: &mut [&mut [f32]], events: &[Event]) -> i32 {
        let num_samples = outputs.first().map_or(0, |c| c.len());
        if outputs.len() > MAX_CHANNELS || outputs.iter().any(|c| c.len() != num_samples) {
            return status::INVALID_ARGUMENT;
        }
        let mut channels = [core::ptr::null_mut::<f32>(); MAX_CHANNELS];
        for (slot, channel) in channels.iter_mut().zip(outputs.iter_mut()) {
            *slot = channel.as_mut_ptr();
        }
        let mut data = ProcessData {
            num_samples: num_samples as u32,
            num_outputs: outputs.len() as u32,
            outputs: channels.as_ptr(),
            num_inputs: 0,
            num_events: events.len() as u32,
            inputs: core::ptr::null(),
            events: if events.is_empty() { core::ptr::null() } else { events.as_ptr() },
            silence_flags: 0,
        };
        self.process_raw(&mut data)
    }

    /// The bridge's audio path, wrapped in exactly this one place: flush-to-zero, the
    /// allocation check (violations are counted in the block), and panic capture.
    /// Never waits: if another thread is inside the engine (a host calling `process` and
    /// `setupProcessing` at once), returns [`status::BUSY`] with the outputs untouched.
    pub fn process_raw(&self, data: &mut ProcessData) -> i32 {
        let Some(_guard) = EngineGuard::try_take(&self.engine_busy) else {
            return status::BUSY;
        };
        let _ftz = shared::realtime::DenormalGuard::new();
        let before = assert_no_alloc::violation_count();
        let engine = self.engine_ptr;
        let process = self.engine.fns.process;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: a live engine; the guard excludes any concurrent engine call;
            // `data`'s pointers are valid for this call (the caller built it).
            assert_no_alloc::assert_no_alloc(|| unsafe { process(engine, data) })
        }));
        let violations = assert_no_alloc::violation_count().wrapping_sub(before);
        if violations > 0 {
            // Relaxed: a telemetry counter.
            self.block().stats.alloc_violations.fetch_add(u64::from(violations), Ordering::Relaxed);
        }
        result.unwrap_or(status::PANIC)
    }

    /// A parameter's normalized value (any thread).
    pub fn param_normalized(&self, id: u32) -> Option<f64> {
        // Relaxed: parameter values are independent atomics.
        self.block().param(id).map(|p| p.value.load(Ordering::Relaxed))
    }

    /// Sets a parameter's normalized value (any thread). The engine applies it at the start
    /// of its next block; for sample-accurate changes pass [`Event::param`] to `process`.
    pub fn set_param_normalized(&self, id: u32, value: f64) -> bool {
        match self.block().param(id) {
            Some(slot) if value.is_finite() => {
                // Relaxed: parameter values are independent atomics.
                slot.value.store(value.clamp(0.0, 1.0), Ordering::Relaxed);
                true
            }
            _ => false,
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

    /// Every parameter's description, from the control module.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    pub fn param_infos(&self) -> Result<Vec<ParamInfo>, ControlError> {
        self.control_call("control_param_info", param_infos_of)
    }

    /// Display text for a normalized value of parameter `id` ("440 Hz").
    ///
    /// # Errors
    /// [`ControlError`] for an unknown id or a failing module.
    pub fn format_value(&self, id: u32, normalized: f64) -> Result<String, ControlError> {
        self.control_call("control_format_value", move |fns, inst| {
            // SAFETY: a live control instance, on the worker; the closure writes only into
            // the buffer it is given.
            read_text(|buf, cap, len| unsafe { (fns.format_value)(inst, id, normalized, buf, cap, len) })
        })
    }

    /// Parses display text for parameter `id` into a normalized value.
    ///
    /// # Errors
    /// [`ControlError::Failed`] with the module's message when the text is not a value.
    pub fn parse_value(&self, id: u32, text: &str) -> Result<f64, ControlError> {
        let text = text.to_owned();
        self.control_call("control_parse_value", move |fns, inst| {
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
    pub fn save_state(&self) -> Result<Vec<u8>, ControlError> {
        self.control_call("control_save_state", save_state_of)
    }

    /// Loads a state. All or nothing: a rejected state changes nothing.
    ///
    /// # Errors
    /// [`ControlError::Failed`] with the module's reason.
    pub fn load_state(&self, bytes: &[u8]) -> Result<(), ControlError> {
        let bytes = bytes.to_vec();
        self.control_call("control_load_state", move |fns, inst| load_state_of(fns, inst, &bytes))
    }

    /// Names of the factory presets.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    pub fn preset_names(&self) -> Result<Vec<String>, ControlError> {
        self.control_call("control_preset_name", |fns, inst| {
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
        // SAFETY: a live control instance, on the worker.
        self.control_call("control_load_preset", move |fns, inst| check(unsafe { (fns.load_preset)(inst, index) }))
    }

    /// The parameter MIDI CC `cc` controls, if any.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    pub fn midi_cc_param(&self, cc: u32) -> Result<Option<u32>, ControlError> {
        self.control_call("control_midi_cc_param", move |fns, inst| {
            let mut id = 0;
            // SAFETY: a live control instance, on the worker; `id` is a local.
            match unsafe { (fns.midi_cc_param)(inst, cc, &mut id) } {
                status::OK => Ok(Some(id)),
                status::NOT_FOUND => Ok(None),
                code => Err(code),
            }
        })
    }

    /// Runs the control module's control-rate work once.
    ///
    /// # Errors
    /// [`ControlError`] if the control module fails.
    pub fn tick(&self) -> Result<(), ControlError> {
        // SAFETY: a live control instance, on the worker.
        self.control_call("control_tick", |fns, inst| check(unsafe { (fns.tick)(inst) }))
    }

    /// Takes the VST3 `RestartFlags` bits that reloads have asked for since the last call
    /// (0 if none). The plugin delivers them to the host's `restartComponent` on a thread
    /// the host accepts; the reload itself runs on a background thread.
    pub fn take_restart_request(&self) -> i32 {
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
    /// one it was created with). Parameter tables cached from an older generation are stale.
    pub fn control_generation(&self) -> u64 {
        // Acquire: pairs with the Release bump after a swap.
        self.core.control_generation.load(Ordering::Acquire)
    }

    /// The control module serving this instance now (`None` only while it is dropped).
    pub fn control_module(&self) -> Option<Arc<ControlModule>> {
        read(&self.core.control).as_ref().map(|b| Arc::clone(&b.module))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.engine_ptr.is_null() {
            // SAFETY: a live engine, destroyed once; `&mut self` excludes other calls.
            unsafe { (self.engine.fns.destroy)(self.engine_ptr) };
        }
        // Waits for a reload in progress; afterwards no reload can reach this instance.
        let binding = write(&self.core.control).take();
        if let Some(b) = binding {
            if let Err(e) = b.module.worker.stop_ticking(b.ptr.0) {
                log::error!("could not stop ticking the control instance: {e}");
            }
            destroy_control(&b.module, b.ptr);
        }
        // The core (and with it the segment) drops after this, unlinking the shared memory.
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
        let ptr = self.ptr;
        self.module
            .worker
            .call(function, move |fns| {
                let instance = ptr.get();
                f(fns, instance).map_err(|code| (code, last_error(fns, instance, code)))
            })
            .and_then(|r| r.map_err(|(code, message)| ControlError::Failed { function, code, message }))
    }
}

/// Every parameter's description. Runs on the worker.
pub(crate) fn param_infos_of(fns: &ControlFns, inst: *mut c_void) -> Result<Vec<ParamInfo>, i32> {
    // SAFETY: a live control instance, on the worker thread.
    let count = unsafe { (fns.param_count)(inst) };
    let mut infos = Vec::with_capacity(count as usize);
    for index in 0..count {
        let mut info = ParamInfo::default();
        // SAFETY: as above; `info` is a local.
        check(unsafe { (fns.param_info)(inst, index, &mut info) })?;
        infos.push(info);
    }
    Ok(infos)
}

/// The state as JSON. Runs on the worker.
pub(crate) fn save_state_of(fns: &ControlFns, inst: *mut c_void) -> Result<Vec<u8>, i32> {
    let mut bytes: Vec<u8> = Vec::new();
    // SAFETY: a live control instance, on the worker; `append` matches `WriteFn` and
    // `ctx` is `&mut bytes`, alive for the call.
    check(unsafe { (fns.save_state)(inst, append, (&mut bytes as *mut Vec<u8>).cast()) })?;
    Ok(bytes)
}

/// Loads a state. Runs on the worker.
pub(crate) fn load_state_of(fns: &ControlFns, inst: *mut c_void, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: a live control instance, on the worker; `bytes` is valid for the call.
    check(unsafe { (fns.load_state)(inst, bytes.as_ptr(), bytes.len()) })
}

/// Creates a control instance on `module`'s worker for the block at `block_addr`.
pub(crate) fn create_control(
    module: &ControlModule,
    block_addr: usize,
    mode: u32,
) -> Result<ControlPtr, InstanceError> {
    module
        .worker
        .call("control_create", move |fns| {
            let mut out: *mut c_void = core::ptr::null_mut();
            // SAFETY: the block is initialised and outlives the control instance (it is
            // destroyed before its core drops the segment); `out` is a local.
            let code = unsafe { (fns.create)(block_addr as *const SharedBlock, mode, &mut out) };
            let message = if code == status::OK { String::new() } else { last_error(fns, core::ptr::null_mut(), code) };
            (code, out as usize, message)
        })
        .map_err(InstanceError::Control)
        .and_then(|(code, ptr, message)| {
            if code == status::OK && ptr != 0 {
                Ok(ControlPtr(ptr))
            } else {
                Err(InstanceError::Control(ControlError::Failed { function: "control_create", code, message }))
            }
        })
}

/// Destroys a control instance on its module's worker, logging a failure.
pub(crate) fn destroy_control(module: &ControlModule, ptr: ControlPtr) {
    let destroyed = module.worker.call("control_destroy", move |fns| {
        // SAFETY: a live control instance, destroyed once, on the worker.
        unsafe { (fns.destroy)(ptr.get()) }
    });
    if let Err(e) = destroyed {
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

/// Calls a `(buf, cap, out_len)` export, growing the buffer once if it was too small.
pub(crate) fn read_text(mut f: impl FnMut(*mut u8, usize, *mut usize) -> i32) -> Result<String, i32> {
    let mut buf = vec![0u8; 256];
    let mut len = 0usize;
    let mut code = f(buf.as_mut_ptr(), buf.len(), &mut len);
    if code == status::BUFFER_TOO_SMALL && len > buf.len() && len <= 1 << 24 {
        buf.resize(len, 0);
        code = f(buf.as_mut_ptr(), buf.len(), &mut len);
    }
    check(code)?;
    buf.truncate(len.min(buf.len()));
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `WriteFn` that appends to the `Vec<u8>` behind `ctx`.
pub(crate) unsafe extern "C" fn append(ctx: *mut c_void, data: *const u8, len: usize) {
    if ctx.is_null() || (data.is_null() && len > 0) {
        return;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the `&mut Vec<u8>` passed to `control_save_state` for this
        // call, and `data` is valid for `len` bytes (the module's guarantee).
        unsafe {
            let bytes = &mut *ctx.cast::<Vec<u8>>();
            if len > 0 {
                bytes.extend_from_slice(core::slice::from_raw_parts(data, len));
            }
        }
    }));
    let _ = result;
}
