//! TrioEcho, the example effect, through its real bundle and VST3 entry points: two
//! different plugins built from the one framework bridge crate both pass the conformance
//! suite; an impulse comes back at the delay time plus the reported latency; mixed out,
//! the output is the input delayed by exactly the reported latency; a Lookahead change
//! reaches the host as `restartComponent(kLatencyChanged)` on its main thread; the
//! sidechain ducks the echoes; the tempo-synced delay follows the host's tempo.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use integration::scratch_dir;
use trio_echo_common::id;
use trio_host::vst3::Steinberg::Vst::{BusDirections_, MediaTypes_, RestartFlags_};
use trio_host::{Module, Plugin, Setup};
use trio_xtask::bundle::{BundleOptions, bundle};

const SR: f64 = 48_000.0;
const BLOCK: usize = 256;

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn echo_manifest() -> PathBuf {
    trio_xtask::framework_root().join("examples/trio_echo/build.yaml")
}

/// Bundles `manifest` into a scratch folder; returns the bundle and the folder.
fn bundled(manifest: &Path, tag: &str) -> Result<(PathBuf, Scratch)> {
    let scratch = Scratch(scratch_dir(tag)?);
    let report =
        bundle(&BundleOptions { manifest: manifest.to_owned(), release: false, out_dir: Some(scratch.0.clone()) })?;
    Ok((report.path, scratch))
}

/// A started TrioEcho with `settings` (parameter id, display text) applied.
fn echo(bundle: &Path, settings: &[(u32, &str)]) -> Result<Plugin> {
    let mut plugin = Plugin::new(Arc::new(Module::load(bundle)?))?;
    for &(param, text) in settings {
        let value = plugin
            .param_from_text(param, text)
            .with_context(|| format!("TrioEcho does not accept {text:?} for parameter {param}"))?;
        plugin.set_param_normalized(param, value)?;
    }
    plugin.start(Setup::new(SR, BLOCK))?;
    Ok(plugin)
}

/// Runs `input` (main bus, both channels the same) and `key` (sidechain) through
/// `plugin`, returning the left output.
fn run(plugin: &mut Plugin, input: &[f32], key: &[f32]) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(input.len());
    for start in (0..input.len()).step_by(BLOCK) {
        let n = BLOCK.min(input.len() - start);
        let main = [&input[start..start + n], &input[start..start + n]];
        let side = [&key[start..start + n], &key[start..start + n]];
        let block = plugin.process_audio(n, &[&main, &side], &[], &[])?;
        out.extend_from_slice(&block[0]);
    }
    Ok(out)
}

fn noise(n: usize, level: f32) -> Vec<f32> {
    let mut x = 12_345u32;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * level
        })
        .collect()
}

/// The position and value of the largest magnitude in `signal[from..]`.
fn peak(signal: &[f32], from: usize) -> (usize, f32) {
    signal[from..].iter().enumerate().fold(
        (0, 0.0f32),
        |(at, best), (i, &s)| {
            if s.abs() > best.abs() { (from + i, s) } else { (at, best) }
        },
    )
}

#[test]
fn two_plugins_built_from_the_one_bridge_crate_both_pass_the_conformance_suite() -> Result<()> {
    let framework = trio_xtask::framework_root();
    let (synth, _a) = bundled(&framework.join("build.yaml"), "two-plugins")?;
    let (echo, _b) = bundled(&echo_manifest(), "two-plugins")?;
    let mut seen = Vec::new();
    for bundle in [&synth, &echo] {
        let report = trio_host::conformance::run(bundle)?;
        eprint!("{report}");
        ensure!(report.passed(), "{report}");
        let class = Plugin::new(Arc::new(Module::load(bundle)?))?.class().clone();
        seen.push((report.plugin.clone(), report.effect, class.cid, class.sub_categories));
    }
    assert_eq!((seen[0].0.as_str(), seen[0].1), ("TrioSynth", false));
    assert_eq!((seen[1].0.as_str(), seen[1].1), ("TrioEcho", true));
    assert_ne!(seen[0].2, seen[1].2, "the two factories have the same class id");
    assert_eq!((seen[0].3.as_str(), seen[1].3.as_str()), ("Instrument|Synth", "Fx|Delay"));
    // Both bridges are the framework's bridge crate with only the identity generated.
    let bridges = framework.join("target/trio/bridges");
    let bridge_dir = framework.join("bridge");
    for (name, prefix) in [("TrioSynth", "trio-bridge-triosynth-"), ("TrioEcho", "trio-bridge-trioecho-")] {
        let shim = std::fs::read_dir(&bridges)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()?
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .with_context(|| format!("no generated bridge crate for {name} in {}", bridges.display()))?;
        let toml = std::fs::read_to_string(shim.join("Cargo.toml"))?;
        ensure!(toml.contains(&format!("{:?}", bridge_dir.display().to_string())), "{name}'s bridge: {toml}");
        let lib = std::fs::read_to_string(shim.join("src/lib.rs"))?;
        ensure!(lib.contains("trio_bridge::export_vst3!") && lib.contains(name), "{name}'s bridge: {lib}");
    }
    Ok(())
}

#[test]
fn an_impulse_comes_back_at_the_delay_time_after_the_reported_latency() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-impulse")?;
    let settings = [(id::SYNC, "Off"), (id::TIME, "250 ms"), (id::MIX, "100 %"), (id::FEEDBACK, "0 %")];
    let mut plugin = echo(&bundle, &settings)?;
    let latency = plugin.latency_samples() as usize;
    assert_eq!(latency, 240, "the default 5 ms lookahead at 48 kHz");
    let mut input = vec![0.0f32; 24_000];
    input[1000] = 0.5;
    let out = run(&mut plugin, &input, &vec![0.0; input.len()])?;
    let (at, value) = peak(&out, 0);
    eprintln!("impulse at 1000 came back at {at} ({value}), latency {latency}");
    assert_eq!(at, 1000 + 12_000 + latency, "250 ms = 12000 samples, plus the latency");
    assert!((value - 0.5).abs() < 1e-3, "the echo has the impulse's level: {value}");
    Ok(())
}

#[test]
fn mixed_out_the_output_is_the_input_delayed_by_exactly_the_reported_latency() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-dry")?;
    for lookahead in ["0 ms", "5 ms", "13 ms"] {
        let settings = [(id::MIX, "0 %"), (id::FEEDBACK, "90 %"), (id::LOOKAHEAD, lookahead)];
        let mut plugin = echo(&bundle, &settings)?;
        let latency = plugin.latency_samples() as usize;
        let input = noise(12_000, 0.25);
        let out = run(&mut plugin, &input, &vec![0.0; input.len()])?;
        assert!(out[..latency].iter().all(|&s| s == 0.0), "{lookahead}: sound before the latency");
        let mismatch =
            input[..input.len() - latency].iter().zip(&out[latency..]).position(|(a, b)| a.to_bits() != b.to_bits());
        eprintln!("lookahead {lookahead}: latency {latency} samples, output = input delayed: {}", mismatch.is_none());
        assert_eq!(mismatch, None, "{lookahead}: the dry output differs from the input delayed by {latency}");
    }
    Ok(())
}

#[test]
fn a_lookahead_change_reaches_the_host_as_latency_changed_on_its_main_thread() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-latency")?;
    let mut plugin = echo(&bundle, &[])?;
    assert_eq!(plugin.latency_samples(), 240);
    let ten_ms = plugin.param_from_text(id::LOOKAHEAD, "10 ms").context("10 ms")?;
    let input = noise(BLOCK, 0.1);
    // The host's audio thread processes the change; its main thread idles afterwards.
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                let point = trio_host::ParamPoint { id: id::LOOKAHEAD, offset: 100, value: ten_ms };
                plugin.process_audio(BLOCK, &[&[&input, &input]], &[], &[point])?;
                for _ in 0..4 {
                    plugin.process_audio(BLOCK, &[&[&input, &input]], &[], &[])?;
                }
                Ok(())
            })
            .join()
            .expect("the audio thread panicked")
    })?;
    let flags = plugin.idle()?;
    assert_ne!(flags & RestartFlags_::kLatencyChanged, 0, "no kLatencyChanged (flags {flags:#x})");
    assert_eq!(plugin.latency_samples(), 480, "10 ms at 48 kHz");
    let calls = plugin.handler_calls();
    let restarts: Vec<_> =
        calls.iter().filter(|c| matches!(c.kind, trio_host::HandlerCallKind::RestartComponent(_))).collect();
    assert!(!restarts.is_empty());
    assert!(restarts.iter().all(|c| c.on_main_thread), "restartComponent off the main thread: {restarts:?}");
    // Nothing more to report once the host has re-read it.
    assert_eq!(plugin.idle()? & RestartFlags_::kLatencyChanged, 0);
    Ok(())
}

/// Hosts differ in which calls they make on their main thread between blocks (Ardour:
/// few controller calls until a session save). Any main-thread call delivers a pending
/// restart request: here the component's bus and tail queries only.
#[test]
fn a_latency_change_is_delivered_at_any_main_thread_call() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-delivery")?;
    let mut plugin = echo(&bundle, &[])?;
    assert_eq!(latency_restarts(&plugin), 0, "a latency change before any");
    lookahead_to_10_ms_from_an_audio_thread(&mut plugin)?;
    assert_eq!(latency_restarts(&plugin), 0, "delivered from the audio thread");
    let _ = plugin.buses(MediaTypes_::kAudio, BusDirections_::kOutput);
    let _ = plugin.tail_samples();
    assert_eq!(latency_restarts(&plugin), 1, "a bus query on the main thread did not deliver the latency change");
    assert!(plugin.handler_calls().iter().all(|c| c.on_main_thread));
    Ok(())
}

/// The `restartComponent(kLatencyChanged)` calls the plugin made so far.
fn latency_restarts(plugin: &Plugin) -> usize {
    plugin.restart_requests().iter().filter(|&&f| f & RestartFlags_::kLatencyChanged != 0).count()
}

/// One block with the lookahead automated to 10 ms, processed on another thread (a host's
/// audio thread): the engine reports a new latency there.
fn lookahead_to_10_ms_from_an_audio_thread(plugin: &mut Plugin) -> Result<()> {
    let ten_ms = plugin.param_from_text(id::LOOKAHEAD, "10 ms").context("10 ms")?;
    let input = noise(BLOCK, 0.1);
    let point = trio_host::ParamPoint { id: id::LOOKAHEAD, offset: 0, value: ten_ms };
    std::thread::scope(|scope| {
        scope
            .spawn(|| plugin.process_audio(BLOCK, &[&[&input, &input]], &[], &[point]).map(drop))
            .join()
            .map_err(|_| anyhow::anyhow!("the audio thread panicked"))
    })??;
    Ok(())
}

/// A host whose context offers a run loop (`IRunLoop`) gets a timer registered on it, and
/// a pending restart request goes out from that timer, on the main thread, with no other
/// call from the host; `terminate` takes the timer away.
#[test]
fn a_latency_change_is_delivered_by_the_host_run_loop() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-run-loop")?;
    let mut plugin = echo(&bundle, &[])?;
    assert_eq!(plugin.run_loop_timers(), [100], "no timer on the host's run loop");
    lookahead_to_10_ms_from_an_audio_thread(&mut plugin)?;
    assert_eq!(latency_restarts(&plugin), 0, "delivered before the run loop ran");
    assert_eq!(plugin.run_loop_once()?, 1);
    assert_eq!(latency_restarts(&plugin), 1, "the run loop's timer did not deliver the latency change");
    assert!(plugin.handler_calls().iter().all(|c| c.on_main_thread));
    plugin.run_loop_once()?;
    assert_eq!(latency_restarts(&plugin), 1, "delivered twice");
    plugin.reinitialize()?;
    assert_eq!(plugin.run_loop_timers(), [100], "terminate and initialize leave one timer");
    Ok(())
}

#[test]
fn a_loud_sidechain_ducks_the_echoes() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-duck")?;
    let settings =
        [(id::SYNC, "Off"), (id::TIME, "100 ms"), (id::MIX, "100 %"), (id::FEEDBACK, "0 %"), (id::DUCK, "100 %")];
    let input = noise(24_000, 0.25);
    let quiet_key = vec![0.0f32; input.len()];
    let loud_key = noise(input.len(), 0.9);
    let free = run(&mut echo(&bundle, &settings)?, &input, &quiet_key)?;
    let ducked = run(&mut echo(&bundle, &settings)?, &input, &loud_key)?;
    let energy = |s: &[f32]| s[12_000..].iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
    let (e_free, e_ducked) = (energy(&free), energy(&ducked));
    eprintln!("echo energy: key silent {e_free:.3}, key loud {e_ducked:.6}");
    assert!(e_free > 100.0 && e_ducked < e_free * 1e-3, "free {e_free}, ducked {e_ducked}");
    Ok(())
}

#[test]
fn the_synced_delay_follows_the_host_tempo() -> Result<()> {
    let (bundle, _scratch) = bundled(&echo_manifest(), "echo-sync")?;
    for (tempo, expected) in [(120.0, 12_000), (90.0, 16_000)] {
        let settings = [(id::SYNC, "On"), (id::DIVISION, "1/8"), (id::MIX, "100 %"), (id::FEEDBACK, "0 %")];
        let mut plugin = echo(&bundle, &settings)?;
        plugin.tempo = tempo;
        plugin.playing = true;
        let latency = plugin.latency_samples() as usize;
        let mut input = vec![0.0f32; 24_000];
        input[500] = 0.5;
        let (at, _) = peak(&run(&mut plugin, &input, &vec![0.0; input.len()])?, 0);
        eprintln!("1/8 at {tempo} BPM: echo after {} samples", at - 500 - latency);
        assert_eq!(at, 500 + expected + latency, "an eighth at {tempo} BPM is {expected} samples");
    }
    Ok(())
}
