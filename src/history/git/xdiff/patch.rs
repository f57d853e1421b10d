//! One file's whole patch, headers included, as `git show --full-index`
//! and `git diff --full-index` print it between two trees.

use super::emit::{push_num, unified_hunks};
use super::prepare::Lines;
use super::quote::{quote_path, quote_prefixed};
use super::{diff_split, is_binary_blob, numstat_counts};

/// The file-type bits of a git mode.
const S_IFMT: u32 = 0o170000;
/// The file type of a gitlink (submodule commit) entry.
const S_IFGITLINK: u32 = 0o160000;

/// One side (old or new) of a file pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSide<'a> {
    /// Path in the tree, raw bytes (need not be UTF-8).
    pub path: &'a [u8],
    /// Git mode, e.g. `0o100644`, `0o100755`, `0o120000` (symlink) or
    /// `0o160000` (gitlink).
    pub mode: u32,
    /// Object id in hex (40 digits for SHA-1).
    pub oid: &'a str,
    /// Blob content (a symlink's target). Ignored for gitlinks, whose
    /// content git makes up as `Subproject commit <oid>\n`.
    pub data: &'a [u8],
}

/// A file pair of a tree diff: `old` is `None` for an added file, `new`
/// is `None` for a deleted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilePatch<'a> {
    /// The file before the change.
    pub old: Option<FileSide<'a>>,
    /// The file after the change.
    pub new: Option<FileSide<'a>>,
    /// For a rename (or copy) found by git's rename detection, its
    /// similarity percent as git prints it (`similarity index N%`).
    pub similarity: Option<u32>,
    /// With `similarity`, says the pair is a copy (`copy from`/`copy to`)
    /// rather than a rename.
    pub copied: bool,
}

/// The content git diffs for a gitlink: one line naming the commit.
pub fn gitlink_blob(oid: &str) -> Vec<u8> {
    format!("Subproject commit {oid}\n").into_bytes()
}

/// Content that the diff sees for one side (empty when absent).
fn side_content<'a>(side: Option<&FileSide<'a>>) -> std::borrow::Cow<'a, [u8]> {
    match side {
        None => std::borrow::Cow::Borrowed(&[]),
        Some(s) if s.mode & S_IFMT == S_IFGITLINK => std::borrow::Cow::Owned(gitlink_blob(s.oid)),
        Some(s) => std::borrow::Cow::Borrowed(s.data),
    }
}

/// Write the patch of one file pair to `out` exactly as
/// `git show --full-index --format= <commit>` prints it (default options:
/// no color, `a/`/`b/` prefixes, 3 lines of context, Myers with the
/// indent heuristic, core.quotePath on, no textconv or diff attributes).
///
/// Covers `diff --git`, new/deleted/old/new mode lines, similarity and
/// rename/copy lines, the `index` line (only when the object ids
/// differ; the mode is appended when both modes are equal), `---`/`+++`
/// with `/dev/null`, binary files, and a change between file types
/// (e.g. file to symlink), which git shows as a deletion followed by an
/// addition. Like git, writes nothing at all for a pair with nothing to
/// show (same content, same mode, no rename), and nothing for a pair
/// with neither side.
///
/// Not reproduced: `.gitattributes` (diff drivers, textconv, `binary`,
/// custom funcname patterns), `--binary` patches, break detection
/// (`dissimilarity index`), abbreviated ids and colour.
///
/// Returns the pair's counts as `git log --numstat` prints them, what
/// [`numstat_counts`] gives for the sides' contents (an absent side
/// empty): `None` when git calls either side binary. They come from the
/// diff the patch shows, computed once, except for a change between file
/// types: git shows it as a deletion and an addition but counts it as one
/// change, so that pair is diffed once more for the counts.
pub fn write_file_patch(p: &FilePatch, out: &mut Vec<u8>) -> Option<(u64, u64)> {
    match (p.old.as_ref(), p.new.as_ref()) {
        (None, None) => Some((0, 0)),
        (Some(o), Some(n)) if (o.mode ^ n.mode) & S_IFMT != 0 => {
            write_pair(p, Some(o), None, out);
            write_pair(p, None, Some(n), out);
            numstat_counts(&side_content(Some(o)), &side_content(Some(n)))
        }
        (o, n) => write_pair(p, o, n, out),
    }
}

/// A mode in octal, at least six digits (`format!("{mode:06o}")` without
/// the allocation).
fn push_mode(out: &mut Vec<u8>, mode: u32) {
    let digits = (u32::BITS - mode.leading_zeros()).div_ceil(3).max(6);
    for k in (0..digits).rev() {
        out.push(b'0' + ((mode >> (3 * k)) & 7) as u8);
    }
}

/// One `diff --git` section for the sides `one` and `two` of the pair
/// `p` (for a file-type change, one of the two halves); returns the
/// counts of the diff it shows (`None` for binary).
fn write_pair(p: &FilePatch, one: Option<&FileSide>, two: Option<&FileSide>, out: &mut Vec<u8>) -> Option<(u64, u64)> {
    // The pair's own names, which the rename lines use whatever half of
    // a split pair this is.
    let pair_old = p.old.as_ref().or(p.new.as_ref()).map_or(&[][..], |s| s.path);
    let pair_new = p.new.as_ref().or(p.old.as_ref()).map_or(&[][..], |s| s.path);

    // An absent side borrows the other side's name, as git does.
    let name_a = one.or(two).map_or(&[][..], |s| s.path);
    let name_b = two.map_or(name_a, |s| s.path);
    let a_one = quote_prefixed(b"a/", name_a.strip_prefix(b"/").unwrap_or(name_a));
    let b_two = quote_prefixed(b"b/", name_b.strip_prefix(b"/").unwrap_or(name_b));
    let lbl_a: &[u8] = if one.is_some() { &a_one } else { b"/dev/null" };
    let lbl_b: &[u8] = if two.is_some() { &b_two } else { b"/dev/null" };

    // The header goes to `out` as it is made, and is taken back should
    // there be nothing to show.
    let start = out.len();
    out.reserve(2 * (a_one.len() + b_two.len()) + 160);
    out.extend_from_slice(b"diff --git ");
    out.extend_from_slice(&a_one);
    out.push(b' ');
    out.extend_from_slice(&b_two);
    out.push(b'\n');

    let mode_one = one.map_or(0, |s| s.mode);
    let mode_two = two.map_or(0, |s| s.mode);
    let mut must_show_header = true;
    if one.is_none() {
        out.extend_from_slice(b"new file mode ");
        push_mode(out, mode_two);
        out.push(b'\n');
    } else if two.is_none() {
        out.extend_from_slice(b"deleted file mode ");
        push_mode(out, mode_one);
        out.push(b'\n');
    } else if mode_one != mode_two {
        out.extend_from_slice(b"old mode ");
        push_mode(out, mode_one);
        out.extend_from_slice(b"\nnew mode ");
        push_mode(out, mode_two);
        out.push(b'\n');
    } else {
        must_show_header = p.similarity.is_some();
    }

    // What git calls the "metainfo": rename lines and the index line.
    if let Some(sim) = p.similarity {
        let verb: &[u8] = if p.copied { b"copy" } else { b"rename" };
        out.extend_from_slice(b"similarity index ");
        push_num(out, sim as usize);
        out.extend_from_slice(b"%\n");
        out.extend_from_slice(verb);
        out.extend_from_slice(b" from ");
        out.extend_from_slice(&quote_path(pair_old));
        out.push(b'\n');
        out.extend_from_slice(verb);
        out.extend_from_slice(b" to ");
        out.extend_from_slice(&quote_path(pair_new));
        out.push(b'\n');
    }
    // An absent side's id is zeros, as long as the other side's.
    let oid_len = one.or(two).map_or(40, |s| s.oid.len());
    let zeros = |s: &FileSide| s.oid.len() == oid_len && s.oid.bytes().all(|b| b == b'0');
    let same_oid = match (one, two) {
        (Some(x), Some(y)) => x.oid == y.oid,
        (Some(s), None) | (None, Some(s)) => zeros(s),
        (None, None) => true,
    };
    if !same_oid {
        let push_oid = |out: &mut Vec<u8>, side: Option<&FileSide>| match side {
            Some(s) => out.extend_from_slice(s.oid.as_bytes()),
            None => out.resize(out.len() + oid_len, b'0'),
        };
        out.extend_from_slice(b"index ");
        push_oid(out, one);
        out.extend_from_slice(b"..");
        push_oid(out, two);
        if mode_one == mode_two {
            out.push(b' ');
            push_mode(out, mode_one);
        }
        out.push(b'\n');
    }
    let header_only = |out: &mut Vec<u8>| {
        if !must_show_header {
            out.truncate(start);
        }
    };

    let a = side_content(one);
    let b = side_content(two);

    if is_binary_blob(&a) || is_binary_blob(&b) {
        if a == b {
            // Same bytes (a pure rename, say): only the header, if any.
            header_only(out);
            return None;
        }
        out.extend_from_slice(b"Binary files ");
        out.extend_from_slice(lbl_a);
        out.extend_from_slice(b" and ");
        out.extend_from_slice(lbl_b);
        out.extend_from_slice(b" differ\n");
        return None;
    }

    if a == b {
        // Nothing changed (a pure rename, a mode change): no need to diff.
        header_only(out);
        return Some((0, 0));
    }
    let lines = Lines::split(&a, &b);
    let diff = diff_split(&a, &b, &lines);
    let counts = Some((diff.additions(), diff.deletions()));
    if diff.changes().is_empty() {
        header_only(out);
        return counts;
    }
    push_label(out, b"--- ", lbl_a);
    push_label(out, b"+++ ", lbl_b);
    unified_hunks(&a, &lines.old, &b, &lines.new, &diff, out);
    counts
}

/// A `---`/`+++` line; git ends it with a tab when the name has a space
/// (so that tools can tell where the name ends).
fn push_label(out: &mut Vec<u8>, lead: &[u8], label: &[u8]) {
    out.extend_from_slice(lead);
    out.extend_from_slice(label);
    if label.contains(&b' ') {
        out.push(b'\t');
    }
    out.push(b'\n');
}
