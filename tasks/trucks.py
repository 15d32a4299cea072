"""The truck worker's loop as a flow runs it: logs, events and live artifacts per window (the trucks flow's body,
also what a scenario drains its queue with)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from storeops.clock import Clock, WallClock
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loading import Routing
from storeops.dispatch.loop import StopFlag, TruckTotals, run_dispatch_loop, stop_on_signals
from storeops.dispatch.worker import DispatchWorker, LoadSummary, WindowReport
from storeops.metrics import Heartbeat
from storeops.parameters import WINDOW_MESSAGES, WINDOW_SECONDS
from tasks.artifacts import figure, utc_stamp
from tasks.environment import Environment
from tasks.route_map import MapRoute, publish_route_map

ARTIFACT_EVERY_SECONDS = 30.0  # the run summary, while windows do work
LOADS_EVERY_SECONDS = 120.0  # the loads table (each version is kept: ~720 a day at most, of 100 rows)
ARTIFACT_IDLE_SECONDS = 300.0  # both at least this often when nothing changes ("updated at" moves on)
UNTIL_EMPTY_MAX_FAILURES = 20  # a drain gives up after this many failed windows in a row; the long run never does
RECENT_LOADS = 100


class WindowObserver:
    """Logs, events and live artifacts for each window; keeps only a bounded list of recent loads.

    The run summary (``truck-summary``) is republished every ``ARTIFACT_EVERY_SECONDS`` while
    windows change the totals, the loads table (``truck-loads``) every ``LOADS_EVERY_SECONDS``,
    both every ``ARTIFACT_IDLE_SECONDS`` otherwise and when the run stops. Prefect keeps every
    version, so the cadence bounds what a long run stores. A failure to publish is logged, never
    fatal.
    """

    def __init__(
        self, worker: DispatchWorker, totals: TruckTotals, publish: bool = True, heartbeat: Heartbeat | None = None
    ) -> None:
        self.worker = worker
        self.heartbeat = heartbeat  # TruckRunHeartbeat for the stack's alarm, at most once a minute
        self.totals = totals  # filled by the dispatch loop as windows complete
        self.publish = publish  # events and artifacts (a scenario only logs)
        self.logger = get_run_logger()
        self.recent: deque[LoadSummary] = deque(maxlen=RECENT_LOADS)
        self.loads_seen = 0
        self.started = time.monotonic()
        self.last_artifact = 0.0
        self.last_loads = 0.0
        self.published_windows_with_work = -1
        self.windows_with_work = 0

    def __call__(self, report: WindowReport) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat()  # never raises
        if report.received:
            self.windows_with_work += 1
            self._log(report)
            if self.publish:
                self._emit_events(report)
            self.recent.extend(report.loads)
            self.loads_seen += len(report.loads)
        if self.publish and self._artifacts_due():
            self.publish_artifacts("running")

    def _log(self, report: WindowReport) -> None:
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
            "window %s: received %d messages (%d requests), dispatched %d on %d trucks (lower bound %d; baseline "
            "%d trucks, %.0f km), %d units in %d cages, %.0f km, routed in %.1f s; carried %d, dead-lettered %d, "
            "duplicates %d, held by other windows %d%s; queue depth %d, oldest message %.0f s; %.2f s",
            report.window_id,
            report.received,
            report.requests,
            report.dispatched,
            report.trucks,
            report.lower_bound_trucks,
            report.baseline_trucks,
            report.baseline_km,
            report.units,
            report.cages,
            report.km,
            report.routing_seconds,
            report.carried,
            report.dead_lettered,
            report.duplicates_skipped,
            report.held_elsewhere,
            f", {exceptional}" if exceptional else "",
            depth,
            report.oldest_age_s,
            report.seconds,
        )

    def _emit_events(self, report: WindowReport) -> None:
        for load in report.loads:
            emit_event(
                event="storeops.dispatch.load",
                resource={
                    "prefect.resource.id": f"storeops.load.{load.load_id}",
                    "prefect.resource.name": f"{load.truck_id}: {load.stops} stops, {load.cages} cages",
                    "storeops.region": load.region,
                },
                payload={
                    "truck_id": load.truck_id,
                    "stops": load.stops,
                    "units": load.units,
                    "cages": load.cages,
                    "shortages": load.shortages,
                    "km": load.distance_km,
                    "route_hours": load.route_hours,
                    "route": load.route,
                },
            )
        for message_id, reason in report.dead_letter_reasons.items():
            emit_event(
                event="storeops.dispatch.dead_lettered",
                resource={
                    "prefect.resource.id": f"storeops.message.{message_id}",
                    "prefect.resource.name": f"dead-lettered: {reason[:80]}",
                },
                payload={"message_id": message_id, "reason": reason},
            )

    def _artifacts_due(self) -> bool:
        since = time.monotonic() - self.last_artifact
        changed = self.windows_with_work != self.published_windows_with_work
        return (changed and since >= ARTIFACT_EVERY_SECONDS) or since >= ARTIFACT_IDLE_SECONDS

    def publish_artifacts(self, status: str) -> None:
        """The run summary (and the loads table when due) as they are now; ``status`` is running or
        how it stopped. Never raises: the trucks matter more than their report."""
        final = status != "running"
        try:
            stamp = utc_stamp()
            since_loads = time.monotonic() - self.last_loads
            if final or since_loads >= LOADS_EVERY_SECONDS or self.last_loads == 0.0:
                self._publish_loads(status, stamp)
            create_markdown_artifact(
                key="truck-summary",
                markdown=_summary_markdown(
                    self.totals,
                    status,
                    time.monotonic() - self.started,
                    stamp,
                    self.worker.config.fleet.capacity_cages,
                ),
                description=f"What the truck run has done so far ({status}, updated {stamp})",
            )
        except Exception as exc:  # the API being briefly away must not stop the trucks
            self.logger.warning("publishing the truck artifacts failed: %s", exc)
        self.last_artifact = time.monotonic()
        self.published_windows_with_work = self.windows_with_work

    def _publish_loads(self, status: str, stamp: str) -> None:
        loads = list(self.recent)
        create_table_artifact(
            key="truck-loads",
            table=[
                {
                    "load": x.load_id,
                    "truck": x.truck_id,
                    "region": x.region,
                    "stops": x.stops,
                    "cages": x.cages,
                    "units": figure(x.units),
                    "shortages": x.shortages,
                    "km": figure(x.distance_km, 1),
                    "hours": figure(x.route_hours, 2),
                    "route": x.route,
                }
                for x in reversed(loads)  # newest first
            ]
            or [{"load": "(none yet)"}],
            description=(
                f"The latest {len(loads):,} of {self.loads_seen:,} truck loads dispatched by this run, newest first "
                f"({status}, updated {stamp})"
            ),
        )
        self.last_loads = time.monotonic()
        if loads:
            stores = self.worker.stores
            routes = [
                MapRoute(
                    x.region,
                    tuple((stores[s].lat, stores[s].lon) for s in x.route.split(" > ") if s in stores),
                    x.distance_km,
                    x.cages,
                )
                for x in loads
            ]
            publish_route_map(
                "truck-routes",
                routes,
                self.worker.config.fleet.capacity_cages,
                f"The latest {len(loads):,} truck routes per depot ({status}, updated {stamp})",
            )


def summary_rows(totals: TruckTotals, status: str, seconds: float, capacity_cages: int) -> list[tuple[str, Any]]:
    """The run's figures: the ``truck-summary`` artifact's rows and the CLI's table."""
    ratio = f"{totals.trucks / totals.lower_bound_trucks:.2f}" if totals.lower_bound_trucks else "n/a"
    fill = f"{totals.cages / (totals.trucks * capacity_cages):.0%}" if totals.trucks else "n/a"
    baseline = f"{totals.baseline_trucks:,} trucks, {totals.baseline_km:,.0f} km" if totals.baseline_trucks else "n/a"
    return [
        ("status", status),
        ("messages received", figure(totals.messages_received)),
        ("dispatch requests received", figure(totals.requests)),
        ("shortages dispatched", figure(totals.dispatched)),
        ("trucks", f"{totals.trucks:,} (lower bound {totals.lower_bound_trucks:,}, ratio {ratio})"),
        ("truck fill (cages / capacity)", fill),
        ("km (return legs included)", figure(totals.km, 0)),
        ("first-fit + nearest neighbour on the same deliveries", baseline),
        ("units shipped", figure(totals.units)),
        ("roll cages shipped", figure(totals.cages)),
        ("carried to a later window (no truck could take them)", figure(totals.carried)),
        ("duplicates skipped", figure(totals.duplicates_skipped)),
        ("dead-lettered", figure(totals.dead_lettered)),
        ("transient AWS errors", figure(totals.transient_errors)),
        ("taken over from crashed windows", figure(totals.taken_over)),
        ("windows fenced", figure(totals.fenced_windows)),
        ("worn messages replaced", figure(totals.recycled)),
        ("held by other windows", figure(totals.held_elsewhere)),
        ("windows", figure(totals.windows)),
        ("running for", f"{seconds:,.0f} s"),
    ]


def _summary_markdown(totals: TruckTotals, status: str, seconds: float, stamp: str, capacity_cages: int) -> str:
    rows = summary_rows(totals, status, seconds, capacity_cages)
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"## Truck dispatch run\n\nUpdated {stamp}.\n\n| | |\n|---|---|\n{table}\n"


def run_trucks(
    env: Environment,
    fleet: Fleet,
    *,
    routing: Routing = "solver",
    until_empty: bool = False,
    max_seconds: float | None = None,
    window_messages: int = WINDOW_MESSAGES,
    window_seconds: float = WINDOW_SECONDS,
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
        fleet=fleet,
        routing=routing,
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
    totals = TruckTotals()
    observer = WindowObserver(worker, totals, publish=report, heartbeat=Heartbeat(c, env.settings.stack_name))
    get_run_logger().info("truck worker %s started on %s", config.worker_id, res.dispatch_queue_url)
    if report:
        observer.publish_artifacts("running")
    with stop_on_signals(stop):
        run_dispatch_loop(
            worker,
            stop,
            until_empty=until_empty,
            max_seconds=max_seconds,
            observe=observer,
            max_consecutive_failures=UNTIL_EMPTY_MAX_FAILURES if until_empty else None,
            totals=totals,
        )
    if report:
        observer.publish_artifacts(f"stopped by {totals.stopped_by}")
    result = totals.as_dict()
    if faults := c.injected_faults():  # only when STOREOPS_FAULT_INJECTION is set (drills, benchmarks)
        result["injected_faults"] = faults
    get_run_logger().info("truck worker %s stopped (%s): %s", config.worker_id, totals.stopped_by, result)
    return result
