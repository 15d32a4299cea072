"""The hindsight lower bound (bench.lower_bound): exact on instances solved by hand, never above a policy."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.lower_bound import Instance, daily_demand, hindsight_lower_bound, instance_from_catalog
from storeops.costs import CostParameters
from storeops.stores.catalog import build_catalog
from storeops.stores.simulation import advance_to, initial_state

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
        "truck_capacity": 1000,
        "max_stops": 8,
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


def test_a_truck_that_cannot_carry_the_week_is_sent_twice_or_not_at_all() -> None:
    # trucks of 20 units: serving 30 takes two trucks (408 and more); one truck and 10 lost: 304; none: 300
    result = hindsight_lower_bound(one_pair([10, 10, 10], truck_capacity=20), COSTS)
    assert result.cost == pytest.approx(300.0, rel=1e-6)


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
        truck_capacity=100,
        max_stops=8,
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


# -- never above a policy: a daily simulation of simple policies, priced the same way ----------------------


def _random_instance(seed: int) -> tuple[Instance, np.ndarray, np.ndarray, np.ndarray, CostParameters]:
    """An instance on a plane (km), its stores' and depots' points, the initial stock's last days."""
    rng = np.random.default_rng(seed)
    n_stores, n_products, days, n_depots = (int(n) for n in rng.integers([1, 1, 2, 1], [5, 5, 6, 3]))
    depots = rng.uniform(0, 100, (n_depots, 2))
    depot = rng.integers(0, n_depots, n_stores)
    points = depots[depot] + rng.normal(0, 15, (n_stores, 2))
    distance = np.linalg.norm(points[:, None] - points[None, :], axis=2)
    same = (depot[:, None] == depot[None, :]) & ~np.eye(n_stores, dtype=bool)
    nearest = np.where(same, distance, np.inf).min(axis=1)
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
    instance = Instance(
        demand=rng.poisson(rng.uniform(0, 12, (n_stores, n_products, 1)), (n_stores, n_products, days)),
        initial_stock=initial,
        capacity=capacity,
        case_pack=case,
        margin=rng.uniform(0.05, 6, n_products),
        unit_cost=rng.uniform(0.2, 3, n_products),
        shelf_life_days=life,
        depot_km=np.linalg.norm(points - depots[depot], axis=1),
        nearest_km=nearest,
        depot=depot,
        truck_capacity=int(rng.integers(10, 120)),
        max_stops=int(rng.integers(1, 4)),
        initial_expiring=expiring,
    )
    costs = CostParameters(
        truck_per_route=float(rng.uniform(0, 200)),
        per_km=float(rng.uniform(0, 2)),
        per_stop=float(rng.uniform(0, 20)),
        holding_rate_per_year=float(rng.uniform(0, 5)),
    )
    return instance, points, depots, last_day, costs


def _route_km(depot: np.ndarray, points: list[np.ndarray]) -> float:
    """Nearest neighbour from the depot, and back (storeops.dispatch.routing's route)."""
    here, left, km = depot, list(points), 0.0
    while left:
        best = min(range(len(left)), key=lambda i: float(np.linalg.norm(left[i] - here)))
        km += float(np.linalg.norm(left[best] - here))
        here = left.pop(best)
    return km + float(np.linalg.norm(here - depot))


def _policy_cost(
    instance: Instance,
    points: np.ndarray,
    depots: np.ndarray,
    last_day: np.ndarray,
    costs: CostParameters,
    fill: np.ndarray,
) -> float:
    """A policy that fills the shelves of the stores ``fill[s, d]`` to capacity at the start of day d (whole
    cases shipped, the rest refused), with trucks packed first-fit decreasing and routed nearest neighbour;
    FIFO sales, expiry at the end of a perishable's last day, holding on the stock at the end of each day."""
    n_stores, n_products, days = instance.shape
    life = instance.shelf_life_days
    cohorts = [[{} for _ in range(n_products)] for _ in range(n_stores)]  # last day -> units (perishables)
    stock = instance.initial_stock.astype(np.int64).copy()
    for s in range(n_stores):
        for p in range(n_products):
            for j in last_day[s, p, : stock[s, p]]:
                cohorts[s][p][int(j)] = cohorts[s][p].get(int(j), 0) + 1
    total = 0.0
    for d in range(days):
        stops: dict[int, list[tuple[int, int]]] = {}  # depot -> (units, store) of each stop
        for s in np.flatnonzero(fill[:, d]):
            room = np.maximum(instance.capacity[s] - stock[s], 0)
            cases = np.ceil(room / instance.case_pack).astype(np.int64)
            load = int((cases * instance.case_pack).sum())
            if load == 0:
                continue
            stock[s] += room
            for p in np.flatnonzero(room * (life > 0)):
                cohorts[s][p][d + life[p] - 1] = cohorts[s][p].get(d + life[p] - 1, 0) + int(room[p])
            while load > 0:  # a load larger than a truck is several stops
                part = min(load, instance.truck_capacity)
                stops.setdefault(int(instance.depot[s]), []).append((part, int(s)))
                load -= part
        for g, its_stops in stops.items():
            trucks: list[list[tuple[int, int]]] = []
            for stop in sorted(its_stops, reverse=True):
                for truck in trucks:
                    if (
                        sum(u for u, _ in truck) + stop[0] <= instance.truck_capacity
                        and len(truck) < instance.max_stops
                    ):
                        truck.append(stop)
                        break
                else:
                    trucks.append([stop])
            for truck in trucks:
                km = _route_km(depots[g], [points[s] for _, s in truck])
                total += costs.truck_per_route + costs.per_km * km + costs.per_stop * len(truck)
        sold = np.minimum(instance.demand[:, :, d], stock)
        stock -= sold
        total += float((instance.margin[None, :] * (instance.demand[:, :, d] - sold)).sum())
        for s in range(n_stores):
            for p in np.flatnonzero(life > 0):
                left = int(sold[s, p])
                for j in sorted(cohorts[s][p]):
                    take = min(left, cohorts[s][p][j])
                    cohorts[s][p][j] -= take
                    left -= take
        total += float((stock * instance.unit_cost[None, :]).sum()) * costs.holding_rate_per_year / 365
        for s in range(n_stores):
            for p in np.flatnonzero(life > 0):
                expired = cohorts[s][p].pop(d, 0)
                stock[s, p] -= expired
                total += expired * float(instance.unit_cost[p])
    return total


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_bound_never_exceeds_a_feasible_policy(seed: int) -> None:
    instance, points, depots, last_day, costs = _random_instance(seed)
    result = hindsight_lower_bound(instance, costs, time_limit_s=20)
    n_stores, _, days = instance.shape
    rng = np.random.default_rng(seed + 1)
    policies = {
        "every day": np.ones((n_stores, days), dtype=bool),
        "never": np.zeros((n_stores, days), dtype=bool),
        "every other day": np.broadcast_to(np.arange(days) % 2 == 0, (n_stores, days)),
        "at random": rng.random((n_stores, days)) < 0.4,
    }
    for name, fill in policies.items():
        cost = _policy_cost(instance, points, depots, last_day, costs, fill)
        assert result.cost <= cost + 1e-6 * max(1.0, cost), (name, result.cost, cost)
    assert result.cost <= result.parts["incumbent"] + 1e-9


def test_the_simulators_no_delivery_run_costs_at_least_the_bound() -> None:
    # the real shelves (hourly sales, FIFO cohorts), left alone for 3 days: no policy does better than the bound
    start = datetime(2026, 3, 23, tzinfo=UTC)
    catalog = build_catalog(3, 6, seed=11)
    state = initial_state(catalog, start)
    demand = daily_demand(state.model, start, 3)
    instance = instance_from_catalog(catalog, state, demand, truck_capacity=4000, max_stops=8)
    assert instance.shape == (3, 6, 3)
    assert np.all(instance.depot_km > 0)
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
