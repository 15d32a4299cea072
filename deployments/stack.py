"""Deploy, inspect and delete the CloudFormation stack (same template for AWS and the emulator).

    python -m deployments.stack deploy|outputs|delete [--json] [--yes]

``deploy`` creates or updates the stack and waits; an unchanged template and package change
nothing. A failed creation is rolled back and deleted, so nothing is left half-created.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from deployments.lambda_package import LambdaPackage, LambdaPlatform, build_package
from storeops.aws import AwsClients, describe_error, describe_stack, stack_outputs
from storeops.cli import emit_json, run_cli
from storeops.exceptions import EmulatorError, StackError
from storeops.settings import Settings, load_settings

TEMPLATE_PATH = Path(__file__).with_name("template.yaml")
FAILED_NEEDS_DELETE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}

Progress = Callable[[str], None]


@dataclass
class DeployResult:
    stack_name: str
    action: str  # created | updated | unchanged
    outputs: dict[str, str] = field(default_factory=dict)
    package_key: str = ""
    seconds: float = 0.0


def _quiet(_: str) -> None:
    return None


def _stack_status(clients: AwsClients, stack_name: str) -> str | None:
    stack = describe_stack(clients, stack_name)
    return None if stack is None else str(stack["StackStatus"])


def _account_id(clients: AwsClients) -> str:
    return str(clients.client("sts").get_caller_identity()["Account"])


def artifacts_bucket_name(settings: Settings, account: str) -> str:
    return f"{settings.stack_name}-artifacts-{account}-{settings.region}"


def ensure_artifacts_bucket(clients: AwsClients, bucket: str, region: str) -> None:
    """The bucket the Lambda package is uploaded to: encrypted, private, TLS-only."""
    s3 = clients.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise StackError(f"cannot use artifacts bucket {bucket}: {describe_error(exc)}") from None
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def upload_package(clients: AwsClients, bucket: str, package: LambdaPackage) -> None:
    s3 = clients.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=package.s3_key)
        return  # content-addressed: already there
    except ClientError:
        pass
    s3.upload_file(str(package.path), bucket, package.s3_key)


def pandas_layer_arn(clients: AwsClients, settings: Settings) -> str:
    """The AWS SDK for pandas managed layer for Python 3.12 in the region (AWS only)."""
    if settings.is_local:
        return ""  # the emulator's interpreter already has awswrangler and pandas
    if settings.pandas_layer_arn:
        return settings.pandas_layer_arn
    try:
        wr_version = version("awswrangler")
    except PackageNotFoundError:  # pragma: no cover - a dependency of the project
        wr_version = "3.17.1"
    name = f"/aws/service/aws-sdk-pandas/{wr_version}/{settings.region}/py3.12/x86_64/layer-arn"
    try:
        return str(clients.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        raise StackError(
            f"cannot find the AWS SDK for pandas layer ({name}): {describe_error(exc)}",
            hint="set STOREOPS_PANDAS_LAYER_ARN to the layer ARN for Python 3.12 in your region",
        ) from None


def _first_failure(clients: AwsClients, stack_name: str) -> str:
    try:
        events = clients.client("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError:
        return "no events"
    failures = [
        e for e in reversed(events) if e.get("ResourceStatus", "").endswith("_FAILED") and e.get("ResourceStatusReason")
    ]
    if not failures:
        return "no failure reason recorded"
    first = failures[0]
    return f"{first['LogicalResourceId']} ({first['ResourceType']}): {first['ResourceStatusReason']}"


def _wait(clients: AwsClients, stack_name: str, progress: Progress, timeout: float = 1800.0) -> str:
    """Poll until the stack leaves *_IN_PROGRESS; polls quickly first, then every 5 s."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    last = ""
    while time.monotonic() < deadline:
        status = _stack_status(clients, stack_name) or "DELETE_COMPLETE"
        if status != last:
            progress(f"  {stack_name}: {status}")
            last = status
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
    raise StackError(f"stack {stack_name} still in progress after {timeout:.0f} s", hint="check the console")


def deploy(settings: Settings, clients: AwsClients, progress: Progress = _quiet) -> DeployResult:
    """Create or update the stack and wait; returns what was done and the outputs."""
    started = time.monotonic()
    clients.check_credentials()
    name = settings.stack_name
    status = _stack_status(clients, name)
    if status in FAILED_NEEDS_DELETE:
        raise StackError(
            f"stack {name} is in state {status} and cannot be updated",
            hint="delete it with `python -m deployments.stack delete --yes`, then deploy again",
        )
    if status and status.endswith("_IN_PROGRESS"):
        raise StackError(f"stack {name} is busy ({status})", hint="wait for it to finish, then deploy again")

    account = _account_id(clients)
    bucket = artifacts_bucket_name(settings, account)
    target = LambdaPlatform.this_interpreter() if settings.is_local else LambdaPlatform.aws()
    progress(f"building the planning Lambda package for Python {target.python_version}")
    package = build_package(settings.local_home / "build", target)
    ensure_artifacts_bucket(clients, bucket, settings.region)
    upload_package(clients, bucket, package)
    parameters = [
        {"ParameterKey": "LambdaCodeBucket", "ParameterValue": bucket},
        {"ParameterKey": "LambdaCodeKey", "ParameterValue": package.s3_key},
        {"ParameterKey": "PandasLayerArn", "ParameterValue": pandas_layer_arn(clients, settings)},
    ]
    request = {
        "StackName": name,
        "TemplateBody": TEMPLATE_PATH.read_text(),
        "Parameters": parameters,
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "project", "Value": "storeops"}],
    }
    cfn = clients.client("cloudformation")
    if status is None:
        progress(f"creating stack {name}")
        cfn.create_stack(**request, OnFailure="ROLLBACK")
        final = _wait(clients, name, progress)
        if final != "CREATE_COMPLETE":
            reason = _first_failure(clients, name)
            cfn.delete_stack(StackName=name)  # leave nothing half-created
            _wait(clients, name, progress)
            raise StackError(f"creating stack {name} failed ({final}): {reason}", hint="fix the cause and deploy again")
        action = "created"
    else:
        try:
            cfn.update_stack(**request)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise StackError(f"cannot update stack {name}: {describe_error(exc)}") from None
            action = "unchanged"
        else:
            progress(f"updating stack {name}")
            final = _wait(clients, name, progress)
            if final != "UPDATE_COMPLETE":
                reason = _first_failure(clients, name)
                raise StackError(
                    f"updating stack {name} failed ({final}): {reason}", hint="fix the cause and deploy again"
                )
            action = "updated"
    return DeployResult(
        stack_name=name,
        action=action,
        outputs=stack_outputs(clients, name),
        package_key=package.s3_key,
        seconds=round(time.monotonic() - started, 2),
    )


def _empty_bucket(clients: AwsClients, bucket: str) -> int:
    s3 = clients.client("s3")
    removed = 0
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
    except ClientError as exc:
        if "NoSuchBucket" not in str(exc):
            raise
    return removed


def delete(settings: Settings, clients: AwsClients, progress: Progress = _quiet) -> bool:
    """Empty the stack's buckets and delete the stack and the artifacts bucket; False if absent."""
    clients.check_credentials()
    name = settings.stack_name
    status = _stack_status(clients, name)
    account = _account_id(clients)
    artifacts = artifacts_bucket_name(settings, account)
    if status is not None:
        if status not in FAILED_NEEDS_DELETE and status != "DELETE_IN_PROGRESS":
            try:
                lake = stack_outputs(clients, name).get("DataLakeBucket")
            except StackError:
                lake = None
            if lake:
                progress(f"emptying s3://{lake} ({_empty_bucket(clients, lake)} objects)")
        clients.client("cloudformation").delete_stack(StackName=name)
        final = _wait(clients, name, progress)
        if final != "DELETE_COMPLETE":
            raise StackError(
                f"deleting stack {name} failed ({final}): {_first_failure(clients, name)}",
                hint="remove the blocking resource by hand, then delete again",
            )
    removed = _empty_bucket(clients, artifacts)
    try:
        clients.client("s3").delete_bucket(Bucket=artifacts)
        progress(f"deleted artifacts bucket {artifacts} ({removed} objects)")
    except ClientError:
        pass
    return status is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.stack",
        description="Deploy, inspect or delete the storeops CloudFormation stack "
        "(target from STOREOPS_TARGET: local emulator by default, or aws).",
    )
    parser.add_argument("action", choices=["deploy", "outputs", "delete"])
    parser.add_argument("--target", choices=["local", "aws"], help="override STOREOPS_TARGET")
    parser.add_argument("--stack-name", help="override STOREOPS_STACK_NAME (default storeops)")
    parser.add_argument("--yes", action="store_true", help="confirm `delete` (it removes the data lake)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    settings = load_settings(target=args.target, stack_name=args.stack_name)
    if args.action == "delete" and not args.yes:
        parser.error("delete removes the stack and its data lake: add --yes to confirm")
    clients = AwsClients.from_settings(settings)
    if settings.is_local:
        from deployments.localaws import LocalAws

        emulator = LocalAws(settings)
        if args.action == "deploy":
            emulator.start()
        elif not emulator.healthy():
            raise EmulatorError(
                f"the emulator is not running on {emulator.endpoint}",
                hint="start it with `python -m deployments.localaws start`",
            )

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.action == "deploy":
        result = deploy(settings, clients, progress=say)
        print(f"stack {result.stack_name} {result.action} in {result.seconds:.1f} s")
        for key, value in sorted(result.outputs.items()):
            print(f"  {key:22} {value}")
        payload: dict[str, Any] = {
            "stack": result.stack_name,
            "action": result.action,
            "outputs": result.outputs,
        }
    elif args.action == "outputs":
        outputs = stack_outputs(clients, settings.stack_name)
        for key, value in sorted(outputs.items()):
            print(f"{key:22} {value}")
        payload = {"stack": settings.stack_name, "outputs": outputs}
    else:
        existed = delete(settings, clients, progress=say)
        print(f"stack {settings.stack_name} {'deleted' if existed else 'did not exist'}")
        payload = {"stack": settings.stack_name, "deleted": existed}
    if args.json:
        emit_json(payload)
    return 0


if __name__ == "__main__":
    run_cli(main)
