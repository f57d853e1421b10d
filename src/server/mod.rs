//! `annals serve`: one process that owns a store and serves it over HTTP (feature `server`,
//! axum on tokio).
//!
//! Handlers are thin: they read the request, call [`History`] (on tokio's blocking pool,
//! since the store's calls wait on disk and on group commit) and write JSON. A write
//! answers 2xx only after the store acknowledged it, so an acknowledged write is as durable
//! as the store's durability mode makes it. Errors are [`ApiError`]s. With a token, every
//! route but `GET /health` needs `Authorization: Bearer <token>`.
//!
//! Routes of this version: `GET /health`; `POST /write` (Influx line protocol);
//! `POST /history/metrics`, `/history/performance`, `/history/logs`, `/history/alerts`
//! (JSON arrays of the typed records); `GET /history/logs`, `/history/performance` and
//! `/history/logs/search`; the reports `GET /history/metrics/summary`,
//! `/history/logs/stats` and `/history/performance/analysis`; `GET /history/alerts`,
//! `POST /history/alerts/{alert_id}/acknowledge` and `/resolve`; `GET /history/metrics`
//! (the `query` flags as query parameters); `GET /history/storage`; `POST /history/commits`, `GET /history/commits`,
//! `GET /history/commits/{hash}`; `POST /hooks/git` (GitHub and Gitea push events);
//! `GET /history/dashboard`, `GET /history/reports`, `POST /history/analyze`; the
//! operations `POST /history/archive`, `/history/cleanup`, `/history/optimize` and
//! `GET /history/operations[/{id}]`; `GET /history/ws` (events); `GET /metrics`.

mod error;
mod live;
mod loki;
mod metrics;
mod openapi;
mod operations;
mod prometheus;
mod routes;
mod schema;

pub use error::ApiError;

use crate::error::{Error, Result};
use crate::history::History;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8086";

/// The server's own limits, each with a default.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Largest request body, in bytes, both as sent and after gzip decompression
    /// (default 64 MiB).
    pub max_body_bytes: usize,
    /// Queries answered at once; more are refused with 429 (default 16).
    pub max_concurrent_queries: usize,
    /// A read request that takes longer is answered 503 `timeout` (default 30 s). Writes are
    /// not cut: their outcome must be known.
    pub request_timeout: Duration,
    /// On shutdown, requests in flight get this long to finish (default 10 s).
    pub shutdown_grace: Duration,
    /// WebSocket clients subscribed at once; more are refused with 429 (default 256).
    pub max_subscribers: usize,
    /// Events queued per WebSocket client before its oldest are dropped (default 1024).
    pub subscriber_queue: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_body_bytes: 64 << 20,
            max_concurrent_queries: 16,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            max_subscribers: 256,
            subscriber_queue: 1024,
        }
    }
}

/// How to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The bearer token every route but `/health` needs; `None` for none.
    pub token: Option<String>,
    /// The secret of `POST /hooks/git`: with it, a push must carry a valid
    /// `X-Hub-Signature-256` (HMAC-SHA256 of the body) and needs no bearer token, since
    /// GitHub and Gitea cannot send one; without it, the hook is guarded like every route.
    pub webhook_secret: Option<String>,
    /// The limits.
    pub limits: ServerLimits,
    /// Series whose new points the anomaly detector scores while the server runs,
    /// publishing `trend_alert` events (see [`crate::history::TrendWatcher`]).
    pub watch: Option<crate::history::WatchOptions>,
    /// Replicates the store's metrics to a remote-write receiver while the server runs
    /// (see [`crate::forward`]); its progress is in `GET /metrics` (`annals_forward_*`).
    pub forward: Option<crate::forward::ForwardOptions>,
}

impl ServerConfig {
    /// Checks the configuration: a non-loopback address needs a token (a store open to the
    /// network without one would let anyone read and write it), a token is not empty, and
    /// the limits are above zero.
    pub fn check(&self) -> Result<()> {
        if let Some(forward) = &self.forward {
            forward.check()?;
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            return Err(Error::invalid(format!(
                "refusing to listen on {} without a token: give --token-file or ANNALS_TOKEN, or listen on 127.0.0.1",
                self.listen
            )));
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::invalid("the token is empty"));
        }
        if self.webhook_secret.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::invalid("the webhook secret is empty"));
        }
        let l = &self.limits;
        if l.max_body_bytes == 0
            || l.max_concurrent_queries == 0
            || l.request_timeout.is_zero()
            || l.max_subscribers == 0
            || l.subscriber_queue == 0
        {
            return Err(Error::invalid("server limits must be above zero"));
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub history: Arc<History>,
    /// The forwarder's statistics, when one runs.
    pub forward: Option<crate::forward::ForwardStatsHandle>,
    pub token: Option<Arc<str>>,
    pub webhook_secret: Option<Arc<str>>,
    pub limits: ServerLimits,
    pub queries: Arc<tokio::sync::Semaphore>,
    pub subscribers: Arc<tokio::sync::Semaphore>,
    pub operations: Arc<operations::Operations>,
    pub metrics: Arc<metrics::ServerMetrics>,
}

/// Serves `history` on `listener` until `shutdown` completes, then stops accepting,
/// gives requests in flight up to `shutdown_grace`, and returns. The caller closes the
/// store (see [`serve_until_signal`]).
pub async fn serve(
    history: Arc<History>,
    listener: tokio::net::TcpListener,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_with(history, listener, config, shutdown, None).await
}

/// [`serve`], with the statistics of a running forwarder for `GET /metrics`.
async fn serve_with(
    history: Arc<History>,
    listener: tokio::net::TcpListener,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    forward: Option<crate::forward::ForwardStatsHandle>,
) -> Result<()> {
    config.check()?;
    let state = AppState {
        forward,
        history,
        token: config.token.as_deref().map(Arc::from),
        webhook_secret: config.webhook_secret.as_deref().map(Arc::from),
        limits: config.limits.clone(),
        queries: Arc::new(tokio::sync::Semaphore::new(config.limits.max_concurrent_queries)),
        subscribers: Arc::new(tokio::sync::Semaphore::new(config.limits.max_subscribers)),
        operations: Arc::default(),
        metrics: Arc::new(metrics::ServerMetrics::new()),
    };
    let app = routes::router(state);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signal_stop = stopping.clone();
    // Answers go out as soon as they are written: without TCP_NODELAY a small answer
    // written in two pieces can wait for the client's delayed acknowledgement.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        let _ = stream.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        signal_stop.notify_one();
    });
    let grace = config.limits.shutdown_grace;
    tokio::select! {
        served = server => served.map_err(|e| Error::Io { op: "serve HTTP", path: "".into(), source: e }),
        () = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            eprintln!("annals serve: requests still in flight after {} s were cut off", grace.as_secs());
            Ok(())
        }
    }
}

/// Opens nothing itself: serves `history` on `config.listen` on a new multi-threaded
/// runtime until SIGINT or SIGTERM, then closes the store (flushing it). `ready` is called
/// with the bound address once the server accepts connections.
pub fn serve_until_signal(history: History, config: &ServerConfig, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    config.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("annals-serve")
        .build()
        .map_err(|e| Error::Io {
            op: "start the server's runtime",
            path: "".into(),
            source: e,
        })?;
    let history = Arc::new(history);
    let watcher = match &config.watch {
        Some(options) => Some(crate::history::TrendWatcher::start(history.clone(), options.clone())?),
        None => None,
    };
    let forwarder = match &config.forward {
        Some(options) => Some(crate::forward::Forwarder::start(history.clone(), options.clone())?),
        None => None,
    };
    let forward_stats = forwarder.as_ref().map(|f| f.stats_handle());
    let outcome = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| Error::Io {
            op: "listen on",
            path: config.listen.to_string().into(),
            source: e,
        })?;
        let bound = listener.local_addr().map_err(|e| Error::Io {
            op: "read the listening address",
            path: config.listen.to_string().into(),
            source: e,
        })?;
        ready(bound);
        serve_with(history.clone(), listener, config, shutdown_signal(), forward_stats).await
    });
    // Blocking calls still running (a write cut off by the grace period) finish first:
    // they hold the store.
    runtime.shutdown_timeout(config.limits.shutdown_grace);
    // The watcher holds the store too: it stops before the store closes.
    if let Some(watcher) = watcher {
        watcher.stop();
    }
    // So does the forwarder; its position stays where the last acknowledgement put it.
    if let Some(forwarder) = forwarder {
        forwarder.stop();
    }
    let closed = match Arc::try_unwrap(history) {
        Ok(history) => history.close(),
        // A blocking call outlived the grace period; flushing keeps what was acknowledged.
        Err(shared) => shared.engine().flush().map(|_| ()),
    };
    outcome.and(closed)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_a_token() {
        let mut config = ServerConfig {
            listen: "0.0.0.0:8086".parse().unwrap(),
            token: None,
            webhook_secret: None,
            limits: ServerLimits::default(),
            watch: None,
            forward: None,
        };
        match config.check() {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("without a token"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        config.token = Some("secret".into());
        config.check().unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.token = None;
        config.check().unwrap();
    }
}
