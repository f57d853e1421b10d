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
/// Set on a scheme byte whose rANS stream interleaves two states (segment version 4).
const TWO_LANES: u8 = 0x80;
/// The fewest values coded with two lanes: below it the second state's four bytes cost
/// more than its speed is worth.
const TWO_LANES_FROM: usize = 256;

/// Appends an encoding of `values` (their count is not stored).
pub(crate) fn encode(values: &[i64], out: &mut Vec<u8>) {
    let lanes = if values.len() >= TWO_LANES_FROM {
        rans::Lanes::Two
    } else {
        rans::Lanes::One
    };
    encode_with_lanes(values, lanes, out);
}

/// [`encode`] with the number of rANS lanes chosen by the caller.
fn encode_with_lanes(values: &[i64], lanes: rans::Lanes, out: &mut Vec<u8>) {
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
    out.push(if lanes == rans::Lanes::Two { scheme | TWO_LANES } else { scheme });
    match scheme {
        DELTA => {
            put_ivarint(out, first);
            rans::encode(&deltas().collect::<Vec<_>>(), lanes, out);
        }
        DELTA2 => {
            put_ivarint(out, first);
            let d = values.get(1).map_or(0, |v| v.wrapping_sub(first));
            put_ivarint(out, d);
            rans::encode(&dods().collect::<Vec<_>>(), lanes, out);
        }
        _ => {
            put_ivarint(out, min);
            rans::encode(&offsets().collect::<Vec<_>>(), lanes, out);
        }
    }
}

/// Decodes `n` values, appending them to `out`.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    decode_map(r, n, out, |v| v)
}

/// Decodes `n` integers written by [`encode`] and appends `map` of each to `out`, in one
/// pass: the differences are summed and mapped as they come out of the entropy decoder.
#[inline]
pub(crate) fn decode_map<T: Copy>(r: &mut Reader<'_>, n: usize, out: &mut Vec<T>, map: impl Fn(i64) -> T) -> Result<(), DecodeError> {
    let byte = r.u8()?;
    let (scheme, lanes) = match byte & TWO_LANES {
        0 => (byte, rans::Lanes::One),
        _ => (byte & !TWO_LANES, rans::Lanes::Two),
    };
    let start = out.len();
    match scheme {
        CONSTANT if lanes == rans::Lanes::One => {
            let v = r.ivarint()?;
            out.resize(start + n, map(v));
        }
        DELTA => {
            let first = r.ivarint()?;
            out.resize(start + n, map(first));
            // The first value is already in place; the rest follow from the differences.
            let rest = out.get_mut(start + 1..).unwrap_or_default();
            let mut v = first;
            rans::decode_into(r, lanes, rest, |d| {
                v = v.wrapping_add(unzigzag(d));
                map(v)
            })?;
        }
        DELTA2 => {
            let first = r.ivarint()?;
            let mut delta = r.ivarint()?;
            let second = first.wrapping_add(delta);
            out.resize(start + n, map(first));
            if n > 1 {
                out[start + 1] = map(second);
            }
            let rest = out.get_mut(start + 2..).unwrap_or_default();
            let mut v = second;
            rans::decode_into(r, lanes, rest, |dd| {
                delta = delta.wrapping_add(unzigzag(dd));
                v = v.wrapping_add(delta);
                map(v)
            })?;
        }
        OFFSET => {
            let min = r.ivarint()?;
            out.resize(start + n, map(min));
            rans::decode_into(r, lanes, &mut out[start..], |o| map(min.wrapping_add(o as i64)))?;
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
    fn long_sequences_take_two_lanes_and_one_lane_streams_still_read() {
        let mut x = 7u64;
        let mut random = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as i64
        };
        let mut at = 0i64;
        let walk: Vec<i64> = (0..1000)
            .map(|_| {
                at += random() % 1000 - 500;
                at
            })
            .collect();
        let counter: Vec<i64> = (0..1000i64).map(|i| i * 10 + (i * 7) % 3).collect();
        let wander: Vec<i64> = (0..1000).map(|_| random() % 50).collect();
        let mut schemes = Vec::new();
        for values in [&walk, &counter, &wander] {
            let mut two = Vec::new();
            encode(values, &mut two);
            assert_eq!(two[0] & TWO_LANES, TWO_LANES);
            schemes.push(two[0] & !TWO_LANES);
            // What segment versions 1 to 3 hold: the same scheme with one lane.
            let mut one = Vec::new();
            encode_with_lanes(values, rans::Lanes::One, &mut one);
            assert_eq!(one[0], two[0] & !TWO_LANES);
            for bytes in [&one, &two] {
                let mut got = Vec::new();
                let mut r = Reader::new(bytes);
                decode(&mut r, values.len(), &mut got).unwrap();
                assert!(r.is_empty());
                assert_eq!(&got, values);
            }
        }
        schemes.sort();
        assert_eq!(schemes, [DELTA, DELTA2, OFFSET], "each scheme is covered");
        let mut short = Vec::new();
        encode(&walk[..TWO_LANES_FROM - 1], &mut short);
        assert_eq!(short[0] & TWO_LANES, 0, "short sequences keep one lane");
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
