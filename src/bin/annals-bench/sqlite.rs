//! The SQLite peer: the original design's five tables with exactly its indexes, WAL journal,
//! `synchronous=NORMAL`, prepared statements, transactions of 1000 rows; FTS5 over log
//! messages.

use crate::results::Answer;
use annals::query::CmpOp;
use annals::query::Query;
use annals::{AggregateFn, Order, TagPredicate};
use rusqlite::{Connection, params};
use std::path::Path;

pub type Result<T> = std::result::Result<T, rusqlite::Error>;

/// The original design's schema. FTS5 mirrors `system_logs.message` (external content);
/// its tokenizer keeps `_` inside words and diacritics as they are, as annals does.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS system_metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    metric_type TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    value REAL NOT NULL,
    unit TEXT,
    tags TEXT
);
CREATE INDEX IF NOT EXISTS idx_metrics_timestamp ON system_metrics(timestamp);
CREATE INDEX IF NOT EXISTS idx_metrics_type ON system_metrics(metric_type);
CREATE INDEX IF NOT EXISTS idx_metrics_name ON system_metrics(metric_name);
CREATE TABLE IF NOT EXISTS performance_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    component TEXT NOT NULL,
    operation TEXT NOT NULL,
    duration_ms REAL,
    throughput REAL,
    efficiency_percent REAL,
    error_count INTEGER DEFAULT 0,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS idx_performance_timestamp ON performance_data(timestamp);
CREATE INDEX IF NOT EXISTS idx_performance_component ON performance_data(component);
CREATE TABLE IF NOT EXISTS system_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    level TEXT NOT NULL,
    logger_name TEXT NOT NULL,
    message TEXT NOT NULL,
    module TEXT,
    function_name TEXT,
    line_number INTEGER,
    thread_id INTEGER,
    process_id INTEGER,
    extra_data TEXT
);
CREATE INDEX IF NOT EXISTS idx_logs_timestamp ON system_logs(timestamp);
CREATE INDEX IF NOT EXISTS idx_logs_level ON system_logs(level);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    level TEXT NOT NULL,
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    source_component TEXT,
    acknowledged_at INTEGER,
    resolved_at INTEGER,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS idx_alerts_timestamp ON alert_history(timestamp);
CREATE INDEX IF NOT EXISTS idx_alerts_level ON alert_history(level);
CREATE TABLE IF NOT EXISTS data_summaries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    period_type TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    data_type TEXT NOT NULL,
    summary_data TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_summaries_period ON data_summaries(period_type, period_start);
CREATE VIRTUAL TABLE IF NOT EXISTS system_logs_fts USING fts5(
    message, content='system_logs', content_rowid='id',
    tokenize = \"unicode61 remove_diacritics 0 tokenchars '_'\"
);
";

pub struct Sqlite {
    pub conn: Connection,
}

impl Sqlite {
    /// Opens (creating) the database in `dir/annals-peer.sqlite`.
    pub fn open(dir: &Path) -> Result<Sqlite> {
        let conn = Connection::open(dir.join("annals-peer.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Sqlite { conn })
    }

    /// Inserts metric rows (one per value) in one transaction.
    pub fn insert_metrics(&mut self, rows: &[(i64, &str, f64, &str)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO system_metrics (timestamp, metric_type, metric_name, value, unit, tags) VALUES (?1, 'cpu', ?2, ?3, 'percent', ?4)",
            )?;
            for (ts, name, value, tags) in rows {
                insert.execute(params![ts, name, value, tags])?;
            }
        }
        tx.commit()
    }

    /// Inserts log rows and their FTS5 entries in one transaction.
    pub fn insert_logs(&mut self, rows: &[annals::LogEntry]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO system_logs (timestamp, level, logger_name, message, module, thread_id, process_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut fts = tx.prepare_cached("INSERT INTO system_logs_fts (rowid, message) VALUES (?1, ?2)")?;
            for e in rows {
                insert.execute(params![
                    e.timestamp,
                    e.level.as_str(),
                    e.logger_name,
                    e.message,
                    e.module,
                    e.thread_id,
                    e.process_id
                ])?;
                fts.execute(params![tx.last_insert_rowid(), e.message])?;
            }
        }
        tx.commit()
    }

    /// Moves the WAL into the database file, so its size is what the data takes.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    }

    /// Answers a W1 TSBS query instance the way the original design's schema allows: one
    /// row per value, the host inside the JSON tags.
    pub fn tsbs(&self, query: &Query) -> Result<Answer> {
        let hosts: Vec<String> = match &query.selector.predicate {
            Some(TagPredicate::Eq(_, h)) => vec![h.clone()],
            Some(TagPredicate::In(_, hs)) => hs.clone(),
            _ => Vec::new(),
        };
        let mut conditions = vec!["metric_type = 'cpu'".to_string()];
        if !hosts.is_empty() {
            let list: Vec<String> = hosts.iter().map(|h| format!("'{}'", h.replace('\'', "''"))).collect();
            conditions.push(format!("json_extract(tags, '$.hostname') IN ({})", list.join(",")));
        }
        if query.range.start > i64::MIN {
            conditions.push(format!("timestamp >= {}", query.range.start));
        }
        if query.range.end < i64::MAX {
            conditions.push(format!("timestamp < {}", query.range.end));
        }
        let mut answer = Answer::default();
        if query.lastpoint {
            let sql = format!(
                "SELECT json_extract(tags, '$.hostname') AS host, metric_name, value, MAX(timestamp) FROM system_metrics WHERE {} GROUP BY host, metric_name",
                conditions.join(" AND ")
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (host, name, value, ts): (String, String, f64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                answer.put(ts, &host, &name, value);
            }
            return Ok(answer);
        }
        if query.aggregates.is_empty() {
            // Raw rows: the newest `limit` timestamps (range-10k), or the timestamps whose
            // filtered field passes (high-cpu).
            let mut timestamps = format!("SELECT DISTINCT timestamp FROM system_metrics WHERE {}", conditions.join(" AND "));
            for f in &query.filters {
                timestamps.push_str(&format!(" AND metric_name = '{}' AND value {} {}", f.field, sql_op(f.op), f.value));
            }
            if let Some(limit) = query.limit {
                timestamps.push_str(&format!(" ORDER BY timestamp DESC LIMIT {limit}"));
            }
            let sql = format!(
                "SELECT timestamp, json_extract(tags, '$.hostname'), metric_name, value FROM system_metrics WHERE {} AND timestamp IN ({timestamps})",
                conditions.join(" AND ")
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (ts, host, name, value): (i64, String, String, f64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                answer.put(ts, &host, &name, value);
            }
            return Ok(answer);
        }
        let bucket = match query.every {
            Some(annals::Bucket::Fixed(ns)) => ns,
            _ => i64::MAX,
        };
        let names: Vec<String> = query
            .aggregates
            .iter()
            .filter_map(|a| a.field.as_ref().map(|f| format!("'{f}'")))
            .collect();
        let function = match query.aggregates.first().map(|a| a.function) {
            Some(AggregateFn::Mean) => "AVG",
            _ => "MAX",
        };
        let group = if query.group_by.is_empty() {
            "''".to_string()
        } else {
            "json_extract(tags, '$.hostname')".to_string()
        };
        let time = if bucket == i64::MAX {
            "0".to_string()
        } else {
            format!("(timestamp - (((timestamp % {bucket}) + {bucket}) % {bucket}))")
        };
        let mut sql = format!(
            "SELECT {time} AS t, {group} AS g, metric_name, {function}(value) FROM system_metrics WHERE {} AND metric_name IN ({}) GROUP BY t, g, metric_name",
            conditions.join(" AND "),
            names.join(",")
        );
        if let (Order::Descending, Some(limit)) = (query.order, query.limit) {
            // Newest buckets first (groupby-orderby-limit has one field and no groups).
            sql = format!("SELECT * FROM ({sql}) ORDER BY t DESC LIMIT {limit}");
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (t, g, name, value): (i64, String, String, f64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let agg = format!("{}({name})", if function == "AVG" { "mean" } else { "max" });
            answer.put(t, &g, &agg, value);
        }
        Ok(answer)
    }

    /// Lines per (hour, level) over the whole table.
    pub fn count_by_level_per_hour(&self) -> Result<std::collections::BTreeMap<(i64, String), u64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT timestamp - (timestamp % 3600000000000) AS hour, level, COUNT(*) FROM system_logs GROUP BY hour, level",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(((r.get::<_, i64>(0)?, r.get::<_, String>(1)?), r.get::<_, i64>(2)? as u64))
        })?;
        rows.collect()
    }

    /// FTS5 search: timestamps of the newest `limit` matches at `level` in `[start, end)`.
    pub fn search(&self, fts: &str, level: &str, start: i64, end: i64, limit: usize) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.timestamp FROM system_logs_fts f JOIN system_logs l ON l.id = f.rowid
             WHERE system_logs_fts MATCH ?1 AND l.level = ?2 AND l.timestamp >= ?3 AND l.timestamp < ?4
             ORDER BY l.timestamp DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![fts, level, start, end, limit as i64], |r| r.get(0))?;
        rows.collect()
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
    }
}
