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

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger

from flows.cli import FlowCli, Table
from flows.failures import fail_in_one_line
from flows.run_names import scenario_run_name
from storeops.clock import VirtualClock, format_timestamp, hour_floor
from storeops.costs import CostParameters
from storeops.directory import load_store_directory, publish_store_directory
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loading import Routing
from storeops.exceptions import ValidationFailed
from storeops.parameters import (
    EXTRA_STOP_COST,
    LEAD_TIME_HOURS,
    LOOKBACK_HOURS,
    PLAN_EVERY_HOURS,
    PRODUCTS,
    SAFETY_FACTOR,
    SCENARIO_DAYS,
    SCENARIO_HISTORY_DAYS,
    SCENARIO_START,
    SEED,
    STORES,
    Days,
    ExtraStopCost,
    HistoryDays,
    LeadTimeHours,
    LookbackHours,
    PlanEveryHours,
    Products,
    SafetyFactor,
    ScenarioPolicy,
    ScenarioStart,
    Seed,
    Stores,
)
from storeops.planning.forecast import HISTORY_DAYS
from storeops.planning.models import PlanningTargets
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
from tasks.scenario import STACK_SUFFIX, publish_service_level, scenario_environment, write_true_forecast
from tasks.trucks import run_trucks

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


def check_scenario(start: datetime = SCENARIO_START, days: int = SCENARIO_DAYS, **_: Any) -> None:
    """What the signature's limits cannot say: a whole hour, and an end in the past (the planner plans the past)."""
    if start != hour_floor(start):
        raise ValidationFailed("start must be a whole hour", hint="for example --start 2026-03-23T00:00:00Z")
    if start + timedelta(days=days) > datetime.now(UTC):
        raise ValidationFailed(
            f"the scenario would end after now ({format_timestamp(start + timedelta(days=days))})",
            hint="the planner plans only the past: give an earlier --start or fewer --days",
        )


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


class _ScenarioRun:
    """One scenario's state as it walks hour by hour: the stack, the simulated chain and what it records."""

    def __init__(self, parameters: dict[str, Any], env: Any, start: datetime) -> None:
        self.p = parameters
        self.env = env
        self.policy: str = parameters["policy"]
        self.s3, self.bucket = env.clients.client("s3"), env.resources.data_lake_bucket
        self.catalog = build_catalog(parameters["stores"], parameters["products"], parameters["seed"])
        publish_store_directory(self.s3, self.bucket, self.catalog.directory())
        self.frames = {
            "stores": self.catalog.stores[STORE_COLUMNS],
            "products": products_table(self.catalog)[PRODUCT_COLUMNS],
            "promotions": promotions_table(self.catalog)[PROMOTION_COLUMNS],
        }
        self.begin = start.astimezone(UTC)
        self.history_days: int = parameters["history_days"]
        self.simulation = Simulation.in_memory(self.catalog, self.begin - timedelta(days=self.history_days))
        publish_reference(self.s3, self.bucket, self.simulation)  # the planogram, promotion plan, product master
        # this planner reads the window's closed hours from the hourly rollup (the workshop rule reads only the
        # latest readings, raw): the scenario rolls each hour up as it writes it
        self.rolls_up = PLANNER_RULE.get(self.policy) in ("storeops", "plain")
        self.targets = PlanningTargets.from_stack(env.resources)
        self.source = FORECAST_SOURCE.get(self.policy)
        self.clock = VirtualClock(self.begin)
        self.encoder = ReadingEncoder(self.catalog)
        self.run_id = uuid.uuid4().hex[:8]
        self.recorder = LoopRecorder()
        self.query_bytes: list[int] = []
        self.methods: dict[str, int] = {}  # the plans by what decided (forecast, plain or workshop)
        self.bytes_source = "athena"
        self.delivered = 0

    def forecast_the_day(self, at: datetime) -> None:
        """At a virtual midnight: roll the day before up, and forecast the new day (ours or the oracle's)."""
        if self.source == "forecast":
            ranges = find_days_to_roll(self.env.clients, self.bucket, at.date(), min(HISTORY_DAYS, self.history_days))
            for first, last in ranges:
                roll_days(self.env.clients, self.targets, first, last, at)
            forecast_day(self.env.clients, self.targets, at.date(), at, HISTORY_DAYS)
        elif self.source == "truth":
            write_true_forecast(self.env.clients, self.targets, self.simulation, at.date(), at)

    def roll_up(self, at: datetime, state: Any, columns: dict[str, Any], event_ids: np.ndarray) -> None:
        """Each chunk of stores is one part of the hour's rollup; the marker follows the last."""
        if self.rolls_up:
            frame = _hour_frame(self.catalog, state, columns, event_ids, at)
            parts = self.simulation.layout.count
            roll_up_hourly_readings(self.env.clients, self.bucket, at, frame, at, part=state.chunk, parts=parts)

    def write_history(self, logger: Any) -> None:
        """The weeks of sales before ``start`` the planner learns from, and the first day's forecast."""
        if self.history_days:
            self.simulation, history = backfill(
                self.catalog,
                self.s3,
                self.bucket,
                self.history_days,
                end=self.begin,
                simulation=self.simulation,
                observe=self.roll_up,
            )
            logger.info(
                "history: %d readings over %d days before %s", history.backfill_rows, self.history_days, self.begin
            )
            if self.source:
                self.forecast_the_day(self.begin)

    def simulate_hour(self, hour: int, deliver: Any) -> datetime:
        """Advance the clock an hour: every chunk of stores sells, takes its stops and writes its readings."""
        at = self.clock.advance(timedelta(hours=1))
        on_hand, lost = [], []
        for index in range(self.simulation.layout.count):
            state = self.simulation.load(index)
            tick, arrivals = take_reading(state, at, deliver)
            self.simulation.save(state)
            self.delivered += arrivals.units
            columns = reading_columns(self.catalog, state, tick)
            event_ids = random_event_ids(tick.on_hand.size)
            batch = self.encoder.encode(columns, at, event_ids=event_ids, first_store=state.first_store)
            name = f"scenario-{self.run_id}-{hour:05d}-{index:05d}"
            write_by_event_time(self.s3, self.bucket, at, name, batch.data)
            truth = truth_lines(self.catalog, state, tick, arrivals.refused)
            write_truth(self.s3, self.bucket, at, name, truth)
            self.roll_up(at, state, columns, event_ids)
            frame = _hour_frame(self.catalog, state, columns, event_ids, at)[READING_COLUMNS]
            self.recorder.add(frame, truth, tick.units_demanded)
            on_hand.append(columns["on_hand"])
            lost.append(tick.units_lost.reshape(-1))
        deliver.complete()
        self.recorder.series.add(at, np.concatenate(on_hand), np.concatenate(lost))
        return at

    def plan_and_dispatch(self, at: datetime) -> None:
        """The real planning Lambda at the virtual now, then the real truck worker drains what it sent."""
        rule = PLANNER_RULE[self.policy]
        every = float(self.p["plan_every_hours"])
        event = {
            "as_of": at.isoformat(),
            "policy": rule,
            # the workshop rule reads only each pair's latest reading
            "lookback_hours": self.p["lookback_hours"] if rule != "workshop" else every,
            "lead_time_hours": self.p["lead_time_hours"],
            "review_hours": every,
            **(
                {"extra_stop_cost": self.p["extra_stop_cost"], "safety_factor": self.p["safety_factor"]}
                if rule == "storeops"
                else {}
            ),
        }
        payload = invoke_planner(self.env.clients, self.env.resources.planning_function, event)
        self.query_bytes.append(int(payload["bytes_scanned"]))
        self.methods[payload["method"]] = self.methods.get(payload["method"], 0) + 1
        self.bytes_source = payload["bytes_scanned_source"]
        if payload["requests_sent"]:
            routing = ROUTING.get(self.policy, "solver")
            run_trucks(
                self.env,
                FLEET,
                routing=routing,
                until_empty=True,
                window_seconds=2.0,
                departure=self.clock,
                report=False,
            )

    def figures(self) -> dict[str, Any]:
        """The service figures from what happened, the route map of the last day and the service-level artifact."""
        end = self.clock.now()
        dispatches = read_dispatches(self.s3, self.bucket, self.begin, end)
        routing = read_routing(self.s3, self.bucket, self.begin, end)
        record = self.recorder.record(self.begin, end, dispatches, routing, self.frames)
        figures = ServiceFigures.compute(
            record, FLEET.capacity_cages, CostParameters(), self.query_bytes, self.bytes_source
        )
        last_day = record.dispatches[record.dispatches["recorded_at"] > format_timestamp(end - timedelta(days=1))]
        publish_route_map(
            f"scenario-{STACK_SUFFIX[self.policy]}-routes",
            routes_from_dispatches(last_day, load_store_directory(self.s3, self.bucket)),
            FLEET.capacity_cages,
            f"{self.policy}: the trucks' routes of the last virtual day, to {end:%Y-%m-%d %H:%M} UTC",
        )
        publish_service_level(self.policy, figures, self.recorder.series, self.p)
        return {
            **figures.as_dict(),
            "demand_digest": self.recorder.digest.hexdigest()[:16],
            "plans_by_method": self.methods,
            "units_delivered": self.delivered,
            "stack": self.env.settings.stack_name,
            "start": self.begin.isoformat(),
            "end": end.isoformat(),
        }


@flow(
    name="scenario",
    description="Run the closed loop in virtual time and report the service figures it reached.",
    flow_run_name=scenario_run_name,
)
@fail_in_one_line
def scenario(
    days: Days = SCENARIO_DAYS,
    stores: Stores = STORES,
    products: Products = PRODUCTS,
    plan_every_hours: PlanEveryHours = PLAN_EVERY_HOURS,
    policy: ScenarioPolicy = "storeops",
    seed: Seed = SEED,
    start: ScenarioStart = SCENARIO_START,
    history_days: HistoryDays = SCENARIO_HISTORY_DAYS,
    lookback_hours: LookbackHours = LOOKBACK_HOURS,
    lead_time_hours: LeadTimeHours = LEAD_TIME_HOURS,
    extra_stop_cost: ExtraStopCost = EXTRA_STOP_COST,
    safety_factor: SafetyFactor = SAFETY_FACTOR,
) -> dict[str, Any]:
    """Simulate ``days`` days hour by hour from ``start`` with ``policy`` replenishing; return its figures.

    The stack ``<stack>-<policy>`` must have been made fresh by the caller (``python -m flows.scenario`` does:
    ``deployments/environment.py::set_up_scenario``).
    """
    chosen = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in locals().items()}  # the parameters
    check_scenario(start, days)
    started = time.monotonic()
    logger = get_run_logger()
    run = _ScenarioRun(chosen, scenario_environment(load_settings(), policy), start)
    run.write_history(logger)
    deliver = deliveries_from(run.s3, run.bucket, run.simulation)
    for hour in range(1, days * 24 + 1):
        at = run.simulate_hour(hour, deliver)
        if run.source and at.hour == 0 and hour < days * 24:
            run.forecast_the_day(at)
        if policy != "none" and hour % plan_every_hours == 0:
            run.plan_and_dispatch(at)
        if hour % 24 == 0:
            logger.info("virtual day %d of %d done (%s)", hour // 24, days, at.isoformat())
    figures = run.figures()
    logger.info("service figures of %s: %s", policy, figures)
    return {**chosen, **figures, "seconds": round(time.monotonic() - started, 1)}


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


def _tables(result: dict[str, Any]) -> list[Table]:
    rows = [
        {"": label, "value": "n/a" if result[key] is None else fmt.format(result[key])}
        for label, key, fmt in SUMMARY_ROWS
    ]
    rows += [
        {"": f"  £ {part}", "value": f"{v:,.1f}"} for part, v in sorted(result["cost_parts_per_1000_units"].items())
    ]
    title = (
        f"scenario: {result['policy']}, {result['days']} virtual days, {result['stores']} stores x "
        f"{result['products']} products on stack {result['stack']}, {result['start']} to {result['end']}"
    )
    return [Table(title, rows)]


CLI = FlowCli(scenario, "python -m flows.scenario", _tables, check=check_scenario)

if __name__ == "__main__":
    from deployments.cli import run
    from deployments.environment import set_up_scenario

    run(CLI, set_up_step=lambda settings, parameters: set_up_scenario(settings, parameters["policy"]))
