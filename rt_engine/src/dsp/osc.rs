//! Oscillators: PolyBLEP saw and square, and a polynomial sine, from the DSP library
//! (`trio_dsp::osc`, where their alias rejection is measured).
//!
//! Every oscillator is a pure function of the phase (in `[0, 1)`) and the
//! reciprocal of the phase increment, written without branches so that the
//! voice loop vectorises across voices.

/// The oscillator waveform, shared by all voices. Switching it takes effect
/// on the next rendered sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Waveform {
    /// Band-limited (PolyBLEP) rising sawtooth.
    #[default]
    Saw,
    /// Band-limited (PolyBLEP) square, 50 % duty cycle.
    Square,
    /// Sine.
    Sine,
}

/// A waveform kernel used by the monomorphised voice loop.
pub(crate) trait Oscillator {
    /// One output sample for `phase` in `[0, 1)`; `inv_inc` is `1 / increment`
    /// (0 for a silent lane).
    fn sample(phase: f32, inv_inc: f32) -> f32;

    /// `x[k] = sample(phase + k step) * amp` for a block of one voice, from a fixed-point
    /// phase ([`phase_step`]): what a voice rendered on its own computes. A kernel may
    /// take a shortcut here as long as every sample comes out bit for bit the same.
    #[inline(always)]
    fn fill(phase: u32, step: u32, inv_inc: f32, amp: f32, x: &mut [f32; BLOCK]) {
        fill_phases(phase, step, x, |p| Self::sample(p, inv_inc) * amp);
    }
}

/// PolyBLEP sawtooth kernel.
pub(crate) struct SawOsc;
/// PolyBLEP square kernel.
pub(crate) struct SquareOsc;
/// Sine kernel.
pub(crate) struct SineOsc;

use trio_dsp::BLOCK;

pub(crate) use trio_dsp::osc::{
    blep_saw, blep_saw_block, blep_square, fill_phases, phase_step, phase_to_unit, sine, step_reciprocal,
};

impl Oscillator for SawOsc {
    #[inline(always)]
    fn sample(phase: f32, inv_inc: f32) -> f32 {
        blep_saw(phase, inv_inc)
    }

    /// Leaves out the BLEP corrections on blocks where they are exactly 0
    /// ([`trio_dsp::osc::blep_saw_block`]).
    #[inline(always)]
    fn fill(phase: u32, step: u32, inv_inc: f32, amp: f32, x: &mut [f32; BLOCK]) {
        blep_saw_block(phase, step, inv_inc, amp, x);
    }
}

impl Oscillator for SquareOsc {
    /// Difference of two PolyBLEP saws half a period apart: `+1` for the
    /// first half of the period, `-1` for the second.
    #[inline(always)]
    fn sample(phase: f32, inv_inc: f32) -> f32 {
        blep_square(phase, inv_inc)
    }
}

impl Oscillator for SineOsc {
    #[inline(always)]
    fn sample(phase: f32, _inv_inc: f32) -> f32 {
        sine(phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kernel's block fill gives bit for bit the samples of its per-sample form, for
    /// blocks far from the wrap (where the saw skips its corrections), blocks across and
    /// right next to it, stopped oscillators and the highest pitches.
    #[test]
    fn block_fills_equal_the_per_sample_kernels() {
        fn check<O: Oscillator>(name: &str) {
            let mut shortcuts = 0;
            let mut rng = super::super::Lcg(0x2545_f491);
            let mut next = move || rng.next_u32();
            for case in 0..20_000 {
                let inc = match case % 4 {
                    0 => 0.0,
                    1 => 1e-4 + (next() % 1000) as f32 * 1e-5,
                    2 => (next() % 4500) as f32 * 1e-4,
                    _ => 20.0 / 48_000.0,
                };
                let step = phase_step(inc);
                let inv_inc = step_reciprocal(step);
                // Start anywhere, or within a few steps of the wrap on either side.
                let phase = match case % 3 {
                    0 => next(),
                    1 => 0u32.wrapping_sub(step.wrapping_mul(next() % 20)),
                    _ => step.wrapping_mul(next() % 3),
                };
                let amp = 0.25 + (next() % 100) as f32 / 100.0;
                let mut x = [0.0f32; BLOCK];
                O::fill(phase, step, inv_inc, amp, &mut x);
                let mut p = phase;
                for (k, v) in x.iter().enumerate() {
                    let want = O::sample(phase_to_unit(p), inv_inc) * amp;
                    assert_eq!(v.to_bits(), want.to_bits(), "{name}: phase {phase} step {step}, sample {k}");
                    p = p.wrapping_add(step);
                }
                let far = |p: u32| {
                    let u = phase_to_unit(p);
                    1.0 - u * inv_inc <= 0.0 && 1.0 - (1.0 - u) * inv_inc <= 0.0
                };
                shortcuts += usize::from((0..BLOCK as u32).all(|k| far(phase.wrapping_add(step.wrapping_mul(k)))));
            }
            // The cases reach both the shortcut and the full kernel.
            assert!((1_000..19_000).contains(&shortcuts), "{name}: {shortcuts} blocks far from the wrap");
            // The edges: the last sample at the top of the cycle or just past the wrap,
            // blocks ending a few steps before the wrap, the smallest steps, and the
            // largest step that fits the block without wrapping.
            let widest = u32::MAX / (BLOCK as u32 - 1);
            for step in [1, 255, 256, 257, 65_536, phase_step(0.01), phase_step(0.3), widest] {
                let inv_inc = step_reciprocal(step);
                let span = step.wrapping_mul(BLOCK as u32 - 1);
                let mut starts = vec![0, u32::MAX.wrapping_sub(span), 0u32.wrapping_sub(span)];
                for d in 0..=3u32 {
                    starts.push(0u32.wrapping_sub(span).wrapping_sub(step.wrapping_mul(d)).wrapping_sub(d));
                    starts.push(0u32.wrapping_sub(span).wrapping_add(d));
                }
                for phase in starts {
                    let mut x = [0.0f32; BLOCK];
                    O::fill(phase, step, inv_inc, 1.0, &mut x);
                    let mut p = phase;
                    for (k, v) in x.iter().enumerate() {
                        let want = O::sample(phase_to_unit(p), inv_inc);
                        assert_eq!(v.to_bits(), want.to_bits(), "{name}: phase {phase} step {step}, sample {k}");
                        p = p.wrapping_add(step);
                    }
                }
            }
        }
        check::<SawOsc>("saw");
        check::<SquareOsc>("square");
        check::<SineOsc>("sine");
    }
}
