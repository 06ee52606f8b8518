//! What the factory reports, read from the bundle's `Contents/Resources/moduleinfo.json`.
//!
//! The build tool generates that file from `build.yaml`; the factory reports exactly what
//! it says, so the two can never disagree.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The factory's description of the plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginInfo {
    /// Vendor name.
    pub vendor: String,
    /// Vendor URL.
    pub url: String,
    /// Vendor e-mail.
    pub email: String,
    /// The classes (the bridge exposes one: the audio module, which is also its own controller).
    pub classes: Vec<ClassInfo>,
}

/// One class the factory can create.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassInfo {
    /// The class id.
    pub cid: [u8; 16],
    /// "Audio Module Class".
    pub category: String,
    /// Display name.
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Version.
    pub version: String,
    /// SDK version string.
    pub sdk_version: String,
    /// Sub-categories joined with `|` ("Instrument|Synth").
    pub sub_categories: String,
    /// Class flags.
    pub class_flags: u32,
    /// Cardinality.
    pub cardinality: i32,
}

#[derive(Deserialize)]
struct ModuleInfoFile {
    #[serde(rename = "Factory Info")]
    factory: FactoryInfoFile,
    #[serde(rename = "Classes")]
    classes: Vec<ClassFile>,
}

#[derive(Deserialize)]
struct FactoryInfoFile {
    #[serde(rename = "Vendor")]
    vendor: String,
    #[serde(rename = "URL", default)]
    url: String,
    #[serde(rename = "E-Mail", default)]
    email: String,
}

#[derive(Deserialize)]
struct ClassFile {
    #[serde(rename = "CID")]
    cid: String,
    #[serde(rename = "Category")]
    category: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Vendor", default)]
    vendor: String,
    #[serde(rename = "Version", default)]
    version: String,
    #[serde(rename = "SDKVersion", default)]
    sdk_version: String,
    #[serde(rename = "Sub Categories", default)]
    sub_categories: Vec<String>,
    #[serde(rename = "Class Flags", default)]
    class_flags: u32,
    #[serde(rename = "Cardinality", default = "many")]
    cardinality: i32,
}

fn many() -> i32 {
    0x7FFF_FFFF
}

/// `<bundle>/Contents/Resources/moduleinfo.json` for a bridge at
/// `<bundle>/Contents/<arch>-linux/<Name>.so`.
pub fn moduleinfo_path(bridge: &Path) -> Option<PathBuf> {
    Some(bridge.parent()?.parent()?.join("Resources").join("moduleinfo.json"))
}

/// Reads and checks a `moduleinfo.json`.
///
/// # Errors
/// A sentence naming the file and what is wrong.
pub fn load(path: &Path) -> Result<PluginInfo, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the text of a `moduleinfo.json`.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse(text: &str) -> Result<PluginInfo, String> {
    let file: ModuleInfoFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let classes = file
        .classes
        .into_iter()
        .map(|c| {
            Ok(ClassInfo {
                cid: parse_cid(&c.cid)
                    .ok_or_else(|| format!("class {}: CID {:?} is not 32 hex digits", c.name, c.cid))?,
                category: c.category,
                name: c.name,
                vendor: c.vendor,
                version: c.version,
                sdk_version: c.sdk_version,
                sub_categories: c.sub_categories.join("|"),
                class_flags: c.class_flags,
                cardinality: c.cardinality,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if classes.is_empty() {
        return Err("it lists no classes".to_owned());
    }
    Ok(PluginInfo { vendor: file.factory.vendor, url: file.factory.url, email: file.factory.email, classes })
}

/// 32 hex digits to the 16 bytes of a VST3 class id (in the order written, as the VST3
/// SDK's `FUID::toString` prints them on Linux).
pub fn parse_cid(text: &str) -> Option<[u8; 16]> {
    let text = text.trim();
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut cid = [0u8; 16];
    for (i, byte) in cid.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(cid)
}

/// The 32 uppercase hex digits of a class id.
pub fn format_cid(cid: &[u8; 16]) -> String {
    cid.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "Name": "TrioSynth", "Version": "0.1.0",
        "Factory Info": {"Vendor": "Trio Audio", "URL": "https://example.com", "E-Mail": "a@b.c", "Flags": {"Unicode": true}},
        "Classes": [{"CID": "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061", "Category": "Audio Module Class", "Name": "TrioSynth",
                     "Vendor": "Trio Audio", "Version": "0.1.0", "SDKVersion": "VST 3.7.9",
                     "Sub Categories": ["Instrument", "Synth"], "Class Flags": 1, "Cardinality": 2147483647, "Snapshots": []}]
    }"#;

    #[test]
    fn parses_the_generated_format() {
        let info = parse(SAMPLE).unwrap();
        assert_eq!(info.vendor, "Trio Audio");
        assert_eq!(info.classes[0].sub_categories, "Instrument|Synth");
        assert_eq!(format_cid(&info.classes[0].cid), "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061");
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        assert!(parse("{").is_err());
        let bad = SAMPLE.replace("6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061", "XYZ");
        assert!(parse(&bad).unwrap_err().contains("\"XYZ\""));
        assert!(parse(r#"{"Factory Info": {"Vendor": "v"}, "Classes": []}"#).unwrap_err().contains("no classes"));
    }
}
