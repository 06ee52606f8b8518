//! Loading a bundle: the library at `Contents/x86_64-linux/<Name>.so`, its entry points
//! and its factory.

use std::ffi::c_void;
use std::path::{Path, PathBuf};

use vst3::ComPtr;
use vst3::Steinberg::*;

use crate::com::{c_str, w_str};
use crate::error::HostError;

/// The factory's own description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactoryInfo {
    /// Vendor.
    pub vendor: String,
    /// Vendor URL.
    pub url: String,
    /// Vendor e-mail.
    pub email: String,
    /// `PFactoryInfo` flags.
    pub flags: i32,
}

/// One class the factory lists (from `IPluginFactory`, completed from
/// `IPluginFactory2`/`3` when the factory offers them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// Class id.
    pub cid: [u8; 16],
    /// `"Audio Module Class"`, `"Component Controller Class"`, ...
    pub category: String,
    /// Display name.
    pub name: String,
    /// Cardinality.
    pub cardinality: i32,
    /// Sub-categories (`"Instrument|Synth"`); empty without `IPluginFactory2`.
    pub sub_categories: String,
    /// Vendor; empty without `IPluginFactory2`.
    pub vendor: String,
    /// Version; empty without `IPluginFactory2`.
    pub version: String,
    /// SDK version; empty without `IPluginFactory2`.
    pub sdk_version: String,
    /// Class flags; 0 without `IPluginFactory2`.
    pub class_flags: u32,
}

impl ClassInfo {
    /// Whether this is an audio processor class (`"Audio Module Class"`).
    pub fn is_audio_module(&self) -> bool {
        self.category == "Audio Module Class"
    }
}

type ModuleExitFn = unsafe extern "system" fn() -> bool;

/// A loaded VST3 module: the bridge library and its factory. `ModuleExit` is called when
/// it is dropped, after every object made from it is gone (each [`crate::Plugin`] holds an
/// `Arc` to its module).
pub struct Module {
    bundle: PathBuf,
    library_path: PathBuf,
    factory: Option<ComPtr<IPluginFactory>>,
    exit: Option<ModuleExitFn>,
    // Dropped last: everything above points into it.
    _library: libloading::Library,
}

impl Module {
    /// Loads the bundle at `bundle` (a `<Name>.vst3` folder) the way a Linux host does:
    /// `dlopen` of `Contents/x86_64-linux/<Name>.so`, `ModuleEntry`, `GetPluginFactory`.
    ///
    /// # Errors
    /// [`HostError`] naming the path and what is wrong: missing, not a bundle, no library,
    /// a library that does not load, missing or failing entry points.
    pub fn load(bundle: &Path) -> Result<Self, HostError> {
        let library_path = library_path(bundle)?;
        // SAFETY: loading a library runs its initialisers; a VST3 plugin is made to be
        // loaded by a host this way.
        let library = unsafe { libloading::Library::new(&library_path) }
            .map_err(|e| HostError::LoadFailed { path: library_path.clone(), message: e.to_string() })?;
        let missing = |symbol| HostError::MissingEntryPoint { path: library_path.clone(), symbol };
        let failed = |symbol| HostError::EntryPointFailed { path: library_path.clone(), symbol };
        // SAFETY: the VST3 Linux entry points have these signatures; the symbols are used
        // only while `library` is alive (they are kept in the same struct, dropped first).
        unsafe {
            let entry = library
                .get::<unsafe extern "system" fn(*mut c_void) -> bool>(b"ModuleEntry\0")
                .map_err(|_| missing("ModuleEntry"))?;
            let exit = *library.get::<ModuleExitFn>(b"ModuleExit\0").map_err(|_| missing("ModuleExit"))?;
            let get_factory = library
                .get::<unsafe extern "system" fn() -> *mut IPluginFactory>(b"GetPluginFactory\0")
                .map_err(|_| missing("GetPluginFactory"))?;
            if !entry(std::ptr::null_mut()) {
                return Err(failed("ModuleEntry"));
            }
            // `GetPluginFactory` returns a new reference, which `from_raw` takes over.
            let Some(factory) = ComPtr::from_raw(get_factory()) else {
                exit();
                return Err(failed("GetPluginFactory"));
            };
            Ok(Self {
                bundle: bundle.to_path_buf(),
                library_path,
                factory: Some(factory),
                exit: Some(exit),
                _library: library,
            })
        }
    }

    /// The bundle folder.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The library inside it.
    pub fn library_path(&self) -> &Path {
        &self.library_path
    }

    /// The plugin factory.
    pub fn factory(&self) -> &ComPtr<IPluginFactory> {
        // Only `Drop` takes it.
        self.factory.as_ref().unwrap_or_else(|| unreachable!("the factory is only taken on drop"))
    }

    /// The factory's description.
    ///
    /// # Errors
    /// [`HostError::Refused`] if the factory refuses.
    pub fn factory_info(&self) -> Result<FactoryInfo, HostError> {
        // SAFETY: plain data, filled by the factory.
        let mut info: PFactoryInfo = unsafe { std::mem::zeroed() };
        // SAFETY: a valid factory and out struct.
        let code = unsafe { self.factory().getFactoryInfo(&mut info) };
        if code != kResultOk {
            return Err(HostError::Refused { call: "getFactoryInfo", code });
        }
        Ok(FactoryInfo {
            vendor: c_str(&info.vendor),
            url: c_str(&info.url),
            email: c_str(&info.email),
            flags: info.flags,
        })
    }

    /// Every class the factory lists.
    pub fn classes(&self) -> Vec<ClassInfo> {
        let factory = self.factory();
        let f2 = factory.cast::<IPluginFactory2>();
        let f3 = factory.cast::<IPluginFactory3>();
        // SAFETY: a valid factory.
        let count = unsafe { factory.countClasses() };
        let mut classes = Vec::new();
        for index in 0..count.max(0) {
            // SAFETY: plain data, filled by the factory.
            let mut info: PClassInfo = unsafe { std::mem::zeroed() };
            // SAFETY: a valid factory and out struct.
            if unsafe { factory.getClassInfo(index, &mut info) } != kResultOk {
                continue;
            }
            let mut class = ClassInfo {
                cid: info.cid.map(|b| b as u8),
                category: c_str(&info.category),
                name: c_str(&info.name),
                cardinality: info.cardinality,
                sub_categories: String::new(),
                vendor: String::new(),
                version: String::new(),
                sdk_version: String::new(),
                class_flags: 0,
            };
            if let Some(f2) = &f2 {
                // SAFETY: plain data, filled by the factory.
                let mut info2: PClassInfo2 = unsafe { std::mem::zeroed() };
                // SAFETY: a valid factory and out struct.
                if unsafe { f2.getClassInfo2(index, &mut info2) } == kResultOk {
                    class.sub_categories = c_str(&info2.subCategories);
                    class.vendor = c_str(&info2.vendor);
                    class.version = c_str(&info2.version);
                    class.sdk_version = c_str(&info2.sdkVersion);
                    class.class_flags = info2.classFlags;
                }
            }
            if let Some(f3) = &f3 {
                // SAFETY: plain data, filled by the factory.
                let mut infow: PClassInfoW = unsafe { std::mem::zeroed() };
                // SAFETY: a valid factory and out struct.
                if unsafe { f3.getClassInfoUnicode(index, &mut infow) } == kResultOk {
                    class.name = w_str(&infow.name);
                    class.vendor = w_str(&infow.vendor);
                    class.version = w_str(&infow.version);
                }
            }
            classes.push(class);
        }
        classes
    }

    /// The first audio processor class.
    ///
    /// # Errors
    /// [`HostError::NoAudioClass`] listing what the factory offers instead.
    pub fn audio_class(&self) -> Result<ClassInfo, HostError> {
        let classes = self.classes();
        classes.iter().find(|c| c.is_audio_module()).cloned().ok_or_else(|| HostError::NoAudioClass {
            path: self.library_path.clone(),
            found: classes.iter().map(|c| format!("{} ({})", c.name, c.category)).collect(),
        })
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // Release the factory before `ModuleExit`, and both before the library unloads.
        self.factory = None;
        if let Some(exit) = self.exit.take() {
            // SAFETY: the library is still loaded; every object made from it is gone (the
            // plugins hold an `Arc<Module>`).
            unsafe { exit() };
        }
    }
}

/// `<bundle>/Contents/x86_64-linux/<Name>.so`, checked.
fn library_path(bundle: &Path) -> Result<PathBuf, HostError> {
    if !bundle.exists() {
        return Err(HostError::BundleMissing { path: bundle.to_path_buf() });
    }
    let not_a_bundle = |reason: &str| HostError::NotABundle { path: bundle.to_path_buf(), reason: reason.to_owned() };
    if !bundle.is_dir() {
        return Err(not_a_bundle("it is a file, not a folder"));
    }
    if bundle.extension().and_then(|e| e.to_str()) != Some("vst3") {
        return Err(not_a_bundle("its name does not end in .vst3"));
    }
    let Some(name) = bundle.file_stem().and_then(|s| s.to_str()) else {
        return Err(not_a_bundle("its name is not valid text"));
    };
    let arch_dir = bundle.join("Contents").join(format!("{}-linux", std::env::consts::ARCH));
    if !arch_dir.is_dir() {
        return Err(not_a_bundle(&format!("it has no Contents/{}-linux folder", std::env::consts::ARCH)));
    }
    let expected = arch_dir.join(format!("{name}.so"));
    if !expected.is_file() {
        let mut found: Vec<String> = std::fs::read_dir(&arch_dir)
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".so"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        return Err(HostError::LibraryMissing { bundle: bundle.to_path_buf(), expected, found });
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trio-host-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn error(path: &Path) -> HostError {
        match Module::load(path) {
            Err(e) => e,
            Ok(_) => panic!("{} loaded", path.display()),
        }
    }

    #[test]
    fn a_missing_bundle_is_named() {
        let e = error(Path::new("/nonexistent/Synth.vst3"));
        assert!(matches!(e, HostError::BundleMissing { .. }));
        assert!(e.to_string().contains("/nonexistent/Synth.vst3 does not exist"), "{e}");
    }

    #[test]
    fn a_wrong_layout_says_what_a_bundle_is() {
        let dir = scratch("layout");
        let file = dir.join("Synth.vst3");
        std::fs::write(&file, "x").unwrap();
        assert!(error(&file).to_string().contains("is a file, not a folder"));
        std::fs::remove_file(&file).unwrap();
        let plain = dir.join("Synth");
        std::fs::create_dir_all(&plain).unwrap();
        assert!(error(&plain).to_string().contains("does not end in .vst3"));
        std::fs::create_dir_all(&file).unwrap();
        let msg = error(&file).to_string();
        assert!(msg.contains("no Contents/x86_64-linux folder") && msg.contains("<Name>.so"), "{msg}");
        let bin = file.join("Contents/x86_64-linux");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("Other.so"), "x").unwrap();
        let e = error(&file);
        let msg = e.to_string();
        assert!(matches!(e, HostError::LibraryMissing { .. }));
        assert!(msg.contains("Synth.so") && msg.contains("Other.so") && msg.contains("rename"), "{msg}");
        // A library that is not one.
        std::fs::write(bin.join("Synth.so"), "not a library").unwrap();
        let e = error(&file);
        assert!(matches!(e, HostError::LoadFailed { .. }), "{e}");
        assert!(e.to_string().contains("Synth.so"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
