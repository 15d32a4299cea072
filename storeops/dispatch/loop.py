"""The long-running dispatch loop: windows until stopped, with bounded backoff on AWS errors.

Memory stays flat: only counters accumulate. A stop request (SIGTERM, Ctrl-C, a Prefect
cancellation) is honoured between windows: the window in hand is finished (its messages
recorded and deleted, or released with visibility 0) before the loop returns.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from botocore.exceptions import BotoCoreError, ClientError

from storeops.dispatch.worker import DispatchCounts, DispatchWorker, WindowReport
from storeops.exceptions import StoreOpsError
from storeops.retry import full_jitter_delay

logger = logging.getLogger(__name__)
DRAIN_POLL_SECONDS = 1.0


class StopFlag:
    """Set by a signal or a caller; checked between receives and windows."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once when a stop is requested."""
        self._event.wait(seconds)


@contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """First SIGTERM/SIGINT asks for a clean stop; a second one stops at once (default handling)."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, _frame: FrameType | None) -> None:
        if flag.requested:  # second signal: give up on the clean stop
            signal.signal(signum, previous[signal.Signals(signum)] or signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        flag.request(signal.Signals(signum).name)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class TruckTotals(DispatchCounts):
    """A run's totals: the windows' counts summed, plus what only the loop sees."""

    windows: int = 0
    messages_received: int = 0
    trucks: int = 0
    transient_errors: int = 0
    observer_errors: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    last_errors: list[str] = field(default_factory=list)

    def add(self, report: WindowReport) -> None:
        self.windows += 1
        self.messages_received += report.received
        self.trucks += report.trucks
        self.add_counts(report)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "last_errors"} | {"last_errors": self.last_errors[-5:]}


def backoff_seconds(
    failures: int, base: float = 0.5, cap: float = 30.0, jitter: Callable[[], float] = random.random
) -> float:
    """Full-jitter exponential backoff after ``failures`` consecutive failures."""
    return full_jitter_delay(failures, base, cap, jitter)


def run_dispatch_loop(
    worker: DispatchWorker,
    stop: StopFlag,
    *,
    until_empty: bool = False,
    max_seconds: float | None = None,
    observe: Callable[[WindowReport], None] = lambda _: None,
    sleep: Callable[[float], None] | None = None,
    max_consecutive_failures: int | None = None,
    totals: TruckTotals | None = None,
) -> TruckTotals:
    """Process windows until stopped, out of time, or (``until_empty``) the queue holds nothing at all.

    An AWS error abandons the window (the worker sends its messages back in time) and the loop
    backs off; it keeps going however long the errors last, unless ``max_consecutive_failures``
    bounds them. An observer that fails is logged and counted, never fatal. ``totals``, when given,
    is filled as windows complete (an observer may read it while the loop runs).
    """
    totals = totals if totals is not None else TruckTotals()
    started = time.monotonic()
    failures = 0
    pause = sleep or stop.wait
    while not stop.requested:
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            totals.stopped_by = "max_seconds"
            break
        try:
            report = worker.process(worker.gather(until_empty=until_empty))
            drained = until_empty and report.received == 0 and worker.queue_is_empty()
        except (ClientError, BotoCoreError, StoreOpsError) as exc:
            failures += 1
            totals.transient_errors += 1
            totals.last_errors = [*totals.last_errors[-4:], str(exc).splitlines()[0][:300]]
            if max_consecutive_failures is not None and failures >= max_consecutive_failures:
                raise
            delay = backoff_seconds(failures)
            logger.warning(
                "window failed (%d in a row): %s; backing off %.1f s", failures, totals.last_errors[-1], delay
            )
            pause(delay)
            continue
        failures = 0
        totals.add(report)
        try:
            observe(report)
        except Exception as exc:  # reporting must never stop the trucks
            totals.observer_errors += 1
            logger.warning("reporting window %s failed: %s", report.window_id, exc)
        if drained:
            totals.stopped_by = "queue empty"
            break
        if until_empty and report.received == 0:
            pause(DRAIN_POLL_SECONDS)  # messages in flight elsewhere or delayed: look again shortly
    if stop.requested:
        totals.stopped_by = stop.reason or "stop requested"
    totals.seconds = round(time.monotonic() - started, 3)
    return totals
