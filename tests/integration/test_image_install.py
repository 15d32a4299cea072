"""The image's install, without a container engine: the files the Dockerfile copies, installed by the
Dockerfile's own RUN line into a fresh virtualenv, then every flow entrypoint prefect.yaml names loaded by
that environment's Python from the image's working directory, as a flow run there would.

SLOW (about two and a half minutes here): it installs the project and its dependencies into a new environment
(``tests/image_install.py``), first in its process while the other runs tests (tests/conftest.py). Not a unit test
for that reason; it needs no emulator. It uses the interpreter running the tests (Python 3.12, the image's, added
3.5 minutes of downloads in CI for no check this one lacks: the Lambda package test covers the cp312 wheels).
"""

from __future__ import annotations

import subprocess

import yaml

from tests import image_install
from tests.conftest import ROOT

CHECK = """
import importlib.util, os, sys
from prefect.flows import load_flow_from_entrypoint
from storeops.settings import project_root
from storeops.sql import load_query
for entrypoint in sys.argv[1:]:
    print("loaded", entrypoint, load_flow_from_entrypoint(entrypoint).name)
assert project_root() == __import__("pathlib").Path.cwd(), project_root()  # sql/ beside the code
assert "SELECT" in load_query("rollup_hour", inventory_table="inventory").upper()
assert importlib.util.find_spec("prefect_aws.workers.ecs_worker") is not None  # the worker's package
assert importlib.util.find_spec("ministack") is None  # no emulator in the image
print("python", sys.version.split()[0])
"""


def test_the_dockerfile_install_loads_every_flow_entrypoint() -> None:
    with image_install.installed_image() as installed:
        assert installed.error is None, repr(installed.error)
        assert installed.created is not None
        assert installed.created.returncode == 0, installed.created.stderr
        result = installed.installed
        assert result is not None
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        entrypoints = sorted(
            {d["entrypoint"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
        )
        checked = subprocess.run(
            [str(installed.environment / "bin" / "python"), "-c", CHECK, *entrypoints],
            cwd=installed.context,
            env=installed.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
        assert checked.stdout.count("loaded ") == len(entrypoints)
