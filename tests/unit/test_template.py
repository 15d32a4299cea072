"""Static checks of the CloudFormation template: cfn-lint, least privilege, encryption."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from deployments.stack import TEMPLATE_PATH


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(TEMPLATE_PATH))
    assert not errors
    return parsed


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for role in resources_of(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            found.extend(policy["PolicyDocument"]["Statement"])
    return found


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    statements = _statements(template)
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in actions, statement
        assert not any(a.endswith(":*") for a in actions), statement
        assert "*" not in resources, statement
    for role in resources_of(template, "AWS::IAM::Role").values():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        assert not any("FullAccess" in str(arn) for arn in managed)


def test_everything_is_encrypted_at_rest_and_the_lake_is_private(template: dict[str, Any]) -> None:
    (bucket,) = resources_of(template, "AWS::S3::Bucket").values()
    assert bucket["Properties"]["BucketEncryption"]
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    for queue in resources_of(template, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (stream,) = resources_of(template, "AWS::KinesisFirehose::DeliveryStream").values()
    assert stream["Properties"]["DeliveryStreamEncryptionConfigurationInput"]["KeyType"]
    for table in resources_of(template, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True


def test_bucket_policy_denies_insecure_transport(template: dict[str, Any]) -> None:
    (policy,) = resources_of(template, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_firehose_writes_hive_style_time_partitions(template: dict[str, Any]) -> None:
    (stream,) = resources_of(template, "AWS::KinesisFirehose::DeliveryStream").values()
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"] == "inventory/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    assert destination["ErrorOutputPrefix"].startswith("errors/")
    # records arrive gzip-compressed (see storeops/stores/firehose.py): objects are gzip, by extension
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    assert destination["FileExtension"] == ".json.gz"
    assert destination["BufferingHints"]


def test_dispatch_queue_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    queue = template["Resources"]["DispatchQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
