"""Flow ``forecast``: once a day, roll the closed days up and forecast every store-product's demand.

    python -m flows.forecast [--day 2026-11-28] [--history-days 56] [--json]

Rolls every day among the ``history_days`` before ``day`` that has no daily rollup yet (one Athena query
per run of missing days; the hourly rollup must hold them), then runs ``sql/forecast.sql`` once for ``day``
and writes the forecast table every plan of the day joins. ``day`` is a UTC day, today by default; the
deployment runs at 00:40 UTC, after the hourly rollup has closed the day before (00:12) and before the
stores' regular orders (04:00 local). Idempotent: a rerun replaces the day's forecast whole.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import forecast_run_name
from storeops.cli import emit_json, print_summary, run_cli
from storeops.clock import WallClock
from storeops.exceptions import ValidationFailed
from storeops.planning.forecast import HISTORY_DAYS, day_label, forecast_methods
from storeops.planning.models import PlanningTargets
from storeops.settings import load_settings
from tasks.forecast import find_days_to_roll, forecast_day, publish_forecast, roll_days

MAX_HISTORY_DAYS = 180
HistoryDays = Annotated[int, Field(ge=7, le=MAX_HISTORY_DAYS)]
Day = Annotated[date | None, Field(description="UTC day to forecast (default: today).")]


@flow(
    name="forecast",
    description="Roll the closed days up and forecast every store-product's demand for the day and the next two.",
    flow_run_name=forecast_run_name,
    validate_parameters=True,
)
@fail_in_one_line
def forecast(day: Day = None, history_days: HistoryDays = HISTORY_DAYS) -> dict[str, Any]:
    """Forecast ``day`` (today by default) from the ``history_days`` before it, rolling up missing days first.

    Args:
        day: UTC day to forecast, e.g. 2026-11-28 (default today); not after today.
        history_days: Days of history the forecast learns from (7 to 180).
    """
    now = WallClock().now()
    today = now.date()
    target = day or today
    if target > today:
        raise ValidationFailed(f"day {target} is after today ({today})", hint="forecast today or an earlier day")
    env = prepare(load_settings())
    targets = PlanningTargets.from_stack(env.resources)
    ranges = find_days_to_roll(env.clients, targets.bucket, target, history_days)
    rolled = [roll_days(env.clients, targets, first, last, now) for first, last in ranges]
    written = forecast_day(env.clients, targets, target, now, history_days)
    methods = forecast_methods(env.clients.client("s3"), targets.bucket, written.keys)
    publish_forecast(target, rolled, written, methods)
    summary: dict[str, Any] = {
        "day": day_label(target),
        "history_days": history_days,
        "days_rolled": sum(len(w.days) for w in rolled),
        "store_products": written.rows,
        "methods": methods,
        "bytes_scanned": sum(w.bytes_scanned for w in [*rolled, written]),
        "forecast_bytes_scanned": written.bytes_scanned,
        "seconds": round(sum(w.seconds for w in [*rolled, written]), 3),
    }
    get_run_logger().info(
        "forecast of %s: %d store-products (%s), %d days rolled up first, %d bytes scanned, %.2f s",
        summary["day"],
        written.rows,
        ", ".join(f"{k} {v:,}" for k, v in sorted(methods.items())),
        summary["days_rolled"],
        summary["bytes_scanned"],
        summary["seconds"],
    )
    return summary


def _day(text: str) -> date:
    """argparse type: a day like 2026-11-28."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day like 2026-11-28: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.forecast",
        description="Roll the closed days up and forecast every store-product's demand (the table every plan "
        "of the day joins).",
    )
    parser.add_argument("--day", type=_day, help="UTC day to forecast, e.g. 2026-11-28 (default today)")
    parser.add_argument(
        "--history-days",
        type=int,
        default=HISTORY_DAYS,
        help=f"days of history the forecast learns from (7 to {MAX_HISTORY_DAYS}, default {HISTORY_DAYS})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    if not 7 <= args.history_days <= MAX_HISTORY_DAYS:
        parser.error(f"--history-days: 7 to {MAX_HISTORY_DAYS}, got {args.history_days}")
    if args.day and args.day > WallClock().now().date():
        parser.error(f"--day {args.day} is after today")
    settings = load_settings()
    quiet_expected_tracebacks()
    with prefect_api(settings.local_home):
        result = forecast(day=args.day, history_days=args.history_days)
    print_summary(
        f"forecast of {result['day']}",
        [
            ("store-products", f"{result['store_products']:,}"),
            ("methods", ", ".join(f"{k} {v:,}" for k, v in sorted(result["methods"].items()))),
            ("days rolled up first", f"{result['days_rolled']:,}"),
            ("bytes scanned", f"{result['bytes_scanned']:,}"),
            ("seconds", f"{result['seconds']:.2f}"),
        ],
    )
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    run_cli(main)
