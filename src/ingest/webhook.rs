//! Push events of GitHub and Gitea webhooks, read into commits.
//!
//! A push event names the branch (`ref`), the repository (`repository.full_name`), who
//! pushed (`pusher.name`, or Gitea's `pusher.login`/`pusher.username`) and its commits:
//! `id`, `message`, `timestamp` (ISO 8601 with an offset), `author` (`name`, `email`) and
//! the paths `added`, `removed` and `modified`. A webhook carries no diffs and no line
//! counts, so each file becomes a [`DiffData`] with zero counts, no content, and `changes`
//! saying `added`, `removed` or `modified`; [`crate::history::History::import_git`] is the
//! way to store full diffs.

use crate::error::{Error, Result};
use crate::model::{CommitData, DiffData};
use crate::time::parse_time;
use serde::Deserialize;

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    reference: String,
    repository: Repository,
    #[serde(default)]
    pusher: Option<Person>,
    #[serde(default)]
    commits: Vec<PushCommit>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize, Default)]
struct Person {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl Person {
    fn display_name(&self) -> Option<String> {
        [&self.name, &self.username, &self.login]
            .into_iter()
            .flatten()
            .find(|n| !n.trim().is_empty())
            .cloned()
    }
}

#[derive(Deserialize)]
struct PushCommit {
    id: String,
    #[serde(default)]
    message: String,
    timestamp: String,
    #[serde(default)]
    author: Person,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
}

/// The commits of a push event's JSON body, oldest first as the event lists them; `now`
/// (ns) reads relative times. A body that is not a push event is an error saying what is
/// missing; an empty push (a branch deleted, tags) gives no commits.
pub fn push_commits(body: &[u8], now: i64) -> Result<Vec<(CommitData, Vec<DiffData>)>> {
    let push: Push = serde_json::from_slice(body).map_err(|e| Error::InvalidInput {
        line: Some(e.line() as u64),
        column: Some(e.column() as u64),
        reason: format!("not a push event: {}", e.to_string().split(" at line ").next().unwrap_or_default()),
    })?;
    let branch = push.reference.strip_prefix("refs/heads/").unwrap_or(&push.reference).to_string();
    let pusher = push.pusher.as_ref().and_then(Person::display_name);
    let mut out = Vec::with_capacity(push.commits.len());
    for (i, c) in push.commits.into_iter().enumerate() {
        let timestamp = parse_time(&c.timestamp, now).map_err(|e| Error::InvalidInput {
            line: None,
            column: None,
            reason: format!("commit {} ({}): timestamp: {e}", i + 1, c.id),
        })?;
        let files = [("added", c.added), ("removed", c.removed), ("modified", c.modified)]
            .into_iter()
            .flat_map(|(change, paths)| {
                paths.into_iter().map(move |path| DiffData {
                    file_path: path,
                    old_path: None,
                    additions: 0,
                    deletions: 0,
                    binary: false,
                    changes: Some(change.to_string()),
                    diff_content: None,
                })
            })
            .collect();
        out.push((
            CommitData {
                commit_hash: c.id.to_ascii_lowercase(),
                message: c.message,
                author: c.author.display_name().unwrap_or_else(|| "unknown".to_string()),
                author_email: c.author.email.filter(|e| !e.is_empty()),
                timestamp,
                repository: push.repository.full_name.clone(),
                branch: branch.clone(),
                pusher: pusher.clone(),
                commit_count: 1,
            },
            files,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_github_push_becomes_commits_with_their_files() {
        let body = br#"{
            "ref": "refs/heads/main",
            "repository": {"full_name": "acme/app", "id": 1},
            "pusher": {"name": "ada", "email": "ada@example.com"},
            "commits": [{
                "id": "4B825DC642CB6EB9A060E54BF8D69288FBEE4904",
                "message": "Fix the parser",
                "timestamp": "2016-01-01T02:00:00+02:00",
                "author": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
                "added": ["src/new.rs"], "removed": [], "modified": ["src/a.rs", "README.md"]
            }]
        }"#;
        let commits = push_commits(body, 0).unwrap();
        assert_eq!(commits.len(), 1);
        let (commit, files) = &commits[0];
        assert_eq!(commit.commit_hash, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        assert_eq!(commit.branch, "main");
        assert_eq!(commit.repository, "acme/app");
        assert_eq!(commit.pusher.as_deref(), Some("ada"));
        assert_eq!(commit.timestamp, 1_451_606_400_000_000_000, "the offset is applied");
        let changes: Vec<(&str, &str)> = files
            .iter()
            .map(|f| (f.file_path.as_str(), f.changes.as_deref().unwrap()))
            .collect();
        assert_eq!(
            changes,
            [("src/new.rs", "added"), ("src/a.rs", "modified"), ("README.md", "modified")]
        );
    }

    #[test]
    fn what_is_not_a_push_is_refused_with_the_reason() {
        match push_commits(br#"{"zen": "Keep it simple", "hook_id": 1}"#, 0) {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("missing field"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let bad_time = br#"{"ref":"refs/heads/x","repository":{"full_name":"a/b"},"commits":[{"id":"ab","timestamp":"yesterday"}]}"#;
        assert!(push_commits(bad_time, 0).is_err());
        let empty = br#"{"ref":"refs/heads/x","repository":{"full_name":"a/b"},"commits":[]}"#;
        assert!(push_commits(empty, 0).unwrap().is_empty());
    }
}
