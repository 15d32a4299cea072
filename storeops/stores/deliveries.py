"""Deliveries: truck loads in the ledger reach their stores at each stop's ETA.

Before each reading the stores apply the stops whose ETA has passed, once each: the window
records of the last ``DELIVERY_HORIZON_DAYS`` ledger days are read (those fully applied are
skipped without reading), and the state remembers what it applied for exactly those days.
A stop whose ETA falls inside a reading's period is applied at that reading (the goods are on
the shelf when it is taken; the period's sales did not have them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from storeops.clock import format_timestamp
from storeops.ledger import window_records_prefix
from storeops.stores.catalog import Catalog
from storeops.stores.simulation import DELIVERY_HORIZON_DAYS, DeliveryMemory, SimulationState, apply_deliveries

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


def _record_stops(s3: Any, bucket: str, key: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(stop id, rows) for every stop of one window record."""
    stops: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for line in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines():
        row = json.loads(line)
        if row["record_type"] == "dispatch":  # a fenced window recorded nothing
            stops.setdefault((row["load_id"], int(row["stop_number"])), []).append(row)
    for (load_id, number), rows in sorted(stops.items()):
        yield f"{load_id}#{number}", rows


def _records(s3: Any, bucket: str, day: str) -> Iterator[tuple[str, str]]:
    """(record name, key) of every window record of a ledger day."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=window_records_prefix(day)):
        for obj in page.get("Contents", []):
            yield obj["Key"].rsplit("/", 1)[-1].removesuffix(".json"), obj["Key"]


def due_deliveries(s3: Any, bucket: str, now: datetime, memory: DeliveryMemory) -> DueDeliveries:
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


def stops_in_transit(s3: Any, bucket: str, now: datetime) -> int:
    """How many truck stops of recent loads have not arrived yet."""
    cutoff = format_timestamp(now)
    return sum(
        1
        for day in horizon_days(now, 1)
        for _, key in _records(s3, bucket, day)
        for _, rows in _record_stops(s3, bucket, key)
        if rows[0]["eta"] > cutoff
    )


def apply_due(state: SimulationState, catalog: Catalog, due: DueDeliveries, now: datetime) -> int:
    """Add the due stops to stock, remember them, forget days past the horizon; returns units delivered."""
    store_index = {s: i for i, s in enumerate(catalog.stores["store_id"])}
    product_index = {p: i for i, p in enumerate(catalog.products["product_id"])}
    memory = state.deliveries
    units = 0
    for delivery in due.stops:
        known = [(p, q) for p, q in delivery.items if p in product_index]
        if delivery.store_id in store_index and known:  # another catalog's stops are skipped
            quantities = np.array([q for _, q in known])
            apply_deliveries(
                state,
                np.full(len(known), store_index[delivery.store_id]),
                np.array([product_index[p] for p, _ in known]),
                quantities,
            )
            units += int(quantities.sum())
        memory.add_stop(delivery.day, delivery.stop_id)
    for day, record in due.complete_records:
        memory.add_record(day, record)
    memory.forget_before(horizon_days(now)[0])
    if due.stops:
        logger.info("applied %d truck stops: %d units delivered", len(due.stops), units)
    return units
