"""The store simulation: stock levels that sales draw down and deliveries refill.

Pure and vectorised, a chunk of stores at a time: the stores are cut into chunks (contiguous
ranges of stores, ``CHUNK_PAIRS`` store-products each at most, at least one store), and a
``SimulationState`` is one chunk's stock. Nothing of size stores x products is ever built: a
chunk's ordering policy (demand rates, reorder points, targets) is derived from the catalog's
seed store by store when the chunk is loaded, so only the stock on hand is persisted.

A tick draws Poisson demand for every store-product of a chunk at once over the time since
the previous reading, from a generator seeded with (seed, chunk, tick number). Deterministic
for a seed: the same seed and the same sequence of ticks give the same demand (whatever the
stock, so runs with other replenishment see the same customers), and with the same deliveries
the same stock. A chunk's state round-trips through bytes so that it can persist between
scheduled runs. Time is whatever the caller's clock says (the wall clock, or a scenario's
virtual clock): ``advance_to`` simulates exactly the time since the chunk's last reading.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from storeops.stores.catalog import Catalog

STATE_FORMAT = 3  # 2: one object for the whole catalog, policy arrays included; 3: one per chunk, stock only
MAX_PERIOD_HOURS = 6.0  # a longer pause counts as closed hours: the next reading reports 6 h of sales
DELIVERY_HORIZON_DAYS = 3  # deliveries are looked for, and remembered, this many ledger days back
CHUNK_PAIRS = 250_000  # store-products per chunk: what a run holds at once (about 100 bytes each at peak)
POLICY_STREAM = 2  # the seed's generator streams: 1 the catalog, 2 each store's policy, 3 a chunk's demand
DEMAND_STREAM = 3


def daily_factor(hour_of_day: np.ndarray) -> np.ndarray:
    """Demand multiplier by hour of day: quiet nights, a peak in the late afternoon (mean ~0.8)."""
    h = np.asarray(hour_of_day, dtype=np.float64) % 24.0
    day = np.clip(np.sin(np.pi * (h - 7.0) / 15.0), 0.0, None)
    return 0.15 + 1.65 * np.where((h >= 7.0) & (h <= 22.0), day, 0.0)


def stores_per_chunk(n_products: int, chunk_pairs: int = CHUNK_PAIRS) -> int:
    """How many stores a chunk holds: ``chunk_pairs`` store-products at most, at least one store."""
    return max(1, chunk_pairs // max(1, n_products))


@dataclass(frozen=True)
class ChunkLayout:
    """The stores cut into contiguous chunks of ``chunk_stores`` stores (the last may hold fewer)."""

    n_stores: int
    n_products: int
    chunk_stores: int

    @classmethod
    def for_shape(cls, n_stores: int, n_products: int, chunk_pairs: int = CHUNK_PAIRS) -> ChunkLayout:
        return cls(n_stores, n_products, stores_per_chunk(n_products, chunk_pairs))

    @property
    def count(self) -> int:
        return -(-self.n_stores // self.chunk_stores)

    def bounds(self, index: int) -> tuple[int, int]:
        """The stores of chunk ``index``: [first, stop)."""
        if not 0 <= index < self.count:
            raise IndexError(f"chunk {index} is not one of the {self.count} chunks")
        first = index * self.chunk_stores
        return first, min(self.n_stores, first + self.chunk_stores)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        """(index, first store, stop) of every chunk, in order."""
        for index in range(self.count):
            yield (index, *self.bounds(index))


@dataclass
class DeliveryMemory:
    """Which truck stops were added to stock, and which window records were done with, by ledger day.

    A chunk's state remembers the stops it applied to its own stores; a simulation remembers the
    window records whose every stop every chunk has applied (so those are not read again). Days
    older than the delivery horizon are forgotten exactly when they are no longer looked at
    (``storeops.stores.deliveries`` reads the same horizon), so nothing is applied twice however
    many deliveries there are and however long the simulation runs.
    """

    stops: dict[str, set[str]] = field(default_factory=dict)  # ledger day -> "<load_id>#<stop>"
    records: dict[str, set[str]] = field(default_factory=dict)  # ledger day -> window records fully applied

    def has_stop(self, day: str, stop_id: str) -> bool:
        return stop_id in self.stops.get(day, set())

    def add_stop(self, day: str, stop_id: str) -> None:
        self.stops.setdefault(day, set()).add(stop_id)

    def has_record(self, day: str, record: str) -> bool:
        return record in self.records.get(day, set())

    def add_record(self, day: str, record: str) -> None:
        self.records.setdefault(day, set()).add(record)

    def forget_before(self, day: str) -> None:
        """Drop the days before ``day`` (YYYY-MM-DD): they are past the horizon."""
        for memory in (self.stops, self.records):
            for old in [d for d in memory if d < day]:
                del memory[old]

    def to_json(self) -> dict[str, Any]:
        return {
            "stops": {d: sorted(v) for d, v in self.stops.items()},
            "records": {d: sorted(v) for d, v in self.records.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeliveryMemory:
        return cls(
            stops={d: set(v) for d, v in data.get("stops", {}).items()},
            records={d: set(v) for d, v in data.get("records", {}).items()},
        )


@dataclass(frozen=True)
class ChunkPolicy:
    """The ordering policy of a range of stores (rows) x every product, and where their stock starts."""

    rate: np.ndarray  # float64, mean units sold per hour at a daily factor of 1
    reorder_point: np.ndarray  # int64, about a day of cover
    target_stock: np.ndarray  # int64, the order-up-to level
    initial_on_hand: np.ndarray  # int64, between a little below the reorder point and the target


def chunk_policy(catalog: Catalog, first: int, stop: int) -> ChunkPolicy:
    """The policy of stores [first, stop), derived store by store from the seed: the same for a store
    whatever chunk it is in, and never built for more stores than asked for."""
    n_stores, n_products = catalog.shape
    if not 0 <= first < stop <= n_stores:
        raise ValueError(f"stores [{first}, {stop}) are not within the catalog's {n_stores}")
    noise = np.empty((stop - first, n_products))
    start_at = np.empty((stop - first, n_products))
    for row, store in enumerate(range(first, stop)):
        rng = np.random.default_rng([catalog.seed, POLICY_STREAM, store])
        noise[row] = rng.lognormal(0.0, 0.25, n_products)
        start_at[row] = rng.random(n_products)
    scale = catalog.stores["demand_scale"].to_numpy()[first:stop, None]
    base = catalog.products["base_rate"].to_numpy()[None, :]
    rate = scale * base * noise
    case_pack = catalog.products["case_pack"].to_numpy()[None, :].astype(np.int64)
    daily = rate * 24.0 * 0.8
    reorder_point = np.maximum(np.ceil(daily * 1.0), 2).astype(np.int64)  # about a day of cover
    target = reorder_point + np.ceil(daily * 2.0 / case_pack).astype(np.int64) * case_pack
    target = np.maximum(target, reorder_point + case_pack)
    low = np.floor(reorder_point * 0.4).astype(np.int64)
    on_hand = low + np.floor(start_at * (target - low + 1)).astype(np.int64)
    return ChunkPolicy(rate, reorder_point, target, on_hand)


@dataclass
class SimulationState:
    """One chunk of stores: everything a run needs to continue where the previous one stopped.

    Rows are the chunk's stores (``first_store`` on), columns the catalog's products. A state made
    by ``initial_state(catalog, start)`` without a range is the whole catalog as one chunk (small
    catalogs: tests, benchmarks).
    """

    seed: int
    on_hand: np.ndarray  # (stores of the chunk, P) int64 units on the shelf
    reorder_point: np.ndarray  # (n, P) int64, derived (not persisted)
    target_stock: np.ndarray  # (n, P) int64, the order-up-to level, derived
    rate: np.ndarray  # (n, P) float64, mean units sold per hour at a daily factor of 1, derived
    sim_clock: datetime  # the time of the chunk's last reading (or of its start)
    ticks: int = 0
    last_observed_at: datetime | None = None
    deliveries: DeliveryMemory = field(default_factory=lambda: DeliveryMemory())  # the stops this chunk applied
    chunk: int = 0  # its index in the simulation's layout
    first_store: int = 0  # the catalog index of its first store

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.on_hand.shape[0]), int(self.on_hand.shape[1])

    @property
    def stop_store(self) -> int:
        """One past the catalog index of its last store."""
        return self.first_store + int(self.on_hand.shape[0])

    def rng(self) -> np.random.Generator:
        """The generator of this chunk's next tick: (seed, chunk, tick number) decide the demand."""
        return np.random.default_rng([self.seed, DEMAND_STREAM, self.chunk, self.ticks])

    # -- persistence (the stock and the clock; the policy is derived again on loading) ----------
    def to_bytes(self) -> bytes:
        meta = {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "chunk": self.chunk,
            "first_store": self.first_store,
            "stores": self.shape[0],
            "products": self.shape[1],
            "sim_clock": self.sim_clock.isoformat(),
            "ticks": self.ticks,
            "last_observed_at": self.last_observed_at.isoformat() if self.last_observed_at else None,
            "deliveries": self.deliveries.to_json(),
        }
        return _npz({"on_hand": _compact(self.on_hand), "meta": np.array(json.dumps(meta))})

    @classmethod
    def from_bytes(cls, data: bytes, catalog: Catalog) -> SimulationState:
        """A saved chunk of ``catalog``'s simulation, its policy derived again from the catalog."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("format") != STATE_FORMAT:
                raise ValueError(
                    f"simulation state format {meta.get('format')} is not {STATE_FORMAT} (saved by an older version): "
                    "delete it, or start another simulation with a new seed"
                )
            on_hand = arrays["on_hand"].astype(np.int64)
        first, n_stores = int(meta["first_store"]), int(meta["stores"])
        if int(meta["seed"]) != catalog.seed or on_hand.shape != (n_stores, catalog.shape[1]):
            raise ValueError(
                f"saved chunk {meta.get('chunk')} (seed {meta['seed']}, {n_stores} x {meta['products']}) "
                f"does not belong to this catalog (seed {catalog.seed}, {catalog.shape[1]} products)"
            )
        policy = chunk_policy(catalog, first, first + n_stores)
        last = meta.get("last_observed_at")
        return cls(
            seed=int(meta["seed"]),
            on_hand=on_hand,
            reorder_point=policy.reorder_point,
            target_stock=policy.target_stock,
            rate=policy.rate,
            sim_clock=datetime.fromisoformat(meta["sim_clock"]),
            ticks=int(meta["ticks"]),
            last_observed_at=datetime.fromisoformat(last) if last else None,
            deliveries=DeliveryMemory.from_json(meta.get("deliveries") or {}),
            chunk=int(meta["chunk"]),
            first_store=first,
        )


def _compact(stock: np.ndarray) -> np.ndarray:
    """Stock in the narrowest unsigned type that holds it (it is never negative): fewer bytes to save."""
    top = int(stock.max()) if stock.size else 0
    if int(stock.min(initial=0)) < 0:
        return stock
    return stock.astype(np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.int64)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (what ``np.load`` reads) deflated at level 1: several times faster than
    ``np.savez_compressed`` for stock counts, and about as small."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def initial_state(
    catalog: Catalog, start: datetime, *, chunk: int = 0, stores: tuple[int, int] | None = None
) -> SimulationState:
    """A new chunk (stores [first, stop); by default every store, as chunk 0): stock between a little
    below the reorder point and the target, so some shortages exist."""
    first, stop = stores if stores is not None else (0, catalog.shape[0])
    policy = chunk_policy(catalog, first, stop)
    return SimulationState(
        seed=catalog.seed,
        on_hand=policy.initial_on_hand,
        reorder_point=policy.reorder_point,
        target_stock=policy.target_stock,
        rate=policy.rate,
        sim_clock=start.astimezone(UTC),
        chunk=chunk,
        first_store=first,
    )


@dataclass(frozen=True)
class Tick:
    """One reading's worth: demand since the previous reading, what was sold and lost, and the stock after."""

    units_sold: np.ndarray  # (n, P) int64
    units_lost: np.ndarray  # (n, P) int64: demand an empty shelf could not serve
    on_hand: np.ndarray  # (n, P) int64 (a copy)
    period_hours: float  # the hours since the previous reading that the sales cover
    sim_clock: datetime


def advance(state: SimulationState, hours: float) -> Tick:
    """Simulate ``hours`` of demand from the last reading on; stock never goes below 0."""
    if not hours > 0:
        raise ValueError("a tick must cover more than 0 hours")
    rng = state.rng()
    samples = max(1, min(24, math.ceil(hours)))
    offsets = (np.arange(samples) + 0.5) * (hours / samples)
    start_hour = state.sim_clock.hour + state.sim_clock.minute / 60.0 + state.sim_clock.second / 3600.0
    factor = float(daily_factor(start_hour + offsets).mean())
    demand = rng.poisson(state.rate * (factor * hours))
    sold = np.minimum(demand, state.on_hand)
    state.on_hand = state.on_hand - sold
    state.sim_clock = state.sim_clock + timedelta(hours=hours)
    state.ticks += 1
    demand -= sold  # what was lost, in place
    return Tick(sold, demand, state.on_hand.copy(), hours, state.sim_clock)


def advance_to(state: SimulationState, until: datetime, max_hours: float = MAX_PERIOD_HOURS) -> Tick:
    """Simulate exactly the time since the last reading, up to ``until`` (a pause longer than
    ``max_hours`` counts as closed hours: only its last ``max_hours`` have customers)."""
    until = until.astimezone(UTC)
    elapsed = (until - state.sim_clock).total_seconds() / 3600.0
    if elapsed <= 0:
        raise ValueError(f"time must move forward: {until.isoformat()} is not after {state.sim_clock.isoformat()}")
    hours = min(elapsed, max_hours)
    state.sim_clock = until - timedelta(hours=hours)
    tick = advance(state, hours)
    state.sim_clock = until
    return Tick(tick.units_sold, tick.units_lost, tick.on_hand, hours, until)


def apply_deliveries(
    state: SimulationState,
    store_index: np.ndarray,
    product_index: np.ndarray,
    quantity: np.ndarray,
) -> None:
    """Add delivered units to stock; ``store_index`` counts the chunk's rows (its first store is 0).
    (``storeops.stores.deliveries`` makes sure each stop comes once.)"""
    if np.any(np.asarray(quantity) < 0):
        raise ValueError("delivered quantities must not be negative")
    np.add.at(state.on_hand, (np.asarray(store_index), np.asarray(product_index)), np.asarray(quantity))
