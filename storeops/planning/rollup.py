"""The hourly rollup of the inventory readings, and the watermark up to which planning reads it.

A *rolled hour* is one raw partition (Firehose's ``dt=/hour=``, by arrival) as Parquet rows, one per
store-product and observed hour (``sql/rollup_hour.sql``): the latest reading and the sums of sales,
write-offs and hours, under ``rollup/inventory_hourly/dt=YYYY-MM-DD/hour=HH/part-NNNNN.parquet`` (Glue table
``inventory_hourly``, the same partitions). Every reading is rolled exactly once. After the data, a
*completion marker* ``rollup-state/inventory_hourly/<YYYY-MM-DD>T<HH>.json`` says the partition is
complete; a re-roll deletes the marker first, then the files, then writes both again (the same keys,
the same rows: idempotent).

A partition can be rolled once it is *closed*: ``now >= hour end + SETTLE`` (Firehose writes an object up
to its buffer interval after its first record). A reading that lands in a partition after it was rolled
is not seen by plans until the hour is rolled again (``python -m flows.rollup --backfill``).

The planner lists the markers once per plan and reads the rollup for the partitions before the
*watermark* (the first partition of its window without a marker, at most ``PlanWindow.rollup_cap``) and
the raw partitions from the watermark on (``storeops.planning.models.PlanWindow``). Nothing here imports
Prefect.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from botocore.exceptions import ClientError

from storeops.athena import run_query_chunks
from storeops.aws import AwsClients
from storeops.aws_errors import describe_error
from storeops.clock import format_timestamp, hour_floor
from storeops.exceptions import ValidationFailed
from storeops.parameters import CATCH_UP_HOURS
from storeops.planning.models import PlanningTargets, partition_of
from storeops.s3 import delete_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
SETTLE = timedelta(minutes=10)  # an hour is closed this long after it ends (Firehose's buffer is 60 s)
CHUNK_ROWS = 250_000  # rows per Parquet file: memory grows with a chunk, not with the hour
ROLLUP_QUERY = "rollup_hour"  # sql/rollup_hour.sql
ROLLUP_PREFIX = "rollup/inventory_hourly/"  # the Glue table's location (deployments/template.yaml)
MARKER_PREFIX = "rollup-state/inventory_hourly/"
_MARKER = re.compile(r"^" + re.escape(MARKER_PREFIX) + r"(\d{4}-\d{2}-\d{2}T\d{2})\.json$")
_HOUR_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")
# The columns of inventory_hourly and their Glue types (the template's; wr.s3.to_parquet writes these).
ROLLUP_COLUMNS: dict[str, str] = {
    "event_id": "string",
    "store_id": "string",
    "product_id": "string",
    "product_name": "string",
    "category": "string",
    "case_pack": "int",
    "on_hand": "int",
    "price": "double",
    "on_promotion": "boolean",
    "observed_at": "string",
    "observed_hour": "string",  # 2026-11-27T10: the hour the reading was observed in
    "units_sold": "bigint",
    "units_expired": "bigint",
    "period_hours": "double",
    "readings": "bigint",
}


def hour_label(hour: datetime) -> str:
    """``2026-11-27T10``: how an hour is named in markers and on the command line (UTC)."""
    return f"{hour.astimezone(UTC):%Y-%m-%dT%H}"


def parse_hour(text: str) -> datetime:
    """The hour named ``2026-11-27T10`` (UTC); ValueError otherwise."""
    if not _HOUR_TEXT.match(text):
        raise ValueError(f"expected an hour like 2026-11-27T10 (UTC), got {text!r}")
    return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def hour_prefix(hour: datetime) -> str:
    """The folder of an hour's rollup files (its event-hour partition)."""
    dt, hh = partition_of(hour)
    return f"{ROLLUP_PREFIX}dt={dt}/hour={hh}/"


def part_key(hour: datetime, index: int) -> str:
    """The key of an hour's ``index``-th Parquet file (deterministic: a re-roll writes the same keys)."""
    return f"{hour_prefix(hour)}part-{index:05d}.parquet"


def marker_key(hour: datetime) -> str:
    """The key of an hour's completion marker."""
    return f"{MARKER_PREFIX}{hour_label(hour)}.json"


def closes_at(hour: datetime) -> datetime:
    """When ``hour`` may be rolled: its end plus the settle margin."""
    return hour_floor(hour) + HOUR + SETTLE


def is_closed(hour: datetime, now: datetime) -> bool:
    return now >= closes_at(hour)


def latest_closed_hour(now: datetime) -> datetime:
    """The newest hour that is closed at ``now``."""
    return hour_floor(now - SETTLE) - HOUR


def require_closed(hour: datetime, now: datetime) -> None:
    """A one-line error unless ``hour`` is closed at ``now``."""
    if hour != hour_floor(hour):
        raise ValidationFailed(f"{format_timestamp(hour)} is not the start of an hour")
    if not is_closed(hour, now):
        raise ValidationFailed(
            f"hour {hour_label(hour)} is not closed: it can be rolled from {format_timestamp(closes_at(hour))} "
            f"(its end plus {SETTLE.seconds // 60} minutes; now is {format_timestamp(now)})",
            hint=f"roll up to {hour_label(latest_closed_hour(now))}, or wait",
        )


def require_raw_readings(hours: Iterable[datetime], now: datetime, retention_days: int) -> None:
    """A one-line error if any of ``hours`` is so old that its raw readings may have expired.

    The lake's lifecycle rule deletes raw objects ``retention_days`` after they were written (rounded to the next
    midnight UTC); an hour's objects are written during it or later (backfills), so an hour younger than
    ``retention_days - 1`` days still has them all. Rolling an older hour again would replace its rolled rows
    with what is left of the raw ones.
    """
    oldest_safe = hour_floor(now) - timedelta(days=retention_days - 1)
    too_old = [hour for hour in hours if hour < oldest_safe]
    if too_old:
        raise ValidationFailed(
            f"hour {hour_label(min(too_old))} is older than the raw readings' retention ({retention_days} days): its "
            "readings may have expired, and rolling it again would replace its rolled rows with fewer",
            hint=f"roll hours from {hour_label(oldest_safe)} on; its rolled rows stay as they are",
        )


def hours_between(first: datetime, last: datetime) -> list[datetime]:
    """Every hour from ``first`` to ``last`` (both included), oldest first."""
    hour, out = hour_floor(first), []
    while hour <= last:
        out.append(hour)
        hour += HOUR
    return out


def marked_hours(s3: S3Client, bucket: str, first_hour: datetime, max_keys: int = 1000) -> set[datetime]:
    """The hours from ``first_hour`` on that have a completion marker: ONE ListObjectsV2 call
    (``StartAfter`` skips the older markers; the first ``max_keys`` markers, at most 1,000)."""
    response = s3.list_objects_v2(
        Bucket=bucket,
        Prefix=MARKER_PREFIX,
        StartAfter=MARKER_PREFIX + hour_label(first_hour),  # sorts before "<first hour>.json", after older ones
        MaxKeys=max(1, min(max_keys, 1000)),
    )
    hours = set()
    for item in response.get("Contents", []):
        match = _MARKER.match(item["Key"])
        if match:
            hours.add(parse_hour(match.group(1)))
    return hours


def watermark(marked: Iterable[datetime], first: datetime, cap: datetime) -> datetime:
    """The first partition from ``first`` on without a marker (the marked ones before it are contiguous),
    never beyond ``cap`` (``PlanWindow.rollup_cap``: partitions before it hold nothing observed after as_of)."""
    done = {hour_floor(h) for h in marked}
    hour = hour_floor(first)
    while hour < cap and hour in done:
        hour += HOUR
    return hour


def rollup_watermark(s3: S3Client, bucket: str, first: datetime, cap: datetime) -> datetime:
    """The watermark of a plan's window from one listing of the markers; ``first`` (read every partition
    raw) when the markers cannot be listed, with a warning: the rollup saves bytes, never decides."""
    first = hour_floor(first)
    if cap <= first:
        return first
    try:
        marked = marked_hours(s3, bucket, first, max_keys=int((cap - first) / HOUR))
    except ClientError as exc:
        logger.warning("rollup markers not listed (%s): reading the whole window raw", describe_error(exc))
        return first
    return watermark(marked, first, cap)


def hours_to_roll(marked: Iterable[datetime], now: datetime, max_hours: int = CATCH_UP_HOURS) -> list[datetime]:
    """The closed hours among the last ``max_hours`` that have no marker, oldest first (a missed run catches up)."""
    last = latest_closed_hour(now)
    done = {hour_floor(h) for h in marked}
    return [h for h in hours_between(last - (max_hours - 1) * HOUR, last) if h not in done]


def rollup_lag_hours(marked: Iterable[datetime], now: datetime, max_hours: int = CATCH_UP_HOURS) -> int:
    """Hours from the newest rolled hour to the newest closed hour at ``now`` (0: up to date), at most
    ``max_hours`` (also when none of the last ``max_hours`` closed hours is rolled): the ``RollupLagHours``
    metric (``storeops.metrics``)."""
    last = latest_closed_hour(now)
    rolled = [h for h in (hour_floor(m) for m in marked) if last - (max_hours - 1) * HOUR <= h <= last]
    if not rolled:
        return max_hours
    return int((last - max(rolled)) / HOUR)


def hour_query_parameters(hour: datetime) -> dict[str, str]:
    """The parameters of ``sql/rollup_hour.sql`` for ``hour``: its raw partition."""
    dt, hour_text = partition_of(hour)
    return {"dt": dt, "hour": hour_text}


@dataclass
class RollupResult:
    """What rolling one hour did."""

    hour: str  # 2026-11-27T10
    rows: int
    bytes_scanned: int  # the query's (Athena's DataScannedInBytes; the emulator's estimate)
    bytes_written: int  # the Parquet files
    seconds: float
    query_execution_id: str
    keys: list[str] = field(default_factory=list)
    replaced: int = 0  # objects an earlier roll of the hour had left
    marker: str = ""
    rolled_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_ARROW_TYPES = {"string": "string", "int": "int32", "bigint": "int64", "double": "float64", "boolean": "bool"}


def parquet_bytes(frame: pd.DataFrame, types: dict[str, str] | None = None) -> bytes:
    """Rows as one snappy Parquet file in a table's Glue types (by default the hourly rollup's)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = types or ROLLUP_COLUMNS
    schema = pa.schema([(name, pa.type_for_alias(_ARROW_TYPES[kind])) for name, kind in types.items()])
    columns = frame[list(types)]
    text = [n for n, kind in types.items() if kind == "string" and columns[n].dtype.name == "category"]
    if text:
        columns = columns.astype(dict.fromkeys(text, "object"))
    table = pa.Table.from_pandas(columns, schema=schema, preserve_index=False)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="snappy")
    return bytes(buffer.getvalue().to_pybytes())


def _rollup_frame(chunk: pd.DataFrame) -> pd.DataFrame:
    """A result chunk in the table's column order, ``observed_at`` as the readings' ISO-8601 text."""
    frame = chunk[list(ROLLUP_COLUMNS)].copy()
    frame["observed_at"] = [
        format_timestamp(pd.Timestamp(v).to_pydatetime()) if isinstance(v, datetime | pd.Timestamp) else str(v)
        for v in frame["observed_at"]
    ]
    return frame


def roll_up_hour(
    clients: AwsClients,
    targets: PlanningTargets,
    hour: datetime,
    now: datetime,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> RollupResult:
    """Roll up one closed raw partition: delete its marker and files, query its readings (one scan of that
    partition), write each chunk of at most ``chunk_rows`` rows as one Parquet file, then write the
    marker. Idempotent; raises ``ValidationFailed`` for an hour that is not closed."""
    hour = hour_floor(hour)
    require_closed(hour, now)
    started = time.perf_counter()
    s3, bucket = clients.client("s3"), targets.bucket
    # The marker goes first: from here until the new one, plans read this hour raw.
    s3.delete_object(Bucket=bucket, Key=marker_key(hour))
    replaced = delete_prefix(s3, bucket, hour_prefix(hour))
    run = run_query_chunks(clients, targets.query_target, ROLLUP_QUERY, hour_query_parameters(hour), chunk_rows)
    result = _write_rolled_hour(
        clients, bucket, hour, now, (_rollup_frame(c) for c in run.chunks), run.bytes_scanned, run.query_execution_id
    )
    result.replaced = replaced
    result.seconds = time.perf_counter() - started
    logger.info(
        "rolled hour %s: %d rows in %d files (%d bytes) from %d bytes scanned (query %s), %d old objects replaced, "
        "%.2f s",
        result.hour,
        result.rows,
        len(result.keys),
        result.bytes_written,
        result.bytes_scanned,
        result.query_execution_id,
        replaced,
        result.seconds,
    )
    return result


def _write_rolled_hour(
    clients: AwsClients,
    bucket: str,
    hour: datetime,
    now: datetime,
    frames: Iterable[pd.DataFrame],
    bytes_scanned: int,
    query_execution_id: str,
) -> RollupResult:
    """Write an hour's rolled rows (frames in the table's columns), one Parquet file each, then its marker."""
    s3 = clients.client("s3")
    keys: list[str] = []
    written = rows = 0
    for frame in frames:
        if frame.empty:
            continue
        keys.append(part_key(hour, len(keys)))
        written += _put_part(s3, bucket, keys[-1], frame)
        rows += len(frame)
    result = RollupResult(
        hour=hour_label(hour),
        rows=rows,
        bytes_scanned=bytes_scanned,
        bytes_written=written,
        seconds=0.0,
        query_execution_id=query_execution_id,
        keys=keys,
        marker=marker_key(hour),
        rolled_at=format_timestamp(now),
    )
    _put_marker(s3, bucket, result)
    return result


def _put_part(s3: S3Client, bucket: str, key: str, frame: pd.DataFrame) -> int:
    body = parquet_bytes(frame)
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet")
    return len(body)


def _put_marker(s3: S3Client, bucket: str, result: RollupResult) -> None:
    """The hour's completion marker: from now on plans read this hour from the rollup."""
    marker = {k: v for k, v in result.as_dict().items() if k not in ("seconds", "marker", "replaced")}
    s3.put_object(
        Bucket=bucket,
        Key=result.marker,
        Body=json.dumps(marker, sort_keys=True).encode(),
        ContentType="application/json",
    )


def roll_up_hourly_readings(
    clients: AwsClients,
    bucket: str,
    hour: datetime,
    readings: pd.DataFrame,
    now: datetime,
    *,
    part: int = 0,
    parts: int = 1,
) -> RollupResult:
    """Roll up a raw partition whose readings the caller wrote itself and holds, one per store-product
    (hourly readings written by event time: a scenario's hours and its history). Each pair's one reading
    is its rolled row (``sql/rollup_hour.sql`` with one reading per pair and hour: the latest is the only
    one, the sums are its numbers, ``readings`` is 1), written under the same keys with the same marker,
    without a query. ``readings`` holds the reading columns of ``ROLLUP_COLUMNS``, observed_at as text.

    A caller holding the hour a chunk of stores at a time writes each chunk as file ``part`` of ``parts``;
    the marker follows the last one, so plans read the hour from the rollup only once every part is in."""
    hour = hour_floor(hour)
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is not one of {parts}")
    if readings.duplicated(["store_id", "product_id"]).any():
        raise ValueError(f"hour {hour_label(hour)}: more than one reading of a pair; roll it up with roll_up_hour")
    frame = readings.assign(observed_hour=readings["observed_at"].astype(str).str.slice(0, 13), readings=1)
    if not (frame["observed_hour"] == hour_label(hour)).all():
        raise ValueError(f"hour {hour_label(hour)}: readings observed in another hour")
    s3 = clients.client("s3")
    keys = [part_key(hour, index) for index in range(parts)]
    written = _put_part(s3, bucket, keys[part], frame[list(ROLLUP_COLUMNS)])
    rows = len(frame)
    if part < parts - 1:
        return RollupResult(hour_label(hour), rows, 0, written, 0.0, "", keys=[keys[part]])
    import pyarrow as pa
    import pyarrow.parquet as pq

    for key in keys[:-1]:  # the parts written before: their rows, from their Parquet footers
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows += pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
    result = RollupResult(
        hour_label(hour), rows, 0, written, 0.0, "", keys=keys, marker=marker_key(hour), rolled_at=format_timestamp(now)
    )
    _put_marker(s3, bucket, result)
    return result
