//! LogQL over annals' logs: the queries Grafana's Loki data source and `logcli` send to
//! `/loki/api/v1/query_range` and `/loki/api/v1/query`, answered by the tag index, the
//! full-text index and the PromQL evaluator.
//!
//! **Streams.** Every log series is one Loki stream. Its labels are the series' tags,
//! `level` (the record's level in lower case: `debug`, `info`, `warning`, `error`,
//! `critical`), `logger` (the logger name, left out when it equals the `job` label, as it
//! does for lines pushed with a `job` and no `logger`) and `module` when the record has one.
//! A matcher `level="warn"` compares as `level="warning"` (any spelling
//! [`LogLevel::parse`] knows). Equality matchers go to the tag index; every matcher is
//! then checked on the labels.
//!
//! **Log queries** (`{job="api"} |= "timeout" != "retry" |~ "status=5\\d\\d"`): line
//! filters are case-sensitive, `|=`/`!=` on substrings, `|~`/`!~` on regular expressions
//! found anywhere in the line. The newest (or, `forward`, oldest) `limit` lines in
//! `[start, end)` are returned, grouped by stream. When a `|=` needle holds a whole word
//! (one with a non-word character on each side inside the needle, such as `refused` in
//! `connection refused by`), candidates come from the full-text index in time order and
//! are checked against every filter, so the search reads only lines holding that word;
//! otherwise the selected streams are scanned, newest first, up to `limit` lines each.
//!
//! **Metric queries**: `count_over_time`, `rate` (lines per second), `bytes_over_time`,
//! `bytes_rate` and `absent_over_time` of a log range (`{…} |= "x" [5m]`, with `offset`),
//! over the window `(t - range, t]` as Loki counts; a stream without a line in the window
//! has no sample there. Around them, everything PromQL has: aggregations with `by` and
//! `without`, `topk`, binary operators, `vector(1) + vector(1)` (Grafana's health check),
//! `label_replace`, evaluated by [`crate::query::promql`]. Parser stages (`| json`,
//! `| logfmt`, `| line_format`, `| unwrap` and the range aggregations that need it) are
//! [`Error::Unsupported`], named.

mod parse;

use super::promql::{self, Evaluator, ExternalVectors, Labels, PromOptions, PromValue, StepSeries};
use super::search::{self, SearchOrder, SearchQuery};
use crate::chunk::ColumnValues;
use crate::error::{Error, Limit, Result};
use crate::index::{SeriesSelector, TagPredicate};
use crate::model::{FieldValue, LogLevel, SeriesId, SeriesKey, SeriesKind};
use crate::read::{Order, ReadView};
use crate::text::{MAX_TERM_BYTES, tokenize};
use crate::time::TimeRange;
use parse::{LineFilter, LogQuery, LogRange, LogSelector, RangeFunction};
use promql_parser::label::{MatchOp, Matcher};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Lines a log query returns when it names no limit (Loki's default).
pub const DEFAULT_LINE_LIMIT: usize = 100;
/// Most lines one log query returns (Loki's default `max_entries_limit_per_query`).
pub const MAX_LINE_LIMIT: usize = 5000;
/// The field holding a log record's line.
const MESSAGE: &str = "message";
/// Candidates read per page of the full-text index.
const SEARCH_PAGE: usize = 1000;
/// Words of `|=` needles looked up in the full-text index at most.
const MAX_INDEX_TERMS: usize = 8;

/// Which lines a log query returns first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    #[default]
    Backward,
}

impl Direction {
    /// Parses `forward` or `backward` (any case).
    pub fn parse(text: &str) -> Result<Direction> {
        match text.to_ascii_lowercase().as_str() {
            "forward" => Ok(Direction::Forward),
            "backward" => Ok(Direction::Backward),
            other => Err(Error::invalid(format!("invalid direction {other:?} (forward or backward)"))),
        }
    }

    fn order(self) -> Order {
        match self {
            Direction::Forward => Order::Ascending,
            Direction::Backward => Order::Descending,
        }
    }
}

/// How many lines a log query returns, and which first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineOptions {
    /// Most lines, over all streams (at most [`MAX_LINE_LIMIT`]).
    pub limit: usize,
    /// Newest or oldest first.
    pub direction: Direction,
}

impl Default for LineOptions {
    fn default() -> Self {
        LineOptions {
            limit: DEFAULT_LINE_LIMIT,
            direction: Direction::Backward,
        }
    }
}

/// The lines of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    /// The stream's labels, sorted by name.
    pub labels: Labels,
    /// (nanoseconds, line), in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// The answer to a LogQL query.
#[derive(Debug, Clone, PartialEq)]
pub enum LogqlValue {
    /// A log query's lines (Loki's `streams`).
    Streams(Vec<LogStream>),
    /// A metric query's value (`vector`, `scalar` or `matrix`).
    Metric(PromValue),
}

impl LogqlValue {
    /// Loki's `resultType`.
    pub fn result_type(&self) -> &'static str {
        match self {
            LogqlValue::Streams(_) => "streams",
            LogqlValue::Metric(value) => value.result_type(),
        }
    }
}

/// Evaluates `query` over `[start_ns, end_ns]` (`/loki/api/v1/query_range`): a log query's
/// lines in `[start, end)`, or a metric query at every step.
pub(crate) fn range_query(
    view: &ReadView<'_>,
    query: &str,
    start_ns: i64,
    end_ns: i64,
    step_ms: i64,
    lines: LineOptions,
) -> Result<LogqlValue> {
    check_limit(lines.limit)?;
    match parse::parse(query)? {
        LogQuery::Log(selector) => Ok(LogqlValue::Streams(select_lines(
            view,
            &selector,
            TimeRange::new(start_ns, end_ns.max(start_ns)),
            lines,
        )?)),
        LogQuery::Metric { promql, ranges } => {
            let (start_ms, end_ms) = (start_ns.div_euclid(1_000_000), end_ns.div_euclid(1_000_000));
            let options = PromOptions::default();
            let mut source = LogRanges { view, ranges, scanned: 0 };
            let value = Evaluator::new(view, &options, start_ms, end_ms)
                .with_external(&mut source)
                .range(&promql, start_ms, end_ms, step_ms)?;
            Ok(LogqlValue::Metric(value))
        }
    }
}

/// Evaluates a metric query at `time_ns` (`/loki/api/v1/query`). Log queries are refused,
/// as Loki 3 refuses them: they are range queries.
pub(crate) fn instant_query(view: &ReadView<'_>, query: &str, time_ns: i64) -> Result<LogqlValue> {
    match parse::parse(query)? {
        LogQuery::Log(_) => Err(Error::invalid(
            "log queries are not supported as an instant query type; send them to /loki/api/v1/query_range",
        )),
        LogQuery::Metric { promql, ranges } => {
            let time_ms = time_ns.div_euclid(1_000_000);
            let options = PromOptions::default();
            let mut source = LogRanges { view, ranges, scanned: 0 };
            let value = Evaluator::new(view, &options, time_ms, time_ms)
                .with_external(&mut source)
                .instant(&promql, time_ms)?;
            Ok(LogqlValue::Metric(value))
        }
    }
}

/// The streams any of `selectors` (stream selectors, `{job="api"}`) matches with a line in
/// `[start_ns, end_ns]`, sorted, without repeats (`/loki/api/v1/series`).
pub(crate) fn series(view: &ReadView<'_>, selectors: &[String], start_ns: i64, end_ns: i64) -> Result<Vec<Labels>> {
    let range = TimeRange::new(start_ns, end_ns.saturating_add(1).max(start_ns));
    let mut out = Vec::new();
    if selectors.is_empty() {
        out.extend(resolve_streams(view, &[], range)?.into_iter().map(|(_, labels)| labels));
    }
    for text in selectors {
        out.extend(
            resolve_streams(view, &stream_selector(text)?, range)?
                .into_iter()
                .map(|(_, labels)| labels),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Label names of the streams `selector` matches (every stream without one) with a line in
/// `[start_ns, end_ns]`, sorted (`/loki/api/v1/labels`).
pub(crate) fn label_names(view: &ReadView<'_>, selector: Option<&str>, start_ns: i64, end_ns: i64) -> Result<Vec<String>> {
    let selectors: Vec<String> = selector.map(str::to_string).into_iter().collect();
    Ok(promql::names_of(&series(view, &selectors, start_ns, end_ns)?))
}

/// Values of label `name` over the streams `selector` matches (every stream without one)
/// with a line in `[start_ns, end_ns]`, sorted (`/loki/api/v1/label/<name>/values`).
pub(crate) fn label_values(view: &ReadView<'_>, name: &str, selector: Option<&str>, start_ns: i64, end_ns: i64) -> Result<Vec<String>> {
    let selectors: Vec<String> = selector.map(str::to_string).into_iter().collect();
    Ok(promql::values_of(&series(view, &selectors, start_ns, end_ns)?, name))
}

fn check_limit(limit: usize) -> Result<()> {
    if limit > MAX_LINE_LIMIT {
        return Err(Error::LimitExceeded {
            limit: Limit::QueryResultRows,
            value: limit as u64,
            max: MAX_LINE_LIMIT as u64,
            context: Some("lines of one LogQL query (limit)".into()),
        });
    }
    Ok(())
}

/// The matchers of a bare stream selector (`match[]`, `query` of the label routes).
fn stream_selector(text: &str) -> Result<Vec<Matcher>> {
    match parse::parse(text)? {
        LogQuery::Log(selector) if selector.filters.is_empty() => Ok(selector.matchers),
        _ => Err(Error::invalid(format!("{text:?} is not a stream selector such as {{job=\"api\"}}"))),
    }
}

/// The Loki labels of a log series (see the module's documentation).
fn stream_labels(key: &SeriesKey) -> Labels {
    let tags = key.tags();
    let job = tags.iter().find(|(name, _)| name == "job").map(|(_, v)| v.as_str());
    let mut labels = Vec::with_capacity(tags.len());
    for (name, value) in tags {
        match name.as_str() {
            "level" => labels.push(("level".to_string(), value.to_ascii_lowercase())),
            "logger_name" if Some(value.as_str()) == job => {}
            "logger_name" => labels.push(("logger".to_string(), value.clone())),
            _ => labels.push((name.clone(), value.clone())),
        }
    }
    labels.sort();
    Arc::new(labels)
}

/// A `level` matcher compares canonical level names: `warn` is `warning`.
fn canonical(matcher: &Matcher) -> Matcher {
    match matcher.op {
        MatchOp::Equal | MatchOp::NotEqual if matcher.name == "level" => match LogLevel::parse(&matcher.value) {
            Ok(level) => Matcher::new(matcher.op.clone(), &matcher.name, &level.as_str().to_ascii_lowercase()),
            Err(_) => matcher.clone(),
        },
        _ => matcher.clone(),
    }
}

/// The tag predicate of the equality matchers: a superset of the streams they select.
fn pushed_predicate(matchers: &[Matcher]) -> Option<TagPredicate> {
    TagPredicate::all(
        matchers
            .iter()
            .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
            .map(|m| match m.name.as_str() {
                "level" => TagPredicate::eq("level", m.value.to_ascii_uppercase()),
                "logger" => TagPredicate::eq("logger_name", m.value.clone()),
                name => TagPredicate::eq(name, m.value.clone()),
            })
            .collect(),
    )
}

/// The log streams `matchers` select (every stream when there are none) with a record in
/// `range`, in label order.
fn resolve_streams(view: &ReadView<'_>, matchers: &[Matcher], range: TimeRange) -> Result<Vec<(SeriesId, Labels)>> {
    let matchers: Vec<Matcher> = matchers.iter().map(canonical).collect();
    let selector = SeriesSelector {
        kind: Some(SeriesKind::Log),
        measurement: None,
        predicate: pushed_predicate(&matchers),
    };
    let mut out = Vec::new();
    let candidates = view.select(&selector)?;
    if candidates.len() as u64 > view.limits.max_series {
        return Err(Error::LimitExceeded {
            limit: Limit::QuerySeries,
            value: candidates.len() as u64,
            max: view.limits.max_series,
            context: Some("LogQL stream selector".into()),
        });
    }
    for id in candidates {
        let Some(key) = view.series_key(id) else { continue };
        let labels = stream_labels(&key);
        if matchers.iter().all(|m| m.is_match(promql::label(&labels, &m.name).unwrap_or(""))) && !view.field_names(&[id], range)?.is_empty()
        {
            out.push((id, labels));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Counts `records` more read by a query against its budget of scanned points.
fn charge(view: &ReadView<'_>, scanned: &mut u64, records: usize) -> Result<()> {
    *scanned += records as u64;
    if *scanned > view.limits.max_points_scanned {
        return Err(Error::LimitExceeded {
            limit: Limit::QueryPointsScanned,
            value: *scanned,
            max: view.limits.max_points_scanned,
            context: Some("LogQL query".into()),
        });
    }
    Ok(())
}

/// Calls `each(time_ns, line)` for the records of series `id` in `range`, in `order`, until
/// it returns false; counts the records read against the query's budget.
fn for_each_line(
    view: &ReadView<'_>,
    id: SeriesId,
    range: TimeRange,
    order: Order,
    scanned: &mut u64,
    mut each: impl FnMut(i64, &str) -> bool,
) -> Result<()> {
    let fields: Arc<[String]> = Arc::from(vec![MESSAGE.to_string()]);
    for chunk in view.series_chunks(id, range, Some(fields), order)? {
        let chunk = chunk?;
        charge(view, scanned, chunk.timestamps.len())?;
        let messages = chunk.columns.iter().find_map(|c| match &c.values {
            ColumnValues::Str(values) if &*c.name == MESSAGE => Some((c, values)),
            _ => None,
        });
        for (row, &time) in chunk.timestamps.iter().enumerate() {
            let line = match messages {
                Some((column, values)) if column.is_valid(row) => values[row].as_str(),
                _ => "",
            };
            if !each(time, line) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The full-text query that finds a superset of the lines `filters` keep: the whole words
/// of the `|=` needles (a word at a needle's end is a prefix there), or `None` when no
/// needle holds one.
fn index_query(filters: &[LineFilter]) -> Option<String> {
    let mut atoms: Vec<String> = Vec::new();
    for filter in filters {
        let LineFilter::Contains(needle) = filter else { continue };
        for token in tokenize(needle) {
            let bounded_left = token.offsets.start > 0;
            let bounded_right = token.offsets.end < needle.len();
            if !bounded_left || token.term.len() > MAX_TERM_BYTES || atoms.len() >= MAX_INDEX_TERMS {
                continue;
            }
            // A word cut by the needle's end is a prefix of the line's word; its lower case is
            // a prefix of that word's only for ASCII (Greek capital sigma lowercases by
            // position), so other prefixes are left to the check on the line.
            if !bounded_right && !token.term.is_ascii() {
                continue;
            }
            // Terms are word characters only, so quoting them needs no escapes.
            atoms.push(if bounded_right {
                format!("\"{}\"", token.term)
            } else {
                format!("\"{}\"*", token.term)
            });
        }
    }
    (!atoms.is_empty()).then(|| atoms.join(" "))
}

/// The lines of a log query.
fn select_lines(view: &ReadView<'_>, selector: &LogSelector, range: TimeRange, lines: LineOptions) -> Result<Vec<LogStream>> {
    let streams = resolve_streams(view, &selector.matchers, range)?;
    if streams.is_empty() || lines.limit == 0 {
        return Ok(Vec::new());
    }
    // (time, stream, line), then sorted in the query's direction and cut to the limit.
    let mut found: Vec<(i64, usize, String)> = Vec::new();
    let mut scanned = 0u64;
    match index_query(&selector.filters) {
        Some(text) => {
            let stream_of: FxHashMap<SeriesId, usize> = streams.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
            let mut query = SearchQuery::new(text)
                .range(range)
                .order(match lines.direction {
                    Direction::Forward => SearchOrder::Oldest,
                    Direction::Backward => SearchOrder::Newest,
                })
                .limit(SEARCH_PAGE);
            query.selector = SeriesSelector {
                kind: Some(SeriesKind::Log),
                measurement: None,
                predicate: pushed_predicate(&selector.matchers.iter().map(canonical).collect::<Vec<_>>()),
            };
            'pages: loop {
                let page = search::search(view, &query)?;
                // Candidates read count against the query's budget, as scanned lines do.
                charge(view, &mut scanned, page.hits.len())?;
                for hit in page.hits {
                    let Some(&stream) = stream_of.get(&hit.series) else { continue };
                    let line = hit.fields.iter().find_map(|(name, value)| match value {
                        FieldValue::Str(text) if &**name == MESSAGE => Some(text.as_str()),
                        _ => None,
                    });
                    let line = line.unwrap_or("");
                    if selector.keeps(line) {
                        found.push((hit.time, stream, line.to_string()));
                        if found.len() >= lines.limit {
                            break 'pages;
                        }
                    }
                }
                match page.next_cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
        }
        None => {
            for (stream, (id, _)) in streams.iter().enumerate() {
                let mut taken = 0;
                for_each_line(view, *id, range, lines.direction.order(), &mut scanned, |time, line| {
                    if selector.keeps(line) {
                        found.push((time, stream, line.to_string()));
                        taken += 1;
                    }
                    taken < lines.limit
                })?;
            }
        }
    }
    match lines.direction {
        Direction::Forward => found.sort_by_key(|(time, stream, _)| (*time, *stream)),
        Direction::Backward => found.sort_by_key(|(time, stream, _)| (std::cmp::Reverse(*time), *stream)),
    }
    found.truncate(lines.limit);
    let mut entries: Vec<Vec<(i64, String)>> = vec![Vec::new(); streams.len()];
    for (time, stream, line) in found {
        entries[stream].push((time, line));
    }
    Ok(streams
        .into_iter()
        .zip(entries)
        .filter(|(_, entries)| !entries.is_empty())
        .map(|((_, labels), entries)| LogStream { labels, entries })
        .collect())
}

/// The log range aggregations of a metric query, answered to the PromQL evaluator by their
/// placeholder names.
struct LogRanges<'a, 'v> {
    view: &'a ReadView<'v>,
    ranges: Vec<LogRange>,
    scanned: u64,
}

impl ExternalVectors for LogRanges<'_, '_> {
    fn vector(&mut self, name: &str, times: &[i64]) -> Option<Result<Vec<StepSeries>>> {
        let range = self.ranges.get(parse::placeholder_index(name)?)?.clone();
        Some(self.evaluate(&range, times))
    }
}

impl LogRanges<'_, '_> {
    /// The aggregation at each of `times` (ms), over the windows `(t - range, t]` moved back
    /// by the offset, in nanoseconds.
    fn evaluate(&mut self, range: &LogRange, times: &[i64]) -> Result<Vec<StepSeries>> {
        let window_ns = range.range_ms.saturating_mul(1_000_000);
        let ends: Vec<i64> = times
            .iter()
            .map(|&t| t.saturating_sub(range.offset_ms).saturating_mul(1_000_000))
            .collect();
        let lo = ends.iter().copied().min().unwrap_or(0).saturating_sub(window_ns);
        let hi = ends.iter().copied().max().unwrap_or(0);
        let read = TimeRange::new(lo.saturating_add(1), hi.saturating_add(1));
        let seconds = range.range_ms as f64 / 1000.0;
        let mut out = Vec::new();
        let mut any_line = vec![false; times.len()];
        for (id, labels) in resolve_streams(self.view, &range.selector.matchers, read)? {
            // (time, bytes up to and including this line)
            let mut lines: Vec<(i64, u64)> = Vec::new();
            let mut bytes = 0u64;
            for_each_line(self.view, id, read, Order::Ascending, &mut self.scanned, |time, line| {
                if range.selector.keeps(line) {
                    bytes += line.len() as u64;
                    lines.push((time, bytes));
                }
                true
            })?;
            if lines.is_empty() {
                continue;
            }
            let values = ends
                .iter()
                .zip(any_line.iter_mut())
                .map(|(&end, any)| {
                    let first = lines.partition_point(|l| l.0 <= end.saturating_sub(window_ns));
                    let past = lines.partition_point(|l| l.0 <= end);
                    if past <= first {
                        return None;
                    }
                    *any = true;
                    let count = (past - first) as f64;
                    let before = if first == 0 { 0 } else { lines[first - 1].1 };
                    let bytes = (lines[past - 1].1 - before) as f64;
                    Some(match range.function {
                        RangeFunction::CountOverTime | RangeFunction::AbsentOverTime => count,
                        RangeFunction::Rate => count / seconds,
                        RangeFunction::BytesOverTime => bytes,
                        RangeFunction::BytesRate => bytes / seconds,
                    })
                })
                .collect();
            out.push(StepSeries { labels, values });
        }
        if range.function == RangeFunction::AbsentOverTime {
            return Ok(vec![StepSeries {
                labels: promql::absent_labels_of(&range.selector.matchers.iter().map(canonical).collect::<Vec<_>>()),
                values: any_line.iter().map(|&any| (!any).then_some(1.0)).collect(),
            }]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Batch, LogEntry};
    use crate::{Engine, Options};

    const S: i64 = 1_000_000_000;
    /// 2026-01-01T00:00:00Z in nanoseconds.
    const T0: i64 = 1_767_225_600 * S;

    fn entry(at_s: i64, level: LogLevel, logger: &str, job: Option<&str>, message: String) -> LogEntry {
        let mut entry = LogEntry::new(T0 + at_s * S, level, logger, message);
        entry.tags = job
            .map(|j| [("job".to_string(), j.to_string())].into_iter().collect())
            .unwrap_or_default();
        entry
    }

    /// A store with, from T0:
    /// - `job=api` INFO `GET /items/<i> status=200` at i·10 s, i = 0..=60;
    /// - `job=api` ERROR `connection refused by peer <i>` at i·100 + 5 s, i = 0..6;
    /// - `job=db` INFO `query took <i>ms` at i·20 s, i = 0..30;
    /// - logger `app.worker` (no job) WARNING `disk almost full` at 0, 1, 2 s.
    fn store() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        let mut batch = Batch::new();
        for i in 0..=60 {
            batch
                .add_log(&entry(
                    i * 10,
                    LogLevel::Info,
                    "api",
                    Some("api"),
                    format!("GET /items/{i} status=200"),
                ))
                .unwrap();
        }
        for i in 0..6 {
            batch
                .add_log(&entry(
                    i * 100 + 5,
                    LogLevel::Error,
                    "api",
                    Some("api"),
                    format!("connection refused by peer {i}"),
                ))
                .unwrap();
        }
        for i in 0..30 {
            batch
                .add_log(&entry(i * 20, LogLevel::Info, "db", Some("db"), format!("query took {i}ms")))
                .unwrap();
        }
        for i in 0..3 {
            batch
                .add_log(&entry(i, LogLevel::Warning, "app.worker", None, "disk almost full".into()))
                .unwrap();
        }
        engine.write(&batch).unwrap();
        (dir, engine)
    }

    fn lines(engine: &Engine, query: &str, limit: usize, direction: Direction) -> Vec<(String, i64, String)> {
        let options = LineOptions { limit, direction };
        match engine.snapshot().logql_range(query, T0, T0 + 3600 * S, 1000, options).unwrap() {
            LogqlValue::Streams(streams) => {
                let mut out = Vec::new();
                for s in streams {
                    let labels: Vec<String> = s.labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    for (time, line) in s.entries {
                        out.push((labels.join(","), (time - T0) / S, line));
                    }
                }
                out
            }
            other => panic!("not streams: {other:?}"),
        }
    }

    fn instant(engine: &Engine, query: &str, at_s: i64) -> Vec<(String, f64)> {
        match engine.snapshot().logql_instant(query, T0 + at_s * S).unwrap() {
            LogqlValue::Metric(PromValue::Vector(samples)) => samples
                .into_iter()
                .map(|s| {
                    let labels: Vec<String> = s.labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    (labels.join(","), s.value)
                })
                .collect(),
            other => panic!("not a vector: {other:?}"),
        }
    }

    #[test]
    fn log_records_are_streams_with_loki_labels() {
        let (_dir, engine) = store();
        let snapshot = engine.snapshot();
        let all = snapshot.logql_label_names(None, T0, T0 + 3600 * S).unwrap();
        assert_eq!(all, ["job", "level", "logger"]);
        assert_eq!(
            snapshot.logql_label_values("logger", None, T0, T0 + 3600 * S).unwrap(),
            ["app.worker"]
        );
        let api = snapshot.logql_series(&[r#"{job="api"}"#.to_string()], T0, T0 + 3600 * S).unwrap();
        let api: Vec<String> = api.iter().map(|l| format!("{l:?}")).collect();
        assert_eq!(
            api,
            [r#"[("job", "api"), ("level", "error")]"#, r#"[("job", "api"), ("level", "info")]"#]
        );
        // `warn` is WARNING's other spelling; a time range without lines has no streams.
        assert_eq!(
            snapshot
                .logql_label_values("level", Some(r#"{level="warn"}"#), T0, T0 + 3600 * S)
                .unwrap(),
            ["warning"]
        );
        assert!(snapshot.logql_label_names(None, T0 + 7200 * S, T0 + 9000 * S).unwrap().is_empty());
    }

    #[test]
    fn line_filters_select_lines_newest_or_oldest_first() {
        let (_dir, engine) = store();
        // One word touching both ends of the needle: the streams are scanned.
        let refused = lines(&engine, r#"{job="api"} |= "refused""#, 3, Direction::Backward);
        let expected: Vec<(String, i64, String)> = [5, 4, 3]
            .iter()
            .map(|i| {
                (
                    "job=api,level=error".to_string(),
                    i * 100 + 5,
                    format!("connection refused by peer {i}"),
                )
            })
            .collect();
        assert_eq!(refused, expected);
        // `refused` is a whole word of this needle: the full-text index finds the candidates,
        // and the answer is the same.
        assert_eq!(
            index_query(&[LineFilter::Contains("connection refused by".into())]).as_deref(),
            Some(r#""refused" "by"*"#)
        );
        // A word touching the needle's start may be the end of a longer word: not looked up;
        // a non-ASCII word at its end is no safe prefix.
        assert_eq!(index_query(&[LineFilter::Contains("refused".into())]), None);
        assert_eq!(index_query(&[LineFilter::Contains("x ΟΔΟΣ".into())]), None);
        assert_eq!(
            lines(&engine, r#"{job="api"} |= "connection refused by""#, 3, Direction::Backward),
            expected
        );
        // Filters are case-sensitive even where the index is not.
        assert!(lines(&engine, r#"{job="api"} |= "Connection refused by""#, 3, Direction::Backward).is_empty());
        // Oldest first, across streams, in time order.
        let forward = lines(&engine, r#"{job=~"api|db"}"#, 4, Direction::Forward);
        let times: Vec<i64> = forward.iter().map(|l| l.1).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 0, 5, 10]);
        // Regular expressions, negative filters and a filter after another.
        let items = lines(
            &engine,
            r#"{job="api", level="info"} |~ "items/1[0-9] " != "items/15 " !~ `items/1[6-9]`"#,
            100,
            Direction::Forward,
        );
        let numbers: Vec<i64> = items.iter().map(|l| l.1 / 10).collect();
        assert_eq!(numbers, [10, 11, 12, 13, 14]);
        // A level matcher in another spelling, and the logger label.
        let warnings = lines(&engine, r#"{level="WARN", logger="app.worker"}"#, 100, Direction::Backward);
        assert_eq!(warnings.len(), 3);
        assert_eq!(warnings[0].0, "level=warning,logger=app.worker");
    }

    #[test]
    fn metric_queries_count_lines_in_left_open_windows() {
        let (_dir, engine) = store();
        // (540 s, 600 s]: INFO lines at 550..600, no error line (the last is at 505 s).
        assert_eq!(
            instant(&engine, r#"count_over_time({job="api"}[1m])"#, 600),
            [("job=api,level=info".to_string(), 6.0)]
        );
        // (0, 600]: INFO api 60 + db 29, ERROR 6.
        assert_eq!(
            instant(&engine, r#"sum by (level) (count_over_time({job=~".+"}[10m]))"#, 600),
            [("level=error".to_string(), 6.0), ("level=info".to_string(), 89.0)]
        );
        // db lines at 560 and 580 s in (540, 600]: 2 lines per 60 s.
        assert_eq!(
            instant(&engine, r#"rate({job="db"}[1m])"#, 600),
            [("job=db,level=info".to_string(), 2.0 / 60.0)]
        );
        // `query took 28ms` and `query took 29ms`: 15 bytes each.
        assert_eq!(
            instant(&engine, r#"bytes_over_time({job="db"} |= "took" [1m])"#, 600),
            [("job=db,level=info".to_string(), 30.0)]
        );
        // An offset moves the window to (480, 540]: db lines at 500, 520, 540.
        assert_eq!(
            instant(&engine, r#"count_over_time({job="db"}[1m] offset 1m)"#, 600),
            [("job=db,level=info".to_string(), 3.0)]
        );
        assert_eq!(
            instant(&engine, r#"absent_over_time({job="nope"}[1m])"#, 600),
            [("job=nope".to_string(), 1.0)]
        );
        assert!(instant(&engine, r#"absent_over_time({job="db"}[1m])"#, 600).is_empty());
        // Grafana's health check.
        assert_eq!(instant(&engine, "vector(1)+vector(1)", 600), [(String::new(), 2.0)]);
        // Around the log ranges, PromQL: topk, comparison, arithmetic.
        assert_eq!(
            instant(&engine, r#"topk(1, sum by (job) (count_over_time({level="info"}[10m]))) * 2"#, 600),
            [("job=api".to_string(), 120.0)]
        );
    }

    #[test]
    fn a_range_query_steps_through_the_windows() {
        let (_dir, engine) = store();
        let value = engine
            .snapshot()
            .logql_range(
                r#"count_over_time({job="db"}[1m])"#,
                T0 + 60 * S,
                T0 + 180 * S,
                60_000,
                LineOptions::default(),
            )
            .unwrap();
        let LogqlValue::Metric(PromValue::Matrix(series)) = value else {
            panic!("{value:?}")
        };
        assert_eq!(series.len(), 1);
        // (0, 60] holds 20, 40, 60; each later minute three more.
        let points: Vec<(i64, f64)> = series[0].points.iter().map(|&(t, v)| ((t - T0 / 1_000_000) / 1000, v)).collect();
        assert_eq!(points, [(60, 3.0), (120, 3.0), (180, 3.0)]);
    }

    #[test]
    fn bad_and_unsupported_queries_are_named() {
        let (_dir, engine) = store();
        let snapshot = engine.snapshot();
        let range = |q: &str| snapshot.logql_range(q, T0, T0 + 600 * S, 1000, LineOptions::default()).unwrap_err();
        match range(r#"{job="api"} | json"#) {
            Error::Unsupported { what } => assert!(what.contains("| json"), "{what}"),
            other => panic!("{other:?}"),
        }
        match range(r#"sum_over_time({job="api"} | unwrap latency [1m])"#) {
            Error::Unsupported { what } => assert!(what.contains("sum_over_time"), "{what}"),
            other => panic!("{other:?}"),
        }
        for (query, words) in [
            (r#"{job="api"}[5m]"#, "range aggregation"),
            (r#"count_over_time({job="api"})"#, "needs a range"),
            (r#"{job="api"} |~ "(""#, "regular expression"),
            (r#"{job=""}"#, "invalid stream selector"),
            (r#"{job="api"} |= "unterminated"#, "unterminated"),
            (r#"{job="api"} |= "\q""#, "unknown escape"),
            (r#"sum(count_over_time({job="api"}[1m])"#, "invalid LogQL"),
            ("", "empty"),
        ] {
            match range(query) {
                Error::InvalidInput { reason, .. } => assert!(reason.contains(words), "{query}: {reason}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        assert!(matches!(
            snapshot.logql_instant(r#"{job="api"}"#, T0),
            Err(Error::InvalidInput { reason, .. }) if reason.contains("instant")
        ));
        let too_many = LineOptions {
            limit: MAX_LINE_LIMIT + 1,
            direction: Direction::Backward,
        };
        assert!(matches!(
            snapshot.logql_range(r#"{job="api"}"#, T0, T0 + S, 1000, too_many),
            Err(Error::LimitExceeded {
                limit: Limit::QueryResultRows,
                ..
            })
        ));
    }
}
