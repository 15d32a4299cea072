"""The scenario runner: the closed loop in virtual time, and figures the lake reproduces."""

from __future__ import annotations

import json

import pytest

from deployments.environment import prepare
from flows.scenario import scenario
from storeops.clock import format_timestamp, parse_timestamp
from storeops.dispatch.routing import FleetPolicy
from storeops.ledger import LEDGER_PREFIX, decode_rows
from storeops.service_level import ServiceLevel, read_lake
from storeops.settings import load_settings
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow

FROM_READINGS_AND_LOADS = (
    "readings",
    "out_of_stock_rate",
    "lost_sales_rate",
    "units_demanded",
    "units_lost",
    "units_shipped",
    "trucks",
    "trucks_per_day",
    "mean_truck_fill",
    "trucks_per_1000_units",
    "average_days_of_cover",
)


def test_a_two_day_scenario_reports_figures_the_lake_reproduces(flow_env: LocalStack) -> None:
    result = scenario(days=2, stores=6, products=4, plan_every_hours=4, policy="storeops", seed=3)
    assert result["readings"] == 2 * 24 * 6 * 4
    assert result["planning_runs"] == 12
    assert result["units_shipped"] > 0
    env = prepare(load_settings(stack_name=result["stack"]))
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    start, end = parse_timestamp(result["start"]), parse_timestamp(result["end"])
    readings, dispatches = read_lake(s3, bucket, start, end)
    lake = ServiceLevel.from_frames(readings, dispatches, 2, FleetPolicy().capacity_units)
    assert {k: getattr(lake, k) for k in FROM_READINGS_AND_LOADS} == {k: result[k] for k in FROM_READINGS_AND_LOADS}
    # every stop that arrived by the end was added to the shelves once: no more, no less
    arrived = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LEDGER_PREFIX):
        for obj in page.get("Contents", []):
            rows = decode_rows(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            arrived += sum(r.quantity for r in rows if r.record_type == "dispatch" and r.eta <= format_timestamp(end))
    assert result["units_delivered"] == arrived > 0


def test_the_policies_see_the_same_customers(flow_env: LocalStack) -> None:
    none = scenario(days=1, stores=4, products=3, policy="none", seed=5)
    workshop = scenario(days=1, stores=4, products=3, policy="workshop", seed=5)
    assert none["units_demanded"] == workshop["units_demanded"]
    assert none["trucks"] == 0
    assert workshop["trucks"] >= 1  # one truck per alert
    assert none["out_of_stock_rate"] >= workshop["out_of_stock_rate"]


@pytest.mark.parametrize("args", [["--days", "0"], ["--policy", "magic"], ["--stores", "x"]])
def test_bad_cli_values_exit_2_with_one_line(args: list[str]) -> None:
    result = run_cli(["-m", "flows.scenario", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_scenario_cli_json(cli_env: dict[str, str]) -> None:
    result = run_cli(["-m", "flows.scenario", "--days", "1", "--stores", "3", "--products", "2", "--json"], env=cli_env)
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("out_of_stock_rate", "lost_sales_rate", "trucks_per_1000_units", "seconds", "units_delivered"):
        assert key in payload
    assert "out of stock" in result.stdout
