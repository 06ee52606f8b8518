//! The arpeggiator, end to end on the real built libraries: the engine records the host's
//! keys in the shared block, the control module's `control_tick` schedules timed notes into
//! the `to_engine` ring, and the engine plays them at their samples.
//!
//! Through the bridge, instances render offline, as a host's bounce does: before each
//! block the bridge lets the control module schedule up to the block's end, so the music
//! is the same at any speed. Note onsets are read from the engine's voice states (`age`
//! gives each note's exact start sample), and note-offs are pinned to the sample by
//! ending blocks just before and just after them.
//!
//! The handover tests load the engine and control libraries directly (as the bridge does)
//! on one block and tick by hand, so they decide which control instance ticks: a second instance adopts the
//! block (`CREATE_ADOPT` plus the first one's state) and must continue bit for bit. The
//! `reload-variant` test builds that variant of the control module itself, with
//! `cargo build -p control --features reload-variant --target-dir <target>/variant`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail, ensure};
use integration::{Build, ModuleDir, rms, scratch_dir, target_dir};
use synth_common::{SynthArea, id};
use trio::abi::{self, AreaLayout, Event, ProcessData, TickResult, TransportInfo, control, status, transport_flags};
use trio::block::{HeapBlock, SharedBlock};
use trio::params::ParamInfo;
use trio_bridge::{Instance, Modules, ProcessSetup};

const SR: f64 = 48_000.0;
const BLOCK: u64 = 256;
/// A 1/16 step at the default 120 BPM, in samples.
const STEP: u64 = 6000;

/// Normalized value of a list or stepped parameter's plain value.
fn stepped(param: u32, plain: f64) -> f64 {
    let (min, max) = match param {
        id::ARP_ON => (0.0, 1.0),
        id::ARP_RATE | id::ARP_PATTERN => (0.0, 3.0),
        id::ARP_OCTAVES => (1.0, 4.0),
        _ => panic!("not a stepped arp parameter: {param}"),
    };
    (plain - min) / (max - min)
}

/// Normalized gate for a fraction of a step (the mapping is linear 0.05..0.95).
fn gate(fraction: f64) -> f64 {
    (fraction - 0.05) / 0.9
}

const UP: f64 = 0.0;
const DOWN: f64 = 1.0;
const UP_DOWN: f64 = 2.0;
const AS_PLAYED: f64 = 3.0;

// ---------------------------------------------------------------------------------------
// Driving an instance

/// The parts under test: the bridge's instance, or the two libraries loaded directly.
trait Plugin {
    fn block(&self) -> &SharedBlock;
    fn area(&self) -> &SynthArea;
    fn process(&mut self, left: &mut [f32], right: &mut [f32], events: &[Event], transport: &TransportInfo) -> i32;
    fn tick(&mut self);
}

impl Plugin for Instance {
    fn block(&self) -> &SharedBlock {
        Instance::block(self)
    }

    fn area(&self) -> &SynthArea {
        Instance::area(self).expect("TrioSynth's area")
    }

    fn process(&mut self, left: &mut [f32], right: &mut [f32], events: &[Event], transport: &TransportInfo) -> i32 {
        Instance::process_in_place(self, &mut [left, right], &[], events, transport)
    }

    /// Nothing: rendering offline, the bridge ticks the control module before each block.
    fn tick(&mut self) {}
}

/// Host transport the rig publishes before each block, as the bridge does from the
/// host's process context.
#[derive(Clone, Copy)]
struct HostTransport {
    tempo_bpm: f64,
    playing: bool,
    /// Song position at sample 0, in quarter notes.
    ppq_at_zero: f64,
}

/// Renders blocks, feeds the host's note events at their samples, and records every note
/// onset `(start sample, note)` and, for each, where it was released.
struct Rig<P: Plugin> {
    plugin: P,
    clock: u64,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Host events with absolute times, not yet delivered (sorted).
    host: Vec<Event>,
    transport: Option<HostTransport>,
    /// When set, the transport of the block starting at each sample, as a host gives it
    /// (in place of `transport`).
    song: Option<Box<dyn FnMut(u64) -> TransportInfo>>,
    onsets: BTreeSet<(u64, u32)>,
    /// Notes sounding (not releasing) at the end of the last block.
    sounding: BTreeSet<(u64, u32)>,
    /// For each released note: `(lo, hi)` with the note-off in `lo..hi`.
    released: BTreeMap<(u64, u32), (u64, u64)>,
}

impl<P: Plugin> Rig<P> {
    fn new(plugin: P) -> Self {
        Self {
            plugin,
            clock: 0,
            left: Vec::new(),
            right: Vec::new(),
            host: Vec::new(),
            transport: None,
            song: None,
            onsets: BTreeSet::new(),
            sounding: BTreeSet::new(),
            released: BTreeMap::new(),
        }
    }

    fn key_down(&mut self, time: u64, note: u8, velocity: f64) {
        self.host.push(Event::note_on(time, note, velocity));
        self.host.sort_by_key(|e| e.time);
    }

    fn key_up(&mut self, time: u64, note: u8) {
        self.host.push(Event::note_off(time, note));
        self.host.sort_by_key(|e| e.time);
    }

    /// Renders up to sample `end`, ending a block at each of `splits` on the way, with a
    /// tick after every block.
    fn run(&mut self, end: u64, splits: &[u64]) {
        while self.clock < end {
            let mut n = BLOCK.min(end - self.clock);
            if let Some(&s) = splits.iter().filter(|&&s| s > self.clock).min() {
                n = n.min(s - self.clock);
            }
            self.render_block(n);
            self.plugin.tick();
        }
    }

    fn render_block(&mut self, n: u64) {
        let start = self.clock;
        let transport = match (self.transport, self.song.as_mut()) {
            (_, Some(song)) => song(start),
            (Some(t), None) => TransportInfo {
                tempo_bpm: t.tempo_bpm,
                ppq_position: t.ppq_at_zero + start as f64 * t.tempo_bpm / 60.0 / SR,
                flags: transport_flags::TEMPO
                    | transport_flags::POSITION
                    | if t.playing { transport_flags::PLAYING } else { 0 },
                ..TransportInfo::default()
            },
            (None, None) => TransportInfo::default(),
        };
        let due = self.host.iter().take_while(|e| e.time < start + n).count();
        let events: Vec<Event> =
            self.host.drain(..due).map(|e| Event { time: e.time.saturating_sub(start), ..e }).collect();
        let (mut l, mut r) = (vec![0.0f32; n as usize], vec![0.0f32; n as usize]);
        let code = self.plugin.process(&mut l, &mut r, &events, &transport);
        assert_eq!(code, status::OK, "process failed: {}", status::describe(code));
        self.left.extend_from_slice(&l);
        self.right.extend_from_slice(&r);
        self.clock += n;
        let end = self.clock;
        let mut sounding = BTreeSet::new();
        for v in &self.plugin.block().voices {
            let active = v.active.load(Ordering::Relaxed);
            if active == 0 {
                continue;
            }
            let key = (end - v.age.load(Ordering::Relaxed), v.note.load(Ordering::Relaxed));
            self.onsets.insert(key);
            if active == 1 {
                sounding.insert(key);
            }
        }
        for &key in self.sounding.difference(&sounding) {
            self.released.entry(key).or_insert((start, end));
        }
        self.sounding = sounding;
    }

    fn onsets_from(&self, from: u64) -> Vec<(u64, u32)> {
        self.onsets.iter().copied().filter(|&(t, _)| t >= from).collect()
    }
}

fn setup() -> ProcessSetup {
    ProcessSetup { sample_rate: SR, max_block_size: BLOCK as u32, offline: true }
}

/// A bridge instance with the arpeggiator on, rendering offline.
fn arp_instance(dir: &ModuleDir) -> Result<Rig<Instance>> {
    let modules = Modules::load(&dir.paths(), None)?;
    let inst = Instance::new(&modules, setup())?;
    inst.set_param_normalized(id::ARP_ON, 1.0);
    Ok(Rig::new(inst))
}

// ---------------------------------------------------------------------------------------
// Behaviour through the bridge's API

#[test]
fn steps_start_at_their_exact_samples_at_the_arp_tempo() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let mut rig = arp_instance(&dir)?;
    let t = 1000;
    for note in [64, 60, 67] {
        rig.key_down(t, note, 0.8);
    }
    rig.run(t + 8 * STEP + 100, &[]);
    let onsets = rig.onsets_from(0);
    // Step 0 on the key's own sample (the engine plays it: the control module hears of the
    // key only once the block is rendered), then every 1/16 (the control module's).
    let expected: Vec<(u64, u32)> = (0..=8).map(|k| (t + k * STEP, [60, 64, 67][k as usize % 3])).collect();
    assert_eq!(onsets, expected);
    // The keys were not played as notes themselves, and nothing was dropped.
    assert_eq!(rig.plugin.block().stats.events_dropped.load(Ordering::Relaxed), 0);
    assert_eq!(rig.plugin.block().stats.alloc_violations.load(Ordering::Relaxed), 0);

    Ok(())
}

#[test]
fn rate_and_arp_tempo_set_the_step_length() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let mut rig = arp_instance(&dir)?;
    rig.plugin.set_param_normalized(id::ARP_RATE, stepped(id::ARP_RATE, 1.0)); // 1/8
    let tempo = rig.plugin.parse_value(id::ARP_TEMPO, "90 BPM")?;
    rig.plugin.set_param_normalized(id::ARP_TEMPO, tempo);
    let t = 5000;
    rig.key_down(t, 48, 1.0);
    rig.run(t + 40_000, &[]);
    // 1/8 at 90 BPM: 0.5 * 60 / 90 * 48000 = 16000 samples.
    let times: Vec<u64> = rig.onsets_from(0).iter().map(|&(t, _)| t).collect();
    assert_eq!(times, [t, t + 16_000, t + 32_000]);
    Ok(())
}

#[test]
fn steps_follow_the_host_tempo_and_beat_grid() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let mut rig = arp_instance(&dir)?;
    rig.plugin.set_param_normalized(id::ARP_RATE, stepped(id::ARP_RATE, 1.0)); // 1/8
    // 100 BPM, playing, song start at sample 0: a beat is 28_800 samples, a step 14_400.
    rig.transport = Some(HostTransport { tempo_bpm: 100.0, playing: true, ppq_at_zero: 0.0 });
    rig.key_down(20_000, 60, 0.9);
    rig.key_down(20_000, 62, 0.9);
    rig.run(100_000, &[]);
    // The first step is the first grid point after the key: beat 1.0 at 28_800.
    let expected: Vec<(u64, u32)> = (0..5).map(|k| (28_800 + k * 14_400, [60, 62][k as usize % 2])).collect();
    assert_eq!(rig.onsets_from(0), expected);

    // With the song position shifted by a sixteenth, the grid moves with it.
    let mut rig = arp_instance(&dir)?;
    rig.plugin.set_param_normalized(id::ARP_RATE, stepped(id::ARP_RATE, 1.0));
    rig.transport = Some(HostTransport { tempo_bpm: 100.0, playing: true, ppq_at_zero: 0.25 });
    rig.key_down(20_000, 60, 0.9);
    rig.run(60_000, &[]);
    // Beat 1.0 is now at sample 21_600 (0.75 beats after sample 0).
    assert_eq!(rig.onsets_from(0), [(21_600, 60), (36_000, 60), (50_400, 60)]);

    // A host that gives a tempo but is stopped: steps run at its tempo from the key.
    let mut rig = arp_instance(&dir)?;
    rig.transport = Some(HostTransport { tempo_bpm: 150.0, playing: false, ppq_at_zero: 0.0 });
    rig.key_down(3000, 72, 0.9);
    rig.run(3000 + 3 * 4800 + 10, &[]);
    // 1/16 at 150 BPM: 4800 samples.
    let times: Vec<u64> = rig.onsets_from(0).iter().map(|&(t, _)| t).collect();
    assert_eq!(times, [3000, 7800, 12_600, 17_400]);
    Ok(())
}

/// Positions as Ardour 7.3 passes them: the musical position rounded down to 1/1920 of a
/// quarter note and, from block to block, up to another 1/1920 early or late (up to 12.5
/// samples at 120 BPM and 48 kHz). The arp used to schedule extra steps a few samples
/// after the previous one (40 double triggers in 3.5 s); every step must land once, on
/// its grid point within the host's rounding.
#[test]
fn rounded_and_jittering_host_positions_give_one_step_per_grid_point() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let mut rig = arp_instance(&dir)?;
    let mut seed = 0x2545_f491u32;
    rig.song = Some(Box::new(move |start| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let exact = start as f64 * 120.0 / 60.0 / SR;
        let jitter = (f64::from(seed % 3) - 1.0) / 1920.0;
        TransportInfo {
            tempo_bpm: 120.0,
            ppq_position: ((exact * 1920.0).floor() / 1920.0 + jitter).max(0.0),
            flags: transport_flags::TEMPO | transport_flags::POSITION | transport_flags::PLAYING,
            ..TransportInfo::default()
        }
    }));
    // Keys on the grid (beat 1: sample 24_000), as a DAW's MIDI clip places them.
    rig.key_down(24_000, 60, 0.9);
    rig.key_down(24_000, 67, 0.9);
    rig.run(24_000 + 3 * SR as u64 + 500, &[]);
    let times: Vec<u64> = rig.onsets_from(0).iter().map(|&(t, _)| t).collect();
    // 3.5 s from the start, 3 s from the first step: 1 + 24 sixteenths at 6000 samples.
    assert_eq!(times.len(), 25, "steps doubled or skipped: {times:?}");
    for (k, &t) in times.iter().enumerate() {
        let grid = 24_000 + k as u64 * STEP;
        assert!(t.abs_diff(grid) <= 25, "step {k} at {t}, its grid point is {grid}: {times:?}");
    }
    Ok(())
}

/// The notes of steps 0..=12 with keys 64, 60, 67 pressed in that order, a sample apart,
/// and two octaves. Step 0 falls on the first key's sample, when only 64 is held.
fn pattern_notes(dir: &ModuleDir, pattern: f64) -> Result<Vec<u32>> {
    let mut rig = arp_instance(dir)?;
    rig.plugin.set_param_normalized(id::ARP_PATTERN, stepped(id::ARP_PATTERN, pattern));
    rig.plugin.set_param_normalized(id::ARP_OCTAVES, stepped(id::ARP_OCTAVES, 2.0));
    let t = 2000;
    rig.key_down(t, 64, 0.8);
    rig.key_down(t + 1, 60, 0.8);
    rig.key_down(t + 2, 67, 0.8);
    rig.run(t + 12 * STEP + 10, &[]);
    let onsets = rig.onsets_from(0);
    ensure!(onsets.len() == 13, "{onsets:?}");
    for (k, &(time, _)) in onsets.iter().enumerate() {
        ensure!(time == t + k as u64 * STEP, "step {k} at {time}");
    }
    Ok(onsets.iter().map(|&(_, n)| n).collect())
}

#[test]
fn each_pattern_plays_its_order() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let up = [60, 64, 67, 72, 76, 79];
    // Step 0 plays the first entry of the cycle over the one key then held (64 and 76);
    // steps 1.. go on through the cycle over all three keys from its second entry.
    let cycle = |first: u32, c: &[u32]| {
        std::iter::once(first).chain(c.iter().copied().cycle().skip(1).take(12)).collect::<Vec<u32>>()
    };
    assert_eq!(pattern_notes(&dir, UP)?, cycle(64, &up));
    assert_eq!(pattern_notes(&dir, DOWN)?, cycle(76, &[79, 76, 72, 67, 64, 60]));
    assert_eq!(pattern_notes(&dir, UP_DOWN)?, cycle(64, &[60, 64, 67, 72, 76, 79, 76, 72, 67, 64]));
    assert_eq!(pattern_notes(&dir, AS_PLAYED)?, cycle(64, &[64, 60, 67, 76, 72, 79]));
    Ok(())
}

#[test]
fn the_gate_sets_each_note_length_to_the_sample() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    for (fraction, len) in [(0.25, 1500u64), (0.5, 3000), (0.9, 5400)] {
        let mut rig = arp_instance(&dir)?;
        rig.plugin.set_param_normalized(id::ARP_GATE, gate(fraction));
        let t = 700;
        rig.key_down(t, 60, 0.8);
        rig.key_down(t, 63, 0.8);
        let steps: Vec<u64> = (1..5).map(|k| t + k * STEP).collect();
        let splits: Vec<u64> = steps.iter().flat_map(|&s| [s + len, s + len + 1]).collect();
        rig.run(t + 5 * STEP, &splits);
        for (k, &s) in steps.iter().enumerate() {
            let note = [60, 63][(k + 1) % 2];
            let released = rig.released.get(&(s, note)).copied();
            assert_eq!(released, Some((s + len, s + len + 1)), "gate {fraction}: step {} note {note}", k + 1);
        }
    }
    Ok(())
}

#[test]
fn releasing_the_keys_ends_the_phrase_and_nothing_sounds_afterwards() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let release = "50 ms";
    let mut rig = arp_instance(&dir)?;
    let release_norm = rig.plugin.parse_value(id::RELEASE, release)?;
    rig.plugin.set_param_normalized(id::RELEASE, release_norm);
    let t = 1000;
    rig.key_down(t, 60, 0.8);
    rig.key_down(t, 67, 0.8);
    // Released 40 samples before step 4, in the block that step falls in: the engine must
    // not play it.
    let up = t + 4 * STEP - 40;
    rig.key_up(up, 60);
    rig.key_up(up, 67);
    rig.run(up + 2 * STEP, &[]);
    let onsets = rig.onsets_from(0);
    assert_eq!(onsets.len(), 4, "{onsets:?}");
    assert!(onsets.iter().all(|&(time, _)| time < up), "{onsets:?}");
    // Step 3's note ends at its gate; then silence once the release has run out.
    let (s3, n3) = onsets[3];
    let (lo, hi) = rig.released[&(s3, n3)];
    assert!(lo <= s3 + STEP / 2 && s3 + STEP / 2 < hi, "step 3 released in {lo}..{hi}");
    let silent_from = (s3 + STEP / 2 + (0.05 * SR) as u64) as usize;
    assert!(rig.left[silent_from..].iter().all(|&s| s == 0.0), "sound after the release ran out");
    assert_eq!(rig.plugin.block().meters.active_voices.load(Ordering::Relaxed), 0);

    // Pressing again starts a new phrase on its own first key.
    let again = rig.clock + 500;
    rig.key_down(again, 65, 0.8);
    rig.run(again + 2 * STEP + 10, &[]);
    let next: Vec<u64> = rig.onsets_from(again).iter().map(|&(time, _)| time).collect();
    assert_eq!(next.len(), 3, "{next:?}");
    assert_eq!(&next[1..], [again + STEP, again + 2 * STEP]);
    Ok(())
}

#[test]
fn switching_the_arp_off_ends_its_notes_and_host_notes_play_again() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let mut rig = arp_instance(&dir)?;
    rig.plugin.set_param_normalized(id::ARP_GATE, gate(0.9));
    let t = 300;
    rig.key_down(t, 57, 0.8);
    rig.run(t + 2 * STEP + 100, &[]);
    assert_eq!(rig.onsets_from(0).len(), 3);
    // Off in the middle of step 2's note.
    rig.plugin.set_param_normalized(id::ARP_ON, 0.0);
    let off_at = rig.clock;
    rig.run(off_at + 5 * STEP, &[]);
    assert!(rig.onsets_from(off_at).is_empty(), "{:?}", rig.onsets_from(off_at));
    assert!(rig.sounding.is_empty());
    assert_eq!(rig.plugin.block().meters.active_voices.load(Ordering::Relaxed), 0);
    let cursor = &Plugin::area(&rig.plugin).cursor;
    assert_eq!(cursor.running.load(Ordering::Relaxed), 0);
    assert_eq!(cursor.pending_count.load(Ordering::Relaxed), 0);
    // The key still held when the arp went off was forgotten; a new host note plays as a
    // plain note at its own sample.
    let n = rig.clock + 100;
    rig.key_down(n, 69, 0.8);
    rig.run(n + 1000, &[]);
    assert_eq!(rig.onsets_from(off_at), [(n, 69)]);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Handover to a new control instance (what a hot reload does), on the libraries directly

type Sym<T> = libloading::Symbol<'static, T>;

/// A control library loaded with `dlopen`, as the bridge loads it.
struct ControlLib {
    create: control::CreateFn,
    destroy: control::DestroyFn,
    tick: control::TickFn,
    save_state: control::SaveStateFn,
    load_state: control::LoadStateFn,
    descriptor: abi::ModuleDescriptor,
    _lib: &'static libloading::Library,
}

impl ControlLib {
    fn load(path: &Path) -> Result<Self> {
        // SAFETY: the real control library: loading runs only std's initialisers. It is
        // leaked (never unloaded), so the function pointers below stay valid.
        let lib: &'static libloading::Library = Box::leak(Box::new(unsafe { libloading::Library::new(path)? }));
        // SAFETY: each symbol has the signature `trio::abi::control` gives it.
        unsafe {
            let create: Sym<control::CreateFn> = lib.get(b"trio_control_create\0")?;
            let destroy: Sym<control::DestroyFn> = lib.get(b"trio_control_destroy\0")?;
            let tick: Sym<control::TickFn> = lib.get(b"trio_control_tick\0")?;
            let save_state: Sym<control::SaveStateFn> = lib.get(b"trio_control_save_state\0")?;
            let load_state: Sym<control::LoadStateFn> = lib.get(b"trio_control_load_state\0")?;
            let descriptor: Sym<*const abi::ModuleDescriptor> = lib.get(b"trio_control_descriptor\0")?;
            Ok(Self {
                create: *create,
                destroy: *destroy,
                tick: *tick,
                save_state: *save_state,
                load_state: *load_state,
                descriptor: **descriptor,
                _lib: lib,
            })
        }
    }

    fn create(&self, block: &HeapBlock, mode: u32) -> Result<*mut c_void> {
        let mut out = std::ptr::null_mut();
        // SAFETY: an initialised block (with its area) that outlives the instance (the rig
        // owns both).
        let code = unsafe { (self.create)(block.as_ptr(), mode, &mut out) };
        ensure!(code == status::OK && !out.is_null(), "trio_control_create: {}", status::describe(code));
        Ok(out)
    }
}

/// The definition of parameter `param` as the control module serving `block` published it.
fn param_info(block: &SharedBlock, param: u32) -> Result<ParamInfo> {
    let defs = block.params.read_definitions().context("definitions kept changing")?;
    defs.params.into_iter().find(|p| p.id == param).context("no such parameter")
}

/// `WriteFn` appending to the `Vec<u8>` behind `ctx`.
unsafe extern "C" fn append(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `ctx` is the `&mut Vec<u8>` passed with this callback, `data` valid for `len`.
    unsafe { (*ctx.cast::<Vec<u8>>()).extend_from_slice(std::slice::from_raw_parts(data, len)) };
}

/// The engine library and a control instance on a block of their own, without the
/// bridge: the test decides which control instance ticks.
struct DirectPlugin {
    block: HeapBlock,
    engine: *mut c_void,
    process: abi::engine::ProcessFn,
    engine_destroy: abi::engine::DestroyFn,
    control: (&'static ControlLib, *mut c_void),
    handovers: u32,
}

impl DirectPlugin {
    fn new(engine_path: &Path, control: &'static ControlLib) -> Result<Self> {
        let block = HeapBlock::new(&AreaLayout::of::<SynthArea>());
        block.block().init_header(1, SR, BLOCK as u32, &AreaLayout::of::<SynthArea>());
        block.block().header.main_channels.store(2, Ordering::Relaxed);
        let instance = control.create(&block, control::CREATE_FRESH)?;
        // SAFETY: the real engine library, leaked so its functions stay valid; the symbols
        // have the signatures `trio::abi::engine` gives them.
        let (create, activate, process, engine_destroy) = unsafe {
            let lib: &'static libloading::Library = Box::leak(Box::new(libloading::Library::new(engine_path)?));
            (
                *lib.get::<abi::engine::CreateFn>(b"trio_engine_create\0")?,
                *lib.get::<abi::engine::ActivateFn>(b"trio_engine_activate\0")?,
                *lib.get::<abi::engine::ProcessFn>(b"trio_engine_process\0")?,
                *lib.get::<abi::engine::DestroyFn>(b"trio_engine_destroy\0")?,
            )
        };
        let mut engine = std::ptr::null_mut();
        // SAFETY: the block outlives the engine (destroyed first in `drop`).
        ensure!(unsafe { create(block.as_ptr(), &mut engine) } == status::OK, "trio_engine_create failed");
        // SAFETY: a live engine, no concurrent call.
        ensure!(unsafe { activate(engine, SR, BLOCK as u32) } == status::OK, "trio_engine_activate failed");
        Ok(Self { block, engine, process, engine_destroy, control: (control, instance), handovers: 0 })
    }

    fn set_param(&self, param: u32, normalized: f64) {
        assert!(self.block.block().params.set_value(param, normalized));
    }

    /// Hands the block over to a new instance of `next`, as a reload does: save the old
    /// instance's state, create the new one adopting the block, load the state into it,
    /// destroy the old one.
    fn hand_over(&mut self, next: &'static ControlLib) -> Result<()> {
        let (lib, old) = self.control;
        let mut state: Vec<u8> = Vec::new();
        // SAFETY: a live instance; `append` matches `WriteFn` and `ctx` is `&mut state`.
        let code = unsafe { (lib.save_state)(old, append, (&mut state as *mut Vec<u8>).cast()) };
        ensure!(code == status::OK, "trio_control_save_state: {}", status::describe(code));
        let new = next.create(&self.block, control::CREATE_ADOPT)?;
        // SAFETY: a live instance; `state` is valid for its length.
        let code = unsafe { (next.load_state)(new, state.as_ptr(), state.len()) };
        ensure!(code == status::OK, "trio_control_load_state: {}", status::describe(code));
        // SAFETY: the old instance is not used afterwards.
        unsafe { (lib.destroy)(old) };
        self.control = (next, new);
        self.handovers += 1;
        Ok(())
    }
}

impl Plugin for DirectPlugin {
    fn block(&self) -> &SharedBlock {
        self.block.block()
    }

    fn area(&self) -> &SynthArea {
        // Read through the bridge-free path: the block's header names the area.
        let block = self.block.block();
        assert!(block.check_header(&AreaLayout::of::<SynthArea>()).is_ok());
        let base = self.block.as_ptr().cast::<u8>();
        // SAFETY: the header check passed for `SynthArea`; the heap block holds it at the
        // area offset and lives as long as `self`; `as_ptr` has provenance over all of it.
        unsafe { &*base.add(trio::block::AREA_OFFSET).cast::<SynthArea>() }
    }

    fn process(&mut self, left: &mut [f32], right: &mut [f32], events: &[Event], transport: &TransportInfo) -> i32 {
        let channels = [left.as_mut_ptr(), right.as_mut_ptr()];
        let mut data = ProcessData {
            num_samples: left.len() as u32,
            num_main: 2,
            main: channels.as_ptr(),
            num_sidechain: 0,
            num_events: events.len() as u32,
            sidechain: std::ptr::null(),
            events: if events.is_empty() { std::ptr::null() } else { events.as_ptr() },
            transport: *transport,
            process_mode: abi::process_mode::REALTIME,
            engine_state: 0,
            silence_flags: 0,
        };
        // SAFETY: a live engine with no concurrent call; the channel and event pointers are
        // valid for the call.
        unsafe { (self.process)(self.engine, &mut data) }
    }

    fn tick(&mut self) {
        let (lib, instance) = self.control;
        let mut result = TickResult::default();
        // SAFETY: a live instance, one call at a time (this thread only); `result` is a local.
        let code = unsafe { (lib.tick)(instance, 0, &mut result) };
        assert_eq!(code, status::OK, "trio_control_tick: {}", status::describe(code));
    }
}

impl Drop for DirectPlugin {
    fn drop(&mut self) {
        // SAFETY: live objects, destroyed once, before the block they point into.
        unsafe {
            (self.engine_destroy)(self.engine);
            (self.control.0.destroy)(self.control.1);
        }
    }
}

/// A performance with key changes, a pattern change and a rate change, rendered with a
/// handover to `next()` before each block index in `handovers`.
fn perform(
    engine: &Path,
    first: &'static ControlLib,
    handovers: &BTreeSet<u64>,
    mut next: impl FnMut(u64) -> &'static ControlLib,
) -> Result<Rig<DirectPlugin>> {
    let mut rig = Rig::new(DirectPlugin::new(engine, first)?);
    rig.plugin.set_param(id::ARP_ON, 1.0);
    rig.plugin.set_param(id::ARP_PATTERN, stepped(id::ARP_PATTERN, UP_DOWN));
    rig.plugin.set_param(id::ARP_OCTAVES, stepped(id::ARP_OCTAVES, 2.0));
    rig.plugin.set_param(id::ARP_GATE, gate(0.6));
    rig.key_down(1000, 60, 0.9);
    rig.key_down(1000, 64, 0.7);
    rig.key_down(9000, 67, 0.8);
    rig.key_up(60_000, 64);
    rig.key_down(70_000, 71, 1.0);
    rig.key_up(110_000, 60);
    rig.key_up(110_000, 67);
    rig.key_up(110_000, 71);
    rig.key_down(120_500, 55, 0.6);
    rig.key_down(120_600, 62, 0.6);
    rig.key_up(180_000, 55);
    rig.key_up(180_000, 62);
    let end = 190_000;
    let mut block = 0;
    while rig.clock < end {
        if handovers.contains(&block) {
            let lib = next(block);
            rig.plugin.hand_over(lib)?;
        }
        if rig.clock >= 40_000 && rig.clock < 40_000 + BLOCK {
            rig.plugin.set_param(id::ARP_PATTERN, stepped(id::ARP_PATTERN, AS_PLAYED));
        }
        if rig.clock >= 130_000 && rig.clock < 130_000 + BLOCK {
            rig.plugin.set_param(id::ARP_RATE, stepped(id::ARP_RATE, 3.0));
        }
        rig.run((rig.clock + BLOCK).min(end), &[]);
        block += 1;
    }
    Ok(rig)
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn a_new_control_instance_adopting_the_block_continues_bit_identically() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let lib: &'static ControlLib = Box::leak(Box::new(ControlLib::load(&dir.control())?));
    // A second copy of the library file: a reload loads the new build from its own path.
    let copy = scratch_dir("arp-control")?.join("control-copy.so");
    std::fs::copy(dir.control(), &copy)?;
    let other: &'static ControlLib = Box::leak(Box::new(ControlLib::load(&copy)?));

    let reference = perform(&dir.engine(), lib, &BTreeSet::new(), |_| lib)?;
    assert!(rms(&reference.left) > 0.01);
    assert!(reference.onsets.len() > 30, "{}", reference.onsets.len());

    // 100 handovers during the render, every 7 blocks, alternating between the copies.
    let handovers: BTreeSet<u64> = (1..=100).map(|i| i * 7).collect();
    let reloaded = perform(&dir.engine(), lib, &handovers, |b| if b % 14 == 0 { lib } else { other })?;
    assert_eq!(reloaded.plugin.handovers, 100);
    assert_eq!(reloaded.onsets, reference.onsets);
    assert!(same_bits(&reloaded.left, &reference.left), "left channel differs after handovers");
    assert!(same_bits(&reloaded.right, &reference.right), "right channel differs after handovers");
    for rig in [&reference, &reloaded] {
        let stats = &rig.plugin.block().stats;
        assert_eq!(stats.events_dropped.load(Ordering::Relaxed), 0);
        assert_eq!(stats.alloc_violations.load(Ordering::Relaxed), 0);
    }
    Ok(())
}

/// Builds the `reload-variant` control module into `<target>/variant` (a no-op when it is
/// up to date) and returns its path.
fn variant_library() -> Result<PathBuf> {
    let target = target_dir().join("variant");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = std::process::Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "-p", "control", "--features", "reload-variant", "--target-dir"])
        .arg(&target)
        .status()
        .context("running cargo to build the reload-variant control module")?;
    if !status.success() {
        bail!("`cargo build -p control --features reload-variant --target-dir target/variant` failed");
    }
    Ok(target.join("debug/libcontrol.so"))
}

#[test]
fn a_reload_with_changed_logic_plays_the_next_unscheduled_step_differently() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let variant_path = scratch_dir("arp-variant")?.join("control-variant.so");
    std::fs::copy(variant_library()?, &variant_path)?;
    let normal: &'static ControlLib = Box::leak(Box::new(ControlLib::load(&dir.control())?));
    let variant: &'static ControlLib = Box::leak(Box::new(ControlLib::load(&variant_path)?));

    // The variant announces itself: another cutoff unit and range.
    assert_eq!(normal.descriptor.name_str(), variant.descriptor.name_str());

    let mut rig = Rig::new(DirectPlugin::new(&dir.engine(), normal)?);
    let normal_cutoff = param_info(rig.plugin.block(), id::CUTOFF)?;
    rig.plugin.set_param(id::ARP_ON, 1.0);
    let t = 1000;
    for note in [60, 64, 67] {
        rig.key_down(t, note, 0.8);
    }
    // Step 0 is the engine's; steps 1..=3 are scheduled by the normal module (step 4 is
    // beyond its lookahead).
    rig.run(t + 3 * STEP + 100, &[]);
    rig.plugin.hand_over(variant)?;
    let variant_cutoff = param_info(rig.plugin.block(), id::CUTOFF)?;
    rig.run(t + 9 * STEP + 100, &[]);

    let notes: Vec<u32> = rig.onsets_from(0).iter().map(|&(_, n)| n).collect();
    // Up (60 64 67) until the handover; from the next unscheduled step on the variant's
    // reversed "up" (67 64 60), continuing the step count: step k plays index k % 3.
    assert_eq!(notes, [60, 64, 67, 60, 64, 60, 67, 64, 60, 67]);
    let times: Vec<u64> = rig.onsets_from(0).iter().skip(1).map(|&(time, _)| time).collect();
    assert_eq!(times, (1..=9).map(|k| t + k * STEP).collect::<Vec<_>>(), "the timing continues exactly");

    assert_eq!(normal_cutoff.unit, "Hz");
    assert_eq!(variant_cutoff.unit, "Hertz");
    assert_eq!((normal_cutoff.mapping.min, normal_cutoff.mapping.max), (20.0, 20_000.0));
    assert_eq!((variant_cutoff.mapping.min, variant_cutoff.mapping.max), (40.0, 16_000.0));
    Ok(())
}

#[test]
fn tick_cost_with_the_arp_off_and_on() -> Result<()> {
    // Printed for the report, not asserted: speed is asserted in benchmarks only.
    let dir = ModuleDir::new(Build::Normal)?;
    let lib: &'static ControlLib = Box::leak(Box::new(ControlLib::load(&dir.control())?));
    let mut rig = Rig::new(DirectPlugin::new(&dir.engine(), lib)?);
    let time = |rig: &mut Rig<DirectPlugin>| {
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            rig.plugin.tick();
        }
        start.elapsed() / n
    };
    let off = time(&mut rig);
    rig.plugin.set_param(id::ARP_ON, 1.0);
    for note in [60, 64, 67, 70] {
        rig.key_down(0, note, 0.9);
    }
    rig.run(BLOCK, &[]);
    let on = time(&mut rig);
    // A tick that schedules: a fresh step each time (1/32 steps at 240 BPM are 1500
    // samples; a lookahead of a whole second keeps 32 of them ahead).
    rig.plugin.set_param(id::ARP_RATE, stepped(id::ARP_RATE, 3.0));
    let start = std::time::Instant::now();
    rig.run(BLOCK * 400, &[]);
    let blocks = start.elapsed() / 399;
    println!(
        "control_tick, called directly: arp off {off:?}; arp on, nothing new {on:?}; \
         a block plus a tick with the arp playing 1/32 steps: {blocks:?}"
    );
    assert!(rig.onsets.len() > 30);
    Ok(())
}
