"""StoreApp against the emulator: what is sent is what Athena reads; state carries over, a chunk of stores at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import awswrangler as wr
import numpy as np
import pandas as pd
import pytest

from storeops.exceptions import DeliveryError, StoreOpsError
from storeops.stores.backfill import backfill
from storeops.stores.catalog import build_catalog
from storeops.stores.firehose import FirehoseSender
from storeops.stores.readings import run_readings
from storeops.stores.simulation import advance
from storeops.stores.state import SimulationConfig, SimulationStore
from tests.conftest import wait_for
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def hourly(count: int, start: datetime = T0) -> list[datetime]:
    """Reading times an hour apart, after ``start`` (a new simulation starts an hour before its first)."""
    return [start + timedelta(hours=h) for h in range(count)]


def athena(stack: LocalStack, sql: str, **params: str) -> pd.DataFrame:
    return wr.athena.read_sql_query(
        sql,
        database=stack.resources.glue_database,
        workgroup=stack.resources.athena_workgroup,
        ctas_approach=False,
        params=params or None,
        paramstyle="named",
        boto3_session=stack.clients.session,
    )


def test_rows_sent_equal_rows_queryable_through_athena(local_stack: LocalStack) -> None:
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    config = SimulationConfig(stores=40, products=25, seed=3)
    simulation = SimulationStore(s3, bucket).open(config, T0, chunk_pairs=200)  # 8 stores: 5 chunks
    assert simulation.layout.count == 5
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)
    report = run_readings(simulation, sender, hourly(3), raw_chunk_bytes=64_000)
    assert report.rows_sent == 3 * 40 * 25
    assert report.rows_failed == 0
    assert report.ticks == 3
    assert report.firehose_records > 3  # packed: several records, far fewer than readings
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=config.prefix)["Contents"]]
    assert sorted(keys) == [config.chunk_key(k) for k in range(5)]  # each chunk saved after its readings

    def counted() -> object:
        frame = athena(
            local_stack,
            "select count(*) as n, count(distinct event_id) as ids, count(distinct observed_at) as times "
            "from inventory_readings",
        )
        return frame if int(frame["n"][0]) == report.rows_sent else None

    frame = wait_for(counted, timeout=20, interval=0.3)
    assert int(frame["ids"][0]) == report.rows_sent  # type: ignore[index]
    assert int(frame["times"][0]) == 3  # type: ignore[index]  # every chunk read at the same times
    latest = athena(
        local_stack,
        "select store_id, product_id, on_hand from inventory_readings where store_id = :s and product_id = :p "
        "order by observed_at desc limit 1",
        s="S0011",
        p="P0004",
    )
    assert int(latest["on_hand"][0]) == simulation.load(1).on_hand[2, 3]  # store 11 is row 2 of chunk 1


def test_a_second_scheduled_run_continues_the_simulation(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    config = SimulationConfig(stores=5, products=4, seed=8)
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)
    first = store.open(config, T0, chunk_pairs=8)  # 2 stores a chunk: 3 chunks
    run_readings(first, sender, hourly(2))
    first.save_manifest()
    second = store.open(config, T0 + timedelta(hours=5))
    assert second.layout == first.layout  # a saved simulation keeps its layout
    assert second.manifest.ticks == 2
    assert second.manifest.sim_clock == first.manifest.sim_clock == T0 + timedelta(hours=1)
    assert [second.load(k).ticks for k in range(3)] == [2, 2, 2]
    run_readings(second, sender, [T0 + timedelta(hours=2)])
    second.save_manifest()
    third = store.open(config, T0)
    assert third.manifest.ticks == 3
    assert third.manifest.last_observed_at is not None
    assert first.manifest.last_observed_at is not None
    assert third.manifest.last_observed_at > first.manifest.last_observed_at
    assert [third.load(k).sim_clock for k in range(3)] == [T0 + timedelta(hours=2)] * 3


def test_a_concurrent_writer_is_detected(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    config = SimulationConfig(stores=2, products=2)
    first = store.open(config, T0)
    first.save(first.load(0))
    first.save_manifest()
    mine, theirs = store.open(config, T0), store.open(config, T0)
    my_chunk, their_chunk = mine.load(0), theirs.load(0)
    advance(their_chunk, 1.0)  # the other run moved on
    theirs.save(their_chunk)
    with pytest.raises(StoreOpsError, match="another run changed"):
        mine.save(my_chunk)
    theirs.save_manifest()
    with pytest.raises(StoreOpsError, match="another run changed"):
        mine.save_manifest()


def test_a_missing_delivery_stream_is_reported_with_the_loss(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    simulation = store.open(SimulationConfig(stores=3, products=3), T0)
    sender = FirehoseSender(local_stack.clients.client("firehose"), "no-such-stream")
    with pytest.raises(DeliveryError) as info:
        run_readings(simulation, sender, hourly(1))
    assert info.value.lost == 9
    assert "no-such-stream" in info.value.one_line()


def test_invalid_readings_are_never_sent_and_are_counted(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    simulation = store.open(SimulationConfig(stores=4, products=5, seed=1), T0)
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)

    def corrupt(columns: dict[str, np.ndarray]) -> None:
        columns["on_hand"][[0, 1]] = -3
        columns["units_sold"][5] = -1

    report = run_readings(simulation, sender, hourly(1), corrupt=corrupt)
    assert report.rows_rejected == 3
    assert report.rejected_reasons == {"negative_on_hand": 2, "negative_units_sold": 1}
    assert report.rows_sent == 17
    frame = wait_for(
        lambda: (
            (f := athena(local_stack, "select min(on_hand) as lo, count(*) as n from inventory_readings")) is not None
            and int(f["n"][0]) == 17
            and f
        ),
        timeout=20,
    )
    assert int(frame["lo"][0]) >= 0  # type: ignore[index]


def test_backfill_writes_history_by_event_time(local_stack: LocalStack) -> None:
    catalog = build_catalog(6, 4, 2)
    end = datetime.now(UTC)
    seen: list[tuple[int, int]] = []
    simulation, report = backfill(
        catalog,
        local_stack.clients.client("s3"),
        local_stack.resources.data_lake_bucket,
        2,
        end=end,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert report.backfill_objects == 48
    assert report.backfill_rows == 48 * 24
    assert seen[-1] == (48, 48)
    day = (end - timedelta(days=1)).strftime("%Y-%m-%d")
    frame = athena(
        local_stack,
        "select hour, count(*) as n from inventory_readings where dt = :dt group by hour order by hour",
        dt=day,
    )
    assert len(frame) >= 1
    assert set(frame["n"].astype(int)) == {24}
    assert simulation.manifest.ticks == 48
    assert simulation.load(0).ticks == 48


def test_backfill_in_chunks_saves_each_chunk_and_the_live_run_continues_from_it(local_stack: LocalStack) -> None:
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    store = SimulationStore(s3, bucket)
    config = SimulationConfig(stores=7, products=3, seed=4)
    end = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    simulation = store.open(config, end, chunk_pairs=9)  # 3 stores a chunk: 3 chunks
    seen: list[tuple[int, int]] = []
    simulation, report = backfill(
        simulation.catalog, s3, bucket, 1, end=end, progress=lambda *p: seen.append(p), simulation=simulation
    )
    assert (report.backfill_objects, report.backfill_rows) == (24 * 3, 24 * 21)  # an object per hour and chunk
    assert seen[-1] == (72, 72)
    simulation.save_manifest()
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)
    live = store.open(config, end + timedelta(minutes=30))
    assert live.manifest.last_observed_at == end
    reading = run_readings(live, sender, [end + timedelta(minutes=30)])
    assert reading.hours_simulated == pytest.approx(0.5)  # continues from the backfill's last hour
    assert reading.rows_sent == 21
    frame = athena(local_stack, "select count(*) as n from inventory_readings where dt = :dt", dt="2026-11-20")
    assert int(frame["n"][0]) == 13 * 21  # the day's hours from midnight to noon, every store


def test_backfill_every_n_hours_reports_the_sales_of_all_n_hours(local_stack: LocalStack) -> None:
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    end = datetime(2026, 11, 20, tzinfo=UTC)
    _, hourly_report = backfill(build_catalog(5, 3, 9), s3, bucket, 1, end=end)
    _, report = backfill(build_catalog(5, 3, 9), s3, bucket, 1, end=end, every_hours=3)  # the same day again
    assert report.backfill_objects == 8
    assert report.units_sold == hourly_report.units_sold > 0  # the same customers: demand is the hour's, not the run's
    sql = (
        "select period_hours, count(*) as n, sum(units_sold) as sold from inventory_readings "
        "where dt = :a or (dt = :b and hour = '00') group by period_hours order by period_hours"
    )
    rows = athena(local_stack, sql, a="2026-11-19", b="2026-11-20").to_dict("records")
    assert [(float(r["period_hours"]), int(r["n"])) for r in rows] == [(1.0, 24 * 15), (3.0, 8 * 15)]
    assert int(rows[0]["sold"]) == int(rows[1]["sold"]) == report.units_sold  # every hour's sales counted once


def test_due_truck_stops_are_added_to_stock_once(local_stack: LocalStack) -> None:
    from storeops.clock import format_timestamp
    from storeops.ledger import LedgerRow, window_record_key, write_rows
    from storeops.stores.deliveries import LedgerDeliveries

    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    now = datetime.now(UTC)
    config = SimulationConfig(stores=3, products=2)
    simulation = SimulationStore(s3, bucket).open(config, now, chunk_pairs=2)  # a store a chunk
    before = [simulation.load(k).on_hand.copy() for k in range(3)]
    rows = [
        LedgerRow(
            record_type="dispatch",
            shortage_id=f"sh-{i:032d}",
            store_id=store,
            product_id="P0002",
            quantity=qty,
            recorded_at=format_timestamp(now),
            load_id="load-x-001",
            truck_id="T",
            stop_number=stop,
            eta=format_timestamp(now + timedelta(minutes=offset)),
        )
        for i, (store, stop, qty, offset) in enumerate([("S0001", 1, 12, -30), ("S0003", 2, 24, 90)])
    ]
    write_rows(s3, bucket, window_record_key(now, "x"), rows)
    deliver = LedgerDeliveries(s3, bucket, simulation.catalog, simulation.manifest.deliveries)
    assert [d.stop_id for d in deliver.due(now).stops] == ["load-x-001#1"]
    assert deliver.due(now).complete_records == []  # stop 2 is still on the road
    chunks = [simulation.load(k) for k in range(3)]
    for chunk in chunks:  # room on every shelf
        chunk.on_hand[:] = 0
        chunk.cohorts[:] = 0
    before = [chunk.on_hand.copy() for chunk in chunks]
    assert [deliver(chunk, now).units for chunk in chunks] == [12, 0, 0]  # only the chunk of S0001 takes it
    assert chunks[0].on_hand[0, 1] == before[0][0, 1] + 12
    assert [deliver(chunk, now).units for chunk in chunks] == [0, 0, 0]  # applied once
    deliver.complete()
    later = now + timedelta(hours=2)
    assert [d.stop_id for d in deliver.due(later).stops] == ["load-x-001#1", "load-x-001#2"]  # read again...
    assert [deliver(chunk, later).units for chunk in chunks] == [0, 0, 24]  # ...each applied once
    assert chunks[2].on_hand[0, 1] == before[2][0, 1] + 24
    deliver.complete()
    assert simulation.manifest.deliveries.has_record(f"{now:%Y-%m-%d}", "window-x")  # every stop applied everywhere
    assert deliver.due(later).stops == []  # so the record is not read again
