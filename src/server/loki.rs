//! Loki's HTTP query API, enough for Grafana's Loki data source and `logcli`:
//! `/loki/api/v1/query_range`, `/loki/api/v1/query`, `/loki/api/v1/labels`,
//! `/loki/api/v1/label/{name}/values` and `/loki/api/v1/series`, by GET or form POST,
//! answered in Loki's envelope:
//!
//! ```json
//! {"status": "success", "data": {"resultType": "streams", "result": [{"stream": {…}, "values": [["<unix ns>", "<line>"]]}], "stats": {…}}}
//! ```
//! Errors are plain text, as Loki sends them: 400 for a bad parameter or LogQL, 422 for a
//! construct annals does not evaluate or a query limit, 503 for a timeout. LogQL is
//! evaluated by [`crate::query::logql`].

use super::AppState;
use super::error::ApiError;
use super::prometheus::{PromError, labels_json, one, parameters, parse_duration, selectors, value_json};
use super::routes::{query_pairs, read};
use crate::query::logql::{Direction, LineOptions, LogqlValue};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How far back a query reaches without a `start` (Loki's default: one hour).
const DEFAULT_QUERY_SPAN_NS: i64 = 3_600 * 1_000_000_000;
/// How far back a label or series request reaches without a `start` (Loki's: six hours).
const DEFAULT_LABEL_SPAN_NS: i64 = 6 * 3_600 * 1_000_000_000;

/// An error as Loki sends it: a status and a line of text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LokiError {
    status: StatusCode,
    message: String,
}

impl LokiError {
    fn bad(message: impl Into<String>) -> LokiError {
        LokiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<ApiError> for LokiError {
    fn from(error: ApiError) -> LokiError {
        LokiError {
            status: error.status,
            message: error.reason,
        }
    }
}

impl From<crate::Error> for LokiError {
    fn from(error: crate::Error) -> LokiError {
        LokiError::from(ApiError::from(error))
    }
}

impl From<PromError> for LokiError {
    fn from(error: PromError) -> LokiError {
        LokiError {
            status: error.status,
            message: error.message,
        }
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.message)).into_response()
    }
}

/// A time parameter as Loki reads it: seconds with a fraction (`1700000000.5`), an
/// integer (seconds when it has at most 10 digits, else nanoseconds) or RFC 3339.
fn parse_time(name: &str, text: &str) -> Result<i64, LokiError> {
    let text = text.trim();
    let bad = || LokiError::bad(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid timestamp"));
    if let Some((whole, fraction)) = text.split_once('.') {
        // Decimal seconds, read exactly to the nanosecond (a float would round).
        let seconds: i64 = whole.parse().map_err(|_| bad())?;
        if fraction.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) || seconds.abs() > 9_000_000_000 {
            return Err(bad());
        }
        let nanos: i64 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
        let nanos = if whole.starts_with('-') { -nanos } else { nanos };
        return Ok(seconds * 1_000_000_000 + nanos);
    }
    match text.parse::<i64>() {
        Ok(seconds) if text.trim_start_matches('-').len() <= 10 => Ok(seconds.saturating_mul(1_000_000_000)),
        Ok(nanos) => Ok(nanos),
        Err(_) => chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(bad),
    }
}

fn time_or(pairs: &[(String, String)], name: &str, default: i64) -> Result<i64, LokiError> {
    match one(pairs, name) {
        None | Some("") => Ok(default),
        Some(text) => parse_time(name, text),
    }
}

fn required<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, LokiError> {
    match one(pairs, name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(LokiError::bad(format!("invalid parameter {name:?}: it is required"))),
    }
}

/// `limit` (default 100, at most 5000) and `direction` (default backward).
fn line_options(pairs: &[(String, String)]) -> Result<LineOptions, LokiError> {
    let mut options = LineOptions::default();
    if let Some(text) = one(pairs, "limit").filter(|t| !t.is_empty()) {
        options.limit = text
            .trim()
            .parse()
            .map_err(|_| LokiError::bad(format!("invalid parameter \"limit\": {text:?} is not a whole number")))?;
    }
    if let Some(text) = one(pairs, "direction").filter(|t| !t.is_empty()) {
        options.direction = Direction::parse(text)?;
    }
    Ok(options)
}

/// The `start` and `end` of a request, defaulting to `span` back from now.
fn span(pairs: &[(String, String)], span_ns: i64) -> Result<(i64, i64), LokiError> {
    let end = time_or(pairs, "end", crate::time::now_ns())?;
    let start = time_or(pairs, "start", end.saturating_sub(span_ns))?;
    if end < start {
        return Err(LokiError::bad("invalid parameter \"end\": the end must not be before the start"));
    }
    Ok((start, end))
}

fn answer(value: &LogqlValue) -> Response {
    let (data, entries) = match value {
        LogqlValue::Streams(streams) => {
            let result: Vec<Value> = streams
                .iter()
                .map(|s| {
                    json!({
                        "stream": labels_json(&s.labels),
                        "values": s.entries.iter().map(|(time, line)| json!([time.to_string(), line])).collect::<Vec<Value>>(),
                    })
                })
                .collect();
            let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
            (json!({"resultType": "streams", "result": result}), entries)
        }
        LogqlValue::Metric(metric) => (value_json(metric), 0),
    };
    let mut data = data;
    if let Some(map) = data.as_object_mut() {
        map.insert("stats".into(), json!({"summary": {"totalEntriesReturned": entries}}));
    }
    Json(json!({"status": "success", "data": data})).into_response()
}

/// `/loki/api/v1/query_range`: `query`, `start` (default an hour ago), `end` (default
/// now), `limit`, `direction`, `step` (seconds or a duration; default the span / 250).
#[utoipa::path(method(get, post), path = "/loki/api/v1/query_range", tag = "loki", params(("query" = String, Query, description = "A LogQL query"), ("start" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default an hour before end)"), ("end" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default now)"), ("limit" = Option<u32>, Query, description = "Most lines of a log query (default 100, at most 5000)"), ("direction" = Option<String>, Query, description = "forward or backward (default)"), ("step" = Option<String>, Query, description = "Step of a metric query: seconds or a duration such as 15s")), responses((status = 200, description = "{status: success, data: {resultType: streams | matrix, result, stats}}", body = Object), (status = 400, description = "Bad parameter or LogQL syntax (text)", body = String), (status = 422, description = "Unsupported construct or query limit (text)", body = String), (status = 503, description = "Timeout or unavailable store (text)", body = String)))]
pub(crate) async fn query_range(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let query = required(&pairs, "query")?.to_string();
        let (start, end) = span(&pairs, DEFAULT_QUERY_SPAN_NS)?;
        let lines = line_options(&pairs)?;
        let step_ms = match one(&pairs, "step").filter(|t| !t.is_empty()) {
            Some(text) => parse_duration("step", text)?,
            // Loki's default: the span in 250 steps, whole seconds, at least one.
            None => ((end - start) / 250 / 1_000_000_000).max(1) * 1000,
        };
        if step_ms <= 0 {
            return Err(LokiError::bad(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted",
            ));
        }
        let history = state.history.clone();
        let value = read(&state, move || {
            Ok(history.engine().snapshot().logql_range(&query, start, end, step_ms, lines)?)
        })
        .await?;
        Ok::<Response, LokiError>(answer(&value))
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/loki/api/v1/query`: a metric query at `time` (default now).
#[utoipa::path(method(get, post), path = "/loki/api/v1/query", tag = "loki", params(("query" = String, Query, description = "A LogQL metric query, such as sum by (level) (count_over_time({job=\"api\"}[5m])) or vector(1)+vector(1)"), ("time" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default now)")), responses((status = 200, description = "{status: success, data: {resultType: vector | scalar, result, stats}}", body = Object), (status = 400, description = "Bad parameter, LogQL syntax, or a log query (text)", body = String), (status = 422, description = "Unsupported construct or query limit (text)", body = String), (status = 503, description = "Timeout or unavailable store (text)", body = String)))]
pub(crate) async fn query(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let query = required(&pairs, "query")?.to_string();
        let time = time_or(&pairs, "time", crate::time::now_ns())?;
        let history = state.history.clone();
        let value = read(&state, move || Ok(history.engine().snapshot().logql_instant(&query, time)?)).await?;
        Ok::<Response, LokiError>(answer(&value))
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

/// Reads the `start`/`end` (default the last six hours) and the optional `query` stream
/// selector of a label request, then answers the names `call` finds on a snapshot.
async fn label_lookup(
    state: &AppState,
    raw: &Option<String>,
    call: impl FnOnce(&crate::Snapshot, Option<&str>, i64, i64) -> crate::Result<Vec<String>> + Send + 'static,
) -> Response {
    let work = async {
        let pairs = query_pairs(raw);
        let (start, end) = span(&pairs, DEFAULT_LABEL_SPAN_NS)?;
        let selector = one(&pairs, "query").filter(|t| !t.trim().is_empty()).map(str::to_string);
        let history = state.history.clone();
        let names = read(state, move || {
            Ok(call(&history.engine().snapshot(), selector.as_deref(), start, end)?)
        })
        .await?;
        Ok::<Response, LokiError>(Json(json!({"status": "success", "data": names})).into_response())
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/loki/api/v1/labels`: label names of the streams with lines in `[start, end]`
/// (default the last six hours), of those `query` selects when given.
#[utoipa::path(get, path = "/loki/api/v1/labels", tag = "loki", params(("start" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default six hours before end)"), ("end" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default now)"), ("query" = Option<String>, Query, description = "A stream selector")), responses((status = 200, description = "{status: success, data: [names]}", body = Object), (status = 400, description = "Bad parameter (text)", body = String)))]
pub(crate) async fn labels(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    label_lookup(&state, &raw, |snapshot, selector, start, end| {
        snapshot.logql_label_names(selector, start, end)
    })
    .await
}

/// `/loki/api/v1/label/{name}/values`: the values of one label.
#[utoipa::path(get, path = "/loki/api/v1/label/{name}/values", tag = "loki", params(("name" = String, Path, description = "A label name"), ("start" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default six hours before end)"), ("end" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default now)"), ("query" = Option<String>, Query, description = "A stream selector")), responses((status = 200, description = "{status: success, data: [values]}", body = Object), (status = 400, description = "Bad parameter (text)", body = String)))]
pub(crate) async fn label_values(State(state): State<AppState>, Path(name): Path<String>, RawQuery(raw): RawQuery) -> Response {
    label_lookup(&state, &raw, move |snapshot, selector, start, end| {
        snapshot.logql_label_values(&name, selector, start, end)
    })
    .await
}

/// `/loki/api/v1/series`: the streams `match[]` selects with lines in `[start, end]`.
#[utoipa::path(method(get, post), path = "/loki/api/v1/series", tag = "loki", params(("match[]" = Vec<String>, Query, description = "Stream selectors (at least one)"), ("start" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default six hours before end)"), ("end" = Option<String>, Query, description = "Unix nanoseconds, seconds, or RFC 3339 (default now)")), responses((status = 200, description = "{status: success, data: [label sets]}", body = Object), (status = 400, description = "Bad parameter (text)", body = String)))]
pub(crate) async fn series(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let selectors = selectors(&pairs);
        if selectors.is_empty() {
            return Err(LokiError::bad(
                "invalid parameter \"match[]\": at least one stream selector is required",
            ));
        }
        let (start, end) = span(&pairs, DEFAULT_LABEL_SPAN_NS)?;
        let history = state.history.clone();
        let streams = read(&state, move || {
            Ok(history.engine().snapshot().logql_series(&selectors, start, end)?)
        })
        .await?;
        Ok::<Response, LokiError>(
            Json(json!({"status": "success", "data": streams.iter().map(labels_json).collect::<Vec<Value>>()})).into_response(),
        )
    };
    work.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_loki_reads_them() {
        assert_eq!(parse_time("t", "1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_time("t", "1700000000.25").unwrap(), 1_700_000_000_250_000_000);
        assert_eq!(parse_time("t", "1700000000123456789").unwrap(), 1_700_000_000_123_456_789);
        assert_eq!(parse_time("t", "2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000_000_000);
        let error = parse_time("start", "yesterday").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("\"start\""), "{}", error.message);
        assert_eq!(parse_time("t", "1e300.0").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn limits_and_directions_are_checked() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> { list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        let options = line_options(&pairs(&[("limit", "7"), ("direction", "FORWARD")])).unwrap();
        assert_eq!((options.limit, options.direction), (7, Direction::Forward));
        assert_eq!(line_options(&pairs(&[])).unwrap(), LineOptions::default());
        assert!(line_options(&pairs(&[("limit", "-1")])).unwrap_err().message.contains("limit"));
        assert!(
            line_options(&pairs(&[("direction", "sideways")]))
                .unwrap_err()
                .message
                .contains("sideways")
        );
    }
}
