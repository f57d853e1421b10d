//! The commit store's decoders: a `COMMITS` file (first byte 0) or a WAL batch payload
//! whose commit rows are extracted as recovery does.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::commits(data));
