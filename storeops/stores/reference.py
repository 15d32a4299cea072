"""What a retailer's systems publish about its stores and products: the tables the planner may read.

Three Glue tables over Parquet objects under ``reference/`` in the lake (``deployments/template.yaml``):

- ``products`` (the product master): product_id, product_name, category, case_pack, case_litres (a
  case's volume: the trucks count roll cages with it), shelf_life_days
  (0: not perishable), price (regular, GBP), unit_cost;
- ``planogram``: store_id, product_id, shelf_capacity (units: nothing more fits on the shelf);
- ``promotions`` (the promotion plan, chain-wide): product_id, start_date, end_date (local dates,
  inclusive), discount_pct.

Nothing here is the simulator's truth: no demand rate, dispersion, purchase size or promotion lift (the
planogram follows sales, as real ones do: a pair's capacity is a few days of its mean demand, varying
by pair, so it says roughly how fast a product sells, as a real planogram would). One retailer per
lake: publishing a simulation replaces the tables of any earlier one.
The planogram is written a chunk of stores at a time (one object per chunk), so memory grows with
a chunk, not with the catalog. Every object is deterministic for the catalog, so publishing again
writes the same bytes.
"""

from __future__ import annotations

import io
import logging
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from storeops.aws_errors import is_not_found
from storeops.directory import PRODUCT_MASTER_KEY
from storeops.s3 import delete_prefix
from storeops.stores.catalog import Catalog
from storeops.stores.demand import PromoCalendar, store_products
from storeops.stores.simulation import shelf_capacity

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from storeops.stores.state import Simulation

REFERENCE_PREFIX = "reference/"
PRODUCTS_KEY = PRODUCT_MASTER_KEY  # the trucks read case volumes from it
PROMOTIONS_KEY = f"{REFERENCE_PREFIX}promotions/promotions.parquet"
PLANOGRAM_PREFIX = f"{REFERENCE_PREFIX}planogram/"
CATALOG_METADATA = "storeops-catalog"  # on the product master: the catalog the tables describe
# Each table's columns and Glue types (deployments/template.yaml declares the same).
PRODUCTS_COLUMNS = {
    "product_id": "string",
    "product_name": "string",
    "category": "string",
    "case_pack": "int",
    "case_litres": "double",
    "shelf_life_days": "int",
    "price": "double",
    "unit_cost": "double",
}
PLANOGRAM_COLUMNS = {"store_id": "string", "product_id": "string", "shelf_capacity": "int"}
PROMOTIONS_COLUMNS = {"product_id": "string", "start_date": "string", "end_date": "string", "discount_pct": "int"}
_DTYPES = {"string": "object", "int": "int32", "bigint": "int64", "double": "float64"}

logger = logging.getLogger(__name__)


def products_table(catalog: Catalog) -> pd.DataFrame:
    """The product master."""
    frame = catalog.products.rename(columns={"name": "product_name"})
    return _typed(frame, PRODUCTS_COLUMNS)


def planogram_table(catalog: Catalog, store_ids: np.ndarray, capacity: np.ndarray) -> pd.DataFrame:
    """The planogram rows of some stores (``capacity``: their (n, P) shelf capacities)."""
    n, n_products = capacity.shape
    frame = pd.DataFrame(
        {
            "store_id": np.repeat(np.asarray(store_ids), n_products),
            "product_id": np.tile(catalog.products["product_id"].to_numpy(), n),
            "shelf_capacity": capacity.reshape(-1),
        }
    )
    return _typed(frame, PLANOGRAM_COLUMNS)


def promotions_table(catalog: Catalog) -> pd.DataFrame:
    """The promotion plan (every promotion of the calendar)."""
    return _typed(PromoCalendar.of(catalog).table(catalog.products["product_id"].tolist()), PROMOTIONS_COLUMNS)


def shelf_prices(catalog: Catalog, day: date) -> tuple[np.ndarray, np.ndarray]:
    """(P,) each product's shelf price on ``day`` (local) and whether it is on promotion."""
    promotions = PromoCalendar.of(catalog)
    discount = promotions.discount_on(day)
    price = np.round(catalog.products["price"].to_numpy() * (1.0 - discount), 2)
    return np.maximum(price, 0.01), discount > 0


def planogram_key(chunk: int) -> str:
    return f"{PLANOGRAM_PREFIX}chunk-{chunk:05d}.parquet"


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: frame[name].astype(_DTYPES[kind]) for name, kind in columns.items()})


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="snappy")
    return buffer.getvalue()


def publish(s3: S3Client, bucket: str, key: str, frame: pd.DataFrame, metadata: dict[str, str] | None = None) -> None:
    """One reference object (the same frame gives the same bytes)."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=parquet_bytes(frame),
        ContentType="application/vnd.apache.parquet",
        Metadata=metadata or {},
    )


def catalog_name(catalog: Catalog) -> str:
    """What the reference tables are of: ``<stores>x<products>-seed<seed>``."""
    n_stores, n_products = catalog.shape
    return f"{n_stores}x{n_products}-seed{catalog.seed}"


def published_catalog(s3: S3Client, bucket: str) -> str | None:
    """The catalog the lake's reference tables were published for (None: none published)."""
    try:
        head = s3.head_object(Bucket=bucket, Key=PRODUCTS_KEY)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return head.get("Metadata", {}).get(CATALOG_METADATA)


def publish_catalog_tables(s3: S3Client, bucket: str, catalog: Catalog) -> None:
    """The product master and the promotion plan (the planogram goes a chunk at a time)."""
    products = products_table(catalog)
    promotions = promotions_table(catalog)
    publish(s3, bucket, PROMOTIONS_KEY, promotions)
    publish(s3, bucket, PRODUCTS_KEY, products, {CATALOG_METADATA: catalog_name(catalog)})
    logger.info("published %d products and %d promotions under %s", len(products), len(promotions), REFERENCE_PREFIX)


def publish_reference(s3: S3Client, bucket: str, simulation: Simulation) -> dict[str, int]:
    """Every reference table of a simulation (one retailer per lake): the planogram a chunk of stores at a
    time, replacing an earlier one, then the promotion plan and the product master, which names the catalog
    last (``published_catalog``); returns the rows of each."""
    catalog = simulation.catalog
    store_ids = catalog.stores["store_id"].to_numpy()
    delete_prefix(s3, bucket, PLANOGRAM_PREFIX)  # another simulation's planogram, perhaps of more chunks
    rows = 0
    for index, first, stop in simulation.layout:
        fixed = store_products(catalog, first, stop)
        frame = planogram_table(catalog, store_ids[first:stop], shelf_capacity(catalog, first, stop, fixed))
        publish(s3, bucket, planogram_key(index), frame)
        rows += len(frame)
    publish_catalog_tables(s3, bucket, catalog)
    return {"products": catalog.shape[1], "planogram": rows}


def read_parquet(s3: S3Client, bucket: str, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
