//! The build tool, run as `cargo xtask <command>`.
//!
//! - `test`: builds everything the tests load (the modules, and the test-only probe
//!   build of them), then runs the whole test suite.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
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
  test [args...]   build the modules (and their test-only probe build), then run every test;
                   extra args go to the test runner";

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

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn has_nextest() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn test(extra: &[String]) -> Result<()> {
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
        "rt_engine/alloc-probe,control/fault-injection",
        "--target-dir",
        probes,
    ])?;
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    if has_nextest() {
        let mut args = vec!["nextest", "run", "--workspace", "--no-fail-fast"];
        args.extend(&extra);
        cargo(&args)?;
        // nextest does not run doctests.
        cargo(&["test", "--workspace", "--doc"])
    } else {
        let mut args = vec!["test", "--workspace", "--no-fail-fast"];
        args.extend(&extra);
        cargo(&args)
    }
}
