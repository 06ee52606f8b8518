//! Shared between the bridge, the real-time engine and the control module: the shared
//! block's layout and its lock-free protocols, the module C ABI, and parameter mapping.
//!
//! Nothing here depends on any other crate of the project. Under `--cfg loom` only the
//! lock-free protocols ([`ring`], [`seqlock`]) are compiled, so loom checks them alone.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod sync;

pub mod ring;
pub mod seqlock;

#[cfg(not(loom))]
pub mod abi;
#[cfg(not(loom))]
pub mod block;
#[cfg(not(loom))]
pub mod layout;
#[cfg(not(loom))]
pub mod params;
#[cfg(not(loom))]
pub mod realtime;
#[cfg(not(loom))]
pub mod segment;
