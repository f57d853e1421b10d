//! The write-ahead log: every batch is appended here, as one framed record, before it is
//! acknowledged.
//!
//! Files live in `<dir>/wal/` and are named by a 20-digit sequence number. The log is
//! rotated to a new file at every flush, so the files before the flush's position are
//! wholly covered by segments and are deleted once the manifest records that position.
//! A record never spans two files.

pub(crate) mod record;

pub(crate) use record::{KIND_BATCH, WalBatch, decode_batch, encode_batch};

use crate::error::{CorruptionKind, Error, Result};
use crate::io::{self, frame};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"ANNALWAL";
/// WAL file format version.
pub(crate) const VERSION: u32 = 1;
/// magic (8) + version u32 + file number u64 + crc32 of the preceding 20 bytes.
pub(crate) const FILE_HEADER_LEN: u64 = 24;

/// A position in the log: a file and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WalPosition {
    pub file_no: u64,
    pub offset: u64,
}

impl WalPosition {
    /// The first record of a file.
    pub(crate) fn start_of(file_no: u64) -> WalPosition {
        WalPosition {
            file_no,
            offset: FILE_HEADER_LEN,
        }
    }
}

/// Path of WAL file `file_no`.
pub(crate) fn file_path(dir: &Path, file_no: u64) -> PathBuf {
    dir.join(format!("{file_no:020}.wal"))
}

fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// WAL files in `dir` as (number, path), ascending.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf, u64)>> {
    Ok(io::list_dir(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| parse_file_name(&e.name).map(|n| (n, e.path, e.len)))
        .collect())
}

fn file_header(file_no: u64) -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&file_no.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_file_header(path: &Path, bytes: &[u8], file_no: u64) -> Result<()> {
    let h = bytes.get(..FILE_HEADER_LEN as usize).ok_or_else(|| {
        Error::corruption(
            path,
            0,
            CorruptionKind::Truncated {
                needed: FILE_HEADER_LEN,
                available: bytes.len() as u64,
            },
        )
    })?;
    if &h[..8] != MAGIC {
        return Err(Error::corruption(path, 0, CorruptionKind::BadMagic));
    }
    let stored = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    let computed = crc32fast::hash(&h[..20]);
    if stored != computed {
        return Err(Error::corruption(path, 0, CorruptionKind::Checksum { stored, computed }));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    let no = u64::from_le_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]);
    if no != file_no {
        return Err(Error::malformed(path, 12, format!("header names file {no}")));
    }
    Ok(())
}

/// Appends records to the current WAL file.
#[derive(Debug)]
pub(crate) struct WalWriter {
    dir: PathBuf,
    path: PathBuf,
    file: Arc<File>,
    file_no: u64,
    offset: u64,
}

impl WalWriter {
    /// Creates WAL file `file_no` (which must not exist) with its header, durably.
    pub(crate) fn create(dir: &Path, file_no: u64) -> Result<WalWriter> {
        let path = file_path(dir, file_no);
        let mut file = io::create_new(&path)?;
        file.write_all(&file_header(file_no)).map_err(|e| Error::io("write", &path, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            path,
            file: Arc::new(file),
            file_no,
            offset: FILE_HEADER_LEN,
        })
    }

    /// Continues appending to an existing file whose valid records end at `end` (the file
    /// must be exactly that long: replay has cut any torn tail).
    pub(crate) fn reopen(dir: &Path, end: WalPosition) -> Result<WalWriter> {
        let path = file_path(dir, end.file_no);
        let file = io::open_append(&path)?;
        let len = file.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        if len != end.offset {
            return Err(Error::malformed(
                &path,
                end.offset,
                format!("file is {len} bytes but its records end at {}", end.offset),
            ));
        }
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            path,
            file: Arc::new(file),
            file_no: end.file_no,
            offset: end.offset,
        })
    }

    /// Appends framed bytes with one write. Not durable until [`WalWriter::sync`] (or a
    /// sync of the handle from [`WalWriter::handle`]).
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        (&*self.file).write_all(bytes).map_err(|e| Error::io("append to", &self.path, e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Position after the last appended record.
    pub(crate) fn position(&self) -> WalPosition {
        WalPosition {
            file_no: self.file_no,
            offset: self.offset,
        }
    }

    /// The current file, for a sync outside the writer's lock.
    pub(crate) fn handle(&self) -> (Arc<File>, PathBuf) {
        (self.file.clone(), self.path.clone())
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("fsync", &self.path, e))
    }

    /// Syncs the current file and continues in a new one. Returns the new file's start.
    pub(crate) fn rotate(&mut self) -> Result<WalPosition> {
        self.sync()?;
        *self = WalWriter::create(&self.dir, self.file_no + 1)?;
        Ok(self.position())
    }
}

/// The part of a file dropped because a crash cut its last record short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The WAL file.
    pub file: PathBuf,
    /// Where the incomplete record started (the file now ends here).
    pub offset: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
}

/// What replay found.
#[derive(Debug, Default)]
pub(crate) struct ReplayReport {
    pub records: u64,
    pub torn_tail: Option<TornTail>,
    /// The number to give the next WAL file.
    pub next_file_no: u64,
    /// Where the valid records of the last file end, if it can take more.
    pub append_at: Option<WalPosition>,
}

/// Replays records from `from` to the end of the log, calling `apply` with each batch and
/// the position after it.
///
/// A torn tail (an incomplete or damaged record in the last file with no valid record after
/// it) is reported, and cut off the file when `repair` is set. Damage anywhere else is
/// [`Error::Corruption`] naming the file and offset. Files before `from` are obsolete (a
/// flush covered them) and are removed when `repair` is set.
pub(crate) fn replay(
    dir: &Path,
    from: WalPosition,
    repair: bool,
    mut apply: impl FnMut(WalBatch, WalPosition) -> Result<()>,
) -> Result<ReplayReport> {
    let files = list_files(dir)?;
    let mut report = ReplayReport {
        next_file_no: from.file_no,
        ..ReplayReport::default()
    };
    let live: Vec<_> = files.iter().filter(|(no, _, _)| *no >= from.file_no).cloned().collect();
    if repair {
        for (_, path, _) in files.iter().filter(|(no, _, _)| *no < from.file_no) {
            io::remove_file(path)?;
        }
    }
    if live.first().is_none_or(|(no, _, _)| *no != from.file_no) {
        return Err(Error::malformed(
            &file_path(dir, from.file_no),
            0,
            "the WAL file holding the last checkpoint is missing",
        ));
    }
    for (i, (file_no, path, _)) in live.iter().enumerate() {
        let expected = from.file_no + i as u64;
        if *file_no != expected {
            return Err(Error::malformed(&file_path(dir, expected), 0, "WAL file missing from the sequence"));
        }
        let is_last = i + 1 == live.len();
        let bytes = io::read_file_if_exists(path)?.unwrap_or_default();
        if is_last && bytes.len() < FILE_HEADER_LEN as usize {
            // Created but never completed: nothing in it was ever acknowledged.
            if repair {
                io::remove_file(path)?;
            }
            report.torn_tail = Some(TornTail {
                file: path.clone(),
                offset: 0,
                dropped_bytes: bytes.len() as u64,
            });
            report.next_file_no = *file_no;
            return Ok(report);
        }
        check_file_header(path, &bytes, *file_no)?;
        let mut pos = if *file_no == from.file_no {
            from.offset as usize
        } else {
            FILE_HEADER_LEN as usize
        };
        loop {
            match frame::read(&bytes, pos) {
                frame::Frame::Record { kind, payload, next } => {
                    if kind != KIND_BATCH {
                        return Err(Error::malformed(path, pos as u64, format!("unknown WAL record kind {kind}")));
                    }
                    let batch = decode_batch(payload).map_err(|why| Error::malformed(path, pos as u64, why))?;
                    apply(
                        batch,
                        WalPosition {
                            file_no: *file_no,
                            offset: next as u64,
                        },
                    )?;
                    report.records += 1;
                    pos = next;
                }
                frame::Frame::End => break,
                frame::Frame::Bad(kind) => {
                    if is_last && !frame::valid_record_after(&bytes, pos) {
                        if repair {
                            io::truncate(path, pos as u64)?;
                        }
                        report.torn_tail = Some(TornTail {
                            file: path.clone(),
                            offset: pos as u64,
                            dropped_bytes: (bytes.len() - pos) as u64,
                        });
                        break;
                    }
                    return Err(Error::corruption(path, pos as u64, kind));
                }
            }
        }
        report.next_file_no = file_no + 1;
        report.append_at = is_last.then_some(WalPosition {
            file_no: *file_no,
            offset: pos as u64,
        });
    }
    Ok(report)
}
