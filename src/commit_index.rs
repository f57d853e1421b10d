//! The unique index of commits: commit hash → where the commit's row is.
//!
//! Commit hashes are unique in a store. The engine checks every batch against this index
//! under the writer lock, before the batch reaches the WAL, so two writers racing with the
//! same hash cannot both store it. Entries of rows still in the head are *pending*; a flush
//! writes the entries of what it flushed to `<dir>/COMMITS` (sealed, sorted by hash) before
//! the manifest that lets the WAL go, and recovery adds the rows the WAL replays. Entries
//! outlive compaction (locations do not change), archive and restore (an archived commit is
//! still a duplicate); retention that drops commit rows drops their entries.

use crate::codec::bytes::{Reader, put_varint};
use crate::error::{CorruptionKind, Error, Result};
use crate::files::FileKind;
use crate::model::{BatchRow, CommitHash, SeriesId};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a commit's row is. Its files are the rows with the next `diff_count` record ids
/// (a field of the commit row) in the repository's file series, at the same timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommitLocation {
    /// The commit's timestamp (nanoseconds).
    pub timestamp: i64,
    /// The commit row's record id.
    pub record_id: u64,
    /// The series of the commit row.
    pub series: SeriesId,
}

/// Bytes of one stored entry: hash length, 32 hash bytes, timestamp, record id, series id.
const ENTRY_LEN: usize = 1 + 32 + 8 + 8 + 4;

/// Commit hash → location, for every commit the store holds.
#[derive(Debug, Default, Clone)]
pub(crate) struct CommitIndex {
    /// Entries in `COMMITS` (or flushed since it was read), sorted by hash.
    stored: Vec<(CommitHash, CommitLocation)>,
    /// Entries of rows not flushed yet.
    pending: BTreeMap<CommitHash, CommitLocation>,
    /// Positions in `stored`, ordered by (timestamp, record id): listings walk commits
    /// newest first through it without reading any segment they do not return.
    stored_by_time: Vec<u32>,
    /// The pending entries' (timestamp, record id) → hash, in the same order.
    pending_by_time: BTreeMap<(i64, u64), CommitHash>,
}

impl CommitIndex {
    /// Reads `<dir>/COMMITS`; an empty index when there is none. A damaged file is an error
    /// naming it: the caller rebuilds the index from the commit rows.
    pub(crate) fn load(dir: &Path) -> Result<CommitIndex> {
        let path = FileKind::Commits.path(dir);
        let Some(bytes) = crate::io::read_file_if_exists(&path)? else {
            return Ok(CommitIndex::default());
        };
        CommitIndex::decode(&path, &bytes)
    }

    /// Decodes the body written by [`CommitIndex::encode`].
    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<CommitIndex> {
        let (_, body) = FileKind::Commits.unseal(path, bytes)?;
        let damaged = |detail: &str| Error::Corruption {
            file: path.to_path_buf(),
            offset: 0,
            kind: CorruptionKind::Malformed(format!("commit index: {detail}")),
        };
        let mut r = Reader::new(body);
        let count = r.len(body.len() / ENTRY_LEN).map_err(|e| damaged(e.0))?;
        let mut stored = Vec::with_capacity(count);
        for _ in 0..count {
            let entry = r.bytes(ENTRY_LEN).map_err(|e| damaged(e.0))?;
            stored.push(decode_entry(entry).ok_or_else(|| damaged("an entry has a hash of another length"))?);
        }
        if !r.is_empty() {
            return Err(damaged("bytes after the last entry"));
        }
        if stored.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(damaged("entries are not sorted by hash"));
        }
        let mut index = CommitIndex {
            stored,
            ..CommitIndex::default()
        };
        index.order_stored_by_time();
        Ok(index)
    }

    /// The sealed file of every entry whose commit row has a record id up to `up_to`: what a
    /// flush that wrote rows up to `up_to` makes durable.
    pub(crate) fn encode(&self, up_to: u64) -> Vec<u8> {
        let flushed: Vec<(CommitHash, CommitLocation)> = merge_sorted(
            &self.stored,
            self.pending.iter().filter(|(_, l)| l.record_id <= up_to).map(|(h, l)| (*h, *l)),
        );
        let mut body = Vec::with_capacity(10 + flushed.len() * ENTRY_LEN);
        put_varint(&mut body, flushed.len() as u64);
        for (hash, location) in &flushed {
            encode_entry(hash, location, &mut body);
        }
        FileKind::Commits.seal(&body)
    }

    /// Moves the pending entries of rows up to `up_to` to the stored ones, after the file
    /// [`CommitIndex::encode`] gave was written.
    pub(crate) fn mark_flushed(&mut self, up_to: u64) {
        let flushed: Vec<(CommitHash, CommitLocation)> = self
            .pending
            .iter()
            .filter(|(_, l)| l.record_id <= up_to)
            .map(|(h, l)| (*h, *l))
            .collect();
        for (hash, location) in &flushed {
            self.pending.remove(hash);
            self.pending_by_time.remove(&(location.timestamp, location.record_id));
        }
        self.stored = merge_sorted(&self.stored, flushed.into_iter());
        self.order_stored_by_time();
    }

    /// Rebuilds `stored_by_time` after `stored` changed.
    fn order_stored_by_time(&mut self) {
        let stored = &self.stored;
        // Positions fit in u32: the index would need 4 billion commits (hundreds of GiB)
        // before they did not.
        let mut order: Vec<u32> = (0..stored.len() as u32).collect();
        order.sort_unstable_by_key(|&i| {
            let l = &stored[i as usize].1;
            (l.timestamp, l.record_id)
        });
        self.stored_by_time = order;
    }

    /// True when rows up to `up_to` have entries not in the file yet.
    pub(crate) fn has_pending_up_to(&self, up_to: u64) -> bool {
        self.pending.values().any(|l| l.record_id <= up_to)
    }

    /// Where the commit `hash` is, if the store has it.
    pub(crate) fn get(&self, hash: &CommitHash) -> Option<CommitLocation> {
        if let Some(location) = self.pending.get(hash) {
            return Some(*location);
        }
        self.stored.binary_search_by(|(h, _)| h.cmp(hash)).ok().map(|i| self.stored[i].1)
    }

    /// True when the store has `hash`.
    pub(crate) fn contains(&self, hash: &CommitHash) -> bool {
        self.get(hash).is_some()
    }

    /// Records a commit row the head now holds. A hash present already keeps its location:
    /// WAL replay of rows a flushed index covers finds them there.
    pub(crate) fn insert(&mut self, hash: CommitHash, location: CommitLocation) {
        if !self.contains(&hash) {
            self.pending.insert(hash, location);
            self.pending_by_time.insert((location.timestamp, location.record_id), hash);
        }
    }

    /// Records the commit rows `found` ((row index, hash), from
    /// `model::commit::commit_rows`) of a batch whose first row has sequence number
    /// `first_seq`; `series_id` maps a batch-local series to its id.
    pub(crate) fn insert_rows(
        &mut self,
        found: Vec<(usize, CommitHash)>,
        rows: &[BatchRow],
        first_seq: u64,
        series_id: impl Fn(u32) -> SeriesId,
    ) {
        for (row, hash) in found {
            let r = &rows[row];
            self.insert(
                hash,
                CommitLocation {
                    timestamp: r.timestamp,
                    record_id: first_seq + row as u64,
                    series: series_id(r.series),
                },
            );
        }
    }

    /// Commits whose lower-case hex starts with `prefix` (hex digits, any case), at most
    /// `limit` of them, sorted by hash.
    pub(crate) fn find_prefix(&self, prefix: &str, limit: usize) -> Vec<(CommitHash, CommitLocation)> {
        let prefix = prefix.to_ascii_lowercase();
        let matches = |h: &CommitHash| h.to_hex().starts_with(&prefix);
        let Some(low) = prefix_bound(&prefix) else {
            return Vec::new();
        };
        // Hashes sort as their hex text does, so the matches are one run from the bound on.
        let start = self.stored.partition_point(|(h, _)| h.as_bytes() < low.as_slice());
        let mut found: Vec<(CommitHash, CommitLocation)> = self.stored[start..]
            .iter()
            .take_while(|(h, _)| matches(h))
            .copied()
            .chain(self.pending.iter().filter(|(h, _)| matches(h)).map(|(h, l)| (*h, *l)))
            .collect();
        found.sort_by_key(|a| a.0);
        found.truncate(limit);
        found
    }

    /// Up to `limit` entries that `keep` accepts, newest first by (timestamp, record id),
    /// from just below `below` (exclusive) down to timestamp `start` (inclusive).
    pub(crate) fn newest_below(
        &self,
        below: (i64, u64),
        start: i64,
        limit: usize,
        mut keep: impl FnMut(&CommitHash, &CommitLocation) -> bool,
    ) -> Vec<(CommitHash, CommitLocation)> {
        let position = |i: &u32| {
            let l = &self.stored[*i as usize].1;
            (l.timestamp, l.record_id)
        };
        let end = self.stored_by_time.partition_point(|i| position(i) < below);
        let mut stored = self.stored_by_time[..end].iter().rev().map(|&i| self.stored[i as usize]).peekable();
        let mut pending = self
            .pending_by_time
            .range(..below)
            .rev()
            .filter_map(|(_, hash)| self.pending.get(hash).map(|l| (*hash, *l)))
            .peekable();
        let mut found = Vec::with_capacity(limit.min(1024));
        while found.len() < limit {
            let newer_pending = match (stored.peek(), pending.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((_, s)), Some((_, p))) => (p.timestamp, p.record_id) > (s.timestamp, s.record_id),
            };
            let next = if newer_pending { pending.next() } else { stored.next() };
            let Some((hash, location)) = next else { break };
            if location.timestamp < start {
                break;
            }
            if keep(&hash, &location) {
                found.push((hash, location));
            }
        }
        found
    }

    /// Drops the entries `drop` selects (retention removed their rows); returns how many.
    pub(crate) fn remove_where(&mut self, mut drop: impl FnMut(&CommitLocation) -> bool) -> usize {
        let before = self.len();
        self.stored.retain(|(_, l)| !drop(l));
        self.pending.retain(|_, l| !drop(l));
        let pending = &self.pending;
        self.pending_by_time.retain(|_, hash| pending.contains_key(hash));
        self.order_stored_by_time();
        before - self.len()
    }

    /// Number of commits.
    pub(crate) fn len(&self) -> usize {
        self.stored.len() + self.pending.len()
    }
}

/// The bytes of the smallest hash that starts with `prefix` (an odd digit count is padded
/// with 0); `None` when `prefix` is not hex.
fn prefix_bound(prefix: &str) -> Option<Vec<u8>> {
    let digits: Option<Vec<u8>> = prefix.bytes().map(|c| (c as char).to_digit(16).map(|d| d as u8)).collect();
    let digits = digits?;
    Some(
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair.get(1).copied().unwrap_or(0))
            .collect(),
    )
}

fn merge_sorted(
    sorted: &[(CommitHash, CommitLocation)],
    more: impl Iterator<Item = (CommitHash, CommitLocation)>,
) -> Vec<(CommitHash, CommitLocation)> {
    let mut more: Vec<(CommitHash, CommitLocation)> = more.collect();
    more.sort_by_key(|a| a.0);
    let mut out = Vec::with_capacity(sorted.len() + more.len());
    let (mut i, mut j) = (0, 0);
    while i < sorted.len() || j < more.len() {
        let take_sorted = j == more.len() || (i < sorted.len() && sorted[i].0 <= more[j].0);
        if take_sorted {
            if j < more.len() && sorted[i].0 == more[j].0 {
                j += 1;
            }
            out.push(sorted[i]);
            i += 1;
        } else {
            out.push(more[j]);
            j += 1;
        }
    }
    out
}

fn encode_entry(hash: &CommitHash, l: &CommitLocation, out: &mut Vec<u8>) {
    let raw = hash.as_bytes();
    out.push(raw.len() as u8);
    let mut padded = [0u8; 32];
    padded[..raw.len()].copy_from_slice(raw);
    out.extend_from_slice(&padded);
    out.extend_from_slice(&l.timestamp.to_le_bytes());
    out.extend_from_slice(&l.record_id.to_le_bytes());
    out.extend_from_slice(&l.series.to_le_bytes());
}

fn decode_entry(entry: &[u8]) -> Option<(CommitHash, CommitLocation)> {
    let len = entry[0] as usize;
    if len != 20 && len != 32 {
        return None;
    }
    let hash = CommitHash::from_bytes(&entry[1..1 + len])?;
    let at = |start: usize, n: usize| &entry[start..start + n];
    let location = CommitLocation {
        timestamp: i64::from_le_bytes(at(33, 8).try_into().ok()?),
        record_id: u64::from_le_bytes(at(41, 8).try_into().ok()?),
        series: u32::from_le_bytes(at(49, 4).try_into().ok()?),
    };
    Some((hash, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(prefix: &str) -> CommitHash {
        CommitHash::parse(&format!("{prefix}{}", "0".repeat(40 - prefix.len()))).unwrap()
    }

    fn at(record_id: u64) -> CommitLocation {
        CommitLocation {
            timestamp: record_id as i64 * 10,
            record_id,
            series: 1,
        }
    }

    #[test]
    fn entries_survive_a_flush_and_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = CommitIndex::default();
        index.insert(hash("ab"), at(1));
        index.insert(hash("12"), at(2));
        index.insert(hash("ff"), at(9));
        // A replayed row whose hash is known keeps the first location.
        index.insert(hash("ab"), at(7));
        assert_eq!(index.get(&hash("ab")), Some(at(1)));
        let file = index.encode(5);
        std::fs::write(FileKind::Commits.path(dir.path()), &file).unwrap();
        index.mark_flushed(5);
        let loaded = CommitIndex::load(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2, "only rows up to the flushed record id are in the file");
        assert_eq!(loaded.get(&hash("12")), Some(at(2)));
        assert_eq!(loaded.get(&hash("ff")), None);
        assert_eq!(index.get(&hash("ff")), Some(at(9)), "still pending in memory");
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn prefixes_find_every_candidate() {
        let mut index = CommitIndex::default();
        for (i, p) in ["abc1", "abc2", "abd", "b"].iter().enumerate() {
            index.insert(hash(p), at(i as u64 + 1));
        }
        index.mark_flushed(2);
        let hex = |v: Vec<(CommitHash, CommitLocation)>| v.iter().map(|(h, _)| h.to_hex()[..4].to_string()).collect::<Vec<_>>();
        assert_eq!(hex(index.find_prefix("abc", 10)), ["abc1", "abc2"]);
        assert_eq!(hex(index.find_prefix("ABC2", 10)), ["abc2"]);
        assert_eq!(hex(index.find_prefix("ab", 10)), ["abc1", "abc2", "abd0"]);
        assert_eq!(hex(index.find_prefix("a", 2)), ["abc1", "abc2"]);
        assert!(index.find_prefix("zz", 10).is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = CommitIndex::default();
        index.insert(hash("ab"), at(1));
        let mut file = index.encode(1);
        let last = file.len() - 6;
        file[last] ^= 1;
        let path = FileKind::Commits.path(dir.path());
        std::fs::write(&path, &file).unwrap();
        match CommitIndex::load(dir.path()) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
            other => panic!("expected a corruption error, got {other:?}"),
        }
    }

    #[test]
    fn retention_drops_entries() {
        let mut index = CommitIndex::default();
        for i in 1..=4 {
            index.insert(hash(&format!("{i}")), at(i));
        }
        index.mark_flushed(2);
        assert_eq!(index.remove_where(|l| l.timestamp < 30), 2);
        assert_eq!(index.len(), 2);
        assert!(!index.contains(&hash("1")));
    }

    #[test]
    fn listings_walk_stored_and_pending_entries_newest_first() {
        let mut index = CommitIndex::default();
        // Hashes in another order than time, two commits at one instant, and the flushed
        // and pending entries interleaved in time.
        let entries = [("9", 10, 1), ("3", 30, 2), ("7", 30, 3), ("1", 20, 4), ("5", 50, 5), ("2", 40, 6)];
        for (h, timestamp, record_id) in entries {
            let series = if h == "5" { 2 } else { 1 };
            index.insert(
                hash(h),
                CommitLocation {
                    timestamp,
                    record_id,
                    series,
                },
            );
        }
        index.mark_flushed(3);
        let walk = |index: &CommitIndex, below: (i64, u64), start: i64, limit: usize| -> Vec<String> {
            index
                .newest_below(below, start, limit, |_, l| l.series == 1)
                .iter()
                .map(|(h, _)| h.to_hex()[..1].to_string())
                .collect()
        };
        assert_eq!(walk(&index, (i64::MAX, 0), i64::MIN, 10), ["2", "7", "3", "1", "9"]);
        assert_eq!(walk(&index, (i64::MAX, 0), i64::MIN, 2), ["2", "7"]);
        assert_eq!(walk(&index, (30, 3), i64::MIN, 10), ["3", "1", "9"], "strictly below the bound");
        assert_eq!(walk(&index, (40, 0), 20, 10), ["7", "3", "1"], "down to the start, inclusive");
        index.mark_flushed(6);
        assert_eq!(
            walk(&index, (i64::MAX, 0), i64::MIN, 10),
            ["2", "7", "3", "1", "9"],
            "same order once all flushed"
        );
        index.remove_where(|l| l.timestamp == 30);
        assert_eq!(walk(&index, (i64::MAX, 0), i64::MIN, 10), ["2", "1", "9"]);
    }
}
