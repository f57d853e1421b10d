//! A query written as text parameters: the flags of `annals scan`/`annals query` and the
//! query string of `GET /history/metrics` are both read into a [`QuerySpec`], which turns
//! them into a [`Query`] one way, so the CLI and the server accept exactly the same forms.

use super::model::{Aggregate, AggregateFn, Bucket, FieldFilter, Fill, Query};
use crate::error::{Error, Result};
use crate::index::TagPredicate;
use crate::model::SeriesKind;
use crate::read::Order;
use crate::scan::SeriesSelector;
use crate::time::{TimeRange, parse_time};

/// The text form of a query. Every field is what a user typed; [`QuerySpec::to_query`]
/// checks and converts them, naming the parameter that is wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuerySpec {
    /// `measurement`: the measurement to read.
    pub measurement: String,
    /// `field`: only these fields (repeatable, or comma separated).
    pub fields: Vec<String>,
    /// `where`: tag predicates such as `host=a`, `region in (eu, us)`, `host =~ ^web`; all
    /// must hold.
    pub predicates: Vec<String>,
    /// `filter`: conditions on field values such as `usage_user > 90`.
    pub value_filters: Vec<String>,
    /// `kind`: only series of this kind (`metric`, `performance`, `log`, `alert`, `commit`).
    pub kind: Option<String>,
    /// `from`: start of the range, inclusive (RFC 3339, a date, nanoseconds, `now-1h`).
    pub from: Option<String>,
    /// `to`: end of the range, exclusive.
    pub to: Option<String>,
    /// `order`: `asc` (default) or `desc`.
    pub order: Option<String>,
    /// `limit`: at most this many rows.
    pub limit: Option<String>,
    /// `offset`: rows to skip.
    pub offset: Option<String>,
    /// `cursor`: continue after the page that returned it.
    pub cursor: Option<String>,
    /// `agg`: aggregates (`count`, `max`, `p95`, `percentile(95)`, each applied to every
    /// field; or explicit `max(usage_user)`).
    pub aggregates: Vec<String>,
    /// `every`: time buckets (`10s`, `5m`, `1h`, `1d`, `day`, `week`, `month`).
    pub every: Option<String>,
    /// `group_by`: tags to group aggregates by.
    pub group_by: Vec<String>,
    /// `fill`: what empty buckets show (`none`, `null`, `previous`, or a number).
    pub fill: Option<String>,
    /// `lastpoint`: the newest row of each series.
    pub lastpoint: bool,
}

impl QuerySpec {
    /// Reads URL query parameters (already percent-decoded): the names above, with
    /// `group-by` accepted for `group_by`. Repeated list parameters add up; a list value
    /// may also be comma separated (not `where` and `filter`, whose values hold commas).
    /// An unknown parameter is an error naming it.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<QuerySpec> {
        let mut spec = QuerySpec::default();
        let split = |v: &str| -> Vec<String> { v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect() };
        for (name, value) in pairs {
            match name {
                "measurement" => spec.measurement = value.to_string(),
                "field" | "fields" => spec.fields.extend(split(value)),
                "where" => spec.predicates.push(value.to_string()),
                "filter" => spec.value_filters.push(value.to_string()),
                "kind" => spec.kind = Some(value.to_string()),
                "from" => spec.from = Some(value.to_string()),
                "to" => spec.to = Some(value.to_string()),
                "order" => spec.order = Some(value.to_string()),
                "limit" => spec.limit = Some(value.to_string()),
                "offset" => spec.offset = Some(value.to_string()),
                "cursor" => spec.cursor = Some(value.to_string()),
                "agg" => spec.aggregates.extend(split(value)),
                "every" => spec.every = Some(value.to_string()),
                "group_by" | "group-by" => spec.group_by.extend(split(value)),
                "fill" => spec.fill = Some(value.to_string()),
                "lastpoint" => {
                    spec.lastpoint = match value {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(param("lastpoint", format!("{other:?} is not true or false"))),
                    }
                }
                other => {
                    return Err(Error::invalid(format!(
                        "unknown query parameter {other:?} (known: measurement, field, where, filter, kind, from, to, \
                         order, limit, offset, cursor, agg, every, group_by, fill, lastpoint)"
                    )));
                }
            }
        }
        Ok(spec)
    }

    /// Reads the JSON form (the body of `POST /history/analyze`): an object with the
    /// parameter names of [`QuerySpec::from_pairs`] as keys, each a string, a number, a
    /// boolean, or an array of those for a repeatable parameter, e.g.
    /// `{"measurement": "cpu", "where": ["host=a"], "agg": ["mean", "p95"], "every": "1h",
    /// "limit": 10}`.
    pub fn from_json(value: &serde_json::Value) -> Result<QuerySpec> {
        let serde_json::Value::Object(object) = value else {
            return Err(Error::invalid(
                "a query is a JSON object of parameters, e.g. {\"measurement\": \"cpu\"}",
            ));
        };
        let scalar = |name: &str, v: &serde_json::Value| -> Result<String> {
            match v {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                serde_json::Value::Bool(b) => Ok(b.to_string()),
                _ => Err(param(name, "is not a string, a number or a boolean".into())),
            }
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, v) in object {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::Array(items) => {
                    for item in items {
                        pairs.push((name.clone(), scalar(name, item)?));
                    }
                }
                v => pairs.push((name.clone(), scalar(name, v)?)),
            }
        }
        QuerySpec::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The query these parameters describe, relative times read against `now` (ns).
    pub fn to_query(&self, now: i64) -> Result<Query> {
        if self.measurement.trim().is_empty() {
            return Err(param("measurement", "is required".into()));
        }
        let time = |name: &str, text: &Option<String>| -> Result<Option<i64>> {
            text.as_deref()
                .map(|t| parse_time(t, now).map_err(|e| in_param(name, e)))
                .transpose()
        };
        let start = time("from", &self.from)?.unwrap_or(i64::MIN);
        let end = time("to", &self.to)?.unwrap_or(i64::MAX);
        let predicates = self
            .predicates
            .iter()
            .map(|p| TagPredicate::parse(p).map_err(|e| in_param("where", e)))
            .collect::<Result<Vec<_>>>()?;
        let kind = match self.kind.as_deref() {
            None => None,
            Some(k) => Some(SeriesKind::parse(k).ok_or_else(|| param("kind", format!("{k:?} is not a kind of series")))?),
        };
        let order = match self.order.as_deref() {
            None | Some("asc") => Order::Ascending,
            Some("desc") => Order::Descending,
            Some(other) => return Err(param("order", format!("{other:?} is not asc or desc"))),
        };
        // Large limits are the engine's to refuse (`QueryLimits::max_result_rows`).
        let number = |name: &str, text: &Option<String>| -> Result<Option<usize>> {
            match text.as_deref() {
                None => Ok(None),
                Some(t) => t
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| param(name, format!("{t:?} is not a whole number"))),
            }
        };
        let mut query = Query {
            selector: SeriesSelector {
                kind,
                measurement: Some(self.measurement.trim().to_string()),
                predicate: TagPredicate::all(predicates),
            },
            fields: (!self.fields.is_empty()).then(|| self.fields.clone()),
            filters: self
                .value_filters
                .iter()
                .map(|f| FieldFilter::parse(f).map_err(|e| in_param("filter", e)))
                .collect::<Result<_>>()?,
            range: TimeRange::new(start, end),
            order,
            limit: number("limit", &self.limit)?,
            offset: number("offset", &self.offset)?.unwrap_or(0),
            cursor: self.cursor.clone(),
            ..Query::default()
        };
        for spec in &self.aggregates {
            self.add_aggregate(spec.trim(), &mut query)?;
        }
        if !query.aggregates.is_empty() {
            query.fields = None;
        }
        query.every = match self.every.as_deref() {
            Some(e) => Some(Bucket::parse(e).map_err(|err| in_param("every", err))?),
            None => None,
        };
        query.group_by = self.group_by.clone();
        query.fill = Fill::parse(self.fill.as_deref().unwrap_or("none")).map_err(|e| in_param("fill", e))?;
        query.lastpoint = self.lastpoint;
        Ok(query)
    }

    /// Adds the aggregates one `agg` value names.
    fn add_aggregate(&self, spec: &str, query: &mut Query) -> Result<()> {
        // An explicit `function(field)`, except percentile(95), which names a quantile.
        let explicit = spec
            .split_once('(')
            .filter(|(f, _)| !f.eq_ignore_ascii_case("percentile"))
            .and_then(|(f, rest)| rest.strip_suffix(')').map(|field| (f, field.trim())));
        let function = |name: &str| AggregateFn::parse(name).map_err(|e| in_param("agg", e));
        match explicit {
            Some((name, field)) => {
                let f = function(name)?;
                query.aggregates.push(if field == "*" {
                    Aggregate::count_rows()
                } else {
                    Aggregate::of(f, field)
                });
            }
            None => {
                let f = function(spec)?;
                if self.fields.is_empty() {
                    if f != AggregateFn::Count {
                        return Err(param(
                            "agg",
                            format!("{spec} needs a field: name one (--field, or field= in a query string), or write {spec}(FIELD)"),
                        ));
                    }
                    query.aggregates.push(Aggregate::count_rows());
                }
                for field in &self.fields {
                    query.aggregates.push(Aggregate::of(f, field.clone()));
                }
            }
        }
        Ok(())
    }
}

/// A bad parameter, named.
fn param(name: &str, reason: String) -> Error {
    Error::invalid(format!("{name}: {reason}"))
}

/// An error of parameter `name`'s value, keeping the column within it where the parser
/// gave one.
fn in_param(name: &str, error: Error) -> Error {
    match error {
        Error::InvalidInput { line, column, reason } => Error::InvalidInput {
            line,
            column,
            reason: format!("{name}: {reason}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_form_reads_as_the_parameters_do() {
        let json = serde_json::json!({
            "measurement": "cpu", "where": ["host=a", "region=eu"], "agg": ["mean", "p95"],
            "field": "usage", "every": "1h", "limit": 10, "lastpoint": false, "cursor": null
        });
        let from_json = QuerySpec::from_json(&json).unwrap();
        let from_pairs = QuerySpec::from_pairs([
            ("measurement", "cpu"),
            ("where", "host=a"),
            ("where", "region=eu"),
            ("agg", "mean,p95"),
            ("field", "usage"),
            ("every", "1h"),
            ("limit", "10"),
            ("lastpoint", "false"),
        ])
        .unwrap();
        assert_eq!(from_json, from_pairs);
        match QuerySpec::from_json(&serde_json::json!({"measurement": {"a": 1}})) {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.starts_with("measurement:"), "{reason}"),
            other => panic!("expected a refusal naming the key, got {other:?}"),
        }
        assert!(matches!(
            QuerySpec::from_json(&serde_json::json!([1])),
            Err(Error::InvalidInput { .. })
        ));
        match QuerySpec::from_json(&serde_json::json!({"measurment": "cpu"})) {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("measurment"), "{reason}"),
            other => panic!("expected an unknown-key refusal, got {other:?}"),
        }
    }

    #[test]
    fn query_strings_and_flags_mean_the_same_query() {
        let spec = QuerySpec::from_pairs([
            ("measurement", "cpu"),
            ("field", "usage_user,usage_system"),
            ("where", "host=a"),
            ("where", "region in (eu, us)"),
            ("from", "2016-01-01"),
            ("to", "2016-01-02"),
            ("agg", "max"),
            ("every", "1h"),
            ("group-by", "host"),
            ("fill", "null"),
        ])
        .unwrap();
        let query = spec.to_query(0).unwrap();
        assert_eq!(query.aggregates.len(), 2);
        assert_eq!(query.group_by, ["host"]);
        assert_eq!(query.fill, Fill::Null);
        assert_eq!(query.every, Some(Bucket::parse("1h").unwrap()));
        assert_eq!(query.range, TimeRange::new(1_451_606_400_000_000_000, 1_451_692_800_000_000_000));
        assert_eq!(query.fields, None, "aggregates replace the raw field list");
    }

    #[test]
    fn a_bad_parameter_is_named() {
        let reason = |pairs: &[(&str, &str)]| match QuerySpec::from_pairs(pairs.iter().copied()).and_then(|s| s.to_query(0)) {
            Err(Error::InvalidInput { reason, .. }) => reason,
            other => panic!("expected an input error, got {other:?}"),
        };
        assert!(reason(&[("field", "x")]).starts_with("measurement: is required"));
        assert!(reason(&[("measurement", "cpu"), ("from", "yesterday-ish")]).starts_with("from: "));
        assert!(reason(&[("measurement", "cpu"), ("limit", "-3")]).starts_with("limit: "));
        assert!(reason(&[("measurement", "cpu"), ("agg", "max")]).starts_with("agg: max needs a field"));
        assert!(reason(&[("measurement", "cpu"), ("order", "up")]).starts_with("order: "));
        assert!(reason(&[("measurement", "cpu"), ("colour", "red")]).contains("unknown query parameter \"colour\""));
        assert!(reason(&[("measurement", "cpu"), ("where", "host ==")]).starts_with("where: "));
    }
}
