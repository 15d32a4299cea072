"""The fleet a distribution manager plans with, defined once: trucks, drivers' hours, unloading, roads.

Capacity is counted in **roll cages**, the unit a grocery DC loads store deliveries in (one cage is
one position on the trailer floor, however full it is). Time and distance follow the roads: great-
circle distance (``storeops.directory.haversine_km``) times a circuity factor, at an average speed.

Defaults are typical figures for UK grocery DC-to-store delivery, not measurements of one fleet;
each says where it comes from and how firm it is. Set them per deployment from the real fleet.

A stop (``DeliveryStop``) is one store's delivery in a slot: its cages, its units (for the
per-unit figures) and the window in which it may be delivered, as absolute times (the caller turns
the store's local opening hours into them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from storeops.calendar import opening_hours
from storeops.directory import haversine_km


@dataclass(frozen=True)
class Fleet:
    """Trucks of one size at every depot, the drivers' hours they run to, and how fast they go.

    - ``capacity_cages`` 45: a 13.6 m curtain-side or box trailer with a tail lift carries about 45
      roll cages in two rows (industry rule of thumb; 26 pallets on the same floor). A rigid 18 t
      carries about 20-24: set it for a rigid fleet.
    - ``max_duty_hours`` 9.0 and ``break_minutes`` 45: a route's time from leaving the depot to
      returning (driving, unloading, waiting) plus its break. EU drivers' hours (Regulation (EC)
      561/2006, retained in UK law) allow 9 h of driving a day and require a 45 min break after
      4.5 h of driving. Driving is only part of a route, so a 9 h duty keeps driving under 9 h
      whatever the mix; store deliveries before opening are night work under the Road Transport
      (Working Time) Regulations 2005 (00:00-04:00 for goods drivers), which caps working time at
      10 h in 24: 9 h on the road leaves about an hour for loading and vehicle checks. The break is
      reserved in every route (the router's limit is ``route_limit_hours`` = 9 h - 45 min), which is
      conservative for short routes that would not need it.
    - ``minutes_per_stop`` 20 and ``minutes_per_cage`` 1.5: parking, check-in and paperwork at the
      store's back door, then each cage down the tail lift and into the store (typical planning
      figures for tail-lift roll-cage deliveries; a store's own times replace them when known).
    - ``speed_kmh`` 50: average road speed of a loaded HGV over mixed roads, stops excluded (GB HGV
      limits are 56 mph on motorways, 50 mph on dual and single carriageways in England; towns bring
      the average down).
    - ``circuity`` 1.3: road km per great-circle km. Detour indices of national road networks are
      usually 1.2-1.4 (e.g. Ballou, Rahardja & Sakai 2002, "Selected country circuity factors for
      road travel distance estimation"); 1.3 is a middle value for British roads, not a
      measurement of these depots' areas.
    - ``earliest_departure`` 03:00 local: the first trucks leave in the night, so that stores
      opening at 07:00 are served before opening (``departure_on`` turns it into an instant).
    - ``cage_litres`` 700: what one roll cage holds, in litres of cases. A standard four-sided roll
      cage (about 800 x 700 x 1,700 mm inside) is some 0.95 m3; hand-stacked mixed grocery cases fill
      about three quarters of it (a planning rule of thumb, not a measurement). A stop's cages are its
      cases' volume (each product's ``case_litres`` in the product master) over this, rounded up.
    - ``receiving_hours_before_opening`` 3.0: stores take deliveries from 3 h before they open (the
      night or early shift fills the shelves) until they close: a stop's window on a day is
      ``[opens - 3 h, closes]`` of its local opening hours (``storeops.calendar.opening_hours``).
    - ``trucks_at_depot``: trucks (and drivers) available per depot to one dispatch window (the
      worker routes window by window: it does not count trucks across windows); a depot not listed
      has as many as its orders need.
    - ``timezone``: the depots' local time (the chain trades in Great Britain).
    """

    capacity_cages: int = 45
    max_duty_hours: float = 9.0
    break_minutes: float = 45.0
    minutes_per_stop: float = 20.0
    minutes_per_cage: float = 1.5
    speed_kmh: float = 50.0
    circuity: float = 1.3
    earliest_departure: time = time(3, 0)
    cage_litres: float = 700.0
    receiving_hours_before_opening: float = 3.0
    trucks_at_depot: Mapping[str, int] = field(default_factory=dict)
    timezone: str = "Europe/London"

    def __post_init__(self) -> None:
        problem = _fleet_problem(self)
        if problem:
            raise ValueError(f"fleet: {problem}")

    @property
    def route_limit_hours(self) -> float:
        """The longest a route may take, depot to depot (travel, unloading, waiting): duty minus break."""
        return self.max_duty_hours - self.break_minutes / 60.0

    def trucks_available(self, depot: str) -> int | None:
        """Trucks at ``depot`` in a slot; None when not limited."""
        return self.trucks_at_depot.get(depot)

    def road_km(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        """Road distance between two (latitude, longitude) points: great-circle km x circuity."""
        return haversine_km(a, b) * self.circuity

    def drive_hours(self, km: float) -> float:
        return km / self.speed_kmh

    def cages_for(self, litres: float) -> int:
        """Whole roll cages for ``litres`` of cases (a part-filled cage still takes a floor position)."""
        return max(1, math.ceil(round(litres / self.cage_litres, 9)))

    def unloading_minutes(self, cages: int) -> float:
        """Time at a stop delivering ``cages``."""
        return self.minutes_per_stop + self.minutes_per_cage * cages

    def departure_on(self, day: date) -> datetime:
        """The earliest departure on local ``day``, in UTC."""
        local = datetime.combine(day, self.earliest_departure, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)


def _fleet_problem(fleet: Fleet) -> str | None:
    """The first thing wrong with ``fleet``, as the fix to make; None when it is sound."""
    checks = (_unfinite, _bad_capacity, _bad_limits, _bad_duty, _bad_depot_trucks, _bad_timezone)
    return next((problem for problem in (check(fleet) for check in checks) if problem), None)


def _numbers(fleet: Fleet) -> dict[str, float]:
    return {
        "max_duty_hours": fleet.max_duty_hours,
        "break_minutes": fleet.break_minutes,
        "minutes_per_stop": fleet.minutes_per_stop,
        "minutes_per_cage": fleet.minutes_per_cage,
        "speed_kmh": fleet.speed_kmh,
        "circuity": fleet.circuity,
        "cage_litres": fleet.cage_litres,
        "receiving_hours_before_opening": fleet.receiving_hours_before_opening,
    }


def _unfinite(fleet: Fleet) -> str | None:
    for name, value in _numbers(fleet).items():
        if not math.isfinite(value):
            return f"{name} must be a finite number, got {value}"
    return None


def _bad_capacity(fleet: Fleet) -> str | None:
    if isinstance(fleet.capacity_cages, bool) or not isinstance(fleet.capacity_cages, int):
        return f"capacity_cages must be a whole number of roll cages, got {fleet.capacity_cages!r}"
    if fleet.capacity_cages < 1:
        return f"capacity_cages must be at least 1, got {fleet.capacity_cages}"
    return None


def _bad_limits(fleet: Fleet) -> str | None:
    if fleet.speed_kmh <= 0:
        return f"speed_kmh must be greater than 0, got {fleet.speed_kmh}"
    if fleet.cage_litres <= 0:
        return f"cage_litres must be greater than 0, got {fleet.cage_litres}"
    if not 0 <= fleet.receiving_hours_before_opening <= 12:
        return f"receiving_hours_before_opening must be between 0 and 12, got {fleet.receiving_hours_before_opening}"
    if fleet.circuity < 1:
        return f"circuity (road km per straight-line km) must be at least 1, got {fleet.circuity}"
    numbers = _numbers(fleet)
    for name in ("break_minutes", "minutes_per_stop", "minutes_per_cage"):
        if numbers[name] < 0:
            return f"{name} must be 0 or more, got {numbers[name]}"
    return None


def _bad_duty(fleet: Fleet) -> str | None:
    if fleet.max_duty_hours > 24:
        return f"max_duty_hours must be at most 24, got {fleet.max_duty_hours}"
    if fleet.route_limit_hours <= 0:
        return (
            f"max_duty_hours ({fleet.max_duty_hours}) must be longer than the break ({fleet.break_minutes} min): "
            "raise max_duty_hours or lower break_minutes"
        )
    return None


def _bad_depot_trucks(fleet: Fleet) -> str | None:
    for depot, trucks in fleet.trucks_at_depot.items():
        if isinstance(trucks, bool) or not isinstance(trucks, int) or trucks < 0:
            return f"trucks_at_depot[{depot!r}] must be a whole number 0 or more, got {trucks!r}"
    return None


def _bad_timezone(fleet: Fleet) -> str | None:
    try:
        ZoneInfo(fleet.timezone)
    except (KeyError, ValueError):
        return f"timezone {fleet.timezone!r} is not an IANA time zone (e.g. Europe/London)"
    return None


@dataclass(frozen=True)
class DeliveryStop:
    """One store's delivery in a slot: where, how much, and when the store accepts it.

    A store has one stop a slot, or several distinguished by ``reference`` (its order split into
    truck-sized deliveries). ``cages`` is whole roll cages (a part-filled cage still takes a floor
    position); ``units`` the order's units (what per-unit figures divide by). The window
    ``[window_opens, window_closes]`` bounds when unloading may start; both are time-zone-aware instants.
    """

    store_id: str
    lat: float
    lon: float
    cages: int
    units: int
    window_opens: datetime
    window_closes: datetime
    reference: str = ""  # the caller's name for this delivery when a store has several in a slot

    def __post_init__(self) -> None:
        problem = _stop_problem(self)
        if problem:
            raise ValueError(f"delivery stop {self.store_id!r}: {problem}")

    @property
    def point(self) -> tuple[float, float]:
        return (self.lat, self.lon)


def _stop_problem(stop: DeliveryStop) -> str | None:
    if not stop.store_id:
        return "store_id must not be empty"
    if not (-90 <= stop.lat <= 90 and -180 <= stop.lon <= 180):
        return f"({stop.lat}, {stop.lon}) is not a latitude and longitude"
    for name, value in (("cages", stop.cages), ("units", stop.units)):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, got {value!r}"
    if stop.cages < 1:
        return f"cages must be at least 1 (leave out stores with nothing to deliver), got {stop.cages}"
    if stop.units < 0:
        return f"units must be 0 or more, got {stop.units}"
    if stop.window_opens.tzinfo is None or stop.window_closes.tzinfo is None:
        return "window_opens and window_closes need a time zone (convert the store's local hours first)"
    if stop.window_closes < stop.window_opens:
        return f"its window closes ({stop.window_closes}) before it opens ({stop.window_opens})"
    return None


def delivery_window(store_format: str, after: datetime, fleet: Fleet) -> tuple[datetime, datetime]:
    """The first receiving window of a store that closes after ``after``: ``[opens - receiving hours,
    closes]`` of a day's local opening hours (days it is closed are skipped), as UTC instants."""
    zone = ZoneInfo(fleet.timezone)
    day = after.astimezone(zone).date()
    for offset in range(8):
        hours = opening_hours(store_format, day + timedelta(days=offset))
        if hours.closed:
            continue
        midnight = datetime.combine(day + timedelta(days=offset), time(0), tzinfo=zone)
        opens = midnight + timedelta(hours=hours.opens - fleet.receiving_hours_before_opening)
        closes = midnight + timedelta(hours=hours.closes)
        if closes.astimezone(UTC) > after:
            return opens.astimezone(UTC), closes.astimezone(UTC)
    raise ValueError(f"a {store_format} store is closed for a week after {after.isoformat()}")
