//! TrioEcho's shared contract: what its engine and its control module both know.
//!
//! - [`id`]: the parameter ids (the VST3 `ParamID`s; stable across versions, saved
//!   projects and automation refer to them);
//! - [`DIVISIONS`]: the tempo-synced note values of the `Division` parameter, by list
//!   index, with their length in beats;
//! - [`delay_seconds`]: how the engine turns `Sync`, `Time`, `Division` and the host's
//!   tempo into a delay time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Parameter ids: the contract between the engine and the control module. The id is the
/// VST3 `ParamID` the host saves automation under; never change one after release.
pub mod id {
    /// Dry/wet mix, 0..1 (0 = the input only, 1 = the echoes only).
    pub const MIX: u32 = 0;
    /// Tempo sync: 0 off (the delay is `TIME`), 1 on (the delay is `DIVISION` at the
    /// host's tempo, or `TIME` when the host gives no tempo).
    pub const SYNC: u32 = 1;
    /// Free delay time, seconds (0.001..2).
    pub const TIME: u32 = 2;
    /// Synced delay time, a list index into [`crate::DIVISIONS`].
    pub const DIVISION: u32 = 3;
    /// Feedback, 0..0.95 (the gain of each repeat).
    pub const FEEDBACK: u32 = 4;
    /// Low-pass cutoff in the feedback path, Hz (200..20 000).
    pub const TONE: u32 = 5;
    /// High-pass cutoff in the feedback path, Hz (20..2 000).
    pub const LOW_CUT: u32 = 6;
    /// Ducking depth, 0..1 (the share of the echoes removed while the key signal is loud).
    pub const DUCK: u32 = 7;
    /// Level above which the ducker starts working, dB (-60..0).
    pub const DUCK_THRESHOLD: u32 = 8;
    /// Ducker release time, seconds (0.01..2).
    pub const DUCK_RELEASE: u32 = 9;
    /// Limiter ceiling, dB (-24..0).
    pub const CEILING: u32 = 10;
    /// Limiter lookahead, seconds (0..0.02): the plugin's latency.
    pub const LOOKAHEAD: u32 = 11;
    /// Bypass: 0 off, 1 on (the output is the input delayed by the latency).
    pub const BYPASS: u32 = 12;
    /// Number of parameters.
    pub const COUNT: u32 = 13;
}

/// One tempo-synced note value of the `Division` parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Division {
    /// The name hosts show, e.g. `"1/8 Dotted"`.
    pub name: &'static str,
    /// Its length in beats (quarter notes).
    pub beats: f64,
}

/// The `Division` list, by index.
pub const DIVISIONS: [Division; 6] = [
    Division { name: "1/4", beats: 1.0 },
    Division { name: "1/8", beats: 0.5 },
    Division { name: "1/8 Dotted", beats: 0.75 },
    Division { name: "1/16", beats: 0.25 },
    Division { name: "1/4 Triplet", beats: 2.0 / 3.0 },
    Division { name: "1/8 Triplet", beats: 1.0 / 3.0 },
];

/// The default `Division` (1/8 dotted, the classic rhythmic delay).
pub const DEFAULT_DIVISION: u32 = 2;

/// Shortest delay time, seconds.
pub const MIN_DELAY_S: f64 = 0.001;
/// Longest delay time, seconds.
pub const MAX_DELAY_S: f64 = 2.0;
/// Longest lookahead of the limiter, seconds.
pub const MAX_LOOKAHEAD_S: f64 = 0.020;

/// The delay time in seconds: with `sync` on and a tempo from the host, `division`'s
/// length at `tempo_bpm`; otherwise `time_s`. Clamped to
/// [`MIN_DELAY_S`]`..=`[`MAX_DELAY_S`] (a synced value longer than the maximum, a 1/4
/// note below 30 BPM, is held at the maximum); NaN gives the minimum. An out-of-range
/// division index counts as the last one.
///
/// # Examples
/// ```
/// use trio_echo_common::delay_seconds;
/// assert_eq!(delay_seconds(true, 0.375, 1, Some(120.0)), 0.25); // 1/8 at 120 BPM
/// assert_eq!(delay_seconds(true, 0.375, 1, None), 0.375); // no tempo: the free time
/// assert_eq!(delay_seconds(false, 0.375, 1, Some(120.0)), 0.375);
/// ```
pub fn delay_seconds(sync: bool, time_s: f64, division: usize, tempo_bpm: Option<f64>) -> f64 {
    let synced = match tempo_bpm {
        Some(bpm) if sync && bpm.is_finite() && bpm > 0.0 => {
            let beats = DIVISIONS.get(division).or(DIVISIONS.last()).map_or(1.0, |d| d.beats);
            60.0 / bpm * beats
        }
        _ => time_s,
    };
    if synced.is_nan() { MIN_DELAY_S } else { synced.clamp(MIN_DELAY_S, MAX_DELAY_S) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisions_at_120_bpm() {
        let want = [0.5, 0.25, 0.375, 0.125, 1.0 / 3.0, 1.0 / 6.0];
        for (i, w) in want.iter().enumerate() {
            let got = delay_seconds(true, 1.0, i, Some(120.0));
            assert!((got - w).abs() < 1e-12, "{}: {got}", DIVISIONS[i].name);
        }
    }

    #[test]
    fn clamps_and_falls_back() {
        assert_eq!(delay_seconds(true, 0.3, 0, Some(20.0)), MAX_DELAY_S);
        assert_eq!(delay_seconds(true, 0.3, 0, Some(f64::NAN)), 0.3);
        assert_eq!(delay_seconds(true, 0.3, 0, Some(0.0)), 0.3);
        assert_eq!(delay_seconds(false, f64::NAN, 0, None), MIN_DELAY_S);
        assert_eq!(delay_seconds(false, 10.0, 0, None), MAX_DELAY_S);
        assert_eq!(delay_seconds(false, -1.0, 0, None), MIN_DELAY_S);
        assert_eq!(delay_seconds(true, 1.0, 99, Some(60.0)), 1.0 / 3.0);
    }
}
