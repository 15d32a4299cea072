"""The image's install, without a container engine: the files the Dockerfile copies, installed by the
Dockerfile's own RUN line into a fresh virtualenv, then every flow entrypoint prefect.yaml names loaded by
that environment's Python from the image's working directory, as a flow run there would.

SLOW (about a minute here): it installs the project and its dependencies into a new environment. Not a unit
test for that reason; it needs no emulator. It uses the interpreter running the tests, whose wheels pip has
cached from the project's own install (Python 3.12, the image's, took 3.5 minutes of downloads in CI for no
check this one lacks: the Lambda package test covers the cp312 wheels).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.test_flows_template import ROOT, dockerfile

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


def test_the_dockerfile_install_loads_every_flow_entrypoint(tmp_path: Path) -> None:
    instructions = dockerfile()
    context = tmp_path / "opt-storeops"  # the image's WORKDIR, as the Dockerfile fills it
    context.mkdir()
    leave_out = shutil.ignore_patterns("__pycache__", "*.pyc")  # .dockerignore
    for instruction, args in instructions:
        if instruction == "COPY":
            for source in args.split()[:-1]:
                origin = ROOT / source.rstrip("/")
                if origin.is_dir():
                    shutil.copytree(origin, context / origin.name, ignore=leave_out)
                else:
                    shutil.copy2(origin, context / origin.name)
    environment = tmp_path / "venv"
    created = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(environment)], capture_output=True, text=True, check=False
    )
    assert created.returncode == 0, created.stderr
    path = f"{environment / 'bin'}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "VIRTUAL_ENV": str(environment), "STOREOPS_TARGET": "aws"}
    env.pop("PYTHONPATH", None)
    (install,) = [args for instruction, args in instructions if instruction == "RUN" and "pip install" in args]
    installed = subprocess.run(
        ["sh", "-c", install], cwd=context, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    entrypoints = sorted({d["entrypoint"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]})
    checked = subprocess.run(
        [str(environment / "bin" / "python"), "-c", CHECK, *entrypoints],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert checked.stdout.count("loaded ") == len(entrypoints)
