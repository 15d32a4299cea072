"""The store directory: where each store is, published by the simulation, read by the trucks.

One JSON document at ``reference/stores.json`` in the data lake (one simulated retailer per stack).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from storeops.catalog import Catalog
from storeops.dispatch.routing import StoreLocation

STORE_DIRECTORY_KEY = "reference/stores.json"


def directory_of(catalog: Catalog) -> list[dict[str, Any]]:
    """What the trucks need to know about each store: region and coordinates."""
    columns = ["store_id", "name", "region", "lat", "lon"]
    return [
        {k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()}
        for row in catalog.stores[columns].to_dict("records")
    ]


def load_store_directory(s3: Any, bucket: str) -> dict[str, StoreLocation]:
    """The store directory the simulation publishes (``reference/stores.json``)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=STORE_DIRECTORY_KEY)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return {}
        raise
    return {s["store_id"]: StoreLocation(s["store_id"], s["region"], s["lat"], s["lon"]) for s in json.loads(body)}


def publish_store_directory(s3: Any, bucket: str, stores: list[dict[str, Any]]) -> None:
    s3.put_object(Bucket=bucket, Key=STORE_DIRECTORY_KEY, Body=json.dumps(stores).encode())
