"""annals' Python package against the SQLite store the original design used, driven from
Python the way it was: the history tables' schema, 1000-row transactions, WAL journal,
synchronous=NORMAL (the schema is annals-bench's `SCHEMA`, src/bin/annals-bench/sqlite.rs).

    python python/benches/vs_sqlite.py [--quick] [--rows N] [--json FILE]

Figures (each a median of --runs runs, annals and SQLite alternating):
- store_metrics rows/s: the same list of MetricData (aware datetimes) stored 1000 rows per
  call / per transaction;
- query_data for 10 k records: the newest 10,000 metric records as MetricData objects
  (annals: ten pages of 1000 through the cursor; SQLite: one SELECT), and annals' Arrow
  path (History.query_table) that builds no Python objects;
- the log handler: records/s from 4 threads through logging, and the caller's cost per
  record, for HistoryLogHandler and for the same queue-and-writer handler over SQLite.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import annals
from annals import DataQuery, DataType, MetricData

def peer_schema() -> str:
    """The SQLite schema of annals-bench's peer (`SCHEMA` in src/bin/annals-bench/sqlite.rs),
    read from the repository so the two benchmarks run the same tables."""
    source = Path(__file__).resolve().parents[2] / "src" / "bin" / "annals-bench" / "sqlite.rs"
    text = source.read_text()
    start = text.index('const SCHEMA: &str = "') + len('const SCHEMA: &str = "')
    return text[start : text.index('";', start)].replace('\\"', '"').replace("\\\\", "\\")


SCHEMA = peer_schema()

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def to_ns(t: datetime) -> int:
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def readings(n: int):
    hosts = [f"host_{i}" for i in range(100)]
    names = ["usage_user", "usage_system", "usage_idle", "usage_iowait"]
    out = []
    for i in range(n):
        out.append(
            MetricData(
                timestamp=START + timedelta(seconds=i // 400, microseconds=i % 400),
                metric_type="cpu",
                metric_name=names[i % 4],
                value=(i * 7919 % 10_000) / 100,
                unit="percent",
                tags={"host": hosts[(i // 4) % 100], "region": "eu-west-1"},
            )
        )
    return out


def sqlite_open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def sqlite_store(conn: sqlite3.Connection, metrics) -> None:
    sql = "INSERT INTO system_metrics (timestamp, metric_type, metric_name, value, unit, tags) VALUES (?, ?, ?, ?, ?, ?)"
    for at in range(0, len(metrics), 1000):
        rows = [(to_ns(m.timestamp), m.metric_type, m.metric_name, m.value, m.unit, json.dumps(m.tags)) for m in metrics[at : at + 1000]]
        with conn:
            conn.executemany(sql, rows)


def annals_store(history: annals.History, metrics) -> None:
    for at in range(0, len(metrics), 1000):
        history.store_metrics(metrics[at : at + 1000])


def sqlite_query(conn: sqlite3.Connection, n: int):
    cursor = conn.execute(
        "SELECT timestamp, metric_type, metric_name, value, unit, tags FROM system_metrics ORDER BY timestamp DESC LIMIT ?", (n,)
    )
    return [MetricData(from_ns(t), mt, mn, v, u, json.loads(tags)) for t, mt, mn, v, u, tags in cursor]


def annals_query(history: annals.History, n: int):
    rows = []
    query = DataQuery(data_types=[DataType.METRICS], limit=1000)
    while len(rows) < n:
        page = history.query_data(query)
        rows.extend(page.rows)
        if page.next_cursor is None:
            break
        query.cursor = page.next_cursor
    return rows[:n]


class SQLiteLogHandler(logging.Handler):
    """HistoryLogHandler's design (a deque, a writer thread, batches) over SQLite's
    system_logs table and its FTS5 index, so the comparison is of the stores."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self.conn = conn
        self.queue: collections.deque = collections.deque()
        self.stop = False
        self.written = 0
        self.writer = threading.Thread(target=self.run, daemon=True)
        self.writer.start()

    def handle(self, record):
        self.emit(record)
        return True

    def emit(self, record):
        self.queue.append(
            (int(record.created * 1e9), record.levelname, record.name, record.getMessage(), record.module, record.funcName,
             record.lineno, record.thread, record.process, None)
        )

    def run(self):
        sql = ("INSERT INTO system_logs (timestamp, level, logger_name, message, module, function_name, line_number, thread_id, "
               "process_id, extra_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        while True:
            batch = []
            try:
                while len(batch) < 1000:
                    batch.append(self.queue.popleft())
            except IndexError:
                pass
            if batch:
                # The full-text index is kept as annals-bench's peer keeps it (annals
                # indexes its log messages too).
                with self.conn:
                    (last,) = self.conn.execute("SELECT coalesce(max(id), 0) FROM system_logs").fetchone()
                    self.conn.executemany(sql, batch)
                    self.conn.execute("INSERT INTO system_logs_fts (rowid, message) SELECT id, message FROM system_logs WHERE id > ?", (last,))
                self.written += len(batch)
            elif self.stop:
                return
            else:
                time.sleep(0.05)

    def close(self):
        self.stop = True
        self.writer.join()
        super().close()


def log_run(handler: logging.Handler, threads: int, per_thread: int):
    logger = logging.getLogger(f"bench.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    costs = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(t):
        clock = time.perf_counter_ns
        mine = []
        barrier.wait()
        for i in range(per_thread):
            before = clock()
            logger.info("worker %d handled request %d in %d ms", t, i, i % 97)
            if i % 8 == 0:
                mine.append(clock() - before)
        with lock:
            costs.extend(mine)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    handler.close()
    elapsed = time.perf_counter() - started
    logger.removeHandler(handler)
    costs.sort()
    return {
        "records_per_s": threads * per_thread / elapsed,
        "caller_us_mean": statistics.mean(costs) / 1000,
        "caller_us_p50": costs[len(costs) // 2] / 1000,
        "caller_us_p99": costs[len(costs) * 99 // 100] / 1000,
        "written": getattr(handler, "written", None),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 k rows, 3 runs, 4 x 10 k log records (CI)")
    parser.add_argument("--rows", type=int, default=None, help="metric rows stored (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    runs = args.runs or (3 if args.quick else 5)
    log_per_thread = 10_000 if args.quick else 100_000
    metrics = readings(rows)
    work = Path(tempfile.mkdtemp(prefix="annals-pybench-"))
    results = {"rows": rows, "runs": runs, "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    try:
        store_a, store_s, query_a, query_s, query_t, query_o = [], [], [], [], [], []
        for run in range(runs):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            conn = sqlite_open(work / "history.db")
            started = time.perf_counter()
            sqlite_store(conn, metrics)
            store_s.append(rows / (time.perf_counter() - started))
            history = annals.History(work / "annals", retention=annals.RetentionPolicy(background=False))
            started = time.perf_counter()
            annals_store(history, metrics)
            store_a.append(rows / (time.perf_counter() - started))
            history.flush()
            n = min(10_000, rows)
            for _ in range(3):  # warm: the first query of a fresh store maps files
                sqlite_query(conn, n)
                annals_query(history, n)
            started = time.perf_counter()
            got_s = sqlite_query(conn, n)
            query_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            got_a = annals_query(history, n)
            query_a.append(time.perf_counter() - started)
            started = time.perf_counter()
            table = history.query_table(DataQuery(data_types=[DataType.METRICS], limit=1000), max_rows=n)
            query_t.append(time.perf_counter() - started)
            history.optimize()  # the month as one segment, as a store settles
            history.query_table(DataQuery(data_types=[DataType.METRICS]), max_rows=n)
            started = time.perf_counter()
            history.query_table(DataQuery(data_types=[DataType.METRICS]), max_rows=n)
            query_o.append(time.perf_counter() - started)
            assert len(got_a) == len(got_s) == table.num_rows == n, (len(got_a), len(got_s), table.num_rows)
            assert sorted(m.value for m in got_a) == sorted(m.value for m in got_s), "annals and SQLite disagree"
            history.close()
            conn.close()
            print(f"run {run + 1}/{runs}: store annals {store_a[-1]:,.0f} rows/s, SQLite {store_s[-1]:,.0f}; "
                  f"10k query annals {query_a[-1] * 1000:.1f} ms (arrow {query_t[-1] * 1000:.2f} ms, {query_o[-1] * 1000:.2f} ms optimized), SQLite {query_s[-1] * 1000:.1f} ms",
                  flush=True)
        results["store_metrics_rows_per_s"] = {"annals": statistics.median(store_a), "sqlite": statistics.median(store_s)}
        results["query_10k_ms"] = {
            "annals_objects": statistics.median(query_a) * 1000,
            "annals_arrow": statistics.median(query_t) * 1000,
            "annals_arrow_optimized": statistics.median(query_o) * 1000,
            "sqlite_objects": statistics.median(query_s) * 1000,
        }

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        history = annals.History(work / "annals-logs", retention=annals.RetentionPolicy(background=False))
        results["log_handler_annals"] = log_run(annals.HistoryLogHandler(history, queue_size=4 * log_per_thread), 4, log_per_thread)
        history.close()
        conn = sqlite_open(work / "logs.db")
        results["log_handler_sqlite"] = log_run(SQLiteLogHandler(conn), 4, log_per_thread)
        conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    s, q = results["store_metrics_rows_per_s"], results["query_10k_ms"]
    la, ls = results["log_handler_annals"], results["log_handler_sqlite"]
    print()
    print(f"store_metrics, {rows:,} rows, 1000 per call: annals {s['annals']:,.0f} rows/s, SQLite {s['sqlite']:,.0f} rows/s "
          f"({s['annals'] / s['sqlite']:.2f}x)")
    print(f"query_data, newest 10,000 as MetricData: annals {q['annals_objects']:.1f} ms, SQLite {q['sqlite_objects']:.1f} ms; "
          f"annals as an Arrow table {q['annals_arrow']:.2f} ms ({q['annals_arrow_optimized']:.2f} ms after optimize)")
    print(f"log handler, 4 threads: annals {la['records_per_s']:,.0f} records/s, caller {la['caller_us_mean']:.2f} us mean "
          f"(p50 {la['caller_us_p50']:.2f}, p99 {la['caller_us_p99']:.2f}); SQLite {ls['records_per_s']:,.0f} records/s, "
          f"caller {ls['caller_us_mean']:.2f} us mean (p50 {ls['caller_us_p50']:.2f}, p99 {ls['caller_us_p99']:.2f})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
