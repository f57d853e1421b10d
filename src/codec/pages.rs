//! Head pages: the values of a head column's full pages of rows, packed to a few bytes per
//! value while they wait in memory for a flush.
//!
//! The segment codecs ([`super::floats`], [`super::ints`]) reach near the entropy floor
//! but cost about 40 ns a value to encode (scale searches, entropy estimates, rANS), more
//! on short runs: too slow for every write. A page keeps the cheap part of them, decimal
//! floats as scaled integers and integers as first differences, and packs the differences,
//! less the page's smallest, at their widest bit width; timestamps and sequence numbers,
//! which step steadily, pack to the page's header. On a day of W1's `usage_user` (`benches/codecs.rs`,
//! `head_pages`): 7.6 ns a value to pack, 2.6 to unpack, 1.27 bytes a value where a
//! vector slot holds 8 (the segment codec: 1.09). Pages never leave the process, so the
//! layout is not part of the file format and may change freely.

use super::bits::low_mask;
use super::bytes::{Reader, put_ivarint};
use super::floats::{MAX_SCALE, POW10, scaled};
use crate::chunk::ColumnValues;

/// Rows in one page.
pub(crate) const PAGE_ROWS: usize = 128;

/// Floats as their bits, 8 bytes each.
const RAW_F64: u8 = 0;
/// Floats as decimal mantissas: scale u8, then the mantissas as [`DELTA_I64`] packs
/// integers.
const DECIMAL_F64: u8 = 1;
/// Integers: first value i64 LE, smallest difference (zigzag varint), width u8, packed
/// differences less the smallest.
const DELTA_I64: u8 = 2;
/// Booleans, one bit each.
const BITS: u8 = 3;

/// True for the column types a page holds: numbers and booleans. Strings stay in the
/// head's vectors, where the text index borrows them at a flush.
pub(crate) fn holds(values: &ColumnValues) -> bool {
    matches!(values, ColumnValues::F64(_) | ColumnValues::I64(_) | ColumnValues::Bool(_))
}

/// Appends a page of `values` to `out` (cleared first); false, leaving `out` empty, for
/// types a page does not hold.
pub(crate) fn encode(values: &ColumnValues, scratch: &mut Vec<i64>, out: &mut Vec<u8>) -> bool {
    out.clear();
    match values {
        ColumnValues::F64(v) => match decimal_mantissas(v, scratch) {
            Some(scale) => {
                out.push(DECIMAL_F64);
                out.push(scale);
                put_deltas(scratch, out);
                // Packing loses to the raw bits only when differences are near 64 bits wide.
                if out.len() > 1 + v.len() * 8 {
                    encode_raw(v, out);
                }
            }
            None => encode_raw(v, out),
        },
        ColumnValues::I64(v) => encode_ints(v, out),
        ColumnValues::Bool(v) => {
            out.push(BITS);
            pack(v.iter().map(|&b| u64::from(b)), 1, out);
        }
        ColumnValues::Str(_) | ColumnValues::Bytes(_) => return false,
    }
    true
}

/// Writes a page of integers to `out` (cleared first): the head's timestamps and sequence
/// numbers, and integer columns.
pub(crate) fn encode_ints(values: &[i64], out: &mut Vec<u8>) {
    out.clear();
    out.push(DELTA_I64);
    put_deltas(values, out);
}

/// Appends the `n` integers of a page [`encode_ints`] wrote to `out`; nothing for a page
/// of another kind.
pub(crate) fn decode_ints(page: &[u8], n: usize, out: &mut Vec<i64>) {
    match page.split_first() {
        Some((&DELTA_I64, body)) => get_deltas(body, n, |v| out.push(v)),
        Some((&kind, _)) => debug_assert!(false, "page kind {kind} is not integers"),
        None => {}
    }
}

/// Appends the `n` values of `page` to `out`, which has the page's type. A page is only
/// ever read by the process that wrote it; what a malformed one would decode to is zeros
/// where bytes are missing, never a panic.
pub(crate) fn decode(page: &[u8], n: usize, out: &mut ColumnValues) {
    let Some((&kind, body)) = page.split_first() else {
        return;
    };
    match (kind, out) {
        (RAW_F64, ColumnValues::F64(out)) => {
            out.extend(body.chunks_exact(8).take(n).map(|b| f64::from_bits(u64::from_le_bytes(array8(b)))));
        }
        (DECIMAL_F64, ColumnValues::F64(out)) => {
            let scale = usize::from(body.first().copied().unwrap_or(0)).min(MAX_SCALE);
            let divisor = POW10[scale];
            // The same expression `scaled` checked exactness with, so the bits come back.
            get_deltas(body.get(1..).unwrap_or(&[]), n, |m| out.push(m as f64 / divisor));
        }
        (DELTA_I64, ColumnValues::I64(out)) => get_deltas(body, n, |v| out.push(v)),
        (BITS, ColumnValues::Bool(out)) => unpack(body, 1, n, |b| out.push(b != 0)),
        (_, out) => {
            debug_assert!(false, "page kind {kind} does not match {:?}", out.value_type());
        }
    }
}

fn encode_raw(values: &[f64], out: &mut Vec<u8>) {
    out.clear();
    out.push(RAW_F64);
    for v in values {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// The values as integers at the smallest decimal scale that makes every one exact (in
/// `mantissas`); `None` when a value has none (NaN, infinities, -0.0, too many digits).
fn decimal_mantissas(values: &[f64], mantissas: &mut Vec<i64>) -> Option<u8> {
    let mut scale = 0;
    let mut i = 0;
    mantissas.clear();
    while let Some(&v) = values.get(i) {
        if let Some(m) = scaled(v, scale) {
            mantissas.push(m);
            i += 1;
            continue;
        }
        // A finer scale for this value; start over, at most MAX_SCALE times.
        scale = (scale + 1..=MAX_SCALE).find(|&s| scaled(v, s).is_some())?;
        mantissas.clear();
        i = 0;
    }
    u8::try_from(scale).ok()
}

/// First value, the smallest first difference (a zigzag varint), then each difference less
/// that smallest one at their widest bit width: a steady step (timestamps every ten
/// seconds, sequence numbers a fixed stride apart) packs to no bits at all, and a walk up
/// and down to as many as zigzagged differences would take.
fn put_deltas(values: &[i64], out: &mut Vec<u8>) {
    let first = values.first().copied().unwrap_or(0);
    out.extend_from_slice(&first.to_le_bytes());
    let deltas = || values.windows(2).map(|w| w[1].wrapping_sub(w[0]));
    let (base, top) = deltas().fold((i64::MAX, i64::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
    let base = if values.len() < 2 { 0 } else { base };
    put_ivarint(out, base);
    // Every difference is at least `base`, so its offset fits 64 bits unsigned, and the
    // largest offset is the top difference's.
    let widest = if values.len() < 2 { 0 } else { top.wrapping_sub(base) as u64 };
    let width = 64 - widest.leading_zeros();
    out.push(width as u8);
    pack(deltas().map(|d| d.wrapping_sub(base) as u64), width, out);
}

/// Calls `f` with the `n` values [`put_deltas`] wrote.
fn get_deltas(body: &[u8], n: usize, mut f: impl FnMut(i64)) {
    if n == 0 {
        return;
    }
    let first = i64::from_le_bytes(array8(body.get(..8).unwrap_or(&[])));
    let mut header = Reader::new(body.get(8..).unwrap_or(&[]));
    let base = header.ivarint().unwrap_or(0);
    let width = u32::from(header.u8().unwrap_or(0)).min(64);
    let packed = body.get(8 + header.position()..).unwrap_or(&[]);
    let mut value = first;
    f(value);
    unpack(packed, width, n - 1, |offset| {
        value = value.wrapping_add(base.wrapping_add(offset as i64));
        f(value);
    });
}

/// The first 8 bytes of `bytes`, zero-padded.
fn array8(bytes: &[u8]) -> [u8; 8] {
    let mut word = [0u8; 8];
    let take = bytes.len().min(8);
    word[..take].copy_from_slice(&bytes[..take]);
    word
}

/// Appends `values`, `width` bits each, least significant bit first.
fn pack(values: impl Iterator<Item = u64>, width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0;
    for v in values {
        acc |= u128::from(v & low_mask(width)) << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    if bits > 0 {
        out.extend_from_slice(&(acc as u64).to_le_bytes()[..bits.div_ceil(8) as usize]);
    }
}

/// Calls `f` with `n` values of `width` bits that [`pack`] wrote; missing bytes read as
/// zeros.
fn unpack(bytes: &[u8], width: u32, n: usize, mut f: impl FnMut(u64)) {
    if width == 0 {
        (0..n).for_each(|_| f(0));
        return;
    }
    let mask = low_mask(width);
    let mut acc: u128 = 0;
    let mut bits = 0;
    let mut words = bytes.chunks(8);
    for _ in 0..n {
        if bits < width {
            let word = words.next().map_or(0, |w| u64::from_le_bytes(array8(w)));
            acc |= u128::from(word) << bits;
            bits += 64;
        }
        f(acc as u64 & mask);
        acc >>= width;
        bits -= width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: ColumnValues) -> usize {
        let mut page = Vec::new();
        assert!(encode(&values, &mut Vec::new(), &mut page));
        let mut back = ColumnValues::new(values.value_type());
        decode(&page, values.len(), &mut back);
        match (&values, &back) {
            // Compared by bits: NaN and -0.0 must come back as they were.
            (ColumnValues::F64(a), ColumnValues::F64(b)) => {
                assert_eq!(
                    a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                )
            }
            _ => assert_eq!(values, back),
        }
        page.len()
    }

    #[test]
    fn decimal_walks_take_a_few_bits_a_value() {
        let walk: Vec<f64> = (0..PAGE_ROWS).map(|i| 50.0 + ((i * 37) % 23) as f64 / 100.0).collect();
        let bytes = round_trip(ColumnValues::F64(walk));
        // 23 hundredths of range: differences under 6 bits, plus the header.
        assert!(bytes <= 12 + PAGE_ROWS * 6 / 8, "{bytes} bytes");
    }

    #[test]
    fn specials_and_wide_values_fall_back_to_raw_bits() {
        let values = vec![1.5, f64::NAN, -0.0, f64::INFINITY, 0.1 + 0.2];
        let bytes = round_trip(ColumnValues::F64(values.clone()));
        assert_eq!(bytes, 1 + values.len() * 8);
        round_trip(ColumnValues::I64(vec![i64::MIN, i64::MAX, 0, -1, i64::MIN]));
        round_trip(ColumnValues::I64(vec![7; PAGE_ROWS]));
        round_trip(ColumnValues::Bool(vec![true, false, true]));
        round_trip(ColumnValues::F64(Vec::new()));
        let mut page = Vec::new();
        assert!(!encode(&ColumnValues::Str(vec!["a".into()]), &mut Vec::new(), &mut page));
        assert!(page.is_empty());
    }

    #[test]
    fn steady_steps_pack_to_the_header_alone() {
        // Timestamps every ten seconds in nanoseconds, and sequence numbers 1,000 apart.
        for (start, step) in [(1_700_000_000_000_000_000i64, 10_000_000_000i64), (42, 1_000)] {
            let values: Vec<i64> = (0..PAGE_ROWS as i64).map(|i| start + i * step).collect();
            let mut page = Vec::new();
            encode_ints(&values, &mut page);
            assert!(page.len() <= 1 + 8 + 10 + 1, "{} bytes", page.len());
            let mut back = Vec::new();
            decode_ints(&page, values.len(), &mut back);
            assert_eq!(back, values);
        }
        // One late value widens the page but still comes back.
        let mut values: Vec<i64> = (0..PAGE_ROWS as i64).map(|i| i * 10).collect();
        values[60] = -5;
        round_trip(ColumnValues::I64(values));
    }

    #[test]
    fn a_truncated_page_decodes_to_zeros_not_a_panic() {
        let mut page = Vec::new();
        encode(&ColumnValues::I64((0..100).map(|i| i * 1000).collect()), &mut Vec::new(), &mut page);
        for cut in 0..page.len() {
            let mut out = ColumnValues::I64(Vec::new());
            decode(&page[..cut], 100, &mut out);
            assert_eq!(out.len(), if cut == 0 { 0 } else { 100 });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn any_float_bits_round_trip(bits in prop::collection::vec(any::<u64>(), 0..200)) {
            round_trip(ColumnValues::F64(bits.into_iter().map(f64::from_bits).collect()));
        }

        #[test]
        fn decimals_round_trip(cents in prop::collection::vec(-10_000_000i64..10_000_000, 1..300), scale in 0usize..6) {
            round_trip(ColumnValues::F64(cents.iter().map(|&c| c as f64 / POW10[scale]).collect()));
        }

        #[test]
        fn any_integers_round_trip(values in prop::collection::vec(any::<i64>(), 0..200), walk in prop::collection::vec(-1000i64..1000, 0..300)) {
            round_trip(ColumnValues::I64(values));
            round_trip(ColumnValues::I64(walk));
        }

        #[test]
        fn booleans_round_trip(values in prop::collection::vec(any::<bool>(), 0..300)) {
            round_trip(ColumnValues::Bool(values));
        }
    }
}
