"""Nothing a benchmark or a CLI starts outlives it: SIGKILL the process that started a private emulator or a
temporary Prefect server (no cleanup can run), and they exit by themselves, SIGTERM handlers or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployments.localaws import LocalAws
from deployments.processes import free_port, http_ok, process_alive, process_tree, stop_processes
from storeops.settings import load_settings
from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.integration


def _kill_the_starter(code: str) -> tuple[str, list[int]]:
    """Run ``code`` in a process that prints one line once its child is ready; SIGKILL that process.
    The printed line, and the PIDs of everything it had started."""
    starter = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    try:
        line = starter.stdout.readline().strip()
        started = process_tree(starter.pid)[1:]
        assert started, line
    finally:
        starter.kill()
        starter.wait()
    return line, [process.pid for process in started]


def test_a_private_emulator_exits_when_its_benchmark_is_killed(tmp_path: Path) -> None:
    settings = load_settings(local_port=free_port(), local_home=tmp_path)
    code = (
        "import time; from pathlib import Path; from deployments.localaws import LocalAws;"
        " from storeops.settings import load_settings;"
        f" s = LocalAws(load_settings(local_port={settings.local_port}, local_home=Path({str(tmp_path)!r})))"
        ".start(tethered=True); print(s.pid, flush=True); time.sleep(600)"
    )
    line, pids = _kill_the_starter(code)
    try:
        assert int(line) in pids
        wait_for(lambda: not any(process_alive(pid) for pid in pids), timeout=30)
        emulator = LocalAws(settings)
        assert emulator.pid() is None
        assert not emulator.healthy()
    finally:
        for pid in pids:  # only if the test failed
            stop_processes(process_tree(pid), terms=0)


def test_a_clis_temporary_prefect_server_exits_when_the_cli_is_killed() -> None:
    code = (
        "import time; from deployments.prefect_local import temporary_server\n"
        "with temporary_server() as api_url:\n    print(api_url, flush=True); time.sleep(600)"
    )
    api_url, pids = _kill_the_starter(code)
    try:
        assert api_url.startswith("http://127.0.0.1:"), api_url
        wait_for(lambda: not any(process_alive(pid) for pid in pids), timeout=30)
        assert not http_ok(f"{api_url}/health")
    finally:
        for pid in pids:  # only if the test failed
            stop_processes(process_tree(pid), terms=0)
