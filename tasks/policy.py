"""The retry policy of tasks whose failures botocore cannot see (idempotent steps only).

Whole AWS calls are retried by botocore's standard mode (``storeops.aws``) and failed batch entries by
``storeops.retry.retry_failed_entries``; a task retries only what neither sees: an Athena query that ended
FAILED, a plan refused while another one runs, a stack that is still being made."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

AWS_CALL_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
}
