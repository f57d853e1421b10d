//! LogQL query strings as Loki's query API takes them, parsed and evaluated over a small
//! store of log lines: nothing panics, answers keep their invariants.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::logql(data));
