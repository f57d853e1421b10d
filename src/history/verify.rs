//! The whole check of a store: the offline file checks of [`crate::verify::verify`], then,
//! when the store opens, the commit store's cross-references: every commit row in the
//! unique index at its place, every object a file row names present and intact, and the
//! objects nothing names (orphans, left by a crash between an object's write and its
//! commit's, by an archive or by retention). `repair` also removes the orphans and a commit
//! index that disagrees with the rows (the next open rebuilds it).

use super::History;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::files::FileKind;
use crate::model::{COMMIT_MEASUREMENT, CommitHash, DIFF_MEASUREMENT, FieldValue, SeriesKind};
use crate::objects::ObjectStoreConfig;
use crate::options::{CompactionOptions, Options};
use crate::query::Query;
use crate::scan::SeriesSelector;
use crate::verify::{Problem, VerifyReport};
use std::collections::BTreeSet;
use std::path::Path;

/// Verifies the store in `dir` (closed, not open elsewhere): every checksum and
/// cross-reference of its files, then its commits and the objects in `objects` (where the
/// store keeps them). With `repair`, drops what is damaged (see
/// [`crate::verify::verify`]), removes orphan objects, and removes a commit index that
/// disagrees with the rows so the next open rebuilds it.
///
/// ```
/// use annals::history::{History, verify_store};
/// let dir = tempfile::tempdir().unwrap();
/// History::open(dir.path(), annals::Options::default()).unwrap().close().unwrap();
/// let report = verify_store(dir.path(), false, annals::ObjectStoreConfig::Local).unwrap();
/// assert!(report.is_clean(), "{report:?}");
/// ```
pub fn verify_store(dir: &Path, repair: bool, objects: ObjectStoreConfig) -> Result<VerifyReport> {
    let mut report = crate::verify::verify(dir, repair)?;
    if !report.is_clean() && !repair {
        report
            .notes
            .push("commits and objects were not checked: the store's files are damaged (run verify --repair first)".into());
        return Ok(report);
    }
    let options = Options {
        create_if_missing: false,
        background_flush: false,
        compaction: CompactionOptions {
            background: false,
            ..CompactionOptions::default()
        },
        retention: crate::lifecycle::RetentionOptions::manual(),
        objects: objects.clone(),
        ..Options::default()
    };
    let history = match Engine::open(dir, options) {
        Ok(engine) => History::from_engine(engine),
        Err(e) => {
            report
                .notes
                .push(format!("commits and objects were not checked: the store does not open: {e}"));
            return Ok(report);
        }
    };
    let index_disagrees = check_commits(&history, repair, &mut report)?;
    history.close()?;
    if index_disagrees && repair {
        let path = FileKind::Commits.path(dir);
        crate::io::Fs::default().remove_file(&path)?;
        report.repairs.push(format!(
            "removed {} (the next open rebuilds it from the commit rows)",
            path.display()
        ));
        // Rebuild it now, so the store is whole when this returns.
        Engine::open(
            dir,
            Options {
                create_if_missing: false,
                background_flush: false,
                objects,
                ..Options::default()
            },
        )?
        .close()?;
    }
    Ok(report)
}

/// Checks the commit rows against the unique index and the file rows against the objects,
/// adding to `report`; removes orphan objects with `repair`. True when the index
/// disagrees with the rows.
fn check_commits(history: &History, repair: bool, report: &mut VerifyReport) -> Result<bool> {
    let engine = history.engine();
    let snapshot = engine.snapshot();
    let index_file = FileKind::Commits.path(engine.dir());
    let rows = |measurement: &str, fields: &[&str]| {
        snapshot.query(&Query {
            selector: SeriesSelector::measurement(measurement).with_kind(SeriesKind::Commit),
            fields: Some(fields.iter().map(|f| f.to_string()).collect()),
            ..Query::default()
        })
    };

    let mut index_disagrees = false;
    let mut result = rows(COMMIT_MEASUREMENT, &["commit_hash"])?;
    let hash_at = result.value_columns.iter().position(|c| c == "commit_hash");
    for row in result.by_ref() {
        let row = row?;
        report.commits += 1;
        let text = hash_at
            .and_then(|c| row.values.get(c))
            .and_then(|v| v.as_ref())
            .and_then(FieldValue::as_str);
        let located = text
            .and_then(|t| CommitHash::parse(t).ok())
            .and_then(|hash| engine.commit_location(&hash));
        let agrees =
            located.is_some_and(|l| Some(l.timestamp) == row.time && Some(l.record_id) == row.record_id && Some(l.series) == row.series);
        if !agrees {
            index_disagrees = true;
            report.problems.push(Problem {
                file: index_file.clone(),
                offset: 0,
                what: format!(
                    "commit {} (record {}) is {} the commit index",
                    text.unwrap_or("without a hash"),
                    row.record_id.unwrap_or_default(),
                    if located.is_some() { "at another place in" } else { "missing from" }
                ),
            });
        }
    }
    let indexed = engine.commit_count() as u64;
    if indexed > report.commits {
        report.notes.push(format!(
            "{} commits are in the unique index but not in the store (archived, so storing them again answers Duplicate)",
            indexed - report.commits
        ));
    }

    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut result = rows(DIFF_MEASUREMENT, &["commit_hash", "file_path", "diff_object"])?;
    let column = |name: &str| result.value_columns.iter().position(|c| c == name);
    let (hash_at, path_at, object_at) = (column("commit_hash"), column("file_path"), column("diff_object"));
    let mut naming: Vec<(String, String, String)> = Vec::new();
    for row in result.by_ref() {
        let row = row?;
        report.commit_files += 1;
        let text = |at: Option<usize>| {
            at.and_then(|c| row.values.get(c))
                .and_then(|v| v.as_ref())
                .and_then(FieldValue::as_str)
        };
        if let Some(key) = text(object_at)
            && named.insert(key.to_string())
        {
            naming.push((
                key.to_string(),
                text(hash_at).unwrap_or_default().to_string(),
                text(path_at).unwrap_or_default().to_string(),
            ));
        }
    }

    let present: BTreeSet<String> = history.objects().keys()?.into_iter().collect();
    for (key, hash, path) in &naming {
        if !present.contains(key) {
            report.problems.push(Problem {
                file: history.objects().path(key),
                offset: 0,
                what: format!("object {key} is missing: the diff of {path} in commit {hash} cannot be read"),
            });
        }
    }
    for key in &present {
        report.objects += 1;
        match history.objects().get(key) {
            Ok(bytes) => report.object_bytes += bytes.len() as u64,
            Err(Error::Corruption { file, kind, .. }) => report.problems.push(Problem {
                file,
                offset: 0,
                what: kind.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    let orphans: Vec<&String> = present.iter().filter(|k| !named.contains(*k)).collect();
    if !orphans.is_empty() {
        let listed =
            orphans.iter().take(10).map(|k| k.as_str()).collect::<Vec<_>>().join(", ") + if orphans.len() > 10 { ", …" } else { "" };
        let what = format!(
            "{} orphan object{} (no stored commit names {}): {listed}",
            orphans.len(),
            if orphans.len() == 1 { "" } else { "s" },
            if orphans.len() == 1 { "it" } else { "them" },
        );
        if repair {
            for key in &orphans {
                history.objects().remove(key)?;
            }
            report.repairs.push(format!("removed {what}"));
        } else {
            report.notes.push(format!("{what}; verify --repair removes them"));
        }
        report.orphan_objects = orphans.len() as u64;
    }
    Ok(index_disagrees)
}
