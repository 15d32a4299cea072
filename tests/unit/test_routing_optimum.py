"""bench.routing_optimum: the set-partitioning km-optimum equals brute force on small slots, and no plan
(the solver's, the baseline's) has fewer km; the LP bound is below it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bench.routing_optimum import km_optimum, main, route_columns
from storeops.costs import CostParameters
from storeops.dispatch import vrp
from storeops.dispatch.fleet import DeliveryStop, Fleet

DEPOT = (52.0, -1.5)
DEPARTURE = datetime(2026, 3, 3, 3, tzinfo=UTC)


def slot(seed: int, stops: int, spread: float = 0.35) -> list[DeliveryStop]:
    rng = np.random.default_rng(seed)
    return [
        DeliveryStop(
            store_id=f"S{i}",
            lat=DEPOT[0] + float(rng.normal(0, spread)),
            lon=DEPOT[1] + float(rng.normal(0, spread)),
            cages=int(rng.integers(1, 3)),
            units=100,
            window_opens=DEPARTURE + timedelta(hours=1),
            window_closes=DEPARTURE + timedelta(hours=19),
        )
        for i in range(stops)
    ]


def partitions(items: list[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in partitions(rest):
        yield [[first], *partition]
        for k in range(len(partition)):
            yield [*partition[:k], [first, *partition[k]], *partition[k + 1 :]]


def brute_force_metres(inst: vrp._Instance, routable: list[int]) -> int:
    """The fewest metres over every partition of the drops into routes and every order of each."""

    def best(block: tuple[int, ...]) -> float:
        routes = (vrp._timeline(list(order), inst) for order in itertools.permutations(block))
        return min((r.metres for r in routes if r is not None), default=float("inf"))

    cache: dict[tuple[int, ...], float] = {}
    total = min(sum(cache.setdefault(tuple(b), best(tuple(b))) for b in p) for p in partitions(routable))
    return int(total)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_km_optimum_is_the_brute_force_minimum_and_no_plan_beats_it(seed: int) -> None:
    fleet = Fleet(capacity_cages=4, max_duty_hours=5.0)  # routes bound by cages and hours
    stops = slot(seed, 8)
    inst, routable, _ = vrp._prepared("d", DEPOT, stops, fleet, DEPARTURE)
    routing = vrp.route_depot("d", DEPOT, stops, fleet, CostParameters(), DEPARTURE, seed=seed)
    solver_metres = sum(r.metres for r in routing.plan.routes)
    best = km_optimum(inst, routable, solver_metres)
    assert best.proven_metres == brute_force_metres(inst, routable)
    assert best.lp_metres <= best.ip_metres + 1e-6
    assert best.proven_metres <= solver_metres <= sum(r.metres for r in routing.baseline.routes)
    assert sorted(i for r in best.routes or [] for i in r.order) == sorted(routable)
    assert len(routable) >= 6  # a stop too far for the hours is unserved, not routed
    assert max(len(r.order) for r in best.routes or []) > 1


def test_columns_are_the_sets_a_truck_can_serve() -> None:
    fleet = Fleet(capacity_cages=4, max_duty_hours=4.0)
    inst, routable, _ = vrp._prepared("d", DEPOT, slot(4, 7, spread=0.25), fleet, DEPARTURE)
    assert len(routable) >= 6
    columns = {c.members: c.metres for c in route_columns(inst, routable)}
    for size in range(1, len(routable) + 1):
        for chosen in itertools.combinations(range(len(routable)), size):
            orders = (vrp._timeline([routable[j] for j in order], inst) for order in itertools.permutations(chosen))
            feasible = [r.metres for r in orders if r is not None]
            mask = sum(1 << j for j in chosen)
            if feasible:
                assert columns.get(mask) == min(feasible)
            else:
                assert mask not in columns or sum(inst.cages[routable[j]] for j in chosen) <= inst.capacity


def test_the_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stores", "20", "--products", "20", "--capacity", "8", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (result,) = payload["results"]
    assert result["optimum_proven"]
    shares = result["of_baseline"]
    assert shares["lp_bound"] <= shares["optimum"] <= shares["solver"] <= 1.0
