//! JSON lines: any line parses or is rejected; a rejected line leaves the batch unchanged.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::jsonl(data));
