"""prefect.yaml deploys to a temporary server, and every deployment runs once through a process worker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.prefect_local import LocalPrefect, api_post
from deployments.prefect_setup import WORK_POOL, prefect_client
from deployments.processes import free_port
from tests.conftest import ROOT, run_cli, wait_for
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow

RUNS: dict[str, dict[str, object]] = {
    "store-data/store-data": {"stores": 5, "products": 4},
    "plan/plan-shortages": {},
    "rollup/rollup-hourly": {"max_hours": 2},
    "forecast/forecast-daily": {"history_days": 7},
    "trucks/truck-dispatch": {"until_empty": True},
    "replay-dlq/replay-dlq": {},
    "scenario/scenario": {"days": 1, "stores": 3, "products": 2},
}


@pytest.fixture
def prefect_server(local_stack: LocalStack) -> Iterator[tuple[LocalPrefect, dict[str, str]]]:
    """`python -m deployments.prefect_local up` on a free port (scheduler off: runs only when asked)."""
    env = {**local_stack.env, "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    port = free_port()
    local = LocalPrefect(Path(local_stack.env["STOREOPS_LOCAL_HOME"]) / "prefect", port)
    try:
        up = run_cli(["-m", "deployments.prefect_local", "up", "--port", str(port), "--no-worker", "--json"], env=env)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert json.loads(up.stdout.strip().splitlines()[-1])["ui"] == f"http://127.0.0.1:{port}"
        yield local, env
    finally:
        down = run_cli(["-m", "deployments.prefect_local", "down", "--port", str(port)], env=env)
        assert down.returncode == 0, down.stderr[-2000:]
        assert not local.healthy()
        shutil.rmtree(local.home, ignore_errors=True)  # its database: the next server starts empty


def _flow_runs(api_url: str) -> list[dict]:
    return list(api_post(api_url, "/flow_runs/filter", {"limit": 50}, timeout=10))


def test_every_deployment_runs_once_through_a_process_worker(
    prefect_server: tuple[LocalPrefect, dict], local_stack: LocalStack
) -> None:
    from tests.integration.test_planning import forget_forecasts

    try:
        _run_every_deployment(prefect_server)
    finally:
        forget_forecasts(local_stack)  # forecast-daily forecast today: later plans of today must not see it


def _run_every_deployment(prefect_server: tuple[LocalPrefect, dict]) -> None:
    server, env = prefect_server
    listed = server.prefect("deployment", "ls").stdout
    for name in (
        "store-data",
        "plan-shortages",
        "rollup-hourly",
        "forecast-daily",
        "truck-dispatch",
        "replay-dlq",
        "scenario",
    ):
        assert name in listed
    with prefect_client(server.api_url) as client:  # as `prefect deployment run NAME --param K=V` does, in one process
        for deployment, parameters in RUNS.items():
            client.create_flow_run_from_deployment(client.read_deployment_by_name(deployment).id, parameters=parameters)
    worker = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL, "--run-once"],
        cwd=ROOT,
        env={**server.environment(), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    runs = _flow_runs(server.api_url)
    ran = [run for run in runs if run["state_type"] != "SCHEDULED"]
    states = {run["name"]: run["state_type"] for run in ran}
    assert len(ran) == len(RUNS), states
    assert set(states.values()) == {"COMPLETED"}, states
    # Named by what they did, not `tested-mole`.
    assert any(name.startswith("store-data 5x4 ") for name in states), states
    assert any(name.startswith("drain ") for name in states), states
    assert any(name.startswith("rollup catch-up ") for name in states), states
    assert any(name.startswith("forecast today 7d ") for name in states), states
    # The drained truck run completed, so truck-dispatch's trigger scheduled its replacement.
    truck_dispatch = next(run["deployment_id"] for run in ran if run["name"].startswith("drain "))
    wait_for(
        lambda: [r for r in _flow_runs(server.api_url) if r["state_type"] == "SCHEDULED"],
        timeout=60,
        interval=1.0,
    )
    scheduled = [run for run in _flow_runs(server.api_url) if run["state_type"] == "SCHEDULED"]
    assert [run["deployment_id"] for run in scheduled] == [truck_dispatch]
