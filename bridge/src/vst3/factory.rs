//! The plugin factory: `IPluginFactory`, `IPluginFactory2`, `IPluginFactory3`.

use std::ffi::c_void;

use vst3::Steinberg::*;
use vst3::{Class, ComWrapper};

use super::util::{copy_cstr, copy_wstr, guard};
use super::{TrioPlugin, bundle, modules};

/// The factory. Stateless: everything comes from the lazily loaded [`super::Bundle`].
pub(crate) struct Factory;

impl Class for Factory {
    type Interfaces = (IPluginFactory, IPluginFactory2, IPluginFactory3);
}

fn class(index: i32) -> Option<&'static super::info::ClassInfo> {
    let info = bundle().info.as_ref().ok()?;
    info.classes.get(usize::try_from(index).ok()?)
}

impl IPluginFactoryTrait for Factory {
    unsafe fn getFactoryInfo(&self, info: *mut PFactoryInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PFactoryInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            let Ok(plugin) = &bundle().info else { return kResultFalse };
            copy_cstr(&plugin.vendor, &mut out.vendor);
            copy_cstr(&plugin.url, &mut out.url);
            copy_cstr(&plugin.email, &mut out.email);
            out.flags = PFactoryInfo_::FactoryFlags_::kUnicode as int32;
            kResultOk
        })
    }

    unsafe fn countClasses(&self) -> int32 {
        super::util::guard_value(0, || bundle().info.as_ref().map_or(0, |i| i.classes.len() as int32))
    }

    unsafe fn getClassInfo(&self, index: int32, info: *mut PClassInfo) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PClassInfo` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            let Some(class) = class(index) else { return kInvalidArgument };
            out.cid = class.cid.map(|b| b as _);
            out.cardinality = class.cardinality;
            copy_cstr(&class.category, &mut out.category);
            copy_cstr(&class.name, &mut out.name);
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
            if !bundle().info.as_ref().is_ok_and(|i| i.classes.iter().any(|c| c.cid == wanted)) {
                return kNoInterface;
            }
            let modules = match modules() {
                Ok(m) => m,
                Err(_) => return kResultFalse,
            };
            let plugin = match TrioPlugin::new(&modules) {
                Ok(p) => p,
                Err(e) => {
                    log::error!("could not create an instance: {e}");
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
    ($out:expr, $class:expr, $text:ident) => {{
        let (out, class) = ($out, $class);
        out.cid = class.cid.map(|b| b as _);
        out.cardinality = class.cardinality;
        copy_cstr(&class.category, &mut out.category);
        $text(&class.name, &mut out.name);
        out.classFlags = class.class_flags;
        copy_cstr(&class.sub_categories, &mut out.subCategories);
        $text(&class.vendor, &mut out.vendor);
        $text(&class.version, &mut out.version);
        $text(&class.sdk_version, &mut out.sdkVersion);
    }};
}

impl IPluginFactory2Trait for Factory {
    unsafe fn getClassInfo2(&self, index: int32, info: *mut PClassInfo2) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PClassInfo2` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            let Some(class) = class(index) else { return kInvalidArgument };
            fill_class_info!(out, class, copy_cstr);
            kResultOk
        })
    }
}

impl IPluginFactory3Trait for Factory {
    unsafe fn getClassInfoUnicode(&self, index: int32, info: *mut PClassInfoW) -> tresult {
        guard(|| {
            // SAFETY: the host passes a valid `PClassInfoW` or null.
            let Some(out) = (unsafe { info.as_mut() }) else { return kInvalidArgument };
            let Some(class) = class(index) else { return kInvalidArgument };
            fill_class_info!(out, class, copy_wstr);
            kResultOk
        })
    }

    unsafe fn setHostContext(&self, _context: *mut FUnknown) -> tresult {
        kResultOk
    }
}
