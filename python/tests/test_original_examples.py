"""The original design's usage examples, with only the import changed to annals.

The original programs used ``HistoryDataManager`` (awaitable methods: store metrics and
logs, query with pagination, alerts acknowledged and resolved) and ``DataStorageManager``
(store a commit, store it again as a duplicate, get it by hash, list recent commits). The
examples below follow those flows and names.
"""

import asyncio
from datetime import datetime, timedelta, timezone

from annals import (
    AlertEvent,
    AsyncHistory as HistoryDataManager,
    CommitData,
    DataQuery,
    DataStorageManager,
    DataType,
    DiffData,
    LogEntry,
    LogLevel,
    MetricData,
    StorageStatus,
)


def test_commit_store_example(tmp_path):
    manager = DataStorageManager(str(tmp_path / "commits"))
    commit = CommitData(
        commit_hash="a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        message="Fix memory leak in the buffer pool",
        author="Jane Developer",
        author_email="jane@example.com",
        timestamp=datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc),
        repository="acme/sensor-hub",
        branch="main",
        pusher="jane",
    )
    diffs = [
        DiffData(file_path="src/buffer.py", additions=12, deletions=4, changes="free on close",
                 diff_content=b"@@ -10,4 +10,12 @@\n-    pass\n+    self.pool.release()\n"),
        DiffData(file_path="tests/test_buffer.py", additions=30, deletions=0),
    ]

    result = manager.store_commit(commit, diffs)
    assert result.success
    assert result.status == StorageStatus.SUCCESS
    assert result.commit_id is not None
    assert result.metadata["total_additions"] == 42
    assert result.metadata["files"] == 2

    duplicate = manager.store_commit(commit, diffs)
    assert not duplicate.success
    assert duplicate.status == StorageStatus.DUPLICATE
    assert duplicate.commit_id == result.commit_id

    stored = manager.get_commit_by_hash(commit.commit_hash)
    assert stored is not None
    assert stored.message == "Fix memory leak in the buffer pool"
    assert stored.author_email == "jane@example.com"
    assert [f.file_path for f in stored.files] == ["src/buffer.py", "tests/test_buffer.py"]
    assert manager.get_diff(commit.commit_hash, "src/buffer.py") == diffs[0].diff_content

    for i in range(5):
        manager.store_commit(
            CommitData(
                commit_hash=f"{i + 1:040x}",
                message=f"Change {i}",
                author="Jane Developer",
                timestamp=datetime(2026, 11, 21, 10, i, tzinfo=timezone.utc),
                repository="acme/sensor-hub",
            ),
            [DiffData(file_path="README.md", additions=1, deletions=1)],
        )
    recent = manager.get_recent_commits("acme/sensor-hub", limit=3)
    assert [c.message for c in recent] == ["Change 4", "Change 3", "Change 2"]
    manager.close()


def test_history_manager_example(tmp_path):
    async def main():
        manager = HistoryDataManager(str(tmp_path / "history"))
        now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

        metrics = [
            MetricData(timestamp=now - timedelta(minutes=i), metric_type="cpu", metric_name="usage_percent",
                       value=40.0 + i, unit="percent", tags={"host": "node-1"})
            for i in range(250)
        ]
        assert await manager.store_metrics(metrics) == 250

        logs = [
            LogEntry(timestamp=now - timedelta(seconds=i), level=LogLevel.ERROR if i % 10 == 0 else LogLevel.INFO,
                     logger_name="sensor.reader", message=f"read {i} samples", module="reader",
                     function_name="poll", line_number=120, extra_data={"batch": i})
            for i in range(100)
        ]
        await manager.store_logs(logs)

        # Pagination: 100 rows a page, newest first, until no cursor is left.
        query = DataQuery(data_types=[DataType.METRICS], start_time=now - timedelta(days=1), limit=100)
        seen = []
        while True:
            page = await manager.query_data(query)
            seen.extend(page.rows)
            if not page.has_more:
                break
            query.cursor = page.next_cursor
        assert len(seen) == 250
        assert [m.value for m in seen] == [40.0 + i for i in range(250)]

        errors = await manager.query_data(DataQuery(data_types=[DataType.LOGS], levels=[LogLevel.ERROR]))
        assert errors.total_count == 10
        assert all(r.level == LogLevel.ERROR for r in errors.rows)

        found = await manager.query_data(DataQuery(data_types=[DataType.LOGS], search_text="\"read 50 samples\""))
        assert [r.extra_data["batch"] for r in found.rows] == [50]

        await manager.store_alert(AlertEvent(timestamp=now, alert_id="cpu-high-node-1", level=LogLevel.WARNING,
                                             category="PERFORMANCE", title="CPU above 90%",
                                             description="node-1 at 93% for 5 minutes", source_component="monitor"))
        assert await manager.acknowledge_alert("cpu-high-node-1", now + timedelta(minutes=1))
        assert await manager.resolve_alert("cpu-high-node-1", now + timedelta(minutes=5))
        alert = await manager.get_alert("cpu-high-node-1")
        assert alert.state.value == "resolved"
        assert alert.acknowledged_at == now + timedelta(minutes=1)
        assert alert.resolved_at == now + timedelta(minutes=5)
        assert not await manager.acknowledge_alert("no-such-alert")

        stats = await manager.storage_stats()
        assert stats["series"] >= 2
        await manager.close()

    asyncio.run(main())
