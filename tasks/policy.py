"""The retry policy of tasks that call AWS (idempotent calls only)."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

AWS_CALL_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
}
