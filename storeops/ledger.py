"""The dispatch ledger in the data lake: planning requests and truck dispatches, one JSON line each.

Objects live under ``dispatch-ledger/dt=YYYY-MM-DD/`` (a Glue table, queryable in Athena).
A ``request`` row says a plan asked for a shortage (open until ``open_until``); a ``dispatch``
row says a truck load carries it (open until a reading after its ``eta``). Planning excludes
pairs with an open row, so it never asks twice for the same goods.

This module owns the ledger's object keys: ``requests-<plan_id>.json`` per plan and
``window-<window_id>.json`` per dispatch window (every truck load the window dispatched), and,
beside the ledger under ``dispatch-routing/``, each recorded window's routing summary (its plan per
depot against the first-fit + nearest-neighbour baseline on the same deliveries).
A window record is created at most once (a conditional PUT); a ``fence`` (one ``fence`` row
in place of the record) makes sure a window that lost its claims can never record.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from storeops.aws_errors import is_conditional_conflict, is_precondition_failed
from storeops.clock import format_timestamp
from storeops.exceptions import StoreOpsError
from storeops.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LEDGER_PREFIX = "dispatch-ledger/"
ROUTING_PREFIX = "dispatch-routing/"  # per window: each depot's plan against the baseline on the same deliveries
WINDOW_PREFIX = "window-"
CONFLICT_RETRY = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=1.0)

logger = logging.getLogger(__name__)


class LedgerRow(BaseModel):
    """One ledger line (schema version 1)."""

    model_config = ConfigDict(extra="forbid")

    record_type: Literal["request", "dispatch", "fence"]
    shortage_id: str
    store_id: str
    product_id: str
    quantity: int
    recorded_at: str
    open_until: str | None = None
    load_id: str | None = None
    truck_id: str | None = None
    stop_number: int | None = None
    eta: str | None = None  # when unloading starts at the stop
    # a dispatch row's truck and stop, repeated on each row of them (the fleet figures read them back):
    depot: str | None = None
    cages: int | None = None  # the stop's roll cages
    window_opens: str | None = None  # the stop's receiving window
    window_closes: str | None = None
    departs: str | None = None  # the truck leaves the depot
    returns: str | None = None  # and is back
    route_km: float | None = None  # depot, stops, depot (road km)
    schema_version: Literal[1] = 1


def day_prefix(day: str) -> str:
    """The folder of one ledger day (``YYYY-MM-DD``)."""
    return f"{LEDGER_PREFIX}dt={day}/"


def requests_key(moment: datetime, plan_id: str) -> str:
    """Where a plan records the requests it sent."""
    return f"{day_prefix(f'{moment:%Y-%m-%d}')}requests-{plan_id}.json"


def window_record_key(departure: datetime, window_id: str) -> str:
    """Where a dispatch window records its truck loads, under the day they departed."""
    return f"{day_prefix(f'{departure:%Y-%m-%d}')}{WINDOW_PREFIX}{window_id}.json"


def routing_summary_key(departure: datetime, window_id: str) -> str:
    """Where a dispatch window writes how it routed (its plan and the baseline's, per depot)."""
    return f"{ROUTING_PREFIX}dt={departure:%Y-%m-%d}/{WINDOW_PREFIX}{window_id}.json"


def window_records_prefix(day: str) -> str:
    """The keys of every window record of ``day`` start with this."""
    return f"{day_prefix(day)}{WINDOW_PREFIX}"


def encode_rows(rows: Iterable[LedgerRow]) -> bytes:
    # every key on every line (nulls too): readers that infer columns from the data see them all
    return "".join(json.dumps(r.model_dump(), separators=(",", ":")) + "\n" for r in rows).encode()


def write_rows(s3: S3Client, bucket: str, key: str, rows: list[LedgerRow]) -> str:
    """Write one ledger object (idempotent: the same key and rows give the same object)."""
    s3.put_object(Bucket=bucket, Key=key, Body=encode_rows(rows), ContentType="application/x-ndjson")
    return key


def decode_rows(body: bytes) -> list[LedgerRow]:
    return [LedgerRow.model_validate_json(line) for line in body.splitlines() if line.strip()]


class Recorded(enum.Enum):
    """What creating a window record found."""

    CREATED = "created now"
    ALREADY_THERE = "created by an earlier attempt whose answer was lost"
    FENCED = "fenced: another window took this window's claims over; it must not record"


def _create_once(
    s3: S3Client, bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None
) -> bytes | None:
    """PUT only if the key is new; None if created, else the body that was there first."""
    for attempt in range(1, CONFLICT_RETRY.max_attempts + 1):
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                IfNoneMatch="*",
                ContentType="application/x-ndjson",
                Metadata=metadata or {},
            )
            return None
        except ClientError as exc:
            if is_conditional_conflict(exc):  # another conditional PUT on this key is in flight: ask again
                CONFLICT_RETRY.wait_before_retry(attempt)
                continue
            if not is_precondition_failed(exc):
                raise
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    raise StoreOpsError(f"conditional writes to {key} kept conflicting", hint="retry the window")


def create_record(s3: S3Client, bucket: str, key: str, rows: list[LedgerRow]) -> Recorded:
    """Create a window's record once; safe to repeat (the same rows find themselves there)."""
    body = encode_rows(rows)
    existing = _create_once(s3, bucket, key, body)
    if existing is None:
        return Recorded.CREATED
    if existing == body:
        return Recorded.ALREADY_THERE
    if any(row.record_type == "fence" for row in decode_rows(existing)):
        return Recorded.FENCED
    raise StoreOpsError(f"window record {key} exists with other rows", hint="window ids must be unique")


def fence_record(s3: S3Client, bucket: str, key: str, fenced_by: str) -> list[LedgerRow] | None:
    """Make the record at ``key`` final before taking its window's claims over.

    Returns None if the key now holds a fence (its window can never record), or the rows the
    window recorded before (then the shortages in them are dispatched).
    """
    fence = LedgerRow(
        record_type="fence",
        shortage_id="",
        store_id="",
        product_id="",
        quantity=0,
        recorded_at=format_timestamp(datetime.now(UTC)),
    )
    existing = _create_once(s3, bucket, key, encode_rows([fence]), {"fenced-by": fenced_by})
    if existing is None:
        logger.info("fenced window record %s (its claims are taken over by %s)", key, fenced_by)
        return None
    rows = decode_rows(existing)
    return None if any(row.record_type == "fence" for row in rows) else rows
