//! Small helpers for the VST3 surface: strings, streams, panic capture.

use std::ffi::c_char;

use vst3::ComRef;
use vst3::Steinberg::Vst::TChar;
use vst3::Steinberg::{IBStream, IBStreamTrait, kInternalError, kResultOk, tresult};

/// Runs a COM method body, turning a panic into `kInternalError`. Every COM method of the
/// bridge goes through this: a panic must never unwind into the host.
pub(crate) fn guard(f: impl FnOnce() -> tresult) -> tresult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(kInternalError)
}

/// Like [`guard`] for methods that return a value instead of a status.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Copies `src` into a fixed `char8` array, NUL-terminated, truncated on a char boundary.
pub(crate) fn copy_cstr(src: &str, dst: &mut [c_char]) {
    let Some(room) = dst.len().checked_sub(1) else { return };
    let mut len = src.len().min(room);
    while !src.is_char_boundary(len) {
        len -= 1;
    }
    for (d, s) in dst.iter_mut().zip(&src.as_bytes()[..len]) {
        *d = *s as c_char;
    }
    dst[len] = 0;
}

/// Copies `src` into a fixed UTF-16 array, NUL-terminated, truncated.
pub(crate) fn copy_wstr(src: &str, dst: &mut [TChar]) {
    let Some(room) = dst.len().checked_sub(1) else { return };
    let mut len = 0;
    for (d, unit) in dst[..room].iter_mut().zip(src.encode_utf16()) {
        *d = unit as TChar;
        len += 1;
    }
    dst[len] = 0;
}

/// Reads a NUL-terminated UTF-16 string of at most `max` units.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated UTF-16 string (or at least `max` units).
pub(crate) unsafe fn read_wstr(ptr: *const TChar, max: usize) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    let mut units = Vec::new();
    for i in 0..max {
        // SAFETY: within the string or its terminator (caller's guarantee).
        let unit: u16 = unsafe { *ptr.add(i) };
        if unit == 0 {
            break;
        }
        units.push(unit);
    }
    String::from_utf16(&units).ok()
}

/// Largest state the bridge reads from a host stream.
pub(crate) const MAX_STATE_BYTES: usize = 16 << 20;

/// Reads a host stream to its end.
///
/// # Safety
/// `stream` is null or a valid `IBStream` for the duration of the call.
pub(crate) unsafe fn read_stream(stream: *mut IBStream) -> Option<Vec<u8>> {
    // SAFETY: caller's guarantee.
    let stream = unsafe { ComRef::from_raw(stream) }?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut read = 0;
        // SAFETY: `chunk` is valid for its length; `read` is a local.
        let result = unsafe { stream.read(chunk.as_mut_ptr().cast(), chunk.len() as i32, &mut read) };
        if result != kResultOk || read <= 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..(read as usize).min(chunk.len())]);
        if bytes.len() > MAX_STATE_BYTES {
            return None;
        }
    }
    Some(bytes)
}

/// Writes all of `bytes` to a host stream.
///
/// # Safety
/// `stream` is null or a valid `IBStream` for the duration of the call.
pub(crate) unsafe fn write_stream(stream: *mut IBStream, bytes: &[u8]) -> bool {
    // SAFETY: caller's guarantee.
    let Some(stream) = (unsafe { ComRef::from_raw(stream) }) else { return false };
    let mut done = 0;
    while done < bytes.len() {
        let chunk = &bytes[done..];
        let len = chunk.len().min(i32::MAX as usize) as i32;
        let mut written = 0;
        // SAFETY: `chunk` is valid for `len` bytes and only read by the host.
        let result = unsafe { stream.write(chunk.as_ptr() as *mut _, len, &mut written) };
        if result != kResultOk || written <= 0 {
            return false;
        }
        done += written as usize;
    }
    true
}
