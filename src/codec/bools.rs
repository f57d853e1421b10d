//! Boolean sequences (boolean fields and validity masks of sparse columns): constant, a
//! packed bitmap, or run lengths, whichever is smallest.

use super::bytes::{Reader, put_varint};
use super::{DecodeError, rans};

const CONSTANT: u8 = 1;
const BITMAP: u8 = 2;
const RUNS: u8 = 3;

/// Appends an encoding of `values` (their count is not stored).
pub(crate) fn encode(values: &[bool], out: &mut Vec<u8>) {
    let first = values.first().copied().unwrap_or(false);
    let mut runs = Vec::new();
    let mut run = 0u64;
    for &v in values {
        if v == (runs.len() % 2 == 1) ^ first {
            run += 1;
        } else {
            runs.push(run);
            run = 1;
        }
    }
    runs.push(run);
    if runs.len() == 1 {
        out.push(CONSTANT);
        out.push(first as u8);
        return;
    }
    // The last run is implied by the count.
    runs.pop();
    let mut coded = Vec::new();
    put_varint(&mut coded, runs.len() as u64);
    rans::encode(&runs.iter().map(|r| r - 1).collect::<Vec<_>>(), rans::Lanes::One, &mut coded);
    if coded.len() < values.len().div_ceil(8) {
        out.push(RUNS);
        out.push(first as u8);
        out.extend_from_slice(&coded);
    } else {
        out.push(BITMAP);
        let mut byte = 0u8;
        for (i, &v) in values.iter().enumerate() {
            byte |= (v as u8) << (i % 8);
            if i % 8 == 7 {
                out.push(byte);
                byte = 0;
            }
        }
        if !values.len().is_multiple_of(8) {
            out.push(byte);
        }
    }
}

/// Decodes `n` values, appending them to `out`.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<bool>) -> Result<(), DecodeError> {
    let start = out.len();
    match r.u8()? {
        CONSTANT => {
            let v = flag(r.u8()?)?;
            out.resize(start + n, v);
        }
        BITMAP => {
            let bytes = r.bytes(n.div_ceil(8))?;
            out.extend((0..n).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1));
        }
        RUNS => {
            let mut v = flag(r.u8()?)?;
            let count = r.len(n)?;
            let mut runs = Vec::new();
            rans::decode(r, count, rans::Lanes::One, &mut runs)?;
            let mut used = 0usize;
            for run in runs {
                let len = usize::try_from(run)
                    .ok()
                    .and_then(|l| l.checked_add(1))
                    .ok_or(DecodeError("run too long"))?;
                used = used
                    .checked_add(len)
                    .filter(|&u| u < n)
                    .ok_or(DecodeError("runs exceed the count"))?;
                out.extend(std::iter::repeat_n(v, len));
                v = !v;
            }
            out.extend(std::iter::repeat_n(v, n - used));
        }
        _ => return Err(DecodeError("unknown boolean encoding")),
    }
    Ok(())
}

fn flag(b: u8) -> Result<bool, DecodeError> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError("boolean byte is neither 0 nor 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[bool]) -> usize {
        let mut out = Vec::new();
        encode(values, &mut out);
        let mut got = Vec::new();
        let mut r = Reader::new(&out);
        decode(&mut r, values.len(), &mut got).unwrap();
        assert!(r.is_empty());
        assert_eq!(got, values);
        out.len()
    }

    #[test]
    fn shapes() {
        round_trip(&[]);
        assert_eq!(round_trip(&[true; 1000]), 2);
        let sparse: Vec<bool> = (0..10_000).map(|i| i % 1000 == 0).collect();
        assert!(round_trip(&sparse) < 60);
        let alternating: Vec<bool> = (0..999).map(|i| i % 2 == 0).collect();
        assert!(round_trip(&alternating) <= 1 + 125);
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]
        #[test]
        fn any_bools_round_trip(values in prop::collection::vec(any::<bool>(), 0..500)) {
            round_trip(&values);
        }
        #[test]
        fn runs_round_trip(runs in prop::collection::vec(1usize..300, 0..30)) {
            let values: Vec<bool> = runs.iter().enumerate().flat_map(|(i, &r)| std::iter::repeat_n(i % 2 == 0, r)).collect();
            round_trip(&values);
        }
    }
}
