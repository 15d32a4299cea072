from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from storeops.clock import format_timestamp
from storeops.contracts.reading import (
    MAX_CASE_PACK,
    MAX_PERIOD_HOURS,
    MAX_PRICE,
    MAX_UNITS,
    NUMERIC_FIELDS,
    InventoryReading,
    validate_batch,
)
from storeops.exceptions import DeliveryError
from storeops.retry import RetryPolicy
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder, random_event_ids
from storeops.stores.firehose import FirehoseSender
from storeops.stores.readings import reading_columns, run_readings
from storeops.stores.reference import promotions_table
from storeops.stores.simulation import SimulationState, Tick, advance, initial_state
from storeops.stores.state import MemoryChunks, Simulation
from tests.conftest import examples

NOW = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


SIMULATOR_ONLY = {"units_lost", "reorder_point", "target_stock", "rate", "units_demanded", "shelf_capacity"}


def test_encoded_lines_are_valid_readings_with_the_right_values() -> None:
    catalog = build_catalog(7, 9, 2)
    state = initial_state(catalog, NOW)
    tick = advance(state, 2.0)
    batch = ReadingEncoder(catalog).encode(reading_columns(catalog, state, tick), NOW)
    lines = batch.lines()
    assert len(lines) == 63 == batch.count
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    readings = [InventoryReading.model_validate_json(line) for line in lines]
    assert [r.on_hand for r in readings] == tick.on_hand.ravel().tolist()
    assert [r.units_sold for r in readings] == tick.units_sold.ravel().tolist()
    assert [r.units_expired for r in readings] == tick.units_expired.ravel().tolist()
    assert {r.period_hours for r in readings} == {2.0}
    assert {r.schema_version for r in readings} == {3}
    assert readings[10].store_id == catalog.stores["store_id"][1]
    assert readings[10].product_id == catalog.products["product_id"][1]
    assert readings[10].product_name == catalog.products["name"][1]
    assert readings[10].case_pack == catalog.products["case_pack"][1]
    assert json.loads(lines[0])["observed_at"] == "2026-05-01T12:30:15.123Z"
    assert len({r.event_id for r in readings}) == 63


def test_a_reading_carries_what_a_store_system_knows_and_nothing_only_the_simulator_knows() -> None:
    fields = set(InventoryReading.model_fields)
    assert fields == {
        "event_id",
        "store_id",
        "product_id",
        "product_name",
        "category",
        "case_pack",
        "on_hand",
        "units_sold",
        "units_expired",
        "period_hours",
        "price",
        "on_promotion",
        "observed_at",
        "schema_version",
    }
    assert not fields & SIMULATOR_ONLY
    catalog = build_catalog(3, 4, 1)
    state = initial_state(catalog, NOW)
    line = ReadingEncoder(catalog).encode(reading_columns(catalog, state, advance(state, 1.0)), NOW).lines()[0]
    assert set(json.loads(line)) == fields  # the bytes in the lake hold exactly the schema's fields


def test_the_shelf_price_and_the_promotion_flag_follow_the_promotion_plan() -> None:
    catalog = build_catalog(2, 300, 4)
    table = promotions_table(catalog)
    promo = table.iloc[len(table) // 2]
    day = datetime.fromisoformat(promo["start_date"]).replace(hour=12, tzinfo=UTC)
    state = initial_state(catalog, day - timedelta(hours=1))
    columns = reading_columns(catalog, state, advance(state, 1.0))
    index = catalog.products.index[catalog.products["product_id"] == promo["product_id"]][0]
    regular = catalog.products["price"][index]
    assert bool(columns["on_promotion"][index])
    assert columns["price"][index] == pytest.approx(round(regular * (1 - promo["discount_pct"] / 100), 2))
    assert (columns["price"][~columns["on_promotion"]] == catalog.products["price"][~columns["on_promotion"]]).all()


def test_keep_mask_drops_exactly_the_rejected_readings() -> None:
    catalog = build_catalog(4, 5, 1)
    state = initial_state(catalog, NOW)
    keep = np.ones(20, dtype=bool)
    keep[[0, 7, 19]] = False
    nothing = np.zeros_like(state.on_hand)
    tick = Tick(nothing, nothing, nothing, state.on_hand.copy(), 1.0, NOW)
    batch = ReadingEncoder(catalog).encode(reading_columns(catalog, state, tick), NOW, keep=keep)
    kept = [json.loads(line) for line in batch.lines()]
    assert len(kept) == 17
    assert [r["on_hand"] for r in kept] == state.on_hand.ravel()[keep].tolist()


def test_vectorised_validation_counts_the_first_failed_rule() -> None:
    on_hand = np.array([5, -1, 3, 2_000_000, 4, 1])
    sold = np.array([0, 0, -2, 0, 1, 0])
    expired = np.array([0, 0, 0, 0, -1, 0])
    pack = np.array([6, 6, 6, 6, 6, 6])
    price = np.array([1.5, 2.0, 3.0])  # per product: the same in both stores
    columns = {"on_hand": on_hand, "units_sold": sold, "units_expired": expired, "period_hours": 1.0}
    report = validate_batch({**columns, "case_pack": pack, "price": price})
    assert report.valid.tolist() == [True, False, False, False, False, True]
    assert report.rejected == {
        "negative_on_hand": 1,
        "on_hand_too_large": 1,
        "negative_units_sold": 1,
        "negative_units_expired": 1,
    }
    assert report.rejected_count == 4
    clean = {"on_hand": np.ones(6), "units_sold": np.zeros(6), "units_expired": np.zeros(6), "period_hours": 1.0}
    free = validate_batch({**clean, "case_pack": pack, "price": np.array([1.0, 0.0, 1.0])})
    assert free.rejected == {"price_out_of_range": 2}  # product 2 in each of the two stores
    assert free.valid.tolist() == [True, False, True, True, False, True]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("on_hand", -1),
        ("case_pack", 0),
        ("units_expired", -3),
        ("period_hours", 0),
        ("price", 0),
        ("store_id", "store 1"),
        ("schema_version", 2),
        ("units_lost", 0),  # not a field of a reading: the simulator's record keeps it
        ("reorder_point", 5),
        ("observed_at", "yesterday"),
    ],
)
def test_the_schema_rejects_bad_fields(field: str, value: object) -> None:
    InventoryReading.model_validate(GOOD_READING | GOOD_NUMBERS)
    with pytest.raises(ValidationError):
        InventoryReading.model_validate({**GOOD_READING, **GOOD_NUMBERS, field: value})


def test_event_ids_are_uuid4() -> None:
    import uuid

    ids = random_event_ids(100).view("S36").ravel().astype(str)
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert len(set(ids)) == 100


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert format_timestamp(NOW) == "2026-05-01T12:30:15.123Z"


GOOD_READING = {
    "event_id": "0b0e2f2c-3f7e-4a6b-9c1d-2e3f4a5b6c7d",
    "store_id": "S0001",
    "product_id": "P0001",
    "product_name": "Milk",
    "category": "dairy",
    "on_promotion": False,
    "observed_at": "2026-01-01T00:00:00.000Z",
}
GOOD_NUMBERS = {"on_hand": 3, "units_sold": 1, "units_expired": 0, "period_hours": 1.0, "case_pack": 6, "price": 1.25}
NUMBERS = st.integers(min_value=-5, max_value=MAX_UNITS + 5) | st.sampled_from([0, 1, MAX_UNITS, MAX_CASE_PACK])


@given(
    on_hand=NUMBERS,
    units_sold=NUMBERS,
    units_expired=NUMBERS,
    period_hours=st.floats(min_value=-1, max_value=MAX_PERIOD_HOURS + 1, allow_nan=False) | st.sampled_from([0.0, 1.0]),
    case_pack=st.integers(min_value=-2, max_value=MAX_CASE_PACK + 2),
    price=st.floats(min_value=-1, max_value=MAX_PRICE + 1, allow_nan=False) | st.sampled_from([0.0, 0.01, MAX_PRICE]),
)
@settings(max_examples=examples(400), deadline=None)
def test_the_model_and_the_vectorised_check_apply_the_same_rules(
    on_hand: int, units_sold: int, units_expired: int, period_hours: float, case_pack: int, price: float
) -> None:
    numbers = {
        "on_hand": on_hand,
        "units_sold": units_sold,
        "units_expired": units_expired,
        "period_hours": period_hours,
        "case_pack": case_pack,
        "price": price,
    }
    batch = validate_batch({name: np.array([numbers[name]]) for name in NUMERIC_FIELDS})
    refusal = model_refusal({**GOOD_READING, **numbers})
    if refusal is None:
        assert batch.valid[0], batch.rejected
    else:
        assert not batch.valid[0]
        (reason,) = batch.rejected
        assert reason in refusal  # the same first rule, by name


def model_refusal(reading: dict[str, object]) -> str | None:
    try:
        InventoryReading.model_validate(reading)
    except ValidationError as exc:
        return str(exc)
    return None


# -- a run, a chunk of stores at a time --------------------------------------------------------

HOUR = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_the_encoder_names_a_chunks_rows_by_their_stores() -> None:
    catalog = build_catalog(10, 4, 2)
    state = initial_state(catalog, HOUR, chunk=1, stores=(6, 10))
    tick = advance(state, 1.0)
    batch = ReadingEncoder(catalog).encode(reading_columns(catalog, state, tick), HOUR, first_store=6)
    readings = [InventoryReading.model_validate_json(line) for line in batch.lines()]
    assert [r.store_id for r in readings[::4]] == ["S0007", "S0008", "S0009", "S0010"]
    assert [r.product_id for r in readings[:4]] == ["P0001", "P0002", "P0003", "P0004"]
    assert [r.on_hand for r in readings] == tick.on_hand.ravel().tolist()


class StubFirehose:
    """Accepts every record, except those ``fail`` picks (by their readings), which it always refuses."""

    def __init__(self, fail: Callable[[bytes], bool] | None = None) -> None:
        self.fail = fail
        self.lines: list[bytes] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        responses = []
        for record in Records:
            data = gzip.decompress(record["Data"])
            if self.fail is not None and self.fail(data):
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "busy"})
            else:
                self.lines += data.splitlines()
                responses.append({"RecordId": "x"})
        return {"FailedPutCount": sum("ErrorCode" in r for r in responses), "RequestResponses": responses}


def sender_for(stub: StubFirehose) -> FirehoseSender:
    return FirehoseSender(stub, "stream", retry=RetryPolicy(max_attempts=2, sleep=lambda _: None))


class Watched(Simulation):
    """Records the shape of every chunk state a run loads."""

    shapes: list[tuple[int, int]]

    def load(self, index: int) -> SimulationState:
        state = super().load(index)
        self.shapes.append(state.shape)
        return state


def test_a_run_holds_a_chunk_at_a_time_and_reads_every_store_product_once() -> None:
    catalog = build_catalog(23, 7, 3)
    base = Simulation.in_memory(catalog, HOUR, chunk_pairs=35)  # 5 stores (35 pairs) a chunk: 5 chunks
    simulation = Watched(base.catalog, base.manifest, base.chunks, base.start)
    simulation.shapes = []
    columns_seen: list[int] = []

    def watch(columns: dict[str, Any]) -> None:
        columns_seen.extend(np.size(v) for v in columns.values())

    stub = StubFirehose()
    progress: list[tuple[int, int]] = []
    at = HOUR + timedelta(hours=1)
    report = run_readings(simulation, sender_for(stub), [at], corrupt=watch, progress=lambda *p: progress.append(p))
    assert simulation.shapes == [(5, 7)] * 4 + [(3, 7)]
    assert max(columns_seen) == 35  # no array of the run's readings is larger than a chunk
    readings = [json.loads(line) for line in stub.lines]
    assert sorted((r["store_id"], r["product_id"]) for r in readings) == sorted(
        (s, p) for s in catalog.stores["store_id"] for p in catalog.products["product_id"]
    )
    assert {r["observed_at"] for r in readings} == {format_timestamp(at)}  # one reading time for every chunk
    assert (report.rows_sent, report.rows_generated, report.ticks) == (161, 161, 1)
    assert report.hours_simulated == pytest.approx(1.0)
    assert report.units_sold == sum(r["units_sold"] for r in readings)
    assert report.sim_clock == at.isoformat()
    assert progress[-1] == (5, 5)
    assert simulation.manifest.last_observed_at == at
    assert isinstance(simulation.chunks, MemoryChunks)
    saved = simulation.chunks.states
    assert sorted(saved) == [0, 1, 2, 3, 4]
    assert {s.ticks for s in saved.values()} == {1}
    # the next run continues every chunk from where it stopped, a minute later
    again = run_readings(simulation, sender_for(stub), [at + timedelta(minutes=1)])
    assert again.hours_simulated == pytest.approx(1 / 60)
    assert {s.ticks for s in saved.values()} == {2}


def test_a_chunk_whose_readings_are_lost_is_saved_and_the_run_stops() -> None:
    catalog = build_catalog(12, 5, 1)
    simulation = Simulation.in_memory(catalog, HOUR, chunk_pairs=15)  # 3 stores a chunk: 4 chunks
    stub = StubFirehose(fail=lambda data: b'"S0005"' in data)  # chunk 1's readings never arrive
    with pytest.raises(DeliveryError, match="15 readings were not delivered") as info:
        run_readings(simulation, sender_for(stub), [HOUR + timedelta(hours=1)])
    assert info.value.lost == 15
    assert isinstance(simulation.chunks, MemoryChunks)
    # the loss is noticed while the next chunk is sent: both are saved (their sales happened), no more is read
    assert sorted(simulation.chunks.states) == [0, 1, 2]
    assert simulation.manifest.last_observed_at == HOUR + timedelta(hours=1)
    assert len(stub.lines) == 30  # chunks 0 and 2


def test_a_missing_stream_stops_the_run_with_its_reason() -> None:
    class Missing:
        def put_record_batch(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "PutRecordBatch")

    simulation = Simulation.in_memory(build_catalog(6, 5, 1), HOUR, chunk_pairs=15)  # 2 chunks
    with pytest.raises(DeliveryError, match="cannot send to delivery stream gone") as info:
        run_readings(simulation, FirehoseSender(Missing(), "gone"), [HOUR + timedelta(hours=1)])
    assert info.value.lost == 30


def test_a_whole_catalog_state_streams_in_place() -> None:
    catalog = build_catalog(4, 3, 8)
    state = initial_state(catalog, HOUR)
    stub = StubFirehose()
    report = run_readings(
        Simulation.of_state(catalog, state), sender_for(stub), [HOUR + timedelta(hours=h) for h in (1, 2)]
    )
    assert (report.rows_sent, report.ticks, state.ticks) == (24, 2, 2)
    assert report.hours_simulated == pytest.approx(2.0)
    last = [json.loads(line) for line in stub.lines[-12:]]
    assert [r["on_hand"] for r in last] == state.on_hand.ravel().tolist()
