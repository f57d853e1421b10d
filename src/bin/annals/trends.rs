//! `annals trends patterns|anomalies|forecast|correlate`: the library's trend analysis
//! over the series the `query` flags select, printed as a table, JSON or CSV.

use crate::CliError;
use crate::output::{self, TimeFormat};
use annals::history::History;
use annals::query::QuerySpec;
use annals::time::now_ns;
use annals::trends::{TrendAnalysis, TrendPart, TrendParts, TrendQuery};
use clap::{Args, Subcommand, ValueEnum};
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Args)]
pub struct TrendsArgs {
    #[command(subcommand)]
    command: TrendsCommand,
}

#[derive(Subcommand)]
enum TrendsCommand {
    /// Hour-of-day and day-of-week profiles, dominant periods, trend and level shifts.
    Patterns(TrendSelect),
    /// Score every point for anomalies, online and causally (csv: time,value,score,anomaly).
    Anomalies(AnomalyArgs),
    /// Forecast with 80% and 95% intervals (csv: time,forecast,lower_80,upper_80,lower_95,upper_95).
    Forecast(ForecastArgs),
    /// Pearson and Spearman correlation, best lag, and which series moved together.
    Correlate(CorrelateArgs),
}

/// The selection flags of `annals query`, and the output format.
#[derive(Args)]
struct TrendSelect {
    /// Measurement to read.
    #[arg(long, short = 'm')]
    measurement: String,
    /// Fields to analyse (repeat or separate with commas) [default: every numeric field].
    #[arg(long = "field", short = 'f', value_delimiter = ',')]
    fields: Vec<String>,
    /// Only series whose tags satisfy this, e.g. host=a (repeatable; all must hold).
    #[arg(long = "where", short = 'w', value_name = "PREDICATE")]
    filters: Vec<String>,
    /// Start of the range, inclusive: RFC 3339, a date, nanoseconds, or now-30d.
    #[arg(long)]
    from: Option<String>,
    /// End of the range, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Analyse the mean of each group of series (needs --every) instead of each series.
    #[arg(long = "group-by", value_delimiter = ',')]
    group_by: Vec<String>,
    /// Analyse bucket means of this width (10m, 1h, 1d) instead of the stored points.
    #[arg(long)]
    every: Option<String>,
    /// Offset from UTC of the profiles' hours and days: +05:30, -8, UTC.
    #[arg(long = "utc-offset", default_value = "UTC", allow_hyphen_values = true)]
    utc_offset: String,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    format: Option<TrendFormat>,
    /// How times are printed.
    #[arg(long, value_enum, default_value = "rfc3339")]
    time_format: TimeFormat,
}

#[derive(Args)]
struct AnomalyArgs {
    #[command(flatten)]
    select: TrendSelect,
    /// In [0, 1]: higher reports more anomalies (threshold = 1 - sensitivity).
    #[arg(long, default_value_t = 0.5)]
    sensitivity: f64,
    /// Table format: print every point, not only the anomalies.
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
struct ForecastArgs {
    #[command(flatten)]
    select: TrendSelect,
    /// How far ahead: 1h, 1d, 7d.
    #[arg(long, default_value = "1d")]
    horizon: String,
    /// Also say when the series reaches this value (e.g. 90 for a disk at 90%).
    #[arg(long, allow_hyphen_values = true)]
    threshold: Option<String>,
}

#[derive(Args)]
struct CorrelateArgs {
    #[command(flatten)]
    select: TrendSelect,
    /// Largest lag tried, in buckets, each way.
    #[arg(long = "max-lag", default_value_t = 12)]
    max_lag: u32,
    /// Explain which series moved at this time [default: the strongest anomaly found].
    #[arg(long)]
    around: Option<String>,
    /// In [0, 1]: sensitivity of the anomaly search that picks the moment to explain.
    #[arg(long, default_value_t = 0.5)]
    sensitivity: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TrendFormat {
    /// Aligned columns for reading.
    Table,
    /// The whole analysis as one JSON document.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

impl TrendSelect {
    /// `--format`, or by default a table on a terminal and CSV otherwise.
    fn output_format(&self) -> TrendFormat {
        self.format.unwrap_or(if output::stdout_is_terminal() {
            TrendFormat::Table
        } else {
            TrendFormat::Csv
        })
    }

    fn query(&self, parts: &str, extra: &[(&str, String)]) -> Result<TrendQuery, CliError> {
        let mut query = TrendQuery {
            selection: QuerySpec {
                measurement: self.measurement.clone(),
                fields: self.fields.clone(),
                predicates: self.filters.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
                group_by: self.group_by.clone(),
                every: self.every.clone(),
                ..QuerySpec::default()
            },
            parts: TrendParts::parse(parts)?,
            ..TrendQuery::default()
        };
        let now = now_ns();
        query.set_param("utc_offset", &self.utc_offset, now)?;
        for (name, value) in extra {
            query.set_param(name, value, now)?;
        }
        Ok(query)
    }
}

pub fn run(data: &Path, args: TrendsArgs) -> Result<(), CliError> {
    let (select, query, parts): (&TrendSelect, TrendQuery, Vec<TrendPart>) = match &args.command {
        TrendsCommand::Patterns(s) => (
            s,
            s.query("patterns", &[])?,
            vec![TrendPart::Profiles, TrendPart::Periods, TrendPart::Shifts],
        ),
        TrendsCommand::Anomalies(a) => {
            let csv = a.select.output_format() == TrendFormat::Csv;
            let part = if a.all || csv {
                TrendPart::Anomalies
            } else {
                TrendPart::AnomaliesOnly
            };
            (
                &a.select,
                a.select.query("anomalies", &[("sensitivity", a.sensitivity.to_string())])?,
                vec![part],
            )
        }
        TrendsCommand::Forecast(f) => {
            let mut extra = vec![("horizon", f.horizon.clone())];
            if let Some(t) = &f.threshold {
                extra.push(("threshold", t.clone()));
            }
            (&f.select, f.select.query("forecast", &extra)?, vec![TrendPart::Forecast])
        }
        TrendsCommand::Correlate(c) => {
            let mut extra = vec![("max_lag", c.max_lag.to_string()), ("sensitivity", c.sensitivity.to_string())];
            if let Some(a) = &c.around {
                extra.push(("around", a.clone()));
            }
            let parts = if c.around.is_some() {
                "correlation"
            } else {
                "correlation,anomalies"
            };
            (
                &c.select,
                c.select.query(parts, &extra)?,
                vec![TrendPart::Correlation, TrendPart::Movements],
            )
        }
    };
    let format = select.output_format();
    let engine = crate::open_existing(data)?;
    let history = History::from_engine(engine);
    let analysis = history.get_trends(&query)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let time_format = select.time_format;
    let time = move |t: i64| time_format.format(t);
    match format {
        TrendFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &analysis).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
        TrendFormat::Csv => {
            let table = analysis.table(parts[0], &time);
            output::csv_line(&mut out, &table.header)?;
            for row in &table.rows {
                output::csv_line(&mut out, row)?;
            }
        }
        TrendFormat::Table => print_tables(&mut out, &analysis, &parts, &time)?,
    }
    out.flush()?;
    drop(out);
    history.close()?;
    Ok(())
}

fn print_tables(out: &mut impl Write, analysis: &TrendAnalysis, parts: &[TrendPart], time: &dyn Fn(i64) -> String) -> Result<(), CliError> {
    if analysis.series.is_empty() {
        writeln!(out, "no numeric points in the selection")?;
        return Ok(());
    }
    for &part in parts {
        let table = analysis.table(part, time);
        let title = match part {
            TrendPart::Profiles => "profiles",
            TrendPart::Periods => "periods",
            TrendPart::Shifts => "trend and level shifts",
            TrendPart::Anomalies => "scored points",
            TrendPart::AnomaliesOnly => "anomalies",
            TrendPart::Forecast => "forecast",
            TrendPart::Correlation => "correlation (strongest first)",
            TrendPart::Movements => "moved together",
        };
        writeln!(out, "{title}:")?;
        if table.rows.is_empty() {
            writeln!(out, "  (none)")?;
        } else {
            output::table(out, &table.header, &table.rows)?;
        }
        writeln!(out)?;
    }
    for s in &analysis.series {
        let mut notes = Vec::new();
        if let Some(a) = &s.anomalies {
            notes.push(format!(
                "{} of {} points anomalous (threshold {})",
                a.count,
                a.points.len(),
                a.threshold
            ));
        }
        if let Some(f) = &s.forecast {
            let season = f.season_samples.map(|m| format!(", season {m} steps")).unwrap_or_default();
            notes.push(format!("model {}{season}, step {}s", f.model, f.step_nanos / 1_000_000_000));
            if let Some(eta) = &f.threshold {
                let when = |t: Option<i64>| t.map(time).unwrap_or_else(|| "not within reach".into());
                notes.push(format!(
                    "{} to {}: forecast {}, earliest {}, at the current trend {}",
                    eta.direction,
                    eta.threshold,
                    when(eta.at),
                    when(eta.earliest),
                    when(eta.at_current_trend)
                ));
            }
        }
        if !notes.is_empty() {
            writeln!(out, "{} ({} points): {}", s.label, s.points, notes.join("; "))?;
        }
    }
    if let Some(c) = &analysis.correlation
        && let Some(at) = c.around
    {
        writeln!(out, "moved together around {}", time(at))?;
    }
    Ok(())
}
