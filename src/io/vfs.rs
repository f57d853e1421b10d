//! The file-system seam: every operation through which annals changes the disk (create,
//! append, fsync, rename, remove, truncate, directory sync) goes through a
//! [`FileSystem`], chosen per store in [`crate::Options::file_system`]. The default,
//! [`OsFileSystem`], calls the operating system; [`crate::fs::FaultyFileSystem`] injects
//! failures and builds the image a crash would leave, for tests.
//!
//! Reads (opening, mapping and listing files) do not go through the seam: a fault-injecting
//! file system works on a real directory, so what it lets through is what reads see.
//! The full-text index is written by tantivy's own directory, outside the seam; it is
//! derived data that an open rebuilds or catches up from the segments.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::io::Write;
use std::path::Path;

/// File operations that change the disk. Implementations must be usable from several
/// threads at once (a flush, a compaction and writers run concurrently).
///
/// ```
/// use annals::fs::{FileSystem, OsFileSystem};
/// let dir = tempfile::tempdir().unwrap();
/// let fs = OsFileSystem;
/// let file = fs.create_new(&dir.path().join("a")).unwrap();
/// assert_eq!(file.write(b"hello").unwrap(), 5);
/// file.sync_data().unwrap();
/// assert_eq!(file.len().unwrap(), 5);
/// ```
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates a new, empty file for appending; fails if `path` exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Shortens (or extends with zeros) the file at `path` to `len` bytes and fsyncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates one directory (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Fsyncs a directory, making the creations, renames and removals in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// A file open for appending. Methods take `&self` so one handle can be written under a
/// lock and synced outside it, as the WAL's group commit does.
pub trait WritableFile: Send + Sync + fmt::Debug {
    /// Appends a prefix of `buf` at the end of the file and returns its length, as
    /// `write(2)` does: a short count is not an error.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// True when the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFileSystem;

/// A file of [`OsFileSystem`].
#[derive(Debug)]
pub struct OsFile(File);

impl WritableFile for OsFile {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl FileSystem for OsFileSystem {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().append(true).create_new(true).open(path)?;
        Ok(Box::new(OsFile(file)))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(OsFile(OpenOptions::new().append(true).open(path)?)))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}
