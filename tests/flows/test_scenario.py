"""The scenario runner: the closed loop in virtual time, its figures recomputed from the lake, the same
customers for every policy, and a planner that sees only what a retailer's systems hold."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from deployments.environment import prepare, set_up_scenario
from flows.scenario import FLEET
from flows.scenario import scenario as scenario_flow
from storeops.calendar import TIMEZONE, opening_hours
from storeops.clock import format_timestamp, parse_timestamp
from storeops.costs import CostParameters
from storeops.directory import DEPOTS, haversine_km
from storeops.ledger import LEDGER_PREFIX, decode_rows
from storeops.planning.forecast import DAILY_MARKERS, FORECAST_MARKERS, marked_days
from storeops.service_level import TRUTH_PREFIX, ServiceFigures, read_lake
from storeops.settings import load_settings
from storeops.stores.reference import read_parquet
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack
from tests.redelivery import redeliver_every_raw_object

pytestmark = pytest.mark.flow

START = datetime.fromisoformat("2026-03-23T00:00:00+00:00")


def scenario(**parameters: Any) -> dict[str, Any]:
    """The scenario flow on a fresh stack of its own, as its CLI runs it."""
    set_up_scenario(load_settings(), parameters.get("policy", "storeops"))
    return scenario_flow(**parameters)


def objects(s3: object, bucket: str, prefix: str) -> list[bytes]:
    bodies = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()  # type: ignore[attr-defined]
            bodies.append(gzip.decompress(body) if obj["Key"].endswith(".gz") else body)
    return bodies


def test_a_two_day_scenario_reports_figures_the_lake_reproduces(flow_env: LocalStack) -> None:
    result = scenario(days=2, stores=6, products=5, plan_every_hours=4, policy="storeops", seed=3, history_days=3)
    assert result["readings"] == 2 * 24 * 6 * 5
    assert result["planning_runs"] == 12
    assert result["units_shipped"] > 0
    env = prepare(load_settings(stack_name=result["stack"]))
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    # every plan joined a forecast made once a day from the daily rollup, none fell back to the plain rule
    assert result["plans_by_method"] == {"forecast": 12}
    forecasts = marked_days(s3, bucket, FORECAST_MARKERS, START.date() - timedelta(days=30))
    assert forecasts == {START.date(), START.date() + timedelta(days=1)}
    rolled = marked_days(s3, bucket, DAILY_MARKERS, START.date() - timedelta(days=30))
    # the history (its first day has no reading at 00:00, so it is incomplete), then each day as it closed
    assert rolled == {START.date() + timedelta(days=d) for d in range(-2, 1)}
    start, end = parse_timestamp(result["start"]), parse_timestamp(result["end"])
    assert (start, end) == (START, START + timedelta(days=2))  # the fixed virtual start, not the wall clock

    # the figures module over what read_lake reads gives the scenario's own figures
    lake = ServiceFigures.compute(read_lake(s3, bucket, start, end), FLEET.capacity_cages, CostParameters())
    figures = lake.as_dict()
    for key, value in figures.items():
        if key in ("planning_runs", "athena_bytes_scanned", "athena_bytes_source", "athena_cost_usd"):
            continue
        assert value == result[key], key

    # and every headline figure again, independently, from the lake's objects with plain pandas
    low, high = format_timestamp(start), format_timestamp(end)
    readings = pd.concat(
        [
            pd.read_json(io.BytesIO(b), lines=True, dtype={"observed_at": str}, convert_dates=False)
            for b in objects(s3, bucket, "inventory/")
        ]
    )
    readings = readings[(readings["observed_at"] > low) & (readings["observed_at"] <= high)]
    truth = pd.DataFrame([json.loads(line) for body in objects(s3, bucket, TRUTH_PREFIX) for line in body.splitlines()])
    lost = truth[(truth["kind"] == "lost") & (truth["observed_at"] > low) & (truth["observed_at"] <= high)]
    audits = truth[(truth["kind"] == "audit") & (truth["audit_at"] > low) & (truth["audit_at"] <= high)]
    demanded = readings["units_sold"].sum() + lost["units"].sum()
    assert result["units_demanded"] == demanded
    assert result["lost_sales_rate"] == round(lost["units"].sum() / demanded, 6)
    assert result["audit_out_of_stock_rate"] == round(audits["empty"].sum() / audits["audited"].sum(), 6)
    local_hours = pd.to_datetime(audits["audit_at"], utc=True).dt.tz_convert(TIMEZONE).dt.hour
    assert set(local_hours) <= {11, 15, 19}  # fixed audit times, in opening hours
    products = read_parquet(s3, bucket, "reference/products/products.parquet").set_index("product_id")
    perishable = set(products.index[products["shelf_life_days"] > 0])
    dispatch_rows = [
        row
        for body in objects(s3, bucket, LEDGER_PREFIX)
        for row in decode_rows(body)
        if row.record_type == "dispatch" and low < row.recorded_at <= high
    ]
    shipped = sum(r.quantity for r in dispatch_rows)
    expired = readings.loc[readings["product_id"].isin(perishable), "units_expired"].sum()
    assert result["units_shipped"] == shipped
    shipped_perishable = sum(r.quantity for r in dispatch_rows if r.product_id in perishable)
    assert result["waste_rate"] == (round(expired / shipped_perishable, 6) if shipped_perishable else None)
    directory = {s["store_id"]: s for s in json.loads(objects(s3, bucket, "reference/stores.json")[0])}
    loads: dict[str, list] = {}
    for row in dispatch_rows:
        loads.setdefault(row.load_id, []).append(row)
    km = 0.0
    for rows in loads.values():
        stops = sorted({(r.stop_number, r.store_id) for r in rows})
        depot = DEPOTS[directory[stops[0][1]]["region"]]
        points = [depot, *[(directory[s]["lat"], directory[s]["lon"]) for _, s in stops], depot]  # back to the depot
        route_km = sum(haversine_km(a, b) * FLEET.circuity for a, b in itertools.pairwise(points))  # road km
        assert rows[0].route_km == pytest.approx(route_km, abs=0.01 * len(points))  # whole metres a leg
        km += route_km
    assert result["trucks"] == len(loads)
    assert result["km"] == pytest.approx(round(km, 1), abs=0.1)
    assert result["stops_per_store_day"] == round(
        sum(len({r.stop_number for r in rows}) for rows in loads.values()) / 12, 4
    )
    # fill by the capacity measure: each stop's cases' volume (the product master's) in whole roll cages
    cages = 0
    for rows in loads.values():
        for number in {r.stop_number for r in rows}:
            litres = sum(
                math.ceil(r.quantity / products.loc[r.product_id, "case_pack"])
                * products.loc[r.product_id, "case_litres"]
                for r in rows
                if r.stop_number == number
            )
            cages += math.ceil(round(litres / FLEET.cage_litres, 9))
    assert result["cages"] == cages
    assert result["truck_fill"] == round(cages / (len(loads) * FLEET.capacity_cages), 6)
    # every stop unloaded inside its store's receiving window: from 3 h before it opens until it closes
    for row in dispatch_rows:
        opens, closes = parse_timestamp(row.window_opens), parse_timestamp(row.window_closes)
        local = opens.astimezone(ZoneInfo(TIMEZONE))
        hours = opening_hours(directory[row.store_id]["format"], local.date())
        assert closes - opens == timedelta(hours=hours.closes - hours.opens + FLEET.receiving_hours_before_opening)
        assert opens <= parse_timestamp(row.eta) <= closes
    assert result["late_stops_rate"] == 0.0
    assert 0 < result["route_hours_max"] <= FLEET.route_limit_hours
    held = readings.groupby("observed_at")["on_hand"].sum().mean()
    assert result["cover_days"] == pytest.approx(held / (demanded / 2), abs=1e-3)
    costs = CostParameters()
    margin = lost["product_id"].map(products["price"] - products["unit_cost"])
    total = (
        len(loads) * costs.truck_per_route
        + km * costs.per_km
        + sum(len({r.stop_number for r in rows}) for rows in loads.values()) * costs.per_stop
        + (readings["on_hand"] * readings["period_hours"] * readings["product_id"].map(products["unit_cost"])).sum()
        * costs.holding_per_unit_hour
        + (readings["units_expired"] * readings["product_id"].map(products["unit_cost"])).sum()
        + (lost["units"] * margin).sum()
    )
    assert result["cost_per_1000_units"] == pytest.approx(1000 * total / demanded, rel=1e-4)

    # the shelves never held more than the planogram allows, and every stop that arrived was shelved once
    planogram = read_parquet(s3, bucket, "reference/planogram/chunk-00000.parquet")
    joined = readings.merge(planogram, on=["store_id", "product_id"])
    assert len(joined) == len(readings)
    assert (joined["on_hand"] <= joined["shelf_capacity"]).all()
    arrived = sum(r.quantity for r in dispatch_rows if r.eta <= high)
    assert result["units_delivered"] == arrived > 0

    # Firehose delivers at least once: with every raw object delivered twice the figures are the same
    redeliver_every_raw_object(s3, bucket)
    again = ServiceFigures.compute(read_lake(s3, bucket, start, end), FLEET.capacity_cages, CostParameters())
    assert again.as_dict() == figures


def test_the_policies_see_the_same_customers_whenever_they_run(flow_env: LocalStack) -> None:
    shape = {"days": 2, "stores": 5, "products": 8, "seed": 5, "history_days": 1}
    none = scenario(policy="none", **shape)
    workshop = scenario(policy="workshop", **shape)
    again = scenario(policy="none", **shape)  # later, by the wall clock
    assert none["demand_digest"] == workshop["demand_digest"] == again["demand_digest"]
    assert none["units_demanded"] == workshop["units_demanded"]
    assert none["trucks"] == 0
    assert workshop["trucks"] >= 1
    assert workshop["trucks"] == workshop["stops"]  # one truck per alert: every load is one stop
    assert none["lost_sales_rate"] >= workshop["lost_sales_rate"]
    other_seed = scenario(policy="none", **{**shape, "seed": 6})
    assert other_seed["demand_digest"] != none["demand_digest"]


@pytest.mark.parametrize(
    "args",
    [["--days", "0"], ["--policy", "magic"], ["--stores", "x"], ["--start", "2999-01-01T00:00:00Z"], ["--start", "x"]],
)
def test_bad_cli_values_exit_2_with_one_line(args: list[str]) -> None:
    result = run_cli(["-m", "flows.scenario", *args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error" in result.stderr.strip().splitlines()[-1]  # the last line names the problem


def test_scenario_cli_json(cli_env: dict[str, str]) -> None:
    result = run_cli(
        ["-m", "flows.scenario", "--days", "1", "--stores", "3", "--products", "2", "--history-days", "1", "--json"],
        env=cli_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "lost_sales_rate",
        "audit_out_of_stock_rate",
        "cost_per_1000_units",
        "demand_digest",
        "units_delivered",
    ):
        assert key in payload
    assert not math.isnan(payload["cost_per_1000_units"])
    assert "lost sales" in result.stdout
