"""Runs worker threads one AWS call at a time, in an order and with fates a test chooses.

Each worker thread stops before every fake AWS call (``before``) until the test grants it
that call and decides its fate; only one thread runs at a time, so a run is a deterministic
function of the test's choices (which hypothesis draws, and shrinks).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from tests.fakes.aws import Calls, Killed

STEP_TIMEOUT = 20.0  # seconds a granted worker may take to reach its next call (real time)


class Scheduler(Calls):
    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.waiting: dict[str, str] = {}  # worker -> the operation it waits to perform
        self.arrivals: Counter[str] = Counter()
        self.granted: dict[str, str] = {}
        self.gone: set[str] = set()  # finished or killed
        self.killed: set[str] = set()
        self.errors: list[BaseException] = []

    # -- worker side ---------------------------------------------------------------------------
    def before(self, caller: str, operation: str) -> str:
        with self.cv:
            if caller in self.killed:
                raise Killed(caller)
            self.waiting[caller] = operation
            self.arrivals[caller] += 1
            self.cv.notify_all()
            self.cv.wait_for(lambda: caller in self.granted)
            fate = self.granted.pop(caller)
            del self.waiting[caller]
            if fate.startswith("kill"):
                self.killed.add(caller)
            return fate

    def sleeper(self, caller: str) -> Callable[[float], None]:
        """A sleep that takes no time but is a point where the test may switch workers (or kill)."""

        def sleep(_seconds: float) -> None:
            if self.before(caller, "sleep").startswith("kill"):
                raise Killed(caller)

        return sleep

    # -- test side -----------------------------------------------------------------------------
    def start(self, name: str, target: Callable[[], object]) -> None:
        """Run ``target`` in a thread named ``name``; return when it waits for its first call (or ended)."""

        def run() -> None:
            try:
                target()
            except Killed:
                pass
            except BaseException as exc:  # a bug in the worker: the test fails with it
                self.errors.append(exc)
            finally:
                with self.cv:
                    self.gone.add(name)
                    self.cv.notify_all()

        with self.cv:
            self.gone.discard(name)
            self.killed.discard(name)
            seen = self.arrivals[name]
        threading.Thread(target=run, name=name, daemon=True).start()
        self._wait(name, seen)

    def runnable(self) -> list[str]:
        with self.cv:
            return sorted(self.waiting)

    def step(self, name: str, fate: str = "ok") -> None:
        """Let ``name`` perform the call it waits on, with ``fate``; return at its next call or its end."""
        with self.cv:
            assert name in self.waiting, name
            seen = self.arrivals[name]
            self.granted[name] = fate
            self.cv.notify_all()
        self._wait(name, seen)

    def _wait(self, name: str, seen: int) -> None:
        with self.cv:
            arrived = self.cv.wait_for(lambda: self.arrivals[name] > seen or name in self.gone, STEP_TIMEOUT)
        assert arrived, f"worker {name} neither called AWS nor ended within {STEP_TIMEOUT} s"
        if self.errors:
            raise self.errors[0]
