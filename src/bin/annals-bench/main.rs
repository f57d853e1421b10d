//! `annals-bench`: annals beside its peers on the workloads of `../shared/bench/WORKLOAD.md`,
//! on the same data, in one run. Prints a markdown table with ratio columns and writes every
//! figure, with facts about the machine, to a JSON file.
//!
//! ```sh
//! cargo run --release --bin annals-bench -- --workload w1 --scale quick
//! cargo run --release --bin annals-bench -- --quick        # all workloads, tiny, < 3 minutes
//! ```

mod report;
mod results;
mod sqlite;
mod w1;
mod w2;

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the benchmark workloads on annals and its peers and compares them.
#[derive(Parser)]
#[command(name = "annals-bench", version)]
struct Args {
    /// Which workload to run.
    #[arg(long, value_enum, default_value = "all")]
    workload: Workload,
    /// quick: W1 100 hosts x 1 day, W2 200,000 lines; full: W1 1000 hosts x 3 days, W2
    /// 1,000,000 lines.
    #[arg(long, value_enum, default_value = "quick")]
    scale: Scale,
    /// A run of a few minutes that checks the engines agree: W1 20 hosts x 6 h, W2 20,000
    /// lines, 5 instances per query.
    #[arg(long)]
    quick: bool,
    /// Seeded instances per query.
    #[arg(long)]
    runs: Option<usize>,
    /// Peers to run beside annals (comma separated): sqlite.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    peers: Vec<String>,
    /// Where the engines keep their files [default: a new temporary directory, removed
    /// afterwards].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write all figures here as JSON.
    #[arg(long, default_value = "annals-bench.json")]
    json: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    W1,
    W2,
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scale {
    Quick,
    Full,
}

/// Which peers run.
#[derive(Clone, Copy)]
pub struct Engines {
    pub sqlite: bool,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum BenchError {
    Annals(annals::Error),
    Sqlite(rusqlite::Error),
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Annals(e) => write!(f, "annals: {e}"),
            BenchError::Sqlite(e) => write!(f, "sqlite: {e}"),
            BenchError::Io(path, e) => write!(f, "{}: {e}", path.display()),
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
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("annals-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything asked; false when engines disagreed on an answer.
fn run(args: &Args) -> Result<bool, BenchError> {
    let engines = Engines {
        sqlite: args.peers.iter().any(|p| p == "sqlite"),
    };
    if let Some(unknown) = args.peers.iter().find(|p| p.as_str() != "sqlite" && !p.is_empty()) {
        eprintln!("annals-bench: unknown peer {unknown:?} (known: sqlite)");
        return Ok(false);
    }
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("annals-bench-{}", std::process::id())), true),
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| BenchError::Io(dir.clone(), e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Io(dir.clone(), e))?;
    let mut figures = report::Run::default();
    let runs = args.runs.unwrap_or(if args.quick { 5 } else { 50 });
    if matches!(args.workload, Workload::W1 | Workload::All) {
        let mut config = match args.scale {
            Scale::Quick => annals::workload::w1::W1Config::quick(1),
            Scale::Full => annals::workload::w1::W1Config::full(1),
        };
        if args.quick {
            config.hosts = 20;
            config.epochs = 6 * 360;
        }
        w1::run(&mut figures, &config, runs, &dir, engines)?;
    }
    if matches!(args.workload, Workload::W2 | Workload::All) {
        let loghub = annals::workload::w2::default_loghub_dir();
        match annals::workload::w2::LoghubCorpus::load(&loghub) {
            Ok(corpus) => {
                let mut config = match args.scale {
                    Scale::Quick => annals::workload::w2::W2Config::quick(1),
                    Scale::Full => annals::workload::w2::W2Config::full(1),
                };
                if args.quick {
                    config.lines = 20_000;
                }
                w2::run(&mut figures, &corpus, &config, runs, &dir, engines)?;
            }
            Err(e) => println!("W2 skipped: the Loghub samples are not readable at {}: {e}", loghub.display()),
        }
    }
    let mut names = vec!["annals"];
    if engines.sqlite {
        names.push("sqlite");
    }
    println!();
    println!("{}", figures.markdown(&names));
    let machine = report::machine();
    println!(
        "{} cores, {:.1} GiB, kernel {}, {}; {}",
        machine.cores,
        machine.memory_bytes as f64 / (1u64 << 30) as f64,
        machine.kernel,
        machine.cpu,
        machine.date
    );
    let json = serde_json::json!({
        "machine": machine,
        "figures": figures.figures,
        "disagreements": figures.disagreements,
        "quick": args.quick,
    });
    std::fs::write(&args.json, serde_json::to_vec_pretty(&json).unwrap_or_default()).map_err(|e| BenchError::Io(args.json.clone(), e))?;
    println!("figures written to {}", args.json.display());
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
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
