//! Answers in one comparable form, so each query instance is checked equal across engines
//! before its time counts.

use std::collections::BTreeMap;

/// (time or bucket start, host or group) → column → value.
#[derive(Debug, Default, PartialEq)]
pub struct Answer(pub BTreeMap<(i64, String), BTreeMap<String, f64>>);

/// An annals query result read to its end: what an application holds after a query, and
/// what its latency covers.
pub struct Materialized {
    pub tag_columns: Vec<String>,
    pub value_columns: Vec<String>,
    pub rows: Vec<annals::QueryRow>,
}

impl Materialized {
    pub fn read(result: annals::QueryResult) -> annals::Result<Materialized> {
        let tag_columns = result.tag_columns.clone();
        let value_columns = result.value_columns.clone();
        let rows = result.collect::<annals::Result<Vec<_>>>()?;
        Ok(Materialized {
            tag_columns,
            value_columns,
            rows,
        })
    }
}

impl Answer {
    pub fn put(&mut self, time: i64, group: &str, column: &str, value: f64) {
        self.0
            .entry((time, group.to_string()))
            .or_default()
            .insert(column.to_string(), value);
    }

    /// An annals result: raw and lastpoint rows keyed by their `hostname` tag, aggregated
    /// rows by their group-by values.
    pub fn from_annals(result: &Materialized) -> Answer {
        let host_column = result.tag_columns.iter().position(|c| c == "hostname");
        let mut answer = Answer::default();
        for row in &result.rows {
            let group = host_column.and_then(|i| row.tags.get(i).cloned().flatten()).unwrap_or_default();
            for (name, value) in result.value_columns.iter().zip(&row.values) {
                if let Some(v) = value.as_ref().and_then(|v| v.as_f64()) {
                    answer.put(row.time.unwrap_or(0), &group, name, v);
                }
            }
        }
        answer
    }

    /// Equal keys, and values equal within a relative 1e-9 (sums in another order).
    pub fn agrees_with(&self, other: &Answer) -> Result<(), String> {
        if self.0.len() != other.0.len() {
            return Err(format!("{} rows against {}", self.0.len(), other.0.len()));
        }
        for ((key, a), (other_key, b)) in self.0.iter().zip(&other.0) {
            if key != other_key {
                return Err(format!("row {key:?} against {other_key:?}"));
            }
            if a.len() != b.len() || a.keys().ne(b.keys()) {
                return Err(format!("columns {:?} against {:?} at {key:?}", a.keys(), b.keys()));
            }
            for ((name, x), y) in a.iter().zip(b.values()) {
                if (x - y).abs() > 1e-9 * x.abs().max(y.abs()).max(1.0) {
                    return Err(format!("{name} = {x} against {y} at {key:?}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_agree_within_rounding_and_differ_otherwise() {
        let mut a = Answer::default();
        a.put(0, "host_1", "mean(usage_user)", 50.123456789);
        let mut b = Answer::default();
        b.put(0, "host_1", "mean(usage_user)", 50.123456789 * (1.0 + 1e-12));
        assert!(a.agrees_with(&b).is_ok());
        let mut c = Answer::default();
        c.put(0, "host_1", "mean(usage_user)", 50.13);
        assert!(a.agrees_with(&c).is_err());
        let mut d = Answer::default();
        d.put(60, "host_1", "mean(usage_user)", 50.123456789);
        assert!(a.agrees_with(&d).is_err());
        assert!(a.agrees_with(&Answer::default()).is_err());
    }
}
