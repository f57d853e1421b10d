//! The routes: each reads its request, calls the library on the blocking pool, and writes
//! JSON.

use super::AppState;
use super::error::ApiError;
use super::prometheus;
use super::schema::{AlertsPage, CleanupPlan, CommitsPage, Health, OperationsList, PushStored, QueryPage, RecordsPage, SearchPage, Stored};
use crate::history::{CommitQuery, DataQuery, DataType};
use crate::ingest::JsonLinesParser;
use crate::model::{AlertEvent, AlertState, Batch};
use crate::query::{QuerySpec, SearchOrder, SearchQuery};
use crate::time::{Precision, format_rfc3339, now_ns};
use crate::trends::TrendQuery;
use crate::{SeriesKind, SeriesSelector, TagPredicate, TimeRange};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::io::Read;

/// Every route, behind the token check.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/health", get(health))
        .route("/openapi.json", get(super::openapi::openapi_json))
        .route("/write", post(write_line_protocol))
        .route("/api/v2/write", post(write_influx_v2))
        .route("/api/v1/write", post(prometheus_remote_write))
        .route("/loki/api/v1/push", post(loki_push))
        .route(
            "/loki/api/v1/query_range",
            get(super::loki::query_range).post(super::loki::query_range),
        )
        .route("/loki/api/v1/query", get(super::loki::query).post(super::loki::query))
        .route("/loki/api/v1/labels", get(super::loki::labels))
        .route("/loki/api/v1/label/{name}/values", get(super::loki::label_values))
        .route("/loki/api/v1/series", get(super::loki::series).post(super::loki::series))
        .route("/api/v1/query", get(prometheus::query).post(prometheus::query))
        .route("/api/v1/query_range", get(prometheus::query_range).post(prometheus::query_range))
        .route("/api/v1/series", get(prometheus::series).post(prometheus::series))
        .route("/api/v1/labels", get(prometheus::labels).post(prometheus::labels))
        .route("/api/v1/label/{name}/values", get(prometheus::label_values))
        .route("/api/v1/status/buildinfo", get(prometheus::buildinfo))
        .route("/api/v1/metadata", get(prometheus::metadata))
        .route("/history/metrics", get(query_metrics).post(store_metrics))
        .route("/history/metrics/summary", get(metrics_summary))
        .route("/history/metrics/trends", get(metrics_trends))
        .route("/history/logs/stats", get(logs_stats))
        .route("/history/performance/analysis", get(performance_analysis))
        .route("/history/performance/compare", get(performance_compare))
        .route("/history/performance", get(list_performance).post(store_performance))
        .route("/history/logs", get(list_logs).post(store_logs))
        .route("/history/logs/search", get(search_logs))
        .route("/history/alerts", get(list_alerts).post(store_alerts))
        .route("/history/alerts/{alert_id}/acknowledge", post(acknowledge_alert))
        .route("/history/alerts/{alert_id}/resolve", post(resolve_alert))
        .route("/history/storage", get(storage))
        .route("/history/commits", get(list_commits).post(store_commits))
        .route("/history/commits/{hash}", get(get_commit))
        .route("/hooks/git", post(git_push_hook))
        .route("/history/metrics/export", post(export_metrics))
        .route("/history/logs/export", post(export_logs))
        .route("/history/dashboard", get(dashboard))
        .route("/history/reports", get(reports))
        .route("/history/analyze", post(analyze))
        .route("/history/archive", post(archive))
        .route("/history/cleanup", post(cleanup))
        .route("/history/optimize", post(optimize))
        .route("/history/operations", get(list_operations))
        .route("/history/operations/{id}", get(get_operation))
        .route("/history/ws", get(super::live::websocket))
        .route("/metrics", get(super::metrics::metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route_layer(middleware::from_fn_with_state(state.clone(), super::metrics::record))
        // Bodies are limited by `read_body`, after decompression too.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Refuses a request without the configured bearer token (`/health` excepted).
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The git hook authenticates by its signature when a webhook secret is set.
    // The page at `/` holds no data (it asks for the token, then calls the API with it).
    let path = request.uri().path();
    let exempt = path == "/" || path == "/health" || path == "/openapi.json" || (path == "/hooks/git" && state.webhook_secret.is_some());
    if let Some(token) = &state.token
        && !exempt
    {
        // Browsers cannot set headers on a WebSocket handshake: it may carry the token as
        // `?token=` instead.
        let from_query = (path == "/history/ws")
            .then(|| {
                query_pairs(&request.uri().query().map(str::to_string))
                    .into_iter()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v)
            })
            .flatten();
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
            .or(from_query);
        let given = given.as_deref();
        if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs a library call on the blocking pool; a panic in it answers 500.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(answer) => answer,
        Err(e) if e.is_panic() => Err(ApiError::internal("the request's handler panicked; the server goes on")),
        Err(_) => Err(ApiError::internal("the request's handler was cancelled")),
    }
}

/// One of the limited query slots, or 429.
fn query_slot(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state.queries.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_queries",
            format!(
                "{} queries are running, the most this server answers at once; retry shortly",
                state.limits.max_concurrent_queries
            ),
        )
    })
}

/// A read: one of the limited query slots (429 when none is free), and the request
/// timeout (503 `timeout`; the call itself runs to its end, holding its slot).
pub(crate) async fn read<T: Send + 'static>(
    state: &AppState,
    call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = query_slot(state)?;
    let timeout = state.limits.request_timeout;
    let work = blocking(move || {
        let answer = call();
        drop(permit);
        answer
    });
    match tokio::time::timeout(timeout, work).await {
        Ok(answer) => answer,
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", timeout.as_secs_f64()),
        )),
    }
}

/// The body, within the size limit both as sent and after gzip decompression.
pub(crate) async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let max = state.limits.max_body_bytes;
    let raw = read_raw_body(state, body).await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw.to_vec()),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_input(format!("the gzip body does not decompress: {e}")))?;
            if out.len() > max {
                return Err(ApiError::body_too_large(max));
            }
            Ok(out)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {other:?} is not accepted (send identity or gzip)"),
        )),
    }
}

/// The body as sent (not decoded), at most `max_body_bytes`: 413 past that.
async fn read_raw_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let max = state.limits.max_body_bytes;
    Ok(http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ApiError::body_too_large(max)
            } else {
                ApiError::bad_input(format!("reading the request body failed: {e}"))
            }
        })?
        .to_bytes())
}

/// A JSON body, or 400 with `what` and the line and column where it stops being JSON.
fn json_body(body: &[u8], what: &str) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError {
        line: Some(e.line() as u64),
        column: Some(e.column() as u64),
        ..ApiError::bad_input(format!("{what}: {e}"))
    })
}

/// The pairs of a query string, percent-decoded.
pub(crate) fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Parameter `name`'s value as a whole number.
fn whole_number(name: &str, value: &str) -> Result<usize, ApiError> {
    // At most i64::MAX, as the OpenAPI document states (integers are 64-bit signed there).
    value
        .parse::<i64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| ApiError::bad_input(format!("{name}: {value:?} is not a whole number up to 2^63-1")))
}

/// The one value of parameter `name`, if given.
fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `GET /`: the dashboard page (compiled into the binary; it fetches nothing from elsewhere).
#[utoipa::path(get, path = "/", tag = "page", responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String)))]
pub(crate) async fn dashboard_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/index.html"),
    )
}

#[utoipa::path(get, path = "/health", tag = "server", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> impl IntoResponse {
    axum::Json(Health { status: "ok".into() })
}

/// The `precision` of an Influx write: `ns` when absent.
fn precision_param(pairs: &[(String, String)]) -> Result<Precision, ApiError> {
    match param(pairs, "precision") {
        None | Some("") => Ok(Precision::Nanoseconds),
        Some(p) => {
            Precision::parse(p).ok_or_else(|| ApiError::bad_input(format!("precision {p:?} is not one of ns (n), us (u), ms, s, m, h")))
        }
    }
}

/// `POST /write?db=&rp=&precision=`: Influx 1.x line protocol; 204 when every line was
/// stored, 400 naming the first bad line (and storing none). `db` becomes the tag `db` of
/// every series, so one store serves many databases; `rp` is accepted and not stored
/// (retention is the store's own).
#[utoipa::path(post, path = "/write", tag = "write", params(
    ("precision" = Option<String>, Query, description = "n or ns (default), u or us, ms, s, m or h."),
    ("db" = Option<String>, Query, description = "Stored as the tag `db` of every series written."),
    ("rp" = Option<String>, Query, description = "Accepted and not stored."),
), request_body(content = Option<String>, content_type = "text/plain", description = "Influx line protocol, optionally gzip; an empty body stores nothing"), responses((status = 204, description = "Every line stored")))]
pub(crate) async fn write_line_protocol(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let pairs = query_pairs(&raw);
    let precision = precision_param(&pairs)?;
    let tags = database_tag(param(&pairs, "db"));
    write_influx(state, precision, tags, headers, body).await
}

/// `POST /api/v2/write?org=&bucket=&precision=`: InfluxDB 2.x line protocol, as `/write`;
/// `bucket` (required) becomes the tag `db`, `org` is accepted and not stored.
#[utoipa::path(post, path = "/api/v2/write", tag = "write", params(
    ("bucket" = String, Query, description = "Stored as the tag `db` of every series written."),
    ("org" = Option<String>, Query, description = "Accepted and not stored."),
    ("precision" = Option<String>, Query, description = "ns (default), us, ms or s."),
), request_body(content = Option<String>, content_type = "text/plain", description = "Influx line protocol, optionally gzip; an empty body stores nothing"), responses((status = 204, description = "Every line stored")))]
pub(crate) async fn write_influx_v2(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let pairs = query_pairs(&raw);
    let precision = precision_param(&pairs)?;
    let Some(bucket) = param(&pairs, "bucket").filter(|b| !b.is_empty()) else {
        return Err(ApiError::bad_input("the bucket parameter is required"));
    };
    let tags = database_tag(Some(bucket));
    write_influx(state, precision, tags, headers, body).await
}

fn database_tag(db: Option<&str>) -> Vec<(String, String)> {
    db.filter(|d| !d.is_empty())
        .map(|d| ("db".to_string(), d.to_string()))
        .into_iter()
        .collect()
}

/// Parses and stores a line-protocol body, all lines or none.
async fn write_influx(
    state: AppState,
    precision: Precision,
    tags: Vec<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    let history = state.history.clone();
    let metrics = state.metrics.clone();
    blocking(move || {
        let text = std::str::from_utf8(&body).map_err(|e| {
            let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            ApiError {
                line: Some(line),
                ..ApiError::bad_input("the body is not UTF-8")
            }
        })?;
        let limits = &history.engine().options().limits;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let batch = crate::ingest::parse_line_protocol_body(text, precision, limits, &tags, now_ns(), threads)?;
        if !batch.is_empty() {
            metrics.ingested("line_protocol", history.engine().write(&batch)?.rows);
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /api/v1/write`: Prometheus remote write 1.0 (snappy block format, protobuf
/// `WriteRequest`); 204 when every sample was stored, 400 naming the first bad series (and
/// storing none), 413 past the body limit (compressed or not), 415 for remote write 2.0
/// (so that a sender falls back to 1.0) or another encoding.
#[utoipa::path(post, path = "/api/v1/write", tag = "write", request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "A snappy-compressed prometheus.WriteRequest (Content-Encoding: snappy)"), responses((status = 204, description = "Every sample stored")))]
pub(crate) async fn prometheus_remote_write(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<StatusCode, ApiError> {
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let content_type = header_text(header::CONTENT_TYPE);
    if content_type.contains("io.prometheus.write.v2") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "remote write 2.0 is not supported; send remote write 1.0 (prometheus.WriteRequest)",
        ));
    }
    let encoding = header_text(header::CONTENT_ENCODING);
    if !matches!(encoding.trim(), "snappy" | "") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {encoding:?} is not accepted (remote write is snappy)"),
        ));
    }
    let raw = read_raw_body(&state, body).await?;
    let max = state.limits.max_body_bytes;
    let history = state.history.clone();
    let metrics = state.metrics.clone();
    blocking(move || {
        use crate::ingest::remote_write;
        let protobuf = crate::ingest::decompress_snappy(&raw, max).map_err(|e| match e {
            crate::Error::LimitExceeded { .. } => ApiError::body_too_large(max),
            other => ApiError::from(other),
        })?;
        let batch = remote_write::decode(&protobuf, &history.engine().options().limits)?;
        if !batch.is_empty() {
            metrics.ingested("remote_write", history.engine().write(&batch)?.rows);
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /loki/api/v1/push`: Loki's push API, JSON (optionally gzip'd) or, with
/// `Content-Type: application/x-protobuf`, a snappy-compressed `PushRequest` as promtail
/// sends it. Every entry becomes a log record (`crate::ingest::loki`); 204 when all were
/// stored, 400 naming the first bad stream and entry (and storing none), 413 past the body
/// limit.
#[utoipa::path(post, path = "/loki/api/v1/push", tag = "write", request_body(content = String, content_type = "application/json", description = "{\"streams\": [{\"stream\": {labels}, \"values\": [[\"<unix ns>\", \"<line>\"]]}]}, or a snappy protobuf PushRequest (Content-Type: application/x-protobuf)"), responses((status = 204, description = "Every entry stored")))]
pub(crate) async fn loki_push(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<StatusCode, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let protobuf = content_type.starts_with("application/x-protobuf");
    let max = state.limits.max_body_bytes;
    // promtail's protobuf bodies are snappy without a Content-Encoding; JSON may be gzip'd.
    let body = if protobuf {
        read_raw_body(&state, body).await?.to_vec()
    } else {
        read_body(&state, &headers, body).await?
    };
    let history = state.history.clone();
    let metrics = state.metrics.clone();
    blocking(move || {
        use crate::ingest::loki;
        let limits = &history.engine().options().limits;
        let batch = if protobuf {
            let decompressed = crate::ingest::decompress_snappy(&body, max).map_err(|e| match e {
                crate::Error::LimitExceeded { .. } => ApiError::body_too_large(max),
                other => ApiError::from(other),
            })?;
            loki::decode_protobuf(&decompressed, limits)?
        } else {
            loki::decode_json(&body, limits)?
        };
        if !batch.is_empty() {
            metrics.ingested("loki_push", history.engine().write(&batch)?.rows);
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /history/{kind}`: a JSON array of typed records, stored all or nothing.
async fn store_records(state: AppState, kind: &'static str, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    let history = state.history.clone();
    let metrics = state.metrics.clone();
    blocking(move || {
        let limits = history.engine().options().limits.clone();
        let mut parser = JsonLinesParser::new(Precision::Nanoseconds, limits);
        let mut batch = Batch::new();
        let records = parser.parse_array_into(kind, &body, now_ns(), &mut batch)?;
        let rows = if batch.is_empty() {
            0
        } else {
            history.engine().write(&batch)?.rows
        };
        metrics.ingested(kind, rows);
        let stored = Stored {
            stored: records as u64,
            rows: rows as u64,
        };
        Ok((StatusCode::CREATED, axum::Json(stored)).into_response())
    })
    .await
}

#[utoipa::path(post, path = "/history/metrics", tag = "write", request_body(content = Vec<Object>, description = "Metric records (the keys of a JSON line)"), responses((status = 201, body = Stored)))]
pub(crate) async fn store_metrics(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "metric", headers, body).await
}

#[utoipa::path(post, path = "/history/performance", tag = "write", request_body(content = Vec<Object>, description = "Performance samples"), responses((status = 201, body = Stored)))]
pub(crate) async fn store_performance(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "performance", headers, body).await
}

#[utoipa::path(post, path = "/history/logs", tag = "write", request_body(content = Vec<Object>, description = "Log records"), responses((status = 201, body = Stored)))]
pub(crate) async fn store_logs(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "log", headers, body).await
}

#[utoipa::path(post, path = "/history/alerts", tag = "write", request_body(content = Vec<Object>, description = "Alert events"), responses((status = 201, body = Stored)))]
pub(crate) async fn store_alerts(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "alert", headers, body).await
}

/// `GET /history/logs`: log records of a range, newest first (the original `query_data`).
/// Parameters: `from`, `to`, `level` (repeatable), `q` (full-text filter), `order`
/// (`desc` default, `asc`), `limit` (1..=1000, default 100), `offset`, `cursor` →
/// `{records, total_count, next_cursor}`.
#[utoipa::path(get, path = "/history/logs", tag = "logs", params(("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("level" = Option<String>, Query, description = "DEBUG, INFO, WARNING, ERROR or CRITICAL (repeatable)."), ("q" = Option<String>, Query, description = "A full-text filter."), ("order" = Option<String>, Query, description = "desc (default) or asc."), ("limit" = Option<u64>, Query, description = "At most this many."), ("offset" = Option<u64>, Query, description = "Records to skip."), ("cursor" = Option<String>, Query, description = "Continue after the page that returned it.")), responses((status = 200, body = RecordsPage)))]
pub(crate) async fn list_logs(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<RecordsPage>, ApiError> {
    list_records(state, DataType::Logs, raw).await
}

/// `GET /history/performance`: performance samples of a range, as `GET /history/logs`
/// lists logs, with `component` (repeatable) instead of `level` and `q`.
#[utoipa::path(get, path = "/history/performance", tag = "performance", params(("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("component" = Option<String>, Query, description = "A component (repeatable)."), ("order" = Option<String>, Query, description = "desc (default) or asc."), ("limit" = Option<u64>, Query, description = "At most this many."), ("offset" = Option<u64>, Query, description = "Records to skip."), ("cursor" = Option<String>, Query, description = "Continue after the page that returned it.")), responses((status = 200, body = RecordsPage)))]
pub(crate) async fn list_performance(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<RecordsPage>, ApiError> {
    list_records(state, DataType::Performance, raw).await
}

async fn list_records(state: AppState, kind: DataType, raw: Option<String>) -> Result<axum::Json<RecordsPage>, ApiError> {
    let now = now_ns();
    let mut request = DataQuery {
        data_types: vec![kind],
        ..DataQuery::default()
    };
    for (name, value) in query_pairs(&raw) {
        let bad = |e: crate::Error| ApiError::from(e).in_param(&name);
        match (name.as_str(), kind) {
            ("from", _) => request.start_time = Some(crate::time::parse_time(&value, now).map_err(bad)?),
            ("to", _) => request.end_time = Some(crate::time::parse_time(&value, now).map_err(bad)?),
            ("level", DataType::Logs) => request.levels.push(crate::LogLevel::parse(&value).map_err(bad)?),
            ("q", DataType::Logs) => request.search_text = Some(value),
            ("component", DataType::Performance) => request.components.push(value),
            ("order", _) => {
                request.order_desc = match value.as_str() {
                    "desc" => true,
                    "asc" => false,
                    other => return Err(ApiError::bad_input(format!("order: {other:?} is not asc or desc"))),
                }
            }
            ("limit", _) => request.limit = whole_number(&name, &value)?,
            ("offset", _) => request.offset = whole_number(&name, &value)?,
            ("cursor", _) => request.cursor = Some(value),
            (other, _) => return Err(ApiError::bad_input(format!("unknown query parameter {other:?}"))),
        }
    }
    let history = state.history.clone();
    read(&state, move || {
        let page = history.query_data(&request)?;
        let records: Vec<Value> = page.rows.iter().map(|r| r.to_json()).collect();
        Ok(axum::Json(RecordsPage {
            records,
            total_count: page.total_count,
            next_cursor: page.next_cursor,
        }))
    })
    .await
}

/// `GET /history/logs/search?q=…`: full-text search over log messages. Parameters: `q`
/// (the query language of `annals search`; empty matches everything), `level`
/// (repeatable), `logger`, `where` (repeatable tag predicates), `from`, `to`, `order`
/// (`newest`, `oldest`, `relevance`), `limit`, `cursor`, `time_format=ns` → `{hits, total,
/// next_cursor}`, each hit with its snippet and highlight offsets.
#[utoipa::path(get, path = "/history/logs/search", tag = "logs", params(("q" = Option<String>, Query, description = "The query: words, phrases in double quotes, AND/OR/NOT, prefix*."), ("level" = Option<String>, Query, description = "A level (repeatable)."), ("logger" = Option<String>, Query, description = "A logger name."), ("where" = Option<String>, Query, description = "A tag predicate, e.g. host=a (repeatable)."), ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("order" = Option<String>, Query, description = "newest (default), oldest or relevance."), ("limit" = Option<u64>, Query, description = "At most this many."), ("cursor" = Option<String>, Query, description = "Continue after the page that returned it."), ("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), responses((status = 200, body = SearchPage)))]
pub(crate) async fn search_logs(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<SearchPage>, ApiError> {
    let now = now_ns();
    let mut text = String::new();
    let (mut levels, mut predicates) = (Vec::new(), Vec::new());
    let (mut start, mut end) = (i64::MIN, i64::MAX);
    let mut order = SearchOrder::Newest;
    let mut limit = crate::query::DEFAULT_SEARCH_LIMIT;
    let mut cursor = None;
    let mut integer_time = false;
    for (name, value) in query_pairs(&raw) {
        let bad = |e: crate::Error| ApiError::from(e).in_param(&name);
        match name.as_str() {
            "q" => text = value,
            "level" => levels.push(value.to_ascii_uppercase()),
            "logger" => predicates.push(TagPredicate::Eq("logger_name".into(), value)),
            "where" => predicates.push(TagPredicate::parse(&value).map_err(bad)?),
            "from" => start = crate::time::parse_time(&value, now).map_err(bad)?,
            "to" => end = crate::time::parse_time(&value, now).map_err(bad)?,
            "order" => order = SearchOrder::parse(&value).map_err(bad)?,
            "limit" => limit = whole_number("limit", &value)?,
            "cursor" => cursor = Some(value),
            "time_format" => integer_time = value == "ns",
            other => {
                return Err(ApiError::bad_input(format!(
                    "unknown query parameter {other:?} (known: q, level, logger, where, from, to, order, limit, cursor, time_format)"
                )));
            }
        }
    }
    crate::text::TextQuery::parse(&text).map_err(|e| ApiError::from(e).in_param("q"))?;
    if !levels.is_empty() {
        predicates.push(TagPredicate::In("level".into(), levels));
    }
    let query = SearchQuery {
        text,
        selector: SeriesSelector {
            kind: Some(SeriesKind::Log),
            measurement: None,
            predicate: TagPredicate::all(predicates),
        },
        range: TimeRange::new(start, end),
        order,
        limit,
        cursor,
        count_total: true,
    };
    let history = state.history.clone();
    read(&state, move || {
        let result = history.engine().snapshot().search(&query)?;
        let with_score = query.order == SearchOrder::Relevance;
        let hits: Vec<Value> = result.hits.iter().map(|h| h.to_json(integer_time, with_score)).collect();
        Ok(axum::Json(SearchPage {
            hits,
            total: result.total,
            next_cursor: result.next_cursor,
        }))
    })
    .await
}

/// `GET /history/alerts[?state=open|raised|acknowledged|resolved][&limit=N]`: the newest
/// event of each alert, newest first (`open`: raised or acknowledged, not resolved;
/// `state` repeatable; default limit 1000).
#[utoipa::path(get, path = "/history/alerts", tag = "alerts", params(("state" = Option<String>, Query, description = "open, raised, acknowledged or resolved."), ("limit" = Option<u64>, Query, description = "At most this many.")), responses((status = 200, body = AlertsPage)))]
pub(crate) async fn list_alerts(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<AlertsPage>, ApiError> {
    let mut states = Vec::new();
    let mut limit = 1000;
    for (name, value) in query_pairs(&raw) {
        match name.as_str() {
            "state" if value == "open" => states.extend([AlertState::Raised, AlertState::Acknowledged]),
            "state" => states.push(
                AlertState::parse(&value)
                    .map_err(|_| ApiError::bad_input(format!("state: {value:?} is not open, raised, acknowledged or resolved")))?,
            ),
            "limit" => limit = whole_number("limit", &value)?,
            other => {
                return Err(ApiError::bad_input(format!(
                    "unknown query parameter {other:?} (known: state, limit)"
                )));
            }
        }
    }
    let history = state.history.clone();
    read(&state, move || {
        let alerts: Vec<Value> = history.alerts(&states, limit)?.iter().map(AlertEvent::to_json).collect();
        Ok(axum::Json(AlertsPage { alerts }))
    })
    .await
}

/// `POST /history/alerts/{alert_id}/acknowledge[?at=TIME]`: appends an acknowledged
/// event (at `at`, default now) → the alert's newest event; 404 for an unknown alert.
#[utoipa::path(post, path = "/history/alerts/{alert_id}/acknowledge", tag = "alerts", params(("alert_id" = String, Path, description = "The alert."), ("at" = Option<String>, Query, description = "When (default now).")), responses((status = 200, description = "The newest event of the alert", body = Object)))]
pub(crate) async fn acknowledge_alert(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    change_alert(state, alert_id, raw, AlertState::Acknowledged).await
}

/// `POST /history/alerts/{alert_id}/resolve[?at=TIME]`: appends a resolved event.
#[utoipa::path(post, path = "/history/alerts/{alert_id}/resolve", tag = "alerts", params(("alert_id" = String, Path, description = "The alert."), ("at" = Option<String>, Query, description = "When (default now).")), responses((status = 200, description = "The newest event of the alert", body = Object)))]
pub(crate) async fn resolve_alert(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    change_alert(state, alert_id, raw, AlertState::Resolved).await
}

async fn change_alert(state: AppState, alert_id: String, raw: Option<String>, to: AlertState) -> Result<axum::Json<Value>, ApiError> {
    let now = now_ns();
    let mut at = now;
    for (name, value) in query_pairs(&raw) {
        match name.as_str() {
            "at" => at = crate::time::parse_time(&value, now).map_err(|e| ApiError::bad_input(format!("at: {e}")))?,
            other => return Err(ApiError::bad_input(format!("unknown query parameter {other:?} (known: at)"))),
        }
    }
    let history = state.history.clone();
    blocking(move || {
        let changed = match to {
            AlertState::Acknowledged => history.acknowledge_alert(&alert_id, at)?,
            _ => history.resolve_alert(&alert_id, at)?,
        };
        if !changed {
            return Err(ApiError::not_found(format!("no alert {alert_id:?} in this store")));
        }
        let newest = history
            .alert(&alert_id)?
            .ok_or_else(|| ApiError::not_found(format!("no alert {alert_id:?} in this store")))?;
        Ok(axum::Json(newest.to_json()))
    })
    .await
}

/// `GET /history/metrics`: the `query` flags as parameters (`measurement`, `field`,
/// `where`, `from`, `to`, `agg`, `every`, `group_by`, `fill`, `limit`, `cursor`,
/// `lastpoint`, …; `time_format=ns` for integer times) → `{columns, rows, total_count,
/// next_cursor, resolutions}`.
#[utoipa::path(get, path = "/history/metrics", tag = "metrics", params(super::schema::MetricsParams), responses((status = 200, body = QueryPage)))]
pub(crate) async fn query_metrics(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<QueryPage>, ApiError> {
    let pairs = query_pairs(&raw);
    let integer_times = time_format(&pairs)?;
    let spec = QuerySpec::from_pairs(
        pairs
            .iter()
            .filter(|(k, _)| k != "time_format")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let query = spec.to_query(now_ns())?;
    let history = state.history.clone();
    read(&state, move || query_page(&history, &query, integer_times).map(axum::Json)).await
}

/// `GET /history/metrics/trends`: the trend analysis of `annals trends` (patterns,
/// anomalies, forecast, correlation; `parts` picks them) over the series the selection
/// parameters pick, as JSON. docs/TRENDS.md describes each part.
#[utoipa::path(get, path = "/history/metrics/trends", tag = "metrics", params(super::schema::TrendParams), responses((status = 200, description = "The TrendAnalysis: `series` (label, tags, field, points, first, last, patterns, anomalies, forecast) and `correlation`", body = Object)))]
pub(crate) async fn metrics_trends(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(&raw);
    let integer_times = time_format(&pairs)?;
    let all_points = anomaly_points(&pairs)?;
    let query = TrendQuery::from_pairs(
        pairs
            .iter()
            .filter(|(k, _)| k != "time_format" && k != "points")
            .map(|(k, v)| (k.as_str(), v.as_str())),
        now_ns(),
    )?;
    let history = state.history.clone();
    read(&state, move || {
        Ok(axum::Json(history.get_trends(&query)?.to_json(!integer_times, all_points)))
    })
    .await
}

/// `points=anomalies|all`: true for every scored point.
fn anomaly_points(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    match param(pairs, "points") {
        None | Some("anomalies") => Ok(false),
        Some("all") => Ok(true),
        Some(other) => Err(ApiError::bad_input(format!("points: {other:?} is not anomalies or all"))),
    }
}

/// `time_format=rfc3339|ns`: true for integer times.
fn time_format(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    match param(pairs, "time_format") {
        None | Some("rfc3339") => Ok(false),
        Some("ns") => Ok(true),
        Some(other) => Err(ApiError::bad_input(format!("time_format: {other:?} is not rfc3339 or ns"))),
    }
}

/// A query's answer as `{columns, rows, total_count, next_cursor, resolutions}`.
fn query_page(history: &crate::history::History, query: &crate::Query, integer_times: bool) -> Result<QueryPage, ApiError> {
    let snapshot = history.engine().snapshot();
    let mut result = snapshot.query(query)?;
    let columns = result.columns();
    let time_column = result.time_column;
    let resolutions: Vec<String> = result.resolutions.iter().map(|r| r.name().to_string()).collect();
    let mut rows = Vec::new();
    for row in result.by_ref() {
        let row = row?;
        let mut cells = Vec::with_capacity(columns.len());
        if time_column {
            cells.push(match row.time {
                Some(t) if integer_times => t.into(),
                Some(t) => format_rfc3339(t).into(),
                None => Value::Null,
            });
        }
        cells.extend(row.tags.iter().map(|t| t.clone().map_or(Value::Null, Value::from)));
        cells.extend(row.values.iter().map(|v| v.as_ref().map_or(Value::Null, |v| v.to_json())));
        rows.push(cells);
    }
    let next_cursor = result.next_cursor().map(str::to_string);
    // Rows in the whole answer: this page and those before it, and when the page was
    // cut short, the rest counted (from block statistics where they suffice).
    let total_count = match &next_cursor {
        None => (query.offset + rows.len()) as u64,
        Some(_) => count_rows(&snapshot, query)?,
    };
    Ok(QueryPage {
        columns,
        rows,
        total_count: Some(total_count),
        next_cursor,
        resolutions: Some(resolutions),
        trends: None,
    })
}

/// A fixed report over a query written as parameters: the caller's `measurement`,
/// `field`, `where`, `from`, `to` (and `time_format`) with the report's own aggregates,
/// buckets and groups; other parameters are refused.
async fn report(
    state: &AppState,
    pairs: Vec<(String, String)>,
    allowed: &[&str],
    fixed: &[(&str, &str)],
) -> Result<axum::Json<QueryPage>, ApiError> {
    let integer_times = time_format(&pairs)?;
    let mut given = Vec::new();
    for (name, value) in &pairs {
        if name == "time_format" {
            continue;
        }
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::bad_input(format!(
                "unknown query parameter {name:?} (known: {}, time_format)",
                allowed.join(", ")
            )));
        }
        given.push((name.as_str(), value.as_str()));
    }
    let spec = QuerySpec::from_pairs(fixed.iter().copied().chain(given))?;
    let query = spec.to_query(now_ns())?;
    let history = state.history.clone();
    read(state, move || query_page(&history, &query, integer_times).map(axum::Json)).await
}

/// `GET /history/metrics/summary?measurement=&field=&period=hour|day|week`: per bucket of
/// the period (and `group_by` tags), the count, mean, min, max and p95 of the fields, over
/// `where`, `from` and `to`. Long ranges come from the store's summaries where retention
/// dropped the detail (`resolutions` says so).
#[utoipa::path(get, path = "/history/metrics/summary", tag = "metrics", params(("measurement" = String, Query, description = "The measurement."), ("field" = Option<String>, Query, description = "Fields."), ("where" = Option<String>, Query, description = "A tag predicate, e.g. host=a (repeatable)."), ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("group_by" = Option<String>, Query, description = "Tags to group by."), ("period" = Option<String>, Query, description = "hour (default), day or week."), ("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), responses((status = 200, body = QueryPage)))]
pub(crate) async fn metrics_summary(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<QueryPage>, ApiError> {
    let pairs = query_pairs(&raw);
    let every = match param(&pairs, "period").unwrap_or("hour") {
        "hour" => "1h",
        "day" => "day",
        "week" => "week",
        other => return Err(ApiError::bad_input(format!("period: {other:?} is not hour, day or week"))),
    };
    let rest: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "period").cloned().collect();
    report(
        &state,
        rest,
        &["measurement", "field", "where", "from", "to", "group_by"],
        &[("agg", "count,mean,min,max,p95"), ("every", every)],
    )
    .await
}

/// `GET /history/logs/stats?every=1h`: log records per level per bucket (default one
/// hour), over `where`, `from` and `to`.
#[utoipa::path(get, path = "/history/logs/stats", tag = "logs", params(("where" = Option<String>, Query, description = "A tag predicate, e.g. host=a (repeatable)."), ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("every" = Option<String>, Query, description = "Buckets (default 1h)."), ("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), responses((status = 200, body = QueryPage)))]
pub(crate) async fn logs_stats(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<QueryPage>, ApiError> {
    let pairs = query_pairs(&raw);
    let every = param(&pairs, "every").unwrap_or("1h").to_string();
    let rest: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "every").cloned().collect();
    report(
        &state,
        rest,
        &["where", "from", "to"],
        &[
            ("measurement", "log"),
            ("kind", "log"),
            ("agg", "count"),
            ("group_by", "level"),
            ("every", every.as_str()),
        ],
    )
    .await
}

/// `GET /history/performance/compare?baseline_from=&baseline_to=&from=&to=`: the analysis
/// of two ranges side by side, per component and operation → `{columns, rows}` with, for
/// each measure, its baseline value, its value and their ratio (value / baseline; null
/// where the baseline is 0 or missing).
#[utoipa::path(get, path = "/history/performance/compare", tag = "performance", params(("baseline_from" = Option<String>, Query, description = "Start of the baseline."), ("baseline_to" = Option<String>, Query, description = "End of the baseline."), ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("where" = Option<String>, Query, description = "A tag predicate, e.g. host=a (repeatable).")), responses((status = 200, body = QueryPage)))]
pub(crate) async fn performance_compare(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<QueryPage>, ApiError> {
    let pairs = query_pairs(&raw);
    let mut baseline = Vec::new();
    let mut current = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "baseline_from" => baseline.push(("from".to_string(), value)),
            "baseline_to" => baseline.push(("to".to_string(), value)),
            "from" | "to" => current.push((name, value)),
            "where" => {
                baseline.push((name.clone(), value.clone()));
                current.push((name, value));
            }
            other => {
                return Err(ApiError::bad_input(format!(
                    "unknown query parameter {other:?} (known: baseline_from, baseline_to, from, to, where)"
                )));
            }
        }
    }
    let axum::Json(before) = performance_analysis_of(&state, baseline).await?;
    let axum::Json(after) = performance_analysis_of(&state, current).await?;
    let measures: Vec<String> = after.columns.iter().skip(2).cloned().collect();
    let key = |row: &[Value]| (row[0].to_string(), row[1].to_string());
    let baseline_rows: std::collections::HashMap<(String, String), &Vec<Value>> = before.rows.iter().map(|r| (key(r), r)).collect();
    let mut columns = vec!["component".to_string(), "operation".to_string()];
    for m in &measures {
        columns.extend([format!("baseline {m}"), m.clone(), format!("ratio {m}")]);
    }
    let rows: Vec<Vec<Value>> = after
        .rows
        .iter()
        .map(|row| {
            let base = baseline_rows.get(&key(row));
            let mut cells = vec![row[0].clone(), row[1].clone()];
            for i in 0..measures.len() {
                let now = row.get(i + 2).cloned().unwrap_or(Value::Null);
                let then = base.and_then(|b| b.get(i + 2)).cloned().unwrap_or(Value::Null);
                let ratio = match (now.as_f64(), then.as_f64()) {
                    (Some(n), Some(t)) if t != 0.0 => Value::from(n / t),
                    _ => Value::Null,
                };
                cells.extend([then, now, ratio]);
            }
            cells
        })
        .collect();
    Ok(axum::Json(QueryPage {
        columns,
        rows,
        total_count: None,
        next_cursor: None,
        resolutions: None,
        trends: None,
    }))
}

/// `GET /history/performance/analysis`: per component and operation, the samples, their
/// errors and error rate (errors per sample), the p50/p90/p99/max duration (ms), and mean
/// throughput and efficiency, over `where`, `from` and `to`.
#[utoipa::path(get, path = "/history/performance/analysis", tag = "performance", params(("where" = Option<String>, Query, description = "A tag predicate, e.g. host=a (repeatable)."), ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("trends" = Option<String>, Query, description = "Trend parts of each component's and operation's mean duration: patterns, anomalies, forecast, correlation, all (answered under `trends`)."), ("every" = Option<String>, Query, description = "With trends: the bucket of the mean durations (default 1h)."), ("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), responses((status = 200, body = QueryPage)))]
pub(crate) async fn performance_analysis(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<QueryPage>, ApiError> {
    performance_analysis_of(&state, query_pairs(&raw)).await
}

async fn performance_analysis_of(state: &AppState, pairs: Vec<(String, String)>) -> Result<axum::Json<QueryPage>, ApiError> {
    // `trends` (and its `every`) ask for the trend analysis of each component's and
    // operation's mean duration beside the table.
    let trend_parts = param(&pairs, "trends").map(str::to_string);
    let every = param(&pairs, "every").unwrap_or("1h").to_string();
    let trend_selection: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "where" | "from" | "to"))
        .cloned()
        .collect();
    let integer_times = time_format(&pairs)?;
    let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "trends" && k != "every").collect();
    let axum::Json(mut page) = report(
        state,
        pairs,
        &["where", "from", "to"],
        &[
            ("measurement", "performance"),
            ("kind", "performance"),
            ("group_by", "component,operation"),
            (
                "agg",
                "count(*),sum(error_count),p50(duration_ms),p90(duration_ms),p99(duration_ms),max(duration_ms),mean(throughput),mean(efficiency_percent)",
            ),
        ],
    )
    .await?;
    // The error rate beside its two inputs: the 3rd and 4th columns, after the two tags.
    page.columns.push("error_rate".into());
    for row in &mut page.rows {
        let samples = row.get(2).and_then(Value::as_f64).unwrap_or(0.0);
        let errors = row.get(3).and_then(Value::as_f64).unwrap_or(0.0);
        row.push(if samples > 0.0 { (errors / samples).into() } else { Value::Null });
    }
    if let Some(parts) = trend_parts {
        let fixed = [
            ("measurement", "performance"),
            ("kind", "performance"),
            ("field", "duration_ms"),
            ("group_by", "component,operation"),
            ("every", every.as_str()),
            ("parts", parts.as_str()),
        ];
        let query = TrendQuery::from_pairs(
            fixed
                .iter()
                .copied()
                .chain(trend_selection.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            now_ns(),
        )?;
        let history = state.history.clone();
        let trends = read(state, move || Ok(history.get_trends(&query)?.to_json(!integer_times, false))).await?;
        page.trends = Some(trends);
    }
    Ok(axum::Json(page))
}

/// Rows the query would return without a limit: raw rows counted by a count aggregate,
/// aggregated or lastpoint rows by running the query whole.
fn count_rows(snapshot: &crate::Snapshot, query: &crate::Query) -> crate::Result<u64> {
    let mut whole = query.clone();
    whole.limit = None;
    whole.offset = 0;
    whole.cursor = None;
    if query.aggregates.is_empty() && !query.lastpoint {
        whole.fields = None;
        whole.aggregates = vec![crate::Aggregate::count_rows()];
        whole.order = crate::Order::Ascending;
        let (rows, _) = snapshot.query(&whole)?.collect_rows()?;
        return Ok(rows
            .first()
            .and_then(|r| r.values.first().cloned().flatten())
            .and_then(|v| match v {
                crate::FieldValue::I64(n) => Some(n.max(0) as u64),
                _ => None,
            })
            .unwrap_or(0));
    }
    let (rows, _) = snapshot.query(&whole)?.collect_rows()?;
    Ok(rows.len() as u64)
}

/// `GET /history/storage`: the store's sizes and counts.
#[utoipa::path(get, path = "/history/storage", tag = "management", responses((status = 200, description = "What annals stats --format json prints", body = Object)))]
pub(crate) async fn storage(State(state): State<AppState>) -> Result<axum::Json<Value>, ApiError> {
    let history = state.history.clone();
    read(&state, move || {
        let stats = history.storage_stats()?;
        serde_json::to_value(&stats)
            .map(axum::Json)
            .map_err(|e| ApiError::internal(format!("encoding the storage statistics: {e}")))
    })
    .await
}

/// `POST /history/commits`: a JSON array of commits (or one commit), each with the keys
/// of a `{"kind":"commit"}` JSON line (diffs' `diff_content` in base64) → one
/// `StorageResult` per commit, in order (200; 422 when the store failed one, for example
/// its object store being down, with the results saying which). All are checked before
/// any is stored: a commit that fails its checks makes the request a 400 naming its
/// position, and nothing is stored.
#[utoipa::path(post, path = "/history/commits", tag = "commits", request_body(content = Vec<Object>, description = "Commits with the keys of a commit JSON line"), responses((status = 200, description = "One StorageResult per commit", body = Vec<Object>), (status = 422, description = "A commit failed", body = Vec<Object>)))]
pub(crate) async fn store_commits(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    let history = state.history.clone();
    let metrics = state.metrics.clone();
    blocking(move || {
        let value = json_body(&body, "expected a JSON array of commits")?;
        let elements = match value {
            Value::Array(items) => items,
            object @ Value::Object(_) => vec![object],
            _ => return Err(ApiError::bad_input("expected a JSON array of commits, or one commit object")),
        };
        let limits = history.engine().options().limits.clone();
        let mut parser = JsonLinesParser::new(Precision::Nanoseconds, limits);
        let mut unused = Batch::new();
        let now = now_ns();
        for (i, mut element) in elements.into_iter().enumerate() {
            if let Some(map) = element.as_object_mut() {
                map.entry("kind").or_insert_with(|| "commit".into());
            }
            if element.get("kind").and_then(Value::as_str) != Some("commit") {
                return Err(ApiError {
                    line: Some(i as u64 + 1),
                    ..ApiError::bad_input(format!("element {} is not a commit object", i + 1))
                });
            }
            parser.parse_into(&element.to_string(), now, &mut unused).map_err(|e| {
                let mut error = ApiError::from(e);
                error.line = Some(i as u64 + 1);
                error
            })?;
        }
        let commits = parser.take_commits();
        let results = history.store_commits(&commits)?;
        metrics.ingested(
            "commit",
            results.iter().filter(|r| r.status == crate::StorageStatus::Success).count(),
        );
        let all_stored = results.iter().all(|r| r.status != crate::StorageStatus::Failed);
        let body: Vec<Value> = results.iter().map(|r| r.to_json()).collect();
        let status = if all_stored {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Ok((status, axum::Json(Value::Array(body))).into_response())
    })
    .await
}

/// `POST /hooks/git`: a GitHub or Gitea webhook delivery. `push` events are stored as
/// commits (files without diffs; a re-delivery answers `Duplicate`), `ping` is answered,
/// other events are acknowledged and ignored. With a webhook secret, the body must carry
/// a valid `X-Hub-Signature-256` (`sha256=` and the hex HMAC-SHA256 of the body), or the
/// answer is 401.
#[utoipa::path(post, path = "/hooks/git", tag = "commits", request_body(content = Object, description = "A GitHub or Gitea push event"), responses((status = 200, body = PushStored), (status = 202, description = "An event other than push, ignored", body = Object), (status = 422, body = PushStored)))]
pub(crate) async fn git_push_hook(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    if let Some(secret) = &state.webhook_secret {
        let signature = headers
            .get("x-hub-signature-256")
            .or_else(|| headers.get("x-gitea-signature"))
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().strip_prefix("sha256=").unwrap_or(v.trim()).to_string());
        if !signature.is_some_and(|s| signature_matches(secret.as_bytes(), &body, &s)) {
            return Err(ApiError {
                reason: "the delivery's X-Hub-Signature-256 is missing or does not match the webhook secret".into(),
                ..ApiError::unauthorized()
            });
        }
    }
    let event = headers
        .get("x-github-event")
        .or_else(|| headers.get("x-gitea-event"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("push")
        .to_string();
    match event.as_str() {
        "push" => {}
        "ping" => return Ok(axum::Json(json!({"ok": true})).into_response()),
        other => return Ok((StatusCode::ACCEPTED, axum::Json(json!({"ignored": other}))).into_response()),
    }
    let history = state.history.clone();
    let metrics = state.metrics.clone();
    blocking(move || {
        let commits = crate::ingest::webhook::push_commits(&body, now_ns())?;
        let results = history.store_commits(&commits)?;
        metrics.ingested(
            "git_push",
            results.iter().filter(|r| r.status == crate::StorageStatus::Success).count(),
        );
        let count = |s: crate::StorageStatus| results.iter().filter(|r| r.status == s).count();
        let failed = count(crate::StorageStatus::Failed);
        let answer = PushStored {
            stored: count(crate::StorageStatus::Success) as u64,
            duplicates: count(crate::StorageStatus::Duplicate) as u64,
            failed: failed as u64,
            results: results.iter().map(|r| r.to_json()).collect(),
        };
        let status = if failed == 0 {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Ok((status, axum::Json(answer)).into_response())
    })
    .await
}

/// True when `hex` is the HMAC-SHA256 of `body` under `secret` (compared in constant time).
fn signature_matches(secret: &[u8], body: &[u8], hex: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(expected) = decode_hex(hex) else { return false };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `GET /history/commits?repository=&author=&branch=&path=&from=&to=&limit=&cursor=`:
/// newest first → `{commits, next_cursor}`.
#[utoipa::path(get, path = "/history/commits", tag = "commits", params(("repository" = Option<String>, Query, description = "A repository."), ("author" = Option<String>, Query, description = "An author."), ("branch" = Option<String>, Query, description = "A branch."), ("path" = Option<String>, Query, description = "A file path."), ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("limit" = Option<u64>, Query, description = "At most this many."), ("cursor" = Option<String>, Query, description = "Continue after the page that returned it.")), responses((status = 200, body = CommitsPage)))]
pub(crate) async fn list_commits(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<CommitsPage>, ApiError> {
    let pairs = query_pairs(&raw);
    let now = now_ns();
    let mut request = CommitQuery::default();
    for (name, value) in &pairs {
        let time = |v: &str| crate::time::parse_time(v, now).map_err(|e| ApiError::bad_input(format!("{name}: {e}")));
        match name.as_str() {
            "repository" => request.repository = Some(value.clone()),
            "author" => request.author = Some(value.clone()),
            "branch" => request.branch = Some(value.clone()),
            "path" => request.path = Some(value.clone()),
            "from" => request.start_time = Some(time(value)?),
            "to" => request.end_time = Some(time(value)?),
            "limit" => request.limit = whole_number("limit", value)?,
            "cursor" => request.cursor = Some(value.clone()),
            other => {
                return Err(ApiError::bad_input(format!(
                    "unknown query parameter {other:?} (known: repository, author, branch, path, from, to, limit, cursor)"
                )));
            }
        }
    }
    let history = state.history.clone();
    read(&state, move || {
        let page = history.commits(&request)?;
        let commits: Vec<Value> = page.commits.iter().map(|c| c.to_json(false)).collect();
        Ok(axum::Json(CommitsPage {
            commits,
            next_cursor: page.next_cursor,
        }))
    })
    .await
}

/// `GET /history/commits/{hash}[?diff=true]`: the commit by full hash or unique prefix,
/// with its files (and their diffs in base64 with `diff=true`).
#[utoipa::path(get, path = "/history/commits/{hash}", tag = "commits", params(("hash" = String, Path, description = "A full hash or a unique prefix."), ("diff" = Option<String>, Query, description = "true to include the diffs.")), responses((status = 200, description = "The commit", body = Object)))]
pub(crate) async fn get_commit(
    State(state): State<AppState>,
    Path(hash): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(&raw);
    let with_diffs = match param(&pairs, "diff") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => return Err(ApiError::bad_input(format!("diff: {other:?} is not true or false"))),
    };
    let history = state.history.clone();
    read(&state, move || {
        let json = if with_diffs {
            history
                .get_commit_with_diffs(&hash)?
                .map(|(commit, diffs)| commit.to_json_with_diffs(&diffs))
        } else {
            history.get_commit_by_hash(&hash)?.map(|c| c.to_json(true))
        };
        json.map(axum::Json)
            .ok_or_else(|| ApiError::not_found(format!("no commit {hash:?} in this store")))
    })
    .await
}

/// The range of `from` and `to` parameters (times as `query` reads them), defaulting to the
/// `default_span` before now.
fn range_params(pairs: &[(String, String)], default_span: i64) -> Result<(i64, i64), ApiError> {
    let now = now_ns();
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        param(pairs, name)
            .map(|t| crate::time::parse_time(t, now).map_err(|e| ApiError::from(e).in_param(name)))
            .transpose()
    };
    let to = time("to")?.unwrap_or(now);
    let from = time("from")?.unwrap_or(to.saturating_sub(default_span));
    Ok((from, to))
}

fn only_params(pairs: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    match pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::bad_input(format!(
            "unknown query parameter {k:?} (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `GET /history/dashboard?from=&to=&reading=cpu.usage_percent`: what the demo prints,
/// over the range (default the last 7 days): latest readings per series, busiest hours,
/// log counts by level (whole and per bucket), recent errors, alert events and open
/// alerts, latency percentiles per component.
#[utoipa::path(get, path = "/history/dashboard", tag = "reports", params(("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, a date, nanoseconds, or now-1h."), ("to" = Option<String>, Query, description = "End (exclusive)."), ("reading" = Option<String>, Query, description = "measurement.field (repeatable).")), responses((status = 200, description = "The dashboard (History::dashboard)", body = Object)))]
pub(crate) async fn dashboard(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(&raw);
    only_params(&pairs, &["from", "to", "reading"])?;
    let (from, to) = range_params(&pairs, 7 * 24 * 3600 * crate::time::NANOS_PER_SECOND)?;
    let mut request = crate::history::DashboardRequest::new(from, to);
    let readings: Vec<&str> = pairs.iter().filter(|(k, _)| k == "reading").map(|(_, v)| v.as_str()).collect();
    if !readings.is_empty() {
        request.readings = readings
            .iter()
            .map(|r| crate::history::Reading::parse(r).map_err(|e| ApiError::from(e).in_param("reading")))
            .collect::<Result<_, _>>()?;
    }
    let history = state.history.clone();
    read(&state, move || {
        let board = history.dashboard(&request)?;
        serde_json::to_value(&board)
            .map(axum::Json)
            .map_err(|e| ApiError::internal(format!("encoding the dashboard: {e}")))
    })
    .await
}

/// `GET /history/reports?period=day|week&end=`: the report of the period ending at `end`
/// (default now) beside the period before; JSON, or an HTML page with `Accept: text/html`.
#[utoipa::path(get, path = "/history/reports", tag = "reports", params(("period" = Option<String>, Query, description = "day (default) or week."), ("end" = Option<String>, Query, description = "End of the period (default now).")), responses((status = 200, description = "The report as JSON, or HTML with Accept: text/html", content((Object = "application/json"), (String = "text/html")))))]
pub(crate) async fn reports(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(&raw);
    only_params(&pairs, &["period", "end"])?;
    let period = crate::history::ReportPeriod::parse(param(&pairs, "period").unwrap_or("day")).map_err(ApiError::from)?;
    let now = now_ns();
    let end = match param(&pairs, "end") {
        Some(t) => crate::time::parse_time(t, now).map_err(|e| ApiError::from(e).in_param("end"))?,
        None => now,
    };
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/html")));
    let history = state.history.clone();
    let report = read(&state, move || Ok(history.report(period, end)?)).await?;
    if html {
        return Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], report.to_html()).into_response());
    }
    serde_json::to_value(&report)
        .map(|v| axum::Json(v).into_response())
        .map_err(|e| ApiError::internal(format!("encoding the report: {e}")))
}

/// `POST /history/analyze?time_format=`: a query as a JSON object of the `GET
/// /history/metrics` parameters (`{"measurement": "cpu", "agg": ["mean"], "every": "1h"}`;
/// see `QuerySpec::from_json`) → the same `{columns, rows, ...}` answer.
#[utoipa::path(post, path = "/history/analyze", tag = "metrics", params(("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), request_body(content = Object, description = "A JSON object of the GET /history/metrics parameters"), responses((status = 200, body = QueryPage)))]
pub(crate) async fn analyze(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<QueryPage>, ApiError> {
    let pairs = query_pairs(&raw);
    only_params(&pairs, &["time_format"])?;
    let integer_times = time_format(&pairs)?;
    let body = read_body(&state, &headers, body).await?;
    let value = json_body(&body, "the query is not JSON")?;
    let query = QuerySpec::from_json(&value)?.to_query(now_ns())?;
    let history = state.history.clone();
    read(&state, move || query_page(&history, &query, integer_times).map(axum::Json)).await
}

/// `POST /history/archive?before=YYYY-MM`: moves every month before `before` into an
/// archive file (202 with an operation id; `archive_completed` and `operation_completed`
/// events at its end).
#[utoipa::path(post, path = "/history/archive", tag = "management", params(("before" = String, Query, description = "YYYY-MM: every month before it is archived.")), responses((status = 202, body = super::schema::OperationAccepted), (status = 409, description = "An operation of this kind is still running (the reason names it)", body = super::schema::ErrorBody)))]
pub(crate) async fn archive(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(&raw);
    only_params(&pairs, &["before"])?;
    let before = param(&pairs, "before").ok_or_else(|| ApiError::bad_input("before: is required (YYYY-MM)"))?;
    let before =
        crate::time::Month::parse(before).ok_or_else(|| ApiError::bad_input(format!("before: {before:?} is not a month (YYYY-MM)")))?;
    let history = state.history.clone();
    super::operations::start(&state, "archive", move |progress| {
        let report = history.engine().archive(before, None, &mut |done, total| {
            progress.set(super::operations::Progress {
                done,
                total,
                unit: "bytes".into(),
                detail: None,
            });
        })?;
        serde_json::to_value(&report).map_err(|e| ApiError::internal(format!("encoding the archive report: {e}")))
    })
}

/// `POST /history/cleanup?apply=true`: retention. Without `apply=true` a dry run answers
/// at once (200) with what would be dropped; with it, an operation (202).
#[utoipa::path(post, path = "/history/cleanup", tag = "management", params(("apply" = Option<String>, Query, description = "true to drop; otherwise a dry run.")), responses((status = 200, body = CleanupPlan), (status = 202, body = super::schema::OperationAccepted), (status = 409, description = "An operation of this kind is still running (the reason names it)", body = super::schema::ErrorBody)))]
pub(crate) async fn cleanup(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(&raw);
    only_params(&pairs, &["apply"])?;
    let apply = match param(&pairs, "apply") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => return Err(ApiError::bad_input(format!("apply: {other:?} is not true or false"))),
    };
    let history = state.history.clone();
    if !apply {
        let plan = read(&state, move || Ok(history.engine().retention_plan()?)).await?;
        return serde_json::to_value(&plan)
            .map(|plan| axum::Json(CleanupPlan { dry_run: true, plan }).into_response())
            .map_err(|e| ApiError::internal(format!("encoding the retention plan: {e}")));
    }
    super::operations::start(&state, "cleanup", move |_| {
        let report = history.engine().apply_retention()?;
        serde_json::to_value(&report).map_err(|e| ApiError::internal(format!("encoding the retention report: {e}")))
    })
}

/// `POST /history/optimize`: merges every month to one segment and its text index to one
/// segment, and removes orphan files (202 with an operation id).
#[utoipa::path(post, path = "/history/optimize", tag = "management", responses((status = 202, body = super::schema::OperationAccepted), (status = 409, description = "An operation of this kind is still running (the reason names it)", body = super::schema::ErrorBody)))]
pub(crate) async fn optimize(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    only_params(&query_pairs(&raw), &[])?;
    let history = state.history.clone();
    super::operations::start(&state, "optimize", move |progress| {
        let report = history.engine().optimize(&mut |p| {
            progress.set(super::operations::Progress {
                done: p.input_bytes_done,
                total: p.input_bytes_total,
                unit: "bytes".into(),
                detail: Some(p.month.clone()),
            });
        })?;
        serde_json::to_value(&report).map_err(|e| ApiError::internal(format!("encoding the optimize report: {e}")))
    })
}

/// `GET /history/operations`: the operations this server ran or runs, newest first.
#[utoipa::path(get, path = "/history/operations", tag = "management", responses((status = 200, body = OperationsList)))]
pub(crate) async fn list_operations(State(state): State<AppState>) -> axum::Json<OperationsList> {
    axum::Json(OperationsList {
        operations: state.operations.list(),
    })
}

/// `GET /history/operations/{id}`: one operation's status, progress and outcome.
#[utoipa::path(get, path = "/history/operations/{id}", tag = "management", params(("id" = String, Path, description = "The operation id.")), responses((status = 200, body = super::operations::Operation)))]
pub(crate) async fn get_operation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<super::operations::Operation>, ApiError> {
    let number: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_input(format!("operation id {id:?} is not a number")))?;
    let op = state
        .operations
        .get(number)
        .ok_or_else(|| ApiError::not_found(format!("no operation {number} (finished ones are kept for a while only)")))?;
    Ok(axum::Json(op))
}

/// Bytes the exporting thread hands the response at a time.
const EXPORT_CHUNK: usize = 64 << 10;
/// Chunks in flight between the exporting thread and the client: with the chunk size, the
/// memory an export holds whatever its size.
const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

/// A writer that hands full chunks to the response body, waiting while the client is
/// behind (so a slow client slows its export, and memory stays bounded).
struct ChunkSender {
    chunks: tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl ChunkSender {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = axum::body::Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(EXPORT_CHUNK)));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= EXPORT_CHUNK {
            self.send_buffer()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}

/// `POST /history/metrics/export?format=csv|ndjson|parquet&time_format=ns`: the rows of a query
/// (the body: a JSON object of the `GET /history/metrics` parameters, as for
/// `/history/analyze`), streamed as a file (`Content-Disposition: attachment`).
#[utoipa::path(post, path = "/history/metrics/export", tag = "metrics", params(("format" = Option<String>, Query, description = "csv (default), ndjson or parquet."), ("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), request_body(content = Object, description = "A JSON object of the GET /history/metrics parameters"), responses((status = 200, description = "The rows as a file", content((String = "text/csv"), (String = "application/x-ndjson"), (Vec<u8> = "application/vnd.apache.parquet")))))]
pub(crate) async fn export_metrics(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    export(state, raw, headers, body, None).await
}

/// `POST /history/logs/export?format=csv|ndjson|parquet`: as `/history/metrics/export`, over log
/// records (`measurement` and `kind` default to `log`; an empty body exports them all).
#[utoipa::path(post, path = "/history/logs/export", tag = "logs", params(("format" = Option<String>, Query, description = "csv (default), ndjson or parquet."), ("time_format" = Option<String>, Query, description = "rfc3339 (default) or ns.")), request_body(content = Object, description = "A JSON object of query parameters (measurement and kind default to log)"), responses((status = 200, description = "The records as a file", content((String = "text/csv"), (String = "application/x-ndjson"), (Vec<u8> = "application/vnd.apache.parquet")))))]
pub(crate) async fn export_logs(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    export(state, raw, headers, body, Some("log")).await
}

async fn export(
    state: AppState,
    raw: Option<String>,
    headers: HeaderMap,
    body: Body,
    kind: Option<&'static str>,
) -> Result<Response, ApiError> {
    use crate::query::export::{ExportFormat, ExportOptions, export_rows};
    let pairs = query_pairs(&raw);
    only_params(&pairs, &["format", "time_format"])?;
    let format = ExportFormat::parse(param(&pairs, "format").unwrap_or("csv")).map_err(|e| ApiError::from(e).in_param("format"))?;
    let integer_times = time_format(&pairs)?;
    let body = read_body(&state, &headers, body).await?;
    let mut value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_body(&body, "the query is not JSON")?
    };
    if let (Some(kind), Some(object)) = (kind, value.as_object_mut()) {
        object.entry("measurement").or_insert(kind.into());
        object.entry("kind").or_insert(kind.into());
    }
    let query = QuerySpec::from_json(&value)?.to_query(now_ns())?;
    let measurement = query.selector.measurement.clone().unwrap_or_default();
    let permit = query_slot(&state)?;
    let (chunks, receiver) = tokio::sync::mpsc::channel(EXPORT_CHUNKS_IN_FLIGHT);
    let (started, start_answer) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
    let history = state.history.clone();
    let export_measurement = measurement.clone();
    tokio::task::spawn_blocking(move || {
        let _slot = permit;
        // The query is planned before the answer's status is sent: a bad query or a limit
        // is still an error answer; a failure later cuts the body short (the client sees
        // an incomplete transfer, never a silently shortened file).
        let mut result = match history.engine().snapshot().query(&query) {
            Ok(result) => {
                let _ = started.send(Ok(()));
                result
            }
            Err(e) => {
                let _ = started.send(Err(e.into()));
                return;
            }
        };
        let mut out = ChunkSender {
            chunks: chunks.clone(),
            buffer: Vec::with_capacity(EXPORT_CHUNK),
        };
        let options = ExportOptions { format, integer_times };
        if let Err(e) = export_rows(&mut result, Some(&export_measurement), options, &mut out, &mut |_| {}) {
            let _ = chunks.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    match start_answer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(ApiError::internal("the export's thread ended before it started")),
    }
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let stamp = format_rfc3339(now_ns()).replace([':', '-'], "");
    let file_name: String = format!("annals-{measurement}-{}.{}", &stamp[..stamp.len().min(15)], format.extension())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
