//! The bridge: the library the host loads.
//!
//! It loads the real-time engine and the control module from its own folder, checks them
//! (descriptor, ABI version, layout hash, exports), creates each instance's shared block
//! in OS shared memory, and owns the control worker thread that runs every call into the
//! control module. This crate is also an `rlib` offering the same as a plain Rust API
//! ([`Modules`], [`Instance`]), which the tests and the test host drive.
//!
//! The audio path ([`Instance::process_raw`]) runs inside `assert_no_alloc`: this
//! library's global allocator is `assert_no_alloc`'s, active in release builds too.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod elf;
mod error;
mod instance;
mod modules;
pub mod reload;
pub mod vst3;
mod worker;

use std::path::PathBuf;

pub use error::{ControlError, InstanceError, LoadError};
pub use instance::{Instance, MAX_CHANNELS, ProcessSetup};
pub use modules::{CONTROL_FILE, ControlHub, ControlModule, ENGINE_FILE, EngineModule, ModulePaths, Modules};
pub use reload::{ReloadError, ReloadReport, ReloadStats};
pub use worker::{DEFAULT_CALL_TIMEOUT, TICK_INTERVAL};

#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

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
