"""Flow ``rollup``: roll closed hours of the inventory readings up into the hourly Parquet table planning reads.

python -m flows.rollup [--max-hours N] [--json]
python -m flows.rollup --hour 2026-11-27T10 [--json]
python -m flows.rollup --backfill --start 2026-11-27T00 --end 2026-11-27T23 [--json]

Without an hour, every closed hour among the last ``max_hours`` (48) that has no completion marker is
rolled, oldest first, so a missed run catches up. ``--hour`` rolls one hour and ``--backfill`` a range,
again if they were rolled before (a reading that landed for an hour after its rollup is seen by plans
only once the hour is rolled again). An hour is closed 10 minutes after it ends; an open hour is refused.
Hours are UTC, named like 2026-11-27T10.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from pydantic import Field

from flows.cli import FlowCli, Table
from flows.failures import fail_in_one_line
from flows.run_names import rollup_run_name
from storeops.clock import WallClock
from storeops.exceptions import ValidationFailed
from storeops.parameters import CATCH_UP_HOURS, MAX_LOOKBACK_HOURS, CatchUpHours, Hour
from storeops.planning.models import PlanningTargets
from storeops.planning.rollup import RollupResult, hours_between, parse_hour, require_closed, require_raw_readings
from tasks.environment import load_environment
from tasks.rollup import find_hours_to_roll, publish_rollup, report_rollup_lag, roll_hour, rollup_rows

MAX_BACKFILL_HOURS = MAX_LOOKBACK_HOURS  # the longest planning window


def resolve_hours(start: str | None, end: str | None, now: datetime) -> list[datetime] | None:
    """The hours to roll (``start`` to ``end``, both included), or None to catch up; one-line errors."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise ValidationFailed("a range of hours needs both start and end", hint="e.g. --start 2026-11-27T00 --end ...")
    try:
        first, last = parse_hour(start), parse_hour(end)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    if last < first:
        raise ValidationFailed(f"end {end} is before start {start}")
    hours = hours_between(first, last)
    if len(hours) > MAX_BACKFILL_HOURS:
        raise ValidationFailed(
            f"{len(hours):,} hours from {start} to {end}: at most {MAX_BACKFILL_HOURS:,} a run",
            hint="roll a long range in several runs",
        )
    require_closed(last, now)
    return hours


@flow(
    name="rollup",
    description="Roll closed hours of the inventory readings up into the hourly Parquet table planning reads.",
    flow_run_name=rollup_run_name,
    validate_parameters=True,
)
@fail_in_one_line
def rollup_hours(
    start: Hour = None,
    end: Hour = None,
    max_hours: CatchUpHours = CATCH_UP_HOURS,
) -> dict[str, Any]:
    """Roll the closed hours without a completion marker among the last ``max_hours`` (oldest first), or,
    with ``start`` and ``end``, every hour of that range again.
    """
    now = WallClock().now()
    hours = resolve_hours(start, end, now)
    mode = "catch-up" if hours is None else f"backfill {start} to {end}"
    env = load_environment()
    targets = PlanningTargets.from_stack(env.resources)
    if hours is None:
        hours = find_hours_to_roll(env.clients, targets.bucket, now, max_hours)
    else:
        require_raw_readings(hours, now, env.resources.raw_readings_retention_days)
    results: list[RollupResult] = [roll_hour(env.clients, targets, hour, now) for hour in hours]
    publish_rollup(results, mode)
    lag = report_rollup_lag(env.clients, targets.bucket, env.settings.stack_name)
    summary: dict[str, Any] = {
        "mode": mode,
        "lag_hours": lag,
        "hours": [r.hour for r in results],
        "rolled": len(results),
        "rows": sum(r.rows for r in results),
        "bytes_scanned": sum(r.bytes_scanned for r in results),
        "bytes_written": sum(r.bytes_written for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
        "results": [{k: v for k, v in r.as_dict().items() if k != "keys"} | {"files": len(r.keys)} for r in results],
    }
    get_run_logger().info(
        "rollup (%s): %d hours, %d rows, %d bytes scanned, %d bytes written, %.2f s",
        mode,
        summary["rolled"],
        summary["rows"],
        summary["bytes_scanned"],
        summary["bytes_written"],
        summary["seconds"],
    )
    return summary


def _parameters(values: dict[str, Any]) -> dict[str, Any]:
    """``--hour H`` is ``start=end=H``; ``--start``/``--end`` go with ``--backfill``; checked before set-up."""
    hour, backfill = values.pop("hour"), values.pop("backfill")
    start, end = values["start"], values["end"]
    if hour and (backfill or start or end):
        raise ValidationFailed("--hour rolls one hour: leave out --backfill, --start and --end")
    if (start or end) and not backfill:
        raise ValidationFailed("--start and --end go with --backfill")
    if backfill and not (start and end):
        raise ValidationFailed("--backfill needs --start and --end")
    if hour:
        values["start"] = values["end"] = hour
    resolve_hours(values["start"], values["end"], WallClock().now())  # an open hour or a bad range
    return values


def _tables(result: dict[str, Any]) -> list[Table]:
    return [
        Table(
            f"rollup ({result['mode']}): {result['rolled']} hours rolled; {result['rows']:,} rows, "
            f"{result['bytes_scanned']:,} bytes scanned, {result['bytes_written']:,} bytes written",
            rollup_rows(result["results"]),
        )
    ]


CLI = FlowCli(
    rollup_hours,
    "python -m flows.rollup",
    _tables,
    extras={
        "hour": (Hour, Field(None, description="Roll this hour (again), UTC, e.g. 2026-11-27T10.")),
        "backfill": (bool, Field(False, description="Roll the hours --start to --end (again, if rolled before).")),
    },
    to_parameters=_parameters,
)

if __name__ == "__main__":
    from deployments.cli import run

    run(CLI)
