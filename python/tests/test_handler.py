"""HistoryLogHandler: every record stored once, with its attributes; the caller's cost
per record measured; annals' own loggers never loop back."""

import logging
import statistics
import threading
import time

import annals
from annals import DataQuery, DataType, HistoryLogHandler
from conftest import QUICK


def count_logs(history, **query) -> int:
    page = history.query_data(DataQuery(data_types=[DataType.LOGS], limit=1, **query))
    return page.total_count


def log_from_threads(handler: logging.Handler, threads: int, per_thread: int):
    """Logs per_thread records from each of `threads` threads through `handler`; returns
    the sampled caller costs (ns, sorted) and the wall time."""
    logger = logging.getLogger(f"load.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    costs = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        clock = time.perf_counter_ns
        sample = costs[t]
        start.wait()
        for i in range(per_thread):
            before = clock()
            logger.info("worker %d record %d", t, i)
            if i % 16 == 0:
                sample.append(clock() - before)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    logged = time.perf_counter() - started
    handler.close()
    stored = time.perf_counter() - started
    logger.removeHandler(handler)
    return sorted(c for sample in costs for c in sample), logged, stored


def describe(cost, logged, total) -> str:
    return (f"caller cost per record mean {statistics.mean(cost) / 1000:.2f} us, p50 {cost[len(cost) // 2] / 1000:.2f} us, "
            f"p99 {cost[len(cost) * 99 // 100] / 1000:.2f} us; {logged / total * 1e6:.2f} us of wall time per record")


def test_eight_threads_lose_nothing_after_close(history):
    threads, per_thread = 8, (10_000 if QUICK else 100_000)
    total = threads * per_thread
    # The same loop with a handler that does nothing: what logging and the GIL cost alone.
    base_cost, base_logged, _ = log_from_threads(logging.NullHandler(), threads, per_thread)
    handler = HistoryLogHandler(history, queue_size=total)
    cost, logged, stored = log_from_threads(handler, threads, per_thread)
    assert (handler.dropped, handler.failed, handler.last_error) == (0, 0, None)
    assert handler.written == total
    assert count_logs(history) == total
    assert count_logs(history, search_text='"worker 7 record 123"') == 1
    print(f"\n{total} records from {threads} threads through HistoryLogHandler: {describe(cost, logged, total)}; "
          f"all stored {stored:.2f} s after the start ({total / stored:,.0f} records/s)")
    print(f"the same through logging.NullHandler: {describe(base_cost, base_logged, total)}")


def test_record_attributes_extra_and_exceptions_are_kept(history):
    handler = HistoryLogHandler(history)
    logger = logging.getLogger("app.payments")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.warning("charge %s failed for %d EUR", "c-17", 42, extra={"customer": "ada", "attempt": 3, "obj": object})
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("could not divide")
    handler.flush()
    rows = history.query_data(DataQuery(data_types=[DataType.LOGS], order_desc=False)).rows
    logger.removeHandler(handler)
    handler.close()
    first, second = rows
    assert first.message == "charge c-17 failed for 42 EUR"
    assert (first.level, first.logger_name, first.module, first.function_name) == (
        annals.LogLevel.WARNING, "app.payments", "test_handler", "test_record_attributes_extra_and_exceptions_are_kept")
    assert first.line_number > 0 and first.thread_id == threading.get_ident() and first.process_id > 0
    assert first.extra_data["customer"] == "ada" and first.extra_data["attempt"] == 3
    assert first.extra_data["obj"] == repr(object)
    assert second.level == annals.LogLevel.ERROR
    assert "ZeroDivisionError: division by zero" in second.extra_data["exc_text"]


def test_annals_own_loggers_never_loop_back(history):
    handler = HistoryLogHandler(history)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("annals").error("from annals itself")
        logging.getLogger("annals.writer").error("nor this")
        logging.getLogger("annalsish").error("but this one")
        handler.flush()
    finally:
        root.removeHandler(handler)
        handler.close()
    messages = [r.message for r in history.query_data(DataQuery(data_types=[DataType.LOGS])).rows]
    assert messages == ["but this one"]


def test_a_full_queue_drops_and_counts_but_never_blocks(history, capsys):
    handler = HistoryLogHandler(history, queue_size=10, flush_interval=60)
    logger = logging.getLogger("burst")
    logger.propagate = False
    logger.addHandler(handler)
    # The writer sleeps up to 60 s between rounds unless 8192 records wait: the burst fills
    # the queue of 10 first.
    for i in range(1000):
        logger.error("burst %d", i)
    dropped = handler.dropped
    handler.close()
    assert dropped > 0 and handler.written + handler.dropped == 1000
    assert count_logs(history) == handler.written
    assert "dropped a log record" in capsys.readouterr().err
    logger.error("after close")  # counted, not raised
    logger.removeHandler(handler)
    assert handler.dropped == dropped + 1


def test_a_closed_store_is_counted_not_raised(store_dir):
    history = annals.History(store_dir)
    handler = HistoryLogHandler(history)
    logger = logging.getLogger("late")
    logger.propagate = False
    logger.addHandler(handler)
    history.close()
    logger.error("nobody stores this")
    assert handler.flush(timeout=10)
    assert handler.failed == 1 and isinstance(handler.last_error, annals.ClosedError)
    handler.close()
    logger.removeHandler(handler)
