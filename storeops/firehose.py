"""Packing readings into Firehose records and sending them without loss.

Direct PUT bills each record rounded up to 5 KB, and the emulator (and, after buffering,
S3) gets one object per record, so many newline-delimited readings go into each record.
Each record is one gzip member: Firehose bills the compressed bytes, and concatenated
members (what Firehose's buffering writes to one object) are still one valid gzip file,
which Athena reads by its ``.json.gz`` extension.

``FirehoseSender`` honours PutRecordBatch's limits (500 records, 4 MiB), retries only the
entries a response reports as failed (exponential backoff, full jitter, bounded attempts),
and reports exactly how many readings could not be delivered.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from storeops.aws import describe_error
from storeops.exceptions import DeliveryError
from storeops.readings import EncodedBatch
from storeops.retry import RetryPolicy

MAX_RECORD_BYTES = 1_000 * 1024  # Firehose: 1,000 KiB per record
MAX_BATCH_RECORDS = 500  # PutRecordBatch: 500 records per call
MAX_BATCH_BYTES = 4 * 1024 * 1024  # PutRecordBatch: 4 MiB per call
BILLING_INCREMENT = 5 * 1024  # Direct PUT bills each record rounded up to 5 KB
DEFAULT_RAW_CHUNK_BYTES = 1024 * 1024  # readings per record, before compression
FIREHOSE_RETRY = RetryPolicy(max_attempts=8)


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


def plan_batches(
    sizes: Sequence[int], max_records: int = MAX_BATCH_RECORDS, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[int]]:
    """Group record indexes, in order, into calls within PutRecordBatch's limits."""
    batches: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, size in enumerate(sizes):
        if current and (len(current) >= max_records or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


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
        for name in ("records_sent", "readings_sent", "records_failed", "readings_failed", "calls",
                     "retried_records", "billed_bytes", "payload_bytes"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
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
        total = SendResult()
        batches = plan_batches([len(r.data) for r in records])
        if not batches:
            return total
        if len(batches) == 1 or self.max_in_flight == 1:
            results = [self._send_batch([records[i] for i in b]) for b in batches]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_in_flight, len(batches))) as pool:
                results = list(pool.map(lambda b: self._send_batch([records[i] for i in b]), batches))
        for result in results:
            total.merge(result)
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
                continue  # the whole call failed: every entry is retried
            except BotoCoreError as exc:
                result.last_error = str(exc)
                continue
            failed: list[PackedRecord] = []
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
