"""Stores and products of the simulated retailer, built deterministically from a seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storeops.directory import DEPOTS

CATEGORIES: dict[str, tuple[str, ...]] = {
    "dairy": ("Milk", "Yogurt", "Butter", "Cheese", "Cream"),
    "bakery": ("Bread", "Bagels", "Muffins", "Rolls", "Croissant"),
    "produce": ("Apples", "Bananas", "Tomatoes", "Lettuce", "Carrots"),
    "beverages": ("Water", "Cola", "Juice", "Coffee", "Tea"),
    "snacks": ("Crisps", "Nuts", "Cookies", "Crackers", "Popcorn"),
    "frozen": ("Peas", "Pizza", "Ice Cream", "Fries", "Berries"),
    "household": ("Soap", "Tissues", "Detergent", "Sponges", "Foil"),
}
VARIANTS = ("Classic", "Organic", "Value", "Family", "Lite", "Fresh", "Select", "Mini")
CASE_PACKS = np.array([6, 8, 10, 12, 12, 24], dtype=np.int32)


@dataclass(frozen=True)
class Catalog:
    """N stores x M products; every store stocks every product.

    ``stores``: store_id, name, region, lat, lon, demand_scale.
    ``products``: product_id, name, category, case_pack, base_rate (units/hour at a store of scale 1).
    """

    stores: pd.DataFrame
    products: pd.DataFrame
    seed: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.stores), len(self.products)

    def directory(self) -> list[dict[str, Any]]:
        """What the trucks need to know about each store (``storeops.directory``): region and coordinates."""
        columns = ["store_id", "name", "region", "lat", "lon"]
        return [
            {k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()}
            for row in self.stores[columns].to_dict("records")
        ]


def build_catalog(n_stores: int, n_products: int, seed: int) -> Catalog:
    """The same stores and products for the same arguments, every time."""
    if n_stores < 1 or n_products < 1:
        raise ValueError("a catalog needs at least one store and one product")
    rng = np.random.default_rng([seed, 1])
    region_names = np.array(list(DEPOTS))
    regions = region_names[rng.integers(0, len(region_names), n_stores)]
    depots = np.array([DEPOTS[r] for r in regions])
    offsets = rng.normal(0.0, 0.35, size=(n_stores, 2))
    stores = pd.DataFrame(
        {
            "store_id": [f"S{i:04d}" for i in range(1, n_stores + 1)],
            "name": [f"Store {i:04d}" for i in range(1, n_stores + 1)],
            "region": regions,
            "lat": np.round(depots[:, 0] + offsets[:, 0], 4),
            "lon": np.round(depots[:, 1] + offsets[:, 1], 4),
            "demand_scale": np.round(rng.lognormal(0.0, 0.35, n_stores), 3),
        }
    )
    categories = list(CATEGORIES)
    cat_idx = rng.integers(0, len(categories), n_products)
    item_idx = rng.integers(0, 5, n_products)
    variant_idx = rng.integers(0, len(VARIANTS), n_products)
    products = pd.DataFrame(
        {
            "product_id": [f"P{i:04d}" for i in range(1, n_products + 1)],
            "name": [
                f"{VARIANTS[v]} {CATEGORIES[categories[c]][k]}"
                for v, c, k in zip(variant_idx, cat_idx, item_idx, strict=True)
            ],
            "category": [categories[c] for c in cat_idx],
            "case_pack": CASE_PACKS[rng.integers(0, len(CASE_PACKS), n_products)],
            "base_rate": np.round(rng.gamma(2.0, 0.6, n_products), 3),
        }
    )
    return Catalog(stores=stores, products=products, seed=seed)
