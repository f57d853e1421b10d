//! The routes: each reads its request, calls the library on the blocking pool, and writes
//! JSON.

use super::AppState;
use super::error::ApiError;
use crate::history::CommitQuery;
use crate::ingest::{JsonLinesParser, LineProtocolParser};
use crate::model::Batch;
use crate::query::QuerySpec;
use crate::time::{Precision, format_rfc3339, now_ns};
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
        .route("/health", get(health))
        .route("/write", post(write_line_protocol))
        .route("/history/metrics", get(query_metrics).post(store_metrics))
        .route("/history/performance", post(store_performance))
        .route("/history/logs", post(store_logs))
        .route("/history/alerts", post(store_alerts))
        .route("/history/storage", get(storage))
        .route("/history/commits", get(list_commits).post(store_commits))
        .route("/history/commits/{hash}", get(get_commit))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        // Bodies are limited by `read_body`, after decompression too.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Refuses a request without the configured bearer token (`/health` excepted).
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token
        && request.uri().path() != "/health"
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
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

/// A read: one of the limited query slots (429 when none is free), and the request
/// timeout (503 `timeout`; the call itself runs to its end, holding its slot).
async fn read<T: Send + 'static>(state: &AppState, call: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    let permit = state.queries.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_queries",
            format!(
                "{} queries are running, the most this server answers at once; retry shortly",
                state.limits.max_concurrent_queries
            ),
        )
    })?;
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
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let max = state.limits.max_body_bytes;
    let raw = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ApiError::body_too_large(max)
            } else {
                ApiError::bad_input(format!("reading the request body failed: {e}"))
            }
        })?
        .to_bytes();
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

/// The pairs of a query string, percent-decoded.
fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The one value of parameter `name`, if given.
fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn health() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// `POST /write?precision=ns|us|ms|s`: Influx line protocol; 204 when every line was
/// stored, 400 naming the first bad line (and storing none).
async fn write_line_protocol(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let pairs = query_pairs(&raw);
    let precision = match param(&pairs, "precision") {
        None => Precision::Nanoseconds,
        Some(p) => Precision::parse(p).ok_or_else(|| ApiError::bad_input(format!("precision {p:?} is not one of ns, us, ms, s")))?,
    };
    let body = read_body(&state, &headers, body).await?;
    let history = state.history.clone();
    blocking(move || {
        let text = std::str::from_utf8(&body).map_err(|e| {
            let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            ApiError {
                line: Some(line),
                ..ApiError::bad_input("the body is not UTF-8")
            }
        })?;
        let limits = history.engine().options().limits.clone();
        let mut parser = LineProtocolParser::new(precision, limits);
        let mut batch = Batch::new();
        let now = now_ns();
        for (i, line) in text.lines().enumerate() {
            parser.parse_into(line, now, &mut batch).map_err(|e| {
                let mut error = ApiError::from(e);
                error.line = Some(i as u64 + 1);
                error
            })?;
        }
        if !batch.is_empty() {
            history.engine().write(&batch)?;
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /history/{kind}`: a JSON array of typed records, stored all or nothing.
async fn store_records(state: AppState, kind: &'static str, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    let history = state.history.clone();
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
        Ok((StatusCode::CREATED, axum::Json(json!({"stored": records, "rows": rows}))).into_response())
    })
    .await
}

async fn store_metrics(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "metric", headers, body).await
}

async fn store_performance(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "performance", headers, body).await
}

async fn store_logs(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "log", headers, body).await
}

async fn store_alerts(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    store_records(state, "alert", headers, body).await
}

/// `GET /history/metrics`: the `query` flags as parameters (`measurement`, `field`,
/// `where`, `from`, `to`, `agg`, `every`, `group_by`, `fill`, `limit`, `cursor`,
/// `lastpoint`, …; `time_format=ns` for integer times) → `{columns, rows, total_count,
/// next_cursor, resolutions}`.
async fn query_metrics(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(&raw);
    let integer_times = match param(&pairs, "time_format") {
        None | Some("rfc3339") => false,
        Some("ns") => true,
        Some(other) => return Err(ApiError::bad_input(format!("time_format: {other:?} is not rfc3339 or ns"))),
    };
    let spec = QuerySpec::from_pairs(
        pairs
            .iter()
            .filter(|(k, _)| k != "time_format")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let query = spec.to_query(now_ns())?;
    let history = state.history.clone();
    read(&state, move || {
        let snapshot = history.engine().snapshot();
        let mut result = snapshot.query(&query)?;
        let columns = result.columns();
        let time_column = result.time_column;
        let resolutions: Vec<&str> = result.resolutions.iter().map(|r| r.name()).collect();
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
            rows.push(Value::Array(cells));
        }
        let next_cursor = result.next_cursor().map(str::to_string);
        // Rows in the whole answer: this page and those before it, and when the page was
        // cut short, the rest counted (from block statistics where they suffice).
        let total_count = match &next_cursor {
            None => (query.offset + rows.len()) as u64,
            Some(_) => count_rows(&snapshot, &query)?,
        };
        Ok(axum::Json(json!({
            "columns": columns,
            "rows": rows,
            "total_count": total_count,
            "next_cursor": next_cursor,
            "resolutions": resolutions,
        })))
    })
    .await
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
async fn storage(State(state): State<AppState>) -> Result<axum::Json<Value>, ApiError> {
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
async fn store_commits(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body).await?;
    let history = state.history.clone();
    blocking(move || {
        let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError {
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            ..ApiError::bad_input(format!("expected a JSON array of commits: {e}"))
        })?;
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

/// `GET /history/commits?repository=&author=&branch=&path=&from=&to=&limit=&cursor=`:
/// newest first → `{commits, next_cursor}`.
async fn list_commits(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<axum::Json<Value>, ApiError> {
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
            "limit" => {
                request.limit = value
                    .parse()
                    .map_err(|_| ApiError::bad_input(format!("limit: {value:?} is not a whole number")))?
            }
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
        Ok(axum::Json(json!({"commits": commits, "next_cursor": page.next_cursor})))
    })
    .await
}

/// `GET /history/commits/{hash}[?diff=true]`: the commit by full hash or unique prefix,
/// with its files (and their diffs in base64 with `diff=true`).
async fn get_commit(
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
