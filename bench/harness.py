"""What every benchmark shares: a private emulator and stack for one run, and an entry point that leaves
nothing running behind it.

``run_benchmark(main)`` is each benchmark's ``__main__``: SIGTERM (and SIGHUP) end the run like Ctrl-C, by raising
``SystemExit``, so every ``finally`` and context manager runs (the emulator, the Prefect server and the worker
processes it started are stopped); then any process the run started that still runs (its whole tree, found
with psutil, whatever session or process group it is in) is terminated, and killed after a grace period.
A SIGKILL cannot be caught: for that case the emulator itself has to notice that its parent is gone.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import psutil

from deployments.environment import Environment, prepare
from deployments.localaws import LocalAws
from deployments.processes import free_port, process_tree, stop_processes
from storeops.settings import load_settings

GRACE_SECONDS = 10.0  # for a leftover process to stop on SIGTERM before it is killed
# SIGINT already raises KeyboardInterrupt; SIGHUP does not exist on Windows
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def bench_environment() -> Iterator[Environment]:
    """A fresh emulator in a temporary home with the stack deployed; stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="storeops-bench-") as home:
        settings = load_settings(target="local", local_port=free_port(), local_home=Path(home))
        emulator = LocalAws(settings)
        try:
            emulator.start(tethered=True)  # gone with this benchmark, however it ends (SIGKILL too)
            yield prepare(settings)
        finally:
            emulator.stop()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # 143 for SIGTERM, as a shell reports a process it terminated


# multiprocessing's helper processes end by themselves when this process exits (they read a pipe from it until
# its end) and ignore SIGTERM: leave them be
MULTIPROCESSING_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _to_stop(process: psutil.Process) -> bool:
    try:
        if process.status() == psutil.STATUS_ZOMBIE:  # it has exited: its parent has not reaped it yet
            return False
        return not any(helper in part for part in process.cmdline() for helper in MULTIPROCESSING_HELPERS)
    except psutil.Error:
        return False


def stop_descendants(grace: float = GRACE_SECONDS) -> list[int]:
    """Terminate every process this one started that still runs (children, their children, ...), SIGKILL
    those still there after ``grace`` seconds; the PIDs found. The tree is read before anything is signalled,
    so grandchildren whose parent dies first are still found."""
    try:
        tree = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    leftovers = [process for process in tree if _to_stop(process)]
    stop_processes(leftovers, timeout=grace)
    return [process.pid for process in leftovers]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process under it (a worker and whatever it started), and reap it."""
    stop_processes(process_tree(pid), terms=0)


def run_benchmark(main: Callable[[], int | None]) -> int | None:
    """Run a benchmark's ``main``: signals unwind it, and nothing it started outlives it."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    # Ctrl-C too, even when started from a script's background job (its shell makes it ignore SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return main()
    finally:
        for signum in (*STOP_SIGNALS, signal.SIGINT):  # the clean-up below is not interrupted
            signal.signal(signum, signal.SIG_IGN)
        stopped = stop_descendants()
        if stopped:
            print(f"stopped {len(stopped)} leftover process(es): {stopped}", file=sys.stderr, flush=True)
