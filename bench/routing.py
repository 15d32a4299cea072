"""Routing benchmark: one day's store deliveries routed by the solver (PyVRP) and by the baseline, side by side.

    python -m bench.routing [--sizes 100 2000] [--products 1000] [--seed 7] [--workers 2] [--json]

For each size, the simulated chain of ``storeops.stores.catalog.build_catalog(stores, products, seed)``
(stores placed around their region's depot, as the simulation places them; the five depots of
``storeops.directory.DEPOTS``) gets one regular delivery per store on one day (``--day``, a Tuesday):

- **volume**: the store's expected demand of the day (``storeops.stores.demand.DemandModel
  .expected_day_mean``) in cases (units / each product's case pack) of each product's case volume
  (the catalog's ``case_litres``), in roll cages (``Fleet.cages_for``: ``Fleet.cage_litres`` a cage,
  rounded up), as the truck worker counts them.
- **window**: the store's receiving window, as the truck worker sets it
  (``storeops.dispatch.fleet.delivery_window``: from 3 h before the store opens until it closes);
  trucks leave the depot from ``Fleet.earliest_departure`` (03:00).
- **fleet and costs**: ``storeops.dispatch.fleet.Fleet()`` and ``storeops.costs.CostParameters()``
  defaults, unlimited trucks per depot; the solver's budget ``SolverBudget()`` per depot, depots
  routed by ``--workers`` processes at once (``storeops.dispatch.vrp.route_slot``).

Printed per size, baseline (first-fit decreasing + nearest neighbour under the same constraints) against
the solver's own plan: truck fill, trucks against the capacity lower bound, km and km per 1,000 units
(return legs included), late stops, the longest route, seconds; which plan each depot would use; and for
reference the previous release's dispatch on the same deliveries (``previous_dispatch``: trucks of 4,000
units and 8 stops, nearest neighbour, no windows or hours).
Target: the 2,000-store cycle (all five depots) routed within 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np

from bench.harness import run_benchmark
from storeops.calendar import opening_hours
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.costs import CostParameters
from storeops.directory import DEPOTS
from storeops.dispatch.fleet import DeliveryStop, Fleet, delivery_window
from storeops.dispatch.fleet_figures import FleetFigures, fleet_figures
from storeops.dispatch.vrp import DepotRouting, SolverBudget, route_slot
from storeops.stores.catalog import build_catalog
from storeops.stores.demand import DemandModel

TARGET_CYCLE_SECONDS = 60.0
TARGET_STORES = 2000


def day_orders(stores: int, products: int, seed: int, day: date, fleet: Fleet) -> dict[str, list[DeliveryStop]]:
    """Each open store's delivery of ``day`` (see the module), by region."""
    catalog = build_catalog(stores, products, seed)
    units = DemandModel(catalog, 0, stores).expected_day_mean(day)
    products_frame = catalog.products
    litres = (units / products_frame["case_pack"].to_numpy()[None, :] * products_frame["case_litres"].to_numpy()).sum(
        axis=1
    )
    departure = fleet.departure_on(day)
    orders: dict[str, list[DeliveryStop]] = defaultdict(list)
    for row, store in enumerate(catalog.stores.itertuples()):
        hours = opening_hours(str(store.format), day)
        if hours.closed:
            continue
        opens, closes = delivery_window(str(store.format), departure, fleet)
        orders[str(store.region)].append(
            DeliveryStop(
                store_id=str(store.store_id),
                lat=float(store.lat),
                lon=float(store.lon),
                cages=fleet.cages_for(float(litres[row])),
                units=round(float(np.sum(units[row]))),
                window_opens=opens,
                window_closes=closes,
            )
        )
    return dict(orders)


PREVIOUS_UNITS_PER_TRUCK = 4000  # the previous release's trucks: units, not volume
PREVIOUS_STOPS_PER_TRUCK = 8


def previous_dispatch(orders: dict[str, list[DeliveryStop]], fleet: Fleet) -> dict[str, Any]:
    """The previous release's dispatch on the same deliveries, for reference: stops packed first-fit decreasing
    by units into trucks of 4,000 units and 8 stops, each truck's stops in nearest-neighbour order from the
    depot; no windows, no drivers' hours, no volume. Measured as ours is: road km with the return legs."""
    trucks = km = 0.0
    units = 0
    for region, stops in orders.items():
        loads: list[list[DeliveryStop]] = []
        for stop in sorted(stops, key=lambda s: (-s.units, s.store_id)):
            fits = (
                load
                for load in loads
                if sum(s.units for s in load) + stop.units <= PREVIOUS_UNITS_PER_TRUCK
                and len(load) < PREVIOUS_STOPS_PER_TRUCK
            )
            load = next(fits, None)
            if load is None:
                loads.append([stop])
            else:
                load.append(stop)
        for load in loads:
            here, left = DEPOTS[region], list(load)
            while left:
                nearest = min(left, key=lambda s: (fleet.road_km(here, s.point), s.store_id))
                km += fleet.road_km(here, nearest.point)
                here = nearest.point
                left.remove(nearest)
            km += fleet.road_km(here, DEPOTS[region])
        trucks += len(loads)
        units += sum(s.units for s in stops)
    return {"trucks": int(trucks), "km": round(km, 1), "km_per_1000_units": round(1000 * km / units, 3)}


def _side(figures: FleetFigures, seconds: float) -> dict[str, Any]:
    return {**figures.as_dict(), "seconds": round(seconds, 2)}


def run_size(
    stores: int, args: argparse.Namespace, fleet: Fleet, costs: CostParameters, budget: SolverBudget
) -> dict[str, Any]:
    orders = day_orders(stores, args.products, args.seed, args.day, fleet)
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
        "previous_release": previous_dispatch(orders, fleet),
    }


def _pair(result: dict[str, Any], key: str, fmt: str) -> str:
    b, s = result["baseline"][key], result["solver"][key]
    shown = [("-" if v is None else format(v, fmt)) for v in (b, s)]
    return f"{shown[0]:>10}  {shown[1]:>10}"


def _parser() -> argparse.ArgumentParser:
    """Its options: the chain sizes routed, the catalog, the day and the depots routed at once."""
    parser = OneLineArgumentParser(
        prog="python -m bench.routing",
        description=__doc__.split("\n\n")[0]
        + " The default run takes about a minute on 2 cores, most of it the 2,000 stores; each of --sizes adds a run,"
        " and the solver's time grows with the stores (about 11 s at 2,000).",
    )
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[100, TARGET_STORES], help="stores per run")
    parser.add_argument("--products", type=positive_int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 3, 3), help="local day (YYYY-MM-DD)")
    parser.add_argument("--workers", type=positive_int, default=2, help="depots routed at once (processes)")
    parser.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
                (
                    "previous release (4,000 units, 8 stops, NN; no windows, hours)",
                    f"{result['previous_release']['trucks']:,} trucks, "
                    f"{result['previous_release']['km_per_1000_units']:.2f} km per 1,000 units",
                ),
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
                "cage_litres": fleet.cage_litres,
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
    raise SystemExit(run_benchmark(main))
