//! Sliding groups of changed lines into their final place, as git's
//! xdl_change_compact does: merge groups that can be slid into each other,
//! line a group up with a change on the other side when possible, and
//! otherwise pick the position the indent heuristic scores best.

/// Indentation above this is treated as this (keeps the work bounded on
/// data that is not human-written text).
const MAX_INDENT: i32 = 200;
/// Blank-line runs longer than this are counted as this long.
const MAX_BLANKS: i32 = 20;
/// The indent heuristic looks at most this many positions up.
const INDENT_HEURISTIC_MAX_SLIDING: usize = 100;

// The empirically chosen weights of git's indent heuristic; a larger
// score marks a worse place to split.
const START_OF_FILE_PENALTY: i32 = 1;
const END_OF_FILE_PENALTY: i32 = 21;
const TOTAL_BLANK_WEIGHT: i32 = -30;
const POST_BLANK_WEIGHT: i32 = 6;
const RELATIVE_INDENT_PENALTY: i32 = -4;
const RELATIVE_INDENT_WITH_BLANK_PENALTY: i32 = 10;
const RELATIVE_OUTDENT_PENALTY: i32 = 24;
const RELATIVE_OUTDENT_WITH_BLANK_PENALTY: i32 = 17;
const RELATIVE_DEDENT_PENALTY: i32 = 23;
const RELATIVE_DEDENT_WITH_BLANK_PENALTY: i32 = 17;
const INDENT_WEIGHT: i32 = 60;

/// git's isspace: only tab, newline, carriage return and space.
pub(crate) fn is_git_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\r' | b' ')
}

/// Indentation width of a line (tabs to multiples of 8), `-1` when the
/// line is blank, capped at MAX_INDENT.
fn line_indent(line: &[u8]) -> i32 {
    let mut ret = 0;
    for &c in line {
        if !is_git_space(c) {
            return ret;
        } else if c == b' ' {
            ret += 1;
        } else if c == b'\t' {
            ret += 8 - ret % 8;
        }
        // Other whitespace (CR, LF) takes no columns.
        if ret >= MAX_INDENT {
            return MAX_INDENT;
        }
    }
    -1
}

/// One file as the compaction sees it.
pub(crate) struct File<'a> {
    pub data: &'a [u8],
    pub lines: &'a [(usize, usize)],
    pub class: &'a [u32],
    /// Changed marks with a guard slot on each end: `changed[i + 1]` is
    /// line `i`.
    pub changed: &'a mut [bool],
    /// Indentation per line, filled in on first use (`None` = not yet).
    indent: Vec<Option<i32>>,
}

impl<'a> File<'a> {
    pub fn new(data: &'a [u8], lines: &'a [(usize, usize)], class: &'a [u32], changed: &'a mut [bool]) -> Self {
        File {
            data,
            lines,
            class,
            changed,
            indent: Vec::new(),
        }
    }

    fn nrec(&self) -> usize {
        self.lines.len()
    }

    /// Is line `i` (which may be -1 or `nrec`, the guards) changed?
    fn chg(&self, i: isize) -> bool {
        self.changed[(i + 1) as usize]
    }

    fn set_chg(&mut self, i: usize, v: bool) {
        self.changed[i + 1] = v;
    }

    fn indent_of(&mut self, i: usize) -> i32 {
        if self.indent.is_empty() {
            self.indent = vec![None; self.nrec()];
        }
        if let Some(v) = self.indent[i] {
            return v;
        }
        let (s, e) = self.lines[i];
        let v = line_indent(&self.data[s..e]);
        self.indent[i] = Some(v);
        v
    }
}

/// A run of changed lines `[start, end)`; an empty group sits just above
/// line `start`.
#[derive(Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
}

fn group_init(f: &File) -> Group {
    let mut end = 0;
    while f.chg(end as isize) {
        end += 1;
    }
    Group { start: 0, end }
}

/// Move to the next group; false at the end of the file.
fn group_next(f: &File, g: &mut Group) -> bool {
    if g.end == f.nrec() {
        return false;
    }
    g.start = g.end + 1;
    g.end = g.start;
    while f.chg(g.end as isize) {
        g.end += 1;
    }
    true
}

/// Move to the previous group; false at the start of the file.
fn group_previous(f: &File, g: &mut Group) -> bool {
    if g.start == 0 {
        return false;
    }
    g.end = g.start - 1;
    g.start = g.end;
    while f.chg(g.start as isize - 1) {
        g.start -= 1;
    }
    true
}

/// Slide the group one line down if the line after it equals its first
/// line, swallowing a group it runs into.
fn slide_down(f: &mut File, g: &mut Group) -> bool {
    if g.end < f.nrec() && f.class[g.start] == f.class[g.end] {
        f.set_chg(g.start, false);
        f.set_chg(g.end, true);
        g.start += 1;
        g.end += 1;
        while f.chg(g.end as isize) {
            g.end += 1;
        }
        true
    } else {
        false
    }
}

/// Slide the group one line up if the line before it equals its last
/// line, swallowing a group it runs into.
fn slide_up(f: &mut File, g: &mut Group) -> bool {
    if g.start > 0 && f.class[g.start - 1] == f.class[g.end - 1] {
        g.start -= 1;
        g.end -= 1;
        f.set_chg(g.start, true);
        f.set_chg(g.end, false);
        while f.chg(g.start as isize - 1) {
            g.start -= 1;
        }
        true
    } else {
        false
    }
}

/// What the indent heuristic measures around a split above line `split`.
struct Measure {
    end_of_file: bool,
    indent: i32,
    pre_blank: i32,
    pre_indent: i32,
    post_blank: i32,
    post_indent: i32,
}

fn measure_split(f: &mut File, split: usize) -> Measure {
    let nrec = f.nrec();
    let (end_of_file, indent) = if split >= nrec { (true, -1) } else { (false, f.indent_of(split)) };

    let mut pre_blank = 0;
    let mut pre_indent = -1;
    let mut i = split;
    while i > 0 {
        i -= 1;
        pre_indent = f.indent_of(i);
        if pre_indent != -1 {
            break;
        }
        pre_blank += 1;
        if pre_blank == MAX_BLANKS {
            pre_indent = 0;
            break;
        }
    }

    let mut post_blank = 0;
    let mut post_indent = -1;
    let mut i = split + 1;
    while i < nrec {
        post_indent = f.indent_of(i);
        if post_indent != -1 {
            break;
        }
        post_blank += 1;
        if post_blank == MAX_BLANKS {
            post_indent = 0;
            break;
        }
        i += 1;
    }

    Measure {
        end_of_file,
        indent,
        pre_blank,
        pre_indent,
        post_blank,
        post_indent,
    }
}

#[derive(Clone, Copy, Default)]
struct Score {
    effective_indent: i32,
    penalty: i32,
}

fn score_add_split(m: &Measure, s: &mut Score) {
    if m.pre_indent == -1 && m.pre_blank == 0 {
        s.penalty += START_OF_FILE_PENALTY;
    }
    if m.end_of_file {
        s.penalty += END_OF_FILE_PENALTY;
    }

    // Blank lines after the split, counting the line right after it.
    let post_blank = if m.indent == -1 { 1 + m.post_blank } else { 0 };
    let total_blank = m.pre_blank + post_blank;
    s.penalty += TOTAL_BLANK_WEIGHT * total_blank;
    s.penalty += POST_BLANK_WEIGHT * post_blank;

    let indent = if m.indent != -1 { m.indent } else { m.post_indent };
    let any_blanks = total_blank != 0;
    s.effective_indent += indent;

    if indent == -1 || m.pre_indent == -1 {
        // Nothing to compare with.
    } else if indent > m.pre_indent {
        s.penalty += if any_blanks {
            RELATIVE_INDENT_WITH_BLANK_PENALTY
        } else {
            RELATIVE_INDENT_PENALTY
        };
    } else if indent == m.pre_indent {
        // Same level as the line before: no adjustment.
    } else if m.post_indent != -1 && m.post_indent > indent {
        // Less indented than before but more follows: likely a block start.
        s.penalty += if any_blanks {
            RELATIVE_OUTDENT_WITH_BLANK_PENALTY
        } else {
            RELATIVE_OUTDENT_PENALTY
        };
    } else {
        // Likely the end of a block.
        s.penalty += if any_blanks {
            RELATIVE_DEDENT_WITH_BLANK_PENALTY
        } else {
            RELATIVE_DEDENT_PENALTY
        };
    }
}

/// Negative when `a` is the better (lower) score.
fn score_cmp(a: &Score, b: &Score) -> i32 {
    let cmp_indents = i32::from(a.effective_indent > b.effective_indent) - i32::from(a.effective_indent < b.effective_indent);
    INDENT_WEIGHT * cmp_indents + (a.penalty - b.penalty)
}

/// Compact the groups of `f`, keeping the groups of the other file `o`
/// in step (the two files' groups correspond one to one).
pub(crate) fn change_compact(f: &mut File, o: &mut File) {
    let mut g = group_init(f);
    let mut go = group_init(o);

    loop {
        if g.end != g.start {
            let mut earliest_end;
            let mut end_matching_other;
            let mut groupsize;
            loop {
                groupsize = g.end - g.start;
                end_matching_other = None;

                // Up as far as it goes ...
                while slide_up(f, &mut g) {
                    let moved = group_previous(o, &mut go);
                    debug_assert!(moved, "group sync broken sliding up");
                }
                earliest_end = g.end;
                if go.end > go.start {
                    end_matching_other = Some(g.end);
                }

                // ... then down as far as it goes.
                while slide_down(f, &mut g) {
                    let moved = group_next(o, &mut go);
                    debug_assert!(moved, "group sync broken sliding down");
                    if go.end > go.start {
                        end_matching_other = Some(g.end);
                    }
                }
                // Merging with a neighbour changes the size: go again.
                if groupsize == g.end - g.start {
                    break;
                }
            }

            if g.end == earliest_end {
                // The group cannot move.
            } else if end_matching_other.is_some() {
                // Line up with the last change on the other side it met.
                while go.end == go.start {
                    let slid = slide_up(f, &mut g);
                    debug_assert!(slid, "match disappeared");
                    let moved = group_previous(o, &mut go);
                    debug_assert!(moved, "group sync broken sliding to match");
                }
            } else {
                indent_heuristic(f, o, &mut g, &mut go, earliest_end, groupsize);
            }
        }

        if !group_next(f, &mut g) {
            break;
        }
        let moved = group_next(o, &mut go);
        debug_assert!(moved, "group sync broken moving to next group");
    }
}

/// The group is slid down as far as it goes; score each position it can
/// take (at most INDENT_HEURISTIC_MAX_SLIDING up, never further up than
/// `earliest_end` allows) and move it to the best, preferring the lowest
/// position on ties.
fn indent_heuristic(f: &mut File, o: &mut File, g: &mut Group, go: &mut Group, earliest_end: usize, groupsize: usize) {
    let gend = g.end as isize;
    let mut shift = earliest_end as isize;
    if gend - groupsize as isize - 1 > shift {
        shift = gend - groupsize as isize - 1;
    }
    if gend - (INDENT_HEURISTIC_MAX_SLIDING as isize) > shift {
        shift = gend - INDENT_HEURISTIC_MAX_SLIDING as isize;
    }

    let mut best: Option<(usize, Score)> = None;
    while shift <= gend {
        let s = shift as usize;
        let mut score = Score::default();
        let m = measure_split(f, s);
        score_add_split(&m, &mut score);
        let m = measure_split(f, s - groupsize);
        score_add_split(&m, &mut score);
        let better = match &best {
            None => true,
            Some((_, b)) => score_cmp(&score, b) <= 0,
        };
        if better {
            best = Some((s, score));
        }
        shift += 1;
    }

    if let Some((best_shift, _)) = best {
        while g.end > best_shift {
            let slid = slide_up(f, g);
            debug_assert!(slid, "best shift unreached");
            let moved = group_previous(o, go);
            debug_assert!(moved, "group sync broken sliding to blank line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_counts_tabs_to_eight() {
        assert_eq!(line_indent(b"x\n"), 0);
        assert_eq!(line_indent(b"  x\n"), 2);
        assert_eq!(line_indent(b"\tx\n"), 8);
        assert_eq!(line_indent(b"   \tx\n"), 8);
        assert_eq!(line_indent(b"  \n"), -1);
        assert_eq!(line_indent(b""), -1);
        assert_eq!(line_indent(b"\r\n"), -1);
    }
}
