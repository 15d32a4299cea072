"""The dispatch ledger in the data lake: planning requests and truck dispatches, one JSON line each.

Objects live under ``dispatch-ledger/dt=YYYY-MM-DD/`` (a Glue table, queryable in Athena).
A ``request`` row says a plan asked for a shortage (open until ``open_until``); a ``dispatch``
row says a truck load carries it (open until a reading after its ``eta``). Planning excludes
pairs with an open row, so it never asks twice for the same goods.

This module owns the ledger's object keys: ``requests-<plan_id>.json`` per plan and
``load-<window_id>-<n>.json`` per truck load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

LEDGER_PREFIX = "dispatch-ledger/"
LOAD_PREFIX = "load-"


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


def day_prefix(day: str) -> str:
    """The folder of one ledger day (``YYYY-MM-DD``)."""
    return f"{LEDGER_PREFIX}dt={day}/"


def requests_key(moment: datetime, plan_id: str) -> str:
    """Where a plan records the requests it sent."""
    return f"{day_prefix(f'{moment:%Y-%m-%d}')}requests-{plan_id}.json"


def load_id_prefix(window_id: str) -> str:
    """Loads of a dispatch window are named ``<this>-<n>``."""
    return f"{LOAD_PREFIX}{window_id}"


def load_key(moment: datetime, load_id: str) -> str:
    """Where a truck load is recorded, under the day it departed."""
    return f"{day_prefix(f'{moment:%Y-%m-%d}')}{load_id}.json"


def window_loads_prefix(day: str, window_id: str) -> str:
    """The keys of every load one dispatch window recorded on ``day`` start with this."""
    return f"{day_prefix(day)}{load_id_prefix(window_id)}-"


def loads_prefix(day: str) -> str:
    """The keys of every truck load recorded on ``day`` start with this."""
    return f"{day_prefix(day)}{LOAD_PREFIX}"


def load_id_of(key: str) -> str:
    """The load id a load key names."""
    return key.rsplit("/", 1)[-1].removesuffix(".json")


def encode_rows(rows: Iterable[LedgerRow]) -> bytes:
    # every key on every line (nulls too): readers that infer columns from the data see them all
    return "".join(json.dumps(r.model_dump(), separators=(",", ":")) + "\n" for r in rows).encode()


def write_rows(s3: Any, bucket: str, key: str, rows: list[LedgerRow]) -> str:
    """Write one ledger object (idempotent: the same key and rows give the same object)."""
    s3.put_object(Bucket=bucket, Key=key, Body=encode_rows(rows), ContentType="application/x-ndjson")
    return key
