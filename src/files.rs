//! The store's files: the kinds there are, where they live, and the checked envelope
//! (magic, version, checksum) that every file with a header carries. Each module still
//! owns the bytes of its body; the envelope around them is written and checked here only.
//!
//! Three envelopes exist (see `docs/FORMAT.md`):
//! - *sealed* (`MANIFEST`, `TAGS`, `COMMITS`): magic, version u32, body length u32, body, crc32 of the
//!   body; the file is exactly that long;
//! - *checked header* (`CATALOG`, WAL files, segments): magic, version u32, the kind's
//!   fixed header fields, crc32 of everything before it; records or blocks follow;
//! - *plain header* (archives): magic, version u32, four reserved zero bytes; the footer
//!   carries the checksum of the index.

use crate::error::{CorruptionKind, Error, Result};
use std::path::{Path, PathBuf};

/// A kind of file in a store directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `MANIFEST`: which segments exist and where WAL replay starts.
    Manifest,
    /// `CATALOG`: series keys by id.
    Catalog,
    /// `TAGS`: the tag index (derived from the catalog).
    Tags,
    /// `COMMITS`: the unique index of commit hashes (derived from the commit rows).
    Commits,
    /// `LOCK`: held with `flock` while a handle is open; empty.
    Lock,
    /// `wal/<n>.wal`: write-ahead log files.
    Wal,
    /// `data/<YYYY-MM>/<generation>.seg` (and the summary tiers under `data/summaries/`).
    Segment,
    /// `archive/<first>_<last>.annarc`: months moved out of the store.
    Archive,
}

/// Where damaged segments are moved by `verify --repair`.
pub(crate) const QUARANTINE_DIR: &str = "quarantine";

/// How a kind's header is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Magic, version, length, body, crc32 of the body: the whole file.
    Sealed,
    /// Magic, version, `fields` bytes, crc32 of the preceding bytes.
    Checked { fields: usize },
    /// Magic, version, `fields` bytes; no checksum of its own.
    Plain { fields: usize },
    /// No envelope.
    None,
}

const MAGIC_LEN: usize = 8;
/// Magic and version.
const PREFIX_LEN: usize = MAGIC_LEN + 4;

impl FileKind {
    /// The file (for the store's single files) or the directory (for numbered files) of
    /// this kind in store directory `dir`.
    pub(crate) fn path(self, dir: &Path) -> PathBuf {
        dir.join(match self {
            FileKind::Manifest => "MANIFEST",
            FileKind::Catalog => "CATALOG",
            FileKind::Tags => "TAGS",
            FileKind::Commits => "COMMITS",
            FileKind::Lock => "LOCK",
            FileKind::Wal => "wal",
            FileKind::Segment => "data",
            FileKind::Archive => "archive",
        })
    }

    /// The eight bytes a file of this kind starts with (a lock file has none).
    pub(crate) const fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Manifest => b"ANNALMAN",
            FileKind::Catalog => b"ANNALCAT",
            FileKind::Tags => b"ANNALTAG",
            FileKind::Commits => b"ANNALCMT",
            FileKind::Wal => b"ANNALWAL",
            FileKind::Segment => b"ANNALSEG",
            FileKind::Archive => b"ANNALARC",
            FileKind::Lock => b"\0\0\0\0\0\0\0\0",
        }
    }

    /// The version this build writes.
    pub(crate) const fn version(self) -> u32 {
        match self {
            // Version 2 of segments adds the bytes value type, version 3 checksums per
            // column, version 4 interleaves two rANS states in long integer streams;
            // version 2 of archives adds objects.
            FileKind::Segment => 4,
            FileKind::Manifest | FileKind::Archive => 2,
            _ => 1,
        }
    }

    /// Whether this build reads `version` (every earlier version of manifests, segments and
    /// archives is still read).
    fn reads(self, version: u32) -> bool {
        version == self.version()
            || (matches!(self, FileKind::Manifest | FileKind::Segment | FileKind::Archive) && (1..self.version()).contains(&version))
    }

    const fn layout(self) -> Layout {
        match self {
            FileKind::Manifest | FileKind::Tags | FileKind::Commits => Layout::Sealed,
            FileKind::Catalog => Layout::Checked { fields: 0 },
            // The file number.
            FileKind::Wal => Layout::Checked { fields: 8 },
            // Month i32, generation u64, flags u32.
            FileKind::Segment => Layout::Checked { fields: 16 },
            // Reserved, zero.
            FileKind::Archive => Layout::Plain { fields: 4 },
            FileKind::Lock => Layout::None,
        }
    }

    /// Length of the header, `fields` and checksum included (0 for sealed files, whose
    /// envelope surrounds the body).
    pub(crate) const fn header_len(self) -> usize {
        match self.layout() {
            Layout::Checked { fields } => PREFIX_LEN + fields + 4,
            Layout::Plain { fields } => PREFIX_LEN + fields,
            Layout::Sealed | Layout::None => 0,
        }
    }

    /// The header of a new file: magic, this build's version, `fields` (exactly the
    /// kind's field bytes) and, for checked headers, their crc32.
    pub(crate) fn header(self, fields: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len());
        out.extend_from_slice(self.magic());
        out.extend_from_slice(&self.version().to_le_bytes());
        out.extend_from_slice(fields);
        if matches!(self.layout(), Layout::Checked { .. }) {
            let crc = crc32fast::hash(&out);
            out.extend_from_slice(&crc.to_le_bytes());
        }
        debug_assert_eq!(out.len(), self.header_len(), "{self:?} header fields");
        out
    }

    /// Checks the header at the start of `bytes` (the file `path`): its length, magic,
    /// checksum (checked headers) and version. Returns the header's version and fields.
    pub(crate) fn check_header<'a>(self, path: &Path, bytes: &'a [u8]) -> Result<Header<'a>> {
        let len = self.header_len();
        let fields_len = match self.layout() {
            Layout::Checked { fields } | Layout::Plain { fields } => fields,
            Layout::Sealed | Layout::None => return Err(Error::Invariant(format!("{self:?} files have no header"))),
        };
        let Some(h) = bytes.get(..len) else {
            return Err(truncated(path, len, bytes.len()));
        };
        if &h[..MAGIC_LEN] != self.magic() {
            return Err(Error::corruption(path, 0, CorruptionKind::BadMagic));
        }
        if matches!(self.layout(), Layout::Checked { .. }) {
            let stored = le_u32(&h[len - 4..]);
            let computed = crc32fast::hash(&h[..len - 4]);
            if stored != computed {
                return Err(Error::corruption(path, 0, CorruptionKind::Checksum { stored, computed }));
            }
        }
        let version = self.check_version(path, &h[MAGIC_LEN..PREFIX_LEN])?;
        Ok(Header {
            version,
            fields: &h[PREFIX_LEN..PREFIX_LEN + fields_len],
        })
    }

    /// A whole sealed file around `body`.
    pub(crate) fn seal(self, body: &[u8]) -> Vec<u8> {
        debug_assert_eq!(self.layout(), Layout::Sealed, "{self:?} is not a sealed file");
        let mut out = Vec::with_capacity(PREFIX_LEN + 4 + body.len() + 4);
        out.extend_from_slice(self.magic());
        out.extend_from_slice(&self.version().to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out
    }

    /// Opens a sealed file: checks its length, magic, version and the body's checksum.
    /// Returns the version and the body, which starts at [`SEALED_BODY_OFFSET`].
    pub(crate) fn unseal<'a>(self, path: &Path, bytes: &'a [u8]) -> Result<(u32, &'a [u8])> {
        debug_assert_eq!(self.layout(), Layout::Sealed, "{self:?} is not a sealed file");
        let smallest = SEALED_BODY_OFFSET + 4;
        if bytes.len() < smallest {
            return Err(truncated(path, smallest, bytes.len()));
        }
        if &bytes[..MAGIC_LEN] != self.magic() {
            return Err(Error::corruption(path, 0, CorruptionKind::BadMagic));
        }
        let version = self.check_version(path, &bytes[MAGIC_LEN..PREFIX_LEN])?;
        let body_len = le_u32(&bytes[PREFIX_LEN..SEALED_BODY_OFFSET]) as usize;
        let total = SEALED_BODY_OFFSET + body_len + 4;
        if bytes.len() != total {
            return Err(truncated(path, total, bytes.len()));
        }
        let body = &bytes[SEALED_BODY_OFFSET..SEALED_BODY_OFFSET + body_len];
        let stored = le_u32(&bytes[SEALED_BODY_OFFSET + body_len..]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(Error::corruption(
                path,
                SEALED_BODY_OFFSET as u64,
                CorruptionKind::Checksum { stored, computed },
            ));
        }
        Ok((version, body))
    }

    fn check_version(self, path: &Path, bytes: &[u8]) -> Result<u32> {
        let version = le_u32(bytes);
        if !self.reads(version) {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: self.version(),
            });
        }
        Ok(version)
    }
}

/// Where the body of a sealed file starts: after magic, version and length.
pub(crate) const SEALED_BODY_OFFSET: usize = PREFIX_LEN + 4;

/// A checked header: its version and the kind's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub version: u32,
    pub fields: &'a [u8],
}

fn truncated(path: &Path, needed: usize, available: usize) -> Error {
    Error::corruption(
        path,
        0,
        CorruptionKind::Truncated {
            needed: needed as u64,
            available: available as u64,
        },
    )
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_every_damage_is_named() {
        let path = Path::new("f");
        let header = FileKind::Wal.header(&7u64.to_le_bytes());
        assert_eq!(header.len(), 24);
        let h = FileKind::Wal.check_header(path, &header).unwrap();
        assert_eq!((h.version, h.fields), (1, &7u64.to_le_bytes()[..]));
        for i in 0..header.len() {
            let mut bad = header.clone();
            bad[i] ^= 0x10;
            assert!(FileKind::Wal.check_header(path, &bad).is_err(), "byte {i}");
        }
        assert!(matches!(
            FileKind::Wal.check_header(path, &header[..10]),
            Err(Error::Corruption {
                kind: CorruptionKind::Truncated { needed: 24, available: 10 },
                ..
            })
        ));
        assert!(matches!(
            FileKind::Catalog.check_header(path, &header),
            Err(Error::Corruption {
                kind: CorruptionKind::BadMagic,
                ..
            })
        ));
        let mut newer = FileKind::Catalog.header(&[]);
        newer[8] = 9;
        let crc = crc32fast::hash(&newer[..12]);
        newer[12..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            FileKind::Catalog.check_header(path, &newer),
            Err(Error::UnsupportedVersion {
                found: 9,
                supported: 1,
                ..
            })
        ));
        // An archive header has no checksum of its own.
        let archive = FileKind::Archive.header(&[0; 4]);
        assert_eq!(archive.len(), 16);
        assert_eq!(FileKind::Archive.check_header(path, &archive).unwrap().version, 2);
    }

    #[test]
    fn sealed_files_round_trip_and_reject_damage() {
        let path = Path::new("MANIFEST");
        let sealed = FileKind::Manifest.seal(b"body");
        assert_eq!(FileKind::Manifest.unseal(path, &sealed).unwrap(), (2, &b"body"[..]));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            // Flipping the low bit of the version turns 2 into 3: unsupported, not read.
            assert!(FileKind::Manifest.unseal(path, &bad).is_err(), "byte {i}");
        }
        assert!(FileKind::Manifest.unseal(path, &sealed[..sealed.len() - 1]).is_err());
        let mut v1 = sealed.clone();
        v1[8] = 1;
        assert_eq!(FileKind::Manifest.unseal(path, &v1).unwrap().0, 1, "version 1 manifests are read");
        assert!(FileKind::Tags.unseal(path, &v1).is_err());
    }
}
