"""A benchmark stopped by SIGTERM or Ctrl-C leaves nothing running: not its private emulator (which once went on
at 83% CPU after its benchmark was killed), not any other process it started."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def _listening(process: psutil.Process) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN for c in process.net_connections(kind="tcp"))
    except psutil.Error:
        return False


def _tree_once_serving(bench: subprocess.Popen[bytes], timeout: float = 90) -> list[psutil.Process]:
    """The benchmark's processes once one of them (its emulator) accepts connections."""
    root = psutil.Process(bench.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert bench.poll() is None, "the benchmark ended before its emulator served"
        tree = root.children(recursive=True)
        if any(_listening(p) for p in tree):
            return tree
        time.sleep(0.1)
    pytest.fail(f"no process of the benchmark listened within {timeout} s")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_benchmark_leaves_no_process_behind(stop: signal.Signals) -> None:
    bench = subprocess.Popen(
        # its default run (over a minute): a tiny one could finish, and exit 0, before the signal reached it
        [sys.executable, "-m", "bench.plan"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    tree: list[psutil.Process] = []
    try:
        tree = _tree_once_serving(bench)
        bench.send_signal(stop)
        code = bench.wait(timeout=60)
        assert code != 0, f"a stopped benchmark reports that it did not finish (exit code {code})"
        _gone, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], f"left running: {[(p.pid, p.cmdline()) for p in alive]}"
    finally:
        for process in [*tree, psutil.Process(bench.pid)] if bench.poll() is None else tree:
            try:
                process.kill()
            except psutil.Error:
                continue
