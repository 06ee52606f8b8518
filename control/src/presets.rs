//! Presets: named sets of parameter values, and the factory bank built into the plugin.
//!
//! A preset document uses the same `params` table as the saved state (and the same
//! parsing and validation, see [`crate::state`]):
//!
//! ```json
//! {"format":"trio-synth-preset","version":1,"name":"Warm Pad",
//!  "params":{"gain":-10.0,"waveform":0,"attack":1.2,...}}
//! ```
//!
//! Parameters missing from `params` take their default. The factory presets leave out
//! the bypass parameter; a caller applying a preset should leave parameters flagged
//! [`crate::params::FLAG_BYPASS`] as they are, so choosing a preset never bypasses or
//! un-bypasses the plugin.

use std::fmt;

use serde_json::Value;

use crate::state::{STATE_VERSION, StateError, describe_json, params_to_json, parse_params, read_document};

/// The `format` tag of a preset document.
pub const PRESET_FORMAT: &str = "trio-synth-preset";

/// Longest preset name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The factory preset files, in bank order.
const FACTORY_FILES: [(&str, &str); 6] = [
    ("init.json", include_str!("../presets/init.json")),
    ("warm_pad.json", include_str!("../presets/warm_pad.json")),
    ("acid_bass.json", include_str!("../presets/acid_bass.json")),
    ("pluck_lead.json", include_str!("../presets/pluck_lead.json")),
    ("soft_keys.json", include_str!("../presets/soft_keys.json")),
    ("arp_pulse.json", include_str!("../presets/arp_pulse.json")),
];

/// A named set of parameter values.
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    /// Display name, unique within a bank.
    pub name: String,
    /// `(parameter id, plain value)`, one per parameter in id order.
    pub values: Vec<(u32, f64)>,
}

impl Preset {
    /// Reads a preset document.
    ///
    /// # Errors
    /// [`PresetError::Invalid`] for anything [`crate::state::from_json`] would reject in
    /// the envelope or the `params` table (with `format` `"trio-synth-preset"`), and
    /// [`PresetError::BadName`] for a missing, empty, over-long or non-text `name`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PresetError> {
        let doc = read_document(bytes, PRESET_FORMAT).map_err(PresetError::Invalid)?;
        let name = match doc.get("name") {
            Some(Value::String(name)) if is_valid_name(name) => name.clone(),
            Some(other) => {
                return Err(PresetError::BadName { found: describe_json(other) });
            }
            None => {
                return Err(PresetError::BadName { found: "missing".to_owned() });
            }
        };
        let params = doc.get("params").ok_or(PresetError::Invalid(StateError::MissingField { field: "params" }))?;
        let values = parse_params(params).map_err(PresetError::Invalid)?;
        Ok(Self { name, values })
    }

    /// Writes the preset as a compact preset document, every parameter included.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"format\":{},\"version\":{STATE_VERSION},\"name\":{},\"params\":{}}}",
            Value::from(PRESET_FORMAT),
            Value::from(self.name.as_str()),
            params_to_json(&self.values)
        )
    }

    /// The plain value stored for parameter `id`.
    pub fn value(&self, id: u32) -> Option<f64> {
        self.values.iter().rev().find(|&&(i, _)| i == id).map(|&(_, v)| v)
    }
}

/// A usable preset name: 1 to [`MAX_NAME_CHARS`] characters, not only white space, no
/// control characters.
fn is_valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control)
}

/// The factory presets, in bank order ("Init" first).
///
/// # Errors
/// [`PresetError::Factory`] naming the file whose preset is invalid, or
/// [`PresetError::DuplicateName`]. The factory files are checked by the unit tests, so
/// a shipped build does not fail here.
pub fn factory_bank() -> Result<Vec<Preset>, PresetError> {
    let mut bank: Vec<Preset> = Vec::with_capacity(FACTORY_FILES.len());
    for (file, text) in FACTORY_FILES {
        let preset = Preset::from_json(text.as_bytes())
            .map_err(|error| PresetError::Factory { file, error: Box::new(error) })?;
        if bank.iter().any(|p| p.name == preset.name) {
            return Err(PresetError::DuplicateName { name: preset.name });
        }
        bank.push(preset);
    }
    Ok(bank)
}

/// The names of the factory presets, in bank order.
///
/// # Errors
/// As [`factory_bank`].
pub fn preset_names() -> Result<Vec<String>, PresetError> {
    Ok(factory_bank()?.into_iter().map(|p| p.name).collect())
}

/// The factory preset called `name` (exact match), or `None`.
///
/// # Errors
/// As [`factory_bank`].
pub fn factory_preset(name: &str) -> Result<Option<Preset>, PresetError> {
    Ok(factory_bank()?.into_iter().find(|p| p.name == name))
}

/// Why a preset could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresetError {
    /// The document or its `params` table is invalid.
    Invalid(StateError),
    /// The `name` is missing, empty, too long, has control characters or is not text.
    BadName {
        /// Description of the name found, or `"missing"`.
        found: String,
    },
    /// Two presets of a bank have the same name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A factory preset file is invalid.
    Factory {
        /// The file's name.
        file: &'static str,
        /// What is wrong with it.
        error: Box<PresetError>,
    },
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "the preset cannot be loaded: {e}"),
            Self::BadName { found } => write!(
                f,
                "the preset's \"name\" is {found}, but it must be text of 1 to \
                 {MAX_NAME_CHARS} characters without control characters"
            ),
            Self::DuplicateName { name } => {
                write!(f, "two presets are called {name:?}; rename one so that each name is unique")
            }
            Self::Factory { file, error } => {
                write!(f, "factory preset file {file}: {error}")
            }
        }
    }
}

impl std::error::Error for PresetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Factory { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{FLAG_BYPASS, definitions};
    use crate::state::StateData;
    use shared::params::id;

    fn preset(name: &str) -> Preset {
        factory_preset(name).unwrap().unwrap()
    }

    #[test]
    fn every_factory_preset_parses() {
        let bank = factory_bank().unwrap();
        assert!(bank.len() >= 4);
        assert_eq!(bank.len(), FACTORY_FILES.len());
        assert_eq!(bank.first().map(|p| p.name.as_str()), Some("Init"));
    }

    #[test]
    fn every_factory_preset_has_every_parameter_in_range() {
        for p in factory_bank().unwrap() {
            let ids: Vec<u32> = p.values.iter().map(|&(i, _)| i).collect();
            assert_eq!(ids, (0..id::COUNT).collect::<Vec<_>>(), "{}", p.name);
            for (d, &(_, v)) in definitions().iter().zip(&p.values) {
                assert!(v.is_finite(), "{} {}", p.name, d.key);
                assert_eq!(d.clamp(v), v, "{}: {} = {v} is out of range", p.name, d.key);
            }
        }
    }

    #[test]
    fn factory_files_set_every_parameter_but_bypass_explicitly() {
        for (file, text) in FACTORY_FILES {
            let doc: Value = serde_json::from_str(text).unwrap();
            let params = doc.get("params").and_then(Value::as_object).unwrap();
            for d in definitions() {
                let present = params.contains_key(d.key);
                assert_eq!(present, !d.has_flag(FLAG_BYPASS), "{file}: {}", d.key);
            }
            assert_eq!(doc.get("format").and_then(Value::as_str), Some(PRESET_FORMAT));
            assert_eq!(doc.get("version").and_then(Value::as_u64), Some(u64::from(STATE_VERSION)));
        }
    }

    #[test]
    fn factory_names_are_unique_and_usable() {
        let names = preset_names().unwrap();
        for (i, a) in names.iter().enumerate() {
            assert!(is_valid_name(a), "{a:?}");
            for b in names.iter().skip(i + 1) {
                assert_ne!(a.to_lowercase(), b.to_lowercase());
            }
        }
        assert_eq!(factory_preset("No Such Preset").unwrap(), None);
    }

    #[test]
    fn init_is_the_default_state() {
        assert_eq!(preset("Init").values, StateData::defaults().values);
    }

    #[test]
    fn presets_are_musically_sensible() {
        let pad = preset("Warm Pad");
        let v = |p: &Preset, id| p.value(id).unwrap();
        assert!(v(&pad, id::ATTACK) >= 0.5);
        assert!(v(&pad, id::RELEASE) >= 1.5);
        assert!(v(&pad, id::CUTOFF) <= 2000.0);
        assert!(v(&pad, id::SUSTAIN) >= 0.5);

        let bass = preset("Acid Bass");
        assert_eq!(v(&bass, id::WAVEFORM), 1.0, "square");
        assert!(v(&bass, id::DECAY) <= 0.3);
        assert!(v(&bass, id::RESONANCE) >= 0.6);
        assert!(v(&bass, id::FILTER_ENV) >= 3.0);
        assert!(v(&bass, id::CUTOFF) <= 600.0);

        let pluck = preset("Pluck Lead");
        assert!(v(&pluck, id::ATTACK) <= 0.005);
        assert!(v(&pluck, id::DECAY) <= 0.5);
        assert_eq!(v(&pluck, id::SUSTAIN), 0.0);
        assert!(v(&pluck, id::FILTER_ENV) > 0.0);

        let arp = preset("Arp Pulse");
        assert_eq!(v(&arp, id::ARP_ON), 1.0);
        assert!(v(&arp, id::ARP_GATE) < 1.0);

        for p in factory_bank().unwrap() {
            assert_eq!(v(&p, id::BYPASS), 0.0, "{}", p.name);
            if p.name != "Arp Pulse" {
                assert_eq!(v(&p, id::ARP_ON), 0.0, "{} must not switch the arpeggiator on", p.name);
            }
            assert!(v(&p, id::GAIN) <= 0.0, "{} must leave headroom", p.name);
        }
    }

    #[test]
    fn to_json_round_trips() {
        for p in factory_bank().unwrap() {
            assert_eq!(Preset::from_json(p.to_json().as_bytes()).unwrap(), p);
        }
        let odd = Preset { name: "Ünïcode \"quoted\" 🎹".to_owned(), values: StateData::defaults().values };
        assert_eq!(Preset::from_json(odd.to_json().as_bytes()).unwrap(), odd);
    }

    #[test]
    fn missing_parameters_take_their_default() {
        let p = Preset::from_json(br#"{"format":"trio-synth-preset","version":1,"name":"X","params":{"cutoff":500}}"#)
            .unwrap();
        assert_eq!(p.value(id::CUTOFF), Some(500.0));
        assert_eq!(p.value(id::GAIN), Some(-6.0));
    }

    #[test]
    fn rejects_bad_presets() {
        let doc = |name: &str, params: &str| {
            format!("{{\"format\":\"trio-synth-preset\",\"version\":1,{name}\"params\":{params}}}")
        };
        type Check = fn(&PresetError) -> bool;
        let cases: [(String, Check); 9] = [
            (doc("", "{}"), |e| matches!(e, PresetError::BadName { .. })),
            (doc("\"name\":\"\",", "{}"), |e| matches!(e, PresetError::BadName { .. })),
            (doc("\"name\":\"  \",", "{}"), |e| matches!(e, PresetError::BadName { .. })),
            (doc("\"name\":\"a\\nb\",", "{}"), |e| matches!(e, PresetError::BadName { .. })),
            (doc("\"name\":7,", "{}"), |e| matches!(e, PresetError::BadName { .. })),
            (doc(&format!("\"name\":\"{}\",", "x".repeat(65)), "{}"), |e| matches!(e, PresetError::BadName { .. })),
            (doc("\"name\":\"X\",", "{\"wobble\":1}"), |e| {
                matches!(
                    e,
                    PresetError::Invalid(StateError::UnknownParameter { key }) if key == "wobble"
                )
            }),
            (doc("\"name\":\"X\",", "{\"gain\":\"loud\"}"), |e| {
                matches!(e, PresetError::Invalid(StateError::BadValue { .. }))
            }),
            (crate::state::to_json(&StateData::defaults()), |e| {
                matches!(e, PresetError::Invalid(StateError::WrongFormat { .. }))
            }),
        ];
        for (text, check) in cases {
            let err = Preset::from_json(text.as_bytes()).unwrap_err();
            assert!(check(&err), "{text}: {err:?}");
            assert!(!err.to_string().is_empty());
        }
        assert!(matches!(Preset::from_json(b""), Err(PresetError::Invalid(StateError::Empty))));
        let no_params = br#"{"format":"trio-synth-preset","version":1,"name":"X"}"#;
        assert_eq!(
            Preset::from_json(no_params),
            Err(PresetError::Invalid(StateError::MissingField { field: "params" }))
        );
    }

    #[test]
    fn factory_errors_name_the_file() {
        let err = PresetError::Factory {
            file: "warm_pad.json",
            error: Box::new(PresetError::BadName { found: "missing".to_owned() }),
        };
        let msg = err.to_string();
        assert!(msg.contains("warm_pad.json") && msg.contains("\"name\""), "{msg}");
    }

    #[test]
    fn version_0_presets_migrate() {
        let v0 = br#"{"format":"trio-synth-preset","version":0,"name":"Old",
                     "parameters":{"cutoff":700}}"#;
        let p = Preset::from_json(v0).unwrap();
        assert_eq!(p.value(id::CUTOFF), Some(700.0));
    }
}
