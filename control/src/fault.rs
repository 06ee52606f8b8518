//! Test-only fault injection (cargo feature `fault-injection`), so tests can prove the
//! bridge survives a control module that panics or hangs. Never in a shipped bundle.
//!
//! Tests arm a fault with the extra export `control_fault_inject(point, action)`; the
//! next call that reaches `point` performs `action` once.

use core::sync::atomic::{AtomicU32, Ordering};

/// Fault point: `control_create`.
pub const CREATE: u32 = 1;
/// Fault point: `control_load_state`.
pub const LOAD_STATE: u32 = 2;
/// Fault point: `control_save_state`.
pub const SAVE_STATE: u32 = 3;
/// Fault point: `control_param_info`.
pub const PARAM_INFO: u32 = 4;

/// Action: panic.
pub const PANIC: u32 = 1;
/// Action: never return (sleep forever).
pub const HANG: u32 = 2;

static ARMED_POINT: AtomicU32 = AtomicU32::new(0);
static ARMED_ACTION: AtomicU32 = AtomicU32::new(0);

/// Arms `action` at `point` for the next call that reaches it.
#[unsafe(no_mangle)]
pub extern "C" fn control_fault_inject(point: u32, action: u32) {
    // SeqCst: simplest correct choice for a test-only hook; arming happens before the call.
    ARMED_ACTION.store(action, Ordering::SeqCst);
    ARMED_POINT.store(point, Ordering::SeqCst);
}

/// Performs the armed action if `here` is the armed point.
pub(crate) fn point(here: u32) {
    // SeqCst: simplest correct choice for a test-only hook that is not on any hot path.
    if ARMED_POINT.compare_exchange(here, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        match ARMED_ACTION.swap(0, Ordering::SeqCst) {
            PANIC => panic!("fault injected at point {here}"),
            HANG => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            _ => {}
        }
    }
}
