//! W3: the real series of the Numenta Anomaly Benchmark (NAB), replayed as they are.
//!
//! Each `data/<group>/<name>.csv` (`timestamp,value`, timestamps `YYYY-MM-DD HH:MM:SS` in
//! UTC) becomes the series `nab,series=<group>/<name>` with one field `value`. The files are
//! real recordings with real quirks, kept as found: some repeat a timestamp (annals keeps
//! the last value written for a timestamp, as for any metric), one steps back in time, and
//! line ends may be CRLF. Nothing is random, so there is no seed.
//!
//! NAB is © Numenta, AGPL-3.0 (see `LICENSE.txt` beside the data); the data is read from the
//! shared directory at run time and never copied into this repository.

use crate::error::{Error, Result};
use crate::model::{Batch, FieldValue, SeriesKey};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the NAB series are, relative to the crate: `../shared/data/nab/data`.
pub fn default_nab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/nab/data")
}

/// One NAB file.
#[derive(Debug, Clone)]
pub struct NabSeries {
    /// `<group>/<file stem>`, e.g. `realKnownCause/nyc_taxi`.
    pub name: String,
    /// (nanoseconds since the epoch, value) in file order.
    pub points: Vec<(i64, f64)>,
    /// Timestamps that appear more than once in the file (each repeat counted).
    pub repeated_timestamps: usize,
    /// Rows whose timestamp is earlier than the row before.
    pub steps_back: usize,
}

/// Every NAB file under a directory, with its raw bytes.
#[derive(Debug, Clone)]
pub struct NabCorpus {
    /// Series in path order.
    pub series: Vec<NabSeries>,
    /// The files' bytes concatenated in the same order.
    pub csv: Vec<u8>,
}

impl NabCorpus {
    /// Reads `dir/*/*.csv`.
    pub fn load(dir: &Path) -> Result<NabCorpus> {
        let mut files = Vec::new();
        let groups = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
        for group in groups {
            let group = group.map_err(|e| Error::io("read directory", dir, e))?.path();
            if !group.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&group).map_err(|e| Error::io("read directory", &group, e))? {
                let path = file.map_err(|e| Error::io("read directory", &group, e))?.path();
                if path.extension().is_some_and(|x| x == "csv") {
                    files.push(path);
                }
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::invalid(format!("no NAB csv files under {}", dir.display())));
        }
        let mut corpus = NabCorpus {
            series: Vec::with_capacity(files.len()),
            csv: Vec::new(),
        };
        for path in files {
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            let group = path
                .parent()
                .and_then(Path::file_name)
                .map(|g| g.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let series =
                parse_csv(&format!("{group}/{stem}"), &bytes).map_err(|why| Error::invalid(format!("{}: {why}", path.display())))?;
            corpus.csv.extend_from_slice(&bytes);
            corpus.series.push(series);
        }
        Ok(corpus)
    }

    /// Points over all series (CSV data rows).
    pub fn points(&self) -> u64 {
        self.series.iter().map(|s| s.points.len() as u64).sum()
    }

    /// The series key of a NAB series.
    pub fn key(series: &NabSeries) -> Result<SeriesKey> {
        SeriesKey::metric("nab")?.with_tag("series", &series.name)
    }

    /// Every point as batches of up to `rows` rows, series after series.
    pub fn batches(&self, rows: usize) -> Result<Vec<Batch>> {
        let mut out = Vec::new();
        let mut batch = Batch::new();
        for series in &self.series {
            let key = Self::key(series)?;
            for &(ts, value) in &series.points {
                batch.add_row(&key, ts, [("value", FieldValue::F64(value))])?;
                if batch.len() >= rows {
                    out.push(std::mem::take(&mut batch));
                }
            }
        }
        if !batch.is_empty() {
            out.push(batch);
        }
        Ok(out)
    }

    /// Every point as Influx line protocol (`nab,series=<name> value=<v> <ns>`).
    pub fn write_line_protocol(&self, out: &mut impl Write) -> std::io::Result<()> {
        for series in &self.series {
            for (ts, value) in &series.points {
                writeln!(out, "nab,series={} value={value:?} {ts}", series.name)?;
            }
        }
        Ok(())
    }
}

/// Parses one file: a `timestamp,value` header, then rows.
fn parse_csv(name: &str, bytes: &[u8]) -> std::result::Result<NabSeries, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty file")?;
    if header.trim_end_matches('\r') != "timestamp,value" {
        return Err(format!("header {header:?}, expected \"timestamp,value\""));
    }
    let mut series = NabSeries {
        name: name.to_string(),
        points: Vec::new(),
        repeated_timestamps: 0,
        steps_back: 0,
    };
    let mut seen = std::collections::HashSet::new();
    for (i, line) in lines.enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (time, value) = line.split_once(',').ok_or_else(|| format!("line {}: no comma", i + 2))?;
        let ts = parse_timestamp(time).ok_or_else(|| format!("line {}: bad timestamp {time:?}", i + 2))?;
        let value: f64 = value.trim().parse().map_err(|_| format!("line {}: bad value {value:?}", i + 2))?;
        if !seen.insert(ts) {
            series.repeated_timestamps += 1;
        }
        if series.points.last().is_some_and(|&(last, _)| ts < last) {
            series.steps_back += 1;
        }
        series.points.push((ts, value));
    }
    Ok(series)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) to nanoseconds since the epoch.
fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { std::str::from_utf8(&b[r]).ok()?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = crate::time::days_from_civil(y, mo as u32, d as u32);
    ((days * 86_400 + h * 3600 + mi * 60 + s) as i128 * 1_000_000_000).try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_with_their_quirks() {
        let csv =
            b"timestamp,value\r\n2014-04-10 00:00:00,1.5\r\n2014-04-10 00:05:00,2\r\n2014-04-10 00:05:00,3\r\n2014-04-10 00:00:00,4\r\n";
        let s = parse_csv("g/x", csv).unwrap();
        assert_eq!(s.points.len(), 4);
        assert_eq!(s.points[0], (1_397_088_000_000_000_000, 1.5));
        assert_eq!(s.repeated_timestamps, 2);
        assert_eq!(s.steps_back, 1);
        assert!(parse_csv("g/x", b"time,value\n").is_err());
        assert!(parse_csv("g/x", b"timestamp,value\n2014-13-01 00:00:00,1\n").is_err());
        assert!(parse_csv("g/x", b"timestamp,value\n2014-01-01 00:00:00,x\n").is_err());
    }

    #[test]
    fn loads_the_shared_corpus_when_present() {
        let dir = default_nab_dir();
        if !dir.is_dir() {
            eprintln!("NAB data not at {}; skipped", dir.display());
            return;
        }
        let corpus = NabCorpus::load(&dir).unwrap();
        assert!(corpus.series.len() >= 30, "{} series", corpus.series.len());
        // Every non-empty line but each file's header is a point.
        let mut rows = 0u64;
        for group in std::fs::read_dir(&dir).unwrap().flatten().filter(|g| g.path().is_dir()) {
            for file in std::fs::read_dir(group.path()).unwrap().flatten() {
                if file.path().extension().is_some_and(|x| x == "csv") {
                    let text = std::fs::read_to_string(file.path()).unwrap();
                    rows += text.lines().filter(|l| !l.trim().is_empty()).count() as u64 - 1;
                }
            }
        }
        assert_eq!(corpus.points(), rows);
        assert!(corpus.series.iter().all(|s| !s.points.is_empty()));
    }
}
