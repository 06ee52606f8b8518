//! The per-plugin bridge library: a generated crate whose only code is
//! `trio_bridge::export_vst3!(PluginConfig { .. })` with the plugin's identity and buses
//! from `build.yaml`, so the factory reports what the bridge was built with and nothing
//! read at run time can change it.
//!
//! The crate lives in the plugin workspace's target folder,
//! `<target>/trio/bridges/<name>-<class id prefix>/`, and is its own (one-member)
//! workspace, built into the same target folder as the plugin's modules so the
//! framework's bridge library and its dependencies are compiled once and shared by every
//! plugin. It copies the plugin workspace's `Cargo.lock` (the same dependency versions)
//! and `[profile.*]` tables (the same build settings). Each generated crate has its own
//! package name, so bundling two plugins at once never mixes their libraries; a lock file
//! in its folder serialises two bundles of the same plugin.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::manifest::{Kind, LayoutName, Manifest};

/// A generated bridge crate, ready to build.
#[derive(Clone, Debug)]
pub struct Shim {
    /// Its folder.
    pub dir: PathBuf,
    /// Its `Cargo.toml`.
    pub manifest_path: PathBuf,
    /// Its package name.
    pub package: String,
}

/// Holds the generated crate's lock file while a bundle uses the crate.
pub struct ShimLock(std::fs::File);

impl Drop for ShimLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: `flock` on a file descriptor this value owns; unlocking has no other effect.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// A name fit for a package: lowercase letters, digits and `-`.
fn package_part(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// The `[profile.*]` tables of a workspace's `Cargo.toml`, as written there.
fn profile_tables(workspace_manifest: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(workspace_manifest) else { return String::new() };
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            inside = trimmed.starts_with("[profile.");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The Rust expression of the plugin's configuration.
fn config_expr(manifest: &Manifest, watch: Option<&Path>) -> String {
    let p = &manifest.plugin;
    let a = &manifest.audio;
    let mut class_id = String::new();
    for b in p.class_id.0 {
        let _ = write!(class_id, "0x{b:02X}, ");
    }
    let layouts: Vec<&str> = a
        .layouts
        .iter()
        .map(|l| match l {
            LayoutName::Mono => "trio_bridge::Layout::Mono",
            LayoutName::Stereo => "trio_bridge::Layout::Stereo",
        })
        .collect();
    let kind = match p.kind {
        Kind::Instrument => "trio_bridge::PluginKind::Instrument",
        Kind::Effect => "trio_bridge::PluginKind::Effect",
    };
    let watch = match watch {
        Some(path) => format!("Some({:?})", path.to_string_lossy()),
        None => "None".to_owned(),
    };
    format!(
        "trio_bridge::PluginConfig {{\n    name: {:?},\n    vendor: {:?},\n    url: {:?},\n    email: {:?},\n    \
         version: {:?},\n    class_id: [{}],\n    sub_categories: {:?},\n    kind: {kind},\n    layouts: &[{}],\n    \
         sidechain: {},\n    midi_input: {},\n    watch: {watch},\n}}",
        p.name,
        p.vendor,
        p.url,
        p.email,
        p.version,
        class_id.trim_end_matches(", "),
        p.sub_categories.join("|"),
        layouts.join(", "),
        a.sidechain,
        a.midi_input,
    )
}

/// Writes (or updates) the bridge crate for `manifest` under `target_dir`, and locks it
/// until the returned lock is dropped. `workspace_root` is the plugin workspace whose
/// `Cargo.lock` and profiles the crate copies; `watch` is the control library a
/// development bundle watches.
///
/// # Errors
/// The folder or a file cannot be written.
pub fn write(
    manifest: &Manifest,
    target_dir: &Path,
    workspace_root: &Path,
    watch: Option<&Path>,
) -> Result<(Shim, ShimLock)> {
    let cid = manifest.plugin.class_id.to_string();
    let part = package_part(&manifest.plugin.name);
    let part = if part.is_empty() { "plugin".to_owned() } else { part };
    let package = format!("trio-bridge-{part}-{}", cid[..8].to_ascii_lowercase());
    let dir = target_dir.join("trio").join("bridges").join(&package);
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .with_context(|| format!("cannot open {}", dir.join(".lock").display()))?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `flock` on a file descriptor we own; it blocks until the lock is free.
        let locked = unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_EX) };
        if locked != 0 {
            anyhow::bail!("cannot lock {}: {}", dir.display(), std::io::Error::last_os_error());
        }
    }
    let lock = ShimLock(lock_file);
    let bridge_dir = manifest.bridge.crate_dir.canonicalize().unwrap_or_else(|_| manifest.bridge.crate_dir.clone());
    let cargo_toml = format!(
        "# Generated by `cargo xtask bundle` from {}. Do not edit: it is rewritten on every bundle.\n\
         [package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [lib]\npath = \"src/lib.rs\"\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\ntrio-bridge = {{ path = {:?} }}\n\n\
         [workspace]\n\n{}",
        manifest.file.display(),
        bridge_dir.to_string_lossy(),
        profile_tables(&workspace_root.join("Cargo.toml")),
    );
    let lib_rs = format!(
        "//! The bridge library of {:?}, generated by `cargo xtask bundle` from {}. Do not edit.\n\n\
         trio_bridge::export_vst3!({});\n",
        manifest.plugin.name,
        manifest.file.display(),
        config_expr(manifest, watch)
    );
    write_if_changed(&dir.join("Cargo.toml"), &cargo_toml)?;
    write_if_changed(&dir.join("src/lib.rs"), &lib_rs)?;
    let lock_path = dir.join("Cargo.lock");
    let workspace_lock = workspace_root.join("Cargo.lock");
    if !lock_path.exists() && workspace_lock.is_file() {
        std::fs::copy(&workspace_lock, &lock_path)
            .with_context(|| format!("cannot copy {} to {}", workspace_lock.display(), lock_path.display()))?;
    }
    Ok((Shim { manifest_path: dir.join("Cargo.toml"), dir, package }, lock))
}

/// Writes `text` to `path` unless the file already holds it (so cargo sees no change).
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let mut file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_safe() {
        assert_eq!(package_part("TrioSynth"), "triosynth");
        assert_eq!(package_part("My Great  Delay_2"), "my-great-delay-2");
        assert_eq!(package_part("--"), "");
    }

    #[test]
    fn profiles_are_copied_as_written() {
        let dir = std::env::temp_dir().join(format!("trio-shim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("Cargo.toml");
        std::fs::write(&file, "[workspace]\nmembers = []\n\n[profile.release]\ndebug = 1\n\n[profile.dev.package.\"*\"]\nopt-level = 1\n\n[patch.crates-io]\n").unwrap();
        let profiles = profile_tables(&file);
        assert_eq!(profiles, "[profile.release]\ndebug = 1\n\n[profile.dev.package.\"*\"]\nopt-level = 1\n\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
