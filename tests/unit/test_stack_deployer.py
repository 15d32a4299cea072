"""The deployer's pure parts, and its AWS-only calls against moto (STS, S3) or, where moto lacks the call (Lambda's
GetAccountSettings, moto 5.2), botocore's Stubber: no network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from deployments.stack import (
    MANAGED_PARAMETERS,
    MIN_UNRESERVED_CONCURRENCY,
    RESERVATION_PARAMETER,
    Caller,
    _account_id,
    artifacts_bucket_name,
    choose_reservation,
    ensure_artifacts_bucket,
    lake_bucket_name,
    planner_reservation,
    remove_bucket,
    stack_parameters,
)
from storeops.aws import AwsClients, botocore_config
from storeops.exceptions import ConfigurationError, StackError
from storeops.settings import load_settings

MANAGED = {name: f"value-of-{name}" for name in sorted(MANAGED_PARAMETERS)}
DECLARED = {*MANAGED_PARAMETERS, "BytesScannedCutoffPerQuery", "FirehoseBufferSeconds", "NewInThisTemplate"}


def test_a_redeploy_keeps_what_the_stack_had_and_defaults_what_is_new() -> None:
    previous = {*MANAGED_PARAMETERS, "BytesScannedCutoffPerQuery", "FirehoseBufferSeconds"}
    parameters = stack_parameters(MANAGED, {"FirehoseBufferSeconds": "30"}, DECLARED, previous)
    by_key = {p["ParameterKey"]: p for p in parameters}
    assert by_key["FirehoseBufferSeconds"] == {"ParameterKey": "FirehoseBufferSeconds", "ParameterValue": "30"}
    assert by_key["BytesScannedCutoffPerQuery"] == {
        "ParameterKey": "BytesScannedCutoffPerQuery",
        "UsePreviousValue": True,
    }
    assert "NewInThisTemplate" not in by_key  # no previous value: the template's default applies
    for name in MANAGED_PARAMETERS:
        assert by_key[name]["ParameterValue"] == f"value-of-{name}"


def test_a_first_deploy_uses_only_the_deployers_values_and_the_overrides() -> None:
    parameters = stack_parameters(MANAGED, {}, DECLARED, previous=set())
    assert {p["ParameterKey"] for p in parameters} == MANAGED_PARAMETERS
    assert not any(p.get("UsePreviousValue") for p in parameters)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [({"Nope": "1"}, "unknown stack parameter Nope"), ({"LambdaCodeKey": "x"}, "set by the deployer")],
)
def test_bad_overrides_are_usage_errors(overrides: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        stack_parameters(MANAGED, overrides, DECLARED, previous=set())
    assert needle in info.value.one_line()
    assert info.value.exit_code == 2


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    settings = load_settings(target="aws", region="eu-west-1")
    with mock_aws():
        yield AwsClients(boto3.Session(region_name="eu-west-1"), botocore_config(settings))


def test_bucket_names_come_from_the_callers_account(aws: AwsClients) -> None:
    account = _account_id(aws)  # STS GetCallerIdentity
    assert account == "123456789012"
    settings = load_settings(target="aws", region="eu-west-1", stack_name="shop")
    assert artifacts_bucket_name(settings, account) == "shop-artifacts-123456789012-eu-west-1"
    assert lake_bucket_name(settings, account) == "shop-lake-123456789012-eu-west-1"


def test_removing_a_versioned_bucket_removes_every_version_and_marker(aws: AwsClients) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket="lake", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket="lake", Key="inventory/a.json.gz", Body=body)
    s3.delete_object(Bucket="lake", Key="inventory/a.json.gz")  # a delete marker
    assert remove_bucket(aws, "lake") == 3
    assert remove_bucket(aws, "lake") is None  # gone: nothing to do


class LateDeliveries:
    """An S3 client whose bucket receives ``late`` more objects after each emptying (Firehose flushing)."""

    def __init__(self, late: int) -> None:
        self.late = late
        self.objects = ["inventory/a.json.gz"]
        self.deletes = 0

    def get_paginator(self, name: str) -> Any:
        assert name == "list_object_versions"
        outer = self

        class Pages:
            def paginate(self, Bucket: str) -> list[dict[str, Any]]:
                return [{"Versions": [{"Key": k, "VersionId": "null"} for k in outer.objects]}]

        return Pages()

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        self.objects = []
        return {}

    def delete_bucket(self, Bucket: str) -> None:
        self.deletes += 1
        if self.late:
            self.late -= 1
            self.objects = [f"inventory/late-{self.late}.json.gz"]
            raise ClientError({"Error": {"Code": "BucketNotEmpty", "Message": "not empty"}}, "DeleteBucket")


class FakeClients:
    def __init__(self, s3: LateDeliveries) -> None:
        self.s3 = s3

    def client(self, service: str) -> LateDeliveries:
        return self.s3


def test_objects_landing_while_deleting_are_emptied_again() -> None:
    s3 = LateDeliveries(late=2)
    pauses: list[float] = []
    removed = remove_bucket(FakeClients(s3), "lake", pause=1.0, sleep=pauses.append)  # type: ignore[arg-type]
    assert removed == 3
    assert s3.deletes == 3
    assert pauses == [1.0, 2.0]


def test_a_bucket_that_keeps_filling_fails_loudly() -> None:
    with pytest.raises(StackError) as info:
        remove_bucket(FakeClients(LateDeliveries(late=99)), "lake", attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    assert "cannot delete bucket lake" in info.value.one_line()
    assert "late deliveries" in info.value.one_line()


# ---------------------------------------------------------------- the planner's reserved concurrency


def test_a_new_account_reserves_nothing_and_says_why_and_how_to_get_it() -> None:
    choice = choose_reservation(account_limit=10, unreserved=10, reserved_by_planner=0)
    assert choice.reserved == 0
    assert "allows 10 concurrent Lambda executions, 10 unreserved" in choice.message
    assert f"AWS keeps {MIN_UNRESERVED_CONCURRENCY} unreserved" in choice.message
    assert "quota of at least 101" in choice.message
    assert "L-B99A9384" in choice.message


def test_an_account_with_room_reserves_one_plan_at_a_time() -> None:
    choice = choose_reservation(account_limit=1000, unreserved=1000, reserved_by_planner=0)
    assert choice.reserved == 1
    assert "one plan at a time" in choice.message


@pytest.mark.parametrize(
    ("unreserved", "held", "reserved"),
    [
        (101, 0, 1),  # exactly room for one
        (100, 0, 0),  # one more would leave 99 unreserved
        (100, 1, 1),  # an update: the planner's own reservation is given back when it is replaced
        (99, 1, 0),
    ],
)
def test_the_100_unreserved_rule_at_its_edge(unreserved: int, held: int, reserved: int) -> None:
    assert choose_reservation(1000, unreserved, held).reserved == reserved


def test_an_explicit_reservation_is_kept_when_it_fits() -> None:
    assert choose_reservation(10, 10, 0, requested=0).reserved == 0
    choice = choose_reservation(1000, 1000, 0, requested=1)
    assert choice.reserved == 1
    assert "as asked" in choice.message


def test_an_explicit_reservation_that_cannot_fit_fails_early_in_one_line() -> None:
    with pytest.raises(ConfigurationError) as info:
        choose_reservation(10, 10, 0, requested=1)
    line = info.value.one_line()
    assert "PlanningReservedConcurrency=1 does not fit" in line
    assert "quota" in line
    assert "PlanningReservedConcurrency=0" in line
    assert "\n" not in line
    assert info.value.exit_code == 2


def _lambda_stubbed(settings_region: str = "eu-west-1") -> tuple[Any, Stubber]:
    client = boto3.client(
        "lambda", region_name=settings_region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return client, Stubber(client)


class OneClient:
    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str) -> Any:
        assert service == "lambda"
        return self._client


def _account(limit: int, unreserved: int) -> dict[str, Any]:
    return {"AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}}


def test_a_first_deploy_on_a_new_account_reads_the_quota_and_deploys_without_a_reservation() -> None:
    client, stub = _lambda_stubbed()
    stub.add_response("get_account_settings", _account(10, 10), {})
    stub.add_client_error(
        "get_function_concurrency",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"FunctionName": "shop-planning"},
    )
    said: list[str] = []
    settings = load_settings(target="aws", region="eu-west-1", stack_name="shop")
    with stub:
        chosen = planner_reservation(OneClient(client), settings, {}, said.append)  # type: ignore[arg-type]
    stub.assert_no_pending_responses()
    assert chosen == {RESERVATION_PARAMETER: "0"}
    (line,) = said
    assert "reserved concurrency 0" in line
    assert "quota" in line


def test_an_update_counts_the_planners_own_reservation_as_room() -> None:
    client, stub = _lambda_stubbed()
    stub.add_response("get_account_settings", _account(1000, 100), {})
    stub.add_response(
        "get_function_concurrency", {"ReservedConcurrentExecutions": 1}, {"FunctionName": "shop-planning"}
    )
    settings = load_settings(target="aws", region="eu-west-1", stack_name="shop")
    with stub:
        chosen = planner_reservation(OneClient(client), settings, {}, lambda _: None)  # type: ignore[arg-type]
    assert chosen == {RESERVATION_PARAMETER: "1"}


def test_a_deployer_that_may_not_read_the_quota_is_told_which_permission_to_add() -> None:
    client, stub = _lambda_stubbed()
    stub.add_client_error("get_account_settings", service_error_code="AccessDeniedException", http_status_code=403)
    settings = load_settings(target="aws", region="eu-west-1", stack_name="shop")
    with stub, pytest.raises(StackError) as info:
        planner_reservation(OneClient(client), settings, {}, lambda _: None)  # type: ignore[arg-type]
    assert "lambda:GetAccountSettings" in info.value.one_line()


def test_a_reservation_that_is_not_a_number_is_a_usage_error() -> None:
    settings = load_settings(target="aws", region="eu-west-1", stack_name="shop")
    with pytest.raises(ConfigurationError) as info:
        planner_reservation(OneClient(None), settings, {RESERVATION_PARAMETER: "one"}, lambda _: None)  # type: ignore[arg-type]
    assert info.value.exit_code == 2


# ---------------------------------------------------------------- the partition


def test_the_partition_comes_from_the_callers_identity(aws: AwsClients) -> None:
    assert Caller.of(aws) == Caller(account="123456789012", partition="aws")


def test_the_artifacts_bucket_policy_names_the_bucket_in_the_callers_partition(aws: AwsClients) -> None:
    ensure_artifacts_bucket(aws, "artifacts", "eu-west-1", partition="aws-cn")
    policy = json.loads(aws.client("s3").get_bucket_policy(Bucket="artifacts")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Resource"] == ["arn:aws-cn:s3:::artifacts", "arn:aws-cn:s3:::artifacts/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_budget_on_the_emulator_is_a_usage_error_before_anything_is_deployed(tmp_path: Any) -> None:
    from deployments.stack import deploy

    settings = load_settings(target="local", local_home=tmp_path)
    with pytest.raises(ConfigurationError) as info:
        deploy(settings, AwsClients.from_settings(settings), overrides={"MonthlyBudgetUsd": "50"})
    assert "emulator does not provide" in info.value.one_line()
    assert info.value.exit_code == 2
