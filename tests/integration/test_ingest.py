"""StoreApp against the emulator: what is sent is what Athena reads; state carries over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import awswrangler as wr
import numpy as np
import pandas as pd
import pytest

from storeops.exceptions import DeliveryError, StoreOpsError
from storeops.stores.catalog import build_catalog
from storeops.stores.firehose import FirehoseSender
from storeops.stores.ingest import SimulationConfig, SimulationStore, backfill, load_or_start, stream_readings
from storeops.stores.simulation import advance
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
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    config = SimulationConfig(stores=40, products=25, seed=3)
    catalog, state, _ = load_or_start(store, config, T0)
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)
    report = stream_readings(catalog, state, sender, hourly(3), raw_chunk_bytes=64_000)
    assert report.rows_sent == 3 * 40 * 25
    assert report.rows_failed == 0
    assert report.firehose_records > 3  # packed: several records, far fewer than readings

    def counted() -> object:
        frame = athena(local_stack, "select count(*) as n, count(distinct event_id) as ids from inventory_readings")
        return frame if int(frame["n"][0]) == report.rows_sent else None

    frame = wait_for(counted, timeout=20, interval=0.3)
    assert int(frame["ids"][0]) == report.rows_sent  # type: ignore[index]
    latest = athena(
        local_stack,
        "select store_id, product_id, on_hand from inventory_readings where store_id = :s and product_id = :p "
        "order by observed_at desc limit 1",
        s="S0003",
        p="P0004",
    )
    assert int(latest["on_hand"][0]) == state.on_hand[2, 3]


def test_a_second_scheduled_run_continues_the_simulation(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    config = SimulationConfig(stores=5, products=4, seed=8)
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)
    catalog, first, etag = load_or_start(store, config, T0)
    stream_readings(catalog, first, sender, hourly(2))
    store.save(config, first, etag)
    catalog, second, etag2 = load_or_start(store, config, T0 + timedelta(hours=5))
    assert second.ticks == 2
    assert second.sim_clock == first.sim_clock
    assert np.array_equal(second.on_hand, first.on_hand)
    stream_readings(catalog, second, sender, [T0 + timedelta(hours=2)])
    store.save(config, second, etag2)
    third, _ = store.load(config)
    assert third is not None
    assert third.ticks == 3
    assert third.last_observed_at is not None
    assert first.last_observed_at is not None
    assert third.last_observed_at > first.last_observed_at


def test_a_concurrent_writer_is_detected(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    config = SimulationConfig(stores=2, products=2)
    _, state, etag = load_or_start(store, config, T0)
    store.save(config, state, etag)
    _, mine, my_etag = load_or_start(store, config, T0)
    _, theirs, their_etag = load_or_start(store, config, T0)
    advance(theirs, 1.0)  # the other run moved on
    store.save(config, theirs, their_etag)
    with pytest.raises(StoreOpsError, match="another run changed"):
        store.save(config, mine, my_etag)


def test_a_missing_delivery_stream_is_reported_with_the_loss(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    catalog, state, _ = load_or_start(store, SimulationConfig(stores=3, products=3), T0)
    sender = FirehoseSender(local_stack.clients.client("firehose"), "no-such-stream")
    with pytest.raises(DeliveryError) as info:
        stream_readings(catalog, state, sender, hourly(1))
    assert info.value.lost == 9
    assert "no-such-stream" in info.value.one_line()


def test_invalid_readings_are_never_sent_and_are_counted(local_stack: LocalStack) -> None:
    store = SimulationStore(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket)
    catalog, state, _ = load_or_start(store, SimulationConfig(stores=4, products=5, seed=1), T0)
    sender = FirehoseSender(local_stack.clients.client("firehose"), local_stack.resources.delivery_stream)

    def corrupt(columns: dict[str, np.ndarray]) -> None:
        columns["on_hand"][[0, 1]] = -3
        columns["units_sold"][5] = -1

    report = stream_readings(catalog, state, sender, hourly(1), corrupt=corrupt)
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
    state, report = backfill(
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
    assert state.ticks == 48


def test_backfill_every_n_hours_reports_the_sales_of_all_n_hours(local_stack: LocalStack) -> None:
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    backfill(build_catalog(5, 3, 9), s3, bucket, 1, end=datetime(2026, 11, 10, tzinfo=UTC))
    _, report = backfill(build_catalog(5, 3, 9), s3, bucket, 1, end=datetime(2026, 11, 20, tzinfo=UTC), every_hours=3)
    assert report.backfill_objects == 8

    def day(first: str, second: str) -> pd.Series:  # the day's readings: the hours after midnight, to midnight
        sql = (
            "select count(*) as n, sum(units_sold + units_lost) as demand, min(period_hours) as shortest, "
            "max(period_hours) as longest from inventory_readings where dt = :a or (dt = :b and hour = '00')"
        )
        return athena(local_stack, sql, a=first, b=second).iloc[0]

    hourly, every_three = day("2026-11-09", "2026-11-10"), day("2026-11-19", "2026-11-20")
    assert (int(hourly["n"]), float(hourly["shortest"]), float(hourly["longest"])) == (24 * 15, 1.0, 1.0)
    assert (int(every_three["n"]), float(every_three["shortest"]), float(every_three["longest"])) == (8 * 15, 3.0, 3.0)
    assert int(every_three["demand"]) == int(hourly["demand"])  # the same customers, every hour counted


def test_due_truck_stops_are_added_to_stock_once(local_stack: LocalStack) -> None:
    from storeops.clock import format_timestamp
    from storeops.ledger import LedgerRow, window_record_key, write_rows
    from storeops.stores.deliveries import apply_due, due_deliveries

    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    now = datetime.now(UTC)
    catalog, state, _ = load_or_start(SimulationStore(s3, bucket), SimulationConfig(stores=3, products=2), now)
    before = state.on_hand.copy()
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
    due = due_deliveries(s3, bucket, now, state.deliveries)
    assert [d.stop_id for d in due.stops] == ["load-x-001#1"]
    assert due.complete_records == []  # stop 2 is still on the road
    assert apply_due(state, catalog, due, now) == 12
    assert state.on_hand[0, 1] == before[0, 1] + 12
    assert due_deliveries(s3, bucket, now, state.deliveries).stops == []  # applied once
    later = now + timedelta(hours=2)
    due_later = due_deliveries(s3, bucket, later, state.deliveries)
    assert [d.stop_id for d in due_later.stops] == ["load-x-001#2"]
    assert apply_due(state, catalog, due_later, later) == 24
    assert state.deliveries.has_record(f"{now:%Y-%m-%d}", "window-x")  # every stop delivered: not read again
    assert due_deliveries(s3, bucket, later, state.deliveries) == due_deliveries(s3, bucket, later, state.deliveries)
