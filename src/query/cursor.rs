//! Opaque cursors for keyset pagination: the key of the last row of a page, tied to the
//! query it came from. A next page starts strictly after that key, so rows are neither
//! repeated nor skipped when data arrives between pages.

use crate::error::{Error, Result};
use crate::read::Order;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// Where a page ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CursorKey {
    /// Raw rows: (timestamp, series id, record id).
    Raw(i64, u32, u64),
    /// Aggregated rows: (bucket start, group tag values).
    Group(Option<i64>, Vec<Option<String>>),
    /// Lastpoint rows: the series id.
    Series(u32),
    /// Newest-first search hits: (timestamp, record id) of the last hit.
    Text(i64, u64),
    /// Relevance-ordered search hits: how many hits earlier pages held.
    Offset(u64),
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    q: u64,
    k: CursorKey,
}

/// Identifies a query apart from its paging.
pub(crate) fn fingerprint(query: &super::Query) -> u64 {
    let mut unpaged = query.clone();
    unpaged.cursor = None;
    unpaged.limit = None;
    unpaged.offset = 0;
    let mut h = rustc_hash::FxHasher::default();
    format!("{unpaged:?}").hash(&mut h);
    h.finish()
}

pub(crate) fn encode(fingerprint: u64, key: &CursorKey) -> String {
    let json = serde_json::to_vec(&Cursor {
        q: fingerprint,
        k: key.clone(),
    })
    .unwrap_or_default();
    json.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode(text: &str, fingerprint: u64) -> Result<CursorKey> {
    let bad = || Error::invalid("the cursor is not one this store issued");
    if !text.len().is_multiple_of(2) || text.len() > 16_384 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if cursor.q != fingerprint {
        return Err(Error::invalid("the cursor belongs to a different query"));
    }
    Ok(cursor.k)
}

/// Whether `row` sorts after `key` in the output order of aggregated rows.
pub(crate) fn after_in_order(row: &CursorKey, key: &CursorKey, order: Order) -> bool {
    match (row, key) {
        (CursorKey::Group(rt, rg), CursorKey::Group(kt, kg)) => {
            let time = if order == Order::Descending { kt.cmp(rt) } else { rt.cmp(kt) };
            time.then_with(|| rg.cmp(kg)).is_gt()
        }
        (CursorKey::Series(r), CursorKey::Series(k)) => r > k,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_tied_to_their_query() {
        let key = CursorKey::Group(Some(5), vec![Some("a".into()), None]);
        let text = encode(42, &key);
        assert_eq!(decode(&text, 42).unwrap(), key);
        assert!(decode(&text, 43).is_err());
        assert!(decode("zz", 42).is_err());
        assert!(decode("abc", 42).is_err());
    }
}
