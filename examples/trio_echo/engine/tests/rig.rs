//! TrioEcho's engine and control module together, through `trio::testing::Rig`: the
//! parameters as the control module defines them, set in plain units by id, changes at
//! their sample, the latency and tail as a host reads them, the host's tempo, presets
//! and state, and the allocation check (this test binary links the engine crate, and
//! with it `export_engine!`'s allocator, so the check sees every allocation).
//!
//! Each test prints its figures (`cargo test -p trio_echo_engine --test rig -- --nocapture`).

use trio::engine::Tail;
use trio::testing::{HostEvent, HostTransport, Rig, RigError, Setup};
use trio_echo_common::id;
use trio_echo_control::EchoControl;
use trio_echo_engine::EchoEngine;
use trio_echo_engine::echo::{Echo, EchoParams};

type EchoRig = Rig<EchoEngine, EchoControl>;

const SR: f64 = 48_000.0;
/// The default Lookahead (5 ms) at 48 kHz.
const L: usize = 240;
/// Long enough for every smoothed value and a delay-time glide to arrive.
const SETTLE: usize = 48_000;

/// Stereo with a stereo sidechain, blocks of 256 (renders are split into them), offline.
fn rig() -> EchoRig {
    let setup = Setup { sample_rate: SR, max_block: 256, main_channels: 2, sidechain_channels: 2, offline: true };
    EchoRig::new(setup).expect("the rig starts")
}

/// Sets each `(id, plain)` and renders silence until everything has arrived there.
fn settle(rig: &mut EchoRig, params: &[(u32, f64)]) -> Result<(), RigError> {
    for &(param, plain) in params {
        rig.set_param(param, plain)?;
    }
    rig.render_input(&[vec![0.0; SETTLE], vec![0.0; SETTLE]], &[])?;
    Ok(())
}

/// Mix 100 %, no feedback, free time: the output is one echo of the input.
fn one_echo(time_s: f64) -> [(u32, f64); 4] {
    [(id::MIX, 1.0), (id::FEEDBACK, 0.0), (id::SYNC, 0.0), (id::TIME, time_s)]
}

fn impulse(n: usize, at: usize, value: f32) -> Vec<f32> {
    let mut x = vec![0.0; n];
    x[at] = value;
    x
}

/// The nonzero samples of a channel.
fn nonzero(x: &[f32]) -> Vec<(usize, f32)> {
    x.iter().copied().enumerate().filter(|&(_, v)| v != 0.0).collect()
}

/// A deterministic noise generator (uniform in `-1..1`).
struct Lcg(u64);

impl Lcg {
    fn noise(&mut self, n: usize, amplitude: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                amplitude * (((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
            })
            .collect()
    }
}

#[test]
fn an_impulse_comes_back_at_the_delay_time_plus_the_reported_latency() -> Result<(), RigError> {
    let mut r = rig();
    assert_eq!(r.latency() as usize, L);
    settle(&mut r, &one_echo(0.25))?;
    let n = 13_000;
    let out = r.render_input(&[impulse(n, 100, 0.5), impulse(n, 200, -0.25)], &[])?;
    let echo = 12_000 + r.latency() as usize;
    assert_eq!(nonzero(&out[0]), [(100 + echo, 0.5)]);
    assert_eq!(nonzero(&out[1]), [(200 + echo, -0.25)]);
    // The tail covers the one echo and the latency.
    assert_eq!(r.tail(), Tail::Samples(12_000 + L as u32));
    println!(
        "impulse at 100 -> echo at {} = 100 + 12000 (250 ms) + {} (reported latency), exact; tail {:?}",
        100 + echo,
        r.latency(),
        r.tail()
    );
    assert_eq!(r.alloc_violations(), Some(0));
    Ok(())
}

#[test]
fn at_mix_zero_the_output_is_the_input_delayed_by_exactly_the_reported_latency() -> Result<(), RigError> {
    let mut rng = Lcg(7);
    let n = 48_000;
    let amp = 0.25; // -12 dBFS
    let (left, right) = (rng.noise(n, amp), rng.noise(n, amp));
    let key = rng.noise(n, 1.0);
    for with_key in [false, true] {
        let mut r = rig();
        // Everything else busy: long feedback, hard ducking.
        let busy = [
            (id::MIX, 0.0),
            (id::SYNC, 0.0),
            (id::TIME, 0.1),
            (id::FEEDBACK, 0.9),
            (id::DUCK, 1.0),
            (id::DUCK_THRESHOLD, -40.0),
        ];
        settle(&mut r, &busy)?;
        let latency = r.latency() as usize;
        let out = if with_key {
            r.render_sidechain(&[&left, &right], &[&key, &key], &[])?
        } else {
            r.render_input(&[&left, &right], &[])?
        };
        for i in 0..n {
            let want = if i >= latency { (left[i - latency], right[i - latency]) } else { (0.0, 0.0) };
            assert_eq!((out[0][i].to_bits(), out[1][i].to_bits()), (want.0.to_bits(), want.1.to_bits()), "sample {i}");
        }
        assert_eq!(r.alloc_violations(), Some(0));
        println!(
            "mix 0 %{}: {n} samples of noise come out delayed by the reported latency ({latency}), bit for bit",
            if with_key { ", sidechain key" } else { "" }
        );
    }
    Ok(())
}

#[test]
fn changing_the_lookahead_mid_render_changes_the_reported_latency() -> Result<(), RigError> {
    let mut r = rig();
    settle(&mut r, &[(id::MIX, 0.0)])?;
    assert_eq!(r.latency(), 240);
    // Lookahead 10 ms at sample 600 of a render; an impulse at 1500 after it.
    let n = 2_000;
    let events = [(600, HostEvent::param(id::LOOKAHEAD, 0.010))];
    let out = r.render_input(&[impulse(n, 1500, 0.5), vec![0.0; n]], &events)?;
    assert_eq!(r.latency(), 480);
    assert_eq!(nonzero(&out[0]), [(1500 + 480, 0.5)]);
    assert!((r.param(id::LOOKAHEAD)? - 0.010).abs() < 1e-12);
    // The block that carries the change reports it: up to sample 599 the old latency holds.
    let mut r = rig();
    r.render(599, &[])?;
    assert_eq!(r.latency(), 240);
    r.render(2, &[(1, HostEvent::param(id::LOOKAHEAD, 0.0))])?;
    assert_eq!(r.latency(), 0);
    // A value set between blocks (the host's setParamNormalized) is reported after the
    // next block, an empty one included.
    r.set_param(id::LOOKAHEAD, 0.002)?;
    assert_eq!(r.latency(), 0);
    r.render(0, &[])?;
    assert_eq!(r.latency(), 96);
    println!(
        "lookahead 5 -> 10 ms at sample 600: latency 240 -> 480, the next impulse 480 samples late; 0 ms -> 0; 2 ms -> 96"
    );
    assert_eq!(r.alloc_violations(), Some(0));
    Ok(())
}

#[test]
fn the_synced_delay_follows_the_host_tempo() -> Result<(), RigError> {
    let mut r = rig();
    // Sync on, 1/8, one echo.
    settle(&mut r, &[(id::MIX, 1.0), (id::FEEDBACK, 0.0), (id::SYNC, 1.0), (id::DIVISION, 1.0)])?;
    let mut measured = Vec::new();
    // 1/8 at 120, 100 and 90 BPM; then a host without a tempo: the free Time (375 ms).
    let cases = [
        (HostTransport::playing(120.0), 12_000),
        (HostTransport::playing(100.0), 14_400),
        (HostTransport::tempo(90.0), 16_000),
        (HostTransport::default(), 18_000),
    ];
    for (transport, delay) in cases {
        r.set_transport(transport);
        // The delay glides to the new time over the silence, then rests on it.
        r.render_input(&[vec![0.0; SETTLE], vec![0.0; SETTLE]], &[])?;
        let n = delay + L + 10;
        let out = r.render_input(&[impulse(n, 0, 0.5), vec![0.0; n]], &[])?;
        assert_eq!(nonzero(&out[0]), [(delay + L, 0.5)], "{transport:?}");
        let tempo = transport.tempo_bpm.map_or("no tempo".to_owned(), |bpm| format!("{bpm} BPM"));
        measured.push(format!("{tempo} -> {}", delay + L));
    }
    println!("1/8 note echo (+ {L} latency): {}", measured.join(", "));
    assert_eq!(r.alloc_violations(), Some(0));
    Ok(())
}

#[test]
fn process_never_allocates_with_every_parameter_moving() -> Result<(), RigError> {
    let mut r = rig();
    r.set_transport(HostTransport::playing(128.0));
    let mut rng = Lcg(3);
    let presets = r.presets()?;
    assert_eq!(presets, ["Init", "Slapback", "Dub Throw", "Ducked Vocal Delay"]);
    let mut blocks = 0;
    for (round, _) in presets.iter().enumerate() {
        r.load_preset(round as u32)?;
        // Every parameter automated somewhere in the render, in plain units across its
        // range, with a sidechain key and odd block lengths (the last block is short).
        let n = 10_007;
        let mut events = Vec::new();
        for param in 0..id::COUNT {
            let info = r.param_info(param)?;
            let (lo, hi) = (info.mapping.min, info.mapping.max);
            for k in 0..4usize {
                let at = (param as usize * 613 + k * 2_311 + round * 97) % n;
                let t = (k as f64 + 0.5) / 4.0;
                events.push((at, HostEvent::param(param, info.clamp(lo + t * (hi - lo)))));
            }
        }
        let input = [rng.noise(n, 0.5), rng.noise(n, 0.5)];
        let key = [rng.noise(n, 1.0), rng.noise(n, 1.0)];
        let out = r.render_sidechain(&input, &key, &events)?;
        assert!(out.iter().flatten().all(|s| s.is_finite()));
        blocks += n.div_ceil(256);
        let state = r.save_state()?;
        r.load_state(&state)?;
    }
    let stats = &r.block().stats;
    let processed = stats.blocks_processed.load(std::sync::atomic::Ordering::Relaxed);
    assert!(processed >= blocks as u64, "{processed} blocks");
    assert_eq!(r.alloc_violations(), Some(0));
    println!(
        "{processed} blocks, every parameter automated, four presets, sidechain, tempo: 0 allocations in process \
         (the check is armed: {})",
        trio::testing::alloc_check_active()
    );
    Ok(())
}

// ----- dormancy: silence in costs nothing, whatever the block sizes

/// 100 ms free time, feedback 0.3: what the repeats leave falls below -80 dB after 8 of
/// them (0.3^8 / 0.7 < 1e-4), each counted 2 samples long, so the effect goes quiet
/// 9 × 4802 samples plus the lookahead after its input stops.
const QUIET_PARAMS: [(u32, f64); 4] = [(id::MIX, 0.5), (id::FEEDBACK, 0.3), (id::SYNC, 0.0), (id::TIME, 0.1)];
const QUIET_AFTER: usize = 9 * 4_802 + L;

/// Noise bursts separated by silences longer and shorter than the effect's tail, a Tone
/// change between the second and the third (its ramp steps on the effect's control-rate
/// grid) and a feedback change inside the third. The first burst is not a whole number
/// of control periods long.
struct Bursts {
    input: Vec<f32>,
    events: Vec<(usize, HostEvent)>,
    /// Each burst's first sample and the sample after its last.
    spans: [(usize, usize); 3],
}

fn bursts() -> Bursts {
    let mut noise = Lcg(5);
    let spans = [(0usize, 4_803usize), (70_000, 72_000), (80_000, 81_000)];
    let mut input = vec![0.0f32; 190_000];
    for &(a, b) in &spans {
        input[a..b].copy_from_slice(&noise.noise(b - a, 0.5));
    }
    let events = vec![(76_001, HostEvent::param(id::TONE, 2_000.0)), (80_500, HostEvent::param(id::FEEDBACK, 0.35))];
    Bursts { input, events, spans }
}

/// Renders `input` (mono, copied to both channels) in blocks whose sizes cycle through
/// `sizes`, with `events` at absolute offsets, on a rig that already has `params`.
fn render_in_blocks(
    params: &[(u32, f64)],
    input: &[f32],
    events: &[(usize, HostEvent)],
    sizes: &[usize],
) -> Result<Vec<f32>, RigError> {
    Ok(render_sleeping_or_not(params, input, events, sizes, true)?.0)
}

/// [`render_in_blocks`], with the rig skipping the blocks of the asleep engine
/// (`Block::set_asleep`) as the bridge does, or calling it for every block; also returns
/// how many blocks it skipped.
fn render_sleeping_or_not(
    params: &[(u32, f64)],
    input: &[f32],
    events: &[(usize, HostEvent)],
    sizes: &[usize],
    sleep: bool,
) -> Result<(Vec<f32>, u64), RigError> {
    let setup = Setup { sample_rate: SR, max_block: 4096, main_channels: 2, sidechain_channels: 0, offline: true };
    let mut r = EchoRig::new(setup)?;
    r.set_sleep_allowed(sleep);
    for &(param, plain) in params {
        r.set_param(param, plain)?;
    }
    let mut left = input.to_vec();
    let mut right = input.to_vec();
    let (mut start, mut i) = (0, 0);
    while start < input.len() {
        let end = (start + sizes[i % sizes.len()]).min(input.len());
        i += 1;
        let block_events: Vec<(usize, HostEvent)> =
            events.iter().filter(|(at, _)| (start..end).contains(at)).map(|&(at, e)| (at - start, e)).collect();
        r.process(&mut [&mut left[start..end], &mut right[start..end]], &[], &block_events)?;
        start = end;
    }
    assert!(left == right, "both channels carry the same signal");
    Ok((left, r.slept_blocks()))
}

#[test]
fn blocks_skipped_while_the_effect_sleeps_change_no_sample() -> Result<(), RigError> {
    let Bursts { input, events, .. } = bursts();
    for sizes in [&[64usize][..], &[256, 1, 37, 1000, 513, 4096]] {
        let (awake, none) = render_sleeping_or_not(&QUIET_PARAMS, &input, &events, sizes, false)?;
        let (asleep, skipped) = render_sleeping_or_not(&QUIET_PARAMS, &input, &events, sizes, true)?;
        assert_eq!(none, 0);
        let first_difference = asleep.iter().zip(&awake).position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first_difference, None, "blocks of {sizes:?}");
        // The silences after the first burst's tail and after the last are skipped.
        println!("blocks of {sizes:?}: {skipped} skipped while asleep");
        assert!(skipped > 50, "blocks of {sizes:?}: {skipped}");
    }
    Ok(())
}

#[test]
fn silence_after_the_tail_puts_the_effect_to_sleep_the_same_way_for_any_block_sizes() -> Result<(), RigError> {
    let Bursts { input, events, spans } = bursts();
    let splits: [&[usize]; 4] = [&[4096], &[64], &[256, 1, 37, 1000, 513, 4096], &[3, 4093]];
    let reference = render_in_blocks(&QUIET_PARAMS, &input, &events, splits[0])?;
    for sizes in &splits[1..] {
        let out = render_in_blocks(&QUIET_PARAMS, &input, &events, sizes)?;
        let first_difference = out.iter().zip(&reference).position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first_difference, None, "blocks of {sizes:?}");
    }
    // After the first burst the effect sounds for QUIET_AFTER samples, then its output is
    // exactly silent until the next burst; what it leaves out is below -80 dB.
    let asleep = spans[0].1 + QUIET_AFTER;
    let last_sound = reference[..spans[1].0].iter().rposition(|&v| v != 0.0).expect("the echo sounds");
    let residual = reference[asleep - 4_800..asleep].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    println!(
        "first burst ends at {}; output last sounds at {last_sound}, silent from {asleep}; largest sample in \
         the 100 ms before: {residual:.2e} (input peak 0.5)",
        spans[0].1
    );
    assert!(last_sound < asleep && last_sound > spans[0].1 + 4_800 * 9, "{last_sound}");
    assert!(residual > 0.0 && residual <= 0.5 * 1e-4, "{residual}");
    // The second silence is shorter than the tail: the echo rings through it.
    assert!(reference[spans[1].1 + 4_800..spans[2].0].iter().any(|&v| v != 0.0));
    // At the end (more than the tail after the last burst, whose feedback of 0.35 needs
    // 10 repeats) the output is exactly zero.
    assert!(reference[spans[2].1 + 11 * 4_802 + L..].iter().all(|&v| v == 0.0));
    Ok(())
}

#[test]
fn a_sleeping_effect_wakes_at_the_first_sound_exactly_as_a_fresh_one_starts() -> Result<(), RigError> {
    let Bursts { input, events, spans } = bursts();
    let out = render_in_blocks(&QUIET_PARAMS, &input, &events, &[512])?;
    // From the second burst on (asleep since the first one rang out), a new instance given
    // the same input from that point renders the same bits.
    let from = spans[1].0;
    let shifted: Vec<(usize, HostEvent)> = events.iter().map(|&(at, e)| (at - from, e)).collect();
    let fresh = render_in_blocks(&QUIET_PARAMS, &input[from..], &shifted, &[512])?;
    let first_difference = out[from..].iter().zip(&fresh).position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(first_difference, None);
    // And the input that wakes it is processed from its very first sample: with half
    // wet, the first output sample is half the input (scaled by the limiter only if
    // loud, which 0.5 is not), delayed by the lookahead.
    assert!(out[from..from + L].iter().all(|&v| v == 0.0));
    assert!(out[from + L] != 0.0);
    Ok(())
}

/// The same input through `Echo` itself, which never sleeps, with the settings switched
/// at the same samples: `changes` are `(sample, settings from then on)`.
fn never_sleeping(input: &[f32], first: EchoParams, changes: &[(usize, EchoParams)]) -> Vec<f32> {
    let mut echo = Echo::new(SR);
    echo.set_params(&first);
    echo.reset();
    let (mut left, mut right) = (input.to_vec(), input.to_vec());
    let mut at = 0;
    for &(until, params) in changes.iter().chain([(input.len(), first)].iter()) {
        echo.process(&mut [&mut left[..], &mut right[..]], &[], at, until);
        echo.set_params(&params);
        at = until;
    }
    left
}

#[test]
fn sleeping_leaves_out_less_than_minus_80_db_of_an_effect_that_never_sleeps() -> Result<(), RigError> {
    let base = EchoParams { mix: 0.5, feedback: 0.3, delay_s: 0.1, ..EchoParams::default() };
    let Bursts { input, events, .. } = bursts();
    // The bursts with their Tone and Feedback changes.
    let toned = EchoParams { tone_hz: 2_000.0, ..base };
    let bursts_case = (
        input,
        QUIET_PARAMS.to_vec(),
        events,
        base,
        vec![(76_001, toned), (80_500, EchoParams { feedback: 0.35, ..toned })],
    );
    // A single echo whose delay shortens while it is still in the line (the delay glides,
    // between whole samples, as the effect goes quiet).
    let mut noise = Lcg(9);
    let mut burst = vec![0.0f32; 60_000];
    burst[..2_400].copy_from_slice(&noise.noise(2_400, 0.5));
    let single = EchoParams { mix: 1.0, feedback: 0.0, delay_s: 0.5, ..EchoParams::default() };
    let gliding_case = (
        burst,
        vec![(id::MIX, 1.0), (id::FEEDBACK, 0.0), (id::SYNC, 0.0), (id::TIME, 0.5)],
        vec![(2_400 + 24_000, HostEvent::param(id::TIME, 0.1))],
        single,
        vec![(2_400 + 24_000, EchoParams { delay_s: 0.1, ..single })],
    );
    // High feedback, short delay, filters wide open: many loud repeats.
    let mut burst = vec![0.0f32; 400_000];
    burst[..4_800].copy_from_slice(&noise.noise(4_800, 0.5));
    let ringing = EchoParams { mix: 1.0, feedback: 0.9, delay_s: 0.05, tone_hz: 20_000.0, low_cut_hz: 20.0, ..single };
    let ringing_case = (
        burst,
        vec![
            (id::MIX, 1.0),
            (id::FEEDBACK, 0.9),
            (id::SYNC, 0.0),
            (id::TIME, 0.05),
            (id::TONE, 20_000.0),
            (id::LOW_CUT, 20.0),
        ],
        vec![],
        ringing,
        vec![],
    );
    for (name, (input, params, events, first, changes)) in
        [("bursts", bursts_case), ("gliding delay", gliding_case), ("feedback 0.9", ringing_case)]
    {
        let sleeping = render_in_blocks(&params, &input, &events, &[512])?;
        let awake = never_sleeping(&input, first, &changes);
        let worst = sleeping.iter().zip(&awake).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let silent_tail = sleeping.iter().rposition(|&v| v != 0.0).map_or(0, |i| input.len() - 1 - i);
        println!("{name}: largest difference {worst:.2e} (input peak 0.5); the last {silent_tail} samples asleep");
        assert!(worst <= 0.5 * 1e-4, "{name}: {worst}");
        assert!(silent_tail > 0, "{name}: the effect never went to sleep");
    }
    Ok(())
}
