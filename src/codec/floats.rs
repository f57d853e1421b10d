//! Float sequences.
//!
//! Most stored floats were printed in decimal somewhere (`58.13`, `0.25`): multiplied by a
//! power of ten they are exact integers, and integers delta-code and entropy-code far
//! better than IEEE bit patterns. The encoder finds the smallest power that makes the block
//! exact, keeps the few values that are not (NaN, infinities, -0.0, 0.1+0.2) as exceptions
//! with their raw bits, and codes the scaled integers with [`super::ints`]. When too many
//! values resist, it falls back to Gorilla's XOR coding. Decoding always reproduces the
//! exact bits, which the encoder checks value by value.

use super::bits::{BitReader, BitWriter, low_mask};
use super::bytes::{Reader, put_varint};
use super::{DecodeError, ints};

const CONSTANT: u8 = 1;
const DECIMAL: u8 = 2;
const GORILLA: u8 = 3;

/// Largest decimal scale tried (values with more fractional digits are exceptions).
pub(crate) const MAX_SCALE: usize = 15;
pub(crate) const POW10: [f64; MAX_SCALE + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
/// Scaled magnitudes must stay well inside `i64`.
const MAX_MANTISSA: f64 = (1u64 << 62) as f64;

/// The value at `scale` as an exact integer, when `mantissa / 10^scale` gives back exactly
/// `v` (compared by bits, so -0.0 and NaN never qualify).
#[inline]
pub(crate) fn scaled(v: f64, scale: usize) -> Option<i64> {
    let m = (v * POW10[scale]).round();
    if !m.is_finite() || m.abs() >= MAX_MANTISSA {
        return None;
    }
    // Replay exactly what the decoder does: integer, back to float, divide.
    let mantissa = m as i64;
    let back = mantissa as f64 / POW10[scale];
    (back.to_bits() == v.to_bits()).then_some(mantissa)
}

/// Smallest scale at which `v` is exact.
fn decimal_scale(v: f64) -> Option<usize> {
    if !v.is_finite() {
        return None;
    }
    (0..=MAX_SCALE).find(|&s| scaled(v, s).is_some())
}

/// Appends an encoding of `values` (their count is not stored).
pub(crate) fn encode(values: &[f64], out: &mut Vec<u8>) {
    let Some(first) = values.first() else {
        out.push(CONSTANT);
        out.extend_from_slice(&0f64.to_bits().to_le_bytes());
        return;
    };
    if values.iter().all(|v| v.to_bits() == first.to_bits()) {
        out.push(CONSTANT);
        out.extend_from_slice(&first.to_bits().to_le_bytes());
        return;
    }
    let mut decimal = Vec::new();
    let decimal_ok = encode_decimal(values, &mut decimal);
    let mut gorilla = Vec::new();
    // Gorilla is tried only when the decimal form is unavailable or suspiciously large.
    if !decimal_ok || decimal.len() > values.len() * 2 {
        encode_gorilla(values, &mut gorilla);
    }
    if decimal_ok && (gorilla.is_empty() || decimal.len() <= gorilla.len()) {
        out.push(DECIMAL);
        out.extend_from_slice(&decimal);
    } else {
        out.push(GORILLA);
        out.extend_from_slice(&gorilla);
    }
}

/// Layout: scale u8, exception count varint, exceptions as (index gap varint, raw bits u64
/// LE), then the scaled integers through [`ints::encode`] (exceptions hold the previous
/// integer so they cost no delta). Returns false when decimal coding does not fit.
fn encode_decimal(values: &[f64], out: &mut Vec<u8>) -> bool {
    let n = values.len();
    // Real data carries float noise (`13.334000000000001` among three-decimal readings), so
    // up to a quarter of a block may be exceptions; the size comparison with gorilla in
    // `encode` decides whether that still pays.
    let max_exceptions = n / 4;
    let mut scale_counts = [0usize; MAX_SCALE + 1];
    let mut unscalable = 0usize;
    for (i, &v) in values.iter().enumerate() {
        match decimal_scale(v) {
            Some(s) => scale_counts[s] += 1,
            None => unscalable += 1,
        }
        // Bail out early on data that is plainly not decimal.
        if i == 63 && unscalable > 32 {
            return false;
        }
    }
    // The scale with the smallest estimated size: an exception costs about 9 bytes, each
    // decimal digit about log2(10) bits per value.
    let mut above = n - unscalable;
    let mut scale = None;
    let mut best_cost = f64::INFINITY;
    for (s, &count) in scale_counts.iter().enumerate() {
        above -= count;
        let exceptions = above + unscalable;
        if exceptions > max_exceptions {
            continue;
        }
        let cost = exceptions as f64 * 9.0 + n as f64 * s as f64 * (10f64.log2() / 8.0);
        if cost < best_cost {
            best_cost = cost;
            scale = Some(s);
        }
    }
    let Some(scale) = scale else { return false };

    let mut mantissas = Vec::with_capacity(n);
    let mut exceptions = Vec::new();
    let mut previous = 0i64;
    for (i, &v) in values.iter().enumerate() {
        match scaled(v, scale) {
            Some(m) => {
                mantissas.push(m);
                previous = m;
            }
            None => {
                exceptions.push((i, v.to_bits()));
                // The decoder overwrites this slot; the nearest mantissa keeps the deltas
                // around it small.
                let nearest = (v * POW10[scale]).round();
                if nearest.is_finite() && nearest.abs() < MAX_MANTISSA {
                    previous = nearest as i64;
                }
                mantissas.push(previous);
            }
        }
    }
    if exceptions.len() > max_exceptions {
        return false;
    }
    out.push(scale as u8);
    put_varint(out, exceptions.len() as u64);
    let mut last = 0usize;
    for &(i, bits) in &exceptions {
        put_varint(out, (i - last) as u64);
        out.extend_from_slice(&bits.to_le_bytes());
        last = i;
    }
    ints::encode(&mantissas, out);
    true
}

/// Gorilla (Pelkonen et al., VLDB 2015): the first value raw, then each value XOR its
/// predecessor: `0` for equal, `10` + meaningful bits when they fit the previous window,
/// `11` + 5 bits of leading zeros + 6 bits of length - 1 + meaningful bits otherwise.
fn encode_gorilla(values: &[f64], out: &mut Vec<u8>) {
    let mut w = BitWriter::new();
    let mut prev = values[0].to_bits();
    w.write(prev, 64);
    let mut window: Option<(u32, u32)> = None;
    for v in &values[1..] {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.write_bit(false);
            continue;
        }
        w.write_bit(true);
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        match window {
            Some((wl, wt)) if lead >= wl && trail >= wt => {
                w.write_bit(false);
                w.write(x >> wt, 64 - wl - wt);
            }
            _ => {
                w.write_bit(true);
                let len = 64 - lead - trail;
                w.write(lead as u64, 5);
                w.write(len as u64 - 1, 6);
                w.write(x >> trail, len);
                window = Some((lead, trail));
            }
        }
    }
    out.extend_from_slice(&w.finish());
}

/// Decodes `n` values, appending them to `out`.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
    let start = out.len();
    match r.u8()? {
        CONSTANT => {
            let v = r.f64_le()?;
            out.resize(start + n, v);
        }
        DECIMAL => {
            let scale = r.u8()? as usize;
            let divisor = *POW10.get(scale).ok_or(DecodeError("decimal scale out of range"))?;
            let count = r.len(n)?;
            let mut exceptions = Vec::with_capacity(count);
            let mut at = 0usize;
            for i in 0..count {
                let gap = r.len(n)?;
                if i > 0 && gap == 0 {
                    return Err(DecodeError("decimal exceptions out of order"));
                }
                at = at
                    .checked_add(gap)
                    .filter(|&a| a < n)
                    .ok_or(DecodeError("decimal exception index out of range"))?;
                exceptions.push((at, r.u64_le()?));
            }
            ints::decode_map(r, n, out, |m| m as f64 / divisor)?;
            for (i, bits) in exceptions {
                out[start + i] = f64::from_bits(bits);
            }
        }
        GORILLA => decode_gorilla(r, n, out)?,
        _ => return Err(DecodeError("unknown float encoding")),
    }
    Ok(())
}

fn decode_gorilla(r: &mut Reader<'_>, n: usize, out: &mut Vec<f64>) -> Result<(), DecodeError> {
    if n == 0 {
        return Ok(());
    }
    // The bit stream runs to the end of this reader's input.
    let rest = r.bytes(r.remaining())?;
    let mut b = BitReader::new(rest);
    let mut prev = b.read(64)?;
    out.push(f64::from_bits(prev));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if b.read_bit()? {
            let x = if b.read_bit()? {
                let lead = b.read(5)? as u32;
                let len = b.read(6)? as u32 + 1;
                if lead + len > 64 {
                    return Err(DecodeError("gorilla window exceeds 64 bits"));
                }
                let trail = 64 - lead - len;
                window = Some((lead, trail));
                b.read(len)? << trail
            } else {
                let (lead, trail) = window.ok_or(DecodeError("gorilla reuses a window before setting one"))?;
                let len = 64 - lead - trail;
                (b.read(len)? & low_mask(len)) << trail
            };
            prev ^= x;
        }
        out.push(f64::from_bits(prev));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(values, &mut out);
        let mut got = Vec::new();
        let mut r = Reader::new(&out);
        decode(&mut r, values.len(), &mut got).unwrap();
        let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        let got: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
        out
    }

    #[test]
    fn special_values_round_trip_exactly() {
        let specials = [
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            0.1 + 0.2,
            1e300,
            -1e-300,
        ];
        round_trip(&specials);
        for &s in &specials {
            let mut v: Vec<f64> = (0..100).map(|i| i as f64 * 0.25).collect();
            v[37] = s;
            round_trip(&v);
        }
    }

    #[test]
    fn decimal_walks_use_the_decimal_path() {
        let mut state = 50.0f64;
        let mut x = 7u64;
        let values: Vec<f64> = (0..8640)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                state = (state + ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 3.0).clamp(0.0, 100.0);
                (state * 100.0).round() / 100.0
            })
            .collect();
        let out = round_trip(&values);
        assert_eq!(out[0], DECIMAL);
        assert_eq!(out[1], 2, "scale");
    }

    #[test]
    fn random_bits_fall_back_to_gorilla() {
        let mut x = 3u64;
        let values: Vec<f64> = (0..500)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                f64::from_bits(x >> 2)
            })
            .collect();
        assert_eq!(round_trip(&values)[0], GORILLA);
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]

        #[test]
        fn any_bits_round_trip(bits in prop::collection::vec(any::<u64>(), 0..200)) {
            let values: Vec<f64> = bits.into_iter().map(f64::from_bits).collect();
            round_trip(&values);
        }

        #[test]
        fn decimals_round_trip(cents in prop::collection::vec(-10_000_000i64..10_000_000, 1..500), scale in 0usize..6) {
            let values: Vec<f64> = cents.iter().map(|&c| c as f64 / POW10[scale]).collect();
            round_trip(&values);
        }

        #[test]
        fn mixed_specials_round_trip(
            base in prop::collection::vec(-1000i64..1000, 1..300),
            specials in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 5e-324, 2.2250738585072014e-308, f64::MAX])), 0..20),
        ) {
            let mut values: Vec<f64> = base.iter().map(|&c| c as f64 / 10.0).collect();
            for (idx, s) in specials {
                let i = idx.index(values.len());
                values[i] = s;
            }
            round_trip(&values);
        }
    }
}
