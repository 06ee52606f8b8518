//! Reading a built library: its exported symbols and its module descriptor, straight from
//! the ELF file (the `object` crate, no `nm`).
//!
//! # Which symbols count as exports
//!
//! A Rust `cdylib` is linked with a version script that keeps only the items marked
//! `#[unsafe(no_mangle)]` (or `#[unsafe(export_name)]`) global; everything else, including
//! every mangled Rust symbol, becomes local. So the dynamic symbol table (`.dynsym`) holds:
//!
//! 1. undefined symbols the library imports (`malloc`, `dlopen`, weak `__cxa_finalize`, ...);
//! 2. the crate's own exports;
//! 3. depending on the linker and toolchain version, a few symbols of the toolchain itself:
//!    the linker's `_init`, `_fini`, `__bss_start`, `_edata`, `_end`, and on older Rust
//!    `rust_eh_personality` and the allocator shims (`__rust_*`, `__rdl_*`, `__rg_*`).
//!
//! An export is therefore a `.dynsym` entry that is **defined** (not undefined),
//! **global or weak** with **default or protected visibility** (object's
//! [`SymbolScope::Dynamic`]), of kind **function, data or thread-local**, and whose name
//! is not one of group 3 ([`is_toolchain_symbol`]). Section and file symbols, and the
//! linker's untyped markers, are never exports. A mangled Rust name (`_ZN...`, `_R...`)
//! that passes these rules is reported as an export: it can only be there because
//! something asked for it, and `build.yaml` should say so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::{Architecture, BinaryFormat, Object, ObjectKind, ObjectSection, ObjectSymbol, SymbolKind, SymbolScope};
use trio::abi::{AreaLayout, ModuleDescriptor};

/// Whether `name` is one of the toolchain's own symbols that any shared object may
/// export, rather than one of the crate's (group 3 in the [module docs](self)).
///
/// # Examples
/// ```
/// assert!(trio_xtask::elf::is_toolchain_symbol("_fini"));
/// assert!(trio_xtask::elf::is_toolchain_symbol("__rust_alloc"));
/// assert!(!trio_xtask::elf::is_toolchain_symbol("trio_engine_process"));
/// ```
pub fn is_toolchain_symbol(name: &str) -> bool {
    const EXACT: &[&str] = &["_init", "_fini", "__bss_start", "_edata", "_end", "rust_eh_personality"];
    const PREFIXES: &[&str] = &["__rust_", "__rdl_", "__rg_"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A built shared library, read into memory.
pub struct Library {
    /// Where it was read from.
    pub path: PathBuf,
    data: Vec<u8>,
}

impl Library {
    /// Reads the library at `path` and checks that it is an x86-64 ELF shared object.
    ///
    /// # Errors
    /// The file cannot be read, is not ELF, is not a shared object, or is for another
    /// machine.
    pub fn read(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("cannot read the library {}", path.display()))?;
        let library = Self { path: path.to_owned(), data };
        let file = library.parse()?;
        if file.format() != BinaryFormat::Elf || file.kind() != ObjectKind::Dynamic {
            bail!(
                "{} is not an ELF shared library (it is {:?} {:?}): is the crate a `cdylib`?",
                path.display(),
                file.format(),
                file.kind()
            );
        }
        if file.architecture() != Architecture::X86_64 {
            bail!("{} is built for {:?}, not x86_64", path.display(), file.architecture());
        }
        Ok(library)
    }

    /// The library's size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn parse(&self) -> Result<object::File<'_>> {
        object::File::parse(&*self.data).with_context(|| format!("{} is not a valid object file", self.path.display()))
    }

    /// The names the library exports, by the rule in the [module docs](self).
    ///
    /// # Errors
    /// The file cannot be parsed, or a symbol name is not UTF-8.
    pub fn exports(&self) -> Result<BTreeSet<String>> {
        let file = self.parse()?;
        let mut names = BTreeSet::new();
        for symbol in file.dynamic_symbols() {
            if symbol.is_undefined()
                || symbol.scope() != SymbolScope::Dynamic
                || !matches!(symbol.kind(), SymbolKind::Text | SymbolKind::Data | SymbolKind::Tls)
            {
                continue;
            }
            let name = symbol
                .name()
                .with_context(|| format!("{}: a dynamic symbol's name is not UTF-8", self.path.display()))?;
            if !name.is_empty() && !is_toolchain_symbol(name) {
                names.insert(name.to_owned());
            }
        }
        Ok(names)
    }

    /// The module descriptor the library exports under `symbol_name` (the engine's or the
    /// control module's descriptor symbol), decoded from the file's bytes (the library is
    /// not loaded).
    ///
    /// # Errors
    /// The symbol is missing, has the wrong size, or has no bytes in the file.
    pub fn descriptor(&self, symbol_name: &str) -> Result<ModuleDescriptor> {
        #[allow(non_snake_case)]
        let DESCRIPTOR_SYMBOL = symbol_name;
        let file = self.parse()?;
        let path = self.path.display();
        let symbol = file
            .dynamic_symbols()
            .find(|s| s.name() == Ok(DESCRIPTOR_SYMBOL) && !s.is_undefined())
            .with_context(|| format!("{path} does not export the module descriptor `{DESCRIPTOR_SYMBOL}`"))?;
        let size = core::mem::size_of::<ModuleDescriptor>();
        if symbol.size() != size as u64 {
            bail!(
                "{path}: `{DESCRIPTOR_SYMBOL}` is {} bytes, but a ModuleDescriptor is {size}: the module was built \
                 with another version of the Trio SDK; rebuild it",
                symbol.size()
            );
        }
        let index = symbol.section_index().with_context(|| format!("{path}: `{DESCRIPTOR_SYMBOL}` has no section"))?;
        let section = file.section_by_index(index)?;
        let bytes = section
            .data_range(symbol.address(), size as u64)
            .with_context(|| format!("{path}: cannot read `{DESCRIPTOR_SYMBOL}`"))?
            .with_context(|| {
                format!("{path}: `{DESCRIPTOR_SYMBOL}` lies in a section without file data (is it a `static mut`?)")
            })?;
        Ok(decode_descriptor(bytes, file.is_little_endian()))
    }
}

/// Decodes a descriptor from its bytes, at the field offsets of this build's
/// [`ModuleDescriptor`].
fn decode_descriptor(bytes: &[u8], little_endian: bool) -> ModuleDescriptor {
    use core::mem::offset_of;
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap_or_default();
        if little_endian { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    };
    let u64_at = |at: usize| {
        let b: [u8; 8] = bytes[at..at + 8].try_into().unwrap_or_default();
        if little_endian { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) }
    };
    let array = |at: usize, out: &mut [u8]| out.copy_from_slice(&bytes[at..at + out.len()]);
    let mut d = ModuleDescriptor::new(0, 0, AreaLayout::default(), "", "");
    array(offset_of!(ModuleDescriptor, magic), &mut d.magic);
    d.abi_version = u32_at(offset_of!(ModuleDescriptor, abi_version));
    d.kind = u32_at(offset_of!(ModuleDescriptor, kind));
    d.layout_hash = u64_at(offset_of!(ModuleDescriptor, layout_hash));
    d.alloc_policy = u32_at(offset_of!(ModuleDescriptor, alloc_policy));
    d.reserved = u32_at(offset_of!(ModuleDescriptor, reserved));
    let area = offset_of!(ModuleDescriptor, area);
    d.area = AreaLayout {
        hash: u64_at(area + offset_of!(AreaLayout, hash)),
        size: u64_at(area + offset_of!(AreaLayout, size)),
        align: u64_at(area + offset_of!(AreaLayout, align)),
    };
    array(offset_of!(ModuleDescriptor, name), &mut d.name);
    array(offset_of!(ModuleDescriptor, version), &mut d.version);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_descriptor_from_its_bytes() {
        let area = AreaLayout { hash: 0x1234_5678_9abc_def0, size: 4096, align: 64 };
        let d = ModuleDescriptor::new(2, 1, area, "control", "1.2.3");
        // SAFETY: `ModuleDescriptor` is `#[repr(C)]` plain data without padding (8 + 4 + 4
        // + 8 + 4 + 4 + 24 + 32 + 32 = 120 bytes, all initialised), so viewing it as bytes is
        // sound.
        let bytes = unsafe {
            core::slice::from_raw_parts((&d as *const ModuleDescriptor).cast::<u8>(), size_of::<ModuleDescriptor>())
        };
        let back = decode_descriptor(bytes, cfg!(target_endian = "little"));
        assert_eq!(back.magic, d.magic);
        assert_eq!((back.abi_version, back.kind, back.layout_hash), (d.abi_version, 2, d.layout_hash));
        assert_eq!((back.alloc_policy, back.name_str(), back.version_str()), (1, "control", "1.2.3"));
        assert_eq!(back.area, area);
    }
}
