//! A catalog file's bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    annals::internals::decode_catalog_file(data);
});
