//! Render benchmark of the synthesizer DSP.
//!
//! Renders 10 s at 48 kHz in 512-sample blocks with 16 and 128 held voices
//! (saw, default parameters), several rounds each, and reports the median
//! as nanoseconds per voice-sample and as a share of one core; then one to four
//! held voices and a played line of single notes, against the marginal voice. A naive saw
//! (no band limiting, no filter, no envelope) over the same voices and
//! samples is measured in the same run as a reference that is robust to
//! machine noise.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rt_engine::dsp::Synth;

const SAMPLE_RATE: f32 = 48_000.0;
const BLOCK: usize = 512;
const SECONDS: f32 = 10.0;
const ROUNDS: usize = 7;

fn blocks() -> usize {
    (SAMPLE_RATE * SECONDS) as usize / BLOCK
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Notes of a chord of `voices` notes spread over the keyboard.
fn chord(voices: usize) -> Vec<u8> {
    (0..voices).map(|i| (24 + (i * 7) % 96) as u8).collect()
}

fn run_synth(voices: usize) -> Duration {
    let mut synth = Synth::new(SAMPLE_RATE, BLOCK);
    for (i, &n) in chord(voices).iter().enumerate() {
        synth.note_on(n, 0.8, i as i32);
    }
    assert_eq!(synth.active_voices(), voices);
    let mut left = vec![0.0f32; BLOCK];
    let mut right = vec![0.0f32; BLOCK];
    let start = Instant::now();
    for _ in 0..blocks() {
        synth.render(black_box(&mut left), black_box(&mut right));
        black_box((&left, &right));
    }
    let t = start.elapsed();
    assert_eq!(synth.active_voices(), voices);
    t
}

/// A line of single notes, one every 256 ms (24 blocks), each released when the next
/// starts: with the default 300 ms release about two voices sound, one in attack or
/// decay and one releasing, so the filter coefficients move at every control tick.
fn run_line() -> Duration {
    let mut synth = Synth::new(SAMPLE_RATE, BLOCK);
    let mut left = vec![0.0f32; BLOCK];
    let mut right = vec![0.0f32; BLOCK];
    let start = Instant::now();
    for b in 0..blocks() {
        if b % 24 == 0 {
            synth.all_notes_off();
            synth.note_on(48 + (b / 24 % 12) as u8, 0.8, -1);
        }
        synth.render(black_box(&mut left), black_box(&mut right));
        black_box((&left, &right));
    }
    start.elapsed()
}

/// A naive saw per voice, voice by voice over each block, summed: the
/// cheapest oscillator loop a synth can run.
fn run_naive(voices: usize) -> Duration {
    let mut phases = vec![0.0f32; voices];
    let incs: Vec<f32> =
        chord(voices).iter().map(|&n| 440.0 * 2f32.powf((f32::from(n) - 69.0) / 12.0) / SAMPLE_RATE).collect();
    let mut left = vec![0.0f32; BLOCK];
    let mut right = vec![0.0f32; BLOCK];
    let start = Instant::now();
    for _ in 0..blocks() {
        left.fill(0.0);
        for (p, &inc) in phases.iter_mut().zip(black_box(&incs)) {
            let mut ph = *p;
            for o in left.iter_mut() {
                *o += 2.0 * ph - 1.0;
                ph += inc;
                if ph >= 1.0 {
                    ph -= 1.0;
                }
            }
            *p = ph;
        }
        right.copy_from_slice(&left);
        black_box((&left, &right));
    }
    start.elapsed()
}

fn main() {
    let audio_s = (blocks() * BLOCK) as f64 / f64::from(SAMPLE_RATE);
    let samples = (blocks() * BLOCK) as f64;
    println!(
        "rt_engine synth render: {audio_s:.2} s at {SAMPLE_RATE} Hz, {BLOCK}-sample blocks, \
         median of {ROUNDS} rounds"
    );
    let mut sixteen_ms = 0.0;
    for voices in [16usize, 128] {
        // Warm up.
        run_synth(voices);
        run_naive(voices);
        let mut ours = Vec::new();
        let mut naive = Vec::new();
        for _ in 0..ROUNDS {
            ours.push(run_synth(voices));
            naive.push(run_naive(voices));
        }
        let ours = median(ours).as_secs_f64();
        let naive = median(naive).as_secs_f64();
        let vs = samples * voices as f64;
        println!("{voices:>4} voices:");
        println!(
            "  synth      : {:8.2} ms total, {:6.3} ns/voice-sample, {:6.2} % of one core",
            ours * 1e3,
            ours * 1e9 / vs,
            ours / audio_s * 100.0
        );
        println!(
            "  naive saw  : {:8.2} ms total, {:6.3} ns/voice-sample, {:6.2} % of one core \
             (same-run reference; synth/naive = {:.2}x)",
            naive * 1e3,
            naive * 1e9 / vs,
            naive / audio_s * 100.0,
            ours / naive
        );
        if voices == 16 {
            sixteen_ms = ours * 1e3;
        }
    }
    // One voice against the marginal voice at 16: what a voice costs alone, where it
    // cannot share its vector with others.
    let median_of = |voices: usize| {
        run_synth(voices);
        median((0..ROUNDS).map(|_| run_synth(voices)).collect()).as_secs_f64()
    };
    let (v0, v1, v16) = (median_of(0), median_of(1), median_of(16));
    let one = (v1 - v0) * 1e9 / samples;
    let marginal = (v16 - v1) * 1e9 / samples / 15.0;
    println!(
        "one voice: {one:.2} ns/sample over silence ({:.2} ns/sample), marginal voice at 16: {marginal:.2} \
         ns/sample; one voice = {:.2}x the marginal one",
        v0 * 1e9 / samples,
        one / marginal
    );
    // A few voices, held, and a played line: how the cost grows from one voice.
    for voices in 2..=4 {
        let per_voice = (median_of(voices) - v0) * 1e9 / samples / voices as f64;
        println!(
            "{voices} held voices: {per_voice:.2} ns/sample per voice ({:.2}x the marginal one)",
            per_voice / marginal
        );
    }
    run_line();
    let line = (median((0..ROUNDS).map(|_| run_line()).collect()).as_secs_f64() - v0) * 1e9 / samples;
    println!("a line of single notes, one every 256 ms: {line:.2} ns/sample ({:.2}x one held voice)", line / one);
    // The comparison with nih-plug is measured in one process by `cargo xtask bench`.
    println!("16-note chord, 10 s: {sixteen_ms:.2} ms (against nih-plug side by side: cargo xtask bench)");
}
