"""The solver's km against the proven km-optimum of the same deliveries: how much any plan could save.

    python -m bench.routing_optimum [--stores 100] [--products 50] [--capacity 8 45] [--seed 7] [--json]

On ``bench.routing``'s day (``day_orders``: one delivery per open store, its cages and receiving window)
with ``Fleet(capacity_cages=...)``, each depot's slot is routed by the baseline and the solver
(``storeops.dispatch.vrp.route_depot``, the default ``SolverBudget``) and solved to optimality for km:

- **columns**: every set of drops a truck could serve in one route, with the shortest tour through
  them (Held-Karp over the sets, level by level), kept when its cages fit and its quickest tour plus
  unloading fits ``Fleet.route_limit_hours``. Windows are left out (a relaxation: at bench.routing's
  day every window opens at 04:00 and closes at 22:00, after any route ends, so they cannot bind);
- **LP bound**: the set-partitioning LP over the columns (HiGHS), a lower bound on any plan's km;
- **km-optimum**: the set-partitioning IP, after dropping the columns whose LP reduced cost exceeds
  the solver's km minus the LP bound (they cannot be in a plan better than the solver's). Its routes
  are re-checked with the windows (``vrp._timeline``): when they pass, it is the proven minimum km of
  the slot under the fleet model (cages, drivers' hours, windows), whatever the number of trucks.

Printed per capacity: km of the baseline, the solver, the km-optimum and the LP bound, and each as a
share of the baseline's; routes, stops per route, fill, hours and the share of km on the legs from and
back to the depot (the stems). The solver minimises the transport cost (a truck is worth 200 km), so
it may use one truck fewer than the km-optimum for a few km more. Enumeration grows quickly with the
stops a route can take: meant for the 100-store day (about 20 stops per depot), a few seconds each.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any

import highspy
import numpy as np

from bench.harness import run_benchmark
from bench.routing import day_orders
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.costs import CostParameters
from storeops.directory import DEPOTS
from storeops.dispatch import vrp
from storeops.dispatch.fleet import Fleet

ROUNDING_SECONDS = 3  # per leg: the seconds matrix is rounded per leg, so a bound allows this much per leg
MAX_PATHS = 2_000_000  # partial routes a level may hold: beyond it the enumeration would not end in minutes
DURATION = (
    " The default run takes about 20 s on 2 cores (measured sharing them with other work); a route can take more"
    " stops with more --stores, and the enumeration grows fast with them: a slot too large to enumerate is refused."
)
SOLVE_SECONDS = 120.0  # HiGHS's limit a solve; a solve that does not reach its optimum in it is an error


@dataclass(frozen=True)
class Column:
    """A set of drops (bit i: the i-th routable drop) and its shortest tour in metres."""

    members: int
    metres: int


def _bits(masks: np.ndarray, n: int) -> np.ndarray:
    return ((masks[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)


def route_columns(inst: Any, routable: list[int]) -> list[Column]:
    """Every set of ``routable`` drops one truck could serve (cages, route limit; windows left out).

    Level by level, ``metres[s, j]`` / ``seconds[s, j]`` is the shortest path from the depot through set
    ``s`` ending at its drop ``j`` (by metres, and by seconds: each a relaxation of the other's order).
    A path that could not come back within the limit is not extended (by the triangle inequality no
    longer path through it could), up to ``ROUNDING_SECONDS`` a leg.
    """
    n = len(routable)
    index = [0, *routable]
    dm = inst.metres[np.ix_(index, index)].astype(np.int64)
    ds = inst.seconds[np.ix_(index, index)].astype(np.int64)
    cages = np.array([inst.cages[i] for i in routable], dtype=np.int64)
    unloading = np.array([inst.unloading[i] for i in routable], dtype=np.int64)
    never = np.int64(1) << 50
    masks = np.int64(1) << np.arange(n, dtype=np.int64)
    metres = np.full((n, n), never)
    seconds = np.full((n, n), never)
    metres[np.arange(n), np.arange(n)] = dm[0, 1:]
    seconds[np.arange(n), np.arange(n)] = ds[0, 1:]
    columns: list[Column] = []
    level = 1
    while len(masks):
        if len(masks) * n > MAX_PATHS:
            raise ValueError(
                f"{len(masks):,} sets of {level} drops a truck could serve from one depot: too many to enumerate "
                "(the bound is meant for about 20 stops a depot, e.g. --stores 100)"
            )
        bits = _bits(masks, n)
        load, unload = bits @ cages, bits @ unloading
        tour_m = (metres + dm[1:, 0][None, :]).min(axis=1)
        tour_s = (seconds + ds[1:, 0][None, :]).min(axis=1)
        fits = (load <= inst.capacity) & (tour_s + unload <= inst.limit + ROUNDING_SECONDS * (level + 1))
        columns += [Column(int(m), int(t)) for m, t in zip(masks[fits], tour_m[fits], strict=True)]
        masks, metres, seconds = _extend(masks, metres, seconds, load, unload, dm, ds, cages, unloading, inst, level)
        level += 1
    return columns


def _extend(
    masks: np.ndarray,
    metres: np.ndarray,
    seconds: np.ndarray,
    load: np.ndarray,
    unload: np.ndarray,
    dm: np.ndarray,
    ds: np.ndarray,
    cages: np.ndarray,
    unloading: np.ndarray,
    inst: Any,
    level: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The next level: each set with one more drop j at its end (a (set, j) pair comes from one set only)."""
    n = len(cages)
    keys, new_m, new_s, ends = [], [], [], []
    for j in range(n):
        bit = np.int64(1) << j
        rows = np.nonzero(((masks & bit) == 0) & (load + cages[j] <= inst.capacity))[0]
        m = (metres[rows] + dm[1:, 1 + j][None, :]).min(axis=1)
        s = (seconds[rows] + ds[1:, 1 + j][None, :]).min(axis=1)
        back = s + unload[rows] + unloading[j] + ds[1 + j, 0] <= inst.limit + ROUNDING_SECONDS * (level + 2)
        keys.append(masks[rows][back] | bit)
        new_m.append(m[back])
        new_s.append(s[back])
        ends.append(np.full(int(back.sum()), j))
    all_keys = np.concatenate(keys)
    if not len(all_keys):
        return all_keys, np.empty((0, n), np.int64), np.empty((0, n), np.int64)
    next_masks, row = np.unique(all_keys, return_inverse=True)
    never = np.int64(1) << 50
    next_m = np.full((len(next_masks), n), never)
    next_s = np.full((len(next_masks), n), never)
    end = np.concatenate(ends)
    next_m[row, end] = np.concatenate(new_m)
    next_s[row, end] = np.concatenate(new_s)
    return next_masks, next_m, next_s


def _partition(columns: list[Column], n: int, integer: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """min total metres with every drop in exactly one column: (objective, column values, row duals)."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.setOptionValue("time_limit", SOLVE_SECONDS)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(columns), n
    lp.col_cost_ = np.array([c.metres for c in columns], dtype=float)
    lp.col_lower_, lp.col_upper_ = np.zeros(len(columns)), np.ones(len(columns))
    lp.row_lower_, lp.row_upper_ = np.ones(n), np.ones(n)
    rows = [[j for j in range(n) if c.members >> j & 1] for c in columns]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.cumsum([0, *(len(r) for r in rows)]).astype(np.int32)
    lp.a_matrix_.index_ = np.array([j for r in rows for j in r], dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(sum(len(r) for r in rows))
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(columns)
    highs.passModel(lp)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"HiGHS: {highs.modelStatusToString(highs.getModelStatus())} (not solved to optimality)")
    solution = highs.getSolution()
    duals = np.zeros(n) if integer else np.array(solution.row_dual)
    return highs.getInfo().objective_function_value, np.array(solution.col_value), duals


def _shortest_order(members: list[int], metres: np.ndarray) -> list[int]:
    """The shortest tour's order through ``members`` from the depot (index 0) and back (Held-Karp)."""
    k = len(members)
    best: dict[tuple[int, int], tuple[int, int]] = {(1 << a, a): (int(metres[0, members[a]]), -1) for a in range(k)}
    for size in range(2, k + 1):
        for chosen in itertools.combinations(range(k), size):
            mask = sum(1 << a for a in chosen)
            for j in chosen:
                before = mask ^ (1 << j)
                best[mask, j] = min(
                    (best[before, i][0] + int(metres[members[i], members[j]]), i) for i in chosen if i != j
                )
    mask = (1 << k) - 1
    last = min(range(k), key=lambda j: best[mask, j][0] + int(metres[members[j], 0]))
    order = []
    while last >= 0:
        order.append(members[last])
        mask, last = mask ^ (1 << last), best[mask, last][1]
    return order[::-1]


@dataclass(frozen=True)
class Optimum:
    lp_metres: float  # the LP bound
    ip_metres: float  # the IP's optimum over the columns (windows left out): a lower bound
    routes: list[Any] | None  # its routes re-checked with the windows (vrp._Timeline); None if one fails
    columns: int

    @property
    def proven_metres(self) -> int | None:
        """The proven km-optimum in metres: the IP's routes pass the windows and measure what it says."""
        if self.routes is None:
            return None
        metres = sum(r.metres for r in self.routes)
        return metres if metres == round(self.ip_metres) else None


def km_optimum(inst: Any, routable: list[int], upper_metres: int) -> Optimum:
    """The minimum km of the slot (see the module), given a plan's metres as an upper bound."""
    columns = route_columns(inst, routable)
    n = len(routable)
    lp_value, _, duals = _partition(columns, n, integer=False)
    reduced = [c.metres - sum(duals[j] for j in range(n) if c.members >> j & 1) for c in columns]
    slack = upper_metres - lp_value + 1e-6 * max(1.0, upper_metres)
    kept = [c for c, r in zip(columns, reduced, strict=True) if r <= slack]
    ip_value, values, _ = _partition(kept, n, integer=True)
    routes = []
    for column in (c for c, v in zip(kept, values, strict=True) if v > 0.5):
        members = [routable[j] for j in range(n) if column.members >> j & 1]
        route = vrp._timeline(_shortest_order(members, inst.metres), inst)
        if route is None:
            return Optimum(lp_value, ip_value, None, len(columns))
        routes.append(route)
    return Optimum(lp_value, ip_value, routes, len(columns))


def _summary(routes: list[Any], inst_of: list[Any], capacity: int) -> dict[str, Any]:
    """Routes, stops a route, fill, hours and the stems' share of the km over (route, instance) pairs."""
    stops = [len(r.order) for r in routes]
    cages = sum(sum(inst.cages[i] for i in r.order) for r, inst in zip(routes, inst_of, strict=True))
    metres = sum(r.metres for r in routes)
    stems = sum(
        int(inst.metres[0, r.order[0]]) + int(inst.metres[r.order[-1], 0])
        for r, inst in zip(routes, inst_of, strict=True)
    )
    hours = [(r.returns - r.departs) / 3600 for r in routes]
    return {
        "km": round(metres / 1000, 1),
        "routes": len(routes),
        "stops_per_route": round(sum(stops) / len(routes), 2),
        "stops_max": max(stops),
        "truck_fill": round(cages / (capacity * len(routes)), 3),
        "hours_mean": round(sum(hours) / len(hours), 2),
        "hours_max": round(max(hours), 2),
        "stem_share": round(stems / metres, 3),
    }


def run_capacity(capacity: int, args: argparse.Namespace) -> dict[str, Any]:
    fleet, costs = Fleet(capacity_cages=capacity), CostParameters()
    orders = day_orders(args.stores, args.products, args.seed, args.day, fleet)
    departure = fleet.departure_on(args.day)
    sides: dict[str, list[tuple[Any, Any]]] = {"baseline": [], "solver": [], "optimum": []}
    lp = ip = 0.0
    proven, units, columns = True, 0, 0
    for depot in sorted(orders):
        inst, routable, _ = vrp._prepared(depot, DEPOTS[depot], orders[depot], fleet, departure)
        routing = vrp.route_depot(depot, DEPOTS[depot], orders[depot], fleet, costs, departure, seed=args.seed)
        units += sum(d.units for d in inst.drops)
        for side, plan in (("baseline", routing.baseline), ("solver", routing.plan)):
            position = {d: i for i, d in enumerate(inst.drops, start=1)}
            for route in plan.routes:
                sides[side].append((vrp._timeline([position[v.drop] for v in route.visits], inst), inst))
        best = km_optimum(inst, routable, sum(r.metres for r in routing.plan.routes))
        lp, ip, columns = lp + best.lp_metres, ip + best.ip_metres, columns + best.columns
        proven = proven and best.proven_metres is not None
        sides["optimum"] += [(r, inst) for r in best.routes or []]
    figures = {side: _summary([r for r, _ in pairs], [i for _, i in pairs], capacity) for side, pairs in sides.items()}
    base_km = figures["baseline"]["km"]
    return {
        "capacity_cages": capacity,
        "units": units,
        **figures,
        "lp_bound_km": round(lp / 1000, 1),
        "optimum_proven": proven,
        "columns": columns,
        "of_baseline": {
            "solver": round(figures["solver"]["km"] / base_km, 4),
            "optimum": round(ip / 1000 / base_km, 4),
            "lp_bound": round(lp / 1000 / base_km, 4),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog="python -m bench.routing_optimum", description=__doc__.split("\n\n")[0] + DURATION
    )
    parser.add_argument("--stores", type=positive_int, default=100)
    parser.add_argument("--products", type=positive_int, default=50, help="50: about a roll cage a store-day")
    parser.add_argument("--capacity", type=positive_int, nargs="+", default=[8, 45], help="roll cages a truck")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 3, 3), help="local day (YYYY-MM-DD)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [run_capacity(capacity, args) for capacity in args.capacity]
    for result in results:
        rows = [
            ("", f"{'km':>8}  {'of base':>7}  {'routes':>6}  {'stops/r':>7}  {'fill':>5}  {'h max':>5}  {'stems':>5}")
        ]
        for side in ("baseline", "solver", "optimum"):
            f = result[side]
            share = f["km"] / result["baseline"]["km"]
            rows.append(
                (
                    side if side != "optimum" else "km-optimum" + ("" if result["optimum_proven"] else " (bound)"),
                    f"{f['km']:>8,.0f}  {share:>7.3f}  {f['routes']:>6}  {f['stops_per_route']:>7.2f}  "
                    f"{f['truck_fill']:>5.0%}  {f['hours_max']:>5.2f}  {f['stem_share']:>5.0%}",
                )
            )
        rows.append(("LP bound", f"{result['lp_bound_km']:>8,.0f}  {result['of_baseline']['lp_bound']:>7.3f}"))
        print_summary(
            f"{args.stores} stores x {args.products} products, {result['capacity_cages']}-cage trucks: "
            f"km against the km-optimum ({result['columns']:,} columns)",
            rows,
        )
    if args.json:
        emit_json({"stores": args.stores, "products": args.products, "seed": args.seed, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
