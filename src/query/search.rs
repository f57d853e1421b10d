//! Full-text search over logs and alerts: [`SearchQuery`] in, [`SearchResult`] out.
//!
//! A search asks every source a snapshot holds (the tantivy index of each month, and the
//! in-memory index of each head) for its best candidates as (timestamp, record id,
//! series, score), merges them, and then reads only the hits' rows from the segments and
//! heads, pruning blocks by the hits' timestamps. Counting matches per level and time
//! bucket never reads a row.

use super::Bucket;
use super::cursor::{self, CursorKey};
use crate::chunk::Chunk;
use crate::error::{Error, Limit, Result};
use crate::index::SeriesSelector;
use crate::model::{FieldValue, SeriesId, SeriesKey, SeriesKind};
use crate::read::{BlockPruner, Order, ReadView, UnitData};
use crate::text::index::{Candidate, Filter, PageKey, Ranking, TopCandidates};
use crate::text::memory::FieldSeries;
use crate::text::{TextField, TextQuery, tokenize};
use crate::time::{Month, TimeRange};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Hits returned when a query sets no limit.
pub const DEFAULT_SEARCH_LIMIT: usize = 100;
/// Longest snippet, in bytes; longer texts are cut around their matches.
pub const SNIPPET_BYTES: usize = 240;

/// How hits are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum SearchOrder {
    /// Newest first (by timestamp, then record id). Pages with a keyset cursor, so
    /// records arriving between pages neither repeat nor shift a page.
    #[default]
    Newest,
    /// Oldest first, paged like [`SearchOrder::Newest`].
    Oldest,
    /// Best BM25 score first (ties newest first). Scores come from each month's index
    /// and the head's, so they compare well within a month and roughly across months.
    /// Pages by position.
    Relevance,
}

impl SearchOrder {
    /// Parses `newest` or `relevance`.
    pub fn parse(text: &str) -> Result<SearchOrder> {
        match text.to_ascii_lowercase().as_str() {
            "newest" => Ok(SearchOrder::Newest),
            "oldest" => Ok(SearchOrder::Oldest),
            "relevance" => Ok(SearchOrder::Relevance),
            other => Err(Error::invalid(format!(
                "unknown search order {other:?} (newest, oldest or relevance)"
            ))),
        }
    }
}

/// A full-text search.
///
/// ```
/// use annals::{SearchOrder, SearchQuery, TagPredicate};
/// let q = SearchQuery::new(r#""connection refused" OR timeout"#)
///     .with_predicate(TagPredicate::eq("level", "ERROR"))
///     .order(SearchOrder::Newest)
///     .limit(20);
/// assert_eq!(q.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The query string (see [`crate::text::query`]); empty matches every record.
    pub text: String,
    /// Which series: kind (every kind with text when unset: logs, alerts, commits), measurement, tag predicate
    /// (`level=ERROR`, `logger_name=...`, `module=...`) through the tag index.
    pub selector: SeriesSelector,
    /// Records in this time range.
    pub range: TimeRange,
    /// Order of hits.
    pub order: SearchOrder,
    /// Hits per page.
    pub limit: usize,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
    /// Also count every match (ignoring limit and cursor).
    pub count_total: bool,
}

impl SearchQuery {
    /// Searches `text` over all time, newest first, [`DEFAULT_SEARCH_LIMIT`] hits.
    pub fn new(text: impl Into<String>) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            selector: SeriesSelector::default(),
            range: TimeRange::ALL,
            order: SearchOrder::Newest,
            limit: DEFAULT_SEARCH_LIMIT,
            cursor: None,
            count_total: false,
        }
    }

    /// Only records in `range`.
    pub fn range(mut self, range: TimeRange) -> SearchQuery {
        self.range = range;
        self
    }

    /// Only series satisfying `predicate` as well.
    pub fn with_predicate(mut self, predicate: crate::index::TagPredicate) -> SearchQuery {
        self.selector = self.selector.with_predicate(predicate);
        self
    }

    /// Orders hits.
    pub fn order(mut self, order: SearchOrder) -> SearchQuery {
        self.order = order;
        self
    }

    /// Hits per page.
    pub fn limit(mut self, limit: usize) -> SearchQuery {
        self.limit = limit;
        self
    }

    /// Continues after a page.
    pub fn cursor(mut self, cursor: impl Into<String>) -> SearchQuery {
        self.cursor = Some(cursor.into());
        self
    }

    /// Counts every match too.
    pub fn count_total(mut self, count: bool) -> SearchQuery {
        self.count_total = count;
        self
    }

    /// Identifies the query apart from its paging, for cursors.
    fn fingerprint(&self, parsed: &TextQuery) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        parsed.to_string().hash(&mut h);
        format!("{:?}", self.selector).hash(&mut h);
        (self.range.start, self.range.end, self.order).hash(&mut h);
        h.finish()
    }
}

/// Where the matched terms are in a snippet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snippet {
    /// The record's text, or the part of it around the matches when it is longer than
    /// [`SNIPPET_BYTES`].
    pub fragment: String,
    /// Byte ranges of `fragment` that matched a query term, ascending, disjoint.
    pub highlights: Vec<std::ops::Range<usize>>,
    /// True when `fragment` is only part of the text.
    pub truncated: bool,
}

impl Snippet {
    /// The fragment with each highlight wrapped in `open` and `close` (e.g. `**`).
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut out = String::with_capacity(self.fragment.len() + self.highlights.len() * (open.len() + close.len()));
        let mut at = 0;
        for h in &self.highlights {
            out.push_str(&self.fragment[at..h.start]);
            out.push_str(open);
            out.push_str(&self.fragment[h.clone()]);
            out.push_str(close);
            at = h.end;
        }
        out.push_str(&self.fragment[at..]);
        out
    }
}

/// One matching record.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Its timestamp (ns).
    pub time: i64,
    /// Its record id.
    pub record_id: u64,
    /// Its series.
    pub series: SeriesId,
    /// The series key (kind, measurement, tags such as level and logger_name).
    pub key: Arc<SeriesKey>,
    /// Its fields, by name.
    pub fields: Vec<(Arc<str>, FieldValue)>,
    /// BM25 score under [`SearchOrder::Relevance`]; 0 under newest-first.
    pub score: f32,
    /// The matched terms in context.
    pub snippet: Snippet,
}

impl SearchHit {
    /// The hit as JSON: `time` (RFC 3339, or nanoseconds with `integer_time`), `record_id`,
    /// `kind`, `measurement`, `tags`, `fields`, `snippet` (`fragment`, `highlights` as
    /// `[start, end)` byte offsets into it, `truncated`), and `score` when asked for.
    pub fn to_json(&self, integer_time: bool, with_score: bool) -> serde_json::Value {
        let tags: serde_json::Map<String, serde_json::Value> = self.key.tags().iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        let fields: serde_json::Map<String, serde_json::Value> = self.fields.iter().map(|(n, v)| (n.to_string(), v.to_json())).collect();
        let time: serde_json::Value = if integer_time {
            self.time.into()
        } else {
            crate::time::format_rfc3339(self.time).into()
        };
        let mut object = serde_json::json!({
            "time": time,
            "record_id": self.record_id,
            "kind": self.key.kind().name(),
            "measurement": self.key.measurement(),
            "tags": tags,
            "fields": fields,
            "snippet": {
                "fragment": self.snippet.fragment,
                "highlights": self.snippet.highlights.iter().map(|h| [h.start, h.end]).collect::<Vec<_>>(),
                "truncated": self.snippet.truncated,
            },
        });
        if with_score && let Some(map) = object.as_object_mut() {
            map.insert("score".into(), serde_json::json!(self.score));
        }
        object
    }
}

/// A page of hits.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// Hits in the requested order.
    pub hits: Vec<SearchHit>,
    /// Every match of the query (ignoring limit and cursor), when asked for.
    pub total: Option<u64>,
    /// Pass this as [`SearchQuery::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Matches in one time bucket at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchCount {
    /// Start of the bucket (ns).
    pub time: i64,
    /// The `level` tag of the matching series (`None` when they have none).
    pub level: Option<String>,
    /// Matching records.
    pub count: u64,
}

/// The query, resolved against the catalog.
struct Plan {
    query: TextQuery,
    filter: Filter,
    fields: FieldSeries,
    ranking: Ranking,
}

fn plan(ctx: &ReadView<'_>, q: &SearchQuery, query: TextQuery, page_after: Option<PageKey>) -> Result<Plan> {
    let catalog = ctx.catalog.read();
    let selector = &q.selector;
    let series = if selector.kind.is_none() && selector.measurement.is_none() && selector.predicate.is_none() {
        None
    } else {
        let selected = catalog.select(selector)?;
        if selected.len() > ctx.limits.max_series {
            return Err(Error::limit(Limit::QuerySeries, selected.len(), ctx.limits.max_series));
        }
        Some(Arc::new(selected))
    };
    let mut fields = FieldSeries::default();
    let mut wanted = Vec::new();
    field_terms(&query, &mut wanted);
    if !wanted.is_empty() {
        let texts = crate::text::text_series(&catalog);
        for (field, value) in wanted {
            let matching: RoaringBitmap = texts
                .iter()
                .filter(|&id| {
                    catalog
                        .get(id)
                        .and_then(|key| key.tag(field.tag_key()))
                        .is_some_and(|v| v.to_lowercase() == value)
                })
                .collect();
            fields.insert((field, value), matching);
        }
    }
    Ok(Plan {
        query,
        filter: Filter {
            range: q.range,
            series,
            page_after,
        },
        fields,
        ranking: match q.order {
            SearchOrder::Newest => Ranking::Newest,
            SearchOrder::Oldest => Ranking::Oldest,
            SearchOrder::Relevance => Ranking::Relevance,
        },
    })
}

/// The `field:value` terms of a query.
fn field_terms(query: &TextQuery, out: &mut Vec<(TextField, String)>) {
    match query {
        TextQuery::Field { field, value } => {
            if !out.iter().any(|(f, v)| f == field && v == value) {
                out.push((*field, value.clone()));
            }
        }
        TextQuery::And(qs) | TextQuery::Or(qs) => qs.iter().for_each(|q| field_terms(q, out)),
        TextQuery::Not(q) => field_terms(q, out),
        TextQuery::All | TextQuery::Term(_) | TextQuery::Prefix(_) | TextQuery::Phrase { .. } => {}
    }
}

/// Months of the text index a range touches, newest first.
fn months_in(ctx: &ReadView<'_>, range: TimeRange) -> Vec<Month> {
    ctx.state
        .text
        .months
        .keys()
        .rev()
        .copied()
        .filter(|m| range.overlaps(m.start_ns(), m.end_ns() - 1))
        .collect()
}

pub(crate) fn search(ctx: &ReadView<'_>, q: &SearchQuery) -> Result<SearchResult> {
    let parsed = TextQuery::parse(&q.text)?;
    let fingerprint = q.fingerprint(&parsed);
    let (page_after, offset) = match q.cursor.as_deref().map(|c| cursor::decode(c, fingerprint)).transpose()? {
        None => (None, 0u64),
        Some(CursorKey::Text(ts, rid)) if q.order == SearchOrder::Newest => (Some(PageKey::Older(ts, rid)), 0),
        Some(CursorKey::Text(ts, rid)) if q.order == SearchOrder::Oldest => (Some(PageKey::Newer(ts, rid)), 0),
        Some(CursorKey::Offset(n)) if q.order == SearchOrder::Relevance => (None, n),
        Some(_) => return Err(Error::invalid("the cursor belongs to a different query")),
    };
    let limit = q.limit;
    // One more than the page, to know whether another page follows.
    let need = offset
        .saturating_add(limit as u64)
        .saturating_add(1)
        .min(ctx.limits.max_result_rows.saturating_add(1));
    if offset.saturating_add(limit as u64) > ctx.limits.max_result_rows {
        return Err(Error::limit(
            Limit::QueryResultRows,
            offset.saturating_add(limit as u64),
            ctx.limits.max_result_rows,
        ));
    }
    let need = need as usize;
    let plan = plan(ctx, q, parsed, page_after)?;
    let mut top = TopCandidates::new(plan.ranking, need);
    let mut total = 0u64;
    for head in &ctx.state.heads {
        let found = head.text.search(
            &head.rows,
            ctx.visible_seq,
            &plan.query,
            &plan.fields,
            &plan.filter,
            plan.ranking,
            need,
            q.count_total,
        );
        total += found.total;
        found.best.into_iter().for_each(|c| top.push(c));
    }
    let mut months = months_in(ctx, q.range);
    if plan.ranking == Ranking::Oldest {
        months.reverse();
    }
    for month in months {
        // Months hold disjoint times: once the page is full of hits from months earlier
        // in the order, the rest cannot change it.
        let page_full = !q.count_total && top.len() >= need;
        let passed = top.worst().is_some_and(|w| match plan.ranking {
            Ranking::Newest => w.timestamp >= month.end_ns(),
            Ranking::Oldest => w.timestamp < month.start_ns(),
            Ranking::Relevance => false,
        });
        if page_full && passed {
            break;
        }
        let Some(view) = ctx.state.text.months.get(&month) else { continue };
        let found = view.search(&plan.query, &plan.filter, plan.ranking, need, q.count_total)?;
        total += found.total;
        found.best.into_iter().for_each(|c| top.push(c));
    }
    let mut ranked = top.into_sorted();
    let more = ranked.len() > offset as usize + limit;
    ranked.truncate(offset as usize + limit);
    let page: Vec<Candidate> = ranked.into_iter().skip(offset as usize).collect();
    let next_cursor = match (more, page.last()) {
        (true, Some(last)) => Some(cursor::encode(
            fingerprint,
            &match q.order {
                SearchOrder::Newest | SearchOrder::Oldest => CursorKey::Text(last.timestamp, last.record_id),
                SearchOrder::Relevance => CursorKey::Offset(offset + limit as u64),
            },
        )),
        _ => None,
    };
    let hits = fetch_hits(ctx, &page, &plan.query)?;
    Ok(SearchResult {
        hits,
        total: q.count_total.then_some(total),
        next_cursor,
    })
}

pub(crate) fn count(ctx: &ReadView<'_>, q: &SearchQuery, bucket: Bucket) -> Result<Vec<MatchCount>> {
    let plan = plan(ctx, q, TextQuery::parse(&q.text)?, None)?;
    let mut per_series: FxHashMap<(i64, u32), u64> = FxHashMap::default();
    for head in &ctx.state.heads {
        let counts = head
            .text
            .count(&head.rows, ctx.visible_seq, &plan.query, &plan.fields, &plan.filter, bucket);
        for (key, n) in counts {
            *per_series.entry(key).or_default() += n;
        }
    }
    for month in months_in(ctx, q.range) {
        let Some(view) = ctx.state.text.months.get(&month) else { continue };
        for (key, n) in view.count(&plan.query, &plan.filter, bucket)? {
            *per_series.entry(key).or_default() += n;
        }
    }
    let catalog = ctx.catalog.read();
    let mut levels: FxHashMap<u32, Option<String>> = FxHashMap::default();
    let mut out: BTreeMap<(i64, Option<String>), u64> = BTreeMap::new();
    for ((time, series), n) in per_series {
        let level = levels
            .entry(series)
            .or_insert_with(|| catalog.get(series).and_then(|k| k.tag("level")).map(str::to_string))
            .clone();
        *out.entry((time, level)).or_default() += n;
    }
    Ok(out
        .into_iter()
        .map(|((time, level), count)| MatchCount { time, level, count })
        .collect())
}

/// Fields of fetched hit rows by (series, record id).
type HitRows = FxHashMap<(u32, u64), Vec<(Arc<str>, FieldValue)>>;

/// Reads the rows of `page` and builds their hits, in page order.
fn fetch_hits(ctx: &ReadView<'_>, page: &[Candidate], query: &TextQuery) -> Result<Vec<SearchHit>> {
    let mut by_series: BTreeMap<u32, Vec<(i64, u64)>> = BTreeMap::new();
    for c in page {
        by_series.entry(c.series).or_default().push((c.timestamp, c.record_id));
    }
    let keys: FxHashMap<u32, Arc<SeriesKey>> = {
        let catalog = ctx.catalog.read();
        by_series.keys().filter_map(|&s| catalog.get(s).map(|k| (s, k.clone()))).collect()
    };
    let mut rows: HitRows = FxHashMap::default();
    for (series, mut wanted) in by_series {
        if !keys.contains_key(&series) {
            continue;
        }
        wanted.sort_unstable();
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            continue;
        };
        let range = TimeRange::new(first.0, last.0.saturating_add(1));
        let times: Arc<Vec<i64>> = Arc::new(wanted.iter().map(|w| w.0).collect());
        let pruner: BlockPruner = {
            let times = times.clone();
            Arc::new(move |_, meta| {
                let i = times.partition_point(|&t| t < meta.min_ts);
                times.get(i).is_none_or(|&t| t > meta.max_ts)
            })
        };
        // A hit shows a commit's file without its diff bytes, which may be large.
        let fields = keys.get(&series).and_then(|k| k.hit_fields());
        let mut chunks = ctx
            .series_chunks(series, range, fields.map(Arc::from), Order::Ascending)?
            .with_pruner(Some(pruner));
        let keep_row = |timestamp: i64, record_id: u64| wanted.binary_search(&(timestamp, record_id)).is_ok();
        while let Some(unit) = chunks.next_unit() {
            let chunk = match unit? {
                UnitData::Lone { segment, meta } => match chunks.decode_lone_rows(&segment, &meta, &keep_row)? {
                    Some(chunk) => chunk,
                    None => continue,
                },
                UnitData::Rows(chunk) => chunk,
            };
            collect_rows(&chunk, &wanted, &mut rows);
        }
    }
    let positive = query.positive_terms();
    let mut hits = Vec::with_capacity(page.len());
    for c in page {
        let (Some(key), Some(fields)) = (keys.get(&c.series), rows.remove(&(c.series, c.record_id))) else {
            // The index names a record the snapshot does not hold: derived data out of
            // step with the segments. Reported rather than skipped silently.
            return Err(Error::TextIndex {
                path: std::path::PathBuf::from(crate::text::index::DIR_NAME),
                reason: format!(
                    "record {} of series {} at {} is indexed but not stored; run `annals verify --repair`",
                    c.record_id, c.series, c.timestamp
                ),
            });
        };
        let text = row_text(key.kind(), &fields).unwrap_or_default();
        hits.push(SearchHit {
            time: c.timestamp,
            record_id: c.record_id,
            series: c.series,
            key: key.clone(),
            fields,
            score: c.score,
            snippet: snippet(&text, &positive),
        });
    }
    Ok(hits)
}

fn collect_rows(chunk: &Chunk, wanted: &[(i64, u64)], rows: &mut HitRows) {
    for row in 0..chunk.len() {
        let Some(&rid) = chunk.record_ids.get(row) else { continue };
        if wanted.binary_search(&(chunk.timestamps[row], rid)).is_err() {
            continue;
        }
        let fields = chunk
            .columns
            .iter()
            .filter_map(|c| c.value(row).map(|v| (c.name.clone(), v)))
            .collect();
        rows.insert((chunk.series, rid), fields);
    }
}

fn row_text(kind: SeriesKind, fields: &[(Arc<str>, FieldValue)]) -> Option<String> {
    kind.row_text(|name| {
        fields.iter().find_map(|(n, v)| match v {
            FieldValue::Str(s) if &**n == name => Some(s.as_str()),
            _ => None,
        })
    })
    .map(std::borrow::Cow::into_owned)
}

/// The part of `text` with the most matches of `terms` ((term, is a prefix)), at most
/// [`SNIPPET_BYTES`] long, with the matches marked.
pub(crate) fn snippet(text: &str, terms: &[(String, bool)]) -> Snippet {
    let matched: Vec<std::ops::Range<usize>> = tokenize(text)
        .into_iter()
        .filter(|t| {
            terms.iter().any(|(term, prefix)| {
                if *prefix {
                    t.term.starts_with(term.as_str())
                } else {
                    t.term == *term
                }
            })
        })
        .map(|t| t.offsets)
        .fold(Vec::new(), |mut merged: Vec<std::ops::Range<usize>>, m| {
            // Parts of one identifier (`10.0.0.1`, `org.apache.Foo`) are marked as one.
            match merged.last_mut() {
                Some(last) if !text[last.end..m.start].contains(char::is_whitespace) => last.end = m.end,
                _ => merged.push(m),
            }
            merged
        });
    if text.len() <= SNIPPET_BYTES {
        return Snippet {
            fragment: text.to_string(),
            highlights: matched,
            truncated: false,
        };
    }
    // Start a little before the match that begins the densest window.
    const LEAD: usize = 40;
    let mut best = (0usize, 0usize);
    for (i, m) in matched.iter().enumerate() {
        let start = m.start.saturating_sub(LEAD);
        let n = matched[i..].iter().take_while(|o| o.end <= start + SNIPPET_BYTES).count();
        if n > best.1 {
            best = (start, n);
        }
    }
    let mut start = best.0.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + SNIPPET_BYTES).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Snippet {
        fragment: text[start..end].to_string(),
        highlights: matched
            .into_iter()
            .filter(|m| m.start >= start && m.end <= end)
            .map(|m| m.start - start..m.end - start)
            .collect(),
        truncated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn snippets_mark_terms_and_prefixes() {
        let s = snippet("Disk FULL on /dev/sda1, disks: 3", &terms(&[("disk", true), ("full", false)]));
        assert_eq!(s.marked("[", "]"), "[Disk] [FULL] on /dev/sda1, [disks]: 3");
        assert!(!s.truncated);
        let s = snippet(
            "to 10.250.19.102:50010 at 10.1",
            &terms(&[("10", false), ("102", false), ("19", false), ("250", false)]),
        );
        assert_eq!(s.marked("[", "]"), "to [10.250.19.102]:50010 at [10].1");
    }

    #[test]
    fn long_texts_are_cut_around_the_matches() {
        let text = format!("{} needle here {}", "x ".repeat(300), "y ".repeat(300));
        let s = snippet(&text, &terms(&[("needle", false)]));
        assert!(s.truncated);
        assert!(s.fragment.len() <= SNIPPET_BYTES);
        assert_eq!(s.highlights.len(), 1);
        assert_eq!(&s.fragment[s.highlights[0].clone()], "needle");
        // Multi-byte characters are never split.
        let text = format!("{}é needle", "é".repeat(400));
        let s = snippet(&text, &terms(&[("needle", false)]));
        assert!(s.fragment.ends_with("needle") || s.fragment.contains("needle"));
    }

    #[test]
    fn search_orders_parse() {
        assert_eq!(SearchOrder::parse("Relevance").unwrap(), SearchOrder::Relevance);
        assert_eq!(SearchOrder::parse("oldest").unwrap(), SearchOrder::Oldest);
        assert!(SearchOrder::parse("sideways").is_err());
    }
}
