"""Deliveries: truck loads in the ledger reach their stores at each stop's ETA.

Before each reading the stores apply the stops whose ETA has passed, once each: the window
records of the last ``DELIVERY_HORIZON_DAYS`` ledger days are read once per reading time for
the whole run (``LedgerDeliveries``; records every chunk has fully applied are skipped without
reading), and each chunk applies only its own stores' stops and remembers them for exactly
those days. A stop whose ETA falls inside a reading's period is applied at that reading (the
goods are on the shelf when it is taken; the period's sales did not have them).
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from storeops.clock import format_timestamp
from storeops.ledger import window_records_prefix
from storeops.stores.catalog import Catalog
from storeops.stores.simulation import (
    DELIVERY_HORIZON_DAYS,
    Arrivals,
    DeliveryMemory,
    SimulationState,
    apply_deliveries,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """The goods one truck stop brings to one store."""

    day: str  # the ledger day of its load (YYYY-MM-DD)
    stop_id: str  # <load_id>#<stop_number>
    store_id: str
    items: tuple[tuple[str, int], ...]  # (product_id, quantity)


@dataclass(frozen=True)
class DueDeliveries:
    """What is due now, and the window records every stop of which will then have been applied."""

    stops: list[Delivery]
    complete_records: list[tuple[str, str]]  # (day, record)


def horizon_days(now: datetime, horizon: int = DELIVERY_HORIZON_DAYS) -> list[str]:
    """The ledger days deliveries are looked for in, oldest first."""
    return [f"{now - timedelta(days=back):%Y-%m-%d}" for back in range(horizon, -1, -1)]


def _record_stops(s3: S3Client, bucket: str, key: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(stop id, rows) for every stop of one window record."""
    stops: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for line in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines():
        row = json.loads(line)
        if row["record_type"] == "dispatch":  # a fenced window recorded nothing
            stops.setdefault((row["load_id"], int(row["stop_number"])), []).append(row)
    for (load_id, number), rows in sorted(stops.items()):
        yield f"{load_id}#{number}", rows


def _records(s3: S3Client, bucket: str, day: str) -> Iterator[tuple[str, str]]:
    """(record name, key) of every window record of a ledger day."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=window_records_prefix(day)):
        for obj in page.get("Contents", []):
            yield obj["Key"].rsplit("/", 1)[-1].removesuffix(".json"), obj["Key"]


def due_deliveries(s3: S3Client, bucket: str, now: datetime, memory: DeliveryMemory) -> DueDeliveries:
    """The stops whose ETA has passed by ``now`` and that ``memory`` has not applied."""
    cutoff = format_timestamp(now)
    due: list[Delivery] = []
    complete: list[tuple[str, str]] = []
    for day in horizon_days(now):
        for record, key in _records(s3, bucket, day):
            if memory.has_record(day, record):
                continue  # every stop of it was applied before: no need to read it
            pending = False
            for stop_id, rows in _record_stops(s3, bucket, key):
                if memory.has_stop(day, stop_id):
                    continue
                if rows[0]["eta"] > cutoff:
                    pending = True
                    continue
                items = tuple((r["product_id"], int(r["quantity"])) for r in rows)
                due.append(Delivery(day, stop_id, rows[0]["store_id"], items))
            if not pending:
                complete.append((day, record))
    return DueDeliveries(due, complete)


@dataclass(frozen=True)
class DueStop:
    """A due stop resolved against a catalog: its store's index and its known products' indices."""

    store: int
    day: str
    stop_id: str
    products: np.ndarray  # int64 product indices (products this catalog does not have are left out)
    quantities: np.ndarray  # int64


@dataclass(frozen=True)
class ResolvedDue:
    """Due stops of the catalog's stores, sorted by store, so a chunk finds its own by bisection."""

    stops: list[DueStop]
    stores: list[int] = field(default_factory=list)  # each stop's store index, ascending

    @classmethod
    def of(cls, due: DueDeliveries, catalog: Catalog) -> ResolvedDue:
        store_index = {s: i for i, s in enumerate(catalog.stores["store_id"])}
        product_index = {p: i for i, p in enumerate(catalog.products["product_id"])}
        stops = []
        for delivery in due.stops:
            if delivery.store_id not in store_index:
                continue  # another catalog's stop: no store of this simulation takes it
            known = [(product_index[p], q) for p, q in delivery.items if p in product_index]
            stops.append(
                DueStop(
                    store_index[delivery.store_id],
                    delivery.day,
                    delivery.stop_id,
                    np.array([p for p, _ in known], dtype=np.int64),
                    np.array([q for _, q in known], dtype=np.int64),
                )
            )
        stops.sort(key=lambda stop: stop.store)
        return cls(stops, [stop.store for stop in stops])

    def within(self, first: int, stop: int) -> list[DueStop]:
        """The stops of stores [first, stop)."""
        return self.stops[bisect.bisect_left(self.stores, first) : bisect.bisect_left(self.stores, stop)]


def apply_stops(state: SimulationState, due: ResolvedDue, now: datetime) -> Arrivals:
    """Put the due stops of this chunk's stores that it has not applied yet on its shelves (as much as
    fits), remember them, forget days past the horizon; returns what arrived and what was refused."""
    memory = state.deliveries
    stores: list[np.ndarray] = []
    products: list[np.ndarray] = []
    quantities: list[np.ndarray] = []
    applied = 0
    for stop in due.within(state.first_store, state.stop_store):
        if memory.has_stop(stop.day, stop.stop_id):
            continue  # applied at an earlier reading (or by an earlier, interrupted run)
        if len(stop.products):
            stores.append(np.full(len(stop.products), stop.store - state.first_store))
            products.append(stop.products)
            quantities.append(stop.quantities)
        memory.add_stop(stop.day, stop.stop_id)
        applied += 1
    memory.forget_before(horizon_days(now)[0])
    if not quantities:
        return Arrivals()
    quantity = np.concatenate(quantities)
    refused = apply_deliveries(state, np.concatenate(stores), np.concatenate(products), quantity)
    arrivals = Arrivals(int(quantity.sum()), refused)
    logger.debug(
        "chunk %d: applied %d truck stops, %d units delivered, %d refused (no room on the shelf)",
        state.chunk,
        applied,
        arrivals.units,
        arrivals.refused_units,
    )
    return arrivals


def apply_due(state: SimulationState, catalog: Catalog, due: DueDeliveries, now: datetime) -> Arrivals:
    """Add the due stops of this chunk's stores to its stock, once each (see ``apply_stops``)."""
    return apply_stops(state, ResolvedDue.of(due, catalog), now)


class LedgerDeliveries:
    """The stores' side of the trucks for one run: the ledger's due stops are read once per reading
    time, and every chunk applies its own stores' stops (``__call__``).

    ``memory`` is the simulation's: the window records every chunk has fully applied, which are not
    read again. ``complete`` records them once every chunk has taken its reading (and clears what
    was read, so the next run, or the next virtual hour, reads the ledger afresh).
    """

    def __init__(self, s3: S3Client, bucket: str, catalog: Catalog, memory: DeliveryMemory) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.catalog = catalog
        self.memory = memory
        self._due: dict[datetime, tuple[DueDeliveries, ResolvedDue]] = {}

    def due(self, at: datetime) -> DueDeliveries:
        return self._resolved(at)[0]

    def _resolved(self, at: datetime) -> tuple[DueDeliveries, ResolvedDue]:
        if at not in self._due:
            due = due_deliveries(self.s3, self.bucket, at, self.memory)
            self._due[at] = (due, ResolvedDue.of(due, self.catalog))
            if due.stops:
                logger.info("%d truck stops due by %s", len(due.stops), format_timestamp(at))
        return self._due[at]

    def __call__(self, state: SimulationState, at: datetime) -> Arrivals:
        """Apply to this chunk the stops of its stores that arrived by ``at``."""
        return apply_stops(state, self._resolved(at)[1], at)

    def complete(self) -> None:
        """Every chunk has applied what was due by the latest time read: remember the window records
        all of whose stops were due then (no chunk needs them again), forget days past the horizon."""
        if not self._due:
            return
        latest = max(self._due)
        for day, record in self._due[latest][0].complete_records:
            self.memory.add_record(day, record)
        self.memory.forget_before(horizon_days(latest)[0])
        self._due.clear()
