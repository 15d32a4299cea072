"""Where stores and depots are, and how big products' cases are: published by the stores, read by the trucks.

The store directory is one JSON document at ``reference/stores.json`` in the data lake
(one simulated retailer per stack). Depots are fixed, one per region: trucks leave from
their region's depot. The trucks read each product's case volume from the product master
(``PRODUCT_MASTER_KEY``, ``storeops.stores.reference`` publishes it).
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from botocore.exceptions import ClientError

from storeops.aws_errors import is_not_found

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STORE_DIRECTORY_KEY = "reference/stores.json"
PRODUCT_MASTER_KEY = "reference/products/products.parquet"
DEPOTS: dict[str, tuple[float, float]] = {
    # region: (latitude, longitude) of its depot
    "north": (53.48, -2.24),
    "south": (50.91, -1.40),
    "east": (52.63, 1.30),
    "west": (51.45, -2.59),
    "central": (52.49, -1.89),
}

EARTH_RADIUS_KM = 6371.0

logger = logging.getLogger(__name__)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class StoreLocation:
    """A store's region (its depot), coordinates and format."""

    store_id: str
    region: str
    lat: float
    lon: float
    format: str = "superstore"  # storeops.calendar.FORMATS: its opening hours, hence its receiving window


def _published(s3: S3Client, bucket: str, key: str) -> bytes | None:
    """The object at ``key``; None if none was published yet."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def load_store_directory(s3: S3Client, bucket: str) -> dict[str, StoreLocation]:
    """The store directory the stores publish; empty if none was published yet."""
    body = _published(s3, bucket, STORE_DIRECTORY_KEY)
    if body is None:
        return {}
    stores = {
        s["store_id"]: StoreLocation(s["store_id"], s["region"], s["lat"], s["lon"], s.get("format", "superstore"))
        for s in json.loads(body)
    }
    logger.info("store directory: %d stores", len(stores))
    return stores


def publish_store_directory(s3: S3Client, bucket: str, stores: Sequence[Mapping[str, Any]]) -> None:
    """Publish the stores (each with store_id, region, lat, lon; more fields are kept)."""
    s3.put_object(Bucket=bucket, Key=STORE_DIRECTORY_KEY, Body=json.dumps(list(stores)).encode())


def load_case_litres(s3: S3Client, bucket: str) -> dict[str, float]:
    """Each product's case volume (litres) from the product master; empty if none was published yet."""
    body = _published(s3, bucket, PRODUCT_MASTER_KEY)
    if body is None:
        return {}
    frame = pd.read_parquet(io.BytesIO(body))
    if "case_litres" not in frame.columns:
        logger.warning("the product master has no case_litres: every case counts as a default case")
        return {}
    volumes = frame["case_litres"].astype(float)
    sound = volumes.gt(0) & volumes.lt(float("inf"))  # NaN, 0 and negatives fall back to a default case
    if not sound.all():
        logger.warning("the product master: %d products without a usable case_litres", int((~sound).sum()))
    litres = dict(zip(frame.loc[sound, "product_id"].astype(str), volumes[sound], strict=True))
    logger.info("product master: case volumes of %d products", len(litres))
    return litres
