//! Python objects to annals' records and back.
//!
//! Records arrive as the data classes of `annals._types` (or any object with their
//! attributes) and leave as instances of them. Every refusal names the argument, the record
//! and the attribute (`metrics[3].value`).

use crate::errors::{invalid, wrong_type};
use annals::{AlertEvent, AlertState, FieldValue, LogEntry, LogLevel, Metadata, MetricData, PerformanceData};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyModule, PyString, PyTuple};
use pyo3::{IntoPyObjectExt, intern};
use std::collections::BTreeMap;

/// Where a value came from, formatted only when it is refused: `metrics[3].tags["host"]`.
#[derive(Clone, Copy)]
pub struct Loc<'a> {
    /// The argument or record (`metrics`, `query`).
    pub arg: &'a str,
    /// The record's position in a list argument.
    pub index: Option<usize>,
    /// The attribute, empty for the argument itself.
    pub attr: &'a str,
    /// The key within a dict attribute.
    pub key: Option<&'a str>,
}

impl<'a> Loc<'a> {
    /// The argument `arg` itself.
    pub fn arg(arg: &'a str) -> Loc<'a> {
        Loc {
            arg,
            index: None,
            attr: "",
            key: None,
        }
    }

    /// Item `index` of the list argument `arg`.
    pub fn item(arg: &'a str, index: usize) -> Loc<'a> {
        Loc {
            arg,
            index: Some(index),
            attr: "",
            key: None,
        }
    }

    /// Attribute `attr` of this record.
    pub fn attr(self, attr: &'a str) -> Loc<'a> {
        Loc { attr, ..self }
    }

    fn key(self, key: &'a str) -> Loc<'a> {
        Loc { key: Some(key), ..self }
    }
}

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.arg)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        if !self.attr.is_empty() {
            write!(f, ".{}", self.attr)?;
        }
        if let Some(k) = self.key {
            write!(f, "[{k:?}]")?;
        }
        Ok(())
    }
}

static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static EPOCH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `annals._types`.
pub fn types(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(TYPES
        .get_or_try_init(py, || PyModule::import(py, "annals._types").map(Bound::unbind))?
        .bind(py))
}

fn epoch(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(EPOCH
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            let datetime = PyModule::import(py, "datetime")?;
            let utc = datetime.getattr("timezone")?.getattr("utc")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("tzinfo", utc)?;
            Ok(datetime.getattr("datetime")?.call((1970, 1, 1), Some(&kwargs))?.unbind())
        })?
        .bind(py))
}

fn timedelta(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(TIMEDELTA
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(PyModule::import(py, "datetime")?.getattr("timedelta")?.unbind())
        })?
        .bind(py))
}

/// `annals._types.<name>` (a data class, an enum or an enum member `Enum.MEMBER`), looked
/// up once per call site.
macro_rules! typed {
    ($py:expr, $name:literal) => {{
        static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        CELL.get_or_try_init($py, || -> PyResult<Py<PyAny>> {
            let mut value = types($py)?.clone().into_any();
            for part in $name.split('.') {
                value = value.getattr(part)?;
            }
            Ok(value.unbind())
        })
        .map(|v| v.bind($py))
    }};
}

/// An instance of the data class `class` of `annals._types` with `fields` as its
/// attributes, without running `__init__` (the values are already checked).
pub fn instance<'py>(py: Python<'py>, class: &Bound<'py, PyAny>, fields: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    let new = OBJECT_NEW.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(PyModule::import(py, "builtins")?.getattr("object")?.getattr("__new__")?.unbind())
    })?;
    let object = new.bind(py).call1((class,))?;
    object.setattr(intern!(py, "__dict__"), fields)?;
    Ok(object)
}

/// Nanoseconds since the epoch from an aware datetime or an integer.
pub fn timestamp_ns(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<i64> {
    let py = value.py();
    if value.is_instance_of::<PyBool>() {
        return Err(wrong_type(py, at, "an aware datetime or integer nanoseconds", value));
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .map_err(|_| invalid(py, at, "integer nanoseconds outside the 64-bit range"));
    }
    if value.is_instance_of::<PyDateTime>() {
        if value.call_method0(intern!(py, "utcoffset"))?.is_none() {
            return Err(invalid(
                py,
                at,
                "a naive datetime is refused: give a timezone-aware one (tzinfo=timezone.utc) or integer nanoseconds",
            ));
        }
        // Aware subtraction applies the value's own UTC offset, whatever its tzinfo.
        let delta = value.sub(epoch(py)?)?;
        let days: i64 = delta.getattr(intern!(py, "days"))?.extract()?;
        let seconds: i64 = delta.getattr(intern!(py, "seconds"))?.extract()?;
        let micros: i64 = delta.getattr(intern!(py, "microseconds"))?.extract()?;
        return days
            .checked_mul(86_400)
            .and_then(|s| s.checked_add(seconds))
            .and_then(|s| s.checked_mul(1_000_000))
            .and_then(|us| us.checked_add(micros))
            .and_then(|us| us.checked_mul(1000))
            .ok_or_else(|| invalid(py, at, "the datetime is outside the range of nanosecond timestamps (1677..2262)"));
    }
    Err(wrong_type(py, at, "an aware datetime or integer nanoseconds", value))
}

/// A UTC datetime (microseconds; the nanoseconds below are dropped) or the integer.
pub fn timestamp_out(py: Python<'_>, ns: i64, as_ns: bool) -> PyResult<Bound<'_, PyAny>> {
    if as_ns {
        return ns.into_bound_py_any(py);
    }
    let micros = ns.div_euclid(1000);
    let seconds = micros.div_euclid(1_000_000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        // Outside datetime's years (only for timestamps near the ends of the i64 range).
        let delta = timedelta(py)?.call1((0, 0, micros))?;
        return epoch(py)?.add(delta);
    }
    // One call of the constructor (cheaper than epoch + timedelta under the stable ABI).
    let datetime = typed_datetime(py)?;
    datetime.call1((
        year,
        month,
        day,
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        micros.rem_euclid(1_000_000),
        utc(py)?,
    ))
}

/// Year, month and day of a day count since 1970-01-01 (proleptic Gregorian; the
/// algorithm of Howard Hinnant's "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

static DATETIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn typed_datetime(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(DATETIME
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(PyModule::import(py, "datetime")?.getattr("datetime")?.unbind())
        })?
        .bind(py))
}

fn utc(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(UTC
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(PyModule::import(py, "datetime")?.getattr("timezone")?.getattr("utc")?.unbind())
        })?
        .bind(py))
}

/// A record being read: its `__dict__` when it has one (a data class instance keeps its
/// fields there, and a dict lookup skips the type's attribute search), else `getattr`.
struct Fields<'a, 'py> {
    object: &'a Bound<'py, PyAny>,
    dict: Option<Bound<'py, PyDict>>,
    at: Loc<'a>,
}

impl<'a, 'py> Fields<'a, 'py> {
    fn of(object: &'a Bound<'py, PyAny>, at: Loc<'a>) -> Fields<'a, 'py> {
        let dict = object
            .getattr(intern!(object.py(), "__dict__"))
            .ok()
            .and_then(|d| d.cast_into::<PyDict>().ok());
        Fields { object, dict, at }
    }

    /// Attribute `key`, or None when the record lacks it.
    fn optional(&self, key: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(dict) = &self.dict
            && let Some(value) = dict.get_item(key)?
        {
            return Ok(Some(value));
        }
        Ok(self.object.getattr(key).ok())
    }

    /// Attribute `key` (named `name`), required.
    fn get(&self, key: &Bound<'py, PyString>, name: &'static str) -> PyResult<Bound<'py, PyAny>> {
        self.optional(key)?
            .ok_or_else(|| invalid(self.object.py(), self.at, format!("has no attribute {name:?}")))
    }
}

/// Attribute `$name` of the record `$fields` (see [`Fields`]), with its name interned once.
macro_rules! get {
    ($fields:expr, $name:literal) => {
        $fields.get(intern!($fields.object.py(), $name), $name)
    };
}

fn text(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    Err(wrong_type(value.py(), at, "str", value))
}

fn optional_text(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<Option<String>> {
    if value.is_none() { Ok(None) } else { text(value, at).map(Some) }
}

fn number(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<f64> {
    if value.is_instance_of::<PyFloat>() || (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>()) {
        return value.extract::<f64>();
    }
    Err(wrong_type(value.py(), at, "a number", value))
}

fn optional_number(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<Option<f64>> {
    if value.is_none() { Ok(None) } else { number(value, at).map(Some) }
}

fn integer(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<i64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        return value
            .extract::<i64>()
            .map_err(|_| invalid(value.py(), at, "outside the 64-bit integer range"));
    }
    Err(wrong_type(value.py(), at, "int", value))
}

fn optional_integer(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<Option<i64>> {
    if value.is_none() { Ok(None) } else { integer(value, at).map(Some) }
}

fn tags(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<BTreeMap<String, String>> {
    let py = value.py();
    if value.is_none() {
        return Ok(BTreeMap::new());
    }
    let dict = value
        .cast::<PyDict>()
        .map_err(|_| wrong_type(py, at, "a dict of str to str", value))?;
    let mut out = BTreeMap::new();
    for (k, v) in dict.iter() {
        let key = text(&k, at)?;
        let value = text(&v, at.key(&key))?;
        out.insert(key, value);
    }
    Ok(out)
}

/// A metadata or extra value: float, int, bool, str or bytes.
pub fn field_value(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<FieldValue> {
    if value.is_instance_of::<PyBool>() {
        return Ok(FieldValue::Bool(value.extract()?));
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<i64>()
            .map(FieldValue::I64)
            .map_err(|_| invalid(value.py(), at, "outside the 64-bit integer range"));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(FieldValue::F64(value.extract()?));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(FieldValue::Str(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(FieldValue::Bytes(b.as_bytes().to_vec()));
    }
    Err(wrong_type(value.py(), at, "float, int, bool, str or bytes", value))
}

fn metadata(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<Metadata> {
    let py = value.py();
    if value.is_none() {
        return Ok(Metadata::new());
    }
    let dict = value.cast::<PyDict>().map_err(|_| wrong_type(py, at, "a dict", value))?;
    let mut out = Metadata::new();
    for (k, v) in dict.iter() {
        let key = text(&k, at)?;
        let value = field_value(&v, at.key(&key))?;
        out.insert(key, value);
    }
    Ok(out)
}

/// The name of an enum member or a string (`LogLevel.ERROR`, `"error"`).
fn enum_text(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<String> {
    let py = value.py();
    if let Ok(s) = value.cast::<PyString>() {
        // A `str` enum member is a `str` too: its value is the text.
        return Ok(s.to_cow()?.into_owned());
    }
    if let Ok(name) = value.getattr(intern!(py, "name"))
        && let Ok(name) = name.cast::<PyString>()
    {
        return Ok(name.to_cow()?.into_owned());
    }
    Err(wrong_type(py, at, "an enum member or str", value))
}

/// A log level: a `LogLevel`, its name, or a `logging` level number.
pub fn level(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<LogLevel> {
    let py = value.py();
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        let n: i64 = value.extract().unwrap_or(0);
        return Ok(match n {
            i64::MIN..=10 => LogLevel::Debug,
            11..=20 => LogLevel::Info,
            21..=30 => LogLevel::Warning,
            31..=40 => LogLevel::Error,
            _ => LogLevel::Critical,
        });
    }
    LogLevel::parse(&enum_text(value, at)?).map_err(|e| invalid(py, at, annals_reason(e)))
}

fn alert_state(value: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<AlertState> {
    AlertState::parse(&enum_text(value, at)?).map_err(|e| invalid(value.py(), at, annals_reason(e)))
}

/// The reason of an `InvalidInput` error, or the error's text.
pub fn annals_reason(error: annals::Error) -> String {
    match error {
        annals::Error::InvalidInput { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// A sequence argument as a list of its items (a list, tuple or any iterable).
pub fn items<'py>(value: &Bound<'py, PyAny>, at: Loc<'_>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = value.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        return Err(wrong_type(value.py(), at, "a list", value));
    }
    match value.try_iter() {
        Ok(iter) => iter.collect(),
        Err(_) => Err(wrong_type(value.py(), at, "a list", value)),
    }
}

/// Every item of the list argument `arg`, converted by `convert`; the first refusal names
/// its position.
pub fn each<T>(list: &Bound<'_, PyAny>, arg: &str, convert: impl Fn(&Bound<'_, PyAny>, Loc<'_>) -> PyResult<T>) -> PyResult<Vec<T>> {
    items(list, Loc::arg(arg))?
        .iter()
        .enumerate()
        .map(|(i, item)| convert(item, Loc::item(arg, i)))
        .collect()
}

pub fn metric(object: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<MetricData> {
    let f = Fields::of(object, at);
    let w = |name: &'static str| at.attr(name);
    Ok(MetricData {
        timestamp: timestamp_ns(&get!(f, "timestamp")?, w("timestamp"))?,
        metric_type: text(&get!(f, "metric_type")?, w("metric_type"))?,
        metric_name: text(&get!(f, "metric_name")?, w("metric_name"))?,
        value: number(&get!(f, "value")?, w("value"))?,
        unit: optional_text(&get!(f, "unit")?, w("unit"))?,
        tags: tags(&get!(f, "tags")?, w("tags"))?,
    })
}

pub fn performance(object: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<PerformanceData> {
    let f = Fields::of(object, at);
    let w = |name: &'static str| at.attr(name);
    Ok(PerformanceData {
        timestamp: timestamp_ns(&get!(f, "timestamp")?, w("timestamp"))?,
        component: text(&get!(f, "component")?, w("component"))?,
        operation: text(&get!(f, "operation")?, w("operation"))?,
        duration_ms: optional_number(&get!(f, "duration_ms")?, w("duration_ms"))?,
        throughput: optional_number(&get!(f, "throughput")?, w("throughput"))?,
        efficiency_percent: optional_number(&get!(f, "efficiency_percent")?, w("efficiency_percent"))?,
        error_count: optional_integer(&get!(f, "error_count")?, w("error_count"))?.unwrap_or(0),
        metadata: metadata(&get!(f, "metadata")?, w("metadata"))?,
        tags: tags(&get!(f, "tags")?, w("tags"))?,
    })
}

pub fn log(object: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<LogEntry> {
    let f = Fields::of(object, at);
    let w = |name: &'static str| at.attr(name);
    Ok(LogEntry {
        timestamp: timestamp_ns(&get!(f, "timestamp")?, w("timestamp"))?,
        level: level(&get!(f, "level")?, w("level"))?,
        logger_name: text(&get!(f, "logger_name")?, w("logger_name"))?,
        message: text(&get!(f, "message")?, w("message"))?,
        module: optional_text(&get!(f, "module")?, w("module"))?,
        function_name: optional_text(&get!(f, "function_name")?, w("function_name"))?,
        line_number: optional_integer(&get!(f, "line_number")?, w("line_number"))?,
        thread_id: optional_integer(&get!(f, "thread_id")?, w("thread_id"))?,
        process_id: optional_integer(&get!(f, "process_id")?, w("process_id"))?,
        extra_data: metadata(&get!(f, "extra_data")?, w("extra_data"))?,
        tags: tags(&get!(f, "tags")?, w("tags"))?,
    })
}

pub fn alert(object: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<AlertEvent> {
    let f = Fields::of(object, at);
    let w = |name: &'static str| at.attr(name);
    let state = match object.getattr(intern!(object.py(), "state")) {
        Ok(s) if !s.is_none() => alert_state(&s, w("state"))?,
        _ => AlertState::Raised,
    };
    Ok(AlertEvent {
        timestamp: timestamp_ns(&get!(f, "timestamp")?, w("timestamp"))?,
        alert_id: text(&get!(f, "alert_id")?, w("alert_id"))?,
        state,
        level: level(&get!(f, "level")?, w("level"))?,
        category: text(&get!(f, "category")?, w("category"))?,
        title: text(&get!(f, "title")?, w("title"))?,
        description: optional_text(&get!(f, "description")?, w("description"))?,
        source_component: optional_text(&get!(f, "source_component")?, w("source_component"))?,
        metadata: metadata(&get!(f, "metadata")?, w("metadata"))?,
    })
}

/// A log record from the logging handler's tuple: (timestamp ns, level name, logger name,
/// message, module, function, line, thread id, process id, extra dict).
pub fn log_tuple(item: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<LogEntry> {
    let py = item.py();
    let tuple = item.cast::<PyTuple>().map_err(|_| wrong_type(py, at, "a tuple", item))?;
    if tuple.len() != 10 {
        return Err(invalid(py, at, format!("a log tuple has 10 items, not {}", tuple.len())));
    }
    let get = |i: usize| tuple.get_item(i);
    let w = |name: &'static str| at.attr(name);
    Ok(LogEntry {
        timestamp: timestamp_ns(&get(0)?, w("timestamp"))?,
        level: level(&get(1)?, w("level"))?,
        logger_name: text(&get(2)?, w("logger_name"))?,
        message: text(&get(3)?, w("message"))?,
        module: optional_text(&get(4)?, w("module"))?,
        function_name: optional_text(&get(5)?, w("function_name"))?,
        line_number: optional_integer(&get(6)?, w("line_number"))?,
        thread_id: optional_integer(&get(7)?, w("thread_id"))?,
        process_id: optional_integer(&get(8)?, w("process_id"))?,
        extra_data: metadata(&get(9)?, w("extra_data"))?,
        tags: BTreeMap::new(),
    })
}

pub fn commit(object: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<annals::CommitData> {
    let f = Fields::of(object, at);
    let w = |name: &'static str| at.attr(name);
    let optional = |name: &'static str| match f.optional(&PyString::intern(object.py(), name))? {
        Some(v) => optional_text(&v, w(name)),
        None => Ok(None),
    };
    let commit_count = match f.optional(intern!(object.py(), "commit_count"))? {
        Some(v) if !v.is_none() => integer(&v, w("commit_count"))?,
        _ => 1,
    };
    Ok(annals::CommitData {
        commit_hash: text(&get!(f, "commit_hash")?, w("commit_hash"))?,
        message: text(&get!(f, "message")?, w("message"))?,
        author: text(&get!(f, "author")?, w("author"))?,
        author_email: optional("author_email")?,
        timestamp: timestamp_ns(&get!(f, "timestamp")?, w("timestamp"))?,
        repository: text(&get!(f, "repository")?, w("repository"))?,
        branch: text(&get!(f, "branch")?, w("branch"))?,
        pusher: optional("pusher")?,
        commit_count,
    })
}

pub fn diff(object: &Bound<'_, PyAny>, at: Loc<'_>) -> PyResult<annals::DiffData> {
    let py = object.py();
    let f = Fields::of(object, at);
    let w = |name: &'static str| at.attr(name);
    let optional_attr = |name: &'static str| f.optional(&PyString::intern(py, name)).ok().flatten().filter(|v| !v.is_none());
    let content = match optional_attr("diff_content") {
        None => None,
        Some(v) => {
            if let Ok(b) = v.cast::<PyBytes>() {
                Some(b.as_bytes().to_vec())
            } else if let Ok(s) = v.cast::<PyString>() {
                Some(s.to_cow()?.as_bytes().to_vec())
            } else {
                return Err(wrong_type(py, w("diff_content"), "bytes or str", &v));
            }
        }
    };
    let binary = match optional_attr("binary") {
        None => false,
        Some(v) if v.is_instance_of::<PyBool>() => v.extract()?,
        Some(v) => return Err(wrong_type(py, w("binary"), "bool", &v)),
    };
    Ok(annals::DiffData {
        file_path: text(&get!(f, "file_path")?, w("file_path"))?,
        old_path: optional_attr("old_path").map(|v| text(&v, w("old_path"))).transpose()?,
        additions: optional_attr("additions")
            .map(|v| integer(&v, w("additions")))
            .transpose()?
            .unwrap_or(0),
        deletions: optional_attr("deletions")
            .map(|v| integer(&v, w("deletions")))
            .transpose()?
            .unwrap_or(0),
        binary,
        changes: optional_attr("changes").map(|v| text(&v, w("changes"))).transpose()?,
        diff_content: content,
    })
}

// ---- out ---------------------------------------------------------------------------

fn value_out<'py>(py: Python<'py>, value: &FieldValue) -> PyResult<Bound<'py, PyAny>> {
    match value {
        FieldValue::F64(v) => v.into_bound_py_any(py),
        FieldValue::I64(v) => v.into_bound_py_any(py),
        FieldValue::Bool(v) => v.into_bound_py_any(py),
        FieldValue::Str(v) => v.into_bound_py_any(py),
        FieldValue::Bytes(v) => Ok(PyBytes::new(py, v).into_any()),
    }
}

fn metadata_out<'py>(py: Python<'py>, values: &Metadata) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in values {
        dict.set_item(k, value_out(py, v)?)?;
    }
    Ok(dict)
}

fn tags_out<'py>(py: Python<'py>, tags: &BTreeMap<String, String>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in tags {
        dict.set_item(k, v)?;
    }
    Ok(dict)
}

fn level_out(py: Python<'_>, level: LogLevel) -> PyResult<&Bound<'_, PyAny>> {
    match level {
        LogLevel::Debug => typed!(py, "LogLevel.DEBUG"),
        LogLevel::Info => typed!(py, "LogLevel.INFO"),
        LogLevel::Warning => typed!(py, "LogLevel.WARNING"),
        LogLevel::Error => typed!(py, "LogLevel.ERROR"),
        LogLevel::Critical => typed!(py, "LogLevel.CRITICAL"),
    }
}

/// A record read back as its data class.
pub fn record_out<'py>(py: Python<'py>, record: &annals::history::Record, as_ns: bool) -> PyResult<Bound<'py, PyAny>> {
    use annals::history::Record;
    let d = PyDict::new(py);
    match record {
        Record::Metric(m) => {
            d.set_item(intern!(py, "timestamp"), timestamp_out(py, m.timestamp, as_ns)?)?;
            d.set_item(intern!(py, "metric_type"), &m.metric_type)?;
            d.set_item(intern!(py, "metric_name"), &m.metric_name)?;
            d.set_item(intern!(py, "value"), m.value)?;
            d.set_item(intern!(py, "unit"), &m.unit)?;
            d.set_item(intern!(py, "tags"), tags_out(py, &m.tags)?)?;
            instance(py, typed!(py, "MetricData")?, d)
        }
        Record::Performance(p) => {
            d.set_item(intern!(py, "timestamp"), timestamp_out(py, p.timestamp, as_ns)?)?;
            d.set_item(intern!(py, "component"), &p.component)?;
            d.set_item(intern!(py, "operation"), &p.operation)?;
            d.set_item(intern!(py, "duration_ms"), p.duration_ms)?;
            d.set_item(intern!(py, "throughput"), p.throughput)?;
            d.set_item(intern!(py, "efficiency_percent"), p.efficiency_percent)?;
            d.set_item(intern!(py, "error_count"), p.error_count)?;
            d.set_item(intern!(py, "metadata"), metadata_out(py, &p.metadata)?)?;
            d.set_item(intern!(py, "tags"), tags_out(py, &p.tags)?)?;
            instance(py, typed!(py, "PerformanceData")?, d)
        }
        Record::Log(l) => {
            d.set_item(intern!(py, "timestamp"), timestamp_out(py, l.timestamp, as_ns)?)?;
            d.set_item(intern!(py, "level"), level_out(py, l.level)?)?;
            d.set_item(intern!(py, "logger_name"), &l.logger_name)?;
            d.set_item(intern!(py, "message"), &l.message)?;
            d.set_item(intern!(py, "module"), &l.module)?;
            d.set_item(intern!(py, "function_name"), &l.function_name)?;
            d.set_item(intern!(py, "line_number"), l.line_number)?;
            d.set_item(intern!(py, "thread_id"), l.thread_id)?;
            d.set_item(intern!(py, "process_id"), l.process_id)?;
            d.set_item(intern!(py, "extra_data"), metadata_out(py, &l.extra_data)?)?;
            d.set_item(intern!(py, "tags"), tags_out(py, &l.tags)?)?;
            instance(py, typed!(py, "LogEntry")?, d)
        }
        Record::Alert(a) => alert_out(py, a, None, None, as_ns),
    }
}

/// An alert event as `AlertEvent`, with the times of its later events when known.
pub fn alert_out<'py>(
    py: Python<'py>,
    a: &AlertEvent,
    acknowledged_at: Option<i64>,
    resolved_at: Option<i64>,
    as_ns: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    let optional_time = |t: Option<i64>| -> PyResult<Bound<'py, PyAny>> {
        match t {
            Some(t) => timestamp_out(py, t, as_ns),
            None => Ok(py.None().into_bound(py)),
        }
    };
    d.set_item(intern!(py, "timestamp"), timestamp_out(py, a.timestamp, as_ns)?)?;
    d.set_item(intern!(py, "alert_id"), &a.alert_id)?;
    d.set_item(intern!(py, "level"), level_out(py, a.level)?)?;
    d.set_item(intern!(py, "category"), &a.category)?;
    d.set_item(intern!(py, "title"), &a.title)?;
    d.set_item(intern!(py, "description"), &a.description)?;
    d.set_item(intern!(py, "source_component"), &a.source_component)?;
    d.set_item(intern!(py, "metadata"), metadata_out(py, &a.metadata)?)?;
    d.set_item(
        intern!(py, "state"),
        match a.state {
            AlertState::Raised => typed!(py, "AlertState.RAISED")?,
            AlertState::Acknowledged => typed!(py, "AlertState.ACKNOWLEDGED")?,
            AlertState::Resolved => typed!(py, "AlertState.RESOLVED")?,
        },
    )?;
    d.set_item(intern!(py, "acknowledged_at"), optional_time(acknowledged_at)?)?;
    d.set_item(intern!(py, "resolved_at"), optional_time(resolved_at)?)?;
    instance(py, typed!(py, "AlertEvent")?, d)
}

pub fn storage_result_out<'py>(py: Python<'py>, r: &annals::StorageResult) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("success", r.success)?;
    let status = match r.status {
        annals::StorageStatus::Success => typed!(py, "StorageStatus.SUCCESS")?,
        annals::StorageStatus::Failed => typed!(py, "StorageStatus.FAILED")?,
        annals::StorageStatus::Duplicate => typed!(py, "StorageStatus.DUPLICATE")?,
    };
    d.set_item("status", status)?;
    d.set_item("commit_id", r.commit_id)?;
    d.set_item("message", &r.message)?;
    d.set_item("timestamp", timestamp_out(py, r.timestamp, false)?)?;
    let m = PyDict::new(py);
    m.set_item("total_additions", r.metadata.total_additions)?;
    m.set_item("total_deletions", r.metadata.total_deletions)?;
    m.set_item("files", r.metadata.files)?;
    m.set_item("inline_bytes", r.metadata.inline_bytes)?;
    m.set_item("offloaded_bytes", r.metadata.offloaded_bytes)?;
    d.set_item("metadata", m)?;
    instance(py, typed!(py, "StorageResult")?, d)
}

pub fn stored_commit_out<'py>(py: Python<'py>, s: &annals::history::StoredCommit) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    let c = &s.commit;
    d.set_item("commit_hash", &c.commit_hash)?;
    d.set_item("message", &c.message)?;
    d.set_item("author", &c.author)?;
    d.set_item("timestamp", timestamp_out(py, c.timestamp, false)?)?;
    d.set_item("repository", &c.repository)?;
    d.set_item("branch", &c.branch)?;
    d.set_item("author_email", &c.author_email)?;
    d.set_item("pusher", &c.pusher)?;
    d.set_item("commit_count", c.commit_count)?;
    d.set_item("commit_id", s.commit_id)?;
    d.set_item("additions", s.additions)?;
    d.set_item("deletions", s.deletions)?;
    d.set_item("diff_count", s.diff_count)?;
    let files = PyList::empty(py);
    for f in &s.files {
        let fd = PyDict::new(py);
        fd.set_item("file_path", &f.file_path)?;
        fd.set_item("additions", f.additions)?;
        fd.set_item("deletions", f.deletions)?;
        fd.set_item("binary", f.binary)?;
        fd.set_item("changes", &f.changes)?;
        fd.set_item("diff_bytes", f.diff_bytes)?;
        fd.set_item("stored", f.stored.as_str())?;
        fd.set_item("old_path", &f.old_path)?;
        files.append(instance(py, typed!(py, "StoredDiff")?, fd)?)?;
    }
    d.set_item("files", files)?;
    instance(py, typed!(py, "StoredCommit")?, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_423), (2025, 12, 1));
        assert_eq!(civil_from_days(-719_162), (1, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }
}
