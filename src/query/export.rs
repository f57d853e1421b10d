//! Export of a query's rows as CSV, NDJSON or Parquet, streamed: rows are written as the
//! query produces them (Parquet: a row group at a time), so memory stays bounded whatever
//! the size of the answer. `annals export`, `annals query --format csv|json|parquet` and
//! `POST /history/*/export` all write through here.

use super::QueryResult;
use crate::error::{Error, Result};
use crate::time::format_rfc3339;
use std::io::Write;

/// The file formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// One JSON object per line: `time`, `measurement` (raw rows), `tags`, `fields`,
    /// `record_id` (event rows).
    Ndjson,
    /// An Apache Parquet file with the columns of the CSV export (needs the cargo feature
    /// `parquet`; see [`crate::query::parquet`]).
    Parquet,
}

impl ExportFormat {
    /// `csv`, `ndjson` (also `json` and `jsonl`) or `parquet` (refused by a build without
    /// the `parquet` feature).
    pub fn parse(text: &str) -> Result<ExportFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "ndjson" | "jsonl" | "json" => Ok(ExportFormat::Ndjson),
            "parquet" => ExportFormat::Parquet.available(),
            other => Err(Error::invalid(format!("format {other:?} is not csv, ndjson or parquet"))),
        }
    }

    /// The format, or an error when this build cannot write it.
    pub fn available(self) -> Result<ExportFormat> {
        if self == ExportFormat::Parquet && !cfg!(feature = "parquet") {
            return Err(no_parquet());
        }
        Ok(self)
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Parquet => "parquet",
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

fn no_parquet() -> Error {
    Error::invalid("this build of annals writes no Parquet (it was compiled without the cargo feature `parquet`)")
}

/// How rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// The format.
    pub format: ExportFormat,
    /// Times as integer nanoseconds instead of RFC 3339.
    pub integer_times: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    /// Rows written (the header not counted).
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Quotes a CSV cell when it needs it.
pub fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// Counts the bytes written through it.
struct Counting<'a> {
    out: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn io_error(error: std::io::Error) -> Error {
    Error::Io {
        op: "write the export",
        path: "".into(),
        source: error,
    }
}

/// Writes every row of `result` to `out`, calling `progress` with the rows written every
/// 10,000 rows. `measurement` names the rows' measurement in NDJSON raw rows. The
/// result's cursor (when its query had a limit) is left on `result`.
pub fn export_rows(
    result: &mut QueryResult,
    measurement: Option<&str>,
    options: ExportOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary> {
    let csv = match options.format {
        ExportFormat::Csv => true,
        ExportFormat::Ndjson => false,
        #[cfg(feature = "parquet")]
        ExportFormat::Parquet => {
            return super::parquet::export_parquet(result, options, &super::parquet::ParquetLayout::default(), out, progress);
        }
        #[cfg(not(feature = "parquet"))]
        ExportFormat::Parquet => return Err(no_parquet()),
    };
    let mut out = Counting { out, bytes: 0 };
    let time = |t: i64| -> serde_json::Value {
        if options.integer_times {
            t.into()
        } else {
            format_rfc3339(t).into()
        }
    };
    let (time_column, tags, values) = (result.time_column, result.tag_columns.clone(), result.value_columns.clone());
    if csv {
        let header: Vec<String> = result.columns().iter().map(|c| csv_cell(c).into_owned()).collect();
        writeln!(out, "{}", header.join(",")).map_err(io_error)?;
    }
    let mut rows = 0u64;
    let mut line = String::new();
    for row in result.by_ref() {
        let row = row?;
        line.clear();
        if csv {
            let mut first = true;
            let mut cell = |text: &str| {
                if !first {
                    line.push(',');
                }
                first = false;
                line.push_str(&csv_cell(text));
            };
            if time_column {
                let text = match row.time {
                    Some(t) if options.integer_times => t.to_string(),
                    Some(t) => format_rfc3339(t),
                    None => String::new(),
                };
                cell(&text);
            }
            for tag in row.tags.iter() {
                cell(tag.as_deref().unwrap_or(""));
            }
            for value in &row.values {
                cell(&value.as_ref().map(|v| v.to_string()).unwrap_or_default());
            }
        } else {
            let mut object = serde_json::Map::new();
            if time_column && let Some(t) = row.time {
                object.insert("time".into(), time(t));
            }
            if row.series.is_some()
                && let Some(m) = measurement
            {
                object.insert("measurement".into(), m.into());
            }
            let tag_values: serde_json::Map<String, serde_json::Value> = tags
                .iter()
                .zip(row.tags.iter())
                .filter_map(|(n, v)| v.clone().map(|v| (n.clone(), v.into())))
                .collect();
            let field_values: serde_json::Map<String, serde_json::Value> = values
                .iter()
                .zip(&row.values)
                .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.to_json())))
                .collect();
            object.insert("tags".into(), tag_values.into());
            object.insert("fields".into(), field_values.into());
            if let Some(id) = row.record_id {
                object.insert("record_id".into(), id.into());
            }
            line.push_str(&serde_json::Value::Object(object).to_string());
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(io_error)?;
        rows += 1;
        if rows.is_multiple_of(10_000) {
            progress(rows);
        }
    }
    out.flush().map_err(io_error)?;
    progress(rows);
    Ok(ExportSummary { rows, bytes: out.bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_cells_are_quoted() {
        assert_eq!(ExportFormat::parse("CSV").unwrap(), ExportFormat::Csv);
        assert_eq!(ExportFormat::parse("jsonl").unwrap(), ExportFormat::Ndjson);
        match ExportFormat::parse("xlsx") {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("csv, ndjson or parquet"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,\"b\"\nc"), "\"a,\"\"b\"\"\nc\"");
    }
}
