"""Where stores and depots are: published by the stores, read by the trucks.

The store directory is one JSON document at ``reference/stores.json`` in the data lake
(one simulated retailer per stack). Depots are fixed, one per region: trucks leave from
their region's depot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

STORE_DIRECTORY_KEY = "reference/stores.json"
DEPOTS: dict[str, tuple[float, float]] = {
    # region: (latitude, longitude) of its depot
    "north": (53.48, -2.24),
    "south": (50.91, -1.40),
    "east": (52.63, 1.30),
    "west": (51.45, -2.59),
    "central": (52.49, -1.89),
}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreLocation:
    """A store's region (its depot) and coordinates."""

    store_id: str
    region: str
    lat: float
    lon: float


def load_store_directory(s3: Any, bucket: str) -> dict[str, StoreLocation]:
    """The store directory the stores publish; empty if none was published yet."""
    try:
        body = s3.get_object(Bucket=bucket, Key=STORE_DIRECTORY_KEY)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return {}
        raise
    stores = {s["store_id"]: StoreLocation(s["store_id"], s["region"], s["lat"], s["lon"]) for s in json.loads(body)}
    logger.info("store directory: %d stores", len(stores))
    return stores


def publish_store_directory(s3: Any, bucket: str, stores: Sequence[Mapping[str, Any]]) -> None:
    """Publish the stores (each with store_id, region, lat, lon; more fields are kept)."""
    s3.put_object(Bucket=bucket, Key=STORE_DIRECTORY_KEY, Body=json.dumps(list(stores)).encode())
