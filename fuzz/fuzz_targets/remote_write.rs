//! Prometheus remote-write bodies (snappy, protobuf `WriteRequest`). Nothing panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| annals::internals::fuzz::remote_write(data));
