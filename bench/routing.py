"""Routing benchmark: one day's store deliveries routed by the solver (PyVRP) and by the baseline, side by side.

    python -m bench.routing [--sizes 100 2000] [--products 1000] [--seed 7] [--workers 2] [--json]

For each size, the simulated chain of ``storeops.stores.catalog.build_catalog(stores, products, seed)``
(stores placed around their region's depot, as the simulation places them; the five depots of
``storeops.directory.DEPOTS``) gets one regular delivery per store on one day (``--day``, a Tuesday):

- **volume**: the store's expected demand of the day (``storeops.stores.demand.DemandModel
  .expected_day_mean``) in cases (units / each product's case pack), in roll cages at
  ``--cases-per-cage`` (60: a roll cage of about 1.2 m3 usable holds some 50-80 grocery cases; a
  typical figure, not a measured one). The catalog has no case dimensions yet, so every case counts
  the same; case volumes in the catalog are the next part of issue 22.
- **window**: from 3 h before the store opens that day (``storeops.calendar.opening_hours``: 07:00
  for both formats on weekdays) to 4 h after, so shelves are filled before opening and at the latest
  by mid-morning; trucks leave the depot from ``Fleet.earliest_departure`` (03:00).
- **fleet and costs**: ``storeops.dispatch.fleet.Fleet()`` and ``storeops.costs.CostParameters()``
  defaults, unlimited trucks per depot; the solver's budget ``SolverBudget()`` per depot, depots
  routed by ``--workers`` processes at once (``storeops.dispatch.vrp.route_slot``).

Printed per size, baseline (first-fit decreasing + nearest neighbour under the same constraints) against
the solver's own plan: truck fill, trucks against the capacity lower bound, km and km per 1,000 units
(return legs included), late stops, the longest route, seconds; and which plan each depot would use.
Target: the 2,000-store cycle (all five depots) routed within 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np

from storeops.calendar import opening_hours
from storeops.cli import emit_json, positive_float, positive_int, print_summary
from storeops.costs import CostParameters
from storeops.directory import DEPOTS
from storeops.dispatch.fleet import DeliveryStop, Fleet, window_around_opening
from storeops.dispatch.fleet_figures import FleetFigures, fleet_figures
from storeops.dispatch.vrp import DepotRouting, SolverBudget, route_slot
from storeops.stores.catalog import build_catalog
from storeops.stores.demand import DemandModel

TARGET_CYCLE_SECONDS = 60.0
TARGET_STORES = 2000
HOURS_BEFORE_OPENING = 3.0
HOURS_AFTER_OPENING = 4.0


def day_orders(
    stores: int, products: int, seed: int, day: date, cases_per_cage: float, fleet: Fleet
) -> dict[str, list[DeliveryStop]]:
    """Each open store's delivery of ``day`` (see the module), by region."""
    catalog = build_catalog(stores, products, seed)
    units = DemandModel(catalog, 0, stores).expected_day_mean(day)
    cases = (units / catalog.products["case_pack"].to_numpy()[None, :]).sum(axis=1)
    orders: dict[str, list[DeliveryStop]] = defaultdict(list)
    for row, store in enumerate(catalog.stores.itertuples()):
        hours = opening_hours(str(store.format), day)
        if hours.closed:
            continue
        opens, closes = window_around_opening(day, hours.opens, fleet, HOURS_BEFORE_OPENING, HOURS_AFTER_OPENING)
        orders[str(store.region)].append(
            DeliveryStop(
                store_id=str(store.store_id),
                lat=float(store.lat),
                lon=float(store.lon),
                cages=max(1, math.ceil(cases[row] / cases_per_cage)),
                units=round(float(np.sum(units[row]))),
                window_opens=opens,
                window_closes=closes,
            )
        )
    return dict(orders)


def _side(figures: FleetFigures, seconds: float) -> dict[str, Any]:
    return {**figures.as_dict(), "seconds": round(seconds, 2)}


def run_size(
    stores: int, args: argparse.Namespace, fleet: Fleet, costs: CostParameters, budget: SolverBudget
) -> dict[str, Any]:
    orders = day_orders(stores, args.products, args.seed, args.day, args.cases_per_cage, fleet)
    started = time.perf_counter()
    routed: dict[str, DepotRouting] = route_slot(
        orders, DEPOTS, fleet, costs, fleet.departure_on(args.day), budget, workers=args.workers, seed=args.seed
    )
    cycle = time.perf_counter() - started
    baseline = [r.baseline for r in routed.values()]
    solver = [r.solver or r.baseline for r in routed.values()]
    return {
        "stores": stores,
        "stops": sum(len(v) for v in orders.values()),
        "cycle_seconds": round(cycle, 2),
        "baseline": _side(fleet_figures(baseline), sum(p.seconds for p in baseline)),
        "solver": _side(fleet_figures(solver), cycle),
        "baseline_cost_gbp": round(sum(p.cost_gbp for p in baseline), 2),
        "solver_cost_gbp": round(sum(p.cost_gbp for p in solver), 2),
        "plan_used": {depot: r.plan.method for depot, r in sorted(routed.items())},
    }


def _pair(result: dict[str, Any], key: str, fmt: str) -> str:
    b, s = result["baseline"][key], result["solver"][key]
    shown = [("-" if v is None else format(v, fmt)) for v in (b, s)]
    return f"{shown[0]:>10}  {shown[1]:>10}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.routing",
        description=__doc__.split("\n\n")[0] + " The default run takes about a minute on 2 cores.",
    )
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[100, TARGET_STORES], help="stores per run")
    parser.add_argument("--products", type=positive_int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 3, 3), help="local day (YYYY-MM-DD)")
    parser.add_argument("--cases-per-cage", type=positive_float, default=60.0)
    parser.add_argument("--workers", type=positive_int, default=2, help="depots routed at once (processes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    fleet, costs, budget = Fleet(), CostParameters(), SolverBudget()
    results = [run_size(stores, args, fleet, costs, budget) for stores in args.sizes]
    for result in results:
        print_summary(
            f"routing benchmark: {result['stores']:,} stores ({result['stops']:,} stops), one day, "
            f"{len(DEPOTS)} depots: baseline vs solver",
            [
                ("", f"{'baseline':>10}  {'solver':>10}"),
                ("truck fill (cages / capacity)", _pair(result, "truck_fill", ".1%")),
                ("trucks", _pair(result, "trucks", ",")),
                ("trucks lower bound", _pair(result, "trucks_lower_bound", ",")),
                ("km (return legs included)", _pair(result, "km", ",.0f")),
                ("km per 1,000 units", _pair(result, "km_per_1000_units", ".2f")),
                ("late stops", _pair(result, "late_stops_rate", ".1%")),
                ("route hours, longest", _pair(result, "route_hours_max", ".2f")),
                ("unserved parts", _pair(result, "unserved", ",")),
                ("transport cost, GBP", f"{result['baseline_cost_gbp']:>10,.0f}  {result['solver_cost_gbp']:>10,.0f}"),
                ("seconds", _pair(result, "seconds", ".1f")),
                ("plan used per depot", ", ".join(f"{d} {m}" for d, m in result["plan_used"].items())),
            ],
        )
    large = next((r for r in results if r["stores"] == TARGET_STORES), None)
    if large is not None:
        within = large["cycle_seconds"] <= TARGET_CYCLE_SECONDS
        print(
            f"{TARGET_STORES:,} stores: all {len(DEPOTS)} depots routed in {large['cycle_seconds']:.1f} s on "
            f"{args.workers} worker(s) (target <= {TARGET_CYCLE_SECONDS:.0f} s): {'met' if within else 'MISSED'}"
        )
    if args.json:
        emit_json(
            {
                "day": args.day.isoformat(),
                "products": args.products,
                "seed": args.seed,
                "cases_per_cage": args.cases_per_cage,
                "workers": args.workers,
                "fleet": {
                    "capacity_cages": fleet.capacity_cages,
                    "route_limit_hours": fleet.route_limit_hours,
                    "speed_kmh": fleet.speed_kmh,
                    "circuity": fleet.circuity,
                },
                "results": results,
                "cycle_within_target": None if large is None else large["cycle_seconds"] <= TARGET_CYCLE_SECONDS,
            }
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
