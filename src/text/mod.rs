//! Full-text search over log messages and alert text.
//!
//! - [`tokenizer`]: what a term is (shared by everything below, so they agree exactly);
//! - [`query`]: query strings, and the brute-force matcher the indexes are tested against;
//! - `index`: the tantivy index of each month's segments (`data/<YYYY-MM>/text/`);
//! - `memory`: the lazily built index of a head's rows.
//!
//! The text index is derived data: it can always be rebuilt from the segments, and open
//! rebuilds it when it is missing or unreadable and indexes what it lacks when it is
//! behind the segments.

pub(crate) mod index;
pub(crate) mod memory;
pub mod query;
pub mod tokenizer;

pub use query::{DocTerms, TextField, TextQuery};
pub use tokenizer::{MAX_TERM_BYTES, TextToken, tokenize};

pub(crate) use index::{MonthIndex, TextView, WriterOptions};
pub(crate) use memory::HeadText;

use crate::catalog::Catalog;
use crate::chunk::{Chunk, ColumnValues};
use crate::error::Result;
use crate::model::{SeriesId, SeriesKey, SeriesKind};
use crate::segment::SegmentReader;
use crate::time::Month;
use index::{Opened, TextDoc};
use roaring::RoaringBitmap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The text of each row of `chunk` that has some: (row, text).
pub(crate) fn chunk_texts(kind: SeriesKind, chunk: &Chunk) -> Vec<(usize, Cow<'_, str>)> {
    let fields = kind.text_fields();
    let columns: Vec<_> = chunk
        .columns
        .iter()
        .filter(|c| matches!(c.values, ColumnValues::Str(_)) && fields.contains(&&*c.name))
        .collect();
    if columns.is_empty() {
        return Vec::new();
    }
    (0..chunk.len())
        .filter_map(|row| {
            let text = kind.row_text(|name| {
                let column = columns.iter().find(|c| &*c.name == name)?;
                match &column.values {
                    ColumnValues::Str(v) if column.is_valid(row) => Some(v[row].as_str()),
                    _ => None,
                }
            })?;
            Some((row, text))
        })
        .collect()
}

/// Series whose rows the text index holds. Read from the keys rather than the tag index,
/// so that `verify` gets the right answer when the `TAGS` file is wrong.
pub(crate) fn text_series(catalog: &Catalog) -> RoaringBitmap {
    catalog
        .keys()
        .iter()
        .enumerate()
        .filter(|(_, key)| !key.kind().text_fields().is_empty())
        .map(|(id, _)| id as SeriesId)
        .collect()
}

/// Level and logger of a series, for the raw-term fields.
fn level_and_logger(key: &SeriesKey) -> (Option<&str>, Option<&str>) {
    (key.tag(TextField::Level.tag_key()), key.tag(TextField::Logger.tag_key()))
}

/// What bringing a month's index up to date did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CatchUp {
    /// Records indexed.
    pub rows: u64,
    /// The index was missing or unreadable and was built from scratch.
    pub rebuilt: bool,
}

/// The writable text indexes of the store, owned by the flush path.
pub(crate) struct TextStore {
    fs: crate::io::Fs,
    data_dir: PathBuf,
    months: BTreeMap<Month, MonthIndex>,
    options: WriterOptions,
}

impl TextStore {
    pub(crate) fn new(fs: &crate::io::Fs, data_dir: &Path, options: WriterOptions) -> TextStore {
        TextStore {
            fs: fs.clone(),
            data_dir: data_dir.to_path_buf(),
            months: BTreeMap::new(),
            options,
        }
    }

    fn month_dir(&self, month: Month) -> PathBuf {
        self.data_dir.join(month.to_string())
    }

    fn open_month(&mut self, month: Month) -> Result<(&mut MonthIndex, Opened)> {
        let dir = self.month_dir(month);
        match self.months.entry(month) {
            std::collections::btree_map::Entry::Occupied(slot) => Ok((slot.into_mut(), Opened::Existing)),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let (index, opened) = MonthIndex::open(&self.fs, &dir)?;
                Ok((slot.insert(index), opened))
            }
        }
    }

    /// Brings the index of `month` up to its segments: indexes the text rows with record
    /// ids above what it covers, and commits that it covers `last_seq` (the newest flushed
    /// record). Creates the index when the month has text rows and none exists.
    pub(crate) fn catch_up(
        &mut self,
        month: Month,
        segments: &[Arc<SegmentReader>],
        catalog: &Catalog,
        texts: &RoaringBitmap,
        last_seq: u64,
    ) -> Result<CatchUp> {
        let relevant: Vec<&Arc<SegmentReader>> = segments
            .iter()
            .filter(|s| s.meta().month == month && !s.series_set().is_disjoint(texts))
            .collect();
        let exists = self.months.contains_key(&month) || self.month_dir(month).join(index::DIR_NAME).is_dir();
        if relevant.is_empty() && !exists {
            return Ok(CatchUp::default());
        }
        let options = self.options;
        let (index, opened) = self.open_month(month)?;
        let mut report = CatchUp {
            rows: 0,
            rebuilt: opened != Opened::Existing && !relevant.is_empty(),
        };
        let covered = index.covered();
        if covered >= last_seq {
            return Ok(report);
        }
        let result = (|| {
            for segment in relevant.iter().filter(|s| s.meta().max_seq > covered) {
                report.rows += index_segment(index, segment, catalog, texts, covered, options)?;
            }
            index.commit(last_seq)
        })();
        if result.is_err() {
            index.rollback();
        }
        result.map(|()| report)
    }

    /// Queues the text rows of a flush's series in one month, read one series at a time by
    /// `texts_of` as (timestamp, record id, text); returns how many. `months` is how many
    /// months the caller adds to before committing: their writers share the memory budget.
    pub(crate) fn add_series<'t>(
        &mut self,
        month: Month,
        series: &[(SeriesId, SeriesKind)],
        texts_of: impl Fn(SeriesId) -> Vec<(i64, u64, Cow<'t, str>)>,
        catalog: &Catalog,
        months: usize,
    ) -> Result<u64> {
        let options = self.options.shared_by(months);
        let mut added = 0;
        for &(id, kind) in series {
            if kind.text_fields().is_empty() {
                continue;
            }
            let texts = texts_of(id);
            if texts.is_empty() {
                continue;
            }
            let (level, logger) = catalog.get(id).map_or((None, None), |key| level_and_logger(key));
            let (index, _) = self.open_month(month)?;
            for (timestamp, record_id, text) in &texts {
                let doc = TextDoc {
                    series: id,
                    timestamp: *timestamp,
                    record_id: *record_id,
                    text,
                    level,
                    logger,
                };
                index.add(&doc, options)?;
            }
            added += texts.len() as u64;
        }
        Ok(added)
    }

    /// Commits the months that have queued documents, recording `covered`.
    pub(crate) fn commit(&mut self, months: &[Month], covered: u64) -> Result<()> {
        for month in months {
            if let Some(index) = self.months.get_mut(month) {
                index.commit(covered)?;
            }
        }
        Ok(())
    }

    /// Forgets uncommitted documents everywhere (a flush failed).
    pub(crate) fn rollback(&mut self) {
        self.months.values_mut().for_each(MonthIndex::rollback);
    }

    /// Stops the writers of months other than `keep`, letting their merges finish.
    pub(crate) fn close_writers_except(&mut self, keep: &[Month]) -> Result<()> {
        for (month, index) in &mut self.months {
            if !keep.contains(month) {
                index.close_writer()?;
            }
        }
        Ok(())
    }

    /// Forgets the index of `month` and deletes its directory (its segments are leaving
    /// the store). Readers of an earlier view keep their open files.
    pub(crate) fn drop_month(&mut self, month: Month) -> Result<()> {
        self.months.remove(&month);
        let dir = self.month_dir(month).join(index::DIR_NAME);
        if dir.is_dir() {
            self.fs.remove_dir_all(&dir)?;
        }
        Ok(())
    }

    /// Merges each month's index into one segment; returns how many months changed.
    pub(crate) fn merge_segments(&mut self) -> Result<usize> {
        let mut merged = 0;
        for index in self.months.values_mut() {
            if index.merge_segments()? {
                merged += 1;
            }
        }
        Ok(merged)
    }

    /// What snapshots search.
    pub(crate) fn view(&self) -> TextView {
        TextView {
            months: self.months.iter().map(|(m, i)| (*m, i.view())).collect(),
        }
    }

    /// Index directories of months without segments (left by an interrupted operation);
    /// they are removed.
    pub(crate) fn remove_orphans(fs: &crate::io::Fs, data_dir: &Path, months_with_segments: &[Month]) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for entry in crate::io::list_dir(data_dir)?.into_iter().filter(|e| e.is_dir) {
            let Some(month) = Month::parse(&entry.name) else { continue };
            let dir = entry.path.join(index::DIR_NAME);
            if !months_with_segments.contains(&month) && dir.is_dir() {
                fs.remove_dir_all(&dir)?;
                fs.remove_empty_dir(&entry.path)?;
                removed.push(dir);
            }
        }
        Ok(removed)
    }
}

/// Indexes the text rows of one segment with record ids above `covered`; returns how many.
fn index_segment(
    index: &mut MonthIndex,
    segment: &SegmentReader,
    catalog: &Catalog,
    texts: &RoaringBitmap,
    covered: u64,
    options: WriterOptions,
) -> Result<u64> {
    let mut added = 0;
    for series in segment.series_set() & texts {
        let Some(entry) = segment.series(series)? else { continue };
        let Some(key) = catalog.get(series) else { continue };
        let fields = text_field_ids(segment, entry.kind);
        if fields.is_empty() {
            continue;
        }
        for block in &entry.blocks {
            let chunk = segment.read_block(series, block, Some(&fields))?;
            let texts = chunk_texts(entry.kind, &chunk);
            added += add_rows(index, series, Some(key), &chunk, texts, covered, options)?;
        }
    }
    Ok(added)
}

/// Queues the `(row, text)` pairs of one series' chunk whose record ids are above
/// `covered`; returns how many.
fn add_rows(
    index: &mut MonthIndex,
    series: SeriesId,
    key: Option<&SeriesKey>,
    chunk: &Chunk,
    texts: Vec<(usize, Cow<'_, str>)>,
    covered: u64,
    options: WriterOptions,
) -> Result<u64> {
    let (level, logger) = key.map_or((None, None), level_and_logger);
    let mut added = 0;
    for (row, text) in texts {
        let record_id = chunk.record_ids[row];
        if record_id <= covered {
            continue;
        }
        let doc = TextDoc {
            series,
            timestamp: chunk.timestamps[row],
            record_id,
            text: &text,
            level,
            logger,
        };
        index.add(&doc, options)?;
        added += 1;
    }
    Ok(added)
}

/// Field-table indexes of a segment's text columns for `kind`, ascending.
pub(crate) fn text_field_ids(segment: &SegmentReader, kind: SeriesKind) -> Vec<u32> {
    segment
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, (name, value_type))| *value_type == crate::model::ValueType::Str && kind.text_fields().contains(&&**name))
        .map(|(i, _)| i as u32)
        .collect()
}
