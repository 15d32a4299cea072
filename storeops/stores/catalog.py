"""Stores and products of the simulated retailer, built deterministically from a seed.

A product's category decides its shelf life (dairy, bakery and produce are perishable), its case
packs, its price and margin, how many units a shopper takes at once, and the hours of the day it
sells in (``storeops.stores.demand``). A product's rate of sale has a long tail: a few fast movers
and many slow, intermittent ones, as in real assortments. Stores are superstores or express
stores (``storeops.calendar``: their opening hours), near their region's depot.

What a retailer's systems would know is published to the lake (``storeops.stores.reference``:
the product master, the planogram, the promotion calendar). What only the simulator knows (each
product's true rate, its dispersion, its purchase sizes, its promotion response) stays here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storeops.calendar import FORMATS, TIMEZONE
from storeops.directory import DEPOTS


@dataclass(frozen=True)
class CategoryProfile:
    """What products of one category have in common (their rates and prices vary around it)."""

    items: tuple[str, ...]
    rate_median: float  # units a day at a store of demand scale 1, for the median product
    rate_sigma: float  # lognormal spread of product rates: the long tail
    shelf_life_days: tuple[int, int]  # (0, 0): not perishable
    case_packs: tuple[int, ...]
    price_median: float  # GBP
    margin: float  # gross margin: (price - unit cost) / price
    purchase_size: tuple[float, float]  # mean units a shopper takes at once, range across products
    hour_peaks: tuple[tuple[float, float, float], ...]  # (local hour, width in hours, weight) of its day's shape
    unit_litres: tuple[float, float]  # a unit's packed volume (its share of the case), range across products


CATEGORIES: dict[str, CategoryProfile] = {
    "dairy": CategoryProfile(
        items=("Milk", "Yogurt", "Butter", "Cheese", "Cream"),
        rate_median=3.0,
        rate_sigma=1.3,
        shelf_life_days=(7, 12),
        case_packs=(2, 4, 6),
        price_median=1.4,
        margin=0.25,
        purchase_size=(1.0, 1.4),
        hour_peaks=((8.5, 1.5, 1.0), (17.5, 2.0, 1.2), (13.0, 3.0, 0.6)),
        unit_litres=(0.3, 2.0),
    ),
    "bakery": CategoryProfile(
        items=("Bread", "Bagels", "Muffins", "Rolls", "Croissant"),
        rate_median=2.5,
        rate_sigma=1.3,
        shelf_life_days=(4, 6),
        case_packs=(2, 4, 6),
        price_median=1.3,
        margin=0.35,
        purchase_size=(1.0, 1.3),
        hour_peaks=((8.0, 1.5, 1.3), (12.5, 1.5, 0.7), (17.0, 2.0, 0.9)),
        unit_litres=(1.0, 3.5),
    ),
    "produce": CategoryProfile(
        items=("Apples", "Bananas", "Tomatoes", "Lettuce", "Carrots"),
        rate_median=2.5,
        rate_sigma=1.4,
        shelf_life_days=(4, 7),
        case_packs=(2, 4, 6),
        price_median=1.2,
        margin=0.3,
        purchase_size=(1.0, 1.6),
        hour_peaks=((11.5, 2.0, 0.9), (17.5, 2.0, 1.1)),
        unit_litres=(0.6, 2.0),
    ),
    "beverages": CategoryProfile(
        items=("Water", "Cola", "Juice", "Coffee", "Tea"),
        rate_median=1.0,
        rate_sigma=1.7,
        shelf_life_days=(0, 0),
        case_packs=(6, 12, 24),
        price_median=1.8,
        margin=0.3,
        purchase_size=(1.0, 3.0),
        hour_peaks=((12.5, 2.5, 0.8), (18.0, 2.5, 1.0)),
        unit_litres=(0.4, 2.2),
    ),
    "snacks": CategoryProfile(
        items=("Crisps", "Nuts", "Cookies", "Crackers", "Popcorn"),
        rate_median=0.8,
        rate_sigma=1.6,
        shelf_life_days=(0, 0),
        case_packs=(10, 12, 24),
        price_median=1.5,
        margin=0.35,
        purchase_size=(1.0, 2.0),
        hour_peaks=((15.5, 2.0, 0.8), (19.5, 2.0, 1.0)),
        unit_litres=(0.4, 2.0),
    ),
    "frozen": CategoryProfile(
        items=("Peas", "Pizza", "Ice Cream", "Fries", "Berries"),
        rate_median=0.5,
        rate_sigma=1.6,
        shelf_life_days=(0, 0),
        case_packs=(6, 8, 12),
        price_median=2.5,
        margin=0.3,
        purchase_size=(1.0, 1.8),
        hour_peaks=((17.5, 2.0, 1.2), (12.0, 3.0, 0.5)),
        unit_litres=(0.5, 2.0),
    ),
    "household": CategoryProfile(
        items=("Soap", "Tissues", "Detergent", "Sponges", "Foil"),
        rate_median=0.3,
        rate_sigma=1.7,
        shelf_life_days=(0, 0),
        case_packs=(6, 12),
        price_median=3.0,
        margin=0.35,
        purchase_size=(1.0, 2.5),
        hour_peaks=((11.0, 3.0, 1.0), (16.0, 3.0, 0.8)),
        unit_litres=(0.4, 2.5),
    ),
}
VARIANTS = ("Classic", "Organic", "Value", "Family", "Lite", "Fresh", "Select", "Mini")
SUPERSTORE_SHARE = 0.4
STORE_SCALE = {"superstore": 2.4, "express": 0.9}  # median demand scale of each format


@dataclass(frozen=True)
class Catalog:
    """N stores x M products; every store stocks every product.

    ``stores``: store_id, name, region, lat, lon, format, timezone, demand_scale.
    ``products``: product_id, name, category, case_pack, case_litres (a case's volume: what roll
    cages are counted in), shelf_life_days (0: not perishable), price, unit_cost, and what only the
    simulator knows: rate (units a day at a store of scale 1), dispersion (the negative-binomial
    shape of its daily demand), purchase_size (mean units a shopper takes), promo_elasticity (lift
    per unit of discount), promo_eligible.
    """

    stores: pd.DataFrame
    products: pd.DataFrame
    seed: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.stores), len(self.products)

    @property
    def perishable(self) -> np.ndarray:
        """(P,) bool: products with a shelf life."""
        return np.asarray(self.products["shelf_life_days"].to_numpy() > 0)

    def directory(self) -> list[dict[str, Any]]:
        """What the trucks need to know about each store (``storeops.directory``): region and coordinates."""
        columns = ["store_id", "name", "region", "lat", "lon", "format", "timezone"]
        return [
            {k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()}
            for row in self.stores[columns].to_dict("records")
        ]


def build_catalog(n_stores: int, n_products: int, seed: int) -> Catalog:
    """The same stores and products for the same arguments, every time."""
    if n_stores < 1 or n_products < 1:
        raise ValueError("a catalog needs at least one store and one product")
    return Catalog(stores=_stores(n_stores, seed), products=_products(n_products, seed), seed=seed)


def _stores(n_stores: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 1, 1])
    region_names = np.array(list(DEPOTS))
    regions = region_names[rng.integers(0, len(region_names), n_stores)]
    depots = np.array([DEPOTS[r] for r in regions])
    offsets = rng.normal(0.0, 0.35, size=(n_stores, 2))
    formats = np.where(rng.random(n_stores) < SUPERSTORE_SHARE, FORMATS[0], FORMATS[1])
    median = np.array([STORE_SCALE[f] for f in formats])
    return pd.DataFrame(
        {
            "store_id": [f"S{i:04d}" for i in range(1, n_stores + 1)],
            "name": [f"Store {i:04d}" for i in range(1, n_stores + 1)],
            "region": regions,
            "lat": np.round(depots[:, 0] + offsets[:, 0], 4),
            "lon": np.round(depots[:, 1] + offsets[:, 1], 4),
            "format": formats,
            "timezone": TIMEZONE,
            "demand_scale": np.round(median * rng.lognormal(0.0, 0.35, n_stores), 3),
        }
    )


def _products(n_products: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 1, 2])
    names = list(CATEGORIES)
    category = np.array(names)[rng.integers(0, len(names), n_products)]
    profiles = [CATEGORIES[c] for c in category]
    item = rng.integers(0, 5, n_products)
    variant = rng.integers(0, len(VARIANTS), n_products)
    rate = np.array([p.rate_median for p in profiles]) * np.exp(
        rng.normal(0, 1, n_products) * [p.rate_sigma for p in profiles]
    )
    low, high = (np.array([p.shelf_life_days[i] for p in profiles]) for i in (0, 1))
    shelf_life = np.where(high > 0, low + np.floor(rng.random(n_products) * (high - low + 1)), 0).astype(np.int64)
    pick = rng.random(n_products)
    case_pack = np.array([p.case_packs[int(x * len(p.case_packs))] for p, x in zip(profiles, pick, strict=True)])
    price = np.round(np.array([p.price_median for p in profiles]) * rng.lognormal(0.0, 0.4, n_products), 2)
    price = np.maximum(price, 0.3)
    margin = np.array([p.margin for p in profiles]) * rng.uniform(0.8, 1.2, n_products)
    size_low, size_high = (np.array([p.purchase_size[i] for p in profiles]) for i in (0, 1))
    size = size_low + (size_high - size_low) * rng.random(n_products) ** 2  # most products: about one a shopper
    volume_rng = np.random.default_rng([seed, 1, 3])  # a stream of its own: the other columns stay as they were
    litres_low, litres_high = (np.array([p.unit_litres[i] for p in profiles]) for i in (0, 1))
    unit_litres = volume_rng.uniform(litres_low, litres_high)
    return pd.DataFrame(
        {
            "product_id": [f"P{i:04d}" for i in range(1, n_products + 1)],
            "name": [
                f"{VARIANTS[v]} {CATEGORIES[c].items[k]}" for v, c, k in zip(variant, category, item, strict=True)
            ],
            "category": category,
            "case_pack": case_pack.astype(np.int64),
            "case_litres": np.round(unit_litres * case_pack, 2),
            "shelf_life_days": shelf_life,
            "price": price,
            "unit_cost": np.round(price * (1.0 - margin), 2),
            "rate": np.round(rate, 4),
            "dispersion": np.round(np.exp(rng.normal(np.log(6.0), 0.35, n_products)), 3),
            "purchase_size": np.round(size, 3),
            "promo_elasticity": np.round(rng.uniform(2.5, 6.0, n_products), 3),
            "promo_eligible": rng.random(n_products) < 0.65,
        }
    )
