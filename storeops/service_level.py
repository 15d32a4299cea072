"""Service figures: how well a policy kept products on shelves, and what it cost, by the field's definitions.

One definition, two sources: ``ServiceFigures.compute`` takes a ``LoopRecord`` (frames of what the
stores recorded, what the simulator alone knows, what the trucks did, and the reference tables);
the scenario runner builds it from its simulation as it goes, and ``read_lake`` from the data lake,
so every figure a run reports can be recomputed from the lake (the simulator's record included).

- ``lost_sales_rate``: demand not served / demand (demand = units sold + units an empty shelf turned
  away; only the simulator knows the second). The headline.
- ``audit_out_of_stock_rate``: the share of shelves found empty by audits at fixed local times in
  opening hours (``storeops.calendar.AUDIT_HOURS``), read before that hour's deliveries, as the
  retail out-of-stock studies count them. The 8.3% retail average of Gruen, Corsten & Bharadwaj
  (2002) counts shelf audits in stores whose ordering, forecasting, shelf filling and DC supply
  all fail at times: causes this simulation does not have, so it is no yardstick for these figures.
- ``promo_lost_sales_rate``: the lost-sales rate on promoted pair-days (the promotion plan's).
- ``waste_rate``: perishable units expired / perishable units shipped that found room on the shelf (refused
  units went back on the truck and cannot expire); what expires includes the stock held at the start.
- ``cover_days``: stock held on average / demand a day (a ratio of sums).
- ``stops_per_store_day``, ``trucks``, ``truck_fill`` (roll cages shipped / trucks x a truck's
  cages: fill by the capacity measure), ``trucks_lower_bound`` (per depot and departure,
  ceil(cages / a truck's cages)), ``km`` (road km: depot, stops, back to the depot) and
  ``km_per_1000_units``; ``late_stops_rate`` (stops whose unloading starts outside the store's
  receiving window) and ``route_hours_max`` (the longest route, depot to depot), all from the
  ledger's dispatch rows; ``baseline_trucks`` and ``baseline_km_per_1000_units``: first-fit
  decreasing + nearest neighbour under the same rules on the same deliveries (the trucks' routing
  summaries under ``dispatch-routing/``), over the windows that have one.
- ``cost_per_1000_units``: every cost (``storeops.costs``) per 1,000 units demanded, with its parts.
- ``units_shipped``, ``stock_held_units`` and ``units_refused``: double ordering shows in these.

The simulator's record lives under ``simulator/truth/`` in the lake (``storeops.stores.truth`` writes
it); its format is stated here, where it is read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from storeops.athena import scan_cost_usd
from storeops.calendar import TIMEZONE
from storeops.clock import format_timestamp
from storeops.costs import CostParameters
from storeops.ledger import LEDGER_PREFIX, ROUTING_PREFIX, decode_rows

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READING_COLUMNS = [
    "event_id",
    "store_id",
    "product_id",
    "observed_at",
    "on_hand",
    "units_sold",
    "units_expired",
    "period_hours",
]
DISPATCH_COLUMNS = [
    "load_id",
    "store_id",
    "product_id",
    "quantity",
    "recorded_at",
    "stop_number",
    "eta",
    "depot",
    "cages",
    "window_opens",
    "window_closes",
    "departs",
    "returns",
    "route_km",
]
ROUTING_COLUMNS = ["window_id", "depot", "trucks", "km", "units", "baseline_trucks", "baseline_km", "baseline_units"]
TRUTH_PREFIX = "simulator/truth/"
LOST_COLUMNS = ["store_id", "product_id", "observed_at", "units"]
AUDIT_COLUMNS = ["store_id", "audit_at", "audited", "empty", "empty_products"]
STORE_COLUMNS = ["store_id", "region", "lat", "lon"]
PRODUCT_COLUMNS = ["product_id", "shelf_life_days", "price", "unit_cost"]
PROMOTION_COLUMNS = ["product_id", "start_date", "end_date"]


def truth_key(observed_at: datetime, name: str) -> str:
    """Where the simulator keeps its record of a reading (by event time)."""
    return f"{TRUTH_PREFIX}dt={observed_at:%Y-%m-%d}/hour={observed_at:%H}/{name}.json.gz"


@dataclass(frozen=True)
class LoopRecord:
    """What one policy's closed loop left behind over a period ``(start, end]``, as frames."""

    start: datetime
    end: datetime
    readings: pd.DataFrame  # READING_COLUMNS, one row per reading (duplicates of an event id count once)
    lost: pd.DataFrame  # LOST_COLUMNS: demand turned away by an empty shelf (the simulator's record)
    refused: pd.DataFrame  # LOST_COLUMNS: delivered units that did not fit on the shelf (the simulator's record)
    audits: pd.DataFrame  # AUDIT_COLUMNS: per open store and audit time (the simulator's record)
    dispatches: pd.DataFrame  # DISPATCH_COLUMNS: the ledger's dispatch rows of loads that left in the period
    stores: pd.DataFrame  # STORE_COLUMNS: the store directory
    products: pd.DataFrame  # PRODUCT_COLUMNS: the product master
    promotions: pd.DataFrame  # PROMOTION_COLUMNS: the promotion plan
    routing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROUTING_COLUMNS))  # ROUTING_COLUMNS

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0


@dataclass(frozen=True)
class CostParts:
    """A policy's costs over the period, GBP."""

    trucks: float
    km: float
    stops: float
    holding: float
    waste: float
    lost_margin: float

    @property
    def total(self) -> float:
        return self.trucks + self.km + self.stops + self.holding + self.waste + self.lost_margin


@dataclass(frozen=True)
class ServiceFigures:
    """Every figure of one policy over one period (see the module for the definitions)."""

    days: float
    stores: int
    products: int
    readings: int
    units_demanded: int
    units_sold: int
    units_lost: int
    lost_sales_rate: float
    audit_out_of_stock_rate: float | None  # None: no audit (no store open at an audit time)
    audits: int
    promo_lost_sales_rate: float | None  # None: nothing promoted
    promo_units_demanded: int
    waste_rate: float | None  # None: no perishable shipped
    units_expired: int
    cover_days: float
    stock_held_units: float
    units_shipped: int
    units_refused: int
    trucks: int
    trucks_lower_bound: int
    truck_fill: float | None  # None: no truck
    cages: int
    stops: int
    stops_per_store_day: float
    km: float
    km_per_1000_units: float | None  # None: nothing shipped
    late_stops_rate: float | None  # None: no stop
    route_hours_max: float
    baseline_trucks: int | None  # None: no routing summary
    baseline_km_per_1000_units: float | None
    routed_km_per_1000_units: float | None  # ours over the same windows as the baseline's
    cost_per_1000_units: float
    cost_parts_per_1000_units: dict[str, float]
    cost_total: float
    planning_runs: int = 0
    athena_bytes_scanned: int = 0
    athena_bytes_source: str = "athena"  # or "s3-estimate" (storeops.athena.SCANNED_BYTES_LABELS)
    athena_cost_usd: float = 0.0
    cost_parameters: dict[str, float] = field(default_factory=dict)

    @classmethod
    def compute(
        cls,
        record: LoopRecord,
        capacity_cages: int,
        costs: CostParameters | None = None,
        query_bytes: list[int] | None = None,
        bytes_source: str = "athena",
    ) -> ServiceFigures:
        costs = costs or CostParameters()
        readings = record.readings.drop_duplicates("event_id")  # Firehose delivers at least once
        products = record.products.set_index("product_id")
        shelves = _shelf_figures(record, readings, products)
        loads = _loads(record.dispatches)
        fleet = _fleet_figures(record, loads, capacity_cages, shelves["units_shipped"])
        parts = _cost_parts(record, readings, products, loads, costs)
        demanded = shelves["units_demanded"]
        per_1000 = 1000.0 / demanded if demanded else 0.0
        query_bytes = query_bytes or []
        return cls(
            days=round(record.days, 4),
            products=int(readings["product_id"].nunique()),
            readings=len(readings),
            **shelves,
            **fleet,
            cost_per_1000_units=round(parts.total * per_1000, 3),
            cost_parts_per_1000_units={k: round(v * per_1000, 3) for k, v in asdict(parts).items()},
            cost_total=round(parts.total, 2),
            planning_runs=len(query_bytes),
            athena_bytes_scanned=int(sum(query_bytes)),
            athena_bytes_source=bytes_source,
            athena_cost_usd=round(scan_cost_usd(query_bytes), 8),
            cost_parameters=costs.model_dump(),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def _share(part: float, whole: float) -> float | None:
    """A ratio that has no value when there is nothing to divide by (waste with nothing shipped)."""
    return round(part / whole, 6) if whole else None


def local_days(timestamps: pd.Series) -> pd.Series:
    """The stores' local date (YYYY-MM-DD) of each period ending at an ISO-8601 UTC timestamp: a reading
    at local midnight reports the day that ended."""
    codes, distinct = pd.factorize(timestamps)  # readings share their hours' timestamps: format each once
    moments = pd.to_datetime(pd.Series(distinct), utc=True) - pd.Timedelta(milliseconds=1)
    days = moments.dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m-%d").to_numpy()
    return pd.Series(days[codes], index=timestamps.index, dtype=object)


def _shelf_figures(record: LoopRecord, readings: pd.DataFrame, products: pd.DataFrame) -> dict[str, Any]:
    """The shelves' side: demand, sales and losses, out-of-stock audits, waste, stock held, units shipped."""
    sold = int(readings["units_sold"].sum())
    lost = int(record.lost["units"].sum()) if len(record.lost) else 0
    demanded = sold + lost
    audited = int(record.audits["audited"].sum()) if len(record.audits) else 0
    empty = int(record.audits["empty"].sum()) if len(record.audits) else 0
    promo_demand, promo_lost = _promoted(readings, record.lost, record.promotions)
    perishable = set(products.index[products["shelf_life_days"] > 0])
    expired = int(readings.loc[readings["product_id"].isin(perishable), "units_expired"].sum())
    dispatches, refused = record.dispatches, record.refused
    shipped = int(dispatches["quantity"].sum()) if len(dispatches) else 0
    shelved_perishable = int(dispatches.loc[dispatches["product_id"].isin(perishable), "quantity"].sum()) - int(
        refused.loc[refused["product_id"].isin(perishable), "units"].sum() if len(refused) else 0
    )
    held = _stock_held(readings)
    days = record.days
    return {
        "units_demanded": demanded,
        "units_sold": sold,
        "units_lost": lost,
        "lost_sales_rate": _rate(lost, demanded),
        "audit_out_of_stock_rate": _share(empty, audited),
        "audits": audited,
        "promo_lost_sales_rate": _share(promo_lost, promo_demand),
        "promo_units_demanded": promo_demand,
        "waste_rate": _share(expired, shelved_perishable),
        "units_expired": expired,
        "cover_days": round(held / (demanded / days), 4) if demanded and days else 0.0,
        "stock_held_units": round(held, 1),
        "units_shipped": shipped,
        "units_refused": int(refused["units"].sum()) if len(refused) else 0,
    }


def _fleet_figures(record: LoopRecord, loads: pd.DataFrame, capacity_cages: int, shipped: int) -> dict[str, Any]:
    """The trucks' side: trucks against their lower bound, fill, stops, km, lateness, the baseline's figures."""
    trucks = len(loads)
    stops = int(loads["stops"].sum()) if trucks else 0
    late = int(loads["late"].sum()) if trucks else 0
    cages = int(loads["cages"].sum()) if trucks else 0
    km = float(loads["km"].sum()) if trucks else 0.0
    lower_bound = int(
        loads.groupby(["depot", "recorded_at"])["cages"].sum().map(lambda c: math.ceil(c / capacity_cages)).sum()
        if trucks
        else 0
    )
    baseline = _baseline(record.routing)
    n_stores = int(record.stores["store_id"].nunique()) if len(record.stores) else 0
    days = record.days
    return {
        "stores": n_stores,
        "trucks": trucks,
        "trucks_lower_bound": lower_bound,
        "truck_fill": _share(cages, trucks * capacity_cages),
        "cages": cages,
        "stops": stops,
        "stops_per_store_day": round(stops / (n_stores * days), 4) if n_stores and days else 0.0,
        "km": round(km, 1),
        "km_per_1000_units": round(1000.0 * km / shipped, 3) if shipped else None,
        "late_stops_rate": _share(late, stops),
        "route_hours_max": round(float(loads["hours"].max()), 3) if trucks else 0.0,
        "baseline_trucks": baseline["trucks"],
        "baseline_km_per_1000_units": baseline["km_per_1000_units"],
        "routed_km_per_1000_units": baseline["ours_km_per_1000_units"],
    }


def _cost_parts(
    record: LoopRecord, readings: pd.DataFrame, products: pd.DataFrame, loads: pd.DataFrame, costs: CostParameters
) -> CostParts:
    """What the loop cost: trucks, km and stops, stock held, waste, and the margin of lost sales."""
    trucks = len(loads)
    unit_cost = readings["product_id"].map(products["unit_cost"]).astype("float64")
    holding_unit_hours = float((readings["on_hand"] * readings["period_hours"] * unit_cost).sum())
    lost_margin = (
        float((record.lost["units"] * record.lost["product_id"].map(products["price"] - products["unit_cost"])).sum())
        if len(record.lost)
        else 0.0
    )
    return CostParts(
        trucks=trucks * costs.truck_per_route,
        km=(float(loads["km"].sum()) if trucks else 0.0) * costs.per_km,
        stops=(int(loads["stops"].sum()) if trucks else 0) * costs.per_stop,
        holding=holding_unit_hours * costs.holding_per_unit_hour,
        waste=float((readings["units_expired"] * unit_cost).sum()),
        lost_margin=lost_margin,
    )


def _promoted(readings: pd.DataFrame, lost: pd.DataFrame, promotions: pd.DataFrame) -> tuple[int, int]:
    """(units demanded, units lost) on promoted pair-days."""
    if promotions.empty:
        return 0, 0
    days = sorted(
        set(local_days(readings["observed_at"])) | (set(local_days(lost["observed_at"])) if len(lost) else set())
    )
    on = {
        (product, day)
        for product, first, last in promotions[PROMOTION_COLUMNS].itertuples(index=False)
        for day in days
        if first <= day <= last
    }

    def promoted(frame: pd.DataFrame, column: str) -> int:
        if frame.empty:
            return 0
        keys = pd.MultiIndex.from_arrays([frame["product_id"], local_days(frame["observed_at"])])
        return int(frame.loc[keys.isin(list(on)), column].sum())

    lost_units = promoted(lost, "units")
    return promoted(readings, "units_sold") + lost_units, lost_units


def _loads(dispatches: pd.DataFrame) -> pd.DataFrame:
    """One row per truck: depot, departure, units, cages, stops, late stops, road km and hours (depot to depot)."""
    columns = ["load_id", "depot", "recorded_at", "units", "cages", "stops", "late", "km", "hours"]
    if dispatches.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for load_id, load in dispatches.groupby("load_id", sort=True):
        stops = load.drop_duplicates("stop_number")
        late = int(((stops["eta"] < stops["window_opens"]) | (stops["eta"] > stops["window_closes"])).sum())
        first = stops.iloc[0]
        hours = (pd.Timestamp(first["returns"]) - pd.Timestamp(first["departs"])).total_seconds() / 3600.0
        rows.append(
            (
                load_id,
                first["depot"],
                first["recorded_at"],
                int(load["quantity"].sum()),
                int(stops["cages"].sum()),
                len(stops),
                late,
                float(first["route_km"]),
                hours,
            )
        )
    return pd.DataFrame(rows, columns=columns)


def _baseline(routing: pd.DataFrame) -> dict[str, Any]:
    """The baseline's trucks and km per 1,000 units, and ours, over the windows with a routing summary."""
    if routing.empty:
        return {"trucks": None, "km_per_1000_units": None, "ours_km_per_1000_units": None}
    units, baseline_units = float(routing["units"].sum()), float(routing["baseline_units"].sum())
    return {
        "trucks": int(routing["baseline_trucks"].sum()),
        "km_per_1000_units": round(1000.0 * float(routing["baseline_km"].sum()) / baseline_units, 3)
        if baseline_units
        else None,
        "ours_km_per_1000_units": round(1000.0 * float(routing["km"].sum()) / units, 3) if units else None,
    }


def _stock_held(readings: pd.DataFrame) -> float:
    """The stock held on average: total on hand at each reading time, averaged over the reading times."""
    if readings.empty:
        return 0.0
    return float(readings.groupby("observed_at")["on_hand"].sum().mean())


def demand_digest(demand: np.ndarray) -> str:
    """A digest of a demand matrix (hours x store-products, int64): equal digests, equal customers."""
    return hashlib.sha256(np.ascontiguousarray(demand, dtype=np.int64).tobytes()).hexdigest()[:16]


# -- reading the lake --------------------------------------------------------------------------------


def _keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _lines(s3: S3Client, bucket: str, key: str) -> bytes:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body) if key.endswith(".gz") else body


def _in_hours(key: str, start: datetime, end: datetime) -> bool:
    """Does a ``dt=/hour=`` key's hour overlap ``(start, end]`` (an hour of slack on each side)?"""
    try:
        dt = key.split("dt=", 1)[1][:10]
        hour = key.split("hour=", 1)[1][:2]
    except IndexError:
        return True
    moment = datetime.fromisoformat(f"{dt}T{hour}:00:00+00:00")
    return start - timedelta(hours=2) <= moment <= end + timedelta(hours=1)


def read_lake(s3: S3Client, bucket: str, start: datetime, end: datetime) -> LoopRecord:
    """Everything the figures need over ``(start, end]``, from the lake alone: the readings, the ledger's
    dispatches, the simulator's record, the store directory and the reference tables."""
    low, high = format_timestamp(start), format_timestamp(end)
    frames = []
    for key in _keys(s3, bucket, "inventory/"):
        if not _in_hours(key, start, end):
            continue
        # parsed by json, not pandas: the readings' ISO times stay the text they were sent as
        rows = [json.loads(line) for line in _lines(s3, bucket, key).splitlines() if line.strip()]
        if not rows:
            continue
        frame = pd.DataFrame.from_records(rows)
        frames.append(frame[(frame["observed_at"] > low) & (frame["observed_at"] <= high)])
    readings = (
        pd.concat(frames, ignore_index=True)[READING_COLUMNS] if frames else pd.DataFrame(columns=READING_COLUMNS)
    )
    dispatches = read_dispatches(s3, bucket, start, end)
    truth: list[dict[str, Any]] = []
    for key in _keys(s3, bucket, TRUTH_PREFIX):
        if not _in_hours(key, start, end):
            continue
        for line in io.BytesIO(_lines(s3, bucket, key)):
            row = json.loads(line)
            if low < (row.get("observed_at") or row.get("audit_at")) <= high:
                truth.append(row)
    lost, refused, audits = split_truth(truth)
    directory = pd.DataFrame(json.loads(s3.get_object(Bucket=bucket, Key="reference/stores.json")["Body"].read()))
    return LoopRecord(
        start=start,
        end=end,
        readings=readings,
        lost=lost,
        refused=refused,
        audits=audits,
        dispatches=dispatches,
        routing=read_routing(s3, bucket, start, end),
        stores=directory[STORE_COLUMNS],
        products=_parquet(s3, bucket, "reference/products/")[PRODUCT_COLUMNS],
        promotions=_parquet(s3, bucket, "reference/promotions/")[PROMOTION_COLUMNS],
    )


def read_dispatches(s3: S3Client, bucket: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The ledger's dispatch rows of trucks that left in ``(start, end]`` (DISPATCH_COLUMNS)."""
    low, high = format_timestamp(start), format_timestamp(end)
    return pd.DataFrame(
        [
            {c: getattr(row, c) for c in DISPATCH_COLUMNS}
            for key in _keys(s3, bucket, LEDGER_PREFIX)
            for row in decode_rows(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            if row.record_type == "dispatch" and low < row.recorded_at <= high
        ],
        columns=DISPATCH_COLUMNS,
    )


def read_routing(s3: S3Client, bucket: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The routing summaries of windows that left in ``(start, end]``, a row per window and depot (ROUTING_COLUMNS)."""
    low, high = format_timestamp(start), format_timestamp(end)
    rows = []
    days = [start.date() + timedelta(days=d) for d in range((end.date() - start.date()).days + 1)]
    for key in [k for day in days for k in _keys(s3, bucket, f"{ROUTING_PREFIX}dt={day:%Y-%m-%d}/")]:
        summary = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not low < summary["departure"] <= high:
            continue
        for depot, plan in summary["depots"].items():
            base = plan["baseline"]
            ours = (plan["trucks"], plan["km"], plan["units"])
            rows.append((summary["window_id"], depot, *ours, base["trucks"], base["km"], base["units"]))
    return pd.DataFrame(rows, columns=ROUTING_COLUMNS)


def split_truth(lines: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The simulator's record lines as (lost, refused, audits) frames."""
    frame = pd.DataFrame(lines)

    def of(kind: str, columns: list[str]) -> pd.DataFrame:
        if frame.empty or "kind" not in frame:
            return pd.DataFrame(columns=columns)
        part = frame[frame["kind"] == kind]
        return part[columns].reset_index(drop=True) if len(part) else pd.DataFrame(columns=columns)

    return of("lost", LOST_COLUMNS), of("refused", LOST_COLUMNS), of("audit", AUDIT_COLUMNS)


def _parquet(s3: S3Client, bucket: str, prefix: str) -> pd.DataFrame:
    frames = [
        pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
        for k in _keys(s3, bucket, prefix)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
