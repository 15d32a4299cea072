"""Service-level figures: how well the loop kept products on shelves, and what it spent doing so.

One definition, two sources: ``ServiceLevel.from_frames`` takes the readings (one per
store-product per period) and the dispatch rows of the ledger as data frames; the scenario
runner builds them from what its simulation did, and ``read_lake`` from the data lake, so the
figures a run reports can be recomputed from the lake alone.

- out-of-stock rate: the share of readings (store-product observations) with nothing on the
  shelf, as shelf audits measure it (the retail average is 8.3%, Gruen and Corsten);
- lost sales: demand the shelf could not serve / demand (sold + lost);
- units shipped, trucks (loads) per day, mean truck fill (units / capacity), trucks per
  1,000 units shipped;
- average days of cover held: on hand / the pair's mean daily demand, over all readings;
- Athena bytes scanned, their price ($5 per TB, 10 MB minimum per query) and planning runs.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from storeops.athena import scan_cost_usd
from storeops.clock import format_timestamp
from storeops.ledger import LEDGER_PREFIX, decode_rows

READING_COLUMNS = ["store_id", "product_id", "observed_at", "on_hand", "units_sold", "units_lost", "period_hours"]
LOAD_COLUMNS = ["load_id", "quantity"]


@dataclass(frozen=True)
class ServiceLevel:
    readings: int
    out_of_stock_rate: float
    lost_sales_rate: float
    units_demanded: int
    units_lost: int
    units_shipped: int
    trucks: int
    trucks_per_day: float
    mean_truck_fill: float
    trucks_per_1000_units: float
    average_days_of_cover: float
    days: float
    planning_runs: int = 0
    athena_bytes_scanned: int = 0
    athena_bytes_source: str = "athena"  # or "s3-estimate" (storeops.athena.SCANNED_BYTES_LABELS)
    athena_cost_usd: float = 0.0

    @classmethod
    def from_frames(
        cls,
        readings: pd.DataFrame,
        dispatches: pd.DataFrame,
        days: float,
        truck_capacity: int,
        query_bytes: list[int] | None = None,
        bytes_source: str = "athena",
    ) -> ServiceLevel:
        """The figures of ``readings`` (READING_COLUMNS; store and product may be ids or indexes) and
        ``dispatches`` (one row per shipped shortage, LOAD_COLUMNS) over ``days``; ``query_bytes`` is
        each planning query's scanned bytes, measured as ``bytes_source`` says."""
        demand = readings["units_sold"] + readings["units_lost"]
        by_pair = demand.groupby([readings["store_id"], readings["product_id"]]).transform("sum")
        daily = by_pair / days
        cover = (readings["on_hand"] / daily.where(daily > 0)).dropna()
        loads = dispatches.groupby("load_id")["quantity"].sum() if len(dispatches) else pd.Series(dtype="int64")
        shipped = int(loads.sum())
        query_bytes = query_bytes or []
        return cls(
            readings=len(readings),
            out_of_stock_rate=round(float((readings["on_hand"] == 0).mean()) if len(readings) else 0.0, 6),
            lost_sales_rate=round(float(readings["units_lost"].sum() / demand.sum()) if demand.sum() else 0.0, 6),
            units_demanded=int(demand.sum()),
            units_lost=int(readings["units_lost"].sum()),
            units_shipped=shipped,
            trucks=len(loads),
            trucks_per_day=round(len(loads) / days, 2) if days else 0.0,
            mean_truck_fill=round(float((loads / truck_capacity).mean()), 4) if len(loads) else 0.0,
            trucks_per_1000_units=round(1000 * len(loads) / shipped, 3) if shipped else 0.0,
            average_days_of_cover=round(float(cover.mean()), 3) if len(cover) else 0.0,
            days=days,
            planning_runs=len(query_bytes),
            athena_bytes_scanned=int(sum(query_bytes)),
            athena_bytes_source=bytes_source,
            athena_cost_usd=round(scan_cost_usd(query_bytes), 8),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_lake(s3: Any, bucket: str, start: datetime, end: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Readings observed in ``(start, end]`` and the dispatch rows of loads that left in it, from the lake."""
    low, high = format_timestamp(start), format_timestamp(end)
    frames = []
    for key in _keys(s3, bucket, "inventory/"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        text = gzip.decompress(body) if key.endswith(".gz") else body
        frame = pd.read_json(io.BytesIO(text), lines=True, dtype={"observed_at": str, "store_id": str})
        frames.append(frame[(frame["observed_at"] > low) & (frame["observed_at"] <= high)])
    readings = (
        pd.concat(frames, ignore_index=True)[READING_COLUMNS] if frames else pd.DataFrame(columns=READING_COLUMNS)
    )
    rows = [
        {"load_id": row.load_id, "quantity": row.quantity}
        for key in _keys(s3, bucket, LEDGER_PREFIX)
        for row in decode_rows(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if row.record_type == "dispatch" and row.recorded_at > low and row.recorded_at <= high
    ]
    return readings, pd.DataFrame(rows, columns=LOAD_COLUMNS)


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


@dataclass
class HourlySeries:
    """What the shelves looked like at each reading, for the chart: empty shelves, units on hand, lost."""

    times: list[datetime]
    out_of_stock: list[int]
    on_hand: list[int]
    lost: list[int]

    @classmethod
    def empty(cls) -> HourlySeries:
        return cls([], [], [], [])

    def add(self, at: datetime, on_hand: Any, lost: Any) -> None:
        self.times.append(at)
        self.out_of_stock.append(int((on_hand == 0).sum()))
        self.on_hand.append(int(on_hand.sum()))
        self.lost.append(int(lost.sum()))
