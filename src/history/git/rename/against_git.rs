//! Differential tests: random histories built with `git fast-import`, and
//! real histories, compared commit by commit with `git log`.
//!
//! The default case counts keep the test suite fast; the soaks raise
//! them: `ANNALS_GITPORT_RUNS` (random histories of 150 commits, default
//! 3), `ANNALS_GITPORT_REPO` with `ANNALS_GITPORT_COMMITS` (a real
//! history, default 100 commits; see `test_support`). `ANNALS_GITPORT_SEED` replays a seed,
//! `ANNALS_GITPORT_VERBOSE` prints every commit's pairs.

mod harness;

use super::{MAX_SCORE, RenameOptions};
use crate::history::git::test_support::{Rng, TempDir, corpus_repo, corpus_revs, env_count, git_command, run, seed};
use harness::{Stats, Variant, compare_history, default_variants, git};
use std::collections::BTreeMap;
use std::path::Path;

const REGULAR: u32 = 0o100644;
const EXECUTABLE: u32 = 0o100755;
const SYMLINK: u32 = 0o120000;
const GITLINK: u32 = 0o160000;

/// A tree entry of the generator's model: mode and blob bytes (or the
/// commit id for gitlinks, as 40 hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    mode: u32,
    data: Vec<u8>,
}

type Tree = BTreeMap<Vec<u8>, Node>;

const DIRS: &[&[u8]] = &[
    b"",
    b"src/",
    b"src/util/",
    b"lib/",
    b"a/",
    b"a/b/",
    b"a/b/c/",
    b"docs/",
    b"t\xffd/",
    b"sp ace/",
    b"deep/er/and/deeper/",
];

const BASENAMES: &[&[u8]] = &[
    b"mod.rs",
    b"lib.rs",
    b"main.c",
    b"README",
    b"a",
    b"b.txt",
    b"Makefile",
    b"\xe9t\xe9.txt",
    b"data.bin",
    b"x-y",
    b"x.y",
    b"empty",
    b"f",
];

const WORDS: &[&str] = &[
    "fn", "let", "mut", "self", "return", "match", "struct", "impl", "use", "pub", "if", "else", "for", "while", "loop", "{", "}", "(",
    ")", ";", "=", "==", "alpha", "beta", "gamma", "delta", "0", "1", "42", "//", "TODO", "x", "y", "z", "Vec<u8>", "String",
];

fn random_line(rng: &mut Rng) -> Vec<u8> {
    let mut line = Vec::new();
    // Mostly short lines; some longer than git's 64-byte chunk limit.
    let words = if rng.chance(10, 100) { 10 + rng.below(40) } else { rng.below(9) };
    for i in 0..words {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(rng.pick(WORDS).as_bytes());
    }
    line
}

fn random_text(rng: &mut Rng) -> Vec<u8> {
    let lines = match rng.below(10) {
        0 => 1 + rng.below(3),
        1 => 200 + rng.below(400),
        _ => 3 + rng.below(60),
    };
    let crlf = rng.chance(10, 100);
    let mut out = Vec::new();
    for _ in 0..lines {
        out.extend_from_slice(&random_line(rng));
        if crlf && rng.chance(90, 100) {
            out.push(b'\r');
        }
        out.push(b'\n');
    }
    if rng.chance(15, 100) {
        out.extend_from_slice(&random_line(rng)); // no final newline
    }
    out
}

fn random_binary(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(3000);
    let mut out: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    // Small alphabets give repeated chunks; make sure there is a NUL early
    // (binary) unless we want text with stray bytes.
    if rng.chance(50, 100) {
        for b in out.iter_mut() {
            *b %= 4;
            if *b == 3 {
                *b = b'\n';
            }
        }
    }
    if !out.is_empty() && rng.chance(80, 100) {
        let at = rng.below(out.len().min(7000));
        out[at] = 0;
    }
    out
}

/// Text whose first NUL comes after git's 8000-byte binary probe, with CRLF
/// line ends: git treats it as text and ignores the CRs.
fn late_nul_text(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < 8000 + rng.below(400) {
        out.extend_from_slice(&random_line(rng));
        out.extend_from_slice(b"\r\n");
    }
    out.push(0);
    out.extend_from_slice(b"tail\r\n");
    out
}

/// Files sharing most of their lines with one of a few templates, so that
/// many sources are similar to many destinations and the matrix, its
/// top-four pruning and the greedy assignment all matter.
fn templated(rng: &mut Rng) -> Vec<u8> {
    let template = rng.below(3) as u64;
    let mut t = Rng::new(1000 + template);
    let mut out = Vec::new();
    for _ in 0..20 + 10 * template {
        out.extend_from_slice(&random_line(&mut t));
        out.push(b'\n');
    }
    for _ in 0..rng.below(25) {
        out.extend_from_slice(&random_line(rng));
        out.push(b'\n');
    }
    out
}

fn random_content(rng: &mut Rng) -> Vec<u8> {
    match rng.below(40) {
        0 | 1 => Vec::new(),
        2..=4 => random_binary(rng),
        5 => late_nul_text(rng),
        6..=15 => templated(rng),
        _ => random_text(rng),
    }
}

/// Edits roughly `fraction` of the content, line-wise for text and
/// byte-wise for everything else.
fn mutate(rng: &mut Rng, data: &[u8], fraction: f64) -> Vec<u8> {
    if rng.chance(20, 100) {
        // Byte-level edits.
        let mut out = data.to_vec();
        let edits = ((out.len() as f64) * fraction / 8.0) as usize + usize::from(rng.chance(50, 100));
        for _ in 0..edits {
            let at = if out.is_empty() { 0 } else { rng.below(out.len()) };
            match rng.below(3) {
                0 if !out.is_empty() => {
                    let end = (at + 1 + rng.below(16)).min(out.len());
                    out.drain(at..end);
                }
                1 => {
                    let ins: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect();
                    out.splice(at..at, ins);
                }
                _ if !out.is_empty() => out[at] = rng.next_u64() as u8,
                _ => {}
            }
        }
        return out;
    }
    let mut lines: Vec<Vec<u8>> = data.split_inclusive(|&b| b == b'\n').map(|l| l.to_vec()).collect();
    let edits = ((lines.len() as f64) * fraction).round() as usize;
    for _ in 0..edits {
        let at = if lines.is_empty() { 0 } else { rng.below(lines.len()) };
        match rng.below(4) {
            0 if !lines.is_empty() => {
                lines.remove(at);
            }
            1 => {
                let mut l = random_line(rng);
                l.push(b'\n');
                lines.insert(at, l);
            }
            2 if !lines.is_empty() => {
                let mut l = random_line(rng);
                l.push(b'\n');
                lines[at] = l;
            }
            _ if !lines.is_empty() => {
                let l = &mut lines[at];
                let pos = rng.below(l.len() + 1);
                l.insert(pos, b'#');
            }
            _ => {}
        }
    }
    lines.concat()
}

fn edit_fraction(rng: &mut Rng) -> f64 {
    match rng.below(10) {
        0 | 1 => 0.0,
        2 | 3 => (rng.below(100) as f64) / 1000.0,
        _ => (rng.below(90) as f64) / 100.0,
    }
}

fn dir_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..=i],
        None => b"",
    }
}

fn base_of(path: &[u8]) -> &[u8] {
    &path[dir_of(path).len()..]
}

/// A path is usable if it is new and does not clash with a file/directory
/// of the same name.
fn path_free(tree: &Tree, path: &[u8]) -> bool {
    if tree.contains_key(path) {
        return false;
    }
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' && tree.contains_key(&path[..i]) {
            return false;
        }
    }
    let mut prefix = path.to_vec();
    prefix.push(b'/');
    let clash = tree.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix));
    !clash
}

fn random_dir(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(15, 100) {
        let mut d = format!("n{}/", rng.below(30)).into_bytes();
        if rng.chance(30, 100) {
            d.extend_from_slice(format!("m{}/", rng.below(5)).as_bytes());
        }
        d
    } else {
        rng.pick(DIRS).to_vec()
    }
}

fn random_base(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(40, 100) {
        rng.pick(BASENAMES).to_vec()
    } else {
        format!("f{}.txt", rng.below(200)).into_bytes()
    }
}

fn new_path(rng: &mut Rng, tree: &Tree) -> Option<Vec<u8>> {
    for _ in 0..20 {
        let mut p = random_dir(rng);
        p.extend_from_slice(&random_base(rng));
        if path_free(tree, &p) {
            return Some(p);
        }
    }
    None
}

/// A destination for moving `from`: same basename elsewhere, new name in
/// the same directory, into a new subdirectory, or anywhere.
fn move_target(rng: &mut Rng, tree: &Tree, from: &[u8]) -> Option<Vec<u8>> {
    for _ in 0..20 {
        let p = match rng.below(4) {
            0 => [random_dir(rng).as_slice(), base_of(from)].concat(),
            1 => [dir_of(from), random_base(rng).as_slice()].concat(),
            2 => [dir_of(from), b"sub/".as_slice(), base_of(from)].concat(),
            _ => {
                let mut p = random_dir(rng);
                p.extend_from_slice(&random_base(rng));
                p
            }
        };
        if path_free(tree, &p) {
            return Some(p);
        }
    }
    None
}

fn pick_path(rng: &mut Rng, tree: &Tree, want: impl Fn(&Node) -> bool) -> Option<Vec<u8>> {
    let candidates: Vec<&Vec<u8>> = tree.iter().filter(|(_, n)| want(n)).map(|(p, _)| p).collect();
    if candidates.is_empty() {
        None
    } else {
        Some(rng.pick(&candidates).to_vec())
    }
}

fn is_file(n: &Node) -> bool {
    n.mode == REGULAR || n.mode == EXECUTABLE
}

fn random_gitlink(rng: &mut Rng) -> Vec<u8> {
    format!("{:016x}{:016x}{:08x}", rng.next_u64(), rng.next_u64(), rng.next_u64() as u32).into_bytes()
}

/// Applies one random operation to `tree`.
fn random_op(rng: &mut Rng, tree: &mut Tree) {
    match rng.below(100) {
        // Rename with an edit of random size.
        0..=29 => {
            let Some(from) = pick_path(rng, tree, is_file) else {
                return;
            };
            let node = tree.remove(&from).expect("picked");
            let Some(to) = move_target(rng, tree, &from) else {
                tree.insert(from, node);
                return;
            };
            let fraction = edit_fraction(rng);
            let mode = if rng.chance(10, 100) {
                EXECUTABLE + REGULAR - node.mode
            } else {
                node.mode
            };
            tree.insert(
                to,
                Node {
                    mode,
                    data: mutate(rng, &node.data, fraction),
                },
            );
        }
        30..=39 => {
            if let Some(p) = pick_path(rng, tree, |_| true) {
                tree.remove(&p);
            }
        }
        40..=51 => {
            if let Some(p) = new_path(rng, tree) {
                let mode = if rng.chance(10, 100) { EXECUTABLE } else { REGULAR };
                tree.insert(
                    p,
                    Node {
                        mode,
                        data: random_content(rng),
                    },
                );
            }
        }
        // Identical (or nearly identical) copies of existing content.
        52..=61 => {
            let Some(src) = pick_path(rng, tree, is_file) else {
                return;
            };
            let node = tree[&src].clone();
            for _ in 0..1 + rng.below(3) {
                if let Some(p) = move_target(rng, tree, &src) {
                    let data = if rng.chance(70, 100) {
                        node.data.clone()
                    } else {
                        let fraction = edit_fraction(rng);
                        mutate(rng, &node.data, fraction)
                    };
                    tree.insert(p, Node { mode: node.mode, data });
                }
            }
        }
        62..=71 => {
            if let Some(p) = pick_path(rng, tree, is_file) {
                let fraction = edit_fraction(rng).max(0.05);
                let node = tree.get_mut(&p).expect("picked");
                node.data = mutate(rng, &node.data, fraction);
            }
        }
        72..=74 => {
            if let Some(p) = pick_path(rng, tree, is_file) {
                let node = tree.get_mut(&p).expect("picked");
                node.mode = EXECUTABLE + REGULAR - node.mode;
            }
        }
        // Symlinks: add, move (exact), move with new target, or turn into a
        // regular file with the same bytes elsewhere.
        75..=80 => {
            let existing = pick_path(rng, tree, |n| n.mode == SYMLINK);
            match (rng.below(4), existing) {
                (1, Some(from)) => {
                    let node = tree.remove(&from).expect("picked");
                    if let Some(to) = move_target(rng, tree, &from) {
                        tree.insert(to, node);
                    }
                }
                (2, Some(from)) => {
                    let node = tree.remove(&from).expect("picked");
                    if let Some(to) = move_target(rng, tree, &from) {
                        let mut data = node.data;
                        data.push(b'x');
                        tree.insert(to, Node { mode: SYMLINK, data });
                    }
                }
                (3, Some(from)) => {
                    let node = tree.remove(&from).expect("picked");
                    if let Some(to) = move_target(rng, tree, &from) {
                        tree.insert(
                            to,
                            Node {
                                mode: REGULAR,
                                data: node.data,
                            },
                        );
                    }
                }
                _ => {
                    if let Some(p) = new_path(rng, tree) {
                        let data = if rng.chance(30, 100) {
                            // Same bytes as some regular file.
                            pick_path(rng, tree, is_file)
                                .map(|q| tree[&q].data.clone())
                                .unwrap_or_else(|| b"target".to_vec())
                        } else {
                            format!("../t{}", rng.below(10)).into_bytes()
                        };
                        tree.insert(p, Node { mode: SYMLINK, data });
                    }
                }
            }
        }
        // Gitlinks: add, move, delete.
        81..=84 => match pick_path(rng, tree, |n| n.mode == GITLINK) {
            Some(from) if rng.chance(60, 100) => {
                let node = tree.remove(&from).expect("picked");
                if let Some(to) = move_target(rng, tree, &from) {
                    tree.insert(to, node);
                }
            }
            _ => {
                if let Some(p) = new_path(rng, tree) {
                    tree.insert(
                        p,
                        Node {
                            mode: GITLINK,
                            data: random_gitlink(rng),
                        },
                    );
                }
            }
        },
        // Type change in place.
        85..=86 => {
            if let Some(p) = pick_path(rng, tree, |n| n.mode != GITLINK) {
                let node = tree.get_mut(&p).expect("picked");
                node.mode = if node.mode == SYMLINK { REGULAR } else { SYMLINK };
            }
        }
        // A file becomes a directory holding (an edit of) it.
        87..=89 => {
            if let Some(p) = pick_path(rng, tree, is_file) {
                let node = tree.remove(&p).expect("picked");
                let mut to = p.clone();
                to.push(b'/');
                to.extend_from_slice(&random_base(rng));
                let fraction = edit_fraction(rng);
                tree.insert(
                    to,
                    Node {
                        mode: node.mode,
                        data: mutate(rng, &node.data, fraction),
                    },
                );
            }
        }
        // Empty files.
        90..=93 => {
            if let Some(p) = pick_path(rng, tree, |n| n.data.is_empty() && is_file(n)) {
                let node = tree.remove(&p).expect("picked");
                if rng.chance(70, 100)
                    && let Some(to) = move_target(rng, tree, &p)
                {
                    tree.insert(to, node);
                }
            } else if let Some(p) = new_path(rng, tree) {
                tree.insert(
                    p,
                    Node {
                        mode: REGULAR,
                        data: Vec::new(),
                    },
                );
            }
        }
        // Replace a group of identical files by edited copies: ties
        // between equally good sources.
        94..=96 => {
            let Some(any) = pick_path(rng, tree, is_file) else {
                return;
            };
            let data = tree[&any].data.clone();
            let group: Vec<Vec<u8>> = tree
                .iter()
                .filter(|(_, n)| is_file(n) && n.data == data)
                .map(|(p, _)| p.clone())
                .collect();
            if group.len() < 2 {
                // Seed a group for a later commit.
                for _ in 0..2 + rng.below(6) {
                    if let Some(p) = new_path(rng, tree) {
                        tree.insert(p, file(&data));
                    }
                }
                return;
            }
            for p in &group {
                tree.remove(p);
            }
            for _ in 0..1 + rng.below(3) {
                if let Some(p) = new_path(rng, tree) {
                    let fraction = edit_fraction(rng).max(0.01);
                    let data = mutate(rng, &data, fraction);
                    tree.insert(p, file(&data));
                }
            }
        }
        // Several files move at once, keeping or swapping basenames, each
        // edited: destinations compete for similar sources.
        97 => {
            let mut group = Vec::new();
            for _ in 0..2 + rng.below(5) {
                if let Some(p) = pick_path(rng, tree, is_file)
                    && let Some(node) = tree.remove(&p)
                {
                    group.push((p, node));
                }
            }
            let bases: Vec<Vec<u8>> = group.iter().map(|(p, _)| base_of(p).to_vec()).collect();
            for (_, node) in group {
                let mut to = random_dir(rng);
                let base = rng.pick(bases.as_slice()).clone();
                to.extend_from_slice(&base);
                if path_free(tree, &to) {
                    let fraction = edit_fraction(rng);
                    let data = mutate(rng, &node.data, fraction);
                    tree.insert(to, Node { mode: node.mode, data });
                }
            }
        }
        // Move a whole directory, editing some files.
        _ => {
            let Some(any) = pick_path(rng, tree, is_file) else {
                return;
            };
            let dir = dir_of(&any).to_vec();
            let target = random_dir(rng);
            if dir.is_empty() || target == dir {
                return;
            }
            let moving: Vec<Vec<u8>> = tree.keys().filter(|k| k.starts_with(&dir)).cloned().collect();
            for from in moving {
                let node = tree.remove(&from).expect("listed");
                let to = [target.as_slice(), &from[dir.len()..]].concat();
                if !path_free(tree, &to) {
                    tree.insert(from, node);
                    continue;
                }
                let data = if is_file(&node) && rng.chance(30, 100) {
                    let fraction = edit_fraction(rng);
                    mutate(rng, &node.data, fraction)
                } else {
                    node.data
                };
                tree.insert(to, Node { mode: node.mode, data });
            }
        }
    }
}

/// Appends a fast-import commit turning `old` into `new`.
fn emit_commit(stream: &mut Vec<u8>, number: usize, old: &Tree, new: &Tree) {
    stream.extend_from_slice(b"commit refs/heads/main\n");
    stream.extend_from_slice(format!("committer T <t@example.com> {} +0000\n", 1_700_000_000 + number).as_bytes());
    stream.extend_from_slice(b"data 2\nc\n\n");
    for path in old.keys() {
        if !new.contains_key(path) {
            stream.extend_from_slice(b"D ");
            stream.extend_from_slice(path);
            stream.push(b'\n');
        }
    }
    for (path, node) in new {
        if old.get(path) == Some(node) {
            continue;
        }
        if node.mode == GITLINK {
            stream.extend_from_slice(format!("M 160000 {} ", String::from_utf8_lossy(&node.data)).as_bytes());
            stream.extend_from_slice(path);
            stream.push(b'\n');
        } else {
            stream.extend_from_slice(format!("M {:o} inline ", node.mode).as_bytes());
            stream.extend_from_slice(path);
            stream.extend_from_slice(format!("\ndata {}\n", node.data.len()).as_bytes());
            stream.extend_from_slice(&node.data);
            stream.push(b'\n');
        }
    }
    stream.push(b'\n');
}

fn random_tree(rng: &mut Rng, files: usize) -> Tree {
    let mut tree = Tree::new();
    for _ in 0..files {
        if let Some(p) = new_path(rng, &tree) {
            tree.insert(
                p,
                Node {
                    mode: REGULAR,
                    data: random_content(rng),
                },
            );
        }
    }
    tree
}

/// Builds a bare repository from a list of trees (one commit each).
fn build_repo(dir: &TempDir, trees: &[Tree]) -> std::path::PathBuf {
    let git_dir = dir.path().join("repo.git");
    let mut init = git_command();
    init.args(["init", "-q", "--bare"]).arg(&git_dir);
    if let Err(e) = run(init, None) {
        panic!("{e}");
    }
    let mut stream = Vec::new();
    let empty = Tree::new();
    for (i, tree) in trees.iter().enumerate() {
        let old = if i == 0 { &empty } else { &trees[i - 1] };
        emit_commit(&mut stream, i, old, tree);
    }
    git(&git_dir, &["fast-import", "--quiet"], Some(stream));
    git_dir
}

fn report(label: &str, seed: u64, stats: &Stats) {
    eprintln!(
        "{label} (seed {seed}): {:?}, numstat {}/{}, renames in git's output {}, git diff checks {} (limit warnings {}), skipped (missing blobs) {}",
        stats.per_variant,
        stats.numstat_equal,
        stats.numstat_compared,
        stats.renames_seen,
        stats.diff_checked,
        stats.limit_warnings,
        stats.skipped_missing_blobs
    );
    for m in &stats.mismatches {
        eprintln!("{m}");
    }
}

fn assert_all_equal(label: &str, seed: u64, stats: &Stats) {
    report(label, seed, stats);
    for (name, compared, equal) in &stats.per_variant {
        assert_eq!(
            compared, equal,
            "{label}: variant {name} mismatches (seed {seed}; rerun with ANNALS_GITPORT_SEED={seed})"
        );
    }
    assert_eq!(
        stats.numstat_compared, stats.numstat_equal,
        "{label}: numstat mismatches (seed {seed}; rerun with ANNALS_GITPORT_SEED={seed})"
    );
    assert_eq!(stats.limit_mismatches, 0, "{label}: rename limit warnings differ (seed {seed})");
}

fn random_history(seed: u64, commits: usize) {
    let mut rng = Rng::new(seed);
    let first = 40 + rng.below(120);
    let mut trees = vec![random_tree(&mut rng, first)];
    for _ in 1..commits {
        let mut tree = trees.last().expect("non-empty").clone();
        let ops = match rng.below(10) {
            0 => 30 + rng.below(60),
            1..=3 => 1,
            _ => 1 + rng.below(12),
        };
        for _ in 0..ops {
            random_op(&mut rng, &mut tree);
        }
        if tree.len() < 20 {
            let extra = random_tree(&mut rng, 30);
            for (p, n) in extra {
                if path_free(&tree, &p) {
                    tree.insert(p, n);
                }
            }
        }
        trees.push(tree);
    }
    let dir = TempDir::new("random");
    let git_dir = build_repo(&dir, &trees);
    let stats = compare_history(&git_dir, &["main"], &default_variants(dir.path()));
    assert_all_equal("random history", seed, &stats);
}

#[test]
fn random_histories_match_git() {
    let base = seed(0x5eed_0001);
    let runs = env_count("ANNALS_GITPORT_RUNS", 3);
    for k in 0..runs {
        random_history(base.wrapping_add(k), 150);
    }
}

fn scripted(label: &str, trees: Vec<Tree>, variants: impl FnOnce(&Path) -> Vec<Variant>) {
    let dir = TempDir::new("scripted");
    let git_dir = build_repo(&dir, &trees);
    let stats = compare_history(&git_dir, &["main"], &variants(dir.path()));
    assert_all_equal(label, 0, &stats);
}

fn file(data: &[u8]) -> Node {
    Node {
        mode: REGULAR,
        data: data.to_vec(),
    }
}

/// Many identical sources: git's hash-chain order decides which one a
/// destination without a basename match takes. 205 sources make git's
/// presized table grow on the last insertion, which reverses the chains.
#[test]
fn identical_sources_follow_git_chain_order() {
    for count in [3, 150, 204, 205, 206, 1100] {
        let mut before = Tree::new();
        for i in 0..count {
            before.insert(format!("d/f{i:04}").into_bytes(), file(b"same\n"));
        }
        let mut after = Tree::new();
        after.insert(b"e/other".to_vec(), file(b"same\n"));
        // Basename match beyond the first 100 candidates.
        if count > 120 {
            after.insert(b"e/f0120".to_vec(), file(b"same\n"));
        }
        after.insert(b"e/f0002".to_vec(), file(b"same\n"));
        scripted(&format!("identical x{count}"), vec![before, after], default_variants);
    }
}

/// Rename limit boundaries: exactly `limit^2` candidates still run the
/// matrix, one more does not; basename matches survive the limit.
#[test]
fn rename_limit_boundaries() {
    let mut rng = Rng::new(7);
    let mut before = Tree::new();
    let mut contents = Vec::new();
    for i in 0..6 {
        let data = random_text(&mut rng);
        before.insert(format!("old/s{i}.txt").into_bytes(), file(&data));
        contents.push(data);
    }
    let mut after = Tree::new();
    for (i, data) in contents.iter().enumerate() {
        let name = if i == 0 {
            "new/s0.txt".to_string()
        } else {
            format!("new/d{i}.txt")
        };
        after.insert(name.into_bytes(), file(&mutate(&mut rng, data, 0.1)));
    }
    let mut variants = Vec::new();
    for limit in [1usize, 2, 3, 4, 5, 6] {
        let config: &'static str = Box::leak(format!("diff.renameLimit={limit}").into_boxed_str());
        variants.push(Variant::new(
            "limit",
            vec!["-c", config],
            vec![],
            RenameOptions {
                rename_limit: limit,
                ..RenameOptions::default()
            },
        ));
    }
    variants.push(Variant::new(
        "exact only",
        vec![],
        vec!["-M100%"],
        RenameOptions {
            minimum_score: MAX_SCORE,
            ..RenameOptions::default()
        },
    ));
    scripted("rename limit", vec![before, after], |_| variants);
}

/// The last commits of a real history (annals' own by default, where the
/// count is whatever a fresh clone holds).
#[test]
fn real_history_matches_git() {
    let Some(git_dir) = corpus_repo() else { return };
    let revs = corpus_revs(100);
    let revs: Vec<&str> = revs.iter().map(String::as_str).collect();
    let variants = vec![Variant::new("default", vec![], vec![], RenameOptions::default())];
    let stats = compare_history(&git_dir, &revs, &variants);
    assert_all_equal(&format!("real history {}", git_dir.display()), 0, &stats);
}

/// Several equally similar sources for one destination: git keeps the first
/// four it sees, prefers a same-basename source, then takes them in order.
/// A unique-basename pair below the basename pass's 75% threshold is left
/// to the matrix, where a better source wins.
#[test]
fn basename_pass_threshold() {
    let lines = |prefix: &str, n: usize| -> Vec<u8> { (0..n).map(|i| format!("{prefix} line {i:02}\n")).collect::<String>().into_bytes() };
    let common = lines("common", 24);
    let mut before = Tree::new();
    // x.c shares ~66% with the destination: enough for -M50%, not for the
    // basename pass's 75%.
    before.insert(b"a/x.c".to_vec(), file(&[common.clone(), lines("xonly", 12)].concat()));
    before.insert(b"a/y.c".to_vec(), file(&[common.clone(), lines("yonly", 4)].concat()));
    let mut after = Tree::new();
    after.insert(b"b/x.c".to_vec(), file(&[common, lines("yonly", 4), b"new\n".to_vec()].concat()));
    scripted("basename threshold", vec![before, after], default_variants);
}

#[test]
fn ties_between_equal_sources() {
    let mut rng = Rng::new(11);
    let base = random_text(&mut rng);
    for (sources, dst_names) in [
        (7, vec!["h/x1", "h/x2"]),
        (5, vec!["h/s3", "h/y"]),
        (9, vec!["h/a", "h/s8", "h/s7", "h/b"]),
    ] {
        let mut before = Tree::new();
        for i in 0..sources {
            before.insert(format!("g/s{i}").into_bytes(), file(&base));
        }
        let mut after = Tree::new();
        for name in dst_names {
            let mut edited = base.clone();
            edited.extend_from_slice(b"one more line\n");
            after.insert(name.as_bytes().to_vec(), file(&edited));
        }
        scripted("ties", vec![before, after], default_variants);
    }
}

/// Chunks that differ but land in the same bucket count as copied for git.
/// Find such collisions with our hash, then check git scores them the same
/// way: this pins down the exact hash function, not just its spirit.
#[test]
fn bucket_collisions_count_as_copies() {
    use super::similarity::SpanCounts;
    use std::collections::HashMap;
    let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut n = 0u32;
    while pairs.len() < 12 {
        let line = format!("collide {n:07}\n").into_bytes();
        n += 1;
        let key = format!("{:?}", SpanCounts::new(&line, false));
        match seen.get(&key) {
            Some(other) => pairs.push((other.clone(), line)),
            None => {
                seen.insert(key, line);
            }
        }
    }
    let src: Vec<u8> = pairs.iter().flat_map(|(a, _)| a.clone()).collect();
    // Half the lines replaced by their colliding twins: git should still
    // see (almost) everything as copied.
    let dst: Vec<u8> = pairs
        .iter()
        .enumerate()
        .flat_map(|(i, (a, b))| if i % 2 == 0 { a.clone() } else { b.clone() })
        .collect();
    assert_eq!(super::similarity::similarity(&src, &dst), MAX_SCORE);
    let mut before = Tree::new();
    before.insert(b"p/src.txt".to_vec(), file(&src));
    let mut after = Tree::new();
    after.insert(b"q/dst.txt".to_vec(), file(&dst));
    scripted("collisions", vec![before, after], default_variants);
}

/// Binary detection decides whether CRs of CRLF are ignored; attributes can
/// override it either way.
#[test]
fn crlf_and_binary_attributes() {
    let lines: Vec<u8> = (0..12).map(|i| format!("some text line {i}\n")).collect::<String>().into_bytes();
    let crlf: Vec<u8> = lines
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|l| [&l[..l.len() - 1], b"\r\n"].concat())
        .collect();
    let with_nul = |data: &[u8]| [data, b"\0\n"].concat();
    let mut before = Tree::new();
    let mut after = Tree::new();
    for name in ["x.txt", "a.txt", "x.bin", "x.c"] {
        before.insert(format!("p/{name}").into_bytes(), file(&lines));
        after.insert(format!("q/{name}").into_bytes(), file(&crlf));
        before.insert(format!("p/nul-{name}").into_bytes(), file(&with_nul(&lines)));
        after.insert(format!("q/nul-{name}").into_bytes(), file(&with_nul(&crlf)));
    }
    scripted("crlf/attributes", vec![before, after], default_variants);
}

/// git's default `diff.renameLimit` (1000): 1000 x 1000 candidates still
/// get the full matrix, 1001 x 1000 do not.
#[test]
fn default_rename_limit_boundary() {
    for sources in [1000usize, 1001] {
        let content = |i: usize| format!("header {i}\nbody {i}\nfooter {i}\n").into_bytes();
        let mut before = Tree::new();
        let mut after = Tree::new();
        for i in 0..sources {
            // One basename everywhere, so the basename pass cannot help.
            before.insert(format!("s{i:04}/same.txt").into_bytes(), file(&content(i)));
        }
        for i in 0..1000 {
            let edited = [content(i), b"extra\n".to_vec()].concat();
            after.insert(format!("t{i:04}/same.txt").into_bytes(), file(&edited));
        }
        scripted(&format!("default limit, {sources} sources"), vec![before, after], |_| {
            vec![Variant::new("default", vec![], vec![], RenameOptions::default())]
        });
    }
}
