"""SQS batch calls that retry only the entries that failed, then report what was lost."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from storeops.aws_errors import describe_error, is_not_found
from storeops.retry import RetryPolicy

logger = logging.getLogger(__name__)

SQS_RETRY = RetryPolicy(max_attempts=6)
SQS_BATCH = 10  # entries per SendMessageBatch / DeleteMessageBatch / ChangeMessageVisibilityBatch
SQS_BATCH_BYTES = 262_144  # SendMessageBatch: the bodies and attributes of one call together
MAX_DELAY_SECONDS = 900  # SendMessage DelaySeconds


@dataclass
class BatchOutcome:
    """Per entry id: which succeeded, and why the others failed after every attempt."""

    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    retried: int = 0


def entry_bytes(entry: dict[str, Any]) -> int:
    """What an entry counts toward a batch call's 256 KiB: its body and its attributes' names and values."""
    size = len(str(entry.get("MessageBody", "")).encode())
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        size += len(str(value.get("StringValue", "")).encode())
    return size


def batch_groups(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Entries in calls of at most 10 and, together, at most 256 KiB (big orders go a few per call)."""
    groups: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        length = entry_bytes(entry)
        if not groups or len(groups[-1]) >= SQS_BATCH or size + length > SQS_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += length
    return groups


class SqsBatcher:
    """Runs SQS ``*Batch`` operations in groups of 10 with bounded, jittered retries of failed entries."""

    def __init__(self, sqs: Any, *, retry: RetryPolicy = SQS_RETRY, max_workers: int = 1) -> None:
        self.sqs = sqs
        self.retry = retry
        self.max_workers = max_workers

    def send(
        self,
        queue_url: str,
        bodies: Sequence[tuple[str, str]],
        attributes: dict[str, dict[str, str]] | None = None,
        delays: dict[str, int] | None = None,
    ) -> BatchOutcome:
        """SendMessageBatch for (entry id, body) pairs; ids unique, [A-Za-z0-9_-]{1,80}.

        ``attributes`` maps an entry id to string message attributes; ``delays`` to the seconds
        (0-900) before the message can be received.
        """
        entries = []
        for entry_id, body in bodies:
            entry: dict[str, Any] = {"Id": entry_id, "MessageBody": body}
            if attributes and attributes.get(entry_id):
                entry["MessageAttributes"] = {
                    k: {"DataType": "String", "StringValue": v[:1024]} for k, v in attributes[entry_id].items()
                }
            if delays and delays.get(entry_id):
                entry["DelaySeconds"] = min(MAX_DELAY_SECONDS, max(0, delays[entry_id]))
            entries.append(entry)
        return self._run("send_message_batch", queue_url, entries)

    def delete(self, queue_url: str, receipts: Sequence[tuple[str, str]]) -> BatchOutcome:
        """DeleteMessageBatch for (entry id, receipt handle) pairs."""
        return self._run("delete_message_batch", queue_url, [{"Id": i, "ReceiptHandle": r} for i, r in receipts])

    def change_visibility(self, queue_url: str, receipts: Sequence[tuple[str, str]], seconds: int) -> BatchOutcome:
        """ChangeMessageVisibilityBatch: ``seconds=0`` releases messages at once."""
        entries = [{"Id": i, "ReceiptHandle": r, "VisibilityTimeout": seconds} for i, r in receipts]
        return self._run("change_message_visibility_batch", queue_url, entries)

    def _run(self, operation: str, queue_url: str, entries: list[dict[str, Any]]) -> BatchOutcome:
        groups = batch_groups(entries)
        outcomes = [BatchOutcome() for _ in groups]
        if self.max_workers > 1 and len(groups) > 1:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(groups))) as pool:
                list(pool.map(lambda g: self._run_group(operation, queue_url, *g), zip(groups, outcomes, strict=True)))
        else:
            for group, outcome in zip(groups, outcomes, strict=True):
                self._run_group(operation, queue_url, group, outcome)
        total = BatchOutcome()
        for outcome in outcomes:
            total.succeeded += outcome.succeeded
            total.failed.update(outcome.failed)
            total.calls += outcome.calls
            total.retried += outcome.retried
        return total

    def _run_group(self, operation: str, queue_url: str, group: list[dict[str, Any]], outcome: BatchOutcome) -> None:
        pending = group
        reasons: dict[str, str] = {}
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                outcome.retried += len(pending)
                self.retry.wait_before_retry(attempt - 1)
            outcome.calls += 1
            try:
                response = getattr(self.sqs, operation)(QueueUrl=queue_url, Entries=pending)
            except ClientError as exc:
                if is_not_found(exc):
                    for entry in pending:
                        outcome.failed[entry["Id"]] = describe_error(exc)
                    return
                reasons = {e["Id"]: describe_error(exc) for e in pending}
                continue
            except BotoCoreError as exc:
                reasons = {e["Id"]: str(exc) for e in pending}
                continue
            outcome.succeeded.extend(s["Id"] for s in response.get("Successful", []))
            retry_ids = set()
            reasons = {}
            for failure in response.get("Failed", []):
                reason = f"{failure.get('Code')}: {failure.get('Message', '')}"
                if failure.get("SenderFault"):
                    outcome.failed[failure["Id"]] = reason  # the request itself is wrong: retrying cannot help
                else:
                    retry_ids.add(failure["Id"])
                    reasons[failure["Id"]] = reason
            pending = [e for e in pending if e["Id"] in retry_ids]
            if not pending:
                return
            logger.info(
                "%s: %d of %d entries failed (attempt %d); retrying only those",
                operation,
                len(pending),
                len(group),
                attempt,
            )
        for entry in pending:
            outcome.failed[entry["Id"]] = reasons.get(entry["Id"], "failed after retries")
