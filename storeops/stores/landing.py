"""Have a run's readings landed? Count them in Athena until they are all queryable.

Firehose buffers records (60 s by default) before it writes an object, so readings sent a
moment ago are not yet in the lake: a plan right after sending would not see them. A run that
must be visible (the demo, the README's AWS path, the post-deploy check) waits here, polling
``sql/landed_readings.sql`` with a deadline that covers the buffer interval. On the emulator,
which delivers at once, the first poll finds them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storeops.athena import QueryTarget, run_query
from storeops.aws import AwsClients
from storeops.clock import format_timestamp, hour_floor

PARTITION_SLACK = timedelta(hours=1)  # clock skew between the sender and Firehose, and late objects
DELIVERY_MARGIN_SECONDS = 180.0  # beyond the buffer interval: Firehose's own delays, then the query
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 10.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Landing:
    """What Athena counted for readings taken at ``observed_at``: rows, distinct readings, and when."""

    observed_at: str
    expected: int
    readings: int
    distinct_readings: int
    polls: int
    seconds: float
    bytes_scanned: int

    @property
    def complete(self) -> bool:
        return self.distinct_readings >= self.expected


def landing_deadline(buffer_seconds: float) -> float:
    """Seconds to wait for readings sent now: the delivery stream's buffer interval plus a margin."""
    return buffer_seconds + DELIVERY_MARGIN_SECONDS


def count_landed(
    clients: AwsClients, target: QueryTarget, observed_at: datetime, within: timedelta, store_id: str = ""
) -> tuple[int, int, int]:
    """(rows, distinct readings, bytes scanned) of readings taken at ``observed_at`` (of ``store_id``,
    or of every store) in the partitions Firehose can have written them to within ``within``."""
    first = hour_floor(observed_at - PARTITION_SLACK)
    last = hour_floor(observed_at + within + PARTITION_SLACK)
    run = run_query(
        clients,
        target,
        "landed_readings",
        {
            "observed_at": format_timestamp(observed_at),
            "store_id": store_id,
            "start_dt": f"{first:%Y-%m-%d}",
            "start_hour": f"{first:%H}",
            "end_dt": f"{last:%Y-%m-%d}",
            "end_hour": f"{last:%H}",
        },
    )
    row = run.frame.iloc[0] if len(run.frame) else None
    readings = int(row["readings"]) if row is not None else 0
    distinct = int(row["distinct_readings"]) if row is not None else 0
    return readings, distinct, run.bytes_scanned


def wait_until_landed(
    clients: AwsClients,
    target: QueryTarget,
    observed_at: datetime,
    expected: int,
    deadline_seconds: float,
    store_id: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> Landing:
    """Poll until Athena counts ``expected`` distinct readings taken at ``observed_at``, or the deadline.

    Returns the last count either way; ``Landing.complete`` says which. Polls every 0.5 s at
    first, backing off to 10 s.
    """
    started = time.monotonic()
    within = timedelta(seconds=deadline_seconds)
    polls, delay, scanned = 0, FIRST_POLL_SECONDS, 0
    while True:
        readings, distinct, nbytes = count_landed(clients, target, observed_at, within, store_id)
        polls += 1
        scanned += nbytes
        elapsed = time.monotonic() - started
        if distinct >= expected or elapsed + delay > deadline_seconds:
            landing = Landing(
                format_timestamp(observed_at), expected, readings, distinct, polls, round(elapsed, 2), scanned
            )
            logger.info(
                "%d of %d readings taken at %s queryable after %.1f s (%d polls, %d rows)",
                distinct,
                expected,
                landing.observed_at,
                elapsed,
                polls,
                readings,
            )
            return landing
        logger.info("%d of %d readings queryable after %.1f s: next poll in %.1f s", distinct, expected, elapsed, delay)
        sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)
