//! One file's whole patch, headers included, as `git show --full-index`
//! and `git diff --full-index` print it between two trees.

use super::emit::unified_hunks;
use super::quote::{quote_path, quote_prefixed};
use super::{diff_lines, is_binary_blob};

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
pub fn write_file_patch(p: &FilePatch, out: &mut Vec<u8>) {
    match (p.old.as_ref(), p.new.as_ref()) {
        (None, None) => {}
        (Some(o), Some(n)) if (o.mode ^ n.mode) & S_IFMT != 0 => {
            write_pair(p, Some(o), None, out);
            write_pair(p, None, Some(n), out);
        }
        (o, n) => write_pair(p, o, n, out),
    }
}

/// The zero object id, as long as the id of the other side.
fn null_oid(len: usize) -> String {
    "0".repeat(len)
}

fn push_mode(out: &mut Vec<u8>, mode: u32) {
    out.extend_from_slice(format!("{mode:06o}").as_bytes());
}

/// One `diff --git` section for the sides `one` and `two` of the pair
/// `p` (for a file-type change, one of the two halves).
fn write_pair(p: &FilePatch, one: Option<&FileSide>, two: Option<&FileSide>, out: &mut Vec<u8>) {
    // The pair's own names, which the rename lines use whatever half of
    // a split pair this is.
    let pair_old = p.old.as_ref().or(p.new.as_ref()).map_or(&[][..], |s| s.path);
    let pair_new = p.new.as_ref().or(p.old.as_ref()).map_or(&[][..], |s| s.path);

    // An absent side borrows the other side's name, as git does.
    let name_a = one.or(two).map_or(&[][..], |s| s.path);
    let name_b = two.map_or(name_a, |s| s.path);
    let strip = |n: &'_ [u8]| -> Vec<u8> { n.strip_prefix(b"/").unwrap_or(n).to_vec() };
    let a_one = quote_prefixed(b"a/", &strip(name_a));
    let b_two = quote_prefixed(b"b/", &strip(name_b));
    let lbl_a: &[u8] = if one.is_some() { &a_one } else { b"/dev/null" };
    let lbl_b: &[u8] = if two.is_some() { &b_two } else { b"/dev/null" };

    let mut header = Vec::new();
    header.extend_from_slice(b"diff --git ");
    header.extend_from_slice(&a_one);
    header.push(b' ');
    header.extend_from_slice(&b_two);
    header.push(b'\n');

    // What git calls the "metainfo": rename lines and the index line.
    let mut meta = Vec::new();
    let mut must_show_header = false;
    if let Some(sim) = p.similarity {
        must_show_header = true;
        let verb: &[u8] = if p.copied { b"copy" } else { b"rename" };
        meta.extend_from_slice(format!("similarity index {sim}%\n").as_bytes());
        meta.extend_from_slice(verb);
        meta.extend_from_slice(b" from ");
        meta.extend_from_slice(&quote_path(pair_old));
        meta.push(b'\n');
        meta.extend_from_slice(verb);
        meta.extend_from_slice(b" to ");
        meta.extend_from_slice(&quote_path(pair_new));
        meta.push(b'\n');
    }
    let oid_len = one.or(two).map_or(40, |s| s.oid.len());
    let oid_one = one.map_or_else(|| null_oid(oid_len), |s| s.oid.to_string());
    let oid_two = two.map_or_else(|| null_oid(oid_len), |s| s.oid.to_string());
    let mode_one = one.map_or(0, |s| s.mode);
    let mode_two = two.map_or(0, |s| s.mode);
    if oid_one != oid_two {
        meta.extend_from_slice(format!("index {oid_one}..{oid_two}").as_bytes());
        if mode_one == mode_two {
            meta.push(b' ');
            push_mode(&mut meta, mode_one);
        }
        meta.push(b'\n');
    }

    if one.is_none() {
        header.extend_from_slice(b"new file mode ");
        push_mode(&mut header, mode_two);
        header.push(b'\n');
        must_show_header = true;
    } else if two.is_none() {
        header.extend_from_slice(b"deleted file mode ");
        push_mode(&mut header, mode_one);
        header.push(b'\n');
        must_show_header = true;
    } else if mode_one != mode_two {
        header.extend_from_slice(b"old mode ");
        push_mode(&mut header, mode_one);
        header.extend_from_slice(b"\nnew mode ");
        push_mode(&mut header, mode_two);
        header.push(b'\n');
        must_show_header = true;
    }
    header.extend_from_slice(&meta);

    let a = side_content(one);
    let b = side_content(two);

    if is_binary_blob(&a) || is_binary_blob(&b) {
        if a == b {
            // Same bytes (a pure rename, say): only the header, if any.
            if must_show_header {
                out.extend_from_slice(&header);
            }
            return;
        }
        out.extend_from_slice(&header);
        out.extend_from_slice(b"Binary files ");
        out.extend_from_slice(lbl_a);
        out.extend_from_slice(b" and ");
        out.extend_from_slice(lbl_b);
        out.extend_from_slice(b" differ\n");
        return;
    }

    let diff = diff_lines(&a, &b);
    if diff.changes().is_empty() {
        if must_show_header {
            out.extend_from_slice(&header);
        }
        return;
    }
    out.extend_from_slice(&header);
    push_label(out, b"--- ", lbl_a);
    push_label(out, b"+++ ", lbl_b);
    unified_hunks(&a, &b, &diff, out);
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
