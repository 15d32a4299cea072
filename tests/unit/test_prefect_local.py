"""prefect_local acts only on processes it started: a PID file may name a process that reused the PID."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deployments.prefect_local import OWNER_VARIABLE, LocalPrefect
from deployments.processes import process_alive


def test_a_stale_pid_file_is_neither_reused_nor_signalled(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        local = LocalPrefect(tmp_path, 4999)
        tmp_path.mkdir(exist_ok=True)
        local.pid_file.write_text(json.dumps({"worker": stranger.pid, "server": stranger.pid}))
        assert not local._ours(stranger.pid)
        assert local.stop() == []
        assert process_alive(stranger.pid)
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
