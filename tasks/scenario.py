"""Tasks of the ``scenario`` flow: its own stack, and the service level it reached as artifacts."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from deployments.environment import Environment, prepare
from deployments.localaws import LocalAws
from deployments.stack import delete
from storeops.athena import SCANNED_BYTES_LABELS
from storeops.aws import AwsClients
from storeops.exceptions import ConfigurationError
from storeops.service_level import HourlySeries, ServiceLevel
from storeops.settings import Settings, load_settings
from tasks.policy import AWS_CALL_RETRIES

MAX_STACK_NAME = 24


def scenario_stack_name(base: str, policy: str) -> str:
    """Each policy's scenario runs on a stack of its own, ``<stack>-<policy>``."""
    name = f"{base}-{policy}"
    if len(name) > MAX_STACK_NAME:
        raise ConfigurationError(
            f"the scenario stack name {name!r} is longer than {MAX_STACK_NAME} characters",
            hint="set a shorter STOREOPS_STACK_NAME",
        )
    return name


@task(name="scenario-stack", cache_policy=NO_CACHE, **AWS_CALL_RETRIES)
def fresh_stack(settings: Settings, policy: str) -> Environment:
    """A new, empty stack for this policy's scenario (an earlier one of the same name is deleted)."""
    name = scenario_stack_name(settings.stack_name, policy)
    scenario = load_settings(**{**settings.model_dump(), "stack_name": name})
    if scenario.is_local:
        LocalAws(scenario).start()  # no-op when it already runs
    delete(scenario, AwsClients.from_settings(scenario))
    get_run_logger().info("deploying the scenario stack %s", scenario.stack_name)
    return prepare(scenario)


def chart_png(series: HourlySeries, title: str) -> bytes:
    """Empty shelves and units on hand at each reading, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, empty_axis = pyplot.subplots(figsize=(9, 3.6), dpi=100)
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
    pyplot.close(figure)
    return buffer.getvalue()


@task(name="publish-service-level", cache_policy=NO_CACHE)
def publish_service_level(policy: str, figures: ServiceLevel, series: HourlySeries, settings: dict[str, Any]) -> None:
    """The figures as a table, a markdown summary, and the chart as an image artifact."""
    key = f"scenario-{policy}"
    create_table_artifact(
        key=f"{key}-figures",
        table=[{"figure": name, "value": value} for name, value in figures.as_dict().items()],
        description=f"Service level of the {policy} policy over {figures.days:g} virtual days",
    )
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=(
            f"## Scenario: {policy} policy\n\n"
            f"{settings['stores']} stores x {settings['products']} products, {figures.days:g} virtual days, "
            f"planning every {settings['plan_every_hours']} h (seed {settings['seed']}).\n\n"
            f"| | |\n|---|---|\n"
            f"| out of stock (share of store-product readings) | **{figures.out_of_stock_rate:.2%}** "
            "(retail average 8.3%) |\n"
            f"| lost sales | **{figures.lost_sales_rate:.2%}** of {figures.units_demanded:,} units demanded |\n"
            f"| units shipped | {figures.units_shipped:,} |\n"
            f"| trucks | {figures.trucks:,} ({figures.trucks_per_day:,.1f} a day, mean fill "
            f"{figures.mean_truck_fill:.0%}, {figures.trucks_per_1000_units:.2f} per 1,000 units) |\n"
            f"| average cover held | {figures.average_days_of_cover:.2f} days |\n"
            f"| planning | {figures.planning_runs} runs, {figures.athena_bytes_scanned:,} "
            f"{SCANNED_BYTES_LABELS[figures.athena_bytes_source]}, ${figures.athena_cost_usd:.4f} |\n"
        ),
        description=f"Service level of the {policy} policy",
    )
    png = base64.b64encode(chart_png(series, f"{policy}: empty shelves and units on hand")).decode()
    create_image_artifact(
        image_url=f"data:image/png;base64,{png}",
        key=f"{key}-chart",
        description=f"Out-of-stock store-products and units on hand at each reading ({policy})",
    )
