//! Influx line protocol.
//!
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`
//!
//! - Measurement: `,` and space are escaped with `\`. Tag keys, tag values and field keys:
//!   `,`, `=` and space. A backslash before any other character is itself.
//! - Field values: floats (`1.5`, `-2e3`, `7`), integers (`7i`), unsigned integers (`7u`,
//!   stored as integers when they fit), strings (`"a \"quoted\" word"`, escapes `\"` and
//!   `\\`), booleans (`t`, `T`, `true`, `True`, `TRUE`, and the same for false). NaN and
//!   infinities are not valid line protocol and are rejected.
//! - Timestamp: an integer in the chosen precision; when absent the caller's "now".
//! - Blank lines and lines starting with `#` are skipped; a trailing `\r` is ignored.
//!
//! Every error names the 1-based byte column where the line went wrong.

use crate::error::{Error, Result};
use crate::model::{Batch, FieldValue, SeriesKey, SeriesKind};
use crate::options::Limits;
use crate::time::Precision;
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Series keys parsed from raw line prefixes are cached up to this many entries.
const KEY_CACHE_MAX: usize = 100_000;

/// Parses line protocol into batches.
#[derive(Debug)]
pub struct LineProtocolParser {
    precision: Precision,
    limits: Limits,
    keys: FxHashMap<Box<str>, SeriesKey>,
    fields: Vec<(FieldName, FieldValue)>,
    integer_timestamps: super::IntegerTimestamps,
    added_tags: Vec<(String, String)>,
}

/// A field's name while its line is parsed: where it lies in the line, or the name with its
/// escapes undone (so most names are never copied: ten per line of W1).
#[derive(Debug)]
enum FieldName {
    Span(usize, usize),
    Unescaped(String),
}

fn err(column: usize, reason: impl Into<String>) -> Error {
    Error::InvalidInput {
        line: None,
        column: Some(column as u64 + 1),
        reason: reason.into(),
    }
}

impl LineProtocolParser {
    /// A parser for timestamps in `precision`, checking `limits`.
    pub fn new(precision: Precision, limits: Limits) -> LineProtocolParser {
        LineProtocolParser {
            precision,
            limits,
            keys: FxHashMap::default(),
            fields: Vec::new(),
            integer_timestamps: super::IntegerTimestamps::new(precision),
            added_tags: Vec::new(),
        }
    }

    /// Also gives every series the tag `key=value` (the database of an Influx write, so one
    /// store serves many). A line that has the tag with another value is refused.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> LineProtocolParser {
        self.added_tags.push((key.into(), value.into()));
        self
    }

    /// The timestamps parsed so far.
    pub fn integer_timestamps(&self) -> super::IntegerTimestamps {
        self.integer_timestamps
    }

    /// Parses one line and appends its row to `batch`. Returns false for blank and comment
    /// lines. On error the batch is unchanged; the error has a column but no line number
    /// (see [`Error::at_line`]).
    pub fn parse_into(&mut self, line: &str, now: i64, batch: &mut Batch) -> Result<bool> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let start = line.len() - line.trim_start().len();
        let bytes = line.as_bytes();
        if start == bytes.len() || bytes[start] == b'#' {
            return Ok(false);
        }
        let key_end = scan_key(bytes, start)?;
        let key = self.series_key(&line[start..key_end], start)?;

        let mut pos = skip_spaces(bytes, key_end);
        if pos == bytes.len() {
            return Err(err(pos, "expected fields after the series key"));
        }
        self.fields.clear();
        loop {
            let (name, after_name) = parse_field_key(line, pos)?;
            let (value, after_value) = parse_field_value(line, after_name)?;
            self.limits.check_field(&name, &value).map_err(|e| with_column(e, pos))?;
            let name = match name {
                // Without escapes the name is the text before '='.
                Cow::Borrowed(_) => FieldName::Span(pos, after_name - 1),
                Cow::Owned(name) => FieldName::Unescaped(name),
            };
            self.fields.push((name, value));
            pos = after_value;
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b' ') | None => break,
                Some(_) => return Err(err(pos, "expected ',' or a space after a field value")),
            }
        }
        pos = skip_spaces(bytes, pos);
        let timestamp = if pos < bytes.len() {
            let end = bytes[pos..]
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .map_or(bytes.len(), |n| pos + n);
            let text = &line[pos..end];
            let value: i64 = text
                .parse()
                .map_err(|_| err(pos, format!("timestamp {text:?} is not an integer in range")))?;
            self.integer_timestamps.record(value);
            let ts = self
                .precision
                .to_nanos(value)
                .ok_or_else(|| err(pos, format!("timestamp {text:?} overflows nanoseconds (1677..2262)")))?;
            if !line[end..].trim().is_empty() {
                return Err(err(skip_spaces(bytes, end), "unexpected text after the timestamp"));
            }
            ts
        } else {
            now
        };
        self.limits
            .check_row(timestamp, self.fields.len())
            .map_err(|e| with_column(e, pos))?;
        let fields = self.fields.drain(..).map(|(name, value)| {
            let name = match name {
                FieldName::Span(from, to) => Cow::Borrowed(&line[from..to]),
                FieldName::Unescaped(name) => Cow::Owned(name),
            };
            (name, value)
        });
        batch
            .add_row(&key, timestamp, fields)
            .map(|()| true)
            .map_err(|e| with_column(e, start))
    }

    fn series_key(&mut self, raw: &str, offset: usize) -> Result<SeriesKey> {
        if let Some(key) = self.keys.get(raw) {
            return Ok(key.clone());
        }
        let mut key = parse_series_key(raw, offset)?;
        for (name, value) in &self.added_tags {
            key = match key.tag(name) {
                Some(own) if own == value => key,
                Some(own) => {
                    return Err(err(
                        offset,
                        format!("the line's tag {name}={own} conflicts with the request's {name}={value}"),
                    ));
                }
                None => key.with_tag(name.as_str(), value.as_str()).map_err(|e| with_column(e, offset))?,
            };
        }
        self.limits.check_series(&key).map_err(|e| with_column(e, offset))?;
        if self.keys.len() >= KEY_CACHE_MAX {
            self.keys.clear();
        }
        self.keys.insert(raw.into(), key.clone());
        Ok(key)
    }
}

fn with_column(e: Error, column: usize) -> Error {
    match e {
        Error::InvalidInput {
            line,
            column: None,
            reason,
        } => Error::InvalidInput {
            line,
            column: Some(column as u64 + 1),
            reason,
        },
        other => other,
    }
}

fn skip_spaces(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos] == b' ' {
        pos += 1;
    }
    pos
}

/// End of the series key: the first unescaped space.
fn scan_key(bytes: &[u8], start: usize) -> Result<usize> {
    let mut pos = start;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => pos += 2,
            b' ' => return Ok(pos),
            b'\t' => return Err(err(pos, "tab in the series key (escape it or use a space)")),
            _ => pos += 1,
        }
    }
    Err(err(bytes.len(), "expected a space and fields after the series key"))
}

/// Unescapes `text` where a backslash before one of `special` (or a backslash) stands for it.
fn unescape<'a>(text: &'a str, special: &[u8]) -> Cow<'a, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && next.is_ascii()
            && (special.contains(&(next as u8)) || next == '\\')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Splits at unescaped occurrences of `sep`.
fn split_unescaped(text: &str, sep: u8) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => pos += 2,
            b if b == sep => {
                parts.push((start, &text[start..pos]));
                pos += 1;
                start = pos;
            }
            _ => pos += 1,
        }
    }
    parts.push((start, &text[start.min(text.len())..]));
    parts
}

fn parse_series_key(raw: &str, offset: usize) -> Result<SeriesKey> {
    let parts = split_unescaped(raw, b',');
    let (_, measurement) = parts[0];
    if measurement.is_empty() {
        return Err(err(offset, "empty measurement name"));
    }
    let measurement = unescape(measurement, b", ");
    let mut tags = Vec::with_capacity(parts.len() - 1);
    for &(at, pair) in &parts[1..] {
        let column = offset + at;
        let kv = split_unescaped(pair, b'=');
        if kv.len() != 2 {
            return Err(err(column, format!("tag {pair:?} is not key=value")));
        }
        let (k, v) = (kv[0].1, kv[1].1);
        if k.is_empty() {
            return Err(err(column, "empty tag key"));
        }
        if v.is_empty() {
            return Err(err(column, format!("empty value for tag {k:?}")));
        }
        tags.push((unescape(k, b",= ").into_owned(), unescape(v, b",= ").into_owned()));
    }
    SeriesKey::new(SeriesKind::Metric, measurement.into_owned(), tags).map_err(|e| with_column(e, offset))
}

fn parse_field_key(line: &str, start: usize) -> Result<(Cow<'_, str>, usize)> {
    let bytes = line.as_bytes();
    let mut pos = start;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => pos += 2,
            b'=' => break,
            b' ' | b',' => return Err(err(pos, "field without '=value'")),
            _ => pos += 1,
        }
    }
    if pos >= bytes.len() {
        return Err(err(start, "field without '=value'"));
    }
    if pos == start {
        return Err(err(start, "empty field name"));
    }
    // The key lies on UTF-8 boundaries: it starts after an ASCII byte and ends at '='
    // (`get` checks the boundaries; the line is UTF-8 already).
    let text = line.get(start..pos).ok_or_else(|| err(start, "field name is not UTF-8"))?;
    Ok((unescape(text, b",= "), pos + 1))
}

fn parse_field_value(line: &str, start: usize) -> Result<(FieldValue, usize)> {
    let bytes = line.as_bytes();
    if bytes.get(start) == Some(&b'"') {
        let mut out = String::new();
        let mut pos = start + 1;
        let mut run = pos;
        while pos < bytes.len() {
            match bytes[pos] {
                b'\\' if matches!(bytes.get(pos + 1), Some(b'"') | Some(b'\\')) => {
                    out.push_str(&line[run..pos]);
                    out.push(bytes[pos + 1] as char);
                    pos += 2;
                    run = pos;
                }
                b'"' => {
                    out.push_str(&line[run..pos]);
                    return Ok((FieldValue::Str(out), pos + 1));
                }
                _ => pos += 1,
            }
        }
        return Err(err(start, "unterminated string value"));
    }
    let end = bytes[start..]
        .iter()
        .position(|&b| b == b',' || b == b' ')
        .map_or(bytes.len(), |n| start + n);
    let token = &line[start..end];
    if token.is_empty() {
        return Err(err(start, "empty field value"));
    }
    let value = match token {
        "t" | "T" | "true" | "True" | "TRUE" => FieldValue::Bool(true),
        "f" | "F" | "false" | "False" | "FALSE" => FieldValue::Bool(false),
        _ if token.ends_with('i') => {
            let digits = &token[..token.len() - 1];
            if !is_integer(digits) {
                return Err(err(start, format!("invalid integer {token:?}")));
            }
            FieldValue::I64(
                digits
                    .parse()
                    .map_err(|_| err(start, format!("integer {token:?} out of the 64-bit range")))?,
            )
        }
        _ if token.ends_with('u') => {
            let digits = &token[..token.len() - 1];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(start, format!("invalid unsigned integer {token:?}")));
            }
            let v: u64 = digits
                .parse()
                .map_err(|_| err(start, format!("unsigned integer {token:?} out of range")))?;
            FieldValue::I64(i64::try_from(v).map_err(|_| {
                err(
                    start,
                    format!("unsigned integer {token:?} exceeds the largest storable integer (2^63-1)"),
                )
            })?)
        }
        _ => {
            if !is_float(token) {
                return Err(err(
                    start,
                    format!("invalid field value {token:?} (numbers, 1i, 1u, \"text\", true/false)"),
                ));
            }
            let v: f64 = token.parse().map_err(|_| err(start, format!("invalid float {token:?}")))?;
            if !v.is_finite() {
                return Err(err(start, format!("float {token:?} is out of range")));
            }
            FieldValue::F64(v)
        }
    };
    Ok((value, end))
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_float(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Bodies smaller than this are parsed on the calling thread: starting threads would cost
/// more than it saves.
const PARALLEL_PARSE_MIN_BYTES: usize = 256 << 10;

/// Parses a whole body of line protocol into one batch, all or nothing, on up to `threads`
/// threads when the body is large (256 KiB or more): each thread parses a run of whole
/// lines into its own batch, and the batches are joined in the body's order. An error is
/// the first bad line's, with its line number (from 1). Every series also gets
/// `added_tags` (see [`LineProtocolParser::with_tag`]).
pub fn parse_line_protocol_body(
    text: &str,
    precision: Precision,
    limits: &Limits,
    added_tags: &[(String, String)],
    now: i64,
    threads: usize,
) -> Result<Batch> {
    let parse = |part: &str, first_line: u64| -> Result<Batch> {
        let mut parser = LineProtocolParser::new(precision, limits.clone());
        for (key, value) in added_tags {
            parser = parser.with_tag(key.as_str(), value.as_str());
        }
        let mut batch = Batch::new();
        for (i, line) in part.lines().enumerate() {
            parser
                .parse_into(line, now, &mut batch)
                .map_err(|e| e.at_line(first_line + i as u64))?;
        }
        Ok(batch)
    };
    let threads = threads.max(1);
    if threads == 1 || text.len() < PARALLEL_PARSE_MIN_BYTES {
        return parse(text, 1);
    }
    // Whole-line parts of about equal size, each with the number of its first line.
    let mut parts: Vec<(&str, u64)> = Vec::with_capacity(threads);
    let (mut rest, mut line) = (text, 1u64);
    while !rest.is_empty() {
        let target = (text.len() / threads).max(1).min(rest.len());
        let end = if parts.len() + 1 == threads {
            rest.len()
        } else {
            rest.as_bytes()[target..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| target + p + 1)
        };
        let (part, tail) = rest.split_at(end);
        parts.push((part, line));
        line += part.bytes().filter(|&b| b == b'\n').count() as u64;
        rest = tail;
    }
    let batches: Vec<Result<Batch>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|&(part, first_line)| scope.spawn(move || parse(part, first_line)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::invalid("parsing a part of the body panicked")))
            })
            .collect()
    });
    let mut joined = Batch::new();
    for batch in batches {
        // The first failed part holds the first bad line: parts are in body order.
        joined.append(batch?);
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_large_body_parses_on_threads_into_the_batch_one_thread_makes() {
        let mut body = String::new();
        for i in 0..40_000 {
            body.push_str(&format!("cpu,host=h{} usage={i}.5,idle={}i {}\n", i % 7, i % 13, 1_000 + i));
        }
        assert!(body.len() > PARALLEL_PARSE_MIN_BYTES);
        let limits = Limits::default();
        let one = parse_line_protocol_body(&body, Precision::Nanoseconds, &limits, &[], 0, 1).unwrap();
        let four = parse_line_protocol_body(&body, Precision::Nanoseconds, &limits, &[], 0, 4).unwrap();
        let rows = |b: &Batch| -> Vec<String> {
            b.rows()
                .map(|(key, ts, fields)| {
                    let fields: Vec<String> = fields.map(|(n, v)| format!("{n}={v}")).collect();
                    format!("{key} {ts} {}", fields.join(","))
                })
                .collect()
        };
        assert_eq!(one.len(), 40_000);
        assert_eq!(rows(&one), rows(&four));
        assert_eq!((one.series_count(), one.point_count()), (four.series_count(), four.point_count()));
        // A bad line late in the body is named by its line in the whole body.
        let mut bad = body.clone();
        bad.push_str("cpu,host=x usage= 5\n");
        bad.push_str("cpu,host=x usage=\n");
        match parse_line_protocol_body(&bad, Precision::Nanoseconds, &limits, &[], 0, 4) {
            Err(Error::InvalidInput { line, .. }) => assert_eq!(line, Some(40_001)),
            other => panic!("expected the first bad line, got {other:?}"),
        }
    }

    use super::*;

    type Row = (String, i64, Vec<(String, FieldValue)>);

    fn parse(line: &str) -> Result<Option<Row>> {
        let mut parser = LineProtocolParser::new(Precision::Nanoseconds, Limits::default());
        let mut batch = Batch::new();
        if !parser.parse_into(line, 42, &mut batch)? {
            return Ok(None);
        }
        let (key, ts, fields) = batch.rows().next().unwrap();
        Ok(Some((
            key.to_string(),
            ts,
            fields.map(|(n, v)| (n.to_string(), v.clone())).collect(),
        )))
    }

    #[test]
    fn parses_the_forms_of_the_spec() {
        let (key, ts, fields) = parse("cpu,host=a,region=eu usage=1.5,n=3i,u=4u,ok=t,msg=\"hi \\\"there\\\" \\\\ \\n\" 1000")
            .unwrap()
            .unwrap();
        assert_eq!(key, "cpu,host=a,region=eu");
        assert_eq!(ts, 1000);
        assert_eq!(
            fields,
            vec![
                ("usage".into(), FieldValue::F64(1.5)),
                ("n".into(), FieldValue::I64(3)),
                ("u".into(), FieldValue::I64(4)),
                ("ok".into(), FieldValue::Bool(true)),
                ("msg".into(), FieldValue::Str("hi \"there\" \\ \\n".into())),
            ]
        );
        let (key, ts, fields) = parse(r"my\ m,tag\=k=v\,w f\ x=-2e3").unwrap().unwrap();
        assert_eq!(key, r"my\ m,tag\=k=v\,w");
        assert_eq!(ts, 42, "missing timestamp is now");
        assert_eq!(fields, vec![("f x".into(), FieldValue::F64(-2000.0))]);
        assert!(parse("   ").unwrap().is_none());
        assert!(parse("# comment").unwrap().is_none());
        let (_, ts, _) = parse("m v=1 -5\r").unwrap().unwrap();
        assert_eq!(ts, -5);
        let (_, _, fields) = parse("m s=\"a, b=c d\",x=.5").unwrap().unwrap();
        assert_eq!(fields[0].1, FieldValue::Str("a, b=c d".into()));
        assert_eq!(fields[1].1, FieldValue::F64(0.5));
    }

    #[test]
    fn rejects_malformed_lines_with_a_column() {
        let cases = [
            ("cpu", 4),
            ("cpu ", 5),
            (",host=a v=1", 1),
            ("cpu,host v=1", 5),
            ("cpu,host= v=1", 5),
            ("cpu,=a v=1", 5),
            ("cpu,a=1,a=2 v=1", 1),
            ("cpu v", 5),
            ("cpu =1", 5),
            ("cpu v=", 7),
            ("cpu v=NaN", 7),
            ("cpu v=inf", 7),
            ("cpu v=1e999", 7),
            ("cpu v=\"open", 7),
            ("cpu v=1ii", 7),
            ("cpu v=99999999999999999999i", 7),
            ("cpu v=18446744073709551615u", 7),
            ("cpu v=1 12x", 9),
            ("cpu v=1 99999999999999999999", 9),
            ("cpu v=1 1 2", 11),
            ("cpu v=1,v=2 1", 1),
            ("cpu v=1;x=2", 7),
        ];
        for (line, column) in cases {
            match parse(line) {
                Err(Error::InvalidInput { column: Some(c), .. }) => assert_eq!(c, column, "{line}"),
                other => panic!("{line}: expected an error at column {column}, got {other:?}"),
            }
        }
        let mut parser = LineProtocolParser::new(Precision::Seconds, Limits::default());
        assert!(
            parser.parse_into("m v=1 9999999999999", 0, &mut Batch::new()).is_err(),
            "seconds overflow ns"
        );
    }

    #[test]
    fn precision_scales_timestamps() {
        let mut parser = LineProtocolParser::new(Precision::Milliseconds, Limits::default());
        let mut batch = Batch::new();
        parser.parse_into("m v=1 1500", 0, &mut batch).unwrap();
        assert_eq!(batch.rows().next().unwrap().1, 1_500_000_000);
    }

    #[test]
    fn limits_apply_per_line() {
        let limits = Limits {
            max_tag_value_bytes: 3,
            ..Limits::default()
        };
        let mut parser = LineProtocolParser::new(Precision::Nanoseconds, limits);
        let mut batch = Batch::new();
        assert!(matches!(
            parser.parse_into("m,t=long v=1", 0, &mut batch),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(parser.parse_into("m,t=ok v=1", 0, &mut batch).unwrap());
        assert_eq!(batch.len(), 1);
    }
}
