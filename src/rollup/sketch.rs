//! A mergeable quantile sketch in the style of DDSketch (Masson, Rim and Lee, VLDB 2019):
//! values are counted in logarithmic bins, so any quantile is answered within a fixed
//! relative error and two sketches merge by adding bin counts. Summaries keep one per
//! bucket and field; a day's p99 is the merge of its 24 hourly sketches.
//!
//! Guarantee: for the value `x` of rank `r` (the rank [`crate::query`] uses for its exact
//! nearest-rank percentile), [`QuantileSketch::value_at_rank`] returns `y` with
//! `|y - x| <= RELATIVE_ACCURACY * |x|`, and `y` is clamped to the exact min and max the
//! summary also keeps. NaN is not counted (as exact percentiles skip it); infinities are
//! kept in bins of their own and come back as infinities.
//!
//! Encoding (the `<field>.sketch` column of a summary row, see `docs/FORMAT.md`): the
//! binary form below, each byte as the character of the same code point so it travels in a
//! string column. `u8 version (1)`, `varint zero_count`, then for the negative and the
//! positive store `varint runs`, and per run of neighbouring bins in ascending key order:
//! its first key (`zigzag varint` for the first run, then `varint` distance from the end
//! of the previous run), `varint length` and one `varint count` per bin (zero for an empty
//! bin inside a run).

use crate::codec::bytes::{Reader, put_ivarint, put_varint};
use std::collections::BTreeMap;

/// Relative accuracy of every quantile the sketch answers (1%).
pub const RELATIVE_ACCURACY: f64 = 0.01;
const VERSION: u8 = 1;
/// Values of smaller magnitude count as zero.
const MIN_INDEXABLE: f64 = 1e-9;
/// Bin of +-infinity; finite values never reach it (log_gamma(f64::MAX) is about 35,500).
const INFINITE_KEY: i32 = 1 << 20;
/// Decoding refuses more bins than this: a 1% sketch of every finite f64 needs ~75,000.
const MAX_BINS: u64 = 200_000;
/// Empty bins between two occupied ones that are stored as zero counts, not a new run.
const MAX_FILL: i64 = 2;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// Counts of values by logarithmic bin. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantileSketch {
    zero: u64,
    /// Bins of negative values by the key of their magnitude.
    negative: BTreeMap<i32, u64>,
    positive: BTreeMap<i32, u64>,
}

impl QuantileSketch {
    /// Values counted.
    pub fn count(&self) -> u64 {
        self.zero + self.negative.values().sum::<u64>() + self.positive.values().sum::<u64>()
    }

    fn key(magnitude: f64) -> i32 {
        if magnitude.is_infinite() {
            return INFINITE_KEY;
        }
        // Invariant: magnitude >= MIN_INDEXABLE and finite, so the key is within +-40,000.
        (magnitude.ln() / gamma().ln()).ceil() as i32
    }

    fn value_of(key: i32) -> f64 {
        if key == INFINITE_KEY {
            return f64::INFINITY;
        }
        let g = gamma();
        2.0 * g.powi(key) / (g + 1.0)
    }

    /// Counts a value (NaN is skipped).
    pub fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        if v.abs() < MIN_INDEXABLE {
            self.zero += 1;
        } else if v > 0.0 {
            *self.positive.entry(Self::key(v)).or_default() += 1;
        } else {
            *self.negative.entry(Self::key(-v)).or_default() += 1;
        }
    }

    /// Adds another sketch's counts.
    pub fn merge(&mut self, other: &QuantileSketch) {
        self.zero += other.zero;
        for (k, c) in &other.negative {
            *self.negative.entry(*k).or_default() += c;
        }
        for (k, c) in &other.positive {
            *self.positive.entry(*k).or_default() += c;
        }
    }

    /// The estimated value of 0-based rank `rank` in ascending order; `None` when empty.
    /// Ranks past the end answer the largest value.
    pub fn value_at_rank(&self, rank: u64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = rank.min(total - 1);
        let mut seen = 0u64;
        // Ascending: the most negative values (largest magnitude) first.
        for (k, c) in self.negative.iter().rev() {
            seen += c;
            if rank < seen {
                return Some(-Self::value_of(*k));
            }
        }
        seen += self.zero;
        if rank < seen {
            return Some(0.0);
        }
        for (k, c) in &self.positive {
            seen += c;
            if rank < seen {
                return Some(Self::value_of(*k));
            }
        }
        // Invariant: rank < total, so a bin was found above.
        None
    }

    /// The binary form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.negative.len() + self.positive.len());
        out.push(VERSION);
        put_varint(&mut out, self.zero);
        for store in [&self.negative, &self.positive] {
            // Runs of neighbouring bins; a gap of up to MAX_FILL empty bins is filled with
            // zero counts (one byte each) rather than starting a run (two bytes or more).
            let mut runs: Vec<(i32, Vec<u64>)> = Vec::new();
            for (&k, &c) in store {
                match runs.last_mut() {
                    Some((start, counts)) if i64::from(k) - (i64::from(*start) + counts.len() as i64) <= MAX_FILL => {
                        let gap = (i64::from(k) - (i64::from(*start) + counts.len() as i64)) as usize;
                        counts.extend(std::iter::repeat_n(0, gap));
                        counts.push(c);
                    }
                    _ => runs.push((k, vec![c])),
                }
            }
            put_varint(&mut out, runs.len() as u64);
            let mut next = None::<i64>;
            for (start, counts) in &runs {
                match next {
                    None => put_ivarint(&mut out, i64::from(*start)),
                    Some(n) => put_varint(&mut out, (i64::from(*start) - n) as u64),
                }
                put_varint(&mut out, counts.len() as u64);
                for c in counts {
                    put_varint(&mut out, *c);
                }
                next = Some(i64::from(*start) + counts.len() as i64);
            }
        }
        out
    }

    /// Parses the binary form; every count and key is checked.
    pub fn from_bytes(bytes: &[u8]) -> Result<QuantileSketch, String> {
        let mut r = Reader::new(bytes);
        let e = |e: crate::codec::DecodeError| e.0.to_string();
        let version = r.u8().map_err(e)?;
        if version != VERSION {
            return Err(format!("quantile sketch version {version} (this build reads {VERSION})"));
        }
        let mut sketch = QuantileSketch {
            zero: r.varint().map_err(e)?,
            ..QuantileSketch::default()
        };
        let mut total = sketch.zero;
        for negative in [true, false] {
            let runs = r.varint().map_err(e)?;
            let mut slots = 0u64;
            let mut next: Option<i64> = None;
            let mut store = BTreeMap::new();
            for _ in 0..runs {
                let start = match next {
                    None => r.ivarint().map_err(e)?,
                    Some(n) => n
                        .checked_add(i64::try_from(r.varint().map_err(e)?).map_err(|_| "quantile sketch gap out of range")?)
                        .ok_or("quantile sketch key overflows")?,
                };
                let len = r.varint().map_err(e)?;
                slots = slots.saturating_add(len);
                if len == 0 || slots > MAX_BINS {
                    return Err(format!("quantile sketch run of {len} bins ({slots} in all)"));
                }
                for i in 0..len as i64 {
                    let key = i32::try_from(start + i)
                        .ok()
                        .filter(|k| k.abs() <= INFINITE_KEY)
                        .ok_or("quantile sketch key out of range")?;
                    let count = r.varint().map_err(e)?;
                    if count > 0 {
                        total = total.checked_add(count).ok_or("quantile sketch count overflows")?;
                        store.insert(key, count);
                    }
                }
                next = Some(start + len as i64);
            }
            if negative {
                sketch.negative = store;
            } else {
                sketch.positive = store;
            }
        }
        if r.remaining() != 0 {
            return Err("trailing bytes after a quantile sketch".into());
        }
        Ok(sketch)
    }

    /// The text form stored in summaries: each byte of [`QuantileSketch::to_bytes`] as the
    /// character of the same code point (U+0000 to U+00FF), so the common bytes below 0x80
    /// take one byte of UTF-8.
    pub fn to_text(&self) -> String {
        self.to_bytes().into_iter().map(char::from).collect()
    }

    /// Parses [`QuantileSketch::to_text`].
    pub fn from_text(text: &str) -> Result<QuantileSketch, String> {
        let bytes = text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("quantile sketch holds the character U+{:04X}", u32::from(c))))
            .collect::<Result<Vec<u8>, String>>()?;
        QuantileSketch::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::percentile_index as percentile_rank;
    use proptest::prelude::*;

    fn exact(values: &[f64], rank: usize) -> f64 {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        sorted[rank]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn quantiles_are_within_the_stated_error_and_merging_equals_one_pass(
            a in prop::collection::vec(prop_oneof![-1e6f64..1e6, -1.0f64..1.0, Just(0.0), 1e-12f64..1e-10], 1..300),
            b in prop::collection::vec(-1e3f64..1e3, 0..100),
            q in 0.0f64..=100.0,
        ) {
            let mut one = QuantileSketch::default();
            a.iter().chain(&b).for_each(|v| one.add(*v));
            let mut left = QuantileSketch::default();
            a.iter().for_each(|v| left.add(*v));
            let mut right = QuantileSketch::default();
            b.iter().for_each(|v| right.add(*v));
            left.merge(&right);
            prop_assert_eq!(&left, &one);
            let all: Vec<f64> = a.iter().chain(&b).copied().collect();
            let rank = percentile_rank(q, all.len());
            let truth = exact(&all, rank);
            let estimate = one.value_at_rank(rank as u64).unwrap();
            let bound = RELATIVE_ACCURACY * truth.abs() + MIN_INDEXABLE;
            prop_assert!((estimate - truth).abs() <= bound * (1.0 + 1e-9), "q {q}: {estimate} vs {truth}");
            prop_assert_eq!(QuantileSketch::from_text(&one.to_text()).unwrap(), one);
        }
    }

    #[test]
    fn nan_is_skipped_infinities_are_kept_and_damage_is_reported() {
        let mut s = QuantileSketch::default();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0] {
            s.add(v);
        }
        assert_eq!(s.count(), 3);
        assert_eq!(s.value_at_rank(0), Some(f64::NEG_INFINITY));
        assert_eq!(s.value_at_rank(2), Some(f64::INFINITY));
        assert_eq!(QuantileSketch::default().value_at_rank(0), None);
        let bytes = s.to_bytes();
        for cut in 0..bytes.len() {
            assert!(QuantileSketch::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(QuantileSketch::from_text("wide \u{1F600}").is_err());
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(QuantileSketch::from_bytes(&bad).is_err());
        // The fuzz seed is a valid sketch: 4 values in bin -3, 2 zeros, 1 + 7 positive.
        let seed = QuantileSketch::from_bytes(include_bytes!("../../fuzz/seeds/sketch/small.bin")).unwrap();
        assert_eq!(seed.count(), 17);
        assert!(seed.value_at_rank(0).unwrap() < 0.0 && seed.value_at_rank(13).unwrap() > 1.0);
    }
}
