"""The planning Lambda's package for AWS: Python 3.12 manylinux wheels, reproducible, within limits.

(Needs the package index, like `pip install`; the emulator runs the package built for its own
interpreter, so this is the only check of the AWS build.)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from deployments.lambda_package import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES, LambdaPlatform, build_package

pytestmark = pytest.mark.integration


def test_the_aws_package_bundles_cp312_manylinux_wheels_within_limits(tmp_path_factory: pytest.TempPathFactory) -> None:
    build = tmp_path_factory.mktemp("lambda-build")
    package = build_package(build, LambdaPlatform.aws())
    again = build_package(build, LambdaPlatform.aws())
    assert again.sha256 == package.sha256  # reproducible: redeploying unchanged code changes nothing
    assert package.zipped_bytes < MAX_ZIPPED_BYTES
    assert package.unzipped_bytes < MAX_UNZIPPED_BYTES
    names = zipfile.ZipFile(package.path).namelist()
    assert "storeops/planning/lambda_handler.py" in names
    assert "sql/shortages.sql" in names
    assert any(n.startswith("pydantic/") for n in names)
    assert any(n.startswith("pydantic_settings/") for n in names)
    cores = [n for n in names if n.startswith("pydantic_core/_pydantic_core") and n.endswith(".so")]
    assert cores
    assert all("cpython-312-x86_64-linux-gnu" in n for n in cores)
    assert not any(n.startswith(("pandas/", "numpy/", "awswrangler/", "boto3/")) for n in names)  # from the layer
    assert Path(package.path).name == f"planning-{package.sha256[:20]}.zip"
