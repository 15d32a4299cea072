"""Flow ``trucks``: drain the dispatch queue window by window, long-running by default.

    python -m flows.trucks [--until-empty] [--max-seconds S] [--window-messages N]
        [--window-seconds S] [--capacity-cages N] [--trucks-per-depot N] [--json]

No task run per message or per window: the loop is plain code, so memory and Prefect server
load stay flat however long it runs. Each window is logged with its numbers; each dispatched
load and each dead-lettered message is a Prefect event; artifacts show the latest loads.
SIGTERM, Ctrl-C or a cancellation stop it after the window in hand is recorded or released.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows.cli import FlowCli, Table
from flows.failures import fail_in_one_line
from flows.run_names import trucks_run_name
from storeops.directory import DEPOTS
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loop import TruckTotals
from storeops.parameters import (
    WINDOW_MESSAGES,
    WINDOW_SECONDS,
    MaxSeconds,
    UntilEmpty,
    WindowMessages,
    WindowSeconds,
)
from tasks.environment import load_environment
from tasks.trucks import run_trucks, summary_rows

# The fleet's parameters (their defaults are the Fleet's, storeops/dispatch/fleet.py).
CapacityCages = Annotated[
    int,
    Field(ge=1, le=100, description="Roll cages a truck carries (45: an articulated trailer; about 22 for a rigid)."),
]
MaxDutyHours = Annotated[
    float,
    Field(
        gt=0, le=24, description="A route's duty, depot to depot, including the 45 min break (9 h: EU drivers' hours)."
    ),
]
SpeedKmh = Annotated[float, Field(gt=0, le=200, description="Average road speed, km/h.")]
MinutesPerStop = Annotated[float, Field(ge=0, le=600, description="Time at a store before unloading, minutes.")]
MinutesPerCage = Annotated[float, Field(ge=0, le=60, description="Unloading time per roll cage, minutes.")]
TrucksPerDepot = Annotated[
    int | None,
    Field(
        ge=0,
        le=10_000,
        description="Trucks each depot has for one dispatch window (not counted across windows); empty means as "
        "many as the orders need.",
    ),
]


@flow(
    name="trucks",
    description="Drain the dispatch queue into truck loads, exactly once per shortage.",
    flow_run_name=trucks_run_name,
)
@fail_in_one_line
def trucks(
    until_empty: UntilEmpty = False,
    max_seconds: MaxSeconds = None,
    window_messages: WindowMessages = WINDOW_MESSAGES,
    window_seconds: WindowSeconds = WINDOW_SECONDS,
    capacity_cages: CapacityCages = Fleet.capacity_cages,
    max_duty_hours: MaxDutyHours = Fleet.max_duty_hours,
    speed_kmh: SpeedKmh = Fleet.speed_kmh,
    minutes_per_stop: MinutesPerStop = Fleet.minutes_per_stop,
    minutes_per_cage: MinutesPerCage = Fleet.minutes_per_cage,
    trucks_per_depot: TrucksPerDepot = None,
) -> dict[str, Any]:
    """Run dispatch windows until stopped (or, with ``until_empty``, until the queue is empty)."""
    fleet = Fleet(
        capacity_cages=capacity_cages,
        max_duty_hours=max_duty_hours,
        speed_kmh=speed_kmh,
        minutes_per_stop=minutes_per_stop,
        minutes_per_cage=minutes_per_cage,
        trucks_at_depot={} if trucks_per_depot is None else dict.fromkeys(DEPOTS, trucks_per_depot),
    )
    return run_trucks(
        load_environment(),
        fleet,
        until_empty=until_empty,
        max_seconds=max_seconds,
        window_messages=window_messages,
        window_seconds=window_seconds,
    )


def _tables(result: dict[str, Any]) -> list[Table]:
    totals = TruckTotals(**{f.name: result[f.name] for f in fields(TruckTotals) if f.name in result})
    rows = summary_rows(totals, f"stopped by {totals.stopped_by}", totals.seconds, Fleet.capacity_cages)
    return [Table("trucks", [{"": label, "value": value} for label, value in rows])]


CLI = FlowCli(trucks, "python -m flows.trucks", _tables)

if __name__ == "__main__":
    from deployments.cli import run

    run(CLI)
