"""The store simulation: shelves that shoppers empty, perishables that expire, trucks that refill.

Pure and vectorised, a chunk of stores at a time: the stores are cut into chunks (contiguous
ranges of stores, ``CHUNK_PAIRS`` store-products each at most, at least one store), and a
``SimulationState`` is one chunk's shelves. Nothing of size stores x products is ever built: a
chunk's demand model (``storeops.stores.demand``) and planogram (each pair's shelf capacity) are
derived from the catalog's seed store by store when the chunk is loaded, so only the stock is
persisted: units on the shelf and, for perishables, how many expire at the end of each coming day.

Time moves hour by hour (``advance_to`` cuts the time since the previous reading at every UTC hour):
each part of an hour takes that hour's demand (the same whatever the stock or the policy), sells
what the shelf holds, first expiring first out, and loses the rest. At each local midnight the
perishables whose last day ended are thrown away (``units_expired``); at each shelf-audit time
(``storeops.calendar.AUDIT_HOURS``, when the store is open) the shelf is audited before
the hour's deliveries. Deliveries fill shelves up to their capacity; what does not fit is refused
and goes back on the truck. A chunk's state round-trips through bytes so that it can persist
between scheduled runs. Time is whatever the caller's clock says (the wall clock, or a
scenario's virtual clock).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from storeops.calendar import is_audit_time, local_hour, local_midnights, opening_hours
from storeops.stores.catalog import Catalog
from storeops.stores.demand import DemandModel, StoreProducts, hours_between

STATE_FORMAT = 4  # 3: stock with the true ordering policy derived; 4: shelves and perishable cohorts, v3 demand
MAX_PERIOD_HOURS = 6.0  # a longer pause counts as closed hours: the next reading reports 6 h of sales
DELIVERY_HORIZON_DAYS = 3  # deliveries are looked for, and remembered, this many ledger days back
CHUNK_PAIRS = 250_000  # store-products per chunk: what a run holds at once (about 100 bytes each at peak)
MAX_SHELF_LIFE = 14  # days; perishable cohorts are kept by the days they have left
PLANOGRAM_STREAM = 7  # the seed's generator streams (storeops.stores.demand holds 2-6)
START_STREAM = 8
HISTORY_PERISHABLE_DAYS = 1.5  # the history's daily refill of perishables (ambient shelves are filled)
PLANOGRAM_DAYS = {"ambient": (7.0, 0.3), "perishable": (4.0, 0.25)}  # median days of supply a shelf holds, spread


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


def shelf_capacity(catalog: Catalog, first: int, stop: int, fixed: StoreProducts) -> np.ndarray:
    """The planogram of stores [first, stop): each pair's shelf capacity in units, whole cases.

    Space is given by sales, as planograms are: a few days of a pair's long-run demand (fewer for
    perishables), varying from pair to pair, and at least two cases (one for perishables).
    """
    n_products = catalog.shape[1]
    perishable = catalog.perishable
    case = catalog.products["case_pack"].to_numpy().astype(np.int64)
    days = np.empty((stop - first, n_products))
    for row, store in enumerate(range(first, stop)):
        rng = np.random.default_rng([catalog.seed, PLANOGRAM_STREAM, store])
        spread = rng.normal(0.0, 1.0, n_products)
        for kind, mask in (("ambient", ~perishable), ("perishable", perishable)):
            median, sigma = PLANOGRAM_DAYS[kind]
            days[row, mask] = median * np.exp(sigma * spread[mask])
    cases = np.ceil(fixed.daily_mean * days / case[None, :])
    minimum = np.where(perishable, 2, 2)[None, :]
    return (np.maximum(cases, minimum) * case[None, :]).astype(np.int64)


@dataclass(frozen=True)
class ShelfAudit:
    """A shelf audit at a local audit time, before that hour's deliveries: which shelves were empty."""

    at: datetime
    open_stores: np.ndarray  # (n,) bool: the stores open then (only their shelves are audited)
    empty: np.ndarray  # (n, P) bool: nothing on the shelf (counted only for open stores)

    @property
    def audited(self) -> int:
        return int(self.open_stores.sum()) * int(self.empty.shape[1])

    @property
    def empty_count(self) -> int:
        return int(self.empty[self.open_stores].sum())


@dataclass
class SimulationState:
    """One chunk of stores: everything a run needs to continue where the previous one stopped.

    Rows are the chunk's stores (``first_store`` on), columns the catalog's products. ``cohorts``
    holds the perishable columns' units by the days they have left (index 0 expires at the end of
    the current local day); their sum is ``on_hand`` of those columns. A state made by
    ``initial_state(catalog, start)`` without a range is the whole catalog as one chunk.
    """

    seed: int
    on_hand: np.ndarray  # (n, P) int64 units on the shelf
    cohorts: np.ndarray  # (n, perishable products, MAX_SHELF_LIFE) int64
    capacity: np.ndarray  # (n, P) int64, the planogram (derived, not persisted)
    model: DemandModel  # derived, not persisted
    perishable: np.ndarray  # (P,) bool
    shelf_life: np.ndarray  # (perishable products,) int64 days
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

    @property
    def perishable_columns(self) -> np.ndarray:
        return np.flatnonzero(self.perishable)

    # -- persistence (the stock and the clock; the model and the planogram are derived again) ------
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
        arrays = {
            "on_hand": _compact(self.on_hand),
            "cohorts": _compact(self.cohorts),
            "meta": np.array(json.dumps(meta)),
        }
        return _npz(arrays)

    @classmethod
    def from_bytes(cls, data: bytes, catalog: Catalog) -> SimulationState:
        """A saved chunk of ``catalog``'s simulation, its model and planogram derived again."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("format") != STATE_FORMAT:
                raise ValueError(
                    f"simulation state format {meta.get('format')} is not {STATE_FORMAT} (saved by an older version): "
                    "delete it, or start another simulation with a new seed"
                )
            on_hand = arrays["on_hand"].astype(np.int64)
            cohorts = arrays["cohorts"].astype(np.int64)
        first, n_stores = int(meta["first_store"]), int(meta["stores"])
        if int(meta["seed"]) != catalog.seed or on_hand.shape != (n_stores, catalog.shape[1]):
            raise ValueError(
                f"saved chunk {meta.get('chunk')} (seed {meta['seed']}, {n_stores} x {meta['products']}) "
                f"does not belong to this catalog (seed {catalog.seed}, {catalog.shape[1]} products)"
            )
        state = _blank(catalog, first, first + n_stores, datetime.fromisoformat(meta["sim_clock"]), int(meta["chunk"]))
        state.on_hand, state.cohorts = on_hand, cohorts
        state.ticks = int(meta["ticks"])
        last = meta.get("last_observed_at")
        state.last_observed_at = datetime.fromisoformat(last) if last else None
        state.deliveries = DeliveryMemory.from_json(meta.get("deliveries") or {})
        return state


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


def _blank(catalog: Catalog, first: int, stop: int, clock: datetime, chunk: int) -> SimulationState:
    """A chunk with empty shelves, its model and planogram derived from the catalog."""
    model = DemandModel(catalog, first, stop)
    perishable = catalog.perishable
    life = catalog.products["shelf_life_days"].to_numpy()[perishable].astype(np.int64)
    if life.size and life.max() > MAX_SHELF_LIFE:
        raise ValueError(f"a shelf life above {MAX_SHELF_LIFE} days is not simulated")
    n, n_products = stop - first, catalog.shape[1]
    return SimulationState(
        seed=catalog.seed,
        on_hand=np.zeros((n, n_products), dtype=np.int64),
        cohorts=np.zeros((n, int(perishable.sum()), MAX_SHELF_LIFE), dtype=np.int64),
        capacity=shelf_capacity(catalog, first, stop, model.fixed),
        model=model,
        perishable=perishable,
        shelf_life=life,
        sim_clock=clock.astimezone(UTC),
        chunk=chunk,
        first_store=first,
    )


def initial_state(
    catalog: Catalog, start: datetime, *, chunk: int = 0, stores: tuple[int, int] | None = None
) -> SimulationState:
    """A new chunk (stores [first, stop); by default every store, as chunk 0): shelves between half
    full and full, perishables spread over the days they have left."""
    first, stop = stores if stores is not None else (0, catalog.shape[0])
    state = _blank(catalog, first, stop, start, chunk)
    fill = np.empty(state.shape)
    for row, store in enumerate(range(first, stop)):
        fill[row] = np.random.default_rng([catalog.seed, START_STREAM, store]).uniform(0.5, 1.0, state.shape[1])
    stock = np.floor(state.capacity * fill).astype(np.int64)
    _receive(state, stock)
    columns = state.perishable_columns
    if columns.size:  # stock of every age: an even share expires on each of its days left, the rest last
        life = state.shelf_life[None, :]
        units = stock[:, columns]
        share, rest = units // life, units % life
        days = np.arange(MAX_SHELF_LIFE)[None, None, :]
        state.cohorts = np.where(days < life[..., None], share[..., None], 0)
        state.cohorts[:, np.arange(columns.size), state.shelf_life - 1] += rest
    return state


@dataclass(frozen=True)
class Tick:
    """One reading's worth: the demand since the previous reading, what was sold, lost and thrown
    away, the shelf audits taken meanwhile, and the stock after."""

    units_sold: np.ndarray  # (n, P) int64
    units_lost: np.ndarray  # (n, P) int64: demand an empty shelf could not serve (only the simulator knows)
    units_expired: np.ndarray  # (n, P) int64: perishables past their last day, thrown away
    on_hand: np.ndarray  # (n, P) int64 (a copy)
    period_hours: float  # the hours since the previous reading that the sales cover
    sim_clock: datetime
    audits: tuple[ShelfAudit, ...] = ()

    @property
    def units_demanded(self) -> np.ndarray:
        return self.units_sold + self.units_lost


def _sell(state: SimulationState, demand: np.ndarray) -> np.ndarray:
    """Sell what the shelf holds of ``demand`` (perishables first expiring first out); returns units sold."""
    sold = np.minimum(demand, state.on_hand)
    state.on_hand -= sold
    columns = state.perishable_columns
    if columns.size:
        remaining = sold[:, columns].copy()
        for day in range(MAX_SHELF_LIFE):
            if not remaining.any():
                break
            take = np.minimum(remaining, state.cohorts[:, :, day])
            state.cohorts[:, :, day] -= take
            remaining -= take
    return sold


def _expire(state: SimulationState) -> np.ndarray:
    """A local midnight: the perishables whose last day ended are thrown away; returns them (n, P)."""
    expired = np.zeros(state.shape, dtype=np.int64)
    columns = state.perishable_columns
    if columns.size:
        expired[:, columns] = state.cohorts[:, :, 0]
        state.cohorts[:, :, :-1] = state.cohorts[:, :, 1:]
        state.cohorts[:, :, -1] = 0
        state.on_hand -= expired
    return expired


def _audit(state: SimulationState, at: datetime) -> ShelfAudit:
    local = local_hour(at)
    open_stores = np.array([opening_hours(f, local.day).mask()[local.hour] for f in state.model.fixed.formats])
    return ShelfAudit(at, open_stores.astype(bool), state.on_hand == 0)


def advance_to(state: SimulationState, until: datetime, max_hours: float = MAX_PERIOD_HOURS) -> Tick:
    """Simulate exactly the time since the last reading, up to ``until``, hour by hour (a pause longer
    than ``max_hours`` counts as closed hours: only its last ``max_hours`` have customers, though
    perishables still expire at the midnights in it)."""
    until = until.astimezone(UTC)
    elapsed = (until - state.sim_clock).total_seconds() / 3600.0
    if elapsed <= 0:
        raise ValueError(f"time must move forward: {until.isoformat()} is not after {state.sim_clock.isoformat()}")
    hours = min(elapsed, max_hours)
    selling_from = until - timedelta(hours=hours)
    expired = np.zeros(state.shape, dtype=np.int64)
    for _ in local_midnights(state.sim_clock, selling_from):
        expired += _expire(state)  # closed hours: nothing sells, but perishables still age
    sold = np.zeros(state.shape, dtype=np.int64)
    demanded = np.zeros(state.shape, dtype=np.int64)
    audits: list[ShelfAudit] = []
    midnights = set(local_midnights(selling_from, until))
    for hour, start, end in hours_between(selling_from, until):
        demand = state.model.draw(hour, start, end)
        demanded += demand
        sold += _sell(state, demand)
        boundary = hour + timedelta(hours=end)
        if end == 1.0 and boundary in midnights:
            expired += _expire(state)
        if end == 1.0 and is_audit_time(boundary):
            audits.append(_audit(state, boundary))
    state.sim_clock = until
    state.ticks += 1
    return Tick(sold, demanded - sold, expired, state.on_hand.copy(), hours, until, tuple(audits))


def advance(state: SimulationState, hours: float) -> Tick:
    """Simulate ``hours`` from the last reading on (``advance_to`` the chunk's clock plus ``hours``)."""
    if not hours > 0:
        raise ValueError("a tick must cover more than 0 hours")
    return advance_to(state, state.sim_clock + timedelta(hours=hours), max_hours=max(hours, MAX_PERIOD_HOURS))


def _receive(state: SimulationState, quantity: np.ndarray) -> np.ndarray:
    """Put ``quantity`` (n, P) on the shelves, as much as fits; returns what was refused (n, P)."""
    room = np.maximum(state.capacity - state.on_hand, 0)
    accepted = np.minimum(quantity, room)
    state.on_hand += accepted
    columns = state.perishable_columns
    if columns.size:
        # delivered today, a product of shelf life L expires at the end of its L-th day (index L - 1)
        state.cohorts[:, np.arange(columns.size), state.shelf_life - 1] += accepted[:, columns]
    return np.asarray(quantity - accepted)


def apply_deliveries(
    state: SimulationState,
    store_index: np.ndarray,
    product_index: np.ndarray,
    quantity: np.ndarray,
) -> np.ndarray:
    """Put delivered units on the shelves, up to each shelf's capacity; ``store_index`` counts the
    chunk's rows (its first store is 0). Returns the units refused (n, P): they did not fit.
    (``storeops.stores.deliveries`` makes sure each stop comes once.)"""
    quantity = np.asarray(quantity)
    if np.any(quantity < 0):
        raise ValueError("delivered quantities must not be negative")
    arriving = np.zeros(state.shape, dtype=np.int64)
    np.add.at(arriving, (np.asarray(store_index), np.asarray(product_index)), quantity)
    return _receive(state, arriving)


def restock(state: SimulationState) -> int:
    """The supply of the history a scenario starts from, before any plan: ambient shelves filled to capacity,
    perishables to a day and a half of their mean demand (as a store that throws little away orders them);
    returns units."""
    target = state.capacity.copy()
    columns = state.perishable_columns
    if columns.size:
        fresh = np.ceil(HISTORY_PERISHABLE_DAYS * state.model.fixed.daily_mean[:, columns]) + 1
        target[:, columns] = np.minimum(target[:, columns], fresh.astype(np.int64))
    gap = np.maximum(target - state.on_hand, 0)
    _receive(state, gap)
    return int(gap.sum())


@dataclass(frozen=True)
class Arrivals:
    """What trucks brought a chunk at a reading: the units that arrived, and those that did not fit."""

    units: int = 0
    refused: np.ndarray | None = None  # (n, P) int64, None when nothing arrived

    @property
    def refused_units(self) -> int:
        return int(self.refused.sum()) if self.refused is not None else 0
