//! A bounded, least-recently-used cache of decoded blocks, shared by all segment readers of
//! an engine. Keys name a segment (month and generation, never reused), a block offset and
//! the exact set of decoded fields, so a hit is always the same bytes decoded the same way.

use crate::chunk::Chunk;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
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
}

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

    pub(crate) fn insert(&self, key: BlockKey, chunk: Arc<Chunk>) {
        let bytes = chunk_bytes(&chunk);
        if bytes > self.capacity / 4 {
            return;
        }
        let mut st = self.state.lock();
        st.tick += 1;
        let tick = st.tick;
        if let Some(old) = st.map.insert(key.clone(), Entry { chunk, tick, bytes }) {
            st.by_tick.remove(&old.tick);
            st.bytes -= old.bytes;
        }
        st.by_tick.insert(tick, key);
        st.bytes += bytes;
        while st.bytes > self.capacity {
            let Some((_, oldest)) = st.by_tick.pop_first() else { break };
            if let Some(e) = st.map.remove(&oldest) {
                st.bytes -= e.bytes;
            }
        }
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

    #[test]
    fn evicts_the_least_recently_used_within_capacity() {
        let cache = BlockCache::new(4 * (100 * 8 + 128));
        for i in 0..4 {
            cache.insert(key(i), chunk(100));
        }
        assert!(cache.get(&key(0)).is_some(), "touch 0 so 1 is the oldest");
        cache.insert(key(4), chunk(100));
        assert!(cache.get(&key(1)).is_none());
        assert!(cache.get(&key(0)).is_some());
        assert!(cache.get(&key(4)).is_some());
        let (hits, misses) = cache.counters();
        assert_eq!((hits, misses), (3, 1));
        cache.insert(key(9), chunk(10_000));
        assert!(
            cache.get(&key(9)).is_none(),
            "a chunk larger than a quarter of the cache is not kept"
        );
    }
}
