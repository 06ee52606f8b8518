//! The instrument's saved state as versioned JSON: every parameter value, the name of the
//! preset last loaded and the MIDI CC map.
//!
//! ```json
//! {"format":"trio-synth-state","version":1,"preset":"Init",
//!  "params":{"gain":-6.0,"waveform":0,"attack":0.005,...},
//!  "midi_cc":{"1":"filter_env","7":"gain","74":"cutoff"}}
//! ```
//!
//! Parameter values are **plain** values (in each parameter's unit), keyed by the stable
//! keys of [`crate::params::ParamDef::key`].
//!
//! Loading is all-or-nothing: [`from_json`] checks everything and builds a fresh
//! [`StateData`], and any problem is an error, so a caller that applies the result only
//! on `Ok` never half-loads a state. The rules:
//! - a `format` other than [`STATE_FORMAT`] or a `version` above [`STATE_VERSION`] is an
//!   error; older versions are brought up to date by [`migrate`];
//! - a parameter missing from `params` takes its default (older states load);
//! - a key in `params` that is not a parameter is an error (a state of another plugin
//!   must not half-load);
//! - a value that is not a finite number is an error; a value outside the range is
//!   clamped into it, and a stepped parameter's value is rounded to a whole step;
//! - `preset` may be absent or `null` (no preset); `midi_cc` may be absent (older
//!   states), which gives [`CcMap::default_map`];
//! - other top-level fields are ignored.

use std::fmt;

use serde_json::{Map, Value};

use crate::midi::{CcMap, MidiMapError};
use crate::params::{definitions, find_by_key};
use shared::params::MappingKind;

/// The `format` tag of a state document.
pub const STATE_FORMAT: &str = "trio-synth-state";

/// The state version this build writes, and the newest it reads.
pub const STATE_VERSION: u32 = 1;

/// Largest state accepted, in bytes; a real state is well under 4 KiB.
pub const MAX_STATE_BYTES: usize = 1 << 20;

/// Everything the instrument saves.
#[derive(Clone, Debug, PartialEq)]
pub struct StateData {
    /// `(parameter id, plain value)`, one per parameter in id order.
    pub values: Vec<(u32, f64)>,
    /// Name of the preset last loaded, if any.
    pub preset: Option<String>,
    /// MIDI CC assignments.
    pub cc_map: CcMap,
}

impl StateData {
    /// Every parameter at its default, no preset, the default CC map.
    pub fn defaults() -> Self {
        Self { values: default_values(), preset: None, cc_map: CcMap::default_map() }
    }

    /// The plain value stored for parameter `id`.
    pub fn value(&self, id: u32) -> Option<f64> {
        self.values.iter().rev().find(|&&(i, _)| i == id).map(|&(_, v)| v)
    }
}

impl Default for StateData {
    /// The same as [`StateData::defaults`].
    fn default() -> Self {
        Self::defaults()
    }
}

/// `(id, default plain value)` for every parameter, in id order.
pub(crate) fn default_values() -> Vec<(u32, f64)> {
    definitions().iter().map(|d| (d.id, d.default_plain)).collect()
}

/// Writes `state` as compact JSON (see the module documentation).
///
/// The output always loads: parameters come out in id order, one each; a parameter that
/// `state.values` lacks, or holds as NaN, is written at its default; values outside the
/// range are clamped; entries with unknown ids are left out.
pub fn to_json(state: &StateData) -> String {
    let preset = match &state.preset {
        Some(name) => Value::from(name.as_str()).to_string(),
        None => "null".to_owned(),
    };
    format!(
        "{{\"format\":{},\"version\":{STATE_VERSION},\"preset\":{preset},\"params\":{},\
         \"midi_cc\":{}}}",
        Value::from(STATE_FORMAT),
        params_to_json(&state.values),
        state.cc_map.to_json()
    )
}

/// The `params` object for `values`: every parameter in id order, stepped ones as whole
/// numbers. Shared with preset files.
pub(crate) fn params_to_json(values: &[(u32, f64)]) -> String {
    let entries: Vec<String> = definitions()
        .iter()
        .map(|d| {
            let plain = values.iter().rev().find(|&&(id, _)| id == d.id).map_or(d.default_plain, |&(_, v)| d.clamp(v));
            let number = match d.mapping.kind {
                MappingKind::Stepped => Value::from(plain.round() as i64),
                _ => Value::from(plain),
            };
            format!("{}:{number}", Value::from(d.key))
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// Reads a state written by [`to_json`] of this or an older version.
///
/// # Errors
/// A [`StateError`] saying what is wrong and where; nothing is half-loaded.
pub fn from_json(bytes: &[u8]) -> Result<StateData, StateError> {
    let doc = read_document(bytes, STATE_FORMAT)?;
    let values = parse_params(required(&doc, "params")?)?;
    let preset = match doc.get("preset") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => {
            return Err(StateError::BadField {
                field: "preset",
                expected: "a preset name in quotes, or null",
                found: describe_json(other),
            });
        }
    };
    let cc_map = match doc.get("midi_cc") {
        None => CcMap::default_map(),
        Some(value) => CcMap::from_json_value(value).map_err(StateError::BadMidiMap)?,
    };
    Ok(StateData { values, preset, cc_map })
}

/// Checks the envelope shared by state and preset documents and returns the top-level
/// object, migrated to [`STATE_VERSION`]: size, UTF-8 (a leading byte-order mark is
/// skipped), JSON syntax, an object, `format == expected_format`, a supported `version`.
pub(crate) fn read_document(bytes: &[u8], expected_format: &'static str) -> Result<Map<String, Value>, StateError> {
    if bytes.is_empty() {
        return Err(StateError::Empty);
    }
    if bytes.len() > MAX_STATE_BYTES {
        return Err(StateError::TooLarge { len: bytes.len(), max: MAX_STATE_BYTES });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| StateError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(StateError::Empty);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    let Value::Object(object) = value else {
        return Err(StateError::NotAnObject { found: describe_json(&value) });
    };
    match object.get("format") {
        Some(Value::String(found)) if found == expected_format => {}
        found => {
            return Err(StateError::WrongFormat { expected: expected_format, found: found.map(describe_json) });
        }
    }
    let raw_version = required(&object, "version")?;
    let version = raw_version.as_u64().ok_or_else(|| StateError::BadField {
        field: "version",
        expected: "a whole number such as 1",
        found: describe_json(raw_version),
    })?;
    let version = u32::try_from(version)
        .ok()
        .filter(|&v| v <= STATE_VERSION)
        .ok_or(StateError::FutureVersion { found: version, supported: STATE_VERSION })?;
    match migrate(version, Value::Object(object))? {
        Value::Object(object) => Ok(object),
        other => Err(StateError::NotAnObject { found: describe_json(&other) }),
    }
}

fn required<'a>(object: &'a Map<String, Value>, field: &'static str) -> Result<&'a Value, StateError> {
    object.get(field).ok_or(StateError::MissingField { field })
}

fn json_error(e: &serde_json::Error) -> StateError {
    let (line, column) = (e.line(), e.column());
    if e.is_eof() {
        return StateError::Truncated { line, column };
    }
    let full = e.to_string();
    let position = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    StateError::NotJson { line, column, message }
}

/// Reads a `params` object into `(id, plain)` for every parameter in id order; missing
/// parameters take their default. Shared by states and presets.
pub(crate) fn parse_params(value: &Value) -> Result<Vec<(u32, f64)>, StateError> {
    let Value::Object(object) = value else {
        return Err(StateError::BadField {
            field: "params",
            expected: "an object of parameter values such as {\"cutoff\": 8000}",
            found: describe_json(value),
        });
    };
    let mut values = default_values();
    for (key, raw) in object {
        let def = find_by_key(key).ok_or_else(|| StateError::UnknownParameter { key: key.clone() })?;
        let plain = raw
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| StateError::BadValue { key: key.clone(), found: describe_json(raw) })?;
        let slot = values
            .iter_mut()
            .find(|(id, _)| *id == def.id)
            .ok_or_else(|| StateError::UnknownParameter { key: key.clone() })?;
        slot.1 = def.clamp(plain);
    }
    Ok(values)
}

/// Brings a document of state `version` up to [`STATE_VERSION`], one version at a time.
///
/// Version history:
/// - 0: the parameter table was called `parameters`;
/// - 1: it is called `params` (current).
///
/// # Errors
/// [`StateError::FutureVersion`] for a version above [`STATE_VERSION`];
/// [`StateError::NotAnObject`] if `doc` is not an object; [`StateError::BadField`] if a
/// version 0 document also has a `params` field.
pub fn migrate(version: u32, doc: Value) -> Result<Value, StateError> {
    if version > STATE_VERSION {
        return Err(StateError::FutureVersion { found: u64::from(version), supported: STATE_VERSION });
    }
    let mut doc = doc;
    for from in version..STATE_VERSION {
        doc = match from {
            0 => migrate_0_to_1(doc)?,
            _ => doc,
        };
    }
    Ok(doc)
}

/// Version 0 → 1: `parameters` becomes `params`.
fn migrate_0_to_1(doc: Value) -> Result<Value, StateError> {
    let Value::Object(mut object) = doc else {
        return Err(StateError::NotAnObject { found: describe_json(&doc) });
    };
    if let Some(params) = object.get("params") {
        return Err(StateError::BadField {
            field: "params",
            expected: "absent in a version 0 document, which names the table \"parameters\"",
            found: describe_json(params),
        });
    }
    if let Some(params) = object.remove("parameters") {
        object.insert("params".to_owned(), params);
    }
    object.insert("version".to_owned(), Value::from(1));
    Ok(Value::Object(object))
}

/// Longest quoted text in a description, in characters.
const QUOTED_CHARS: usize = 40;

/// A short description of a JSON value for error messages: `null`, `the number 5`,
/// `the text "abc"`, `a list`, ...
pub(crate) fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the value {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let mut shown: String = s.chars().take(QUOTED_CHARS).collect();
            if s.chars().nth(QUOTED_CHARS).is_some() {
                shown.push('…');
            }
            format!("the text {shown:?}")
        }
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Why a saved state (or preset document) could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// No bytes, or only white space.
    Empty,
    /// More than [`MAX_STATE_BYTES`].
    TooLarge {
        /// Size given.
        len: usize,
        /// Largest size accepted.
        max: usize,
    },
    /// Not UTF-8 text.
    NotUtf8 {
        /// Number of leading bytes that are valid.
        valid_up_to: usize,
    },
    /// Not JSON.
    NotJson {
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// The JSON parser's description.
        message: String,
    },
    /// The JSON ends in the middle (the data was cut off).
    Truncated {
        /// Line where the data ends.
        line: usize,
        /// Column where the data ends.
        column: usize,
    },
    /// The JSON is not an object.
    NotAnObject {
        /// What it is instead.
        found: String,
    },
    /// The `format` field is missing or is not the expected tag.
    WrongFormat {
        /// The tag expected.
        expected: &'static str,
        /// Description of the `format` found, `None` if absent.
        found: Option<String>,
    },
    /// Written by a newer version of the instrument.
    FutureVersion {
        /// The document's version.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A required field is absent.
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong type.
    BadField {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// Description of what it is.
        found: String,
    },
    /// `params` names a parameter the instrument does not have.
    UnknownParameter {
        /// The key as written.
        key: String,
    },
    /// A parameter value is not a finite number.
    BadValue {
        /// The parameter's key.
        key: String,
        /// Description of the value found.
        found: String,
    },
    /// The `midi_cc` map is invalid.
    BadMidiMap(MidiMapError),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(
                f,
                "the saved data is empty, so there is nothing to load; the current settings \
                 are kept"
            ),
            Self::TooLarge { len, max } => write!(
                f,
                "the saved data is {len} bytes, more than the {max} bytes a state of this \
                 instrument can be; it is not a state of this instrument or it is damaged"
            ),
            Self::NotUtf8 { valid_up_to } => write!(
                f,
                "the saved data is not text: byte {valid_up_to} is not valid UTF-8; it is \
                 damaged or comes from another program, so load a preset or another save \
                 instead"
            ),
            Self::NotJson { line, column, message } => write!(
                f,
                "the saved data is not valid JSON at line {line}, column {column} \
                 ({message}); fix it there, or load a preset or another save instead"
            ),
            Self::Truncated { line, column } => write!(
                f,
                "the saved data stops in the middle, at line {line}, column {column}; it was \
                 cut off while being written, so load another save or a preset instead"
            ),
            Self::NotAnObject { found } => write!(
                f,
                "the saved data is {found}, but a state is a JSON object such as \
                 {{\"format\": \"{STATE_FORMAT}\", \"version\": {STATE_VERSION}, ...}}"
            ),
            Self::WrongFormat { expected, found: Some(found) } => write!(
                f,
                "the data's \"format\" is {found}, not \"{expected}\"; it belongs to another \
                 plugin or kind of file, so open it with the program that made it"
            ),
            Self::WrongFormat { expected, found: None } => write!(
                f,
                "the data has no \"format\" field, so it is not a \"{expected}\" document; it \
                 belongs to another plugin or kind of file"
            ),
            Self::FutureVersion { found, supported } => write!(
                f,
                "the data was saved by a newer version of the instrument (version {found}; \
                 this one reads up to version {supported}); update the plugin to load it"
            ),
            Self::MissingField { field } => write!(
                f,
                "the data has no \"{field}\" field, which every version {STATE_VERSION} \
                 document has; it is incomplete and was not loaded"
            ),
            Self::BadField { field, expected, found } => write!(
                f,
                "the \"{field}\" field is {found}, but it must be {expected}; nothing was \
                 loaded"
            ),
            Self::UnknownParameter { key } => write!(
                f,
                "\"params\" sets {key:?}, which is not a parameter of this instrument; the \
                 data comes from another plugin or a newer version, and nothing was loaded"
            ),
            Self::BadValue { key, found } => write!(
                f,
                "the value of parameter {key:?} is {found}, but it must be a finite number \
                 in the parameter's unit (for example \"cutoff\": 8000); nothing was loaded"
            ),
            Self::BadMidiMap(e) => write!(f, "in \"midi_cc\": {e}; nothing was loaded"),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadMidiMap(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::definition;
    use serde_json::json;
    use shared::params::id;

    /// The default state as version 1 writes it (with the arpeggiator's parameters).
    const GOLDEN_V1: &str = "{\"format\":\"trio-synth-state\",\"version\":1,\"preset\":\"Init\",\
\"params\":{\"gain\":-6.0,\"waveform\":0,\"attack\":0.005,\"decay\":0.2,\"sustain\":0.7,\
\"release\":0.3,\"cutoff\":8000.0,\"resonance\":0.2,\"filter_env\":2.0,\"velocity_sens\":0.7,\
\"bypass\":0,\"arp_on\":0,\"arp_rate\":2,\"arp_pattern\":0,\"arp_octaves\":1,\"arp_gate\":0.5,\
\"arp_tempo\":120.0},\
\"midi_cc\":{\"1\":\"filter_env\",\"7\":\"gain\",\"71\":\"resonance\",\"72\":\"release\",\
\"73\":\"attack\",\"74\":\"cutoff\"}}";

    /// The default state as version 1 wrote it before the arpeggiator existed: it must
    /// still load, with the arpeggiator's defaults (off).
    const GOLDEN_V1_BEFORE_ARP: &str = "{\"format\":\"trio-synth-state\",\"version\":1,\"preset\":\"Init\",\
\"params\":{\"gain\":-6.0,\"waveform\":0,\"attack\":0.005,\"decay\":0.2,\"sustain\":0.7,\
\"release\":0.3,\"cutoff\":8000.0,\"resonance\":0.2,\"filter_env\":2.0,\"velocity_sens\":0.7,\
\"bypass\":0},\
\"midi_cc\":{\"1\":\"filter_env\",\"7\":\"gain\",\"71\":\"resonance\",\"72\":\"release\",\
\"73\":\"attack\",\"74\":\"cutoff\"}}";

    /// A version 1 state with every value changed and a custom CC map.
    const CUSTOM_V1: &str = r#"{
        "format": "trio-synth-state",
        "version": 1,
        "preset": "Acid Bass",
        "params": {
            "gain": -8.5, "waveform": 1, "attack": 0.002, "decay": 0.18, "sustain": 0.1,
            "release": 0.08, "cutoff": 300, "resonance": 0.8, "filter_env": 4.5,
            "velocity_sens": 0.8, "bypass": 1
        },
        "midi_cc": {"74": "cutoff", "20": "resonance"}
    }"#;

    /// The same state as version 0 wrote it: the table was called `parameters`.
    const CUSTOM_V0: &str = r#"{
        "format": "trio-synth-state",
        "version": 0,
        "preset": "Acid Bass",
        "parameters": {
            "gain": -8.5, "waveform": 1, "attack": 0.002, "decay": 0.18, "sustain": 0.1,
            "release": 0.08, "cutoff": 300, "resonance": 0.8, "filter_env": 4.5,
            "velocity_sens": 0.8, "bypass": 1
        },
        "midi_cc": {"74": "cutoff", "20": "resonance"}
    }"#;

    fn init_state() -> StateData {
        StateData { preset: Some("Init".to_owned()), ..StateData::defaults() }
    }

    fn load(text: &str) -> Result<StateData, StateError> {
        from_json(text.as_bytes())
    }

    fn with_params(params: Value) -> String {
        json!({"format": STATE_FORMAT, "version": 1, "params": params}).to_string()
    }

    #[test]
    fn writes_the_golden_version_1_document() {
        assert_eq!(to_json(&init_state()), GOLDEN_V1);
    }

    #[test]
    fn reads_the_golden_version_1_document() {
        assert_eq!(load(GOLDEN_V1).unwrap(), init_state());
    }

    #[test]
    fn reads_states_saved_before_the_arpeggiator_with_its_defaults() {
        assert_eq!(load(GOLDEN_V1_BEFORE_ARP).unwrap(), init_state());
        let v0 = load(CUSTOM_V0).unwrap();
        for key in ["arp_on", "arp_rate", "arp_pattern", "arp_octaves", "arp_gate", "arp_tempo"] {
            let d = find_by_key(key).unwrap();
            assert_eq!(v0.value(d.id), Some(d.default_plain), "{key}");
        }
        assert_eq!(v0.value(id::ARP_ON), Some(0.0));
    }

    #[test]
    fn saves_the_arpeggiator_parameters() {
        let mut state = init_state();
        for (id, v) in [(id::ARP_ON, 1.0), (id::ARP_PATTERN, 3.0), (id::ARP_OCTAVES, 3.0), (id::ARP_GATE, 0.25)] {
            state.values.iter_mut().find(|(i, _)| *i == id).unwrap().1 = v;
        }
        let text = to_json(&state);
        assert!(text.contains("\"arp_on\":1") && text.contains("\"arp_pattern\":3"), "{text}");
        assert_eq!(load(&text).unwrap(), state);
    }

    #[test]
    fn round_trips_a_custom_state() {
        let state = load(CUSTOM_V1).unwrap();
        assert_eq!(state.preset.as_deref(), Some("Acid Bass"));
        assert_eq!(state.value(id::WAVEFORM), Some(1.0));
        assert_eq!(state.value(id::CUTOFF), Some(300.0));
        assert_eq!(state.value(id::GAIN), Some(-8.5));
        assert_eq!(state.value(id::BYPASS), Some(1.0));
        assert_eq!(state.cc_map.param_for_cc(20), Some(id::RESONANCE));
        assert_eq!(state.cc_map.param_for_cc(7), None);
        assert_eq!(load(&to_json(&state)).unwrap(), state);
        let ids: Vec<u32> = state.values.iter().map(|&(i, _)| i).collect();
        assert_eq!(ids, (0..id::COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn round_trips_awkward_values_exactly() {
        let mut state = StateData::defaults();
        for (i, (_, v)) in state.values.iter_mut().enumerate() {
            if let Some(d) = definition(i as u32) {
                *v = d.mapping.to_plain(0.123_456_789 * (i as f64 + 1.0) % 1.0);
            }
        }
        state.preset = Some("Quote \" back\\slash \u{e9} \u{1f3b9} \n".to_owned());
        state.cc_map = CcMap::empty();
        assert_eq!(load(&to_json(&state)).unwrap(), state);
    }

    #[test]
    fn version_0_migrates_to_the_same_state_as_version_1() {
        assert_eq!(load(CUSTOM_V0).unwrap(), load(CUSTOM_V1).unwrap());
    }

    #[test]
    fn migrate_renames_the_table_step_by_step() {
        let v0 = json!({"format": STATE_FORMAT, "version": 0, "parameters": {"gain": 1.0}});
        let v1 = json!({"format": STATE_FORMAT, "version": 1, "params": {"gain": 1.0}});
        assert_eq!(migrate(0, v0).unwrap(), v1);
        assert_eq!(migrate(1, v1.clone()).unwrap(), v1);
        assert_eq!(migrate(2, v1.clone()), Err(StateError::FutureVersion { found: 2, supported: 1 }));
        let both = json!({"version": 0, "parameters": {}, "params": {}});
        assert!(matches!(migrate(0, both), Err(StateError::BadField { field: "params", .. })));
        assert!(matches!(migrate(0, json!([1])), Err(StateError::NotAnObject { .. })));
    }

    #[test]
    fn rejects_empty_input() {
        assert_eq!(from_json(b""), Err(StateError::Empty));
        assert_eq!(from_json(b"  \n\t "), Err(StateError::Empty));
        assert_eq!(from_json("\u{feff}".as_bytes()), Err(StateError::Empty));
    }

    #[test]
    fn rejects_bytes_that_are_not_utf8() {
        assert_eq!(from_json(b"{\"format\":\xff}"), Err(StateError::NotUtf8 { valid_up_to: 10 }));
    }

    #[test]
    fn accepts_a_byte_order_mark() {
        let text = format!("\u{feff}{GOLDEN_V1}");
        assert_eq!(load(&text).unwrap(), init_state());
    }

    #[test]
    fn rejects_garbage_with_its_position() {
        match load("{\"format\": \"trio-synth-state\",\n  \"version\": x}") {
            Err(StateError::NotJson { line, column, .. }) => {
                assert_eq!((line, column), (2, 14));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(load("hello"), Err(StateError::NotJson { .. })));
        assert!(matches!(from_json(&[0u8, 1, 2, 3]), Err(StateError::NotJson { .. })));
        let msg = load("{\"a\" 1}").unwrap_err().to_string();
        assert!(msg.contains("line 1, column 6"), "{msg}");
    }

    #[test]
    fn every_truncation_is_an_error() {
        for end in 0..GOLDEN_V1.len() {
            if let Some(prefix) = GOLDEN_V1.get(..end) {
                assert!(load(prefix).is_err(), "prefix of {end} bytes loaded");
            }
        }
        assert!(matches!(load(&GOLDEN_V1[..GOLDEN_V1.len() / 2]), Err(StateError::Truncated { .. })));
    }

    #[test]
    fn rejects_the_wrong_format() {
        assert!(matches!(load("[1, 2]"), Err(StateError::NotAnObject { .. })));
        assert!(matches!(load("42"), Err(StateError::NotAnObject { .. })));
        assert_eq!(
            load("{\"version\": 1, \"params\": {}}"),
            Err(StateError::WrongFormat { expected: STATE_FORMAT, found: None })
        );
        assert_eq!(
            load("{\"format\": \"other-synth\", \"version\": 1, \"params\": {}}"),
            Err(StateError::WrongFormat { expected: STATE_FORMAT, found: Some("the text \"other-synth\"".to_owned()) })
        );
        let preset = GOLDEN_V1.replace("trio-synth-state", "trio-synth-preset");
        assert!(matches!(load(&preset), Err(StateError::WrongFormat { .. })));
    }

    #[test]
    fn rejects_future_and_malformed_versions() {
        let v2 = GOLDEN_V1.replace("\"version\":1", "\"version\":2");
        assert_eq!(load(&v2), Err(StateError::FutureVersion { found: 2, supported: 1 }));
        let huge = GOLDEN_V1.replace("\"version\":1", "\"version\":18446744073709551615");
        assert!(matches!(load(&huge), Err(StateError::FutureVersion { .. })));
        for bad in ["\"1\"", "-1", "1.5", "null", "true"] {
            let text = GOLDEN_V1.replace("\"version\":1", &format!("\"version\":{bad}"));
            assert!(matches!(load(&text), Err(StateError::BadField { field: "version", .. })), "{bad}");
        }
        let missing = GOLDEN_V1.replace("\"version\":1,", "");
        assert_eq!(load(&missing), Err(StateError::MissingField { field: "version" }));
        let msg = load(&v2).unwrap_err().to_string();
        assert!(msg.contains("newer version") && msg.contains("update"), "{msg}");
    }

    #[test]
    fn rejects_values_that_are_not_finite_numbers() {
        for bad in [json!("loud"), json!(null), json!(true), json!([1]), json!({})] {
            let err = load(&with_params(json!({"gain": bad}))).unwrap_err();
            assert!(matches!(&err, StateError::BadValue { key, .. } if key == "gain"), "{err:?}");
        }
        // JSON has no NaN or infinity; a number too large for f64 is a syntax error.
        assert!(load(&with_params(json!({})).replace("{}", "{\"gain\":1e999}")).is_err());
        assert!(load(&with_params(json!({})).replace("{}", "{\"gain\":NaN}")).is_err());
        let msg = load(&with_params(json!({"cutoff": "bright"}))).unwrap_err().to_string();
        assert!(msg.contains("\"cutoff\"") && msg.contains("\"bright\""), "{msg}");
    }

    #[test]
    fn rejects_unknown_parameters_by_name() {
        let err = load(&with_params(json!({"gain": 0.0, "wobble": 1.0}))).unwrap_err();
        assert_eq!(err, StateError::UnknownParameter { key: "wobble".to_owned() });
        assert!(err.to_string().contains("\"wobble\""));
        assert!(load(&with_params(json!({"Gain": 0.0}))).is_err());
    }

    #[test]
    fn missing_parameters_take_their_default() {
        let state = load(&with_params(json!({"cutoff": 440}))).unwrap();
        assert_eq!(state.value(id::CUTOFF), Some(440.0));
        for d in definitions().iter().filter(|d| d.id != id::CUTOFF) {
            assert_eq!(state.value(d.id), Some(d.default_plain), "{}", d.key);
        }
        assert_eq!(state.preset, None);
        assert_eq!(state.cc_map, CcMap::default_map());
        assert_eq!(load(&with_params(json!({}))).unwrap().values, default_values());
    }

    #[test]
    fn clamps_out_of_range_values_and_rounds_steps() {
        let state = load(&with_params(json!({
            "cutoff": 1e9, "gain": -1000, "attack": 0, "waveform": 1.6, "bypass": 7,
            "sustain": -0.5
        })))
        .unwrap();
        assert_eq!(state.value(id::CUTOFF), Some(20_000.0));
        assert_eq!(state.value(id::GAIN), Some(-60.0));
        assert_eq!(state.value(id::ATTACK), Some(0.001));
        assert_eq!(state.value(id::WAVEFORM), Some(2.0));
        assert_eq!(state.value(id::BYPASS), Some(1.0));
        assert_eq!(state.value(id::SUSTAIN), Some(0.0));
    }

    #[test]
    fn params_must_be_present_and_an_object() {
        let no_params = json!({"format": STATE_FORMAT, "version": 1}).to_string();
        assert_eq!(load(&no_params), Err(StateError::MissingField { field: "params" }));
        assert!(matches!(load(&with_params(json!([1, 2]))), Err(StateError::BadField { field: "params", .. })));
    }

    #[test]
    fn preset_name_is_optional_but_must_be_text() {
        let null = GOLDEN_V1.replace("\"preset\":\"Init\"", "\"preset\":null");
        assert_eq!(load(&null).unwrap().preset, None);
        let number = GOLDEN_V1.replace("\"preset\":\"Init\"", "\"preset\":5");
        assert!(matches!(load(&number), Err(StateError::BadField { field: "preset", .. })));
        let none = to_json(&StateData::defaults());
        assert!(none.contains("\"preset\":null"));
        assert_eq!(load(&none).unwrap(), StateData::defaults());
    }

    #[test]
    fn midi_map_is_optional_and_validated() {
        let absent = with_params(json!({}));
        assert_eq!(load(&absent).unwrap().cc_map, CcMap::default_map());
        let empty = GOLDEN_V1.replace(&CcMap::default_map().to_json(), "{}");
        assert_eq!(load(&empty).unwrap().cc_map, CcMap::empty());
        let bad = GOLDEN_V1.replace("\"74\":\"cutoff\"", "\"74\":\"wobble\"");
        let err = load(&bad).unwrap_err();
        assert!(matches!(err, StateError::BadMidiMap(MidiMapError::UnknownParamKey { cc: 74, .. })));
        assert!(err.to_string().contains("\"wobble\""), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let bad_cc = GOLDEN_V1.replace("\"74\":\"cutoff\"", "\"300\":\"cutoff\"");
        assert!(matches!(load(&bad_cc), Err(StateError::BadMidiMap(MidiMapError::BadCcKey { .. }))));
    }

    #[test]
    fn ignores_unknown_top_level_fields() {
        let extra = GOLDEN_V1.replacen('{', "{\"comment\":\"hello\",", 1);
        assert_eq!(load(&extra).unwrap(), init_state());
    }

    #[test]
    fn rejects_oversized_input() {
        let big = vec![b' '; MAX_STATE_BYTES + 1];
        assert!(matches!(from_json(&big), Err(StateError::TooLarge { .. })));
    }

    #[test]
    fn to_json_always_writes_a_loadable_state() {
        let state = StateData {
            values: vec![(id::CUTOFF, f64::NAN), (id::GAIN, f64::INFINITY), (999, 1.0), (id::WAVEFORM, 1.4)],
            preset: None,
            cc_map: CcMap::empty(),
        };
        let loaded = load(&to_json(&state)).unwrap();
        assert_eq!(loaded.value(id::CUTOFF), Some(8000.0));
        assert_eq!(loaded.value(id::GAIN), Some(6.0));
        assert_eq!(loaded.value(id::WAVEFORM), Some(1.0));
        assert_eq!(loaded.value(id::DECAY), Some(0.2));
        assert_eq!(loaded.values.len(), definitions().len());
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let errors = [
            StateError::Empty,
            StateError::NotUtf8 { valid_up_to: 3 },
            StateError::Truncated { line: 1, column: 9 },
            StateError::WrongFormat { expected: STATE_FORMAT, found: None },
            StateError::MissingField { field: "params" },
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.len() > 40, "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }
}
