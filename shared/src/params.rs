//! Parameter value mapping shared by every module.
//!
//! Parameter values travel as **normalized** numbers in `0.0..=1.0` (what VST3 hosts
//! send and expect). A [`ParamMapping`] turns a normalized value into the **plain** value
//! in the parameter's own unit (Hz, dB, seconds, an index) and back. The control module
//! defines each parameter's mapping and writes it into the shared block; the engine and
//! the bridge read it from there, so a reloaded control module can change a mapping
//! without touching the engine. All three use the functions below, so they agree exactly.

/// How a normalized value maps to a plain value. Stored as a `u32` in the shared block.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingKind {
    /// `plain = min + n * (max - min)`.
    Linear = 0,
    /// `plain = min * (max / min)^n`; `min` and `max` must be positive.
    Logarithmic = 1,
    /// `plain = min + round(n * steps)`; `steps = max - min`, an integer count.
    Stepped = 2,
    /// `plain = min + n^skew * (max - min)`; `skew > 1` gives more resolution near `min`.
    Skewed = 3,
}

impl MappingKind {
    /// Decodes a kind read from the shared block; `None` for an unknown code.
    pub const fn from_u32(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Linear),
            1 => Some(Self::Logarithmic),
            2 => Some(Self::Stepped),
            3 => Some(Self::Skewed),
            _ => None,
        }
    }
}

/// A parameter's normalized ↔ plain mapping.
///
/// # Examples
/// ```
/// use shared::params::{MappingKind, ParamMapping};
/// let cutoff = ParamMapping { kind: MappingKind::Logarithmic, min: 20.0, max: 20_000.0, skew: 1.0 };
/// assert!((cutoff.to_plain(0.5) - 632.455).abs() < 0.01);
/// assert!((cutoff.to_normalized(632.455) - 0.5).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamMapping {
    /// The curve.
    pub kind: MappingKind,
    /// Plain value at normalized 0.
    pub min: f64,
    /// Plain value at normalized 1.
    pub max: f64,
    /// Exponent for [`MappingKind::Skewed`]; ignored by the other kinds.
    pub skew: f64,
}

impl ParamMapping {
    /// A linear mapping from `min` to `max`.
    pub const fn linear(min: f64, max: f64) -> Self {
        Self { kind: MappingKind::Linear, min, max, skew: 1.0 }
    }

    /// A logarithmic mapping from `min` to `max` (both positive).
    pub const fn logarithmic(min: f64, max: f64) -> Self {
        Self { kind: MappingKind::Logarithmic, min, max, skew: 1.0 }
    }

    /// A stepped mapping over the integers `min..=max`.
    pub const fn stepped(min: f64, max: f64) -> Self {
        Self { kind: MappingKind::Stepped, min, max, skew: 1.0 }
    }

    /// A power-curve mapping from `min` to `max`.
    pub const fn skewed(min: f64, max: f64, skew: f64) -> Self {
        Self { kind: MappingKind::Skewed, min, max, skew }
    }

    /// Number of discrete steps (VST3 `stepCount`): `max - min` for stepped mappings, 0
    /// (continuous) otherwise.
    pub fn step_count(&self) -> u32 {
        match self.kind {
            MappingKind::Stepped => (self.max - self.min).round().max(0.0) as u32,
            _ => 0,
        }
    }

    /// Normalized `0..=1` (clamped) to plain.
    pub fn to_plain(&self, normalized: f64) -> f64 {
        let n = if normalized.is_nan() { 0.0 } else { normalized.clamp(0.0, 1.0) };
        match self.kind {
            MappingKind::Linear => self.min + n * (self.max - self.min),
            MappingKind::Logarithmic => self.min * (self.max / self.min).powf(n),
            MappingKind::Stepped => self.min + (n * f64::from(self.step_count())).round(),
            MappingKind::Skewed => self.min + n.powf(self.skew) * (self.max - self.min),
        }
    }

    /// Plain to normalized `0..=1`; plain values outside the range are clamped.
    pub fn to_normalized(&self, plain: f64) -> f64 {
        let range = self.max - self.min;
        if range == 0.0 || plain.is_nan() {
            return 0.0;
        }
        let lo = self.min.min(self.max);
        let hi = self.min.max(self.max);
        let p = plain.clamp(lo, hi);
        let n = match self.kind {
            MappingKind::Linear => (p - self.min) / range,
            MappingKind::Logarithmic => (p / self.min).ln() / (self.max / self.min).ln(),
            MappingKind::Stepped => {
                let steps = f64::from(self.step_count().max(1));
                (p - self.min).round() / steps
            }
            MappingKind::Skewed => ((p - self.min) / range).powf(1.0 / self.skew),
        };
        n.clamp(0.0, 1.0)
    }

    /// Checks that the mapping can be evaluated: finite bounds, positive bounds for
    /// logarithmic, an integer range for stepped, a positive skew.
    ///
    /// # Errors
    /// A sentence naming the offending field and value.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.min.is_finite() || !self.max.is_finite() {
            return Err("min and max must be finite numbers");
        }
        if self.min == self.max {
            return Err("min and max must differ");
        }
        match self.kind {
            MappingKind::Logarithmic if self.min <= 0.0 || self.max <= 0.0 => {
                Err("a logarithmic mapping needs min and max above zero")
            }
            MappingKind::Stepped if self.min.fract() != 0.0 || self.max.fract() != 0.0 => {
                Err("a stepped mapping needs whole-number min and max")
            }
            MappingKind::Skewed if !(self.skew.is_finite() && self.skew > 0.0) => {
                Err("a skewed mapping needs a finite skew above zero")
            }
            _ => Ok(()),
        }
    }
}

/// Parameter ids of the example instrument: the contract between its engine and its
/// control module. The id is also the VST3 `ParamID` and the index of the parameter's
/// slot in the shared block. A new plugin edits this list (ids must stay stable across
/// releases: saved projects refer to them).
pub mod id {
    /// Output gain, dB.
    pub const GAIN: u32 = 0;
    /// Oscillator waveform index: 0 saw, 1 square, 2 sine.
    pub const WAVEFORM: u32 = 1;
    /// Amplitude (and filter) envelope attack, seconds.
    pub const ATTACK: u32 = 2;
    /// Envelope decay, seconds.
    pub const DECAY: u32 = 3;
    /// Envelope sustain level, 0..1.
    pub const SUSTAIN: u32 = 4;
    /// Envelope release, seconds.
    pub const RELEASE: u32 = 5;
    /// Low-pass filter cutoff, Hz.
    pub const CUTOFF: u32 = 6;
    /// Filter resonance, 0..1 (1 is the edge of self-oscillation).
    pub const RESONANCE: u32 = 7;
    /// Envelope → cutoff amount, octaves (may be negative).
    pub const FILTER_ENV: u32 = 8;
    /// How much note velocity scales the level, 0..1.
    pub const VELOCITY_SENS: u32 = 9;
    /// Bypass: 0 off, 1 on (the output fades to silence).
    pub const BYPASS: u32 = 10;
    /// Arpeggiator: 0 off (host notes play), 1 on (host notes are held keys the control
    /// module arpeggiates).
    pub const ARP_ON: u32 = 11;
    /// Arpeggiator step length, a list index: 0 = 1/4, 1 = 1/8, 2 = 1/16, 3 = 1/32 note.
    pub const ARP_RATE: u32 = 12;
    /// Arpeggiator pattern, a list index: 0 up, 1 down, 2 up-down, 3 as played.
    pub const ARP_PATTERN: u32 = 13;
    /// Octaves the arpeggiator spans, 1..4.
    pub const ARP_OCTAVES: u32 = 14;
    /// Arpeggiator gate: note length as a fraction of a step, below 1.
    pub const ARP_GATE: u32 = 15;
    /// Arpeggiator tempo in BPM when the host gives none.
    pub const ARP_TEMPO: u32 = 16;
    /// Number of parameters of the example instrument.
    pub const COUNT: u32 = 17;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let maps = [
            ParamMapping::linear(-60.0, 6.0),
            ParamMapping::logarithmic(20.0, 20_000.0),
            ParamMapping::stepped(0.0, 2.0),
            ParamMapping::skewed(0.001, 5.0, 3.0),
        ];
        for m in maps {
            m.validate().unwrap();
            for i in 0..=100 {
                let n = f64::from(i) / 100.0;
                let back = m.to_normalized(m.to_plain(n));
                if m.kind == MappingKind::Stepped {
                    assert_eq!(m.to_plain(back), m.to_plain(n));
                } else {
                    assert!((back - n).abs() < 1e-9, "{m:?} n={n} back={back}");
                }
            }
        }
    }

    #[test]
    fn clamps_out_of_range_and_nan() {
        let m = ParamMapping::linear(0.0, 10.0);
        assert_eq!(m.to_plain(2.0), 10.0);
        assert_eq!(m.to_plain(-1.0), 0.0);
        assert_eq!(m.to_plain(f64::NAN), 0.0);
        assert_eq!(m.to_normalized(42.0), 1.0);
        assert_eq!(ParamMapping::stepped(0.0, 2.0).step_count(), 2);
    }

    #[test]
    fn rejects_bad_mappings() {
        assert!(ParamMapping::logarithmic(0.0, 10.0).validate().is_err());
        assert!(ParamMapping::stepped(0.0, 2.5).validate().is_err());
        assert!(ParamMapping::linear(1.0, 1.0).validate().is_err());
        assert!(ParamMapping::skewed(0.0, 1.0, -1.0).validate().is_err());
    }
}
