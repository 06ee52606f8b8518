//! The ADSR envelope's segments, from the DSP library (`trio_dsp::env`): every stage is
//! one segment `env = clamp(env * mul + add, floor, 1)`, evaluated per sample for every
//! voice with no branches; stage changes are checked at the control rate.

pub(crate) use trio_dsp::env::{EnvCoefs, MAX_TIME_S, SILENCE, Segment, SegmentBlock, Stage};
