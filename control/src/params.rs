//! The parameter table of the example instrument: ids, keys, names, units, mappings,
//! defaults and flags, plus the text shown for a value and the parsing of text a user
//! types into a host's parameter field.
//!
//! Values come in two forms. A **plain** value is in the parameter's own unit (Hz, dB,
//! seconds, a 0..1 fraction, a list index); a **normalized** value is `0.0..=1.0`, what
//! hosts send. The conversion between them is [`shared::params::ParamMapping`], the same
//! code the engine and the bridge use.

use std::fmt;

use shared::params::{MappingKind, ParamMapping, id};

/// The host may automate the parameter.
pub const FLAG_AUTOMATABLE: u32 = 1;
/// The parameter is the plugin's bypass switch (VST3 `kIsBypass`).
pub const FLAG_BYPASS: u32 = 2;
/// The parameter is a list: each step has a name in [`ParamDef::value_names`].
pub const FLAG_LIST: u32 = 4;

/// One parameter of the instrument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamDef {
    /// The parameter id (`shared::params::id::*`), equal to its index in [`definitions`].
    pub id: u32,
    /// Stable snake_case key used in state and preset JSON, e.g. `"cutoff"`.
    pub key: &'static str,
    /// Full name shown by hosts, e.g. `"Filter Cutoff"`.
    pub name: &'static str,
    /// Short name for narrow displays, at most 8 characters.
    pub short_name: &'static str,
    /// Unit of the displayed value: `"Hz"`, `"dB"`, `"s"`, `"%"`, `"oct"`, `"BPM"` or `""`.
    pub unit: &'static str,
    /// The group the parameter belongs to: `"Oscillator"`, `"Envelope"`, `"Filter"`,
    /// `"Output"` or `"Arp"` (hosts show each group as a unit).
    pub group: &'static str,
    /// Normalized ↔ plain mapping.
    pub mapping: ParamMapping,
    /// The default, as a plain value.
    pub default_plain: f64,
    /// Bit set of `FLAG_*` constants.
    pub flags: u32,
    /// For list parameters, the name of each step (index = plain value − `mapping.min`);
    /// empty otherwise.
    pub value_names: &'static [&'static str],
}

const AUTO: u32 = FLAG_AUTOMATABLE;
const AUTO_LIST: u32 = FLAG_AUTOMATABLE | FLAG_LIST;

/// Unit text of the filter cutoff. The `reload-variant` build (test-only) shows another
/// text, so a test can see that a reloaded module's parameter descriptions reach the host.
#[cfg(not(feature = "reload-variant"))]
pub const CUTOFF_UNIT: &str = "Hz";
/// Unit text of the filter cutoff (the `reload-variant` build's).
#[cfg(feature = "reload-variant")]
pub const CUTOFF_UNIT: &str = "Hertz";

/// Mapping of the filter cutoff. The `reload-variant` build (test-only) uses a narrower
/// range, so a test can hear a mapping change after a reload.
#[cfg(not(feature = "reload-variant"))]
pub const CUTOFF_MAPPING: ParamMapping = ParamMapping::logarithmic(20.0, 20_000.0);
/// Mapping of the filter cutoff (the `reload-variant` build's).
#[cfg(feature = "reload-variant")]
pub const CUTOFF_MAPPING: ParamMapping = ParamMapping::logarithmic(40.0, 16_000.0);

/// Skew of the envelope-time mappings: a cube law, so that the lower half of a control
/// covers roughly the first eighth of the range, where short times need fine steps.
const TIME_SKEW: f64 = 3.0;

static DEFINITIONS: [ParamDef; id::COUNT as usize] = [
    ParamDef {
        id: id::GAIN,
        key: "gain",
        name: "Output Gain",
        short_name: "Gain",
        unit: "dB",
        group: "Output",
        mapping: ParamMapping::linear(-60.0, 6.0),
        default_plain: -6.0,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::WAVEFORM,
        key: "waveform",
        name: "Waveform",
        short_name: "Wave",
        unit: "",
        group: "Oscillator",
        mapping: ParamMapping::stepped(0.0, 2.0),
        default_plain: 0.0,
        flags: AUTO_LIST,
        value_names: &["Saw", "Square", "Sine"],
    },
    ParamDef {
        id: id::ATTACK,
        key: "attack",
        name: "Attack",
        short_name: "Attack",
        unit: "s",
        group: "Envelope",
        mapping: ParamMapping::skewed(0.001, 5.0, TIME_SKEW),
        default_plain: 0.005,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::DECAY,
        key: "decay",
        name: "Decay",
        short_name: "Decay",
        unit: "s",
        group: "Envelope",
        mapping: ParamMapping::skewed(0.001, 5.0, TIME_SKEW),
        default_plain: 0.2,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::SUSTAIN,
        key: "sustain",
        name: "Sustain",
        short_name: "Sustain",
        unit: "%",
        group: "Envelope",
        mapping: ParamMapping::linear(0.0, 1.0),
        default_plain: 0.7,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::RELEASE,
        key: "release",
        name: "Release",
        short_name: "Release",
        unit: "s",
        group: "Envelope",
        mapping: ParamMapping::skewed(0.001, 10.0, TIME_SKEW),
        default_plain: 0.3,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::CUTOFF,
        key: "cutoff",
        name: "Filter Cutoff",
        short_name: "Cutoff",
        unit: CUTOFF_UNIT,
        group: "Filter",
        mapping: CUTOFF_MAPPING,
        default_plain: 8000.0,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::RESONANCE,
        key: "resonance",
        name: "Resonance",
        short_name: "Reso",
        unit: "%",
        group: "Filter",
        mapping: ParamMapping::linear(0.0, 1.0),
        default_plain: 0.2,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::FILTER_ENV,
        key: "filter_env",
        name: "Filter Env Amount",
        short_name: "Env Amt",
        unit: "oct",
        group: "Filter",
        mapping: ParamMapping::linear(-6.0, 6.0),
        default_plain: 2.0,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::VELOCITY_SENS,
        key: "velocity_sens",
        name: "Velocity Sensitivity",
        short_name: "Vel Sens",
        unit: "%",
        group: "Output",
        mapping: ParamMapping::linear(0.0, 1.0),
        default_plain: 0.7,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::BYPASS,
        key: "bypass",
        name: "Bypass",
        short_name: "Bypass",
        unit: "",
        group: "Output",
        mapping: ParamMapping::stepped(0.0, 1.0),
        default_plain: 0.0,
        flags: FLAG_AUTOMATABLE | FLAG_BYPASS | FLAG_LIST,
        value_names: &["Off", "On"],
    },
    ParamDef {
        id: id::ARP_ON,
        key: "arp_on",
        name: "Arpeggiator",
        short_name: "Arp",
        unit: "",
        group: "Arp",
        mapping: ParamMapping::stepped(0.0, 1.0),
        default_plain: 0.0,
        flags: AUTO_LIST,
        value_names: &["Off", "On"],
    },
    ParamDef {
        id: id::ARP_RATE,
        key: "arp_rate",
        name: "Arp Rate",
        short_name: "Rate",
        unit: "",
        group: "Arp",
        mapping: ParamMapping::stepped(0.0, 3.0),
        default_plain: 2.0,
        flags: AUTO_LIST,
        value_names: &["1/4", "1/8", "1/16", "1/32"],
    },
    ParamDef {
        id: id::ARP_PATTERN,
        key: "arp_pattern",
        name: "Arp Pattern",
        short_name: "Pattern",
        unit: "",
        group: "Arp",
        mapping: ParamMapping::stepped(0.0, 3.0),
        default_plain: 0.0,
        flags: AUTO_LIST,
        value_names: &["Up", "Down", "Up-Down", "As Played"],
    },
    ParamDef {
        id: id::ARP_OCTAVES,
        key: "arp_octaves",
        name: "Arp Octaves",
        short_name: "Octaves",
        unit: "",
        group: "Arp",
        mapping: ParamMapping::stepped(1.0, 4.0),
        default_plain: 1.0,
        flags: AUTO_LIST,
        value_names: &["1", "2", "3", "4"],
    },
    ParamDef {
        id: id::ARP_GATE,
        key: "arp_gate",
        name: "Arp Gate",
        short_name: "Gate",
        unit: "%",
        group: "Arp",
        mapping: ParamMapping::linear(0.05, 0.95),
        default_plain: 0.5,
        flags: AUTO,
        value_names: &[],
    },
    ParamDef {
        id: id::ARP_TEMPO,
        key: "arp_tempo",
        name: "Arp Tempo",
        short_name: "Tempo",
        unit: "BPM",
        group: "Arp",
        mapping: ParamMapping::linear(40.0, 240.0),
        default_plain: 120.0,
        flags: AUTO,
        value_names: &[],
    },
];

/// Every parameter of the instrument, in id order (`definitions()[i].id == i`).
pub fn definitions() -> &'static [ParamDef] {
    &DEFINITIONS
}

/// The parameter with the given id, or `None` for an unknown id.
pub fn definition(id: u32) -> Option<&'static ParamDef> {
    DEFINITIONS.get(usize::try_from(id).ok()?)
}

/// The parameter with the given state/preset key (exact, case-sensitive match).
pub fn find_by_key(key: &str) -> Option<&'static ParamDef> {
    DEFINITIONS.iter().find(|d| d.key == key)
}

/// How a parameter's value is shown and typed; derived from its unit and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    List,
    Hertz,
    Decibel,
    Seconds,
    Percent,
    Octaves,
    Bpm,
    Number,
}

impl ParamDef {
    fn style(&self) -> Style {
        if self.flags & FLAG_LIST != 0 && !self.value_names.is_empty() {
            return Style::List;
        }
        match self.unit {
            "Hz" | "Hertz" => Style::Hertz,
            "BPM" => Style::Bpm,
            "dB" => Style::Decibel,
            "s" => Style::Seconds,
            "%" => Style::Percent,
            "oct" => Style::Octaves,
            _ => Style::Number,
        }
    }

    /// The default as a normalized value.
    pub fn default_normalized(&self) -> f64 {
        self.mapping.to_normalized(self.default_plain)
    }

    /// Whether the flag bit(s) `flag` are all set.
    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags & flag == flag
    }

    /// Brings any plain value into the parameter's range: values outside it are clamped
    /// to the nearest end, stepped parameters are rounded to a whole step, and NaN gives
    /// the default.
    pub fn clamp(&self, plain: f64) -> f64 {
        if plain.is_nan() {
            return self.default_plain;
        }
        let lo = self.mapping.min.min(self.mapping.max);
        let hi = self.mapping.min.max(self.mapping.max);
        let p = plain.clamp(lo, hi);
        match self.mapping.kind {
            MappingKind::Stepped => (self.mapping.min + (p - self.mapping.min).round()).clamp(lo, hi),
            _ => p,
        }
    }

    /// The text shown for a plain value, e.g. `"440 Hz"`, `"1.20 kHz"`, `"-6.0 dB"`,
    /// `"5.0 ms"`, `"1.20 s"`, `"70 %"`, `"+2.0 oct"` or a list entry's name. Values
    /// outside the range are shown as the nearest value inside it (see [`ParamDef::clamp`]).
    pub fn format(&self, plain: f64) -> String {
        let v = self.clamp(plain);
        match self.style() {
            Style::List => {
                let index = (v - self.mapping.min).round();
                usize::try_from(index as i64)
                    .ok()
                    .and_then(|i| self.value_names.get(i))
                    .map_or_else(|| fixed(v, 0), |name| (*name).to_owned())
            }
            Style::Hertz => {
                let hz = fixed(v, 0);
                if hz.parse::<f64>().is_ok_and(|x| x >= 1000.0) {
                    format!("{} kHz", fixed(v / 1000.0, 2))
                } else {
                    format!("{hz} Hz")
                }
            }
            Style::Decibel => format!("{} dB", fixed(v, 1)),
            Style::Seconds => {
                let ms = fixed(v * 1000.0, 1);
                if ms.parse::<f64>().is_ok_and(|x| x >= 1000.0) {
                    format!("{} s", fixed(v, 2))
                } else {
                    format!("{ms} ms")
                }
            }
            Style::Percent => format!("{} %", fixed(v * 100.0, 0)),
            Style::Octaves => format!("{} oct", signed(v, 1)),
            Style::Bpm => format!("{} BPM", fixed(v, 1)),
            Style::Number if self.unit.is_empty() => fixed(v, 2),
            Style::Number => format!("{} {}", fixed(v, 2), self.unit),
        }
    }

    /// The text shown for a normalized value (`0.0..=1.0`, clamped).
    pub fn format_normalized(&self, normalized: f64) -> String {
        self.format(self.mapping.to_plain(normalized))
    }

    /// Parses text typed by a user into a plain value inside the range.
    ///
    /// Accepts what [`ParamDef::format`] prints and common variants, with or without a
    /// space before the unit and in any letter case:
    /// - frequencies: `"440"`, `"440 Hz"`, `"1200hz"`, `"1.2k"`, `"1.2 kHz"`;
    /// - levels: `"-6"`, `"-6 dB"`, `"-6db"`;
    /// - times: `"12 ms"`, `"0.5s"`, `"0.5 sec"`; a bare number is in seconds;
    /// - percentages: `"70 %"`, `"70%"`, `"70"` (a bare number is a percentage);
    /// - octaves: `"+2"`, `"-1.5 oct"`, `"2 octaves"`;
    /// - lists: a step's name (`"square"`, `"ON"`) or its whole-number index (`"1"`).
    ///
    /// A finite number outside the range is **clamped** to the nearest end (typing
    /// `"50 kHz"` sets the cutoff to 20 kHz), as an out-of-range index of a list is.
    ///
    /// # Errors
    /// [`ParseError`] for empty text, text that is not a number, NaN or infinity, a unit
    /// that does not belong to this parameter, and a list index that is not whole.
    pub fn parse(&self, text: &str) -> Result<f64, ParseError> {
        let cleaned = text.trim().replace('\u{2212}', "-").to_lowercase();
        if cleaned.is_empty() {
            return Err(self.parse_error(text));
        }
        let style = self.style();
        let named = match style {
            Style::List => self.value_names.iter().position(|name| name.to_lowercase() == cleaned),
            _ => None,
        };
        if let Some(i) = named {
            return Ok(self.clamp(self.mapping.min + i as f64));
        }
        let Some((number, unit)) = split_number(&cleaned) else {
            return Err(self.parse_error(text));
        };
        let scale = match (style, unit) {
            (Style::List, "") if number.fract() == 0.0 => 1.0,
            (Style::Hertz, "" | "hz") => 1.0,
            (Style::Hertz, "k" | "khz") => 1000.0,
            (Style::Decibel, "" | "db") => 1.0,
            (Style::Seconds, "" | "s" | "sec" | "secs" | "second" | "seconds") => 1.0,
            (Style::Seconds, "ms" | "msec") => 0.001,
            (Style::Percent, "" | "%") => 0.01,
            (Style::Octaves, "" | "oct" | "octave" | "octaves") => 1.0,
            (Style::Bpm, "" | "bpm") => 1.0,
            (Style::Number, "") => 1.0,
            (Style::Number, u) if u == self.unit.to_lowercase() => 1.0,
            _ => return Err(self.parse_error(text)),
        };
        let plain = if style == Style::List { self.mapping.min + number } else { number * scale };
        if !plain.is_finite() {
            return Err(self.parse_error(text));
        }
        Ok(self.clamp(plain))
    }

    fn parse_error(&self, text: &str) -> ParseError {
        ParseError { id: self.id, param: self.name, text: text.to_owned(), hint: self.hint() }
    }

    /// What [`ParamDef::parse`] accepts, as the end of a sentence.
    fn hint(&self) -> String {
        match self.style() {
            Style::List => {
                let last = self.value_names.len().saturating_sub(1);
                format!("type one of {}, or its number 0 to {last}", self.value_names.join(", "))
            }
            Style::Hertz => "type a frequency such as \"440 Hz\", \"1.2 kHz\" or \"1200\"".to_owned(),
            Style::Decibel => "type a level such as \"-6 dB\" or \"-6\"".to_owned(),
            Style::Seconds => "type a time such as \"12 ms\", \"0.5 s\" or \"0.5\" (seconds)".to_owned(),
            Style::Percent => "type a percentage such as \"70 %\" or \"70\"".to_owned(),
            Style::Octaves => "type an amount in octaves such as \"+2 oct\", \"-1.5\" or \"0\"".to_owned(),
            Style::Bpm => "type a tempo such as \"120 BPM\" or \"96\"".to_owned(),
            Style::Number => "type a number".to_owned(),
        }
    }
}

/// `v` with `decimals` decimals, never showing a negative zero.
fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.parse::<f64>().is_ok_and(|x| x == 0.0) => rest.to_owned(),
        _ => s,
    }
}

/// Like [`fixed`], with a `+` in front of positive values.
fn signed(v: f64, decimals: usize) -> String {
    let s = fixed(v, decimals);
    if s.starts_with('-') || s.parse::<f64>().is_ok_and(|x| x == 0.0) { s } else { format!("+{s}") }
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

/// Text that [`ParamDef::parse`] could not turn into a value. Its `Display` names the
/// parameter and the text and says what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    id: u32,
    param: &'static str,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: u32) -> &'static ParamDef {
        definition(id).unwrap()
    }

    #[test]
    fn table_is_consistent() {
        let defs = definitions();
        assert_eq!(defs.len(), id::COUNT as usize);
        for (i, d) in defs.iter().enumerate() {
            assert_eq!(d.id as usize, i, "{}", d.key);
            d.mapping.validate().unwrap();
            assert!(!d.key.is_empty());
            assert!(
                d.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is not snake_case",
                d.key
            );
            assert!(d.short_name.chars().count() <= 8, "{}", d.short_name);
            assert!(!d.name.is_empty());
            assert!(["Oscillator", "Envelope", "Filter", "Output", "Arp"].contains(&d.group), "{}", d.group);
            assert!(d.has_flag(FLAG_AUTOMATABLE), "{}", d.key);
            assert_eq!(d.clamp(d.default_plain), d.default_plain, "{}", d.key);
            assert_eq!(d.has_flag(FLAG_BYPASS), d.id == id::BYPASS);
            if d.has_flag(FLAG_LIST) {
                assert_eq!(d.mapping.kind, MappingKind::Stepped);
                assert_eq!(d.value_names.len(), d.mapping.step_count() as usize + 1);
            } else {
                assert!(d.value_names.is_empty());
            }
            assert_eq!(find_by_key(d.key), Some(d));
            assert_eq!(definition(d.id), Some(d));
        }
        for (i, a) in defs.iter().enumerate() {
            for b in defs.iter().skip(i + 1) {
                assert_ne!(a.key, b.key);
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(find_by_key("Cutoff"), None);
        assert_eq!(find_by_key(""), None);
        assert_eq!(definition(id::COUNT), None);
        assert_eq!(definition(u32::MAX), None);
    }

    #[test]
    fn spot_checks_of_the_table() {
        let cutoff = def(id::CUTOFF);
        assert_eq!((cutoff.key, cutoff.name, cutoff.unit), ("cutoff", "Filter Cutoff", "Hz"));
        assert_eq!(cutoff.mapping.kind, MappingKind::Logarithmic);
        assert_eq!(def(id::GAIN).default_plain, -6.0);
        assert_eq!(def(id::WAVEFORM).value_names, ["Saw", "Square", "Sine"]);
        assert_eq!(def(id::BYPASS).value_names, ["Off", "On"]);
        assert_eq!(def(id::BYPASS).flags, FLAG_AUTOMATABLE | FLAG_BYPASS | FLAG_LIST);
        assert_eq!(def(id::ATTACK).mapping.kind, MappingKind::Skewed);
        assert_eq!(def(id::RELEASE).mapping.max, 10.0);
    }

    #[test]
    fn default_normalized_maps_back_to_the_default() {
        for d in definitions() {
            let n = d.default_normalized();
            assert!((0.0..=1.0).contains(&n));
            let back = d.mapping.to_plain(n);
            assert!((back - d.default_plain).abs() <= 1e-9 * d.default_plain.abs().max(1.0), "{}: {back}", d.key);
        }
    }

    #[test]
    fn formats_like_the_examples() {
        let cases: &[(u32, f64, &str)] = &[
            (id::CUTOFF, 440.0, "440 Hz"),
            (id::CUTOFF, 1200.0, "1.20 kHz"),
            (id::CUTOFF, 999.4, "999 Hz"),
            (id::CUTOFF, 999.6, "1.00 kHz"),
            (id::CUTOFF, 20_000.0, "20.00 kHz"),
            (id::GAIN, -6.0, "-6.0 dB"),
            (id::GAIN, -0.01, "0.0 dB"),
            (id::GAIN, 6.0, "6.0 dB"),
            (id::ATTACK, 0.005, "5.0 ms"),
            (id::ATTACK, 1.2, "1.20 s"),
            (id::ATTACK, 0.99996, "1.00 s"),
            (id::DECAY, 0.2, "200.0 ms"),
            (id::SUSTAIN, 0.7, "70 %"),
            (id::RESONANCE, 0.0, "0 %"),
            (id::FILTER_ENV, 2.0, "+2.0 oct"),
            (id::FILTER_ENV, -1.5, "-1.5 oct"),
            (id::FILTER_ENV, 0.0, "0.0 oct"),
            (id::FILTER_ENV, -0.01, "0.0 oct"),
            (id::WAVEFORM, 0.0, "Saw"),
            (id::WAVEFORM, 1.0, "Square"),
            (id::WAVEFORM, 2.0, "Sine"),
            (id::BYPASS, 0.0, "Off"),
            (id::BYPASS, 1.0, "On"),
        ];
        for &(id, plain, text) in cases {
            assert_eq!(def(id).format(plain), text, "id {id} plain {plain}");
        }
        assert_eq!(def(id::WAVEFORM).format_normalized(0.5), "Square");
        assert_eq!(def(id::BYPASS).format_normalized(1.0), "On");
        assert_eq!(def(id::CUTOFF).format_normalized(1.0), "20.00 kHz");
        assert_eq!(def(id::GAIN).format_normalized(0.0), "-60.0 dB");
    }

    #[test]
    fn format_clamps_and_survives_non_finite_values() {
        let cutoff = def(id::CUTOFF);
        assert_eq!(cutoff.format(1e9), "20.00 kHz");
        assert_eq!(cutoff.format(f64::INFINITY), "20.00 kHz");
        assert_eq!(cutoff.format(f64::NEG_INFINITY), "20 Hz");
        assert_eq!(cutoff.format(f64::NAN), "8.00 kHz");
        assert_eq!(def(id::WAVEFORM).format(7.0), "Sine");
        assert_eq!(def(id::WAVEFORM).format(-3.0), "Saw");
        assert_eq!(def(id::WAVEFORM).format(1.4), "Square");
        for d in definitions() {
            for n in [f64::NAN, f64::INFINITY, -1.0, 2.0] {
                assert!(!d.format_normalized(n).is_empty());
            }
        }
    }

    #[test]
    fn format_then_parse_round_trips_for_every_parameter() {
        for d in definitions() {
            for i in 0..=1000 {
                let n = f64::from(i) / 1000.0;
                let plain = d.mapping.to_plain(n);
                let text = d.format(plain);
                let parsed = d.parse(&text).unwrap_or_else(|e| panic!("{}: {text:?} did not parse: {e}", d.key));
                // The parsed value shows as the same text...
                assert_eq!(d.format(parsed), text, "{} plain {plain}", d.key);
                // ...and is within the display's rounding of the original value.
                let tolerance = match d.style() {
                    Style::List => 0.0,
                    Style::Hertz if plain >= 999.0 => 5.01,
                    Style::Hertz => 0.51,
                    Style::Decibel | Style::Octaves | Style::Bpm => 0.051,
                    Style::Seconds if plain >= 0.999 => 0.0051,
                    Style::Seconds => 0.000_051,
                    Style::Percent => 0.0051,
                    Style::Number => 0.0051,
                };
                assert!((parsed - plain).abs() <= tolerance, "{}: {plain} -> {text:?} -> {parsed}", d.key);
            }
        }
    }

    #[test]
    fn parses_common_variants() {
        let ok: &[(u32, &str, f64)] = &[
            (id::CUTOFF, "1200", 1200.0),
            (id::CUTOFF, "1200hz", 1200.0),
            (id::CUTOFF, "1200 Hz", 1200.0),
            (id::CUTOFF, "1.2k", 1200.0),
            (id::CUTOFF, "1.2 kHz", 1200.0),
            (id::CUTOFF, "1.2KHZ", 1200.0),
            (id::CUTOFF, "  440 Hz  ", 440.0),
            (id::CUTOFF, "4.4e2", 440.0),
            (id::CUTOFF, ".5k", 500.0),
            (id::GAIN, "-6 dB", -6.0),
            (id::GAIN, "-6db", -6.0),
            (id::GAIN, "-6", -6.0),
            (id::GAIN, "\u{2212}12 dB", -12.0),
            (id::GAIN, "+3", 3.0),
            (id::ATTACK, "12 ms", 0.012),
            (id::ATTACK, "12ms", 0.012),
            (id::ATTACK, "0.5s", 0.5),
            (id::ATTACK, "0.5 sec", 0.5),
            (id::ATTACK, "0.5", 0.5),
            (id::RELEASE, "2 seconds", 2.0),
            (id::SUSTAIN, "70%", 0.7),
            (id::SUSTAIN, "70 %", 0.7),
            (id::SUSTAIN, "70", 0.7),
            (id::VELOCITY_SENS, "12.5", 0.125),
            (id::FILTER_ENV, "+2.0 oct", 2.0),
            (id::FILTER_ENV, "-1.5", -1.5),
            (id::FILTER_ENV, "3 octaves", 3.0),
            (id::WAVEFORM, "square", 1.0),
            (id::WAVEFORM, "SINE", 2.0),
            (id::WAVEFORM, "Saw", 0.0),
            (id::WAVEFORM, "1", 1.0),
            (id::WAVEFORM, "2.0", 2.0),
            (id::BYPASS, "on", 1.0),
            (id::BYPASS, "OFF", 0.0),
            (id::BYPASS, "1", 1.0),
            (id::BYPASS, "0", 0.0),
        ];
        for &(id, text, want) in ok {
            let got = def(id).parse(text).unwrap();
            assert!((got - want).abs() < 1e-9, "id {id}: {text:?} -> {got}");
        }
    }

    #[test]
    fn clamps_out_of_range_numbers() {
        assert_eq!(def(id::CUTOFF).parse("50 kHz").unwrap(), 20_000.0);
        assert_eq!(def(id::CUTOFF).parse("0").unwrap(), 20.0);
        assert_eq!(def(id::CUTOFF).parse("-5").unwrap(), 20.0);
        assert_eq!(def(id::GAIN).parse("+20 dB").unwrap(), 6.0);
        assert_eq!(def(id::GAIN).parse("-200").unwrap(), -60.0);
        assert_eq!(def(id::ATTACK).parse("0 ms").unwrap(), 0.001);
        assert_eq!(def(id::ATTACK).parse("1e300").unwrap(), 5.0);
        assert_eq!(def(id::SUSTAIN).parse("150%").unwrap(), 1.0);
        assert_eq!(def(id::WAVEFORM).parse("7").unwrap(), 2.0);
        assert_eq!(def(id::WAVEFORM).parse("-1").unwrap(), 0.0);
    }

    #[test]
    fn rejects_garbage_and_non_finite_text() {
        let bad: &[(u32, &str)] = &[
            (id::CUTOFF, "abc"),
            (id::CUTOFF, ""),
            (id::CUTOFF, "   "),
            (id::CUTOFF, "NaN"),
            (id::CUTOFF, "inf"),
            (id::CUTOFF, "-inf Hz"),
            (id::CUTOFF, "infinity"),
            (id::CUTOFF, "1e999"),
            (id::CUTOFF, "1e306 kHz"),
            (id::CUTOFF, "5 dB"),
            (id::CUTOFF, "12 parsecs"),
            (id::CUTOFF, "1.2.3"),
            (id::CUTOFF, "-"),
            (id::CUTOFF, "."),
            (id::CUTOFF, "1 2"),
            (id::GAIN, "loud"),
            (id::GAIN, "-6 Hz"),
            (id::ATTACK, "5 min"),
            (id::SUSTAIN, "0.7 dB"),
            (id::FILTER_ENV, "2 semitones"),
            (id::WAVEFORM, "triangle"),
            (id::WAVEFORM, "1.5"),
            (id::WAVEFORM, "1 Hz"),
            (id::WAVEFORM, "nan"),
            (id::BYPASS, "maybe"),
        ];
        for &(id, text) in bad {
            let err = def(id).parse(text).unwrap_err();
            assert_eq!(err.param_id(), id);
            assert_eq!(err.text(), text);
        }
    }

    #[test]
    fn parse_errors_name_the_parameter_and_what_is_accepted() {
        let err = def(id::CUTOFF).parse("abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"abc\" is not a value for Filter Cutoff: type a frequency such as \"440 Hz\", \
             \"1.2 kHz\" or \"1200\""
        );
        let err = def(id::WAVEFORM).parse("triangle").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"triangle\" is not a value for Waveform: type one of Saw, Square, Sine, or its \
             number 0 to 2"
        );
        let long = "x".repeat(500);
        let msg = def(id::GAIN).parse(&long).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains('…'));
        let msg = def(id::GAIN).parse("a\"b\u{0}").unwrap_err().to_string();
        assert!(msg.starts_with("\"a\\\"b\\0\" is not a value for Output Gain"), "{msg}");
    }

    #[test]
    fn clamp_rounds_steps_and_replaces_nan() {
        let wave = def(id::WAVEFORM);
        assert_eq!(wave.clamp(1.4), 1.0);
        assert_eq!(wave.clamp(1.6), 2.0);
        assert_eq!(wave.clamp(9.0), 2.0);
        assert_eq!(wave.clamp(f64::NAN), 0.0);
        let cutoff = def(id::CUTOFF);
        assert_eq!(cutoff.clamp(f64::NAN), 8000.0);
        assert_eq!(cutoff.clamp(1234.5), 1234.5);
        assert_eq!(cutoff.clamp(f64::INFINITY), 20_000.0);
    }

    #[test]
    fn split_number_reads_a_leading_number() {
        assert_eq!(split_number("1.2 khz"), Some((1.2, "khz")));
        assert_eq!(split_number("-6db"), Some((-6.0, "db")));
        assert_eq!(split_number("5."), Some((5.0, "")));
        assert_eq!(split_number("1e3hz"), Some((1000.0, "hz")));
        assert_eq!(split_number("2e"), Some((2.0, "e")));
        assert_eq!(split_number("inf"), None);
        assert_eq!(split_number("+"), None);
        assert_eq!(split_number(""), None);
    }
}
