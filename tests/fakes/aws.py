"""In-memory SQS, DynamoDB and S3 that follow the documented semantics the claim protocol relies on.

- SQS (standard queue): a receive makes a message invisible for ``VisibilityTimeout`` and
  gives a new receipt handle; ``ApproximateReceiveCount`` counts receives; a message whose
  count would exceed the redrive policy's ``maxReceiveCount`` is moved to the dead-letter
  queue instead of being received; deleting with a stale receipt handle succeeds without
  deleting ("the request succeeds, but the message might not be deleted");
  ``ChangeMessageVisibility`` on a stale handle or a message not in flight fails for that entry.
- DynamoDB: ``TransactWriteItems`` is all-or-nothing; a cancelled transaction reports one
  reason per action (``None``, ``ConditionalCheckFailed`` with the old ``Item`` when
  ``ReturnValuesOnConditionCheckFailure`` is ``ALL_OLD``, or ``TransactionConflict``); a
  ``ClientRequestToken`` makes a repeated identical call return the first success;
  conditional ``PutItem``/``UpdateItem``/``DeleteItem`` report ``ConditionalCheckFailedException``
  (with ``Item`` on ``ALL_OLD``); batch calls may leave ``Unprocessed*``.
- S3: ``PutObject`` with ``IfNoneMatch='*'`` on an existing key fails with 412
  ``PreconditionFailed``; reads are strongly consistent.

Every call first passes ``Calls.before`` (a scheduler in the property tests) which decides
its fate: run normally, fail before taking effect, take effect and lose the answer, take
effect twice (botocore retrying a request that landed), or kill the calling worker.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

FATES = ("ok", "fail", "lost", "twice", "conflict", "partial", "kill_before", "kill_after")


class Killed(BaseException):
    """The calling worker's process died (SIGKILL): nothing after this point runs."""


def client_error(code: str, message: str, operation: str, status: int = 400, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    response.update(extra)
    return ClientError(response, operation)  # type: ignore[arg-type]


class Calls:
    """Decides each call's fate; the default runs everything normally."""

    def before(self, caller: str, operation: str) -> str:
        return "ok"


def _apply(calls: Calls, caller: str, operation: str, effect: Callable[[], Any]) -> Any:
    """Run ``effect`` under the fate the scheduler chose for this call."""
    fate = calls.before(caller, operation)
    if fate == "kill_before":
        raise Killed(caller)
    if fate == "fail":
        raise client_error("ThrottlingException", "injected: rate exceeded", operation)
    result = effect()
    if fate == "twice":
        result = effect()  # botocore resent a request that had landed; this is the answer it got
    if fate == "lost":
        raise ReadTimeoutError(endpoint_url=f"fake://{operation}")
    if fate == "kill_after":
        raise Killed(caller)
    return result


# ---------------------------------------------------------------------------------------- SQS
@dataclass
class _Message:
    message_id: str
    body: str
    attributes: dict[str, Any]
    sent_at: float
    receive_count: int = 0
    visible_at: float = 0.0
    receipt: str = ""
    held_by: str = ""  # the worker that received it and has not yet decided (deleted or set its visibility)


@dataclass
class SqsState:
    """One queue with a redrive policy, and its dead-letter queue."""

    clock: Callable[[], float]
    max_receive_count: int
    queue_url: str = "fake://dispatch"
    dlq_url: str = "fake://dispatch-dlq"
    messages: dict[str, _Message] = field(default_factory=dict)
    dead_letters: list[_Message] = field(default_factory=list)
    idle_wait: Callable[[float], None] | None = None  # a long poll that finds nothing lets this much time pass
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def enqueue(self, url: str, body: str, attributes: dict[str, Any] | None = None, delay: int = 0) -> str:
        number = next(self._ids)
        message = _Message(f"m{number:06d}", body, copy.deepcopy(attributes or {}), self.clock())
        message.visible_at = self.clock() + delay
        if url == self.dlq_url:
            self.dead_letters.append(message)
        else:
            self.messages[message.message_id] = message
        return message.message_id

    def in_flight(self) -> int:
        now = self.clock()
        return sum(1 for m in self.messages.values() if m.visible_at > now)

    def visible(self) -> int:
        now = self.clock()
        return sum(1 for m in self.messages.values() if m.visible_at <= now)

    def undecided(self, workers: set[str]) -> bool:
        """Do any of these workers hold messages they received and have not decided on yet?"""
        now = self.clock()
        return any(m.held_by in workers and m.visible_at > now for m in self.messages.values())


class FakeSqs:
    def __init__(self, state: SqsState, calls: Calls | None = None, caller: str = "test") -> None:
        self.state = state
        self.calls = calls or Calls()
        self.caller = caller

    def receive_message(
        self,
        QueueUrl: str,
        MaxNumberOfMessages: int = 1,
        VisibilityTimeout: int | None = None,
        WaitTimeSeconds: int = 0,
        **_: Any,
    ) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            state, now, out = self.state, self.state.clock(), []
            for message in list(state.messages.values()):
                if len(out) >= MaxNumberOfMessages:
                    break
                if message.visible_at > now:
                    continue
                if message.receive_count + 1 > state.max_receive_count:  # the redrive policy
                    del state.messages[message.message_id]
                    state.dead_letters.append(message)
                    continue
                message.receive_count += 1
                message.visible_at = now + (VisibilityTimeout or 30)
                message.receipt = f"{message.message_id}#{message.receive_count}"
                message.held_by = self.caller
                out.append(
                    {
                        "MessageId": message.message_id,
                        "ReceiptHandle": message.receipt,
                        "Body": message.body,
                        "Attributes": {
                            "ApproximateReceiveCount": str(message.receive_count),
                            "SentTimestamp": str(int(message.sent_at * 1000)),
                        },
                        "MessageAttributes": copy.deepcopy(message.attributes),
                    }
                )
            if not out and state.idle_wait is not None:
                state.idle_wait(max(1, WaitTimeSeconds))
            return {"Messages": out} if out else {}

        return _apply(self.calls, self.caller, "sqs.ReceiveMessage", effect)  # type: ignore[no-any-return]

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            for entry in Entries:
                delay = int(entry.get("DelaySeconds", 0))
                assert 0 <= delay <= 900, delay
                self.state.enqueue(QueueUrl, entry["MessageBody"], entry.get("MessageAttributes"), delay)
            return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

        return _apply(self.calls, self.caller, "sqs.SendMessageBatch", effect)  # type: ignore[no-any-return]

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            for entry in Entries:
                message_id = entry["ReceiptHandle"].split("#")[0]
                message = self.state.messages.get(message_id)
                if message is not None and message.receipt == entry["ReceiptHandle"]:
                    del self.state.messages[message_id]  # a stale handle "succeeds" without deleting
            return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

        return _apply(self.calls, self.caller, "sqs.DeleteMessageBatch", effect)  # type: ignore[no-any-return]

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            now, ok, failed = self.state.clock(), [], []
            for entry in Entries:
                message = self.state.messages.get(entry["ReceiptHandle"].split("#")[0])
                if message is None or message.receipt != entry["ReceiptHandle"]:
                    failed.append({"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True})
                elif message.visible_at <= now:
                    failed.append({"Id": entry["Id"], "Code": "MessageNotInflight", "SenderFault": True})
                else:
                    message.visible_at = now + int(entry["VisibilityTimeout"])
                    message.held_by = ""
                    ok.append({"Id": entry["Id"]})
            return {"Successful": ok, "Failed": failed}

        return _apply(self.calls, self.caller, "sqs.ChangeMessageVisibilityBatch", effect)  # type: ignore[no-any-return]

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            return {
                "Attributes": {
                    "ApproximateNumberOfMessages": str(self.state.visible()),
                    "ApproximateNumberOfMessagesNotVisible": str(self.state.in_flight()),
                    "ApproximateNumberOfMessagesDelayed": "0",
                }
            }

        return _apply(self.calls, self.caller, "sqs.GetQueueAttributes", effect)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------- DynamoDB
ATOM_NOT_EXISTS = re.compile(r"^attribute_not_exists\((?P<name>[#\w]+)\)$")
ATOM_EQUALS = re.compile(r"^(?P<name>[#\w]+) = (?P<value>:\w+)$")
ASSIGNMENT = re.compile(r"^(?P<name>[#\w]+) = (?P<value>:\w+)$")


def _condition_holds(
    item: dict[str, Any] | None, expression: str | None, names: dict[str, str], values: dict[str, Any]
) -> bool:
    """The condition expressions the claim store uses: ``attribute_not_exists(a)`` and ``a = :v``, joined by AND."""
    if not expression:
        return True
    for atom in expression.split(" AND "):
        atom = atom.strip()
        if match := ATOM_NOT_EXISTS.match(atom):
            name = names.get(match["name"], match["name"])
            if item is not None and name in item:
                return False
        elif match := ATOM_EQUALS.match(atom):
            name = names.get(match["name"], match["name"])
            if item is None or item.get(name) != values[match["value"]]:
                return False
        else:
            raise AssertionError(f"the fake does not understand the condition {atom!r}")
    return True


@dataclass
class DynamoState:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # shortage_id -> item
    tokens: dict[str, str] = field(default_factory=dict)  # ClientRequestToken -> payload it committed


class FakeDynamoDB:
    def __init__(self, state: DynamoState, calls: Calls | None = None, caller: str = "test") -> None:
        self.state = state
        self.calls = calls or Calls()
        self.caller = caller

    def transact_write_items(
        self, TransactItems: list[dict[str, Any]], ClientRequestToken: str | None = None
    ) -> dict[str, Any]:
        operation = "dynamodb.TransactWriteItems"
        fate = self.calls.before(self.caller, operation)
        payload = json.dumps(TransactItems, sort_keys=True)

        def effect() -> dict[str, Any]:
            if ClientRequestToken and self.state.tokens.get(ClientRequestToken) == payload:
                return {}  # idempotent: the same transaction already committed
            reasons, cancel = [], False
            for action in TransactItems:
                put = action["Put"]
                key = put["Item"]["shortage_id"]["S"]
                old = self.state.items.get(key)
                if fate == "conflict" and not cancel:
                    reasons.append({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                    cancel = True
                    continue
                holds = _condition_holds(
                    old,
                    put.get("ConditionExpression"),
                    put.get("ExpressionAttributeNames", {}),
                    put.get("ExpressionAttributeValues", {}),
                )
                if holds:
                    reasons.append({"Code": "None"})
                else:
                    reason: dict[str, Any] = {
                        "Code": "ConditionalCheckFailed",
                        "Message": "The conditional request failed",
                    }
                    if put.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and old is not None:
                        reason["Item"] = copy.deepcopy(old)
                    reasons.append(reason)
                    cancel = True
            if cancel:
                raise client_error(
                    "TransactionCanceledException",
                    "Transaction cancelled",
                    "TransactWriteItems",
                    CancellationReasons=reasons,
                )
            for action in TransactItems:
                item = copy.deepcopy(action["Put"]["Item"])
                self.state.items[item["shortage_id"]["S"]] = item
            if ClientRequestToken:
                self.state.tokens[ClientRequestToken] = payload
            return {}

        return _run(fate, self.caller, operation, effect)  # type: ignore[no-any-return]

    def put_item(self, **request: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            item = request["Item"]
            key = item["shortage_id"]["S"]
            self._check(self.state.items.get(key), request, "PutItem")
            self.state.items[key] = copy.deepcopy(item)
            return {}

        return _apply(self.calls, self.caller, "dynamodb.PutItem", effect)  # type: ignore[no-any-return]

    def update_item(self, **request: Any) -> dict[str, Any]:
        """Only ``SET #a = :v[, ...]`` updates, the ones the claim store makes."""

        def effect() -> dict[str, Any]:
            key = request["Key"]["shortage_id"]["S"]
            old = self.state.items.get(key)
            self._check(old, request, "UpdateItem")
            item = copy.deepcopy(old) if old is not None else copy.deepcopy(request["Key"])
            expression = request["UpdateExpression"]
            assert expression.startswith("SET "), expression
            names, values = (
                request.get("ExpressionAttributeNames") or {},
                request.get("ExpressionAttributeValues") or {},
            )
            for assignment in expression[4:].split(","):
                match = ASSIGNMENT.match(assignment.strip())
                assert match, assignment
                item[names.get(match["name"], match["name"])] = values[match["value"]]
            self.state.items[key] = item
            return {}

        return _apply(self.calls, self.caller, "dynamodb.UpdateItem", effect)  # type: ignore[no-any-return]

    def delete_item(self, **request: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            key = request["Key"]["shortage_id"]["S"]
            self._check(self.state.items.get(key), request, "DeleteItem")
            self.state.items.pop(key, None)
            return {}

        return _apply(self.calls, self.caller, "dynamodb.DeleteItem", effect)  # type: ignore[no-any-return]

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        operation = "dynamodb.BatchGetItem"
        fate = self.calls.before(self.caller, operation)

        def effect() -> dict[str, Any]:
            ((table, request),) = RequestItems.items()
            keys = request["Keys"]
            served, left = (keys[: len(keys) // 2], keys[len(keys) // 2 :]) if fate == "partial" else (keys, [])
            found = [
                copy.deepcopy(self.state.items[k["shortage_id"]["S"]])
                for k in served
                if k["shortage_id"]["S"] in self.state.items
            ]
            response: dict[str, Any] = {"Responses": {table: found}}
            if left:
                response["UnprocessedKeys"] = {table: {**request, "Keys": left}}
            return response

        return _run(fate, self.caller, operation, effect)  # type: ignore[no-any-return]

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        operation = "dynamodb.BatchWriteItem"
        fate = self.calls.before(self.caller, operation)

        def effect() -> dict[str, Any]:
            ((table, requests),) = RequestItems.items()
            done, left = (
                (requests[: len(requests) // 2], requests[len(requests) // 2 :])
                if fate == "partial"
                else (requests, [])
            )
            for request in done:
                item = copy.deepcopy(request["PutRequest"]["Item"])
                self.state.items[item["shortage_id"]["S"]] = item
            return {"UnprocessedItems": {table: left}} if left else {}

        return _run(fate, self.caller, operation, effect)  # type: ignore[no-any-return]

    @staticmethod
    def _check(old: dict[str, Any] | None, request: dict[str, Any], operation: str) -> None:
        """Raise ``ConditionalCheckFailedException`` (with ``Item`` on ``ALL_OLD``) if the condition fails."""
        names, values = request.get("ExpressionAttributeNames") or {}, request.get("ExpressionAttributeValues") or {}
        if not _condition_holds(old, request.get("ConditionExpression"), names, values):
            all_old = request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and old is not None
            extra = {"Item": copy.deepcopy(old)} if all_old else {}
            raise client_error("ConditionalCheckFailedException", "The conditional request failed", operation, **extra)


def _run(fate: str, caller: str, operation: str, effect: Callable[[], Any]) -> Any:
    """``_apply`` for calls whose fate was already drawn (it shapes the effect itself)."""

    class Decided(Calls):
        def before(self, caller: str, operation: str) -> str:
            return "ok" if fate in {"conflict", "partial"} else fate

    return _apply(Decided(), caller, operation, effect)


# ---------------------------------------------------------------------------------------- S3
@dataclass
class S3State:
    objects: dict[str, bytes] = field(default_factory=dict)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self) -> bytes:
        return self._stream.read()

    def iter_lines(self) -> list[bytes]:
        return [line for line in self._stream.read().splitlines() if line]


class FakeS3:
    def __init__(self, state: S3State, calls: Calls | None = None, caller: str = "test") -> None:
        self.state = state
        self.calls = calls or Calls()
        self.caller = caller

    def put_object(
        self, Bucket: str, Key: str, Body: bytes, IfNoneMatch: str | None = None, **_: Any
    ) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            if IfNoneMatch == "*" and Key in self.state.objects:
                raise client_error(
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                    "PutObject",
                    status=412,
                )
            self.state.objects[Key] = bytes(Body)
            return {"ETag": f'"{hash(bytes(Body)) & 0xFFFFFFFF:08x}"'}

        return _apply(self.calls, self.caller, "s3.PutObject", effect)  # type: ignore[no-any-return]

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            if Key not in self.state.objects:
                raise client_error("NoSuchKey", "The specified key does not exist.", "GetObject", status=404)
            return {"Body": _Body(self.state.objects[Key])}

        return _apply(self.calls, self.caller, "s3.GetObject", effect)  # type: ignore[no-any-return]
