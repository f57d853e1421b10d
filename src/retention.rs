//! Retention policy: how long detail rows and summaries are kept, per kind and per
//! measurement, and the horizons (UTC day starts) a policy gives at a moment.

use crate::error::{Error, Result};
use crate::model::{SeriesKey, SeriesKind};
use crate::time::day_start;

use std::collections::BTreeMap;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// How long rows are kept: detail as written, and the hourly/daily/weekly summaries that
/// replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Detail rows older than this are dropped (default 30 days).
    pub detail: Duration,
    /// Summaries older than this are dropped (default 365 days); at least `detail`.
    pub summaries: Duration,
}

impl Retention {
    /// Never drop anything: the rule of commits ([`SeriesKind::Commit`]) unless a kind or
    /// measurement rule names them, because commits are history users keep.
    pub const FOREVER: Retention = Retention {
        detail: Duration::MAX,
        summaries: Duration::MAX,
    };
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            detail: 30 * DAY,
            summaries: 365 * DAY,
        }
    }
}

/// Retention and summarising. See `docs/ARCHITECTURE.md`, "Summaries and retention".
///
/// ```
/// use annals::{Options, SeriesKind};
/// use annals::lifecycle::Retention;
/// use std::time::Duration;
/// let day = Duration::from_secs(86_400);
/// let mut options = Options::default();
/// // Logs: a week of detail; the cpu measurement: 90 days.
/// options.retention.kinds.insert(SeriesKind::Log, Retention { detail: 7 * day, summaries: 365 * day });
/// options.retention.measurements.insert("cpu".into(), Retention { detail: 90 * day, summaries: 730 * day });
/// assert!(options.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOptions {
    /// Summarise and apply retention from the background thread, at the compaction
    /// interval (default true). [`crate::Engine::apply_retention`] works either way.
    pub background: bool,
    /// The rule of every series no override names.
    pub default: Retention,
    /// Overrides by kind.
    pub kinds: BTreeMap<SeriesKind, Retention>,
    /// Overrides by measurement; they win over kind overrides.
    pub measurements: BTreeMap<String, Retention>,
    /// A UTC day is summarised once it has been over this long, so rows arriving a little
    /// late still land in detail that has not been summarised yet (default 1 hour, less
    /// than a day). Later rows make the day be summarised again.
    pub summarize_after: Duration,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        RetentionOptions {
            background: true,
            default: Retention::default(),
            kinds: BTreeMap::new(),
            measurements: BTreeMap::new(),
            summarize_after: Duration::from_secs(3600),
        }
    }
}

impl RetentionOptions {
    /// The default policy, applied only when asked ([`crate::Engine::apply_retention`],
    /// `annals retention --apply`): for tools that open a store briefly, bulk loads of
    /// history, and benchmarks.
    pub fn manual() -> RetentionOptions {
        RetentionOptions {
            background: false,
            ..RetentionOptions::default()
        }
    }
}

/// Name of the rule a series falls under, and the rule.
pub(crate) fn rule_for<'a>(options: &'a RetentionOptions, key: &SeriesKey) -> (String, &'a Retention) {
    if let Some(r) = options.measurements.get(key.measurement()) {
        return (format!("measurement:{}", key.measurement()), r);
    }
    if let Some(r) = options.kinds.get(&key.kind()) {
        return (format!("kind:{}", key.kind().name()), r);
    }
    if key.kind() == SeriesKind::Commit {
        return ("kind:commit".to_owned(), &Retention::FOREVER);
    }
    ("default".to_owned(), &options.default)
}

impl RetentionOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        // A day must be summarised before the shortest detail retention (a day) drops it.
        if self.summarize_after >= DAY {
            return Err(Error::invalid("retention.summarize_after must be shorter than a day"));
        }
        let rules = std::iter::once(("default".to_owned(), &self.default))
            .chain(self.kinds.iter().map(|(k, r)| (format!("kind:{}", k.name()), r)))
            .chain(self.measurements.iter().map(|(m, r)| (format!("measurement:{m}"), r)));
        for (name, r) in rules {
            if r.detail < DAY {
                return Err(Error::invalid(format!(
                    "retention {name}: detail must be kept at least a day (retention works in whole UTC days)"
                )));
            }
            if r.summaries < r.detail {
                return Err(Error::invalid(format!(
                    "retention {name}: summaries ({} days) must be kept at least as long as detail ({} days)",
                    r.summaries.as_secs() / 86_400,
                    r.detail.as_secs() / 86_400
                )));
            }
            if *r != Retention::FOREVER && i64::try_from(r.summaries.as_nanos()).is_err() {
                return Err(Error::invalid(format!("retention {name}: summaries period too long")));
            }
        }
        Ok(())
    }
}

/// How far retention has dropped data under one rule: rows older than these times are
/// gone (and refused if written again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Horizon {
    pub detail: i64,
    pub summaries: i64,
}

/// The horizons a rule gives at `now`: the UTC day start before which rows are expired.
pub(crate) fn horizon(rule: &Retention, now: i64) -> Horizon {
    // A period longer than the time since the first storable day keeps everything.
    let back = |d: Duration| {
        i64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| now.checked_sub(n))
            .filter(|t| *t > i64::MIN + crate::time::NANOS_PER_DAY)
            .map_or(i64::MIN, day_start)
    };
    Horizon {
        detail: back(rule.detail),
        summaries: back(rule.summaries),
    }
}

/// Applied horizons by rule name, as the write path and queries consult them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Horizons {
    pub by_rule: BTreeMap<String, Horizon>,
}

impl Horizons {
    /// The applied horizon for a series under `options`: its rule's, or the default rule's
    /// when its rule has not been applied yet.
    pub(crate) fn for_series(&self, options: &RetentionOptions, key: &SeriesKey) -> Option<Horizon> {
        if self.by_rule.is_empty() {
            return None;
        }
        let (rule, _) = rule_for(options, key);
        self.by_rule.get(&rule).or_else(|| self.by_rule.get("default")).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NANOS_PER_SECOND;

    #[test]
    fn overrides_win_in_order_and_horizons_are_day_starts() {
        let mut o = RetentionOptions::default();
        let week = Retention {
            detail: 7 * DAY,
            summaries: 30 * DAY,
        };
        o.kinds.insert(SeriesKind::Log, week);
        o.measurements.insert("cpu".into(), Retention { detail: 2 * DAY, ..week });
        let cpu = SeriesKey::metric("cpu").unwrap();
        let mem = SeriesKey::metric("mem").unwrap();
        let log = SeriesKey::new(SeriesKind::Log, "log", [("level", "INFO")]).unwrap();
        assert_eq!(rule_for(&o, &cpu).0, "measurement:cpu");
        assert_eq!(rule_for(&o, &mem).0, "default");
        assert_eq!(rule_for(&o, &log).0, "kind:log");
        let day = 86_400 * NANOS_PER_SECOND;
        let h = horizon(&week, 40 * day + 5);
        assert_eq!(
            h,
            Horizon {
                detail: 33 * day,
                summaries: 10 * day
            }
        );
        assert!(o.validate().is_ok());
        o.default.summaries = DAY;
        assert!(o.validate().is_err());
        o.default = Retention {
            detail: Duration::from_secs(60),
            summaries: DAY,
        };
        assert!(o.validate().is_err());
    }
}
