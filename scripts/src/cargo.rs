//! Running cargo: finding a crate's package, building libraries and learning where cargo
//! put them.
//!
//! Cargo is asked rather than guessed: `cargo metadata` gives a crate folder's package name,
//! library kind and target folder, and `cargo build --message-format=json` names every
//! file it produced, so `CARGO_TARGET_DIR`, a `target-dir` setting or a crate outside the
//! workspace all work.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The cargo to run: `$CARGO` (set when running under cargo), else `cargo` from `PATH`.
pub fn command() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// What cargo knows about the crate in one folder.
#[derive(Clone, Debug)]
pub struct CrateInfo {
    /// The package name (`name` in its `Cargo.toml`).
    pub package: String,
    /// The crate's `Cargo.toml`.
    pub manifest_path: PathBuf,
    /// The root of the workspace it belongs to.
    pub workspace_root: PathBuf,
    /// The workspace's target folder.
    pub target_directory: PathBuf,
    /// The library target's crate types (`cdylib`, `rlib`...), empty without a library.
    pub lib_crate_types: Vec<String>,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<MetaPackage>,
    workspace_root: PathBuf,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct MetaPackage {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<MetaTarget>,
}

#[derive(Deserialize)]
struct MetaTarget {
    kind: Vec<String>,
    crate_types: Vec<String>,
}

/// Asks cargo about the crate in `crate_dir`.
///
/// # Errors
/// `cargo metadata` fails (its message is included), or the folder's `Cargo.toml` is not
/// a package.
pub fn crate_info(crate_dir: &Path) -> Result<CrateInfo> {
    let manifest = crate_dir.join("Cargo.toml");
    let output = command()
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::piped())
        .output()
        .context("could not run cargo")?;
    if !output.status.success() {
        bail!("`cargo metadata` failed for {}: {}", manifest.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout).context("cannot read `cargo metadata` output")?;
    let wanted = manifest.canonicalize().with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let package = metadata
        .packages
        .into_iter()
        .find(|p| p.manifest_path.canonicalize().is_ok_and(|p| p == wanted))
        .with_context(|| format!("{} is a workspace manifest, not a package", manifest.display()))?;
    let lib_crate_types = package
        .targets
        .iter()
        .find(|t| t.kind.iter().any(|k| matches!(k.as_str(), "lib" | "cdylib" | "rlib" | "dylib" | "staticlib")))
        .map(|t| t.crate_types.clone())
        .unwrap_or_default();
    Ok(CrateInfo {
        package: package.name,
        manifest_path: wanted,
        workspace_root: metadata.workspace_root,
        target_directory: metadata.target_directory,
        lib_crate_types,
    })
}

#[derive(Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
enum BuildMessage {
    CompilerArtifact {
        manifest_path: PathBuf,
        target: ArtifactTarget,
        filenames: Vec<PathBuf>,
    },
    CompilerMessage {
        message: Diagnostic,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ArtifactTarget {
    crate_types: Vec<String>,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    rendered: Option<String>,
}

/// Builds the libraries of `crates` (`cargo build -p <package>... --lib [--release]`, one
/// cargo run per workspace) and returns each crate's built shared library, keyed by its
/// `Cargo.toml` path.
///
/// Cargo's progress and the compiler's messages are shown as they come.
///
/// # Errors
/// Cargo cannot run, the build fails (the message includes the compiler's first errors),
/// or a crate produced no shared library.
pub fn build_libraries(crates: &[&CrateInfo], release: bool) -> Result<BTreeMap<PathBuf, PathBuf>> {
    let mut by_workspace: BTreeMap<&Path, Vec<&CrateInfo>> = BTreeMap::new();
    for info in crates {
        by_workspace.entry(&info.workspace_root).or_default().push(info);
    }
    let mut built = BTreeMap::new();
    for (root, members) in by_workspace {
        let mut args: Vec<String> = vec!["build".into()];
        for member in &members {
            args.extend(["-p".into(), member.package.clone()]);
        }
        args.push("--lib".into());
        if release {
            args.push("--release".into());
        }
        let shown = format!("cargo {}", args.join(" "));
        args.extend(["--message-format=json".into(), "--manifest-path".into()]);
        args.push(root.join("Cargo.toml").to_string_lossy().into_owned());
        let artifacts = run_build(&args, root, &shown)?;
        for member in members {
            let library = artifacts
                .iter()
                .filter(|(manifest, _)| manifest.canonicalize().is_ok_and(|m| m == member.manifest_path))
                .map(|(_, file)| file)
                .next()
                .with_context(|| {
                    format!(
                        "`{shown}` built no shared library for package `{}`: add `crate-type = [\"cdylib\"]` to \
                         [lib] in {}",
                        member.package,
                        member.manifest_path.display()
                    )
                })?;
            built.insert(member.manifest_path.clone(), library.clone());
        }
    }
    Ok(built)
}

/// Builds a plugin's generated bridge crate ([`crate::shim`]) into `target_dir` and returns
/// its shared library.
///
/// # Errors
/// Cargo cannot run, the build fails, or it produced no shared library.
pub fn build_shim(shim: &crate::shim::Shim, target_dir: &Path, release: bool) -> Result<PathBuf> {
    let mut args: Vec<String> = vec!["build".into(), "--lib".into()];
    if release {
        args.push("--release".into());
    }
    let shown = format!("cargo {} (the bridge of this plugin, in {})", args.join(" "), shim.dir.display());
    args.extend(["--message-format=json".into(), "--manifest-path".into()]);
    args.push(shim.manifest_path.to_string_lossy().into_owned());
    args.push("--target-dir".into());
    args.push(target_dir.to_string_lossy().into_owned());
    let artifacts = run_build(&args, &shim.dir, &shown)?;
    artifacts.into_iter().map(|(_, file)| file).next().with_context(|| format!("`{shown}` built no shared library"))
}

/// Runs one `cargo build` with JSON messages; returns (package manifest, `.so` file) pairs.
fn run_build(args: &[String], root: &Path, shown: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut child = command()
        .args(args)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not run cargo")?;
    // Cargo's own messages (progress, "could not compile") arrive on stderr: show them and
    // keep the error lines for the summary.
    let stderr = child.stderr.take().context("cargo's stderr")?;
    let stderr_thread = std::thread::spawn(move || {
        let mut errors = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.trim_start().starts_with("error") {
                errors.push(line);
            }
        }
        errors
    });
    let mut artifacts = Vec::new();
    let mut first_errors = Vec::new();
    let stdout = child.stdout.take().context("cargo's stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        match serde_json::from_str::<BuildMessage>(&line) {
            Ok(BuildMessage::CompilerArtifact { manifest_path, target, filenames }) => {
                if target.crate_types.iter().any(|t| t == "cdylib") {
                    let so = filenames.into_iter().find(|f| f.extension().is_some_and(|e| e == "so"));
                    if let Some(so) = so {
                        artifacts.push((manifest_path, so));
                    }
                }
            }
            Ok(BuildMessage::CompilerMessage { message }) => {
                if let Some(rendered) = message.rendered {
                    eprint!("{rendered}");
                    if message.level == "error" && first_errors.len() < 3 {
                        first_errors.push(rendered.trim_end().to_owned());
                    }
                }
            }
            Ok(BuildMessage::Other) => {}
            // Not JSON (a build script's output, say): show it as it is.
            Err(_) => println!("{line}"),
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    let cargo_errors = stderr_thread.join().unwrap_or_default();
    if !status.success() {
        let details = if first_errors.is_empty() { cargo_errors.join("\n") } else { first_errors.join("\n\n") };
        bail!(
            "building the modules failed: `{shown}` (in {}) exited with {status}. Fix the errors below (the full \
             output is above) and run the command again.\n\n{details}",
            root.display()
        );
    }
    Ok(artifacts)
}
