//! A segment file's bytes: opening and fully verifying must succeed or fail cleanly.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::segment(data));
