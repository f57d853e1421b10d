//! The harness of the comparisons with git: random file generators, and the per-commit
//! comparison of our patches and numstat with git's.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::super::patch::gitlink_blob;
use super::super::{FilePatch, FileSide, numstat_counts, write_file_patch};
use crate::history::git::test_support::{Rng, git_command, run};

/// Runs git in the work tree `dir`, with git's default diff settings spelled out.
pub(super) fn git_in(dir: &Path, args: &[&[u8]], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = git_command();
    cmd.current_dir(dir)
        .args([
            "-c",
            "core.quotePath=true",
            "-c",
            "diff.indentHeuristic=true",
            "-c",
            "diff.algorithm=myers",
            "-c",
            "color.ui=never",
            "-c",
            "core.autocrlf=false",
            "-c",
            "init.defaultBranch=main",
            "--no-pager",
        ])
        .args(args.iter().map(|a| OsStr::from_bytes(a)));
    match run(cmd, stdin.map(<[u8]>::to_vec)) {
        Ok((out, _)) => out,
        Err(e) => panic!("{e}"),
    }
}

/// [`git_in`] with string arguments.
pub(super) fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    git_in(dir, &args, None)
}

// ---------------------------------------------------------------------
// Random content.

/// Join lines with `\n`, dropping the final newline when asked.
pub(super) fn join(lines: &[Vec<u8>], final_newline: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    if !final_newline && !out.is_empty() {
        out.pop();
    }
    out
}

fn tiny_line(rng: &mut Rng) -> Vec<u8> {
    const L: &[&str] = &["a", "b", "c", "d", "", " a", "\ta", "x y", "}"];
    L[rng.below(L.len())].as_bytes().to_vec()
}

fn code_body_line(rng: &mut Rng) -> Vec<u8> {
    const S: &[&str] = &[
        "x = 1;",
        "return x;",
        "if (x) {",
        "}",
        "foo();",
        "",
        "bar(y);",
        "// note",
        "} else {",
        "while (n--)",
        "continue;",
        "break;",
        "y += x;",
    ];
    // Now and then far deeper than the indent heuristic's 200-column cap.
    let depth = if rng.chance(1, 15) { rng.range(4, 40) } else { rng.range(1, 3) };
    let unit: &str = if rng.chance(1, 3) { "\t" } else { "    " };
    let text = *rng.pick(S);
    if text.is_empty() {
        return Vec::new();
    }
    let mut l = unit.repeat(depth).into_bytes();
    l.extend_from_slice(text.as_bytes());
    l
}

fn code_header(rng: &mut Rng) -> Vec<u8> {
    const H: &[&str] = &[
        "int main(void)",
        "static void helper(int x)",
        "def run(self):",
        "fn parse(input: &str) -> Result<()>",
        "$var = function()",
        "_private_label:",
        "class Foo:",
        "struct very_long_structure_name_that_goes_on_and_on_and_on_and_on_for_more_than_eighty_bytes {",
        "void f\u{e9}(caf\u{e9} c) {",
        "  indented_not_a_function()",
        "#define MACRO 1",
        "x",
    ];
    let mut h = rng.pick(H).as_bytes().to_vec();
    if rng.chance(1, 6) {
        h.extend_from_slice(b"   ");
    }
    if rng.chance(1, 10) {
        h.extend_from_slice(b"\r");
    }
    if rng.chance(1, 12) {
        // Not UTF-8: git cuts the hunk header line there.
        h.extend_from_slice(b" \xff\xfe latin");
    }
    h
}

fn code_lines(rng: &mut Rng, nfuncs: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..nfuncs {
        if rng.chance(1, 4) {
            out.push(b"/* comment */".to_vec());
        }
        out.push(code_header(rng));
        for _ in 0..rng.range(0, 8) {
            out.push(code_body_line(rng));
        }
        out.push(b"}".to_vec());
        for _ in 0..rng.range(0, 2) {
            out.push(Vec::new());
        }
    }
    out
}

fn vocab_line(rng: &mut Rng, vocab: usize) -> Vec<u8> {
    let w = rng.below(vocab);
    match w % 5 {
        0 => format!("word{w}").into_bytes(),
        1 => format!("    indented {w}").into_bytes(),
        2 => format!("Func{w}(arg)").into_bytes(),
        3 => Vec::new(),
        _ => format!("\tline {w};").into_bytes(),
    }
}

fn weird_line(rng: &mut Rng) -> Vec<u8> {
    const W: &[&[u8]] = &[
        b"crlf\r",
        b"trailing spaces   ",
        b"\xc3\xa9t\xc3\xa9",
        b"\xff\xfe bytes",
        b"   ",
        b"\t",
        b"\r",
        b"$dollar",
        b"_under",
        b"a very long line that starts with a letter and keeps going past the eighty byte limit of xdiff",
        b"caf\xc3\xa9 with a multibyte char placed right around the eighty byte cut: \xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
        b"\\ backslash",
        b"+plus",
        b"-minus",
        b"@@ fake @@",
    ];
    W[rng.below(W.len())].to_vec()
}

/// Edit `old` into a related new version: keeps most lines, with
/// deletions, replacements, insertions and copied blocks (which make
/// sliders for the compaction heuristics).
pub(super) fn mutate(rng: &mut Rng, old: &[Vec<u8>], rate: usize, fresh: &mut dyn FnMut(&mut Rng) -> Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(old.len() + 8);
    let mut i = 0;
    while i < old.len() {
        if !rng.chance(rate, 100) {
            out.push(old[i].clone());
            i += 1;
            continue;
        }
        match rng.below(6) {
            0 => i += rng.range(1, 4), // delete a few
            1 => {
                out.push(fresh(rng));
                i += 1;
            }
            2 => {
                for _ in 0..rng.range(1, 4) {
                    out.push(fresh(rng));
                }
            }
            3 => {
                // Copy a nearby block in (insert a duplicate).
                let s = rng.below(old.len());
                let e = (s + rng.range(1, 6)).min(old.len());
                out.extend(old[s..e].iter().cloned());
            }
            4 => {
                out.push(old[i].clone());
                out.push(old[i].clone());
                i += 1;
            }
            _ => {
                // Insert a copy of the lines just before (classic slider).
                let k = rng.range(1, 3).min(out.len());
                let start = out.len() - k;
                let block: Vec<Vec<u8>> = out[start..].to_vec();
                out.extend(block);
            }
        }
    }
    if rng.chance(1, 5) {
        for _ in 0..rng.range(1, 3) {
            out.push(fresh(rng));
        }
    }
    out
}

/// Edit in runs: long kept stretches alternating with long changed
/// stretches, giving big edit distances with long snakes in between
/// (what the search's cost heuristics react to).
pub(super) fn mutate_clustered(rng: &mut Rng, old: &[Vec<u8>], vocab: usize, keep: (usize, usize), change: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < old.len() {
        let keep = rng.range(keep.0, keep.1);
        out.extend(old[i..(i + keep).min(old.len())].iter().cloned());
        i += keep;
        let change = rng.range(1, change);
        for _ in 0..change {
            if rng.chance(1, 2) {
                out.push(vocab_line(rng, vocab));
            }
        }
        i += rng.range(0, change);
    }
    out
}

/// A pair big enough (over 32k lines a side) that the search's cost
/// limit rises above its 256 minimum, the only case where git's snake
/// heuristic can act; small vocabulary and clustered edits so that it
/// does.
pub(super) fn huge_pair(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let vocab = rng.range(3, 60);
    let n = rng.range(33_000, 45_000);
    let old: Vec<_> = (0..n).map(|_| vocab_line(rng, vocab)).collect();
    let keep = if rng.chance(1, 2) {
        (rng.range(10, 30), rng.range(40, 120))
    } else {
        (rng.range(5, 21), rng.range(21, 30))
    };
    let change = rng.range(5, 60);
    let new = mutate_clustered(rng, &old, vocab, keep, change);
    (join(&old, true), join(&new, !rng.chance(1, 4)))
}

/// A random old/new pair of one of several shapes.
pub(super) fn random_pair(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let (old, new) = match rng.below(20) {
        0..=4 => {
            let old: Vec<_> = (0..rng.range(0, 40)).map(|_| tiny_line(rng)).collect();
            let rate = rng.range(5, 60);
            let new = mutate(rng, &old, rate, &mut tiny_line);
            (old, new)
        }
        5..=9 => {
            let nf = rng.range(0, 10);
            let old = code_lines(rng, nf);
            let new = if rng.chance(1, 3) {
                let nf = rng.range(0, 10);
                code_lines(rng, nf)
            } else {
                let rate = rng.range(2, 30);
                mutate(rng, &old, rate, &mut |r: &mut Rng| {
                    if r.chance(1, 3) { code_header(r) } else { code_body_line(r) }
                })
            };
            (old, new)
        }
        10 | 11 => {
            let mut old: Vec<_> = (0..rng.range(0, 30)).map(|_| weird_line(rng)).collect();
            old.extend(code_lines(rng, 2));
            let rate = rng.range(5, 40);
            let new = mutate(rng, &old, rate, &mut weird_line);
            (old, new)
        }
        12 => {
            // Many duplicates of a few lines, mixed with unique ones:
            // drives the "too many matches" discards.
            let n = rng.range(100, 1500);
            let mut uniq = 0usize;
            let mut dup_line = |r: &mut Rng| -> Vec<u8> {
                if r.chance(2, 3) {
                    r.pick(&["}", "", "return;", "    x"]).as_bytes().to_vec()
                } else {
                    uniq += 1;
                    format!("unique {} {}", uniq, r.below(1000)).into_bytes()
                }
            };
            let old: Vec<_> = (0..n).map(|_| dup_line(rng)).collect();
            let rate = rng.range(5, 70);
            let new = mutate(rng, &old, rate, &mut dup_line);
            (old, new)
        }
        13 => dense_block_pair(rng),
        14 | 15 => repeat_pair(rng),
        16 => {
            let vocab = rng.range(2, 400);
            let old: Vec<_> = (0..rng.range(50, 800)).map(|_| vocab_line(rng, vocab)).collect();
            let rate = rng.range(1, 50);
            let new = mutate(rng, &old, rate, &mut |r: &mut Rng| vocab_line(r, vocab));
            (old, new)
        }
        17 => {
            // Small vocabulary (every line matches somewhere) with long
            // kept runs between long edited ones: large costs.
            let vocab = rng.range(3, 12);
            let old: Vec<_> = (0..rng.range(1000, 4000)).map(|_| vocab_line(rng, vocab)).collect();
            let new = mutate_clustered(rng, &old, vocab, (15, 80), 50);
            (old, new)
        }
        18 => {
            let vocab = rng.range(5, 3000);
            let old: Vec<_> = (0..rng.range(300, 2500)).map(|_| vocab_line(rng, vocab)).collect();
            let new = mutate_clustered(rng, &old, vocab, (5, 60), 50);
            (old, new)
        }
        _ => {
            // Unrelated files from one small vocabulary: large edit
            // distance, so the search hits its cost limit.
            let vocab = rng.range(3, 40);
            let old: Vec<_> = (0..rng.range(100, 3000)).map(|_| vocab_line(rng, vocab)).collect();
            let new: Vec<_> = (0..rng.range(100, 3000)).map(|_| vocab_line(rng, vocab)).collect();
            (old, new)
        }
    };
    let old_nl = !rng.chance(1, 6);
    let new_nl = if rng.chance(1, 2) { old_nl } else { !rng.chance(1, 6) };
    (join(&old, old_nl), join(&new, new_nl))
}

/// Code with a long run of a repeated short block (blank lines, `}`,
/// indented lines), and that block inserted or removed somewhere in the
/// run (more than once, sometimes): the change can slide along the run,
/// often further than the indent heuristic's 100-line window.
fn repeat_pair(rng: &mut Rng) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let period: Vec<Vec<u8>> = (0..rng.range(1, 3))
        .map(|_| if rng.chance(1, 3) { Vec::new() } else { code_body_line(rng) })
        .collect();
    let nf = rng.range(0, 3);
    let mut old = code_lines(rng, nf);
    let run_start = old.len();
    let reps = rng.range(3, 250);
    for _ in 0..reps {
        old.extend(period.iter().cloned());
    }
    let nf = rng.range(0, 3);
    old.extend(code_lines(rng, nf));
    let mut new = old.clone();
    for _ in 0..rng.range(1, 3) {
        let k = rng.range(1, 3);
        let at = (run_start + period.len() * rng.below(reps)).min(new.len());
        if rng.chance(1, 2) {
            for _ in 0..k {
                for (j, l) in period.iter().enumerate() {
                    new.insert(at + j, l.clone());
                }
            }
        } else {
            let end = (at + k * period.len()).min(new.len());
            new.drain(at..end);
        }
    }
    if rng.chance(1, 2) { (old, new) } else { (new, old) }
}

/// A long block (well over the 100-line scan window) of new lines, most
/// without a match but with common lines (`}`, blanks) mixed in at a
/// density that changes from segment to segment, inserted into code with
/// many of those common lines: exercises which many-matches lines the
/// preparation drops, and the window that limits its scan.
fn dense_block_pair(rng: &mut Rng) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let nf = rng.range(20, 150);
    let old = code_lines(rng, nf);
    let mut new = old.clone();
    let at = rng.below(new.len() + 1);
    let mut block: Vec<Vec<u8>> = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let common_pct = *rng.pick(&[0, 0, 5, 15, 30, 50, 70]);
        for _ in 0..rng.range(20, 300) {
            if rng.chance(common_pct, 100) {
                block.push(rng.pick(&["}", "", "\tbreak;", "    x = 1;"]).as_bytes().to_vec());
            } else {
                block.push(format!("fresh line {}", block.len()).into_bytes());
            }
        }
    }
    new.splice(at..at, block);
    if rng.chance(1, 3) {
        // Also drop a stretch of the old text.
        let s = rng.below(new.len());
        let e = (s + rng.range(1, 200)).min(new.len());
        new.drain(s..e);
    }
    if rng.chance(1, 2) { (old, new) } else { (new, old) }
}

// ---------------------------------------------------------------------
// Comparing whole commits with git.

/// One entry of `git diff-tree -r -z` raw output.
#[derive(Debug, Clone)]
pub(super) struct RawEntry {
    pub(super) old_mode: u32,
    pub(super) new_mode: u32,
    pub(super) old_oid: String,
    pub(super) new_oid: String,
    pub(super) status: u8,
    pub(super) score: Option<u32>,
    pub(super) old_path: Vec<u8>,
    pub(super) new_path: Vec<u8>,
}

pub(super) fn parse_raw(raw: &[u8]) -> Vec<RawEntry> {
    let mut fields = raw.split(|&b| b == 0).peekable();
    let mut out = Vec::new();
    while let Some(head) = fields.next() {
        if head.is_empty() {
            continue;
        }
        let head = std::str::from_utf8(head).unwrap();
        let head = head.trim_start_matches(':');
        let parts: Vec<&str> = head.split(' ').collect();
        let old_mode = u32::from_str_radix(parts[0], 8).unwrap();
        let new_mode = u32::from_str_radix(parts[1], 8).unwrap();
        let status = parts[4].as_bytes()[0];
        let score = if parts[4].len() > 1 {
            Some(parts[4][1..].parse().unwrap())
        } else {
            None
        };
        let p1 = fields.next().unwrap().to_vec();
        let p2 = if status == b'R' || status == b'C' {
            fields.next().unwrap().to_vec()
        } else {
            p1.clone()
        };
        out.push(RawEntry {
            old_mode,
            new_mode,
            old_oid: parts[2].to_string(),
            new_oid: parts[3].to_string(),
            status,
            score,
            old_path: p1,
            new_path: p2,
        });
    }
    out
}

/// Read blobs by id through one `git cat-file --batch`.
pub(super) fn read_blobs(repo: &Path, oids: &[String]) -> HashMap<String, Vec<u8>> {
    let mut input = Vec::new();
    for o in oids {
        input.extend_from_slice(o.as_bytes());
        input.push(b'\n');
    }
    let out = git_in(repo, &[b"cat-file", b"--batch"], Some(&input));
    let mut map = HashMap::new();
    let mut pos = 0;
    for o in oids {
        let nl = pos + out[pos..].iter().position(|&b| b == b'\n').unwrap();
        let head = std::str::from_utf8(&out[pos..nl]).unwrap();
        pos = nl + 1;
        if head.ends_with("missing") {
            continue;
        }
        let size: usize = head.rsplit(' ').next().unwrap().parse().unwrap();
        map.insert(o.clone(), out[pos..pos + size].to_vec());
        pos += size + 1;
    }
    map
}

/// Split a patch into its `diff --git` sections.
pub(super) fn sections(patch: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i < patch.len() {
        if patch[i..].starts_with(b"diff --git ") {
            starts.push(i);
        }
        match patch[i..].iter().position(|&b| b == b'\n') {
            Some(p) => i += p + 1,
            None => break,
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(patch.len());
        out.push(&patch[s..e]);
    }
    out
}

/// Result of comparing one commit.
#[derive(Default, Debug)]
pub(super) struct CommitCheck {
    pub(super) files: usize,
    pub(super) patch_equal: usize,
    pub(super) numstat_equal: usize,
    pub(super) failures: Vec<String>,
}

const ZERO_OID: &str = "0000000000000000000000000000000000000000";

/// Compare our patch and numstat of every file of `commit` (against its
/// first parent, or the empty tree for a root commit) with git's.
/// `extra` are diff options for both sides (e.g. `-M`).
pub(super) fn check_commit(repo: &Path, commit: &str, extra: &[&str]) -> CommitCheck {
    let mut args = vec!["diff-tree", "-r", "-z", "--root", "--no-commit-id", "--full-index"];
    args.extend_from_slice(extra);
    args.push(commit);
    let raw = git(repo, &args);
    let entries = parse_raw(&raw);

    let mut oids = Vec::new();
    for e in &entries {
        for (oid, mode) in [(&e.old_oid, e.old_mode), (&e.new_oid, e.new_mode)] {
            if oid != ZERO_OID && mode & 0o170000 != 0o160000 {
                oids.push(oid.clone());
            }
        }
    }
    let blobs = read_blobs(repo, &oids);

    let mut args = vec!["show", "--full-index", "--format="];
    args.extend_from_slice(extra);
    args.push(commit);
    let git_patch = git(repo, &args);
    let mut args = vec!["show", "--numstat", "-z", "--format="];
    args.extend_from_slice(extra);
    args.push(commit);
    let git_numstat = git(repo, &args);
    let git_counts = parse_numstat_z(&git_numstat);

    let mut result = CommitCheck::default();
    let mut ours_all = Vec::new();
    let git_sections = sections(&git_patch);
    let mut gi = 0;
    for (k, e) in entries.iter().enumerate() {
        let side = |mode: u32, oid: &String, path: &Vec<u8>| -> Option<(u32, String, Vec<u8>, Vec<u8>)> {
            if mode == 0 {
                return None;
            }
            let data = if mode & 0o170000 == 0o160000 {
                Vec::new()
            } else {
                blobs.get(oid).cloned().unwrap_or_else(|| panic!("blob {oid} missing"))
            };
            Some((mode, oid.clone(), path.clone(), data))
        };
        let o = side(e.old_mode, &e.old_oid, &e.old_path);
        let n = side(e.new_mode, &e.new_oid, &e.new_path);
        let fp = FilePatch {
            old: o.as_ref().map(|(mode, oid, path, data)| FileSide {
                path,
                mode: *mode,
                oid,
                data,
            }),
            new: n.as_ref().map(|(mode, oid, path, data)| FileSide {
                path,
                mode: *mode,
                oid,
                data,
            }),
            similarity: if e.status == b'R' || e.status == b'C' { e.score } else { None },
            copied: e.status == b'C',
        };
        let mut ours = Vec::new();
        let patch_counts = write_file_patch(&fp, &mut ours);
        ours_all.extend_from_slice(&ours);
        result.files += 1;

        // The same number of sections as ours (a file-type change gives two).
        let n_ours = sections(&ours).len();
        let theirs: Vec<u8> = git_sections[gi.min(git_sections.len())..(gi + n_ours).min(git_sections.len())].concat();
        gi += n_ours;
        if theirs == ours {
            result.patch_equal += 1;
        } else {
            result.failures.push(format!(
                "{commit} patch of {:?}:\n--- git ---\n{}\n--- ours ---\n{}",
                String::from_utf8_lossy(&e.new_path),
                String::from_utf8_lossy(&theirs),
                String::from_utf8_lossy(&ours)
            ));
        }

        let content = |s: &Option<(u32, String, Vec<u8>, Vec<u8>)>| -> Vec<u8> {
            match s {
                None => Vec::new(),
                Some((mode, oid, _, _)) if mode & 0o170000 == 0o160000 => gitlink_blob(oid),
                Some((_, _, _, d)) => d.clone(),
            }
        };
        let ours_n = numstat_counts(&content(&o), &content(&n));
        let theirs_n = git_counts.get(k).cloned().unwrap_or(Some((u64::MAX, u64::MAX)));
        // The counts the patch writer returns are the same numbers.
        if ours_n == theirs_n && patch_counts == theirs_n {
            result.numstat_equal += 1;
        } else {
            result.failures.push(format!(
                "{commit} numstat of {:?}: git {:?} ours {:?}, the patch writer's {:?}",
                String::from_utf8_lossy(&e.new_path),
                theirs_n,
                ours_n,
                patch_counts
            ));
        }
    }
    if result.failures.is_empty() && ours_all != git_patch {
        result
            .failures
            .push(format!("{commit}: whole patch differs though every file matched"));
    }
    if git_counts.len() != entries.len() {
        result.failures.push(format!(
            "{commit}: git numstat has {} entries, raw {}",
            git_counts.len(),
            entries.len()
        ));
    }
    result
}

/// Parse `--numstat -z`: `add\tdel\tpath\0`, or for a rename
/// `add\tdel\t\0old\0new\0`; `-\t-` for binary.
pub(super) fn parse_numstat_z(out: &[u8]) -> Vec<Option<(u64, u64)>> {
    let mut res = Vec::new();
    let mut fields = out.split(|&b| b == 0);
    while let Some(f) = fields.next() {
        if f.is_empty() {
            continue;
        }
        let f = f.strip_prefix(b"\n").unwrap_or(f);
        let mut parts = f.splitn(3, |&b| b == b'\t');
        let a = parts.next().unwrap();
        let d = parts.next().unwrap();
        let path = parts.next().unwrap_or(b"");
        if path.is_empty() {
            // Rename: two more fields.
            fields.next();
            fields.next();
        }
        if a == b"-" {
            res.push(None);
        } else {
            let a: u64 = std::str::from_utf8(a).unwrap().parse().unwrap();
            let d: u64 = std::str::from_utf8(d).unwrap().parse().unwrap();
            res.push(Some((a, d)));
        }
    }
    res
}

/// Write `content` at `rel` (raw bytes) under `root`, making parents.
pub(super) fn write_file(root: &Path, rel: &[u8], content: &[u8]) {
    let p = root.join(OsStr::from_bytes(rel));
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let _ = std::fs::remove_file(&p);
    std::fs::write(&p, content).unwrap();
}
