//! The arpeggiator through `trio::testing::Rig`: TrioSynth's control module and engine
//! together, in process, rendering offline as a host's bounce does (the control module
//! catches up to the end of each block before the engine renders it), and in real time
//! (ticked ahead of each block with the real-time lookahead). Note onsets are read from
//! the engine's voice reports: a voice of age `a` at the end of a block started at
//! `clock - a`, exact to the sample.
//!
//! The engine plays the first step of each phrase itself, at its exact sample; the
//! control module schedules the rest. So every step, the first included, falls on a
//! sample that depends neither on the block size nor on when the control module ticks.
//!
//! Run with `-- --nocapture` for the onsets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use control::SynthControl;
use rt_engine::SynthEngine;
use synth_common::{FirstStepState, arp_note_id, id};
use trio::testing::{HostEvent, HostTransport, Rig, RigError, Setup};

const SR: f64 = 48_000.0;
const BLOCK: usize = 256;
/// A 1/16 step (the default rate) at the default Arp Tempo of 120 BPM, in samples.
const STEP: u64 = 6_000;

/// What a render played.
#[derive(Debug, Default, PartialEq)]
struct Played {
    /// Every note onset `(sample, note, note id)`.
    onsets: BTreeSet<(u64, u8, i32)>,
    /// For each note id, the block `lo..hi` in which its voice was released.
    released: BTreeMap<i32, (u64, u64)>,
}

impl Played {
    fn notes(&self) -> Vec<(u64, u8)> {
        self.onsets.iter().map(|&(t, n, _)| (t, n)).collect()
    }
}

/// How to render.
#[derive(Clone, Copy)]
struct Render {
    offline: bool,
    block: usize,
    transport: HostTransport,
}

impl Render {
    fn offline(block: usize) -> Self {
        Self { offline: true, block, transport: HostTransport::default() }
    }

    fn realtime(block: usize) -> Self {
        Self { offline: false, ..Self::offline(block) }
    }
}

/// Plays `keys` (absolute sample times) with the arpeggiator on and the arp parameters
/// `params` (plain values), rendering up to `end` in blocks of `how.block` that also end at
/// each of `splits`; returns what the engine played. Checks that nothing was late, dropped
/// or allocated.
fn play(
    how: Render,
    params: &[(u32, f64)],
    keys: &[(u64, HostEvent)],
    end: u64,
    splits: &[u64],
) -> Result<(Played, Rig<SynthEngine, SynthControl>), RigError> {
    let setup =
        Setup { sample_rate: SR, max_block: how.block, main_channels: 2, sidechain_channels: 0, offline: how.offline };
    let mut rig = Rig::<SynthEngine, SynthControl>::new(setup)?;
    rig.set_transport(how.transport);
    rig.set_param(id::ARP_ON, 1.0)?;
    for &(param, plain) in params {
        rig.set_param(param, plain)?;
    }
    let mut played = Played::default();
    let mut held = BTreeSet::new();
    while rig.clock() < end {
        let start = rig.clock();
        let mut n = (how.block as u64).min(end - start);
        if let Some(&s) = splits.iter().filter(|&&s| s > start).min() {
            n = n.min(s - start);
        }
        let events: Vec<(usize, HostEvent)> = keys
            .iter()
            .filter(|(t, _)| (start..start + n).contains(t))
            .map(|&(t, e)| ((t - start) as usize, e))
            .collect();
        rig.render(n as usize, &events)?;
        let mut now_held = BTreeSet::new();
        for (_, voice) in rig.voices() {
            played.onsets.insert((rig.clock() - voice.age, voice.note, voice.note_id));
            if !voice.releasing {
                now_held.insert(voice.note_id);
            }
        }
        for &gone in held.difference(&now_held) {
            played.released.entry(gone).or_insert((start, rig.clock()));
        }
        held = now_held;
    }
    let stats = &rig.block().stats;
    let mode = if how.offline { "offline" } else { "real time" };
    assert_eq!(stats.late_events.load(Ordering::Relaxed), 0, "{mode}, block {}: late events", how.block);
    assert_eq!(stats.events_dropped.load(Ordering::Relaxed), 0, "{mode}, block {}: dropped events", how.block);
    assert_eq!(rig.alloc_violations(), Some(0), "{mode}, block {}", how.block);
    Ok((played, rig))
}

fn chord(t: u64, notes: &[u8]) -> Vec<(u64, HostEvent)> {
    notes.iter().map(|&note| (t, HostEvent::note_on(note, 0.8))).collect()
}

#[test]
fn the_arpeggiator_plays_its_steps_on_their_samples_offline_and_in_real_time() -> Result<(), RigError> {
    // Three keys at sample 1000, in the block 768..1024.
    let t = 1_000;
    let keys = chord(t, &[64, 60, 67]);
    let end = t + 8 * STEP + 100;
    let offline = play(Render::offline(BLOCK), &[], &keys, end, &[])?.0;

    // Every step from the key's own sample on, the first included (the engine plays it),
    // every 1/16, in the "up" order over the chord.
    let expected: Vec<(u64, u8)> = (0..=8).map(|k| (t + k * STEP, [60, 64, 67][k as usize % 3])).collect();
    assert_eq!(offline.notes(), expected);
    // The note ids of phrase 1, step by step: the engine's step 0 is marked as the
    // control module marks its steps.
    let ids: Vec<i32> = offline.onsets.iter().map(|&(_, _, id)| id).collect();
    assert_eq!(ids, (0..=8).map(|k| arp_note_id(1, k)).collect::<Vec<_>>());

    // The same notes on the same samples in real time (DESIGN §6).
    let realtime = play(Render::realtime(BLOCK), &[], &keys, end, &[])?.0;
    assert_eq!(realtime.onsets, offline.onsets);
    println!("arp onsets (sample, note), offline and in real time alike: {:?}", offline.notes());
    Ok(())
}

#[test]
fn the_first_step_does_not_depend_on_the_block_size() -> Result<(), RigError> {
    // Keys at odd samples; 1/8 steps at 150 BPM (9600 samples) from a host tempo, stopped,
    // and then free-running at the Arp Tempo.
    let t = 4_801;
    let keys = chord(t, &[67, 60, 64]);
    let end = t + 4 * 9_600 + 10;
    let expected: Vec<(u64, u8)> = (0..=4).map(|k| (t + k * 9_600, [60, 64, 67][k as usize % 3])).collect();
    let params = [(id::ARP_RATE, 1.0)];
    for block in [1, 7, 64, 100, 256, 1024, 4096] {
        for offline in [true, false] {
            let how = Render { offline, block, transport: HostTransport::tempo(150.0) };
            let played = play(how, &params, &keys, end, &[])?.0;
            assert_eq!(played.notes(), expected, "block {block}, offline {offline}");
            let how = Render { offline, block, transport: HostTransport::default() };
            let played = play(how, &[(id::ARP_RATE, 1.0), (id::ARP_TEMPO, 150.0)], &keys, end, &[])?.0;
            assert_eq!(played.notes(), expected, "no transport: block {block}, offline {offline}");
        }
    }
    Ok(())
}

#[test]
fn on_the_host_grid_the_first_step_waits_for_its_grid_point_in_a_later_block() -> Result<(), RigError> {
    // 100 BPM, playing from the song start: a beat is 28_800 samples, a 1/8 step 14_400.
    // The key at 20_000 is after the grid point 14_400: step 0 is the next one, 28_800,
    // a hundred blocks of 64 later. A key pressed in between joins the phrase before
    // its first step sounds.
    let mut keys = chord(20_000, &[64]);
    keys.push((25_000, HostEvent::note_on(60, 0.5)));
    let end = 28_800 + 3 * 14_400 + 10;
    let mut expected: Vec<(u64, u8)> = (0..=3).map(|k| (28_800 + k * 14_400, [60, 64][k as usize % 2])).collect();
    for block in [64, 333, 1024] {
        for offline in [true, false] {
            let how = Render { offline, block, transport: HostTransport::playing(100.0) };
            let played = play(how, &[(id::ARP_RATE, 1.0)], &keys, end, &[])?.0;
            assert_eq!(played.notes(), expected, "block {block}, offline {offline}");
        }
    }
    // A key exactly on a grid point plays there; a chord's notes all count.
    let keys = chord(14_400, &[72, 65]);
    expected = vec![(14_400, 65), (28_800, 72), (43_200, 65)];
    for block in [64, 1000] {
        let how = Render { offline: true, block, transport: HostTransport::playing(100.0) };
        let played = play(how, &[(id::ARP_RATE, 1.0)], &keys, 43_210, &[])?.0;
        assert_eq!(played.notes(), expected, "block {block}");
    }
    Ok(())
}

#[test]
fn keys_released_before_the_grid_point_play_nothing() -> Result<(), RigError> {
    let mut keys = chord(20_000, &[64, 67]);
    keys.push((28_799, HostEvent::note_off(64)));
    keys.push((28_799, HostEvent::note_off(67)));
    let how = Render { offline: true, block: 128, transport: HostTransport::playing(100.0) };
    let (played, rig) = play(how, &[(id::ARP_RATE, 1.0)], &keys, 60_000, &[])?;
    assert_eq!(played.notes(), []);
    let held = rig.area().held.read().expect("held keys");
    assert_eq!((held.phrase, held.first_step.phrase, held.first_step.state), (1, 1, FirstStepState::Dropped));
    Ok(())
}

#[test]
fn the_first_step_follows_each_pattern_and_the_octaves() -> Result<(), RigError> {
    // Keys 64, 60, 67 at one sample; 3 octaves. Step 0 is the first entry of the pattern's
    // cycle, then the cycle goes on from its second entry.
    let cases: [(f64, &[u8]); 4] =
        [(0.0, &[60, 64, 67, 72]), (1.0, &[91, 88, 84, 79]), (2.0, &[60, 64, 67, 72]), (3.0, &[64, 60, 67, 76])];
    let t = 3_333;
    for (pattern, first) in cases {
        for block in [32, 512] {
            let params = [(id::ARP_PATTERN, pattern), (id::ARP_OCTAVES, 3.0)];
            let played = play(Render::offline(block), &params, &chord(t, &[64, 60, 67]), t + 3 * STEP + 1, &[])?.0;
            let expected: Vec<(u64, u8)> = first.iter().enumerate().map(|(k, &n)| (t + k as u64 * STEP, n)).collect();
            assert_eq!(played.notes(), expected, "pattern {pattern}, block {block}");
        }
    }
    // Keys at different samples: step 0 plays over the keys held on its sample.
    let keys = [(t, HostEvent::note_on(64, 0.8)), (t + 1, HostEvent::note_on(60, 0.8))];
    let played = play(Render::offline(BLOCK), &[], &keys, t + 2 * STEP + 1, &[])?.0;
    assert_eq!(played.notes(), [(t, 64), (t + STEP, 64), (t + 2 * STEP, 60)]);
    Ok(())
}

#[test]
fn the_engine_ends_the_first_note_at_its_gate() -> Result<(), RigError> {
    // 1/32 at 160 BPM is 2250 samples; a gate of 5 % ends each note 112.5 -> 113 samples
    // (2.3 ms) after its step: the engine ends the first one itself, exactly, whenever
    // the control module ticks.
    let t = 10_007;
    let params = [(id::ARP_RATE, 3.0), (id::ARP_GATE, 0.05), (id::ARP_TEMPO, 160.0)];
    let off = t + 113;
    let splits = [off, off + 1, off + 2250, off + 2251];
    for offline in [true, false] {
        for block in [16, 512, 4096] {
            let how = Render { offline, block, transport: HostTransport::default() };
            let (played, rig) = play(how, &params, &chord(t, &[62]), t + 2400, &splits)?;
            assert_eq!(played.notes(), [(t, 62), (t + 2250, 62)], "offline {offline}, block {block}");
            assert_eq!(played.released.get(&arp_note_id(1, 0)), Some(&(off, off + 1)), "block {block}");
            assert_eq!(played.released.get(&arp_note_id(1, 1)), Some(&(off + 2250, off + 2251)), "block {block}");
            let held = rig.area().held.read().expect("held keys");
            let f = held.first_step;
            assert_eq!((f.phrase, f.state, f.pos, f.note, f.off_time), (1, FirstStepState::Played, t as f64, 62, off));
        }
    }
    Ok(())
}

#[test]
fn every_phrase_starts_on_its_own_first_key() -> Result<(), RigError> {
    let t = 500;
    let mut keys = chord(t, &[60, 63]);
    // Released between steps 1 and 2, pressed again 1234 samples later, in mid-block.
    let up = t + STEP + 100;
    keys.push((up, HostEvent::note_off(60)));
    keys.push((up, HostEvent::note_off(63)));
    let again = up + 1234;
    keys.extend(chord(again, &[70]));
    let end = again + STEP + 1;
    for block in [64, 1024] {
        for offline in [true, false] {
            let how = Render { offline, block, transport: HostTransport::default() };
            let played = play(how, &[], &keys, end, &[])?.0;
            let expected = [(t, 60, arp_note_id(1, 0)), (t + STEP, 63, arp_note_id(1, 1))];
            let expected2 = [(again, 70, arp_note_id(2, 0)), (again + STEP, 70, arp_note_id(2, 1))];
            let all: BTreeSet<(u64, u8, i32)> = expected.into_iter().chain(expected2).collect();
            assert_eq!(played.onsets, all, "block {block}, offline {offline}");
        }
    }
    Ok(())
}
