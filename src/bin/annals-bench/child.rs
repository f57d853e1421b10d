//! One engine's ingest in a child process of the harness, so that the peak resident memory
//! measured is that engine's alone (a process's high-water mark cannot be reset). The
//! child side (`--child-ingest`) is `serve_child` in `main.rs`, which knows the workloads;
//! the workloads call [`load`] here.

use crate::{BenchError, Engines, Workload};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, Stdio};

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
