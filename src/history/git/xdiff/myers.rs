//! The divide-and-conquer Myers search as git's xdiff runs it, heuristics
//! included: a snake-based early split once the cost passes a threshold,
//! and a give-up rule (the "furthest reaching" split) once the cost passes
//! a limit derived from the input size. Those heuristics make the result
//! differ from a minimal diff, so they are reproduced step for step.

use super::prepare::{Side, bogosqrt};

/// The cost limit never goes below this.
const MAX_COST_MIN: usize = 256;
/// Above this cost the snake heuristic may cut the search short.
const HEUR_MIN_COST: isize = 256;
/// A run of equal lines longer than this counts as a "good snake".
const SNAKE_CNT: isize = 20;
/// Weight of the cost in the snake heuristic's interest test.
const K_HEUR: isize = 4;

/// Where a box gets split, and whether each half must be searched
/// without heuristics.
struct Split {
    i1: isize,
    i2: isize,
    min_lo: bool,
    min_hi: bool,
}

/// The box being split: old lines `off1..lim1` against new lines
/// `off2..lim2` (indices into the searched lines).
#[derive(Clone, Copy)]
struct Bounds {
    off1: isize,
    lim1: isize,
    off2: isize,
    lim2: isize,
}

/// The diagonals one direction of the search has reached, `min..=max`
/// in steps of two, and the one it started on.
#[derive(Clone, Copy)]
struct Diagonals {
    min: isize,
    max: isize,
    mid: isize,
}

/// The two diagonal vectors, addressed by diagonal number (which may be
/// negative) through a fixed offset.
struct Search<'a> {
    a: &'a [u32],
    b: &'a [u32],
    fwd: Vec<isize>,
    bwd: Vec<isize>,
    offset: isize,
    mxcost: isize,
}

impl Search<'_> {
    fn f(&self, d: isize) -> isize {
        self.fwd[(d + self.offset) as usize]
    }
    fn set_f(&mut self, d: isize, v: isize) {
        self.fwd[(d + self.offset) as usize] = v;
    }
    fn b(&self, d: isize) -> isize {
        self.bwd[(d + self.offset) as usize]
    }
    fn set_b(&mut self, d: isize, v: isize) {
        self.bwd[(d + self.offset) as usize] = v;
    }
    fn eq(&self, i1: isize, i2: isize) -> bool {
        self.a[i1 as usize] == self.b[i2 as usize]
    }

    /// Find the middle snake of the box `[off1, lim1) x [off2, lim2)`,
    /// searching from both corners at once; with `need_min` false, stop
    /// early when the heuristics say so. Both ranges are non-empty.
    fn split(&mut self, off1: isize, lim1: isize, off2: isize, lim2: isize, need_min: bool) -> Split {
        let dmin = off1 - lim2;
        let dmax = lim1 - off2;
        let fmid = off1 - off2;
        let bmid = lim1 - lim2;
        let odd = (fmid - bmid) & 1 != 0;
        let (mut fmin, mut fmax) = (fmid, fmid);
        let (mut bmin, mut bmax) = (bmid, bmid);

        self.set_f(fmid, off1);
        self.set_b(bmid, lim1);

        let mut ec: isize = 1;
        loop {
            let mut got_snake = false;

            // Widen the forward diagonal range by one on each side where
            // the box allows, else narrow it, keeping the parity right;
            // the diagonals just outside get a sentinel.
            if fmin > dmin {
                fmin -= 1;
                self.set_f(fmin - 1, -1);
            } else {
                fmin += 1;
            }
            if fmax < dmax {
                fmax += 1;
                self.set_f(fmax + 1, -1);
            } else {
                fmax -= 1;
            }

            let mut d = fmax;
            while d >= fmin {
                let mut i1 = if self.f(d - 1) >= self.f(d + 1) {
                    self.f(d - 1) + 1
                } else {
                    self.f(d + 1)
                };
                let prev1 = i1;
                let mut i2 = i1 - d;
                let run = run_forward(self.a, self.b, i1, i2, lim1, lim2);
                i1 += run;
                i2 += run;
                if i1 - prev1 > SNAKE_CNT {
                    got_snake = true;
                }
                self.set_f(d, i1);
                if odd && bmin <= d && d <= bmax && self.b(d) <= i1 {
                    return Split {
                        i1,
                        i2,
                        min_lo: true,
                        min_hi: true,
                    };
                }
                d -= 2;
            }

            // Same for the backward search, whose sentinel is "infinity".
            if bmin > dmin {
                bmin -= 1;
                self.set_b(bmin - 1, isize::MAX);
            } else {
                bmin += 1;
            }
            if bmax < dmax {
                bmax += 1;
                self.set_b(bmax + 1, isize::MAX);
            } else {
                bmax -= 1;
            }

            let mut d = bmax;
            while d >= bmin {
                let mut i1 = if self.b(d - 1) < self.b(d + 1) {
                    self.b(d - 1)
                } else {
                    self.b(d + 1) - 1
                };
                let prev1 = i1;
                let mut i2 = i1 - d;
                let run = run_backward(self.a, self.b, i1, i2, off1, off2);
                i1 -= run;
                i2 -= run;
                if prev1 - i1 > SNAKE_CNT {
                    got_snake = true;
                }
                self.set_b(d, i1);
                if !odd && fmin <= d && d <= fmax && i1 <= self.f(d) {
                    return Split {
                        i1,
                        i2,
                        min_lo: true,
                        min_hi: true,
                    };
                }
                d -= 2;
            }

            if need_min {
                ec += 1;
                continue;
            }

            // Past the heuristic threshold, with a long snake seen in this
            // round: take a diagonal that got far from its corner (relative
            // to the cost) and ends in at least SNAKE_CNT equal lines.
            let bounds = Bounds { off1, lim1, off2, lim2 };
            let fwd = Diagonals {
                min: fmin,
                max: fmax,
                mid: fmid,
            };
            let bwd = Diagonals {
                min: bmin,
                max: bmax,
                mid: bmid,
            };
            if got_snake && ec > HEUR_MIN_COST {
                if let Some(s) = self.forward_snake_split(bounds, fwd, ec) {
                    return s;
                }
                if let Some(s) = self.backward_snake_split(bounds, bwd, ec) {
                    return s;
                }
            }

            // Too expensive: split at the point, forward or backward, that
            // got furthest along.
            if ec >= self.mxcost {
                return self.furthest_split(bounds, fwd, bwd);
            }
            ec += 1;
        }
    }

    /// The forward diagonal furthest from its corner (less its distance
    /// from the middle diagonal) whose last SNAKE_CNT steps were equal
    /// lines, if one got far enough for the cost `ec`.
    fn forward_snake_split(&self, b: Bounds, f: Diagonals, ec: isize) -> Option<Split> {
        let Bounds { off1, lim1, off2, lim2 } = b;
        let (fmin, fmax, fmid) = (f.min, f.max, f.mid);
        let mut best = 0;
        let mut found = None;
        let mut d = fmax;
        while d >= fmin {
            let dd = if d > fmid { d - fmid } else { fmid - d };
            let i1 = self.f(d);
            let i2 = i1 - d;
            let v = (i1 - off1) + (i2 - off2) - dd;
            if v > K_HEUR * ec && v > best && off1 + SNAKE_CNT <= i1 && i1 < lim1 && off2 + SNAKE_CNT <= i2 && i2 < lim2 {
                let mut k = 1;
                while self.eq(i1 - k, i2 - k) {
                    if k == SNAKE_CNT {
                        best = v;
                        found = Some((i1, i2));
                        break;
                    }
                    k += 1;
                }
            }
            d -= 2;
        }
        found.map(|(i1, i2)| Split {
            i1,
            i2,
            min_lo: true,
            min_hi: false,
        })
    }

    /// The same test for the backward search.
    fn backward_snake_split(&self, b: Bounds, bk: Diagonals, ec: isize) -> Option<Split> {
        let Bounds { off1, lim1, off2, lim2 } = b;
        let (bmin, bmax, bmid) = (bk.min, bk.max, bk.mid);
        let mut best = 0;
        let mut found = None;
        let mut d = bmax;
        while d >= bmin {
            let dd = if d > bmid { d - bmid } else { bmid - d };
            let i1 = self.b(d);
            let i2 = i1 - d;
            let v = (lim1 - i1) + (lim2 - i2) - dd;
            if v > K_HEUR * ec && v > best && off1 < i1 && i1 <= lim1 - SNAKE_CNT && off2 < i2 && i2 <= lim2 - SNAKE_CNT {
                let mut k = 0;
                while self.eq(i1 + k, i2 + k) {
                    if k == SNAKE_CNT - 1 {
                        best = v;
                        found = Some((i1, i2));
                        break;
                    }
                    k += 1;
                }
            }
            d -= 2;
        }
        found.map(|(i1, i2)| Split {
            i1,
            i2,
            min_lo: false,
            min_hi: true,
        })
    }

    /// Give up on an optimal split: take the forward or backward point
    /// that advanced furthest (by old + new line count), clipped to the
    /// box.
    fn furthest_split(&self, b: Bounds, f: Diagonals, bk: Diagonals) -> Split {
        let Bounds { off1, lim1, off2, lim2 } = b;
        let (fmin, fmax, bmin, bmax) = (f.min, f.max, bk.min, bk.max);
        let mut fbest = -1;
        let mut fbest1 = -1;
        let mut d = fmax;
        while d >= fmin {
            let mut i1 = self.f(d).min(lim1);
            let mut i2 = i1 - d;
            if lim2 < i2 {
                i1 = lim2 + d;
                i2 = lim2;
            }
            if fbest < i1 + i2 {
                fbest = i1 + i2;
                fbest1 = i1;
            }
            d -= 2;
        }

        let mut bbest = isize::MAX;
        let mut bbest1 = isize::MAX;
        let mut d = bmax;
        while d >= bmin {
            let mut i1 = off1.max(self.b(d));
            let mut i2 = i1 - d;
            if i2 < off2 {
                i1 = off2 + d;
                i2 = off2;
            }
            if i1 + i2 < bbest {
                bbest = i1 + i2;
                bbest1 = i1;
            }
            d -= 2;
        }

        if (lim1 + lim2) - bbest < fbest - (off1 + off2) {
            Split {
                i1: fbest1,
                i2: fbest - fbest1,
                min_lo: true,
                min_hi: false,
            }
        } else {
            Split {
                i1: bbest1,
                i2: bbest - bbest1,
                min_lo: false,
                min_hi: true,
            }
        }
    }
}

/// How many equal lines follow `a[i1]` and `b[i2]` (both included),
/// stopping at `lim1`/`lim2`: the forward snake of the search.
fn run_forward(a: &[u32], b: &[u32], i1: isize, i2: isize, lim1: isize, lim2: isize) -> isize {
    if i1 < 0 || i2 < 0 || i1 >= lim1 || i2 >= lim2 {
        return 0;
    }
    // Slices rather than indexing keep the hot loop free of bounds checks.
    let (x, y) = (&a[i1 as usize..lim1 as usize], &b[i2 as usize..lim2 as usize]);
    x.iter().zip(y).take_while(|(p, q)| p == q).count() as isize
}

/// How many equal lines precede `a[i1]` and `b[i2]` (both excluded),
/// stopping at `off1`/`off2`: the backward snake of the search.
fn run_backward(a: &[u32], b: &[u32], i1: isize, i2: isize, off1: isize, off2: isize) -> isize {
    if i1 <= off1 || i2 <= off2 {
        return 0;
    }
    let (x, y) = (&a[off1 as usize..i1 as usize], &b[off2 as usize..i2 as usize]);
    x.iter().rev().zip(y.iter().rev()).take_while(|(p, q)| p == q).count() as isize
}

/// Run the search over the lines both sides kept after preparation and
/// mark the changed ones in `old.changed` / `new.changed`.
pub(crate) fn compare(old: &mut Side, new: &mut Side) {
    let n1 = old.search_class.len();
    let n2 = new.search_class.len();
    let ndiags = n1 + n2 + 3;
    let mxcost = bogosqrt(ndiags).max(MAX_COST_MIN);

    let mut search = Search {
        a: &old.search_class,
        b: &new.search_class,
        fwd: vec![0; ndiags],
        bwd: vec![0; ndiags],
        offset: n2 as isize + 1,
        mxcost: mxcost as isize,
    };

    // Boxes still to do; taking the lower half before the upper one, as
    // git's recursion does (an explicit stack keeps deep splits off the
    // call stack).
    let mut todo: Vec<(isize, isize, isize, isize, bool)> = vec![(0, n1 as isize, 0, n2 as isize, false)];
    while let Some((mut off1, mut lim1, mut off2, mut lim2, need_min)) = todo.pop() {
        // Peel off equal lines at both ends of the box.
        while off1 < lim1 && off2 < lim2 && search.eq(off1, off2) {
            off1 += 1;
            off2 += 1;
        }
        while off1 < lim1 && off2 < lim2 && search.eq(lim1 - 1, lim2 - 1) {
            lim1 -= 1;
            lim2 -= 1;
        }

        if off1 == lim1 {
            for k in off2..lim2 {
                new.changed[new.index[k as usize] + 1] = true;
            }
        } else if off2 == lim2 {
            for k in off1..lim1 {
                old.changed[old.index[k as usize] + 1] = true;
            }
        } else {
            let s = search.split(off1, lim1, off2, lim2, need_min);
            todo.push((s.i1, lim1, s.i2, lim2, s.min_hi));
            todo.push((off1, s.i1, off2, s.i2, s.min_lo));
        }
    }
}
