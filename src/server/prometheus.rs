//! Prometheus' HTTP query API, enough for Grafana's Prometheus data source: `/api/v1/query`,
//! `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/{name}/values`, `/api/v1/status/buildinfo` and `/api/v1/metadata`, by GET
//! or form POST, answered in Prometheus' envelope:
//!
//! ```json
//! {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {…}, "value": [1435781451.781, "1"]}]}}
//! {"status": "error", "errorType": "bad_data", "error": "…"}
//! ```
//! PromQL is evaluated by [`crate::query::promql`]; values are strings, times seconds.

use super::AppState;
use super::error::ApiError;
use super::routes::{query_pairs, read, read_body};
use crate::query::promql::{self, Labels, PromOptions, PromValue};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The Prometheus version whose API (and PromQL semantics) annals answers as.
pub(crate) const PROMETHEUS_VERSION: &str = "2.42.0";

/// An error in Prometheus' envelope: `errorType` is `bad_data` (400), `execution` (422),
/// `unavailable` or `timeout` (503, 429 when too many queries run) or `internal` (500).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PromError {
    pub(crate) status: StatusCode,
    error_type: &'static str,
    pub(crate) message: String,
}

impl PromError {
    pub(crate) fn bad_data(message: impl Into<String>) -> PromError {
        PromError {
            status: StatusCode::BAD_REQUEST,
            error_type: "bad_data",
            message: message.into(),
        }
    }
}

impl From<crate::Error> for PromError {
    fn from(error: crate::Error) -> PromError {
        PromError::from(ApiError::from(error))
    }
}

impl From<ApiError> for PromError {
    fn from(error: ApiError) -> PromError {
        let error_type = match (error.status, error.kind) {
            (_, "timeout") => "timeout",
            (StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE, _) => "bad_data",
            (StatusCode::UNPROCESSABLE_ENTITY, _) => "execution",
            (StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS, _) => "unavailable",
            (StatusCode::NOT_FOUND, _) => "not_found",
            _ => "internal",
        };
        PromError {
            status: error.status,
            error_type,
            message: error.reason,
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "errorType": self.error_type, "error": self.message})),
        )
            .into_response()
    }
}

pub(crate) fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// The parameters of a request: its query string and, for a form POST, its body.
pub(crate) async fn parameters(
    state: &AppState,
    method: &Method,
    raw: &Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, PromError> {
    let mut pairs = query_pairs(raw);
    if method == Method::POST {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let body = read_body(state, headers, body).await?;
        if !body.is_empty() {
            if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
                return Err(PromError::bad_data(format!(
                    "a POST carries its parameters as application/x-www-form-urlencoded, not {content_type:?}"
                )));
            }
            pairs.extend(form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
    }
    Ok(pairs)
}

pub(crate) fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The `match[]` selectors (`match` too, as older Grafana sends).
pub(crate) fn selectors(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "match[]" || k == "match")
        .map(|(_, v)| v.clone())
        .collect()
}

/// A time parameter: seconds since the epoch (fractions allowed) or RFC 3339.
fn parse_time(name: &str, text: &str) -> Result<i64, PromError> {
    let bad = || PromError::bad_data(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid timestamp"));
    if let Ok(seconds) = text.trim().parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() > 9.2e15 {
            return Err(bad());
        }
        return Ok((seconds * 1000.0).round() as i64);
    }
    let ns = chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(bad)?;
    Ok(ns.div_euclid(1_000_000))
}

/// A duration parameter: seconds (fractions allowed) or a Prometheus duration (`5m`).
pub(crate) fn parse_duration(name: &str, text: &str) -> Result<i64, PromError> {
    let bad = || PromError::bad_data(format!("invalid parameter {name:?}: cannot parse {text:?} to a valid duration"));
    if let Ok(seconds) = text.trim().parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() > 9.2e15 {
            return Err(bad());
        }
        return Ok((seconds * 1000.0).round() as i64);
    }
    let d = promql_parser::util::parse_duration(text.trim()).map_err(|_| bad())?;
    i64::try_from(d.as_millis()).map_err(|_| bad())
}

fn time_or(pairs: &[(String, String)], name: &str, default: i64) -> Result<i64, PromError> {
    match one(pairs, name) {
        None | Some("") => Ok(default),
        Some(text) => parse_time(name, text),
    }
}

fn required<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, PromError> {
    match one(pairs, name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(PromError::bad_data(format!("invalid parameter {name:?}: it is required"))),
    }
}

fn options(pairs: &[(String, String)]) -> Result<PromOptions, PromError> {
    let mut options = PromOptions::default();
    if let Some(text) = one(pairs, "lookback_delta").filter(|t| !t.is_empty()) {
        let ms = parse_duration("lookback_delta", text)?;
        if ms <= 0 {
            return Err(PromError::bad_data("invalid parameter \"lookback_delta\": it must be positive"));
        }
        options.lookback_ms = ms;
    }
    Ok(options)
}

pub(crate) fn labels_json(labels: &Labels) -> Value {
    Value::Object(labels.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
}

fn point(time_ms: i64, value: f64) -> Value {
    json!([promql::format_time(time_ms), promql::format_value(value)])
}

/// The `data` of a query answer.
pub(crate) fn value_json(value: &PromValue) -> Value {
    let result = match value {
        PromValue::Scalar { time_ms, value } => point(*time_ms, *value),
        PromValue::String { time_ms, value } => json!([promql::format_time(*time_ms), value]),
        PromValue::Vector(samples) => samples
            .iter()
            .map(|s| json!({"metric": labels_json(&s.labels), "value": point(s.time_ms, s.value)}))
            .collect(),
        PromValue::Matrix(series) => series
            .iter()
            .map(
                |s| json!({"metric": labels_json(&s.labels), "values": s.points.iter().map(|&(t, v)| point(t, v)).collect::<Vec<Value>>()}),
            )
            .collect(),
    };
    json!({"resultType": value.result_type(), "result": result})
}

/// Earliest and latest times a series or label request covers by default.
const MIN_TIME_MS: i64 = i64::MIN / 1_000_000;
const MAX_TIME_MS: i64 = i64::MAX / 1_000_000 - 1;

/// `/api/v1/query`: `query`, `time` (default now), `timeout` and `lookback_delta`.
#[utoipa::path(method(get, post), path = "/api/v1/query", tag = "prometheus", params(("query" = String, Query, description = "A PromQL expression"), ("time" = Option<String>, Query, description = "Evaluation time: seconds since the epoch or RFC 3339 (default now)"), ("lookback_delta" = Option<String>, Query, description = "How far back an instant selector looks (default 5m)"), ("timeout" = Option<String>, Query, description = "Accepted; the server's request timeout applies")), responses((status = 200, description = "{status: success, data: {resultType, result}}", body = Object), (status = 400, description = "Bad parameter or PromQL syntax (errorType bad_data)", body = Object), (status = 422, description = "Unsupported construct, matching error or query limit (errorType execution)", body = Object), (status = 503, description = "Timeout or unavailable store", body = Object)))]
pub(crate) async fn query(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let text = required(&pairs, "query")?.to_string();
        let time = time_or(&pairs, "time", crate::time::now_ns().div_euclid(1_000_000))?;
        let options = options(&pairs)?;
        let history = state.history.clone();
        let value = read(&state, move || {
            Ok(history.engine().snapshot().promql_instant(&text, time, &options)?)
        })
        .await?;
        Ok::<Response, PromError>(success(value_json(&value)))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/query_range`: `query`, `start`, `end`, `step` (seconds or a duration).
#[utoipa::path(method(get, post), path = "/api/v1/query_range", tag = "prometheus", params(("query" = String, Query, description = "A PromQL expression"), ("start" = String, Query, description = "Seconds since the epoch or RFC 3339"), ("end" = String, Query, description = "Seconds since the epoch or RFC 3339"), ("step" = String, Query, description = "Seconds or a duration such as 15s; at most 11,000 steps"), ("lookback_delta" = Option<String>, Query, description = "How far back an instant selector looks (default 5m)"), ("timeout" = Option<String>, Query, description = "Accepted; the server's request timeout applies")), responses((status = 200, description = "{status: success, data: {resultType: matrix, result}}", body = Object), (status = 400, description = "Bad parameter or PromQL syntax (errorType bad_data)", body = Object), (status = 422, description = "Unsupported construct, matching error or query limit (errorType execution)", body = Object), (status = 503, description = "Timeout or unavailable store", body = Object)))]
pub(crate) async fn query_range(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let text = required(&pairs, "query")?.to_string();
        let start = parse_time("start", required(&pairs, "start")?)?;
        let end = parse_time("end", required(&pairs, "end")?)?;
        if end < start {
            return Err(PromError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        let step = parse_duration("step", required(&pairs, "step")?)?;
        if step <= 0 {
            return Err(PromError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let options = options(&pairs)?;
        let history = state.history.clone();
        let value = read(&state, move || {
            Ok(history.engine().snapshot().promql_range(&text, start, end, step, &options)?)
        })
        .await?;
        Ok(success(value_json(&value)))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// Reads the `match[]` selectors and the `start`/`end` of a series or label request (all
/// time by default), then runs `call` on a snapshot within the query slots and timeout.
async fn series_lookup<T: Send + 'static>(
    state: &AppState,
    pairs: &[(String, String)],
    call: impl FnOnce(&crate::Snapshot, &[String], i64, i64) -> crate::Result<T> + Send + 'static,
) -> Result<T, PromError> {
    let selectors = selectors(pairs);
    let start = time_or(pairs, "start", MIN_TIME_MS)?;
    let end = time_or(pairs, "end", MAX_TIME_MS)?;
    let history = state.history.clone();
    Ok(read(state, move || Ok(call(&history.engine().snapshot(), &selectors, start, end)?)).await?)
}

/// `/api/v1/series`: the series `match[]` selects with samples in `[start, end]`.
#[utoipa::path(method(get, post), path = "/api/v1/series", tag = "prometheus", params(("match[]" = Vec<String>, Query, description = "Series selectors (at least one)"), ("start" = Option<String>, Query, description = "Seconds since the epoch or RFC 3339"), ("end" = Option<String>, Query, description = "Seconds since the epoch or RFC 3339")), responses((status = 200, description = "{status: success, data: [label sets]}", body = Object), (status = 400, description = "Bad parameter (errorType bad_data)", body = Object), (status = 422, description = "Query limit (errorType execution)", body = Object), (status = 503, description = "Timeout or unavailable store", body = Object)))]
pub(crate) async fn series(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let series = series_lookup(&state, &pairs, |snapshot, selectors, start, end| {
            snapshot.promql_series(selectors, start, end)
        })
        .await?;
        Ok::<Response, PromError>(success(series.iter().map(labels_json).collect()))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/labels`: label names of the series `match[]` selects (all when absent).
#[utoipa::path(method(get, post), path = "/api/v1/labels", tag = "prometheus", params(("match[]" = Option<Vec<String>>, Query, description = "Series selectors"), ("start" = Option<String>, Query, description = "Seconds since the epoch or RFC 3339"), ("end" = Option<String>, Query, description = "Seconds since the epoch or RFC 3339")), responses((status = 200, description = "{status: success, data: [names]}", body = Object), (status = 400, description = "Bad parameter (errorType bad_data)", body = Object), (status = 422, description = "Query limit (errorType execution)", body = Object), (status = 503, description = "Timeout or unavailable store", body = Object)))]
pub(crate) async fn labels(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let pairs = parameters(&state, &method, &raw, &headers, body).await?;
        let names = series_lookup(&state, &pairs, |snapshot, selectors, start, end| {
            snapshot.promql_label_names(selectors, start, end)
        })
        .await?;
        Ok::<Response, PromError>(success(json!(names)))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/label/{name}/values`: the values of one label (`__name__`: the metric names).
#[utoipa::path(get, path = "/api/v1/label/{name}/values", tag = "prometheus", params(("name" = String, Path, description = "A label name"), ("match[]" = Option<Vec<String>>, Query, description = "Series selectors"), ("start" = Option<String>, Query, description = "Seconds since the epoch or RFC 3339"), ("end" = Option<String>, Query, description = "Seconds since the epoch or RFC 3339")), responses((status = 200, description = "{status: success, data: [values]}", body = Object), (status = 400, description = "Bad parameter (errorType bad_data)", body = Object), (status = 422, description = "Query limit (errorType execution)", body = Object), (status = 503, description = "Timeout or unavailable store", body = Object)))]
pub(crate) async fn label_values(State(state): State<AppState>, Path(name): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let answer = async {
        let pairs = query_pairs(&raw);
        let values = series_lookup(&state, &pairs, move |snapshot, selectors, start, end| {
            snapshot.promql_label_values(&name, selectors, start, end)
        })
        .await?;
        Ok::<Response, PromError>(success(json!(values)))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/status/buildinfo`: the Prometheus version annals answers as, for clients that
/// pick features by it (Grafana).
#[utoipa::path(get, path = "/api/v1/status/buildinfo", tag = "prometheus", responses((status = 200, description = "{status: success, data: {version, revision, branch, …}}", body = Object)))]
pub(crate) async fn buildinfo() -> Response {
    success(json!({
        "version": PROMETHEUS_VERSION,
        "revision": concat!("annals-", env!("CARGO_PKG_VERSION")),
        "branch": "annals",
        "buildUser": "annals",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// `/api/v1/metadata`: metric metadata (type, help, unit). annals keeps none, so the answer
/// is always the empty object Prometheus gives for metrics without metadata.
#[utoipa::path(get, path = "/api/v1/metadata", tag = "prometheus", params(("metric" = Option<String>, Query, description = "Accepted"), ("limit" = Option<String>, Query, description = "Accepted")), responses((status = 200, description = "{status: success, data: {}}", body = Object)))]
pub(crate) async fn metadata() -> Response {
    success(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_prometheus_reads_them() {
        assert_eq!(parse_time("t", "1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("t", "1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(parse_time("t", "2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        let error = parse_time("time", "yesterday").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("\"time\""), "{}", error.message);
        assert!(parse_time("t", "NaN").is_err() && parse_time("t", "1e300").is_err());
        assert_eq!(parse_duration("step", "15").unwrap(), 15_000);
        assert_eq!(parse_duration("step", "0.5").unwrap(), 500);
        assert_eq!(parse_duration("step", "1m30s").unwrap(), 90_000);
        assert!(parse_duration("step", "fast").is_err());
    }

    #[test]
    fn library_errors_get_prometheus_error_types() {
        let bad = PromError::from(crate::Error::invalid("x"));
        assert_eq!((bad.status, bad.error_type), (StatusCode::BAD_REQUEST, "bad_data"));
        let unsupported = PromError::from(crate::Error::Unsupported { what: "f".into() });
        assert_eq!(
            (unsupported.status, unsupported.error_type),
            (StatusCode::UNPROCESSABLE_ENTITY, "execution")
        );
        let matching = PromError::from(crate::Error::QueryExecution { reason: "m".into() });
        assert_eq!(matching.error_type, "execution");
        let closed = PromError::from(crate::Error::Closed);
        assert_eq!((closed.status, closed.error_type), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
    }
}
