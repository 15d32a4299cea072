"""What each Athena query of the planning loop scans at a chain's size: the relation between the lake's per-row
sizes, the queries' windows (the constants the planner runs with) and the workgroup's per-query cutoff.

The relation: a stack deployed for a chain (``python -m deployments.stack deploy --stores N --products M``) gets
``cutoff_for(size)``, the template's default (Athena's 10 GiB) or, for a larger chain, the worst query's bytes over
``CUTOFF_MARGIN`` rounded up to a GiB, so every query's worst case (a missed rollup included) uses at most 80% of
the cutoff, and a runaway query (a full scan of the raw readings) is still cancelled. ARCHITECTURE.md "Scale"
states the figures and ``tests/unit/test_scan_budget.py`` holds the relation at every size the README promises: a
change of a window (``MAX_ROLL_DAYS``, ``HISTORY_DAYS``, the ledger's days, ``ARRIVAL_SPILL``) that breaks it at
the default cutoff fails that test. Worst cases are per query; Athena bills compressed bytes of the columns read of
the partitions selected (JSON: every byte of the object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from storeops.athena import ATHENA_USD_PER_TB
from storeops.planning.forecast import HISTORY_DAYS, MAX_ROLL_DAYS
from storeops.planning.models import ARRIVAL_SPILL, LEDGER_DAYS, STATE_LOOKBACK_HOURS

# Per-row sizes measured in the lake of bench.service_level's 100 x 50 scenario (14 days).
RAW_READING_BYTES = 49.0  # a reading's NDJSON, gzipped per Firehose record
ROLLED_PAIR_HOUR_BYTES = 41.0  # a row of the hourly rollup (Parquet, snappy)
DAILY_PAIR_DAY_BYTES = 10.9  # a row of the daily rollup
FORECAST_ROW_BYTES = 86.0  # a row of the forecast table
LEDGER_BYTES_PER_ORDER = 170.0  # a pair's request and dispatch records in the ledger (JSON)
ORDERS_PER_PAIR_DAY = 0.5  # requests a pair gets a day (the scenario's: every other day on average)

DEFAULT_CUTOFF_BYTES = 10 * 2**30  # the template's BytesScannedCutoffPerQuery default: Athena's console default
CUTOFF_MARGIN = 0.8  # the worst query uses at most this share of the cutoff
QUERIES = ("hourly_rollup", "daily_rollup", "forecast", "plan")


@dataclass(frozen=True)
class ChainSize:
    """A chain: stores x products per store, each pair reporting every ``reading_minutes``."""

    stores: int
    products: int
    reading_minutes: float

    @property
    def pairs(self) -> int:
        return self.stores * self.products

    def readings(self, minutes: float) -> float:
        """How many readings the chain sends in ``minutes``."""
        return self.pairs * minutes / self.reading_minutes


def scan_bytes(size: ChainSize) -> dict[str, float]:
    """The bytes each query scans at worst, by query: the hourly rollup (one raw partition a query, so a missed
    hour costs nothing more), the daily rollup (``MAX_ROLL_DAYS`` of the hourly rollup a query, also when days
    were missed), the forecast (``HISTORY_DAYS`` of the daily table), and the forecast planner's plan: the rolled
    hours of its state window, the day's forecast, the ledger's days and the raw readings from the rollup's cap
    on (up to an hour and ``ARRIVAL_SPILL``, whatever the rollup's lag: the planner reads no older raw hour)."""
    raw_minutes = 60 + ARRIVAL_SPILL.total_seconds() / 60
    rolled_hours = STATE_LOOKBACK_HOURS + 1  # the window's partitions, one hour of slack before it
    plan = {
        "rollup": rolled_hours * size.pairs * ROLLED_PAIR_HOUR_BYTES,
        "forecast": size.pairs * FORECAST_ROW_BYTES,
        "ledger": (LEDGER_DAYS + 1) * size.pairs * ORDERS_PER_PAIR_DAY * LEDGER_BYTES_PER_ORDER,
        "raw": size.readings(raw_minutes) * RAW_READING_BYTES,
    }
    return {
        "hourly_rollup": size.readings(60) * RAW_READING_BYTES,
        "daily_rollup": MAX_ROLL_DAYS * 24 * size.pairs * ROLLED_PAIR_HOUR_BYTES,
        "forecast": HISTORY_DAYS * size.pairs * DAILY_PAIR_DAY_BYTES,
        "plan": sum(plan.values()),
        **{f"plan_{part}": value for part, value in plan.items()},
    }


def worst_query(size: ChainSize) -> tuple[str, float]:
    """The query of the loop that scans the most at ``size``, and its bytes."""
    estimate = scan_bytes(size)
    name = max(QUERIES, key=estimate.__getitem__)
    return name, estimate[name]


def cutoff_for(size: ChainSize) -> int:
    """The workgroup's per-query cutoff for a chain of ``size``: the default, unless the worst query would use more
    than ``CUTOFF_MARGIN`` of it; then that query's bytes over the margin, rounded up to a whole GiB."""
    _, worst = worst_query(size)
    needed = math.ceil(worst / CUTOFF_MARGIN / 2**30) * 2**30
    return max(DEFAULT_CUTOFF_BYTES, needed)


def athena_usd_per_day(size: ChainSize, plans_per_day: int, average_raw_share: float = 0.4) -> float:
    """Athena's list price for a day of the loop at ``size``: 24 hourly rollups, one daily rollup (a day of the
    hourly table, not the catch-up's worst), one forecast and ``plans_per_day`` plans whose raw readings are on
    average ``average_raw_share`` of the worst case (a plan at :14 reads 75 minutes of readings, at :59 the
    fewest; 2.9 of 7.35 GB at 2,000 x 1,000)."""
    estimate = scan_bytes(size)
    plan = estimate["plan"] - (1 - average_raw_share) * estimate["plan_raw"]
    daily = 24 * estimate["hourly_rollup"] + estimate["daily_rollup"] / 2 + estimate["forecast"] + plans_per_day * plan
    return daily / 1e12 * ATHENA_USD_PER_TB
