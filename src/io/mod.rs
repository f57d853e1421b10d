//! Everything that touches the file system: durable directory and file operations, the
//! store lock, read-only memory maps, and the checksummed record framing shared by the WAL
//! and the catalog.
//!
//! Every change to the disk goes through [`Fs`], a store's [`vfs::FileSystem`] (the seam
//! tests inject faults through) wrapped with annals' durability rules: a new file or a
//! rename is durable only after its directory is fsync'd, so every create and rename helper
//! syncs the parent directory. Errors carry the operation and path.

pub mod faults;
pub(crate) mod frame;
pub mod vfs;

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The store's [`vfs::FileSystem`] with annals' durability rules and error context on top.
/// Cheap to clone; every component that writes files holds one.
#[derive(Clone, Debug)]
pub(crate) struct Fs(Arc<dyn vfs::FileSystem>);

impl Default for Fs {
    fn default() -> Fs {
        Fs(Arc::new(vfs::OsFileSystem))
    }
}

impl Fs {
    pub(crate) fn new(inner: Arc<dyn vfs::FileSystem>) -> Fs {
        Fs(inner)
    }

    /// Fsyncs a directory, making creations and renames inside it durable.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.0.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))
    }

    /// Creates `dir` and any missing parents, fsyncing each parent whose entries changed.
    pub(crate) fn create_dir_durable(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_durable(parent)?;
        }
        match self.0.create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
            Err(e) => return Err(Error::io("create directory", dir, e)),
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.sync_dir(parent)?;
        }
        Ok(())
    }

    /// Writes `bytes` to `path` atomically: a temporary sibling is written and fsync'd,
    /// renamed over `path`, and the directory fsync'd. Readers see the old or the new file,
    /// never a mix. A failure before the rename removes the temporary file.
    pub(crate) fn write_file_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = temporary_sibling(path);
        self.remove_file(&tmp)?;
        let written = self.create_new(&tmp).and_then(|file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(e) = written {
            let _ = self.remove_file(&tmp);
            return Err(e);
        }
        self.rename_durable(&tmp, path)
    }

    /// Renames and fsyncs the destination's directory.
    pub(crate) fn rename_durable(&self, from: &Path, to: &Path) -> Result<()> {
        self.0.rename(from, to).map_err(|e| Error::io("rename", from, e))?;
        match to.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => self.sync_dir(dir),
            None => Ok(()),
        }
    }

    /// Removes a file; a missing file is not an error.
    pub(crate) fn remove_file(&self, path: &Path) -> Result<()> {
        match self.0.remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", path, e)),
        }
    }

    /// Removes an empty directory; a missing or non-empty directory is left alone.
    pub(crate) fn remove_empty_dir(&self, path: &Path) -> Result<bool> {
        match self.0.remove_dir(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(false),
            Err(e) => Err(Error::io("remove directory", path, e)),
        }
    }

    /// Removes a directory and everything in it, then syncs its parent; a missing
    /// directory is not an error.
    pub(crate) fn remove_dir_all(&self, path: &Path) -> Result<()> {
        match self.0.remove_dir_all(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("remove directory", path, e)),
        }
        match path.parent() {
            Some(parent) => self.sync_dir(parent),
            None => Ok(()),
        }
    }

    /// Creates a new file for appending; fails if it exists. The parent directory is
    /// fsync'd so the file's existence is durable.
    pub(crate) fn create_new(&self, path: &Path) -> Result<FileWriter> {
        let file = self.0.create_new(path).map_err(|e| Error::io("create", path, e))?;
        if let Some(dir) = path.parent() {
            self.sync_dir(dir)?;
        }
        Ok(FileWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing file for appending.
    pub(crate) fn open_append(&self, path: &Path) -> Result<FileWriter> {
        let file = self.0.open_append(path).map_err(|e| Error::io("open", path, e))?;
        Ok(FileWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Shortens a file to `len` bytes and fsyncs it.
    pub(crate) fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        self.0.truncate(path, len).map_err(|e| Error::io("truncate", path, e))
    }
}

/// A file being appended to through the seam; errors name the file.
#[derive(Debug)]
pub(crate) struct FileWriter {
    file: Box<dyn vfs::WritableFile>,
    path: PathBuf,
}

impl FileWriter {
    /// Appends all of `bytes`, retrying short writes.
    pub(crate) fn write_all(&self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            match self.file.write(bytes) {
                Ok(0) => {
                    let e = std::io::Error::new(std::io::ErrorKind::WriteZero, "the file took no bytes");
                    return Err(Error::io("write", &self.path, e));
                }
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("write", &self.path, e)),
            }
        }
        Ok(())
    }

    pub(crate) fn sync_data(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("fsync", &self.path, e))
    }

    pub(crate) fn sync_all(&self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io("fsync", &self.path, e))
    }

    pub(crate) fn len(&self) -> Result<u64> {
        self.file.len().map_err(|e| Error::io("stat", &self.path, e))
    }
}

/// For `BufWriter`: plain `write(2)` semantics; the error context is added by the caller.
impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `name` + `.tmp` beside `path`.
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
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

/// Opens an existing file for reading.
pub(crate) fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io("open", path, e))
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
        let path = crate::files::FileKind::Lock.path(dir);
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
