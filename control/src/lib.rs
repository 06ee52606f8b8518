//! TrioSynth's control module: its parameters and their display, six factory presets, the
//! MIDI CC map, its saved state (with the migration from version 0), and the
//! arpeggiator ([`arp`]), control-rate logic that schedules timed notes for the engine.
//!
//! Built on the Trio SDK ([`trio::control::Control`]); the framework runs every call on
//! the bridge's control worker, so this crate may allocate, and can be rebuilt and
//! reloaded while audio keeps playing.
#![forbid(unsafe_code)]

pub mod arp;
pub mod params;

use std::time::Duration;

use serde_json::{Map, Value};
use synth_common::{SynthArea, id};
use trio::control::{Control, ControlContext, MidiController, NextTick, Preset, TickContext};
use trio::params::ParamDef;

/// How often the arpeggiator ticks while it is on.
pub const ARP_TICK: Duration = Duration::from_millis(2);

/// TrioSynth's control module.
pub struct SynthControl;

trio::export_control!(SynthControl);

/// The factory preset files, in bank order.
pub const FACTORY_PRESETS: [&str; 6] = [
    include_str!("../presets/init.json"),
    include_str!("../presets/warm_pad.json"),
    include_str!("../presets/acid_bass.json"),
    include_str!("../presets/pluck_lead.json"),
    include_str!("../presets/soft_keys.json"),
    include_str!("../presets/arp_pulse.json"),
];

/// The factory MIDI CC map, following the General MIDI / sound-controller conventions:
/// CC 1 (mod wheel) → filter envelope amount, CC 7 (volume) → gain, CC 71 (timbre) →
/// resonance, CC 72 (release time) → release, CC 73 (attack time) → attack, CC 74
/// (brightness) → cutoff.
pub const DEFAULT_CC_MAP: [(u8, u32); 6] =
    [(1, id::FILTER_ENV), (7, id::GAIN), (71, id::RESONANCE), (72, id::RELEASE), (73, id::ATTACK), (74, id::CUTOFF)];

impl Control for SynthControl {
    type Area = SynthArea;
    const STATE_FORMAT: &'static str = "trio-synth-state";
    const PRESET_FORMAT: &'static str = "trio-synth-preset";
    const STATE_VERSION: u32 = 1;

    fn params() -> Vec<ParamDef> {
        params::definitions()
    }

    fn new(_ctx: &mut ControlContext<'_, SynthArea>) -> Self {
        SynthControl
    }

    fn presets() -> Vec<Preset> {
        FACTORY_PRESETS.iter().map(|text| Preset::Json(text)).collect()
    }

    fn default_midi_cc() -> Vec<(u8, u32)> {
        DEFAULT_CC_MAP.to_vec()
    }

    /// The pitch wheel reaches the engine as events at their sample, and bends every
    /// voice by up to ±2 semitones (`rt_engine::PITCH_BEND_RANGE_SEMITONES`). The
    /// bridge lists a hidden, non-automatable parameter for it that hosts map the
    /// wheel to.
    fn midi_controllers() -> Vec<MidiController> {
        vec![MidiController::PitchBend]
    }

    /// Version history: 0, the parameter table was called `parameters`; 1, it is called
    /// `params`.
    fn migrate_state(from: u32, doc: &mut Map<String, Value>) -> Result<(), String> {
        if from == 0 {
            if doc.contains_key("params") {
                return Err("a version 0 state names its table \"parameters\", but this one has \"params\"".to_owned());
            }
            if let Some(table) = doc.remove("parameters") {
                doc.insert("params".to_owned(), table);
            }
        }
        Ok(())
    }

    fn tick(&mut self, ctx: &mut TickContext<'_, SynthArea>) -> NextTick {
        let report = arp::tick(ctx);
        if report.idle { NextTick::Idle } else { NextTick::After(ARP_TICK) }
    }
}

#[cfg(test)]
mod tests {
    /// The checks the framework runs when a host creates the plugin: parameters, presets,
    /// MIDI map, state round trips.
    #[test]
    fn declarations_are_valid() {
        let summary = trio::control::check::<super::SynthControl>().unwrap();
        assert_eq!((summary.params, summary.presets), (17, 6));
    }
}
