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

/// Decodes `n` values, appending them to `out`, but only those `keep` marks: the others
/// become empty strings, which allocate nothing (a search reading a few rows of a block).
pub(crate) fn decode_selected(r: &mut Reader<'_>, n: usize, keep: &[bool], out: &mut Vec<String>) -> Result<(), DecodeError> {
    out.reserve(n);
    let mut row = 0;
    decode_with(r, n, |v| {
        let kept = keep.get(row).copied().unwrap_or(true);
        row += 1;
        if !kept {
            out.push(String::new());
            return Ok(());
        }
        let s = std::str::from_utf8(v).map_err(|_| DecodeError("string is not UTF-8"))?;
        out.push(s.to_owned());
        Ok(())
    })
}

/// [`decode_selected`] for byte strings.
pub(crate) fn decode_bytes_selected(r: &mut Reader<'_>, n: usize, keep: &[bool], out: &mut Vec<Vec<u8>>) -> Result<(), DecodeError> {
    out.reserve(n);
    let mut row = 0;
    decode_with(r, n, |v| {
        let kept = keep.get(row).copied().unwrap_or(true);
        row += 1;
        out.push(if kept { v.to_vec() } else { Vec::new() });
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

/// Largest decompressed text a thread keeps its buffer for between decodes.
const KEPT_BUFFER_BYTES: usize = 4 << 20;

/// A thread's zstd context and output buffer, reused from one text section to the next:
/// a fresh context and a fresh buffer of a block's text (hundreds of KiB, which the
/// allocator maps and the kernel zeroes page by page) cost more than decompressing it.
struct Scratch {
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    buffer: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch {
            decompressor: None,
            buffer: Vec::new(),
        })
    };
}

/// Decompresses a zstd frame of exactly `raw_len` bytes and hands it to `use_text`.
fn with_decompressed<T>(
    compressed: &[u8],
    raw_len: usize,
    use_text: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    SCRATCH.with(|cell| {
        // A decode inside `use_text` on this thread (none today) would find the scratch
        // taken: it then works on its own.
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            let text = zstd::bulk::decompress(compressed, raw_len).map_err(|_| DecodeError("zstd frame does not decode"))?;
            if text.len() != raw_len {
                return Err(DecodeError("zstd frame has the wrong length"));
            }
            return use_text(&text);
        };
        let scratch = &mut *scratch;
        // A frame that records its size must record this one, before any room is made.
        if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(compressed)
            && size != raw_len as u64
        {
            return Err(DecodeError("zstd frame has the wrong length"));
        }
        if scratch.decompressor.is_none() {
            scratch.decompressor = Some(zstd::bulk::Decompressor::new().map_err(|_| DecodeError("zstd context could not be made"))?);
        }
        let Some(decompressor) = scratch.decompressor.as_mut() else {
            return Err(DecodeError("zstd context could not be made"));
        };
        scratch.buffer.clear();
        scratch.buffer.reserve(raw_len);
        let written = decompressor
            .decompress_to_buffer(compressed, &mut scratch.buffer)
            .map_err(|_| DecodeError("zstd frame does not decode"))?;
        let result = if written != raw_len {
            Err(DecodeError("zstd frame has the wrong length"))
        } else {
            use_text(&scratch.buffer)
        };
        if scratch.buffer.capacity() > KEPT_BUFFER_BYTES {
            scratch.buffer = Vec::new();
        }
        result
    })
}

fn decode_text(r: &mut Reader<'_>, n: usize, push: impl FnMut(&[u8]) -> Result<(), DecodeError>) -> Result<(), DecodeError> {
    let mut lengths = Vec::with_capacity(n);
    ints::decode(r, n, &mut lengths)?;
    let raw_len = r.len(MAX_SECTION_BYTES)?;
    match r.u8()? {
        0 => split_text(r.bytes(raw_len)?, &lengths, push),
        1 => {
            let compressed = r.prefixed()?;
            with_decompressed(compressed, raw_len, |text| split_text(text, &lengths, push))
        }
        _ => Err(DecodeError("unknown text compression")),
    }
}

/// Hands `text`, cut at `lengths`, to `push`; the lengths must cover it exactly.
fn split_text(text: &[u8], lengths: &[i64], mut push: impl FnMut(&[u8]) -> Result<(), DecodeError>) -> Result<(), DecodeError> {
    let mut at = 0usize;
    for &len in lengths {
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
    fn a_frame_whose_size_disagrees_with_the_section_is_refused() {
        let text = "x".repeat(500);
        let frame = zstd::bulk::compress(text.as_bytes(), 3).unwrap();
        let cut = |len: usize| with_decompressed(&frame, len, |t| Ok(t.len()));
        assert_eq!(cut(500), Ok(500));
        assert_eq!(cut(499), Err(DecodeError("zstd frame has the wrong length")));
        assert_eq!(cut(1 << 29), Err(DecodeError("zstd frame has the wrong length")));
        assert_eq!(
            with_decompressed(b"not zstd", 10, |t| Ok(t.len())),
            Err(DecodeError("zstd frame does not decode"))
        );
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
        /// A selected decode gives the kept values, and empty ones elsewhere, for plain
        /// text and dictionaries alike; a frame whose recorded size disagrees is refused.
        #[test]
        fn selected_decodes_keep_exactly_the_marked_values(
            values in prop::collection::vec(prop_oneof![".{0,40}", "(a|b|c)"], 0..200),
            keep_seed in any::<u64>(),
        ) {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            encode(&refs, 3, &mut out);
            let keep: Vec<bool> = (0..values.len()).map(|i| (keep_seed >> (i % 64)) & 1 == 1).collect();
            let mut got = Vec::new();
            let mut r = Reader::new(&out);
            decode_selected(&mut r, values.len(), &keep, &mut got).unwrap();
            prop_assert!(r.is_empty());
            let expected: Vec<String> = values.iter().zip(&keep).map(|(v, k)| if *k { v.clone() } else { String::new() }).collect();
            prop_assert_eq!(got, expected);
            let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
            let mut out = Vec::new();
            encode_bytes(&bytes, 3, &mut out);
            let mut got = Vec::new();
            decode_bytes_selected(&mut Reader::new(&out), values.len(), &keep, &mut got).unwrap();
            let expected: Vec<Vec<u8>> = bytes.iter().zip(&keep).map(|(v, k)| if *k { v.to_vec() } else { Vec::new() }).collect();
            prop_assert_eq!(got, expected);
        }
        #[test]
        fn repetitive_strings_round_trip(ids in prop::collection::vec(0usize..5, 0..300)) {
            let values: Vec<String> = ids.iter().map(|i| format!("value-{i}")).collect();
            round_trip(&values);
        }
    }
}
