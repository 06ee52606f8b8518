//! The per-voice resonant low-pass filter, from the DSP library (`trio_dsp::svf`): the
//! trapezoidal state-variable filter with its coefficients computed at the control rate.

pub(crate) use trio_dsp::svf::{FilterControl, angle_scale, coefs, log2_cutoff_range, lowpass, resonance_to_k};
