"""The dispatch worker: one window at a time, exactly one dispatch per shortage.

A window: receive (long polling, batches of 10) up to a number of messages or seconds;
validate (invalid messages go to the dead-letter queue with their reason); replace worn
messages by fresh copies; claim the new shortages atomically; settle the shortages someone
else claimed (duplicates, held by a live window, or abandoned: then fence the old window's
record and take over); route the won shortages into truck loads (``storeops.dispatch.loading``);
create the window's ledger record once; mark the claims dispatched; only then delete the messages;
release what no truck took and send it back for a later window (at most ``MAX_GENERATIONS`` times).

The argument that this dispatches every shortage exactly once, at the stack's settings, is
in ARCHITECTURE.md ("Exactly once per shortage"); ``storeops.dispatch.config`` checks the
timing relation it needs between visibility, lease, window and ``maxReceiveCount``. Plain code over injected
clients and clocks: the ``trucks`` flow loops over it; the property tests drive it on fakes.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from storeops.clock import format_timestamp
from storeops.contracts.dispatch_order import order_body
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.directory import StoreLocation, load_case_litres, load_store_directory
from storeops.dispatch.claims import Claim, ClaimStore, Window
from storeops.dispatch.config import MAX_DELAY_SECONDS, WorkerConfig
from storeops.dispatch.loading import NEVER_SERVABLE, Loader, RoutedTruck, WindowRoutes, plan_figures, route_window
from storeops.dispatch.messages import GENERATION_ATTRIBUTE, UNKNOWN_STORE, Received, parse_request, split_message
from storeops.exceptions import StoreOpsError
from storeops.ledger import (
    LedgerRow,
    Recorded,
    create_record,
    fence_record,
    routing_summary_key,
    window_record_key,
)
from storeops.sqs import Outgoing, SqsBatcher

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

MAX_GENERATIONS = 4  # fresh copies of one request before it is dead-lettered as unprocessable
UNRESOLVED_RETRY_SECONDS = 10  # contended or unread claims: look again soon


class Settled(enum.Enum):
    """How a shortage whose claim already exists is settled in this window."""

    DUPLICATE = "its record exists: the message is a duplicate"
    HELD = "a live window holds it: retry when that lease ends"
    WON = "this window owns it now (taken over, or our own earlier attempt)"


@dataclass(frozen=True)
class LoadSummary:
    load_id: str
    truck_id: str
    region: str
    stops: int
    units: int
    cages: int
    shortages: int
    distance_km: float
    route_hours: float
    route: str


@dataclass
class DispatchCounts:
    """What happened to messages and shortages; a window's report and a run's totals both count these."""

    requests: int = 0  # dispatch requests received (an order message carries many)
    dispatched: int = 0
    duplicates_skipped: int = 0
    dead_lettered: int = 0
    held_elsewhere: int = 0
    unresolved: int = 0  # contended or unread claims, retried soon
    taken_over: int = 0
    repaired: int = 0
    recycled: int = 0
    fenced_windows: int = 0
    delete_failures: int = 0
    visibility_failures: int = 0
    mark_failures: int = 0
    release_failures: int = 0
    lower_bound_trucks: int = 0  # per depot: ceil(cages / a truck's cages)
    units: int = 0
    cages: int = 0
    carried: int = 0  # shortages no truck could take in their window: sent back for a later one
    unservable: int = 0  # shortages no window can serve, or carried too often (dead-lettered with the reason)
    baseline_trucks: int = 0  # first-fit decreasing + nearest neighbour on the same deliveries
    baseline_km: float = 0.0
    km: float = 0.0
    routing_seconds: float = 0.0

    def add_counts(self, other: DispatchCounts) -> None:
        for counter in fields(DispatchCounts):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass
class WindowReport(DispatchCounts):
    """What one window did; every received request is in exactly one outcome."""

    window_id: str = ""
    received: int = 0  # SQS messages
    loads: list[LoadSummary] = field(default_factory=list)
    oldest_age_s: float = 0.0
    dead_letter_reasons: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def trucks(self) -> int:
        return len(self.loads)


@dataclass
class _Plan:
    """A window's decisions about its requests, carried out at its end.

    The unit is a request (an order's requests are items of their own); an SQS message is deleted
    once every request it carried is settled: recorded, a duplicate, dead-lettered, or sent again.
    """

    delete: list[Received] = field(default_factory=list)
    retry_at: dict[str, tuple[Received, float]] = field(default_factory=dict)  # request id -> (request, when)
    handled: set[str] = field(default_factory=set)  # dead-lettered or replaced already: nothing left to do
    messages: dict[str, Received] = field(default_factory=dict)  # SQS message id -> the message
    unsettled: dict[str, set[str]] = field(default_factory=dict)  # SQS message id -> its requests not yet settled

    @classmethod
    def for_messages(cls, messages: list[Received]) -> tuple[_Plan, list[Received]]:
        """A plan for these SQS messages, and their requests."""
        plan = cls()
        items: list[Received] = []
        for message in messages:
            requests = split_message(message)
            plan.messages[message.message_id] = message
            plan.unsettled[message.message_id] = {r.message_id for r in requests}
            items += requests
        return plan, items

    def settle(self, requests: list[Received]) -> list[Received]:
        """Mark requests settled; returns the SQS messages that have nothing left unsettled (to delete)."""
        done = []
        for request in requests:
            unsettled = self.unsettled.get(request.sqs_message_id)
            if unsettled is None:
                continue
            unsettled.discard(request.message_id)
            if not unsettled:
                done.append(self.messages[request.sqs_message_id])
                del self.unsettled[request.sqs_message_id]
        return done


class DispatchWorker:
    """Processes the dispatch queue window by window; safe to run several at once, and to kill."""

    def __init__(
        self,
        sqs: SQSClient,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        config: WorkerConfig,
        *,
        clock: Callable[[], float] = time.time,
        business_clock: Callable[[], datetime] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        batcher: SqsBatcher | None = None,
        claims: ClaimStore | None = None,
    ) -> None:
        """``clock`` times leases and visibility (real time); ``business_clock`` is when trucks
        depart (the wall clock, or a scenario's virtual time)."""
        self.sqs = sqs
        self.s3 = s3
        self.config = config
        self.clock = clock
        self.business_clock = business_clock or (lambda: datetime.fromtimestamp(self.clock(), UTC))
        self.should_stop = should_stop
        self.batcher = batcher or SqsBatcher(sqs, max_workers=config.io_threads)
        self.claims = claims or ClaimStore(
            dynamodb, config.claims_table, config.lease_seconds, clock, threads=config.io_threads
        )
        self.stores: dict[str, StoreLocation] = {}
        self.case_litres: dict[str, float] | None = None  # the product master's, read once
        self.windows = 0
        self._oldest_sent: float | None = None  # SentTimestamp of the oldest message held

    # -- receiving --------------------------------------------------------------------------
    def gather(self, until_empty: bool = False) -> list[Received]:
        """Receive up to ``window_messages`` or for ``window_seconds``; extend visibility if long."""
        held: dict[str, Received] = {}
        requests = 0  # estimated from the bodies: a window's work is its requests, not its messages
        started = last_extended = self.clock()
        while (
            len(held) < self.config.window_messages
            and requests < self.config.window_requests
            and not self.should_stop()
        ):
            remaining = self.config.window_seconds - (self.clock() - started)
            if remaining <= 0:
                break
            # draining: no long poll (the loop checks the whole queue before it waits)
            wait = 0 if until_empty else min(self.config.wait_seconds, max(1, math.ceil(remaining)))
            try:
                response = self.sqs.receive_message(
                    QueueUrl=self.config.queue_url,
                    MaxNumberOfMessages=self._receive_size(len(held), requests),
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=self.config.visibility_seconds,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                    MessageAttributeNames=[GENERATION_ATTRIBUTE],
                )
            except (ClientError, BotoCoreError):
                if not held:
                    raise
                break  # process what is held; the error shows again on the next receive
            messages = response.get("Messages", [])
            for message in messages:
                received = Received.from_sqs(message)
                if received.message_id not in held:
                    requests += max(1, received.body.count('"shortage_id"'))
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

    def _receive_size(self, held: int, requests: int) -> int:
        """How many messages the next receive may return: the window's message budget, and its request
        budget at the requests per message seen so far (orders carry hundreds; the first receive takes
        one message to see)."""
        if not held:
            return 1
        room = max(1, math.floor((self.config.window_requests - requests) * held / max(1, requests)))
        return max(1, min(10, self.config.window_messages - held, room))

    def extend(self, messages: list[Received]) -> None:
        """Keep held messages invisible while a long window gathers."""
        handles = [m.receipt_handle for m in messages]
        self.batcher.change_visibility(self.config.queue_url, handles, self.config.visibility_seconds)

    def release(self, messages: list[Received]) -> int:
        """Make messages visible again at once (on shutdown before processing)."""
        if not messages:
            return 0
        outcome = self.batcher.change_visibility(self.config.queue_url, [m.receipt_handle for m in messages], 0)
        return len(outcome.succeeded)

    # -- processing -------------------------------------------------------------------------
    def process(self, messages: list[Received]) -> WindowReport:
        """Dispatch a window's messages; delete only what is durably recorded (or dead-lettered).

        On an AWS error the window is abandoned (its record fenced, its claims released or left
        to expire, its messages set to come back when they can be settled) and the error raised.
        """
        started = time.perf_counter()
        now = self.clock()
        departure = self.business_clock()
        self.windows += 1
        window_id = f"{departure:%Y%m%dT%H%M%S}-{self.config.worker_id}-{self.windows:06d}"
        window = Window(window_id, self.config.worker_id, window_record_key(departure, window_id))
        report = WindowReport(window_id=window_id, received=len(messages))
        if self._oldest_sent is not None:
            report.oldest_age_s = round(max(0.0, now - self._oldest_sent), 1)
        self._oldest_sent = None
        if not messages:
            return report
        plan, requests = _Plan.for_messages(messages)
        report.requests = len(requests)
        won: set[str] = set()
        try:
            valid, invalid = self._validate(requests)
            self._dead_letter(invalid, plan, report)
            valid = self._recycle_worn(valid, plan, report)
            won = self._claim_and_settle(valid, window, now, plan, report)
            if won:
                self._dispatch(valid, won, window, departure, plan, report)
                won = set()  # recorded (or fenced): nothing left to abandon
        except (ClientError, BotoCoreError, StoreOpsError):
            self._abandon(window, won, requests, plan, report)
            raise
        self._finish(plan, report)
        report.seconds = time.perf_counter() - started
        return report

    def _validate(
        self, messages: list[Received]
    ) -> tuple[dict[str, list[tuple[Received, DispatchRequest]]], list[tuple[Received, str]]]:
        """Valid requests by shortage id (duplicates together), and invalid messages with their reason."""
        if not self.stores:
            self.stores = load_store_directory(self.s3, self.config.bucket)
        if self.case_litres is None:
            self.case_litres = load_case_litres(self.s3, self.config.bucket)
        loader = self.loader
        parsed = [(m, *parse_request(m.body, self.stores, loader)) for m in messages]
        if any(reason.startswith(UNKNOWN_STORE) for _, _, reason in parsed):
            # the stores may have published new stores since the directory was read: reread once
            self.stores = load_store_directory(self.s3, self.config.bucket)
            parsed = [
                (m, *parse_request(m.body, self.stores, loader))
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

    def _recycle_worn(
        self, valid: dict[str, list[tuple[Received, DispatchRequest]]], plan: _Plan, report: WindowReport
    ) -> dict[str, list[tuple[Received, DispatchRequest]]]:
        """Replace each valid message received ``recycle_at`` times by a fresh copy, so that crashes and
        outages never push a valid message to SQS's redrive; one worn too often is dead-lettered."""
        worn = [m for pairs in valid.values() for m, _ in pairs if m.receive_count >= self.config.recycle_at]
        if not worn:
            return valid
        spent = [m for m in worn if m.generation >= MAX_GENERATIONS]
        self._dead_letter(
            [
                (m, f"not completed after about {self.config.recycle_at * (m.generation + 1)} receives: see the logs")
                for m in spent
            ],
            plan,
            report,
        )
        fresh = [m for m in worn if m.generation < MAX_GENERATIONS]
        if fresh:
            copied = self._send_copies(fresh, generation_step=1)
            report.delete_failures += self._settle_requests(plan, copied)
            plan.handled.update(m.message_id for m in copied)
            report.recycled += len(copied)
            if copied:
                logger.info("replaced %d worn messages by fresh copies", len(copied))
        gone = {m.message_id for m in worn}  # copied, dead-lettered, or left to come back
        return {
            shortage_id: kept
            for shortage_id, pairs in valid.items()
            if (kept := [(m, r) for m, r in pairs if m.message_id not in gone])
        }

    def _claim_and_settle(
        self,
        valid: dict[str, list[tuple[Received, DispatchRequest]]],
        window: Window,
        now: float,
        plan: _Plan,
        report: WindowReport,
    ) -> set[str]:
        """Claim the window's shortages; settle those someone else claimed. Returns the ones this window owns."""
        if not valid:
            return set()
        outcome = self.claims.claim(list(valid), window)
        won = set(outcome.won)
        fences: dict[str, list[LedgerRow] | None] = {}  # one fence per old window record
        for shortage_id, claim in outcome.existing.items():
            copies = [m for m, _ in valid[shortage_id]]
            try:
                settled, retry_at = self._settle(claim, window, now, fences, report)
            except (ClientError, BotoCoreError, StoreOpsError) as exc:
                logger.warning("settling shortage %s failed: %s; retried later", shortage_id, exc)
                outcome.unresolved.add(shortage_id)
                continue
            if settled is Settled.WON:
                won.add(shortage_id)
            elif settled is Settled.DUPLICATE:
                plan.delete += copies
                report.duplicates_skipped += len(copies)
            else:
                for message in copies:
                    plan.retry_at[message.message_id] = (message, retry_at)
                report.held_elsewhere += len(copies)
        for shortage_id in outcome.unresolved:
            for message, _ in valid[shortage_id]:
                plan.retry_at[message.message_id] = (message, now + UNRESOLVED_RETRY_SECONDS)
                report.unresolved += 1
        return won

    def _settle(
        self,
        claim: Claim,
        window: Window,
        now: float,
        fences: dict[str, list[LedgerRow] | None],
        report: WindowReport,
    ) -> tuple[Settled, float]:
        """Settle a shortage whose claim exists; for HELD, also when to look again."""
        if claim.state == "dispatched":
            return Settled.DUPLICATE, now
        if claim.lease_expires > now:
            return Settled.HELD, claim.lease_expires + self.config.retry_margin_seconds
        # Expired: the old window may be dead or just slow. Make its record final first.
        if claim.record_key not in fences:
            fences[claim.record_key] = fence_record(self.s3, self.config.bucket, claim.record_key, window.window_id)
        recorded = fences[claim.record_key]
        if recorded is not None and any(row.shortage_id == claim.shortage_id for row in recorded):
            self.claims.repair_dispatched(claim)  # its window recorded it, then died before marking
            report.repaired += 1
            return Settled.DUPLICATE, now
        current = self.claims.take_over(claim, window)
        if current is None:
            report.taken_over += 1
            return Settled.WON, now
        if current.state == "dispatched":
            return Settled.DUPLICATE, now
        return Settled.HELD, max(current.lease_expires, now) + self.config.retry_margin_seconds

    @property
    def loader(self) -> Loader:
        return Loader(self.config.fleet, self.case_litres or {})

    def _dispatch(
        self,
        valid: dict[str, list[tuple[Received, DispatchRequest]]],
        won: set[str],
        window: Window,
        departure: datetime,
        plan: _Plan,
        report: WindowReport,
    ) -> None:
        """Route the won shortages, create the window's record, mark the claims; plan the deletes. What no
        truck can take is released and sent back for a later window (or dead-lettered if none ever can)."""
        requests = [valid[s][0][1] for s in valid if s in won]
        routes = route_window(
            requests,
            self.stores,
            self.loader,
            self.config.costs,
            departure,
            self.config.routing,
            self.config.routing_seconds,
        )
        left = {r.shortage_id: u.reason for u in routes.unserved for r in u.delivery.requests}
        rows = _ledger_rows(routes, window.window_id, departure)
        if rows:
            recorded = create_record(self.s3, self.config.bucket, window.record_key, rows)
            if recorded is Recorded.FENCED:
                # Another window took these claims over after our lease ran out: it dispatches them.
                report.fenced_windows += 1
                logger.warning(
                    "window %s was fenced before it recorded: its %d shortages go to others", window, len(won)
                )
                for shortage_id in won:
                    for message, _ in valid[shortage_id]:
                        plan.retry_at[message.message_id] = (message, self.clock())
                return
        served = sorted(won - set(left))
        report.mark_failures += self.claims.mark_dispatched(served, window)
        if left:
            self._leave_for_later(left, valid, window, plan, report)
        if rows:
            self._write_routing_summary(routes, window, departure)
        report.loads = [_summary(truck, window.window_id, n) for n, truck in enumerate(routes.trucks, start=1)]
        report.lower_bound_trucks = sum(
            math.ceil(sum(r.cages for r in p.routes) / p.capacity_cages) for p in routes.plans.values()
        )
        report.units = sum(t.route.units for t in routes.trucks)
        report.cages = sum(t.route.cages for t in routes.trucks)
        report.km = sum(t.route.km for t in routes.trucks)
        report.baseline_trucks = sum(len(p.routes) for p in routes.baselines.values())
        report.baseline_km = sum(r.km for p in routes.baselines.values() for r in p.routes)
        report.routing_seconds = routes.seconds
        for shortage_id in served:
            pairs = valid[shortage_id]
            plan.delete += [message for message, _ in pairs]
            report.dispatched += 1
            report.duplicates_skipped += len(pairs) - 1  # in-window duplicates of a dispatched request

    def _write_routing_summary(self, routes: WindowRoutes, window: Window, departure: datetime) -> None:
        """Each depot's plan and the baseline's on the same deliveries, beside the ledger (for the fleet
        figures). A report, not a record: a failure is logged, never fatal."""
        summary = {
            "window_id": window.window_id,
            "departure": format_timestamp(departure),
            "routing": self.config.routing,
            "seconds": round(routes.seconds, 3),
            "depots": {
                depot: {**plan_figures(plan), "baseline": plan_figures(routes.baselines[depot])}
                for depot, plan in sorted(routes.plans.items())
            },
        }
        try:
            self.s3.put_object(
                Bucket=self.config.bucket,
                Key=routing_summary_key(departure, window.window_id),
                Body=json.dumps(summary).encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("window %s: its routing summary was not written: %s", window, exc)

    def _leave_for_later(
        self,
        left: dict[str, Any],
        valid: dict[str, list[tuple[Received, DispatchRequest]]],
        window: Window,
        plan: _Plan,
        report: WindowReport,
    ) -> None:
        """Release the claims of what no truck took; carry it to a later window, or dead-letter it when no
        window can ever serve it. A claim that cannot be released expires, and its messages come back."""
        report.release_failures += self.claims.release(sorted(left), window)
        unservable: list[tuple[Received, str]] = []
        carried: list[Received] = []
        for shortage_id, reason in sorted(left.items()):
            messages = [message for message, _ in valid[shortage_id]]
            store = valid[shortage_id][0][1].store_id
            if reason in NEVER_SERVABLE:
                why = (
                    f"store {store}: no route within the drivers' hours reaches it, even for one cage ({reason}): "
                    "check its depot and location"
                )
            elif any(m.generation >= MAX_GENERATIONS for m in messages):
                why = (
                    f"store {store}: no truck took it in {MAX_GENERATIONS + 1} windows {MAX_DELAY_SECONDS // 60} min "
                    f"apart ({reason}): add trucks at its depot, then replay the dead letters"
                )
            else:
                carried += messages
                report.carried += 1
                continue
            unservable += [(message, why) for message in messages]
            report.unservable += 1
        if carried:
            # fresh copies, due when the next windows run; a copy that cannot be sent keeps its original,
            # which comes back after the visibility timeout (its claim is released: it is claimed again)
            copies = self._send_copies(
                carried, generation_step=1, delays={m.message_id: MAX_DELAY_SECONDS for m in carried}
            )
            report.delete_failures += self._settle_requests(plan, copies)
            plan.handled.update(m.message_id for m in copies)
            logger.warning(
                "%d shortages carried to a later window: no truck could take them in this one", report.carried
            )
        self._dead_letter(unservable, plan, report)

    def _abandon(
        self, window: Window, won: set[str], messages: list[Received], plan: _Plan, report: WindowReport
    ) -> None:
        """After an AWS error: make sure this window never records, and send its messages back in time."""
        back_at = self.clock() + UNRESOLVED_RETRY_SECONDS
        if won:
            try:
                recorded = fence_record(self.s3, self.config.bucket, window.record_key, window.window_id)
            except (ClientError, BotoCoreError, StoreOpsError):
                wait = self.config.lease_seconds + self.config.retry_margin_seconds
                back_at = self.clock() + wait
                logger.warning("window %s could not fence its record: its claims expire in %d s", window, wait)
            else:
                if recorded is None:  # fenced: nothing of ours will ever be recorded; give the claims back
                    report.release_failures += self.claims.release(won, window)
                else:  # the record made it before the error: only marking and deleting were lost
                    back_at = self.clock()
        for message in messages:
            if message.message_id not in plan.retry_at and message.message_id not in plan.handled:
                plan.retry_at[message.message_id] = (message, back_at)
        try:
            self._finish(plan, report)
        except (ClientError, BotoCoreError):
            logger.warning(
                "window %s could not set its messages to come back; they return after the visibility timeout", window
            )

    def _finish(self, plan: _Plan, report: WindowReport) -> None:
        """Settle what is done (deleting the messages that carried only that); send the rest back to come
        again when it can be settled."""
        deleting = {m.message_id for m in plan.delete}
        report.delete_failures += self._settle_requests(plan, plan.delete)
        now = self.clock()
        later = [
            (message, min(MAX_DELAY_SECONDS, max(0, math.ceil(when - now))))
            for message_id, (message, when) in plan.retry_at.items()
            if message_id not in deleting
        ]
        self._defer(plan, later, report)

    def _defer(self, plan: _Plan, later: list[tuple[Received, int]], report: WindowReport) -> None:
        """Send each request back as a copy delayed until it can be settled; delete the original message
        once nothing it carried is left.

        A decision to retry later therefore never adds to a message's receive count: only receives
        that end without any decision (a killed or stalled window, a lost answer) count toward
        recycling and SQS's redrive. The requests of one message go back together, as one message
        due at the earliest of their times. A copy that cannot be sent keeps its original, made
        visible again at that time instead (what it carried that is settled comes back as duplicates).
        """
        if not later:
            return
        resent = self._send_copies([m for m, _ in later], delays={m.message_id: d for m, d in later})
        report.delete_failures += self._settle_requests(plan, resent)
        resent_ids = {m.message_id for m in resent}
        due: dict[str, int] = {}  # SQS message id -> its earliest delay
        for message, delay in later:
            if message.message_id not in resent_ids and message.sqs_message_id in plan.unsettled:
                due[message.sqs_message_id] = min(delay, due.get(message.sqs_message_id, delay))
        by_delay: dict[int, list[Received]] = {}
        for message_id, delay in due.items():
            by_delay.setdefault(delay, []).append(plan.messages[message_id])
        for delay, messages in sorted(by_delay.items()):
            handles = [m.receipt_handle for m in messages]
            report.visibility_failures += len(
                self.batcher.change_visibility(self.config.queue_url, handles, delay).failed
            )

    # -- internals --------------------------------------------------------------------------
    def _dead_letter(self, invalid: list[tuple[Received, str]], plan: _Plan, report: WindowReport) -> None:
        if not invalid:
            return
        letters = [
            Outgoing(
                m.body,
                attributes={
                    "failure_reason": reason,
                    "source_message_id": m.message_id,
                    "failed_at": format_timestamp(datetime.now(UTC)),
                },
            )
            for m, reason in invalid
        ]
        outcome = self.batcher.send(self.config.dead_letter_queue_url, letters)
        moved = [invalid[position][0] for position in outcome.succeeded]
        for position in outcome.succeeded:
            message, reason = invalid[position]
            report.dead_letter_reasons[message.message_id] = reason
            logger.warning("dead-lettered message %s: %s", message.message_id, reason)
        report.dead_lettered += len(moved)
        report.delete_failures += self._settle_requests(plan, moved)  # left in place if the DLQ send failed
        plan.handled.update(m.message_id for m in moved)

    def _send_copies(
        self, requests: list[Received], generation_step: int = 0, delays: dict[str, int] | None = None
    ) -> list[Received]:
        """Send requests to the queue again, one message for the requests of each message they came in
        (an order of them, or the request alone); returns the requests whose copy was sent."""
        groups: dict[str, list[Received]] = {}
        for request in requests:
            groups.setdefault(request.sqs_message_id, []).append(request)
        members = list(groups.values())
        copies = [
            Outgoing(
                order_body([r.body for r in group]),
                attributes={GENERATION_ATTRIBUTE: str(group[0].generation + generation_step)},
                delay=min(delays[r.message_id] for r in group) if delays else 0,
            )
            for group in members
        ]
        outcome = self.batcher.send(self.config.queue_url, copies)
        return [request for position in outcome.succeeded for request in members[position]]

    def _settle_requests(self, plan: _Plan, requests: list[Received]) -> int:
        """These requests are done with; delete the messages left with nothing unsettled. Returns failures."""
        return self._delete(plan.settle(requests))

    def _delete(self, messages: list[Received]) -> int:
        if not messages:
            return 0
        outcome = self.batcher.delete(self.config.queue_url, [m.receipt_handle for m in messages])
        return len(outcome.failed)

    def queue_depth(self) -> int:
        """Messages waiting to be received."""
        return self._queue_counts()[0]

    def queue_is_empty(self) -> bool:
        """Nothing waiting, in flight (held by a worker or coming back later) or delayed."""
        return sum(self._queue_counts()) == 0

    def _queue_counts(self) -> tuple[int, int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.config.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", "0")),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
            int(attributes.get("ApproximateNumberOfMessagesDelayed", "0")),
        )


def _load_id(window_id: str, number: int) -> str:
    return f"load-{window_id}-{number:03d}"


def _ledger_rows(routes: WindowRoutes, window_id: str, departure: datetime) -> list[LedgerRow]:
    """A dispatch row per request on a truck, with its truck's and stop's figures."""
    return [
        LedgerRow(
            record_type="dispatch",
            shortage_id=r.shortage_id,
            store_id=r.store_id,
            product_id=r.product_id,
            quantity=r.quantity,
            recorded_at=format_timestamp(departure),
            load_id=_load_id(window_id, number),
            truck_id=f"{truck.region[:3].upper()}-{number:03d}",
            stop_number=n,
            eta=format_timestamp(stop.visit.unloading_starts),
            depot=truck.region,
            cages=stop.visit.drop.cages,
            window_opens=format_timestamp(stop.delivery.stop.window_opens),
            window_closes=format_timestamp(stop.delivery.stop.window_closes),
            departs=format_timestamp(truck.route.departs),
            returns=format_timestamp(truck.route.returns),
            route_km=round(truck.route.km, 3),
        )
        for number, truck in enumerate(routes.trucks, start=1)
        for n, stop in enumerate(truck.stops, start=1)
        for r in stop.delivery.requests
    ]


def _summary(truck: RoutedTruck, window_id: str, number: int) -> LoadSummary:
    return LoadSummary(
        load_id=_load_id(window_id, number),
        truck_id=f"{truck.region[:3].upper()}-{number:03d}",
        region=truck.region,
        stops=len(truck.stops),
        units=truck.route.units,
        cages=truck.route.cages,
        shortages=sum(len(s.delivery.requests) for s in truck.stops),
        distance_km=round(truck.route.km, 1),
        route_hours=round(truck.route.hours, 2),
        route=" > ".join(s.delivery.stop.store_id for s in truck.stops),
    )
