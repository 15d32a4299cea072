"""Tasks of the ``forecast`` flow. Each wraps plain functions of ``storeops.planning.forecast``."""

from __future__ import annotations

from datetime import date, datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from storeops.aws import AwsClients
from storeops.planning.forecast import (
    DAILY_MARKERS,
    DAY,
    TableWrite,
    compute_forecast,
    day_is_complete,
    day_label,
    days_to_roll,
    marked_days,
    roll_up_days,
    rolled_hours,
)
from storeops.planning.models import PlanningTargets
from tasks.artifacts import figure, utc_stamp
from tasks.policy import AWS_CALL_RETRIES


@task(name="find-days-to-roll", cache_policy=NO_CACHE)
def find_days_to_roll(clients: AwsClients, bucket: str, day: date, history_days: int) -> list[tuple[date, date]]:
    """The runs of consecutive days among the ``history_days`` before ``day`` without a daily marker whose
    hours the hourly rollup has completed (a day it has not is left for a later run, and said)."""
    first = day - history_days * DAY
    s3 = clients.client("s3")
    marked = marked_days(s3, bucket, DAILY_MARKERS, first - DAY)
    missing = [first + n * DAY for n in range(history_days) if first + n * DAY not in marked]
    hours = rolled_hours(s3, bucket, missing[0], missing[-1]) if missing else set()
    complete = {d for d in missing if day_is_complete(d, hours)}
    ranges = days_to_roll(marked, first, day - DAY, complete)
    logger = get_run_logger()
    if len(complete) < len(missing):
        incomplete = [day_label(d) for d in missing if d not in complete]
        logger.warning(
            "%d days are not rolled up because the hourly rollup lacks some of their hours (%s%s): the forecast "
            "learns without them; run `python -m flows.rollup --backfill` for those hours",
            len(incomplete),
            ", ".join(incomplete[:5]),
            " ..." if len(incomplete) > 5 else "",
        )
    logger.info(
        "%d of the %d days %s to %s are rolled up; %d ranges to roll: %s",
        history_days - len(missing),
        history_days,
        day_label(first),
        day_label(day - DAY),
        len(ranges),
        ", ".join(f"{day_label(a)} to {day_label(b)}" for a, b in ranges) or "none",
    )
    return ranges


@task(name="roll-up-days", cache_policy=NO_CACHE, **AWS_CALL_RETRIES)
def roll_days(clients: AwsClients, targets: PlanningTargets, first: date, last: date, now: datetime) -> TableWrite:
    """Roll the hourly rollup of ``first`` to ``last`` up into the daily table (idempotent)."""
    result = roll_up_days(clients, targets, first, last, now)
    get_run_logger().info(
        "days %s to %s: %s rows in %d files, %s bytes scanned, %.2f s",
        day_label(first),
        day_label(last),
        f"{result.rows:,}",
        result.files,
        f"{result.bytes_scanned:,}",
        result.seconds,
    )
    return result


@task(name="compute-forecast", cache_policy=NO_CACHE, **AWS_CALL_RETRIES)
def forecast_day(
    clients: AwsClients, targets: PlanningTargets, day: date, now: datetime, history_days: int
) -> TableWrite:
    """The day's forecast into the forecast table (idempotent: a retry replaces the day whole)."""
    result = compute_forecast(clients, targets, day, now, history_days)
    get_run_logger().info(
        "forecast of %s: %s store-products, %s bytes scanned, %.2f s",
        day_label(day),
        f"{result.rows:,}",
        f"{result.bytes_scanned:,}",
        result.seconds,
    )
    return result


@task(name="publish-forecast", cache_policy=NO_CACHE)
def publish_forecast(day: date, rolled: list[TableWrite], forecast: TableWrite, methods: dict[str, int]) -> None:
    """A markdown summary and a table of what was rolled and forecast, in the Prefect UI."""
    rows = [
        {
            "table": w.table,
            "days": f"{w.days[0]} to {w.days[-1]}" if len(w.days) > 1 else w.days[0],
            "rows": figure(w.rows),
            "files": figure(w.files),
            "bytes_scanned": figure(w.bytes_scanned),
            "bytes_written": figure(w.bytes_written),
            "seconds": figure(w.seconds),
        }
        for w in [*rolled, forecast]
    ]
    create_table_artifact(key="forecast-writes", table=rows, description=f"Forecast of {day}; updated {utc_stamp()}")
    method_lines = "".join(f"| {name} | {count:,} |\n" for name, count in sorted(methods.items()))
    create_markdown_artifact(
        key="forecast-summary",
        markdown=(
            f"## Demand forecast of {day}\n\n"
            f"| | |\n|---|---|\n"
            f"| store-products forecast | {forecast.rows:,} |\n"
            f"| days rolled up first | {sum(len(w.days) for w in rolled):,} |\n"
            f"| bytes scanned (rollup + forecast) | {sum(w.bytes_scanned for w in [*rolled, forecast]):,} |\n"
            f"| seconds | {sum(w.seconds for w in [*rolled, forecast]):.2f} |\n\n"
            f"| method | store-products |\n|---|---|\n{method_lines}\n"
            "Every plan of the day joins this forecast (`sql/replenishment.sql`); see `sql/forecast.md`.\n"
        ),
        description=f"forecast of {day}: {forecast.rows:,} store-products",
    )
