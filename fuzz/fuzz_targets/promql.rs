//! PromQL query strings as the Prometheus query API takes them, parsed and evaluated over a
//! small store: nothing panics, answers keep their invariants.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::promql(data));
