"""Find the AWS SDK for pandas managed Lambda layer for Python 3.12 (x86_64) in a region.

AWS publishes each layer as a public SSM parameter in every region where it exists:
``/aws/service/aws-sdk-pandas/<version>/py3.12/x86_64/layer-arn`` (aws-sdk-pandas's install
docs). A layer appears about a week after its release, so the locally installed awswrangler
may not have one yet: then the newest published layer of the same major version is used, and
the deploy says which.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from storeops.aws_errors import describe_error, is_not_found
from storeops.exceptions import StackError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

PARAMETER_ROOT = "/aws/service/aws-sdk-pandas/"
PYTHON = "py3.12"
ARCHITECTURE = "x86_64"
LAYER_PARAMETER = re.compile(
    "^"
    + re.escape(PARAMETER_ROOT)
    + r"(?P<version>\d+\.\d+\.\d+)/"
    + re.escape(f"{PYTHON}/{ARCHITECTURE}/layer-arn")
    + "$"
)
FIX = "set STOREOPS_PANDAS_LAYER_ARN to an AWS SDK for pandas layer ARN for Python 3.12 in your region"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerChoice:
    """The layer to attach, the awswrangler version it holds, and whether it is the local one."""

    arn: str
    version: str
    exact: bool


def parameter_name(wr_version: str) -> str:
    """The public SSM parameter of one awswrangler version's Python 3.12 x86_64 layer."""
    return f"{PARAMETER_ROOT}{wr_version}/{PYTHON}/{ARCHITECTURE}/layer-arn"


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def published_versions(ssm: SSMClient) -> list[str]:
    """Every awswrangler version with a Python 3.12 x86_64 layer in the client's region, oldest first."""
    versions: set[str] = set()
    paginator = ssm.get_paginator("describe_parameters")
    pages = paginator.paginate(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [PARAMETER_ROOT]}],
        PaginationConfig={"PageSize": 50},
    )
    for page in pages:
        for parameter in page.get("Parameters", []):
            match = LAYER_PARAMETER.match(parameter.get("Name", ""))
            if match:
                versions.add(match["version"])
    return sorted(versions, key=_version_key)


def _value(ssm: SSMClient, name: str) -> str | None:
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise StackError(f"cannot read SSM parameter {name}: {describe_error(exc)}", hint=FIX) from None


def find_layer(ssm: SSMClient, wr_version: str) -> LayerChoice:
    """The layer of ``wr_version``, else the newest published one of the same major version."""
    exact = _value(ssm, parameter_name(wr_version))
    if exact is not None:
        return LayerChoice(exact, wr_version, exact=True)
    try:
        versions = published_versions(ssm)
    except ClientError as exc:
        raise StackError(
            f"no AWS SDK for pandas layer {wr_version} for Python 3.12, and the published ones cannot be listed: "
            f"{describe_error(exc)}",
            hint=FIX,
        ) from None
    major = wr_version.split(".")[0]
    same_major = [v for v in versions if v.split(".")[0] == major]
    if not same_major:
        shown = ", ".join(versions[-5:]) or "none"
        raise StackError(
            f"no AWS SDK for pandas layer {major}.x for Python 3.12 in this region (published: {shown})",
            hint=FIX,
        )
    newest = same_major[-1]
    arn = _value(ssm, parameter_name(newest))
    if arn is None:  # listed a moment ago: only a concurrent unpublish gets here
        raise StackError(f"the AWS SDK for pandas layer {newest} disappeared while deploying", hint=FIX)
    logger.warning("no AWS SDK for pandas layer %s yet: using %s (%s)", wr_version, newest, arn)
    return LayerChoice(arn, newest, exact=False)
