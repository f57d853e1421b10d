//! A reimplementation of git's line diff (xdiff, as in git 2.47) that
//! gives the same results byte for byte: the same changed lines as
//! `git log --numstat` counts and the same patches as
//! `git show --full-index` prints, under git's defaults (Myers algorithm
//! with git's speed heuristics, indent heuristic on, three lines of
//! context, no whitespace options, core.quotePath on).
//!
//! Why exactness needs more than "a Myers diff": git does not compute a
//! minimal diff. It first hides from the search lines that have no match
//! on the other side and some lines with very many matches, it cuts the
//! search short on big inputs, and it then slides groups of changes up
//! and down by its own rules. Every one of those steps can move a `-` or
//! `+` line, so each is reproduced here.
//!
//! [`write_file_patch`] writes one file pair's patch, headers included,
//! and returns its numstat counts from the same diff; [`diff_lines`] is
//! the line diff alone. The tests (`against_git`) compare both with the
//! installed git.

#[cfg(test)]
mod against_git;
mod compact;
mod emit;
mod myers;
mod patch;
mod prepare;
mod quote;

pub use patch::{FilePatch, FileSide, write_file_patch};

/// git looks for a NUL byte in this many leading bytes to call a buffer
/// binary.
const FIRST_FEW_BYTES: usize = 8000;

/// Blobs larger than this are binary to git's diff without looking at
/// them (core.bigFileThreshold's default, 512 MiB).
pub const BIG_FILE_THRESHOLD: usize = 512 * 1024 * 1024;

/// git's buffer_is_binary: true when a NUL byte occurs within the first
/// 8000 bytes.
pub fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(FIRST_FEW_BYTES)].contains(&0)
}

/// Binary as git's diff decides it for a blob without diff attributes:
/// [`is_binary`], or larger than [`BIG_FILE_THRESHOLD`].
pub(crate) fn is_binary_blob(data: &[u8]) -> bool {
    data.len() > BIG_FILE_THRESHOLD || is_binary(data)
}

/// One change of the script: `old_len` lines removed from the old file
/// at `old_start` and `new_len` lines added in the new file at
/// `new_start` (0-based line numbers; a start is where the change sits
/// even when its length is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// First removed line in the old file.
    pub old_start: usize,
    /// Number of removed lines.
    pub old_len: usize,
    /// First added line in the new file.
    pub new_start: usize,
    /// Number of added lines.
    pub new_len: usize,
}

/// The result of [`diff_lines`]: the changes in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineDiff {
    changes: Vec<Change>,
    old_lines: usize,
    new_lines: usize,
}

impl LineDiff {
    /// The changes, in file order, never touching each other (an
    /// unchanged line separates any two).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Added lines, as `git log --numstat` counts them.
    pub fn additions(&self) -> u64 {
        self.changes.iter().map(|c| c.new_len as u64).sum()
    }

    /// Removed lines, as `git log --numstat` counts them.
    pub fn deletions(&self) -> u64 {
        self.changes.iter().map(|c| c.old_len as u64).sum()
    }

    /// Number of lines of the old buffer (a last line without newline
    /// counts).
    pub fn old_line_count(&self) -> usize {
        self.old_lines
    }

    /// Number of lines of the new buffer.
    pub fn new_line_count(&self) -> usize {
        self.new_lines
    }
}

/// Diff two buffers line by line exactly as git's xdiff does for
/// `git diff`/`git log -p` with default options. The buffers are taken
/// as they are (no binary check; see [`numstat_counts`]).
pub fn diff_lines(old: &[u8], new: &[u8]) -> LineDiff {
    diff_split(old, new, &prepare::Lines::split(old, new))
}

/// [`diff_lines`] of buffers split into lines already, so that the patch
/// writer splits them once.
fn diff_split(old: &[u8], new: &[u8], lines: &prepare::Lines) -> LineDiff {
    let mut p = prepare::prepare(old, new, lines);
    myers::compare(&mut p.old, &mut p.new);

    {
        let mut f1 = compact::File::new(old, &lines.old, &p.old.class, &mut p.old.changed);
        let mut f2 = compact::File::new(new, &lines.new, &p.new.class, &mut p.new.changed);
        compact::change_compact(&mut f1, &mut f2);
        compact::change_compact(&mut f2, &mut f1);
    }

    LineDiff {
        changes: build_script(&p.old.changed, &p.new.changed),
        old_lines: lines.old.len(),
        new_lines: lines.new.len(),
    }
}

/// Walk both change-mark arrays (each with a guard slot at both ends) in
/// step, unchanged lines pairing up one to one, and collect the runs.
fn build_script(chg1: &[bool], chg2: &[bool]) -> Vec<Change> {
    let n1 = chg1.len() - 2;
    let n2 = chg2.len() - 2;
    let mut out = Vec::new();
    let (mut i1, mut i2) = (0, 0);
    while i1 < n1 || i2 < n2 {
        if chg1[i1 + 1] || chg2[i2 + 1] {
            let (s1, s2) = (i1, i2);
            while chg1[i1 + 1] {
                i1 += 1;
            }
            while chg2[i2 + 1] {
                i2 += 1;
            }
            out.push(Change {
                old_start: s1,
                old_len: i1 - s1,
                new_start: s2,
                new_len: i2 - s2,
            });
        } else {
            i1 += 1;
            i2 += 1;
        }
    }
    out
}

/// Added and removed line counts as `git log --numstat` prints them, or
/// `None` when git treats either side as binary (it prints `-\t-`).
/// An absent side (added or deleted file) is passed as an empty buffer,
/// a gitlink as `patch::gitlink_blob` of its commit id. (git's diffstat uses
/// the same diff as the patch, three lines of context and all, so these
/// are also the `+`/`-` line counts of [`write_file_patch`]'s output, but
/// for a change of file type, which the patch shows as a deletion and an
/// addition; [`write_file_patch`] returns these counts.)
pub fn numstat_counts(old: &[u8], new: &[u8]) -> Option<(u64, u64)> {
    if is_binary_blob(old) || is_binary_blob(new) {
        return None;
    }
    let d = diff_lines(old, new);
    Some((d.additions(), d.deletions()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_changed_line() {
        let (old, new) = (b"a\nb\nc\n", b"a\nB\nc\n");
        let d = diff_lines(old, new);
        assert_eq!((d.additions(), d.deletions()), (1, 1));
        let lines = prepare::Lines::split(old, new);
        let mut out = Vec::new();
        emit::unified_hunks(old, &lines.old, new, &lines.new, &d, &mut out);
        assert_eq!(out, b"@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    }
}
