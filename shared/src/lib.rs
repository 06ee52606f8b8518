//! # Trio: VST3 plugins as a real-time engine and a hot-reloadable control module
//!
//! A Trio plugin is three libraries in one `.vst3` bundle: the framework's **bridge**
//! (the library the host loads), the plugin's **engine** (DSP on the audio thread; it
//! never allocates) and the plugin's **control module** (parameters, presets, state,
//! control-rate logic; it may allocate, and can be rebuilt and reloaded while audio
//! plays). They share one block of memory per instance.
//!
//! A plugin developer writes two small crates against this SDK and never writes
//! `unsafe`, `extern "C"`, `#[no_mangle]` or a global allocator:
//!
//! - the engine crate implements [`engine::Engine`] and calls
//!   [`export_engine!`](crate::export_engine!);
//! - the control crate implements [`control::Control`] (its parameters are
//!   [`params::ParamDef`]s) and calls [`export_control!`](crate::export_control!);
//! - a third small crate that both depend on holds the parameter ids, and optionally a
//!   plugin area ([`area!`](crate::area!)) for data the two share beyond parameters;
//! - their tests run the engine and the control module together in process with
//!   [`testing::Rig`]: events at their samples, latency, tempo, control-rate logic, state,
//!   and a check that `process` never allocates.
//!
//! `cargo xtask new <Name> --kind instrument|effect` writes such a project, and
//! `cargo xtask bundle` builds the three libraries into one bundle.
//!
//! The rest of this crate is the framework's own: the shared block's layout
//! ([`block`]), its lock-free protocols ([`ring`], [`seqlock`]) and the module C ABI
//! ([`abi`]), which the bridge and the build tool use. Under `--cfg loom` only the
//! lock-free protocols are compiled, so loom checks them alone.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod sync;

#[cfg(not(loom))]
mod cpu;

pub mod ring;
pub mod seqlock;

#[cfg(not(loom))]
pub mod abi;
#[cfg(not(loom))]
pub mod area;
#[cfg(not(loom))]
pub mod block;
#[cfg(not(loom))]
pub mod control;
#[cfg(not(loom))]
pub mod engine;
#[cfg(all(not(loom), feature = "fault-injection"))]
pub mod fault;
#[cfg(not(loom))]
pub mod layout;
#[cfg(not(loom))]
pub mod params;
#[cfg(not(loom))]
pub mod realtime;
#[cfg(not(loom))]
pub mod segment;
#[cfg(not(loom))]
pub mod sleep;
#[cfg(not(loom))]
pub mod state;
#[cfg(not(loom))]
pub mod testing;

/// Atomic floats for plugin areas (`AtomicF32`, `AtomicF64`).
#[cfg(not(loom))]
pub use atomic_float;

/// What plugin code usually needs, in one import: `use trio::prelude::*;`.
#[cfg(not(loom))]
pub mod prelude {
    pub use crate::control::{Control, ControlContext, NextTick, Preset, TickContext};
    pub use crate::engine::{Block, Engine, EngineContext, Event, Params, Tail, Timed, VoiceInfo};
    pub use crate::params::{DisplayKind, ParamDef, ParamMapping};
}
