"""Scale benchmark: one run of the whole loop at a national chain's size, on this machine.

    python -m bench.scale [--stores 2000] [--products 1000] [--workers 1] [--json]

On a private emulator (started here, stopped at the end), in this order:

1. **rollup** (``bench.rollup.measure``, first, while the ledger is empty): one hour of readings at the
   deployment's 1-minute cadence (200 x 100 pairs, 60 readings each), a dry-run plan over it raw, the
   hour rolled up, the same plan again: the bytes the query reads with the rollup over those without.
2. **generation**: ``python -m flows.generate --stores S --products P --json`` as its own process:
   readings/s and its peak RSS (the flow's own ``peak_rss_mb``).
3. **forecast and plan**: ``python -m flows.forecast --history-days 7 --json`` (the day's forecast; the
   chain has an hour of history, so most pairs get the planner's fallback, their trailing rate), then
   ``python -m flows.plan --json`` (the planning Lambda on every pair, streamed in chunks, nothing capped):
   orders, requests sent, SQS messages, deferred, the function's seconds and peak RSS
   (``planner_peak_rss_mb``, target < 1.5 GB), the bytes each query scanned.
4. **drain**: ``--workers`` processes of ``python -m flows.trucks --until-empty --json`` at once (more
   processes of the truck deployment): dispatch requests dispatched per second of draining, and that
   every request sent is in exactly one window record of the ledger, with nothing dead-lettered.

Targets: generation peak RSS <= 1 GB at >= 200,000 readings/s, deferred = 0, the plan within the
planner's timeout (300 s), the drain within one planning interval (15 minutes), rollup bytes <= 1/10
of raw. The last stdout line with ``--json`` is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bench import rollup
from bench.harness import bench_environment, run_benchmark
from deployments.environment import Environment
from deployments.processes import python_module
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.ledger import LEDGER_PREFIX, decode_rows
from storeops.planning.scan_budget import ChainSize, cutoff_for, scan_bytes

PLANNER_PEAK_RSS_TARGET_MB = 1536  # the function's memory must fit a new account's 3,008 MB with room
PLANNER_TIMEOUT_SECONDS = 300  # deployments/template.yaml, the planning function's Timeout
PLANNING_INTERVAL_SECONDS = 15 * 60  # prefect.yaml, plan-shortages: */15
DURATION = (
    " The default run takes about 10 minutes on 2 cores (2,000 stores x 1,000 products: generation about 2,"
    " forecast and plan about 3, the rollup and the drain the rest); the run grows with --stores x --products."
)


def _cli(env: Environment, module: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m <module> ... --json`` against the bench's emulator; its last stdout line."""
    completed = subprocess.run(
        python_module(module, *args, "--json", tethered=True),  # gone with this benchmark
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{module} failed (exit {completed.returncode}): {completed.stderr.strip()[-2000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def _environment(env: Environment) -> dict[str, str]:
    return {
        **os.environ,
        "STOREOPS_TARGET": "local",
        "STOREOPS_LOCAL_PORT": str(env.settings.local_port),
        "STOREOPS_LOCAL_HOME": str(env.settings.local_home),
    }


def drain(env: Environment, workers: int) -> tuple[list[dict[str, Any]], float]:
    """``workers`` truck processes until the queue is empty; their totals and the wall seconds."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            python_module("flows.trucks", "--until-empty", "--json", tethered=True),
            env=_environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    totals = []
    for process in processes:
        out, err = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise SystemExit(f"flows.trucks failed (exit {process.returncode}): {err.strip()[-2000:]}")
        totals.append(json.loads(out.strip().splitlines()[-1]))
    return totals, time.perf_counter() - started


def ledger_dispatches(env: Environment) -> tuple[int, int]:
    """Dispatch rows in the window records of the ledger, and distinct shortages among them: exactly once
    means both equal the requests sent (ARCHITECTURE.md, "Exactly once per shortage")."""
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    rows, shortages = 0, set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LEDGER_PREFIX):
        for item in page.get("Contents", []):
            if "/window-" not in item["Key"]:
                continue
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for row in decode_rows(body):
                if row.record_type == "dispatch":
                    rows += 1
                    shortages.add(row.shortage_id)
    return rows, len(shortages)


def queue_depth(env: Environment, url: str) -> int:
    attributes = env.clients.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--stores", type=positive_int, default=2000)
    parser.add_argument("--products", type=positive_int, default=1000)
    parser.add_argument("--workers", type=positive_int, default=1, help="truck processes draining the plan (1)")
    parser.add_argument("--rollup-stores", type=positive_int, default=200)
    parser.add_argument("--rollup-products", type=positive_int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = figures(args, measure(args))
    report(args, result)
    if args.json:
        emit_json(result)
    return 0


@dataclass
class Steps:
    """What each step's CLI reported, and the ledger and the queues after the drain."""

    rolled: dict[str, Any]
    generated: dict[str, Any]
    forecasted: dict[str, Any]
    planned: dict[str, Any]
    totals: list[dict[str, Any]]
    drain_wall_seconds: float
    recorded: int
    distinct: int
    dead_letters: int
    left: int


def measure(args: argparse.Namespace) -> Steps:
    """The four steps on one private emulator: what each CLI reported, the ledger and the queues afterwards."""
    with bench_environment() as env:
        print("1/4 rollup: one hour of 1-minute readings, planned raw and from the rollup", flush=True)
        rolled = rollup.measure(env, args.rollup_stores, args.rollup_products)
        print(f"    rollup / raw bytes: {rolled['bytes_ratio']}", flush=True)
        print(f"2/4 generation: {args.stores:,} x {args.products:,}", flush=True)
        generated = _cli(env, "flows.generate", "--stores", str(args.stores), "--products", str(args.products))
        print(f"    {generated['rows_sent']:,} readings, {generated['readings_per_s']:,.0f}/s", flush=True)
        print("3/4 forecast and plan: the day's forecast, then the planner over every pair", flush=True)
        forecasted = _cli(env, "flows.forecast", "--history-days", "7")
        planned = _cli(env, "flows.plan")
        print(f"    {planned['shortage_count']:,} shortages, {planned['requests_sent']:,} sent", flush=True)
        print(f"4/4 drain: {args.workers} truck process(es)", flush=True)
        totals, wall = drain(env, args.workers)
        recorded, distinct = ledger_dispatches(env)
        dead_letters = queue_depth(env, env.resources.dead_letter_queue_url)
        left = queue_depth(env, env.resources.dispatch_queue_url)
    return Steps(rolled, generated, forecasted, planned, totals, wall, recorded, distinct, dead_letters, left)


def figures(args: argparse.Namespace, steps: Steps) -> dict[str, Any]:
    """The run's figures, step by step, and whether every target was met."""
    result = {
        "stores": args.stores,
        "products": args.products,
        "pairs": args.stores * args.products,
        **_generation_figures(steps.generated),
        **_plan_figures(steps.forecasted, steps.planned),
        "workers": args.workers,
        **_drain_figures(steps),
        **_rollup_figures(steps.rolled),
        # on AWS at this size and the deployed 1-minute cadence (the emulator's byte counts are estimates)
        "athena_bytes_at_worst": {
            name: round(value) for name, value in scan_bytes(ChainSize(args.stores, args.products, 1.0)).items()
        },
        # what `deployments.stack deploy --stores --products` sets for this size (every query at most 80% of it)
        "athena_cutoff_bytes": cutoff_for(ChainSize(args.stores, args.products, 1.0)),
    }
    result["targets_met"] = bool(
        result["generate_peak_rss_mb"] <= 1024
        and result["readings_per_s"] >= 200_000
        and result["deferred"] == 0
        and result["plan_within_timeout"]
        and float(result["planner_peak_rss_mb"] or 0) < PLANNER_PEAK_RSS_TARGET_MB
        and result["drain_within_interval"]
        and result["exactly_once"]
        and result["rollup_scan_ratio"] <= 0.1
    )
    return result


def _generation_figures(generated: dict[str, Any]) -> dict[str, Any]:
    """What the store-data flow's generation reported."""
    return {
        "readings_per_s": round(float(generated["readings_per_s"]), 0),
        "generate_peak_rss_mb": round(float(generated["peak_rss_mb"]), 1),
        "generate_seconds": round(float(generated["seconds"]), 1),
        "readings": int(generated["rows_sent"]),
    }


def _plan_figures(forecasted: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """What the plan (and the forecast before it) found, sent and read."""
    return {
        "shortages": int(planned["shortage_count"]),
        "sent": int(planned["requests_sent"]),
        "sqs_messages": int(planned.get("sqs_messages", 0)),
        "deferred": int(planned["deferred"]),
        "plan_seconds": round(float(planned["seconds"]), 1),
        "plan_query_seconds": round(float(planned["query_seconds"]), 1),
        "planner_peak_rss_mb": planned.get("peak_rss_mb"),
        "planner_method": planned.get("method"),
        "forecast_store_products": int(forecasted["store_products"]),
        "forecast_bytes_scanned": int(forecasted["forecast_bytes_scanned"]),
        "plan_bytes_scanned": int(planned.get("bytes_scanned", 0)),
        "plan_within_timeout": float(planned["seconds"]) < PLANNER_TIMEOUT_SECONDS,
    }


def _drain_figures(steps: Steps) -> dict[str, Any]:
    """What the truck processes dispatched, how fast, and whether each request was dispatched exactly once."""
    totals, recorded, distinct = steps.totals, steps.recorded, steps.distinct
    dispatched = sum(int(t["dispatched"]) for t in totals)
    drain_seconds = max(float(t["seconds"]) for t in totals)
    return {
        "dispatched": dispatched,
        "ledger_dispatch_rows": recorded,
        "ledger_distinct_shortages": distinct,
        "dead_lettered": steps.dead_letters,
        "left_on_queue": steps.left,
        "trucks": sum(int(t["trucks"]) for t in totals),
        "drain_seconds": round(drain_seconds, 1),
        "drain_wall_seconds": round(steps.drain_wall_seconds, 1),
        "drain_messages_per_s": round(dispatched / drain_seconds, 0) if drain_seconds else 0.0,
        "drain_within_interval": drain_seconds < PLANNING_INTERVAL_SECONDS,
        "exactly_once": dispatched == recorded == distinct == int(steps.planned["requests_sent"])
        and steps.dead_letters == 0
        and steps.left == 0,
    }


def _rollup_figures(rolled: dict[str, Any]) -> dict[str, Any]:
    """What the rollup benchmark found: the bytes a plan reads raw and from the rollup."""
    return {
        "rollup_scan_ratio": rolled["bytes_ratio"],
        "rollup_raw_bytes": rolled["plan_raw_bytes_scanned"],
        "rollup_bytes": rolled["plan_rollup_bytes_scanned"],
        "rollup_same_shortages": rolled["same_shortages"],
        "rollup_steady_24h_ratio_estimate": rolled["steady_24h_ratio_estimate"],
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    dispatched, recorded, distinct = (
        result["dispatched"],
        result["ledger_dispatch_rows"],
        result["ledger_distinct_shortages"],
    )
    dead_letters, left = result["dead_lettered"], result["left_on_queue"]
    print_summary(
        f"scale benchmark: {args.stores:,} stores x {args.products:,} products, {args.workers} truck worker(s)",
        [
            (
                "generation",
                f"{result['readings']:,} readings at {result['readings_per_s']:,.0f}/s, peak RSS "
                f"{result['generate_peak_rss_mb']:,.0f} MB  (targets >= 200,000/s, <= 1,024 MB)",
            ),
            (
                "plan",
                f"{result['shortages']:,} shortages, {result['sent']:,} sent in {result['sqs_messages']:,} messages, "
                f"{result['deferred']:,} deferred, {result['plan_seconds']} s (query {result['plan_query_seconds']} s; "
                f"timeout {PLANNER_TIMEOUT_SECONDS} s), peak RSS {result['planner_peak_rss_mb']} MB",
            ),
            (
                "drain",
                f"{dispatched:,} dispatched on {result['trucks']:,} trucks in {result['drain_seconds']} s = "
                f"{result['drain_messages_per_s']:,.0f} requests/s (interval {PLANNING_INTERVAL_SECONDS} s)",
            ),
            (
                "exactly once",
                f"{recorded:,} dispatch rows in the ledger for {distinct:,} shortages, {dead_letters} dead-lettered, "
                f"{left} left: {result['exactly_once']}",
            ),
            (
                "rollup / raw bytes",
                f"{result['rollup_scan_ratio']} ({result['rollup_bytes']:,} / {result['rollup_raw_bytes']:,} B; "
                f"target <= 0.1); 24 h steady state ~{result['rollup_steady_24h_ratio_estimate']}",
            ),
            ("all targets met", str(result["targets_met"])),
        ],
    )


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
