//! The full-text index of a head: rows not yet in segments are searchable too.
//!
//! It is built lazily: a search first indexes the head rows that arrived since the last
//! search (a few thousand rows at a time, so writers are not held up), then evaluates the
//! query over positional postings. Writes pay nothing for it; a head that is never
//! searched never builds one. It lives and dies with its head.

use super::index::{BucketCounts, Filter, Found, Ranking, TopCandidates};
use super::query::{TextField, TextQuery};
use super::tokenizer::Terms;
use crate::head::{Head, TextRow};
use crate::model::SeriesId;
use crate::time::Bucket;
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Head rows read per step of catching up, so the head's lock is held briefly.
const CATCH_UP_ROWS: usize = 4096;

/// Series whose level or logger matches each `field:value` of a query.
pub(crate) type FieldSeries = FxHashMap<(TextField, String), RoaringBitmap>;

#[derive(Debug, Clone, Copy)]
struct Doc {
    series: SeriesId,
    timestamp: i64,
    seq: u64,
    /// Number of terms (for BM25).
    len: u32,
}

#[derive(Default)]
struct State {
    docs: Vec<Doc>,
    terms: BTreeMap<Box<str>, u32>,
    /// By term id: (doc, position), ordered by doc then position.
    postings: Vec<Vec<(u32, u32)>>,
    /// Head rows looked at, per series.
    done: FxHashMap<SeriesId, usize>,
    /// `Head::rows` when the index last caught up.
    rows_seen: u64,
    total_len: u64,
}

/// (doc, position) pairs of a term, borrowed or merged from a prefix's expansions.
type Postings<'a> = std::borrow::Cow<'a, [(u32, u32)]>;

/// The lazily built index of one head.
#[derive(Default)]
pub(crate) struct HeadText {
    state: Mutex<State>,
    bytes: AtomicUsize,
}

impl std::fmt::Debug for HeadText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadText").field("bytes", &self.bytes()).finish()
    }
}

impl HeadText {
    /// Approximate memory held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The best `limit` matches among rows with `seq <= visible` passing `filter`, and (when
    /// `count`) how many pass it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search(
        &self,
        head: &RwLock<Head>,
        visible: u64,
        query: &TextQuery,
        fields: &FieldSeries,
        filter: &Filter,
        ranking: Ranking,
        limit: usize,
        count: bool,
    ) -> Found {
        let mut state = self.state.lock();
        self.catch_up(&mut state, head);
        let docs = state.eval(query, fields);
        let mut top = TopCandidates::new(ranking, limit);
        let mut total = 0;
        let weights = (ranking == Ranking::Relevance).then(|| state.term_weights(query));
        for d in docs {
            let doc = state.docs[d as usize];
            if doc.seq > visible || !filter.admits(doc.timestamp, doc.series) {
                continue;
            }
            if count {
                total += 1;
            }
            if filter.after_cursor(doc.timestamp, doc.seq) {
                let score = weights.as_ref().map_or(0.0, |w| state.score(d, w));
                top.push(super::index::Candidate {
                    timestamp: doc.timestamp,
                    record_id: doc.seq,
                    series: doc.series,
                    score,
                });
            }
        }
        Found {
            best: top.into_sorted(),
            total,
        }
    }

    /// Matches among rows with `seq <= visible` passing `filter`, per (bucket, series).
    pub(crate) fn count(
        &self,
        head: &RwLock<Head>,
        visible: u64,
        query: &TextQuery,
        fields: &FieldSeries,
        filter: &Filter,
        bucket: Bucket,
    ) -> BucketCounts {
        let mut state = self.state.lock();
        self.catch_up(&mut state, head);
        let mut counts = BucketCounts::default();
        for d in state.eval(query, fields) {
            let doc = state.docs[d as usize];
            if doc.seq <= visible && filter.admits(doc.timestamp, doc.series) {
                *counts.entry((bucket.start(doc.timestamp), doc.series)).or_default() += 1;
            }
        }
        counts
    }

    /// Indexes the head rows that arrived since the last call.
    fn catch_up(&self, state: &mut State, head: &RwLock<Head>) {
        let mut rows = Vec::new();
        loop {
            rows.clear();
            let more = {
                let head = head.read();
                if head.rows() == state.rows_seen {
                    return;
                }
                let more = head.text_rows(&mut state.done, CATCH_UP_ROWS, &mut rows);
                if !more {
                    state.rows_seen = head.rows();
                }
                more
            };
            for row in rows.drain(..) {
                state.add(row);
            }
            self.bytes.store(state.bytes(), Ordering::Relaxed);
            if !more {
                return;
            }
        }
    }
}

impl State {
    fn bytes(&self) -> usize {
        self.docs.len() * std::mem::size_of::<Doc>()
            + self.postings.iter().map(|p| p.capacity() * 8 + 24).sum::<usize>()
            + self.terms.keys().map(|t| t.len() + 48).sum::<usize>()
    }

    fn add(&mut self, row: TextRow) {
        let doc = self.docs.len() as u32;
        let mut terms = Terms::new(&row.text);
        let mut term = String::new();
        let mut len = 0u32;
        while let Some((position, _)) = terms.next_into(&mut term) {
            let id = match self.terms.get(term.as_str()) {
                Some(&id) => id,
                None => {
                    let id = self.postings.len() as u32;
                    self.terms.insert(term.as_str().into(), id);
                    self.postings.push(Vec::new());
                    id
                }
            };
            self.postings[id as usize].push((doc, position));
            len += 1;
        }
        self.total_len += u64::from(len);
        self.docs.push(Doc {
            series: row.series,
            timestamp: row.timestamp,
            seq: row.seq,
            len,
        });
    }

    fn postings(&self, term: &str) -> &[(u32, u32)] {
        self.terms.get(term).map_or(&[], |&id| &self.postings[id as usize])
    }

    /// Term ids starting with `prefix`.
    fn expand(&self, prefix: &str) -> Vec<u32> {
        self.terms
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(t, _)| t.starts_with(prefix))
            .map(|(_, &id)| id)
            .collect()
    }

    fn all(&self) -> Vec<u32> {
        (0..self.docs.len() as u32).collect()
    }

    /// Documents matching `query`, ascending.
    fn eval(&self, query: &TextQuery, fields: &FieldSeries) -> Vec<u32> {
        match query {
            TextQuery::All => self.all(),
            TextQuery::Term(t) => docs_of(self.postings(t)),
            TextQuery::Prefix(p) => {
                let mut docs: Vec<u32> = self
                    .expand(p)
                    .into_iter()
                    .flat_map(|id| docs_of(&self.postings[id as usize]))
                    .collect();
                docs.sort_unstable();
                docs.dedup();
                docs
            }
            TextQuery::Phrase { terms, prefix_last } => self.phrase(terms, *prefix_last),
            TextQuery::Field { field, value } => match fields.get(&(*field, value.clone())) {
                Some(series) => (0..self.docs.len() as u32)
                    .filter(|&d| series.contains(self.docs[d as usize].series))
                    .collect(),
                None => Vec::new(),
            },
            TextQuery::And(all) => {
                let (negative, positive): (Vec<&TextQuery>, Vec<&TextQuery>) = all.iter().partition(|q| matches!(q, TextQuery::Not(_)));
                let mut docs = match positive.split_first() {
                    Some((first, rest)) => rest
                        .iter()
                        .fold(self.eval(first, fields), |acc, q| intersect(&acc, &self.eval(q, fields))),
                    None => self.all(),
                };
                for q in negative {
                    if let TextQuery::Not(inner) = q {
                        docs = subtract(&docs, &self.eval(inner, fields));
                    }
                }
                docs
            }
            TextQuery::Or(any) => {
                let mut docs: Vec<u32> = any.iter().flat_map(|q| self.eval(q, fields)).collect();
                docs.sort_unstable();
                docs.dedup();
                docs
            }
            TextQuery::Not(inner) => subtract(&self.all(), &self.eval(inner, fields)),
        }
    }

    fn phrase(&self, terms: &[(u32, String)], prefix_last: bool) -> Vec<u32> {
        // Postings per phrase term; the prefix term's are the merge of its expansions.
        let mut lists: Vec<(u32, Postings<'_>)> = Vec::with_capacity(terms.len());
        for (i, (offset, term)) in terms.iter().enumerate() {
            if prefix_last && i + 1 == terms.len() {
                let mut merged: Vec<(u32, u32)> = self
                    .expand(term)
                    .into_iter()
                    .flat_map(|id| self.postings[id as usize].iter().copied())
                    .collect();
                merged.sort_unstable();
                lists.push((*offset, merged.into()));
            } else {
                lists.push((*offset, self.postings(term).into()));
            }
        }
        let Some(rarest) = (0..lists.len()).min_by_key(|&i| lists[i].1.len()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for doc in docs_of(&lists[rarest].1) {
            let runs: Vec<(u32, &[(u32, u32)])> = lists.iter().map(|(o, l)| (*o, run_of(l, doc))).collect();
            let (first_offset, first_run) = runs[0];
            let hit = first_run.iter().any(|&(_, p)| {
                p.checked_sub(first_offset).is_some_and(|base| {
                    runs[1..]
                        .iter()
                        .all(|(o, run)| run.binary_search_by_key(&(base + o), |&(_, q)| q).is_ok())
                })
            });
            if hit {
                out.push(doc);
            }
        }
        out
    }

    /// BM25 weights (idf) of the query's positive plain terms.
    fn term_weights(&self, query: &TextQuery) -> Vec<(u32, f32)> {
        let n = self.docs.len() as f32;
        query
            .positive_terms()
            .into_iter()
            .filter(|(_, prefix)| !prefix)
            .filter_map(|(t, _)| self.terms.get(t.as_str()).copied())
            .map(|id| {
                let df = docs_of(&self.postings[id as usize]).len() as f32;
                (id, (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
            })
            .collect()
    }

    /// BM25 (k1 = 1.2, b = 0.75) over this head's own statistics.
    fn score(&self, doc: u32, weights: &[(u32, f32)]) -> f32 {
        let average = self.total_len as f32 / self.docs.len().max(1) as f32;
        let len = self.docs[doc as usize].len as f32;
        weights
            .iter()
            .map(|&(id, idf)| {
                let tf = run_of(&self.postings[id as usize], doc).len() as f32;
                if tf == 0.0 {
                    0.0
                } else {
                    idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / average.max(1.0)))
                }
            })
            .sum()
    }
}

/// Distinct documents of a postings list, ascending.
fn docs_of(postings: &[(u32, u32)]) -> Vec<u32> {
    let mut docs: Vec<u32> = postings.iter().map(|&(d, _)| d).collect();
    docs.dedup();
    docs
}

/// The postings of one document.
fn run_of(postings: &[(u32, u32)], doc: u32) -> &[(u32, u32)] {
    let start = postings.partition_point(|&(d, _)| d < doc);
    let end = start + postings[start..].partition_point(|&(d, _)| d == doc);
    &postings[start..end]
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().copied().filter(|d| large.binary_search(d).is_ok()).collect()
}

fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().copied().filter(|d| b.binary_search(d).is_err()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::ApplyBatch;
    use crate::model::{BatchRow, FieldValue, SeriesKind};
    use crate::text::query::DocTerms;
    use crate::time::TimeRange;
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    fn head_with(messages: &[&str]) -> RwLock<Head> {
        let mut head = Head::new();
        let names: Vec<Arc<str>> = vec![Arc::from("message")];
        let rows: Vec<BatchRow> = (0..messages.len())
            .map(|i| BatchRow {
                series: (i % 2) as u32,
                timestamp: i as i64 * 10,
                first_value: i as u32,
                value_count: 1,
            })
            .collect();
        let values: Vec<(u32, FieldValue)> = messages.iter().map(|m| (0, FieldValue::Str(m.to_string()))).collect();
        head.apply(&ApplyBatch {
            first_seq: 1,
            series: &[(0, SeriesKind::Log), (1, SeriesKind::Alert)],
            field_names: &names,
            rows: &rows,
            values: &values,
        });
        RwLock::new(head)
    }

    fn everything() -> Filter {
        Filter {
            range: TimeRange::ALL,
            series: None,
            page_after: None,
        }
    }

    #[test]
    fn searches_match_the_brute_force_matcher() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(crate::test_seed());
        let words = [
            "disk",
            "full",
            "blk_-7",
            "10.0.0.1:80",
            "error",
            "Error:",
            "(retry)",
            "x.y.z",
            "--",
            "|",
        ];
        let messages: Vec<String> = (0..300)
            .map(|_| {
                (0..rng.random_range(1..8))
                    .map(|_| words[rng.random_range(0..words.len())])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        // Alerts (odd rows) index only title and description, and these rows have neither.
        let head = head_with(&refs);
        let text = HeadText::default();
        let queries = [
            "disk",
            "disk full",
            "\"disk full\"",
            "10.0.0.1",
            "0.0.1",
            "blk_-7",
            "err*",
            "\"full err\"*",
            "NOT error",
            "disk OR x.y",
            "retry -full",
            "*",
            "\"error error\"",
        ];
        for q in queries {
            let query = TextQuery::parse(q).unwrap();
            let found = text.search(
                &head,
                u64::MAX,
                &query,
                &FieldSeries::default(),
                &everything(),
                Ranking::Newest,
                usize::MAX,
                true,
            );
            let want: Vec<u64> = messages
                .iter()
                .enumerate()
                .filter(|(i, m)| i % 2 == 0 && query.matches(&DocTerms::new(m), &|_| None))
                .map(|(i, _)| i as u64 + 1)
                .rev()
                .collect();
            let got: Vec<u64> = found.best.iter().map(|c| c.record_id).collect();
            assert_eq!(got, want, "query {q:?}");
            assert_eq!(found.total, want.len() as u64);
        }
    }

    #[test]
    fn catches_up_with_new_rows_and_respects_visibility() {
        let head = head_with(&["alpha", "x", "alpha beta"]);
        let text = HeadText::default();
        let query = TextQuery::parse("alpha").unwrap();
        let search = |visible| {
            text.search(
                &head,
                visible,
                &query,
                &FieldSeries::default(),
                &everything(),
                Ranking::Newest,
                10,
                true,
            )
            .best
            .iter()
            .map(|c| c.record_id)
            .collect::<Vec<_>>()
        };
        assert_eq!(search(u64::MAX), vec![3, 1]);
        assert_eq!(search(2), vec![1]);
        {
            let names: Vec<Arc<str>> = vec![Arc::from("message")];
            head.write().apply(&ApplyBatch {
                first_seq: 4,
                series: &[(0, SeriesKind::Log)],
                field_names: &names,
                rows: &[BatchRow {
                    series: 0,
                    timestamp: 5,
                    first_value: 0,
                    value_count: 1,
                }],
                values: &[(0, FieldValue::Str("ALPHA gamma".into()))],
            });
        }
        assert_eq!(search(u64::MAX), vec![3, 4, 1]);
        assert!(text.bytes() > 0);
        let counts = text.count(&head, u64::MAX, &query, &FieldSeries::default(), &everything(), Bucket::Fixed(10));
        assert_eq!(counts.get(&(0, 0)), Some(&2));
        assert_eq!(counts.get(&(20, 0)), Some(&1));
    }
}
