"""An independent pandas implementation of the planning rule (sql/shortages.md), to check the SQL against."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pandas as pd

from storeops.calendar import local_date
from storeops.clock import format_timestamp, hour_floor
from storeops.planning.models import CYCLE_HOURS, PROMO_FACTOR, SAFETY_MARGIN

NO_SHELF_LIMIT = 999_999


def _seconds(text: str) -> datetime:
    return datetime.fromisoformat(text[:19].replace("T", " "))


def reference_shortages(
    readings: pd.DataFrame,
    as_of: datetime,
    lookback_hours: float,
    lead_time_hours: float,
    ledger: pd.DataFrame | None = None,
    stores: tuple[str, ...] = (),
    *,
    review_hours: float = 1.0,
    planogram: pd.DataFrame | None = None,
    promotions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Shortages as sql/shortages.md defines them (no SQL involved): the readings of
    ``[as_of - lookback aligned down to its hour, as_of]``, every one of them raw."""
    start = format_timestamp(hour_floor(as_of - timedelta(hours=lookback_hours)))
    end = format_timestamp(as_of)
    window = readings[(readings["observed_at"] >= start) & (readings["observed_at"] <= end)]
    if stores:
        window = window[window["store_id"].isin(stores)]
    pairs = window.groupby(["store_id", "product_id"])
    sales = pairs["units_sold"].sum().rename("units_sold_in_window")
    hours = pairs["period_hours"].sum().rename("hours_in_window")  # the time the window's readings cover
    latest = (
        window.sort_values(["observed_at", "event_id"], ascending=False)
        .groupby(["store_id", "product_id"], as_index=False)
        .head(1)
        .merge(sales.reset_index(), on=["store_id", "product_id"])
        .merge(hours.reset_index(), on=["store_id", "product_id"])
    )
    capacity = _capacity(planogram)
    promoted = _promoted(promotions, local_date(as_of))
    lead = _store_lead_times(ledger, latest, lead_time_hours)
    rows = []
    for r in latest.to_dict("records"):
        rate = r["units_sold_in_window"] / r["hours_in_window"] if r["hours_in_window"] > 0 else 0.0
        cover = r["on_hand"] / rate if rate > 0 else None
        factor = PROMO_FACTOR if r["product_id"] in promoted else 1.0
        shelf = capacity.get((r["store_id"], r["product_id"]), NO_SHELF_LIMIT)
        protection = review_hours + lead[r["store_id"]]
        reorder_point = max(math.ceil(round(rate * factor * protection * (1 + SAFETY_MARGIN), 6)), 1)
        target = min(shelf, reorder_point + max(r["case_pack"], math.ceil(round(rate * factor * CYCLE_HOURS, 6))))
        if r["on_hand"] == 0:
            kind, priority = "out_of_stock", 1
        elif r["on_hand"] <= reorder_point:
            kind, priority = "below_reorder_point", 2
        else:
            continue
        cases = min(
            math.ceil((target - r["on_hand"]) / r["case_pack"]), math.floor((shelf - r["on_hand"]) / r["case_pack"])
        )
        quantity = cases * r["case_pack"]
        if quantity <= 0 or _open(ledger, r, end):
            continue
        rows.append(
            {
                **r,
                "kind": kind,
                "priority": priority,
                "quantity": quantity,
                "hours_of_cover": cover,
                "reorder_point": reorder_point,
                "target_stock": target,
                "sales_per_hour": rate,
            }
        )
    columns = [*latest.columns, "kind", "priority", "quantity", "hours_of_cover", "reorder_point", "target_stock"]
    frame = pd.DataFrame(rows, columns=[*dict.fromkeys([*columns, "sales_per_hour"])])
    frame["_cover"] = pd.to_numeric(frame["hours_of_cover"]).astype("float64").round(6).fillna(math.inf)
    return frame.sort_values(["priority", "_cover", "store_id", "product_id"]).drop(columns="_cover")


def _capacity(planogram: pd.DataFrame | None) -> dict[tuple[str, str], int]:
    if planogram is None or planogram.empty:
        return {}
    return {
        (s, p): int(c) for s, p, c in planogram[["store_id", "product_id", "shelf_capacity"]].itertuples(index=False)
    }


def _promoted(promotions: pd.DataFrame | None, today: date) -> set[str]:
    """Products the plan promotes: a promotion overlapping its local day or the next."""
    if promotions is None or promotions.empty:
        return set()
    first, last = today.isoformat(), (today + timedelta(days=1)).isoformat()
    overlapping = promotions[(promotions["start_date"] <= last) & (promotions["end_date"] >= first)]
    return set(overlapping["product_id"])


def _store_lead_times(ledger: pd.DataFrame | None, latest: pd.DataFrame, default: float) -> dict[str, float]:
    """Each store's achieved lead time: request to arrival over the ledger's delivered shortages of the pairs
    the window has readings of (the default where it has none)."""
    stores = set(latest["store_id"])
    lead = dict.fromkeys(stores, default)
    if ledger is None or ledger.empty:
        return lead
    requested = ledger[ledger["record_type"] == "request"].groupby("shortage_id")["recorded_at"].max()
    arrived = ledger[ledger["record_type"] == "dispatch"].groupby("shortage_id")["eta"].max()
    pairs = ledger.groupby("shortage_id")[["store_id", "product_id"]].max()
    both = pairs.join(requested.rename("requested"), how="inner").join(arrived.rename("eta"), how="inner")
    both["seconds"] = [
        (_seconds(e) - _seconds(r)).total_seconds() for r, e in zip(both["requested"], both["eta"], strict=True)
    ]
    read = set(zip(latest["store_id"], latest["product_id"], strict=True))
    both = both[[(s, p) in read for s, p in zip(both["store_id"], both["product_id"], strict=True)]]
    for store, group in both.groupby("store_id"):
        lead[store] = group["seconds"].sum() / len(group) / 3600.0
    return lead


def _open(ledger: pd.DataFrame | None, reading: dict, as_of: str) -> bool:
    if ledger is None or ledger.empty:
        return False
    pair = ledger[(ledger["store_id"] == reading["store_id"]) & (ledger["product_id"] == reading["product_id"])]
    dispatched = set(ledger.loc[ledger["record_type"] == "dispatch", "shortage_id"])
    requests = pair[(pair["record_type"] == "request") & (pair["open_until"] > as_of)]
    if (~requests["shortage_id"].isin(dispatched)).any():
        return True
    etas = pair.loc[pair["record_type"] == "dispatch", "eta"]
    return bool(len(etas)) and etas.max()[:19].replace("T", " ") > reading["observed_at"][:19].replace("T", " ")
