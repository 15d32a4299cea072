"""The demand model against what is published about real retail demand (docs/demand-model.md).

Eight weeks of 100 stores x 50 products, drawn hour by hour from the model (no stock involved:
demand is what shoppers want). The ranges are the calibration targets of docs/demand-model.md,
each with where it comes from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storeops.stores.catalog import build_catalog
from storeops.stores.demand import DIP_DAYS, DemandModel, syntetos_boylan

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday in GMT, no holiday in the eight weeks
DAYS = 56


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    catalog = build_catalog(100, 50, 7)
    model = DemandModel(catalog, 0, 100)
    days = []
    promoted = []
    for day in range(DAYS):
        total = np.zeros(model.shape, dtype=np.int64)
        for hour in range(24):
            total += model.draw(START + timedelta(days=day, hours=hour))
        days.append(total)
        promoted.append(model.promotions.on_promotion((START + timedelta(days=day)).date()))
    return {
        "demand": np.array(days),  # (days, stores, products)
        "promoted": np.array(promoted),  # (days, products)
        "perishable": catalog.perishable,
    }


def test_most_pair_days_sell_nothing(sample: dict[str, np.ndarray]) -> None:
    zero_share = float((sample["demand"] == 0).mean())
    assert 0.40 <= zero_share <= 0.70, zero_share


def test_every_syntetos_boylan_class_is_present_and_most_series_are_intermittent(sample: dict[str, np.ndarray]) -> None:
    series = sample["demand"].reshape(DAYS, -1).T
    classes = [syntetos_boylan(s) for s in series]
    share = {name: classes.count(name) / len(classes) for name in ("smooth", "erratic", "intermittent", "lumpy")}
    assert all(value >= 0.05 for value in share.values()), share
    assert share["intermittent"] + share["lumpy"] >= 0.5, share


def test_weekends_peak_20_to_40_percent_above_weekdays(sample: dict[str, np.ndarray]) -> None:
    by_weekday = np.array([sample["demand"][w::7].sum() for w in range(7)]) / (DAYS / 7)
    peak = by_weekday[5:].max() / by_weekday[:5].mean()
    assert 1.2 <= peak <= 1.4, by_weekday / by_weekday.mean()


def test_daily_demand_is_overdispersed(sample: dict[str, np.ndarray]) -> None:
    series = sample["demand"].reshape(DAYS, -1).T.astype(float)
    mean, variance = series.mean(axis=1), series.var(axis=1)
    busy = mean >= 0.5
    ratio = float(np.median(variance[busy] / mean[busy]))
    assert ratio > 1.5, ratio  # a Poisson series has variance = mean


def test_a_few_products_sell_most_units(sample: dict[str, np.ndarray]) -> None:
    units = np.sort(sample["demand"].sum(axis=0).ravel())[::-1]
    top = units[: len(units) // 5].sum() / units.sum()
    assert 0.65 <= top <= 0.9, top


def test_promotions_cover_5_to_10_percent_of_pair_days_and_lift_sales_1_5_to_4_times(
    sample: dict[str, np.ndarray],
) -> None:
    promoted = sample["promoted"]
    assert 0.05 <= promoted.mean() <= 0.10, promoted.mean()
    chain = sample["demand"].sum(axis=1)  # (days, products): promotions are chain-wide
    lifts = []
    for product in range(chain.shape[1]):
        on = promoted[:, product]
        after = np.zeros_like(on)
        for day in np.flatnonzero(np.diff(on.astype(int)) == -1):  # the days after each promotion
            after[day + 1 : day + 1 + DIP_DAYS] = True
        base = ~on & ~after
        if on.sum() >= 3 and base.sum() >= 14 and chain[base, product].mean() > 0:
            lifts.append(chain[on, product].mean() / chain[base, product].mean())
    assert len(lifts) >= 5
    assert 1.5 <= float(np.median(lifts)) <= 4.0, lifts


def test_ambient_products_dip_after_a_promotion(sample: dict[str, np.ndarray]) -> None:
    promoted, chain = sample["promoted"], sample["demand"].sum(axis=1)
    dips = []
    for product in np.flatnonzero(~sample["perishable"]):
        on = promoted[:, product]
        ends = np.flatnonzero(np.diff(on.astype(int)) == -1)
        after = np.zeros_like(on)
        for day in ends:
            after[day + 1 : day + 1 + DIP_DAYS] = True
        base = ~on & ~after
        if after.sum() >= 5 and base.sum() >= 14 and chain[base, product].mean() > 1:
            dips.append(chain[after, product].mean() / chain[base, product].mean())
    assert dips
    assert float(np.mean(dips)) < 1.0, dips  # pantry loading: buyers stocked up during the promotion
