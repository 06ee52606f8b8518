//! TrioEcho's control module: its parameters and their display ([`params`]), four factory
//! presets and its saved state. It has no control-rate logic: the framework's idle tick
//! is enough for an effect whose engine reads every parameter itself.
//!
//! Built on the Trio SDK ([`trio::control::Control`]); the framework runs every call on
//! the bridge's control worker, so this crate may allocate, and can be rebuilt and
//! reloaded while audio keeps playing.
#![forbid(unsafe_code)]

pub mod params;

use trio::control::{Control, ControlContext, Preset};
use trio::params::ParamDef;

/// TrioEcho's control module.
pub struct EchoControl;

trio::export_control!(EchoControl);

/// The factory preset files, in bank order.
pub const FACTORY_PRESETS: [&str; 4] = [
    include_str!("../presets/init.json"),
    include_str!("../presets/slapback.json"),
    include_str!("../presets/dub_throw.json"),
    include_str!("../presets/ducked_vocal_delay.json"),
];

impl Control for EchoControl {
    type Area = ();
    const STATE_FORMAT: &'static str = "trio-echo-state";
    const PRESET_FORMAT: &'static str = "trio-echo-preset";
    const STATE_VERSION: u32 = 1;

    fn params() -> Vec<ParamDef> {
        params::definitions()
    }

    fn new(_ctx: &mut ControlContext<'_, ()>) -> Self {
        EchoControl
    }

    fn presets() -> Vec<Preset> {
        FACTORY_PRESETS.iter().map(|text| Preset::Json(text)).collect()
    }
}

#[cfg(test)]
mod tests {
    use trio::state::{StateData, StateSchema};
    use trio_echo_common::id;

    use super::*;

    fn with_schema<R>(f: impl FnOnce(&StateSchema<'_>) -> R) -> R {
        let defs = EchoControl::params();
        let schema = StateSchema {
            format: EchoControl::STATE_FORMAT,
            preset_format: EchoControl::PRESET_FORMAT,
            version: EchoControl::STATE_VERSION,
            params: &defs,
            default_cc_map: &[],
            migrate: &|_, _| Ok(()),
        };
        f(&schema)
    }

    #[test]
    fn factory_presets_parse_and_set_every_sound_parameter() {
        let defs = EchoControl::params();
        with_schema(|schema| {
            let mut names = Vec::new();
            for text in FACTORY_PRESETS {
                let preset = schema.preset_from_json(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                // Every parameter but the bypass is written out, inside its range.
                for d in defs.iter().filter(|d| d.id() != id::BYPASS) {
                    assert!(text.contains(&format!("\"{}\":", d.key)), "{}: no {}", preset.name, d.key);
                    let v = preset.values.iter().find(|(i, _)| *i == d.id()).unwrap().1;
                    assert_eq!(d.info.clamp(v), v, "{}: {} = {v} is out of range", preset.name, d.key);
                }
                assert!(!text.contains("\"bypass\""), "{}: presets leave the bypass alone", preset.name);
                names.push(preset.name);
            }
            assert_eq!(names, ["Init", "Slapback", "Dub Throw", "Ducked Vocal Delay"]);
        });
    }

    #[test]
    fn init_preset_is_the_defaults() {
        let defs = EchoControl::params();
        with_schema(|schema| {
            let init = schema.preset_from_json(FACTORY_PRESETS[0]).unwrap();
            for d in &defs {
                let v = init.values.iter().find(|(i, _)| *i == d.id()).unwrap().1;
                assert_eq!(v, d.default_plain(), "{}", d.key);
            }
        });
    }

    #[test]
    fn presets_have_their_character() {
        with_schema(|schema| {
            let get = |i: usize, param: u32| {
                let p = schema.preset_from_json(FACTORY_PRESETS[i]).unwrap();
                p.values.iter().find(|(id, _)| *id == param).unwrap().1
            };
            // Slapback: short, free-running, few repeats.
            assert_eq!(get(1, id::SYNC), 0.0);
            assert!(get(1, id::TIME) < 0.15 && get(1, id::FEEDBACK) <= 0.15);
            // Dub throw: synced, long feedback, dark.
            assert_eq!(get(2, id::SYNC), 1.0);
            assert!(get(2, id::FEEDBACK) >= 0.7 && get(2, id::TONE) <= 2500.0);
            // Ducked vocal delay: the ducker is on.
            assert!(get(3, id::DUCK) >= 0.5);
        });
    }

    #[test]
    fn state_round_trips() {
        let defs = EchoControl::params();
        with_schema(|schema| {
            let values: Vec<(u32, f64)> =
                defs.iter().map(|d| (d.id(), d.info.mapping.exact_plain(0.3_f64.min(1.0)))).collect();
            let state = StateData {
                values: values.clone(),
                preset: Some("Dub Throw".into()),
                cc_map: vec![],
                extra: Default::default(),
            };
            let json = schema.to_json(&state);
            assert!(json.contains("\"format\":\"trio-echo-state\""), "{json}");
            let back = schema.from_json(json.as_bytes()).unwrap();
            assert_eq!(back.values, values);
            assert_eq!(back.preset.as_deref(), Some("Dub Throw"));
        });
    }
}
