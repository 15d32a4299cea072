"""The dispatch loop keeps running through transient AWS errors, with bounded jittered backoff."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from storeops.dispatch.loop import StopFlag, backoff_seconds, run_dispatch_loop
from storeops.dispatch.worker import WindowReport


class FakeWorker:
    """Fails ``failures`` windows with a throttling error, then serves ``windows`` reports."""

    def __init__(self, failures: int, windows: list[int]) -> None:
        self.failures = failures
        self.windows = list(windows)

    def gather(self, until_empty: bool = False) -> list[str]:
        return ["m1", "m2"]

    def process(self, messages: list[str]) -> WindowReport:
        if self.failures:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "ReceiveMessage")
        received = self.windows.pop(0) if self.windows else 0
        return WindowReport(received=received, dispatched=received)

    def queue_is_empty(self) -> bool:
        return not self.windows


def test_transient_errors_back_off_and_the_loop_keeps_running() -> None:
    sleeps: list[float] = []
    worker = FakeWorker(failures=3, windows=[5, 7, 0])
    totals = run_dispatch_loop(worker, StopFlag(), until_empty=True, sleep=sleeps.append)  # type: ignore[arg-type]
    assert totals.dispatched == 12
    assert totals.transient_errors == 3
    assert len(sleeps) == 3
    assert all(0 <= s <= 30 for s in sleeps)
    assert totals.stopped_by == "queue empty"
    assert "ThrottlingException" in totals.last_errors[-1]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff_seconds(n, base=0.5, cap=4, jitter=lambda: 1.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff_seconds(3, jitter=lambda: 0.0) == 0.0


def test_persistent_failure_is_raised_after_the_bound() -> None:
    worker = FakeWorker(failures=100, windows=[])
    with pytest.raises(ClientError):
        run_dispatch_loop(worker, StopFlag(), sleep=lambda _: None, max_consecutive_failures=4)  # type: ignore[arg-type]


def test_without_a_bound_the_loop_outlasts_any_outage_and_a_failing_observer() -> None:
    sleeps: list[float] = []
    worker = FakeWorker(failures=500, windows=[4, 0])

    def broken_observer(report: WindowReport) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "GetQueueAttributes")

    totals = run_dispatch_loop(worker, StopFlag(), until_empty=True, observe=broken_observer, sleep=sleeps.append)  # type: ignore[arg-type]
    assert totals.transient_errors == 500
    assert max(sleeps) <= 30
    assert totals.dispatched == 4
    assert totals.observer_errors == 2
    assert totals.stopped_by == "queue empty"


def test_a_stop_request_ends_the_loop_after_the_window_in_hand() -> None:
    stop = StopFlag()
    worker = FakeWorker(failures=0, windows=[3, 3, 3, 3])
    seen: list[int] = []

    def observe(report: WindowReport) -> None:
        seen.append(report.received)
        if len(seen) == 2:
            stop.request("SIGTERM")

    totals = run_dispatch_loop(worker, stop, observe=observe)  # type: ignore[arg-type]
    assert seen == [3, 3]
    assert totals.stopped_by == "SIGTERM"
