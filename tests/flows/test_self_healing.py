"""The local Prefect server as an operator uses it: one truck run that comes back by itself, a Run
form that refuses bad values, CLIs that record their runs in it.

One server for the module (`python -m deployments.prefect_local up`, with its worker), at the
deployed settings: prefect.yaml's triggers and concurrency, automations.yaml's 75 s heartbeat
window, heartbeats every 30 s. Only the scheduler is off (no store-data or plan runs every minute).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments.localaws import LocalAws
from deployments.prefect_local import (
    SLOT_RETRY_SECONDS,
    WORKER_POLL_SECONDS,
    LocalPrefect,
    api_post,
    local_prefect_home,
)
from deployments.processes import free_port
from tests.conftest import run_cli, wait_for

pytestmark = pytest.mark.flow

COME_BACK_SECONDS = 120  # the promise: a new truck run within 2 minutes


class Server:
    def __init__(self, local: LocalPrefect, env: dict[str, str]) -> None:
        self.local, self.env = local, env

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return api_post(self.local.api_url, path, body)

    def deployment_id(self, name: str) -> str:
        return str(next(d["id"] for d in self.call("/deployments/filter") if d["name"] == name))

    def truck_runs(self) -> list[dict[str, Any]]:
        """truck-dispatch's runs, newest first."""
        deployment = self.deployment_id("truck-dispatch")
        return list(
            self.call(
                "/flow_runs/filter",
                {"deployments": {"id": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 50},
            )
        )

    def running_truck_run(self) -> dict[str, Any] | None:
        running = [r for r in self.truck_runs() if r["state_type"] == "RUNNING"]
        assert len(running) <= 1, [(r["name"], r["state_name"]) for r in self.truck_runs()]
        return running[0] if running else None

    def heartbeats(self, run_id: str) -> list[dict[str, Any]]:
        """The heartbeats the server has recorded for one flow run."""
        body = {"event": {"name": ["prefect.flow-run.heartbeat"]}, "resource": {"id": [f"prefect.flow-run.{run_id}"]}}
        return list(self.call("/events/filter", {"filter": body, "limit": 5})["events"])

    def story(self) -> str:
        """The truck runs and what the automations did, for a failure message."""
        runs = [
            f"{r['name']} {r['id'][:8]} {r['state_name']} ({(r.get('state') or {}).get('message')!r}) "
            f"start={r['start_time']} expected={r['expected_start_time']}"
            for r in self.truck_runs()
        ]
        events = self.call(
            "/events/filter",
            {"filter": {"event": {"prefix": ["prefect.automation", "prefect.flow-run.Crashed"]}}, "limit": 50},
        )["events"]
        happened = sorted(
            f"{e['occurred']} {e['event']} {e['resource'].get('prefect.resource.name', '')}"
            f" {e['resource']['prefect.resource.id']}"
            for e in events
        )
        return "\n".join(["truck runs:", *runs, "automation events:", *happened, *self.server_log_tail()])

    def server_log_tail(self, lines: int = 30) -> list[str]:
        log = self.local.server_log
        return ["server log:", *log.read_text(errors="replace").splitlines()[-lines:]] if log.exists() else []

    def cli(self, action: str) -> dict[str, Any]:
        """``python -m deployments.prefect_local <action> --json``; its JSON payload."""
        result = run_cli(
            ["-m", "deployments.prefect_local", action, "--port", str(self.local.port), "--json"], env=self.env
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def server(emulator: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    emulator.reset()
    env = {
        "STOREOPS_LOCAL_PORT": str(emulator.settings.local_port),
        "STOREOPS_LOCAL_HOME": str(emulator.settings.local_home),
        "STOREOPS_TARGET": "local",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    port = free_port()
    server = Server(LocalPrefect(local_prefect_home(emulator.settings.local_home), port), env)
    try:
        server.cli("up")
        yield server
    finally:
        server.cli("down")
        kept = tmp_path_factory.mktemp("prefect-local-logs")  # the server's and worker's logs outlive it
        for log in server.local.home.glob("*.log"):
            shutil.copy2(log, kept / log.name)
        assert not server.local.healthy()
        assert not server.local.flow_run_processes()
        shutil.rmtree(server.local.home, ignore_errors=True)  # its database: the next server starts empty


def test_up_starts_exactly_one_truck_run(server: Server) -> None:
    run = wait_for(server.running_truck_run, timeout=90, interval=1.0)
    assert isinstance(run, dict)
    assert "truck-dispatch" in run["tags"]
    again = server.cli("up")  # again: nothing new runs, and nothing is redeployed or updated
    assert [r["id"] for r in server.truck_runs() if r["state_type"] != "COMPLETED"] == [run["id"]]
    assert again["deployed"] is False
    assert set(again["automations"].values()) == {"unchanged"}, again["automations"]
    status = server.cli("status")  # Prefect's own `prefect server status`
    assert status["healthy"] is True
    assert status["pids"]["server"] == again["pids"]["server"]
    assert "Check out the dashboard at" in server.local.server_log.read_text()  # the server's output is kept


def test_the_run_form_refuses_bad_values_before_a_run_exists(server: Server) -> None:
    plan = server.deployment_id("plan-shortages")
    before = len(server.call("/flow_runs/filter", {"deployments": {"id": {"any_": [plan]}}}))
    for bad in ({"lookback_hours": -5}, {"max_requests": 10_000_001}, {"stores": "S0001"}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.call(f"/deployments/{plan}/create_flow_run", {"parameters": bad})
        assert refused.value.code == 409, bad
        assert "Validation failed" in refused.value.read().decode()
    assert len(server.call("/flow_runs/filter", {"deployments": {"id": {"any_": [plan]}}})) == before


def test_a_flow_cli_records_its_run_in_the_local_server(server: Server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | server.env
    started = time.monotonic()
    result = run_cli(["-m", "flows.replay_dlq", "--dry-run", "--json"], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"recording this run in the local Prefect server, http://127.0.0.1:{server.local.port}" in result.stderr
    runs = server.call("/flow_runs/filter", {"flow_runs": {"tags": {"all_": ["cli"]}}})
    assert [r["name"][: len("dead letters dry run")] for r in runs] == ["dead letters dry run"]
    assert time.monotonic() - started < 60


def test_the_truck_run_comes_back_after_its_host_dies_and_the_server_restarts(server: Server) -> None:
    """The worker and the truck run are SIGKILLed (the machine died), then `down` and `up`."""
    old = wait_for(server.running_truck_run, timeout=90, interval=1.0)
    assert isinstance(old, dict)
    # The zombie automation watches runs that said they are alive: the machine dies after the run's first
    # heartbeat reached the server (ARCHITECTURE.md: a run killed before that stays Running).
    wait_for(lambda: server.heartbeats(old["id"]), timeout=60, interval=1.0)
    processes = server.local.flow_run_processes()
    assert processes, "the truck run's process"
    for pid in [*processes, server.local.pids()["worker"]]:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    server.cli("down")
    server.cli("up")
    back_up = time.monotonic()

    def replaced() -> dict[str, Any] | None:
        run = server.running_truck_run()
        return run if run and run["id"] != old["id"] else None

    try:
        new = wait_for(replaced, timeout=COME_BACK_SECONDS, interval=2.0)
    except pytest.fail.Exception:
        pytest.fail(f"no new truck run Running {COME_BACK_SECONDS} s after `up`\n{server.story()}")
    except OSError as exc:  # the server went away
        pytest.fail(f"the Prefect server stopped answering: {exc}\n" + "\n".join(server.server_log_tail()))
    assert isinstance(new, dict)
    now = time.monotonic()
    print(f"new truck run Running {now - back_up:.0f} s after `up`, {now - killed:.0f} s after the kill")
    states = {r["id"]: (r["state_type"], r["state_name"]) for r in server.truck_runs()}
    assert states[old["id"]] == ("CRASHED", "Crashed")
    assert not [s for s in states.values() if s[0] == "CANCELLED"], states


def test_the_deployed_heartbeat_relation_holds() -> None:
    """The zombie window (automations.yaml) leaves room for two missed heartbeats (prefect.yaml),
    and detection plus the replacement's start fit in the 2 minutes the truck run may be gone."""
    import yaml
    from prefect.settings import Settings

    root = Path(__file__).resolve().parents[2]
    deployments = yaml.safe_load((root / "prefect.yaml").read_text())["deployments"]
    zombie = yaml.safe_load((root / "automations.yaml").read_text())["automations"][0]["trigger"]
    for deployment in deployments:
        heartbeat = int(deployment["work_pool"]["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
        assert zombie["within"] >= 2 * heartbeat + 10, deployment["name"]
    trucks = next(d for d in deployments if d["name"] == "truck-dispatch")
    assert "schedules" not in trucks  # no run cancelled every minute
    assert trucks["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    proactive = next(t for t in trucks["triggers"] if t["posture"] == "Proactive")
    assert proactive["within"] == zombie["within"]
    # Detection (the window, then the next proactive evaluation), the replacement's delay, a slot
    # retry, a worker poll and a start (~10 s). test_prefect_local checks Prefect reads these waits.
    evaluation = Settings().server.events.proactive_granularity.total_seconds()
    waits = proactive["schedule_after"] + SLOT_RETRY_SECONDS + WORKER_POLL_SECONDS
    worst = proactive["within"] + evaluation + waits + 10
    assert worst <= COME_BACK_SECONDS - 15, worst
