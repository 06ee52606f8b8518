//! A structural check of a module file before `dlopen` sees it.
//!
//! `dlopen` maps a library's segments without checking that the file really contains
//! them: a truncated library (a build interrupted mid-write, a partial copy) loads, and
//! the process dies with SIGBUS the first time it touches a missing page. So the bridge
//! reads the ELF headers first and refuses a file whose headers or loadable segments
//! reach past its end, or that is not a 64-bit shared object for this machine.

use std::io::Read;
use std::path::Path;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const ET_DYN: u16 = 3;
#[cfg(target_arch = "x86_64")]
const EM_HOST: u16 = 62;
#[cfg(target_arch = "aarch64")]
const EM_HOST: u16 = 183;

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Checks that `path` is a complete 64-bit little-endian ELF shared object for this
/// machine. Returns a sentence saying what is wrong otherwise.
pub(crate) fn check_shared_object(path: &Path) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot read its size: {e}"))?.len();
    let mut header = [0u8; EHDR_SIZE];
    if len < EHDR_SIZE as u64 || file.read_exact(&mut header).is_err() {
        return Err(format!("it is {len} bytes long, too short to be a shared library"));
    }
    if &header[..4] != b"\x7fELF" {
        return Err("it is not an ELF file".to_owned());
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("it is not a 64-bit little-endian ELF file".to_owned());
    }
    if u16_at(&header, 0x10) != ET_DYN {
        return Err("it is an ELF file but not a shared library".to_owned());
    }
    let machine = u16_at(&header, 0x12);
    if machine != EM_HOST {
        return Err(format!("it was built for another CPU (ELF machine {machine}, this one is {EM_HOST})"));
    }
    let truncated = |what: &str, end: u64| {
        format!("it is truncated: its {what} ends at byte {end} but the file has {len} bytes (rebuild it)")
    };
    let shoff = u64_at(&header, 0x28);
    let sh_end = shoff.saturating_add(u64::from(u16_at(&header, 0x3C)) * u64::from(u16_at(&header, 0x3A)));
    if sh_end > len {
        return Err(truncated("section header table", sh_end));
    }
    let phoff = u64_at(&header, 0x20);
    let phnum = u64::from(u16_at(&header, 0x38));
    let ph_end = phoff.saturating_add(phnum * PHDR_SIZE as u64);
    if u16_at(&header, 0x36) as usize != PHDR_SIZE || ph_end > len {
        return Err(truncated("program header table", ph_end));
    }
    let mut table = vec![0u8; (phnum as usize) * PHDR_SIZE];
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    std::io::copy(&mut (&mut file).take(phoff), &mut std::io::sink()).map_err(|e| e.to_string())?;
    file.read_exact(&mut table).map_err(|e| format!("cannot read its program headers: {e}"))?;
    for ph in table.chunks_exact(PHDR_SIZE) {
        if u32_at(ph, 0) == PT_LOAD {
            let end = u64_at(ph, 8).saturating_add(u64_at(ph, 32));
            if end > len {
                return Err(truncated("loadable segment", end));
            }
        }
    }
    Ok(())
}
