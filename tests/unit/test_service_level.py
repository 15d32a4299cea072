"""The service figures on a hand-made record: the field's definitions, each counted once."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from storeops.costs import CostParameters
from storeops.service_level import DISPATCH_COLUMNS, ROUTING_COLUMNS, LoopRecord, ServiceFigures

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

    def row(load: str, store: str, product: str, quantity: int, stop: int, cages: int, eta: str, km: float) -> dict:
        return {
            "load_id": load,
            "store_id": store,
            "product_id": product,
            "quantity": quantity,
            "recorded_at": departure,
            "stop_number": stop,
            "eta": eta,
            "depot": "north",
            "cages": cages,
            "window_opens": "2026-03-23T04:00:00.000Z",
            "window_closes": "2026-03-23T22:00:00.000Z",
            "departs": departure,
            "returns": "2026-03-23T15:30:00.000Z" if load == "L1" else "2026-03-23T13:00:00.000Z",
            "route_km": km,
        }

    dispatches = pd.DataFrame(
        [
            row("L1", "S0001", "P0001", 12, 1, 2, "2026-03-23T12:40:00.000Z", 61.5),
            row("L1", "S0002", "P0002", 24, 2, 3, "2026-03-23T22:10:00.000Z", 61.5),  # after the window closed
            row("L2", "S0002", "P0002", 6, 1, 1, "2026-03-23T12:30:00.000Z", 40.25),
        ]
    )
    routing = pd.DataFrame(
        [("w1", "north", 2, 101.75, 42, 3, 150.0, 42)],
        columns=["window_id", "depot", "trucks", "km", "units", "baseline_trucks", "baseline_km", "baseline_units"],
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
        "routing": routing,
        "stores": stores,
        "products": products,
        "promotions": promotions,
    }
    return LoopRecord(start=START, end=END, **{**parts, **changes})


def test_the_figures_follow_the_fields_definitions() -> None:
    costs = CostParameters()
    figures = ServiceFigures.compute(record(), capacity_cages=10, costs=costs)
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
    assert figures.cages == 6
    assert figures.trucks_lower_bound == 1  # 6 cages from one depot at one departure: one truck's worth
    assert figures.truck_fill == round(6 / (2 * 10), 6)  # by the capacity measure (cages), not units
    assert figures.km == round(61.5 + 40.25, 1)  # the routes' road km, return legs included
    assert figures.km_per_1000_units == round(1000 * 101.75 / 42, 3)
    assert figures.late_stops_rate == round(1 / 3, 6)
    assert figures.route_hours_max == 3.5
    assert figures.baseline_trucks == 3
    assert figures.baseline_km_per_1000_units == round(1000 * 150 / 42, 3)
    assert figures.routed_km_per_1000_units == round(1000 * 101.75 / 42, 3)
    assert figures.stops_per_store_day == 3 / (2 * 2)
    parts = figures.cost_parts_per_1000_units
    assert parts["trucks"] == pytest.approx(1000 * 2 * costs.truck_per_route / 31, abs=1e-3)
    assert parts["lost_margin"] == pytest.approx(1000 * 3 * 0.25 / 31, abs=1e-3)
    assert parts["waste"] == pytest.approx(1000 * 2 * 0.75 / 31, abs=1e-3)
    holding = (5 * 0.75 + 0 * 0.75 + 20 * 1.2 + 12 * 1.2) * costs.holding_per_unit_hour
    assert parts["holding"] == pytest.approx(1000 * holding / 31, abs=1e-3)
    assert figures.cost_per_1000_units == pytest.approx(sum(parts.values()), abs=1e-2)


def test_a_reading_delivered_twice_and_its_waste_count_once() -> None:
    once = ServiceFigures.compute(record(), capacity_cages=10)
    doubled = record().readings
    twice = ServiceFigures.compute(record(readings=pd.concat([doubled, doubled.iloc[[1]]])), capacity_cages=10)
    assert twice.units_expired == once.units_expired == 2
    assert twice.as_dict() == once.as_dict()


def test_ratios_with_nothing_to_divide_by_have_no_value() -> None:
    empty = pd.DataFrame(columns=DISPATCH_COLUMNS)
    figures = ServiceFigures.compute(record(dispatches=empty, routing=pd.DataFrame(columns=ROUTING_COLUMNS)), 10)
    assert figures.waste_rate is None
    assert figures.truck_fill is None
    assert figures.km_per_1000_units is None
    assert figures.trucks == figures.trucks_lower_bound == 0
    assert figures.late_stops_rate is None
    assert figures.baseline_km_per_1000_units is figures.baseline_trucks is None
    assert not math.isnan(figures.cost_per_1000_units)
