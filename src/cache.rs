//! A bounded, least-recently-used cache of decoded blocks, shared by all segment readers of
//! an engine. Keys name a segment (month and generation, never reused), a block offset and
//! the exact set of decoded fields, so a hit is always the same bytes decoded the same way.
//!
//! A block is kept the second time it is decoded within a while (the keys of recently
//! decoded blocks are remembered, not their rows): a scan over more blocks than the cache
//! holds would otherwise evict everything for blocks it reads once, and filling and
//! emptying the cache made such a scan twice as slow (double-groupby-1 at full scale: 124
//! ms against 68 ms with no cache), through allocation, page faults and the lock.

use crate::chunk::Chunk;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

/// Identifies a decoded block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub month: i32,
    pub generation: u64,
    pub offset: u64,
    /// Field-table indexes decoded, ascending.
    pub fields: Box<[u32]>,
}

struct Entry {
    chunk: Arc<Chunk>,
    tick: u64,
    bytes: usize,
}

#[derive(Default)]
struct State {
    map: FxHashMap<BlockKey, Entry>,
    by_tick: BTreeMap<u64, BlockKey>,
    tick: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
    /// Blocks decoded once and not kept: (key hash, offer number), oldest first, and each
    /// hash's offer number (a hash kept or offered again since has a newer one, or none).
    seen_order: VecDeque<(u64, u64)>,
    seen: FxHashMap<u64, u64>,
    offers: u64,
}

/// About the size of a decoded block, to size the memory of blocks seen once.
const TYPICAL_BLOCK_BYTES: usize = 8 << 10;

/// The cache. A capacity of 0 disables it.
pub(crate) struct BlockCache {
    capacity: usize,
    state: Mutex<State>,
}

/// Approximate memory of a decoded chunk.
fn chunk_bytes(chunk: &Chunk) -> usize {
    let values: usize = chunk
        .columns
        .iter()
        .map(|c| {
            c.validity.len()
                + match &c.values {
                    crate::chunk::ColumnValues::Str(v) => v.iter().map(|s| s.len() + 24).sum(),
                    crate::chunk::ColumnValues::Bytes(v) => v.iter().map(|b| b.len() + 24).sum(),
                    other => other.len() * 8,
                }
        })
        .sum();
    values + chunk.timestamps.len() * 8 + chunk.record_ids.len() * 8 + 128
}

impl BlockCache {
    pub(crate) fn new(capacity: usize) -> BlockCache {
        BlockCache {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn get(&self, key: &BlockKey) -> Option<Arc<Chunk>> {
        let mut st = self.state.lock();
        st.tick += 1;
        let tick = st.tick;
        let Some(entry) = st.map.get_mut(key) else {
            st.misses += 1;
            return None;
        };
        let old = std::mem::replace(&mut entry.tick, tick);
        let chunk = entry.chunk.clone();
        st.by_tick.remove(&old);
        st.by_tick.insert(tick, key.clone());
        st.hits += 1;
        Some(chunk)
    }

    /// Offers a block just decoded: kept when it was offered before within the last
    /// (capacity / 8 KiB) offers, else remembered by its key's hash only.
    pub(crate) fn insert(&self, key: BlockKey, chunk: Arc<Chunk>) {
        let bytes = chunk_bytes(&chunk);
        if bytes > self.capacity / 4 {
            return;
        }
        let hash = rustc_hash::FxBuildHasher.hash_one(&key);
        let mut evicted = Vec::new();
        {
            let mut st = self.state.lock();
            self.expire_offers(&mut st);
            if st.seen.remove(&hash).is_none() {
                let offer = st.offers;
                st.seen.insert(hash, offer);
                st.seen_order.push_back((hash, offer));
                return;
            }
            st.tick += 1;
            let tick = st.tick;
            if let Some(old) = st.map.insert(key.clone(), Entry { chunk, tick, bytes }) {
                st.by_tick.remove(&old.tick);
                st.bytes -= old.bytes;
                evicted.push(old);
            }
            st.by_tick.insert(tick, key);
            st.bytes += bytes;
            while st.bytes > self.capacity {
                let Some((_, oldest)) = st.by_tick.pop_first() else { break };
                if let Some(e) = st.map.remove(&oldest) {
                    st.bytes -= e.bytes;
                    evicted.push(e);
                }
            }
        }
        // Freed after the lock: other readers need not wait for the allocator.
        drop(evicted);
    }

    /// Counts an offer and forgets the offers older than the window.
    fn expire_offers(&self, st: &mut State) {
        st.offers += 1;
        let offer = st.offers;
        let window = (self.capacity / TYPICAL_BLOCK_BYTES).max(64) as u64;
        while let Some(&(old, at)) = st.seen_order.front() {
            if offer - at <= window {
                break;
            }
            st.seen_order.pop_front();
            if st.seen.get(&old) == Some(&at) {
                st.seen.remove(&old);
            }
        }
    }

    /// For a reader about to decode part of a block (a search's few rows): true when the
    /// block was offered within the window, so that decoding it whole and offering it
    /// with [`BlockCache::insert`] keeps it; otherwise this counts as its first offer.
    pub(crate) fn would_keep(&self, key: &BlockKey) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let hash = rustc_hash::FxBuildHasher.hash_one(key);
        let mut st = self.state.lock();
        if st.seen.contains_key(&hash) {
            return true;
        }
        self.expire_offers(&mut st);
        let offer = st.offers;
        st.seen.insert(hash, offer);
        st.seen_order.push_back((hash, offer));
        false
    }

    /// (hits, misses) so far.
    pub(crate) fn counters(&self) -> (u64, u64) {
        let st = self.state.lock();
        (st.hits, st.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: u64) -> BlockKey {
        BlockKey {
            month: 0,
            generation: 1,
            offset,
            fields: Box::new([0]),
        }
    }

    fn chunk(rows: usize) -> Arc<Chunk> {
        Arc::new(Chunk {
            timestamps: vec![0; rows],
            ..Chunk::default()
        })
    }

    /// Offers a block twice, as two reads would: the second offer keeps it.
    fn keep(cache: &BlockCache, offset: u64, rows: usize) {
        cache.insert(key(offset), chunk(rows));
        cache.insert(key(offset), chunk(rows));
    }

    #[test]
    fn a_block_read_in_part_twice_is_kept_when_decoded_whole() {
        let cache = BlockCache::new(1 << 20);
        assert!(!cache.would_keep(&key(1)), "first partial read: remembered only");
        assert!(cache.would_keep(&key(1)), "second: decode it whole");
        cache.insert(key(1), chunk(10));
        assert!(cache.get(&key(1)).is_some());
        assert!(!cache.would_keep(&key(2)));
        cache.insert(key(2), chunk(10));
        assert!(cache.get(&key(2)).is_some(), "a partial read counts as the first offer");
        assert!(!BlockCache::new(0).would_keep(&key(3)));
    }

    #[test]
    fn evicts_the_least_recently_used_within_capacity() {
        let cache = BlockCache::new(4 * (100 * 8 + 128));
        for i in 0..4 {
            keep(&cache, i, 100);
        }
        assert!(cache.get(&key(0)).is_some(), "touch 0 so 1 is the oldest");
        keep(&cache, 4, 100);
        assert!(cache.get(&key(1)).is_none());
        assert!(cache.get(&key(0)).is_some());
        assert!(cache.get(&key(4)).is_some());
        let (hits, misses) = cache.counters();
        assert_eq!((hits, misses), (3, 1));
        keep(&cache, 9, 10_000);
        assert!(
            cache.get(&key(9)).is_none(),
            "a chunk larger than a quarter of the cache is not kept"
        );
    }

    #[test]
    fn a_block_read_once_is_not_kept_and_a_scan_does_not_evict_what_is_read_again() {
        let cache = BlockCache::new(64 * (100 * 8 + 128));
        keep(&cache, 0, 100);
        // A scan of many blocks, each read once: none is kept, block 0 stays.
        for offset in 1..1000 {
            cache.insert(key(offset), chunk(100));
            assert!(cache.get(&key(offset)).is_none(), "block {offset} read once was kept");
        }
        assert!(cache.get(&key(0)).is_some(), "the scan evicted a block read twice");
        // Read again soon after, a block is kept.
        cache.insert(key(998), chunk(100));
        assert!(cache.get(&key(998)).is_some());
        // Read again only after many others, it is not: its first read is forgotten.
        cache.insert(key(1), chunk(100));
        assert!(cache.get(&key(1)).is_none());
    }
}
