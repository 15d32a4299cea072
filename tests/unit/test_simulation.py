from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storeops.stores.catalog import build_catalog
from storeops.stores.simulation import (
    DELIVERY_HORIZON_DAYS,
    MAX_PERIOD_HOURS,
    DeliveryMemory,
    SimulationState,
    advance,
    advance_to,
    apply_deliveries,
    daily_factor,
    initial_state,
)

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def run(seed: int, ticks: int, hours: float = 1.0) -> tuple[SimulationState, list[np.ndarray]]:
    catalog = build_catalog(20, 15, seed)
    state = initial_state(catalog, START)
    sold = [advance(state, hours).units_sold for _ in range(ticks)]
    return state, sold


def test_catalog_is_deterministic_and_well_formed() -> None:
    a, b = build_catalog(30, 12, 3), build_catalog(30, 12, 3)
    assert a.stores.equals(b.stores)
    assert a.products.equals(b.products)
    assert a.stores["store_id"].is_unique
    assert a.products["product_id"].is_unique
    assert (a.products["case_pack"] >= 1).all()
    assert set(a.stores["region"]) <= {"north", "south", "east", "west", "central"}
    assert not build_catalog(30, 12, 4).products.equals(a.products)


def test_same_seed_gives_the_same_sales_and_stock() -> None:
    s1, sold1 = run(11, 48)
    s2, sold2 = run(11, 48)
    assert all(np.array_equal(x, y) for x, y in zip(sold1, sold2, strict=True))
    assert np.array_equal(s1.on_hand, s2.on_hand)
    _, sold3 = run(12, 48)
    assert not all(np.array_equal(x, y) for x, y in zip(sold1, sold3, strict=True))


def test_stock_never_goes_negative_and_sales_match_the_stock_change() -> None:
    catalog = build_catalog(25, 20, 5)
    state = initial_state(catalog, START)
    for _ in range(200):  # long enough to empty many shelves
        before = state.on_hand.copy()
        tick = advance(state, 3.0)
        assert (state.on_hand >= 0).all()
        assert (tick.units_sold >= 0).all()
        assert np.array_equal(before - tick.units_sold, state.on_hand)
    assert (state.on_hand == 0).any()


def test_initial_policy_is_consistent() -> None:
    state = initial_state(build_catalog(40, 30, 1), START)
    assert (state.target_stock > state.reorder_point).all()
    assert (state.on_hand >= 0).all()
    assert (state.on_hand <= state.target_stock).all()
    assert (state.on_hand <= state.reorder_point).any()  # some shortages from the start


def test_state_round_trips_and_continues_identically() -> None:
    catalog = build_catalog(10, 8, 9)
    straight = initial_state(catalog, START)
    for _ in range(5):
        advance(straight, 1.0)
    resumed = initial_state(catalog, START)
    for _ in range(2):
        advance(resumed, 1.0)
    resumed = SimulationState.from_bytes(resumed.to_bytes())
    for _ in range(3):
        advance(resumed, 1.0)
    assert np.array_equal(straight.on_hand, resumed.on_hand)
    assert straight.sim_clock == resumed.sim_clock
    assert resumed.ticks == 5


def test_time_compression_scales_demand() -> None:
    _, one_hour = run(3, 3, hours=1.0)
    _, four_hours = run(3, 3, hours=4.0)
    assert sum(int(s.sum()) for s in four_hours) > 2 * sum(int(s.sum()) for s in one_hour)


def test_daily_pattern_is_quiet_at_night_and_busy_in_the_afternoon() -> None:
    assert daily_factor(np.array([3.0]))[0] < 0.2 < daily_factor(np.array([16.0]))[0]
    assert 0.6 < float(daily_factor(np.arange(0, 24, 0.25)).mean()) < 1.0


def test_delivered_units_are_added_to_stock() -> None:
    state = initial_state(build_catalog(3, 3, 1), START)
    before = state.on_hand.copy()
    apply_deliveries(state, np.array([0, 2]), np.array([1, 1]), np.array([12, 6]))
    assert state.on_hand[0, 1] == before[0, 1] + 12
    assert state.on_hand[2, 1] == before[2, 1] + 6
    with pytest.raises(ValueError):
        apply_deliveries(state, np.array([0]), np.array([0]), np.array([-1]))


def test_a_reading_covers_exactly_the_time_since_the_previous_one() -> None:
    state = initial_state(build_catalog(50, 40, 3), START)
    first = advance_to(state, START + timedelta(seconds=90))
    assert first.period_hours == pytest.approx(90 / 3600)
    assert state.sim_clock == START + timedelta(seconds=90)
    second = advance_to(state, START + timedelta(hours=2, seconds=90))
    assert second.period_hours == pytest.approx(2.0)
    assert int(second.units_sold.sum()) > 10 * int(first.units_sold.sum())  # 80x the time, far more sales
    with pytest.raises(ValueError, match="forward"):
        advance_to(state, START)


def test_a_long_pause_counts_as_closed_hours() -> None:
    state = initial_state(build_catalog(5, 5, 3), START)
    tick = advance_to(state, START + timedelta(days=3))
    assert tick.period_hours == MAX_PERIOD_HOURS
    assert state.sim_clock == START + timedelta(days=3)


def test_lost_sales_are_the_demand_an_empty_shelf_could_not_serve() -> None:
    empty = initial_state(build_catalog(30, 20, 4), START)
    empty.on_hand[:] = 0
    tick = advance(empty, 3.0)
    assert int(tick.units_sold.sum()) == 0
    assert int(tick.units_lost.sum()) > 0
    stocked = initial_state(build_catalog(30, 20, 4), START)  # the same seed: the same customers
    shelves = stocked.on_hand.copy()
    served = advance(stocked, 3.0)
    assert np.array_equal(served.units_sold, np.minimum(tick.units_lost, shelves))
    assert np.array_equal(served.units_sold + served.units_lost, tick.units_lost)


def test_the_delivery_memory_forgets_exactly_the_days_past_the_horizon() -> None:
    memory = DeliveryMemory()
    for day in range(1, 31):  # a month of stops, a thousand a day
        for stop in range(1000):
            memory.add_stop(f"2026-01-{day:02d}", f"load-{day}-{stop}#1")
        memory.forget_before(f"2026-01-{max(1, day - DELIVERY_HORIZON_DAYS):02d}")
    assert sorted(memory.stops) == [f"2026-01-{d:02d}" for d in range(30 - DELIVERY_HORIZON_DAYS, 31)]
    assert memory.has_stop("2026-01-30", "load-30-999#1")
    restored = DeliveryMemory.from_json(memory.to_json())
    assert restored.stops == memory.stops
