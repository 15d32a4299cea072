from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from storeops.clock import format_timestamp
from storeops.contracts.reading import (
    MAX_CASE_PACK,
    MAX_PERIOD_HOURS,
    MAX_UNITS,
    NUMERIC_FIELDS,
    InventoryReading,
    validate_batch,
)
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder, random_event_ids
from storeops.stores.ingest import reading_columns
from storeops.stores.simulation import Tick, advance, initial_state

NOW = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


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
    assert [r.units_lost for r in readings] == tick.units_lost.ravel().tolist()
    assert {r.period_hours for r in readings} == {2.0}
    assert {r.schema_version for r in readings} == {2}
    assert readings[10].store_id == catalog.stores["store_id"][1]
    assert readings[10].product_id == catalog.products["product_id"][1]
    assert readings[10].product_name == catalog.products["name"][1]
    assert readings[10].reorder_point == state.reorder_point[1, 1]
    assert json.loads(lines[0])["observed_at"] == "2026-05-01T12:30:15.123Z"
    assert len({r.event_id for r in readings}) == 63


def test_keep_mask_drops_exactly_the_rejected_readings() -> None:
    catalog = build_catalog(4, 5, 1)
    state = initial_state(catalog, NOW)
    keep = np.ones(20, dtype=bool)
    keep[[0, 7, 19]] = False
    nothing = np.zeros_like(state.on_hand)
    tick = Tick(nothing, nothing, state.on_hand.copy(), 1.0, NOW)
    batch = ReadingEncoder(catalog).encode(reading_columns(catalog, state, tick), NOW, keep=keep)
    kept = [json.loads(line) for line in batch.lines()]
    assert len(kept) == 17
    assert [r["on_hand"] for r in kept] == state.on_hand.ravel()[keep].tolist()


def test_vectorised_validation_counts_the_first_failed_rule() -> None:
    on_hand = np.array([5, -1, 3, 2_000_000, 4])
    sold = np.array([0, 0, -2, 0, 1])
    rp = np.array([2, 2, 2, 2, 9])
    target = np.array([10, 10, 10, 10, 9])
    pack = np.array([6, 6, 6, 6, 6])
    columns = {"on_hand": on_hand, "units_sold": sold, "units_lost": np.zeros(5), "period_hours": 1.0}
    report = validate_batch({**columns, "reorder_point": rp, "target_stock": target, "case_pack": pack})
    assert report.valid.tolist() == [True, False, False, False, False]
    assert report.rejected == {
        "negative_on_hand": 1,
        "on_hand_too_large": 1,
        "negative_units_sold": 1,
        "target_not_above_reorder_point": 1,
    }
    assert report.rejected_count == 4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("on_hand", -1),
        ("case_pack", 0),
        ("units_lost", -3),
        ("period_hours", 0),
        ("store_id", "store 1"),
        ("schema_version", 1),
        ("observed_at", "yesterday"),
    ],
)
def test_the_schema_rejects_bad_fields(field: str, value: object) -> None:
    good = {
        "event_id": "0b0e2f2c-3f7e-4a6b-9c1d-2e3f4a5b6c7d",
        "store_id": "S0001",
        "product_id": "P0001",
        "product_name": "Milk",
        "category": "dairy",
        "case_pack": 6,
        "on_hand": 3,
        "reorder_point": 2,
        "target_stock": 12,
        "units_sold": 1,
        "units_lost": 0,
        "period_hours": 1.0,
        "observed_at": "2026-01-01T00:00:00.000Z",
        "schema_version": 2,
    }
    InventoryReading.model_validate(good)
    with pytest.raises(ValidationError):
        InventoryReading.model_validate({**good, field: value})


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
    "observed_at": "2026-01-01T00:00:00.000Z",
}
NUMBERS = st.integers(min_value=-5, max_value=MAX_UNITS + 5) | st.sampled_from([0, 1, MAX_UNITS, MAX_CASE_PACK])


@given(
    on_hand=NUMBERS,
    units_sold=NUMBERS,
    units_lost=NUMBERS,
    period_hours=st.floats(min_value=-1, max_value=MAX_PERIOD_HOURS + 1, allow_nan=False) | st.sampled_from([0.0, 1.0]),
    reorder_point=NUMBERS,
    target_stock=NUMBERS,
    case_pack=st.integers(min_value=-2, max_value=MAX_CASE_PACK + 2),
)
@settings(max_examples=400, deadline=None)
def test_the_model_and_the_vectorised_check_apply_the_same_rules(
    on_hand: int,
    units_sold: int,
    units_lost: int,
    period_hours: float,
    reorder_point: int,
    target_stock: int,
    case_pack: int,
) -> None:
    numbers = {
        "on_hand": on_hand,
        "units_sold": units_sold,
        "units_lost": units_lost,
        "period_hours": period_hours,
        "reorder_point": reorder_point,
        "target_stock": target_stock,
        "case_pack": case_pack,
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


def test_a_target_at_or_below_the_reorder_point_is_refused_by_both_paths() -> None:
    numbers = {
        "on_hand": 3,
        "units_sold": 0,
        "units_lost": 0,
        "period_hours": 1.0,
        "reorder_point": 10,
        "target_stock": 10,
        "case_pack": 6,
    }
    with pytest.raises(ValidationError, match="target_not_above_reorder_point"):
        InventoryReading.model_validate({**GOOD_READING, **numbers})
    report = validate_batch({name: np.array([numbers[name]]) for name in NUMERIC_FIELDS})
    assert report.rejected == {"target_not_above_reorder_point": 1}
