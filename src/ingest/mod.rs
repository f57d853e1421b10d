//! Text input: Influx line protocol and JSON lines, parsed line by line into [`Batch`]es.
//!
//! Shared by the CLI (`annals ingest`) and, later, the HTTP write endpoints. A malformed
//! line yields an [`Error`] with its line and column and leaves the batch unchanged, so the
//! caller can report it and go on.

mod jsonl;
mod line_protocol;

pub use jsonl::JsonLinesParser;
pub use line_protocol::LineProtocolParser;

use crate::error::{Error, Limit, Result};
use crate::model::Batch;
use crate::options::Limits;
use crate::time::Precision;
use std::io::BufRead;

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Influx line protocol.
    LineProtocol,
    /// JSON lines of the typed kinds.
    JsonLines,
}

impl Format {
    /// Parses `lp` or `jsonl`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "lp" | "line-protocol" | "influx" => Some(Format::LineProtocol),
            "jsonl" | "json" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// A parser for either format.
#[derive(Debug)]
pub enum Parser {
    /// Line protocol.
    LineProtocol(LineProtocolParser),
    /// JSON lines.
    JsonLines(JsonLinesParser),
}

impl Parser {
    /// A parser of `format` with integer timestamps in `precision`, checking `limits`.
    pub fn new(format: Format, precision: Precision, limits: Limits) -> Parser {
        match format {
            Format::LineProtocol => Parser::LineProtocol(LineProtocolParser::new(precision, limits)),
            Format::JsonLines => Parser::JsonLines(JsonLinesParser::new(precision, limits)),
        }
    }

    /// Parses line `line_number` (1-based) into `batch`; false for blank and comment lines.
    /// `now` stands in for missing timestamps.
    pub fn parse_into(&mut self, line: &str, line_number: u64, now: i64, batch: &mut Batch) -> Result<bool> {
        let result = match self {
            Parser::LineProtocol(p) => p.parse_into(line, now, batch),
            Parser::JsonLines(p) => p.parse_into(line, now, batch),
        };
        result.map_err(|e| e.at_line(line_number))
    }
}

/// One line from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's text, without its newline.
    Text(&'a str),
    /// The line is not valid UTF-8.
    NotUtf8,
    /// The line exceeded the byte limit; it was skipped without being held in memory.
    TooLong {
        /// Its length in bytes.
        bytes: u64,
    },
}

/// Splits input into lines without ever holding more than `max_line_bytes` of one line.
pub struct LineReader<R> {
    input: R,
    max_line_bytes: usize,
    buf: Vec<u8>,
    line_number: u64,
    bytes_read: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Reads lines of at most `max_line_bytes` from `input`.
    pub fn new(input: R, max_line_bytes: usize) -> LineReader<R> {
        LineReader {
            input,
            max_line_bytes,
            buf: Vec::new(),
            line_number: 0,
            bytes_read: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line and its 1-based number, or `None` at the end of input.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut length = 0u64;
        let mut saw_any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1),
                None => (available, available.len()),
            };
            length += chunk.len() as u64;
            if self.buf.len() + chunk.len() <= self.max_line_bytes {
                self.buf.extend_from_slice(chunk);
            }
            let found_newline = done > chunk.len();
            self.input.consume(done);
            self.bytes_read += done as u64;
            if found_newline {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        self.line_number += 1;
        if length > self.max_line_bytes as u64 {
            return Ok(Some((self.line_number, Line::TooLong { bytes: length })));
        }
        Ok(Some((
            self.line_number,
            match std::str::from_utf8(&self.buf) {
                Ok(text) => Line::Text(text),
                Err(_) => Line::NotUtf8,
            },
        )))
    }
}

impl Line<'_> {
    /// The error to report for a line that cannot be parsed at all.
    pub fn error(&self, line_number: u64, max_line_bytes: usize) -> Option<Error> {
        match self {
            Line::Text(_) => None,
            Line::NotUtf8 => Some(Error::InvalidInput {
                line: Some(line_number),
                column: None,
                reason: "line is not valid UTF-8".into(),
            }),
            Line::TooLong { bytes } => Some(Error::LimitExceeded {
                limit: Limit::LineLength,
                value: *bytes,
                max: max_line_bytes as u64,
                context: Some(format!("line {line_number}")),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_checked() {
        let input: &[u8] = b"short\n\xff\xfe\nthis line is too long\r\nlast";
        let mut r = LineReader::new(input, 10);
        assert_eq!(r.next_line().unwrap(), Some((1, Line::Text("short"))));
        assert_eq!(r.next_line().unwrap(), Some((2, Line::NotUtf8)));
        assert_eq!(r.next_line().unwrap(), Some((3, Line::TooLong { bytes: 22 })));
        assert_eq!(r.next_line().unwrap(), Some((4, Line::Text("last"))));
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(r.bytes_read(), input.len() as u64);
        let mut r = LineReader::new(&b"a\n\nb\n"[..], 10);
        assert_eq!(r.next_line().unwrap(), Some((1, Line::Text("a"))));
        assert_eq!(r.next_line().unwrap(), Some((2, Line::Text(""))));
        assert_eq!(r.next_line().unwrap(), Some((3, Line::Text("b"))));
        assert_eq!(r.next_line().unwrap(), None);
    }

    #[test]
    fn parser_errors_carry_line_and_column() {
        let mut p = Parser::new(Format::LineProtocol, Precision::Nanoseconds, Limits::default());
        let e = p.parse_into("cpu v=x", 7, 0, &mut Batch::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 7, column 7: invalid field value \"x\" (numbers, 1i, 1u, \"text\", true/false)"
        );
    }
}
