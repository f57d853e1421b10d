//! Git commits and their per-file diffs (the original design's `CommitData`, `DiffData` and
//! `StorageResult`), and how they map onto rows.
//!
//! | row | measurement | tags | fields |
//! |---|---|---|---|
//! | a commit | `commit` | `repository`, `branch`, `author` | `commit_hash`, `message`, `author_email`, `pusher`, `commit_count`, `additions`, `deletions`, `diff_count` |
//! | a file of a commit | `commit_diff` | `repository` | `commit_hash`, `file_path`, `old_path`, `additions`, `deletions`, `binary`, `changes`, `diff` (bytes) or `diff_object` (sha256 key), `diff_bytes` |
//!
//! `author` is a tag so commits filter and group by author through the tag index (commit
//! counts per author are an ordinary query). A commit and its files are written in one batch, commit row first, so their record ids
//! are consecutive: the files of the commit with record id `n` are `n + 1 ..= n + diff_count`
//! at the same timestamp.

use super::{BatchRow, FieldValue, SeriesKey, SeriesKind};
use crate::error::{Error, Result};

/// Measurement of commit rows.
pub const COMMIT_MEASUREMENT: &str = "commit";
/// Measurement of the rows of a commit's files.
pub const DIFF_MEASUREMENT: &str = "commit_diff";

/// A git commit (the original `CommitData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitData {
    /// Hex object id: 40 digits for SHA-1, 64 for SHA-256. Unique in a store; stored in
    /// lower case.
    pub commit_hash: String,
    /// The full commit message.
    pub message: String,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub author_email: Option<String>,
    /// Nanoseconds since the epoch (the author date).
    pub timestamp: i64,
    /// `owner/repo`.
    pub repository: String,
    /// The branch the commit was pushed to or imported from.
    pub branch: String,
    /// Who pushed it.
    pub pusher: Option<String>,
    /// Commits this record stands for (1 unless a push was squashed into one record).
    pub commit_count: i64,
}

/// One file of a commit (the original `DiffData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffData {
    /// The path after the commit. A path that is not UTF-8 is kept in git's quoted form
    /// (`"caf\351.txt"`), which is how git prints it too.
    pub file_path: String,
    /// The path before the commit, for a rename.
    pub old_path: Option<String>,
    /// Lines added.
    pub additions: i64,
    /// Lines removed.
    pub deletions: i64,
    /// A binary file: git counts no lines (`-\t-` in `--numstat`), so additions and
    /// deletions are 0.
    pub binary: bool,
    /// A short summary of the change, free text.
    pub changes: Option<String>,
    /// The patch of this file, byte for byte.
    pub diff_content: Option<Vec<u8>>,
}

/// How a store request ended (the original `StorageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageStatus {
    /// Stored.
    Success,
    /// Not stored; [`StorageResult::message`] says why.
    Failed,
    /// A commit with this hash is stored already; nothing changed.
    Duplicate,
}

impl StorageStatus {
    /// `Success`, `Failed`, `Duplicate`, as the original design spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageStatus::Success => "Success",
            StorageStatus::Failed => "Failed",
            StorageStatus::Duplicate => "Duplicate",
        }
    }
}

/// Sizes of a stored commit, in [`StorageResult::metadata`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageMetadata {
    /// Lines added over all files.
    pub total_additions: i64,
    /// Lines removed over all files.
    pub total_deletions: i64,
    /// Number of files.
    pub files: u64,
    /// Diff bytes kept in the store's segments.
    pub inline_bytes: u64,
    /// Diff bytes kept in the object store.
    pub offloaded_bytes: u64,
}

/// The answer to storing one commit (the original `StorageResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageResult {
    /// True for [`StorageStatus::Success`].
    pub success: bool,
    /// What happened.
    pub status: StorageStatus,
    /// The commit's stable id (its record id), for `Success` and `Duplicate`.
    pub commit_id: Option<u64>,
    /// Why it failed, or what was found for a duplicate.
    pub message: String,
    /// The commit's timestamp, nanoseconds since the epoch.
    pub timestamp: i64,
    /// Sizes of what was stored (of the stored commit, for a duplicate when known).
    pub metadata: StorageMetadata,
}

impl StorageResult {
    /// The result as JSON with the original design's keys: `success`, `status`,
    /// `commit_id`, `message`, `timestamp` (RFC 3339) and `metadata` (`total_additions`,
    /// `total_deletions`, `files`, `inline_bytes`, `offloaded_bytes`).
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.metadata;
        serde_json::json!({
            "success": self.success,
            "status": self.status.as_str(),
            "commit_id": self.commit_id,
            "message": self.message,
            "timestamp": crate::time::format_rfc3339(self.timestamp),
            "metadata": {
                "total_additions": m.total_additions,
                "total_deletions": m.total_deletions,
                "files": m.files,
                "inline_bytes": m.inline_bytes,
                "offloaded_bytes": m.offloaded_bytes,
            },
        })
    }
}

/// The hash algorithm a commit hash belongs to, told by its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    /// 40 hex digits.
    Sha1,
    /// 64 hex digits.
    Sha256,
}

/// A commit hash in its binary form: the bytes and how many of them are used (20 or 32).
///
/// Ordered by bytes, so sorted hashes are sorted by their hex text too, and a hex prefix is a
/// range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitHash {
    bytes: [u8; 32],
    len: u8,
}

impl CommitHash {
    /// Parses 40 or 64 hex digits, either case.
    pub fn parse(text: &str) -> std::result::Result<CommitHash, String> {
        let len = match text.len() {
            40 => 20,
            64 => 32,
            n => {
                return Err(format!(
                    "commit_hash {text:?} has {n} characters; a git object id has 40 (SHA-1) or 64 (SHA-256) hex digits"
                ));
            }
        };
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(hi), Some(lo)) => bytes[i] = hi << 4 | lo,
                _ => return Err(format!("commit_hash {text:?} is not hexadecimal")),
            }
        }
        Ok(CommitHash { bytes, len })
    }

    /// Builds a hash from its raw bytes (20 or 32 of them).
    pub fn from_bytes(raw: &[u8]) -> Option<CommitHash> {
        if raw.len() != 20 && raw.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(CommitHash {
            bytes,
            len: raw.len() as u8,
        })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// SHA-1 or SHA-256.
    pub fn kind(&self) -> HashKind {
        if self.len == 20 { HashKind::Sha1 } else { HashKind::Sha256 }
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.len as usize * 2);
        for b in self.as_bytes() {
            out.push(DIGITS[(b >> 4) as usize] as char);
            out.push(DIGITS[(b & 15) as usize] as char);
        }
        out
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A file path as the commit store keeps it: a UTF-8 path as it is; a path that is not
/// UTF-8 (or that starts with `"`, so the two forms never meet) in git's quoted form, the
/// one `git log --numstat` prints with `core.quotePath` on: `"caf\351.txt"`.
pub fn path_text(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(text) if !text.starts_with('"') => text.to_string(),
        _ => quote_path(path),
    }
}

/// The bytes of a path kept by [`path_text`]: the inverse of it.
pub fn path_bytes(text: &str) -> Vec<u8> {
    unquote_path(text).unwrap_or_else(|| text.as_bytes().to_vec())
}

/// Git's C-style quoting of a path (`quote_c_style` with `core.quotePath` on): in double
/// quotes, `"` and `\` escaped, the usual C escapes for control characters, octal for the
/// rest of the control characters, DEL and every byte from 0x80 on.
pub fn quote_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for &b in path {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// The bytes of a path quoted by [`quote_path`]; `None` when `text` is not such a form.
fn unquote_path(text: &str) -> Option<Vec<u8>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let escaped = *inner.get(i)?;
        i += 1;
        out.push(match escaped {
            b'a' => 0x07,
            b'b' => 0x08,
            b't' => b'\t',
            b'n' => b'\n',
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'r' => b'\r',
            b'"' | b'\\' => escaped,
            b'0'..=b'3' => {
                let digits = inner.get(i..i + 2)?;
                i += 2;
                let octal = |d: u8| if (b'0'..=b'7').contains(&d) { Some(d - b'0') } else { None };
                (escaped - b'0') << 6 | octal(digits[0])? << 3 | octal(digits[1])?
            }
            _ => return None,
        });
    }
    Some(out)
}

impl CommitData {
    /// Checks what the store requires: a hash of the right length in hex, a repository, a
    /// branch, a positive commit count. Returns the parsed hash, or the reason.
    pub fn check(&self) -> std::result::Result<CommitHash, String> {
        let hash = CommitHash::parse(&self.commit_hash)?;
        if self.repository.trim().is_empty() {
            return Err("repository is empty".to_string());
        }
        if self.branch.is_empty() {
            return Err("branch is empty".to_string());
        }
        if self.author.is_empty() {
            return Err("author is empty".to_string());
        }
        if self.commit_count < 1 {
            return Err(format!("commit_count is {}; it must be at least 1", self.commit_count));
        }
        Ok(hash)
    }

    /// The series of this commit's row.
    pub fn series_key(&self) -> Result<SeriesKey> {
        SeriesKey::new(
            SeriesKind::Commit,
            COMMIT_MEASUREMENT,
            [
                ("author", self.author.as_str()),
                ("branch", self.branch.as_str()),
                ("repository", self.repository.as_str()),
            ],
        )
    }

    /// The series of this commit's file rows.
    pub fn diff_series_key(&self) -> Result<SeriesKey> {
        SeriesKey::new(SeriesKind::Commit, DIFF_MEASUREMENT, [("repository", self.repository.as_str())])
    }

    /// The fields of the commit row, with the totals of its files.
    pub(crate) fn fields(&self, hash: &CommitHash, diffs: &[DiffData]) -> Vec<(&'static str, FieldValue)> {
        let mut fields = vec![
            ("commit_hash", FieldValue::Str(hash.to_hex())),
            ("message", FieldValue::Str(self.message.clone())),
        ];
        if let Some(email) = &self.author_email {
            fields.push(("author_email", FieldValue::Str(email.clone())));
        }
        if let Some(pusher) = &self.pusher {
            fields.push(("pusher", FieldValue::Str(pusher.clone())));
        }
        fields.push(("commit_count", FieldValue::I64(self.commit_count)));
        fields.push(("additions", FieldValue::I64(diffs.iter().map(|d| d.additions).sum())));
        fields.push(("deletions", FieldValue::I64(diffs.iter().map(|d| d.deletions).sum())));
        fields.push(("diff_count", FieldValue::I64(diffs.len() as i64)));
        fields
    }
}

impl DiffData {
    /// Checks a file entry: a path, counts that are not negative, no counts on a binary file.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.file_path.is_empty() {
            return Err("a diff has an empty file_path".to_string());
        }
        if self.additions < 0 || self.deletions < 0 {
            return Err(format!(
                "diff of {:?} has negative counts (additions {}, deletions {})",
                self.file_path, self.additions, self.deletions
            ));
        }
        if self.binary && (self.additions != 0 || self.deletions != 0) {
            return Err(format!(
                "diff of {:?} is binary but counts lines (additions {}, deletions {}); git counts none",
                self.file_path, self.additions, self.deletions
            ));
        }
        Ok(())
    }
}

/// The fields of a file row that describe the file, its diff bytes aside.
pub(crate) const FILE_FIELDS: [&str; 9] = [
    "commit_hash",
    "file_path",
    "old_path",
    "additions",
    "deletions",
    "binary",
    "changes",
    "diff_bytes",
    "diff_object",
];

impl SeriesKey {
    /// The fields a search hit in this series shows, when not all of them: a commit's
    /// file rows leave out the diff bytes.
    pub(crate) fn hit_fields(&self) -> Option<Vec<String>> {
        self.holds_diffs().then(|| FILE_FIELDS.iter().map(|f| f.to_string()).collect())
    }

    /// True for the series of the file rows of commits (their diffs).
    pub(crate) fn holds_diffs(&self) -> bool {
        self.kind() == SeriesKind::Commit && self.measurement() == DIFF_MEASUREMENT
    }

    /// True for the series of commit rows, whose `commit_hash` is unique in a store.
    pub fn holds_commits(&self) -> bool {
        self.kind() == SeriesKind::Commit && self.measurement() == COMMIT_MEASUREMENT
    }
}

/// The commit rows of a batch (as written or as replayed from the WAL): each row's index
/// and hash. `is_commit_series` tells, for each of the batch's `series_count` local
/// series, whether it [holds commits](SeriesKey::holds_commits); a batch without one costs
/// that check and nothing else. A commit row without a valid `commit_hash` is refused, so
/// the unique index covers every commit row.
pub(crate) fn commit_rows(
    series_count: usize,
    is_commit_series: impl Fn(usize) -> bool,
    field_names: &[String],
    rows: &[BatchRow],
    values: &[(u32, FieldValue)],
) -> Result<Vec<(usize, CommitHash)>> {
    if !(0..series_count).any(&is_commit_series) {
        return Ok(Vec::new());
    }
    let is_commit_series: Vec<bool> = (0..series_count).map(is_commit_series).collect();
    let Some(hash_field) = field_names.iter().position(|n| n == "commit_hash") else {
        return Err(Error::invalid("a commit row has no commit_hash field"));
    };
    let mut found = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if !is_commit_series.get(row.series as usize).copied().unwrap_or(false) {
            continue;
        }
        let start = row.first_value as usize;
        let fields = values.get(start..start + row.value_count as usize).unwrap_or(&[]);
        let hash = match fields.iter().find(|(f, _)| *f as usize == hash_field) {
            Some((_, FieldValue::Str(text))) => CommitHash::parse(text).map_err(Error::invalid)?,
            Some(_) => return Err(Error::invalid("commit_hash must be a string")),
            None => return Err(Error::invalid("a commit row has no commit_hash field")),
        };
        found.push((i, hash));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(hash: &str) -> CommitData {
        CommitData {
            commit_hash: hash.to_string(),
            message: "fix".into(),
            author: "ada".into(),
            author_email: None,
            timestamp: 1,
            repository: "acme/app".into(),
            branch: "main".into(),
            pusher: None,
            commit_count: 1,
        }
    }

    #[test]
    fn hashes_parse_in_both_lengths_and_cases() {
        let sha1 = "0123456789ABCDEF0123456789abcdef01234567";
        let hash = CommitHash::parse(sha1).unwrap();
        assert_eq!(hash.kind(), HashKind::Sha1);
        assert_eq!(hash.to_hex(), sha1.to_ascii_lowercase());
        assert_eq!(CommitHash::from_bytes(hash.as_bytes()), Some(hash));
        let sha256 = "f".repeat(64);
        assert_eq!(CommitHash::parse(&sha256).unwrap().kind(), HashKind::Sha256);
        assert!(CommitHash::parse("abc").unwrap_err().contains("has 3 characters"));
        assert!(CommitHash::parse(&"g".repeat(40)).unwrap_err().contains("not hexadecimal"));
        // Ordered as the hex text is.
        let low = CommitHash::parse(&format!("0f{}", "0".repeat(38))).unwrap();
        let high = CommitHash::parse(&format!("10{}", "0".repeat(38))).unwrap();
        assert!(low < high);
    }

    #[test]
    fn commits_and_diffs_are_checked_with_reasons() {
        assert!(commit(&"a".repeat(40)).check().is_ok());
        let mut bad = commit(&"a".repeat(40));
        bad.repository = " ".into();
        assert_eq!(bad.check().unwrap_err(), "repository is empty");
        let mut bad = commit(&"a".repeat(40));
        bad.commit_count = 0;
        assert_eq!(bad.check().unwrap_err(), "commit_count is 0; it must be at least 1");
        let diff = DiffData {
            file_path: "src/a.rs".into(),
            old_path: None,
            additions: -1,
            deletions: 0,
            binary: false,
            changes: None,
            diff_content: None,
        };
        assert_eq!(
            diff.check().unwrap_err(),
            "diff of \"src/a.rs\" has negative counts (additions -1, deletions 0)"
        );
        let binary = DiffData {
            additions: 3,
            binary: true,
            ..diff
        };
        assert!(binary.check().unwrap_err().contains("is binary but counts lines"));
    }

    #[test]
    fn paths_that_are_not_utf8_keep_their_bytes_in_gits_quoted_form() {
        assert_eq!(path_text(b"src/a.rs"), "src/a.rs");
        assert_eq!(path_text("café.txt".as_bytes()), "café.txt");
        assert_eq!(path_text(b"caf\xe9.txt"), r#""caf\351.txt""#);
        assert_eq!(path_text(b"\"q\".txt"), r#""\"q\".txt""#);
        assert_eq!(quote_path(b"a\tb\\c\x7f"), r#""a\tb\\c\177""#);
        for raw in [&b"caf\xe9.txt"[..], b"\"q\"", b"plain", "é\u{1}".as_bytes(), b"\xff\xfe\n\\"] {
            assert_eq!(path_bytes(&path_text(raw)), raw, "{raw:?}");
        }
        // A UTF-8 path that looks quoted only because of its text is not unquoted wrongly:
        // path_text quotes it, so its stored form round-trips.
        assert_eq!(path_bytes(&path_text(br#""\351""#)), br#""\351""#);
    }

    #[test]
    fn a_commit_row_carries_the_totals_of_its_files() {
        let c = commit(&"a".repeat(40));
        let file = |a, d| DiffData {
            file_path: "x".into(),
            old_path: None,
            additions: a,
            deletions: d,
            binary: false,
            changes: None,
            diff_content: None,
        };
        let hash = c.check().unwrap();
        let fields = c.fields(&hash, &[file(3, 1), file(2, 0)]);
        let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(get("additions"), Some(FieldValue::I64(5)));
        assert_eq!(get("deletions"), Some(FieldValue::I64(1)));
        assert_eq!(get("diff_count"), Some(FieldValue::I64(2)));
        assert_eq!(
            c.series_key().unwrap().to_string(),
            "commit,author=ada,branch=main,repository=acme/app"
        );
    }
}
