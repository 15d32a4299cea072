"""Drain benchmark: messages/s end to end for the truck flow's loop, the naive loop, and the ceiling.

    python -m bench.drain [--messages 20000] [--naive-messages 1000] [--rss-messages 100000] [--json]

All three start from a queue holding ``--messages`` valid requests, on one fresh emulator:
- this flow: the ``trucks`` flow's loop (windows of 500: receive 10 at a time, validate,
  claim in DynamoDB transactions, consolidate, record loads in the ledger, delete in batches);
- naive (the original workshop's shape): receive one, validate, claim it, record it, delete it;
- ceiling: a bare loop that only receives 10, claims them (one transaction) and deletes them.
Then a long drain of ``--rss-messages`` (the queue topped up as it drains) measures RSS growth.
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import bench_environment
from storeops.cli import emit_json, positive_int, print_summary
from storeops.clock import format_timestamp
from storeops.contracts.samples import sample_requests
from storeops.directory import load_store_directory, publish_store_directory
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loading import Loader
from storeops.dispatch.loop import StopFlag, run_dispatch_loop
from storeops.dispatch.messages import parse_request
from storeops.dispatch.worker import DispatchWorker
from storeops.ledger import LedgerRow, window_record_key, write_rows
from storeops.sqs import Outgoing, SqsBatcher
from storeops.stores.catalog import build_catalog

PAGE = 4096


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE / 1e6


def make_bodies(run: str, count: int, stores: int = 200) -> list[str]:
    return [request.model_dump_json() for request in sample_requests(run, count, stores)]


def fill(batcher: SqsBatcher, queue: str, bodies: list[str], threads: int = 4) -> None:
    chunks = [bodies[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda c=c: batcher.send(queue, [Outgoing(b) for b in c])) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=positive_int, default=20_000)
    parser.add_argument("--naive-messages", type=positive_int, default=1_000)
    parser.add_argument("--rss-messages", type=positive_int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with bench_environment() as env:
        c, res = env.clients, env.resources
        sqs, dynamodb, s3 = c.client("sqs"), c.client("dynamodb"), c.client("s3")
        batcher = SqsBatcher(sqs)
        publish_store_directory(s3, res.data_lake_bucket, build_catalog(200, 100, 7).directory())
        stores = load_store_directory(s3, res.data_lake_bucket)
        loader = Loader(Fleet(), {})
        queue = res.dispatch_queue_url
        config = WorkerConfig(
            queue_url=queue,
            dead_letter_queue_url=res.dead_letter_queue_url,
            bucket=res.data_lake_bucket,
            claims_table=res.claims_table,
            wait_seconds=1,
        )

        # -- ceiling: receive 10, claim 10 (one transaction), delete 10 ----------------------------
        fill(batcher, queue, make_bodies("ceiling", args.messages))
        started, done = time.perf_counter(), 0
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if not messages:
                break
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": res.claims_table,
                            "Item": {"shortage_id": {"S": f"c-{m['MessageId']}"}, "state": {"S": "claimed"}},
                            "ConditionExpression": "attribute_not_exists(shortage_id)",
                        }
                    }
                    for m in messages
                ]
            )
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            done += len(messages)
        ceiling = done / (time.perf_counter() - started)
        print(f"ceiling: {done} messages, {ceiling:,.0f}/s", flush=True)

        # -- this flow's loop ---------------------------------------------------------------------------
        fill(batcher, queue, make_bodies("flow", args.messages))
        worker = DispatchWorker(sqs, dynamodb, s3, config)
        totals = run_dispatch_loop(worker, StopFlag(), until_empty=True)
        ours = totals.messages_received / totals.seconds
        print(f"this flow: {totals.dispatched} dispatched on {totals.trucks} trucks, {ours:,.0f}/s", flush=True)

        # -- naive: one message at a time ----------------------------------------------------------
        fill(batcher, queue, make_bodies("naive", args.messages))
        started = time.perf_counter()
        for _ in range(args.naive_messages):
            (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
            request, _reason = parse_request(message["Body"], stores, loader)
            assert request is not None
            dynamodb.put_item(
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
            write_rows(s3, res.data_lake_bucket, key, [row])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        naive = args.naive_messages / (time.perf_counter() - started)
        print(f"naive: {naive:,.0f}/s", flush=True)
        sqs.purge_queue(QueueUrl=queue)

        # -- RSS over a long drain (queue topped up to at most --messages deep) ----------------------
        total = args.rss_messages
        feed = make_bodies("rss", total)
        fed = min(total, args.messages)
        fill(batcher, queue, feed[:fed])
        samples: list[float] = []
        stop = StopFlag()
        worker = DispatchWorker(sqs, dynamodb, s3, config, should_stop=lambda: stop.requested)

        def feeder() -> None:
            nonlocal fed
            while fed < total and not stop.requested:
                depth = worker.queue_depth()
                if depth < args.messages // 2:
                    chunk = feed[fed : fed + args.messages // 2]
                    fill(batcher, queue, chunk, threads=2)
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
        long_run = run_dispatch_loop(worker, stop, observe=observe, max_seconds=1800)
        stop.request("done")
        feeding.join(timeout=10)
        peak = max(samples or [rss_mb()])
        print(
            f"long drain: {long_run.messages_received} messages in {long_run.seconds:.0f} s, "
            f"RSS {start_rss:.0f} MB at start, {baseline or start_rss:.0f} MB after warm-up, peak {peak:.0f} MB",
            flush=True,
        )

    result = {
        "messages": args.messages,
        "messages_per_s": round(ours, 1),
        "naive_messages_per_s": round(naive, 1),
        "ceiling_messages_per_s": round(ceiling, 1),
        "speedup": round(ours / naive, 2),
        "ceiling_ratio": round(ours / ceiling, 3),
        "trucks": totals.trucks,
        "lower_bound_trucks": totals.lower_bound_trucks,
        "rss_messages": long_run.messages_received,
        "rss_start_mb": round(start_rss, 1),
        "rss_after_warmup_mb": round(baseline or start_rss, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_growth_mb": round(peak - (baseline or start_rss), 1),
    }
    print_summary(
        f"drain benchmark: {args.messages:,} requests",
        [
            ("messages/s (this flow)", f"{ours:,.0f}"),
            ("messages/s (naive, one at a time)", f"{naive:,.0f}"),
            ("messages/s (ceiling: receive, claim, delete)", f"{ceiling:,.0f}"),
            ("speedup over naive", f"{result['speedup']}x  (target >= 5x)"),
            ("share of the ceiling", f"{100 * result['ceiling_ratio']:.0f}%  (target >= 70%)"),
            ("trucks / lower bound", f"{totals.trucks} / {totals.lower_bound_trucks}"),
            (
                f"RSS growth over {long_run.messages_received:,} messages",
                f"{result['rss_growth_mb']} MB  (target <= 50)",
            ),
        ],
    )
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
