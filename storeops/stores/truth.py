"""The simulator's own record: what happened on the shelves that no store system records.

Kept for the service figures (``storeops.service_level``), never for the planner: demand an empty
shelf turned away (``lost``), deliveries that did not fit on the shelf (``refused``), and shelf
audits at fixed local times before that hour's deliveries (``audit``: how many shelves of an open
store were looked at and which were empty). The record lives in the lake under ``simulator/truth/``,
which no Glue table covers and the planner's role cannot read (``deployments/template.yaml``), as
gzip NDJSON, one object per reading and chunk, by event time (``storeops.service_level`` states the
format and reads it). Sparse: only pairs with something to say are written, so it stays small next to
the readings.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from storeops.clock import format_timestamp
from storeops.service_level import truth_key
from storeops.stores.catalog import Catalog
from storeops.stores.simulation import SimulationState, Tick

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _sparse(kind: str, values: np.ndarray, stores: list[str], products: list[str], at: str) -> Iterator[dict[str, Any]]:
    rows, cols = np.nonzero(values)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        yield {
            "kind": kind,
            "store_id": stores[r],
            "product_id": products[c],
            "observed_at": at,
            "units": int(values[r, c]),
        }


def truth_lines(catalog: Catalog, state: SimulationState, tick: Tick, refused: np.ndarray | None) -> bytes:
    """One reading's record of a chunk as NDJSON: lost and refused units (non-zero pairs only), its audits."""
    stores = catalog.stores["store_id"].tolist()[state.first_store : state.stop_store]
    products = catalog.products["product_id"].tolist()
    at = format_timestamp(tick.sim_clock)
    lines: list[dict[str, Any]] = list(_sparse("lost", tick.units_lost, stores, products, at))
    if refused is not None:
        lines += _sparse("refused", refused, stores, products, at)
    for audit in tick.audits:
        audit_at = format_timestamp(audit.at)
        for row in np.flatnonzero(audit.open_stores).tolist():
            empty = np.flatnonzero(audit.empty[row]).tolist()
            lines.append(
                {
                    "kind": "audit",
                    "store_id": stores[row],
                    "audit_at": audit_at,
                    "audited": len(products),
                    "empty": len(empty),
                    "empty_products": ",".join(products[c] for c in empty),
                }
            )
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def write_truth(s3: S3Client, bucket: str, observed_at: datetime, name: str, ndjson: bytes) -> str:
    key = truth_key(observed_at, name)
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(ndjson, compresslevel=1, mtime=0))
    return key


def true_demand_distribution(
    catalog: Catalog, state: SimulationState, first_day: datetime, days: int
) -> dict[str, Any]:
    """The true distribution of a chunk's demand on the UTC days from ``first_day`` (the distribution oracle's
    forecast, in the forecast table's terms): per pair, the expected units of each day (``mean_dN``, before the
    day's shocks are drawn), the variance-to-mean ratio of the first day's demand, the share of each local hour
    of day in the first day, as arrays of shape (n, P) or (n, P, ...). Never given to the planner except in the
    scenario's ``oracle`` policy, which measures what knowing the distribution is worth."""
    from datetime import timedelta

    from storeops.calendar import local_hour

    model = state.model
    n, p = model.shape
    means = np.zeros((n, p, days))
    shares = np.zeros((n, p, 24))
    for d in range(days):
        for h in range(24):
            hour = first_day + timedelta(days=d, hours=h)
            expected = model.expected_day_mean(local_hour(hour).day) * model.hour_shares_of(hour)
            means[:, :, d] += expected
            if d == 0:
                shares[:, :, local_hour(hour).hour] += expected
    total = shares.sum(axis=2, keepdims=True)
    shares = np.divide(shares, total, out=np.zeros_like(shares), where=total > 0)
    day = local_hour(first_day + timedelta(hours=12)).day
    mean, variance = model.expected_day_mean(day), model.day_variance(day)
    ratio = np.divide(variance, mean, out=np.ones_like(mean), where=mean > 0)
    return {"means": means, "dispersion": np.maximum(ratio, 1.0), "shares": shares}
