//! A sleeping engine (`Block::set_asleep`) is not called for blocks that bring it
//! nothing, and nobody can hear the difference: the bridge's renders with and without
//! sleep are bit-identical across notes, silences, host automation, parameter values set
//! from outside the audio path and odd block sizes.

use std::sync::atomic::Ordering;

use anyhow::Result;
use integration::{Build, ModuleDir, rms};
use synth_common::id;
use trio::abi::{Event, status};
use trio_bridge::{Instance, Modules, ProcessSetup};

const SR: f64 = 48_000.0;
/// Block sizes cycled through, as a host with odd buffers would send them.
const SIZES: [usize; 6] = [64, 37, 512, 1, 200, 333];

/// What the host does between two blocks, besides processing.
#[derive(Clone, Copy)]
enum Host {
    /// Sets a value from outside the audio path (a controller, a preset): id, normalized.
    Set(u32, f64),
    /// `reset` (VST3 `setActive` off and on).
    Reset,
    /// `setupProcessing` again, with the same setup.
    Setup,
}

/// Renders `total` samples in blocks of `SIZES`, delivering each event in its block at
/// its offset and doing each `(at, host)` before the block that holds `at`.
fn render(inst: &Instance, total: usize, events: &[Event], host: &[(usize, Host)]) -> Vec<f32> {
    let (mut left, mut right) = (vec![0.0f32; total], vec![0.0f32; total]);
    let (mut start, mut i) = (0, 0);
    while start < total {
        let n = SIZES[i % SIZES.len()].min(total - start);
        i += 1;
        for &(_, action) in host.iter().filter(|(at, _)| (start..start + n).contains(at)) {
            match action {
                Host::Set(param, value) => assert!(inst.set_param_normalized(param, value), "set {param}"),
                Host::Reset => assert_eq!(inst.reset(), status::OK),
                Host::Setup => inst.setup_processing(inst.setup()).expect("the same setup again"),
            }
        }
        let in_block: Vec<Event> = events
            .iter()
            .filter(|e| (start..start + n).contains(&(e.time as usize)))
            .map(|e| Event { time: e.time - start as u64, ..*e })
            .collect();
        let code = inst.process(&mut [&mut left[start..start + n], &mut right[start..start + n]], &in_block);
        assert_eq!(code, status::OK, "process failed: {}", status::describe(code));
        start += n;
    }
    assert_eq!(left, right, "the synth is mono in both channels");
    left
}

/// Renders the same script on an instance that sleeps and one that may not, and checks
/// that they are bit-identical and that the sleeping one skipped more than `min_slept`
/// blocks; returns the render.
fn both_ways(
    offline: bool,
    total: usize,
    events: &[Event],
    host: &[(usize, Host)],
    min_slept: u64,
) -> Result<Vec<f32>> {
    let dir = ModuleDir::new(Build::Normal)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let setup = ProcessSetup { sample_rate: SR, max_block_size: 512, offline };
    let sleeping = Instance::new(&modules, setup)?;
    let awake = Instance::new(&modules, setup)?;
    awake.set_sleep_allowed(false);
    sleeping.set_main_input(false);
    let a = render(&sleeping, total, events, host);
    let b = render(&awake, total, events, host);

    let first_diff = a.iter().zip(&b).position(|(x, y)| x.to_bits() != y.to_bits());
    assert_eq!(first_diff, None, "sleeping changed the audio (first differing sample), offline: {offline}");
    let slept = sleeping.slept_blocks();
    assert!(slept > min_slept, "the idle stretches should be skipped, {slept} blocks were");
    assert_eq!(awake.slept_blocks(), 0, "with sleep off every block reaches the engine");
    for inst in [&sleeping, &awake] {
        let block = inst.block();
        assert_eq!(block.header.sample_clock.load(Ordering::Acquire), total as u64, "the clock counts slept samples");
        assert_eq!(block.stats.samples_processed.load(Ordering::Relaxed), total as u64);
    }
    assert_eq!(
        sleeping.block().stats.blocks_processed.load(Ordering::Relaxed),
        awake.block().stats.blocks_processed.load(Ordering::Relaxed),
        "slept blocks count as processed"
    );
    Ok(a)
}

#[test]
fn a_sleeping_engine_is_skipped_and_nobody_can_hear_it() -> Result<()> {
    let events = [
        Event::note_on(1_000, 57, 0.8),
        Event::note_off(6_000, 57),
        // Host automation while asleep: the cutoff glides, then settles.
        Event::param(70_001, id::CUTOFF, 0.3),
        Event::note_on(90_017, 64, 0.6),
        Event::note_off(95_000, 64),
        Event::note_on(160_003, 52, 1.0),
        Event::note_off(166_000, 52),
        Event::note_on(220_011, 45, 0.7),
        Event::note_off(226_000, 45),
    ];
    let host = [
        // A value set from outside the audio path while asleep (a controller, a preset).
        (130_000, Host::Set(id::RESONANCE, 0.9)),
        // The host deactivates and activates, and sets up again, while it sleeps.
        (190_000, Host::Reset),
        (200_000, Host::Setup),
    ];
    for offline in [false, true] {
        let a = both_ways(offline, 260_000, &events, &host, 500)?;
        for at in [1_000, 90_017, 160_003, 220_011] {
            assert!(a[at - 500..at].iter().all(|&s| s == 0.0), "silence before the note at {at}");
            assert!(rms(&a[at..at + 2_000]) > 0.01, "the note at {at} sounds");
        }
    }
    Ok(())
}

#[test]
fn an_arpeggio_with_silences_between_its_notes_is_the_same_asleep() -> Result<()> {
    // Short notes and no release: the synth falls silent between the steps the control
    // module sends, sleeps, and is woken by each one through the control ring. Offline,
    // where the control module schedules each block before it renders (deterministic).
    let events = [
        Event::param(0, id::RELEASE, 0.0),
        Event::param(0, id::ARP_GATE, 0.0),
        Event::param(0, id::ARP_ON, 1.0),
        Event::note_on(1_000, 60, 0.8),
        Event::note_on(1_000, 67, 0.8),
        Event::note_off(150_000, 60),
        Event::note_off(150_000, 67),
    ];
    let a = both_ways(true, 200_000, &events, &[], 100)?;
    let onsets = a.windows(2).filter(|w| w[0] == 0.0 && w[1] != 0.0).count();
    assert!(onsets > 10, "the arp plays separate notes ({onsets} onsets)");
    Ok(())
}

#[test]
fn input_values_and_events_wake_a_sleeping_engine() -> Result<()> {
    // The synth sleeps. Told that its main bus carries input (an effect's, the default),
    // the bridge wakes it for a sample there whose bits are not all zero; told that the
    // bus is an instrument's, it does not look. The sample is -0.0: a sound to the scan,
    // and silence to the synth, which leaves it in place.
    let dir = ModuleDir::new(Build::Normal)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let inst = Instance::new(&modules, ProcessSetup { sample_rate: SR, max_block_size: 64, offline: false })?;
    let (mut left, mut right) = (vec![0.0f32; 64], vec![0.0f32; 64]);
    for _ in 0..200 {
        assert_eq!(inst.process(&mut [&mut left, &mut right], &[]), status::OK);
    }
    let slept = inst.slept_blocks();
    assert!(slept > 150, "an idle synth sleeps ({slept} of 200 blocks)");
    let block_with_input = |inst: &Instance| {
        let (mut left, mut right) = (vec![0.0f32; 64], vec![0.0f32; 64]);
        left[10] = -0.0;
        let code = inst.process_in_place(&mut [&mut left, &mut right], &[], &[], &Default::default());
        assert_eq!(code, status::OK);
    };
    block_with_input(&inst);
    assert_eq!(inst.slept_blocks(), slept, "input on the main bus wakes the engine");
    // A value set from outside the audio path wakes it too, and so does an event.
    for _ in 0..20 {
        assert_eq!(inst.process(&mut [&mut left, &mut right], &[]), status::OK);
    }
    let slept = inst.slept_blocks();
    assert!(inst.set_param_normalized(id::RESONANCE, 0.7));
    assert_eq!(inst.process(&mut [&mut left, &mut right], &[]), status::OK);
    assert_eq!(inst.slept_blocks(), slept, "a value set since the engine fell asleep wakes it");
    for _ in 0..20 {
        assert_eq!(inst.process(&mut [&mut left, &mut right], &[]), status::OK);
    }
    let slept = inst.slept_blocks();
    assert_eq!(inst.process(&mut [&mut left, &mut right], &[Event::param(3, id::RESONANCE, 0.2)]), status::OK);
    assert_eq!(inst.slept_blocks(), slept, "an event wakes it");
    for _ in 0..20 {
        assert_eq!(inst.process(&mut [&mut left, &mut right], &[]), status::OK);
    }
    assert!(inst.slept_blocks() > slept, "and it falls asleep again");
    // A new tempo wakes it (a synced effect's tail follows it); the position moving on
    // with the same tempo does not.
    let at = |tempo_bpm: f64, ppq_position: f64| trio::abi::TransportInfo {
        tempo_bpm,
        ppq_position,
        flags: trio::abi::transport_flags::TEMPO | trio::abi::transport_flags::POSITION,
        ..Default::default()
    };
    let with_transport = |t: &trio::abi::TransportInfo| {
        let (mut l, mut r) = (vec![0.0f32; 64], vec![0.0f32; 64]);
        assert_eq!(inst.process_in_place(&mut [&mut l, &mut r], &[], &[], t), status::OK);
    };
    let slept = inst.slept_blocks();
    with_transport(&at(120.0, 0.0));
    assert_eq!(inst.slept_blocks(), slept, "a tempo wakes it");
    with_transport(&at(120.0, 0.1));
    with_transport(&at(120.0, 0.2));
    assert_eq!(inst.slept_blocks(), slept + 2, "the position moving on does not");
    with_transport(&at(90.0, 0.3));
    assert_eq!(inst.slept_blocks(), slept + 2, "another tempo wakes it");
    // Back to no transport (what the blocks below carry): awake for one block, then asleep.
    with_transport(&Default::default());
    with_transport(&Default::default());
    inst.set_main_input(false);
    let slept = inst.slept_blocks();
    block_with_input(&inst);
    assert_eq!(inst.slept_blocks(), slept + 1, "an instrument's main bus is not scanned");
    Ok(())
}
