//! Prints the parameter definitions of a bundle's control module as JSON, so tests in
//! other languages (the real-host tests) can compare what a host shows with what the
//! control module defines, followed by the hidden parameters the bridge lists for the
//! MIDI controllers the engine takes as events (marked `"midi_controller": number`).
//!
//! Usage: `param-dump <path/to/Name.vst3>`

use anyhow::{Context, Result};
use serde_json::json;

fn main() -> Result<()> {
    let bundle = std::env::args().nth(1).context("usage: param-dump <path/to/Name.vst3>")?;
    let bin = std::path::Path::new(&bundle).join("Contents/x86_64-linux");
    let modules = trio_bridge::Modules::load(&trio_bridge::ModulePaths::in_dir(&bin), None)?;
    let instance = trio_bridge::Instance::new(&modules, trio_bridge::ProcessSetup::default())?;
    let mut params = Vec::new();
    for p in &instance.definitions().params {
        params.push(json!({
            "id": p.id,
            "name": p.name,
            "short_name": p.short_name,
            "unit": p.unit,
            "min": p.mapping.min,
            "max": p.mapping.max,
            "step_count": p.mapping.step_count(),
            "default_normalized": p.default_normalized,
            "default_text": instance.format_value(p.id, p.default_normalized)?,
            "flags": p.flags,
        }));
    }
    // The MIDI controllers the engine takes as events: the bridge lists a hidden
    // parameter for each after the plugin's own (trio::control::Control::midi_controllers).
    let defs = instance.definitions();
    for number in (0..trio::block::MIDI_CONTROLLERS as u8).filter(|&n| defs.raw_midi[usize::from(n)]) {
        let default = trio::params::midi_param_default(number);
        params.push(json!({
            "id": trio::params::midi_param_id(number),
            "name": trio::params::midi_param_name(number),
            "short_name": trio::params::midi_param_name(number),
            "unit": "",
            "min": 0.0,
            "max": 1.0,
            "step_count": 0,
            "default_normalized": default,
            "default_text": format!("{default:.3}"),
            "flags": trio::abi::param_flags::HIDDEN,
            "midi_controller": number,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&params)?);
    Ok(())
}
