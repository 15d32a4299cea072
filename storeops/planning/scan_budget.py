"""What each Athena query of the planning loop scans at a chain's size: the relation between the lake's per-row
sizes, the queries' windows (the constants the planner runs with) and the workgroup's per-query cutoff.

ARCHITECTURE.md "Scale" states these figures and ``tests/unit/test_scan_budget.py`` holds the worst case of every
query under the template's default cutoff, with margin, at the size the README promises (2,000 x 1,000 pairs, a
reading a minute), a missed rollup included: a change of a window (``MAX_ROLL_DAYS``, ``HISTORY_DAYS``, the
ledger's days, ``ARRIVAL_SPILL``) that breaks it fails that test. Worst cases are per query; Athena bills
compressed bytes of the columns read of the partitions selected (JSON: every byte of the object).
"""

from __future__ import annotations

from dataclasses import dataclass

from storeops.planning.forecast import HISTORY_DAYS, MAX_ROLL_DAYS
from storeops.planning.models import ARRIVAL_SPILL, LEDGER_DAYS, STATE_LOOKBACK_HOURS

# Per-row sizes measured in the lake of bench.service_level's 100 x 50 scenario (14 days).
RAW_READING_BYTES = 49.0  # a reading's NDJSON, gzipped per Firehose record
ROLLED_PAIR_HOUR_BYTES = 41.0  # a row of the hourly rollup (Parquet, snappy)
DAILY_PAIR_DAY_BYTES = 10.9  # a row of the daily rollup
FORECAST_ROW_BYTES = 86.0  # a row of the forecast table
LEDGER_BYTES_PER_ORDER = 170.0  # a pair's request and dispatch records in the ledger (JSON)
ORDERS_PER_PAIR_DAY = 0.5  # requests a pair gets a day (the scenario's: every other day on average)


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
