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

import argparse
from datetime import datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import rollup_run_name
from storeops.cli import emit_json, positive_int, run_cli
from storeops.clock import WallClock
from storeops.exceptions import ValidationFailed
from storeops.planning.models import PlanningTargets
from storeops.planning.rollup import (
    CATCH_UP_HOURS,
    RollupResult,
    hours_between,
    parse_hour,
    require_closed,
    require_raw_readings,
)
from storeops.settings import load_settings
from tasks.rollup import find_hours_to_roll, publish_rollup, report_rollup_lag, roll_hour

MAX_BACKFILL_HOURS = 24 * 31  # the longest planning window
HOUR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}$"
Hour = Annotated[str | None, Field(pattern=HOUR_PATTERN)]
CatchUpHours = Annotated[int, Field(ge=1, le=CATCH_UP_HOURS)]


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

    Args:
        start: First hour of a range to roll (again), UTC, e.g. 2026-11-27T00; empty: catch up.
        end: Last hour of that range (included), e.g. 2026-11-27T23; closed 10 minutes after it ends.
        max_hours: Catching up, look at this many of the latest closed hours (1 to 48).
    """
    now = WallClock().now()
    hours = resolve_hours(start, end, now)
    mode = "catch-up" if hours is None else f"backfill {start} to {end}"
    env = prepare(load_settings())
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


def _hour(text: str) -> str:
    """argparse type: an hour like 2026-11-27T10."""
    try:
        parse_hour(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.rollup",
        description="Roll closed hours of the inventory readings up into the hourly Parquet table planning "
        "reads. Without options: every closed hour of the last 48 that has no completion marker.",
    )
    parser.add_argument("--hour", type=_hour, help="roll this hour (again), UTC, e.g. 2026-11-27T10")
    parser.add_argument(
        "--backfill", action="store_true", help="roll the hours --start to --end (again, if rolled before)"
    )
    parser.add_argument("--start", type=_hour, help="with --backfill: the first hour, e.g. 2026-11-27T00")
    parser.add_argument("--end", type=_hour, help="with --backfill: the last hour (included), e.g. 2026-11-27T23")
    parser.add_argument(
        "--max-hours",
        type=positive_int,
        default=CATCH_UP_HOURS,
        help=f"catching up: look at this many of the latest closed hours (default and most {CATCH_UP_HOURS})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    if args.hour and (args.backfill or args.start or args.end):
        parser.error("--hour rolls one hour: leave out --backfill, --start and --end")
    if (args.start or args.end) and not args.backfill:
        parser.error("--start and --end go with --backfill")
    if args.backfill and not (args.start and args.end):
        parser.error("--backfill needs --start and --end")
    if args.max_hours > CATCH_UP_HOURS:
        parser.error(f"--max-hours: at most {CATCH_UP_HOURS}, got {args.max_hours}")
    start, end = (args.hour, args.hour) if args.hour else (args.start, args.end)
    resolve_hours(start, end, WallClock().now())  # an open hour or a bad range: exit 2 before Prefect starts
    settings = load_settings()
    quiet_expected_tracebacks()
    with prefect_api(settings.local_home):
        result = rollup_hours(start=start, end=end, max_hours=args.max_hours)
    print(f"rollup ({result['mode']}): {result['rolled']} hours rolled")
    for row in result["results"]:
        print(
            f"  {row['hour']}  {row['rows']:>9,} rows  {row['files']:>3} files  "
            f"{row['bytes_scanned']:>14,} B scanned  {row['bytes_written']:>12,} B written  {row['seconds']:.2f} s"
        )
    print(
        f"  total: {result['rows']:,} rows, {result['bytes_scanned']:,} bytes scanned, "
        f"{result['bytes_written']:,} bytes written, {result['seconds']:.2f} s"
    )
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    run_cli(main)
