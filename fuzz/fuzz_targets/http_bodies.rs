//! Bodies and query strings of the HTTP API: JSON arrays of typed records (all or
//! nothing) and `GET /history/metrics` query strings. Nothing panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::http_bodies(data));
