"""Flow ``scenario``: the closed loop in virtual time, on the real components, with its service level.

    python -m flows.scenario [--days 14] [--stores 100] [--products 50] [--plan-every-hours 4]
        [--policy storeops|workshop|none] [--seed 7] [--json]

On a fresh stack of its own (``<stack>-<policy>``), a virtual clock walks hour by hour through
the last ``days`` days: each hour the simulated stores sell (the same demand for every policy
and seed), take in the truck stops that arrived, and write their readings into the lake by
event time (as backfill does); every ``plan_every_hours`` the real planning Lambda runs with
``as_of`` = the virtual now, and the real truck worker drains the queue with departures and
ETAs in virtual time. Policies: ``storeops`` (this planner, consolidated trucks), ``workshop``
(the original rule: every pair at or below its reorder point on every run, one message and one
truck each, nothing excluded), ``none`` (no replenishment). It reports the service level
(``storeops.service_level``), computed from what happened and reproducible from the lake.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from pydantic import BaseModel, Field, ValidationError

from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import scenario_run_name
from flows.trucks import run_trucks
from storeops.cli import emit_json, positive_int, print_summary, run_cli
from storeops.clock import VirtualClock, WallClock, hour_floor
from storeops.directory import publish_store_directory
from storeops.dispatch.routing import FleetPolicy
from storeops.exceptions import ValidationFailed, first_validation_error
from storeops.service_level import HourlySeries, ServiceLevel, read_lake
from storeops.settings import load_settings
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder
from storeops.stores.ingest import Simulation, reading_columns, take_reading, write_by_event_time
from tasks.ingest import deliveries_from
from tasks.planning import invoke_planner
from tasks.scenario import fresh_stack, publish_service_level

Policy = Literal["storeops", "workshop", "none"]
FLEET = {
    "storeops": FleetPolicy(),
    "workshop": FleetPolicy(consolidate=False),  # one truck per alert
    "none": FleetPolicy(),
}


# The parameters' limits, in the flow's signature (the Run form) and in ScenarioRequest.
Days = Annotated[int, Field(ge=1, le=60)]
Stores = Annotated[int, Field(ge=1, le=2_000)]
Products = Annotated[int, Field(ge=1, le=1_000)]
PlanEveryHours = Annotated[int, Field(ge=1, le=24)]
Seed = Annotated[int, Field(ge=0)]
LookbackHours = Annotated[float, Field(gt=0, le=24 * 7)]
LeadTimeHours = Annotated[float, Field(ge=0, le=24 * 7)]


class ScenarioRequest(BaseModel):
    """The scenario's parameters, validated."""

    days: Days = 14
    stores: Stores = 100
    products: Products = 50
    plan_every_hours: PlanEveryHours = 4
    policy: Policy = "storeops"
    seed: Seed = 7
    lookback_hours: LookbackHours = 24.0
    lead_time_hours: LeadTimeHours = 24.0

    @classmethod
    def checked(cls, **values: Any) -> ScenarioRequest:
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ValidationFailed(
                f"invalid {first_validation_error(exc)}", hint="see `python -m flows.scenario --help`"
            ) from None


@flow(
    name="scenario",
    description="Run the closed loop in virtual time and report the service level it reached.",
    flow_run_name=scenario_run_name,
)
@fail_in_one_line
def scenario(
    days: Days = 14,
    stores: Stores = 100,
    products: Products = 50,
    plan_every_hours: PlanEveryHours = 4,
    policy: Policy = "storeops",
    seed: Seed = 7,
    lookback_hours: LookbackHours = 24.0,
    lead_time_hours: LeadTimeHours = 24.0,
) -> dict[str, Any]:
    """Simulate ``days`` days hour by hour with ``policy`` replenishing; return its service level.

    Args:
        days: Virtual days to simulate, ending now (1 to 60).
        stores: Simulated stores (1 to 2,000).
        products: Products per store (1 to 1,000).
        plan_every_hours: Virtual hours between planning runs (1 to 24).
        policy: storeops (this planner), workshop (the original rule) or none (no replenishment).
        seed: The simulation's seed: the same seed, the same customers for every policy.
        lookback_hours: Each plan's window of readings and sales, in hours (more than 0, at most 168).
        lead_time_hours: A product with fewer hours of cover is at risk (0 to 168).
    """
    request = ScenarioRequest.checked(
        days=days,
        stores=stores,
        products=products,
        plan_every_hours=plan_every_hours,
        policy=policy,
        seed=seed,
        lookback_hours=lookback_hours,
        lead_time_hours=lead_time_hours,
    )
    started = time.monotonic()
    logger = get_run_logger()
    env = fresh_stack(load_settings(), request.policy)
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    catalog = build_catalog(request.stores, request.products, request.seed)
    publish_store_directory(s3, bucket, catalog.directory())
    start = hour_floor(WallClock().now()) - timedelta(days=request.days)  # the planner refuses the future
    clock = VirtualClock(start)
    # Every store reads each virtual hour before the plan, so the chunks stay in memory (the readings
    # kept for the figures are of that size anyway); the same chunks and demand as a live run.
    simulation = Simulation.in_memory(catalog, start)
    encoder = ReadingEncoder(catalog)
    deliver = deliveries_from(s3, bucket, simulation)
    run_id = uuid.uuid4().hex[:8]
    fleet = FLEET[request.policy]
    frames: list[pd.DataFrame] = []
    series = HourlySeries.empty()
    query_bytes: list[int] = []
    bytes_source = "athena"
    delivered = 0
    for hour in range(1, request.days * 24 + 1):
        at = clock.advance(timedelta(hours=1))
        on_hand, lost = [], []
        for index in range(simulation.layout.count):
            state = simulation.load(index)
            tick, units = take_reading(state, at, deliver)
            simulation.save(state)
            delivered += units
            columns = reading_columns(catalog, state, tick)
            batch = encoder.encode(columns, at, first_store=state.first_store)
            write_by_event_time(s3, bucket, at, f"scenario-{run_id}-{hour:05d}-{index:05d}", batch.data)
            stores_index, products_index = np.divmod(np.arange(tick.on_hand.size), catalog.shape[1])
            frames.append(
                pd.DataFrame(
                    {
                        "store_id": stores_index + state.first_store,
                        "product_id": products_index,
                        "observed_at": at,
                        "on_hand": columns["on_hand"],
                        "units_sold": columns["units_sold"],
                        "units_lost": columns["units_lost"],
                        "period_hours": tick.period_hours,
                    }
                )
            )
            on_hand.append(columns["on_hand"])
            lost.append(columns["units_lost"])
        deliver.complete()
        series.add(at, np.concatenate(on_hand), np.concatenate(lost))
        if request.policy != "none" and hour % request.plan_every_hours == 0:
            event = {
                "as_of": at.isoformat(),
                "policy": request.policy,
                "lookback_hours": request.lookback_hours,
                "lead_time_hours": request.lead_time_hours,
            }
            payload = invoke_planner(env.clients, env.resources.planning_function, event)
            query_bytes.append(int(payload["bytes_scanned"]))
            bytes_source = payload["bytes_scanned_source"]
            if payload["requests_sent"]:
                run_trucks(env, fleet, until_empty=True, window_seconds=2.0, departure=clock, report=False)
        if hour % 24 == 0:
            logger.info("virtual day %d of %d done (%s)", hour // 24, request.days, at.isoformat())
    _, dispatches = read_lake(s3, bucket, start, clock.now())
    figures = ServiceLevel.from_frames(
        pd.concat(frames, ignore_index=True),
        dispatches,
        request.days,
        fleet.capacity_units,
        query_bytes,
        bytes_source,
    )
    publish_service_level(request.policy, figures, series, request.model_dump())
    logger.info("service level of %s: %s", request.policy, figures.as_dict())
    return {
        **request.model_dump(),
        **figures.as_dict(),
        "units_delivered": delivered,
        "stack": env.settings.stack_name,
        "start": start.isoformat(),
        "end": clock.now().isoformat(),
        "seconds": round(time.monotonic() - started, 1),
    }


def print_service_level(results: list[dict[str, Any]]) -> None:
    """One column per policy."""
    rows = [
        ("out of stock", "out_of_stock_rate", "{:.2%}"),
        ("lost sales", "lost_sales_rate", "{:.2%}"),
        ("units shipped", "units_shipped", "{:,}"),
        ("trucks", "trucks", "{:,}"),
        ("trucks per day", "trucks_per_day", "{:,.1f}"),
        ("mean truck fill", "mean_truck_fill", "{:.0%}"),
        ("trucks per 1,000 units", "trucks_per_1000_units", "{:.2f}"),
        ("average days of cover", "average_days_of_cover", "{:.2f}"),
        ("planning runs", "planning_runs", "{:,}"),
        ("Athena bytes scanned", "athena_bytes_scanned", "{:,}"),
        ("Athena cost", "athena_cost_usd", "${:.4f}"),
        ("seconds", "seconds", "{:,.1f}"),
    ]
    if any(r["athena_bytes_source"] != "athena" for r in results):
        estimate = " (estimate)"
        rows = [(label + (estimate if key == "athena_bytes_scanned" else ""), key, fmt) for label, key, fmt in rows]
    width = max(len(label) for label, _, _ in rows)
    header = "".join(f"{r['policy']:>16}" for r in results)
    print(f"  {'':<{width}}{header}")
    for label, key, fmt in rows:
        print(f"  {label:<{width}}" + "".join(f"{fmt.format(r[key]):>16}" for r in results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.scenario",
        description="Run the closed loop (stores, planning Lambda, trucks, deliveries) in virtual time and "
        "report the service level it reached.",
    )
    parser.add_argument("--days", type=positive_int, default=14, help="virtual days (default 14)")
    parser.add_argument("--stores", type=positive_int, default=100, help="number of stores (default 100)")
    parser.add_argument("--products", type=positive_int, default=50, help="products per store (default 50)")
    parser.add_argument("--plan-every-hours", type=positive_int, default=4, help="planning cadence (default 4)")
    parser.add_argument("--policy", choices=["storeops", "workshop", "none"], default="storeops")
    parser.add_argument("--seed", type=positive_int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    parameters = {
        "days": args.days,
        "stores": args.stores,
        "products": args.products,
        "plan_every_hours": args.plan_every_hours,
        "policy": args.policy,
        "seed": args.seed,
    }
    ScenarioRequest.checked(**parameters)
    settings = load_settings()
    quiet_expected_tracebacks()
    with prefect_api(settings.local_home):
        result = scenario(**parameters)
    print_summary(
        f"scenario: {args.policy}, {args.days} virtual days, {args.stores} stores x {args.products} products",
        [("stack", result["stack"]), ("virtual time", f"{result['start']} to {result['end']}")],
    )
    print_service_level([result])
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    run_cli(main)
