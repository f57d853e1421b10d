//! The server's error answers: one JSON shape, one status per kind of failure.
//!
//! ```json
//! {"error": "bad_input", "reason": "…", "line": 3, "column": 7, "limit": "line length"}
//! ```
//! `line`, `column` and `limit` appear only when they apply.

use crate::error::{Error, Limit};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer of the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable name of the kind of error (`bad_input`, `unauthorized`, `not_found`,
    /// `body_too_large`, `query_limit`, `too_many_queries`, `unavailable`, `timeout`,
    /// `unsupported`, `execution`, `internal`).
    pub kind: &'static str,
    /// What went wrong, for a person.
    pub reason: String,
    /// The input line at fault (from 1), when there is one.
    pub line: Option<u64>,
    /// The column at fault (from 1), when there is one.
    pub column: Option<u64>,
    /// The limit that was exceeded, by name.
    pub limit: Option<String>,
}

impl ApiError {
    /// An error of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            reason: reason.into(),
            line: None,
            column: None,
            limit: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_input(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_input", reason)
    }

    /// 404: nothing at this route or with this key.
    pub fn not_found(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", reason)
    }

    /// 401: no token, or the wrong one. Says nothing about the data.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs `Authorization: Bearer <token>`",
        )
    }

    /// 413: the body (or what it decompresses to) is over the limit.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError {
            limit: Some("body size".into()),
            ..ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over {limit} bytes (after decompression); send it in parts"),
            )
        }
    }

    /// 500: a failure of the server itself.
    pub fn internal(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", reason)
    }

    /// The same error, its reason prefixed with the parameter it is about.
    pub fn in_param(mut self, name: &str) -> ApiError {
        self.reason = format!("{name}: {}", self.reason);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        // A struct of strings and integers always serializes.
        serde_json::to_value(self.error_body()).unwrap_or(serde_json::Value::Null)
    }

    /// The JSON body as its documented type.
    pub(crate) fn error_body(&self) -> super::schema::ErrorBody {
        super::schema::ErrorBody {
            error: self.kind.to_string(),
            reason: self.reason.clone(),
            line: self.line,
            column: self.column,
            limit: self.limit.clone(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let reason = error.to_string();
        match error {
            Error::InvalidInput { line, column, reason } => ApiError {
                line,
                column,
                ..ApiError::bad_input(reason)
            },
            Error::DuplicateCommit { .. } => ApiError::new(StatusCode::CONFLICT, "duplicate", reason),
            Error::LimitExceeded { limit, .. } => {
                let (status, kind) = match limit {
                    Limit::QuerySeries | Limit::QueryPointsScanned | Limit::QueryResultRows => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "query_limit")
                    }
                    _ => (StatusCode::BAD_REQUEST, "input_limit"),
                };
                ApiError {
                    limit: Some(limit.to_string()),
                    ..ApiError::new(status, kind, reason)
                }
            }
            Error::Poisoned { .. } | Error::Closed | Error::DiskFull { .. } | Error::Refused { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", reason)
            }
            Error::ObjectStore { .. } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "object_store", reason),
            Error::Unsupported { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported", reason),
            Error::QueryExecution { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "execution", reason),
            _ => ApiError::internal(reason),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.error_body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_position_and_the_limit() {
        let e = ApiError::from(Error::InvalidInput {
            line: Some(3),
            column: Some(7),
            reason: "bad field".into(),
        });
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": "bad_input", "reason": "bad field", "line": 3, "column": 7})
        );
        let e = ApiError::from(Error::LimitExceeded {
            limit: Limit::QueryResultRows,
            value: 11,
            max: 10,
            context: None,
        });
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.body()["limit"], Limit::QueryResultRows.to_string());
        assert_eq!(ApiError::from(Error::Closed).status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
