"""Service-level benchmark: the closed loop under three policies, same seed and demand, side by side.

    python -m bench.service_level [--days 14] [--stores 100] [--products 50] [--plan-every-hours 4]
        [--seed 7] [--policies storeops,workshop,none] [--json]

Runs ``flows.scenario`` once per policy on one fresh emulator (each on a stack of its own):
``storeops`` (this planner), ``workshop`` (the original workshop's rule), ``none`` (no
replenishment). Targets: this planner's out-of-stock rate <= 1.0% and lost sales <= 0.5%, with
fewer trucks per 1,000 units shipped than the workshop rule; the whole run under 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from bench.harness import bench_environment
from flows.prefect_api import prefect_api
from flows.scenario import print_service_level, scenario
from storeops.cli import emit_json, positive_int

TARGET_OUT_OF_STOCK = 0.01
TARGET_LOST_SALES = 0.005
TARGET_SECONDS = 600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service_level", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=positive_int, default=14)
    parser.add_argument("--stores", type=positive_int, default=100)
    parser.add_argument("--products", type=positive_int, default=50)
    parser.add_argument("--plan-every-hours", type=positive_int, default=4)
    parser.add_argument("--seed", type=positive_int, default=7)
    parser.add_argument("--policies", default="storeops,workshop,none", help="comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    with bench_environment() as env:
        os.environ["STOREOPS_TARGET"] = "local"
        os.environ["STOREOPS_LOCAL_PORT"] = str(env.settings.local_port)
        os.environ["STOREOPS_LOCAL_HOME"] = str(env.settings.local_home)
        with prefect_api():
            for policy in args.policies.split(","):
                results.append(
                    scenario(
                        days=args.days,
                        stores=args.stores,
                        products=args.products,
                        plan_every_hours=args.plan_every_hours,
                        policy=policy,
                        seed=args.seed,
                    )
                )
                print(f"{policy}: done in {results[-1]['seconds']} s", flush=True)
    seconds = round(time.monotonic() - started, 1)
    by_policy = {r["policy"]: r for r in results}
    print(
        f"service level: {args.days} virtual days, {args.stores} stores x {args.products} products, "
        f"planning every {args.plan_every_hours} h, seed {args.seed}; {seconds} s in all"
    )
    print_service_level(results)
    checks: dict[str, bool] = {"under_10_minutes": seconds <= TARGET_SECONDS}
    if "storeops" in by_policy:
        ours = by_policy["storeops"]
        checks["out_of_stock_rate"] = ours["out_of_stock_rate"] <= TARGET_OUT_OF_STOCK
        checks["lost_sales_rate"] = ours["lost_sales_rate"] <= TARGET_LOST_SALES
        if "workshop" in by_policy:
            checks["fewer_trucks_per_1000_units"] = (
                ours["trucks_per_1000_units"] < by_policy["workshop"]["trucks_per_1000_units"]
            )
    for name, ok in checks.items():
        print(f"  target {name}: {'met' if ok else 'MISSED'}")
    if args.json:
        keep = (
            "out_of_stock_rate",
            "lost_sales_rate",
            "trucks_per_1000_units",
            "trucks_per_day",
            "mean_truck_fill",
            "units_shipped",
            "average_days_of_cover",
            "planning_runs",
            "athena_bytes_scanned",
            "athena_cost_usd",
            "seconds",
        )
        emit_json(
            {
                "days": args.days,
                "stores": args.stores,
                "products": args.products,
                "plan_every_hours": args.plan_every_hours,
                "seconds": seconds,
                "targets_met": checks,
                **{name: {k: r[k] for k in keep} for name, r in by_policy.items()},
            }
        )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
