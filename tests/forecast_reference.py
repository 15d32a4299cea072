"""An independent pandas implementation of the demand forecast (sql/forecast.sql), to check the SQL against.

The same formulas from the same frames: the daily rollup (``dt``, ``day`` and ``DAILY_COLUMNS``), the
product master (``product_id``, ``price``: the regular price) and the promotion plan (``product_id``,
``start_date``, ``end_date``, ``discount_pct``), with ``storeops.planning.forecast.forecast_parameters``.
A SQL NULL is NaN here: ``case when c then x end`` is ``x.where(c)``, ``sum`` skips NULLs and is NULL over
none (``min_count=1``), ``nullif(x, 0)`` is ``x.where(x != 0)``, ``coalesce`` is ``fillna``.

Outside its domain: a SQL double NaN (0.0 / 0.0, which both Trino and DuckDB give when a store-category has
sales on some weekdays of its base days and none on another, so that a weekday factor is 0 and a pair's
base sales of that weekday, all 0, are divided by it) propagates through SQL sums, whereas NaN here is
NULL and is skipped; frames checked against this must give every store-category positive base sales on
every weekday. Products are unique in the product master, and every product of the rollup is in it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

HOURS = [f"{h:02d}" for h in range(24)]
HORIZON = 3


def _nullif_zero(values: pd.Series) -> pd.Series:
    return values.where(values != 0)


def _weighted_mean(
    frame: pd.DataFrame, keys: list[str], mask: pd.Series, weight: pd.Series, value: pd.Series
) -> pd.Series:
    """``sum(case when mask then weight * value end) / nullif(sum(case when mask then weight end), 0)``."""
    parts = pd.DataFrame({"num": (weight * value).where(mask), "den": weight.where(mask)})
    sums = parts.groupby([frame[k] for k in keys]).sum(min_count=1)
    return sums["num"] / _nullif_zero(sums["den"])


def _lift_per_discount(units: pd.Series, expected: pd.Series, discount: pd.Series, days: pd.Series) -> pd.Series:
    """``(units / nullif(expected, 0) - 1) / nullif(discount / nullif(days, 0), 0)``."""
    return (units / _nullif_zero(expected) - 1) / _nullif_zero(discount / _nullif_zero(days))


def reference_forecast(
    daily: pd.DataFrame, products: pd.DataFrame, promotions: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """What sql/forecast.sql returns for these tables and parameters (the same columns, in its order)."""
    history = daily[(daily["dt"] >= params["first_day"]) & (daily["dt"] <= params["last_day"])].reset_index(drop=True)
    h0 = pd.Timestamp(params["h0_day"])
    days = pd.to_datetime(history["day"])
    regular = history["product_id"].map(products.set_index("product_id")["price"])
    frame = history.assign(
        weekday=days.dt.day_of_week + 1,
        age=(h0 - days).dt.days,
        discount=np.maximum(0.0, 1.0 - history["price"] / _nullif_zero(regular)),
    )
    store_category = [frame["store_id"], frame["category"]]

    # profiled and uncensored: the store-category's hour-of-day sales, each day's stocked share of its demand
    hour_columns = [f"sold_h{h}" for h in HOURS]
    pooled_hours = frame[hour_columns].groupby(store_category).transform("sum")
    for h in HOURS:
        frame[f"hour_{h}"] = pooled_hours[f"sold_h{h}"]
    total = frame[[f"hour_{h}" for h in HOURS]].sum(axis=1).astype(float)
    censored = sum(
        frame[f"hour_{h:02d}"].where((frame["empty_mask"].str[h - 1] == "1") & (frame[f"sold_h{h:02d}"] == 0), 0)
        for h in range(1, 24)
    )
    frame["in_stock"] = 1.0 - (censored / _nullif_zero(total)).fillna(0.0)
    teaches = frame["in_stock"] >= params["min_in_stock"]
    frame["base"] = (frame["promoted"] == 0) & teaches
    frame["promo_day"] = (frame["promoted"] == 1) & teaches
    frame["demand"] = (frame["units_sold"] / frame["in_stock"]).where(teaches)

    # pooled: the weekday factors of each store and category over its base days
    base_units = frame["demand"].where(frame["base"], 0).astype(float)
    base_count = frame["base"].astype(int)
    sums = pd.DataFrame({"units": base_units, "count": base_count})
    by_weekday = sums.groupby([*store_category, frame["weekday"]]).transform("sum")
    overall = sums.groupby(store_category).transform("sum")
    weekday_mean = by_weekday["units"] / _nullif_zero(by_weekday["count"])
    overall_mean = overall["units"] / _nullif_zero(overall["count"])
    frame["dow_factor"] = weekday_mean / _nullif_zero(overall_mean)
    w_level = (1.0 - params["alpha_level"]) ** (frame["age"] - 1)
    w_occurrence = (1.0 - params["alpha_occurrence"]) ** (frame["age"] - 1)
    w_size = (1.0 - params["alpha_size"]) ** (frame["age"] - 1)

    # pairs
    keys = ["store_id", "product_id"]
    dow = frame["dow_factor"].where(frame["dow_factor"] != 0).fillna(1.0)
    deseasonalised = frame["demand"] / dow
    selling = frame["units_sold"] > 0
    groups = frame.groupby(keys)
    pairs = pd.DataFrame(
        {
            "category": groups["category"].max(),
            "case_pack": groups["case_pack"].max(),
            "level": _weighted_mean(frame, keys, frame["base"], w_level, deseasonalised),
            "level_square": _weighted_mean(frame, keys, frame["base"], w_level, deseasonalised**2),
            "occurrence": _weighted_mean(frame, keys, frame["base"], w_occurrence, selling.astype(float)),
            "size": _weighted_mean(frame, keys, frame["base"] & selling, w_size, deseasonalised),
            "base_days": groups["base"].sum(),
            "selling_days": (frame["base"] & selling).groupby([frame[k] for k in keys]).sum(),
            "all_days_mean": groups["units_sold"].sum().astype(float) / groups.size(),
            "promo_units": frame["demand"].where(frame["promo_day"], 0).groupby([frame[k] for k in keys]).sum(),
            "promo_base_days": frame["dow_factor"]
            .fillna(1.0)
            .where(frame["promo_day"], 0.0)
            .groupby([frame[k] for k in keys])
            .sum(),
            "promo_discount": frame["discount"]
            .where(frame["promo_day"], 0.0)
            .fillna(0.0)
            .groupby([frame[k] for k in keys])
            .sum(),
            "promo_days": frame["promo_day"].groupby([frame[k] for k in keys]).sum(),
            "history_days": groups.size(),
        }
    )
    for weekday in range(1, 8):
        factor = frame["dow_factor"].where(frame["weekday"] == weekday)
        pairs[f"dow_{weekday}"] = factor.groupby([frame[k] for k in keys]).max().fillna(1.0)
    for h in HOURS:
        pairs[f"hour_{h}"] = groups[f"hour_{h}"].max()
    pairs = pairs.reset_index()

    # estimated: the method, the promotions' lift pooled over the product's stores and over its category
    intermittent = (pairs["selling_days"] > 0) & (
        pairs["base_days"] / pairs["selling_days"].where(pairs["selling_days"] > 0) >= params["intermittent_adi"]
    )
    pairs["method"] = np.where(intermittent, "intermittent", "smooth")
    expected = pairs["promo_base_days"] * pairs["level"].fillna(pairs["all_days_mean"])
    pairs = pairs.assign(promo_expected=expected)
    totals = ["promo_units", "promo_expected", "promo_discount", "promo_days"]
    product = pairs.groupby("product_id")[totals].transform("sum")
    category = pairs.groupby("category")[totals].transform("sum")
    hour_total = pairs[[f"hour_{h}" for h in HOURS]].sum(axis=1)

    # models
    daily_level = (
        (pairs["occurrence"] * pairs["size"]).where(intermittent, pairs["level"]).fillna(pairs["all_days_mean"])
    ).fillna(0.0)
    default, prior = params["default_elasticity"], params["promo_prior_days"]
    own = _lift_per_discount(*(product[c] for c in totals)).fillna(default)
    pooled = _lift_per_discount(*(category[c] for c in totals)).fillna(default)
    elasticity_raw = (product["promo_days"] * own + prior * pooled) / (product["promo_days"] + prior)
    elasticity = np.maximum(0.0, np.minimum(params["max_elasticity"], elasticity_raw.fillna(default)))

    # the horizon's promotions
    horizon = [date.fromisoformat(params["h0_day"]) + timedelta(days=d) for d in range(HORIZON)]
    labels = [d.isoformat() for d in horizon]
    plan = promotions[(promotions["end_date"] >= labels[0]) & (promotions["start_date"] <= labels[-1])]
    discounts = pd.DataFrame(index=pd.Index(plan["product_id"].unique(), name="product_id"))
    for d, label in enumerate(labels):
        on = plan[(plan["start_date"] <= label) & (plan["end_date"] >= label)]
        discounts[f"discount_d{d}"] = on.groupby("product_id")["discount_pct"].max()
    discount = (
        pairs[["product_id"]]
        .merge(discounts.reset_index(), on="product_id", how="left")
        .fillna({f"discount_d{d}": 0 for d in range(HORIZON)})
    )

    out = pd.DataFrame(
        {
            "store_id": pairs["store_id"],
            "product_id": pairs["product_id"],
            "category": pairs["category"],
            "case_pack": pairs["case_pack"].astype(int),
            "method": pairs["method"],
            "level": daily_level,
            "dispersion": np.maximum(
                1.0, ((pairs["level_square"] - pairs["level"] ** 2) / _nullif_zero(pairs["level"])).fillna(1.0)
            ),
            "elasticity": elasticity,
        }
    )
    for d in range(HORIZON):
        weekday = int(params[f"h{d}_weekday"])
        factor = pairs[f"dow_{weekday}"]
        out[f"mean_d{d}"] = daily_level * factor * (1.0 + elasticity * discount[f"discount_d{d}"] / 100.0)
        out[f"discount_d{d}"] = discount[f"discount_d{d}"].astype(int)
    for h in HOURS:
        out[f"share_h{h}"] = pairs[f"hour_{h}"].astype(float) / _nullif_zero(hour_total)
    out["base_days"] = pairs["base_days"].astype(int)
    out["history_days"] = pairs["history_days"].astype(int)
    return out.sort_values(["store_id", "product_id"]).reset_index(drop=True)
