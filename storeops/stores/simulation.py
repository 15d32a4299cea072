"""The store simulation: stock levels that sales draw down and deliveries refill.

Pure and vectorised: state is a set of (stores x products) numpy arrays; a tick draws
Poisson demand for every store-product at once over the time since the previous reading.
Deterministic for a seed: the same seed and the same sequence of ticks give the same demand
(whatever the stock, so runs with other replenishment see the same customers), and with the
same deliveries the same stock. The state round-trips through bytes so that it can persist
between scheduled runs. Time is whatever the caller's clock says (the wall clock, or a
scenario's virtual clock): ``advance_to`` simulates exactly the time since the last reading.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from storeops.stores.catalog import Catalog

STATE_FORMAT = 2
MAX_PERIOD_HOURS = 6.0  # a longer pause counts as closed hours: the next reading reports 6 h of sales
DELIVERY_HORIZON_DAYS = 3  # deliveries are looked for, and remembered, this many ledger days back


def daily_factor(hour_of_day: np.ndarray) -> np.ndarray:
    """Demand multiplier by hour of day: quiet nights, a peak in the late afternoon (mean ~0.8)."""
    h = np.asarray(hour_of_day, dtype=np.float64) % 24.0
    day = np.clip(np.sin(np.pi * (h - 7.0) / 15.0), 0.0, None)
    return 0.15 + 1.65 * np.where((h >= 7.0) & (h <= 22.0), day, 0.0)


@dataclass
class SimulationState:
    """Everything a run needs to continue where the previous one stopped."""

    seed: int
    on_hand: np.ndarray  # (S, P) int64 units on the shelf
    reorder_point: np.ndarray  # (S, P) int64
    target_stock: np.ndarray  # (S, P) int64, the order-up-to level
    rate: np.ndarray  # (S, P) float64, mean units sold per hour at a daily factor of 1
    sim_clock: datetime  # the time of the last reading (or of the start)
    ticks: int = 0
    last_observed_at: datetime | None = None
    rng_state: dict[str, Any] = field(default_factory=dict)
    deliveries: DeliveryMemory = field(default_factory=lambda: DeliveryMemory())

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.on_hand.shape[0]), int(self.on_hand.shape[1])

    def rng(self) -> np.random.Generator:
        """The generator positioned where the last tick left it."""
        generator = np.random.default_rng(self.seed)
        if self.rng_state:
            generator.bit_generator.state = self.rng_state
        return generator

    # -- persistence ---------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        meta = {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "sim_clock": self.sim_clock.isoformat(),
            "ticks": self.ticks,
            "last_observed_at": self.last_observed_at.isoformat() if self.last_observed_at else None,
            "rng_state": self.rng_state,
            "deliveries": self.deliveries.to_json(),
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            on_hand=self.on_hand,
            reorder_point=self.reorder_point,
            target_stock=self.target_stock,
            rate=self.rate,
            meta=np.array(json.dumps(meta)),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SimulationState:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("format") != STATE_FORMAT:
                raise ValueError(
                    f"simulation state format {meta.get('format')} is not {STATE_FORMAT} (saved by an older version): "
                    "delete it, or start another simulation with a new seed"
                )
            last = meta.get("last_observed_at")
            return cls(
                seed=int(meta["seed"]),
                on_hand=arrays["on_hand"].astype(np.int64),
                reorder_point=arrays["reorder_point"].astype(np.int64),
                target_stock=arrays["target_stock"].astype(np.int64),
                rate=arrays["rate"].astype(np.float64),
                sim_clock=datetime.fromisoformat(meta["sim_clock"]),
                ticks=int(meta["ticks"]),
                last_observed_at=datetime.fromisoformat(last) if last else None,
                rng_state=meta["rng_state"],
                deliveries=DeliveryMemory.from_json(meta.get("deliveries") or {}),
            )


@dataclass
class DeliveryMemory:
    """Which truck stops were added to stock, and which window records were done with, by ledger day.

    Days older than the delivery horizon are forgotten exactly when they are no longer looked
    at (``storeops.stores.deliveries`` reads the same horizon), so nothing is applied twice
    however many deliveries there are and however long the simulation runs.
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


def initial_state(catalog: Catalog, start: datetime) -> SimulationState:
    """Stock between a little below the reorder point and the target, so some shortages exist."""
    rng = np.random.default_rng([catalog.seed, 2])
    n_stores, n_products = catalog.shape
    scale = catalog.stores["demand_scale"].to_numpy()[:, None]
    base = catalog.products["base_rate"].to_numpy()[None, :]
    rate = scale * base * rng.lognormal(0.0, 0.25, size=(n_stores, n_products))
    case_pack = catalog.products["case_pack"].to_numpy()[None, :].astype(np.int64)
    daily = rate * 24.0 * 0.8
    reorder_point = np.maximum(np.ceil(daily * 1.0), 2).astype(np.int64)  # about a day of cover
    target = reorder_point + np.ceil(daily * 2.0 / case_pack).astype(np.int64) * case_pack
    target = np.maximum(target, reorder_point + case_pack)
    low = np.floor(reorder_point * 0.4).astype(np.int64)
    on_hand = low + np.floor(rng.random((n_stores, n_products)) * (target - low + 1)).astype(np.int64)
    return SimulationState(
        seed=catalog.seed,
        on_hand=on_hand,
        reorder_point=reorder_point,
        target_stock=target,
        rate=rate,
        sim_clock=start.astimezone(UTC),
    )


@dataclass(frozen=True)
class Tick:
    """One reading's worth: demand since the previous reading, what was sold and lost, and the stock after."""

    units_sold: np.ndarray  # (S, P) int64
    units_lost: np.ndarray  # (S, P) int64: demand an empty shelf could not serve
    on_hand: np.ndarray  # (S, P) int64 (a copy)
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
    demand = rng.poisson(state.rate * factor * hours)
    sold = np.minimum(demand, state.on_hand)
    state.on_hand = state.on_hand - sold
    state.sim_clock = state.sim_clock + timedelta(hours=hours)
    state.ticks += 1
    state.rng_state = dict(rng.bit_generator.state)
    return Tick(sold, demand - sold, state.on_hand.copy(), hours, state.sim_clock)


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
    """Add delivered units to stock (``storeops.stores.deliveries`` makes sure each stop comes once)."""
    if np.any(np.asarray(quantity) < 0):
        raise ValueError("delivered quantities must not be negative")
    np.add.at(state.on_hand, (np.asarray(store_index), np.asarray(product_index)), np.asarray(quantity))
