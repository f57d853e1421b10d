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
    /// A TOML file with a [forward] section: replicate the store's metrics by Prometheus
    /// remote write (keys: url, name, bearer_token(_file), username, password(_file),
    /// measurements, where, from, settle, interval, max_samples_per_request, max_backoff,
    /// request_timeout; see the README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The `--config` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    forward: Option<ForwardSection>,
}

/// Its `[forward]` section.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardSection {
    url: String,
    name: Option<String>,
    bearer_token: Option<String>,
    bearer_token_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default)]
    measurements: Vec<String>,
    #[serde(default, rename = "where")]
    predicates: Vec<String>,
    from: Option<String>,
    settle: Option<String>,
    interval: Option<String>,
    max_samples_per_request: Option<usize>,
    max_backoff: Option<String>,
    request_timeout: Option<String>,
}

fn config_error(file: &Path, reason: impl std::fmt::Display) -> CliError {
    CliError::Annals(annals::Error::InvalidInput {
        line: None,
        column: None,
        reason: format!("{}: {reason}", file.display()),
    })
}

/// The forwarding options of a `--config` file, if it has a `[forward]` section.
fn forward_options(file: &Path) -> Result<Option<annals::forward::ForwardOptions>, CliError> {
    use annals::forward::{ForwardAuth, ForwardOptions};
    let text = std::fs::read_to_string(file).map_err(|e| config_error(file, format!("cannot be read: {e}")))?;
    let config: ConfigFile = toml::from_str(&text).map_err(|e| config_error(file, e))?;
    let Some(section) = config.forward else {
        return Ok(None);
    };
    let read_secret = |value: &Option<String>, path: &Option<PathBuf>, key: &str| -> Result<Option<String>, CliError> {
        match (value, path) {
            (Some(_), Some(_)) => Err(config_error(file, format!("[forward] gives both {key} and {key}_file"))),
            (Some(value), None) => Ok(Some(value.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| config_error(file, format!("[forward] {key}_file {} cannot be read: {e}", path.display()))),
            (None, None) => Ok(None),
        }
    };
    let token = read_secret(&section.bearer_token, &section.bearer_token_file, "bearer_token")?;
    let password = read_secret(&section.password, &section.password_file, "password")?;
    let auth = match (token, &section.username, password) {
        (None, None, None) => ForwardAuth::None,
        (Some(token), None, None) => ForwardAuth::Bearer(token),
        (None, Some(username), Some(password)) => ForwardAuth::Basic {
            username: username.clone(),
            password,
        },
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(config_error(file, "[forward] basic auth needs both username and password"));
        }
        (Some(_), _, _) => {
            return Err(config_error(
                file,
                "[forward] gives a bearer token and a username or password: pick one",
            ));
        }
    };
    let span = |value: &Option<String>, key: &str, default: Duration| -> Result<Duration, CliError> {
        match value {
            None => Ok(default),
            Some(text) => annals::time::parse_duration(text).map_err(|e| config_error(file, format!("[forward] {key}: {e}"))),
        }
    };
    let defaults = ForwardOptions::new(section.url.clone());
    let start = section
        .from
        .as_deref()
        .map(|t| annals::time::parse_time(t, annals::time::now_ns()))
        .transpose()
        .map_err(|e| config_error(file, format!("[forward] from: {e}")))?;
    Ok(Some(ForwardOptions {
        name: section.name.clone().unwrap_or(defaults.name.clone()),
        auth,
        measurements: section.measurements,
        predicates: section.predicates,
        start,
        settle: span(&section.settle, "settle", defaults.settle)?,
        interval: span(&section.interval, "interval", defaults.interval)?,
        max_samples_per_request: section.max_samples_per_request.unwrap_or(defaults.max_samples_per_request),
        max_backoff: span(&section.max_backoff, "max_backoff", defaults.max_backoff)?,
        request_timeout: span(&section.request_timeout, "request_timeout", defaults.request_timeout)?,
        ..defaults
    }))
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
        forward: match &args.config {
            Some(file) => forward_options(file)?,
            None => None,
        },
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
    let forwarding = config
        .forward
        .as_ref()
        .map(|f| format!("; forwarding metrics to {}", f.url))
        .unwrap_or_default();
    annals::server::serve_until_signal(history, &config, |bound| {
        eprintln!(
            "annals serve: listening on http://{bound} ({secured}); data {}{forwarding}",
            data.display()
        );
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
