"""The trucks and replay-dlq flows, and their CLIs (including a SIGTERM mid-run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from flows.generate import store_data
from flows.plan import plan
from flows.replay_dlq import replay_dlq
from flows.trucks import trucks
from tests.conftest import ROOT, run_cli, wait_for
from tests.integration.conftest import LocalStack
from tests.integration.test_trucks import ledger_dispatches, queue_counts, requests_for, send

pytestmark = pytest.mark.flow


def test_generate_plan_trucks_and_deliveries_close_the_loop(flow_env: LocalStack) -> None:
    from prefect.artifacts import Artifact

    busy = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # a fixed Friday afternoon, whatever the wall clock says
    store_data(stores=15, products=6, seed=2, as_of=busy, backfill_days=2)  # shelves refilled at 06:00
    first = plan(as_of=busy, lead_time_hours=72)  # a long lead time: reorder points above the fresh shelves
    assert first["requests_sent"] > 0
    totals = trucks(until_empty=True, window_seconds=3)
    assert totals["dispatched"] == first["requests_sent"]
    assert totals["trucks"] >= 1
    assert Artifact.get("truck-loads") is not None
    assert Artifact.get("truck-summary") is not None
    ran = store_data(stores=15, products=6, seed=2, as_of=busy + timedelta(minutes=5))
    assert ran["units_delivered"] == 0  # the trucks are still on the road (ETAs are minutes to hours away)


def test_the_truck_artifacts_are_live_while_the_run_works(
    flow_env: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published when the run starts, after windows that did work (every 30 s when deployed; at
    once here), and when it stops; each says its status and when it was updated."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    import tasks.trucks

    monkeypatch.setattr(tasks.trucks, "ARTIFACT_EVERY_SECONDS", 0.0)
    send(flow_env, [r.model_dump_json() for r in requests_for(flow_env, 30)])
    state = trucks(until_empty=True, window_messages=10, window_seconds=1, return_state=True)
    totals = state.result()
    assert totals["dispatched"] == 30

    def versions(key: str) -> list[str]:
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                )
            )
        return [str(a.description) for a in sorted(found, key=lambda a: a.created or 0)]

    summaries = versions("truck-summary")
    assert summaries[0].startswith("What the truck run has done so far (running, updated ")
    assert summaries[-1].startswith("What the truck run has done so far (stopped by queue empty, updated ")
    assert len(summaries) == 1 + 3 + 1  # the start, each of the 3 windows that received messages, the stop
    loads = versions("truck-loads")[-1]
    assert f"of {totals['trucks']:,} truck loads dispatched by this run, newest first (stopped by" in loads


def test_replay_flow_moves_dead_letters_back(flow_env: LocalStack) -> None:
    send(flow_env, ["{broken", "[]"], queue=flow_env.resources.dead_letter_queue_url)
    shown = replay_dlq(dry_run=True)
    assert shown["dead_letters"] == 2
    assert shown["moved"] == 0
    moved = replay_dlq()
    assert moved["moved"] == 2
    assert queue_counts(flow_env, flow_env.resources.dispatch_queue_url)[0] == 2


def test_trucks_cli_stops_cleanly_on_sigterm_and_loses_nothing(cli_env: dict[str, str], flow_env: LocalStack) -> None:
    requests = requests_for(flow_env, 120)
    send(flow_env, [r.model_dump_json() for r in requests])
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.trucks", "--window-messages", "20", "--window-seconds", "2", "--json"],
        cwd=ROOT,
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(ledger_dispatches(flow_env)) >= 20 or None, timeout=90, interval=0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    totals = json.loads(out.strip().splitlines()[-1])
    assert totals["stopped_by"] == "SIGTERM"
    rest = run_cli(["-m", "flows.trucks", "--until-empty", "--json"], env=cli_env)
    assert rest.returncode == 0, rest.stderr[-2000:]
    second = json.loads(rest.stdout.strip().splitlines()[-1])
    assert totals["dispatched"] + second["dispatched"] == 120
    ledger = ledger_dispatches(flow_env)
    assert len(ledger) == 120
    assert set(ledger.values()) == {1}


def test_a_killed_cli_leaves_no_prefect_server_behind(
    cli_env: dict[str, str], flow_env: LocalStack, tmp_path: Path
) -> None:
    environment = {k: v for k, v in {**os.environ, **cli_env}.items() if k != "PREFECT_API_URL"}
    log = tmp_path / "trucks.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.trucks", "--window-seconds", "1"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        server = wait_for(lambda: _prefect_servers(process.pid), timeout=90)
        wait_for(lambda: "truck worker" in log.read_text() or None, timeout=90, interval=0.2)  # its flow runs
    finally:
        process.kill()  # SIGKILL: no atexit, no finally
        process.wait()
    wait_for(lambda: not any(_alive(p) for p in server) or None, timeout=20, interval=0.2)


def _prefect_servers(parent: int) -> list[psutil.Process]:
    """The Prefect server processes among ``parent``'s descendants (the temporary server and what it runs)."""
    found = []
    for child in psutil.Process(parent).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "prefect server start" in command or "prefect.server.api.server" in command:
            found.append(child)
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_replay_cli_json(cli_env: dict[str, str], flow_env: LocalStack) -> None:
    send(flow_env, ["{broken"], queue=flow_env.resources.dead_letter_queue_url)
    result = run_cli(["-m", "flows.replay_dlq", "--dry-run", "--json"], env=cli_env)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["dead_letters"] == 1
    assert payload["dry_run"] is True


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("flows.trucks", ["--max-seconds", "0"]),
        ("flows.trucks", ["--window-messages", "x"]),
        ("flows.replay_dlq", ["--limit", "0"]),
        ("flows.replay_dlq", ["--bogus"]),
    ],
)
def test_bad_cli_values_exit_2(module: str, args: list[str]) -> None:
    result = run_cli(["-m", module, *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
