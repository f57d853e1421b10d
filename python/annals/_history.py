"""The synchronous API: :class:`History` (the original ``HistoryDataManager``) and
:class:`DataStorageManager` (the original commit store), over the native ``Store``."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import _annals
from ._types import (
    AlertEvent,
    AlertState,
    CommitData,
    DataQuery,
    DataResponse,
    DataType,
    DiffData,
    LogEntry,
    MetricData,
    PerformanceData,
    RetentionPolicy,
    StorageResult,
    StorageStatus,
    StoredCommit,
    Timestamp,
    TrendAnalysis,
    TrendQuery,
)
from .errors import InvalidInputError, TransactionFailed

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Keys of a trend analysis that hold times (integer nanoseconds from the native layer).
_TREND_TIME_KEYS = frozenset(["time", "first", "last", "around", "at", "earliest", "at_current_trend"])


def _now_ns() -> int:
    import time

    return time.time_ns()


def _as_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _times_to_datetimes(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (_as_datetime(v) if k in _TREND_TIME_KEYS and isinstance(v, int) and not isinstance(v, bool) else _times_to_datetimes(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_times_to_datetimes(v) for v in value]
    return value


def _month(value: Union[str, datetime, int]) -> str:
    """``YYYY-MM`` of a month given as text, a datetime or nanoseconds."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InvalidInputError(
                "before: a naive datetime is refused: give a timezone-aware one or 'YYYY-MM'",
                field="before",
                reason="naive datetime",
            )
        value = value.astimezone(timezone.utc)
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, int) and not isinstance(value, bool):
        return _month(_as_datetime(value))
    raise InvalidInputError(
        f"before: expected 'YYYY-MM', an aware datetime or nanoseconds, not {type(value).__name__}",
        field="before",
        reason="wrong type",
    )


def _trend_params(query: TrendQuery) -> List[Tuple[str, str]]:
    def ts(value: Timestamp, name: str) -> str:
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise InvalidInputError(f"query.{name}: a naive datetime is refused", field=f"query.{name}", reason="naive datetime")
            delta = value - _EPOCH
            return str((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise InvalidInputError(
            f"query.{name}: expected an aware datetime or integer nanoseconds, not {type(value).__name__}",
            field=f"query.{name}",
            reason="wrong type",
        )

    def listed(value: Union[str, Sequence[str]]) -> str:
        return value if isinstance(value, str) else ",".join(value)

    params: List[Tuple[str, str]] = [("measurement", query.measurement)]
    if query.field is not None:
        params.append(("field", listed(query.field)))
    if query.where is not None:
        params.append(("where", query.where))
    if query.start_time is not None:
        params.append(("from", ts(query.start_time, "start_time")))
    if query.end_time is not None:
        params.append(("to", ts(query.end_time, "end_time")))
    if query.group_by is not None:
        params.append(("group_by", listed(query.group_by)))
    if query.every is not None:
        params.append(("every", query.every))
    params.append(("parts", ",".join(query.parts)))
    for name in ("utc_offset", "horizon"):
        value = getattr(query, name)
        if value is not None:
            params.append((name, str(value)))
    for name in ("sensitivity", "threshold"):
        value = getattr(query, name)
        if value is not None:
            params.append((name, repr(float(value))))
    if query.max_lag is not None:
        params.append(("max_lag", str(int(query.max_lag))))
    if query.around is not None:
        params.append(("around", ts(query.around, "around")))
    return params


class History:
    """An annals store with the original design's history API (``HistoryDataManager``).

    ``History(path)`` opens the store in directory ``path``, creating it unless
    ``create=False``. ``durability`` is ``"group"`` (default: concurrent writers share an
    fsync, and a returned write is durable), ``"sync"`` (an fsync per write) or ``"none"``
    (the page cache only: survives a crash of the process, not of the machine).
    ``retention`` is the :class:`RetentionPolicy` :meth:`cleanup_data` applies (default: 30
    days of detail, a year of summaries). One process may hold a store open at a time.

    Every method releases the GIL while the store works, so other Python threads run. Use
    it as a context manager, or call :meth:`close`, so the head is flushed to segments (an
    unclosed store loses nothing acknowledged: the write-ahead log is replayed on open).
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        durability: str = "group",
        *,
        group_delay_ms: Optional[float] = None,
        create: bool = True,
        retention: Optional[RetentionPolicy] = None,
    ) -> None:
        native_retention = None
        if retention is not None:
            native_retention = (
                float(retention.detail_days),
                float(retention.summary_days),
                [(k.value if hasattr(k, "value") else str(k), (float(d), float(s))) for k, (d, s) in retention.kinds.items()],
                [(str(k), (float(d), float(s))) for k, (d, s) in retention.measurements.items()],
                bool(retention.background),
            )
        self._store = _annals.Store(os.fspath(path), durability, group_delay_ms, create, native_retention)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The store's directory."""
        return self._store.path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._store.closed

    def close(self) -> None:
        """Flushes and closes the store; later calls raise :class:`annals.ClosedError`.
        Closing twice is harmless."""
        self._store.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"History({self.path!r}{', closed' if self.closed else ''})"

    # -- writes ----------------------------------------------------------------------

    def store_metrics(self, metrics: Iterable[MetricData]) -> int:
        """Stores metric readings, all or none (one write-ahead log record); returns how
        many were stored."""
        return self._store.store_metrics(metrics)

    def store_performance_data(self, samples: Iterable[PerformanceData]) -> int:
        """Stores performance samples, all or none; returns how many were stored."""
        return self._store.store_performance_data(samples)

    def store_logs(self, logs: Iterable[LogEntry]) -> int:
        """Stores log records, all or none; returns how many were stored."""
        return self._store.store_logs(logs)

    def store_alert(self, alert: AlertEvent) -> int:
        """Stores an alert event (usually raised); returns its record id."""
        return self._store.store_alert(alert)

    def acknowledge_alert(self, alert_id: str, at: Optional[Timestamp] = None) -> bool:
        """Appends an acknowledgement of the alert at ``at`` (default now); False when the
        alert is unknown."""
        return self._store.acknowledge_alert(alert_id, _now_ns() if at is None else at)

    def resolve_alert(self, alert_id: str, at: Optional[Timestamp] = None) -> bool:
        """Appends a resolution of the alert at ``at`` (default now); False when the alert is
        unknown."""
        return self._store.resolve_alert(alert_id, _now_ns() if at is None else at)

    # -- reads -----------------------------------------------------------------------

    def get_alert(self, alert_id: str) -> Optional[AlertEvent]:
        """The alert's newest event, with ``acknowledged_at``/``resolved_at`` filled; None
        when unknown."""
        return self._store.get_alert(alert_id)

    def get_alerts(self, states: Sequence[Union[AlertState, str]] = (), limit: int = 100) -> List[AlertEvent]:
        """The newest event of each alert, newest first; only those whose state is in
        ``states`` when given (open alerts: ``[AlertState.RAISED, AlertState.ACKNOWLEDGED]``)."""
        names = [s.value if isinstance(s, AlertState) else str(s) for s in states]
        return self._store.get_alerts(names, limit)

    def query_data(self, query: Optional[DataQuery] = None) -> DataResponse:
        """A page of records of the kinds, levels and components ``query`` selects, newest
        first by default. Follow ``next_cursor`` for the next page."""
        page, as_ns = self._store.query_data(query if query is not None else DataQuery())
        response = DataResponse(rows=page.records(as_ns), total_count=page.total_count, next_cursor=page.next_cursor)
        response._page = page  # type: ignore[attr-defined]  # Arrow batches without copies
        return response

    def iter_records(self, query: Optional[DataQuery] = None) -> Iterator[Any]:
        """Every record ``query`` selects, page after page (its ``limit`` is the page size)."""
        query = query if query is not None else DataQuery()
        while True:
            page = self.query_data(query)
            yield from page.rows
            if page.next_cursor is None:
                return
            query = DataQuery(**{**query.__dict__, "cursor": page.next_cursor, "offset": 0})

    def query_table(
        self,
        query: Optional[DataQuery] = None,
        kind: Optional[Union[DataType, str]] = None,
        max_rows: Optional[int] = None,
    ) -> Any:
        """Every record of one kind ``query`` selects (from its offset or cursor, in its
        order; its ``limit`` is not used), at most ``max_rows``, as one ``pyarrow.Table``,
        read into columns in one call without building a Python object per record.
        ``kind`` is needed when the query selects several kinds."""
        from ._arrow import pyarrow

        pa = pyarrow()
        query = query if query is not None else DataQuery()
        if kind is None:
            kinds = list(query.data_types or [])
            if len(kinds) != 1:
                raise ValueError("the query selects several record kinds: pass kind= to pick one")
            kind = kinds[0]
        name = kind.value if isinstance(kind, DataType) else DataType(str(kind).lower()).value
        if max_rows is not None and max_rows < 0:
            raise ValueError(f"max_rows must be 0 or more, not {max_rows}")
        batch = self._store.query_table(query, name, max_rows)
        return pa.Table.from_batches([pa.record_batch(batch)])

    def get_trends(self, query: TrendQuery) -> TrendAnalysis:
        """Time-of-day patterns, anomalies, forecasts and correlations of the selected
        series (docs/TRENDS.md)."""
        text = self._store.get_trends(_trend_params(query), bool(query.all_points))
        value = _times_to_datetimes(json.loads(text))
        return TrendAnalysis(series=value.get("series", []), correlation=value.get("correlation"))

    def storage_stats(self) -> Dict[str, Any]:
        """Sizes and counts of the store: segments, rows, points, bytes per month and kind,
        the head, the text index, warnings."""
        return json.loads(self._store.storage_stats())

    # -- lifecycle operations --------------------------------------------------------

    def archive_old_data(self, before: Union[str, datetime, int], out: Optional[str] = None) -> Dict[str, Any]:
        """Moves every month before ``before`` (``'YYYY-MM'``, or the month of an aware
        datetime) into one archive file (``<store>/archive/`` unless ``out`` says otherwise);
        the report says which months, rows and bytes. :meth:`restore_archive` brings them
        back."""
        return json.loads(self._store.archive(_month(before), None if out is None else os.fspath(out)))

    def restore_archive(self, path: str) -> Dict[str, Any]:
        """Brings an archive file's months back into the store."""
        return json.loads(self._store.restore(os.fspath(path)))

    def cleanup_data(self, dry_run: bool = False) -> Dict[str, Any]:
        """Applies the store's retention policy: rolls finished days up into summaries and
        drops detail and summaries past their horizon. With ``dry_run``, reports what would
        be dropped and changes nothing."""
        return json.loads(self._store.retention(not dry_run))

    def optimize(self) -> Dict[str, Any]:
        """Merges every month to one segment and its text index to one segment, and
        removes orphan files."""
        return json.loads(self._store.optimize())

    def flush(self) -> None:
        """Writes the head (recent rows, already durable in the log) to segment files."""
        self._store.flush()


#: The original design's name of the history manager.
HistoryDataManager = History


class CommitTransaction:
    """Commits gathered by :meth:`DataStorageManager.transaction`, stored together when the
    ``with`` block ends without an exception, and not at all otherwise."""

    def __init__(self, manager: "DataStorageManager") -> None:
        self._manager = manager
        self._pending: List[Tuple[CommitData, List[DiffData]]] = []
        #: One :class:`StorageResult` per commit once the transaction has ended.
        self.results: List[StorageResult] = []

    def store_commit(self, commit: CommitData, diffs: Sequence[DiffData] = ()) -> None:
        """Adds a commit to the transaction."""
        self._pending.append((commit, list(diffs)))

    def __len__(self) -> int:
        return len(self._pending)

    def __enter__(self) -> "CommitTransaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._pending.clear()
            return
        if not self._pending:
            return
        self.results = self._manager._store.store_commits(self._pending, True)
        self._pending.clear()
        failed = [r for r in self.results if r.status == StorageStatus.FAILED]
        if failed:
            raise TransactionFailed(
                f"nothing of the transaction was stored: {failed[0].message}",
                results=self.results,
            )


class DataStorageManager:
    """The commit store of the original design: commits with the diff of every file,
    unique by hash. ``DataStorageManager(path)`` opens the store at ``path`` (the same
    store a :class:`History` may use, but not at the same time from two handles: share one
    with ``DataStorageManager(history=h)``)."""

    def __init__(
        self,
        path: Optional[Union[str, "os.PathLike[str]"]] = None,
        durability: str = "group",
        *,
        history: Optional[History] = None,
    ) -> None:
        if history is None:
            if path is None:
                raise InvalidInputError("DataStorageManager needs a path or a history", field="path", reason="missing")
            history = History(path, durability)
            self._owned = True
        else:
            self._owned = False
        self.history = history
        self._store = history._store

    def store_commit(self, commit: CommitData, diffs: Sequence[DiffData] = ()) -> StorageResult:
        """Stores a commit with its files. A hash already stored answers
        ``StorageStatus.DUPLICATE`` and changes nothing; a commit that fails its checks
        answers ``FAILED`` with the reason and stores nothing."""
        return self._store.store_commits([(commit, list(diffs))], True)[0]

    def store_commits(self, commits: Iterable[Tuple[CommitData, Sequence[DiffData]]]) -> List[StorageResult]:
        """Stores commits in one write: all the new ones or none (duplicates are skipped
        and answered ``DUPLICATE``; one failure stores nothing)."""
        return self._store.store_commits([(c, list(d)) for c, d in commits], True)

    def transaction(self) -> CommitTransaction:
        """``with manager.transaction() as tx: tx.store_commit(...)``: all or nothing."""
        return CommitTransaction(self)

    def get_commit_by_hash(self, commit_hash: str) -> Optional[StoredCommit]:
        """The commit with this hash (or the only one starting with a prefix of 7+ hex
        digits) with its files; None when absent."""
        return self._store.get_commit_by_hash(commit_hash)

    def get_recent_commits(self, repository: str, limit: int = 10) -> List[StoredCommit]:
        """The newest ``limit`` commits of ``repository`` (``owner/repo``), newest first."""
        return self._store.get_recent_commits(repository, limit)

    def get_diff(self, commit_hash: str, file_path: str) -> Optional[bytes]:
        """The diff of one file of a commit, byte for byte; None when absent."""
        return self._store.get_diff(commit_hash, file_path)

    def close(self) -> None:
        """Closes the store when this manager opened it."""
        if self._owned:
            self.history.close()

    def __enter__(self) -> "DataStorageManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
