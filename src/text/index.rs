//! The on-disk full-text index: one tantivy index per month, in `data/<YYYY-MM>/text/`.
//!
//! A document is one log record or alert event: its text (tokenized by
//! [`super::tokenizer`], positions kept, nothing stored), its timestamp, record id and
//! series id as fast fields, and its level and logger as raw terms. The text itself lives
//! once, in the segments; a hit is fetched from there by (series, timestamp, record id).
//!
//! Each commit carries a payload `{"format":3,"covered_seq":N}`: every record of the
//! month with a record id up to N is indexed, none above it. Commits follow the flushes
//! that publish segments, so on open the records of segments past N are indexed again
//! (catch-up), which is idempotent. tantivy types stay inside this module.

use super::query::{TextField, TextQuery};
use super::tokenizer::Terms;
use crate::error::{Error, Result};
use crate::time::Bucket;
use crate::time::{Month, TimeRange};
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::index::SegmentId;
use tantivy::query::{AllQuery, BooleanQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::{
    DocId, DocSet, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Score, Searcher, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
};

/// Version of the index layout (schema, tokenizer, payload); a different one is rebuilt.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// Name of the tokenizer in the schema.
const TOKENIZER: &str = "annals_log_v2";
/// tantivy's smallest writer memory budget per thread.
const WRITER_MIN_MEMORY: usize = 15_000_000;
/// Name of a month's index directory.
pub(crate) const DIR_NAME: &str = "text";

#[derive(Clone, Copy)]
struct Fields {
    text: Field,
    ts: Field,
    rid: Field,
    series: Field,
    level: Field,
    logger: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let text = builder.add_text_field("text", TextOptions::default().set_indexing_options(indexing));
    let ts = builder.add_i64_field("ts", FAST);
    let rid = builder.add_u64_field("rid", FAST);
    let series = builder.add_u64_field("series", FAST);
    // Level and logger are matched whole and never scored: no field norms (a byte per
    // document each).
    let raw = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    );
    let level = builder.add_text_field("level", raw.clone());
    let logger = builder.add_text_field("logger", raw);
    (
        builder.build(),
        Fields {
            text,
            ts,
            rid,
            series,
            level,
            logger,
        },
    )
}

/// How a month's index is laid out: the document store, which holds nothing but an offset
/// per document, compressed with zstd rather than lz4 (4 bytes per document to 2).
///
/// Documents are not sorted by time (tantivy's index sorting): it would let a newest-first
/// search stop early inside a segment, but interleaving the series spreads each term's
/// postings (W2 full: postings 12.1 -> 17.5 MB, ingest 6.3 -> 8.6 s).
fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor::default()),
        ..IndexSettings::default()
    }
}

fn text_error(path: &Path, e: tantivy::TantivyError) -> Error {
    if let tantivy::TantivyError::IoError(io) = &e
        && io.kind() == std::io::ErrorKind::StorageFull
    {
        return Error::DiskFull {
            op: "write the full-text index",
            path: path.to_path_buf(),
        };
    }
    Error::TextIndex {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    format: u32,
    covered_seq: u64,
}

/// One record to index.
pub(crate) struct TextDoc<'a> {
    pub series: u32,
    pub timestamp: i64,
    pub record_id: u64,
    pub text: &'a str,
    pub level: Option<&'a str>,
    pub logger: Option<&'a str>,
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterOptions {
    pub threads: usize,
    pub memory_bytes: usize,
}

impl WriterOptions {
    /// The share of one of `writers` writers open at once: the memory is divided among
    /// them (each writer's tables are sized by its budget, so a flush that touches many
    /// months, such as an import of years of history, would otherwise hold many full
    /// budgets), and each indexes on one thread.
    pub(crate) fn shared_by(self, writers: usize) -> WriterOptions {
        if writers <= 1 {
            return self;
        }
        WriterOptions {
            threads: 1,
            memory_bytes: self.memory_bytes / writers,
        }
    }
}

/// One month's index, open for reading and (lazily) writing.
pub(crate) struct MonthIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    writer: Option<IndexWriter>,
    fields: Fields,
    covered: u64,
    /// Documents added since the last commit.
    pending: u64,
    /// Time maps of the segments, built as views are taken and shared with them.
    time_maps: TimeMaps,
}

/// What [`MonthIndex::open_read_only`] found.
pub(crate) enum ReadOnly {
    /// No index directory.
    Absent,
    /// An index of another format (an earlier version's), which open replaces.
    OtherFormat(u32),
    /// An index of this format.
    Open(Box<MonthIndex>),
}

/// How [`MonthIndex::open`] found the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// A valid index.
    Existing,
    /// None was there; an empty one was created.
    Created,
    /// One was there but unreadable or of another format; it was replaced by an empty one.
    Replaced,
}

impl MonthIndex {
    /// Opens the index in `month_dir/text`, creating it when missing and replacing it when
    /// it cannot be read (it is derived data; the caller re-indexes the month).
    pub(crate) fn open(fs: &crate::io::Fs, month_dir: &Path) -> Result<(MonthIndex, Opened)> {
        let dir = month_dir.join(DIR_NAME);
        let existed = dir.is_dir();
        if existed {
            match Self::open_existing(&dir) {
                Ok(index) => return Ok((index, Opened::Existing)),
                Err(_) => fs.remove_dir_all(&dir)?,
            }
        }
        fs.create_dir_durable(month_dir)?;
        fs.create_dir_durable(&dir)?;
        let (schema, fields) = schema();
        let index = Index::builder()
            .schema(schema)
            .settings(settings())
            .create_in_dir(&dir)
            .map_err(|e| text_error(&dir, e))?;
        let month = Self::with_index(dir, index, fields, 0)?;
        Ok((month, if existed { Opened::Replaced } else { Opened::Created }))
    }

    /// Opens an existing index read-only (for `verify`).
    pub(crate) fn open_read_only(month_dir: &Path) -> Result<ReadOnly> {
        let dir = month_dir.join(DIR_NAME);
        if !dir.is_dir() {
            return Ok(ReadOnly::Absent);
        }
        // An index an earlier version wrote is not damage: open rebuilds it.
        if let Ok(index) = Index::open_in_dir(&dir)
            && let Ok(metas) = index.load_metas()
            && let Some(payload) = metas.payload.as_deref()
            && let Ok(payload) = serde_json::from_str::<Payload>(payload)
            && payload.format != FORMAT_VERSION
        {
            return Ok(ReadOnly::OtherFormat(payload.format));
        }
        Self::open_existing(&dir).map(|index| ReadOnly::Open(Box::new(index)))
    }

    fn open_existing(dir: &Path) -> Result<MonthIndex> {
        let index = Index::open_in_dir(dir).map_err(|e| text_error(dir, e))?;
        let (expected, fields) = schema();
        if index.schema() != expected {
            return Err(Error::TextIndex {
                path: dir.to_path_buf(),
                reason: "the schema is not this version's".into(),
            });
        }
        let metas = index.load_metas().map_err(|e| text_error(dir, e))?;
        let covered = match metas.payload.as_deref() {
            None => 0,
            Some(p) => match serde_json::from_str::<Payload>(p) {
                Ok(payload) if payload.format == FORMAT_VERSION => payload.covered_seq,
                _ => {
                    return Err(Error::TextIndex {
                        path: dir.to_path_buf(),
                        reason: format!("unknown commit payload {p:?}"),
                    });
                }
            },
        };
        Self::with_index(dir.to_path_buf(), index, fields, covered)
    }

    fn with_index(dir: PathBuf, index: Index, fields: Fields, covered: u64) -> Result<MonthIndex> {
        index.tokenizers().register(TOKENIZER, LogTokenizer);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| text_error(&dir, e))?;
        Ok(MonthIndex {
            dir,
            index,
            reader,
            writer: None,
            fields,
            covered,
            pending: 0,
            time_maps: TimeMaps::default(),
        })
    }

    /// Every record id up to this is indexed, none above.
    pub(crate) fn covered(&self) -> u64 {
        self.covered
    }

    /// Queues a document; it becomes searchable at the next [`MonthIndex::commit`].
    pub(crate) fn add(&mut self, doc: &TextDoc<'_>, options: WriterOptions) -> Result<()> {
        if self.writer.is_none() {
            let writer_options = tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(options.threads.max(1))
                .num_merge_threads(1)
                .memory_budget_per_thread((options.memory_bytes / options.threads.max(1)).max(WRITER_MIN_MEMORY))
                .build();
            let writer = self
                .index
                .writer_with_options(writer_options)
                .map_err(|e| text_error(&self.dir, e))?;
            self.writer = Some(writer);
        }
        let Some(writer) = self.writer.as_mut() else {
            // Set just above.
            return Ok(());
        };
        let f = self.fields;
        let mut document = TantivyDocument::new();
        document.add_text(f.text, doc.text);
        document.add_i64(f.ts, doc.timestamp);
        document.add_u64(f.rid, doc.record_id);
        document.add_u64(f.series, u64::from(doc.series));
        if let Some(level) = doc.level {
            document.add_text(f.level, level.to_lowercase());
        }
        if let Some(logger) = doc.logger {
            document.add_text(f.logger, logger.to_lowercase());
        }
        writer.add_document(document).map_err(|e| text_error(&self.dir, e))?;
        self.pending += 1;
        Ok(())
    }

    /// Makes everything added durable and searchable, recording that records up to
    /// `covered` are indexed.
    pub(crate) fn commit(&mut self, covered: u64) -> Result<()> {
        if self.writer.is_none() {
            if covered == self.covered {
                return Ok(());
            }
            // Nothing to add, but the payload must move on: commit through a writer.
            let writer = self
                .index
                .writer_with_num_threads(1, WRITER_MIN_MEMORY)
                .map_err(|e| text_error(&self.dir, e))?;
            self.writer = Some(writer);
        }
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let payload = serde_json::to_string(&Payload {
            format: FORMAT_VERSION,
            covered_seq: covered,
        })
        .map_err(|e| Error::TextIndex {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        let mut prepared = writer.prepare_commit().map_err(|e| text_error(&self.dir, e))?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(|e| text_error(&self.dir, e))?;
        self.reader.reload().map_err(|e| text_error(&self.dir, e))?;
        self.covered = covered;
        self.pending = 0;
        Ok(())
    }

    /// Drops documents added since the last commit (after a failed flush).
    pub(crate) fn rollback(&mut self) {
        if let Some(writer) = self.writer.as_mut() {
            // A failed rollback leaves the writer unusable; dropping it loses only
            // uncommitted documents, which is what a rollback means.
            if writer.rollback().is_err() {
                self.writer = None;
            }
        }
        self.pending = 0;
    }

    /// Merges all of the index's segments into one (fewer files, faster searches); the
    /// commit payload is kept. Returns false when there was at most one.
    pub(crate) fn merge_segments(&mut self) -> Result<bool> {
        // The writer's merge policy may be merging some of the segments in the background:
        // a merge that names a segment such a merge has consumed fails ("the segments that
        // were merged could not be found"). Let those finish before listing the segments.
        self.close_writer()?;
        let ids = self.index.searchable_segment_ids().map_err(|e| text_error(&self.dir, e))?;
        if ids.len() < 2 {
            return Ok(false);
        }
        let mut writer = self
            .index
            .writer_with_num_threads(1, WRITER_MIN_MEMORY)
            .map_err(|e| text_error(&self.dir, e))?;
        let merged = writer.merge(&ids).wait().map_err(|e| text_error(&self.dir, e));
        self.writer = Some(writer);
        merged?;
        // Let the writer delete the merged segments' files.
        self.close_writer()?;
        self.reader.reload().map_err(|e| text_error(&self.dir, e))?;
        Ok(true)
    }

    /// Stops the writer, letting running merges finish.
    pub(crate) fn close_writer(&mut self) -> Result<()> {
        if let Some(writer) = self.writer.take() {
            writer.wait_merging_threads().map_err(|e| text_error(&self.dir, e))?;
        }
        Ok(())
    }

    /// What a snapshot searches.
    pub(crate) fn view(&self) -> MonthView {
        let searcher = self.reader.searcher();
        let live: Vec<SegmentId> = searcher.segment_readers().iter().map(SegmentReader::segment_id).collect();
        let mut maps = self.time_maps.lock();
        // Merged-away segments' maps go; the views still holding them keep their own.
        maps.retain(|id, _| live.contains(id));
        // New segments' maps are built here, on the flush's thread, so that the first
        // search after a flush does not pay for them (about 10 ms per million documents).
        // One that cannot be read now is tried again, and its error reported, by a search.
        for segment in searcher.segment_readers() {
            let _ = time_map_of(&mut maps, segment);
        }
        drop(maps);
        MonthView {
            searcher,
            fields: self.fields,
            time_maps: self.time_maps.clone(),
        }
    }

    /// Files whose tantivy checksum fails.
    pub(crate) fn damaged_files(&self) -> Result<Vec<PathBuf>> {
        let files = self.index.validate_checksum().map_err(|e| text_error(&self.dir, e))?;
        let mut files: Vec<PathBuf> = files.into_iter().map(|f| self.dir.join(f)).collect();
        files.sort();
        Ok(files)
    }
}

/// A committed state of one month's index.
#[derive(Clone)]
pub(crate) struct MonthView {
    searcher: Searcher,
    fields: Fields,
    time_maps: TimeMaps,
}

/// Documents per entry of a [`TimeMap`].
const TIME_MAP_DOCS: u32 = 512;

/// The time span of each run of [`TIME_MAP_DOCS`] documents of one tantivy segment.
///
/// A flush adds its documents series by series, each series' rows in time order (so each
/// term's postings stay close together), which makes a run's span narrow: about the time
/// one series covers in 512 rows. A search of a time range, or of the newest or oldest
/// matches, reads only the runs that can hold them.
#[derive(Debug)]
struct TimeMap {
    /// (oldest, newest) timestamp of the documents of run i: `i * TIME_MAP_DOCS..`.
    spans: Vec<(i64, i64)>,
}

impl TimeMap {
    fn build(ts: &dyn ColumnValues<i64>, max_doc: u32) -> TimeMap {
        let mut spans = Vec::with_capacity(max_doc.div_ceil(TIME_MAP_DOCS) as usize);
        let mut values = vec![0i64; TIME_MAP_DOCS as usize];
        let mut start = 0u32;
        while start < max_doc {
            let len = TIME_MAP_DOCS.min(max_doc - start) as usize;
            ts.get_range(u64::from(start), &mut values[..len]);
            let run = &values[..len];
            let oldest = run.iter().copied().min().unwrap_or(i64::MIN);
            let newest = run.iter().copied().max().unwrap_or(i64::MAX);
            spans.push((oldest, newest));
            start += len as u32;
        }
        TimeMap { spans }
    }
}

/// The time map of `segment`, built and kept in `cache` when it is not there.
fn time_map_of(cache: &mut std::collections::HashMap<SegmentId, Arc<TimeMap>>, segment: &SegmentReader) -> tantivy::Result<Arc<TimeMap>> {
    if let Some(map) = cache.get(&segment.segment_id()) {
        return Ok(map.clone());
    }
    let ts = segment.fast_fields().i64("ts")?.first_or_default_col(i64::MIN);
    let map = Arc::new(TimeMap::build(ts.as_ref(), segment.max_doc()));
    cache.insert(segment.segment_id(), map.clone());
    Ok(map)
}

/// Time maps by segment, built when a view is taken (or, failing that, by a search).
type TimeMaps = Arc<parking_lot::Mutex<std::collections::HashMap<SegmentId, Arc<TimeMap>>>>;

/// A run of documents a time-ordered search reads: segment ordinal, run index, and the
/// run's span.
#[derive(Debug, Clone, Copy)]
struct Run {
    segment: usize,
    index: u32,
    oldest: i64,
    newest: i64,
}

/// The text indexes of every month, as a snapshot sees them.
#[derive(Clone, Default)]
pub(crate) struct TextView {
    pub months: BTreeMap<Month, MonthView>,
}

/// A document that matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub timestamp: i64,
    pub record_id: u64,
    pub series: u32,
    pub score: f32,
}

impl Candidate {
    /// Newest-first order: larger keys first.
    pub(crate) fn newest_key(&self) -> (i64, u64) {
        (self.timestamp, self.record_id)
    }
}

/// Which documents a search keeps, besides matching the query.
#[derive(Clone)]
pub(crate) struct Filter {
    pub range: TimeRange,
    /// Only these series (all when `None`).
    pub series: Option<Arc<RoaringBitmap>>,
    /// Keyset paging by time: only documents strictly past this one.
    pub page_after: Option<PageKey>,
}

impl Filter {
    /// True when a document passes everything but the page cursor.
    pub(crate) fn admits(&self, timestamp: i64, series: u32) -> bool {
        self.range.contains(timestamp) && self.series.as_ref().is_none_or(|s| s.contains(series))
    }

    pub(crate) fn after_cursor(&self, timestamp: i64, record_id: u64) -> bool {
        match self.page_after {
            None => true,
            Some(PageKey::Older(ts, rid)) => (timestamp, record_id) < (ts, rid),
            Some(PageKey::Newer(ts, rid)) => (timestamp, record_id) > (ts, rid),
        }
    }
}

/// Where the previous page of a time-ordered search ended: (timestamp, record id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKey {
    /// Newest first: only documents older than this.
    Older(i64, u64),
    /// Oldest first: only documents newer than this.
    Newer(i64, u64),
}

/// How hits are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ranking {
    Newest,
    Oldest,
    Relevance,
}

/// The best `limit` candidates of a search and the number of documents that passed the
/// filter (ignoring the page cursor).
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub best: Vec<Candidate>,
    pub total: u64,
}

/// Ranks candidates: a total order, best first.
pub(crate) fn better(ranking: Ranking, a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    match ranking {
        Ranking::Newest => b.newest_key().cmp(&a.newest_key()),
        Ranking::Oldest => a.newest_key().cmp(&b.newest_key()),
        Ranking::Relevance => b.score.total_cmp(&a.score).then_with(|| b.newest_key().cmp(&a.newest_key())),
    }
}

/// A candidate in a max-heap whose top is the worst kept.
struct Ranked(Candidate, Ranking);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        better(self.1, &self.0, &other.0)
    }
}

/// Keeps the best `limit` candidates.
pub(crate) struct TopCandidates {
    heap: BinaryHeap<Ranked>,
    limit: usize,
    ranking: Ranking,
}

impl TopCandidates {
    pub(crate) fn new(ranking: Ranking, limit: usize) -> TopCandidates {
        TopCandidates {
            heap: BinaryHeap::with_capacity(limit.min(4096) + 1),
            limit,
            ranking,
        }
    }

    pub(crate) fn push(&mut self, candidate: Candidate) {
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Ranked(candidate, self.ranking));
        } else if let Some(worst) = self.heap.peek()
            && better(self.ranking, &candidate, &worst.0) == std::cmp::Ordering::Less
        {
            self.heap.pop();
            self.heap.push(Ranked(candidate, self.ranking));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The worst candidate kept.
    pub(crate) fn worst(&self) -> Option<&Candidate> {
        self.heap.peek().map(|r| &r.0)
    }

    /// Best first.
    pub(crate) fn into_sorted(self) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self.heap.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| better(self.ranking, a, b));
        out
    }
}

/// Counts of matching documents per (bucket start, series).
pub(crate) type BucketCounts = rustc_hash::FxHashMap<(i64, u32), u64>;

impl MonthView {
    fn to_tantivy(&self, query: &TextQuery) -> Box<dyn Query> {
        let f = self.fields;
        let text_term = |t: &str| Term::from_field_text(f.text, t);
        match query {
            TextQuery::All => Box::new(AllQuery),
            TextQuery::Term(t) => Box::new(TermQuery::new(text_term(t), IndexRecordOption::WithFreqs)),
            TextQuery::Prefix(p) => {
                let mut q = PhrasePrefixQuery::new_with_offset(vec![(0, text_term(p))]);
                q.set_max_expansions(u32::MAX);
                Box::new(q)
            }
            TextQuery::Phrase { terms, prefix_last } => {
                let terms: Vec<(usize, Term)> = terms.iter().map(|(p, t)| (*p as usize, text_term(t))).collect();
                if *prefix_last {
                    let mut q = PhrasePrefixQuery::new_with_offset(terms);
                    q.set_max_expansions(u32::MAX);
                    Box::new(q)
                } else {
                    Box::new(PhraseQuery::new_with_offset(terms))
                }
            }
            TextQuery::Field { field, value } => {
                let field = match field {
                    TextField::Level => f.level,
                    TextField::Logger => f.logger,
                };
                Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
            }
            TextQuery::And(all) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = all
                    .iter()
                    .map(|q| match q {
                        TextQuery::Not(inner) => (Occur::MustNot, self.to_tantivy(inner)),
                        q => (Occur::Must, self.to_tantivy(q)),
                    })
                    .collect();
                if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            TextQuery::Or(any) => Box::new(BooleanQuery::new(any.iter().map(|q| (Occur::Should, self.to_tantivy(q))).collect())),
            TextQuery::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.to_tantivy(inner)),
            ])),
        }
    }

    fn error(&self, e: tantivy::TantivyError) -> Error {
        Error::TextIndex {
            path: PathBuf::from(DIR_NAME),
            reason: e.to_string(),
        }
    }

    /// The best `limit` matches passing `filter`, and (when `count`) how many pass it.
    pub(crate) fn search(&self, query: &TextQuery, filter: &Filter, ranking: Ranking, limit: usize, count: bool) -> Result<Found> {
        if !count && ranking != Ranking::Relevance {
            return self.search_by_time(query, filter, ranking, limit);
        }
        let collector = CandidateCollector {
            fields: self.fields,
            filter: filter.clone(),
            ranking,
            limit,
            count,
        };
        self.searcher
            .search(self.to_tantivy(query).as_ref(), &collector)
            .map_err(|e| self.error(e))
    }

    /// The time map of each segment of the searcher, by ordinal.
    fn time_maps(&self) -> Result<Vec<Arc<TimeMap>>> {
        let mut cache = self.time_maps.lock();
        self.searcher
            .segment_readers()
            .iter()
            .map(|segment| time_map_of(&mut cache, segment).map_err(|e| self.error(e)))
            .collect()
    }

    /// A newest- or oldest-first search that reads the runs of documents in that order
    /// (see [`TimeMap`]) and stops once no run left can hold a better match than the
    /// worst kept. Runs are read in batches, each batch in document order with one scorer
    /// per segment; batches double, so a rare term costs a few scorers, not one per run.
    fn search_by_time(&self, query: &TextQuery, filter: &Filter, ranking: Ranking, limit: usize) -> Result<Found> {
        let maps = self.time_maps()?;
        // The times a match may have: the range, narrowed by the page cursor.
        let (mut low, mut high) = (filter.range.start, filter.range.end.saturating_sub(1));
        match filter.page_after {
            Some(PageKey::Older(ts, _)) => high = high.min(ts),
            Some(PageKey::Newer(ts, _)) => low = low.max(ts),
            None => {}
        }
        let mut runs: Vec<Run> = maps
            .iter()
            .enumerate()
            .flat_map(|(segment, map)| {
                map.spans.iter().enumerate().map(move |(index, &(oldest, newest))| Run {
                    segment,
                    index: index as u32,
                    oldest,
                    newest,
                })
            })
            .filter(|run| run.newest >= low && run.oldest <= high)
            .collect();
        match ranking {
            Ranking::Oldest => runs.sort_unstable_by_key(|r| (r.oldest, r.segment, r.index)),
            _ => runs.sort_unstable_by_key(|r| (std::cmp::Reverse(r.newest), r.segment, r.index)),
        }
        let weight = self
            .to_tantivy(query)
            .weight(tantivy::query::EnableScoring::disabled_from_searcher(&self.searcher))
            .map_err(|e| self.error(e))?;
        let segments = self.searcher.segment_readers();
        let mut columns: Vec<Option<Columns>> = segments.iter().map(|_| None).collect();
        let mut top = TopCandidates::new(ranking, limit);
        let mut next = 0;
        let mut batch_len = 4;
        while next < runs.len() {
            // Every run from `next` on is no newer (no older) than this one.
            let bound = runs[next];
            let done = top.len() >= limit
                && top.worst().is_some_and(|w| match ranking {
                    Ranking::Oldest => bound.oldest > w.timestamp,
                    _ => bound.newest < w.timestamp,
                });
            if done {
                break;
            }
            let end = (next + batch_len).min(runs.len());
            let mut batch = runs[next..end].to_vec();
            batch.sort_unstable_by_key(|r| (r.segment, r.index));
            for same_segment in batch.chunk_by(|a, b| a.segment == b.segment) {
                let ordinal = same_segment[0].segment;
                let segment = &segments[ordinal];
                if columns[ordinal].is_none() {
                    columns[ordinal] = Some(Columns::open(segment, self.fields).map_err(|e| self.error(e))?);
                }
                let Some(cols) = columns[ordinal].as_ref() else { continue };
                let mut scorer = weight.scorer(segment, 1.0).map_err(|e| self.error(e))?;
                let alive = segment.alive_bitset();
                for run in same_segment {
                    let first = run.index * TIME_MAP_DOCS;
                    let last = (first + TIME_MAP_DOCS).min(segment.max_doc());
                    let mut doc = scorer.doc();
                    if doc < first {
                        doc = scorer.seek(first);
                    }
                    while doc < last {
                        if alive.is_none_or(|a| a.is_alive(doc)) {
                            consider(cols, filter, doc, 0.0, &mut top);
                        }
                        doc = scorer.advance();
                    }
                }
            }
            next = end;
            batch_len = batch_len.saturating_mul(2);
        }
        Ok(Found {
            best: top.into_sorted(),
            total: 0,
        })
    }

    /// Matches passing `filter` counted per (bucket start, series).
    pub(crate) fn count(&self, query: &TextQuery, filter: &Filter, bucket: Bucket) -> Result<BucketCounts> {
        let collector = CountCollector {
            fields: self.fields,
            filter: filter.clone(),
            bucket,
        };
        self.searcher
            .search(self.to_tantivy(query).as_ref(), &collector)
            .map_err(|e| self.error(e))
    }

    /// (record id, timestamp, series) of every document, for `verify`.
    pub(crate) fn all_documents(&self) -> Result<Vec<(u64, i64, u32)>> {
        let mut out = Vec::new();
        for segment in self.searcher.segment_readers() {
            let columns = Columns::open(segment, self.fields).map_err(|e| self.error(e))?;
            let alive = segment.alive_bitset();
            for doc in 0..segment.max_doc() {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    out.push((
                        columns.rid.get_val(doc),
                        columns.ts.get_val(doc),
                        columns.series.get_val(doc) as u32,
                    ));
                }
            }
        }
        Ok(out)
    }
}

struct Columns {
    ts: Arc<dyn ColumnValues<i64>>,
    rid: Arc<dyn ColumnValues<u64>>,
    series: Arc<dyn ColumnValues<u64>>,
}

impl Columns {
    fn open(segment: &SegmentReader, _fields: Fields) -> tantivy::Result<Columns> {
        let fast = segment.fast_fields();
        Ok(Columns {
            ts: fast.i64("ts")?.first_or_default_col(i64::MIN),
            rid: fast.u64("rid")?.first_or_default_col(0),
            series: fast.u64("series")?.first_or_default_col(u64::from(u32::MAX)),
        })
    }
}

/// Offers document `doc` to `top` if it passes `filter`'s range, series and cursor;
/// returns whether it passed the range and series (what a total counts).
fn consider(columns: &Columns, filter: &Filter, doc: DocId, score: Score, top: &mut TopCandidates) -> bool {
    let timestamp = columns.ts.get_val(doc);
    let series = columns.series.get_val(doc) as u32;
    if !filter.admits(timestamp, series) {
        return false;
    }
    let record_id = columns.rid.get_val(doc);
    if filter.after_cursor(timestamp, record_id) {
        top.push(Candidate {
            timestamp,
            record_id,
            series,
            score,
        });
    }
    true
}

struct CandidateCollector {
    fields: Fields,
    filter: Filter,
    ranking: Ranking,
    limit: usize,
    count: bool,
}

struct CandidateSegment {
    columns: Columns,
    filter: Filter,
    top: TopCandidates,
    total: u64,
    count: bool,
}

impl Collector for CandidateCollector {
    type Fruit = Found;
    type Child = CandidateSegment;

    fn for_segment(&self, _ordinal: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<CandidateSegment> {
        Ok(CandidateSegment {
            columns: Columns::open(segment, self.fields)?,
            filter: self.filter.clone(),
            top: TopCandidates::new(self.ranking, self.limit),
            total: 0,
            count: self.count,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.ranking == Ranking::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<Found>) -> tantivy::Result<Found> {
        let mut top = TopCandidates::new(self.ranking, self.limit);
        let mut total = 0;
        for fruit in fruits {
            total += fruit.total;
            fruit.best.into_iter().for_each(|c| top.push(c));
        }
        Ok(Found {
            best: top.into_sorted(),
            total,
        })
    }
}

impl SegmentCollector for CandidateSegment {
    type Fruit = Found;

    fn collect(&mut self, doc: DocId, score: Score) {
        if consider(&self.columns, &self.filter, doc, score, &mut self.top) && self.count {
            self.total += 1;
        }
    }

    fn harvest(self) -> Found {
        Found {
            best: self.top.into_sorted(),
            total: self.total,
        }
    }
}

struct CountCollector {
    fields: Fields,
    filter: Filter,
    bucket: Bucket,
}

struct CountSegment {
    columns: Columns,
    filter: Filter,
    bucket: Bucket,
    counts: BucketCounts,
}

impl Collector for CountCollector {
    type Fruit = BucketCounts;
    type Child = CountSegment;

    fn for_segment(&self, _ordinal: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<CountSegment> {
        Ok(CountSegment {
            columns: Columns::open(segment, self.fields)?,
            filter: self.filter.clone(),
            bucket: self.bucket,
            counts: BucketCounts::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BucketCounts>) -> tantivy::Result<BucketCounts> {
        let mut merged = BucketCounts::default();
        for fruit in fruits {
            for (key, n) in fruit {
                *merged.entry(key).or_default() += n;
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for CountSegment {
    type Fruit = BucketCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let timestamp = self.columns.ts.get_val(doc);
        let series = self.columns.series.get_val(doc) as u32;
        if self.filter.admits(timestamp, series) {
            *self.counts.entry((self.bucket.start(timestamp), series)).or_default() += 1;
        }
    }

    fn harvest(self) -> BucketCounts {
        self.counts
    }
}
/// The tokenizer registered with tantivy for the text field.
#[derive(Clone, Default)]
pub(crate) struct LogTokenizer;

pub(crate) struct LogTokenStream<'a> {
    terms: Terms<'a>,
    token: Token,
}

impl Tokenizer for LogTokenizer {
    type TokenStream<'a> = LogTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LogTokenStream<'a> {
        LogTokenStream {
            terms: Terms::new(text),
            token: Token::default(),
        }
    }
}

impl TokenStream for LogTokenStream<'_> {
    fn advance(&mut self) -> bool {
        match self.terms.next_into(&mut self.token.text) {
            Some((position, offsets)) => {
                self.token.position = position as usize;
                self.token.offset_from = offsets.start;
                self.token.offset_to = offsets.end;
                self.token.position_length = 1;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The run-by-run search of time-ordered pages against the full scan, over segments
    /// whose runs are narrow (series of rows a second apart, added series by series as a
    /// flush does), with ranges, series filters, cursors and limits drawn at random.
    #[test]
    fn time_ordered_searches_equal_the_full_scan() {
        let seed = crate::test_seed();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let (mut index, _) = MonthIndex::open(&crate::io::Fs::default(), dir.path()).unwrap();
        let words = ["alpha", "beta", "gamma", "delta"];
        let options = WriterOptions {
            threads: 1,
            memory_bytes: WRITER_MIN_MEMORY,
        };
        let second = 1_000_000_000i64;
        let mut record_id = 0u64;
        // Three flushes of four series; each flush covers the next 2,000 seconds.
        for flush in 0..3i64 {
            for series in 0..4u32 {
                for row in 0..(500 + 300 * series as i64) {
                    record_id += 1;
                    let text = format!("{} {}", words[rng.random_range(0..4)], words[rng.random_range(0..4)]);
                    let doc = TextDoc {
                        series,
                        timestamp: flush * 2_000 * second + row * 2_000 * second / (500 + 300 * series as i64),
                        record_id,
                        text: &text,
                        level: None,
                        logger: None,
                    };
                    index.add(&doc, options).unwrap();
                }
            }
            index.commit(record_id).unwrap();
        }
        let view = index.view();
        for n in 0..300 {
            let query = TextQuery::parse(words[rng.random_range(0..4)]).unwrap();
            let ranking = if rng.random_bool(0.5) { Ranking::Newest } else { Ranking::Oldest };
            let limit = [1, 7, 60, 500][rng.random_range(0..4)];
            let start = rng.random_range(0..6_000) * second;
            let filter = Filter {
                range: if rng.random_bool(0.5) {
                    TimeRange::new(start, start + rng.random_range(1..3_000) * second)
                } else {
                    TimeRange::ALL
                },
                series: rng
                    .random_bool(0.3)
                    .then(|| Arc::new(RoaringBitmap::from_iter([rng.random_range(0..4u32)]))),
                page_after: match rng.random_range(0..3) {
                    0 => None,
                    1 => Some(PageKey::Older(start, rng.random_range(0..record_id))),
                    _ => Some(PageKey::Newer(start, rng.random_range(0..record_id))),
                },
            };
            let by_runs = view.search(&query, &filter, ranking, limit, false).unwrap();
            let scanned = view.search(&query, &filter, ranking, limit, true).unwrap();
            assert_eq!(
                by_runs.best, scanned.best,
                "seed {seed}, search {n}: {query:?} {ranking:?} limit {limit}"
            );
        }
    }

    #[test]
    fn the_tantivy_stream_yields_the_same_terms() {
        let text = "Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6";
        let mut tokenizer = LogTokenizer;
        let mut stream = tokenizer.token_stream(text);
        let mut seen = Vec::new();
        while stream.advance() {
            let t = stream.token();
            seen.push(crate::text::TextToken {
                term: t.text.clone(),
                position: t.position as u32,
                offsets: t.offset_from..t.offset_to,
            });
        }
        assert_eq!(seen, crate::text::tokenize(text));
    }
}
