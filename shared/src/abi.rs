//! The module C ABI: symbol names, signatures, status codes and the `#[repr(C)]` records
//! that cross library boundaries.
//!
//! Rules (DESIGN §2): only `#[repr(C)]` data, integers, floats and raw pointers cross a
//! boundary. Bytes a module produces (state JSON, display strings) go into a buffer the
//! caller provides, or through a write callback the caller provides. Every exported
//! function catches panics in its own crate and returns [`status::PANIC`].
//!
//! Any change here or in the block layout bumps [`ABI_VERSION`] and is listed under
//! "Breaking changes" in the changelog; the layout hash catches what a forgotten bump
//! would miss.

use core::ffi::c_void;

/// Version of this ABI and of the block layout. Modules with another version are refused.
pub const ABI_VERSION: u32 = 1;

/// `"TRIOMOD\0"`: marks a module descriptor.
pub const DESCRIPTOR_MAGIC: [u8; 8] = *b"TRIOMOD\0";

/// Name of the descriptor symbol every module exports.
pub const DESCRIPTOR_SYMBOL: &str = "trio_module_descriptor";

/// Status codes returned by every exported function (`i32`; `OK` is 0, errors are negative).
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// A required pointer argument was null.
    pub const NULL_POINTER: i32 = -1;
    /// The function panicked; the panic was caught inside the module.
    pub const PANIC: i32 = -2;
    /// An argument was out of range (unknown parameter id, bad index...).
    pub const INVALID_ARGUMENT: i32 = -3;
    /// The caller's buffer was too small; the needed size was written to `out_len`.
    pub const BUFFER_TOO_SMALL: i32 = -4;
    /// State or text could not be parsed or validated; nothing was changed.
    pub const REJECTED: i32 = -5;
    /// Nothing found (e.g. a MIDI CC with no parameter mapped).
    pub const NOT_FOUND: i32 = -6;
    /// The engine is faulted after a panic and outputs silence until reset.
    pub const FAULTED: i32 = -7;
    /// The shared block was created for another ABI version or layout.
    pub const ABI_MISMATCH: i32 = -8;
    /// Another thread is using the object right now (never returned by a module; the
    /// bridge returns it rather than wait on the audio path).
    pub const BUSY: i32 = -9;

    /// A short human name for a status code.
    pub fn describe(code: i32) -> &'static str {
        match code {
            OK => "ok",
            NULL_POINTER => "a required pointer was null",
            PANIC => "the module panicked (caught inside the module)",
            INVALID_ARGUMENT => "an argument was out of range",
            BUFFER_TOO_SMALL => "the buffer was too small",
            REJECTED => "the input was rejected; nothing was changed",
            NOT_FOUND => "not found",
            FAULTED => "the engine is faulted and outputs silence until reset",
            ABI_MISMATCH => "the shared block was built for another ABI version or layout",
            BUSY => "another thread is using the engine right now",
            _ => "unknown status code",
        }
    }
}

/// Which module a descriptor describes.
pub mod module_kind {
    /// The real-time engine.
    pub const ENGINE: u32 = 1;
    /// The control module.
    pub const CONTROL: u32 = 2;
}

/// A module's allocation policy, as its descriptor declares it.
pub mod alloc_policy {
    /// Allocation on the audio path is caught and counted (`assert_no_alloc`).
    pub const FORBID: u32 = 1;
    /// The module may allocate (it never runs on the audio thread).
    pub const ALLOW: u32 = 2;
}

/// The record every module exports under [`DESCRIPTOR_SYMBOL`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleDescriptor {
    /// [`DESCRIPTOR_MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] the module was built with.
    pub abi_version: u32,
    /// [`module_kind`].
    pub kind: u32,
    /// [`crate::layout::LAYOUT_HASH`] the module was built with.
    pub layout_hash: u64,
    /// [`alloc_policy`].
    pub alloc_policy: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Module name, UTF-8, NUL-padded.
    pub name: [u8; 32],
    /// Module version, UTF-8, NUL-padded.
    pub version: [u8; 32],
}

impl ModuleDescriptor {
    /// A descriptor for this build of `shared`'s ABI.
    ///
    /// # Examples
    /// ```
    /// use shared::abi::{ModuleDescriptor, module_kind, alloc_policy};
    /// let d = ModuleDescriptor::new(module_kind::ENGINE, alloc_policy::FORBID, "rt_engine", "0.1.0");
    /// assert_eq!(d.name_str(), "rt_engine");
    /// ```
    pub const fn new(kind: u32, alloc_policy: u32, name: &str, version: &str) -> Self {
        Self {
            magic: DESCRIPTOR_MAGIC,
            abi_version: ABI_VERSION,
            kind,
            layout_hash: crate::layout::LAYOUT_HASH,
            alloc_policy,
            reserved: 0,
            name: fixed_str(name),
            version: fixed_str(version),
        }
    }

    /// The name as text (up to the first NUL; invalid UTF-8 gives `"?"`).
    pub fn name_str(&self) -> &str {
        str_from_fixed(&self.name)
    }

    /// The version as text.
    pub fn version_str(&self) -> &str {
        str_from_fixed(&self.version)
    }
}

/// Copies `s` into a NUL-padded array, truncating at `N - 1` bytes (on a char boundary).
pub const fn fixed_str<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut len = if bytes.len() < N { bytes.len() } else { N - 1 };
    // Do not cut a UTF-8 sequence in half: back up to a char boundary.
    while len > 0 && len < bytes.len() && (bytes[len] & 0xC0) == 0x80 {
        len -= 1;
    }
    let mut i = 0;
    while i < len {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The text in a NUL-padded array.
pub fn str_from_fixed(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("?")
}

/// Event kinds ([`Event::kind`]).
pub mod event_kind {
    /// `index`: note number 0..127, `value`: velocity 0..1, `note_id`: host note id or -1.
    pub const NOTE_ON: u32 = 1;
    /// `index`: note number, `value`: release velocity, `note_id`: host note id or -1.
    pub const NOTE_OFF: u32 = 2;
    /// `index`: parameter id, `value`: normalized value.
    pub const PARAM: u32 = 3;
    /// Release every sounding voice.
    pub const ALL_NOTES_OFF: u32 = 4;
    /// Engine → control: a MIDI CC seen by the engine; `index`: CC number, `value`: 0..1.
    pub const MIDI_CC: u32 = 5;
}

/// A timed event: a note, a parameter change, or telemetry.
///
/// In a block's event list ([`ProcessData::events`]) `time` is the sample offset within
/// the block. In the control → engine ring it is an absolute engine sample time
/// ([`crate::block::BlockHeader::sample_clock`]); events in the past play at the start of
/// the next block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Event {
    /// Sample offset (in a block) or absolute sample time (in a ring).
    pub time: u64,
    /// One of [`event_kind`]; unknown kinds are ignored.
    pub kind: u32,
    /// Note number or parameter id, depending on `kind`.
    pub index: u32,
    /// Velocity or normalized value, depending on `kind`.
    pub value: f64,
    /// Host note id, or -1.
    pub note_id: i32,
    /// MIDI channel 0..15.
    pub channel: u32,
}

impl Event {
    /// A note-on.
    pub const fn note_on(time: u64, note: u8, velocity: f64) -> Self {
        Self { time, kind: event_kind::NOTE_ON, index: note as u32, value: velocity, note_id: -1, channel: 0 }
    }

    /// A note-off.
    pub const fn note_off(time: u64, note: u8) -> Self {
        Self { time, kind: event_kind::NOTE_OFF, index: note as u32, value: 0.0, note_id: -1, channel: 0 }
    }

    /// A parameter change to a normalized value.
    pub const fn param(time: u64, id: u32, normalized: f64) -> Self {
        Self { time, kind: event_kind::PARAM, index: id, value: normalized, note_id: -1, channel: 0 }
    }
}

/// One block, as the bridge hands it to `rt_process`.
#[repr(C)]
pub struct ProcessData {
    /// Samples in this block (`<= max_block_size` given to `rt_activate`).
    pub num_samples: u32,
    /// Output channels.
    pub num_outputs: u32,
    /// `num_outputs` pointers to `num_samples` floats each.
    pub outputs: *const *mut f32,
    /// Input channels (0 for an instrument).
    pub num_inputs: u32,
    /// Number of events in `events`.
    pub num_events: u32,
    /// `num_inputs` pointers to `num_samples` floats each, or null.
    pub inputs: *const *const f32,
    /// Events of this block sorted by `time` (sample offset), or null if none.
    pub events: *const Event,
    /// Out: bit `c` set if output channel `c` is exactly silent.
    pub silence_flags: u64,
}

/// Parameter flags ([`ParamInfo::flags`], [`crate::block::ParamSlot::flags`]).
pub const PARAM_FLAG_AUTOMATABLE: u32 = 1;
/// The parameter is the plugin's bypass switch.
pub const PARAM_FLAG_BYPASS: u32 = 2;
/// The parameter is a list of named values.
pub const PARAM_FLAG_LIST: u32 = 4;

/// A parameter's description, as `control_param_info` fills it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ParamInfo {
    /// Parameter id (also its slot in the block).
    pub id: u32,
    /// `PARAM_FLAG_*` bits.
    pub flags: u32,
    /// Discrete steps (0 = continuous).
    pub step_count: u32,
    /// [`crate::params::MappingKind`] as `u32`.
    pub mapping_kind: u32,
    /// Plain value at normalized 0.
    pub min: f64,
    /// Plain value at normalized 1.
    pub max: f64,
    /// Skew exponent (skewed mappings).
    pub skew: f64,
    /// Default, normalized.
    pub default_normalized: f64,
    /// Full name, UTF-8, NUL-padded.
    pub name: [u8; 64],
    /// Short name.
    pub short_name: [u8; 32],
    /// Unit label ("Hz", "dB").
    pub unit: [u8; 16],
    /// Group ("Filter").
    pub group: [u8; 32],
}

impl Default for ParamInfo {
    fn default() -> Self {
        Self {
            id: 0,
            flags: 0,
            step_count: 0,
            mapping_kind: 0,
            min: 0.0,
            max: 1.0,
            skew: 1.0,
            default_normalized: 0.0,
            name: [0; 64],
            short_name: [0; 32],
            unit: [0; 16],
            group: [0; 32],
        }
    }
}

/// Callback a module writes produced bytes through (state JSON). May be called several
/// times; the bytes are appended in order.
pub type WriteFn = unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize);

/// Engine exports.
pub mod engine {
    use super::{ProcessData, c_void};
    use crate::block::SharedBlock;

    /// `rt_create(block, out_engine) -> status`: allocate an engine bound to `block`.
    pub type CreateFn = unsafe extern "C" fn(*const SharedBlock, *mut *mut c_void) -> i32;
    /// `rt_destroy(engine)`.
    pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
    /// `rt_activate(engine, sample_rate, max_block) -> status`: prepare buffers (allocates;
    /// never called on the audio thread while processing).
    pub type ActivateFn = unsafe extern "C" fn(*mut c_void, f64, u32) -> i32;
    /// `rt_reset(engine) -> status`: silence voices, clear a fault.
    pub type ResetFn = unsafe extern "C" fn(*mut c_void) -> i32;
    /// `rt_process(engine, data) -> status`: render one block; never allocates.
    pub type ProcessFn = unsafe extern "C" fn(*mut c_void, *mut ProcessData) -> i32;

    /// Every symbol the engine must export.
    pub const EXPORTS: &[&str] =
        &[crate::abi::DESCRIPTOR_SYMBOL, "rt_create", "rt_destroy", "rt_activate", "rt_reset", "rt_process"];
}

/// Control-module exports. Every one of them runs on the bridge's control worker only.
pub mod control {
    use super::{ParamInfo, WriteFn, c_void};
    use crate::block::SharedBlock;

    /// [`CreateFn`] mode: write every parameter's default value into the block.
    pub const CREATE_FRESH: u32 = 0;
    /// [`CreateFn`] mode: keep the values already in the block (a reload; state follows).
    pub const CREATE_ADOPT: u32 = 1;

    /// `control_create(block, mode, out_instance) -> status`: write mappings (and, when
    /// fresh, defaults) into `block`.
    pub type CreateFn = unsafe extern "C" fn(*const SharedBlock, u32, *mut *mut c_void) -> i32;
    /// `control_destroy(instance)`.
    pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
    /// `control_param_count(instance) -> count`.
    pub type ParamCountFn = unsafe extern "C" fn(*mut c_void) -> u32;
    /// `control_param_info(instance, index, out) -> status`.
    pub type ParamInfoFn = unsafe extern "C" fn(*mut c_void, u32, *mut ParamInfo) -> i32;
    /// `control_format_value(instance, id, normalized, buf, cap, out_len) -> status`.
    pub type FormatValueFn = unsafe extern "C" fn(*mut c_void, u32, f64, *mut u8, usize, *mut usize) -> i32;
    /// `control_parse_value(instance, id, text, len, out_normalized) -> status`.
    pub type ParseValueFn = unsafe extern "C" fn(*mut c_void, u32, *const u8, usize, *mut f64) -> i32;
    /// `control_save_state(instance, write, ctx) -> status`.
    pub type SaveStateFn = unsafe extern "C" fn(*mut c_void, WriteFn, *mut c_void) -> i32;
    /// `control_load_state(instance, data, len) -> status`: all or nothing.
    pub type LoadStateFn = unsafe extern "C" fn(*mut c_void, *const u8, usize) -> i32;
    /// `control_preset_count(instance) -> count`.
    pub type PresetCountFn = unsafe extern "C" fn(*mut c_void) -> u32;
    /// `control_preset_name(instance, index, buf, cap, out_len) -> status`.
    pub type PresetNameFn = unsafe extern "C" fn(*mut c_void, u32, *mut u8, usize, *mut usize) -> i32;
    /// `control_load_preset(instance, index) -> status`.
    pub type LoadPresetFn = unsafe extern "C" fn(*mut c_void, u32) -> i32;
    /// `control_midi_cc_param(instance, cc, out_param_id) -> status` (`NOT_FOUND` if unmapped).
    pub type MidiCcParamFn = unsafe extern "C" fn(*mut c_void, u32, *mut u32) -> i32;
    /// `control_tick(instance) -> status`: control-rate work (sequencing), called
    /// periodically by the worker.
    pub type TickFn = unsafe extern "C" fn(*mut c_void) -> i32;
    /// `control_last_error(instance, buf, cap, out_len) -> status`: the message of the
    /// last failed call on this instance.
    pub type LastErrorFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize, *mut usize) -> i32;
    /// `control_module_shutdown() -> status`: join any thread the module started; called
    /// once before the library is unloaded.
    pub type ModuleShutdownFn = unsafe extern "C" fn() -> i32;

    /// Every symbol the control module must export.
    pub const EXPORTS: &[&str] = &[
        crate::abi::DESCRIPTOR_SYMBOL,
        "control_create",
        "control_destroy",
        "control_param_count",
        "control_param_info",
        "control_format_value",
        "control_parse_value",
        "control_save_state",
        "control_load_state",
        "control_preset_count",
        "control_preset_name",
        "control_load_preset",
        "control_midi_cc_param",
        "control_tick",
        "control_last_error",
        "control_module_shutdown",
    ];
}

/// Copies `text` into a caller's buffer, for the `(buf, cap, out_len)` convention: writes
/// the full length to `out_len`, and the bytes if they fit.
///
/// # Safety
/// `buf` is null or valid for `cap` writable bytes; `out_len` is null or valid to write.
///
/// # Errors
/// [`status::BUFFER_TOO_SMALL`] when `cap` is too small (nothing is written to `buf`),
/// [`status::NULL_POINTER`] when `out_len` is null.
pub unsafe fn write_text(text: &str, buf: *mut u8, cap: usize, out_len: *mut usize) -> i32 {
    if out_len.is_null() {
        return status::NULL_POINTER;
    }
    // SAFETY: `out_len` is non-null and the caller guarantees it is writable.
    unsafe { out_len.write(text.len()) };
    if text.len() > cap || (buf.is_null() && !text.is_empty()) {
        return status::BUFFER_TOO_SMALL;
    }
    if !text.is_empty() {
        // SAFETY: `buf` is valid for `cap >= text.len()` bytes (checked above) and cannot
        // overlap `text`, which this module owns.
        unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len()) };
    }
    status::OK
}

/// Runs `f`, turning a panic into [`status::PANIC`]. Every exported function of every
/// module goes through this (or an equivalent) so no panic crosses a library boundary.
pub fn catch_status(f: impl FnOnce() -> i32) -> i32 {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(_) => status::PANIC,
    }
}
