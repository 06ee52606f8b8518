//! The per-voice resonant low-pass filter, from the DSP library (`trio_dsp::svf`): the
//! trapezoidal state-variable filter in its state-update form, with its coefficients computed
//! at the control rate.

pub(crate) use trio_dsp::svf::{
    FilterControl, angle_scale, log2_cutoff_at, log2_cutoff_range, lowpass_step, resonance_to_k, step_coefs,
};
