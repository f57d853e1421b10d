//! Importing a git repository built by the test with the `git` command (renames, binary
//! files, a merge, an empty commit, a 300 KiB diff, paths and content that are not UTF-8,
//! symlinks, mode and type changes, a submodule): every commit's per-file counts equal
//! `git log --numstat` (first parent for merges), every stored diff equals `git show`'s
//! patch of that file, and a second import is all `Duplicate`.

use crate::common::options;
use annals::history::{History, ImportOptions};
use std::path::Path;
use std::process::{Command, Output};

/// `git -C repo` with no user or system configuration (so the defaults are git's) and a
/// fixed identity; author and committer dates too when `date` is given, so hashes are
/// stable.
fn git_command(repo: &Path, date: Option<&str>) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com");
    if let Some(date) = date {
        command.env("GIT_AUTHOR_DATE", date).env("GIT_COMMITTER_DATE", date);
    }
    command
}

/// Runs git (see [`git_command`]) and checks it succeeded.
fn git_at(repo: &Path, date: Option<&str>, args: &[&str]) -> Output {
    let out = git_command(repo, date).args(args).output().expect("the git command runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs git in `repo` with no user or system configuration, so the defaults are git's.
pub(crate) fn git(repo: &Path, args: &[&str]) -> Output {
    git_at(repo, None, args)
}

/// Commits everything in the work tree at a fixed date, so hashes are stable.
fn commit(repo: &Path, message: &str, day: u32) {
    git(repo, &["add", "-A"]);
    let date = format!("2024-03-{day:02}T12:00:00Z");
    git_at(repo, Some(&date), &["commit", "-q", "--allow-empty", "-m", message]);
}

fn write(repo: &Path, path: &[u8], bytes: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let path = repo.join(std::ffi::OsStr::from_bytes(path));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Lines of text, `n` of them, varied by `seed`.
fn lines(n: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(format!("line {i} of {} {}\n", seed, (i * 7 + seed) % 13).as_bytes());
    }
    out
}

/// Builds the fixture repository in `repo`.
fn build_fixture(repo: &Path) {
    git(repo, &["init", "-q", "-b", "main"]);
    write(repo, b"README.md", b"# fixture\n\nA repository for the import test.\n");
    write(repo, b"src/lib.rs", &lines(40, 1));
    write(repo, b"src/old_name.rs", &lines(60, 2));
    write(repo, b"logo.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary");
    write(repo, b"run.sh", b"#!/bin/sh\necho hi\n");
    commit(repo, "Initial commit", 1);

    // A pure rename, an edit, a rename with an edit, a binary change.
    std::fs::rename(repo.join("src/old_name.rs"), repo.join("src/new_name.rs")).unwrap();
    let mut lib = lines(40, 1);
    lib.extend_from_slice(b"fn added() {}\n");
    write(repo, b"src/lib.rs", &lib);
    write(repo, b"logo.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary, changed");
    commit(repo, "Rename old_name, grow lib", 2);

    // Paths and content that are not UTF-8, a file without a final newline, a symlink,
    // a mode change.
    write(repo, b"caf\xe9.txt", b"caf\xe9 au lait\nno newline at the end");
    write(repo, "déjà vu.md".as_bytes(), "déjà\n".as_bytes());
    std::os::unix::fs::symlink("src/lib.rs", repo.join("link")).unwrap();
    git(repo, &["update-index", "--add", "--chmod=+x", "run.sh"]);
    let mut moved = lines(60, 2);
    moved[10] = b'X';
    write(repo, b"docs/moved.rs", &moved);
    std::fs::remove_file(repo.join("src/new_name.rs")).unwrap();
    commit(repo, "Odd names, a link, a mode change, a move with an edit", 3);

    // An empty commit.
    commit(repo, "Nothing changed", 4);

    // A branch and a merge.
    git(repo, &["checkout", "-q", "-b", "feature"]);
    write(repo, b"feature.txt", &lines(12, 5));
    commit(repo, "Feature work", 5);
    git(repo, &["checkout", "-q", "main"]);
    write(repo, b"README.md", b"# fixture\n\nA repository for the import test, on main.\n");
    commit(repo, "Main work", 6);
    git_at(
        repo,
        Some("2024-03-07T12:00:00Z"),
        &["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"],
    );

    // A 300 KiB diff (over the inline limit: it goes to the object store), a type change
    // (file to symlink), a deletion.
    write(repo, b"big.txt", &lines(300 * 1024 / 16, 9));
    std::fs::remove_file(repo.join("run.sh")).unwrap();
    std::os::unix::fs::symlink("README.md", repo.join("run.sh")).unwrap();
    std::fs::remove_file(repo.join("feature.txt")).unwrap();
    commit(repo, "A big file, a type change, a deletion", 8);

    // A submodule (a gitlink entry; its commit is not in this repository).
    git(
        repo,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            "160000,0123456789abcdef0123456789abcdef01234567,vendor/lib",
        ],
    );
    commit(repo, "Add a submodule", 9);
}

/// Per file of `hash` against its first parent: (additions, deletions, binary, path,
/// old path) from `git show --numstat -z`.
/// (additions, deletions, binary, path, old path) of a file.
type Numstat = (i64, i64, bool, Vec<u8>, Option<Vec<u8>>);

fn git_numstat(repo: &Path, hash: &str) -> Vec<Numstat> {
    let out = git(repo, &["show", "--numstat", "-z", "--format=", "--diff-merges=first-parent", hash]).stdout;
    let mut fields = out.split(|&b| b == 0).peekable();
    let mut files = Vec::new();
    while let Some(field) = fields.next() {
        let field = field.strip_prefix(b"\n").unwrap_or(field);
        if field.is_empty() {
            continue;
        }
        let mut parts = field.splitn(3, |&b| b == b'\t');
        let (added, deleted, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let binary = added == b"-";
        let number = |b: &[u8]| {
            if b == b"-" {
                0
            } else {
                String::from_utf8_lossy(b).parse::<i64>().unwrap()
            }
        };
        if path.is_empty() {
            // A rename: the old and the new path follow as their own fields.
            let old = fields.next().unwrap().to_vec();
            let new = fields.next().unwrap().to_vec();
            files.push((number(added), number(deleted), binary, new, Some(old)));
        } else {
            files.push((number(added), number(deleted), binary, path.to_vec(), None));
        }
    }
    files
}

#[test]
fn an_imported_repository_matches_git_log_numstat_and_git_show_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    build_fixture(&repo);
    let hashes: Vec<String> = String::from_utf8(git(&repo, &["rev-list", "--all"]).stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(hashes.len(), 9);

    let store = dir.path().join("store");
    let history = History::open(&store, options()).unwrap();
    let options = ImportOptions {
        repository: Some("acme/fixture".into()),
        all: true,
        batch_commits: 3,
        ..ImportOptions::default()
    };
    let report = history.import_git(&repo, &options, &mut |_| {}).unwrap();
    assert_eq!((report.stored, report.duplicates, report.failed), (9, 0, 0), "{report:?}");
    assert!(
        report.offloaded_bytes > 256 * 1024,
        "the big diff went to the object store: {report:?}"
    );

    for hash in &hashes {
        let stored = history.get_commit_by_hash(hash).unwrap().unwrap();
        let expected = git_numstat(&repo, hash);
        let got: Vec<Numstat> = stored
            .files
            .iter()
            .map(|f| {
                (
                    f.additions,
                    f.deletions,
                    f.binary,
                    annals::path_bytes(&f.file_path),
                    f.old_path.as_deref().map(annals::path_bytes),
                )
            })
            .collect();
        assert_eq!(got, expected, "numstat of {hash} ({})", stored.commit.message.trim());
        // The stored diffs, in order, are git show's output byte for byte.
        let shown = git(&repo, &["show", "--full-index", "--format=", "--diff-merges=first-parent", hash]).stdout;
        let (_, diffs) = history.get_commit_with_diffs(hash).unwrap().unwrap();
        let joined: Vec<u8> = diffs.into_iter().flatten().flatten().collect();
        assert!(
            joined == shown,
            "patch of {hash} ({}):\n--- annals\n{}\n--- git\n{}",
            stored.commit.message.trim(),
            String::from_utf8_lossy(&joined),
            String::from_utf8_lossy(&shown)
        );
        let message = String::from_utf8(git(&repo, &["log", "-1", "--format=%B", hash]).stdout).unwrap();
        assert_eq!(stored.commit.message.trim_end(), message.trim_end());
        assert_eq!(stored.commit.author, "Ada Lovelace");
        assert_eq!(stored.commit.repository, "acme/fixture");
    }
    let merge = history.get_recent_commits("acme/fixture", 10).unwrap();
    assert_eq!(merge.commits.len(), 9);

    // A second import is all duplicates, and the first-import's objects are intact.
    let again = history.import_git(&repo, &options, &mut |_| {}).unwrap();
    assert_eq!((again.stored, again.duplicates, again.failed), (0, 9, 0), "{again:?}");
    history.close().unwrap();
    let verified = annals::history::verify_store(&store, false, annals::ObjectStoreConfig::Local).unwrap();
    assert!(verified.is_clean() && verified.orphan_objects == 0, "{verified:?}");
}

#[test]
fn the_cli_imports_with_progress_and_json_and_reimports_as_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    build_fixture(&repo);
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("--data")
            .arg(&data)
            .args(args)
            .env_remove("ANNALS_DATA")
            .output()
            .unwrap()
    };
    let repo_arg = repo.to_str().unwrap();
    let out = run(&["commits", "import", repo_arg, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // HEAD (main) reaches every commit: the merge brings the feature branch in.
    assert_eq!(first["stored"], 9, "{first}");
    for key in ["stored", "duplicates", "failed", "files", "inline_bytes", "offloaded_bytes"] {
        assert!(first.get(key).is_some(), "{key} missing from {first}");
    }
    let out = run(&["commits", "import", repo_arg, "--format", "json"]);
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&second["stored"], &second["duplicates"], &second["failed"]),
        (&0.into(), &9.into(), &0.into())
    );

    // The diff of the non-UTF-8 path, byte for byte, asked for by its raw bytes.
    use std::os::unix::ffi::OsStrExt;
    let hash = String::from_utf8(git(&repo, &["log", "--all", "--format=%H", "--grep", "Odd names"]).stdout).unwrap();
    let hash = hash.trim();
    let out = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(&data)
        .args(["commits", "diff", hash])
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.stdout
            .starts_with(b"diff --git \"a/caf\\351.txt\" \"b/caf\\351.txt\"\nnew file mode 100644\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(&["commits", "import", "/nonexistent/repo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git repository /nonexistent/repo: not a git repository"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository of `n` commits made with `git fast-import`, one a day: each rewrites
/// `big.txt` whole (a diff of about 640 KiB, over the inline limit, so an object) and
/// edits a small file. Returns the commit hashes, oldest first.
pub(crate) fn big_history(repo: &Path, n: usize) -> Vec<String> {
    use std::io::Write;
    git(repo, &["init", "-q", "-b", "main"]);
    let mut stream = Vec::new();
    for i in 0..n {
        let ts = 1_700_000_000 + i as i64 * 86_400;
        let message = format!("Commit {i}\n");
        let mut big = Vec::new();
        for line in 0..20_000 {
            writeln!(big, "{i:04} line {line:05} {}", (line * 31 + i) % 977).unwrap();
        }
        let small = format!("small file, version {i}\n");
        write!(stream, "commit refs/heads/main\nmark :{}\n", i + 1).unwrap();
        write!(
            stream,
            "author Ada <ada@example.com> {ts} +0000\ncommitter Ada <ada@example.com> {ts} +0000\n"
        )
        .unwrap();
        write!(stream, "data {}\n{message}", message.len()).unwrap();
        if i > 0 {
            writeln!(stream, "from :{i}").unwrap();
        }
        write!(stream, "M 100644 inline big.txt\ndata {}\n", big.len()).unwrap();
        stream.extend_from_slice(&big);
        write!(stream, "\nM 100644 inline small.txt\ndata {}\n{small}\n", small.len()).unwrap();
    }
    let mut child = git_command(repo, None)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    String::from_utf8(git(repo, &["rev-list", "--reverse", "main"]).stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// SIGKILL of `annals commits import` while it writes objects: after every kill the
/// store verifies clean (orphan objects allowed: an object is written before the commit
/// that names it), every acknowledged commit is whole with every diff readable and
/// checked, and the next run goes on where the last one stopped.
#[test]
fn sigkill_during_import_leaves_every_acknowledged_commit_whole() {
    use rand::{Rng, SeedableRng};
    use std::io::BufRead;
    let seed = crate::common::seed();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let rounds = crate::common::env_count("ANNALS_CRASH_ITERATIONS", 6);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let hashes = big_history(&repo, 40);
    let data = dir.path().join("store");
    let mut full_run = std::time::Duration::from_millis(300);
    let mut acknowledged = 0u64;
    for round in 0..=rounds {
        let context = format!("seed {seed}, round {round}");
        // Round 0 measures a whole import into a scratch store; the others are killed at
        // a random moment within that time.
        let target = if round == 0 { dir.path().join("scratch") } else { data.clone() };
        let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
            .arg("--data")
            .arg(&target)
            .args(["commits", "import", "--batch-commits", "2", "--progress", "json"])
            .arg(&repo)
            .env_remove("ANNALS_DATA")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut durable = 0u64;
            let mut other = Vec::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                match serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["durable_commits"].as_u64())
                {
                    Some(n) => durable = durable.max(n),
                    None => other.push(line),
                }
            }
            (durable, other)
        });
        let started = std::time::Instant::now();
        if round > 0 {
            std::thread::sleep(full_run.mul_f64(rng.random_range(0.0..1.0)));
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let (durable, other) = reader.join().unwrap();
        if round == 0 {
            assert!(status.success(), "{context}: {other:?}");
            assert_eq!(durable, hashes.len() as u64, "{context}");
            full_run = started.elapsed();
            continue;
        }
        // Commits are imported oldest first: this run's durable ones follow the earlier
        // runs' acknowledged ones.
        acknowledged += durable;
        let report = annals::history::verify_store(&data, false, annals::ObjectStoreConfig::Local).unwrap();
        assert!(report.is_clean(), "{context}: {:?} {:?}", report.problems, report.notes);
        let history = History::open(&data, options()).unwrap();
        for (i, hash) in hashes.iter().enumerate() {
            let stored = history
                .get_commit_with_diffs(hash)
                .unwrap_or_else(|e| panic!("{context}: commit {i}: {e}"));
            match stored {
                Some((commit, diffs)) => {
                    assert_eq!(commit.diff_count, 2, "{context}: commit {i}");
                    let shown = git(&repo, &["show", "--full-index", "--format=", hash]).stdout;
                    let joined: Vec<u8> = diffs.into_iter().flatten().flatten().collect();
                    assert!(joined == shown, "{context}: the diffs of commit {i} differ from git show");
                }
                None => assert!(
                    i as u64 >= acknowledged,
                    "{context}: acknowledged commit {i} of {acknowledged} is missing"
                ),
            }
        }
        acknowledged = history.engine().commit_count() as u64;
        history.close().unwrap();
        if status.success() {
            assert_eq!(acknowledged, hashes.len() as u64, "{context}: a finished import stored everything");
        }
    }
    // A last run finishes the import; the orphans of the kills are removed by repair.
    let out = Command::new(env!("CARGO_BIN_EXE_annals"))
        .arg("--data")
        .arg(&data)
        .args(["commits", "import", "--format", "json"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = annals::history::verify_store(&data, true, annals::ObjectStoreConfig::Local).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let history = History::open(&data, options()).unwrap();
    assert_eq!(history.engine().commit_count(), hashes.len(), "seed {seed}");
}
