"""The fleet model and one depot's routing: constraints hold, nothing is lost or doubled, the solver never loses.

Routes are checked by recomputing each truck's timeline here, from great-circle distances, the
circuity and the speed (not from the router's matrices or the solver's numbers); times agree within
a second a leg (the router works in whole seconds and metres).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeops.costs import CostParameters
from storeops.directory import haversine_km
from storeops.dispatch.fleet import DeliveryStop, Fleet
from storeops.dispatch.fleet_figures import fleet_figures
from storeops.dispatch.vrp import (
    DepotRouting,
    RoutePlan,
    SolverBudget,
    TruckRoute,
    UnservedReason,
    Visit,
    route_depot,
    route_slot,
    split_stop,
)
from tests.conftest import examples

DEPOT = (52.49, -1.89)
DEPARTURE = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
TINY = SolverBudget(seconds_per_part=0.0, floor_seconds=0.1, cap_seconds=0.1)
COSTS = CostParameters()


def stop(
    store_id: str,
    north_km: float = 10.0,
    cages: int = 5,
    units: int = 1000,
    opens_h: float = 0.0,
    closes_h: float = 8.0,
    east_km: float = 0.0,
) -> DeliveryStop:
    """A stop ``north_km`` north (and ``east_km`` east) of the depot, its window in hours after DEPARTURE."""
    lat = DEPOT[0] + north_km / 111.195
    lon = DEPOT[1] + east_km / (111.195 * math.cos(math.radians(DEPOT[0])))
    return DeliveryStop(
        store_id,
        lat,
        lon,
        cages,
        units,
        DEPARTURE + timedelta(hours=opens_h),
        DEPARTURE + timedelta(hours=closes_h),
    )


def route(stops: list[DeliveryStop], fleet: Fleet | None = None) -> DepotRouting:
    return route_depot("central", DEPOT, stops, fleet or Fleet(), COSTS, DEPARTURE, TINY, seed=1)


# -- the independent check ------------------------------------------------------------------------------


def drive_seconds(a: tuple[float, float], b: tuple[float, float], fleet: Fleet) -> float:
    return haversine_km(a, b) * fleet.circuity / fleet.speed_kmh * 3600


def check_route(truck: TruckRoute, fleet: Fleet) -> None:
    """Capacity, windows and the route limit, on a timeline recomputed from the coordinates."""
    assert truck.visits, "an empty route"
    assert truck.cages <= fleet.capacity_cages
    assert truck.departs >= DEPARTURE
    tolerance = timedelta(seconds=len(truck.visits) + 2)
    clock, here, km = truck.departs, DEPOT, 0.0
    for visit in truck.visits:
        point = visit.drop.stop.point
        clock += timedelta(seconds=drive_seconds(here, point, fleet))
        km += haversine_km(here, point) * fleet.circuity
        assert abs(visit.arrives - clock) <= tolerance
        start = max(clock, visit.drop.stop.window_opens)
        assert start <= visit.drop.stop.window_closes + tolerance, "unloading starts after the window closes"
        assert abs(visit.unloading_starts - start) <= tolerance
        clock = start + timedelta(minutes=fleet.unloading_minutes(visit.drop.cages))
        here = point
    clock += timedelta(seconds=drive_seconds(here, DEPOT, fleet))
    km += haversine_km(here, DEPOT) * fleet.circuity
    assert abs(truck.returns - clock) <= tolerance, "the return leg is not counted in time"
    assert clock - truck.departs <= timedelta(hours=fleet.route_limit_hours) + tolerance, "route too long"
    assert truck.km == pytest.approx(km, abs=0.001 * (len(truck.visits) + 1)), "the return leg is not counted in km"


def check_plan(plan: RoutePlan, stops: list[DeliveryStop], fleet: Fleet) -> None:
    for truck in plan.routes:
        check_route(truck, fleet)
    limit = fleet.trucks_available("central")
    if limit is not None:
        assert len(plan.routes) <= limit
    # every part of every stop exactly once: on one truck or unserved
    parts: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)
    for drop in [v.drop for r in plan.routes for v in r.visits] + [u.drop for u in plan.unserved]:
        parts[drop.stop.store_id].append((drop.part, drop.parts, drop.cages, drop.units))
    assert set(parts) == {s.store_id for s in stops}
    for s in stops:
        got = sorted(parts[s.store_id])
        assert [p[0] for p in got] == list(range(1, got[0][1] + 1)), f"{s.store_id}: parts lost or doubled"
        assert sum(p[2] for p in got) == s.cages
        assert sum(p[3] for p in got) == s.units
        assert all(p[2] <= fleet.capacity_cages for p in got)
    # every unserved part has a true reason
    for left in plan.unserved:
        point, window = left.drop.stop.point, left.drop.stop
        reach = DEPARTURE + timedelta(seconds=drive_seconds(DEPOT, point, fleet))
        alone = timedelta(
            seconds=2 * drive_seconds(DEPOT, point, fleet) + fleet.unloading_minutes(left.drop.cages) * 60
        )
        if left.reason is UnservedReason.WINDOW_UNREACHABLE:
            assert reach > window.window_closes - timedelta(seconds=2)
        elif left.reason is UnservedReason.ROUTE_TOO_LONG:
            assert alone > timedelta(hours=fleet.route_limit_hours) - timedelta(seconds=3)
        else:
            assert left.reason is UnservedReason.FLEET_EXHAUSTED
            assert limit is not None
            assert len(plan.routes) == limit


# -- random instances -------------------------------------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[DeliveryStop], Fleet]:
    capacity = draw(st.integers(4, 45))
    fleet = Fleet(
        capacity_cages=capacity,
        max_duty_hours=draw(st.sampled_from([2.0, 4.0, 6.0, 9.0, 11.0])),
        break_minutes=draw(st.sampled_from([0.0, 45.0])),
        minutes_per_stop=draw(st.sampled_from([0.0, 10.0, 20.0, 30.0])),
        minutes_per_cage=draw(st.sampled_from([0.0, 1.5, 3.0])),
        speed_kmh=draw(st.sampled_from([30.0, 50.0, 70.0])),
        circuity=draw(st.sampled_from([1.0, 1.3, 1.5])),
        trucks_at_depot=draw(st.one_of(st.just({}), st.integers(0, 4).map(lambda k: {"central": k}))),
    )
    count = draw(st.integers(1, 10))
    stops = []
    for n in range(count):
        opens = draw(st.integers(-120, 360)) / 60
        stops.append(
            stop(
                f"S{n:02d}",
                north_km=draw(st.integers(-120, 120)),
                east_km=draw(st.integers(-120, 120)),
                cages=draw(st.integers(1, 3 * capacity)),
                units=draw(st.integers(0, 5000)),
                opens_h=opens,
                closes_h=opens + draw(st.integers(0, 480)) / 60,
            )
        )
    return stops, fleet


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_no_route_breaks_capacity_duration_or_windows_and_every_part_is_served_or_reported_once(
    instance: tuple[list[DeliveryStop], Fleet],
) -> None:
    stops, fleet = instance
    routing = route(stops, fleet)
    plans = [routing.baseline, routing.plan] + ([routing.solver] if routing.solver else [])
    for plan in plans:
        check_plan(plan, stops, fleet)
    assert routing.plan.rank <= routing.baseline.rank, "the plan used is worse than the baseline"
    assert routing.plan is routing.baseline or routing.plan is routing.solver
    assert routing.plan.method == ("solver" if routing.plan is routing.solver else "baseline")


# -- examples -------------------------------------------------------------------------------------------


def test_a_one_stop_route_drives_there_and_back() -> None:
    fleet = Fleet()
    only = stop("S1", north_km=30.0, cages=10, opens_h=0.0, closes_h=12.0)
    (truck,) = route([only], fleet).plan.routes
    one_way = haversine_km(DEPOT, only.point) * fleet.circuity
    assert truck.km == pytest.approx(2 * one_way, abs=0.002)
    assert truck.km == pytest.approx(2 * 30.0 * 1.3, rel=0.01)
    hours = 2 * one_way / fleet.speed_kmh + fleet.unloading_minutes(10) / 60
    assert truck.hours == pytest.approx(hours, abs=2 / 3600)
    assert fleet_figures([route([only], fleet).plan]).km == pytest.approx(2 * one_way, abs=0.002)


def test_a_stop_larger_than_a_truck_goes_as_full_trucks_and_a_remainder() -> None:
    big = stop("S1", cages=100, units=1001)
    parts = split_stop(big, 45)
    assert [(p.part, p.parts, p.cages) for p in parts] == [(1, 3, 45), (2, 3, 45), (3, 3, 10)]
    assert sum(p.units for p in parts) == 1001
    plan = route([big]).plan
    assert sorted(r.cages for r in plan.routes) == [10, 45, 45]
    assert not plan.unserved


def test_stops_no_truck_can_serve_are_reported_with_their_reason() -> None:
    fleet = Fleet(max_duty_hours=4.0, break_minutes=0.0)
    stops = [
        stop("CLOSED", north_km=60.0, opens_h=0.0, closes_h=0.5),  # 78 road km at 50 km/h: 1.6 h away
        stop("FAR", north_km=150.0, opens_h=0.0, closes_h=10.0),  # 2 x 3.9 h there and back > 4 h
        stop("NEAR", north_km=5.0),
    ]
    plan = route(stops, fleet).plan
    reasons = {u.drop.stop.store_id: u.reason for u in plan.unserved}
    assert reasons == {"CLOSED": UnservedReason.WINDOW_UNREACHABLE, "FAR": UnservedReason.ROUTE_TOO_LONG}
    assert [v.drop.stop.store_id for r in plan.routes for v in r.visits] == ["NEAR"]


def test_stops_beyond_the_depots_fleet_are_reported_as_fleet_exhausted() -> None:
    fleet = Fleet(capacity_cages=10, trucks_at_depot={"central": 2})
    stops = [stop(f"S{n}", north_km=5.0 + n, cages=8) for n in range(4)]
    routing = route(stops, fleet)
    for plan in (routing.baseline, routing.plan):
        assert len(plan.routes) == 2
        assert [u.reason for u in plan.unserved] == [UnservedReason.FLEET_EXHAUSTED] * 2
        check_plan(plan, stops, fleet)


def test_a_truck_arriving_before_the_window_leaves_later_instead_of_waiting() -> None:
    fleet = Fleet()
    late = stop("S1", north_km=20.0, opens_h=3.0, closes_h=6.0)
    (truck,) = route([late], fleet).plan.routes
    assert truck.visits[0].unloading_starts == late.window_opens
    assert truck.visits[0].arrives == late.window_opens
    assert truck.departs > DEPARTURE


def test_the_solver_beats_nearest_neighbour_on_a_clustered_instance() -> None:
    # two clusters on opposite sides of the depot, small loads: nearest neighbour zigzags, the solver does not
    stops = [stop(f"N{n}", north_km=40.0 + n, east_km=(n % 3) * 2.0, cages=2) for n in range(6)]
    stops += [stop(f"S{n}", north_km=-40.0 - n, east_km=(n % 3) * 2.0, cages=2) for n in range(6)]
    fleet = Fleet(capacity_cages=12)
    routing = route_depot("central", DEPOT, stops, fleet, COSTS, DEPARTURE, SolverBudget(0.0, 0.5, 0.5), seed=1)
    assert routing.solver is not None
    assert routing.plan.rank <= routing.baseline.rank
    check_plan(routing.plan, stops, fleet)


def test_depots_routed_in_worker_processes_give_the_same_baseline() -> None:
    orders = {
        "central": [stop(f"C{n}", north_km=5.0 * n + 3, cages=9) for n in range(5)],
        "north": [
            replace(stop(f"N{n}", north_km=5.0 * n + 3, cages=9), lat=53.48 + 0.03 * n, lon=-2.24) for n in range(3)
        ],
    }
    depots = {"central": DEPOT, "north": (53.48, -2.24)}
    alone = route_slot(orders, depots, Fleet(), COSTS, DEPARTURE, TINY, workers=1)
    together = route_slot(orders, depots, Fleet(), COSTS, DEPARTURE, TINY, workers=2)
    assert set(together) == {"central", "north"}
    for depot in depots:
        assert together[depot].baseline.routes == alone[depot].baseline.routes
        assert together[depot].plan.rank <= together[depot].baseline.rank


def test_figures_follow_their_definitions() -> None:
    fleet = Fleet(capacity_cages=10)
    first, second = stop("A", north_km=10.0, cages=6, units=600), stop("B", north_km=-10.0, cages=7, units=900)
    plan = route([first, second], fleet).plan
    figures = fleet_figures([plan])
    assert figures.trucks == 2
    assert figures.trucks_lower_bound == 2  # ceil(13 / 10)
    assert figures.truck_fill == pytest.approx(13 / 20)
    assert figures.km == pytest.approx(sum(r.km for r in plan.routes))
    assert figures.km_per_1000_units == pytest.approx(figures.km / 1.5)
    assert figures.late_stops_rate == 0.0
    assert figures.route_hours_max == pytest.approx(max(r.hours for r in plan.routes))
    # a visit that starts unloading after its window closed counts as late
    truck = plan.routes[0]
    visit = truck.visits[0]
    late = replace(visit, unloading_starts=visit.drop.stop.window_closes + timedelta(minutes=1))
    late_plan = replace(plan, routes=(replace(truck, visits=(late,)), *plan.routes[1:]))
    assert fleet_figures([late_plan]).late_stops_rate == 0.5
    assert fleet_figures([]).truck_fill is None
    assert isinstance(late, Visit)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"capacity_cages": 0}, "capacity_cages"),
        ({"capacity_cages": 4.5}, "capacity_cages"),
        ({"speed_kmh": 0.0}, "speed_kmh"),
        ({"speed_kmh": math.nan}, "speed_kmh"),
        ({"circuity": 0.9}, "circuity"),
        ({"minutes_per_cage": -1.0}, "minutes_per_cage"),
        ({"minutes_per_stop": -1.0}, "minutes_per_stop"),
        ({"max_duty_hours": 0.5, "break_minutes": 45.0}, "max_duty_hours"),
        ({"max_duty_hours": 30.0}, "max_duty_hours"),
        ({"trucks_at_depot": {"north": -1}}, "trucks_at_depot"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_fleet_parameters_raise_one_line_errors(change: dict[str, object], names: str) -> None:
    with pytest.raises(ValueError, match=names) as raised:
        Fleet(**change)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cages": 0}, "cages"),
        ({"units": -1}, "units"),
        ({"lat": 91.0}, "latitude"),
        ({"window_opens": datetime(2026, 3, 3, 3, 0)}, "time zone"),
        ({"window_closes": DEPARTURE - timedelta(hours=1)}, "closes"),
    ],
)
def test_bad_stops_raise_one_line_errors(change: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words) as raised:
        replace(stop("S1"), **change)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


def test_a_store_with_two_stops_of_one_name_and_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="same reference"):
        route([stop("S1"), stop("S1", north_km=3.0)])
    named_apart = route([replace(stop("S1"), reference="a"), replace(stop("S1"), reference="b")]).plan
    assert sorted(v.drop.stop.reference for r in named_apart.routes for v in r.visits) == ["a", "b"]
    with pytest.raises(ValueError, match="floor_seconds"):
        SolverBudget(floor_seconds=2.0, cap_seconds=1.0)
    assert SolverBudget().seconds(10) == 1.0
    assert SolverBudget().seconds(100) == pytest.approx(4.0)
    assert SolverBudget().seconds(10_000) == 15.0


def test_the_earliest_departure_is_local_time() -> None:
    winter, summer = Fleet().departure_on(date(2026, 1, 6)), Fleet().departure_on(date(2026, 7, 7))
    assert (winter.hour, summer.hour) == (3, 2)  # 03:00 GMT, 03:00 BST
