//! The build tool's library: everything `cargo xtask` does, callable from tests.
//!
//! - [`cli`]: the command line, [`cli::main`], shared by the framework's checkout and every
//!   plugin project's `xtask` crate;
//! - [`manifest`]: `build.yaml`, parsed and checked;
//! - [`elf`]: a built library's exports and module descriptor, read from the file;
//! - [`cargo`]: running `cargo metadata` and `cargo build`;
//! - [`bundle`]: `cargo xtask bundle`, building, checking and assembling `<Name>.vst3`;
//! - [`resources`]: the bundle's `moduleinfo.json` and `build.json`;
//! - [`install`]: `cargo xtask install`;
//! - [`scaffold`]: `cargo xtask new`, a thin project that depends on the framework;
//! - [`shim`]: the per-plugin bridge crate with the plugin's identity compiled in;
//! - [`fsutil`]: replacing a folder so that a crash leaves the old or the new copy.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod bundle;
pub mod cargo;
pub mod cli;
pub mod dev;
pub mod elf;
pub mod fsutil;
pub mod install;
pub mod manifest;
pub mod resources;
pub mod scaffold;
pub mod shim;

use std::path::{Path, PathBuf};

/// The framework's checkout this tool was built from (the folder holding `bridge/`,
/// `shared/` and `scripts/`).
pub fn framework_root() -> PathBuf {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR"));
    scripts.parent().map(Path::to_path_buf).unwrap_or_else(|| scripts.join(".."))
}

/// The workspace `cargo xtask` runs in: the nearest folder from the current one up that
/// holds a `Cargo.toml` with a `[workspace]` table (a plugin project, or the framework's
/// checkout), else the current folder.
pub fn workspace_root() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut dir = start.as_path();
    loop {
        let manifest = dir.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]")) {
            return dir.to_path_buf();
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return start,
        }
    }
}
