"""Check a deployed stack end to end, on either target: ``python -m deployments.stack verify``.

Steps, in order; the first that fails ends the check and is named in the exit message:

1. ``stack``: the stack is complete and has every output the flows read.
2. ``firehose``: a small batch of readings of a store id no simulation uses (``V`` + 9 digits)
   goes through the delivery stream as several records, each its own gzip member; Firehose
   concatenates them into one object, as it does with the stores' readings.
3. ``athena``: polling with a deadline that covers the buffer interval, Athena counts exactly
   those readings (more means duplicates). Then it counts the readings of an object written
   straight into the lake as ``GZIP_MEMBERS`` gzip members, at least as many as a production object
   holds (below): all of them, or the account's Athena reads multi-member gzip objects partially
   (Trino before release 422 dropped rows silently once objects held some 300 members,
   trinodb/trino#18223), which is how Firehose concatenates the stores' records. (The emulator's
   Firehose writes an object per record, so only this object is multi-member there.)
4. ``planner``: the planning Lambda runs a dry run over that store (it finds the store and no
   shortage: the readings are full shelves with no sales).
5. ``dispatch-queue``: the queue's visibility timeout and redrive satisfy the exactly-once timing.
6. ``canary``: one message sent to the dead-letter queue, received and deleted (the trucks never
   read the DLQ; a replay deletes a canary a crashed check left behind).

How many members a production object holds: Firehose closes an object at ``FirehoseBufferMiB``
(at most ``MAX_BUFFER_BYTES``, the template's largest) or the buffer interval, whichever comes first,
and each record the stores send is one gzip member. A full record holds ``DEFAULT_RAW_CHUNK_BYTES``
of readings, at least ``MIN_FULL_RECORD_BYTES`` gzipped (148 KB measured at 200 x 200, 40 x 1,000 and
4 x 30,000 pairs; tests/unit/test_verify_members.py measures it again). At chain scale the buffer
fills before the interval ends (2,000 x 1,000 pairs send ~95 MB a minute gzipped), so an object
holds at most ``MAX_BUFFER_BYTES / MIN_FULL_RECORD_BYTES`` = 959 members (about 450 at the default
64 MiB); the check writes ``GZIP_MEMBERS`` = 959 members of one reading each.

It leaves nothing that planning or the trucks could pick up: the readings (971, in the lake for
good, like any reading) are never short
(and the store id is no real store's), the plan is a dry run (nothing recorded or sent), the
canary never touches the dispatch queue.
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from storeops.athena import SCANNED_BYTES_LABELS, inventory_query
from storeops.aws import AwsClients, StackResources, describe_stack
from storeops.aws_errors import describe_error
from storeops.clock import format_timestamp
from storeops.contracts.reading import SCHEMA_VERSION, InventoryReading
from storeops.dispatch.config import WorkerConfig
from storeops.dispatch.replay import CANARY_ATTRIBUTE
from storeops.exceptions import StoreOpsError
from storeops.settings import Settings
from storeops.sqs import SqsBatcher
from storeops.stores.backfill import event_time_key
from storeops.stores.firehose import FirehoseSender, PackedRecord
from storeops.stores.landing import count_landed, landing_deadline, wait_until_landed

READINGS = 12
RECORDS = 3  # gzip members, so that the object Firehose writes holds several
MAX_BUFFER_BYTES = 128 * 1024 * 1024  # the template's largest FirehoseBufferMiB (Firehose's own limit)
MIN_FULL_RECORD_BYTES = 140_000  # a full record of the stores' readings, gzipped, is larger (measured ~148 KB)
GZIP_MEMBERS = -(-MAX_BUFFER_BYTES // MIN_FULL_RECORD_BYTES)  # the most members a production object holds: 959
CANARY_DEADLINE_SECONDS = 60.0
INVOKE_READ_TIMEOUT = 330.0

Progress = Callable[[str], None]


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class VerifyReport:
    stack: str
    target: str
    store_id: str
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if not step.ok), None)

    def as_dict(self) -> dict[str, Any]:
        failed = self.failed_step
        return {
            "stack": self.stack,
            "target": self.target,
            "ok": self.ok,
            "failed_step": failed.name if failed else None,
            "store_id": self.store_id,
            "steps": [asdict(step) for step in self.steps],
            "seconds": round(self.seconds, 2),
        }


class StepFailed(Exception):
    """A check that did not hold; the message says what was seen."""


def verify_readings(
    store_id: str, observed_at: datetime, first_product: int = 1, count: int = READINGS
) -> list[dict[str, Any]]:
    """``count`` readings of full shelves with no sales: valid, and never a shortage."""
    readings = []
    for number in range(first_product, first_product + count):
        reading = {
            "event_id": str(uuid.uuid4()),
            "store_id": store_id,
            "product_id": f"P{number:04d}",
            "product_name": "storeops verify",
            "category": "verify",
            "case_pack": 1,
            "on_hand": 1000,
            "units_sold": 0,
            "units_expired": 0,
            "period_hours": 1.0,
            "price": 1.0,
            "on_promotion": False,
            "observed_at": format_timestamp(observed_at),
            "schema_version": SCHEMA_VERSION,
        }
        InventoryReading.model_validate(reading)
        readings.append(reading)
    return readings


def multi_member_object(readings: list[dict[str, Any]], members: int) -> bytes:
    """The readings as one object of ``members`` concatenated gzip members (what Firehose writes)."""
    return b"".join(record.data for record in packed(readings, members))


def packed(readings: list[dict[str, Any]], records: int = RECORDS) -> list[PackedRecord]:
    """The readings as ``records`` Firehose records, each one gzip member of NDJSON lines."""
    per_record = -(-len(readings) // records)
    out = []
    for first in range(0, len(readings), per_record):
        raw = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in readings[first : first + per_record])
        out.append(PackedRecord(gzip.compress(raw.encode()), len(readings[first : first + per_record]), len(raw)))
    return out


class Verifier:
    """Runs the steps against one stack; each step records its result."""

    def __init__(self, settings: Settings, clients: AwsClients) -> None:
        self.settings = settings
        self.clients = clients
        self.store_id = f"V{secrets.randbelow(10**9):09d}"
        self.observed_at = datetime.now(UTC)
        self.resources: StackResources | None = None

    @property
    def res(self) -> StackResources:
        assert self.resources is not None  # set by the first step, which every later step follows
        return self.resources

    def stack(self) -> str:
        self.resources = StackResources.load(self.clients, self.settings.stack_name)
        status = (describe_stack(self.clients, self.settings.stack_name) or {}).get("StackStatus", "?")
        return f"{self.settings.stack_name} is {status}; the flows' resources are in its outputs"

    def firehose(self) -> str:
        self.observed_at = datetime.now(UTC)
        records = packed(verify_readings(self.store_id, self.observed_at))
        sender = FirehoseSender(self.clients.client("firehose"), self.res.delivery_stream)
        sent = sender.send_stream(records)
        if sent.records_failed:
            raise StepFailed(f"{sent.records_failed} of {len(records)} records not accepted: {sent.last_error}")
        return (
            f"{READINGS} readings of store {self.store_id} at {format_timestamp(self.observed_at)} sent as "
            f"{len(records)} gzip records to {self.res.delivery_stream}"
        )

    def athena(self) -> str:
        deadline = landing_deadline(self.res.firehose_buffer_seconds)
        landing = wait_until_landed(
            self.clients, inventory_query(self.res), self.observed_at, READINGS, deadline, store_id=self.store_id
        )
        if landing.readings > READINGS:
            raise StepFailed(f"Athena counts {landing.readings} rows for {READINGS} readings: duplicates in the lake")
        if landing.distinct_readings == 0:
            raise StepFailed(
                f"no reading queryable after {landing.seconds:.0f} s (buffer {self.res.firehose_buffer_seconds} s): "
                "check the delivery stream's errors/ prefix in the lake and its CloudWatch metrics"
            )
        if not landing.complete:
            raise StepFailed(
                f"Athena reads only {landing.distinct_readings} of {READINGS} readings after {landing.seconds:.0f} s: "
                "Firehose delivered part of them, or the engine reads multi-member gzip objects partially"
            )
        # One object of as many gzip members as a production object holds, written by event time: does
        # Athena read it whole?
        at = self.observed_at + timedelta(milliseconds=1)
        key = event_time_key(at, f"storeops-verify-{self.store_id}")
        readings = verify_readings(self.store_id, at, first_product=READINGS + 1, count=GZIP_MEMBERS)
        body = multi_member_object(readings, GZIP_MEMBERS)
        self.clients.client("s3").put_object(Bucket=self.res.data_lake_bucket, Key=key, Body=body)
        rows, distinct, _ = count_landed(self.clients, inventory_query(self.res), at, timedelta(0), self.store_id)
        if rows != GZIP_MEMBERS or distinct != GZIP_MEMBERS:
            raise StepFailed(
                f"Athena reads {rows} rows ({distinct} readings) of the {GZIP_MEMBERS} readings in {GZIP_MEMBERS} "
                f"gzip members of s3://{self.res.data_lake_bucket}/{key}: this engine reads multi-member gzip "
                "objects partially (Trino before 422, trinodb/trino#18223), so it would drop readings Firehose "
                "concatenates"
            )
        return (
            f"{READINGS} of {READINGS} readings sent through Firehose queryable after {landing.seconds:.1f} s "
            f"({landing.polls} polls); {GZIP_MEMBERS} of {GZIP_MEMBERS} in one object of {GZIP_MEMBERS} gzip members"
        )

    def planner(self) -> str:
        event = {
            "dry_run": True,
            "stores": [self.store_id],
            "lookback_hours": 1,
            "as_of": (self.observed_at + timedelta(seconds=1)).isoformat(),
        }
        client = self.clients.client("lambda", read_timeout=INVOKE_READ_TIMEOUT)
        response = client.invoke(
            FunctionName=self.res.planning_function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            message = payload.get("errorMessage", "no message") if isinstance(payload, dict) else str(payload)
            raise StepFailed(f"the planning function failed: {message}")
        if payload["shortage_count"] or payload["requests_sent"] or not payload["dry_run"]:
            raise StepFailed(
                f"the dry run should find no shortage and send nothing; it found {payload['shortage_count']} and "
                f"sent {payload['requests_sent']}"
            )
        label = SCANNED_BYTES_LABELS[payload["bytes_scanned_source"]]
        return (
            f"{self.res.planning_function} planned store {self.store_id} (dry run): 0 shortages, "
            f"{payload['bytes_scanned']:,} {label} in {payload['queries']} queries, ${payload['query_cost_usd']:.6f}"
        )

    def dispatch_queue(self) -> str:
        config = WorkerConfig(
            queue_url=self.res.dispatch_queue_url,
            dead_letter_queue_url=self.res.dead_letter_queue_url,
            bucket=self.res.data_lake_bucket,
            claims_table=self.res.claims_table,
        ).for_queue(self.clients.client("sqs"))
        return (
            f"visibility {config.visibility_seconds} s, maxReceiveCount {config.max_receive_count}, lease "
            f"{config.lease_seconds} s: the exactly-once timing holds"
        )

    def canary(self) -> str:
        sqs = self.clients.client("sqs")
        dlq = self.res.dead_letter_queue_url
        canary_id = f"canary-{self.store_id}"
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"canary": canary_id, "sent_at": format_timestamp(datetime.now(UTC))}),
            MessageAttributes={CANARY_ATTRIBUTE: {"DataType": "String", "StringValue": canary_id}},
        )
        started = time.monotonic()
        seen_others = 0
        while time.monotonic() - started < CANARY_DEADLINE_SECONDS:
            messages = sqs.receive_message(
                QueueUrl=dlq,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=2,
                VisibilityTimeout=30,
                MessageAttributeNames=[CANARY_ATTRIBUTE],
            ).get("Messages", [])
            ours = [m for m in messages if _canary_id(m) == canary_id]
            others = [m for m in messages if _canary_id(m) != canary_id]
            if others:  # dead letters waiting for a replay: visible again at once
                seen_others += len(others)
                SqsBatcher(sqs).change_visibility(dlq, [m["ReceiptHandle"] for m in others], 0)
            if ours:
                for message in ours:
                    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                return (
                    f"sent to the dead-letter queue, received after {time.monotonic() - started:.1f} s and deleted"
                    + (f" ({seen_others} dead letters seen and left in place)" if seen_others else "")
                )
        raise StepFailed(
            f"the canary was not received within {CANARY_DEADLINE_SECONDS:.0f} s ({seen_others} other dead letters "
            "seen); `python -m flows.replay_dlq` deletes it later"
        )


def _canary_id(message: Mapping[str, Any]) -> str | None:
    value = message.get("MessageAttributes", {}).get(CANARY_ATTRIBUTE, {}).get("StringValue")
    return str(value) if value is not None else None


def verify(settings: Settings, clients: AwsClients, progress: Progress = lambda _: None) -> VerifyReport:
    """Run every step until one fails; the report says which, and what each saw."""
    started = time.monotonic()
    verifier = Verifier(settings, clients)
    report = VerifyReport(settings.stack_name, settings.target, verifier.store_id)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("stack", verifier.stack),
        ("firehose", verifier.firehose),
        ("athena", verifier.athena),
        ("planner", verifier.planner),
        ("dispatch-queue", verifier.dispatch_queue),
        ("canary", verifier.canary),
    ]
    for name, run in steps:
        step_started = time.monotonic()
        try:
            detail, ok = run(), True
        except (StepFailed, StoreOpsError) as exc:
            detail, ok = str(exc), False
        except ClientError as exc:
            detail, ok = describe_error(exc), False
        except BotoCoreError as exc:
            detail, ok = str(exc).replace("\n", " "), False
        result = StepResult(name, ok, round(time.monotonic() - step_started, 2), detail)
        report.steps.append(result)
        progress(f"  {'ok  ' if ok else 'FAIL'}  {name:<15} {result.seconds:7.2f} s  {detail}")
        if not ok:
            break
    report.seconds = time.monotonic() - started
    return report
