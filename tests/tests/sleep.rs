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

/// Renders `total` samples in blocks of `SIZES`, delivering each event in its block at
/// its offset and setting `(at, id, value)` from outside the audio path (as a host's
/// controller does) before the block that holds `at`.
fn render(inst: &Instance, total: usize, events: &[Event], sets: &[(usize, u32, f64)]) -> Vec<f32> {
    let (mut left, mut right) = (vec![0.0f32; total], vec![0.0f32; total]);
    let (mut start, mut i) = (0, 0);
    while start < total {
        let n = SIZES[i % SIZES.len()].min(total - start);
        i += 1;
        for &(_, param, value) in sets.iter().filter(|(at, ..)| (start..start + n).contains(at)) {
            assert!(inst.set_param_normalized(param, value), "set {param}");
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

#[test]
fn a_sleeping_engine_is_skipped_and_nobody_can_hear_it() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let setup = ProcessSetup { sample_rate: SR, max_block_size: 512, offline: false };
    let sleeping = Instance::new(&modules, setup)?;
    let awake = Instance::new(&modules, setup)?;
    awake.set_sleep_allowed(false);
    sleeping.set_main_input(false);

    let events = [
        Event::note_on(1_000, 57, 0.8),
        Event::note_off(6_000, 57),
        // Host automation while asleep: the cutoff glides, then settles.
        Event::param(70_001, id::CUTOFF, 0.3),
        Event::note_on(90_017, 64, 0.6),
        Event::note_off(95_000, 64),
        Event::note_on(160_003, 52, 1.0),
        Event::note_off(166_000, 52),
    ];
    // A value set from outside the audio path while asleep (a host's controller, a preset).
    let sets = [(130_000, id::RESONANCE, 0.9)];
    let total = 200_000;
    let a = render(&sleeping, total, &events, &sets);
    let b = render(&awake, total, &events, &sets);

    for (at, what) in [(1_000, "first note"), (90_017, "note after automation"), (160_003, "note after a set value")] {
        assert!(a[..at].iter().rev().take(1).all(|&s| s == 0.0) && rms(&a[at..at + 2_000]) > 0.01, "{what}");
    }
    let first_diff = a.iter().zip(&b).position(|(x, y)| x.to_bits() != y.to_bits());
    assert_eq!(first_diff, None, "sleeping changed the audio (first differing sample)");

    let slept = sleeping.slept_blocks();
    assert!(slept > 500, "the idle stretches should be skipped, {slept} blocks were");
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
    inst.set_main_input(false);
    let slept = inst.slept_blocks();
    block_with_input(&inst);
    assert_eq!(inst.slept_blocks(), slept + 1, "an instrument's main bus is not scanned");
    Ok(())
}
