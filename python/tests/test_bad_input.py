"""Bad input from Python raises the right exception, carries the Rust error's data and
stores nothing; no input crashes the interpreter."""

import math
from datetime import datetime, timezone

import pytest

import annals
from annals import DataQuery, LogEntry, LogLevel, MetricData

T = datetime(2026, 11, 1, tzinfo=timezone.utc)


def stored_rows(history) -> int:
    return len(history.query_data(DataQuery(limit=1000)).rows)


def metric(**changes):
    values = dict(timestamp=T, metric_type="cpu", metric_name="usage", value=1.0, tags={"host": "a"})
    values.update(changes)
    return MetricData(**values)


@pytest.mark.parametrize(
    "bad, field, expected",
    [
        (metric(value="high"), "metrics[1].value", "expected a number, not str"),
        (metric(value=True), "metrics[1].value", "expected a number, not bool"),
        (metric(metric_type=7), "metrics[1].metric_type", "expected str, not int"),
        (metric(tags={"host": math.nan}), 'metrics[1].tags["host"]', "expected str, not float"),
        (metric(tags=["host"]), "metrics[1].tags", "expected a dict of str to str, not list"),
        (metric(timestamp="2026-11-01"), "metrics[1].timestamp", "expected an aware datetime or integer nanoseconds, not str"),
        (metric(timestamp=True), "metrics[1].timestamp", "expected an aware datetime or integer nanoseconds, not bool"),
    ],
)
def test_wrong_types_are_refused_by_name_and_nothing_is_stored(history, bad, field, expected):
    with pytest.raises(annals.InvalidTypeError) as caught:
        history.store_metrics([metric(), bad])
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, annals.InvalidInputError)
    assert caught.value.field == field
    assert str(caught.value) == f"{field}: {expected}"
    assert stored_rows(history) == 0


def test_naive_datetimes_are_refused(history):
    with pytest.raises(annals.InvalidInputError) as caught:
        history.store_metrics([metric(timestamp=datetime(2026, 11, 1))])
    assert not isinstance(caught.value, TypeError)
    assert caught.value.field == "metrics[0].timestamp"
    assert "naive datetime is refused" in caught.value.reason
    with pytest.raises(annals.InvalidInputError, match="naive"):
        history.query_data(DataQuery(start_time=datetime(2026, 1, 1)))
    assert stored_rows(history) == 0


def test_out_of_range_times_and_integers_are_refused(history):
    with pytest.raises(annals.InvalidInputError, match="outside the 64-bit range"):
        history.store_metrics([metric(timestamp=2**70)])
    with pytest.raises(annals.InvalidInputError, match=r"outside the range of nanosecond timestamps"):
        history.store_metrics([metric(timestamp=datetime(9999, 1, 1, tzinfo=timezone.utc))])
    entry = LogEntry(timestamp=T, level="INFO", logger_name="x", message="m", line_number=2**64)
    with pytest.raises(annals.InvalidInputError, match=r"logs\[0\]\.line_number: outside the 64-bit integer range"):
        history.store_logs([entry])
    assert stored_rows(history) == 0


def test_a_ten_megabyte_message_exceeds_the_string_limit(history):
    entry = LogEntry(timestamp=T, level=LogLevel.INFO, logger_name="big", message="x" * (10 << 20))
    with pytest.raises(annals.LimitExceededError) as caught:
        history.store_logs([LogEntry(timestamp=T, level="INFO", logger_name="ok", message="fine"), entry])
    e = caught.value
    assert (e.limit, e.value, e.max) == ("max_string_value_bytes", 10 << 20, 1 << 20)
    assert stored_rows(history) == 0


def test_unknown_levels_and_enums_name_the_choices(history):
    with pytest.raises(annals.InvalidInputError, match=r"logs\[0\]\.level: unknown level \"LOUD\""):
        history.store_logs([LogEntry(timestamp=T, level="LOUD", logger_name="x", message="m")])
    with pytest.raises(annals.InvalidInputError, match=r"unknown data type \"bogus\""):
        history.query_data(DataQuery(data_types=["bogus"]))
    with pytest.raises(annals.InvalidInputError, match=r"limit 0 is outside 1..=1000"):
        history.query_data(DataQuery(limit=0))


def test_a_closed_store_raises_closed_error(store_dir):
    history = annals.History(store_dir)
    history.close()
    history.close()  # harmless
    with pytest.raises(annals.ClosedError, match="the store is closed"):
        history.store_metrics([metric()])
    with pytest.raises(annals.ClosedError):
        history.query_data()


def test_a_second_handle_is_refused_with_the_lock_path(store_dir):
    with annals.History(store_dir):
        with pytest.raises(annals.LockedError) as caught:
            annals.History(store_dir)
        assert caught.value.path.startswith(str(store_dir))


def test_a_missing_store_with_create_false(tmp_path):
    with pytest.raises(annals.StoreNotFoundError) as caught:
        annals.History(tmp_path / "nothing", create=False)
    assert caught.value.path == str(tmp_path / "nothing")


def test_bad_options_are_refused(store_dir):
    with pytest.raises(annals.InvalidInputError, match=r"durability: \"fast\" is not one of"):
        annals.History(store_dir, durability="fast")
    with pytest.raises(annals.InvalidInputError, match="retention"):
        annals.History(store_dir, retention=annals.RetentionPolicy(detail_days=-1))


def test_errors_pickle_with_their_data():
    import pickle

    e = annals.LimitExceededError("too long", limit="max_name_bytes", value=300, max=255, context=None)
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.limit, back.value, back.max, str(back)) == (annals.LimitExceededError, "max_name_bytes", 300, 255, "too long")


def test_a_damaged_segment_raises_corruption_error_with_file_and_offset(store_dir):
    with annals.History(store_dir) as history:
        history.store_metrics([metric(timestamp=T.replace(second=i % 60, minute=i // 60), value=float(i)) for i in range(3000)])
    (segment,) = sorted(store_dir.glob("data/*/*.seg"))
    data = bytearray(segment.read_bytes())
    middle = len(data) // 3
    data[middle] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(annals.CorruptionError) as caught:
        with annals.History(store_dir) as history:
            history.query_data(DataQuery(limit=1000))
    assert caught.value.file == str(segment)
    assert 0 <= caught.value.offset < len(data)
    assert caught.value.kind
