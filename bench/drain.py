"""Drain benchmark: messages/s end to end for the truck flow's loop, the naive loop, and the ceiling.

    python -m bench.drain [--messages 5000] [--naive-messages 1000] [--rss-messages 40000] [--json]

All three start from a queue holding ``--messages`` valid requests, on one fresh emulator:
- this flow: the ``trucks`` flow's loop (windows of up to 5,000 requests or 10 s: receive 10 at a time,
  validate, claim in DynamoDB transactions, consolidate, route, record loads in the ledger, delete in batches);
- naive (the original workshop's shape): receive one, validate, claim it, record it, delete it;
- ceiling: a bare loop that only receives 10, claims them (one transaction) and deletes them.
Then a long drain of ``--rss-messages`` (the queue topped up as it drains) measures RSS growth.

The emulator's SQS scans the whole queue on each receive, so every rate falls as ``--messages`` grows;
compare figures measured at the same ``--messages``. The earlier default (``--messages 20000
--rss-messages 100000``) ran for over 25 minutes once each window routed its trucks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from bench.harness import bench_environment, run_benchmark
from deployments.environment import Environment
from storeops.aws import StackResources
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.clock import format_timestamp
from storeops.contracts.samples import sample_requests
from storeops.directory import StoreLocation, load_store_directory, publish_store_directory
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loading import Loader
from storeops.dispatch.loop import StopFlag, TruckTotals, run_dispatch_loop
from storeops.dispatch.messages import parse_request
from storeops.dispatch.worker import DispatchWorker
from storeops.ledger import LedgerRow, window_record_key, write_rows
from storeops.sqs import Outgoing, SqsBatcher
from storeops.stores.catalog import build_catalog

DURATION = (
    " The default run takes about 2 minutes on 2 idle cores (114 s at 3ac8bcd; about 8 minutes when sharing them"
    " with other work); --messages makes every phase longer (each receive scans the whole queue), --rss-messages"
    " the long drain: --messages 20000 --rss-messages 100000 ran for over 25 minutes with windows of 500."
)


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 1e6


def make_bodies(run: str, count: int, stores: int = 200) -> list[str]:
    return [request.model_dump_json() for request in sample_requests(run, count, stores)]


def fill(batcher: SqsBatcher, queue: str, bodies: list[str], threads: int = 4) -> None:
    chunks = [bodies[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda c=c: batcher.send(queue, [Outgoing(b) for b in c])) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@dataclass
class Bench:
    """The clients, queue and worker settings every phase uses, on one private emulator."""

    sqs: Any
    dynamodb: Any
    s3: Any
    batcher: SqsBatcher
    resources: StackResources
    config: WorkerConfig
    stores: dict[str, StoreLocation]
    loader: Loader

    @classmethod
    def on(cls, env: Environment) -> Bench:
        """The phases' clients, with the store directory (200 stores) published, as the worker reads it."""
        c, res = env.clients, env.resources
        sqs, s3 = c.client("sqs"), c.client("s3")
        publish_store_directory(s3, res.data_lake_bucket, build_catalog(200, 100, 7).directory())
        stores = load_store_directory(s3, res.data_lake_bucket)
        config = WorkerConfig(
            queue_url=res.dispatch_queue_url,
            dead_letter_queue_url=res.dead_letter_queue_url,
            bucket=res.data_lake_bucket,
            claims_table=res.claims_table,
            wait_seconds=1,
        )
        return cls(sqs, c.client("dynamodb"), s3, SqsBatcher(sqs), res, config, stores, Loader(Fleet(), {}))

    @property
    def queue(self) -> str:
        return self.resources.dispatch_queue_url

    def fill(self, bodies: list[str], threads: int = 4) -> None:
        fill(self.batcher, self.queue, bodies, threads)

    def worker(self, should_stop: Callable[[], bool] | None = None) -> DispatchWorker:
        if should_stop is None:
            return DispatchWorker(self.sqs, self.dynamodb, self.s3, self.config)
        return DispatchWorker(self.sqs, self.dynamodb, self.s3, self.config, should_stop=should_stop)


@dataclass
class LongDrain:
    """The RSS over a long drain: at the start, after warm-up, at its peak."""

    totals: TruckTotals
    start_mb: float
    after_warmup_mb: float
    peak_mb: float


def measure_ceiling(bench: Bench, messages: int) -> float:
    """A bare loop: receive 10, claim 10 (one transaction), delete 10; messages/s."""
    bench.fill(make_bodies("ceiling", messages))
    started, done = time.perf_counter(), 0
    while True:
        received = bench.sqs.receive_message(QueueUrl=bench.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        batch = received.get("Messages", [])
        if not batch:
            break
        bench.dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": bench.resources.claims_table,
                        "Item": {"shortage_id": {"S": f"c-{m['MessageId']}"}, "state": {"S": "claimed"}},
                        "ConditionExpression": "attribute_not_exists(shortage_id)",
                    }
                }
                for m in batch
            ]
        )
        bench.sqs.delete_message_batch(
            QueueUrl=bench.queue,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
        done += len(batch)
    ceiling = done / (time.perf_counter() - started)
    print(f"ceiling: {done} messages, {ceiling:,.0f}/s", flush=True)
    return ceiling


def measure_flow(bench: Bench, messages: int) -> TruckTotals:
    """The trucks flow's loop until the queue is empty."""
    bench.fill(make_bodies("flow", messages))
    totals = run_dispatch_loop(bench.worker(), StopFlag(), until_empty=True)
    ours = totals.messages_received / totals.seconds
    print(f"this flow: {totals.dispatched} dispatched on {totals.trucks} trucks, {ours:,.0f}/s", flush=True)
    return totals


def measure_naive(bench: Bench, messages: int, naive_messages: int) -> float:
    """One message at a time (the original workshop's shape), from a queue ``messages`` deep; messages/s."""
    res = bench.resources
    bench.fill(make_bodies("naive", messages))
    started = time.perf_counter()
    for _ in range(naive_messages):
        (message,) = bench.sqs.receive_message(QueueUrl=bench.queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)[
            "Messages"
        ]
        request, _reason = parse_request(message["Body"], bench.stores, bench.loader)
        assert request is not None
        bench.dynamodb.put_item(
            TableName=res.claims_table,
            Item={"shortage_id": {"S": request.shortage_id}, "state": {"S": "dispatched"}},
            ConditionExpression="attribute_not_exists(shortage_id)",
        )
        row = LedgerRow(
            record_type="dispatch",
            shortage_id=request.shortage_id,
            store_id=request.store_id,
            product_id=request.product_id,
            quantity=request.quantity,
            recorded_at=format_timestamp(datetime.now(UTC)),
        )
        key = window_record_key(datetime.now(UTC), f"naive-{request.shortage_id}")
        write_rows(bench.s3, res.data_lake_bucket, key, [row])
        bench.sqs.delete_message(QueueUrl=bench.queue, ReceiptHandle=message["ReceiptHandle"])
    naive = naive_messages / (time.perf_counter() - started)
    print(f"naive: {naive:,.0f}/s", flush=True)
    bench.sqs.purge_queue(QueueUrl=bench.queue)
    return naive


def measure_long_drain(bench: Bench, depth: int, total: int) -> LongDrain:
    """RSS over a drain of ``total`` messages, the queue topped up to at most ``depth`` deep as it drains."""
    feed = make_bodies("rss", total)
    fed = min(total, depth)
    bench.fill(feed[:fed])
    samples: list[float] = []
    stop = StopFlag()
    worker = bench.worker(should_stop=lambda: stop.requested)

    def feeder() -> None:
        nonlocal fed
        while fed < total and not stop.requested:
            if worker.queue_depth() < depth // 2:
                chunk = feed[fed : fed + depth // 2]
                bench.fill(chunk, threads=2)
                fed += len(chunk)
            samples.append(rss_mb())
            time.sleep(0.5)

    feeding = threading.Thread(target=feeder, daemon=True)
    processed = 0
    baseline = None

    def observe(report: object) -> None:
        nonlocal processed, baseline
        processed += getattr(report, "received", 0)
        samples.append(rss_mb())
        if baseline is None and processed >= 2_000:
            baseline = rss_mb()  # after warm-up: pools, caches and imports are in place
        if processed >= total:
            stop.request("done")

    start_rss = rss_mb()
    feeding.start()
    try:
        long_run = run_dispatch_loop(worker, stop, observe=observe, max_seconds=1800)
    finally:
        stop.request("done")
        feeding.join(timeout=10)
    peak = max(samples or [rss_mb()])
    drained = LongDrain(long_run, start_rss, baseline or start_rss, peak)
    print(
        f"long drain: {long_run.messages_received} messages in {long_run.seconds:.0f} s, "
        f"RSS {start_rss:.0f} MB at start, {drained.after_warmup_mb:.0f} MB after warm-up, peak {peak:.0f} MB",
        flush=True,
    )
    return drained


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog="python -m bench.drain",
        description=__doc__.split("\n\n")[0] + DURATION,
    )
    parser.add_argument(
        "--messages",
        type=positive_int,
        default=5_000,
        help="requests on the queue for each rate measured (default 5,000)",
    )
    parser.add_argument(
        "--naive-messages", type=positive_int, default=1_000, help="requests the naive loop handles (default 1,000)"
    )
    parser.add_argument(
        "--rss-messages",
        type=positive_int,
        default=40_000,
        help="requests of the long drain that measures RSS (default 40,000)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = parser.parse_args(argv)

    with bench_environment() as env:
        bench = Bench.on(env)
        ceiling = measure_ceiling(bench, args.messages)
        totals = measure_flow(bench, args.messages)
        naive = measure_naive(bench, args.messages, args.naive_messages)
        drained = measure_long_drain(bench, args.messages, args.rss_messages)
    report(args.messages, totals, naive, ceiling, drained, as_json=args.json)
    return 0


def report(
    messages: int, totals: TruckTotals, naive: float, ceiling: float, drained: LongDrain, *, as_json: bool
) -> None:
    ours = totals.messages_received / totals.seconds
    result = {
        "messages": messages,
        "messages_per_s": round(ours, 1),
        "naive_messages_per_s": round(naive, 1),
        "ceiling_messages_per_s": round(ceiling, 1),
        "speedup": round(ours / naive, 2),
        "ceiling_ratio": round(ours / ceiling, 3),
        "trucks": totals.trucks,
        "lower_bound_trucks": totals.lower_bound_trucks,
        "rss_messages": drained.totals.messages_received,
        "rss_start_mb": round(drained.start_mb, 1),
        "rss_after_warmup_mb": round(drained.after_warmup_mb, 1),
        "rss_peak_mb": round(drained.peak_mb, 1),
        "rss_growth_mb": round(drained.peak_mb - drained.after_warmup_mb, 1),
    }
    print_summary(
        f"drain benchmark: {messages:,} requests",
        [
            ("messages/s (this flow)", f"{ours:,.0f}"),
            ("messages/s (naive, one at a time)", f"{naive:,.0f}"),
            ("messages/s (ceiling: receive, claim, delete)", f"{ceiling:,.0f}"),
            ("speedup over naive", f"{result['speedup']}x  (target >= 5x)"),
            ("share of the ceiling", f"{100 * result['ceiling_ratio']:.0f}%  (target >= 70%)"),
            ("trucks / lower bound", f"{totals.trucks} / {totals.lower_bound_trucks}"),
            (
                f"RSS growth over {drained.totals.messages_received:,} messages",
                f"{result['rss_growth_mb']} MB  (target <= 50)",
            ),
        ],
    )
    if as_json:
        emit_json(result)


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
