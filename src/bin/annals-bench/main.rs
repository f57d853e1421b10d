//! `annals-bench`: annals beside its peers on the workloads of `../shared/bench/WORKLOAD.md`,
//! on the same data, in one run. Prints a markdown table with ratio columns and writes every
//! figure, with facts about the machine, to a JSON file.
//!
//! ```sh
//! cargo run --release --bin annals-bench -- --workload w1 --scale quick
//! cargo run --release --bin annals-bench -- --quick        # all workloads, tiny, < 3 minutes
//! ```

mod child;
mod emit;
mod influx;
mod loki;
// The annals CLI's value formatting, shared rather than copied; the harness uses part of it.
#[allow(dead_code)]
#[path = "../annals/output.rs"]
mod output;
mod peer;
mod remote_write;
mod report;
mod results;
mod scaling;
mod sqlite;
mod victoria;
mod w1;
mod w2;
mod w3;
mod w4;

/// Options of every store the harness opens: retention never runs by itself (the workloads
/// are history from 2016 and later, which the default policy would drop), and neither does
/// compaction: every figure is of the store as loaded, whether or not the load outlasts the
/// compactor's first minute on a given machine (`benches/lifecycle.rs` measures compaction).
fn store_options() -> annals::Options {
    annals::Options {
        memory_budget: memory_budget().ok().flatten().unwrap_or(annals::DEFAULT_MEMORY_BUDGET),
        retention: annals::lifecycle::RetentionOptions::manual(),
        compaction: annals::CompactionOptions {
            background: false,
            ..annals::CompactionOptions::default()
        },
        ..annals::Options::default()
    }
}

/// `ANNALS_MEMORY_MB`, the memory budget of every annals store the harness opens (as for
/// the `annals` command); its children inherit it. Checked once at start.
fn memory_budget() -> Result<Option<usize>, BenchError> {
    match std::env::var("ANNALS_MEMORY_MB") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(mib) if mib > 0 => Ok(Some(mib << 20)),
            _ => Err(BenchError::Peer(format!(
                "ANNALS_MEMORY_MB={text:?} is not a positive number of MiB"
            ))),
        },
        Err(e) => Err(BenchError::Peer(format!("ANNALS_MEMORY_MB: {e}"))),
    }
}

use clap::{Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the benchmark workloads on annals and its peers and compares them.
#[derive(Parser, Clone)]
#[command(name = "annals-bench", version)]
pub struct Args {
    /// Which workload to run.
    #[arg(long, value_enum, default_value = "all")]
    workload: Workload,
    /// quick: W1 100 hosts x 1 day, W2 200,000 lines; full: W1 1000 hosts x 3 days, W2
    /// 1,000,000 lines. W3 is the NAB corpus as it is at either scale; W4 the whole history
    /// of --repo.
    #[arg(long, value_enum, default_value = "quick")]
    scale: Scale,
    /// A run of a few minutes that checks the engines agree: W1 20 hosts x 6 h, W2 20,000
    /// lines, 5 instances per query.
    #[arg(long)]
    quick: bool,
    /// W1 hosts, in place of the scale's (its days stay).
    #[arg(long, value_name = "N")]
    hosts: Option<usize>,
    /// W2 lines, in place of the scale's.
    #[arg(long, value_name = "N")]
    lines: Option<u64>,
    /// How each cost grows with the data: W1 at 10, 100 and 1000 hosts (the scale's days)
    /// and W2 at 100,000, 1,000,000 and 5,000,000 lines, printing each figure at each size
    /// and its growth per 10x of data (with --quick: 2, 20 and 200 hosts x 6 h; 2,000,
    /// 20,000 and 200,000 lines).
    #[arg(long)]
    scaling: bool,
    /// Seeded instances per query [default: 50, 5 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Peers to run beside annals (comma separated): sqlite, victoria (VictoriaMetrics),
    /// influxdb (InfluxDB 1.x, W1 only), loki (Grafana Loki, W2 only: the binary named by
    /// ANNALS_BENCH_LOKI or a Grafana `loki` on PATH). VictoriaMetrics and InfluxDB are
    /// installed by scripts/bench-peers.sh when missing; a peer that cannot run is "not
    /// available" in its column, with the reason.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,victoria,influxdb,loki")]
    peers: Vec<String>,
    /// Where the engines keep their files [default: a new temporary directory, removed
    /// afterwards].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write all figures here as JSON.
    #[arg(long, default_value = "annals-bench.json")]
    json: PathBuf,
    /// Write the chosen workloads to this directory as files any engine can load (w1.lp:
    /// Influx line protocol; w2.jsonl: annals JSON lines; w3.lp: line protocol) and stop.
    #[arg(long, value_name = "DIR")]
    emit: Option<PathBuf>,
    /// W4: the git repository whose history is imported [default: annals' own checkout].
    #[arg(long, value_name = "PATH")]
    repo: Option<PathBuf>,
    /// Internal: load one engine (annals or sqlite) in this process and report its time and
    /// peak memory as JSON, so each engine's RSS is its own.
    #[arg(long, hide = true)]
    child_ingest: Option<String>,
    /// Internal: serve the store in `--dir` over HTTP on a free loopback port (the library's
    /// `annals serve`), print the address as one line, and serve until SIGTERM.
    #[arg(long, hide = true)]
    child_serve: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Workload {
    W1,
    W2,
    W3,
    W4,
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Scale {
    Quick,
    Full,
}

impl Args {
    /// The W1 configuration this run uses.
    pub fn w1_config(&self) -> annals::workload::w1::W1Config {
        let mut config = match self.scale {
            Scale::Quick => annals::workload::w1::W1Config::quick(1),
            Scale::Full => annals::workload::w1::W1Config::full(1),
        };
        if self.quick {
            config.hosts = 20;
            config.epochs = 6 * 360;
        }
        if let Some(hosts) = self.hosts {
            config.hosts = hosts;
        }
        config
    }

    /// The W2 configuration this run uses.
    pub fn w2_config(&self) -> annals::workload::w2::W2Config {
        let mut config = match self.scale {
            Scale::Quick => annals::workload::w2::W2Config::quick(1),
            Scale::Full => annals::workload::w2::W2Config::full(1),
        };
        if self.quick {
            config.lines = 20_000;
        }
        if let Some(lines) = self.lines {
            config.lines = lines;
        }
        config
    }

    fn runs(&self, workload: Workload) -> bool {
        self.workload == workload || self.workload == Workload::All
    }
}

/// Which peers run.
#[derive(Clone, Copy)]
pub struct Engines<'a> {
    pub sqlite: bool,
    /// The VictoriaMetrics binary, or why it is not available; `None` when not asked for.
    pub victoria: Option<&'a Result<PathBuf, String>>,
    /// The InfluxDB 1.x binary (`influxd`), or why it is not available; `None` when not
    /// asked for.
    pub influxdb: Option<&'a Result<PathBuf, String>>,
    /// The Grafana Loki binary, or why it is not available; `None` when not asked for.
    pub loki: Option<&'a Result<PathBuf, String>>,
    /// The run's arguments, for starting child processes.
    pub args: &'a Args,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum BenchError {
    Annals(annals::Error),
    Sqlite(rusqlite::Error),
    Io(PathBuf, std::io::Error),
    /// A peer process or a child of this harness failed.
    Peer(String),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Annals(e) => write!(f, "annals: {e}"),
            BenchError::Sqlite(e) => write!(f, "sqlite: {e}"),
            BenchError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            BenchError::Peer(why) => f.write_str(why),
        }
    }
}

impl From<annals::Error> for BenchError {
    fn from(e: annals::Error) -> Self {
        BenchError::Annals(e)
    }
}

impl From<rusqlite::Error> for BenchError {
    fn from(e: rusqlite::Error) -> Self {
        BenchError::Sqlite(e)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = if let Err(e) = memory_budget() {
        Err(e)
    } else if let Some(engine) = &args.child_ingest {
        serve_child(&args, engine).map(|()| true)
    } else if args.child_serve {
        child::serve_http(&args).map(|()| true)
    } else if let Some(out) = &args.emit {
        emit::write(&args, out).map(|()| true)
    } else {
        run(&args)
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("annals-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The peer servers' binaries, or why each is not available; `None` when not asked for.
pub struct Binaries {
    victoria: Option<Result<PathBuf, String>>,
    influxdb: Option<Result<PathBuf, String>>,
    loki: Option<Result<PathBuf, String>>,
}

impl Binaries {
    /// Locates (installing when it can) each peer server that `args` asks for and whose
    /// workload runs.
    fn locate(args: &Args) -> Binaries {
        let asked = |peer: &str| args.peers.iter().any(|p| p == peer);
        // Only W1 has questions for the metric servers, only W2 for Loki.
        let metric_peers = args.runs(Workload::W1);
        let binaries = Binaries {
            victoria: (metric_peers && asked("victoria")).then(victoria::locate),
            influxdb: (metric_peers && asked("influxdb")).then(influx::locate),
            loki: (args.runs(Workload::W2) && asked("loki")).then(loki::locate),
        };
        for (name, binary) in [
            ("VictoriaMetrics", &binaries.victoria),
            ("InfluxDB", &binaries.influxdb),
            ("Loki", &binaries.loki),
        ] {
            if let Some(Err(why)) = binary {
                println!("{name} not available: {why}");
            }
        }
        binaries
    }

    /// The engines of a run with `args`.
    fn engines<'a>(&'a self, args: &'a Args) -> Engines<'a> {
        Engines {
            sqlite: args.peers.iter().any(|p| p == "sqlite"),
            victoria: self.victoria.as_ref(),
            influxdb: self.influxdb.as_ref(),
            loki: self.loki.as_ref(),
            args,
        }
    }
}

/// Runs everything asked; false when engines disagreed on an answer.
fn run(args: &Args) -> Result<bool, BenchError> {
    if let Some(unknown) = args
        .peers
        .iter()
        .find(|p| !matches!(p.as_str(), "sqlite" | "victoria" | "influxdb" | "loki" | ""))
    {
        eprintln!("annals-bench: unknown peer {unknown:?} (known: sqlite, victoria, influxdb, loki)");
        return Ok(false);
    }
    let binaries = Binaries::locate(args);
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("annals-bench-{}", std::process::id())), true),
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| BenchError::Io(dir.clone(), e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Io(dir.clone(), e))?;
    let machine = report::machine();
    let (figures, json) = if args.scaling {
        let steps = scaling::run(args, &binaries, &dir)?;
        println!();
        println!("{}", scaling::markdown(&steps));
        let mut all = report::Run::default();
        for step in &steps {
            all.disagreements.extend(step.run.disagreements.iter().cloned());
            all.peer_errors.extend(step.run.peer_errors.iter().cloned());
        }
        let json = serde_json::json!({
            "machine": machine,
            "scaling": steps,
            "disagreements": all.disagreements,
            "quick": args.quick,
            "scale": format!("{:?}", args.scale).to_lowercase(),
        });
        (all, json)
    } else {
        let figures = measure(args, &binaries.engines(args), &dir)?;
        println!();
        println!("{}", figures.markdown(&columns(&figures)));
        let json = serde_json::json!({
            "machine": machine,
            "figures": figures.figures,
            "disagreements": figures.disagreements,
            "quick": args.quick,
            "scale": format!("{:?}", args.scale).to_lowercase(),
        });
        (figures, json)
    };
    println!(
        "{} cores, {:.1} GiB, kernel {}, {}; {}",
        machine.cores,
        machine.memory_bytes as f64 / (1u64 << 30) as f64,
        machine.kernel,
        machine.cpu,
        machine.date
    );
    std::fs::write(&args.json, serde_json::to_vec_pretty(&json).unwrap_or_default()).map_err(|e| BenchError::Io(args.json.clone(), e))?;
    println!("figures written to {}", args.json.display());
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !figures.peer_errors.is_empty() {
        eprintln!(
            "queries a peer could not answer ({}), left out of its times:",
            figures.peer_errors.len()
        );
        for e in figures.peer_errors.iter().take(20) {
            eprintln!("  {e}");
        }
    }
    if figures.disagreements.is_empty() {
        Ok(true)
    } else {
        eprintln!("answers differ between engines ({}):", figures.disagreements.len());
        for d in figures.disagreements.iter().take(20) {
            eprintln!("  {d}");
        }
        Ok(false)
    }
}

/// The engines and baselines with figures in `run`, in the table's order.
pub fn columns(run: &report::Run) -> Vec<&'static str> {
    let order = [
        "annals",
        "sqlite",
        "victoria",
        "influxdb",
        "loki",
        // Prometheus answers W1's PromQL queries when its binary is there (see remote_write).
        "prometheus",
        report::RAW,
        report::ZSTD,
        w1::DISK,
        w4::GIT,
        "git gc",
        "git gc --aggressive",
    ];
    order
        .into_iter()
        .filter(|name| run.figures.iter().any(|f| f.engine == *name))
        .collect()
}

/// Runs the workloads `args` asks for with `engines`, their files under `dir`.
pub fn measure(args: &Args, engines: &Engines, dir: &Path) -> Result<report::Run, BenchError> {
    let mut figures = report::Run::default();
    let runs = args.runs.unwrap_or(if args.quick { 5 } else { 50 });
    if args.runs(Workload::W1) {
        w1::run(&mut figures, &args.w1_config(), runs, dir, *engines)?;
    }
    if args.runs(Workload::W2) {
        let loghub = annals::workload::w2::default_loghub_dir();
        match annals::workload::w2::LoghubCorpus::load(&loghub) {
            Ok(corpus) => w2::run(&mut figures, &corpus, &args.w2_config(), runs, dir, *engines)?,
            Err(e) => println!("W2 skipped: the Loghub samples are not readable at {}: {e}", loghub.display()),
        }
    }
    if args.runs(Workload::W3) {
        let nab = annals::workload::w3::default_nab_dir();
        match annals::workload::w3::NabCorpus::load(&nab) {
            Ok(corpus) => w3::run(&mut figures, &corpus, dir)?,
            Err(e) => println!("W3 skipped: the NAB series are not readable at {}: {e}", nab.display()),
        }
    }
    if args.runs(Workload::W4) {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        if repo.join(".git").exists() || repo.join("HEAD").is_file() {
            w4::run(&mut figures, &repo, runs, dir, engines.sqlite)?;
        } else {
            println!("W4 skipped: {} is not a git repository (give one with --repo)", repo.display());
        }
    }
    Ok(figures)
}

/// Creates a directory (and its parents).
pub fn create_dir(dir: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(dir.to_path_buf(), e))
}

/// In the child: loads `--dir` with one engine and prints [`Loaded`] as one JSON line.
fn serve_child(args: &Args, engine: &str) -> Result<(), BenchError> {
    let dir = args
        .dir
        .clone()
        .ok_or_else(|| BenchError::Peer("--child-ingest needs --dir".into()))?;
    let started = std::time::Instant::now();
    match (args.workload, engine) {
        (Workload::W1, "annals") => w1::load_annals(&args.w1_config(), &dir)?,
        (Workload::W1, "sqlite") => w1::load_sqlite(&args.w1_config(), &dir)?,
        (Workload::W2, "annals") => w2::load_annals(&w2::corpus()?, &args.w2_config(), &dir)?,
        (Workload::W2, "sqlite") => w2::load_sqlite(&w2::corpus()?, &args.w2_config(), &dir)?,
        (workload, engine) => {
            return Err(BenchError::Peer(format!("no child ingest for {engine} on {workload:?}")));
        }
    }
    let loaded = child::Loaded {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: report::peak_rss_of(std::process::id()),
    };
    println!("{}", serde_json::to_string(&loaded).unwrap_or_default());
    Ok(())
}
