//! Throughput of TrioEcho's DSP: 10 s of stereo noise at 48 kHz in blocks of 256, with a
//! noise sidechain ducking the echoes, several rounds, median reported as nanoseconds per
//! stereo frame and as a share of one core. A plain copy of the same frames (what a
//! pass-through effect does) is measured in the same run, as a reference that is robust
//! to machine noise.

use std::hint::black_box;
use std::time::{Duration, Instant};

use trio_echo_engine::echo::{Echo, EchoParams};
use trio_host::conformance::noise;

const SAMPLE_RATE: f64 = 48_000.0;
const FRAMES: usize = 48_000 * 10;
const BLOCK: usize = 256;
const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One round: `process` over every block of `left`/`right` (copied first, as a host's
/// buffers would be filled).
fn round(echo: &mut Echo, inputs: &[Vec<f32>; 3], out: &mut [Vec<f32>; 2]) -> Duration {
    let [l, r] = out;
    l.copy_from_slice(&inputs[0]);
    r.copy_from_slice(&inputs[1]);
    let start = Instant::now();
    let mut from = 0;
    while from < FRAMES {
        let to = (from + BLOCK).min(FRAMES);
        echo.process(&mut [&mut l[..], &mut r[..]], &[&inputs[2][..]], from, to);
        from = to;
    }
    let t = start.elapsed();
    black_box(&out);
    t
}

/// The reference: the same frames copied block by block.
fn copy_round(inputs: &[Vec<f32>; 3], out: &mut [Vec<f32>; 2]) -> Duration {
    let start = Instant::now();
    let mut from = 0;
    while from < FRAMES {
        let to = (from + BLOCK).min(FRAMES);
        for (o, i) in out.iter_mut().zip(inputs) {
            o[from..to].copy_from_slice(black_box(&i[from..to]));
        }
        from = to;
    }
    let t = start.elapsed();
    black_box(&out);
    t
}

fn main() {
    let inputs = [noise(FRAMES, 0.5, 1), noise(FRAMES, 0.5, 2), noise(FRAMES, 0.5, 3)];
    let mut out = [vec![0.0f32; FRAMES], vec![0.0f32; FRAMES]];
    let mut echo = Echo::new(SAMPLE_RATE);
    echo.set_params(&EchoParams { duck: 0.5, duck_threshold_db: -20.0, ..EchoParams::default() });
    echo.reset();
    let (mut dsp, mut copy) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        dsp.push(round(&mut echo, &inputs, &mut out));
        copy.push(copy_round(&inputs, &mut out));
    }
    let per_frame = |d: Duration| d.as_nanos() as f64 / FRAMES as f64;
    let (ns, reference) = (per_frame(median(dsp)), per_frame(median(copy)));
    println!(
        "TrioEcho, stereo with sidechain ducking, blocks of {BLOCK}: {ns:.1} ns per frame, {:.2} % of one core at \
         48 kHz; a plain copy: {reference:.2} ns per frame ({:.0}x)",
        ns * SAMPLE_RATE / 1e7,
        ns / reference
    );
}
