//! Test-only fault injection (cargo feature `fault-injection` of this crate), so tests can
//! prove the bridge survives a control module that panics, hangs or is slow. Never in a
//! shipped bundle: the build tool refuses a control library that exports
//! `trio_control_fault_inject`, which it does not list.
//!
//! Tests arm a fault with that extra export, `trio_control_fault_inject(point, action)`;
//! the next call that reaches `point` performs `action` once.
//!
//! A hot reload loads a private copy of the library, which a test cannot reach with that
//! export. So a library whose file name contains `fault-<point>-<action>` (for example
//! `libcontrol-fault-load_state-hang.so`, or a reload's copy of it, which keeps the name)
//! also performs that fault once, the first time a call reaches the point. Points:
//! `create`, `load_state`, `save_state`, `tick`, `format`; actions: `panic`, `hang`,
//! `slow` (sleeps [`SLOW_MS`], then carries on). The engine's `process` has its own
//! export, `trio_engine_fault_inject(action)`.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Fault point: `create`.
pub const CREATE: u32 = 1;
/// Fault point: `load_state`.
pub const LOAD_STATE: u32 = 2;
/// Fault point: `save_state`.
pub const SAVE_STATE: u32 = 3;
/// Fault point: `tick`.
pub const TICK: u32 = 4;
/// Fault point: `format_value`.
pub const FORMAT: u32 = 5;

/// Fault point: the engine's `process` (armed with [`trio_engine_fault_inject`]).
pub const PROCESS: u32 = 6;

/// Action: panic.
pub const PANIC: u32 = 1;
/// Action: never return (sleep forever).
pub const HANG: u32 = 2;
/// Action: sleep [`SLOW_MS`], then return normally.
pub const SLOW: u32 = 3;

/// How long the `slow` action sleeps, milliseconds.
pub const SLOW_MS: u64 = 1500;

static ARMED_POINT: AtomicU32 = AtomicU32::new(0);
static ARMED_ACTION: AtomicU32 = AtomicU32::new(0);
static NAME_FAULT_DONE: AtomicBool = AtomicBool::new(false);

/// Arms `action` at `point` for the next call that reaches it.
#[unsafe(no_mangle)]
pub extern "C" fn trio_control_fault_inject(point: u32, action: u32) {
    // No panic may leave an export (nothing here panics; the guard keeps it so).
    let _ = std::panic::catch_unwind(|| arm(point, action));
}

/// Arms `action` at the engine's `process` for the next block (the engine library's
/// copy of this crate: look the symbol up in the engine library).
#[unsafe(no_mangle)]
pub extern "C" fn trio_engine_fault_inject(action: u32) {
    // No panic may leave an export (nothing here panics; the guard keeps it so).
    let _ = std::panic::catch_unwind(|| arm(PROCESS, action));
}

fn arm(point: u32, action: u32) {
    // SeqCst: simplest correct choice for a test-only hook; arming happens before the call.
    ARMED_ACTION.store(action, Ordering::SeqCst);
    ARMED_POINT.store(point, Ordering::SeqCst);
}

/// Performs the armed action if `here` is the armed point.
pub(crate) fn point(here: u32) {
    // SeqCst: simplest correct choice for a test-only hook that is not on any hot path.
    if ARMED_POINT.compare_exchange(here, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        perform(here, ARMED_ACTION.swap(0, Ordering::SeqCst));
    }
    // The engine's point is armed by its export only: reading the file name allocates
    // and reads a file, which the audio thread must not.
    if here != PROCESS
        && let Some((point, action)) = armed_by_name()
        && point == here
        && !NAME_FAULT_DONE.swap(true, Ordering::SeqCst)
    {
        perform(here, action);
    }
}

fn perform(here: u32, action: u32) {
    match action {
        PANIC => panic!("fault injected at point {here}"),
        HANG => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        SLOW => std::thread::sleep(std::time::Duration::from_millis(SLOW_MS)),
        _ => {}
    }
}

/// The fault this library's file name arms, if any (read once).
fn armed_by_name() -> Option<(u32, u32)> {
    static ARMED: std::sync::OnceLock<Option<(u32, u32)>> = std::sync::OnceLock::new();
    *ARMED.get_or_init(|| parse_name(&own_file_name()?))
}

/// `fault-<point>-<action>` in a file name.
fn parse_name(name: &str) -> Option<(u32, u32)> {
    let rest = &name[name.find("fault-")? + "fault-".len()..];
    let point = [
        ("create", CREATE),
        ("load_state", LOAD_STATE),
        ("save_state", SAVE_STATE),
        ("tick", TICK),
        ("format", FORMAT),
    ]
    .into_iter()
    .find(|(n, _)| rest.starts_with(n))?;
    let rest = rest[point.0.len()..].strip_prefix('-')?;
    let action = [("panic", PANIC), ("hang", HANG), ("slow", SLOW)].into_iter().find(|(n, _)| rest.starts_with(n))?;
    Some((point.1, action.1))
}

/// The file this code was mapped from, found in `/proc/self/maps`.
fn own_file_name() -> Option<String> {
    let here = armed_by_name as *const () as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let (range, rest) = line.split_once(' ')?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
        let path = rest.split_whitespace().nth(4)?;
        (lo <= here && here < hi).then(|| path.rsplit('/').next().unwrap_or(path).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_arm_faults() {
        assert_eq!(parse_name("libcontrol-fault-create-panic.so"), Some((CREATE, PANIC)));
        assert_eq!(parse_name("libcontrol-fault-load_state-hang-123-4.so"), Some((LOAD_STATE, HANG)));
        assert_eq!(parse_name("libcontrol-fault-tick-slow.so"), Some((TICK, SLOW)));
        assert_eq!(parse_name("libcontrol.so"), None);
        assert_eq!(parse_name("libcontrol-fault-create-explode.so"), None);
    }
}
