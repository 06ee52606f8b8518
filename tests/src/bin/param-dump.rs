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
    let modules = bridge::Modules::load(&bridge::ModulePaths::in_dir(&bin))?;
    let instance = bridge::Instance::new(&modules, bridge::ProcessSetup::default())?;
    let mut params = Vec::new();
    for p in instance.param_infos()? {
        let text = |b: &[u8]| shared::abi::str_from_fixed(b).to_owned();
        params.push(json!({
            "id": p.id,
            "name": text(&p.name),
            "short_name": text(&p.short_name),
            "unit": text(&p.unit),
            "min": p.min,
            "max": p.max,
            "step_count": p.step_count,
            "default_normalized": p.default_normalized,
            "default_text": instance.format_value(p.id, p.default_normalized)?,
            "flags": p.flags,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&params)?);
    Ok(())
}
