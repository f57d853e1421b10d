"""Arrow and pandas results without copies, trend analysis, and the lifecycle operations."""

import math
from datetime import datetime, timedelta, timezone

import pytest

import annals
from annals import DataQuery, DataType, LogEntry, LogLevel, MetricData, PerformanceData, TrendQuery

pa = pytest.importorskip("pyarrow")

T = datetime(2026, 10, 1, tzinfo=timezone.utc)


def test_to_arrow_imports_the_columns_without_copying(history):
    history.store_metrics([MetricData(T + timedelta(seconds=i), "cpu", "usage", i / 4, unit="percent", tags={"host": f"h{i % 3}"})
                           for i in range(1000)])
    history.store_performance_data([PerformanceData(T, "buffer", "flush", duration_ms=2.5, metadata={"bytes": 10, "ok": True})])
    response = history.query_data(DataQuery(data_types=[DataType.METRICS], limit=1000, order_desc=False))
    table = response.to_arrow()
    assert table.num_rows == 1000
    assert table.column_names == ["timestamp", "metric_type", "metric_name", "value", "unit", "tags.host"]
    assert str(table.schema.field("timestamp").type) == "timestamp[ns, tz=UTC]"
    assert table.column("value").to_pylist() == [r.value for r in response.rows]
    assert table.column("tags.host").to_pylist() == [r.tags["host"] for r in response.rows]
    # The value column is the buffer annals built: same address, no copy.
    (kind, batch), = response._page.batches()
    imported = pa.record_batch(batch)
    assert imported.column(3).buffers()[1].address == batch.buffer_address(3)
    assert imported.column(0).buffers()[1].address == batch.buffer_address(0)
    frame = response.to_pandas()
    assert list(frame["value"]) == [i / 4 for i in range(1000)]
    assert frame["timestamp"].iloc[1] == T + timedelta(seconds=1)

    both = history.query_data(DataQuery(limit=1000, order_desc=False))
    with pytest.raises(ValueError, match="several record kinds"):
        both.to_arrow()
    perf = both.to_arrow(kind="performance")
    assert perf.column("metadata.bytes").to_pylist() == [10] and perf.column("metadata.ok").to_pylist() == [True]
    assert perf.column("throughput").null_count == 1


def _cells(table_or_rows):
    """Rows as dicts without their nulls: a table cut short lacks the extra columns only
    later rows have."""
    rows = table_or_rows if isinstance(table_or_rows, list) else table_or_rows.to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _pages_as_rows(history, query, kind):
    """Every record of ``kind`` through query_data pages, as Arrow rows without nulls."""
    rows = []
    while True:
        response = history.query_data(query)
        if response.rows:
            rows.extend(_cells(response.to_arrow(kind=kind)))
        if response.next_cursor is None:
            return rows
        query = DataQuery(**{**query.__dict__, "cursor": response.next_cursor, "offset": 0})


def test_query_table_equals_the_pages_of_query_data(history, seed):
    import random

    rng = random.Random(seed)
    metrics = []
    for i in range(3000):
        unit = "percent" if i % 5 else None
        metrics.append(MetricData(T + timedelta(seconds=i // 7), f"type{i % 3}", f"name{i % 4}", rng.random() * 100, unit=unit,
                                  tags={"host": f"h{rng.randrange(6)}", **({"rack": "r1"} if i % 11 == 0 else {})}))
    history.store_metrics(metrics)
    history.store_performance_data([
        PerformanceData(T + timedelta(seconds=i), f"c{i % 3}", "flush", duration_ms=i / 3 if i % 4 else None,
                        throughput=float(i), error_count=i % 2, metadata={"bytes": i, **({"note": "x"} if i % 3 == 0 else {})})
        for i in range(700)
    ])
    history.store_logs([
        LogEntry(T + timedelta(seconds=i), [LogLevel.INFO, LogLevel.ERROR][i % 2], f"app.{i % 4}", f"message {i}",
                 module="m" if i % 2 else None, line_number=i if i % 3 else None, extra_data={"user": f"u{i % 5}"} if i % 2 else {})
        for i in range(1500)
    ])
    history.flush()
    history.store_logs([LogEntry(T + timedelta(hours=1, seconds=i), LogLevel.WARNING, "late", f"head {i}") for i in range(50)])
    for kind in (DataType.METRICS, DataType.PERFORMANCE, DataType.LOGS):
        for order_desc in (True, False):
            query = DataQuery(data_types=[kind], limit=1000, order_desc=order_desc)
            expected = _pages_as_rows(history, query, kind)
            table = history.query_table(query)
            assert table.num_rows == len(expected), (kind, order_desc)
            assert _cells(table) == expected, (kind, order_desc)
            assert _cells(history.query_table(query, max_rows=1234)) == expected[:1234]
            skipped = DataQuery(data_types=[kind], limit=1000, order_desc=order_desc, offset=10)
            assert _cells(history.query_table(skipped, max_rows=20)) == _pages_as_rows(history, skipped, kind)[:20]
    errors_only = DataQuery(data_types=[DataType.LOGS], levels=[LogLevel.ERROR], limit=1000)
    assert _cells(history.query_table(errors_only)) == _pages_as_rows(history, errors_only, DataType.LOGS)
    searched = DataQuery(data_types=[DataType.LOGS], search_text="head", limit=1000)
    assert history.query_table(searched).num_rows == 50
    with pytest.raises(ValueError, match="several record kinds"):
        history.query_table(DataQuery())
    assert history.query_table(DataQuery(), kind="performance").num_rows == 700
    assert history.query_table(DataQuery(), kind="metrics", max_rows=0).num_rows == 0


def test_missing_values_are_nulls(history):
    history.store_logs([LogEntry(T, LogLevel.INFO, "a", "one", line_number=5), LogEntry(T + timedelta(1), LogLevel.INFO, "a", "two")])
    table = history.query_data(DataQuery(data_types=[DataType.LOGS], order_desc=False)).to_arrow()
    assert table.column("line_number").to_pylist() == [5, None]
    assert table.column("module").to_pylist() == [None, None]  # a field of LogEntry: always a column


def test_get_trends_finds_the_daily_period(history):
    points = [MetricData(T + timedelta(minutes=30 * i), "load", "value", 10 + 5 * math.sin(2 * math.pi * i / 48), tags={"host": "a"})
              for i in range(48 * 14)]
    history.store_metrics(points)
    analysis = history.get_trends(TrendQuery(measurement="load", field="value", parts=["patterns", "forecast"], horizon="1d"))
    (series,) = analysis.series
    periods = [p["samples"] for p in series["patterns"]["periods"]]
    assert 48 in periods, series["patterns"]["periods"]
    forecast = series["forecast"]["points"]
    assert len(forecast) == 48
    assert isinstance(forecast[0]["time"], datetime)
    with pytest.raises(annals.InvalidInputError, match="unknown trend part|parts"):
        history.get_trends(TrendQuery(measurement="load", parts=["astrology"]))


def test_archive_restore_cleanup_optimize_and_stats(store_dir):
    with annals.History(store_dir, retention=annals.RetentionPolicy(background=False)) as history:
        history.store_metrics([MetricData(T + timedelta(days=d), "cpu", "usage", float(d)) for d in range(60)])
        stats = history.storage_stats()
        assert (stats["rows"], stats["points"]) == (60, 60)
        report = history.archive_old_data("2026-11")
        assert report["months"] == ["2026-10"]
        left = history.query_data(DataQuery(limit=1000)).rows
        assert all(r.timestamp >= datetime(2026, 11, 1, tzinfo=timezone.utc) for r in left)
        history.restore_archive(report["path"])
        assert len(history.query_data(DataQuery(limit=1000)).rows) == 60
        plan = history.cleanup_data(dry_run=True)
        assert isinstance(plan, dict)
        assert len(history.query_data(DataQuery(limit=1000)).rows) == 60
        assert isinstance(history.optimize(), dict)
        with pytest.raises(annals.RefusedError, match="nothing to archive"):
            history.archive_old_data("2000-01")
