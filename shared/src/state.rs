//! A plugin's saved state and preset files: versioned JSON the framework reads and writes
//! for every plugin.
//!
//! ```json
//! {"format":"my-synth-state","version":1,"preset":"Init",
//!  "params":{"gain":-6.0,"waveform":0,"cutoff":8000.0},
//!  "midi_cc":{"7":"gain","74":"cutoff"}}
//! ```
//!
//! Parameter values are **plain** values keyed by each parameter's stable key
//! ([`ParamDef::key`]), so a state survives a changed mapping and reads well. Fields other
//! than these five belong to the plugin ([`crate::control::Control::save_extra`]).
//!
//! Loading is all-or-nothing: [`StateSchema::from_json`] checks everything and builds a
//! fresh [`StateData`], so a caller that applies the result only on `Ok` never half-loads
//! a state. The rules:
//! - a `format` other than the plugin's, or a `version` above the plugin's, is an error;
//!   older versions are brought up to date one version at a time by the plugin's
//!   migration hook ([`crate::control::Control::migrate_state`]);
//! - a parameter missing from `params` takes its default (older states load);
//! - a key in `params` that is not a parameter is an error (a state of another plugin must
//!   not half-load);
//! - a value that is not a finite number is an error; a value outside the range is clamped
//!   into it, and a stepped parameter's value is rounded to a whole step;
//! - `preset` may be absent or `null`; `midi_cc` may be absent, which gives the plugin's
//!   default map.
//!
//! Preset files have the same `params` table with a `name` and their own `format` tag:
//! `{"format":"my-synth-preset","version":1,"name":"Warm Pad","params":{...}}`.

use std::fmt;

use serde_json::{Map, Value};

use crate::block::CC_COUNT;
use crate::params::{MappingKind, ParamDef};

/// Largest state accepted, in bytes.
pub const MAX_STATE_BYTES: usize = 1 << 20;

/// Everything the framework saves for a plugin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateData {
    /// `(parameter id, plain value)`, one per parameter in definition order.
    pub values: Vec<(u32, f64)>,
    /// Name of the preset last loaded, if any.
    pub preset: Option<String>,
    /// MIDI CC assignments `(cc, parameter id)`, in CC order.
    pub cc_map: Vec<(u8, u32)>,
    /// The document's other top-level fields: the plugin's own.
    pub extra: Map<String, Value>,
}

impl StateData {
    /// The plain value stored for parameter `id`.
    pub fn value(&self, id: u32) -> Option<f64> {
        self.values.iter().rev().find(|&&(i, _)| i == id).map(|&(_, v)| v)
    }
}

/// A preset: a name and plain values by parameter id.
#[derive(Clone, Debug, PartialEq)]
pub struct PresetData {
    /// The name hosts and users see.
    pub name: String,
    /// `(parameter id, plain value)` for every parameter (missing ones at their default).
    pub values: Vec<(u32, f64)>,
}

/// A plugin's migration hook: brings a document from one version to the next.
pub type MigrateFn<'a> = &'a dyn Fn(u32, &mut Map<String, Value>) -> Result<(), String>;

/// What a plugin's documents look like: the tags, the version and the parameters.
pub struct StateSchema<'a> {
    /// The `format` tag of state documents, e.g. `"my-synth-state"`.
    pub format: &'a str,
    /// The `format` tag of preset files, e.g. `"my-synth-preset"`.
    pub preset_format: &'a str,
    /// The version this build writes and the newest it reads.
    pub version: u32,
    /// The parameters.
    pub params: &'a [ParamDef],
    /// The default MIDI CC map.
    pub default_cc_map: &'a [(u8, u32)],
    /// Brings a document from version `from` to `from + 1` (it is the whole top-level
    /// object, `version` included; the hook need not update `version`).
    pub migrate: MigrateFn<'a>,
}

impl StateSchema<'_> {
    fn def_by_key(&self, key: &str) -> Option<&ParamDef> {
        self.params.iter().find(|d| d.key == key)
    }

    fn def_by_id(&self, id: u32) -> Option<&ParamDef> {
        self.params.iter().find(|d| d.id() == id)
    }

    fn defaults(&self) -> Vec<(u32, f64)> {
        self.params.iter().map(|d| (d.id(), d.default_plain())).collect()
    }

    /// Writes `state` as compact JSON (see the [module docs](self)). The output always
    /// loads: parameters come out in definition order, one each; a parameter that
    /// `state.values` lacks, or holds as NaN, is written at its default; values outside
    /// the range are clamped; entries with unknown ids are left out. Extra fields follow.
    pub fn to_json(&self, state: &StateData) -> String {
        let preset = match &state.preset {
            Some(name) => Value::from(name.as_str()).to_string(),
            None => "null".to_owned(),
        };
        let mut text = format!(
            "{{\"format\":{},\"version\":{},\"preset\":{preset},\"params\":{},\"midi_cc\":{}",
            Value::from(self.format),
            self.version,
            self.params_to_json(&state.values),
            self.cc_map_to_json(&state.cc_map)
        );
        for (key, value) in &state.extra {
            if !RESERVED_FIELDS.contains(&key.as_str()) {
                text.push_str(&format!(",{}:{value}", Value::from(key.as_str())));
            }
        }
        text.push('}');
        text
    }

    /// The `params` object for `values`: every parameter in definition order, stepped
    /// ones as whole numbers.
    pub fn params_to_json(&self, values: &[(u32, f64)]) -> String {
        let entries: Vec<String> = self
            .params
            .iter()
            .map(|d| {
                let plain = values
                    .iter()
                    .rev()
                    .find(|&&(id, _)| id == d.id())
                    .map_or(d.default_plain(), |&(_, v)| d.info.clamp(v));
                let number = match d.info.mapping.kind {
                    MappingKind::Stepped => Value::from(plain.round() as i64),
                    _ => Value::from(plain),
                };
                format!("{}:{number}", Value::from(d.key.as_str()))
            })
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    fn cc_map_to_json(&self, map: &[(u8, u32)]) -> String {
        let mut map = map.to_vec();
        map.sort_by_key(|&(cc, _)| cc);
        // One entry per controller, the last given (a JSON object repeats no key).
        map.reverse();
        map.dedup_by_key(|&mut (cc, _)| cc);
        map.reverse();
        let entries: Vec<String> = map
            .iter()
            .filter_map(|&(cc, id)| Some(format!("\"{cc}\":{}", Value::from(self.def_by_id(id)?.key.as_str()))))
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    /// Reads a state written by [`StateSchema::to_json`] of this or an older version.
    ///
    /// # Errors
    /// A [`StateError`] saying what is wrong and where; nothing is half-loaded.
    pub fn from_json(&self, bytes: &[u8]) -> Result<StateData, StateError> {
        let object = parse_object(bytes, self.format)?;
        if object.get("format").and_then(Value::as_str) == Some(VALUES_FORMAT) {
            return self.values_from_json(&object);
        }
        let mut doc = self.check_document(object, self.format, true)?;
        let values = self.parse_params(required(&doc, "params")?)?;
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
            None => self.default_cc_map.to_vec(),
            Some(value) => self.parse_cc_map(value)?,
        };
        for field in RESERVED_FIELDS {
            doc.remove(field);
        }
        Ok(StateData { values, preset, cc_map, extra: doc })
    }

    /// Reads a preset file.
    ///
    /// # Errors
    /// A [`StateError`] saying what is wrong.
    pub fn preset_from_json(&self, text: &str) -> Result<PresetData, StateError> {
        let doc = self.read_document(text.as_bytes(), self.preset_format, false)?;
        let name = match required(&doc, "name")? {
            Value::String(name) if !name.trim().is_empty() => name.clone(),
            other => {
                return Err(StateError::BadField {
                    field: "name",
                    expected: "the preset's name in quotes",
                    found: describe_json(other),
                });
            }
        };
        let values = self.parse_params(required(&doc, "params")?)?;
        Ok(PresetData { name, values })
    }

    /// Reads a [`VALUES_FORMAT`] document (see [`values_to_json`]): the values by id, the
    /// MIDI CC map if present (else the default), no preset and no plugin fields.
    fn values_from_json(&self, object: &Map<String, Value>) -> Result<StateData, StateError> {
        let raw_version = required(object, "version")?;
        if raw_version.as_u64() != Some(1) {
            return Err(match raw_version.as_u64() {
                Some(found) => StateError::FutureVersion { found, supported: 1 },
                None => StateError::BadField {
                    field: "version",
                    expected: "the whole number 1",
                    found: describe_json(raw_version),
                },
            });
        }
        let table = |field: &'static str| -> Result<Option<&Map<String, Value>>, StateError> {
            match object.get(field) {
                None => Ok(None),
                Some(Value::Object(table)) => Ok(Some(table)),
                Some(other) => Err(StateError::BadField {
                    field,
                    expected: "an object keyed by parameter id or controller number",
                    found: describe_json(other),
                }),
            }
        };
        let entries = table("values")?.ok_or(StateError::MissingField { field: "values" })?;
        let values = self.read_values(entries, |key| key.parse::<u32>().ok().and_then(|id| self.def_by_id(id)))?;
        let cc_map = match table("midi_cc")? {
            None => self.default_cc_map.to_vec(),
            Some(entries) => {
                let mut map = Vec::new();
                for (key, entry) in entries {
                    let cc = parse_cc_key(key).ok_or_else(|| StateError::BadCcKey { key: key.clone() })?;
                    let def = entry
                        .as_u64()
                        .and_then(|id| u32::try_from(id).ok())
                        .and_then(|id| self.def_by_id(id))
                        .ok_or_else(|| StateError::BadField {
                            field: "midi_cc",
                            expected: "ids of this plugin's parameters, such as {\"74\": 2}",
                            found: format!("{} for CC {cc}", describe_json(entry)),
                        })?;
                    map.push((cc, def.id()));
                }
                map
            }
        };
        Ok(StateData { values, preset: None, cc_map, extra: Map::new() })
    }

    /// Checks the envelope shared by states and presets and returns the top-level object,
    /// migrated to the current version: size, UTF-8 (a leading byte-order mark is
    /// skipped), JSON syntax, an object, the `format` tag, a supported `version`.
    fn read_document(&self, bytes: &[u8], expected: &str, migrate: bool) -> Result<Map<String, Value>, StateError> {
        self.check_document(parse_object(bytes, expected)?, expected, migrate)
    }

    /// The envelope checks after [`parse_object`]: the `format` tag, a supported
    /// `version`, migrated to the current one when `migrate`.
    fn check_document(
        &self,
        mut object: Map<String, Value>,
        expected: &str,
        migrate: bool,
    ) -> Result<Map<String, Value>, StateError> {
        match object.get("format") {
            Some(Value::String(found)) if found == expected => {}
            found => {
                return Err(StateError::WrongFormat { expected: expected.to_owned(), found: found.map(describe_json) });
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
            .filter(|&v| v <= self.version)
            .ok_or(StateError::FutureVersion { found: version, supported: self.version })?;
        if migrate {
            for from in version..self.version {
                (self.migrate)(from, &mut object).map_err(|reason| StateError::Migration {
                    from,
                    to: from + 1,
                    reason,
                })?;
            }
            object.insert("version".to_owned(), Value::from(self.version));
        }
        Ok(object)
    }

    /// Reads a `params` object into `(id, plain)` for every parameter in definition
    /// order; missing parameters take their default.
    fn parse_params(&self, value: &Value) -> Result<Vec<(u32, f64)>, StateError> {
        let Value::Object(object) = value else {
            return Err(StateError::BadField {
                field: "params",
                expected: "an object of parameter values such as {\"gain\": -6}",
                found: describe_json(value),
            });
        };
        self.read_values(object, |key| self.def_by_key(key))
    }

    /// Every parameter's plain value in definition order: those `entries` name (through
    /// `find`), clamped into their range, the others at their default.
    fn read_values<'s>(
        &'s self,
        entries: &Map<String, Value>,
        find: impl Fn(&str) -> Option<&'s ParamDef>,
    ) -> Result<Vec<(u32, f64)>, StateError> {
        let mut values = self.defaults();
        for (key, raw) in entries {
            let def = find(key).ok_or_else(|| StateError::UnknownParameter { key: key.clone() })?;
            let plain = raw
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| StateError::BadValue { key: key.clone(), found: describe_json(raw) })?;
            if let Some(slot) = values.iter_mut().find(|(id, _)| *id == def.id()) {
                slot.1 = def.info.clamp(plain);
            }
        }
        Ok(values)
    }

    fn parse_cc_map(&self, value: &Value) -> Result<Vec<(u8, u32)>, StateError> {
        let Value::Object(object) = value else {
            return Err(StateError::BadField {
                field: "midi_cc",
                expected: "an object from controller number to parameter key, such as {\"74\": \"cutoff\"}",
                found: describe_json(value),
            });
        };
        let mut map = Vec::new();
        for (key, entry) in object {
            let cc = parse_cc_key(key).ok_or_else(|| StateError::BadCcKey { key: key.clone() })?;
            let Value::String(param_key) = entry else {
                return Err(StateError::BadCcEntry { cc, found: describe_json(entry) });
            };
            let def =
                self.def_by_key(param_key).ok_or_else(|| StateError::UnknownCcParam { cc, key: param_key.clone() })?;
            map.push((cc, def.id()));
        }
        map.sort_by_key(|&(cc, _)| cc);
        Ok(map)
    }
}

/// The `format` tag of a state that holds parameter values only, keyed by parameter id,
/// with the MIDI CC map: what the bridge saves when the control module cannot be asked
/// (it hung), from the values in the shared block. Every plugin's control module loads
/// it ([`StateSchema::from_json`]): parameters it lacks take their defaults, the
/// plugin's own fields are absent (the plugin's `load_extra` sees none).
///
/// ```json
/// {"format":"trio-param-values","version":1,"values":{"1":-6.0,"2":8000.0},"midi_cc":{"74":2}}
/// ```
pub const VALUES_FORMAT: &str = "trio-param-values";

/// A [`VALUES_FORMAT`] document: `values` as `(parameter id, plain value)` (non-finite
/// ones left out), `cc_map` as `(controller, parameter id)`.
pub fn values_to_json(values: &[(u32, f64)], cc_map: &[(u8, u32)]) -> String {
    let values: Vec<String> =
        values.iter().filter(|(_, v)| v.is_finite()).map(|(id, v)| format!("\"{id}\":{}", Value::from(*v))).collect();
    let ccs: Vec<String> = cc_map.iter().map(|(cc, id)| format!("\"{cc}\":{id}")).collect();
    format!(
        "{{\"format\":\"{VALUES_FORMAT}\",\"version\":1,\"values\":{{{}}},\"midi_cc\":{{{}}}}}",
        values.join(","),
        ccs.join(",")
    )
}

/// Size, UTF-8 (a leading byte-order mark is skipped), JSON syntax and an object: the
/// first checks of every document.
fn parse_object(bytes: &[u8], expected: &str) -> Result<Map<String, Value>, StateError> {
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
    match value {
        Value::Object(object) => Ok(object),
        other => Err(StateError::NotAnObject { found: describe_json(&other), expected_format: expected.to_owned() }),
    }
}

/// The fields the framework owns in a state document.
const RESERVED_FIELDS: [&str; 5] = ["format", "version", "preset", "params", "midi_cc"];

fn required<'a>(object: &'a Map<String, Value>, field: &'static str) -> Result<&'a Value, StateError> {
    object.get(field).ok_or(StateError::MissingField { field })
}

/// `"74"` → 74: the controller's number below 128 in decimal, without leading zeros. One
/// spelling per controller: with `"7"` and `"07"` both allowed, a map could assign
/// controller 7 twice, and the state saved from it would repeat a key.
fn parse_cc_key(key: &str) -> Option<u8> {
    if key.is_empty() || key.len() > 3 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    key.parse::<u8>().ok().filter(|&cc| usize::from(cc) < CC_COUNT)
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

/// Longest quoted text in a description, in characters.
const QUOTED_CHARS: usize = 40;

/// A short description of a JSON value for error messages: `null`, `the number 5`,
/// `the text "abc"`, `a list`, ...
pub fn describe_json(value: &Value) -> String {
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

/// Why a saved state (or preset file) could not be loaded.
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
        /// The format tag expected.
        expected_format: String,
    },
    /// The `format` field is missing or is not the expected tag.
    WrongFormat {
        /// The tag expected.
        expected: String,
        /// Description of the `format` found, `None` if absent.
        found: Option<String>,
    },
    /// Written by a newer version of the plugin.
    FutureVersion {
        /// The document's version.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The plugin's migration from an older version refused the document.
    Migration {
        /// The version migrated from.
        from: u32,
        /// The version migrated to.
        to: u32,
        /// The plugin's reason.
        reason: String,
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
    /// `params` names a parameter the plugin does not have.
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
    /// A `midi_cc` key that is not a controller number 0..=127.
    BadCcKey {
        /// The key as written.
        key: String,
    },
    /// A `midi_cc` entry whose value is not a parameter key.
    BadCcEntry {
        /// The controller.
        cc: u8,
        /// What it is instead.
        found: String,
    },
    /// A `midi_cc` entry naming a parameter the plugin does not have.
    UnknownCcParam {
        /// The controller.
        cc: u8,
        /// The key as written.
        key: String,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => {
                write!(f, "the saved data is empty, so there is nothing to load; the current settings are kept")
            }
            Self::TooLarge { len, max } => write!(
                f,
                "the saved data is {len} bytes, more than the {max} bytes a state of this plugin can be; it is not a \
                 state of this plugin or it is damaged"
            ),
            Self::NotUtf8 { valid_up_to } => write!(
                f,
                "the saved data is not text: byte {valid_up_to} is not valid UTF-8; it is damaged or comes from \
                 another program, so load a preset or another save instead"
            ),
            Self::NotJson { line, column, message } => write!(
                f,
                "the saved data is not valid JSON at line {line}, column {column} ({message}); fix it there, or load a \
                 preset or another save instead"
            ),
            Self::Truncated { line, column } => write!(
                f,
                "the saved data stops in the middle, at line {line}, column {column}; it was cut off while being \
                 written, so load another save or a preset instead"
            ),
            Self::NotAnObject { found, expected_format } => write!(
                f,
                "the saved data is {found}, but a state is a JSON object such as {{\"format\": \"{expected_format}\", \
                 \"version\": 1, ...}}"
            ),
            Self::WrongFormat { expected, found: Some(found) } => write!(
                f,
                "the data's \"format\" is {found}, not \"{expected}\"; it belongs to another plugin or kind of file, \
                 so open it with the program that made it"
            ),
            Self::WrongFormat { expected, found: None } => write!(
                f,
                "the data has no \"format\" field, so it is not a \"{expected}\" document; it belongs to another \
                 plugin or kind of file"
            ),
            Self::FutureVersion { found, supported } => write!(
                f,
                "the data was saved by a newer version of the plugin (version {found}; this one reads up to version \
                 {supported}); update the plugin to load it"
            ),
            Self::Migration { from, to, reason } => write!(
                f,
                "the data is version {from} and could not be brought up to version {to}: {reason}; nothing was loaded"
            ),
            Self::MissingField { field } => {
                write!(
                    f,
                    "the data has no \"{field}\" field, which every document has; it is incomplete and was not loaded"
                )
            }
            Self::BadField { field, expected, found } => {
                write!(f, "the \"{field}\" field is {found}, but it must be {expected}; nothing was loaded")
            }
            Self::UnknownParameter { key } => write!(
                f,
                "\"params\" sets {key:?}, which is not a parameter of this plugin; the data comes from another plugin \
                 or a newer version, and nothing was loaded"
            ),
            Self::BadValue { key, found } => write!(
                f,
                "\"params\" gives {key:?} {found}, but a parameter value must be a number; nothing was loaded"
            ),
            Self::BadCcKey { key } => write!(
                f,
                "the MIDI CC map entry {key:?} is not a controller number: use a whole number from 0 to 127 written \
                 as a string without leading zeros, such as \"74\"; nothing was loaded"
            ),
            Self::BadCcEntry { cc, found } => write!(
                f,
                "the MIDI CC map entry for CC {cc} is {found}, but it must be a parameter key in quotes; nothing was \
                 loaded"
            ),
            Self::UnknownCcParam { cc, key } => write!(
                f,
                "the MIDI CC map entry for CC {cc} names {key:?}, which is not a parameter of this plugin; nothing \
                 was loaded"
            ),
        }
    }
}

impl std::error::Error for StateError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamMapping;
    use serde_json::json;

    fn defs() -> Vec<ParamDef> {
        vec![
            ParamDef::float(0, "gain", "Gain", ParamMapping::linear(-60.0, 6.0), -6.0).decibels(),
            ParamDef::list(1, "waveform", "Waveform", &["Saw", "Square", "Sine"], 0),
            ParamDef::float(6, "cutoff", "Cutoff", ParamMapping::logarithmic(20.0, 20_000.0), 8000.0).hertz(),
        ]
    }

    fn migrate(from: u32, doc: &mut Map<String, Value>) -> Result<(), String> {
        if from == 0 {
            let table = doc.remove("parameters").ok_or("a version 0 state has a \"parameters\" table")?;
            doc.insert("params".to_owned(), table);
        }
        Ok(())
    }

    fn with<R>(f: impl FnOnce(&StateSchema<'_>) -> R) -> R {
        let defs = defs();
        let schema = StateSchema {
            format: "test-state",
            preset_format: "test-preset",
            version: 1,
            params: &defs,
            default_cc_map: &[(74, 6)],
            migrate: &migrate,
        };
        f(&schema)
    }

    #[test]
    fn a_values_only_state_loads_by_id_with_defaults_and_is_checked_like_any() {
        with(|s| {
            let text = values_to_json(&[(6, 440.0), (0, 99.0), (1, f64::NAN)], &[(7, 0)]);
            assert_eq!(
                text,
                r#"{"format":"trio-param-values","version":1,"values":{"6":440.0,"0":99.0},"midi_cc":{"7":0}}"#
            );
            let loaded = s.from_json(text.as_bytes()).unwrap();
            // Clamped into the range; the missing (NaN) one at its default.
            assert_eq!(loaded.values, [(0, 6.0), (1, 0.0), (6, 440.0)]);
            assert_eq!((loaded.cc_map, loaded.preset, loaded.extra.len()), (vec![(7, 0)], None, 0));
            let no_map = r#"{"format":"trio-param-values","version":1,"values":{}}"#;
            assert_eq!(s.from_json(no_map.as_bytes()).unwrap().cc_map, [(74, 6)], "the default map");
            for (doc, says) in [
                (r#"{"format":"trio-param-values","version":1,"values":{"5":1}}"#, "\"5\""),
                (r#"{"format":"trio-param-values","version":1,"values":{"gain":1}}"#, "\"gain\""),
                (r#"{"format":"trio-param-values","version":1,"values":{"0":"loud"}}"#, "loud"),
                (r#"{"format":"trio-param-values","version":2,"values":{}}"#, "version 2"),
                (r#"{"format":"trio-param-values","version":1}"#, "values"),
                (r#"{"format":"trio-param-values","version":1,"values":[]}"#, "values"),
                (r#"{"format":"trio-param-values","version":1,"values":{},"midi_cc":{"7":5}}"#, "CC 7"),
            ] {
                let err = s.from_json(doc.as_bytes()).unwrap_err().to_string();
                assert!(err.contains(says), "{doc}: {err}");
            }
        });
    }

    #[test]
    fn round_trips_with_extras_and_migrates() {
        with(|s| {
            let mut extra = Map::new();
            extra.insert("pattern".to_owned(), json!([1, 2, 3]));
            let state = StateData {
                values: vec![(0, -12.0), (1, 2.0), (6, 440.0)],
                preset: Some("Q \" \u{1f3b9}".to_owned()),
                cc_map: vec![(7, 0), (74, 6)],
                extra,
            };
            let text = s.to_json(&state);
            assert!(text.starts_with("{\"format\":\"test-state\",\"version\":1,"), "{text}");
            assert_eq!(s.from_json(text.as_bytes()).unwrap(), state);
            let v0 = r#"{"format":"test-state","version":0,"parameters":{"gain":-12}}"#;
            let loaded = s.from_json(v0.as_bytes()).unwrap();
            assert_eq!(loaded.value(0), Some(-12.0));
            assert_eq!(loaded.value(6), Some(8000.0));
            assert_eq!(loaded.cc_map, [(74, 6)]);
            let bad_v0 = r#"{"format":"test-state","version":0,"params":{}}"#;
            let err = s.from_json(bad_v0.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("version 0 and could not be brought up to version 1"), "{err}");
        });
    }

    #[test]
    fn every_bad_document_is_refused_with_a_reason() {
        with(|s| {
            let good = s.to_json(&StateData { values: vec![], preset: None, cc_map: vec![], extra: Map::new() });
            let cases: Vec<(String, &str)> = vec![
                (String::new(), "empty"),
                ("{\"format\": 1".into(), "stops in the middle"),
                ("[1]".into(), "a list"),
                (good.replace("test-state", "other"), "\"other\""),
                (good.replace("\"version\":1", "\"version\":2"), "newer version"),
                (good.replace("\"gain\":-6.0", "\"wobble\":1"), "\"wobble\""),
                (good.replace("\"gain\":-6.0", "\"gain\":\"loud\""), "\"loud\""),
                (good.replace("\"midi_cc\":{}", "\"midi_cc\":{\"300\":\"gain\"}"), "\"300\""),
                (good.replace("\"midi_cc\":{}", "\"midi_cc\":{\"7\":\"gain\",\"07\":\"cutoff\"}"), "\"07\""),
                (good.replace("\"midi_cc\":{}", "\"midi_cc\":{\"7\":\"wobble\"}"), "CC 7 names \"wobble\""),
                (good.replace("\"preset\":null", "\"preset\":5"), "\"preset\""),
            ];
            for (text, needle) in cases {
                let err = s.from_json(text.as_bytes()).unwrap_err().to_string();
                assert!(err.contains(needle), "{text}: {err}");
            }
            for end in 0..good.len() {
                assert!(s.from_json(&good.as_bytes()[..end]).is_err());
            }
        });
    }

    #[test]
    fn each_controller_is_saved_once() {
        with(|s| {
            let state =
                StateData { values: vec![], preset: None, cc_map: vec![(7, 0), (74, 6), (7, 1)], extra: Map::new() };
            let text = s.to_json(&state);
            assert!(text.contains("\"midi_cc\":{\"7\":\"waveform\",\"74\":\"cutoff\"}"), "{text}");
            assert_eq!(s.from_json(text.as_bytes()).unwrap().cc_map, [(7, 1), (74, 6)]);
            assert_eq!(parse_cc_key("0"), Some(0));
            assert_eq!(parse_cc_key("127"), Some(127));
            for bad in ["00", "07", "007", "0127", "128", "", "x"] {
                assert_eq!(parse_cc_key(bad), None, "{bad:?}");
            }
        });
    }

    #[test]
    fn values_are_clamped_and_missing_ones_default() {
        with(|s| {
            let text = json!({"format": "test-state", "version": 1, "params": {"cutoff": 1e9, "waveform": 1.6}});
            let state = s.from_json(text.to_string().as_bytes()).unwrap();
            assert_eq!(state.value(6), Some(20_000.0));
            assert_eq!(state.value(1), Some(2.0));
            assert_eq!(state.value(0), Some(-6.0));
        });
    }

    #[test]
    fn presets_read_their_own_format() {
        with(|s| {
            let text = r#"{"format":"test-preset","version":1,"name":"Bright","params":{"cutoff":12000}}"#;
            let preset = s.preset_from_json(text).unwrap();
            assert_eq!(preset.name, "Bright");
            assert_eq!(preset.values, [(0, -6.0), (1, 0.0), (6, 12_000.0)]);
            assert!(s.preset_from_json(&text.replace("test-preset", "test-state")).is_err());
            assert!(s.preset_from_json(&text.replace("\"Bright\"", "\"\"")).is_err());
        });
    }
}
