"""prefect_local acts only on processes it started: a PID file may name a process that reused the PID."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.prefect_local import OWNER_VARIABLE, SLOT_RETRY_SECONDS, WORKER_POLL_SECONDS, LocalPrefect
from deployments.processes import process_alive, process_tree, stop_processes
from tests.conftest import ROOT, wait_for


def test_a_stale_pid_file_is_neither_reused_nor_signalled(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        local = LocalPrefect(tmp_path, 4999)
        local.server_pid_file.parent.mkdir(parents=True)
        local.server_pid_file.write_text(str(stranger.pid))  # where `up` keeps it, as --background does
        local.worker_pid_file.write_text(str(stranger.pid))
        assert local.pids() == {"server": stranger.pid, "worker": stranger.pid}
        assert not local._ours(stranger.pid)
        assert local.stop() == []
        assert process_alive(stranger.pid)
        assert not local.server_pid_file.exists()  # `prefect server stop` would signal a stranger
    finally:
        stranger.kill()
        stranger.wait()


def test_its_own_processes_are_recognised(tmp_path: Path) -> None:
    local = LocalPrefect(tmp_path, 4999)
    env = {OWNER_VARIABLE: str(tmp_path), "PATH": "/usr/bin:/bin"}
    own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True)
    try:
        assert local._ours(own.pid)
    finally:
        own.kill()
        own.wait()


def automation_read_back_in_every_order_is_unchanged() -> None:
    """The server returns a trigger's sets (expect, after, for_each) in the order of another
    process: `up` must not take that for a change (an update resets the windows that find
    zombie runs, so a truck run that died just before the `up` would never be replaced)."""
    import itertools

    import yaml
    from prefect.events.schemas.automations import AutomationCore

    from deployments.prefect_setup import AUTOMATIONS_FILE, automation_definition
    from storeops.settings import project_root

    declared = yaml.safe_load((project_root() / AUTOMATIONS_FILE).read_text())["automations"][0]
    automation = AutomationCore.model_validate(declared)
    as_declared = automation_definition(automation)
    stored = automation.model_dump(mode="json")
    for order in itertools.permutations(stored["trigger"]["expect"]):
        read_back = {**stored, "trigger": {**stored["trigger"], "expect": list(order)}}
        assert automation_definition(AutomationCore.model_validate(read_back)) == as_declared, order
    changed = {**stored, "trigger": {**stored["trigger"], "within": 60}}
    assert automation_definition(AutomationCore.model_validate(changed)) != as_declared


@pytest.mark.parametrize("hash_seed", ["7", "random"])
def test_an_automation_read_back_in_another_order_is_unchanged(hash_seed: str) -> None:
    """Set order depends on the process's string-hash seed: 7 reordered `expect` (prefect 3.9.1)."""
    if hash_seed == "random" and os.environ.get("PYTHONHASHSEED", "random") == "random":
        assert sys.flags.hash_randomization
        automation_read_back_in_every_order_is_unchanged()  # this process's seed is a random one: no new process
        return
    check = "from tests.unit.test_prefect_local import automation_read_back_in_every_order_is_unchanged as c; c()"
    result = subprocess.run(
        [sys.executable, "-c", check],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_speed_settings_reach_the_settings_prefect_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The relation test_self_healing checks assumes these waits; Prefect must read them as such."""
    from prefect.settings import Settings

    environment = LocalPrefect(tmp_path, 4999).environment()
    for name, value in environment.items():
        if name.startswith("PREFECT_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.server.deployments.concurrency_slot_wait_seconds == SLOT_RETRY_SECONDS
    assert settings.worker.query_seconds == WORKER_POLL_SECONDS


def test_a_tethered_process_exits_when_its_starter_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the tethered process notices by itself and exits, SIGTERM or not."""
    log = tmp_path / "child.log"
    starter = f"""
import os, sys, time
from pathlib import Path
from deployments.processes import start_module
child = start_module(["http.server", "--bind", "127.0.0.1", "0"], dict(os.environ), Path({str(log)!r}), tethered=True)
print(child.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", starter], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        wait_for(lambda: log.exists() and "Serving HTTP" in log.read_text(), timeout=30)  # running, tether in place
        parent.kill()
        parent.wait()
        wait_for(lambda: not process_alive(child), timeout=15)
    finally:
        parent.kill()
        parent.wait()
        stop_processes(process_tree(child), terms=0)
