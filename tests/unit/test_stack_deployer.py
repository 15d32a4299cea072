"""The deployer's pure parts, and its AWS-only calls against moto (STS, S3): no network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deployments.stack import (
    MANAGED_PARAMETERS,
    _account_id,
    artifacts_bucket_name,
    lake_bucket_name,
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
