//! The data model: every record is (timestamp, series, fields).
//!
//! A series is a [`SeriesKind`], a measurement name and sorted tags; the catalog maps it to a
//! dense [`SeriesId`]. Fields are named, typed values ([`FieldValue`]). The typed front doors
//! ([`MetricData`], [`PerformanceData`], [`LogEntry`], [`AlertEvent`]) are thin mappings onto
//! this model, so one WAL, one segment format and one read path serve them all.

mod batch;
pub(crate) mod commit;
pub(crate) mod kinds;

pub(crate) use batch::BatchRow;
pub use batch::{Batch, BatchMark};
pub use commit::{
    COMMIT_MEASUREMENT, CommitData, CommitHash, DIFF_MEASUREMENT, DiffData, HashKind, StorageMetadata, StorageResult, StorageStatus,
    path_bytes, path_text, quote_path,
};
pub use kinds::{AlertEvent, AlertState, LogEntry, LogLevel, Metadata, MetricData, PerformanceData};

use crate::error::{Error, Result};
use std::fmt;

/// Dense identifier of a series in the catalog, assigned in order of first write.
pub type SeriesId = u32;

/// One stored value.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// A 64-bit float; every bit pattern (NaN payloads, -0.0, infinities) is kept exactly.
    F64(f64),
    /// A 64-bit signed integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// UTF-8 text. Log messages and alert descriptions are string fields.
    Str(String),
    /// Bytes of any kind: the diff of a file in a commit.
    Bytes(Vec<u8>),
}

impl FieldValue {
    /// The value as JSON: numbers (a non-finite float as null), booleans, strings, and
    /// bytes in base64 (standard alphabet, padded).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::F64(v) => serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, serde_json::Value::Number),
            FieldValue::I64(v) => (*v).into(),
            FieldValue::Bool(v) => (*v).into(),
            FieldValue::Str(v) => v.clone().into(),
            FieldValue::Bytes(v) => base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v).into(),
        }
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            FieldValue::F64(_) => ValueType::F64,
            FieldValue::I64(_) => ValueType::I64,
            FieldValue::Bool(_) => ValueType::Bool,
            FieldValue::Str(_) => ValueType::Str,
            FieldValue::Bytes(_) => ValueType::Bytes,
        }
    }

    /// The value as a float, for numeric types.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::F64(v) => Some(*v),
            FieldValue::I64(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The value as text, for strings.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as bytes, for byte strings.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            FieldValue::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// The WAL encoding of a value: its variant (0 float, 1 integer, 2 boolean, 3 string,
/// 4 bytes), then the value in bincode's standard encoding. The variant is one byte, which
/// is what bincode's varint of a number below 251 is, so the bytes equal a derived encoding;
/// written by hand so the hot write path does not call the varint encoder per value.
impl bincode::Encode for FieldValue {
    #[inline]
    fn encode<E: bincode::enc::Encoder>(&self, e: &mut E) -> Result<(), bincode::error::EncodeError> {
        use bincode::enc::write::Writer;
        match self {
            FieldValue::F64(v) => {
                e.writer().write(&[0])?;
                v.encode(e)
            }
            FieldValue::I64(v) => {
                e.writer().write(&[1])?;
                v.encode(e)
            }
            FieldValue::Bool(v) => {
                e.writer().write(&[2])?;
                v.encode(e)
            }
            FieldValue::Str(v) => {
                e.writer().write(&[3])?;
                v.encode(e)
            }
            FieldValue::Bytes(v) => {
                e.writer().write(&[4])?;
                v.encode(e)
            }
        }
    }
}

/// Values compare by bits: `NaN == NaN` with the same payload, `0.0 != -0.0`. A store must
/// give back exactly what it was given, and this is the equality that checks it.
impl PartialEq for FieldValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldValue::F64(a), FieldValue::F64(b)) => a.to_bits() == b.to_bits(),
            (FieldValue::I64(a), FieldValue::I64(b)) => a == b,
            (FieldValue::Bool(a), FieldValue::Bool(b)) => a == b,
            (FieldValue::Str(a), FieldValue::Str(b)) => a == b,
            (FieldValue::Bytes(a), FieldValue::Bytes(b)) => a == b,
            _ => false,
        }
    }
}
impl Eq for FieldValue {}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::F64(v) => write!(f, "{v}"),
            FieldValue::I64(v) => write!(f, "{v}"),
            FieldValue::Bool(v) => write!(f, "{v}"),
            FieldValue::Str(v) => f.write_str(v),
            FieldValue::Bytes(v) => write!(f, "<{} bytes>", v.len()),
        }
    }
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::F64(v)
    }
}
impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::I64(v)
    }
}
impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Str(v)
    }
}
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Str(v.to_owned())
    }
}

/// The type of a field value. The discriminants are stored on disk.
///
/// A field name may carry values of several types over time (`x=1i` today, `x=1.5`
/// tomorrow); each (name, type) pair is its own column, so nothing is rejected or converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ValueType {
    /// [`FieldValue::F64`].
    F64 = 1,
    /// [`FieldValue::I64`].
    I64 = 2,
    /// [`FieldValue::Bool`].
    Bool = 3,
    /// [`FieldValue::Str`].
    Str = 4,
    /// [`FieldValue::Bytes`] (diffs of commits).
    Bytes = 5,
}

impl ValueType {
    /// Decodes the on-disk discriminant.
    pub fn from_u8(v: u8) -> Option<ValueType> {
        Some(match v {
            1 => ValueType::F64,
            2 => ValueType::I64,
            3 => ValueType::Bool,
            4 => ValueType::Str,
            5 => ValueType::Bytes,
            _ => return None,
        })
    }

    /// Lower-case name: `float`, `integer`, `boolean`, `string`, `bytes`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::F64 => "float",
            ValueType::I64 => "integer",
            ValueType::Bool => "boolean",
            ValueType::Str => "string",
            ValueType::Bytes => "bytes",
        }
    }
}

/// Which front door a series belongs to. The discriminants are stored on disk.
///
/// The kind is part of the series identity, and it decides how duplicates are treated:
/// [`SeriesKind::Metric`] keeps one value per timestamp (the last write wins, as in every
/// TSDB); every other kind is a stream of events where two rows with the same timestamp are
/// two records, each with its own record id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SeriesKind {
    /// Gauges and counters ([`MetricData`], line protocol).
    Metric = 1,
    /// Performance samples ([`PerformanceData`]).
    Performance = 2,
    /// Log records ([`LogEntry`]).
    Log = 3,
    /// Alert events ([`AlertEvent`]).
    Alert = 4,
    /// Git commits and the files of each ([`CommitData`], [`DiffData`]).
    Commit = 5,
}

impl SeriesKind {
    /// Decodes the on-disk discriminant.
    pub fn from_u8(v: u8) -> Option<SeriesKind> {
        Some(match v {
            1 => SeriesKind::Metric,
            2 => SeriesKind::Performance,
            3 => SeriesKind::Log,
            4 => SeriesKind::Alert,
            5 => SeriesKind::Commit,
            _ => return None,
        })
    }

    /// True for kinds whose rows are individual events: duplicates of a timestamp are kept
    /// and each row carries a stable record id.
    pub fn is_event(self) -> bool {
        !matches!(self, SeriesKind::Metric)
    }

    /// String fields whose text the full-text index holds: `message` of logs, `title` and
    /// `description` of alerts, `message` of commits and `file_path` of their files.
    pub fn text_fields(self) -> &'static [&'static str] {
        match self {
            SeriesKind::Log => &["message"],
            SeriesKind::Alert => &["title", "description"],
            SeriesKind::Commit => &["message", "file_path"],
            _ => &[],
        }
    }

    /// The indexed text of a row: its [`SeriesKind::text_fields`] that are present, joined by
    /// a newline; `None` when it has none. A single field is borrowed, not copied.
    pub fn row_text<'a>(self, field: impl Fn(&str) -> Option<&'a str>) -> Option<std::borrow::Cow<'a, str>> {
        let mut text: Option<std::borrow::Cow<'a, str>> = None;
        for name in self.text_fields() {
            if let Some(value) = field(name) {
                match &mut text {
                    Some(t) => {
                        let t = t.to_mut();
                        t.push('\n');
                        t.push_str(value);
                    }
                    None => text = Some(std::borrow::Cow::Borrowed(value)),
                }
            }
        }
        text
    }

    /// Lower-case name as used in JSON lines: `metric`, `performance`, `log`, `alert`,
    /// `commit`.
    pub fn name(self) -> &'static str {
        match self {
            SeriesKind::Metric => "metric",
            SeriesKind::Performance => "performance",
            SeriesKind::Log => "log",
            SeriesKind::Alert => "alert",
            SeriesKind::Commit => "commit",
        }
    }

    /// Parses [`SeriesKind::name`].
    pub fn parse(name: &str) -> Option<SeriesKind> {
        Some(match name {
            "metric" => SeriesKind::Metric,
            "performance" => SeriesKind::Performance,
            "log" => SeriesKind::Log,
            "alert" => SeriesKind::Alert,
            "commit" => SeriesKind::Commit,
            _ => return None,
        })
    }
}

/// Encoded as its on-disk discriminant byte, like everywhere else.
impl bincode::Encode for SeriesKind {
    fn encode<E: bincode::enc::Encoder>(&self, e: &mut E) -> Result<(), bincode::error::EncodeError> {
        bincode::Encode::encode(&(*self as u8), e)
    }
}

impl<C> bincode::Decode<C> for SeriesKind {
    fn decode<D: bincode::de::Decoder<Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
        let v = <u8 as bincode::Decode<C>>::decode(d)?;
        SeriesKind::from_u8(v).ok_or(bincode::error::DecodeError::Other("unknown series kind"))
    }
}

/// The identity of a series: kind, measurement and tags sorted by key.
///
/// ```
/// use annals::{SeriesKey, SeriesKind};
/// let key = SeriesKey::new(SeriesKind::Metric, "cpu", [("region", "eu"), ("host", "a")]).unwrap();
/// assert_eq!(key.tags()[0].0, "host");
/// assert_eq!(key.to_string(), "cpu,host=a,region=eu");
/// ```
///
/// Cloning is cheap: the parts are shared (a batch refers to a series on every row, and a
/// row-by-row producer clones its keys into each batch).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    parts: std::sync::Arc<KeyParts>,
}

/// What a [`SeriesKey`] holds; its derived encoding is the key's WAL and catalog encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, bincode::Encode)]
struct KeyParts {
    kind: SeriesKind,
    measurement: String,
    tags: Vec<(String, String)>,
}

impl bincode::Encode for SeriesKey {
    fn encode<E: bincode::enc::Encoder>(&self, e: &mut E) -> Result<(), bincode::error::EncodeError> {
        self.parts.encode(e)
    }
}

impl fmt::Debug for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesKey")
            .field("kind", &self.parts.kind)
            .field("measurement", &self.parts.measurement)
            .field("tags", &self.parts.tags)
            .finish()
    }
}
impl SeriesKey {
    /// Builds a key, sorting the tags. Fails on an empty measurement, an empty tag key or
    /// value, or a tag key given twice.
    pub fn new<K, V>(kind: SeriesKind, measurement: impl Into<String>, tags: impl IntoIterator<Item = (K, V)>) -> Result<SeriesKey>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut parts = KeyParts {
            kind,
            measurement: measurement.into(),
            tags: tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        };
        parts.tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let key = SeriesKey {
            parts: std::sync::Arc::new(parts),
        };
        key.check()?;
        Ok(key)
    }

    /// A metric series without tags.
    pub fn metric(measurement: impl Into<String>) -> Result<SeriesKey> {
        SeriesKey::new::<String, String>(SeriesKind::Metric, measurement, [])
    }

    /// Returns the key with one more tag (replacing none: a duplicate key is an error).
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Result<SeriesKey> {
        let (key, value) = (key.into(), value.into());
        let tags = &mut std::sync::Arc::make_mut(&mut self.parts).tags;
        let at = tags.partition_point(|(k, _)| k.as_str() < key.as_str());
        tags.insert(at, (key, value));
        self.check()?;
        Ok(self)
    }

    /// Checks the invariants a decoded key must also satisfy.
    pub(crate) fn check(&self) -> Result<()> {
        if self.parts.measurement.is_empty() {
            return Err(Error::invalid("empty measurement name"));
        }
        for (i, (k, v)) in self.parts.tags.iter().enumerate() {
            if k.is_empty() {
                return Err(Error::invalid(format!("empty tag key in series {self}")));
            }
            if v.is_empty() {
                return Err(Error::invalid(format!("empty value for tag {k:?} in series {self}")));
            }
            if i > 0 && self.parts.tags[i - 1].0 >= *k {
                return Err(Error::invalid(format!("tag {k:?} given twice in series {self}")));
            }
        }
        Ok(())
    }

    /// The kind.
    pub fn kind(&self) -> SeriesKind {
        self.parts.kind
    }

    /// The measurement name.
    pub fn measurement(&self) -> &str {
        &self.parts.measurement
    }

    /// Tags sorted by key.
    pub fn tags(&self) -> &[(String, String)] {
        &self.parts.tags
    }

    /// The value of one tag.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.parts
            .tags
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.parts.tags[i].1.as_str())
    }

    /// Approximate heap bytes, for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.parts.measurement.len() + self.parts.tags.iter().map(|(k, v)| k.len() + v.len() + 48).sum::<usize>() + 48
    }
}

/// Line-protocol style: `measurement,k=v,k2=v2` with `,`, `=` and space escaped.
impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.parts.measurement, &[',', ' '])?;
        for (k, v) in &self.parts.tags {
            f.write_str(",")?;
            write_escaped(f, k, &[',', '=', ' '])?;
            f.write_str("=")?;
            write_escaped(f, v, &[',', '=', ' '])?;
        }
        Ok(())
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, special: &[char]) -> fmt::Result {
    for c in text.chars() {
        if special.contains(&c) || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_and_validate() {
        let k = SeriesKey::new(SeriesKind::Log, "log", [("b", "2"), ("a", "1")]).unwrap();
        assert_eq!(k.tags(), &[("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]);
        assert_eq!(k.tag("b"), Some("2"));
        assert_eq!(k.tag("c"), None);
        assert!(SeriesKey::new(SeriesKind::Metric, "", [("a", "1")]).is_err());
        assert!(SeriesKey::new(SeriesKind::Metric, "m", [("a", "1"), ("a", "2")]).is_err());
        assert!(SeriesKey::new(SeriesKind::Metric, "m", [("", "1")]).is_err());
        assert!(SeriesKey::new(SeriesKind::Metric, "m", [("a", "")]).is_err());
        let k = SeriesKey::metric("m")
            .unwrap()
            .with_tag("z", "1")
            .unwrap()
            .with_tag("a", "2")
            .unwrap();
        assert_eq!(k.to_string(), "m,a=2,z=1");
        assert!(k.with_tag("a", "3").is_err());
        let odd = SeriesKey::new(SeriesKind::Metric, "m m", [("k=", "v,w")]).unwrap();
        assert_eq!(odd.to_string(), r"m\ m,k\==v\,w");
    }

    #[test]
    fn float_values_compare_by_bits() {
        assert_eq!(FieldValue::F64(f64::NAN), FieldValue::F64(f64::NAN));
        assert_ne!(FieldValue::F64(0.0), FieldValue::F64(-0.0));
        assert_ne!(FieldValue::F64(1.0), FieldValue::I64(1));
    }
}
