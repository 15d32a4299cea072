"""The plan flow (through the deployed Lambda) and its CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from flows.generate import store_data
from flows.plan import plan
from storeops.exceptions import ValidationFailed
from tasks.planning import PlanningFailed
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow

# A fixed busy time (Friday 16:30 GMT) after two days of history (shelves refilled at 06:00): whatever the
# wall clock says, the afternoon's sales have made room on the shelves, and with a long assumed lead time
# the plain rule finds pairs at or below their reorder points.
BUSY = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)


def test_plan_flow_finds_shortages_and_publishes_them(flow_env: LocalStack) -> None:
    from prefect.artifacts import Artifact

    store_data(stores=12, products=8, seed=5, as_of=BUSY, backfill_days=2)
    result = plan(as_of=BUSY, dry_run=True, lead_time_hours=48)
    assert result["shortage_count"] > 0
    assert result["requests_sent"] == 0
    assert sum(result["shortages_by_kind"].values()) == result["shortage_count"]
    table = Artifact.get("plan-shortages-dry-run")
    summary = Artifact.get("plan-summary-dry-run")
    assert table is not None
    assert summary is not None
    assert str(table.description).startswith("DRY RUN (nothing sent): shortages at ")
    assert "$5/TB" in str(summary.data)
    assert "Dry run of plan" in str(summary.data)

    sent = plan(as_of=BUSY, lead_time_hours=48)
    assert sent["requests_sent"] == sent["shortage_count"] > 0
    latest = Artifact.get("plan-summary")  # the latest real plan, never a dry run
    assert latest is not None
    assert str(latest.description).startswith(f"plan {sent['plan_id']} ")
    again = plan(as_of=BUSY, lead_time_hours=48)
    assert again["requests_sent"] == 0  # the ledger holds the open requests


def test_the_functions_own_error_fails_the_flow(flow_env: LocalStack) -> None:
    store_data(stores=2, products=2)
    with pytest.raises(PlanningFailed, match="S0777"):
        plan(stores=["S0777"], dry_run=True)


def test_bad_parameters_fail_before_invoking(flow_env: LocalStack) -> None:
    with pytest.raises(ValidationFailed, match="in the future"):
        plan(as_of="2999-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--lookback-hours", "-3"], "--lookback-hours"),
        (["--as-of", "yesterday"], "--as-of"),
        (["--as-of", "2026-01-01T00:00:00"], "time zone"),
        (["--as-of", "2999-01-01T00:00:00Z"], "in the future"),
        (["--store", "bad id"], "stores"),
    ],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str], needle: str) -> None:
    result = run_cli(["-m", "flows.plan", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]


def test_plan_cli_json(cli_env: dict[str, str]) -> None:
    busy = ["--as-of", BUSY.isoformat()]
    history = ["--backfill-days", "2"]
    generated = run_cli(["-m", "flows.generate", "--stores", "8", "--products", "6", *busy, *history], env=cli_env)
    assert generated.returncode == 0, generated.stderr[-2000:]
    result = run_cli(["-m", "flows.plan", *busy, "--lead-time-hours", "48", "--json"], env=cli_env)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["requests_sent"] == len(payload["shortages"]) > 0
    assert set(payload["shortages"][0]) == {"store_id", "product_id", "kind", "on_hand", "quantity", "shortage_id"}
    assert payload["query_execution_id"]
    assert "bytes_scanned" in payload
