//! Untrusted host buffers, through the real bundles' VST3 entry points: null channel
//! pointers (32 and 64 bit), fewer or more channels than negotiated, `numSamples` of 0,
//! negative or above the maximum, unsorted and out-of-range event offsets, thousands of
//! events in one block, and changes for parameter ids the plugin does not have. None may
//! crash; each gives defined output, and the next well-formed block plays normally.

use std::sync::Arc;

use anyhow::{Result, ensure};
use integration::{TestBundle, captured_stderr, rms};
use trio_host::{Buffers, Hostile, Module, NoteEvent, ParamPoint, Plugin, Precision, Setup};

const SR: f64 = 48_000.0;
const MAX: usize = 512;

/// An instance of `bundle`'s plugin, set up and processing.
fn started(bundle: &TestBundle, precision: Precision) -> Result<Plugin> {
    let mut plugin = Plugin::new(Arc::new(Module::load(&bundle.path)?))?;
    let mut setup = Setup::new(SR, MAX);
    setup.precision = precision;
    plugin.start(setup)?;
    Ok(plugin)
}

/// A chord held from the first block, then `blocks` well-formed blocks; the level of the
/// last ones.
fn plays_on(plugin: &mut Plugin, blocks: usize) -> Result<f64> {
    let mut last = Vec::new();
    for i in 0..blocks {
        let notes: Vec<NoteEvent> =
            if i == 0 { [60, 64, 67].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect() } else { Vec::new() };
        let noise: Vec<f32> = (0..MAX).map(|n| ((n * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.5).collect();
        let out = plugin.process_audio(MAX, &[&[&noise, &noise]], &notes, &[])?;
        ensure!(out.iter().flatten().all(|s| s.is_finite()), "a non-finite sample after the hostile block");
        last = out[0].clone();
    }
    Ok(rms(&last))
}

fn hostile(plugin: &mut Plugin, frames: usize, notes: &[NoteEvent], how: Hostile) -> Result<(), String> {
    plugin.process_hostile(frames, notes, &[], Buffers::Normal, how).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn null_channel_pointers_in_32_and_64_bits_are_survived() -> Result<()> {
    for bundle in [TestBundle::synth()?, TestBundle::echo()?] {
        for precision in [Precision::F32, Precision::F64] {
            let mut plugin = started(&bundle, precision)?;
            plays_on(&mut plugin, 2)?;
            let chord: Vec<NoteEvent> = [48, 55].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect();
            let result = hostile(&mut plugin, MAX, &chord, Hostile { null_channels: true, ..Hostile::default() });
            eprintln!("{}: null channels, {precision:?}: {result:?}", bundle.path.display());
            let level = plays_on(&mut plugin, 8)?;
            ensure!(level > 0.001, "{precision:?}: silent after null channel pointers");
            ensure!(!plugin.wrote_past_the_maximum());
        }
    }
    Ok(())
}

#[test]
fn fewer_or_more_channels_than_negotiated_are_survived() -> Result<()> {
    for bundle in [TestBundle::synth()?, TestBundle::echo()?] {
        for channels in [0, 1, 3, 8, 40] {
            let mut plugin = started(&bundle, Precision::F32)?;
            let chord: Vec<NoteEvent> = [60, 64].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect();
            let result = hostile(&mut plugin, MAX, &chord, Hostile { channels: Some(channels), ..Hostile::default() });
            ensure!(plugin.output().iter().flatten().all(|s| s.is_finite()), "{channels} channels: non-finite output");
            eprintln!("{}: {channels} channels: {result:?}", bundle.path.display());
            ensure!(plays_on(&mut plugin, 8)? > 0.001, "{channels} channels: silent afterwards");
        }
    }
    Ok(())
}

#[test]
fn a_num_samples_of_zero_negative_or_above_the_maximum_writes_nothing_out_of_bounds() -> Result<()> {
    for bundle in [TestBundle::synth()?, TestBundle::echo()?] {
        for num_samples in [0, -1, -100_000, MAX as i32 + 1, 2 * MAX as i32 - 1, i32::MAX] {
            let mut plugin = started(&bundle, Precision::F32)?;
            let chord: Vec<NoteEvent> = [60, 67].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect();
            let result =
                hostile(&mut plugin, MAX, &chord, Hostile { num_samples: Some(num_samples), ..Hostile::default() });
            eprintln!("{}: numSamples {num_samples}: {result:?}", bundle.path.display());
            ensure!(!plugin.wrote_past_the_maximum(), "numSamples {num_samples}: wrote past maxSamplesPerBlock");
            ensure!(plays_on(&mut plugin, 8)? > 0.001, "numSamples {num_samples}: silent afterwards");
        }
    }
    Ok(())
}

#[test]
fn unsorted_and_out_of_range_event_offsets_play_as_if_sorted_and_clamped() -> Result<()> {
    let bundle = TestBundle::synth()?;
    let notes = [
        NoteEvent::on(400, 60, 0.8),
        NoteEvent::on(3, 64, 0.8),
        NoteEvent::on(MAX as u32, 67, 0.8),
        NoteEvent::on(100_000, 71, 0.8),  // beyond the block: at its end
        NoteEvent::on(u32::MAX, 72, 0.8), // sampleOffset -1: at its start
        NoteEvent::off(10, 60),
    ];
    let mut plugin = started(&bundle, Precision::F32)?;
    hostile(&mut plugin, MAX, &notes, Hostile { unsorted: true, ..Hostile::default() }).map_err(anyhow::Error::msg)?;
    let mut got = plugin.output()[0].clone();
    got.extend_from_slice(&plugin.process(MAX, &[], &[])?[0]);
    // What a well-behaved host would send: clamped into the block, sorted (stable).
    let clamped = [
        NoteEvent::on(0, 72, 0.8),
        NoteEvent::on(3, 64, 0.8),
        NoteEvent::off(10, 60),
        NoteEvent::on(400, 60, 0.8),
        NoteEvent::on(MAX as u32, 67, 0.8),
        NoteEvent::on(MAX as u32, 71, 0.8),
    ];
    let mut reference = started(&bundle, Precision::F32)?;
    let mut want = reference.process(MAX, &clamped, &[])?[0].clone();
    want.extend_from_slice(&reference.process(MAX, &[], &[])?[0]);
    ensure!(got == want, "unsorted, out-of-range offsets did not play as sorted and clamped ones");
    ensure!(plays_on(&mut plugin, 8)? > 0.001);
    Ok(())
}

#[test]
fn thousands_of_events_in_one_block_are_taken_or_dropped_without_harm() -> Result<()> {
    let bundle = TestBundle::synth()?;
    let mut plugin = started(&bundle, Precision::F32)?;
    // 16,000 note-ons and -offs at every offset, sorted as hosts send them.
    let mut notes = Vec::new();
    for i in 0..8_000u32 {
        let offset = i * MAX as u32 / 8_000;
        let pitch = 36 + (i % 48) as u8;
        notes.push(NoteEvent::on(offset, pitch, 0.5));
        notes.push(NoteEvent::off(offset, pitch));
    }
    notes.push(NoteEvent::on(MAX as u32 - 1, 60, 0.9));
    let started = std::time::Instant::now();
    plugin.process(MAX, &notes, &[])?;
    eprintln!("a block of {} events took {:.2?}", notes.len(), started.elapsed());
    ensure!(plugin.output().iter().flatten().all(|s| s.is_finite()));
    ensure!(plays_on(&mut plugin, 4)?.is_finite());
    Ok(())
}

#[test]
fn changes_for_parameters_the_plugin_does_not_have_are_ignored() -> Result<()> {
    let bundle = TestBundle::synth()?;
    let render = |points: &[ParamPoint]| -> Result<Vec<f32>> {
        let mut plugin = started(&bundle, Precision::F32)?;
        let chord: Vec<NoteEvent> = [60, 64].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect();
        let mut out = plugin.process(MAX, &chord, points)?[0].clone();
        out.extend_from_slice(&plugin.process(MAX, &[], points)?[0]);
        Ok(out)
    };
    let clean = render(&[])?;
    let strangers = [
        ParamPoint { id: 999_999, offset: 10, value: 0.3 },
        ParamPoint { id: 0x7FFF_0005, offset: 20, value: 1.0 }, // a MIDI CC parameter it does not list
        ParamPoint { id: 0x8000_0000, offset: 30, value: 0.7 }, // the hosts' range
        ParamPoint { id: u32::MAX, offset: 40, value: f64::NAN },
    ];
    ensure!(render(&strangers)? == clean, "unknown parameter ids changed the sound");
    Ok(())
}

/// TrioSynth's bundle with the test-only engine (the probe build: it allocates in every
/// block, and panics in `process` when armed); also the engine's path in the bundle.
fn with_probe_engine() -> Result<(TestBundle, std::path::PathBuf)> {
    let bundle = TestBundle::synth()?;
    let probe = integration::artifact_dir(integration::Build::Probes).join("librt_engine.so");
    ensure!(probe.is_file(), "{} is missing: run `cargo xtask test`", probe.display());
    let engine = bundle.bin("rt_engine.so");
    std::fs::copy(&probe, &engine)?;
    Ok((bundle, engine))
}

/// What the plugin writes to stderr at a main-thread call (its reports of the audio
/// thread's problems).
fn main_thread_report(plugin: &Plugin) -> Result<String> {
    let ((), text) = captured_stderr(|| {
        let _ = plugin.parameters();
        Ok(())
    })?;
    Ok(text)
}

#[test]
fn an_allocating_engine_is_reported_by_the_main_thread_never_the_audio_thread() -> Result<()> {
    // The test-only engine allocates in every block.
    let (bundle, _engine) = with_probe_engine()?;
    let mut plugin = started(&bundle, Precision::F32)?;
    let ((), audio) = captured_stderr(|| {
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<()> {
                    for _ in 0..10 {
                        plugin.process(MAX, &[NoteEvent::on(0, 60, 0.8)], &[])?;
                    }
                    Ok(())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the audio thread panicked"))?
        })
    })?;
    ensure!(audio.is_empty(), "the audio thread wrote to stderr:\n{audio}");
    let main = main_thread_report(&plugin)?;
    eprintln!("{main}");
    ensure!(main.contains("allocator call(s) where none are allowed"), "no report from the main thread:\n{main}");
    Ok(())
}

#[test]
fn control_events_that_come_late_are_reported_by_the_main_thread() -> Result<()> {
    // A host that says it plays in real time but renders as fast as it can (some bounce
    // that way): the control worker ticks on its timer, every 2 ms, while the engine's
    // clock runs many times faster, so the arpeggiator's steps, scheduled a lookahead of
    // a block plus 20 ms ahead of the clock, reach the engine after their sample.
    let bundle = TestBundle::synth()?;
    let mut plugin = Plugin::new(Arc::new(Module::load(&bundle.path)?))?;
    let arp = plugin.parameters().into_iter().find(|p| p.title == "Arpeggiator").expect("TrioSynth's arpeggiator");
    let on = plugin.param_from_text(arp.id, "On").expect("the arpeggiator accepts On");
    plugin.set_param_normalized(arp.id, on)?;
    plugin.start(Setup::new(SR, MAX))?;
    let ((), audio) = captured_stderr(|| {
        let chord: Vec<NoteEvent> = [60, 64, 67].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect();
        plugin.process(MAX, &chord, &[])?;
        // 20 s of audio, far faster than real time (here some 27 times).
        for _ in 0..(20.0 * SR) as usize / MAX {
            plugin.process(MAX, &[], &[])?;
        }
        Ok(())
    })?;
    ensure!(audio.is_empty(), "the audio thread wrote to stderr:\n{audio}");
    let main = main_thread_report(&plugin)?;
    eprintln!("{main}");
    ensure!(
        main.contains("came after their sample time and played at the start of the next block"),
        "no report of late events from the main thread:\n{main}"
    );
    // More late events, then the host stops at once: deactivating tells them too.
    let ((), audio) = captured_stderr(|| {
        for _ in 0..(5.0 * SR) as usize / MAX {
            plugin.process(MAX, &[], &[])?;
        }
        Ok(())
    })?;
    ensure!(audio.is_empty(), "the audio thread wrote to stderr:\n{audio}");
    let ((), stopped) = captured_stderr(|| {
        plugin.stop();
        Ok(())
    })?;
    ensure!(stopped.contains("came after their sample time"), "no report when the host deactivated:\n{stopped}");
    Ok(())
}

#[test]
fn an_engine_panic_is_logged_by_the_main_thread_with_where_and_why() -> Result<()> {
    // The test-only engine, which panics in `process` when armed.
    let (bundle, engine) = with_probe_engine()?;
    let mut plugin = started(&bundle, Precision::F32)?;
    plugin.process(MAX, &[NoteEvent::on(0, 60, 0.8)], &[])?;
    let _lib = integration::arm_engine_panic(&engine)?;
    // The block fails (`kResultFalse`) with silence written.
    let (result, audio) = captured_stderr(|| {
        std::thread::scope(|scope| {
            scope
                .spawn(|| plugin.process(MAX, &[NoteEvent::on(0, 64, 0.8)], &[]).map(drop))
                .join()
                .map_err(|_| anyhow::anyhow!("the audio thread panicked"))
        })
    })?;
    ensure!(result.is_err(), "a panicking block reported success");
    ensure!(audio.is_empty(), "the audio thread wrote to stderr:\n{audio}");
    // Until the host resets it, the engine outputs silence (and the block succeeds).
    let out = plugin.process(MAX, &[NoteEvent::on(0, 67, 0.8)], &[])?;
    ensure!(out.iter().flatten().all(|&s| s == 0.0), "a faulted engine outputs silence");
    let main = main_thread_report(&plugin)?;
    for part in ["the engine panicked while processing", "fault.rs:", "fault injected at point 6", "resets it"] {
        ensure!(main.contains(part), "the main thread's report lacks {part:?}:\n{main}");
    }
    Ok(())
}
