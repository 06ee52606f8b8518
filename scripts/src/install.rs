//! `cargo xtask install`: copy the bundle made by `cargo xtask bundle` to `~/.vst3/` (or
//! another folder), replacing an older copy safely.
//!
//! The bundle must exist: install never builds. It is copied to a hidden name in the
//! destination folder, then swapped with the installed copy by
//! [`crate::fsutil::replace_dir`], so a host scanning the folder sees the old or the new
//! bundle, never half of one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::bundle::{RESOURCES_DIR, bundle_path, default_out_dir};
use crate::fsutil;
use crate::manifest::Manifest;
use crate::resources::BuildInfo;

/// What `cargo xtask install` was asked to do.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// The `build.yaml` naming the plugin.
    pub manifest: PathBuf,
    /// The folder holding the bundle (`cargo xtask bundle --out`); `None`: as for
    /// `cargo xtask bundle`, [`default_out_dir`].
    pub out_dir: Option<PathBuf>,
    /// The folder to install into; `None`: `~/.vst3`.
    pub dest: Option<PathBuf>,
    /// Require a bundle built with `--release`.
    pub release: bool,
}

/// The user's VST3 folder on Linux: `$HOME/.vst3`.
///
/// # Errors
/// `HOME` is not set.
pub fn default_dest() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set: give the folder to install into with --dest")?;
    Ok(Path::new(&home).join(".vst3"))
}

/// Installs the bundle; returns where it now is.
///
/// # Errors
/// The manifest is invalid, the bundle is missing (or is a debug build and `release` was
/// asked for), or copying fails (the installed copy, if any, is then unchanged).
pub fn install(options: &InstallOptions) -> Result<PathBuf> {
    let manifest = Manifest::load(&options.manifest)?;
    let out_dir = match &options.out_dir {
        Some(dir) => dir.clone(),
        None => default_out_dir(&manifest)?,
    };
    let bundle = bundle_path(&out_dir, &manifest.plugin.name);
    let flag = if options.release { " --release" } else { "" };
    if !bundle.is_dir() {
        bail!("there is no bundle at {}: run `cargo xtask bundle{flag}` first", bundle.display());
    }
    let info_path = bundle.join(RESOURCES_DIR).join("build.json");
    let info: BuildInfo =
        std::fs::read(&info_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).with_context(|| {
            format!(
                "{} is missing or unreadable: rebuild the bundle with `cargo xtask bundle{flag}`",
                info_path.display()
            )
        })?;
    if options.release && info.profile != "release" {
        bail!(
            "the bundle at {} is a {} build, and --release asks for a release build: run `cargo xtask bundle \
             --release` first",
            bundle.display(),
            info.profile
        );
    }

    let dest_dir = match &options.dest {
        Some(dir) => dir.clone(),
        None => default_dest()?,
    };
    std::fs::create_dir_all(&dest_dir).with_context(|| format!("cannot create {}", dest_dir.display()))?;
    let installed = dest_dir.join(bundle.file_name().context("bundle path has no name")?);
    fsutil::sweep_stale(&installed);
    let tmp = fsutil::scratch_path(&installed, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let result = fsutil::copy_dir(&bundle, &tmp, &[]).and_then(|()| fsutil::replace_dir(&tmp, &installed));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.with_context(|| format!("installing {} into {} failed", bundle.display(), dest_dir.display()))?;
    Ok(installed)
}
