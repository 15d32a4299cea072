"""prefect.yaml deploys to a temporary server, and every deployment runs once through a process worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.prefect_local import WORK_POOL, LocalPrefect
from tests.conftest import ROOT, free_port
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.flow

RUNS = {
    "store-data/store-data": ["--param", "stores=5", "--param", "products=4"],
    "plan/plan-shortages": [],
    "trucks/truck-dispatch": ["--param", "until_empty=true"],
    "replay-dlq/replay-dlq": [],
}


@pytest.fixture
def prefect_server(local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPrefect]:
    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)  # the server's worker and its flow runs use the test emulator
    local = LocalPrefect(tmp_path, free_port(), extra_env={"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"})
    try:
        local.start_server()
        yield local
    finally:
        local.stop()


def _flow_runs(api_url: str) -> list[dict]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=json.dumps({"limit": 50}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return list(json.loads(response.read()))


def test_every_deployment_runs_once_through_a_process_worker(prefect_server: LocalPrefect) -> None:
    prefect_server.deploy()
    listed = prefect_server.prefect("deployment", "ls").stdout
    for name in ("store-data", "plan-shortages", "truck-dispatch", "replay-dlq"):
        assert name in listed
    for deployment, params in RUNS.items():
        prefect_server.prefect("deployment", "run", deployment, *params)
    worker = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL, "--run-once"],
        cwd=ROOT, env={**prefect_server.environment(), **os.environ, "PREFECT_API_URL": prefect_server.api_url},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    runs = _flow_runs(prefect_server.api_url)
    states = {run["name"]: run["state_type"] for run in runs}
    assert len(runs) == len(RUNS), states
    assert set(states.values()) == {"COMPLETED"}, states
