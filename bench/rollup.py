"""Rollup benchmark: the bytes a plan reads for one hour of readings, raw versus from the hourly rollup.

    python -m bench.rollup [--stores 200] [--products 100] [--json]

On a private emulator: one hour H of readings at a 1-minute cadence (60 per store-product, in the
production NDJSON format, one gzip object a minute, by event time), then a dry-run plan whose window is
that hour and the half hour after it (as_of H+1h30m, lookback 1.5 h: the window starts at H, its first
partition is H-1). First raw (no rollup yet), then after rolling the partitions H-1 (empty) and H
(``storeops.planning.rollup.roll_up_hour``): the plan reads them from the rollup and its raw part (H+1 on)
holds nothing. Both plans must find the same shortages. Also reports the rollup's seconds, rows and
bytes, and what a 24-hour plan would read at these sizes in steady state (25 rolled partitions and the
open hour raw, against 26 raw partitions).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bench.harness import bench_environment, run_benchmark
from deployments.environment import Environment
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.clock import hour_floor
from storeops.planning.models import PlanningTargets, PlanRequest
from storeops.planning.rollup import roll_up_hour
from storeops.planning.service import plan_shortages
from storeops.stores.backfill import write_by_event_time
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder

H = timedelta(hours=1)
DURATION = (
    " The default run takes about a minute on 2 cores (64 s measured); it grows with --stores x --products"
    " (60 readings a pair, each planned raw and rolled up)."
)


def write_hour(s3: Any, bucket: str, stores: int, products: int, hour: datetime, seed: int = 7) -> tuple[int, int]:
    """60 readings per store-product in ``hour`` (one a minute), by event time; (readings, gzip bytes)."""
    catalog = build_catalog(stores, products, seed)
    encoder = ReadingEncoder(catalog)
    rng = np.random.default_rng(seed)
    rate = np.outer(catalog.stores["demand_scale"], catalog.products["rate"]).reshape(-1) / 24  # units/hour
    on_hand = rng.integers(0, np.ceil(rate * 72).astype(np.int64) + 7)
    case_pack = np.tile(catalog.products["case_pack"].to_numpy(), stores)
    price = catalog.products["price"].to_numpy()
    readings = written = 0
    for minute in range(60):
        sold = np.minimum(on_hand, rng.poisson(rate / 60))
        on_hand = on_hand - sold
        columns = {
            "on_hand": on_hand,
            "units_sold": sold,
            "units_expired": np.zeros_like(sold),
            "period_hours": 1 / 60,
            "case_pack": case_pack,
            "price": price,
            "on_promotion": np.zeros(products, dtype=bool),
        }
        observed_at = hour + timedelta(minutes=minute)
        batch = encoder.encode(columns, observed_at)
        key = write_by_event_time(s3, bucket, observed_at, f"bench-{minute:02d}", batch.data)
        written += int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        readings += len(on_hand)
    return readings, written


def measure(env: Environment, stores: int, products: int, hours_ago: int = 3) -> dict[str, Any]:
    """Write the hour ``hours_ago`` hours back, plan over it raw, roll it up, plan again; the figures."""
    now = datetime.now(UTC)
    hour = hour_floor(now) - hours_ago * H  # H-1 and H are closed
    as_of = hour + H + timedelta(minutes=30)
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    targets = replace(PlanningTargets.from_stack(env.resources), scanned_bytes_source="s3-estimate")
    started = time.perf_counter()
    readings, raw_bytes = write_hour(s3, bucket, stores, products, hour)
    write_seconds = time.perf_counter() - started
    request = PlanRequest(as_of=as_of, lookback_hours=1.5, dry_run=True)
    raw_plan = plan_shortages(env.clients, targets, request, now=now)
    empty = roll_up_hour(env.clients, targets, hour - H, now)
    rolled = roll_up_hour(env.clients, targets, hour, now)
    rollup_plan = plan_shortages(env.clients, targets, request, now=now)
    same = raw_plan.shortages[["shortage_id", "kind", "quantity"]].equals(
        rollup_plan.shortages[["shortage_id", "kind", "quantity"]]
    )
    if not same:
        raise SystemExit("the plans over the raw readings and over the rollup differ")
    per_hour_rollup = rolled.bytes_written
    steady_raw = 26 * raw_bytes  # a 24 h window: up to 25 observed hours and the partition before, each like H
    steady_rollup = 25 * per_hour_rollup + raw_bytes  # 25 rolled partitions; raw: the open hour (at most one)
    return {
        "stores": stores,
        "products": products,
        "hour": f"{hour:%Y-%m-%dT%H}",
        "readings": readings,
        "raw_object_bytes": raw_bytes,
        "write_seconds": round(write_seconds, 2),
        "plan_raw_bytes_scanned": raw_plan.bytes_scanned,
        "plan_raw_seconds": round(raw_plan.query_seconds, 2),
        "plan_rollup_bytes_scanned": rollup_plan.bytes_scanned,
        "plan_rollup_seconds": round(rollup_plan.query_seconds, 2),
        "plan_rollup_until": rollup_plan.rollup_until,
        "bytes_ratio": round(rollup_plan.bytes_scanned / raw_plan.bytes_scanned, 4),
        "shortages": len(raw_plan.shortages),
        "same_shortages": same,
        "rollup_rows": rolled.rows,
        "rollup_files": len(rolled.keys),
        "rollup_bytes_scanned": rolled.bytes_scanned,
        "rollup_bytes_written": rolled.bytes_written,
        "rollup_seconds": round(rolled.seconds, 2),
        "empty_hour_rollup_seconds": round(empty.seconds, 2),
        "steady_24h_ratio_estimate": round(steady_rollup / steady_raw, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.rollup", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--stores", type=positive_int, default=200)
    parser.add_argument("--products", type=positive_int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with bench_environment() as env:
        result = measure(env, args.stores, args.products)
    readings, raw_bytes = result["readings"], result["raw_object_bytes"]
    raw_plan_line = f"{result['plan_raw_bytes_scanned']:,} B scanned, {result['plan_raw_seconds']:.2f} s"
    rollup_plan_line = (
        f"{result['plan_rollup_bytes_scanned']:,} B scanned, {result['plan_rollup_seconds']:.2f} s "
        f"(rollup until {result['plan_rollup_until']})"
    )
    print_summary(
        f"rollup benchmark: {args.stores} stores x {args.products} products, hour {result['hour']}",
        [
            ("readings in the hour (60 per pair)", f"{readings:,} in {raw_bytes:,} B of gzip NDJSON"),
            ("plan over the hour, raw", raw_plan_line),
            ("plan over the hour, rollup", rollup_plan_line),
            (
                "rollup / raw",
                f"{result['bytes_ratio']}  (target <= 0.1); same {result['shortages']:,} shortages",
            ),
            (
                "rolling the hour",
                f"{result['rollup_seconds']:.2f} s, {result['rollup_rows']:,} rows, {result['rollup_files']} files, "
                f"{result['rollup_bytes_written']:,} B written from {result['rollup_bytes_scanned']:,} B scanned",
            ),
            ("rolling an empty hour", f"{result['empty_hour_rollup_seconds']:.2f} s"),
            ("24 h plan in steady state (estimate)", f"{result['steady_24h_ratio_estimate']} of raw"),
        ],
    )
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
