//! Turning two buffers into records (lines), giving equal lines a shared
//! class number, and deciding which lines the Myers search may skip.
//!
//! This mirrors what git's xdiff does before the O(ND) search: lines are
//! split after each `\n` (the last one may lack it), identical byte strings
//! share a class, the common head and tail are cut off, and inside the rest
//! lines without any counterpart on the other side (and some lines with a
//! great many counterparts) are marked changed right away and hidden from
//! the search.

/// git never lets the "too many matches" limit grow past this.
const MAX_EQ_LIMIT: usize = 1024;
/// How far around a many-matches line the run scan looks, each way.
const SIMSCAN_WINDOW: isize = 100;
/// A many-matches line is dropped when fewer than 1 in this many of the
/// lines of its surrounding run are themselves many-matches lines.
const KPDIS_RUN: isize = 4;

/// Byte ranges of the lines of `data`: each line ends just after its `\n`,
/// except a final line without one. An empty buffer has no lines.
fn split_lines(data: &[u8]) -> Vec<(usize, usize)> {
    // Source lines average a few dozen bytes; reserving for that avoids most regrowth.
    let mut out = Vec::with_capacity(data.len() / 32 + 1);
    push_lines(data, 0, data.len(), &mut out);
    out
}

/// Appends the lines of `data[start..end]` (`start` being where a line
/// starts) to `out`, as [`split_lines`] splits them.
fn push_lines(data: &[u8], start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let mut line = start;
    for newline in memchr::memchr_iter(b'\n', &data[start..end]) {
        out.push((line, start + newline + 1));
        line = start + newline + 1;
    }
    if line < end {
        out.push((line, end));
    }
}

/// The lines of two buffers, and how many leading and trailing lines they
/// have in common byte for byte. Those are found on the bytes, so the new
/// buffer's share of them is neither split nor hashed: its lines there are
/// the old buffer's, moved.
pub(crate) struct Lines {
    /// The old buffer's lines, as [`split_lines`] splits them.
    pub old: Vec<(usize, usize)>,
    /// The new buffer's lines, the same as [`split_lines`] would give.
    pub new: Vec<(usize, usize)>,
    /// Leading lines equal in both buffers.
    head: usize,
    /// Trailing lines equal in both buffers, none of them among `head`.
    tail: usize,
}

impl Lines {
    /// Splits both buffers into lines.
    pub(crate) fn split(old: &[u8], new: &[u8]) -> Lines {
        let old_lines = split_lines(old);
        // Leading lines: those wholly within the common prefix of the
        // bytes that end in a newline, or, the last, where both buffers end.
        let prefix = common_prefix(old, new);
        let head = old_lines
            .iter()
            .take_while(|&&(_, e)| e <= prefix && (old[e - 1] == b'\n' || e == new.len()))
            .count();
        let start = if head > 0 { old_lines[head - 1].1 } else { 0 };
        // Trailing lines, after the head: those wholly within the common
        // suffix of the bytes whose twin in the new buffer starts a line
        // there too (after the head, or after a newline).
        let suffix = common_suffix(&old[start..], &new[start..]);
        let new_start = |s: usize| new.len() - (old.len() - s);
        let tail = old_lines[head..]
            .iter()
            .rev()
            .take_while(|&&(s, _)| old.len() - s <= suffix && (new_start(s) == start || new[new_start(s) - 1] == b'\n'))
            .count();
        let middle_end = old_lines.len() - tail;
        let new_end = old_lines.get(middle_end).map_or(new.len(), |&(s, _)| new_start(s));
        let mut new_lines = Vec::with_capacity(head + (new_end - start) / 32 + 1 + tail);
        new_lines.extend_from_slice(&old_lines[..head]);
        push_lines(new, start, new_end, &mut new_lines);
        new_lines.extend(old_lines[middle_end..].iter().map(|&(s, e)| (new_start(s), new_start(e))));
        Lines {
            old: old_lines,
            new: new_lines,
            head,
            tail,
        }
    }
}

/// Comparison block sizes for the common prefix and suffix: long blocks
/// (one memcmp each) until one differs, then shorter ones within it.
const BLOCKS: [usize; 3] = [1024, 32, 1];

/// Length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    for block in BLOCKS {
        while i + block <= n && a[i..i + block] == b[i..i + block] {
            i += block;
        }
    }
    i
}

/// Length of the longest common suffix of `a` and `b`.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    for block in BLOCKS {
        while i + block <= n && a[la - i - block..la - i] == b[lb - i - block..lb - i] {
            i += block;
        }
    }
    i
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

/// A hash of a line, eight bytes at a time (git hashes a byte at a time): only
/// buckets lines, since equality is decided on the bytes, so the choice of
/// hash cannot change any result.
fn line_hash(line: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut h = line.len() as u64;
    let mut rest = line;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        h = mix(h, u64::from_le_bytes(*word));
        rest = tail;
    }
    if let Some(last) = line.last_chunk::<8>().filter(|_| !rest.is_empty()) {
        // The last eight bytes, overlapping words already mixed in: a word
        // load rather than a short copy, which costs a call to memcpy.
        h = mix(h, u64::from_le_bytes(*last));
    } else if !rest.is_empty() {
        let mut word = 0u64;
        for (k, &b) in rest.iter().enumerate() {
            word |= u64::from(b) << (8 * k);
        }
        h = mix(h, word);
    }
    // The table indexes by the low bits, which a multiply leaves depending on the
    // low input bits only: fold the high half in.
    h ^ (h >> 32)
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
/// the old and in the new file: git's xdl_classify_record, an open-addressing
/// table over the lines' hashes whose bytes are compared only when the hashes
/// are equal.
struct Classes<'a> {
    /// Class + 1 per slot, 0 for an empty slot; a power of two long, at least
    /// twice the number of lines, so probe runs stay short.
    slots: Vec<u32>,
    /// Per class: the hash and the bytes of its first line (together, so
    /// that a probe touches one place).
    first: Vec<(u64, &'a [u8])>,
    count_old: Vec<usize>,
    count_new: Vec<usize>,
}

impl<'a> Classes<'a> {
    fn new(lines: usize) -> Classes<'a> {
        Classes {
            slots: vec![0; (2 * lines).next_power_of_two().max(16)],
            first: Vec::with_capacity(lines),
            count_old: Vec::with_capacity(lines),
            count_new: Vec::with_capacity(lines),
        }
    }

    /// The class of `line`, a new one if no earlier line had its bytes.
    fn class_of(&mut self, line: &'a [u8]) -> u32 {
        let hash = line_hash(line);
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                let class = self.first.len() as u32;
                self.slots[at] = class + 1;
                self.first.push((hash, line));
                self.count_old.push(0);
                self.count_new.push(0);
                return class;
            }
            let class = slot - 1;
            let (first_hash, first_line) = self.first[class as usize];
            if first_hash == hash && first_line == line {
                return class;
            }
            at = (at + 1) & mask;
        }
    }

    /// Appends the classes of `lines` of `data` to `out`, counting them
    /// for the old or the new buffer.
    fn classify(&mut self, data: &'a [u8], lines: &[(usize, usize)], in_old: bool, out: &mut Vec<u32>) {
        for &(s, e) in lines {
            let c = self.class_of(&data[s..e]);
            if in_old {
                self.count_old[c as usize] += 1;
            } else {
                self.count_new[c as usize] += 1;
            }
            out.push(c);
        }
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
pub(crate) fn prepare(old: &[u8], new: &[u8], lines: &Lines) -> Prepared {
    let (n1, n2) = (lines.old.len(), lines.new.len());
    let (head, tail) = (lines.head, lines.tail);
    let mut classes = Classes::new(n1 + n2 - head - tail);
    let mut class_old = Vec::with_capacity(n1);
    classes.classify(old, &lines.old, true, &mut class_old);
    // The new buffer's lines shared with the old one have the classes of
    // their twins: only the lines between are looked up.
    let mut class_new = Vec::with_capacity(n2);
    class_new.extend_from_slice(&class_old[..head]);
    classes.classify(new, &lines.new[head..n2 - tail], false, &mut class_new);
    class_new.extend_from_slice(&class_old[n1 - tail..]);
    for &c in class_old[..head].iter().chain(&class_old[n1 - tail..]) {
        classes.count_new[c as usize] += 1;
    }
    let Classes { count_old, count_new, .. } = classes;

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

    /// `Lines::split` splits the new buffer as `split_lines` does, and its
    /// shared leading and trailing lines are byte for byte their twins.
    #[test]
    fn shared_lines_are_twins() {
        let mut rng = crate::history::git::test_support::Rng::new(7);
        for _ in 0..20_000 {
            let buffer = |rng: &mut crate::history::git::test_support::Rng| -> Vec<u8> {
                (0..rng.below(12)).map(|_| *rng.pick(b"ab\n\n")).collect()
            };
            let old = buffer(&mut rng);
            let new = if rng.chance(1, 2) {
                // Mostly the same: an edit somewhere in the old buffer.
                let mut new = old.clone();
                let at = rng.below(new.len() + 1);
                let cut = rng.below(new.len() - at + 1).min(3);
                new.splice(at..at + cut, buffer(&mut rng).into_iter().take(3));
                new
            } else {
                buffer(&mut rng)
            };
            let lines = Lines::split(&old, &new);
            assert_eq!(lines.old, split_lines(&old));
            assert_eq!(lines.new, split_lines(&new), "{old:?} {new:?}");
            assert!(lines.head + lines.tail <= lines.old.len().min(lines.new.len()));
            let text = |data: &[u8], (s, e): (usize, usize)| data[s..e].to_vec();
            for i in 0..lines.head {
                assert_eq!(text(&old, lines.old[i]), text(&new, lines.new[i]));
            }
            for k in 1..=lines.tail {
                let (i, j) = (lines.old.len() - k, lines.new.len() - k);
                assert_eq!(text(&old, lines.old[i]), text(&new, lines.new[j]), "{old:?} {new:?}");
            }
        }
    }

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
