"""The processes this project starts in the background: starting, health, stopping a tree (psutil: any OS)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from storeops.settings import LOOPBACK, project_root


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a private server)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def home_lock(home: Path, name: str) -> Iterator[None]:
    """Hold ``home/locks/NAME.lock`` exclusively: one holder at a time across the threads and processes of this
    machine (each ``open`` is a lock of its own); released however the holder exits."""
    locks = home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def python_module(*args: str, tethered: bool = False) -> list[str]:
    """``python -m ARGS``; ``tethered``: it exits when this one does, SIGKILL included (``deployments.tethered``)."""
    return [sys.executable, "-m", *(["deployments.tethered", str(os.getpid())] if tethered else []), *args]


def start_module(
    args: list[str], env: dict[str, str], log: Path | None = None, *, tethered: bool = False
) -> subprocess.Popen[bytes]:
    """``python -m ARGS`` in the background, in a session of its own (a terminal's Ctrl-C does not reach it), its
    output appended to ``log``."""
    with log.open("ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as output:
        return subprocess.Popen(
            python_module(*args, tethered=tethered),
            cwd=project_root(),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(url: str, running: Callable[[], bool], timeout: float) -> bool:
    """Poll ``url`` until it answers (True); False once ``running()`` is False, or after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not http_ok(url, timeout=0.5):
        if not running() or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def wait_started(url: str, child: subprocess.Popen[bytes] | None, running: Callable[[], bool], timeout: float) -> bool:
    """``wait_healthy`` for a server this process may have just spawned: while ``child`` (ours) runs, by its own exit
    code (between fork and exec it still shows our command line and environment), else while ``running()``."""
    return wait_healthy(url, (lambda: child.poll() is None) if child is not None else running, timeout)


def process_alive(pid: int) -> bool:
    """``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and its descendants; empty when it is gone."""
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def stop_processes(processes: list[psutil.Process], terms: int = 1, timeout: float = 15.0) -> None:
    """SIGTERM ``processes`` ``terms`` times, each time waiting up to ``timeout`` s, then SIGKILL what is left."""
    for attempt in range(terms + 1):
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.terminate() if attempt < terms else process.kill()
        processes = psutil.wait_procs(processes, timeout=timeout if attempt < terms else 5)[1]
        if not processes:
            return


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """``url`` (a local health endpoint) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we build
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def http_post(url: str, data: bytes, timeout: float = 30) -> bytes:
    """POST JSON ``data`` to ``url`` (a local API); the answer's body. ``urllib.error.HTTPError`` on an error status."""
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URLs we build
        return bytes(response.read())
