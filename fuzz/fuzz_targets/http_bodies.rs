//! Bodies and query strings of the HTTP API: JSON arrays of typed records (all or
//! nothing), git push events, `GET /history/metrics` query strings and the JSON queries of
//! `POST /history/analyze` and the exports. Nothing panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::http_bodies(data));
