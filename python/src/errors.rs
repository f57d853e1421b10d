//! `annals::Error` as the Python exceptions of `annals.errors`, each carrying the Rust
//! error's data as attributes (line, column, limit, file, offset, ...).

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Builds an instance of `annals.errors.<class>` with `message` and the keyword data.
fn raise(py: Python<'_>, class: &str, message: String, data: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = ERRORS.get_or_try_init(py, || PyModule::import(py, "annals.errors").map(Bound::unbind))?;
        let kwargs = PyDict::new(py);
        for (key, value) in data {
            kwargs.set_item(key, value)?;
        }
        let instance = module.bind(py).getattr(class)?.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(instance))
    };
    // Only a broken installation (annals.errors missing) fails to build the exception.
    build().unwrap_or_else(|e| e)
}

fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> Py<PyAny> {
    // Strings, integers, booleans and None always convert.
    value.into_py_any(py).unwrap_or_else(|_| py.None())
}

/// The Python exception for an annals error.
pub fn to_py(py: Python<'_>, error: annals::Error) -> PyErr {
    use annals::Error as E;
    let message = error.to_string();
    let path = |p: &std::path::Path| obj(py, p.display().to_string());
    match &error {
        E::InvalidInput { line, column, reason } => raise(
            py,
            "InvalidInputError",
            message,
            &[
                ("line", obj(py, *line)),
                ("column", obj(py, *column)),
                ("reason", obj(py, reason.as_str())),
            ],
        ),
        E::LimitExceeded {
            limit,
            value,
            max,
            context,
        } => raise(
            py,
            "LimitExceededError",
            message,
            &[
                ("limit", obj(py, limit.to_string())),
                ("value", obj(py, *value)),
                ("max", obj(py, *max)),
                ("context", obj(py, context.clone())),
            ],
        ),
        E::Corruption { file, offset, kind } => raise(
            py,
            "CorruptionError",
            message,
            &[
                ("file", path(file)),
                ("offset", obj(py, *offset)),
                ("kind", obj(py, kind.to_string())),
            ],
        ),
        E::UnsupportedVersion { file, found, supported } => raise(
            py,
            "UnsupportedVersionError",
            message,
            &[("file", path(file)), ("found", obj(py, *found)), ("supported", obj(py, *supported))],
        ),
        E::Poisoned { cause } => raise(py, "PoisonedError", message, &[("cause", obj(py, cause.as_str()))]),
        E::Locked { path: p } => raise(py, "LockedError", message, &[("path", path(p))]),
        E::NotFound { path: p } => raise(py, "StoreNotFoundError", message, &[("path", path(p))]),
        E::Closed => raise(py, "ClosedError", message, &[]),
        E::DiskFull { op, path: p } => raise(py, "DiskFullError", message, &[("op", obj(py, *op)), ("path", path(p))]),
        E::Io { op, path: p, source } => raise(
            py,
            "StorageIOError",
            message,
            &[("op", obj(py, *op)), ("path", path(p)), ("errno", obj(py, source.raw_os_error()))],
        ),
        E::TextIndex { path: p, reason } => raise(
            py,
            "TextIndexError",
            message,
            &[("path", path(p)), ("reason", obj(py, reason.as_str()))],
        ),
        E::ObjectStore { location, reason } => raise(
            py,
            "ObjectStoreError",
            message,
            &[("location", obj(py, location.as_str())), ("reason", obj(py, reason.as_str()))],
        ),
        E::Git { path: p, reason } => raise(py, "GitError", message, &[("path", path(p)), ("reason", obj(py, reason.as_str()))]),
        E::DuplicateCommit { hash, in_batch } => raise(
            py,
            "DuplicateCommitError",
            message,
            &[("hash", obj(py, hash.as_str())), ("in_batch", obj(py, *in_batch))],
        ),
        E::Refused { reason } => raise(py, "RefusedError", message, &[("reason", obj(py, reason.as_str()))]),
        E::Unsupported { what } => raise(py, "InvalidInputError", message, &[("unsupported", obj(py, what.as_str()))]),
        E::QueryExecution { reason } => raise(py, "InvalidInputError", message, &[("reason", obj(py, reason.as_str()))]),
        E::Invariant(what) => raise(py, "InternalError", message, &[("detail", obj(py, what.as_str()))]),
        // `annals::Error` is non-exhaustive: a variant added later is still an annals.Error.
        _ => raise(py, "Error", message, &[]),
    }
}

/// Input refused before it reached the store: `at` names the argument, record and
/// attribute (`metrics[3].value`).
pub fn invalid(py: Python<'_>, at: impl std::fmt::Display, reason: impl std::fmt::Display) -> PyErr {
    refused_input(py, "InvalidInputError", at.to_string(), reason)
}

/// A value of the wrong Python type: both an `annals.InvalidInputError` and a `TypeError`.
pub fn wrong_type(py: Python<'_>, at: impl std::fmt::Display, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let type_name = got.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    refused_input(
        py,
        "InvalidTypeError",
        at.to_string(),
        format!("expected {expected}, not {type_name}"),
    )
}

/// `class` (an `InvalidInputError`) for the value at `where_`, with its reason.
fn refused_input(py: Python<'_>, class: &str, where_: String, reason: impl std::fmt::Display) -> PyErr {
    let reason = format!("{where_}: {reason}");
    raise(
        py,
        class,
        reason.clone(),
        &[
            ("line", py.None()),
            ("column", py.None()),
            ("reason", obj(py, reason)),
            ("field", obj(py, where_)),
        ],
    )
}
