//! Checksummed record framing, used by the WAL and the catalog.
//!
//! ```text
//! offset  size  field
//! 0       4     payload length, u32 LE
//! 4       1     record kind
//! 5       3     reserved, zero
//! 8       4     crc32 of bytes 0..8 (the header)
//! 12      n     payload
//! 12+n    4     crc32 of the payload
//! ```
//!
//! The header has its own checksum so that a damaged length is detected before it is used
//! to find the next record. A record that fails its checks is a *torn tail* only when it is
//! in the last file and no valid record follows it anywhere in that file: then it cannot
//! hold acknowledged data (acknowledged records are fsync'd, and anything after them would
//! be too). Any other failure is corruption.

use crate::error::CorruptionKind;

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 12;
/// Bytes after the payload.
pub(crate) const TRAILER_LEN: usize = 4;
/// Framing bytes per record.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;
/// Largest payload a frame may carry (256 MiB).
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;

/// Appends a framed record.
pub(crate) fn append(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    let header_crc = crc32fast::hash(&out[start..start + 8]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
}

/// Starts a frame whose payload the caller appends in place; finish it with
/// [`finish_in_place`]. Avoids copying large payloads.
pub(crate) fn begin_in_place(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    start
}

/// Completes a frame begun at `start` whose payload runs to the end of `out`. Returns the
/// payload length.
pub(crate) fn finish_in_place(out: &mut Vec<u8>, start: usize, kind: u8) -> usize {
    let payload_len = out.len() - start - HEADER_LEN;
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&[kind, 0, 0, 0]);
    let header_crc = crc32fast::hash(&out[start..start + 8]);
    out[start + 8..start + 12].copy_from_slice(&header_crc.to_le_bytes());
    let payload_crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out.extend_from_slice(&payload_crc.to_le_bytes());
    payload_len
}

/// What lies at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A valid record; the next one starts at `next`.
    Record { kind: u8, payload: &'a [u8], next: usize },
    /// The end of the data, exactly at a record boundary.
    End,
    /// A record that fails its checks, with why.
    Bad(CorruptionKind),
}

/// Reads the frame at `pos` of `buf`.
pub(crate) fn read(buf: &[u8], pos: usize) -> Frame<'_> {
    let Some(rest) = buf.get(pos..) else {
        return Frame::Bad(CorruptionKind::Truncated {
            needed: pos as u64,
            available: buf.len() as u64,
        });
    };
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < HEADER_LEN {
        return Frame::Bad(CorruptionKind::Truncated {
            needed: HEADER_LEN as u64,
            available: rest.len() as u64,
        });
    }
    let stored = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
    let computed = crc32fast::hash(&rest[..8]);
    if stored != computed {
        return Frame::Bad(CorruptionKind::Checksum { stored, computed });
    }
    if rest[5..8] != [0, 0, 0] {
        return Frame::Bad(CorruptionKind::Malformed("reserved header bytes are not zero".into()));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if len > MAX_PAYLOAD {
        return Frame::Bad(CorruptionKind::Malformed(format!("record length {len} exceeds the maximum")));
    }
    let total = HEADER_LEN + len + TRAILER_LEN;
    if rest.len() < total {
        return Frame::Bad(CorruptionKind::Truncated {
            needed: total as u64,
            available: rest.len() as u64,
        });
    }
    let payload = &rest[HEADER_LEN..HEADER_LEN + len];
    let t = &rest[HEADER_LEN + len..total];
    let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Frame::Bad(CorruptionKind::Checksum { stored, computed });
    }
    Frame::Record {
        kind: rest[4],
        payload,
        next: pos + total,
    }
}

/// True when a complete, valid record starts anywhere after `bad` in `buf`: evidence that
/// the failure at `bad` is damage in the middle of the data, not a torn tail.
pub(crate) fn valid_record_after(buf: &[u8], bad: usize) -> bool {
    let mut pos = bad + 1;
    while pos + OVERHEAD <= buf.len() {
        // Cheap filters before the header checksum: reserved bytes are zero.
        if buf[pos + 5..pos + 8] == [0, 0, 0] && matches!(read(buf, pos), Frame::Record { .. }) {
            return true;
        }
        pos += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let mut buf = Vec::new();
        append(&mut buf, 1, b"hello");
        let start = begin_in_place(&mut buf);
        buf.extend_from_slice(b"world!");
        assert_eq!(finish_in_place(&mut buf, start, 2), 6);
        let Frame::Record { kind, payload, next } = read(&buf, 0) else {
            panic!()
        };
        assert_eq!((kind, payload), (1, &b"hello"[..]));
        let Frame::Record { kind, payload, next } = read(&buf, next) else {
            panic!()
        };
        assert_eq!((kind, payload), (2, &b"world!"[..]));
        assert_eq!(read(&buf, next), Frame::End);

        for i in 0..buf.len() {
            let mut damaged = buf.clone();
            damaged[i] ^= 0x10;
            let first = read(&damaged, 0);
            let ok_first = matches!(first, Frame::Record { payload, .. } if payload == b"hello");
            if i < 21 {
                assert!(matches!(first, Frame::Bad(_)), "byte {i}");
            } else {
                assert!(ok_first);
                assert!(matches!(read(&damaged, 21), Frame::Bad(_)), "byte {i}");
            }
        }
        // A damaged first record followed by a valid one is not a torn tail.
        let mut damaged = buf.clone();
        damaged[14] ^= 1;
        assert!(valid_record_after(&damaged, 0));
        // A cut-off last record is.
        assert!(!valid_record_after(&buf[..buf.len() - 3], 21));
    }
}
