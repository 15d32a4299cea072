"""The dispatch order: one SQS message carrying many dispatch requests (usually one store's).

A plan at chain scale finds hundreds of thousands of shortages; one message each would make the
queue, and every worker receive, the bottleneck. So the planner packs a store's requests into
orders of at most ``ORDER_MAX_BYTES``; the worker splits an order into its requests and handles
each one on its own (claims are per shortage, so exactly once per shortage is unchanged). A
single request (schema v1) on its own is still a valid message: the worker sends requests it
must look at again, and the dead-letter queue holds requests, one per message.

Body: ``{"schema_version": 1, "message_type": "dispatch_order", "requests": [<DispatchRequest v1>, ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

ORDER_TYPE = "dispatch_order"
# SQS allows 256 KiB per message and per batch call; 200 KB leaves room for attributes.
ORDER_MAX_BYTES = 200_000
_HEAD = '{"schema_version":1,"message_type":"' + ORDER_TYPE + '","requests":['
_TAIL = "]}"


def order_body(request_bodies: Sequence[str]) -> str:
    """One order holding these request bodies (each a DispatchRequest's JSON); one request stays as it is."""
    if len(request_bodies) == 1:
        return request_bodies[0]
    return _HEAD + ",".join(request_bodies) + _TAIL


def pack_orders(request_bodies: Iterable[tuple[str, str]], max_bytes: int = ORDER_MAX_BYTES) -> list[tuple[str, int]]:
    """Pack (store id, request JSON) pairs into orders of at most ``max_bytes``, one store per order:
    (body, how many requests it carries).

    Requests keep their order within a store (the planner's priority order); a store with more
    requests than fit gets several orders.
    """
    by_store: dict[str, list[str]] = {}
    for store_id, body in request_bodies:
        by_store.setdefault(store_id, []).append(body)
    orders: list[tuple[str, int]] = []
    overhead = len(_HEAD) + len(_TAIL)
    for bodies in by_store.values():
        chunk: list[str] = []
        size = overhead
        for body in bodies:
            length = len(body.encode()) + 1
            if chunk and size + length > max_bytes:
                orders.append((order_body(chunk), len(chunk)))
                chunk, size = [], overhead
            chunk.append(body)
            size += length
        if chunk:
            orders.append((order_body(chunk), len(chunk)))
    return orders


def is_order(data: Any) -> bool:
    """Whether a parsed message body is an order (rather than a single request)."""
    return isinstance(data, dict) and data.get("message_type") == ORDER_TYPE


def order_requests(data: dict[str, Any]) -> list[Any] | None:
    """An order's requests as parsed JSON values, or None when the order is malformed."""
    requests = data.get("requests")
    if data.get("schema_version") != 1 or not isinstance(requests, list) or not requests:
        return None
    if set(data) - {"schema_version", "message_type", "requests"}:
        return None
    return requests


def request_body(request: Any) -> str:
    """The JSON of one request taken out of an order (compact, as the planner writes it)."""
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False)
