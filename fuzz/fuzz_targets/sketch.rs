//! A quantile sketch's bytes, as a query over summaries decodes them from a segment.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::sketch(data));
