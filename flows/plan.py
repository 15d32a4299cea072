"""Flow ``plan``: invoke the StorePlanningApp Lambda and publish its shortages.

python -m flows.plan [--as-of T] [--lookback-hours H] [--lead-time-hours L] [--review-hours R]
    [--store ID ...] [--max-requests N] [--dry-run] [--json]
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from flows.cli import FlowCli, Table
from flows.failures import fail_in_one_line
from flows.run_names import plan_run_name
from storeops.parameters import (
    LEAD_TIME_HOURS,
    LOOKBACK_HOURS,
    REVIEW_HOURS,
    AsOf,
    DryRun,
    LeadTimeHours,
    LookbackHours,
    MaxRequests,
    PlanStores,
    ReviewHours,
)
from storeops.planning.models import PlanRequest, PlanWindow
from tasks.environment import load_environment
from tasks.planning import invoke_planner, publish_plan, shortage_rows


def build_event(
    as_of: datetime | None = None,
    lookback_hours: float = LOOKBACK_HOURS,
    lead_time_hours: float = LEAD_TIME_HOURS,
    review_hours: float = REVIEW_HOURS,
    stores: list[str] | None = None,
    dry_run: bool = False,
    max_requests: int | None = None,
) -> dict[str, Any]:
    """The validated Lambda event (the same checks the function makes, done before invoking it)."""
    request = PlanRequest.from_event(
        {
            "as_of": as_of.isoformat() if as_of else None,
            "lookback_hours": lookback_hours,
            "lead_time_hours": lead_time_hours,
            "review_hours": review_hours,
            "stores": stores or [],
            "dry_run": dry_run,
            "max_requests": max_requests,
        }
    )
    PlanWindow.resolve(request, datetime.now(UTC))  # e.g. an as_of in the future
    return request.model_dump(mode="json", exclude_none=True)


@flow(
    name="plan",
    description="Find store-product shortages in Athena and send dispatch requests.",
    flow_run_name=plan_run_name,
    validate_parameters=True,
)
@fail_in_one_line
def plan(
    as_of: AsOf = None,
    lookback_hours: LookbackHours = LOOKBACK_HOURS,
    lead_time_hours: LeadTimeHours = LEAD_TIME_HOURS,
    review_hours: ReviewHours = REVIEW_HOURS,
    stores: PlanStores = None,
    dry_run: DryRun = False,
    max_requests: MaxRequests = None,
) -> dict[str, Any]:
    """Invoke the planning Lambda (RequestResponse) and publish its result as artifacts."""
    event = build_event(as_of, lookback_hours, lead_time_hours, review_hours, stores, dry_run, max_requests)
    env = load_environment()
    payload = invoke_planner(env.clients, env.resources.planning_function, event)
    publish_plan(payload)
    return payload


def _tables(payload: dict[str, Any]) -> list[Table]:
    dry = " (dry run)" if payload["dry_run"] else ""
    summary = [
        {"": "shortages", "value": f"{payload['shortage_count']:,} {payload['shortages_by_kind']}"},
        {
            "": "dispatch requests sent",
            "value": f"{payload['requests_sent']:,} in {payload.get('sqs_messages', 0):,} messages "
            f"(deferred {payload['deferred']:,})",
        },
        {
            "": payload["bytes_scanned_label"],
            "value": f"{payload['bytes_scanned']:,} (${payload['query_cost_usd']:.6f})",
        },
    ]
    shown = shortage_rows(payload)[:10]
    more = f", the first {len(shown)} of {payload['shortage_count']:,}" if payload["shortage_count"] > 10 else ""
    return [
        Table(f"plan {payload['plan_id']} at {payload['as_of']}{dry}", summary),
        Table(f"shortages{more}", shown),
    ]


def _json(payload: dict[str, Any]) -> dict[str, Any]:
    keep = ("store_id", "product_id", "kind", "on_hand", "quantity", "shortage_id")
    return {**payload, "shortages": [{k: r[k] for k in keep} for r in payload["shortages"]]}


CLI = FlowCli(plan, "python -m flows.plan", _tables, check=build_event, names={"stores": "store"}, to_json=_json)

if __name__ == "__main__":
    from deployments.cli import run

    run(CLI)
