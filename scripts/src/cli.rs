//! The command line of `cargo xtask`, the same in the framework's checkout and in every
//! plugin project (whose `xtask` crate's `main` calls [`main`]).
//!
//! - `test`: in a plugin project, the project's own tests, then its bundle through the
//!   conformance suite ([`trio_host::conformance`]); in the framework's checkout, builds
//!   everything the framework's tests load (the modules, and the test-only probe build of
//!   them), then runs the whole test suite and the real-host tests.
//! - `bundle`: builds the three libraries, checks them against `build.yaml` and
//!   assembles `target/bundle/<Name>.vst3`.
//! - `conformance`: bundles, then runs the conformance suite on the bundle.
//! - `install`: copies the bundle to `~/.vst3/`.
//! - `new`: creates a new plugin project that depends on this framework.
//! - `dev`: the hot-reload development loop (see [`crate::dev`]).
//! - `bench`: the release bundles against nih-plug's reference plugins in one pedalboard
//!   process (`scripts/bench.py`); not run in CI.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::{bundle, framework_root, install, manifest, scaffold, workspace_root};

/// Runs `cargo xtask` with the process's arguments; the exit status says whether the
/// command succeeded (its error is printed).
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bundle") => bundle_command(&args[1..]),
        Some("conformance") => conformance_command(&args[1..]),
        Some("install") => install_command(&args[1..]),
        Some("new") => new_command(&args[1..]),
        Some("dev") => dev_command(&args[1..]),
        Some("bench") => bench_command(&args[1..]),
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
  test [args...]   in a plugin project: run the project's tests, bundle it and run the
                   conformance suite on the bundle. In the framework's checkout: build the
                   modules (and their test-only probe build), run every test, then the
                   real-host tests (--no-hosts leaves them out). Extra args go to the test
                   runner
  bundle [--release] [--manifest <build.yaml>] [--out <folder>]
                   build the three libraries, check their exports and descriptors against
                   build.yaml, and assemble <folder>/<Name>.vst3 (default folder: target/bundle)
  conformance [--release] [--manifest <build.yaml>] [--out <folder>]
                   bundle, then load the bundle through its VST3 entry points and run the
                   conformance suite on it (states, block sizes, threads, layouts, silence...)
  install [--release] [--dest <folder>] [--manifest <build.yaml>] [--out <folder>]
                   copy the bundle made by `bundle` to <folder> (default: ~/.vst3); with
                   --release, refuse a bundle that is not a release build
  new <Name> --kind instrument|effect [--dest <folder>] [--git <url>]
                   create a plugin project <folder>/<Name> (default folder: the one this
                   workspace is in) with its own engine, control and xtask crates, depending
                   on this framework by path (by git with --git)
  dev [--seconds <s>] [--out <file.wav>] [--notes <list> | --midi <file.mid>]
      [--param <title>=<text>]... [--sample-rate <hz>] [--block <frames>] [--null-sink]
      [--input <file.wav>] [--manifest <build.yaml>]
                   build the development bundle, play it in real time (sound card with the
                   audio-device feature, otherwise a null sink; always recorded to --out,
                   default target/dev/session.wav), rebuild and hot-reload the control module
                   on every save in its crate, printing one line per reload. Notes loop; the
                   default is a held chord. --notes \"60@0+1,64@0.5+1\" is pitch@start+length
                   in seconds; --param Mix=50 % sets a parameter by its title and display text.
                   An effect plays --input looped, by default plucked tones at the notes
  bench [--anchors <folder>] [--quick] [script args...]
                   build the release bundles and measure them against nih-plug's reference
                   plugins (poly_mod_synth.vst3, gain.vst3 in --anchors, default
                   ../shared/anchors beside the workspace) in one pedalboard process:
                   idle blocks, voices, a 16-note chord, load times (also with every core
                   busy), value-text calls, CPU of idle instances; interleaved runs, medians,
                   ratios to figures of the same run. Takes a few minutes (--quick: fewer
                   repetitions). Not run in CI. Other args go to scripts/bench.py (--help)";

/// Command-line options shared by the commands.
#[derive(Default)]
struct Options {
    release: bool,
    manifest: Option<PathBuf>,
    out: Option<PathBuf>,
    dest: Option<PathBuf>,
    kind: Option<String>,
    git: Option<String>,
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
            "--kind" => options.kind = Some(value()?.to_string_lossy().into_owned()),
            "--git" => options.git = Some(value()?.to_string_lossy().into_owned()),
            _ if arg.starts_with('-') => bail!("`{command}` has no option `{arg}`\n\n{USAGE}"),
            _ => options.positional.push(arg.clone()),
        }
    }
    Ok(options)
}

fn dev_command(args: &[String]) -> Result<()> {
    let mut options = crate::dev::DevOptions {
        manifest: workspace_root().join(manifest::FILE_NAME),
        workspace: workspace_root(),
        seconds: None,
        wav: workspace_root().join("target/dev/session.wav"),
        notes: None,
        input: None,
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
            "--input" => options.input = Some(PathBuf::from(value()?)),
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
    crate::dev::run(&options)
}

fn manifest_path(options: &Options) -> PathBuf {
    options.manifest.clone().unwrap_or_else(|| workspace_root().join(manifest::FILE_NAME))
}

/// `bundle` (and the first half of `conformance`): parses the options, bundles, prints
/// the report.
fn bundle_command_as(command: &str, args: &[String]) -> Result<bundle::BundleReport> {
    let options = parse_options(command, args, &["--release", "--manifest", "--out"])?;
    if let Some(extra) = options.positional.first() {
        bail!("`{command}` takes no argument `{extra}`\n\n{USAGE}");
    }
    let report = bundle::bundle(&bundle::BundleOptions {
        manifest: manifest_path(&options),
        release: options.release,
        out_dir: options.out,
    })?;
    println!("{report}");
    Ok(report)
}

fn bundle_command(args: &[String]) -> Result<()> {
    bundle_command_as("bundle", args).map(drop)
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
    let options = parse_options("new", args, &["--dest", "--kind", "--git"])?;
    let [name] = options.positional.as_slice() else {
        bail!("`new` takes exactly one name, the plugin's\n\n{USAGE}");
    };
    let kind = match options.kind.as_deref() {
        Some(text) => text.parse::<scaffold::Kind>().map_err(|why| anyhow::anyhow!("`--kind {text}`: {why}"))?,
        None => bail!("`new` needs --kind instrument or --kind effect\n\n{USAGE}"),
    };
    let parent =
        match options.dest {
            Some(dest) => dest,
            None => workspace_root().canonicalize().ok().and_then(|r| r.parent().map(PathBuf::from)).context(
                "cannot find the folder this workspace is in: give the folder for the new project with --dest",
            )?,
        };
    let framework = match options.git {
        Some(url) => scaffold::Framework::Git(url),
        None => scaffold::Framework::Path(framework_root()),
    };
    let created = scaffold::new_project(&scaffold::NewOptions { name: name.clone(), kind, parent, framework })?;
    println!(
        "created {}\nnext: cd {:?} && cargo xtask dev      (or: cargo xtask test, cargo xtask bundle)",
        created.display(),
        created
    );
    Ok(())
}

fn conformance_command(args: &[String]) -> Result<()> {
    let report = bundle_command_as("conformance", args)?;
    conformance(&report.path)
}

/// Runs the conformance suite on `bundle`, printing its report.
fn conformance(bundle: &Path) -> Result<()> {
    let report = trio_host::conformance::run(bundle)
        .with_context(|| format!("the conformance suite could not load {}", bundle.display()))?;
    print!("{report}");
    let failures = report.failures();
    if !failures.is_empty() {
        bail!("{} of {} conformance checks failed on {}", failures.len(), report.checks.len(), bundle.display());
    }
    Ok(())
}

/// Whether `cargo xtask` runs in the framework's own checkout (not a plugin project).
fn in_framework_checkout() -> bool {
    let (here, framework) = (workspace_root().canonicalize().ok(), framework_root().canonicalize().ok());
    here.is_some() && here == framework
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
    if in_framework_checkout() { framework_test(extra) } else { project_test(extra) }
}

/// A plugin project's `cargo xtask test`: its own tests, then its bundle through the
/// conformance suite.
fn project_test(extra: &[String]) -> Result<()> {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut args = vec!["test", "--workspace"];
    args.extend(&extra);
    cargo(&args)?;
    let report = bundle::bundle(&bundle::BundleOptions {
        manifest: workspace_root().join(manifest::FILE_NAME),
        release: false,
        out_dir: None,
    })?;
    println!("{report}");
    conformance(&report.path)
}

/// The framework's own `cargo xtask test`.
fn framework_test(extra: &[String]) -> Result<()> {
    // `--no-hosts` leaves out the real-host tests (they need Python and a release build).
    let real_hosts = !extra.iter().any(|a| a == "--no-hosts");
    let extra: Vec<String> = extra.iter().filter(|a| *a != "--no-hosts").cloned().collect();
    cargo(&["build", "--workspace", "--all-targets"])?;
    // The example plugin of this checkout's build.yaml, built twice more for the tests.
    let example = manifest::Manifest::load(&workspace_root().join(manifest::FILE_NAME))?;
    let engine = crate::cargo::crate_info(&example.rt_engine.crate_dir)?.package;
    let control = crate::cargo::crate_info(&example.control.crate_dir)?.package;
    let probes = workspace_root().join("target/probes");
    let probes = probes.to_str().context("target path is not UTF-8")?;
    cargo(&[
        "build",
        "-p",
        &engine,
        "-p",
        &control,
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
    cargo(&["build", "-p", &control, "--lib", "--features", "reload-variant", "--target-dir", variant])?;
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

/// `bench`: the release bundles against nih-plug's reference plugins in one pedalboard
/// process, by `scripts/bench.py` in the framework's `.venv` (made as
/// `scripts/real_hosts.sh` makes it). Not run in CI.
fn bench_command(args: &[String]) -> Result<()> {
    let mut anchors = None;
    let mut passed = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.split_once('=') {
            Some(("--anchors", folder)) => anchors = Some(PathBuf::from(folder)),
            _ if arg == "--anchors" => {
                anchors = Some(
                    iter.next().map(PathBuf::from).with_context(|| format!("`--anchors` needs a folder\n\n{USAGE}"))?,
                );
            }
            _ => passed.push(arg.clone()),
        }
    }
    let root = framework_root();
    let script = root.join("scripts/bench.py");
    if passed.iter().any(|a| a == "--help" || a == "-h") {
        let python = bench_venv(&root)?;
        let status = Command::new(&python).arg(&script).arg("--help").status();
        return status.map(drop).with_context(|| format!("could not run {}", python.display()));
    }
    let anchors = anchors.unwrap_or_else(|| workspace_root().join("../shared/anchors"));
    let anchor = |name: &str| -> Result<PathBuf> {
        let path = anchors.join(name);
        if !path.join("Contents/x86_64-linux").is_dir() {
            bail!(
                "no nih-plug reference bundle {name} in {}: give the folder that holds poly_mod_synth.vst3 \
                 and gain.vst3 with --anchors <folder>",
                anchors.display()
            );
        }
        Ok(path)
    };
    let (nih_synth, nih_gain) = (anchor("poly_mod_synth.vst3")?, anchor("gain.vst3")?);
    let python = bench_venv(&root)?;

    let synth = bundle::bundle(&bundle::BundleOptions {
        manifest: workspace_root().join(manifest::FILE_NAME),
        release: true,
        out_dir: None,
    })?;
    println!("{synth}");
    let mut command = Command::new(&python);
    command.arg(&script).arg("--synth").arg(&synth.path).arg("--nih-synth").arg(&nih_synth);
    // An example effect (the first `examples/*/build.yaml` of kind effect) against
    // nih-plug's gain, when this is the framework's checkout.
    let effect_manifest = first_example_effect(&root);
    if let Some(effect_manifest) = effect_manifest.filter(|_| in_framework_checkout()) {
        let effect =
            bundle::bundle(&bundle::BundleOptions { manifest: effect_manifest, release: true, out_dir: None })?;
        println!("{effect}");
        command.arg("--effect").arg(&effect.path).arg("--nih-gain").arg(&nih_gain);
    }
    let status = command
        .args(&passed)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status}): {}", script.display());
    }
    Ok(())
}

/// The framework's `.venv` with the real-host packages (`tests/hosts/requirements.txt`),
/// made and filled as `scripts/real_hosts.sh` does; returns its python.
fn bench_venv(root: &Path) -> Result<PathBuf> {
    let python = root.join(".venv/bin/python");
    let run = |program: &Path, args: &[&str]| -> Result<()> {
        let status = Command::new(program)
            .args(args)
            .current_dir(root)
            .status()
            .with_context(|| format!("could not run {}", program.display()))?;
        if !status.success() {
            bail!("`{} {}` failed ({status})", program.display(), args.join(" "));
        }
        Ok(())
    };
    if !python.is_file() {
        run(Path::new("python3"), &["-m", "venv", ".venv"])?;
    }
    run(
        &python,
        &["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", "tests/hosts/requirements.txt"],
    )?;
    Ok(python)
}

/// The `build.yaml` of the first example (in `examples/*/`, by name) that is an effect.
fn first_example_effect(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join(manifest::FILE_NAME)))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.into_iter().find(|p| manifest::Manifest::load(p).is_ok_and(|m| m.plugin.kind == manifest::Kind::Effect))
}
