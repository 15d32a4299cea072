"""Tasks of the ``scenario`` flow: its own stack, and the service level it reached as artifacts."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from storeops.athena import SCANNED_BYTES_LABELS
from storeops.aws import AwsClients
from storeops.exceptions import ConfigurationError, StackError
from storeops.planning.models import PlanningTargets
from storeops.service_level import HourlySeries, ServiceFigures
from storeops.settings import Settings, load_settings
from tasks.environment import SET_UP, Environment, load_environment

MAX_STACK_NAME = 24
STACK_SUFFIX = {  # each policy's scenario stack: <stack>-<suffix>
    "storeops": "storeops",
    "plain": "plain",
    "oracle": "oracle",
    "workshop": "workshop",
    "workshop-consolidated": "wsconsol",
    "none": "none",
}


def scenario_stack_name(base: str, suffix: str) -> str:
    """Each policy's scenario runs on a stack of its own, ``<stack>-<suffix>``."""
    name = f"{base}-{suffix}"
    if len(name) > MAX_STACK_NAME:
        raise ConfigurationError(
            f"the scenario stack name {name!r} is longer than {MAX_STACK_NAME} characters",
            hint="set a shorter STOREOPS_STACK_NAME",
        )
    return name


def scenario_settings(settings: Settings, policy: str) -> Settings:
    """The settings of ``policy``'s scenario: those of ``settings`` on the stack ``<stack>-<suffix>``."""
    name = scenario_stack_name(settings.stack_name, STACK_SUFFIX[policy])
    return load_settings(**{**settings.model_dump(), "stack_name": name})


@task(name="scenario-stack", cache_policy=NO_CACHE)
def scenario_environment(settings: Settings, policy: str) -> Environment:
    """The fresh stack of ``policy``'s scenario, set up by whoever started the run
    (``deployments/environment.py::set_up_scenario``); a one-line error naming that step if it is missing."""
    scenario = scenario_settings(settings, policy)
    try:
        env = load_environment(scenario)
    except StackError as exc:
        raise StackError(
            exc.message,
            hint=f"run the scenario with `python -m flows.scenario --policy {policy}`, which makes its stack first "
            f"(a flow never deploys one; see {SET_UP})",
        ) from None
    get_run_logger().info("the scenario runs on stack %s", scenario.stack_name)
    return env


def chart_png(series: HourlySeries, title: str) -> bytes:
    """Empty shelves and units on hand at each reading, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), dpi=100)  # no pyplot: its global state is not thread-safe
    FigureCanvasAgg(figure)
    empty_axis = figure.subplots()
    times = np.array([t.replace(tzinfo=None) for t in series.times], dtype="datetime64[s]")  # all UTC
    empty_axis.plot(times, series.out_of_stock, color="#c0392b", linewidth=1.2)
    empty_axis.set_ylabel("store-products out of stock", color="#c0392b")
    stock_axis = empty_axis.twinx()
    stock_axis.plot(times, series.on_hand, color="#2c7fb8", linewidth=1.0)
    stock_axis.set_ylabel("units on hand", color="#2c7fb8")
    empty_axis.set_title(title)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@task(name="publish-service-level", cache_policy=NO_CACHE)
def publish_service_level(policy: str, figures: ServiceFigures, series: HourlySeries, settings: dict[str, Any]) -> None:
    """The figures as a table, a markdown summary, and the chart as an image artifact."""
    key = f"scenario-{policy}"
    values = figures.as_dict()
    create_table_artifact(
        key=f"{key}-figures",
        table=[{"figure": name, "value": value} for name, value in values.items() if not isinstance(value, dict)]
        + [{"figure": f"cost per 1,000 units: {k}", "value": v} for k, v in figures.cost_parts_per_1000_units.items()],
        description=f"Service figures of the {policy} policy over {figures.days:g} virtual days",
    )
    parts = " + ".join(f"{k} £{v:,.1f}" for k, v in figures.cost_parts_per_1000_units.items())

    def share(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}%}"

    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=(
            f"## Scenario: {policy} policy\n\n"
            f"{settings['stores']} stores x {settings['products']} products, {figures.days:g} virtual days from "
            f"{settings['start']}, planning every {settings['plan_every_hours']} h (seed {settings['seed']}).\n\n"
            f"| | |\n|---|---|\n"
            f"| lost sales (demand not served / demand) | **{figures.lost_sales_rate:.2%}** of "
            f"{figures.units_demanded:,} units demanded |\n"
            f"| lost sales on promoted days | {share(figures.promo_lost_sales_rate)} |\n"
            f"| shelves empty at audits (before deliveries, opening hours) | {share(figures.audit_out_of_stock_rate)} "
            f"of {figures.audits:,} |\n"
            f"| waste (perishables expired / shipped) | {share(figures.waste_rate)} |\n"
            f"| cost per 1,000 units demanded | **£{figures.cost_per_1000_units:,.1f}** ({parts}) |\n"
            f"| units shipped / refused (no room on the shelf) | {figures.units_shipped:,} / "
            f"{figures.units_refused:,} |\n"
            f"| stock held | {figures.stock_held_units:,.0f} units, {figures.cover_days:.2f} days of cover |\n"
            f"| trucks | {figures.trucks:,} (lower bound {figures.trucks_lower_bound:,}), fill "
            f"{share(figures.truck_fill, 0)}, {figures.stops_per_store_day:.2f} stops per store-day, "
            f"{figures.km:,.0f} km |\n"
            f"| planning | {figures.planning_runs} runs, {figures.athena_bytes_scanned:,} "
            f"{SCANNED_BYTES_LABELS[figures.athena_bytes_source]}, ${figures.athena_cost_usd:.4f} |\n\n"
            "Shelf audits in real stores (Gruen, Corsten & Bharadwaj 2002) find 8.3% of shelves empty on average, "
            "mostly from store ordering, forecasting and shelf-filling failures and DC stock-outs that this "
            "simulation does not have: that figure is not comparable with these.\n"
        ),
        description=f"Service figures of the {policy} policy",
    )
    png = base64.b64encode(chart_png(series, f"{policy}: empty shelves and units on hand")).decode()
    create_image_artifact(
        image_url=f"data:image/png;base64,{png}",
        key=f"{key}-chart",
        description=f"Empty store-products and units on hand at each reading ({policy})",
    )


@task(name="write-true-forecast", cache_policy=NO_CACHE)
def write_true_forecast(clients: AwsClients, targets: PlanningTargets, simulation: Any, day: Any, now: Any) -> int:
    """The distribution oracle's forecast of ``day``: the simulator's true demand distribution, written where
    the forecast flow writes ours, so that the oracle's plans run exactly our planner; returns the rows."""
    from datetime import UTC, datetime

    import pandas as pd

    from storeops.planning.forecast import FORECAST_COLUMNS, HORIZON_DAYS, write_forecast
    from storeops.stores.truth import true_demand_distribution

    catalog = simulation.catalog
    products = catalog.products
    first_day = datetime(day.year, day.month, day.day, tzinfo=UTC)

    def frames() -> Any:
        for index in range(simulation.layout.count):
            state = simulation.load(index)
            truth = true_demand_distribution(catalog, state, first_day, HORIZON_DAYS)
            n, p = state.shape
            columns: dict[str, Any] = {
                "store_id": np.repeat(catalog.stores["store_id"].to_numpy()[state.first_store : state.stop_store], p),
                "product_id": np.tile(products["product_id"].to_numpy(), n),
                "category": np.tile(products["category"].to_numpy(), n),
                "case_pack": np.tile(products["case_pack"].to_numpy(), n),
                "method": "oracle",
                "level": truth["means"][:, :, 0].reshape(-1),
                "dispersion": truth["dispersion"].reshape(-1),
                "elasticity": 0.0,
                **{f"mean_d{d}": truth["means"][:, :, d].reshape(-1) for d in range(HORIZON_DAYS)},
                **{f"discount_d{d}": 0 for d in range(HORIZON_DAYS)},
                **{f"share_h{h:02d}": truth["shares"][:, :, h].reshape(-1) for h in range(24)},
                "base_days": 0,
                "history_days": 0,
            }
            yield pd.DataFrame(columns)[[c for c in FORECAST_COLUMNS if c != "day"]]

    result = write_forecast(clients, targets, day, frames(), now, source="oracle")
    get_run_logger().info("the oracle's forecast of %s: %d store-products (the true distribution)", day, result.rows)
    return result.rows
