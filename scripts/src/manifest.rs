//! `build.yaml`: the plugin and its modules, parsed and checked.
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
//!   kind: instrument           # instrument | effect
//!   sub_categories: [Instrument, Synth]          # optional (instrument: Instrument, Synth; effect: Fx)
//! audio:                       # optional
//!   layouts: [stereo, mono]    # main bus layouts accepted, default first
//!                              #   (instrument: [stereo]; effect: [stereo, mono])
//!   sidechain: true            # effects only: a mono or stereo sidechain input (default false)
//!   midi_input: true           # a MIDI input bus (instrument: true; effect: false)
//! modules:
//!   rt_engine: { crate: rt_engine }
//!   control:   { crate: control, hot_reload: true }
//! ```
//!
//! `crate` is a crate's folder relative to the folder `build.yaml` is in (an absolute path
//! also works). The SDK's export macros decide what each module exports, so `exports` and
//! `allocation` are optional; when given they are checked against the built library.
//! `modules.bridge` is optional too: the framework's bridge serves every plugin (give
//! `crate:` only to build a modified bridge). `hot_reload` exists for `control` only and
//! defaults to `false`. Unknown fields are errors. Every error names the file, the line
//! and the column, and the field it is about (the YAML parser's own messages do not, so it
//! runs under `serde_path_to_error`, whose path goes in front) or that it is not valid
//! YAML; all the problems of a file are reported at once.
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
    /// [`trio::abi::alloc_policy::FORBID`]).
    Forbid,
    /// The module may allocate (policy [`trio::abi::alloc_policy::ALLOW`]).
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
            Allocation::Forbid => trio::abi::alloc_policy::FORBID,
            Allocation::Allow => trio::abi::alloc_policy::ALLOW,
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

    /// The descriptor kind the module must declare ([`trio::abi::module_kind`]); the
    /// bridge has no descriptor.
    pub fn descriptor_kind(self) -> Option<u32> {
        match self {
            Role::Bridge => None,
            Role::RtEngine => Some(trio::abi::module_kind::ENGINE),
            Role::Control => Some(trio::abi::module_kind::CONTROL),
        }
    }

    /// The name of the module's descriptor symbol; the bridge has none.
    pub fn descriptor_symbol(self) -> Option<&'static str> {
        match self {
            Role::Bridge => None,
            Role::RtEngine => Some(trio::abi::engine::DESCRIPTOR),
            Role::Control => Some(trio::abi::control::DESCRIPTOR),
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
    /// use trio_xtask::manifest::ClassId;
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

/// What kind of plugin `build.yaml` declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// MIDI in, audio out.
    Instrument,
    /// Audio in and out.
    Effect,
}

impl Kind {
    /// The word used in `build.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instrument => "instrument",
            Kind::Effect => "effect",
        }
    }
}

/// A main-bus layout in `build.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutName {
    /// One channel.
    Mono,
    /// Two channels.
    Stereo,
}

/// The `plugin:` section, with defaults filled in.
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
    /// The plugin's class id.
    pub class_id: ClassId,
    /// Instrument or effect.
    pub kind: Kind,
    /// VST3 sub-categories.
    pub sub_categories: Vec<String>,
}

/// The `audio:` section, with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioInfo {
    /// Main-bus layouts accepted, the default first.
    pub layouts: Vec<LayoutName>,
    /// Whether an effect has a sidechain input.
    pub sidechain: bool,
    /// Whether the plugin has a MIDI input bus.
    pub midi_input: bool,
}

/// One `modules:` entry, with defaults filled in.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Which library this is.
    pub role: Role,
    /// `crate` as written in `build.yaml` (for the bridge when not written: the
    /// framework's bridge folder).
    pub crate_path: String,
    /// The crate's folder.
    pub crate_dir: PathBuf,
    /// Whether the module may allocate.
    pub allocation: Allocation,
    /// The exported symbols: as listed in `build.yaml`, or the SDK's list.
    pub exports: Vec<String>,
    /// Whether `build.yaml` lists the exports (otherwise they are the SDK's).
    pub exports_listed: bool,
    /// Whether development builds reload the module when it changes (`control` only).
    pub hot_reload: bool,
    /// Where `crate` is written (the `modules:` key when it is not).
    pub crate_pos: Pos,
    /// Where `allocation` is written (the module's key when it is not).
    pub allocation_pos: Pos,
    /// Where the `exports` list starts (the module's key when it is not written).
    pub exports_pos: Pos,
    /// Where each export is written, parallel to `exports`.
    pub export_pos: Vec<Pos>,
}

/// A parsed and checked `build.yaml`.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file it was read from.
    pub file: PathBuf,
    /// The folder module crate paths are relative to (the file's folder).
    pub base: PathBuf,
    /// The `plugin:` section.
    pub plugin: PluginInfo,
    /// The `audio:` section.
    pub audio: AudioInfo,
    /// `modules.bridge` (the framework's bridge when not written).
    pub bridge: ModuleSpec,
    /// `modules.rt_engine`.
    pub rt_engine: ModuleSpec,
    /// `modules.control`.
    pub control: ModuleSpec,
}

/// The bridge every plugin uses unless `build.yaml` names another: the framework's own,
/// beside this tool's crate.
pub fn framework_bridge_dir() -> PathBuf {
    crate::framework_root().join("bridge")
}

/// The exports of the bridge library.
pub const BRIDGE_EXPORTS: [&str; 3] = ["GetPluginFactory", "ModuleEntry", "ModuleExit"];

impl Manifest {
    /// Reads and checks the manifest at `file`; module crate paths are resolved against
    /// the file's folder.
    ///
    /// # Errors
    /// The file cannot be read, or a [`ManifestError`] listing every problem found.
    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| {
            format!("cannot read the build manifest {}: check the path given with --manifest", file.display())
        })?;
        let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = base.canonicalize().unwrap_or_else(|_| base.to_owned());
        Ok(Self::parse(&text, file, &base)?)
    }

    /// Parses and checks manifest `text` that was read from `file`, resolving crate paths
    /// against `base`.
    ///
    /// # Errors
    /// A [`ManifestError`] listing every problem found, each with its line and column.
    pub fn parse(text: &str, file: &Path, base: &Path) -> std::result::Result<Self, ManifestError> {
        // The field the parser was reading when it failed: serde's messages do not say it
        // ("unknown variant ``"), and the position can be past the field's line (after an
        // empty block scalar, or a quote that runs on).
        let mut field = String::new();
        let raw: std::result::Result<RawManifest, _> = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                field = field_path(e.path());
                e.into_inner()
            })
        });
        let raw = raw.map_err(|e| {
            let pos = e.location().map(Pos::of).unwrap_or(Pos { line: 1, column: 1 });
            let mut message = UserMessageFormatter.format_message(e.without_snippet()).into_owned();
            if message.starts_with("unknown field") {
                // The path ends with the unknown field, which the message names: say its section.
                field = field.rsplit_once('.').map(|(section, _)| section.to_owned()).unwrap_or_default();
            }
            message = explain_parse_error(message);
            if matches!(e.without_snippet(), serde_saphyr::Error::ExternalMessage { .. }) {
                // The YAML scanner's: the path is only where the parser was (the section
                // before, for a bad key), and the position where it noticed.
                message = format!("not valid YAML: {message}");
            } else if !field.is_empty() {
                message = format!("{field}: {message}");
            }
            ManifestError::new(file, text, vec![Problem { pos, message }])
        })?;
        let mut problems = Vec::new();
        let manifest = raw.check(file, base, &mut problems);
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

/// `plugin.kind`, `modules.control.exports[2]`: where the parser was, without the fields
/// [`Spanned`] reads internally.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Map { key }
                if !matches!(key.as_str(), "value" | "referenced" | "defined") && !key.starts_with("__") =>
            {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            serde_path_to_error::Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            _ => {}
        }
    }
    text
}

/// Adds what to do to the parser's messages that need it.
fn explain_parse_error(message: String) -> String {
    if message.starts_with("unknown field") {
        format!("{message} (only the names listed are valid here)")
    } else if message.starts_with("missing field") {
        format!("{message} in the section that ends here: add it (the schema is in the example build.yaml)")
    } else if message.contains("quoted scalar") {
        format!("{message} (a quote opened on this line or above is not closed)")
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
    #[serde(default)]
    audio: Option<RawAudio>,
    modules: Spanned<RawModules>,
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
    kind: Spanned<Kind>,
    #[serde(default)]
    sub_categories: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudio {
    #[serde(default)]
    layouts: Option<Spanned<Vec<LayoutName>>>,
    #[serde(default)]
    sidechain: Option<Spanned<bool>>,
    #[serde(default)]
    midi_input: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModules {
    #[serde(default)]
    bridge: Option<RawModule>,
    rt_engine: Spanned<RawModule>,
    control: Spanned<RawControlModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    #[serde(rename = "crate")]
    krate: Spanned<String>,
    #[serde(default)]
    allocation: Option<Spanned<Allocation>>,
    #[serde(default)]
    exports: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `control` is the only module with `hot_reload`; a separate type (rather than an
/// optional field on all three) makes `hot_reload` under `rt_engine` an unknown field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControlModule {
    #[serde(rename = "crate")]
    krate: Spanned<String>,
    #[serde(default)]
    allocation: Option<Spanned<Allocation>>,
    #[serde(default)]
    hot_reload: bool,
    #[serde(default)]
    exports: Option<Spanned<Vec<Spanned<String>>>>,
}

fn at(spanned_location: Location) -> Pos {
    Pos::of(spanned_location)
}

impl RawManifest {
    fn check(self, file: &Path, base: &Path, problems: &mut Vec<Problem>) -> Manifest {
        let modules_pos = at(self.modules.referenced);
        let kind = self.plugin.kind.value;
        let kind_pos = at(self.plugin.kind.referenced);
        let plugin = self.plugin.check(problems);
        let audio = check_audio(self.audio, kind, kind_pos, problems);
        let modules = self.modules.value;
        let bridge = match modules.bridge {
            Some(raw) => check_module(Role::Bridge, raw, false, base, modules_pos, problems),
            None => default_bridge(modules_pos),
        };
        let rt_engine_pos = at(modules.rt_engine.referenced);
        let rt_engine = check_module(Role::RtEngine, modules.rt_engine.value, false, base, rt_engine_pos, problems);
        let control_pos = at(modules.control.referenced);
        let control = modules.control.value;
        let hot_reload = control.hot_reload;
        let control = RawModule { krate: control.krate, allocation: control.allocation, exports: control.exports };
        let control = check_module(Role::Control, control, hot_reload, base, control_pos, problems);

        // Each library comes from its own crate.
        let all = [&bridge, &rt_engine, &control];
        for (i, later) in all.iter().enumerate() {
            let same = all[..i].iter().find(|earlier| {
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

        Manifest { file: file.to_owned(), base: base.to_owned(), plugin, audio, bridge, rt_engine, control }
    }
}

fn default_bridge(pos: Pos) -> ModuleSpec {
    let dir = framework_bridge_dir();
    ModuleSpec {
        role: Role::Bridge,
        crate_path: dir.to_string_lossy().into_owned(),
        crate_dir: dir,
        allocation: Allocation::Forbid,
        exports: BRIDGE_EXPORTS.iter().map(|s| (*s).to_owned()).collect(),
        exports_listed: false,
        hot_reload: false,
        crate_pos: pos,
        allocation_pos: pos,
        exports_pos: pos,
        export_pos: vec![pos; BRIDGE_EXPORTS.len()],
    }
}

fn check_audio(raw: Option<RawAudio>, kind: Kind, kind_pos: Pos, problems: &mut Vec<Problem>) -> AudioInfo {
    let raw = raw.unwrap_or(RawAudio { layouts: None, sidechain: None, midi_input: None });
    let layouts = match raw.layouts {
        Some(layouts) => {
            let mut unique: Vec<LayoutName> = Vec::new();
            for l in &layouts.value {
                if !unique.contains(l) {
                    unique.push(*l);
                }
            }
            if unique.is_empty() {
                problems.push(Problem {
                    pos: at(layouts.referenced),
                    message: "audio.layouts is empty: list the main bus layouts the plugin accepts, e.g. \
                              [stereo, mono]"
                        .to_owned(),
                });
            }
            if kind == Kind::Instrument && unique != [LayoutName::Stereo] {
                problems.push(Problem {
                    pos: at(layouts.referenced),
                    message: "audio.layouts of an instrument must be [stereo]: instruments have a stereo output"
                        .to_owned(),
                });
            }
            unique
        }
        None if kind == Kind::Instrument => vec![LayoutName::Stereo],
        None => vec![LayoutName::Stereo, LayoutName::Mono],
    };
    let sidechain = match raw.sidechain {
        Some(s) if s.value && kind == Kind::Instrument => {
            problems.push(Problem {
                pos: at(s.referenced),
                message: format!(
                    "audio.sidechain is for effects; this plugin's kind (line {}) is instrument",
                    kind_pos.line
                ),
            });
            false
        }
        Some(s) => s.value,
        None => false,
    };
    AudioInfo { layouts, sidechain, midi_input: raw.midi_input.unwrap_or(kind == Kind::Instrument) }
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
        for (field, value) in [("vendor", &self.vendor), ("version", &self.version)] {
            if value.value.trim().is_empty() {
                problems.push(Problem {
                    pos: at(value.referenced),
                    message: format!("plugin.{field} is empty: give it a value"),
                });
            }
        }
        let kind = self.kind.value;
        let sub_categories = match self.sub_categories {
            None => match kind {
                Kind::Instrument => vec!["Instrument".to_owned(), "Synth".to_owned()],
                Kind::Effect => vec!["Fx".to_owned()],
            },
            Some(subs) => {
                if subs.value.is_empty() {
                    problems.push(Problem {
                        pos: at(subs.referenced),
                        message: format!(
                            "plugin.sub_categories is empty: hosts file the plugin by its sub-categories, so list at \
                             least one (e.g. {}), or leave the field out for that default",
                            if kind == Kind::Instrument { "[Instrument, Synth]" } else { "[Fx]" }
                        ),
                    });
                }
                let mut out = Vec::new();
                for sub in subs.value {
                    if sub.value.trim().is_empty() || sub.value.contains('|') {
                        problems.push(Problem {
                            pos: at(sub.referenced),
                            message: format!(
                                "plugin.sub_categories entry {:?} is not a VST3 sub-category: it must be non-empty \
                                 and without `|` (e.g. Instrument, Synth, Fx, Delay)",
                                sub.value
                            ),
                        });
                    }
                    out.push(sub.value);
                }
                out
            }
        };
        PluginInfo {
            name,
            vendor: self.vendor.value,
            url: self.url,
            email: self.email,
            version: self.version.value,
            class_id,
            kind,
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
/// assert!(trio_xtask::manifest::check_plugin_name("My Synth_2").is_ok());
/// assert!(trio_xtask::manifest::check_plugin_name("a/b").is_err());
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
    base: &Path,
    module_pos: Pos,
    problems: &mut Vec<Problem>,
) -> ModuleSpec {
    let key = role.key();
    let crate_path = raw.krate.value;
    let crate_pos = at(raw.krate.referenced);
    let crate_dir = base.join(&crate_path);
    if crate_path.trim().is_empty() {
        problems.push(Problem {
            pos: crate_pos,
            message: format!("modules.{key}.crate is empty: give the crate's folder relative to build.yaml"),
        });
    } else if !crate_dir.is_dir() {
        problems.push(Problem {
            pos: crate_pos,
            message: format!(
                "modules.{key}.crate: the folder {crate_path:?} does not exist (looked for {}): give the crate's \
                 folder relative to the folder of build.yaml, {}",
                crate_dir.display(),
                base.display()
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

    let default_exports: Vec<String> = match role {
        Role::Bridge => BRIDGE_EXPORTS.iter().map(|s| (*s).to_owned()).collect(),
        Role::RtEngine => trio::abi::engine::EXPORTS.iter().map(|s| (*s).to_owned()).collect(),
        Role::Control => trio::abi::control::EXPORTS.iter().map(|s| (*s).to_owned()).collect(),
    };
    let (exports, export_pos, exports_pos, exports_listed) = match raw.exports {
        None => (default_exports.clone(), vec![module_pos; default_exports.len()], module_pos, false),
        Some(listed) => {
            let exports_pos = at(listed.referenced);
            let mut exports = Vec::new();
            let mut export_pos = Vec::new();
            let mut first_seen: HashMap<String, Pos> = HashMap::new();
            if listed.value.is_empty() {
                problems.push(Problem {
                    pos: exports_pos,
                    message: format!(
                        "modules.{key}.exports is empty: list every symbol the library exports, or leave the \
                         list out to use the SDK's"
                    ),
                });
            }
            for export in listed.value {
                let pos = at(export.referenced);
                let name = export.value;
                if !is_c_identifier(&name) {
                    problems.push(Problem {
                        pos,
                        message: format!(
                            "modules.{key}.exports: {name:?} is not a symbol name (letters, digits and `_`, not \
                             starting with a digit)"
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
            if let Some(descriptor) = role.descriptor_symbol()
                && !first_seen.contains_key(descriptor)
            {
                problems.push(Problem {
                    pos: exports_pos,
                    message: format!(
                        "modules.{key}.exports must list `{descriptor}`: the build tool and the bridge read the \
                         module's ABI version, layout hash and allocation policy from it"
                    ),
                });
            }
            (exports, export_pos, exports_pos, true)
        }
    };
    let default_allocation = if role == Role::Control { Allocation::Allow } else { Allocation::Forbid };
    let (allocation, allocation_pos) = match raw.allocation {
        Some(a) => (a.value, at(a.referenced)),
        None => (default_allocation, module_pos),
    };

    ModuleSpec {
        role,
        crate_path,
        crate_dir,
        allocation,
        exports,
        exports_listed,
        hot_reload,
        crate_pos,
        allocation_pos,
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
        let root = crate::framework_root();
        let text = std::fs::read_to_string(root.join(FILE_NAME)).unwrap();
        Manifest::parse(&edit(text), Path::new(FILE_NAME), &root)
    }

    #[test]
    fn the_example_parses_with_defaults() {
        let manifest = parse_example(|t| t).unwrap();
        assert_eq!(manifest.plugin.name, "TrioSynth");
        assert_eq!(manifest.plugin.kind, Kind::Instrument);
        assert_eq!(manifest.audio, AudioInfo { layouts: vec![LayoutName::Stereo], sidechain: false, midi_input: true });
        assert_eq!(manifest.rt_engine.allocation, Allocation::Forbid);
        assert_eq!(manifest.control.allocation, Allocation::Allow);
        assert!(manifest.control.hot_reload && !manifest.bridge.hot_reload);
        assert_eq!(manifest.control.exports[0], trio::abi::control::DESCRIPTOR);
        assert_eq!(manifest.bridge.crate_dir, framework_bridge_dir());
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
            parse_example(|t| t.replace("name: TrioSynth", "name: a.b").replace("crate: control", "crate: nowhere"))
                .unwrap_err();
        let lines: Vec<u64> = error.problems.iter().map(|p| p.pos.line).collect();
        assert_eq!(lines.len(), 2, "{error}");
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{error}");
        assert!(error.to_string().starts_with("2 problems in build.yaml:\n"), "{error}");
    }

    #[test]
    fn an_instrument_cannot_have_a_sidechain_or_a_mono_output() {
        let error =
            parse_example(|t| t.replace("\nmodules:", "\naudio:\n  sidechain: true\n  layouts: [mono]\nmodules:"))
                .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("audio.sidechain is for effects"), "{text}");
        assert!(text.contains("must be [stereo]"), "{text}");
    }

    #[test]
    fn an_empty_list_of_sub_categories_is_refused() {
        let error =
            parse_example(|t| t.replace("sub_categories: [Instrument, Synth]", "sub_categories: []")).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert!(error.to_string().contains("plugin.sub_categories is empty"), "{error}");
    }

    #[test]
    fn errors_of_the_yaml_parser_name_the_field() {
        for (edit, field, message) in [
            (("kind: instrument", "kind: |"), "plugin.kind: ", "unknown variant"),
            (("kind: instrument", "kind: [instrument]"), "plugin.kind: ", ""),
            // A syntax error, noticed on the next line.
            (("version: 0.1.0", "version: 'unterminated"), "not valid YAML: ", "is not closed"),
            (("hot_reload: true", "hot_reload: |"), "modules.control.hot_reload: ", ""),
            (
                ("    crate: control", "    crate: control\n    exprots: []"),
                "modules.control: unknown field `exprots`",
                "",
            ),
        ] {
            let error = parse_example(|t| t.replacen(edit.0, edit.1, 1)).unwrap_err();
            let text = error.to_string();
            assert_eq!(error.problems.len(), 1, "{text}");
            assert!(error.problems[0].message.contains(field), "{edit:?}: {text}");
            assert!(text.contains(message), "{edit:?}: {text}");
        }
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
