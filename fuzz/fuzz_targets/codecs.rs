//! Column codecs: decode(encode(x)) == x for values built from the input, and decoding the
//! raw input never panics.
#![no_main]
use annals::internals::*;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let n = rest.first().copied().unwrap_or(0) as usize * 7;
    match selector % 8 {
        0 => {
            let values: Vec<i64> = rest.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(decode_i64s(&encode_i64s(&values), values.len()).as_deref(), Some(&values[..]));
        }
        1 => {
            let values: Vec<f64> = rest.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
            let decoded = decode_f64s(&encode_f64s(&values), values.len()).expect("round trip");
            assert!(decoded.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()) && decoded.len() == values.len());
        }
        2 => {
            // Small decimal-looking values exercise the decimal path.
            let values: Vec<f64> = rest.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f64 / 100.0).collect();
            let decoded = decode_f64s(&encode_f64s(&values), values.len()).expect("round trip");
            assert!(decoded.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()) && decoded.len() == values.len());
        }
        3 => {
            let values: Vec<bool> = rest.iter().map(|b| b & 1 == 1).collect();
            assert_eq!(decode_bools(&encode_bools(&values), values.len()).as_deref(), Some(&values[..]));
        }
        4 => {
            let text = String::from_utf8_lossy(rest);
            let values: Vec<&str> = text.split('|').collect();
            let decoded = decode_strings(&encode_strings(&values), values.len()).expect("round trip");
            assert_eq!(decoded, values);
        }
        5 => {
            decode_i64s(rest, n);
            decode_bools(rest, n);
        }
        6 => {
            decode_f64s(rest, n);
        }
        _ => {
            decode_strings(rest, n);
        }
    }
});
