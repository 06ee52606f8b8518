//! Replacing a folder so that a crash at any moment leaves a complete old or new copy.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `<parent>/.<name>.<tag>-<pid>`: the hidden scratch name used next to `final_path`
/// while building its replacement (`tag` is `tmp`) or removing the old copy (`old`).
pub fn scratch_path(final_path: &Path, tag: &str) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Removes scratch folders next to `final_path` (see [`scratch_path`]) left by runs that
/// died: those whose process id is no longer running. Failures are ignored: leftovers
/// are only wasted space.
pub fn sweep_stale(final_path: &Path) {
    let (Some(parent), Some(name)) = (final_path.parent(), final_path.file_name()) else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else { continue };
        let Some((tag, pid)) = rest.split_once('-') else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if matches!(tag, "tmp" | "old") && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Atomically swaps two existing paths (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let (a, b) = (c_path(a)?, c_path(b)?);
    // SAFETY: both pointers are NUL-terminated strings that outlive the call; AT_FDCWD
    // makes relative paths relative to the current directory, as `rename` does.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Puts the complete folder `new` at `final_path`, replacing what is there.
///
/// `new` must be in the same folder as `final_path` (so the renames stay on one file
/// system). If nothing is at `final_path`, `new` is renamed there. Otherwise the two are
/// swapped atomically with `renameat2(RENAME_EXCHANGE)`, so `final_path` always holds a
/// complete copy, and the old copy (now at `new`'s name) is removed. Where the file
/// system cannot swap, the old copy is first renamed aside to [`scratch_path`]`(.., "old")`
/// and `new` renamed into place: a crash between the two renames leaves both copies
/// complete under their hidden names.
///
/// # Errors
/// A rename fails; `final_path` then still holds the old copy.
pub fn replace_dir(new: &Path, final_path: &Path) -> Result<()> {
    let shown = final_path.display();
    if std::fs::symlink_metadata(final_path).is_err() {
        return std::fs::rename(new, final_path).with_context(|| format!("cannot move {} to {shown}", new.display()));
    }
    match exchange(new, final_path) {
        Ok(()) => {
            // `new` now holds the old copy.
            std::fs::remove_dir_all(new).with_context(|| format!("cannot remove the old copy at {}", new.display()))
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)) => {
            let old = scratch_path(final_path, "old");
            std::fs::rename(final_path, &old).with_context(|| format!("cannot move the old {shown} aside"))?;
            std::fs::rename(new, final_path).with_context(|| format!("cannot move {} to {shown}", new.display()))?;
            std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove the old copy at {}", old.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot swap {} with {shown}", new.display())),
    }
}

/// Copies the folder `from` to `to` (which must not exist), recursively. Symbolic links
/// are copied as links. Folders named in `skip` are left out at every depth.
///
/// # Errors
/// Reading or writing fails; the message names the file.
pub fn copy_dir(from: &Path, to: &Path, skip: &[&str]) -> Result<()> {
    std::fs::create_dir(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().with_context(|| format!("cannot stat {}", src.display()))?;
        if kind.is_dir() {
            if !skip.iter().any(|s| entry.file_name() == **s) {
                copy_dir(&src, &dst, skip)?;
            }
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).with_context(|| format!("cannot read link {}", src.display()))?;
            std::os::unix::fs::symlink(target, &dst).with_context(|| format!("cannot create {}", dst.display()))?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// Flushes a file's contents to disk, so that a rename after it never exposes an empty
/// file after a power loss.
///
/// # Errors
/// The file cannot be opened or synced.
pub fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {} to disk", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trio-fsutil-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replace_dir_swaps_and_removes_the_old_copy() {
        let dir = scratch("swap");
        let final_path = dir.join("X.vst3");
        for (round, content) in ["one", "two"].into_iter().enumerate() {
            let new = scratch_path(&final_path, "tmp");
            std::fs::create_dir(&new).unwrap();
            std::fs::write(new.join("f"), content).unwrap();
            replace_dir(&new, &final_path).unwrap();
            assert_eq!(std::fs::read_to_string(final_path.join("f")).unwrap(), content, "round {round}");
            assert!(!new.exists());
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sweep_removes_only_dead_runs_leftovers() {
        let dir = scratch("sweep");
        let final_path = dir.join("X.vst3");
        // Process id 4194305 is above Linux's maximum, so it is never running.
        let dead = dir.join(".X.vst3.tmp-4194305");
        let mine = scratch_path(&final_path, "tmp");
        let other = dir.join(".Y.vst3.tmp-4194305");
        for d in [&dead, &mine, &other] {
            std::fs::create_dir(d).unwrap();
        }
        sweep_stale(&final_path);
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
