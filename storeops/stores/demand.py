"""The simulated shoppers: how many units of each product a store's customers want, hour by hour.

Pure, seeded and vectorised over a chunk of stores (rows) x every product (columns). The demand
of a UTC hour is drawn from a generator keyed by (seed, the chunk's first store, the hour's
number), so it is the same whatever the stock, the policy replenishing it, the time a run started
or how the hour is cut into readings: a reading covering part of an hour gets the purchases whose
arrival falls in that part.

The expected units of a store-product in an hour are

    rate x store scale x pair noise                      (its long-run daily mean)
    x weekday factor (by store format, local weekday)    (weekend peaks)
    x event factor (holidays, the days before them)      (storeops.calendar)
    x store-day traffic shock (lognormal, shared by the store's products)
    x pair-day shock (gamma of shape = the product's dispersion: daily demand is negative binomial)
    x promotion factor (lift on promoted days, a dip in the week after)
    x the category's share of the day in that local hour (zero while the store is closed)

Shoppers arrive as a Poisson process of that intensity divided by the product's mean purchase
size, and each takes a geometric number of units (at least one): slow products with multi-unit
purchases give the intermittent and lumpy series of real assortments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from storeops.calendar import FORMATS, HOURS, OpeningHours, event_factor, local_hour, opening_hours
from storeops.stores.catalog import CATEGORIES, Catalog

PAIR_STREAM = 2  # the seed's generator streams (1 builds the catalog)
DEMAND_STREAM = 3
STORE_DAY_STREAM = 4
PAIR_DAY_STREAM = 5
PROMO_STREAM = 6
PAIR_NOISE_SIGMA = 0.4  # how much a product's rate differs from store to store
STORE_DAY_SIGMA = 0.15  # store traffic from day to day (weather, local events)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # hours are numbered from here
# Weekday factors (Monday first) by store format, normalised to a mean of 1: weekend peaks.
WEEKDAY_FACTORS = {
    "superstore": np.array([0.90, 0.86, 0.88, 0.95, 1.10, 1.33, 0.98]),
    "express": np.array([0.92, 0.90, 0.91, 0.95, 1.08, 1.22, 1.10]),
}
WEEKDAY_FACTORS = {k: v / v.mean() for k, v in WEEKDAY_FACTORS.items()}
# The promotion calendar: chain-wide, a product at a time, weeks starting on Mondays.
PROMO_FIRST_DAY = date(2024, 1, 1)  # a Monday
PROMO_LAST_DAY = date(2029, 12, 31)
PROMO_DISCOUNTS = np.array([0.15, 0.20, 0.25, 0.33, 0.50])
PROMO_LIFT_RANGE = (1.5, 4.0)
PROMO_GAP_WEEKS = (5, 12)
DIP_DAYS = 7


def hour_number(moment: datetime) -> int:
    """The number of the UTC hour ``moment`` is in (what an hour's demand is keyed by)."""
    return int((moment.astimezone(UTC) - EPOCH).total_seconds() // 3600)


@lru_cache(maxsize=256)
def hour_shares(hours: OpeningHours) -> np.ndarray:
    """(categories, 24): each category's share of a day's demand in each local hour of a day with these
    opening hours (each row sums to 1; all zeros on a closed day)."""
    clock = np.arange(HOURS) + 0.5
    rows = []
    for profile in CATEGORIES.values():
        shape = 0.15 + sum(w * np.exp(-0.5 * ((clock - h) / s) ** 2) for h, s, w in profile.hour_peaks)
        rows.append(shape * hours.mask())
    shares = np.array(rows)
    totals = shares.sum(axis=1, keepdims=True)
    return np.divide(shares, totals, out=np.zeros_like(shares), where=totals > 0)


@dataclass(frozen=True)
class PromoCalendar:
    """Every product's promotions (chain-wide): the published part (dates, discount) and what only the
    simulator knows (the lift it causes and the dip after). Events are (P, K) arrays, padded."""

    start: np.ndarray  # int64 day ordinals
    end: np.ndarray  # inclusive
    discount: np.ndarray  # float, 0 for padding
    lift: np.ndarray
    dip: np.ndarray  # the factor on each of the DIP_DAYS after the promotion

    @classmethod
    def of(cls, catalog: Catalog) -> PromoCalendar:
        return _promo_calendar(catalog.seed, catalog.shape[1], catalog)

    def factors(self, day: date) -> np.ndarray:
        """(P,): each product's demand factor on ``day`` (lift, dip or 1)."""
        d = day.toordinal()
        on = (self.start <= d) & (d <= self.end)
        after = (self.end < d) & (d <= self.end + DIP_DAYS)
        lifted = np.where(on, self.lift, 1.0).max(axis=1)  # a product's promotions never overlap
        dipped = np.where(after, self.dip, 1.0).min(axis=1)
        return np.asarray(np.where(on.any(axis=1), lifted, dipped))

    def on_promotion(self, day: date) -> np.ndarray:
        """(P,) bool: which products are on promotion on ``day``."""
        d = day.toordinal()
        return np.asarray(((self.start <= d) & (d <= self.end)).any(axis=1))

    def discount_on(self, day: date) -> np.ndarray:
        """(P,): each product's discount on ``day`` (0 when not promoted)."""
        d = day.toordinal()
        return np.asarray(np.where((self.start <= d) & (d <= self.end), self.discount, 0.0).max(axis=1))

    def table(self, product_ids: list[str]) -> pd.DataFrame:
        """The published calendar: one row per promotion (product_id, start_date, end_date, discount_pct)."""
        rows, cols = np.nonzero(self.discount > 0)
        frame = pd.DataFrame(
            {
                "product_id": np.array(product_ids)[rows],
                "start_date": [date.fromordinal(int(x)).isoformat() for x in self.start[rows, cols]],
                "end_date": [date.fromordinal(int(x)).isoformat() for x in self.end[rows, cols]],
                "discount_pct": np.round(self.discount[rows, cols] * 100).astype(np.int64),
            }
        )
        return frame.sort_values(["product_id", "start_date"]).reset_index(drop=True)


_PROMO_CACHE: dict[tuple[int, int], PromoCalendar] = {}


def _promo_calendar(seed: int, n_products: int, catalog: Catalog) -> PromoCalendar:
    key = (seed, n_products)
    if key in _PROMO_CACHE:
        return _PROMO_CACHE[key]
    rng = np.random.default_rng([seed, PROMO_STREAM])
    weeks = (PROMO_LAST_DAY - PROMO_FIRST_DAY).days // 7 + 1
    max_events = weeks // PROMO_GAP_WEEKS[0] + 2
    gaps = rng.integers(PROMO_GAP_WEEKS[0], PROMO_GAP_WEEKS[1] + 1, (n_products, max_events))
    length = np.where(rng.random((n_products, max_events)) < 0.7, 1, 2)
    first = rng.integers(0, PROMO_GAP_WEEKS[1], (n_products, 1))
    start_week = first + np.cumsum(np.concatenate([np.zeros((n_products, 1), int), (gaps + length)[:, :-1]], 1), 1)
    discount = PROMO_DISCOUNTS[rng.integers(0, len(PROMO_DISCOUNTS), (n_products, max_events))]
    elasticity = catalog.products["promo_elasticity"].to_numpy()[:, None]
    lift = np.clip(1.0 + elasticity * discount, *PROMO_LIFT_RANGE)
    dip_share = rng.uniform(0.04, 0.25, (n_products, max_events))
    perishable = catalog.perishable[:, None]
    dip = np.where(perishable, 1.0, np.maximum(0.5, 1.0 - dip_share * (lift - 1.0)))
    base = PROMO_FIRST_DAY.toordinal()
    start = base + 7 * start_week
    end = start + 7 * length - 1
    keep = (start <= PROMO_LAST_DAY.toordinal()) & catalog.products["promo_eligible"].to_numpy()[:, None]
    calendar = PromoCalendar(
        start=np.where(keep, start, np.iinfo(np.int64).max // 2),
        end=np.where(keep, end, np.iinfo(np.int64).max // 2),
        discount=np.where(keep, discount, 0.0),
        lift=np.where(keep, lift, 1.0),
        dip=np.where(keep, dip, 1.0),
    )
    _PROMO_CACHE[key] = calendar
    return calendar


@dataclass(frozen=True)
class StoreProducts:
    """The fixed part of a chunk's demand: stores [first, stop) x every product."""

    daily_mean: np.ndarray  # (n, P) units a day in the long run
    formats: np.ndarray  # (n,) store format names
    category: np.ndarray  # (P,) category index into CATEGORIES
    purchase_size: np.ndarray  # (P,)
    dispersion: np.ndarray  # (P,)


def store_products(catalog: Catalog, first: int, stop: int) -> StoreProducts:
    """Derived store by store from the seed: the same for a store whatever chunk it is in."""
    n_stores, n_products = catalog.shape
    if not 0 <= first < stop <= n_stores:
        raise ValueError(f"stores [{first}, {stop}) are not within the catalog's {n_stores}")
    noise = np.empty((stop - first, n_products))
    for row, store in enumerate(range(first, stop)):
        noise[row] = np.random.default_rng([catalog.seed, PAIR_STREAM, store]).lognormal(
            -0.5 * PAIR_NOISE_SIGMA**2, PAIR_NOISE_SIGMA, n_products
        )
    products = catalog.products
    scale = catalog.stores["demand_scale"].to_numpy()[first:stop, None]
    names = list(CATEGORIES)
    return StoreProducts(
        daily_mean=scale * products["rate"].to_numpy()[None, :] * noise,
        formats=catalog.stores["format"].to_numpy()[first:stop],
        category=np.array([names.index(c) for c in products["category"]]),
        purchase_size=products["purchase_size"].to_numpy().astype(np.float64),
        dispersion=products["dispersion"].to_numpy().astype(np.float64),
    )


class DemandModel:
    """The demand of stores [first, stop) x every product of ``catalog``, hour by hour (see the module)."""

    def __init__(self, catalog: Catalog, first: int, stop: int) -> None:
        self.catalog = catalog
        self.first, self.stop = first, stop
        self.fixed = store_products(catalog, first, stop)
        self.promotions = PromoCalendar.of(catalog)
        self._days: dict[int, np.ndarray] = {}
        self._store_shocks: dict[int, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.fixed.daily_mean.shape[0]), int(self.fixed.daily_mean.shape[1])

    def store_shock(self, day: date) -> np.ndarray:
        """(n,): the day's traffic shock of each store (drawn for the whole catalog, so chunk-independent)."""
        d = day.toordinal()
        if d not in self._store_shocks:
            rng = np.random.default_rng([self.catalog.seed, STORE_DAY_STREAM, d])
            shocks = rng.lognormal(-0.5 * STORE_DAY_SIGMA**2, STORE_DAY_SIGMA, self.catalog.shape[0])
            self._store_shocks = {d: shocks[self.first : self.stop]}
        return self._store_shocks[d]

    def day_mean(self, day: date) -> np.ndarray:
        """(n, P): the expected units of ``day`` (local), before its opening hours spread them."""
        d = day.toordinal()
        if d not in self._days:
            fixed = self.fixed
            rng = np.random.default_rng([self.catalog.seed, PAIR_DAY_STREAM, self.first, d])
            k = fixed.dispersion[None, :]
            pair_shock = rng.gamma(np.broadcast_to(k, fixed.daily_mean.shape), 1.0 / k)
            weekday = np.array([WEEKDAY_FACTORS[f][day.weekday()] for f in fixed.formats])
            mean = fixed.daily_mean * (weekday * self.store_shock(day) * event_factor(day))[:, None]
            mean *= pair_shock * self.promotions.factors(day)[None, :]
            if len(self._days) > 3:
                self._days.clear()
            self._days[d] = mean
        return self._days[d]

    def expected_day_mean(self, day: date) -> np.ndarray:
        """(n, P): the mean of ``day``'s demand before its shocks are drawn (what the distribution oracle knows)."""
        fixed = self.fixed
        weekday = np.array([WEEKDAY_FACTORS[f][day.weekday()] for f in fixed.formats])
        mean = fixed.daily_mean * (weekday * event_factor(day))[:, None]
        return np.asarray(mean * self.promotions.factors(day)[None, :])

    def hour_shares_of(self, utc_hour: datetime) -> np.ndarray:
        """(n, P): each pair's share of its local day's demand that falls in the UTC hour ``utc_hour``."""
        local = local_hour(utc_hour)
        share = np.zeros(self.shape)
        for store_format in FORMATS:
            rows = self.fixed.formats == store_format
            if rows.any():
                hours = hour_shares(opening_hours(store_format, local.day))
                share[rows] = hours[self.fixed.category, local.hour][None, :]
        return share

    def day_variance(self, day: date) -> np.ndarray:
        """(n, P): the variance of ``day``'s demand: purchases of geometric size over gamma day shocks and
        the store's traffic shock (the true distribution, for the oracle)."""
        mean = self.expected_day_mean(day)
        size = self.fixed.purchase_size[None, :]
        store = np.exp(STORE_DAY_SIGMA**2) - 1  # the lognormal shock's variance (its mean is 1)
        shocks = (1 + 1 / self.fixed.dispersion[None, :]) * (1 + store) - 1
        return np.asarray(mean * (2 * size - 1) + mean**2 * shocks)

    def hour_intensity(self, utc_hour: datetime) -> np.ndarray:
        """(n, P): the expected units demanded in the UTC hour starting at ``utc_hour``."""
        share = self.hour_shares_of(utc_hour)
        if not share.any():
            return share
        return np.asarray(self.day_mean(local_hour(utc_hour).day) * share)

    def draw(self, utc_hour: datetime, start: float = 0.0, end: float = 1.0) -> np.ndarray:
        """(n, P) int64: the units demanded in the part ``[start, end)`` (fractions) of the UTC hour
        starting at ``utc_hour``; the same purchases whatever part of the hour is asked for."""
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"[{start}, {end}) is not a part of an hour")
        intensity = self.hour_intensity(utc_hour)
        if not intensity.any():
            return np.zeros(self.shape, dtype=np.int64)
        rng = np.random.default_rng([self.catalog.seed, DEMAND_STREAM, self.first, hour_number(utc_hour)])
        size = self.fixed.purchase_size
        purchases = rng.poisson(intensity / size[None, :]).reshape(-1)
        pair = np.repeat(np.arange(purchases.size), purchases)
        units = rng.geometric(1.0 / size[pair % self.shape[1]])
        if (start, end) != (0.0, 1.0):
            arrival = rng.random(pair.size)
            inside = (arrival >= start) & (arrival < end)
            pair, units = pair[inside], units[inside]
        return np.bincount(pair, weights=units, minlength=purchases.size).astype(np.int64).reshape(self.shape)


def hours_between(start: datetime, end: datetime) -> list[tuple[datetime, float, float]]:
    """``(utc hour, start fraction, end fraction)`` for every hour that ``[start, end)`` touches."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    parts = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        nxt = hour + timedelta(hours=1)
        lo, hi = max(start, hour), min(end, nxt)
        if hi > lo:
            parts.append((hour, (lo - hour).total_seconds() / 3600.0, (hi - hour).total_seconds() / 3600.0))
        hour = nxt
    return parts


def syntetos_boylan(series: np.ndarray) -> str | None:
    """The demand class of a daily series: smooth, erratic, intermittent or lumpy by the average inter-demand
    interval (ADI, cut-off 1.32) and the squared coefficient of variation of its non-zero demands (CV², cut-off
    0.49), after Syntetos and Boylan; None for fewer than two non-zero days."""
    nonzero = series[series > 0]
    if len(nonzero) < 2:
        return None
    adi = len(series) / len(nonzero)
    cv2 = (nonzero.std() / nonzero.mean()) ** 2
    if adi < 1.32:
        return "smooth" if cv2 < 0.49 else "erratic"
    return "intermittent" if cv2 < 0.49 else "lumpy"
