//! Text input: Influx line protocol and JSON lines, parsed line by line into [`Batch`]es.
//!
//! Shared by the CLI (`annals ingest`) and, later, the HTTP write endpoints. A malformed
//! line yields an [`Error`] with its line and column and leaves the batch unchanged, so the
//! caller can report it and go on.

mod jsonl;
mod line_protocol;
#[cfg(feature = "loki")]
pub mod loki;
#[cfg(feature = "prometheus")]
pub mod remote_write;
pub mod webhook;

pub use jsonl::{JsonLinesParser, ParsedCommit};
pub use line_protocol::{LineProtocolParser, parse_line_protocol_body};

use crate::error::{Error, Limit, Result};
use crate::model::Batch;
use crate::options::Limits;
use crate::time::Precision;
use std::io::BufRead;

/// Decompresses a body in snappy's block format (Prometheus remote write, Loki's protobuf
/// push) of at most `max_bytes` once decompressed. [`Error::LimitExceeded`] when it would
/// be larger; [`Error::InvalidInput`] when it is not snappy.
#[cfg(any(feature = "prometheus", feature = "loki"))]
pub fn decompress_snappy(body: &[u8], max_bytes: usize) -> Result<Vec<u8>> {
    let len = snap::raw::decompress_len(body).map_err(|e| Error::invalid(format!("the body is not snappy (block format): {e}")))?;
    if len > max_bytes {
        return Err(Error::LimitExceeded {
            limit: Limit::BatchBytes,
            value: len as u64,
            max: max_bytes as u64,
            context: Some("the decompressed body".into()),
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::invalid(format!("the body is not snappy (block format): {e}")))
}

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

/// 1971-01-01T00:00:00Z and 2200-01-01T00:00:00Z in seconds: integer timestamps outside
/// these years are almost always in another unit than the one chosen.
const PLAUSIBLE_SECONDS: std::ops::Range<i64> = 31_536_000..7_258_118_400;

/// What the integer timestamps of an input looked like, to catch a wrong precision: a file
/// of seconds read as nanoseconds lands in January 1970 without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegerTimestamps {
    /// The precision they were read in.
    pub precision: Precision,
    /// Integer timestamps seen (RFC 3339 strings and missing timestamps are not counted).
    pub count: u64,
    /// Of them, those between 1971 and 2200 in `precision`.
    pub plausible: u64,
    /// The smallest raw value, in `precision`.
    pub min: i64,
    /// The largest raw value, in `precision`.
    pub max: i64,
}

impl IntegerTimestamps {
    /// Nothing seen yet.
    pub fn new(precision: Precision) -> IntegerTimestamps {
        IntegerTimestamps {
            precision,
            count: 0,
            plausible: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }

    /// Counts one raw timestamp (before it is scaled, so values that overflow count too).
    pub(crate) fn record(&mut self, raw: i64) {
        self.count += 1;
        self.plausible += u64::from(plausible_in(raw, self.precision));
        self.min = self.min.min(raw);
        self.max = self.max.max(raw);
    }

    /// True when there were integer timestamps and every one lies before 1971 or after
    /// 2200 in the chosen precision.
    pub fn all_implausible(&self) -> bool {
        self.count > 0 && self.plausible == 0
    }

    /// The precision in which the smallest and the largest timestamp both lie between
    /// 1971 and 2200, when the chosen one puts them all outside (see
    /// [`IntegerTimestamps::all_implausible`]) and another does.
    pub fn likely_precision(&self) -> Option<Precision> {
        if !self.all_implausible() {
            return None;
        }
        [
            Precision::Seconds,
            Precision::Milliseconds,
            Precision::Microseconds,
            Precision::Nanoseconds,
        ]
        .into_iter()
        .find(|&p| p != self.precision && plausible_in(self.min, p) && plausible_in(self.max, p))
    }
}

/// Whether `raw` in `precision` lies between 1971 and 2200.
fn plausible_in(raw: i64, precision: Precision) -> bool {
    let nanos = precision.nanos();
    let seconds = if nanos >= crate::time::NANOS_PER_SECOND {
        raw.saturating_mul(nanos / crate::time::NANOS_PER_SECOND)
    } else {
        raw.div_euclid(crate::time::NANOS_PER_SECOND / nanos)
    };
    PLAUSIBLE_SECONDS.contains(&seconds)
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

    /// The integer timestamps parsed so far (lines that failed included).
    pub fn integer_timestamps(&self) -> IntegerTimestamps {
        match self {
            Parser::LineProtocol(p) => p.integer_timestamps(),
            Parser::JsonLines(p) => p.integer_timestamps(),
        }
    }

    /// The commit lines parsed since the last call (JSON lines only; see
    /// [`JsonLinesParser::take_commits`]).
    pub fn take_commits(&mut self) -> Vec<ParsedCommit> {
        match self {
            Parser::LineProtocol(_) => Vec::new(),
            Parser::JsonLines(p) => p.take_commits(),
        }
    }

    /// Commits waiting for [`Parser::take_commits`], and their approximate bytes.
    pub fn pending_commits(&self) -> (usize, usize) {
        match self {
            Parser::LineProtocol(_) => (0, 0),
            Parser::JsonLines(p) => p.pending_commits(),
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
    fn timestamps_in_another_unit_are_noticed() {
        let mut p = Parser::new(Format::JsonLines, Precision::Nanoseconds, Limits::default());
        let mut batch = Batch::new();
        for (i, ts) in [1_454_284_800i64, 1_454_371_200].into_iter().enumerate() {
            let line = format!(r#"{{"kind":"point","timestamp":{ts},"measurement":"m","fields":{{"v":1}}}}"#);
            p.parse_into(&line, i as u64 + 1, 0, &mut batch).unwrap();
        }
        p.parse_into(
            r#"{"kind":"point","timestamp":"2016-02-01T00:00:00Z","measurement":"m","fields":{"v":1}}"#,
            3,
            0,
            &mut batch,
        )
        .unwrap();
        let seen = p.integer_timestamps();
        assert_eq!(
            (seen.count, seen.plausible, seen.min, seen.max),
            (2, 0, 1_454_284_800, 1_454_371_200)
        );
        assert!(seen.all_implausible());
        assert_eq!(seen.likely_precision(), Some(Precision::Seconds));

        let mut p = Parser::new(Format::LineProtocol, Precision::Seconds, Limits::default());
        // Nanoseconds read as seconds overflow: the lines fail, and the hint still names ns.
        assert!(p.parse_into("m v=1 1454284800000000000", 1, 0, &mut batch).is_err());
        assert_eq!(p.integer_timestamps().likely_precision(), Some(Precision::Nanoseconds));
        let mut p = Parser::new(Format::LineProtocol, Precision::Milliseconds, Limits::default());
        p.parse_into("m v=1 1454284800000", 1, 0, &mut batch).unwrap();
        p.parse_into("m v=1", 2, 0, &mut batch).unwrap();
        assert!(!p.integer_timestamps().all_implausible(), "2016 in milliseconds is plausible");
        let mut p = Parser::new(Format::LineProtocol, Precision::Nanoseconds, Limits::default());
        p.parse_into("m v=1 5", 1, 0, &mut batch).unwrap();
        assert!(p.integer_timestamps().all_implausible());
        assert_eq!(p.integer_timestamps().likely_precision(), None, "no unit puts 5 in 1971..2200");
        // Units longer than a second (Influx 1.x's m and h) scale up, not down.
        let mut p = Parser::new(Format::LineProtocol, Precision::Hours, Limits::default());
        p.parse_into("m v=1 403224", 1, 0, &mut batch).unwrap();
        assert!(!p.integer_timestamps().all_implausible(), "2016 in hours is plausible");
        let mut p = Parser::new(Format::LineProtocol, Precision::Minutes, Limits::default());
        p.parse_into("m v=1 24193440", 1, 0, &mut batch).unwrap();
        p.parse_into("m v=1 1451606400", 2, 0, &mut batch).unwrap_err();
        assert_eq!(p.integer_timestamps().plausible, 1, "seconds read as minutes lie past 2200");
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
