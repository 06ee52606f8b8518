//! Hot-reload latency: from a new control library landing to the new module serving every
//! instance, median and p99 over 100 reloads, with release modules and one instance whose
//! audio thread plays in real time meanwhile. Not counting the cargo build.
//!
//! Two ways of landing, in the same run:
//! - watched: the library is linked into the watched folder as cargo does (a new inode put
//!   in place); the clock starts at the link and stops when the hub reports the new module
//!   serving, so it includes the file-system notification and the watcher's 5 ms settling;
//! - direct: `ControlHub::reload` called with the file, the clock starting at the call
//!   (the protocol's own cost, the reference).
//!
//! For scale: `hot-lib-reloader` waits a 500 ms debounce, Cmajor polls every 1.5 s.
//! Goal: median <= 20 ms, p99 <= 50 ms.
//!
//! Needs `cargo build --release -p rt_engine -p control`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration::{Build, ModuleDir};

const ROUNDS: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let (median, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
    println!(
        "{name:>8}: median {median:6.2} ms   p99 {p99:6.2} ms   min {:6.2} ms   max {:6.2} ms   ({} reloads)",
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    );
    (median, p99)
}

fn main() -> Result<()> {
    let dir = ModuleDir::new(Build::Release)?;
    let modules = trio_bridge::Modules::load(&dir.paths(), None)?;
    let setup = trio_bridge::ProcessSetup { sample_rate: 48_000.0, max_block_size: 256, offline: false };
    let inst = trio_bridge::Instance::new(&modules, setup)?;
    let stop = AtomicBool::new(false);

    let (watched, direct) = std::thread::scope(|scope| -> Result<(Vec<f64>, Vec<f64>)> {
        // A host audio thread: one block per block duration, a note held throughout.
        scope.spawn(|| {
            let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
            let mut events = vec![trio::abi::Event::note_on(0, 57, 0.8)];
            let period = Duration::from_secs_f64(256.0 / 48_000.0);
            let start = Instant::now();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                inst.process(&mut [&mut l[..], &mut r[..]], &events);
                events.clear();
                n += 1;
                if let Some(wait) = (start + period * n).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });

        let folder = integration::scratch_dir("bench-watch")?;
        let target = folder.join("libcontrol.so");
        std::fs::copy(dir.control(), &target)?;
        modules.watch_control(&target).map_err(anyhow::Error::msg)?;
        let mut watched = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let fresh = folder.join(format!("build-{round}.so"));
            std::fs::copy(dir.control(), &fresh)?;
            let before = modules.control.reload_stats().reloads;
            std::fs::remove_file(&target)?;
            let landed = Instant::now();
            std::fs::hard_link(&fresh, &target)?;
            let deadline = landed + Duration::from_secs(5);
            loop {
                let stats = modules.control.reload_stats();
                if stats.reloads > before {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("no reload within 5 s of landing: {:?}", stats.last_error);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            watched.push(landed.elapsed().as_secs_f64() * 1e3);
            std::fs::remove_file(&fresh)?;
        }
        modules.stop_watching();

        let mut direct = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let report = modules.control.reload(&dir.control())?;
            direct.push(report.landed_to_serving.as_secs_f64() * 1e3);
        }
        stop.store(true, Ordering::Relaxed);
        Ok((watched, direct))
    })?;

    let size = std::fs::metadata(dir.control())?.len();
    println!("reload latency, landing -> new module serving; release control module of {:.1} MB", size as f64 / 1e6);
    let (median, p99) = summary("watched", watched);
    summary("direct", direct);
    let stats = modules.control.reload_stats();
    let last = stats.last.context("no reload report")?;
    println!("last reload: {last}");
    println!(
        "deadline misses over all {} reloads: {}; reload failures: {}",
        stats.reloads,
        inst.block().stats.deadline_misses.load(Ordering::Relaxed),
        stats.failures
    );
    println!(
        "goal: median <= 20 ms ({median:.2}), p99 <= 50 ms ({p99:.2}); hot-lib-reloader debounce 500 ms, Cmajor poll 1500 ms"
    );
    Ok(())
}
