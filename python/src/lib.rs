//! `annals._annals`: the native half of the `annals` Python package.
//!
//! One class, [`Store`], over [`annals::history::History`]. It converts Python objects to
//! annals' records and back (`convert`), maps `annals::Error` to the exceptions of
//! `annals.errors` (`errors`), and releases the GIL for every call into the store, so other
//! Python threads run during writes, fsyncs and queries. The Python modules of the package
//! (`History`, `AsyncHistory`, `DataStorageManager`, `HistoryLogHandler`) are built on it.

mod arrow;
mod convert;
mod errors;

use annals::history::{DataQuery, DataType, History};
use annals::{Durability, LogLevel, Options};
use convert::Loc;
use parking_lot::RwLock;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use std::time::Duration;

/// Nanoseconds since the epoch by the system clock.
fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An open annals store. Closing it (or dropping the last reference) flushes the head to
/// segments; every method after `close()` raises `annals.ClosedError`.
#[pyclass(module = "annals._annals", frozen)]
struct Store {
    history: RwLock<Option<History>>,
    path: String,
}

impl Store {
    /// Runs `f` on the open history with the GIL released.
    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&History) -> annals::Result<T> + Send) -> PyResult<T> {
        let result = py.detach(|| match self.history.read().as_ref() {
            Some(history) => f(history),
            None => Err(annals::Error::Closed),
        });
        result.map_err(|e| errors::to_py(py, e))
    }
}

fn durability(py: Python<'_>, name: &str, group_delay_ms: Option<f64>) -> PyResult<Durability> {
    Ok(match name {
        "sync" => Durability::Sync,
        "group" => match group_delay_ms {
            Some(ms) if !(0.0..=1000.0).contains(&ms) => {
                return Err(errors::invalid(py, "group_delay_ms", format!("{ms} is outside 0..=1000")));
            }
            Some(ms) => Durability::Group {
                max_delay: Duration::from_secs_f64(ms / 1000.0),
            },
            None => Options::default().durability,
        },
        "none" => Durability::None,
        other => {
            return Err(errors::invalid(
                py,
                "durability",
                format!("{other:?} is not one of \"sync\", \"group\", \"none\""),
            ));
        }
    })
}

/// `(detail days, summary days)` as a retention rule.
fn retention_rule(py: Python<'_>, at: &str, days: (f64, f64)) -> PyResult<annals::lifecycle::Retention> {
    let duration = |d: f64| -> PyResult<Duration> {
        if !(d.is_finite() && d > 0.0 && d < 1e6) {
            return Err(errors::invalid(
                py,
                at,
                format!("{d} days is not a positive number of days below a million"),
            ));
        }
        Ok(Duration::from_secs_f64(d * 86_400.0))
    };
    Ok(annals::lifecycle::Retention {
        detail: duration(days.0)?,
        summaries: duration(days.1)?,
    })
}

fn series_kind(py: Python<'_>, name: &str) -> PyResult<annals::SeriesKind> {
    let data_type = DataType::parse(name).map_err(|e| errors::invalid(py, "retention kinds", convert::annals_reason(e)))?;
    Ok(match data_type {
        DataType::Metrics => annals::SeriesKind::Metric,
        DataType::Performance => annals::SeriesKind::Performance,
        DataType::Logs => annals::SeriesKind::Log,
        DataType::Alerts => annals::SeriesKind::Alert,
    })
}

/// A report the library serialises, as JSON text for `json.loads`.
fn json<T: serde::Serialize>(value: &T) -> annals::Result<String> {
    serde_json::to_string(value).map_err(|e| annals::Error::Invariant(format!("encoding a report: {e}")))
}

#[pymethods]
impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// `durability`: `"group"` (default: concurrent writers share an fsync; a returned
    /// write is durable), `"sync"` (an fsync per write) or `"none"` (the page cache only).
    /// `retention`: `(detail_days, summary_days, {kind: (d, s)}, {measurement: (d, s)},
    /// background)`, or None for the defaults (30 days, 365 days, applied in the background).
    #[new]
    #[pyo3(signature = (path, durability="group", group_delay_ms=None, create=true, retention=None))]
    #[allow(clippy::type_complexity)]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        durability: &str,
        group_delay_ms: Option<f64>,
        create: bool,
        retention: Option<(f64, f64, Vec<(String, (f64, f64))>, Vec<(String, (f64, f64))>, bool)>,
    ) -> PyResult<Store> {
        let mut options = Options {
            durability: self::durability(py, durability, group_delay_ms)?,
            create_if_missing: create,
            ..Options::default()
        };
        if let Some((detail, summaries, kinds, measurements, background)) = retention {
            options.retention.default = retention_rule(py, "retention", (detail, summaries))?;
            for (kind, days) in kinds {
                options
                    .retention
                    .kinds
                    .insert(series_kind(py, &kind)?, retention_rule(py, "retention kinds", days)?);
            }
            for (measurement, days) in measurements {
                options
                    .retention
                    .measurements
                    .insert(measurement, retention_rule(py, "retention measurements", days)?);
            }
            options.retention.background = background;
        }
        options.validate().map_err(|e| errors::to_py(py, e))?;
        let shown = path.display().to_string();
        let history = py.detach(|| History::open(&path, options)).map_err(|e| errors::to_py(py, e))?;
        Ok(Store {
            history: RwLock::new(Some(history)),
            path: shown,
        })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Whether `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.history.read().is_none()
    }

    /// Flushes and closes; later calls raise `ClosedError`. Closing twice is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let result = py.detach(|| match self.history.write().take() {
            Some(history) => history.close(),
            None => Ok(()),
        });
        result.map_err(|e| errors::to_py(py, e))
    }

    /// Stores metric readings, all or none; returns the rows written.
    fn store_metrics(&self, py: Python<'_>, metrics: &Bound<'_, PyAny>) -> PyResult<usize> {
        let records = convert::each(metrics, "metrics", convert::metric)?;
        self.with(py, |h| h.store_metrics(&records)).map(|r| r.rows)
    }

    /// Stores performance samples, all or none; returns the rows written.
    fn store_performance_data(&self, py: Python<'_>, samples: &Bound<'_, PyAny>) -> PyResult<usize> {
        let records = convert::each(samples, "samples", convert::performance)?;
        self.with(py, |h| h.store_performance_data(&records)).map(|r| r.rows)
    }

    /// Stores log records, all or none; returns the rows written.
    fn store_logs(&self, py: Python<'_>, logs: &Bound<'_, PyAny>) -> PyResult<usize> {
        let records = convert::each(logs, "logs", convert::log)?;
        self.with(py, |h| h.store_logs(&records)).map(|r| r.rows)
    }

    /// Stores the logging handler's record tuples, all or none; returns the rows written.
    /// The conversion lets go of the GIL every few hundred records, so the threads that
    /// log wait for it at most about a millisecond, not for the whole batch.
    fn store_log_tuples(&self, py: Python<'_>, records: &Bound<'_, PyList>) -> PyResult<usize> {
        const RECORDS_PER_GIL_HOLD: usize = 256;
        let mut converted = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            if i > 0 && i % RECORDS_PER_GIL_HOLD == 0 {
                py.detach(std::thread::yield_now);
            }
            converted.push(convert::log_tuple(&r, Loc::item("records", i))?);
        }
        self.with(py, |h| h.store_logs(&converted)).map(|r| r.rows)
    }

    /// Stores an alert event; returns its record id.
    fn store_alert(&self, py: Python<'_>, alert: &Bound<'_, PyAny>) -> PyResult<u64> {
        let alert = convert::alert(alert, Loc::arg("alert"))?;
        self.with(py, |h| h.store_alert(&alert)).map(|r| r.first_seq)
    }

    /// Appends an acknowledgement at `at`; False when the alert is unknown.
    fn acknowledge_alert(&self, py: Python<'_>, alert_id: &str, at: &Bound<'_, PyAny>) -> PyResult<bool> {
        let at = convert::timestamp_ns(at, Loc::arg("at"))?;
        self.with(py, |h| h.acknowledge_alert(alert_id, at))
    }

    /// Appends a resolution at `at`; False when the alert is unknown.
    fn resolve_alert(&self, py: Python<'_>, alert_id: &str, at: &Bound<'_, PyAny>) -> PyResult<bool> {
        let at = convert::timestamp_ns(at, Loc::arg("at"))?;
        self.with(py, |h| h.resolve_alert(alert_id, at))
    }

    /// The alert's newest event, with `acknowledged_at`/`resolved_at` of its latest
    /// raising; None when unknown.
    #[pyo3(signature = (alert_id, timestamps_ns=false))]
    fn get_alert<'py>(&self, py: Python<'py>, alert_id: &str, timestamps_ns: bool) -> PyResult<Option<Bound<'py, PyAny>>> {
        let events = self.with(py, |h| h.alert_events(alert_id))?;
        alert_with_times(py, &events, timestamps_ns)
    }

    /// The newest event of each alert, newest first, optionally only those whose newest
    /// state is in `states`; at most `limit` (1..=10000).
    #[pyo3(signature = (states, limit, timestamps_ns=false))]
    fn get_alerts<'py>(&self, py: Python<'py>, states: Vec<String>, limit: usize, timestamps_ns: bool) -> PyResult<Bound<'py, PyList>> {
        let states = states
            .iter()
            .map(|s| annals::AlertState::parse(s).map_err(|e| errors::invalid(py, "states", convert::annals_reason(e))))
            .collect::<PyResult<Vec<_>>>()?;
        let lives = self.with(py, |h| {
            h.alerts(&states, limit)?
                .into_iter()
                .map(|newest| h.alert_events(&newest.alert_id))
                .collect::<annals::Result<Vec<_>>>()
        })?;
        let out = PyList::empty(py);
        for events in &lives {
            if let Some(alert) = alert_with_times(py, events, timestamps_ns)? {
                out.append(alert)?;
            }
        }
        Ok(out)
    }

    /// A page of records; with it, whether the query asked for integer timestamps.
    fn query_data(&self, py: Python<'_>, query: &Bound<'_, PyAny>) -> PyResult<(Page, bool)> {
        let (request, as_ns) = data_query(query)?;
        let page = self.with(py, |h| h.query_data(&request))?;
        Ok((Page { page }, as_ns))
    }

    /// The records of one kind a query selects, at most `max_rows` (all without it), as one
    /// Arrow batch read straight into columns: no page size cap, no total count.
    #[pyo3(signature = (query, kind, max_rows=None))]
    fn query_table(&self, py: Python<'_>, query: &Bound<'_, PyAny>, kind: &str, max_rows: Option<usize>) -> PyResult<arrow::ArrowBatch> {
        let (request, _) = data_query(query)?;
        let kind = annals::history::DataType::parse(kind).map_err(|e| errors::to_py(py, e))?;
        let table = self.with(py, |h| h.query_table(&request, kind, max_rows))?;
        Ok(arrow::ArrowBatch::from_table(table))
    }

    /// Store statistics as JSON text.
    fn storage_stats(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |h| json(&h.storage_stats()?))
    }

    /// Moves every month before `before` (`YYYY-MM`) into an archive file; the report as
    /// JSON text.
    #[pyo3(signature = (before, out=None))]
    fn archive(&self, py: Python<'_>, before: &str, out: Option<std::path::PathBuf>) -> PyResult<String> {
        let month =
            annals::Month::parse(before).ok_or_else(|| errors::invalid(py, "before", format!("{before:?} is not a month (YYYY-MM)")))?;
        self.with(py, |h| json(&h.engine().archive(month, out.as_deref(), &mut |_, _| {})?))
    }

    /// Brings an archive file back; the report as JSON text.
    fn restore(&self, py: Python<'_>, archive: std::path::PathBuf) -> PyResult<String> {
        self.with(py, |h| json(&h.engine().restore(&archive, &mut |_, _| {})?))
    }

    /// Retention: with `apply`, summarises and drops what is past the policy; without, what
    /// would be dropped. The report as JSON text.
    fn retention(&self, py: Python<'_>, apply: bool) -> PyResult<String> {
        self.with(py, |h| {
            let report = if apply {
                h.engine().apply_retention()?
            } else {
                h.engine().retention_plan()?
            };
            json(&report)
        })
    }

    /// Merges every month to one segment; the report as JSON text.
    fn optimize(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |h| json(&h.engine().optimize(&mut |_| {})?))
    }

    /// Flushes the head to segments.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |h| h.engine().flush().map(|_| ()))
    }

    /// Trend analysis from `(name, value)` parameters as `GET /history/metrics/trends`
    /// takes them; the analysis as JSON text (times in nanoseconds).
    fn get_trends(&self, py: Python<'_>, params: Vec<(String, String)>, all_points: bool) -> PyResult<String> {
        let request = annals::trends::TrendQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), now_ns())
            .map_err(|e| errors::to_py(py, e))?;
        self.with(py, |h| Ok(h.get_trends(&request)?.to_json(false, all_points).to_string()))
    }

    /// Stores commits with their diffs: `[(commit, [diff, ...]), ...]`. With `atomic`,
    /// all or none (one write; a duplicate or failed commit leaves everything unstored);
    /// otherwise each commit on its own. One `StorageResult` per commit.
    fn store_commits<'py>(&self, py: Python<'py>, batch: &Bound<'py, PyAny>, atomic: bool) -> PyResult<Bound<'py, PyList>> {
        let items = convert::items(batch, Loc::arg("commits"))?;
        let mut commits = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = Loc::item("commits", i);
            let pair = convert::items(item, at)?;
            let [commit, diffs] = pair.as_slice() else {
                return Err(errors::invalid(py, at, "expected a (commit, diffs) pair"));
            };
            let commit = convert::commit(commit, at)?;
            let diffs = convert::items(diffs, Loc::item("diffs", i))?
                .iter()
                .enumerate()
                .map(|(j, d)| convert::diff(d, Loc::item("diffs", j)))
                .collect::<PyResult<Vec<_>>>()?;
            commits.push((commit, diffs));
        }
        let results = self.with(py, |h| {
            if atomic {
                h.store_commits(&commits)
            } else {
                commits.iter().map(|(c, d)| h.store_commit(c, d)).collect()
            }
        })?;
        let out = PyList::empty(py);
        for r in &results {
            out.append(convert::storage_result_out(py, r)?)?;
        }
        Ok(out)
    }

    /// A commit with its files by hash (or a unique prefix of 7+ digits); None when absent.
    fn get_commit_by_hash<'py>(&self, py: Python<'py>, commit_hash: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = self.with(py, |h| h.get_commit_with_diffs(commit_hash))?;
        found.map(|(commit, _)| convert::stored_commit_out(py, &commit)).transpose()
    }

    /// The newest `limit` commits of a repository, newest first (without their files).
    fn get_recent_commits<'py>(&self, py: Python<'py>, repository: &str, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let page = self.with(py, |h| h.get_recent_commits(repository, limit))?;
        let out = PyList::empty(py);
        for c in &page.commits {
            out.append(convert::stored_commit_out(py, c)?)?;
        }
        Ok(out)
    }

    /// The diff bytes of one file of a commit; None when the commit, the file or its bytes
    /// are absent.
    fn get_diff<'py>(&self, py: Python<'py>, commit_hash: &str, file_path: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let bytes = self.with(py, |h| h.get_diff(commit_hash, file_path))?;
        Ok(bytes.map(|b| PyBytes::new(py, &b)))
    }

    fn __repr__(&self) -> String {
        format!("<annals store at {:?}{}>", self.path, if self.closed() { " (closed)" } else { "" })
    }
}

/// One page of `query_data`, kept on the Rust side: its records become data classes
/// once, and Arrow batches on request.
#[pyclass(module = "annals._annals", frozen)]
struct Page {
    page: annals::history::DataResponse,
}

#[pymethods]
impl Page {
    /// The records as data classes (UTC datetimes, or integer nanoseconds with `as_ns`).
    fn records<'py>(&self, py: Python<'py>, as_ns: bool) -> PyResult<Bound<'py, PyList>> {
        let rows = PyList::empty(py);
        for record in &self.page.rows {
            rows.append(convert::record_out(py, record, as_ns)?)?;
        }
        Ok(rows)
    }

    /// One Arrow batch per record kind present: `[(kind, batch), ...]`.
    fn batches(&self) -> Vec<(String, arrow::ArrowBatch)> {
        arrow::batches(&self.page.rows)
    }

    /// Rows matching the query in all, when known.
    #[getter]
    fn total_count(&self) -> Option<u64> {
        self.page.total_count
    }

    /// Cursor of the next page, if there is one.
    #[getter]
    fn next_cursor(&self) -> Option<String> {
        self.page.next_cursor.clone()
    }

    fn __len__(&self) -> usize {
        self.page.rows.len()
    }
}

/// The newest event of an alert's latest raising with the times of its acknowledgement
/// and resolution.
fn alert_with_times<'py>(py: Python<'py>, events: &[annals::AlertEvent], as_ns: bool) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(newest) = events.first() else { return Ok(None) };
    let when = |state: annals::AlertState| events.iter().find(|e| e.state == state).map(|e| e.timestamp);
    convert::alert_out(
        py,
        newest,
        when(annals::AlertState::Acknowledged),
        when(annals::AlertState::Resolved),
        as_ns,
    )
    .map(Some)
}

/// A `DataQuery` object as the library's request, and whether times leave as integers.
fn data_query(query: &Bound<'_, PyAny>) -> PyResult<(DataQuery, bool)> {
    let py = query.py();
    let get = |name: &'static str| -> PyResult<Bound<'_, PyAny>> {
        query
            .getattr(PyString::intern(py, name))
            .map_err(|_| errors::invalid(py, "query", format!("has no attribute {name:?}")))
    };
    let time = |name: &'static str| -> PyResult<Option<i64>> {
        let v = get(name)?;
        if v.is_none() {
            Ok(None)
        } else {
            convert::timestamp_ns(&v, Loc::arg("query").attr(name)).map(Some)
        }
    };
    let texts = |name: &'static str| -> PyResult<Vec<Bound<'_, PyAny>>> {
        let v = get(name)?;
        if v.is_none() {
            Ok(Vec::new())
        } else {
            convert::items(&v, Loc::arg("query").attr(name))
        }
    };
    let name_of = |v: &Bound<'_, PyAny>| -> PyResult<String> {
        if let Ok(s) = v.cast::<PyString>() {
            return Ok(s.to_cow()?.into_owned());
        }
        Ok(v.getattr("value")?.str()?.to_cow()?.into_owned())
    };
    let data_types = texts("data_types")?
        .iter()
        .map(|v| DataType::parse(&name_of(v)?).map_err(|e| errors::invalid(py, "query.data_types", convert::annals_reason(e))))
        .collect::<PyResult<Vec<_>>>()?;
    let levels = texts("levels")?
        .iter()
        .map(|v| convert::level(v, Loc::arg("query").attr("levels")))
        .collect::<PyResult<Vec<LogLevel>>>()?;
    let components = texts("components")?
        .iter()
        .map(|v| {
            v.extract::<String>()
                .map_err(|_| errors::wrong_type(py, "query.components", "a list of str", v))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let count = |name: &'static str| -> PyResult<usize> {
        let v = get(name)?;
        v.extract::<usize>()
            .map_err(|_| errors::invalid(py, Loc::arg("query").attr(name), "expected a non-negative int"))
    };
    let optional_text = |name: &'static str| -> PyResult<Option<String>> {
        let v = get(name)?;
        if v.is_none() {
            return Ok(None);
        }
        v.extract::<String>()
            .map(Some)
            .map_err(|_| errors::wrong_type(py, Loc::arg("query").attr(name), "str", &v))
    };
    let as_ns = match query.getattr("timestamps") {
        Err(_) => false,
        Ok(v) if v.is_none() => false,
        Ok(v) => match v.extract::<String>().as_deref() {
            Ok("ns") => true,
            Ok("datetime") => false,
            _ => return Err(errors::invalid(py, "query.timestamps", "expected \"datetime\" or \"ns\"")),
        },
    };
    let order_desc = get("order_desc")?
        .is_truthy()
        .map_err(|_| errors::invalid(py, "query.order_desc", "expected a bool"))?;
    let request = DataQuery {
        start_time: time("start_time")?,
        end_time: time("end_time")?,
        data_types,
        levels,
        components,
        search_text: optional_text("search_text")?,
        limit: count("limit")?,
        offset: count("offset")?,
        cursor: optional_text("cursor")?,
        order_desc,
    };
    Ok((request, as_ns))
}

/// The native module.
#[pymodule]
fn _annals(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Store>()?;
    m.add_class::<arrow::ArrowBatch>()?;
    m.add_class::<Page>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
