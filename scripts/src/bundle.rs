//! `cargo xtask bundle`: build the plugin's engine and control module, check them, build
//! the plugin's bridge library with its identity compiled in, and assemble `<Name>.vst3`.
//!
//! ```text
//! <out>/<Name>.vst3/Contents/x86_64-linux/<Name>.so      the bridge
//!                                        /rt_engine.so
//!                                        /control.so
//!                  /Contents/Resources/moduleinfo.json   for hosts
//!                                     /build.json        for the bridge
//! ```
//!
//! Checks, all made before anything is written, and all reported together:
//! - each library exports exactly the symbols `build.yaml` lists, or the SDK's when it
//!   lists none (see [`crate::elf`] for what counts as an export);
//! - the engine's and the control module's descriptors carry this tool's magic, ABI
//!   version and layout hash, their own kind (engine 1, control 2), the allocation policy
//!   `build.yaml` declares, and the same plugin area. The bridge has no descriptor.
//!
//! The bridge library is built last, from a crate generated for the plugin
//! ([`crate::shim`]) with the plugin's identity, buses and (for development bundles of a
//! `hot_reload` control module) the control library to watch compiled in.
//!
//! The new bundle is assembled under a hidden name beside the old one and swapped in
//! with [`crate::fsutil::replace_dir`], so a failed build or check, or a crash, leaves the
//! previous bundle as it was.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use trio::abi::{ABI_VERSION, DESCRIPTOR_MAGIC, ModuleDescriptor, alloc_policy, module_kind};

use crate::cargo::{self, CrateInfo};
use crate::elf::Library;
use crate::fsutil;
use crate::manifest::{Manifest, ModuleSpec, Role};
use crate::resources::{BuildInfo, ModuleInfo};

/// What `cargo xtask bundle` was asked to do.
#[derive(Clone, Debug)]
pub struct BundleOptions {
    /// The `build.yaml` to read (crate paths in it are relative to its folder).
    pub manifest: PathBuf,
    /// Build with `--release`.
    pub release: bool,
    /// The folder to put `<Name>.vst3` in; `None` means `bundle/` in the bridge's target
    /// folder (normally `target/bundle`).
    pub out_dir: Option<PathBuf>,
}

/// One library of a finished bundle.
#[derive(Clone, Debug)]
pub struct BundledModule {
    /// Which library.
    pub role: Role,
    /// File name in `Contents/x86_64-linux/`.
    pub file_name: String,
    /// The built library it is a copy of.
    pub source: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Number of exported symbols.
    pub export_count: usize,
    /// Allocation policy from `build.yaml` (checked against the descriptor for modules).
    pub allocation: crate::manifest::Allocation,
}

/// A finished bundle.
#[derive(Clone, Debug)]
pub struct BundleReport {
    /// `<out>/<Name>.vst3`.
    pub path: PathBuf,
    /// The three libraries, in bundle order.
    pub modules: Vec<BundledModule>,
}

impl std::fmt::Display for BundleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bundle: {}", self.path.display())?;
        for m in &self.modules {
            write!(
                f,
                "\n  {:<24} {:>10} bytes  {:>2} exports  allocation {}",
                m.file_name, m.size, m.export_count, m.allocation
            )?;
        }
        Ok(())
    }
}

/// The binary folder inside a bundle.
pub const BINARY_DIR: &str = "Contents/x86_64-linux";
/// The resources folder inside a bundle.
pub const RESOURCES_DIR: &str = "Contents/Resources";

/// The folder in the target folder that bundles go to by default.
pub const BUNDLE_DIR: &str = "bundle";

/// The default folder for bundles: `bundle/` in the target folder of the engine's
/// workspace (`target/bundle`, or under `CARGO_TARGET_DIR` when that is set).
///
/// # Errors
/// `cargo metadata` fails for the engine's crate.
pub fn default_out_dir(manifest: &Manifest) -> Result<PathBuf> {
    Ok(cargo::crate_info(&manifest.rt_engine.crate_dir)?.target_directory.join(BUNDLE_DIR))
}

/// Where `cargo xtask bundle` puts the bundle of a plugin named `name`.
pub fn bundle_path(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(format!("{name}.vst3"))
}

/// Builds, checks and assembles the bundle; see the [module docs](self).
///
/// # Errors
/// The manifest is invalid, a build fails, a library does not match `build.yaml`, or the
/// bundle cannot be written. In every case the previous bundle is left untouched.
pub fn bundle(options: &BundleOptions) -> Result<BundleReport> {
    let manifest = Manifest::load(&options.manifest)?;
    let crates = crate_infos(&manifest)?;
    let built = cargo::build_libraries(&crates.iter().collect::<Vec<_>>(), options.release)
        .context("no bundle was written; the previous one, if any, is unchanged")?;

    let mut libraries = Vec::new();
    let mut problems = Vec::new();
    let mut areas = Vec::new();
    for (module, info) in [&manifest.rt_engine, &manifest.control].into_iter().zip(&crates) {
        let path = built.get(&info.manifest_path).context("cargo did not report a built library")?;
        let library = Library::read(path)?;
        problems.extend(check_library(&manifest, module, &library)?);
        if let Some(symbol) = module.role.descriptor_symbol()
            && library.exports()?.contains(symbol)
        {
            areas.push((module.role, library.descriptor(symbol)?.area));
        }
        libraries.push(library);
    }
    if let [(_, engine), (_, control)] = areas.as_slice()
        && engine != control
    {
        problems.push(format!(
            "the engine was built with a plugin area of hash {:#018x} ({} bytes) and the control module with \
             {:#018x} ({} bytes): both must name the same area type (from the crate they share) as their `type Area`",
            engine.hash, engine.size, control.hash, control.size
        ));
    }
    if !problems.is_empty() {
        bail!(
            "the built libraries do not match {} ({} problem{}); no bundle was written and the previous one, if \
             any, is unchanged:\n  - {}",
            manifest.file.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n  - ")
        );
    }

    let target = crates[0].target_directory.clone();
    let watch = if !options.release && manifest.control.hot_reload {
        let control = &libraries[1].path;
        Some(control.canonicalize().with_context(|| format!("cannot resolve {}", control.display()))?)
    } else {
        None
    };
    let (shim, _lock) = crate::shim::write(&manifest, &target, &crates[0].workspace_root, watch.as_deref())?;
    let bridge_path = cargo::build_shim(&shim, &target, options.release)
        .context("no bundle was written; the previous one, if any, is unchanged")?;
    let bridge = Library::read(&bridge_path)?;
    let bridge_problems = check_library(&manifest, &manifest.bridge, &bridge)?;
    if !bridge_problems.is_empty() {
        bail!(
            "the bridge library does not match {}; no bundle was written:\n  - {}",
            manifest.file.display(),
            bridge_problems.join("\n  - ")
        );
    }
    libraries.insert(0, bridge);

    let out_dir = match &options.out_dir {
        Some(dir) => dir.clone(),
        None => target.join(BUNDLE_DIR),
    };
    assemble(&manifest, &libraries, &out_dir, options.release, watch.as_deref())
}

/// Asks cargo about the engine's and the control module's crates and checks each builds a
/// shared library.
fn crate_infos(manifest: &Manifest) -> Result<Vec<CrateInfo>> {
    [&manifest.rt_engine, &manifest.control]
        .into_iter()
        .map(|module| {
            let info = cargo::crate_info(&module.crate_dir).with_context(|| {
                format!("{}: modules.{}.crate {:?}", manifest.at(module.crate_pos), module.role, module.crate_path)
            })?;
            if !info.lib_crate_types.iter().any(|t| t == "cdylib") {
                bail!(
                    "{}: modules.{}.crate is package `{}`, which does not build a shared library: add \
                     `crate-type = [\"cdylib\", \"rlib\"]` under [lib] in {}",
                    manifest.at(module.crate_pos),
                    module.role,
                    info.package,
                    info.manifest_path.display()
                );
            }
            Ok(info)
        })
        .collect()
}

/// Checks one built library against its `build.yaml` entry: exports, and for the engine
/// and the control module the descriptor. Returns every mismatch, each naming the
/// library, the symbol or the values, and what to do.
///
/// # Errors
/// The library's symbol table cannot be read.
pub fn check_library(manifest: &Manifest, module: &ModuleSpec, library: &Library) -> Result<Vec<String>> {
    let key = module.role.key();
    let lib = library.path.display();
    let mut problems = Vec::new();
    let exports = library.exports()?;
    // The other module's descriptor instead of this one's: the crates are swapped. One
    // message says so; the exports would all be wrong, which says nothing more.
    let other = match module.role {
        Role::RtEngine => Some((Role::Control, module_kind::ENGINE)),
        Role::Control => Some((Role::RtEngine, module_kind::CONTROL)),
        Role::Bridge => None,
    };
    if let Some((other_role, kind)) = other
        && let Some(other_symbol) = other_role.descriptor_symbol()
        && exports.contains(other_symbol)
        && !module.role.descriptor_symbol().is_some_and(|own| exports.contains(own))
    {
        let found = library.descriptor(other_symbol)?;
        problems.push(wrong_kind(&manifest.at(module.crate_pos), &lib.to_string(), key, found.kind, kind));
        return Ok(problems);
    }
    let how = if module.role == Role::Bridge {
        "the bridge exports them through `trio_bridge::export_vst3!`".to_owned()
    } else if module.exports_listed {
        format!(
            "define it in crate `{}` (the SDK's export macro does), or remove it from modules.{key}.exports",
            module.crate_path
        )
    } else {
        let macro_name = if module.role == Role::RtEngine { "trio::export_engine!" } else { "trio::export_control!" };
        format!(
            "call `{macro_name}(YourType)` once in crate `{}`, built against the same Trio SDK as this tool",
            module.crate_path
        )
    };
    for (name, pos) in module.exports.iter().zip(&module.export_pos) {
        if !exports.contains(name) {
            problems.push(format!(
                "{}: `{name}` is expected in modules.{key} but not exported by {lib}: {how}",
                manifest.at(*pos)
            ));
        }
    }
    for name in &exports {
        if !module.exports.contains(name) {
            let fix = if module.exports_listed {
                format!("add it to modules.{key}.exports, or stop exporting it from crate `{}`", module.crate_path)
            } else {
                format!(
                    "stop exporting it from crate `{}` (only the SDK's exports belong in a module; a test-only \
                     feature may have been left on)",
                    module.crate_path
                )
            };
            problems.push(format!(
                "{}: {lib} exports `{name}`, which modules.{key} does not expect: {fix}",
                manifest.at(module.exports_pos)
            ));
        }
    }
    // A missing descriptor was reported above as a missing export.
    if let (Some(kind), Some(symbol)) = (module.role.descriptor_kind(), module.role.descriptor_symbol())
        && exports.contains(symbol)
    {
        problems.extend(check_descriptor(
            manifest,
            module,
            kind,
            symbol,
            &library.descriptor(symbol)?,
            &lib.to_string(),
        ));
    }
    Ok(problems)
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        module_kind::ENGINE => "engine",
        module_kind::CONTROL => "control",
        _ => "unknown",
    }
}

fn policy_name(policy: u32) -> &'static str {
    match policy {
        alloc_policy::FORBID => "FORBID",
        alloc_policy::ALLOW => "ALLOW",
        _ => "unknown",
    }
}

fn check_descriptor(
    manifest: &Manifest,
    module: &ModuleSpec,
    kind: u32,
    symbol: &str,
    d: &ModuleDescriptor,
    lib: &str,
) -> Vec<String> {
    let key = module.role.key();
    let mut problems = Vec::new();
    if d.magic != DESCRIPTOR_MAGIC {
        problems.push(format!(
            "{lib}: `{symbol}` does not start with the magic {:?} (found {:?}): it is not a module \
             descriptor; export the module with the SDK's macro",
            String::from_utf8_lossy(&DESCRIPTOR_MAGIC),
            String::from_utf8_lossy(&d.magic)
        ));
        return problems;
    }
    if d.abi_version != ABI_VERSION {
        problems.push(format!(
            "{lib}: the module was built for ABI version {}, but this build tool for version {ABI_VERSION}: both \
             must be built from the same Trio SDK; run `cargo xtask bundle` again so cargo rebuilds both",
            d.abi_version
        ));
    }
    if d.layout_hash != trio::layout::LAYOUT_HASH {
        problems.push(format!(
            "{lib}: the module's layout hash is {:#018x}, but this build tool's is {:#018x}: they were built from \
             different versions of the Trio SDK; run `cargo xtask bundle` again so cargo rebuilds both",
            d.layout_hash,
            trio::layout::LAYOUT_HASH
        ));
    }
    if d.kind != kind {
        problems.push(wrong_kind(&manifest.at(module.crate_pos), lib, key, d.kind, kind));
    }
    if d.alloc_policy != module.allocation.policy() {
        problems.push(format!(
            "{}: modules.{key}.allocation is `{}`, but {lib}'s descriptor declares alloc_policy {} ({}): make them \
             agree (change build.yaml, or check that crate `{}` uses the right export macro)",
            manifest.at(module.allocation_pos),
            module.allocation,
            d.alloc_policy,
            policy_name(d.alloc_policy),
            module.crate_path
        ));
    }
    problems
}

/// Writes the bundle under a hidden name in `out_dir`, then swaps it in. `libraries` are
/// the bridge, the engine and the control module.
fn assemble(
    manifest: &Manifest,
    libraries: &[Library],
    out_dir: &Path,
    release: bool,
    watch: Option<&Path>,
) -> Result<BundleReport> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let name = &manifest.plugin.name;
    let final_path = bundle_path(out_dir, name);
    fsutil::sweep_stale(&final_path);
    let tmp = fsutil::scratch_path(&final_path, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let result = write_bundle(manifest, libraries, &tmp, release, watch).and_then(|modules| {
        fsutil::replace_dir(&tmp, &final_path)?;
        Ok(BundleReport { path: final_path.clone(), modules })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_bundle(
    manifest: &Manifest,
    libraries: &[Library],
    root: &Path,
    release: bool,
    watch: Option<&Path>,
) -> Result<Vec<BundledModule>> {
    let binaries = root.join(BINARY_DIR);
    let resources = root.join(RESOURCES_DIR);
    for dir in [&binaries, &resources] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut modules = Vec::new();
    for (module, library) in manifest.modules().into_iter().zip(libraries) {
        let file_name = module.role.file_name(&manifest.plugin.name);
        let dst = binaries.join(&file_name);
        std::fs::copy(&library.path, &dst)
            .with_context(|| format!("cannot copy {} to {}", library.path.display(), dst.display()))?;
        fsutil::sync_file(&dst)?;
        modules.push(BundledModule {
            role: module.role,
            file_name,
            source: library.path.clone(),
            size: library.size(),
            export_count: module.exports.len(),
            allocation: module.allocation,
        });
    }
    write_json(&resources.join("moduleinfo.json"), &ModuleInfo::new(manifest))?;
    let mut build_info = BuildInfo::new(manifest, release);
    build_info.modules.control.watch = watch.map(|w| w.to_string_lossy().into_owned());
    write_json(&resources.join("build.json"), &build_info)?;
    Ok(modules)
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising JSON")?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fsutil::sync_file(path)
}

/// The problem of a library whose descriptor says module kind `found` where `modules.key`
/// needs `kind` (the engine and control crates swapped, usually).
fn wrong_kind(at: &str, lib: &str, key: &str, found: u32, kind: u32) -> String {
    format!(
        "{at}: {lib}'s descriptor says module kind {found} ({}), but modules.{key} needs kind {kind} ({}): point \
         modules.{key}.crate at the {} crate",
        kind_name(found),
        kind_name(kind),
        kind_name(kind)
    )
}
