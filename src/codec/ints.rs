//! Integer sequences (timestamps, record ids, integer fields, decimal-scaled floats).
//!
//! The encoder estimates the coded size of each transform and keeps the smallest:
//! first differences for gauges and random walks, second differences for timestamps and
//! counters, offsets from the minimum for values that wander without trend. Differences use
//! wrapping arithmetic, so every `i64` sequence round-trips, extremes included.

use super::bytes::{Reader, put_ivarint, unzigzag, zigzag};
use super::{DecodeError, rans};

const CONSTANT: u8 = 1;
const DELTA: u8 = 2;
const DELTA2: u8 = 3;
const OFFSET: u8 = 4;

/// Appends an encoding of `values` (their count is not stored).
pub(crate) fn encode(values: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = values.first() else {
        out.push(CONSTANT);
        put_ivarint(out, 0);
        return;
    };
    if values.iter().all(|&v| v == first) {
        out.push(CONSTANT);
        put_ivarint(out, first);
        return;
    }
    let min = values.iter().copied().min().unwrap_or(first);
    let deltas = || values.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0])));
    let dods = || {
        values
            .windows(3)
            .map(|w| zigzag(w[2].wrapping_sub(w[1]).wrapping_sub(w[1].wrapping_sub(w[0]))))
    };
    let offsets = || values.iter().map(|&v| v.wrapping_sub(min) as u64);
    let candidates = [
        (DELTA, rans::estimate_bits(deltas())),
        (DELTA2, rans::estimate_bits(dods())),
        (OFFSET, rans::estimate_bits(offsets())),
    ];
    let scheme = candidates.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(DELTA, |c| c.0);
    out.push(scheme);
    match scheme {
        DELTA => {
            put_ivarint(out, first);
            rans::encode(&deltas().collect::<Vec<_>>(), out);
        }
        DELTA2 => {
            put_ivarint(out, first);
            let d = values.get(1).map_or(0, |v| v.wrapping_sub(first));
            put_ivarint(out, d);
            rans::encode(&dods().collect::<Vec<_>>(), out);
        }
        _ => {
            put_ivarint(out, min);
            rans::encode(&offsets().collect::<Vec<_>>(), out);
        }
    }
}

/// Decodes `n` values, appending them to `out`.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    let scheme = r.u8()?;
    let start = out.len();
    out.reserve(n);
    let mut raw = Vec::new();
    match scheme {
        CONSTANT => {
            let v = r.ivarint()?;
            out.resize(start + n, v);
        }
        DELTA => {
            let first = r.ivarint()?;
            rans::decode(r, n.saturating_sub(1), &mut raw)?;
            if n > 0 {
                let mut v = first;
                out.push(v);
                for d in raw {
                    v = v.wrapping_add(unzigzag(d));
                    out.push(v);
                }
            }
        }
        DELTA2 => {
            let first = r.ivarint()?;
            let mut delta = r.ivarint()?;
            rans::decode(r, n.saturating_sub(2), &mut raw)?;
            if n > 0 {
                let mut v = first;
                out.push(v);
                if n > 1 {
                    v = v.wrapping_add(delta);
                    out.push(v);
                }
                for dd in raw {
                    delta = delta.wrapping_add(unzigzag(dd));
                    v = v.wrapping_add(delta);
                    out.push(v);
                }
            }
        }
        OFFSET => {
            let min = r.ivarint()?;
            rans::decode(r, n, &mut raw)?;
            out.extend(raw.into_iter().map(|o| min.wrapping_add(o as i64)));
        }
        _ => return Err(DecodeError("unknown integer encoding")),
    }
    debug_assert_eq!(out.len(), start + n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(values, &mut out);
        let mut r = Reader::new(&out);
        let mut got = Vec::new();
        decode(&mut r, values.len(), &mut got).unwrap();
        assert!(r.is_empty(), "trailing bytes");
        assert_eq!(got, values);
        out
    }

    #[test]
    fn regular_timestamps_cost_almost_nothing() {
        let ts: Vec<i64> = (0..8640).map(|i| 1_451_606_400_000_000_000 + i * 10_000_000_000).collect();
        assert!(round_trip(&ts).len() < 24);
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[]);
        round_trip(&[i64::MIN]);
        round_trip(&[i64::MIN, i64::MAX, i64::MIN, 0, -1, i64::MAX]);
        round_trip(&[i64::MAX; 3]);
        round_trip(&[1, 2]);
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]

        #[test]
        fn any_sequence_round_trips(values in prop::collection::vec(any::<i64>(), 0..300)) {
            round_trip(&values);
        }

        #[test]
        fn small_walks_round_trip(start in any::<i64>(), steps in prop::collection::vec(-1000i64..1000, 0..2000)) {
            let mut v = start;
            let values: Vec<i64> = steps.iter().map(|s| { v = v.wrapping_add(*s); v }).collect();
            round_trip(&values);
        }
    }
}
