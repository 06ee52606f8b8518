//! The control module's C ABI. Each function checks its pointers, catches panics and
//! returns a status code (`shared::abi::status`). They are called only from the bridge's
//! control worker, one call at a time per module.
#![allow(clippy::missing_safety_doc)] // Each function's `# Safety` is the common contract below.

//! Common safety contract of every export: `instance` is null or came from
//! `control_create` and has not been destroyed; pointer arguments are null or valid for
//! the sizes given; no other call on the same instance runs concurrently.

use core::ffi::c_void;

use shared::abi::{self, ModuleDescriptor, ParamInfo, WriteFn, alloc_policy, module_kind, status};
use shared::block::SharedBlock;

use crate::instance::ControlInstance;

/// The control module's descriptor: ABI version, layout hash, "allocation allowed", and
/// the version with a build id (`0.1.0+1a2b3c4d`, see `build.rs`) that tells builds apart.
#[unsafe(no_mangle)]
pub static trio_module_descriptor: ModuleDescriptor =
    ModuleDescriptor::new(module_kind::CONTROL, alloc_policy::ALLOW, "control", env!("TRIO_CONTROL_VERSION"));

// The version with its build id must fit the descriptor's field with its NUL.
const _: () = assert!(env!("TRIO_CONTROL_VERSION").len() < 32);

/// Runs `f` on the instance behind `ptr`, catching panics.
fn with_instance(ptr: *mut c_void, f: impl FnOnce(&mut ControlInstance) -> i32) -> i32 {
    abi::catch_status(|| {
        // SAFETY: the common contract: null or a live instance with no concurrent call.
        match unsafe { ptr.cast::<ControlInstance>().as_mut() } {
            Some(instance) => f(instance),
            None => status::NULL_POINTER,
        }
    })
}

/// Creates an instance bound to `block`. `mode` is `CREATE_FRESH` (write defaults) or
/// `CREATE_ADOPT` (keep the block's values: a reload).
///
/// # Safety
/// `block` points to an initialised block that outlives the instance; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_create(block: *const SharedBlock, mode: u32, out: *mut *mut c_void) -> i32 {
    abi::catch_status(|| {
        if block.is_null() || out.is_null() {
            return status::NULL_POINTER;
        }
        #[cfg(feature = "fault-injection")]
        crate::fault::point(crate::fault::CREATE);
        // SAFETY: non-null; the caller guarantees a live block that outlives the instance.
        let block: &'static SharedBlock = unsafe { &*block };
        if block.check_header().is_err() {
            return status::ABI_MISMATCH;
        }
        let fresh = match mode {
            abi::control::CREATE_FRESH => true,
            abi::control::CREATE_ADOPT => false,
            _ => return status::INVALID_ARGUMENT,
        };
        match ControlInstance::new(block, fresh) {
            Ok(instance) => {
                // SAFETY: `out` is non-null and writable (caller's guarantee).
                unsafe { out.write(Box::into_raw(Box::new(instance)).cast()) };
                status::OK
            }
            Err(_) => status::REJECTED,
        }
    })
}

/// Destroys an instance. Null is ignored.
///
/// # Safety
/// `instance` came from `control_create` and is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_destroy(instance: *mut c_void) {
    let _ = abi::catch_status(|| {
        if !instance.is_null() {
            // SAFETY: made by `Box::into_raw` in `control_create`, destroyed once.
            drop(unsafe { Box::from_raw(instance.cast::<ControlInstance>()) });
        }
        status::OK
    });
}

/// Number of parameters (0 for a null instance or a panic).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_param_count(instance: *mut c_void) -> u32 {
    let mut count = 0;
    let _ = with_instance(instance, |i| {
        count = i.param_count();
        status::OK
    });
    count
}

/// Describes parameter number `index` (0-based position, which is also its id).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_param_info(instance: *mut c_void, index: u32, out: *mut ParamInfo) -> i32 {
    with_instance(instance, |i| {
        #[cfg(feature = "fault-injection")]
        crate::fault::point(crate::fault::PARAM_INFO);
        if out.is_null() {
            return status::NULL_POINTER;
        }
        match i.param_info(index) {
            Ok(info) => {
                // SAFETY: `out` is non-null and writable (common contract).
                unsafe { out.write(info) };
                status::OK
            }
            Err(code) => code,
        }
    })
}

/// Formats a normalized value of parameter `id` for display ("440 Hz").
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_format_value(
    instance: *mut c_void,
    id: u32,
    normalized: f64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    with_instance(instance, |i| match i.format_value(id, normalized) {
        // SAFETY: `buf`/`out_len` follow the common contract.
        Ok(text) => unsafe { abi::write_text(&text, buf, cap, out_len) },
        Err(code) => code,
    })
}

/// Parses display text for parameter `id` into a normalized value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_parse_value(
    instance: *mut c_void,
    id: u32,
    text: *const u8,
    len: usize,
    out: *mut f64,
) -> i32 {
    with_instance(instance, |i| {
        if (text.is_null() && len > 0) || out.is_null() {
            return status::NULL_POINTER;
        }
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: non-null and valid for `len` bytes (common contract).
            unsafe { core::slice::from_raw_parts(text, len) }
        };
        let Ok(text) = core::str::from_utf8(bytes) else {
            return i.fail(status::REJECTED, "the text is not valid UTF-8".to_owned());
        };
        match i.parse_value(id, text) {
            Ok(v) => {
                // SAFETY: non-null and writable (common contract).
                unsafe { out.write(v) };
                status::OK
            }
            Err(code) => code,
        }
    })
}

/// Writes the state (versioned JSON) through `write`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_save_state(instance: *mut c_void, write: Option<WriteFn>, ctx: *mut c_void) -> i32 {
    with_instance(instance, |i| {
        #[cfg(feature = "fault-injection")]
        crate::fault::point(crate::fault::SAVE_STATE);
        let Some(write) = write else {
            return status::NULL_POINTER;
        };
        let json = i.save_state();
        // SAFETY: `write` is the caller's callback, valid with its own `ctx`; the bytes
        // are valid for the duration of the call.
        unsafe { write(ctx, json.as_ptr(), json.len()) };
        status::OK
    })
}

/// Loads a state: all or nothing (`REJECTED` changes nothing).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_load_state(instance: *mut c_void, data: *const u8, len: usize) -> i32 {
    with_instance(instance, |i| {
        #[cfg(feature = "fault-injection")]
        crate::fault::point(crate::fault::LOAD_STATE);
        if data.is_null() && len > 0 {
            return status::NULL_POINTER;
        }
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: non-null and valid for `len` bytes (common contract).
            unsafe { core::slice::from_raw_parts(data, len) }
        };
        i.load_state(bytes)
    })
}

/// Number of factory presets.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_preset_count(instance: *mut c_void) -> u32 {
    let mut count = 0;
    let _ = with_instance(instance, |i| {
        count = i.preset_count();
        status::OK
    });
    count
}

/// Name of factory preset `index`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_preset_name(
    instance: *mut c_void,
    index: u32,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    with_instance(instance, |i| match i.preset_name(index) {
        // SAFETY: `buf`/`out_len` follow the common contract.
        Ok(name) => unsafe { abi::write_text(&name, buf, cap, out_len) },
        Err(code) => code,
    })
}

/// Loads factory preset `index` into the block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_load_preset(instance: *mut c_void, index: u32) -> i32 {
    with_instance(instance, |i| i.load_preset(index))
}

/// The parameter MIDI CC `cc` controls (`NOT_FOUND` if none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_midi_cc_param(instance: *mut c_void, cc: u32, out: *mut u32) -> i32 {
    with_instance(instance, |i| {
        if out.is_null() {
            return status::NULL_POINTER;
        }
        match i.midi_cc_param(cc) {
            Some(id) => {
                // SAFETY: non-null and writable (common contract).
                unsafe { out.write(id) };
                status::OK
            }
            None => status::NOT_FOUND,
        }
    })
}

/// Control-rate work, called periodically by the bridge's worker.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_tick(instance: *mut c_void) -> i32 {
    with_instance(instance, |i| i.tick())
}

/// The message of the last failed call on `instance`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn control_last_error(
    instance: *mut c_void,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: `buf`/`out_len` follow the common contract.
    with_instance(instance, |i| unsafe { abi::write_text(i.last_error(), buf, cap, out_len) })
}

/// Joins any thread the module started. This module starts none.
#[unsafe(no_mangle)]
pub extern "C" fn control_module_shutdown() -> i32 {
    status::OK
}
