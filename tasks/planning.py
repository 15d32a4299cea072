"""Tasks of the ``plan`` flow: invoke the planning Lambda, publish what it found."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from storeops.aws import AwsClients
from storeops.aws_errors import describe_error, error_code
from storeops.exceptions import StoreOpsError
from tasks.artifacts import figures
from tasks.policy import retry_when

INVOKE_READ_TIMEOUT = 330.0  # the function's timeout (300 s) plus margin
RETRYABLE_CODES = {
    "TooManyRequestsException",
    "ServiceException",
    "EC2ThrottledException",
    "ResourceNotReadyException",
    "ThrottlingException",
    "ServiceUnavailableException",
}


class PlannerUnavailable(StoreOpsError):
    """Throttling or a 5xx from Lambda: worth retrying."""


class PlanningFailed(StoreOpsError):
    """The planning function itself failed; the message is its own error message."""


_retry_only_unavailable = retry_when(lambda exc: isinstance(exc, PlannerUnavailable))


@task(
    name="invoke-planner",
    cache_policy=NO_CACHE,
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_only_unavailable,
)
def invoke_planner(clients: AwsClients, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the planning Lambda synchronously and return its summary."""
    client = clients.client("lambda", read_timeout=INVOKE_READ_TIMEOUT)
    try:
        response = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
    except ClientError as exc:
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if exc.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded":
            raise PlannerUnavailable(
                f"another plan is running: {function_name} runs one plan at a time",
                hint="wait for it to finish (the task retries), or run the plan again later",
            ) from None
        if code in RETRYABLE_CODES or status >= 500:
            raise PlannerUnavailable(f"the planning function is unavailable: {describe_error(exc)}") from None
        raise PlanningFailed(
            f"cannot invoke {function_name}: {describe_error(exc)}",
            hint="deploy the stack (`python -m deployments.stack deploy`)",
        ) from None
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage", "no message") if isinstance(payload, dict) else str(payload)
        raise PlanningFailed(f"planning failed: {message}")
    get_run_logger().info(
        "plan %s: %d shortages %s, %d dispatch requests sent in %d messages, %d deferred, %d %s, %.2f s in the "
        "function",
        payload["plan_id"],
        payload["shortage_count"],
        payload["shortages_by_kind"],
        payload["requests_sent"],
        payload.get("sqs_messages", 0),
        payload["deferred"],
        payload["bytes_scanned"],
        payload["bytes_scanned_label"],
        payload["seconds"],
    )
    return dict(payload)


SHORTAGE_COLUMNS = (
    "store_id",
    "product_id",
    "product_name",
    "kind",
    "on_hand",
    "quantity",
    "hours_of_cover",
    "shortage_id",
)


def shortage_rows(payload: dict[str, Any], limit: int = 500) -> list[dict[str, Any]]:
    """The plan's first shortages, most urgent first: the rows of the ``plan-shortages`` artifact and of the CLI."""
    return [figures({c: r.get(c) for c in SHORTAGE_COLUMNS}) for r in payload["shortages"][:limit]]


@task(name="publish-plan", cache_policy=NO_CACHE)
def publish_plan(payload: dict[str, Any]) -> None:
    """A table of the shortages and a markdown summary in the Prefect UI.

    A dry run publishes under keys of its own (``plan-shortages-dry-run``...), labelled, so the
    latest ``plan-shortages`` is always the latest plan that sent something.
    """
    dry_run = bool(payload["dry_run"])
    suffix, label = ("-dry-run", "DRY RUN (nothing sent): ") if dry_run else ("", "")
    rows = shortage_rows(payload)
    create_table_artifact(
        key=f"plan-shortages{suffix}",
        table=rows or [dict.fromkeys(SHORTAGE_COLUMNS)],
        description=(
            f"{label}shortages at {payload['as_of']}: the first {len(rows):,} of {payload['shortage_count']:,}, "
            "most urgent first"
        ),
    )
    kinds = "\n".join(f"| {k} | {v:,} |" for k, v in payload["shortages_by_kind"].items()) or "| none | 0 |"
    cost = payload["query_cost_usd"]
    create_markdown_artifact(
        key=f"plan-summary{suffix}",
        markdown=(
            f"## {'Dry run of plan' if dry_run else 'Plan'} {payload['plan_id']}\n\n"
            f"Window `{payload['window_start']}` to `{payload['as_of']}`"
            f"{' (dry run: nothing sent, nothing recorded)' if dry_run else ''}.\n\n"
            f"| kind | shortages |\n|---|---|\n{kinds}\n\n"
            f"- dispatch requests sent: **{payload['requests_sent']:,}** in {payload.get('sqs_messages', 0):,} "
            f"SQS messages (deferred by max_requests: {payload['deferred']:,})\n"
            f"- Athena query `{payload['query_execution_id']}`: {payload['bytes_scanned']:,} "
            f"{payload['bytes_scanned_label']}, ${cost:.6f} at $5/TB (10 MB minimum per query)\n"
            f"- planning took {payload['seconds']:.2f} s in the function\n"
        ),
        description=f"{label}plan {payload['plan_id']} at {payload['as_of']}: {payload['shortage_count']:,} shortages, "
        f"{payload['requests_sent']:,} dispatch requests sent",
    )
