//! A WAL file's bytes: framing and batch payloads must decode or be rejected, never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::wal(data));
