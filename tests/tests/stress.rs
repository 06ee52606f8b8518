//! Load a host puts on a plugin over a long session, on the real built libraries:
//!
//! - 64 instances of the bundled synth playing at once in one process, rendered by four
//!   host audio threads (16 instances each, as a DAW's worker pool does), each exactly as
//!   it plays alone;
//! - 1,000 control-module reloads while audio renders in real time: every reload lands,
//!   no old library stays mapped, resident memory grows by less than 5 MB after warm-up,
//!   and the audio goes on, bit for bit as without reloads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use integration::{Build, ModuleDir, TestBundle, rms, rss, stale_mappings};
use synth_common::id;
use trio::abi::Event;
use trio_bridge::{Instance, Modules, ProcessSetup};
use trio_host::{Module, NoteEvent, ParamPoint, Plugin, Setup};

const RATE: f64 = 48_000.0;
const FRAMES: usize = 256;

/// Chords the instances play; instance `i` plays chord `i % CHORDS`.
const CHORDS: usize = 8;

/// Block `block` of chord `chord`'s performance: a triad from the first block (each chord
/// at its own offset), its top note struck again at block 40, everything released at
/// block 80, and the filter cutoff automated sample-accurately in the middle of every
/// block.
fn chord_block(chord: usize, block: usize) -> (Vec<NoteEvent>, Vec<ParamPoint>) {
    let root = 40 + 3 * chord as u8;
    let triad = [root, root + 4, root + 7];
    let notes = match block {
        0 => triad.iter().map(|&p| NoteEvent::on(17 * chord as u32, p, 0.8)).collect(),
        40 => vec![NoteEvent::off(3, root + 7), NoteEvent::on(3, root + 7, 0.6)],
        80 => triad.iter().map(|&p| NoteEvent::off(100, p)).collect(),
        _ => Vec::new(),
    };
    let sweep = 0.35 + 0.5 * (block as f64 / 120.0).min(1.0);
    (notes, vec![ParamPoint { id: id::CUTOFF, offset: FRAMES as u32 / 2, value: sweep }])
}

/// A started instance of the bundle's plugin.
fn started(module: &Arc<Module>) -> Result<Plugin> {
    let mut plugin = Plugin::new(Arc::clone(module))?;
    plugin.start(Setup::new(RATE, FRAMES))?;
    Ok(plugin)
}

/// Renders block `block` of `chord` into `out` (left channel, then right, per block).
fn render_block(plugin: &mut Plugin, chord: usize, block: usize, out: &mut Vec<f32>) -> Result<()> {
    let (notes, points) = chord_block(chord, block);
    let channels = plugin.process(FRAMES, &notes, &points)?;
    ensure!(channels.len() == 2, "{} output channels", channels.len());
    out.extend_from_slice(&channels[0]);
    out.extend_from_slice(&channels[1]);
    Ok(())
}

/// What one host audio thread hands back: its instances with their output, and how
/// long each of its callbacks took.
struct Rendered {
    instances: Vec<(usize, Plugin, Vec<f32>)>,
    times: Vec<Duration>,
}

#[test]
fn sixty_four_instances_play_at_once_each_as_it_plays_alone() -> Result<()> {
    const INSTANCES: usize = 64;
    const THREADS: usize = 4;
    const BLOCKS: usize = 120;
    let bundle = TestBundle::synth()?;
    let module = Arc::new(Module::load(&bundle.path)?);

    // Each chord rendered by an instance alone.
    let mut references = Vec::new();
    for chord in 0..CHORDS {
        let mut plugin = started(&module)?;
        let mut out = Vec::with_capacity(BLOCKS * FRAMES * 2);
        for block in 0..BLOCKS {
            render_block(&mut plugin, chord, block, &mut out)?;
        }
        ensure!(rms(&out) > 0.01, "chord {chord} is silent alone");
        references.push(out);
    }
    // The engine is deterministic: a second instance alone plays the same bits.
    {
        let mut plugin = started(&module)?;
        let mut again = Vec::new();
        for block in 0..BLOCKS {
            render_block(&mut plugin, 0, block, &mut again)?;
        }
        ensure!(again == references[0], "two instances alone play the same notes differently");
    }

    let plugins = (0..INSTANCES).map(|_| started(&module)).collect::<Result<Vec<_>>>()?;
    let mut groups: Vec<Vec<(usize, Plugin)>> = (0..THREADS).map(|_| Vec::new()).collect();
    for (i, plugin) in plugins.into_iter().enumerate() {
        groups[i % THREADS].push((i, plugin));
    }
    // One host audio callback per block: every thread starts it together and renders its
    // share; the next begins when all are done.
    let callback = Barrier::new(THREADS);
    let started_at = Instant::now();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|mut group| {
                let callback = &callback;
                scope.spawn(move || -> Result<Rendered> {
                    let mut outs: Vec<Vec<f32>> =
                        group.iter().map(|_| Vec::with_capacity(BLOCKS * FRAMES * 2)).collect();
                    let mut times = Vec::with_capacity(BLOCKS);
                    let mut failure = None;
                    for block in 0..BLOCKS {
                        // Every thread meets every barrier, even after a failure.
                        callback.wait();
                        let t = Instant::now();
                        for ((i, plugin), out) in group.iter_mut().zip(&mut outs) {
                            if failure.is_none()
                                && let Err(e) = render_block(plugin, *i % CHORDS, block, out)
                            {
                                failure = Some(e.context(format!("instance {i}, block {block}")));
                            }
                        }
                        times.push(t.elapsed());
                    }
                    if let Some(e) = failure {
                        return Err(e);
                    }
                    Ok(Rendered {
                        instances: group.into_iter().zip(outs).map(|((i, p), o)| (i, p, o)).collect(),
                        times,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("an audio thread panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    let elapsed = started_at.elapsed();

    let mut slowest: Vec<Duration> = vec![Duration::ZERO; BLOCKS];
    let mut rendered = 0;
    for thread in &results {
        for (slot, t) in slowest.iter_mut().zip(&thread.times) {
            *slot = (*slot).max(*t);
        }
        for (i, _, out) in &thread.instances {
            rendered += 1;
            ensure!(out.iter().all(|s| s.is_finite()), "instance {i}: a non-finite sample");
            ensure!(rms(out) > 0.01, "instance {i} is silent");
            let want = &references[i % CHORDS];
            let first_difference = out.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits());
            ensure!(
                out.len() == want.len() && first_difference.is_none(),
                "instance {i} plays chord {} differently from an instance alone, from sample {first_difference:?}",
                i % CHORDS
            );
        }
    }
    ensure!(rendered == INSTANCES, "{rendered} instances rendered");
    slowest.sort();
    let block_ms = FRAMES as f64 / RATE * 1e3;
    println!(
        "{INSTANCES} instances on {THREADS} threads, {BLOCKS} blocks of {block_ms:.2} ms: {:.2} s in all; slowest \
         thread per callback: median {:.2} ms, worst {:.2} ms",
        elapsed.as_secs_f64(),
        slowest[BLOCKS / 2].as_secs_f64() * 1e3,
        slowest[BLOCKS - 1].as_secs_f64() * 1e3
    );
    // The instances drop here, on the thread that created them.
    drop(results);
    Ok(())
}

/// The host events of block `index` of the reload test's performance: a note every
/// 0.25 s, released 0.2 s later, and a cutoff sweep automated in the middle of each block.
fn performance(index: usize) -> Vec<Event> {
    let start = (index * FRAMES) as u64;
    let beat = (RATE * 0.25) as u64;
    let mut events = Vec::new();
    for offset in 0..FRAMES as u64 {
        let t = start + offset;
        let note = 48 + ((t / beat) % 24) as u8;
        if t.is_multiple_of(beat) {
            events.push(Event::note_on(offset, note, 0.8));
        }
        if t % beat == (RATE * 0.2) as u64 {
            events.push(Event::note_off(offset, note));
        }
        if offset == FRAMES as u64 / 2 {
            events.push(Event::param(offset, id::CUTOFF, 0.3 + 0.6 * (t as f64 / RATE * 0.5).fract()));
        }
    }
    events
}

/// What the audio thread of the reload test saw.
struct AudioRun {
    /// Blocks rendered.
    blocks: usize,
    /// The first block in which the reloaded instance's output differed from the steady
    /// one's.
    first_difference: Option<usize>,
    /// Blocks an engine did not answer with `OK`.
    bad_status: usize,
    /// The last second of the reloaded instance's left channel.
    tail: Vec<f32>,
}

#[test]
fn a_thousand_reloads_under_audio_grow_resident_memory_by_less_than_5_mb() -> Result<()> {
    const RELOADS: usize = 1_000;
    const WARM_UP: usize = 20;
    let test_started = Instant::now();
    let setup = ProcessSetup { sample_rate: RATE, max_block_size: FRAMES as u32, offline: false };
    let dir = ModuleDir::new(Build::Normal)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let inst = Instance::new(&modules, setup)?;
    // The same libraries loaded again from another folder, never reloaded: an instance
    // that plays the same performance on the same thread, in the same blocks, is the
    // reference for the output and for the deadline misses the machine causes anyway.
    let steady_dir = ModuleDir::new(Build::Normal)?;
    let steady_modules = Modules::load(&steady_dir.paths(), None)?;
    let steady = Instance::new(&steady_modules, setup)?;
    let stop = AtomicBool::new(false);
    let period = Duration::from_secs_f64(FRAMES as f64 / RATE);
    let misses = |i: &Instance| i.block().stats.deadline_misses.load(Ordering::Relaxed);

    let (run, reloads) = std::thread::scope(|scope| {
        // A host's audio thread: a block per block duration, until told to stop.
        let audio = scope.spawn(|| {
            let mut run = AudioRun { blocks: 0, first_difference: None, bad_status: 0, tail: vec![0.0; RATE as usize] };
            let mut out = [[0.0f32; FRAMES]; 4];
            let start = Instant::now();
            while !stop.load(Ordering::Acquire) {
                let b = run.blocks;
                let events = performance(b);
                let [left, right, steady_left, steady_right] = &mut out;
                // Each goes first every other block: both meet the machine's hiccups alike.
                let mut order = [(&inst, left, right), (&steady, steady_left, steady_right)];
                if b % 2 == 1 {
                    order.swap(0, 1);
                }
                for (instance, left, right) in order {
                    if instance.process(&mut [&mut left[..], &mut right[..]], &events) != trio::abi::status::OK {
                        run.bad_status += 1;
                    }
                }
                let reloaded = out[0].iter().chain(&out[1]);
                let differs = reloaded.zip(out[2].iter().chain(&out[3])).any(|(a, b)| a.to_bits() != b.to_bits());
                if run.first_difference.is_none() && differs {
                    run.first_difference = Some(b);
                }
                run.tail.copy_within(FRAMES.., 0);
                let tail_len = run.tail.len();
                run.tail[tail_len - FRAMES..].copy_from_slice(&out[0]);
                run.blocks += 1;
                let next = start + period * run.blocks as u32;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            run
        });
        let reloads = (|| -> Result<_> {
            let source = dir.control();
            for _ in 0..WARM_UP {
                modules.control.reload(&source)?;
            }
            let before = rss()?;
            let (misses_before, started) = ((misses(&inst), misses(&steady)), Instant::now());
            let mut times = Vec::with_capacity(RELOADS);
            for i in 0..RELOADS {
                let report = modules.control.reload(&source).with_context(|| format!("reload {i}"))?;
                ensure!(report.old_unmapped, "reload {i}: {report}");
                times.push((report.landed_to_serving, report.landed_to_done));
            }
            let misses = (misses(&inst) - misses_before.0, misses(&steady) - misses_before.1);
            Ok((before, rss()?, started.elapsed(), misses, times))
        })();
        stop.store(true, Ordering::Release);
        (audio.join(), reloads)
    });
    let run = run.map_err(|_| anyhow::anyhow!("the audio thread panicked"))?;
    let (before, after, reload_time, (reload_misses, steady_misses), times) = reloads?;
    let blocks_during = (reload_time.as_secs_f64() / period.as_secs_f64()) as u64;

    let serving = inst.control_module().context("serving")?.path().to_owned();
    let stale = stale_mappings(&serving)?;
    let staged_dir = serving.parent().context("staging folder")?;
    let copies = std::fs::read_dir(staged_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(&format!("-{}-", std::process::id())))
        .count();
    let mut serving_ms: Vec<f64> = times.iter().map(|t| t.0.as_secs_f64() * 1e3).collect();
    let mut done_ms: Vec<f64> = times.iter().map(|t| t.1.as_secs_f64() * 1e3).collect();
    serving_ms.sort_by(f64::total_cmp);
    done_ms.sort_by(f64::total_cmp);
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let growth = after.saturating_sub(before);
    println!(
        "{RELOADS} reloads under audio in {:.1} s ({:.2} ms each); to serving: median {:.2} ms, max {:.2} ms; to the \
         old library unloaded: median {:.2} ms, max {:.2} ms",
        reload_time.as_secs_f64(),
        reload_time.as_secs_f64() * 1e3 / RELOADS as f64,
        serving_ms[RELOADS / 2],
        serving_ms[RELOADS - 1],
        done_ms[RELOADS / 2],
        done_ms[RELOADS - 1]
    );
    println!(
        "resident memory: {:.2} MiB after {WARM_UP} warm-up reloads, {:.2} MiB after {RELOADS} more ({:+.2} MiB)",
        mib(before),
        mib(after),
        (after as f64 - before as f64) / 1_048_576.0
    );
    println!(
        "audio: {} blocks in all, about {blocks_during} while the reloads ran; deadline misses then: {reload_misses} \
         for the reloaded instance, {steady_misses} for the steady one; test time {:.1} s",
        run.blocks,
        test_started.elapsed().as_secs_f64()
    );
    ensure!(stale.is_empty(), "stale control libraries are mapped:\n{}", stale.join("\n"));
    ensure!(copies == 1, "{copies} staged copies on disk; only the serving one should stay");
    ensure!(growth < 5 * 1024 * 1024, "resident memory grew by {growth} bytes over {RELOADS} reloads");
    ensure!(run.bad_status == 0, "{} blocks did not render", run.bad_status);
    ensure!(rms(&run.tail) > 0.01, "the audio's last second is silent");
    ensure!(
        run.first_difference.is_none(),
        "the reloaded instance's audio differs from the steady one's from block {:?}",
        run.first_difference
    );
    // A reload that held the audio thread up would miss about once per reload. The
    // steady instance meets the machine's own hiccups too; reloads may add at most 1 % of
    // the blocks to them.
    let allowed = steady_misses + blocks_during.div_ceil(100);
    ensure!(
        reload_misses <= allowed,
        "{reload_misses} deadline misses with reloads, {steady_misses} without, in about {blocks_during} blocks"
    );
    assert_eq!(inst.block().stats.alloc_violations.load(Ordering::Relaxed), 0, "allocations on the audio path");
    Ok(())
}
