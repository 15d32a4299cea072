"""Flow ``plan``: invoke the StorePlanningApp Lambda and publish its shortages.

python -m flows.plan [--as-of T] [--lookback-hours H] [--lead-time-hours L] [--review-hours R]
    [--store ID ...] [--max-requests N] [--dry-run] [--json]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import plan_run_name
from storeops.cli import emit_json, non_negative_float, positive_float, positive_int, run_cli
from storeops.planning.models import (
    MAX_PLAN_STORES,
    LeadTimeHours,
    LookbackHours,
    MaxRequests,
    PlanRequest,
    PlanWindow,
    ReviewHours,
)
from storeops.settings import load_settings
from tasks.planning import invoke_planner, publish_plan


def build_event(
    as_of: str | None,
    lookback_hours: float,
    lead_time_hours: float,
    review_hours: float,
    stores: list[str] | None,
    dry_run: bool,
    max_requests: int | None,
) -> dict[str, Any]:
    """The validated Lambda event (the same checks the function makes, done before invoking it)."""
    request = PlanRequest.from_event(
        {
            "as_of": as_of,
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
    as_of: datetime | None = None,
    lookback_hours: LookbackHours = 168.0,
    lead_time_hours: LeadTimeHours = 4.0,
    review_hours: ReviewHours = 1.0,
    stores: Annotated[list[str] | None, Field(max_length=MAX_PLAN_STORES)] = None,
    dry_run: bool = False,
    max_requests: MaxRequests = None,
) -> dict[str, Any]:
    """Invoke the planning Lambda (RequestResponse) and publish its result as artifacts.

    Args:
        as_of: Planning time with a time zone, e.g. 2026-11-26T12:00:00Z; empty means now. Not in the future.
        lookback_hours: Window of readings and sales, in hours (more than 0, at most 744).
        lead_time_hours: Lead time assumed for a store the ledger shows no delivery to yet (0 to 336).
        review_hours: Hours until the next plan can order again: the planning cadence (more than 0, at most 168).
        stores: Plan only these store ids (e.g. S0001); empty means every store.
        dry_run: Compute the shortages and show them; send and record nothing.
        max_requests: At most this many dispatch requests, most urgent first; empty means every shortage.
    """
    event = build_event(
        as_of.isoformat() if as_of else None,
        lookback_hours,
        lead_time_hours,
        review_hours,
        stores,
        dry_run,
        max_requests,
    )
    env = prepare(load_settings())
    payload = invoke_planner(env.clients, env.resources.planning_function, event)
    publish_plan(payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.plan",
        description="Run the shortage analysis (the planning Lambda) and send dispatch requests.",
    )
    parser.add_argument("--as-of", help="planning time, ISO-8601 with time zone (default: now)")
    parser.add_argument("--lookback-hours", type=positive_float, default=168.0, help="window (default 168)")
    parser.add_argument(
        "--lead-time-hours",
        type=non_negative_float,
        default=4.0,
        help="lead time for a store with no delivery in the ledger yet (default 4)",
    )
    parser.add_argument(
        "--review-hours", type=positive_float, default=1.0, help="hours until the next plan (default 1)"
    )
    parser.add_argument("--store", action="append", dest="stores", metavar="ID", help="restrict to a store (repeat)")
    parser.add_argument(
        "--max-requests", type=positive_int, default=None, help="cap on requests, most urgent first (default: all)"
    )
    parser.add_argument("--dry-run", action="store_true", help="compute shortages; send and record nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    parsed = None
    if args.as_of:
        try:
            parsed = datetime.fromisoformat(args.as_of.replace("Z", "+00:00"))
        except ValueError:
            parser.error(f"--as-of: not an ISO-8601 time: {args.as_of!r}")
        if parsed.tzinfo is None:
            parser.error("--as-of needs a time zone, e.g. 2026-11-26T12:00:00Z")
    build_event(
        args.as_of,
        args.lookback_hours,
        args.lead_time_hours,
        args.review_hours,
        args.stores,
        args.dry_run,
        args.max_requests,
    )
    settings = load_settings()
    quiet_expected_tracebacks()
    with prefect_api(settings.local_home):
        payload = plan(
            as_of=parsed,
            lookback_hours=args.lookback_hours,
            lead_time_hours=args.lead_time_hours,
            review_hours=args.review_hours,
            stores=args.stores,
            dry_run=args.dry_run,
            max_requests=args.max_requests,
        )
    print(f"plan {payload['plan_id']} at {payload['as_of']}{' (dry run)' if payload['dry_run'] else ''}")
    print(f"  shortages: {payload['shortage_count']} {payload['shortages_by_kind']}")
    print(
        f"  dispatch requests sent: {payload['requests_sent']:,} in {payload.get('sqs_messages', 0):,} messages"
        f"  deferred: {payload['deferred']:,}"
    )
    print(f"  {payload['bytes_scanned_label']}: {payload['bytes_scanned']:,}  (${payload['query_cost_usd']:.6f})")
    for row in payload["shortages"][:10]:
        print(
            f"    {row['store_id']} {row['product_id']} {row['kind']:<20} on hand {row['on_hand']:>5}  "
            f"send {row['quantity']:>5}"
        )
    if payload["shortage_count"] > 10:
        print(f"    ... {payload['shortage_count'] - 10} more")
    if args.json:
        keep = ("store_id", "product_id", "kind", "on_hand", "quantity", "shortage_id")
        emit_json({**payload, "shortages": [{k: r[k] for k in keep} for r in payload["shortages"]]})
    return 0


if __name__ == "__main__":
    run_cli(main)
