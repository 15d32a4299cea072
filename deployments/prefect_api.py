"""The Prefect API a flow CLI records its run in.

``PREFECT_API_URL`` when it is set; else the local server of ``python -m deployments.prefect_local
up`` when it answers (fast, and the run shows in its UI). Otherwise a temporary server for this CLI alone, as
Prefect would start one, except that it cannot outlive the CLI: the kernel sends it SIGTERM
when the CLI dies, however it dies (Linux ``PR_SET_PDEATHSIG``; SIGKILL included), where
Prefect's own temporary server is left running when its parent is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from deployments.prefect_local import running_api_url
from deployments.processes import http_ok
from storeops.exceptions import EmulatorError
from storeops.settings import LOOPBACK

PR_SET_PDEATHSIG = 1  # linux/prctl.h
STARTUP_SECONDS = 90.0  # the first start on a new PREFECT_HOME runs the database migrations


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def start_temporary_server() -> tuple[subprocess.Popen[bytes], str]:
    """A Prefect API server on 127.0.0.1 that dies with this process; returns it and its API URL."""
    import prefect

    port = _free_port()
    api_url = f"http://{LOOPBACK}:{port}/api"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(prefect.__file__).parent.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    environment = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}
    on_linux = sys.platform.startswith("linux")
    server = subprocess.Popen(
        command,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if on_linux else None,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise EmulatorError(
                f"the temporary Prefect server exited at start with code {server.returncode}",
                hint="run `python -m deployments.prefect_local up`, or set PREFECT_API_URL to a running server",
            )
        if http_ok(f"{api_url}/health", 1.0):
            return server, api_url
        time.sleep(0.1)
    stop_server(server)
    raise EmulatorError(
        f"the temporary Prefect server did not answer within {STARTUP_SECONDS:.0f} s",
        hint="run `python -m deployments.prefect_local up`, or set PREFECT_API_URL to a running server",
    )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def prefect_api(local_home: Path | None = None) -> Iterator[str]:
    """Run the block's flows against ``PREFECT_API_URL``, the local server ``prefect_local up`` runs
    under ``local_home``, or a temporary server that dies with this CLI. Runs are tagged ``cli``."""
    from prefect import tags

    with _api(local_home) as api_url, tags("storeops", "cli"):
        yield api_url


@contextlib.contextmanager
def _api(local_home: Path | None) -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        yield str(configured)
        return
    local = running_api_url(local_home) if local_home else None
    if local:
        print(f"recording this run in the local Prefect server, {local.removesuffix('/api')}", file=sys.stderr)
        with temporary_settings(updates={PREFECT_API_URL: local}):
            try:
                yield local
            finally:
                _drain_prefect_workers()
        return
    server, api_url = start_temporary_server()
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            try:
                yield api_url
            finally:
                _drain_prefect_workers()
    finally:
        stop_server(server)


def _drain_prefect_workers() -> None:
    """Send the run's last logs and events before the server goes (as Prefect's test harness does)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(RuntimeError):  # never started
        APILogWorker.instance().drain()
    EventsWorker.drain_all(timeout=10)
