//! Turning two buffers into records (lines), giving equal lines a shared
//! class number, and deciding which lines the Myers search may skip.
//!
//! This mirrors what git's xdiff does before the O(ND) search: lines are
//! split after each `\n` (the last one may lack it), identical byte strings
//! share a class, the common head and tail are cut off, and inside the rest
//! lines without any counterpart on the other side (and some lines with a
//! great many counterparts) are marked changed right away and hidden from
//! the search.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// git never lets the "too many matches" limit grow past this.
const MAX_EQ_LIMIT: usize = 1024;
/// How far around a many-matches line the run scan looks, each way.
const SIMSCAN_WINDOW: isize = 100;
/// A many-matches line is dropped when fewer than 1 in this many of the
/// lines of its surrounding run are themselves many-matches lines.
const KPDIS_RUN: isize = 4;

/// Byte ranges of the lines of `data`: each line ends just after its `\n`,
/// except a final line without one. An empty buffer has no lines.
pub(crate) fn split_lines(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(data.len() / 32 + 1);
    let mut start = 0;
    while start < data.len() {
        let end = match data[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start + p + 1,
            None => data.len(),
        };
        out.push((start, end));
        start = end;
    }
    out
}

/// git's integer "square root": the smallest power of two whose square
/// is above `n` (1 for 0). Used for both the many-matches limit and the
/// search cost limit, so it must be this exact approximation.
pub(crate) fn bogosqrt(mut n: usize) -> usize {
    let mut i = 1;
    while n > 0 {
        i <<= 1;
        n >>= 2;
    }
    i
}

/// FNV-1a, enough to bucket lines; equality is decided on the bytes, so
/// the choice of hash cannot change any result.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// One side of the comparison, after preparation.
pub(crate) struct Side {
    /// Class of each line: equal lines (byte for byte, newline included)
    /// have equal classes.
    pub class: Vec<u32>,
    /// Changed-line marks with one guard slot before and after, so that
    /// `changed[i + 1]` is line `i`, and lines -1 and `n` read as unchanged.
    pub changed: Vec<bool>,
    /// Original line numbers of the lines the search works on.
    pub index: Vec<usize>,
    /// Classes of those lines, parallel to `index`.
    pub search_class: Vec<u32>,
}

/// Line contents to class numbers, with how often each class occurs in
/// the old and in the new file.
struct Classes<'a> {
    map: HashMap<&'a [u8], u32, BuildHasherDefault<Fnv>>,
    count_old: Vec<usize>,
    count_new: Vec<usize>,
}

impl<'a> Classes<'a> {
    fn classify(&mut self, data: &'a [u8], lines: &[(usize, usize)], in_old: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(lines.len());
        for &(s, e) in lines {
            let next = self.count_old.len() as u32;
            let c = *self.map.entry(&data[s..e]).or_insert(next);
            if c == next {
                self.count_old.push(0);
                self.count_new.push(0);
            }
            if in_old {
                self.count_old[c as usize] += 1;
            } else {
                self.count_new[c as usize] += 1;
            }
            out.push(c);
        }
        out
    }
}

/// Both sides, ready for the search.
pub(crate) struct Prepared {
    pub old: Side,
    pub new: Side,
}

/// Classify the lines of both buffers, trim the common ends and drop the
/// lines the search need not see, exactly as git's xdl_prepare_env does
/// for the Myers algorithm.
pub(crate) fn prepare(old: &[u8], old_lines: &[(usize, usize)], new: &[u8], new_lines: &[(usize, usize)]) -> Prepared {
    let mut classes = Classes {
        map: HashMap::with_capacity_and_hasher(old_lines.len() + new_lines.len(), Default::default()),
        count_old: Vec::new(),
        count_new: Vec::new(),
    };
    let class_old = classes.classify(old, old_lines, true);
    let class_new = classes.classify(new, new_lines, false);
    let Classes { count_old, count_new, .. } = classes;

    let n1 = class_old.len();
    let n2 = class_new.len();

    // Common head and tail: these lines stay unchanged and the search
    // never looks at them.
    let limit = n1.min(n2);
    let mut head = 0;
    while head < limit && class_old[head] == class_new[head] {
        head += 1;
    }
    let mut tail = 0;
    while tail < limit - head && class_old[n1 - 1 - tail] == class_new[n2 - 1 - tail] {
        tail += 1;
    }

    let old_side = cleanup(class_old, head, n1 - tail, &count_new);
    let new_side = cleanup(class_new, head, n2 - tail, &count_old);
    Prepared {
        old: old_side,
        new: new_side,
    }
}

/// Mark of a line for the discard pass: what its counterpart count says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dis {
    /// No equal line on the other side.
    NoMatch,
    /// A reasonable number of equal lines on the other side.
    Keep,
    /// So many equal lines on the other side that it may be dropped.
    Many,
}

/// Build one side: lines in `start..end` (the part left after trimming)
/// either go to the search or are marked changed outright.
/// `other_count[class]` is how often the class occurs on the other side.
fn cleanup(class: Vec<u32>, start: usize, end: usize, other_count: &[usize]) -> Side {
    let n = class.len();
    let mut changed = vec![false; n + 2];
    let limit = bogosqrt(n).min(MAX_EQ_LIMIT);

    let dis: Vec<Dis> = class[start..end]
        .iter()
        .map(|&c| {
            let nm = other_count[c as usize];
            if nm == 0 {
                Dis::NoMatch
            } else if nm >= limit {
                Dis::Many
            } else {
                Dis::Keep
            }
        })
        .collect();

    let mut index = Vec::with_capacity(end - start);
    let mut search_class = Vec::with_capacity(end - start);
    for (k, &d) in dis.iter().enumerate() {
        let keep = match d {
            Dis::Keep => true,
            Dis::Many => !drop_many_match(&dis, k as isize),
            Dis::NoMatch => false,
        };
        let line = start + k;
        if keep {
            index.push(line);
            search_class.push(class[line]);
        } else {
            changed[line + 1] = true;
        }
    }
    Side {
        class,
        changed,
        index,
        search_class,
    }
}

/// Should the many-matches line at `i` be dropped? Only when it sits in a
/// run of lines that are all unmatched or many-matches, with unmatched
/// lines on both sides of it, and the many-matches lines are a small part
/// of that run (git's xdl_clean_mmatch, window and all).
fn drop_many_match(dis: &[Dis], i: isize) -> bool {
    let mut s: isize = 0;
    let mut e: isize = dis.len() as isize - 1;
    if i - s > SIMSCAN_WINDOW {
        s = i - SIMSCAN_WINDOW;
    }
    if e - i > SIMSCAN_WINDOW {
        e = i + SIMSCAN_WINDOW;
    }

    // Counts of unmatched and of many-matches lines in the run; the line
    // itself counts as one many-matches line.
    let (mut nomatch_before, mut many_before) = (0isize, 1isize);
    let mut r = 1;
    while i - r >= s {
        match dis[(i - r) as usize] {
            Dis::NoMatch => nomatch_before += 1,
            Dis::Many => many_before += 1,
            Dis::Keep => break,
        }
        r += 1;
    }
    if nomatch_before == 0 {
        return false;
    }
    let (mut nomatch_after, mut many_after) = (0isize, 1isize);
    let mut r = 1;
    while i + r <= e {
        match dis[(i + r) as usize] {
            Dis::NoMatch => nomatch_after += 1,
            Dis::Many => many_after += 1,
            Dis::Keep => break,
        }
        r += 1;
    }
    if nomatch_after == 0 {
        return false;
    }
    let nomatch = nomatch_before + nomatch_after;
    let many = many_before + many_after;
    many * KPDIS_RUN < many + nomatch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_like_xdiff() {
        assert_eq!(split_lines(b""), vec![]);
        assert_eq!(split_lines(b"a"), vec![(0, 1)]);
        assert_eq!(split_lines(b"a\n"), vec![(0, 2)]);
        assert_eq!(split_lines(b"a\n\nb"), vec![(0, 2), (2, 3), (3, 4)]);
    }

    #[test]
    fn bogosqrt_matches_git() {
        assert_eq!(bogosqrt(0), 1);
        assert_eq!(bogosqrt(1), 2);
        assert_eq!(bogosqrt(3), 2);
        assert_eq!(bogosqrt(4), 4);
        assert_eq!(bogosqrt(15), 4);
        assert_eq!(bogosqrt(16), 8);
    }
}
