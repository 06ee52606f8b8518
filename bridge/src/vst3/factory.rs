//! The plugin factory: `IPluginFactory`, `IPluginFactory2`, `IPluginFactory3`. It reports
//! the configuration the bridge was built with and nothing else.

use std::ffi::c_void;

use vst3::Steinberg::*;
use vst3::{Class, ComWrapper};

use super::util::{copy_cstr, copy_wstr, guard};
use super::{TrioPlugin, modules};
use crate::PluginConfig;

/// `Class Flags` of the class: `Vst::kDistributable`.
const CLASS_FLAGS: u32 = 1;
/// `Cardinality`: `kManyInstances`.
const MANY_INSTANCES: i32 = 0x7FFF_FFFF;

/// The factory of one plugin: a single class, the plugin object.
pub(crate) struct Factory {
    pub(crate) config: &'static PluginConfig,
}

impl Class for Factory {
    type Interfaces = (IPluginFactory, IPluginFactory2, IPluginFactory3);
}

impl IPluginFactoryTrait for Factory {
    unsafe fn getFactoryInfo(&self, info: *mut PFactoryInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PFactoryInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            copy_cstr(self.config.vendor, &mut out.vendor);
            copy_cstr(self.config.url, &mut out.url);
            copy_cstr(self.config.email, &mut out.email);
            out.flags = PFactoryInfo_::FactoryFlags_::kUnicode as int32;
            kResultOk
        })
    }

    unsafe fn countClasses(&self) -> int32 {
        1
    }

    unsafe fn getClassInfo(&self, index: int32, info: *mut PClassInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PClassInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            if index != 0 {
                return kInvalidArgument;
            }
            out.cid = self.config.class_id.map(|b| b as _);
            out.cardinality = MANY_INSTANCES;
            copy_cstr(self.config.category(), &mut out.category);
            copy_cstr(self.config.name, &mut out.name);
            kResultOk
        })
    }

    unsafe fn createInstance(&self, cid: FIDString, iid: FIDString, obj: *mut *mut c_void) -> tresult {
        guard(|| {
            if cid.is_null() || iid.is_null() || obj.is_null() {
                return kInvalidArgument;
            }
            // SAFETY: `obj` is non-null and points to the host's out pointer.
            unsafe { *obj = std::ptr::null_mut() };
            // SAFETY: `cid` points to a 16-byte TUID (VST3 contract).
            let wanted = unsafe { *(cid as *const [u8; 16]) };
            if wanted != self.config.class_id {
                return kNoInterface;
            }
            let Ok(modules) = modules(self.config) else { return kResultFalse };
            let plugin = match TrioPlugin::new(self.config, &modules) {
                Ok(p) => p,
                Err(e) => {
                    log::error!("{}: could not create an instance: {e}", self.config.name);
                    return kResultFalse;
                }
            };
            let Some(unknown) = ComWrapper::new(plugin).to_com_ptr::<FUnknown>() else { return kResultFalse };
            let ptr = unknown.as_ptr();
            // SAFETY: `ptr` is a live object we own a reference to (released when
            // `unknown` drops); `iid` points to a TUID; `obj` is the host's out pointer.
            unsafe { ((*(*ptr).vtbl).queryInterface)(ptr, iid as *mut TUID, obj) }
        })
    }
}

/// Fills the fields `PClassInfo2` and `PClassInfoW` share; `$text` copies the name,
/// vendor and version strings (8-bit for the former, UTF-16 for the latter).
macro_rules! fill_class_info {
    ($out:expr, $config:expr, $text:ident) => {{
        let (out, config) = ($out, $config);
        out.cid = config.class_id.map(|b| b as _);
        out.cardinality = MANY_INSTANCES;
        copy_cstr(config.category(), &mut out.category);
        $text(config.name, &mut out.name);
        out.classFlags = CLASS_FLAGS;
        copy_cstr(config.sub_categories, &mut out.subCategories);
        $text(config.vendor, &mut out.vendor);
        $text(config.version, &mut out.version);
        $text(PluginConfig::SDK_VERSION, &mut out.sdkVersion);
    }};
}

impl IPluginFactory2Trait for Factory {
    unsafe fn getClassInfo2(&self, index: int32, info: *mut PClassInfo2) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PClassInfo2` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            if index != 0 {
                return kInvalidArgument;
            }
            fill_class_info!(out, self.config, copy_cstr);
            kResultOk
        })
    }
}

impl IPluginFactory3Trait for Factory {
    unsafe fn getClassInfoUnicode(&self, index: int32, info: *mut PClassInfoW) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PClassInfoW` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            if index != 0 {
                return kInvalidArgument;
            }
            fill_class_info!(out, self.config, copy_wstr);
            kResultOk
        })
    }

    unsafe fn setHostContext(&self, _context: *mut FUnknown) -> tresult {
        kResultOk
    }
}
