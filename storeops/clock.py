"""Time: the one clock each run is given, and the timestamp format of the lake and the queue.

Every component takes "now" from the clock its entry point gives it: the wall clock in live
runs (the deployments, the CLIs), a ``VirtualClock`` that a scenario runner advances. Nothing
below an entry point reads the system time for business purposes (trucks' departures and
ETAs, readings, planning windows, deliveries); infrastructure timing (claim leases, message
visibility, backoff) always uses real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class WallClock:
    """The system's time: live runs."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A time that moves only when told: scenarios run days of stores, plans and trucks in minutes."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta <= timedelta(0):
            raise ValueError("a virtual clock only moves forward")
        self._now += delta
        return self._now


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-11-26T23:00:00.123Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of an ISO-8601 text (``Z`` or an offset); ValueError otherwise."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


def hour_floor(moment: datetime) -> datetime:
    """The start of ``moment``'s hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
