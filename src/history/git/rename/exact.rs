//! The order in which git's exact-rename pass meets identical sources.
//!
//! Git puts every rename source into a chained hash table keyed by object id
//! and, for each destination, walks the chain of that id taking the first
//! acceptable source (preferring one with the same basename). Which source is
//! "first" therefore depends on the table's insertion and growth behaviour:
//!
//! * sources are inserted from last to first, each at the head of its
//!   chain, so the chain normally lists them in source order;
//! * the table is presized for the number of sources, but its growth
//!   threshold is 80% of a power-of-two size, so for some source counts the
//!   last insertion still triggers a resize, and a resize re-links every
//!   chain in reverse.
//!
//! This module replays that bookkeeping so the same source wins ties.

use std::collections::{HashMap, VecDeque};

/// Git's hashmap starts at 64 buckets and grows by a factor of 4.
const INITIAL_BUCKETS: u64 = 64;
const GROWTH_SHIFT: u32 = 2;
/// Git's hashmap load factor in percent.
const LOAD_FACTOR: u64 = 80;

/// Source indices grouped by object id, in the order git's chain walk
/// visits them.
pub(crate) struct SourceChains<'a> {
    /// Per object id: the chain, and how many leading entries are known to
    /// be used already (so repeated walks do not rescan them).
    chains: HashMap<&'a [u8], (VecDeque<usize>, usize)>,
}

impl<'a> SourceChains<'a> {
    /// Replays insertion of sources `0..n` (given by object id) the way git's
    /// `find_exact_renames` does.
    pub(crate) fn build<I>(oids: I) -> Self
    where
        I: ExactSizeIterator<Item = &'a [u8]> + DoubleEndedIterator,
    {
        let count = oids.len() as u64;
        let mut buckets = INITIAL_BUCKETS;
        // `hashmap_init` sizes the table so `count` entries fit under the
        // load factor; git truncates this to `unsigned int`, which only
        // matters beyond 2^32 sources.
        let wanted = count * 100 / LOAD_FACTOR;
        while wanted > buckets {
            buckets <<= GROWTH_SHIFT;
        }
        let mut grow_at = buckets * LOAD_FACTOR / 100;
        let mut inserted: u64 = 0;
        let mut chains: HashMap<&'a [u8], (VecDeque<usize>, usize)> = HashMap::new();
        for (index, oid) in oids.enumerate().rev() {
            chains.entry(oid).or_default().0.push_front(index);
            inserted += 1;
            if inserted > grow_at {
                buckets <<= GROWTH_SHIFT;
                grow_at = buckets * LOAD_FACTOR / 100;
                // Entries with equal ids share a bucket before and after the
                // resize, and re-linking pushes each at the new head.
                for (chain, _) in chains.values_mut() {
                    chain.make_contiguous().reverse();
                }
            }
        }
        SourceChains { chains }
    }

    /// Sources with this object id, in git's visiting order, minus a prefix
    /// already known to be used. Sources are only ever consumed (never
    /// released), so skipping that prefix cannot change which unused source
    /// the caller picks; it only keeps many identical files from turning
    /// the walk quadratic.
    pub(crate) fn candidates(&mut self, oid: &[u8], used: &[bool]) -> impl Iterator<Item = usize> + '_ {
        let entry = self.chains.get_mut(oid);
        let visible = entry.map(|(chain, skip)| {
            while *skip < chain.len() && used[chain[*skip]] {
                *skip += 1;
            }
            chain.range(*skip..)
        });
        visible.into_iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: usize) -> Vec<usize> {
        let oids: Vec<&[u8]> = vec![b"same".as_slice(); n];
        let mut chains = SourceChains::build(oids.into_iter());
        chains.candidates(b"same", &vec![false; n]).collect()
    }

    #[test]
    fn presized_table_keeps_source_order() {
        assert_eq!(order(3), vec![0, 1, 2]);
        assert_eq!(order(204), (0..204).collect::<Vec<_>>());
    }

    #[test]
    fn growth_on_last_insert_reverses() {
        // 205 * 100 / 80 = 256 buckets, which only hold 204 before growing.
        assert_eq!(order(205), (0..205).rev().collect::<Vec<_>>());
        assert_eq!(order(206), (0..206).collect::<Vec<_>>());
    }
}
