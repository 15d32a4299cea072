"""Planning benchmark: wall time and selected bytes as history grows (1, 7, 30 days).

    python -m bench.plan [--stores 200] [--products 100] [--days 1,7,30] [--json]

For each history length, on a fresh emulator state: backfill that many days of hourly
readings, run the planning Lambda once (dry run, 24 h window), and measure the bytes under the
partitions the query selects against the bytes of the whole table: what Athena scans on AWS
with partition pruning, and without it. The bytes the plan itself reports (on the emulator, the
objects it read) show that it reads them once.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from bench.harness import bench_environment, run_benchmark
from deployments.environment import Environment, prepare
from deployments.localaws import LocalAws
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.planning.models import PlanRequest, PlanWindow
from storeops.stores.backfill import backfill
from storeops.stores.catalog import Catalog, build_catalog

DURATION = (
    " The default run takes about 3.5 minutes on 2 cores (199 s measured), most of it the 30 days' backfill;"
    " longer --days and more --stores x --products backfill more readings (about 300,000 a second)."
)


def _sizes(s3: object, bucket: str) -> dict[tuple[str, str], int]:
    sizes: dict[tuple[str, str], int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="inventory/"):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            parts = dict(p.split("=", 1) for p in obj["Key"].split("/")[1:3])
            key = (parts["dt"], parts["hour"])
            sizes[key] = sizes.get(key, 0) + int(obj["Size"])
    return sizes


def measure(env: Environment, catalog: Catalog, days: int) -> dict[str, float]:
    """On a wiped emulator: backfill ``days`` days of hourly readings, then plan once (dry run, 24 h window)."""
    LocalAws(env.settings).reset()
    current = prepare(env.settings)  # redeploys the stack on the wiped emulator
    s3 = current.clients.client("s3")
    now = datetime.now(UTC)
    started = time.perf_counter()
    _, report = backfill(catalog, s3, current.resources.data_lake_bucket, days, end=now)
    backfill_seconds = time.perf_counter() - started
    window = PlanWindow.resolve(PlanRequest(lookback_hours=24), now)
    sizes = _sizes(s3, current.resources.data_lake_bucket)
    selected = sum(sizes.get(p, 0) for p in window.partitions)
    lam = current.clients.client("lambda", read_timeout=600)
    lam.invoke(FunctionName=current.resources.planning_function, Payload=b'{"dry_run": true}')  # warm
    started = time.perf_counter()
    response = lam.invoke(
        FunctionName=current.resources.planning_function,
        Payload=json.dumps({"dry_run": True, "as_of": now.isoformat(), "lookback_hours": 24}).encode(),
    )
    plan_seconds = time.perf_counter() - started
    payload = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise SystemExit(f"planning failed: {payload}")
    return {
        "readings": report.backfill_rows,
        "backfill_seconds": round(backfill_seconds, 1),
        "plan_seconds": round(plan_seconds, 2),
        "shortages": payload["shortage_count"],
        "selected_bytes": selected,
        "reported_bytes": int(payload["bytes_scanned"]),  # the plan's own figure (emulator: estimate)
        "full_scan_bytes": sum(sizes.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.plan", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--stores", type=positive_int, default=200, help="stores (default 200)")
    parser.add_argument("--products", type=positive_int, default=100, help="products per store (default 100)")
    parser.add_argument("--days", default="1,7,30", help="history lengths, comma-separated (default 1,7,30)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = parser.parse_args(argv)
    lengths = [int(d) for d in args.days.split(",")]
    catalog = build_catalog(args.stores, args.products, 7)
    per_length: dict[int, dict[str, float]] = {}
    with bench_environment() as env:
        for days in lengths:
            per_length[days] = measure(env, catalog, days)
            print(f"{days:>3} days: {per_length[days]}", flush=True)
    result = report(args, lengths, per_length)
    if args.json:
        emit_json(result)
    return 0


def report(args: argparse.Namespace, lengths: list[int], per_length: dict[int, dict[str, float]]) -> dict[str, object]:
    """The figures (first and longest history), printed as a table; returned for --json."""
    first, last = per_length[lengths[0]], per_length[lengths[-1]]
    result = {
        "stores": args.stores,
        "products": args.products,
        "history": per_length,
        f"selected_bytes_{lengths[0]}d": first["selected_bytes"],
        f"selected_bytes_{lengths[-1]}d": last["selected_bytes"],
        f"full_scan_bytes_{lengths[-1]}d": last["full_scan_bytes"],
        f"growth_{lengths[-1]}d_over_{lengths[0]}d": round(last["selected_bytes"] / first["selected_bytes"], 3),
        "full_scan_ratio": round(last["full_scan_bytes"] / last["selected_bytes"], 1),
        f"plan_seconds_{lengths[0]}d": first["plan_seconds"],
        # one read of each table: the plan reports the selected inventory bytes once (plus its small ledger)
        "reported_over_selected": round(last["reported_bytes"] / last["selected_bytes"], 3),
    }
    rows = [
        (
            f"{d} days: plan seconds / selected bytes / full scan bytes",
            f"{v['plan_seconds']:.2f} s / {int(v['selected_bytes']):,} / {int(v['full_scan_bytes']):,}",
        )
        for d, v in per_length.items()
    ]
    rows += [
        (
            "selected bytes growth (last / first)",
            f"{result[f'growth_{lengths[-1]}d_over_{lengths[0]}d']}  (target <= 1.1)",
        ),
        ("full scan / selected at the longest", f"{result['full_scan_ratio']}x  (target >= 20x)"),
        (
            "bytes the plan reports / selected (one scan)",
            f"{result['reported_over_selected']}  ({int(last['reported_bytes']):,} B; two scans would be ~2)",
        ),
        (f"planning over {lengths[0]} day", f"{first['plan_seconds']:.2f} s  (target < 10 s)"),
    ]
    print_summary(f"planning benchmark: {args.stores} stores x {args.products} products", rows)
    return result


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
