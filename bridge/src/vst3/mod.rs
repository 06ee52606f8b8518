//! The VST3 surface: entry points, factory, and the plugin object.
//!
//! The entry points (`ModuleEntry`, `ModuleExit`, `GetPluginFactory`) are generated in the
//! plugin's bridge library by [`crate::export_vst3!`] and call the functions here with the
//! plugin's compiled-in [`PluginConfig`]. Initialisation is lazy and thread-safe: the
//! first `createInstance` loads and checks the two modules from the bridge's own folder.
//! Any failure is logged with its reason and makes `createInstance` refuse, never crash.

mod factory;
mod plugin;
mod run_loop;
mod util;

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use vst3::ComWrapper;
use vst3::Steinberg::IPluginFactory;

use crate::{ModulePaths, Modules, PluginConfig};

pub use plugin::TrioPlugin;

/// The configuration this library was built with, set by the first entry-point call.
static CONFIG: OnceLock<&'static PluginConfig> = OnceLock::new();

/// Where the modules are, or why that is unknown (found once).
static PATHS: OnceLock<Result<ModulePaths, String>> = OnceLock::new();

/// The loaded modules, shared by every instance. Loaded by the first `createInstance`,
/// released by `ModuleExit` (instances still alive keep them until they are destroyed).
static MODULES: Mutex<Option<Arc<Modules>>> = Mutex::new(None);

fn init(config: &'static PluginConfig) -> &'static PluginConfig {
    CONFIG.get_or_init(|| {
        install_logger();
        config
    })
}

fn paths() -> Result<ModulePaths, String> {
    PATHS
        .get_or_init(|| {
            crate::own_library_path()
                .and_then(|p| p.parent().map(ModulePaths::in_dir))
                .ok_or_else(|| "could not determine the bridge's own folder (dladdr failed)".to_owned())
        })
        .clone()
}

/// The modules, loading them on first use.
fn modules(config: &'static PluginConfig) -> Result<Arc<Modules>, String> {
    let mut slot = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(modules) = slot.as_ref() {
        return Ok(Arc::clone(modules));
    }
    let paths = paths()?;
    match Modules::load(&paths, config.watch.map(std::path::Path::new)) {
        Ok(modules) => {
            if let Some(timeout) = call_timeout_from_env() {
                modules.control.set_call_timeout(timeout);
            }
            *slot = Some(Arc::clone(&modules));
            Ok(modules)
        }
        Err(e) => {
            log::error!("{}: {e}", config.name);
            Err(e.to_string())
        }
    }
}

/// `TRIO_CALL_TIMEOUT_MS`: how long a call into the control module may take before the
/// module is treated as hung (default [`crate::DEFAULT_CALL_TIMEOUT`]); for debugging a
/// slow control module, and for tests. A value that is not a whole number of milliseconds
/// in 50..=600000 is refused with a warning naming it.
fn call_timeout_from_env() -> Option<std::time::Duration> {
    const VAR: &str = "TRIO_CALL_TIMEOUT_MS";
    let raw = std::env::var_os(VAR)?;
    match raw.to_str().and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(ms @ 50..=600_000) => Some(std::time::Duration::from_millis(ms)),
        _ => {
            log::warn!(
                "{VAR}={raw:?} is not a whole number of milliseconds in 50..=600000; calls into the control module keep \
                 the default limit of {:?}",
                crate::DEFAULT_CALL_TIMEOUT
            );
            None
        }
    }
}

/// Log lines go to standard error with the plugin's prefix; hosts show or keep them.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[trio {}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

fn install_logger() {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        let level = match std::env::var("TRIO_LOG").as_deref() {
            Ok("debug") => log::LevelFilter::Debug,
            Ok("trace") => log::LevelFilter::Trace,
            Ok("off") => log::LevelFilter::Off,
            _ => log::LevelFilter::Info,
        };
        log::set_max_level(level);
    }
}

/// The bundle's own folder of binaries, for diagnostics.
pub fn bundle_binary_dir() -> Option<PathBuf> {
    crate::own_library_path()?.parent().map(PathBuf::from)
}

// The three entry points' bodies. The exports `export_vst3!` generates in the plugin's
// bridge crate call them inside `catch_unwind`: no panic crosses into the host.

/// `ModuleEntry`: optional for hosts (initialisation is lazy anyway).
pub fn module_entry(config: &'static PluginConfig, _library_handle: *mut c_void) -> bool {
    init(config);
    true
}

/// `ModuleExit`: releases the modules if no instance uses them any more.
pub fn module_exit() -> bool {
    let taken = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    drop(taken);
    true
}

/// `GetPluginFactory`: a new reference to the plugin factory.
pub fn get_plugin_factory(config: &'static PluginConfig) -> *mut IPluginFactory {
    let config = init(config);
    ComWrapper::new(factory::Factory { config })
        .to_com_ptr::<IPluginFactory>()
        .map_or(std::ptr::null_mut(), |p| p.into_raw())
}
