//! Unified-diff hunks in the exact shape `git diff` prints them (three
//! lines of context, git's hunk merging, its hunk header numbers and its
//! default function-name lookup).

use super::compact::is_git_space;
use super::{Change, LineDiff};

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// Changes whose gap in the old file is at most this many lines share a
/// hunk (twice the context; git's inter-hunk context is 0 by default).
const MAX_COMMON: usize = 2 * CONTEXT;
/// xdiff copies at most this many bytes of the function line.
const FUNC_BUF: usize = 80;
/// xdiff formats the hunk header in a buffer of this size, which may cut
/// the function name short when the line numbers are very long.
const HEADER_BUF: usize = 128;
const NO_NEWLINE: &[u8] = b"\n\\ No newline at end of file\n";

/// Write the hunks of `diff` (which must have been computed from these
/// same `old` and `new` buffers, split into `old_lines` and `new_lines`)
/// to `out`, byte for byte as git prints them after the `---`/`+++`
/// lines: `@@ -a,b +c,d @@ funcname` headers, then ` `, `-` and `+`
/// lines, with `\ No newline at end of file` after a line that lacks its
/// newline. Nothing is written when the diff has no changes.
pub(crate) fn unified_hunks(
    old: &[u8],
    old_lines: &[(usize, usize)],
    new: &[u8],
    new_lines: &[(usize, usize)],
    diff: &LineDiff,
    out: &mut Vec<u8>,
) {
    debug_assert_eq!((diff.old_line_count(), diff.new_line_count()), (old_lines.len(), new_lines.len()));
    let changes = diff.changes();
    let n1 = old_lines.len();
    let n2 = new_lines.len();
    let old_rec = |i: usize| &old[old_lines[i].0..old_lines[i].1];
    let new_rec = |i: usize| &new[new_lines[i].0..new_lines[i].1];

    // The function line found so far, and where the last search started:
    // each search only covers the lines above its hunk down to the start
    // of the previous search, keeping the previous name when nothing new
    // is found (which amounts to "the nearest one above").
    let mut func: Vec<u8> = Vec::new();
    let mut searched_down_to: isize = -1;

    // Room for all the hunks at once, so that a long patch is not copied
    // as it grows: their lines, each with its prefix byte (the new file's
    // from the first context line to the last, and the removed lines), and
    // per hunk a header and two `\ No newline` markers at most.
    let bytes = |lines: &[(usize, usize)], from: usize, to: usize| {
        if from < to {
            lines[to - 1].1 - lines[from].0 + (to - from)
        } else {
            0
        }
    };
    let mut room = 0;
    let mut k = 0;
    while k < changes.len() {
        let h = Hunk::at(changes, k, n1, n2);
        room += HEADER_BUF + 1 + 2 * NO_NEWLINE.len() + bytes(new_lines, h.s2, h.e2);
        room += changes[k..=h.last]
            .iter()
            .map(|c| bytes(old_lines, c.old_start, c.old_start + c.old_len))
            .sum::<usize>();
        k = h.last + 1;
    }
    out.reserve(room);

    let mut k = 0;
    while k < changes.len() {
        let first = changes[k];
        let Hunk {
            last: last_idx,
            s1,
            e1,
            s2,
            e2,
        } = Hunk::at(changes, k, n1, n2);
        let last = changes[last_idx];
        let new_end = last.new_start + last.new_len;

        let mut l = s1 as isize - 1;
        while l != searched_down_to && l >= 0 && (l as usize) < n1 {
            if let Some(name) = func_name(old_rec(l as usize)) {
                func.clear();
                func.extend_from_slice(name);
                break;
            }
            l -= 1;
        }
        searched_down_to = s1 as isize - 1;

        write_header(out, s1 + 1, e1 - s1, s2 + 1, e2 - s2, &func);

        // Leading context, then each change with the unchanged lines
        // between it and the previous one, then trailing context.
        for i in s2..first.new_start {
            write_rec(out, b' ', new_rec(i));
        }
        let mut prev_new_end = first.new_start;
        for c in &changes[k..=last_idx] {
            for i in prev_new_end..c.new_start {
                write_rec(out, b' ', new_rec(i));
            }
            for i in c.old_start..c.old_start + c.old_len {
                write_rec(out, b'-', old_rec(i));
            }
            for i in c.new_start..c.new_start + c.new_len {
                write_rec(out, b'+', new_rec(i));
            }
            prev_new_end = c.new_start + c.new_len;
        }
        for i in new_end..e2 {
            write_rec(out, b' ', new_rec(i));
        }

        k = last_idx + 1;
    }
}

/// The extent of the hunk that starts with change `k`: its last change
/// and its lines with context, `s1..e1` of the old file and `s2..e2` of
/// the new one (`n1` and `n2` lines long).
struct Hunk {
    last: usize,
    s1: usize,
    e1: usize,
    s2: usize,
    e2: usize,
}

impl Hunk {
    fn at(changes: &[Change], k: usize, n1: usize, n2: usize) -> Hunk {
        let (first, last) = (changes[k], hunk_end(changes, k));
        let old_end = changes[last].old_start + changes[last].old_len;
        let new_end = changes[last].new_start + changes[last].new_len;
        let lctx = CONTEXT.min(n1 - old_end).min(n2 - new_end);
        Hunk {
            last,
            s1: first.old_start.saturating_sub(CONTEXT),
            e1: old_end + lctx,
            s2: first.new_start.saturating_sub(CONTEXT),
            e2: new_end + lctx,
        }
    }
}

/// xdiff's default function-line test: a line starting with an ASCII
/// letter, `_` or `$`. Returns its first 80 bytes less trailing
/// whitespace.
fn func_name(rec: &[u8]) -> Option<&[u8]> {
    let first = *rec.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_' || first == b'$') {
        return None;
    }
    let mut len = rec.len().min(FUNC_BUF);
    while len > 0 && is_git_space(rec[len - 1]) {
        len -= 1;
    }
    Some(&rec[..len])
}

fn write_rec(out: &mut Vec<u8>, prefix: u8, rec: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(rec);
    if rec.last().is_some_and(|&b| b != b'\n') {
        out.extend_from_slice(NO_NEWLINE);
    }
}

/// Format `@@ -s1,c1 +s2,c2 @@ func` as xdiff does (1-based starts; a
/// count of 1 is left out; an empty side shows the line before it), then
/// apply git's cut at the first byte sequence that is not valid UTF-8.
fn write_header(out: &mut Vec<u8>, s1: usize, c1: usize, s2: usize, c2: usize, func: &[u8]) {
    // Written in place, then cut back should it not be valid UTF-8.
    let start = out.len();
    out.extend_from_slice(b"@@ -");
    push_num(out, if c1 != 0 { s1 } else { s1 - 1 });
    if c1 != 1 {
        out.push(b',');
        push_num(out, c1);
    }
    out.extend_from_slice(b" +");
    push_num(out, if c2 != 0 { s2 } else { s2 - 1 });
    if c2 != 1 {
        out.push(b',');
        push_num(out, c2);
    }
    out.extend_from_slice(b" @@");
    if !func.is_empty() {
        out.push(b' ');
        let room = HEADER_BUF.saturating_sub(out.len() - start + 1);
        out.extend_from_slice(&func[..func.len().min(room)]);
    }
    out.push(b'\n');

    let valid = valid_utf8_prefix(&out[start..]);
    if start + valid < out.len() {
        out.truncate(start + valid);
        out.push(b'\n');
    }
}

/// `n` in decimal (`to_string` without the allocation).
pub(crate) fn push_num(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Length of the longest prefix of `s` made of characters git's UTF-8
/// reader accepts (it also refuses surrogates, U+FFFE and U+FFFF, and
/// overlong forms). git cuts hunk header lines there.
pub(crate) fn valid_utf8_prefix(s: &[u8]) -> usize {
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let c0 = rest[0];
        let cont = |k: usize| rest.get(k).is_some_and(|&b| b & 0xc0 == 0x80);
        let len = if c0 < 0x80 {
            1
        } else if c0 & 0xe0 == 0xc0 {
            if !cont(1) || c0 & 0xfe == 0xc0 {
                return i;
            }
            2
        } else if c0 & 0xf0 == 0xe0 {
            if !cont(1)
                || !cont(2)
                || (c0 == 0xe0 && rest[1] & 0xe0 == 0x80)
                || (c0 == 0xed && rest[1] & 0xe0 == 0xa0)
                || (c0 == 0xef && rest[1] == 0xbf && rest[2] & 0xfe == 0xbe)
            {
                return i;
            }
            3
        } else if c0 & 0xf8 == 0xf0 {
            if !cont(1) || !cont(2) || !cont(3) || (c0 == 0xf0 && rest[1] & 0xf0 == 0x80) || (c0 == 0xf4 && rest[1] > 0x8f) || c0 > 0xf4 {
                return i;
            }
            4
        } else {
            return i;
        };
        i += len;
    }
    i
}

/// Index of the last change that shares a hunk with change `k`: git
/// merges a change into the hunk when at most MAX_COMMON unchanged lines
/// separate it from the previous one.
fn hunk_end(changes: &[Change], k: usize) -> usize {
    let mut last = k;
    while last + 1 < changes.len() && changes[last + 1].old_start - (changes[last].old_start + changes[last].old_len) <= MAX_COMMON {
        last += 1;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_counts() {
        let mut out = Vec::new();
        write_header(&mut out, 1, 0, 1, 2, b"");
        assert_eq!(out, b"@@ -0,0 +1,2 @@\n");
        out.clear();
        write_header(&mut out, 5, 1, 5, 1, b"fn x");
        assert_eq!(out, b"@@ -5 +5 @@ fn x\n");
    }

    #[test]
    fn header_cut_at_bad_utf8() {
        let mut out = Vec::new();
        write_header(&mut out, 1, 1, 1, 1, b"caf\xc3\xa9 \xff tail");
        assert_eq!(out, b"@@ -1 +1 @@ caf\xc3\xa9 \n".to_vec());
    }

    #[test]
    fn func_name_rules() {
        assert_eq!(func_name(b"foo() {  \n"), Some(&b"foo() {"[..]));
        assert_eq!(func_name(b" foo\n"), None);
        assert_eq!(func_name(b"$x\n"), Some(&b"$x"[..]));
        assert_eq!(func_name(b"_\n"), Some(&b"_"[..]));
        assert_eq!(func_name(b"1abc\n"), None);
        let long = [b'a'; 100];
        assert_eq!(func_name(&long).map(<[u8]>::len), Some(80));
    }

    #[test]
    fn hunks_merge_within_six_lines() {
        let c = |o: usize| Change {
            old_start: o,
            old_len: 1,
            new_start: o,
            new_len: 1,
        };
        assert_eq!(hunk_end(&[c(0), c(7), c(15)], 0), 1);
        assert_eq!(hunk_end(&[c(0), c(8)], 0), 0);
    }
}
