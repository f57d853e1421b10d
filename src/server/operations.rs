//! Long operations started over HTTP (archive, cleanup, optimize): each answers 202 with an
//! operation id at once and runs on the blocking pool; `GET /history/operations/{id}`
//! shows its progress and outcome, and an `operation_completed` event announces its end.

use super::AppState;
use super::error::ApiError;
use crate::events::{Event, OperationCompleted};
use crate::time::{format_rfc3339, now_ns};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Finished operations kept for `GET /history/operations/{id}`; older ones are forgotten.
const KEPT_FINISHED: usize = 100;

/// Progress of a running operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all (0 when not yet known).
    pub total: u64,
    /// What the units are (`bytes`), empty until the first report.
    pub unit: String,
    /// What is being worked on (a month), when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One operation, as `GET /history/operations/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct Operation {
    /// The operation's id.
    pub id: u64,
    /// `archive`, `cleanup` or `optimize`.
    pub operation: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When it started, RFC 3339.
    pub started: String,
    /// When it ended, RFC 3339.
    pub finished: Option<String>,
    pub progress: Progress,
    /// The library's report, once succeeded.
    pub result: Option<serde_json::Value>,
    /// The error, once failed.
    pub error: Option<serde_json::Value>,
}

/// The server's operations.
#[derive(Default)]
pub(crate) struct Operations {
    table: Mutex<BTreeMap<u64, Operation>>,
    next_id: Mutex<u64>,
}

/// What a running operation reports its progress to.
#[derive(Clone)]
pub(crate) struct ProgressSink {
    operations: Arc<Operations>,
    id: u64,
}

impl ProgressSink {
    /// Records the operation's progress.
    pub fn set(&self, progress: Progress) {
        if let Some(op) = self.operations.table.lock().get_mut(&self.id) {
            op.progress = progress;
        }
    }
}

impl Operations {
    /// The operation with `id`.
    pub fn get(&self, id: u64) -> Option<Operation> {
        self.table.lock().get(&id).cloned()
    }

    /// Every operation kept, newest first.
    pub fn list(&self) -> Vec<Operation> {
        self.table.lock().values().rev().cloned().collect()
    }

    /// Registers a new running operation, unless one of the same kind runs (409).
    fn begin(&self, operation: &'static str) -> Result<u64, ApiError> {
        let mut table = self.table.lock();
        if let Some(running) = table.values().find(|o| o.operation == operation && o.status == "running") {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "operation_running",
                format!(
                    "{operation} operation {} is still running; see /history/operations/{}",
                    running.id, running.id
                ),
            ));
        }
        let id = {
            let mut next = self.next_id.lock();
            *next += 1;
            *next
        };
        table.insert(
            id,
            Operation {
                id,
                operation: operation.to_string(),
                status: "running".into(),
                started: format_rfc3339(now_ns()),
                finished: None,
                progress: Progress::default(),
                result: None,
                error: None,
            },
        );
        // Forget the oldest finished operations beyond the kept number.
        let finished: Vec<u64> = table.values().filter(|o| o.status != "running").map(|o| o.id).collect();
        for old in finished.iter().take(finished.len().saturating_sub(KEPT_FINISHED)) {
            table.remove(old);
        }
        Ok(id)
    }

    fn finish(&self, id: u64, outcome: &Result<serde_json::Value, ApiError>) {
        if let Some(op) = self.table.lock().get_mut(&id) {
            op.finished = Some(format_rfc3339(now_ns()));
            match outcome {
                Ok(result) => {
                    op.status = "succeeded".into();
                    op.result = Some(result.clone());
                }
                Err(e) => {
                    op.status = "failed".into();
                    op.error = Some(e.body());
                }
            }
        }
    }
}

/// Starts `work` as operation `name` on the blocking pool and answers 202 with its id and
/// `Location`. At its end the outcome is recorded and announced.
pub(crate) fn start(
    state: &AppState,
    name: &'static str,
    work: impl FnOnce(&ProgressSink) -> Result<serde_json::Value, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let id = state.operations.begin(name)?;
    let sink = ProgressSink {
        operations: state.operations.clone(),
        id,
    };
    let history = state.history.clone();
    let operations = state.operations.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&sink))) {
            Ok(outcome) => outcome,
            Err(_) => Err(ApiError::internal(format!("the {name} operation panicked; the server goes on"))),
        };
        operations.finish(id, &outcome);
        history.engine().publish_event(&Event::OperationCompleted(OperationCompleted {
            id,
            operation: name.to_string(),
            status: if outcome.is_ok() { "succeeded" } else { "failed" }.to_string(),
            error: outcome.err().map(|e| e.reason),
        }));
    });
    let location = format!("/history/operations/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        axum::Json(super::schema::OperationAccepted {
            id,
            operation: name.to_string(),
            status: "running".into(),
            status_url: location,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_operation_of_a_kind_runs_at_a_time_and_old_ones_are_forgotten() {
        let ops = Operations::default();
        let first = ops.begin("archive").unwrap();
        match ops.begin("archive") {
            Err(e) => assert_eq!((e.status, e.kind), (StatusCode::CONFLICT, "operation_running")),
            Ok(id) => panic!("a second archive started as {id}"),
        }
        let other = ops.begin("optimize").unwrap();
        ops.finish(first, &Ok(serde_json::json!({"months": ["2026-01"]})));
        ops.finish(other, &Err(ApiError::internal("disk gone")));
        assert_eq!(ops.get(first).unwrap().status, "succeeded");
        assert_eq!(ops.get(other).unwrap().error.unwrap()["reason"], "disk gone");
        for _ in 0..KEPT_FINISHED + 5 {
            let id = ops.begin("cleanup").unwrap();
            ops.finish(id, &Ok(serde_json::Value::Null));
        }
        ops.begin("cleanup").unwrap();
        assert!(ops.get(first).is_none(), "the oldest finished operation is forgotten");
        assert_eq!(ops.list().len(), KEPT_FINISHED + 1);
    }
}
