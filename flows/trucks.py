"""Flow ``trucks``: drain the dispatch queue window by window, long-running by default.

    python -m flows.trucks [--until-empty] [--max-seconds S] [--window-messages N]
        [--window-seconds S] [--json]

No task run per message or per window: the loop is plain code, so memory and Prefect server
load stay flat however long it runs. Each window is logged with its numbers; each dispatched
load and each dead-lettered message is a Prefect event; artifacts show the latest loads.
SIGTERM, Ctrl-C or a cancellation stop it after the window in hand is recorded or released.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from deployments.environment import Environment, prepare
from flows.console import quiet_expected_tracebacks
from flows.prefect_api import prefect_api
from storeops.cli import emit_json, positive_float, positive_int, print_summary, run_cli
from storeops.clock import Clock, WallClock
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.loop import StopFlag, TruckTotals, run_dispatch_loop, stop_on_signals
from storeops.dispatch.routing import FleetPolicy
from storeops.dispatch.worker import DispatchWorker, LoadSummary, WindowReport
from storeops.settings import load_settings

ARTIFACT_EVERY_SECONDS = 60.0
UNTIL_EMPTY_MAX_FAILURES = 20  # a drain gives up after this many failed windows in a row; the long run never does
RECENT_LOADS = 200


class WindowObserver:
    """Logs, events and artifacts for each window; keeps only a bounded list of recent loads."""

    def __init__(self, worker: DispatchWorker, publish: bool = True) -> None:
        self.worker = worker
        self.publish = publish  # events and artifacts (a scenario only logs)
        self.logger = get_run_logger()
        self.recent: deque[LoadSummary] = deque(maxlen=RECENT_LOADS)
        self.last_artifact = 0.0

    def __call__(self, report: WindowReport) -> None:
        if report.received == 0:
            return
        depth = self.worker.queue_depth()
        exceptional = {
            name: getattr(report, name)
            for name in (
                "taken_over",
                "repaired",
                "recycled",
                "fenced_windows",
                "unresolved",
                "delete_failures",
                "visibility_failures",
                "mark_failures",
                "release_failures",
            )
            if getattr(report, name)
        }
        self.logger.info(
            "window %s: received %d, dispatched %d on %d trucks (lower bound %d, %d units), dead-lettered %d, "
            "duplicates %d, held by other windows %d%s; queue depth %d, oldest message %.0f s; %.2f s",
            report.window_id,
            report.received,
            report.dispatched,
            report.trucks,
            report.lower_bound_trucks,
            report.units,
            report.dead_lettered,
            report.duplicates_skipped,
            report.held_elsewhere,
            f", {exceptional}" if exceptional else "",
            depth,
            report.oldest_age_s,
            report.seconds,
        )
        if not self.publish:
            return
        for load in report.loads:
            emit_event(
                event="storeops.dispatch.load",
                resource={"prefect.resource.id": f"storeops.load.{load.load_id}", "storeops.region": load.region},
                payload={
                    "truck_id": load.truck_id,
                    "stops": load.stops,
                    "units": load.units,
                    "shortages": load.shortages,
                    "route": load.route,
                },
            )
        for message_id, reason in report.dead_letter_reasons.items():
            emit_event(
                event="storeops.dispatch.dead_lettered",
                resource={"prefect.resource.id": f"storeops.message.{message_id}"},
                payload={"reason": reason},
            )
        self.recent.extend(report.loads)
        if report.loads and time.monotonic() - self.last_artifact >= ARTIFACT_EVERY_SECONDS:
            self.publish_loads()

    def publish_loads(self) -> None:
        if not self.recent:
            return
        create_table_artifact(
            key="truck-loads",
            table=[
                {
                    "load": x.load_id,
                    "truck": x.truck_id,
                    "region": x.region,
                    "stops": x.stops,
                    "units": x.units,
                    "shortages": x.shortages,
                    "km": x.distance_km,
                    "route": x.route,
                }
                for x in self.recent
            ],
            description=f"The latest {len(self.recent)} truck loads dispatched",
        )
        self.last_artifact = time.monotonic()


def _publish_summary(totals: TruckTotals) -> None:
    ratio = f"{totals.trucks / totals.lower_bound_trucks:.2f}" if totals.lower_bound_trucks else "n/a"
    create_markdown_artifact(
        key="truck-summary",
        markdown=(
            f"## Truck dispatch run\n\n| | |\n|---|---|\n"
            f"| messages received | {totals.messages_received} |\n| shortages dispatched | {totals.dispatched} |\n"
            f"| trucks | {totals.trucks} (lower bound {totals.lower_bound_trucks}, ratio {ratio}) |\n"
            f"| units shipped | {totals.units} |\n| duplicates skipped | {totals.duplicates_skipped} |\n"
            f"| dead-lettered | {totals.dead_lettered} |\n| transient AWS errors | {totals.transient_errors} |\n"
            f"| taken over from crashed windows | {totals.taken_over} |\n| windows fenced | {totals.fenced_windows} |\n"
            f"| worn messages replaced | {totals.recycled} |\n| held by other windows | {totals.held_elsewhere} |\n"
            f"| windows | {totals.windows} |\n| seconds | {totals.seconds} |\n| stopped by | {totals.stopped_by} |\n"
        ),
    )


def run_trucks(
    env: Environment,
    fleet: FleetPolicy,
    *,
    until_empty: bool = False,
    max_seconds: float | None = None,
    window_messages: int = 500,
    window_seconds: float = 10.0,
    departure: Clock | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """The truck worker over ``env``'s stack: the trucks flow's body, also what a scenario drains with.

    ``departure`` is the clock trucks leave by (default the wall clock; a scenario's virtual one);
    ``report`` adds an event per load and the artifacts (a scenario only logs).
    """
    res, c = env.resources, env.clients
    sqs = c.client("sqs", read_timeout=30)
    config = WorkerConfig(
        queue_url=res.dispatch_queue_url,
        dead_letter_queue_url=res.dead_letter_queue_url,
        bucket=res.data_lake_bucket,
        claims_table=res.claims_table,
        window_messages=window_messages,
        window_seconds=window_seconds,
        policy=fleet,
    ).for_queue(sqs)
    stop = StopFlag()
    worker = DispatchWorker(
        sqs,
        c.client("dynamodb"),
        c.client("s3"),
        config,
        business_clock=(departure or WallClock()).now,
        should_stop=lambda: stop.requested,
    )
    observer = WindowObserver(worker, publish=report)
    get_run_logger().info("truck worker %s started on %s", config.worker_id, res.dispatch_queue_url)
    with stop_on_signals(stop):
        totals = run_dispatch_loop(
            worker,
            stop,
            until_empty=until_empty,
            max_seconds=max_seconds,
            observe=observer,
            max_consecutive_failures=UNTIL_EMPTY_MAX_FAILURES if until_empty else None,
        )
    if report:
        observer.publish_loads()
        _publish_summary(totals)
    result = totals.as_dict()
    if faults := c.injected_faults():  # only when STOREOPS_FAULT_INJECTION is set (drills, benchmarks)
        result["injected_faults"] = faults
    get_run_logger().info("truck worker %s stopped (%s): %s", config.worker_id, totals.stopped_by, result)
    return result


@flow(name="trucks", description="Drain the dispatch queue into truck loads, exactly once per shortage.")
def trucks(
    until_empty: bool = False,
    max_seconds: float | None = None,
    window_messages: int = 500,
    window_seconds: float = 10.0,
    capacity_units: int = 4000,
    max_stops: int = 8,
    speed_kmh: float = 50.0,
    minutes_per_stop: float = 20.0,
) -> dict[str, Any]:
    """Run dispatch windows until stopped (or, with ``until_empty``, until the queue is empty)."""
    return run_trucks(
        prepare(load_settings()),
        FleetPolicy(capacity_units, max_stops, speed_kmh, minutes_per_stop),
        until_empty=until_empty,
        max_seconds=max_seconds,
        window_messages=window_messages,
        window_seconds=window_seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.trucks",
        description="Drain the dispatch queue into truck loads (runs until stopped unless --until-empty).",
    )
    parser.add_argument("--until-empty", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--max-seconds", type=positive_float, help="stop after this many seconds")
    parser.add_argument("--window-messages", type=positive_int, default=500, help="messages per window (500)")
    parser.add_argument("--window-seconds", type=positive_float, default=10.0, help="seconds per window (10)")
    parser.add_argument("--capacity-units", type=positive_int, default=4000, help="truck capacity in units (4000)")
    parser.add_argument("--max-stops", type=positive_int, default=8, help="stops per truck (8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    load_settings()
    quiet_expected_tracebacks()
    with prefect_api():
        totals = trucks(
            until_empty=args.until_empty,
            max_seconds=args.max_seconds,
            window_messages=args.window_messages,
            window_seconds=args.window_seconds,
            capacity_units=args.capacity_units,
            max_stops=args.max_stops,
        )
    print_summary(
        f"trucks: stopped by {totals['stopped_by']}",
        [
            ("messages received", totals["messages_received"]),
            ("shortages dispatched", totals["dispatched"]),
            ("trucks", totals["trucks"]),
            ("units shipped", totals["units"]),
            ("duplicates skipped", totals["duplicates_skipped"]),
            ("dead-lettered", totals["dead_lettered"]),
            ("seconds", totals["seconds"]),
        ],
    )
    if args.json:
        emit_json(totals)
    return 0


if __name__ == "__main__":
    run_cli(main)
