"""Packing readings into Firehose records and sending them without loss.

Direct PUT bills each record rounded up to 5 KB, and the emulator (and, after buffering,
S3) gets one object per record, so many newline-delimited readings go into each record.
Each record is one gzip member: Firehose bills the compressed bytes, and concatenated
members (what Firehose's buffering writes to one object) are still one valid gzip file,
which Athena reads by its ``.json.gz`` extension.

``FirehoseSender`` honours PutRecordBatch's limits (500 records, 4 MiB), retries only the
entries a response reports as failed (exponential backoff, full jitter, bounded attempts),
and reports exactly how many readings could not be delivered. ``send_stream`` sends records
as they are produced, with a bounded number of calls in flight, so memory stays bounded.
"""

from __future__ import annotations

import gzip
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from storeops.aws import describe_error
from storeops.exceptions import DeliveryError
from storeops.retry import RetryPolicy
from storeops.stores.encoding import EncodedBatch

MAX_RECORD_BYTES = 1_000 * 1024  # Firehose: 1,000 KiB per record
MAX_BATCH_RECORDS = 500  # PutRecordBatch: 500 records per call
MAX_BATCH_BYTES = 4 * 1024 * 1024  # PutRecordBatch: 4 MiB per call
BILLING_INCREMENT = 5 * 1024  # Direct PUT bills each record rounded up to 5 KB
DEFAULT_RAW_CHUNK_BYTES = 1024 * 1024  # readings per record, before compression
FIREHOSE_RETRY = RetryPolicy(max_attempts=8)

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
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[T]]:
    """Group items (records, by default), in order, into calls within PutRecordBatch's limits, as they come."""
    current: list[T] = []
    current_bytes = 0
    for item in items:
        item_size = size(item)
        if current and (len(current) >= max_records or current_bytes + item_size > max_bytes):
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


class FirehoseSender:
    """Sends packed records to one delivery stream; several calls may be in flight."""

    def __init__(
        self, client: Any, stream_name: str, *, retry: RetryPolicy = FIREHOSE_RETRY, max_in_flight: int = 4
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.retry = retry
        self.max_in_flight = max_in_flight

    def send(self, records: Sequence[PackedRecord]) -> SendResult:
        """Deliver ``records``; never raises for partial failure, reports it instead."""
        return self.send_stream(records)

    def send_stream(self, records: Iterable[PackedRecord]) -> SendResult:
        """Deliver records as they come, in PutRecordBatch calls, at most ``max_in_flight`` at once."""
        total = SendResult()
        in_flight: deque[Future[SendResult]] = deque()
        with ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="firehose") as pool:
            for batch in batches_within_limits(records):
                in_flight.append(pool.submit(self._send_batch, batch))
                while len(in_flight) >= self.max_in_flight:
                    total.merge(in_flight.popleft().result())
            while in_flight:
                total.merge(in_flight.popleft().result())
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
        result = SendResult(payload_bytes=sum(len(r.data) for r in batch))
        pending = batch
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                result.retried_records += len(pending)
                self.retry.wait_before_retry(attempt - 1)
            result.calls += 1
            try:
                response = self.client.put_record_batch(
                    DeliveryStreamName=self.stream_name, Records=[{"Data": r.data} for r in pending]
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in {"ResourceNotFoundException", "InvalidArgumentException", "AccessDeniedException"}:
                    raise DeliveryError(
                        f"cannot send to delivery stream {self.stream_name}: {describe_error(exc)}",
                        lost=sum(r.readings for r in pending),
                        hint="deploy the stack (`python -m deployments.stack deploy`) and check the stream name",
                    ) from None
                result.last_error = describe_error(exc)
                logger.info("PutRecordBatch failed (attempt %d): %s", attempt, result.last_error)
                continue  # the whole call failed: every entry is retried
            except BotoCoreError as exc:
                result.last_error = str(exc)
                logger.info("PutRecordBatch failed (attempt %d): %s", attempt, result.last_error)
                continue
            failed: list[PackedRecord] = []
            if response.get("FailedPutCount"):
                logger.info(
                    "Firehose rejected %d of %d records (attempt %d); retrying only those",
                    response["FailedPutCount"],
                    len(pending),
                    attempt,
                )
            for record, entry in zip(pending, response["RequestResponses"], strict=True):
                if entry.get("ErrorCode"):
                    failed.append(record)
                    result.last_error = f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}"
                else:
                    result.records_sent += 1
                    result.readings_sent += record.readings
                    result.billed_bytes += billed_bytes([len(record.data)])
            pending = failed
            if not pending:
                return result
        result.records_failed = len(pending)
        result.readings_failed = sum(r.readings for r in pending)
        return result
