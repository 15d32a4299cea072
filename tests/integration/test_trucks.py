"""StoreTruckApp on the emulator: exactly-once dispatch under concurrency, crashes and redelivery;
poison messages and the DLQ replay; a stop mid-window loses nothing."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from storeops.aws import AwsClients
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.contracts.samples import sample_request
from storeops.directory import publish_store_directory
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.loop import StopFlag, run_dispatch_loop
from storeops.dispatch.replay import move_back, receive_all, release
from storeops.dispatch.worker import DispatchWorker
from storeops.settings import load_settings
from storeops.sqs import Outgoing, SqsBatcher
from storeops.stores.catalog import build_catalog
from tests.conftest import wait_for
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration


def requests_for(stack: LocalStack, count: int, stores: int = 20) -> list[DispatchRequest]:
    catalog = build_catalog(stores, 10, 3)
    publish_store_directory(stack.clients.client("s3"), stack.resources.data_lake_bucket, catalog.directory())
    now = datetime.now(UTC)
    return [
        sample_request(
            f"S{i % stores + 1:04d}",
            f"P{i // stores + 1:04d}",
            6 * (1 + i % 9),
            reading_event_id=f"r{i}",
            kind="out_of_stock",
            plan_id="test",
            planned_at=now,
            observed_at="2026-01-01T00:00:00.000Z",
        )
        for i in range(count)
    ]


def send(stack: LocalStack, bodies: list[str], queue: str | None = None) -> None:
    outcome = SqsBatcher(stack.clients.client("sqs")).send(
        queue or stack.resources.dispatch_queue_url, [Outgoing(b) for b in bodies]
    )
    assert not outcome.failed


def worker(stack: LocalStack, **overrides: object) -> DispatchWorker:
    res = stack.resources
    settings = {"window_messages": 100, "window_seconds": 5.0, "wait_seconds": 1, **overrides}
    config = WorkerConfig(
        queue_url=res.dispatch_queue_url,
        dead_letter_queue_url=res.dead_letter_queue_url,
        bucket=res.data_lake_bucket,
        claims_table=res.claims_table,
        **settings,
    )  # type: ignore[arg-type]
    c = stack.clients
    return DispatchWorker(c.client("sqs"), c.client("dynamodb"), c.client("s3"), config)


def ledger_dispatches(stack: LocalStack) -> Counter[str]:
    """How many dispatch rows each shortage has in the ledger (read from S3, no SQL)."""
    s3, bucket = stack.clients.client("s3"), stack.resources.data_lake_bucket
    counts: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="dispatch-ledger/"):
        for obj in page.get("Contents", []):
            for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].iter_lines():
                row = json.loads(line)
                if row["record_type"] == "dispatch":
                    counts[row["shortage_id"]] += 1
    return counts


def queue_counts(stack: LocalStack, queue: str) -> tuple[int, int]:
    attrs = stack.clients.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def visible_again(stack: LocalStack, count: int) -> None:
    """Wait until ``count`` messages are back in the queue (their visibility timeout ran out)."""
    wait_for(lambda: queue_counts(stack, stack.resources.dispatch_queue_url)[0] == count or None, timeout=30)


def drain(w: DispatchWorker) -> dict[str, object]:
    return run_dispatch_loop(w, StopFlag(), until_empty=True, max_seconds=120).as_dict()


def test_two_workers_at_once_dispatch_every_request_exactly_once(local_stack: LocalStack) -> None:
    requests = requests_for(local_stack, 300)
    bodies = [r.model_dump_json() for r in requests]
    send(local_stack, bodies + bodies[:60])  # 60 duplicate messages too
    results: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: results.append(drain(worker(local_stack)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    wait_for(lambda: queue_counts(local_stack, local_stack.resources.dispatch_queue_url) == (0, 0) or None, timeout=60)
    ledger = ledger_dispatches(local_stack)
    assert set(ledger) == {r.shortage_id for r in requests}
    assert set(ledger.values()) == {1}
    assert sum(int(r["dispatched"]) for r in results) == 300  # type: ignore[call-overload]
    assert sum(int(r["duplicates_skipped"]) for r in results) == 60  # type: ignore[call-overload]
    assert all(int(r["messages_received"]) > 0 for r in results)  # type: ignore[call-overload]


def test_a_worker_dying_between_recording_and_deleting_causes_no_second_dispatch(local_stack: LocalStack) -> None:
    requests = requests_for(local_stack, 40)
    send(local_stack, [r.model_dump_json() for r in requests])
    doomed = worker(local_stack, visibility_seconds=2, lease_seconds=1)

    def crash(_messages: object) -> int:
        raise KeyboardInterrupt("killed after the ledger write, before deleting")

    doomed._delete = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        doomed.process(doomed.gather(until_empty=True))
    assert len(ledger_dispatches(local_stack)) == 40
    visible_again(local_stack, 40)
    survivor = drain(worker(local_stack))
    assert survivor["dispatched"] == 0
    assert survivor["duplicates_skipped"] == 40
    assert set(ledger_dispatches(local_stack).values()) == {1}
    assert queue_counts(local_stack, local_stack.resources.dispatch_queue_url) == (0, 0)


def test_an_abandoned_claim_is_taken_over_after_its_lease(local_stack: LocalStack) -> None:
    requests = requests_for(local_stack, 15)
    send(local_stack, [r.model_dump_json() for r in requests])
    doomed = worker(local_stack, visibility_seconds=2, lease_seconds=1)
    doomed.claims.release = lambda *_: None  # type: ignore[method-assign]  # a hard crash releases nothing

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed after claiming, before recording")

    doomed._dispatch = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(KeyboardInterrupt):
        doomed.process(doomed.gather(until_empty=True))
    assert ledger_dispatches(local_stack) == Counter()
    visible_again(local_stack, 15)  # by then the 1 s lease has expired too
    survivor = drain(worker(local_stack))
    assert survivor["dispatched"] == 15
    assert set(ledger_dispatches(local_stack).values()) == {1}


def test_claims_left_unmarked_are_repaired_from_the_ledger_not_redispatched(local_stack: LocalStack) -> None:
    requests = requests_for(local_stack, 12)
    bodies = [r.model_dump_json() for r in requests]
    send(local_stack, bodies)
    doomed = worker(local_stack, lease_seconds=1)

    def fail_every_mark(shortage_ids: list[str], _window: object) -> int:
        return len(shortage_ids)  # marking failed after its retries: logged and counted, not raised

    doomed.claims.mark_dispatched = fail_every_mark  # type: ignore[method-assign,assignment]
    report = doomed.process(doomed.gather(until_empty=True))
    assert report.mark_failures == 12  # the ledger record is the durable effect
    assert report.dispatched == 12
    send(local_stack, bodies)  # duplicate copies of the same requests arrive later
    claims = doomed.claims
    wait_for(
        lambda: (
            all(c.lease_expires < time.time() for c in claims.lookup(r.shortage_id for r in requests)[0].values())
            or None
        ),
        timeout=10,
    )
    survivor = drain(worker(local_stack))
    assert survivor["dispatched"] == 0
    assert survivor["duplicates_skipped"] == 12
    assert {c.state for c in claims.lookup(r.shortage_id for r in requests)[0].values()} == {"dispatched"}
    assert set(ledger_dispatches(local_stack).values()) == {1}


def test_poison_messages_reach_the_dlq_with_a_reason_and_replay_brings_them_back(local_stack: LocalStack) -> None:
    good = requests_for(local_stack, 10)
    unknown_store = good[0].model_copy(update={"store_id": "S0999", "shortage_id": "sh-" + "9" * 32})
    poison = ["{not json", json.dumps({"shortage_id": "nope"}), unknown_store.model_dump_json()]
    send(local_stack, [r.model_dump_json() for r in good] + poison)
    result = drain(worker(local_stack))
    assert result["dispatched"] == 10
    assert result["dead_lettered"] == 3
    sqs = local_stack.clients.client("sqs")
    letters = receive_all(sqs, local_stack.resources.dead_letter_queue_url)
    release(SqsBatcher(sqs), local_stack.resources.dead_letter_queue_url, letters)  # what --dry-run does
    reasons = sorted(letter.reason for letter in letters)
    assert len(reasons) == 3
    assert any("not JSON" in r for r in reasons)
    assert any("schema" in r for r in reasons)
    assert any("unknown store S0999" in r for r in reasons)
    letters = receive_all(sqs, local_stack.resources.dead_letter_queue_url)
    moved, failed = move_back(
        SqsBatcher(sqs), local_stack.resources.dispatch_queue_url, local_stack.resources.dead_letter_queue_url, letters
    )
    assert (moved, failed) == (3, 0)
    assert queue_counts(local_stack, local_stack.resources.dispatch_queue_url)[0] == 3
    assert queue_counts(local_stack, local_stack.resources.dead_letter_queue_url) == (0, 0)


def test_stopping_mid_window_loses_nothing(local_stack: LocalStack) -> None:
    requests = requests_for(local_stack, 200)
    send(local_stack, [r.model_dump_json() for r in requests])
    stop = StopFlag()
    w = worker(local_stack, window_messages=150, window_seconds=30.0)
    original_gather = w.sqs.receive_message
    calls = {"n": 0}

    def receive_then_stop(**kwargs: object) -> dict[str, object]:
        calls["n"] += 1
        if calls["n"] == 3:
            stop.request("SIGTERM")  # a signal arrives while the window is gathering
        return original_gather(**kwargs)

    w.sqs = type(
        "Sqs",
        (),
        {
            "receive_message": staticmethod(receive_then_stop),
            "__getattr__": lambda self, name: getattr(original_gather.__self__, name),
        },
    )()
    w.should_stop = lambda: stop.requested
    first = run_dispatch_loop(w, stop).as_dict()
    assert first["stopped_by"] == "SIGTERM"
    assert 0 < int(first["dispatched"]) < 200  # type: ignore[call-overload]
    second = drain(worker(local_stack))
    assert int(first["dispatched"]) + int(second["dispatched"]) == 200  # type: ignore[call-overload]
    assert set(ledger_dispatches(local_stack).values()) == {1}
    assert len(ledger_dispatches(local_stack)) == 200


def test_a_long_window_extends_visibility_so_nothing_is_received_twice(local_stack: LocalStack) -> None:
    requests = requests_for(local_stack, 16)
    bodies = [r.model_dump_json() for r in requests]
    w = worker(local_stack, visibility_seconds=2, window_seconds=5.0, window_messages=1000)
    done = threading.Event()

    def trickle() -> None:  # requests keep arriving, so the window stays open longer than the visibility
        for start in range(0, len(bodies), 2):
            send(local_stack, bodies[start : start + 2])
            if done.wait(0.3):
                return

    feeder = threading.Thread(target=trickle)
    feeder.start()
    held = w.gather()
    done.set()
    feeder.join()
    assert len(held) == 16
    assert all(m.receive_count == 1 for m in held)  # without extension the first ones would come back
    report = w.process(held)
    assert report.dispatched == 16


def test_a_drain_through_injected_faults_dispatches_each_request_exactly_once(local_stack: LocalStack) -> None:
    """Throttling, 5xx, resets and timeouts (half of them after the request took effect) on every
    SQS, DynamoDB and S3 call, at the AWS boundary; botocore retries them as it would on AWS."""
    requests = requests_for(local_stack, 120)
    bodies = [r.model_dump_json() for r in requests]
    send(local_stack, bodies + bodies[:20])
    faulty = load_settings(
        local_port=local_stack.settings.local_port,
        local_home=local_stack.settings.local_home,
        fault_injection="sqs=0.25,dynamodb=0.25,s3=0.25;landed=1;seed=5",  # every timeout took effect
    )
    clients = AwsClients.from_settings(faulty)
    res = local_stack.resources
    config = WorkerConfig(
        queue_url=res.dispatch_queue_url,
        dead_letter_queue_url=res.dead_letter_queue_url,
        bucket=res.data_lake_bucket,
        claims_table=res.claims_table,
        window_messages=20,
        window_seconds=1.0,
        wait_seconds=1,
        visibility_seconds=6,  # short for speed; the deployed relation is checked in test_claim_protocol
        lease_seconds=3,
    )
    worker_ = DispatchWorker(clients.client("sqs"), clients.client("dynamodb"), clients.client("s3"), config)
    totals = run_dispatch_loop(worker_, StopFlag(), until_empty=True, max_seconds=240).as_dict()
    assert totals["stopped_by"] == "queue empty"
    ledger = ledger_dispatches(local_stack)
    assert set(ledger) == {r.shortage_id for r in requests}
    assert set(ledger.values()) == {1}
    injected = clients.injected_faults()
    assert sum(injected.values()) >= 10
    assert any(kind.endswith("timeout-landed") for kind in injected)
    assert queue_counts(local_stack, res.dead_letter_queue_url) == (0, 0)
