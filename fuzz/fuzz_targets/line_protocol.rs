//! Line protocol: any line parses or is rejected with an error; a parsed line is a valid row.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::line_protocol(data));
