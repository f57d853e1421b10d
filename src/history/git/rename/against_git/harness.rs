//! The harness of the comparisons with git: run git, parse its `-z` log output, feed the
//! raw changes to `detect_renames`, and compare with what git itself reported.

use super::super::{Change, FileSide, Modification, RenameOptions, detect_renames, similarity_percent};
use crate::history::git::test_support::{git_command, run};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Runs git on the repository `git_dir`; `Err(stderr)` if it fails.
pub(super) fn try_git(git_dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Result<(Vec<u8>, String), String> {
    let mut cmd = git_command();
    cmd.arg("--git-dir").arg(git_dir).args(args);
    run(cmd, stdin)
}

/// Like [`try_git`], panicking on failure, also returning stderr (for git's warnings).
pub(super) fn git_with_stderr(git_dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> (Vec<u8>, String) {
    match try_git(git_dir, args, stdin) {
        Ok(out) => out,
        Err(err) => panic!("git {args:?} failed: {err}"),
    }
}

/// Runs git on the repository `git_dir`, panicking on failure.
pub(super) fn git(git_dir: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Vec<u8> {
    git_with_stderr(git_dir, args, stdin).0
}

/// `git diff --name-status -z a b` normalised like [`name_status`], plus the
/// limit git's "set diff.renameLimit to at least N" warning asks for.
pub(super) fn diff_name_status(git_dir: &Path, pre_args: &[&str], a: &str, b: &str) -> (Vec<Vec<u8>>, Option<usize>) {
    let mut args: Vec<&str> = pre_args.to_vec();
    args.extend_from_slice(&["diff", "--name-status", "-z", a, b]);
    let (out, err) = git_with_stderr(git_dir, &args, None);
    let mut tokens: Vec<Vec<u8>> = out.split(|&b| b == 0).map(|t| t.to_vec()).collect();
    if tokens.last().is_some_and(|t| t.is_empty()) {
        tokens.pop();
    }
    let entries = group_name_status(tokens);
    let needed = err
        .split("at least ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    (entries, needed)
}

fn group_name_status(tokens: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    let mut it = tokens.into_iter();
    while let Some(status) = it.next() {
        let mut e = status.clone();
        let paths = if matches!(status.first(), Some(b'R') | Some(b'C')) { 2 } else { 1 };
        for _ in 0..paths {
            e.push(0);
            e.extend_from_slice(&it.next().expect("name-status path"));
        }
        entries.push(e);
    }
    entries
}

const MARK: &[u8] = b"\x01\x02";

/// Splits `git log -z --format=%x01%x02%H %P ...` output into
/// `(commit, parents, body tokens)`.
fn split_log(out: &[u8]) -> Vec<(String, Vec<String>, Vec<Vec<u8>>)> {
    let mut records = Vec::new();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + MARK.len() <= out.len() {
        if &out[i..i + MARK.len()] == MARK {
            starts.push(i);
            i += MARK.len();
        } else {
            i += 1;
        }
    }
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(out.len());
        let rec = &out[start + MARK.len()..end];
        let nul = rec.iter().position(|&b| b == 0).unwrap_or(rec.len());
        let header = String::from_utf8_lossy(&rec[..nul]).to_string();
        let mut body = if nul < rec.len() { &rec[nul + 1..] } else { &[][..] };
        if body.first() == Some(&b'\n') {
            body = &body[1..];
        }
        let mut tokens: Vec<Vec<u8>> = body.split(|&b| b == 0).map(|t| t.to_vec()).collect();
        if tokens.last().is_some_and(|t| t.is_empty()) {
            tokens.pop();
        }
        let mut words = header.split(' ');
        let commit = words.next().unwrap_or("").to_string();
        let parents = words.filter(|w| !w.is_empty()).map(String::from).collect();
        records.push((commit, parents, tokens));
    }
    records
}

/// One line of `--raw --no-renames` output.
#[derive(Clone, Debug)]
pub(super) struct RawEntry {
    pub(super) old_mode: u32,
    pub(super) new_mode: u32,
    pub(super) old_oid: String,
    pub(super) new_oid: String,
    pub(super) status: u8,
    pub(super) path: Vec<u8>,
}

pub(super) struct CommitChanges {
    pub(super) commit: String,
    pub(super) parents: Vec<String>,
    pub(super) raw: Vec<RawEntry>,
}

const FORMAT: &str = "--format=%x01%x02%H %P";

/// Raw tree changes (no rename detection) of every commit in `revs`.
pub(super) fn raw_changes(git_dir: &Path, revs: &[&str]) -> Vec<CommitChanges> {
    let mut args = vec!["log", "-z", FORMAT, "--raw", "--no-renames", "--no-abbrev"];
    args.extend_from_slice(revs);
    let out = git(git_dir, &args, None);
    split_log(&out)
        .into_iter()
        .map(|(commit, parents, tokens)| {
            let mut raw = Vec::new();
            let mut it = tokens.into_iter();
            while let Some(meta) = it.next() {
                let meta = String::from_utf8(meta).expect("raw meta is ascii");
                let fields: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
                assert_eq!(fields.len(), 5, "unexpected raw line {meta:?}");
                let path = it.next().expect("raw path");
                raw.push(RawEntry {
                    old_mode: u32::from_str_radix(fields[0], 8).expect("mode"),
                    new_mode: u32::from_str_radix(fields[1], 8).expect("mode"),
                    old_oid: fields[2].to_string(),
                    new_oid: fields[3].to_string(),
                    status: fields[4].as_bytes()[0],
                    path,
                });
            }
            CommitChanges { commit, parents, raw }
        })
        .collect()
}

/// `commit -> name-status entries`, each normalised as `STATUS\0path[\0path]`.
pub(super) fn name_status(git_dir: &Path, pre_args: &[&str], log_args: &[&str], revs: &[&str]) -> HashMap<String, Vec<Vec<u8>>> {
    let mut args: Vec<&str> = pre_args.to_vec();
    args.extend_from_slice(&["log", "-z", FORMAT, "--name-status"]);
    args.extend_from_slice(log_args);
    args.extend_from_slice(revs);
    let out = git(git_dir, &args, None);
    let mut map = HashMap::new();
    for (commit, _, tokens) in split_log(&out) {
        map.insert(commit, group_name_status(tokens));
    }
    map
}

/// `commit -> numstat paths`, each `path` or `old\0new` for renames.
/// `None` when git cannot produce numstat (it needs every modified blob,
/// which partial snapshots may lack).
pub(super) fn numstat_paths(git_dir: &Path, revs: &[&str]) -> Option<HashMap<String, Vec<Vec<u8>>>> {
    let mut args = vec!["log", "-z", FORMAT, "--numstat"];
    args.extend_from_slice(revs);
    let (out, _) = try_git(git_dir, &args, None).ok()?;
    let mut map = HashMap::new();
    for (commit, _, tokens) in split_log(&out) {
        let mut entries = Vec::new();
        let mut it = tokens.into_iter();
        while let Some(stat) = it.next() {
            // "added\tdeleted\tpath", or "added\tdeleted\t" + old + new.
            let mut parts = stat.splitn(3, |&b| b == b'\t');
            let _added = parts.next();
            let _deleted = parts.next();
            let path = parts.next().expect("numstat path field").to_vec();
            if path.is_empty() {
                let mut e = it.next().expect("numstat old");
                e.push(0);
                e.extend_from_slice(&it.next().expect("numstat new"));
                entries.push(e);
            } else {
                entries.push(path);
            }
        }
        map.insert(commit, entries);
    }
    Some(map)
}

const GITLINK: u32 = 0o160000;

/// Loads every blob the raw changes add or delete via `git cat-file --batch`.
pub(super) fn load_blobs(git_dir: &Path, commits: &[CommitChanges]) -> HashMap<String, Vec<u8>> {
    let mut wanted: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for c in commits {
        // Modifications are never rename sources here, so only additions
        // and deletions need content.
        for e in c.raw.iter().filter(|e| matches!(e.status, b'A' | b'D')) {
            for (mode, oid) in [(e.old_mode, &e.old_oid), (e.new_mode, &e.new_oid)] {
                if mode != 0 && mode != GITLINK && seen.insert(oid.clone()) {
                    wanted.push(oid.clone());
                }
            }
        }
    }
    let mut input = Vec::new();
    for oid in &wanted {
        input.extend_from_slice(oid.as_bytes());
        input.push(b'\n');
    }
    let out = git(git_dir, &["cat-file", "--batch"], Some(input));
    let mut blobs = HashMap::new();
    let mut pos = 0;
    for oid in &wanted {
        let nl = pos + out[pos..].iter().position(|&b| b == b'\n').expect("header");
        let header = String::from_utf8_lossy(&out[pos..nl]).to_string();
        let fields: Vec<&str> = header.split(' ').collect();
        if fields.len() == 2 && fields[1] == "missing" {
            // Partial snapshots can lack big blobs; such commits are skipped.
            pos = nl + 1;
            continue;
        }
        assert_eq!(fields.len(), 3, "cat-file header {header:?}");
        assert_eq!(fields[0], oid);
        let size: usize = fields[2].parse().expect("size");
        let start = nl + 1;
        blobs.insert(oid.clone(), out[start..start + size].to_vec());
        pos = start + size + 1;
    }
    blobs
}

/// Our answer for one commit, normalised like [`name_status`] and
/// [`numstat_paths`].
pub(super) fn ours<'a>(
    raw: &'a [RawEntry],
    blobs: &'a HashMap<String, Vec<u8>>,
    options: &RenameOptions,
    binary_rules: &[(&[u8], bool)],
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Option<usize>) {
    // Mirrors the `*<suffix> -diff` / `*<suffix> diff` attribute lines.
    let binary = |path: &[u8]| {
        binary_rules
            .iter()
            .rev()
            .find(|(suffix, _)| path.ends_with(suffix))
            .map(|&(_, b)| b)
    };
    let file = |path: &'a [u8], mode: u32, oid: &'a str| FileSide {
        path,
        mode,
        oid: oid.as_bytes(),
        data: if mode == GITLINK {
            &[]
        } else {
            blobs.get(oid).expect("blob loaded")
        },
        binary: binary(path),
    };
    let mut del_sides = Vec::new();
    let mut add_sides = Vec::new();
    let mut mod_sides = Vec::new();
    for e in raw {
        match e.status {
            b'D' => del_sides.push(file(&e.path, e.old_mode, &e.old_oid)),
            b'A' => add_sides.push(file(&e.path, e.new_mode, &e.new_oid)),
            _ => mod_sides.push(Modification {
                path: &e.path,
                old_mode: e.old_mode,
                new_mode: e.new_mode,
            }),
        }
    }
    let result = detect_renames(&del_sides, &add_sides, &mod_sides, options);
    let mut status = Vec::new();
    let mut numstat = Vec::new();
    for c in &result.changes {
        let mut s = Vec::new();
        match c {
            Change::Renamed {
                old_path, new_path, score, ..
            } => {
                s.extend_from_slice(format!("R{:03}", similarity_percent(*score)).as_bytes());
                s.push(0);
                s.extend_from_slice(old_path);
                s.push(0);
                s.extend_from_slice(new_path);
                let mut n = old_path.clone();
                n.push(0);
                n.extend_from_slice(new_path);
                numstat.push(n);
            }
            other => {
                let path = match other {
                    Change::Added { path, .. } | Change::Deleted { path, .. } | Change::Modified { path, .. } => path,
                    Change::Renamed { new_path, .. } => new_path,
                };
                s.push(other.status_letter() as u8);
                s.push(0);
                s.extend_from_slice(path);
                numstat.push(path.clone());
            }
        }
        status.push(s);
    }
    (status, numstat, result.needed_rename_limit)
}

/// A comparison variant: git arguments and the matching options.
pub(super) struct Variant {
    pub(super) name: &'static str,
    /// Arguments before `log` (e.g. `-c diff.renameLimit=3`).
    pub(super) pre_args: Vec<&'static str>,
    /// Arguments after `log` (e.g. `-M30%`).
    pub(super) log_args: Vec<&'static str>,
    pub(super) options: RenameOptions,
    /// Path suffixes marked `-diff` (true) or `diff` (false) through
    /// `core.attributesFile`.
    pub(super) binary_rules: Vec<(&'static [u8], bool)>,
}

impl Variant {
    /// A variant with only git arguments and options.
    pub(super) fn new(name: &'static str, pre_args: Vec<&'static str>, log_args: Vec<&'static str>, options: RenameOptions) -> Variant {
        Variant {
            name,
            pre_args,
            log_args,
            options,
            binary_rules: Vec::new(),
        }
    }

    /// A default-options variant whose attributes file (written under
    /// `dir`) overrides git's binary detection for some suffixes.
    pub(super) fn with_attributes(dir: &Path, rules: Vec<(&'static [u8], bool)>) -> Variant {
        let mut text = Vec::new();
        for (suffix, binary) in &rules {
            text.push(b'*');
            text.extend_from_slice(suffix);
            text.extend_from_slice(if *binary { b" -diff\n" } else { b" diff\n" });
        }
        let file = dir.join("attributes");
        std::fs::write(&file, text).expect("write attributes");
        let config: &'static str = Box::leak(format!("core.attributesFile={}", file.display()).into_boxed_str());
        Variant {
            name: "attributes",
            pre_args: vec!["-c", config],
            log_args: vec![],
            options: RenameOptions::default(),
            binary_rules: rules,
        }
    }
}

/// Git defaults, a tiny rename limit, a lower threshold, and attribute
/// overrides of binary detection (attributes file written under `dir`).
pub(super) fn default_variants(dir: &Path) -> Vec<Variant> {
    vec![
        Variant::new("default", vec![], vec![], RenameOptions::default()),
        Variant::new(
            "renameLimit=3",
            vec!["-c", "diff.renameLimit=3"],
            vec![],
            RenameOptions {
                rename_limit: 3,
                ..RenameOptions::default()
            },
        ),
        Variant::new(
            "-M30%",
            vec![],
            vec!["-M30%"],
            RenameOptions {
                minimum_score: 18_000,
                ..RenameOptions::default()
            },
        ),
        Variant::with_attributes(dir, vec![(b".txt", true), (b"a.txt", false), (b".bin", false)]),
    ]
}

#[derive(Default, Debug)]
pub(super) struct Stats {
    /// (variant, commits compared, commits equal)
    pub(super) per_variant: Vec<(String, usize, usize)>,
    pub(super) numstat_compared: usize,
    pub(super) numstat_equal: usize,
    pub(super) renames_seen: usize,
    /// Commits also checked with `git diff` (name-status and limit warning).
    pub(super) diff_checked: usize,
    pub(super) limit_mismatches: usize,
    /// How many of those made git warn about the rename limit.
    pub(super) limit_warnings: usize,
    /// Commits skipped because the repository lacks a blob they add or delete.
    pub(super) skipped_missing_blobs: usize,
    pub(super) mismatches: Vec<String>,
}

fn show(entries: &[Vec<u8>]) -> String {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(e).replace('\0', " "))
        .collect::<Vec<_>>()
        .join("\n    ")
}

/// Compares every non-merge commit in `revs` under each variant (plus the
/// numstat path list under defaults).
pub(super) fn compare_history(git_dir: &Path, revs: &[&str], variants: &[Variant]) -> Stats {
    let commits = raw_changes(git_dir, revs);
    let blobs = load_blobs(git_dir, &commits);
    let mut stats = Stats::default();
    let numstat = numstat_paths(git_dir, revs);
    for (vi, variant) in variants.iter().enumerate() {
        let expected = name_status(git_dir, &variant.pre_args, &variant.log_args, revs);
        let (mut compared, mut equal) = (0, 0);
        for c in &commits {
            // `git log` shows no diff for merges by default.
            if c.parents.len() > 1 {
                continue;
            }
            let complete = c.raw.iter().all(|e| {
                !matches!(e.status, b'A' | b'D')
                    || [(e.old_mode, &e.old_oid), (e.new_mode, &e.new_oid)]
                        .iter()
                        .all(|(mode, oid)| *mode == 0 || *mode == GITLINK || blobs.contains_key(*oid))
            });
            if !complete {
                if vi == 0 {
                    stats.skipped_missing_blobs += 1;
                }
                continue;
            }
            let want = expected.get(&c.commit).cloned().unwrap_or_default();
            let (got, _, needed) = ours(&c.raw, &blobs, &variant.options, &variant.binary_rules);
            // Spot-check that `git diff` agrees with `git log`, including the
            // rename-limit warning.
            if c.parents.len() == 1 && compared % 25 == 0 {
                let (diff, git_needed) = diff_name_status(git_dir, &variant.pre_args, &c.parents[0], &c.commit);
                if variant.log_args.is_empty() {
                    assert_eq!(diff, want, "git diff and git log disagree on {}", c.commit);
                }
                stats.diff_checked += 1;
                stats.limit_warnings += usize::from(git_needed.is_some());
                if git_needed != needed {
                    stats.mismatches.push(format!(
                        "[{}] commit {}: git needs rename limit {:?}, ours {:?}",
                        variant.name, c.commit, git_needed, needed
                    ));
                    stats.limit_mismatches += 1;
                }
            }
            compared += 1;
            if std::env::var_os("ANNALS_GITPORT_VERBOSE").is_some() {
                eprintln!("[{}] {}:\n    {}", variant.name, c.commit, show(&want));
            }
            if got == want {
                equal += 1;
            } else if stats.mismatches.len() < 20 {
                stats.mismatches.push(format!(
                    "[{}] commit {}:\n  git:\n    {}\n  ours:\n    {}",
                    variant.name,
                    c.commit,
                    show(&want),
                    show(&got)
                ));
            }
            if vi == 0 {
                stats.renames_seen += want.iter().filter(|e| e.first() == Some(&b'R')).count();
            }
            if vi == 0
                && let Some(numstat) = &numstat
            {
                // `git log --numstat` always runs with git's defaults.
                let (_, got_numstat, _) = ours(&c.raw, &blobs, &RenameOptions::default(), &[]);
                let want_numstat = numstat.get(&c.commit).cloned().unwrap_or_default();
                stats.numstat_compared += 1;
                if want_numstat == got_numstat {
                    stats.numstat_equal += 1;
                } else if stats.mismatches.len() < 20 {
                    stats.mismatches.push(format!(
                        "[numstat] commit {}:\n  git:\n    {}\n  ours:\n    {}",
                        c.commit,
                        show(&want_numstat),
                        show(&got_numstat)
                    ));
                }
            }
        }
        stats.per_variant.push((variant.name.to_string(), compared, equal));
    }
    stats
}
