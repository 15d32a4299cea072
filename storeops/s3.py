"""S3 batch deletes: DeleteObjects 1,000 keys a call, only the keys it failed sent again."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from storeops.retry import BatchOutcome, EntryFailure, RetryPolicy, retry_failed_entries

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DELETE_BATCH = 1000  # DeleteObjects: keys per call
S3_RETRY = RetryPolicy(max_attempts=6)
RETRYABLE_CODES = frozenset({"InternalError", "SlowDown", "ServiceUnavailable"})


def delete_objects(
    s3: S3Client, bucket: str, objects: Sequence[dict[str, str]], retry: RetryPolicy = S3_RETRY
) -> BatchOutcome:
    """Delete ``objects`` (each ``{"Key": ...}``, perhaps with a ``VersionId``); the outcome by position."""
    total = BatchOutcome()
    for first in range(0, len(objects), DELETE_BATCH):
        chunk = list(objects[first : first + DELETE_BATCH])
        outcome = retry_failed_entries(chunk, partial(_delete, s3, bucket), retry, "DeleteObjects")
        total.merge(
            BatchOutcome(
                succeeded=[first + p for p in outcome.succeeded],
                failed={first + p: reason for p, reason in outcome.failed.items()},
                calls=outcome.calls,
                retried=outcome.retried,
            )
        )
    return total


def delete_prefix(s3: S3Client, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; how many there were. Raises, with the count, if some stay."""
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            delete_objects(s3, bucket, keys).raise_if_failed(f"cannot delete under s3://{bucket}/{prefix}")
            deleted += len(keys)
    return deleted


def _delete(s3: S3Client, bucket: str, pending: list[tuple[int, dict[str, str]]]) -> dict[int, EntryFailure]:
    """One DeleteObjects call (quiet: only the errors come back); the failed keys by position."""
    objects: list[Any] = [entry for _, entry in pending]
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    by_object = {(entry["Key"], entry.get("VersionId")): position for position, entry in pending}
    return {
        by_object[(error.get("Key", ""), error.get("VersionId"))]: EntryFailure(
            f"{error.get('Code')}: {error.get('Message', '')}", retryable=error.get("Code") in RETRYABLE_CODES
        )
        for error in response.get("Errors", [])
    }
