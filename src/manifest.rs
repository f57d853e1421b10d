//! The manifest: the one file that says which segments make up the store and where WAL
//! replay starts. It is rewritten whole and atomically (temporary file, fsync, rename,
//! fsync of the directory) at every flush, so a crash leaves the old or the new version.
//!
//! A sealed file ([`FileKind::Manifest`]: magic `ANNALMAN`, version, body length, body,
//! crc32 of the body; version 1, without summaries, retention or tiers, is still read).
//! The body's fields are fixed-width little endian; see `docs/FORMAT.md`.

use crate::codec::bytes::Reader;
use crate::error::{Error, Result};
use crate::files::{FileKind, SEALED_BODY_OFFSET};
use crate::io;
use crate::retention::Horizon;
use crate::time::{Bucket, Month, NANOS_PER_DAY, NANOS_PER_HOUR};
use crate::wal::WalPosition;
use serde::Serialize;
use std::path::{Path, PathBuf};

const SEGMENT_ENTRY_LEN_V1: usize = 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 8 + 1;
/// Longest retention rule name stored.
const MAX_RULE_NAME: usize = 1024;

/// The time resolution of stored data: the detail rows as written, or a summary tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// The rows as written.
    Detail,
    /// Hourly summaries.
    Hour,
    /// Daily (UTC) summaries.
    Day,
    /// ISO-week summaries (Monday 00:00 UTC).
    Week,
}

impl Resolution {
    /// The summary tiers, finest first.
    pub const SUMMARIES: [Resolution; 3] = [Resolution::Hour, Resolution::Day, Resolution::Week];

    /// `detail`, `hour`, `day`, `week`.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Detail => "detail",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
            Resolution::Week => "week",
        }
    }

    /// The bucket of a summary tier; `None` for detail.
    pub fn bucket(self) -> Option<Bucket> {
        match self {
            Resolution::Detail => None,
            Resolution::Hour => Some(Bucket::Fixed(NANOS_PER_HOUR)),
            Resolution::Day => Some(Bucket::Fixed(NANOS_PER_DAY)),
            Resolution::Week => Some(Bucket::Week),
        }
    }

    /// The byte the manifest stores.
    pub(crate) fn tier_byte(self) -> u8 {
        match self {
            Resolution::Detail => 0,
            Resolution::Hour => 1,
            Resolution::Day => 2,
            Resolution::Week => 3,
        }
    }

    pub(crate) fn from_tier_byte(b: u8) -> Option<Resolution> {
        Some(match b {
            0 => Resolution::Detail,
            1 => Resolution::Hour,
            2 => Resolution::Day,
            3 => Resolution::Week,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the manifest records of one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub month: Month,
    /// Unique per store; orders flushes.
    pub generation: u64,
    pub file_len: u64,
    pub file_crc: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: u64,
    pub points: u64,
    pub series: u32,
    /// Lowest sequence number among the segment's rows.
    pub min_seq: u64,
    /// Highest sequence number the producing flush covered. Every row of a segment with a
    /// higher `max_seq` (in the same month) was written later; duplicates of a metric
    /// timestamp resolve in its favour.
    pub max_seq: u64,
    /// 0 for a flush; compaction raises it.
    pub level: u8,
    /// Detail rows, or a summary tier. For summaries, `min_seq`/`max_seq` hold the
    /// producing run's version (later runs win a bucket) rather than write sequence numbers.
    pub tier: Resolution,
}

/// What names a segment file: its tier, month and generation (the segments one flush
/// writes for several months share a generation).
pub(crate) type SegmentId = (Resolution, Month, u64);

impl SegmentMeta {
    /// The segment's name.
    pub(crate) fn id(&self) -> SegmentId {
        (self.tier, self.month, self.generation)
    }

    /// `<data>/<YYYY-MM>/<generation>.seg`, or `<data>/summaries/<tier>/<YYYY-MM>/…`.
    pub(crate) fn path(&self, data_dir: &Path) -> PathBuf {
        segment_path(&tier_dir(data_dir, self.tier), self.month, self.generation)
    }
}

/// The directory holding a tier's month directories: `data/` for detail,
/// `data/summaries/<hour|day|week>/` for summaries.
pub(crate) fn tier_dir(data_dir: &Path, tier: Resolution) -> PathBuf {
    match tier {
        Resolution::Detail => data_dir.to_path_buf(),
        t => data_dir.join(SUMMARIES_DIR).join(t.name()),
    }
}

/// Name of the directory of summary tiers under `data/`.
pub(crate) const SUMMARIES_DIR: &str = "summaries";

/// Where summarising stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SummaryState {
    /// Every day before this (a UTC day start) has been summarised; `None` before the
    /// first run.
    pub watermark: Option<i64>,
    /// Day starts before the watermark that received rows after they were summarised.
    pub dirty_days: std::collections::BTreeSet<i64>,
}

/// Path of a segment file.
pub(crate) fn segment_path(data_dir: &Path, month: Month, generation: u64) -> PathBuf {
    data_dir.join(month.to_string()).join(format!("{generation:020}.seg"))
}

/// Parses a segment file name into its generation.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The manifest's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub next_generation: u64,
    /// Highest sequence number in any segment.
    pub last_seq: u64,
    /// Replay starts here.
    pub wal_checkpoint: WalPosition,
    /// The catalog file must hold at least this many series.
    pub catalog_series: u32,
    /// Detail segments, sorted by (month, generation).
    pub segments: Vec<SegmentMeta>,
    /// Summary segments, sorted by (tier, month, generation).
    pub summaries: Vec<SegmentMeta>,
    pub summary: SummaryState,
    /// Horizons retention applied, by rule name (`default`, `kind:log`, `measurement:cpu`).
    pub horizons: std::collections::BTreeMap<String, Horizon>,
    /// Months restored from an archive: retention leaves their detail alone.
    pub pinned: std::collections::BTreeSet<Month>,
}

impl Manifest {
    /// The segments of a tier's list: detail, or the summaries (all summary tiers).
    pub(crate) fn list(&self, tier: Resolution) -> &Vec<SegmentMeta> {
        match tier {
            Resolution::Detail => &self.segments,
            _ => &self.summaries,
        }
    }

    /// [`Manifest::list`], to change; keep it sorted by (tier, month, generation).
    pub(crate) fn list_mut(&mut self, tier: Resolution) -> &mut Vec<SegmentMeta> {
        match tier {
            Resolution::Detail => &mut self.segments,
            _ => &mut self.summaries,
        }
    }

    /// The manifest of a new store whose WAL starts in file 1.
    pub(crate) fn empty() -> Manifest {
        Manifest {
            next_generation: 1,
            last_seq: 0,
            wal_checkpoint: WalPosition::start_of(1),
            catalog_series: 0,
            segments: Vec::new(),
            summaries: Vec::new(),
            summary: SummaryState::default(),
            horizons: Default::default(),
            pinned: Default::default(),
        }
    }

    pub(crate) fn path(dir: &Path) -> PathBuf {
        FileKind::Manifest.path(dir)
    }

    /// Reads `<dir>/MANIFEST`; `Ok(None)` when there is none.
    pub(crate) fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = Manifest::path(dir);
        let Some(bytes) = io::read_file_if_exists(&path)? else {
            return Ok(None);
        };
        Manifest::decode(&path, &bytes).map(Some)
    }

    /// Writes the manifest atomically and durably.
    pub(crate) fn store(&self, fs: &io::Fs, dir: &Path) -> Result<()> {
        fs.write_file_atomic(&Manifest::path(dir), &self.encode())
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + (self.segments.len() + self.summaries.len()) * (SEGMENT_ENTRY_LEN_V1 + 1));
        body.extend_from_slice(&self.next_generation.to_le_bytes());
        body.extend_from_slice(&self.last_seq.to_le_bytes());
        body.extend_from_slice(&self.wal_checkpoint.file_no.to_le_bytes());
        body.extend_from_slice(&self.wal_checkpoint.offset.to_le_bytes());
        body.extend_from_slice(&self.catalog_series.to_le_bytes());
        for list in [&self.segments, &self.summaries] {
            body.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for s in list {
                body.extend_from_slice(&s.month.index().to_le_bytes());
                body.extend_from_slice(&s.generation.to_le_bytes());
                body.extend_from_slice(&s.file_len.to_le_bytes());
                body.extend_from_slice(&s.file_crc.to_le_bytes());
                body.extend_from_slice(&s.min_ts.to_le_bytes());
                body.extend_from_slice(&s.max_ts.to_le_bytes());
                body.extend_from_slice(&s.rows.to_le_bytes());
                body.extend_from_slice(&s.points.to_le_bytes());
                body.extend_from_slice(&s.series.to_le_bytes());
                body.extend_from_slice(&s.min_seq.to_le_bytes());
                body.extend_from_slice(&s.max_seq.to_le_bytes());
                body.push(s.level);
                body.push(s.tier.tier_byte());
            }
        }
        body.extend_from_slice(&self.summary.watermark.unwrap_or(i64::MIN).to_le_bytes());
        body.extend_from_slice(&(self.summary.dirty_days.len() as u32).to_le_bytes());
        for day in &self.summary.dirty_days {
            body.extend_from_slice(&day.to_le_bytes());
        }
        body.extend_from_slice(&(self.horizons.len() as u32).to_le_bytes());
        for (rule, h) in &self.horizons {
            body.extend_from_slice(&(rule.len() as u32).to_le_bytes());
            body.extend_from_slice(rule.as_bytes());
            body.extend_from_slice(&h.detail.to_le_bytes());
            body.extend_from_slice(&h.summaries.to_le_bytes());
        }
        body.extend_from_slice(&(self.pinned.len() as u32).to_le_bytes());
        for month in &self.pinned {
            body.extend_from_slice(&month.index().to_le_bytes());
        }
        FileKind::Manifest.seal(&body)
    }

    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let (version, body) = FileKind::Manifest.unseal(path, bytes)?;
        const AT: u64 = SEALED_BODY_OFFSET as u64;
        let malformed = |why: &str| Error::malformed(path, AT, why);
        let mut r = Reader::new(body);
        let field = |e: crate::codec::DecodeError| Error::malformed(path, AT, e.0);
        let next_generation = r.u64_le().map_err(field)?;
        let last_seq = r.u64_le().map_err(field)?;
        let wal_checkpoint = WalPosition {
            file_no: r.u64_le().map_err(field)?,
            offset: r.u64_le().map_err(field)?,
        };
        let catalog_series = r.u32_le().map_err(field)?;
        let read_list = |r: &mut Reader<'_>, tiered: bool| -> Result<Vec<SegmentMeta>> {
            let count = r.u32_le().map_err(field)? as usize;
            let entry_len = SEGMENT_ENTRY_LEN_V1 + usize::from(tiered);
            if count.checked_mul(entry_len).is_none_or(|n| n > r.remaining()) {
                return Err(malformed("segment count does not match the body length"));
            }
            let mut segments = Vec::with_capacity(count);
            for _ in 0..count {
                let month_index = r.u32_le().map_err(field)? as i32;
                let month = Month::from_index(month_index).ok_or_else(|| malformed("segment month out of range"))?;
                segments.push(SegmentMeta {
                    month,
                    generation: r.u64_le().map_err(field)?,
                    file_len: r.u64_le().map_err(field)?,
                    file_crc: r.u32_le().map_err(field)?,
                    min_ts: r.i64_le().map_err(field)?,
                    max_ts: r.i64_le().map_err(field)?,
                    rows: r.u64_le().map_err(field)?,
                    points: r.u64_le().map_err(field)?,
                    series: r.u32_le().map_err(field)?,
                    min_seq: r.u64_le().map_err(field)?,
                    max_seq: r.u64_le().map_err(field)?,
                    level: r.u8().map_err(field)?,
                    tier: if tiered {
                        Resolution::from_tier_byte(r.u8().map_err(field)?).ok_or_else(|| malformed("unknown segment tier"))?
                    } else {
                        Resolution::Detail
                    },
                });
            }
            Ok(segments)
        };
        let tiered = version >= 2;
        let segments = read_list(&mut r, tiered)?;
        let mut summaries = Vec::new();
        let mut summary = SummaryState::default();
        let mut horizons = std::collections::BTreeMap::new();
        let mut pinned = std::collections::BTreeSet::new();
        if tiered {
            summaries = read_list(&mut r, true)?;
            let watermark = r.i64_le().map_err(field)?;
            summary.watermark = (watermark != i64::MIN).then_some(watermark);
            let days = r.u32_le().map_err(field)? as usize;
            if days.checked_mul(8).is_none_or(|n| n > r.remaining()) {
                return Err(malformed("dirty day count does not match the body length"));
            }
            for _ in 0..days {
                summary.dirty_days.insert(r.i64_le().map_err(field)?);
            }
            let rules = r.u32_le().map_err(field)? as usize;
            for _ in 0..rules {
                let len = r.u32_le().map_err(field)? as usize;
                if len > MAX_RULE_NAME {
                    return Err(malformed("retention rule name too long"));
                }
                let name = std::str::from_utf8(r.bytes(len).map_err(field)?)
                    .map_err(|_| malformed("retention rule name is not UTF-8"))?
                    .to_owned();
                let horizon = Horizon {
                    detail: r.i64_le().map_err(field)?,
                    summaries: r.i64_le().map_err(field)?,
                };
                horizons.insert(name, horizon);
            }
            let months = r.u32_le().map_err(field)? as usize;
            if months.checked_mul(4).is_none_or(|n| n > r.remaining()) {
                return Err(malformed("pinned month count does not match the body length"));
            }
            for _ in 0..months {
                let index = r.u32_le().map_err(field)? as i32;
                pinned.insert(Month::from_index(index).ok_or_else(|| malformed("pinned month out of range"))?);
            }
            if r.remaining() != 0 {
                return Err(malformed("trailing bytes in the manifest body"));
            }
        } else if r.remaining() != 0 {
            return Err(malformed("segment count does not match the body length"));
        }
        for pair in segments.windows(2) {
            if (pair[0].month, pair[0].generation) >= (pair[1].month, pair[1].generation) {
                return Err(malformed("segments are not sorted by month and generation"));
            }
        }
        if segments.iter().any(|s| s.tier != Resolution::Detail) || summaries.iter().any(|s| s.tier == Resolution::Detail) {
            return Err(malformed("a segment is listed under the wrong tier"));
        }
        for pair in summaries.windows(2) {
            if (pair[0].tier, pair[0].month, pair[0].generation) >= (pair[1].tier, pair[1].month, pair[1].generation) {
                return Err(malformed("summary segments are not sorted by tier, month and generation"));
            }
        }
        if segments.iter().chain(&summaries).any(|s| s.generation >= next_generation) {
            return Err(malformed("a segment generation is not below next_generation"));
        }
        Ok(Manifest {
            next_generation,
            last_seq,
            wal_checkpoint,
            catalog_series,
            segments,
            summaries,
            summary,
            horizons,
            pinned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::empty();
        m.next_generation = 9;
        m.last_seq = 1234;
        m.catalog_series = 17;
        m.wal_checkpoint = WalPosition::start_of(5);
        for (month, generation) in [("2016-01", 3u64), ("2016-01", 8), ("2016-02", 8)] {
            m.segments.push(SegmentMeta {
                month: Month::parse(month).unwrap(),
                generation,
                file_len: 4096,
                file_crc: 0xdead_beef,
                min_ts: -5,
                max_ts: 99,
                rows: 10,
                points: 100,
                series: 2,
                min_seq: 1,
                max_seq: 1234,
                level: 0,
                tier: Resolution::Detail,
            });
        }
        m.summaries.push(SegmentMeta {
            tier: Resolution::Day,
            generation: 5,
            ..m.segments[0].clone()
        });
        m.summary.watermark = Some(86_400_000_000_000);
        m.summary.dirty_days.insert(0);
        m.horizons.insert("measurement:cpu".into(), Horizon { detail: 1, summaries: -1 });
        m.pinned.insert(Month::parse("2015-12").unwrap());
        m
    }

    #[test]
    fn manifests_round_trip_and_reject_damage() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample();
        m.store(&io::Fs::default(), dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m.clone()));
        let bytes = m.encode();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x04;
            assert!(Manifest::decode(Path::new("MANIFEST"), &damaged).is_err(), "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(Path::new("MANIFEST"), &bytes[..cut]).is_err());
        }
    }

    #[test]
    fn segment_names() {
        let p = segment_path(Path::new("data"), Month::parse("2016-01").unwrap(), 42);
        assert_eq!(p, Path::new("data/2016-01/00000000000000000042.seg"));
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
    }
}
