//! The arpeggiator through `trio::testing::Rig`: TrioSynth's control module and engine
//! together, in process, rendering offline as a host's bounce does (the control module
//! catches up to the end of each block before the engine renders it), and in real time
//! (ticked ahead of each block with the real-time lookahead). Note onsets are read from
//! the engine's voice reports: a voice of age `a` at the end of a block started at
//! `clock - a`, exact to the sample.
//!
//! Run with `-- --nocapture` for the onsets.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use control::SynthControl;
use rt_engine::SynthEngine;
use synth_common::id;
use trio::testing::{HostEvent, Rig, RigError, Setup};

const SR: f64 = 48_000.0;
const BLOCK: usize = 256;
/// A 1/16 step (the default rate) at the default Arp Tempo of 120 BPM, in samples.
const STEP: u64 = 6_000;

/// Plays `keys` (absolute sample times) with the arpeggiator on and renders up to `end`,
/// one block at a time; returns every note onset `(sample, note)` the engine reported.
fn arpeggiate(offline: bool, keys: &[(u64, HostEvent)], end: u64) -> Result<BTreeSet<(u64, u8)>, RigError> {
    let setup = Setup { sample_rate: SR, max_block: BLOCK, main_channels: 2, sidechain_channels: 0, offline };
    let mut rig = Rig::<SynthEngine, SynthControl>::new(setup)?;
    rig.set_param(id::ARP_ON, 1.0)?;
    let mut onsets = BTreeSet::new();
    while rig.clock() < end {
        let start = rig.clock();
        let n = (BLOCK as u64).min(end - start);
        let events: Vec<(usize, HostEvent)> = keys
            .iter()
            .filter(|(t, _)| (start..start + n).contains(t))
            .map(|&(t, e)| ((t - start) as usize, e))
            .collect();
        rig.render(n as usize, &events)?;
        for (_, voice) in rig.voices() {
            onsets.insert((rig.clock() - voice.age, voice.note));
        }
    }
    let stats = &rig.block().stats;
    // Step 0 is due on the key's own sample, which the engine has rendered by the time the
    // control module hears of the key: it is the one late event.
    assert_eq!(stats.late_events.load(Ordering::Relaxed), 1, "offline: {offline}");
    assert_eq!(stats.events_dropped.load(Ordering::Relaxed), 0, "offline: {offline}");
    assert_eq!(rig.alloc_violations(), Some(0), "offline: {offline}");
    Ok(onsets)
}

#[test]
fn the_arpeggiator_plays_its_steps_on_their_samples_offline_and_in_real_time() -> Result<(), RigError> {
    // Three keys at sample 1000, in the block 768..1024.
    let t = 1_000;
    let keys = [64, 60, 67].map(|note| (t, HostEvent::note_on(note, 0.8)));
    let end = t + 8 * STEP + 100;
    let offline = arpeggiate(true, &keys, end)?;

    // Step 0 at the start of the block after the key's (the control module learns of the
    // key when that block has been rendered), then every 1/16 from the key's own sample,
    // in the "up" order.
    let next_block = t.div_ceil(BLOCK as u64) * BLOCK as u64;
    let mut expected = vec![(next_block, 60u8)];
    expected.extend((1..=8).map(|k| (t + k * STEP, [60, 64, 67][k as usize % 3])));
    assert_eq!(offline.iter().copied().collect::<Vec<_>>(), expected);

    // The same notes on the same samples in real time (DESIGN §6).
    let realtime = arpeggiate(false, &keys, end)?;
    assert_eq!(realtime, offline);
    println!("arp onsets (sample, note), offline and in real time alike: {offline:?}");
    Ok(())
}
