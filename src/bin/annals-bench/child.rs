//! One engine's ingest in a child process of the harness, so that the peak resident memory
//! measured is that engine's alone (a process's high-water mark cannot be reset). The
//! child side (`--child-ingest`) is `serve_child` in `main.rs`, which knows the workloads;
//! the workloads call [`load`] here.

use crate::{BenchError, Engines, Workload};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What a child measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct Loaded {
    /// Wall time of the whole load, including the final flush or checkpoint.
    pub seconds: f64,
    /// The child's peak RSS at the end of the load.
    pub peak_rss_bytes: Option<u64>,
}

/// In the parent: runs one engine's load of `workload` into `dir` in a child process.
pub fn load(engines: &Engines, workload: Workload, engine: &str, dir: &Path) -> Result<Loaded, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Io("annals-bench".into(), e))?;
    let args = engines.args;
    let mut command = Command::new(&exe);
    command
        .arg("--child-ingest")
        .arg(engine)
        .arg("--workload")
        .arg(format!("{workload:?}").to_lowercase())
        .arg("--scale")
        .arg(format!("{:?}", args.scale).to_lowercase())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if args.quick {
        command.arg("--quick");
    }
    if let Some(hosts) = args.hosts {
        command.arg("--hosts").arg(hosts.to_string());
    }
    if let Some(lines) = args.lines {
        command.arg("--lines").arg(lines.to_string());
    }
    let output = command.output().map_err(|e| BenchError::Io(exe.clone(), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BenchError::Peer(format!(
            "loading {engine} in a child process failed ({}): {stdout}",
            output.status
        )));
    }
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| BenchError::Peer(format!("child {engine}: {e} in {last:?}")))
}

/// In the child (`--child-serve`): serves `--dir` over HTTP until SIGTERM, after printing
/// `listening on ADDR` on stdout.
pub fn serve_http(args: &crate::Args) -> Result<(), BenchError> {
    use std::io::Write;
    let dir = args
        .dir
        .clone()
        .ok_or_else(|| BenchError::Peer("--child-serve needs --dir".into()))?;
    let history = annals::history::History::open(&dir, crate::store_options())?;
    let config = annals::server::ServerConfig {
        listen: "127.0.0.1:0".parse().map_err(|e| BenchError::Peer(format!("{e}")))?,
        token: None,
        webhook_secret: None,
        limits: annals::server::ServerLimits::default(),
        watch: None,
        forward: None,
    };
    annals::server::serve_until_signal(history, &config, |address| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {address}");
        let _ = out.flush();
    })?;
    Ok(())
}

/// `annals serve` in a child process of the harness (its peak RSS is its own), stopped with
/// SIGTERM when dropped.
pub struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl HttpServer {
    /// Starts serving `dir`.
    pub fn start(dir: &Path) -> Result<HttpServer, BenchError> {
        let exe = std::env::current_exe().map_err(|e| BenchError::Io("annals-bench".into(), e))?;
        let mut child = Command::new(&exe)
            .arg("--child-serve")
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::Io(exe.clone(), e))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        match line.trim().strip_prefix("listening on ") {
            Some(address) => Ok(HttpServer {
                base: format!("http://{address}"),
                child,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(BenchError::Peer(format!("the annals server did not start: {line:?}")))
            }
        }
    }

    /// Peak resident memory of the server so far.
    pub fn peak_rss(&self) -> Option<u64> {
        crate::report::peak_rss_of(self.child.id())
    }

    /// SIGTERM, and waits for the store to be flushed and closed.
    pub fn stop(mut self) -> Result<(), BenchError> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait().map_err(|e| BenchError::Io("annals serve".into(), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(BenchError::Peer(format!("the annals server ended with {status}")))
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
