"""Validating dispatch request messages: a bad one gets a reason, never an exception."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from storeops.contracts.dispatch_request import DispatchRequest
from storeops.directory import StoreLocation
from storeops.dispatch.routing import FleetPolicy
from storeops.exceptions import first_validation_error

UNKNOWN_STORE = "unknown store"  # reason prefix: the store directory may simply be stale
GENERATION_ATTRIBUTE = "storeops-generation"  # how many times a request was replaced by a fresh copy


@dataclass(frozen=True)
class Received:
    """One SQS message as received."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    generation: int = 0

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> Received:
        attributes = message.get("Attributes", {})
        generation = message.get("MessageAttributes", {}).get(GENERATION_ATTRIBUTE, {}).get("StringValue", "0")
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            generation=int(generation) if str(generation).isdigit() else 0,
        )


def parse_request(
    body: str, stores: dict[str, StoreLocation], policy: FleetPolicy
) -> tuple[DispatchRequest | None, str]:
    """The request, or None and a one-line reason it cannot be dispatched."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at character {exc.pos}"
    if not isinstance(data, dict):
        return None, f"not a JSON object: {type(data).__name__}"
    try:
        request = DispatchRequest.model_validate(data)
    except ValidationError as exc:
        return None, f"schema: {first_validation_error(exc, 'message')}"
    if request.store_id not in stores:
        return None, f"{UNKNOWN_STORE} {request.store_id}: not in the store directory"
    if request.quantity > policy.capacity_units:
        return None, f"quantity {request.quantity} exceeds a truck's capacity {policy.capacity_units}"
    return request, ""
