//! The commit store: store, deduplicate by hash (through reopen, flush, compaction, archive
//! and restore), read by hash or prefix, list recent commits, refuse bad input.

use crate::common::options;
use annals::history::{CommitQuery, DiffStorage, History};
use annals::{Batch, CommitData, DiffData, Error, FieldValue, Month, SeriesKey, SeriesKind, StorageStatus};

/// 2023-11-14, in November.
const T: i64 = 1_700_000_000_000_000_000;

fn hash(i: u64) -> String {
    format!("{:040x}", 0xabc0_0000_0000u64 + i * 0x1_0000_0001)
}

fn commit(i: u64, author: &str) -> CommitData {
    CommitData {
        commit_hash: hash(i),
        message: format!("commit number {i}\n\nwith a body"),
        author: author.into(),
        author_email: Some(format!("{author}@example.com")),
        timestamp: T + i as i64 * 1_000_000_000,
        repository: "acme/app".into(),
        branch: "main".into(),
        pusher: i.is_multiple_of(2).then(|| "ci".to_string()),
        commit_count: 1,
    }
}

fn diff(path: &str, content: &[u8]) -> DiffData {
    DiffData {
        file_path: path.into(),
        old_path: None,
        additions: 2,
        deletions: 1,
        binary: false,
        changes: None,
        diff_content: Some(content.to_vec()),
    }
}

fn files(i: u64) -> Vec<DiffData> {
    vec![
        diff("src/a.rs", format!("@@ -1 +1,2 @@\n-old {i}\n+new {i}\n+more\n").as_bytes()),
        DiffData {
            file_path: "logo.png".into(),
            binary: true,
            additions: 0,
            deletions: 0,
            diff_content: Some(b"Binary files a/logo.png and b/logo.png differ\n".to_vec()),
            ..diff("", b"")
        },
        DiffData {
            old_path: Some("docs/old.md".into()),
            additions: 0,
            deletions: 0,
            diff_content: None,
            ..diff("docs/new.md", b"")
        },
    ]
}

fn status(history: &History, i: u64) -> StorageStatus {
    history.store_commit(&commit(i, "ada"), &files(i)).unwrap().status
}

/// Every commit 0..n reads back whole.
fn check_all(history: &History, n: u64) {
    for i in 0..n {
        let found = history
            .get_commit_by_hash(&hash(i))
            .unwrap()
            .unwrap_or_else(|| panic!("commit {i} is missing"));
        let mut expected = commit(i, "ada");
        expected.commit_hash = hash(i);
        assert_eq!(found.commit, expected);
        assert_eq!((found.additions, found.deletions, found.diff_count), (2, 1, 3));
        let paths: Vec<&str> = found.files.iter().map(|f| f.file_path.as_str()).collect();
        assert_eq!(paths, ["src/a.rs", "logo.png", "docs/new.md"]);
        assert!(found.files[1].binary);
        assert_eq!(found.files[2].old_path.as_deref(), Some("docs/old.md"));
        assert_eq!(found.files[2].stored, DiffStorage::Absent);
        assert_eq!(found.files[0].stored, DiffStorage::Inline);
        assert_eq!(
            history.get_diff(&hash(i), "src/a.rs").unwrap().unwrap(),
            format!("@@ -1 +1,2 @@\n-old {i}\n+new {i}\n+more\n").into_bytes()
        );
        assert_eq!(history.get_diff(&hash(i), "docs/new.md").unwrap(), None);
    }
}

#[test]
fn commits_are_unique_through_reopen_flush_compaction_archive_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let first = history.store_commit(&commit(0, "ada"), &files(0)).unwrap();
    assert_eq!(first.status, StorageStatus::Success);
    assert!(first.success);
    assert_eq!(
        (first.metadata.total_additions, first.metadata.total_deletions, first.metadata.files),
        (2, 1, 3)
    );
    let again = history.store_commit(&commit(0, "ada"), &files(0)).unwrap();
    assert_eq!(again.status, StorageStatus::Duplicate);
    assert_eq!(again.commit_id, first.commit_id, "a duplicate names the stored commit");
    for i in 1..5 {
        assert_eq!(status(&history, i), StorageStatus::Success);
    }
    check_all(&history, 5);

    // Reopen with the commits in the WAL only.
    drop(history);
    let history = History::open(dir.path(), options()).unwrap();
    assert_eq!(
        (0..5).map(|i| status(&history, i)).collect::<Vec<_>>(),
        [StorageStatus::Duplicate; 5]
    );
    for i in 5..10 {
        assert_eq!(status(&history, i), StorageStatus::Success);
    }
    // Reopen without flushing: the WAL replay finds commits 5..10.
    drop(history);
    let history = History::open(dir.path(), options()).unwrap();
    assert!(!history.engine().recovery_report().commit_index_rebuilt);
    assert_eq!(status(&history, 7), StorageStatus::Duplicate);
    history.engine().flush().unwrap();
    history.engine().optimize(&mut |_| {}).unwrap();
    assert_eq!(status(&history, 3), StorageStatus::Duplicate);
    check_all(&history, 10);
    assert_eq!(history.engine().commit_count(), 10);

    // Archive November: still duplicates; restore: readable again.
    let archived = history
        .engine()
        .archive(Month::new(2023, 12).unwrap(), None, &mut |_, _| {})
        .unwrap();
    assert_eq!(status(&history, 2), StorageStatus::Duplicate);
    assert_eq!(history.get_commit_by_hash(&hash(2)).unwrap(), None, "archived rows are not read");
    history.engine().restore(&archived.path, &mut |_, _| {}).unwrap();
    check_all(&history, 10);
    history.close().unwrap();

    // A damaged index file is rebuilt from the commit rows.
    let path = dir.path().join("COMMITS");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    assert!(history.engine().recovery_report().commit_index_rebuilt);
    assert_eq!(status(&history, 9), StorageStatus::Duplicate);
    assert_eq!(history.engine().commit_count(), 10);
    check_all(&history, 10);
    // The rebuilt file was written: the next open reads it.
    drop(history);
    let history = History::open(dir.path(), options()).unwrap();
    assert!(!history.engine().recovery_report().commit_index_rebuilt);
    assert_eq!(history.engine().commit_count(), 10);

    // So is a missing one.
    drop(history);
    std::fs::remove_file(&path).unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    assert!(history.engine().recovery_report().commit_index_rebuilt);
    assert_eq!(status(&history, 4), StorageStatus::Duplicate);
    assert!(path.is_file());
}

#[test]
fn prefixes_find_one_commit_or_name_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let twins = ["1234567aaa", "1234567bbb"].map(|p| format!("{p}{}", "0".repeat(30)));
    for (i, h) in twins.iter().enumerate() {
        let mut c = commit(i as u64, "ada");
        c.commit_hash = h.clone();
        assert_eq!(history.store_commit(&c, &[]).unwrap().status, StorageStatus::Success);
    }
    assert_eq!(
        history.get_commit_by_hash("1234567A").unwrap().unwrap().commit.commit_hash,
        twins[0],
        "case does not matter"
    );
    match history.get_commit_by_hash("1234567") {
        Err(Error::InvalidInput { reason, .. }) => {
            assert!(reason.contains("is ambiguous"), "{reason}");
            assert!(reason.contains(&twins[0]) && reason.contains(&twins[1]), "{reason}");
        }
        other => panic!("expected an ambiguity error, got {other:?}"),
    }
    match history.get_commit_by_hash("123456") {
        Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("at least 7 hex digits"), "{reason}"),
        other => panic!("expected a too-short error, got {other:?}"),
    }
    match history.get_commit_by_hash("123456z") {
        Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("not a hexadecimal"), "{reason}"),
        other => panic!("expected a not-hex error, got {other:?}"),
    }
    assert_eq!(history.get_commit_by_hash("fedcba9").unwrap(), None);
    assert_eq!(history.get_commit_by_hash(&"f".repeat(64)).unwrap(), None);
}

#[test]
fn recent_commits_page_newest_first_and_filter_by_author() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    for i in 0..25u64 {
        let author = if i.is_multiple_of(5) { "bob" } else { "ada" };
        assert_eq!(
            history.store_commit(&commit(i, author), &files(i)).unwrap().status,
            StorageStatus::Success
        );
    }
    let page = history.get_recent_commits("acme/app", 10).unwrap();
    let ids: Vec<String> = page.commits.iter().map(|c| c.commit.commit_hash.clone()).collect();
    assert_eq!(ids, (15..25).rev().map(hash).collect::<Vec<_>>());
    assert!(page.commits.iter().all(|c| c.diff_count == 3 && c.files.is_empty()));
    let next = history
        .commits(&CommitQuery {
            repository: Some("acme/app".into()),
            limit: 10,
            cursor: page.next_cursor.clone(),
            ..CommitQuery::default()
        })
        .unwrap();
    assert_eq!(next.commits[0].commit.commit_hash, hash(14));
    let bobs = history
        .commits(&CommitQuery {
            author: Some("bob".into()),
            limit: 100,
            ..CommitQuery::default()
        })
        .unwrap();
    assert_eq!(
        bobs.commits.iter().map(|c| c.commit.commit_hash.clone()).collect::<Vec<_>>(),
        [20, 15, 10, 5, 0].map(hash)
    );
    assert!(history.get_recent_commits("other/repo", 10).unwrap().commits.is_empty());
}

#[test]
fn a_batch_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    assert_eq!(status(&history, 0), StorageStatus::Success);
    let mut bad = commit(2, "ada");
    bad.commit_hash = "not-a-hash".into();
    let results = history
        .store_commits(&[(commit(1, "ada"), files(1)), (bad, files(2)), (commit(3, "ada"), files(3))])
        .unwrap();
    let statuses: Vec<StorageStatus> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [StorageStatus::Failed; 3]);
    assert!(results[1].message.contains("has 10 characters"), "{}", results[1].message);
    assert_eq!(results[0].message, "not stored: commit 2 of the batch failed its checks");
    assert_eq!(
        history.get_commit_by_hash(&hash(1)).unwrap(),
        None,
        "nothing of the batch was stored"
    );

    // Duplicates (of the store and within the batch) are skipped; the rest is stored.
    let results = history
        .store_commits(&[
            (commit(0, "ada"), files(0)),
            (commit(1, "ada"), files(1)),
            (commit(1, "ada"), files(1)),
        ])
        .unwrap();
    let statuses: Vec<StorageStatus> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [StorageStatus::Duplicate, StorageStatus::Success, StorageStatus::Duplicate]
    );
    check_all(&history, 2);

    // Each input check, with its reason; nothing is stored for any of them.
    let mut negative = files(5);
    negative[0].deletions = -3;
    let mut binary_with_lines = files(5);
    binary_with_lines[1].additions = 1;
    let mut no_repository = commit(5, "ada");
    no_repository.repository = String::new();
    let cases: Vec<(CommitData, Vec<DiffData>, &str)> = vec![
        (commit(5, "ada"), negative, "has negative counts (additions 2, deletions -3)"),
        (commit(5, "ada"), binary_with_lines, "is binary but counts lines"),
        (no_repository, files(5), "repository is empty"),
        (
            CommitData {
                commit_hash: "z".repeat(40),
                ..commit(5, "ada")
            },
            files(5),
            "is not hexadecimal",
        ),
    ];
    for (c, d, reason) in cases {
        let r = history.store_commit(&c, &d).unwrap();
        assert_eq!(r.status, StorageStatus::Failed);
        assert!(r.message.contains(reason), "{} should say {reason:?}", r.message);
    }
    assert_eq!(history.get_commit_by_hash(&hash(5)).unwrap(), None);
}

#[test]
fn racing_writers_store_a_hash_once() {
    let dir = tempfile::tempdir().unwrap();
    let history = std::sync::Arc::new(History::open(dir.path(), options()).unwrap());
    for round in 0..20u64 {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let history = history.clone();
                std::thread::spawn(move || history.store_commit(&commit(round, "ada"), &files(round)).unwrap().status)
            })
            .collect();
        let statuses: Vec<StorageStatus> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StorageStatus::Success).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
    assert_eq!(history.engine().commit_count(), 20);
}

#[test]
fn the_engine_refuses_a_raw_batch_that_repeats_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    assert_eq!(status(&history, 0), StorageStatus::Success);
    let key = SeriesKey::new(
        SeriesKind::Commit,
        "commit",
        [("author", "eve"), ("branch", "main"), ("repository", "acme/app")],
    )
    .unwrap();
    let mut batch = Batch::new();
    batch
        .add_row(&key, T, [("commit_hash", FieldValue::Str(hash(0).to_uppercase()))])
        .unwrap();
    match history.engine().write(&batch) {
        Err(Error::DuplicateCommit { hash: h, in_batch: false }) => assert_eq!(h, hash(0)),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let mut batch = Batch::new();
    for _ in 0..2 {
        batch.add_row(&key, T, [("commit_hash", FieldValue::Str(hash(1)))]).unwrap();
    }
    match history.engine().write(&batch) {
        Err(Error::DuplicateCommit { hash: h, in_batch: true }) => assert_eq!(h, hash(1)),
        other => panic!("expected an in-batch duplicate, got {other:?}"),
    }
    let mut batch = Batch::new();
    batch.add_row(&key, T, [("message", FieldValue::Str("no hash".into()))]).unwrap();
    match history.engine().write(&batch) {
        Err(Error::InvalidInput { reason, .. }) => assert_eq!(reason, "a commit row has no commit_hash field"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(history.engine().commit_count(), 1);
}

#[test]
fn diff_bytes_come_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let d = diff("caf\\351.bin", &bytes);
    assert_eq!(
        history.store_commit(&commit(0, "ada"), &[d]).unwrap().status,
        StorageStatus::Success
    );
    assert_eq!(history.get_diff(&hash(0), "caf\\351.bin").unwrap().unwrap(), bytes);
    history.engine().flush().unwrap();
    assert_eq!(history.get_diff(&hash(0)[..9], "caf\\351.bin").unwrap().unwrap(), bytes);
}

#[test]
fn the_commit_stores_fuzz_seeds_are_real_inputs() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/commits");
    let index = std::fs::read(seeds.join("index-three")).unwrap();
    assert_eq!(annals::internals::decode_commit_index(&index[1..]), Some(3));
    let payload = std::fs::read(seeds.join("payload-one-commit")).unwrap();
    assert_eq!(annals::internals::decode_commit_rows(&payload[1..]), Some(1));
    // A flipped bit is refused, not decoded into something else.
    let mut damaged = index[1..].to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(annals::internals::decode_commit_index(&damaged), None);
}

/// Files under `objects/`, recursively.
fn object_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(fans) = std::fs::read_dir(dir.join("objects")) else {
        return found;
    };
    for fan in fans {
        for entry in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            found.push(entry.unwrap().path());
        }
    }
    found
}

#[test]
fn large_diffs_go_to_the_object_store_once_and_are_checked_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    let limit = annals::DEFAULT_INLINE_DIFF_MAX_BYTES;
    let big: Vec<u8> = (0..limit as u32 + 1).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let at_limit = big[..limit].to_vec();
    let files = vec![diff("big.txt", &big), diff("edge.txt", &at_limit)];
    let stored = history.store_commit(&commit(0, "ada"), &files).unwrap();
    assert_eq!(stored.status, StorageStatus::Success);
    assert_eq!(
        (stored.metadata.offloaded_bytes, stored.metadata.inline_bytes),
        (big.len() as u64, limit as u64)
    );
    // The same bytes in another commit: still one object.
    assert_eq!(
        history.store_commit(&commit(1, "ada"), &files).unwrap().status,
        StorageStatus::Success
    );
    let objects = object_files(dir.path());
    assert_eq!(objects.len(), 1, "{objects:?}");

    let found = history.get_commit_by_hash(&hash(0)).unwrap().unwrap();
    match &found.files[0].stored {
        DiffStorage::Object { key } => assert_eq!(objects[0], dir.path().join("objects").join(&key[..2]).join(&key[2..])),
        other => panic!("expected an object, got {other:?}"),
    }
    assert_eq!(
        found.files[1].stored,
        DiffStorage::Inline,
        "a diff of exactly the limit stays inline"
    );
    assert_eq!(found.files[0].diff_bytes, Some(big.len() as u64));
    assert_eq!(history.get_diff(&hash(0), "big.txt").unwrap().unwrap(), big);
    assert_eq!(history.get_diff(&hash(1), "edge.txt").unwrap().unwrap(), at_limit);

    // A damaged object is an error naming it, never other bytes.
    let mut damaged = std::fs::read(&objects[0]).unwrap();
    damaged[7] ^= 0x10;
    std::fs::write(&objects[0], &damaged).unwrap();
    match history.get_diff(&hash(1), "big.txt") {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, objects[0]),
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn a_failing_object_store_fails_the_commit_and_writes_nothing() {
    use annals::fs::{Fault, FaultyFileSystem, Op};
    let stash = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new(stash.path()).unwrap();
    let history = History::open(
        dir.path(),
        annals::Options {
            file_system: std::sync::Arc::new(fs.clone()),
            ..options()
        },
    )
    .unwrap();
    let big = vec![7u8; annals::DEFAULT_INLINE_DIFF_MAX_BYTES * 2];
    // The next fsync is the object's, before anything reaches the WAL.
    fs.fail_nth(Op::Sync, 1, Fault::Io);
    let results = history
        .store_commits(&[(commit(0, "ada"), files(0)), (commit(1, "ada"), vec![diff("big.bin", &big)])])
        .unwrap();
    assert_eq!(results[1].status, StorageStatus::Failed);
    assert!(
        results[1]
            .message
            .starts_with("the object store could not keep the diff of \"big.bin\""),
        "{}",
        results[1].message
    );
    assert_eq!(results[0].message, "not stored: commit 2 of the batch failed");
    assert_eq!(history.engine().commit_count(), 0, "nothing of the batch was written");
    assert_eq!(fs.injected().len(), 1);
    // The store is not poisoned: the next attempt stores both.
    let results = history
        .store_commits(&[(commit(0, "ada"), files(0)), (commit(1, "ada"), vec![diff("big.bin", &big)])])
        .unwrap();
    assert!(results.iter().all(|r| r.status == StorageStatus::Success), "{results:?}");
    assert_eq!(history.get_diff(&hash(1), "big.bin").unwrap().unwrap(), big);
}

/// A diff over the inline limit, different for each `i`.
fn big_diff(i: u64) -> Vec<u8> {
    let len = annals::DEFAULT_INLINE_DIFF_MAX_BYTES + 1000;
    (0..len as u64).map(|b| ((b.wrapping_mul(2_654_435_761) >> 13) ^ i) as u8).collect()
}

#[test]
fn archives_carry_objects_and_verify_finds_orphans_missing_and_damaged_objects() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    for i in 0..3 {
        let files = vec![diff("big.txt", &big_diff(i)), diff("small.txt", b"@@ -1 +1 @@\n-a\n+b\n")];
        assert_eq!(
            history.store_commit(&commit(i, "ada"), &files).unwrap().status,
            StorageStatus::Success
        );
    }
    history.close().unwrap();
    let report = annals::history::verify_store(dir.path(), false, annals::ObjectStoreConfig::Local).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        (report.commits, report.commit_files, report.objects, report.orphan_objects),
        (3, 6, 3, 0)
    );

    // Archive November: the archive holds the three objects; they stay in the store as
    // orphans until verify --repair removes them.
    let history = History::open(dir.path(), options()).unwrap();
    let archived = history
        .engine()
        .archive(Month::new(2023, 12).unwrap(), None, &mut |_, _| {})
        .unwrap();
    assert_eq!((archived.objects, archived.missing_objects.len()), (3, 0));
    assert_eq!(archived.object_bytes, 3 * big_diff(0).len() as u64);
    history.close().unwrap();
    let report = annals::history::verify_store(dir.path(), false, annals::ObjectStoreConfig::Local).unwrap();
    assert!(report.is_clean(), "orphans are harmless: {report:?}");
    assert_eq!((report.commits, report.orphan_objects), (0, 3));
    assert!(report.notes.iter().any(|n| n.starts_with("3 orphan objects")), "{:?}", report.notes);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("3 commits are in the unique index but not in the store")),
        "{:?}",
        report.notes
    );
    let report = annals::history::verify_store(dir.path(), true, annals::ObjectStoreConfig::Local).unwrap();
    assert_eq!(report.repairs.len(), 1, "{:?}", report.repairs);
    assert!(object_files(dir.path()).is_empty());

    // Restore writes them back: every diff reads again, byte for byte.
    let history = History::open(dir.path(), options()).unwrap();
    let restored = history.engine().restore(&archived.path, &mut |_, _| {}).unwrap();
    assert_eq!((restored.objects, restored.missing_objects.len()), (3, 0));
    for i in 0..3 {
        assert_eq!(history.get_diff(&hash(i), "big.txt").unwrap().unwrap(), big_diff(i));
        assert_eq!(status(&history, i), StorageStatus::Duplicate);
    }
    history.close().unwrap();
    assert!(
        annals::history::verify_store(dir.path(), false, annals::ObjectStoreConfig::Local)
            .unwrap()
            .is_clean()
    );

    // A damaged object and a missing one are problems naming the commit and file.
    let mut objects = object_files(dir.path());
    objects.sort();
    let mut damaged = std::fs::read(&objects[0]).unwrap();
    damaged[10] ^= 0x40;
    std::fs::write(&objects[0], damaged).unwrap();
    std::fs::remove_file(&objects[1]).unwrap();
    let report = annals::history::verify_store(dir.path(), false, annals::ObjectStoreConfig::Local).unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("is missing: the diff of big.txt in commit")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("holds bytes whose sha256 is") && p.file == objects[0]),
        "{:?}",
        report.problems
    );
}

#[test]
fn commits_filter_by_path_prefix_and_page_with_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), options()).unwrap();
    for i in 0..30u64 {
        let path = if i % 3 == 0 {
            format!("docs/{i}.md")
        } else {
            format!("src/{i}.rs")
        };
        let mut c = commit(i, "ada");
        // Pairs of commits share an instant, so pages end inside a timestamp.
        c.timestamp = T + (i / 2) as i64;
        assert_eq!(
            history.store_commit(&c, &[diff(&path, b"x")]).unwrap().status,
            StorageStatus::Success
        );
        if i == 14 {
            history.engine().flush().unwrap();
        }
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = history
            .commits(&CommitQuery {
                path: Some("docs/".into()),
                limit: 3,
                cursor: cursor.clone(),
                ..CommitQuery::default()
            })
            .unwrap();
        seen.extend(page.commits.iter().map(|c| c.commit.commit_hash.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..30u64).rev().filter(|i| i % 3 == 0).map(hash).collect();
    assert_eq!(seen, expected, "newest first, every docs/ commit once");

    // Without a filter, pages of 4 over pairs of equal timestamps repeat and skip nothing.
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = history
            .commits(&CommitQuery {
                limit: 4,
                cursor: cursor.clone(),
                ..CommitQuery::default()
            })
            .unwrap();
        all.extend(page.commits.iter().map(|c| c.commit_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!((all.len(), sorted.len()), (30, 30));
    let bad = history.commits(&CommitQuery {
        cursor: Some("nonsense".into()),
        ..CommitQuery::default()
    });
    assert!(
        matches!(bad, Err(Error::InvalidInput { ref reason, .. }) if reason.contains("is not a cursor of a commit listing")),
        "{bad:?}"
    );
}

/// Random batches of commits (hashes from a small pool, so duplicates within and across
/// batches, and now and then a commit that fails its checks) against a model of what the
/// store holds, with reopen, flush and compaction, and archive and restore in between.
#[test]
fn random_batches_match_a_model_through_reopen_compaction_archive_and_restore() {
    use rand::{Rng, SeedableRng};
    let base_seed = crate::common::seed();
    for round in 0..3u64 {
        let seed = base_seed.wrapping_add(round);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut history = Some(History::open(dir.path(), options()).unwrap());
        // hash -> (message, number of files) of the version stored first.
        let mut model: std::collections::BTreeMap<String, (String, u64)> = std::collections::BTreeMap::new();
        for step in 0..14 {
            let h = history.as_ref().unwrap();
            let size = rng.random_range(1..6);
            let mut batch = Vec::new();
            for _ in 0..size {
                let n = rng.random_range(0..24u64);
                let mut c = commit(n, if n % 2 == 0 { "ada" } else { "bob" });
                c.message = format!("seed {seed} step {step} commit {n}");
                c.timestamp = T + rng.random_range(0..1_000_000_000_000i64);
                if rng.random_range(0..20) == 0 {
                    c.repository = String::new();
                }
                let files: Vec<DiffData> = (0..rng.random_range(0..4u64))
                    .map(|f| diff(&format!("f{f}.rs"), b"@@ x\n"))
                    .collect();
                batch.push((c, files));
            }
            let results = h.store_commits(&batch).unwrap();
            let failing = batch.iter().any(|(c, _)| c.repository.is_empty());
            let mut seen = std::collections::BTreeSet::new();
            for ((c, files), result) in batch.iter().zip(&results) {
                let expected = if c.repository.is_empty() {
                    StorageStatus::Failed
                } else if model.contains_key(&c.commit_hash) || !seen.insert(c.commit_hash.clone()) {
                    StorageStatus::Duplicate
                } else if failing {
                    StorageStatus::Failed
                } else {
                    StorageStatus::Success
                };
                assert_eq!(result.status, expected, "seed {seed} step {step}: {} -> {result:?}", c.commit_hash);
                if expected == StorageStatus::Success {
                    model.insert(c.commit_hash.clone(), (c.message.clone(), files.len() as u64));
                }
            }
            match rng.random_range(0..4) {
                0 => {
                    history.take().unwrap().close().unwrap();
                    history = Some(History::open(dir.path(), options()).unwrap());
                }
                1 => {
                    h.engine().flush().unwrap();
                    h.engine().optimize(&mut |_| {}).unwrap();
                }
                2 if !model.is_empty() => {
                    let archived = h.engine().archive(Month::new(2023, 12).unwrap(), None, &mut |_, _| {}).unwrap();
                    for hash in model.keys() {
                        assert_eq!(
                            h.get_commit_by_hash(hash).unwrap(),
                            None,
                            "seed {seed}: archived commits are not read"
                        );
                    }
                    h.engine().restore(&archived.path, &mut |_, _| {}).unwrap();
                    std::fs::remove_file(&archived.path).unwrap();
                }
                _ => {}
            }
            let h = history.as_ref().unwrap();
            assert_eq!(h.engine().commit_count(), model.len(), "seed {seed} step {step}");
            for (hash, (message, files)) in &model {
                let found = h
                    .get_commit_by_hash(hash)
                    .unwrap()
                    .unwrap_or_else(|| panic!("seed {seed}: {hash} lost"));
                assert_eq!(
                    (&found.commit.message, found.diff_count),
                    (message, *files),
                    "seed {seed} step {step}"
                );
            }
            let listed = h
                .commits(&CommitQuery {
                    limit: 1000,
                    ..CommitQuery::default()
                })
                .unwrap();
            assert_eq!(listed.commits.len(), model.len(), "seed {seed} step {step}");
        }
        history.take().unwrap().close().unwrap();
    }
}
