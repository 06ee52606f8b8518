//! Operations on sample buffers (`&mut [f32]` / `&[f32]`) and decibel
//! conversions.
//!
//! Functions taking two or more buffers process the length of the shortest
//! one and leave the rest of the destination untouched. Gains are linear
//! factors; a NaN gain counts as 0. Sample values are not inspected (NaN in,
//! NaN out) except by the measurements [`peak`], [`rms`] and [`is_silent`],
//! which count non-finite samples as 0.

/// The level [`gain_to_db`] returns for a gain of 0 (or below 1e-10).
pub const MIN_DB: f32 = -200.0;

/// A NaN gain made 0.
#[inline(always)]
fn sane_gain(g: f32) -> f32 {
    if g.is_nan() { 0.0 } else { g }
}

/// A sample for measurements: non-finite values count as 0.
#[inline(always)]
fn finite(x: f32) -> f32 {
    if x.is_finite() { x } else { 0.0 }
}

/// Sets every sample to 0.
pub fn clear(buf: &mut [f32]) {
    buf.fill(0.0);
}

/// Copies `src` into `dst`.
pub fn copy(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

/// `dst[i] += src[i]`.
pub fn add(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

/// `dst[i] += gain * src[i]`.
pub fn add_scaled(dst: &mut [f32], src: &[f32], gain: f32) {
    let g = sane_gain(gain);
    for (d, s) in dst.iter_mut().zip(src) {
        *d += g * *s;
    }
}

/// `buf[i] *= gain`.
pub fn scale(buf: &mut [f32], gain: f32) {
    let g = sane_gain(gain);
    for x in buf.iter_mut() {
        *x *= g;
    }
}

/// Multiplies `buf` by a gain that moves linearly from `from` (applied to
/// sample 0) towards `to`: sample `i` of `n` gets `from + (to - from) i / n`,
/// so the next buffer can start at `to` without a discontinuity in slope.
///
/// # Examples
///
/// ```
/// use trio_dsp::buffer::ramp_gain;
/// let mut buf = [1.0f32; 4];
/// ramp_gain(&mut buf, 0.0, 1.0);
/// assert_eq!(buf, [0.0, 0.25, 0.5, 0.75]);
/// ```
pub fn ramp_gain(buf: &mut [f32], from: f32, to: f32) {
    let (from, to) = (sane_gain(from), sane_gain(to));
    if from == to {
        scale(buf, from);
        return;
    }
    let n = buf.len() as f64;
    let (a, d) = (f64::from(from), f64::from(to) - f64::from(from));
    for (i, x) in buf.iter_mut().enumerate() {
        *x *= (a + d * (i as f64 / n)) as f32;
    }
}

/// Largest absolute sample value (0 for an empty buffer).
pub fn peak(buf: &[f32]) -> f32 {
    buf.iter().fold(0.0f32, |m, &x| m.max(finite(x).abs()))
}

/// Root mean square (0 for an empty buffer), accumulated in f64.
pub fn rms(buf: &[f32]) -> f32 {
    if buf.is_empty() {
        return 0.0;
    }
    let sum: f64 = buf.iter().map(|&x| f64::from(finite(x)) * f64::from(finite(x))).sum();
    (sum / buf.len() as f64).sqrt() as f32
}

/// Whether every sample's magnitude is at most `threshold` (linear; a NaN
/// threshold counts as 0).
pub fn is_silent(buf: &[f32], threshold: f32) -> bool {
    peak(buf) <= sane_gain(threshold)
}

/// Samples looked at together by [`first_sound`] and [`last_sound`] before they look for
/// the exact one (a chunk of comparisons the compiler vectorises).
const SOUND_CHUNK: usize = 16;

/// Whether any sample of `chunk` is not zero (`-0.0` is zero; NaN is not).
#[inline]
fn any_sound(chunk: &[f32]) -> bool {
    chunk.iter().fold(false, |any, &x| any | (x != 0.0))
}

/// Index of the first sample that is not exactly zero (`±0.0` count as zero, NaN does
/// not), or `None` for a silent buffer: where an effect's silent input ends.
pub fn first_sound(buf: &[f32]) -> Option<usize> {
    let mut base = 0;
    for chunk in buf.chunks(SOUND_CHUNK) {
        if any_sound(chunk) {
            return chunk.iter().position(|&x| x != 0.0).map(|i| base + i);
        }
        base += chunk.len();
    }
    None
}

/// Index of the last sample that is not exactly zero, or `None` for a silent buffer: how
/// long an effect's input has been silent at the end of a block. See [`first_sound`].
pub fn last_sound(buf: &[f32]) -> Option<usize> {
    let mut end = buf.len();
    for chunk in buf.rchunks(SOUND_CHUNK) {
        let start = end - chunk.len();
        if any_sound(chunk) {
            return chunk.iter().rposition(|&x| x != 0.0).map(|i| start + i);
        }
        end = start;
    }
    None
}

/// Crossfade: `dst[i] = (1 - wet) * dry[i] + wet * wet_buf[i]`, `wet`
/// clamped to `0..=1` (NaN counts as 0). `wet = 0` copies `dry` exactly and
/// `wet = 1` copies `wet_buf` exactly.
pub fn mix(dst: &mut [f32], dry: &[f32], wet_buf: &[f32], wet: f32) {
    let w = crate::math::clamp_or(wet, 0.0, 1.0, 0.0);
    for ((d, &a), &b) in dst.iter_mut().zip(dry).zip(wet_buf) {
        *d = if w == 0.0 {
            a
        } else if w == 1.0 {
            b
        } else {
            (1.0 - w) * a + w * b
        };
    }
}

/// Replaces NaN and ±∞ samples by 0 and returns how many were replaced.
pub fn sanitize(buf: &mut [f32]) -> usize {
    let mut n = 0;
    for x in buf.iter_mut() {
        if !x.is_finite() {
            *x = 0.0;
            n += 1;
        }
    }
    n
}

/// Linear gain for a level in dB: `10^(db / 20)`. NaN and −∞ give 0;
/// levels above +700 dB are clamped (the result stays finite).
///
/// # Examples
///
/// ```
/// use trio_dsp::buffer::{db_to_gain, gain_to_db};
/// assert!((db_to_gain(-6.0206) - 0.5).abs() < 1e-5);
/// assert!((gain_to_db(0.5) + 6.0206).abs() < 1e-4);
/// assert_eq!(db_to_gain(f32::NEG_INFINITY), 0.0);
/// ```
pub fn db_to_gain(db: f32) -> f32 {
    if db.is_nan() {
        return 0.0;
    }
    10f32.powf(db.min(700.0) / 20.0).min(f32::MAX)
}

/// Level in dB of a linear gain: `20 log10(|gain|)`, at least [`MIN_DB`]
/// (also for 0 and NaN); +∞ gives `f32::MAX`.
pub fn gain_to_db(gain: f32) -> f32 {
    let g = gain.abs();
    if g.is_nan() || g < 1e-10 {
        return MIN_DB;
    }
    (20.0 * g.log10()).min(f32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_sound_find_the_exact_samples() {
        assert_eq!(first_sound(&[]), None);
        assert_eq!(last_sound(&[]), None);
        for len in [1usize, 15, 16, 17, 64, 100] {
            let silent = vec![0.0f32; len];
            assert_eq!((first_sound(&silent), last_sound(&silent)), (None, None));
            let mut negative_zero = silent.clone();
            negative_zero.fill(-0.0);
            assert_eq!(first_sound(&negative_zero), None);
            for at in 0..len {
                for value in [1e-40f32, -0.5, f32::NAN, f32::INFINITY] {
                    let mut x = silent.clone();
                    x[at] = value;
                    assert_eq!((first_sound(&x), last_sound(&x)), (Some(at), Some(at)), "{len} {at} {value}");
                    if at + 3 < len {
                        x[at + 3] = 1.0;
                        assert_eq!((first_sound(&x), last_sound(&x)), (Some(at), Some(at + 3)));
                    }
                }
            }
        }
    }

    #[test]
    fn arithmetic() {
        let mut a = [1.0f32, 2.0, 3.0, 4.0];
        add(&mut a, &[1.0, 1.0]);
        assert_eq!(a, [2.0, 3.0, 3.0, 4.0]);
        add_scaled(&mut a, &[2.0; 8], 0.5);
        assert_eq!(a, [3.0, 4.0, 4.0, 5.0]);
        scale(&mut a, 2.0);
        assert_eq!(a, [6.0, 8.0, 8.0, 10.0]);
        scale(&mut a, f32::NAN);
        assert_eq!(a, [0.0; 4]);
        copy(&mut a, &[9.0, 8.0]);
        assert_eq!(a, [9.0, 8.0, 0.0, 0.0]);
        clear(&mut a);
        assert_eq!(a, [0.0; 4]);
    }

    #[test]
    fn ramp_is_linear_and_continues_across_buffers() {
        let mut buf = [1.0f32; 960];
        ramp_gain(&mut buf[..480], 1.0, 0.5);
        ramp_gain(&mut buf[480..], 0.5, 0.0);
        for (i, &g) in buf.iter().enumerate() {
            let want = 1.0 - i as f64 / 960.0;
            assert!((g as f64 - want).abs() < 1e-7, "i={i}: {g} vs {want}");
        }
        let mut c = [0.3f32; 5];
        ramp_gain(&mut c, 2.0, 2.0);
        assert_eq!(c, [0.6; 5]);
        ramp_gain(&mut [], 0.0, 1.0);
    }

    #[test]
    fn measurements() {
        let sine: Vec<f32> = (0..4800).map(|i| (std::f64::consts::TAU * i as f64 / 48.0).sin() as f32).collect();
        assert!((peak(&sine) - 1.0).abs() < 1e-6);
        // RMS of a unit sine over whole periods: 1/√2.
        assert!((rms(&sine) as f64 - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(peak(&[0.5, f32::NAN, -0.75, f32::INFINITY]), 0.75);
        assert_eq!(rms(&[3.0, f32::NAN, -3.0, 3.0]), 3.0 * (0.75f32).sqrt());
        assert!(is_silent(&[1e-6, -1e-6], 1e-5));
        assert!(!is_silent(&[1e-6, -1e-4], 1e-5));
        assert!(is_silent(&[], 0.0));
    }

    #[test]
    fn mixing_and_sanitising() {
        let mut d = [0.0f32; 3];
        mix(&mut d, &[1.0, 1.0, 1.0], &[0.0, 2.0, 4.0], 0.25);
        assert_eq!(d, [0.75, 1.25, 1.75]);
        mix(&mut d, &[0.1, 0.2, 0.3], &[5.0; 3], 0.0);
        assert_eq!(d, [0.1, 0.2, 0.3]);
        mix(&mut d, &[0.1, 0.2, 0.3], &[5.0; 3], 7.0);
        assert_eq!(d, [5.0; 3]);
        let mut b = [1.0, f32::NAN, f32::NEG_INFINITY, 2.0];
        assert_eq!(sanitize(&mut b), 2);
        assert_eq!(b, [1.0, 0.0, 0.0, 2.0]);
    }

    #[test]
    fn decibels() {
        for db in [-120.0f32, -60.0, -6.0, 0.0, 3.0, 20.0, 60.0] {
            let g = db_to_gain(db);
            assert!(((g as f64) / 10f64.powf(db as f64 / 20.0) - 1.0).abs() < 1e-6, "{db}");
            assert!((gain_to_db(g) - db).abs() < 1e-4, "{db}");
        }
        assert_eq!(db_to_gain(0.0), 1.0);
        assert_eq!(gain_to_db(1.0), 0.0);
        assert_eq!(gain_to_db(-0.5), gain_to_db(0.5));
        assert_eq!(db_to_gain(f32::NAN), 0.0);
        assert!(db_to_gain(f32::INFINITY).is_finite());
        assert_eq!(gain_to_db(0.0), MIN_DB);
        assert_eq!(gain_to_db(f32::NAN), MIN_DB);
        assert_eq!(gain_to_db(f32::INFINITY), f32::MAX);
    }
}
