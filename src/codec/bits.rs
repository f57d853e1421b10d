//! Bit-granular writer and reader, least significant bit first, in 64-bit words.

use super::DecodeError;

/// Packs values of 0..=64 bits each.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    pub(crate) fn new() -> BitWriter {
        BitWriter::default()
    }

    /// Appends the low `nbits` bits of `value` (`nbits <= 64`; higher bits must be zero).
    #[inline]
    pub(crate) fn write(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64);
        debug_assert!(nbits == 64 || value >> nbits == 0);
        if nbits == 0 {
            return;
        }
        self.acc |= value << self.filled;
        let total = self.filled + nbits;
        if total >= 64 {
            self.bytes.extend_from_slice(&self.acc.to_le_bytes());
            let consumed = 64 - self.filled;
            self.acc = if consumed == 64 { 0 } else { value >> consumed };
            self.filled = total - 64;
        } else {
            self.filled = total;
        }
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write(bit as u64, 1);
    }

    /// Writes `v >= 1` as an Elias-gamma-like code: (bits - 1) ones, a zero, then the low
    /// (bits - 1) bits of `v`.
    pub(crate) fn write_gamma(&mut self, v: u64) {
        debug_assert!(v >= 1);
        let n = 64 - v.leading_zeros();
        for _ in 1..n {
            self.write_bit(true);
        }
        self.write_bit(false);
        self.write(v & low_mask(n - 1), n - 1);
    }

    /// Number of bits written so far.
    pub(crate) fn bit_len(&self) -> u64 {
        self.bytes.len() as u64 * 8 + self.filled as u64
    }

    /// Pads to a byte boundary and returns the bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let tail = self.filled.div_ceil(8) as usize;
        self.bytes.extend_from_slice(&self.acc.to_le_bytes()[..tail]);
        self.bytes
    }
}

#[inline]
pub(crate) fn low_mask(nbits: u32) -> u64 {
    if nbits >= 64 { u64::MAX } else { (1u64 << nbits) - 1 }
}

/// Reads what [`BitWriter`] wrote; running past the end is an error.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next byte to load into `acc`.
    next: usize,
    acc: u64,
    available: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader {
            bytes,
            next: 0,
            acc: 0,
            available: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        if self.next + 8 <= self.bytes.len() && self.available == 0 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.bytes[self.next..self.next + 8]);
            self.acc = u64::from_le_bytes(w);
            self.next += 8;
            self.available = 64;
            return;
        }
        while self.available <= 56 && self.next < self.bytes.len() {
            self.acc |= (self.bytes[self.next] as u64) << self.available;
            self.next += 1;
            self.available += 8;
        }
    }

    /// Reads `nbits <= 64` bits.
    #[inline]
    pub(crate) fn read(&mut self, nbits: u32) -> Result<u64, DecodeError> {
        debug_assert!(nbits <= 64);
        if nbits == 0 {
            return Ok(0);
        }
        if nbits <= self.available {
            let v = self.acc & low_mask(nbits);
            self.acc = if nbits == 64 { 0 } else { self.acc >> nbits };
            self.available -= nbits;
            return Ok(v);
        }
        // Take what is buffered, then the rest after a refill.
        let low_bits = self.available;
        let low = self.acc & low_mask(low_bits);
        self.acc = 0;
        self.available = 0;
        self.refill();
        let rest = nbits - low_bits;
        if rest > self.available {
            return Err(DecodeError("bit stream ends early"));
        }
        let high = self.acc & low_mask(rest);
        self.acc = if rest == 64 { 0 } else { self.acc >> rest };
        self.available -= rest;
        Ok(low | (high << low_bits))
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read(1)? == 1)
    }

    /// Reads a value written by [`BitWriter::write_gamma`].
    pub(crate) fn read_gamma(&mut self) -> Result<u64, DecodeError> {
        let mut n = 1u32;
        while self.read_bit()? {
            n += 1;
            if n > 64 {
                return Err(DecodeError("gamma code too long"));
            }
        }
        Ok((1u64 << (n - 1)) | self.read(n - 1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_at_every_width() {
        let mut w = BitWriter::new();
        let mut expect = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..2000u32 {
            let n = i % 65;
            x = x.rotate_left(17).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let v = x & low_mask(n);
            w.write(v, n);
            expect.push((v, n));
            if i % 7 == 0 {
                w.write_gamma(v | 1);
                expect.push((v | 1, 99));
            }
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for (v, n) in expect {
            if n == 99 {
                assert_eq!(r.read_gamma().unwrap(), v);
            } else {
                assert_eq!(r.read(n).unwrap(), v, "width {n}");
            }
        }
        assert!(r.read(64).is_err() || r.read(64).is_err());
    }

    #[test]
    fn reading_past_the_end_fails() {
        let mut w = BitWriter::new();
        w.write(5, 3);
        let bytes = w.finish();
        assert_eq!(bytes.len(), 1);
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read(3).unwrap(), 5);
        assert!(r.read(6).is_err());
    }
}
