//! The manifest: the one file that says which segments make up the store and where WAL
//! replay starts. It is rewritten whole and atomically (temporary file, fsync, rename,
//! fsync of the directory) at every flush, so a crash leaves the old or the new version.
//!
//! Layout: magic `ANNALMAN`, version u32 LE, body length u32 LE, body, crc32 of the body.
//! The body's fields are fixed-width little endian; see `docs/FORMAT.md`.

use crate::codec::bytes::Reader;
use crate::error::{CorruptionKind, Error, Result};
use crate::io;
use crate::time::Month;
use crate::wal::WalPosition;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ANNALMAN";
/// Manifest format version.
pub(crate) const VERSION: u32 = 1;
const SEGMENT_ENTRY_LEN: usize = 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 8 + 1;

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
}

impl SegmentMeta {
    /// `<data>/<YYYY-MM>/<generation>.seg`.
    pub(crate) fn path(&self, data_dir: &Path) -> PathBuf {
        segment_path(data_dir, self.month, self.generation)
    }
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
    /// Sorted by (month, generation).
    pub segments: Vec<SegmentMeta>,
}

impl Manifest {
    /// The manifest of a new store whose WAL starts in file 1.
    pub(crate) fn empty() -> Manifest {
        Manifest {
            next_generation: 1,
            last_seq: 0,
            wal_checkpoint: WalPosition::start_of(1),
            catalog_series: 0,
            segments: Vec::new(),
        }
    }

    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join("MANIFEST")
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
    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        io::write_file_atomic(&Manifest::path(dir), &self.encode())
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(48 + self.segments.len() * SEGMENT_ENTRY_LEN);
        body.extend_from_slice(&self.next_generation.to_le_bytes());
        body.extend_from_slice(&self.last_seq.to_le_bytes());
        body.extend_from_slice(&self.wal_checkpoint.file_no.to_le_bytes());
        body.extend_from_slice(&self.wal_checkpoint.offset.to_le_bytes());
        body.extend_from_slice(&self.catalog_series.to_le_bytes());
        body.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for s in &self.segments {
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
        }
        let mut out = Vec::with_capacity(body.len() + 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out
    }

    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let truncated = |needed: usize| {
            Error::corruption(
                path,
                0,
                CorruptionKind::Truncated {
                    needed: needed as u64,
                    available: bytes.len() as u64,
                },
            )
        };
        if bytes.len() < 20 {
            return Err(truncated(20));
        }
        if &bytes[..8] != MAGIC {
            return Err(Error::corruption(path, 0, CorruptionKind::BadMagic));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: VERSION,
            });
        }
        let body_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        if bytes.len() != 16 + body_len + 4 {
            return Err(truncated(16 + body_len + 4));
        }
        let body = &bytes[16..16 + body_len];
        let t = &bytes[16 + body_len..];
        let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(Error::corruption(path, 16, CorruptionKind::Checksum { stored, computed }));
        }
        let malformed = |why: &str| Error::malformed(path, 16, why);
        let mut r = Reader::new(body);
        let field = |e: crate::codec::DecodeError| Error::malformed(path, 16, e.0);
        let next_generation = r.u64_le().map_err(field)?;
        let last_seq = r.u64_le().map_err(field)?;
        let wal_checkpoint = WalPosition {
            file_no: r.u64_le().map_err(field)?,
            offset: r.u64_le().map_err(field)?,
        };
        let catalog_series = r.u32_le().map_err(field)?;
        let count = r.u32_le().map_err(field)? as usize;
        if count.checked_mul(SEGMENT_ENTRY_LEN) != Some(r.remaining()) {
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
            });
        }
        for pair in segments.windows(2) {
            if (pair[0].month, pair[0].generation) >= (pair[1].month, pair[1].generation) {
                return Err(malformed("segments are not sorted by month and generation"));
            }
        }
        if segments.iter().any(|s| s.generation >= next_generation) {
            return Err(malformed("a segment generation is not below next_generation"));
        }
        Ok(Manifest {
            next_generation,
            last_seq,
            wal_checkpoint,
            catalog_series,
            segments,
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
            });
        }
        m
    }

    #[test]
    fn manifests_round_trip_and_reject_damage() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample();
        m.store(dir.path()).unwrap();
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
