//! The module C ABI: symbol names, signatures, status codes and the `#[repr(C)]` records
//! that cross library boundaries.
//!
//! Plugin code never uses this module directly: [`crate::export_engine!`] and
//! [`crate::export_control!`] generate every export from the plugin's types, and the
//! bridge calls them. It is public for the bridge, the build tool and tests.
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
///
/// History: 1, the first layout; 2, the SDK (separate descriptor symbols, plugin areas,
/// 1,024 parameters keyed by the plugin's own ids with their definitions in the block,
/// buses, latency and tail from the engine); 3, engine panic reports and host state flags; 4, the
/// control module's `create` takes [`control::CREATE_DEFINED`]; 5, the engine reports
/// [`engine_state`] in [`ProcessData`] (was a reserved field).
pub const ABI_VERSION: u32 = 5;

/// `"TRIOMOD\0"`: marks a module descriptor.
pub const DESCRIPTOR_MAGIC: [u8; 8] = *b"TRIOMOD\0";

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
    /// Nothing found (e.g. a parameter without custom formatting).
    pub const NOT_FOUND: i32 = -6;
    /// The engine is faulted after a panic and outputs silence until reset.
    pub const FAULTED: i32 = -7;
    /// The shared block was created for another ABI version, layout or plugin area.
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
            ABI_MISMATCH => "the shared block was built for another ABI version, layout or plugin area",
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

/// Size, alignment and layout hash of a plugin-defined area ([`crate::area`](mod@crate::area)).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AreaLayout {
    /// [`crate::area::AreaField::HASH`] of the area type (0 for no area).
    pub hash: u64,
    /// `size_of` the area type, bytes.
    pub size: u64,
    /// `align_of` the area type.
    pub align: u64,
}

impl AreaLayout {
    /// The layout of area type `A`.
    pub const fn of<A: crate::area::Area>() -> Self {
        Self { hash: A::HASH, size: size_of::<A>() as u64, align: align_of::<A>() as u64 }
    }
}

/// The record every module exports under its descriptor symbol
/// ([`engine::DESCRIPTOR`] or [`control::DESCRIPTOR`]).
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
    /// The plugin-defined area the module was built with.
    pub area: AreaLayout,
    /// Module name (its crate's), UTF-8, NUL-padded.
    pub name: [u8; 32],
    /// Module version, UTF-8, NUL-padded.
    pub version: [u8; 32],
}

impl ModuleDescriptor {
    /// A descriptor for this build of the ABI.
    ///
    /// # Examples
    /// ```
    /// use trio::abi::{AreaLayout, ModuleDescriptor, alloc_policy, module_kind};
    /// let d = ModuleDescriptor::new(module_kind::ENGINE, alloc_policy::FORBID, AreaLayout::of::<()>(), "my_engine", "0.1.0");
    /// assert_eq!(d.name_str(), "my_engine");
    /// assert_eq!(d.area.size, 0);
    /// ```
    pub const fn new(kind: u32, alloc_policy: u32, area: AreaLayout, name: &str, version: &str) -> Self {
        Self {
            magic: DESCRIPTOR_MAGIC,
            abi_version: ABI_VERSION,
            kind,
            layout_hash: crate::layout::LAYOUT_HASH,
            alloc_policy,
            reserved: 0,
            area,
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
    /// `index`: note 0..127, `value`: velocity 0..1, `note_id`: host note id or -1.
    pub const NOTE_ON: u32 = 1;
    /// `index`: note, `value`: release velocity, `note_id`: host note id or -1.
    pub const NOTE_OFF: u32 = 2;
    /// `index`: the plugin's parameter id, `value`: normalized value 0..1.
    pub const PARAM: u32 = 3;
    /// Release every sounding voice.
    pub const ALL_NOTES_OFF: u32 = 4;
    /// `index`: controller number 0..127, `value`: 0..1, `channel`.
    pub const MIDI_CC: u32 = 5;
    /// `value`: -1..1 (full bend down to full bend up), `channel`.
    pub const PITCH_BEND: u32 = 6;
    /// Channel aftertouch: `value` 0..1, `channel`.
    pub const CHANNEL_PRESSURE: u32 = 7;
    /// Polyphonic aftertouch: `index` note, `value` 0..1, `note_id`, `channel`.
    pub const POLY_PRESSURE: u32 = 8;
    /// Kinds from this value up are the plugin's own (engine ↔ control messages); the
    /// framework passes them through untouched.
    pub const USER: u32 = 0x1000;
}

/// A timed event: a note, a parameter change, a MIDI message, or a plugin message.
///
/// In a block's event list ([`ProcessData::events`]) `time` is the sample offset within
/// the block. In the control → engine ring it is an absolute engine sample time
/// ([`crate::block::BlockHeader::sample_clock`]); events in the past play at the start of
/// the next block (and count as late).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Event {
    /// Sample offset (in a block) or absolute sample time (in a ring).
    pub time: u64,
    /// One of [`event_kind`]; unknown kinds are ignored by the framework.
    pub kind: u32,
    /// Note number, parameter id or controller number, depending on `kind`.
    pub index: u32,
    /// Velocity, normalized value, controller value..., depending on `kind`.
    pub value: f64,
    /// Host note id, or -1.
    pub note_id: i32,
    /// MIDI channel 0..15.
    pub channel: u32,
}

impl Event {
    /// A note-on on channel 0 without a note id.
    pub const fn note_on(time: u64, note: u8, velocity: f64) -> Self {
        Self { time, kind: event_kind::NOTE_ON, index: note as u32, value: velocity, note_id: -1, channel: 0 }
    }

    /// A note-off on channel 0 without a note id.
    pub const fn note_off(time: u64, note: u8) -> Self {
        Self { time, kind: event_kind::NOTE_OFF, index: note as u32, value: 0.0, note_id: -1, channel: 0 }
    }

    /// A parameter change to a normalized value.
    pub const fn param(time: u64, id: u32, normalized: f64) -> Self {
        Self { time, kind: event_kind::PARAM, index: id, value: normalized, note_id: -1, channel: 0 }
    }
}

/// Host transport for one block, as the bridge hands it to the engine.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TransportInfo {
    /// Tempo in beats per minute (valid with [`transport_flags::TEMPO`]).
    pub tempo_bpm: f64,
    /// Musical position of the block start in quarter notes (with [`transport_flags::POSITION`]).
    pub ppq_position: f64,
    /// Position of the current bar's start in quarter notes (with [`transport_flags::BAR`]).
    pub bar_start_ppq: f64,
    /// Time signature numerator (with [`transport_flags::TIME_SIG`]).
    pub time_sig_numerator: u32,
    /// Time signature denominator.
    pub time_sig_denominator: u32,
    /// [`transport_flags`] bits.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Bits of [`TransportInfo::flags`].
pub mod transport_flags {
    /// The host transport is playing.
    pub const PLAYING: u32 = 1;
    /// `tempo_bpm` is valid.
    pub const TEMPO: u32 = 2;
    /// `ppq_position` is valid.
    pub const POSITION: u32 = 4;
    /// `bar_start_ppq` is valid.
    pub const BAR: u32 = 8;
    /// The time signature is valid.
    pub const TIME_SIG: u32 = 16;
    /// The host is looping.
    pub const LOOPING: u32 = 32;
}

/// Processing modes ([`ProcessData::process_mode`], [`crate::block::BlockHeader::process_mode`]).
pub mod process_mode {
    /// Real time: each block has a deadline.
    pub const REALTIME: u32 = 0;
    /// Prefetch: ahead of real time, with a deadline.
    pub const PREFETCH: u32 = 1;
    /// Offline (bounces, render engines): no deadline; may run faster than real time.
    pub const OFFLINE: u32 = 2;
}

/// One block, as the bridge hands it to the engine's process export.
///
/// The main bus is processed in place: for an effect, `main` holds the main input when
/// the engine is called and the engine overwrites it with the output (the bridge copies
/// the host's input there unless the host already processes in place); for an instrument
/// it holds zeros. The sidechain is read-only and never aliases `main`.
#[repr(C)]
pub struct ProcessData {
    /// Samples in this block (`<= max_block_size` given to activate).
    pub num_samples: u32,
    /// Channels of the main bus.
    pub num_main: u32,
    /// `num_main` pointers to `num_samples` floats each (never null when `num_main > 0`).
    pub main: *const *mut f32,
    /// Channels of the sidechain input (0 when the plugin has none or the host gives none).
    pub num_sidechain: u32,
    /// Number of events in `events`.
    pub num_events: u32,
    /// `num_sidechain` pointers to `num_samples` floats each, or null.
    pub sidechain: *const *const f32,
    /// Events of this block sorted by `time` (sample offset), or null if none.
    pub events: *const Event,
    /// The host's transport for this block.
    pub transport: TransportInfo,
    /// [`process_mode`] of this block.
    pub process_mode: u32,
    /// Out, [`engine_state`] bits: the caller sets it to zero, the engine sets bits. Zero
    /// means awake: an engine that never sets it is called for every block.
    pub engine_state: u32,
    /// Out: bit `c` set if main channel `c` is exactly silent.
    pub silence_flags: u64,
}

/// What the engine reports about itself after a block ([`ProcessData::engine_state`]).
pub mod engine_state {
    /// The engine is asleep (`Block::set_asleep`): until an event reaches it, or its input
    /// holds a non-zero sample, a block would leave its output silent and change nothing
    /// in it but the time. The bridge may then not call it, and advances the block's
    /// sample clock, statistics and transport itself.
    pub const ASLEEP: u32 = 1;
}

/// Most channels a bus passes to the engine; further channels of a host's buffer are
/// cleared by the bridge.
pub const MAX_CHANNELS: usize = 8;

/// The channel pointer arrays a [`ProcessData`] points to, built from slices.
pub struct ChannelPointers {
    main: [*mut f32; MAX_CHANNELS],
    side: [*const f32; MAX_CHANNELS],
    num_main: usize,
    num_side: usize,
}

impl ChannelPointers {
    /// Pointers to `main`'s and `sidechain`'s channels; `None` for more than
    /// [`MAX_CHANNELS`] in either.
    pub fn new(main: &mut [&mut [f32]], sidechain: &[&[f32]]) -> Option<Self> {
        if main.len() > MAX_CHANNELS || sidechain.len() > MAX_CHANNELS {
            return None;
        }
        let mut ptrs = Self {
            main: [core::ptr::null_mut(); MAX_CHANNELS],
            side: [core::ptr::null(); MAX_CHANNELS],
            num_main: main.len(),
            num_side: sidechain.len(),
        };
        for (slot, channel) in ptrs.main.iter_mut().zip(main.iter_mut()) {
            *slot = channel.as_mut_ptr();
        }
        for (slot, channel) in ptrs.side.iter_mut().zip(sidechain) {
            *slot = channel.as_ptr();
        }
        Some(ptrs)
    }

    /// A block of `num_samples` over these channels and `events` (sorted by time). The
    /// result points into `self`, the channel slices and `events`: use it while they live.
    pub fn process_data(
        &self,
        num_samples: usize,
        events: &[Event],
        transport: TransportInfo,
        mode: u32,
    ) -> ProcessData {
        ProcessData {
            num_samples: num_samples as u32,
            num_main: self.num_main as u32,
            main: self.main.as_ptr(),
            num_sidechain: self.num_side as u32,
            num_events: events.len() as u32,
            sidechain: if self.num_side == 0 { core::ptr::null() } else { self.side.as_ptr() },
            events: if events.is_empty() { core::ptr::null() } else { events.as_ptr() },
            transport,
            process_mode: mode,
            engine_state: 0,
            silence_flags: 0,
        }
    }
}

/// Calls a `(buf, cap, out_len)` export (text into a caller's buffer), growing the
/// buffer once if it was too small; the text, or the export's failing status.
pub fn read_text(mut f: impl FnMut(*mut u8, usize, *mut usize) -> i32) -> Result<String, i32> {
    let mut buf = vec![0u8; 256];
    let mut len = 0usize;
    let mut code = f(buf.as_mut_ptr(), buf.len(), &mut len);
    if code == status::BUFFER_TOO_SMALL && len > buf.len() && len <= 1 << 24 {
        buf.resize(len, 0);
        code = f(buf.as_mut_ptr(), buf.len(), &mut len);
    }
    if code != status::OK {
        return Err(code);
    }
    buf.truncate(len.min(buf.len()));
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A write callback ([`WriteFn`]) that appends to the `Vec<u8>` behind `ctx`.
///
/// # Safety
/// `ctx` is null or a `*mut Vec<u8>` valid and not otherwise borrowed for the call; `data`
/// is null or valid for `len` bytes.
pub unsafe extern "C" fn append_to_vec(ctx: *mut core::ffi::c_void, data: *const u8, len: usize) {
    if ctx.is_null() || data.is_null() || len == 0 {
        return;
    }
    // No panic may leave an `extern "C"` function.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the caller's guarantee: `ctx` is a `&mut Vec<u8>` for this call, and
        // `data` is valid for `len` bytes.
        unsafe { (*ctx.cast::<Vec<u8>>()).extend_from_slice(core::slice::from_raw_parts(data, len)) };
    }));
}

/// Bits of a parameter's flags.
pub mod param_flags {
    /// The host may automate the parameter.
    pub const AUTOMATABLE: u32 = 1;
    /// The parameter is the plugin's bypass switch.
    pub const BYPASS: u32 = 2;
    /// The parameter is a list of named values.
    pub const LIST: u32 = 4;
    /// Hosts show the value but the user cannot change it.
    pub const READ_ONLY: u32 = 8;
    /// Hosts do not show the parameter.
    pub const HIDDEN: u32 = 16;
}

/// What a control tick did ([`control::TickFn`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickResult {
    /// Microseconds until the control logic wants its next tick; 0: it is idle (the bridge
    /// still polls it slowly, so it can notice changes).
    pub next_tick_us: u64,
    /// Engine sample time up to which every timed event has been scheduled.
    pub scheduled_until: u64,
}

/// Callback a module writes produced bytes through (state JSON). May be called several
/// times; the bytes are appended in order.
pub type WriteFn = unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize);

/// Engine exports.
pub mod engine {
    use super::{ProcessData, c_void};
    use crate::block::SharedBlock;

    /// The engine's descriptor symbol.
    pub const DESCRIPTOR: &str = "trio_engine_descriptor";

    /// `create(block, out_engine) -> status`: allocate an engine bound to `block` (the
    /// start of the instance's segment, plugin area included).
    pub type CreateFn = unsafe extern "C" fn(*const SharedBlock, *mut *mut c_void) -> i32;
    /// `destroy(engine)`.
    pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
    /// `activate(engine, sample_rate, max_block) -> status`: prepare buffers (allocates;
    /// never called on the audio thread while processing).
    pub type ActivateFn = unsafe extern "C" fn(*mut c_void, f64, u32) -> i32;
    /// `reset(engine) -> status`: silence voices, clear a fault.
    pub type ResetFn = unsafe extern "C" fn(*mut c_void) -> i32;
    /// `process(engine, data) -> status`: render one block; never allocates.
    pub type ProcessFn = unsafe extern "C" fn(*mut c_void, *mut ProcessData) -> i32;

    /// Every symbol the engine exports.
    pub const EXPORTS: &[&str] = &[
        DESCRIPTOR,
        "trio_engine_create",
        "trio_engine_destroy",
        "trio_engine_activate",
        "trio_engine_reset",
        "trio_engine_process",
    ];
}

/// Control-module exports. Every one of them runs on the bridge's control worker only.
pub mod control {
    use super::{TickResult, WriteFn, c_void};
    use crate::block::SharedBlock;

    /// The control module's descriptor symbol.
    pub const DESCRIPTOR: &str = "trio_control_descriptor";

    /// [`CreateFn`] mode: a new instance: define the parameters, write their defaults.
    pub const CREATE_FRESH: u32 = 0;
    /// [`CreateFn`] mode: keep the values already in the block (a reload; state follows).
    pub const CREATE_ADOPT: u32 = 1;
    /// [`CreateFn`] mode: a new instance on a block the bridge has already defined with
    /// this module's parameters and defaults (copied from an earlier fresh instance), so
    /// the host could use it before this call ran: keep the values the host may have set
    /// since; a parameter whose definition differs from the module's gets its default. No
    /// state follows.
    pub const CREATE_DEFINED: u32 = 2;

    /// `create(block, mode, out_instance) -> status`: publish the parameter definitions
    /// (and, when fresh, their defaults) into `block`.
    pub type CreateFn = unsafe extern "C" fn(*const SharedBlock, u32, *mut *mut c_void) -> i32;
    /// `destroy(instance)`.
    pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
    /// `format_value(instance, id, normalized, buf, cap, out_len) -> status`: text of a
    /// value of a parameter with custom formatting (`NOT_FOUND` for the others, whose
    /// display rule is in the block).
    pub type FormatValueFn = unsafe extern "C" fn(*mut c_void, u32, f64, *mut u8, usize, *mut usize) -> i32;
    /// `parse_value(instance, id, text, len, out_normalized) -> status`: custom parsing.
    pub type ParseValueFn = unsafe extern "C" fn(*mut c_void, u32, *const u8, usize, *mut f64) -> i32;
    /// `save_state(instance, write, ctx) -> status`.
    pub type SaveStateFn = unsafe extern "C" fn(*mut c_void, WriteFn, *mut c_void) -> i32;
    /// `load_state(instance, data, len) -> status`: all or nothing.
    pub type LoadStateFn = unsafe extern "C" fn(*mut c_void, *const u8, usize) -> i32;
    /// `preset_count(instance) -> count`.
    pub type PresetCountFn = unsafe extern "C" fn(*mut c_void) -> u32;
    /// `preset_name(instance, index, buf, cap, out_len) -> status`.
    pub type PresetNameFn = unsafe extern "C" fn(*mut c_void, u32, *mut u8, usize, *mut usize) -> i32;
    /// `load_preset(instance, index) -> status`.
    pub type LoadPresetFn = unsafe extern "C" fn(*mut c_void, u32) -> i32;
    /// `tick(instance, until, out) -> status`: control-rate work. `until` is 0 in real
    /// time (schedule the usual lookahead ahead of the engine's clock) or, offline, the
    /// sample time the engine is about to render up to.
    pub type TickFn = unsafe extern "C" fn(*mut c_void, u64, *mut TickResult) -> i32;
    /// `last_error(instance, buf, cap, out_len) -> status`: the message of the last
    /// failed call on this instance (or of the last failed create, with a null instance).
    pub type LastErrorFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize, *mut usize) -> i32;
    /// `module_shutdown() -> status`: join any thread the module started; called once
    /// before the library is unloaded.
    pub type ModuleShutdownFn = unsafe extern "C" fn() -> i32;

    /// Every symbol the control module exports.
    pub const EXPORTS: &[&str] = &[
        DESCRIPTOR,
        "trio_control_create",
        "trio_control_destroy",
        "trio_control_format_value",
        "trio_control_parse_value",
        "trio_control_save_state",
        "trio_control_load_state",
        "trio_control_preset_count",
        "trio_control_preset_name",
        "trio_control_load_preset",
        "trio_control_tick",
        "trio_control_last_error",
        "trio_control_module_shutdown",
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
