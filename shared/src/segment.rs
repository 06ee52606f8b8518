//! The shared block's OS shared-memory segment (POSIX `shm_open`, mode 0600).
//!
//! Each instance gets its own segment named `/trio-<pid>-<serial>-<random>`, so two
//! instances (or two plugins built with this framework) in one host never collide, and
//! a segment left behind by a process that died without cleaning up (SIGKILL) can be
//! recognised by its dead `<pid>` and removed. [`BlockSegment::create`] does that sweep
//! before creating a new segment.

use core::sync::atomic::{AtomicU64, Ordering};
use std::fmt;

use shared_memory::{Shmem, ShmemConf, ShmemError};

use crate::abi::AreaLayout;
use crate::block::{SharedBlock, segment_size};

/// Prefix of every segment name this framework creates (without the leading `/`).
pub const SEGMENT_PREFIX: &str = "trio-";

/// Where Linux exposes POSIX shared memory as files.
const SHM_DIR: &str = "/dev/shm";

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Why a segment could not be created.
#[derive(Debug)]
pub enum SegmentError {
    /// `shm_open`/`mmap` failed.
    Create {
        /// The segment name that was tried.
        name: String,
        /// What `shared_memory` reported.
        source: ShmemError,
    },
    /// The mapping is smaller than the block (should never happen).
    TooSmall {
        /// Bytes mapped.
        mapped: usize,
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create { name, source } => write!(
                f,
                "could not create the shared-memory segment {name}: {source} (check that {SHM_DIR} is mounted and writable)"
            ),
            Self::TooSmall { mapped, needed } => {
                write!(f, "the shared-memory mapping has {mapped} bytes but the block needs {needed}")
            }
        }
    }
}

impl std::error::Error for SegmentError {}

/// A shared block in its own OS shared-memory segment, owned by this process: the
/// segment is unlinked when this value is dropped.
pub struct BlockSegment {
    shmem: Shmem,
    /// Set once [`BlockSegment::unlink`] removed the name (the mapping lives on).
    unlinked: std::sync::atomic::AtomicBool,
}

// SAFETY: `Shmem` is not `Send`/`Sync` only because it holds a raw pointer to the
// mapping. The mapping stays valid for the lifetime of the `Shmem` wherever it is moved,
// and all shared access goes through `&SharedBlock`, whose fields are all atomics (or
// rings and seqlocks built from atomics) and therefore safe to use from many threads.
unsafe impl Send for BlockSegment {}
// SAFETY: as above: `&BlockSegment` only hands out `&SharedBlock`, which is `Sync`.
unsafe impl Sync for BlockSegment {}

impl BlockSegment {
    /// Creates a zero-filled segment big enough for a [`SharedBlock`] followed by a plugin
    /// area of layout `area`. The first creation in a process first removes the stale
    /// segments of dead processes (hosts that crashed earlier); later ones do not scan
    /// the folder again (hosts create and destroy instances by the hundred, pedalboard at
    /// every reset).
    ///
    /// # Errors
    /// [`SegmentError`] naming the segment when the OS refuses.
    pub fn create(area: &AreaLayout) -> Result<Self, SegmentError> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            remove_stale_segments();
        });
        let needed = segment_size(area);
        let name = format!(
            "/{SEGMENT_PREFIX}{}-{}-{:08x}",
            std::process::id(),
            // Relaxed: only uniqueness matters, not ordering.
            SERIAL.fetch_add(1, Ordering::Relaxed),
            random_u32()
        );
        let shmem = ShmemConf::new()
            .os_id(&name)
            .size(needed)
            .create()
            .map_err(|source| SegmentError::Create { name: name.clone(), source })?;
        if shmem.len() < needed {
            return Err(SegmentError::TooSmall { mapped: shmem.len(), needed });
        }
        Ok(Self { shmem, unlinked: std::sync::atomic::AtomicBool::new(false) })
    }

    /// The block.
    pub fn block(&self) -> &SharedBlock {
        // SAFETY: the mapping is page-aligned (so aligned for `SharedBlock`), at least
        // `segment_size(..) > size_of::<SharedBlock>()` bytes (checked in `create`), zero-filled by the OS at
        // creation, and all-zero is a valid `SharedBlock`. It lives as long as `self`.
        unsafe { &*self.shmem.as_ptr().cast::<SharedBlock>() }
    }

    /// The block's address, for handing to modules through the C ABI; its provenance
    /// covers the whole segment, the plugin area included.
    pub fn as_ptr(&self) -> *const SharedBlock {
        self.shmem.as_ptr().cast::<SharedBlock>()
    }

    /// The OS name of the segment (`/trio-...`).
    pub fn os_id(&self) -> &str {
        self.shmem.get_os_id()
    }

    /// Removes the segment's name now, keeping this mapping until the value is dropped:
    /// nothing can open the segment any more, while code that still holds the block (a
    /// module instance being destroyed on another thread) keeps using it. Idempotent.
    ///
    /// # Errors
    /// The OS error of `shm_unlink`, with the name; the segment is then unlinked when
    /// this value is dropped, as without this call.
    pub fn unlink(&self) -> std::io::Result<()> {
        // Relaxed: only this value's own drop reads it, after every use.
        if self.unlinked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let name = std::ffi::CString::new(self.os_id())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: a NUL-terminated name; `shm_unlink` only reads it.
        if unsafe { libc::shm_unlink(name.as_ptr()) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(e.kind(), format!("shm_unlink {}: {e}", self.os_id())));
        }
        // Relaxed: see above.
        self.unlinked.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for BlockSegment {
    fn drop(&mut self) {
        // The name is gone already: unmapping is all that is left.
        if *self.unlinked.get_mut() {
            self.shmem.set_owner(false);
        }
    }
}

/// Removes segments named `trio-<pid>-...` whose process no longer exists. Returns how
/// many were removed. Failures are ignored: another process may own or remove them.
pub fn remove_stale_segments() -> usize {
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return 0;
    };
    let mut removed = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = segment_pid(name) else { continue };
        if process_alive(pid) {
            continue;
        }
        // Opening the segment and taking ownership unlinks it when dropped (the way the
        // `shared_memory` crate removes a segment it did not create).
        if let Ok(mut stale) = ShmemConf::new().os_id(format!("/{name}")).open() {
            stale.set_owner(true);
            drop(stale);
            removed += 1;
        }
    }
    removed
}

/// The pid in a segment name of ours, or `None` for any other name.
fn segment_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(SEGMENT_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: `kill` with signal 0 sends nothing; it only checks that the pid exists.
    let r = unsafe { libc::kill(pid, 0) };
    // EPERM means it exists but belongs to someone else.
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlinked_segment_is_gone_by_name_and_still_mapped() {
        let segment = BlockSegment::create(&AreaLayout::default()).unwrap();
        let path = format!("{SHM_DIR}{}", segment.os_id());
        assert!(std::path::Path::new(&path).exists());
        segment.block().header.instance_id.store(7, Ordering::Relaxed);
        segment.unlink().unwrap();
        assert!(!std::path::Path::new(&path).exists(), "{path} is still there");
        segment.unlink().unwrap();
        assert_eq!(segment.block().header.instance_id.load(Ordering::Relaxed), 7);
        drop(segment);
    }

    #[test]
    fn parses_our_names_only() {
        assert_eq!(segment_pid("trio-1234-0-deadbeef"), Some(1234));
        assert_eq!(segment_pid("shmem_ABCDEF"), None);
        assert_eq!(segment_pid("trio-x-0"), None);
    }

    #[test]
    fn segment_is_zeroed_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let seg = BlockSegment::create(&AreaLayout::default()).unwrap();
        assert_eq!(seg.block().stats.blocks_processed.load(Ordering::Relaxed), 0);
        let path = format!("{SHM_DIR}{}", seg.os_id());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(seg);
        assert!(!std::path::Path::new(&path).exists());
    }
}
