//! Errors of the bridge's Rust API, each naming the file, symbol or value involved.

use std::fmt;
use std::path::PathBuf;

/// Why a module could not be loaded. Nothing is loaded when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The module file does not exist.
    NotFound {
        /// Which module ("rt_engine" or "control").
        module: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `dlopen` refused the file (not an ELF file, truncated, missing dependency...).
    Open {
        /// Which module.
        module: &'static str,
        /// The file.
        path: PathBuf,
        /// What the dynamic loader said.
        reason: String,
    },
    /// A required export is missing.
    MissingSymbol {
        /// Which module.
        module: &'static str,
        /// The file.
        path: PathBuf,
        /// The missing symbol.
        symbol: String,
    },
    /// The descriptor does not start with the descriptor magic.
    BadDescriptor {
        /// Which module.
        module: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The descriptor says it is another kind of module.
    WrongKind {
        /// Which module was expected.
        module: &'static str,
        /// The file.
        path: PathBuf,
        /// The kind code found.
        found: u32,
    },
    /// Built for another ABI version.
    AbiVersion {
        /// Which module.
        module: &'static str,
        /// The file.
        path: PathBuf,
        /// The module's version.
        found: u32,
        /// The bridge's version.
        expected: u32,
    },
    /// Built against another block layout.
    LayoutHash {
        /// Which module.
        module: &'static str,
        /// The file.
        path: PathBuf,
        /// The module's hash.
        found: u64,
        /// The bridge's hash.
        expected: u64,
    },
    /// The engine and the control module were built with different plugin areas.
    AreaMismatch {
        /// The engine's file.
        engine: PathBuf,
        /// The control module's file.
        control: PathBuf,
        /// The engine's area.
        engine_area: trio::abi::AreaLayout,
        /// The control module's area.
        control_area: trio::abi::AreaLayout,
    },
    /// The control worker thread could not be started or died while loading.
    Worker {
        /// What happened.
        reason: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REBUILD: &str = "rebuild the bundle so all three libraries come from one build";
        match self {
            Self::NotFound { module, path } => {
                write!(
                    f,
                    "module {module} not found at {}: build the bundle, or check the bundle folder",
                    path.display()
                )
            }
            Self::Open { module, path, reason } => {
                write!(f, "module {module} at {} could not be loaded: {reason}", path.display())
            }
            Self::MissingSymbol { module, path, symbol } => write!(
                f,
                "module {module} at {} does not export `{symbol}`: build it with the Trio SDK's export macro \
                 (trio::export_engine! or trio::export_control!) from the same version of the SDK as the bridge",
                path.display()
            ),
            Self::BadDescriptor { module, path } => write!(
                f,
                "module {module} at {} has no valid module descriptor: it was not built with this framework",
                path.display(),
            ),
            Self::WrongKind { module, path, found } => write!(
                f,
                "the file given as module {module} at {} describes itself as module kind {found}: the engine and control files are swapped or misnamed",
                path.display()
            ),
            Self::AbiVersion { module, path, found, expected } => write!(
                f,
                "module {module} at {} was built for ABI version {found}, but this bridge speaks ABI version {expected}: {REBUILD}",
                path.display()
            ),
            Self::LayoutHash { module, path, found, expected } => write!(
                f,
                "module {module} at {} was built with shared-block layout hash {found:#018x}, but this bridge has layout hash {expected:#018x}: {REBUILD}",
                path.display()
            ),
            Self::AreaMismatch { engine, control, engine_area, control_area } => write!(
                f,
                "the engine at {} was built with a plugin area of hash {:#018x} ({} bytes) but the control module at {} \
                 with {:#018x} ({} bytes): both must use the same area type from the same shared crate; {REBUILD}",
                engine.display(),
                engine_area.hash,
                engine_area.size,
                control.display(),
                control_area.hash,
                control_area.size
            ),
            Self::Worker { reason } => write!(f, "the control worker thread failed: {reason}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Why a call into the control module failed. The call changed nothing unless it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The module returned an error status, with its message.
    Failed {
        /// Which export.
        function: &'static str,
        /// The status code.
        code: i32,
        /// The module's own message (from `control_last_error`), or the status description.
        message: String,
    },
    /// The call did not return within the time limit; the control module is considered
    /// hung and no further calls are made to it.
    Timeout {
        /// Which export.
        function: &'static str,
        /// The limit, milliseconds.
        millis: u64,
    },
    /// The worker is gone (the module hung earlier, or was shut down).
    WorkerGone,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { function, code, message } => write!(f, "{function} failed ({code}): {message}"),
            Self::Timeout { function, millis } => write!(
                f,
                "{function} did not return within {millis} ms; the control module is treated as hung and no longer called"
            ),
            Self::WorkerGone => write!(f, "the control module is no longer available (it hung or was shut down)"),
        }
    }
}

impl std::error::Error for ControlError {}

/// Why an instance could not be created.
#[derive(Debug)]
pub enum InstanceError {
    /// The shared block could not be created.
    Segment(trio::segment::SegmentError),
    /// The engine refused to create an instance.
    Engine {
        /// Status code of the engine's create or activate.
        code: i32,
    },
    /// The control module refused to create an instance.
    Control(ControlError),
    /// Invalid setup values.
    Setup {
        /// Which value and why.
        reason: String,
    },
}

impl fmt::Display for InstanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Segment(e) => write!(f, "{e}"),
            Self::Engine { code } => {
                write!(f, "the engine refused to start ({code}: {})", trio::abi::status::describe(*code))
            }
            Self::Control(e) => write!(f, "the control module refused to start: {e}"),
            Self::Setup { reason } => write!(f, "invalid processing setup: {reason}"),
        }
    }
}

impl std::error::Error for InstanceError {}
