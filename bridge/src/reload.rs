//! Hot reload of the control module: a development feature.
//!
//! [`ControlHub::reload`] replaces the control module serving every instance by a new
//! build, following the protocol of the design (all of it off the audio thread, which never
//! waits for any of it):
//!
//! 1. copy the new library to a unique private path (loading the same path twice can return
//!    the old code), load it on a fresh control worker and check it (ELF structure,
//!    descriptor, ABI version, layout hash, exports);
//! 2. for each instance, with its control calls held off: stop the old module's ticks, save
//!    its state as JSON, create the new module's instance with `CREATE_ADOPT` on the same
//!    block and load the state into it;
//! 3. swap every instance at once, start the new module's ticks, destroy the old instances,
//!    join the old worker, unload the old library and check that it is gone from
//!    `/proc/self/maps`;
//! 4. when parameter definitions or the MIDI CC map changed, ask the plugin to tell the host
//!    (`restartComponent`, delivered on the host's main thread).
//!
//! Any failure before the swap keeps the old module serving with everything it had: the
//! parameter definitions in the block are restored, the failure is logged and counted in
//! each block's `reload_failures`. [`Watcher`] runs this whenever a build lands a new
//! library in the watched folder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trio::abi::control;
use trio::block::{Definitions, DefinitionsSnapshot, Statistics};
use vst3::Steinberg::Vst::RestartFlags_;

use crate::error::LoadError;
use crate::instance::{ControlBinding, Core, create_control, destroy_control, load_state_of, state_of, write};
use crate::modules::{ControlHub, ControlModule, Modules};
use crate::worker::ControlPtr;

/// Environment variable that turns watching off when set to `0`.
pub const HOT_RELOAD_ENV: &str = "TRIO_HOT_RELOAD";

/// How long the watcher waits after the last event of a burst before it reloads: a build
/// that lands a library produces several events (create, close-after-write).
const QUIET: Duration = Duration::from_millis(5);

/// What one successful reload did.
#[derive(Clone, Debug)]
pub struct ReloadReport {
    /// The version string of the module that served before.
    pub old_version: String,
    /// The version string of the module serving now.
    pub new_version: String,
    /// The file the new module came from (the watched or given path, not the private copy).
    pub source: PathBuf,
    /// Instances moved to the new module.
    pub instances: usize,
    /// Bytes of state JSON handed over, all instances together.
    pub state_bytes: usize,
    /// Whether parameter definitions or the MIDI CC map changed (the host was told).
    pub definitions_changed: bool,
    /// From the new library landing (the watcher's event, or the call) to the new module
    /// serving every instance.
    pub landed_to_serving: Duration,
    /// From landing until the old module was unloaded too.
    pub landed_to_done: Duration,
    /// Deadline misses the engines counted while the reload ran, all instances together.
    pub deadline_misses: u64,
    /// Whether the old library is gone from `/proc/self/maps`.
    pub old_unmapped: bool,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "control {} -> {}: serving after {:.1} ms, {} deadline miss{} during the reload, state carried over for {} \
             instance{} ({} bytes), parameters {}, old library {}",
            self.old_version,
            self.new_version,
            self.landed_to_serving.as_secs_f64() * 1e3,
            self.deadline_misses,
            if self.deadline_misses == 1 { "" } else { "es" },
            self.instances,
            if self.instances == 1 { "" } else { "s" },
            self.state_bytes,
            if self.definitions_changed { "changed (host notified)" } else { "unchanged" },
            if self.old_unmapped { "unloaded" } else { "still mapped" },
        )
    }
}

/// Why a reload did not happen. The old module keeps serving.
#[derive(Debug, Clone)]
pub enum ReloadError {
    /// The new library could not be copied to its private path.
    Stage {
        /// The new library.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The new library did not load or failed its checks.
    Load {
        /// The new library.
        source: PathBuf,
        /// Why (naming the private copy it was loaded from).
        error: LoadError,
    },
    /// The new library was built with another plugin area than the engine.
    Area {
        /// The new library.
        source: PathBuf,
        /// The engine's area.
        engine: trio::abi::AreaLayout,
        /// The new library's area.
        found: trio::abi::AreaLayout,
    },
    /// An instance could not be handed over to the new module.
    Handover {
        /// The instance (its block's instance id).
        instance: u64,
        /// Which step failed.
        step: &'static str,
        /// What the module or the worker said.
        reason: String,
    },
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stage { path, reason } => {
                write!(f, "could not copy the new control library {}: {reason}", path.display())
            }
            Self::Load { source, error } => {
                write!(f, "the new control library {} was refused: {error}", source.display())
            }
            Self::Area { source, engine, found } => write!(
                f,
                "the new control library {} was built with a plugin area of hash {:#018x} ({} bytes) but the running \
                 engine has {:#018x} ({} bytes): an area change needs the engine rebuilt too, so restart the host \
                 with a new bundle",
                source.display(),
                found.hash,
                found.size,
                engine.hash,
                engine.size
            ),
            Self::Handover { instance, step, reason } => {
                write!(f, "instance {instance}: could not {step}: {reason}")
            }
        }?;
        write!(f, "; the old control module keeps serving")
    }
}

impl std::error::Error for ReloadError {}

/// Counts and the latest outcome of the reloads of one hub.
#[derive(Clone, Debug, Default)]
pub struct ReloadStats {
    /// Successful reloads.
    pub reloads: u64,
    /// Refused or failed reloads.
    pub failures: u64,
    /// The latest successful reload.
    pub last: Option<ReloadReport>,
    /// The latest failure.
    pub last_error: Option<ReloadError>,
}

/// A reload's private copy of a library; deleted when dropped.
pub(crate) struct StagedFile(PathBuf);

impl StagedFile {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("could not delete {}: {e}", self.0.display());
        }
    }
}

/// The folder for private copies: `$XDG_RUNTIME_DIR/trio-reload` or `<tmp>/trio-reload-<uid>`,
/// mode 0700.
fn staging_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_absolute() && runtime.is_dir() => runtime.join("trio-reload"),
        // SAFETY: `getuid` has no preconditions and cannot fail.
        _ => std::env::temp_dir().join(format!("trio-reload-{}", unsafe { libc::getuid() })),
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let meta = std::fs::metadata(&dir)?;
    // SAFETY: as above.
    if meta.uid() != unsafe { libc::getuid() } {
        return Err(std::io::Error::other(format!("{} belongs to another user", dir.display())));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    dir.canonicalize()
}

/// Copies `source` to a unique private path.
pub(crate) fn stage(source: &Path) -> Result<StagedFile, ReloadError> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let fail = |reason: String| ReloadError::Stage { path: source.to_owned(), reason };
    let dir = staging_dir().map_err(|e| fail(format!("no private folder for copies: {e}")))?;
    let stem = source.file_stem().map_or_else(|| "control".into(), |s| s.to_string_lossy());
    // Relaxed: only uniqueness matters.
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let dest = dir.join(format!("{stem}-{}-{serial}.so", std::process::id()));
    let staged = StagedFile(dest);
    std::fs::copy(source, staged.path()).map_err(|e| fail(e.to_string()))?;
    Ok(staged)
}

/// Whether `path` appears in this process's memory map, under its own name or, once the
/// file was deleted or replaced, as `<path> (deleted)`.
pub fn is_mapped(path: &Path) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return false };
    let needle = path.to_string_lossy();
    maps.lines().any(|line| {
        let line = line.trim_end();
        let line = line.strip_suffix(" (deleted)").unwrap_or(line);
        line.ends_with(needle.as_ref())
    })
}

/// A new control instance, created and loaded, waiting for the swap.
struct Prepared {
    ptr: ControlPtr,
    snapshot: DefinitionsSnapshot,
    state_bytes: usize,
    restart_flags: i32,
}

/// The `RestartFlags` a change of definitions asks the host for.
fn restart_flags(old: &Definitions, new: &Definitions) -> i32 {
    let mut flags = 0;
    if old.params != new.params {
        flags |= RestartFlags_::kParamTitlesChanged | RestartFlags_::kParamValuesChanged;
    }
    if old.cc_map != new.cc_map || old.raw_midi != new.raw_midi {
        flags |= RestartFlags_::kMidiCCAssignmentChanged;
    }
    if old.raw_midi != new.raw_midi {
        // The MIDI controller parameters listed after the plugin's came or went.
        flags |= RestartFlags_::kParamTitlesChanged;
    }
    flags
}

impl ControlHub {
    /// Reloads the control module from `source` now (see the [module](self) docs).
    ///
    /// # Errors
    /// [`ReloadError`] saying what was refused; the old module keeps serving.
    pub fn reload(&self, source: &Path) -> Result<ReloadReport, ReloadError> {
        self.reload_landed(source, Instant::now())
    }

    /// As [`Self::reload`], measuring latency from `landed` (when the new library appeared).
    ///
    /// # Errors
    /// As [`Self::reload`].
    pub fn reload_landed(&self, source: &Path, landed: Instant) -> Result<ReloadReport, ReloadError> {
        let result = self.reload_inner(source, landed);
        let mut history = self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &result {
            Ok(report) => {
                log::info!("reloaded {report}");
                history.reloads += 1;
                history.last = Some(report.clone());
            }
            Err(e) => {
                log::error!("reload of {} failed: {e}", source.display());
                for core in self.live_cores() {
                    Statistics::bump(&core.block().stats.reload_failures);
                }
                history.failures += 1;
                history.last_error = Some(e.clone());
            }
        }
        result
    }

    /// Counts and latest outcomes of this hub's reloads.
    pub fn reload_stats(&self) -> ReloadStats {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn reload_inner(&self, source: &Path, landed: Instant) -> Result<ReloadReport, ReloadError> {
        let _serial = self.lock_reloads();
        let cores = self.live_cores();
        let misses = || -> u64 {
            // Relaxed: telemetry counters.
            cores.iter().map(|c| c.block().stats.deadline_misses.load(Ordering::Relaxed)).sum()
        };
        let misses_before = misses();
        let staged = stage(source)?;
        let new = Arc::new(
            ControlModule::load_staged(staged)
                .map_err(|error| ReloadError::Load { source: source.to_owned(), error })?,
        );
        let engine_area = self.area();
        if new.descriptor().area != engine_area {
            return Err(ReloadError::Area {
                source: source.to_owned(),
                engine: engine_area,
                found: new.descriptor().area,
            });
        }
        new.set_call_timeout(self.call_timeout());
        let old_module = self.current();

        // Hold off every control call of every instance until the swap is done.
        let mut guards: Vec<_> = cores.iter().map(|c| write(&c.control)).collect();
        let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(cores.len());
        for (core, guard) in cores.iter().zip(&guards) {
            let Some(old) = guard.as_ref() else {
                prepared.push(None);
                continue;
            };
            match prepare(core, old, &new) {
                Ok(p) => prepared.push(Some(p)),
                Err(e) => {
                    for ((core, guard), p) in cores.iter().zip(&guards).zip(prepared) {
                        if let (Some(p), Some(old)) = (p, guard.as_ref()) {
                            abort(core, old, &new, p);
                        }
                    }
                    return Err(e);
                }
            }
        }

        // Swap.
        let mut retired = Vec::with_capacity(cores.len());
        let (mut state_bytes, mut changed) = (0, false);
        for ((core, guard), p) in cores.iter().zip(guards.iter_mut()).zip(prepared) {
            let Some(p) = p else { continue };
            if let Err(e) = new.worker.start_ticking(p.ptr.clone(), Arc::clone(&core.tick_feedback)) {
                log::error!("instance {}: the new control module does not tick: {e}", core.instance_id());
            }
            let binding = ControlBinding { module: Arc::clone(&new), ptr: p.ptr };
            if let Some(old) = guard.replace(binding) {
                if old.module.worker.is_hung() {
                    // The hung call may still run on this block: keep it mapped for good
                    // (as dropping an instance of a hung module does).
                    core.keep_mapped_forever();
                }
                retired.push(old);
            }
            core.new_generation(p.restart_flags);
            Statistics::bump(&core.block().stats.reloads);
            state_bytes += p.state_bytes;
            changed |= p.restart_flags != 0;
        }
        drop(guards);
        let landed_to_serving = landed.elapsed();
        let replaced = self.set_current(Arc::clone(&new));
        drop(replaced);

        // Retire the old module: its instances (ticks already stopped), its worker, its library.
        let instances = retired.len();
        for old in retired {
            // A hung module's instances are abandoned with it (its worker runs nothing more).
            if !old.module.worker.is_hung() {
                destroy_control(&old.module, &old.ptr);
            }
        }
        let old_version = old_module.version_label();
        let old_hung = old_module.worker.is_hung();
        let old_path = old_module.path().to_owned();
        let old_unmapped = match Arc::try_unwrap(old_module) {
            Ok(module) => {
                drop(module);
                !is_mapped(&old_path)
            }
            Err(_) => {
                log::warn!("the old control module is still referenced; it unloads when released");
                false
            }
        };
        if !old_unmapped {
            log::warn!("the old control library {} is still mapped", old_path.display());
        }
        if old_hung {
            log::warn!(
                "the old control module was hung: its worker thread and library are abandoned, not unloaded, since \
                 the thread may still be running its code"
            );
        }
        Ok(ReloadReport {
            old_version,
            new_version: new.version_label(),
            source: source.to_owned(),
            instances,
            state_bytes,
            definitions_changed: changed,
            landed_to_serving,
            landed_to_done: landed.elapsed(),
            deadline_misses: misses().saturating_sub(misses_before),
            old_unmapped,
        })
    }
}

/// Moves one instance's state to a new control instance of `new`. On failure, the block is
/// as it was and the old instance ticks again.
fn prepare(core: &Core, old: &ControlBinding, new: &Arc<ControlModule>) -> Result<Prepared, ReloadError> {
    let instance = core.instance_id();
    let fail = |step: &'static str, reason: String| ReloadError::Handover { instance, step, reason };
    // A hung module is not asked anything: the new one starts from the values in the block.
    let hung = old.module.worker.is_hung();
    if !hung {
        old.module.worker.stop_ticking(&old.ptr).map_err(|e| fail("stop the old module's ticks", e.to_string()))?;
    }
    let result = (|| {
        let block = core.block();
        let snapshot = block.params.snapshot();
        // A hung module, or one that never created this instance's control instance,
        // gives the values in the block: the new module starts from them.
        let state = state_of(old, core).map_err(|e| fail("save the old module's state", e.to_string()))?;
        let old_defs = block
            .params
            .read_definitions()
            .ok_or_else(|| fail("read the old module's definitions", "they kept changing".to_owned()))?;
        let ptr = match create_control(new, core.block_addr(), control::CREATE_ADOPT) {
            Ok(ptr) => ptr,
            Err(e) => {
                block.params.restore(&snapshot);
                return Err(fail("create the new module's instance", e.to_string()));
            }
        };
        let binding = ControlBinding { module: Arc::clone(new), ptr: ptr.clone() };
        let undo = |step: &'static str, reason: String| {
            destroy_control(new, &ptr);
            block.params.restore(&snapshot);
            fail(step, reason)
        };
        let state_bytes = state.len();
        if let Err(e) = binding.call("trio_control_load_state", move |fns, inst| load_state_of(fns, inst, &state)) {
            return Err(undo("hand the state to the new module", e.to_string()));
        }
        let Some(new_defs) = block.params.read_definitions() else {
            return Err(undo("read the new module's definitions", "they kept changing".to_owned()));
        };
        Ok(Prepared { ptr, snapshot, state_bytes, restart_flags: restart_flags(&old_defs, &new_defs) })
    })();
    if result.is_err() && new.worker.is_hung() {
        // A call into the new module timed out and may still use this block.
        core.keep_mapped_forever();
    }
    if result.is_err() && !hung {
        restart_ticking(core, old);
    }
    result
}

/// Undoes a [`prepare`] when another instance failed.
fn abort(core: &Core, old: &ControlBinding, new: &Arc<ControlModule>, p: Prepared) {
    destroy_control(new, &p.ptr);
    core.block().params.restore(&p.snapshot);
    if !old.module.worker.is_hung() {
        restart_ticking(core, old);
    }
}

fn restart_ticking(core: &Core, old: &ControlBinding) {
    if let Err(e) = old.module.worker.start_ticking(old.ptr.clone(), Arc::clone(&core.tick_feedback)) {
        log::error!("instance {}: the old control module does not tick again: {e}", core.instance_id());
    }
}

enum Signal {
    Landed(Instant),
    Stop,
}

/// Watches one library file (through its folder: watching the file itself loses events
/// after the first rebuild replaces it) and reloads the control module when it changes.
pub struct Watcher {
    file: PathBuf,
    signals: Sender<Signal>,
    notifier: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `file`'s folder for `file` being created, renamed into place or
    /// closed after writing, and reloading `modules`' control module from it.
    ///
    /// # Errors
    /// A sentence naming the folder when it cannot be watched.
    pub(crate) fn start(modules: Weak<Modules>, file: &Path) -> Result<Self, String> {
        use notify::Watcher as _;
        let (dir, name) = match (file.parent(), file.file_name()) {
            (Some(dir), Some(name)) if dir.is_dir() => (dir.to_owned(), name.to_owned()),
            _ => return Err(format!("cannot watch {}: its folder does not exist", file.display())),
        };
        let (signals, received) = mpsc::channel();
        let events = signals.clone();
        let wanted = name.clone();
        let mut notifier = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && lands(&event, &wanted)
            {
                let _ = events.send(Signal::Landed(Instant::now()));
            }
        })
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        notifier
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let path = file.to_owned();
        let thread = std::thread::Builder::new()
            .name("trio-reload".to_owned())
            .spawn(move || watch_loop(&modules, &path, &received))
            .map_err(|e| format!("cannot start the reload thread: {e}"))?;
        log::info!("hot reload: watching {}", file.display());
        Ok(Self { file: file.to_owned(), signals, notifier: Some(notifier), thread: Some(thread) })
    }

    /// The watched file.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.notifier.take());
        let _ = self.signals.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            // The last reference to the modules may be dropped on the reload thread itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Whether `event` says a new `name` is complete in the watched folder.
fn lands(event: &notify::Event, name: &OsString) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    let kind = matches!(
        event.kind,
        EventKind::Create(_)
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both | RenameMode::Any))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    kind && event.paths.iter().any(|p| p.file_name() == Some(name.as_os_str()))
}

/// The file's identity, to skip events that did not bring a new library.
fn identity(path: &Path) -> Option<(u64, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

fn watch_loop(modules: &Weak<Modules>, file: &Path, signals: &Receiver<Signal>) {
    let mut last = identity(file);
    loop {
        let mut landed = match signals.recv() {
            Ok(Signal::Landed(at)) => at,
            Ok(Signal::Stop) | Err(_) => return,
        };
        // Let the burst of events of one build settle; the latency counts from the last.
        loop {
            match signals.recv_timeout(QUIET) {
                Ok(Signal::Landed(at)) => landed = at,
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        let now = identity(file);
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        let Some(modules) = modules.upgrade() else { return };
        // The outcome is logged and counted by the hub.
        let _ = modules.control.reload_landed(file, landed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_unrelated_events_does_not_count() {
        let mut event = notify::Event::new(notify::EventKind::Create(notify::event::CreateKind::File));
        event.paths.push(PathBuf::from("/x/libcontrol.so"));
        assert!(lands(&event, &OsString::from("libcontrol.so")));
        assert!(!lands(&event, &OsString::from("libother.so")));
        let mut data = notify::Event::new(notify::EventKind::Modify(notify::event::ModifyKind::Data(
            notify::event::DataChange::Content,
        )));
        data.paths.push(PathBuf::from("/x/libcontrol.so"));
        assert!(!lands(&data, &OsString::from("libcontrol.so")), "a write in progress is not a landing");
    }

    #[test]
    fn restart_flags_follow_what_changed() {
        let defs = |unit: &str, cc: Option<u32>| {
            let param = trio::params::ParamDef::float(1, "x", "X", trio::params::ParamMapping::linear(0.0, 1.0), 0.5)
                .unit(unit)
                .info;
            let mut cc_map = [None; trio::block::MIDI_CONTROLLERS];
            cc_map[7] = cc;
            Definitions::new(vec![param], vec![0], cc_map, [false; trio::block::MIDI_CONTROLLERS])
        };
        assert_eq!(restart_flags(&defs("Hz", None), &defs("Hz", None)), 0);
        assert_eq!(
            restart_flags(&defs("Hz", None), &defs("Hertz", None)),
            RestartFlags_::kParamTitlesChanged | RestartFlags_::kParamValuesChanged
        );
        assert_eq!(restart_flags(&defs("Hz", None), &defs("Hz", Some(3))), RestartFlags_::kMidiCCAssignmentChanged);
    }
}
