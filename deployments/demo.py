"""The demo (``python -m flows.demo``): the whole system once, on the embedded emulator by default.

    python -m flows.demo [--stores 100] [--products 50] [--days 2] [--json]

Sets the environment up (the emulator and the stack, if needed: ``deployments/environment.py``);
then the live path once (the stores' reading into Firehose, a plan in Athena, the trucks draining the
queue, nothing lost); then the closed loop for ``days`` virtual days (``flows.scenario``): stores selling hour by hour,
plans every 4 hours, trucks delivering at their ETAs, and the service level it reached.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from prefect import flow
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from deployments.environment import set_up, set_up_scenario
from deployments.prefect_api import prefect_api
from flows.cli import CliOptions
from flows.console import quiet_expected_tracebacks
from flows.generate import store_data
from flows.plan import plan
from flows.scenario import print_service_level, scenario
from flows.trucks import trucks
from storeops.cli import emit_json, print_summary, run_cli
from storeops.parameters import PRODUCTS, SEED, STORES, Days, Products, Seed, Stores
from storeops.settings import load_settings

STEPS = 5
DEMO_HISTORY_DAYS = 7  # the closed loop's sales history: the planner's week of lookback


def _step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", file=sys.stderr, flush=True)


@flow(name="demo", description="The live path once, then the closed loop in virtual time with its service level.")
def demo(stores: Stores = STORES, products: Products = PRODUCTS, days: Days = 2, seed: Seed = SEED) -> dict[str, Any]:
    _step(1, "starting the embedded AWS and deploying the stack (first time: about a minute)")
    settings = load_settings()
    set_up(settings)
    _step(2, f"live: {stores} stores x {products} products take a reading into Firehose")
    generated = store_data(stores=stores, products=products, seed=seed, wait=True)  # plan only what Athena sees
    _step(3, "live: planning (shortage analysis in Athena, dispatch requests to SQS)")
    planned = plan()
    _step(4, "live: trucks drain the dispatch queue into truck loads")
    dispatch = trucks(until_empty=True, window_seconds=5.0)
    if dispatch["stopped_by"] in {"SIGINT", "SIGTERM"}:
        raise KeyboardInterrupt  # the trucks finished their window and stopped; end the demo here
    _step(5, f"closed loop: {days} virtual days, planning every 4 h, trucks delivering at their ETAs")
    set_up_scenario(settings, "storeops")
    loop = scenario(days=days, stores=stores, products=products, seed=seed, history_days=DEMO_HISTORY_DAYS)
    accounted = dispatch["dispatched"] + dispatch["dead_lettered"] + dispatch["duplicates_skipped"]
    return {
        "stores": stores,
        "products": products,
        "rows_sent": generated["rows_sent"],
        "shortages": planned["shortage_count"],
        "shortages_by_kind": planned["shortages_by_kind"],
        "requests_sent": planned["requests_sent"],
        "dispatched": dispatch["dispatched"],
        "duplicates_skipped": dispatch["duplicates_skipped"],
        "dead_lettered": dispatch["dead_lettered"],
        "trucks": dispatch["trucks"],
        "units_shipped": dispatch["units"],
        "lost": max(0, planned["requests_sent"] - accounted),
        "service_level": loop,
    }


class DemoOptions(CliOptions):
    """Run the whole system once on the embedded emulator: the live path, then the closed loop in virtual time
    with the service level it reached."""

    model_config = SettingsConfigDict(cli_prog_name="python -m flows.demo")

    stores: Stores = STORES
    products: Products = PRODUCTS
    days: Days = Field(2, description="Virtual days of the closed loop.")


def main(argv: list[str] | None = None) -> int:
    args = DemoOptions.parse_or_exit(argv)
    settings = load_settings()
    quiet_expected_tracebacks()
    started = time.monotonic()
    with prefect_api(settings.local_home):
        result = demo(stores=args.stores, products=args.products, days=args.days)
    result["seconds"] = round(time.monotonic() - started, 1)
    print_summary(
        f"demo: {args.stores} stores x {args.products} products in {result['seconds']} s",
        [
            ("live: readings ingested", result["rows_sent"]),
            ("live: shortages", f"{result['shortages']:,}  {result['shortages_by_kind']}"),
            ("live: dispatch requests sent", result["requests_sent"]),
            ("live: dispatched", result["dispatched"]),
            ("live: trucks", result["trucks"]),
            ("live: units shipped", result["units_shipped"]),
            ("live: duplicates skipped", result["duplicates_skipped"]),
            ("live: dead-lettered", result["dead_lettered"]),
            ("live: lost", result["lost"]),
        ],
    )
    print(f"closed loop over {args.days} virtual days:")
    print_service_level([result["service_level"]])
    if args.json_output:
        emit_json(result)
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    run_cli(main)
