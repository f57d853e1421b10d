//! Line protocol: any line parses or is rejected with an error; a parsed line is a valid row.
#![no_main]
use annals::ingest::{Format, Parser};
use annals::time::Precision;
use annals::{Batch, Limits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parser = Parser::new(Format::LineProtocol, Precision::Nanoseconds, Limits::default());
    let mut batch = Batch::new();
    for (i, line) in text.lines().enumerate() {
        let before = batch.len();
        match parser.parse_into(line, i as u64 + 1, 0, &mut batch) {
            Ok(true) => assert_eq!(batch.len(), before + 1),
            Ok(false) | Err(_) => assert_eq!(batch.len(), before),
        }
    }
    Limits::default().check_batch(&batch).expect("parsed rows are within the limits");
});
