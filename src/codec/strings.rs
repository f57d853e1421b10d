//! String and byte-string sequences: a dictionary when values repeat (hostnames, states,
//! function names), otherwise the concatenated text compressed with zstd (log messages,
//! diffs). Strings and byte strings share the layout; strings are checked to be UTF-8.
//!
//! Layout of a text section: lengths through [`ints`], then a flag (0 raw, 1 zstd), the raw
//! length, and the bytes (zstd frame or raw).

use super::bytes::{Reader, put_bytes, put_varint};
use super::{DecodeError, ints};
use rustc_hash::FxHashMap;

const DICTIONARY: u8 = 1;
const PLAIN: u8 = 2;

/// Bound on the decompressed text of one section, so corrupt lengths cannot make the
/// decoder allocate without limit.
pub(crate) const MAX_SECTION_BYTES: usize = 1 << 30;

/// Appends an encoding of `values` (their count is not stored).
pub(crate) fn encode(values: &[&str], zstd_level: i32, out: &mut Vec<u8>) {
    let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    encode_bytes(&bytes, zstd_level, out);
}

/// Appends an encoding of byte strings `values` (their count is not stored).
pub(crate) fn encode_bytes(values: &[&[u8]], zstd_level: i32, out: &mut Vec<u8>) {
    let mut index: FxHashMap<&[u8], i64> = FxHashMap::default();
    let mut ids = Vec::with_capacity(values.len());
    let mut dictionary = Vec::new();
    for &v in values {
        let next = dictionary.len() as i64;
        let id = *index.entry(v).or_insert_with(|| {
            dictionary.push(v);
            next
        });
        ids.push(id);
        if dictionary.len() > values.len() / 2 + 1 {
            break;
        }
    }
    if dictionary.len() <= values.len() / 2 + 1 && ids.len() == values.len() {
        out.push(DICTIONARY);
        put_varint(out, dictionary.len() as u64);
        encode_text(&dictionary, zstd_level, out);
        ints::encode(&ids, out);
    } else {
        out.push(PLAIN);
        encode_text(values, zstd_level, out);
    }
}

fn encode_text(values: &[&[u8]], zstd_level: i32, out: &mut Vec<u8>) {
    let lengths: Vec<i64> = values.iter().map(|v| v.len() as i64).collect();
    ints::encode(&lengths, out);
    let text: Vec<u8> = values.concat();
    put_varint(out, text.len() as u64);
    // Short text is not worth a zstd frame header; incompressible text is kept raw.
    if text.len() >= 64
        && let Ok(compressed) = zstd::bulk::compress(&text, zstd_level)
        && compressed.len() < text.len()
    {
        out.push(1);
        put_bytes(out, &compressed);
        return;
    }
    out.push(0);
    out.extend_from_slice(&text);
}

/// Decodes `n` values, appending them to `out`.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<String>) -> Result<(), DecodeError> {
    out.reserve(n);
    decode_with(r, n, |v| {
        let s = std::str::from_utf8(v).map_err(|_| DecodeError("string is not UTF-8"))?;
        out.push(s.to_owned());
        Ok(())
    })
}

/// Decodes `n` byte strings, appending them to `out`.
pub(crate) fn decode_bytes(r: &mut Reader<'_>, n: usize, out: &mut Vec<Vec<u8>>) -> Result<(), DecodeError> {
    out.reserve(n);
    decode_with(r, n, |v| {
        out.push(v.to_vec());
        Ok(())
    })
}

/// Decodes `n` values, handing each to `push` in order.
fn decode_with(r: &mut Reader<'_>, n: usize, mut push: impl FnMut(&[u8]) -> Result<(), DecodeError>) -> Result<(), DecodeError> {
    match r.u8()? {
        DICTIONARY => {
            let size = r.len(n)?;
            let mut dictionary: Vec<Vec<u8>> = Vec::with_capacity(size);
            decode_text(r, size, |v| {
                dictionary.push(v.to_vec());
                Ok(())
            })?;
            let mut ids = Vec::with_capacity(n);
            ints::decode(r, n, &mut ids)?;
            for id in ids {
                let v = usize::try_from(id)
                    .ok()
                    .and_then(|i| dictionary.get(i))
                    .ok_or(DecodeError("dictionary id out of range"))?;
                push(v)?;
            }
            Ok(())
        }
        PLAIN => decode_text(r, n, push),
        _ => Err(DecodeError("unknown string encoding")),
    }
}

fn decode_text(r: &mut Reader<'_>, n: usize, mut push: impl FnMut(&[u8]) -> Result<(), DecodeError>) -> Result<(), DecodeError> {
    let mut lengths = Vec::with_capacity(n);
    ints::decode(r, n, &mut lengths)?;
    let raw_len = r.len(MAX_SECTION_BYTES)?;
    let owned;
    let text: &[u8] = match r.u8()? {
        0 => r.bytes(raw_len)?,
        1 => {
            let compressed = r.prefixed()?;
            owned = zstd::bulk::decompress(compressed, raw_len).map_err(|_| DecodeError("zstd frame does not decode"))?;
            if owned.len() != raw_len {
                return Err(DecodeError("zstd frame has the wrong length"));
            }
            &owned
        }
        _ => return Err(DecodeError("unknown text compression")),
    };
    let mut at = 0usize;
    for len in lengths {
        let len = usize::try_from(len).map_err(|_| DecodeError("negative string length"))?;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= text.len())
            .ok_or(DecodeError("string lengths exceed the text"))?;
        push(&text[at..end])?;
        at = end;
    }
    if at != text.len() {
        return Err(DecodeError("text longer than its strings"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[String]) -> Vec<u8> {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        encode(&refs, 3, &mut out);
        let mut got = Vec::new();
        let mut r = Reader::new(&out);
        decode(&mut r, values.len(), &mut got).unwrap();
        assert!(r.is_empty());
        assert_eq!(got, values);
        out
    }

    #[test]
    fn repeated_values_use_a_dictionary() {
        let values: Vec<String> = (0..1000)
            .map(|i| ["raised", "acknowledged", "resolved"][i % 3].to_string())
            .collect();
        let out = round_trip(&values);
        assert_eq!(out[0], DICTIONARY);
        // Three ids cycling cost log2(3) bits each: about 200 bytes against 10 kB of text.
        assert!(out.len() < 300, "{}", out.len());
    }

    #[test]
    fn messages_are_compressed() {
        let values: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    "Receiving block blk_{} src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
                    i * 7919
                )
            })
            .collect();
        let out = round_trip(&values);
        assert_eq!(out[0], PLAIN);
        let raw: usize = values.iter().map(String::len).sum();
        assert!(out.len() * 4 < raw, "{} vs {raw}", out.len());
    }

    #[test]
    fn edge_cases() {
        round_trip(&[]);
        round_trip(&[String::new()]);
        round_trip(&["ü€😀".to_string(), String::new(), "\0\n".to_string()]);
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]
        #[test]
        fn any_strings_round_trip(values in prop::collection::vec(".{0,40}", 0..200)) {
            round_trip(&values);
        }
        #[test]
        fn any_byte_strings_round_trip(values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..100)) {
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let mut out = Vec::new();
            encode_bytes(&refs, 3, &mut out);
            let mut got = Vec::new();
            let mut r = Reader::new(&out);
            decode_bytes(&mut r, values.len(), &mut got).unwrap();
            prop_assert!(r.is_empty());
            prop_assert_eq!(got, values);
        }
        #[test]
        fn repetitive_strings_round_trip(ids in prop::collection::vec(0usize..5, 0..300)) {
            let values: Vec<String> = ids.iter().map(|i| format!("value-{i}")).collect();
            round_trip(&values);
        }
    }
}
