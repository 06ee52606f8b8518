//! Loading the engine and control libraries and checking them against this bridge.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libloading::Library;
use shared::abi::{self, ABI_VERSION, DESCRIPTOR_MAGIC, ModuleDescriptor, engine, module_kind};
use shared::layout::LAYOUT_HASH;

use crate::error::LoadError;
use crate::worker::ControlWorker;

/// File name of the engine inside a bundle's binary folder.
pub const ENGINE_FILE: &str = "rt_engine.so";
/// File name of the control module inside a bundle's binary folder.
pub const CONTROL_FILE: &str = "control.so";

/// Where the two modules are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModulePaths {
    /// The real-time engine library.
    pub engine: PathBuf,
    /// The control library.
    pub control: PathBuf,
}

impl ModulePaths {
    /// The modules in `dir` under their bundle names (`rt_engine.so`, `control.so`).
    pub fn in_dir(dir: &Path) -> Self {
        Self { engine: dir.join(ENGINE_FILE), control: dir.join(CONTROL_FILE) }
    }

    /// The modules beside the library this code is running in (the bridge inside its
    /// bundle), found with `dladdr`.
    ///
    /// # Errors
    /// [`LoadError::NotFound`] if the bridge's own file cannot be determined.
    pub fn beside_bridge() -> Result<Self, LoadError> {
        match crate::own_library_path() {
            Some(path) => Ok(Self::in_dir(path.parent().unwrap_or(Path::new(".")))),
            None => Err(LoadError::NotFound { module: "bridge", path: PathBuf::from("<unknown>") }),
        }
    }
}

/// The engine's exported functions.
#[derive(Clone, Copy)]
pub(crate) struct EngineFns {
    pub create: engine::CreateFn,
    pub destroy: engine::DestroyFn,
    pub activate: engine::ActivateFn,
    pub reset: engine::ResetFn,
    pub process: engine::ProcessFn,
}

/// The loaded engine library.
pub struct EngineModule {
    pub(crate) fns: EngineFns,
    descriptor: ModuleDescriptor,
    path: PathBuf,
    // Dropped last: the function pointers above point into it.
    _library: Library,
}

impl EngineModule {
    /// Loads and checks the engine at `path`.
    ///
    /// # Errors
    /// [`LoadError`] naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        const MODULE: &str = "rt_engine";
        let library = open_library(MODULE, path)?;
        let descriptor = check_descriptor(&library, MODULE, path, module_kind::ENGINE)?;
        check_exports(&library, MODULE, path, engine::EXPORTS)?;
        // SAFETY: every symbol below was checked to exist, and the descriptor says this
        // library was built against this ABI version and layout, where these names have
        // exactly these signatures (shared::abi::engine). The pointers are used only
        // while `library` is loaded: it is stored beside them and dropped last.
        let fns = unsafe {
            EngineFns {
                create: symbol(&library, MODULE, path, "rt_create")?,
                destroy: symbol(&library, MODULE, path, "rt_destroy")?,
                activate: symbol(&library, MODULE, path, "rt_activate")?,
                reset: symbol(&library, MODULE, path, "rt_reset")?,
                process: symbol(&library, MODULE, path, "rt_process")?,
            }
        };
        Ok(Self { fns, descriptor, path: path.to_owned(), _library: library })
    }

    /// The engine's descriptor.
    pub fn descriptor(&self) -> &ModuleDescriptor {
        &self.descriptor
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The loaded control library, with the worker thread that runs every call into it.
pub struct ControlModule {
    pub(crate) worker: ControlWorker,
    descriptor: ModuleDescriptor,
    path: PathBuf,
}

impl ControlModule {
    /// Starts a control worker and loads and checks the control module at `path` on it.
    ///
    /// # Errors
    /// [`LoadError`] naming the file and what is wrong with it; the worker is stopped.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let (worker, descriptor) = ControlWorker::start(path.to_owned())?;
        Ok(Self { worker, descriptor, path: path.to_owned() })
    }

    /// The control module's descriptor.
    pub fn descriptor(&self) -> &ModuleDescriptor {
        &self.descriptor
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets how long each call may take before the module is treated as hung
    /// (default [`crate::DEFAULT_CALL_TIMEOUT`]).
    pub fn set_call_timeout(&self, timeout: std::time::Duration) {
        self.worker.set_timeout(timeout);
    }
}

/// Both modules, loaded and checked.
pub struct Modules {
    /// The engine.
    pub engine: Arc<EngineModule>,
    /// The control module.
    pub control: Arc<ControlModule>,
}

impl Modules {
    /// Loads and checks both modules.
    ///
    /// # Errors
    /// The first [`LoadError`] met; nothing stays loaded.
    pub fn load(paths: &ModulePaths) -> Result<Arc<Self>, LoadError> {
        let engine = EngineModule::load(&paths.engine)?;
        let control = ControlModule::load(&paths.control)?;
        Ok(Arc::new(Self { engine: Arc::new(engine), control: Arc::new(control) }))
    }
}

/// Opens a library, mapping "file not there" and loader errors to clear messages.
pub(crate) fn open_library(module: &'static str, path: &Path) -> Result<Library, LoadError> {
    if !path.is_file() {
        return Err(LoadError::NotFound { module, path: path.to_owned() });
    }
    crate::elf::check_shared_object(path).map_err(|reason| LoadError::Open {
        module,
        path: path.to_owned(),
        reason,
    })?;
    // SAFETY: loading runs the library's initialisers. The file is one of this plugin's
    // own modules (from its bundle folder or a path the caller chose); Rust cdylibs built
    // with this framework have no initialisers beyond the standard library's.
    unsafe { Library::new(path) }.map_err(|e| LoadError::Open { module, path: path.to_owned(), reason: e.to_string() })
}

/// Reads and checks the descriptor: magic, kind, ABI version, layout hash.
pub(crate) fn check_descriptor(
    library: &Library,
    module: &'static str,
    path: &Path,
    kind: u32,
) -> Result<ModuleDescriptor, LoadError> {
    let symbol = format!("{}\0", abi::DESCRIPTOR_SYMBOL);
    // SAFETY: the symbol is a static `ModuleDescriptor` in modules of this framework. Its
    // first 8 bytes are checked against the magic before any other field is trusted; all
    // fields are plain integers and byte arrays, valid for any bit pattern. The copy is
    // made while the library is loaded.
    let descriptor = unsafe {
        let symbol = library
            .get::<*const ModuleDescriptor>(symbol.as_bytes())
            .map_err(|e| missing(module, path, abi::DESCRIPTOR_SYMBOL, e))?;
        let ptr: *const ModuleDescriptor = *symbol;
        if ptr.is_null() {
            return Err(LoadError::BadDescriptor { module, path: path.to_owned() });
        }
        ptr.read_unaligned()
    };
    if descriptor.magic != DESCRIPTOR_MAGIC {
        return Err(LoadError::BadDescriptor { module, path: path.to_owned() });
    }
    if descriptor.abi_version != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            module,
            path: path.to_owned(),
            found: descriptor.abi_version,
            expected: ABI_VERSION,
        });
    }
    if descriptor.layout_hash != LAYOUT_HASH {
        return Err(LoadError::LayoutHash {
            module,
            path: path.to_owned(),
            found: descriptor.layout_hash,
            expected: LAYOUT_HASH,
        });
    }
    if descriptor.kind != kind {
        return Err(LoadError::WrongKind { module, path: path.to_owned(), found: descriptor.kind });
    }
    Ok(descriptor)
}

/// Checks that every name in `exports` resolves.
pub(crate) fn check_exports(
    library: &Library,
    module: &'static str,
    path: &Path,
    exports: &[&str],
) -> Result<(), LoadError> {
    for name in exports {
        let symbol = format!("{name}\0");
        // SAFETY: only the symbol's address is looked up; it is not called or read here.
        unsafe { library.get::<*const ()>(symbol.as_bytes()) }.map_err(|e| missing(module, path, name, e))?;
    }
    Ok(())
}

fn missing(module: &'static str, path: &Path, symbol: &str, _error: libloading::Error) -> LoadError {
    LoadError::MissingSymbol { module, path: path.to_owned(), symbol: symbol.to_owned() }
}

/// Looks up export `name` as a value of type `T` (a function pointer).
///
/// # Safety
/// `T` must be the export's real type, and the value must not be used after `library`
/// is unloaded.
pub(crate) unsafe fn symbol<T: Copy>(
    library: &Library,
    module: &'static str,
    path: &Path,
    name: &str,
) -> Result<T, LoadError> {
    let c_name = format!("{name}\0");
    // SAFETY: the caller guarantees `T` is the symbol's type.
    unsafe { library.get::<T>(c_name.as_bytes()) }.map(|s| *s).map_err(|e| missing(module, path, name, e))
}
