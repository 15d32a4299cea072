"""The store-data flow and its CLI."""

from __future__ import annotations

import json

import pytest

from flows.generate import store_data
from storeops.exceptions import ValidationFailed
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow


def test_store_data_flow_sends_and_continues(flow_env: LocalStack) -> None:
    first = store_data(stores=10, products=6, ticks=2, seed=4)
    assert first["rows_sent"] == 120
    assert first["rows_failed"] == 0
    second = store_data(stores=10, products=6, ticks=1, seed=4)
    assert second["rows_sent"] == 60
    assert second["sim_clock"] > first["sim_clock"]


def test_store_data_publishes_a_summary_artifact(flow_env: LocalStack) -> None:
    from prefect.artifacts import Artifact

    store_data(stores=3, products=3, ticks=1)
    artifact = Artifact.get("store-data-summary")
    assert artifact is not None
    assert "readings sent" in str(artifact.data)


def test_invalid_parameters_fail_the_flow_clearly(flow_env: LocalStack) -> None:
    with pytest.raises(ValidationFailed, match="stores"):
        store_data(stores=0)


@pytest.mark.parametrize(
    "args",
    [["--stores", "0"], ["--ticks", "-1"], ["--products", "many"], ["--bogus"], ["--hours-per-tick", "0"]],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str]) -> None:
    result = run_cli(["-m", "flows.generate", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("python -m flows.generate: error:")


def test_generate_cli_json(cli_env: dict[str, str]) -> None:
    result = run_cli(
        ["-m", "flows.generate", "--stores", "4", "--products", "3", "--ticks", "2", "--json"], env=cli_env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("rows_sent", "rows_rejected", "rows_failed", "firehose_records", "billed_bytes", "seconds"):
        assert key in payload
    assert payload["rows_sent"] == 24


def test_store_data_backfills_history_with_progress(flow_env: LocalStack) -> None:
    result = store_data(stores=3, products=2, ticks=1, backfill_days=1)
    assert result["backfill_rows"] == 3 * 2 * 24
    assert result["backfill_objects"] == 24
    assert result["rows_sent"] == 6
