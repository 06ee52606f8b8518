//! Measurement helpers shared by the unit tests (f64 arithmetic throughout).

use std::f64::consts::TAU;

/// Deterministic linear congruential generator (Knuth's MMIX constants).
pub struct Lcg(pub u64);

impl Lcg {
    /// Next value, uniform in `[-1, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f64 / (1u64 << 23) as f64 - 1.0) as f32
    }
}

/// In-place iterative radix-2 FFT of `(re, im)`; `re.len()` must be a power
/// of two.
pub fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    assert!(n.is_power_of_two() && im.len() == n);
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -TAU / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * c - im[b] * s;
                let ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

/// Power spectrum (bins `0..=n/2`) of the Hann-windowed signal.
pub fn hann_power_spectrum(x: &[f32]) -> Vec<f64> {
    let n = x.len();
    let mut re: Vec<f64> =
        x.iter().enumerate().map(|(i, &v)| (0.5 - 0.5 * (TAU * i as f64 / n as f64).cos()) * v as f64).collect();
    let mut im = vec![0.0; n];
    fft(&mut re, &mut im);
    (0..=n / 2).map(|k| re[k] * re[k] + im[k] * im[k]).collect()
}

/// Steady-state gain of `process` at `freq` Hz: feeds a unit sine for
/// `settle` samples, then `n` more samples, and demodulates the output
/// against sine and cosine over those `n`. Exact (no leakage) when `freq`
/// is a multiple of `sr / n`.
pub fn tone_gain(mut process: impl FnMut(f32) -> f32, freq: f64, sr: f64, settle: usize, n: usize) -> f64 {
    let w = TAU * freq / sr;
    let (mut a, mut b) = (0.0, 0.0);
    for i in 0..settle + n {
        let ph = w * i as f64;
        let y = process(ph.sin() as f32) as f64;
        if i >= settle {
            a += y * ph.sin();
            b += y * ph.cos();
        }
    }
    2.0 * (a * a + b * b).sqrt() / n as f64
}

/// `20 log10(x)`.
pub fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Complex number helpers for analytic responses.
#[derive(Clone, Copy, Debug)]
pub struct C(pub f64, pub f64);

impl C {
    pub fn add(self, o: C) -> C {
        C(self.0 + o.0, self.1 + o.1)
    }
    pub fn mul(self, o: C) -> C {
        C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }
    pub fn scale(self, k: f64) -> C {
        C(self.0 * k, self.1 * k)
    }
    pub fn abs(self) -> f64 {
        self.0.hypot(self.1)
    }
}

/// `|b0 + b1 s + b2 s^2| / |a0 + a1 s + a2 s^2|` at complex `s`.
pub fn ratio_abs(s: C, b: [f64; 3], a: [f64; 3]) -> f64 {
    let s2 = s.mul(s);
    let num = C(b[0], 0.0).add(s.scale(b[1])).add(s2.scale(b[2]));
    let den = C(a[0], 0.0).add(s.scale(a[1])).add(s2.scale(a[2]));
    num.abs() / den.abs()
}

/// Test frequencies, log-spaced 20 Hz .. 20 kHz, rounded to multiples of
/// 10 Hz (the demodulation bin width at 48 kHz with `n = 4800`).
pub const TEST_FREQS: [f64; 15] =
    [20.0, 50.0, 100.0, 200.0, 350.0, 500.0, 700.0, 1000.0, 1400.0, 2000.0, 3000.0, 5000.0, 8000.0, 12_000.0, 20_000.0];

/// Compares a measured to an analytic gain: the error in dB where the
/// analytic gain is above -80 dB; below that (stop bands, notches, where
/// f32 rounding sets the floor) 0 after checking that the absolute error is
/// below 5e-4 (-66 dB).
pub fn db_error(measured: f64, analytic: f64) -> f64 {
    if analytic > 1e-4 {
        (db(measured) - db(analytic)).abs()
    } else {
        assert!((measured - analytic).abs() < 5e-4, "measured {measured:e} analytic {analytic:e}");
        0.0
    }
}
