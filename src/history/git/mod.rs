//! Importing the history of a git repository (feature `git`): every commit reachable from a
//! ref (or from every ref), each with the diff of every file against its first parent,
//! computed as git computes it, so the counts equal `git log --numstat` and the stored
//! diff of a file equals its patch in `git show --full-index`.
//!
//! gix reads the repository (refs, history, trees, blobs); the tree diff, git's rename
//! detection (`rename`) and git's line diff and patch format (`xdiff`) are annals' own, so
//! the numbers match git's exactly. Workers prepare commits in parallel (each with its own
//! handle on the repository); the calling thread stores them in order, a batch per
//! [`History::store_commits`] call, so a batch is durable whole or not at all.

#[cfg(test)]
mod against_git;
mod rename;
#[cfg(test)]
mod test_support;
mod tree;
mod xdiff;

use super::History;
use crate::error::{Error, Result};
use crate::model::{CommitData, CommitHash, DiffData, path_text};
use crate::time::Month;
use gix::ObjectId;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tree::{Change, Entry};

/// What [`History::import_git`] imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The `repository` the commits are stored under (`owner/repo`); by default taken
    /// from the `origin` remote's URL, or the directory's name.
    pub repository: Option<String>,
    /// The ref whose history is imported (a branch, tag, remote branch or hex id); by
    /// default `HEAD`.
    pub branch: Option<String>,
    /// Every ref's history (branches, tags, remote branches); a commit reachable from
    /// several is stored once, under the first ref that reaches it (`HEAD` first).
    pub all: bool,
    /// Only commits whose committer date is at or after this time (ns).
    pub since: Option<i64>,
    /// Commits per write (one WAL record each), 1..=10,000.
    pub batch_commits: usize,
    /// Threads preparing commits; 0 for one per core.
    pub threads: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            repository: None,
            branch: None,
            all: false,
            since: None,
            batch_commits: 256,
            threads: 0,
        }
    }
}

/// Progress of an import, after each stored batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// Commits to look at.
    pub total: u64,
    /// Commits looked at so far.
    pub done: u64,
    /// Commits stored so far: durable, the store's durability mode permitting.
    pub stored: u64,
    /// Commits found stored already.
    pub duplicates: u64,
}

/// What an import did (the CLI's `--format json` prints the first six).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// Commits stored.
    pub stored: u64,
    /// Commits the store held already.
    pub duplicates: u64,
    /// Commits not stored because of a failure (see `stopped`).
    pub failed: u64,
    /// Files of the stored commits.
    pub files: u64,
    /// Diff bytes of the stored commits kept in the segments.
    pub inline_bytes: u64,
    /// Diff bytes of the stored commits kept in the object store.
    pub offloaded_bytes: u64,
    /// The repository name the commits were stored under.
    pub repository: String,
    /// Commits reachable from the imported refs (after `since`).
    pub commits: u64,
    /// Why the import stopped early, when it did: commits after that point were not
    /// attempted.
    pub stopped: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

/// A failure reading the repository.
#[derive(Debug)]
pub(crate) struct GitError(String);

impl GitError {
    pub(crate) fn object(id: ObjectId, e: impl std::fmt::Display) -> GitError {
        GitError(format!("object {id}: {e}"))
    }
}

/// Months of history the head may hold during an import before it is flushed.
const IMPORT_MONTHS_PER_FLUSH: usize = 4;

/// A commit to import: its id and the ref it was reached from.
#[derive(Debug, Clone)]
struct Pending {
    id: ObjectId,
    branch: Arc<str>,
}

/// A commit ready to store.
type Prepared = (CommitData, Vec<DiffData>);

/// The prepared commits coming back from the import workers, and the counter through
/// which the storer tells them how far in order it has got.
struct FromWorkers<'a> {
    rx: &'a std::sync::mpsc::Receiver<(usize, std::result::Result<Prepared, GitError>)>,
    stored_up_to: &'a AtomicUsize,
}

impl History {
    /// Imports the history of the git repository at `path` (bare or not): see
    /// [`ImportOptions`]. Commits the store holds are counted as duplicates without being
    /// read again; the rest are stored oldest first, in batches. `progress` is called
    /// after each batch.
    pub fn import_git(&self, path: &Path, options: &ImportOptions, progress: &mut dyn FnMut(ImportProgress)) -> Result<ImportReport> {
        let started = std::time::Instant::now();
        if !(1..=10_000).contains(&options.batch_commits) {
            return Err(Error::invalid(format!(
                "batch_commits {} is outside 1..=10000",
                options.batch_commits
            )));
        }
        let git = |e: GitError| Error::Git {
            path: path.to_path_buf(),
            reason: e.0,
        };
        let repo = gix::open(path).map_err(|e| Error::Git {
            path: path.to_path_buf(),
            reason: format!("not a git repository: {e}"),
        })?;
        let repository = match &options.repository {
            Some(name) if !name.trim().is_empty() => name.clone(),
            Some(_) => return Err(Error::invalid("the repository name is empty")),
            None => default_name(&repo, path),
        };
        let pending = commits_to_import(&repo, options).map_err(git)?;
        let mut report = ImportReport {
            repository: repository.clone(),
            commits: pending.len() as u64,
            ..ImportReport::default()
        };
        // Commits stored already are not read again.
        let mut todo = Vec::with_capacity(pending.len());
        for p in pending {
            match CommitHash::from_bytes(p.id.as_bytes()) {
                Some(hash) if self.engine.commit_location(&hash).is_some() => report.duplicates += 1,
                _ => todo.push(p),
            }
        }
        let total = report.commits;
        progress(ImportProgress {
            total,
            done: report.duplicates,
            stored: 0,
            duplicates: report.duplicates,
        });
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .clamp(1, 64);
        // Each worker opens the repository itself: gix handles are not shared across
        // threads without gix's `parallel` feature, and opening is cheap.
        drop(repo);
        let todo = Arc::new(todo);
        let next = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // Workers take runs of consecutive commits in order and send them back numbered;
        // a bounded channel keeps at most a few batches in memory. A run is one worker's
        // so that a file changed again a few commits later, and the trees around it, are
        // still in that worker's object cache (about a third less decompression on
        // cargo's history than commits dealt out one at a time); runs stay short enough
        // that every worker gets some of a small import.
        let run = (todo.len() / (threads * 8)).clamp(1, 64);
        // Commits come back out of order and wait to be stored in order; a worker claims a
        // run only within this many commits of the next one to store, so a slow commit
        // (a huge diff) holds back the others instead of letting the waiting ones pile up
        // in memory without bound.
        let window = options.batch_commits * 4 + run * threads;
        let stored_up_to = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, std::result::Result<Prepared, GitError>)>(options.batch_commits * 2);
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (todo, next, stored_up_to, stop, tx, path, repository) = (
                todo.clone(),
                next.clone(),
                stored_up_to.clone(),
                stop.clone(),
                tx.clone(),
                path.to_path_buf(),
                repository.clone(),
            );
            workers.push(std::thread::spawn(move || {
                let mut repo = match gix::open(&path) {
                    Ok(repo) => repo,
                    Err(e) => {
                        let _ = tx.send((usize::MAX, Err(GitError(format!("opening the repository again: {e}")))));
                        return;
                    }
                };
                repo.object_cache_size_if_unset(32 << 20);
                'work: while !stop.load(Ordering::Relaxed) {
                    let first = next.load(Ordering::Relaxed);
                    if first >= todo.len() {
                        break;
                    }
                    if first >= stored_up_to.load(Ordering::Relaxed) + window {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue;
                    }
                    if next
                        .compare_exchange(first, first + run, Ordering::Relaxed, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    for i in first..(first + run).min(todo.len()) {
                        if stop.load(Ordering::Relaxed) {
                            break 'work;
                        }
                        let prepared = prepare(&repo, &todo[i], &repository);
                        if tx.send((i, prepared)).is_err() {
                            break 'work;
                        }
                    }
                }
            }));
        }
        drop(tx);
        let outcome = self.store_in_order(
            path,
            FromWorkers {
                rx: &rx,
                stored_up_to: &stored_up_to,
            },
            todo.len(),
            options.batch_commits,
            &mut report,
            &mut |r: &ImportReport| {
                progress(ImportProgress {
                    total,
                    done: r.stored + r.duplicates + r.failed,
                    stored: r.stored,
                    duplicates: r.duplicates,
                })
            },
        );
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        for worker in workers {
            if worker.join().is_err() {
                return Err(Error::Invariant("a git import worker panicked".into()));
            }
        }
        outcome?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Receives prepared commits, puts them back in order and stores them a batch at a
    /// time, publishing in `stored_up_to` how many it has taken in order. Stops at the first batch the store refuses (`report.stopped`), or with an
    /// error when the repository cannot be read.
    fn store_in_order(
        &self,
        repo_path: &Path,
        workers: FromWorkers<'_>,
        count: usize,
        batch_commits: usize,
        report: &mut ImportReport,
        progress: &mut dyn FnMut(&ImportReport),
    ) -> Result<()> {
        let mut waiting: BTreeMap<usize, Prepared> = BTreeMap::new();
        let mut next = 0;
        let mut batch: Vec<Prepared> = Vec::with_capacity(batch_commits);
        let mut batch_bytes = 0usize;
        // Months the head holds commits of since the last flush (see below).
        let mut head_months = std::collections::BTreeSet::new();
        while next < count {
            let Ok((i, prepared)) = workers.rx.recv() else {
                return Err(Error::Invariant("the git import workers stopped early".into()));
            };
            let prepared = prepared.map_err(|e| Error::Git {
                path: repo_path.to_path_buf(),
                reason: e.0,
            })?;
            waiting.insert(i, prepared);
            while let Some(prepared) = waiting.remove(&next) {
                next += 1;
                workers.stored_up_to.store(next, Ordering::Relaxed);
                batch_bytes += prepared
                    .1
                    .iter()
                    .filter_map(|d| d.diff_content.as_ref())
                    .map(Vec::len)
                    .sum::<usize>();
                batch.push(prepared);
                // A batch is one WAL record: bounded by commits and by bytes.
                if batch.len() >= batch_commits || batch_bytes >= 32 << 20 || next == count {
                    // History spans years, and a flush keeps a full-text writer open for
                    // every month it holds: flushing before the head spans more than a few
                    // months keeps that to a few writers.
                    let months: std::collections::BTreeSet<Month> = batch.iter().map(|(c, _)| Month::of(c.timestamp)).collect();
                    if !head_months.is_empty() && head_months.union(&months).count() > IMPORT_MONTHS_PER_FLUSH {
                        self.engine.flush()?;
                        head_months.clear();
                    }
                    head_months.extend(months);
                    let stored = self.store_import_batch(&batch, report)?;
                    batch.clear();
                    batch_bytes = 0;
                    progress(report);
                    if !stored {
                        report.failed += (count - next) as u64;
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Stores one batch, counting its outcome; false when the store refused it.
    fn store_import_batch(&self, batch: &[Prepared], report: &mut ImportReport) -> Result<bool> {
        let results = self.store_commits(batch)?;
        let mut refused = None;
        for result in &results {
            match result.status {
                crate::StorageStatus::Success => {
                    report.stored += 1;
                    report.files += result.metadata.files;
                    report.inline_bytes += result.metadata.inline_bytes;
                    report.offloaded_bytes += result.metadata.offloaded_bytes;
                }
                crate::StorageStatus::Duplicate => report.duplicates += 1,
                crate::StorageStatus::Failed => {
                    report.failed += 1;
                    refused.get_or_insert_with(|| result.message.clone());
                }
            }
        }
        match refused {
            Some(reason) => {
                report.stopped = Some(reason);
                Ok(false)
            }
            None => Ok(true),
        }
    }
}

/// `owner/repo` from the `origin` remote's URL, or the directory's name.
fn default_name(repo: &gix::Repository, path: &Path) -> String {
    let from_url = repo
        .config_snapshot()
        .string("remote.origin.url")
        .map(|url| String::from_utf8_lossy(&url).into_owned())
        .and_then(|url| {
            let url = url.trim_end_matches('/').trim_end_matches(".git").to_string();
            let mut parts = url.rsplit(['/', ':']);
            let (repo, owner) = (parts.next()?, parts.next()?);
            (!repo.is_empty() && !owner.is_empty()).then(|| format!("{owner}/{repo}"))
        });
    from_url.unwrap_or_else(|| {
        let dir = repo.workdir().unwrap_or(path);
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = name.trim_end_matches(".git");
        if name.is_empty() {
            "local/repository".to_string()
        } else {
            format!("local/{name}")
        }
    })
}

/// The commits reachable from the refs to import, oldest first, each once.
fn commits_to_import(repo: &gix::Repository, options: &ImportOptions) -> std::result::Result<Vec<Pending>, GitError> {
    let mut tips: Vec<(Arc<str>, ObjectId)> = Vec::new();
    if options.all {
        if let Ok(head) = repo.head_id() {
            tips.push((head_branch(repo).into(), head.detach()));
        }
        let platform = repo.references().map_err(|e| GitError(format!("listing references: {e}")))?;
        let mut refs: Vec<(String, ObjectId)> = Vec::new();
        for reference in platform.all().map_err(|e| GitError(format!("listing references: {e}")))? {
            let mut reference = reference.map_err(|e| GitError(format!("reading a reference: {e}")))?;
            let name = reference.name().shorten().to_string();
            // Tags may name trees or blobs: only refs that lead to a commit count.
            if let Ok(commit) = reference.peel_to_commit() {
                refs.push((name, commit.id));
            }
        }
        refs.sort();
        tips.extend(refs.into_iter().map(|(name, id)| (Arc::from(name.as_str()), id)));
    } else {
        match &options.branch {
            None => {
                let head = repo.head_id().map_err(|e| GitError(format!("HEAD does not name a commit: {e}")))?;
                tips.push((head_branch(repo).into(), head.detach()));
            }
            Some(name) => tips.push((short_name(name).into(), resolve(repo, name)?)),
        }
    }
    let sorting = match options.since {
        Some(ns) => gix::revision::walk::Sorting::ByCommitTimeCutoff {
            order: gix::traverse::commit::simple::CommitTimeOrder::NewestFirst,
            seconds: ns.div_euclid(1_000_000_000),
        },
        None => gix::revision::walk::Sorting::ByCommitTime(gix::traverse::commit::simple::CommitTimeOrder::NewestFirst),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (branch, tip) in tips {
        let walk = repo
            .rev_walk([tip])
            .sorting(sorting)
            .selected(|id| !seen.contains(&id.to_owned()))
            .map_err(|e| GitError(format!("walking the history of {branch}: {e}")))?;
        let mut found = Vec::new();
        for info in walk {
            let info = info.map_err(|e| GitError(format!("walking the history of {branch}: {e}")))?;
            if let (Some(since), Some(time)) = (options.since, info.commit_time)
                && time < since.div_euclid(1_000_000_000)
            {
                continue;
            }
            found.push(info.id);
        }
        for id in found {
            if seen.insert(id) {
                out.push(Pending {
                    id,
                    branch: branch.clone(),
                });
            }
        }
    }
    // Oldest first, so record ids follow history.
    out.reverse();
    Ok(out)
}

/// The branch `HEAD` is on (`main`), or `HEAD` when it is detached.
fn head_branch(repo: &gix::Repository) -> String {
    match repo.head_name() {
        Ok(Some(name)) => name.shorten().to_string(),
        _ => "HEAD".to_string(),
    }
}

/// `refs/heads/main` → `main`; other names as they are.
fn short_name(name: &str) -> String {
    for prefix in ["refs/heads/", "refs/tags/", "refs/remotes/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    name.to_string()
}

/// The commit a ref name or hex id names.
fn resolve(repo: &gix::Repository, name: &str) -> std::result::Result<ObjectId, GitError> {
    for candidate in [
        name.to_string(),
        format!("refs/heads/{name}"),
        format!("refs/tags/{name}"),
        format!("refs/remotes/{name}"),
    ] {
        if let Ok(Some(mut reference)) = repo.try_find_reference(candidate.as_str())
            && let Ok(commit) = reference.peel_to_commit()
        {
            return Ok(commit.id);
        }
    }
    if let Ok(id) = ObjectId::from_hex(name.as_bytes())
        && repo.find_commit(id).is_ok()
    {
        return Ok(id);
    }
    Err(GitError(format!("{name:?} names no branch, tag or commit of the repository")))
}

/// Reads one commit and computes the diff of each of its files against its first parent.
fn prepare(repo: &gix::Repository, pending: &Pending, repository: &str) -> std::result::Result<Prepared, GitError> {
    let id = pending.id;
    let commit = repo.find_commit(id).map_err(|e| GitError::object(id, e))?;
    let decoded = commit.decode().map_err(|e| GitError::object(id, e))?;
    let author = decoded.author().map_err(|e| GitError::object(id, e))?;
    let seconds = author.time().map(|t| t.seconds).unwrap_or_else(|_| author.seconds());
    let name = String::from_utf8_lossy(author.name.trim_ascii()).into_owned();
    let email = String::from_utf8_lossy(author.email.trim_ascii()).into_owned();
    let data = CommitData {
        commit_hash: id.to_hex().to_string(),
        message: String::from_utf8_lossy(decoded.message).into_owned(),
        author: if name.is_empty() { "(no name)".to_string() } else { name },
        author_email: (!email.is_empty()).then_some(email),
        timestamp: seconds.saturating_mul(1_000_000_000),
        repository: repository.to_string(),
        branch: pending.branch.to_string(),
        pusher: None,
        commit_count: 1,
    };
    let tree = decoded.tree();
    let parent_tree = match decoded.parents().next() {
        Some(parent) => Some(
            repo.find_commit(parent)
                .map_err(|e| GitError::object(parent, e))?
                .tree_id()
                .map_err(|e| GitError::object(parent, e))?
                .detach(),
        ),
        None => None,
    };
    let mut changes = Vec::new();
    tree::changes(repo, parent_tree, Some(tree), &mut changes)?;
    Ok((data, file_diffs(repo, &changes)?))
}

/// A blob's bytes; a submodule's commit is not in this repository, so it has none.
fn blob(repo: &gix::Repository, entry: &Entry) -> std::result::Result<Vec<u8>, GitError> {
    if entry.mode == 0o160000 {
        return Ok(Vec::new());
    }
    let mut blob = repo.find_blob(entry.id).map_err(|e| GitError::object(entry.id, e))?;
    Ok(blob.take_data())
}

/// The files of a commit from its raw changes: renames paired as git pairs them, then per
/// pair the counts and the patch.
fn file_diffs(repo: &gix::Repository, changes: &[Change]) -> std::result::Result<Vec<DiffData>, GitError> {
    let mut deleted: Vec<(&Entry, Vec<u8>)> = Vec::new();
    let mut added: Vec<(&Entry, Vec<u8>)> = Vec::new();
    let mut modified: Vec<(&Entry, &Entry)> = Vec::new();
    for change in changes {
        match change {
            Change::Deleted(e) => deleted.push((e, blob(repo, e)?)),
            Change::Added(e) => added.push((e, blob(repo, e)?)),
            Change::Modified { old, new } => modified.push((old, new)),
        }
    }
    let deletions: Vec<rename::FileSide<'_>> = deleted.iter().map(rename_side).collect();
    let additions: Vec<rename::FileSide<'_>> = added.iter().map(rename_side).collect();
    let modifications: Vec<rename::Modification<'_>> = modified
        .iter()
        .map(|(old, new)| rename::Modification {
            path: &new.path,
            old_mode: old.mode,
            new_mode: new.mode,
        })
        .collect();
    let paired = rename::detect_renames(&deletions, &additions, &modifications, &rename::RenameOptions::default());
    let mut out = Vec::with_capacity(paired.changes.len());
    for change in &paired.changes {
        // git's status letter, with the similarity for a rename (`R086`).
        let similarity = change.similarity_percent();
        let status = match similarity {
            Some(percent) => format!("R{percent:03}"),
            None => change.status_letter().to_string(),
        };
        let diff = match change {
            rename::Change::Added { addition, .. } => file_diff(None, Some(view(&added[*addition])), None, status),
            rename::Change::Deleted { deletion, .. } => file_diff(Some(view(&deleted[*deletion])), None, None, status),
            rename::Change::Modified { modification, .. } => {
                let (o, n) = modified[*modification];
                let (old_data, new_data) = (blob(repo, o)?, blob(repo, n)?);
                file_diff(Some((o, &old_data)), Some((n, &new_data)), None, status)
            }
            rename::Change::Renamed { deletion, addition, .. } => {
                file_diff(Some(view(&deleted[*deletion])), Some(view(&added[*addition])), similarity, status)
            }
        };
        out.push(diff);
    }
    Ok(out)
}

/// A file read for rename detection, as it takes it.
fn rename_side<'a>((e, data): &'a (&'a Entry, Vec<u8>)) -> rename::FileSide<'a> {
    rename::FileSide {
        path: &e.path,
        mode: e.mode,
        oid: e.id.as_bytes(),
        data,
        binary: None,
    }
}

/// A file read, as [`file_diff`] takes it.
fn view<'a>((e, data): &'a (&'a Entry, Vec<u8>)) -> (&'a Entry, &'a [u8]) {
    (e, data.as_slice())
}

/// One file pair's row: paths, counts as `git log --numstat` gives them, its patch as
/// `git show --full-index` prints it, and git's status letter (`A`, `D`, `M`, `T`, or
/// `R` with the similarity) as its `changes`.
fn file_diff(old: Option<(&Entry, &[u8])>, new: Option<(&Entry, &[u8])>, similarity: Option<u32>, status: String) -> DiffData {
    let (old, new) = (old.map(Side::new), new.map(Side::new));
    let pair = xdiff::FilePatch {
        old: old.as_ref().map(Side::patch),
        new: new.as_ref().map(Side::patch),
        similarity,
        copied: false,
    };
    let mut patch = Vec::new();
    let counts = xdiff::write_file_patch(&pair, &mut patch);
    let path_of = |s: &Option<Side<'_>>| s.as_ref().map(|s| path_text(&s.entry.path));
    let file_path = path_of(&new).or_else(|| path_of(&old)).unwrap_or_default();
    let old_path = if similarity.is_some() { path_of(&old) } else { None };
    let (additions, deletions) = counts.map_or((0, 0), |(a, d)| (a as i64, d as i64));
    DiffData {
        file_path,
        old_path,
        additions,
        deletions,
        binary: counts.is_none(),
        changes: Some(status),
        diff_content: Some(patch),
    }
}

/// One side of a file pair, with its id in hex.
struct Side<'a> {
    entry: &'a Entry,
    hex: String,
    data: &'a [u8],
}

impl<'a> Side<'a> {
    fn new((entry, data): (&'a Entry, &'a [u8])) -> Side<'a> {
        Side {
            entry,
            hex: entry.id.to_hex().to_string(),
            data,
        }
    }

    fn patch(&self) -> xdiff::FileSide<'_> {
        xdiff::FileSide {
            path: &self.entry.path,
            mode: self.entry.mode,
            oid: &self.hex,
            data: self.data,
        }
    }
}
