//! Query flags and strings as the CLI and the embedded API read them: tag predicates
//! (`--where`), times and durations (`--from`, `--to`, `--last`), buckets, fills, field
//! filters, aggregate names, search orders, levels and months. Nothing panics, and a parsed
//! predicate, bucket or month prints to text that parses back to the same value.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::query_flags(data));
