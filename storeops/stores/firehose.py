"""Packing readings into Firehose records and sending them without loss.

Direct PUT bills each record rounded up to 5 KB, and the emulator (and, after buffering,
S3) gets one object per record, so many newline-delimited readings go into each record.
Each record is one gzip member: Firehose bills the compressed bytes, and concatenated
members (what Firehose's buffering writes to one object) are still one valid gzip file,
which Athena reads by its ``.json.gz`` extension.

``FirehoseSender`` honours PutRecordBatch's limits (500 records, 4 MiB), retries only the
entries a response reports as failed (exponential backoff, full jitter, bounded attempts),
and reports exactly how many readings could not be delivered. ``send_stream`` sends records
as they are produced, with a bounded number of calls in flight, so memory stays bounded; a
``SendSession`` sends several such streams back to back (a run's chunks of stores) without
waiting for one stream's last answers before the next one's calls start.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from storeops.aws_errors import describe_error, error_code
from storeops.exceptions import DeliveryError
from storeops.retry import EntryFailure, RetryPolicy, retry_failed_entries
from storeops.stores.encoding import EncodedBatch

if TYPE_CHECKING:
    from mypy_boto3_firehose import FirehoseClient

MAX_RECORD_BYTES = 1_000 * 1024  # Firehose: 1,000 KiB per record
MAX_BATCH_RECORDS = 500  # PutRecordBatch: 500 records per call
MAX_BATCH_BYTES = 4 * 1024 * 1024  # PutRecordBatch: 4 MiB per call
BILLING_INCREMENT = 5 * 1024  # Direct PUT bills each record rounded up to 5 KB
DEFAULT_RAW_CHUNK_BYTES = 1024 * 1024  # readings per record, before compression
FIREHOSE_RETRY = RetryPolicy(max_attempts=8)
THROTTLING_CODES = frozenset({"ServiceUnavailableException", "ThrottlingException", "LimitExceededException"})
FATAL_CODES = frozenset({"ResourceNotFoundException", "InvalidArgumentException", "AccessDeniedException"})
MIN_RATE = 64 * 1024  # bytes/s: the adaptive rate never goes below this

logger = logging.getLogger(__name__)
T = TypeVar("T")


def billed_bytes(record_sizes: Sequence[int] | np.ndarray) -> int:
    """Firehose's billed ingestion for records of these sizes (each rounded up to 5 KB)."""
    sizes = np.asarray(record_sizes, dtype=np.int64)
    return int((np.ceil(sizes / BILLING_INCREMENT) * BILLING_INCREMENT).sum())


@dataclass(frozen=True)
class PackedRecord:
    """One Firehose record: a gzip member holding ``readings`` newline-delimited readings."""

    data: bytes
    readings: int
    raw_bytes: int


def chunk_bounds(line_ends: np.ndarray, max_chunk_bytes: int) -> list[tuple[int, int]]:
    """Cut lines into chunks of at most ``max_chunk_bytes`` (a lone longer line gets its own).

    Returns (first_line, end_line) index pairs; every line is in exactly one chunk, in order.
    """
    bounds: list[tuple[int, int]] = []
    first, n = 0, len(line_ends)
    while first < n:
        start_byte = int(line_ends[first - 1]) if first else 0
        end = int(np.searchsorted(line_ends, start_byte + max_chunk_bytes, side="right"))
        end = max(end, first + 1)
        bounds.append((first, end))
        first = end
    return bounds


def _compress(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def pack(
    batch: EncodedBatch,
    raw_chunk_bytes: int = DEFAULT_RAW_CHUNK_BYTES,
    max_record_bytes: int = MAX_RECORD_BYTES,
    executor: ThreadPoolExecutor | None = None,
) -> list[PackedRecord]:
    """Pack a batch's lines into compressed records no larger than ``max_record_bytes``."""
    if batch.count == 0:
        return []
    data = batch.buffer.tobytes()
    ends = batch.line_ends
    pending = chunk_bounds(ends, raw_chunk_bytes)
    records: list[PackedRecord] = []
    while pending:
        raws = [data[(int(ends[a - 1]) if a else 0) : int(ends[b - 1])] for a, b in pending]
        compressed = list(executor.map(_compress, raws)) if executor else [_compress(r) for r in raws]
        retry: list[tuple[int, int]] = []
        for (a, b), raw, blob in zip(pending, raws, compressed, strict=True):
            if len(blob) <= max_record_bytes:
                records.append(PackedRecord(blob, b - a, len(raw)))
            elif b - a > 1:  # incompressible enough to overflow: split the chunk in two
                middle = (a + b) // 2
                retry += [(a, middle), (middle, b)]
            else:
                raise DeliveryError(f"one reading is larger than a Firehose record ({len(blob)} B)", lost=1)
        pending = retry
    return records


def pack_stream(
    batches: Iterable[EncodedBatch],
    executor: ThreadPoolExecutor,
    raw_chunk_bytes: int = DEFAULT_RAW_CHUNK_BYTES,
    lookahead: int = 4,
) -> Iterator[PackedRecord]:
    """Compress batches in ``executor`` while the next ones are encoded; records come out in order.

    At most ``lookahead`` batches wait for compression, so memory is bounded by a few batches.
    """
    pending: deque[Future[list[PackedRecord]]] = deque()
    for batch in batches:
        pending.append(executor.submit(pack, batch, raw_chunk_bytes))
        while len(pending) > lookahead:
            yield from pending.popleft().result()
    while pending:
        yield from pending.popleft().result()


def _record_size(record: PackedRecord) -> int:
    return len(record.data)


def batches_within_limits(
    items: Iterable[T],
    size: Callable[[T], int] = _record_size,  # type: ignore[assignment]
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int | Callable[[], int] = MAX_BATCH_BYTES,
) -> Iterator[list[T]]:
    """Group items (records, by default), in order, into calls within PutRecordBatch's limits, as they come.

    ``max_bytes`` may be a callable, asked as each call is formed (an adaptive send rate's burst).
    """
    limit = max_bytes if callable(max_bytes) else (lambda: max_bytes)
    current: list[T] = []
    current_bytes = 0
    for item in items:
        item_size = size(item)
        if current and (len(current) >= max_records or current_bytes + item_size > limit()):
            yield current
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item_size
    if current:
        yield current


@dataclass
class SendResult:
    """What one ``send`` delivered; ``readings_failed`` were not delivered after every attempt."""

    records_sent: int = 0
    readings_sent: int = 0
    records_failed: int = 0
    readings_failed: int = 0
    calls: int = 0
    retried_records: int = 0
    billed_bytes: int = 0
    payload_bytes: int = 0
    last_error: str = ""

    def merge(self, other: SendResult) -> None:
        for counter in fields(self):
            if counter.type == "int":
                setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))
        self.last_error = other.last_error or self.last_error


class SendRate:
    """An adaptive limit on the bytes per second sent to a delivery stream.

    Unlimited until Firehose throttles (``ServiceUnavailableException``: the stream's quota,
    1 or 5 MiB/s by default). Then the limit starts at what Firehose accepted in the last
    second (the quota, as seen), shrinks by ``decrease`` on every further throttle (once a second at most: calls in
    flight report the same overload) and grows by ``increase`` of itself for every second of
    clean sending (AIMD), so a run settles just under the quota instead of retrying into it
    until records are lost. Thread-safe; time and sleep are injectable.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        increase: float = 0.1,
        decrease: float = 0.7,
        window: float = 1.0,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.increase = increase
        self.decrease = decrease
        self.window = window
        self.rate: float | None = None  # bytes/s; None: not limited
        self._lock = threading.Lock()
        self._next_free = 0.0  # when the limit lets the next byte go
        self._sent: deque[tuple[float, int]] = deque()  # (time, bytes) over the last window
        self._last_growth = 0.0
        self._last_cut = float("-inf")

    def burst(self) -> int:
        """The most bytes one call should carry: a second's worth under a limit, else PutRecordBatch's 4 MiB."""
        rate = self.rate
        return MAX_BATCH_BYTES if rate is None else max(1, min(MAX_BATCH_BYTES, int(rate)))

    def acquire(self, nbytes: int) -> None:
        """Wait until ``nbytes`` may be sent under the current limit."""
        with self._lock:
            now = self.clock()
            if self.rate is None:
                return
            start = max(now, self._next_free)
            self._next_free = start + nbytes / self.rate
            wait = start - now
        if wait > 0:
            self.sleep(wait)

    def delivered(self, nbytes: int) -> None:
        """Bytes Firehose accepted: counted for the throughput, and they grow the limit."""
        with self._lock:
            now = self.clock()
            self._sent.append((now, nbytes))
            while self._sent and self._sent[0][0] < now - self.window:
                self._sent.popleft()
            if self.rate is not None and now - self._last_growth >= 1.0:
                self.rate *= 1.0 + self.increase
                self._last_growth = now

    def throttled(self) -> None:
        """Firehose said slow down: lower the limit (or start one at the throughput it just accepted)."""
        with self._lock:
            now = self.clock()
            if now - self._last_cut < 1.0:
                return
            if self.rate is None:
                recent = sum(n for t, n in self._sent if t >= now - self.window) / self.window
                self.rate = max(MIN_RATE, recent)
            else:
                self.rate = max(MIN_RATE, self.rate * self.decrease)
            self._last_growth = self._last_cut = now
            logger.info("Firehose throttled: sending at most %.0f KiB/s from now", self.rate / 1024)


class FirehoseSender:
    """Sends packed records to one delivery stream; several calls may be in flight."""

    def __init__(
        self,
        client: FirehoseClient,
        stream_name: str,
        *,
        retry: RetryPolicy = FIREHOSE_RETRY,
        max_in_flight: int = 4,
        rate: SendRate | None = None,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.retry = retry
        self.max_in_flight = max_in_flight
        self.rate = rate or SendRate()

    def send_stream(self, records: Iterable[PackedRecord]) -> SendResult:
        """Deliver records as they come, in PutRecordBatch calls, at most ``max_in_flight`` at once."""
        with self.session() as session:
            return session.submit(records).result()

    def session(self) -> SendSession:
        """Several streams of records sent one after another with no pause in between: the next
        stream's calls start while the last ones of the previous stream are still in flight."""
        return SendSession(self)

    def _report(self, total: SendResult) -> SendResult:
        if total.records_failed:
            logger.warning(
                "%d of %d records (%d readings) not delivered to %s after %d attempts: %s",
                total.records_failed,
                total.records_failed + total.records_sent,
                total.readings_failed,
                self.stream_name,
                self.retry.max_attempts,
                total.last_error,
            )
        return total

    def _send_batch(self, batch: list[PackedRecord]) -> SendResult:
        """One PutRecordBatch call, then only its failed records again (``retry_failed_entries``)."""
        result = SendResult(payload_bytes=sum(len(r.data) for r in batch))
        outcome = retry_failed_entries(batch, partial(self._put, result), self.retry, "PutRecordBatch")
        sent = [batch[position] for position in outcome.succeeded]
        lost = [batch[position] for position in outcome.failed]
        result.calls, result.retried_records = outcome.calls, outcome.retried
        result.records_sent, result.readings_sent = len(sent), sum(r.readings for r in sent)
        result.billed_bytes = billed_bytes([len(r.data) for r in sent]) if sent else 0
        result.records_failed, result.readings_failed = len(lost), sum(r.readings for r in lost)
        return result

    def _put(self, result: SendResult, pending: list[tuple[int, PackedRecord]]) -> dict[int, EntryFailure]:
        """One PutRecordBatch call under the send rate; the records it failed, by position. A call that failed
        whole (botocore has retried it) fails its records for good; a missing stream raises ``DeliveryError``."""
        self.rate.acquire(sum(len(r.data) for _, r in pending))
        try:
            response = self.client.put_record_batch(
                DeliveryStreamName=self.stream_name, Records=[{"Data": r.data} for _, r in pending]
            )
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in THROTTLING_CODES:
                self.rate.throttled()
            if error_code(exc) in FATAL_CODES:
                raise DeliveryError(
                    f"cannot send to delivery stream {self.stream_name}: {describe_error(exc)}",
                    lost=sum(r.readings for _, r in pending),
                    hint="deploy the stack (`python -m deployments.stack deploy`) and check the stream name",
                ) from None
            result.last_error = describe_error(exc)
            logger.info("PutRecordBatch failed after botocore's retries: %s", result.last_error)
            return {position: EntryFailure(result.last_error, retryable=False) for position, _ in pending}
        failures: dict[int, EntryFailure] = {}
        delivered = 0
        for (position, record), entry in zip(pending, response["RequestResponses"], strict=True):
            if entry.get("ErrorCode"):
                result.last_error = f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}"
                failures[position] = EntryFailure(result.last_error)
            else:
                delivered += len(record.data)
        self.rate.delivered(delivered)
        if any(entry.get("ErrorCode") in THROTTLING_CODES for entry in response["RequestResponses"]):
            self.rate.throttled()
        return failures


class PendingSend:
    """The calls of one submitted stream of records; ``result`` waits for their answers."""

    def __init__(self, sender: FirehoseSender, calls: list[Future[SendResult]]) -> None:
        self.sender = sender
        self.calls = calls

    def outcome(self) -> tuple[SendResult, DeliveryError | None]:
        """What the stream delivered, and the first ``DeliveryError`` a call raised (e.g. the stream is
        missing; its readings count as not delivered). Waits for every call."""
        total = SendResult()
        error: DeliveryError | None = None
        for call in self.calls:
            try:
                total.merge(call.result())
            except DeliveryError as exc:
                total.merge(SendResult(readings_failed=exc.lost, last_error=exc.message))
                error = error or exc
        return self.sender._report(total), error

    def result(self) -> SendResult:
        """What the stream delivered (raises what a call raised, e.g. ``DeliveryError`` for a missing stream)."""
        total, error = self.outcome()
        if error is not None:
            raise error
        return total


class SendSession:
    """One pool of PutRecordBatch calls, at most ``max_in_flight`` at once across every stream submitted."""

    def __init__(self, sender: FirehoseSender) -> None:
        self.sender = sender
        self.pool = ThreadPoolExecutor(max_workers=sender.max_in_flight, thread_name_prefix="firehose")
        self.in_flight: deque[Future[SendResult]] = deque()

    def __enter__(self) -> SendSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def submit(self, records: Iterable[PackedRecord]) -> PendingSend:
        """Start sending ``records`` as they come; returns once every call is under way (memory stays bounded:
        a call waits for a free slot), before the answers are in."""
        sender = self.sender
        calls: list[Future[SendResult]] = []
        for batch in batches_within_limits(records, max_bytes=sender.rate.burst):
            while len(self.in_flight) >= sender.max_in_flight:
                wait([self.in_flight.popleft()])
            call = self.pool.submit(sender._send_batch, batch)
            self.in_flight.append(call)
            calls.append(call)
        return PendingSend(sender, calls)
