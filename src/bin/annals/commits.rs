//! `annals commits`: show, list and diff stored git commits, and import them from a
//! repository (`import`, with the `git` feature).

use crate::CliError;
use crate::output::{self, Format};
use annals::history::{CommitQuery, History, StoredCommit};
use annals::time::{now_ns, parse_time};
use clap::{Args, Subcommand, ValueEnum};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Flags of `annals commits`.
#[derive(Args)]
pub struct CommitsArgs {
    #[command(subcommand)]
    command: CommitsCommand,
}

#[derive(Subcommand)]
enum CommitsCommand {
    /// One commit by hash (or a unique prefix of at least 7 hex digits) with its files.
    Show(ShowArgs),
    /// Commits newest first, by repository, author, branch, path and time.
    Log(LogArgs),
    /// The stored diff of a commit's file, byte for byte (every file's, in order, without a
    /// path).
    Diff(DiffArgs),
    /// Import the history of a git repository: every commit with the diff of each file
    /// against its first parent, as `git log --numstat` and `git show` give them.
    #[cfg(feature = "git")]
    Import(ImportArgs),
}

#[derive(Args)]
struct ShowArgs {
    /// Commit hash or a unique prefix (at least 7 hex digits).
    hash: String,
    /// Also print each file's diff (JSON: base64 in `diff_content`).
    #[arg(long)]
    diff: bool,
    /// Output format [default: table].
    #[arg(long, value_enum, default_value = "table")]
    format: ShowFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShowFormat {
    Table,
    Json,
}

#[derive(Args)]
struct LogArgs {
    /// Only this repository (`owner/repo`).
    #[arg(long)]
    repository: Option<String>,
    /// Only commits by this author (the name, exactly).
    #[arg(long)]
    author: Option<String>,
    /// Only commits of this branch.
    #[arg(long)]
    branch: Option<String>,
    /// Only commits that touched a path starting with this (end it with / for a directory).
    #[arg(long)]
    path: Option<String>,
    /// Commits at or after this time: RFC 3339, a date, nanoseconds, or now-30d.
    #[arg(long)]
    from: Option<String>,
    /// Commits before this time.
    #[arg(long)]
    to: Option<String>,
    /// Commits per page (1..=1000); when more remain, the next page's cursor is printed to
    /// stderr.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Args)]
struct DiffArgs {
    /// Commit hash or a unique prefix (at least 7 hex digits).
    hash: String,
    /// The file (its path after the commit); every file's diff when left out.
    path: Option<std::ffi::OsString>,
}

pub fn run(data: &Path, args: CommitsArgs) -> Result<(), CliError> {
    match args.command {
        CommitsCommand::Show(a) => show(data, a),
        CommitsCommand::Log(a) => log(data, a),
        CommitsCommand::Diff(a) => diff(data, a),
        #[cfg(feature = "git")]
        CommitsCommand::Import(a) => import(data, a),
    }
}

fn open(data: &Path) -> Result<History, annals::Error> {
    crate::open_existing(data).map(History::from_engine)
}

fn show(data: &Path, args: ShowArgs) -> Result<(), CliError> {
    let history = open(data)?;
    let (commit, diffs) = if args.diff {
        match history.get_commit_with_diffs(&args.hash)? {
            Some((commit, diffs)) => (commit, Some(diffs)),
            None => return not_found(&args.hash),
        }
    } else {
        match history.get_commit_by_hash(&args.hash)? {
            Some(commit) => (commit, None),
            None => return not_found(&args.hash),
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        ShowFormat::Json => {
            let json = match &diffs {
                Some(diffs) => commit.to_json_with_diffs(diffs),
                None => commit.to_json(true),
            };
            writeln!(out, "{json}")?;
        }
        ShowFormat::Table => {
            write_commit_header(&mut out, &commit)?;
            let header: Vec<String> = ["file_path", "old_path", "additions", "deletions", "binary", "diff_bytes", "stored"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let rows: Vec<Vec<String>> = commit
                .files
                .iter()
                .map(|f| {
                    vec![
                        f.file_path.clone(),
                        f.old_path.clone().unwrap_or_default(),
                        f.additions.to_string(),
                        f.deletions.to_string(),
                        f.binary.to_string(),
                        f.diff_bytes.map(|b| b.to_string()).unwrap_or_default(),
                        f.stored.as_str().to_string(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                writeln!(out)?;
                output::table(&mut out, &header, &rows)?;
            }
            for bytes in diffs.iter().flatten().flatten() {
                writeln!(out)?;
                out.write_all(bytes)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `git log`'s layout: hash, author, date, where, then the message indented.
fn write_commit_header(out: &mut impl Write, commit: &StoredCommit) -> std::io::Result<()> {
    let c = &commit.commit;
    writeln!(out, "commit {}", c.commit_hash)?;
    match &c.author_email {
        Some(email) => writeln!(out, "Author:     {} <{email}>", c.author)?,
        None => writeln!(out, "Author:     {}", c.author)?,
    }
    writeln!(out, "Date:       {}", annals::time::format_rfc3339(c.timestamp))?;
    writeln!(out, "Repository: {} (branch {})", c.repository, c.branch)?;
    if let Some(pusher) = &c.pusher {
        writeln!(out, "Pusher:     {pusher}")?;
    }
    writeln!(
        out,
        "Stored:     commit id {}, {} file{}, +{} -{}{}",
        commit.commit_id,
        commit.diff_count,
        if commit.diff_count == 1 { "" } else { "s" },
        commit.additions,
        commit.deletions,
        if c.commit_count > 1 {
            format!(", standing for {} commits", c.commit_count)
        } else {
            String::new()
        }
    )?;
    writeln!(out)?;
    for line in c.message.lines() {
        writeln!(out, "    {line}")?;
    }
    Ok(())
}

fn not_found(hash: &str) -> Result<(), CliError> {
    eprintln!("annals: no stored commit has the hash {hash}");
    Err(CliError::Reported)
}

fn log(data: &Path, args: LogArgs) -> Result<(), CliError> {
    let now = now_ns();
    let request = CommitQuery {
        repository: args.repository,
        author: args.author,
        branch: args.branch,
        start_time: args.from.as_deref().map(|t| parse_time(t, now)).transpose()?,
        end_time: args.to.as_deref().map(|t| parse_time(t, now)).transpose()?,
        path: args.path,
        limit: args.limit,
        cursor: args.cursor,
    };
    let history = open(data)?;
    let page = history.commits(&request)?;
    let format = args
        .format
        .unwrap_or(if output::stdout_is_terminal() { Format::Table } else { Format::Csv });
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match format {
        Format::Json => {
            for commit in &page.commits {
                writeln!(out, "{}", commit.to_json(false))?;
            }
        }
        Format::Csv => {
            let header: Vec<String> = [
                "timestamp",
                "commit_hash",
                "repository",
                "branch",
                "author",
                "author_email",
                "commit_id",
                "diff_count",
                "additions",
                "deletions",
                "message",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            output::csv_line(&mut out, &header)?;
            for commit in &page.commits {
                let c = &commit.commit;
                output::csv_line(
                    &mut out,
                    &[
                        annals::time::format_rfc3339(c.timestamp),
                        c.commit_hash.clone(),
                        c.repository.clone(),
                        c.branch.clone(),
                        c.author.clone(),
                        c.author_email.clone().unwrap_or_default(),
                        commit.commit_id.to_string(),
                        commit.diff_count.to_string(),
                        commit.additions.to_string(),
                        commit.deletions.to_string(),
                        c.message.clone(),
                    ],
                )?;
            }
        }
        Format::Table => {
            let header: Vec<String> = ["time", "commit", "repository", "author", "files", "+", "-", "subject"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let rows: Vec<Vec<String>> = page
                .commits
                .iter()
                .map(|commit| {
                    let c = &commit.commit;
                    vec![
                        annals::time::format_rfc3339(c.timestamp),
                        c.commit_hash.chars().take(12).collect(),
                        c.repository.clone(),
                        c.author.clone(),
                        commit.diff_count.to_string(),
                        commit.additions.to_string(),
                        commit.deletions.to_string(),
                        subject(&c.message),
                    ]
                })
                .collect();
            output::table(&mut out, &header, &rows)?;
        }
    }
    out.flush()?;
    if let Some(cursor) = &page.next_cursor {
        eprintln!("next page: --cursor {cursor}");
    }
    Ok(())
}

/// The first line of a message, cut to 72 characters.
fn subject(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.chars().count() > 72 {
        let mut cut: String = line.chars().take(71).collect();
        cut.push('…');
        cut
    } else {
        line.to_string()
    }
}

fn diff(data: &Path, args: DiffArgs) -> Result<(), CliError> {
    let history = open(data)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match &args.path {
        Some(path) => {
            let stored = annals::path_text(path.as_encoded_bytes());
            match history.get_diff(&args.hash, &stored)? {
                Some(bytes) => out.write_all(&bytes)?,
                None => {
                    let Some(commit) = history.get_commit_by_hash(&args.hash)? else {
                        return not_found(&args.hash);
                    };
                    let why = if commit.files.iter().any(|f| f.file_path == stored) {
                        "was stored without its diff"
                    } else {
                        "is not one of its files"
                    };
                    eprintln!("annals: {stored} {why} in commit {}", commit.commit.commit_hash);
                    return Err(CliError::Reported);
                }
            }
        }
        None => {
            let Some((_, diffs)) = history.get_commit_with_diffs(&args.hash)? else {
                return not_found(&args.hash);
            };
            for bytes in diffs.iter().flatten() {
                out.write_all(bytes)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(feature = "git")]
#[derive(Args)]
struct ImportArgs {
    /// The repository (its work tree or its .git directory; bare repositories too).
    path: std::path::PathBuf,
    /// Name to store the commits under (`owner/repo`) [default: from the origin remote's
    /// URL, or local/<directory name>].
    #[arg(long)]
    repository: Option<String>,
    /// Import the history of this ref (branch, tag, remote branch or commit id)
    /// [default: HEAD].
    #[arg(long, conflicts_with = "all")]
    branch: Option<String>,
    /// Import the history of every branch, tag and remote branch.
    #[arg(long)]
    all: bool,
    /// Only commits committed at or after this time: RFC 3339, a date, or now-90d.
    #[arg(long)]
    since: Option<String>,
    /// Commits per write (each write is durable whole or not at all).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_commits: u32,
    /// Threads computing diffs [default: one per core].
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// `json` prints {"stored":N,"duplicates":D,"failed":F,"files":M,"inline_bytes":B,
    /// "offloaded_bytes":O} at the end; `table` a sentence.
    #[arg(long, value_enum, default_value = "table")]
    format: ShowFormat,
    /// Progress display [default: bar on a terminal, none otherwise]. `json` prints
    /// {"durable_commits":S,"duplicates":D,"done":N,"total":T} to stderr after every stored
    /// batch (S commits of this run are durable).
    #[arg(long, value_enum)]
    progress: Option<ImportProgressArg>,
}

#[cfg(feature = "git")]
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImportProgressArg {
    Bar,
    Json,
    None,
}

#[cfg(feature = "git")]
fn import(data: &Path, args: ImportArgs) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let since = args.since.as_deref().map(|t| parse_time(t, now_ns())).transpose()?;
    let history = History::from_engine(annals::Engine::open(data, crate::store_options())?);
    let progress = args.progress.unwrap_or(if std::io::stderr().is_terminal() {
        ImportProgressArg::Bar
    } else {
        ImportProgressArg::None
    });
    let bar = if progress != ImportProgressArg::Bar {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} commits ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    };
    let options = annals::history::ImportOptions {
        repository: args.repository,
        branch: args.branch,
        all: args.all,
        since,
        batch_commits: args.batch_commits as usize,
        threads: args.threads,
    };
    let report = history.import_git(&args.path, &options, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        if progress == ImportProgressArg::Json {
            eprintln!(
                "{{\"durable_commits\":{},\"duplicates\":{},\"done\":{},\"total\":{}}}",
                p.stored, p.duplicates, p.done, p.total
            );
        }
    });
    bar.finish_and_clear();
    let closed = history.close();
    let report = report?;
    closed?;
    let mut out = std::io::stdout().lock();
    match args.format {
        ShowFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "stored": report.stored,
                "duplicates": report.duplicates,
                "failed": report.failed,
                "files": report.files,
                "inline_bytes": report.inline_bytes,
                "offloaded_bytes": report.offloaded_bytes,
            })
        )?,
        ShowFormat::Table => writeln!(
            out,
            "imported {} into {}: {} stored ({} files, {} inline, {} in objects), {} duplicates, {} failed, in {:.1} s",
            args.path.display(),
            report.repository,
            output::count(report.stored),
            output::count(report.files),
            output::bytes(report.inline_bytes),
            output::bytes(report.offloaded_bytes),
            output::count(report.duplicates),
            output::count(report.failed),
            report.seconds
        )?,
    }
    if let Some(reason) = &report.stopped {
        eprintln!("annals: the import stopped: {reason}; the commits before it are stored, run it again to go on");
        return Err(CliError::Reported);
    }
    Ok(())
}
