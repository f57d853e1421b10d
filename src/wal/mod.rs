//! The write-ahead log: every batch is appended here, as one framed record, before it is
//! acknowledged.
//!
//! Files live in `<dir>/wal/` and are named by a 20-digit sequence number. The log is
//! rotated to a new file at every flush, so the files before the flush's position are
//! wholly covered by segments and are deleted once the manifest records that position.
//! A record never spans two files.

pub(crate) mod record;

pub(crate) use record::{KIND_BATCH, WalBatch, decode_batch, encode_batch};

use crate::error::{Error, Limit, Result};
use crate::files::FileKind;
use crate::io::{self, FileWriter, Fs, frame};
use crate::model::{Batch, SeriesId, SeriesKey};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A WAL file's header ([`FileKind::Wal`]): magic, version, file number u64, crc32.
pub(crate) const FILE_HEADER_LEN: u64 = FileKind::Wal.header_len() as u64;

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

fn file_header(file_no: u64) -> Vec<u8> {
    FileKind::Wal.header(&file_no.to_le_bytes())
}

fn check_file_header(path: &Path, bytes: &[u8], file_no: u64) -> Result<()> {
    let header = FileKind::Wal.check_header(path, bytes)?;
    let mut no = [0u8; 8];
    no.copy_from_slice(header.fields);
    let no = u64::from_le_bytes(no);
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
    file: Arc<FileWriter>,
    file_no: u64,
    offset: u64,
    fs: Fs,
    /// The record being encoded, reused from append to append.
    buf: Vec<u8>,
}

/// Largest encoding buffer kept between appends.
const KEPT_BUFFER_BYTES: usize = 16 << 20;

/// A failed [`WalWriter::append_batch`].
#[derive(Debug)]
pub(crate) struct AppendError {
    pub error: Error,
    /// The partial record was cut off again (or nothing was written): the log is as it was
    /// before the append and can take more records.
    pub log_intact: bool,
}

impl AppendError {
    /// Whether only this batch failed and the log takes more: it was refused before a
    /// byte was written (too large), or a full disk failed the write and the partial
    /// record was cut off again. Any other failure leaves the log in doubt.
    pub(crate) fn fails_only_this_batch(&self) -> bool {
        self.log_intact && (matches!(self.error, Error::LimitExceeded { .. }) || self.error.is_retryable_disk_full())
    }
}

impl WalWriter {
    /// Creates WAL file `file_no` (which must not exist) with its header, durably.
    pub(crate) fn create(fs: &Fs, dir: &Path, file_no: u64) -> Result<WalWriter> {
        let path = file_path(dir, file_no);
        let file = fs.create_new(&path)?;
        file.write_all(&file_header(file_no))?;
        file.sync_all()?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            path,
            file: Arc::new(file),
            file_no,
            offset: FILE_HEADER_LEN,
            fs: fs.clone(),
            buf: Vec::new(),
        })
    }

    /// Continues appending to an existing file whose valid records end at `end` (the file
    /// must be exactly that long: replay has cut any torn tail).
    pub(crate) fn reopen(fs: &Fs, dir: &Path, end: WalPosition) -> Result<WalWriter> {
        let path = file_path(dir, end.file_no);
        let file = fs.open_append(&path)?;
        let len = file.len()?;
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
            fs: fs.clone(),
            buf: Vec::new(),
        })
    }

    /// Appends a batch as one framed record with one write: `first_seq` is the sequence
    /// number of its first row, `new_series` the series it creates (with their reserved
    /// ids), `series_ids` the global id of each batch-local series. A record whose payload
    /// would exceed `max_payload_bytes` is refused before anything is written
    /// ([`Limit::BatchBytes`]). Returns the bytes appended. Not durable until
    /// [`WalWriter::sync`] (or a sync of the handle from [`WalWriter::handle`]).
    ///
    /// On a failed write part of the record may have reached the file; it is cut off again
    /// (with an fsync) so the next record follows the last whole one. When that cut fails
    /// too, the log ends in a partial record and must not take more.
    pub(crate) fn append_batch(
        &mut self,
        first_seq: u64,
        new_series: &[(SeriesId, SeriesKey)],
        series_ids: &[SeriesId],
        batch: &Batch,
        max_payload_bytes: usize,
    ) -> std::result::Result<u64, AppendError> {
        self.buf.clear();
        let start = frame::begin_in_place(&mut self.buf);
        encode_batch(first_seq, new_series, series_ids, batch, &mut self.buf);
        let payload_len = frame::finish_in_place(&mut self.buf, start, KIND_BATCH);
        if payload_len > max_payload_bytes {
            return Err(AppendError {
                error: Error::limit(Limit::BatchBytes, payload_len as u64, max_payload_bytes as u64),
                log_intact: true,
            });
        }
        if let Err(error) = self.file.write_all(&self.buf) {
            let log_intact = self.fs.truncate(&self.path, self.offset).is_ok();
            return Err(AppendError { error, log_intact });
        }
        let appended = self.buf.len() as u64;
        self.offset += appended;
        // A rare huge batch should not pin its buffer for the life of the log.
        if self.buf.capacity() > KEPT_BUFFER_BYTES {
            self.buf = Vec::new();
        }
        Ok(appended)
    }

    /// Position after the last appended record.
    pub(crate) fn position(&self) -> WalPosition {
        WalPosition {
            file_no: self.file_no,
            offset: self.offset,
        }
    }

    /// The current file, for a sync outside the writer's lock.
    pub(crate) fn handle(&self) -> Arc<FileWriter> {
        self.file.clone()
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data()
    }

    /// Syncs the current file and continues in a new one. Returns the new file's start.
    pub(crate) fn rotate(&mut self) -> Result<WalPosition> {
        self.sync()?;
        *self = WalWriter::create(&self.fs, &self.dir, self.file_no + 1)?;
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
    fs: &Fs,
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
            fs.remove_file(path)?;
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
        let header_missing = bytes.len() < FILE_HEADER_LEN as usize || bytes[..FILE_HEADER_LEN as usize].iter().all(|&b| b == 0);
        if is_last && header_missing {
            // Created but never completed (short, or a size with no data behind it): the
            // header is synced before any record is appended, so nothing in it was ever
            // acknowledged.
            if repair {
                fs.remove_file(path)?;
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
                            fs.truncate(path, pos as u64)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FieldValue, SeriesKind};
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            any::<u64>().prop_map(|b| FieldValue::F64(f64::from_bits(b))),
            any::<i64>().prop_map(FieldValue::I64),
            any::<bool>().prop_map(FieldValue::Bool),
            ".{0,12}".prop_map(FieldValue::Str),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(FieldValue::Bytes),
        ]
    }

    /// A row: (series index, timestamp, fields by distinct name).
    type Row = (u8, i64, Vec<(u8, FieldValue)>);

    fn batches() -> impl Strategy<Value = Vec<Vec<Row>>> {
        let row = (
            0u8..4,
            any::<i64>(),
            prop::collection::btree_map(0u8..6, value(), 1..4).prop_map(|m| m.into_iter().collect()),
        );
        prop::collection::vec(prop::collection::vec(row, 1..6), 1..8)
    }

    fn build(rows: &[Row]) -> Batch {
        let mut batch = Batch::new();
        for (s, ts, fields) in rows {
            let kind = if s % 2 == 0 { SeriesKind::Metric } else { SeriesKind::Log };
            let key = SeriesKey::new(kind, "m", [("s", s.to_string())]).unwrap();
            batch
                .add_row(&key, *ts, fields.iter().map(|(f, v)| (format!("f{f}"), v.clone())))
                .unwrap();
        }
        batch
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]

        /// Whatever byte the log is cut at, replay returns exactly the records that were
        /// complete before the cut, and reports the rest as a torn tail.
        #[test]
        fn replay_after_a_cut_returns_the_complete_prefix(batches in batches(), cut_fraction in 0.0f64..1.0) {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = WalWriter::create(&crate::io::Fs::default(), dir.path(), 1).unwrap();
            let mut ends = Vec::new();
            let mut encoded = Vec::new();
            for (i, rows) in batches.iter().enumerate() {
                let batch = build(rows);
                let ids: Vec<u32> = (0..batch.series_count() as u32).collect();
                writer.append_batch(i as u64 * 100 + 1, &[], &ids, &batch, usize::MAX).unwrap();
                ends.push(writer.position().offset);
                encoded.push((batch, ids));
            }
            writer.sync().unwrap();
            drop(writer);
            let path = file_path(dir.path(), 1);
            let len = std::fs::metadata(&path).unwrap().len();
            let cut = FILE_HEADER_LEN + ((len - FILE_HEADER_LEN) as f64 * cut_fraction) as u64;
            crate::io::Fs::default().truncate(&path, cut).unwrap();

            let mut replayed = Vec::new();
            let report = replay(&crate::io::Fs::default(), dir.path(), WalPosition::start_of(1), true, |b, end| {
                replayed.push((b, end.offset));
                Ok(())
            }).unwrap();
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            prop_assert_eq!(replayed.len(), complete);
            for ((b, end), (batch, ids)) in replayed.iter().zip(&encoded) {
                prop_assert_eq!(&b.rows, &batch.rows);
                prop_assert_eq!(&b.values, &batch.values);
                prop_assert_eq!(&b.field_names, &batch.field_names);
                prop_assert_eq!(&b.series_ids, ids);
                prop_assert!(ends.contains(end));
            }
            let boundary = ends.get(complete.wrapping_sub(1)).copied().unwrap_or(FILE_HEADER_LEN);
            prop_assert_eq!(report.torn_tail.is_some(), cut > boundary);
            prop_assert_eq!(std::fs::metadata(&path).unwrap().len(), boundary, "the torn tail is cut off");
            prop_assert_eq!(report.append_at, Some(WalPosition { file_no: 1, offset: boundary }));
        }

        #[test]
        fn batch_payloads_round_trip(rows in prop::collection::vec((0u8..4, any::<i64>(), prop::collection::btree_map(0u8..6, value(), 1..4).prop_map(|m| m.into_iter().collect::<Vec<_>>())), 1..20), first_seq in any::<u64>()) {
            let batch = build(&rows);
            let ids: Vec<u32> = (0..batch.series_count() as u32).map(|i| i * 3).collect();
            let new_series: Vec<(u32, SeriesKey)> = batch.series.iter().cloned().enumerate().map(|(i, k)| (i as u32 * 3, k)).collect();
            let mut buf = Vec::new();
            encode_batch(first_seq, &new_series, &ids, &batch, &mut buf);
            let decoded = decode_batch(&buf).unwrap();
            prop_assert_eq!(decoded.first_seq, first_seq);
            prop_assert_eq!(decoded.new_series, new_series);
            prop_assert_eq!(decoded.series_ids, ids);
            prop_assert_eq!(decoded.rows, batch.rows);
            prop_assert_eq!(decoded.values, batch.values);
        }
    }
}
