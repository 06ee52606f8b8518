//! The MIDI CC → parameter map: which continuous controller moves which parameter.
//!
//! In state JSON the map is an object from the CC number, written as a string, to the
//! parameter's key: `{"7":"gain","74":"cutoff"}`. Unassigned controllers are absent.

use std::fmt;

use serde_json::Value;
use shared::params::id;

use crate::params::{definition, find_by_key};
use crate::state::describe_json;

/// Number of MIDI continuous controllers (CC 0 to 127).
pub const CC_COUNT: usize = 128;

/// The CC assignments of [`CcMap::default_map`]: `(cc, parameter id)`.
pub const DEFAULT_ASSIGNMENTS: [(u8, u32); 6] =
    [(1, id::FILTER_ENV), (7, id::GAIN), (71, id::RESONANCE), (72, id::RELEASE), (73, id::ATTACK), (74, id::CUTOFF)];

/// For each of the 128 MIDI CCs, the id of the parameter it controls, if any. A
/// parameter may be controlled by several CCs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcMap {
    entries: [Option<u32>; CC_COUNT],
}

impl Default for CcMap {
    /// The same as [`CcMap::default_map`].
    fn default() -> Self {
        Self::default_map()
    }
}

impl CcMap {
    /// A map with no assignments.
    pub const fn empty() -> Self {
        Self { entries: [None; CC_COUNT] }
    }

    /// The factory map, following the General MIDI / sound-controller conventions:
    /// CC 7 (volume) → gain, CC 74 (brightness) → cutoff, CC 71 (timbre) → resonance,
    /// CC 73 (attack time) → attack, CC 72 (release time) → release, CC 1 (mod wheel) →
    /// filter envelope amount.
    pub fn default_map() -> Self {
        let mut map = Self::empty();
        for (cc, param) in DEFAULT_ASSIGNMENTS {
            if let Some(slot) = map.entries.get_mut(usize::from(cc)) {
                *slot = Some(param);
            }
        }
        map
    }

    /// The parameter controlled by `cc`; `None` if it is unassigned or `cc >= 128`.
    pub fn param_for_cc(&self, cc: u8) -> Option<u32> {
        self.entries.get(usize::from(cc)).copied().flatten()
    }

    /// Assigns `cc` to the parameter with id `param`, or clears it with `None`.
    ///
    /// # Errors
    /// [`MidiMapError::CcOutOfRange`] for `cc >= 128`,
    /// [`MidiMapError::UnknownParamId`] for an id that is not a parameter. The map is
    /// unchanged on error.
    pub fn set(&mut self, cc: u8, param: Option<u32>) -> Result<(), MidiMapError> {
        if let Some(id) = param.filter(|&id| definition(id).is_none()) {
            return Err(MidiMapError::UnknownParamId { id });
        }
        let slot = self.entries.get_mut(usize::from(cc)).ok_or(MidiMapError::CcOutOfRange { cc })?;
        *slot = param;
        Ok(())
    }

    /// The assigned CCs as `(cc, parameter id)`, in CC order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u32)> + '_ {
        self.entries.iter().enumerate().filter_map(|(cc, param)| Some((u8::try_from(cc).ok()?, (*param)?)))
    }

    /// The CCs assigned to the parameter with id `param`, in CC order.
    pub fn ccs_for_param(&self, param: u32) -> impl Iterator<Item = u8> + '_ {
        self.iter().filter(move |&(_, p)| p == param).map(|(cc, _)| cc)
    }

    /// Whether no CC is assigned.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The map as a compact JSON object, CCs in numeric order:
    /// `{"1":"filter_env","7":"gain"}`.
    pub fn to_json(&self) -> String {
        let entries: Vec<String> = self
            .iter()
            .filter_map(|(cc, param)| {
                let key = definition(param)?.key;
                Some(format!("\"{cc}\":{}", Value::from(key)))
            })
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    /// Reads a map from a JSON object such as `{"74":"cutoff"}`. CCs that are absent are
    /// unassigned.
    ///
    /// # Errors
    /// A [`MidiMapError`] naming the first bad entry: a key that is not a CC number
    /// 0..=127, a value that is not a string, or a string that is not a parameter key.
    pub fn from_json_value(value: &Value) -> Result<Self, MidiMapError> {
        let Value::Object(object) = value else {
            return Err(MidiMapError::NotAnObject { found: describe_json(value) });
        };
        let mut map = Self::empty();
        for (key, entry) in object {
            let cc = parse_cc_key(key).ok_or_else(|| MidiMapError::BadCcKey { key: key.clone() })?;
            let Value::String(param_key) = entry else {
                return Err(MidiMapError::BadEntry { cc, found: describe_json(entry) });
            };
            let def =
                find_by_key(param_key).ok_or_else(|| MidiMapError::UnknownParamKey { cc, key: param_key.clone() })?;
            map.set(cc, Some(def.id))?;
        }
        Ok(map)
    }
}

/// `"74"` → 74: one to three ASCII digits with a value below 128.
fn parse_cc_key(key: &str) -> Option<u8> {
    if key.is_empty() || key.len() > 3 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u8>().ok().filter(|&cc| usize::from(cc) < CC_COUNT)
}

/// A controller value `0..=127` as a normalized parameter value `0.0..=1.0`
/// (`value / 127`); values above 127, which MIDI cannot carry, give 1.0.
pub fn cc_value_to_normalized(value: u8) -> f64 {
    f64::from(value.min(127)) / 127.0
}

/// Why a CC assignment or a CC map in JSON was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MidiMapError {
    /// A controller number of 128 or more.
    CcOutOfRange {
        /// The number given.
        cc: u8,
    },
    /// A parameter id that the instrument does not have.
    UnknownParamId {
        /// The id given.
        id: u32,
    },
    /// The JSON map is not an object.
    NotAnObject {
        /// A short description of what was found instead.
        found: String,
    },
    /// A JSON key that is not a controller number 0..=127.
    BadCcKey {
        /// The key as written.
        key: String,
    },
    /// A JSON entry whose value is not a string.
    BadEntry {
        /// The controller of the entry.
        cc: u8,
        /// A short description of the value found.
        found: String,
    },
    /// A JSON entry naming a parameter key that the instrument does not have.
    UnknownParamKey {
        /// The controller of the entry.
        cc: u8,
        /// The key as written.
        key: String,
    },
}

impl fmt::Display for MidiMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last_id = id::COUNT.saturating_sub(1);
        match self {
            Self::CcOutOfRange { cc } => write!(f, "MIDI CC {cc} does not exist: controller numbers run from 0 to 127"),
            Self::UnknownParamId { id } => write!(
                f,
                "there is no parameter with id {id} to assign a MIDI CC to: ids run from 0 to \
                 {last_id}"
            ),
            Self::NotAnObject { found } => write!(
                f,
                "the MIDI CC map is {found}, but it must be an object from CC number to \
                 parameter key, such as {{\"74\": \"cutoff\"}}"
            ),
            Self::BadCcKey { key } => write!(
                f,
                "the MIDI CC map entry {key:?} is not a controller number: use a whole number \
                 from 0 to 127 written as a string, such as \"74\""
            ),
            Self::BadEntry { cc, found } => write!(
                f,
                "the MIDI CC map entry for CC {cc} is {found}, but it must be a parameter key \
                 such as \"cutoff\""
            ),
            Self::UnknownParamKey { cc, key } => write!(
                f,
                "the MIDI CC map entry for CC {cc} names {key:?}, which is not a parameter of \
                 this instrument: use a key such as \"cutoff\" or \"gain\""
            ),
        }
    }
}

impl std::error::Error for MidiMapError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_map_has_the_documented_assignments() {
        let map = CcMap::default_map();
        assert_eq!(map.param_for_cc(7), Some(id::GAIN));
        assert_eq!(map.param_for_cc(74), Some(id::CUTOFF));
        assert_eq!(map.param_for_cc(71), Some(id::RESONANCE));
        assert_eq!(map.param_for_cc(73), Some(id::ATTACK));
        assert_eq!(map.param_for_cc(72), Some(id::RELEASE));
        assert_eq!(map.param_for_cc(1), Some(id::FILTER_ENV));
        assert_eq!(map.param_for_cc(0), None);
        assert_eq!(map.param_for_cc(64), None);
        assert_eq!(map.iter().count(), 6);
        assert_eq!(CcMap::default(), map);
        assert!(CcMap::empty().is_empty());
        assert!(!map.is_empty());
    }

    #[test]
    fn param_for_cc_out_of_range_is_none() {
        let mut map = CcMap::empty();
        for cc in 0..=127u8 {
            map.set(cc, Some(id::GAIN)).unwrap();
        }
        assert_eq!(map.param_for_cc(127), Some(id::GAIN));
        for cc in 128..=255u8 {
            assert_eq!(map.param_for_cc(cc), None);
        }
    }

    #[test]
    fn set_assigns_and_clears() {
        let mut map = CcMap::default_map();
        map.set(74, Some(id::RESONANCE)).unwrap();
        assert_eq!(map.param_for_cc(74), Some(id::RESONANCE));
        map.set(74, None).unwrap();
        assert_eq!(map.param_for_cc(74), None);
        map.set(20, Some(id::RESONANCE)).unwrap();
        assert_eq!(map.ccs_for_param(id::RESONANCE).collect::<Vec<_>>(), [20, 71]);
    }

    #[test]
    fn set_rejects_bad_cc_and_unknown_param() {
        let mut map = CcMap::default_map();
        let before = map.clone();
        assert_eq!(map.set(128, Some(id::GAIN)), Err(MidiMapError::CcOutOfRange { cc: 128 }));
        assert_eq!(map.set(255, None), Err(MidiMapError::CcOutOfRange { cc: 255 }));
        assert_eq!(map.set(10, Some(id::COUNT)), Err(MidiMapError::UnknownParamId { id: id::COUNT }));
        assert_eq!(map.set(10, Some(u32::MAX)), Err(MidiMapError::UnknownParamId { id: u32::MAX }));
        assert_eq!(map, before);
        let msg = MidiMapError::CcOutOfRange { cc: 200 }.to_string();
        assert!(msg.contains("200") && msg.contains("0 to 127"), "{msg}");
        let msg = MidiMapError::UnknownParamId { id: 99 }.to_string();
        assert!(msg.contains("99") && msg.contains(&format!("0 to {}", id::COUNT - 1)), "{msg}");
    }

    #[test]
    fn iter_lists_assignments_in_cc_order() {
        let pairs: Vec<_> = CcMap::default_map().iter().collect();
        assert_eq!(pairs, DEFAULT_ASSIGNMENTS);
    }

    #[test]
    fn json_round_trips() {
        let map = CcMap::default_map();
        let text = map.to_json();
        assert_eq!(
            text,
            "{\"1\":\"filter_env\",\"7\":\"gain\",\"71\":\"resonance\",\"72\":\"release\",\
             \"73\":\"attack\",\"74\":\"cutoff\"}"
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(CcMap::from_json_value(&value).unwrap(), map);
        assert_eq!(CcMap::empty().to_json(), "{}");
        assert_eq!(CcMap::from_json_value(&json!({})).unwrap(), CcMap::empty());
        let mut full = CcMap::empty();
        for cc in 0..=127u8 {
            full.set(cc, Some(u32::from(cc) % id::COUNT)).unwrap();
        }
        let value: Value = serde_json::from_str(&full.to_json()).unwrap();
        assert_eq!(CcMap::from_json_value(&value).unwrap(), full);
    }

    #[test]
    fn json_errors_name_the_bad_entry() {
        let cases = [
            (json!([1, 2]), MidiMapError::NotAnObject { found: "a list".into() }),
            (json!({"abc": "cutoff"}), MidiMapError::BadCcKey { key: "abc".into() }),
            (json!({"128": "cutoff"}), MidiMapError::BadCcKey { key: "128".into() }),
            (json!({"-1": "cutoff"}), MidiMapError::BadCcKey { key: "-1".into() }),
            (json!({"+7": "gain"}), MidiMapError::BadCcKey { key: "+7".into() }),
            (json!({"": "gain"}), MidiMapError::BadCcKey { key: "".into() }),
            (json!({"74": "wobble"}), MidiMapError::UnknownParamKey { cc: 74, key: "wobble".into() }),
            (json!({"74": 6}), MidiMapError::BadEntry { cc: 74, found: "the number 6".into() }),
            (json!({"74": null}), MidiMapError::BadEntry { cc: 74, found: "null".into() }),
        ];
        for (value, want) in cases {
            assert_eq!(CcMap::from_json_value(&value), Err(want), "{value}");
        }
        let msg = CcMap::from_json_value(&json!({"74": "wobble"})).unwrap_err().to_string();
        assert!(msg.contains("CC 74") && msg.contains("\"wobble\""), "{msg}");
        let msg = CcMap::from_json_value(&json!({"x1": "gain"})).unwrap_err().to_string();
        assert!(msg.contains("\"x1\""), "{msg}");
    }

    #[test]
    fn cc_values_map_to_zero_to_one() {
        assert_eq!(cc_value_to_normalized(0), 0.0);
        assert_eq!(cc_value_to_normalized(127), 1.0);
        assert!((cc_value_to_normalized(64) - 64.0 / 127.0).abs() < 1e-12);
        assert_eq!(cc_value_to_normalized(200), 1.0);
        let mut last = -1.0;
        for v in 0..=127u8 {
            let n = cc_value_to_normalized(v);
            assert!(n > last);
            last = n;
        }
    }
}
