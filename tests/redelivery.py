"""Firehose delivers at least once: a helper that delivers every raw object of a lake a second time."""

from __future__ import annotations

from typing import Any

from storeops.stores.backfill import INVENTORY_PREFIX


def redeliver_every_raw_object(s3: Any, bucket: str) -> int:
    """Copy every raw object to a second key in its own partition (as a redelivered Firehose batch lands:
    the same records, another object); the number copied."""
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=INVENTORY_PREFIX)
        for obj in page.get("Contents", [])
    ]
    for key in keys:
        folder, _, name = key.rpartition("/")
        s3.copy_object(Bucket=bucket, Key=f"{folder}/redelivered-{name}", CopySource={"Bucket": bucket, "Key": key})
    return len(keys)
