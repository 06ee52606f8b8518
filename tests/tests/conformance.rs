//! VST3 conformance: the behaviours Steinberg's validator checks, run with the headless
//! test host (`trio-host`) on the real bundle made by the repository's own bundling.
//!
//! Each test loads its own bundle copy, so tests run in parallel (nextest runs each in
//! its own process, as a host would load the plugin).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use integration::{TestBundle, peak_frequency, rms};
use synth_common::id;
use trio_host::vst3::Steinberg::Vst::*;
use trio_host::vst3::Steinberg::*;
use trio_host::{Buffers, HostError, Module, NoteEvent, ParamPoint, Plugin, Precision, Setup};

/// A bundle and a plugin made from it.
struct Fixture {
    plugin: Plugin,
    module: Arc<Module>,
    _bundle: TestBundle,
}

fn fixture() -> Result<Fixture> {
    let bundle = TestBundle::synth()?;
    let module = Arc::new(Module::load(&bundle.path)?);
    let plugin = Plugin::new(Arc::clone(&module))?;
    Ok(Fixture { plugin, module, _bundle: bundle })
}

const SR: f64 = 48_000.0;
const MAX_BLOCK: usize = 512;

/// Renders `frames` frames in blocks of `block`, with `notes` and `points` at absolute
/// sample positions (their `offset` fields are absolute here).
fn render_score(
    plugin: &mut Plugin,
    notes: &[NoteEvent],
    points: &[ParamPoint],
    frames: usize,
    mut block_sizes: impl FnMut(usize) -> usize,
) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![Vec::with_capacity(frames), Vec::with_capacity(frames)];
    let mut start = 0usize;
    let mut index = 0;
    while start < frames {
        let n = block_sizes(index).min(frames - start);
        index += 1;
        let end = start + n;
        let in_block = |at: u32| (start..end).contains(&(at as usize));
        let block_notes: Vec<NoteEvent> = notes
            .iter()
            .filter(|e| in_block(e.offset))
            .map(|e| NoteEvent { offset: e.offset - start as u32, ..*e })
            .collect();
        let block_points: Vec<ParamPoint> = points
            .iter()
            .filter(|p| in_block(p.offset))
            .map(|p| ParamPoint { offset: p.offset - start as u32, ..*p })
            .collect();
        let channels = plugin.process(n, &block_notes, &block_points)?;
        for (o, c) in out.iter_mut().zip(channels) {
            o.extend_from_slice(c);
        }
        start = end;
    }
    Ok(out)
}

/// Plays A4 from sample 0 for `frames` frames and returns the left channel.
fn a4(plugin: &mut Plugin, frames: usize, block: usize) -> Result<Vec<f32>> {
    let mut out = render_score(plugin, &[NoteEvent::on(0, 69, 0.8)], &[], frames, |_| block)?;
    Ok(out.swap_remove(0))
}

fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits())
}

fn refused(result: Result<(), HostError>) -> Option<tresult> {
    match result {
        Err(HostError::Refused { code, .. }) => Some(code),
        _ => None,
    }
}

#[test]
fn buses_parameters_units_and_programs_scan_consistently() -> Result<()> {
    let f = fixture()?;
    let p = &f.plugin;
    let outs = p.buses(MediaTypes_::kAudio, BusDirections_::kOutput);
    ensure!(outs.len() == 1, "audio outputs: {outs:?}");
    assert_eq!(outs[0].channel_count, 2);
    assert_eq!(outs[0].bus_type, BusTypes_::kMain as i32);
    assert_ne!(outs[0].flags & BusInfo_::BusFlags_::kDefaultActive, 0);
    assert!(p.buses(MediaTypes_::kAudio, BusDirections_::kInput).is_empty(), "an instrument has no audio input");
    let events = p.buses(MediaTypes_::kEvent, BusDirections_::kInput);
    assert_eq!(events.len(), 1);
    assert!(events[0].channel_count >= 1);
    assert!(p.buses(MediaTypes_::kEvent, BusDirections_::kOutput).is_empty());
    // Out-of-range bus info is refused, not garbage.
    // SAFETY: plain data and a valid component.
    unsafe {
        let mut info: vst3::Steinberg::Vst::BusInfo = std::mem::zeroed();
        let c = p.component();
        assert_eq!(
            c.getBusInfo(MediaTypes_::kAudio as i32, BusDirections_::kOutput as i32, 1, &mut info),
            kInvalidArgument
        );
        assert_eq!(
            c.getBusInfo(MediaTypes_::kAudio as i32, BusDirections_::kOutput as i32, -1, &mut info),
            kInvalidArgument
        );
        assert_eq!(
            c.getBusInfo(MediaTypes_::kAudio as i32, BusDirections_::kInput as i32, 0, &mut info),
            kInvalidArgument
        );
    }

    let units = p.units();
    let root = units.iter().find(|u| u.id == kRootUnitId).context("no root unit")?;
    assert_eq!(root.parent, kNoParentUnitId);
    for u in &units {
        assert!(!u.name.is_empty(), "unit {} has no name", u.id);
        if u.id != kRootUnitId {
            assert!(units.iter().any(|p| p.id == u.parent), "unit {} has an unknown parent {}", u.name, u.parent);
        }
        assert_eq!(u.program_list, kNoProgramListId, "unit {} names a program list", u.name);
    }
    assert!(p.program_lists().is_empty(), "program lists are not offered");

    let params = p.parameters();
    ensure!(params.len() >= id::COUNT as usize, "{} parameters", params.len());
    let mut ids: Vec<u32> = params.iter().map(|q| q.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), params.len(), "parameter ids are unique");
    let mut bypass = 0;
    for q in &params {
        assert!(!q.title.is_empty(), "parameter {} has no title", q.id);
        assert!((0.0..=1.0).contains(&q.default_normalized), "{}: default {}", q.title, q.default_normalized);
        assert!(q.step_count >= 0, "{}: step count {}", q.title, q.step_count);
        assert!(units.iter().any(|u| u.id == q.unit_id), "{}: unknown unit {}", q.title, q.unit_id);
        let flags = q.flags;
        if flags & ParameterInfo_::ParameterFlags_::kIsBypass != 0 {
            bypass += 1;
            assert_eq!(q.step_count, 1, "a bypass is a switch");
        }
        assert_eq!(flags & ParameterInfo_::ParameterFlags_::kIsProgramChange, 0);
        // Value conversions agree with each other and with the text.
        let plain = p.to_plain(q.id, q.default_normalized);
        assert!((p.to_normalized(q.id, plain) - q.default_normalized).abs() < 1e-9, "{}", q.title);
        let text = p.param_text(q.id, q.default_normalized).with_context(|| format!("{}: no text", q.title))?;
        let back = p.param_from_text(q.id, &text).with_context(|| format!("{}: {text:?} does not parse", q.title))?;
        assert_eq!(p.param_text(q.id, back).as_deref(), Some(text.as_str()), "{}", q.title);
        // The current value starts at the default.
        assert!((p.param_normalized(q.id) - q.default_normalized).abs() < 1e-9, "{}", q.title);
    }
    assert_eq!(bypass, 1, "exactly one bypass parameter");
    // An unknown parameter is refused.
    assert!(p.set_param_normalized(100_000, 0.5).is_err());
    assert!(p.parameter_at(params.len() as i32).is_none());
    assert!(p.parameter_at(-1).is_none());
    Ok(())
}

#[test]
fn midi_controllers_map_to_the_parameters_the_control_module_names() -> Result<()> {
    let f = fixture()?;
    let p = &f.plugin;
    let params = p.parameters();
    let title = |pid: u32| params.iter().find(|q| q.id == pid).map(|q| q.title.clone());
    assert_eq!(p.midi_cc_assignment(0, 0, 74).and_then(title).as_deref(), Some("Filter Cutoff"));
    assert_eq!(p.midi_cc_assignment(0, 0, 7).and_then(title).as_deref(), Some("Output Gain"));
    assert_eq!(p.midi_cc_assignment(0, 5, 71).and_then(title).as_deref(), Some("Resonance"), "any channel");
    assert_eq!(p.midi_cc_assignment(0, 0, 20), None, "an unmapped controller");
    assert_eq!(p.midi_cc_assignment(1, 0, 74), None, "there is no second event bus");
    assert_eq!(p.midi_cc_assignment(0, 0, -1), None);
    assert_eq!(p.midi_cc_assignment(0, 0, 300), None);
    for cc in 0..130 {
        if let Some(pid) = p.midi_cc_assignment(0, 0, cc) {
            assert!(title(pid).is_some(), "CC {cc} maps to unknown parameter {pid}");
        }
    }
    // The pitch wheel (129) goes to the engine as events, through a hidden parameter.
    let bend = p.midi_cc_assignment(0, 3, 129).expect("the pitch wheel is mapped");
    let info = params.iter().find(|q| q.id == bend).expect("listed");
    assert_eq!((info.title.as_str(), info.default_normalized), ("MIDI CC 129 (Pitch Bend)", 0.5));
    assert_eq!(info.flags, ParameterInfo_::ParameterFlags_::kIsHidden, "hidden, not automatable");
    assert_eq!(p.midi_cc_assignment(0, 0, 128), None, "channel pressure is not taken");
    Ok(())
}

#[test]
fn the_pitch_wheel_bends_a_note_from_its_sample() -> Result<()> {
    let mut f = fixture()?;
    let bend = f.plugin.midi_cc_assignment(0, 0, 129).expect("the pitch wheel is mapped");
    let sine = f.plugin.param_from_text(id::WAVEFORM, "Sine").expect("Sine");
    f.plugin.set_param_normalized(id::WAVEFORM, sine)?;
    f.plugin.start(Setup::new(SR, MAX_BLOCK))?;
    // A4 held; the wheel fully up at sample 24 000 (mid-block), back to rest at 48 000.
    let notes = [NoteEvent::on(0, 69, 0.8)];
    let points =
        [ParamPoint { id: bend, offset: 24_000, value: 1.0 }, ParamPoint { id: bend, offset: 48_000, value: 0.5 }];
    let out = render_score(&mut f.plugin, &notes, &points, 72_000, |_| 500)?;
    let before = peak_frequency(&out[0][4_800..23_900], SR, 300.0, 600.0, 0.05);
    let bent = peak_frequency(&out[0][24_100..47_900], SR, 300.0, 600.0, 0.05);
    let after = peak_frequency(&out[0][48_100..71_900], SR, 300.0, 600.0, 0.05);
    eprintln!("A4: {before:.2} Hz, bent +2 semitones {bent:.2} Hz, back at rest {after:.2} Hz");
    ensure!((before - 440.0).abs() < 0.5 && (after - 440.0).abs() < 0.5, "{before} / {after}");
    ensure!((bent - 493.88).abs() < 0.5, "bent: {bent}");
    Ok(())
}

#[test]
fn terminate_and_initialize_cycles_leave_a_working_plugin() -> Result<()> {
    let mut f = fixture()?;
    let count = f.plugin.parameters().len();
    for cycle in 0..3 {
        f.plugin.reinitialize()?;
        assert_eq!(f.plugin.parameters().len(), count, "cycle {cycle}");
        f.plugin.start(Setup::new(SR, MAX_BLOCK))?;
        let audio = a4(&mut f.plugin, 4800, MAX_BLOCK)?;
        assert!(rms(&audio) > 0.01, "cycle {cycle}: silent");
    }
    Ok(())
}

#[test]
fn every_allowed_order_of_state_transitions_works() -> Result<()> {
    let mut f = fixture()?;
    let p = &mut f.plugin;
    let sounds = |p: &mut Plugin, what: &str| -> Result<()> {
        let audio = a4(p, 2400, 256)?;
        ensure!(rms(&audio) > 0.01, "{what}: silent");
        Ok(())
    };
    // The usual order, then repeated.
    for round in 0..2 {
        p.setup_processing(Setup::new(SR, MAX_BLOCK))?;
        p.set_active(true)?;
        p.set_processing(true)?;
        sounds(p, &format!("round {round}"))?;
        p.set_processing(false)?;
        p.set_active(false)?;
    }
    // setupProcessing twice in a row, with different values: the last one counts.
    p.setup_processing(Setup::new(96_000.0, 64))?;
    p.setup_processing(Setup::new(SR, MAX_BLOCK))?;
    p.set_active(true)?;
    // setProcessing toggled while active, and processing without setProcessing(true)
    // (hosts that never call it).
    sounds(p, "active, never setProcessing")?;
    for _ in 0..3 {
        p.set_processing(true)?;
        p.set_processing(false)?;
    }
    p.set_processing(true)?;
    sounds(p, "after toggles")?;
    p.set_processing(false)?;
    // Deactivate/activate repeatedly without a new setup.
    for _ in 0..3 {
        p.set_active(false)?;
        p.set_active(true)?;
    }
    sounds(p, "after reactivations")?;
    p.set_active(false)?;
    // 64-bit and back to 32-bit.
    ensure!(p.can_process_f64(), "64-bit processing is claimed");
    for precision in [Precision::F64, Precision::F32, Precision::F64] {
        p.setup_processing(Setup { precision, ..Setup::new(SR, MAX_BLOCK) })?;
        p.set_active(true)?;
        p.set_processing(true)?;
        sounds(p, &format!("{precision:?}"))?;
        p.set_processing(false)?;
        p.set_active(false)?;
    }
    // An invalid setup is refused and leaves the plugin usable.
    let mut bad = vst3::Steinberg::Vst::ProcessSetup {
        processMode: ProcessModes_::kRealtime as i32,
        symbolicSampleSize: 7,
        maxSamplesPerBlock: 512,
        sampleRate: SR,
    };
    // SAFETY: a valid processor and setup struct.
    assert_eq!(unsafe { p.processor().setupProcessing(&mut bad) }, kResultFalse);
    bad.symbolicSampleSize = SymbolicSampleSizes_::kSample32 as i32;
    bad.sampleRate = -1.0;
    // SAFETY: as above.
    assert_eq!(unsafe { p.processor().setupProcessing(&mut bad) }, kResultFalse);
    // SAFETY: a valid processor; a null setup.
    assert_eq!(unsafe { p.processor().setupProcessing(std::ptr::null_mut()) }, kInvalidArgument);
    p.start(Setup::new(SR, MAX_BLOCK))?;
    sounds(p, "after refused setups")?;
    Ok(())
}

#[test]
fn buses_activate_and_out_of_range_indices_are_refused() -> Result<()> {
    let f = fixture()?;
    f.plugin.activate_all_buses(true)?;
    f.plugin.activate_all_buses(false)?;
    f.plugin.activate_all_buses(true)?;
    let c = f.plugin.component();
    let (audio, event) = (MediaTypes_::kAudio as i32, MediaTypes_::kEvent as i32);
    let (input, output) = (BusDirections_::kInput as i32, BusDirections_::kOutput as i32);
    // SAFETY: a valid component.
    unsafe {
        assert_eq!(c.activateBus(audio, output, 1, 1), kInvalidArgument);
        assert_eq!(c.activateBus(audio, output, -1, 1), kInvalidArgument);
        assert_eq!(c.activateBus(audio, input, 0, 1), kInvalidArgument);
        assert_eq!(c.activateBus(event, input, 1, 1), kInvalidArgument);
        assert_eq!(c.activateBus(event, output, 0, 1), kInvalidArgument);
        assert_eq!(c.activateBus(7, output, 0, 1), kInvalidArgument);
    }
    Ok(())
}

#[test]
fn only_a_stereo_output_arrangement_is_accepted() -> Result<()> {
    let f = fixture()?;
    let processor = f.plugin.processor();
    let current = || -> tresult {
        let mut arr: SpeakerArrangement = 0;
        // SAFETY: a valid processor and out value.
        let code = unsafe { processor.getBusArrangement(BusDirections_::kOutput as i32, 0, &mut arr) };
        assert_eq!(code, kResultOk);
        assert_eq!(arr, SpeakerArr::kStereo, "the arrangement changed");
        code
    };
    let set = |ins: &mut [SpeakerArrangement], outs: &mut [SpeakerArrangement]| -> tresult {
        let ptr = |a: &mut [SpeakerArrangement]| if a.is_empty() { std::ptr::null_mut() } else { a.as_mut_ptr() };
        // SAFETY: valid arrays of the given lengths.
        unsafe { processor.setBusArrangements(ptr(ins), ins.len() as i32, ptr(outs), outs.len() as i32) }
    };
    assert_eq!(set(&mut [], &mut [SpeakerArr::kStereo]), kResultTrue);
    current();
    for (what, ins, outs) in [
        ("mono out", vec![], vec![SpeakerArr::kMono]),
        ("5.1 out", vec![], vec![SpeakerArr::k51]),
        ("mono in", vec![SpeakerArr::kMono], vec![SpeakerArr::kStereo]),
        ("stereo in", vec![SpeakerArr::kStereo], vec![SpeakerArr::kStereo]),
        ("sidechain", vec![SpeakerArr::kStereo, SpeakerArr::kStereo], vec![SpeakerArr::kStereo]),
        ("two outs", vec![], vec![SpeakerArr::kStereo, SpeakerArr::kStereo]),
        ("no outs", vec![], vec![]),
    ] {
        let (mut ins, mut outs) = (ins, outs);
        assert_eq!(set(&mut ins, &mut outs), kResultFalse, "{what} accepted");
        current();
    }
    let mut arr: SpeakerArrangement = 0;
    // SAFETY: a valid processor and out value.
    unsafe {
        assert_eq!(processor.getBusArrangement(BusDirections_::kInput as i32, 0, &mut arr), kInvalidArgument);
        assert_eq!(processor.getBusArrangement(BusDirections_::kOutput as i32, 1, &mut arr), kInvalidArgument);
    }
    Ok(())
}

#[test]
fn suspend_change_rate_and_resume_stays_in_tune() -> Result<()> {
    let mut f = fixture()?;
    f.plugin.start(Setup::new(48_000.0, MAX_BLOCK))?;
    let at_48 = a4(&mut f.plugin, 24_000, MAX_BLOCK)?;
    let f48 = peak_frequency(&at_48[4800..], 48_000.0, 400.0, 480.0, 0.5);
    f.plugin.stop();
    f.plugin.setup_processing(Setup::new(44_100.0, MAX_BLOCK))?;
    f.plugin.set_active(true)?;
    f.plugin.set_processing(true)?;
    let at_44 = a4(&mut f.plugin, 22_050, MAX_BLOCK)?;
    let f44 = peak_frequency(&at_44[4410..], 44_100.0, 400.0, 480.0, 0.5);
    eprintln!("A4 measured: {f48:.2} Hz at 48 kHz, {f44:.2} Hz at 44.1 kHz");
    assert!((f48 - 440.0).abs() < 1.0, "{f48} Hz at 48 kHz");
    assert!((f44 - 440.0).abs() < 1.0, "{f44} Hz at 44.1 kHz after resume");
    // The tail follows the rate: same seconds, fewer samples.
    let tail_44 = f.plugin.tail_samples();
    f.plugin.stop();
    f.plugin.setup_processing(Setup::new(96_000.0, MAX_BLOCK))?;
    let tail_96 = f.plugin.tail_samples();
    assert!((f64::from(tail_96) / f64::from(tail_44) - 96.0 / 44.1).abs() < 0.01, "{tail_44} vs {tail_96}");
    Ok(())
}

#[test]
fn processing_on_another_thread_than_setup_works_and_the_handler_stays_on_the_main_thread() -> Result<()> {
    let mut f = fixture()?;
    f.plugin.start(Setup::new(SR, MAX_BLOCK))?;
    let main = std::thread::current().id();
    let plugin = &mut f.plugin;
    let (audio, thread) = std::thread::scope(|s| {
        s.spawn(|| {
            // Hosts call these on the audio thread too.
            let _ = plugin.param_normalized(id::CUTOFF);
            let _ = plugin.set_param_normalized(id::CUTOFF, 0.5);
            (a4(plugin, 9600, MAX_BLOCK), std::thread::current().id())
        })
        .join()
    })
    .map_err(|_| anyhow::anyhow!("the audio thread panicked"))?;
    assert_ne!(thread, main);
    let audio = audio?;
    let freq = peak_frequency(&audio[4800..], SR, 400.0, 480.0, 0.5);
    assert!((freq - 440.0).abs() < 1.0, "{freq} Hz");
    f.plugin.idle()?;
    for call in f.plugin.handler_calls() {
        assert!(call.on_main_thread, "{call:?} came from another thread");
    }
    Ok(())
}

#[test]
fn silent_output_is_flagged_silent() -> Result<()> {
    for precision in [Precision::F32, Precision::F64] {
        let mut f = fixture()?;
        f.plugin.start(Setup { precision, ..Setup::new(SR, MAX_BLOCK) })?;
        let flags = f.plugin.process_with(MAX_BLOCK, &[], &[], Buffers::Normal)?.to_vec();
        assert_eq!(flags, vec![0b11], "{precision:?}: an idle instrument is silent");
        assert!(f.plugin.output().iter().flatten().all(|&s| s == 0.0));
        let flags = f.plugin.process_with(MAX_BLOCK, &[NoteEvent::on(0, 69, 0.8)], &[], Buffers::Normal)?.to_vec();
        assert_eq!(flags, vec![0], "{precision:?}: a playing note is not silent");
        if precision == Precision::F64 {
            let wide = f.plugin.output_f64();
            let narrow = f.plugin.output();
            for (w, n) in wide.iter().zip(narrow) {
                assert!(
                    w[..MAX_BLOCK].iter().zip(n).all(|(&a, &b)| a == f64::from(b)),
                    "64-bit output is the 32-bit render"
                );
            }
        }
        f.plugin.process_with(MAX_BLOCK, &[NoteEvent::off(0, 69)], &[], Buffers::Normal)?;
        // Release (300 ms by default) within the reported tail.
        let tail = f.plugin.tail_samples() as usize;
        assert!(tail >= (0.3 * SR) as usize, "tail {tail} is shorter than the release");
        let mut flags = vec![];
        for _ in 0..tail.div_ceil(MAX_BLOCK) + 1 {
            flags = f.plugin.process_with(MAX_BLOCK, &[], &[], Buffers::Normal)?.to_vec();
        }
        assert_eq!(flags, vec![0b11], "{precision:?}: silent again after the tail");
    }
    Ok(())
}

#[test]
fn parameter_flushes_are_accepted_and_take_effect() -> Result<()> {
    let mut flushed = fixture()?;
    let mut plain = fixture()?;
    for f in [&mut flushed, &mut plain] {
        f.plugin.start(Setup::new(SR, MAX_BLOCK))?;
    }
    let p = &mut flushed.plugin;
    // No buses, zero channels, zero samples, no changes at all.
    p.process_with(MAX_BLOCK, &[], &[], Buffers::NoBuses)?;
    p.process_with(0, &[], &[], Buffers::Normal)?;
    p.process_with(64, &[], &[], Buffers::ZeroChannels)?;
    p.process_with(0, &[], &[], Buffers::NoBuses)?;
    // A flush carrying automation: the gain goes to its minimum.
    let quiet = [ParamPoint { id: id::GAIN, offset: 0, value: 0.0 }];
    p.process_with(0, &[], &quiet, Buffers::NoBuses)?;
    p.process_with(32, &[], &quiet, Buffers::ZeroChannels)?;
    let loud = a4(&mut plain.plugin, 9600, MAX_BLOCK)?;
    let soft = a4(&mut flushed.plugin, 9600, MAX_BLOCK)?;
    let (loud, soft) = (rms(&loud[4800..]), rms(&soft[4800..]));
    assert!(loud > 0.01, "{loud}");
    assert!(soft < loud / 100.0, "the flushed gain did not apply: {soft} vs {loud}");
    Ok(())
}

/// Notes and multi-point automation at awkward absolute positions, 20 000 samples.
fn score() -> (Vec<NoteEvent>, Vec<ParamPoint>, usize) {
    let notes = vec![
        NoteEvent::on(0, 69, 0.8),
        NoteEvent::on(3001, 72, 0.5),
        NoteEvent::off(9000, 69),
        NoteEvent::on(9000, 64, 1.0),
        NoteEvent::off(15_007, 72),
        NoteEvent::off(17_500, 64),
    ];
    let points = vec![
        ParamPoint { id: id::CUTOFF, offset: 2000, value: 0.3 },
        ParamPoint { id: id::CUTOFF, offset: 2001, value: 0.9 },
        ParamPoint { id: id::CUTOFF, offset: 5000, value: 0.5 },
        ParamPoint { id: id::RESONANCE, offset: 5003, value: 0.7 },
        ParamPoint { id: id::CUTOFF, offset: 7777, value: 0.6 },
        ParamPoint { id: id::GAIN, offset: 12_345, value: 0.6 },
        ParamPoint { id: id::WAVEFORM, offset: 13_000, value: 1.0 },
    ];
    (notes, points, 20_000)
}

#[test]
fn any_block_size_gives_the_same_audio_bit_for_bit() -> Result<()> {
    let (notes, points, frames) = score();
    let render = |sizes: &[usize]| -> Result<Vec<Vec<f32>>> {
        let mut f = fixture()?;
        f.plugin.start(Setup::new(SR, MAX_BLOCK))?;
        render_score(&mut f.plugin, &notes, &points, frames, |i| sizes[i % sizes.len()])
    };
    let reference = render(&[MAX_BLOCK])?;
    assert!(rms(&reference[0]) > 0.01);
    for sizes in [&[1][..], &[7], &[64], &[500], &[1, 7, 64, 500, MAX_BLOCK], &[MAX_BLOCK, 3, 129]] {
        let audio = render(sizes)?;
        for (c, (a, b)) in reference.iter().zip(&audio).enumerate() {
            assert_eq!(a.len(), b.len());
            assert_eq!(first_difference(a, b), None, "blocks {sizes:?}, channel {c}: first different sample");
        }
    }
    Ok(())
}

#[test]
fn process_format_64_bit_is_the_32_bit_render_widened() -> Result<()> {
    let (notes, points, frames) = score();
    let mut narrow = fixture()?;
    narrow.plugin.start(Setup::new(SR, MAX_BLOCK))?;
    let a = render_score(&mut narrow.plugin, &notes, &points, frames, |_| MAX_BLOCK)?;
    let mut wide = fixture()?;
    wide.plugin.start(Setup { precision: Precision::F64, offline: true, ..Setup::new(SR, MAX_BLOCK) })?;
    let b = render_score(&mut wide.plugin, &notes, &points, frames, |_| MAX_BLOCK)?;
    assert_eq!(first_difference(&a[0], &b[0]), None);
    assert_eq!(first_difference(&a[1], &b[1]), None);
    // A block longer than the setup's maximum is refused, not overrun.
    let mut data_frames = MAX_BLOCK + 1;
    wide.plugin.setup_processing(Setup { precision: Precision::F64, ..Setup::new(SR, MAX_BLOCK) })?;
    let err = wide.plugin.process(data_frames, &[], &[]).err();
    assert!(matches!(err, Some(HostError::BlockTooLarge { .. })), "{err:?}");
    data_frames = 0;
    wide.plugin.process(data_frames, &[], &[])?;
    Ok(())
}

#[test]
fn bypass_survives_a_state_round_trip() -> Result<()> {
    let f = fixture()?;
    let bypass = f.plugin.parameters().into_iter().find(|q| q.flags & ParameterInfo_::ParameterFlags_::kIsBypass != 0);
    let bypass = bypass.context("no bypass parameter")?;
    f.plugin.set_param_normalized(bypass.id, 1.0)?;
    let state = f.plugin.component_state()?;
    let controller_state = f.plugin.controller_state()?;
    let fresh = Plugin::new(Arc::clone(&f.module))?;
    assert_eq!(fresh.param_normalized(bypass.id), 0.0);
    fresh.set_component_state(&state)?;
    assert_eq!(fresh.param_normalized(bypass.id), 1.0, "through the component state");
    let other = Plugin::new(Arc::clone(&f.module))?;
    other.set_controller_state(&controller_state)?;
    assert_eq!(other.param_normalized(bypass.id), 1.0, "through the controller state");
    // And back off.
    f.plugin.set_param_normalized(bypass.id, 0.0)?;
    fresh.set_component_state(&f.plugin.component_state()?)?;
    assert_eq!(fresh.param_normalized(bypass.id), 0.0);
    Ok(())
}

#[test]
fn automation_is_accurate_to_the_sample_within_a_block() -> Result<()> {
    const K: u32 = 200;
    const BLOCK_START: usize = 2 * MAX_BLOCK;
    let render = |points: &[ParamPoint]| -> Result<Vec<f32>> {
        let mut f = fixture()?;
        f.plugin.start(Setup::new(SR, MAX_BLOCK))?;
        let mut out = render_score(&mut f.plugin, &[NoteEvent::on(0, 69, 0.9)], points, 4 * MAX_BLOCK, |_| MAX_BLOCK)?;
        Ok(out.swap_remove(0))
    };
    let at = |offset: u32, value: f64| ParamPoint { id: id::GAIN, offset: BLOCK_START as u32 + offset, value };
    let none = render(&[])?;
    let one = render(&[at(K, 0.0)])?;
    let first = first_difference(&none, &one).context("the point changed nothing")?;
    eprintln!("one point at sample {K} of the block: output changes from sample {}", first - BLOCK_START);
    assert!(first >= BLOCK_START + K as usize, "changed before the point: sample {}", first - BLOCK_START);
    assert!(first <= BLOCK_START + K as usize + 1, "changed late: sample {}", first - BLOCK_START);
    // Several points in one block: each takes effect at its own sample.
    let two = render(&[at(K, 0.0), at(3 * K / 2, 1.0)])?;
    assert_eq!(first_difference(&one, &two[..]).map(|i| i >= BLOCK_START + 3 * K as usize / 2), Some(true));
    let second = first_difference(&one, &two).unwrap_or(0) - BLOCK_START;
    assert!(second <= 3 * K as usize / 2 + 1, "the second point landed at {second}");
    assert_eq!(first_difference(&none[..BLOCK_START + K as usize], &two[..BLOCK_START + K as usize]), None);
    Ok(())
}

/// The plugin object linked into this test (the bridge's rlib), driven through the same
/// COM interfaces and the same host, so the test can reach its instance and ask for a
/// restart the way a reload does.
mod in_process {
    use super::*;
    use integration::{Build, ModuleDir};
    use trio_bridge::vst3::TrioPlugin;
    use trio_host::HandlerCallKind;
    use trio_host::vst3::{ComPtr, ComWrapper};

    /// TrioSynth's configuration, as the build tool compiles it into its bridge.
    static CONFIG: trio_bridge::PluginConfig = trio_bridge::PluginConfig {
        name: "TrioSynth",
        vendor: "Trio Audio",
        url: "https://example.com/triosynth",
        email: "support@example.com",
        version: "0.1.0",
        class_id: [0x6A, 0x3F, 0x1C, 0x2E, 0x9B, 0x7D, 0x4E, 0x6F, 0x8A, 0x0B, 0x1C, 0x2D, 0x3E, 0x4F, 0x50, 0x61],
        sub_categories: "Instrument|Synth",
        kind: trio_bridge::PluginKind::Instrument,
        layouts: &[trio_bridge::Layout::Stereo],
        sidechain: false,
        midi_input: true,
        watch: None,
    };

    pub(super) struct Linked {
        pub plugin: Plugin,
        pub object: ComWrapper<TrioPlugin>,
        pub modules: Arc<trio_bridge::Modules>,
        pub dir: ModuleDir,
    }

    pub(super) fn linked() -> Result<Linked> {
        let _bundle = TestBundle::synth()?; // builds the modules
        let dir = ModuleDir::new(Build::Normal)?;
        let modules = trio_bridge::Modules::load(&dir.paths(), None)?;
        let object = ComWrapper::new(TrioPlugin::new(&CONFIG, &modules).map_err(anyhow::Error::msg)?);
        let component: ComPtr<IComponent> = object.to_com_ptr().context("no IComponent")?;
        let plugin = Plugin::from_component(component, "TrioSynth (linked)")?;
        Ok(Linked { plugin, object, modules, dir })
    }

    #[test]
    fn restart_requests_reach_the_handler_on_the_main_thread_only() -> Result<()> {
        let mut l = linked()?;
        l.plugin.start(Setup::new(SR, MAX_BLOCK))?;
        let flags = RestartFlags_::kParamTitlesChanged | RestartFlags_::kParamValuesChanged;
        let instance = l.object.instance();
        // Asked for on a background thread, as a reload does.
        std::thread::scope(|s| s.spawn(|| instance.request_restart(flags)).join())
            .map_err(|_| anyhow::anyhow!("panicked"))?;
        // Audio-thread calls (process and the controller calls hosts make there) must not
        // deliver it.
        let plugin = &mut l.plugin;
        std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                plugin.process(MAX_BLOCK, &[NoteEvent::on(0, 69, 0.8)], &[])?;
                let _ = plugin.param_normalized(id::GAIN);
                let _ = plugin.parameters();
                let _ = plugin.component_state()?;
                Ok(())
            })
            .join()
        })
        .map_err(|_| anyhow::anyhow!("panicked"))??;
        assert!(l.plugin.restart_requests().is_empty(), "delivered off the main thread");
        // The next main-thread controller call delivers it, once.
        assert_eq!(l.plugin.idle()?, flags);
        assert_eq!(l.plugin.idle()?, 0);
        assert_eq!(l.plugin.restart_requests(), vec![flags]);
        // A latency change restarts processing; the host's idle does that and goes on.
        instance.request_restart(RestartFlags_::kLatencyChanged);
        assert_eq!(l.plugin.idle()?, RestartFlags_::kLatencyChanged);
        l.plugin.process(MAX_BLOCK, &[], &[])?;
        for call in l.plugin.handler_calls() {
            assert!(call.on_main_thread, "{call:?}");
            assert!(matches!(call.kind, HandlerCallKind::RestartComponent(_)));
        }
        Ok(())
    }

    #[test]
    fn a_request_made_before_the_host_gave_a_handler_is_kept_for_it() -> Result<()> {
        let _bundle = TestBundle::synth()?;
        let dir = ModuleDir::new(Build::Normal)?;
        let modules = trio_bridge::Modules::load(&dir.paths(), None)?;
        let object = ComWrapper::new(TrioPlugin::new(&CONFIG, &modules).map_err(anyhow::Error::msg)?);
        object.instance().request_restart(RestartFlags_::kMidiCCAssignmentChanged);
        let component: ComPtr<IComponent> = object.to_com_ptr().context("no IComponent")?;
        let mut plugin = Plugin::from_component(component, "TrioSynth (linked)")?;
        plugin.idle()?;
        assert_eq!(plugin.restart_requests(), vec![RestartFlags_::kMidiCCAssignmentChanged]);
        Ok(())
    }

    #[test]
    fn a_control_reload_refreshes_the_parameter_tables_on_the_main_thread() -> Result<()> {
        let mut l = linked()?;
        l.plugin.start(Setup::new(SR, MAX_BLOCK))?;
        let before = l.plugin.parameters();
        let generation = l.object.instance().control_generation();
        l.modules.control.reload(&l.dir.control()).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert!(l.object.instance().control_generation() > generation, "the reload bumped no generation");
        l.plugin.idle()?;
        // The same library again: the same parameters, read from the new module.
        assert_eq!(l.plugin.parameters(), before);
        assert_eq!(l.plugin.midi_cc_assignment(0, 0, 74), Some(id::CUTOFF));
        let audio = a4(&mut l.plugin, 4800, MAX_BLOCK)?;
        assert!(rms(&audio) > 0.01);
        for call in l.plugin.handler_calls() {
            assert!(call.on_main_thread, "{call:?}");
        }
        Ok(())
    }
}

/// Golden state files: every released state version, loaded through the real bundle.
mod golden {
    use super::*;

    fn golden_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/state")
    }

    /// The parameter values each golden file sets, in plain units.
    fn expected(version: u32) -> Vec<(u32, f64)> {
        let _ = version; // Both versions hold the same settings.
        vec![
            (id::GAIN, -8.5),
            (id::WAVEFORM, 1.0),
            (id::ATTACK, 0.002),
            (id::DECAY, 0.18),
            (id::SUSTAIN, 0.1),
            (id::RELEASE, 0.08),
            (id::CUTOFF, 300.0),
            (id::RESONANCE, 0.8),
            (id::FILTER_ENV, 4.5),
            (id::VELOCITY_SENS, 0.8),
            (id::BYPASS, 1.0),
        ]
    }

    fn check_values(plugin: &Plugin, version: u32, via: &str) {
        for (pid, plain) in expected(version) {
            let normalized = plugin.param_normalized(pid);
            let want = plugin.to_normalized(pid, plain);
            assert!(
                (normalized - want).abs() < 1e-9,
                "v{version} via {via}: parameter {pid} is {normalized}, want {want}"
            );
            let back = plugin.to_plain(pid, normalized);
            assert!(
                (back - plain).abs() <= 1e-9 * plain.abs().max(1.0),
                "v{version} via {via}: {pid} plays {back}, want {plain}"
            );
        }
    }

    fn values(plugin: &Plugin) -> Vec<(u32, u64)> {
        plugin.parameters().iter().map(|q| (q.id, plugin.param_normalized(q.id).to_bits())).collect()
    }

    #[test]
    fn every_released_state_version_loads_through_component_and_controller() -> Result<()> {
        let f = fixture()?;
        for version in [0u32, 1] {
            let path = golden_dir().join(format!("v{version}.json"));
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let via_component = Plugin::new(Arc::clone(&f.module))?;
            via_component.set_component_state(&bytes)?;
            check_values(&via_component, version, "IComponent::setState");
            let via_controller = Plugin::new(Arc::clone(&f.module))?;
            via_controller.set_controller_state(&bytes)?;
            check_values(&via_controller, version, "IEditController::setState");
            // What it saves back is the current version and loads to the same values.
            let saved = via_component.component_state()?;
            let text = String::from_utf8_lossy(&saved);
            assert!(text.contains("\"version\":1"), "{text}");
            let again = Plugin::new(Arc::clone(&f.module))?;
            again.set_component_state(&saved)?;
            check_values(&again, version, "a re-saved state");
        }
        Ok(())
    }

    #[test]
    fn damaged_empty_and_future_states_are_refused_and_change_nothing() -> Result<()> {
        let f = fixture()?;
        let v1 = std::fs::read_to_string(golden_dir().join("v1.json"))?;
        let future = v1.replace("\"version\":1", "\"version\":2");
        assert_ne!(future, v1);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("garbage", b"\x00\x01\xffnot a state at all".to_vec()),
            ("truncated", v1.as_bytes()[..v1.len() / 2].to_vec()),
            ("future version", future.into_bytes()),
            ("another plugin's state", v1.replace("trio-synth-state", "other-synth").into_bytes()),
        ];
        // Move away from the defaults first, so "unchanged" is not "reset".
        f.plugin.set_param_normalized(id::CUTOFF, 0.123)?;
        f.plugin.set_param_normalized(id::BYPASS, 1.0)?;
        let before = values(&f.plugin);
        for (what, bytes) in cases {
            let stream = trio_host::MemoryStream::new(bytes.clone());
            let ptr = stream.as_com_ref::<IBStream>().context("stream")?.as_ptr();
            // SAFETY: a valid component and stream.
            assert_eq!(unsafe { f.plugin.component().setState(ptr) }, kResultFalse, "{what} via the component");
            assert_eq!(values(&f.plugin), before, "{what} changed something via the component");
            assert_eq!(refused(f.plugin.set_controller_state(&bytes)), Some(kResultFalse), "{what} via the controller");
            assert_eq!(values(&f.plugin), before, "{what} changed something via the controller");
        }
        // SAFETY: a valid component; a null stream.
        assert_eq!(unsafe { f.plugin.component().setState(std::ptr::null_mut()) }, kInvalidArgument);
        Ok(())
    }
}

/// `N` bytes at `offset` of this process's only shared-memory segment, read from its file
/// as another process would read them.
fn segment_bytes_seen_from_outside<const N: usize>(offset: usize) -> Result<[u8; N]> {
    use std::os::unix::fs::FileExt;
    let prefix = format!("{}{}-", trio::segment::SEGMENT_PREFIX, std::process::id());
    let segments: Vec<_> = std::fs::read_dir("/dev/shm")?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    ensure!(segments.len() == 1, "{} segments of this process, expected one", segments.len());
    let mut bytes = [0u8; N];
    std::fs::File::open(segments[0].path())?.read_exact_at(&mut bytes, offset as u64)?;
    Ok(bytes)
}

/// The block's `state_flags` as another process would read them.
fn host_state_seen_from_outside() -> Result<u32> {
    let offset = std::mem::offset_of!(trio::block::BlockHeader, state_flags);
    Ok(u32::from_ne_bytes(segment_bytes_seen_from_outside(offset)?))
}

/// The block's control tick count as another process would read it.
fn control_ticks_seen_from_outside() -> Result<u64> {
    let offset = std::mem::offset_of!(trio::block::SharedBlock, stats)
        + std::mem::offset_of!(trio::block::Statistics, control_ticks);
    Ok(u64::from_ne_bytes(segment_bytes_seen_from_outside(offset)?))
}

/// A component the host created and did not switch on costs nothing: its idle control
/// logic is not ticked. Switched on, it is.
#[test]
fn a_component_the_host_has_not_switched_on_is_not_ticked() -> Result<()> {
    let mut f = fixture()?;
    let idle = trio_bridge::IDLE_TICK_INTERVAL;
    std::thread::sleep(idle * 2);
    let before = control_ticks_seen_from_outside()?;
    std::thread::sleep(idle * 4);
    assert_eq!(control_ticks_seen_from_outside()?, before, "an instance nobody switched on was ticked");
    f.plugin.setup_processing(Setup::new(SR, MAX_BLOCK))?;
    f.plugin.set_active(true)?;
    let on = std::time::Instant::now();
    while control_ticks_seen_from_outside()? == before {
        ensure!(on.elapsed() < idle * 10, "a switched-on instance is not ticked");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

#[test]
fn the_block_shows_what_the_host_switched_on() -> Result<()> {
    use trio::block::state_flags::{ACTIVE, PROCESSING};
    let mut f = fixture()?;
    let p = &mut f.plugin;
    ensure!(host_state_seen_from_outside()? == 0, "a new instance is neither active nor processing");
    p.setup_processing(Setup::new(SR, MAX_BLOCK))?;
    p.set_active(true)?;
    assert_eq!(host_state_seen_from_outside()?, ACTIVE);
    p.set_processing(true)?;
    assert_eq!(host_state_seen_from_outside()?, ACTIVE | PROCESSING);
    p.set_processing(false)?;
    assert_eq!(host_state_seen_from_outside()?, ACTIVE);
    p.set_processing(true)?;
    // Deactivation ends processing too (hosts may skip `setProcessing(false)`).
    p.set_active(false)?;
    assert_eq!(host_state_seen_from_outside()?, 0);
    Ok(())
}
