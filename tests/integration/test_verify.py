"""`python -m deployments.stack verify` on the emulator: it passes on a deployed stack, names the
step that fails, and leaves nothing that planning or the trucks could pick up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from deployments.verify import GZIP_MEMBERS, READINGS, verify
from storeops.dispatch.replay import CANARY_ATTRIBUTE, move_back, receive_all, remove_canaries
from storeops.planning.models import PlanRequest
from storeops.planning.service import plan_shortages
from storeops.sqs import SqsBatcher
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack
from tests.integration.test_planning import targets_for
from tests.unit.test_verify_members import gzip_members

pytestmark = pytest.mark.integration

STEPS = ["stack", "firehose", "athena", "planner", "dispatch-queue", "canary"]


def _queue_depth(stack: LocalStack, url: str) -> int:
    attributes = stack.clients.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _keys(stack: LocalStack, prefix: str) -> list[str]:
    s3 = stack.clients.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.resources.data_lake_bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_verify_passes_every_step_and_leaves_no_trace(local_stack: LocalStack) -> None:
    said: list[str] = []
    report = verify(local_stack.settings, local_stack.clients, said.append)
    assert report.ok, report.as_dict()
    assert [s.name for s in report.steps] == STEPS
    assert len(said) == len(STEPS)
    athena = report.steps[2].detail
    assert f"{READINGS} of {READINGS} readings sent through Firehose queryable" in athena
    assert f"{GZIP_MEMBERS} of {GZIP_MEMBERS} in one object of {GZIP_MEMBERS} gzip members" in athena
    assert "estimate" in report.steps[3].detail  # the emulator's bytes are labelled as an estimate
    # nothing for the trucks, nothing recorded, nothing in the DLQ
    assert _queue_depth(local_stack, local_stack.resources.dispatch_queue_url) == 0
    assert _queue_depth(local_stack, local_stack.resources.dead_letter_queue_url) == 0
    assert _keys(local_stack, "dispatch-ledger/") == []
    # a real plan over everything finds no shortage in the check's readings
    result = plan_shortages(
        local_stack.clients, targets_for(local_stack), PlanRequest(lookback_hours=1), now=datetime.now(UTC)
    )
    assert report.store_id not in set(result.shortages["store_id"])
    assert result.requests_sent == 0


def test_an_engine_that_reads_multi_member_gzip_partially_fails_the_athena_step(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trino before 422 read only part of a multi-member gzip object; the check must say so."""
    import deployments.verify as module

    written: list[bytes] = []
    real_put = local_stack.clients.client("s3").put_object

    def put_object(**kwargs: Any) -> Any:
        written.append(kwargs["Body"])
        return real_put(**kwargs)

    monkeypatch.setattr(local_stack.clients.client("s3"), "put_object", put_object)
    monkeypatch.setattr(module, "count_landed", lambda *args, **kwargs: (300, 300, 0))  # the first 300 members only
    report = verify(local_stack.settings, local_stack.clients)
    assert report.failed_step is not None
    assert report.failed_step.name == "athena"
    assert "reads multi-member gzip objects partially" in report.failed_step.detail
    (body,) = written
    assert len(gzip_members(body)) == GZIP_MEMBERS  # the object really holds that many members


def test_verify_cli_json_and_the_failed_step(local_stack: LocalStack) -> None:
    ok = run_cli(["-m", "deployments.stack", "verify", "--json"], env=local_stack.env)
    assert ok.returncode == 0, ok.stderr
    payload: dict[str, Any] = json.loads(ok.stdout.strip().splitlines()[-1])
    assert payload["ok"] is True
    assert payload["failed_step"] is None
    assert [s["name"] for s in payload["steps"]] == STEPS

    local_stack.clients.client("lambda").delete_function(FunctionName=local_stack.resources.planning_function)
    broken = run_cli(["-m", "deployments.stack", "verify", "--json"], env=local_stack.env)
    assert broken.returncode == 1
    payload = json.loads(broken.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False
    assert payload["failed_step"] == "planner"
    assert [s["name"] for s in payload["steps"]] == STEPS[:4]  # it stops at the first failure
    assert "verify failed at step planner" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_verify_names_the_stack_step_when_nothing_is_deployed(local_stack: LocalStack) -> None:
    result = run_cli(["-m", "deployments.stack", "verify"], env={**local_stack.env, "STOREOPS_STACK_NAME": "missing"})
    assert result.returncode == 1
    assert "verify failed at step stack: stack missing does not exist" in result.stderr


def test_a_replay_deletes_a_canary_left_behind_and_moves_only_real_dead_letters(local_stack: LocalStack) -> None:
    sqs = local_stack.clients.client("sqs")
    dlq, queue = local_stack.resources.dead_letter_queue_url, local_stack.resources.dispatch_queue_url
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody="{}",
        MessageAttributes={CANARY_ATTRIBUTE: {"DataType": "String", "StringValue": "canary-V000000001"}},
    )
    sqs.send_message(QueueUrl=dlq, MessageBody='{"poison": true}')
    received = receive_all(sqs, dlq)
    assert sorted(letter.canary for letter in received) == [False, True]
    batcher = SqsBatcher(sqs)
    assert remove_canaries(batcher, dlq, received) == 1
    moved, failed = move_back(batcher, queue, dlq, [letter for letter in received if not letter.canary])
    assert (moved, failed) == (1, 0)
    assert _queue_depth(local_stack, dlq) == 0
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == '{"poison": true}'
