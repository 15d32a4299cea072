"""Plan shortages: run the Athena query, turn shortages into dispatch requests, record and send them.

The planning Lambda's handler and the tests call ``plan_shortages``; nothing here imports Prefect.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from storeops.athena import SCANNED_BYTES_LABELS, run_query, scan_cost_usd
from storeops.aws import AwsClients
from storeops.clock import format_timestamp
from storeops.contracts.dispatch_order import pack_orders
from storeops.contracts.dispatch_request import DispatchRequest, shortage_id
from storeops.exceptions import DeliveryError, ValidationFailed
from storeops.ledger import LedgerRow, requests_key, write_rows
from storeops.planning.models import PlanningTargets, PlanRequest, PlanWindow
from storeops.planning.rollup import rollup_watermark
from storeops.sqs import SqsBatcher

logger = logging.getLogger(__name__)

SEND_THREADS = 8  # SendMessageBatch calls in flight: a chain-wide plan sends thousands of orders
POLICY_QUERIES = {"storeops": "shortages", "workshop": "workshop_alerts"}  # sql/<name>.sql
SHORTAGE_COLUMNS = [
    "shortage_id",
    "store_id",
    "product_id",
    "product_name",
    "category",
    "kind",
    "priority",
    "on_hand",
    "reorder_point",
    "target_stock",
    "case_pack",
    "quantity",
    "units_sold_in_window",
    "sales_per_hour",
    "hours_of_cover",
    "reading_event_id",
    "observed_at",
]


@dataclass
class PlanResult:
    """What a planning run found and did."""

    plan_id: str
    as_of: str
    window_start: str
    rollup_until: str  # the hours [window_start, rollup_until) were read from the hourly rollup
    dry_run: bool
    shortages: pd.DataFrame
    query_execution_id: str
    query_bytes: list[int]  # bytes scanned by each query of the plan
    bytes_scanned_source: str
    query_seconds: float
    requests_sent: int = 0
    requests_failed: int = 0
    sqs_messages: int = 0  # the orders that carried them (a store's requests, up to 200 KB each)
    deferred: int = 0
    ledger_key: str | None = None
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_scanned(self) -> int:
        return sum(self.query_bytes)

    @property
    def cost_usd(self) -> float:
        return scan_cost_usd(self.query_bytes)

    def to_payload(self, max_rows: int = 2000) -> dict[str, Any]:
        """A JSON-safe summary (the Lambda's response; stays far below Lambda's 6 MB)."""
        rows = json.loads(self.shortages.head(max_rows).to_json(orient="records", date_format="iso"))
        return {
            "plan_id": self.plan_id,
            "as_of": self.as_of,
            "window_start": self.window_start,
            "rollup_until": self.rollup_until,
            "dry_run": self.dry_run,
            "query_execution_id": self.query_execution_id,
            "bytes_scanned": self.bytes_scanned,
            "bytes_scanned_source": self.bytes_scanned_source,
            "bytes_scanned_label": SCANNED_BYTES_LABELS[self.bytes_scanned_source],
            "queries": len(self.query_bytes),
            "query_cost_usd": round(self.cost_usd, 8),
            "query_seconds": round(self.query_seconds, 3),
            "shortages_by_kind": self.by_kind,
            "shortage_count": len(self.shortages),
            "shortages": rows,
            "shortages_truncated": len(self.shortages) > max_rows,
            "requests_sent": self.requests_sent,
            "requests_failed": self.requests_failed,
            "sqs_messages": self.sqs_messages,
            "deferred": self.deferred,
            "ledger_key": self.ledger_key,
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


def peak_rss_mb() -> float:
    """The planner process's peak resident memory so far (in the Lambda: the sandbox's)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def to_requests(shortages: pd.DataFrame, plan_id: str, planned_at: datetime) -> list[DispatchRequest]:
    """One validated message per shortage row."""
    requests = []
    for row in shortages.to_dict("records"):
        cover = row.get("hours_of_cover")
        requests.append(
            DispatchRequest(
                shortage_id=row["shortage_id"],
                plan_id=plan_id,
                planned_at=planned_at,
                store_id=row["store_id"],
                product_id=row["product_id"],
                product_name=row["product_name"],
                category=row["category"],
                kind=row["kind"],
                priority=int(row["priority"]),
                quantity=int(row["quantity"]),
                case_pack=int(row["case_pack"]),
                on_hand=int(row["on_hand"]),
                reorder_point=int(row["reorder_point"]),
                target_stock=int(row["target_stock"]),
                hours_of_cover=None if cover is None or pd.isna(cover) else round(float(cover), 3),
                reading_event_id=row["reading_event_id"],
                observed_at=str(row["observed_at"]),
            )
        )
    return requests


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed columns plus the deterministic shortage id, whatever the engine returned."""
    out = frame.copy()
    for column in (
        "on_hand",
        "reorder_point",
        "target_stock",
        "case_pack",
        "quantity",
        "priority",
        "units_sold_in_window",
    ):
        out[column] = out[column].astype("int64")
    for column in ("sales_per_hour", "hours_of_cover"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    out["observed_at"] = out["observed_at"].map(_iso_text)
    out["shortage_id"] = [
        shortage_id(s, p, e)
        for s, p, e in zip(out["store_id"], out["product_id"], out["reading_event_id"], strict=True)
    ]
    return out[SHORTAGE_COLUMNS].reset_index(drop=True)


def _iso_text(value: Any) -> str:
    if isinstance(value, datetime | pd.Timestamp):
        return format_timestamp(pd.Timestamp(value).to_pydatetime())
    return str(value)


def plan_shortages(
    clients: AwsClients,
    targets: PlanningTargets,
    request: PlanRequest,
    now: datetime,
    batcher: SqsBatcher | None = None,
) -> PlanResult:
    """Find shortages at ``request.as_of`` and, unless a dry run, record and send the requests."""
    started = time.perf_counter()
    window = PlanWindow.resolve(request, now)
    if request.policy == "storeops":  # shortages.sql reads the closed hours the hourly rollup holds
        watermark = rollup_watermark(clients.client("s3"), targets.bucket, window.first_partition, window.rollup_cap)
        window = window.reading_rollup_until(watermark)
    params = window.query_parameters()
    query_bytes: list[int] = []
    if window.stores:
        check = run_query(clients, targets.query_target, "stores_in_window", params)
        query_bytes.append(check.bytes_scanned)
        present = set(check.frame["store_id"])
        unknown = [s for s in window.stores if s not in present]
        if unknown:
            raise ValidationFailed(
                f"unknown store ids (no readings between {params['window_start']} and {params['as_of']}): "
                + ", ".join(unknown[:10]),
                hint="check the ids, or widen lookback_hours",
            )
    run = run_query(clients, targets.query_target, POLICY_QUERIES[request.policy], params)
    query_bytes.append(run.bytes_scanned)
    shortages = normalise(run.frame)
    logger.info(
        "query %s: %d shortages in [%s, %s] (rollup for the partitions before %s) in %.2f s, %d %s",
        run.query_execution_id,
        len(shortages),
        params["window_start"],
        params["as_of"],
        format_timestamp(window.raw_start),
        run.seconds,
        run.bytes_scanned,
        SCANNED_BYTES_LABELS[targets.scanned_bytes_source],
    )
    plan_id = run.query_execution_id or f"plan-{int(now.timestamp())}"
    result = PlanResult(
        plan_id=plan_id,
        as_of=params["as_of"],
        window_start=params["window_start"],
        rollup_until=format_timestamp(window.raw_start),
        dry_run=request.dry_run,
        shortages=shortages,
        query_execution_id=run.query_execution_id,
        query_bytes=query_bytes,
        bytes_scanned_source=targets.scanned_bytes_source,
        query_seconds=run.seconds,
        by_kind={k: int(v) for k, v in shortages["kind"].value_counts().sort_index().items()},
    )
    to_send = shortages if request.max_requests is None else shortages.head(request.max_requests)
    result.deferred = len(shortages) - len(to_send)
    if request.dry_run or to_send.empty:
        result.seconds = time.perf_counter() - started
        return result
    # The plan's own time (as_of: now, or a scenario's virtual now) stamps what it asks and records.
    planned_at = window.as_of
    messages = to_requests(to_send, plan_id, planned_at)
    rows: list[LedgerRow] = []
    if request.policy == "storeops":
        # Record the requests before sending: a crash after this never leads to asking twice.
        open_until = format_timestamp(planned_at + timedelta(hours=targets.request_ttl_hours))
        rows = [
            LedgerRow(
                record_type="request",
                shortage_id=m.shortage_id,
                store_id=m.store_id,
                product_id=m.product_id,
                quantity=m.quantity,
                recorded_at=format_timestamp(planned_at),
                open_until=open_until,
            )
            for m in messages
        ]
        key = requests_key(planned_at, plan_id)
        result.ledger_key = write_rows(clients.client("s3"), targets.bucket, key, rows)
    orders = pack_orders((m.store_id, m.model_dump_json()) for m in messages)
    batcher = batcher or SqsBatcher(clients.client("sqs"), max_workers=SEND_THREADS)
    outcome = batcher.send(targets.queue_url, [(f"o{i}", body) for i, (body, _) in enumerate(orders)])
    carried = [count for _, count in orders]
    result.sqs_messages = len(outcome.succeeded)
    result.requests_sent = sum(carried[int(entry_id[1:])] for entry_id in outcome.succeeded)
    result.requests_failed = sum(carried[int(entry_id[1:])] for entry_id in outcome.failed)
    result.seconds = time.perf_counter() - started
    logger.info(
        "plan %s: recorded %d requests in %s, sent %d in %d messages, failed %d, deferred %d by max_requests",
        plan_id,
        len(rows),
        result.ledger_key,
        result.requests_sent,
        result.sqs_messages,
        result.requests_failed,
        result.deferred,
    )
    if outcome.failed:
        first = next(iter(outcome.failed.values()))
        kept_out = (
            f"they stay excluded until {rows[0].open_until} and are planned again after that"
            if rows
            else "the next plan asks again"
        )
        raise DeliveryError(
            f"{result.requests_failed} of {len(messages)} dispatch requests were not sent ({first}); {kept_out}",
            lost=result.requests_failed,
            hint="check the dispatch queue, then run planning again",
        )
    return result
