"""Deploy, check, inspect and delete the CloudFormation stack (same template for AWS and the emulator).

    python -m deployments.stack deploy|verify|outputs|delete [--parameter KEY=VALUE ...] [--json] [--yes]
    python -m deployments.stack deploy --stores 2000 --products 30000 --reading-minutes 15

``--stores``/``--products`` size the stack for a chain: the workgroup's per-query Athena cutoff becomes
``storeops.planning.scan_budget.cutoff_for`` of that size (the worst query, a missed rollup included, at most 80%
of it), and later deploys keep it.

``deploy`` creates or updates the stack and waits; an unchanged template and package change
nothing. The template goes to CloudFormation from the artifacts bucket (``TemplateURL``: a request body holds at
most 51,200 bytes); on the emulator without its AWS-only block (``template_for``). Before anything is built, the
planner's reserved concurrency is chosen from the account's Lambda concurrency (``choose_reservation``: 1 where AWS
allows it, else 0, said in the progress output; ``--parameter PlanningReservedConcurrency=N`` is checked and kept).
A failed creation is rolled back and deleted, so nothing is left half-created.
``verify`` checks the deployed stack end to end (``deployments/verify.py``). ``delete`` removes
the stack, then the data lake it retains and the artifacts bucket.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, Self

from botocore.exceptions import ClientError
from pydantic import Field, model_validator
from pydantic_settings import CliPositionalArg, SettingsConfigDict

from deployments.lambda_package import LambdaPackage, LambdaPlatform, build_package
from deployments.pandas_layer import find_layer
from deployments.processes import home_lock
from deployments.verify import verify
from flows.cli import CliOptions
from storeops.aws import (
    STABLE_STACK_STATES,
    AwsClients,
    StackResources,
    describe_stack,
    stack_outputs,
)
from storeops.aws_errors import describe_error, error_code, is_missing_bucket, is_not_found
from storeops.cli import emit_json, run_cli
from storeops.exceptions import ConfigurationError, EmulatorError, StackError
from storeops.planning.scan_budget import ChainSize, cutoff_for, worst_query
from storeops.s3 import delete_objects
from storeops.settings import Settings, load_settings

TEMPLATE_PATH = Path(__file__).with_name("template.yaml")
CUTOFF_PARAMETER = "BytesScannedCutoffPerQuery"
RESERVATION_PARAMETER = "PlanningReservedConcurrency"
PLANNER_RESERVATION = 1  # one plan at a time: a second is refused while one runs
MIN_UNRESERVED_CONCURRENCY = 100  # AWS refuses a reservation that leaves fewer unreserved executions
CONCURRENCY_QUOTA_CODE = "L-B99A9384"  # Service Quotas: Lambda "Concurrent executions"
BUDGET_PARAMETER = "MonthlyBudgetUsd"
# The template's resources the emulator's CloudFormation does not know (the budget), between two marker comments.
AWS_ONLY_BLOCK = re.compile(r"^  # aws-only: begin\b.*?^  # aws-only: end[^\n]*\n", re.DOTALL | re.MULTILINE)
FAILED_NEEDS_DELETE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}

Progress = Callable[[str], None]
logger = logging.getLogger(__name__)


@dataclass
class DeployResult:
    stack_name: str
    action: str  # created | updated | unchanged | exists (only_if_missing)
    outputs: dict[str, str] = field(default_factory=dict)
    package_key: str = ""
    seconds: float = 0.0


def _quiet(_: str) -> None:
    return None


def _stack_status(clients: AwsClients, stack_name: str) -> str | None:
    stack = describe_stack(clients, stack_name)
    return None if stack is None else str(stack["StackStatus"])


@dataclass(frozen=True)
class Caller:
    """The deploying identity's account and partition (``aws``, ``aws-cn``, ``aws-us-gov``), from one STS call."""

    account: str
    partition: str

    @classmethod
    def of(cls, clients: AwsClients) -> Caller:
        identity = clients.client("sts").get_caller_identity()
        # arn:<partition>:sts::<account>:assumed-role/...: the partition the credentials (and the region) are in
        return cls(account=str(identity["Account"]), partition=str(identity["Arn"]).split(":")[1])


def _account_id(clients: AwsClients) -> str:
    return Caller.of(clients).account


def artifacts_bucket_name(settings: Settings, account: str) -> str:
    return f"{settings.stack_name}-artifacts-{account}-{settings.region}"


def ensure_artifacts_bucket(clients: AwsClients, bucket: str, region: str, partition: str = "aws") -> None:
    """The bucket the Lambda package is uploaded to: encrypted, private, TLS-only (its policy names the bucket
    in ``partition``, the caller's)."""
    s3 = clients.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if not is_missing_bucket(exc):
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
                "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
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


def pandas_layer_arn(clients: AwsClients, settings: Settings, progress: Progress = _quiet) -> str:
    """The AWS SDK for pandas managed layer for Python 3.12 in the region (AWS only)."""
    if settings.is_local:
        return ""  # the emulator's interpreter already has awswrangler and pandas
    if settings.pandas_layer_arn:
        return settings.pandas_layer_arn
    try:
        wr_version = version("awswrangler")
    except PackageNotFoundError:  # pragma: no cover - a dependency of the project
        wr_version = "3.17.1"
    choice = find_layer(clients.client("ssm"), wr_version)
    if choice.exact:
        progress(f"AWS SDK for pandas layer {choice.version}: {choice.arn}")
    else:
        progress(
            f"no AWS SDK for pandas layer {wr_version} in {settings.region} yet (layers follow a release by about a "
            f"week): using {choice.version}, {choice.arn}"
        )
    return choice.arn


@dataclass(frozen=True)
class ReservationChoice:
    """``PlanningReservedConcurrency`` for this deploy and the line that says why."""

    reserved: int
    message: str


def choose_reservation(
    account_limit: int, unreserved: int, reserved_by_planner: int, requested: int | None = None
) -> ReservationChoice:
    """The planner's reserved concurrency from the account's Lambda concurrency (``GetAccountSettings``).

    AWS refuses a reservation that leaves fewer than ``MIN_UNRESERVED_CONCURRENCY`` executions unreserved; the
    planner's own reservation (``reserved_by_planner``, on an update) is given back when it is replaced, so it
    counts as room. ``requested`` (the user's ``--parameter``) is kept when it fits and refused in one line when
    it does not; otherwise ``PLANNER_RESERVATION`` where there is room, else 0, said with the numbers.
    """
    room = unreserved + reserved_by_planner - MIN_UNRESERVED_CONCURRENCY
    numbers = (
        f"the account allows {account_limit:,} concurrent Lambda executions, {unreserved:,} unreserved"
        + (f" (the planner holds {reserved_by_planner:,})" if reserved_by_planner else "")
        + f", and AWS keeps {MIN_UNRESERVED_CONCURRENCY} unreserved"
    )
    quota = (
        f"ask for a Lambda concurrent executions quota of at least {MIN_UNRESERVED_CONCURRENCY + PLANNER_RESERVATION}"
        f" (Service Quotas, code {CONCURRENCY_QUOTA_CODE})"
    )
    if requested is not None:
        if requested < 0:
            raise ConfigurationError(f"{RESERVATION_PARAMETER}={requested}: expected 0 or more")
        if requested > max(room, 0):
            raise ConfigurationError(
                f"{RESERVATION_PARAMETER}={requested} does not fit: {numbers}",
                hint=f"{quota}, or deploy with --parameter {RESERVATION_PARAMETER}=0",
            )
        return ReservationChoice(requested, f"planner reserved concurrency {requested}, as asked ({numbers})")
    if room >= PLANNER_RESERVATION:
        return ReservationChoice(
            PLANNER_RESERVATION, f"planner reserved concurrency {PLANNER_RESERVATION}: one plan at a time ({numbers})"
        )
    return ReservationChoice(
        0,
        f"planner reserved concurrency 0 (none): {numbers}, so nothing can be reserved; two plans may then "
        f"overlap. For one plan at a time, {quota}, then deploy again",
    )


def planning_function_name(settings: Settings) -> str:
    """The planning function's name, as the template names it."""
    return f"{settings.stack_name}-planning"


def planner_reservation(
    clients: AwsClients, settings: Settings, overrides: dict[str, str], progress: Progress
) -> dict[str, str]:
    """``PlanningReservedConcurrency`` for this deploy (``choose_reservation`` over the account's settings), said
    in the progress output; an explicit override is checked against the account and kept."""
    text = overrides.get(RESERVATION_PARAMETER)
    requested: int | None = None
    if text is not None:
        try:
            requested = int(text)
        except ValueError:
            raise ConfigurationError(f"{RESERVATION_PARAMETER}={text!r}: expected a whole number, 0 or 1") from None
    lam = clients.client("lambda")
    try:
        limits = lam.get_account_settings()["AccountLimit"]
        try:
            held = lam.get_function_concurrency(FunctionName=planning_function_name(settings))
            reserved = int(held.get("ReservedConcurrentExecutions", 0))
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            reserved = 0  # no function yet: a first deploy
    except ClientError as exc:
        if requested is not None:  # the user's choice stands; CloudFormation refuses it if it cannot fit
            progress(f"cannot read the account's Lambda concurrency ({describe_error(exc)}): {requested}, as asked")
            return {RESERVATION_PARAMETER: str(requested)}
        raise StackError(
            f"cannot read the account's Lambda concurrency: {describe_error(exc)}",
            hint=f"allow lambda:GetAccountSettings and lambda:GetFunctionConcurrency, or deploy with --parameter "
            f"{RESERVATION_PARAMETER}=0 (or 1)",
        ) from None
    choice = choose_reservation(
        int(limits["ConcurrentExecutions"]),
        int(limits["UnreservedConcurrentExecutions"]),
        reserved,
        requested,
    )
    progress(choice.message)
    return {RESERVATION_PARAMETER: str(choice.reserved)}


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


# Parameters the deployer always sets itself; the others keep their value unless overridden.
MANAGED_PARAMETERS = frozenset(
    {"LambdaCodeBucket", "LambdaCodeKey", "LakeBucketExists", "PandasLayerArn", "ScannedBytesSource"}
)


def template_for(settings: Settings, template: str) -> str:
    """The template as deployed to ``settings``' target: on the emulator without its AWS-only block (the budget,
    which is off unless ``MonthlyBudgetUsd`` is set)."""
    if not settings.is_local:
        return template
    local, removed = AWS_ONLY_BLOCK.subn("", template)
    if removed != 1:
        raise StackError("the template's aws-only block is not marked once", hint="see deployments/template.yaml")
    return local


def upload_template(clients: AwsClients, bucket: str, template: str) -> str:
    """The template in the artifacts bucket under a key of its hash, as the ``TemplateURL`` CloudFormation reads:
    a request's ``TemplateBody`` may hold 51,200 bytes, an S3 object 1 MB. Path-style, on the client's endpoint
    (the region's, in its partition's domain, or the emulator's)."""
    body = template.encode()
    key = f"templates/template-{hashlib.sha256(body).hexdigest()[:16]}.yaml"
    s3 = clients.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-yaml")
    return f"{str(s3.meta.endpoint_url).rstrip('/')}/{bucket}/{key}"


def template_parameters(clients: AwsClients, template_url: str) -> set[str]:
    """The parameters the template declares (CloudFormation's own reading of it)."""
    try:
        declared = clients.client("cloudformation").validate_template(TemplateURL=template_url)["Parameters"]
    except ClientError as exc:
        raise StackError(f"the template is not valid: {describe_error(exc)}") from None
    return {str(p["ParameterKey"]) for p in declared}


def stack_parameters(
    managed: dict[str, str],
    overrides: dict[str, str],
    declared: set[str],
    previous: set[str],
) -> list[dict[str, Any]]:
    """The CreateStack/UpdateStack parameters: the deployer's own, the user's overrides, and, for
    every other parameter the stack already has, its previous value (a redeploy keeps a cutoff
    set once with ``--parameter``)."""
    unknown = sorted(set(overrides) - declared)
    if unknown:
        raise ConfigurationError(
            f"unknown stack parameter {', '.join(unknown)}",
            hint="choose from " + ", ".join(sorted(declared - MANAGED_PARAMETERS)),
        )
    fixed = sorted(set(overrides) & MANAGED_PARAMETERS)
    if fixed:
        raise ConfigurationError(
            f"stack parameter {', '.join(fixed)} is set by the deployer",
            hint="for the layer set STOREOPS_PANDAS_LAYER_ARN; the others follow the target",
        )
    parameters: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in managed.items()]
    parameters += [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(overrides.items())]
    keep = sorted((declared & previous) - MANAGED_PARAMETERS - set(overrides))
    parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in keep]
    return parameters


def stack_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """One deploy of a stack at a time on this machine (flows that find no stack deploy it, perhaps together)."""
    return home_lock(settings.local_home, f"stack-{settings.stack_name}")


def deploy(
    settings: Settings,
    clients: AwsClients,
    progress: Progress = _quiet,
    overrides: dict[str, str] | None = None,
    *,
    only_if_missing: bool = False,
) -> DeployResult:
    """Create or update the stack and wait; returns what was done and the outputs.

    ``overrides`` sets template parameters (e.g. ``BytesScannedCutoffPerQuery``); a later deploy
    without them keeps their values. Deploys of one stack take turns (``stack_lock``); with
    ``only_if_missing`` a stack that exists with every output by the time this one's turn comes
    is left as it is.
    """
    with stack_lock(settings):
        if only_if_missing and _stack_status(clients, settings.stack_name) in STABLE_STACK_STATES:
            try:
                StackResources.load(clients, settings.stack_name)
            except StackError:  # deployed from an older template: update it
                pass
            else:
                return DeployResult(settings.stack_name, "exists", stack_outputs(clients, settings.stack_name))
        return _deploy(settings, clients, progress, overrides or {})


def _deploy(settings: Settings, clients: AwsClients, progress: Progress, overrides: dict[str, str]) -> DeployResult:
    started = time.monotonic()
    clients.check_credentials()
    if settings.is_local and overrides.get(BUDGET_PARAMETER, "0").strip() not in {"0", ""}:
        raise ConfigurationError(
            f"{BUDGET_PARAMETER} needs AWS Budgets, which the emulator does not provide",
            hint=f"leave {BUDGET_PARAMETER} out on the local target; set it when deploying to aws",
        )
    name = settings.stack_name
    status = _stack_status(clients, name)
    if status in FAILED_NEEDS_DELETE:
        raise StackError(
            f"stack {name} is in state {status} and cannot be updated",
            hint="delete it with `python -m deployments.stack delete --yes`, then deploy again",
        )
    if status and status.endswith("_IN_PROGRESS"):
        raise StackError(f"stack {name} is busy ({status})", hint="wait for it to finish, then deploy again")
    existing = describe_stack(clients, name) if status else None
    previous = {str(p["ParameterKey"]) for p in (existing or {}).get("Parameters", [])}

    caller = Caller.of(clients)
    account = caller.account
    # Checked before anything is built or uploaded: a reservation that cannot fit fails here, in one line.
    overrides = {**overrides, **planner_reservation(clients, settings, overrides, progress)}
    bucket = artifacts_bucket_name(settings, account)
    ensure_artifacts_bucket(clients, bucket, settings.region, caller.partition)
    template_url = upload_template(clients, bucket, template_for(settings, TEMPLATE_PATH.read_text()))
    declared = template_parameters(clients, template_url)
    target = LambdaPlatform.this_interpreter() if settings.is_local else LambdaPlatform.aws()
    progress(f"building the planning Lambda package for Python {target.python_version}")
    package = build_package(settings.local_home / "build", target)
    upload_package(clients, bucket, package)
    managed = {
        "LakeBucketExists": _lake_bucket_exists(clients, settings, account, existing, progress),
        "LambdaCodeBucket": bucket,
        "LambdaCodeKey": package.s3_key,
        "PandasLayerArn": pandas_layer_arn(clients, settings, progress),
        # The emulator has no billing: its Athena reports the bytes under the selected partitions.
        "ScannedBytesSource": "s3-estimate" if settings.is_local else "athena",
    }
    parameters = stack_parameters(managed, overrides, declared, previous)
    request = {
        "StackName": name,
        "TemplateURL": template_url,
        "Parameters": parameters,
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "project", "Value": "storeops"}],
    }
    action = apply_stack(clients, name, request, progress)
    return DeployResult(
        stack_name=name,
        action=action,
        outputs=stack_outputs(clients, name),
        package_key=package.s3_key,
        seconds=round(time.monotonic() - started, 2),
    )


def apply_stack(clients: AwsClients, name: str, request: dict[str, Any], progress: Progress) -> str:
    """Create or update the stack ``name`` with ``request`` and wait: ``created``, ``updated`` or ``unchanged``.

    A failed creation is rolled back and deleted (nothing is left half-created); a stack another deploy is
    creating at the same moment is waited for.
    """
    cfn = clients.client("cloudformation")
    if _stack_status(clients, name) is None:
        progress(f"creating stack {name}")
        try:
            cfn.create_stack(**request, OnFailure="ROLLBACK")
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise
            progress(f"stack {name} is being created by another deploy; waiting for it")
        final = _wait(clients, name, progress)
        if final != "CREATE_COMPLETE":
            reason = _first_failure(clients, name)  # read before the rolled-back stack is deleted
            cfn.delete_stack(StackName=name)
            _wait(clients, name, progress)
            raise StackError(f"creating stack {name} failed ({final}): {reason}", hint="fix the cause and deploy again")
        return "created"
    try:
        cfn.update_stack(**request)
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return "unchanged"
        raise StackError(f"cannot update stack {name}: {describe_error(exc)}") from None
    progress(f"updating stack {name}")
    final = _wait(clients, name, progress)
    if final != "UPDATE_COMPLETE":
        reason = _first_failure(clients, name)
        raise StackError(f"updating stack {name} failed ({final}): {reason}", hint="fix the cause and deploy again")
    return "updated"


def _lake_bucket_exists(
    clients: AwsClients, settings: Settings, account: str, stack: dict[str, Any] | None, progress: Progress
) -> str:
    """``LakeBucketExists``: what the stack said before, or, for a new stack, whether a lake retained
    from an earlier stack of this name is there to adopt."""
    if stack is not None:
        before = {str(p["ParameterKey"]): str(p.get("ParameterValue", "")) for p in stack.get("Parameters", [])}
        return before.get("LakeBucketExists", "false")
    lake = lake_bucket_name(settings, account)
    try:
        clients.client("s3").head_bucket(Bucket=lake)
    except ClientError:
        return "false"
    progress(f"using the data lake s3://{lake} that an earlier stack {settings.stack_name} left (its data is kept)")
    return "true"


def lake_bucket_name(settings: Settings, account: str) -> str:
    """The data lake's name, as the template names it (it outlives the stack: DeletionPolicy Retain)."""
    return f"{settings.stack_name}-lake-{account}-{settings.region}"


def _empty_bucket(clients: AwsClients, bucket: str) -> int:
    """Delete every object, every version and every delete marker; the count removed."""
    s3 = clients.client("s3")
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = [
            {"Key": v["Key"], **({"VersionId": v["VersionId"]} if v.get("VersionId") not in (None, "null") else {})}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        outcome = delete_objects(s3, bucket, entries)
        if outcome.failed:
            raise StackError(
                f"cannot empty s3://{bucket}: {len(outcome.failed)} objects not deleted "
                f"({next(iter(outcome.failed.values()))})",
                hint="check your s3:DeleteObject and s3:DeleteObjectVersion rights, then delete again",
            )
        removed += len(entries)
    return removed


def remove_bucket(
    clients: AwsClients, bucket: str, attempts: int = 6, pause: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> int | None:
    """Empty and delete ``bucket``; None if it did not exist, else the objects removed.

    Firehose may still flush a buffer after its stream is deleted: an object that lands between
    emptying and deleting (``BucketNotEmpty``) is emptied again, up to ``attempts`` times.
    """
    s3 = clients.client("s3")
    removed = 0
    for attempt in range(1, attempts + 1):
        try:
            removed += _empty_bucket(clients, bucket)
            s3.delete_bucket(Bucket=bucket)
            return removed
        except ClientError as exc:
            if is_missing_bucket(exc):
                return None if attempt == 1 and not removed else removed
            if error_code(exc) != "BucketNotEmpty" or attempt == attempts:
                raise StackError(
                    f"cannot delete bucket {bucket}: {describe_error(exc)}",
                    hint="wait a minute for late deliveries, then delete again",
                ) from None
            logger.info("bucket %s received objects while being deleted: emptying it again", bucket)
            sleep(pause * attempt)
    return removed  # pragma: no cover - the loop returns or raises


@dataclass(frozen=True)
class DeleteResult:
    stack_existed: bool
    lake_objects: int | None  # objects removed with the lake; None if there was no lake

    @property
    def deleted(self) -> bool:
        return self.stack_existed or self.lake_objects is not None


def delete(settings: Settings, clients: AwsClients, progress: Progress = _quiet) -> DeleteResult:
    """Delete the stack, then its retained data lake and the artifacts bucket."""
    clients.check_credentials()
    name = settings.stack_name
    status = _stack_status(clients, name)
    account = _account_id(clients)
    lake = lake_bucket_name(settings, account)
    if status is not None:
        if status not in FAILED_NEEDS_DELETE and status != "DELETE_IN_PROGRESS":
            with contextlib.suppress(StackError):
                lake = stack_outputs(clients, name).get("DataLakeBucket") or lake
        clients.client("cloudformation").delete_stack(StackName=name)
        final = _wait(clients, name, progress)
        if final != "DELETE_COMPLETE":
            raise StackError(
                f"deleting stack {name} failed ({final}): {_first_failure(clients, name)}",
                hint="remove the blocking resource by hand, then delete again",
            )
    # The lake is retained by CloudFormation (DeletionPolicy Retain): removing it is this command's job.
    lake_removed = remove_bucket(clients, lake)
    if lake_removed is not None:
        progress(f"deleted data lake s3://{lake} ({lake_removed} objects)")
    artifacts = artifacts_bucket_name(settings, account)
    artifacts_removed = remove_bucket(clients, artifacts)
    if artifacts_removed is not None:
        progress(f"deleted artifacts bucket {artifacts} ({artifacts_removed} objects)")
    return DeleteResult(stack_existed=status is not None, lake_objects=lake_removed)


def sized_cutoff(size: ChainSize) -> tuple[int, str]:
    """The per-query cutoff a stack for a chain of ``size`` is deployed with (``scan_budget.cutoff_for``), and a
    line saying which query sets it."""
    cutoff = cutoff_for(size)
    query, scanned = worst_query(size)
    line = (
        f"Athena per-query cutoff {cutoff / 2**30:.0f} GiB for {size.stores:,} x {size.products:,} (a reading every "
        f"{size.reading_minutes:g} min): the worst query, {query}, scans {scanned / 1e9:.1f} GB"
        f" ({scanned / cutoff:.0%} of it)"
    )
    return cutoff, line


class StackOptions(CliOptions):
    """Deploy, inspect or delete the storeops CloudFormation stack (target from STOREOPS_TARGET: local emulator
    by default, or aws)."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.stack")

    action: CliPositionalArg[Literal["deploy", "verify", "outputs", "delete"]] = Field(
        description="deploy: create or update; verify: check the deployed stack end to end (exit 1 naming the step "
        "that failed); outputs: resource names; delete: the stack and its data"
    )
    target: Literal["local", "aws"] | None = Field(None, description="Override STOREOPS_TARGET.")
    stack_name: str | None = Field(None, description="Override STOREOPS_STACK_NAME (default storeops).")
    yes: bool = Field(False, description="Confirm `delete` (it removes the data lake).")
    parameter: list[str] = Field(
        [],
        description="deploy: set a template parameter, e.g. BytesScannedCutoffPerQuery=1000000000 (kept by later "
        "deploys)",
        json_schema_extra={"metavar": "KEY=VALUE"},
    )
    stores: int | None = Field(
        None,
        ge=1,
        description="deploy: size the stack for this many stores (with --products): sets the Athena per-query cutoff",
    )
    products: int | None = Field(None, ge=1, description="deploy: products per store (with --stores).")
    reading_minutes: float = Field(
        1.0,
        gt=0,
        description="deploy: minutes between two readings of a store-product (with --stores; the deployed cadence)",
    )

    @model_validator(mode="after")
    def _combined(self) -> Self:
        if self.action == "delete" and not self.yes:
            raise ValueError("delete removes the stack and its data lake: add --yes to confirm")
        for item in self.parameter:
            key, sep, _ = item.partition("=")
            if not sep or not key:
                raise ValueError(
                    f"--parameter {item!r}: expected KEY=VALUE, e.g. BytesScannedCutoffPerQuery=1000000000"
                )
        if (self.parameter or self.stores or self.products) and self.action != "deploy":
            raise ValueError("--parameter, --stores and --products apply to deploy only")
        if (self.stores is None) != (self.products is None):
            raise ValueError("--stores and --products go together: give both, e.g. --stores 2000 --products 1000")
        if self.stores is not None and any(item.startswith(f"{CUTOFF_PARAMETER}=") for item in self.parameter):
            raise ValueError(f"--stores/--products set {CUTOFF_PARAMETER}: give one or the other")
        return self

    def overrides(self) -> tuple[dict[str, str], str]:
        """The template parameters ``deploy`` sets (``--parameter``, the cutoff ``--stores/--products`` size), and
        the sizing's explanation ("" without ``--stores``)."""
        overrides = dict(item.split("=", 1) for item in self.parameter)
        if self.stores is None or self.products is None:
            return overrides, ""
        cutoff, sizing = sized_cutoff(ChainSize(self.stores, self.products, self.reading_minutes))
        return overrides | {CUTOFF_PARAMETER: str(cutoff)}, sizing


def main(argv: list[str] | None = None) -> int:
    args = StackOptions.parse_or_exit(argv)
    settings = load_settings(target=args.target, stack_name=args.stack_name)
    overrides, sizing = args.overrides()
    clients = AwsClients.from_settings(settings)
    if settings.is_local:
        _ensure_emulator(settings, start=args.action == "deploy")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json_output else sys.stdout, flush=True)

    if args.action == "deploy":
        if sizing:
            say(sizing)
        code, payload = _deploy_command(settings, clients, overrides, say)
    elif args.action == "verify":
        code, payload = _verify_command(settings, clients, say)
    elif args.action == "outputs":
        code, payload = _outputs_command(settings, clients)
    else:
        code, payload = _delete_command(settings, clients, say)
    if args.json_output:
        emit_json(payload)
    return code


def _ensure_emulator(settings: Settings, start: bool) -> None:
    """Start the emulator (``start``), or refuse if it is not running."""
    from deployments.localaws import LocalAws

    emulator = LocalAws(settings)
    if start:
        emulator.start()
    elif not emulator.healthy():
        raise EmulatorError(
            f"the emulator is not running on {emulator.endpoint}",
            hint="start it with `python -m deployments.localaws start`",
        )


def _deploy_command(
    settings: Settings, clients: AwsClients, overrides: dict[str, str], say: Progress
) -> tuple[int, dict[str, Any]]:
    result = deploy(settings, clients, progress=say, overrides=overrides)
    print(f"stack {result.stack_name} {result.action} in {result.seconds:.1f} s")
    width = max(map(len, result.outputs), default=0)
    for key, value in sorted(result.outputs.items()):
        print(f"  {key:{width}} {value}")
    return 0, {"stack": result.stack_name, "action": result.action, "outputs": result.outputs}


def _verify_command(settings: Settings, clients: AwsClients, say: Progress) -> tuple[int, dict[str, Any]]:
    say(f"verifying stack {settings.stack_name} on {settings.target}")
    clients.configure_awswrangler()
    report = verify(settings, clients, progress=say)
    failed = report.failed_step
    if failed is None:
        print(f"stack {settings.stack_name} verified in {report.seconds:.1f} s: {len(report.steps)} steps passed")
    else:
        print(f"verify failed at step {failed.name}: {failed.detail}", file=sys.stderr)
    return (0 if failed is None else 1), report.as_dict()


def _outputs_command(settings: Settings, clients: AwsClients) -> tuple[int, dict[str, Any]]:
    outputs = stack_outputs(clients, settings.stack_name)
    width = max(map(len, outputs), default=0)
    for key, value in sorted(outputs.items()):
        print(f"{key:{width}} {value}")
    return 0, {"stack": settings.stack_name, "outputs": outputs}


def _delete_command(settings: Settings, clients: AwsClients, say: Progress) -> tuple[int, dict[str, Any]]:
    deleted = delete(settings, clients, progress=say)
    if deleted.stack_existed:
        print(f"stack {settings.stack_name} deleted")
    elif deleted.lake_objects is not None:
        print(f"stack {settings.stack_name} did not exist; the data lake it retained is deleted")
    else:
        print(f"stack {settings.stack_name} did not exist")
    return 0, {
        "stack": settings.stack_name,
        "deleted": deleted.deleted,
        "stack_existed": deleted.stack_existed,
        "lake_objects_deleted": deleted.lake_objects,
    }


if __name__ == "__main__":
    run_cli(main)
