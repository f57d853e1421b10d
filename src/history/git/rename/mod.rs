//! Rename detection that reports the same renames as git 2.47 does for
//! `git log` / `git diff` with default settings (`diff.renames=true`, i.e.
//! `-M50%`, no copy or break detection, `diff.renameLimit` = 1000).
//!
//! The input is what git's tree walk produces for one commit against one
//! parent before any diffcore processing: deleted files, added files and
//! in-place modifications. The output is the list of file pairs git reports,
//! in git's order.
//!
//! Git's pipeline, reproduced here stage by stage:
//! 1. Deleted paths become rename sources and added paths destinations
//!    (modifications are not sources without `-C`). Empty blobs take part,
//!    because `--rename-empty` is on by default.
//! 2. Exact renames: a destination takes an unused source with the same
//!    object id; among several, one with the same basename is preferred,
//!    otherwise the first in git's hash-chain order (module `exact`).
//! 3. Basename pass: a remaining source whose basename is unique among
//!    remaining sources, and matches a basename that is unique among
//!    remaining destinations, is paired if similar enough to a stricter
//!    threshold (75% by default).
//! 4. If `sources * destinations` still exceeds `limit^2`, git stops here
//!    (the "exhaustive rename detection was skipped" warning).
//! 5. Otherwise every remaining destination is scored against every
//!    remaining source, the best four per destination are kept, all kept
//!    candidates are sorted, and pairs are assigned greedily.
//! 6. Paired deletions disappear; paired additions become renames at the
//!    position of the destination path.
//!
//! The tests (`against_git`) compare the result with the installed git's.

#[cfg(test)]
mod against_git;
mod exact;
pub mod similarity;

pub use similarity::{DEFAULT_RENAME_SCORE, MAX_SCORE, looks_binary, similarity_percent};

use similarity::{SpanCounts, score_from_copied, sizes_too_different};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Git's default `diff.renameLimit` in 2.47 (`diff_rename_limit_default`).
pub const DEFAULT_RENAME_LIMIT: usize = 1000;

/// How many candidate sources git keeps per destination (`NUM_CANDIDATE_PER_DST`).
const CANDIDATES_PER_DST: usize = 4;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFGITLINK: u32 = 0o160000;

/// Whether a git tree-entry mode is a regular file (`100644` or `100755`).
pub fn is_regular(mode: u32) -> bool {
    mode & S_IFMT == S_IFREG
}

/// One side of a deletion or addition, as the tree walk sees it.
#[derive(Clone, Copy, Debug)]
pub struct FileSide<'a> {
    /// Path relative to the repository root, `/`-separated, as stored in git.
    pub path: &'a [u8],
    /// Git mode: `0o100644`, `0o100755`, `0o120000` (symlink) or
    /// `0o160000` (gitlink).
    pub mode: u32,
    /// Object id, in any encoding (raw or hex) as long as it is the same for
    /// every entry: only equality is used.
    pub oid: &'a [u8],
    /// Blob content (symlink target for symlinks). Ignored for gitlinks.
    /// Only read when an inexact comparison needs it.
    pub data: &'a [u8],
    /// Binary override from `.gitattributes`; `None` uses git's default
    /// test (a NUL in the first 8000 bytes). Only affects CRLF handling.
    pub binary: Option<bool>,
}

/// An in-place change of one path (content and/or mode).
#[derive(Clone, Copy, Debug)]
pub struct Modification<'a> {
    /// Path of the changed entry.
    pub path: &'a [u8],
    /// Mode in the parent.
    pub old_mode: u32,
    /// Mode in the commit.
    pub new_mode: u32,
}

/// Knobs matching git's diff options; [`Default`] is git's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenameOptions {
    /// Minimum score for an inexact rename (`-M<n>`); 0 means the default
    /// 30000 (50%), and [`MAX_SCORE`] means exact renames only.
    pub minimum_score: u32,
    /// `diff.renameLimit` / `-l`; 0 means unlimited.
    pub rename_limit: usize,
    /// `--rename-empty` (on by default): whether empty blobs may be paired.
    pub rename_empty: bool,
    /// `GIT_BASENAME_FACTOR` in percent (default 50): how far between the
    /// minimum score and a perfect score the basename pass's threshold is.
    pub basename_factor_percent: u32,
}

impl Default for RenameOptions {
    fn default() -> Self {
        RenameOptions {
            minimum_score: DEFAULT_RENAME_SCORE,
            rename_limit: DEFAULT_RENAME_LIMIT,
            rename_empty: true,
            basename_factor_percent: 50,
        }
    }
}

/// One file pair of the final result. Indices refer to the slices passed to
/// [`detect_renames`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new path that is not a rename destination (`A`).
    Added {
        /// The added path.
        path: Vec<u8>,
        /// Index into `additions`.
        addition: usize,
    },
    /// A removed path that is not a rename source (`D`).
    Deleted {
        /// The deleted path.
        path: Vec<u8>,
        /// Index into `deletions`.
        deletion: usize,
    },
    /// A path changed in place (`M`, or `T` when the file type changed).
    Modified {
        /// The modified path.
        path: Vec<u8>,
        /// Index into `modifications`.
        modification: usize,
        /// Regular file / symlink / gitlink type differs (git's `T`).
        type_changed: bool,
    },
    /// A deletion and an addition paired as a rename (`R<percent>`).
    Renamed {
        /// Path in the parent.
        old_path: Vec<u8>,
        /// Path in the commit.
        new_path: Vec<u8>,
        /// Index into `deletions`.
        deletion: usize,
        /// Index into `additions`.
        addition: usize,
        /// Git's score, 0..=[`MAX_SCORE`]; exact renames score [`MAX_SCORE`].
        score: u32,
    },
}

impl Change {
    /// The status letter git prints with `--name-status`.
    pub fn status_letter(&self) -> char {
        match self {
            Change::Added { .. } => 'A',
            Change::Deleted { .. } => 'D',
            Change::Modified { type_changed: true, .. } => 'T',
            Change::Modified { .. } => 'M',
            Change::Renamed { .. } => 'R',
        }
    }

    /// The `similarity index` percentage of a rename, `None` otherwise.
    pub fn similarity_percent(&self) -> Option<u32> {
        match self {
            Change::Renamed { score, .. } => Some(similarity_percent(*score)),
            _ => None,
        }
    }
}

/// Result of [`detect_renames`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenameResult {
    /// Pairs in git's output order (path order; a rename sits where its
    /// destination path sorts).
    pub changes: Vec<Change>,
    /// `Some(n)` when the inexact matrix was skipped because
    /// `sources * destinations > limit^2`; `n` is the limit git would ask
    /// for (`max(sources, destinations)` remaining after the cheap passes).
    /// Exact and basename renames are still reported in that case.
    pub needed_rename_limit: Option<usize>,
}

/// Runs git's rename detection on one commit's raw changes.
///
/// The order of the input slices does not matter: entries are put in git's
/// tree-walk order (byte order of the full path), which is also the order
/// git uses for tie-breaks.
pub fn detect_renames(
    deletions: &[FileSide<'_>],
    additions: &[FileSide<'_>],
    modifications: &[Modification<'_>],
    options: &RenameOptions,
) -> RenameResult {
    let queue = tree_walk_order(deletions, additions, modifications);
    let mut state = Detector::new(deletions, additions, &queue, options);
    let needed_rename_limit = state.run();
    RenameResult {
        changes: state.write_back(modifications),
        needed_rename_limit,
    }
}

/// An entry of git's diff queue before rename detection.
#[derive(Clone, Copy, Debug)]
enum Queued {
    Deletion(usize),
    Modification(usize),
    Addition(usize),
}

/// Git's diff queue order. The tree walk visits entries in tree order, where
/// a directory name compares as if followed by `/`; for full paths that is
/// plain byte order. A path cannot be both deleted and added in one tree
/// diff, so the kind only breaks ties for malformed input.
fn tree_walk_order<'a>(
    deletions: &[FileSide<'a>],
    additions: &[FileSide<'a>],
    modifications: &[Modification<'a>],
) -> Vec<(&'a [u8], Queued)> {
    let mut queue: Vec<(&[u8], Queued)> = Vec::with_capacity(deletions.len() + additions.len() + modifications.len());
    queue.extend(deletions.iter().enumerate().map(|(i, f)| (f.path, Queued::Deletion(i))));
    queue.extend(modifications.iter().enumerate().map(|(i, m)| (m.path, Queued::Modification(i))));
    queue.extend(additions.iter().enumerate().map(|(i, f)| (f.path, Queued::Addition(i))));
    // Stable: equal paths keep deletion, modification, addition order.
    queue.sort_by(|a, b| a.0.cmp(b.0));
    queue
}

/// A kept candidate of the similarity matrix (git's `struct diff_score`).
#[derive(Clone, Copy, Debug)]
struct Candidate {
    /// Index into `Detector::sources`.
    src: usize,
    /// Index into `Detector::dsts`.
    dst: usize,
    score: u32,
    same_basename: bool,
}

/// Git's `score_compare`: higher score first, then same basename first; an
/// empty slot sorts last. `Greater` means "worse".
fn candidate_order(a: &Option<Candidate>, b: &Option<Candidate>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => b.score.cmp(&a.score).then(b.same_basename.cmp(&a.same_basename)),
    }
}

/// Git's `record_if_better`: replace the worst of the kept candidates (the
/// first slot among equally bad ones) if the new one is strictly better.
fn keep_if_better(slots: &mut [Option<Candidate>], new: Candidate) {
    let mut worst = 0;
    for i in 1..slots.len() {
        if candidate_order(&slots[i], &slots[worst]) == Ordering::Greater {
            worst = i;
        }
    }
    let new = Some(new);
    if candidate_order(&slots[worst], &new) == Ordering::Greater {
        slots[worst] = new;
    }
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// Per-file state shared by the passes: the file, and its chunk hashes once
/// computed (git caches them in `cnt_data` for the same reason: each file
/// takes part in many comparisons).
struct Entry<'f, 'a> {
    file: &'f FileSide<'a>,
    counts: Option<SpanCounts>,
}

impl Entry<'_, '_> {
    fn counts(&mut self) -> &SpanCounts {
        let file = self.file;
        self.counts.get_or_insert_with(|| {
            let binary = file.binary.unwrap_or_else(|| looks_binary(file.data));
            SpanCounts::new(file.data, binary)
        })
    }
}

struct Detector<'f, 'a> {
    options: RenameOptions,
    /// Rename sources (deletions) in queue order; index = git's `rename_src`
    /// index before any culling.
    sources: Vec<Entry<'f, 'a>>,
    /// Index into the caller's `deletions` for each source.
    source_ids: Vec<usize>,
    /// Whether a source has been consumed by a rename.
    source_used: Vec<bool>,
    /// Rename destinations (additions) in queue order.
    dsts: Vec<Entry<'f, 'a>>,
    /// Index into the caller's `additions` for each destination.
    dst_ids: Vec<usize>,
    /// For each destination, `(source, score)` once paired.
    dst_match: Vec<Option<(usize, u32)>>,
    queue: &'f [(&'a [u8], Queued)],
    deletions: &'f [FileSide<'a>],
    additions: &'f [FileSide<'a>],
}

impl<'f, 'a> Detector<'f, 'a> {
    fn new(deletions: &'f [FileSide<'a>], additions: &'f [FileSide<'a>], queue: &'f [(&'a [u8], Queued)], options: &RenameOptions) -> Self {
        let mut options = *options;
        // Git treats a zero score as "use the default"; its option parser
        // never produces more than MAX_SCORE or a factor above 100%.
        if options.minimum_score == 0 {
            options.minimum_score = DEFAULT_RENAME_SCORE;
        }
        options.minimum_score = options.minimum_score.min(MAX_SCORE);
        options.basename_factor_percent = options.basename_factor_percent.min(100);
        // Git only pairs empty blobs when --rename-empty is on (the default).
        let eligible = |f: &FileSide<'_>| options.rename_empty || f.mode & S_IFMT == S_IFGITLINK || !f.data.is_empty();
        let mut detector = Detector {
            options,
            sources: Vec::new(),
            source_ids: Vec::new(),
            source_used: Vec::new(),
            dsts: Vec::new(),
            dst_ids: Vec::new(),
            dst_match: Vec::new(),
            queue,
            deletions,
            additions,
        };
        for &(_, q) in queue {
            match q {
                Queued::Deletion(i) if eligible(&deletions[i]) => {
                    detector.sources.push(Entry {
                        file: &deletions[i],
                        counts: None,
                    });
                    detector.source_ids.push(i);
                }
                Queued::Addition(i) if eligible(&additions[i]) => {
                    detector.dsts.push(Entry {
                        file: &additions[i],
                        counts: None,
                    });
                    detector.dst_ids.push(i);
                }
                _ => {}
            }
        }
        detector.source_used = vec![false; detector.sources.len()];
        detector.dst_match = vec![None; detector.dsts.len()];
        detector
    }

    fn record(&mut self, dst: usize, src: usize, score: u32) {
        self.source_used[src] = true;
        self.dst_match[dst] = Some((src, score));
    }

    /// Runs all passes; returns the needed rename limit if the matrix was
    /// skipped.
    fn run(&mut self) -> Option<usize> {
        if self.sources.is_empty() || self.dsts.is_empty() {
            return None;
        }
        self.exact_pass();
        let minimum = self.options.minimum_score;
        if minimum == MAX_SCORE {
            return None;
        }
        let factor = f64::from(self.options.basename_factor_percent) / 100.0;
        let basename_minimum = minimum + (factor * f64::from(MAX_SCORE - minimum)) as u32;
        self.basename_pass(basename_minimum);

        let live_sources: Vec<usize> = (0..self.sources.len()).filter(|&s| !self.source_used[s]).collect();
        let live_dsts: Vec<usize> = (0..self.dsts.len()).filter(|&d| self.dst_match[d].is_none()).collect();
        if live_sources.is_empty() || live_dsts.is_empty() {
            return None;
        }
        let limit = self.options.rename_limit as u128;
        if limit > 0 && (live_sources.len() as u128) * (live_dsts.len() as u128) > limit * limit {
            return Some(live_sources.len().max(live_dsts.len()));
        }
        self.matrix_pass(&live_sources, &live_dsts);
        None
    }

    fn exact_pass(&mut self) {
        let mut chains = exact::SourceChains::build(self.sources.iter().map(|e| e.file.oid));
        for dst in 0..self.dsts.len() {
            let target = self.dsts[dst].file;
            let mut best: Option<(usize, u32)> = None;
            // Git looks at no more than 100 usable identical sources.
            let mut budget = 100;
            for src in chains.candidates(target.oid, &self.source_used) {
                let source = self.sources[src].file;
                // Identical blobs still need compatible modes: a symlink or
                // gitlink only pairs with the very same mode.
                if !(is_regular(source.mode) && is_regular(target.mode)) && source.mode != target.mode {
                    continue;
                }
                if self.source_used[src] {
                    continue;
                }
                let score = 1 + u32::from(basename(source.path) == basename(target.path));
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((src, score));
                    if score == 2 {
                        break;
                    }
                }
                budget -= 1;
                if budget == 0 {
                    break;
                }
            }
            if let Some((src, _)) = best {
                self.record(dst, src, MAX_SCORE);
            }
        }
    }

    /// Git's `estimate_similarity` for source `src` and destination `dst`.
    fn estimate(&mut self, src: usize, dst: usize, minimum_score: u32) -> u32 {
        let (s, d) = (self.sources[src].file, self.dsts[dst].file);
        // Only exact matches rename symlinks and gitlinks.
        if !is_regular(s.mode) || !is_regular(d.mode) {
            return 0;
        }
        let (s_len, d_len) = (s.data.len() as u64, d.data.len() as u64);
        if sizes_too_different(s_len, d_len, minimum_score) {
            return 0;
        }
        // Disjoint field borrows: both caches can be filled at once.
        let src_counts = self.sources[src].counts();
        let dst_counts = self.dsts[dst].counts();
        score_from_copied(src_counts.copied_to(dst_counts), s_len, d_len)
    }

    /// Git's `find_basename_matches` as used by plain `git log`/`git diff`
    /// (no directory-rename hints): only basenames unique on both sides are
    /// compared, in source order, against a stricter threshold.
    fn basename_pass(&mut self, minimum_score: u32) {
        // `None` marks a basename seen more than once.
        let mut unique_sources: HashMap<&[u8], Option<usize>> = HashMap::new();
        for src in 0..self.sources.len() {
            if self.source_used[src] {
                continue;
            }
            unique_sources
                .entry(basename(self.sources[src].file.path))
                .and_modify(|slot| *slot = None)
                .or_insert(Some(src));
        }
        let mut unique_dsts: HashMap<&[u8], Option<usize>> = HashMap::new();
        for dst in 0..self.dsts.len() {
            if self.dst_match[dst].is_some() {
                continue;
            }
            unique_dsts
                .entry(basename(self.dsts[dst].file.path))
                .and_modify(|slot| *slot = None)
                .or_insert(Some(dst));
        }
        for src in 0..self.sources.len() {
            if self.source_used[src] {
                continue;
            }
            let base = basename(self.sources[src].file.path);
            let Some(Some(_)) = unique_sources.get(base) else {
                continue;
            };
            let Some(&Some(dst)) = unique_dsts.get(base) else {
                continue;
            };
            if self.dst_match[dst].is_some() {
                continue;
            }
            let score = self.estimate(src, dst, minimum_score);
            if score >= minimum_score {
                self.record(dst, src, score);
            }
        }
    }

    /// Git's full similarity matrix over what the cheaper passes left.
    fn matrix_pass(&mut self, live_sources: &[usize], live_dsts: &[usize]) {
        let minimum = self.options.minimum_score;
        let mut kept: Vec<Option<Candidate>> = vec![None; live_dsts.len() * CANDIDATES_PER_DST];
        for (row, &dst) in kept.chunks_mut(CANDIDATES_PER_DST).zip(live_dsts) {
            for &src in live_sources {
                let score = self.estimate(src, dst, minimum);
                let same_basename = basename(self.sources[src].file.path) == basename(self.dsts[dst].file.path);
                keep_if_better(
                    row,
                    Candidate {
                        src,
                        dst,
                        score,
                        same_basename,
                    },
                );
            }
        }
        // Git uses a stable sort here, so equal candidates stay in
        // destination order, then slot order.
        kept.sort_by(candidate_order);
        for candidate in kept {
            let Some(c) = candidate else { break };
            if c.score < minimum {
                break;
            }
            if self.dst_match[c.dst].is_some() || self.source_used[c.src] {
                continue;
            }
            self.record(c.dst, c.src, c.score);
        }
    }

    /// Git's write-back: walk the original queue, drop deletions whose source
    /// was consumed, and turn paired additions into renames in place.
    fn write_back(&self, modifications: &[Modification<'_>]) -> Vec<Change> {
        let mut deletion_consumed = vec![false; self.deletions.len()];
        for (src, &deletion) in self.source_ids.iter().enumerate() {
            deletion_consumed[deletion] = self.source_used[src];
        }
        let mut match_of_addition: Vec<Option<(usize, u32)>> = vec![None; self.additions.len()];
        for (dst, &addition) in self.dst_ids.iter().enumerate() {
            if let Some((src, score)) = self.dst_match[dst] {
                match_of_addition[addition] = Some((self.source_ids[src], score));
            }
        }
        let mut changes = Vec::with_capacity(self.queue.len());
        for &(path, queued) in self.queue {
            match queued {
                Queued::Deletion(deletion) => {
                    if !deletion_consumed[deletion] {
                        changes.push(Change::Deleted {
                            path: path.to_vec(),
                            deletion,
                        });
                    }
                }
                Queued::Addition(addition) => match match_of_addition[addition] {
                    Some((deletion, score)) => changes.push(Change::Renamed {
                        old_path: self.deletions[deletion].path.to_vec(),
                        new_path: self.additions[addition].path.to_vec(),
                        deletion,
                        addition,
                        score,
                    }),
                    None => changes.push(Change::Added {
                        path: path.to_vec(),
                        addition,
                    }),
                },
                Queued::Modification(modification) => {
                    let m = &modifications[modification];
                    changes.push(Change::Modified {
                        path: path.to_vec(),
                        modification,
                        type_changed: m.old_mode & S_IFMT != m.new_mode & S_IFMT,
                    });
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side<'a>(path: &'a [u8], oid: &'a [u8], data: &'a [u8]) -> FileSide<'a> {
        FileSide {
            path,
            mode: 0o100644,
            oid,
            data,
            binary: None,
        }
    }

    #[test]
    fn many_identical_files_stay_linear() {
        // 30k identical empty files moved: the exact pass must not rescan
        // consumed sources for every destination.
        let n = 30_000;
        let old: Vec<Vec<u8>> = (0..n).map(|i| format!("old/{i}").into_bytes()).collect();
        let new: Vec<Vec<u8>> = (0..n).map(|i| format!("new/x{i}").into_bytes()).collect();
        let dels: Vec<FileSide<'_>> = old.iter().map(|p| side(p, b"e69de29", b"")).collect();
        let adds: Vec<FileSide<'_>> = new.iter().map(|p| side(p, b"e69de29", b"")).collect();
        let start = std::time::Instant::now();
        let result = detect_renames(&dels, &adds, &[], &RenameOptions::default());
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
        assert_eq!(result.changes.len(), n);
        assert!(result.changes.iter().all(|c| c.status_letter() == 'R'));
    }

    #[test]
    fn an_edited_move_is_a_rename() {
        let old = b"one\ntwo\nthree\nfour\n";
        let new = b"one\ntwo\nthree\nfour\nfive\n";
        let deleted = [side(b"src/a.rs", b"1111", old)];
        let added = [side(b"lib/a.rs", b"2222", new)];
        let result = detect_renames(&deleted, &added, &[], &RenameOptions::default());
        assert_eq!(result.changes.len(), 1);
        assert_eq!(result.changes[0].status_letter(), 'R');
        assert_eq!(result.changes[0].similarity_percent(), Some(79)); // git prints R079
        assert!(matches!(&result.changes[0], Change::Renamed { old_path, .. } if old_path == b"src/a.rs"));
    }

    #[test]
    fn empty_files_pair_only_when_rename_empty() {
        let dels = [side(b"a/empty", b"e69de29", b"")];
        let adds = [side(b"b/empty", b"e69de29", b"")];
        let on = detect_renames(&dels, &adds, &[], &RenameOptions::default());
        assert_eq!(on.changes[0].status_letter(), 'R');
        let off = RenameOptions {
            rename_empty: false,
            ..RenameOptions::default()
        };
        let off = detect_renames(&dels, &adds, &[], &off);
        let letters: Vec<char> = off.changes.iter().map(Change::status_letter).collect();
        assert_eq!(letters, vec!['D', 'A']);
    }

    #[test]
    fn symlink_and_file_with_same_blob_do_not_pair() {
        let dels = [FileSide {
            mode: 0o120000,
            ..side(b"link", b"abc", b"target")
        }];
        let adds = [side(b"file", b"abc", b"target")];
        let result = detect_renames(&dels, &adds, &[], &RenameOptions::default());
        let letters: Vec<char> = result.changes.iter().map(Change::status_letter).collect();
        assert_eq!(letters, vec!['A', 'D']);
    }

    #[test]
    fn limit_exceeded_reports_needed_value() {
        let texts: Vec<Vec<u8>> = (0..3).map(|i| format!("x\ny\nz{i}\n").into_bytes()).collect();
        let paths: Vec<Vec<u8>> = (0..3).map(|i| format!("d/s{i}").into_bytes()).collect();
        let dsts: Vec<Vec<u8>> = (0..2).map(|i| format!("e/t{i}").into_bytes()).collect();
        let dels: Vec<FileSide<'_>> = (0..3).map(|i| side(&paths[i], b"o", &texts[i])).collect();
        let adds: Vec<FileSide<'_>> = (0..2).map(|i| side(&dsts[i], b"n", &texts[i])).collect();
        let options = RenameOptions {
            rename_limit: 2,
            ..RenameOptions::default()
        };
        let result = detect_renames(&dels, &adds, &[], &options);
        assert_eq!(result.needed_rename_limit, Some(3));
    }
}
