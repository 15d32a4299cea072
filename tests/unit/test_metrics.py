"""The custom metrics the alarms watch: the heartbeat's rate limit, failures that never break a flow, the rollup lag."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from storeops.metrics import HEARTBEAT_EVERY_SECONDS, NAMESPACE, ROLLUP_LAG, TRUCK_HEARTBEAT, Heartbeat, put_metric
from storeops.planning.rollup import CATCH_UP_HOURS, latest_closed_hour, rollup_lag_hours


class RecordingCloudWatch:
    """A CloudWatch client that records puts, or fails each with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.puts: list[dict[str, Any]] = []

    def put_metric_data(self, **request: Any) -> dict[str, Any]:
        self.puts.append(request)
        if self.error is not None:
            raise self.error
        return {}


class Clients:
    def __init__(self, cloudwatch: RecordingCloudWatch) -> None:
        self.cloudwatch = cloudwatch

    def client(self, service: str) -> RecordingCloudWatch:
        assert service == "cloudwatch"
        return self.cloudwatch


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_metric_is_put_in_the_namespace_with_the_stack_as_its_dimension() -> None:
    cloudwatch = RecordingCloudWatch()
    assert put_metric(Clients(cloudwatch), "shop", ROLLUP_LAG, 2)  # type: ignore[arg-type]
    (request,) = cloudwatch.puts
    assert request["Namespace"] == NAMESPACE == "StoreOps"
    (datum,) = request["MetricData"]
    assert datum["MetricName"] == "RollupLagHours"
    assert datum["Dimensions"] == [{"Name": "Stack", "Value": "shop"}]
    assert datum["Value"] == 2.0


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutMetricData"),
        EndpointConnectionError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com"),
    ],
)
def test_a_metric_that_cannot_be_put_is_a_warning_and_the_flow_goes_on(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="storeops.metrics"):
        assert not put_metric(Clients(RecordingCloudWatch(error)), "shop", TRUCK_HEARTBEAT, 1)  # type: ignore[arg-type]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "TruckRunHeartbeat not put" in record.getMessage()
    assert ("AccessDenied" in record.getMessage()) or ("monitoring" in record.getMessage())


def test_the_heartbeat_goes_at_most_once_a_minute_however_often_windows_end() -> None:
    cloudwatch, ticks = RecordingCloudWatch(), Ticks()
    heartbeat = Heartbeat(Clients(cloudwatch), "shop", monotonic=ticks)  # type: ignore[arg-type]
    sent = []
    for _ in range(60):  # a window every 5 s for 5 minutes
        sent.append(heartbeat.beat())
        ticks.now += 5.0
    assert sent[0]  # at once: the alarm sees a new run within its first minute
    assert sum(sent) == heartbeat.sent == len(cloudwatch.puts) == 5
    assert [i * 5.0 for i, s in enumerate(sent) if s] == [0.0, 60.0, 120.0, 180.0, 240.0]
    assert HEARTBEAT_EVERY_SECONDS == 60.0


def test_slow_windows_still_beat_each_time_a_minute_has_passed() -> None:
    cloudwatch, ticks = RecordingCloudWatch(), Ticks()
    heartbeat = Heartbeat(Clients(cloudwatch), "shop", monotonic=ticks)  # type: ignore[arg-type]
    for gap in (0.0, 59.9, 0.2, 90.0, 30.0):
        ticks.now += gap
        heartbeat.beat()
    # beats at 0, 60.1 and 150.1; 59.9 is too early, 180.1 is 30 s after the last
    assert len(cloudwatch.puts) == 3


def test_an_unreachable_cloudwatch_is_asked_again_a_minute_later_not_every_window() -> None:
    error = ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "PutMetricData")
    cloudwatch, ticks = RecordingCloudWatch(error), Ticks()
    heartbeat = Heartbeat(Clients(cloudwatch), "shop", monotonic=ticks)  # type: ignore[arg-type]
    for _ in range(24):  # two minutes of 5-s windows
        assert not heartbeat.beat()
        ticks.now += 5.0
    assert len(cloudwatch.puts) == 2
    assert heartbeat.sent == 0


NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)  # 09:00 is the newest closed hour (closed at 10:10)
HOUR = timedelta(hours=1)


def test_the_rollup_lag_is_zero_when_the_newest_closed_hour_is_rolled() -> None:
    newest = latest_closed_hour(NOW)
    assert newest == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert rollup_lag_hours([newest - HOUR, newest], NOW) == 0


def test_the_rollup_lag_counts_the_hours_since_the_newest_rolled_one() -> None:
    newest = latest_closed_hour(NOW)
    assert rollup_lag_hours([newest - 5 * HOUR, newest - 4 * HOUR], NOW) == 4
    # an open hour's marker (a backfill cannot write one, but a clock skew could) does not hide the lag
    assert rollup_lag_hours([newest - 4 * HOUR, newest + HOUR], NOW) == 4


def test_nothing_rolled_in_the_catch_up_window_is_the_largest_lag() -> None:
    newest = latest_closed_hour(NOW)
    assert rollup_lag_hours([], NOW) == CATCH_UP_HOURS
    assert rollup_lag_hours([newest - CATCH_UP_HOURS * HOUR], NOW) == CATCH_UP_HOURS
