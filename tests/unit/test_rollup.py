"""The hourly rollup's rules without AWS: closed hours, markers, the watermark, the planning window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from storeops.exceptions import ValidationFailed
from storeops.planning.models import PlanRequest, PlanWindow
from storeops.planning.rollup import (
    MARKER_PREFIX,
    hour_label,
    hour_query_parameters,
    hours_to_roll,
    is_closed,
    latest_closed_hour,
    marked_hours,
    marker_key,
    parse_hour,
    part_key,
    require_closed,
    require_raw_readings,
    rollup_watermark,
    watermark,
)

H = timedelta(hours=1)
T10 = datetime(2026, 11, 27, 10, tzinfo=UTC)


def test_keys_and_labels() -> None:
    assert hour_label(T10) == "2026-11-27T10"
    assert parse_hour("2026-11-27T10") == T10
    assert marker_key(T10) == "rollup-state/inventory_hourly/2026-11-27T10.json"
    assert part_key(T10, 0) == "rollup/inventory_hourly/dt=2026-11-27/hour=10/part-00000.parquet"
    for bad in ("2026-11-27", "2026-11-27T10:00", "2026-11-27 10", "27.11.2026T10"):
        with pytest.raises(ValueError, match="2026-11-27T10"):
            parse_hour(bad)


def test_an_hour_is_closed_ten_minutes_after_it_ends() -> None:
    assert not is_closed(T10, T10 + H + timedelta(minutes=9, seconds=59))
    assert is_closed(T10, T10 + H + timedelta(minutes=10))
    assert latest_closed_hour(T10 + H + timedelta(minutes=10)) == T10
    assert latest_closed_hour(T10 + H + timedelta(minutes=9)) == T10 - H
    with pytest.raises(ValidationFailed) as info:
        require_closed(T10, T10 + H + timedelta(minutes=5))
    line = info.value.one_line()
    assert "2026-11-27T10 is not closed" in line
    assert "2026-11-27T11:10:00.000Z" in line
    assert "\n" not in line
    require_closed(T10, T10 + H + timedelta(minutes=10))


def test_an_hour_whose_raw_readings_may_have_expired_is_not_rolled_again() -> None:
    """The lake deletes raw objects RawReadingsRetentionDays after they were written: rolling such an hour again
    would replace its rolled rows with fewer."""
    now = T10 + timedelta(minutes=30)
    oldest = T10 - timedelta(days=34)
    require_raw_readings([oldest, T10 - H], now, 35)  # still there: written during the hour or later
    with pytest.raises(ValidationFailed) as info:
        require_raw_readings([oldest - H, oldest], now, 35)
    line = info.value.one_line()
    assert "hour 2026-10-24T09 is older than the raw readings' retention (35 days)" in line
    assert "roll hours from 2026-10-24T10 on" in line
    assert "\n" not in line


def test_the_rollup_query_reads_exactly_its_raw_partition() -> None:
    midnight = datetime(2026, 11, 27, 0, tzinfo=UTC)
    assert hour_query_parameters(midnight) == {"dt": "2026-11-27", "hour": "00"}


def _cap(as_of: datetime) -> datetime:
    return PlanWindow.resolve(PlanRequest(as_of=as_of, lookback_hours=1), as_of).rollup_cap


@pytest.mark.parametrize(
    ("marked", "as_of", "expected"),
    [
        ([], T10 + 5 * H, T10),  # no rollup: every partition raw
        ([T10, T10 + H], T10 + 5 * H, T10 + 2 * H),  # contiguous from the first partition
        ([T10, T10 + 2 * H], T10 + 5 * H, T10 + H),  # a gap stops it
        ([T10 + H, T10 + 2 * H], T10 + 5 * H, T10),  # the first partition is missing
        ([T10 - H, T10], T10 + 5 * H, T10 + H),  # a marker before the window changes nothing
        # never past as_of's hour, and in its first 15 minutes not past the hour before (a reading observed
        # after as_of may sit in the previous partition, its object's first record arrived before the hour)
        ([T10 + i * H for i in range(8)], T10 + 3 * H + timedelta(minutes=20), T10 + 3 * H),
        ([T10 + i * H for i in range(8)], T10 + 3 * H + timedelta(minutes=14), T10 + 2 * H),
        ([T10 + i * H for i in range(8)], T10 + 3 * H, T10 + 2 * H),
    ],
)
def test_the_watermark_is_the_first_partition_without_a_marker(
    marked: list[datetime], as_of: datetime, expected: datetime
) -> None:
    assert watermark(marked, T10, _cap(as_of)) == expected


def test_catching_up_rolls_the_closed_hours_without_a_marker_oldest_first() -> None:
    now = T10 + H + timedelta(minutes=12)  # the hourly run at :12 may roll 10:00
    assert hours_to_roll([], now, 3) == [T10 - 2 * H, T10 - H, T10]
    assert hours_to_roll([T10 - 2 * H, T10 - H], now, 3) == [T10]  # the usual run: the hour that closed
    assert hours_to_roll([T10 - 2 * H, T10], now, 3) == [T10 - H]  # a gap is filled
    assert hours_to_roll([T10 - 2 * H, T10 - H, T10], now, 3) == []
    assert len(hours_to_roll([], now)) == 48


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake")
        yield client


class CountingS3:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def list_objects_v2(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.inner.list_objects_v2(**kwargs)


def test_one_listing_finds_the_markers_of_the_window(s3: Any) -> None:
    for hour in (T10 - H, T10, T10 + H, T10 + 2 * H, T10 + 4 * H):
        s3.put_object(Bucket="lake", Key=marker_key(hour), Body=b"{}")
    s3.put_object(Bucket="lake", Key=MARKER_PREFIX + "notes.txt", Body=b"")
    counting = CountingS3(s3)
    assert marked_hours(counting, "lake", T10) == {T10, T10 + H, T10 + 2 * H, T10 + 4 * H}
    assert rollup_watermark(counting, "lake", T10, T10 + 6 * H) == T10 + 3 * H
    assert rollup_watermark(counting, "lake", T10, T10 + 2 * H) == T10 + 2 * H  # never past the cap
    assert len(counting.calls) == 3  # one call each
    assert counting.calls[1]["StartAfter"] == "rollup-state/inventory_hourly/2026-11-27T10"
    assert counting.calls[1]["MaxKeys"] == 6  # the partitions that could be rolled
    assert rollup_watermark(counting, "lake", T10, T10) == T10  # nothing to list
    assert len(counting.calls) == 3


def test_markers_that_cannot_be_listed_mean_reading_raw() -> None:
    class Denied:
        def list_objects_v2(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")

    assert rollup_watermark(Denied(), "lake", T10, T10 + 5 * H) == T10


def test_the_window_starts_at_an_hour_and_reads_the_rollup_before_the_watermark() -> None:
    as_of = datetime(2026, 11, 27, 16, 45, 30, tzinfo=UTC)
    window = PlanWindow.resolve(PlanRequest(as_of=as_of, lookback_hours=24), as_of)
    assert window.window_start == datetime(2026, 11, 26, 16, tzinfo=UTC)  # 16:45:30 aligned down
    raw = window.query_parameters()
    assert raw["window_start"] == "2026-11-26T16:00:00.000Z"
    assert raw["window_start_hour"] == "2026-11-26T16"
    # the first partition is the hour before: a reading of 16:00:10 can sit in an object named 15:59:30
    assert (raw["raw_start_dt"], raw["raw_start_hour"]) == (raw["start_dt"], raw["start_hour"]) == ("2026-11-26", "15")
    # no rollup: an empty rollup range (its end before its start)
    assert (raw["rollup_start_dt"], raw["rollup_start_hour"]) == ("2026-11-26", "15")
    assert (raw["rollup_end_dt"], raw["rollup_end_hour"]) == ("2026-11-26", "14")
    assert window.rollup_partitions == []
    assert window.raw_partitions == window.partitions

    rolled = window.reading_rollup_until(datetime(2026, 11, 27, 16, tzinfo=UTC))
    params = rolled.query_parameters()
    assert params["window_start"] == "2026-11-26T16:00:00.000Z"  # the raw side keeps the exact bounds
    assert (params["raw_start_dt"], params["raw_start_hour"]) == ("2026-11-27", "16")  # only the open hour raw
    assert (params["end_dt"], params["end_hour"]) == ("2026-11-27", "17")
    assert (params["rollup_end_dt"], params["rollup_end_hour"]) == ("2026-11-27", "15")
    assert len(rolled.rollup_partitions) == 25
    assert rolled.raw_partitions == [("2026-11-27", h) for h in ("16", "17")]
    for bad in (datetime(2026, 11, 27, 17, tzinfo=UTC), datetime(2026, 11, 26, 14, tzinfo=UTC), as_of):
        with pytest.raises(ValueError, match="watermark"):
            window.reading_rollup_until(bad)
