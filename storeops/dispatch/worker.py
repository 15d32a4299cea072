"""The dispatch worker: one window at a time, exactly one dispatch per shortage.

A window: receive (long polling, batches of 10) up to a number of messages or seconds;
validate; send invalid messages to the dead-letter queue with their reason; claim the new
shortages atomically; consolidate them into truck loads; record each load in the ledger;
mark the claims dispatched; only then delete the messages. Redelivered or duplicate messages
find their shortage dispatched (or held by a live claim) and are deleted (or left to retry).
Plain code over injected clients: the ``trucks`` flow loops over it.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from storeops.clock import format_timestamp
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.directory import StoreLocation, load_store_directory
from storeops.dispatch.claims import Claim, ClaimStore
from storeops.dispatch.messages import UNKNOWN_STORE, Received, parse_request
from storeops.dispatch.routing import FleetPolicy, Load, consolidate, lower_bound_trucks
from storeops.exceptions import StoreOpsError
from storeops.ledger import LedgerRow, load_id_prefix, load_key, window_loads_prefix, write_rows
from storeops.sqs import SqsBatcher

logger = logging.getLogger(__name__)
RETRY_LATER_SECONDS = 30  # visibility for a message whose shortage another worker holds


class LostClaim(enum.Enum):
    """How a shortage whose claim another window holds is resolved."""

    DISPATCHED = "its load is recorded: the message is a duplicate"
    HELD_ELSEWHERE = "a live worker holds it: retry later"
    TAKEN_OVER = "its worker died before recording: this window dispatches it"


@dataclass(frozen=True)
class WorkerConfig:
    queue_url: str
    dead_letter_queue_url: str
    bucket: str
    claims_table: str
    window_messages: int = 500
    window_seconds: float = 10.0
    wait_seconds: int = 20
    visibility_seconds: int = 120
    lease_seconds: int = 300
    io_threads: int = 4  # concurrent ledger writes and SQS batch calls
    policy: FleetPolicy = field(default_factory=FleetPolicy)
    worker_id: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:10]}")


@dataclass(frozen=True)
class LoadSummary:
    load_id: str
    truck_id: str
    region: str
    stops: int
    units: int
    shortages: int
    distance_km: float
    route: str


@dataclass
class DispatchCounts:
    """What happened to messages and shortages; a window's report and a run's totals both count these."""

    dispatched: int = 0
    duplicates_skipped: int = 0
    dead_lettered: int = 0
    held_elsewhere: int = 0
    delete_failures: int = 0
    lower_bound_trucks: int = 0
    units: int = 0

    def add_counts(self, other: DispatchCounts) -> None:
        for counter in fields(DispatchCounts):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass
class WindowReport(DispatchCounts):
    """What one window did; every received message is in exactly one outcome."""

    window_id: str = ""
    received: int = 0
    loads: list[LoadSummary] = field(default_factory=list)
    oldest_age_s: float = 0.0
    dead_letter_reasons: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def trucks(self) -> int:
        return len(self.loads)


class DispatchWorker:
    """Processes the dispatch queue window by window; safe to run several at once."""

    def __init__(
        self,
        sqs: Any,
        dynamodb: Any,
        s3: Any,
        config: WorkerConfig,
        *,
        clock: Callable[[], float] = time.time,
        should_stop: Callable[[], bool] = lambda: False,
        batcher: SqsBatcher | None = None,
    ) -> None:
        self.sqs = sqs
        self.s3 = s3
        self.config = config
        self.clock = clock
        self.should_stop = should_stop
        self.batcher = batcher or SqsBatcher(sqs, max_workers=config.io_threads)
        self.claims = ClaimStore(dynamodb, config.claims_table, config.lease_seconds, clock)
        self.stores: dict[str, StoreLocation] = {}
        self.windows = 0
        self._oldest_sent: float | None = None  # SentTimestamp of the oldest message held
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mark-dispatched")
        self._marking: Future[None] | None = None

    def finish_marking(self) -> None:
        """Wait for the previous window's claims to be marked dispatched; a failure is only logged."""
        if self._marking is not None:
            try:
                self._marking.result()
            except Exception as exc:
                logger.warning("marking claims dispatched failed (they will be repaired from the ledger): %s", exc)
            self._marking = None

    def close(self) -> None:
        """Finish background work and stop its thread; the worker is closed when its ``with`` block ends."""
        self.finish_marking()
        self._background.shutdown(wait=True)

    def __enter__(self) -> DispatchWorker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- receiving --------------------------------------------------------------------------
    def gather(self, until_empty: bool = False) -> list[Received]:
        """Receive up to ``window_messages`` or for ``window_seconds``; extend visibility if long."""
        held: dict[str, Received] = {}
        started = last_extended = self.clock()
        while len(held) < self.config.window_messages and not self.should_stop():
            remaining = self.config.window_seconds - (self.clock() - started)
            if remaining <= 0:
                break
            if until_empty:  # draining: a short poll tells an empty queue quickly
                wait = 0 if held else min(2, self.config.wait_seconds)
            else:
                wait = min(self.config.wait_seconds, max(1, int(remaining)))
            response = self.sqs.receive_message(
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=min(10, self.config.window_messages - len(held)),
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.config.visibility_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
            messages = response.get("Messages", [])
            for message in messages:
                received = Received.from_sqs(message)
                held[received.message_id] = received  # a redelivery in the same window replaces the handle
                sent = float(message.get("Attributes", {}).get("SentTimestamp", 0)) / 1000
                if sent:
                    self._oldest_sent = sent if self._oldest_sent is None else min(self._oldest_sent, sent)
            if not messages and (until_empty or held):
                break
            if self.clock() - last_extended > self.config.visibility_seconds / 2 and held:
                self.extend(list(held.values()))
                last_extended = self.clock()
        return list(held.values())

    def extend(self, messages: list[Received]) -> None:
        """Keep held messages invisible while a long window gathers."""
        self.batcher.change_visibility(
            self.config.queue_url,
            [(f"v{i}", m.receipt_handle) for i, m in enumerate(messages)],
            self.config.visibility_seconds,
        )

    def release(self, messages: list[Received]) -> int:
        """Make messages visible again at once (on shutdown or an aborted window)."""
        if not messages:
            return 0
        outcome = self.batcher.change_visibility(
            self.config.queue_url, [(f"r{i}", m.receipt_handle) for i, m in enumerate(messages)], 0
        )
        return len(outcome.succeeded)

    # -- processing -------------------------------------------------------------------------
    def process(self, messages: list[Received]) -> WindowReport:
        """Dispatch a window's messages; deletes only what is durably recorded (or dead-lettered)."""
        started = time.perf_counter()
        now = self.clock()
        self.windows += 1
        window_id = f"{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%S}-{self.config.worker_id}-{self.windows:06d}"
        report = WindowReport(window_id=window_id, received=len(messages))
        if self._oldest_sent is not None:
            report.oldest_age_s = round(max(0.0, now - self._oldest_sent), 1)
        self._oldest_sent = None
        if not messages:
            return report
        valid, invalid = self._validate(messages)
        self._dead_letter(invalid, report)

        ledger_dt = f"{datetime.fromtimestamp(now, UTC):%Y-%m-%d}"
        to_delete: list[Received] = []
        retry_later: list[Received] = []
        # Claim first: new shortages (the common case) cost one transaction per 100.
        candidates = list(valid)
        won, lost = self.claims.claim(candidates, self.config.worker_id, window_id, ledger_dt)
        for shortage_id, claim in self.claims.lookup(lost).items():
            copies = [m for m, _ in valid[shortage_id]]
            outcome = self._resolve_lost_claim(claim, now, window_id, ledger_dt)
            if outcome is LostClaim.TAKEN_OVER:
                won.add(shortage_id)
            elif outcome is LostClaim.DISPATCHED:
                to_delete += copies
                report.duplicates_skipped += len(copies)
            else:
                retry_later += copies
                report.held_elsewhere += len(copies)
        requests = [valid[s][0][1] for s in candidates if s in won]
        if requests:
            try:
                loads = self._record_loads(requests, window_id, now)
            except BaseException:
                self.claims.release(won, self.config.worker_id)
                raise
            report.loads = [_summary(load) for load in loads]
            report.lower_bound_trucks = lower_bound_trucks(requests, self.config.policy)
            report.units = sum(r.quantity for r in requests)
            for shortage_id in won:
                pairs = valid[shortage_id]
                to_delete += [message for message, _ in pairs]
                report.dispatched += 1
                report.duplicates_skipped += len(pairs) - 1  # in-window duplicates of a dispatched request
        report.delete_failures += self._delete(to_delete)  # the ledger holds the loads: safe to delete
        if requests:
            self._mark_in_background(sorted(won), window_id, ledger_dt)
        self._retry_later(retry_later)
        report.seconds = time.perf_counter() - started
        return report

    def _validate(
        self, messages: list[Received]
    ) -> tuple[dict[str, list[tuple[Received, DispatchRequest]]], list[tuple[Received, str]]]:
        """Valid requests by shortage id (duplicates together), and invalid messages with their reason."""
        if not self.stores:
            self.stores = load_store_directory(self.s3, self.config.bucket)
        parsed = [(m, *parse_request(m.body, self.stores, self.config.policy)) for m in messages]
        if any(reason.startswith(UNKNOWN_STORE) for _, _, reason in parsed):
            # the stores may have published new stores since the directory was read: reread once
            self.stores = load_store_directory(self.s3, self.config.bucket)
            parsed = [
                (m, *parse_request(m.body, self.stores, self.config.policy))
                if reason.startswith(UNKNOWN_STORE)
                else (m, request, reason)
                for m, request, reason in parsed
            ]
        valid: dict[str, list[tuple[Received, DispatchRequest]]] = {}
        invalid: list[tuple[Received, str]] = []
        for message, request, reason in parsed:
            if request is None:
                invalid.append((message, reason))
            else:
                valid.setdefault(request.shortage_id, []).append((message, request))
        return valid, invalid

    def _resolve_lost_claim(self, claim: Claim, now: float, window_id: str, ledger_dt: str) -> LostClaim:
        """What to do with a shortage whose claim another window holds."""
        if claim.state == "dispatched":
            return LostClaim.DISPATCHED
        if claim.lease_expires > now:
            return LostClaim.HELD_ELSEWHERE
        if self._recorded_in_ledger(claim.ledger_dt, claim.window_id, claim.shortage_id):
            # its worker died after recording the load: the claim only missed its mark
            self.claims.repair_dispatched(claim.shortage_id, claim.window_id)
            return LostClaim.DISPATCHED
        if self.claims.take_over(claim, self.config.worker_id, window_id, ledger_dt):
            return LostClaim.TAKEN_OVER  # abandoned by a dead worker before it recorded anything
        return LostClaim.HELD_ELSEWHERE  # another worker took it over first

    def _mark_in_background(self, shortage_ids: list[str], window_id: str, ledger_dt: str) -> None:
        """claimed -> dispatched only speeds up duplicate detection (a crash before it is repaired from
        the ledger), so it runs in the background while the next window gathers."""
        self.finish_marking()
        self._marking = self._background.submit(
            self.claims.mark_dispatched, shortage_ids, self.config.worker_id, window_id, ledger_dt
        )

    def _retry_later(self, messages: list[Received]) -> None:
        """Leave messages whose shortage another worker holds invisible for a while."""
        if messages:
            entries = [(f"h{i}", m.receipt_handle) for i, m in enumerate(messages)]
            self.batcher.change_visibility(self.config.queue_url, entries, RETRY_LATER_SECONDS)

    # -- internals --------------------------------------------------------------------------
    def _dead_letter(self, invalid: list[tuple[Received, str]], report: WindowReport) -> None:
        if not invalid:
            return
        entries = [(f"d{i}", m.body) for i, (m, _) in enumerate(invalid)]
        attributes = {
            f"d{i}": {
                "failure_reason": reason,
                "source_message_id": m.message_id,
                "failed_at": format_timestamp(datetime.now(UTC)),
            }
            for i, (m, reason) in enumerate(invalid)
        }
        outcome = self.batcher.send(self.config.dead_letter_queue_url, entries, attributes)
        moved = [invalid[int(i[1:])][0] for i in outcome.succeeded]
        for entry_id in outcome.succeeded:
            message, reason = invalid[int(entry_id[1:])]
            report.dead_letter_reasons[message.message_id] = reason
            logger.warning("dead-lettered message %s: %s", message.message_id, reason)
        report.dead_lettered += len(moved)
        report.delete_failures += self._delete(moved)  # left in place if the DLQ send failed

    def _delete(self, messages: list[Received]) -> int:
        if not messages:
            return 0
        outcome = self.batcher.delete(
            self.config.queue_url, [(f"x{i}", m.receipt_handle) for i, m in enumerate(messages)]
        )
        return len(outcome.failed)

    def _record_loads(self, requests: list[DispatchRequest], window_id: str, now: float) -> list[Load]:
        departure = datetime.fromtimestamp(now, UTC)
        loads = consolidate(requests, self.stores, self.config.policy, departure, load_id_prefix(window_id))
        if self.clock() > now + self.config.lease_seconds * 0.5:
            raise StoreOpsError(
                f"window {window_id} used half its claim lease before recording its loads",
                hint="lower window_messages or raise lease_seconds",
            )

        def record(load: Load) -> None:
            rows = [
                LedgerRow(
                    record_type="dispatch",
                    shortage_id=r.shortage_id,
                    store_id=r.store_id,
                    product_id=r.product_id,
                    quantity=r.quantity,
                    recorded_at=format_timestamp(departure),
                    load_id=load.load_id,
                    truck_id=load.truck_id,
                    stop_number=n,
                    eta=format_timestamp(stop.eta or departure),
                )
                for n, stop in enumerate(load.stops, start=1)
                for r in stop.requests
            ]
            write_rows(self.s3, self.config.bucket, load_key(departure, load.load_id), rows)

        with ThreadPoolExecutor(max_workers=self.config.io_threads) as pool:
            list(pool.map(record, loads))  # re-raises the first failure
        return loads

    def _recorded_in_ledger(self, ledger_dt: str, window_id: str, shortage_id: str) -> bool:
        """Did the window that claimed this shortage record it in a load before it died?"""
        if not ledger_dt or not window_id:
            return False
        prefix = window_loads_prefix(ledger_dt, window_id)
        listing = self.s3.list_objects_v2(Bucket=self.config.bucket, Prefix=prefix)
        for obj in listing.get("Contents", []):
            body = self.s3.get_object(Bucket=self.config.bucket, Key=obj["Key"])["Body"].read()
            if shortage_id.encode() in body:
                return True
        return False

    def queue_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.config.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))


def _summary(load: Load) -> LoadSummary:
    return LoadSummary(
        load_id=load.load_id,
        truck_id=load.truck_id,
        region=load.region,
        stops=len(load.stops),
        units=load.units,
        shortages=len(load.shortage_ids),
        distance_km=round(load.distance_km, 1),
        route=" > ".join(s.store_id for s in load.stops),
    )
