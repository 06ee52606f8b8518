//! A control call stuck past its time limit, seen through the VST3 entry points. Alone in
//! its test binary: it sets `TRIO_CALL_TIMEOUT_MS`, which no other test may see.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration::{Build, TestBundle};
use trio_host::{Module, Plugin};

/// A control call that outlives its time limit leaves the worker thread inside the module;
/// when the call ends, the thread returns into the bridge's code. By then the host may have
/// unloaded the bridge (`ModuleExit`, `dlclose`): the bridge stays mapped, so the process
/// lives on, and `getState` answered with the values in time. (Two things keep it mapped:
/// the bridge pins itself when it gives up on a worker, and glibc does not unmap a library
/// while a live thread holds thread-local destructors of it, as the worker does.)
#[test]
fn a_stuck_control_call_that_ends_after_the_bridge_was_unloaded_crashes_nothing() -> Result<()> {
    const SAVE_STATE: u32 = 3;
    const SLOW: u32 = 3;
    const SLOW_TIME: Duration = Duration::from_millis(1500);
    const LIMIT: Duration = Duration::from_millis(500);
    // SAFETY: this binary runs this one test, before any thread of it reads the
    // environment.
    unsafe { std::env::set_var("TRIO_CALL_TIMEOUT_MS", LIMIT.as_millis().to_string()) };
    let bundle = TestBundle::synth()?;
    let probe = integration::artifact_dir(Build::Probes).join("libcontrol.so");
    std::fs::copy(&probe, bundle.bin("control.so")).with_context(|| format!("copying {}", probe.display()))?;
    let module = Arc::new(Module::load(&bundle.path)?);
    let plugin = Plugin::new(Arc::clone(&module))?;
    let _fault = integration::arm_control_fault(&bundle.bin("control.so"), SAVE_STATE, SLOW)?;
    let started = Instant::now();
    let state = plugin.component_state()?;
    let answered = started.elapsed();
    ensure!(answered >= LIMIT, "the armed slow call did not happen ({answered:?})");
    ensure!(answered < SLOW_TIME, "getState waited for the slow call ({answered:?})");
    ensure!(String::from_utf8_lossy(&state).contains("trio-param-values"), "not the values from the block");
    let bridge = module.library_path().canonicalize()?;
    drop(plugin);
    drop(module); // terminate, release, ModuleExit, dlclose
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    ensure!(maps.contains(&*bridge.to_string_lossy()), "the bridge was unmapped while its worker is stuck");
    // The slow call now ends and its thread returns into the bridge: a crash here kills
    // this test.
    std::thread::sleep(SLOW_TIME + Duration::from_millis(500) - started.elapsed().min(SLOW_TIME));
    Ok(())
}
