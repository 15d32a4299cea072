"""The replenishment policy: when each store gets a delivery and how much of each product, at the least cost.

Pure and vectorised over a chunk of store-products (numpy arrays); ``storeops.planning.service`` feeds it
the rows of ``sql/replenishment.sql`` (the latest readings joined with the day's forecast, the planogram,
the product master and the ledger) and turns its orders into dispatch requests. ARCHITECTURE.md
"Replenishment policy" states the formulas; in short:

- **Delivery slots.** Every store gets a regular delivery a day, ordered by the first plan at or after
  ``REGULAR_SLOT_HOUR`` local time (it arrives before the stores open at 07:00): every store sells fresh
  food whose shelves hold a few days (ARCHITECTURE.md "Forecast and replenishment": why daily). Regular
  orders are periodic review: each product is ordered up to the level that covers the demand until the
  delivery ``COVER_SLOTS`` slots on arrives, at the product's critical ratio.
- **Critical ratio** (newsvendor): the lost margin of a unit short against what an unsold unit costs:
  holding it until the next delivery and, for a perishable, its cost times the chance it expires unsold
  (demand over its shelf life falls short of the stock ahead of it). For a perishable the order-up-to
  level is the largest stock at which the marginal unit still pays: margin x P(demand > stock) >=
  holding + cost x P(demand over its life < stock).
- **Whole cases, within the shelf.** Ambient products round up to whole cases; a perishable gets the fewer
  or the more of the two case counts around its gap, whichever earns more in expectation (margin on what
  sells in the cycle, less holding and the cost of what expires); nothing more than fits.
- **Between slots** (emergency and can-order): a store gets an extra delivery when the margin the
  expected shortfalls before its next regular delivery would lose exceeds the extra stop cost (the plan
  event's ``extra_stop_cost``, default ``storeops.parameters.EXTRA_STOP_COST``: an
  extra stop and its detour); that truck then tops up every product of the store below its level
  (can-order), so the visit serves the whole store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from storeops.calendar import TIMEZONE, local_hour
from storeops.planning.distributions import cdf_table, demand_quantile, expected_shortfall

REGULAR_SLOT_HOUR = 4  # local: a regular order leaves before dawn and arrives before opening
# A regular order covers the demand until the delivery this many slots on arrives. Measured (bench.service_level,
# 7 days, 100 x 50): one slot (the textbook periodic review) lost 4.9% of demand at GBP 498 per 1,000 units,
# two lost 2.9% at GBP 493 (waste 1.1% and 1.7%): the forecast's spread leaves out its own error and the
# hour-to-hour timing of the day's shocks, which a second day's cover absorbs for less than the lost margin.
COVER_SLOTS = 2
MAX_CRITICAL_RATIO = 0.999
MIN_CRITICAL_RATIO = 0.05
HOURS_A_YEAR = 24 * 365


@dataclass(frozen=True)
class Costs:
    """What the policy prices: holding per unit of cost and year (``storeops.costs.CostParameters``)."""

    holding_rate_per_year: float
    extra_stop_cost: float = 40.0  # storeops.parameters.EXTRA_STOP_COST, the plan event's default
    safety_factor: float = 1.0  # scales the demand's standard deviation in the levels


@dataclass(frozen=True)
class Forecast:
    """The forecast of a chunk of pairs: expected demand on each horizon day (UTC days from ``first_day``), the
    variance-to-mean ratio, and the share of a day's demand in each local hour of day."""

    first_day: datetime  # 00:00 UTC of the first horizon day
    daily_mean: np.ndarray  # (n, days)
    dispersion: np.ndarray  # (n,)
    hour_share: np.ndarray  # (n, 24), rows summing to 1 (or 0 where nothing was ever sold)

    def demand(self, start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) of each pair's demand in ``[start, end)``: whole hours, beyond the horizon at the
        horizon's last day."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        hour = start.replace(minute=0, second=0, microsecond=0)
        mean = np.zeros(self.daily_mean.shape[0])
        days = self.daily_mean.shape[1]
        while hour < end:
            lo, hi = max(start, hour), min(end, hour + timedelta(hours=1))
            fraction = (hi - lo).total_seconds() / 3600.0
            if fraction > 0:
                index = min(days - 1, max(0, (hour.date() - self.first_day.date()).days))
                mean += self.daily_mean[:, index] * self.hour_share[:, local_hour(hour).hour] * fraction
            hour += timedelta(hours=1)
        return mean, mean * np.maximum(self.dispersion, 1.0)

    def per_day(self) -> np.ndarray:
        """(n,): the horizon's mean demand a day."""
        return np.asarray(self.daily_mean.mean(axis=1))


def next_slot(now: datetime, slot_hour: int = REGULAR_SLOT_HOUR) -> datetime:
    """The first regular order time (``slot_hour`` local, on the hour) after ``now``."""

    zone = ZoneInfo(TIMEZONE)
    local = now.astimezone(zone)
    day = local.date()
    for offset in range(3):
        candidate = datetime(day.year, day.month, day.day, slot_hour, tzinfo=zone) + timedelta(days=offset)
        if candidate.astimezone(UTC) > now:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a slot a day")


def is_slot_plan(now: datetime, review_hours: float, slot_hour: int = REGULAR_SLOT_HOUR) -> bool:
    """Does the plan at ``now`` (every ``review_hours``) place the regular orders: is a slot in
    ``(now - review_hours, now]``?"""
    previous = now - timedelta(hours=review_hours)
    return next_slot(previous, slot_hour) <= now


def critical_ratio(margin: np.ndarray, unit_cost: np.ndarray, held_hours: np.ndarray, costs: Costs) -> np.ndarray:
    """c_u / (c_u + c_o) with c_u the lost margin and c_o holding a unit for ``held_hours``."""
    holding = unit_cost * costs.holding_rate_per_year * held_hours / HOURS_A_YEAR
    ratio = margin / np.maximum(margin + holding, 1e-12)
    return np.clip(ratio, MIN_CRITICAL_RATIO, MAX_CRITICAL_RATIO)


def perishable_level(
    cycle: tuple[np.ndarray, np.ndarray],
    life: tuple[np.ndarray, np.ndarray],
    margin: np.ndarray,
    holding: np.ndarray,
    unit_cost: np.ndarray,
    upper: np.ndarray,
) -> np.ndarray:
    """The largest stock s <= ``upper`` whose s-th unit still pays: margin x P(cycle demand >= s) >= holding
    + unit cost x P(demand over its shelf life < s). ``cycle`` and ``life`` are (mean, variance) arrays. The
    left side falls and the right side rises with s, so the level is the count of stocks that pay."""
    level = np.zeros(upper.shape)
    rows_all = np.flatnonzero(upper >= 1)
    if not rows_all.size:
        return level
    tops = np.asarray(_LEVEL_BUCKETS)[
        np.minimum(np.searchsorted(_LEVEL_BUCKETS, upper[rows_all]), len(_LEVEL_BUCKETS) - 1)
    ]
    for top in np.unique(tops):
        rows = rows_all[tops == top]
        below_cycle = cdf_table(cycle[0][rows], cycle[1][rows], int(top))[:, :-1]  # P(D <= s - 1), s = 1..top
        below_life = cdf_table(life[0][rows], life[1][rows], int(top))[:, :-1]
        pays = (
            margin[rows][:, None] * (1.0 - below_cycle)
            >= holding[rows][:, None] + unit_cost[rows][:, None] * below_life
        )
        stock = np.arange(1, int(top) + 1)[None, :]
        level[rows] = (pays & (stock <= upper[rows][:, None])).sum(axis=1)
    return level


_LEVEL_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 4096)


@dataclass(frozen=True)
class Pairs:
    """A chunk of store-products as the policy sees them."""

    store: np.ndarray  # (n,) store ids
    on_hand: np.ndarray
    case_pack: np.ndarray
    capacity: np.ndarray
    shelf_life_days: np.ndarray  # 0: not perishable
    margin: np.ndarray  # regular price - unit cost
    unit_cost: np.ndarray
    lead_time_hours: np.ndarray  # the store's achieved lead time
    blocked: np.ndarray  # bool: an open request or a delivery on its way (never ordered twice)


@dataclass(frozen=True)
class Orders:
    """What the policy decided for a chunk: units per pair (0: none), the levels, and why."""

    quantity: np.ndarray
    reorder_point: np.ndarray  # the stock at or below which the pair is ordered
    target: np.ndarray  # the order-up-to level
    regular: np.ndarray  # bool: a regular (slot) order; else an extra delivery's


def cycle_demand(forecast: Forecast, now: datetime, until: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of each pair's demand from ``now`` until ``until`` hours from now (per pair): the
    forecast's hours added one by one (each pair up to its own end), so the work grows with the longest
    interval, not with the number of different ones."""
    now = now.astimezone(UTC)
    mean = np.zeros(until.size)
    hour = now.replace(minute=0, second=0, microsecond=0)
    days = forecast.daily_mean.shape[1]
    elapsed_start = (hour - now).total_seconds() / 3600.0  # <= 0: the part of the first hour before now
    longest = float(until.max()) if until.size else 0.0
    while elapsed_start < longest:
        index = min(days - 1, max(0, (hour.date() - forecast.first_day.date()).days))
        rate = forecast.daily_mean[:, index] * forecast.hour_share[:, local_hour(hour).hour]
        covered = np.clip(np.minimum(until, elapsed_start + 1.0) - max(elapsed_start, 0.0), 0.0, 1.0)
        mean += rate * covered
        hour += timedelta(hours=1)
        elapsed_start += 1.0
    return mean, mean * np.maximum(forecast.dispersion, 1.0)


def life_demand(pairs: Pairs, forecast: Forecast) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of each pair's demand over its shelf life (0 where it keeps)."""
    life_mean = forecast.per_day() * pairs.shelf_life_days
    return life_mean, life_mean * np.maximum(forecast.dispersion, 1.0)


def order_up_to(pairs: Pairs, forecast: Forecast, now: datetime, until: np.ndarray, costs: Costs) -> np.ndarray:
    """Each pair's order-up-to level for the demand from ``now`` until ``until`` (hours from now, per pair)."""
    mean, var = cycle_demand(forecast, now, until)
    var = np.maximum(var * costs.safety_factor**2, mean)
    ratio = critical_ratio(pairs.margin, pairs.unit_cost, until, costs)
    level = demand_quantile(mean, var, ratio)
    perishable = pairs.shelf_life_days > 0
    if perishable.any():
        rows = np.flatnonzero(perishable)
        life_mean, life_var = life_demand(pairs, forecast)
        life = (life_mean[rows], life_var[rows])
        holding = pairs.unit_cost[rows] * costs.holding_rate_per_year * until[rows] / HOURS_A_YEAR
        level[rows] = perishable_level(
            (mean[rows], var[rows]), life, pairs.margin[rows], holding, pairs.unit_cost[rows], level[rows]
        )
    return np.minimum(level, pairs.capacity)


def stock_value(
    stock: np.ndarray,
    cycle: tuple[np.ndarray, np.ndarray],
    life: tuple[np.ndarray, np.ndarray],
    margin: np.ndarray,
    holding: np.ndarray,
    unit_cost: np.ndarray,
) -> np.ndarray:
    """The expected margin a stock earns over the cycle, less its holding and the cost of what expires unsold:
    margin x E[min(D_cycle, s)] - holding x s - unit cost x E[(s - D_life)+]."""
    served = cycle[0] - expected_shortfall(cycle[0], cycle[1], stock)
    expired = stock - life[0] + expected_shortfall(life[0], life[1], stock)
    return np.asarray(margin * served - holding * stock - unit_cost * np.maximum(expired, 0.0))


def whole_cases(
    pairs: Pairs,
    target: np.ndarray,
    cycle: tuple[np.ndarray, np.ndarray] | None = None,
    life: tuple[np.ndarray, np.ndarray] | None = None,
    holding: np.ndarray | None = None,
) -> np.ndarray:
    """Units to order to bring the stock to ``target`` in whole cases, never more than fits on the shelf.
    Ambient products round up. A perishable's cases are the fewer or the more of the two counts around the
    gap, whichever ``stock_value`` prices higher (given its cycle and life demand); without them, the
    nearest count, at least one case when the shelf would run out."""
    gap = np.maximum(target - pairs.on_hand, 0.0)
    exact = gap / pairs.case_pack
    perishable = pairs.shelf_life_days > 0
    cases = np.where(perishable, np.floor(exact + 0.5), np.ceil(exact))
    if cycle is not None and life is not None and holding is not None and perishable.any():
        rows = np.flatnonzero(perishable & (gap > 0))
        fewer, more = np.floor(exact[rows]), np.ceil(exact[rows])
        args = (
            (cycle[0][rows], cycle[1][rows]),
            (life[0][rows], life[1][rows]),
            pairs.margin[rows],
            holding[rows],
            pairs.unit_cost[rows],
        )
        on_hand = pairs.on_hand[rows]
        case = pairs.case_pack[rows]
        better = stock_value(on_hand + more * case, *args) > stock_value(on_hand + fewer * case, *args)
        cases[rows] = np.where(better, more, fewer)
    else:
        cases = np.where(perishable & (gap > 0) & (pairs.on_hand == 0), np.maximum(cases, 1), cases)
    room = np.floor(np.maximum(pairs.capacity - pairs.on_hand, 0) / pairs.case_pack)
    return np.asarray(np.minimum(cases, room) * pairs.case_pack, dtype=np.int64)


def decide(pairs: Pairs, forecast: Forecast, now: datetime, review_hours: float, costs: Costs) -> Orders:
    """The orders of one plan for a chunk of pairs (see the module)."""
    slot_now = is_slot_plan(now, review_hours)
    upcoming = next_slot(now)  # the first slot after this plan: the next regular order
    hours_to_next = (upcoming - now).total_seconds() / 3600.0
    if slot_now:  # this plan places the regular orders: they cover until the delivery COVER_SLOTS slots on
        hours_to_next += 24.0 * (COVER_SLOTS - 1)
    until = np.round(hours_to_next + pairs.lead_time_hours, 1)  # when that delivery arrives
    target = order_up_to(pairs, forecast, now, until, costs)
    cycle = cycle_demand(forecast, now, until)
    holding = pairs.unit_cost * costs.holding_rate_per_year * until / HOURS_A_YEAR
    quantity = whole_cases(pairs, target, cycle, life_demand(pairs, forecast), holding)
    quantity = np.where(pairs.blocked, 0, quantity)
    regular = np.full(pairs.on_hand.size, slot_now)
    if not slot_now:
        # an extra delivery only where the margin it saves pays for the stop, for the whole store
        mean, var = cycle
        short = expected_shortfall(mean, var, pairs.on_hand) * pairs.margin
        short = np.where(pairs.blocked, 0.0, short)
        stores, index = np.unique(pairs.store, return_inverse=True)
        at_stake = np.bincount(index, weights=short, minlength=stores.size)
        visited = at_stake[index] > costs.extra_stop_cost
        quantity = np.where(visited, quantity, 0)
    # order-up-to: a pair is ordered when its stock is below its level (its reorder point is one unit less)
    return Orders(quantity=quantity, reorder_point=np.maximum(target - 1, 0), target=target, regular=regular)
