//! Parameters: how a value maps between normalized and plain, how it is shown and typed,
//! and how a plugin defines its parameters.
//!
//! Values come in two forms. A **plain** value is in the parameter's own unit (Hz, dB,
//! seconds, a 0..1 fraction, a list index); a **normalized** value is `0.0..=1.0`, what
//! VST3 hosts send. A [`ParamMapping`] converts between them; the control module
//! publishes each parameter's mapping and [`Display`] rule into the shared block, so the
//! engine maps values and the bridge formats and parses text with this same code, on the
//! caller's thread, without asking the control module.
//!
//! A plugin defines its parameters with [`ParamDef`] in its control module:
//!
//! ```
//! use trio::params::{ParamDef, ParamMapping};
//! let cutoff = ParamDef::float(6, "cutoff", "Filter Cutoff", ParamMapping::logarithmic(20.0, 20_000.0), 8000.0)
//!     .short_name("Cutoff")
//!     .group("Filter")
//!     .hertz();
//! assert_eq!(cutoff.format(1200.0), "1.20 kHz");
//! assert_eq!(cutoff.parse("440 hz").unwrap(), 440.0);
//! let wave = ParamDef::list(1, "waveform", "Waveform", &["Saw", "Square", "Sine"], 0);
//! assert_eq!(wave.format(2.0), "Sine");
//! ```

use std::fmt;

use crate::abi::param_flags;

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
/// use trio::params::{MappingKind, ParamMapping};
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

    /// Brings any plain value into the range: clamped to the nearest end, rounded to a
    /// whole step for stepped mappings; NaN gives `fallback`.
    pub fn clamp(&self, plain: f64, fallback: f64) -> f64 {
        if plain.is_nan() {
            return fallback;
        }
        let lo = self.min.min(self.max);
        let hi = self.min.max(self.max);
        let p = plain.clamp(lo, hi);
        match self.kind {
            MappingKind::Stepped => (self.min + (p - self.min).round()).clamp(lo, hi),
            _ => p,
        }
    }

    /// Checks that the mapping can be evaluated: finite bounds, positive bounds for
    /// logarithmic, an integer range for stepped, a positive skew.
    ///
    /// # Errors
    /// A sentence naming the offending field and value.
    pub fn validate(&self) -> Result<(), String> {
        if !self.min.is_finite() || !self.max.is_finite() {
            return Err(format!("min {} and max {} must be finite numbers", self.min, self.max));
        }
        if self.min == self.max {
            return Err(format!("min and max are both {}: they must differ", self.min));
        }
        match self.kind {
            MappingKind::Logarithmic if self.min <= 0.0 || self.max <= 0.0 => Err(format!(
                "a logarithmic mapping needs min and max above zero (they are {} and {})",
                self.min, self.max
            )),
            MappingKind::Stepped if self.min.fract() != 0.0 || self.max.fract() != 0.0 => Err(format!(
                "a stepped mapping needs whole-number min and max (they are {} and {})",
                self.min, self.max
            )),
            MappingKind::Skewed if !(self.skew.is_finite() && self.skew > 0.0) => {
                Err(format!("a skewed mapping needs a finite skew above zero (it is {})", self.skew))
            }
            _ => Ok(()),
        }
    }

    /// The plain value for `normalized`, nudged by a few ulps where that makes it map back
    /// to exactly the same normalized value. Saved state stores plain values; with this,
    /// loading a state restores a value bit for bit whenever some plain value maps back to
    /// it. Not every normalized value has one: where the mapping folds several normalized
    /// values onto one plain value (a linear range's rounding, a skewed mapping near its
    /// bottom), the state restores the nearest, within the mapping's resolution (measured
    /// for TrioSynth's parameters: at most 3e-6 relative, near the bottom of a skewed
    /// range; for most values none).
    pub fn exact_plain(&self, normalized: f64) -> f64 {
        let plain = self.to_plain(normalized);
        if self.to_normalized(plain) == normalized {
            return plain;
        }
        let (mut up, mut down) = (plain, plain);
        for _ in 0..8 {
            up = up.next_up();
            down = down.next_down();
            for candidate in [up, down] {
                if self.to_normalized(candidate) == normalized {
                    return candidate;
                }
            }
        }
        plain
    }
}

/// How a value is shown and typed. Stored in the shared block as two bytes.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayKind {
    /// A number with `precision` decimals and the unit: `"0.50"`, `"3.00 st"`.
    Number = 0,
    /// The name of the value from the parameter's value names: `"Saw"`.
    List = 1,
    /// A frequency: `"440 Hz"` below 1 kHz (`precision` decimals), `"1.20 kHz"` above
    /// (`precision + 2` decimals).
    Hertz = 2,
    /// A level: `"-6.0 dB"` (`precision` decimals; `"-inf dB"` for zero gain in a
    /// `gain` parameter is not used: levels are plain dB values).
    Decibels = 3,
    /// A time given in seconds: `"5.0 ms"` below 1 s (`precision` decimals of ms),
    /// `"1.20 s"` above (`precision + 1` decimals).
    Seconds = 4,
    /// A 0..1 fraction shown as a percentage: `"70 %"` (`precision` decimals).
    Percent = 5,
    /// A signed amount in octaves: `"+2.0 oct"`.
    Octaves = 6,
    /// A tempo: `"120.0 BPM"`.
    Bpm = 7,
    /// A signed number of semitones: `"+7.0 st"`.
    Semitones = 8,
    /// The control module formats and parses the value itself
    /// ([`crate::control::Control::format_value`]); hosts' text calls then wait for the
    /// control worker.
    Custom = 255,
}

impl DisplayKind {
    /// Decodes a kind read from the shared block.
    pub const fn from_u8(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Number),
            1 => Some(Self::List),
            2 => Some(Self::Hertz),
            3 => Some(Self::Decibels),
            4 => Some(Self::Seconds),
            5 => Some(Self::Percent),
            6 => Some(Self::Octaves),
            7 => Some(Self::Bpm),
            8 => Some(Self::Semitones),
            255 => Some(Self::Custom),
            _ => None,
        }
    }

    /// The decimals used when a definition does not set them.
    pub const fn default_precision(self) -> u8 {
        match self {
            Self::Number => 2,
            Self::Hertz | Self::Percent | Self::List | Self::Custom => 0,
            Self::Decibels | Self::Seconds | Self::Octaves | Self::Bpm | Self::Semitones => 1,
        }
    }

    /// The unit label hosts show beside the value (VST3 `ParameterInfo::units`) when the
    /// definition gives none.
    pub const fn default_unit(self) -> &'static str {
        match self {
            Self::Hertz => "Hz",
            Self::Decibels => "dB",
            Self::Seconds => "s",
            Self::Percent => "%",
            Self::Octaves => "oct",
            Self::Bpm => "BPM",
            Self::Semitones => "st",
            Self::Number | Self::List | Self::Custom => "",
        }
    }
}

/// A parameter's display rule: its [`DisplayKind`] and the decimals to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Display {
    /// How the value is shown.
    pub kind: DisplayKind,
    /// Decimals (see each [`DisplayKind`] for where they apply).
    pub precision: u8,
}

impl Display {
    /// The rule `kind` with its default precision.
    pub const fn new(kind: DisplayKind) -> Self {
        Self { kind, precision: kind.default_precision() }
    }
}

/// Longest parameter name in bytes (the block's field holds 63 and a NUL).
pub const MAX_NAME_BYTES: usize = 63;
/// Longest short name in bytes.
pub const MAX_SHORT_NAME_BYTES: usize = 31;
/// Longest unit label in bytes.
pub const MAX_UNIT_BYTES: usize = 15;
/// Longest group name in bytes.
pub const MAX_GROUP_BYTES: usize = 31;
/// Parameter ids from this value up are not the plugin's: those below `0x8000_0000`
/// belong to the framework (the hidden parameters of MIDI controllers,
/// [`midi_param_id`]), the rest to VST3 hosts.
pub const RESERVED_IDS: u32 = 0x7FFF_0000;

/// The id of the hidden parameter the bridge lists for MIDI controller `number` (the
/// block's MIDI map numbers: CC 0..=127, then channel pressure and pitch bend).
pub const fn midi_param_id(number: u8) -> u32 {
    RESERVED_IDS + number as u32
}

/// The name the bridge gives the hidden parameter of MIDI controller `number`.
pub fn midi_param_name(number: u8) -> String {
    match number {
        // All named "MIDI CC <n>", the convention JUCE's wrapper set (128 for pressure,
        // 129 for the wheel), which hosts and tools know for MIDI-mapping parameters
        // (pedalboard leaves them out of a plugin's parameters).
        crate::block::PITCH_BEND => "MIDI CC 129 (Pitch Bend)".to_owned(),
        crate::block::CHANNEL_PRESSURE => "MIDI CC 128 (Channel Pressure)".to_owned(),
        cc => format!("MIDI CC {cc}"),
    }
}

/// The normalized value of MIDI controller `number`'s parameter at rest: the pitch
/// wheel centred (0.5), the others 0.
pub fn midi_param_default(number: u8) -> f64 {
    if number == crate::block::PITCH_BEND { 0.5 } else { 0.0 }
}

/// The MIDI controller number of a hidden controller parameter's id, if it is one.
pub fn midi_controller_of(id: u32) -> Option<u8> {
    id.checked_sub(RESERVED_IDS).filter(|&n| (n as usize) < crate::block::MIDI_CONTROLLERS).map(|n| n as u8)
}

/// Everything hosts and the engine need to know about one parameter: what the control
/// module publishes into the shared block, and the bridge reads back.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// The plugin's id for the parameter (also the VST3 `ParamID`); stable across versions.
    pub id: u32,
    /// Full name, e.g. `"Filter Cutoff"`.
    pub name: String,
    /// Short name for narrow displays, e.g. `"Cutoff"`.
    pub short_name: String,
    /// Unit label, e.g. `"Hz"`.
    pub unit: String,
    /// The group hosts show the parameter in (a VST3 unit), e.g. `"Filter"`; empty for none.
    pub group: String,
    /// [`param_flags`] bits.
    pub flags: u32,
    /// Normalized ↔ plain mapping.
    pub mapping: ParamMapping,
    /// The default, normalized.
    pub default_normalized: f64,
    /// How values are shown and typed.
    pub display: Display,
    /// For lists: the name of each step (index = plain value − `mapping.min`).
    pub value_names: Vec<String>,
}

impl ParamInfo {
    /// Whether all of `flag`'s bits are set.
    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags & flag == flag
    }

    /// The default as a plain value.
    pub fn default_plain(&self) -> f64 {
        self.mapping.to_plain(self.default_normalized)
    }

    /// Brings a plain value into range (see [`ParamMapping::clamp`]; NaN gives the default).
    pub fn clamp(&self, plain: f64) -> f64 {
        self.mapping.clamp(plain, self.default_plain())
    }

    /// The text shown for a plain value, e.g. `"440 Hz"`, `"1.20 kHz"`, `"-6.0 dB"`,
    /// `"5.0 ms"`, `"70 %"`, `"+2.0 oct"` or a list entry's name. Values outside the range
    /// are shown as the nearest value inside it. A [`DisplayKind::Custom`] parameter is
    /// shown as a number here (the bridge asks the control module instead).
    pub fn format(&self, plain: f64) -> String {
        let v = self.clamp(plain);
        let p = usize::from(self.display.precision);
        match self.display.kind {
            DisplayKind::List => {
                let index = (v - self.mapping.min).round();
                usize::try_from(index as i64)
                    .ok()
                    .and_then(|i| self.value_names.get(i))
                    .cloned()
                    .unwrap_or_else(|| fixed(v, 0, ""))
            }
            DisplayKind::Hertz => {
                let hz = fixed(v, p, " Hz");
                if int_digits(&hz) >= 4 { fixed(v / 1000.0, p + 2, " kHz") } else { hz }
            }
            DisplayKind::Decibels => fixed(v, p, " dB"),
            DisplayKind::Seconds => {
                let ms = fixed(v * 1000.0, p, " ms");
                if int_digits(&ms) >= 4 { fixed(v, p + 1, " s") } else { ms }
            }
            DisplayKind::Percent => fixed(v * 100.0, p, " %"),
            DisplayKind::Octaves => signed(v, p, " oct"),
            DisplayKind::Semitones => signed(v, p, " st"),
            DisplayKind::Bpm => fixed(v, p, " BPM"),
            DisplayKind::Number | DisplayKind::Custom if self.unit.is_empty() => fixed(v, p, ""),
            DisplayKind::Number | DisplayKind::Custom => {
                let mut text = fixed(v, p, " ");
                text.push_str(&self.unit);
                text
            }
        }
    }

    /// The text shown for a normalized value (`0.0..=1.0`, clamped).
    pub fn format_normalized(&self, normalized: f64) -> String {
        self.format(self.mapping.to_plain(normalized))
    }

    /// Parses text typed by a user into a plain value inside the range.
    ///
    /// Accepts what [`ParamInfo::format`] prints and common variants, with or without a
    /// space before the unit and in any letter case:
    /// - frequencies: `"440"`, `"440 Hz"`, `"1200hz"`, `"1.2k"`, `"1.2 kHz"`;
    /// - levels: `"-6"`, `"-6 dB"`, `"-6db"`;
    /// - times: `"12 ms"`, `"0.5s"`, `"0.5 sec"`; a bare number is in seconds;
    /// - percentages: `"70 %"`, `"70%"`, `"70"` (a bare number is a percentage);
    /// - octaves and semitones: `"+2"`, `"-1.5 oct"`, `"7 st"`;
    /// - lists: a step's name (`"square"`, `"ON"`) or its whole-number index (`"1"`).
    ///
    /// A finite number outside the range is **clamped** to the nearest end (typing
    /// `"50 kHz"` for a cutoff that ends at 20 kHz sets 20 kHz), as an out-of-range index
    /// of a list is.
    ///
    /// # Errors
    /// [`ParseError`] for empty text, text that is not a number, NaN or infinity, a unit
    /// that does not belong to this parameter, and a list index that is not whole.
    pub fn parse(&self, text: &str) -> Result<f64, ParseError> {
        let cleaned = text.trim().replace('\u{2212}', "-").to_lowercase();
        if cleaned.is_empty() {
            return Err(self.parse_error(text));
        }
        let kind = self.display.kind;
        if kind == DisplayKind::List
            && let Some(i) = self.value_names.iter().position(|name| name.to_lowercase() == cleaned)
        {
            return Ok(self.clamp(self.mapping.min + i as f64));
        }
        let Some((number, unit)) = split_number(&cleaned) else {
            return Err(self.parse_error(text));
        };
        let own_unit = self.unit.to_lowercase();
        let scale = match (kind, unit) {
            (DisplayKind::List, "") if number.fract() == 0.0 => 1.0,
            (DisplayKind::Hertz, "" | "hz") => 1.0,
            (DisplayKind::Hertz, "k" | "khz") => 1000.0,
            (DisplayKind::Decibels, "" | "db") => 1.0,
            (DisplayKind::Seconds, "" | "s" | "sec" | "secs" | "second" | "seconds") => 1.0,
            (DisplayKind::Seconds, "ms" | "msec") => 0.001,
            (DisplayKind::Percent, "" | "%") => 0.01,
            (DisplayKind::Octaves, "" | "oct" | "octave" | "octaves") => 1.0,
            (DisplayKind::Semitones, "" | "st" | "semi" | "semitone" | "semitones") => 1.0,
            (DisplayKind::Bpm, "" | "bpm") => 1.0,
            (DisplayKind::Number | DisplayKind::Custom, "") => 1.0,
            (DisplayKind::Number | DisplayKind::Custom, u) if u == own_unit => 1.0,
            _ => return Err(self.parse_error(text)),
        };
        let plain = if kind == DisplayKind::List { self.mapping.min + number } else { number * scale };
        if !plain.is_finite() {
            return Err(self.parse_error(text));
        }
        Ok(self.clamp(plain))
    }

    fn parse_error(&self, text: &str) -> ParseError {
        ParseError { id: self.id, param: self.name.clone(), text: text.to_owned(), hint: self.hint() }
    }

    /// What [`ParamInfo::parse`] accepts, as the end of a sentence.
    fn hint(&self) -> String {
        match self.display.kind {
            DisplayKind::List => {
                let last = self.value_names.len().saturating_sub(1);
                format!("type one of {}, or its number 0 to {last}", self.value_names.join(", "))
            }
            DisplayKind::Hertz => "type a frequency such as \"440 Hz\", \"1.2 kHz\" or \"1200\"".to_owned(),
            DisplayKind::Decibels => "type a level such as \"-6 dB\" or \"-6\"".to_owned(),
            DisplayKind::Seconds => "type a time such as \"12 ms\", \"0.5 s\" or \"0.5\" (seconds)".to_owned(),
            DisplayKind::Percent => "type a percentage such as \"70 %\" or \"70\"".to_owned(),
            DisplayKind::Octaves => "type an amount in octaves such as \"+2 oct\", \"-1.5\" or \"0\"".to_owned(),
            DisplayKind::Semitones => "type an amount in semitones such as \"+7 st\" or \"-12\"".to_owned(),
            DisplayKind::Bpm => "type a tempo such as \"120 BPM\" or \"96\"".to_owned(),
            DisplayKind::Number | DisplayKind::Custom if self.unit.is_empty() => "type a number".to_owned(),
            DisplayKind::Number | DisplayKind::Custom => format!("type a number, optionally followed by {}", self.unit),
        }
    }
}

/// `v` with `decimals` digits after the point, then `suffix`: the digits `format!` writes
/// for `{v:.decimals$}` (the exact value rounded, ties to even), without a `-` on a value
/// that rounds to zero. Hosts ask for thousands of texts when they load a plugin, so the
/// common case is written from an integer without `format!`'s exact-decimal machinery:
/// when the scaled value is not within rounding error of a tie, rounding it is exact.
fn fixed(v: f64, decimals: usize, suffix: &str) -> String {
    let mut out = String::with_capacity(24 + suffix.len());
    if !write_fixed_fast(&mut out, v, decimals) {
        out.clear();
        let s = format!("{v:.decimals$}");
        match s.strip_prefix('-') {
            Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => out.push_str(rest),
            _ => out.push_str(&s),
        }
    }
    out.push_str(suffix);
    out
}

/// The fast path of [`fixed`]: `false` (and nothing useful written) when `v` is not
/// finite, too large, asks for too many decimals, or lies within rounding error of a tie.
fn write_fixed_fast(out: &mut String, v: f64, decimals: usize) -> bool {
    const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    let Some(&scale) = POW10.get(decimals) else { return false };
    let scaled = v.abs() * scale;
    // Below 2^52 the product's rounding error is under 2^-1 ulp of at most 1.0: far from
    // a tie, the nearest integer is the nearest integer of the exact product.
    if !v.is_finite() || scaled >= 4.0e15 {
        return false;
    }
    let floor = scaled.floor();
    let frac = scaled - floor;
    if (frac - 0.5).abs() <= scaled * (4.0 * f64::EPSILON) + f64::EPSILON {
        return false;
    }
    let n = if frac > 0.5 { floor + 1.0 } else { floor } as u64;
    if v.is_sign_negative() && n != 0 {
        out.push('-');
    }
    let scale = 10u64.pow(decimals as u32);
    push_u64(out, n / scale);
    if decimals > 0 {
        out.push('.');
        let frac_digits = n % scale;
        let mut buf = [b'0'; 9];
        let mut rest = frac_digits;
        for slot in buf[..decimals].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend(buf[..decimals].iter().map(|&b| char::from(b)));
    }
    true
}

/// Appends the decimal digits of `n`.
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[at..].iter().map(|&b| char::from(b)));
}

/// Number of digits before the point of a number [`fixed`] wrote (no leading zeros, so
/// four or more means a magnitude of at least 1000).
fn int_digits(text: &str) -> usize {
    text.trim_start_matches('-').bytes().take_while(u8::is_ascii_digit).count()
}

/// Like [`fixed`], with a `+` in front of values that do not round to zero.
fn signed(v: f64, decimals: usize, suffix: &str) -> String {
    let s = fixed(v, decimals, suffix);
    let zero = s.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').all(|b| b == b'0' || b == b'.');
    if s.starts_with('-') || zero { s } else { format!("+{s}") }
}

/// Splits `"1.2 khz"` into `(1.2, "khz")`: a decimal number (optional sign, digits with
/// an optional point, optional exponent) and the rest with leading spaces removed.
/// `None` when the text does not start with a number. Words such as `inf` and `nan` are
/// not numbers here.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let bytes = s.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let is_digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
    let mut end = 0;
    if matches!(at(end), Some(b'+' | b'-')) {
        end += 1;
    }
    let int_start = end;
    while is_digit(at(end)) {
        end += 1;
    }
    let mut digits = end - int_start;
    if at(end) == Some(b'.') {
        end += 1;
        let frac_start = end;
        while is_digit(at(end)) {
            end += 1;
        }
        digits += end - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if matches!(at(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(at(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let exp_start = e;
        while is_digit(at(e)) {
            e += 1;
        }
        if e > exp_start {
            end = e;
        }
    }
    let (number, rest) = s.split_at_checked(end)?;
    let value = number.parse::<f64>().ok()?;
    Some((value, rest.trim_start()))
}

/// Text that [`ParamInfo::parse`] could not turn into a value. Its `Display` names the
/// parameter and the text and says what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    id: u32,
    param: String,
    text: String,
    hint: String,
}

impl ParseError {
    /// Id of the parameter the text was meant for.
    pub fn param_id(&self) -> u32 {
        self.id
    }

    /// The text as given.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Longest part of the rejected text quoted in an error message, in characters.
const QUOTED_CHARS: usize = 40;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown: String = self.text.chars().take(QUOTED_CHARS).collect();
        if self.text.chars().nth(QUOTED_CHARS).is_some() {
            shown.push('…');
        }
        write!(f, "{shown:?} is not a value for {}: {}", self.param, self.hint)
    }
}

impl std::error::Error for ParseError {}

/// One parameter as a plugin defines it: the [`ParamInfo`] hosts see, plus the stable key
/// its value is saved under in state and preset files.
///
/// Built with [`ParamDef::float`], [`ParamDef::list`], [`ParamDef::toggle`] or
/// [`ParamDef::bypass`], then refined with the other methods. Every method takes and
/// returns the definition, so a table reads as one expression per parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDef {
    /// The key in state and preset files (snake_case; stable across versions).
    pub key: String,
    /// What hosts see.
    pub info: ParamInfo,
    /// The default as a plain value, exactly as given (`info` holds it normalized).
    pub default: f64,
}

impl ParamDef {
    /// A continuous parameter with `mapping` and a plain `default`, shown as a number
    /// with two decimals (choose another display with [`ParamDef::hertz`],
    /// [`ParamDef::decibels`], [`ParamDef::seconds`], [`ParamDef::percent`]...).
    pub fn float(id: u32, key: &str, name: &str, mapping: ParamMapping, default: f64) -> Self {
        Self {
            key: key.to_owned(),
            info: ParamInfo {
                id,
                name: name.to_owned(),
                short_name: String::new(),
                unit: String::new(),
                group: String::new(),
                flags: param_flags::AUTOMATABLE,
                mapping,
                default_normalized: mapping.to_normalized(default),
                display: Display::new(DisplayKind::Number),
                value_names: Vec::new(),
            },
            default,
        }
        .with_default_check(default)
    }

    /// A list parameter: one of `names`, stored as the index `0..names.len()`.
    pub fn list(id: u32, key: &str, name: &str, names: &[&str], default_index: u32) -> Self {
        let last = names.len().saturating_sub(1) as f64;
        let mapping = ParamMapping::stepped(0.0, last.max(1.0));
        let mut def = Self::float(id, key, name, mapping, f64::from(default_index));
        def.info.flags |= param_flags::LIST;
        def.info.display = Display::new(DisplayKind::List);
        def.info.value_names = names.iter().map(|n| (*n).to_owned()).collect();
        def
    }

    /// An on/off switch: a list of `"Off"` and `"On"`.
    pub fn toggle(id: u32, key: &str, name: &str, default: bool) -> Self {
        Self::list(id, key, name, &["Off", "On"], u32::from(default))
    }

    /// The plugin's bypass switch (VST3 `kIsBypass`): a toggle named `"Bypass"`, off by
    /// default. Hosts show it as the plugin's bypass; presets leave it alone.
    pub fn bypass(id: u32, key: &str) -> Self {
        let mut def = Self::toggle(id, key, "Bypass", false);
        def.info.flags |= param_flags::BYPASS;
        def
    }

    /// Records a default outside the mapping's range so [`ParamDef::validate`] can name it.
    fn with_default_check(mut self, default: f64) -> Self {
        let m = self.info.mapping;
        let (lo, hi) = (m.min.min(m.max), m.min.max(m.max));
        if !(default.is_finite() && (lo..=hi).contains(&default)) {
            self.info.default_normalized = f64::NAN;
        }
        self
    }

    /// Sets the short name hosts show in narrow places (at most 31 bytes).
    pub fn short_name(mut self, short: &str) -> Self {
        short.clone_into(&mut self.info.short_name);
        self
    }

    /// Sets the unit label (at most 15 bytes), e.g. `"st"`.
    pub fn unit(mut self, unit: &str) -> Self {
        unit.clone_into(&mut self.info.unit);
        self
    }

    /// Puts the parameter in a group (a VST3 unit), e.g. `"Filter"`.
    pub fn group(mut self, group: &str) -> Self {
        group.clone_into(&mut self.info.group);
        self
    }

    /// Sets the display rule; the unit label becomes the rule's own unless one was set.
    pub fn display(mut self, kind: DisplayKind) -> Self {
        self.info.display = Display::new(kind);
        if self.info.unit.is_empty() {
            kind.default_unit().clone_into(&mut self.info.unit);
        }
        self
    }

    /// Sets the number of decimals shown (see [`DisplayKind`] for where they apply).
    pub fn precision(mut self, decimals: u8) -> Self {
        self.info.display.precision = decimals;
        self
    }

    /// Shown as a frequency (`"440 Hz"`, `"1.20 kHz"`).
    pub fn hertz(self) -> Self {
        self.display(DisplayKind::Hertz)
    }

    /// Shown as a level in decibels (`"-6.0 dB"`).
    pub fn decibels(self) -> Self {
        self.display(DisplayKind::Decibels)
    }

    /// A time in seconds, shown as `"5.0 ms"` or `"1.20 s"`.
    pub fn seconds(self) -> Self {
        self.display(DisplayKind::Seconds)
    }

    /// A 0..1 fraction shown as a percentage (`"70 %"`).
    pub fn percent(self) -> Self {
        self.display(DisplayKind::Percent)
    }

    /// A signed amount in octaves (`"+2.0 oct"`).
    pub fn octaves(self) -> Self {
        self.display(DisplayKind::Octaves)
    }

    /// A signed amount in semitones (`"+7.0 st"`).
    pub fn semitones(self) -> Self {
        self.display(DisplayKind::Semitones)
    }

    /// A tempo (`"120.0 BPM"`).
    pub fn bpm(self) -> Self {
        self.display(DisplayKind::Bpm)
    }

    /// The control module formats and parses values itself
    /// ([`crate::control::Control::format_value`] and `parse_value`). Hosts' text calls
    /// for this parameter then wait for the control worker, which costs microseconds on
    /// a busy machine: prefer a declarative rule.
    pub fn custom_display(mut self) -> Self {
        self.info.display = Display::new(DisplayKind::Custom);
        self
    }

    /// Whether hosts may automate the parameter (the default is yes).
    pub fn automatable(mut self, automatable: bool) -> Self {
        if automatable {
            self.info.flags |= param_flags::AUTOMATABLE;
        } else {
            self.info.flags &= !param_flags::AUTOMATABLE;
        }
        self
    }

    /// Hosts show the value but the user cannot change it (a meter, a status).
    pub fn read_only(mut self) -> Self {
        self.info.flags |= param_flags::READ_ONLY;
        self.info.flags &= !param_flags::AUTOMATABLE;
        self
    }

    /// Hosts do not show the parameter.
    pub fn hidden(mut self) -> Self {
        self.info.flags |= param_flags::HIDDEN;
        self
    }

    /// The parameter's id.
    pub fn id(&self) -> u32 {
        self.info.id
    }

    /// The default as a plain value.
    pub fn default_plain(&self) -> f64 {
        self.default
    }

    /// See [`ParamInfo::format`].
    pub fn format(&self, plain: f64) -> String {
        self.info.format(plain)
    }

    /// See [`ParamInfo::parse`].
    ///
    /// # Errors
    /// As [`ParamInfo::parse`].
    pub fn parse(&self, text: &str) -> Result<f64, ParseError> {
        self.info.parse(text)
    }

    /// Checks the definition on its own: a usable key, names that fit, a valid mapping, a
    /// default inside the range, list names matching the steps, an id outside the
    /// framework's range.
    ///
    /// # Errors
    /// A sentence naming the parameter, the field and the value, saying what to change.
    pub fn validate(&self) -> Result<(), String> {
        let i = &self.info;
        let who = format!("parameter {} ({:?})", i.id, self.key);
        let fail = |what: String| Err(format!("{who}: {what}"));
        if i.id >= RESERVED_IDS {
            return fail(format!(
                "ids from {RESERVED_IDS:#x} up are reserved (the framework's MIDI controller parameters, then \
                 VST3 hosts' own from 0x80000000); choose an id below that"
            ));
        }
        if self.key.is_empty() || !self.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return fail(
                "the key must be non-empty snake_case (a-z, 0-9, _): it names the value in saved states".into(),
            );
        }
        for (field, text, max) in [
            ("name", &i.name, MAX_NAME_BYTES),
            ("short name", &i.short_name, MAX_SHORT_NAME_BYTES),
            ("unit", &i.unit, MAX_UNIT_BYTES),
            ("group", &i.group, MAX_GROUP_BYTES),
        ] {
            if text.len() > max {
                return fail(format!("the {field} {text:?} is {} bytes; at most {max} fit", text.len()));
            }
            if text.contains('\0') {
                return fail(format!("the {field} {text:?} contains a NUL character"));
            }
        }
        if i.name.is_empty() {
            return fail("the name is empty: hosts show it".into());
        }
        if let Err(e) = i.mapping.validate() {
            return fail(format!("mapping: {e}"));
        }
        if !(0.0..=1.0).contains(&i.default_normalized) {
            return fail(format!(
                "the default is outside the range {}..={}: give a default inside it",
                i.mapping.min, i.mapping.max
            ));
        }
        if i.display.kind == DisplayKind::List || i.has_flag(param_flags::LIST) {
            if i.mapping.kind != MappingKind::Stepped {
                return fail("a list needs a stepped mapping".into());
            }
            let steps = i.mapping.step_count() as usize + 1;
            if i.value_names.len() != steps {
                return fail(format!(
                    "a list of {steps} steps needs {steps} value names, it has {}",
                    i.value_names.len()
                ));
            }
            if let Some(name) = i.value_names.iter().find(|n| n.is_empty() || n.contains('\0')) {
                return fail(format!("the value name {name:?} is empty or contains a NUL character"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `fixed` wrote before its fast path: `format!` and a parse to drop the sign of
    /// a zero.
    fn fixed_reference(v: f64, decimals: usize) -> String {
        let s = format!("{v:.decimals$}");
        match s.strip_prefix('-') {
            Some(rest) if rest.parse::<f64>().is_ok_and(|x| x == 0.0) => rest.to_owned(),
            _ => s,
        }
    }

    #[test]
    fn fixed_writes_what_format_writes() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            0.125,
            0.375,
            -0.125,
            1.005,
            2.675,
            999.5,
            999.95,
            1e-7,
            -1e-7,
            0.045,
            0.055,
            1234.5678,
            4.0e15,
            9.9e15,
            1e20,
            -1e20,
            123_456_789.125,
        ];
        for _ in 0..100_000 {
            let bits = next();
            // Magnitudes from 1e-6 to 1e12, both signs, and decimals-aligned ties.
            let mantissa = (bits >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = (bits % 19) as i32 - 6;
            let sign = if bits & 1 == 0 { 1.0 } else { -1.0 };
            values.push(sign * mantissa * 10f64.powi(exponent));
            values.push(sign * ((bits >> 20) % 100_000) as f64 / 2f64.powi((bits % 12) as i32));
        }
        let mut fast = 0usize;
        for &v in &values {
            for decimals in 0..=9 {
                let got = fixed(v, decimals, " Hz");
                let want = format!("{} Hz", fixed_reference(v, decimals));
                assert_eq!(got, want, "{v:e} with {decimals} decimals");
                fast += usize::from(write_fixed_fast(&mut String::new(), v, decimals));
            }
        }
        // The fast path is the common case, not a corner.
        assert!(fast * 10 > values.len() * 10 * 8, "fast path taken {fast} of {} times", values.len() * 10);
        assert_eq!(signed(0.0004, 2, " oct"), "0.00 oct");
        assert_eq!(signed(-0.004, 2, " oct"), "0.00 oct");
        assert_eq!(signed(0.006, 2, " oct"), "+0.01 oct");
        assert_eq!(signed(-1.5, 1, " st"), "-1.5 st");
    }

    fn cutoff() -> ParamDef {
        ParamDef::float(6, "cutoff", "Filter Cutoff", ParamMapping::logarithmic(20.0, 20_000.0), 8000.0).hertz()
    }

    fn gain() -> ParamDef {
        ParamDef::float(0, "gain", "Output Gain", ParamMapping::linear(-60.0, 6.0), -6.0).decibels()
    }

    fn attack() -> ParamDef {
        ParamDef::float(2, "attack", "Attack", ParamMapping::skewed(0.001, 5.0, 3.0), 0.005).seconds()
    }

    fn wave() -> ParamDef {
        ParamDef::list(1, "waveform", "Waveform", &["Saw", "Square", "Sine"], 0)
    }

    #[test]
    fn round_trips_every_mapping_kind() {
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
                assert_eq!(m.to_normalized(m.exact_plain(back)), back);
            }
        }
    }

    #[test]
    fn mappings_clamp_out_of_range_and_nan() {
        let m = ParamMapping::linear(0.0, 10.0);
        assert_eq!(m.to_plain(2.0), 10.0);
        assert_eq!(m.to_plain(-1.0), 0.0);
        assert_eq!(m.to_plain(f64::NAN), 0.0);
        assert_eq!(m.to_normalized(42.0), 1.0);
        assert_eq!(ParamMapping::stepped(0.0, 2.0).step_count(), 2);
        assert!(ParamMapping::logarithmic(0.0, 10.0).validate().unwrap_err().contains("above zero"));
        assert!(ParamMapping::stepped(0.0, 2.5).validate().is_err());
        assert!(ParamMapping::linear(1.0, 1.0).validate().is_err());
        assert!(ParamMapping::skewed(0.0, 1.0, -1.0).validate().is_err());
    }

    #[test]
    fn formats_every_display_kind() {
        let oct = ParamDef::float(8, "env", "Env", ParamMapping::linear(-6.0, 6.0), 0.0).octaves();
        let pct = ParamDef::float(4, "sustain", "Sustain", ParamMapping::linear(0.0, 1.0), 0.7).percent();
        let bpm = ParamDef::float(16, "tempo", "Tempo", ParamMapping::linear(40.0, 240.0), 120.0).bpm();
        let num = ParamDef::float(20, "amount", "Amount", ParamMapping::linear(0.0, 10.0), 1.0);
        let st = ParamDef::float(21, "pitch", "Pitch", ParamMapping::linear(-24.0, 24.0), 0.0).semitones();
        let cases: &[(&ParamDef, f64, &str)] = &[
            (&cutoff(), 440.0, "440 Hz"),
            (&cutoff(), 1200.0, "1.20 kHz"),
            (&cutoff(), 999.4, "999 Hz"),
            (&cutoff(), 999.6, "1.00 kHz"),
            (&gain(), -6.0, "-6.0 dB"),
            (&gain(), -0.01, "0.0 dB"),
            (&attack(), 0.005, "5.0 ms"),
            (&attack(), 1.2, "1.20 s"),
            (&attack(), 0.99996, "1.00 s"),
            (&pct, 0.7, "70 %"),
            (&oct, 2.0, "+2.0 oct"),
            (&oct, -0.01, "0.0 oct"),
            (&bpm, 120.0, "120.0 BPM"),
            (&num, 1.0, "1.00"),
            (&st, 7.0, "+7.0 st"),
            (&wave(), 1.0, "Square"),
            (&ParamDef::bypass(10, "bypass"), 1.0, "On"),
        ];
        for (def, plain, text) in cases {
            assert_eq!(def.format(*plain), *text, "{} at {plain}", def.key);
        }
        assert_eq!(cutoff().format(f64::NAN), "8.00 kHz");
        assert_eq!(cutoff().format(f64::INFINITY), "20.00 kHz");
        assert_eq!(wave().format(7.0), "Sine");
    }

    #[test]
    fn format_then_parse_round_trips() {
        for def in [cutoff(), gain(), attack(), wave(), ParamDef::bypass(10, "bypass")] {
            for i in 0..=1000 {
                let plain = def.info.mapping.to_plain(f64::from(i) / 1000.0);
                let text = def.format(plain);
                let parsed = def.parse(&text).unwrap_or_else(|e| panic!("{}: {text:?}: {e}", def.key));
                assert_eq!(def.format(parsed), text, "{} {plain}", def.key);
            }
        }
    }

    #[test]
    fn parses_variants_and_clamps() {
        assert_eq!(cutoff().parse("1.2k").unwrap(), 1200.0);
        assert_eq!(cutoff().parse("  440 Hz  ").unwrap(), 440.0);
        assert_eq!(cutoff().parse("50 kHz").unwrap(), 20_000.0);
        assert_eq!(gain().parse("\u{2212}12 dB").unwrap(), -12.0);
        assert_eq!(attack().parse("12ms").unwrap(), 0.012);
        assert_eq!(wave().parse("SINE").unwrap(), 2.0);
        assert_eq!(wave().parse("7").unwrap(), 2.0);
        for bad in ["", "abc", "nan", "inf", "1e999", "5 dB", "1.2.3"] {
            let err = cutoff().parse(bad).unwrap_err();
            assert_eq!(err.param_id(), 6);
        }
        assert_eq!(
            cutoff().parse("abc").unwrap_err().to_string(),
            "\"abc\" is not a value for Filter Cutoff: type a frequency such as \"440 Hz\", \"1.2 kHz\" or \"1200\""
        );
        assert!(wave().parse("1.5").is_err());
    }

    #[test]
    fn validation_names_the_parameter_and_the_problem() {
        for def in [cutoff(), gain(), attack(), wave(), ParamDef::bypass(10, "bypass")] {
            def.validate().unwrap();
        }
        let bad_default = ParamDef::float(3, "x", "X", ParamMapping::linear(0.0, 1.0), 5.0);
        assert!(bad_default.validate().unwrap_err().contains("parameter 3 (\"x\"): the default is outside"));
        let long = ParamDef::float(3, "x", &"n".repeat(80), ParamMapping::linear(0.0, 1.0), 0.5);
        assert!(long.validate().unwrap_err().contains("80 bytes; at most 63"));
        let reserved = ParamDef::float(RESERVED_IDS, "x", "X", ParamMapping::linear(0.0, 1.0), 0.5);
        assert!(reserved.validate().unwrap_err().contains("reserved"));
        let key = ParamDef::float(3, "Bad Key", "X", ParamMapping::linear(0.0, 1.0), 0.5);
        assert!(key.validate().unwrap_err().contains("snake_case"));
        let mut list = wave();
        list.info.value_names.pop();
        assert!(list.validate().unwrap_err().contains("needs 3 value names, it has 2"));
    }
}
