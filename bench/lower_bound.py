"""A hindsight lower bound on the cost of keeping shelves stocked: what no policy can beat.

    python -m bench.lower_bound [--stores 10] [--products 20] [--days 7] [--seed 7] [--json]

Given the demand that actually came (store x product x local day), a mixed-integer programme
chooses deliveries, stops and trucks with perfect foresight, priced as the product prices a run
(``storeops.costs.CostParameters``, ``storeops.service_level.CostParts``): trucks x
``truck_per_route``, km x ``per_km`` (return legs included), stops x ``per_stop``, stock held x unit
cost x ``holding_rate_per_year`` / 365 a unit-day, expired units at unit cost, lost sales at the margin
(price - unit cost). It is solved with HiGHS (``highspy``). Every simplification of the real system is
a *relaxation*: any real policy's run maps to a feasible solution of the programme that costs no more,
so the programme's optimum, and a fortiori HiGHS's dual bound, is a lower bound of any policy's cost.

The model, per store s, product p and local day d (days run from one local midnight's expiry to the
next's; a delivery is counted on the day it is put on the shelf):

- ``x`` whole cases shipped (integer), ``q`` units accepted by the shelf (``q <= case_pack * x``; the
  rest is refused and rides back, as the simulator refuses what does not fit), ``n`` stops at the store
  that day (integer), ``k`` trucks of a depot that day (integer).
- Stock ``I`` (after the midnight's expiry) balances: ``I_d = I_{d-1} + q_d - sold_d - waste_d``, with
  ``sold_d <= demand_d`` and ``sold_d <= I_{d-1} + q_d``; the lost sales ``demand - sold`` are priced at
  the margin.
- The trucks are ``storeops.dispatch.fleet.Fleet``'s: a truck carries ``capacity_cages`` roll cages of
  ``cage_litres`` each, a case takes its product's ``case_litres``. Per depot and day,
  ``trucks >= litres shipped / truck volume`` (litres: cases x case litres; truck volume:
  ``capacity_cages x cage_litres``) and ``trucks >= stops / stops_per_truck``; per store and day,
  ``litres shipped <= truck volume x stops``; ``km >= sum over stops of the store's nearest-point road
  distance + trucks x the depot's nearest-store road distance`` (below).

Relaxations, and why each can only lower the cost:

1. Days, not hours: whatever arrives during a day may serve all of that day's demand, from its start.
   A real run's sales are feasible here (sold <= stock at start + what arrived), so lost sales can only
   be fewer. Stock, sales and accepted units are continuous (integer values are feasible).
2. Shelf capacity is enforced where it surely holds: on the stock left at the end of the day
   (``I_{d-1} + q_d - sold_d <= capacity``) and on what one stop can put on the shelf
   (``q_d <= capacity x stops``). Deliveries after some of the day's sales may exceed "capacity minus
   the morning stock", and a store may be visited more than once a day: both stay feasible. (The stops
   a day are bounded by a number no policy needs to exceed: 1 + demand / capacity per pair, and the
   litres of the cases it could accept (at most capacity + demand units a pair, a case more when
   rounded up to whole cases) over a truck's volume; cutting surplus stops and the units that would be
   refused only lowers a real run's cost.) Cases a stop ships are at most ``ceil(capacity / case)``
   (more would all be refused).
3. Holding: the stock on the shelf at any reading of day d is at least the stock it started the day with
   less that day's sales and expiry (deliveries only add stock), ``I_{d-1} - sold_d - waste_d`` (=
   ``I_d - q_d``), priced for the day's 24 hours. This holds whenever the trucks arrive; the stock on the
   shelf after the day's deliveries (above it) is not priced. (Pricing the end-of-day stock instead would
   overstate the holding of a policy whose trucks arrive after the day's sales, so it is not used.)
4. Perishables: ages are not tracked, only necessary conditions of expiry. A unit on the shelf at the end
   of day d (after that midnight's expiry) arrived by day d, so it leaves the shelf, sold or expired, by
   the end of day d + L - 1 (shelf life L: delivered on day d, its last day is d + L - 1):
   ``I_d <= sum of sold + waste over days d+1 .. d+L-1`` (when that window ends within the horizon: stock
   may outlive it). The initial stock whose last day is j (the simulator's cohorts; without them, all of
   it on day L - 1, the latest possible) leaves by the end of day j: ``sum of sold + waste over days
   0 .. j >= those units``. And nothing expires before its last day: ``waste over days 0 .. j <= initial
   units whose last day is <= j (without cohorts: all of them) + units accepted on days 0 .. j - L + 1``.
   The waste forced is priced at unit cost; FIFO and which units expire are not enforced (any real
   expiry satisfies these conditions), so the waste can only be less than real.
5. Km: every route is a closed tour depot -> its stops -> depot, and its length is the sum of each point's
   outgoing edge; a stop's outgoing edge is at least the distance from its store to the nearest other
   point it could go to (another store of its depot or the depot: ``min(nearest_km, depot_km)``), and
   the depot's outgoing edge at least the depot's distance to its nearest store. So
   ``km >= sum over stops of min(nearest_km, depot_km) + sum over trucks of the depot's nearest store
   distance`` (a store visited twice in a row on one route would be one stop, at less cost; the loader's
   first fit and the router's full-truck parts never put two deliveries of one store on one truck
   anyway: together they would not fit). Distances
   are road km as the router measures them (``Fleet.road_km``: great-circle km x ``circuity``); the
   router rounds each leg to whole metres, so ``instance_from_catalog`` takes half a metre off each.
   Trucks leave from their store's region's depot, as ``storeops.dispatch.loading`` routes them.
6. Trucks, by volume: a truck carries at most ``capacity_cages`` cages and a stop's cages are
   ``ceil(its litres / cage_litres)``, so a truck carries at most ``capacity_cages x cage_litres`` litres:
   per depot and day, ``trucks >= litres / truck volume`` (continuous litres relax whole cages and how
   they pack). A stop carries at most a truck's volume (the loader splits a store's order into
   truck-sized deliveries, the router a larger one into truck-sized parts), so a store's litres in a day
   are at most its stops x a truck's volume; one stop holding more than a truck is not forbidden beyond
   that (a store may be served by several stops a day).
7. Trucks, by time: a route takes at most ``Fleet.route_limit_hours`` (duty less the break; the router
   counts whole seconds, its limit rounded down), and that time includes each stop's unloading,
   ``minutes_per_stop + minutes_per_cage x cages`` with at least one cage (rounded to a whole second).
   So a route has at most ``stops_per_truck = floor(limit / (minutes_per_stop + minutes_per_cage))``
   stops (23 at the defaults: 495 min / 21.5 min; no limit when a stop takes no time), and per depot
   and day ``trucks >= stops / stops_per_truck``. Driving time (depot legs, between stores, the return
   leg), cages beyond the first, receiving windows and waiting, a depot's number of trucks, and stores
   too far for any route within the limit are all ignored. There is no limit of stops per truck in the
   fleet beyond this.

The programme also carries valid inequalities that cut no integer solution and only speed up the search: a
binary "visited" under each store-day's stops, a truck for every depot-day with a stop, and, for every
window of days a..b, ``sales <= stock at the start of day a + sum over days t with a stop of the demand of
days t..b`` (what arrives on day t can serve no demand before it).

One convention is not a relaxation: the period's costs are those of the routes that deliver in it, and a
route's stops are on one local day (a route that straddled a local midnight would be counted on each of
its days; the product's routes take at most ``Fleet.route_limit_hours``, 8.25 h at the defaults, and
the first leave at 03:00 local). Planning runs, forecasts and lead times do not exist here: the demand is
known in advance.

If HiGHS stops on its time limit, the reported cost is its best dual bound, not the incumbent: the
dual bound is always reported as the cost (within ``mip_rel_gap`` of the incumbent when solved).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np

from storeops.costs import CostParameters
from storeops.dispatch.fleet import Fleet

DURATION = " The default run takes about 2 s on 2 cores (10 stores x 20 products x 7 days: 1.3 s measured)."

DAY_HOURS = 24.0
SOLUTION_FEASIBLE = 2  # HiGHS: a primal solution was found
METRE_ROUNDING_KM = 0.0005  # the router rounds each leg to whole metres: a leg may count half a metre less


@dataclass(frozen=True)
class Instance:
    """S stores x P products x D local days of known demand, and what constrains their supply."""

    demand: np.ndarray  # (S, P, D) units demanded per store, product, day (the realised demand)
    initial_stock: np.ndarray  # (S, P) on hand at the start of day 0
    capacity: np.ndarray  # (S, P) shelf capacity (units)
    case_pack: np.ndarray  # (P,) order in whole cases
    margin: np.ndarray  # (P,) lost margin per unit short
    unit_cost: np.ndarray  # (P,)
    shelf_life_days: np.ndarray  # (P,) 0 = not perishable
    depot_km: np.ndarray  # (S,) road distance store <-> its depot (km, at most what the router counts)
    nearest_km: np.ndarray  # (S,) road distance to the nearest other store of the same depot (km; inf if none)
    depot: np.ndarray  # (S,) depot index
    case_litres: np.ndarray  # (P,) a case's volume (litres)
    truck_litres: float  # what a truck carries: capacity_cages x cage_litres (litres)
    stops_per_truck: int | None  # most stops a route can make (``stops_per_truck``); None: no limit
    # (S, P, D): units of the initial stock whose last day is d (perishables; units lasting beyond the
    # horizon are left out). None: ages unknown, all of it lasts until day L - 1 at most, from day 0 at least.
    initial_expiring: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        s, p, d = self.demand.shape
        return int(s), int(p), int(d)


@dataclass
class LowerBound:
    """The bound (``cost``, GBP) and the best plan HiGHS found (its parts, with ``incumbent`` and
    ``dual_bound`` totals; the parts add up to the incumbent)."""

    cost: float
    parts: dict[str, float]
    status: str
    mip_gap: float
    seconds: float
    deliveries: int  # stops of the incumbent
    trucks: int  # trucks of the incumbent
    plan: dict[str, Any] = field(default_factory=dict, repr=False)  # the incumbent's arrays


class _Rows:
    """Constraint rows, collected row-wise: ``lower <= sum(value * column[index]) <= upper``."""

    def __init__(self) -> None:
        self.index: list[np.ndarray] = []
        self.value: list[np.ndarray] = []
        self.length: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []

    def add(self, columns: list[np.ndarray], values: list[Any], lower: Any, upper: Any) -> None:
        """One row per element of the broadcast ``columns`` (index arrays of one shape, or of a shape with a
        trailing axis of several entries), each term's value broadcast like its columns."""
        shape = np.broadcast_shapes(*(np.shape(c) for c in columns))
        index = np.stack([np.broadcast_to(c, shape).reshape(-1) for c in columns], axis=1)
        value = np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64), shape).reshape(-1) for v in values], 1)
        self._append(index, value, lower, upper)

    def add_wide(self, index: np.ndarray, value: Any, lower: Any, upper: Any) -> None:
        """m rows of k terms each: ``index`` (m, k), ``value`` broadcast to it."""
        index = np.asarray(index, dtype=np.int64)
        self._append(index, np.broadcast_to(np.asarray(value, dtype=np.float64), index.shape), lower, upper)

    def _append(self, index: np.ndarray, value: np.ndarray, lower: Any, upper: Any) -> None:
        m = index.shape[0]
        if m == 0:
            return
        self.index.append(index.reshape(-1))
        self.value.append(np.ascontiguousarray(value).reshape(-1))
        self.length.append(np.full(m, index.shape[1], dtype=np.int64))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64).reshape(-1), (m,)).copy())
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64).reshape(-1), (m,)).copy())

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(start, index, value, lower, upper) of the row-wise matrix."""
        start = np.concatenate([[0], np.cumsum(np.concatenate(self.length))])
        return (
            start.astype(np.int32),
            np.concatenate(self.index).astype(np.int32),
            np.concatenate(self.value),
            np.concatenate(self.lower),
            np.concatenate(self.upper),
        )


@dataclass
class _Columns:
    """The programme's columns: their indices, bounds, costs and integrality."""

    count: int = 0
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)
    integer: list[np.ndarray] = field(default_factory=list)

    def add(self, shape: tuple[int, ...], upper: Any, cost: Any = 0.0, integer: bool = False) -> np.ndarray:
        """A block of columns (lower bound 0); returns their indices, of ``shape``."""
        size = math.prod(shape)
        index = self.count + np.arange(size).reshape(shape)
        self.count += size
        self.lower.append(np.zeros(size))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), shape).reshape(-1).copy())
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), shape).reshape(-1).copy())
        self.integer.append(np.full(size, integer))
        return index


def _stop_km(instance: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(per stop (S,), per truck (G,), each store's depot 0..G-1): a stop's least outgoing edge (to the
    nearest other store of its depot or the depot), a depot's (to its nearest store)."""
    depot_km = np.asarray(instance.depot_km, dtype=np.float64)
    per_stop = np.minimum(np.asarray(instance.nearest_km, dtype=np.float64), depot_km)
    _, depot_ids = np.unique(np.asarray(instance.depot), return_inverse=True)
    depot_ids = depot_ids.reshape(-1)
    per_truck = np.array([depot_km[depot_ids == g].min() for g in range(int(depot_ids.max()) + 1)])
    return per_stop, per_truck, depot_ids


def _initial_expiry(instance: Instance) -> tuple[np.ndarray, np.ndarray]:
    """(S, P, D) twice, perishables only: the units of the initial stock that must have expired or sold by
    the end of day j, and those that may have expired by then (without cohorts: all of it on its last
    possible day, shelf life - 1; and any of it from day 0)."""
    n_stores, n_products, days = instance.shape
    life = np.asarray(instance.shelf_life_days, dtype=np.int64)
    if instance.initial_expiring is not None:
        by_day = np.asarray(instance.initial_expiring, dtype=np.float64)[:, :, :days].copy()
        by_day[:, life <= 0, :] = 0.0
        cumulative = np.cumsum(by_day, axis=2)
        return cumulative, cumulative
    must = np.zeros((n_stores, n_products, days))
    for p in np.flatnonzero((life > 0) & (life <= days)):
        must[:, p, life[p] - 1 :] = instance.initial_stock[:, p, None]
    may = np.where((life > 0)[None, :, None], np.asarray(instance.initial_stock, dtype=np.float64)[:, :, None], 0.0)
    return must, np.broadcast_to(may, must.shape).copy()


@dataclass
class _Model:
    """The programme of an instance (see the module), with the columns the answer is read from."""

    lp: highspy.HighsLp
    columns: dict[str, np.ndarray]
    per_stop_km: np.ndarray
    per_truck_km: np.ndarray
    holding_day: float
    constant: float  # the lost margin were nothing sold (the objective counts the margin of what is sold)
    day_stops: np.ndarray  # (S, D) the stops a store-day no policy needs to exceed (relaxation 2)


def _checked(instance: Instance) -> tuple[np.ndarray, np.ndarray, float]:
    """The initial stock (S, P), the case volumes (P,) and a truck's volume, checked; ValueError if not valid."""
    n_stores, n_products, _days = instance.shape
    initial = np.asarray(instance.initial_stock, dtype=np.float64)
    if initial.shape != (n_stores, n_products):
        demand = np.asarray(instance.demand)
        raise ValueError(f"initial_stock is {initial.shape}, demand {demand.shape}: they must be (S, P) and (S, P, D)")
    litres = np.asarray(instance.case_litres, dtype=np.float64)
    if litres.shape != (n_products,) or not np.all(np.isfinite(litres) & (litres >= 0)):
        raise ValueError(f"case_litres must be {n_products} volumes >= 0 (litres), got {instance.case_litres!r}")
    truck_litres = float(instance.truck_litres)
    if not (math.isfinite(truck_litres) and truck_litres > 0):
        raise ValueError(f"truck_litres must be a volume > 0 (litres), got {instance.truck_litres!r}")
    per_truck_stops = instance.stops_per_truck
    if per_truck_stops is not None and per_truck_stops < 0:
        raise ValueError(f"stops_per_truck must be 0 or more, or None (no limit), got {per_truck_stops}")
    return initial, litres, truck_litres


def _build(instance: Instance, costs: CostParameters) -> _Model:
    n_stores, _n_products, days = shape = instance.shape
    demand = np.asarray(instance.demand, dtype=np.float64)
    initial, litres, truck_litres = _checked(instance)
    shelf = np.maximum(np.asarray(instance.capacity, dtype=np.float64), initial)[:, :, None]  # (S, P, 1)
    case = np.asarray(instance.case_pack, dtype=np.float64)[None, :, None]
    margin = np.asarray(instance.margin, dtype=np.float64)[None, :, None]
    unit_cost = np.asarray(instance.unit_cost, dtype=np.float64)[None, :, None]
    life = np.asarray(instance.shelf_life_days, dtype=np.int64)
    perishable = (life > 0)[None, :, None]
    case_litres = litres[None, :, None]
    per_stop_km, per_truck_km, depot_ids = _stop_km(instance)
    n_depots = per_truck_km.size
    holding_day = costs.holding_per_unit_hour * DAY_HOURS

    day_stops = _day_stops(demand, shelf, case, case_litres, truck_litres)  # (S, D)
    cases_per_stop = np.ceil(shelf / case)  # (S, P, 1): more than a shelf's cases a stop would all be refused

    cols = _Columns()
    x = cols.add(shape, cases_per_stop * day_stops[:, None, :], integer=True)  # cases shipped
    q = cols.add(shape, shelf + demand)  # units the shelf accepted
    sold = cols.add(shape, demand, cost=-margin)
    stock = cols.add(shape, shelf)  # after the day's expiry
    waste = cols.add(shape, np.where(perishable, shelf, 0.0), cost=unit_cost)
    held = cols.add(shape, shelf, cost=unit_cost * holding_day)  # held through the day, at least
    stops = cols.add(
        (n_stores, days), day_stops, cost=costs.per_stop + costs.per_km * per_stop_km[:, None], integer=True
    )
    visited = cols.add((n_stores, days), 1.0, integer=True)  # stops >= 1
    trucks = cols.add(
        (n_depots, days), np.inf, cost=costs.truck_per_route + costs.per_km * per_truck_km[:, None], integer=True
    )
    stops3 = stops[:, None, :]

    rows = _Rows()
    _stock_balance_rows(rows, initial, stock, q, sold, waste)
    # the stock at the end of the day, before its expiry, fits on the shelf
    rows.add([stock, waste], [1, 1], -np.inf, np.broadcast_to(shelf, shape))
    # a stop puts at most a shelf on it, and ships at most ceil(shelf / case) cases of a product
    rows.add([q, stops3], [1, -np.broadcast_to(shelf, shape)], -np.inf, 0)
    rows.add([x, stops3], [1, -np.broadcast_to(cases_per_stop, shape)], -np.inf, 0)
    # what the shelf accepted was shipped, in whole cases (the rest was refused)
    rows.add([q, x], [1, -np.broadcast_to(case, shape)], -np.inf, 0)
    # held through the day >= stock the day started with, less its sales and expiry (= stock_d - q_d)
    rows.add([held, stock, q], [1, -1, 1], 0, np.inf)
    # a store-day's litres fit on its stops' trucks: sum_p case litres * x - truck litres * stops <= 0
    stop_load = np.concatenate([x.transpose(0, 2, 1), stops[:, :, None]], axis=2).reshape(n_stores * days, -1)
    rows.add_wide(stop_load, np.append(litres, -truck_litres), -np.inf, 0)
    _truck_rows(rows, instance, x, stops, trucks, depot_ids)
    _perishable_rows(rows, instance, stock, sold, waste, q)
    _valid_cuts(rows, demand, initial, day_stops, sold, stock, stops, visited, trucks[depot_ids])

    lp = _highs_lp(cols, rows)
    columns = {"cases": x, "accepted": q, "sold": sold, "stock": stock, "waste": waste, "held": held}
    columns |= {"stops": stops, "trucks": trucks}
    constant = float((margin * demand).sum())
    return _Model(lp, columns, per_stop_km, per_truck_km, holding_day, constant, day_stops)


def _day_stops(
    demand: np.ndarray, shelf: np.ndarray, case: np.ndarray, case_litres: np.ndarray, truck_litres: float
) -> np.ndarray:
    """(S, D): the stops a store-day no policy needs to exceed (relaxation 2), at least 1."""
    pair_stops = np.where(shelf > 0, np.ceil(1.0 + demand / np.maximum(shelf, 1.0)), 1.0).max(axis=1)
    load_stops = np.ceil(((shelf + demand + case) / case * case_litres).sum(axis=1) / truck_litres)
    return np.maximum(1.0, np.maximum(pair_stops, load_stops))


def _stock_balance_rows(
    rows: _Rows, initial: np.ndarray, stock: np.ndarray, q: np.ndarray, sold: np.ndarray, waste: np.ndarray
) -> None:
    """Each day's stock from the day before's, and its sales from the stock it started with and what arrived."""
    # stock balance: stock_d - stock_{d-1} - q_d + sold_d + waste_d = 0 (stock_{-1}: the initial stock)
    rows.add([stock[:, :, :1], q[:, :, :1], sold[:, :, :1], waste[:, :, :1]], [1, -1, 1, 1], initial, initial)
    # sales come from the stock the day started with and what arrived: sold_d - q_d - stock_{d-1} <= 0
    rows.add([sold[:, :, :1], q[:, :, :1]], [1, -1], -np.inf, initial)
    if stock.shape[2] > 1:
        before = stock[:, :, :-1]
        rows.add([stock[:, :, 1:], before, q[:, :, 1:], sold[:, :, 1:], waste[:, :, 1:]], [1, -1, -1, 1, 1], 0, 0)
        rows.add([sold[:, :, 1:], q[:, :, 1:], before], [1, -1, -1], -np.inf, 0)


def _truck_rows(
    rows: _Rows, instance: Instance, x: np.ndarray, stops: np.ndarray, trucks: np.ndarray, depot_ids: np.ndarray
) -> None:
    """Trucks per depot and day: by volume and by stops."""
    days = instance.shape[2]
    litres = np.asarray(instance.case_litres, dtype=np.float64)
    truck_litres = float(instance.truck_litres)
    for g in range(trucks.shape[0]):
        members = np.flatnonzero(depot_ids == g)
        load = x[members].transpose(2, 0, 1).reshape(days, -1)  # (D, members x P)
        weight = np.tile(litres, members.size)
        rows.add_wide(np.concatenate([load, trucks[g][:, None]], 1), np.append(weight, -truck_litres), -np.inf, 0)
        if instance.stops_per_truck is not None:
            visits = np.concatenate([stops[members].T, trucks[g][:, None]], axis=1)  # (D, members + 1)
            rows.add_wide(visits, np.append(np.ones(members.size), -float(instance.stops_per_truck)), -np.inf, 0)


def _perishable_rows(
    rows: _Rows, instance: Instance, stock: np.ndarray, sold: np.ndarray, waste: np.ndarray, q: np.ndarray
) -> None:
    """Perishables: what is on the shelf at the end of day d leaves it, sold or expired, by the end of day
    d + L - 1; the initial stock whose last day is j, by the end of day j. And nothing expires before its
    last day: what expired by the end of day j came with the initial stock or on days up to j - L + 1."""
    days = instance.shape[2]
    life = np.asarray(instance.shelf_life_days, dtype=np.int64)
    must, may = _initial_expiry(instance)
    for p in np.flatnonzero(life > 0):
        span = int(life[p])
        for d in range(days - span + 1):
            window = np.arange(d + 1, d + span)
            index = np.concatenate([stock[:, p, d : d + 1], sold[:, p, window], waste[:, p, window]], axis=1)
            rows.add_wide(index, np.concatenate([[1.0], -np.ones(2 * window.size)]), -np.inf, 0)
        for j in range(days):
            grows = must[:, p, j] > (must[:, p, j - 1] if j else 0.0) + 1e-9
            if grows.any():
                index = np.concatenate([sold[grows, p, : j + 1], waste[grows, p, : j + 1]], axis=1)
                rows.add_wide(index, 1.0, must[grows, p, j], np.inf)
            arrived = max(0, j - span + 2)  # deliveries of days 0 .. j - L + 1 may have expired by day j
            index = np.concatenate([waste[:, p, : j + 1], q[:, p, :arrived]], axis=1)
            values = np.concatenate([np.ones(j + 1), -np.ones(arrived)])
            rows.add_wide(index, values, -np.inf, may[:, p, j])


def _valid_cuts(
    rows: _Rows,
    demand: np.ndarray,
    initial: np.ndarray,
    day_stops: np.ndarray,
    sold: np.ndarray,
    stock: np.ndarray,
    stops: np.ndarray,
    visited: np.ndarray,
    store_trucks: np.ndarray,
) -> None:
    """Valid for every integer solution, only to speed up the search: visited <= stops <= the store-day's bound
    x visited; a depot with a stop that day sends a truck; the sales of days a..b come from the stock day a
    started with and, from each day t with a stop, at most the demand of days t..b."""
    n_stores, n_products, days = demand.shape
    rows.add([stops, visited], [1, -1], 0, np.inf)
    rows.add([stops, visited], [1, -day_stops], -np.inf, 0)
    rows.add([store_trucks, visited], [1, -1], 0, np.inf)
    after = np.concatenate([np.cumsum(demand[:, :, ::-1], axis=2)[:, :, ::-1], np.zeros((n_stores, n_products, 1))], 2)
    for a in range(days):
        for b in range(a, days):
            window = np.arange(a, b + 1)
            reach = after[:, :, window] - after[:, :, b + 1 : b + 2]  # demand of days t..b
            visit = np.broadcast_to(visited[:, None, window], reach.shape)
            terms = [sold[:, :, window], visit] + ([stock[:, :, a - 1 : a]] if a else [])
            values = [np.ones(reach.shape), -reach] + ([-np.ones((n_stores, n_products, 1))] if a else [])
            rows.add_wide(
                np.concatenate(terms, axis=2).reshape(n_stores * n_products, -1),
                np.concatenate(values, axis=2).reshape(n_stores * n_products, -1),
                -np.inf,
                initial.reshape(-1) if a == 0 else 0.0,
            )


def _highs_lp(cols: _Columns, rows: _Rows) -> highspy.HighsLp:
    """The columns and rows as HiGHS's programme (a row-wise matrix)."""
    start, index, value, row_lower, row_upper = rows.matrix()
    lp = highspy.HighsLp()
    lp.num_col_ = cols.count
    lp.num_row_ = row_lower.size
    lp.col_cost_ = np.concatenate(cols.cost)
    lp.col_lower_ = np.concatenate(cols.lower)
    lp.col_upper_ = np.concatenate(cols.upper)
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.a_matrix_.num_col_ = cols.count
    lp.a_matrix_.num_row_ = row_lower.size
    kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
    lp.integrality_ = [kinds[int(i)] for i in np.concatenate(cols.integer)]
    return lp


def _fix(model: _Model, run: Mapping[str, Any]) -> None:
    """Fix the programme's columns to a run's ``cases``, ``accepted``, ``stops`` and ``trucks``, its stops
    capped at the store-day bound of relaxation 2 (how a real run is mapped to the programme)."""
    lower, upper = np.array(model.lp.col_lower_), np.array(model.lp.col_upper_)
    for name in ("cases", "accepted", "stops", "trucks"):
        index = model.columns[name]
        value = np.asarray(run[name], dtype=np.float64)
        if value.shape != index.shape:
            raise ValueError(f"the run's {name} is {value.shape}, the programme's {index.shape}")
        if name == "stops":
            value = np.minimum(value, model.day_stops)
        lower[index], upper[index] = value, value
    model.lp.col_lower_, model.lp.col_upper_ = lower, upper


def hindsight_lower_bound(
    instance: Instance,
    costs: CostParameters,
    time_limit_s: float = 120,
    *,
    mip_rel_gap: float = 1e-4,
    threads: int = 2,
    run: Mapping[str, Any] | None = None,
) -> LowerBound:
    """The least cost any policy could have had over the instance's days, knowing their demand (see the
    module for the model). ``cost`` is HiGHS's dual bound: a lower bound even when the time limit stops it.

    ``run`` (a check of the relaxation): a run's ``cases`` shipped and units ``accepted`` (S, P, D), its
    ``stops`` (S, D) and ``trucks`` (depots in ``np.unique(instance.depot)`` order, D) fix those columns (its
    stops capped at the store-day bound of relaxation 2); the result is then the programme's cost of that run,
    at most the run's own cost (``status`` "Infeasible" if the run breaks a constraint of the programme)."""
    started = time.perf_counter()
    model = _build(instance, costs)
    if run is not None:
        _fix(model, run)
    h = _solved(model.lp, time_limit_s, mip_rel_gap, threads)
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    values = np.asarray(h.getSolution().col_value)
    parts: dict[str, float] = {}
    plan: dict[str, Any] = {}
    deliveries = trucks = 0
    if info.primal_solution_status == SOLUTION_FEASIBLE and values.size == model.lp.num_col_:
        plan = _plan(model, values)
        deliveries, trucks = int(plan["stops"].sum()), int(plan["trucks"].sum())
        parts = _plan_cost_parts(instance, costs, model, plan)
    incumbent = float(sum(parts.values())) if parts else math.inf
    dual = float(info.mip_dual_bound)
    # no bound from the search: the trivial one (no part is negative); never above a plan that was found
    bound = max(0.0, min(model.constant + dual if math.isfinite(dual) else 0.0, incumbent))
    parts |= {"incumbent": incumbent, "dual_bound": bound}
    return LowerBound(
        cost=bound,
        parts=parts,
        status=status,
        mip_gap=float(info.mip_gap),
        seconds=time.perf_counter() - started,
        deliveries=deliveries,
        trucks=trucks,
        plan=plan,
    )


def _solved(lp: highspy.HighsLp, time_limit_s: float, mip_rel_gap: float, threads: int) -> highspy.Highs:
    """HiGHS run on ``lp`` (quietly, seeded) until optimal within ``mip_rel_gap`` or out of time."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", 0)
    h.passModel(lp)
    h.run()
    return h


def _plan(model: _Model, values: np.ndarray) -> dict[str, Any]:
    """The solution's columns by name, the cases, stops and trucks as whole numbers."""
    plan = {name: values[index] for name, index in model.columns.items()}
    for name in ("cases", "stops", "trucks"):
        plan[name] = np.rint(plan[name]).astype(np.int64)
    return plan


def _plan_cost_parts(
    instance: Instance, costs: CostParameters, model: _Model, plan: dict[str, Any]
) -> dict[str, float]:
    """What the plan costs, part by part, as a run is priced (``storeops.service_level.CostParts``)."""
    demand = np.asarray(instance.demand, dtype=np.float64)
    unit_cost = np.asarray(instance.unit_cost, dtype=np.float64)[None, :, None]
    margin = np.asarray(instance.margin, dtype=np.float64)[None, :, None]
    deliveries, trucks = int(plan["stops"].sum()), int(plan["trucks"].sum())
    km = (model.per_stop_km[:, None] * plan["stops"]).sum() + (model.per_truck_km[:, None] * plan["trucks"]).sum()
    return {
        "trucks": trucks * costs.truck_per_route,
        "km": float(km) * costs.per_km,
        "stops": deliveries * costs.per_stop,
        "holding": float((unit_cost * model.holding_day * plan["held"]).sum()),
        "waste": float((unit_cost * plan["waste"]).sum()),
        "lost_margin": float((margin * (demand - plan["sold"])).sum()),
    }


def stops_per_truck(fleet: Fleet) -> int | None:
    """The most stops a route of ``fleet`` can make within its time limit (relaxation 7): each takes at least
    ``minutes_per_stop + minutes_per_cage`` (one cage), in the router's whole seconds; None when a stop takes
    no time (no limit)."""
    limit = math.floor(fleet.route_limit_hours * 3600)  # as storeops.dispatch.vrp counts them
    least = round(fleet.unloading_minutes(1) * 60)
    return None if least <= 0 else limit // least


def road_distances(
    depots: list[tuple[float, float]], points: list[tuple[float, float]], depot: np.ndarray, fleet: Fleet
) -> tuple[np.ndarray, np.ndarray]:
    """(depot_km, nearest_km) of stores at ``points`` served from ``depots[depot[s]]``: road km
    (``Fleet.road_km``) less half a metre, the most the router's rounding to whole metres takes off a leg."""
    depot = np.asarray(depot, dtype=np.int64)

    def road(a: tuple[float, float], b: tuple[float, float]) -> float:
        return max(0.0, fleet.road_km(a, b) - METRE_ROUNDING_KM)

    depot_km = np.array([road(depots[int(g)], point) for g, point in zip(depot, points, strict=True)])
    nearest = np.full(len(points), np.inf)
    for i, point in enumerate(points):
        others = [road(point, points[j]) for j in range(len(points)) if j != i and depot[j] == depot[i]]
        if others:
            nearest[i] = min(others)
    return depot_km, nearest


def instance_from_catalog(catalog: Any, state: Any, demand: np.ndarray, fleet: Fleet) -> Instance:
    """The instance of a simulation chunk (``storeops.stores.simulation.SimulationState``: its stock,
    planogram and perishable cohorts at the start of day 0) over ``demand`` (its stores x products x days),
    with ``fleet``'s trucks and road distances (``storeops.directory``: regional depots) and the catalog's
    case volumes (``case_litres``, as the product master publishes them to the trucks)."""
    from storeops.directory import DEPOTS

    first, stop = int(state.first_store), int(state.stop_store)
    stores = catalog.stores.iloc[first:stop]
    products = catalog.products
    regions = stores["region"].to_numpy()
    points = list(zip(stores["lat"].astype(float), stores["lon"].astype(float), strict=True))
    depot_names = list(DEPOTS)
    depot = np.array([depot_names.index(r) for r in regions], dtype=np.int64)
    depot_km, nearest = road_distances([DEPOTS[name] for name in depot_names], points, depot, fleet)
    days = int(np.asarray(demand).shape[2])
    life = products["shelf_life_days"].to_numpy().astype(np.int64)
    expiring = np.zeros((len(points), len(products), days))
    columns = np.flatnonzero(np.asarray(state.perishable))
    cohorts = np.asarray(state.cohorts)  # (S, perishable products, days left): index j expires at the end of day j
    for k, p in enumerate(columns):
        span = min(days, cohorts.shape[2])
        expiring[:, p, :span] = cohorts[:, k, :span]
    return Instance(
        demand=np.asarray(demand, dtype=np.int64),
        initial_stock=np.asarray(state.on_hand, dtype=np.int64).copy(),
        capacity=np.asarray(state.capacity, dtype=np.int64).copy(),
        case_pack=products["case_pack"].to_numpy().astype(np.int64),
        margin=(products["price"] - products["unit_cost"]).to_numpy().astype(np.float64),
        unit_cost=products["unit_cost"].to_numpy().astype(np.float64),
        shelf_life_days=life,
        depot_km=depot_km,
        nearest_km=nearest,
        depot=depot,
        case_litres=products["case_litres"].to_numpy().astype(np.float64),
        truck_litres=float(fleet.capacity_cages * fleet.cage_litres),
        stops_per_truck=stops_per_truck(fleet),
        initial_expiring=expiring,
    )


def daily_demand(model: Any, start: Any, days: int) -> np.ndarray:
    """(S, P, days): a ``storeops.stores.demand.DemandModel``'s draws, hour by hour from ``start`` (a local
    midnight, UTC-aware), summed by local day (the simulator's customers: the same whatever the policy)."""
    from datetime import timedelta

    from storeops.calendar import local_date

    first = local_date(start)
    n_stores, n_products = model.shape
    out = np.zeros((n_stores, n_products, days), dtype=np.int64)
    hour = start
    while (day := (local_date(hour) - first).days) < days:
        out[:, :, day] += model.draw(hour)
        hour += timedelta(hours=1)
    return out


def demo(
    stores: int = 10, products: int = 20, days: int = 7, seed: int = 7, time_limit_s: float = 120
) -> dict[str, Any]:
    """The bound on a catalog's first ``days`` days from 2026-03-23 (the scenario's default start), from the
    simulator's opening stock, with the product's fleet (``Fleet`` defaults) and cost parameters; and,
    for scale, what the simulator's shelves cost over those days if no truck came."""
    from datetime import UTC, datetime, timedelta

    from storeops.stores.catalog import build_catalog
    from storeops.stores.simulation import advance_to, initial_state

    start = datetime(2026, 3, 23, tzinfo=UTC)  # a local midnight (GMT)
    catalog = build_catalog(stores, products, seed=seed)
    state = initial_state(catalog, start)
    demand = daily_demand(state.model, start, days)
    instance = instance_from_catalog(catalog, state, demand, Fleet())
    costs = CostParameters()
    result = hindsight_lower_bound(instance, costs, time_limit_s=time_limit_s)
    unit_cost = catalog.products["unit_cost"].to_numpy()
    margin = (catalog.products["price"] - catalog.products["unit_cost"]).to_numpy()
    idle, clock = 0.0, start
    while clock < start + timedelta(days=days):  # the simulator, hour by hour, with no deliveries
        clock += timedelta(hours=1)
        tick = advance_to(state, clock)
        idle += float((tick.on_hand * unit_cost).sum()) * tick.period_hours * costs.holding_per_unit_hour
        idle += float((tick.units_expired * unit_cost).sum() + (tick.units_lost * margin).sum())
    units = int(demand.sum())
    return {
        "stores": stores,
        "products": products,
        "days": days,
        "seed": seed,
        "units_demanded": units,
        "lower_bound_cost": round(result.cost, 2),
        "lower_bound_per_1000_units": round(1000 * result.cost / max(units, 1), 2),
        "status": result.status,
        "mip_gap": result.mip_gap,
        "seconds": round(result.seconds, 2),
        "stops": result.deliveries,
        "trucks": result.trucks,
        "parts": {name: round(amount, 2) for name, amount in result.parts.items()},
        "no_truck_cost": round(idle, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from storeops.cli import OneLineArgumentParser, emit_json, non_negative_int, positive_int, print_summary

    parser = OneLineArgumentParser(
        prog="python -m bench.lower_bound",
        description=__doc__.split("\n\n")[0] + DURATION,
    )
    parser.add_argument("--stores", type=positive_int, default=10)
    parser.add_argument("--products", type=positive_int, default=20)
    parser.add_argument("--days", type=positive_int, default=7, help="local days from 2026-03-23")
    parser.add_argument("--seed", type=non_negative_int, default=7)
    parser.add_argument("--time-limit", type=positive_int, default=120, help="HiGHS's limit, seconds")
    parser.add_argument("--json", action="store_true", help="one JSON object as the last line")
    args = parser.parse_args(argv)
    figures = demo(args.stores, args.products, args.days, args.seed, args.time_limit)
    rows: list[tuple[str, Any]] = [
        ("units demanded", figures["units_demanded"]),
        (
            "lower bound",
            f"GBP {figures['lower_bound_cost']:,.2f} ({figures['lower_bound_per_1000_units']:,.2f} per 1,000 units)",
        ),
        ("HiGHS", f"{figures['status']}, gap {figures['mip_gap']:.1e}, {figures['seconds']:.1f} s"),
        ("best plan", f"{figures['stops']} stops, {figures['trucks']} trucks"),
        *((f"  {name}", f"{amount:,.2f}") for name, amount in figures["parts"].items()),
        ("the simulator with no truck at all", f"GBP {figures['no_truck_cost']:,.2f}"),
    ]
    print_summary(f"{args.stores} stores x {args.products} products x {args.days} days (seed {args.seed})", rows)
    if args.json:
        emit_json(figures)
    return 0


if __name__ == "__main__":
    from bench.harness import run_benchmark

    raise SystemExit(run_benchmark(main))
