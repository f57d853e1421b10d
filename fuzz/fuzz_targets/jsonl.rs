//! JSON lines: any line parses or is rejected; a rejected line leaves the batch unchanged.
#![no_main]
use annals::ingest::{Format, Parser};
use annals::time::Precision;
use annals::{Batch, Limits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parser = Parser::new(Format::JsonLines, Precision::Milliseconds, Limits::default());
    let mut batch = Batch::new();
    for (i, line) in text.lines().enumerate() {
        let before = batch.len();
        if parser.parse_into(line, i as u64 + 1, 0, &mut batch).is_err() {
            assert_eq!(batch.len(), before);
        }
    }
    Limits::default().check_batch(&batch).expect("parsed rows are within the limits");
});
