"""Packing and sending with a stubbed Firehose: limits, exactly-once packing, partial retries."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from storeops.exceptions import DeliveryError
from storeops.retry import RetryPolicy
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder
from storeops.stores.firehose import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    FirehoseSender,
    PackedRecord,
    SendRate,
    batches_within_limits,
    billed_bytes,
    chunk_bounds,
    pack,
)
from storeops.stores.readings import reading_columns
from storeops.stores.simulation import Tick, initial_state


def make_batch(stores: int = 30, products: int = 40):  # type: ignore[no-untyped-def]
    catalog = build_catalog(stores, products, 1)
    state = initial_state(catalog, datetime(2026, 1, 1, tzinfo=UTC))
    nothing = np.zeros_like(state.on_hand)
    tick = Tick(nothing, nothing, nothing, state.on_hand.copy(), 1.0, state.sim_clock)
    return ReadingEncoder(catalog).encode(reading_columns(catalog, state, tick), datetime(2026, 1, 1, tzinfo=UTC))


def test_every_reading_lands_in_exactly_one_record_in_order() -> None:
    batch = make_batch()
    records = pack(batch, raw_chunk_bytes=20_000)
    assert len(records) > 10
    unpacked = b"".join(gzip.decompress(r.data) for r in records)
    assert unpacked == batch.buffer.tobytes()
    assert sum(r.readings for r in records) == batch.count
    assert all(gzip.decompress(r.data).count(b"\n") == r.readings for r in records)


def test_records_never_exceed_the_record_limit_even_when_incompressible() -> None:
    batch = make_batch()
    records = pack(batch, raw_chunk_bytes=200_000, max_record_bytes=6_000)
    assert all(len(r.data) <= 6_000 for r in records)
    assert sum(r.readings for r in records) == batch.count


def test_chunk_bounds_cover_all_lines_once() -> None:
    ends = np.cumsum(np.array([5, 7, 300, 2, 2, 2, 9]))
    bounds = chunk_bounds(ends, 10)
    assert bounds == [(0, 1), (1, 2), (2, 3), (3, 6), (6, 7)]


def test_batches_respect_count_and_size_limits() -> None:
    sizes = [900_000] * 9 + [100] * 1200
    batches = list(batches_within_limits(range(len(sizes)), size=sizes.__getitem__))
    assert sorted(i for b in batches for i in b) == list(range(len(sizes)))
    for batch in batches:
        assert len(batch) <= MAX_BATCH_RECORDS
        assert sum(sizes[i] for i in batch) <= MAX_BATCH_BYTES


def test_billing_rounds_each_record_up_to_5_kb() -> None:
    assert billed_bytes([1, 5120, 5121, 0]) == 5120 + 5120 + 10240 + 0


class StubFirehose:
    """Fails the entries whose payloads are listed, a given number of times each."""

    def __init__(self, failures: dict[bytes, int] | None = None, raise_first: int = 0) -> None:
        self.failures = dict(failures or {})
        self.calls: list[list[bytes]] = []
        self.delivered: list[bytes] = []
        self.raise_first = raise_first

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        payloads = [r["Data"] for r in Records]
        self.calls.append(payloads)
        if self.raise_first:
            self.raise_first -= 1
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailableException", "Message": "slow down"}}, "PutRecordBatch"
            )
        responses = []
        for data in payloads:
            if self.failures.get(data, 0) > 0:
                self.failures[data] -= 1
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "busy"})
            else:
                self.delivered.append(data)
                responses.append({"RecordId": "x"})
        return {"FailedPutCount": sum(1 for r in responses if "ErrorCode" in r), "RequestResponses": responses}


def records(n: int) -> list[PackedRecord]:
    return [PackedRecord(f"r{i}".encode(), readings=10, raw_bytes=100) for i in range(n)]


def sender(stub: StubFirehose, sleeps: list[float], attempts: int = 4) -> FirehoseSender:
    retry = RetryPolicy(max_attempts=attempts, sleep=sleeps.append, jitter=lambda: 1.0)
    return FirehoseSender(stub, "s", retry=retry, max_in_flight=1)


def test_only_failed_entries_are_resent() -> None:
    stub = StubFirehose({b"r1": 1, b"r3": 2})
    sleeps: list[float] = []
    result = sender(stub, sleeps).send_stream(records(5))
    assert stub.calls == [[b"r0", b"r1", b"r2", b"r3", b"r4"], [b"r1", b"r3"], [b"r3"]]
    assert sorted(stub.delivered) == [b"r0", b"r1", b"r2", b"r3", b"r4"]  # each exactly once
    assert result.readings_sent == 50
    assert result.readings_failed == 0
    assert result.retried_records == 3
    assert sleeps == [0.1, 0.2]  # exponential backoff (jitter fixed at 1.0)


def test_the_retry_bound_is_honoured_and_the_loss_is_counted() -> None:
    stub = StubFirehose({b"r2": 100})
    sleeps: list[float] = []
    result = sender(stub, sleeps, attempts=3).send_stream(records(4))
    assert len(stub.calls) == 3
    assert result.records_failed == 1
    assert result.readings_failed == 10
    assert result.readings_sent == 30
    assert "ServiceUnavailableException" in result.last_error


def test_a_failed_call_is_not_retried_over_botocores_retries_and_its_loss_is_counted() -> None:
    stub = StubFirehose(raise_first=1)  # what reaches us once botocore's standard mode gave up
    result = sender(stub, []).send_stream(records(3))
    assert len(stub.calls) == 1
    assert stub.delivered == []
    assert result.readings_failed == 30
    assert "ServiceUnavailableException" in result.last_error


def test_a_missing_stream_fails_at_once_naming_the_fix() -> None:
    class Missing:
        def put_record_batch(self, **_: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "no stream"}}, "PutRecordBatch"
            )

    with pytest.raises(DeliveryError) as info:
        FirehoseSender(Missing(), "gone", max_in_flight=1).send_stream(records(2))
    assert info.value.lost == 20
    assert "deploy" in info.value.one_line()


def test_backoff_is_capped_and_jittered() -> None:
    s = FirehoseSender(StubFirehose(), "s", retry=RetryPolicy(base_delay=0.5, max_delay=2.0, jitter=lambda: 0.5))
    assert [s.retry.backoff(a) for a in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 1.0, 1.0]


def test_concurrent_sending_delivers_everything_once() -> None:
    stub = StubFirehose({b"r7": 1})
    big = [PackedRecord(f"r{i}".encode() + b"x" * 900_000, readings=1, raw_bytes=1) for i in range(20)]
    stub.failures = {big[7].data: 1}
    result = FirehoseSender(stub, "s", retry=RetryPolicy(sleep=lambda _: None), max_in_flight=4).send_stream(big)
    assert result.readings_sent == 20
    assert sorted(stub.delivered) == sorted(r.data for r in big)


class QuotaFirehose:
    """A delivery stream with a bytes-per-second quota in virtual time (a token bucket of one second).

    Records over the quota fail as Firehose fails them: ``ServiceUnavailableException`` "Slow down."
    entries in an otherwise successful PutRecordBatch response.
    """

    def __init__(self, quota: float, clock: list[float]) -> None:
        self.quota = quota
        self.clock = clock
        self.tokens = quota
        self.refilled = 0.0
        self.accepted: list[bytes] = []
        self.throttled = 0

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        now = self.clock[0]
        self.tokens = min(self.quota, self.tokens + (now - self.refilled) * self.quota)
        self.refilled = now
        responses: list[dict[str, str]] = []
        for record in Records:
            if len(record["Data"]) <= self.tokens:
                self.tokens -= len(record["Data"])
                self.accepted.append(record["Data"])
                responses.append({"RecordId": str(len(self.accepted))})
            else:
                self.throttled += 1
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
        failed = sum(1 for r in responses if "ErrorCode" in r)
        return {"FailedPutCount": failed, "RequestResponses": responses}


def virtual_time() -> tuple[list[float], Any, Any]:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    return clock, (lambda: clock[0]), sleep


@pytest.mark.parametrize("quota_mib", [1, 5])
def test_an_adaptive_send_rate_delivers_everything_at_the_streams_default_quota(quota_mib: int) -> None:
    clock, now, sleep = virtual_time()
    stream = QuotaFirehose(quota_mib * 1024 * 1024, clock)
    retry = RetryPolicy(max_attempts=8, sleep=sleep, jitter=lambda: 0.5)
    sender = FirehoseSender(stream, "s", retry=retry, max_in_flight=1, rate=SendRate(clock=now, sleep=sleep))
    payload = [PackedRecord(bytes([i % 251]) * 200_000, readings=100, raw_bytes=1_000_000) for i in range(300)]
    result = sender.send_stream(payload)  # 60 MB, far above what the quota takes in a burst
    assert result.records_failed == 0
    assert result.records_sent == 300
    assert stream.throttled > 0  # it was throttled, and adapted
    assert sender.rate.rate is not None
    seconds = clock[0]
    throughput = 300 * 200_000 / seconds
    assert 0.5 * stream.quota < throughput <= stream.quota * 1.05  # close to the quota, never far above


def test_without_adapting_the_same_run_loses_records_at_the_quota() -> None:
    """The control: the retry policy alone, against a 1 MiB/s stream."""
    clock, now, sleep = virtual_time()
    stream = QuotaFirehose(1024 * 1024, clock)

    class Unlimited(SendRate):
        def throttled(self) -> None:
            return None

    retry = RetryPolicy(max_attempts=8, sleep=sleep, jitter=lambda: 0.5)
    sender = FirehoseSender(stream, "s", retry=retry, max_in_flight=1, rate=Unlimited(clock=now, sleep=sleep))
    payload = [PackedRecord(bytes([i % 251]) * 200_000, readings=100, raw_bytes=1_000_000) for i in range(300)]
    result = sender.send_stream(payload)
    assert result.records_failed > 0
