"""The forecast flow and its CLI: it rolls the days the hourly rollup completed, forecasts, and says so."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from storeops.planning.forecast import DAILY_MARKERS, day_is_complete, days_to_roll, marked_days
from storeops.planning.rollup import hour_label, marker_key
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow


def test_only_days_whose_hours_are_all_rolled_are_rolled_up_in_runs_of_consecutive_days() -> None:
    first = date(2026, 11, 1)
    hours = {hour_label(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=h)) for h in range(3 * 24 + 1)}
    complete = {d for d in (first + timedelta(days=n) for n in range(5)) if day_is_complete(d, hours)}
    assert complete == {first, first + timedelta(days=1), first + timedelta(days=2)}
    marked = {first + timedelta(days=1)}
    assert days_to_roll(marked, first, first + timedelta(days=4), complete) == [
        (first, first),
        (first + timedelta(days=2), first + timedelta(days=2)),
    ]
    every = {first + timedelta(days=n) for n in range(6)}
    assert days_to_roll(set(), first, first + timedelta(days=5), every) == [
        (first, first + timedelta(days=1)),
        (first + timedelta(days=2), first + timedelta(days=3)),
        (first + timedelta(days=4), first + timedelta(days=5)),
    ]  # at most MAX_ROLL_DAYS (2) a query


def test_the_cli_forecasts_and_reports_what_it_rolled(cli_env: dict[str, str], flow_env: LocalStack) -> None:
    from tests.integration.test_planning import forget_forecasts

    try:
        _forecast_through_the_cli(cli_env, flow_env)
    finally:
        forget_forecasts(flow_env)  # today's forecast would change what later tests' plans of today do


def _forecast_through_the_cli(cli_env: dict[str, str], flow_env: LocalStack) -> None:
    s3, bucket = flow_env.clients.client("s3"), flow_env.resources.data_lake_bucket
    day = datetime.now(UTC).date() - timedelta(days=3)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for h in range(25):  # the hourly rollup completed that day (its hours are empty here)
        s3.put_object(Bucket=bucket, Key=marker_key(start + timedelta(hours=h)), Body=b"{}")
    result = run_cli(["-m", "flows.forecast", "--history-days", "7", "--json"], env=cli_env)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["days_rolled"] == 1  # only the complete day; the others wait for their hours
    assert payload["store_products"] == 0
    assert day in marked_days(s3, bucket, DAILY_MARKERS, day - timedelta(days=1))
    assert "forecast of" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--history-days", "3"], "7 to 180"),
        (["--day", "2999-01-01"], "after today"),
        (["--day", "28/11/2026"], "2026-11-28"),
    ],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str], needle: str) -> None:
    result = run_cli(["-m", "flows.forecast", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]
