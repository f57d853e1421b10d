"""annals: an embedded, append-only history store for metrics, performance samples, logs,
alerts and git commits, with the original design's Python API.

>>> from datetime import datetime, timezone
>>> import annals, tempfile
>>> with annals.History(tempfile.mkdtemp()) as history:
...     history.store_metrics([annals.MetricData(datetime.now(timezone.utc), "cpu", "usage_percent", 42.0)])
...     history.query_data(annals.DataQuery(data_types=[annals.DataType.METRICS])).rows[0].value
1
42.0

The store format is the Rust library's: a store written here is read by the ``annals``
command-line tool and by Rust programs, and the reverse.
"""

from ._annals import __version__
from ._async import AsyncHistory
from ._history import CommitTransaction, DataStorageManager, History, HistoryDataManager
from ._types import (
    AlertEvent,
    AlertState,
    CommitData,
    DataQuery,
    DataResponse,
    DataType,
    DiffData,
    LogEntry,
    LogLevel,
    MetricData,
    PerformanceData,
    RetentionPolicy,
    StorageResult,
    StorageStatus,
    StoredCommit,
    StoredDiff,
    TrendAnalysis,
    TrendQuery,
)
from .errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    DuplicateCommitError,
    Error,
    GitError,
    InternalError,
    InvalidInputError,
    InvalidTypeError,
    LimitExceededError,
    LockedError,
    ObjectStoreError,
    PoisonedError,
    RefusedError,
    StorageIOError,
    StoreNotFoundError,
    TextIndexError,
    TransactionFailed,
    UnsupportedVersionError,
)
from .handler import HistoryLogHandler

__all__ = [
    "__version__",
    "AlertEvent",
    "AlertState",
    "AsyncHistory",
    "ClosedError",
    "CommitData",
    "CommitTransaction",
    "CorruptionError",
    "DataQuery",
    "DataResponse",
    "DataStorageManager",
    "DataType",
    "DiffData",
    "DiskFullError",
    "DuplicateCommitError",
    "Error",
    "GitError",
    "History",
    "HistoryDataManager",
    "HistoryLogHandler",
    "InternalError",
    "InvalidInputError",
    "InvalidTypeError",
    "LimitExceededError",
    "LockedError",
    "LogEntry",
    "LogLevel",
    "MetricData",
    "ObjectStoreError",
    "PerformanceData",
    "PoisonedError",
    "RefusedError",
    "RetentionPolicy",
    "StorageIOError",
    "StorageResult",
    "StorageStatus",
    "StoreNotFoundError",
    "StoredCommit",
    "StoredDiff",
    "TextIndexError",
    "TransactionFailed",
    "TrendAnalysis",
    "TrendQuery",
    "UnsupportedVersionError",
]
