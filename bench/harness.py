"""A private emulator and stack for one benchmark run (started here, stopped by PID at the end)."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deployments.environment import Environment, prepare
from deployments.localaws import LocalAws
from storeops.settings import load_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def bench_environment() -> Iterator[Environment]:
    """A fresh emulator in a temporary home with the stack deployed; stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="storeops-bench-") as home:
        settings = load_settings(target="local", local_port=_free_port(), local_home=Path(home))
        emulator = LocalAws(settings)
        try:
            emulator.start(tethered=True)  # gone with this benchmark, however it ends (SIGKILL too)
            yield prepare(settings)
        finally:
            emulator.stop()
