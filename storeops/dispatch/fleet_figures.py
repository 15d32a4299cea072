"""What a distribution manager judges a fleet's plan by, computed from its routes by standard definitions.

Over one or more plans (each one depot's slot, ``storeops.dispatch.vrp.RoutePlan``):

- ``truck_fill``: cages carried / (trucks used x capacity in cages): fill by the binding capacity
  measure (roll-cage positions), not by units;
- ``trucks`` and ``trucks_lower_bound``: trucks used, and the sum over plans of
  ceil(cages carried / capacity), which no packing of the same cages can beat;
- ``km`` (return legs to the depot included) and ``km_per_1000_units`` delivered;
- ``late_stops_rate``: visits whose unloading starts outside their window, over visits made
  (a truck early at a store waits, so only lateness can put a visit outside);
- ``route_hours_max``: the longest route, depot to depot (travel, unloading, waiting);
- ``stops`` (visits, a split stop's parts each counting), ``unserved`` parts and their ``unserved_cages``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from storeops.dispatch.vrp import RoutePlan


@dataclass(frozen=True)
class FleetFigures:
    stops: int
    unserved: int
    unserved_cages: int
    cages: int
    units: int
    trucks: int
    trucks_lower_bound: int
    truck_fill: float | None  # None with no trucks
    km: float
    km_per_1000_units: float | None  # None with no units delivered
    late_stops_rate: float | None  # None with no visits
    route_hours_max: float

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        """The figures with floats rounded, for JSON."""
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()}


def fleet_figures(plans: Iterable[RoutePlan]) -> FleetFigures:
    """The figures of ``plans`` taken together (see the module for the definitions)."""
    stops = unserved = unserved_cages = cages = units = trucks = bound = late = metres = 0
    capacity_used = 0
    longest = 0.0
    for plan in plans:
        plan_cages = sum(r.cages for r in plan.routes)
        cages += plan_cages
        units += sum(r.units for r in plan.routes)
        trucks += len(plan.routes)
        capacity_used += len(plan.routes) * plan.capacity_cages
        bound += math.ceil(plan_cages / plan.capacity_cages)
        metres += sum(r.metres for r in plan.routes)
        unserved += len(plan.unserved)
        unserved_cages += sum(u.drop.cages for u in plan.unserved)
        for route in plan.routes:
            longest = max(longest, route.hours)
            for visit in route.visits:
                stops += 1
                window = (visit.drop.stop.window_opens, visit.drop.stop.window_closes)
                late += not window[0] <= visit.unloading_starts <= window[1]
    km = metres / 1000.0
    return FleetFigures(
        stops=stops,
        unserved=unserved,
        unserved_cages=unserved_cages,
        cages=cages,
        units=units,
        trucks=trucks,
        trucks_lower_bound=bound,
        truck_fill=cages / capacity_used if capacity_used else None,
        km=km,
        km_per_1000_units=km / (units / 1000.0) if units else None,
        late_stops_rate=late / stops if stops else None,
        route_hours_max=longest,
    )
