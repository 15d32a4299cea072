"""The store-data flow and its CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flows.generate import store_data
from storeops.athena import inventory_query
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow


def test_store_data_flow_sends_and_continues(flow_env: LocalStack) -> None:
    s3, bucket = flow_env.clients.client("s3"), flow_env.resources.data_lake_bucket
    prefix = "simulator/10x6-seed4/"
    first = store_data(stores=10, products=6, seed=4)
    assert first["rows_sent"] == 60
    assert first["rows_failed"] == 0
    assert first["hours_simulated"] == pytest.approx(1.0)  # a new simulation starts an hour before its reading
    assert first["peak_rss_mb"] > 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert keys == {f"{prefix}manifest.json", f"{prefix}chunk-00000.npz"}
    second = store_data(stores=10, products=6, seed=4)
    assert second["rows_sent"] == 60
    assert second["sim_clock"] > first["sim_clock"]
    assert second["hours_simulated"] < 1.0  # continued: only the time since the first reading


def test_two_live_runs_a_known_time_apart_report_the_sales_of_that_time(flow_env: LocalStack) -> None:
    t0 = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # the afternoon peak
    store_data(stores=200, products=20, seed=5, as_of=t0)
    ninety_seconds = store_data(stores=200, products=20, seed=5, as_of=t0 + timedelta(seconds=90))
    assert ninety_seconds["hours_simulated"] == pytest.approx(90 / 3600)
    assert ninety_seconds["sim_clock"] == (t0 + timedelta(seconds=90)).isoformat()
    an_hour = store_data(stores=200, products=20, seed=5, as_of=t0 + timedelta(hours=1, seconds=90))
    assert an_hour["hours_simulated"] == pytest.approx(1.0)
    demand = an_hour["units_sold"] + an_hour["units_lost"]
    short = ninety_seconds["units_sold"] + ninety_seconds["units_lost"]
    assert 20 < demand / max(short, 1) < 70  # 40x the time: about 40x the customers (Poisson noise aside)


def test_with_wait_the_run_returns_when_athena_reads_every_reading(flow_env: LocalStack) -> None:
    from storeops.stores.landing import count_landed

    result = store_data(stores=7, products=5, seed=9, wait=True)
    assert result["rows_sent"] == 35
    assert result["queryable_after_seconds"] >= 0
    observed_at = datetime.fromisoformat(result["sim_clock"])
    rows, distinct, _ = count_landed(
        flow_env.clients, inventory_query(flow_env.resources), observed_at, timedelta(minutes=5)
    )
    assert (rows, distinct) == (35, 35)


def test_store_data_publishes_a_summary_artifact(flow_env: LocalStack) -> None:
    from prefect.artifacts import Artifact

    store_data(stores=3, products=3)
    artifact = Artifact.get("store-data-summary")
    assert artifact is not None
    assert "readings sent" in str(artifact.data)


def test_invalid_parameters_fail_the_flow_clearly(flow_env: LocalStack) -> None:
    """The signature's limits reject the value before the body runs (as the Run form does)."""
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="stores: Input should be greater than or equal to 1"):
        store_data(stores=0)


@pytest.mark.parametrize(
    "args",
    [["--stores", "0"], ["--seed", "-1"], ["--products", "many"], ["--bogus"], ["--as-of", "yesterday"]],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str]) -> None:
    result = run_cli(["-m", "flows.generate", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("python -m flows.generate: error:")


def test_generate_cli_json(cli_env: dict[str, str]) -> None:
    result = run_cli(["-m", "flows.generate", "--stores", "4", "--products", "3", "--json"], env=cli_env)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("rows_sent", "rows_rejected", "rows_failed", "firehose_records", "billed_bytes", "seconds"):
        assert key in payload
    assert payload["rows_sent"] == 12
    assert payload["peak_rss_mb"] > 0  # this process's peak resident memory


def test_store_data_backfills_history_with_progress(flow_env: LocalStack) -> None:
    now = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
    result = store_data(stores=3, products=2, backfill_days=1, as_of=now)
    assert result["backfill_rows"] == 3 * 2 * 24
    assert result["backfill_objects"] == 24
    assert result["rows_sent"] == 6
    assert result["hours_simulated"] == pytest.approx(1 / 3)  # the live reading continues from the last backfilled hour
