"""Run names that say what a run does, e.g. ``plan 168h dry run 16:45``, instead of ``tested-mole``.

Prefect calls these when it creates a run (``flow_run_name=``); they read the run's parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect.context import FlowRunContext
from prefect.runtime import flow_run

from flows.cli import flow_defaults


def _parameters() -> dict[str, Any]:
    """The run's parameters, with the defaults of its flow's signature for those it was not given."""
    context = FlowRunContext.get()
    defaults = flow_defaults(context.flow) if context and context.flow else {}
    return {**defaults, **dict(flow_run.parameters or {})}


def _at() -> str:
    scheduled = flow_run.scheduled_start_time
    moment = scheduled if isinstance(scheduled, datetime) else datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%H:%M")


def store_data_run_name() -> str:
    p = _parameters()
    backfill = f" +{p['backfill_days']}d backfill" if p.get("backfill_days") else ""
    return f"store-data {p['stores']}x{p['products']}{backfill} {_at()}"


def plan_run_name() -> str:
    p = _parameters()
    dry = " dry run" if p.get("dry_run") else ""
    stores = f" {len(p['stores'])} stores" if p.get("stores") else ""
    return f"plan {p['lookback_hours']:g}h{stores}{dry} {_at()}"


def trucks_run_name() -> str:
    p = _parameters()
    mode = "drain" if p.get("until_empty") else "trucks"
    return f"{mode} {_at()}"


def rollup_run_name() -> str:
    p = _parameters()
    if p.get("start") and p.get("end"):
        span = p["start"] if p["start"] == p["end"] else f"{p['start']} to {p['end']}"
        return f"rollup {span} {_at()}"
    return f"rollup catch-up {_at()}"


def replay_dlq_run_name() -> str:
    return f"dead letters{' dry run' if _parameters().get('dry_run') else ' replay'} {_at()}"


def scenario_run_name() -> str:
    p = _parameters()
    return f"scenario {p['policy']} {p['days']}d {p['stores']}x{p['products']}"


def forecast_run_name() -> str:
    p = _parameters()
    return f"forecast {p.get('day') or 'today'} {p['history_days']}d {_at()}"
