//! TrioEcho's parameter table: ids, keys, names, units, mappings, defaults, groups and
//! display rules. The engine reads the same ids ([`trio_echo_common::id`]).

use trio::params::{ParamDef, ParamMapping};
use trio_echo_common::{DEFAULT_DIVISION, DIVISIONS, MAX_DELAY_S, MAX_LOOKAHEAD_S, MIN_DELAY_S, id};

/// Skew of the time mappings: a square law, so the lower half of a control covers the
/// first quarter of the range, where short times need fine steps.
const TIME_SKEW: f64 = 2.0;

/// The groups hosts show the parameters in.
pub const GROUPS: [&str; 5] = ["Delay", "Feedback", "Ducker", "Limiter", "Output"];

/// Every parameter, in id order (hosts list them in this order).
pub fn definitions() -> Vec<ParamDef> {
    let division_names: Vec<&str> = DIVISIONS.iter().map(|d| d.name).collect();
    vec![
        ParamDef::float(id::MIX, "mix", "Mix", ParamMapping::linear(0.0, 1.0), 0.35)
            .short_name("Mix")
            .group("Output")
            .percent(),
        ParamDef::toggle(id::SYNC, "sync", "Sync", true).short_name("Sync").group("Delay"),
        ParamDef::float(id::TIME, "time", "Time", ParamMapping::skewed(MIN_DELAY_S, MAX_DELAY_S, TIME_SKEW), 0.375)
            .short_name("Time")
            .group("Delay")
            .seconds(),
        ParamDef::list(id::DIVISION, "division", "Division", &division_names, DEFAULT_DIVISION)
            .short_name("Div")
            .group("Delay"),
        ParamDef::float(id::FEEDBACK, "feedback", "Feedback", ParamMapping::linear(0.0, 0.95), 0.4)
            .short_name("Fdbk")
            .group("Feedback")
            .percent(),
        ParamDef::float(id::TONE, "tone", "Tone", ParamMapping::logarithmic(200.0, 20_000.0), 6000.0)
            .short_name("Tone")
            .group("Feedback")
            .hertz(),
        ParamDef::float(id::LOW_CUT, "low_cut", "Low Cut", ParamMapping::logarithmic(20.0, 2000.0), 80.0)
            .short_name("Low Cut")
            .group("Feedback")
            .hertz(),
        ParamDef::float(id::DUCK, "duck", "Duck", ParamMapping::linear(0.0, 1.0), 0.0)
            .short_name("Duck")
            .group("Ducker")
            .percent(),
        ParamDef::float(
            id::DUCK_THRESHOLD,
            "duck_threshold",
            "Duck Threshold",
            ParamMapping::linear(-60.0, 0.0),
            -30.0,
        )
        .short_name("Thresh")
        .group("Ducker")
        .decibels(),
        ParamDef::float(
            id::DUCK_RELEASE,
            "duck_release",
            "Duck Release",
            ParamMapping::skewed(0.01, 2.0, TIME_SKEW),
            0.25,
        )
        .short_name("Release")
        .group("Ducker")
        .seconds(),
        ParamDef::float(id::CEILING, "ceiling", "Ceiling", ParamMapping::linear(-24.0, 0.0), -0.3)
            .short_name("Ceiling")
            .group("Limiter")
            .decibels(),
        ParamDef::float(id::LOOKAHEAD, "lookahead", "Lookahead", ParamMapping::linear(0.0, MAX_LOOKAHEAD_S), 0.005)
            .short_name("Lookahd")
            .group("Limiter")
            .seconds(),
        ParamDef::bypass(id::BYPASS, "bypass").short_name("Bypass").group("Output"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: u32) -> ParamDef {
        definitions().into_iter().find(|d| d.id() == id).unwrap()
    }

    #[test]
    fn table_is_consistent() {
        let defs = definitions();
        assert_eq!(defs.len(), id::COUNT as usize);
        for (i, d) in defs.iter().enumerate() {
            assert_eq!(d.id() as usize, i, "{}", d.key);
            d.validate().unwrap();
            assert!(!d.info.short_name.is_empty() && d.info.short_name.len() <= 8, "{}", d.info.short_name);
            assert!(GROUPS.contains(&d.info.group.as_str()), "{}: {}", d.key, d.info.group);
            assert_eq!(d.info.clamp(d.default_plain()), d.default_plain(), "{}", d.key);
            assert!(d.info.has_flag(trio::abi::param_flags::AUTOMATABLE), "{}", d.key);
        }
        for (i, a) in defs.iter().enumerate() {
            for b in &defs[..i] {
                assert_ne!(a.key, b.key);
                assert_ne!(a.id(), b.id());
                assert_ne!(a.info.name, b.info.name);
            }
        }
        assert!(def(id::BYPASS).info.has_flag(trio::abi::param_flags::BYPASS));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cases: &[(u32, f64)] = &[
            (id::MIX, 0.35),
            (id::SYNC, 1.0),
            (id::TIME, 0.375),
            (id::DIVISION, 2.0),
            (id::FEEDBACK, 0.4),
            (id::TONE, 6000.0),
            (id::LOW_CUT, 80.0),
            (id::DUCK, 0.0),
            (id::DUCK_THRESHOLD, -30.0),
            (id::DUCK_RELEASE, 0.25),
            (id::CEILING, -0.3),
            (id::LOOKAHEAD, 0.005),
            (id::BYPASS, 0.0),
        ];
        for &(id, want) in cases {
            let d = def(id);
            assert_eq!(d.default_plain(), want, "{}", d.key);
            // The normalized default maps back to (almost) the same plain value.
            let back = d.info.mapping.to_plain(d.info.default_normalized);
            assert!((back - want).abs() <= 1e-9 * want.abs().max(1.0), "{}: {back}", d.key);
        }
    }

    #[test]
    fn formats_like_the_examples() {
        let cases: &[(u32, f64, &str)] = &[
            (id::MIX, 0.35, "35 %"),
            (id::SYNC, 1.0, "On"),
            (id::TIME, 0.375, "375.0 ms"),
            (id::TIME, 1.5, "1.50 s"),
            (id::DIVISION, 2.0, "1/8 Dotted"),
            (id::DIVISION, 4.0, "1/4 Triplet"),
            (id::FEEDBACK, 0.95, "95 %"),
            (id::TONE, 6000.0, "6.00 kHz"),
            (id::LOW_CUT, 80.0, "80 Hz"),
            (id::DUCK_THRESHOLD, -30.0, "-30.0 dB"),
            (id::DUCK_RELEASE, 0.25, "250.0 ms"),
            (id::CEILING, -0.3, "-0.3 dB"),
            (id::LOOKAHEAD, 0.005, "5.0 ms"),
            (id::LOOKAHEAD, 0.0, "0.0 ms"),
            (id::BYPASS, 0.0, "Off"),
        ];
        for &(id, plain, text) in cases {
            assert_eq!(def(id).format(plain), text, "id {id} plain {plain}");
        }
        assert_eq!(def(id::DIVISION).parse("1/8 dotted").unwrap(), 2.0);
        assert_eq!(def(id::TIME).parse("250 ms").unwrap(), 0.25);
        assert_eq!(def(id::TIME).parse("5 s").unwrap(), 2.0);
        assert_eq!(def(id::FEEDBACK).parse("100").unwrap(), 0.95);
    }

    #[test]
    fn format_then_parse_round_trips_for_every_parameter() {
        for d in definitions() {
            for i in 0..=1000 {
                let plain = d.info.mapping.to_plain(f64::from(i) / 1000.0);
                let text = d.format(plain);
                let parsed = d.parse(&text).unwrap_or_else(|e| panic!("{}: {text:?}: {e}", d.key));
                assert_eq!(d.format(parsed), text, "{} plain {plain}", d.key);
            }
        }
    }
}
