"""Plan: run the Athena query, turn its rows into dispatch requests, record and send them, chunk by chunk.

The planning Lambda's handler and the tests call ``plan_shortages``; nothing here imports Prefect. The query's
result is streamed in chunks of ``CHUNK_ROWS`` rows (``storeops.athena.run_query_chunks``): each chunk's requests
are recorded in the ledger, packed into orders and sent before the next chunk is read, so the planner's memory
grows with a chunk, not with the plan. Policies:

- ``storeops``: the forecast-driven replenishment policy (``storeops.planning.policy``) on
  ``sql/replenishment.sql`` (the latest readings joined with the day's forecast); where no forecast covers the
  day yet (a new stack, or the forecast flow has not run for two days), the plain rule, said in the result;
- ``plain``: the plain rule of the previous release (``sql/shortages.sql``), kept as a baseline;
- ``workshop``: the original workshop's rule (``sql/workshop_alerts.sql``).
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from storeops.athena import SCANNED_BYTES_LABELS, run_query, run_query_chunks, scan_cost_usd
from storeops.aws import AwsClients
from storeops.clock import format_timestamp
from storeops.contracts.dispatch_order import pack_orders
from storeops.contracts.dispatch_request import DispatchRequest, shortage_id
from storeops.costs import CostParameters
from storeops.exceptions import DeliveryError, ValidationFailed
from storeops.ledger import LedgerRow, requests_key, write_rows
from storeops.planning.forecast import HORIZON_DAYS, latest_forecast_day
from storeops.planning.models import PlanningTargets, PlanRequest, PlanWindow
from storeops.planning.policy import Costs, Forecast, Pairs, decide, is_slot_plan
from storeops.planning.rollup import rollup_watermark
from storeops.sqs import Outgoing, SqsBatcher

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

SEND_THREADS = 8  # SendMessageBatch calls in flight: a chain-wide plan sends thousands of orders
POLICY_QUERIES = {"plain": "shortages", "workshop": "workshop_alerts", "forecast": "replenishment"}  # sql/<name>.sql
CHUNK_ROWS = 100_000  # rows of a query result held at once (a chunk's requests are sent before the next is read)
SAMPLE_ROWS = 2_000  # the plan's first shortages kept for its summary (the Lambda's response, the flow's artifact)
RECORDING_POLICIES = ("storeops", "plain")  # remember what they asked (the ledger), so nothing is asked twice
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
    shortages: pd.DataFrame  # the first SAMPLE_ROWS shortages, by the query's order
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
    shortage_count: int = 0
    method: str = ""  # what decided: replenishment (with the forecast of forecast_day), plain or workshop
    forecast_day: str | None = None
    regular_orders: bool = False  # did this plan place the stores' regular (slot) orders
    stores_ordered: int = 0
    ledger_keys: list[str] = field(default_factory=list)

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
            "method": self.method,
            "forecast_day": self.forecast_day,
            "regular_orders": self.regular_orders,
            "stores_ordered": self.stores_ordered,
            "shortages_by_kind": self.by_kind,
            "shortage_count": self.shortage_count,
            "shortages": rows,
            "shortages_truncated": self.shortage_count > min(max_rows, len(rows)),
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
    costs: CostParameters | None = None,
) -> PlanResult:
    """Find what to order at ``request.as_of`` and, unless a dry run, record and send the requests."""
    started = time.perf_counter()
    window, method, forecast_day = _planning_method(
        clients.client("s3"), targets, request, PlanWindow.resolve(request, now)
    )
    params = window.query_parameters()
    query_bytes = _check_stores(clients, targets, window, params)
    if forecast_day is not None:
        params["forecast_day"] = forecast_day.isoformat()
    run = run_query_chunks(clients, targets.query_target, POLICY_QUERIES[method], params, CHUNK_ROWS)
    query_bytes.append(run.bytes_scanned)
    plan_id = run.query_execution_id or f"plan-{int(now.timestamp())}"
    result = PlanResult(
        plan_id=plan_id,
        as_of=params["as_of"],
        window_start=params["window_start"],
        rollup_until=format_timestamp(window.raw_start),
        dry_run=request.dry_run,
        shortages=pd.DataFrame(columns=SHORTAGE_COLUMNS),
        query_execution_id=run.query_execution_id,
        query_bytes=query_bytes,
        bytes_scanned_source=targets.scanned_bytes_source,
        query_seconds=run.seconds,
        method=method,
        forecast_day=forecast_day.isoformat() if forecast_day else None,
    )
    if forecast_day is not None:  # the forecast method
        policy_costs = Costs(
            holding_rate_per_year=(costs or CostParameters()).holding_rate_per_year,
            extra_stop_cost=request.extra_stop_cost,
            safety_factor=request.safety_factor,
        )
        result.regular_orders = is_slot_plan(window.as_of, request.review_hours)
        shortage_chunks = _replenishment_chunks(
            run.chunks, forecast_day, window.as_of, request.review_hours, policy_costs
        )
    else:
        shortage_chunks = (normalise(chunk) for chunk in run.chunks if not chunk.empty)
    sender = _Sender(clients, targets, request, window.as_of, plan_id, batcher)
    _order(shortage_chunks, request, sender, result)
    result.seconds = time.perf_counter() - started
    _log_plan(result, sender, targets, run.seconds)
    _raise_if_unsent(sender, request)
    return result


def _raise_if_unsent(sender: _Sender, request: PlanRequest) -> None:
    """DeliveryError when some of the plan's requests were not sent, saying when they are planned again."""
    if not sender.failed:
        return
    kept_out = (
        f"they stay excluded until {sender.open_until} and are planned again after that"
        if request.policy in RECORDING_POLICIES
        else "the next plan asks again"
    )
    raise DeliveryError(
        f"{sender.failed} of {sender.failed + sender.sent} dispatch requests were not sent ({sender.first_error}); "
        f"{kept_out}",
        lost=sender.failed,
        hint="check the dispatch queue, then run planning again",
    )


def _planning_method(
    s3: S3Client, targets: PlanningTargets, request: PlanRequest, window: PlanWindow
) -> tuple[PlanWindow, str, date | None]:
    """How this plan decides (``forecast``, ``workshop`` or ``plain``), the forecast day it uses, and the window
    it reads (the rollup up to its watermark, raw readings after)."""
    forecast_day = None
    if request.policy == "storeops":
        forecast_day = latest_forecast_day(s3, targets.bucket, window.as_of.date())
        if forecast_day is None:
            logger.warning(
                "no forecast covers %s (run the forecast flow: `python -m flows.forecast`): the plain rule plans",
                window.as_of.date(),
            )
    method = "forecast" if forecast_day is not None else ("workshop" if request.policy == "workshop" else "plain")
    if method == "forecast":
        window = window.latest_state_only()
    if request.policy in RECORDING_POLICIES:  # both read the closed hours the hourly rollup holds
        watermark = rollup_watermark(s3, targets.bucket, window.first_partition, window.rollup_cap)
        if method == "forecast":
            # the latest readings are all the forecast planner needs: whatever the rollup's lag, it reads raw
            # at most the partitions from the rollup's cap on (the last hour), so its bytes stay bounded
            # (ARCHITECTURE.md "Scale"); an older hour the rollup lacks holds no pair's latest reading
            watermark = max(watermark, window.rollup_cap)
        window = window.reading_rollup_until(watermark)
    return window, method, forecast_day


def _check_stores(
    clients: AwsClients, targets: PlanningTargets, window: PlanWindow, params: dict[str, Any]
) -> list[int]:
    """Refuse store ids with no readings in the window (one query, when stores were named); its bytes scanned."""
    if not window.stores:
        return []
    check = run_query(clients, targets.query_target, "stores_in_window", params)
    present = set(check.frame["store_id"])
    unknown = [s for s in window.stores if s not in present]
    if unknown:
        raise ValidationFailed(
            f"unknown store ids (no readings between {params['window_start']} and {params['as_of']}): "
            + ", ".join(unknown[:10]),
            hint="check the ids, or widen lookback_hours",
        )
    return [check.bytes_scanned]


def _order(shortage_chunks: Iterable[pd.DataFrame], request: PlanRequest, sender: _Sender, result: PlanResult) -> None:
    """Count the shortages, keep a sample, and send (unless a dry run) up to ``max_requests`` of them."""
    samples: list[pd.DataFrame] = []
    kinds: dict[str, int] = {}
    stores: set[str] = set()
    budget = request.max_requests
    for shortages in shortage_chunks:
        if shortages.empty:
            continue
        result.shortage_count += len(shortages)
        for kind, count in shortages["kind"].value_counts().items():
            kinds[str(kind)] = kinds.get(str(kind), 0) + int(count)
        kept = sum(len(f) for f in samples)
        if kept < SAMPLE_ROWS:
            samples.append(shortages.head(SAMPLE_ROWS - kept))
        to_send = shortages if budget is None else shortages.head(budget)
        if budget is not None:
            budget -= len(to_send)
        result.deferred += len(shortages) - len(to_send)
        stores.update(to_send["store_id"].unique())
        if not request.dry_run and not to_send.empty:
            sender.send(to_send)
    result.shortages = pd.concat(samples, ignore_index=True) if samples else result.shortages
    result.by_kind = dict(sorted(kinds.items()))
    result.stores_ordered = len(stores)
    result.requests_sent, result.requests_failed, result.sqs_messages = sender.sent, sender.failed, sender.messages
    result.ledger_keys = sender.ledger_keys
    result.ledger_key = sender.ledger_keys[0] if sender.ledger_keys else None


def _log_plan(result: PlanResult, sender: _Sender, targets: PlanningTargets, query_seconds: float) -> None:
    logger.info(
        "plan %s (%s%s): %d shortages in [%s, %s] (rollup before %s), query %.2f s, %d %s; recorded %d in %d "
        "ledger objects, sent %d in %d messages, failed %d, deferred %d by max_requests; peak RSS %.0f MB",
        result.plan_id,
        result.method,
        f" of {result.forecast_day}" if result.forecast_day else "",
        result.shortage_count,
        result.window_start,
        result.as_of,
        result.rollup_until,
        query_seconds,
        result.bytes_scanned,
        SCANNED_BYTES_LABELS[targets.scanned_bytes_source],
        sender.recorded,
        len(sender.ledger_keys),
        result.requests_sent,
        result.sqs_messages,
        result.requests_failed,
        result.deferred,
        peak_rss_mb(),
    )


class _Sender:
    """Records a chunk's requests in the ledger (its own object), then sends them as orders; counts."""

    def __init__(
        self,
        clients: AwsClients,
        targets: PlanningTargets,
        request: PlanRequest,
        planned_at: datetime,
        plan_id: str,
        batcher: SqsBatcher | None,
    ) -> None:
        self.s3 = clients.client("s3")
        self.targets = targets
        self.recording = request.policy in RECORDING_POLICIES
        self.planned_at = planned_at  # the plan's own time (now, or a scenario's virtual now)
        self.plan_id = plan_id
        self.batcher = batcher or SqsBatcher(clients.client("sqs"), max_workers=SEND_THREADS)
        self.open_until = format_timestamp(planned_at + timedelta(hours=targets.request_ttl_hours))
        self.sent = self.failed = self.messages = self.recorded = 0
        self.ledger_keys: list[str] = []
        self.first_error = ""

    def send(self, shortages: pd.DataFrame) -> None:
        messages = to_requests(shortages, self.plan_id, self.planned_at)
        if self.recording:
            # Record the requests before sending: a crash after this never leads to asking twice.
            rows = [
                LedgerRow(
                    record_type="request",
                    shortage_id=m.shortage_id,
                    store_id=m.store_id,
                    product_id=m.product_id,
                    quantity=m.quantity,
                    recorded_at=format_timestamp(self.planned_at),
                    open_until=self.open_until,
                )
                for m in messages
            ]
            part = self.plan_id if not self.ledger_keys else f"{self.plan_id}-{len(self.ledger_keys):05d}"
            key = requests_key(self.planned_at, part)
            self.ledger_keys.append(write_rows(self.s3, self.targets.bucket, key, rows))
            self.recorded += len(rows)
        orders = pack_orders((m.store_id, m.model_dump_json()) for m in messages)
        outcome = self.batcher.send(self.targets.queue_url, [Outgoing(body) for body, _ in orders])
        carried = [count for _, count in orders]
        self.messages += len(outcome.succeeded)
        self.sent += sum(carried[position] for position in outcome.succeeded)
        self.failed += sum(carried[position] for position in outcome.failed)
        if outcome.failed and not self.first_error:
            self.first_error = str(next(iter(outcome.failed.values())))


def _replenishment_chunks(
    chunks: Iterator[pd.DataFrame], forecast_day: date, now: datetime, review_hours: float, costs: Costs
) -> Iterator[pd.DataFrame]:
    """The policy's orders, as shortage rows, chunk by chunk; a store is never split between two chunks
    (its extra delivery is decided over all its products), so a chunk's last store waits for the next."""
    carry: pd.DataFrame | None = None
    for chunk in chunks:
        if chunk.empty:
            continue
        frame = chunk if carry is None else pd.concat([carry, chunk], ignore_index=True)
        last = frame["store_id"].iloc[-1]
        whole = frame["store_id"] != last
        carry = frame[~whole]
        if whole.any():
            yield replenishment_orders(frame[whole], forecast_day, now, review_hours, costs)
    if carry is not None and not carry.empty:
        yield replenishment_orders(carry, forecast_day, now, review_hours, costs)


def replenishment_orders(
    rows: pd.DataFrame, forecast_day: date, now: datetime, review_hours: float, costs: Costs
) -> pd.DataFrame:
    """``sql/replenishment.sql``'s rows of whole stores -> the policy's orders as shortage rows (SHORTAGE_COLUMNS)."""
    on_hand = rows["on_hand"].to_numpy(dtype=np.int64)
    pairs = Pairs(
        store=rows["store_id"].to_numpy(),
        on_hand=on_hand,
        case_pack=np.maximum(rows["case_pack"].to_numpy(dtype=np.int64), 1),
        capacity=rows["shelf_capacity"].to_numpy(dtype=np.int64),
        shelf_life_days=rows["shelf_life_days"].to_numpy(dtype=np.int64),
        margin=np.maximum(rows["regular_price"].to_numpy(dtype=float) - rows["unit_cost"].to_numpy(dtype=float), 0.0),
        unit_cost=rows["unit_cost"].to_numpy(dtype=float),
        lead_time_hours=rows["lead_time_hours"].to_numpy(dtype=float),
        blocked=(_truthy(rows["has_open_request"]) | _truthy(rows["delivery_pending"])),
    )
    first_day = datetime(forecast_day.year, forecast_day.month, forecast_day.day, tzinfo=UTC)
    forecast = Forecast(
        first_day=first_day,
        daily_mean=rows[[f"mean_d{d}" for d in range(HORIZON_DAYS)]].to_numpy(dtype=float),
        dispersion=rows["dispersion"].to_numpy(dtype=float),
        hour_share=rows[[f"share_h{h:02d}" for h in range(24)]].to_numpy(dtype=float),
    )
    orders = decide(pairs, forecast, now, review_hours, costs)
    chosen = orders.quantity > 0
    out = rows.loc[chosen].copy()
    quantity = orders.quantity[chosen]
    out["quantity"] = quantity
    out["reorder_point"] = orders.reorder_point[chosen].astype(np.int64)
    out["target_stock"] = orders.target[chosen].astype(np.int64)
    out["kind"] = np.where(on_hand[chosen] == 0, "out_of_stock", "below_reorder_point")
    out["priority"] = np.where(on_hand[chosen] == 0, 1, 2)
    rate = out["sales_per_hour"].astype(float)
    out["hours_of_cover"] = np.where(rate > 0, out["on_hand"] / rate.where(rate > 0, 1.0), np.nan)
    return normalise(out)


def _truthy(column: pd.Series) -> np.ndarray:
    """A boolean column as the engine returned it (bool, or 'true'/'false' text from a CSV result)."""
    if column.dtype == bool:
        return column.to_numpy()
    return column.astype(str).str.lower().isin(("true", "1")).to_numpy()
