//! The bridge: the library the host loads, the same for every plugin.
//!
//! It loads the plugin's real-time engine and control module from its own folder, checks
//! them (descriptor, ABI version, layout hash, plugin area, exports), creates each
//! instance's shared block in OS shared memory, owns the control worker thread that runs
//! every call into the control module, and reloads the control module while audio plays.
//! Nothing in it knows any plugin: what differs per plugin (identity, buses) is compiled
//! in from `build.yaml` by the build tool, which generates a small library per plugin
//! whose only code is [`export_vst3!`] with the plugin's [`PluginConfig`]. What the
//! plugin does comes from its modules (parameters, latency, tail).
//!
//! The same code is a plain Rust API ([`Modules`], [`Instance`]), which the tests and the
//! test host drive. The audio path ([`Instance::process_raw`]) runs inside
//! `assert_no_alloc`: this library's global allocator is `assert_no_alloc`'s, active in
//! release builds too.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod config;
mod elf;
mod error;
mod instance;
mod latest;
mod modules;
pub mod reload;
pub mod vst3;
mod worker;

use std::path::PathBuf;

pub use config::{Layout, PluginConfig, PluginKind};
pub use error::{ControlError, InstanceError, LoadError};
pub use instance::{Buses, Instance, MAX_CHANNELS, ProcessSetup};
pub use modules::{CONTROL_FILE, ControlHub, ControlModule, ENGINE_FILE, EngineModule, ModulePaths, Modules};
pub use reload::{ReloadError, ReloadReport, ReloadStats};
pub use worker::{DEFAULT_CALL_TIMEOUT, IDLE_TICK_INTERVAL};

/// Exports the three VST3 entry points (`ModuleEntry`, `ModuleExit`, `GetPluginFactory`)
/// of a plugin's bridge library, serving `$config` (a [`PluginConfig`] expression that can
/// be a `static`). The build tool generates the one crate that calls it, per plugin;
/// plugin developers never write it.
#[macro_export]
macro_rules! export_vst3 {
    ($config:expr) => {
        static TRIO_PLUGIN_CONFIG: $crate::PluginConfig = $config;

        /// Linux entry point; optional for hosts. No panic leaves it (`false` instead).
        ///
        /// # Safety
        /// Called by the host with its library handle (unused).
        #[unsafe(no_mangle)]
        pub unsafe extern "system" fn ModuleEntry(library_handle: *mut ::core::ffi::c_void) -> bool {
            let handle = ::std::panic::AssertUnwindSafe(library_handle);
            ::std::panic::catch_unwind(move || $crate::vst3::module_entry(&TRIO_PLUGIN_CONFIG, { handle }.0))
                .unwrap_or(false)
        }

        /// Linux exit point: releases the modules if no instance uses them any more. No
        /// panic leaves it (`false` instead).
        #[unsafe(no_mangle)]
        pub extern "system" fn ModuleExit() -> bool {
            ::std::panic::catch_unwind($crate::vst3::module_exit).unwrap_or(false)
        }

        /// Returns a new reference to the plugin factory (null, never a panic, on failure).
        #[unsafe(no_mangle)]
        pub extern "system" fn GetPluginFactory() -> *mut $crate::__vst3::Steinberg::IPluginFactory {
            ::std::panic::catch_unwind(|| $crate::vst3::get_plugin_factory(&TRIO_PLUGIN_CONFIG))
                .unwrap_or(::core::ptr::null_mut())
        }
    };
}

/// The `vst3` crate, for [`export_vst3!`].
#[doc(hidden)]
pub use ::vst3 as __vst3;

#[global_allocator]
static ALLOCATOR: trio::realtime::RealtimeAllocator = trio::realtime::RealtimeAllocator;

/// Keeps the bridge's own library mapped until the process exits, whatever the host
/// unloads: a control worker left running (a call into the module outlived its time limit)
/// returns into the bridge's code when that call ends. Idempotent; `false` if the loader
/// refused (then a host that unloads the bridge while such a call runs may crash).
pub(crate) fn pin_own_library() -> bool {
    static PINNED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PINNED.get_or_init(|| {
        let Some(path) = own_library_path() else { return false };
        if std::env::current_exe().is_ok_and(|exe| exe == path) {
            // Linked into the program itself, which is never unloaded.
            return true;
        }
        use std::os::unix::ffi::OsStrExt;
        let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
        // SAFETY: a NUL-terminated path of an object already loaded (RTLD_NOLOAD loads
        // nothing new); RTLD_NODELETE marks it never to be unmapped. The handle is kept
        // for the process's life on purpose.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE) };
        if handle.is_null() {
            log::warn!("could not keep the bridge library loaded for a stuck control worker");
        }
        !handle.is_null()
    })
}

/// The path of the file this code was loaded from (the bridge's `.so` inside a bundle, or
/// the executable when linked statically), found with `dladdr`.
pub fn own_library_path() -> Option<PathBuf> {
    let mut info = core::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let addr = own_library_path as *const () as *const core::ffi::c_void;
    // SAFETY: `dladdr` only reads the address and fills `info`, a valid local.
    let found = unsafe { libc::dladdr(addr, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: `dladdr` returned nonzero, so it initialised `info`.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dli_fname` is a NUL-terminated string owned by the loader, valid while the
    // object stays loaded (it is this object).
    let name = unsafe { core::ffi::CStr::from_ptr(info.dli_fname) };
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes())))
}
