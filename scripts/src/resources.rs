//! The bundle's `Contents/Resources/` files, generated from `build.yaml`:
//! `moduleinfo.json` for hosts and `build.json` for people and tools.
//!
//! # `moduleinfo.json`
//!
//! VST 3.7.5+ hosts read it to list the plugin without loading it. It holds the plugin's
//! one class: the bridge's plugin object is both the audio processor and its own edit
//! controller (a "single component" plugin), so there is no separate controller class.
//! `CID` = `plugin.class_id`, `Category` `"Audio Module Class"`, `Class Flags` 1
//! (`kDistributable`), the sub-categories of `build.yaml`, `Cardinality` 2147483647
//! (`kManyInstances`), `SDKVersion` [`SDK_VERSION`], no snapshots. The bridge never reads
//! it: its factory reports the same values, compiled in from `build.yaml`
//! ([`crate::shim`]); `cargo xtask verify` reports a file that no longer matches.
//!
//! # `build.json`
//!
//! A record of how the bundle was built, for people and tools (the bridge reads nothing
//! from the bundle but its two modules); see [`BuildInfo`] for each field. Example:
//!
//! ```json
//! {
//!   "format": 2,
//!   "profile": "debug",
//!   "plugin": {
//!     "name": "TrioSynth", "vendor": "Trio Audio", "url": "https://example.com/triosynth",
//!     "email": "support@example.com", "version": "0.1.0", "kind": "instrument",
//!     "layouts": ["stereo"], "sidechain": false, "midi_input": true,
//!     "sub_categories": ["Instrument", "Synth"],
//!     "processor_cid": "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061"
//!   },
//!   "abi": { "version": 2, "layout_hash": 1234567890123456789 },
//!   "modules": {
//!     "bridge":    { "file": "TrioSynth.so", "allocation": "forbid", "exports": ["GetPluginFactory", "..."] },
//!     "rt_engine": { "file": "rt_engine.so", "kind": 1, "allocation": "forbid", "exports": ["..."] },
//!     "control":   { "file": "control.so", "kind": 2, "allocation": "allow", "hot_reload": true, "exports": ["..."],
//!                    "watch": "/path/to/project/target/debug/libcontrol.so" }
//!   }
//! }
//! ```
//!
//! Files are named relative to the folder holding the bridge (`Contents/x86_64-linux/`).

use serde::{Deserialize, Serialize};

use crate::manifest::{Allocation, ClassId, Kind, LayoutName, Manifest, ModuleSpec, Role};

/// The VST3 SDK version written into `moduleinfo.json`.
pub const SDK_VERSION: &str = "VST 3.7.9";

/// `Cardinality` of the class: `kManyInstances`.
pub const MANY_INSTANCES: i32 = 0x7FFF_FFFF;

/// Processor `Class Flags`: `Vst::kDistributable`.
pub const PROCESSOR_CLASS_FLAGS: u32 = 1;

/// The version of the `build.json` format written by this tool.
pub const BUILD_INFO_FORMAT: u32 = 2;

/// `moduleinfo.json`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ModuleInfo {
    /// Plugin name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Plugin version.
    #[serde(rename = "Version")]
    pub version: String,
    /// The factory's information.
    #[serde(rename = "Factory Info")]
    pub factory_info: FactoryInfo,
    /// The classes the factory offers.
    #[serde(rename = "Classes")]
    pub classes: Vec<ClassInfo>,
}

/// `moduleinfo.json` → `Factory Info`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FactoryInfo {
    /// Vendor.
    #[serde(rename = "Vendor")]
    pub vendor: String,
    /// Vendor's web address.
    #[serde(rename = "URL")]
    pub url: String,
    /// Vendor's e-mail.
    #[serde(rename = "E-Mail")]
    pub email: String,
    /// Factory flags.
    #[serde(rename = "Flags")]
    pub flags: FactoryFlags,
}

/// `moduleinfo.json` → `Factory Info` → `Flags`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FactoryFlags {
    /// `kUnicode`: strings are UTF-16 (always true).
    #[serde(rename = "Unicode")]
    pub unicode: bool,
    /// `kClassesDiscardable`.
    #[serde(rename = "Classes Discardable")]
    pub classes_discardable: bool,
    /// `kComponentNonDiscardable`.
    #[serde(rename = "Component Non Discardable")]
    pub component_non_discardable: bool,
}

/// One entry of `moduleinfo.json` → `Classes`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassInfo {
    /// Class id, 32 uppercase hex digits.
    #[serde(rename = "CID")]
    pub cid: String,
    /// `Audio Module Class` or `Component Controller Class`.
    #[serde(rename = "Category")]
    pub category: String,
    /// Display name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Vendor.
    #[serde(rename = "Vendor")]
    pub vendor: String,
    /// Version.
    #[serde(rename = "Version")]
    pub version: String,
    /// SDK version the plugin was built against.
    #[serde(rename = "SDKVersion")]
    pub sdk_version: String,
    /// VST3 sub-categories.
    #[serde(rename = "Sub Categories")]
    pub sub_categories: Vec<String>,
    /// Class flags.
    #[serde(rename = "Class Flags")]
    pub class_flags: u32,
    /// How many instances may exist.
    #[serde(rename = "Cardinality")]
    pub cardinality: i32,
    /// Snapshot images (none).
    #[serde(rename = "Snapshots")]
    pub snapshots: Vec<serde_json::Value>,
}

/// The VST3 category of the processor class.
pub const PROCESSOR_CATEGORY: &str = "Audio Module Class";

impl ModuleInfo {
    /// `moduleinfo.json` for `manifest`.
    pub fn new(manifest: &Manifest) -> Self {
        let p = &manifest.plugin;
        let class = |cid: ClassId, category: &str, sub_categories: Vec<String>, class_flags: u32| ClassInfo {
            cid: cid.to_string(),
            category: category.to_owned(),
            name: p.name.clone(),
            vendor: p.vendor.clone(),
            version: p.version.clone(),
            sdk_version: SDK_VERSION.to_owned(),
            sub_categories,
            class_flags,
            cardinality: MANY_INSTANCES,
            snapshots: Vec::new(),
        };
        Self {
            name: p.name.clone(),
            version: p.version.clone(),
            factory_info: FactoryInfo {
                vendor: p.vendor.clone(),
                url: p.url.clone(),
                email: p.email.clone(),
                flags: FactoryFlags { unicode: true, classes_discardable: false, component_non_discardable: false },
            },
            classes: vec![class(p.class_id, PROCESSOR_CATEGORY, p.sub_categories.clone(), PROCESSOR_CLASS_FLAGS)],
        }
    }
}

/// `build.json`: what the bridge reads at run time (see the [module docs](self)).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct BuildInfo {
    /// [`BUILD_INFO_FORMAT`]; a reader refuses another value.
    pub format: u32,
    /// `debug` or `release`: the cargo profile the libraries were built with.
    pub profile: String,
    /// The plugin, as `build.yaml` declares it.
    pub plugin: PluginBuildInfo,
    /// The ABI the modules were checked against.
    pub abi: AbiInfo,
    /// The three libraries.
    pub modules: ModulesBuildInfo,
}

/// `build.json` → `plugin`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct PluginBuildInfo {
    /// Name.
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Web address.
    pub url: String,
    /// E-mail.
    pub email: String,
    /// Version.
    pub version: String,
    /// Instrument or effect.
    pub kind: Kind,
    /// Main-bus layouts accepted.
    pub layouts: Vec<LayoutName>,
    /// Whether an effect has a sidechain input.
    pub sidechain: bool,
    /// Whether there is a MIDI input bus.
    pub midi_input: bool,
    /// VST3 sub-categories of the processor class.
    pub sub_categories: Vec<String>,
    /// The plugin's class id, 32 uppercase hex digits.
    pub processor_cid: String,
}

/// `build.json` → `abi`: the values the modules' descriptors were checked against.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AbiInfo {
    /// [`trio::abi::ABI_VERSION`].
    pub version: u32,
    /// [`trio::layout::LAYOUT_HASH`] (a JSON number; it fits `u64`).
    pub layout_hash: u64,
}

/// `build.json` → `modules`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ModulesBuildInfo {
    /// The bridge (the library the host loads).
    pub bridge: ModuleBuildInfo,
    /// The real-time engine.
    pub rt_engine: ModuleBuildInfo,
    /// The control module.
    pub control: ModuleBuildInfo,
}

/// `build.json` → `modules` → one library.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ModuleBuildInfo {
    /// File name in `Contents/x86_64-linux/`.
    pub file: String,
    /// Descriptor kind ([`trio::abi::module_kind`]); absent for the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u32>,
    /// Allocation policy.
    pub allocation: Allocation,
    /// Whether development builds reload it when it changes (control only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hot_reload: bool,
    /// Every symbol it exports (checked at build time; the bridge checks them with `dlsym`).
    pub exports: Vec<String>,
    /// Development bundles of a `hot_reload` control module only: the absolute path of the
    /// library cargo writes (`target/debug/libcontrol.so`). The bridge watches it and reloads
    /// the control module each time a build replaces it. Release bundles never have it, so
    /// they never watch anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
}

impl ModuleBuildInfo {
    fn new(module: &ModuleSpec, plugin_name: &str) -> Self {
        Self {
            file: module.role.file_name(plugin_name),
            kind: module.role.descriptor_kind(),
            allocation: module.allocation,
            hot_reload: module.role == Role::Control && module.hot_reload,
            exports: module.exports.clone(),
            watch: None,
        }
    }
}

impl BuildInfo {
    /// `build.json` for `manifest`, built with the `release` or debug profile.
    pub fn new(manifest: &Manifest, release: bool) -> Self {
        let p = &manifest.plugin;
        Self {
            format: BUILD_INFO_FORMAT,
            profile: if release { "release" } else { "debug" }.to_owned(),
            plugin: PluginBuildInfo {
                name: p.name.clone(),
                vendor: p.vendor.clone(),
                url: p.url.clone(),
                email: p.email.clone(),
                version: p.version.clone(),
                kind: p.kind,
                layouts: manifest.audio.layouts.clone(),
                sidechain: manifest.audio.sidechain,
                midi_input: manifest.audio.midi_input,
                sub_categories: p.sub_categories.clone(),
                processor_cid: p.class_id.to_string(),
            },
            abi: AbiInfo { version: trio::abi::ABI_VERSION, layout_hash: trio::layout::LAYOUT_HASH },
            modules: ModulesBuildInfo {
                bridge: ModuleBuildInfo::new(&manifest.bridge, &p.name),
                rt_engine: ModuleBuildInfo::new(&manifest.rt_engine, &p.name),
                control: ModuleBuildInfo::new(&manifest.control, &p.name),
            },
        }
    }
}
