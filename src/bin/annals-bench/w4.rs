//! W4 (git history): the commits of a real repository with the diff of every file, imported
//! into annals from git, and stored into SQLite with the original design's schema (a
//! commits table with a unique hash index, a diffs table with gzip'd diff blobs). Measured:
//! import against `git log -p --numstat` on the same repository, storing the same commits
//! into each engine, bytes of stored diffs against the raw diff text and git's packs (after
//! `git gc` and `git gc --aggressive` of a copy), and lookups by hash and of recent commits.

use crate::BenchError;
use crate::report::{Better, Run};
use annals::history::{CommitQuery, History, ImportOptions};
use annals::{CommitData, DiffData, StorageStatus};
use rusqlite::{Connection, params};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const W: &str = "W4";
/// The engine name of figures that are git's own.
pub const GIT: &str = "git";

/// The original design's commit store, on SQLite.
const SCHEMA: &str = "
CREATE TABLE commits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_hash TEXT NOT NULL UNIQUE,
    message TEXT NOT NULL,
    author TEXT NOT NULL,
    author_email TEXT,
    timestamp INTEGER NOT NULL,
    repository TEXT NOT NULL,
    branch TEXT NOT NULL,
    pusher TEXT,
    commit_count INTEGER DEFAULT 1
);
CREATE INDEX idx_commits_repository_timestamp ON commits(repository, timestamp);
CREATE TABLE diffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_id INTEGER NOT NULL REFERENCES commits(id),
    file_path TEXT NOT NULL,
    additions INTEGER NOT NULL,
    deletions INTEGER NOT NULL,
    changes TEXT,
    diff_content BLOB
);
CREATE INDEX idx_diffs_commit ON diffs(commit_id);
";

fn git(repo: &Path, args: &[&str]) -> Result<std::process::Output, BenchError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .map_err(|e| BenchError::Io("git".into(), e))?;
    if !out.status.success() {
        return Err(BenchError::Peer(format!(
            "git {args:?} in {}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// Bytes of the pack files under a bare repository.
fn pack_bytes(bare: &Path) -> u64 {
    let dir = bare.join("objects/pack");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

pub fn run(run: &mut Run, repo: &Path, runs: usize, dir: &Path, sqlite: bool) -> Result<(), BenchError> {
    let head = String::from_utf8_lossy(&git(repo, &["rev-parse", "HEAD"])?.stdout)
        .trim()
        .to_string();
    println!("W4: the history of {} (HEAD {head})", repo.display());

    // git itself: the same walk and diffs.
    let started = Instant::now();
    let log = git(repo, &["log", "-p", "--numstat", "HEAD"])?;
    let git_seconds = started.elapsed().as_secs_f64();
    drop(log);

    // annals: the import from git.
    let store = dir.join("annals-w4");
    let history = History::open(&store, crate::store_options())?;
    let options = ImportOptions {
        repository: Some("bench/w4".into()),
        ..ImportOptions::default()
    };
    let started = Instant::now();
    let report = history.import_git(repo, &options, &mut |_| {})?;
    history.engine().flush()?;
    let import_seconds = started.elapsed().as_secs_f64();
    let commits = report.stored as f64;
    println!(
        "W4: {} commits, {} files, {} diff bytes inline, {} in objects",
        report.stored, report.files, report.inline_bytes, report.offloaded_bytes
    );
    let figure = "import from the repository";
    run.add(W, figure, "commits/s", Better::Higher, "annals", commits / import_seconds.max(1e-9));
    run.add(W, figure, "commits/s", Better::Higher, GIT, commits / git_seconds.max(1e-9));

    // The commits as the store returns them, for the other engines and the checks.
    let mut all: Vec<(CommitData, Vec<DiffData>)> = Vec::with_capacity(report.stored as usize);
    let mut cursor = None;
    loop {
        let page = history.commits(&CommitQuery {
            limit: 1000,
            cursor: cursor.clone(),
            ..CommitQuery::default()
        })?;
        for c in &page.commits {
            let Some((stored, diffs)) = history.get_commit_with_diffs(&c.commit.commit_hash)? else {
                return Err(BenchError::Peer(format!(
                    "W4: commit {} is listed but not readable",
                    c.commit.commit_hash
                )));
            };
            let files = stored
                .files
                .iter()
                .zip(diffs)
                .map(|(f, content)| DiffData {
                    file_path: f.file_path.clone(),
                    old_path: f.old_path.clone(),
                    additions: f.additions,
                    deletions: f.deletions,
                    binary: f.binary,
                    changes: f.changes.clone(),
                    diff_content: content,
                })
                .collect();
            all.push((stored.commit, files));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.reverse();
    let raw_diff_bytes: u64 = all
        .iter()
        .flat_map(|(_, files)| files.iter().filter_map(|f| f.diff_content.as_ref()))
        .map(|d| d.len() as u64)
        .sum();

    // Storing the same commits, already diffed, into a fresh store.
    let fresh = dir.join("annals-w4-store");
    let target = History::open(&fresh, crate::store_options())?;
    let started = Instant::now();
    for batch in all.chunks(256) {
        for result in target.store_commits(batch)? {
            if result.status != StorageStatus::Success {
                return Err(BenchError::Peer(format!("W4: storing failed: {}", result.message)));
            }
        }
    }
    target.engine().flush()?;
    let store_seconds = started.elapsed().as_secs_f64();
    target.close()?;
    let figure = "store diffed commits";
    run.add(W, figure, "commits/s", Better::Higher, "annals", commits / store_seconds.max(1e-9));

    // Bytes: the store (segments, text index, objects) against the raw diff text and git.
    let figure = "stored bytes (diffs and metadata)";
    run.add(W, figure, "B", Better::Lower, crate::report::RAW, raw_diff_bytes as f64);
    run.add(W, figure, "B", Better::Lower, "annals", crate::report::dir_bytes(&fresh) as f64);

    // SQLite, the original schema.
    let mut db_path = None;
    if sqlite {
        let path = dir.join("w4.sqlite");
        let started = Instant::now();
        let conn = load_sqlite(&path, &all)?;
        let seconds = started.elapsed().as_secs_f64();
        run.add(
            W,
            "store diffed commits",
            "commits/s",
            Better::Higher,
            "sqlite",
            commits / seconds.max(1e-9),
        );
        drop(conn);
        run.add(
            W,
            figure,
            "B",
            Better::Lower,
            "sqlite",
            std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64,
        );
        db_path = Some(path);
    }

    // git's packs of the same history: a bare copy, then gc, then gc --aggressive.
    let bare = dir.join("w4-bare.git");
    let source = std::fs::canonicalize(repo).map_err(|e| BenchError::Io(repo.to_path_buf(), e))?;
    git(
        dir,
        &[
            "clone",
            "-q",
            "--bare",
            "--no-local",
            "--single-branch",
            source.to_str().unwrap_or_default(),
            "w4-bare.git",
        ],
    )?;
    git(&bare, &["gc", "-q"])?;
    run.add(W, figure, "B", Better::Lower, "git gc", pack_bytes(&bare) as f64);
    git(&bare, &["gc", "-q", "--aggressive"])?;
    run.add(W, figure, "B", Better::Lower, "git gc --aggressive", pack_bytes(&bare) as f64);

    // Lookups: seeded instances over every commit.
    let hashes: Vec<&str> = all.iter().map(|(c, _)| c.commit_hash.as_str()).collect();
    let lookups = (runs * 20).clamp(100, 5000);
    let mut by_hash = Vec::with_capacity(lookups);
    let mut recent = Vec::with_capacity(lookups);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let picks: Vec<&str> = (0..lookups)
        .map(|_| hashes[(next() % hashes.len().max(1) as u64) as usize])
        .collect();
    for hash in &picks {
        let t = Instant::now();
        let found = history.get_commit_by_hash(hash)?;
        by_hash.push(t.elapsed());
        if found.is_none() {
            run.disagreements.push(format!("W4: annals lost commit {hash}"));
        }
    }
    for _ in 0..lookups {
        let t = Instant::now();
        let page = history.get_recent_commits("bench/w4", 10)?;
        recent.push(t.elapsed());
        if page.commits.len() != 10.min(hashes.len()) {
            run.disagreements.push("W4: annals' recent commits are short".into());
        }
    }
    run.latencies(W, "get_commit_by_hash", "annals", &mut by_hash);
    run.latencies(W, "recent commits (limit 10)", "annals", &mut recent);
    history.close()?;
    if let Some(path) = db_path {
        let conn = Connection::open(&path)?;
        let (mut by_hash, mut recent) = (Vec::with_capacity(lookups), Vec::with_capacity(lookups));
        let mut commit = conn.prepare(
            "SELECT id, commit_hash, message, author, author_email, timestamp, repository, branch, pusher, commit_count FROM commits WHERE commit_hash = ?1",
        )?;
        let mut files = conn.prepare("SELECT file_path, additions, deletions, changes FROM diffs WHERE commit_id = ?1 ORDER BY id")?;
        let mut latest = conn.prepare(
            "SELECT id, commit_hash, message, author, timestamp FROM commits WHERE repository = ?1 ORDER BY timestamp DESC LIMIT 10",
        )?;
        for hash in &picks {
            let t = Instant::now();
            let id: Option<i64> = commit.query_row(params![hash], |r| r.get(0)).ok();
            let count = match id {
                Some(id) => files.query_map(params![id], |r| r.get::<_, String>(0))?.count(),
                None => 0,
            };
            by_hash.push(t.elapsed());
            if id.is_none() {
                run.disagreements.push(format!("W4: sqlite lost commit {hash} ({count} files)"));
            }
        }
        for _ in 0..lookups {
            let t = Instant::now();
            let rows = latest.query_map(params!["bench/w4"], |r| r.get::<_, String>(1))?.count();
            recent.push(t.elapsed());
            if rows != 10.min(hashes.len()) {
                run.disagreements.push("W4: sqlite's recent commits are short".into());
            }
        }
        run.latencies(W, "get_commit_by_hash", "sqlite", &mut by_hash);
        run.latencies(W, "recent commits (limit 10)", "sqlite", &mut recent);
    }
    Ok(())
}

/// Stores the commits into a new SQLite database with the original schema: a transaction
/// per 256 commits, diff bytes gzip'd as the original design did.
fn load_sqlite(path: &Path, all: &[(CommitData, Vec<DiffData>)]) -> Result<Connection, BenchError> {
    use std::io::Write;
    let mut conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
    conn.execute_batch(SCHEMA)?;
    for batch in all.chunks(256) {
        let tx = conn.transaction()?;
        {
            let mut commit = tx.prepare_cached(
                "INSERT INTO commits (commit_hash, message, author, author_email, timestamp, repository, branch, pusher, commit_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut diff = tx.prepare_cached(
                "INSERT INTO diffs (commit_id, file_path, additions, deletions, changes, diff_content) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (c, files) in batch {
                commit.execute(params![
                    c.commit_hash,
                    c.message,
                    c.author,
                    c.author_email,
                    c.timestamp,
                    c.repository,
                    c.branch,
                    c.pusher,
                    c.commit_count
                ])?;
                let id = tx.last_insert_rowid();
                for f in files {
                    let gz = match &f.diff_content {
                        Some(bytes) => {
                            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                            encoder.write_all(bytes).map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
                            Some(encoder.finish().map_err(|e| BenchError::Io(path.to_path_buf(), e))?)
                        }
                        None => None,
                    };
                    diff.execute(params![id, f.file_path, f.additions, f.deletions, f.changes, gz])?;
                }
            }
        }
        tx.commit()?;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(conn)
}
