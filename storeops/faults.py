"""Fault injection at the AWS boundary, on botocore's own hooks (for tests, benchmarks and drills).

``AwsClients`` registers a ``FaultInjector`` on every client it builds when the setting
``STOREOPS_FAULT_INJECTION`` is given; nothing else reads that setting, and with it unset
(the default) no hook is registered at all. The injector answers a chosen share of requests,
before they reach the network, the way AWS or the network would fail them:

- ``throttle``: the service's throttling error (``ThrottlingException``, S3 ``SlowDown``,
  Lambda ``TooManyRequestsException``), HTTP 400/503/429;
- ``5xx``: HTTP 500 ``InternalFailure`` (S3 ``InternalError``);
- ``timeout``: ``ReadTimeoutError``; in ``landed`` of the cases (default half) the request
  was really sent first and took effect, only its answer was lost: the ambiguous failure
  that makes idempotency matter;
- ``reset``: ``ConnectionClosedError`` before anything was sent.

botocore's retry handler sees these exactly as it sees real failures (it retries them in
``standard`` mode), so what reaches business code is what would reach it on AWS.

Spec grammar (``STOREOPS_FAULT_INJECTION``)::

    <target>=<rate>[,<target>=<rate>...][;kinds=throttle|5xx|timeout|reset,...][;landed=<share>][;seed=<n>]

``target`` is ``*``, a service (``sqs``, ``dynamodb``, ``s3``...) or ``service.Operation``
(``dynamodb.TransactWriteItems``); the most specific target wins. Example: ``*=0.05``.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.client import BaseClient
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

KINDS = ("throttle", "5xx", "timeout", "reset")
TARGET = re.compile(r"^(\*|[a-z0-9-]+(\.[A-Za-z0-9]+)?)$")
THROTTLE_CODES = {"s3": ("SlowDown", 503), "lambda": ("TooManyRequestsException", 429)}
SERVER_ERROR_CODES = {"s3": "InternalError"}


class FaultSpecError(ValueError):
    """The fault injection spec cannot be parsed."""


@dataclass(frozen=True)
class FaultPlan:
    """Which calls fail, how, and how often."""

    rates: dict[str, float]  # target -> share of calls that fail
    kinds: tuple[str, ...] = KINDS
    landed: float = 0.5  # share of timeouts whose request took effect
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Parse ``STOREOPS_FAULT_INJECTION``; ``FaultSpecError`` names what is wrong."""
        parts = [p.strip() for p in spec.split(";") if p.strip()]
        if not parts:
            raise FaultSpecError("empty fault spec: expected e.g. '*=0.05'")
        rates: dict[str, float] = {}
        for item in parts[0].split(","):
            target, _, rate = item.strip().partition("=")
            if not TARGET.match(target) or not rate:
                raise FaultSpecError(f"fault target {item!r}: expected <service[.Operation]|*>=<rate>")
            rates[target] = _share(rate, f"rate of {target}")
        options: dict[str, Any] = {}
        for option in parts[1:]:
            name, _, value = option.partition("=")
            if name == "kinds":
                kinds = tuple(k.strip() for k in value.split(",") if k.strip())
                unknown = sorted(set(kinds) - set(KINDS))
                if unknown or not kinds:
                    raise FaultSpecError(f"fault kinds {value!r}: choose from {', '.join(KINDS)}")
                options["kinds"] = kinds
            elif name == "landed":
                options["landed"] = _share(value, "landed")
            elif name == "seed":
                if not value.isdigit():
                    raise FaultSpecError(f"fault seed {value!r}: expected a whole number")
                options["seed"] = int(value)
            else:
                raise FaultSpecError(f"fault option {name!r}: expected kinds=, landed= or seed=")
        return cls(rates=rates, **options)

    def rate_for(self, service: str, operation: str) -> float:
        for target in (f"{service}.{operation}", service, "*"):
            if target in self.rates:
                return self.rates[target]
        return 0.0


def _share(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"{what} {text!r}: expected a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"{what} {text!r}: expected a number between 0 and 1")
    return value


class _Body:
    """The raw body botocore's AWSResponse reads through ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self.data


@dataclass
class FaultInjector:
    """A botocore ``before-send`` handler that fails requests according to a ``FaultPlan``."""

    plan: FaultPlan
    protocol_of: dict[str, str] = field(default_factory=dict)  # service id -> botocore protocol
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _random: random.Random = field(init=False, repr=False)
    _sender: URLLib3Session | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.plan.seed)

    def register(self, client: BaseClient) -> None:
        """Fail a share of this client's requests from now on."""
        service_id = client.meta.service_model.service_id.hyphenize()
        self.protocol_of[service_id] = client.meta.service_model.protocol
        # botocore types handlers as returning None; a before-send handler may return the response to use
        client.meta.events.register(f"before-send.{service_id}", self.before_send)  # type: ignore[arg-type]

    def before_send(self, request: AWSPreparedRequest, event_name: str, **_kwargs: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            if self._random.random() >= self.plan.rate_for(service, operation):
                return None
            kind = self._random.choice(self.plan.kinds)
            landed = kind == "timeout" and self._random.random() < self.plan.landed
            self.counts[f"{service}.{operation}.{kind}{'-landed' if landed else ''}"] += 1
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "timeout":
            if landed:
                self._send(request)  # it reaches AWS and takes effect; the answer is lost
            raise ReadTimeoutError(endpoint_url=request.url)
        return self._error_response(request, service, kind)

    def _send(self, request: AWSPreparedRequest) -> None:
        with self._lock:
            if self._sender is None:
                self._sender = URLLib3Session(timeout=60)
        try:
            self._sender.send(request)
        finally:
            request.reset_stream()

    def _error_response(self, request: AWSPreparedRequest, service: str, kind: str) -> AWSResponse:
        if kind == "throttle":
            code, status = THROTTLE_CODES.get(service, ("ThrottlingException", 400))
        else:
            code, status = SERVER_ERROR_CODES.get(service, "InternalFailure"), 500
        message = f"injected fault ({kind})"
        protocol = self.protocol_of.get(service, "json")
        headers: dict[str, str] = {"x-amzn-RequestId": "injected-fault"}
        if protocol == "rest-xml":
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            headers["Content-Type"] = "application/xml"
        elif protocol == "query":
            body = (
                f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>injected-fault</RequestId></ErrorResponse>"
            ).encode()
            headers["Content-Type"] = "text/xml"
        elif protocol == "rest-json":
            body = json.dumps({"message": message}).encode()
            headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
        else:  # json
            body = json.dumps({"__type": code, "message": message}).encode()
            headers["Content-Type"] = "application/x-amz-json-1.0"
        http_headers = HTTPHeaders()
        for name, value in headers.items():
            http_headers[name] = value
        return AWSResponse(request.url, status, http_headers, _Body(body))
