"""Claims on shortages in DynamoDB: each shortage is owned by at most one dispatch window at a time.

A claim item ``{shortage_id, state, window_id, worker, lease_expires, record_key, ttl}`` is
created with a conditional put (``attribute_not_exists``), up to 100 per
``TransactWriteItems``. It moves from one window to another only by ``take_over``, which a
worker may try only after it made the old window's ledger record final (see
``storeops.ledger.fence_record``); ``dispatched`` is final. The protocol and its argument
are in ARCHITECTURE.md ("Exactly once per shortage").

Every call tolerates the ambiguous failure (a write that landed although its answer was
lost and botocore retried it): a claim found holding this window's id is this window's.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from storeops.aws_errors import describe_error, error_code
from storeops.retry import EntryFailure, RetryPolicy, retry_failed_entries

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef, WriteRequestTypeDef

CLAIMED, DISPATCHED = "claimed", "dispatched"
TRANSACTION_LIMIT = 100  # TransactWriteItems: 100 actions per call
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
RETENTION_SECONDS = 60 * 24 * 3600  # DynamoDB TTL: longer than any copy of a message can live (ARCHITECTURE.md)
CLAIM_RETRY = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=2.0)

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Window:
    """The identity a window claims under: its id, its worker, and where it will record."""

    window_id: str
    worker: str
    record_key: str


@dataclass(frozen=True)
class Claim:
    shortage_id: str
    state: str  # claimed | dispatched
    window_id: str
    worker: str
    lease_expires: float
    record_key: str

    def held_by(self, window: Window) -> bool:
        return self.window_id == window.window_id


@dataclass
class ClaimOutcome:
    """What one ``claim`` call did for each id: won, found someone's claim, or could not tell yet."""

    won: set[str] = field(default_factory=set)
    existing: dict[str, Claim] = field(default_factory=dict)
    unresolved: set[str] = field(default_factory=set)  # conflicts or unread claims: try again later


class ClaimStore:
    """Claims in one DynamoDB table; all waits go through ``retry.sleep``, all times through ``clock``.

    ``threads`` > 1 sends a window's claim transactions and its dispatched marks that many calls at a
    time: each call covers its own shortages, so the calls are independent of each other.
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy = CLAIM_RETRY,
        threads: int = 1,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.retry = retry
        self.threads = threads

    def _each(self, call: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
        """``call`` on every chunk, ``threads`` at a time; results in the chunks' order."""
        if self.threads <= 1 or len(chunks) <= 1:
            return [call(chunk) for chunk in chunks]
        with ThreadPoolExecutor(max_workers=min(self.threads, len(chunks))) as pool:
            return list(pool.map(call, chunks))

    # -- reads ------------------------------------------------------------------------------
    def lookup(self, shortage_ids: Iterable[str]) -> tuple[dict[str, Claim], set[str]]:
        """Existing claims (strongly consistent), and the ids DynamoDB left unprocessed."""
        ids = list(dict.fromkeys(shortage_ids))
        found: dict[str, Claim] = {}
        unprocessed: set[str] = set()
        for chunk in _chunks(ids, BATCH_GET_LIMIT):
            outcome = retry_failed_entries(chunk, partial(self._read, found), self.retry, "BatchGetItem")
            unprocessed |= {chunk[position] for position in outcome.failed}
        return found, unprocessed

    def _read(self, found: dict[str, Claim], pending: list[tuple[int, str]]) -> dict[int, EntryFailure]:
        """One BatchGetItem call: the claims it found go into ``found``; its unprocessed keys by position."""
        keys = [{"shortage_id": {"S": shortage_id}} for _, shortage_id in pending]
        response = self.dynamodb.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
        for item in response.get("Responses", {}).get(self.table, []):
            claim = _claim(item)
            found[claim.shortage_id] = claim
        by_id = {shortage_id: position for position, shortage_id in pending}
        left = response.get("UnprocessedKeys", {}).get(self.table)
        unprocessed = left["Keys"] if left else []
        return {by_id[key["shortage_id"]["S"]]: EntryFailure("unprocessed") for key in unprocessed}

    # -- writes -----------------------------------------------------------------------------
    def claim(self, shortage_ids: list[str], window: Window) -> ClaimOutcome:
        """Claim each id that nobody holds. Transactions are all-or-nothing: an id whose condition
        failed is taken out and the rest retried; ids in a ``TransactionConflict`` are retried
        with backoff, then left unresolved."""
        outcome = ClaimOutcome()
        unread: list[str] = []  # condition failed but the old item did not come back with the error
        parts = self._each(partial(self._claim_or_leave, window), _chunks(shortage_ids, TRANSACTION_LIMIT))
        for part, part_unread in parts:
            outcome.won |= part.won
            outcome.existing.update(part.existing)
            outcome.unresolved |= part.unresolved
            unread += part_unread
        if unread:
            try:
                found, unprocessed = self.lookup(unread)
            except (ClientError, BotoCoreError) as exc:
                found, unprocessed = {}, set(unread)
                logger.warning("reading %d claims failed: %s; retried later", len(unread), exc)
            outcome.existing.update(found)
            outcome.unresolved |= unprocessed | {i for i in unread if i not in found}  # released meanwhile
        for shortage_id, claim in list(outcome.existing.items()):
            if claim.held_by(window) and claim.state == CLAIMED:  # an attempt that landed, its answer lost
                outcome.won.add(shortage_id)
                del outcome.existing[shortage_id]
        return outcome

    def _claim_or_leave(self, window: Window, chunk: list[str]) -> tuple[ClaimOutcome, list[str]]:
        """One chunk's claims, and its ids whose condition failed without the old item."""
        outcome = ClaimOutcome()
        unread: list[str] = []
        try:
            self._claim_chunk(chunk, window, outcome, unread)
        except (ClientError, BotoCoreError) as exc:
            # It may have landed: then this window holds claims it does not know of; they expire,
            # and whoever settles them finds them missing from this window's record.
            outcome.unresolved.update(i for i in chunk if i not in outcome.won and i not in outcome.existing)
            logger.warning("claiming %d shortages failed: %s; retried later", len(chunk), exc)
        return outcome, unread

    def _claim_chunk(self, ids: list[str], window: Window, outcome: ClaimOutcome, unread: list[str]) -> None:
        pending = list(ids)
        for attempt in range(1, self.retry.max_attempts + 1):
            now = self.clock()
            actions = [self._new_claim(i, window, now) for i in pending]
            # botocore resends the same token when it retries this call: a landed attempt is not applied twice
            token = hashlib.sha256(f"{window.window_id}|{attempt}|{','.join(pending)}".encode()).hexdigest()[:36]
            try:
                self.dynamodb.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            except ClientError as exc:
                reasons = _cancellation_reasons(exc, len(pending))
                if reasons is None:
                    raise
                codes = [str(r.get("Code") or "None") for r in reasons]
                retry: list[str] = []
                for shortage_id, code, reason in zip(pending, codes, reasons, strict=True):
                    if code != "ConditionalCheckFailed":
                        retry.append(shortage_id)  # "None" (cancelled with the others) or contended
                    elif reason.get("Item"):
                        outcome.existing[shortage_id] = _claim(reason["Item"])
                    else:
                        unread.append(shortage_id)
                pending = retry
                if not pending:
                    return
                if any(code not in {"None", "ConditionalCheckFailed"} for code in codes):
                    self.retry.wait_before_retry(attempt)  # TransactionConflict or throttling: back off
                continue
            outcome.won.update(pending)
            return
        outcome.unresolved.update(pending)
        logger.warning("%d claims still contended after %d attempts: retried later", len(pending), attempt)

    def take_over(self, old: Claim, window: Window) -> Claim | None:
        """Take an expired claim whose window can no longer record (its record is fenced or final).

        The condition names the exact old window, so of several takers exactly one wins.
        Returns None if this window won, else the claim that stands now.
        """
        now = self.clock()
        action = self._new_claim(old.shortage_id, window, now)["Put"]
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=action["Item"],
                ConditionExpression="#state = :claimed AND window_id = :old",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":old": {"S": old.window_id}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            item: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            current = _claim(item) if item else None
            if current is not None and current.held_by(window):
                return None  # our own put landed on an earlier attempt
            if current is None:
                found, _ = self.lookup([old.shortage_id])
                current = found.get(old.shortage_id)
            return current or old
        logger.info("window %s took over shortage %s from window %s", window.window_id, old.shortage_id, old.window_id)
        return None

    def mark_dispatched(self, shortage_ids: list[str], window: Window) -> int:
        """claimed -> dispatched for this window's claims, once its record is durable; returns failures.

        Plain BatchWriteItem puts (25 a call): once the record exists no other window can hold
        these claims (taking over needs a fence first), so no condition is needed.
        """
        write = partial(self._write_dispatched, window, self.clock())
        outcomes = self._each(
            lambda chunk: retry_failed_entries(chunk, write, self.retry, "BatchWriteItem"),
            _chunks(shortage_ids, BATCH_WRITE_LIMIT),
        )
        failed = sum(len(outcome.failed) for outcome in outcomes)
        if failed:
            logger.warning("%d claims of window %s not marked dispatched (repaired from the ledger)", failed, window)
        return failed

    def _write_dispatched(self, window: Window, now: float, pending: list[tuple[int, str]]) -> dict[int, EntryFailure]:
        """One BatchWriteItem call; the shortages it left unprocessed by position (all of them if the call failed)."""
        puts: list[WriteRequestTypeDef] = [
            {
                "PutRequest": {
                    "Item": {
                        "shortage_id": {"S": shortage_id},
                        "state": {"S": DISPATCHED},
                        "window_id": {"S": window.window_id},
                        "worker": {"S": window.worker},
                        "record_key": {"S": window.record_key},
                        "dispatched_at": {"N": f"{now:.3f}"},
                        "lease_expires": {"N": "0"},
                        "ttl": {"N": str(int(now + RETENTION_SECONDS))},
                    }
                }
            }
            for _, shortage_id in pending
        ]
        try:
            response = self.dynamodb.batch_write_item(RequestItems={self.table: puts})
        except (ClientError, BotoCoreError) as exc:
            logger.info("marking claims dispatched failed: %s", describe_error(exc))
            return {position: EntryFailure(describe_error(exc), retryable=False) for position, _ in pending}
        by_id = {shortage_id: position for position, shortage_id in pending}
        unprocessed: list[Any] = response.get("UnprocessedItems", {}).get(self.table, [])
        return {
            by_id[put["PutRequest"]["Item"]["shortage_id"]["S"]]: EntryFailure("unprocessed") for put in unprocessed
        }

    def repair_dispatched(self, claim: Claim) -> None:
        """Mark an expired claim dispatched: its window's record (final) holds the shortage."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"shortage_id": {"S": claim.shortage_id}},
                UpdateExpression="SET #state = :dispatched",
                ConditionExpression="#state = :claimed AND window_id = :window",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":dispatched": {"S": DISPATCHED},
                    ":claimed": {"S": CLAIMED},
                    ":window": {"S": claim.window_id},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def release(self, shortage_ids: Iterable[str], window: Window) -> int:
        """Delete this window's claims (after it fenced its own record); returns how many failed."""
        failed = 0
        for shortage_id in shortage_ids:
            try:
                self.dynamodb.delete_item(
                    TableName=self.table,
                    Key={"shortage_id": {"S": shortage_id}},
                    ConditionExpression="#state = :claimed AND window_id = :me",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":me": {"S": window.window_id}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    failed += 1
            except BotoCoreError:
                failed += 1
        return failed

    def _new_claim(self, shortage_id: str, window: Window, now: float) -> TransactWriteItemTypeDef:
        lease = now + self.lease_seconds
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "shortage_id": {"S": shortage_id},
                    "state": {"S": CLAIMED},
                    "window_id": {"S": window.window_id},
                    "worker": {"S": window.worker},
                    "record_key": {"S": window.record_key},
                    "lease_expires": {"N": f"{lease:.3f}"},
                    "claimed_at": {"N": f"{now:.3f}"},
                    "ttl": {"N": str(int(lease + RETENTION_SECONDS))},
                },
                "ConditionExpression": "attribute_not_exists(shortage_id)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }


def _claim(item: dict[str, Any]) -> Claim:
    return Claim(
        shortage_id=item["shortage_id"]["S"],
        state=item["state"]["S"],
        window_id=item.get("window_id", {}).get("S", ""),
        worker=item.get("worker", {}).get("S", ""),
        lease_expires=float(item.get("lease_expires", {}).get("N", "0")),
        record_key=item.get("record_key", {}).get("S", ""),
    )


def _cancellation_reasons(exc: ClientError, expected: int) -> list[dict[str, Any]] | None:
    """The per-item reasons of a cancelled transaction (one per action), or None for other errors."""
    if error_code(exc) != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    if len(reasons) != expected:
        return None
    return [dict(reason) for reason in reasons]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
