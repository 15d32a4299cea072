"""Tasks of the ``rollup`` flow. Each wraps plain functions of ``storeops.planning.rollup``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from storeops.aws import AwsClients, describe_error
from storeops.clock import WallClock
from storeops.exceptions import ValidationFailed
from storeops.metrics import ROLLUP_LAG, put_metric
from storeops.planning.models import PlanningTargets
from storeops.planning.rollup import (
    CATCH_UP_HOURS,
    HOUR,
    RollupResult,
    hour_label,
    hours_to_roll,
    latest_closed_hour,
    marked_hours,
    roll_up_hour,
    rollup_lag_hours,
)
from tasks.artifacts import figure, utc_stamp
from tasks.policy import AWS_CALL_RETRIES, retry_when

# retry AWS trouble (every step is idempotent), not an hour that is not closed
_retry_unless_invalid = retry_when(lambda exc: not isinstance(exc, ValidationFailed))


@task(name="find-hours-to-roll", cache_policy=NO_CACHE)
def find_hours_to_roll(clients: AwsClients, bucket: str, now: datetime, max_hours: int) -> list[datetime]:
    """The closed hours among the last ``max_hours`` without a completion marker, oldest first (one listing)."""
    last = latest_closed_hour(now)
    first = last - (max_hours - 1) * HOUR
    marked = marked_hours(clients.client("s3"), bucket, first)
    hours = hours_to_roll(marked, now, max_hours)
    get_run_logger().info(
        "%d of the last %d closed hours (%s to %s) have a marker; %d to roll%s",
        max_hours - len(hours),
        max_hours,
        hour_label(first),
        hour_label(last),
        len(hours),
        f": {hour_label(hours[0])} to {hour_label(hours[-1])}" if hours else "",
    )
    return hours


@task(
    name="roll-up-hour",
    cache_policy=NO_CACHE,
    retry_condition_fn=_retry_unless_invalid,
    **AWS_CALL_RETRIES,
)
def roll_hour(clients: AwsClients, targets: PlanningTargets, hour: datetime, now: datetime) -> RollupResult:
    """Roll one closed hour up (idempotent: a retry or a re-roll writes the same files and marker)."""
    result = roll_up_hour(clients, targets, hour, now)
    get_run_logger().info(
        "hour %s: %d rows (store-products) in %d Parquet files, %s bytes written from %s bytes scanned "
        "(query %s); %d objects of an earlier roll replaced; %.2f s",
        result.hour,
        result.rows,
        len(result.keys),
        f"{result.bytes_written:,}",
        f"{result.bytes_scanned:,}",
        result.query_execution_id,
        result.replaced,
        result.seconds,
    )
    return result


@task(name="publish-rollup", cache_policy=NO_CACHE)
def rollup_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hours rolled (``RollupResult.as_dict()`` with ``files``): the ``rollup-hours`` artifact's rows and the
    CLI's."""
    columns = ("hour", "rows", "files", "bytes_scanned", "bytes_written", "seconds")
    return [{c: r[c] if c == "hour" else figure(r[c]) for c in columns} for r in results]


def publish_rollup(results: list[RollupResult], mode: str) -> None:
    """A table of the hours rolled and a markdown summary in the Prefect UI."""
    columns = ("hour", "rows", "files", "bytes_scanned", "bytes_written", "seconds")
    rows = rollup_rows([r.as_dict() | {"files": len(r.keys)} for r in results])
    span = f"{results[0].hour} to {results[-1].hour}" if results else "nothing to roll"
    create_table_artifact(
        key="rollup-hours",
        table=rows or [{c: None for c in columns}],
        description=f"Hours rolled up ({mode}): {span}; updated {utc_stamp()}",
    )
    scanned = sum(r.bytes_scanned for r in results)
    written = sum(r.bytes_written for r in results)
    ratio = f"{scanned / written:,.1f}x smaller" if written else "no rows"
    create_markdown_artifact(
        key="rollup-summary",
        markdown=(
            f"## Rollup ({mode})\n\n"
            f"| | |\n|---|---|\n"
            f"| hours rolled | {len(results):,} ({span}) |\n"
            f"| rows (store-product-hours) | {sum(r.rows for r in results):,} |\n"
            f"| bytes scanned (raw readings) | {scanned:,} |\n"
            f"| bytes written (Parquet) | {written:,} ({ratio}) |\n"
            f"| seconds | {sum(r.seconds for r in results):.2f} |\n\n"
            "Planning reads these hours from the rollup; a reading that lands for an hour after it was "
            "rolled is seen once the hour is rolled again (`python -m flows.rollup --backfill`).\n"
        ),
        description=f"rollup ({mode}): {len(results):,} hours, {sum(r.rows for r in results):,} rows",
    )


@task(name="report-rollup-lag", cache_policy=NO_CACHE)
def report_rollup_lag(clients: AwsClients, bucket: str, stack_name: str) -> int | None:
    """After a run: the hours from the newest rolled hour to the newest closed hour (one listing of the markers),
    put as ``RollupLagHours`` for the stack's alarm. Never fails the run: None (with a warning) when the markers
    cannot be listed."""
    now = WallClock().now()
    first = latest_closed_hour(now) - (CATCH_UP_HOURS - 1) * HOUR
    try:
        marked = marked_hours(clients.client("s3"), bucket, first)
    except (ClientError, BotoCoreError) as exc:
        get_run_logger().warning("rollup lag not measured (%s): no RollupLagHours this run", describe_error(exc))
        return None
    lag = rollup_lag_hours(marked, now)
    put_metric(clients, stack_name, ROLLUP_LAG, lag)
    get_run_logger().info("rollup lag: %d hours behind the newest closed hour", lag)
    return lag
