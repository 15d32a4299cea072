"""Flow ``scenario``: the closed loop in virtual time, on the real components, with its service figures.

    python -m flows.scenario [--days 14] [--stores 100] [--products 50] [--plan-every-hours 4]
        [--policy storeops|plain|oracle|workshop|workshop-consolidated|none] [--seed 7]
        [--start 2026-03-23T00:00:00Z] [--history-days 28] [--json]

On a fresh stack of its own, a virtual clock walks hour by hour from ``start`` (a fixed date by
default, never the wall clock, so every policy and every run sees the same customers) through
``days`` days. Before ``start`` the stores have ``history_days`` of sales history in the lake (their
shelves refilled to capacity each morning by an earlier supply), which the planner learns from.
Each hour the simulated stores sell, take in the truck stops that arrived and write their readings
into the lake by event time, and the simulator keeps its own record (lost demand, refused
deliveries, shelf audits) apart; every ``plan_every_hours`` the real planning Lambda runs with
``as_of`` = the virtual now, and the real truck worker drains the queue with departures and ETAs in
virtual time.

Each virtual midnight (UTC) the day before is rolled up and the forecast flow's steps forecast the new day
(``storeops.planning.forecast``), as the ``forecast-daily`` deployment does; every plan of the day joins it.

Policies: ``storeops`` (this planner: forecast, delivery slots, order-up-to; consolidated trucks), ``plain``
(the previous release's plain rule, ``sql/shortages.md``, on the same trucks), ``oracle`` (this planner fed
the simulator's true demand distribution instead of the forecast: the distribution oracle), ``workshop``
(the original workshop's rule: every pair at or below a share of its shelf on every run, one message and one truck each,
nothing remembered), ``workshop-consolidated`` (the same alerts loaded and routed by our trucks),
``none`` (no replenishment). The figures (``storeops.service_level``) come from what happened and
reproduce from the lake; ``demand_digest`` is a digest of the demand every hour, the same for every
policy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import scenario_run_name
from flows.trucks import run_trucks
from storeops.cli import emit_json, iso_time, non_negative_int, positive_int, print_summary, run_cli
from storeops.clock import VirtualClock, format_timestamp, hour_floor
from storeops.costs import CostParameters
from storeops.directory import load_store_directory, publish_store_directory
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loading import Routing
from storeops.exceptions import ValidationFailed, first_validation_error
from storeops.planning.forecast import HISTORY_DAYS
from storeops.planning.models import EXTRA_STOP_COST, ExtraStopCost, PlanningTargets, SafetyFactor
from storeops.planning.rollup import roll_up_hourly_readings
from storeops.service_level import (
    PRODUCT_COLUMNS,
    PROMOTION_COLUMNS,
    READING_COLUMNS,
    STORE_COLUMNS,
    HourlySeries,
    LoopRecord,
    ServiceFigures,
    read_dispatches,
    read_routing,
    split_truth,
)
from storeops.settings import load_settings
from storeops.stores.backfill import backfill, write_by_event_time
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder, random_event_ids
from storeops.stores.readings import reading_columns, take_reading
from storeops.stores.reference import products_table, promotions_table, publish_reference
from storeops.stores.state import Simulation
from storeops.stores.truth import truth_lines, write_truth
from tasks.forecast import find_days_to_roll, forecast_day, roll_days
from tasks.ingest import deliveries_from
from tasks.planning import invoke_planner
from tasks.route_map import publish_route_map, routes_from_dispatches
from tasks.scenario import fresh_stack, publish_service_level, write_true_forecast

Policy = Literal["storeops", "plain", "oracle", "workshop", "workshop-consolidated", "none"]
POLICIES: tuple[str, ...] = ("storeops", "plain", "oracle", "workshop", "workshop-consolidated", "none")
# Every policy's trucks. The simulated chain stocks 50 products a store by default, about one roll cage a
# store-day: routes are bound by the drivers' hours (six or seven stops), never by a 45-cage trailer's floor.
# A planner runs vans sized to such drops: 7.5 t rigids with a tail lift, payload-limited to about 8 cages of
# mixed grocery (2.5 t at roughly 300 kg a cage). The cost per route stays the artic's (CostParameters), which
# overstates what a smaller truck costs. bench.service_level prints the fleet it ran with.
FLEET = Fleet(capacity_cages=8)
ROUTING: dict[str, Routing] = {"workshop": "one_per_request"}  # the original workshop: a truck per alert; else solved
PLANNER_RULE = {
    "storeops": "storeops",
    "plain": "plain",
    "oracle": "storeops",
    "workshop": "workshop",
    "workshop-consolidated": "workshop",
}
FORECAST_SOURCE = {"storeops": "forecast", "oracle": "truth"}  # who writes the day's forecast
STACK_SUFFIX = {
    "storeops": "storeops",
    "plain": "plain",
    "oracle": "oracle",
    "workshop": "workshop",
    "workshop-consolidated": "wsconsol",
    "none": "none",
}
SCENARIO_START = datetime(2026, 3, 23, tzinfo=UTC)  # a Monday: the week before BST and Easter 2026 follow

# The parameters' limits, in the flow's signature (the Run form) and in ScenarioRequest.
Days = Annotated[int, Field(ge=1, le=60)]
Stores = Annotated[int, Field(ge=1, le=2_000)]
Products = Annotated[int, Field(ge=1, le=1_000)]
PlanEveryHours = Annotated[int, Field(ge=1, le=24)]
Seed = Annotated[int, Field(ge=0)]
HistoryDays = Annotated[int, Field(ge=0, le=90)]
LookbackHours = Annotated[float, Field(gt=0, le=24 * 31)]
LeadTimeHours = Annotated[float, Field(ge=0, le=24 * 14)]


class ScenarioRequest(BaseModel):
    """The scenario's parameters, validated."""

    days: Days = 14
    stores: Stores = 100
    products: Products = 50
    plan_every_hours: PlanEveryHours = 4
    policy: Policy = "storeops"
    seed: Seed = 7
    start: AwareDatetime = SCENARIO_START
    history_days: HistoryDays = 28
    lookback_hours: LookbackHours = 168.0
    lead_time_hours: LeadTimeHours = 4.0
    extra_stop_cost: ExtraStopCost = EXTRA_STOP_COST
    safety_factor: SafetyFactor = 1.0

    @classmethod
    def checked(cls, **values: Any) -> ScenarioRequest:
        try:
            request = cls(**values)
        except ValidationError as exc:
            raise ValidationFailed(
                f"invalid {first_validation_error(exc)}", hint="see `python -m flows.scenario --help`"
            ) from None
        if request.start != hour_floor(request.start):
            raise ValidationFailed("start must be a whole hour", hint="for example --start 2026-03-23T00:00:00Z")
        if request.start + timedelta(days=request.days) > datetime.now(UTC):
            raise ValidationFailed(
                f"the scenario would end after now ({format_timestamp(request.start + timedelta(days=request.days))})",
                hint="the planner plans only the past: give an earlier --start or fewer --days",
            )
        return request


class LoopRecorder:
    """What the scenario keeps as it goes, for the figures: the readings, the simulator's record, the
    demand digest and the chart's series (the same rows the lake gets)."""

    def __init__(self) -> None:
        self.readings: list[pd.DataFrame] = []
        self.truth: list[dict[str, Any]] = []
        self.digest = hashlib.sha256()
        self.series = HourlySeries.empty()

    def add(self, frame: pd.DataFrame, truth: bytes, demand: np.ndarray) -> None:
        self.readings.append(frame)
        self.truth += [json.loads(line) for line in truth.splitlines() if line]
        self.digest.update(np.ascontiguousarray(demand, dtype=np.int64).tobytes())

    def record(
        self,
        start: datetime,
        end: datetime,
        dispatches: pd.DataFrame,
        routing: pd.DataFrame,
        catalog_frames: dict[str, pd.DataFrame],
    ) -> LoopRecord:
        lost, refused, audits = split_truth(self.truth)
        readings = (
            pd.concat(self.readings, ignore_index=True) if self.readings else pd.DataFrame(columns=READING_COLUMNS)
        )
        return LoopRecord(
            start=start,
            end=end,
            readings=readings[READING_COLUMNS],
            lost=lost,
            refused=refused,
            audits=audits,
            dispatches=dispatches,
            routing=routing,
            stores=catalog_frames["stores"],
            products=catalog_frames["products"],
            promotions=catalog_frames["promotions"],
        )


@flow(
    name="scenario",
    description="Run the closed loop in virtual time and report the service figures it reached.",
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
    start: AwareDatetime = SCENARIO_START,
    history_days: HistoryDays = 28,
    lookback_hours: LookbackHours = 168.0,
    lead_time_hours: LeadTimeHours = 4.0,
    extra_stop_cost: ExtraStopCost = EXTRA_STOP_COST,
    safety_factor: SafetyFactor = 1.0,
) -> dict[str, Any]:
    """Simulate ``days`` days hour by hour from ``start`` with ``policy`` replenishing; return its figures.

    Args:
        days: Virtual days to simulate (1 to 60).
        stores: Simulated stores (1 to 2,000).
        products: Products per store (1 to 1,000).
        plan_every_hours: Virtual hours between planning runs (1 to 24).
        policy: storeops (this planner), plain (the previous release's rule), oracle (this planner with the
            true demand distribution), workshop (the original rule, a truck per alert), workshop-consolidated
            (its alerts on our trucks) or none (no replenishment).
        seed: The simulation's seed: the same seed, the same customers for every policy.
        start: Virtual start, a whole hour with a time zone (default 2026-03-23T00:00:00Z, never the wall clock).
        history_days: Days of sales history before the start for the planner to learn from (0 to 90).
        lookback_hours: Each plan's window of readings and sales, in hours (more than 0, at most 744).
        lead_time_hours: Lead time assumed for a store before the ledger shows a delivery to it (0 to 336).
        extra_stop_cost: storeops and oracle: what an extra delivery between slots costs (GBP, 0 to 10,000).
        safety_factor: storeops and oracle: scales the forecast's spread in the levels (more than 0, at most 5).
    """
    request = ScenarioRequest.checked(
        days=days,
        stores=stores,
        products=products,
        plan_every_hours=plan_every_hours,
        policy=policy,
        seed=seed,
        start=start,
        history_days=history_days,
        lookback_hours=lookback_hours,
        lead_time_hours=lead_time_hours,
        extra_stop_cost=extra_stop_cost,
        safety_factor=safety_factor,
    )
    started = time.monotonic()
    logger = get_run_logger()
    env = fresh_stack(load_settings(), STACK_SUFFIX[request.policy])
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    catalog = build_catalog(request.stores, request.products, request.seed)
    publish_store_directory(s3, bucket, catalog.directory())
    frames = {
        "stores": catalog.stores[STORE_COLUMNS],
        "products": products_table(catalog)[PRODUCT_COLUMNS],
        "promotions": promotions_table(catalog)[PROMOTION_COLUMNS],
    }
    begin = request.start.astimezone(UTC)
    simulation = Simulation.in_memory(catalog, begin - timedelta(days=request.history_days))
    publish_reference(s3, bucket, simulation)  # the planogram, the promotion plan, the product master
    # this planner reads the window's closed hours from the hourly rollup (the workshop rule reads only the
    # latest readings, raw): the scenario rolls each hour up as it writes it
    rolls_up = PLANNER_RULE.get(request.policy) in ("storeops", "plain")
    targets = PlanningTargets.from_stack(env.resources)
    source = FORECAST_SOURCE.get(request.policy)

    def forecast_the_day(at: datetime) -> None:
        """At a virtual midnight: roll the day before up, and forecast the new day (ours or the oracle's)."""
        if source == "forecast":
            ranges = find_days_to_roll(env.clients, bucket, at.date(), min(HISTORY_DAYS, request.history_days))
            for first, last in ranges:
                roll_days(env.clients, targets, first, last, at)
            forecast_day(env.clients, targets, at.date(), at, HISTORY_DAYS)
        elif source == "truth":
            write_true_forecast(env.clients, targets, simulation, at.date(), at)

    def roll_up(at: datetime, state: Any, columns: dict[str, Any], event_ids: np.ndarray) -> None:
        if rolls_up:  # each chunk of stores is one part of the hour's rollup; the marker follows the last
            frame = _hour_frame(catalog, state, columns, event_ids, at)
            parts = simulation.layout.count
            roll_up_hourly_readings(env.clients, bucket, at, frame, at, part=state.chunk, parts=parts)

    if request.history_days:
        simulation, history = backfill(
            catalog, s3, bucket, request.history_days, end=begin, simulation=simulation, observe=roll_up
        )
        logger.info("history: %d readings over %d days before %s", history.backfill_rows, request.history_days, begin)
    if source and request.history_days:
        forecast_the_day(begin)
    clock = VirtualClock(begin)
    encoder = ReadingEncoder(catalog)
    deliver = deliveries_from(s3, bucket, simulation)
    run_id = uuid.uuid4().hex[:8]
    routing = ROUTING.get(request.policy, "solver")
    recorder = LoopRecorder()
    query_bytes: list[int] = []
    methods: dict[str, int] = {}  # the plans by what decided (forecast, plain or workshop)
    bytes_source = "athena"
    delivered = 0
    for hour in range(1, request.days * 24 + 1):
        at = clock.advance(timedelta(hours=1))
        on_hand, lost = [], []
        for index in range(simulation.layout.count):
            state = simulation.load(index)
            tick, arrivals = take_reading(state, at, deliver)
            simulation.save(state)
            delivered += arrivals.units
            columns = reading_columns(catalog, state, tick)
            event_ids = random_event_ids(tick.on_hand.size)
            batch = encoder.encode(columns, at, event_ids=event_ids, first_store=state.first_store)
            name = f"scenario-{run_id}-{hour:05d}-{index:05d}"
            write_by_event_time(s3, bucket, at, name, batch.data)
            truth = truth_lines(catalog, state, tick, arrivals.refused)
            write_truth(s3, bucket, at, name, truth)
            roll_up(at, state, columns, event_ids)
            recorder.add(
                _hour_frame(catalog, state, columns, event_ids, at)[READING_COLUMNS], truth, tick.units_demanded
            )
            on_hand.append(columns["on_hand"])
            lost.append(tick.units_lost.reshape(-1))
        deliver.complete()
        recorder.series.add(at, np.concatenate(on_hand), np.concatenate(lost))
        if source and at.hour == 0 and hour < request.days * 24:
            forecast_the_day(at)
        if request.policy != "none" and hour % request.plan_every_hours == 0:
            rule = PLANNER_RULE[request.policy]
            event = {
                "as_of": at.isoformat(),
                "policy": rule,
                # the workshop rule reads only each pair's latest reading
                "lookback_hours": request.lookback_hours if rule != "workshop" else float(request.plan_every_hours),
                "lead_time_hours": request.lead_time_hours,
                "review_hours": float(request.plan_every_hours),
                **(
                    {"extra_stop_cost": request.extra_stop_cost, "safety_factor": request.safety_factor}
                    if rule == "storeops"
                    else {}
                ),
            }
            payload = invoke_planner(env.clients, env.resources.planning_function, event)
            query_bytes.append(int(payload["bytes_scanned"]))
            methods[payload["method"]] = methods.get(payload["method"], 0) + 1
            bytes_source = payload["bytes_scanned_source"]
            if payload["requests_sent"]:
                run_trucks(
                    env,
                    FLEET,
                    routing=routing,
                    until_empty=True,
                    window_seconds=2.0,
                    departure=clock,
                    report=False,
                )
        if hour % 24 == 0:
            logger.info("virtual day %d of %d done (%s)", hour // 24, request.days, at.isoformat())
    end = clock.now()
    record = recorder.record(
        begin, end, read_dispatches(s3, bucket, begin, end), read_routing(s3, bucket, begin, end), frames
    )
    figures = ServiceFigures.compute(record, FLEET.capacity_cages, CostParameters(), query_bytes, bytes_source)
    last_day = record.dispatches[record.dispatches["recorded_at"] > format_timestamp(end - timedelta(days=1))]
    publish_route_map(
        f"scenario-{STACK_SUFFIX[request.policy]}-routes",
        routes_from_dispatches(last_day, load_store_directory(s3, bucket)),
        FLEET.capacity_cages,
        f"{request.policy}: the trucks' routes of the last virtual day, to {end:%Y-%m-%d %H:%M} UTC",
    )
    digest = recorder.digest.hexdigest()[:16]
    publish_service_level(request.policy, figures, recorder.series, request.model_dump(mode="json"))
    logger.info("service figures of %s: %s", request.policy, figures.as_dict())
    return {
        **request.model_dump(mode="json"),
        **figures.as_dict(),
        "demand_digest": digest,
        "plans_by_method": methods,
        "units_delivered": delivered,
        "stack": env.settings.stack_name,
        "start": begin.isoformat(),
        "end": end.isoformat(),
        "seconds": round(time.monotonic() - started, 1),
    }


def _store_ids(catalog: Any, state: Any) -> np.ndarray:
    return np.asarray(catalog.stores["store_id"].to_numpy()[state.first_store : state.stop_store])


def _hour_frame(catalog: Any, state: Any, columns: dict[str, Any], event_ids: np.ndarray, at: datetime) -> pd.DataFrame:
    """A chunk's readings just written, as the lake has them: what the figures read back and the rollup rolls."""
    n, n_products = state.shape
    products = catalog.products
    return pd.DataFrame(
        {
            "event_id": np.ascontiguousarray(event_ids).view("S36").ravel().astype(str),
            "store_id": pd.Categorical(np.repeat(_store_ids(catalog, state), n_products)),
            "product_id": pd.Categorical(np.tile(products["product_id"].to_numpy(), n)),
            "product_name": pd.Categorical(np.tile(products["name"].to_numpy(), n)),
            "category": pd.Categorical(np.tile(products["category"].to_numpy(), n)),
            "case_pack": columns["case_pack"],
            "on_hand": columns["on_hand"],
            "price": np.tile(columns["price"], n),
            "on_promotion": np.tile(columns["on_promotion"], n),
            "observed_at": format_timestamp(at),
            "units_sold": columns["units_sold"],
            "units_expired": columns["units_expired"],
            "period_hours": float(columns["period_hours"]),
        }
    )


SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("lost sales (share of demand)", "lost_sales_rate", "{:.2%}"),
    ("promo lost sales", "promo_lost_sales_rate", "{:.2%}"),
    ("audit out of stock", "audit_out_of_stock_rate", "{:.2%}"),
    ("waste (expired / shipped)", "waste_rate", "{:.2%}"),
    ("cost per 1,000 units demanded", "cost_per_1000_units", "£{:,.1f}"),
    ("units demanded", "units_demanded", "{:,}"),
    ("units shipped", "units_shipped", "{:,}"),
    ("units refused (no room)", "units_refused", "{:,}"),
    ("stock held (units)", "stock_held_units", "{:,.0f}"),
    ("cover (days)", "cover_days", "{:.2f}"),
    ("trucks (lower bound)", "trucks", "{:,}"),
    ("truck fill (cages)", "truck_fill", "{:.0%}"),
    ("stops per store-day", "stops_per_store_day", "{:.2f}"),
    ("km per 1,000 units", "km_per_1000_units", "{:,.1f}"),
    ("  baseline on the same deliveries", "baseline_km_per_1000_units", "{:,.1f}"),
    ("late stops", "late_stops_rate", "{:.2%}"),
    ("longest route (h)", "route_hours_max", "{:.2f}"),
    ("planning runs", "planning_runs", "{:,}"),
    ("seconds", "seconds", "{:,.1f}"),
)


def print_service_level(results: list[dict[str, Any]]) -> None:
    """One column per policy."""
    width = max(len(label) for label, _, _ in SUMMARY_ROWS)
    header = "".join(f"{r['policy']:>23}" for r in results)
    print(f"  {'':<{width}}{header}")
    for label, key, fmt in SUMMARY_ROWS:
        cells = []
        for r in results:
            text = "n/a" if r[key] is None else fmt.format(r[key])
            if key == "trucks":
                text += f" ({r['trucks_lower_bound']:,})"
            cells.append(f"{text:>23}")
        print(f"  {label:<{width}}" + "".join(cells))
    parts = sorted({p for r in results for p in r["cost_parts_per_1000_units"]})
    for part in parts:
        print(
            f"  {'  £ ' + part:<{width}}" + "".join(f"{r['cost_parts_per_1000_units'][part]:>23,.1f}" for r in results)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.scenario",
        description="Run the closed loop (stores, planning Lambda, trucks, deliveries) in virtual time and "
        "report the service figures it reached.",
    )
    parser.add_argument("--days", type=positive_int, default=14, help="virtual days (default 14)")
    parser.add_argument("--stores", type=positive_int, default=100, help="number of stores (default 100)")
    parser.add_argument("--products", type=positive_int, default=50, help="products per store (default 50)")
    parser.add_argument("--plan-every-hours", type=positive_int, default=4, help="planning cadence (default 4)")
    parser.add_argument("--policy", choices=POLICIES, default="storeops")
    parser.add_argument("--seed", type=non_negative_int, default=7, help="simulation seed (default 7)")
    parser.add_argument(
        "--start", type=iso_time, default=SCENARIO_START, help="virtual start, a whole hour (default 2026-03-23T00:00Z)"
    )
    parser.add_argument(
        "--history-days", type=non_negative_int, default=28, help="days of sales history before the start (28)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    parameters = {
        "days": args.days,
        "stores": args.stores,
        "products": args.products,
        "plan_every_hours": args.plan_every_hours,
        "policy": args.policy,
        "seed": args.seed,
        "start": args.start,
        "history_days": args.history_days,
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
