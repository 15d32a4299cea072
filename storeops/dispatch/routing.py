"""Truck loading and routing: pure functions.

Requests are grouped by region; each store is a stop. Stops are packed into trucks first-fit
decreasing by units, within a capacity (units) and a maximum number of stops; each truck's
stops are ordered by a nearest-neighbour route from its region's depot.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from storeops.contracts.dispatch_request import DispatchRequest
from storeops.directory import DEPOTS, StoreLocation, haversine_km


@dataclass(frozen=True)
class FleetPolicy:
    """Trucks of one size; travel at an average speed with a fixed time per stop.

    ``consolidate`` False is the original workshop's dispatch: one truck per request.
    """

    capacity_units: int = 4000
    max_stops: int = 8
    speed_kmh: float = 50.0
    minutes_per_stop: float = 20.0
    consolidate: bool = True

    def __post_init__(self) -> None:
        if self.capacity_units < 1 or self.max_stops < 1 or self.speed_kmh <= 0 or self.minutes_per_stop < 0:
            raise ValueError("fleet policy needs capacity >= 1, max_stops >= 1, speed > 0, minutes_per_stop >= 0")


@dataclass
class Stop:
    store_id: str
    requests: list[DispatchRequest] = field(default_factory=list)
    eta: datetime | None = None

    @property
    def units(self) -> int:
        return sum(r.quantity for r in self.requests)


@dataclass
class Load:
    """One truck's load: its stops in route order."""

    load_id: str
    truck_id: str
    region: str
    stops: list[Stop] = field(default_factory=list)
    distance_km: float = 0.0

    @property
    def units(self) -> int:
        return sum(s.units for s in self.stops)

    @property
    def shortage_ids(self) -> list[str]:
        return [r.shortage_id for s in self.stops for r in s.requests]


def _stop_chunks(store_id: str, requests: list[DispatchRequest], capacity: int) -> list[Stop]:
    """A store's requests as one stop, or several if they exceed a truck (first-fit decreasing)."""
    chunks: list[Stop] = []
    for request in sorted(requests, key=lambda r: (-r.quantity, r.shortage_id)):
        for chunk in chunks:
            if chunk.units + request.quantity <= capacity:
                chunk.requests.append(request)
                break
        else:
            chunks.append(Stop(store_id, [request]))
    return chunks


def pack_region(stops: list[Stop], policy: FleetPolicy) -> list[list[Stop]]:
    """First-fit decreasing by units into trucks with capacity and stop limits."""
    trucks: list[list[Stop]] = []
    loads: list[int] = []
    for stop in sorted(stops, key=lambda s: (-s.units, s.store_id)):
        for index, truck in enumerate(trucks):
            if loads[index] + stop.units <= policy.capacity_units and len(truck) < policy.max_stops:
                truck.append(stop)
                loads[index] += stop.units
                break
        else:
            trucks.append([stop])
            loads.append(stop.units)
    return trucks


def nearest_neighbour_route(
    depot: tuple[float, float], stops: list[Stop], where: dict[str, StoreLocation]
) -> tuple[list[Stop], float]:
    """Visit the nearest unvisited stop next, starting at the depot; returns order and km (no return leg)."""
    remaining = list(stops)
    here, total, route = depot, 0.0, []
    while remaining:
        best = min(
            remaining, key=lambda s: (haversine_km(here, (where[s.store_id].lat, where[s.store_id].lon)), s.store_id)
        )
        point = (where[best.store_id].lat, where[best.store_id].lon)
        total += haversine_km(here, point)
        here = point
        route.append(best)
        remaining.remove(best)
    return route, total


def consolidate(
    requests: list[DispatchRequest],
    stores: dict[str, StoreLocation],
    policy: FleetPolicy,
    departure: datetime,
    load_prefix: str,
) -> list[Load]:
    """Truck loads for ``requests`` (every store must be in ``stores``), with routes and ETAs.

    Load ids are ``<load_prefix>-<n>``: deterministic for the same requests and prefix.
    """
    by_region: dict[str, dict[str, list[DispatchRequest]]] = defaultdict(lambda: defaultdict(list))
    for request in requests:
        by_region[stores[request.store_id].region][request.store_id].append(request)
    loads: list[Load] = []
    for region in sorted(by_region):
        stops = [
            chunk
            for store_id, reqs in sorted(by_region[region].items())
            for chunk in (
                _stop_chunks(store_id, reqs, policy.capacity_units)
                if policy.consolidate
                else [Stop(store_id, [r]) for r in sorted(reqs, key=lambda r: r.shortage_id)]
            )
        ]
        depot = DEPOTS.get(region, (0.0, 0.0))
        trucks = pack_region(stops, policy) if policy.consolidate else [[stop] for stop in stops]
        for truck_stops in trucks:
            route, km = nearest_neighbour_route(depot, truck_stops, stores)
            number = len(loads) + 1
            load = Load(f"{load_prefix}-{number:03d}", f"{region[:3].upper()}-{number:03d}", region, route, km)
            _set_etas(load, depot, stores, policy, departure)
            loads.append(load)
    return loads


def _set_etas(
    load: Load, depot: tuple[float, float], stores: dict[str, StoreLocation], policy: FleetPolicy, departure: datetime
) -> None:
    here, clock = depot, departure
    for stop in load.stops:
        point = (stores[stop.store_id].lat, stores[stop.store_id].lon)
        clock += timedelta(hours=haversine_km(here, point) / policy.speed_kmh)
        stop.eta = clock
        clock += timedelta(minutes=policy.minutes_per_stop)
        here = point


def lower_bound_trucks(requests: list[DispatchRequest], policy: FleetPolicy) -> int:
    """ceil(total units / capacity): no packing can use fewer trucks."""
    return math.ceil(sum(r.quantity for r in requests) / policy.capacity_units) if requests else 0
