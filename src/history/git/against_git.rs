//! The importer against `git log`: each commit of a real history (annals' own by default;
//! `ANNALS_GITPORT_REPO` with `ANNALS_GITPORT_COMMITS`, default 100, for git.git or cargo, see
//! `test_support`) as [`prepare`] makes it, diffed against its first parent with renames
//! paired, compared with `git log --diff-merges=first-parent`: the concatenated diffs with
//! `-p --full-index`, the counts, binary marks and paths with `--numstat -z`.

use super::test_support::{corpus_repo, corpus_revs, git_command, run};
use super::{Pending, prepare};
use crate::model::{DiffData, path_text};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Starts each commit's record in the `git log` output: no patch line starts with it.
const MARK: &[u8] = b"\x01\x02";

/// One file as `--numstat` gives it: added and removed lines (`None` for binary), path,
/// and the old path of a rename.
type Numstat = (Option<(i64, i64)>, String, Option<String>);

/// `git log --diff-merges=first-parent` of the selected commits with `args`, split into
/// the commits (newest first) and the bytes after each one's hash line. A record ends in a
/// newline, or with `-z` in a NUL.
fn git_log(git_dir: &Path, args: &[&str]) -> (Vec<u8>, Vec<(String, std::ops::Range<usize>)>) {
    let mut cmd = git_command();
    cmd.arg("--git-dir")
        .arg(git_dir)
        .args(["log", "--diff-merges=first-parent", "--format=%x01%x02%H"])
        .args(args)
        .args(corpus_revs(100));
    let out = match run(cmd, None) {
        Ok((out, _)) => out,
        Err(e) => panic!("{e}"),
    };
    let end: &[u8] = if args.contains(&"-z") { b"\0\x01\x02" } else { b"\n\x01\x02" };
    let mut starts: Vec<usize> = Vec::new();
    if out.starts_with(MARK) {
        starts.push(0);
    }
    starts.extend(memchr::memmem::find_iter(&out, end).map(|i| i + 1));
    let mut records = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(out.len());
        let hash_end = start + MARK.len() + 40;
        let hash = String::from_utf8_lossy(&out[start + MARK.len()..hash_end]).into_owned();
        records.push((hash, hash_end..end));
    }
    (out, records)
}

/// A `-p` record's patch: after the hash line and the blank line before a diff.
fn patch_of(body: &[u8]) -> &[u8] {
    let body = body.strip_prefix(b"\n").unwrap_or(body);
    body.strip_prefix(b"\n").unwrap_or(body)
}

/// A `--numstat -z` record's files.
fn numstat_of(body: &[u8]) -> Vec<Numstat> {
    let mut fields = body.split(|&b| b == 0);
    let mut files = Vec::new();
    while let Some(field) = fields.next() {
        let field = field.strip_prefix(b"\n").unwrap_or(field);
        if field.is_empty() {
            continue;
        }
        let mut parts = field.splitn(3, |&b| b == b'\t');
        let (added, deleted, path) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
        let number = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).parse::<i64>().ok();
        let counts = number(added).zip(number(deleted));
        if path.is_empty() {
            // A rename: the old and the new path follow as fields of their own.
            let old = path_text(fields.next().unwrap_or_default());
            let new = path_text(fields.next().unwrap_or_default());
            files.push((counts, new, Some(old)));
        } else {
            files.push((counts, path_text(path), None));
        }
    }
    files
}

/// What the importer made of one commit, in the shape of [`numstat_of`], and its diffs
/// concatenated.
fn ours(files: &[DiffData]) -> (Vec<Numstat>, Vec<u8>) {
    let numstat = files
        .iter()
        .map(|f| {
            let counts = (!f.binary).then_some((f.additions, f.deletions));
            (counts, f.file_path.clone(), f.old_path.clone())
        })
        .collect();
    let patch = files.iter().filter_map(|f| f.diff_content.as_deref()).flatten().copied().collect();
    (numstat, patch)
}

#[test]
fn imported_commits_match_git_log() {
    let Some(git_dir) = corpus_repo() else { return };
    let (patches, patch_records) = git_log(&git_dir, &["-p", "--full-index"]);
    let (numstats, numstat_records) = git_log(&git_dir, &["--numstat", "-z"]);
    assert_eq!(
        patch_records.iter().map(|r| &r.0).collect::<Vec<_>>(),
        numstat_records.iter().map(|r| &r.0).collect::<Vec<_>>(),
        "the two logs list the same commits"
    );
    let expected: HashMap<&str, usize> = patch_records.iter().enumerate().map(|(i, (hash, _))| (hash.as_str(), i)).collect();
    // A shallow clone's oldest commits name parents it lacks: git shows them as root
    // commits, the importer cannot read them. They are left out.
    let shallow = std::fs::read_to_string(git_dir.join("shallow")).unwrap_or_default();
    let shallow: std::collections::HashSet<&str> = shallow.lines().collect();

    // Workers take commits in turn, each with its own handle on the repository, as the
    // importer's do.
    let next = Arc::new(AtomicUsize::new(0));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (next, git_dir, expected, shallow) = (next.clone(), &git_dir, &expected, &shallow);
                let (patch_records, numstat_records, patches, numstats) = (&patch_records, &numstat_records, &patches, &numstats);
                scope.spawn(move || {
                    let mut repo = gix::open(git_dir).expect("gix opens the repository");
                    repo.object_cache_size_if_unset(32 << 20);
                    let mut failures = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((hash, range)) = patch_records.get(i) else { break };
                        if shallow.contains(hash.as_str()) {
                            continue;
                        }
                        let id = gix::ObjectId::from_hex(hash.as_bytes()).expect("a commit id");
                        let pending = Pending { id, branch: "main".into() };
                        let (_, files) = prepare(&repo, &pending, "test/repo").unwrap_or_else(|e| panic!("{hash}: {}", e.0));
                        let (numstat, patch) = ours(&files);
                        let git_patch = patch_of(&patches[range.clone()]);
                        let git_numstat = numstat_of(&numstats[numstat_records[expected[hash.as_str()]].1.clone()]);
                        if numstat != git_numstat {
                            failures.push(format!("{hash}: numstat\n  git:  {git_numstat:?}\n  ours: {numstat:?}"));
                        }
                        if patch != git_patch {
                            let at = patch.iter().zip(git_patch).take_while(|(a, b)| a == b).count();
                            let from = at.saturating_sub(200);
                            failures.push(format!(
                                "{hash}: the diffs differ from byte {at}\n--- git ---\n{}\n--- ours ---\n{}",
                                String::from_utf8_lossy(&git_patch[from..git_patch.len().min(at + 200)]),
                                String::from_utf8_lossy(&patch[from..patch.len().min(at + 200)])
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a worker")).collect()
    });
    eprintln!(
        "{}: {} commits ({} shallow, left out), {} mismatches",
        git_dir.display(),
        patch_records.len(),
        shallow.len(),
        failures.len()
    );
    for f in failures.iter().take(5) {
        eprintln!("{f}\n");
    }
    assert!(failures.is_empty(), "{} commits differ from git log", failures.len());
}
