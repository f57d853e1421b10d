//! `annals serve`: parses the flags, opens the store and hands it to the library's server.

use crate::CliError;
use annals::history::{History, WatchOptions};
use annals::server::{DEFAULT_LISTEN, ServerConfig, ServerLimits};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `serve`'s flags.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. An address other than loopback needs a token.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: SocketAddr,
    /// File holding the bearer token every route but /health needs (surrounding
    /// whitespace is ignored). ANNALS_TOKEN gives it directly.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// File holding the secret of POST /hooks/git: deliveries must then carry a valid
    /// X-Hub-Signature-256, and need no bearer token. ANNALS_WEBHOOK_SECRET gives it
    /// directly.
    #[arg(long, value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// Largest request body in bytes, as sent and after gzip decompression.
    #[arg(long, default_value_t = ServerLimits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Queries answered at once; more are answered 429.
    #[arg(long, default_value_t = ServerLimits::default().max_concurrent_queries)]
    max_concurrent_queries: usize,
    /// How long a read request may take before it is answered 503 (`30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = duration)]
    request_timeout: Duration,
    /// Seconds requests in flight get to finish on SIGTERM or SIGINT.
    #[arg(long, default_value_t = ServerLimits::default().shutdown_grace.as_secs())]
    shutdown_grace: u64,
    /// WebSocket clients subscribed to events at once; more are answered 429.
    #[arg(long, default_value_t = ServerLimits::default().max_subscribers)]
    max_subscribers: usize,
    /// Events queued per WebSocket client; a client further behind loses its oldest
    /// events and is sent a `lagged` event.
    #[arg(long, default_value_t = ServerLimits::default().subscriber_queue)]
    subscriber_queue: usize,
    /// Series one query may read; more is answered 422 naming the limit.
    #[arg(long, default_value_t = annals::QueryLimits::default().max_series)]
    max_query_series: u64,
    /// Values one query may decode; more is answered 422.
    #[arg(long, default_value_t = annals::QueryLimits::default().max_points_scanned)]
    max_query_points: u64,
    /// Rows one query may produce before its limit; more is answered 422.
    #[arg(long, default_value_t = annals::QueryLimits::default().max_result_rows)]
    max_query_rows: u64,
    /// Score new points of these series for anomalies while serving, publishing
    /// trend_alert events: MEASUREMENT[:FIELD,...][@PREDICATE], e.g. cpu:usage_user@host=a
    /// (repeatable; all numeric fields when none are named).
    #[arg(long, value_name = "SELECTION")]
    watch: Vec<String>,
    /// Sensitivity of the watching detector, in [0, 1] (higher reports more).
    #[arg(long, default_value_t = 0.5)]
    watch_sensitivity: f64,
    /// How much of each watched series' newest history warms its detector on start.
    #[arg(long, default_value = "7d", value_parser = duration)]
    watch_replay: Duration,
    /// Also store each anomaly as an alert (category anomaly, level WARNING).
    #[arg(long)]
    watch_store_alerts: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    annals::time::parse_duration(text).map_err(|e| e.to_string())
}

pub fn run(data: &Path, args: ServeArgs) -> Result<(), CliError> {
    let token = secret(&args.token_file, "ANNALS_TOKEN", "token")?;
    let webhook_secret = secret(&args.webhook_secret_file, "ANNALS_WEBHOOK_SECRET", "webhook secret")?;
    let watch = if args.watch.is_empty() {
        None
    } else {
        if !(0.0..=1.0).contains(&args.watch_sensitivity) {
            return Err(CliError::Annals(annals::Error::InvalidInput {
                line: None,
                column: None,
                reason: format!("--watch-sensitivity {} is outside 0..=1", args.watch_sensitivity),
            }));
        }
        Some(WatchOptions {
            selections: args
                .watch
                .iter()
                .map(|w| WatchOptions::parse_selection(w))
                .collect::<Result<_, _>>()?,
            detector: annals::trends::DetectorOptions {
                sensitivity: args.watch_sensitivity,
                ..Default::default()
            },
            replay_nanos: i64::try_from(args.watch_replay.as_nanos()).unwrap_or(i64::MAX),
            store_alerts: args.watch_store_alerts,
            ..WatchOptions::default()
        })
    };
    let config = ServerConfig {
        listen: args.listen,
        token,
        webhook_secret,
        limits: ServerLimits {
            max_body_bytes: args.max_body_bytes,
            max_concurrent_queries: args.max_concurrent_queries,
            request_timeout: args.request_timeout,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            max_subscribers: args.max_subscribers,
            subscriber_queue: args.subscriber_queue,
        },
        watch,
    };
    // Refuse a bad configuration before opening (and perhaps creating) the store.
    config.check()?;
    let options = annals::Options {
        query_limits: annals::QueryLimits {
            max_series: args.max_query_series,
            max_points_scanned: args.max_query_points,
            max_result_rows: args.max_query_rows,
        },
        ..crate::store_options()
    };
    let history = History::open(data, options)?;
    let secured = if config.token.is_some() { "token required" } else { "no token" };
    annals::server::serve_until_signal(history, &config, |bound| {
        eprintln!("annals serve: listening on http://{bound} ({secured}); data {}", data.display());
    })?;
    eprintln!("annals serve: stopped; the store is flushed and closed");
    Ok(())
}

/// A secret from its file (whitespace around it ignored) or else from the variable `env`.
fn secret(file: &Option<PathBuf>, env: &str, what: &str) -> Result<Option<String>, CliError> {
    match (file, std::env::var(env).ok()) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                CliError::Annals(annals::Error::InvalidInput {
                    line: None,
                    column: None,
                    reason: format!("cannot read the {what} file {}: {e}", file.display()),
                })
            })?;
            Ok(Some(text.trim().to_string()))
        }
        (None, Some(value)) => Ok(Some(value.trim().to_string())),
        (None, None) => Ok(None),
    }
}
