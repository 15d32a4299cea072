"""The retry policy of tasks whose failures botocore cannot see (idempotent steps only).

Whole AWS calls are retried by botocore's standard mode (``storeops.aws``) and failed batch entries by
``storeops.retry.retry_failed_entries``; a task retries only what neither sees: an Athena query that ended
FAILED, a plan refused while another one runs, a stack that is still being made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.tasks import exponential_backoff

AWS_CALL_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
}


def retry_when(worth_retrying: Callable[[Exception], bool]) -> Callable[[Any, Any, Any], bool]:
    """A task's ``retry_condition_fn``: retry a failed run when ``worth_retrying`` says so of its exception."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except Exception as exc:
            return worth_retrying(exc)
        return False

    return condition
