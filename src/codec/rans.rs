//! Entropy coding of unsigned integers: each value is split into a *bin* symbol, coded with
//! a static rANS model whose frequencies travel in the stream, and *offset* bits stored raw.
//!
//! Bins: values 0..8 are their own symbol; a larger value with highest set bit `k` falls in
//! one of four bins per octave chosen by the two bits below the highest one, and keeps its
//! remaining `k - 2` bits raw. For smooth distributions (random-walk deltas, timestamps
//! jitter) the density within a bin is close to flat, so the raw bits lose almost nothing
//! and the symbol alphabet stays small (at most 252 symbols).
//!
//! rANS: 32-bit state, byte-wise renormalisation (`L = 2^23`), frequencies quantised to
//! `2^scale_bits` with `scale_bits` chosen per stream to minimise table + payload size.

use super::DecodeError;
use super::bits::{BitReader, BitWriter, low_mask};
use super::bytes::{Reader, put_bytes};

const RANS_L: u32 = 1 << 23;
const MAX_SCALE_BITS: u32 = 12;
/// Number of distinct bin symbols.
pub(crate) const SYMBOLS: usize = 252;
const DIRECT: u64 = 8;

/// The bin symbol of a value.
#[inline]
pub(crate) fn bin_of(v: u64) -> u8 {
    if v < DIRECT {
        return v as u8;
    }
    let k = 63 - v.leading_zeros();
    let sub = (v >> (k - 2)) & 3;
    (8 + (k - 3) * 4 + sub as u32) as u8
}

/// (smallest value, raw offset bits) of a bin symbol.
#[inline]
pub(crate) const fn bin_range(sym: u8) -> (u64, u32) {
    if (sym as u64) < DIRECT {
        return (sym as u64, 0);
    }
    let s = sym as u32 - 8;
    let k = s / 4 + 3;
    let sub = (s % 4) as u64;
    ((1u64 << k) | (sub << (k - 2)), k - 2)
}

/// [`bin_range`] of every symbol.
static BINS: [(u64, u32); SYMBOLS] = {
    let mut bins = [(0u64, 0u32); SYMBOLS];
    let mut s = 0;
    while s < SYMBOLS {
        bins[s] = bin_range(s as u8);
        s += 1;
    }
    bins
};

/// Estimated size in bits of coding `values` with bins (entropy of the symbols plus raw
/// bits, without the table). Used to choose between transforms before encoding.
pub(crate) fn estimate_bits(values: impl Iterator<Item = u64>) -> f64 {
    let mut counts = [0u32; SYMBOLS];
    let mut raw_bits = 0u64;
    let mut n = 0u64;
    for v in values {
        let s = bin_of(v);
        counts[s as usize] += 1;
        raw_bits += bin_range(s).1 as u64;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let total = n as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 * (total / c as f64).log2())
        .sum();
    entropy + raw_bits as f64 + counts.iter().filter(|&&c| c > 0).count() as f64 * 10.0
}

/// A quantised frequency model.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    /// 0 means a single symbol with probability 1 (nothing is coded).
    scale_bits: u32,
    /// Present symbols, ascending.
    symbols: Vec<u8>,
    /// Frequencies of `symbols`, summing to `1 << scale_bits` (or `[1]` for one symbol).
    freqs: Vec<u32>,
}

impl Model {
    fn normalize(counts: &[u32; SYMBOLS], total: u64, scale_bits: u32) -> Model {
        let symbols: Vec<u8> = (0..SYMBOLS).filter(|&s| counts[s] > 0).map(|s| s as u8).collect();
        let m = 1u64 << scale_bits;
        let mut freqs: Vec<u32> = symbols
            .iter()
            .map(|&s| ((counts[s as usize] as u64 * m / total) as u32).max(1))
            .collect();
        let sum: u64 = freqs.iter().map(|&f| f as u64).sum();
        // Rounding leaves the sum off by at most one per symbol. The most frequent symbols
        // absorb the difference: their relative change, and so the cost, is smallest.
        let mut order: Vec<usize> = (0..symbols.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(counts[symbols[i] as usize]));
        if sum < m {
            freqs[order[0]] += (m - sum) as u32;
        } else {
            let mut excess = sum - m;
            while excess > 0 {
                let before = excess;
                for &i in &order {
                    if excess == 0 {
                        break;
                    }
                    if freqs[i] > 1 {
                        freqs[i] -= 1;
                        excess -= 1;
                    }
                }
                // Some frequency above 1 exists whenever the sum exceeds the number of
                // symbols, which `2^scale_bits >= symbols` guarantees.
                if excess == before {
                    break;
                }
            }
        }
        Model {
            scale_bits,
            symbols,
            freqs,
        }
    }

    fn cost_bits(&self, counts: &[u32; SYMBOLS]) -> f64 {
        let payload: f64 = self
            .symbols
            .iter()
            .zip(&self.freqs)
            .map(|(&s, &f)| counts[s as usize] as f64 * (self.scale_bits as f64 - (f as f64).log2()))
            .sum();
        payload + self.table_bits() as f64
    }

    fn table_bits(&self) -> u64 {
        let mut w = BitWriter::new();
        self.write(&mut w);
        w.bit_len()
    }

    fn write(&self, w: &mut BitWriter) {
        w.write(self.scale_bits as u64, 4);
        if self.scale_bits == 0 {
            w.write(self.symbols[0] as u64, 8);
            return;
        }
        w.write(self.symbols.len() as u64 - 1, 8);
        w.write(self.symbols[0] as u64, 8);
        for pair in self.symbols.windows(2) {
            w.write_gamma((pair[1] - pair[0]) as u64);
        }
        let mut remaining = 1u64 << self.scale_bits;
        let n = self.freqs.len();
        for (i, &f) in self.freqs[..n - 1].iter().enumerate() {
            let most = remaining - (n - 1 - i) as u64;
            w.write(f as u64 - 1, bit_width(most - 1));
            remaining -= f as u64;
        }
    }

    fn read(r: &mut BitReader<'_>) -> Result<Model, DecodeError> {
        let scale_bits = r.read(4)? as u32;
        if scale_bits == 0 {
            let sym = r.read(8)? as u8;
            if sym as usize >= SYMBOLS {
                return Err(DecodeError("bin symbol out of range"));
            }
            return Ok(Model {
                scale_bits: 0,
                symbols: vec![sym],
                freqs: vec![1],
            });
        }
        if scale_bits > MAX_SCALE_BITS {
            return Err(DecodeError("rANS scale too large"));
        }
        let n = r.read(8)? as usize + 1;
        if n > (1usize << scale_bits) || n < 2 {
            return Err(DecodeError("rANS symbol count invalid"));
        }
        let mut symbols = Vec::with_capacity(n);
        let mut s = r.read(8)?;
        symbols.push(s);
        for _ in 1..n {
            s += r.read_gamma()?;
            if s >= SYMBOLS as u64 {
                return Err(DecodeError("bin symbol out of range"));
            }
            symbols.push(s);
        }
        let mut freqs = Vec::with_capacity(n);
        let mut remaining = 1u64 << scale_bits;
        for i in 0..n - 1 {
            let most = remaining - (n - 1 - i) as u64;
            let f = r.read(bit_width(most - 1))? + 1;
            if f > most {
                return Err(DecodeError("rANS frequency too large"));
            }
            freqs.push(f as u32);
            remaining -= f;
        }
        freqs.push(remaining as u32);
        Ok(Model {
            scale_bits,
            symbols: symbols.into_iter().map(|s| s as u8).collect(),
            freqs,
        })
    }
}

/// Bits needed to write any value in `0..=max`.
fn bit_width(max: u64) -> u32 {
    64 - max.leading_zeros()
}

/// How many rANS states a stream interleaves. Value `i` is coded by state `i % lanes`, so a
/// decoder steps independent states in turn and each step's latency overlaps the others'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lanes {
    /// One state (every stream of segment versions 1 to 3).
    One,
    /// Two states (segment version 4 and later, for long streams).
    Two,
}

/// Appends `values` coded with bins + rANS. The count is not stored: the caller knows it,
/// and records `lanes` where the decoder can find it.
///
/// Layout: `model_len` varint, model bits; `rans_len` varint, rANS bytes (each lane's final
/// state as u32 LE, lane 0 first, then the renormalisation bytes); `raw_len` varint, raw
/// offset bits.
pub(crate) fn encode(values: &[u64], lanes: Lanes, out: &mut Vec<u8>) {
    let mut counts = [0u32; SYMBOLS];
    let mut syms = Vec::with_capacity(values.len());
    for &v in values {
        let s = bin_of(v);
        counts[s as usize] += 1;
        syms.push(s);
    }
    let model = choose_model(&counts, values.len() as u64);

    let mut model_bits = BitWriter::new();
    model.write(&mut model_bits);
    put_bytes(out, &model_bits.finish());

    let rans = if model.scale_bits == 0 || values.is_empty() {
        Vec::new()
    } else {
        match lanes {
            Lanes::One => rans_encode::<1>(&syms, &model),
            Lanes::Two => rans_encode::<2>(&syms, &model),
        }
    };
    put_bytes(out, &rans);

    let mut raw = BitWriter::new();
    for (&v, &s) in values.iter().zip(&syms) {
        let (base, nbits) = bin_range(s);
        raw.write(v - base, nbits);
    }
    put_bytes(out, &raw.finish());
}

fn choose_model(counts: &[u32; SYMBOLS], total: u64) -> Model {
    let present = counts.iter().filter(|&&c| c > 0).count();
    if present <= 1 {
        let sym = counts.iter().position(|&c| c > 0).unwrap_or(0) as u8;
        return Model {
            scale_bits: 0,
            symbols: vec![sym],
            freqs: vec![1],
        };
    }
    let min_bits = bit_width(present as u64 - 1).max(1);
    let mut best: Option<(f64, Model)> = None;
    for scale_bits in min_bits..=MAX_SCALE_BITS {
        let model = Model::normalize(counts, total, scale_bits);
        let cost = model.cost_bits(counts);
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, model));
        }
        if (1u64 << scale_bits) >= total * 2 {
            break;
        }
    }
    // `best` is set: the loop runs at least once because min_bits <= 8 < MAX_SCALE_BITS.
    best.map(|(_, m)| m)
        .unwrap_or_else(|| Model::normalize(counts, total, MAX_SCALE_BITS))
}

/// The rANS bytes of `syms` with `LANES` interleaved states. Encoding runs backwards, so
/// the decoder reads the bytes forwards in exactly the reverse order of their writing.
fn rans_encode<const LANES: usize>(syms: &[u8], model: &Model) -> Vec<u8> {
    let mut freq = [0u32; SYMBOLS];
    let mut cum = [0u32; SYMBOLS];
    let mut c = 0;
    for (&s, &f) in model.symbols.iter().zip(&model.freqs) {
        freq[s as usize] = f;
        cum[s as usize] = c;
        c += f;
    }
    let scale = model.scale_bits;
    let mut out = Vec::with_capacity(syms.len() + 8);
    let mut states = [RANS_L; LANES];
    for (i, &s) in syms.iter().enumerate().rev() {
        let x = &mut states[i % LANES];
        let f = freq[s as usize];
        let x_max = ((RANS_L >> scale) << 8) * f;
        while *x >= x_max {
            out.push(*x as u8);
            *x >>= 8;
        }
        *x = ((*x / f) << scale) + (*x % f) + cum[s as usize];
    }
    // Reversed below: lane 0's state comes first, each little-endian.
    for x in states.iter().rev() {
        out.extend_from_slice(&x.to_be_bytes());
    }
    out.reverse();
    out
}

/// Decodes `n` values written by [`encode`] with `lanes`, appending them to `out`.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, lanes: Lanes, out: &mut Vec<u64>) -> Result<(), DecodeError> {
    let start = out.len();
    out.resize(start + n, 0);
    decode_into(r, lanes, &mut out[start..], |v| v)
}

/// Decodes `dst.len()` values written by [`encode`], storing `map(value)` in each slot in
/// order. Callers fold their own transform (differences to values, scaling) into `map`, so
/// a column is decoded in one pass with no buffer between the steps.
#[inline]
pub(crate) fn decode_into<T>(r: &mut Reader<'_>, lanes: Lanes, dst: &mut [T], map: impl FnMut(u64) -> T) -> Result<(), DecodeError> {
    match lanes {
        Lanes::One => decode_lanes::<1, T>(r, dst, map),
        Lanes::Two => decode_lanes::<2, T>(r, dst, map),
    }
}

/// [`decode_into`] for a stream of `LANES` interleaved states.
#[inline]
fn decode_lanes<const LANES: usize, T>(r: &mut Reader<'_>, dst: &mut [T], mut map: impl FnMut(u64) -> T) -> Result<(), DecodeError> {
    let model = Model::read(&mut BitReader::new(r.prefixed()?))?;
    let rans = r.prefixed()?;
    let mut raw = RawBits::new(r.prefixed()?);
    if model.scale_bits == 0 {
        if !rans.is_empty() {
            return Err(DecodeError("unexpected rANS bytes for a single symbol"));
        }
        let (base, nbits) = bin_range(model.symbols[0]);
        for slot in dst.iter_mut() {
            *slot = map(base | raw.take(nbits)?);
        }
        return Ok(());
    }
    if dst.is_empty() {
        return Ok(());
    }
    let scale = model.scale_bits;
    let mask = (1u32 << scale) - 1;
    // One packed entry per slot with what a step needs (frequency, offset in the symbol's
    // range, symbol), so the state's chain of dependent loads is one load long. With at
    // least two symbols every frequency is below 2^12, and so is every offset.
    let mut slots = vec![0u32; 1 << scale];
    let mut c = 0u32;
    for (&s, &f) in model.symbols.iter().zip(&model.freqs) {
        for (bias, slot) in slots[c as usize..(c + f) as usize].iter_mut().enumerate() {
            *slot = f | (bias as u32) << 12 | (s as u32) << 24;
        }
        c += f;
    }
    let mut input = Reader::new(rans);
    let mut states = [0u32; LANES];
    for x in states.iter_mut() {
        *x = input.u32_le()?;
        if !(RANS_L..RANS_L << 8).contains(x) {
            return Err(DecodeError("rANS state out of range"));
        }
    }
    let bytes = input.bytes(input.remaining())?;
    let mut pos = 0usize;
    // One step of a state: the slot names the symbol and the state's next value, then up to
    // two bytes refill it (a step shrinks it by at most `scale` <= 12 bits). A macro rather
    // than a closure, so each lane's state stays a register of its own.
    macro_rules! step {
        ($x:ident) => {{
            let slot = slots[($x & mask) as usize];
            $x = (slot & 0xfff) * ($x >> scale) + ((slot >> 12) & 0xfff);
            if $x < RANS_L {
                let (b0, b1) = match bytes.get(pos..pos + 2) {
                    Some(two) => (two[0] as u32, two[1] as u32),
                    None => (next_byte(bytes, pos)?, next_byte(bytes, pos + 1).unwrap_or(0)),
                };
                $x = ($x << 8) | b0;
                pos += 1;
                if $x < RANS_L {
                    // Only now is the second byte known to be part of the stream.
                    next_byte(bytes, pos)?;
                    $x = ($x << 8) | b1;
                    pos += 1;
                }
            }
            let (base, nbits) = BINS[(slot >> 24) as usize];
            map(base | raw.take(nbits)?)
        }};
    }
    let mut x0 = states[0];
    if LANES == 1 {
        for out in dst.iter_mut() {
            *out = step!(x0);
        }
        states[0] = x0;
    } else {
        let mut x1 = states[1];
        let mut pairs = dst.chunks_exact_mut(2);
        for pair in &mut pairs {
            pair[0] = step!(x0);
            pair[1] = step!(x1);
        }
        if let [last] = pairs.into_remainder() {
            *last = step!(x0);
        }
        states[0] = x0;
        states[1] = x1;
    }
    if states.iter().any(|&x| x != RANS_L) || pos != bytes.len() {
        return Err(DecodeError("rANS stream does not end in its initial state"));
    }
    Ok(())
}

/// The rANS byte at `pos`, or the error of a stream that ends early.
#[inline]
fn next_byte(bytes: &[u8], pos: usize) -> Result<u32, DecodeError> {
    bytes.get(pos).map(|&b| b as u32).ok_or(DecodeError("unexpected end of data"))
}

/// The raw offset bits, read least significant first and refilled a word at a time.
///
/// Bits of `buffer` above `count` are either zero or the stream's next bits, so a refill
/// may OR a whole word in at `count` even where it overlaps bits already there.
#[derive(Clone, Copy)]
struct RawBits<'a> {
    bytes: &'a [u8],
    pos: usize,
    buffer: u64,
    count: u32,
}

impl<'a> RawBits<'a> {
    fn new(bytes: &'a [u8]) -> RawBits<'a> {
        RawBits {
            bytes,
            pos: 0,
            buffer: 0,
            count: 0,
        }
    }

    /// Takes `nbits` (at most 61) bits.
    #[inline(always)]
    fn take(&mut self, nbits: u32) -> Result<u64, DecodeError> {
        if self.count < nbits {
            if let Some(word) = self.bytes.get(self.pos..self.pos + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                // count < nbits <= 61, so the shift is defined; the whole bytes that fit
                // above the buffered bits are now counted.
                self.buffer |= u64::from_le_bytes(w) << self.count;
                self.pos += ((63 - self.count) / 8) as usize;
                self.count |= 56;
            }
            if self.count < nbits {
                // The copy keeps `self` out of memory in the caller's loop.
                let (rest, v) = self.take_slow(nbits)?;
                *self = rest;
                return Ok(v);
            }
        }
        // nbits <= count < 64 here, so the shifts are defined.
        let v = self.buffer & ((1u64 << nbits) - 1);
        self.buffer >>= nbits;
        self.count -= nbits;
        Ok(v)
    }

    /// Takes bits near the end of the stream, or more than one refill holds.
    #[cold]
    #[inline(never)]
    fn take_slow(mut self, nbits: u32) -> Result<(RawBits<'a>, u64), DecodeError> {
        if nbits > 56 {
            // A refill guarantees 56 bits; wider offsets (huge values) come in two reads.
            let (rest, low) = self.take_slow(32)?;
            let (rest, high) = rest.take_slow(nbits - 32)?;
            return Ok((rest, low | (high << 32)));
        }
        if self.count < nbits {
            // Drop any overlapping bits above `count` so bytes can be ORed in one by one.
            self.buffer &= low_mask(self.count);
            if let Some(word) = self.bytes.get(self.pos..self.pos + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                let take = (63 - self.count) / 8;
                self.buffer |= (u64::from_le_bytes(w) & low_mask(take * 8)) << self.count;
                self.pos += take as usize;
                self.count += take * 8;
            } else {
                while self.count <= 56 && self.pos < self.bytes.len() {
                    self.buffer |= (self.bytes[self.pos] as u64) << self.count;
                    self.pos += 1;
                    self.count += 8;
                }
            }
            if self.count < nbits {
                return Err(DecodeError("raw bits end early"));
            }
        }
        let v = self.buffer & low_mask(nbits);
        self.buffer >>= nbits;
        self.count -= nbits;
        Ok((self, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round-trips `values` with each number of lanes; the size with one lane.
    fn round_trip(values: &[u64]) -> usize {
        let mut sizes = Vec::new();
        for lanes in [Lanes::One, Lanes::Two] {
            let mut out = Vec::new();
            encode(values, lanes, &mut out);
            let mut got = Vec::new();
            let mut r = Reader::new(&out);
            decode(&mut r, values.len(), lanes, &mut got).unwrap();
            assert!(r.is_empty());
            assert_eq!(got, values, "{lanes:?}");
            sizes.push(out.len());
        }
        sizes[0]
    }

    #[test]
    fn two_lanes_cost_about_one_more_state_and_read_back_only_as_two() {
        for n in [2usize, 3, 4, 5, 255, 256, 257, 2160] {
            let vals: Vec<u64> = (0..n as u64).map(|i| (i * 7919) % 300).collect();
            let (mut one, mut two) = (Vec::new(), Vec::new());
            encode(&vals, Lanes::One, &mut one);
            encode(&vals, Lanes::Two, &mut two);
            // The second lane's final state is the extra, give or take where each lane's
            // renormalisation bytes fall.
            assert!(
                two.len().abs_diff(one.len() + 4) <= 2,
                "{n} values: {} and {}",
                one.len(),
                two.len()
            );
            let mut got = Vec::new();
            decode(&mut Reader::new(&two), n, Lanes::Two, &mut got).unwrap();
            assert_eq!(got, vals);
            // Read with the wrong number of lanes, the stream is refused or reads otherwise.
            let mut wrong = Vec::new();
            let read = decode(&mut Reader::new(&two), n, Lanes::One, &mut wrong);
            assert!(read.is_err() || wrong != vals, "{n} values");
        }
    }

    #[test]
    fn bins_cover_every_value_once() {
        for v in (0..4096u64).chain([u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1]) {
            let s = bin_of(v);
            let (base, nbits) = bin_range(s);
            assert!(v >= base && v - base <= low_mask(nbits), "{v}");
            assert!((s as usize) < SYMBOLS);
        }
        assert_eq!(bin_of(u64::MAX) as usize, SYMBOLS - 1);
    }

    #[test]
    fn round_trips() {
        round_trip(&[]);
        round_trip(&[0]);
        round_trip(&[5; 100]);
        round_trip(&[u64::MAX, 0, u64::MAX, 1]);
        let mut x = 12345u64;
        let vals: Vec<u64> = (0..10_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 33) % 700
            })
            .collect();
        round_trip(&vals);
    }

    #[test]
    fn compresses_close_to_entropy() {
        // A geometric-ish source: most mass on small values.
        let mut x = 99u64;
        let vals: Vec<u64> = (0..50_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 40) as u32).trailing_zeros() as u64
            })
            .collect();
        let bytes = round_trip(&vals);
        // Entropy of a geometric(1/2) source is 2 bits per value.
        assert!(bytes as f64 * 8.0 / vals.len() as f64 <= 2.05, "{bytes}");
    }

    #[test]
    fn truncated_or_garbled_input_is_an_error() {
        let vals: Vec<u64> = (0..1000).map(|i| (i * 7919) % 300).collect();
        for lanes in [Lanes::One, Lanes::Two] {
            let mut out = Vec::new();
            encode(&vals, lanes, &mut out);
            for cut in 0..out.len() {
                let mut got = Vec::new();
                assert!(decode(&mut Reader::new(&out[..cut]), vals.len(), lanes, &mut got).is_err());
            }
        }
    }
}
