//! The build tool's library: everything `cargo xtask` does, callable from tests.
//!
//! - [`manifest`]: `build.yaml`, parsed and checked;
//! - [`elf`]: a built library's exports and module descriptor, read from the file;
//! - [`cargo`]: running `cargo metadata` and `cargo build`;
//! - [`bundle`]: `cargo xtask bundle`, building, checking and assembling `<Name>.vst3`;
//! - [`resources`]: the bundle's `moduleinfo.json` and `build.json`;
//! - [`install`]: `cargo xtask install`;
//! - [`scaffold`]: `cargo xtask new`;
//! - [`fsutil`]: replacing a folder so that a crash leaves the old or the new copy.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod bundle;
pub mod cargo;
pub mod dev;
pub mod elf;
pub mod fsutil;
pub mod install;
pub mod manifest;
pub mod resources;
pub mod scaffold;

use std::path::{Path, PathBuf};

/// The root of the workspace this tool was built in (the folder of its `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR"));
    scripts.parent().map(Path::to_path_buf).unwrap_or_else(|| scripts.join(".."))
}
