"""An independent pandas implementation of the shortage rules, to check the SQL against."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd

from storeops.clock import format_timestamp, hour_floor


def reference_shortages(
    readings: pd.DataFrame,
    as_of: datetime,
    lookback_hours: float,
    lead_time_hours: float,
    ledger: pd.DataFrame | None = None,
    stores: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Shortages as the rules in sql/shortages.md define them (no SQL involved): the readings of
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
    rows = []
    for r in latest.to_dict("records"):
        rate = r["units_sold_in_window"] / r["hours_in_window"] if r["hours_in_window"] > 0 else 0
        cover = r["on_hand"] / rate if rate > 0 else None
        if r["on_hand"] == 0:
            kind, priority = "out_of_stock", 1
        elif r["on_hand"] <= r["reorder_point"]:
            kind, priority = "below_reorder_point", 2
        elif cover is not None and cover < lead_time_hours:
            kind, priority = "at_risk", 3
        else:
            continue
        quantity = math.ceil((r["target_stock"] - r["on_hand"]) / r["case_pack"]) * r["case_pack"]
        if quantity <= 0 or _open(ledger, r, end):
            continue
        rows.append({**r, "kind": kind, "priority": priority, "quantity": quantity, "hours_of_cover": cover})
    frame = pd.DataFrame(rows, columns=[*latest.columns, "kind", "priority", "quantity", "hours_of_cover"])
    frame["_cover"] = pd.to_numeric(frame["hours_of_cover"]).astype("float64").round(6).fillna(math.inf)
    return frame.sort_values(["priority", "_cover", "store_id", "product_id"]).drop(columns="_cover")


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
