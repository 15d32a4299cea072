"""Ingest benchmark: readings/s into the lake and Firehose billed bytes, this path vs the naive one.

    python -m bench.ingest [--stores 500] [--products 200] [--ticks 5] [--naive-readings 3000] [--json]

This path: vectorised simulation + NDJSON encoder, many readings per gzip record, PutRecordBatch
with several calls in flight. Naive path (the original workshop): one ``put_record`` per reading.
Both run in one process against one fresh emulator. Readings/s counts until every record is an
object in S3. Billed bytes apply Direct PUT's 5 KB rounding per record; the naive figure is what
the same readings would cost sent one per record.
"""

from __future__ import annotations

import resource
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.harness import bench_environment, run_benchmark
from deployments.environment import Environment
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.stores.catalog import Catalog, build_catalog
from storeops.stores.encoding import ReadingEncoder
from storeops.stores.firehose import FirehoseSender, billed_bytes
from storeops.stores.readings import IngestReport, reading_columns, run_readings
from storeops.stores.simulation import advance, initial_state
from storeops.stores.state import Simulation

DURATION = (
    " The default run takes about a minute on 2 cores (34 s measured); it grows with --stores x --products x"
    " --ticks (the readings sent) and with --naive-readings (the naive path sends about 130 readings/s)."
)


def _objects(s3: object, bucket: str) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="inventory/"):  # type: ignore[attr-defined]
        count += len(page.get("Contents", []))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--stores", type=positive_int, default=500)
    parser.add_argument("--products", type=positive_int, default=200)
    parser.add_argument("--ticks", type=positive_int, default=5)
    parser.add_argument("--naive-readings", type=positive_int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with bench_environment() as env:
        catalog = build_catalog(args.stores, args.products, 7)
        report, seconds, deadline = _this_path(env, catalog, args.ticks)
        readings_per_s = report.rows_sent / seconds
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        naive_readings, naive_seconds = _naive_path(env, catalog, args.naive_readings, deadline + 60)
        naive_readings_per_s = naive_readings / naive_seconds

        line_bytes = report.raw_bytes / max(report.rows_sent, 1)
        naive_billed = report.rows_sent * int(billed_bytes([int(np.ceil(line_bytes))]))
        result = {
            "stores": args.stores,
            "products": args.products,
            "readings": report.rows_sent,
            "readings_per_s": round(readings_per_s, 1),
            "naive_readings": naive_readings,
            "naive_readings_per_s": round(naive_readings_per_s, 1),
            "speedup": round(readings_per_s / naive_readings_per_s, 1),
            "firehose_records": report.firehose_records,
            "billed_bytes": report.billed_bytes,
            "naive_billed_bytes": naive_billed,
            "billed_ratio": round(report.billed_bytes / naive_billed, 5),
            "json_bytes_per_reading": round(line_bytes, 1),
            "billed_bytes_per_reading": round(report.billed_bytes / max(report.rows_sent, 1), 1),
            "peak_rss_mb": round(peak_rss_mb, 1),
        }
    print_summary(
        f"ingest benchmark: {args.stores} stores x {args.products} products x {args.ticks} ticks",
        [
            ("readings/s (this path)", f"{result['readings_per_s']:,.0f}  (target >= 100,000)"),
            ("readings/s (naive put_record)", f"{result['naive_readings_per_s']:,.0f}"),
            ("speedup", f"{result['speedup']:,.1f}x  (target >= 100x)"),
            ("Firehose records", result["firehose_records"]),
            ("billed bytes", result["billed_bytes"]),
            ("naive billed bytes", result["naive_billed_bytes"]),
            ("billed ratio", f"{100 * result['billed_ratio']:.2f}%  (target <= 5%)"),
            ("peak RSS of this process", f"{result['peak_rss_mb']:,.0f} MB"),
        ],
    )
    if args.json:
        emit_json(result)
    return 0


def _this_path(env: Environment, catalog: Catalog, ticks: int) -> tuple[IngestReport, float, float]:
    """``ticks`` readings of every pair through the vectorised path and ``FirehoseSender``: its report, the
    seconds until every record was an object in S3 (at most a minute), and that minute's end (monotonic)."""
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    start = datetime.now(UTC) - timedelta(hours=ticks)
    state = initial_state(catalog, start)
    sender = FirehoseSender(env.clients.client("firehose"), env.resources.delivery_stream, max_in_flight=4)
    started = time.perf_counter()
    report = run_readings(
        Simulation.of_state(catalog, state), sender, [start + timedelta(hours=h + 1) for h in range(ticks)]
    )
    deadline = time.monotonic() + 60
    while _objects(s3, bucket) < report.firehose_records and time.monotonic() < deadline:
        time.sleep(0.05)
    return report, time.perf_counter() - started, deadline


def _naive_path(env: Environment, catalog: Catalog, readings: int, deadline: float) -> tuple[int, float]:
    """Up to ``readings`` readings sent one ``put_record`` each: how many, and the seconds until each was an
    object in S3 (waiting until ``deadline``, monotonic, at the latest)."""
    s3, bucket = env.clients.client("s3"), env.resources.data_lake_bucket
    firehose, stream = env.clients.client("firehose"), env.resources.delivery_stream
    naive_state = initial_state(catalog, datetime.now(UTC))
    tick = advance(naive_state, 1.0)
    columns = reading_columns(catalog, naive_state, tick)
    lines = ReadingEncoder(catalog).encode(columns, datetime.now(UTC)).lines()[:readings]
    before = _objects(s3, bucket)
    started = time.perf_counter()
    for line in lines:
        firehose.put_record(DeliveryStreamName=stream, Record={"Data": line})
    while _objects(s3, bucket) < before + len(lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(lines), time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
