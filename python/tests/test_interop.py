"""A store written from Python reads back identically through the Rust command-line tool,
and one written by the tool reads back identically in Python."""

import json
import random
from datetime import datetime, timezone

import annals
from annals import AlertEvent, DataQuery, DataType, LogEntry, LogLevel, MetricData, PerformanceData
from conftest import run_cli

BASE = 1_764_000_000_000_000_000


def random_records(rng: random.Random, n: int):
    metrics, logs, perf = [], [], []
    for i in range(n):
        t = BASE + i * 1_000_000_007 + rng.randrange(1000)  # nanoseconds kept exactly
        metrics.append(MetricData(t, "cpu", rng.choice(["usage_user", "usage_system"]), rng.uniform(-1e6, 1e6),
                                  unit="percent", tags={"host": f"h{rng.randrange(5)}", "region": rng.choice(["eu", "us"])}))
        logs.append(LogEntry(t, rng.choice(list(LogLevel)), f"svc.{rng.randrange(3)}", f"event {i} \u00e9t\u00e9 {rng.random()}",
                             module="mod", function_name="fn", line_number=rng.randrange(1, 10_000), thread_id=rng.randrange(2**40),
                             process_id=rng.randrange(1, 2**22), extra_data={"n": i, "ok": i % 2 == 0, "ratio": rng.random(), "note": "x"}))
        perf.append(PerformanceData(t, "buffer", "flush", duration_ms=rng.uniform(0, 100), throughput=None, efficiency_percent=99.5,
                                    error_count=rng.randrange(3), metadata={"bytes": rng.randrange(10**9)}))
    return metrics, logs, perf


def ns_query(kind):
    return DataQuery(data_types=[kind], limit=1000, order_desc=False, timestamps="ns")


def test_python_writes_the_cli_reads(tmp_path, seed):
    rng = random.Random(seed)
    store = tmp_path / "store"
    metrics, logs, perf = random_records(rng, 300)
    with annals.History(store) as h:
        h.store_metrics(metrics)
        h.store_logs(logs)
        h.store_performance_data(perf)
    exported = [json.loads(line) for line in run_cli("export", "--data", str(store), "--measurement", "cpu", "--format", "json",
                                                     "--time-format", "ns", "--limit", "100000").splitlines()]
    got = sorted((r["time"], r["tags"]["host"], r["tags"]["region"], name, value) for r in exported for name, value in r["fields"].items())
    want = sorted((m.timestamp, m.tags["host"], m.tags["region"], m.metric_name, m.value) for m in metrics)
    assert got == want, f"seed {seed}"
    logs_out = [json.loads(line) for line in run_cli("export", "--data", str(store), "--measurement", "log", "--kind", "log",
                                                     "--format", "json", "--time-format", "ns", "--limit", "100000").splitlines()]
    got = sorted((r["time"], r["tags"]["level"], r["fields"]["message"], r["fields"]["extra_data.n"], r["fields"]["extra_data.ok"]) for r in logs_out)
    want = sorted((l.timestamp, l.level.value, l.message, l.extra_data["n"], l.extra_data["ok"]) for l in logs)
    assert got == want, f"seed {seed}"


def test_the_cli_writes_python_reads(tmp_path, seed):
    rng = random.Random(seed)
    store = tmp_path / "store"
    metrics, logs, perf = random_records(rng, 200)
    alert = AlertEvent(BASE, "disk-1", LogLevel.CRITICAL, "SYSTEM", "Disk full", description="/var 99%", source_component="disk",
                       metadata={"percent": 99.0})
    lines = []
    for m in metrics:
        lines.append({"kind": "metric", "timestamp": m.timestamp, "metric_type": m.metric_type, "metric_name": m.metric_name,
                      "value": m.value, "unit": m.unit, "tags": m.tags})
    for l in logs:
        lines.append({"kind": "log", "timestamp": l.timestamp, "level": l.level.value, "logger_name": l.logger_name, "message": l.message,
                      "module": l.module, "function_name": l.function_name, "line_number": l.line_number, "thread_id": l.thread_id,
                      "process_id": l.process_id, "extra_data": l.extra_data})
    for p in perf:
        lines.append({"kind": "performance", "timestamp": p.timestamp, "component": p.component, "operation": p.operation,
                      "duration_ms": p.duration_ms, "efficiency_percent": p.efficiency_percent, "error_count": p.error_count,
                      "metadata": p.metadata})
    lines.append({"kind": "alert", "timestamp": alert.timestamp, "alert_id": alert.alert_id, "state": "raised", "level": "CRITICAL",
                  "category": alert.category, "title": alert.title, "description": alert.description,
                  "source_component": alert.source_component, "metadata": alert.metadata})
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run_cli("ingest", "--data", str(store), str(source))
    with annals.History(store) as h:
        key = lambda r: (r.timestamp, repr(r))
        got = sorted(h.iter_records(ns_query(DataType.METRICS)), key=key)
        assert got == sorted(metrics, key=key), f"seed {seed}"
        got = sorted(h.iter_records(ns_query(DataType.LOGS)), key=key)
        assert got == sorted(logs, key=key), f"seed {seed}"
        got = sorted(h.iter_records(ns_query(DataType.PERFORMANCE)), key=key)
        assert got == sorted(perf, key=key), f"seed {seed}"
        (back,) = h.query_data(ns_query(DataType.ALERTS)).rows
        assert back == alert


def test_datetimes_of_any_timezone_are_the_same_instant(history):
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    instant = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    paris = instant.astimezone(ZoneInfo("Europe/Paris"))
    plus5 = instant.astimezone(timezone(timedelta(hours=5)))
    history.store_metrics([MetricData(t, "m", f"f{i}", float(i)) for i, t in enumerate([instant, paris, plus5])])
    rows = history.query_data(ns_query(DataType.METRICS)).rows
    assert {r.timestamp for r in rows} == {1_782_907_200_123_456_000}
    rows = history.query_data(DataQuery(data_types=[DataType.METRICS])).rows
    assert {r.timestamp for r in rows} == {instant}
