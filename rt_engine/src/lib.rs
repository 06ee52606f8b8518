//! The real-time engine of the example instrument.
//!
//! A `cdylib` loaded by the bridge. It renders audio from the parameters and events in the
//! shared block and never allocates while processing: its global allocator is
//! `assert_no_alloc`'s, active in release builds too, and [`rt_process`] runs inside
//! `assert_no_alloc` with flush-to-zero set. An allocation there is counted in the block's
//! `stats.alloc_violations` (warn mode: the host keeps running; tests and the bridge treat
//! any nonzero count as a failure). The engine calls nothing outside itself and `shared`.
//!
//! Exports (see `shared::abi::engine`): `trio_module_descriptor`, `rt_create`,
//! `rt_destroy`, `rt_activate`, `rt_reset`, `rt_process`. Each catches panics; a panic in
//! `rt_process` marks the engine faulted (silence, `stats.engine_faulted`) until
//! `rt_reset`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod dsp;
mod engine;

use core::ffi::c_void;

use assert_no_alloc::AllocDisabler;
use shared::abi::{ModuleDescriptor, ProcessData, alloc_policy, module_kind, status};
use shared::block::SharedBlock;

use crate::engine::Engine;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

/// The engine's descriptor: ABI version, layout hash, and "allocation forbidden".
#[unsafe(no_mangle)]
pub static trio_module_descriptor: ModuleDescriptor =
    ModuleDescriptor::new(module_kind::ENGINE, alloc_policy::FORBID, "rt_engine", env!("CARGO_PKG_VERSION"));

/// Creates an engine bound to `block` and writes it to `out`.
///
/// # Safety
/// `block` points to an initialised shared block that outlives the engine; `out` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rt_create(block: *const SharedBlock, out: *mut *mut c_void) -> i32 {
    shared::abi::catch_status(|| {
        if block.is_null() || out.is_null() {
            return status::NULL_POINTER;
        }
        // SAFETY: non-null, and the caller guarantees it points to a live block that
        // outlives the engine.
        let block: &'static SharedBlock = unsafe { &*block };
        if block.check_header().is_err() {
            return status::ABI_MISMATCH;
        }
        let engine = Box::new(Engine::new(block));
        // SAFETY: `out` is non-null and valid for a write (caller's guarantee).
        unsafe { out.write(Box::into_raw(engine).cast()) };
        status::OK
    })
}

/// Destroys an engine made by [`rt_create`]. Null is ignored.
///
/// # Safety
/// `engine` came from `rt_create` and is not used afterwards, and no other call on it is
/// running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rt_destroy(engine: *mut c_void) {
    let _ = shared::abi::catch_status(|| {
        if !engine.is_null() {
            // SAFETY: the pointer came from `Box::into_raw` in `rt_create` and is
            // destroyed once (caller's guarantee).
            drop(unsafe { Box::from_raw(engine.cast::<Engine>()) });
        }
        status::OK
    });
}

/// Prepares for `sample_rate` and blocks of up to `max_block` samples. Allocates; never
/// call it while `rt_process` may run.
///
/// # Safety
/// `engine` came from `rt_create` and no other call on it is running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rt_activate(engine: *mut c_void, sample_rate: f64, max_block: u32) -> i32 {
    shared::abi::catch_status(|| {
        // SAFETY: caller's guarantee: a live engine with no concurrent call.
        let Some(engine) = (unsafe { engine.cast::<Engine>().as_mut() }) else {
            return status::NULL_POINTER;
        };
        engine.activate(sample_rate, max_block)
    })
}

/// Silences every voice and clears a fault.
///
/// # Safety
/// `engine` came from `rt_create` and no other call on it is running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rt_reset(engine: *mut c_void) -> i32 {
    shared::abi::catch_status(|| {
        // SAFETY: caller's guarantee: a live engine with no concurrent call.
        let Some(engine) = (unsafe { engine.cast::<Engine>().as_mut() }) else {
            return status::NULL_POINTER;
        };
        engine.reset();
        status::OK
    })
}

/// Renders one block. Never allocates, locks or blocks. This is the one place the
/// engine's audio path is wrapped: flush-to-zero, the allocation check, panic capture.
///
/// # Safety
/// `engine` came from `rt_create` and no other call on it is running; `data` points to a
/// `ProcessData` whose channel pointers are valid for `num_samples` samples and whose
/// event pointer is valid for `num_events` events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rt_process(engine: *mut c_void, data: *mut ProcessData) -> i32 {
    if engine.is_null() || data.is_null() {
        return status::NULL_POINTER;
    }
    let _ftz = shared::realtime::DenormalGuard::new();
    let engine_ptr = engine.cast::<Engine>();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let violations_before = assert_no_alloc::violation_count();
        // SAFETY: caller's guarantee: a live engine with no concurrent call, and a valid
        // `ProcessData` (both non-null, checked above).
        let (engine, data) = unsafe { (&mut *engine_ptr, &mut *data) };
        let code = assert_no_alloc::assert_no_alloc(|| engine.process(data));
        let violations = assert_no_alloc::violation_count().wrapping_sub(violations_before);
        engine.record_violations(violations);
        code
    }));
    match result {
        Ok(code) => code,
        Err(_) => {
            // SAFETY: same pointers as above; the panicking borrow has ended.
            let (engine, data) = unsafe { (&mut *engine_ptr, &mut *data) };
            engine.fault(data);
            status::PANIC
        }
    }
}
