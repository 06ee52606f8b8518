//! Parameter smoothing, from the DSP library (`trio_dsp::smooth`).

pub use trio_dsp::smooth::Smoother;
