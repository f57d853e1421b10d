//! Segment files: immutable, columnar, checksummed files of one month's rows.
//!
//! ```text
//! header    32 B   magic "ANNALSEG", version, month, generation, flags, crc32
//! blocks           per series, up to `block_max_rows` rows each, each ending in a crc32
//! index            field table, then per series: kind and block metadata with stats
//! directory        n_series × (series id u32, offset of its index entry u32), sorted by id
//! footer    76 B   offsets, counts, time range, index crc, file crc, footer crc, magic
//! ```
//!
//! The index (with the directory) is checksummed as a whole and verified when the file is
//! opened; a block is verified each time it is decoded. Block metadata carries count, min,
//! max, sum, first and last of every column, so aggregations can skip decoding. Byte-level
//! details are in `docs/FORMAT.md`.

mod block;
mod reader;
mod writer;

#[cfg(feature = "internals")]
pub(crate) use block::{BlockLayout, ColumnInput, decode_block, encode_block};
pub(crate) use block::{BlockMeta, ColumnStats};
pub(crate) use reader::SegmentReader;
pub(crate) use writer::{
    EncodeOptions, EncodedSeries, FieldTable, Lineage, SegmentWriter, SeriesRows, WrittenSegment, map_interleaved, write_segment,
};

use crate::files::FileKind;

/// The header ([`FileKind::Segment`]): magic, version, month i32, generation u64, flags
/// u32, crc32.
pub(crate) const HEADER_LEN: usize = FileKind::Segment.header_len();
/// Footer body (64 bytes) + footer crc (4) + magic (8).
pub(crate) const FOOTER_LEN: usize = 76;
const DIRECTORY_ENTRY_LEN: usize = 8;

/// Flag bit of a block: it carries record ids.
const BLOCK_HAS_RECORD_IDS: u8 = 1;
/// Flag bit of a block (segment version 3 and later, set in every block): a checksum per
/// column and one of the header, rather than one of the whole block, so a reader checks
/// only the bytes it decodes.
const BLOCK_COLUMN_CHECKSUMS: u8 = 2;
