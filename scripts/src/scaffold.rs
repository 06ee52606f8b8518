//! `cargo xtask new <Name> --kind instrument|effect`: a thin plugin project that depends
//! on the framework.
//!
//! The project holds only the plugin's own code: `engine/` (its `Engine`), `control/` (its
//! `Control`), `common/` (the parameter ids both read), `xtask/` (three lines that run
//! [`crate::cli::main`]), `build.yaml`, a workspace `Cargo.toml`, `.cargo/config.toml`
//! (the `cargo xtask` alias), `.gitignore`, `README.md` and the framework's `Cargo.lock`
//! (so the project starts on the dependency versions the framework was tested with). No
//! framework folder is copied: `trio`, `trio-dsp` and `trio-xtask` are dependencies, by
//! path to this checkout or by git URL ([`Framework`]), so a framework update reaches the
//! project with `cargo update`. The instrument plays a polyphonic filtered saw; the effect
//! is a saturator with tone, mix and output. The files come from `scripts/templates/`.
//! The project is written under a hidden name and renamed into place when complete.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail};

use crate::fsutil;
use crate::manifest::{ClassId, Manifest, check_plugin_name};

/// Vendor placeholder in a new project's `build.yaml`.
pub const VENDOR_PLACEHOLDER: &str = "Your Company";

/// What kind of plugin to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Notes in, audio out.
    Instrument,
    /// Audio in, audio out.
    Effect,
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "instrument" => Ok(Self::Instrument),
            "effect" => Ok(Self::Effect),
            other => Err(format!("{other:?} is not a kind of plugin: write instrument or effect")),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Instrument => "instrument",
            Self::Effect => "effect",
        })
    }
}

/// Where the new project gets the framework from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framework {
    /// A checkout on this machine (the folder holding `shared/`, `dsp/` and `scripts/`).
    Path(PathBuf),
    /// A git repository URL holding the framework's workspace.
    Git(String),
}

/// What `cargo xtask new` was asked to do.
#[derive(Clone, Debug)]
pub struct NewOptions {
    /// The plugin's name (also the project folder's name).
    pub name: String,
    /// Instrument or effect.
    pub kind: Kind,
    /// The folder to create the project folder in.
    pub parent: PathBuf,
    /// Where the project's dependencies on the framework point.
    pub framework: Framework,
}

/// One template file: where it goes in the project, and its text.
struct Template {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        Template { path: $path, text: include_str!(concat!("../templates/", $file)) }
    };
}

/// The files every project gets.
const PROJECT: &[Template] = &[
    template!("Cargo.toml", "project/Cargo.toml.tmpl"),
    template!(".cargo/config.toml", "project/config.toml.tmpl"),
    template!(".gitignore", "project/gitignore.tmpl"),
    template!("build.yaml", "project/build.yaml.tmpl"),
    template!("README.md", "project/README.md.tmpl"),
    template!("xtask/Cargo.toml", "project/xtask-Cargo.toml.tmpl"),
    template!("xtask/src/main.rs", "project/xtask-main.rs.tmpl"),
    template!("common/Cargo.toml", "project/common-Cargo.toml.tmpl"),
    template!("engine/Cargo.toml", "project/engine-Cargo.toml.tmpl"),
    template!("control/Cargo.toml", "project/control-Cargo.toml.tmpl"),
];

/// The plugin's own code, by kind.
const INSTRUMENT: &[Template] = &[
    template!("common/src/lib.rs", "instrument/common.rs.tmpl"),
    template!("engine/src/lib.rs", "instrument/engine.rs.tmpl"),
    template!("control/src/lib.rs", "instrument/control.rs.tmpl"),
];
const EFFECT: &[Template] = &[
    template!("common/src/lib.rs", "effect/common.rs.tmpl"),
    template!("engine/src/lib.rs", "effect/engine.rs.tmpl"),
    template!("control/src/lib.rs", "effect/control.rs.tmpl"),
];

/// Creates the project `<parent>/<name>`; returns its path.
///
/// # Errors
/// The name is not a valid plugin name, the destination exists, the framework path is not
/// a framework checkout, or writing fails (then nothing is left at the destination).
pub fn new_project(options: &NewOptions) -> Result<PathBuf> {
    let name = &options.name;
    check_plugin_name(name)
        .map_err(|why| anyhow::anyhow!("{name:?} cannot be a plugin name: {why} (it names the bundle, <name>.vst3)"))?;
    if !name.chars().any(|c| c.is_ascii_alphabetic()) {
        bail!("{name:?} cannot be a plugin name: it needs a letter (its crates and types are named after it)");
    }
    if let Framework::Path(root) = &options.framework {
        for part in ["shared/Cargo.toml", "dsp/Cargo.toml", "scripts/Cargo.toml"] {
            if !root.join(part).is_file() {
                bail!("{} is not a Trio framework checkout: it has no {part}", root.display());
            }
        }
    }
    let dest = options.parent.join(name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        bail!("{} already exists: choose another name, or another folder with --dest", dest.display());
    }
    if !options.parent.is_dir() {
        bail!("the folder {} does not exist: create it first, or choose another with --dest", options.parent.display());
    }
    let tmp = fsutil::scratch_path(&dest, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let result = write_project(options, &tmp).and_then(|()| {
        std::fs::rename(&tmp, &dest).with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    Ok(dest)
}

/// The values the templates' `{{...}}` placeholders take.
fn placeholders(options: &NewOptions, class_id: ClassId) -> Vec<(&'static str, String)> {
    let name = &options.name;
    let dep = |package: &str, folder: &str| match &options.framework {
        Framework::Path(root) => format!("{{ path = {} }}", toml_string(&root.join(folder).to_string_lossy())),
        Framework::Git(url) => format!("{{ git = {}, package = {} }}", toml_string(url), toml_string(package)),
    };
    let (kind_section, dev_input) = match options.kind {
        Kind::Instrument => (
            "  kind: instrument\n  sub_categories: [Instrument, Synth]\n",
            "a held chord (`--notes`, `--midi` choose others)",
        ),
        Kind::Effect => (
            "  kind: effect\n  sub_categories: [Fx]\naudio:\n  layouts: [stereo, mono]   # main bus layouts it accepts, default first\n  sidechain: false          # true adds a sidechain input (Block::sidechain)\n",
            "plucked tones through it (`--input file.wav` loops a file instead)",
        ),
    };
    vec![
        ("name", name.clone()),
        ("type", type_name(name)),
        ("crate", crate_name(name)),
        ("slug", crate_name(name).replace('_', "-")),
        ("kind", options.kind.to_string()),
        ("class_id", class_id.to_string()),
        ("vendor", VENDOR_PLACEHOLDER.to_owned()),
        ("kind_section", kind_section.to_owned()),
        ("dev_input", dev_input.to_owned()),
        ("dep_trio", dep("trio", "shared")),
        ("dep_dsp", dep("trio-dsp", "dsp")),
        ("dep_xtask", dep("trio-xtask", "scripts")),
    ]
}

/// `template` with every `{{key}}` replaced.
///
/// # Errors
/// A placeholder with no value (a bug in the templates).
fn fill(template: &Template, values: &[(&str, String)]) -> Result<String> {
    let mut text = template.text.to_owned();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = text.find("{{") {
        let end = text[at..].find("}}").map_or(text.len(), |e| at + e + 2);
        bail!("template {} has an unknown placeholder {} (a bug in `xtask new`)", template.path, &text[at..end]);
    }
    Ok(text)
}

fn write_project(options: &NewOptions, root: &Path) -> Result<()> {
    let class_id = random_class_id()?;
    let values = placeholders(options, class_id);
    let own = match options.kind {
        Kind::Instrument => INSTRUMENT,
        Kind::Effect => EFFECT,
    };
    for template in PROJECT.iter().chain(own) {
        let path = root.join(template.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = fill(template, &values)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Start from the versions the framework was tested with; Cargo prunes what the project
    // does not use on its first build.
    if let Framework::Path(framework) = &options.framework {
        let lock = framework.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, root.join("Cargo.lock"))
                .with_context(|| format!("cannot copy {} into the project", lock.display()))?;
        }
    }
    // The result must be a valid manifest with the values we meant to write.
    let build_yaml = root.join("build.yaml");
    let text = std::fs::read_to_string(&build_yaml).with_context(|| format!("cannot read {}", build_yaml.display()))?;
    let manifest = Manifest::parse(&text, &build_yaml, root)
        .map_err(|e| anyhow::anyhow!("the new build.yaml is not valid (a bug in `xtask new`): {e}"))?;
    if manifest.plugin.name != options.name || manifest.plugin.class_id != class_id {
        bail!("could not set the name and class id in {} (a bug in `xtask new`)", build_yaml.display());
    }
    Ok(())
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The words of a plugin name (split at spaces, `_` and `-`).
fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split([' ', '_', '-']).filter(|w| !w.is_empty())
}

/// The Rust type prefix for a plugin name: `"Scaffold Synth"` → `ScaffoldSynth`.
///
/// # Examples
/// ```
/// use trio_xtask::scaffold::type_name;
/// assert_eq!(type_name("Scaffold Synth"), "ScaffoldSynth");
/// assert_eq!(type_name("my-delay"), "MyDelay");
/// assert_eq!(type_name("3 Band EQ"), "Plugin3BandEQ");
/// ```
pub fn type_name(name: &str) -> String {
    let mut out: String = words(name)
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Plugin");
    }
    out
}

/// The crate-name prefix for a plugin name: `"Scaffold Synth"` → `scaffold_synth`.
///
/// # Examples
/// ```
/// use trio_xtask::scaffold::crate_name;
/// assert_eq!(crate_name("Scaffold Synth"), "scaffold_synth");
/// assert_eq!(crate_name("3 Band EQ"), "plugin_3_band_eq");
/// ```
pub fn crate_name(name: &str) -> String {
    let out = words(name).map(str::to_ascii_lowercase).collect::<Vec<_>>().join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) { format!("plugin_{out}") } else { out }
}

/// 16 random bytes from the kernel.
///
/// # Errors
/// `/dev/urandom` cannot be read.
pub fn random_class_id() -> Result<ClassId> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read random bytes from /dev/urandom")?;
    if bytes == [0; 16] {
        bytes[15] = 1;
    }
    Ok(ClassId(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(kind: Kind, framework: Framework) -> NewOptions {
        NewOptions { name: "My Synth".into(), kind, parent: PathBuf::new(), framework }
    }

    #[test]
    fn every_placeholder_of_every_template_has_a_value() {
        for kind in [Kind::Instrument, Kind::Effect] {
            let values =
                placeholders(&options(kind, Framework::Git("https://example.com/trio.git".into())), ClassId([7; 16]));
            let own = if kind == Kind::Instrument { INSTRUMENT } else { EFFECT };
            for t in PROJECT.iter().chain(own) {
                let text = fill(t, &values).unwrap();
                assert!(!text.contains("{{"), "{}", t.path);
            }
        }
    }

    #[test]
    fn dependencies_point_at_the_framework() {
        let values = placeholders(&options(Kind::Effect, Framework::Path("/opt/trio \"x\"".into())), ClassId([7; 16]));
        let toml = fill(&PROJECT[0], &values).unwrap();
        assert!(toml.contains(r#"trio = { path = "/opt/trio \"x\"/shared" }"#), "{toml}");
        let values = placeholders(
            &options(Kind::Effect, Framework::Git("https://example.com/trio.git".into())),
            ClassId([7; 16]),
        );
        let toml = fill(&PROJECT[0], &values).unwrap();
        assert!(
            toml.contains(r#"trio-xtask = { git = "https://example.com/trio.git", package = "trio-xtask" }"#),
            "{toml}"
        );
    }

    #[test]
    fn an_unknown_placeholder_is_reported() {
        let t = Template { path: "x.rs", text: "fn {{nope}}() {}" };
        let e = fill(&t, &[]).unwrap_err().to_string();
        assert!(e.contains("{{nope}}") && e.contains("x.rs"), "{e}");
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("effect".parse::<Kind>(), Ok(Kind::Effect));
        assert!("synth".parse::<Kind>().unwrap_err().contains("instrument or effect"));
    }
}
