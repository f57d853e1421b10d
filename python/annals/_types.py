"""The data classes and enums of the original design's history and commit APIs.

Field names are the original design's (and those of the Rust library's types of the same
names). A timestamp given to annals is a timezone-aware :class:`datetime.datetime` or an
integer of nanoseconds since the Unix epoch; a naive datetime is refused. Records read back
carry UTC datetimes (microsecond precision), or integer nanoseconds when the query asks
for ``timestamps="ns"``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import datetime
from typing import Any, Dict, List, Optional, Union

#: A point in time: a timezone-aware datetime, or integer nanoseconds since the epoch.
Timestamp = Union[datetime, int]

#: Extra values of a record (``metadata``, ``extra_data``): numbers, booleans, text, bytes.
Metadata = Dict[str, Union[float, int, bool, str, bytes]]


class LogLevel(str, enum.Enum):
    """Severity of a log record or alert, as in Python's :mod:`logging`."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class AlertState(str, enum.Enum):
    """What happened to an alert; each is an appended event and the newest one wins."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class DataType(str, enum.Enum):
    """The record kinds :class:`DataQuery` selects."""

    METRICS = "metrics"
    PERFORMANCE = "performance"
    LOGS = "logs"
    ALERTS = "alerts"


class StorageStatus(str, enum.Enum):
    """How storing a commit ended (the original enum)."""

    SUCCESS = "Success"
    FAILED = "Failed"
    DUPLICATE = "Duplicate"


@dataclass
class MetricData:
    """A metric reading: stored as measurement ``metric_type``, field ``metric_name``."""

    timestamp: Timestamp
    metric_type: str
    metric_name: str
    value: float
    unit: Optional[str] = None
    tags: Dict[str, str] = _field(default_factory=dict)


@dataclass
class PerformanceData:
    """A performance sample of an operation of a component."""

    timestamp: Timestamp
    component: str
    operation: str
    duration_ms: Optional[float] = None
    throughput: Optional[float] = None
    efficiency_percent: Optional[float] = None
    error_count: int = 0
    metadata: Metadata = _field(default_factory=dict)
    tags: Dict[str, str] = _field(default_factory=dict)


@dataclass
class LogEntry:
    """A log record; ``message`` is full-text searchable."""

    timestamp: Timestamp
    level: Union[LogLevel, str]
    logger_name: str
    message: str
    module: Optional[str] = None
    function_name: Optional[str] = None
    line_number: Optional[int] = None
    thread_id: Optional[int] = None
    process_id: Optional[int] = None
    extra_data: Metadata = _field(default_factory=dict)
    tags: Dict[str, str] = _field(default_factory=dict)


@dataclass
class AlertEvent:
    """One event in the life of an alert (raised, acknowledged or resolved).

    ``acknowledged_at`` and ``resolved_at`` are filled on alerts read back through
    :meth:`History.get_alert` and :meth:`History.get_alerts` once those events exist; they
    are ignored when storing.
    """

    timestamp: Timestamp
    alert_id: str
    level: Union[LogLevel, str]
    category: str
    title: str
    description: Optional[str] = None
    source_component: Optional[str] = None
    metadata: Metadata = _field(default_factory=dict)
    state: Union[AlertState, str] = AlertState.RAISED
    acknowledged_at: Optional[Timestamp] = None
    resolved_at: Optional[Timestamp] = None


#: Any record :meth:`History.query_data` returns.
Record = Union[MetricData, PerformanceData, LogEntry, AlertEvent]


@dataclass
class DataQuery:
    """What :meth:`History.query_data` returns a page of.

    ``end_time`` is excluded. ``search_text`` is a full-text query (words, ``"phrases"``,
    ``AND``/``OR``/``NOT``, ``prefix*``) over log messages and alert titles and descriptions.
    Pages: ``limit`` rows (1..1000), then follow ``DataResponse.next_cursor`` (or ``offset``).
    ``timestamps`` is ``"datetime"`` (UTC) or ``"ns"`` (exact integer nanoseconds).
    """

    start_time: Optional[Timestamp] = None
    end_time: Optional[Timestamp] = None
    data_types: List[Union[DataType, str]] = _field(default_factory=list)
    levels: List[Union[LogLevel, str]] = _field(default_factory=list)
    components: List[str] = _field(default_factory=list)
    search_text: Optional[str] = None
    limit: int = 100
    offset: int = 0
    cursor: Optional[str] = None
    order_desc: bool = True
    timestamps: str = "datetime"


@dataclass
class DataResponse:
    """A page of records, newest first unless the query said otherwise."""

    rows: List[Record]
    total_count: Optional[int] = None
    next_cursor: Optional[str] = None

    @property
    def has_more(self) -> bool:
        """Whether a next page exists (``next_cursor`` is set)."""
        return self.next_cursor is not None

    def to_arrow(self, kind: Optional[Union[DataType, str]] = None) -> Any:
        """The rows of one kind as a ``pyarrow.Table`` (needs ``pyarrow`` >= 14).

        ``kind`` picks the record kind when the page holds several. Columns are the data
        class's fields (``timestamp`` as ``timestamp[ns, tz=UTC]``, exact), then
        ``tags.<key>`` and the extra values as ``metadata.<key>`` / ``extra_data.<key>``.
        pyarrow imports the columns annals built without copying them.
        """
        from ._arrow import page_to_table

        page = getattr(self, "_page", None)
        if page is None:
            raise ValueError("to_arrow() needs a response returned by History.query_data")
        return page_to_table(page, kind)

    def to_pandas(self, kind: Optional[Union[DataType, str]] = None) -> Any:
        """The rows of one kind as a pandas DataFrame (needs ``pyarrow`` and ``pandas``)."""
        return self.to_arrow(kind).to_pandas()


@dataclass
class RetentionPolicy:
    """How long the store keeps detail rows and the hourly/daily/weekly summaries that
    replace them (the original defaults: 30 days and a year). Given to :class:`History`;
    :meth:`History.cleanup_data` applies it."""

    detail_days: float = 30
    summary_days: float = 365
    #: Per kind overrides: ``{"logs": (7, 365)}`` keeps a week of log detail.
    kinds: Dict[str, "tuple[float, float]"] = _field(default_factory=dict)
    #: Per measurement overrides, which win over kind overrides.
    measurements: Dict[str, "tuple[float, float]"] = _field(default_factory=dict)
    #: Apply it from the store's background thread as well as on request.
    background: bool = True


@dataclass
class TrendQuery:
    """A trend analysis request (:meth:`History.get_trends`).

    The selection is that of ``annals query``: ``measurement``, ``field`` (one or more),
    ``where`` (``host=a,region=eu``), ``start_time``/``end_time``, and optionally
    ``group_by`` and ``every`` (e.g. ``"1h"``) to analyse each group's bucket means.
    ``parts`` picks from ``patterns``, ``anomalies``, ``forecast`` and ``correlate``; the
    rest are the parameters of docs/TRENDS.md.
    """

    measurement: str
    field: Optional[Union[str, List[str]]] = None
    where: Optional[str] = None
    start_time: Optional[Timestamp] = None
    end_time: Optional[Timestamp] = None
    group_by: Optional[Union[str, List[str]]] = None
    every: Optional[str] = None
    parts: List[str] = _field(default_factory=lambda: ["patterns", "anomalies", "forecast"])
    utc_offset: Optional[str] = None
    sensitivity: Optional[float] = None
    horizon: Optional[str] = None
    threshold: Optional[float] = None
    max_lag: Optional[int] = None
    around: Optional[Timestamp] = None
    #: Keep every scored point of each anomaly report, not only the anomalous ones.
    all_points: bool = False


@dataclass
class TrendAnalysis:
    """The answer of :meth:`History.get_trends`: one entry per series and field in
    ``series`` (each with ``patterns``, ``anomalies`` and ``forecast`` when asked for), and
    ``correlation`` when asked for. Times are UTC datetimes."""

    series: List[Dict[str, Any]]
    correlation: Optional[Dict[str, Any]] = None


@dataclass
class CommitData:
    """A git commit as pushed to the commit store."""

    commit_hash: str
    message: str
    author: str
    timestamp: Timestamp
    repository: str
    branch: str = "main"
    author_email: Optional[str] = None
    pusher: Optional[str] = None
    commit_count: int = 1


@dataclass
class DiffData:
    """One file of a commit; ``diff_content`` is the patch (bytes, or text stored as UTF-8)."""

    file_path: str
    additions: int = 0
    deletions: int = 0
    changes: Optional[str] = None
    diff_content: Optional[Union[bytes, str]] = None
    old_path: Optional[str] = None
    binary: bool = False


@dataclass
class StorageResult:
    """The answer to storing one commit. ``metadata`` holds ``total_additions``,
    ``total_deletions``, ``files``, ``inline_bytes`` and ``offloaded_bytes``."""

    success: bool
    status: StorageStatus
    commit_id: Optional[int]
    message: str
    timestamp: datetime
    metadata: Dict[str, int] = _field(default_factory=dict)


@dataclass
class StoredDiff:
    """One file of a stored commit; its bytes come from
    :meth:`DataStorageManager.get_diff`. ``stored`` is ``inline``, ``object`` or ``none``."""

    file_path: str
    additions: int
    deletions: int
    binary: bool
    changes: Optional[str]
    diff_bytes: Optional[int]
    stored: str
    old_path: Optional[str] = None


@dataclass
class StoredCommit:
    """A commit as read back: the :class:`CommitData` fields, its stable ``commit_id``,
    line totals, and its files (empty in listings of recent commits)."""

    commit_hash: str
    message: str
    author: str
    timestamp: datetime
    repository: str
    branch: str
    author_email: Optional[str]
    pusher: Optional[str]
    commit_count: int
    commit_id: int
    additions: int
    deletions: int
    diff_count: int
    files: List[StoredDiff] = _field(default_factory=list)
