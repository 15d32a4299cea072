"""The daily rollup of the hourly one, and the demand forecast computed from it once a day.

Both run in Athena (``sql/rollup_day.sql``, ``sql/forecast.sql``), so they scale with the lake, not with a
process's memory; results are read back in chunks and written as Parquet:

- ``inventory_daily`` (``rollup/inventory_daily/dt=<day>/part-NNNNN.parquet``, marker
  ``rollup-state/inventory_daily/<day>.json``): one row per store-product and UTC day: its sales and
  write-offs, the hours its shelf was seen empty, whether it was promoted, its last stock and price,
  and its sales in each local hour of day. Days are UTC days: for stores in Great Britain every trading
  hour (07:00-23:00 local at the latest) falls in the same UTC and local day, and the local hours of
  day come from the UTC hour and the British summer time intervals (``bst_intervals``).
- ``demand_forecast`` (``forecast/demand_forecast/dt=<day>/part-NNNNN.parquet``, marker
  ``forecast-state/demand_forecast/<day>.json``): per store-product and each of the ``HORIZON_DAYS``
  days from the forecast day (one row per pair: ``mean_d0..``), the expected demand, its variance-to-mean
  ratio and the share of each local hour of day (``sql/forecast.md``: the method).

Every plan of the day reads the latest forecast (``latest_forecast_day``); plans never recompute it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from storeops.athena import run_query_chunks
from storeops.aws import AwsClients
from storeops.calendar import TIMEZONE
from storeops.clock import format_timestamp
from storeops.parameters import FORECAST_HISTORY_DAYS
from storeops.planning.models import PlanningTargets, partition_of
from storeops.planning.rollup import parquet_bytes
from storeops.s3 import delete_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DAY = timedelta(days=1)
HOURS = tuple(range(24))
HISTORY_DAYS = FORECAST_HISTORY_DAYS  # the days the forecast learns from
HORIZON_DAYS = 3  # the days each forecast covers: the forecast day and the two after it
DAILY_PREFIX = "rollup/inventory_daily/"
DAILY_MARKERS = "rollup-state/inventory_daily/"
FORECAST_PREFIX = "forecast/demand_forecast/"
FORECAST_MARKERS = "forecast-state/demand_forecast/"
CHUNK_ROWS = 250_000
MAX_ROLL_DAYS = 2  # days of the hourly rollup one daily-rollup query reads (ARCHITECTURE.md "Scale": bytes)
_DAY_MARKER = re.compile(r"(\d{4}-\d{2}-\d{2})\.json$")
NO_INTERVAL = ("9999-12-31T23", "9999-12-31T23")  # an empty British summer time interval

# The method's constants (sql/forecast.md), stated once.
FORECAST_PARAMETERS: dict[str, float] = {
    "alpha_level": 0.1,  # exponential weight per day of the level (half-life about a week)
    "alpha_occurrence": 0.05,  # TSB: of an intermittent series' chance of selling on a day
    "alpha_size": 0.1,  # TSB: of its size when it sells
    "intermittent_adi": 1.32,  # Syntetos-Boylan: a mean interval between selling days at least this
    "default_elasticity": 3.0,  # lift per unit of discount where nothing was learned (about Bijmolt et al.'s 3.6)
    "promo_prior_days": 50.0,  # promoted pair-days a product needs before its own lift outweighs its category's
    "max_elasticity": 10.0,
    "min_in_stock": 0.5,  # a day teaches only if its shelf was stocked for at least this share of its demand
}

DAILY_COLUMNS: dict[str, str] = {
    "store_id": "string",
    "product_id": "string",
    "category": "string",
    "case_pack": "int",
    "day": "string",
    "units_sold": "bigint",
    "units_expired": "bigint",
    "hours_covered": "double",
    "empty_hours": "bigint",
    "promoted": "int",
    "last_on_hand": "int",
    "price": "double",
    **{f"sold_h{h:02d}": "bigint" for h in HOURS},
    "rolled_hours": "bigint",
    "empty_mask": "string",  # character h + 1: '1' when a reading of local hour h found the shelf empty
}
FORECAST_COLUMNS: dict[str, str] = {
    "store_id": "string",
    "product_id": "string",
    "category": "string",
    "case_pack": "int",
    "day": "string",  # the day the forecast was made (its partition) and the first it forecasts
    "method": "string",  # smooth (an exponentially weighted level) or intermittent (TSB)
    "level": "double",  # expected units a day before weekday and promotion
    "dispersion": "double",  # variance-to-mean ratio of a day's demand (at least 1)
    "elasticity": "double",  # lift per unit of discount
    **{f"mean_d{d}": "double" for d in range(HORIZON_DAYS)},  # expected units on day + d
    **{f"discount_d{d}": "int" for d in range(HORIZON_DAYS)},  # the promotion's discount on day + d, %
    **{f"share_h{h:02d}": "double" for h in HOURS},  # share of a day's sales in each local hour
    "base_days": "int",  # history days that taught the level (not censored, not promoted)
    "history_days": "int",
}

logger = logging.getLogger(__name__)


def day_label(day: date) -> str:
    return day.isoformat()


def hour_label(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H}"


def weekday_number(day: date) -> int:
    """1 Monday .. 7 Sunday (what sql/forecast.sql computes from a day)."""
    return day.isoweekday()


def bst_intervals(first: date, last: date, timezone: str = TIMEZONE) -> list[tuple[str, str]]:
    """The UTC hour labels ``[from, until)`` in which the stores' clocks are an hour ahead of UTC, over the
    days ``first`` to ``last`` (at most two intervals: the range must be shorter than a year)."""
    zone = ZoneInfo(timezone)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) - DAY
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + 2 * DAY
    intervals: list[tuple[str, str]] = []
    hour, opened = start, None
    while hour <= end:
        ahead = hour.astimezone(zone).utcoffset() == timedelta(hours=1)
        if ahead and opened is None:
            opened = hour
        if not ahead and opened is not None:
            intervals.append((hour_label(opened), hour_label(hour)))
            opened = None
        hour += timedelta(hours=1)
    if opened is not None:
        intervals.append((hour_label(opened), "9999-12-31T23"))
    if len(intervals) > 2:
        raise ValueError(f"{first} to {last} holds more than two summer time intervals: roll fewer days at a time")
    return intervals


def daily_parameters(first: date, last: date) -> dict[str, Any]:
    """``sql/rollup_day.sql``'s parameters for the UTC days ``first`` to ``last``."""
    begin = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, 23, tzinfo=UTC)
    intervals = [*bst_intervals(first, last), NO_INTERVAL, NO_INTERVAL][:2]
    start_dt, start_hour = partition_of(begin - timedelta(hours=1))
    end_dt, end_hour = partition_of(end + timedelta(hours=1))
    return {
        "start_dt": start_dt,
        "start_hour": start_hour,
        "end_dt": end_dt,
        "end_hour": end_hour,
        "first_hour": hour_label(begin),
        "last_hour": hour_label(end),
        "bst1_from": intervals[0][0],
        "bst1_until": intervals[0][1],
        "bst2_from": intervals[1][0],
        "bst2_until": intervals[1][1],
    }


def forecast_parameters(day: date, history_days: int = HISTORY_DAYS) -> dict[str, Any]:
    """``sql/forecast.sql``'s parameters: learn from the ``history_days`` before ``day``, forecast from ``day``."""
    horizon = [day + n * DAY for n in range(HORIZON_DAYS)]
    values: dict[str, Any] = {
        "first_day": day_label(day - history_days * DAY),
        "last_day": day_label(day - DAY),
        **FORECAST_PARAMETERS,
    }
    for index, when in enumerate(horizon):
        values[f"h{index}_day"] = day_label(when)
        values[f"h{index}_weekday"] = weekday_number(when)
    return values


@dataclass
class TableWrite:
    """What writing one day (or a range) of a derived table did."""

    table: str
    days: list[str]
    rows: int
    files: int
    bytes_scanned: int
    bytes_written: int
    query_execution_id: str
    seconds: float = 0.0
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _part_key(prefix: str, day: str, index: int) -> str:
    return f"{prefix}dt={day}/part-{index:05d}.parquet"


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """The table's types whatever the engine's result said (a CSV result can type a column with nulls as text)."""
    out = frame.copy()
    for name, kind in types.items():
        if kind == "double":
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
        elif kind in ("int", "bigint"):
            out[name] = pd.to_numeric(out[name], errors="coerce").fillna(0).astype("int64")
        elif kind == "string":
            out[name] = out[name].astype(str)
    return out


def _write_days(
    clients: AwsClients,
    bucket: str,
    table: str,
    prefixes: tuple[str, str],
    days: list[str],
    chunks: Any,
    types: dict[str, str],
    run: Any,
    now: datetime,
) -> TableWrite:
    """Replace ``days`` of a day-partitioned table with the query's rows (each day's marker deleted first,
    written last: a reader sees a day whole or not at all)."""
    s3 = clients.client("s3")
    data_prefix, marker_prefix = prefixes
    for day in days:
        s3.delete_object(Bucket=bucket, Key=f"{marker_prefix}{day}.json")
        delete_prefix(s3, bucket, f"{data_prefix}dt={day}/")
    parts: dict[str, int] = dict.fromkeys(days, 0)
    rows: dict[str, int] = dict.fromkeys(days, 0)
    keys: list[str] = []
    written = 0
    for chunk in chunks:
        if chunk.empty:
            continue
        for day, frame in _typed(chunk, types).groupby("day", sort=True):
            key = _part_key(data_prefix, str(day), parts.setdefault(str(day), 0))
            body = parquet_bytes(frame, types)
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet")
            parts[str(day)] += 1
            rows[str(day)] = rows.get(str(day), 0) + len(frame)
            keys.append(key)
            written += len(body)
    for day in days:
        marker = {"day": day, "rows": rows.get(day, 0), "query_execution_id": run.query_execution_id}
        marker["written_at"] = format_timestamp(now)
        s3.put_object(Bucket=bucket, Key=f"{marker_prefix}{day}.json", Body=json.dumps(marker).encode())
    return TableWrite(
        table=table,
        days=days,
        rows=sum(rows.values()),
        files=len(keys),
        bytes_scanned=run.bytes_scanned,
        bytes_written=written,
        query_execution_id=run.query_execution_id,
        keys=keys,
    )


def roll_up_days(clients: AwsClients, targets: PlanningTargets, first: date, last: date, now: datetime) -> TableWrite:
    """Roll the hourly rollup of the UTC days ``first`` to ``last`` up into ``inventory_daily`` (one query)."""
    started = time.perf_counter()
    days = [day_label(first + n * DAY) for n in range((last - first).days + 1)]
    run = run_query_chunks(clients, targets.query_target, "rollup_day", daily_parameters(first, last), CHUNK_ROWS)
    result = _write_days(
        clients,
        targets.bucket,
        "inventory_daily",
        (DAILY_PREFIX, DAILY_MARKERS),
        days,
        run.chunks,
        DAILY_COLUMNS,
        run,
        now,
    )
    result.seconds = time.perf_counter() - started
    logger.info(
        "rolled %d days (%s to %s) up: %d rows in %d files, %d bytes scanned, %.2f s",
        len(days),
        days[0],
        days[-1],
        result.rows,
        result.files,
        result.bytes_scanned,
        result.seconds,
    )
    return result


def compute_forecast(
    clients: AwsClients, targets: PlanningTargets, day: date, now: datetime, history_days: int = HISTORY_DAYS
) -> TableWrite:
    """The forecast from ``day`` (learning from the ``history_days`` before it) into ``demand_forecast``."""
    started = time.perf_counter()
    run = run_query_chunks(
        clients, targets.query_target, "forecast", forecast_parameters(day, history_days), CHUNK_ROWS
    )
    label = day_label(day)
    chunks = (chunk.assign(day=label) for chunk in run.chunks)
    result = _write_days(
        clients,
        targets.bucket,
        "demand_forecast",
        (FORECAST_PREFIX, FORECAST_MARKERS),
        [label],
        chunks,
        FORECAST_COLUMNS,
        run,
        now,
    )
    result.seconds = time.perf_counter() - started
    logger.info(
        "forecast from %s (%d days of history): %d rows, %d bytes scanned, %.2f s",
        label,
        history_days,
        result.rows,
        result.bytes_scanned,
        result.seconds,
    )
    return result


def marked_days(s3: S3Client, bucket: str, marker_prefix: str, first: date) -> set[date]:
    """The days from ``first`` on with a completion marker (one listing)."""
    response = s3.list_objects_v2(Bucket=bucket, Prefix=marker_prefix, StartAfter=marker_prefix + day_label(first))
    days = set()
    for item in response.get("Contents", []):
        match = _DAY_MARKER.search(item["Key"])
        if match:
            days.add(date.fromisoformat(match.group(1)))
    return days


def latest_forecast_day(s3: S3Client, bucket: str, today: date, max_age_days: int = HORIZON_DAYS - 1) -> date | None:
    """The newest forecast a plan on ``today`` may use: made on ``today`` or up to ``max_age_days`` before
    (its horizon still covers today and the next day), else None."""
    days = [d for d in marked_days(s3, bucket, FORECAST_MARKERS, today - max_age_days * DAY - DAY) if d <= today]
    return max(days) if days else None


def frame_of(chunks: Any) -> pd.DataFrame:
    """Every chunk of a query result as one frame (small results: tests, benchmarks)."""
    frames = [c for c in chunks if not c.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rolled_hours(s3: S3Client, bucket: str, first: date, last: date) -> set[str]:
    """The hour labels (2026-11-27T10) from ``first`` 00:00 to the hour after ``last`` that the hourly rollup
    has completed (its markers, paginated)."""
    from storeops.planning.rollup import MARKER_PREFIX

    start = MARKER_PREFIX + day_label(first - DAY) + "T23"
    stop = MARKER_PREFIX + day_label(last + DAY) + "T01"
    hours: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=MARKER_PREFIX, StartAfter=start):
        for item in page.get("Contents", []):
            if item["Key"] >= stop:
                return hours
            hours.add(item["Key"][len(MARKER_PREFIX) :].removesuffix(".json"))
    return hours


def day_is_complete(day: date, hours: set[str]) -> bool:
    """Has the hourly rollup completed every hour of ``day`` and the hour after it (a reading of 23:59 can
    land in the next hour's partition)?"""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return all(hour_label(start + timedelta(hours=h)) in hours for h in range(25))


def days_to_roll(
    marked: set[date], first: date, last: date, complete: set[date] | None = None
) -> list[tuple[date, date]]:
    """The runs ``(from, to)`` of consecutive days in ``[first, last]`` that have no marker (and, given
    ``complete``, whose hours the hourly rollup has all completed), at most ``MAX_ROLL_DAYS`` a run, oldest
    first."""
    ranges: list[tuple[date, date]] = []
    day = first
    while day <= last:
        if day not in marked and (complete is None or day in complete):
            if ranges and ranges[-1][1] == day - DAY and (day - ranges[-1][0]).days < MAX_ROLL_DAYS:
                ranges[-1] = (ranges[-1][0], day)
            else:
                ranges.append((day, day))
        day += DAY
    return ranges


def forecast_methods(s3: S3Client, bucket: str, keys: list[str]) -> dict[str, int]:
    """How many store-products each method forecast, from the day's Parquet files (the flow's summary)."""
    import io

    import pyarrow.parquet as pq

    counts: dict[str, int] = {}
    for key in keys:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()), columns=["method"])
        for name, count in table.column("method").to_pandas().value_counts().items():
            counts[str(name)] = counts.get(str(name), 0) + int(count)
    return counts


def write_forecast(
    clients: AwsClients, targets: PlanningTargets, day: date, frames: Any, now: datetime, source: str
) -> TableWrite:
    """Write ``frames`` (FORECAST_COLUMNS, without ``day``) as the forecast of ``day``, like compute_forecast
    does with the query's rows: the scenario's distribution oracle writes the simulator's true distribution
    this way, so that its plans run the same code as ours."""

    @dataclass
    class _Source:
        query_execution_id: str
        bytes_scanned: int = 0

    label = day_label(day)
    chunks = (frame.assign(day=label) for frame in frames)
    prefixes = (FORECAST_PREFIX, FORECAST_MARKERS)
    return _write_days(
        clients, targets.bucket, "demand_forecast", prefixes, [label], chunks, FORECAST_COLUMNS, _Source(source), now
    )
