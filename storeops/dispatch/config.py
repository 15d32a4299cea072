"""How a truck worker runs, and the timing relation its exactly-once argument needs.

The defaults are the deployed values. ``timing_problems`` states the relation (ARCHITECTURE.md,
"Exactly once per shortage"); ``for_queue`` reads the deployed queue's visibility timeout and
redrive policy, so a worker refuses to start on a queue that breaks it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from storeops.costs import CostParameters
from storeops.dispatch.fleet import Fleet
from storeops.dispatch.loading import DEFAULT_ROUTING_SECONDS, Routing
from storeops.exceptions import ConfigurationError
from storeops.parameters import WINDOW_MESSAGES, WINDOW_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_DELAY_SECONDS = 900  # SQS: DelaySeconds of a message
REDRIVE_MARGIN = 6  # receives that must all end before recycling for SQS to redrive a valid message
# A window's work besides routing, within its lease: claims, the record, the marks (seconds; measured
# windows of 5,000 requests on the emulator take under 10 s for all of it).
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker runs. The defaults are the deployed values (see ``timing_problems``)."""

    queue_url: str
    dead_letter_queue_url: str
    bucket: str
    claims_table: str
    window_messages: int = WINDOW_MESSAGES  # one request a message: a window as large as its request budget
    window_requests: int = 5_000  # an order message carries many requests; a window stops gathering at this many
    window_seconds: float = WINDOW_SECONDS
    wait_seconds: int = 20
    visibility_seconds: int = 120
    lease_seconds: int = 90
    max_receive_count: int = 10  # the dispatch queue's redrive maxReceiveCount (read from the queue)
    retry_margin_seconds: float = 5.0
    io_threads: int = 4  # concurrent SQS batch calls, claim transactions and dispatched marks
    fleet: Fleet = field(default_factory=Fleet)
    routing: Routing = "solver"  # or "one_per_request": a truck per request (the original workshop's dispatch)
    routing_seconds: float = DEFAULT_ROUTING_SECONDS
    costs: CostParameters = field(default_factory=CostParameters)  # what the routing minimises
    worker_id: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:10]}")

    @property
    def recycle_at(self) -> int:
        """A valid message received this many times is replaced by a fresh copy before anything else."""
        return recycle_point(self.max_receive_count)

    def for_queue(self, sqs: SQSClient) -> WorkerConfig:
        """This config with the deployed queue's visibility timeout and maxReceiveCount; refuses a
        queue whose settings break the timing relation."""
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
        )["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
        config = replace(
            self,
            visibility_seconds=int(attributes.get("VisibilityTimeout", self.visibility_seconds)),
            max_receive_count=int(redrive.get("maxReceiveCount", self.max_receive_count)),
        )
        problems = timing_problems(
            config.visibility_seconds,
            config.lease_seconds,
            config.window_seconds,
            config.wait_seconds,
            config.max_receive_count,
            config.retry_margin_seconds,
            config.routing_seconds,
        )
        if problems:
            raise ConfigurationError(
                f"the dispatch queue's settings break exactly-once dispatch: {'; '.join(problems)}",
                hint="redeploy the stack with its default DispatchVisibilitySeconds and DispatchMaxReceiveCount",
            )
        return config


def recycle_point(max_receive_count: int) -> int:
    """A valid message received this many times is replaced by a fresh copy before anything else."""
    return max(2, max_receive_count // 2)


def timing_problems(
    visibility_seconds: float,
    lease_seconds: float,
    window_seconds: float,
    wait_seconds: float,
    max_receive_count: int,
    retry_margin_seconds: float = 5.0,
    routing_seconds: float = DEFAULT_ROUTING_SECONDS,
) -> list[str]:
    """What breaks the exactly-once argument's timing relation (ARCHITECTURE.md); empty when it holds."""
    problems = []
    if lease_seconds + window_seconds + wait_seconds > visibility_seconds:
        problems.append(
            f"lease {lease_seconds:g} s + window {window_seconds:g} s + receive wait {wait_seconds:g} s must not "
            f"exceed the visibility timeout {visibility_seconds:g} s (a crashed window's claims must expire "
            "before its messages are visible again)"
        )
    if routing_seconds + LEASE_MARGIN_SECONDS > lease_seconds:
        problems.append(
            f"routing {routing_seconds:g} s + {LEASE_MARGIN_SECONDS:g} s for claims and the record must fit in the "
            f"lease {lease_seconds:g} s (a window must record before its claims can be taken over)"
        )
    if lease_seconds + retry_margin_seconds > MAX_DELAY_SECONDS:
        problems.append(f"lease {lease_seconds:g} s: a retry-later copy must fit SQS's 900 s message delay")
    recycle_at = recycle_point(max_receive_count)
    if max_receive_count - recycle_at + 1 < REDRIVE_MARGIN:
        problems.append(
            f"maxReceiveCount {max_receive_count}: recycling at {recycle_at} must leave {REDRIVE_MARGIN} receives "
            "before SQS redrives a valid message (it needs at least 10)"
        )
    return problems
