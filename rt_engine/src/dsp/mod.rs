//! The DSP of the example polyphonic subtractive synthesizer.
//!
//! Signal flow per voice: band-limited oscillator (PolyBLEP saw / square, or
//! sine) → resonant low-pass state-variable filter (cutoff modulated by the
//! amplitude envelope) → ADSR amplitude envelope × velocity gain. Voices are
//! summed, scaled by a fixed headroom factor and the smoothed output gain,
//! faded by the bypass ramp and written identically to both channels.
//!
//! Everything here is plain safe Rust over `f32`, deterministic (no
//! randomness, clocks or hashing), and allocation-free after construction:
//! all voice state lives in fixed-size arrays inside [`Synth`].
//!
//! Voices are laid out as a struct of arrays in groups of [`LANES`] voices so
//! that the per-sample inner loop processes several voices at once and the
//! compiler can keep it in vector registers. A group where at most three voices
//! sound renders each voice on its own, a control period at a time, as one
//! block whose samples are computed independently from where the voice stood
//! (closed-form phase and envelope, the filter's state-space form from tables
//! built for its coefficients): a voice alone then uses the vector across time
//! instead of one lane of it. A voice whose filter coefficients changed since
//! its last block (attack, decay, release, a moving cutoff) runs its filter two
//! samples per step instead ([`trio_dsp::svf::LowpassPairs`]), which costs a
//! third of building the tables. When every sounding voice renders on its own,
//! whole periods go straight from each voice into the output. Slow-moving work
//! (envelope stage changes, filter coefficients, cutoff / resonance smoothing)
//! runs at a control rate of one update every [`CONTROL_PERIOD`] samples, on a
//! grid counted from the last reset, so the output never depends on how the host
//! block is split between two events.

mod envelope;
mod filter;
mod osc;
mod smoother;
mod synth;
mod voice;

pub use osc::Waveform;
pub use smoother::Smoother;
pub use synth::{Synth, SynthParams};
pub use voice::VoiceSnapshot;

/// Number of voices processed together in the inner loop (one voice group).
pub const LANES: usize = 8;

/// Samples between two control-rate updates (envelope stages, filter
/// coefficients, cutoff and resonance smoothing).
pub const CONTROL_PERIOD: usize = 16;

/// The indices of the set bits of `mask`, lowest first, each taken modulo `N` (the
/// length of what they index, so indexing needs no bounds check): the sounding lanes of a
/// group, or the groups of the synth that hold a voice.
#[inline(always)]
pub(crate) fn set_bits<const N: usize>(mut mask: u32) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize % N;
            mask &= mask - 1;
            i
        })
    })
}

/// A deterministic generator for the tests (Knuth's MMIX linear congruential constants).
#[cfg(test)]
pub(crate) struct Lcg(pub u64);

#[cfg(test)]
impl Lcg {
    fn advance(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    /// A value over all of `u32`.
    pub fn next_u32(&mut self) -> u32 {
        (self.advance() >> 32) as u32
    }

    /// A value below `n`.
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.advance() >> 33) as u32) % n
    }
}
