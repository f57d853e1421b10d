//! Byte-for-byte comparison with the installed git: random file pairs
//! committed to a temporary repository (one commit for all old versions,
//! one for all new ones, so git runs only a few times), hand-made cases
//! for headers, paths, modes, binary files, symlinks and gitlinks, and
//! the last commits of a real history.
//!
//! The default case counts keep the test suite fast; the soaks raise
//! them: `ANNALS_GITPORT_BATCHES` (random batches of 400 pairs, default
//! 4), `ANNALS_GITPORT_HUGE` (files of over 32k lines, default 4),
//! `ANNALS_GITPORT_SLIDERS` (default 4000), `ANNALS_GITPORT_REPO` with
//! `ANNALS_GITPORT_COMMITS` (a real history, default 40 commits; see
//! `test_support`).
//! `ANNALS_GITPORT_SEED` replays a seed, `ANNALS_GITPORT_KEEP` keeps the
//! temporary repositories.

mod harness;

use super::diff_lines;
use crate::history::git::test_support::{Rng, TempDir, corpus_repo, corpus_revs, env_count, seed};
use harness::*;

fn init_repo(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    git(dir.path(), &["init", "-q"]);
    dir
}

fn commit(dir: &TempDir, msg: &str) {
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "--allow-empty", "-m", msg]);
}

fn report(seed: u64, what: &str, failures: &[String]) {
    if !failures.is_empty() {
        for f in failures.iter().take(5) {
            eprintln!("{f}\n");
        }
        panic!(
            "{} mismatches in {what} (seed {seed}; rerun with ANNALS_GITPORT_SEED={seed})",
            failures.len()
        );
    }
}

/// Commit all old versions, then all new versions, of `pairs` in a fresh
/// repository and compare every file's patch and numstat with git's.
fn check_pairs(tag: &str, pairs: &[(Vec<u8>, Vec<u8>)]) -> CommitCheck {
    let dir = init_repo(tag);
    for (i, (old, _)) in pairs.iter().enumerate() {
        write_file(dir.path(), format!("f{i:05}.txt").as_bytes(), old);
    }
    commit(&dir, "old");
    for (i, (_, new)) in pairs.iter().enumerate() {
        write_file(dir.path(), format!("f{i:05}.txt").as_bytes(), new);
    }
    commit(&dir, "new");
    check_commit(dir.path(), "HEAD", &["--no-renames"])
}

#[test]
fn random_pairs_match_git() {
    let base = seed(20240601);
    let batches = env_count("ANNALS_GITPORT_BATCHES", 4);
    let per_batch = 400;
    let mut total = CommitCheck::default();
    for b in 0..batches {
        let batch_seed = base.wrapping_add(b);
        let mut rng = Rng::new(batch_seed);
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..per_batch).map(|_| random_pair(&mut rng)).collect();
        let r = check_pairs("rand", &pairs);
        eprintln!(
            "batch seed {batch_seed}: {} files, {} patches equal, {} numstats equal",
            r.files, r.patch_equal, r.numstat_equal
        );
        total.files += r.files;
        total.patch_equal += r.patch_equal;
        total.numstat_equal += r.numstat_equal;
        report(batch_seed, "random pairs", &r.failures);
    }
    eprintln!(
        "random pairs: {} changed files, {} patches equal, {} numstats equal",
        total.files, total.patch_equal, total.numstat_equal
    );
}

/// Files of over 32k lines: the only size at which git's snake heuristic
/// can cut the search short (below it the cost limit stops the search
/// first).
#[test]
fn huge_files_match_git() {
    let s = seed(7_000_001);
    let mut rng = Rng::new(s);
    let n = env_count("ANNALS_GITPORT_HUGE", 4);
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|_| huge_pair(&mut rng)).collect();
    let r = check_pairs("huge", &pairs);
    eprintln!(
        "huge files: {} files, {} patches equal, {} numstats equal",
        r.files, r.patch_equal, r.numstat_equal
    );
    report(s, "huge files", &r.failures);
}

/// Set a gitlink entry in the index (no submodule needed).
fn set_gitlink(dir: &TempDir, path: &str, oid: &str) {
    git(
        dir.path(),
        &["update-index", "--add", "--cacheinfo", &format!("160000,{oid},{path}")],
    );
}

fn symlink(dir: &TempDir, path: &[u8], target: &str) {
    use std::os::unix::ffi::OsStrExt;
    let p = dir.path().join(std::ffi::OsStr::from_bytes(path));
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(target, p).unwrap();
}

fn chmod(dir: &TempDir, path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join(path), std::fs::Permissions::from_mode(mode)).unwrap();
}

fn remove(dir: &TempDir, path: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    std::fs::remove_file(dir.path().join(std::ffi::OsStr::from_bytes(path))).unwrap();
}

fn text(n: usize, tag: &str) -> Vec<u8> {
    (0..n).map(|i| format!("line {i} of {tag}\n")).collect::<String>().into_bytes()
}

/// Function lines for the hunk-header cases.
fn func_line_cases() -> Vec<Vec<u8>> {
    let a = |n: usize, tail: &[u8]| -> Vec<u8> {
        let mut v = vec![b'a'; n];
        v.extend_from_slice(tail);
        v
    };
    vec![
        a(78, "\u{20ac}".as_bytes()),
        a(79, "\u{e9}".as_bytes()),
        a(80, "\u{e9}".as_bytes()),
        a(77, b"      x"),
        a(76, b"\t\t\t\t\tx"),
        b"f \xe0\x80\x80 overlong".to_vec(),
        b"f \xc0\xaf overlong".to_vec(),
        b"f \xed\xa0\x80 surrogate".to_vec(),
        b"f \xef\xbf\xbe nonchar".to_vec(),
        b"f \xef\xbf\xbd replacement".to_vec(),
        b"f \xf4\x90\x80\x80 too big".to_vec(),
        b"f \xf0\x9f\x98\x80 emoji".to_vec(),
        b"f \xf8\x88\x80\x80\x80 five".to_vec(),
        b"f \xc2".to_vec(),
        b"f \x7f del \x01 ctl".to_vec(),
        b"f trailing\t \r".to_vec(),
        b"Z".to_vec(),
        b"9 digits are no function".to_vec(),
        b"\xc3\xa9 not ascii".to_vec(),
    ]
}

/// A function line followed by a body whose 8th line changes in the
/// new version, so the hunk header names the function line.
fn func_file(func: &[u8], new: bool) -> Vec<u8> {
    let mut out = func.to_vec();
    out.push(b'\n');
    for i in 0..12 {
        if i == 8 && new {
            out.extend_from_slice(b"    changed\n");
        } else {
            out.extend_from_slice(format!("    body {i}\n").as_bytes());
        }
    }
    out
}

#[test]
fn special_files_match_git() {
    let dir = init_repo("special");
    let d = dir.path();
    let oid1 = "1111111111111111111111111111111111111111";
    let oid2 = "2222222222222222222222222222222222222222";
    let mut binary = b"\x00\x01binary\n".to_vec();
    binary.extend_from_slice(&text(20, "bin"));

    // Commit 1: the "before" of every case.
    write_file(d, b"plain.txt", &text(30, "plain"));
    write_file(d, b"mode.sh", b"echo hi\n");
    write_file(d, b"mode2.sh", b"echo hi\n");
    write_file(d, b"del.txt", &text(5, "del"));
    write_file(d, b"del-empty", b"");
    write_file(d, b"bin.dat", &binary);
    write_file(d, b"bin2text", &binary);
    write_file(d, b"text2bin", &text(5, "t2b"));
    write_file(d, "café.txt".as_bytes(), &text(8, "cafe"));
    write_file(d, b"sp ace.txt", &text(8, "space"));
    write_file(d, b"quo\"te\\back.txt", &text(8, "quote"));
    write_file(d, b"tab\there.txt", &text(8, "tab"));
    write_file(d, b"lat\xe9n1.txt", &text(8, "latin"));
    write_file(d, b"dir/nested/file.txt", &text(12, "nested"));
    write_file(d, b"nonl.txt", b"one\ntwo");
    write_file(d, b"addnl.txt", b"one\ntwo\n");
    write_file(d, b"file-to-link", b"was a file\n");
    write_file(d, b"rename-src.txt", &text(40, "rename"));
    write_file(d, b"pure-rename-src", &text(10, "pure"));
    write_file(d, b"bin-rename-src", &binary);
    write_file(d, b"exec-del.sh", b"#!/bin/sh\n");
    write_file(d, b"empty-to-text", b"");
    write_file(d, b"text-to-empty", b"x\n");
    // Function lines around xdiff's 80-byte cut and git's UTF-8 check of
    // hunk headers; a NUL after the first 8000 bytes (still text).
    let func_lines = func_line_cases();
    for (k, f) in func_lines.iter().enumerate() {
        write_file(d, format!("fn-{k:02}.txt").as_bytes(), &func_file(f, false));
    }
    let mut late_nul = text(400, "late");
    late_nul.extend_from_slice(b"nul \x00 here\n");
    write_file(d, b"late-nul.txt", &late_nul);
    symlink(&dir, b"link", "target1");
    symlink(&dir, b"link-to-file", "somewhere");
    symlink(&dir, b"link-del", "gone");
    chmod(&dir, "exec-del.sh", 0o755);
    commit(&dir, "base");
    set_gitlink(&dir, "sub", oid1);
    set_gitlink(&dir, "sub-del", oid1);
    set_gitlink(&dir, "sub-to-file", oid1);
    git(d, &["commit", "-q", "-m", "gitlinks"]);

    // Commit 2: the "after".
    write_file(d, b"plain.txt", &{
        let mut t = text(30, "plain");
        t.extend_from_slice(b"appended\n");
        t
    });
    chmod(&dir, "mode.sh", 0o755);
    write_file(d, b"mode2.sh", b"echo bye\n");
    chmod(&dir, "mode2.sh", 0o755);
    remove(&dir, b"del.txt");
    remove(&dir, b"del-empty");
    let mut binary2 = binary.clone();
    binary2.extend_from_slice(b"more\n");
    write_file(d, b"bin.dat", &binary2);
    write_file(d, b"bin2text", &text(5, "b2t"));
    write_file(d, b"text2bin", &binary);
    write_file(d, "café.txt".as_bytes(), &text(9, "cafe"));
    write_file(d, b"sp ace.txt", &text(9, "space"));
    write_file(d, b"quo\"te\\back.txt", &text(9, "quote"));
    write_file(d, b"tab\there.txt", &text(9, "tab"));
    write_file(d, b"lat\xe9n1.txt", &text(9, "latin"));
    write_file(d, b"dir/nested/file.txt", &text(13, "nested"));
    write_file(d, b"nonl.txt", b"one\ntwo\n");
    write_file(d, b"addnl.txt", b"one\ntwo");
    remove(&dir, b"file-to-link");
    symlink(&dir, b"file-to-link", "now-a-link");
    remove(&dir, b"rename-src.txt");
    write_file(d, b"renamed/dst.txt", &{
        let mut t = text(40, "rename");
        t.extend_from_slice(b"changed\n");
        t
    });
    remove(&dir, b"pure-rename-src");
    write_file(d, "pure rename dst é".as_bytes(), &text(10, "pure"));
    remove(&dir, b"bin-rename-src");
    write_file(d, b"bin-rename-dst", &binary);
    remove(&dir, b"exec-del.sh");
    write_file(d, b"empty-to-text", b"now text\n");
    write_file(d, b"text-to-empty", b"");
    for (k, f) in func_lines.iter().enumerate() {
        write_file(d, format!("fn-{k:02}.txt").as_bytes(), &func_file(f, true));
    }
    late_nul.extend_from_slice(b"after the nul\n");
    write_file(d, b"late-nul.txt", &late_nul);
    symlink(&dir, b"link", "target2");
    remove(&dir, b"link-to-file");
    write_file(d, b"link-to-file", b"now a file\n");
    remove(&dir, b"link-del");
    write_file(d, b"new.txt", &text(3, "new"));
    write_file(d, b"new-empty", b"");
    write_file(d, b"new-bin", &binary);
    write_file(d, b"new exec.sh", b"#!/bin/sh\necho new\n");
    chmod(&dir, "new exec.sh", 0o755);
    write_file(d, b"new\xff.txt", b"latin\n");
    write_file(d, b"copy-of-plain.txt", &{
        let mut t = text(30, "plain");
        t.extend_from_slice(b"copied\n");
        t
    });
    symlink(&dir, b"new-link", "dir/nested");
    // `add -A` drops the gitlinks (nothing checked out there); the file
    // at sub-to-file replaces its gitlink.
    write_file(d, b"sub-to-file", b"a file now\n");
    git(d, &["add", "-A"]);
    set_gitlink(&dir, "sub", oid2);
    set_gitlink(&dir, "new-sub", oid2);
    git(d, &["commit", "-q", "-m", "after"]);

    // Commit 3: everything goes.
    git(d, &["rm", "-q", "-r", "--cached", "."]);
    git(d, &["commit", "-q", "--allow-empty", "-m", "empty"]);

    let mut failures = Vec::new();
    let mut files = 0;
    for (commit, opts) in [
        ("HEAD~3", &["-M"][..]),
        ("HEAD~2", &["-M"][..]),
        ("HEAD~1", &["-M"][..]),
        ("HEAD~1", &["--no-renames"][..]),
        ("HEAD~1", &["-C", "--find-copies-harder"][..]),
        ("HEAD", &["-M"][..]),
    ] {
        let r = check_commit(d, commit, opts);
        eprintln!(
            "{commit} {opts:?}: {} files, {} patches equal, {} numstats equal",
            r.files, r.patch_equal, r.numstat_equal
        );
        files += r.files;
        failures.extend(r.failures);
    }
    assert!(files > 150, "too few cases: {files}");
    report(0, "special files", &failures);
}

/// A file of over 2^20 lines, the size at which git's cap on the
/// "too many matches" limit (1024) takes over from the square-root rule:
/// `}` occurs about 1570 times, so it counts as a many-matches line only
/// because of the cap, and the replaced regions around it are dropped
/// from the search (a `-}`/`+}` pair instead of a `}` context line).
#[test]
fn million_line_file_matches_git() {
    let n = 1_100_000;
    let mut old = Vec::with_capacity(n * 9);
    let mut new = Vec::with_capacity(n * 9);
    // Region k replaces the 61 lines centred on the `}` at 700*(k+1)*613.
    let regions: Vec<usize> = (0..20).map(|k| 700 * (1 + k * 78) - 30).collect();
    let mut i = 0;
    while i < n {
        if let Some(k) = regions.iter().position(|&r| r == i) {
            for j in 0..61 {
                let l = i + j;
                if l % 700 == 0 {
                    old.extend_from_slice(b"}\n");
                } else {
                    old.extend_from_slice(format!("L{l}\n").as_bytes());
                }
                if j == 30 {
                    new.extend_from_slice(b"}\n");
                } else {
                    new.extend_from_slice(format!("N{k}_{j}\n").as_bytes());
                }
            }
            i += 61;
            continue;
        }
        let line = if i % 700 == 0 { "}\n".to_string() } else { format!("L{i}\n") };
        old.extend_from_slice(line.as_bytes());
        new.extend_from_slice(line.as_bytes());
        i += 1;
    }
    let d = diff_lines(&old, &new);
    // Every `}` of a region is dropped, so each region is 61 out, 61 in.
    assert_eq!(d.additions(), 20 * 61);
    let r = check_pairs("million", &[(old, new)]);
    report(0, "million-line file", &r.failures);
}

/// Replaced regions made of long unmatched stretches around a segment
/// dense with `}` lines (each of which has many matches), the same `}`
/// offsets on both sides. Whether git keeps such a `}` for the search
/// depends on the mix of lines within 100 lines of it (not the whole
/// run), and a kept `}` shows up as a context line amid the `-`/`+`.
#[test]
fn many_match_scan_window_matches_git() {
    let s = seed(4242);
    let mut rng = Rng::new(s);
    let mut pairs = Vec::new();
    for _ in 0..24 {
        let base = rng.range(600, 3000);
        let pct = rng.range(20, 60);
        let (pre, seg, post) = (rng.range(0, 400), rng.range(20, 300), rng.range(0, 400));
        let at = rng.below(base);
        let mut old = Vec::new();
        let mut new = Vec::new();
        for i in 0..base {
            if i == at {
                for j in 0..pre + seg + post {
                    let dense = j >= pre && j < pre + seg;
                    if dense && rng.chance(pct, 100) {
                        old.push(b"}".to_vec());
                        new.push(b"}".to_vec());
                    } else {
                        old.push(format!("O{j}").into_bytes());
                        new.push(format!("N{j}").into_bytes());
                    }
                }
            }
            let l = if i % 10 == 0 { b"}".to_vec() } else { format!("L{i}").into_bytes() };
            old.push(l.clone());
            new.push(l);
        }
        pairs.push((join(&old, true), join(&new, true)));
    }
    let r = check_pairs("window", &pairs);
    report(s, "scan window", &r.failures);
}

/// Sweeps around the indent heuristic's limits, where random inputs
/// rarely land: groups of about 100 lines that can slide more than 100
/// positions (the sliding cap), runs of about 20 blank lines (the blank
/// cap), indentation near 200 columns (the indent cap), and groups that
/// can slide up to the first line (the start-of-file penalty).
#[test]
fn indent_heuristic_edges_match_git() {
    let lines = |v: &[String]| -> Vec<Vec<u8>> { v.iter().map(|s| s.clone().into_bytes()).collect() };
    let s = |x: &str| x.to_string();
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut push = |old: Vec<String>, new: Vec<String>| {
        pairs.push((join(&lines(&old), true), join(&lines(&new), true)));
        pairs.push((join(&lines(&new), true), join(&lines(&old), true)));
    };
    let heads: [Vec<String>; 4] = [vec![], vec![s("fn a() {")], vec![s("fn a() {"), s("")], vec![s("")]];
    let feet: [Vec<String>; 4] = [vec![], vec![s("}")], vec![s(""), s("}")], vec![s("    y")]];
    let runs: [&[&str]; 3] = [&["    x"], &["    x", ""], &["", "x"]];

    // Long groups in long runs of a repeated block.
    for head in &heads {
        for foot in &feet {
            for run in runs {
                for r in [98usize, 100, 101, 102, 110] {
                    for k in [97usize, 99, 100, 101, 103] {
                        let mut old = head.clone();
                        let mut new = head.clone();
                        for _ in 0..r {
                            old.extend(run.iter().map(|x| s(x)));
                        }
                        for _ in 0..r + k {
                            new.extend(run.iter().map(|x| s(x)));
                        }
                        old.extend(foot.iter().cloned());
                        new.extend(foot.iter().cloned());
                        push(old, new);
                    }
                }
            }
        }
    }
    // Blank runs near 20 lines, with groups of blank lines slid in them.
    for b in [15usize, 18, 19, 20, 21, 22, 25, 40] {
        for m in [1usize, 5, 19, 20, 21, 30] {
            for (pre, post) in [("fn a() {", "    y"), ("    x", "}"), ("    x", "        z")] {
                let mut old = vec![s(pre)];
                old.extend(std::iter::repeat_n(String::new(), b));
                old.push(s(post));
                let mut new = vec![s(pre)];
                new.extend(std::iter::repeat_n(String::new(), b + m));
                new.push(s(post));
                push(old.clone(), new);
                // The same with code lines around the blank run.
                let mut old2 = vec![s("fn b() {"), s("    q")];
                old2.extend(old.iter().cloned());
                old2.push(s("}"));
                let mut new2 = old2.clone();
                let at = 2 + 1 + b / 2;
                let mut block = vec![s("    w")];
                block.extend(std::iter::repeat_n(String::new(), m));
                new2.splice(at..at, block);
                push(old2, new2);
            }
        }
    }
    // Indentation around the 200-column cap.
    for i in [195usize, 199, 200, 201, 205] {
        for j in [195usize, 199, 200, 201, 205] {
            for p in [0usize, 199, 200, 203] {
                let a = format!("{}a", " ".repeat(i));
                let b = format!("{}b", " ".repeat(j));
                let c = format!("{}c", " ".repeat(p));
                let old = vec![c.clone(), a.clone(), b.clone(), c.clone()];
                let new = vec![c.clone(), a.clone(), b.clone(), a.clone(), b.clone(), c.clone()];
                push(old, new);
                let tabs = |n: usize| format!("{}{}", "\t".repeat(n / 8), " ".repeat(n % 8));
                let old = vec![format!("{}c", tabs(p)), format!("{}a", tabs(i)), format!("{}a", tabs(i))];
                let new = vec![
                    format!("{}c", tabs(p)),
                    format!("{}a", tabs(i)),
                    format!("{}b", tabs(j)),
                    format!("{}a", tabs(i)),
                    format!("{}b", tabs(j)),
                    format!("{}a", tabs(i)),
                ];
                push(old, new);
            }
        }
    }
    // Groups that can slide to the top of the file.
    for first in ["x", "    x", ""] {
        for second in ["x", "    x", "", "y", "    y"] {
            for third in ["", "y", "    z", "}"] {
                for k in 1..=3 {
                    let old = vec![s(first), s(second), s(third)];
                    let mut new = Vec::new();
                    for _ in 0..k {
                        new.push(s(first));
                        new.push(s(second));
                    }
                    new.extend(old.iter().cloned());
                    push(old, new);
                }
            }
        }
    }
    let r = check_pairs("indent", &pairs);
    eprintln!(
        "indent edges: {} pairs, {} files, {} patches equal, {} numstats equal",
        pairs.len(),
        r.files,
        r.patch_equal,
        r.numstat_equal
    );
    report(0, "indent heuristic edges", &r.failures);
}

/// Many tiny files built around one slider (a block inserted right next
/// to a copy of itself, or one of two adjacent copies removed) over a few
/// lines that differ only in indentation and blankness: exact ties and
/// one-point differences of the indent heuristic's weights show here.
#[test]
fn small_sliders_match_git() {
    let s = seed(31337);
    let mut rng = Rng::new(s);
    const ALPHABET: &[&str] = &["", "a", " a", "  a", "    a", "\ta", "}", "b", "        b", " "];
    let mut pairs = Vec::new();
    for _ in 0..env_count("ANNALS_GITPORT_SLIDERS", 4000) {
        let n = rng.range(1, 14);
        let old: Vec<Vec<u8>> = (0..n).map(|_| rng.pick(ALPHABET).as_bytes().to_vec()).collect();
        let start = rng.below(n);
        let len = rng.range(1, (n - start).min(4));
        let block = old[start..start + len].to_vec();
        let mut new = old.clone();
        let at = if rng.chance(1, 2) { start } else { start + len };
        new.splice(at..at, block);
        let (o, n) = if rng.chance(1, 2) { (old, new) } else { (new, old) };
        let nl = !rng.chance(1, 8);
        pairs.push((join(&o, nl), join(&n, nl)));
    }
    // Cases where the start-of-file penalty (1 point) decides, found by
    // searching small inputs.
    for (old, new) in [
        ("    a\n\t\tb\n    a\n \n\n}\n", "    a\n\t\tb\n    a\n\t\tb\n    a\n \n\n}\n"),
        ("  a\n\ta\n  a\n \n\nx\n}\n", "  a\n\ta\n  a\n\ta\n  a\n \n\nx\n}\n"),
        (
            "        b\n\t\tb\n\t\tb\n        b\n \n \n    a\nx\n",
            "        b\n\t\tb\n\t\tb\n        b\n\t\tb\n\t\tb\n        b\n \n \n    a\nx\n",
        ),
        (
            "    a\n\t\tb\n    a\n \n \na\n    a\n    a\n",
            "    a\n\t\tb\n    a\n\t\tb\n    a\n \n \na\n    a\n    a\n",
        ),
    ] {
        pairs.push((old.as_bytes().to_vec(), new.as_bytes().to_vec()));
        pairs.push((new.as_bytes().to_vec(), old.as_bytes().to_vec()));
    }
    let r = check_pairs("sliders", &pairs);
    eprintln!(
        "small sliders: {} pairs, {} files, {} patches equal, {} numstats equal",
        pairs.len(),
        r.files,
        r.patch_equal,
        r.numstat_equal
    );
    report(s, "small sliders", &r.failures);
}

/// The last commits of a real history (annals' own by default, where the
/// count is whatever a fresh clone holds): every changed file's patch and
/// numstat, ours against `git show`.
#[test]
fn history_matches_git() {
    let Some(repo) = corpus_repo() else { return };
    let mut args = vec!["rev-list".to_string(), "--no-merges".to_string()];
    args.extend(corpus_revs(40));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let list = git(&repo, &args);
    let commits: Vec<String> = String::from_utf8(list).unwrap().lines().map(str::to_string).collect();

    let mut total = CommitCheck::default();
    for c in &commits {
        // git show's default rename detection, spelled out.
        let r = check_commit(&repo, c, &["-M"]);
        total.files += r.files;
        total.patch_equal += r.patch_equal;
        total.numstat_equal += r.numstat_equal;
        total.failures.extend(r.failures);
    }
    eprintln!(
        "{}: {} commits, {} file pairs, {} patches equal, {} numstats equal",
        repo.display(),
        commits.len(),
        total.files,
        total.patch_equal,
        total.numstat_equal
    );
    for f in total.failures.iter().take(5) {
        eprintln!("{f}\n");
    }
    assert!(
        total.failures.is_empty(),
        "{} mismatches in the history of {}",
        total.failures.len(),
        repo.display()
    );
}
