//! An archive file's bytes, as `annals restore` reads them before writing anything.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::archive(data));
