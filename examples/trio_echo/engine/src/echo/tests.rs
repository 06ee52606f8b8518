//! Measurements of [`Echo`]. Each test prints its figure (`cargo test -- --nocapture`).

use trio_dsp::buffer::gain_to_db;
use trio_echo_common::delay_seconds;

use super::*;

const SR: f64 = 48_000.0;
/// The default lookahead (5 ms) at 48 kHz.
const L: usize = 240;

/// A deterministic noise generator (uniform in `-1..1`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn noise(&mut self, n: usize, amplitude: f32) -> Vec<f32> {
        (0..n).map(|_| amplitude * self.next()).collect()
    }
}

fn echo_with(p: EchoParams) -> Echo {
    let mut e = Echo::new(SR);
    e.set_params(&p);
    e.reset();
    e
}

/// Mix 100 %, no feedback: the output is the echo alone.
fn wet_only() -> EchoParams {
    EchoParams { mix: 1.0, feedback: 0.0, ..EchoParams::default() }
}

/// Runs stereo `left`/`right` (and an optional sidechain) through `e` in blocks of 256.
fn run(e: &mut Echo, left: &[f32], right: &[f32], side: &[&[f32]]) -> (Vec<f32>, Vec<f32>) {
    let (mut l, mut r) = (left.to_vec(), right.to_vec());
    let mut from = 0;
    while from < l.len() {
        let to = (from + 256).min(l.len());
        let side_block: Vec<&[f32]> = side.iter().map(|s| &s[..]).collect();
        e.process(&mut [&mut l[..], &mut r[..]], &side_block, from, to);
        from = to;
    }
    (l, r)
}

fn run_mono(e: &mut Echo, x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    e.process(&mut [&mut y[..]], &[], 0, x.len());
    y
}

fn impulse(n: usize, at: usize, value: f32) -> Vec<f32> {
    let mut x = vec![0.0; n];
    x[at] = value;
    x
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

fn sine(n: usize, hz: f64, amplitude: f32) -> Vec<f32> {
    (0..n).map(|i| amplitude * (std::f64::consts::TAU * hz * i as f64 / SR).sin() as f32).collect()
}

#[test]
fn an_impulse_comes_back_on_the_exact_sample() {
    let mut e = echo_with(EchoParams { delay_s: 0.25, ..wet_only() });
    assert_eq!(e.latency(), L);
    assert_eq!(e.glide().value(), 12_000.0);
    let n = 13_000;
    let (l, r) = run(&mut e, &impulse(n, 100, 0.5), &impulse(n, 200, -0.25), &[]);
    for (i, (&a, &b)) in l.iter().zip(&r).enumerate() {
        let want_l = if i == 100 + 12_000 + L { 0.5 } else { 0.0 };
        let want_r = if i == 200 + 12_000 + L { -0.25 } else { 0.0 };
        assert_eq!((a, b), (want_l, want_r), "sample {i}");
    }
    println!("impulse at 100 -> echo at {} (12000 + lookahead {L}), exact", 100 + 12_000 + L);

    // At the default Mix (35 %), the dry impulse after the latency and the echo after
    // the delay and the latency, and nothing else.
    let mut e = echo_with(EchoParams { delay_s: 0.25, feedback: 0.0, ..EchoParams::default() });
    let (l, _) = run(&mut e, &impulse(n, 100, 0.5), &vec![0.0; n], &[]);
    let nonzero: Vec<(usize, f32)> = l.iter().copied().enumerate().filter(|&(_, v)| v != 0.0).collect();
    assert_eq!(nonzero, [(100 + L, 0.5 + 0.35 * (0.0 - 0.5)), (100 + 12_000 + L, 0.35 * 0.5)]);
}

#[test]
fn sync_at_120_bpm_eighth_is_12000_samples() {
    let d = delay_seconds(true, 0.375, 1, Some(120.0));
    let mut e = echo_with(EchoParams { delay_s: d, ..wet_only() });
    assert_eq!(e.delay_samples(d), 12_000.0);
    let y = run_mono(&mut e, &impulse(12_400, 0, 0.5));
    assert_eq!(y.iter().position(|&v| v != 0.0), Some(12_000 + L));
    // The other divisions at 120 BPM, in samples at 48 kHz.
    let want = [24_000.0, 12_000.0, 18_000.0, 6_000.0, 16_000.0, 8_000.0];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(e.delay_samples(delay_seconds(true, 0.375, i, Some(120.0))), *w, "division {i}");
    }
    // Without a tempo the free time is used.
    assert_eq!(e.delay_samples(delay_seconds(true, 0.375, 1, None)), 18_000.0);
}

#[test]
fn mix_zero_is_the_input_delayed_bit_for_bit() {
    let mut rng = Lcg(7);
    let n = 48_000;
    let amp = db_to_gain(-12.0);
    let (left, right) = (rng.noise(n, amp), rng.noise(n, amp));
    let side = rng.noise(n, 1.0);
    // Everything else busy: long feedback, ducking on a loud key.
    let p = EchoParams {
        mix: 0.0,
        delay_s: 0.1,
        feedback: 0.9,
        duck: 1.0,
        duck_threshold_db: -40.0,
        ..EchoParams::default()
    };
    for key in [&[][..], &[&side[..]][..]] {
        let mut e = echo_with(p);
        let (l, r) = run(&mut e, &left, &right, key);
        for i in 0..n {
            let (wl, wr) = if i >= L { (left[i - L], right[i - L]) } else { (0.0, 0.0) };
            assert_eq!((l[i].to_bits(), r[i].to_bits()), (wl.to_bits(), wr.to_bits()), "sample {i}");
        }
    }
    println!("mix 0 %: noise at -12 dBFS comes out delayed by {L} samples, bit for bit");
}

#[test]
fn feedback_half_decays_6_02_db_per_repeat() {
    // A 1 kHz burst (20 ms, Hann window) well inside both filters' pass bands.
    let burst_len = 960;
    let n = 12_000 * 8;
    let mut x = vec![0.0f32; n];
    for (i, v) in x.iter_mut().take(burst_len).enumerate() {
        let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / burst_len as f64).cos();
        *v = (0.5 * w * (std::f64::consts::TAU * 1000.0 * i as f64 / SR).sin()) as f32;
    }
    let p = EchoParams {
        mix: 1.0,
        delay_s: 0.25,
        feedback: 0.5,
        tone_hz: 20_000.0,
        low_cut_hz: 20.0,
        ..Default::default()
    };
    let mut e = echo_with(p);
    let y = run_mono(&mut e, &x);
    let window = |k: usize| {
        let start = k * 12_000 + L - 1000;
        energy(&y[start..start + 12_000])
    };
    let mut worst = 0.0f64;
    let mut steps = Vec::new();
    for k in 1..7 {
        let step = 10.0 * (window(k + 1) / window(k)).log10();
        worst = worst.max((step + 6.0206).abs());
        steps.push(format!("{step:.3}"));
    }
    println!("feedback 50 %: decay per repeat {} dB (worst deviation from -6.02 dB: {worst:.4} dB)", steps.join(", "));
    assert!(worst < 0.2, "{steps:?}");
    // The first echo is the burst itself.
    assert!((10.0 * (window(1) / energy(&x)).log10()).abs() < 1e-4);
}

#[test]
fn feedback_filters_darken_and_thin_the_repeats() {
    // Tone at 1 kHz: a 5 kHz burst loses far more per repeat than a 300 Hz one; Low Cut
    // at 1 kHz: the other way round.
    let burst = |hz: f64| {
        let mut x = vec![0.0f32; 12_000 * 4];
        for (i, v) in x.iter_mut().take(960).enumerate() {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / 960.0).cos();
            *v = (0.5 * w * (std::f64::consts::TAU * hz * i as f64 / SR).sin()) as f32;
        }
        x
    };
    let decay = |p: EchoParams, hz: f64| {
        let mut e = echo_with(EchoParams { mix: 1.0, delay_s: 0.25, feedback: 0.9, ..p });
        let y = run_mono(&mut e, &burst(hz));
        let w = |k: usize| energy(&y[k * 12_000 + L - 1000..k * 12_000 + L + 11_000]);
        10.0 * (w(2) / w(1)).log10()
    };
    let dark = EchoParams { tone_hz: 1000.0, low_cut_hz: 20.0, ..Default::default() };
    let thin = EchoParams { tone_hz: 20_000.0, low_cut_hz: 1000.0, ..Default::default() };
    let (d_hi, d_lo) = (decay(dark, 5000.0), decay(dark, 300.0));
    let (t_hi, t_lo) = (decay(thin, 5000.0), decay(thin, 300.0));
    println!(
        "tone 1 kHz: 5 kHz repeat {d_hi:.1} dB, 300 Hz {d_lo:.1} dB; low cut 1 kHz: 5 kHz {t_hi:.1} dB, 300 Hz {t_lo:.1} dB"
    );
    assert!(d_hi < -25.0 && d_lo > -2.0);
    assert!(t_lo < -18.0 && t_hi > -2.0);
}

#[test]
fn ducker_removes_the_echoes_under_a_loud_key_and_duck_zero_changes_nothing() {
    let n = 48_000;
    let input = sine(n, 440.0, 0.25);
    let mut rng = Lcg(3);
    let key = rng.noise(n, 0.5);
    let base = EchoParams { mix: 1.0, delay_s: 0.1, feedback: 0.3, duck_threshold_db: -30.0, ..Default::default() };
    let wet = |duck: f32, side: &[&[f32]]| {
        let mut e = echo_with(EchoParams { duck, ..base });
        let (l, _) = run(&mut e, &input, &input, side);
        l
    };
    let free = wet(0.0, &[]);
    // Measured over the second half, once the echoes and the envelope have settled.
    let half = n / 2..n;
    let level = |y: &[f32]| energy(&y[half.clone()]).sqrt();
    let full = wet(1.0, &[&key]);
    let half_duck = wet(0.5, &[&key]);
    let reduction_full = db(level(&free) / level(&full).max(1e-30));
    let reduction_half = db(level(&free) / level(&half_duck));
    println!(
        "ducker, key 0.5 noise, threshold -30 dB: Duck 100 % -> {}, Duck 50 % -> {reduction_half:.2} dB",
        if level(&full) == 0.0 {
            "wet removed entirely (gain 0)".to_owned()
        } else {
            format!("{reduction_full:.1} dB")
        }
    );
    assert!(reduction_full >= 30.0);
    assert!((reduction_half - 6.0206).abs() < 0.01);
    // A stereo key of two equal channels is the same key.
    assert_eq!(wet(1.0, &[&key, &key]), full);
    // Duck 0 %: bit for bit the same as with no key at all.
    let zero = wet(0.0, &[&key]);
    assert!(zero.iter().zip(&free).all(|(a, b)| a.to_bits() == b.to_bits()));
    // A key below the threshold does nothing either.
    let quiet = rng.noise(n, db_to_gain(-40.0));
    let under = wet(1.0, &[&quiet]);
    assert!(under.iter().zip(&free).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn without_a_sidechain_the_input_ducks_its_own_echoes() {
    // A loud phrase, then silence: the echoes are held down while it plays and come back
    // after it, within a few release times.
    let n = 48_000;
    let mut x = sine(n, 440.0, 0.5);
    for v in &mut x[12_000..] {
        *v = 0.0;
    }
    let p = EchoParams { mix: 1.0, delay_s: 0.1, feedback: 0.0, duck: 1.0, duck_release_s: 0.02, ..Default::default() };
    let y = run_mono(&mut echo_with(p), &x);
    let plain = run_mono(&mut echo_with(EchoParams { duck: 0.0, ..p }), &x);
    // While the input plays (after the first echo arrived): ducked away.
    let during = energy(&y[6000 + L..12_000]).sqrt() / energy(&plain[6000 + L..12_000]).sqrt();
    // The echo of the phrase's end, after the input stopped: back.
    let after = energy(&y[15_000 + L..16_800 + L]).sqrt() / energy(&plain[15_000 + L..16_800 + L]).sqrt();
    println!("self-ducking: echoes {:.1} dB while the input plays, {:.2} dB after it stops", db(during), db(after));
    assert!(during < db_to_gain(-30.0) as f64);
    assert!(db(after) > -0.5);
}

#[test]
fn the_limiter_keeps_a_12_dbfs_burst_below_the_ceiling() {
    let n = 48_000;
    let mut x = vec![0.0f32; n];
    let hot = sine(4800, 1000.0, db_to_gain(12.0));
    x[1000..5800].copy_from_slice(&hot);
    for ceiling_db in [-0.3f32, -6.0, -24.0] {
        let p = EchoParams { ceiling_db, delay_s: 0.05, feedback: 0.8, ..Default::default() };
        let (l, r) = run(&mut echo_with(p), &x, &x, &[]);
        let top = peak(&l).max(peak(&r));
        let ceiling = db_to_gain(ceiling_db);
        println!(
            "+12 dBFS burst, ceiling {ceiling_db} dB: output peak {:.4} dBFS (ceiling x (1 {:+.1e}))",
            gain_to_db(top),
            f64::from(top) / f64::from(ceiling) - 1.0
        );
        assert!(top <= ceiling * (1.0 + 1e-6), "{top} vs {ceiling}");
        assert!(top > ceiling * 0.99);
    }
}

#[test]
fn a_delay_time_change_glides_without_a_click() {
    let n = 48_000 * 3;
    let x = sine(n, 440.0, 0.5);
    let steady_step = 0.5 * std::f64::consts::TAU * 440.0 / SR;
    let max_step = |y: &[f32]| y.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max) as f64;
    let render = |hard: bool| {
        let mut e = echo_with(EchoParams { delay_s: 0.25, ..wet_only() });
        let mut y = x.clone();
        let (a, b) = y.split_at_mut(48_000);
        e.process(&mut [a], &[], 0, 48_000);
        // Shorter, then longer, mid-stream.
        e.set_params(&EchoParams { delay_s: 0.1013, ..wet_only() });
        if hard {
            e.snap_delay();
        }
        let (b1, b2) = b.split_at_mut(48_000);
        e.process(&mut [b1], &[], 0, 48_000);
        assert_eq!(e.glide().value(), e.glide().target(), "settled within a second");
        e.set_params(&EchoParams { delay_s: 0.3377, ..wet_only() });
        if hard {
            e.snap_delay();
        }
        e.process(&mut [b2], &[], 0, 48_000);
        (y, e.glide().value())
    };
    let (smooth, settled) = render(false);
    let (hard, _) = render(true);
    let (glide_step, hard_step) = (max_step(&smooth[12_000 + L..]), max_step(&hard[12_000 + L..]));
    println!(
        "delay 250 -> 101.3 -> 337.7 ms on a 440 Hz sine at 0.5: largest step {glide_step:.4} gliding, \
         {hard_step:.4} switched hard, {steady_step:.4} steady"
    );
    // The read position moves at most 1.5 times as fast: a step at most 1.5 times the
    // steady one (plus the interpolation's error).
    assert!(glide_step <= 1.5 * steady_step * 1.01 + 1e-4, "{glide_step}");
    assert!(hard_step > 5.0 * glide_step, "{hard_step}");
    // At rest on the new time, the echo is the input delayed by whole samples again.
    let d = (0.3377f64 * SR).round() as usize;
    assert_eq!(settled, d as f64);
    for i in n - 2000..n {
        assert_eq!(smooth[i], x[i - d - L], "sample {i}");
    }
}

#[test]
fn the_two_second_maximum_is_honoured() {
    for (sr, want) in [(48_000.0, 96_000usize), (44_100.0, 88_200), (192_000.0, 384_000)] {
        let mut e = Echo::new(sr);
        // Longer than the maximum: held at 2 s.
        e.set_params(&EchoParams { delay_s: 5.0, ..wet_only() });
        e.reset();
        let lookahead = (0.005 * sr).round() as usize;
        assert_eq!(e.latency(), lookahead);
        let y = run_mono(&mut e, &impulse(want + lookahead + 100, 0, 0.5));
        assert_eq!(y.iter().position(|&v| v != 0.0), Some(want + lookahead), "{sr} Hz");
        assert_eq!(y[want + lookahead], 0.5);
    }
    println!("2 s maximum: echo at 96000 / 88200 / 384000 samples at 48 / 44.1 / 192 kHz");
}

#[test]
fn nan_and_infinite_input_do_not_poison_the_state() {
    let mut rng = Lcg(11);
    let p = EchoParams { delay_s: 0.05, feedback: 0.7, mix: 0.5, ..Default::default() };
    let mut garbage = vec![0.0f32; 4800];
    for (i, v) in garbage.iter_mut().enumerate() {
        *v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN][i % 4];
    }
    let after = rng.noise(48_000, 0.3);
    let mut poisoned = echo_with(p);
    let mut clean = echo_with(p);
    let (g, _) = run(&mut poisoned, &garbage, &garbage, &[&garbage]);
    assert!(g.iter().all(|v| *v == 0.0), "non-finite input counts as silence");
    run(&mut clean, &vec![0.0; 4800], &vec![0.0; 4800], &[]);
    let (a, _) = run(&mut poisoned, &after, &after, &[]);
    let (b, _) = run(&mut clean, &after, &after, &[]);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));

    // Huge finite input is clamped; the output stays finite and under the ceiling, and a
    // reset brings back the state of a new effect, bit for bit.
    let mut hot = vec![1e30f32; 4800];
    hot[7] = -f32::MAX;
    let (h, _) = run(&mut poisoned, &hot, &hot, &[]);
    assert!(h.iter().all(|v| v.is_finite() && v.abs() <= db_to_gain(-0.3) * (1.0 + 1e-6)));
    poisoned.reset();
    let (a, _) = run(&mut poisoned, &after, &after, &[]);
    let (b, _) = run(&mut echo_with(p), &after, &after, &[]);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    println!("NaN/inf input: counted as silence; 1e30 input clamped, output finite and under the ceiling");
}

#[test]
fn parameters_are_sanitised() {
    let nan = EchoParams {
        mix: f32::NAN,
        delay_s: f64::NAN,
        feedback: f32::INFINITY,
        tone_hz: f32::NEG_INFINITY,
        low_cut_hz: f32::NAN,
        duck: 7.0,
        duck_threshold_db: f32::NAN,
        duck_release_s: -1.0,
        ceiling_db: 40.0,
        lookahead_s: f64::INFINITY,
        bypass: false,
    };
    let mut e = Echo::new(f64::NAN);
    e.set_params(&nan);
    let s = *e.params();
    assert_eq!((s.mix, s.delay_s, s.feedback, s.tone_hz), (0.35, 0.375, 0.95, 200.0));
    assert_eq!((s.low_cut_hz, s.duck, s.duck_threshold_db, s.duck_release_s), (80.0, 1.0, -30.0, 0.01));
    assert_eq!((s.ceiling_db, s.lookahead_s), (0.0, 0.02));
    assert_eq!(e.latency(), 960);
    let y = run_mono(&mut e, &Lcg(1).noise(10_000, 1.0));
    assert!(y.iter().all(|v| v.is_finite() && v.abs() <= 1.0 + 1e-6));
}

#[test]
fn the_tail_covers_the_repeats_down_to_minus_80_db() {
    let tail =
        |feedback: f32, delay_s: f64| echo_with(EchoParams { feedback, delay_s, ..Default::default() }).tail_samples();
    // 0.5^14 < 1e-4 <= 0.5^13: 14 repeats after the first echo.
    assert_eq!(tail(0.5, 0.25), 12_000 * 15 + L as u32);
    assert_eq!(tail(0.0, 0.25), 12_000 + L as u32);
    assert_eq!(tail(0.95, 2.0), 30 * 48_000 + L as u32);
    // Measured: after the reported tail the output is below -80 dB of the impulse.
    let p = EchoParams {
        mix: 1.0,
        delay_s: 0.25,
        feedback: 0.5,
        tone_hz: 20_000.0,
        low_cut_hz: 20.0,
        ..Default::default()
    };
    let mut e = echo_with(p);
    let t = e.tail_samples() as usize;
    let y = run_mono(&mut e, &impulse(t + 24_000, 0, 0.5));
    let rest = peak(&y[t..]);
    println!(
        "tail at feedback 50 %, 250 ms: {t} samples; peak after it {:.1} dB below the impulse",
        -db(f64::from(rest / 0.5))
    );
    assert!(rest <= 0.5 * 1e-4);
}

#[test]
fn bypass_fades_to_the_latency_delayed_input() {
    let n = 48_000;
    let x = sine(n, 440.0, 0.5);
    let mut rng = Lcg(5);
    let noise = rng.noise(n, 0.5);
    let p = EchoParams { delay_s: 0.1, ..wet_only() };
    let mut e = echo_with(p);
    let mut y = x.clone();
    e.process(&mut [&mut y[..]], &[], 0, 24_000);
    e.set_params(&EchoParams { bypass: true, ..p });
    e.process(&mut [&mut y[..]], &[], 24_000, n);
    // From 10 ms after the switch: the input delayed by the latency, bit for bit.
    for i in 24_000 + 480..n {
        assert_eq!(y[i], x[i - L], "sample {i}");
    }
    let step = y.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max);
    let steady = (0.5 * std::f64::consts::TAU * 440.0 / SR) as f32;
    println!("bypass fade: largest step {step:.4} (a steady 440 Hz sine at 0.5: {steady:.4})");
    assert!(step < steady * 1.1);
    // Bypassed noise above the ceiling passes untouched (no limiting) and with feedback on.
    let mut e = echo_with(EchoParams { bypass: true, feedback: 0.9, ceiling_db: -24.0, ..p });
    let loud: Vec<f32> = noise.iter().map(|v| v * 3.0).collect();
    let (l, _) = run(&mut e, &loud, &loud, &[]);
    assert!((L..n).all(|i| l[i] == loud[i - L]));
    // And back: after the fade the echo returns (it kept running while bypassed).
    e.set_params(&EchoParams { bypass: false, feedback: 0.9, ceiling_db: -24.0, ..p });
    let (l, _) = run(&mut e, &vec![0.0; 9600], &vec![0.0; 9600], &[]);
    assert!(peak(&l[1000..]) > 0.01);
}

#[test]
fn a_lookahead_change_moves_the_latency() {
    let mut e = echo_with(wet_only());
    assert!(!e.set_params(&EchoParams { lookahead_s: 0.005, ..wet_only() }));
    assert!(e.set_params(&EchoParams { lookahead_s: 0.0, ..wet_only() }));
    assert_eq!(e.latency(), 0);
    assert!(e.set_params(&EchoParams { lookahead_s: 0.02, ..wet_only() }));
    assert_eq!(e.latency(), 960);
    // Bypassed, the output is the input delayed by the new latency at once.
    e.set_params(&EchoParams { lookahead_s: 0.02, bypass: true, ..wet_only() });
    e.snap();
    let x = Lcg(2).noise(4000, 0.5);
    let y = run_mono(&mut e, &x);
    assert!((960..4000).all(|i| y[i] == x[i - 960]));
}

#[test]
fn mono_blocks_and_extra_channels() {
    let mut rng = Lcg(9);
    let n = 30_000;
    let x = rng.noise(n, 0.9);
    let p = EchoParams { delay_s: 0.13, feedback: 0.6, tone_hz: 3000.0, duck: 0.5, ..Default::default() };
    // Mono is the left channel of a stereo run with equal channels (the limiter is linked).
    let mono = run_mono(&mut echo_with(p), &x);
    let (l, r) = run(&mut echo_with(p), &x, &x, &[]);
    assert_eq!(mono, l);
    assert_eq!(l, r);
    // Any block split gives the same output.
    let mut e = echo_with(p);
    let mut y = x.clone();
    let mut from = 0;
    for size in [1usize, 7, 64, 1000, 3, 4096].iter().cycle() {
        if from >= n {
            break;
        }
        let to = (from + size).min(n);
        e.process(&mut [&mut y[..]], &[], from, to);
        from = to;
    }
    assert_eq!(y, mono);
    // A third channel is silenced; an empty bus is left alone.
    let mut e = echo_with(p);
    let (mut a, mut b, mut c) = (x.clone(), x.clone(), x.clone());
    e.process(&mut [&mut a[..], &mut b[..], &mut c[..]], &[], 0, n);
    assert_eq!(a, l);
    assert!(c.iter().all(|v| *v == 0.0));
    e.process(&mut [], &[], 0, n);
}

#[test]
fn the_glide_arrives_without_overshoot() {
    for (from, to) in [(12_000.0, 16_210.0), (12_000.0, 4862.0), (96_000.0, 48.0), (100.0, 101.0), (100.0, 99.5)] {
        let mut g = Glide::new(from, SR);
        g.set_target(to);
        let mut n = 0usize;
        let mut last = from;
        while g.next_value() != to {
            let v = g.value();
            let rate = (v - last).abs();
            assert!(rate <= MAX_GLIDE_RATE + 1e-9 && (v - to).abs() < (last - to).abs(), "{from}->{to} at {n}: {v}");
            last = v;
            n += 1;
            assert!(n < 48_000 * 10, "{from} -> {to} never arrives");
        }
        println!("glide {from} -> {to} samples: settled after {n} samples ({:.0} ms)", n as f64 / 48.0);
        if (to - from).abs() < 5000.0 {
            assert!(n < 24_000, "{n}");
        }
    }
}

#[test]
fn quiet_after_covers_every_repeat_above_minus_80_db_without_a_cap() {
    // Feedback 0.95, 2 s: the repeats stay above -80 dB for minutes; what the host is told
    // stops at 30 s, when the effect may stop working does not.
    let mut e = echo_with(EchoParams { feedback: 0.95, delay_s: 2.0, ..EchoParams::default() });
    e.reset();
    let delay = 2.0 * SR;
    let repeats = ((TAIL_FLOOR.ln() + (1.0f64 - 0.95).ln()) / 0.95f64.ln()).ceil();
    assert!(e.tail_samples() as f64 <= MAX_TAIL_S * SR + e.latency() as f64);
    let quiet = e.quiet_after() as f64;
    println!("feedback 0.95, 2 s: quiet after {:.1} s ({repeats} repeats)", quiet / SR);
    assert!(quiet >= (delay + 2.0) * (1.0 + repeats) && quiet > 300.0 * SR, "{quiet}");
    // The bound keeps the longest delay and highest feedback set since the last reset.
    e.set_params(&EchoParams { feedback: 0.1, delay_s: 0.01, ..EchoParams::default() });
    assert_eq!(e.quiet_after() as f64, quiet);
    e.reset();
    assert!((e.quiet_after() as f64) < 0.1 * SR);
}
