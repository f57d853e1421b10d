"""``HistoryLogHandler``: a :class:`logging.Handler` that stores every record in annals
without blocking the caller on disk.

``emit`` turns the record into a tuple and appends it to a bounded in-memory queue; a writer
thread takes what has gathered and stores it in one write (one call into the store, which
releases the GIL). A full queue drops the record and counts it (``dropped``); the first drop
is reported once on stderr. ``flush()`` waits until everything queued before it is stored;
``close()`` flushes and stops the writer, and runs at interpreter exit for handlers not
closed before. Records of annals' own loggers (``annals``, ``annals.*``) are never stored,
so the handler cannot feed itself.
"""

from __future__ import annotations

import atexit
import collections
import logging
import sys
import threading
import time
import weakref
from typing import Any, Deque, List, Optional, Tuple

from ._history import History

#: The attributes every LogRecord has; the others come from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

#: Records the writer stores in one write at most.
_BATCH = 8192

_LogTuple = Tuple[Any, ...]

_live: "weakref.WeakSet[HistoryLogHandler]" = weakref.WeakSet()


def _close_live_handlers() -> None:
    for handler in list(_live):
        try:
            handler.close()
        except Exception:  # noqa: BLE001 - interpreter exit: report nothing further
            pass


atexit.register(_close_live_handlers)


def _extra_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str, bytes)):
        if isinstance(value, int) and not isinstance(value, bool) and not (-(2**63) <= value < 2**63):
            return str(value)
        return value
    return repr(value)


class HistoryLogHandler(logging.Handler):
    """Stores every log record in ``history`` as a :class:`LogEntry`: level, logger name,
    the message with its arguments applied, module, function, line, thread id, process id,
    ``extra`` fields (and the exception text as ``extra_data["exc_text"]``).

    ``queue_size`` bounds the records waiting for the writer (default 100,000); beyond it
    records are dropped and counted in :attr:`dropped`. ``flush_interval`` is how long the
    writer lets records gather when the queue is short (default 50 ms).
    """

    def __init__(
        self,
        history: History,
        level: int = logging.NOTSET,
        *,
        queue_size: int = 100_000,
        flush_interval: float = 0.05,
    ) -> None:
        super().__init__(level)
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._store = history._store
        self._queue: Deque[_LogTuple] = collections.deque()
        self._queue_size = queue_size
        self._interval = flush_interval
        self._wake = threading.Event()
        self._drop_lock = threading.Lock()
        self._stopping = False
        self._closed = False
        #: Records stored.
        self.written = 0
        #: Records dropped because the queue was full.
        self.dropped = 0
        #: Records lost because the store refused a write (see :attr:`last_error`).
        self.failed = 0
        #: The last error of the writer, if any.
        self.last_error: Optional[BaseException] = None
        self._warned = False
        self._writer = threading.Thread(target=self._run, name="annals-log-writer", daemon=True)
        self._writer.start()
        _live.add(self)

    # -- caller side -----------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: the deque is thread-safe
        rv = self.filter(record)
        if rv:
            self.emit(record)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if name == "annals" or name.startswith("annals."):
            return
        try:
            if self._closed or len(self._queue) >= self._queue_size:
                self._drop()
                return
            extra = None
            for key, value in record.__dict__.items():
                if key not in _STANDARD_ATTRIBUTES:
                    if extra is None:
                        extra = {}
                    extra[key] = _extra_value(value)
            if record.exc_info and record.exc_info[0] is not None:
                if extra is None:
                    extra = {}
                extra["exc_text"] = logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                if extra is None:
                    extra = {}
                extra["exc_text"] = record.exc_text
            if record.stack_info:
                if extra is None:
                    extra = {}
                extra["stack_info"] = record.stack_info
            self._queue.append(
                (
                    int(record.created * 1e9),
                    record.levelno,
                    name,
                    record.getMessage(),
                    record.module,
                    record.funcName,
                    record.lineno,
                    record.thread,
                    record.process,
                    extra,
                )
            )
            if len(self._queue) >= _BATCH:
                self._wake.set()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def _drop(self) -> None:
        with self._drop_lock:
            self.dropped += 1
        if not self._warned:
            self._warned = True
            sys.stderr.write(
                f"annals: HistoryLogHandler dropped a log record (queue of {self._queue_size} full or handler closed); "
                "see handler.dropped\n"
            )

    # -- writer ----------------------------------------------------------------------

    def _take(self) -> Tuple[List[_LogTuple], Optional[threading.Event]]:
        """Up to a batch of records, stopping at a flush marker (returned with them)."""
        batch: List[_LogTuple] = []
        pop = self._queue.popleft
        try:
            while len(batch) < _BATCH:
                item = pop()
                if isinstance(item, threading.Event):
                    return batch, item
                batch.append(item)
        except IndexError:
            pass
        return batch, None

    def _store_batch(self, batch: List[_LogTuple]) -> None:
        try:
            self.written += self._store.store_log_tuples(batch)
        except BaseException as e:  # noqa: BLE001 - counted, kept, never raised into callers
            self.failed += len(batch)
            self.last_error = e

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            while True:
                batch, marker = self._take()
                if batch:
                    self._store_batch(batch)
                if marker is not None:
                    marker.set()
                elif not batch:
                    break
            if self._stopping and not self._queue:
                return

    # -- flush and close -------------------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every record emitted before the call is stored (or failed); True
        unless ``timeout`` seconds passed first. Records keep their order: a marker queued
        behind them tells when the writer got there."""
        if not self._writer.is_alive():
            return not self._queue
        marker = threading.Event()
        self._queue.append(marker)  # type: ignore[arg-type]
        self._wake.set()
        return marker.wait(timeout)

    def close(self) -> None:
        """Stores what is queued, stops the writer and closes the handler. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._stopping = True
        self._wake.set()
        self._writer.join(timeout=30)
        _live.discard(self)
        super().close()
