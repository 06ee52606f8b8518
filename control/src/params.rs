//! TrioSynth's parameter table: ids, keys, names, units, mappings, defaults, groups and
//! display rules. The engine reads the same ids ([`synth_common::id`]).

use synth_common::id;
use trio::params::{ParamDef, ParamMapping};

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

/// Every parameter, in id order (hosts list them in this order).
pub fn definitions() -> Vec<ParamDef> {
    let time = |max| ParamMapping::skewed(0.001, max, TIME_SKEW);
    vec![
        ParamDef::float(id::GAIN, "gain", "Output Gain", ParamMapping::linear(-60.0, 6.0), -6.0)
            .short_name("Gain")
            .group("Output")
            .decibels(),
        ParamDef::list(id::WAVEFORM, "waveform", "Waveform", &["Saw", "Square", "Sine"], 0)
            .short_name("Wave")
            .group("Oscillator"),
        ParamDef::float(id::ATTACK, "attack", "Attack", time(5.0), 0.005)
            .short_name("Attack")
            .group("Envelope")
            .seconds(),
        ParamDef::float(id::DECAY, "decay", "Decay", time(5.0), 0.2).short_name("Decay").group("Envelope").seconds(),
        ParamDef::float(id::SUSTAIN, "sustain", "Sustain", ParamMapping::linear(0.0, 1.0), 0.7)
            .short_name("Sustain")
            .group("Envelope")
            .percent(),
        ParamDef::float(id::RELEASE, "release", "Release", time(10.0), 0.3)
            .short_name("Release")
            .group("Envelope")
            .seconds(),
        ParamDef::float(id::CUTOFF, "cutoff", "Filter Cutoff", CUTOFF_MAPPING, 8000.0)
            .short_name("Cutoff")
            .group("Filter")
            .unit(CUTOFF_UNIT)
            .hertz(),
        ParamDef::float(id::RESONANCE, "resonance", "Resonance", ParamMapping::linear(0.0, 1.0), 0.2)
            .short_name("Reso")
            .group("Filter")
            .percent(),
        ParamDef::float(id::FILTER_ENV, "filter_env", "Filter Env Amount", ParamMapping::linear(-6.0, 6.0), 2.0)
            .short_name("Env Amt")
            .group("Filter")
            .octaves(),
        ParamDef::float(
            id::VELOCITY_SENS,
            "velocity_sens",
            "Velocity Sensitivity",
            ParamMapping::linear(0.0, 1.0),
            0.7,
        )
        .short_name("Vel Sens")
        .group("Output")
        .percent(),
        ParamDef::bypass(id::BYPASS, "bypass").short_name("Bypass").group("Output"),
        ParamDef::toggle(id::ARP_ON, "arp_on", "Arpeggiator", false).short_name("Arp").group("Arp"),
        ParamDef::list(id::ARP_RATE, "arp_rate", "Arp Rate", &["1/4", "1/8", "1/16", "1/32"], 2)
            .short_name("Rate")
            .group("Arp"),
        ParamDef::list(id::ARP_PATTERN, "arp_pattern", "Arp Pattern", &["Up", "Down", "Up-Down", "As Played"], 0)
            .short_name("Pattern")
            .group("Arp"),
        {
            let mut octaves = ParamDef::list(id::ARP_OCTAVES, "arp_octaves", "Arp Octaves", &["1", "2", "3", "4"], 0)
                .short_name("Octaves")
                .group("Arp");
            // Plain values 1..4 (not list indices 0..3): states save the octave count.
            octaves.info.mapping = ParamMapping::stepped(1.0, 4.0);
            octaves.info.default_normalized = 0.0;
            octaves.default = 1.0;
            octaves
        },
        ParamDef::float(id::ARP_GATE, "arp_gate", "Arp Gate", ParamMapping::linear(0.05, 0.95), 0.5)
            .short_name("Gate")
            .group("Arp")
            .percent(),
        ParamDef::float(id::ARP_TEMPO, "arp_tempo", "Arp Tempo", ParamMapping::linear(40.0, 240.0), 120.0)
            .short_name("Tempo")
            .group("Arp")
            .bpm(),
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
            assert!(d.info.short_name.chars().count() <= 8, "{}", d.info.short_name);
            assert!(["Oscillator", "Envelope", "Filter", "Output", "Arp"].contains(&d.info.group.as_str()));
            assert_eq!(d.info.clamp(d.default_plain()), d.default_plain(), "{}", d.key);
        }
    }

    #[test]
    fn formats_like_the_examples() {
        let cases: &[(u32, f64, &str)] = &[
            (id::CUTOFF, 440.0, "440 Hz"),
            (id::CUTOFF, 1200.0, "1.20 kHz"),
            (id::GAIN, -6.0, "-6.0 dB"),
            (id::ATTACK, 0.005, "5.0 ms"),
            (id::ATTACK, 1.2, "1.20 s"),
            (id::DECAY, 0.2, "200.0 ms"),
            (id::SUSTAIN, 0.7, "70 %"),
            (id::FILTER_ENV, 2.0, "+2.0 oct"),
            (id::WAVEFORM, 1.0, "Square"),
            (id::BYPASS, 1.0, "On"),
            (id::ARP_OCTAVES, 3.0, "3"),
            (id::ARP_RATE, 2.0, "1/16"),
            (id::ARP_TEMPO, 120.0, "120.0 BPM"),
        ];
        for &(id, plain, text) in cases {
            assert_eq!(def(id).format(plain), text, "id {id} plain {plain}");
        }
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

    #[test]
    fn octaves_save_the_count_and_show_it() {
        let d = def(id::ARP_OCTAVES);
        assert_eq!(d.default_plain(), 1.0);
        assert_eq!(d.info.mapping.to_plain(1.0), 4.0);
        assert_eq!(d.parse("2").unwrap(), 2.0);
        assert_eq!(d.format(4.0), "4");
    }
}
