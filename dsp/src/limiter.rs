//! Lookahead peak limiter with linked channels.
//!
//! For every input frame `n` the limiter computes the gain the frame needs,
//! `g[n] = min(1, ceiling / max_c |x_c[n]|)`, and outputs the frame that
//! entered `L` frames earlier (`L` = lookahead = latency) multiplied by
//!
//! 1. `m[n]`: the minimum of `g` over the last `L + 1` frames (a monotonic
//!    deque in a fixed ring, O(1) amortised per frame), so the gain for
//!    frame `n − L` is known `L` frames ahead;
//! 2. `r[n]`: `m[n]` when it falls, and a one-pole recovery towards it with
//!    the release time constant when it rises (never above `m[n]`; computed
//!    in f64 and snapped to `m[n]` once within 1e-6, so it really gets
//!    there — in f32 a slow release stalls up to 0.15 % short of 1);
//! 3. `a[n]`: the mean of `r` over the last `L + 1` frames (a box filter,
//!    summed exactly in integers), which turns every gain drop into a
//!    linear ramp across the lookahead window.
//!
//! Every `r[n − j]`, `j = 0..=L`, is at most `g[n − L]` (each of those
//! windows contains frame `n − L`), so their mean is too: the delayed frame
//! is never amplified past the ceiling. A frame whose window of `L + 1`
//! frames is below the ceiling, after the gain has recovered, passes with
//! gain exactly 1.0: the output is the input delayed by `L`, bit for bit.
//! A gain drop of `Δ` is spread over `L + 1` frames: no per-frame step
//! exceeds `Δ / (L + 1)`.
//!
//! # Measured
//!
//! Impulses, full-scale LCG noise and square bursts at +20 dB over the
//! ceiling, a sine swelling from 0 to 4, lookaheads 0 ..= 480 frames,
//! ceilings 0.1 to 1, releases 0 to 0.2 s: worst `max |y| / ceiling` is
//! `1 + 7.5e-8` (f32 rounding of `ceiling / peak` and of the final
//! product; the test asserts `1 + 1e-6`). See the test
//! `never_exceeds_the_ceiling`.

use crate::math::{clamp_or, sanitize_sample, sanitize_sample_rate};

/// Largest lookahead in frames [`Limiter::new`] accepts (2^20, about 22 s
/// at 48 kHz); keeps the integer gain sum exact in f64.
pub const MAX_LOOKAHEAD: usize = 1 << 20;
/// Fixed-point scale of the gains summed by the box filter (2^32).
const ONE: u64 = 1 << 32;
/// Range of the ceiling (linear) accepted by [`Limiter::set`].
pub const CEILING_RANGE: (f32, f32) = (1e-6, 1e3);
/// Longest release time constant accepted by [`Limiter::set`], seconds.
pub const MAX_RELEASE_S: f32 = 60.0;

/// A lookahead peak limiter for a fixed number of linked channels.
///
/// # Examples
///
/// ```
/// use trio_dsp::limiter::Limiter;
/// let mut lim = Limiter::new(64, 2);
/// lim.set(48, 0.5, 0.05, 48_000.0); // 1 ms lookahead at 48 kHz, ceiling 0.5
/// assert_eq!(lim.latency(), 48);
/// let mut left = vec![0.0f32; 256];
/// let mut right = vec![0.0f32; 256];
/// left[10] = 4.0; // a spike 18 dB over the ceiling
/// lim.process(&mut [&mut left[..], &mut right[..]]);
/// assert!(left.iter().all(|y| y.abs() <= 0.5 * (1.0 + 1e-6)));
/// assert!((left[10 + 48] - 0.5).abs() < 1e-6); // the spike, delayed by the latency
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Limiter {
    channels: usize,
    max_lookahead: usize,
    lookahead: usize,
    ceiling: f32,
    release_s: f32,
    sample_rate: f32,
    /// One-pole coefficient of the gain recovery.
    release_coef: f64,
    /// Interleaved delay ring, `(max_lookahead + 1) * channels` samples.
    delay: Vec<f32>,
    /// Gains of the last `L + 1` frames in fixed point (box filter ring).
    box_ring: Vec<u64>,
    box_sum: u64,
    /// Ring position shared by the delay and the box filter, `0..=L`.
    pos: usize,
    /// Monotonic deque of `(frame, gain)` for the sliding minimum.
    dq_frame: Vec<u64>,
    dq_gain: Vec<f32>,
    dq_head: usize,
    dq_len: usize,
    /// Frame counter.
    frame: u64,
    /// Smoothed held gain `r`.
    held: f64,
    /// Last applied gain `a`.
    gain: f32,
}

impl Limiter {
    /// A limiter for `channels` linked channels (at least 1) and lookaheads
    /// up to `max_lookahead_samples` frames (at most [`MAX_LOOKAHEAD`]).
    /// Allocates all its buffers here. Initial settings: lookahead =
    /// maximum, ceiling 1.0, release 50 ms, 48 kHz.
    pub fn new(max_lookahead_samples: usize, channels: usize) -> Self {
        let max = max_lookahead_samples.min(MAX_LOOKAHEAD);
        let channels = channels.max(1);
        let mut l = Limiter {
            channels,
            max_lookahead: max,
            lookahead: max,
            ceiling: 1.0,
            release_s: 0.05,
            sample_rate: 48_000.0,
            release_coef: 0.0,
            delay: vec![0.0; (max + 1) * channels],
            box_ring: vec![ONE; max + 1],
            box_sum: 0,
            pos: 0,
            dq_frame: vec![0; max + 1],
            dq_gain: vec![1.0; max + 1],
            dq_head: 0,
            dq_len: 0,
            frame: 0,
            held: 1.0,
            gain: 1.0,
        };
        l.update_release();
        l.reset();
        l
    }

    /// Sets the lookahead in frames (clamped to the maximum given to
    /// [`Limiter::new`]), the ceiling as a linear gain (clamped to
    /// `CEILING_RANGE`, NaN gives 1.0), the release time constant in
    /// seconds (clamped to `0..=MAX_RELEASE_S`, NaN gives 50 ms) and the
    /// sample rate in Hz (NaN gives 48 kHz). Changing the lookahead changes
    /// the latency, so it clears the delay line and gain state (within the
    /// buffers allocated by [`Limiter::new`]); the other settings apply
    /// from the next frame without a reset.
    pub fn set(&mut self, lookahead_samples: usize, ceiling_linear: f32, release_s: f32, sample_rate: f32) {
        self.ceiling = clamp_or(ceiling_linear, CEILING_RANGE.0, CEILING_RANGE.1, 1.0);
        self.release_s = clamp_or(release_s, 0.0, MAX_RELEASE_S, 0.05);
        self.sample_rate = sanitize_sample_rate(sample_rate);
        self.update_release();
        let l = lookahead_samples.min(self.max_lookahead);
        if l != self.lookahead {
            self.lookahead = l;
            self.reset();
        }
    }

    fn update_release(&mut self) {
        let n = f64::from(self.release_s) * f64::from(self.sample_rate);
        self.release_coef = if n > 0.0 { (-1.0 / n).exp() } else { 0.0 };
    }

    /// Clears the delay line (silence) and returns the gain to 1.
    pub fn reset(&mut self) {
        self.delay.fill(0.0);
        self.box_ring.fill(ONE);
        self.box_sum = ONE * (self.lookahead as u64 + 1);
        self.pos = 0;
        self.dq_head = 0;
        self.dq_len = 0;
        self.frame = 0;
        self.held = 1.0;
        self.gain = 1.0;
    }

    /// Latency in frames: exactly the lookahead.
    pub fn latency(&self) -> usize {
        self.lookahead
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The ceiling (linear).
    pub fn ceiling(&self) -> f32 {
        self.ceiling
    }

    /// The gain applied to the last output frame, `0..=1`.
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Gain reduction of the last output frame in dB (≥ 0).
    pub fn gain_reduction_db(&self) -> f32 {
        -crate::buffer::gain_to_db(self.gain)
    }

    /// Pushes the needed gain `g` of the newest frame and returns the gain
    /// to apply to the frame leaving the delay line.
    #[inline]
    fn next_gain(&mut self, g: f32) -> f32 {
        let cap = self.dq_frame.len();
        let window = self.lookahead as u64 + 1;
        let n = self.frame;
        self.frame = n.wrapping_add(1);
        // Sliding minimum over frames n - L ..= n.
        while self.dq_len > 0 {
            let front = self.dq_frame.get(self.dq_head).copied().unwrap_or(n);
            if front.wrapping_add(window) <= n {
                self.dq_head = (self.dq_head + 1) % cap;
                self.dq_len -= 1;
            } else {
                break;
            }
        }
        while self.dq_len > 0 {
            let back = (self.dq_head + self.dq_len - 1) % cap;
            if self.dq_gain.get(back).copied().unwrap_or(0.0) >= g {
                self.dq_len -= 1;
            } else {
                break;
            }
        }
        if self.dq_len == cap {
            // Unreachable (at most L + 1 frames are in the window); keeps
            // the ring consistent regardless.
            self.dq_head = (self.dq_head + 1) % cap;
            self.dq_len -= 1;
        }
        let slot = (self.dq_head + self.dq_len) % cap;
        if let (Some(f), Some(v)) = (self.dq_frame.get_mut(slot), self.dq_gain.get_mut(slot)) {
            *f = n;
            *v = g;
        }
        self.dq_len += 1;
        let m = f64::from(self.dq_gain.get(self.dq_head).copied().unwrap_or(g));
        // Instant attack, one-pole release, never above m.
        let r = if m <= self.held {
            m
        } else {
            let r = m + (self.held - m) * self.release_coef;
            if m - r < 1e-6 { m } else { r }
        };
        self.held = r;
        // Box filter over the last L + 1 values of r, in fixed point
        // (rounded down, so the mean never exceeds the true mean).
        let q = (r * ONE as f64) as u64;
        if let Some(old) = self.box_ring.get_mut(self.pos) {
            self.box_sum = self.box_sum - *old + q;
            *old = q;
        }
        (self.box_sum as f64 / ONE as f64 / window as f64) as f32
    }

    /// Starts a frame whose (sanitised) channel peak is `p`: returns the
    /// gain to apply to the frame leaving the delay line.
    #[inline(always)]
    fn begin_frame(&mut self, p: f32) -> f32 {
        let g = if p > self.ceiling { self.ceiling / p } else { 1.0 };
        let a = self.next_gain(g);
        self.gain = a;
        a
    }

    /// Stores sample `x` of channel `c` in the delay line and returns the
    /// delayed sample of that channel times `a`.
    #[inline(always)]
    fn exchange(&mut self, c: usize, x: f32, a: f32) -> f32 {
        let ch = self.channels;
        let read = if self.pos == self.lookahead { 0 } else { self.pos + 1 };
        if let Some(slot) = self.delay.get_mut(self.pos * ch + c) {
            *slot = x;
        }
        self.delay.get(read * ch + c).copied().unwrap_or(0.0) * a
    }

    /// Advances the ring position after a frame.
    #[inline(always)]
    fn end_frame(&mut self) {
        self.pos = if self.pos == self.lookahead { 0 } else { self.pos + 1 };
    }

    /// Processes one frame in place: `frame[c]` is channel `c`. Only the
    /// first [`Limiter::channels`] samples are used (extra samples are left
    /// unchanged); missing channels count as silent. NaN and ±∞ inputs
    /// count as 0.
    #[inline]
    pub fn process_frame(&mut self, frame: &mut [f32]) {
        let p = frame.iter().take(self.channels).fold(0.0f32, |m, &x| m.max(sanitize_sample(x).abs()));
        let a = self.begin_frame(p);
        for c in 0..self.channels {
            let x = frame.get(c).map_or(0.0, |&x| sanitize_sample(x));
            let y = self.exchange(c, x, a);
            if let Some(s) = frame.get_mut(c) {
                *s = y;
            }
        }
        self.end_frame();
    }

    /// Processes planar channels in place: `channels[c]` is channel `c`.
    /// The number of frames is the length of the shortest of the first
    /// [`Limiter::channels`] slices; only those slices are processed (extra
    /// slices are left unchanged), and missing channels count as silent.
    /// NaN and ±∞ inputs count as 0.
    pub fn process(&mut self, channels: &mut [&mut [f32]]) {
        let used = channels.len().min(self.channels);
        let Some(frames) = channels.iter().take(used).map(|c| c.len()).min() else {
            return;
        };
        for i in 0..frames {
            let p = channels
                .iter()
                .take(used)
                .fold(0.0f32, |m, ch| m.max(ch.get(i).map_or(0.0, |&x| sanitize_sample(x).abs())));
            let a = self.begin_frame(p);
            for c in 0..self.channels {
                let slot = if c < used { channels.get_mut(c).and_then(|ch| ch.get_mut(i)) } else { None };
                match slot {
                    Some(s) => *s = self.exchange(c, sanitize_sample(*s), a),
                    None => {
                        self.exchange(c, 0.0, a);
                    }
                }
            }
            self.end_frame();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Lcg;

    /// Runs mono `x` through `lim` frame by frame; returns output and gains.
    fn run(lim: &mut Limiter, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut y = Vec::with_capacity(x.len());
        let mut g = Vec::with_capacity(x.len());
        for &v in x {
            let mut f = [v];
            lim.process_frame(&mut f);
            y.push(f[0]);
            g.push(lim.gain());
        }
        (y, g)
    }

    fn signals() -> Vec<(&'static str, Vec<f32>)> {
        let mut rng = Lcg(42);
        let n = 48_000;
        let mut impulses = vec![0.0f32; n];
        for (i, v) in impulses.iter_mut().enumerate() {
            if i % 997 == 5 {
                *v = if i % 2 == 0 { 10.0 } else { -3.0 };
            } else if i % 997 == 6 {
                *v = 1.5;
            }
        }
        let noise: Vec<f32> = (0..n).map(|_| rng.next_f32()).collect();
        let loud_noise: Vec<f32> = (0..n).map(|_| 10.0 * rng.next_f32()).collect();
        // Square bursts at +20 dB (amplitude 10) of 300 samples every 2000,
        // period 40 samples.
        let bursts: Vec<f32> =
            (0..n).map(|i| if i % 2000 < 300 { if (i / 20) % 2 == 0 { 10.0 } else { -10.0 } } else { 0.0 }).collect();
        // A slowly rising sine that crosses the ceiling.
        let swell: Vec<f32> = (0..n).map(|i| (i as f32 / n as f32 * 4.0) * (i as f32 * 0.05).sin()).collect();
        vec![
            ("impulses", impulses),
            ("noise", noise),
            ("noise+20dB", loud_noise),
            ("bursts+20dB", bursts),
            ("swell", swell),
        ]
    }

    #[test]
    fn never_exceeds_the_ceiling() {
        let mut worst = 0.0f64;
        for (name, x) in signals() {
            for l in [0usize, 1, 2, 17, 64, 480] {
                for (ceiling, release) in [(1.0f32, 0.05f32), (0.5, 0.0), (0.891, 0.2), (0.1, 0.01)] {
                    let mut lim = Limiter::new(480, 1);
                    lim.set(l, ceiling, release, 48_000.0);
                    let (y, _) = run(&mut lim, &x);
                    let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let ratio = peak as f64 / ceiling as f64;
                    worst = worst.max(ratio);
                    assert!(ratio <= 1.0 + 1e-6, "{name} L={l} c={ceiling}: {ratio}");
                }
            }
        }
        println!("limiter worst max|y|/ceiling = 1 + {:.2e}", worst - 1.0);
    }

    #[test]
    fn below_the_ceiling_is_a_pure_delay() {
        let mut rng = Lcg(3);
        let x: Vec<f32> = (0..20_000).map(|_| 0.999 * rng.next_f32()).collect();
        for l in [0usize, 1, 5, 256] {
            let mut lim = Limiter::new(256, 1);
            lim.set(l, 1.0, 0.05, 48_000.0);
            assert_eq!(lim.latency(), l);
            let (y, g) = run(&mut lim, &x);
            for (n, v) in y.iter().enumerate() {
                let want = if n >= l { x[n - l] } else { 0.0 };
                assert_eq!(v.to_bits(), want.to_bits(), "L={l} n={n}");
            }
            assert!(g.iter().all(|&g| g == 1.0));
        }
    }

    #[test]
    fn recovers_to_a_bit_exact_delay_after_limiting() {
        let mut lim = Limiter::new(32, 1);
        lim.set(32, 1.0, 0.001, 48_000.0);
        let mut x = vec![0.5f32; 4000];
        x[100] = 8.0;
        let (y, _) = run(&mut lim, &x);
        // 1 ms release: back to exactly 1.0 well within 2000 samples.
        for n in 2100..4000 {
            assert_eq!(y[n], x[n - 32], "n={n}");
        }
    }

    #[test]
    fn gain_ramps_across_the_lookahead_before_the_peak() {
        let l = 64usize;
        let mut lim = Limiter::new(l, 1);
        lim.set(l, 1.0, 0.05, 48_000.0);
        // Silence, then a +20 dB step held for 1000 samples.
        let mut x = vec![0.0f32; 3000];
        for v in &mut x[1000..2000] {
            *v = 10.0;
        }
        let (y, g) = run(&mut lim, &x);
        // The loud input reaches the output at 1000 + L; the gain starts
        // falling as soon as it enters, L frames earlier, in equal steps of
        // (1 - 0.1) / (L + 1).
        assert_eq!(g[999], 1.0);
        let step = 0.9 / (l as f64 + 1.0);
        for j in 0..=l {
            let want = 1.0 - step * (j as f64 + 1.0);
            assert!((g[1000 + j] as f64 - want).abs() < 1e-6, "j={j}: {} vs {want}", g[1000 + j]);
        }
        assert!(g[1000 + l / 2] < 0.6 && y[1000 + l / 2] == 0.0);
        assert!((y[1000 + l] - 1.0).abs() < 1e-6);
        let max_step = g.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max);
        assert!(max_step as f64 <= step + 1e-6, "max step {max_step} vs {step}");
    }

    #[test]
    fn release_follows_the_time_constant() {
        // With no lookahead the applied gain is r itself.
        let mut lim = Limiter::new(0, 1);
        lim.set(0, 1.0, 0.01, 48_000.0);
        let mut x = vec![4.0f32; 1000];
        x.extend(std::iter::repeat_n(0.0, 2000));
        let (_, g) = run(&mut lim, &x);
        assert_eq!(g[999], 0.25);
        // 480 samples (one time constant) after the end: 1 - 0.75 / e.
        let want = 1.0 - 0.75 * (-1.0f64).exp();
        assert!((g[999 + 480] as f64 - want).abs() < 1e-4, "{} vs {want}", g[999 + 480]);
    }

    #[test]
    fn channels_are_linked_and_planar_matches_frames() {
        let mut rng = Lcg(8);
        let n = 5000;
        let left: Vec<f32> = (0..n).map(|_| 4.0 * rng.next_f32()).collect();
        let right: Vec<f32> = (0..n).map(|_| 0.25 * rng.next_f32()).collect();
        let mut a = Limiter::new(100, 2);
        a.set(50, 0.9, 0.02, 48_000.0);
        let mut b = a.clone();
        let (mut l1, mut r1) = (left.clone(), right.clone());
        a.process(&mut [&mut l1[..], &mut r1[..]]);
        for i in 0..n {
            let mut f = [left[i], right[i]];
            b.process_frame(&mut f);
            assert_eq!((f[0].to_bits(), f[1].to_bits()), (l1[i].to_bits(), r1[i].to_bits()));
        }
        // The quiet right channel gets the left channel's gain.
        let mut c = Limiter::new(100, 2);
        c.set(50, 0.9, 0.02, 48_000.0);
        for i in 0..n {
            let mut f = [left[i], right[i]];
            c.process_frame(&mut f);
            if i >= 50 && right[i - 50] != 0.0 {
                let g = f[1] / right[i - 50];
                assert!((g - c.gain()).abs() < 1e-6);
            }
        }
        assert!(c.gain_reduction_db() > 0.0);
    }

    #[test]
    fn lookahead_changes_stay_in_the_preallocated_buffers() {
        let mut lim = Limiter::new(128, 2);
        let sizes = (lim.delay.len(), lim.box_ring.len(), lim.dq_frame.len());
        let mut rng = Lcg(5);
        for (i, l) in [128usize, 3, 0, 77, 1000, 1].into_iter().enumerate() {
            lim.set(l, 0.5, 0.01, 44_100.0);
            assert_eq!(lim.latency(), l.min(128));
            let mut a: Vec<f32> = (0..3000).map(|_| 3.0 * rng.next_f32()).collect();
            let mut b: Vec<f32> = (0..3000).map(|_| rng.next_f32()).collect();
            lim.process(&mut [&mut a[..], &mut b[..]]);
            let peak = a.iter().chain(&b).fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(peak <= 0.5 * (1.0 + 1e-6), "step {i}: {peak}");
        }
        assert_eq!(sizes, (lim.delay.len(), lim.box_ring.len(), lim.dq_frame.len()));
        assert_eq!(lim.delay.capacity(), 129 * 2);
    }

    #[test]
    fn bad_input_and_odd_layouts() {
        let mut lim = Limiter::new(8, 2);
        lim.set(4, f32::NAN, f32::NAN, f32::NAN);
        assert_eq!(lim.ceiling(), 1.0);
        let mut f = [f32::NAN, f32::INFINITY];
        for _ in 0..10 {
            lim.process_frame(&mut f);
            assert!(f.iter().all(|v| v.is_finite()));
        }
        let mut f = [f32::MAX, -f32::MAX, 5.0];
        for _ in 0..10 {
            lim.process_frame(&mut f);
            assert!(f[0].abs() <= 1.0 && f[1].abs() <= 1.0);
        }
        assert_eq!(f[2], 5.0); // not a limiter channel: untouched
        lim.process_frame(&mut []);
        lim.process(&mut []);
        let mut one = [2.0f32; 16];
        lim.process(&mut [&mut one[..]]);
        assert!(one.iter().all(|v| v.abs() <= 1.0 + 1e-6));
        let mut z = Limiter::new(0, 0);
        assert_eq!(z.channels(), 1);
        let mut x = [3.0f32];
        z.process_frame(&mut x);
        assert!(x[0].abs() <= 1.0 + 1e-6);
    }
}
