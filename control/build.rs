//! Gives the module's descriptor a build id, so a developer (and the bridge's log) can
//! see which build of the control module is serving: the descriptor's version becomes
//! `<crate version>+<8 hex digits>`, a hash of everything the module is built from here
//! (`src/`, `presets/`, `Cargo.toml`) and of the enabled cargo features.

use std::path::{Path, PathBuf};

/// FNV-1a, 64-bit.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut paths = Vec::new();
    for dir in ["src", "presets"] {
        println!("cargo:rerun-if-changed={dir}");
        files(&root.join(dir), &mut paths);
    }
    println!("cargo:rerun-if-changed=Cargo.toml");
    paths.push(root.join("Cargo.toml"));
    paths.sort();
    let mut h = 0xcbf2_9ce4_8422_2325;
    for path in &paths {
        let relative = path.strip_prefix(&root).unwrap_or(path);
        h = fnv(h, relative.to_string_lossy().as_bytes());
        h = fnv(h, &[0]);
        h = fnv(h, &std::fs::read(path).unwrap_or_default());
        h = fnv(h, &[0]);
    }
    let mut features: Vec<String> =
        std::env::vars().filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_owned)).collect();
    features.sort();
    for f in &features {
        h = fnv(h, f.as_bytes());
        h = fnv(h, &[0]);
    }
    let id = (h ^ (h >> 32)) as u32;
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=TRIO_CONTROL_VERSION={version}+{id:08x}");
}
