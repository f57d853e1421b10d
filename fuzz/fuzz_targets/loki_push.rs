//! Loki push bodies (JSON, snappy protobuf) and label sets. Nothing panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::loki_push(data));
