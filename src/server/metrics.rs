//! `GET /metrics`: the server's own metrics in Prometheus' text format: requests and their
//! latencies per route, rows ingested per kind, the store's bytes, WebSocket subscribers
//! and the events their full queues dropped.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The server's metrics.
pub(crate) struct ServerMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    ingested_rows: Family<KindLabels, Counter>,
    store_bytes: Gauge,
    store_rows: Gauge,
    subscribers: Gauge,
    dropped_events: Counter,
    forward_position: Gauge<f64, std::sync::atomic::AtomicU64>,
    forward_samples: Gauge,
    forward_failed_attempts: Gauge,
    forward_rejected_samples: Gauge,
}

impl ServerMetrics {
    pub fn new() -> ServerMetrics {
        let mut registry = Registry::with_prefix("annals");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        // 0.25 ms to about 8 s.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.00025, 2.0, 16)));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        let ingested_rows = Family::<KindLabels, Counter>::default();
        registry.register(
            "ingested_rows",
            "Rows stored through the server, by kind of request",
            ingested_rows.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_bytes",
            "Bytes of the store on disk (segments, WAL, catalog, indexes)",
            store_bytes.clone(),
        );
        let store_rows = Gauge::default();
        registry.register("store_rows", "Rows the store holds", store_rows.clone());
        let subscribers = Gauge::default();
        registry.register(
            "websocket_subscribers",
            "WebSocket clients subscribed to events",
            subscribers.clone(),
        );
        let dropped_events = Counter::default();
        registry.register(
            "websocket_dropped_events",
            "Events dropped from the queues of WebSocket clients that fell behind",
            dropped_events.clone(),
        );
        let forward_position = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "forward_position_seconds",
            "Time up to which every selected metric row was sent to the remote-write receiver (Unix seconds)",
            forward_position.clone(),
        );
        let forward_samples = Gauge::default();
        registry.register(
            "forward_sent_samples",
            "Samples the remote-write receiver acknowledged since the server started",
            forward_samples.clone(),
        );
        let forward_failed_attempts = Gauge::default();
        registry.register(
            "forward_failed_attempts",
            "Remote-write requests that failed and were retried since the server started",
            forward_failed_attempts.clone(),
        );
        let forward_rejected_samples = Gauge::default();
        registry.register(
            "forward_rejected_samples",
            "Samples of requests the remote-write receiver refused for good (4xx) since the server started",
            forward_rejected_samples.clone(),
        );
        ServerMetrics {
            forward_position,
            forward_samples,
            forward_failed_attempts,
            forward_rejected_samples,
            registry,
            requests,
            latency,
            ingested_rows,
            store_bytes,
            store_rows,
            subscribers,
            dropped_events,
        }
    }

    /// Counts rows stored by a request of `kind` (`line_protocol`, `metrics`, `logs`, ...).
    pub fn ingested(&self, kind: &str, rows: usize) {
        self.ingested_rows
            .get_or_create(&KindLabels { kind: kind.to_string() })
            .inc_by(rows as u64);
    }

    /// Counts events a subscriber's queue dropped.
    pub fn websocket_dropped(&self, dropped: u64) {
        self.dropped_events.inc_by(dropped);
    }

    /// A WebSocket client subscribed (+1) or left (-1).
    pub fn websocket_subscribers(&self, change: i64) {
        self.subscribers.inc_by(change);
    }
}

/// Counts every request and times it, labelled by its route's pattern (not its path, so
/// the number of series stays bounded).
pub(crate) async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the server's own metrics in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "server", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let history = state.history.clone();
    // Store sizes come from the store's statistics, read off the async threads.
    if let Ok(Ok(stats)) = tokio::task::spawn_blocking(move || history.storage_stats()).await {
        state.metrics.store_bytes.set(stats.bytes as i64);
        state.metrics.store_rows.set(stats.rows as i64);
    }
    if let Some(forward) = &state.forward {
        let stats = forward.stats();
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        state.metrics.forward_position.set(stats.position_ns as f64 / 1e9);
        state.metrics.forward_samples.set(gauge(stats.samples_sent));
        state.metrics.forward_failed_attempts.set(gauge(stats.failed_attempts));
        state.metrics.forward_rejected_samples.set(gauge(stats.rejected_samples));
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry) {
        return super::error::ApiError::internal(format!("encoding the metrics: {e}")).into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        text,
    )
        .into_response()
}
