"""The AWS SDK for pandas layer lookup against moto's SSM (AWS-only calls; no network)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ssm.models import Parameter, ssm_backends

from deployments.pandas_layer import find_layer, parameter_name, published_versions
from deployments.stack import pandas_layer_arn
from storeops.aws import AwsClients, botocore_config
from storeops.exceptions import StackError
from storeops.settings import load_settings

REGION = "eu-west-1"


def publish(name: str, value: str) -> None:
    """What AWS publishes under /aws/service (no account can write there, moto included)."""
    backend = ssm_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend._parameters[name].append(
        Parameter(
            account_id=DEFAULT_ACCOUNT_ID,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=0,
            version=1,
            data_type="text",
        )
    )


def layer_arn(version: str, number: int) -> str:
    return f"arn:aws:lambda:{REGION}:336392948345:layer:AWSSDKPandas-Python312:{number}#{version}"


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        for number, version in enumerate(["3.9.0", "3.16.1", "3.10.2", "2.20.1"], start=20):
            publish(parameter_name(version), layer_arn(version, number))
        # Other Pythons, architectures and the old region-qualified form must be ignored.
        publish("/aws/service/aws-sdk-pandas/3.99.0/py3.11/x86_64/layer-arn", "py311")
        publish("/aws/service/aws-sdk-pandas/3.98.0/py3.12/arm64/layer-arn", "arm")
        publish(f"/aws/service/aws-sdk-pandas/3.97.0/{REGION}/py3.12/x86_64/layer-arn", "regional")
        yield boto3.client("ssm", region_name=REGION)


def test_the_parameter_name_has_no_region_segment() -> None:
    assert parameter_name("3.17.1") == "/aws/service/aws-sdk-pandas/3.17.1/py3.12/x86_64/layer-arn"


def test_the_exact_version_is_used_when_published(ssm: object) -> None:
    choice = find_layer(ssm, "3.16.1")
    assert choice.exact
    assert choice.version == "3.16.1"
    assert choice.arn == layer_arn("3.16.1", 21)


def test_a_missing_version_falls_back_to_the_newest_of_the_same_major(ssm: object) -> None:
    assert published_versions(ssm) == ["2.20.1", "3.9.0", "3.10.2", "3.16.1"]  # numeric order, py3.12 x86_64 only
    choice = find_layer(ssm, "3.17.1")
    assert not choice.exact
    assert choice.version == "3.16.1"
    assert choice.arn == layer_arn("3.16.1", 21)


def test_no_layer_of_the_major_version_names_what_exists_and_the_fix(ssm: object) -> None:
    with pytest.raises(StackError) as info:
        find_layer(ssm, "4.0.0")
    line = info.value.one_line()
    assert "no AWS SDK for pandas layer 4.x for Python 3.12" in line
    assert "3.16.1" in line
    assert "STOREOPS_PANDAS_LAYER_ARN" in line


def test_the_deployer_says_which_layer_it_chose(ssm: object, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(target="aws", region=REGION)
    clients = AwsClients(boto3.Session(region_name=REGION), botocore_config(settings))
    monkeypatch.setattr("deployments.stack.version", lambda name: "3.17.1")
    said: list[str] = []
    assert pandas_layer_arn(clients, settings, said.append) == layer_arn("3.16.1", 21)
    (line,) = said
    assert "no AWS SDK for pandas layer 3.17.1" in line
    assert "using 3.16.1" in line


def test_an_explicit_layer_arn_skips_the_lookup(ssm: object) -> None:
    settings = load_settings(target="aws", region=REGION, pandas_layer_arn="arn:aws:lambda:x:1:layer:mine:3")
    clients = AwsClients(boto3.Session(region_name=REGION), botocore_config(settings))
    assert pandas_layer_arn(clients, settings) == "arn:aws:lambda:x:1:layer:mine:3"
