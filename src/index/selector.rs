//! [`SeriesSelector`]: which series a read covers, answered by the tag index.

use super::TagPredicate;
use crate::error::Result;
use crate::model::{SeriesKey, SeriesKind};

/// Which series a read covers: optionally one kind, optionally one measurement, and a
/// predicate on tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesSelector {
    /// Only series of this kind.
    pub kind: Option<SeriesKind>,
    /// Only series of this measurement.
    pub measurement: Option<String>,
    /// Only series whose tags satisfy this.
    pub predicate: Option<TagPredicate>,
}

impl SeriesSelector {
    /// Series of one measurement.
    pub fn measurement(name: impl Into<String>) -> SeriesSelector {
        SeriesSelector {
            measurement: Some(name.into()),
            ..SeriesSelector::default()
        }
    }

    /// Adds a required tag value.
    pub fn with_tag(self, key: impl Into<String>, value: impl Into<String>) -> SeriesSelector {
        self.with_predicate(TagPredicate::eq(key, value))
    }

    /// Adds a predicate that must hold too.
    pub fn with_predicate(mut self, predicate: TagPredicate) -> SeriesSelector {
        self.predicate = Some(match self.predicate.take() {
            None => predicate,
            Some(TagPredicate::And(mut all)) => {
                all.push(predicate);
                TagPredicate::And(all)
            }
            Some(existing) => TagPredicate::And(vec![existing, predicate]),
        });
        self
    }

    /// Whether a series key is selected (the definition the index agrees with).
    pub fn matches(&self, key: &SeriesKey) -> Result<bool> {
        Ok(self.kind.is_none_or(|k| key.kind() == k)
            && self.measurement.as_deref().is_none_or(|m| key.measurement() == m)
            && match &self.predicate {
                Some(p) => p.matches(key)?,
                None => true,
            })
    }

    /// Restricts to one kind.
    pub fn with_kind(mut self, kind: SeriesKind) -> SeriesSelector {
        self.kind = Some(kind);
        self
    }
}
