//! Loki's push API (`POST /loki/api/v1/push`), as promtail, Grafana Alloy and the Loki
//! clients send it: JSON (`{"streams": [{"stream": {labels}, "values": [["<ns>", "<line>",
//! {metadata}?], ...]}]}`, optionally gzip'd) or a snappy-compressed (block format)
//! protobuf `logproto.PushRequest`, whose streams carry their labels as text
//! (`{job="varlogs", filename="/var/log/syslog"}`).
//!
//! Every entry becomes a log row ([`LogEntry`]): the line is the message; the `level`
//! label (or `detected_level`, `severity`, `lvl`) is the level, or, without one, the level
//! the line itself states ([`detect_level`]), INFO when it states none; the `logger` label,
//! else `job`, else [`DEFAULT_LOGGER`], is the logger name; every other label is a tag
//! (`job` too); structured metadata is extra data. A request is stored whole or refused
//! whole, naming the stream and entry that failed.
//!
//! The protobuf messages are written from Loki's `pkg/push/push.proto` (field numbers and
//! types; the fields annals does not read are left out, and protobuf skips them).

use crate::error::{Error, Limit, Result};
use crate::model::{Batch, FieldValue, LogEntry, LogLevel};
use crate::options::Limits;
use std::collections::BTreeMap;

/// The logger name of entries whose stream has neither a `logger` nor a `job` label.
pub const DEFAULT_LOGGER: &str = "loki";

/// Labels that give an entry's level, in the order they are looked at.
pub const LEVEL_LABELS: [&str; 4] = ["level", "detected_level", "severity", "lvl"];

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The stream's labels as text: `{name="value", ...}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// Its entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When the line was logged.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata: name and value pairs that are not labels.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Name and value pairs: labels, structured metadata.
type Pairs = Vec<(String, String)>;

/// One stream of a push, whatever its encoding.
struct Stream {
    labels: Pairs,
    /// (nanoseconds, line, structured metadata).
    entries: Vec<(i64, String, Pairs)>,
}

/// Decodes a JSON push body into log rows, all or nothing.
pub fn decode_json(body: &[u8], limits: &Limits) -> Result<Batch> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| Error::invalid(format!("the body is not JSON: {e}")))?;
    let streams = value
        .get("streams")
        .and_then(|s| s.as_array())
        .ok_or_else(|| Error::invalid("the body has no \"streams\" array"))?;
    let mut decoded = Vec::with_capacity(streams.len());
    for (i, stream) in streams.iter().enumerate() {
        let at = |reason: String| in_stream(Error::invalid(reason), i, None);
        let labels = match stream.get("stream") {
            Some(serde_json::Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v.as_str() {
                    Some(v) => Ok((k.clone(), v.to_string())),
                    None => Err(at(format!("the label {k} is not a string"))),
                })
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
            Some(_) => return Err(at("\"stream\" is not an object of labels".into())),
        };
        let values = stream
            .get("values")
            .and_then(|v| v.as_array())
            .ok_or_else(|| at("the stream has no \"values\" array".into()))?;
        let mut entries = Vec::with_capacity(values.len());
        for (j, entry) in values.iter().enumerate() {
            let bad = |reason: &str| in_stream(Error::invalid(reason.to_string()), i, Some(j));
            let parts = entry
                .as_array()
                .ok_or_else(|| bad("an entry is [\"<unix ns>\", \"<line>\"(, {metadata})]"))?;
            let (time, line) = match (parts.first().and_then(|t| t.as_str()), parts.get(1).and_then(|l| l.as_str())) {
                (Some(time), Some(line)) if parts.len() <= 3 => (time, line),
                _ => return Err(bad("an entry is [\"<unix ns>\", \"<line>\"(, {metadata})]")),
            };
            let time: i64 = time
                .parse()
                .map_err(|_| bad("the timestamp is not a string of integer nanoseconds"))?;
            let metadata = match parts.get(2) {
                None => Vec::new(),
                Some(serde_json::Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| match v.as_str() {
                        Some(v) => Ok((k.clone(), v.to_string())),
                        None => Err(bad("structured metadata values are strings")),
                    })
                    .collect::<Result<Vec<_>>>()?,
                Some(_) => return Err(bad("structured metadata is an object of strings")),
            };
            entries.push((time, line.to_string(), metadata));
        }
        decoded.push(Stream { labels, entries });
    }
    to_batch(decoded, limits)
}

/// Decodes a decompressed protobuf `PushRequest` into log rows, all or nothing.
pub fn decode_protobuf(protobuf: &[u8], limits: &Limits) -> Result<Batch> {
    let request = <PushRequest as prost::Message>::decode(protobuf)
        .map_err(|e| Error::invalid(format!("the body is not a Loki PushRequest: {e}")))?;
    let mut streams = Vec::with_capacity(request.streams.len());
    for (i, stream) in request.streams.into_iter().enumerate() {
        let labels = parse_labels(&stream.labels).map_err(|e| in_stream(e, i, None))?;
        let mut entries = Vec::with_capacity(stream.entries.len());
        for (j, entry) in stream.entries.into_iter().enumerate() {
            let time = entry
                .timestamp
                .and_then(|t| t.seconds.checked_mul(1_000_000_000)?.checked_add(i64::from(t.nanos)))
                .ok_or_else(|| in_stream(Error::invalid("the entry has no timestamp in range"), i, Some(j)))?;
            let metadata = entry.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect();
            entries.push((time, entry.line, metadata));
        }
        streams.push(Stream { labels, entries });
    }
    to_batch(streams, limits)
}

/// Parses a Prometheus label set as text: `{name="value", ...}` (`\"`, `\\` and `\n`
/// escapes in values).
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>> {
    let bad = |reason: &str| Error::invalid(format!("labels {}: {reason}", shorten(text)));
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| bad("expected {name=\"value\", ...}"))?;
    let mut labels = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("a label name is [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        rest = rest[name_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| bad("expected = after a label name"))?
            .trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| bad("a label value is a double-quoted string"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('"' | '\\'))) => value.push(c),
                    _ => return Err(bad("unknown escape in a label value")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(bad("unterminated label value")),
            }
        };
        labels.push((name.to_string(), value));
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            return Err(bad("expected , between labels"));
        }
    }
    Ok(labels)
}

/// The level a log line states: a `level=`, `lvl=` or `severity=` pair (logfmt), a
/// `"level":"…"` key (JSON), or a level word in capitals (`ERROR`, `WARN`) or in brackets
/// (`[error]`, `<warn>`) among its first 256 bytes. `None` when it states none.
pub fn detect_level(line: &str) -> Option<LogLevel> {
    let head = match line.char_indices().nth(256) {
        Some((end, _)) => &line[..end],
        None => line,
    };
    for key in ["level=", "lvl=", "severity=", "\"level\":\"", "\"level\": \"", "\"severity\":\""] {
        if let Some(at) = head.find(key) {
            let value = head[at + key.len()..].trim_start_matches('"');
            let word: String = value.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            if let Ok(level) = LogLevel::parse(&word) {
                return Some(level);
            }
        }
    }
    let bytes = head.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_alphabetic() {
            start += 1;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .map_or(bytes.len(), |n| start + n);
        let word = &head[start..end];
        let bracketed = start > 0 && matches!(bytes[start - 1], b'[' | b'<') && matches!(bytes.get(end), Some(b']' | b'>'));
        if (bracketed || word.bytes().all(|b| b.is_ascii_uppercase()))
            && word.len() >= 3
            && let Ok(level) = LogLevel::parse(word)
        {
            return Some(level);
        }
        start = end;
    }
    None
}

fn to_batch(streams: Vec<Stream>, limits: &Limits) -> Result<Batch> {
    let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
    if entries > limits.max_batch_rows {
        return Err(Error::LimitExceeded {
            limit: Limit::BatchRows,
            value: entries as u64,
            max: limits.max_batch_rows as u64,
            context: Some("entries in one Loki push".into()),
        });
    }
    let mut batch = Batch::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in stream.labels {
            if value.is_empty() {
                continue; // an empty label is no label, as in Loki and Prometheus
            }
            if labels.insert(name.clone(), value).is_some() {
                return Err(in_stream(Error::invalid(format!("the label {name} is repeated")), i, None));
            }
        }
        let mut stated = None;
        for name in LEVEL_LABELS {
            if let Some(value) = labels.remove(name) {
                stated = stated.or_else(|| LogLevel::parse(&value).ok());
            }
        }
        let logger_name = labels
            .remove("logger")
            .or_else(|| labels.get("job").cloned())
            .unwrap_or_else(|| DEFAULT_LOGGER.to_string());
        let module = labels.remove("module");
        for (j, (timestamp, line, metadata)) in stream.entries.into_iter().enumerate() {
            let at = |e: Error| in_stream(e, i, Some(j));
            let level = stated.or_else(|| detect_level(&line)).unwrap_or(LogLevel::Info);
            limits.check_value_length("message", line.len()).map_err(at)?;
            let entry = LogEntry {
                timestamp,
                level,
                logger_name: logger_name.clone(),
                message: line,
                module: module.clone(),
                function_name: None,
                line_number: None,
                thread_id: None,
                process_id: None,
                extra_data: metadata.into_iter().map(|(k, v)| (k, FieldValue::Str(v))).collect(),
                tags: labels.clone(),
            };
            limits.check_series(&entry.series_key().map_err(at)?).map_err(at)?;
            limits.check_row(timestamp, 1).map_err(at)?;
            batch.add_log(&entry).map_err(at)?;
        }
    }
    Ok(batch)
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(120).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// `e`, said of the `i`-th stream (from 1) and, when known, its `j`-th entry.
fn in_stream(e: Error, i: usize, j: Option<usize>) -> Error {
    match e {
        Error::InvalidInput { reason, .. } => Error::InvalidInput {
            line: Some(i as u64 + 1),
            column: None,
            reason: match j {
                Some(j) => format!("stream {}, entry {}: {reason}", i + 1, j + 1),
                None => format!("stream {}: {reason}", i + 1),
            },
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn rows(batch: &Batch) -> Vec<String> {
        batch
            .rows()
            .map(|(key, time, fields)| {
                let fields: Vec<String> = fields.map(|(n, v)| format!("{n}={v:?}")).collect();
                format!("{key} {time} {}", fields.join(","))
            })
            .collect()
    }

    #[test]
    fn json_and_protobuf_pushes_give_the_same_rows() {
        let json = br#"{"streams":[{"stream":{"job":"varlogs","filename":"/var/log/a.log"},"values":[
            ["1451606400000000000","2016-01-01 ERROR disk full"],
            ["1451606401000000000","all quiet",{"trace_id":"abc"}]]}]}"#;
        let from_json = decode_json(json, &Limits::default()).unwrap();
        let request = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="varlogs", filename="/var/log/a.log"}"#.into(),
                entries: vec![
                    EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: 1_451_606_400,
                            nanos: 0,
                        }),
                        line: "2016-01-01 ERROR disk full".into(),
                        structured_metadata: Vec::new(),
                    },
                    EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: 1_451_606_401,
                            nanos: 0,
                        }),
                        line: "all quiet".into(),
                        structured_metadata: vec![LabelPair {
                            name: "trace_id".into(),
                            value: "abc".into(),
                        }],
                    },
                ],
            }],
        };
        let snappy = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).unwrap();
        let protobuf = snap::raw::Decoder::new().decompress_vec(&snappy).unwrap();
        let from_protobuf = decode_protobuf(&protobuf, &Limits::default()).unwrap();
        assert_eq!(rows(&from_json), rows(&from_protobuf));
        let rows = rows(&from_json);
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].contains("level=ERROR") && rows[0].contains("logger_name=varlogs") && rows[0].contains("job=varlogs"),
            "{rows:?}"
        );
        assert!(rows[0].contains("filename=/var/log/a.log"), "{rows:?}");
        assert!(
            rows[1].contains("level=INFO") && rows[1].contains("extra_data.trace_id=Str(\"abc\")"),
            "{rows:?}"
        );
    }

    #[test]
    fn a_level_label_wins_over_the_line() {
        let json = br#"{"streams":[{"stream":{"level":"warn","logger":"api"},"values":[["1","ERROR but labelled warn"]]}]}"#;
        let rows = rows(&decode_json(json, &Limits::default()).unwrap());
        assert!(rows[0].contains("level=WARNING") && rows[0].contains("logger_name=api"), "{rows:?}");
    }

    #[test]
    fn levels_are_found_in_lines() {
        for (line, level) in [
            ("ts=1 level=error msg=\"x\"", Some(LogLevel::Error)),
            (r#"{"level":"warn","msg":"slow"}"#, Some(LogLevel::Warning)),
            ("081109 203615 148 INFO dfs.DataNode: Receiving block", Some(LogLevel::Info)),
            ("[Sun Dec 04 04:47:44 2005] [error] mod_jk child", Some(LogLevel::Error)),
            ("no error was found here", None),
            ("", None),
        ] {
            assert_eq!(detect_level(line), level, "{line}");
        }
    }

    #[test]
    fn label_text_parses_with_escapes_and_refuses_garbage() {
        assert_eq!(
            parse_labels(r#"{a="1", b_2="x\"y\\z\n"}"#).unwrap(),
            vec![("a".to_string(), "1".to_string()), ("b_2".to_string(), "x\"y\\z\n".to_string())]
        );
        assert_eq!(parse_labels("{}").unwrap(), Vec::new());
        for bad in ["a=\"1\"", "{a=1}", "{a=\"1\" b=\"2\"}", "{a=\"1", "{1a=\"x\"}", "{a=\"\\q\"}"] {
            assert!(matches!(parse_labels(bad), Err(Error::InvalidInput { .. })), "{bad}");
        }
    }

    #[test]
    fn bad_pushes_name_the_stream_and_entry() {
        let limits = Limits::default();
        let cases: [(&[u8], &str); 5] = [
            (b"{}", "the body has no \"streams\" array"),
            (
                br#"{"streams":[{"stream":{},"values":[["1","a"]]},{"stream":{"a":1},"values":[]}]}"#,
                "stream 2: the label a is not a string",
            ),
            (
                br#"{"streams":[{"stream":{},"values":[["1","a"],["x","b"]]}]}"#,
                "stream 1, entry 2: the timestamp is not a string of integer nanoseconds",
            ),
            (
                br#"{"streams":[{"stream":{},"values":[["1"]]}]}"#,
                "stream 1, entry 1: an entry is [\"<unix ns>\", \"<line>\"(, {metadata})]",
            ),
            (
                br#"{"streams":[{"stream":{"level_":"x"},"values":[["1","a",{"k":2}]]}]}"#,
                "stream 1, entry 1: structured metadata values are strings",
            ),
        ];
        for (body, expected) in cases {
            match decode_json(body, &limits) {
                Err(Error::InvalidInput { reason, .. }) => assert_eq!(reason, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
        assert!(matches!(
            decode_protobuf(b"\x0a\x03\xff\xff\xff", &limits),
            Err(Error::InvalidInput { .. })
        ));
        let long = format!(
            r#"{{"streams":[{{"stream":{{}},"values":[["1","{}"]]}}]}}"#,
            "x".repeat(limits.max_string_value_bytes + 1)
        );
        assert!(matches!(
            decode_json(long.as_bytes(), &limits),
            Err(Error::LimitExceeded {
                limit: Limit::StringValueLength,
                ..
            })
        ));
    }
}
