//! Partitioned, incremental Parquet exports for distributed engines (feature `parquet`):
//! `annals export --format parquet --to DIR|s3://bucket/prefix`.
//!
//! The store's rows are written as a Hive-partitioned dataset that DuckDB, Spark, Trino
//! and DataFusion read as one table: `kind=metric/month=2016-01/part-00000.parquet` (the
//! partition keys are chosen from `kind`, `measurement` and `month`). Each file holds the
//! rows of one measurement in one month, with the columns `time` (UTC microseconds,
//! `TIMESTAMP(MICROS)`, which Spark reads), `kind` and `measurement` where they are not
//! partition keys, one string column per tag and one column per field (typed as
//! [`crate::query::parquet`] describes), zstd-compressed. A tag or field whose name is
//! taken (`time`, `kind`, `measurement`, `month`, or a tag's name for a field) is written
//! as `tag_<name>` or `field_<name>`.
//!
//! **Incremental and idempotent.** The destination's `_annals_export.json` (the export
//! manifest) lists every file with its rows and the newest time it holds, per unit (a
//! measurement's month). A rerun with `incremental` compares each unit with the store:
//! when the store still holds exactly the exported rows up to the unit's newest exported
//! time, only the rows after it are written, as a new part file; when rows arrived at
//! older times (late writes), the unit is written again whole and its old files removed
//! once the manifest names the new one; when the store holds fewer (retention removed
//! detail), what was exported stays and only newer rows are added. A rerun with nothing
//! new writes nothing. The manifest also records the selection (`kind`, `measurement`,
//! `where`, `from`) and the partition keys, and a run with others is refused rather than
//! mixed in.
//!
//! **Crash safety.** A file is written under a hidden temporary name (`.part-00003.parquet.tmp`,
//! which Hive readers skip), fsync'd and renamed into place; in a bucket it is one `PUT` or a
//! multipart upload, which appears only when completed. So no reader sees a partial file.
//! The manifest is saved (atomically) after each unit. A file a crashed run left without
//! naming it in the manifest is removed by the next run before anything else, so a crash
//! leaves at worst, until that run, the rows of one unit twice (its new file beside the old
//! ones) and never a row missing from the manifest's files.

use crate::engine::{Engine, Snapshot};
use crate::error::{Error, Result};
use crate::index::{SeriesSelector, TagPredicate};
use crate::io::{self, Fs};
use crate::model::{FieldValue, SeriesKind};
use crate::objects::S3Config;
use crate::query::export::{ExportFormat, ExportOptions};
use crate::query::parquet::{ParquetLayout, write_parquet};
use crate::query::{Aggregate, Fill, Query};
use crate::read::Order;
use crate::time::{Month, TimeRange, format_rfc3339};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The export manifest's name, at the destination's root.
pub const MANIFEST_NAME: &str = "_annals_export.json";

/// The manifest format this version writes and reads.
const MANIFEST_FORMAT: u32 = 1;

/// Column names a tag or field may not take: the time, the constant columns and every
/// possible partition key (a Hive reader adds those as columns).
const RESERVED: [&str; 4] = ["time", "kind", "measurement", "month"];

/// Where a dataset export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A local directory (created when missing).
    Directory(PathBuf),
    /// A prefix in an S3-compatible bucket (feature `s3`); the configuration's `prefix` is
    /// the folder (empty, or ending in `/`).
    S3(S3Config),
}

impl Destination {
    /// `s3://bucket/prefix` (the region, endpoint and keys from `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`), or a directory.
    pub fn parse(text: &str) -> Result<Destination> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::invalid("the export's destination is empty"));
        }
        let Some(rest) = text.strip_prefix("s3://") else {
            if text.contains("://") {
                return Err(Error::invalid(format!(
                    "{text:?} is neither a directory nor an s3://bucket/prefix URL"
                )));
            }
            return Ok(Destination::Directory(PathBuf::from(text)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::invalid(format!("{text:?} names no bucket (s3://bucket/prefix)")));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(Destination::S3(S3Config::from_env(bucket, prefix)))
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Directory(dir) => write!(f, "{}", dir.display()),
            Destination::S3(config) => write!(f, "s3://{}/{}", config.bucket, config.prefix),
        }
    }
}

/// A partition key: a level of `key=value` folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionKey {
    /// The series kind (`metric`, `performance`, `log`, `alert`, `commit`).
    Kind,
    /// The measurement.
    Measurement,
    /// The UTC month of the rows' times, `YYYY-MM`.
    Month,
}

impl PartitionKey {
    /// The key's name, as in the folder names.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKey::Kind => "kind",
            PartitionKey::Measurement => "measurement",
            PartitionKey::Month => "month",
        }
    }

    /// A comma-separated list such as `kind,month`, in folder order; `none` for files
    /// side by side at the root.
    pub fn parse_list(text: &str) -> Result<Vec<PartitionKey>> {
        if text.trim() == "none" {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        for part in text.split(',').map(str::trim) {
            let key = match part {
                "kind" => PartitionKey::Kind,
                "measurement" => PartitionKey::Measurement,
                "month" => PartitionKey::Month,
                other => {
                    return Err(Error::invalid(format!(
                        "partition key {other:?} is not kind, measurement or month (or none alone)"
                    )));
                }
            };
            if keys.contains(&key) {
                return Err(Error::invalid(format!("partition key {part:?} is given twice")));
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// The default: `kind,month`.
    pub fn default_list() -> Vec<PartitionKey> {
        vec![PartitionKey::Kind, PartitionKey::Month]
    }
}

/// What a dataset export writes, and where.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Where the files go.
    pub destination: Destination,
    /// Folder levels, outermost first.
    pub partition: Vec<PartitionKey>,
    /// Only series of this kind.
    pub kind: Option<SeriesKind>,
    /// Only series of this measurement.
    pub measurement: Option<String>,
    /// Only series whose tags satisfy all of these (as `--where`: `host=a`, ...).
    pub predicates: Vec<String>,
    /// Rows from this time (ns, inclusive).
    pub from: Option<i64>,
    /// Rows before this time (ns, exclusive); may grow from run to run.
    pub to: Option<i64>,
    /// Continue the export already at the destination (write only what is new); without
    /// it, the destination must be empty.
    pub incremental: bool,
}

impl DatasetOptions {
    /// Everything in the store, to `destination`, partitioned by kind and month, into an
    /// empty destination (set `incremental` to continue an export).
    pub fn new(destination: Destination) -> DatasetOptions {
        DatasetOptions {
            destination,
            partition: PartitionKey::default_list(),
            kind: None,
            measurement: None,
            predicates: Vec::new(),
            from: None,
            to: None,
            incremental: false,
        }
    }
}

/// How far an export has come, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatasetProgress {
    /// Units (a measurement's month) looked at.
    pub units_done: u64,
    /// Units to look at.
    pub units_total: u64,
    /// Rows written so far.
    pub rows: u64,
    /// Bytes written so far.
    pub bytes: u64,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DatasetSummary {
    /// Files written.
    pub files_written: u64,
    /// Rows written.
    pub rows: u64,
    /// Bytes written (Parquet files).
    pub bytes: u64,
    /// Units exported for the first time.
    pub units_new: u64,
    /// Units that got a new file of newer rows.
    pub units_appended: u64,
    /// Units written again whole (rows arrived at times already exported).
    pub units_rewritten: u64,
    /// Units with nothing new.
    pub units_unchanged: u64,
    /// Files removed: replaced by a rewrite, or left by a crashed run.
    pub files_removed: u64,
    /// Units the store holds fewer rows of than were exported (retention removed detail):
    /// their exported files were kept.
    pub units_kept: Vec<String>,
}

/// The export manifest, `_annals_export.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Manifest {
    format: u32,
    partition: Vec<PartitionKey>,
    selection: Selection,
    /// Sorted by (kind, measurement, month).
    units: Vec<UnitRecord>,
    runs: Vec<RunRecord>,
}

/// What was selected: a run must select the same to continue an export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Selection {
    kind: Option<String>,
    measurement: Option<String>,
    predicates: Vec<String>,
    from: Option<i64>,
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(kind) = &self.kind {
            parts.push(format!("--kind {kind}"));
        }
        if let Some(m) = &self.measurement {
            parts.push(format!("--measurement {m}"));
        }
        parts.extend(self.predicates.iter().map(|p| format!("--where {p:?}")));
        if let Some(from) = self.from {
            parts.push(format!("--from {}", format_rfc3339(from)));
        }
        if parts.is_empty() {
            write!(f, "everything")
        } else {
            write!(f, "{}", parts.join(" "))
        }
    }
}

/// One measurement's month: its files and how far they go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct UnitRecord {
    kind: String,
    measurement: String,
    month: String,
    /// Rows in all its files.
    rows: u64,
    /// The newest time (ns) in its files.
    last_time_ns: i64,
    files: Vec<FileRecord>,
}

/// A Parquet file of the export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct FileRecord {
    /// Relative to the destination, with `/`.
    path: String,
    rows: u64,
    bytes: u64,
    first_time_ns: i64,
    last_time_ns: i64,
}

/// One run that wrote something.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct RunRecord {
    finished: String,
    files_written: u64,
    rows: u64,
    bytes: u64,
}

/// Where files are written: a directory through the store's file system, or a bucket.
enum Target {
    Directory {
        fs: Fs,
        root: PathBuf,
    },
    #[cfg(feature = "s3")]
    Bucket {
        bucket: crate::objects::s3::Bucket,
        prefix: String,
    },
}

impl Target {
    fn open(destination: &Destination, fs: Fs) -> Result<Target> {
        match destination {
            Destination::Directory(root) => Ok(Target::Directory { fs, root: root.clone() }),
            #[cfg(feature = "s3")]
            Destination::S3(config) => Ok(Target::Bucket {
                bucket: crate::objects::s3::Bucket::connect(config)?,
                prefix: config.prefix.clone(),
            }),
            #[cfg(not(feature = "s3"))]
            Destination::S3(_) => Err(Error::invalid(
                "this build of annals cannot write to S3 (it was compiled without the cargo feature `s3`)",
            )),
        }
    }

    /// The bytes of `relative`, `None` when missing.
    fn read(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Target::Directory { root, .. } => io::read_file_if_exists(&root.join(relative)),
            #[cfg(feature = "s3")]
            Target::Bucket { bucket, prefix } => bucket.get(&format!("{prefix}{relative}")),
        }
    }

    /// Writes a small file whole, atomically.
    fn write_small(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Target::Directory { fs, root } => {
                fs.create_dir_durable(root)?;
                fs.write_file_atomic(&root.join(relative), &bytes)
            }
            #[cfg(feature = "s3")]
            Target::Bucket { bucket, prefix } => bucket.put(&format!("{prefix}{relative}"), bytes),
        }
    }

    /// Writes a file through `write`, which returns the rows it wrote; the file appears
    /// whole when `write` succeeds with rows, and not at all otherwise. The rows and bytes.
    fn write_file(&self, relative: &str, write: &mut dyn FnMut(&mut dyn Write) -> Result<u64>) -> Result<(u64, u64)> {
        match self {
            Target::Directory { fs, root } => {
                let path = root.join(relative);
                let parent = path.parent().unwrap_or(root).to_path_buf();
                fs.create_dir_durable(&parent)?;
                let temporary = parent.join(format!(".{}.tmp", file_name(relative)));
                if temporary.exists() {
                    fs.remove_file(&temporary)?;
                }
                let file = fs.create_new(&temporary)?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                let written = write(&mut out).and_then(|rows| {
                    let file = out.into_inner().map_err(|e| Error::io("write", &temporary, e.into_error()))?;
                    file.sync_all()?;
                    Ok((rows, file.len()?))
                });
                match written {
                    Ok((rows, bytes)) if rows > 0 => {
                        fs.rename_durable(&temporary, &path)?;
                        Ok((rows, bytes))
                    }
                    Ok(_) => {
                        fs.remove_file(&temporary)?;
                        Ok((0, 0))
                    }
                    Err(e) => {
                        let _ = fs.remove_file(&temporary);
                        Err(e)
                    }
                }
            }
            #[cfg(feature = "s3")]
            Target::Bucket { bucket, prefix } => {
                let mut upload = bucket.upload(&format!("{prefix}{relative}"));
                let rows = write(&mut upload)?;
                if rows == 0 {
                    // Dropped unfinished: nothing appears.
                    return Ok((0, 0));
                }
                let bytes = upload.finish()?;
                Ok((rows, bytes))
            }
        }
    }

    /// Every file under the destination, relative, with `/`, sorted.
    fn list(&self) -> Result<Vec<String>> {
        match self {
            Target::Directory { root, .. } => {
                let mut out = Vec::new();
                if root.is_dir() {
                    list_files(root, "", &mut out)?;
                } else if root.exists() {
                    return Err(Error::invalid(format!("{} is a file, not a directory", root.display())));
                }
                out.sort();
                Ok(out)
            }
            #[cfg(feature = "s3")]
            Target::Bucket { bucket, prefix } => Ok(bucket
                .list(prefix.trim_end_matches('/'))?
                .into_iter()
                .filter_map(|listed| listed.path.strip_prefix(prefix.as_str()).map(str::to_string))
                .collect()),
        }
    }

    /// Removes a file; a missing one is not an error.
    fn remove(&self, relative: &str) -> Result<()> {
        match self {
            Target::Directory { fs, root } => {
                let path = root.join(relative);
                if path.exists() { fs.remove_file(&path) } else { Ok(()) }
            }
            #[cfg(feature = "s3")]
            Target::Bucket { bucket, prefix } => bucket.delete(&format!("{prefix}{relative}")),
        }
    }
}

fn file_name(relative: &str) -> &str {
    relative.rsplit('/').next().unwrap_or(relative)
}

fn list_files(dir: &Path, relative: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in io::list_dir(dir)? {
        let name = format!("{relative}{}", entry.name);
        if entry.is_dir {
            list_files(&entry.path, &format!("{name}/"), out)?;
        } else {
            out.push(name);
        }
    }
    Ok(())
}

/// True for a file this export writes: `part-NNNNN.parquet`, or its hidden temporary.
fn is_export_file(relative: &str) -> bool {
    let name = file_name(relative);
    let name = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")).unwrap_or(name);
    name.strip_prefix("part-")
        .and_then(|n| n.strip_suffix(".parquet"))
        .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A unit of work: one measurement's month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct UnitKey {
    kind: SeriesKind,
    measurement: String,
    month: Month,
}

impl UnitKey {
    fn matches(&self, record: &UnitRecord) -> bool {
        record.kind == self.kind.name() && record.measurement == self.measurement && record.month == self.month.to_string()
    }

    fn describe(&self) -> String {
        format!("{} {} {}", self.kind.name(), self.measurement, self.month)
    }
}

/// A partition folder's value, escaped as Hive escapes it (`%` and the characters that
/// cannot stand in a path segment or a `key=value` pair as `%XX`).
fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control()
            || matches!(
                c,
                '/' | '\\' | '=' | '%' | '"' | '#' | '*' | '?' | ':' | '[' | ']' | '{' | '}' | '^' | '\''
            )
        {
            let mut buffer = [0u8; 4];
            for b in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        // Hive's name for an empty value; dots alone are not folders one can name.
        return if out.is_empty() {
            "__HIVE_DEFAULT_PARTITION__".to_string()
        } else {
            out.replace('.', "%2E")
        };
    }
    out
}

/// The unit's folder, relative (empty without partition keys), ending in `/` when not
/// empty.
fn unit_folder(partition: &[PartitionKey], unit: &UnitKey) -> String {
    let mut out = String::new();
    for key in partition {
        let value = match key {
            PartitionKey::Kind => unit.kind.name().to_string(),
            PartitionKey::Measurement => unit.measurement.clone(),
            PartitionKey::Month => unit.month.to_string(),
        };
        out.push_str(key.name());
        out.push('=');
        out.push_str(&escape_partition_value(&value));
        out.push('/');
    }
    out
}

/// The next free part number in `folder`, after every file the manifest names there.
fn next_part(manifest: &Manifest, folder: &str) -> u64 {
    manifest
        .units
        .iter()
        .flat_map(|u| &u.files)
        .filter_map(|f| {
            let rest = f.path.strip_prefix(folder)?;
            if rest.contains('/') {
                return None;
            }
            rest.strip_prefix("part-")?.strip_suffix(".parquet")?.parse::<u64>().ok()
        })
        .max()
        .map_or(0, |n| n + 1)
}

/// Writes the store's rows (as `options` selects) to `options.destination` as a
/// partitioned Parquet dataset; see the module's documentation. `progress` is called
/// after each unit and each row group.
pub fn export_dataset(engine: &Engine, options: &DatasetOptions, progress: &mut dyn FnMut(&DatasetProgress)) -> Result<DatasetSummary> {
    let predicates = options
        .predicates
        .iter()
        .map(|p| TagPredicate::parse(p))
        .collect::<Result<Vec<_>>>()?;
    let selector = SeriesSelector {
        kind: options.kind,
        measurement: options.measurement.clone(),
        predicate: TagPredicate::all(predicates),
    };
    let range = TimeRange::new(options.from.unwrap_or(i64::MIN), options.to.unwrap_or(i64::MAX));
    if range.start >= range.end {
        return Err(Error::invalid("the export's range is empty: --from must be before --to"));
    }
    let selection = Selection {
        kind: options.kind.map(|k| k.name().to_string()),
        measurement: options.measurement.clone(),
        predicates: options.predicates.clone(),
        from: options.from,
    };
    let target = Target::open(&options.destination, engine.fs().clone())?;
    let mut summary = DatasetSummary::default();
    let mut manifest = match target.read(MANIFEST_NAME)? {
        Some(bytes) => {
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(format!(
                    "{}/{MANIFEST_NAME} is not an annals export manifest ({e}); export to another place",
                    options.destination
                ))
            })?;
            if manifest.format != MANIFEST_FORMAT {
                return Err(Error::invalid(format!(
                    "{}/{MANIFEST_NAME} has format {}, this version of annals continues format {MANIFEST_FORMAT}",
                    options.destination, manifest.format
                )));
            }
            if !options.incremental {
                return Err(Error::invalid(format!(
                    "{} already holds an annals export; rerun with --incremental to add what is new, or export to another place",
                    options.destination
                )));
            }
            if manifest.partition != options.partition || manifest.selection != selection {
                return Err(Error::invalid(format!(
                    "{} holds an export of {} partitioned by {}; this run selects {} partitioned by {}: \
                     export to another place",
                    options.destination,
                    manifest.selection,
                    partition_names(&manifest.partition),
                    selection,
                    partition_names(&options.partition),
                )));
            }
            manifest
        }
        None => {
            // A manifest's temporary left by a run that failed saving its first manifest.
            let manifest_temporary = format!("{MANIFEST_NAME}.tmp");
            let present = target.list()?;
            if present.contains(&manifest_temporary) {
                target.remove(&manifest_temporary)?;
            }
            if let Some(first) = present.iter().find(|path| **path != manifest_temporary) {
                return Err(Error::invalid(format!(
                    "{} is not empty (it holds {first}) and holds no annals export: export to an empty directory or prefix",
                    options.destination
                )));
            }
            let manifest = Manifest {
                format: MANIFEST_FORMAT,
                partition: options.partition.clone(),
                selection,
                units: Vec::new(),
                runs: Vec::new(),
            };
            // Before any file: a run that stops early leaves an export that a rerun with
            // `incremental` continues, not a folder of files no manifest explains.
            save(&target, &manifest)?;
            manifest
        }
    };
    // Files a crashed run wrote but never named in the manifest.
    let named: BTreeSet<&str> = manifest.units.iter().flat_map(|u| &u.files).map(|f| f.path.as_str()).collect();
    let orphans: Vec<String> = target
        .list()?
        .into_iter()
        .filter(|path| (is_export_file(path) && !named.contains(path.as_str())) || *path == format!("{MANIFEST_NAME}.tmp"))
        .collect();
    for orphan in &orphans {
        target.remove(orphan)?;
        summary.files_removed += 1;
    }

    let snapshot = engine.snapshot();
    let units = units_of(&snapshot, &selector, range)?;
    let mut state = DatasetProgress {
        units_total: units.len() as u64,
        ..DatasetProgress::default()
    };
    progress(&state);
    let layout_for = |unit: &UnitKey| ParquetLayout {
        micros: true,
        constants: [
            (PartitionKey::Kind, unit.kind.name().to_string()),
            (PartitionKey::Measurement, unit.measurement.clone()),
        ]
        .into_iter()
        .filter(|(key, _)| !options.partition.contains(key))
        .map(|(key, value)| (key.name().to_string(), value))
        .collect(),
    };
    for unit in units {
        let clip = clip(unit.month.range(), range);
        let unit_selector = SeriesSelector {
            kind: Some(unit.kind),
            measurement: Some(unit.measurement.clone()),
            predicate: selector.predicate.clone(),
        };
        let prior = manifest.units.iter().position(|r| unit.matches(r));
        let folder = unit_folder(&manifest.partition, &unit);
        let layout = layout_for(&unit);
        // What to write: the whole unit, or the rows after the exported ones; and whether
        // the unit's old files are replaced.
        let (write_range, replace) = match prior {
            None => (clip, false),
            Some(index) => {
                let record = &manifest.units[index];
                let exported_end = record.last_time_ns.saturating_add(1).min(clip.end);
                let now_held = count_rows(&snapshot, &unit_selector, TimeRange::new(clip.start, exported_end))?;
                if now_held > record.rows {
                    (clip, true)
                } else {
                    if now_held < record.rows {
                        summary.units_kept.push(unit.describe());
                    }
                    (TimeRange::new(exported_end, clip.end), false)
                }
            }
        };
        let mut written_file = None;
        if write_range.start < write_range.end {
            let relative = format!("{folder}part-{:05}.parquet", next_part(&manifest, &folder));
            let mut result = snapshot.query(&raw_query(&unit_selector, write_range))?;
            if result.resolutions != [crate::manifest::Resolution::Detail] {
                return Err(Error::Invariant(format!("the raw rows of {} came from summaries", unit.describe())));
            }
            rename_taken_columns(&mut result.tag_columns, &mut result.value_columns);
            let mut times = None;
            let before = state;
            let (rows, bytes) = target.write_file(&relative, &mut |out| {
                let export = ExportOptions {
                    format: ExportFormat::Parquet,
                    integer_times: false,
                };
                let (written, span) = write_parquet(&mut result, export, &layout, out, &mut |written| {
                    state.rows = before.rows + written;
                    progress(&state);
                })?;
                times = span;
                Ok(written.rows)
            })?;
            state.rows = before.rows + rows;
            state.bytes = before.bytes + bytes;
            if let (true, Some((first_time, last_time))) = (rows > 0, times) {
                summary.files_written += 1;
                summary.rows += rows;
                summary.bytes += bytes;
                written_file = Some(FileRecord {
                    path: relative,
                    rows,
                    bytes,
                    first_time_ns: first_time,
                    last_time_ns: last_time,
                });
            }
        }
        match (prior, written_file) {
            (None, None) => {}
            (None, Some(file)) => {
                summary.units_new += 1;
                let record = UnitRecord {
                    kind: unit.kind.name().to_string(),
                    measurement: unit.measurement.clone(),
                    month: unit.month.to_string(),
                    rows: file.rows,
                    last_time_ns: file.last_time_ns,
                    files: vec![file],
                };
                let at = manifest.units.partition_point(|r| unit_order(r) < unit_order(&record));
                manifest.units.insert(at, record);
                save(&target, &manifest)?;
            }
            (Some(_), None) if !replace => summary.units_unchanged += 1,
            (Some(index), file) => {
                let record = &mut manifest.units[index];
                let old_files = if replace {
                    summary.units_rewritten += 1;
                    record.rows = 0;
                    record.last_time_ns = i64::MIN;
                    std::mem::take(&mut record.files)
                } else {
                    summary.units_appended += 1;
                    Vec::new()
                };
                if let Some(file) = file {
                    record.rows += file.rows;
                    record.last_time_ns = record.last_time_ns.max(file.last_time_ns);
                    record.files.push(file);
                }
                if record.files.is_empty() {
                    manifest.units.remove(index);
                }
                save(&target, &manifest)?;
                // Only once the manifest names the new file.
                for old in old_files {
                    target.remove(&old.path)?;
                    summary.files_removed += 1;
                }
            }
        }
        state.units_done += 1;
        progress(&state);
    }
    if summary.files_written > 0 || summary.files_removed > 0 || manifest.runs.is_empty() {
        manifest.runs.push(RunRecord {
            finished: format_rfc3339(crate::time::now_ns()),
            files_written: summary.files_written,
            rows: summary.rows,
            bytes: summary.bytes,
        });
        save(&target, &manifest)?;
    }
    Ok(summary)
}

fn partition_names(keys: &[PartitionKey]) -> String {
    if keys.is_empty() {
        return "none".to_string();
    }
    keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

fn unit_order(record: &UnitRecord) -> (&str, &str, &str) {
    (&record.kind, &record.measurement, &record.month)
}

fn save(target: &Target, manifest: &Manifest) -> Result<()> {
    let mut bytes =
        serde_json::to_vec_pretty(manifest).map_err(|e| Error::Invariant(format!("the export manifest does not serialize: {e}")))?;
    bytes.push(b'\n');
    target.write_small(MANIFEST_NAME, bytes)
}

/// The intersection of two ranges (possibly empty).
fn clip(a: TimeRange, b: TimeRange) -> TimeRange {
    TimeRange::new(a.start.max(b.start), a.end.min(b.end).max(a.start.max(b.start)))
}

/// Every row of the selected series in `range`, oldest first.
fn raw_query(selector: &SeriesSelector, range: TimeRange) -> Query {
    Query {
        selector: selector.clone(),
        fields: None,
        filters: Vec::new(),
        range,
        aggregates: Vec::new(),
        group_by: Vec::new(),
        every: None,
        fill: Fill::None,
        order: Order::Ascending,
        limit: None,
        offset: 0,
        cursor: None,
        lastpoint: false,
    }
}

/// Rows of the selected series in `range`.
fn count_rows(snapshot: &Snapshot, selector: &SeriesSelector, range: TimeRange) -> Result<u64> {
    if range.start >= range.end {
        return Ok(0);
    }
    let query = Query {
        aggregates: vec![Aggregate::count_rows()],
        ..raw_query(selector, range)
    };
    let (rows, _) = snapshot.query(&query)?.collect_rows()?;
    Ok(match rows.first().and_then(|row| row.values.first()) {
        Some(Some(FieldValue::I64(n))) => (*n).max(0) as u64,
        _ => 0,
    })
}

/// The (kind, measurement, month) units with rows in `range`, sorted.
fn units_of(snapshot: &Snapshot, selector: &SeriesSelector, range: TimeRange) -> Result<Vec<UnitKey>> {
    let mut measurements: BTreeSet<(SeriesKind, String)> = BTreeSet::new();
    for id in snapshot.select(selector)? {
        if let Some(key) = snapshot.series_key(id) {
            measurements.insert((key.kind(), key.measurement().to_string()));
        }
    }
    let mut units = Vec::new();
    for (kind, measurement) in measurements {
        let unit_selector = SeriesSelector {
            kind: Some(kind),
            measurement: Some(measurement.clone()),
            predicate: selector.predicate.clone(),
        };
        let edge = |order: Order| -> Result<Option<i64>> {
            let query = Query {
                order,
                limit: Some(1),
                ..raw_query(&unit_selector, range)
            };
            let (rows, _) = snapshot.query(&query)?.collect_rows()?;
            Ok(rows.first().and_then(|row| row.time))
        };
        let (Some(first), Some(last)) = (edge(Order::Ascending)?, edge(Order::Descending)?) else {
            continue;
        };
        let mut month = Month::of(first);
        while month <= Month::of(last) {
            units.push(UnitKey {
                kind,
                measurement: measurement.clone(),
                month,
            });
            month = month.next();
        }
    }
    units.sort();
    Ok(units)
}

/// Renames tag and value columns whose names are taken (see the module's documentation).
fn rename_taken_columns(tags: &mut [String], values: &mut [String]) {
    let mut taken: BTreeSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    for tag in tags {
        if taken.contains(tag.as_str()) {
            *tag = format!("tag_{tag}");
        }
        taken.insert(tag.clone());
    }
    for value in values {
        if taken.contains(value.as_str()) {
            *value = format!("field_{value}");
        }
        taken.insert(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_directories_or_s3_prefixes() {
        assert_eq!(Destination::parse("out/x").unwrap(), Destination::Directory("out/x".into()));
        let Destination::S3(config) = Destination::parse("s3://lake/annals/prod/").unwrap() else {
            panic!("an s3:// URL is a bucket");
        };
        assert_eq!((config.bucket.as_str(), config.prefix.as_str()), ("lake", "annals/prod/"));
        let Destination::S3(config) = Destination::parse("s3://lake").unwrap() else {
            panic!("an s3:// URL is a bucket");
        };
        assert_eq!(config.prefix, "");
        let reason = |text: &str| match Destination::parse(text) {
            Err(Error::InvalidInput { reason, .. }) => reason,
            other => panic!("{text:?} gave {other:?}"),
        };
        assert!(reason("s3:///x").contains("names no bucket"));
        assert!(reason("gs://b/x").contains("neither a directory nor an s3://"));
        assert!(reason(" ").contains("empty"));
    }

    #[test]
    fn partition_lists_are_checked() {
        assert_eq!(
            PartitionKey::parse_list("month, kind").unwrap(),
            [PartitionKey::Month, PartitionKey::Kind]
        );
        assert_eq!(PartitionKey::parse_list("none").unwrap(), []);
        assert!(
            matches!(PartitionKey::parse_list("kind,host"), Err(Error::InvalidInput { reason, .. }) if reason.contains("\"host\" is not kind, measurement or month"))
        );
        assert!(matches!(PartitionKey::parse_list("kind,kind"), Err(Error::InvalidInput { reason, .. }) if reason.contains("given twice")));
    }

    #[test]
    fn partition_values_are_escaped_as_hive_does() {
        assert_eq!(escape_partition_value("cpu"), "cpu");
        assert_eq!(escape_partition_value("a/b=c%"), "a%2Fb%3Dc%25");
        assert_eq!(escape_partition_value(""), "__HIVE_DEFAULT_PARTITION__");
        assert_eq!(escape_partition_value(".."), "%2E%2E");
        assert_eq!(escape_partition_value("naïve"), "naïve");
        let unit = UnitKey {
            kind: SeriesKind::Log,
            measurement: "app/web".into(),
            month: Month::new(2016, 1).unwrap(),
        };
        assert_eq!(unit_folder(&PartitionKey::default_list(), &unit), "kind=log/month=2016-01/");
        assert_eq!(unit_folder(&[PartitionKey::Measurement], &unit), "measurement=app%2Fweb/");
        assert_eq!(unit_folder(&[], &unit), "");
    }

    #[test]
    fn only_this_exports_files_count_as_its_own() {
        assert!(is_export_file("kind=metric/month=2016-01/part-00000.parquet"));
        assert!(is_export_file("part-12345678.parquet"));
        assert!(is_export_file("kind=log/.part-00003.parquet.tmp"));
        assert!(!is_export_file("notes.parquet"));
        assert!(!is_export_file("part-1.parquet"));
        assert!(!is_export_file("kind=log/part-00003.parquet.bak"));
    }

    #[test]
    fn taken_column_names_get_a_prefix() {
        let mut tags: Vec<String> = vec!["time".into(), "host".into(), "month".into()];
        let mut values: Vec<String> = vec!["host".into(), "kind".into(), "usage".into()];
        rename_taken_columns(&mut tags, &mut values);
        assert_eq!(tags, ["tag_time", "host", "tag_month"]);
        assert_eq!(values, ["field_host", "field_kind", "usage"]);
    }

    #[test]
    fn part_numbers_follow_the_files_of_their_folder() {
        let file = |path: &str| FileRecord {
            path: path.into(),
            rows: 1,
            bytes: 1,
            first_time_ns: 0,
            last_time_ns: 0,
        };
        let unit = |files: Vec<FileRecord>| UnitRecord {
            kind: "metric".into(),
            measurement: "cpu".into(),
            month: "2016-01".into(),
            rows: 1,
            last_time_ns: 0,
            files,
        };
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            partition: PartitionKey::default_list(),
            selection: Selection {
                kind: None,
                measurement: None,
                predicates: Vec::new(),
                from: None,
            },
            units: vec![
                unit(vec![
                    file("kind=metric/month=2016-01/part-00000.parquet"),
                    file("kind=metric/month=2016-01/part-00004.parquet"),
                ]),
                unit(vec![file("kind=metric/month=2016-02/part-00007.parquet")]),
            ],
            runs: Vec::new(),
        };
        assert_eq!(next_part(&manifest, "kind=metric/month=2016-01/"), 5);
        assert_eq!(next_part(&manifest, "kind=metric/month=2016-03/"), 0);
        assert_eq!(
            next_part(&manifest, "kind=metric/"),
            0,
            "files of sub-folders are not this folder's"
        );
    }
}
