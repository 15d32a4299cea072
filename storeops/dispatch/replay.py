"""Inspect the dead-letter queue and move its messages back to the dispatch queue."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storeops.sqs import Outgoing, SqsBatcher

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

REDRIVE_REASON = "redriven by SQS after maxReceiveCount receives (no reason recorded)"
# The post-deploy check's message in the DLQ (`python -m deployments.stack verify`): never moved
# back to the dispatch queue; a replay deletes one that a crashed check left behind.
CANARY_ATTRIBUTE = "storeops_canary"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    reason: str
    receive_count: int
    canary: bool = False


def receive_all(sqs: SQSClient, dlq_url: str, limit: int = 10_000, hold_seconds: int = 300) -> list[DeadLetter]:
    """Every message in the DLQ (up to ``limit``), held invisible for ``hold_seconds`` (at least 1)."""
    hold_seconds = max(1, hold_seconds)
    found: dict[str, DeadLetter] = {}
    while len(found) < limit:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - len(found)),
            WaitTimeSeconds=1,
            VisibilityTimeout=hold_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not messages or all(m["MessageId"] in found for m in messages):
            break  # empty, or only messages already held (they came back): everything was seen
        for m in messages:
            attributes = m.get("MessageAttributes", {})
            failure = attributes.get("failure_reason")
            reason = failure.get("StringValue", REDRIVE_REASON) if failure else REDRIVE_REASON
            count = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            found[m["MessageId"]] = DeadLetter(
                m["MessageId"],
                m["ReceiptHandle"],
                m.get("Body", ""),
                reason,
                count,
                CANARY_ATTRIBUTE in attributes,
            )
    return list(found.values())


def reasons(letters: list[DeadLetter]) -> Counter[str]:
    return Counter(letter.reason for letter in letters)


def move_back(batcher: SqsBatcher, queue_url: str, dlq_url: str, letters: list[DeadLetter]) -> tuple[int, int]:
    """Send to the main queue, then delete from the DLQ only what was sent. Returns (moved, failed)."""
    outcome = batcher.send(queue_url, [Outgoing(letter.body) for letter in letters])
    sent = [letters[position] for position in outcome.succeeded]
    deleted = batcher.delete(dlq_url, [letter.receipt_handle for letter in sent])
    logger.info(
        "moved %d of %d dead letters back to the dispatch queue; %d not sent, %d not deleted from the DLQ",
        len(sent),
        len(letters),
        len(outcome.failed),
        len(deleted.failed),
    )
    return len(sent), len(outcome.failed) + len(deleted.failed)


def remove_canaries(batcher: SqsBatcher, dlq_url: str, letters: list[DeadLetter]) -> int:
    """Delete the post-deploy check's canaries among ``letters`` (they are never replayed)."""
    canaries = [letter for letter in letters if letter.canary]
    if canaries:
        batcher.delete(dlq_url, [letter.receipt_handle for letter in canaries])
        logger.info("deleted %d canaries of the post-deploy check from the DLQ", len(canaries))
    return len(canaries)


def release(batcher: SqsBatcher, dlq_url: str, letters: list[DeadLetter]) -> None:
    """Leave the messages in the DLQ, visible again."""
    batcher.change_visibility(dlq_url, [letter.receipt_handle for letter in letters], 0)
