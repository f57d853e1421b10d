//! Full-text query strings and log text: parsing never panics, a parsed query prints to a
//! string that parses back to the same query, and tokenizing and brute-force matching any
//! text never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::text_query(data));
