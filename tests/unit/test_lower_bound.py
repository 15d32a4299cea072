"""The hindsight lower bound (bench.lower_bound): exact on instances solved by hand, never above a policy
whose trucks the product's router loads and routes (storeops.dispatch.vrp, storeops.dispatch.fleet.Fleet)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.lower_bound import (
    METRE_ROUNDING_KM,
    Instance,
    daily_demand,
    hindsight_lower_bound,
    instance_from_catalog,
    road_distances,
    stops_per_truck,
)
from storeops.costs import CostParameters
from storeops.directory import DEPOTS, haversine_km
from storeops.dispatch.fleet import DeliveryStop, Fleet
from storeops.dispatch.vrp import SolverBudget, route_depot
from storeops.stores.catalog import build_catalog
from storeops.stores.simulation import advance_to, initial_state
from tests.conftest import examples

COSTS = CostParameters()
HOLDING_DAY = COSTS.holding_rate_per_year / 365  # of unit cost, a unit-day


def one_pair(demand: list[int], **kw: object) -> Instance:
    """One store, one product, one depot 5 km away."""
    fields: dict[str, object] = {
        "demand": np.array(demand, dtype=np.int64).reshape(1, 1, -1),
        "initial_stock": np.zeros((1, 1), dtype=np.int64),
        "capacity": np.full((1, 1), 1000),
        "case_pack": np.array([1]),
        "margin": np.array([10.0]),
        "unit_cost": np.array([1.0]),
        "shelf_life_days": np.array([0]),
        "depot_km": np.array([5.0]),
        "nearest_km": np.array([math.inf]),
        "depot": np.array([0]),
        "case_litres": np.array([1.0]),
        "truck_litres": 1000.0,
        "stops_per_truck": 23,
    }
    fields.update(kw)
    return Instance(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("case_pack", [1, 4])
def test_constant_demand_one_delivery_on_the_first_day(case_pack: int) -> None:
    # 10 a day for 3 days, an empty shelf, a margin of 10: one truck on day 0 with 30 units (in cases of 4,
    # 32 shipped and 2 refused). Depot and back: 10 km. The 10 units left after day 0 that day 1 does not
    # sell are held through day 1: 10 unit-days. Two trucks, or any lost sale (10 each), cost more.
    result = hindsight_lower_bound(one_pair([10, 10, 10], case_pack=np.array([case_pack])), COSTS)
    expected = 180 + 0.9 * 10 + 15 + 10 * 1.0 * HOLDING_DAY
    assert result.status == "Optimal"
    assert result.cost == pytest.approx(expected, rel=1e-6)
    assert (result.deliveries, result.trucks) == (1, 1)
    assert result.parts["lost_margin"] == pytest.approx(0.0, abs=1e-6)
    assert result.plan["accepted"][0, 0, 0] == pytest.approx(30)


def test_a_small_margin_is_not_worth_a_truck() -> None:
    result = hindsight_lower_bound(one_pair([10, 10, 10], margin=np.array([1.0])), COSTS)
    assert result.cost == pytest.approx(30.0, rel=1e-6)  # 30 units lost at 1
    assert result.deliveries == result.trucks == 0


@pytest.mark.parametrize(("case_pack", "case_litres"), [(1, 2.0), (4, 8.0)])
def test_a_truck_that_cannot_carry_the_week_is_sent_twice_or_not_at_all(case_pack: int, case_litres: float) -> None:
    # 2 litres a unit, trucks of 40 litres: serving 30 units (60 litres) takes two trucks (408 and more); one
    # truck and 10 lost: 304; none: 300
    instance = one_pair(
        [10, 10, 10], case_pack=np.array([case_pack]), case_litres=np.array([case_litres]), truck_litres=40.0
    )
    assert hindsight_lower_bound(instance, COSTS).cost == pytest.approx(300.0, rel=1e-6)
    # a truck twice the size carries the week (with cases of 4, 32 units: 64 litres): one truck, 10 km, one stop
    bigger = hindsight_lower_bound(dataclasses.replace(instance, truck_litres=80.0), COSTS)
    assert (bigger.deliveries, bigger.trucks) == (1, 1)
    assert bigger.cost == pytest.approx(180 + 0.9 * 10 + 15 + 10 * 1.0 * HOLDING_DAY, rel=1e-6)


def test_stops_per_truck_from_the_route_limit() -> None:
    # 9 h - 45 min = 495 min; a stop takes at least 20 min + one cage at 1.5 min: 23 stops
    assert stops_per_truck(Fleet()) == 23
    assert (
        stops_per_truck(Fleet(max_duty_hours=1.0, break_minutes=0.0, minutes_per_stop=29.0, minutes_per_cage=1.0)) == 2
    )
    assert stops_per_truck(Fleet(minutes_per_stop=0.0, minutes_per_cage=0.0)) is None


def test_stops_per_truck_bound_the_trucks() -> None:
    # three stores 5 km from the depot and 1 km apart, each selling 10 a day: worth serving, in one truck; with
    # one stop a truck, three trucks (each further store: a truck and its depot leg, 180 + 0.9 x 5, more)
    three = dataclasses.replace(
        one_pair([10, 10, 10]),
        demand=np.full((3, 1, 3), 10),
        initial_stock=np.zeros((3, 1), dtype=np.int64),
        capacity=np.full((3, 1), 1000),
        depot_km=np.full(3, 5.0),
        nearest_km=np.full(3, 1.0),
        depot=np.zeros(3, dtype=np.int64),
    )
    free = hindsight_lower_bound(dataclasses.replace(three, stops_per_truck=None), COSTS)
    one = hindsight_lower_bound(dataclasses.replace(three, stops_per_truck=1), COSTS)
    assert (free.trucks, free.deliveries) == (1, 3)
    assert (one.trucks, one.deliveries) == (3, 3)
    assert one.cost - free.cost == pytest.approx(2 * (COSTS.truck_per_route + COSTS.per_km * 5.0), rel=1e-6)
    # no stop fits in a route: nothing is delivered, everything is lost
    none = hindsight_lower_bound(dataclasses.replace(three, stops_per_truck=0), COSTS)
    assert none.cost == pytest.approx(3 * 30 * 10.0, rel=1e-6)


def test_zero_demand_and_full_shelves_cost_only_their_holding() -> None:
    stock = np.array([[12, 30], [7, 1]])
    instance = Instance(
        demand=np.zeros((2, 2, 4), dtype=np.int64),
        initial_stock=stock,
        capacity=stock.copy(),
        case_pack=np.array([6, 1]),
        margin=np.array([0.5, 2.0]),
        unit_cost=np.array([1.2, 0.4]),
        shelf_life_days=np.array([0, 0]),
        depot_km=np.array([3.0, 8.0]),
        nearest_km=np.array([2.0, 2.0]),
        depot=np.array([0, 0]),
        case_litres=np.array([3.0, 0.5]),
        truck_litres=100.0,
        stops_per_truck=8,
    )
    result = hindsight_lower_bound(instance, COSTS)
    expected = 4 * HOLDING_DAY * float((stock * instance.unit_cost[None, :]).sum())
    assert result.cost == pytest.approx(expected, rel=1e-6)
    assert result.parts["holding"] == pytest.approx(expected, rel=1e-6)
    assert result.deliveries == 0


def test_perishable_stock_nobody_buys_expires_on_its_last_day() -> None:
    # shelf life 2: the initial 10 units expire by the end of day 1 at the latest, and cost their unit cost
    # (their age unknown, they may expire at the end of day 0, which saves holding them on day 1)
    instance = one_pair([0, 0, 0], shelf_life_days=np.array([2]), initial_stock=np.array([[10]]))
    result = hindsight_lower_bound(instance, COSTS)
    assert result.parts["waste"] == pytest.approx(10.0, rel=1e-6)
    assert result.cost == pytest.approx(10.0, rel=1e-6)
    # with the simulator's cohorts: 4 of them expire on day 0, 6 on day 2; the 6 are held through days 0 and 1
    spread = np.array([4, 0, 6]).reshape(1, 1, 3)
    result = hindsight_lower_bound(
        one_pair([0, 0, 0], shelf_life_days=np.array([3]), initial_stock=np.array([[10]]), initial_expiring=spread),
        COSTS,
    )
    assert result.cost == pytest.approx(10.0 + 6 * 2 * HOLDING_DAY, rel=1e-6)


# -- never above a policy: a daily simulation of simple policies, their trucks routed by the product's router ---

BASE = (52.2, -1.6)  # the random instances' depots lie within half a degree of it
DEPARTURE = datetime(2026, 3, 23, 3, tzinfo=UTC)  # day d's trucks leave d days later
TINY = SolverBudget(seconds_per_part=0.0, floor_seconds=0.02, cap_seconds=0.02)


@dataclasses.dataclass(frozen=True)
class World:
    """A random instance, where its stores and depots are, the fleet and costs it was drawn with, and each
    initial unit's last day (-1: none, not perishable)."""

    instance: Instance
    points: list[tuple[float, float]]
    depots: list[tuple[float, float]]
    fleet: Fleet
    costs: CostParameters
    last_day: np.ndarray


def _random_world(seed: int) -> World:
    rng = np.random.default_rng(seed)
    n_stores, n_products, days, n_depots = (int(n) for n in rng.integers([1, 1, 2, 1], [5, 5, 6, 3]))
    depots = [(BASE[0] + a, BASE[1] + b) for a, b in rng.uniform(-0.5, 0.5, (n_depots, 2))]
    depot = rng.integers(0, n_depots, n_stores)
    points = []
    for g, (north, east) in zip(depot, rng.normal(0, 15, (n_stores, 2)), strict=True):  # km from its depot
        lat, lon = depots[g]
        points.append((lat + north / 111.195, lon + east / (111.195 * math.cos(math.radians(lat)))))
    # a fleet whose every single stop fits in a route (the router leaves none unserved), with from one to
    # dozens of stops a route
    speed, circuity, cages = float(rng.uniform(30, 80)), float(rng.uniform(1.0, 1.6)), int(rng.integers(1, 7))
    per_stop, per_cage, pause = float(rng.uniform(5, 120)), float(rng.uniform(0, 15)), float(rng.uniform(0, 60))
    farthest = max(haversine_km(depots[g], point) for g, point in zip(depot, points, strict=True)) * circuity
    alone = 2 * farthest / speed + (per_stop + per_cage * cages) / 60  # hours: the longest one-stop route
    fleet = Fleet(
        capacity_cages=cages,
        cage_litres=float(rng.uniform(20, 80)),
        minutes_per_stop=per_stop,
        minutes_per_cage=per_cage,
        speed_kmh=speed,
        circuity=circuity,
        break_minutes=pause,
        max_duty_hours=pause / 60 + alone + float(rng.uniform(0.1, 5)),
    )
    case = rng.choice([1, 2, 4, 6], n_products)
    capacity = case[None, :] * rng.integers(1, 8, (n_stores, n_products))
    initial = np.floor(capacity * rng.uniform(0, 1, capacity.shape)).astype(np.int64)
    life = np.where(rng.random(n_products) < 0.5, rng.integers(1, 6, n_products), 0)
    # each initial unit of a perishable lasts until a random day in 0..L-1
    last_day = np.full((n_stores, n_products, int(initial.max(initial=0)) + 1), -1)
    expiring = np.zeros((n_stores, n_products, days))
    for s in range(n_stores):
        for p in range(n_products):
            if life[p]:
                ages = rng.integers(0, life[p], initial[s, p])
                last_day[s, p, : initial[s, p]] = ages
                for j in ages[ages < days]:
                    expiring[s, p, j] += 1
    depot_km, nearest_km = road_distances(depots, points, depot, fleet)
    instance = Instance(
        demand=rng.poisson(rng.uniform(0, 12, (n_stores, n_products, 1)), (n_stores, n_products, days)),
        initial_stock=initial,
        capacity=capacity,
        case_pack=case,
        margin=rng.uniform(0.05, 6, n_products),
        unit_cost=rng.uniform(0.2, 3, n_products),
        shelf_life_days=life,
        depot_km=depot_km,
        nearest_km=nearest_km,
        depot=depot,
        case_litres=np.round(case * rng.uniform(0.2, 1.5, n_products), 2),  # a case is less than a cage
        truck_litres=fleet.capacity_cages * fleet.cage_litres,
        stops_per_truck=stops_per_truck(fleet),
        initial_expiring=expiring,
    )
    costs = CostParameters(
        truck_per_route=float(rng.uniform(0, 200)),
        per_km=float(rng.uniform(0, 2)),
        per_stop=float(rng.uniform(0, 20)),
        holding_rate_per_year=float(rng.uniform(0, 5)),
    )
    return World(instance, points, depots, fleet, costs, last_day)


def _deliveries(world: World, store: int, cases: np.ndarray, departure: datetime) -> list[DeliveryStop]:
    """A store's cases as truck-sized deliveries, whole cases first-fit (``storeops.dispatch.loading``'s rule,
    a request per case), each its litres in whole cages, open all day."""
    instance, fleet = world.instance, world.fleet
    room = fleet.capacity_cages * fleet.cage_litres
    loads: list[list[float]] = []  # [litres, units]
    for p in np.flatnonzero(cases):
        for _ in range(int(cases[p])):
            litres = float(instance.case_litres[p])
            fit = next((load for load in loads if load[0] + litres <= room), None)
            if fit is None:
                loads.append(fit := [0.0, 0.0])
            fit[0] += litres
            fit[1] += float(instance.case_pack[p])
    lat, lon = world.points[store]
    return [
        DeliveryStop(
            f"S{store}",
            lat,
            lon,
            fleet.cages_for(litres),
            int(units),
            departure,
            departure + timedelta(hours=24),
            reference=str(k),
        )
        for k, (litres, units) in enumerate(loads)
    ]


@dataclasses.dataclass
class Run:
    """A policy's run: its cost, the routes' part of it, and its plan as ``hindsight_lower_bound(run=...)``
    takes it."""

    cost: float
    transport: float
    plan: dict[str, np.ndarray]

    @property
    def trucks(self) -> int:
        return int(self.plan["trucks"].sum())


class _PolicyRun:
    """The state of a run of ``_policy_run``: stock, perishable cohorts, the plan and the costs so far."""

    def __init__(self, world: World) -> None:
        self.world = world
        instance = world.instance
        n_stores, n_products, days = instance.shape
        self.depot_ids = np.unique(instance.depot)
        self.plan = {
            "cases": np.zeros(instance.shape, dtype=np.int64),
            "accepted": np.zeros(instance.shape, dtype=np.int64),
            "stops": np.zeros((n_stores, days), dtype=np.int64),
            "trucks": np.zeros((self.depot_ids.size, days), dtype=np.int64),
        }
        self.life = instance.shelf_life_days
        # last day -> units (perishables)
        self.cohorts: list[list[dict[int, int]]] = [[{} for _ in range(n_products)] for _ in range(n_stores)]
        self.stock = instance.initial_stock.astype(np.int64).copy()
        for s in range(n_stores):
            for p in range(n_products):
                for j in world.last_day[s, p, : self.stock[s, p]]:
                    self.cohorts[s][p][int(j)] = self.cohorts[s][p].get(int(j), 0) + 1
        self.total = self.transport = 0.0

    def fill(self, stores: np.ndarray, d: int, departure: datetime) -> dict[int, list[DeliveryStop]]:
        """Fill the shelves of ``stores`` on day d; each depot's deliveries."""
        instance, stock, cohorts, life = self.world.instance, self.stock, self.cohorts, self.life
        stops: dict[int, list[DeliveryStop]] = {}
        for s in stores:
            room = np.maximum(instance.capacity[s] - stock[s], 0)
            cases = np.ceil(room / instance.case_pack).astype(np.int64)
            if not cases.any():
                continue
            stock[s] += room
            for p in np.flatnonzero(room * (life > 0)):
                cohorts[s][p][d + life[p] - 1] = cohorts[s][p].get(d + life[p] - 1, 0) + int(room[p])
            deliveries = _deliveries(self.world, int(s), cases, departure)
            stops.setdefault(int(instance.depot[s]), []).extend(deliveries)
            self.plan["cases"][s, :, d], self.plan["accepted"][s, :, d] = cases, room
        return stops

    def route(self, stops: dict[int, list[DeliveryStop]], d: int, departure: datetime) -> None:
        world, plan = self.world, self.plan
        for g, its_stops in stops.items():
            routes = route_depot(f"D{g}", world.depots[g], its_stops, world.fleet, world.costs, departure, TINY).plan
            assert not routes.unserved, routes.unserved
            self.total += routes.cost_gbp
            self.transport += routes.cost_gbp
            plan["trucks"][np.searchsorted(self.depot_ids, g), d] = len(routes.routes)
            for route in routes.routes:  # a stop is a visit (one truck-sized delivery)
                for visit in route.visits:
                    plan["stops"][int(visit.drop.stop.store_id[1:]), d] += 1

    def sell(self, d: int) -> None:
        """FIFO sales of day d; the margin of what could not be sold is lost."""
        instance, stock = self.world.instance, self.stock
        sold = np.minimum(instance.demand[:, :, d], stock)
        stock -= sold
        self.total += float((instance.margin[None, :] * (instance.demand[:, :, d] - sold)).sum())
        for s in range(stock.shape[0]):
            for p in np.flatnonzero(self.life > 0):
                left = int(sold[s, p])
                for j in sorted(self.cohorts[s][p]):
                    take = min(left, self.cohorts[s][p][j])
                    self.cohorts[s][p][j] -= take
                    left -= take

    def hold_and_expire(self, d: int) -> None:
        """Holding on the stock at the end of day d, then what expires at its end."""
        instance, stock = self.world.instance, self.stock
        self.total += float((stock * instance.unit_cost[None, :]).sum()) * self.world.costs.holding_rate_per_year / 365
        for s in range(stock.shape[0]):
            for p in np.flatnonzero(self.life > 0):
                expired = self.cohorts[s][p].pop(d, 0)
                stock[s, p] -= expired
                self.total += expired * float(instance.unit_cost[p])


def _policy_run(world: World, fill: np.ndarray) -> Run:
    """A policy that fills the shelves of the stores ``fill[s, d]`` to capacity on day d (whole cases
    shipped, the rest refused), each day's deliveries loaded in roll cages and routed from their depots by
    ``storeops.dispatch.vrp.route_depot`` (capacity, route time limit, return legs; the plan's cost as the
    product prices it); FIFO sales, expiry at the end of a perishable's last day, holding on the stock at the
    end of each day."""
    run = _PolicyRun(world)
    for d in range(world.instance.shape[2]):
        departure = DEPARTURE + timedelta(days=d)
        run.route(run.fill(np.flatnonzero(fill[:, d]), d, departure), d, departure)
        run.sell(d)
        run.hold_and_expire(d)
    return Run(run.total, run.transport, run.plan)


def _check_run(instance: Instance, costs: CostParameters, bound: float, run: Run, name: str) -> None:
    """The run, mapped to the programme, is feasible and costs no more there than it did, in all and in
    transport (trucks, km, stops); and the bound is below it."""
    priced = hindsight_lower_bound(instance, costs, time_limit_s=20, run=run.plan)
    assert priced.status == "Optimal", (name, priced.status)
    assert priced.cost <= run.cost + 1e-6 * max(1.0, run.cost), (name, priced.cost, run.cost)
    transport = priced.parts["trucks"] + priced.parts["km"] + priced.parts["stops"]
    assert transport <= run.transport + 1e-6 * max(1.0, run.transport), (name, transport, run.transport)
    assert bound <= run.cost + 1e-6 * max(1.0, run.cost), (name, bound, run.cost)


@settings(max_examples=examples(10), deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_bound_never_exceeds_a_feasible_policy(seed: int) -> None:
    world = _random_world(seed)
    instance = world.instance
    result = hindsight_lower_bound(instance, world.costs, time_limit_s=20)
    n_stores, _, days = instance.shape
    rng = np.random.default_rng(seed + 1)
    policies = {
        "every day": np.ones((n_stores, days), dtype=bool),
        "never": np.zeros((n_stores, days), dtype=bool),
        "every other day": np.broadcast_to(np.arange(days) % 2 == 0, (n_stores, days)),
        "at random": rng.random((n_stores, days)) < 0.4,
    }
    for name, fill in policies.items():
        _check_run(instance, world.costs, result.cost, _policy_run(world, fill), name)
    assert result.cost <= result.parts["incumbent"] + 1e-9


def test_a_policy_held_to_the_route_limit_and_to_the_trucks_volume_still_costs_at_least_the_bound() -> None:
    # four stores north of one depot, delivered every day with routes of at most one stop (a stop takes 2 h
    # of a 3 h limit) and trucks of two 25-litre cages: the programme's constraints by time and by volume bind
    # the run (a stricter one would make it infeasible), and the run still costs no less than the bound
    for seed in range(3):
        fleet = Fleet(
            capacity_cages=2,
            cage_litres=25.0,
            minutes_per_stop=110.0,
            minutes_per_cage=10.0,
            speed_kmh=80.0,
            circuity=1.0,
            break_minutes=0.0,
            max_duty_hours=3.0,
        )
        n_stores = 4
        depot = np.zeros(n_stores, dtype=np.int64)
        points = [(BASE[0] + 0.05 * k, BASE[1]) for k in range(1, n_stores + 1)]  # 5.6 to 22 km north
        depot_km, nearest_km = road_distances([BASE], points, depot, fleet)
        rng = np.random.default_rng(seed)
        instance = Instance(
            demand=rng.poisson(8, (n_stores, 2, 3)),
            initial_stock=np.zeros((n_stores, 2), dtype=np.int64),
            capacity=np.full((n_stores, 2), 24),
            case_pack=np.array([4, 6]),
            margin=np.array([40.0, 30.0]),
            unit_cost=np.array([1.0, 2.0]),
            shelf_life_days=np.array([0, 0]),
            depot_km=depot_km,
            nearest_km=nearest_km,
            depot=depot,
            case_litres=np.array([6.0, 9.0]),
            truck_litres=50.0,
            stops_per_truck=stops_per_truck(fleet),
        )
        assert instance.stops_per_truck == 1
        small = World(instance, points, [BASE], fleet, COSTS, np.full((n_stores, 2, 1), -1))
        result = hindsight_lower_bound(instance, COSTS, time_limit_s=20)
        assert result.trucks >= result.deliveries  # one stop a truck
        run = _policy_run(small, np.ones((n_stores, 3), dtype=bool))
        assert run.trucks >= 3 * n_stores  # every store every day, a truck each (day 0: 72 litres, two)
        _check_run(instance, COSTS, result.cost, run, f"seed {seed}")


def test_the_simulators_no_delivery_run_costs_at_least_the_bound() -> None:
    # the real shelves (hourly sales, FIFO cohorts), left alone for 3 days: no policy does better than the bound
    start = datetime(2026, 3, 23, tzinfo=UTC)
    catalog = build_catalog(3, 6, seed=11)
    state = initial_state(catalog, start)
    demand = daily_demand(state.model, start, 3)
    fleet = Fleet()
    instance = instance_from_catalog(catalog, state, demand, fleet)
    assert instance.shape == (3, 6, 3)
    assert np.all(instance.depot_km > 0)
    # the trucks' terms: road km, roll cages of the catalog's case volumes, stops within the route limit
    store = catalog.stores.iloc[0]
    crow = haversine_km(DEPOTS[store["region"]], (float(store["lat"]), float(store["lon"])))
    assert instance.depot_km[0] == pytest.approx(crow * fleet.circuity - METRE_ROUNDING_KM, abs=1e-9)
    assert np.array_equal(instance.case_litres, catalog.products["case_litres"].to_numpy())
    assert instance.truck_litres == fleet.capacity_cages * fleet.cage_litres == 31_500
    assert instance.stops_per_truck == 23
    result = hindsight_lower_bound(instance, COSTS, time_limit_s=20)
    unit_cost = catalog.products["unit_cost"].to_numpy()
    margin = (catalog.products["price"] - catalog.products["unit_cost"]).to_numpy()
    cost, demanded, clock = 0.0, 0, start
    while clock < start + timedelta(days=3):
        clock += timedelta(hours=1)
        tick = advance_to(state, clock)
        cost += float((tick.on_hand * unit_cost).sum()) * tick.period_hours * COSTS.holding_per_unit_hour
        cost += float((tick.units_expired * unit_cost).sum() + (tick.units_lost * margin).sum())
        demanded += int(tick.units_demanded.sum())
    assert demanded == int(demand.sum())
    assert result.cost <= cost + 1e-6
