"""SQS batch calls that retry only the entries that failed, then report what was lost."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from storeops.aws_errors import describe_error
from storeops.retry import BatchOutcome, EntryFailure, RetryPolicy, retry_failed_entries

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

SQS_RETRY = RetryPolicy(max_attempts=6)
SQS_BATCH = 10  # entries per SendMessageBatch / DeleteMessageBatch / ChangeMessageVisibilityBatch
SQS_BATCH_BYTES = 262_144  # SendMessageBatch: the bodies and attributes of one call together
MAX_DELAY_SECONDS = 900  # SendMessage DelaySeconds


@dataclass(frozen=True)
class Outgoing:
    """One message to send: its body, string attributes, and seconds (0-900) before it can be received."""

    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    delay: int = 0


def entry_bytes(entry: dict[str, Any]) -> int:
    """What an entry counts toward a batch call's 256 KiB: its body and its attributes' names and values."""
    size = len(str(entry.get("MessageBody", "")).encode())
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        size += len(str(value.get("StringValue", "")).encode())
    return size


def batch_groups(entries: list[dict[str, Any]]) -> list[list[int]]:
    """Positions of ``entries`` in calls of at most 10 and, together, at most 256 KiB (big orders go a few per call)."""
    groups: list[list[int]] = []
    size = 0
    for position, entry in enumerate(entries):
        length = entry_bytes(entry)
        if not groups or len(groups[-1]) >= SQS_BATCH or size + length > SQS_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(position)
        size += length
    return groups


class SqsBatcher:
    """Runs SQS ``*Batch`` operations in groups of 10 with bounded, jittered retries of failed entries."""

    def __init__(self, sqs: SQSClient, *, retry: RetryPolicy = SQS_RETRY, max_workers: int = 1) -> None:
        self.sqs = sqs
        self.retry = retry
        self.max_workers = max_workers

    def send(self, queue_url: str, messages: Sequence[Outgoing]) -> BatchOutcome:
        """SendMessageBatch; the outcome names each message by its position in ``messages``."""
        entries = []
        for message in messages:
            entry: dict[str, Any] = {"MessageBody": message.body}
            if message.attributes:
                entry["MessageAttributes"] = {
                    k: {"DataType": "String", "StringValue": v[:1024]} for k, v in message.attributes.items()
                }
            if message.delay:
                entry["DelaySeconds"] = min(MAX_DELAY_SECONDS, max(0, message.delay))
            entries.append(entry)
        return self._run("send_message_batch", queue_url, entries)

    def delete(self, queue_url: str, receipt_handles: Sequence[str]) -> BatchOutcome:
        """DeleteMessageBatch; the outcome names each message by its position in ``receipt_handles``."""
        return self._run("delete_message_batch", queue_url, [{"ReceiptHandle": r} for r in receipt_handles])

    def change_visibility(self, queue_url: str, receipt_handles: Sequence[str], seconds: int) -> BatchOutcome:
        """ChangeMessageVisibilityBatch: ``seconds=0`` releases messages at once."""
        entries = [{"ReceiptHandle": r, "VisibilityTimeout": seconds} for r in receipt_handles]
        return self._run("change_message_visibility_batch", queue_url, entries)

    def _run(self, operation: str, queue_url: str, entries: list[dict[str, Any]]) -> BatchOutcome:
        groups = batch_groups(entries)

        def run_group(group: list[int]) -> BatchOutcome:
            outcome = retry_failed_entries(
                [entries[p] for p in group], partial(self._call, operation, queue_url), self.retry, operation
            )
            return BatchOutcome(  # positions within the group -> positions within ``entries``
                succeeded=[group[p] for p in outcome.succeeded],
                failed={group[p]: reason for p, reason in outcome.failed.items()},
                calls=outcome.calls,
                retried=outcome.retried,
            )

        if self.max_workers > 1 and len(groups) > 1:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(groups))) as pool:
                outcomes = list(pool.map(run_group, groups))
        else:
            outcomes = [run_group(group) for group in groups]
        total = BatchOutcome()
        for outcome in outcomes:
            total.merge(outcome)
        return total

    def _call(
        self, operation: str, queue_url: str, pending: list[tuple[int, dict[str, Any]]]
    ) -> dict[int, EntryFailure]:
        """One ``*Batch`` call; the failed entries by position. A failed call (botocore has retried it) fails
        every entry it carried."""
        try:
            response = getattr(self.sqs, operation)(
                QueueUrl=queue_url, Entries=[{"Id": str(p), **entry} for p, entry in pending]
            )
        except (ClientError, BotoCoreError) as exc:
            return {p: EntryFailure(describe_error(exc), retryable=False) for p, _ in pending}
        by_id = {str(p): p for p, _ in pending}
        return {
            by_id[f["Id"]]: EntryFailure(f"{f.get('Code')}: {f.get('Message', '')}", retryable=not f.get("SenderFault"))
            for f in response.get("Failed", [])
        }
