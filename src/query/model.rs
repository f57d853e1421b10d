//! The typed query model shared by the library, the CLI and the server.

use crate::error::{Error, Result};
use crate::read::Order;
use crate::scan::SeriesSelector;
pub use crate::time::Bucket;
use crate::time::TimeRange;

/// One query: which series, which fields, what time, and either raw rows, aggregates, or
/// the newest row per series.
///
/// ```
/// use annals::{Aggregate, AggregateFn, Bucket, Query, SeriesSelector};
/// let q = Query {
///     selector: SeriesSelector::measurement("cpu").with_tag("hostname", "host_1"),
///     aggregates: vec![Aggregate::of(AggregateFn::Max, "usage_user")],
///     every: Some(Bucket::parse("1m").unwrap()),
///     ..Query::default()
/// };
/// assert_eq!(q.aggregates[0].column_name(), "max(usage_user)");
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// The series.
    pub selector: SeriesSelector,
    /// Raw and lastpoint modes: only these fields (all when `None`).
    pub fields: Option<Vec<String>>,
    /// Conditions on field values; a row is used only when all hold.
    pub filters: Vec<FieldFilter>,
    /// The time range.
    pub range: TimeRange,
    /// Aggregates; empty for raw rows.
    pub aggregates: Vec<Aggregate>,
    /// Tags to group aggregates by.
    pub group_by: Vec<String>,
    /// Time buckets to group aggregates by.
    pub every: Option<Bucket>,
    /// What empty buckets produce.
    pub fill: Fill,
    /// Time order of the output.
    pub order: Order,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// Rows to skip first.
    pub offset: usize,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
    /// The newest row of each series instead.
    pub lastpoint: bool,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggregateFn {
    /// Values present (rows, for `count(*)`).
    Count,
    /// Sum of numeric values.
    Sum,
    /// Smallest numeric value (NaN ignored).
    Min,
    /// Largest numeric value (NaN ignored).
    Max,
    /// `sum / count` of numeric values (never an average of averages).
    Mean,
    /// Value of the earliest row.
    First,
    /// Value of the latest row.
    Last,
    /// Sample standard deviation of numeric values (null below two values).
    Stddev,
    /// Nearest-rank percentile (0..=100) of numeric values (NaN ignored).
    Percentile(f64),
}

impl AggregateFn {
    /// Parses `count`, `sum`, `min`, `max`, `mean` (or `avg`), `first`, `last`, `stddev`,
    /// `p95`, `percentile95`, `percentile(95)`.
    pub fn parse(text: &str) -> Result<AggregateFn> {
        let t = text.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "count" => AggregateFn::Count,
            "sum" => AggregateFn::Sum,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            "mean" | "avg" => AggregateFn::Mean,
            "first" => AggregateFn::First,
            "last" => AggregateFn::Last,
            "stddev" => AggregateFn::Stddev,
            _ => {
                let q = t
                    .strip_prefix("percentile(")
                    .and_then(|r| r.strip_suffix(')'))
                    .or_else(|| t.strip_prefix("percentile"))
                    .or_else(|| t.strip_prefix('p'))
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .filter(|q| (0.0..=100.0).contains(q))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "unknown aggregate {text:?} (count, sum, min, max, mean, first, last, stddev, p95 or percentile(95))"
                        ))
                    })?;
                AggregateFn::Percentile(q)
            }
        })
    }

    /// Short name used in column names: `max`, `p95`.
    pub fn name(&self) -> String {
        match self {
            AggregateFn::Count => "count".into(),
            AggregateFn::Sum => "sum".into(),
            AggregateFn::Min => "min".into(),
            AggregateFn::Max => "max".into(),
            AggregateFn::Mean => "mean".into(),
            AggregateFn::First => "first".into(),
            AggregateFn::Last => "last".into(),
            AggregateFn::Stddev => "stddev".into(),
            AggregateFn::Percentile(q) => format!("p{q}"),
        }
    }
}

/// An aggregate of one field, or `count(*)` of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The function.
    pub function: AggregateFn,
    /// The field; `None` only for `count(*)`.
    pub field: Option<String>,
}

impl Aggregate {
    /// `function(field)`.
    pub fn of(function: AggregateFn, field: impl Into<String>) -> Aggregate {
        Aggregate {
            function,
            field: Some(field.into()),
        }
    }

    /// `count(*)`: rows.
    pub fn count_rows() -> Aggregate {
        Aggregate {
            function: AggregateFn::Count,
            field: None,
        }
    }

    /// The output column's name: `max(usage_user)`, `count(*)`, `p95(latency)`.
    pub fn column_name(&self) -> String {
        format!("{}({})", self.function.name(), self.field.as_deref().unwrap_or("*"))
    }
}

/// What an empty time bucket produces.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fill {
    /// No row.
    #[default]
    None,
    /// A row of nulls.
    Null,
    /// The group's previous values.
    Previous,
    /// This value in every aggregate column.
    Value(f64),
}

impl Fill {
    /// Parses `none`, `null`, `previous` or a number.
    pub fn parse(text: &str) -> Result<Fill> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "none" => Fill::None,
            "null" => Fill::Null,
            "previous" => Fill::Previous,
            other => Fill::Value(
                other
                    .parse::<f64>()
                    .map_err(|_| Error::invalid(format!("unknown fill {text:?} (none, null, previous or a number)")))?,
            ),
        })
    }
}

/// A comparison of a numeric field with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// `field op value`, on numeric values; rows without a numeric value of the field fail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldFilter {
    /// The field.
    pub field: String,
    /// The comparison.
    pub op: CmpOp,
    /// The constant.
    pub value: f64,
}

impl FieldFilter {
    /// Parses `usage_user > 90` (operators `<`, `<=`, `>`, `>=`, `=`/`==`, `!=`).
    pub fn parse(text: &str) -> Result<FieldFilter> {
        let bad = || Error::invalid(format!("cannot read filter {text:?} (use e.g. 'usage_user > 90')"));
        let at = text.find(['<', '>', '=', '!']).ok_or_else(bad)?;
        let field = text[..at].trim();
        let rest = &text[at..];
        let (op, len) = [
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
            ("=", CmpOp::Eq),
        ]
        .iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, op)| (*op, s.len()))
        .ok_or_else(bad)?;
        let value: f64 = rest[len..].trim().parse().map_err(|_| bad())?;
        if field.is_empty() || value.is_nan() {
            return Err(bad());
        }
        Ok(FieldFilter {
            field: field.to_string(),
            op,
            value,
        })
    }

    /// Whether `v` passes (IEEE comparison: NaN passes only `!=`).
    pub fn test(&self, v: f64) -> bool {
        match self.op {
            CmpOp::Lt => v < self.value,
            CmpOp::Le => v <= self.value,
            CmpOp::Gt => v > self.value,
            CmpOp::Ge => v >= self.value,
            CmpOp::Eq => v == self.value,
            CmpOp::Ne => v != self.value,
        }
    }

    /// Whether some value in `[min, max]` could pass; false means no value there can.
    pub fn possible(&self, min: f64, max: f64) -> bool {
        if min.is_nan() || max.is_nan() {
            return true;
        }
        match self.op {
            CmpOp::Lt => min < self.value,
            CmpOp::Le => min <= self.value,
            CmpOp::Gt => max > self.value,
            CmpOp::Ge => max >= self.value,
            CmpOp::Eq => min <= self.value && self.value <= max,
            CmpOp::Ne => !(min == max && min == self.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(AggregateFn::parse("avg").unwrap(), AggregateFn::Mean);
        assert_eq!(AggregateFn::parse("p99").unwrap(), AggregateFn::Percentile(99.0));
        assert_eq!(AggregateFn::parse("percentile(50)").unwrap(), AggregateFn::Percentile(50.0));
        assert!(AggregateFn::parse("p101").is_err());
        assert!(AggregateFn::parse("median").is_err());
        assert_eq!(Fill::parse("previous").unwrap(), Fill::Previous);
        assert_eq!(Fill::parse("-1.5").unwrap(), Fill::Value(-1.5));
        let f = FieldFilter::parse("usage_user >= 90").unwrap();
        assert_eq!((f.field.as_str(), f.op, f.value), ("usage_user", CmpOp::Ge, 90.0));
        assert!(FieldFilter::parse("x ~ 1").is_err());
        assert!(!f.possible(0.0, 89.9));
        assert!(f.possible(0.0, 90.0));
        assert_eq!(Aggregate::count_rows().column_name(), "count(*)");
        assert_eq!(Aggregate::of(AggregateFn::Percentile(95.0), "x").column_name(), "p95(x)");
    }
}
