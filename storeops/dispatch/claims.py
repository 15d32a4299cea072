"""Atomic claims on shortages in DynamoDB: a shortage is dispatched by at most one worker.

A claim item ``{shortage_id, state, worker, lease_expires, window_id, ledger_dt, ttl}`` is
created with a conditional put (``attribute_not_exists``, or taking over an expired claim),
up to 100 per ``TransactWriteItems`` call. ``state`` goes ``claimed`` -> ``dispatched`` once
the load is in the ledger. A worker that dies before dispatching loses its claim when the
lease expires; before taking over, the new worker checks the ledger for the old window's loads,
so a load recorded just before a crash is never dispatched again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

TRANSACTION_LIMIT = 100  # TransactWriteItems: 100 actions per call
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
RETENTION_SECONDS = 30 * 24 * 3600  # DynamoDB TTL removes claims a month after their lease

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    shortage_id: str
    state: str  # claimed | dispatched
    worker: str
    lease_expires: float
    window_id: str
    ledger_dt: str


class ClaimStore:
    def __init__(self, dynamodb: Any, table: str, lease_seconds: int = 300, clock: Callable[[], float] = time.time):
        self.dynamodb = dynamodb
        self.table = table
        self.lease_seconds = lease_seconds
        self.clock = clock

    # -- reads ------------------------------------------------------------------------------
    def lookup(self, shortage_ids: Iterable[str]) -> dict[str, Claim]:
        """Existing claims for these ids (strongly consistent)."""
        ids = list(dict.fromkeys(shortage_ids))
        found: dict[str, Claim] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            request = {
                self.table: {
                    "Keys": [{"shortage_id": {"S": i}} for i in ids[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            for _attempt in range(8):
                response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    claim = _claim(item)
                    found[claim.shortage_id] = claim
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05)
        return found

    # -- writes -----------------------------------------------------------------------------
    def claim(self, shortage_ids: list[str], worker: str, window_id: str, ledger_dt: str) -> tuple[set[str], set[str]]:
        """Claim each id unless another worker holds an unexpired claim or it is dispatched.

        Returns (won, lost). All-or-nothing transactions are retried without the items whose
        condition failed, so one contended id never blocks the others.
        """
        now = self.clock()
        won: set[str] = set()
        lost: set[str] = set()
        for start in range(0, len(shortage_ids), TRANSACTION_LIMIT):
            pending = shortage_ids[start : start + TRANSACTION_LIMIT]
            while pending:
                actions = [self._claim_put(i, worker, window_id, ledger_dt, now) for i in pending]
                try:
                    self.dynamodb.transact_write_items(TransactItems=actions)
                except ClientError as exc:
                    failed = _conditional_failures(exc, pending)
                    if failed is None:
                        raise
                    lost |= failed
                    pending = [i for i in pending if i not in failed]
                    continue
                won.update(pending)
                pending = []
        return won, lost

    def mark_dispatched(self, shortage_ids: list[str], worker: str, window_id: str, ledger_dt: str) -> None:
        """claimed -> dispatched for claims this worker holds, once their loads are in the ledger.

        Plain BatchWriteItem puts (25 a call): the claims are ours (the worker checks its lease
        before recording), so no condition is needed and this costs a fraction of a transaction.
        """
        now = self.clock()
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "shortage_id": {"S": i},
                        "state": {"S": "dispatched"},
                        "worker": {"S": worker},
                        "window_id": {"S": window_id},
                        "ledger_dt": {"S": ledger_dt},
                        "dispatched_at": {"N": f"{now:.3f}"},
                        "lease_expires": {"N": "0"},
                        "ttl": {"N": str(int(now + RETENTION_SECONDS))},
                    }
                }
            }
            for i in shortage_ids
        ]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            request = {self.table: items[start : start + BATCH_WRITE_LIMIT]}
            for attempt in range(10):
                response = self.dynamodb.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            if request:
                raise RuntimeError(f"could not mark {len(request[self.table])} claims dispatched")

    def take_over(self, claim: Claim, worker: str, window_id: str, ledger_dt: str) -> bool:
        """Claim an abandoned shortage: only if its claim is still exactly the expired one we saw."""
        now = self.clock()
        put = self._claim_put(claim.shortage_id, worker, window_id, ledger_dt, now)["Put"]
        put["ConditionExpression"] = "#state = :claimed AND worker = :old AND lease_expires = :lease AND :lease < :now"
        put["ExpressionAttributeValues"] = {
            ":claimed": {"S": "claimed"},
            ":old": {"S": claim.worker},
            ":lease": {"N": f"{claim.lease_expires:.3f}"},
            ":now": {"N": f"{now:.3f}"},
        }
        try:
            self.dynamodb.put_item(
                TableName=put["TableName"],
                Item=put["Item"],
                ConditionExpression=put["ConditionExpression"],
                ExpressionAttributeNames=put["ExpressionAttributeNames"],
                ExpressionAttributeValues=put["ExpressionAttributeValues"],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        logger.info("took over shortage %s from %s (lease expired)", claim.shortage_id, claim.worker)
        return True

    def repair_dispatched(self, shortage_id: str, window_id: str) -> None:
        """Mark an expired claim dispatched when the ledger shows its load was recorded."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"shortage_id": {"S": shortage_id}},
                UpdateExpression="SET #state = :dispatched",
                ConditionExpression="#state = :claimed AND window_id = :window",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":dispatched": {"S": "dispatched"},
                    ":claimed": {"S": "claimed"},
                    ":window": {"S": window_id},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def release(self, shortage_ids: Iterable[str], worker: str) -> None:
        """Give back claims this worker holds but did not dispatch (best effort)."""
        for shortage_id in shortage_ids:
            try:
                self.dynamodb.delete_item(
                    TableName=self.table,
                    Key={"shortage_id": {"S": shortage_id}},
                    ConditionExpression="#state = :claimed AND worker = :me",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":claimed": {"S": "claimed"}, ":me": {"S": worker}},
                )
            except ClientError:
                continue

    def _claim_put(self, shortage_id: str, worker: str, window_id: str, ledger_dt: str, now: float) -> dict[str, Any]:
        lease = now + self.lease_seconds
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "shortage_id": {"S": shortage_id},
                    "state": {"S": "claimed"},
                    "worker": {"S": worker},
                    "lease_expires": {"N": f"{lease:.3f}"},
                    "window_id": {"S": window_id},
                    "ledger_dt": {"S": ledger_dt},
                    "claimed_at": {"N": f"{now:.3f}"},
                    "ttl": {"N": str(int(lease + RETENTION_SECONDS))},
                },
                # new, or re-claimed by the same worker; abandoned claims go through take_over()
                "ConditionExpression": "attribute_not_exists(shortage_id) OR (#state = :claimed AND worker = :me)",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":claimed": {"S": "claimed"}, ":me": {"S": worker}},
            }
        }


def _claim(item: dict[str, Any]) -> Claim:
    return Claim(
        shortage_id=item["shortage_id"]["S"],
        state=item["state"]["S"],
        worker=item.get("worker", {}).get("S", ""),
        lease_expires=float(item.get("lease_expires", {}).get("N", "0")),
        window_id=item.get("window_id", {}).get("S", ""),
        ledger_dt=item.get("ledger_dt", {}).get("S", ""),
    )


def _conditional_failures(exc: ClientError, pending: list[str]) -> set[str] | None:
    """The ids whose condition failed in a cancelled transaction; None for other errors."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    failed = {i for i, r in zip(pending, reasons, strict=False) if r.get("Code") == "ConditionalCheckFailed"}
    return failed or None
