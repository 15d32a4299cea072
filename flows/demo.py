"""Flow ``demo``: the whole system once, on the embedded emulator by default.

    python -m flows.demo [--stores 100] [--products 50] [--json]

Starts the emulator and deploys the stack if needed, simulates a few ticks of store data,
plans, drains the trucks (with compressed travel time), lets the deliveries arrive, plans
again, and prints what happened. Running it again continues the same simulation.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

from prefect import flow

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.generate import store_data
from flows.plan import plan
from flows.prefect_api import prefect_api
from flows.trucks import trucks
from storeops.cli import emit_json, positive_int, print_summary, run_cli
from storeops.settings import load_settings
from storeops.stores.deliveries import stops_in_transit

DEMO_TRUCK_SPEED_KMH = 200_000.0  # travel time compressed to seconds so the demo sees its deliveries


def _step(number: int, text: str) -> None:
    print(f"[{number}/6] {text}", file=sys.stderr, flush=True)


@flow(name="demo", description="Generate, plan, dispatch, deliver and plan again, end to end.")
def demo(stores: int = 100, products: int = 50, ticks: int = 3, seed: int = 7) -> dict[str, Any]:
    _step(1, "starting the embedded AWS and deploying the stack (first time: about a minute)")
    env = prepare(load_settings())
    _step(2, f"simulating {ticks} ticks of {stores} stores x {products} products into Firehose")
    generated = store_data(stores=stores, products=products, ticks=ticks, seed=seed)
    _step(3, "planning: shortage analysis in Athena, dispatch requests to SQS")
    first = plan()
    _step(4, "trucks: draining the dispatch queue into truck loads")
    dispatch = trucks(until_empty=True, window_seconds=5.0, speed_kmh=DEMO_TRUCK_SPEED_KMH, minutes_per_stop=0.0)
    if dispatch["stopped_by"] in {"SIGINT", "SIGTERM"}:
        raise KeyboardInterrupt  # the trucks recorded their window and stopped; end the demo here
    _step(5, "waiting for the trucks to arrive, then a new round of readings")
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    deadline = time.monotonic() + 60
    while stops_in_transit(s3, bucket, datetime.now(UTC)) and time.monotonic() < deadline:
        time.sleep(0.5)
    after = store_data(stores=stores, products=products, ticks=1, seed=seed)
    _step(6, "planning again")
    second = plan()
    first_pairs = {(s["store_id"], s["product_id"]) for s in first["shortages"]}
    second_pairs = {(s["store_id"], s["product_id"]) for s in second["shortages"]}
    accounted = dispatch["dispatched"] + dispatch["dead_lettered"] + dispatch["duplicates_skipped"]
    return {
        "stores": stores,
        "products": products,
        "rows_sent": generated["rows_sent"] + after["rows_sent"],
        "shortages_first_plan": first["shortage_count"],
        "shortages_by_kind": first["shortages_by_kind"],
        "messages_sent": first["messages_sent"],
        "dispatched": dispatch["dispatched"],
        "duplicates_skipped": dispatch["duplicates_skipped"],
        "dead_lettered": dispatch["dead_lettered"],
        "trucks": dispatch["trucks"],
        "units_shipped": dispatch["units"],
        "units_delivered": after["units_delivered"],
        "shortages_second_plan": second["shortage_count"],
        "shortages_resolved": len(first_pairs - second_pairs),
        "lost": max(0, first["messages_sent"] - accounted),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.demo",
        description="Run the whole system once on the embedded emulator: generate, plan, dispatch, deliver, plan.",
    )
    parser.add_argument("--stores", type=positive_int, default=100, help="number of stores (default 100)")
    parser.add_argument("--products", type=positive_int, default=50, help="products per store (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    load_settings()
    quiet_expected_tracebacks()
    started = time.monotonic()
    with prefect_api():
        result = demo(stores=args.stores, products=args.products)
    result["seconds"] = round(time.monotonic() - started, 1)
    print_summary(
        f"demo: {args.stores} stores x {args.products} products in {result['seconds']} s",
        [
            ("readings ingested", result["rows_sent"]),
            ("shortages (first plan)", f"{result['shortages_first_plan']:,}  {result['shortages_by_kind']}"),
            ("dispatch requests sent", result["messages_sent"]),
            ("dispatched", result["dispatched"]),
            ("trucks", result["trucks"]),
            ("units shipped", result["units_shipped"]),
            ("units delivered to stores", result["units_delivered"]),
            ("duplicates skipped", result["duplicates_skipped"]),
            ("dead-lettered", result["dead_lettered"]),
            ("shortages (second plan)", result["shortages_second_plan"]),
            ("shortages resolved", result["shortages_resolved"]),
            ("lost", result["lost"]),
        ],
    )
    if args.json:
        emit_json(result)
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    run_cli(main)
