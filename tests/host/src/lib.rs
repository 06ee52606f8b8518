//! A small headless VST3 host, written with crate `vst3` 0.3, for tests and tools.
//!
//! It loads a bundle the way a Linux host does ([`Module::load`]), lists its classes,
//! creates a plugin with its controller ([`Plugin::new`]: a controller the component
//! implements itself, or a separate one connected through `IConnectionPoint`), installs a
//! host context and a component handler that records every call with its thread, sets up
//! processing (32-bit, or 64-bit when the plugin can), processes blocks with notes and
//! sample-accurate automation, reads and writes state through an in-memory stream, and
//! renders notes or a MIDI file to WAV.
//!
//! A driver runs its own loop: [`Plugin::process`] each block and [`Plugin::idle`] now and
//! then on the thread that created the plugin.
//!
//! # Examples
//! ```no_run
//! use std::sync::Arc;
//! use trio_host::{Module, NoteEvent, Plugin, Setup};
//!
//! let module = Arc::new(Module::load("target/bundle/TrioSynth.vst3".as_ref())?);
//! let mut plugin = Plugin::new(module)?;
//! plugin.start(Setup::new(48_000.0, 512))?;
//! let first = plugin.process(512, &[NoteEvent::on(0, 69, 0.8)], &[])?;
//! assert_eq!(first.len(), 2);
//! for _ in 0..100 {
//!     let block = plugin.process(512, &[], &[])?;
//!     // ... play or store `block` ...
//!     # let _ = block;
//! }
//! plugin.idle()?;
//! # Ok::<(), trio_host::HostError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod com;
pub mod conformance;
mod error;
mod module;
mod notes;
mod plugin;

pub use com::{HandlerCall, HandlerCallKind, MemoryStream};
pub use error::{HostError, result_name};
pub use module::{ClassInfo, FactoryInfo, Module};
pub use notes::{DEFAULT_VELOCITY, Note, NoteSchedule, parse_notes, read_midi_file, render, render_paced, write_wav};
pub use plugin::{
    Buffers, BusInfo, Hostile, NoteEvent, ParamPoint, ParameterInfo, Plugin, Precision, ProgramList, Setup, UnitInfo,
};
/// The `vst3` crate this host is written with, for calls the API does not wrap.
pub use vst3;
