"""Flow ``forecast``: once a day, roll the closed days up and forecast every store-product's demand.

    python -m flows.forecast [--day 2026-11-28] [--history-days 56] [--json]

Rolls every day among the ``history_days`` before ``day`` that has no daily rollup yet (one Athena query
per run of missing days; the hourly rollup must hold them), then runs ``sql/forecast.sql`` once for ``day``
and writes the forecast table every plan of the day joins. ``day`` is a UTC day, today by default; the
deployment runs at 00:40 UTC, after the hourly rollup has closed the day before (00:12) and before the
stores' regular orders (04:00 local). Idempotent: a rerun replaces the day's forecast whole.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger

from flows.cli import FlowCli, Table
from flows.failures import fail_in_one_line
from flows.run_names import forecast_run_name
from storeops.clock import WallClock
from storeops.exceptions import ValidationFailed
from storeops.parameters import ForecastDay, ForecastHistoryDays
from storeops.planning.forecast import HISTORY_DAYS, day_label, forecast_methods
from storeops.planning.models import PlanningTargets
from tasks.environment import load_environment
from tasks.forecast import find_days_to_roll, forecast_day, publish_forecast, roll_days


def check_day(day: date | None = None, **_: Any) -> date:
    """The day to forecast: ``day`` or today; not after today."""
    today = WallClock().now().date()
    target = day or today
    if target > today:
        raise ValidationFailed(f"day {target} is after today ({today})", hint="forecast today or an earlier day")
    return target


@flow(
    name="forecast",
    description="Roll the closed days up and forecast every store-product's demand for the day and the next two.",
    flow_run_name=forecast_run_name,
    validate_parameters=True,
)
@fail_in_one_line
def forecast(day: ForecastDay = None, history_days: ForecastHistoryDays = HISTORY_DAYS) -> dict[str, Any]:
    """Forecast ``day`` (today by default) from the ``history_days`` before it, rolling up missing days first."""
    now = WallClock().now()
    target = check_day(day)
    env = load_environment()
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


def _tables(result: dict[str, Any]) -> list[Table]:
    rows = [
        {"": "store-products", "value": f"{result['store_products']:,}"},
        {"": "methods", "value": ", ".join(f"{k} {v:,}" for k, v in sorted(result["methods"].items()))},
        {"": "days rolled up first", "value": f"{result['days_rolled']:,}"},
        {"": "bytes scanned", "value": f"{result['bytes_scanned']:,}"},
        {"": "seconds", "value": f"{result['seconds']:.2f}"},
    ]
    return [Table(f"forecast of {result['day']}", rows)]


CLI = FlowCli(forecast, "python -m flows.forecast", _tables, check=check_day)

if __name__ == "__main__":
    from deployments.cli import run

    run(CLI)
