"""pyproject's boto3 minimum is at least the release that brought each AWS API feature the code calls.

The installed botocore having a feature proves nothing about the minimum a user may install; this reads the minimum
from pyproject.toml and compares it with the first release of each feature (boto3 1.35.x requires the botocore of
the same version: boto3 1.35.69's metadata says ``botocore>=1.35.69,<1.36``). A newer feature in the code needs a
row here and, if it is newer than the minimum, a higher minimum.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ApiFeature:
    service: str
    operation: str
    parameter: str
    first_release: str  # the first boto3/botocore release whose model has the parameter (botocore's .changes)
    used_in: tuple[str, ...]  # where the code passes it


FEATURES = (
    # S3 conditional writes (2024-08-20): the ledger's window records and fences are created once
    ApiFeature("s3", "PutObject", "IfNoneMatch", "1.35.2", ("storeops/ledger.py", "storeops/stores/state.py")),
    # S3 ETag-based conditional writes (2024-11-25): the simulator's state is replaced only if unchanged
    ApiFeature("s3", "PutObject", "IfMatch", "1.35.69", ("storeops/stores/state.py",)),
    # the claim a conditional put lost, returned with the failure (2023-06-29)
    ApiFeature(
        "dynamodb", "PutItem", "ReturnValuesOnConditionCheckFailure", "1.29.164", ("storeops/dispatch/claims.py",)
    ),
)


def boto3_minimum() -> Version:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (boto3,) = [Requirement(d) for d in dependencies if Requirement(d).name == "boto3"]
    (minimum,) = [Version(s.version) for s in boto3.specifier if s.operator in {">=", "=="}]
    return minimum


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f"{f.service}.{f.operation}.{f.parameter}")
def test_the_boto3_minimum_has_every_feature_the_code_calls(feature: ApiFeature) -> None:
    assert boto3_minimum() >= Version(feature.first_release), (
        f"{feature.service} {feature.operation} {feature.parameter} needs boto3>={feature.first_release}"
    )


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f"{f.service}.{f.operation}.{f.parameter}")
def test_the_table_names_real_parameters_that_the_code_passes(feature: ApiFeature) -> None:
    model = botocore.session.get_session().get_service_model(feature.service)
    assert feature.parameter in model.operation_model(feature.operation).input_shape.members
    for path in feature.used_in:
        text = (ROOT / path).read_text()
        assert f"{feature.parameter}=" in text or f'"{feature.parameter}"' in text, f"{path} no longer passes it"
