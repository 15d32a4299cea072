"""The store simulation: stock levels that sales draw down and deliveries refill.

Pure and vectorised: state is a set of (stores x products) numpy arrays; a tick draws
Poisson sales for every store-product at once. Deterministic for a seed: the same seed and
the same sequence of ticks and deliveries give the same stock and sales, whatever the wall
clock. The state round-trips through bytes so that it can persist between scheduled runs.
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

STATE_FORMAT = 1
MAX_APPLIED_DELIVERIES = 5000  # delivery ids remembered to make applying them idempotent


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
    sim_clock: datetime  # simulated time of the last tick
    ticks: int = 0
    last_observed_at: datetime | None = None
    rng_state: dict[str, Any] = field(default_factory=dict)
    applied_deliveries: list[str] = field(default_factory=list)

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
            "applied_deliveries": self.applied_deliveries[-MAX_APPLIED_DELIVERIES:],
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
                raise ValueError(f"unsupported simulation state format {meta.get('format')}")
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
                applied_deliveries=list(meta.get("applied_deliveries", [])),
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
    """One tick's outcome: sales since the previous reading and the stock after them."""

    units_sold: np.ndarray  # (S, P) int64
    on_hand: np.ndarray  # (S, P) int64 (a copy)
    sim_clock: datetime


def advance(state: SimulationState, hours_per_tick: float) -> Tick:
    """Advance simulated time by ``hours_per_tick`` and draw sales; stock never goes below 0."""
    if not hours_per_tick > 0:
        raise ValueError("hours_per_tick must be greater than 0")
    rng = state.rng()
    samples = max(1, min(24, math.ceil(hours_per_tick)))
    offsets = (np.arange(samples) + 0.5) * (hours_per_tick / samples)
    start_hour = state.sim_clock.hour + state.sim_clock.minute / 60.0
    factor = float(daily_factor(start_hour + offsets).mean())
    demand = rng.poisson(state.rate * factor * hours_per_tick)
    sold = np.minimum(demand, state.on_hand)
    state.on_hand = state.on_hand - sold
    state.sim_clock = state.sim_clock + timedelta(hours=hours_per_tick)
    state.ticks += 1
    state.rng_state = dict(rng.bit_generator.state)
    return Tick(units_sold=sold, on_hand=state.on_hand.copy(), sim_clock=state.sim_clock)


def apply_deliveries(
    state: SimulationState,
    delivery_id: str,
    store_index: np.ndarray,
    product_index: np.ndarray,
    quantity: np.ndarray,
) -> bool:
    """Add a delivered load to stock once; False (and no change) if it was applied before."""
    if delivery_id in state.applied_deliveries:
        return False
    if np.any(np.asarray(quantity) < 0):
        raise ValueError("delivered quantities must not be negative")
    np.add.at(state.on_hand, (np.asarray(store_index), np.asarray(product_index)), np.asarray(quantity))
    state.applied_deliveries.append(delivery_id)
    del state.applied_deliveries[:-MAX_APPLIED_DELIVERIES]
    return True
