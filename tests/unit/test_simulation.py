"""The store simulation: shelves, perishables, audits, deliveries, chunks and their persistence."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from storeops.calendar import AUDIT_HOURS, local_hour, opening_hours
from storeops.clock import format_timestamp
from storeops.exceptions import StoreOpsError
from storeops.ledger import LedgerRow, window_record_key, write_rows
from storeops.stores.catalog import build_catalog
from storeops.stores.deliveries import Delivery, DueDeliveries, LedgerDeliveries, apply_due
from storeops.stores.demand import DemandModel, store_products
from storeops.stores.readings import take_reading
from storeops.stores.simulation import (
    CHUNK_PAIRS,
    DELIVERY_HORIZON_DAYS,
    MAX_PERIOD_HOURS,
    ChunkLayout,
    DeliveryMemory,
    SimulationState,
    advance,
    advance_to,
    apply_deliveries,
    initial_state,
    restock,
    shelf_capacity,
)
from storeops.stores.state import Simulation, SimulationConfig, SimulationStore

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, 06:00 in London (GMT)


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
    assert set(a.stores["format"]) <= {"superstore", "express"}
    assert (a.products["unit_cost"] < a.products["price"]).all()
    perishable = a.products["category"].isin(["dairy", "bakery", "produce"])
    assert (a.products.loc[perishable, "shelf_life_days"] > 0).all()
    assert (a.products.loc[~perishable, "shelf_life_days"] == 0).all()
    assert not build_catalog(30, 12, 4).products.equals(a.products)


def test_rates_have_a_long_tail_of_slow_movers() -> None:
    rates = build_catalog(10, 2000, 1).products["rate"]
    assert (rates < 1.0).mean() > 0.35  # many products sell less than one a day at a store of scale 1
    assert rates.max() > 20 * rates.median()


def test_same_seed_gives_the_same_sales_and_stock() -> None:
    s1, sold1 = run(11, 48)
    s2, sold2 = run(11, 48)
    assert all(np.array_equal(x, y) for x, y in zip(sold1, sold2, strict=True))
    assert np.array_equal(s1.on_hand, s2.on_hand)
    _, sold3 = run(12, 48)
    assert not all(np.array_equal(x, y) for x, y in zip(sold1, sold3, strict=True))


def test_stock_is_conserved_never_negative_and_never_above_the_shelf() -> None:
    catalog = build_catalog(25, 20, 5)
    state = initial_state(catalog, START)
    for hour in range(24 * 10):  # long enough to empty shelves and expire perishables
        before = state.on_hand.copy()
        tick = advance(state, 1.0)
        arrived = restock(state) if hour % 48 == 0 else 0
        assert (state.on_hand >= 0).all()
        assert (state.on_hand <= state.capacity).all()
        assert (before - tick.units_sold - tick.units_expired).sum() + arrived == state.on_hand.sum()
        assert np.array_equal(state.cohorts.sum(axis=-1), state.on_hand[:, state.perishable_columns])
    assert (state.on_hand == 0).any()


def test_a_new_chunk_starts_between_half_full_and_full_shelves() -> None:
    state = initial_state(build_catalog(40, 30, 1), START)
    assert (state.on_hand <= state.capacity).all()
    assert (state.on_hand >= np.floor(state.capacity * 0.5)).all()
    assert np.array_equal(state.cohorts.sum(axis=-1), state.on_hand[:, state.perishable_columns])


def test_the_planogram_gives_every_pair_whole_cases_by_its_sales() -> None:
    catalog = build_catalog(30, 40, 2)
    state = initial_state(catalog, START)
    case = catalog.products["case_pack"].to_numpy()
    assert (state.capacity % case[None, :] == 0).all()
    assert (state.capacity >= case[None, :]).all()
    fast = state.model.fixed.daily_mean > np.quantile(state.model.fixed.daily_mean, 0.9)
    slow = state.model.fixed.daily_mean < np.quantile(state.model.fixed.daily_mean, 0.1)
    assert state.capacity[fast].mean() > state.capacity[slow].mean()


def test_state_round_trips_and_continues_identically() -> None:
    catalog = build_catalog(10, 8, 9)
    straight = initial_state(catalog, START)
    for _ in range(30):
        advance(straight, 1.0)
    resumed = initial_state(catalog, START)
    for _ in range(20):
        advance(resumed, 1.0)
    resumed = SimulationState.from_bytes(resumed.to_bytes(), catalog)
    for _ in range(10):
        advance(resumed, 1.0)
    assert np.array_equal(straight.on_hand, resumed.on_hand)
    assert np.array_equal(straight.cohorts, resumed.cohorts)
    assert straight.sim_clock == resumed.sim_clock
    assert resumed.ticks == 30


def test_delivered_units_fill_the_shelf_and_what_does_not_fit_is_refused() -> None:
    state = initial_state(build_catalog(3, 3, 1), START)
    state.on_hand[:] = 0
    state.cohorts[:] = 0
    room = int(state.capacity[0, 1])
    refused = apply_deliveries(state, np.array([0, 0, 2]), np.array([1, 1, 1]), np.array([room, 5, 1]))
    assert state.on_hand[0, 1] == room  # full
    assert refused[0, 1] == 5  # the second drop did not fit
    assert state.on_hand[2, 1] == 1
    assert refused[2, 1] == 0
    with pytest.raises(ValueError):
        apply_deliveries(state, np.array([0]), np.array([0]), np.array([-1]))


def test_a_reading_covers_exactly_the_time_since_the_previous_one() -> None:
    state = initial_state(build_catalog(50, 40, 3), START + timedelta(hours=4))  # 10:00, the stores are open
    at = START + timedelta(hours=4)
    first = advance_to(state, at + timedelta(seconds=90))
    assert first.period_hours == pytest.approx(90 / 3600)
    assert state.sim_clock == at + timedelta(seconds=90)
    second = advance_to(state, at + timedelta(hours=2, seconds=90))
    assert second.period_hours == pytest.approx(2.0)
    assert int(second.units_demanded.sum()) > 10 * int(first.units_demanded.sum())  # 80x the time, far more demand
    with pytest.raises(ValueError, match="forward"):
        advance_to(state, START)


def test_a_long_pause_counts_as_closed_hours() -> None:
    state = initial_state(build_catalog(5, 5, 3), START)
    tick = advance_to(state, START + timedelta(days=3))
    assert tick.period_hours == MAX_PERIOD_HOURS
    assert state.sim_clock == START + timedelta(days=3)


def test_lost_sales_are_the_demand_an_empty_shelf_could_not_serve() -> None:
    at = START + timedelta(hours=5)
    empty = initial_state(build_catalog(30, 20, 4), at)
    empty.on_hand[:] = 0
    empty.cohorts[:] = 0
    tick = advance(empty, 3.0)
    assert int(tick.units_sold.sum()) == 0
    assert int(tick.units_lost.sum()) > 0
    stocked = initial_state(build_catalog(30, 20, 4), at)  # the same seed: the same customers
    served = advance(stocked, 3.0)
    assert np.array_equal(served.units_demanded, tick.units_lost)
    assert (served.units_sold <= served.units_demanded).all()


def test_an_hours_demand_is_the_same_however_it_is_cut_and_whenever_the_run_started() -> None:
    catalog = build_catalog(12, 10, 8)
    hour = START + timedelta(hours=11)  # 17:00 on a Monday: busy
    whole = DemandModel(catalog, 0, 12).draw(hour)
    minutes = sum(DemandModel(catalog, 0, 12).draw(hour, m / 60, (m + 1) / 60) for m in range(60))
    assert whole.sum() > 0
    assert np.array_equal(whole, minutes)  # the same purchases, read a minute at a time
    late = initial_state(catalog, hour)  # a simulation started just before that hour
    early = initial_state(catalog, START)
    for h in range(1, 12):
        advance_to(early, START + timedelta(hours=h))
    assert np.array_equal(advance_to(late, hour + timedelta(hours=1)).units_demanded, whole)
    assert np.array_equal(advance_to(early, hour + timedelta(hours=1)).units_demanded, whole)


def test_nobody_buys_while_a_store_is_closed() -> None:
    catalog = build_catalog(40, 20, 2)
    model = DemandModel(catalog, 0, 40)
    night = datetime(2026, 3, 3, 2, tzinfo=UTC)  # 02:00 in London
    assert model.hour_intensity(night).sum() == 0
    easter = datetime(2026, 4, 5, 11, tzinfo=UTC)  # Easter Sunday, 12:00 BST: superstores closed
    superstore = catalog.stores["format"].to_numpy() == "superstore"
    assert superstore.any()
    assert (~superstore).any()
    intensity = model.hour_intensity(easter)
    assert intensity[superstore].sum() == 0
    assert intensity[~superstore].sum() > 0


def test_perishables_expire_at_local_midnight_first_in_first_out() -> None:
    catalog = build_catalog(6, 30, 3)
    state = initial_state(catalog, datetime(2026, 3, 2, 23, 30, tzinfo=UTC))  # 23:30 GMT
    state.on_hand[:] = 0
    state.cohorts[:] = 0
    column = int(state.perishable_columns[0])
    state.cohorts[:, 0, 0] = 5  # expires at the end of today
    state.cohorts[:, 0, 2] = 7
    state.on_hand[:, column] = 12
    tick = advance_to(state, datetime(2026, 3, 3, 0, 30, tzinfo=UTC))
    sold = tick.units_sold[:, column]
    assert np.array_equal(tick.units_expired[:, column], np.maximum(5 - sold, 0))  # sold first, the rest thrown away
    assert (state.on_hand[:, column] == 12 - sold - tick.units_expired[:, column]).all()
    assert int(tick.units_expired[:, [c for c in range(30) if c != column]].sum()) == 0


def test_audits_read_open_stores_at_the_audit_hours_before_deliveries() -> None:
    catalog = build_catalog(20, 10, 5)
    day = datetime(2026, 3, 3, 0, tzinfo=UTC)  # a Tuesday in GMT: local = UTC
    state = initial_state(catalog, day)
    audits = []
    for h in range(1, 25):
        audits += advance_to(state, day + timedelta(hours=h)).audits
    assert [a.at.hour for a in audits] == list(AUDIT_HOURS)
    for audit in audits:
        local = local_hour(audit.at)
        expected = [opening_hours(f, local.day).mask()[local.hour] for f in catalog.stores["format"]]
        assert audit.open_stores.tolist() == expected
    state.on_hand[:] = 0
    state.cohorts[:] = 0
    tick, arrivals = take_reading(state, day + timedelta(hours=24 + 11), lambda s, at: _fill(s))
    assert arrivals.units > 0
    assert tick.audits[-1].empty[tick.audits[-1].open_stores].all()  # the audit saw the shelves before the truck


def _fill(state: SimulationState) -> Any:
    from storeops.stores.simulation import Arrivals

    return Arrivals(restock(state), None)


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


# -- chunks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stores", "products", "per_chunk", "chunks"),
    [(2000, 1000, 250, 8), (10_000, 5000, 50, 200), (3, 400_000, 1, 3), (100, 50, 5000, 1), (7, 1, CHUNK_PAIRS, 1)],
)
def test_chunks_cover_every_store_once_and_hold_a_chunk_of_pairs(
    stores: int, products: int, per_chunk: int, chunks: int
) -> None:
    layout = ChunkLayout.for_shape(stores, products)
    assert (layout.chunk_stores, layout.count) == (per_chunk, chunks)
    covered = [store for _, first, stop in layout for store in range(first, stop)]
    assert covered == list(range(stores))
    assert all(stop - first == 1 or (stop - first) * products <= CHUNK_PAIRS for _, first, stop in layout)
    assert [index for index, _, _ in layout] == list(range(chunks))


def test_a_stores_demand_and_shelves_are_the_same_whatever_chunk_it_is_in() -> None:
    catalog = build_catalog(12, 9, 4)
    whole, part = store_products(catalog, 0, 12), store_products(catalog, 5, 8)
    assert np.array_equal(whole.daily_mean[5:8], part.daily_mean)
    assert part.daily_mean.shape == (3, 9)  # never more than the stores asked for
    assert np.array_equal(shelf_capacity(catalog, 0, 12, whole)[5:8], shelf_capacity(catalog, 5, 8, part))
    with pytest.raises(ValueError):
        store_products(catalog, 10, 13)


def test_the_catalog_holds_nothing_of_stores_x_products() -> None:
    catalog = build_catalog(300, 200, 1)
    sizes = [len(column) for frame in (catalog.stores, catalog.products) for _, column in frame.items()]
    assert max(sizes) == 300


def test_a_chunk_round_trips_and_continues_identically() -> None:
    catalog = build_catalog(30, 8, 9)
    layout = ChunkLayout(30, 8, 7)
    first, stop = layout.bounds(2)
    straight = initial_state(catalog, START, chunk=2, stores=(first, stop))
    resumed = initial_state(catalog, START, chunk=2, stores=(first, stop))
    for _ in range(25):
        advance(straight, 1.0)
    for _ in range(20):
        advance(resumed, 1.0)
    resumed.last_observed_at = resumed.sim_clock
    resumed.deliveries.add_stop("2026-03-02", "load-1#2")
    restored = SimulationState.from_bytes(resumed.to_bytes(), catalog)
    assert (restored.chunk, restored.first_store, restored.stop_store, restored.shape) == (2, 14, 21, (7, 8))
    assert np.array_equal(restored.on_hand, resumed.on_hand)
    assert np.array_equal(restored.capacity, resumed.capacity)  # derived again, not stored
    assert (restored.sim_clock, restored.ticks, restored.last_observed_at) == (
        resumed.sim_clock,
        20,
        resumed.last_observed_at,
    )
    assert restored.deliveries.has_stop("2026-03-02", "load-1#2")
    for _ in range(5):
        advance(restored, 1.0)
    assert np.array_equal(straight.on_hand, restored.on_hand)
    assert restored.ticks == 25


def test_a_saved_chunk_of_another_catalog_or_format_is_refused() -> None:
    catalog = build_catalog(10, 8, 9)
    data = initial_state(catalog, START, chunk=1, stores=(5, 10)).to_bytes()
    with pytest.raises(ValueError, match="does not belong"):
        SimulationState.from_bytes(data, build_catalog(10, 8, 10))
    with pytest.raises(ValueError, match="does not belong"):
        SimulationState.from_bytes(data, build_catalog(10, 9, 9))
    old = io.BytesIO()
    np.savez_compressed(old, on_hand=np.zeros((10, 8)), meta=np.array('{"format": 3}'))
    with pytest.raises(ValueError, match="format 3"):
        SimulationState.from_bytes(old.getvalue(), catalog)


def test_chunks_are_independent_and_deterministic() -> None:
    catalog = build_catalog(20, 10, 6)
    at = START + timedelta(hours=4)

    def demand(order: list[int]) -> dict[tuple[int, int], np.ndarray]:
        simulation = Simulation.in_memory(catalog, at, chunk_pairs=50)  # 5 stores a chunk: 4 chunks
        seen = {}
        for hour in (1, 2, 3):
            for index in order:
                state = simulation.load(index)
                tick, _ = take_reading(state, at + timedelta(hours=hour))
                simulation.save(state)
                seen[index, hour] = tick.units_demanded
        return seen

    forward = demand([0, 1, 2, 3])
    assert forward[0, 1].shape == (5, 10)
    backward, alone = demand([3, 2, 1, 0]), demand([2])  # another order, or the other chunks not read at all
    assert all(np.array_equal(forward[key], backward[key]) for key in forward)
    assert all(np.array_equal(forward[key], alone[key]) for key in alone)
    # each chunk has a demand stream of its own: same-sized chunks do not repeat each other
    assert not np.array_equal(forward[1, 2], forward[2, 2])
    # an hour's demand does not depend on the stock before it: other replenishment, same customers
    state = initial_state(catalog, at, chunk=3, stores=(15, 20))
    take_reading(state, at + timedelta(hours=1))
    state.on_hand[:] = 0
    state.cohorts[:] = 0
    second, _ = take_reading(state, at + timedelta(hours=2))
    assert np.array_equal(second.units_lost, forward[3, 2])


# -- a fake S3 (the calls the simulation store and the ledger make) ----------------------------


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data

    def iter_lines(self) -> list[bytes]:
        return self.data.splitlines()


class FakeS3:
    """Objects in a dict, with S3's conditional writes (IfMatch / IfNoneMatch) and listing by prefix."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.versions = 0
        self.gets: list[str] = []

    @staticmethod
    def _error(code: str, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}}, operation)

    def put_object(self, Bucket: str, Key: str, Body: bytes | str, **options: Any) -> dict[str, Any]:
        current = self.objects.get(Key)
        if options.get("IfNoneMatch") == "*" and current is not None:
            raise self._error("PreconditionFailed", "PutObject")
        if "IfMatch" in options and (current is None or current[1] != options["IfMatch"]):
            raise self._error("PreconditionFailed", "PutObject")
        self.versions += 1
        etag = f'"v{self.versions}"'
        self.objects[Key] = (Body.encode() if isinstance(Body, str) else Body, etag)
        return {"ETag": etag}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.gets.append(Key)
        if Key not in self.objects:
            raise self._error("NoSuchKey", "GetObject")
        data, etag = self.objects[Key]
        return {"Body": _Body(data), "ETag": etag}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise self._error("404", "HeadObject")
        return {"ETag": self.objects[Key][1]}

    def get_paginator(self, name: str) -> FakeS3:
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        return [{"Contents": [{"Key": k} for k in sorted(self.objects) if k.startswith(Prefix)]}]


def test_the_store_keeps_one_object_per_chunk_and_a_manifest_and_detects_a_concurrent_writer() -> None:
    s3 = FakeS3()
    store = SimulationStore(s3, "lake")
    config = SimulationConfig(stores=5, products=60_000, seed=2)  # 4 stores a chunk: 2 chunks
    mine = store.open(config, START)
    assert mine.layout.count == 2
    for index in range(mine.layout.count):
        state = mine.load(index)
        take_reading(state, START + timedelta(minutes=10))
        mine.save(state)
    mine.save_manifest()
    prefix = "simulator/5x60000-seed2/"
    assert sorted(s3.objects) == [f"{prefix}chunk-00000.npz", f"{prefix}chunk-00001.npz", f"{prefix}manifest.json"]
    again = store.open(config, START + timedelta(hours=3))
    assert again.manifest.last_observed_at == START + timedelta(minutes=10)
    assert again.manifest.ticks == 1
    assert again.load(1).sim_clock == START + timedelta(minutes=10)  # continues where it stopped
    first = again.load(0)
    theirs = store.open(config, START)
    their_first = theirs.load(0)
    take_reading(their_first, START + timedelta(minutes=20))
    theirs.save(their_first)  # the other run saved chunk 0 first
    take_reading(first, START + timedelta(minutes=20))
    with pytest.raises(StoreOpsError, match=r"another run changed the simulation state .*chunk-00000"):
        again.save(first)
    theirs.save_manifest()
    with pytest.raises(StoreOpsError, match=r"another run changed the simulation state .*manifest\.json"):
        again.save_manifest()


# -- deliveries across chunks ------------------------------------------------------------------


def test_a_chunk_applies_only_its_own_stores_stops_and_each_once() -> None:
    catalog = build_catalog(9, 4, 3)
    layout = ChunkLayout(9, 4, 4)  # stores 0-3, 4-7, 8
    day = f"{START:%Y-%m-%d}"
    due = DueDeliveries(
        [
            Delivery(day, "load-a#1", "S0001", (("P0002", 12),)),
            Delivery(day, "load-a#2", "S0006", (("P0001", 6), ("P0004", 24))),
            Delivery(day, "load-b#1", "S0009", (("P0003", 8), ("P9999", 5))),  # a product it does not have
            Delivery(day, "load-c#1", "S9999", (("P0001", 6),)),  # another catalog's store
        ],
        [],
    )
    states = [initial_state(catalog, START, chunk=i, stores=(a, b)) for i, a, b in layout]
    before = [s.on_hand.copy() for s in states]
    for state in states:  # room on every shelf
        state.on_hand[:] = 0
        state.cohorts[:] = 0
    before = [s.on_hand.copy() for s in states]
    assert [apply_due(s, catalog, due, START).units for s in states] == [12, 30, 8]
    assert [apply_due(s, catalog, due, START).units for s in states] == [0, 0, 0]  # remembered: once
    assert states[0].on_hand[0, 1] == before[0][0, 1] + 12
    assert states[1].on_hand[1, 0] == before[1][1, 0] + 6  # S0006 is row 1 of the stores 4-7
    assert states[1].on_hand[1, 3] == before[1][1, 3] + 24
    assert states[2].on_hand[0, 2] == before[2][0, 2] + 8
    assert [sorted(s.deliveries.stops.get(day, set())) for s in states] == [["load-a#1"], ["load-a#2"], ["load-b#1"]]
    restored = SimulationState.from_bytes(states[1].to_bytes(), catalog)
    assert apply_due(restored, catalog, due, START).units == 0  # the memory persists with the chunk


def _dispatch(load: str, stop: int, store: str, product: str, quantity: int, eta: datetime) -> LedgerRow:
    return LedgerRow(
        record_type="dispatch",
        shortage_id=f"sh-{load}{stop}{store}{product}".ljust(35, "0")[:35],
        store_id=store,
        product_id=product,
        quantity=quantity,
        recorded_at=format_timestamp(START),
        load_id=load,
        truck_id="T1",
        stop_number=stop,
        eta=format_timestamp(eta),
    )


def test_deliveries_are_read_once_a_run_and_applied_once_across_chunks_and_runs() -> None:
    s3 = FakeS3()
    catalog = build_catalog(10, 3, 5)
    simulation = Simulation.in_memory(catalog, START, chunk_pairs=9)  # 3 stores a chunk: 4 chunks
    assert simulation.layout.count == 4
    now = START + timedelta(hours=1)
    rows = [
        _dispatch("load-x", 1, "S0002", "P0001", 6, now - timedelta(minutes=30)),
        _dispatch("load-x", 2, "S0008", "P0003", 12, now - timedelta(minutes=10)),
        _dispatch("load-x", 3, "S0010", "P0002", 24, now + timedelta(minutes=50)),  # still on the road
    ]
    write_rows(s3, "lake", window_record_key(now, "w1"), rows)

    def run(at: datetime, chunks: range | None = None) -> int:
        deliver = LedgerDeliveries(s3, "lake", catalog, simulation.manifest.deliveries)
        units = 0
        for index in chunks if chunks is not None else range(simulation.layout.count):
            state = simulation.load(index)
            units += take_reading(state, at, deliver)[1].units
            simulation.save(state)
        if chunks is None:
            deliver.complete()
        return units

    reads = len(s3.gets)
    assert run(now) == 18
    assert len(s3.gets) - reads == 1  # the record was read once for the four chunks
    day = f"{now:%Y-%m-%d}"
    assert not simulation.manifest.deliveries.has_record(day, "window-w1")  # a stop is still on the road
    # a run interrupted after two chunks, then a whole one: the arrived stop lands once
    later = now + timedelta(hours=1)
    assert run(later, range(2)) == 0
    assert run(later + timedelta(minutes=1)) == 24
    assert simulation.manifest.deliveries.has_record(day, "window-w1")  # every stop of it applied everywhere
    reads = len(s3.gets)
    assert run(later + timedelta(minutes=2)) == 0
    assert len(s3.gets) == reads  # a record every chunk has applied is not read again
