//! Everything that touches the file system: durable directory and file operations, the
//! store lock, read-only memory maps, and the checksummed record framing shared by the WAL
//! and the catalog.
//!
//! Errors carry the operation and path. Durability rules applied here: a new file or a
//! rename is durable only after its directory is fsync'd, so every create and rename helper
//! syncs the parent directory.

pub(crate) mod frame;

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Opens a directory and fsyncs it, making creations and renames inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    handle.sync_all().map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates `dir` and any missing parents, fsyncing each parent whose entries changed.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(Error::io("create directory", dir, e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary sibling is written and fsync'd, renamed
/// over `path`, and the directory fsync'd. Readers see the old or the new file, never a mix.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_sibling(path);
    let mut file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(file);
    rename_durable(&tmp, path)
}

/// `name` + `.tmp` beside `path`.
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Renames and fsyncs the destination's directory.
pub(crate) fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io("rename", from, e))?;
    match to.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Reads a whole file; `Ok(None)` when it does not exist.
pub(crate) fn read_file_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| Error::io("read", path, e))?;
    Ok(Some(bytes))
}

/// Size of a file; 0 when it does not exist.
pub(crate) fn file_len(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// Removes a file; a missing file is not an error.
pub(crate) fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Removes an empty directory; a missing or non-empty directory is left alone.
pub(crate) fn remove_empty_dir(path: &Path) -> Result<bool> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(false),
        Err(e) => Err(Error::io("remove directory", path, e)),
    }
}

/// Removes a directory and everything in it, then syncs its parent; a missing directory
/// is not an error.
pub(crate) fn remove_dir_all(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("remove directory", path, e)),
    }
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// One entry of [`list_dir`].
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: PathBuf,
    pub name: String,
    pub is_dir: bool,
    pub len: u64,
}

/// Entries of a directory sorted by name; an absent directory lists as empty. Names that
/// are not UTF-8 are skipped: annals never creates them.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<Entry>> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let meta = entry.metadata().map_err(|e| Error::io("stat", &entry.path(), e))?;
        entries.push(Entry {
            path: entry.path(),
            name,
            is_dir: meta.is_dir(),
            len: meta.len(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Creates a new file for writing; fails if it exists. The parent directory is fsync'd so
/// the file's existence is durable.
pub(crate) fn create_new(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Opens an existing file for reading and writing.
pub(crate) fn open_read_write(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Opens an existing file for appending.
pub(crate) fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new().append(true).open(path).map_err(|e| Error::io("open", path, e))
}

/// Opens an existing file for reading.
pub(crate) fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io("open", path, e))
}

/// Shortens a file to `len` bytes and fsyncs it.
pub(crate) fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = open_read_write(path)?;
    file.set_len(len).map_err(|e| Error::io("truncate", path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}

/// How long opening waits for a lock that looks held before reporting `Error::Locked`.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(300);

/// The exclusive lock on a data directory, held for the life of a handle.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock file `LOCK` in `dir`, failing with [`Error::Locked`] when another
    /// handle holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        // A lock just released can still look held for a moment: when any thread of this
        // process forks a child, the child holds copies of every descriptor (lock
        // included) until its exec closes them. So retry briefly before reporting a real
        // holder.
        let mut wait = std::time::Duration::from_millis(1);
        let mut waited = std::time::Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if waited < LOCK_PATIENCE => {
                    std::thread::sleep(wait);
                    waited += wait;
                    wait = (wait * 2).min(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path }),
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
        }
    }
}

/// A read-only memory map of a sealed file.
///
/// SAFETY (the one argument for every map in annals): a map is only ever made of a segment
/// file after it was fsync'd, renamed into place and listed in the manifest. annals never
/// opens such a file for writing again and never truncates it; it only unlinks it, which
/// leaves existing maps valid on POSIX systems. The data directory is owned by one process
/// at a time (the `LOCK` file), so the remaining hazard is another program writing to or
/// truncating annals' files behind its back, which is outside the contract documented in
/// `docs/ARCHITECTURE.md`. Block contents are checksummed before use, so even then a changed
/// byte is reported as corruption rather than returned.
pub(crate) fn map_readonly(path: &Path) -> Result<memmap2::Mmap> {
    let file = open_read(path)?;
    // SAFETY: see the function's documentation.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))
}

/// Bytes available to unprivileged writers on the file system holding `path`; `None` where
/// the platform cannot tell.
pub(crate) fn available_bytes(path: &Path) -> Result<Option<u64>> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid(format!("path {} contains a NUL byte", path.display())))?;
        let mut stats = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: `c_path` is a valid NUL-terminated string and `stats` points to writable
        // memory of the right type; statvfs fills it or fails without touching it.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
        if rc != 0 {
            return Err(Error::io("statvfs", path, std::io::Error::last_os_error()));
        }
        // SAFETY: statvfs returned 0, so it initialised the struct.
        let stats = unsafe { stats.assume_init() };
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        Ok(Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64)))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Drops the resident pages of a read-only file map (they are read from the file again if
/// touched), so streaming through a large file does not keep it all resident.
pub(crate) fn release_mapped_pages(map: &memmap2::Mmap) {
    // SAFETY: `map` is a read-only shared mapping of a file (`map_readonly`). Dropping its
    // pages cannot lose data: the next access faults them in from the file, which is
    // never modified after it is sealed. The advice is only a hint; failure is harmless.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}
