//! What the bridge knows about the plugin it serves: compiled in from `build.yaml` by the
//! build tool, never read from a file at run time.
//!
//! `cargo xtask bundle` generates a tiny library crate per plugin whose only code is
//! `trio_bridge::export_vst3!(PluginConfig { .. })` with the plugin's identity, its buses
//! and (for development bundles) the control library to watch. The factory reports
//! exactly this; `moduleinfo.json` is written from the same values for hosts that scan
//! without loading, and nothing the host sees can be changed by editing it.

/// What kind of plugin this is, which decides its buses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// MIDI in, no audio in, audio out.
    Instrument,
    /// Audio in and out (in place), optionally a sidechain input and MIDI in.
    Effect,
}

/// A channel layout of the main bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One channel.
    Mono,
    /// Left and right.
    Stereo,
}

impl Layout {
    /// Channels in the layout.
    pub const fn channels(self) -> u32 {
        match self {
            Self::Mono => 1,
            Self::Stereo => 2,
        }
    }

    /// The VST3 speaker arrangement.
    pub const fn speakers(self) -> u64 {
        match self {
            Self::Mono => vst3::Steinberg::Vst::SpeakerArr::kMono,
            Self::Stereo => vst3::Steinberg::Vst::SpeakerArr::kStereo,
        }
    }

    /// The layout of a VST3 speaker arrangement, if it is one of ours.
    pub fn from_speakers(arrangement: u64) -> Option<Self> {
        [Self::Mono, Self::Stereo].into_iter().find(|l| l.speakers() == arrangement)
    }
}

/// The plugin's identity and buses, as `build.yaml` declared them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginConfig {
    /// Display name (also the bundle's name).
    pub name: &'static str,
    /// Vendor.
    pub vendor: &'static str,
    /// Vendor's web address.
    pub url: &'static str,
    /// Vendor's e-mail.
    pub email: &'static str,
    /// Plugin version.
    pub version: &'static str,
    /// The VST3 class id, 16 bytes in the order written in `build.yaml`.
    pub class_id: [u8; 16],
    /// VST3 sub-categories joined with `|` (`"Instrument|Synth"`, `"Fx|Delay"`).
    pub sub_categories: &'static str,
    /// Instrument or effect.
    pub kind: PluginKind,
    /// Layouts the main bus accepts, the default first. An instrument's output, an
    /// effect's input and output (always the same layout).
    pub layouts: &'static [Layout],
    /// Whether an effect has a sidechain input (mono or stereo).
    pub sidechain: bool,
    /// Whether the plugin has a MIDI input bus.
    pub midi_input: bool,
    /// The control library a development bundle watches and reloads (an absolute path
    /// into the project's target folder); `None` in release bundles.
    pub watch: Option<&'static str>,
}

impl PluginConfig {
    /// The VST3 SDK version reported in the class info.
    pub const SDK_VERSION: &'static str = "VST 3.7.9";

    /// The main bus's default layout.
    pub fn default_layout(&self) -> Layout {
        self.layouts.first().copied().unwrap_or(Layout::Stereo)
    }

    /// The class category hosts file the plugin under.
    pub fn category(&self) -> &'static str {
        "Audio Module Class"
    }
}
