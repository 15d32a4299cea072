"""StorePlanningApp's Lambda handler: parse the event, plan, return the summary.

Thin by design: everything it does is ``storeops.planning.service.plan_shortages``. Errors
(a bad event, a failed query, lost messages) raise, so the invoker gets ``FunctionError``
with a one-line ``errorMessage`` and nothing is sent for a bad event.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from storeops.aws import AwsClients
from storeops.planning.models import PlanningTargets, PlanRequest
from storeops.planning.service import plan_shortages

logger = logging.getLogger(__name__)
# The runtime's root logger may drop INFO: let this package's loggers (here and in service) through.
logging.getLogger(__name__.partition(".")[0]).setLevel(logging.INFO)
_clients: AwsClients | None = None  # kept between warm invocations


def _factory() -> AwsClients:
    global _clients
    if _clients is None:
        _clients = AwsClients.for_lambda(os.environ.get("AWS_REGION", "us-east-1"))
        _clients.configure_awswrangler()
    return _clients


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    request = PlanRequest.from_event(event)
    targets = PlanningTargets.from_environment(os.environ)
    result = plan_shortages(_factory(), targets, request, now=datetime.now(UTC))
    logger.info(
        "plan %s: %d shortages %s, %d messages sent, %d bytes scanned, %.2f s",
        result.plan_id,
        len(result.shortages),
        result.by_kind,
        result.requests_sent,
        result.bytes_scanned,
        result.seconds,
    )
    return result.to_payload()
