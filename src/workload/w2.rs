//! W2: logs replayed from the Loghub 2k samples (see `../shared/bench/WORKLOAD.md`).
//!
//! Each system's structured CSV gives lines with their template (`<*>` marks a variable),
//! level, component and process/thread ids. The generator picks a system at random for
//! every line, takes that system's next line, and re-draws the template's variables: every
//! digit of a variable becomes a random digit, and a variable without digits is swapped
//! for a value seen in the same slot of the same template. Lines whose content does not
//! match their template get the digit treatment over the whole text. Timestamps rise
//! evenly over one month with jitter. Everything is a pure function of the seed.
//!
//! The samples are Loghub's (Zhu, He, He, Liu and Lyu, "Loghub: A Large Collection of
//! System Log Datasets for AI-driven Log Analytics", ISSRE 2023), free for research use
//! with attribution; see `../shared/data/loghub/CITATION` and its LICENSE. They are read
//! at run time and never copied into this repository.

use crate::error::{Error, Result};
use crate::model::{Batch, LogEntry, LogLevel, Metadata};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The twelve Loghub systems of the 2k samples.
pub const SYSTEMS: [&str; 12] = [
    "Android",
    "Apache",
    "BGL",
    "HDFS",
    "HPC",
    "Hadoop",
    "HealthApp",
    "Linux",
    "OpenSSH",
    "Proxifier",
    "Spark",
    "Zookeeper",
];

/// One line of a structured CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLine {
    /// The system (Loghub directory) it comes from.
    pub system: &'static str,
    /// The message.
    pub content: String,
    /// Its template, split at the `<*>` variables (literal pieces; one more than the
    /// variables). `None` when the content does not match it.
    pieces: Option<Vec<String>>,
    /// The template's id within its system.
    event: String,
    /// Severity, mapped to the five levels.
    pub level: LogLevel,
    /// Component (or program), the logger name.
    pub component: String,
    /// Process id, when the system logs one.
    pub pid: Option<i64>,
    /// Thread id, when the system logs one.
    pub tid: Option<i64>,
}

/// The Loghub lines that W2 replays.
#[derive(Debug, Clone)]
pub struct LoghubCorpus {
    /// Lines per system, in file order.
    pub systems: Vec<Vec<SourceLine>>,
    /// Values seen per (system, event, variable slot), for re-drawing variables without
    /// digits.
    pools: BTreeMap<(usize, String, usize), Vec<String>>,
}

/// Where the Loghub samples are, relative to the crate: `../shared/data/loghub`.
pub fn default_loghub_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/loghub")
}

/// The line a log file would hold for an entry (`<RFC 3339 time> <LEVEL> <logger>:
/// <message>`, newline included): the raw text that stored bytes per line are compared
/// with.
pub fn log_file_line(entry: &LogEntry) -> String {
    format!(
        "{} {} {}: {}\n",
        crate::time::format_rfc3339(entry.timestamp),
        entry.level.as_str(),
        entry.logger_name,
        entry.message
    )
}

/// Maps the level spellings of the twelve systems (I/D/V/W/E/F, notice, SEVERE, FATAL,
/// FAILURE, ...) to the five levels; anything else (Linux puts a host name there) is INFO.
pub fn map_level(text: &str) -> LogLevel {
    match text.trim().to_ascii_uppercase().as_str() {
        "V" | "D" | "TRACE" => LogLevel::Debug,
        "I" | "NOTICE" => LogLevel::Info,
        "W" => LogLevel::Warning,
        "E" | "SEVERE" | "FAILURE" => LogLevel::Error,
        "F" => LogLevel::Critical,
        other => LogLevel::parse(other).unwrap_or(LogLevel::Info),
    }
}

/// Splits `content` by a template's literal pieces; the variables, or `None` when it does
/// not match.
fn variables<'a>(content: &'a str, pieces: &[String]) -> Option<Vec<&'a str>> {
    let (first, rest) = pieces.split_first()?;
    let mut at = content.strip_prefix(first.as_str())?;
    let mut out = Vec::with_capacity(rest.len());
    for (i, piece) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let end = if last {
            at.len()
                .checked_sub(piece.len())
                .filter(|&e| at[e..] == **piece && at.is_char_boundary(e))?
        } else if piece.is_empty() {
            // Two adjacent variables: the first takes nothing we can tell apart.
            0
        } else {
            at.find(piece.as_str())?
        };
        out.push(&at[..end]);
        at = &at[end + piece.len()..];
    }
    Some(out)
}

impl LoghubCorpus {
    /// Reads `<dir>/<System>/<System>_2k.log_structured.csv` for the twelve systems.
    /// Fails with [`Error::NotFound`] naming the first missing file.
    pub fn load(dir: &Path) -> Result<LoghubCorpus> {
        let mut systems = Vec::with_capacity(SYSTEMS.len());
        let mut pools: BTreeMap<(usize, String, usize), Vec<String>> = BTreeMap::new();
        for (index, &system) in SYSTEMS.iter().enumerate() {
            let path = dir.join(system).join(format!("{system}_2k.log_structured.csv"));
            if !path.is_file() {
                return Err(Error::NotFound { path });
            }
            let bad = |reason: String| Error::InvalidInput {
                line: None,
                column: None,
                reason: format!("{}: {reason}", path.display()),
            };
            let mut reader = csv::Reader::from_path(&path).map_err(|e| bad(e.to_string()))?;
            let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
            let column = |name: &str| headers.iter().position(|h| h == name);
            let content_at = column("Content").ok_or_else(|| bad("no Content column".into()))?;
            let (template_at, event_at) = (column("EventTemplate"), column("EventId"));
            // Linux's "Level" column holds the host name; map_level turns it into INFO.
            let level_at = column("Level");
            let component_at = column("Component").or_else(|| column("Program"));
            let (pid_at, tid_at) = (column("Pid").or_else(|| column("PID")), column("Tid"));
            let mut lines = Vec::new();
            for record in reader.records() {
                let record = record.map_err(|e| bad(e.to_string()))?;
                let get = |at: Option<usize>| at.and_then(|i| record.get(i)).unwrap_or("");
                let content = get(Some(content_at)).to_string();
                let event = get(event_at).to_string();
                let pieces: Vec<String> = get(template_at).split("<*>").map(str::to_string).collect();
                let pieces = (pieces.len() > 1).then_some(pieces).filter(|p| variables(&content, p).is_some());
                if let Some(p) = &pieces
                    && let Some(vars) = variables(&content, p)
                {
                    for (slot, v) in vars.into_iter().enumerate() {
                        pools.entry((index, event.clone(), slot)).or_default().push(v.to_string());
                    }
                }
                let component = match get(component_at) {
                    "" => system.to_string(),
                    c => c.to_string(),
                };
                lines.push(SourceLine {
                    system,
                    content,
                    pieces,
                    event,
                    level: map_level(get(level_at)),
                    component,
                    pid: get(pid_at).trim().parse().ok(),
                    tid: get(tid_at).trim().parse().ok(),
                });
            }
            if lines.is_empty() {
                return Err(bad("no lines".into()));
            }
            systems.push(lines);
        }
        Ok(LoghubCorpus { systems, pools })
    }

    /// Number of source lines.
    pub fn len(&self) -> usize {
        self.systems.iter().map(Vec::len).sum()
    }

    /// True when no system has lines.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// W2 parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct W2Config {
    /// Lines to generate.
    pub lines: u64,
    /// First timestamp (ns); lines spread evenly over `span_ns` from here.
    pub start_ns: i64,
    /// Time the lines cover (ns).
    pub span_ns: i64,
    /// RNG seed.
    pub seed: u64,
}

impl W2Config {
    /// 2025-07-01T00:00:00Z.
    pub const START_NS: i64 = 1_751_328_000_000_000_000;
    /// Thirty days.
    pub const MONTH_NS: i64 = 30 * 86_400 * 1_000_000_000;

    /// `lines` lines over 30 days from [`W2Config::START_NS`].
    pub fn new(lines: u64, seed: u64) -> W2Config {
        W2Config {
            lines,
            start_ns: Self::START_NS,
            span_ns: Self::MONTH_NS,
            seed,
        }
    }

    /// Quick scale: 200,000 lines.
    pub fn quick(seed: u64) -> W2Config {
        W2Config::new(200_000, seed)
    }

    /// Full scale: 1,000,000 lines.
    pub fn full(seed: u64) -> W2Config {
        W2Config::new(1_000_000, seed)
    }
}

/// A W2 generator.
pub struct W2<'a> {
    corpus: &'a LoghubCorpus,
    config: W2Config,
    rng: ChaCha8Rng,
    next_line: Vec<usize>,
    emitted: u64,
}

impl<'a> W2<'a> {
    /// A generator positioned at the first line.
    pub fn new(corpus: &'a LoghubCorpus, config: W2Config) -> W2<'a> {
        W2 {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            next_line: vec![0; corpus.systems.len()],
            corpus,
            config,
            emitted: 0,
        }
    }

    /// Lines generated so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    fn redraw_digits(&mut self, text: &str, out: &mut String) {
        for c in text.chars() {
            if c.is_ascii_digit() {
                out.push(char::from(b'0' + self.rng.random_range(0..10u8)));
            } else {
                out.push(c);
            }
        }
    }

    /// The next log record, `None` after [`W2Config::lines`].
    pub fn next_entry(&mut self) -> Option<LogEntry> {
        if self.emitted >= self.config.lines || self.corpus.is_empty() {
            return None;
        }
        let system = loop {
            let s = self.rng.random_range(0..self.corpus.systems.len());
            if !self.corpus.systems[s].is_empty() {
                break s;
            }
        };
        let lines = &self.corpus.systems[system];
        let source = &lines[self.next_line[system] % lines.len()];
        self.next_line[system] += 1;
        let mut message = String::with_capacity(source.content.len() + 8);
        match source
            .pieces
            .as_ref()
            .zip(source.pieces.as_ref().and_then(|p| variables(&source.content, p)))
        {
            Some((pieces, vars)) => {
                message.push_str(&pieces[0]);
                for (slot, (value, piece)) in vars.iter().zip(&pieces[1..]).enumerate() {
                    if value.bytes().any(|b| b.is_ascii_digit()) {
                        self.redraw_digits(value, &mut message);
                    } else {
                        let pool = self.corpus.pools.get(&(system, source.event.clone(), slot));
                        match pool.filter(|p| !p.is_empty()) {
                            Some(pool) => message.push_str(&pool[self.rng.random_range(0..pool.len())]),
                            None => message.push_str(value),
                        }
                    }
                    message.push_str(piece);
                }
            }
            None => self.redraw_digits(&source.content, &mut message),
        }
        let step = (self.config.span_ns / self.config.lines.max(1) as i64).max(1);
        let timestamp = self.config.start_ns + self.emitted as i64 * step + self.rng.random_range(0..step);
        self.emitted += 1;
        Some(LogEntry {
            timestamp,
            level: source.level,
            logger_name: source.component.clone(),
            message,
            module: Some(source.system.to_string()),
            function_name: None,
            line_number: None,
            thread_id: source.tid,
            process_id: source.pid,
            extra_data: Metadata::new(),
            tags: BTreeMap::new(),
        })
    }

    /// Up to `rows` records as a batch; `None` when done.
    pub fn next_batch(&mut self, rows: usize) -> Result<Option<(Batch, Vec<LogEntry>)>> {
        let mut batch = Batch::new();
        let mut entries = Vec::with_capacity(rows);
        while entries.len() < rows {
            let Some(entry) = self.next_entry() else { break };
            batch.add_log(&entry)?;
            entries.push(entry);
        }
        Ok((!entries.is_empty()).then_some((batch, entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_contents_into_variables() {
        let pieces: Vec<String> = "Served block blk_<*> to /<*>".split("<*>").map(str::to_string).collect();
        assert_eq!(
            variables("Served block blk_-42 to /10.0.0.1", &pieces),
            Some(vec!["-42", "10.0.0.1"])
        );
        assert_eq!(variables("Served blob blk_-42 to /10.0.0.1", &pieces), None);
        let pieces: Vec<String> = "<*> open <*>".split("<*>").map(str::to_string).collect();
        assert_eq!(variables("a.b:80 open x", &pieces), Some(vec!["a.b:80", "x"]));
    }

    #[test]
    fn levels_map_from_every_spelling() {
        assert_eq!(map_level("I"), LogLevel::Info);
        assert_eq!(map_level("V"), LogLevel::Debug);
        assert_eq!(map_level("notice"), LogLevel::Info);
        assert_eq!(map_level("SEVERE"), LogLevel::Error);
        assert_eq!(map_level("FATAL"), LogLevel::Critical);
        assert_eq!(map_level("WARN"), LogLevel::Warning);
        assert_eq!(map_level("combo"), LogLevel::Info);
    }

    #[test]
    fn the_generator_is_deterministic_and_redraws_variables() {
        let dir = default_loghub_dir();
        let corpus = match LoghubCorpus::load(&dir) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipped: the Loghub samples are not readable at {}: {e}", dir.display());
                return;
            }
        };
        assert_eq!(corpus.systems.len(), 12);
        let take = |seed| {
            let mut w = W2::new(&corpus, W2Config::new(2000, seed));
            std::iter::from_fn(|| w.next_entry()).collect::<Vec<_>>()
        };
        let a = take(7);
        assert_eq!(a.len(), 2000);
        assert_eq!(a, take(7));
        assert_ne!(a, take(8));
        assert!(a.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        let originals: std::collections::HashSet<&str> = corpus.systems.iter().flatten().map(|l| l.content.as_str()).collect();
        let changed = a.iter().filter(|e| !originals.contains(e.message.as_str())).count();
        assert!(changed > 1000, "only {changed} of 2000 lines differ from their source");
        let matched: usize = corpus.systems.iter().flatten().filter(|l| l.pieces.is_some()).count();
        assert!(
            matched * 10 > corpus.len() * 8,
            "{matched} of {} lines match their template",
            corpus.len()
        );
    }
}
