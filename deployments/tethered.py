"""Run a module as ``python -m`` would, but never longer than another process lives.

    python -m deployments.tethered PID MODULE [ARGS...]

A thread checks every half second whether process ``PID`` (the one that started this, usually) is still
there; once it is gone, however it died (SIGKILL included), this process kills everything it started and
exits at once, whatever its main thread is doing. Portable (psutil) where Linux's ``PR_SET_PDEATHSIG`` is
not; the private emulator of a benchmark or a test session and a CLI's temporary Prefect server run so.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

import psutil

from deployments.processes import process_alive, stop_processes

POLL_SECONDS = 0.5


def exit_with(parent: psutil.Process) -> None:
    """Block until ``parent`` is gone, then kill this process's descendants and exit (code 1)."""
    while parent.is_running() and process_alive(parent.pid):  # is_running: not a later process of that PID
        time.sleep(POLL_SECONDS)
    stop_processes(psutil.Process().children(recursive=True), terms=0)
    os._exit(1)


def main(argv: list[str]) -> None:
    parent_pid, module, *args = argv
    threading.Thread(target=exit_with, args=(psutil.Process(int(parent_pid)),), daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
