//! The commit store on the history facade (the original design's `DataStorageManager`):
//! store commits with the diff of every file, deduplicated by hash; read one by hash (or a
//! unique prefix), or the recent commits of a repository.
//!
//! ```
//! use annals::history::History;
//! use annals::{CommitData, DiffData, Options, StorageStatus};
//! let dir = tempfile::tempdir().unwrap();
//! let history = History::open(dir.path(), Options::default()).unwrap();
//! let commit = CommitData {
//!     commit_hash: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
//!     message: "Fix the flush order".into(),
//!     author: "Ada".into(),
//!     author_email: Some("ada@example.com".into()),
//!     timestamp: 1_700_000_000_000_000_000,
//!     repository: "acme/app".into(),
//!     branch: "main".into(),
//!     pusher: None,
//!     commit_count: 1,
//! };
//! let diff = DiffData {
//!     file_path: "src/flush.rs".into(),
//!     old_path: None,
//!     additions: 2,
//!     deletions: 1,
//!     binary: false,
//!     changes: None,
//!     diff_content: Some(b"@@ -1 +1,2 @@\n-a\n+b\n+c\n".to_vec()),
//! };
//! let stored = history.store_commit(&commit, &[diff.clone()]).unwrap();
//! assert_eq!(stored.status, StorageStatus::Success);
//! let again = history.store_commit(&commit, &[diff]).unwrap();
//! assert_eq!(again.status, StorageStatus::Duplicate);
//! let found = history.get_commit_by_hash("4b825dc").unwrap().unwrap();
//! assert_eq!((found.commit.message.as_str(), found.diff_count), ("Fix the flush order", 1));
//! let recent = history.get_recent_commits("acme/app", 10).unwrap();
//! assert_eq!(recent.commits.len(), 1);
//! ```

use super::History;
use crate::commit_index::CommitLocation;
use crate::engine::Snapshot;
use crate::error::{Error, Result};
use crate::index::TagPredicate;
use crate::model::commit::FILE_FIELDS;
use crate::model::{
    Batch, COMMIT_MEASUREMENT, CommitData, CommitHash, DIFF_MEASUREMENT, DiffData, FieldValue, SeriesKey, SeriesKind, StorageMetadata,
    StorageResult, StorageStatus,
};
use crate::query::Query;
use crate::read::Order;
use crate::scan::SeriesSelector;
use crate::time::TimeRange;
use std::sync::Arc;

/// Shortest hash prefix [`History::get_commit_by_hash`] accepts, as git's default
/// abbreviation.
pub const MIN_HASH_PREFIX: usize = 7;

/// Candidates an ambiguous prefix's error lists.
const AMBIGUOUS_LISTED: usize = 10;

/// Where the bytes of a file's diff are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffStorage {
    /// The commit was stored without this file's diff.
    Absent,
    /// In the store's segments, compressed with the other diffs of its block.
    Inline,
    /// In the object store, under this key (the sha256 of the bytes, hex).
    Object {
        /// The object's key.
        key: String,
    },
}

impl DiffStorage {
    /// `none`, `inline` or `object`, as the CLI's `stored` column shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            DiffStorage::Absent => "none",
            DiffStorage::Inline => "inline",
            DiffStorage::Object { .. } => "object",
        }
    }
}

/// One file of a stored commit; its bytes come from [`History::get_diff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDiff {
    /// The path after the commit.
    pub file_path: String,
    /// The path before it, for a rename.
    pub old_path: Option<String>,
    /// Lines added.
    pub additions: i64,
    /// Lines removed.
    pub deletions: i64,
    /// A binary file (no line counts).
    pub binary: bool,
    /// The summary given with it.
    pub changes: Option<String>,
    /// Length of the diff in bytes, when it was stored.
    pub diff_bytes: Option<u64>,
    /// Where the diff is.
    pub stored: DiffStorage,
}

/// A commit as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommit {
    /// The commit as it was stored (the hash in lower case).
    pub commit: CommitData,
    /// Its stable id (the record id of its row).
    pub commit_id: u64,
    /// Lines added over its files.
    pub additions: i64,
    /// Lines removed over its files.
    pub deletions: i64,
    /// Number of files.
    pub diff_count: u64,
    /// The files, in the order they were stored; empty in listings
    /// ([`History::get_recent_commits`]).
    pub files: Vec<StoredDiff>,
}

impl StoredCommit {
    /// The commit as JSON with the original design's keys: the [`CommitData`] names (the
    /// timestamp in RFC 3339), `commit_id`, `additions`, `deletions`, `diff_count`, and
    /// `files` when it was read with them, each `{file_path, additions, deletions, binary,
    /// old_path, diff_bytes, stored}` (`stored`: `inline`, `object` or `none`).
    pub fn to_json(&self, with_files: bool) -> serde_json::Value {
        let c = &self.commit;
        let mut object = serde_json::json!({
            "commit_hash": c.commit_hash,
            "message": c.message,
            "author": c.author,
            "author_email": c.author_email,
            "timestamp": crate::time::format_rfc3339(c.timestamp),
            "repository": c.repository,
            "branch": c.branch,
            "pusher": c.pusher,
            "commit_count": c.commit_count,
            "commit_id": self.commit_id,
            "additions": self.additions,
            "deletions": self.deletions,
            "diff_count": self.diff_count,
        });
        if with_files && let Some(map) = object.as_object_mut() {
            let files: Vec<serde_json::Value> = self
                .files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "file_path": f.file_path,
                        "additions": f.additions,
                        "deletions": f.deletions,
                        "binary": f.binary,
                        "old_path": f.old_path,
                        "diff_bytes": f.diff_bytes,
                        "stored": f.stored.as_str(),
                    })
                })
                .collect();
            map.insert("files".into(), files.into());
        }
        object
    }
}

impl StoredCommit {
    /// [`StoredCommit::to_json`] with its files, each carrying `diff_content`: its diff in
    /// base64 (standard alphabet, padded), or null; `diffs` are in the files' order.
    pub fn to_json_with_diffs(&self, diffs: &FileDiffs) -> serde_json::Value {
        let mut json = self.to_json(true);
        if let Some(files) = json.get_mut("files").and_then(|f| f.as_array_mut()) {
            for (file, bytes) in files.iter_mut().zip(diffs) {
                if let Some(map) = file.as_object_mut() {
                    let encoded = bytes
                        .as_ref()
                        .map(|b| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b));
                    map.insert("diff_content".into(), encoded.into());
                }
            }
        }
        json
    }
}

/// The diff bytes of each file of a commit, in the order of its files (`None` for a file
/// stored without its diff).
pub type FileDiffs = Vec<Option<Vec<u8>>>;

/// Which commits [`History::commits`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitQuery {
    /// Only this repository (`owner/repo`).
    pub repository: Option<String>,
    /// Only commits by this author (the name, exactly).
    pub author: Option<String>,
    /// Only commits of this branch.
    pub branch: Option<String>,
    /// Commits at or after this time (ns).
    pub start_time: Option<i64>,
    /// Commits before this time (ns).
    pub end_time: Option<i64>,
    /// Only commits that touched a file whose path (or old path, for a rename) starts
    /// with this text; end it with `/` to mean a directory.
    pub path: Option<String>,
    /// At most this many, 1..=1000.
    pub limit: usize,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
}

impl Default for CommitQuery {
    fn default() -> Self {
        CommitQuery {
            repository: None,
            author: None,
            branch: None,
            start_time: None,
            end_time: None,
            path: None,
            limit: 20,
            cursor: None,
        }
    }
}

/// A page of commits, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPage {
    /// The commits, without their files.
    pub commits: Vec<StoredCommit>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// A commit that passed its checks, on its way into a batch.
struct Checked<'a> {
    /// Position in the caller's list.
    at: usize,
    commit: &'a CommitData,
    hash: CommitHash,
    diffs: &'a [DiffData],
    /// Per diff, the object key when its bytes went to the object store.
    objects: Vec<Option<String>>,
}

impl History {
    /// Stores one commit with its files (the original `store_commit`). A hash the store
    /// holds answers [`StorageStatus::Duplicate`] and changes nothing; a commit that fails
    /// its checks answers [`StorageStatus::Failed`] with the reason and stores nothing.
    /// Errors are failures of the store itself (I/O, a poisoned or closed handle).
    pub fn store_commit(&self, commit: &CommitData, diffs: &[DiffData]) -> Result<StorageResult> {
        let mut results = self.store_commits(&[(commit.clone(), diffs.to_vec())])?;
        results
            .pop()
            .ok_or_else(|| Error::Invariant("store_commits returned no result for one commit".into()))
    }

    /// Stores commits with their files in one write: the new ones become durable and
    /// visible together, or none does. Duplicates (of stored commits, or of an earlier
    /// commit in the list) answer [`StorageStatus::Duplicate`]; when any commit fails its
    /// checks, or its large diff cannot be kept, none is stored: it answers
    /// [`StorageStatus::Failed`] with the reason, and every other new commit `Failed` naming
    /// it. One result per commit, in order.
    pub fn store_commits(&self, commits: &[(CommitData, Vec<DiffData>)]) -> Result<Vec<StorageResult>> {
        let options = self.engine.options();
        let inline_max = options.inline_diff_max_bytes.min(options.limits.max_string_value_bytes);
        let mut results: Vec<Option<StorageResult>> = vec![None; commits.len()];
        let mut accepted: Vec<Checked<'_>> = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        let mut first_failure: Option<usize> = None;
        for (at, (commit, diffs)) in commits.iter().enumerate() {
            let checked = commit.check().and_then(|hash| {
                for diff in diffs {
                    diff.check()?;
                }
                Ok(hash)
            });
            match checked {
                Err(reason) => {
                    first_failure.get_or_insert(at);
                    results[at] = Some(failed(commit, reason));
                }
                Ok(hash) => {
                    if !seen.insert(hash) {
                        results[at] = Some(duplicate(commit, None, "it appears earlier in the same batch"));
                    } else if let Some(location) = self.engine.commit_location(&hash) {
                        results[at] = Some(duplicate(commit, Some(location.record_id), "the store holds it"));
                    } else {
                        accepted.push(Checked {
                            at,
                            commit,
                            hash,
                            diffs,
                            objects: Vec::new(),
                        });
                    }
                }
            }
        }
        if let Some(bad) = first_failure {
            for c in &accepted {
                results[c.at] = Some(failed(
                    c.commit,
                    format!("not stored: commit {} of the batch failed its checks", bad + 1),
                ));
            }
            return Ok(results.into_iter().flatten().collect());
        }
        // Large diffs go to the object store first, so no commit row ever names an object
        // that is not there. A failure fails the whole batch, which then writes nothing.
        for at in 0..accepted.len() {
            let mut keys = Vec::with_capacity(accepted[at].diffs.len());
            for diff in accepted[at].diffs {
                let key = match &diff.diff_content {
                    Some(content) if content.len() > inline_max => match self.objects().put(content) {
                        Ok(key) => Some(key),
                        Err(e) => {
                            let c = &accepted[at];
                            let reason = format!("the object store could not keep the diff of {:?}: {e}", diff.file_path);
                            results[c.at] = Some(failed(c.commit, reason));
                            for other in accepted.iter().filter(|o| o.at != c.at) {
                                results[other.at] =
                                    Some(failed(other.commit, format!("not stored: commit {} of the batch failed", c.at + 1)));
                            }
                            return Ok(results.into_iter().flatten().collect());
                        }
                    },
                    _ => None,
                };
                keys.push(key);
            }
            accepted[at].objects = keys;
        }
        // Another writer may store one of these hashes first: the engine refuses the whole
        // batch naming it, and the rest is tried again without it.
        loop {
            if accepted.is_empty() {
                break;
            }
            let mut batch = Batch::new();
            let mut rows = Vec::with_capacity(accepted.len());
            for c in &accepted {
                rows.push(batch.len());
                add_commit(&mut batch, c)?;
            }
            match self.engine.write(&batch) {
                Ok(receipt) => {
                    for (c, row) in accepted.iter().zip(rows) {
                        results[c.at] = Some(StorageResult {
                            success: true,
                            status: StorageStatus::Success,
                            commit_id: Some(receipt.first_seq + row as u64),
                            message: "stored".to_string(),
                            timestamp: c.commit.timestamp,
                            metadata: metadata(c),
                        });
                    }
                    break;
                }
                Err(Error::DuplicateCommit { hash, in_batch: false }) => {
                    let Some(i) = accepted.iter().position(|c| c.hash.to_hex() == hash) else {
                        return Err(Error::Invariant(format!(
                            "the store refused commit {hash}, which the batch does not hold"
                        )));
                    };
                    let c = accepted.remove(i);
                    let id = self.engine.commit_location(&c.hash).map(|l| l.record_id);
                    results[c.at] = Some(duplicate(c.commit, id, "another writer stored it first"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// The commit with this hash, or with the only hash that starts with this prefix (at
    /// least [`MIN_HASH_PREFIX`] hex digits), with its files. `None` when there is none; an
    /// ambiguous prefix is an error listing the candidates.
    pub fn get_commit_by_hash(&self, hash: &str) -> Result<Option<StoredCommit>> {
        let Some(location) = self.locate(hash)? else { return Ok(None) };
        let snapshot = self.engine.snapshot();
        let Some((key, mut commit)) = read_commit(&snapshot, &location)? else {
            return Ok(None);
        };
        commit.files = files_of(&snapshot, &key, &commit)?;
        Ok(Some(commit))
    }

    /// Where the commit a full hash or a unique prefix names is.
    fn locate(&self, hash: &str) -> Result<Option<CommitLocation>> {
        let hash = hash.trim();
        if hash.len() < MIN_HASH_PREFIX {
            return Err(Error::invalid(format!(
                "{hash:?} is too short: give at least {MIN_HASH_PREFIX} hex digits of the commit hash"
            )));
        }
        if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!("{hash:?} is not a hexadecimal commit hash")));
        }
        if let Ok(full) = CommitHash::parse(hash) {
            return Ok(self.engine.commit_location(&full));
        }
        let found = self.engine.commits_with_prefix(hash, AMBIGUOUS_LISTED + 1);
        match found.as_slice() {
            [] => Ok(None),
            [(_, location)] => Ok(Some(*location)),
            many => {
                let listed: Vec<String> = many.iter().take(AMBIGUOUS_LISTED).map(|(h, _)| h.to_hex()).collect();
                let more = if many.len() > AMBIGUOUS_LISTED { ", …" } else { "" };
                Err(Error::invalid(format!(
                    "commit prefix {hash:?} is ambiguous: {}{more}",
                    listed.join(", ")
                )))
            }
        }
    }

    /// The newest commits of a repository, without their files.
    pub fn get_recent_commits(&self, repository: &str, limit: usize) -> Result<CommitPage> {
        self.commits(&CommitQuery {
            repository: Some(repository.to_string()),
            limit,
            ..CommitQuery::default()
        })
    }

    /// Commits by repository, author, branch, file path and time, newest first, a page at
    /// a time.
    pub fn commits(&self, request: &CommitQuery) -> Result<CommitPage> {
        if !(1..=1000).contains(&request.limit) {
            return Err(Error::invalid(format!("limit {} is outside 1..=1000", request.limit)));
        }
        let after = request.cursor.as_deref().map(PageEnd::decode).transpose()?;
        let mut selector = SeriesSelector::measurement(COMMIT_MEASUREMENT).with_kind(SeriesKind::Commit);
        for (tag, value) in [
            ("repository", &request.repository),
            ("author", &request.author),
            ("branch", &request.branch),
        ] {
            if let Some(v) = value {
                selector = selector.with_predicate(TagPredicate::eq(tag, v.as_str()));
            }
        }
        let start = request.start_time.unwrap_or(i64::MIN);
        // The walk's exclusive upper bound, as (timestamp, record id): below the end time,
        // and at or below the previous page's last instant (`covers` drops what it returned).
        let mut below = (request.end_time.unwrap_or(i64::MAX), 0);
        if let Some(after) = &after {
            below = below.min((after.timestamp, u64::MAX));
        }
        let snapshot = self.engine.snapshot();
        let series: rustc_hash::FxHashSet<crate::model::SeriesId> = snapshot.select(&selector)?.into_iter().collect();
        if series.is_empty() {
            return Ok(CommitPage {
                commits: Vec::new(),
                next_cursor: None,
            });
        }
        let touching = match &request.path {
            Some(prefix) => {
                let range = TimeRange::new(start, below.0.saturating_add(1));
                Some(hashes_touching(&snapshot, request.repository.as_deref(), range, prefix)?)
            }
            None => None,
        };
        // Newest first through the commit index's time order, reading only the rows of
        // the commits returned (and of one more, to know there is a next page). An entry
        // whose row the snapshot does not have (archived, or written after the snapshot
        // was taken) is passed over.
        let keep = |hash: &CommitHash, location: &CommitLocation| {
            series.contains(&location.series)
                && !after.as_ref().is_some_and(|a| a.covers(location.timestamp, location.record_id))
                && touching.as_ref().is_none_or(|t| t.contains(hash))
        };
        let mut commits: Vec<StoredCommit> = Vec::with_capacity(request.limit);
        let mut more = false;
        'walk: loop {
            let wanted = request.limit + 1 - commits.len();
            let entries = self.engine.commits_newest_below(below, start, wanted, keep);
            for (_, location) in &entries {
                below = (location.timestamp, location.record_id);
                let Some((_, commit)) = read_commit(&snapshot, location)? else {
                    continue;
                };
                if commits.len() == request.limit {
                    more = true;
                    break 'walk;
                }
                commits.push(commit);
            }
            if entries.len() < wanted {
                break;
            }
        }
        let next_cursor = match commits.last() {
            Some(last) if more => Some(PageEnd::after(&commits, last.commit.timestamp, after.as_ref()).encode()),
            _ => None,
        };
        Ok(CommitPage { commits, next_cursor })
    }

    /// The commit with its files and the bytes of every file's diff (`None` for a file
    /// stored without one), in the files' order; the diff column is read once for all.
    pub fn get_commit_with_diffs(&self, hash: &str) -> Result<Option<(StoredCommit, FileDiffs)>> {
        let Some(location) = self.locate(hash)? else { return Ok(None) };
        let snapshot = self.engine.snapshot();
        let Some((key, mut commit)) = read_commit(&snapshot, &location)? else {
            return Ok(None);
        };
        let fields: Vec<&str> = FILE_FIELDS.iter().copied().chain(["diff"]).collect();
        let mut diffs = Vec::with_capacity(commit.diff_count as usize);
        for (_, row) in file_rows(&snapshot, &key, &commit, &fields)? {
            let file = diff_from(&row);
            let bytes = match &file.stored {
                DiffStorage::Object { key } => Some(self.objects().get(key)?),
                DiffStorage::Inline => inline_diff(row),
                DiffStorage::Absent => None,
            };
            commit.files.push(file);
            diffs.push(bytes);
        }
        Ok(Some((commit, diffs)))
    }

    /// The bytes of one file's diff in a commit (given by full hash or unique prefix):
    /// `None` when the commit, the file or its diff is not stored.
    pub fn get_diff(&self, hash: &str, file_path: &str) -> Result<Option<Vec<u8>>> {
        let Some(location) = self.locate(hash)? else { return Ok(None) };
        let snapshot = self.engine.snapshot();
        let Some((key, commit)) = read_commit(&snapshot, &location)? else {
            return Ok(None);
        };
        let fields: Vec<&str> = FILE_FIELDS.iter().copied().chain(["diff"]).collect();
        let rows = file_rows(&snapshot, &key, &commit, &fields)?;
        let Some((_, row)) = rows
            .into_iter()
            .find(|(_, row)| text(row, "file_path").as_deref() == Some(file_path))
        else {
            return Ok(None);
        };
        if let DiffStorage::Object { key } = diff_from(&row).stored {
            return self.objects().get(&key).map(Some);
        }
        Ok(inline_diff(row))
    }
}

/// Where a page of [`History::commits`] ended: the timestamp of its last commit and the
/// record ids of the commits it returned at that timestamp (commits of one instant are
/// few, and this way none is repeated or skipped whatever order they come in).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PageEnd {
    timestamp: i64,
    record_ids: Vec<u64>,
}

impl PageEnd {
    /// The end of a page holding `commits`, whose last one is at `timestamp`; a page that
    /// stays at the previous page's last instant carries its record ids on.
    fn after(commits: &[StoredCommit], timestamp: i64, previous: Option<&PageEnd>) -> PageEnd {
        let mut record_ids: Vec<u64> = commits
            .iter()
            .filter(|c| c.commit.timestamp == timestamp)
            .map(|c| c.commit_id)
            .collect();
        if let Some(p) = previous.filter(|p| p.timestamp == timestamp) {
            record_ids.extend(&p.record_ids);
        }
        PageEnd { timestamp, record_ids }
    }

    /// True for a row the pages up to this one returned already.
    fn covers(&self, timestamp: i64, record_id: u64) -> bool {
        timestamp > self.timestamp || (timestamp == self.timestamp && self.record_ids.contains(&record_id))
    }

    /// `c<timestamp>` then `.<record id>` for each.
    fn encode(&self) -> String {
        let mut out = format!("c{}", self.timestamp);
        for id in &self.record_ids {
            out.push('.');
            out.push_str(&id.to_string());
        }
        out
    }

    fn decode(text: &str) -> Result<PageEnd> {
        let bad = || Error::invalid(format!("{text:?} is not a cursor of a commit listing"));
        let mut parts = text.strip_prefix('c').ok_or_else(bad)?.split('.');
        let timestamp = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        let record_ids = parts.map(|p| p.parse().map_err(|_| bad())).collect::<Result<Vec<u64>>>()?;
        if record_ids.is_empty() || record_ids.len() > 1000 {
            return Err(bad());
        }
        Ok(PageEnd { timestamp, record_ids })
    }
}

/// The hashes of the commits in `range` (of `repository`, or of every repository) that
/// touched a file whose path or old path starts with `prefix`. Reads only the path and
/// hash columns of the file rows.
fn hashes_touching(
    snapshot: &Snapshot,
    repository: Option<&str>,
    range: TimeRange,
    prefix: &str,
) -> Result<rustc_hash::FxHashSet<CommitHash>> {
    let mut selector = SeriesSelector::measurement(DIFF_MEASUREMENT).with_kind(SeriesKind::Commit);
    if let Some(repository) = repository {
        selector = selector.with_predicate(TagPredicate::eq("repository", repository));
    }
    let query = Query {
        selector,
        range,
        fields: Some(vec!["commit_hash".into(), "file_path".into(), "old_path".into()]),
        ..Query::default()
    };
    let mut result = snapshot.query(&query)?;
    let column = |name: &str| result.value_columns.iter().position(|c| c == name);
    let (hash, path, old) = (column("commit_hash"), column("file_path"), column("old_path"));
    let mut hashes = rustc_hash::FxHashSet::default();
    for row in result.by_ref() {
        let row = row?;
        let text = |at: Option<usize>| {
            at.and_then(|c| row.values.get(c))
                .and_then(|v| v.as_ref())
                .and_then(FieldValue::as_str)
        };
        if [text(path), text(old)].into_iter().flatten().any(|p| p.starts_with(prefix))
            && let Some(h) = text(hash).and_then(|h| CommitHash::parse(h).ok())
        {
            hashes.insert(h);
        }
    }
    Ok(hashes)
}

/// The commit row at `location`, with its series key.
fn read_commit(snapshot: &Snapshot, location: &CommitLocation) -> Result<Option<(Arc<SeriesKey>, StoredCommit)>> {
    let Some(key) = snapshot.series_key(location.series) else {
        return Ok(None);
    };
    let range = TimeRange::new(location.timestamp, location.timestamp.saturating_add(1));
    let Some(fields) = row_at(snapshot, location.series, range, location.record_id)? else {
        return Ok(None);
    };
    let commit = commit_from(&key, location.timestamp, location.record_id, &fields);
    Ok(Some((key, commit)))
}

/// The file rows of a commit with their record ids, in order: the `diff_count` rows after
/// its own in its repository's file series, with only `fields` read.
fn file_rows(snapshot: &Snapshot, key: &SeriesKey, commit: &StoredCommit, fields: &[&str]) -> Result<Vec<(u64, RowFields)>> {
    if commit.diff_count == 0 {
        return Ok(Vec::new());
    }
    let Some(series) = diff_series_of(snapshot, key)? else {
        return Ok(Vec::new());
    };
    let ts = commit.commit.timestamp;
    let wanted = (commit.commit_id + 1)..=(commit.commit_id + commit.diff_count);
    let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    let mut rows = Vec::with_capacity(commit.diff_count as usize);
    let chunks = snapshot.series_chunks(series, TimeRange::new(ts, ts.saturating_add(1)), Some(&fields), Order::Ascending)?;
    chunks.lend_ascending(|chunk, range| {
        for row in range {
            let rid = chunk.record_ids[row];
            if wanted.contains(&rid) {
                rows.push((rid, row_fields(chunk, row)));
            }
        }
        false
    })?;
    rows.sort_by_key(|(rid, _)| *rid);
    Ok(rows)
}

/// The files of a commit, without their diff bytes.
fn files_of(snapshot: &Snapshot, key: &SeriesKey, commit: &StoredCommit) -> Result<Vec<StoredDiff>> {
    let rows = file_rows(snapshot, key, commit, &FILE_FIELDS)?;
    Ok(rows.iter().map(|(_, row)| diff_from(row)).collect())
}

/// A row's present fields, by name.
type RowFields = Vec<(Arc<str>, FieldValue)>;

fn row_fields(chunk: &crate::chunk::Chunk, row: usize) -> RowFields {
    chunk
        .columns
        .iter()
        .filter(|c| c.is_valid(row))
        .filter_map(|c| c.values.get(row).map(|v| (c.name.clone(), v)))
        .collect()
}

/// The file series of the repository of commit series `key`.
fn diff_series_of(snapshot: &Snapshot, key: &SeriesKey) -> Result<Option<crate::model::SeriesId>> {
    let Some(repository) = key.tag("repository") else { return Ok(None) };
    let diff_key = SeriesKey::new(SeriesKind::Commit, DIFF_MEASUREMENT, [("repository", repository)])?;
    Ok(snapshot.series_id(&diff_key))
}

/// The fields of the row with `record_id` in `series` within `range`.
fn row_at(snapshot: &Snapshot, series: crate::model::SeriesId, range: TimeRange, record_id: u64) -> Result<Option<RowFields>> {
    let mut found = None;
    snapshot
        .series_chunks(series, range, None, Order::Ascending)?
        .lend_ascending(|chunk, range| {
            found = chunk.record_ids[range.clone()]
                .iter()
                .position(|&r| r == record_id)
                .map(|at| row_fields(chunk, range.start + at));
            found.is_some()
        })?;
    Ok(found)
}

/// The diff bytes kept in a file row.
fn inline_diff(row: RowFields) -> Option<Vec<u8>> {
    row.into_iter().find_map(|(n, v)| match v {
        FieldValue::Bytes(b) if &*n == "diff" => Some(b),
        _ => None,
    })
}

fn text(fields: &[(Arc<str>, FieldValue)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| &**n == name)
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

fn integer(fields: &[(Arc<str>, FieldValue)], name: &str) -> Option<i64> {
    fields.iter().find_map(|(n, v)| match v {
        FieldValue::I64(i) if &**n == name => Some(*i),
        _ => None,
    })
}

fn commit_from(key: &SeriesKey, timestamp: i64, record_id: u64, fields: &[(Arc<str>, FieldValue)]) -> StoredCommit {
    StoredCommit {
        commit: CommitData {
            commit_hash: text(fields, "commit_hash").unwrap_or_default(),
            message: text(fields, "message").unwrap_or_default(),
            author: key.tag("author").unwrap_or_default().to_string(),
            author_email: text(fields, "author_email"),
            timestamp,
            repository: key.tag("repository").unwrap_or_default().to_string(),
            branch: key.tag("branch").unwrap_or_default().to_string(),
            pusher: text(fields, "pusher"),
            commit_count: integer(fields, "commit_count").unwrap_or(1),
        },
        commit_id: record_id,
        additions: integer(fields, "additions").unwrap_or(0),
        deletions: integer(fields, "deletions").unwrap_or(0),
        diff_count: integer(fields, "diff_count").unwrap_or(0).max(0) as u64,
        files: Vec::new(),
    }
}

fn diff_from(fields: &[(Arc<str>, FieldValue)]) -> StoredDiff {
    let diff_bytes = integer(fields, "diff_bytes").map(|b| b.max(0) as u64);
    let stored = match (text(fields, "diff_object"), diff_bytes) {
        (Some(key), _) => DiffStorage::Object { key },
        (None, Some(_)) => DiffStorage::Inline,
        (None, None) => DiffStorage::Absent,
    };
    StoredDiff {
        file_path: text(fields, "file_path").unwrap_or_default(),
        old_path: text(fields, "old_path"),
        additions: integer(fields, "additions").unwrap_or(0),
        deletions: integer(fields, "deletions").unwrap_or(0),
        binary: fields.iter().any(|(n, v)| &**n == "binary" && *v == FieldValue::Bool(true)),
        changes: text(fields, "changes"),
        diff_bytes,
        stored,
    }
}

/// Adds a commit's row and its files' rows, commit first.
fn add_commit(batch: &mut Batch, c: &Checked<'_>) -> Result<()> {
    let hex = c.hash.to_hex();
    batch.add_row(&c.commit.series_key()?, c.commit.timestamp, c.commit.fields(&c.hash, c.diffs))?;
    let diff_key = c.commit.diff_series_key()?;
    for (i, diff) in c.diffs.iter().enumerate() {
        let mut fields: Vec<(&str, FieldValue)> = vec![
            ("commit_hash", FieldValue::Str(hex.clone())),
            ("file_path", FieldValue::Str(diff.file_path.clone())),
            ("additions", FieldValue::I64(diff.additions)),
            ("deletions", FieldValue::I64(diff.deletions)),
            ("binary", FieldValue::Bool(diff.binary)),
        ];
        if let Some(old) = &diff.old_path {
            fields.push(("old_path", FieldValue::Str(old.clone())));
        }
        if let Some(changes) = &diff.changes {
            fields.push(("changes", FieldValue::Str(changes.clone())));
        }
        if let Some(content) = &diff.diff_content {
            fields.push(("diff_bytes", FieldValue::I64(content.len() as i64)));
            match c.objects.get(i).cloned().flatten() {
                Some(key) => fields.push(("diff_object", FieldValue::Str(key))),
                None => fields.push(("diff", FieldValue::Bytes(content.clone()))),
            }
        }
        batch.add_row(&diff_key, c.commit.timestamp, fields)?;
    }
    Ok(())
}

fn metadata(c: &Checked<'_>) -> StorageMetadata {
    let mut sizes = StorageMetadata {
        total_additions: c.diffs.iter().map(|d| d.additions).sum(),
        total_deletions: c.diffs.iter().map(|d| d.deletions).sum(),
        files: c.diffs.len() as u64,
        ..StorageMetadata::default()
    };
    for (i, diff) in c.diffs.iter().enumerate() {
        let Some(content) = &diff.diff_content else { continue };
        if c.objects.get(i).is_some_and(Option::is_some) {
            sizes.offloaded_bytes += content.len() as u64;
        } else {
            sizes.inline_bytes += content.len() as u64;
        }
    }
    sizes
}

fn failed(commit: &CommitData, reason: String) -> StorageResult {
    StorageResult {
        success: false,
        status: StorageStatus::Failed,
        commit_id: None,
        message: reason,
        timestamp: commit.timestamp,
        metadata: StorageMetadata::default(),
    }
}

fn duplicate(commit: &CommitData, commit_id: Option<u64>, why: &str) -> StorageResult {
    StorageResult {
        success: false,
        status: StorageStatus::Duplicate,
        commit_id,
        message: format!("commit {} is a duplicate: {why}", commit.commit_hash.to_ascii_lowercase()),
        timestamp: commit.timestamp,
        metadata: StorageMetadata::default(),
    }
}
