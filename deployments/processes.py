"""Processes this project starts in the background: liveness, health, signals to their group, waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    # A zombie (exited, not yet reaped by its parent) is not running.
    return not (stat.exists() and ") Z " in stat.read_text())


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pid: int, seconds: float) -> bool:
    """Poll until ``pid`` has exited (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` (a local health endpoint) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we build
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
