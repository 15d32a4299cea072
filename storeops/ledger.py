"""The dispatch ledger in the data lake: planning requests and truck dispatches, one JSON line each.

Objects live under ``dispatch-ledger/dt=YYYY-MM-DD/`` (a Glue table, queryable in Athena).
A ``request`` row says a plan asked for a shortage (open until ``open_until``); a ``dispatch``
row says a truck load carries it (open until a reading after its ``eta``). Planning excludes
pairs with an open row, so it never asks twice for the same goods.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from storeops.readings import format_timestamp

LEDGER_PREFIX = "dispatch-ledger/"


class LedgerRow(BaseModel):
    """One ledger line (schema version 1)."""

    model_config = ConfigDict(extra="forbid")

    record_type: Literal["request", "dispatch"]
    shortage_id: str
    store_id: str
    product_id: str
    quantity: int
    recorded_at: str
    open_until: str | None = None
    load_id: str | None = None
    truck_id: str | None = None
    stop_number: int | None = None
    eta: str | None = None
    schema_version: Literal[1] = 1


def ledger_key(moment: datetime, name: str) -> str:
    return f"{LEDGER_PREFIX}dt={moment:%Y-%m-%d}/{name}.json"


def encode_rows(rows: Iterable[LedgerRow]) -> bytes:
    # every key on every line (nulls too): readers that infer columns from the data see them all
    return "".join(json.dumps(r.model_dump(), separators=(",", ":")) + "\n" for r in rows).encode()


def write_rows(s3: Any, bucket: str, key: str, rows: list[LedgerRow]) -> str:
    """Write one ledger object (idempotent: the same key and rows give the same object)."""
    s3.put_object(Bucket=bucket, Key=key, Body=encode_rows(rows), ContentType="application/x-ndjson")
    return key


def iso(moment: datetime) -> str:
    return format_timestamp(moment)
