"""The local Prefect server `prefect_local up` starts outlives its first log line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deployments.prefect_local import LocalPrefect
from deployments.processes import free_port

pytestmark = pytest.mark.integration


def test_the_server_keeps_running_when_it_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prefect server start --background` hands the server pipes that close when the command exits: at its first
    log line Prefect's rich console handler meets a broken pipe and exits the server (SystemExit). At the default
    level that is the first warning, e.g. an automation action that failed around a restart: the server was gone
    under a running truck flow. At INFO the server logs at start, so the old way died within seconds."""
    monkeypatch.setenv("PREFECT_SERVER_LOGGING_LEVEL", "INFO")
    local = LocalPrefect(tmp_path, free_port())
    try:
        local.start_server()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # requests the server logs, as a running flow's would be
            assert local.healthy(), local.server_log.read_text()[-2000:]
        assert "Application startup complete" in local.server_log.read_text()
        assert local.prefect("server", "status").returncode == 0  # Prefect's own command finds it
    finally:
        local.stop()
    assert not local.healthy()
