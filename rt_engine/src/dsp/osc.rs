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
}

/// PolyBLEP sawtooth kernel.
pub(crate) struct SawOsc;
/// PolyBLEP square kernel.
pub(crate) struct SquareOsc;
/// Sine kernel.
pub(crate) struct SineOsc;

pub(crate) use trio_dsp::osc::{blep_saw, blep_square, phase_step, phase_to_unit, sine, step_reciprocal};

impl Oscillator for SawOsc {
    #[inline(always)]
    fn sample(phase: f32, inv_inc: f32) -> f32 {
        blep_saw(phase, inv_inc)
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
