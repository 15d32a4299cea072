"""Waiting for readings to become queryable: polls back off, and the deadline holds (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storeops.athena import QueryTarget
from storeops.stores import landing
from storeops.stores.landing import landing_deadline, wait_until_landed

TARGET = QueryTarget("db", "wg", {"inventory_table": "inventory_readings"})
AT = datetime(2026, 11, 27, 10, 59, 59, tzinfo=UTC)


class Firehose:
    """Counts as Athena would while Firehose buffers: nothing until ``lands_after`` seconds of waiting."""

    def __init__(self, lands_after: float, readings: int) -> None:
        self.lands_after = lands_after
        self.readings = readings
        self.waited = 0.0
        self.windows: list[timedelta] = []

    def count(self, clients: Any, target: QueryTarget, at: datetime, within: timedelta, store_id: str = "") -> Any:
        self.windows.append(within)
        landed = self.readings if self.waited >= self.lands_after else 0
        return landed, landed, 1000

    def sleep(self, seconds: float) -> None:
        self.waited += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Firehose:
    firehose = Firehose(lands_after=6.0, readings=40)
    monkeypatch.setattr(landing, "count_landed", firehose.count)
    monkeypatch.setattr(landing.time, "monotonic", lambda: firehose.waited)
    return firehose


def test_the_wait_polls_with_backoff_until_everything_landed(clock: Firehose) -> None:
    result = wait_until_landed(None, TARGET, AT, 40, deadline_seconds=240, sleep=clock.sleep)  # type: ignore[arg-type]
    assert result.complete
    assert result.polls == 5  # after 0, 0.5, 1.5, 3.5, 7.5 s of waiting
    assert result.seconds == pytest.approx(7.5)
    assert result.bytes_scanned == 5000


def test_the_wait_gives_up_at_its_deadline_and_says_how_many_landed(clock: Firehose) -> None:
    clock.lands_after = 10_000
    result = wait_until_landed(None, TARGET, AT, 40, deadline_seconds=60, sleep=clock.sleep)  # type: ignore[arg-type]
    assert not result.complete
    assert result.distinct_readings == 0
    assert clock.waited <= 60


def test_the_deadline_covers_the_buffer_interval() -> None:
    assert landing_deadline(60) >= 60 + 120
    assert landing_deadline(900) >= 900 + 120
