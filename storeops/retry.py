"""Retrying the failed entries of batch calls: the one backoff rule (exponential, capped, full jitter) and
the one loop that sends only the failed entries again.

Whole calls are retried by botocore alone (standard mode, ``Settings.max_attempts``, see ``storeops.aws``);
what botocore cannot see is a batch call that succeeded while some of its entries failed (SQS ``Failed``,
Firehose ``ErrorCode``, DynamoDB ``UnprocessedItems``, S3 ``Errors``): ``retry_failed_entries`` handles those.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from storeops.exceptions import StoreOpsError

logger = logging.getLogger(__name__)


def full_jitter_delay(attempt: int, base: float, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): jitter x min(cap, base x 2^(attempt-1))."""
    return jitter() * min(cap, base * 2 ** (attempt - 1))


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry the failed entries of a batch call, and how long to wait in between."""

    max_attempts: int = 6
    base_delay: float = 0.1
    max_delay: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1-based)."""
        return full_jitter_delay(attempt, self.base_delay, self.max_delay, self.jitter)

    def wait_before_retry(self, attempt: int) -> None:
        self.sleep(self.backoff(attempt))


@dataclass(frozen=True)
class EntryFailure:
    """Why one entry of a batch call failed, and whether sending it again can help."""

    reason: str
    retryable: bool = True


@dataclass
class BatchOutcome:
    """What a batch call did with each entry, by the entry's position in the caller's list."""

    succeeded: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # position -> why, after every attempt
    calls: int = 0
    retried: int = 0  # entries sent again

    def merge(self, other: BatchOutcome) -> None:
        self.succeeded += other.succeeded
        self.failed.update(other.failed)
        self.calls += other.calls
        self.retried += other.retried

    def raise_if_failed(self, what: str) -> None:
        """Fail loudly, with the count, if any entry failed."""
        if self.failed:
            first = next(iter(self.failed.values()))
            total = len(self.failed) + len(self.succeeded)
            raise StoreOpsError(f"{what}: {len(self.failed)} of {total} entries failed after retries ({first})")


E = TypeVar("E")
# One batch call: (position, entry) pairs in, the failed ones out by position. Whole-call errors are botocore's
# to retry (standard mode); a call either raises them or reports every entry it sent as failed.
BatchCall = Callable[[list[tuple[int, E]]], dict[int, EntryFailure]]


def retry_failed_entries(entries: Sequence[E], call: BatchCall[E], retry: RetryPolicy, operation: str) -> BatchOutcome:
    """Send ``entries`` in one call, then only the entries it reported as failed (and retryable) again, with
    ``retry``'s backoff, up to its attempts. The outcome names each entry by its position in ``entries``."""
    outcome = BatchOutcome()
    pending = list(enumerate(entries))
    reasons: dict[int, str] = {}
    for attempt in range(1, retry.max_attempts + 1):
        if attempt > 1:
            outcome.retried += len(pending)
            retry.wait_before_retry(attempt - 1)
        outcome.calls += 1
        failures = call(pending)
        again = []
        for position, entry in pending:
            failure = failures.get(position)
            if failure is None:
                outcome.succeeded.append(position)
            elif failure.retryable:
                again.append((position, entry))
                reasons[position] = failure.reason
            else:
                outcome.failed[position] = failure.reason  # the request itself is wrong: retrying cannot help
        if not again:
            return outcome
        logger.info(
            "%s: %d of %d entries failed (attempt %d); retrying only those",
            operation,
            len(again),
            len(pending),
            attempt,
        )
        pending = again
    for position, _ in pending:
        outcome.failed[position] = reasons[position]
    return outcome
