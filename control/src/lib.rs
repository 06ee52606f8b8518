//! The control module of the example instrument.
//!
//! A `cdylib` the bridge loads and calls only from its control worker thread. It owns
//! everything that may allocate: parameter definitions and their display, presets, the
//! MIDI CC map, the state as JSON and the arpeggiator ([`arp`]), control-rate logic that
//! schedules timed notes for the engine. It writes parameter mappings and values into the
//! shared block; the engine picks them up at its next block. Because the audio thread
//! never calls it, it can be rebuilt and reloaded while audio keeps playing.
//!
//! Every export (see `shared::abi::control`) catches panics and returns a status code;
//! the message of the last failure on an instance is available through
//! `control_last_error`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod arp;
pub mod midi;
pub mod params;
pub mod presets;
pub mod state;

mod exports;
#[cfg(feature = "fault-injection")]
pub mod fault;
mod instance;

pub use exports::*;
