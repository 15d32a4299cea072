"""Oracle benchmark: how close the planner gets to the best possible, on the same customers.

    python -m bench.oracle [--days 7] [--stores 40] [--products 50] [--seed 7] [--history-days 28]
        [--extra-stop-costs 20,40,80] [--safety-factors 1.0,1.3] [--bound-stores 10] [--bound-products 20]
        [--bound-days 7] [--time-limit 120] [--workers 2] [--json]

On one private emulator, with ``flows.scenario`` (the real loop: stores, the planning Lambda, trucks):

1. **storeops**: this planner as it ships (its forecast, its default knobs), ``--days`` virtual days.
2. **distribution oracle**: the same planner and trucks fed the simulator's true demand distribution
   (the scenario's ``oracle`` policy: the forecast table holds the true daily means, the true
   variance-to-mean ratio and the true hour-of-day shares), on the same customers, once per point of the
   grid of its two knobs (``extra_stop_cost``: when an extra delivery between slots pays, the schedule;
   ``safety_factor``: the spread the levels cover, the service factor); the cheapest point is the oracle.
   ``oracle_cost_ratio`` = storeops's cost per 1,000 units demanded / the oracle's (target <= 1.15).
3. **hindsight lower bound** (``bench.lower_bound``, a MILP solved with HiGHS): on a small instance
   (``--bound-stores`` x ``--bound-products`` x ``--bound-days``) the least cost any policy could have had
   knowing the demand in advance, next to storeops's own cost on a scenario of that instance (the same
   customers, its opening stock read from the lake's first readings), with the scenario's fleet
   (``flows.scenario.FLEET``, the scenario's: roll cages, the catalog's case volumes, the route's time limit).

Costs are ``storeops.costs.CostParameters`` (the figures' own), per 1,000 units demanded. With ``--json``
the last stdout line is one JSON object: ``storeops_cost``, ``oracle_cost``, ``oracle_cost_ratio``,
``lower_bound_cost`` (per 1,000 units of the small instance's demand), ``storeops_bound_instance_cost``, the
grid and the figures of every run.
"""

from __future__ import annotations

import argparse
import contextvars
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import numpy as np

from bench.harness import bench_environment, run_benchmark
from bench.lower_bound import LowerBound, daily_demand, hindsight_lower_bound, instance_from_catalog
from deployments.environment import prepare, set_up_scenario
from deployments.prefect_api import prefect_api
from flows.scenario import FLEET, scenario
from storeops.cli import OneLineArgumentParser, emit_json, non_negative_int, positive_int, print_summary
from storeops.clock import parse_timestamp
from storeops.costs import CostParameters
from storeops.parameters import SCENARIO_START
from storeops.service_level import read_lake
from storeops.settings import load_settings
from storeops.stores.catalog import build_catalog
from storeops.stores.simulation import initial_state

RATIO_TARGET = 1.15
DURATION = (
    " The default run takes about 7 minutes on 2 cores (404 s measured at f3c004a): five 7-day scenarios, two at"
    " a time, then the bound; more --days, --stores, --products or grid points make the scenarios longer, and a"
    " larger bound instance can take HiGHS up to --time-limit seconds."
)
FIGURES = (
    "cost_per_1000_units",
    "cost_parts_per_1000_units",
    "lost_sales_rate",
    "audit_out_of_stock_rate",
    "waste_rate",
    "stops_per_store_day",
    "trucks",
    "units_demanded",
    "demand_digest",
    "seconds",
)


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"give positive numbers, e.g. 20,40,80: {text!r}")
    return values


def opening_stock(stack: str, start: Any, shape: tuple[int, int]) -> np.ndarray:
    """(stores, products): the stock at ``start`` of a scenario's lake: its first readings' on hand plus what
    that first hour sold and wrote off (nothing arrives in the first hour: no plan has run yet)."""
    lake = prepare(load_settings(stack_name=stack))
    record = read_lake(lake.clients.client("s3"), lake.resources.data_lake_bucket, start, start + timedelta(hours=1))
    readings = record.readings.drop_duplicates("event_id")  # Firehose delivers at least once
    stock = readings["on_hand"] + readings["units_sold"] + readings["units_expired"]
    stores = readings["store_id"].str[1:].astype(int) - 1
    products = readings["product_id"].str[1:].astype(int) - 1
    out = np.zeros(shape)
    out[stores.to_numpy(), products.to_numpy()] = stock.to_numpy()
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(prog="python -m bench.oracle", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--days", type=positive_int, default=7, help="virtual days of each run (default 7)")
    parser.add_argument("--stores", type=positive_int, default=40, help="stores (default 40)")
    parser.add_argument("--products", type=positive_int, default=50, help="products per store (default 50)")
    parser.add_argument("--seed", type=non_negative_int, default=7, help="the customers' seed (default 7)")
    parser.add_argument("--history-days", type=positive_int, default=28, help="sales history (default 28)")
    parser.add_argument(
        "--extra-stop-costs", type=_floats, default=[20.0, 40.0, 80.0], help="the oracle's grid (default 20,40,80)"
    )
    parser.add_argument("--safety-factors", type=_floats, default=[1.0], help="the oracle's grid (default 1.0)")
    parser.add_argument("--bound-stores", type=positive_int, default=10, help="the bound's stores (default 10)")
    parser.add_argument("--bound-products", type=positive_int, default=20, help="the bound's products (default 20)")
    parser.add_argument("--bound-days", type=positive_int, default=7, help="the bound's days (default 7)")
    parser.add_argument("--time-limit", type=positive_int, default=120, help="HiGHS's seconds (default 120)")
    parser.add_argument("--workers", type=positive_int, default=2, help="scenarios side by side (1 or 2, default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser.parse_args(argv)


def planned_runs(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """storeops, the oracle at each point of its grid, and storeops on the bound's small instance."""
    shape = {"days": args.days, "stores": args.stores, "products": args.products, "seed": args.seed}
    grid = [(c, f) for c in args.extra_stop_costs for f in args.safety_factors]
    bound_shape = {
        "days": args.bound_days,
        "stores": args.bound_stores,
        "products": args.bound_products,
        "seed": args.seed,
    }
    runs: list[tuple[str, dict[str, Any]]] = [("storeops", {**shape, "policy": "storeops"})]
    runs += [
        (f"oracle c={c:g} f={f:g}", {**shape, "policy": "oracle", "extra_stop_cost": c, "safety_factor": f})
        for c, f in grid
    ]
    runs.append(("storeops on the bound's instance", {**bound_shape, "policy": "storeops"}))
    return runs


def run_scenarios(
    args: argparse.Namespace, runs: list[tuple[str, dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Every run on one private emulator; their results, and the opening stock of the bound's instance."""
    with bench_environment() as env:
        os.environ["STOREOPS_TARGET"] = "local"
        os.environ["STOREOPS_LOCAL_PORT"] = str(env.settings.local_port)
        os.environ["STOREOPS_LOCAL_HOME"] = str(env.settings.local_home)
        results: dict[str, dict[str, Any]] = {}
        # a policy's runs share its stack (<stack>-<policy>): the oracle's grid runs one after another on one
        # worker, the two storeops runs on the other
        lanes = [[r for r in runs if r[1]["policy"] == "oracle"], [r for r in runs if r[1]["policy"] != "oracle"]]
        with prefect_api(), ThreadPoolExecutor(max_workers=min(args.workers, 2), thread_name_prefix="oracle") as pool:

            def run_lane(lane: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
                done = {}
                for name, parameters in lane:
                    set_up_scenario(env.settings, parameters["policy"])
                    result = scenario(history_days=args.history_days, start=SCENARIO_START, **parameters)
                    cost = result["cost_per_1000_units"]
                    print(f"{name}: £{cost:,.1f} per 1,000 units, {result['seconds']} s", flush=True)
                    done[name] = result
                return done

            futures = [pool.submit(contextvars.copy_context().run, run_lane, lane) for lane in lanes]
            for future in futures:
                results.update(future.result())
        small = results["storeops on the bound's instance"]
        stock = opening_stock(small["stack"], parse_timestamp(small["start"]), (args.bound_stores, args.bound_products))
    return results, stock


def lower_bound(args: argparse.Namespace, stock: np.ndarray) -> tuple[LowerBound, float]:
    """The hindsight lower bound on the small instance from the scenario's opening stock; and its units demanded."""
    catalog = build_catalog(args.bound_stores, args.bound_products, args.seed)
    state = initial_state(catalog, SCENARIO_START)
    demand = daily_demand(state.model, SCENARIO_START, args.bound_days)
    # the scenario's trucks and the catalog's case volumes (its product master)
    instance = instance_from_catalog(catalog, state, demand, FLEET)
    instance = dataclasses.replace(instance, initial_stock=stock, initial_expiring=None)
    bound = hindsight_lower_bound(instance, CostParameters(), time_limit_s=args.time_limit)
    return bound, float(demand.sum())


def summarize(
    args: argparse.Namespace, results: dict[str, dict[str, Any]], bound: LowerBound, units: float
) -> dict[str, Any]:
    oracles = {name: r for name, r in results.items() if name.startswith("oracle")}
    best = min(oracles, key=lambda name: oracles[name]["cost_per_1000_units"])
    ours = results["storeops"]["cost_per_1000_units"]
    oracle = oracles[best]["cost_per_1000_units"]
    lower = 1000 * bound.cost / units if units else 0.0
    small = results["storeops on the bound's instance"]
    summary: dict[str, Any] = {
        "days": args.days,
        "stores": args.stores,
        "products": args.products,
        "seed": args.seed,
        "storeops_cost": ours,
        "oracle_cost": oracle,
        "oracle_cost_ratio": round(ours / oracle, 4) if oracle else None,
        "oracle_parameters": {
            "extra_stop_cost": oracles[best]["extra_stop_cost"],
            "safety_factor": oracles[best]["safety_factor"],
        },
        "lower_bound_cost": round(lower, 3),
        "storeops_bound_instance_cost": small["cost_per_1000_units"],
        "bound_instance_ratio": round(small["cost_per_1000_units"] / lower, 4) if lower else None,
        "lower_bound": {
            "stores": args.bound_stores,
            "products": args.bound_products,
            "days": args.bound_days,
            "units_demanded": int(units),
            "cost_gbp": round(bound.cost, 2),
            "parts_gbp": {k: round(v, 2) for k, v in bound.parts.items()},
            "status": bound.status,
            "mip_gap": bound.mip_gap,
            "seconds": round(bound.seconds, 1),
        },
        "same_demand": len({results["storeops"]["demand_digest"], *(r["demand_digest"] for r in oracles.values())})
        == 1,
        "runs": {name: {k: r.get(k) for k in FIGURES} for name, r in results.items()},
    }
    summary["targets_met"] = bool(
        summary["oracle_cost_ratio"] is not None and summary["oracle_cost_ratio"] <= RATIO_TARGET
    )
    return summary


def report(args: argparse.Namespace, summary: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    oracles = {name: r for name, r in results.items() if name.startswith("oracle")}
    best = min(oracles, key=lambda name: oracles[name]["cost_per_1000_units"])
    bound = summary["lower_bound"]
    print_summary(
        f"oracle benchmark: {args.stores} stores x {args.products} products x {args.days} days, seed {args.seed}",
        [
            ("storeops", f"£{summary['storeops_cost']:,.1f} per 1,000 units"),
            ("distribution oracle", f"£{summary['oracle_cost']:,.1f} ({best})"),
            ("oracle cost ratio", f"{summary['oracle_cost_ratio']} (target <= {RATIO_TARGET})"),
            *[(name, f"£{r['cost_per_1000_units']:,.1f}") for name, r in oracles.items()],
            (
                "hindsight lower bound",
                f"£{summary['lower_bound_cost']:,.1f} per 1,000 units on {args.bound_stores} x {args.bound_products} "
                f"x {args.bound_days} ({bound['status']}, gap {bound['mip_gap']:.1e}, {bound['seconds']:.0f} s); "
                f"storeops there £{summary['storeops_bound_instance_cost']:,.1f}",
            ),
            ("same demand", str(summary["same_demand"])),
            ("seconds", f"{summary['seconds']:,.0f}"),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    results, stock = run_scenarios(args, planned_runs(args))
    bound, units = lower_bound(args, stock)
    summary = summarize(args, results, bound, units)
    summary["seconds"] = round(time.monotonic() - started, 1)
    report(args, summary, results)
    if args.json:
        emit_json(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
