"""The store releases the GIL: other Python threads and the event loop run while it works."""

import asyncio
import threading
import time
from datetime import datetime, timezone

import annals
from annals import AsyncHistory, DataQuery, MetricData

T = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()) * 10**9


def batch(n: int, offset: int = 0):
    return [MetricData(T + offset + i, "cpu", "usage", float(i), tags={"host": f"h{i % 50}"}) for i in range(n)]


def test_other_threads_run_while_the_store_writes(history):
    records = batch(200_000)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.05)
        history.store_metrics(records)  # conversion holds the GIL; the write itself releases it
        before = counter[0]
        history.flush()  # pure Rust: encoding segments and fsyncs with the GIL released
        during = counter[0] - before
    finally:
        stop.set()
        spinner.join()
    assert during > 0, "no Python bytecode ran in another thread during flush()"


def test_async_calls_overlap_and_the_loop_stays_responsive(store_dir):
    async def main():
        async with AsyncHistory(store_dir) as history:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.001)
                    ticks += 1

            tick = asyncio.create_task(ticker())
            written = await asyncio.gather(*(history.store_metrics(batch(20_000, k * 10**12)) for k in range(4)))
            await history.flush()
            tick.cancel()
            assert written == [20_000] * 4
            page = await history.query_data(DataQuery(limit=10))
            assert page.total_count == 80_000
            assert ticks > 0
        assert history.history.closed

    asyncio.run(main())


def test_async_errors_are_the_same_exceptions(store_dir):
    async def main():
        history = AsyncHistory(store_dir)
        try:
            await history.store_metrics([MetricData(datetime(2026, 1, 1), "cpu", "u", 1.0)])
        except annals.InvalidInputError as e:
            assert e.field == "metrics[0].timestamp"
        else:
            raise AssertionError("a naive datetime was accepted")
        await history.close()

    asyncio.run(main())
