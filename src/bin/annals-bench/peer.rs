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
