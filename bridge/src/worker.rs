//! The control worker: the only thread that ever runs control-module code.
//!
//! It opens the control library, checks it, serves calls one at a time, and on shutdown
//! calls `control_module_shutdown` and exits; the library is unloaded only after the
//! thread has been joined. Measured on Linux: a library whose code ran on a long-lived
//! host thread (thread-locals with destructors) cannot be unmapped by `dlclose`, while one
//! whose thread has exited unloads cleanly. That is why no other thread calls it.

use core::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libloading::Library;
use trio::abi::{ModuleDescriptor, TickResult, control, module_kind};

use crate::error::{ControlError, LoadError};
use crate::modules::{check_descriptor, check_exports, open_library, symbol};

/// How long a call into the control module may take before it is treated as hung.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long each side of a call spins before it sleeps: the worker waiting for the next
/// job after answering a call, and the caller waiting for its reply. Hosts make calls in
/// bursts (pedalboard asks for thousands of parameter texts while loading, a custom
/// format's among them); sleeping and being woken costs tens of microseconds per call on
/// a busy machine, spinning a few. Queued work (creating and destroying instances) is not
/// followed by a spin: nothing waits on it.
const SPIN: Duration = Duration::from_micros(50);

/// Polls `try_once` until it yields a value or `budget` has passed.
fn spin_for<T>(budget: Duration, mut try_once: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = try_once() {
            return Some(value);
        }
        if start.elapsed() >= budget {
            return None;
        }
        std::hint::spin_loop();
    }
}

/// The control module's exported functions.
#[derive(Clone, Copy)]
pub struct ControlFns {
    pub(crate) create: control::CreateFn,
    pub(crate) destroy: control::DestroyFn,
    pub(crate) format_value: control::FormatValueFn,
    pub(crate) parse_value: control::ParseValueFn,
    pub(crate) save_state: control::SaveStateFn,
    pub(crate) load_state: control::LoadStateFn,
    pub(crate) preset_count: control::PresetCountFn,
    pub(crate) preset_name: control::PresetNameFn,
    pub(crate) load_preset: control::LoadPresetFn,
    pub(crate) tick: control::TickFn,
    pub(crate) last_error: control::LastErrorFn,
    pub(crate) module_shutdown: control::ModuleShutdownFn,
}

/// A control instance as the bridge holds it: its address is set by the worker job that
/// creates it and read by the jobs after it, on the same worker, in order. So the host's
/// thread can hold it, and queue calls to it, before the instance exists.
#[derive(Clone)]
pub(crate) struct ControlPtr(Arc<ControlSlot>);

struct ControlSlot {
    /// The instance's address: 0 until it is created, and while creating it fails.
    ptr: AtomicUsize,
    /// Why the last attempt to create it failed: status code and the module's message.
    failure: Mutex<Option<(i32, String)>>,
    /// The block it is created on (0: created by its owner, never again here).
    block: usize,
}

impl ControlPtr {
    /// An instance that a queued job will create (`CREATE_DEFINED`) on the block at
    /// `block`, which outlives every job that uses this handle.
    pub(crate) fn pending(block: usize) -> Self {
        Self(Arc::new(ControlSlot { ptr: AtomicUsize::new(0), failure: Mutex::new(None), block }))
    }

    /// An instance that exists.
    pub(crate) fn created(instance: *mut c_void) -> Self {
        let ptr = Self::pending(0);
        ptr.set(instance);
        ptr
    }

    /// Creates the instance (`CREATE_DEFINED`) unless it exists; on the worker. A call
    /// that finds a failed creation tries again, so a passing fault heals; a lasting one
    /// is reported to every call, naming the creation.
    ///
    /// # Errors
    /// The status code and message of the failed creation.
    pub(crate) fn ensure_created(&self, fns: &ControlFns) -> Result<*mut c_void, (i32, String)> {
        let existing = self.get();
        if !existing.is_null() {
            return Ok(existing);
        }
        if self.0.block == 0 {
            return Err(self.not_created());
        }
        // SAFETY: the block outlives every job using this handle (see `pending`); the
        // bridge defined it.
        match unsafe { create_instance(fns, self.0.block, control::CREATE_DEFINED) } {
            Ok(instance) => {
                self.set(instance);
                *self.failure_slot() = None;
                Ok(instance)
            }
            Err(failure) => {
                *self.failure_slot() = Some(failure);
                Err(self.not_created())
            }
        }
    }

    /// Why a call finds no instance: the error its creation gave.
    pub(crate) fn not_created(&self) -> (i32, String) {
        match self.failure() {
            Some((code, message)) => (code, format!("the control instance could not be created: {message}")),
            None => (trio::abi::status::NULL_POINTER, "the control instance does not exist".to_owned()),
        }
    }

    fn failure_slot(&self) -> std::sync::MutexGuard<'_, Option<(i32, String)>> {
        self.0.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The instance's address, null if it was not created. Read on the worker, by jobs
    /// queued after the one that created it.
    pub(crate) fn get(&self) -> *mut c_void {
        // Relaxed: written by an earlier job on the same thread, or before this handle was
        // sent to the worker (the queue orders both).
        self.0.ptr.load(Ordering::Relaxed) as *mut c_void
    }

    pub(crate) fn set(&self, instance: *mut c_void) {
        // Relaxed: see `get`.
        self.0.ptr.store(instance as usize, Ordering::Relaxed);
    }

    /// Why the last attempt to create the instance failed, if it did.
    pub(crate) fn failure(&self) -> Option<(i32, String)> {
        self.failure_slot().clone()
    }

    /// Whether both handles are the same instance.
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Creates a control instance in `mode` on the block at `block`. On the worker.
///
/// # Safety
/// `block` is an initialised segment that outlives the instance, with provenance over the
/// whole segment.
///
/// # Errors
/// The status code and the module's message.
pub(crate) unsafe fn create_instance(fns: &ControlFns, block: usize, mode: u32) -> Result<*mut c_void, (i32, String)> {
    let mut out: *mut c_void = core::ptr::null_mut();
    // SAFETY: the caller's guarantee for `block`; `out` is a local.
    let code = unsafe { (fns.create)(block as *const trio::block::SharedBlock, mode, &mut out) };
    match code {
        trio::abi::status::OK if !out.is_null() => Ok(out),
        _ => Err((code, crate::instance::last_error(fns, core::ptr::null_mut(), code))),
    }
}

/// A fixed instant early in the process's life, shared by the worker's clocks.
fn process_epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A control instance the worker ticks on its own schedule.
struct Ticking {
    instance: ControlPtr,
    /// `feedback.blocks` at the last look, and how many looks found no new block since.
    seen_blocks: u64,
    quiet_checks: u32,
    /// When to tick it next.
    due: Instant,
    /// Where the worker reports what the last tick asked for ([`TickFeedback`]).
    feedback: Arc<TickFeedback>,
}

/// What the last tick of an instance asked for, shared with the bridge's audio path.
#[derive(Default)]
pub struct TickFeedback {
    /// Microseconds until the logic wants its next tick; 0 while it is idle.
    pub next_tick_us: AtomicU64,
    /// Set by the audio path (a parameter moved, the engine sent a message) and by value
    /// changes from the host: the worker ticks idle logic at its next check instead of
    /// waiting for the idle interval. An asleep instance (see `asleep`) keeps it until
    /// the host switches it on.
    poked: std::sync::atomic::AtomicBool,
    /// Blocks processed, counted by the audio path: the worker checks for pokes only
    /// while blocks keep coming (a loaded instance the host does not play costs nothing).
    blocks: AtomicU64,
    /// Set by the worker while it checks this instance for pokes every
    /// [`POKE_CHECK_INTERVAL`] (blocks came recently): telling it blocks are coming is
    /// then unnecessary.
    watching: std::sync::atomic::AtomicBool,
    /// Set while the host has said the plugin is neither active nor processing (VST3
    /// `setActive(false)`, and a new component): then idle control logic is not ticked on
    /// the idle grid, so a loaded instance the host does not use wakes nothing.
    host_inactive: std::sync::atomic::AtomicBool,
}

impl TickFeedback {
    /// Whether the control logic asked to be ticked (it is not idle).
    pub fn wants_ticks(&self) -> bool {
        // Relaxed: a hint; the audio path ticks offline when in doubt.
        self.next_tick_us.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn record(&self, result: &TickResult) {
        // Relaxed: see `wants_ticks`.
        self.next_tick_us.store(result.next_tick_us, Ordering::Relaxed);
    }

    /// Something the control logic may react to happened. Wait-free: safe on the audio
    /// thread (no wake-up call; the worker checks within [`POKE_CHECK_INTERVAL`]).
    pub fn poke(&self) {
        // Relaxed: a hint; what changed is read from the block by the tick itself.
        self.poked.store(true, Ordering::Relaxed);
    }

    /// A block was processed (wait-free). Called only by the thread processing the
    /// instance, one at a time (the engine guard), so a load and a store count without a
    /// read-modify-write.
    pub fn count_block(&self) {
        // Relaxed: a count compared with itself by the worker.
        self.blocks.store(self.blocks.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// Records whether the host has the plugin active or processing (not the audio thread's
    /// business: hosts switch these on their main thread).
    pub fn set_host_active(&self, active: bool) {
        // SeqCst: with the SeqCst load of `watching` in `expect_blocks` and the worker's
        // SeqCst store of `watching` then load here in `asleep`, either the worker sees the
        // instance active or the host sees it unwatched and posts a job: no lost wake-up.
        self.host_inactive.store(!active, Ordering::SeqCst);
    }

    /// Whether the worker may leave this instance alone until something wakes it: its
    /// logic is idle, the host has it inactive, and no blocks came recently.
    fn asleep(&self) -> bool {
        // SeqCst: see `set_host_active`.
        self.host_inactive.load(Ordering::SeqCst) && !self.wants_ticks() && !self.watching.load(Ordering::SeqCst)
    }

    fn take_poke(&self) -> bool {
        // Relaxed: see `poke`.
        self.poked.swap(false, Ordering::Relaxed)
    }
}

/// What a job running on the worker can reach.
pub(crate) struct WorkerContext {
    pub(crate) fns: ControlFns,
    /// Control instances the worker ticks, each on the schedule its last tick asked for.
    ticking: Vec<Ticking>,
    /// Set by a job that answered a waiting caller: another call may follow at once.
    answered: bool,
}

impl WorkerContext {
    /// Starts ticking `instance`: at once, then on the schedule each tick asks for.
    pub(crate) fn start_ticking(&mut self, instance: ControlPtr, feedback: Arc<TickFeedback>) {
        if !self.ticking.iter().any(|t| t.instance.same(&instance)) {
            // Relaxed: see `TickFeedback::count_block`.
            let seen_blocks = feedback.blocks.load(Ordering::Relaxed);
            self.ticking.push(Ticking { instance, seen_blocks, quiet_checks: 0, due: Instant::now(), feedback });
        }
    }

    /// Stops ticking `instance`.
    pub(crate) fn stop_ticking(&mut self, instance: &ControlPtr) {
        self.ticking.retain(|t| !t.instance.same(instance));
    }
}

type Job = Box<dyn FnOnce(&mut WorkerContext) + Send>;

/// How often an idle control module is ticked (it said it has nothing to do): slowly, so
/// it still notices changes; all idle instances of a module share one wake-up per
/// interval.
pub const IDLE_TICK_INTERVAL: Duration = trio::control::IDLE_TICK;

/// How often the worker looks, without calling the module, whether an idle instance was
/// poked ([`TickFeedback::poke`]): the longest an idle control logic waits, in real
/// time, to see a parameter move or a message from the engine.
pub const POKE_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Checks without a new block after which an instance counts as not playing (no more
/// checks for pokes until blocks come again or the host starts processing).
const QUIET_CHECKS: u32 = 10;

/// The worker thread and the queue of calls it serves.
pub struct ControlWorker {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<Option<Library>>>,
    /// Per-call time limit, milliseconds.
    timeout_ms: std::sync::atomic::AtomicU64,
    /// Set when a call timed out: the thread may be stuck inside the module forever, so it
    /// is never joined and the library is never unloaded. Shared with the thread, which
    /// runs nothing more of the module once the stuck call returns.
    hung: Arc<std::sync::atomic::AtomicBool>,
    /// When the job the worker is running started ([`Busy`]): a call's time limit counts
    /// from there, not from when it was queued (background jobs may be ahead of it).
    busy: Arc<Busy>,
}

/// When the worker's current job started, as nanoseconds after a process-wide base plus
/// one; 0 while it waits for work.
#[derive(Default)]
struct Busy(AtomicU64);

impl Busy {
    /// Runs `f`, marked as the current job.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let since = Instant::now().saturating_duration_since(process_epoch()).as_nanos() as u64 + 1;
        // Relaxed: a clock reading for callers' time limits; no data depends on it.
        self.0.store(since, Ordering::Relaxed);
        let result = f();
        // Relaxed: as above.
        self.0.store(0, Ordering::Relaxed);
        result
    }

    /// Whether the current job has run for `limit` or longer.
    fn longer_than(&self, limit: Duration) -> bool {
        // Relaxed: see `run`.
        match self.0.load(Ordering::Relaxed) {
            0 => false,
            since => {
                let started = process_epoch() + Duration::from_nanos(since - 1);
                Instant::now().saturating_duration_since(started) >= limit
            }
        }
    }
}

/// A call's progress, decided once by whichever side gets there first: the worker
/// finishing it, or the caller giving up on it.
const CALL_PENDING: u8 = 0;
const CALL_DONE: u8 = 1;
const CALL_ABANDONED: u8 = 2;

/// How often a caller waiting for a long call looks whether the worker is stuck.
const STUCK_CHECK: Duration = Duration::from_millis(20);

impl ControlWorker {
    /// Starts the thread, which loads and checks the library at `path`.
    pub(crate) fn start(path: PathBuf) -> Result<(Self, ModuleDescriptor), LoadError> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<ModuleDescriptor, LoadError>>();
        let hung = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy = Arc::new(Busy::default());
        let (thread_hung, thread_busy) = (Arc::clone(&hung), Arc::clone(&busy));
        let thread = std::thread::Builder::new()
            .name("trio-control".to_owned())
            .spawn(move || serve(path, job_rx, ready_tx, &thread_hung, &thread_busy))
            .map_err(|e| LoadError::Worker { reason: format!("could not start the control worker thread: {e}") })?;
        let worker = Self {
            jobs: Some(job_tx),
            thread: Some(thread),
            timeout_ms: std::sync::atomic::AtomicU64::new(DEFAULT_CALL_TIMEOUT.as_millis() as u64),
            hung,
            busy,
        };
        match ready_rx.recv_timeout(DEFAULT_CALL_TIMEOUT) {
            Ok(Ok(descriptor)) => Ok((worker, descriptor)),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                worker.mark_hung();
                Err(LoadError::Worker { reason: "loading the control module did not finish in time".to_owned() })
            }
        }
    }

    /// Sets the time limit for each call.
    pub fn set_timeout(&self, timeout: Duration) {
        // At least 1 ms: a zero limit would take any running job for hung.
        let ms = (timeout.as_millis() as u64).max(1);
        // Relaxed: a setting read by later calls; no other data depends on it.
        self.timeout_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn timeout(&self) -> Duration {
        // Relaxed: see `set_timeout`.
        Duration::from_millis(self.timeout_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn mark_hung(&self) {
        // Release: the worker thread reads it (Acquire) when the stuck call returns, and
        // must then see every instance the caller gave up on as gone.
        self.hung.store(true, std::sync::atomic::Ordering::Release);
        // The stuck call returns into the worker loop, in this library: keep it mapped.
        crate::pin_own_library();
    }

    /// Whether a call timed out earlier.
    pub fn is_hung(&self) -> bool {
        // Acquire: see `mark_hung`.
        self.hung.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `f` on the worker and waits for its result (at most the time limit).
    ///
    /// # Errors
    /// [`ControlError::Timeout`] if it did not return in time (the module is then treated
    /// as hung), [`ControlError::WorkerGone`] if the worker is not serving.
    pub fn call<R: Send + 'static>(
        &self,
        function: &'static str,
        f: impl FnOnce(&ControlFns) -> R + Send + 'static,
    ) -> Result<R, ControlError> {
        self.call_in(function, move |ctx| f(&ctx.fns))
    }

    /// Starts ticking `instance` on the worker: at once, then on the schedule each tick
    /// asks for (idle instances every [`IDLE_TICK_INTERVAL`]). Queued without waiting:
    /// jobs run in order, so any later call finds it registered.
    ///
    /// # Errors
    /// [`ControlError::WorkerGone`] if the worker is not serving.
    pub(crate) fn start_ticking(&self, instance: ControlPtr, feedback: Arc<TickFeedback>) -> Result<(), ControlError> {
        self.post(move |ctx| ctx.start_ticking(instance, feedback))
    }

    /// The host is about to process `instance` (`setActive`, `setProcessing`): look for
    /// pokes every [`POKE_CHECK_INTERVAL`] while blocks come. Does not wait for the
    /// worker, and sends it nothing when it is watching the instance already (hosts
    /// toggle these states at every reset: pedalboard before each render). Not for the
    /// audio thread (it may wake the worker).
    ///
    /// # Errors
    /// [`ControlError::WorkerGone`] if the worker is not serving.
    pub(crate) fn expect_blocks(&self, instance: &ControlPtr, feedback: &TickFeedback) -> Result<(), ControlError> {
        // SeqCst: see `TickFeedback::set_host_active`; at worst a redundant job.
        if feedback.watching.load(Ordering::SeqCst) {
            return Ok(());
        }
        let instance = instance.clone();
        self.post(move |ctx| {
            if let Some(t) = ctx.ticking.iter_mut().find(|t| t.instance.same(&instance)) {
                t.quiet_checks = 0;
                t.feedback.watching.store(true, Ordering::Relaxed);
            }
        })
    }

    /// Queues `f` for the worker without waiting for it. Jobs run in the order they were
    /// queued, calls included.
    ///
    /// # Errors
    /// [`ControlError::WorkerGone`] if the worker is not serving (`f` is dropped unrun).
    pub(crate) fn post(&self, f: impl FnOnce(&mut WorkerContext) + Send + 'static) -> Result<(), ControlError> {
        if self.is_hung() {
            return Err(ControlError::WorkerGone);
        }
        let jobs = self.jobs.as_ref().ok_or(ControlError::WorkerGone)?;
        jobs.send(Box::new(f)).map_err(|_| ControlError::WorkerGone)
    }

    /// Stops ticking `instance`. Queued without waiting: jobs run in order, so when any
    /// later call returns (destroying the instance, saving its state), no tick of it is
    /// running or will run.
    ///
    /// # Errors
    /// [`ControlError::WorkerGone`] if the worker is not serving.
    pub(crate) fn stop_ticking(&self, instance: &ControlPtr) -> Result<(), ControlError> {
        let instance = instance.clone();
        self.post(move |ctx| ctx.stop_ticking(&instance))
    }

    /// Ticks `instance` now with horizon `until` (0: the real-time lookahead) and waits for
    /// it, recording the result in its feedback. For offline rendering, where the audio
    /// thread may wait, and for tests.
    ///
    /// # Errors
    /// As [`Self::call`]; a failing tick gives its status code.
    pub(crate) fn tick_now(
        &self,
        instance: &ControlPtr,
        until: u64,
    ) -> Result<Result<TickResult, (i32, String)>, ControlError> {
        let instance = instance.clone();
        self.call_in("trio_control_tick", move |ctx| {
            // No new attempt at a failed creation here: offline renders tick at every block.
            let result = match instance.get() {
                ptr if ptr.is_null() => Err(instance.not_created()),
                ptr => {
                    tick_one(&ctx.fns, ptr, until).map_err(|code| (code, trio::abi::status::describe(code).to_owned()))
                }
            };
            if let (Ok(r), Some(t)) = (&result, ctx.ticking.iter_mut().find(|t| t.instance.same(&instance))) {
                t.feedback.record(r);
                t.due = next_due(r);
            }
            result
        })
    }

    fn call_in<R: Send + 'static>(
        &self,
        function: &'static str,
        f: impl FnOnce(&mut WorkerContext) -> R + Send + 'static,
    ) -> Result<R, ControlError> {
        if self.is_hung() {
            return Err(ControlError::WorkerGone);
        }
        let jobs = self.jobs.as_ref().ok_or(ControlError::WorkerGone)?;
        let (reply_tx, reply_rx) = mpsc::sync_channel::<R>(1);
        let progress = Arc::new(std::sync::atomic::AtomicU8::new(CALL_PENDING));
        let (job_progress, hung) = (Arc::clone(&progress), Arc::clone(&self.hung));
        let job: Job = Box::new(move |ctx| {
            let reply = f(ctx);
            // AcqRel: decides the call once against the caller's giving up (below).
            if job_progress.compare_exchange(CALL_PENDING, CALL_DONE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                let _ = reply_tx.send(reply);
                ctx.answered = true;
            } else {
                // The caller gave up on this call and treats the module as hung: run
                // nothing more of it (the loop checks this flag after every job).
                // Release: see `ControlWorker::mark_hung`.
                hung.store(true, Ordering::Release);
            }
        });
        jobs.send(job).map_err(|_| ControlError::WorkerGone)?;
        if let Some(reply) = spin_for(SPIN, || reply_rx.try_recv().ok()) {
            return Ok(reply);
        }
        // The limit counts from the start of the job the worker is running, ours or one
        // queued before it: a queue of healthy background jobs is waited for.
        let timeout = self.timeout();
        loop {
            match reply_rx.recv_timeout(STUCK_CHECK.min(timeout)) {
                Ok(r) => return Ok(r),
                Err(RecvTimeoutError::Disconnected) => return Err(ControlError::WorkerGone),
                Err(RecvTimeoutError::Timeout) if !self.busy.longer_than(timeout) => {}
                Err(RecvTimeoutError::Timeout) => {
                    // AcqRel: see the job above.
                    if progress
                        .compare_exchange(CALL_PENDING, CALL_ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        // It finished just now: the reply is on its way.
                        return reply_rx.recv().map_err(|_| ControlError::WorkerGone);
                    }
                    self.mark_hung();
                    log::error!(
                        "the control module has been running one call for longer than {timeout:?} (while {function} \
                         waited)"
                    );
                    return Err(ControlError::Timeout { function, millis: timeout.as_millis() as u64 });
                }
            }
        }
    }
}

impl Drop for ControlWorker {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop.
        drop(self.jobs.take());
        let Some(thread) = self.thread.take() else { return };
        if self.is_hung() {
            // The thread may be stuck inside the module: joining would block forever and
            // unloading would pull code from under it. Leave both in place.
            log::warn!("leaving a hung control worker and its library loaded");
            std::mem::forget(thread);
            return;
        }
        // Queued jobs (background creations and destructions) run before the worker
        // exits; one of them may be stuck in the module, with no caller to notice. Wait
        // while the worker makes progress; give up on a job that runs past the limit.
        while !thread.is_finished() {
            if self.busy.longer_than(self.timeout()) {
                self.mark_hung();
                log::error!(
                    "a queued control call has run for longer than {:?}; leaving the control worker and its library \
                     loaded",
                    self.timeout()
                );
                std::mem::forget(thread);
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        match thread.join() {
            // The worker has exited: now the library can be unmapped cleanly.
            Ok(library) => drop(library),
            Err(_) => log::error!("the control worker thread panicked; its library stays loaded"),
        }
    }
}

/// The worker thread's body. Returns the library so it is unloaded after the join.
fn serve(
    path: PathBuf,
    jobs: Receiver<Job>,
    ready: mpsc::Sender<Result<ModuleDescriptor, LoadError>>,
    hung: &std::sync::atomic::AtomicBool,
    busy: &Busy,
) -> Option<Library> {
    const MODULE: &str = "control";
    let loaded = open_library(MODULE, &path).and_then(|library| {
        let descriptor = check_descriptor(&library, MODULE, &path, module_kind::CONTROL, control::DESCRIPTOR)?;
        check_exports(&library, MODULE, &path, control::EXPORTS)?;
        let fns = resolve(&library, &path)?;
        Ok((library, descriptor, fns))
    });
    let (library, fns) = match loaded {
        Ok((library, descriptor, fns)) => {
            let _ = ready.send(Ok(descriptor));
            (library, fns)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return None;
        }
    };
    drop(ready);
    let mut ctx = WorkerContext { fns, ticking: Vec::new(), answered: false };
    // Spin for the next job only right after answering a call: calls come in bursts
    // (value texts at load), queued work (creations, destructions) and ticks do not.
    let mut after_call = false;
    loop {
        let spun = if after_call { spin_for(SPIN, || jobs.try_recv().ok()) } else { None };
        // Instances the host is playing are also checked for pokes, cheaply (no call into
        // the module), every POKE_CHECK_INTERVAL; idle ones only on the idle grid.
        let playing = ctx.ticking.iter().any(|t| t.quiet_checks < QUIET_CHECKS);
        // An instance the host has switched off, with idle logic, sets no time: a process
        // with only such instances sleeps until a call or an activation wakes it.
        let next_due = ctx.ticking.iter().filter(|t| !t.feedback.asleep()).map(|t| t.due).min();
        let next_due =
            if playing { next_due.map(|due| due.min(Instant::now() + POKE_CHECK_INTERVAL)) } else { next_due };
        let next = match (spun, next_due) {
            (Some(job), _) => Ok(job),
            (None, None) => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
            (None, Some(due)) => jobs.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        match next {
            Ok(job) => {
                busy.run(|| job(&mut ctx));
                after_call = std::mem::take(&mut ctx.answered);
            }
            Err(RecvTimeoutError::Timeout) => {
                tick_due(&mut ctx, busy);
                after_call = false;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Acquire: see `ControlWorker::mark_hung`.
        if hung.load(std::sync::atomic::Ordering::Acquire) {
            // A call outlived its time limit and has now returned. Its caller gave up, and
            // may since have dropped instances whose blocks this thread can no longer
            // trust: run nothing more of the module (no queued job, no tick, no shutdown)
            // and keep its code mapped.
            log::warn!(
                "a control call returned after its time limit; this control module runs nothing more (reload it to \
                 serve the plugin again)"
            );
            std::mem::forget(library);
            return None;
        }
    }
    let fns = ctx.fns;
    // SAFETY: the module's own shutdown entry, resolved with its checked signature;
    // called once, on this thread, after the last call and before the library is dropped.
    let code = busy.run(|| unsafe { (fns.module_shutdown)() });
    if code != trio::abi::status::OK {
        log::warn!("trio_control_module_shutdown returned {code}");
    }
    Some(library)
}

/// When an instance is due next after a tick that returned `result`. Idle instances are
/// due on a common grid of [`IDLE_TICK_INTERVAL`]: however many are loaded, the worker
/// wakes once per interval for all of them.
fn next_due(result: &TickResult) -> Instant {
    let now = Instant::now();
    match result.next_tick_us {
        0 => idle_grid_after(now),
        us => now + Duration::from_micros(us).min(IDLE_TICK_INTERVAL),
    }
}

/// The first point of the idle grid at least half an interval after `now`.
fn idle_grid_after(now: Instant) -> Instant {
    let base = process_epoch();
    let interval = IDLE_TICK_INTERVAL.as_nanos();
    let earliest = (now + IDLE_TICK_INTERVAL / 2).saturating_duration_since(base).as_nanos();
    let steps = earliest.div_ceil(interval);
    base + Duration::from_nanos((steps * interval).min(u128::from(u64::MAX)) as u64)
}

/// Runs one tick of `instance`, which exists.
fn tick_one(fns: &ControlFns, instance: *mut c_void, until: u64) -> Result<TickResult, i32> {
    let mut result = TickResult::default();
    // SAFETY: a live control instance: registered by its owner after creation and removed
    // (on this thread, by a job) before it is destroyed; `result` is a local.
    let code = unsafe { (fns.tick)(instance, until, &mut result) };
    if code == trio::abi::status::OK { Ok(result) } else { Err(code) }
}

/// Ticks every registered instance that is due, and schedules its next tick.
fn tick_due(ctx: &mut WorkerContext, busy: &Busy) {
    let now = Instant::now();
    let fns = ctx.fns;
    for t in &mut ctx.ticking {
        // Relaxed: see `TickFeedback::count_block`.
        let blocks = t.feedback.blocks.load(Ordering::Relaxed);
        if blocks == t.seen_blocks {
            t.quiet_checks = t.quiet_checks.saturating_add(1);
        } else {
            t.seen_blocks = blocks;
            t.quiet_checks = 0;
        }
        // SeqCst: pairs with `TickFeedback::set_host_active` and `expect_blocks`, so a host
        // switching the instance on while the worker stops watching it is seen by one side.
        t.feedback.watching.store(t.quiet_checks < QUIET_CHECKS, Ordering::SeqCst);
    }
    // An asleep instance (switched off, idle) is not ticked even when the worker woke for
    // another; a poke waits for it to wake.
    for t in ctx.ticking.iter_mut().filter(|t| !t.feedback.asleep() && (t.feedback.take_poke() || t.due <= now)) {
        let instance = t.instance.get();
        if instance.is_null() {
            // Its creation failed (logged then); a call tries again, not the schedule.
            t.due = idle_grid_after(now);
            continue;
        }
        // Each tick has the whole limit: a caller waiting behind many instances' ticks
        // must not take the worker for hung.
        match busy.run(|| tick_one(&fns, instance, 0)) {
            Ok(result) => {
                t.feedback.record(&result);
                t.due = next_due(&result);
            }
            Err(code) => {
                log::debug!("trio_control_tick returned {code}");
                t.due = idle_grid_after(now);
            }
        }
    }
}

fn resolve(library: &Library, path: &std::path::Path) -> Result<ControlFns, LoadError> {
    macro_rules! sym {
        ($name:literal, $ty:ty) => {
            // SAFETY: the export was checked to exist and the descriptor's ABI version and
            // layout hash match this bridge, so it has this signature. The pointer is used
            // only while the library is loaded (the worker owns both).
            unsafe { symbol::<$ty>(library, "control", path, $name)? }
        };
    }
    Ok(ControlFns {
        create: sym!("trio_control_create", control::CreateFn),
        destroy: sym!("trio_control_destroy", control::DestroyFn),
        format_value: sym!("trio_control_format_value", control::FormatValueFn),
        parse_value: sym!("trio_control_parse_value", control::ParseValueFn),
        save_state: sym!("trio_control_save_state", control::SaveStateFn),
        load_state: sym!("trio_control_load_state", control::LoadStateFn),
        preset_count: sym!("trio_control_preset_count", control::PresetCountFn),
        preset_name: sym!("trio_control_preset_name", control::PresetNameFn),
        load_preset: sym!("trio_control_load_preset", control::LoadPresetFn),
        tick: sym!("trio_control_tick", control::TickFn),
        last_error: sym!("trio_control_last_error", control::LastErrorFn),
        module_shutdown: sym!("trio_control_module_shutdown", control::ModuleShutdownFn),
    })
}
