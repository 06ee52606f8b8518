//! The host's errors: each says what failed, which file or value, and what to do.

use std::fmt;
use std::path::PathBuf;

use vst3::Steinberg::tresult;

/// Why a host operation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HostError {
    /// The bundle path does not exist.
    BundleMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The path exists but is not laid out as a VST3 bundle.
    NotABundle {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle has no library where VST3 puts it on Linux.
    LibraryMissing {
        /// The bundle.
        bundle: PathBuf,
        /// Where the library should be.
        expected: PathBuf,
        /// Libraries found in that folder instead, if any.
        found: Vec<String>,
    },
    /// `dlopen` refused the library.
    LoadFailed {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A required entry point is not exported.
    MissingEntryPoint {
        /// The library.
        path: PathBuf,
        /// The symbol.
        symbol: &'static str,
    },
    /// An entry point returned failure (`false` or a null factory).
    EntryPointFailed {
        /// The library.
        path: PathBuf,
        /// The symbol.
        symbol: &'static str,
    },
    /// The factory lists no class this host can play.
    NoAudioClass {
        /// The library.
        path: PathBuf,
        /// The classes it lists, as `name (category)`.
        found: Vec<String>,
    },
    /// `createInstance` refused.
    CreateFailed {
        /// What was being created.
        what: String,
        /// The result code.
        code: tresult,
    },
    /// An object lacks an interface the host needs.
    MissingInterface {
        /// The object.
        object: &'static str,
        /// The interface.
        interface: &'static str,
    },
    /// A plugin call returned an error code.
    Refused {
        /// The call (`"setupProcessing"`, ...).
        call: &'static str,
        /// The result code.
        code: tresult,
    },
    /// `process` was called before `setup_processing`.
    NotSetUp,
    /// A block longer than the setup's maximum.
    BlockTooLarge {
        /// Frames asked for.
        frames: usize,
        /// The setup's maximum.
        max: usize,
    },
    /// A main-thread call made on another thread.
    WrongThread {
        /// The call.
        call: &'static str,
    },
    /// A MIDI file that cannot be read.
    MidiFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A note list that does not parse.
    NoteSyntax {
        /// The offending text.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad command-line or setup value.
    BadValue {
        /// The option or field.
        name: String,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// The WAV file could not be written.
    Wav {
        /// The file.
        path: PathBuf,
        /// The writer's message.
        reason: String,
    },
}

/// The name of a VST3 result code, for messages.
pub fn result_name(code: tresult) -> String {
    use vst3::Steinberg::*;
    let name = match code {
        c if c == kResultOk => "kResultOk",
        c if c == kResultFalse => "kResultFalse",
        c if c == kInvalidArgument => "kInvalidArgument",
        c if c == kNotImplemented => "kNotImplemented",
        c if c == kInternalError => "kInternalError",
        c if c == kNotInitialized => "kNotInitialized",
        c if c == kOutOfMemory => "kOutOfMemory",
        c if c == kNoInterface => "kNoInterface",
        _ => return format!("result {code}"),
    };
    name.to_owned()
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BundleMissing { path } => write!(
                f,
                "{} does not exist; give the path of a VST3 bundle folder such as \
                 target/bundle/TrioSynth.vst3 (build it with `cargo xtask bundle`)",
                path.display()
            ),
            Self::NotABundle { path, reason } => write!(
                f,
                "{} is not a VST3 bundle: {reason}; a bundle is a folder <Name>.vst3 holding \
                 Contents/x86_64-linux/<Name>.so",
                path.display()
            ),
            Self::LibraryMissing { bundle, expected, found } => {
                write!(f, "the bundle {} has no {}", bundle.display(), expected.display())?;
                if found.is_empty() {
                    write!(f, "; rebuild the bundle")
                } else {
                    write!(
                        f,
                        " (that folder holds {}); the library must be named like the bundle folder, \
                         so rename one or rebuild the bundle",
                        found.join(", ")
                    )
                }
            }
            Self::LoadFailed { path, message } => write!(
                f,
                "could not load {}: {message}; check that it was built for this machine and \
                 that the libraries it needs are present",
                path.display()
            ),
            Self::MissingEntryPoint { path, symbol } => write!(
                f,
                "{} does not export {symbol}, so it is not a VST3 plugin for Linux; build it as \
                 a VST3 plugin",
                path.display()
            ),
            Self::EntryPointFailed { path, symbol } => write!(
                f,
                "{symbol} of {} reported failure; the plugin could not start (its own log lines, \
                 printed above, say why)",
                path.display()
            ),
            Self::NoAudioClass { path, found } => {
                write!(f, "{} offers no audio processor class", path.display())?;
                if found.is_empty() {
                    write!(f, " (its factory lists no classes: check its moduleinfo.json and log lines)")
                } else {
                    write!(f, " (it lists {})", found.join(", "))
                }
            }
            Self::CreateFailed { what, code } => {
                write!(f, "the plugin refused to create {what} ({}); its log lines say why", result_name(*code))
            }
            Self::MissingInterface { object, interface } => {
                write!(f, "the plugin's {object} does not implement {interface}, which this host needs")
            }
            Self::Refused { call, code } => write!(f, "the plugin's {call} returned {}", result_name(*code)),
            Self::NotSetUp => write!(f, "process was called before setup_processing; set the plugin up first"),
            Self::BlockTooLarge { frames, max } => write!(
                f,
                "a block of {frames} frames is more than the {max} given to setup_processing; \
                 split it or set the plugin up with a larger block"
            ),
            Self::WrongThread { call } => {
                write!(f, "{call} must run on the thread that created the plugin (the host's main thread)")
            }
            Self::MidiFile { path, reason } => {
                write!(f, "cannot read the MIDI file {}: {reason}; give a standard MIDI file (.mid)", path.display())
            }
            Self::NoteSyntax { text, reason } => write!(
                f,
                "cannot read the note {text:?}: {reason}; write notes as PITCH@START+LENGTH \
                 (seconds), optionally :VELOCITY, separated by commas, e.g. \"60@0.0+1.0,64@0.5+1.0:0.7\""
            ),
            Self::BadValue { name, value, expected } => write!(f, "{name} {value:?} is not valid: {expected}"),
            Self::Wav { path, reason } => {
                write!(f, "cannot write {}: {reason}; check that the folder exists and is writable", path.display())
            }
        }
    }
}

impl std::error::Error for HostError {}
