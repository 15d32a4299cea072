from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from storeops.stores.catalog import build_catalog
from storeops.stores.simulation import SimulationState, advance, apply_deliveries, daily_factor, initial_state

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


def test_deliveries_are_applied_once() -> None:
    state = initial_state(build_catalog(3, 3, 1), START)
    before = state.on_hand.copy()
    assert apply_deliveries(state, "load-1", np.array([0, 2]), np.array([1, 1]), np.array([12, 6]))
    assert not apply_deliveries(state, "load-1", np.array([0, 2]), np.array([1, 1]), np.array([12, 6]))
    assert state.on_hand[0, 1] == before[0, 1] + 12
    assert state.on_hand[2, 1] == before[2, 1] + 6
    with pytest.raises(ValueError):
        apply_deliveries(state, "load-2", np.array([0]), np.array([0]), np.array([-1]))
