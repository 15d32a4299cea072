"""Route one delivery slot's orders from one depot: a vehicle-routing solver against the baseline.

The problem is a capacitated VRP with time windows (CVRPTW) and a route-duration limit:

- trucks of ``Fleet.capacity_cages`` leave the depot no earlier than the slot's departure and come
  back to it; a route's time (travel, unloading, waiting) stays within ``Fleet.route_limit_hours``;
- each stop is unloaded (``Fleet.unloading_minutes``) starting inside its window; a truck that arrives
  early waits, and leaves the depot late enough not to wait when it can;
- distances and times are the road's (``Fleet.road_km``, ``Fleet.speed_kmh``), in whole metres and
  seconds; the return leg to the depot counts in both;
- a depot may have a limited number of trucks (``Fleet.trucks_available``).

A stop larger than a truck is split into truck-sized parts first (full trucks and the remainder; the
units split with the cages). A part that no truck could serve even on its own (its window closes
before a truck could get there, or the round trip alone is longer than the route limit) is reported
unserved before solving; a part left over when the depot's trucks are used up is reported unserved
after. Every part of every stop is in exactly one route or in ``unserved``, with its reason.

Plans are ranked by one cost: fewer unserved parts first, then the transport cost in GBP priced
with ``storeops.costs.CostParameters`` (a truck route, each km, each stop). A weighted cost, not
"fewest trucks, then km": a planner gives up one truck's route for a saving of more than its cost in
kilometres (at the defaults, one route is worth 200 km). The **baseline** is today's method under
the same constraints: first-fit decreasing by cages, each truck's stops in nearest-neighbour order
from the depot; a stop goes on the first truck where capacity, windows and the duration limit all
still hold in that order, else on a new truck. The **solver** is PyVRP (iterated local search, a
state-of-the-art CVRPTW heuristic), warm-started from the baseline, with the same cost as its
objective (a fixed cost per truck and a cost per distance in the same proportion; when the fleet is
limited, parts are optional with a prize larger than any truck saves). Its result is re-checked here
from the distance and time matrices, and ``route_depot`` returns whichever of the two plans ranks
better (the baseline on a tie, or if a solver route fails the check), labelled with its ``method``:
the plan returned is never worse than the baseline's on the same orders, by that ranking.

The solver runs for ``SolverBudget.seconds(parts)``: proportional to the parts to route, with a floor
and a cap, so a planning cycle's time is bounded by ``ceil(depots / workers) x cap``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from multiprocessing import get_context
from typing import Any

import numpy as np
import pyvrp
from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

from storeops.costs import CostParameters
from storeops.directory import EARTH_RADIUS_KM
from storeops.dispatch.fleet import DeliveryStop, Fleet

# The solver's distance unit: 100 m. Its objective is in this unit, and PyVRP's penalties for excess load and lateness
# (0.1 to 100,000 a cage or a second, adapted as it searches) must be able to outweigh a truck's fixed cost in it.
SOLVER_METRES = 100
EXACT_PARTS = 2  # this few parts are routed by enumeration, not by the solver


class UnservedReason(StrEnum):
    """Why a part of a stop is not on any truck in its slot (the caller carries it to the next)."""

    WINDOW_UNREACHABLE = "window_unreachable"  # a truck leaving at the earliest departure arrives after it closes
    ROUTE_TOO_LONG = "route_too_long"  # depot -> store -> depot with its unloading exceeds the route limit
    FLEET_EXHAUSTED = "fleet_exhausted"  # the depot's trucks are all used


@dataclass(frozen=True)
class SolverBudget:
    """The solver's time for one depot's slot: ``seconds_per_part`` x parts, within [floor, cap], and no
    longer than ``stall_iterations`` iterations without a better solution.

    Defaults: 0.04 s a part, 1 s at least, 15 s at most. A 2,000-store chain has about 400 stores
    per depot (15 s each): five depots on two worker processes take three rounds, about 45 s, within
    the 60 s a planning cycle may spend routing. The stall limit (1,000 iterations) ends small slots
    early, where the search has long found its best: 20 stops in about 0.3 s, 100 in about 1.1 s
    (0.25% above 4 s of search; measured on 2 cores).
    """

    seconds_per_part: float = 0.04
    floor_seconds: float = 1.0
    cap_seconds: float = 15.0
    stall_iterations: int = 1000

    def __post_init__(self) -> None:
        if not (self.seconds_per_part >= 0 and 0 < self.floor_seconds <= self.cap_seconds < math.inf):
            raise ValueError(
                "solver budget: needs seconds_per_part >= 0 and 0 < floor_seconds <= cap_seconds (finite), "
                f"got {self.seconds_per_part}, {self.floor_seconds}, {self.cap_seconds}"
            )
        if self.stall_iterations < 1:
            raise ValueError(f"solver budget: stall_iterations must be at least 1, got {self.stall_iterations}")

    def seconds(self, parts: int) -> float:
        return min(self.cap_seconds, max(self.floor_seconds, self.seconds_per_part * parts))


@dataclass(frozen=True)
class Drop:
    """A stop, or one truck-sized part of a stop larger than a truck (``part`` of ``parts``, from 1)."""

    stop: DeliveryStop
    part: int
    parts: int
    cages: int
    units: int


@dataclass(frozen=True)
class Visit:
    """A drop on a route: when the truck arrives, starts unloading (inside the window) and leaves."""

    drop: Drop
    arrives: datetime
    unloading_starts: datetime
    leaves: datetime


@dataclass(frozen=True)
class TruckRoute:
    """One truck's trip: depot, the visits in order, back to the depot (``metres`` includes the return)."""

    visits: tuple[Visit, ...]
    departs: datetime
    returns: datetime
    metres: int

    @property
    def km(self) -> float:
        return self.metres / 1000.0

    @property
    def cages(self) -> int:
        return sum(v.drop.cages for v in self.visits)

    @property
    def units(self) -> int:
        return sum(v.drop.units for v in self.visits)

    @property
    def hours(self) -> float:
        return (self.returns - self.departs).total_seconds() / 3600.0


@dataclass(frozen=True)
class Unserved:
    drop: Drop
    reason: UnservedReason


@dataclass(frozen=True)
class RoutePlan:
    """One depot's routes for one slot, and what they leave unserved; ``method``: solver or baseline."""

    depot: str
    method: str
    routes: tuple[TruckRoute, ...]
    unserved: tuple[Unserved, ...]
    capacity_cages: int
    route_limit_hours: float
    cost_gbp: float  # transport cost of the routes: trucks, km (return legs included), stops
    seconds: float  # wall time to compute it

    @property
    def rank(self) -> tuple[int, float]:
        """What plans are compared by: (unserved parts, transport cost), lower is better."""
        return (len(self.unserved), self.cost_gbp)


@dataclass(frozen=True)
class DepotRouting:
    """The plan to use (the better of the two), and both candidates for comparison."""

    plan: RoutePlan
    baseline: RoutePlan
    solver: RoutePlan | None  # None when the solver's result failed the check (the baseline is used)


def split_stop(stop: DeliveryStop, capacity: int) -> list[Drop]:
    """``stop`` as drops of at most ``capacity`` cages: full trucks first, then the remainder."""
    parts = math.ceil(stop.cages / capacity)
    cages = [capacity] * (parts - 1) + [stop.cages - capacity * (parts - 1)]
    drops, carried, units_so_far = [], 0, 0
    for number, part_cages in enumerate(cages, start=1):
        carried += part_cages
        units_until_here = stop.units * carried // stop.cages
        drops.append(Drop(stop, number, parts, part_cages, units_until_here - units_so_far))
        units_so_far = units_until_here
    return drops


@dataclass(frozen=True)
class _Instance:
    """What the baseline, the solver and the checks share: index 0 is the depot, drop i is index i."""

    drops: list[Drop]  # drop i is drops[i - 1]
    points: list[tuple[float, float]]  # (latitude, longitude) of index i
    metres: np.ndarray  # (n+1, n+1) int64
    seconds: np.ndarray  # (n+1, n+1) int64
    cages: list[int]  # at each index (0 at the depot)
    unloading: list[int]  # seconds at each index (0 at the depot)
    opens: list[int]  # seconds after departure (0 at the depot)
    closes: list[int]
    capacity: int
    limit: int  # route limit, seconds
    departure: datetime


@dataclass(frozen=True)
class _Timeline:
    order: list[int]
    departs: int
    arrives: list[int]
    starts: list[int]
    returns: int
    metres: int


def road_matrices(
    depot: tuple[float, float], points: Sequence[tuple[float, float]], fleet: Fleet
) -> tuple[np.ndarray, np.ndarray]:
    """Whole road metres and driving seconds between the depot (index 0) and ``points`` (1..n)."""
    coords = np.radians(np.array([depot, *points], dtype=np.float64))
    lat, lon = coords[:, 0][:, None], coords[:, 1][:, None]
    h = np.sin((lat.T - lat) / 2) ** 2 + np.cos(lat) * np.cos(lat.T) * np.sin((lon.T - lon) / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))) * fleet.circuity
    return np.rint(km * 1000).astype(np.int64), np.rint(km / fleet.speed_kmh * 3600).astype(np.int64)


def _instance(depot: tuple[float, float], drops: list[Drop], fleet: Fleet, departure: datetime) -> _Instance:
    points = [d.stop.point for d in drops]
    metres, seconds = road_matrices(depot, points, fleet)

    def after_departure(moment: datetime, rounding: Any = math.floor) -> int:
        return int(rounding((moment - departure).total_seconds()))

    return _Instance(
        drops=drops,
        points=[depot, *points],
        metres=metres,
        seconds=seconds,
        cages=[0, *(d.cages for d in drops)],
        unloading=[0, *(round(fleet.unloading_minutes(d.cages) * 60) for d in drops)],
        opens=[0, *(max(0, after_departure(d.stop.window_opens, math.ceil)) for d in drops)],  # never before it
        closes=[0, *(after_departure(d.stop.window_closes) for d in drops)],
        capacity=fleet.capacity_cages,
        limit=math.floor(fleet.route_limit_hours * 3600),
        departure=departure,
    )


def _timeline(order: list[int], inst: _Instance) -> _Timeline | None:
    """The route through ``order`` leaving as late as it can without waiting more; None if infeasible.

    Unloading starts at max(arrival, window opens) and must not be after the window closes; the truck
    carries at most ``capacity`` and is back within ``limit`` of leaving. Leaving later by d absorbs
    waiting (the total wait W) and is allowed while every start stays within its window (the slack F):
    the shortest route leaves min(W, F) after the earliest departure.
    """
    if sum(inst.cages[i] for i in order) > inst.capacity:
        return None
    clock, here, waited, slack, metres = 0, 0, 0, math.inf, 0
    arrives, starts = [], []
    for i in order:
        arrive = clock + int(inst.seconds[here, i])
        start = max(arrive, inst.opens[i])
        if start > inst.closes[i]:
            return None
        waited_before = waited
        waited += start - arrive
        slack = min(slack, waited + inst.closes[i] - start)
        arrives.append((arrive, waited_before))
        starts.append((start, waited))
        metres += int(inst.metres[here, i])
        clock, here = start + inst.unloading[i], i
    back = clock + int(inst.seconds[here, 0])
    metres += int(inst.metres[here, 0])
    delay = int(min(waited, slack))
    if back - delay > inst.limit:
        return None
    return _Timeline(
        order=list(order),
        departs=delay,
        arrives=[t + max(0, delay - w) for t, w in arrives],
        starts=[t + max(0, delay - w) for t, w in starts],
        returns=back,
        metres=metres,
    )


def _nearest_neighbour(indices: list[int], inst: _Instance) -> list[int]:
    remaining, here, order = list(indices), 0, []
    while remaining:
        best = min(remaining, key=lambda i: (int(inst.metres[here, i]), i))
        order.append(best)
        remaining.remove(best)
        here = best
    return order


def _baseline(candidates: list[int], inst: _Instance, trucks: int | None) -> list[_Timeline]:
    """First-fit decreasing by cages, each truck's stops in nearest-neighbour order from the depot.

    A drop goes on the first truck that can take it with capacity, windows and the route limit still
    holding in that order, else on a new truck while the depot has one (else it is left out).
    """
    routes: list[_Timeline] = []
    loads: list[int] = []
    for i in sorted(candidates, key=lambda i: (-inst.cages[i], i)):
        cages = inst.cages[i]
        for n, route in enumerate(routes):
            if loads[n] + cages <= inst.capacity:
                tried = _timeline(_nearest_neighbour([*route.order, i], inst), inst)
                if tried is not None:
                    routes[n], loads[n] = tried, loads[n] + cages
                    break
        else:
            alone = _timeline([i], inst)
            if alone is not None and (trucks is None or len(routes) < trucks):
                routes.append(alone)
                loads.append(cages)
    return routes


@dataclass(frozen=True)
class _Objective:
    """The transport cost in the solver's integers: per truck and per SOLVER_METRES, in one proportion."""

    fixed_cost: int
    unit_distance_cost: int
    prize: int  # a part, when the fleet is limited: twice what leaving it out could save (a truck, a longest route)

    @classmethod
    def of(cls, costs: CostParameters, fleet: Fleet) -> _Objective:
        if costs.per_km > 0:
            fixed, unit = round(costs.truck_per_route / costs.per_km * 1000 / SOLVER_METRES), 1
        else:
            fixed, unit = round(costs.truck_per_route * 100), 0  # pence: only trucks cost
        longest = math.ceil(fleet.route_limit_hours * fleet.speed_kmh * 1000 / SOLVER_METRES)
        return cls(fixed, unit, 2 * (fixed + unit * longest + 1))


def _solve(
    candidates: list[int],
    inst: _Instance,
    trucks: int | None,
    warm: list[_Timeline],
    objective: _Objective,
    budget: SolverBudget,
    seed: int,
) -> list[_Timeline] | None:
    """PyVRP's routes over ``candidates`` (warm-started from ``warm``), checked here; None if one fails."""
    index = {i: k for k, i in enumerate(candidates)}  # instance index -> solver client index
    locations = [0, *candidates]
    clients = [
        pyvrp.Client(
            location=k + 1,
            delivery=[inst.cages[i]],
            service_duration=inst.unloading[i],
            tw_early=inst.opens[i],
            tw_late=inst.closes[i],
            prize=0 if trucks is None else objective.prize,
            required=trucks is None,  # with trucks enough for every part alone, all are served
        )
        for k, i in enumerate(candidates)
    ]
    vehicles = len(candidates) if trucks is None else min(trucks, len(candidates))
    # PyVRP's stub annotates matrices as np.ndarray[int]: Any lets numpy's own types through.
    distances: Any = np.rint(inst.metres[np.ix_(locations, locations)] / SOLVER_METRES).astype(np.int64)
    durations: Any = inst.seconds[np.ix_(locations, locations)]
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(x=inst.points[i][1], y=inst.points[i][0]) for i in locations],
        clients=clients,
        depots=[pyvrp.Depot(location=0)],
        vehicle_types=[
            pyvrp.VehicleType(
                num_available=vehicles,
                capacity=[inst.capacity],
                fixed_cost=objective.fixed_cost,
                shift_duration=inst.limit,
                unit_distance_cost=objective.unit_distance_cost,
            )
        ],
        distance_matrices=[distances],
        duration_matrices=[durations],
    )
    start = pyvrp.Solution(data, [[index[i] for i in route.order] for route in warm]) if warm else None
    stop = MultipleCriteria([MaxRuntime(budget.seconds(len(candidates))), NoImprovement(budget.stall_iterations)])
    result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, display=False, initial_solution=start)
    if not result.best.is_feasible():
        return None
    checked = []
    for route in result.best.routes():
        order = [candidates[a.idx] for a in route.schedule() if a.is_client()]
        timeline = _timeline(order, inst)
        if timeline is None:
            return None
        checked.append(timeline)
    return checked


def _exact(candidates: list[int], inst: _Instance, trucks: int | None, objective: _Objective) -> list[_Timeline] | None:
    """The cheapest plan of at most ``EXACT_PARTS`` drops, by enumeration: each alone, or together in either
    order (where the solver would only spend its time finding the same)."""
    alone = [t for i in candidates if (t := _timeline([i], inst)) is not None]
    options = [alone] if trucks is None or len(alone) <= trucks else []
    if len(candidates) == 2:
        together = [t for order in (candidates, candidates[::-1]) if (t := _timeline(order, inst)) is not None]
        options += [[t] for t in together if trucks is None or trucks >= 1]
    if not options:
        return None

    def cost(routes: list[_Timeline]) -> tuple[int, int]:
        served = sum(len(r.order) for r in routes)
        return (-served, len(routes) * objective.fixed_cost + sum(r.metres for r in routes) // SOLVER_METRES)

    return min(options, key=cost)


def _plan(
    depot: str,
    method: str,
    inst: _Instance,
    fleet: Fleet,
    costs: CostParameters,
    routes: list[_Timeline],
    unserved: list[Unserved],
    routed: list[int],
    seconds: float,
) -> RoutePlan:
    on_trucks = {i for r in routes for i in r.order}
    left = [Unserved(inst.drops[i - 1], UnservedReason.FLEET_EXHAUSTED) for i in routed if i not in on_trucks]

    def at(offset: int) -> datetime:
        return inst.departure + timedelta(seconds=offset)

    return RoutePlan(
        depot=depot,
        method=method,
        routes=tuple(
            TruckRoute(
                visits=tuple(
                    Visit(inst.drops[i - 1], at(a), at(s), at(s + inst.unloading[i]))
                    for i, a, s in zip(r.order, r.arrives, r.starts, strict=True)
                ),
                departs=at(r.departs),
                returns=at(r.returns),
                metres=r.metres,
            )
            for r in routes
        ),
        unserved=tuple(unserved + left),
        capacity_cages=fleet.capacity_cages,
        route_limit_hours=fleet.route_limit_hours,
        cost_gbp=(
            len(routes) * costs.truck_per_route
            + sum(r.metres for r in routes) / 1000 * costs.per_km
            + sum(len(r.order) for r in routes) * costs.per_stop
        ),
        seconds=seconds,
    )


def _prepared(
    depot: str, depot_point: tuple[float, float], stops: Sequence[DeliveryStop], fleet: Fleet, departure: datetime
) -> tuple[_Instance, list[int], list[Unserved]]:
    """The instance of ``stops`` (split into truck-sized drops), the drops a truck can serve alone, and the rest."""
    if departure.tzinfo is None:
        raise ValueError("departure needs a time zone (e.g. Fleet.departure_on(day))")
    names = [(s.store_id, s.reference) for s in stops]
    if len(set(names)) != len(names):
        raise ValueError(f"depot {depot}: a store has two stops with the same reference: merge them or name them apart")
    ordered = sorted(stops, key=lambda s: (s.store_id, s.reference))
    drops = [d for stop in ordered for d in split_stop(stop, fleet.capacity_cages)]
    inst = _instance(depot_point, drops, fleet, departure)
    impossible: list[Unserved] = []
    routable: list[int] = []
    for i in range(1, len(drops) + 1):
        if _timeline([i], inst) is not None:
            routable.append(i)
        else:
            reach = int(inst.seconds[0, i])
            reason = UnservedReason.WINDOW_UNREACHABLE if reach > inst.closes[i] else UnservedReason.ROUTE_TOO_LONG
            impossible.append(Unserved(drops[i - 1], reason))
    return inst, routable, impossible


def route_each_alone(
    depot: str,
    depot_point: tuple[float, float],
    stops: Sequence[DeliveryStop],
    fleet: Fleet,
    costs: CostParameters,
    departure: datetime,
) -> RoutePlan:
    """A truck for every stop (the original workshop's dispatch: a truck per alert), under the same rules."""
    started = time.perf_counter()
    inst, routable, impossible = _prepared(depot, depot_point, stops, fleet, departure)
    trucks = fleet.trucks_available(depot)
    routes = [t for i in routable if (t := _timeline([i], inst)) is not None][: trucks if trucks is not None else None]
    return _plan(depot, "one_per_stop", inst, fleet, costs, routes, impossible, routable, time.perf_counter() - started)


def route_depot(
    depot: str,
    depot_point: tuple[float, float],
    stops: Sequence[DeliveryStop],
    fleet: Fleet,
    costs: CostParameters,
    departure: datetime,
    budget: SolverBudget | None = None,
    seed: int = 0,
) -> DepotRouting:
    """Route one slot's ``stops`` from ``depot``, leaving no earlier than ``departure`` (see the module)."""
    started = time.perf_counter()
    inst, routable, impossible = _prepared(depot, depot_point, stops, fleet, departure)
    trucks = fleet.trucks_available(depot)
    base_routes = _baseline(routable, inst, trucks)
    baseline = _plan(
        depot, "baseline", inst, fleet, costs, base_routes, impossible, routable, time.perf_counter() - started
    )
    solver: RoutePlan | None = None
    if routable and trucks != 0:
        budget = budget or SolverBudget()
        objective = _Objective.of(costs, fleet)
        if len(routable) <= EXACT_PARTS:
            solved = _exact(routable, inst, trucks, objective)
        else:
            solved = _solve(routable, inst, trucks, base_routes, objective, budget, seed)
        if solved is not None:
            solver = _plan(
                depot, "solver", inst, fleet, costs, solved, impossible, routable, time.perf_counter() - started
            )
    else:
        solver = _plan(depot, "solver", inst, fleet, costs, [], impossible, routable, time.perf_counter() - started)
    plan = solver if solver is not None and solver.rank < baseline.rank else baseline
    return DepotRouting(plan=plan, baseline=baseline, solver=solver)


_Job = tuple[str, tuple[float, float], Sequence[DeliveryStop], Fleet, CostParameters, datetime, SolverBudget, int]


def _route_job(job: _Job) -> DepotRouting:
    return route_depot(*job)


def route_slot(
    orders: Mapping[str, Sequence[DeliveryStop]],
    depots: Mapping[str, tuple[float, float]],
    fleet: Fleet,
    costs: CostParameters,
    departure: datetime,
    budget: SolverBudget | None = None,
    workers: int = 1,
    seed: int = 0,
) -> dict[str, DepotRouting]:
    """Every depot's routes for one slot; ``workers`` > 1 routes depots in that many processes at once.

    Depots with more stops start first, so the slot takes about ``ceil(depots / workers)`` budgets.
    """
    missing = sorted(set(orders) - set(depots))
    if missing:
        raise ValueError(f"no depot location for {missing}: add them to the depots")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    budget = budget or SolverBudget()
    jobs: list[_Job] = [
        (depot, depots[depot], list(orders[depot]), fleet, costs, departure, budget, seed)
        for depot in sorted(orders, key=lambda d: (-len(orders[d]), d))
    ]
    if workers == 1 or len(jobs) <= 1:
        results = [_route_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_route_job, jobs))
    return {job[0]: result for job, result in zip(jobs, results, strict=True)}
