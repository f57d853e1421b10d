//! The one error type of annals.
//!
//! Every fallible public function returns [`Result<T>`]. Variants are chosen so that a caller
//! can act on them: retry after freeing disk ([`Error::DiskFull`]), reopen after a failure
//! ([`Error::Poisoned`]), run `annals verify --repair` ([`Error::Corruption`]), fix its input
//! ([`Error::InvalidInput`], [`Error::LimitExceeded`]).

use std::fmt;
use std::path::{Path, PathBuf};

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in annals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "write", "fsync", "rename".
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The disk is full. Nothing partial was acknowledged; free space and retry (after reopen
    /// when the store reports itself poisoned).
    #[error("no space left on the device holding {} while trying to {op}", path.display())]
    DiskFull {
        /// What was being done.
        op: &'static str,
        /// The file being written.
        path: PathBuf,
    },

    /// Bytes on disk fail a checksum or do not decode. The data is never returned; run
    /// `annals verify --repair` to truncate or quarantine the damaged part.
    #[error("corruption in {} at offset {offset}: {kind}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged record, block or structure.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },

    /// A file was written by a newer (or unknown) format version.
    #[error("{}: format version {found} is not supported (this build reads version {supported})", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found in its header.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },

    /// A configured bound was exceeded; see [`crate::Limits`].
    #[error("{limit} exceeded: {value} > {max}{}", context.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The offending value (a length, a count).
        value: u64,
        /// The configured maximum.
        max: u64,
        /// What the value belongs to, e.g. the tag key, when known.
        context: Option<String>,
    },

    /// Input that cannot be accepted: a malformed line, an empty measurement name, a
    /// timestamp that cannot be parsed.
    #[error("{}{reason}", location(*line, *column))]
    InvalidInput {
        /// 1-based line number within the input, when the input has lines.
        line: Option<u64>,
        /// 1-based byte column within the line, when known.
        column: Option<u64>,
        /// What is wrong, in words a user can act on.
        reason: String,
    },

    /// An earlier write or fsync failed, so the state of the write-ahead log is unknown.
    /// Every later write fails with this error until the store is reopened.
    #[error("the store refuses writes after an earlier failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the handle.
        cause: String,
    },

    /// Another process (or another handle in this process) has the store open.
    #[error("{} is locked by another annals handle", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// There is no store at the path and the options said not to create one.
    #[error("no annals store at {} (create one with `annals ingest` or `annals demo`)", path.display())]
    NotFound {
        /// The data directory.
        path: PathBuf,
    },

    /// The full-text index could not be read or written. It is derived from the segments:
    /// `annals verify --repair` removes it and the next open rebuilds it.
    #[error("full-text index {}: {reason}", path.display())]
    TextIndex {
        /// The index directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The handle was closed.
    #[error("the store is closed")]
    Closed,

    /// The object store (an S3-compatible bucket) failed a request or refused its
    /// configuration; nothing that needed it was stored.
    #[error("object store {location}: {reason}")]
    ObjectStore {
        /// The bucket and key, `s3://bucket/key`.
        location: String,
        /// What the store answered.
        reason: String,
    },

    /// A git repository could not be read (an import of its history).
    #[error("git repository {}: {reason}", path.display())]
    Git {
        /// The repository given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A batch holds a commit whose hash the store has already, or holds one hash twice.
    /// Commit hashes are unique; nothing of the batch was written.
    #[error("commit {hash} {}", if *in_batch { "appears twice in the batch" } else { "is stored already" })]
    DuplicateCommit {
        /// The hash, lower-case hex.
        hash: String,
        /// True when the batch itself holds the hash twice.
        in_batch: bool,
    },

    /// A lifecycle operation (compaction, archive, restore, retention) was refused because
    /// of the store's state, e.g. restoring a month that already holds data. Nothing was
    /// changed.
    #[error("{reason}")]
    Refused {
        /// Why, in words a user can act on.
        reason: String,
    },

    /// A query uses a construct annals does not evaluate (a PromQL function or modifier
    /// outside the supported set); nothing was read.
    #[error("{what} is not supported by annals")]
    Unsupported {
        /// The construct, as the query wrote it (`function holt_winters`).
        what: String,
    },

    /// A query that parsed could not be evaluated on this data: a rule of its language was
    /// broken by the series it met (PromQL's one-to-one matching finding many matches, two
    /// results with the same labels).
    #[error("{reason}")]
    QueryExecution {
        /// What happened, naming the series.
        reason: String,
    },

    /// A consistency check of the store's own output failed (for example a merged segment
    /// that lost rows). The operation was abandoned and nothing was changed; this is a bug
    /// worth reporting.
    #[error("internal check failed: {0}; the operation was abandoned and the store is unchanged")]
    Invariant(String),
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        (None, Some(c)) => format!("column {c}: "),
        (None, None) => String::new(),
    }
}

/// What exactly is wrong with corrupt bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A stored crc32 does not match the bytes it covers.
    Checksum {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// The file ends before a structure it declares.
    Truncated {
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The file does not start (or end) with the expected magic bytes.
    BadMagic,
    /// The bytes pass their checksum but do not decode, or contradict another structure.
    Malformed(String),
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::Checksum { stored, computed } => {
                write!(f, "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            CorruptionKind::Truncated { needed, available } => {
                write!(f, "truncated (needs {needed} bytes, {available} available)")
            }
            CorruptionKind::BadMagic => f.write_str("bad magic bytes"),
            CorruptionKind::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

/// The named bounds of [`crate::Limits`], reported by [`Error::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Distinct series in the catalog.
    Series,
    /// Tags on one series.
    TagsPerSeries,
    /// Bytes in a measurement name, tag key or field name.
    NameLength,
    /// Bytes in a tag value.
    TagValueLength,
    /// Bytes in a string field value.
    StringValueLength,
    /// Fields on one row.
    FieldsPerRow,
    /// Rows in one batch.
    BatchRows,
    /// Encoded bytes of one batch.
    BatchBytes,
    /// Bytes in one input line.
    LineLength,
    /// Series one query reads.
    QuerySeries,
    /// Values one query decodes.
    QueryPointsScanned,
    /// Rows one query produces.
    QueryResultRows,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Series => "max_series",
            Limit::TagsPerSeries => "max_tags_per_series",
            Limit::NameLength => "max_name_bytes",
            Limit::TagValueLength => "max_tag_value_bytes",
            Limit::StringValueLength => "max_string_value_bytes",
            Limit::FieldsPerRow => "max_fields_per_row",
            Limit::BatchRows => "max_batch_rows",
            Limit::BatchBytes => "max_batch_bytes",
            Limit::LineLength => "max_line_bytes",
            Limit::QuerySeries => "query max_series",
            Limit::QueryPointsScanned => "query max_points_scanned",
            Limit::QueryResultRows => "query max_result_rows",
        })
    }
}

impl Error {
    /// Wraps an I/O error with the operation and path, turning ENOSPC into [`Error::DiskFull`].
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return Error::DiskFull {
                op,
                path: path.to_path_buf(),
            };
        }
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corruption(file: &Path, offset: u64, kind: CorruptionKind) -> Error {
        Error::Corruption {
            file: file.to_path_buf(),
            offset,
            kind,
        }
    }

    pub(crate) fn malformed(file: &Path, offset: u64, why: impl Into<String>) -> Error {
        Error::corruption(file, offset, CorruptionKind::Malformed(why.into()))
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            line: None,
            column: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(limit: Limit, value: u64, max: u64) -> Error {
        Error::LimitExceeded {
            limit,
            value,
            max,
            context: None,
        }
    }

    /// Attaches a 1-based line number to an [`Error::InvalidInput`] or
    /// [`Error::LimitExceeded`] that has none; other errors are returned unchanged.
    pub fn at_line(self, line_number: u64) -> Error {
        match self {
            Error::InvalidInput {
                line: None,
                column,
                reason,
            } => Error::InvalidInput {
                line: Some(line_number),
                column,
                reason,
            },
            Error::LimitExceeded {
                limit,
                value,
                max,
                context,
            } => Error::LimitExceeded {
                limit,
                value,
                max,
                context: Some(match context {
                    Some(c) => format!("line {line_number}: {c}"),
                    None => format!("line {line_number}"),
                }),
            },
            other => other,
        }
    }

    /// True for [`Error::DiskFull`] from creating or writing a file: nothing was
    /// acknowledged, and the operation can be retried once space is freed. A full disk
    /// reported by an fsync is not retryable: what reached the disk is unknown.
    pub fn is_retryable_disk_full(&self) -> bool {
        matches!(self, Error::DiskFull { op, .. } if !op.starts_with("fsync"))
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}
