//! Column codecs: how sequences of timestamps, integers, floats, booleans and strings
//! become bytes and back.
//!
//! Every decoder takes untrusted bytes and the expected count, and returns an error (never
//! panics, never allocates without bound) when the bytes do not decode to exactly that many
//! values. Each encoding starts with a one-byte scheme tag, so new schemes can be added
//! without a format break. The byte layouts are in `docs/FORMAT.md`.

pub(crate) mod bits;
pub(crate) mod bools;
pub(crate) mod bytes;
pub(crate) mod floats;
pub(crate) mod ints;
pub(crate) mod pages;
pub(crate) mod rans;
pub(crate) mod strings;

use crate::chunk::ColumnValues;
use crate::model::ValueType;
use bytes::Reader;

/// Why bytes did not decode. Callers attach the file and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Appends the encoding of dense `values`.
pub(crate) fn encode_values(values: &ColumnValues, zstd_level: i32, out: &mut Vec<u8>) {
    match values {
        ColumnValues::F64(v) => floats::encode(v, out),
        ColumnValues::I64(v) => ints::encode(v, out),
        ColumnValues::Bool(v) => bools::encode(v, out),
        ColumnValues::Str(v) => {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            strings::encode(&refs, zstd_level, out)
        }
        ColumnValues::Bytes(v) => {
            let refs: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
            strings::encode_bytes(&refs, zstd_level, out)
        }
    }
}

/// [`decode_values`], except that string and byte-string values `keep` does not mark
/// (by position among the `n`) come back empty. Other types decode whole.
pub(crate) fn decode_values_selected(
    value_type: ValueType,
    input: &[u8],
    n: usize,
    keep: Option<&[bool]>,
) -> Result<ColumnValues, DecodeError> {
    let Some(keep) = keep else {
        return decode_values(value_type, input, n);
    };
    let mut r = Reader::new(input);
    let values = match value_type {
        ValueType::Str => {
            let mut v = Vec::new();
            strings::decode_selected(&mut r, n, keep, &mut v)?;
            ColumnValues::Str(v)
        }
        ValueType::Bytes => {
            let mut v = Vec::new();
            strings::decode_bytes_selected(&mut r, n, keep, &mut v)?;
            ColumnValues::Bytes(v)
        }
        _ => return decode_values(value_type, input, n),
    };
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after column values"));
    }
    if values.len() != n {
        return Err(DecodeError("column has the wrong number of values"));
    }
    Ok(values)
}

/// Decodes exactly `n` dense values of `value_type`; the whole input must be consumed.
pub(crate) fn decode_values(value_type: ValueType, input: &[u8], n: usize) -> Result<ColumnValues, DecodeError> {
    let mut r = Reader::new(input);
    let values = match value_type {
        ValueType::F64 => {
            let mut v = Vec::new();
            floats::decode(&mut r, n, &mut v)?;
            ColumnValues::F64(v)
        }
        ValueType::I64 => {
            let mut v = Vec::new();
            ints::decode(&mut r, n, &mut v)?;
            ColumnValues::I64(v)
        }
        ValueType::Bool => {
            let mut v = Vec::new();
            bools::decode(&mut r, n, &mut v)?;
            ColumnValues::Bool(v)
        }
        ValueType::Str => {
            let mut v = Vec::new();
            strings::decode(&mut r, n, &mut v)?;
            ColumnValues::Str(v)
        }
        ValueType::Bytes => {
            let mut v = Vec::new();
            strings::decode_bytes(&mut r, n, &mut v)?;
            ColumnValues::Bytes(v)
        }
    };
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after column values"));
    }
    if values.len() != n {
        return Err(DecodeError("column has the wrong number of values"));
    }
    Ok(values)
}

#[cfg(test)]
pub(crate) mod tests {
    /// Seeded proptest configuration: `ANNALS_TEST_SEED` overrides the fixed default, and
    /// `PROPTEST_CASES` the number of cases. A failure prints the minimal input; rerun with
    /// the same seed to reproduce it.
    pub(crate) fn proptest_config() -> proptest::test_runner::Config {
        let seed = crate::test_seed();
        proptest::test_runner::Config {
            rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        }
    }
}
