//! The build tool, run as `cargo xtask <command>`.
//!
//! - `test`: builds everything the tests load (the modules, and the test-only probe
//!   build of them), then runs the whole test suite.
//! - `bundle`: builds the three libraries, checks them against `build.yaml` and
//!   assembles `target/bundle/<Name>.vst3`.
//! - `install`: copies the bundle to `~/.vst3/`.
//! - `new`: creates a new plugin project from this one.
//! - `dev`: the hot-reload development loop (see `trio_xtask::dev`).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use trio_xtask::{bundle, install, manifest, scaffold, workspace_root};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bundle") => bundle_command(&args[1..]),
        Some("install") => install_command(&args[1..]),
        Some("new") => new_command(&args[1..]),
        Some("dev") => dev_command(&args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
        None => {
            println!("{USAGE}");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [--no-hosts] [args...]
                   build the modules (and their test-only probe build), run every test, then
                   the real-host tests (release bundle in pedalboard; --no-hosts leaves them
                   out); extra args go to the test runner
  bundle [--release] [--manifest <build.yaml>] [--out <folder>]
                   build the three libraries, check their exports and descriptors against
                   build.yaml, and assemble <folder>/<Name>.vst3 (default folder: target/bundle)
  install [--release] [--dest <folder>] [--manifest <build.yaml>] [--out <folder>]
                   copy the bundle made by `bundle` to <folder> (default: ~/.vst3); with
                   --release, refuse a bundle that is not a release build
  new <name> [--dest <folder>]
                   create a new plugin project <folder>/<name> from this one (default folder:
                   the one this workspace is in)
  dev [--seconds <s>] [--out <file.wav>] [--notes <list> | --midi <file.mid>]
      [--param <title>=<text>]... [--sample-rate <hz>] [--block <frames>] [--null-sink]
      [--manifest <build.yaml>]
                   build the development bundle, play it in real time (sound card with the
                   audio-device feature, otherwise a null sink; always recorded to --out,
                   default target/dev/session.wav), rebuild and hot-reload the control module
                   on every save in its crate, printing one line per reload. Notes loop; the
                   default is a held chord. --notes \"60@0+1,64@0.5+1\" is pitch@start+length
                   in seconds; --param Arpeggiator=On sets a parameter by its title and display text";

/// Command-line options shared by the commands.
#[derive(Default)]
struct Options {
    release: bool,
    manifest: Option<PathBuf>,
    out: Option<PathBuf>,
    dest: Option<PathBuf>,
    positional: Vec<String>,
}

/// Parses `args`, accepting only the flags in `allowed`.
fn parse_options(command: &str, args: &[String], allowed: &[&str]) -> Result<Options> {
    let mut options = Options::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let flag = arg.split_once('=').map_or(arg.as_str(), |(f, _)| f);
        if flag.starts_with("--") && !allowed.contains(&flag) {
            bail!("`{command}` has no option `{flag}`\n\n{USAGE}");
        }
        let mut value = || -> Result<PathBuf> {
            match arg.split_once('=') {
                Some((_, v)) => Ok(PathBuf::from(v)),
                None => iter.next().map(PathBuf::from).with_context(|| format!("`{flag}` needs a value\n\n{USAGE}")),
            }
        };
        match flag {
            "--release" => options.release = true,
            "--manifest" => options.manifest = Some(value()?),
            "--out" => options.out = Some(value()?),
            "--dest" => options.dest = Some(value()?),
            _ if arg.starts_with('-') => bail!("`{command}` has no option `{arg}`\n\n{USAGE}"),
            _ => options.positional.push(arg.clone()),
        }
    }
    Ok(options)
}

fn dev_command(args: &[String]) -> Result<()> {
    let mut options = trio_xtask::dev::DevOptions {
        manifest: workspace_root().join(manifest::FILE_NAME),
        workspace: workspace_root(),
        seconds: None,
        wav: workspace_root().join("target/dev/session.wav"),
        notes: None,
        params: Vec::new(),
        sample_rate: 48_000.0,
        block: 256,
        null_sink: false,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .with_context(|| format!("`{flag}` needs a value\n\n{USAGE}"))
        };
        let number = |text: String, what: &str| -> Result<f64> {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .with_context(|| format!("`{flag} {text}`: {what} must be a positive number"))
        };
        match flag {
            "--manifest" => options.manifest = PathBuf::from(value()?),
            "--seconds" => options.seconds = Some(number(value()?, "the duration")?),
            "--out" => options.wav = PathBuf::from(value()?),
            "--notes" => options.notes = Some(trio_host::parse_notes(&value()?)?),
            "--midi" => options.notes = Some(trio_host::read_midi_file(std::path::Path::new(&value()?))?),
            "--param" => {
                let text = value()?;
                let (title, setting) = text.split_once('=').with_context(|| {
                    format!("`--param {text}`: write it as <title>=<text>, e.g. --param Arpeggiator=On")
                })?;
                options.params.push((title.trim().to_owned(), setting.trim().to_owned()));
            }
            "--sample-rate" => options.sample_rate = number(value()?, "the sample rate")?,
            "--block" => options.block = number(value()?, "the block size")? as usize,
            "--null-sink" => options.null_sink = true,
            other => bail!("`dev` has no option `{other}`\n\n{USAGE}"),
        }
    }
    trio_xtask::dev::run(&options)
}

fn manifest_path(options: &Options) -> PathBuf {
    options.manifest.clone().unwrap_or_else(|| workspace_root().join(manifest::FILE_NAME))
}

fn bundle_command(args: &[String]) -> Result<()> {
    let options = parse_options("bundle", args, &["--release", "--manifest", "--out"])?;
    if let Some(extra) = options.positional.first() {
        bail!("`bundle` takes no argument `{extra}`\n\n{USAGE}");
    }
    let report = bundle::bundle(&bundle::BundleOptions {
        manifest: manifest_path(&options),
        release: options.release,
        out_dir: options.out,
    })?;
    println!("{report}");
    Ok(())
}

fn install_command(args: &[String]) -> Result<()> {
    let options = parse_options("install", args, &["--release", "--manifest", "--out", "--dest"])?;
    if let Some(extra) = options.positional.first() {
        bail!("`install` takes no argument `{extra}`\n\n{USAGE}");
    }
    let installed = install::install(&install::InstallOptions {
        manifest: manifest_path(&options),
        out_dir: options.out,
        dest: options.dest,
        release: options.release,
    })?;
    println!("installed: {}", installed.display());
    Ok(())
}

fn new_command(args: &[String]) -> Result<()> {
    let options = parse_options("new", args, &["--dest"])?;
    let [name] = options.positional.as_slice() else {
        bail!("`new` takes exactly one name, the plugin's\n\n{USAGE}");
    };
    let root = workspace_root();
    let parent =
        match options.dest {
            Some(dest) => dest,
            None => root.canonicalize().ok().and_then(|r| r.parent().map(PathBuf::from)).context(
                "cannot find the folder this workspace is in: give the folder for the new project with --dest",
            )?,
        };
    let created = scaffold::new_project(&scaffold::NewOptions { name: name.clone(), parent, source: root })?;
    println!("created {}\nnext: cd {:?} && cargo xtask bundle", created.display(), created);
    Ok(())
}

/// Runs a cargo command from the workspace root, failing with the command line.
fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn has_nextest() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn test(extra: &[String]) -> Result<()> {
    // `--no-hosts` leaves out the real-host tests (they need Python and a release build).
    let real_hosts = !extra.iter().any(|a| a == "--no-hosts");
    let extra: Vec<String> = extra.iter().filter(|a| *a != "--no-hosts").cloned().collect();
    cargo(&["build", "--workspace", "--all-targets"])?;
    let probes = workspace_root().join("target/probes");
    let probes = probes.to_str().context("target path is not UTF-8")?;
    cargo(&[
        "build",
        "-p",
        "rt_engine",
        "-p",
        "control",
        "--lib",
        // Release, so the allocation-check test proves the check is active in release builds.
        "--release",
        "--features",
        "trio/alloc-probe,trio/fault-injection",
        "--target-dir",
        probes,
    ])?;
    // The control module with changed logic that the reload tests swap in.
    let variant = workspace_root().join("target/variant");
    let variant = variant.to_str().context("target path is not UTF-8")?;
    cargo(&["build", "-p", "control", "--lib", "--features", "reload-variant", "--target-dir", variant])?;
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    if has_nextest() {
        let mut args = vec!["nextest", "run", "--workspace", "--no-fail-fast"];
        args.extend(&extra);
        cargo(&args)?;
        // nextest does not run doctests.
        cargo(&["test", "--workspace", "--doc"])?;
    } else {
        let mut args = vec!["test", "--workspace", "--no-fail-fast"];
        args.extend(&extra);
        cargo(&args)?;
    }
    if real_hosts {
        real_host_tests()?;
    }
    Ok(())
}

/// The real-host tests (`scripts/real_hosts.sh`): the release bundle in pedalboard.
fn real_host_tests() -> Result<()> {
    let script = workspace_root().join("scripts/real_hosts.sh");
    let status = Command::new("bash")
        .arg(&script)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not run {}", script.display()))?;
    if !status.success() {
        bail!("the real-host tests failed ({status}); rerun them alone with `bash scripts/real_hosts.sh`");
    }
    Ok(())
}
