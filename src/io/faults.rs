//! A [`FileSystem`] for tests that fails chosen operations and builds the image a crash
//! would leave behind.
//!
//! It works on a real directory through the operating system and keeps, beside it, what
//! is durable: per file the length covered by its last fsync, and per directory the
//! creations, renames and removals not yet made durable by a directory fsync. After
//! [`FaultyFileSystem::crash`] nothing more reaches the disk, and
//! [`FaultyFileSystem::write_crash_image`] turns the directory into one state a power cut
//! could have left: a random prefix of each directory's unsynced changes survives (the rest
//! is undone in reverse order), and each file keeps its synced bytes plus a random part of
//! the rest, either as written or as zeros (blocks allocated but never written).
//!
//! Removed and replaced files are moved to a stash directory (which must be on the same
//! file system) so a crash image can bring them back.
//!
//! ```
//! use annals::fs::{Fault, FaultyFileSystem, FileSystem, Op};
//! let dir = tempfile::tempdir().unwrap();
//! let fs = FaultyFileSystem::new(dir.path().join("stash")).unwrap();
//! fs.fail_nth(Op::Sync, 1, Fault::Io);
//! let file = fs.create_new(&dir.path().join("a")).unwrap();
//! file.write(b"hello").unwrap();
//! assert!(file.sync_data().is_err());
//! assert_eq!(fs.injected().len(), 1);
//! ```

use super::vfs::{FileSystem, OsFileSystem, WritableFile};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The kinds of operation faults can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Creating a file.
    Create,
    /// Opening a file for appending.
    Open,
    /// One `write` call.
    Write,
    /// `fsync` or `fdatasync` of a file.
    Sync,
    /// A rename.
    Rename,
    /// Removing a file or a directory.
    Remove,
    /// Creating a directory.
    CreateDir,
    /// `fsync` of a directory.
    SyncDir,
    /// Truncating a file.
    Truncate,
}

const ALL_OPS: [Op; 9] = [
    Op::Create,
    Op::Open,
    Op::Write,
    Op::Sync,
    Op::Rename,
    Op::Remove,
    Op::CreateDir,
    Op::SyncDir,
    Op::Truncate,
];

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with `EIO` and changes nothing.
    Io,
    /// The operation fails with `ENOSPC` and changes nothing.
    NoSpace,
    /// For a write: the first half of the buffer is written and reported, and the next
    /// write to the file fails with `ENOSPC`, as when a disk fills mid-write. Other
    /// operations treat it as [`Fault::NoSpace`].
    ShortWrite,
}

/// One fault that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    /// The operation it hit.
    pub op: Op,
    /// The file or directory the operation was on.
    pub path: PathBuf,
    /// What it did.
    pub fault: Fault,
}

/// What [`FaultyFileSystem::write_crash_image`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashImage {
    /// Directory changes that were not durable and were undone.
    pub changes_undone: u64,
    /// Directory changes that were not durable but survived.
    pub changes_kept: u64,
    /// Files cut back towards their last fsync.
    pub files_torn: u64,
    /// Unsynced bytes dropped.
    pub bytes_dropped: u64,
    /// Unsynced bytes kept but replaced by zeros.
    pub bytes_zeroed: u64,
}

/// A fault-injecting, crash-simulating file system over a real directory. Clones share
/// their state, so a test keeps one clone and gives another to the store.
#[derive(Debug, Clone)]
pub struct FaultyFileSystem {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct Tracked {
    path: PathBuf,
    len: u64,
    durable: u64,
    fail_next_write: bool,
}

#[derive(Debug)]
enum Change {
    Created(PathBuf),
    /// A rename; `replaced` is where the file it replaced was stashed.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    },
    /// A removal; the file or directory now lives at `stash`, or, for an empty directory,
    /// nowhere (`None`).
    Removed {
        path: PathBuf,
        stash: Option<PathBuf>,
    },
}

#[derive(Debug)]
struct Pending {
    dir: PathBuf,
    change: Change,
}

#[derive(Debug)]
struct State {
    stash: PathBuf,
    stash_next: u64,
    counts: BTreeMap<Op, u64>,
    planned: Vec<(Op, u64, Fault)>,
    random: Option<(u64, u64)>,
    injected: Vec<InjectedFault>,
    crashed: bool,
    files: Vec<Tracked>,
    pending: Vec<Pending>,
}

/// xorshift64*: a small seeded generator, enough to pick faults and crash images.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn fault_error(fault: Fault) -> io::Error {
    match fault {
        Fault::Io => io::Error::other("injected I/O error"),
        Fault::NoSpace | Fault::ShortWrite => io::Error::from(io::ErrorKind::StorageFull),
    }
}

fn crashed_error() -> io::Error {
    io::Error::other("the process has crashed (fault injection)")
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl State {
    /// Counts `op` and returns the fault to inject, if any; `Err` once crashed.
    fn check(&mut self, op: Op, path: &Path) -> io::Result<Option<Fault>> {
        if self.crashed {
            return Err(crashed_error());
        }
        let count = self.counts.entry(op).or_insert(0);
        *count += 1;
        let count = *count;
        let mut fault = None;
        if let Some(i) = self.planned.iter().position(|&(o, at, _)| o == op && at == count) {
            fault = Some(self.planned.remove(i).2);
        } else if let Some((rng, one_in)) = &mut self.random
            && next_random(rng).is_multiple_of(*one_in)
        {
            fault = Some(match (op, next_random(rng) % 3) {
                (_, 0) => Fault::Io,
                (Op::Write, 1) => Fault::ShortWrite,
                _ => Fault::NoSpace,
            });
        }
        if let Some(fault) = fault {
            self.injected.push(InjectedFault {
                op,
                path: path.to_path_buf(),
                fault,
            });
        }
        Ok(fault)
    }

    /// [`State::check`] for operations that either fail whole or run: an injected fault
    /// becomes the operation's error.
    fn admit(&mut self, op: Op, path: &Path) -> io::Result<()> {
        match self.check(op, path)? {
            Some(fault) => Err(fault_error(fault)),
            None => Ok(()),
        }
    }

    fn stash_path(&mut self) -> PathBuf {
        self.stash_next += 1;
        self.stash.join(format!("{}", self.stash_next))
    }

    fn track(&mut self, path: &Path, len: u64) -> usize {
        if let Some(i) = self.files.iter().position(|f| f.path == path) {
            return i;
        }
        self.files.push(Tracked {
            path: path.to_path_buf(),
            len,
            durable: len,
            fail_next_write: false,
        });
        self.files.len() - 1
    }

    /// Moves tracking of every file at or under `from` to the same place under `to`.
    fn retrack(&mut self, from: &Path, to: &Path) {
        for file in &mut self.files {
            if let Ok(rest) = file.path.strip_prefix(from) {
                file.path = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        }
    }

    fn forget_under(&mut self, path: &Path) {
        self.files.retain(|f| !f.path.starts_with(path));
    }
}

impl FaultyFileSystem {
    /// A file system that keeps removed and replaced files in `stash` (created if missing;
    /// it must be on the same file system as the store, outside the store's directory).
    pub fn new(stash: impl Into<PathBuf>) -> io::Result<FaultyFileSystem> {
        let stash = stash.into();
        std::fs::create_dir_all(&stash)?;
        Ok(FaultyFileSystem {
            state: Arc::new(Mutex::new(State {
                stash,
                stash_next: 0,
                counts: BTreeMap::new(),
                planned: Vec::new(),
                random: None,
                injected: Vec::new(),
                crashed: false,
                files: Vec::new(),
                pending: Vec::new(),
            })),
        })
    }

    /// Fails the `n`th (1-based) operation of kind `op` from now on with `fault`.
    pub fn fail_nth(&self, op: Op, n: u64, fault: Fault) {
        let mut st = self.state.lock();
        let at = st.counts.get(&op).copied().unwrap_or(0) + n.max(1);
        st.planned.push((op, at, fault));
    }

    /// Fails each operation with probability `1 / one_in`, choosing faults from `seed`.
    pub fn fail_randomly(&self, seed: u64, one_in: u64) {
        // xorshift needs a non-zero state.
        self.state.lock().random = Some((seed | 1, one_in.max(1)));
    }

    /// Stops planned and random faults.
    pub fn stop_failing(&self) {
        let mut st = self.state.lock();
        st.planned.clear();
        st.random = None;
    }

    /// Every fault injected so far.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.state.lock().injected.clone()
    }

    /// Operations seen so far, of every kind.
    pub fn operations(&self) -> u64 {
        let st = self.state.lock();
        ALL_OPS.iter().map(|op| st.counts.get(op).copied().unwrap_or(0)).sum()
    }

    /// From now on every operation fails and nothing reaches the disk, as if the process
    /// had died; the store's handle can then be dropped without changing the directory.
    pub fn crash(&self) {
        self.state.lock().crashed = true;
    }

    /// Turns the directory into a state a power cut at the moment of [`Self::crash`] could
    /// have left (see the module documentation), chosen by `seed`, and starts afresh:
    /// the result counts as durable, faults are off, and operations succeed again.
    pub fn write_crash_image(&self, seed: u64) -> io::Result<CrashImage> {
        let mut st = self.state.lock();
        let mut rng = seed | 1;
        let mut image = CrashImage::default();
        // Per directory, a random prefix of its unsynced changes survives.
        let pending = std::mem::take(&mut st.pending);
        let mut per_dir: BTreeMap<PathBuf, (usize, usize)> = BTreeMap::new();
        for p in &pending {
            per_dir.entry(p.dir.clone()).or_default().0 += 1;
        }
        for (total, keep) in per_dir.values_mut() {
            *keep = (next_random(&mut rng) % (*total as u64 + 1)) as usize;
        }
        let mut seen: BTreeMap<PathBuf, usize> = BTreeMap::new();
        let mut undo = Vec::new();
        for p in pending {
            let index = seen.entry(p.dir.clone()).or_default();
            *index += 1;
            if *index > per_dir[&p.dir].1 {
                undo.push(p.change);
            } else {
                image.changes_kept += 1;
            }
        }
        for change in undo.into_iter().rev() {
            image.changes_undone += 1;
            let context = format!("undoing {change:?}");
            let with_context = |e: io::Error| io::Error::new(e.kind(), format!("{context}: {e}"));
            match change {
                Change::Created(path) => {
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path).map_err(with_context)?;
                    } else if path.exists() {
                        std::fs::remove_file(&path).map_err(with_context)?;
                    }
                    st.forget_under(&path);
                }
                Change::Renamed { from, to, replaced } => {
                    if to.exists() {
                        std::fs::rename(&to, &from).map_err(with_context)?;
                        st.retrack(&to, &from);
                    }
                    if let Some(stash) = replaced {
                        std::fs::rename(&stash, &to).map_err(with_context)?;
                        st.retrack(&stash, &to);
                    }
                }
                Change::Removed { path, stash } => match stash {
                    Some(stash) => {
                        std::fs::rename(&stash, &path).map_err(with_context)?;
                        st.retrack(&stash, &path);
                    }
                    None => std::fs::create_dir(&path).map_err(with_context)?,
                },
            }
        }
        // Per file, the synced bytes and a random part of the rest.
        let stash = st.stash.clone();
        for file in &mut st.files {
            if file.len <= file.durable || file.path.starts_with(&stash) || !file.path.is_file() {
                continue;
            }
            let unsynced = file.len - file.durable;
            let kept = next_random(&mut rng) % (unsynced + 1);
            let handle = std::fs::OpenOptions::new().write(true).open(&file.path)?;
            if kept > 0 && next_random(&mut rng).is_multiple_of(2) {
                use std::io::{Seek, SeekFrom, Write};
                let mut handle = &handle;
                handle.seek(SeekFrom::Start(file.durable))?;
                handle.write_all(&vec![0u8; kept as usize])?;
                image.bytes_zeroed += kept;
            }
            handle.set_len(file.durable + kept)?;
            handle.sync_all()?;
            image.files_torn += 1;
            image.bytes_dropped += unsynced - kept;
        }
        if stash.exists() {
            std::fs::remove_dir_all(&stash)?;
        }
        std::fs::create_dir_all(&stash)?;
        st.files.clear();
        st.planned.clear();
        st.random = None;
        st.crashed = false;
        Ok(image)
    }

    fn file(&self, path: &Path, inner: Box<dyn WritableFile>) -> Box<dyn WritableFile> {
        Box::new(FaultyFile {
            state: self.state.clone(),
            path: path.to_path_buf(),
            inner,
        })
    }
}

impl FileSystem for FaultyFileSystem {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut st = self.state.lock();
        st.admit(Op::Create, path)?;
        let inner = OsFileSystem.create_new(path)?;
        st.forget_under(path);
        st.track(path, 0);
        st.pending.push(Pending {
            dir: parent(path),
            change: Change::Created(path.to_path_buf()),
        });
        drop(st);
        Ok(self.file(path, inner))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut st = self.state.lock();
        st.admit(Op::Open, path)?;
        let inner = OsFileSystem.open_append(path)?;
        let len = inner.len()?;
        st.track(path, len);
        drop(st);
        Ok(self.file(path, inner))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::Truncate, path)?;
        OsFileSystem.truncate(path, len)?;
        let i = st.track(path, len);
        st.files[i].len = len;
        st.files[i].durable = len;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::Rename, from)?;
        // A hard link keeps the replaced file for a crash image without a moment in
        // which `to` is missing.
        let replaced = if to.is_file() {
            let stash = st.stash_path();
            std::fs::hard_link(to, &stash)?;
            Some(stash)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(from, to) {
            if let Some(stash) = &replaced {
                let _ = std::fs::remove_file(stash);
            }
            return Err(e);
        }
        if let Some(stash) = &replaced {
            st.retrack(to, stash);
        }
        st.retrack(from, to);
        st.pending.push(Pending {
            dir: parent(to),
            change: Change::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                replaced,
            },
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.remove(path, false)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::CreateDir, path)?;
        std::fs::create_dir(path)?;
        st.pending.push(Pending {
            dir: parent(path),
            change: Change::Created(path.to_path_buf()),
        });
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::Remove, path)?;
        std::fs::remove_dir(path)?;
        // The changes inside are part of the removal now: one cannot be undone alone.
        st.pending.retain(|p| p.dir != path);
        st.pending.push(Pending {
            dir: parent(path),
            change: Change::Removed {
                path: path.to_path_buf(),
                stash: None,
            },
        });
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.remove(path, true)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::SyncDir, path)?;
        OsFileSystem.sync_dir(path)?;
        st.pending.retain(|p| p.dir != path);
        Ok(())
    }
}

impl FaultyFileSystem {
    /// Removes a file or a directory tree by moving it to the stash.
    fn remove(&self, path: &Path, tree: bool) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::Remove, path)?;
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() && !tree {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
        }
        let stash = st.stash_path();
        std::fs::rename(path, &stash)?;
        st.retrack(path, &stash);
        // Changes inside a removed tree go with it (undoing the removal restores the tree
        // as it was when it was removed).
        st.pending.retain(|p| !p.dir.starts_with(path));
        st.pending.push(Pending {
            dir: parent(path),
            change: Change::Removed {
                path: path.to_path_buf(),
                stash: Some(stash),
            },
        });
        Ok(())
    }
}

/// A file of [`FaultyFileSystem`].
#[derive(Debug)]
struct FaultyFile {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    inner: Box<dyn WritableFile>,
}

impl FaultyFile {
    fn tracked<'a>(&self, st: &'a mut State) -> Option<&'a mut Tracked> {
        st.files.iter_mut().find(|f| f.path == self.path)
    }
}

impl WritableFile for FaultyFile {
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.state.lock();
        let fault = st.check(Op::Write, &self.path)?;
        if let Some(file) = self.tracked(&mut st)
            && std::mem::take(&mut file.fail_next_write)
        {
            return Err(fault_error(Fault::NoSpace));
        }
        let to_write = match fault {
            Some(Fault::ShortWrite) if buf.len() > 1 => &buf[..buf.len() / 2],
            Some(fault @ (Fault::Io | Fault::NoSpace | Fault::ShortWrite)) => return Err(fault_error(fault)),
            None => buf,
        };
        let n = self.inner.write(to_write)?;
        if let Some(file) = self.tracked(&mut st) {
            file.len += n as u64;
            file.fail_next_write = fault.is_some();
        }
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync(false)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync(true)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FaultyFile {
    fn sync(&self, all: bool) -> io::Result<()> {
        let mut st = self.state.lock();
        st.admit(Op::Sync, &self.path)?;
        if all {
            self.inner.sync_all()?;
        } else {
            self.inner.sync_data()?;
        }
        if let Some(file) = self.tracked(&mut st) {
            file.durable = file.len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_image_keeps_synced_bytes_and_undoes_unsynced_creations() {
        for seed in 0..40u64 {
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultyFileSystem::new(dir.path().join("stash")).unwrap();
            let store = dir.path().join("store");
            std::fs::create_dir(&store).unwrap();
            let synced = store.join("synced");
            let file = fs.create_new(&synced).unwrap();
            fs.sync_dir(&store).unwrap();
            file.write(b"durable").unwrap();
            file.sync_data().unwrap();
            file.write(b" maybe").unwrap();
            let unsynced = store.join("unsynced");
            fs.create_new(&unsynced).unwrap().write(b"x").unwrap();
            fs.crash();
            assert!(
                fs.create_new(&store.join("after")).is_err(),
                "nothing reaches the disk after a crash"
            );
            let image = fs.write_crash_image(seed).unwrap();
            let bytes = std::fs::read(&synced).unwrap();
            assert!(bytes.starts_with(b"durable") && bytes.len() <= 13, "seed {seed}: {bytes:?}");
            assert!(b" maybe".starts_with(&bytes[7..]) || bytes[7..].iter().all(|&b| b == 0));
            assert_eq!(image.changes_kept + image.changes_undone, 1, "seed {seed}");
            assert_eq!(unsynced.exists(), image.changes_kept == 1, "seed {seed}");
        }
    }

    #[test]
    fn an_unsynced_rename_and_removal_can_be_undone() {
        let mut undone_seen = false;
        for seed in 0..20u64 {
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultyFileSystem::new(dir.path().join("stash")).unwrap();
            let store = dir.path().join("store");
            std::fs::create_dir(&store).unwrap();
            std::fs::write(store.join("old"), b"old").unwrap();
            std::fs::write(store.join("gone"), b"gone").unwrap();
            let tmp = store.join("new.tmp");
            let f = fs.create_new(&tmp).unwrap();
            f.write(b"new").unwrap();
            f.sync_all().unwrap();
            fs.sync_dir(&store).unwrap();
            fs.rename(&tmp, &store.join("old")).unwrap();
            fs.remove_file(&store.join("gone")).unwrap();
            fs.crash();
            let image = fs.write_crash_image(seed).unwrap();
            let old = std::fs::read(store.join("old")).unwrap();
            match image.changes_undone {
                0 => assert_eq!((old.as_slice(), store.join("gone").exists()), (&b"new"[..], false)),
                1 => assert_eq!(
                    (old.as_slice(), std::fs::read(store.join("gone")).unwrap()),
                    (&b"new"[..], b"gone".to_vec())
                ),
                _ => {
                    undone_seen = true;
                    assert_eq!(old, b"old");
                    assert!(tmp.exists() && store.join("gone").exists());
                }
            }
        }
        assert!(undone_seen);
    }

    #[test]
    fn planned_faults_hit_the_nth_operation() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFileSystem::new(dir.path().join("stash")).unwrap();
        fs.fail_nth(Op::Write, 2, Fault::ShortWrite);
        let file = fs.create_new(&dir.path().join("f")).unwrap();
        assert_eq!(file.write(b"abcd").unwrap(), 4);
        assert_eq!(file.write(b"efgh").unwrap(), 2, "a short write reports half");
        let next = file.write(b"gh").unwrap_err();
        assert_eq!(next.kind(), io::ErrorKind::StorageFull);
        assert_eq!(file.write(b"gh").unwrap(), 2, "the disk has room again");
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"abcdefgh");
        assert_eq!(fs.injected().len(), 1);
    }
}
