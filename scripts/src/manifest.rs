//! `build.yaml`: the plugin and its three modules, parsed and checked.
//!
//! # Schema
//!
//! ```yaml
//! plugin:
//!   name: TrioSynth            # [A-Za-z0-9 _-], at most 63 bytes: the bundle is <name>.vst3
//!   vendor: Trio Audio
//!   url: https://example.com
//!   email: support@example.com
//!   version: 0.1.0
//!   class_id: 6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061   # exactly 32 hex digits
//!   category: Instrument
//!   sub_categories: [Instrument, Synth]
//! modules:
//!   bridge:    { crate: bridge,    allocation: forbid, exports: [ModuleEntry, ModuleExit, GetPluginFactory] }
//!   rt_engine: { crate: rt_engine, allocation: forbid, exports: [trio_module_descriptor, rt_process, ...] }
//!   control:   { crate: control,   allocation: allow,  hot_reload: true, exports: [trio_module_descriptor, ...] }
//! shared_memory:
//!   size: 65536                # bytes, at least size_of::<shared::block::SharedBlock>()
//! ```
//!
//! `crate` is the crate's folder relative to the workspace root (the folder of the
//! workspace's `Cargo.toml`), whatever folder `build.yaml` itself is in; an absolute path
//! also works. `hot_reload` exists for `control` only and defaults to `false`. Unknown
//! fields are errors. Every error names the file, the line and the column, and all the
//! problems of a file are reported at once.
//!
//! # Why serde-saphyr
//!
//! `serde_yaml` is deprecated and `serde_yml` is unmaintained with advisories. Of the two
//! maintained choices, `yaml_serde` (the YAML organisation's continuation of `serde_yaml`,
//! on a Rust port of libyaml) and `serde-saphyr` (pure Rust, panic-free, with limits on
//! document size), serde-saphyr is the one that can point at a *value*: its
//! [`Spanned`] wrapper keeps the line and column of every field we check, so a bad class
//! id or a duplicated export is reported at its own line, not at the top of the file. It
//! also rejects duplicate keys with their position (yaml_serde reports them at line 1,
//! column 1). Version 1.1 is the newest that builds with the workspace's Rust 1.85 (1.3
//! and 2.x need 1.89); the API used here (`from_str`, `Spanned`, `Error::location`) is the
//! same in the later versions.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

/// The manifest's usual file name, at the workspace root.
pub const FILE_NAME: &str = "build.yaml";

/// The longest plugin name: VST3's class info holds names of at most 63 bytes.
pub const MAX_NAME_LEN: usize = 63;

/// Whether a module may allocate, as `build.yaml` declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocation {
    /// The module must not allocate on the audio path (descriptor policy
    /// [`shared::abi::alloc_policy::FORBID`]).
    Forbid,
    /// The module may allocate (policy [`shared::abi::alloc_policy::ALLOW`]).
    Allow,
}

impl Allocation {
    /// The word used in `build.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Allocation::Forbid => "forbid",
            Allocation::Allow => "allow",
        }
    }

    /// The descriptor's `alloc_policy` value for this allocation.
    pub fn policy(self) -> u32 {
        match self {
            Allocation::Forbid => shared::abi::alloc_policy::FORBID,
            Allocation::Allow => shared::abi::alloc_policy::ALLOW,
        }
    }
}

impl fmt::Display for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of the three libraries a module entry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The library the host loads.
    Bridge,
    /// The real-time engine.
    RtEngine,
    /// The control module.
    Control,
}

impl Role {
    /// The three roles, in bundle order.
    pub const ALL: [Role; 3] = [Role::Bridge, Role::RtEngine, Role::Control];

    /// The key under `modules:` in `build.yaml`.
    pub fn key(self) -> &'static str {
        match self {
            Role::Bridge => "bridge",
            Role::RtEngine => "rt_engine",
            Role::Control => "control",
        }
    }

    /// The descriptor kind the module must declare ([`shared::abi::module_kind`]); the
    /// bridge has no descriptor.
    pub fn descriptor_kind(self) -> Option<u32> {
        match self {
            Role::Bridge => None,
            Role::RtEngine => Some(shared::abi::module_kind::ENGINE),
            Role::Control => Some(shared::abi::module_kind::CONTROL),
        }
    }

    /// The library's file name in the bundle: the bridge is named after the plugin (hosts
    /// require `X.vst3/Contents/x86_64-linux/X.so`), the modules have fixed names.
    pub fn file_name(self, plugin_name: &str) -> String {
        match self {
            Role::Bridge => format!("{plugin_name}.so"),
            Role::RtEngine => "rt_engine.so".to_owned(),
            Role::Control => "control.so".to_owned(),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A line and column (both from 1) in `build.yaml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Pos {
    fn of(location: Location) -> Self {
        // serde-saphyr uses line 0 for "unknown"; point at the top of the file then.
        Self { line: location.line().max(1), column: location.column().max(1) }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A VST3 class id: 16 bytes, written as 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassId(pub [u8; 16]);

impl ClassId {
    /// Parses exactly 32 hex digits (either case).
    ///
    /// # Errors
    /// A message saying what is wrong with `text`.
    ///
    /// # Examples
    /// ```
    /// use scripts::manifest::ClassId;
    /// let id = ClassId::parse("6a3f1c2e9b7d4e6f8a0b1c2d3e4f5061").unwrap();
    /// assert_eq!(id.to_string(), "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061");
    /// assert!(ClassId::parse("6A3F1C2E").is_err());
    /// ```
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let hex_digits = text.chars().filter(char::is_ascii_hexdigit).count();
        if text.len() != 32 || hex_digits != 32 {
            let mut why = if text.chars().all(|c| c.is_ascii_hexdigit()) {
                format!("it has {} hex digits", text.chars().count())
            } else {
                let bad: String = text.chars().filter(|c| !c.is_ascii_hexdigit()).take(5).collect();
                format!("it contains characters that are not hex digits ({bad:?})")
            };
            let stripped: String = text.chars().filter(|c| !matches!(c, '-' | '{' | '}')).collect();
            if stripped != text && stripped.len() == 32 && stripped.chars().all(|c| c.is_ascii_hexdigit()) {
                why.push_str(&format!("; write it without dashes or braces: {}", stripped.to_ascii_uppercase()));
            }
            return Err(why);
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            // Cannot fail: all 32 characters are ASCII hex digits (checked above).
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        if bytes == [0; 16] {
            return Err("it is all zeros, which is not a unique id".to_owned());
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// The `plugin:` section.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    /// Display name, also the bundle's and the bridge library's file name.
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Vendor's web address.
    pub url: String,
    /// Vendor's e-mail address.
    pub email: String,
    /// Plugin version.
    pub version: String,
    /// The processor's class id.
    pub class_id: ClassId,
    /// Category (`Instrument`, `Fx`).
    pub category: String,
    /// VST3 sub-categories.
    pub sub_categories: Vec<String>,
}

/// One `modules:` entry.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Which library this is.
    pub role: Role,
    /// `crate` as written in `build.yaml`.
    pub crate_path: String,
    /// The crate's folder (the workspace root joined with `crate_path`).
    pub crate_dir: PathBuf,
    /// Whether the module may allocate.
    pub allocation: Allocation,
    /// The exported symbols, in `build.yaml`'s order.
    pub exports: Vec<String>,
    /// Whether development builds reload the module when it changes (`control` only).
    pub hot_reload: bool,
    /// Where `crate` is written.
    pub crate_pos: Pos,
    /// Where `allocation` is written.
    pub allocation_pos: Pos,
    /// Where the `exports` list starts.
    pub exports_pos: Pos,
    /// Where each export is written, parallel to `exports`.
    pub export_pos: Vec<Pos>,
}

/// A parsed and checked `build.yaml`.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file it was read from.
    pub file: PathBuf,
    /// The workspace root that module crate paths are relative to.
    pub workspace: PathBuf,
    /// The `plugin:` section.
    pub plugin: PluginInfo,
    /// `modules.bridge`.
    pub bridge: ModuleSpec,
    /// `modules.rt_engine`.
    pub rt_engine: ModuleSpec,
    /// `modules.control`.
    pub control: ModuleSpec,
    /// `shared_memory.size`, bytes.
    pub shared_memory_size: u64,
}

impl Manifest {
    /// Reads and checks the manifest at `file`; module crate paths are resolved against
    /// `workspace`.
    ///
    /// # Errors
    /// The file cannot be read, or a [`ManifestError`] listing every problem found.
    pub fn load(file: &Path, workspace: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| {
            format!("cannot read the build manifest {}: check the path given with --manifest", file.display())
        })?;
        Ok(Self::parse(&text, file, workspace)?)
    }

    /// Parses and checks manifest `text` that was read from `file`.
    ///
    /// # Errors
    /// A [`ManifestError`] listing every problem found, each with its line and column.
    pub fn parse(text: &str, file: &Path, workspace: &Path) -> std::result::Result<Self, ManifestError> {
        let raw: RawManifest = serde_saphyr::from_str(text).map_err(|e| {
            let pos = e.location().map(Pos::of).unwrap_or(Pos { line: 1, column: 1 });
            let message = UserMessageFormatter.format_message(e.without_snippet()).into_owned();
            ManifestError::new(file, text, vec![Problem { pos, message: explain_parse_error(message) }])
        })?;
        let mut problems = Vec::new();
        let manifest = raw.check(file, workspace, &mut problems);
        if problems.is_empty() {
            Ok(manifest)
        } else {
            problems.sort_by_key(|p| p.pos);
            Err(ManifestError::new(file, text, problems))
        }
    }

    /// The three modules, in bundle order.
    pub fn modules(&self) -> [&ModuleSpec; 3] {
        [&self.bridge, &self.rt_engine, &self.control]
    }

    /// `file:line:col` for a position in this manifest.
    pub fn at(&self, pos: Pos) -> String {
        format!("{}:{pos}", self.file.display())
    }
}

/// Adds what to do to the parser's messages that need it.
fn explain_parse_error(message: String) -> String {
    if message.starts_with("unknown field") {
        format!("{message} (only the names listed are valid here)")
    } else if message.starts_with("missing field") {
        format!("{message} in the section that ends here: add it (the schema is in the example build.yaml)")
    } else {
        message
    }
}

/// One problem in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub pos: Pos,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every problem found in a manifest, with the lines they are on.
#[derive(Clone, Debug)]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
    /// The text of each problem's line, parallel to `problems`.
    lines: Vec<String>,
}

impl ManifestError {
    fn new(file: &Path, text: &str, problems: Vec<Problem>) -> Self {
        let lines = problems
            .iter()
            .map(|p| text.lines().nth(p.pos.line as usize - 1).unwrap_or("").trim_end().to_owned())
            .collect();
        Self { file: file.to_owned(), problems, lines }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.len() > 1 {
            writeln!(f, "{} problems in {}:", self.problems.len(), self.file.display())?;
        }
        for (i, (problem, line)) in self.problems.iter().zip(&self.lines).enumerate() {
            if i > 0 {
                writeln!(f, "\n")?;
            }
            writeln!(f, "{}:{}: {}", self.file.display(), problem.pos, problem.message)?;
            let number = problem.pos.line.to_string();
            writeln!(f, "{number:>5} | {line}")?;
            let caret_at = (problem.pos.column as usize).saturating_sub(1);
            write!(f, "{:>5} | {:caret_at$}^", "", "")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

// ---- The file as written -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    plugin: RawPlugin,
    modules: RawModules,
    shared_memory: RawSharedMemory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    vendor: Spanned<String>,
    url: String,
    email: String,
    version: Spanned<String>,
    class_id: Spanned<String>,
    category: Spanned<String>,
    sub_categories: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModules {
    bridge: RawModule,
    rt_engine: RawModule,
    control: RawControlModule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    #[serde(rename = "crate")]
    krate: Spanned<String>,
    allocation: Spanned<Allocation>,
    exports: Spanned<Vec<Spanned<String>>>,
}

/// `control` is the only module with `hot_reload`; a separate type (rather than an
/// optional field on all three) makes `hot_reload` under `bridge` an unknown field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControlModule {
    #[serde(rename = "crate")]
    krate: Spanned<String>,
    allocation: Spanned<Allocation>,
    #[serde(default)]
    hot_reload: bool,
    exports: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSharedMemory {
    size: Spanned<u64>,
}

fn at(spanned_location: Location) -> Pos {
    Pos::of(spanned_location)
}

impl RawManifest {
    fn check(self, file: &Path, workspace: &Path, problems: &mut Vec<Problem>) -> Manifest {
        let plugin = self.plugin.check(problems);
        let bridge = check_module(Role::Bridge, self.modules.bridge, false, workspace, problems);
        let rt_engine = check_module(Role::RtEngine, self.modules.rt_engine, false, workspace, problems);
        let control = self.modules.control;
        let hot_reload = control.hot_reload;
        let control = RawModule { krate: control.krate, allocation: control.allocation, exports: control.exports };
        let control = check_module(Role::Control, control, hot_reload, workspace, problems);

        // Each library comes from its own crate.
        let modules = [&bridge, &rt_engine, &control];
        for (i, later) in modules.iter().enumerate() {
            let same = modules[..i].iter().find(|earlier| {
                let (a, b) = (earlier.crate_dir.canonicalize(), later.crate_dir.canonicalize());
                a.is_ok() && a.ok() == b.ok()
            });
            if let Some(earlier) = same {
                problems.push(Problem {
                    pos: later.crate_pos,
                    message: format!(
                        "modules.{}.crate is the same crate as modules.{}.crate ({:?}): each library is built from \
                         a crate of its own",
                        later.role, earlier.role, later.crate_path
                    ),
                });
            }
        }

        if rt_engine.allocation != Allocation::Forbid {
            problems.push(Problem {
                pos: rt_engine.allocation_pos,
                message: "modules.rt_engine.allocation must be `forbid`: the engine runs on the audio thread, \
                          where allocating can miss the deadline (the engine's descriptor declares FORBID too)"
                    .to_owned(),
            });
        }

        let size = self.shared_memory.size.value;
        let block = core::mem::size_of::<shared::block::SharedBlock>() as u64;
        if size < block {
            problems.push(Problem {
                pos: at(self.shared_memory.size.referenced),
                message: format!(
                    "shared_memory.size is {size} bytes, smaller than the shared block \
                     (shared::block::SharedBlock is {block} bytes): set it to at least {block}"
                ),
            });
        }

        Manifest {
            file: file.to_owned(),
            workspace: workspace.to_owned(),
            plugin,
            bridge,
            rt_engine,
            control,
            shared_memory_size: size,
        }
    }
}

impl RawPlugin {
    fn check(self, problems: &mut Vec<Problem>) -> PluginInfo {
        let name = self.name.value;
        if let Err(why) = check_plugin_name(&name) {
            problems.push(Problem {
                pos: at(self.name.referenced),
                message: format!("plugin.name {name:?} cannot be used as the bundle's file name: {why}"),
            });
        }
        let class_id = match ClassId::parse(&self.class_id.value) {
            Ok(id) => id,
            Err(why) => {
                problems.push(Problem {
                    pos: at(self.class_id.referenced),
                    message: format!(
                        "plugin.class_id {:?} is not a class id: {why}. It must be exactly 32 hex digits, \
                         e.g. 6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061 (`cargo xtask new` makes a random one)",
                        self.class_id.value
                    ),
                });
                ClassId([0; 16])
            }
        };
        for (field, value) in [("vendor", &self.vendor), ("version", &self.version), ("category", &self.category)] {
            if value.value.trim().is_empty() {
                problems.push(Problem {
                    pos: at(value.referenced),
                    message: format!("plugin.{field} is empty: give it a value"),
                });
            }
        }
        let mut sub_categories = Vec::new();
        for sub in self.sub_categories {
            if sub.value.trim().is_empty() || sub.value.contains('|') {
                problems.push(Problem {
                    pos: at(sub.referenced),
                    message: format!(
                        "plugin.sub_categories entry {:?} is not a VST3 sub-category: it must be non-empty and \
                         without `|` (e.g. Instrument, Synth, Fx, Delay)",
                        sub.value
                    ),
                });
            }
            sub_categories.push(sub.value);
        }
        PluginInfo {
            name,
            vendor: self.vendor.value,
            url: self.url,
            email: self.email,
            version: self.version.value,
            class_id,
            category: self.category.value,
            sub_categories,
        }
    }
}

/// Checks that `name` can name the bundle (`<name>.vst3`) and the bridge (`<name>.so`).
///
/// # Errors
/// Why it cannot, for a human.
///
/// # Examples
/// ```
/// assert!(scripts::manifest::check_plugin_name("My Synth_2").is_ok());
/// assert!(scripts::manifest::check_plugin_name("a/b").is_err());
/// ```
pub fn check_plugin_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'))) {
        return Err(format!("{bad:?} is not allowed; use only letters A-Z a-z, digits, spaces, `_` and `-`"));
    }
    if name.starts_with([' ', '-']) || name.ends_with(' ') {
        return Err("it must not start with a space or `-`, nor end with a space".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("it is {} bytes long; VST3 allows at most {MAX_NAME_LEN}", name.len()));
    }
    Ok(())
}

fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_module(
    role: Role,
    raw: RawModule,
    hot_reload: bool,
    workspace: &Path,
    problems: &mut Vec<Problem>,
) -> ModuleSpec {
    let key = role.key();
    let crate_path = raw.krate.value;
    let crate_pos = at(raw.krate.referenced);
    let crate_dir = workspace.join(&crate_path);
    if crate_path.trim().is_empty() {
        problems.push(Problem {
            pos: crate_pos,
            message: format!("modules.{key}.crate is empty: give the crate's folder relative to the workspace"),
        });
    } else if !crate_dir.is_dir() {
        problems.push(Problem {
            pos: crate_pos,
            message: format!(
                "modules.{key}.crate: the folder {crate_path:?} does not exist (looked for {}): give the crate's \
                 folder relative to the workspace root {}",
                crate_dir.display(),
                workspace.display()
            ),
        });
    } else if !crate_dir.join("Cargo.toml").is_file() {
        problems.push(Problem {
            pos: crate_pos,
            message: format!(
                "modules.{key}.crate: {} has no Cargo.toml, so it is not a crate: point it at the crate's folder",
                crate_dir.display()
            ),
        });
    }

    let exports_pos = at(raw.exports.referenced);
    let mut exports = Vec::new();
    let mut export_pos = Vec::new();
    let mut first_seen: HashMap<String, Pos> = HashMap::new();
    if raw.exports.value.is_empty() {
        problems.push(Problem {
            pos: exports_pos,
            message: format!("modules.{key}.exports is empty: list every symbol the library exports"),
        });
    }
    for export in raw.exports.value {
        let pos = at(export.referenced);
        let name = export.value;
        if !is_c_identifier(&name) {
            problems.push(Problem {
                pos,
                message: format!(
                    "modules.{key}.exports: {name:?} is not a symbol name (letters, digits and `_`, not starting \
                     with a digit)"
                ),
            });
        }
        if let Some(first) = first_seen.get(&name) {
            problems.push(Problem {
                pos,
                message: format!(
                    "modules.{key}.exports lists `{name}` twice (first at line {}): remove one of them",
                    first.line
                ),
            });
            continue;
        }
        first_seen.insert(name.clone(), pos);
        exports.push(name);
        export_pos.push(pos);
    }
    if role.descriptor_kind().is_some() && !first_seen.contains_key(shared::abi::DESCRIPTOR_SYMBOL) {
        problems.push(Problem {
            pos: exports_pos,
            message: format!(
                "modules.{key}.exports must list `{}`: the build tool and the bridge read the module's ABI \
                 version, layout hash and allocation policy from it",
                shared::abi::DESCRIPTOR_SYMBOL
            ),
        });
    }

    ModuleSpec {
        role,
        crate_path,
        crate_dir,
        allocation: raw.allocation.value,
        exports,
        hot_reload,
        crate_pos,
        allocation_pos: at(raw.allocation.referenced),
        exports_pos,
        export_pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_id_errors_say_why() {
        assert!(ClassId::parse("6A3F1C2E9B7D4E6F8A0B1C2D3E4F506").unwrap_err().contains("31 hex digits"));
        assert!(ClassId::parse("6A3F1C2E9B7D4E6F8A0B1C2D3E4F506X").unwrap_err().contains("\"X\""));
        assert!(
            ClassId::parse("6A3F1C2E-9B7D-4E6F-8A0B-1C2D3E4F5061").unwrap_err().contains("without dashes or braces")
        );
        assert!(ClassId::parse("00000000000000000000000000000000").unwrap_err().contains("all zeros"));
    }

    fn parse_example(edit: impl FnOnce(String) -> String) -> Result<Manifest, ManifestError> {
        let root = crate::workspace_root();
        let text = std::fs::read_to_string(root.join(FILE_NAME)).unwrap();
        Manifest::parse(&edit(text), Path::new(FILE_NAME), &root)
    }

    #[test]
    fn the_example_parses() {
        let manifest = parse_example(|t| t).unwrap();
        assert_eq!(manifest.plugin.name, "TrioSynth");
        assert_eq!(manifest.rt_engine.allocation, Allocation::Forbid);
        assert!(manifest.control.hot_reload && !manifest.bridge.hot_reload);
        assert_eq!(manifest.control.exports[0], shared::abi::DESCRIPTOR_SYMBOL);
        assert_eq!(manifest.control.exports.len(), manifest.control.export_pos.len());
    }

    #[test]
    fn two_modules_from_one_crate_are_refused() {
        let error = parse_example(|t| t.replace("crate: rt_engine", "crate: control")).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert!(
            error.to_string().contains("modules.control.crate is the same crate as modules.rt_engine.crate"),
            "{error}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let error =
            parse_example(|t| t.replace("size: 65536", "size: 1").replace("name: TrioSynth", "name: a.b")).unwrap_err();
        let lines: Vec<u64> = error.problems.iter().map(|p| p.pos.line).collect();
        assert_eq!(lines.len(), 2, "{error}");
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{error}");
        assert!(error.to_string().starts_with("2 problems in build.yaml:\n"), "{error}");
    }

    #[test]
    fn plugin_names() {
        for good in ["TrioSynth", "My Synth 2", "a_b-c"] {
            assert_eq!(check_plugin_name(good), Ok(()), "{good}");
        }
        for bad in ["", "a/b", "a.b", " a", "a ", "-a", "é", &"x".repeat(64)] {
            assert!(check_plugin_name(bad).is_err(), "{bad:?}");
        }
    }
}
