"""Chaos benchmark: exactly-once dispatch at the stack's production settings, under faults and SIGKILLs.

    python -m bench.chaos [--stores 100] [--products 85] [--workers 3] [--kills 3] [--fault-rate 0.05]
        [--seed 7] [--json]

On one fresh emulator with the stack as deployed (visibility, redrive and worker lease at
their defaults): backfill a day of readings and run the planning Lambda once (about 5,000
shortages); start ``--workers`` truck workers (``python -m flows.trucks``, long-running, on a
Prefect server of the benchmark's own) with ``--fault-rate`` of their AWS calls failing
(throttling, 5xx, resets, timeouts, half of those after the call took effect); SIGKILL each
worker ``--kills`` times at random moments and restart it; then wait until the queue holds
nothing. Reports shortages dispatched exactly once, twice, never, valid requests dead-lettered,
and the seconds from the last kill until the queue was empty, against the bound
ARCHITECTURE.md states (two visibility timeouts + window + long poll + 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import bench_environment, kill_tree, run_benchmark
from deployments.environment import Environment
from deployments.prefect_local import temporary_server
from deployments.processes import python_module
from storeops.cli import OneLineArgumentParser, emit_json, positive_int, print_summary
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.replay import receive_all
from storeops.ledger import LEDGER_PREFIX, decode_rows
from storeops.stores.backfill import backfill
from storeops.stores.catalog import build_catalog

PROCESSING_MARGIN_SECONDS = 30
DURATION = (
    " The default run takes about 5 minutes on 2 cores (1 for the plan, 1.5 for the kills, then the drain);"
    " more --stores and --products plan more shortages, more --kills take about 20 s each."
)


def drain_bound_seconds() -> int:
    """ARCHITECTURE.md: a killed window's messages are visible again after the visibility timeout V, their
    claims expired by then, and the next window (gathering, long-polling) takes them over; a receive whose
    answer the injected faults lose hides its messages for one more V."""
    config = WorkerConfig(queue_url="", dead_letter_queue_url="", bucket="", claims_table="")
    return int(2 * config.visibility_seconds + config.window_seconds + config.wait_seconds + PROCESSING_MARGIN_SECONDS)


class Workers:
    """Truck worker processes that can be killed and restarted; their last run's totals are kept."""

    def __init__(self, count: int, environment: dict[str, str], logs: Path, seed: int) -> None:
        self.environment = environment
        self.logs = logs
        self.processes: dict[int, subprocess.Popen[str]] = {}
        self.starts: Counter[int] = Counter()
        self.seed = seed
        self.lock = threading.Lock()  # a kill and its restart, against stopping them all
        self.stopping = threading.Event()
        for index in range(count):
            self.start(index)

    def start(self, index: int) -> None:
        self.starts[index] += 1
        seed = self.seed * 100 + index * 10 + self.starts[index]  # each run fails other calls
        faults = f"{self.environment['STOREOPS_FAULT_INJECTION']};seed={seed}"
        environment = {**self.environment, "STOREOPS_FAULT_INJECTION": faults}
        log = (self.logs / f"worker-{index}-{self.starts[index]}.log").open("w")
        self.processes[index] = subprocess.Popen(
            python_module("flows.trucks", "--json", tethered=True),  # gone with this benchmark
            cwd=Path(__file__).resolve().parents[1],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )

    def kill_and_restart(self, index: int) -> bool:
        """SIGKILL worker ``index`` (and anything it started) and start it again; False once stopping."""
        with self.lock:
            if self.stopping.is_set():
                return False
            process = self.processes[index]
            kill_tree(process.pid)
            process.wait()
            self.start(index)
        return True

    def stop_all(self) -> list[dict[str, Any]]:
        """SIGTERM every worker and collect the totals each prints when it stops."""
        totals = []
        self.stopping.set()
        with self.lock:
            for process in self.processes.values():
                process.send_signal(signal.SIGTERM)
            for process in self.processes.values():
                try:
                    out, _ = process.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    kill_tree(process.pid)
                    out, _ = process.communicate()
                lines = [line for line in (out or "").splitlines() if line.startswith("{")]
                if lines:
                    totals.append(json.loads(lines[-1]))
        return totals

    def kill_all(self) -> None:
        """SIGKILL whatever still runs (after an error or a signal: no worker may outlive the benchmark)."""
        self.stopping.set()
        with self.lock:
            for process in self.processes.values():
                if process.poll() is None:
                    kill_tree(process.pid)
                    process.wait()


def queue_total(sqs: Any, queue_url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def ledger_rows(s3: Any, bucket: str) -> tuple[set[str], Counter[str]]:
    """The shortages the plan requested, and how many dispatch rows each shortage has."""
    requested: set[str] = set()
    dispatched: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LEDGER_PREFIX):
        for obj in page.get("Contents", []):
            for row in decode_rows(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()):
                if row.record_type == "request":
                    requested.add(row.shortage_id)
                elif row.record_type == "dispatch":
                    dispatched[row.shortage_id] += 1
    return requested, dispatched


def plan_shortages(env: Environment, stores: int, products: int, seed: int) -> None:
    """A day of sales with no refills, then one run of the planning Lambda: the requests on the queue."""
    clients, res = env.clients, env.resources
    s3 = clients.client("s3")
    catalog = build_catalog(stores, products, seed)
    s3.put_object(Bucket=res.data_lake_bucket, Key="reference/stores.json", Body=json.dumps(catalog.directory()))
    now = datetime.now(UTC)
    backfill(catalog, s3, res.data_lake_bucket, 1, end=now, restock_hour=None)  # a day of sales, no refills
    response = clients.client("lambda", read_timeout=600).invoke(
        # a long assumed lead time: reorder points above most shelves, thousands of shortages to dispatch
        FunctionName=res.planning_function,
        Payload=json.dumps({"as_of": now.isoformat(), "lead_time_hours": 48}).encode(),
    )
    plan = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise SystemExit(f"planning failed: {plan}")
    print(f"planned {plan['shortage_count']:,} shortages, sent {plan['requests_sent']:,}", flush=True)


def kill_at_random(workers: Workers, count: int, kills: int, rng: random.Random) -> float:
    """SIGKILL each of ``count`` workers ``kills`` times at random moments, restarting it each time, from one
    thread per worker; the monotonic time of the last kill."""
    last_kill = [time.monotonic()]

    def chaos(index: int) -> None:
        for _ in range(kills):
            if workers.stopping.wait(rng.uniform(8, 30)):  # the worker starts (~5 s), then works for a while
                return
            if not workers.kill_and_restart(index):
                return
            last_kill[0] = time.monotonic()
            print(f"killed worker {index} (SIGKILL) and restarted it", flush=True)

    killers = [threading.Thread(target=chaos, args=(i,), daemon=True) for i in range(count)]
    for killer in killers:
        killer.start()
    for killer in killers:
        killer.join()
    return last_kill[0]


def wait_until_empty(sqs: Any, queue_url: str, seconds: float = 1800) -> float:
    """Poll until the queue holds nothing three polls in a row (or ``seconds`` pass); the monotonic time."""
    empty_polls = 0
    deadline = time.monotonic() + seconds
    while empty_polls < 3 and time.monotonic() < deadline:
        empty_polls = empty_polls + 1 if queue_total(sqs, queue_url) == 0 else 0
        time.sleep(1)
    return time.monotonic()


def run_chaos(env: Environment, args: argparse.Namespace, home: Path) -> tuple[list[dict[str, Any]], float]:
    """The workers on a Prefect server of the benchmark's own, killed at random until the queue is empty;
    their final runs' totals and the seconds from the last kill until the queue was empty."""
    with temporary_server(home / "prefect" / "home") as api_url:  # gone with this process however it ends
        environment = {
            **os.environ,
            "STOREOPS_TARGET": "local",
            "STOREOPS_LOCAL_PORT": str(env.settings.local_port),
            "STOREOPS_LOCAL_HOME": str(env.settings.local_home),
            "STOREOPS_FAULT_INJECTION": f"*={args.fault_rate}",
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(home / "prefect" / "home"),
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        logs = home / "logs"
        logs.mkdir()
        workers = Workers(args.workers, environment, logs, args.seed)
        try:
            last_kill = kill_at_random(workers, args.workers, args.kills, random.Random(args.seed))
            drained_at = wait_until_empty(env.clients.client("sqs"), env.resources.dispatch_queue_url)
            final = workers.stop_all()
        finally:
            workers.kill_all()
    return final, drained_at - last_kill


def outcomes(env: Environment) -> dict[str, int]:
    """Shortages dispatched exactly once, twice, never; valid requests among the dead letters."""
    s3, sqs = env.clients.client("s3"), env.clients.client("sqs")
    requested, dispatched = ledger_rows(s3, env.resources.data_lake_bucket)
    letters = receive_all(sqs, env.resources.dead_letter_queue_url, hold_seconds=1)
    valid_letters = 0
    for letter in letters:
        try:
            if DispatchRequest.model_validate_json(letter.body).shortage_id in requested:
                valid_letters += 1
        except ValueError:
            continue
    return {
        "shortages": len(requested),
        "exactly_once": sum(1 for s in requested if dispatched[s] == 1),
        "duplicates": sum(1 for s in requested if dispatched[s] > 1),
        "missing": sum(1 for s in requested if dispatched[s] == 0),
        "unrequested_dispatches": sum(1 for s in dispatched if s not in requested),
        "valid_dead_lettered": valid_letters,
        "dead_letters": len(letters),
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--stores", type=positive_int, default=100, help="stores (default 100)")
    parser.add_argument("--products", type=positive_int, default=85, help="products per store (default 85)")
    parser.add_argument("--workers", type=positive_int, default=3, help="truck worker processes (default 3)")
    parser.add_argument("--kills", type=positive_int, default=3, help="SIGKILLs per worker (default 3)")
    parser.add_argument("--fault-rate", type=float, default=0.05, help="share of AWS calls that fail (default 0.05)")
    parser.add_argument("--seed", type=positive_int, default=7, help="catalog, faults and kill times (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with bench_environment() as env, tempfile.TemporaryDirectory(prefix="storeops-chaos-") as home:
        plan_shortages(env, args.stores, args.products, args.seed)
        final, drain_seconds = run_chaos(env, args, Path(home))
        counted = outcomes(env)
    faults = Counter[str]()
    for totals in final:
        faults.update(totals.get("injected_faults", {}))
    result = {
        **counted,
        "workers": args.workers,
        "kills": args.workers * args.kills,
        "fault_rate": args.fault_rate,
        "faults_injected_in_final_runs": sum(faults.values()),
        "drain_seconds_after_last_kill": round(drain_seconds, 1),
        "drain_bound_seconds": drain_bound_seconds(),
        "seconds": round(time.monotonic() - started, 1),
    }
    within = result["drain_seconds_after_last_kill"] <= result["drain_bound_seconds"]
    report(result, args, within)
    if args.json:
        emit_json(result)
    ok = result["duplicates"] == result["missing"] == result["valid_dead_lettered"] == 0 and within
    return 0 if ok else 1


def report(result: dict[str, Any], args: argparse.Namespace, within: bool) -> None:
    print_summary(
        f"chaos: {args.workers} workers, {result['kills']} SIGKILLs, {args.fault_rate:.0%} of AWS calls failing",
        [
            ("shortages planned", result["shortages"]),
            ("dispatched exactly once", result["exactly_once"]),
            ("dispatched twice or more", f"{result['duplicates']}  (target 0)"),
            ("never dispatched", f"{result['missing']}  (target 0)"),
            ("valid requests dead-lettered", f"{result['valid_dead_lettered']}  (target 0)"),
            (
                "drain after the last kill",
                f"{result['drain_seconds_after_last_kill']} s  (bound {result['drain_bound_seconds']} s: "
                f"{'within' if within else 'OVER'})",
            ),
            ("faults injected (final runs)", result["faults_injected_in_final_runs"]),
        ],
    )


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
