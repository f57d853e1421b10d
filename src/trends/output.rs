//! A [`TrendAnalysis`] as rows of text, for CSV and tables: the CLI and the server print
//! the same columns.

use super::TrendAnalysis;

/// One part's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendTable {
    /// Column names.
    pub header: Vec<String>,
    /// Cells, one row per line.
    pub rows: Vec<Vec<String>>,
}

/// A part of the analysis printed as rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendPart {
    /// Profile slots: `profile,slot,count,mean,p50,p95`.
    Profiles,
    /// Periods: `samples,seconds,name,autocorrelation,strength`.
    Periods,
    /// Trend and change points: `kind,time,slope_per_day,level_before,level_after`.
    Shifts,
    /// Every scored point: `time,value,score,anomaly` (`anomaly` 0 or 1).
    Anomalies,
    /// Only the points scored as anomalies, same columns.
    AnomaliesOnly,
    /// `time,forecast,lower_80,upper_80,lower_95,upper_95`.
    Forecast,
    /// `a,b,buckets,pearson,spearman,best_lag,best_lag_seconds,lag_coefficient`.
    Correlation,
    /// `series,before,after,score`: series that moved around the explained moment.
    Movements,
}

fn number(v: f64) -> String {
    if v.is_finite() { format!("{v}") } else { String::new() }
}

fn opt(v: Option<f64>) -> String {
    v.map(number).unwrap_or_default()
}

impl TrendAnalysis {
    /// The rows of one part. Per-series parts get a last column `series` (the series'
    /// label) when the analysis holds more than one series, so the leading columns are the
    /// same for one series or many. `time` formats timestamps.
    pub fn table(&self, part: TrendPart, time: &dyn Fn(i64) -> String) -> TrendTable {
        let many = self.series.len() > 1;
        let mut header: Vec<String> = match part {
            TrendPart::Profiles => vec!["profile", "slot", "count", "mean", "p50", "p95"],
            TrendPart::Periods => vec!["samples", "seconds", "name", "autocorrelation", "strength"],
            TrendPart::Shifts => vec!["kind", "time", "slope_per_day", "level_before", "level_after"],
            TrendPart::Anomalies | TrendPart::AnomaliesOnly => vec!["time", "value", "score", "anomaly"],
            TrendPart::Forecast => vec!["time", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"],
            TrendPart::Correlation => {
                vec![
                    "a",
                    "b",
                    "buckets",
                    "pearson",
                    "spearman",
                    "best_lag",
                    "best_lag_seconds",
                    "lag_coefficient",
                ]
            }
            TrendPart::Movements => vec!["series", "before", "after", "score"],
        }
        .into_iter()
        .map(String::from)
        .collect();
        let mut rows: Vec<Vec<String>> = Vec::new();
        match part {
            TrendPart::Correlation => {
                for p in self.correlation.iter().flat_map(|c| &c.pairs) {
                    rows.push(vec![
                        p.a.clone(),
                        p.b.clone(),
                        p.buckets.to_string(),
                        opt(p.pearson),
                        opt(p.spearman),
                        p.best_lag.to_string(),
                        number(p.best_lag_nanos as f64 / 1e9),
                        opt(p.lag_coefficient),
                    ]);
                }
                return TrendTable { header, rows };
            }
            TrendPart::Movements => {
                for m in self.correlation.iter().flat_map(|c| &c.moved_together) {
                    rows.push(vec![m.series.clone(), number(m.before), number(m.after), number(m.score)]);
                }
                return TrendTable { header, rows };
            }
            _ => {}
        }
        for s in &self.series {
            let start = rows.len();
            match part {
                TrendPart::Profiles => {
                    for (name, slots) in s
                        .patterns
                        .iter()
                        .flat_map(|p| [("hour_of_day", &p.hour_of_day), ("day_of_week", &p.day_of_week)])
                    {
                        for slot in slots {
                            rows.push(vec![
                                name.to_string(),
                                slot.slot.to_string(),
                                slot.count.to_string(),
                                opt(slot.mean),
                                opt(slot.p50),
                                opt(slot.p95),
                            ]);
                        }
                    }
                }
                TrendPart::Periods => {
                    for p in s.patterns.iter().flat_map(|p| &p.periods) {
                        rows.push(vec![
                            p.samples.to_string(),
                            number(p.nanos as f64 / 1e9),
                            p.name.clone().unwrap_or_default(),
                            number(p.autocorrelation),
                            number(p.strength),
                        ]);
                    }
                }
                TrendPart::Shifts => {
                    if let Some(p) = &s.patterns {
                        if let Some(t) = &p.trend {
                            let at = s.last.map(time).unwrap_or_default();
                            rows.push(vec![
                                "trend".into(),
                                at,
                                number(t.slope_per_day),
                                String::new(),
                                number(t.level_at_end),
                            ]);
                        }
                        for c in &p.change_points {
                            rows.push(vec![
                                "change".into(),
                                time(c.time),
                                String::new(),
                                number(c.level_before),
                                number(c.level_after),
                            ]);
                        }
                    }
                }
                TrendPart::Anomalies | TrendPart::AnomaliesOnly => {
                    for p in s.anomalies.iter().flat_map(|a| &a.points) {
                        if part == TrendPart::AnomaliesOnly && !p.anomaly {
                            continue;
                        }
                        rows.push(vec![
                            time(p.time),
                            number(p.value),
                            number(p.score),
                            u8::from(p.anomaly).to_string(),
                        ]);
                    }
                }
                TrendPart::Forecast => {
                    for p in s.forecast.iter().flat_map(|f| &f.points) {
                        rows.push(vec![
                            time(p.time),
                            number(p.forecast),
                            number(p.lower_80),
                            number(p.upper_80),
                            number(p.lower_95),
                            number(p.upper_95),
                        ]);
                    }
                }
                TrendPart::Correlation | TrendPart::Movements => {}
            }
            if many {
                for row in &mut rows[start..] {
                    row.push(s.label.clone());
                }
            }
        }
        if many {
            header.push("series".into());
        }
        TrendTable { header, rows }
    }
}
