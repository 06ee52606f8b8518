//! Prints the parameter definitions of a bundle's control module as JSON, so tests in
//! other languages (the real-host tests) can compare what a host shows with what the
//! control module defines.
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
    println!("{}", serde_json::to_string_pretty(&params)?);
    Ok(())
}
