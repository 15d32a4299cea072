"""The rollup flow (catching up, a range again) and its CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flows.rollup import rollup_hours
from storeops.exceptions import ValidationFailed
from storeops.planning.rollup import hour_label, latest_closed_hour, marker_key
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack
from tests.integration.test_rollup import readings, write_readings

pytestmark = pytest.mark.flow


def test_the_flow_catches_up_then_rolls_nothing_then_rolls_a_range_again(flow_env: LocalStack) -> None:
    from prefect.artifacts import Artifact

    last = latest_closed_hour(datetime.now(UTC))
    s3, bucket = flow_env.clients.client("s3"), flow_env.resources.data_lake_bucket
    s3.put_object(Bucket=bucket, Key=marker_key(last - timedelta(hours=1)), Body=b"{}")  # rolled before
    first = rollup_hours(max_hours=3)
    assert first["hours"] == [hour_label(last - timedelta(hours=2)), hour_label(last)]  # the gaps, oldest first
    assert first["mode"] == "catch-up"
    assert rollup_hours(max_hours=3)["rolled"] == 0
    summary = Artifact.get("rollup-summary")
    assert summary is not None
    assert "hours rolled | 0" in str(summary.data)

    write_readings(flow_env, readings())
    again = rollup_hours(start="2026-11-20T01", end="2026-11-20T02")
    assert again["hours"] == ["2026-11-20T01", "2026-11-20T02"]
    assert again["rows"] == 40  # per partition: 12 pairs, and 8 readings of neighbouring hours that arrived in it
    assert again["bytes_scanned"] > 0
    table = Artifact.get("rollup-hours")
    assert table is not None
    assert "2026-11-20T01 to 2026-11-20T02" in str(table.description)
    assert {r["hour"]: r["rows"] for r in again["results"]} == {"2026-11-20T01": 20, "2026-11-20T02": 20}


def test_an_open_hour_fails_the_flow_in_one_line(flow_env: LocalStack) -> None:
    hour = hour_label(datetime.now(UTC))
    with pytest.raises(ValidationFailed, match=f"{hour} is not closed"):
        rollup_hours(start=hour, end=hour)


def test_a_range_older_than_the_raw_readings_retention_fails_the_flow_in_one_line(flow_env: LocalStack) -> None:
    retention = flow_env.resources.raw_readings_retention_days
    hour = hour_label(datetime.now(UTC) - timedelta(days=retention))
    with pytest.raises(ValidationFailed, match=f"hour {hour} is older than the raw readings' retention"):
        rollup_hours(start=hour, end=hour)


def test_rollup_cli_json(cli_env: dict[str, str], flow_env: LocalStack) -> None:
    write_readings(flow_env, readings())
    result = run_cli(["-m", "flows.rollup", "--hour", "2026-11-20T03", "--json"], env=cli_env)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["hours"] == ["2026-11-20T03"]
    assert payload["rows"] == 18
    assert "2026-11-20T03" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--hour", "2026-11-27 10"], "2026-11-27T10"),
        (["--hour", "2999-01-01T00"], "is not closed"),
        (["--start", "2026-11-20T00"], "--backfill"),
        (["--backfill", "--start", "2026-11-20T00"], "--start and --end"),
        (["--backfill", "--start", "2026-11-20T05", "--end", "2026-11-20T01"], "before start"),
        (["--hour", "2026-11-20T01", "--backfill"], "--hour"),
        (["--max-hours", "49"], "at most 48"),
    ],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str], needle: str) -> None:
    result = run_cli(["-m", "flows.rollup", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]
