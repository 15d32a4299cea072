"""The service figures on a hand-made record: the field's definitions, each counted once."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from storeops.costs import CostParameters
from storeops.directory import DEPOTS, haversine_km
from storeops.service_level import LoopRecord, ServiceFigures

START = datetime(2026, 3, 23, tzinfo=UTC)
END = START + timedelta(days=2)


def reading(event: str, store: str, product: str, hour: int, on_hand: int, sold: int, expired: int = 0) -> dict:
    at = START + timedelta(hours=hour)
    return {
        "event_id": event,
        "store_id": store,
        "product_id": product,
        "observed_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "on_hand": on_hand,
        "units_sold": sold,
        "units_expired": expired,
        "period_hours": 1.0,
    }


def record(**changes: pd.DataFrame) -> LoopRecord:
    readings = pd.DataFrame(
        [
            reading("e1", "S0001", "P0001", 10, 5, 4),  # milk: perishable
            reading("e2", "S0001", "P0001", 34, 0, 6, expired=2),
            reading("e3", "S0002", "P0002", 10, 20, 10),  # soap
            reading("e4", "S0002", "P0002", 34, 12, 8),
        ]
    )
    lost = pd.DataFrame(
        [{"store_id": "S0001", "product_id": "P0001", "observed_at": readings["observed_at"][1], "units": 3}]
    )
    audits = pd.DataFrame(
        [
            {
                "store_id": "S0001",
                "audit_at": "2026-03-23T11:00:00.000Z",
                "audited": 2,
                "empty": 1,
                "empty_products": "",
            },
            {
                "store_id": "S0002",
                "audit_at": "2026-03-23T11:00:00.000Z",
                "audited": 2,
                "empty": 0,
                "empty_products": "",
            },
        ]
    )
    departure = "2026-03-23T12:00:00.000Z"
    dispatches = pd.DataFrame(
        [
            {
                "load_id": "L1",
                "store_id": "S0001",
                "product_id": "P0001",
                "quantity": 12,
                "recorded_at": departure,
                "stop_number": 1,
            },
            {
                "load_id": "L1",
                "store_id": "S0002",
                "product_id": "P0002",
                "quantity": 24,
                "recorded_at": departure,
                "stop_number": 2,
            },
            {
                "load_id": "L2",
                "store_id": "S0002",
                "product_id": "P0002",
                "quantity": 6,
                "recorded_at": departure,
                "stop_number": 1,
            },
        ]
    )
    stores = pd.DataFrame(
        [
            {"store_id": "S0001", "region": "north", "lat": 53.5, "lon": -2.2},
            {"store_id": "S0002", "region": "north", "lat": 53.3, "lon": -2.0},
        ]
    )
    products = pd.DataFrame(
        [
            {"product_id": "P0001", "shelf_life_days": 7, "price": 1.0, "unit_cost": 0.75},
            {"product_id": "P0002", "shelf_life_days": 0, "price": 2.0, "unit_cost": 1.2},
        ]
    )
    promotions = pd.DataFrame([{"product_id": "P0002", "start_date": "2026-03-24", "end_date": "2026-03-24"}])
    parts = {
        "readings": readings,
        "lost": lost,
        "refused": pd.DataFrame(columns=["store_id", "product_id", "observed_at", "units"]),
        "audits": audits,
        "dispatches": dispatches,
        "stores": stores,
        "products": products,
        "promotions": promotions,
    }
    return LoopRecord(start=START, end=END, **{**parts, **changes})


def test_the_figures_follow_the_fields_definitions() -> None:
    costs = CostParameters()
    figures = ServiceFigures.compute(record(), truck_capacity=100, costs=costs)
    assert figures.units_demanded == 28 + 3
    assert figures.lost_sales_rate == round(3 / 31, 6)  # lost by demand, not by readings
    assert figures.audit_out_of_stock_rate == 0.25
    assert figures.promo_units_demanded == 8  # soap on the 24th (the reading at 10:00 on the 24th)
    assert figures.promo_lost_sales_rate == 0.0
    assert figures.waste_rate == round(2 / 12, 6)  # perishable expired / perishable shipped
    held = ((5 + 20) + (0 + 12)) / 2  # total on hand at each reading time, averaged
    assert figures.stock_held_units == held
    assert figures.cover_days == round(held / (31 / 2), 4)  # a ratio of sums
    assert (figures.trucks, figures.stops, figures.units_shipped) == (2, 3, 42)
    assert figures.trucks_lower_bound == 1  # 42 units from one depot at one departure: one truck's worth
    assert figures.truck_fill == round(42 / 200, 6)
    depot = DEPOTS["north"]
    s1, s2 = (53.5, -2.2), (53.3, -2.0)
    km = sum(haversine_km(a, b) for a, b in itertools.pairwise([depot, s1, s2, depot]))
    km += 2 * haversine_km(depot, s2)  # the return leg counts
    assert figures.km == pytest.approx(round(km, 1))
    assert figures.stops_per_store_day == 3 / (2 * 2)
    parts = figures.cost_parts_per_1000_units
    assert parts["trucks"] == pytest.approx(1000 * 2 * costs.truck_per_route / 31, abs=1e-3)
    assert parts["lost_margin"] == pytest.approx(1000 * 3 * 0.25 / 31, abs=1e-3)
    assert parts["waste"] == pytest.approx(1000 * 2 * 0.75 / 31, abs=1e-3)
    holding = (5 * 0.75 + 0 * 0.75 + 20 * 1.2 + 12 * 1.2) * costs.holding_per_unit_hour
    assert parts["holding"] == pytest.approx(1000 * holding / 31, abs=1e-3)
    assert figures.cost_per_1000_units == pytest.approx(sum(parts.values()), abs=1e-2)


def test_a_reading_delivered_twice_and_its_waste_count_once() -> None:
    once = ServiceFigures.compute(record(), truck_capacity=100)
    doubled = record().readings
    twice = ServiceFigures.compute(record(readings=pd.concat([doubled, doubled.iloc[[1]]])), truck_capacity=100)
    assert twice.units_expired == once.units_expired == 2
    assert twice.as_dict() == once.as_dict()


def test_ratios_with_nothing_to_divide_by_have_no_value() -> None:
    empty = pd.DataFrame(columns=["load_id", "store_id", "product_id", "quantity", "recorded_at", "stop_number"])
    figures = ServiceFigures.compute(record(dispatches=empty), truck_capacity=100)
    assert figures.waste_rate is None
    assert figures.truck_fill is None
    assert figures.km_per_1000_units is None
    assert figures.trucks == figures.trucks_lower_bound == 0
    assert not math.isnan(figures.cost_per_1000_units)
