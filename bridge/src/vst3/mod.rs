//! The VST3 surface: entry points, factory, and the plugin object.
//!
//! Initialisation is lazy and thread-safe: the first `GetPluginFactory` (or
//! `ModuleEntry`, which some hosts never call) locates the bundle and reads its
//! `moduleinfo.json`; the first `createInstance` loads and checks the two modules. Any
//! failure is logged with its reason and makes `createInstance` refuse, never crash.

mod factory;
pub mod info;
mod plugin;
mod util;

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use vst3::ComWrapper;
use vst3::Steinberg::IPluginFactory;

use crate::{ModulePaths, Modules};

pub use plugin::TrioPlugin;

/// What the bridge found out about its bundle, once.
struct Bundle {
    /// Class info from `moduleinfo.json`, or why it is unavailable.
    info: Result<info::PluginInfo, String>,
    /// Where the modules are, or why that is unknown.
    paths: Result<ModulePaths, String>,
}

static BUNDLE: OnceLock<Bundle> = OnceLock::new();

/// The loaded modules, shared by every instance. Loaded by the first `createInstance`,
/// released by `ModuleExit` (instances still alive keep them until they are destroyed).
static MODULES: Mutex<Option<Arc<Modules>>> = Mutex::new(None);

fn bundle() -> &'static Bundle {
    BUNDLE.get_or_init(|| {
        install_logger();
        let own = crate::own_library_path();
        let info = own
            .as_deref()
            .and_then(info::moduleinfo_path)
            .ok_or_else(|| "could not determine the bridge's own file (dladdr failed)".to_owned())
            .and_then(|path| info::load(&path));
        if let Err(e) = &info {
            log::error!("the plugin cannot describe itself: {e}");
        }
        let paths = own
            .as_deref()
            .and_then(|p| p.parent())
            .map(ModulePaths::in_dir)
            .ok_or_else(|| "could not determine the bridge's own folder".to_owned());
        Bundle { info, paths }
    })
}

/// The modules, loading them on first use.
fn modules() -> Result<Arc<Modules>, String> {
    let mut slot = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(modules) = slot.as_ref() {
        return Ok(Arc::clone(modules));
    }
    let paths = bundle().paths.clone()?;
    match Modules::load(&paths) {
        Ok(modules) => {
            *slot = Some(Arc::clone(&modules));
            Ok(modules)
        }
        Err(e) => {
            log::error!("{e}");
            Err(e.to_string())
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

/// Linux entry point; optional for hosts (initialisation is lazy anyway).
///
/// # Safety
/// Called by the host with its library handle (unused).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ModuleEntry(_library_handle: *mut c_void) -> bool {
    util::guard_value(false, || {
        let _ = bundle();
        true
    })
}

/// Linux exit point: releases the modules if no instance uses them any more.
#[unsafe(no_mangle)]
pub extern "system" fn ModuleExit() -> bool {
    util::guard_value(false, || {
        let taken = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        drop(taken);
        true
    })
}

/// Returns a new reference to the plugin factory.
#[unsafe(no_mangle)]
pub extern "system" fn GetPluginFactory() -> *mut IPluginFactory {
    util::guard_value(std::ptr::null_mut(), || {
        let _ = bundle();
        ComWrapper::new(factory::Factory).to_com_ptr::<IPluginFactory>().map_or(std::ptr::null_mut(), |p| p.into_raw())
    })
}
