//! `cargo xtask new <name>`: a new plugin project, copied from this one.
//!
//! The new workspace gets copies of `shared/`, `rt_engine/`, `control/`, `bridge/`,
//! `scripts/`, `tests/host/` (the headless host `cargo xtask dev` plays through), `Cargo.toml`, `Cargo.lock`, `.cargo/config.toml`, `rustfmt.toml`,
//! `.gitignore` and `build.yaml`, and a short README. Left out: `target/` and `.git/`
//! (at any depth) and the rest of `tests/`, whose crate is also removed from the workspace's members. In
//! `build.yaml` the plugin's name becomes `<name>`, the class id a fresh random one, and
//! the vendor, web address and e-mail placeholders to fill in. The project is written
//! under a hidden name and renamed into place when complete.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fsutil;
use crate::manifest::{ClassId, Manifest, check_plugin_name};

/// The folders copied into a new project.
pub const COPIED_DIRS: &[&str] = &["shared", "rt_engine", "control", "bridge", "scripts", "tests/host"];
/// The files copied into a new project (`.gitignore` only if present).
pub const COPIED_FILES: &[&str] =
    &["Cargo.toml", "Cargo.lock", ".cargo/config.toml", "rustfmt.toml", "build.yaml", ".gitignore"];
/// Vendor placeholder in a new project's `build.yaml`.
pub const VENDOR_PLACEHOLDER: &str = "Your Company";

/// What `cargo xtask new` was asked to do.
#[derive(Clone, Debug)]
pub struct NewOptions {
    /// The plugin's name (also the project folder's name).
    pub name: String,
    /// The folder to create the project folder in.
    pub parent: PathBuf,
    /// The workspace to copy from.
    pub source: PathBuf,
}

/// Creates the project `<parent>/<name>`; returns its path.
///
/// # Errors
/// The name is not a valid plugin name, the destination exists, or copying fails (then
/// nothing is left at the destination).
pub fn new_project(options: &NewOptions) -> Result<PathBuf> {
    let name = &options.name;
    check_plugin_name(name)
        .map_err(|why| anyhow::anyhow!("{name:?} cannot be a plugin name: {why} (it names the bundle, <name>.vst3)"))?;
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

fn write_project(options: &NewOptions, root: &Path) -> Result<()> {
    let source = &options.source;
    std::fs::create_dir(root).with_context(|| format!("cannot create {}", root.display()))?;
    for dir in COPIED_DIRS {
        if let Some(parent) = root.join(dir).parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fsutil::copy_dir(&source.join(dir), &root.join(dir), &["target", ".git"])?;
    }
    for file in COPIED_FILES {
        let (from, to) = (source.join(file), root.join(file));
        if !from.exists() && *file == ".gitignore" {
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::copy(&from, &to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }

    let cargo_toml = root.join("Cargo.toml");
    let text = read(&cargo_toml)?;
    write(&cargo_toml, &without_member(&text, "tests").with_context(|| format!("editing {}", cargo_toml.display()))?)?;

    let build_yaml = root.join("build.yaml");
    let class_id = random_class_id()?;
    let text = read(&build_yaml)?;
    let new_text = rewrite_build_yaml(&text, &options.name, class_id)?;
    // The result must be a valid manifest with the values we meant to write.
    let manifest = Manifest::parse(&new_text, &build_yaml, root)
        .map_err(|e| anyhow::anyhow!("the new build.yaml is not valid (this is a bug in `xtask new`): {e}"))?;
    if manifest.plugin.name != options.name || manifest.plugin.class_id != class_id {
        bail!("could not set the name and class id in {} (this is a bug in `xtask new`)", build_yaml.display());
    }
    write(&build_yaml, &new_text)?;
    write(&root.join("README.md"), &readme(&options.name))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
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

/// Removes `"member"` from the workspace's `members = [...]` list in a `Cargo.toml`.
///
/// # Errors
/// There is no `members` list.
///
/// # Examples
/// ```
/// let toml = "[workspace]\nmembers = [\"shared\", \"tests\", \"bridge\"]\n";
/// let out = trio_xtask::scaffold::without_member(toml, "tests").unwrap();
/// assert_eq!(out, "[workspace]\nmembers = [\"shared\", \"bridge\"]\n");
/// ```
pub fn without_member(toml: &str, member: &str) -> Result<String> {
    let start = toml
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| line.trim_start().starts_with("members") && line.contains('='))
        .map(|(at, _)| at)
        .context("no `members = [...]` in the workspace's Cargo.toml")?;
    let open = start + toml[start..].find('[').context("`members` is not a list")?;
    let close = open + toml[open..].find(']').context("`members` list is not closed")?;
    let quoted = format!("\"{member}\"");
    let items: Vec<&str> =
        toml[open + 1..close].split(',').map(str::trim).filter(|s| !s.is_empty() && *s != quoted).collect();
    Ok(format!("{}[{}]{}", &toml[..open], items.join(", "), &toml[close + 1..]))
}

/// `build.yaml` with the plugin's name, class id, vendor, web address and e-mail replaced
/// (comments and everything else kept), and `<Old>.vst3` in comments renamed.
///
/// # Errors
/// One of those keys is missing from the `plugin:` section.
pub fn rewrite_build_yaml(text: &str, name: &str, class_id: ClassId) -> Result<String> {
    let slug: String = name.to_ascii_lowercase().replace([' ', '_'], "-");
    let replacements = [
        ("name", format!("\"{name}\"")),
        ("vendor", format!("\"{VENDOR_PLACEHOLDER}\"")),
        ("url", format!("https://example.com/{slug}")),
        ("email", "support@example.com".to_owned()),
        ("class_id", class_id.to_string()),
    ];
    let mut old_name = None;
    let mut done = Vec::new();
    let mut in_plugin = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        if !content.starts_with([' ', '\t', '#']) && !content.is_empty() {
            in_plugin = content.trim_end() == "plugin:";
        }
        let indent = content.len() - content.trim_start().len();
        let mut replaced = false;
        if in_plugin && indent > 0 {
            for (key, value) in &replacements {
                let Some(rest) = content.trim_start().strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
                    continue;
                };
                // Keep a trailing comment: the value never contains " #".
                let (old_value, comment) = match rest.find(" #") {
                    Some(at) => (&rest[..at], &rest[at..]),
                    None => (rest, ""),
                };
                if *key == "name" {
                    old_name = Some(old_value.trim().trim_matches(['"', '\'']).to_owned());
                }
                // Keep the comment's column where the new value is not longer than the old.
                let pad = if comment.is_empty() { 0 } else { old_value.len().saturating_sub(value.len() + 1) };
                out.push_str(&format!("{}{key}: {value}{:pad$}{comment}\n", &content[..indent], ""));
                done.push(*key);
                replaced = true;
                break;
            }
        }
        if !replaced {
            out.push_str(line);
        }
    }
    for (key, _) in &replacements {
        if !done.contains(key) {
            bail!("build.yaml has no `plugin.{key}` line to replace");
        }
    }
    if let Some(old) = old_name.filter(|o| !o.is_empty()) {
        out = out.replace(&format!("{old}.vst3"), &format!("{name}.vst3"));
    }
    Ok(out)
}

fn readme(name: &str) -> String {
    format!(
        "# {name}\n\
         \n\
         A VST3 plugin built as three Rust libraries (a bridge the host loads, a real-time\n\
         engine, a control module) that share one block of memory. It started as a copy of\n\
         the Trio example instrument: change the DSP in `rt_engine/`, the parameters and\n\
         presets in `control/`, and the plugin's name and ids in `build.yaml`.\n\
         \n\
         Before releasing it, fill in `vendor`, `url` and `email` in `build.yaml`. The\n\
         `class_id` was generated at random for this project: keep it once the plugin is\n\
         released, hosts identify the plugin by it.\n\
         \n\
         ```sh\n\
         cargo xtask bundle --release   # builds and checks target/bundle/{name}.vst3\n\
         cargo xtask install --release  # copies it to ~/.vst3/\n\
         cargo xtask test               # runs the tests\n\
         ```\n\
         \n\
         | folder | what it is |\n\
         |---|---|\n\
         | `shared/` | the shared block layout and the module C ABI |\n\
         | `rt_engine/` | the engine: DSP only, never allocates while processing |\n\
         | `control/` | parameters, presets, MIDI CC map, state |\n\
         | `bridge/` | the library the host loads |\n\
         | `scripts/` | the build tool (`cargo xtask ...`) |\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "# turns into target/bundle/TrioSynth.vst3\nplugin:\n  name: TrioSynth\n  vendor: Trio Audio\n  url: https://example.com/triosynth\n  email: support@example.com\n  version: 0.1.0\n  class_id: 6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061   # 32 hex digits\nmodules:\n  bridge:\n    name: untouched\n";

    #[test]
    fn rewrites_only_the_plugin_section() {
        let id = ClassId([0xAB; 16]);
        let out = rewrite_build_yaml(YAML, "My Synth", id).unwrap();
        assert!(out.starts_with("# turns into target/bundle/My Synth.vst3\n"), "{out}");
        assert!(out.contains("  name: \"My Synth\"\n"), "{out}");
        assert!(out.contains(&format!("  class_id: {id}   # 32 hex digits\n")), "{out}");
        assert!(out.contains("  url: https://example.com/my-synth\n"), "{out}");
        assert!(out.contains("  vendor: \"Your Company\"\n"), "{out}");
        assert!(out.contains("    name: untouched\n"), "{out}");
    }

    #[test]
    fn removes_a_multi_line_member() {
        let toml = "[workspace]\nmembers = [\n  \"shared\",\n  \"tests\",\n]\nresolver = \"3\"\n";
        assert_eq!(without_member(toml, "tests").unwrap(), "[workspace]\nmembers = [\"shared\"]\nresolver = \"3\"\n");
    }
}
