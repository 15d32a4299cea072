"""Fault injection on botocore's hooks: parsed from one setting, seen by botocore's retries as real failures.

No network: a second ``before-send`` handler stands in for the service (a stubbed HTTP layer),
answering what the injector lets through.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from storeops.aws import AwsClients
from storeops.exceptions import ConfigurationError
from storeops.faults import FaultInjector, FaultPlan, FaultSpecError
from storeops.settings import load_settings


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


class Service:
    """Answers every request that reaches it with an empty success, and counts them."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse:
        self.requests.append(event_name)
        body = b"<ListBucketResult></ListBucketResult>" if ".s3." in event_name else b"{}"
        return AWSResponse(request.url, 200, HTTPHeaders(), _Raw(body))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sleeps between retries; these tests count retries, not seconds."""

    class Instant:
        @staticmethod
        def sleep(_seconds: float) -> None:
            return None

    monkeypatch.setattr("botocore.endpoint.time", Instant)


def client(service: str, plan: str, retries: int = 2) -> tuple[Any, Service, FaultInjector]:
    """A client of the factory with faults per ``plan``; botocore makes up to ``retries`` retries."""
    session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    config = Config(retries={"mode": "standard", "max_attempts": retries})
    aws = AwsClients(session, config, "http://127.0.0.1:9", FaultInjector(FaultPlan.parse(plan)))
    made = aws.client(service)
    answer = Service()
    made.meta.events.register("before-send", answer)  # after the injector: only what it lets through
    assert aws.faults is not None
    return made, answer, aws.faults


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "empty"),
        ("*=2", "between 0 and 1"),
        ("sqs.Receive-Message=0.1", "expected <service"),
        ("*=0.1;kinds=throttle,meteor", "choose from"),
        ("*=0.1;speed=3", "expected kinds="),
        ("*=0.1;seed=x", "whole number"),
    ],
)
def test_a_bad_spec_is_refused_in_one_line(spec: str, problem: str) -> None:
    with pytest.raises(FaultSpecError, match=problem):
        FaultPlan.parse(spec)


def test_the_setting_names_the_variable_when_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREOPS_FAULT_INJECTION", "*=lots")
    with pytest.raises(ConfigurationError, match="STOREOPS_FAULT_INJECTION"):
        load_settings()


def test_the_most_specific_target_wins() -> None:
    plan = FaultPlan.parse("*=0.01,sqs=0.2,sqs.ReceiveMessage=0.5")
    assert plan.rate_for("sqs", "ReceiveMessage") == 0.5
    assert plan.rate_for("sqs", "DeleteMessageBatch") == 0.2
    assert plan.rate_for("dynamodb", "PutItem") == 0.01
    assert FaultPlan.parse("s3=0.1").rate_for("sqs", "SendMessage") == 0.0


def test_off_by_default_no_hook_is_registered() -> None:
    settings = load_settings(target="local")
    assert settings.fault_injection is None
    aws = AwsClients.from_settings(settings)
    assert aws.faults is None
    assert aws.injected_faults() == {}


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("dynamodb", lambda c: c.describe_limits(), "ThrottlingException"),
        ("sqs", lambda c: c.list_queues(), "ThrottlingException"),
        ("s3", lambda c: c.list_objects_v2(Bucket="b"), "SlowDown"),
        ("lambda", lambda c: c.list_functions(), "TooManyRequestsException"),
        ("cloudformation", lambda c: c.list_stacks(), "ThrottlingException"),
    ],
)
def test_throttling_is_retried_by_botocore_then_raised_with_the_services_own_code(
    service: str, call: Any, code: str
) -> None:
    made, _, faults = client(service, "*=1;kinds=throttle", retries=2)
    with pytest.raises(ClientError) as info:
        call(made)
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 2  # botocore retried it twice
    assert sum(faults.counts.values()) == 3


def test_server_errors_and_resets_are_retried_until_a_call_gets_through() -> None:
    made, _, faults = client("dynamodb", "*=0.5;kinds=5xx,reset;seed=3", retries=10)
    retried = sum(made.describe_limits()["ResponseMetadata"]["RetryAttempts"] for _ in range(20))
    assert retried == sum(faults.counts.values()) > 5  # every call got through; the failed attempts were retried
    assert {k.rsplit(".", 1)[1] for k in faults.counts} == {"5xx", "reset"}


def test_a_landed_timeout_reaches_the_service_and_loses_the_answer() -> None:
    made, _, faults = client("sqs", "*=1;kinds=timeout;landed=1", retries=1)
    sent: list[Any] = []
    faults._send = sent.append  # type: ignore[method-assign]  # stands in for the real HTTP send
    with pytest.raises(ReadTimeoutError):
        made.list_queues()
    assert len(sent) == 2  # both attempts reached the service; both answers were lost
    assert faults.counts == {"sqs.ListQueues.timeout-landed": 2}


def test_a_reset_never_reaches_the_service() -> None:
    made, answer, _ = client("sqs", "*=1;kinds=reset", retries=1)
    with pytest.raises(ConnectionClosedError):
        made.list_queues()
    assert answer.requests == []


def test_the_same_seed_fails_the_same_calls() -> None:
    runs = []
    for _ in range(2):
        made, _, _ = client("dynamodb", "*=0.3;kinds=throttle,5xx,reset;seed=11", retries=0)
        outcomes = []
        for _ in range(30):
            try:
                made.describe_limits()
                outcomes.append("ok")
            except (ClientError, ReadTimeoutError, ConnectionClosedError) as exc:
                outcomes.append(type(exc).__name__)
        runs.append(outcomes)
    assert runs[0] == runs[1]
    assert "ok" in runs[0]
    assert len(set(runs[0])) > 1


def test_error_bodies_parse_as_each_protocol_expects() -> None:
    made, _, _ = client("firehose", "*=1;kinds=5xx", retries=0)
    with pytest.raises(ClientError) as info:
        made.list_delivery_streams()
    assert info.value.response["Error"]["Code"] == "InternalFailure"
    assert json.dumps(info.value.response["Error"])  # a plain, complete error
