"""The hourly rollup on the emulator: what it writes, that a re-roll changes nothing, and that a plan
reading it finds exactly what a plan over the raw readings (and the pandas reference) finds."""

from __future__ import annotations

import io
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storeops.clock import format_timestamp
from storeops.exceptions import ValidationFailed
from storeops.planning.models import PlanRequest
from storeops.planning.rollup import (
    MARKER_PREFIX,
    hour_prefix,
    marker_key,
    part_key,
    roll_up_hour,
    roll_up_hourly_readings,
)
from storeops.planning.service import PlanResult, plan_shortages
from storeops.stores.backfill import write_by_event_time
from tests.integration.conftest import LocalStack
from tests.integration.test_planning import comparable, complete, targets_for
from tests.planning_reference import reference_shortages
from tests.redelivery import redeliver_every_raw_object

pytestmark = pytest.mark.integration

H = timedelta(hours=1)
DAY0 = datetime(2026, 11, 20, tzinfo=UTC)  # readings from 23:00 the day before to 05:50
AS_OF = DAY0 + timedelta(hours=5, minutes=40)
LATER = AS_OF + timedelta(days=1)  # every hour of the data is closed by then


def readings(pairs: int = 12, seed: int = 3) -> list[dict[str, Any]]:
    """Readings every 10 minutes from 23:00 to 05:50 (so some before the window and after as_of), with
    sales, write-offs, stock that falls and is refilled, a tie at one instant, and one pair that stops early."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for index in range(pairs):
        store, product = f"S{index // 4 + 1:04d}", f"P{index % 4 + 1:04d}"
        on_hand = rng.randint(5, 80)
        moment = DAY0 - H
        last = DAY0 + timedelta(hours=2, minutes=20) if index == 0 else DAY0 + timedelta(hours=5, minutes=50)
        while moment <= last:
            sold = rng.randint(0, 4)
            on_hand = rng.randint(40, 70) if on_hand < 3 and rng.random() < 0.3 else max(0, on_hand - sold)
            rows.append(
                {
                    "store_id": store,
                    "product_id": product,
                    "observed_at": format_timestamp(moment + timedelta(milliseconds=rng.randint(0, 2) * 7)),
                    "on_hand": on_hand,
                    "units_sold": sold,
                    "units_expired": rng.randint(0, 1) if on_hand > 10 else 0,
                    "period_hours": 1 / 6,
                    "case_pack": 6,
                }
            )
            moment += timedelta(minutes=10)
        if index == 5:  # one pair ends the window out of stock
            for row in rows[-6:]:
                row["on_hand"] = 0
    # two readings of one pair at the same instant, the last of an hour: the larger event_id is the latest
    tie = DAY0 + timedelta(hours=1, minutes=59, seconds=59, milliseconds=999)
    tied = (("00000000-0000-4000-8000-00000000000b", 0), ("00000000-0000-4000-8000-00000000000a", 50))
    for event_id, on_hand in tied:
        rows.append({**rows[-1], "observed_at": format_timestamp(tie), "on_hand": on_hand, "event_id": event_id})
    return complete(rows)


def arrival(row: dict[str, Any]) -> datetime:
    """Where Firehose would have put the reading: some of those near an hour's end in the next hour's
    partition, some of those just after it in the previous one (an object named by its first record)."""
    observed = datetime.fromisoformat(row["observed_at"].replace("Z", "+00:00"))
    if observed.minute == 50 and row["store_id"] == "S0001":
        return observed + timedelta(minutes=11)  # next hour's partition
    if observed.minute == 0 and row["store_id"] == "S0002":
        return observed - timedelta(seconds=30)  # previous hour's partition
    return observed


def write_readings(stack: LocalStack, rows: list[dict[str, Any]]) -> None:
    """One gzip object per arrival partition, by the backfill's event-time writer."""
    by_partition: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        moment = arrival(row)
        by_partition.setdefault((f"{moment:%Y-%m-%d}", f"{moment:%H}"), []).append(row)
    s3 = stack.clients.client("s3")
    for (dt, hh), group in by_partition.items():
        ndjson = ("\n".join(json.dumps(r) for r in group) + "\n").encode()
        moment = datetime.fromisoformat(f"{dt}T{hh}:00:00+00:00")
        write_by_event_time(s3, stack.resources.data_lake_bucket, moment, f"test-{uuid.uuid4().hex}", ndjson)


def plan(stack: LocalStack, as_of: datetime = AS_OF, lookback: float = 5.5, **kw: Any) -> PlanResult:
    request = PlanRequest(as_of=as_of, lookback_hours=lookback, lead_time_hours=3, dry_run=True)
    targets = targets_for(stack, scanned_bytes_source="s3-estimate", **kw)
    return plan_shortages(stack.clients, targets, request, now=as_of + timedelta(minutes=1))


def roll(stack: LocalStack, hour: datetime, **kw: Any) -> Any:
    return roll_up_hour(stack.clients, targets_for(stack), hour, LATER, **kw)


def parquet_of(stack: LocalStack, keys: list[str]) -> pa.Table:
    s3 = stack.clients.client("s3")
    bodies = [s3.get_object(Bucket=stack.resources.data_lake_bucket, Key=k)["Body"].read() for k in keys]
    return pa.concat_tables([pq.read_table(io.BytesIO(b)) for b in bodies])


def same_plan(a: PlanResult, b: PlanResult) -> None:
    assert comparable(a.shortages) == comparable(b.shortages)
    for column in ("units_sold_in_window", "reading_event_id", "observed_at", "shortage_id"):
        assert a.shortages[column].tolist() == b.shortages[column].tolist(), column
    assert a.shortages["hours_of_cover"].fillna(-1).tolist() == pytest.approx(
        b.shortages["hours_of_cover"].fillna(-1).tolist(), rel=1e-9
    )


@pytest.mark.parametrize(
    ("rolled", "watermark"),
    [
        ([], DAY0 - H),  # no rollup: every partition raw, from the hour before the window, as before
        ([-1, 0, 1, 2, 3, 4], DAY0 + 5 * H),  # every closed partition of the window: only as_of's hour raw
        ([-1, 0, 1, 3], DAY0 + 2 * H),  # a gap: the rollup up to it, raw after
        ([0, 1, 2], DAY0 - H),  # the window's first partition (the hour before it) missing: all raw
        ([-2, -1, 0, 1, 2, 3, 4, 5, 6], DAY0 + 5 * H),  # partitions outside the window and as_of's are not read
    ],
)
def test_a_plan_over_the_rollup_finds_what_a_plan_over_the_raw_readings_finds(
    local_stack: LocalStack, rolled: list[int], watermark: datetime
) -> None:
    written = readings()
    write_readings(local_stack, written)
    raw = plan(local_stack)
    expected = reference_shortages(pd.DataFrame(written), AS_OF, 5.5, 3)
    assert len(expected) >= 4
    assert len(set(expected["kind"])) >= 2
    assert comparable(raw.shortages) == comparable(expected)
    assert raw.window_start == format_timestamp(DAY0)
    assert raw.rollup_until == format_timestamp(DAY0 - H)
    for hour in rolled:
        roll(local_stack, DAY0 + hour * H)
    rollup = plan(local_stack)
    assert rollup.rollup_until == format_timestamp(watermark)
    same_plan(rollup, raw)
    # what the plan read (the emulator's figure): the rollup's partitions from the hour before the window to
    # the watermark and the raw partitions from the watermark to the hour after as_of, nothing else
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    sizes = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    rollup_hours = [DAY0 - H + i * H for i in range(int((watermark - (DAY0 - H)) / H))]
    raw_hours = [watermark + i * H for i in range(int((AS_OF + H - watermark) / H) + 1)]
    prefixes = [hour_prefix(h) for h in rollup_hours] + [f"inventory/dt={h:%Y-%m-%d}/hour={h:%H}/" for h in raw_hours]
    assert rollup.query_bytes == [sum(size for key, size in sizes.items() if key.startswith(tuple(prefixes)))]


def test_the_lambda_reads_the_rollup(local_stack: LocalStack) -> None:
    write_readings(local_stack, readings())
    for hour in range(-1, 5):
        roll(local_stack, DAY0 + hour * H)
    response = local_stack.clients.client("lambda").invoke(
        FunctionName=local_stack.resources.planning_function,
        Payload=json.dumps({"as_of": AS_OF.isoformat(), "lookback_hours": 5.5, "dry_run": True}).encode(),
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    assert payload["rollup_until"] == format_timestamp(DAY0 + 5 * H)
    assert payload["shortage_count"] == len(plan(local_stack).shortages) > 0


def test_a_rolled_partition_is_one_row_per_pair_and_observed_hour_with_its_latest_reading_and_sums(
    local_stack: LocalStack,
) -> None:
    written = readings()
    write_readings(local_stack, written)
    hour = DAY0 + H  # partition 01: S0001's 00:50 readings and S0002's 02:00 arrived in it, S0002's 01:00 did not
    result = roll(local_stack, hour)
    frame = pd.DataFrame(written)
    frame["observed_hour"] = frame["observed_at"].str[:13]
    inside = frame[[arrival(r) >= hour and arrival(r) < hour + H for r in written]]
    pairs = inside.groupby(["store_id", "product_id", "observed_hour"])
    assert result.rows == pairs.ngroups == 12 + 4 + 4  # every pair's hour 01, S0001's 00:50 and S0002's 02:00
    assert result.keys == [part_key(hour, 0)]
    assert result.bytes_scanned > 0
    assert result.bytes_written > 0
    table = parquet_of(local_stack, result.keys)
    schema = {f.name: f.type for f in table.schema}
    assert schema == {
        "event_id": pa.string(),
        "store_id": pa.string(),
        "product_id": pa.string(),
        "product_name": pa.string(),
        "category": pa.string(),
        "case_pack": pa.int32(),
        "on_hand": pa.int32(),
        "price": pa.float64(),
        "on_promotion": pa.bool_(),
        "observed_at": pa.string(),
        "observed_hour": pa.string(),
        "units_sold": pa.int64(),
        "units_expired": pa.int64(),
        "period_hours": pa.float64(),
        "readings": pa.int64(),
    }
    got = table.to_pandas().set_index(["store_id", "product_id", "observed_hour"]).sort_index()
    latest = (
        inside.sort_values(["observed_at", "event_id"], ascending=False)
        .groupby(["store_id", "product_id", "observed_hour"])
        .head(1)
        .set_index(["store_id", "product_id", "observed_hour"])
        .sort_index()
    )
    assert got["event_id"].tolist() == latest["event_id"].tolist()
    assert got["observed_at"].tolist() == latest["observed_at"].tolist()  # the readings' own text
    assert got["on_hand"].tolist() == latest["on_hand"].tolist()
    assert got["units_sold"].tolist() == pairs["units_sold"].sum().sort_index().tolist()
    assert got["units_expired"].tolist() == pairs["units_expired"].sum().sort_index().tolist()
    assert got["readings"].tolist() == pairs.size().sort_index().tolist()
    assert got["period_hours"].tolist() == pytest.approx(pairs["period_hours"].sum().sort_index().tolist())
    assert got.loc[("S0003", "P0004", "2026-11-20T01"), "readings"] == 8  # six, and the tie at 01:59:59.999
    assert got.loc[("S0003", "P0004", "2026-11-20T01"), "event_id"] == "00000000-0000-4000-8000-00000000000b"
    assert got.loc[("S0001", "P0002", "2026-11-20T00"), "readings"] == 1  # 00:50, arrived 01:01
    marker = json.loads(
        local_stack.clients.client("s3")
        .get_object(Bucket=local_stack.resources.data_lake_bucket, Key=marker_key(hour))["Body"]
        .read()
    )
    assert marker["rows"] == 20
    assert marker["bytes_scanned"] == result.bytes_scanned
    assert marker["query_execution_id"] == result.query_execution_id
    assert marker["rolled_at"] == format_timestamp(LATER)


def test_rolling_an_hour_again_writes_the_same_rows_under_the_same_keys(local_stack: LocalStack) -> None:
    write_readings(local_stack, readings())
    hour = DAY0 + 3 * H  # 11 pairs (the first stopped at 02:20), three of S0001's 02:50 readings, S0002's 04:00
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    chunked = roll(local_stack, hour, chunk_rows=5)  # 18 rows: four files of at most 5
    assert chunked.keys == [part_key(hour, i) for i in range(4)]
    chunked_rows = parquet_of(local_stack, chunked.keys)
    first = roll(local_stack, hour)
    assert first.replaced == 4  # what the earlier roll left is gone
    assert first.keys == [part_key(hour, 0)]
    second = roll(local_stack, hour)
    assert second.keys == first.keys
    assert second.rows == first.rows == chunked.rows == 18
    assert parquet_of(local_stack, second.keys).equals(parquet_of(local_stack, first.keys))
    assert chunked_rows.equals(parquet_of(local_stack, first.keys))
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=hour_prefix(hour))["Contents"]]
    assert listed == second.keys
    markers = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=MARKER_PREFIX)["Contents"]]
    assert markers == [marker_key(hour)]


def test_an_hour_without_readings_is_rolled_empty_and_planning_reads_past_it(local_stack: LocalStack) -> None:
    as_of = DAY0 + timedelta(hours=12, minutes=30)
    written = complete(
        [
            {"store_id": "S0001", "product_id": "P0001", "observed_at": format_timestamp(DAY0 + 12 * H), "on_hand": 0},
            {"store_id": "S0001", "product_id": "P0002", "observed_at": format_timestamp(as_of), "on_hand": 1},
        ]
    )
    write_readings(local_stack, written)
    for hour in (9, 10, 11):
        result = roll(local_stack, DAY0 + hour * H)
        assert (result.rows, result.keys) == (0, [])
    rollup = plan(local_stack, as_of=as_of, lookback=2.5)  # the window starts at 10:00, its partitions at 09:00
    assert rollup.rollup_until == format_timestamp(DAY0 + 12 * H)  # the empty partitions from the rollup
    assert comparable(rollup.shortages) == comparable(reference_shortages(pd.DataFrame(written), as_of, 2.5, 3))
    assert len(rollup.shortages) == 2


def test_a_reading_that_lands_after_its_hour_was_rolled_is_seen_once_the_hour_is_rolled_again(
    local_stack: LocalStack,
) -> None:
    write_readings(local_stack, readings())
    for hour in range(-1, 5):
        roll(local_stack, DAY0 + hour * H)
    late = complete(
        [{"store_id": "S0099", "product_id": "P0001", "observed_at": format_timestamp(DAY0 + 2.5 * H), "on_hand": 0}]
    )
    write_readings(local_stack, late)
    assert "S0099" not in set(plan(local_stack).shortages["store_id"])
    roll(local_stack, DAY0 + 2 * H)  # flows.rollup --backfill
    assert "S0099" in set(plan(local_stack).shortages["store_id"])


def test_an_hour_of_one_reading_per_pair_rolls_up_without_a_query_to_the_same_rows(local_stack: LocalStack) -> None:
    """A scenario writes hourly readings by event time and rolls each hour up from the rows it holds:
    the same files, types and marker as the rollup query gives."""
    hour = DAY0 + 3 * H
    written = complete(
        [
            {
                "store_id": f"S{10 + s:04d}",  # stores whose readings arrive in their own hour (see arrival)
                "product_id": f"P{p:04d}",
                "observed_at": format_timestamp(hour),
                "on_hand": 7 * s + p,
                "units_sold": s,
                "units_expired": p % 2,
                "price": 1.0 + p / 4,
                "on_promotion": p == 2,
            }
            for s in range(1, 4)
            for p in range(1, 5)
        ]
    )
    write_readings(local_stack, written)
    queried = roll(local_stack, hour)
    by_query = parquet_of(local_stack, queried.keys)
    frame = pd.DataFrame(written).astype({"store_id": "category"})  # as a scenario holds its readings
    held = roll_up_hourly_readings(local_stack.clients, local_stack.resources.data_lake_bucket, hour, frame, LATER)
    assert held.keys == queried.keys
    by_rows = parquet_of(local_stack, held.keys)
    order = [("store_id", "ascending"), ("product_id", "ascending")]
    assert by_rows.schema.equals(by_query.schema)
    assert by_rows.sort_by(order).to_pylist() == by_query.sort_by(order).to_pylist()
    assert held.rows == queried.rows == 12
    marker = json.loads(
        local_stack.clients.client("s3")
        .get_object(Bucket=local_stack.resources.data_lake_bucket, Key=marker_key(hour))["Body"]
        .read()
    )
    assert marker["rows"] == 12
    # an hour held a chunk of stores at a time: one file per chunk, the marker after the last, the rows of all
    s3 = local_stack.clients.client("s3")
    s3.delete_object(Bucket=local_stack.resources.data_lake_bucket, Key=marker_key(hour))
    first, second = frame[frame["store_id"] == "S0011"], frame[frame["store_id"] != "S0011"]
    bucket = local_stack.resources.data_lake_bucket
    roll_up_hourly_readings(local_stack.clients, bucket, hour, first, LATER, part=0, parts=2)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=marker_key(hour))  # not complete yet
    whole = roll_up_hourly_readings(local_stack.clients, bucket, hour, second, LATER, part=1, parts=2)
    assert whole.keys == [part_key(hour, 0), part_key(hour, 1)]
    assert whole.rows == 12
    in_parts = parquet_of(local_stack, whole.keys)
    assert in_parts.sort_by(order).to_pylist() == by_query.sort_by(order).to_pylist()
    twice = pd.concat([frame, frame])
    with pytest.raises(ValueError, match="more than one reading"):
        roll_up_hourly_readings(local_stack.clients, local_stack.resources.data_lake_bucket, hour, twice, LATER)


def test_an_open_hour_is_refused(local_stack: LocalStack) -> None:
    hour = DAY0 + 5 * H
    with pytest.raises(ValidationFailed, match="2026-11-20T05 is not closed"):
        roll_up_hour(local_stack.clients, targets_for(local_stack), hour, hour + H + timedelta(minutes=9))
    s3 = local_stack.clients.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=local_stack.resources.data_lake_bucket, Prefix=MARKER_PREFIX)


def test_readings_delivered_twice_are_rolled_up_and_planned_once(local_stack: LocalStack) -> None:
    """Firehose delivers at least once (and a retried PutRecordBatch sends its records again): with every raw
    object delivered a second time the rollup, the plan over it and the plan over raw readings are the same."""
    write_readings(local_stack, readings())
    hours = [DAY0 + h * H for h in range(-1, 5)]
    raw_once = plan(local_stack)
    workshop = PlanRequest(as_of=AS_OF, lookback_hours=5.5, policy="workshop", dry_run=True)
    workshop_once = plan_shortages(local_stack.clients, targets_for(local_stack), workshop, now=AS_OF + H)
    rolled_once = [parquet_of(local_stack, roll(local_stack, hour).keys) for hour in hours]
    over_rollup_once = plan(local_stack)
    assert over_rollup_once.rollup_until == format_timestamp(DAY0 + 5 * H)  # as_of's hour raw

    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    assert redeliver_every_raw_object(s3, bucket) >= len(hours)
    same_plan(plan(local_stack), over_rollup_once)  # the open hour's readings twice
    rolled_twice = [parquet_of(local_stack, roll(local_stack, hour).keys) for hour in hours]
    assert [t.to_pylist() for t in rolled_twice] == [t.to_pylist() for t in rolled_once]
    for marker in s3.list_objects_v2(Bucket=bucket, Prefix=MARKER_PREFIX)["Contents"]:
        s3.delete_object(Bucket=bucket, Key=marker["Key"])  # no rollup: every reading of the window raw
    raw_twice = plan(local_stack)
    assert raw_twice.rollup_until == format_timestamp(DAY0 - H)
    same_plan(raw_twice, raw_once)
    workshop_twice = plan_shortages(local_stack.clients, targets_for(local_stack), workshop, now=AS_OF + H)
    assert comparable(workshop_twice.shortages) == comparable(workshop_once.shortages)
    assert workshop_twice.shortages["units_sold_in_window"].tolist() == (
        workshop_once.shortages["units_sold_in_window"].tolist()
    )
