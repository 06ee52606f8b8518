//! State-variable filter: the trapezoidal-integrated SVF of Andrew Simper
//! (Cytomic, "SvfLinearTrapOptimised2"), unconditionally stable for any
//! positive damping and any cutoff below Nyquist, also under per-sample
//! modulation.
//!
//! Two layers:
//!
//! * the example synth's kernels, with the same arithmetic (bit-identical
//!   results): [`resonance_to_k`], [`log2_cutoff_range`], [`angle_scale`],
//!   [`FilterControl`], [`coefs`] (fast coefficients from
//!   [`exp2_fast`] and
//!   [`sin_cos_fast`]) and [`lowpass`] (one tick
//!   of the low-pass output), and the same filter as a state update with a shorter
//!   dependency chain ([`step_coefs`], [`lowpass_step`]), which the synth's voices run,
//!   and over a block of samples computed independently of one another
//!   ([`LowpassBlock`]), which a voice alone runs, or two samples per step of the chain
//!   ([`LowpassPairs`]), which it runs while its coefficients move;
//! * [`Svf`], a filter object with nine responses ([`SvfMode`]) and
//!   coefficients computed exactly (`tan` in f64).
//!
//! With `g = tan(π fc / fs)` and `k = 1 / Q`, the filter is the bilinear
//! transform (pre-warped at `fc`) of the analog prototypes in
//! `s` normalised to the cutoff, `D(s) = s² + k s + 1`:
//! low-pass `1/D`, high-pass `s²/D`, band-pass `k s/D` (0 dB at `fc`), notch
//! `(s² + 1)/D`, peak `(s² − 1)/D` (gain `2Q` at `fc`), all-pass
//! `(s² − k s + 1)/D`, bell `(s² + k A² s + 1)/(s² + k s + 1)` with
//! `k = 1/(Q A)`, and the RBJ shelves, where `A = 10^(gain_dB / 40)`.
//!
//! # Accuracy (measured)
//!
//! Steady-state gain of a sine (demodulated over an integer number of
//! periods after settling) against the analytic response of the
//! bilinear-transformed prototype, at 15 frequencies from 20 Hz to 20 kHz
//! at 48 kHz, for (fc, Q, gain) = (1 kHz, 1/√2, +6 dB), (200 Hz, 4,
//! −12 dB), (5 kHz, 0.5, +12 dB), (15 kHz, 2, −6 dB). Worst deviation per
//! mode (f32 rounding), where the analytic gain is above −80 dB:
//!
//! | low-pass | high-pass | band-pass | notch  | peak   | all-pass | bell   | low shelf | high shelf |
//! |----------|-----------|-----------|--------|--------|----------|--------|-----------|------------|
//! | 3.4e-5   | 8.3e-5    | 3.4e-5    | 3.6e-6 | 3.4e-5 | 6.8e-5   | 9.7e-5 | 1.0e-5    | 3.1e-6 dB  |
//!
//! Below −80 dB the absolute error is under 5e-4. The test
//! `response_matches_the_analytic_prototype` asserts 2e-4 dB. The poles
//! (eigenvalues of the state update) match the analytic bilinear-transform
//! poles to 1e-5 and stay inside the unit circle for cutoffs up to
//! 0.499 fs and Q from 0.5 to 20 (test `stable_near_nyquist_and_at_high_q`).

use crate::BLOCK;
use crate::math::{clamp_or, exp2_fast, flush_pair, sanitize_sample, sanitize_sample_rate, sin_cos_fast, table_entry};
use core::f32::consts::PI;

/// Lowest cutoff the example synth sets, in Hz.
pub const MIN_CUTOFF_HZ: f32 = 20.0;
/// Highest cutoff of the example synth as a fraction of the sample rate.
pub const MAX_CUTOFF_RATIO: f32 = 0.45;
/// `log2(40)`: resonance 1 gives a Q 40 times that of resonance 0.
const LOG2_Q_RANGE: f32 = 5.321_928;

/// Damping `k = 1/Q` for a resonance in `[0, 1]` (clamped; NaN counts as
/// 0): Q goes exponentially from 0.5 (no resonance) to 20.
pub fn resonance_to_k(res: f32) -> f32 {
    2.0 * exp2_fast(-res.clamp(0.0, 1.0) * LOG2_Q_RANGE)
}

/// The example synth's cutoff limits in log2 Hz for a sample rate in Hz:
/// `(log2 20, log2 max(0.45 fs, 20))`.
pub fn log2_cutoff_range(sample_rate: f32) -> (f32, f32) {
    (MIN_CUTOFF_HZ.log2(), (sample_rate * MAX_CUTOFF_RATIO).max(MIN_CUTOFF_HZ).log2())
}

/// Scale from a cutoff in Hz to the pre-warping angle: `π / fs`.
pub fn angle_scale(sample_rate: f32) -> f32 {
    PI / sample_rate
}

/// Control-rate inputs of [`coefs`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilterControl {
    /// Base cutoff, log2 Hz.
    pub log2_cutoff: f32,
    /// Envelope modulation depth in octaves.
    pub env_octaves: f32,
    /// Lower clamp of the modulated cutoff, log2 Hz.
    pub log2_min: f32,
    /// Upper clamp of the modulated cutoff, log2 Hz.
    pub log2_max: f32,
    /// `π / fs`, see [`angle_scale`].
    pub angle_scale: f32,
    /// Damping `1/Q`, see [`resonance_to_k`].
    pub k: f32,
}

/// `sin w` and `cos w` of the pre-warped angle `w = π fc / fs` for envelope value `env`:
/// the cutoff is `2^(log2_cutoff + env * env_octaves)` clamped to the control's range.
#[inline(always)]
fn warped_sin_cos(env: f32, c: &FilterControl) -> (f32, f32) {
    sin_cos_fast(exp2_fast(log2_cutoff_at(env, c)) * c.angle_scale)
}

/// The cutoff in log2 Hz for envelope value `env`: `log2_cutoff + env * env_octaves`
/// clamped to the control's range. [`coefs`] and [`step_coefs`] depend on `env` only
/// through it: equal values give equal coefficients, bit for bit (a voice whose envelope
/// moves while its cutoff stays at a limit, or with no envelope amount, keeps its
/// coefficients without computing them again).
#[inline(always)]
pub fn log2_cutoff_at(env: f32, c: &FilterControl) -> f32 {
    let x = c.log2_cutoff + env * c.env_octaves;
    let x = if x > c.log2_min { x } else { c.log2_min };
    if x < c.log2_max { x } else { c.log2_max }
}

/// SVF coefficients `(a1, a2, a3)` for envelope value `env`: the cutoff is
/// `2^(log2_cutoff + env * env_octaves)` clamped to the control's range.
///
/// With `g = tan(w) = s / c` the textbook `a1 = 1 / (1 + g (g + k))`,
/// `a2 = g a1`, `a3 = g a2` become `c², s c, s²` over
/// `c² + s (s + k c)`, which needs a single division.
#[inline(always)]
pub fn coefs(env: f32, c: &FilterControl) -> (f32, f32, f32) {
    let (s, co) = warped_sin_cos(env, c);
    let inv = 1.0 / (co * co + s * (s + c.k * co));
    (co * co * inv, s * co * inv, s * s * inv)
}

/// Coefficients `(m, q, d)` of [`lowpass_step`] for envelope value `env`: the filter of
/// [`coefs`] with its state update rewritten as `m = 2 a1 - 1`, `q = 2 a2`, `d = 2 a3`
/// (`m` computed as `(c² - s (s + k c)) / (c² + s (s + k c))`, without the cancellation
/// of `2 a1 - 1` at low cutoffs).
#[inline(always)]
pub fn step_coefs(env: f32, c: &FilterControl) -> (f32, f32, f32) {
    let (s, co) = warped_sin_cos(env, c);
    let cc = co * co;
    let damp = s * (s + c.k * co);
    let inv = 1.0 / (cc + damp);
    ((cc - damp) * inv, 2.0 * s * co * inv, 2.0 * s * s * inv)
}

/// One sample of the low-pass output of the same filter as [`lowpass`], with coefficients
/// from [`step_coefs`]: the state update written as
/// `ic1' = m ic1 + q (x - ic2)`, `ic2' = ic2 + q ic1 + d (x - ic2)`, output
/// `(ic2 + ic2') / 2`. Equal to [`lowpass`] up to rounding (about 1e-7 relative), with
/// fewer operations and a dependency chain from one sample's state to the next of three
/// operations instead of five: a voice that has no other voices to share its vector with
/// is bound by that chain.
#[inline(always)]
pub fn lowpass_step(x: f32, ic1: &mut f32, ic2: &mut f32, m: f32, q: f32, d: f32) -> f32 {
    let v = x - *ic2;
    let n1 = m * *ic1 + q * v;
    let n2 = (*ic2 + q * *ic1) + d * v;
    let y = 0.5 * (*ic2 + n2);
    *ic1 = n1;
    *ic2 = n2;
    y
}

/// The filter of [`lowpass_step`] unrolled over a block of up to [`BLOCK`] samples with
/// fixed coefficients: each output of the block is computed from the state at the block's
/// start and the block's inputs, with no dependency from one sample to the next. A voice
/// that sounds alone has no other voices to share its vector with; this lets it use the
/// vector across time instead, where [`lowpass_step`] would run one sample after another
/// at the speed of its dependency chain.
///
/// The state update of [`lowpass_step`] is linear, `s' = A s + B x` with
/// `A = [[m, -q], [q, 1 - d]]` and `B = [q, d]`, so after `k` samples
/// `s_k = A^k s_0 + Σ A^(k-1-i) B x_i`. The tables hold the rows of `A^k` and the
/// columns `A^j B`, computed in f64 (the diagonal of the second row as `A^k - 1`, which
/// keeps the precision of a small `d` at low cutoffs) and rounded once. A block runs as
/// two halves, the second from the state after the first. The results
/// equal [`lowpass_step`]'s up to rounding (test: `block_matches_the_step_form`); a block
/// of any length gives the same results as the same samples within a longer block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LowpassBlock {
    /// Bits of the `(m, q, d)` the tables were computed for.
    key: [u32; 3],
    /// Row 1 of `A^(k+1)`: `ic1_(k+1) = r11 ic1 + r12 ic2 + …`.
    r11: [f32; BLOCK],
    r12: [f32; BLOCK],
    /// Row 2 of `A^(k+1)` for the samples of a half, with `r22m = (A^(k+1))_22 - 1`.
    r21: [Lanes4; HALF / 4],
    r22m: [Lanes4; HALF / 4],
    /// The first component of `A^j B` reversed, at `w1r[BLOCK - 1 - j]`, zeros above, so
    /// that `ic1` after `n` samples is a dot product with the inputs.
    w1r: [f32; 2 * BLOCK],
    /// The same for a half block, `w1h[HALF - 1 - j]`, in lanes.
    w1h: [Lanes4; HALF / 4],
    /// The weights of input `i` of a half on samples `k .. k + 4` of that half (`k` a
    /// chunk's first sample), at `w2[k - i + 3]` (`k - i` from -3 to `HALF - 4`): lane `j`
    /// holds the second component of `A^(k + j - i) B`, 0 where `k + j < i`. One load per
    /// input and chunk of four samples.
    w2: [Lanes4; HALF],
}

/// Four `f32` aligned for one vector load.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(16))]
struct Lanes4([f32; 4]);

/// Half a [`BLOCK`]: [`LowpassBlock::outputs`] runs a block as two halves.
const HALF: usize = BLOCK / 2;
// `LowpassBlock::outputs` runs the two chunks of four samples of each half.
const _: () = assert!(HALF == 8 && BLOCK == 2 * HALF);

impl Default for LowpassBlock {
    /// Tables that match no coefficients: the first [`LowpassBlock::prepare`] computes.
    fn default() -> Self {
        LowpassBlock {
            key: [u32::MAX; 3],
            r11: [0.0; BLOCK],
            r12: [0.0; BLOCK],
            r21: [Lanes4::default(); HALF / 4],
            r22m: [Lanes4::default(); HALF / 4],
            w1r: [0.0; 2 * BLOCK],
            w1h: [Lanes4::default(); HALF / 4],
            w2: [Lanes4::default(); HALF],
        }
    }
}

impl LowpassBlock {
    /// Makes the tables those of the coefficients `(m, q, d)` of [`step_coefs`]; does
    /// nothing when they already are.
    #[inline]
    pub fn prepare(&mut self, m: f32, q: f32, d: f32) {
        if self.key != [m.to_bits(), q.to_bits(), d.to_bits()] {
            self.compute(m, q, d);
        }
    }

    #[inline(never)]
    fn compute(&mut self, m: f32, q: f32, d: f32) {
        self.key = [m.to_bits(), q.to_bits(), d.to_bits()];
        let (m, q, d) = (f64::from(m), f64::from(q), f64::from(d));
        // A^k kept as its four entries, the (2, 2) one minus 1; A^j B as a column.
        let (mut p11, mut p12, mut p21, mut p22m) = (1.0f64, 0.0f64, 0.0f64, 0.0f64);
        let (mut b1, mut b2) = (q, d);
        let mut w2 = [0.0f32; HALF];
        for k in 0..BLOCK {
            self.w1r[BLOCK - 1 - k] = table_entry(b1);
            if let Some(w) = w2.get_mut(k) {
                self.w1h[(HALF - 1 - k) / 4].0[(HALF - 1 - k) % 4] = table_entry(b1);
                *w = table_entry(b2);
            }
            (b1, b2) = (m * b1 - q * b2, q * b1 + b2 - d * b2);
            // A^(k+1) = A · A^k.
            let p22 = p22m + 1.0;
            (p11, p12, p21, p22m) =
                (m * p11 - q * p21, m * p12 - q * p22, q * p11 + p21 - d * p21, q * p12 + p22m - d * p22);
            self.r11[k] = table_entry(p11);
            self.r12[k] = table_entry(p12);
            if k < HALF {
                self.r21[k / 4].0[k % 4] = table_entry(p21);
                self.r22m[k / 4].0[k % 4] = table_entry(p22m);
            }
        }
        self.w1r[BLOCK..].fill(0.0);
        for (e, lanes) in self.w2.iter_mut().enumerate() {
            for (j, w) in lanes.0.iter_mut().enumerate() {
                // Lag k - i = e - 3 + j.
                *w = (e + j).checked_sub(3).map_or(0.0, |lag| w2.get(lag).copied().unwrap_or(0.0));
            }
        }
    }

    /// Runs the block from the state `(ic1, ic2)` over the inputs `x` (all [`BLOCK`] of
    /// them must be finite), writes the low-pass output of each sample to `y` (as
    /// [`lowpass_step`] returns it) and returns the state after the first `n` samples
    /// (`1..=BLOCK`; other values are clamped into that range).
    #[inline(always)]
    pub fn run(&self, ic1: f32, ic2: f32, x: &[f32; BLOCK], y: &mut [f32; BLOCK], n: usize) -> (f32, f32) {
        let (ic2_after, ic1_end) = self.outputs(ic1, ic2, x, y);
        let ic1_after = if n >= BLOCK { ic1_end } else { self.ic1_after(ic1, ic2, x, n) };
        (ic1_after, ic2_after[n.clamp(1, BLOCK) - 1])
    }

    /// The outputs of [`LowpassBlock::run`] alone. Returns `ic2` after each sample
    /// (element `k` after `k + 1` samples), the second component of the state
    /// [`LowpassBlock::run`] returns, and `ic1` after the whole block (computed from the
    /// state at the half, so equal to [`LowpassBlock::ic1_after`] for [`BLOCK`] samples up
    /// to rounding).
    #[inline(always)]
    pub fn outputs(&self, ic1: f32, ic2: f32, x: &[f32; BLOCK], y: &mut [f32; BLOCK]) -> ([f32; BLOCK], f32) {
        // Two halves: the second starts from the state after the first, which costs a dot
        // product of half a block of inputs and saves the weights of the first half's
        // inputs on the second half's outputs.
        let mut next = [0.0f32; BLOCK];
        let (first, second) = next.split_at_mut(HALF);
        let (x0, x1) = x.split_at(HALF);
        self.ic2_chunk::<0>(ic1, ic2, x0, first);
        self.ic2_chunk::<1>(ic1, ic2, x0, first);
        let (mid1, mid2) = (self.ic1_after_half(ic1, ic2, x0), first[HALF - 1]);
        self.ic2_chunk::<0>(mid1, mid2, x1, second);
        self.ic2_chunk::<1>(mid1, mid2, x1, second);
        let end1 = self.ic1_after_half(mid1, mid2, x1);
        // The output of sample k is the mean of ic2 before and after it.
        let mut before = [ic2; BLOCK];
        before[1..].copy_from_slice(&next[..BLOCK - 1]);
        for ((o, b), a) in y.iter_mut().zip(&before).zip(&next) {
            *o = 0.5 * (b + a);
        }
        (next, end1)
    }

    /// Samples `4 C .. 4 C + 4` of `ic2` after each sample of a half block from
    /// `(ic1, ic2)` over `x`, into `next`. Only inputs up to the chunk's last sample reach
    /// it (the table's zeros cover the rest of the chunk), so the chunks of a half take 4
    /// and 8 inputs; even and odd inputs go to two sums, which halves the dependency chain
    /// of each.
    #[inline(always)]
    fn ic2_chunk<const C: usize>(&self, ic1: f32, ic2: f32, x: &[f32], next: &mut [f32]) {
        const { assert!(4 * C + 4 <= HALF) };
        let (x, next) = (&x[..HALF], &mut next[..HALF]);
        let (r21, r22m) = (&self.r21[C].0, &self.r22m[C].0);
        let (mut even, mut odd) = ([0.0f32; 4], [0.0f32; 4]);
        for j in 0..4 {
            even[j] = r21[j] * ic1;
            odd[j] = r22m[j] * ic2;
        }
        for p in 0..2 * C + 2 {
            let i = 2 * p;
            // Input i reaches sample 4 C + j with lag 4 C - i + j: entry 4 C - i + 3.
            let (w0, w1) = (&self.w2[4 * C + 3 - i].0, &self.w2[4 * C + 2 - i].0);
            for j in 0..4 {
                even[j] += w0[j] * x[i];
                odd[j] += w1[j] * x[i + 1];
            }
        }
        for j in 0..4 {
            next[4 * C + j] = (even[j] + odd[j]) + ic2;
        }
    }

    /// `ic1` after the first [`HALF`] samples from `(ic1, ic2)` over `x`.
    #[inline(always)]
    fn ic1_after_half(&self, ic1: f32, ic2: f32, x: &[f32]) -> f32 {
        let (w, x) = (&self.w1h, &x[..HALF]);
        let dot: [f32; 4] = core::array::from_fn(|j| w[0].0[j] * x[j] + w[1].0[j] * x[4 + j]);
        (self.r11[HALF - 1] * ic1 + self.r12[HALF - 1] * ic2) + ((dot[0] + dot[1]) + (dot[2] + dot[3]))
    }

    /// The first component of the state [`LowpassBlock::run`] returns: `ic1` after the
    /// first `n` samples of the block from `(ic1, ic2)` over `x` (`n` clamped into
    /// `1..=BLOCK`).
    #[inline(always)]
    pub fn ic1_after(&self, ic1: f32, ic2: f32, x: &[f32; BLOCK], n: usize) -> f32 {
        let last = n.clamp(1, BLOCK) - 1;
        let w1 = &self.w1r[BLOCK - 1 - last..][..BLOCK];
        let mut dot = [0.0f32; 4];
        for (w, xq) in w1.chunks_exact(4).zip(x.chunks_exact(4)) {
            for j in 0..4 {
                dot[j] += w[j] * xq[j];
            }
        }
        (self.r11[last] * ic1 + self.r12[last] * ic2) + ((dot[0] + dot[1]) + (dot[2] + dot[3]))
    }
}

/// The filter of [`lowpass_step`] advanced two samples per step of its dependency chain,
/// for a voice whose coefficients change too often to build [`LowpassBlock`]'s tables:
/// `s'' = A² s + A B x0 + B x1` carries the state from each even sample to the next (the
/// second row's diagonal kept as `A²_22 - 1`, as the block does, for a small `d`), and the
/// odd samples' states come from one [`lowpass_step`] off that chain. Stepping sample by
/// sample waits for each sample's state before the next (about 12 cycles of additions
/// and products); this waits for each pair's. The results equal [`lowpass_step`]'s up to
/// rounding (test `pairs_match_the_step_form`); a run over the first `n` samples of some
/// inputs gives the outputs of a longer run over them bit for bit (and, for an odd `n`, a
/// state the longer run does not compute, equal to its own up to rounding).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LowpassPairs {
    /// One step: [`step_coefs`].
    m: f32,
    q: f32,
    d: f32,
    /// Two steps: `A²` (its `(2, 2)` entry minus 1) and `A B`.
    a11: f32,
    a12: f32,
    a21: f32,
    a22m: f32,
    ab1: f32,
    ab2: f32,
}

impl LowpassPairs {
    /// The pairs of the coefficients `(m, q, d)` of [`step_coefs`], computed in f64 and
    /// rounded once.
    #[inline]
    pub fn new(m: f32, q: f32, d: f32) -> Self {
        let (m64, q64, d64) = (f64::from(m), f64::from(q), f64::from(d));
        // A = [[m, -q], [q, 1 - d]], B = [q, d].
        let cross = q64 * (m64 + 1.0 - d64);
        LowpassPairs {
            m,
            q,
            d,
            a11: table_entry(m64 * m64 - q64 * q64),
            a12: table_entry(-cross),
            a21: table_entry(cross),
            a22m: table_entry(d64 * d64 - 2.0 * d64 - q64 * q64),
            ab1: table_entry(q64 * (m64 - d64)),
            ab2: table_entry(q64 * q64 + d64 - d64 * d64),
        }
    }

    /// Runs the filter from the state `(ic1, ic2)` over the inputs `x` (finite), writes the
    /// low-pass output of each to `y` (as [`lowpass_step`] returns it; `y` at least as long
    /// as `x`) and returns the state after the last.
    #[inline(always)]
    pub fn run(&self, mut ic1: f32, mut ic2: f32, x: &[f32], y: &mut [f32]) -> (f32, f32) {
        let (m, q, d) = (self.m, self.q, self.d);
        let pairs = x.chunks_exact(2);
        let last = pairs.remainder().first().copied();
        let (y, y_rest) = y.split_at_mut((x.len() & !1).min(y.len()));
        for (x, y) in pairs.zip(y.chunks_exact_mut(2)) {
            let (x0, x1) = (x[0], x[1]);
            // The odd sample's state, off the chain.
            let (mut o1, mut o2) = (ic1, ic2);
            y[0] = lowpass_step(x0, &mut o1, &mut o2, m, q, d);
            let u = self.ab1 * x0 + q * x1;
            let w = ic2 + (self.ab2 * x0 + d * x1);
            let n1 = (self.a11 * ic1 + self.a12 * ic2) + u;
            let n2 = (self.a21 * ic1 + self.a22m * ic2) + w;
            y[1] = 0.5 * (o2 + n2);
            (ic1, ic2) = (n1, n2);
        }
        if let (Some(x), Some(y)) = (last, y_rest.first_mut()) {
            *y = lowpass_step(x, &mut ic1, &mut ic2, m, q, d);
        }
        (ic1, ic2)
    }
}

/// One sample of the low-pass output of the SVF with coefficients from
/// [`coefs`]; `ic1` / `ic2` are the integrator states.
#[inline(always)]
pub fn lowpass(x: f32, ic1: &mut f32, ic2: &mut f32, a1: f32, a2: f32, a3: f32) -> f32 {
    let v3 = x - *ic2;
    let v1 = a1 * *ic1 + a2 * v3;
    let v2 = *ic2 + a2 * *ic1 + a3 * v3;
    *ic1 = 2.0 * v1 - *ic1;
    *ic2 = 2.0 * v2 - *ic2;
    v2
}

/// Response of an [`Svf`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SvfMode {
    /// Low-pass, 12 dB/octave; gain Q at the cutoff.
    #[default]
    LowPass,
    /// High-pass, 12 dB/octave; gain Q at the cutoff.
    HighPass,
    /// Band-pass normalised to 0 dB at the centre frequency.
    BandPass,
    /// Notch: 0 (−∞ dB) at the centre frequency.
    Notch,
    /// Peak (low-pass minus high-pass): gain 2Q at the centre frequency,
    /// 0 dB at DC and Nyquist.
    Peak,
    /// All-pass: unit gain, phase turning through −360°.
    AllPass,
    /// Bell (peaking EQ): `gain_db` at the centre frequency, 0 dB far from
    /// it; Q is the bandwidth of the boosted form.
    Bell,
    /// Low shelf: `gain_db` at DC, 0 dB at Nyquist, `gain_db / 2` at the
    /// corner frequency.
    LowShelf,
    /// High shelf: 0 dB at DC, `gain_db` at Nyquist, `gain_db / 2` at the
    /// corner frequency.
    HighShelf,
}

/// All outputs of one SVF tick (the `mode` mixing of [`Svf`] is not
/// applied; shelving and bell need their own coefficients).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SvfOutputs {
    /// Low-pass.
    pub low: f32,
    /// High-pass.
    pub high: f32,
    /// Band-pass, 0 dB at the centre frequency.
    pub band: f32,
    /// Notch.
    pub notch: f32,
    /// Peak (gain 2Q at the centre frequency).
    pub peak: f32,
    /// All-pass.
    pub all: f32,
}

/// Lowest cutoff accepted by [`Svf::set`], Hz.
pub const SVF_MIN_HZ: f32 = 1.0;
/// Highest cutoff accepted by [`Svf::set`], as a fraction of the sample rate.
pub const SVF_MAX_RATIO: f32 = 0.499;
/// Q range accepted by [`Svf::set`].
pub const SVF_Q_RANGE: (f32, f32) = (0.05, 200.0);
/// Gain range in dB accepted by [`Svf::set_gain_db`].
pub const SVF_GAIN_DB_RANGE: (f32, f32) = (-60.0, 60.0);

/// A trapezoidal state-variable filter.
///
/// # Examples
///
/// ```
/// use trio_dsp::svf::{Svf, SvfMode};
/// let mut f = Svf::new(SvfMode::LowPass);
/// f.set(1_000.0, std::f32::consts::FRAC_1_SQRT_2, 48_000.0);
/// // DC passes with unit gain.
/// let mut y = 0.0;
/// for _ in 0..10_000 {
///     y = f.process(1.0);
/// }
/// assert!((y - 1.0).abs() < 1e-5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Svf {
    mode: SvfMode,
    cutoff_hz: f32,
    q: f32,
    gain_db: f32,
    sample_rate: f32,
    k: f32,
    a1: f32,
    a2: f32,
    a3: f32,
    m0: f32,
    m1: f32,
    m2: f32,
    ic1: f32,
    ic2: f32,
}

impl Svf {
    /// A cleared filter at 1 kHz, Q = 1/√2, 0 dB, 48 kHz.
    pub fn new(mode: SvfMode) -> Self {
        let mut f = Svf {
            mode,
            cutoff_hz: 1_000.0,
            q: core::f32::consts::FRAC_1_SQRT_2,
            gain_db: 0.0,
            sample_rate: 48_000.0,
            k: 0.0,
            a1: 0.0,
            a2: 0.0,
            a3: 0.0,
            m0: 0.0,
            m1: 0.0,
            m2: 0.0,
            ic1: 0.0,
            ic2: 0.0,
        };
        f.update();
        f
    }

    /// Sets the cutoff (or centre) frequency in Hz, clamped to
    /// `SVF_MIN_HZ ..= SVF_MAX_RATIO × sample_rate` (NaN gives 1 kHz), the Q
    /// (clamped to `SVF_Q_RANGE`, NaN gives 1/√2) and the sample rate in Hz
    /// (NaN gives 48 kHz). The state is kept, so this may be called every
    /// sample.
    pub fn set(&mut self, cutoff_hz: f32, q: f32, sample_rate: f32) {
        self.sample_rate = sanitize_sample_rate(sample_rate);
        self.cutoff_hz = clamp_or(cutoff_hz, SVF_MIN_HZ, SVF_MAX_RATIO * self.sample_rate, 1_000.0);
        self.q = clamp_or(q, SVF_Q_RANGE.0, SVF_Q_RANGE.1, core::f32::consts::FRAC_1_SQRT_2);
        self.update();
    }

    /// Sets the gain in dB of the bell and shelf modes (clamped to
    /// `SVF_GAIN_DB_RANGE`, NaN gives 0).
    pub fn set_gain_db(&mut self, gain_db: f32) {
        self.gain_db = clamp_or(gain_db, SVF_GAIN_DB_RANGE.0, SVF_GAIN_DB_RANGE.1, 0.0);
        self.update();
    }

    /// Sets the response; the state is kept.
    pub fn set_mode(&mut self, mode: SvfMode) {
        self.mode = mode;
        self.update();
    }

    /// The response.
    pub fn mode(&self) -> SvfMode {
        self.mode
    }

    /// The (sanitised) cutoff in Hz.
    pub fn cutoff_hz(&self) -> f32 {
        self.cutoff_hz
    }

    /// The (sanitised) Q.
    pub fn q(&self) -> f32 {
        self.q
    }

    fn update(&mut self) {
        let w = core::f64::consts::PI * f64::from(self.cutoff_hz) / f64::from(self.sample_rate);
        let mut g = w.tan();
        let a = 10f64.powf(f64::from(self.gain_db) / 40.0);
        let mut k = 1.0 / f64::from(self.q);
        let (m0, m1, m2) = match self.mode {
            SvfMode::LowPass => (0.0, 0.0, 1.0),
            SvfMode::HighPass => (1.0, -k, -1.0),
            SvfMode::BandPass => (0.0, k, 0.0),
            SvfMode::Notch => (1.0, -k, 0.0),
            SvfMode::Peak => (1.0, -k, -2.0),
            SvfMode::AllPass => (1.0, -2.0 * k, 0.0),
            SvfMode::Bell => {
                k /= a;
                (1.0, k * (a * a - 1.0), 0.0)
            }
            SvfMode::LowShelf => {
                g /= a.sqrt();
                (1.0, k * (a - 1.0), a * a - 1.0)
            }
            SvfMode::HighShelf => {
                g *= a.sqrt();
                (a * a, k * (1.0 - a) * a, 1.0 - a * a)
            }
        };
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        self.k = k as f32;
        self.a1 = a1 as f32;
        self.a2 = a2 as f32;
        self.a3 = a3 as f32;
        self.m0 = m0 as f32;
        self.m1 = m1 as f32;
        self.m2 = m2 as f32;
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.ic1 = 0.0;
        self.ic2 = 0.0;
    }

    /// One tick: `(v0, v1, v2)` = sanitised input, band (unnormalised) and
    /// low outputs.
    #[inline(always)]
    fn tick(&mut self, x: f32) -> (f32, f32, f32) {
        let v0 = sanitize_sample(x);
        let v3 = v0 - self.ic2;
        let v1 = self.a1 * self.ic1 + self.a2 * v3;
        let v2 = self.ic2 + self.a2 * self.ic1 + self.a3 * v3;
        (self.ic1, self.ic2) = flush_pair(2.0 * v1 - self.ic1, 2.0 * v2 - self.ic2);
        (v0, v1, v2)
    }

    /// Filters one sample with the selected response. NaN and ±∞ inputs
    /// count as 0; magnitudes above `MAX_SAMPLE` are clamped.
    #[inline]
    pub fn process(&mut self, x: f32) -> f32 {
        let (v0, v1, v2) = self.tick(x);
        self.m0 * v0 + self.m1 * v1 + self.m2 * v2
    }

    /// Filters `buf` in place with the selected response.
    pub fn process_block(&mut self, buf: &mut [f32]) {
        for x in buf.iter_mut() {
            *x = self.process(*x);
        }
    }

    /// Filters one sample and returns the six simultaneous outputs of the
    /// filter for the current cutoff and Q (bell and shelf modes change the
    /// coefficients, so use this with the other modes).
    #[inline]
    pub fn process_all(&mut self, x: f32) -> SvfOutputs {
        let (v0, v1, v2) = self.tick(x);
        let k = self.k;
        let high = v0 - k * v1 - v2;
        SvfOutputs {
            low: v2,
            high,
            band: k * v1,
            notch: v0 - k * v1,
            peak: v0 - k * v1 - 2.0 * v2,
            all: v0 - 2.0 * k * v1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{C, Lcg, TEST_FREQS, db, db_error, ratio_abs, tone_gain};

    // The example synth's kernel tests.

    fn control(cut: f32, res: f32, sr: f32) -> FilterControl {
        let (lo, hi) = log2_cutoff_range(sr);
        FilterControl {
            log2_cutoff: cut.log2(),
            env_octaves: 0.0,
            log2_min: lo,
            log2_max: hi,
            angle_scale: angle_scale(sr),
            k: resonance_to_k(res),
        }
    }

    fn kernel_gain(freq: f64, c: &FilterControl, sr: f64) -> f64 {
        let (a1, a2, a3) = coefs(0.0, c);
        let (mut s1, mut s2) = (0.0, 0.0);
        tone_gain(|x| lowpass(x, &mut s1, &mut s2, a1, a2, a3), freq, sr, 24_000, 4800)
    }

    #[test]
    fn kernel_low_pass_response() {
        let sr = 48_000.0;
        let c = control(1000.0, 0.0, sr as f32);
        assert!((kernel_gain(100.0, &c, sr) - 1.0).abs() < 0.02);
        assert!(kernel_gain(8000.0, &c, sr) < 0.03);
        // Q = 0.5 at the cutoff: -6 dB.
        assert!((kernel_gain(1000.0, &c, sr) - 0.5).abs() < 1e-4);
        // Full resonance peaks at Q = 20.
        let r = control(1000.0, 1.0, sr as f32);
        assert!((kernel_gain(1000.0, &r, sr) - 20.0).abs() < 0.01);
    }

    #[test]
    fn kernel_coefficients_are_finite_at_the_extremes() {
        for sr in [8_000.0f32, 44_100.0, 192_000.0] {
            let (lo, hi) = log2_cutoff_range(sr);
            for env in [0.0f32, 1.0] {
                for oct in [-6.0f32, 6.0] {
                    for cut in [20.0f32, 20_000.0] {
                        let c = FilterControl {
                            log2_cutoff: cut.log2(),
                            env_octaves: oct,
                            log2_min: lo,
                            log2_max: hi,
                            angle_scale: angle_scale(sr),
                            k: resonance_to_k(1.0),
                        };
                        let (a1, a2, a3) = coefs(env, &c);
                        assert!(a1.is_finite() && a2.is_finite() && a3.is_finite());
                        assert!(a1 > 0.0 && a2 > 0.0 && a3 > 0.0);
                    }
                }
            }
        }
    }

    #[test]
    fn step_form_matches_the_kernel() {
        // The state-update form is the same filter: over cutoffs from 20 Hz to 0.45 fs,
        // every resonance and envelope sweeps, white noise through both forms stays within
        // 2e-5 of the kernel's output (relative to the signal's peak), and so does the
        // response at the cutoff.
        let mut worst = 0.0f32;
        for sr in [44_100.0f32, 48_000.0, 96_000.0] {
            for cut in [20.0f32, 150.0, 1000.0, 8000.0, 20_000.0] {
                for res in [0.0f32, 0.5, 1.0] {
                    let mut c = control(cut, res, sr);
                    c.env_octaves = 3.0;
                    let (mut s1, mut s2, mut t1, mut t2) = (0.0, 0.0, 0.0, 0.0);
                    let mut rng = Lcg(11);
                    let mut peak = 0.0f32;
                    let mut err = 0.0f32;
                    for i in 0..20_000 {
                        let env = (i % 4000) as f32 / 4000.0;
                        let (a1, a2, a3) = coefs(env, &c);
                        let (m, q, d) = step_coefs(env, &c);
                        let x = rng.next_f32();
                        let y = lowpass(x, &mut s1, &mut s2, a1, a2, a3);
                        let z = lowpass_step(x, &mut t1, &mut t2, m, q, d);
                        assert!(z.is_finite(), "sr {sr} cut {cut} res {res}: {z}");
                        peak = peak.max(y.abs());
                        err = err.max((y - z).abs());
                    }
                    worst = worst.max(err / peak);
                }
            }
        }
        println!("step form vs kernel: worst difference {worst:.2e} of the peak");
        assert!(worst < 2e-5, "{worst}");
        let sr = 48_000.0;
        for res in [0.0f32, 1.0] {
            let c = control(1000.0, res, sr as f32);
            let (m, q, d) = step_coefs(0.0, &c);
            let (mut s1, mut s2) = (0.0, 0.0);
            let g = tone_gain(|x| lowpass_step(x, &mut s1, &mut s2, m, q, d), 1000.0, sr, 24_000, 4800);
            assert!((g - kernel_gain(1000.0, &c, sr)).abs() < 1e-4 * g, "res {res}: {g}");
        }
    }

    /// Runs `form` over runs of every length from 1 to [`BLOCK`] chained one after another
    /// (each from the state the last returned; `form(m, q, d, state, inputs, n, outputs)`
    /// returns the state after `n` samples), with coefficients from envelope sweeps that
    /// change them at every run, against the step form's arithmetic carried out in f64:
    /// over cutoffs from 20 Hz to 0.45 fs, every resonance, noise and a DC input (which
    /// shows any error in the steady-state gain at low cutoffs). Returns the worst error of
    /// the outputs and states of `form`, and of the f32 step form, relative to the peak.
    fn worst_against_the_step_form(
        mut form: impl FnMut(f32, f32, f32, (f32, f32), &[f32; BLOCK], usize, &mut [f32; BLOCK]) -> (f32, f32),
    ) -> (f64, f64) {
        let (mut worst, mut worst_step) = (0.0f64, 0.0f64);
        for sr in [44_100.0f32, 48_000.0, 192_000.0] {
            for cut in [20.0f32, 150.0, 1000.0, 8000.0, 20_000.0] {
                for res in [0.0f32, 0.5, 1.0] {
                    for dc in [false, true] {
                        let mut c = control(cut, res, sr);
                        c.env_octaves = 3.0;
                        let (mut t, mut s1, mut s2) = ((0.0f32, 0.0f32), 0.0f32, 0.0f32);
                        let (mut r1, mut r2) = (0.0f64, 0.0f64);
                        let mut rng = Lcg(5);
                        let (mut peak, mut err, mut err_step) = (0.0f64, 0.0f64, 0.0f64);
                        let (mut i, mut n) = (0usize, 0usize);
                        while i < 40_000 {
                            n = n % BLOCK + 1;
                            let env = ((i / 4000) % 2) as f32 * (i % 4000) as f32 / 4000.0;
                            let (m, q, d) = step_coefs(env, &c);
                            let mut x = [0.0f32; BLOCK];
                            x.iter_mut().for_each(|v| *v = if dc { 1.0 } else { rng.next_f32() });
                            let mut y = [0.0f32; BLOCK];
                            t = form(m, q, d, t, &x, n, &mut y);
                            let (m64, q64, d64) = (f64::from(m), f64::from(q), f64::from(d));
                            for k in 0..n {
                                let z = lowpass_step(x[k], &mut s1, &mut s2, m, q, d);
                                let v = f64::from(x[k]) - r2;
                                let n2 = (r2 + q64 * r1) + d64 * v;
                                let exact = 0.5 * (r2 + n2);
                                (r1, r2) = (m64 * r1 + q64 * v, n2);
                                peak = peak.max(exact.abs());
                                err = err.max((f64::from(y[k]) - exact).abs());
                                err_step = err_step.max((f64::from(z) - exact).abs());
                            }
                            err = err.max((f64::from(t.0) - r1).abs()).max((f64::from(t.1) - r2).abs());
                            assert!(y.iter().all(|v| v.is_finite()), "sr {sr} cut {cut} res {res}");
                            i += n;
                        }
                        worst = worst.max(err / peak);
                        worst_step = worst_step.max(err_step / peak);
                    }
                }
            }
        }
        (worst, worst_step)
    }

    #[test]
    fn block_matches_the_step_form() {
        // Outputs and states stay within 1e-5 of the signal's peak, and closer than the f32
        // step form itself comes.
        let mut block = LowpassBlock::default();
        let (worst, worst_step) = worst_against_the_step_form(|m, q, d, t, x, n, y| {
            block.prepare(m, q, d);
            block.run(t.0, t.1, x, y, n)
        });
        println!("block form: worst error {worst:.2e} of the peak (f32 step form: {worst_step:.2e})");
        assert!(worst < 1e-5 && worst < worst_step, "{worst} {worst_step}");
    }

    #[test]
    fn pairs_match_the_step_form() {
        // New coefficients at each run, as a voice whose envelope moves has: outputs and
        // states stay as close to the exact filter as the f32 step form itself comes (4e-5
        // of the signal's peak at the lowest cutoffs).
        let (worst, worst_step) =
            worst_against_the_step_form(|m, q, d, t, x, n, y| LowpassPairs::new(m, q, d).run(t.0, t.1, &x[..n], y));
        println!("pairs: worst error {worst:.2e} of the peak (f32 step form: {worst_step:.2e})");
        assert!(worst < 5e-5 && worst < 1.5 * worst_step, "{worst} {worst_step}");
    }

    #[test]
    fn a_run_of_pairs_over_fewer_samples_gives_the_same_outputs() {
        // The outputs of a run over the first n inputs are those of a run over all of them,
        // bit for bit, at every n, odd ones included; a run from the state after n over the
        // rest continues the longer run up to rounding.
        let c = control(700.0, 0.8, 48_000.0);
        let (m, q, d) = step_coefs(0.3, &c);
        let pairs = LowpassPairs::new(m, q, d);
        let mut rng = Lcg(11);
        let mut x = [0.0f32; 2 * BLOCK + 1];
        x.iter_mut().for_each(|v| *v = rng.next_f32());
        let mut full = [0.0f32; 2 * BLOCK + 1];
        pairs.run(0.1, -0.2, &x, &mut full);
        for n in 1..=x.len() {
            let mut part = [0.0f32; 2 * BLOCK + 1];
            let end = pairs.run(0.1, -0.2, &x[..n], &mut part);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&full[..n]), bits(&part[..n]), "n {n}");
            let mut rest = [0.0f32; 2 * BLOCK + 1];
            pairs.run(end.0, end.1, &x[n..], &mut rest);
            for k in 0..x.len() - n {
                assert!((rest[k] - full[n + k]).abs() < 1e-5, "n {n} k {k}: {} {}", rest[k], full[n + k]);
            }
        }
    }

    #[test]
    fn a_block_gives_the_same_results_whatever_its_length() {
        // The first k outputs of a block do not depend on how many samples it is run for,
        // and the state it returns after n samples is that of a longer block's n-th.
        let c = control(700.0, 0.8, 48_000.0);
        let (m, q, d) = step_coefs(0.3, &c);
        let mut block = LowpassBlock::default();
        block.prepare(m, q, d);
        let mut rng = Lcg(9);
        let mut x = [0.0f32; BLOCK];
        x.iter_mut().for_each(|v| *v = rng.next_f32());
        let (mut full, mut part) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        block.run(0.1, -0.2, &x, &mut full, BLOCK);
        for n in 1..=BLOCK {
            let end = block.run(0.1, -0.2, &x, &mut part, n);
            assert_eq!(full.map(f32::to_bits), part.map(f32::to_bits));
            // The state after n samples, carried into a block of the rest, continues it.
            let mut rest = [0.0f32; BLOCK];
            rest[..BLOCK - n].copy_from_slice(&x[n..]);
            let mut y = [0.0f32; BLOCK];
            block.run(end.0, end.1, &rest, &mut y, BLOCK);
            for k in 0..BLOCK - n {
                assert!((y[k] - full[n + k]).abs() < 1e-5, "n {n} k {k}: {} {}", y[k], full[n + k]);
            }
        }
    }

    #[test]
    fn kernel_matches_svf_low_pass() {
        // The fast coefficients agree with the exact ones to 1e-5 relative,
        // and the Svf low-pass tick is the kernel's arithmetic.
        let sr = 48_000.0f32;
        let c = control(1234.0, 0.3, sr);
        let (a1, a2, a3) = coefs(0.0, &c);
        let mut f = Svf::new(SvfMode::LowPass);
        f.set(1234.0, 1.0 / c.k, sr);
        for (x, y) in [(a1, f.a1), (a2, f.a2), (a3, f.a3)] {
            assert!(((x - y) / y).abs() < 1e-5, "{x} vs {y}");
        }
        f.a1 = a1;
        f.a2 = a2;
        f.a3 = a3;
        let (mut s1, mut s2) = (0.0, 0.0);
        let mut rng = Lcg(7);
        for _ in 0..1000 {
            let x = rng.next_f32();
            assert_eq!(f.process(x).to_bits(), lowpass(x, &mut s1, &mut s2, a1, a2, a3).to_bits());
        }
    }

    // The Svf object.

    /// Analytic |H| of the bilinear-transformed prototype at `freq`.
    fn analytic(mode: SvfMode, fc: f64, q: f64, gain_db: f64, freq: f64, sr: f64) -> f64 {
        let pi = std::f64::consts::PI;
        let s = C(0.0, (pi * freq / sr).tan() / (pi * fc / sr).tan());
        let k = 1.0 / q;
        let a = 10f64.powf(gain_db / 40.0);
        let d = [1.0, k, 1.0];
        match mode {
            SvfMode::LowPass => ratio_abs(s, [1.0, 0.0, 0.0], d),
            SvfMode::HighPass => ratio_abs(s, [0.0, 0.0, 1.0], d),
            SvfMode::BandPass => ratio_abs(s, [0.0, k, 0.0], d),
            SvfMode::Notch => ratio_abs(s, [1.0, 0.0, 1.0], d),
            SvfMode::Peak => ratio_abs(s, [-1.0, 0.0, 1.0], d),
            SvfMode::AllPass => ratio_abs(s, [1.0, -k, 1.0], d),
            // RBJ analog prototypes.
            SvfMode::Bell => ratio_abs(s, [1.0, a / q, 1.0], [1.0, 1.0 / (a * q), 1.0]),
            SvfMode::LowShelf => {
                let r = a.sqrt() / q;
                a * ratio_abs(s, [a, r, 1.0], [1.0, r, a])
            }
            SvfMode::HighShelf => {
                let r = a.sqrt() / q;
                a * ratio_abs(s, [1.0, r, a], [a, r, 1.0])
            }
        }
    }

    const MODES: [SvfMode; 9] = [
        SvfMode::LowPass,
        SvfMode::HighPass,
        SvfMode::BandPass,
        SvfMode::Notch,
        SvfMode::Peak,
        SvfMode::AllPass,
        SvfMode::Bell,
        SvfMode::LowShelf,
        SvfMode::HighShelf,
    ];

    #[test]
    fn response_matches_the_analytic_prototype() {
        let sr = 48_000.0;
        let configs = [
            (1000.0, std::f64::consts::FRAC_1_SQRT_2, 6.0),
            (200.0, 4.0, -12.0),
            (5000.0, 0.5, 12.0),
            (15_000.0, 2.0, -6.0),
        ];
        for mode in MODES {
            let mut worst = 0.0f64;
            for &(fc, q, g) in &configs {
                let mut f = Svf::new(mode);
                f.set(fc as f32, q as f32, sr as f32);
                f.set_gain_db(g as f32);
                for &freq in &TEST_FREQS {
                    f.reset();
                    let m = tone_gain(|x| f.process(x), freq, sr, 24_000, 4800);
                    let a = analytic(mode, fc, q, g, freq, sr);
                    let e = db_error(m, a);
                    assert!(e < 2e-4, "{mode:?} fc={fc} q={q} f={freq}: {m} vs {a} ({e} dB)");
                    worst = worst.max(e);
                }
            }
            println!("svf {mode:?}: worst deviation {worst:.2e} dB");
        }
    }

    #[test]
    fn landmark_gains() {
        let sr = 48_000.0;
        let gain = |mode, fc: f32, q: f32, g: f32, freq: f64| {
            let mut f = Svf::new(mode);
            f.set(fc, q, sr as f32);
            f.set_gain_db(g);
            db(tone_gain(|x| f.process(x), freq, sr, 24_000, 4800))
        };
        let q = std::f32::consts::FRAC_1_SQRT_2;
        // Butterworth low-pass and high-pass: -3.0103 dB at the cutoff.
        assert!((gain(SvfMode::LowPass, 1000.0, q, 0.0, 1000.0) + 3.0103).abs() < 1e-3);
        assert!((gain(SvfMode::HighPass, 1000.0, q, 0.0, 1000.0) + 3.0103).abs() < 1e-3);
        // Resonant low-pass: gain Q at the cutoff.
        assert!((gain(SvfMode::LowPass, 1000.0, 10.0, 0.0, 1000.0) - 20.0).abs() < 1e-3);
        // Band-pass 0 dB, peak 2Q, bell G, shelves G/2 at the centre.
        assert!(gain(SvfMode::BandPass, 2000.0, 3.0, 0.0, 2000.0).abs() < 1e-3);
        assert!((gain(SvfMode::Peak, 2000.0, 3.0, 0.0, 2000.0) - db(6.0)).abs() < 1e-3);
        assert!((gain(SvfMode::Bell, 2000.0, 3.0, 9.0, 2000.0) - 9.0).abs() < 1e-3);
        assert!((gain(SvfMode::LowShelf, 2000.0, q, 9.0, 2000.0) - 4.5).abs() < 1e-3);
        assert!((gain(SvfMode::HighShelf, 2000.0, q, -9.0, 2000.0) + 4.5).abs() < 1e-3);
        assert!((gain(SvfMode::LowShelf, 2000.0, q, 9.0, 20.0) - 9.0).abs() < 0.01);
        assert!((gain(SvfMode::HighShelf, 2000.0, q, -9.0, 20_000.0) + 9.0).abs() < 0.05);
        // All-pass: unit gain everywhere.
        for f in TEST_FREQS {
            assert!(gain(SvfMode::AllPass, 3000.0, 2.0, 0.0, f).abs() < 1e-3);
        }
    }

    #[test]
    fn simultaneous_outputs_match_the_modes() {
        let mut all = Svf::new(SvfMode::LowPass);
        all.set(700.0, 3.0, 44_100.0);
        let mut single: Vec<Svf> = MODES[..6]
            .iter()
            .map(|&m| {
                let mut f = Svf::new(m);
                f.set(700.0, 3.0, 44_100.0);
                f
            })
            .collect();
        let mut rng = Lcg(3);
        for _ in 0..2000 {
            let x = rng.next_f32();
            let o = all.process_all(x);
            let want = [o.low, o.high, o.band, o.notch, o.peak, o.all];
            for (f, w) in single.iter_mut().zip(want) {
                assert!((f.process(x) - w).abs() < 1e-5);
            }
        }
    }

    /// Spectral radius of the state-update matrix
    /// `[[2a1 - 1, -2a2], [2a2, 1 - 2a3]]` (the poles of the filter).
    fn pole_radius(f: &Svf) -> f64 {
        let (a1, a2, a3) = (f.a1 as f64, f.a2 as f64, f.a3 as f64);
        let (m00, m01, m10, m11) = (2.0 * a1 - 1.0, -2.0 * a2, 2.0 * a2, 1.0 - 2.0 * a3);
        let tr = m00 + m11;
        let det = m00 * m11 - m01 * m10;
        let disc = tr * tr / 4.0 - det;
        if disc < 0.0 { det.sqrt() } else { (tr / 2.0).abs() + disc.sqrt() }
    }

    #[test]
    fn stable_near_nyquist_and_at_high_q() {
        let mut rng = Lcg(11);
        for sr in [44_100.0f32, 48_000.0, 96_000.0] {
            for fc in [20.0f32, 1000.0, 0.45 * sr, 0.49 * sr, sr] {
                for q in [0.5f32, std::f32::consts::FRAC_1_SQRT_2, 2.0, 5.0, 10.0, 20.0] {
                    let mut f = Svf::new(SvfMode::LowPass);
                    f.set(fc, q, sr);
                    let r = pole_radius(&f);
                    // Analytic pole radius of the bilinear transform.
                    let g = (std::f64::consts::PI * f.cutoff_hz() as f64 / sr as f64).tan();
                    let k = 1.0 / f.q() as f64;
                    let want = ((1.0 - k * g + g * g) / (1.0 + k * g + g * g)).abs().sqrt();
                    let want = if k * k >= 4.0 {
                        // Real poles: the larger magnitude.
                        let d = (k * k - 4.0).sqrt() * g;
                        let den = 1.0 + k * g + g * g;
                        ((1.0 - g * g + d) / den).abs().max(((1.0 - g * g - d) / den).abs())
                    } else {
                        want
                    };
                    // Q = 0.5 is a double pole, which f32 coefficient rounding
                    // splits by O(√ε).
                    let tol = if q == 0.5 { 5e-4 } else { 1e-5 };
                    assert!(r < 1.0 && (r - want).abs() < tol, "fc={fc} q={q}: {r} vs {want}");
                    // Full-scale noise, then silence: bounded, then exactly 0.
                    let mut peak = 0.0f32;
                    for _ in 0..20_000 {
                        peak = peak.max(f.process(rng.next_f32()).abs());
                    }
                    assert!(peak.is_finite() && peak < 4.0 * q.max(1.0), "fc={fc} q={q} peak {peak}");
                    // Exactly 0 within the time the pole radius predicts for
                    // a fall from 1e10 to 1e-30, plus 10 % and 100 samples
                    // (the update matrix is not normal, so the state can
                    // first grow by a bounded factor).
                    let n = (1e-40f64.ln() / r.ln() * 1.1) as usize + 100;
                    for _ in 0..n {
                        f.process(0.0);
                    }
                    assert_eq!((f.ic1, f.ic2), (0.0, 0.0), "fc={fc} q={q} after {n}");
                }
            }
        }
    }

    #[test]
    fn stable_under_per_sample_modulation_and_bad_input() {
        let mut f = Svf::new(SvfMode::BandPass);
        let mut rng = Lcg(5);
        let mut peak = 0.0f32;
        for i in 0..100_000 {
            let fc = 20.0 * 1000f32.powf(0.5 + 0.5 * (i as f32 * 0.001).sin());
            f.set(fc, 20.0, 48_000.0);
            peak = peak.max(f.process(rng.next_f32()).abs());
        }
        assert!(peak.is_finite() && peak < 50.0, "peak {peak}");
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX] {
            let y = f.process(x);
            assert!(y.is_finite());
        }
        f.set(f32::NAN, f32::NAN, f32::NAN);
        assert_eq!((f.cutoff_hz(), f.sample_rate), (1000.0, 48_000.0));
        f.set(-5.0, 0.0, 48_000.0);
        assert_eq!((f.cutoff_hz(), f.q()), (SVF_MIN_HZ, SVF_Q_RANGE.0));
        f.set_gain_db(f32::INFINITY);
        assert_eq!(f.gain_db, SVF_GAIN_DB_RANGE.1);
        for _ in 0..1000 {
            assert!(f.process(1.0).is_finite());
        }
    }
}
