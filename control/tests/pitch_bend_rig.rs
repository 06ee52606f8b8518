//! TrioSynth's pitch wheel through `trio::testing::Rig`: the control module lists the
//! wheel as a MIDI controller, hosts' pitch bends reach the engine as events at their
//! sample, and the engine bends every voice by up to ±2 semitones
//! ([`rt_engine::PITCH_BEND_RANGE_SEMITONES`]) from that sample on, without allocating.
//! With the wheel at rest the output is bit for bit what it is without a wheel.
//!
//! Run with `-- --nocapture` for the measured frequencies.

use control::SynthControl;
use rt_engine::SynthEngine;
use synth_common::id;
use trio::control::{Control, MidiController};
use trio::testing::{HostEvent, Rig, RigError, Setup};

const SR: f64 = 48_000.0;
/// A4 bent 2 semitones up and down: B4 and G4.
const B4: f64 = 493.883_301;
const G4: f64 = 391.995_436;

/// A rig playing sine waves (the fundamental is the whole signal), in blocks of at most
/// `max_block` samples.
fn sine_rig(max_block: usize) -> Result<Rig<SynthEngine, SynthControl>, RigError> {
    let setup = Setup { sample_rate: SR, max_block, main_channels: 2, sidechain_channels: 0, offline: true };
    let mut rig = Rig::<SynthEngine, SynthControl>::new(setup)?;
    rig.set_param(id::WAVEFORM, 2.0)?;
    Ok(rig)
}

/// Renders `frames` samples with `events`; returns the left channel, checking that the
/// right one is identical and that nothing allocated.
fn render(rig: &mut Rig<SynthEngine, SynthControl>, frames: usize, events: &[(usize, HostEvent)]) -> Vec<f32> {
    let out = rig.render(frames, events).unwrap();
    assert!(out[0].iter().zip(&out[1]).all(|(l, r)| l.to_bits() == r.to_bits()));
    assert_eq!(rig.alloc_violations(), Some(0), "process allocated");
    out[0].clone()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Power of `x` at `freq` (Hann window, Goertzel in f64).
fn power_at(x: &[f32], freq: f64) -> f64 {
    let n = x.len() as f64;
    let w = std::f64::consts::TAU * freq / SR;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for (i, &v) in x.iter().enumerate() {
        let h = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
        let s0 = f64::from(v) * h + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Frequency of the strongest component between 50 Hz and 2 kHz: a 1 Hz scan refined to
/// 0.01 Hz around the peak.
fn peak_freq(x: &[f32]) -> f64 {
    let scan = |from: f64, to: f64, step: f64| {
        let steps = ((to - from) / step).round() as usize;
        (0..=steps).map(|k| from + k as f64 * step).fold((from, f64::MIN), |best, f| {
            let p = power_at(x, f);
            if p > best.1 { (f, p) } else { best }
        })
    };
    let coarse = scan(50.0, 2000.0, 1.0).0;
    scan(coarse - 1.5, coarse + 1.5, 0.01).0
}

/// Frequency of `x` from its rising zero crossings (linearly interpolated), over the
/// whole periods between the first and the last.
fn crossing_freq(x: &[f32]) -> f64 {
    let c: Vec<f64> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + f64::from(-w[0]) / f64::from(w[1] - w[0]))
        .collect();
    assert!(c.len() >= 3, "{} crossings", c.len());
    (c.len() - 1) as f64 / (c[c.len() - 1] - c[0]) * SR
}

#[test]
fn the_control_module_asks_for_the_pitch_wheel() {
    assert_eq!(SynthControl::midi_controllers(), vec![MidiController::PitchBend]);
    trio::control::check::<SynthControl>().unwrap();
}

#[test]
fn full_wheel_bends_a4_two_semitones_either_way() -> Result<(), RigError> {
    for (wheel, want) in [(1.0f32, B4), (-1.0, G4), (0.0, 440.0)] {
        // A held note, bent at sample 10 000 (inside a 256-sample block).
        let mut rig = sine_rig(256)?;
        let x = render(&mut rig, 30_000, &[(0, HostEvent::note_on(69, 1.0)), (10_000, HostEvent::pitch_bend(wheel))]);
        let held = peak_freq(&x[13_000..29_384]);
        let held_zc = crossing_freq(&x[13_000..29_384]);
        // A note started while the wheel is bent starts bent.
        let x = render(&mut rig, 20_000, &[(0, HostEvent::note_off(69)), (100, HostEvent::note_on(69, 1.0))]);
        let new = peak_freq(&x[3_000..19_384]);
        println!(
            "wheel {wheel:+}: held A4 {held:.3} Hz (zero crossings {held_zc:.3} Hz), new A4 {new:.3} Hz, want {want:.3} Hz"
        );
        for f in [held, held_zc, new] {
            assert!((f - want).abs() <= 0.5, "wheel {wheel}: {f} Hz, want {want}");
        }
    }
    Ok(())
}

#[test]
fn a_bend_applies_from_its_sample_at_any_block_size() -> Result<(), RigError> {
    // Inside the block 9984..10240 of a 256-sample render, and off the synth's 16-sample
    // control grid.
    for at in [10_001usize, 10_007] {
        let events = [(0, HostEvent::note_on(69, 1.0)), (at, HostEvent::pitch_bend(1.0))];
        let bent = render(&mut sine_rig(256)?, 20_000, &events);
        let unbent = render(&mut sine_rig(256)?, 20_000, &events[..1]);
        // Before the event, bit for bit the unbent render. The sample at the event's offset
        // is the oscillator's current phase, so it is the unbent one up to rounding (a voice
        // alone computes its samples from where it stands at the event, not from the start
        // of the control period); the bent increment moves the phase on from the next one.
        let first_difference = bent.iter().zip(&unbent).position(|(a, b)| a.to_bits() != b.to_bits());
        assert!(first_difference >= Some(at), "at {at}: first difference {first_difference:?}");
        let ulps = |k: usize| (i64::from(bent[k].to_bits() as i32) - i64::from(unbent[k].to_bits() as i32)).abs();
        assert!(ulps(at) <= 4, "at {at}: the event's own sample differs by {} ulps", ulps(at));
        assert!(ulps(at + 1) > 1_000, "at {at}: the next sample differs by only {} ulps", ulps(at + 1));
        // 20 ms right before and right after the event.
        let before = crossing_freq(&bent[at - 960..=at]);
        let after = crossing_freq(&bent[at..at + 960]);
        println!("bend at sample {at}: {before:.3} Hz in the 20 ms before, {after:.3} Hz in the 20 ms after");
        assert!((before - 440.0).abs() <= 0.5, "{before}");
        assert!((after - B4).abs() <= 0.5, "{after}");
        // Where the host's blocks start does not matter.
        for max_block in [1, 64, 100, 4096] {
            let other = render(&mut sine_rig(max_block)?, 20_000, &events);
            assert!(bits(&other) == bits(&bent), "at {at}: max_block {max_block}");
        }
    }
    Ok(())
}

#[test]
fn the_wheel_at_rest_changes_nothing() -> Result<(), RigError> {
    // Notes, a chord, a cutoff sweep and a release, with the saw; then again with the
    // wheel "moved" to 0 all along, on every channel and at block edges.
    let mut events = vec![
        (10, HostEvent::note_on(60, 0.8)),
        (500, HostEvent::note_on(64, 0.6)),
        (3_000, HostEvent::note_on(67, 1.0)),
        (9_000, HostEvent::param(id::CUTOFF, 500.0)),
        (20_000, HostEvent::note_off(60)),
        (30_000, HostEvent::AllNotesOff),
    ];
    let plain = {
        let mut rig = sine_rig(256)?;
        rig.set_param(id::WAVEFORM, 0.0)?;
        render(&mut rig, 40_000, &events)
    };
    events.extend((0..40).map(|k| (k * 999, HostEvent::pitch_bend(0.0).channel((k % 16) as u8))));
    events.extend([(256, HostEvent::pitch_bend(0.0)), (40_000, HostEvent::pitch_bend(0.0))]);
    let mut rig = sine_rig(256)?;
    rig.set_param(id::WAVEFORM, 0.0)?;
    let at_rest = render(&mut rig, 40_000, &events);
    assert!(bits(&at_rest) == bits(&plain));
    Ok(())
}

#[test]
fn reset_returns_the_wheel_to_rest() -> Result<(), RigError> {
    let mut rig = sine_rig(256)?;
    render(&mut rig, 1_000, &[(0, HostEvent::note_on(69, 1.0)), (10, HostEvent::pitch_bend(-1.0))]);
    rig.reset()?;
    let x = render(&mut rig, 20_000, &[(0, HostEvent::note_on(69, 1.0))]);
    let f = peak_freq(&x[3_000..19_384]);
    assert!((f - 440.0).abs() <= 0.5, "{f}");
    Ok(())
}

#[test]
fn the_wheel_bends_arpeggiated_notes_too() -> Result<(), RigError> {
    let mut rig = sine_rig(256)?;
    rig.set_param(id::ARP_ON, 1.0)?;
    // One key: the arpeggiator repeats A4 every 1/16 (6000 samples at 120 BPM).
    let x = render(&mut rig, 30_000, &[(0, HostEvent::pitch_bend(1.0)), (0, HostEvent::note_on(69, 1.0))]);
    let f = crossing_freq(&x[7_000..9_000]);
    assert!((f - B4).abs() <= 0.5, "{f}");
    Ok(())
}
