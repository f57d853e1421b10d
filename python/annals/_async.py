"""The original design's awaitable API: :class:`AsyncHistory` runs each call of a
:class:`History` on a small private thread pool. The store releases the GIL while it works,
so the event loop and the pool's threads run side by side."""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar, Union

from ._history import History
from ._types import (
    AlertEvent,
    AlertState,
    DataQuery,
    DataResponse,
    LogEntry,
    MetricData,
    PerformanceData,
    RetentionPolicy,
    Timestamp,
    TrendAnalysis,
    TrendQuery,
)

T = TypeVar("T")


class AsyncHistory:
    """:class:`History` with awaitable methods (the original ``HistoryDataManager``).

    ``AsyncHistory(path, ...)`` takes :class:`History`'s arguments, or wraps an open one
    with ``AsyncHistory(history=h)``. Calls run on a private pool of ``workers`` threads
    (not the loop's default executor, which the application shares). Use
    ``async with AsyncHistory(path) as history:`` or ``await history.close()``.
    """

    def __init__(
        self,
        path: Optional[Union[str, "os.PathLike[str]"]] = None,
        durability: str = "group",
        *,
        group_delay_ms: Optional[float] = None,
        create: bool = True,
        retention: Optional[RetentionPolicy] = None,
        history: Optional[History] = None,
        workers: int = 4,
    ) -> None:
        if history is None:
            if path is None:
                raise TypeError("AsyncHistory needs a path or history=")
            history = History(path, durability, group_delay_ms=group_delay_ms, create=create, retention=retention)
        #: The synchronous history underneath.
        self.history = history
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="annals")

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def store_metrics(self, metrics: Iterable[MetricData]) -> int:
        """See :meth:`History.store_metrics`."""
        return await self._run(self.history.store_metrics, list(metrics))

    async def store_performance_data(self, samples: Iterable[PerformanceData]) -> int:
        """See :meth:`History.store_performance_data`."""
        return await self._run(self.history.store_performance_data, list(samples))

    async def store_logs(self, logs: Iterable[LogEntry]) -> int:
        """See :meth:`History.store_logs`."""
        return await self._run(self.history.store_logs, list(logs))

    async def store_alert(self, alert: AlertEvent) -> int:
        """See :meth:`History.store_alert`."""
        return await self._run(self.history.store_alert, alert)

    async def acknowledge_alert(self, alert_id: str, at: Optional[Timestamp] = None) -> bool:
        """See :meth:`History.acknowledge_alert`."""
        return await self._run(self.history.acknowledge_alert, alert_id, at)

    async def resolve_alert(self, alert_id: str, at: Optional[Timestamp] = None) -> bool:
        """See :meth:`History.resolve_alert`."""
        return await self._run(self.history.resolve_alert, alert_id, at)

    async def get_alert(self, alert_id: str) -> Optional[AlertEvent]:
        """See :meth:`History.get_alert`."""
        return await self._run(self.history.get_alert, alert_id)

    async def get_alerts(self, states: Sequence[Union[AlertState, str]] = (), limit: int = 100) -> List[AlertEvent]:
        """See :meth:`History.get_alerts`."""
        return await self._run(self.history.get_alerts, list(states), limit)

    async def query_data(self, query: Optional[DataQuery] = None) -> DataResponse:
        """See :meth:`History.query_data`."""
        return await self._run(self.history.query_data, query)

    async def get_trends(self, query: TrendQuery) -> TrendAnalysis:
        """See :meth:`History.get_trends`."""
        return await self._run(self.history.get_trends, query)

    async def archive_old_data(self, before: Any, out: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`History.archive_old_data`."""
        return await self._run(self.history.archive_old_data, before, out)

    async def restore_archive(self, path: str) -> Dict[str, Any]:
        """See :meth:`History.restore_archive`."""
        return await self._run(self.history.restore_archive, path)

    async def cleanup_data(self, dry_run: bool = False) -> Dict[str, Any]:
        """See :meth:`History.cleanup_data`."""
        return await self._run(self.history.cleanup_data, dry_run)

    async def storage_stats(self) -> Dict[str, Any]:
        """See :meth:`History.storage_stats`."""
        return await self._run(self.history.storage_stats)

    async def optimize(self) -> Dict[str, Any]:
        """See :meth:`History.optimize`."""
        return await self._run(self.history.optimize)

    async def flush(self) -> None:
        """See :meth:`History.flush`."""
        await self._run(self.history.flush)

    async def close(self) -> None:
        """Closes the store (on the pool, so the loop is not blocked by the final flush),
        then stops the pool."""
        try:
            await self._run(self.history.close)
        finally:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> "AsyncHistory":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
