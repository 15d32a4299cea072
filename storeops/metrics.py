"""The custom CloudWatch metrics the stack's alarms watch (deployments/template.yaml), namespace ``StoreOps``,
dimension ``Stack=<stack name>``:

- ``TruckRunHeartbeat`` (1, at most once a minute while the truck run completes windows): the alarm fires when
  it is missing for 3 minutes.
- ``RollupLagHours`` (after each rollup run): hours from the newest rolled hour to the newest closed hour; the
  alarm fires above 3 hours, or when no run reports for 2 hours.

Watching never stops the work: a metric that cannot be put is logged as a warning and dropped. The flows' role
may put metrics in this namespace only (``cloudwatch:namespace``). Nothing here imports Prefect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from storeops.aws import AwsClients
from storeops.aws_errors import describe_error

NAMESPACE = "StoreOps"
STACK_DIMENSION = "Stack"
TRUCK_HEARTBEAT = "TruckRunHeartbeat"
ROLLUP_LAG = "RollupLagHours"
HEARTBEAT_EVERY_SECONDS = 60.0  # the alarm's period; missing for 3 periods fires it

logger = logging.getLogger(__name__)


def put_metric(clients: AwsClients, stack_name: str, name: str, value: float) -> bool:
    """Put one value of ``name`` for ``stack_name``; False (with a warning) when CloudWatch refused or was
    unreachable: the caller carries on."""
    try:
        clients.client("cloudwatch").put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": STACK_DIMENSION, "Value": stack_name}],
                    "Value": float(value),
                    "Unit": "None",
                }
            ],
        )
    except Exception as exc:  # watching must never break the flow it watches
        logger.warning("metric %s/%s not put (%s): carrying on", NAMESPACE, name, describe_error(exc))
        return False
    return True


class Heartbeat:
    """``TruckRunHeartbeat`` at most once every ``every`` seconds, however often ``beat`` is called.

    A failed put counts as a beat too: an unreachable CloudWatch is asked again a minute later, not every window.
    """

    def __init__(
        self,
        clients: AwsClients,
        stack_name: str,
        every: float = HEARTBEAT_EVERY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = clients
        self.stack_name = stack_name
        self.every = every
        self.monotonic = monotonic
        self.last: float | None = None
        self.sent = 0

    def beat(self) -> bool:
        """Send the heartbeat if the last one is ``every`` seconds old or more; whether one was sent."""
        now = self.monotonic()
        if self.last is not None and now - self.last < self.every:
            return False
        self.last = now
        if put_metric(self.clients, self.stack_name, TRUCK_HEARTBEAT, 1.0):
            self.sent += 1
            return True
        return False
