//! The build tool (`cargo xtask bundle | install | new`) on the real workspace: a good
//! `build.yaml` gives a complete bundle, and every bad input a user can give gets a clear
//! message and never costs the bundle built before it.
//!
//! Build the workspace first (`cargo xtask test` does): the bundle tests call the tool's
//! library, whose `cargo build` then finds the normal `target/` build fresh. Each test
//! writes its bundle into a folder of its own.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::Result;
use integration::{patch_symbol_u32, patch_symbol_u64, scratch_dir, target_dir};
use serde_json::Value;
use trio::abi::ModuleDescriptor;
use trio_xtask::bundle::{BundleOptions, BundleReport, bundle, check_library};
use trio_xtask::elf::Library;
use trio_xtask::install::{InstallOptions, install};
use trio_xtask::manifest::Manifest;
use trio_xtask::scaffold::{Framework, Kind, NewOptions, new_project};

const DESCRIPTOR_SYMBOL: &str = trio::abi::engine::DESCRIPTOR;

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        Self(scratch_dir(tag).expect("creating a scratch folder"))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workspace() -> PathBuf {
    trio_xtask::framework_root()
}

fn real_yaml() -> String {
    std::fs::read_to_string(workspace().join("build.yaml")).expect("reading build.yaml")
}

/// `crate: <the workspace's folder of `name`>`, as a manifest in a scratch folder names it.
fn krate(name: &str) -> String {
    format!("crate: {}", workspace().join(name).display())
}

/// The debug build of one crate's library, as the workspace build left it.
fn built_library(crate_name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(format!("lib{crate_name}.so"));
    path.canonicalize().unwrap_or(path)
}

/// A `build.yaml` that bundles, in a scratch folder: the real plugin with absolute crate
/// paths, and every optional field written out (so tests can break each).
fn good_yaml() -> String {
    let list = |exports: &[&str]| exports.iter().map(|e| format!("      - {e}\n")).collect::<String>();
    format!(
        "plugin:\n  name: TrioSynth\n  vendor: Trio Audio\n  url: https://example.com/triosynth\n  \
         email: support@example.com\n  version: 0.1.0\n  class_id: 6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061\n  \
         kind: instrument\n  sub_categories: [Instrument, Synth]\naudio:\n  layouts: [stereo]\n  \
         midi_input: true\nmodules:\n  rt_engine:\n    {}\n    allocation: forbid\n    exports:\n{}  \
         control:\n    {}\n    allocation: allow\n    hot_reload: true\n    exports:\n{}",
        krate("rt_engine"),
        list(trio::abi::engine::EXPORTS),
        krate("control"),
        list(trio::abi::control::EXPORTS),
    )
}

/// `text` with `from` replaced by `to`, once; `from` must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the manifest has no {from:?}");
    text.replacen(from, to, 1)
}

fn bundle_with(manifest: &Path, out: &Path) -> Result<BundleReport> {
    bundle(&BundleOptions { manifest: manifest.to_owned(), release: false, out_dir: Some(out.to_owned()) })
}

/// Every entry under `dir` with its size, modification time and inode.
type Snapshot = BTreeMap<PathBuf, (u64, SystemTime, u64)>;

fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, into: &mut Snapshot) {
        for entry in std::fs::read_dir(dir).expect("reading a folder").flatten() {
            let meta = entry.metadata().expect("stat");
            let path = entry.path();
            into.insert(
                path.strip_prefix(root).unwrap().to_owned(),
                (meta.len(), meta.modified().unwrap(), meta.ino()),
            );
            if meta.is_dir() {
                walk(root, &path, into);
            }
        }
    }
    let mut snap = Snapshot::new();
    walk(dir, dir, &mut snap);
    snap
}

/// A scratch folder with a good bundle already built in `out/`.
struct Previous {
    scratch: Scratch,
    out: PathBuf,
    before: Snapshot,
}

impl Previous {
    fn build() -> Self {
        let scratch = Scratch::new("bundle");
        let out = scratch.path().join("out");
        let manifest = scratch.path().join("good.yaml");
        std::fs::write(&manifest, good_yaml()).unwrap();
        let report = bundle_with(&manifest, &out).unwrap_or_else(|e| panic!("the good manifest must bundle: {e:#}"));
        assert!(report.path.join("Contents/x86_64-linux/TrioSynth.so").is_file());
        let before = snapshot(&out);
        Self { scratch, out, before }
    }

    /// Bundles `yaml` into the same folder; it must fail, and the previous bundle must be
    /// exactly as it was. Returns the error message.
    fn bundle_fails(&self, yaml: &str) -> String {
        let manifest = self.scratch.path().join("build.yaml");
        std::fs::write(&manifest, yaml).unwrap();
        let error = match bundle_with(&manifest, &self.out) {
            Ok(report) => panic!("bundling must fail, but made {}", report.path.display()),
            Err(e) => format!("{e:#}"),
        };
        assert_eq!(snapshot(&self.out), self.before, "the previous bundle changed after: {error}");
        error
    }

    fn manifest(&self) -> String {
        self.scratch.path().join("build.yaml").display().to_string()
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "expected {part:?} in:\n{text}");
    }
}

/// The 1-based line of `build.yaml` text that contains `needle`.
fn line_of(yaml: &str, needle: &str) -> usize {
    yaml.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?}")) + 1
}

// ---- Bad input: one test per case ----------------------------------------------------

#[test]
fn malformed_yaml_is_reported_at_its_line() {
    let previous = Previous::build();
    // An unclosed quote: the parser notices on the next line.
    let yaml = edit(&good_yaml(), "  vendor: Trio Audio", "  vendor: \"Trio Audio");
    let next_line = line_of(&yaml, "  vendor:") + 1;
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[&format!("{}:{next_line}:3: ", previous.manifest()), "quoted scalar", &format!("{next_line:>5} |   url:")],
    );
}

#[test]
fn a_missing_field_is_named() {
    let previous = Previous::build();
    let yaml = good_yaml();
    let yaml = edit(&yaml, "  vendor: Trio Audio\n", "");
    let error = previous.bundle_fails(&yaml);
    assert_contains(&error, &[&previous.manifest(), "missing field `vendor`"]);
}

#[test]
fn a_mistyped_field_name_lists_the_valid_names() {
    let previous = Previous::build();
    let yaml = good_yaml();
    let line = line_of(&yaml, "  rt_engine:") + 3;
    let yaml = edit(&yaml, "    allocation: forbid\n    exports:", "    allocation: forbid\n    exprots:");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            &format!("{}:{line}:5: modules.rt_engine: unknown field `exprots`", previous.manifest()),
            "expected one of crate, allocation, exports",
        ],
    );
}

#[test]
fn an_invalid_class_id_is_refused_with_its_position() {
    let previous = Previous::build();
    let yaml = good_yaml();
    let line = line_of(&yaml, "class_id:");
    let yaml = edit(&yaml, "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061", "6A3F1C2E9B7D4E6F8A0B1C2D3E4F50");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            &format!("{}:{line}:13: plugin.class_id", previous.manifest()),
            "\"6A3F1C2E9B7D4E6F8A0B1C2D3E4F50\"",
            "30 hex digits",
            "exactly 32 hex digits",
        ],
    );
}

#[test]
fn a_duplicate_export_is_refused_with_both_lines() {
    let previous = Previous::build();
    let yaml = good_yaml();
    let first = line_of(&yaml, "- trio_engine_reset");
    let yaml = edit(&yaml, "      - trio_engine_reset\n", "      - trio_engine_reset\n      - trio_engine_reset\n");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            &format!(
                "{}:{}:9: modules.rt_engine.exports lists `trio_engine_reset` twice",
                previous.manifest(),
                first + 1
            ),
            &format!("(first at line {first})"),
        ],
    );
}

#[test]
fn a_module_crate_path_that_does_not_exist_is_named() {
    let previous = Previous::build();
    let yaml = edit(&good_yaml(), &krate("control"), "crate: controls/missing");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            "modules.control.crate: the folder \"controls/missing\" does not exist",
            &previous.scratch.path().join("controls/missing").display().to_string(),
            "relative to the folder of build.yaml",
        ],
    );
}

#[test]
fn an_export_declared_but_not_in_the_library_names_symbol_and_library() {
    let previous = Previous::build();
    let yaml =
        edit(&good_yaml(), "      - trio_engine_reset\n", "      - trio_engine_reset\n      - trio_engine_flush\n");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            "`trio_engine_flush` is expected in modules.rt_engine but not exported by",
            &built_library("rt_engine").display().to_string(),
            "remove it from modules.rt_engine.exports",
        ],
    );
}

#[test]
fn an_export_the_manifest_does_not_declare_is_refused() {
    let previous = Previous::build();
    let yaml = edit(&good_yaml(), "      - trio_control_tick\n", "");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            &built_library("control").display().to_string(),
            "exports `trio_control_tick`, which modules.control does not expect",
            "add it to modules.control.exports",
        ],
    );
}

#[test]
fn a_field_of_no_section_is_refused_with_the_valid_names() {
    let previous = Previous::build();
    let yaml = format!("{}shared_memory:\n  size: 65536\n", good_yaml());
    let error = previous.bundle_fails(&yaml);
    assert_contains(&error, &["unknown field `shared_memory`", "plugin, audio, modules"]);
}

#[test]
fn a_sidechain_on_an_instrument_is_refused() {
    let previous = Previous::build();
    let yaml = edit(&good_yaml(), "  midi_input: true\n", "  midi_input: true\n  sidechain: true\n");
    let error = previous.bundle_fails(&yaml);
    assert_contains(&error, &["audio.sidechain is for effects; this plugin's kind (line 8) is instrument"]);
}

#[test]
fn a_failing_cargo_build_is_reported_with_the_compiler_error() {
    let previous = Previous::build();
    // A scratch module crate with a syntax error (its own workspace, so the real one is
    // not touched).
    let broken = previous.scratch.path().join("broken_control");
    std::fs::create_dir_all(broken.join("src")).unwrap();
    std::fs::write(
        broken.join("Cargo.toml"),
        "[package]\nname = \"broken_control\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\n\
         crate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(broken.join("src/lib.rs"), "#[no_mangle]\npub extern \"C\" fn control_tick( -> i32 { 0 }\n")
        .unwrap();
    let yaml = edit(&good_yaml(), &krate("control"), &format!("crate: {}", broken.display()));
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            "no bundle was written; the previous one, if any, is unchanged",
            "building the modules failed: `cargo build -p broken_control --lib`",
            "src/lib.rs:2",
        ],
    );
}

#[test]
fn an_engine_that_may_allocate_is_refused() {
    let previous = Previous::build();
    let yaml = edit(&good_yaml(), "    allocation: forbid", "    allocation: allow");
    let error = previous.bundle_fails(&yaml);
    assert_contains(&error, &["modules.rt_engine.allocation must be `forbid`"]);
}

#[test]
fn an_allocation_policy_the_descriptor_contradicts_is_refused() {
    let previous = Previous::build();
    let yaml = edit(&good_yaml(), "    allocation: allow", "    allocation: forbid");
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            "modules.control.allocation is `forbid`",
            &format!("{}'s descriptor declares alloc_policy 2 (ALLOW)", built_library("control").display()),
        ],
    );
}

#[test]
fn a_plugin_name_that_is_no_file_name_is_refused() {
    let previous = Previous::build();
    let yaml = edit(&good_yaml(), "  name: TrioSynth", "  name: Trio/Synth");
    let error = previous.bundle_fails(&yaml);
    assert_contains(&error, &["plugin.name \"Trio/Synth\" cannot be used as the bundle's file name", "'/'"]);
}

#[test]
fn swapped_module_crates_are_refused_by_descriptor_kind() {
    let previous = Previous::build();
    let yaml = good_yaml();
    let yaml = edit(&yaml, &krate("rt_engine"), "crate: SWAP");
    let yaml = edit(&yaml, &krate("control"), &krate("rt_engine"));
    let yaml = edit(&yaml, "crate: SWAP", &krate("control"));
    // Each list is now the other module's: leave the lists out, so the kinds are checked.
    let yaml: String = yaml
        .lines()
        .filter(|l| !l.starts_with("      - ") && !l.contains("exports:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let error = previous.bundle_fails(&yaml);
    assert_contains(
        &error,
        &[
            &format!(
                "{}'s descriptor says module kind 2 (control), but modules.rt_engine needs kind 1 (engine)",
                built_library("control").display()
            ),
            &format!(
                "{}'s descriptor says module kind 1 (engine), but modules.control needs kind 2 (control)",
                built_library("rt_engine").display()
            ),
        ],
    );
}

// ---- Descriptor checks on patched copies of the real libraries ----------------------

fn patched_engine(scratch: &Scratch, patch: impl FnOnce(&Path) -> Result<()>) -> Vec<String> {
    let copy = scratch.path().join("librt_engine.so");
    std::fs::copy(built_library("rt_engine"), &copy).unwrap();
    patch(&copy).unwrap();
    let manifest = Manifest::parse(&good_yaml(), Path::new("build.yaml"), &workspace()).unwrap();
    check_library(&manifest, &manifest.rt_engine, &Library::read(&copy).unwrap()).unwrap()
}

#[test]
fn a_module_built_with_another_layout_is_refused_with_both_hashes() {
    let scratch = Scratch::new("descriptor");
    let offset = core::mem::offset_of!(ModuleDescriptor, layout_hash);
    let problems = patched_engine(&scratch, |p| patch_symbol_u64(p, DESCRIPTOR_SYMBOL, offset, 0x1234_5678_9ABC_DEF0));
    let text = problems.join("\n");
    assert_contains(
        &text,
        &["layout hash is 0x123456789abcdef0", &format!("this build tool's is {:#018x}", trio::layout::LAYOUT_HASH)],
    );
}

#[test]
fn a_module_built_for_another_abi_version_is_refused() {
    let scratch = Scratch::new("descriptor");
    let offset = core::mem::offset_of!(ModuleDescriptor, abi_version);
    let problems = patched_engine(&scratch, |p| patch_symbol_u32(p, DESCRIPTOR_SYMBOL, offset, 99));
    assert_contains(
        &problems.join("\n"),
        &[&format!("built for ABI version 99, but this build tool for version {}", trio::abi::ABI_VERSION)],
    );
}

#[test]
fn a_descriptor_without_its_magic_is_refused() {
    let scratch = Scratch::new("descriptor");
    let problems = patched_engine(&scratch, |p| patch_symbol_u32(p, DESCRIPTOR_SYMBOL, 0, 0));
    assert_contains(&problems.join("\n"), &["does not start with the magic \"TRIOMOD\\0\""]);
}

#[test]
fn the_unpatched_engine_passes_every_check() {
    let scratch = Scratch::new("descriptor");
    assert_eq!(patched_engine(&scratch, |_| Ok(())), Vec::<String>::new());
}

// ---- A good bundle --------------------------------------------------------------------

#[test]
fn a_good_manifest_gives_a_complete_bundle() -> Result<()> {
    let scratch = Scratch::new("bundle");
    let out = scratch.path().join("out");
    let manifest_path = scratch.path().join("build.yaml");
    std::fs::write(&manifest_path, good_yaml())?;
    let report = bundle_with(&manifest_path, &out)?;
    let manifest = Manifest::load(&manifest_path)?;

    assert_eq!(report.path, out.join("TrioSynth.vst3"));
    let binaries = report.path.join("Contents/x86_64-linux");
    let files: Vec<&str> = report.modules.iter().map(|m| m.file_name.as_str()).collect();
    assert_eq!(files, ["TrioSynth.so", trio_bridge::ENGINE_FILE, trio_bridge::CONTROL_FILE]);
    // The normal `target/` build is the one bundled.
    assert_eq!(report.modules[1].source, built_library("rt_engine"));
    assert_eq!(report.modules[2].source, built_library("control"));
    for module in &report.modules {
        let bundled = std::fs::read(binaries.join(&module.file_name))?;
        assert!(bundled == std::fs::read(&module.source)?, "{} is not a copy of {:?}", module.file_name, module.source);
        assert_eq!(module.size, bundled.len() as u64);
    }
    let shown = report.to_string();
    assert_contains(&shown, &[&report.path.display().to_string(), "rt_engine.so", "exports  allocation forbid"]);
    assert_eq!(report.modules[2].export_count, manifest.control.exports.len());

    let info: Value = serde_json::from_slice(&std::fs::read(report.path.join("Contents/Resources/moduleinfo.json"))?)?;
    assert_eq!(info["Name"], "TrioSynth");
    assert_eq!(info["Version"], "0.1.0");
    assert_eq!(info["Factory Info"]["Vendor"], "Trio Audio");
    assert_eq!(info["Factory Info"]["E-Mail"], "support@example.com");
    assert_eq!(info["Factory Info"]["Flags"]["Unicode"], true);
    let processor = &info["Classes"][0];
    assert_eq!(processor["CID"], "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061");
    assert_eq!(processor["Category"], "Audio Module Class");
    assert_eq!(processor["Sub Categories"], serde_json::json!(["Instrument", "Synth"]));
    assert_eq!(processor["Class Flags"], 1);
    assert_eq!(processor["Cardinality"], 2147483647);
    assert_eq!(processor["SDKVersion"], "VST 3.7.9");
    // One class: the plugin object is its own controller.
    assert_eq!(info["Classes"].as_array().map(Vec::len), Some(1));

    let build: Value = serde_json::from_slice(&std::fs::read(report.path.join("Contents/Resources/build.json"))?)?;
    assert_eq!(build["format"], 2);
    assert_eq!(build["plugin"]["kind"], "instrument");
    assert_eq!(build["plugin"]["layouts"], serde_json::json!(["stereo"]));
    assert_eq!(build["profile"], "debug");
    assert_eq!(build["plugin"]["processor_cid"], processor["CID"]);
    assert_eq!(build["abi"]["layout_hash"], trio::layout::LAYOUT_HASH);
    assert_eq!(build["modules"]["bridge"]["file"], "TrioSynth.so");
    assert_eq!(build["modules"]["rt_engine"]["file"], trio_bridge::ENGINE_FILE);
    assert_eq!(build["modules"]["rt_engine"]["kind"], 1);
    assert_eq!(build["modules"]["control"]["hot_reload"], true);
    assert_eq!(build["modules"]["control"]["allocation"], "allow");
    assert_eq!(build["modules"]["control"]["exports"], serde_json::json!(manifest.control.exports));
    // The bridge library is the plugin's own build, with its identity compiled in.
    assert!(
        report.modules[0].source.to_string_lossy().contains("trio_bridge_triosynth"),
        "{:?}",
        report.modules[0].source
    );
    assert_eq!(
        Library::read(&binaries.join("TrioSynth.so"))?.exports()?.into_iter().collect::<Vec<_>>(),
        trio_xtask::manifest::BRIDGE_EXPORTS
    );

    // Bundling again replaces the bundle and leaves nothing else behind.
    std::fs::write(&manifest_path, edit(&good_yaml(), "version: 0.1.0", "version: 0.2.0"))?;
    let again = bundle_with(&manifest_path, &out)?;
    assert_eq!(again.path, report.path);
    let info: Value = serde_json::from_slice(&std::fs::read(again.path.join("Contents/Resources/moduleinfo.json"))?)?;
    assert_eq!(info["Version"], "0.2.0");
    let entries: Vec<_> = std::fs::read_dir(&out)?.map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["TrioSynth.vst3"]);
    Ok(())
}

/// The real `build.yaml` matches the built libraries and bundles; by default the bundle
/// goes to `target/bundle` (not written here: it may hold the developer's release bundle).
#[test]
fn the_real_build_yaml_matches_the_built_libraries() -> Result<()> {
    let scratch = Scratch::new("bundle");
    let manifest = Manifest::load(&workspace().join("build.yaml"))?;
    let report = bundle_with(&workspace().join("build.yaml"), scratch.path())?;
    assert!(report.path.join("Contents/x86_64-linux/TrioSynth.so").is_file());
    // The target folder exists (the tests were built into it); `bundle/` may not yet.
    let default = target_dir().canonicalize()?.join("bundle");
    assert_eq!(trio_xtask::bundle::default_out_dir(&manifest)?, default);
    Ok(())
}

// ---- install -------------------------------------------------------------------------

fn install_options(scratch: &Scratch, manifest: &Path, out: &Path, release: bool) -> InstallOptions {
    InstallOptions {
        manifest: manifest.to_owned(),
        out_dir: Some(out.to_owned()),
        dest: Some(scratch.path().join("vst3")),
        release,
    }
}

#[test]
fn install_without_a_bundle_says_to_bundle_first() {
    let scratch = Scratch::new("install");
    let manifest = scratch.path().join("build.yaml");
    std::fs::write(&manifest, good_yaml()).unwrap();
    let error = install(&install_options(&scratch, &manifest, &scratch.path().join("out"), false)).unwrap_err();
    assert_contains(&format!("{error:#}"), &["there is no bundle at", "TrioSynth.vst3", "run `cargo xtask bundle`"]);
    assert!(!scratch.path().join("vst3/TrioSynth.vst3").exists());
}

#[test]
fn install_copies_the_bundle_and_replaces_an_older_copy() -> Result<()> {
    let previous = Previous::build();
    let scratch = &previous.scratch;
    let manifest = scratch.path().join("good.yaml");
    let installed = install(&install_options(scratch, &manifest, &previous.out, false))?;
    assert_eq!(installed, scratch.path().join("vst3/TrioSynth.vst3"));
    let bundled = previous.out.join("TrioSynth.vst3");
    let relative = |snap: Snapshot| snap.into_iter().map(|(path, (len, ..))| (path, len)).collect::<Vec<_>>();
    assert_eq!(relative(snapshot(&installed)), relative(snapshot(&bundled)));

    // A newer bundle replaces the installed one, and nothing else is left in the folder.
    std::fs::write(&manifest, edit(&good_yaml(), "version: 0.1.0", "version: 0.3.0"))?;
    bundle_with(&manifest, &previous.out)?;
    install(&install_options(scratch, &manifest, &previous.out, false))?;
    let info: Value = serde_json::from_slice(&std::fs::read(installed.join("Contents/Resources/moduleinfo.json"))?)?;
    assert_eq!(info["Version"], "0.3.0");
    let entries: Vec<_> = std::fs::read_dir(scratch.path().join("vst3"))?.map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["TrioSynth.vst3"]);

    // --release refuses a debug bundle.
    let error = install(&install_options(scratch, &manifest, &previous.out, true)).unwrap_err();
    assert_contains(&format!("{error:#}"), &["is a debug build", "cargo xtask bundle --release"]);
    Ok(())
}

// ---- new -------------------------------------------------------------------------------

fn new_options(name: &str, kind: Kind, parent: &Path) -> NewOptions {
    NewOptions { name: name.into(), kind, parent: parent.to_owned(), framework: Framework::Path(workspace()) }
}

#[test]
fn new_refuses_a_name_that_is_no_file_name() {
    let scratch = Scratch::new("new");
    for (name, why) in [("My/Synth", "'/'"), ("", "empty"), ("Synth.vst3", "'.'"), ("1 2 3", "needs a letter")] {
        let error = format!("{:#}", new_project(&new_options(name, Kind::Instrument, scratch.path())).unwrap_err());
        assert_contains(&error, &["cannot be a plugin name", why]);
    }
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "nothing may be left behind");
}

#[test]
fn new_refuses_an_existing_destination_and_a_folder_that_is_no_framework() {
    let scratch = Scratch::new("new");
    std::fs::create_dir(scratch.path().join("MySynth")).unwrap();
    std::fs::write(scratch.path().join("MySynth/keep.txt"), "mine").unwrap();
    let error = format!("{:#}", new_project(&new_options("MySynth", Kind::Effect, scratch.path())).unwrap_err());
    assert_contains(&error, &["MySynth already exists"]);
    assert_eq!(std::fs::read_to_string(scratch.path().join("MySynth/keep.txt")).unwrap(), "mine");

    let mut options = new_options("Other", Kind::Effect, scratch.path());
    options.framework = Framework::Path(scratch.path().to_owned());
    let error = format!("{:#}", new_project(&options).unwrap_err());
    assert_contains(&error, &["is not a Trio framework checkout", "shared/Cargo.toml"]);
    assert!(!scratch.path().join("Other").exists());
}

#[test]
fn the_command_line_asks_for_the_kind_of_a_new_plugin() {
    let scratch = Scratch::new("new");
    let run = |args: &[&str]| {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["xtask", "new"])
            .args(args)
            .args(["--dest", scratch.path().to_str().unwrap()])
            .current_dir(workspace())
            .output()
            .expect("running cargo xtask new")
    };
    let output = run(&["Thing"]);
    assert_eq!(output.status.code(), Some(1));
    assert_contains(&String::from_utf8_lossy(&output.stderr), &["needs --kind instrument or --kind effect"]);
    let output = run(&["Thing", "--kind", "synth"]);
    assert_contains(&String::from_utf8_lossy(&output.stderr), &["--kind synth", "write instrument or effect"]);
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "nothing may be left behind");
}

/// The Rust files of a project, outside `target/`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() && entry.file_name() != "target" {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The slow one: new projects of both kinds are thin (their own crates only, at most 400
/// lines of Rust, no unsafe code), and in each `cargo xtask test` passes (the project's
/// tests and the conformance suite on its bundle), `cargo xtask bundle` bundles, and
/// `cargo xtask dev` plays it, reloads the control module when a source changes, reports a
/// build error without stopping, and reloads again once it is fixed. Both projects share
/// one target folder, as a developer's projects would share Cargo's caches.
#[test]
fn new_projects_of_both_kinds_test_bundle_and_hot_reload_out_of_the_box() -> Result<()> {
    let scratch = Scratch::new("new");
    let target = scratch.path().join("target");
    for (name, kind) in [("Scaffold Synth", Kind::Instrument), ("Scaffold Fx", Kind::Effect)] {
        let project = new_project(&new_options(name, kind, scratch.path()))?;
        assert_eq!(project, scratch.path().join(name));
        for kept in [
            "engine/src/lib.rs",
            "control/src/lib.rs",
            "common/src/lib.rs",
            "xtask/src/main.rs",
            "build.yaml",
            "Cargo.toml",
            "Cargo.lock",
            ".cargo/config.toml",
            "README.md",
        ] {
            assert!(project.join(kept).exists(), "{name}: {kept} is missing");
        }
        for left_out in ["shared", "bridge", "scripts", "dsp", "tests", "rt_engine", "synth_common", "examples"] {
            assert!(!project.join(left_out).exists(), "{name}: {left_out} was copied");
        }
        let mut files = Vec::new();
        rust_files(&project, &mut files);
        let mut lines = 0;
        for file in &files {
            let text = std::fs::read_to_string(file)?;
            lines += text.lines().count();
            for forbidden in ["unsafe {", "unsafe fn", "unsafe impl", "extern \"C\"", "no_mangle", "global_allocator"] {
                assert!(!text.contains(forbidden), "{}: {forbidden}", file.display());
            }
        }
        eprintln!("{name}: {} Rust files, {lines} lines", files.len());
        assert!(lines <= 400, "{name}: {lines} lines of Rust");
        let cargo_toml = std::fs::read_to_string(project.join("Cargo.toml"))?;
        assert!(cargo_toml.contains(&format!("path = \"{}/shared\"", workspace().display())), "{cargo_toml}");
        let manifest = Manifest::load(&project.join("build.yaml"))?;
        assert_eq!(manifest.plugin.name, name);
        assert_eq!(manifest.plugin.vendor, trio_xtask::scaffold::VENDOR_PLACEHOLDER);
        assert_ne!(manifest.plugin.class_id.to_string(), "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061");

        let xtask = |args: &[&str]| -> Result<String> {
            let started = Instant::now();
            let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .arg("xtask")
                .args(args)
                .current_dir(&project)
                .env("CARGO_TARGET_DIR", &target)
                .output()?;
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{name}: cargo xtask {args:?} failed:\n{stdout}\n{stderr}");
            eprintln!("{name}: cargo xtask {} took {:.0?}", args.join(" "), started.elapsed());
            Ok(stdout + &stderr)
        };
        let tested = xtask(&["test"])?;
        assert_contains(
            &tested,
            &["declarations_are_valid ... ok", &format!("conformance of {name} ({kind})"), "checks, 0 failed"],
        );
        let bundled = xtask(&["bundle"])?;
        let bundle = target.join(format!("bundle/{name}.vst3"));
        assert_contains(&bundled, &[&bundle.display().to_string(), "rt_engine.so", "control.so"]);
        assert!(bundle.join(format!("Contents/x86_64-linux/{name}.so")).is_file());
        let info: Value = serde_json::from_slice(&std::fs::read(bundle.join("Contents/Resources/moduleinfo.json"))?)?;
        assert_eq!(info["Classes"][0]["CID"], manifest.plugin.class_id.to_string().as_str());

        dev_loop_reloads_on_save(&project, &target)?;
    }
    Ok(())
}

/// Runs `cargo xtask dev` in `project` and edits its control crate while it plays.
fn dev_loop_reloads_on_save(project: &Path, target: &Path) -> Result<()> {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let wav = target.join("dev-session.wav");
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["xtask", "dev", "--seconds", "240", "--out"])
        .arg(&wav)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .into_iter()
    .map(|stream| {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    })
    .collect();
    let wait_for = |what: &str, pred: &dyn Fn(&str) -> bool, seen: usize| -> Result<usize> {
        let deadline = Instant::now() + std::time::Duration::from_secs(150);
        loop {
            {
                let lines = lines.lock().unwrap();
                if let Some(i) = lines.iter().skip(seen).position(|l| pred(l)) {
                    return Ok(seen + i + 1);
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("no {what} within 150 s; the dev loop printed:\n{}", lines.lock().unwrap().join("\n"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let result = (|| -> Result<()> {
        let seen = wait_for("`playing` line", &|l| l.starts_with("[dev] playing"), 0)?;
        let lib = project.join("control/src/lib.rs");
        let original = std::fs::read_to_string(&lib)?;
        // 1. A change that builds (a preset renamed): reloaded with a new build id.
        assert!(original.contains("\"Init\""), "the template has no Init preset to rename");
        std::fs::write(&lib, original.replace("\"Init\"", "\"Start\""))?;
        let seen = wait_for("reload line", &|l| l.contains("reloaded control") && l.contains("deadline miss"), seen)?;
        let line = lines.lock().unwrap()[seen - 1].clone();
        let (old, new) = line.split_once(" -> ").map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap_or_default();
        let new_id = new.split(':').next().unwrap_or_default().to_owned();
        assert!(!old.ends_with(&new_id), "the build id did not change: {line}");
        assert!(line.contains("state carried over for 1 instance"), "{line}");
        // 2. A change that does not build: reported, the old module keeps playing.
        std::fs::write(&lib, format!("{original}\ncompile_error!(\"a deliberate build error\");\n"))?;
        let seen = wait_for("build failure line", &|l| l.contains("the old control module keeps playing"), seen)?;
        assert!(
            lines.lock().unwrap().iter().any(|l| l.contains("a deliberate build error")),
            "cargo's error was not shown"
        );
        // 3. Fixed again: reloaded.
        std::fs::write(&lib, &original)?;
        wait_for("reload after the fix", &|l| l.contains("reloaded control"), seen)?;
        Ok(())
    })();
    // SAFETY: `kill` with a child's pid and SIGINT; the child is still ours (not waited).
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait()?;
    for r in readers {
        let _ = r.join();
    }
    let printed = lines.lock().unwrap().join("\n");
    result.map_err(|e| e.context(printed.clone()))?;
    assert!(status.success(), "the dev loop did not stop cleanly after Ctrl-C:\n{printed}");
    assert!(printed.contains("[dev] stopped after"), "{printed}");
    let wav_len = std::fs::metadata(&wav)?.len();
    assert!(wav_len > 48_000 * 8, "the session WAV is only {wav_len} bytes");
    let mut reader = hound::WavReader::open(&wav)?;
    let samples: Vec<f32> = reader.samples::<f32>().collect::<Result<_, _>>()?;
    let rms = (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 0.01 && samples.iter().all(|s| s.is_finite()), "the session is silent or broken: RMS {rms}");
    eprintln!("{printed}");
    Ok(())
}

// ---- The command line -----------------------------------------------------------------

#[test]
fn the_command_line_exits_non_zero_with_the_message() {
    let scratch = Scratch::new("cli");
    let manifest = scratch.path().join("build.yaml");
    std::fs::write(&manifest, edit(&real_yaml(), "class_id: 6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061", "class_id: 12"))
        .unwrap();
    let xtask = |args: &[&str]| {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .arg("xtask")
            .args(args)
            .current_dir(workspace())
            .output()
            .expect("running cargo xtask")
    };
    let out_dir = scratch.path().join("out");
    let output = xtask(&["bundle", "--manifest", manifest.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(&stderr, &["error: ", &format!("{}:", manifest.display()), "plugin.class_id \"12\""]);
    assert!(!out_dir.exists());

    let output = xtask(&["bundle", "--relase"]);
    assert_eq!(output.status.code(), Some(1));
    assert_contains(&String::from_utf8_lossy(&output.stderr), &["`bundle` has no option `--relase`", "usage:"]);
}
