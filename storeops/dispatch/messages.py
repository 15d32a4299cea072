"""Validating dispatch request messages: a bad one gets a reason, never an exception."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from storeops.calendar import FORMATS
from storeops.contracts.dispatch_order import is_order, order_requests, request_body
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.directory import DEPOTS, StoreLocation
from storeops.dispatch.loading import Loader
from storeops.exceptions import first_validation_error

UNKNOWN_STORE = "unknown store"  # reason prefix: the store directory may simply be stale
GENERATION_ATTRIBUTE = "storeops-generation"  # how many times a request was replaced by a fresh copy


BAD_ORDER = "dispatch order: 'requests' must be a non-empty list of dispatch requests (and nothing else)"


@dataclass(frozen=True)
class Received:
    """One SQS message as received, or one request of an order (``parent_id`` = the order's message id)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    generation: int = 0
    parent_id: str | None = None

    @property
    def sqs_message_id(self) -> str:
        """The SQS message this request came in."""
        return self.parent_id or self.message_id

    @classmethod
    def from_sqs(cls, message: Mapping[str, Any]) -> Received:
        attributes = message.get("Attributes", {})
        generation = message.get("MessageAttributes", {}).get(GENERATION_ATTRIBUTE, {}).get("StringValue", "0")
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            generation=int(generation) if str(generation).isdigit() else 0,
        )


def split_message(message: Received) -> list[Received]:
    """An order's requests as items of their own (ids ``<message id>#<n>``); any other message as itself.

    A malformed order stays whole (``parse_request`` then gives the reason); so does a body that is not JSON.
    """
    try:
        data = json.loads(message.body)
    except json.JSONDecodeError:
        return [message]
    if not is_order(data):
        return [message]
    requests = order_requests(data)
    if requests is None:
        return [message]
    return [
        Received(
            message_id=f"{message.message_id}#{n}",
            receipt_handle=message.receipt_handle,
            body=request_body(request),
            receive_count=message.receive_count,
            generation=message.generation,
            parent_id=message.message_id,
        )
        for n, request in enumerate(requests)
    ]


def parse_request(body: str, stores: dict[str, StoreLocation], loader: Loader) -> tuple[DispatchRequest | None, str]:
    """The request, or None and a one-line reason it cannot be dispatched."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at character {exc.pos}"
    if not isinstance(data, dict):
        return None, f"not a JSON object: {type(data).__name__}"
    if is_order(data):
        return None, BAD_ORDER
    try:
        request = DispatchRequest.model_validate(data)
    except ValidationError as exc:
        return None, f"schema: {first_validation_error(exc, 'message')}"
    if request.store_id not in stores:
        return None, f"{UNKNOWN_STORE} {request.store_id}: not in the store directory"
    store = stores[request.store_id]
    if store.region not in DEPOTS or store.format not in FORMATS:
        return None, (
            f"store {request.store_id}: the store directory gives region {store.region!r} and format "
            f"{store.format!r}; regions are {', '.join(DEPOTS)}, formats {', '.join(FORMATS)}: fix the directory"
        )
    too_big = loader.too_big(request)
    if too_big:
        return None, too_big
    return request, ""
