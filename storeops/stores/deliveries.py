"""Deliveries: truck loads in the ledger reach their stores at each stop's ETA.

The store-data flow applies due deliveries to the simulated stock before each run, once
each (stop ids are remembered in the simulation state), so shortages resolve and the next
readings show the delivered goods.
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
from storeops.stores.simulation import SimulationState, apply_deliveries

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """The goods one truck stop brings to one store."""

    delivery_id: str  # <load_id>#<stop_number>
    load_id: str
    store_id: str
    items: tuple[tuple[str, int], ...]  # (product_id, quantity)


def _ledger_stops(
    s3: Any, bucket: str, now: datetime, skip_records: set[str], lookback_days: int
) -> Iterator[tuple[str, str, int, list[dict[str, Any]]]]:
    """(record, load_id, stop_number, rows) for every stop in the recent window records not in ``skip_records``."""
    for day in range(lookback_days, -1, -1):
        prefix = window_records_prefix(f"{now - timedelta(days=day):%Y-%m-%d}")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                record = obj["Key"].rsplit("/", 1)[-1].removesuffix(".json")
                if record in skip_records:
                    continue  # every stop of it was applied before: no need to read it
                stops: dict[tuple[str, int], list[dict[str, Any]]] = {}
                for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].iter_lines():
                    row = json.loads(line)
                    if row["record_type"] == "dispatch":  # a fenced window recorded nothing
                        stops.setdefault((row["load_id"], int(row["stop_number"])), []).append(row)
                for (load_id, number), rows in sorted(stops.items()):
                    yield record, load_id, number, rows


def due_deliveries(
    s3: Any, bucket: str, now: datetime, applied: set[str], lookback_days: int = 3
) -> tuple[list[Delivery], set[str]]:
    """Stops whose ETA has passed and that were not applied; plus the window records now fully due."""
    due: list[Delivery] = []
    records: set[str] = set()
    pending: set[str] = set()
    cutoff = format_timestamp(now)
    for record, load_id, number, rows in _ledger_stops(s3, bucket, now, applied, lookback_days):
        records.add(record)
        delivery_id = f"{load_id}#{number}"
        if delivery_id in applied:
            continue
        if rows[0]["eta"] > cutoff:
            pending.add(record)
            continue
        items = tuple((r["product_id"], int(r["quantity"])) for r in rows)
        due.append(Delivery(delivery_id, load_id, rows[0]["store_id"], items))
    return due, records - pending


def stops_in_transit(s3: Any, bucket: str, now: datetime, lookback_days: int = 1) -> int:
    """How many truck stops of recent loads have not arrived yet."""
    cutoff = format_timestamp(now)
    stops = _ledger_stops(s3, bucket, now, set(), lookback_days)
    return sum(1 for _, _, _, rows in stops if rows[0]["eta"] > cutoff)


def apply_due(state: SimulationState, catalog: Catalog, deliveries: list[Delivery], complete: set[str]) -> int:
    """Add due deliveries to stock; returns units delivered. Unknown stores/products are skipped."""
    store_index = {s: i for i, s in enumerate(catalog.stores["store_id"])}
    product_index = {p: i for i, p in enumerate(catalog.products["product_id"])}
    units = 0
    for delivery in deliveries:
        known = [(p, q) for p, q in delivery.items if p in product_index]
        if delivery.store_id not in store_index or not known:
            state.applied_deliveries.append(delivery.delivery_id)
            continue
        quantities = np.array([q for _, q in known])
        if apply_deliveries(
            state,
            delivery.delivery_id,
            np.full(len(known), store_index[delivery.store_id]),
            np.array([product_index[p] for p, _ in known]),
            quantities,
        ):
            units += int(quantities.sum())
    for record in complete:
        if record not in state.applied_deliveries:
            state.applied_deliveries.append(record)
    if deliveries:
        logger.info("applied %d truck stops: %d units delivered", len(deliveries), units)
    return units
