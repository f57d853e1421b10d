//! Column codecs: decode(encode(x)) == x for values built from the input, and decoding the
//! raw input never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::codecs(data));
