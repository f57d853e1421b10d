//! What every peer started as a separate process needs: its binary (installed through
//! `scripts/bench-peers.sh` when missing), a free loopback port, and an HTTP client that
//! reports a peer's error answers rather than failing on them.

use crate::BenchError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A peer's binary (`victoria-metrics`, `prometheus`, `influxd`), installed through
/// `scripts/bench-peers.sh` when it is missing; the reason it is not available otherwise.
pub fn locate(name: &str) -> Result<PathBuf, String> {
    if let Some(found) = on_path(name) {
        return Ok(found);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-peers.sh");
    println!("{name} is not installed; running {}", script.display());
    let status = Command::new("sh")
        .arg(&script)
        .arg(name)
        .status()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!("not installed, and {} could not install it", script.display()));
    }
    on_path(name).ok_or_else(|| "not on PATH after installation".to_string())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A port on 127.0.0.1 that nothing listens on now (the peer binds it a moment later).
pub fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::Io("127.0.0.1:0".into(), e))
}

/// An HTTP client whose error statuses are answers to read, not transport errors.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

/// Opens (appending) the log file a peer's stdout and stderr go to.
pub fn log_file(path: &Path) -> Result<(std::fs::File, std::fs::File), BenchError> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    let err = out.try_clone().map_err(|e| BenchError::Io(path.to_path_buf(), e))?;
    Ok((out, err))
}

/// The sum of a metric's samples (all label sets) in Prometheus' text format.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A peer server started by the harness: its process (killed when dropped), its HTTP API
/// on 127.0.0.1 and its log.
pub struct Server {
    name: &'static str,
    child: std::process::Child,
    log: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    agent: ureq::Agent,
}

/// A response whose status was not the one asked for: status and body.
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl Server {
    /// Starts `command` with its stdout and stderr appended to `log` and its HTTP API on
    /// `port`, then waits up to `within` until `GET ready_path` answers with success and a
    /// body that `is_ready` accepts. Fails at once, naming the log, if the process exits.
    pub fn start(
        name: &'static str,
        mut command: Command,
        port: u16,
        log: &Path,
        ready_path: &str,
        is_ready: impl Fn(&str) -> bool,
        within: Duration,
    ) -> Result<Server, BenchError> {
        let (out, err) = log_file(log)?;
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| BenchError::Peer(format!("{name} could not start: {e}")))?;
        let mut server = Server {
            name,
            child,
            log: log.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
            agent: agent(Duration::from_secs(3600)),
        };
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(server.error("exited on start", format!("{status}; see {}", server.log.display())));
            }
            if server.get(ready_path).is_ok_and(|body| is_ready(body.trim())) {
                return Ok(server);
            }
            if std::time::Instant::now() > deadline {
                return Err(server.error("start", format!("{ready_path} not ready within {within:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An error of this peer about `what`.
    pub fn error(&self, what: &str, e: impl std::fmt::Display) -> BenchError {
        BenchError::Peer(format!("{} {what}: {e}", self.name))
    }

    /// `GET path_and_query`: the body of a success (up to 1 GiB), an error otherwise.
    pub fn get(&self, path_and_query: &str) -> Result<String, BenchError> {
        self.get_with(path_and_query, &[])
    }

    /// `GET path` with query parameters: the body of a success, an error otherwise.
    pub fn get_with(&self, path: &str, params: &[(&str, &str)]) -> Result<String, BenchError> {
        let mut request = self.agent.get(&format!("{}{path}", self.base));
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let mut response = request.call().map_err(|e| self.error(path, e))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| self.error(path, e))?;
        if !status.is_success() {
            return Err(self.error(path, format!("{status}: {body}")));
        }
        Ok(body)
    }

    /// `POST path_and_query` with `body`: `Ok` when the status is `expected` (or any
    /// success when `None`), `Err(Ok(refused))` with the status and body otherwise, and
    /// `Err(Err(_))` when the request failed.
    pub fn post(
        &self,
        path_and_query: &str,
        content_type: Option<&str>,
        body: &[u8],
        expected: Option<u16>,
    ) -> Result<(), Result<Refused, BenchError>> {
        let mut request = self.agent.post(&format!("{}{path_and_query}", self.base));
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let mut response = request.send(body).map_err(|e| Err(self.error(path_and_query, e)))?;
        let status = response.status();
        if expected.map_or(status.is_success(), |want| status.as_u16() == want) {
            return Ok(());
        }
        Err(Ok(Refused {
            status: status.as_u16(),
            body: response.body_mut().read_to_string().unwrap_or_default(),
        }))
    }

    /// [`Server::post`] with a refusal turned into an error naming `path_and_query`.
    pub fn post_expecting(
        &self,
        path_and_query: &str,
        content_type: Option<&str>,
        body: &[u8],
        expected: Option<u16>,
    ) -> Result<(), BenchError> {
        self.post(path_and_query, content_type, body, expected)
            .map_err(|refused| match refused {
                Ok(r) => self.error(path_and_query, format!("{}: {}", r.status, r.body)),
                Err(e) => e,
            })
    }

    /// Peak resident memory of the process so far.
    pub fn peak_rss(&self) -> Option<u64> {
        crate::report::peak_rss_of(self.child.id())
    }

    /// Stops the process gracefully (SIGTERM) and waits for it to end.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
