"""The one-command demo, and smoke runs of the benchmarks at tiny sizes (so they cannot rot)."""

from __future__ import annotations

import json

import pytest

from deployments.demo import STEPS, demo
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow


def test_demo_closes_the_loop_without_losing_anything(flow_env: LocalStack, cli_env_own_server: dict[str, str]) -> None:
    result = demo(stores=20, products=8, days=1)
    assert result["rows_sent"] == 20 * 8
    # the live path reads the wall clock: at night a fresh simulation's hour has no sales and no shortage,
    # so only that every shortage found went out is asserted (tests/flows/test_truck_flows.py fixes the time)
    assert result["requests_sent"] == result["shortages"]
    assert result["dispatched"] == result["requests_sent"]
    assert result["lost"] == 0
    level = result["service_level"]
    assert level["readings"] == 20 * 8 * 24
    assert 0 <= level["lost_sales_rate"] < 0.5
    assert level["units_shipped"] > 0
    assert level["trucks"] > 0

    # running it again, from its CLI as a user would (no Prefect server set up: it starts its own), works
    args = ["--stores", "20", "--products", "8", "--days", "1", "--json"]
    again = run_cli(["-m", "flows.demo", *args], env=cli_env_own_server)
    assert again.returncode == 0, again.stderr[-3000:]
    payload = json.loads(again.stdout.strip().splitlines()[-1])
    for key in ("rows_sent", "shortages", "requests_sent", "dispatched", "duplicates_skipped", "dead_lettered", "lost"):
        assert key in payload
    assert payload["lost"] == 0
    assert "lost_sales_rate" in payload["service_level"]
    assert "lost sales" in again.stdout  # the service figures are printed
    assert f"[{STEPS}/{STEPS}]" in again.stderr  # progress is shown


@pytest.mark.parametrize(
    ("module", "args", "keys"),
    [
        (
            "bench.ingest",
            ["--stores", "5", "--products", "4", "--ticks", "1", "--naive-readings", "10"],
            ["readings_per_s", "naive_readings_per_s", "speedup", "billed_bytes", "naive_billed_bytes", "billed_ratio"],
        ),
        (
            "bench.plan",
            ["--stores", "4", "--products", "3", "--days", "1,2"],
            [
                "selected_bytes_1d",
                "selected_bytes_2d",
                "full_scan_bytes_2d",
                "growth_2d_over_1d",
                "full_scan_ratio",
                "plan_seconds_1d",
            ],
        ),
        (
            "bench.drain",
            ["--messages", "60", "--naive-messages", "5", "--rss-messages", "120"],
            [
                "messages_per_s",
                "naive_messages_per_s",
                "ceiling_messages_per_s",
                "speedup",
                "ceiling_ratio",
                "rss_growth_mb",
            ],
        ),
        (
            "bench.service_level",
            # two policies in two lanes (each its own emulator): the default five add a minute, not a check
            ["--days", "1", "--stores", "4", "--products", "3", "--history-days", "1", "--policies=storeops,workshop"],
            [
                "storeops",
                "workshop",
                "seconds",
                "targets_met",
                "planner_targets",
                "fleet_targets",
                "demand_digest",
            ],
        ),
        (
            "bench.routing",
            ["--sizes", "30", "--products", "20", "--workers", "1"],
            ["results", "fleet", "cage_litres", "cycle_within_target"],
        ),
    ],
)
def test_benchmarks_run_and_print_their_figures(module: str, args: list[str], keys: list[str]) -> None:
    result = run_cli(["-m", module, *args, "--json"], timeout=600)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: a target missed at these tiny sizes
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    for key in keys:
        assert key in payload
