"""The image's install for ``tests/integration/test_image_install.py``: the files the Dockerfile copies, installed
by its RUN line into a fresh virtualenv. About two and a half minutes on 2 cores, mostly unpacking and
byte-compiling; the test runs first in its process (tests/conftest.py) while the other process runs tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT
from tests.unit.test_flows_template import dockerfile

TIMEOUT_SECONDS = 900


@dataclass
class Installed:
    context: Path  # the image's WORKDIR, as the Dockerfile fills it
    environment: Path  # the virtualenv the Dockerfile's RUN line installed into
    env: dict[str, str]  # the environment it ran with
    created: subprocess.CompletedProcess[str] | None = None
    installed: subprocess.CompletedProcess[str] | None = None
    error: BaseException | None = None


def _install(result: Installed) -> None:
    try:
        instructions = dockerfile()
        leave_out = shutil.ignore_patterns("__pycache__", "*.pyc")  # .dockerignore
        for instruction, args in instructions:
            if instruction == "COPY":
                for source in args.split()[:-1]:
                    origin = ROOT / source.rstrip("/")
                    if origin.is_dir():
                        shutil.copytree(origin, result.context / origin.name, ignore=leave_out)
                    else:
                        shutil.copy2(origin, result.context / origin.name)
        result.created = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(result.environment)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.created.returncode != 0:
            return
        (install,) = [args for instruction, args in instructions if instruction == "RUN" and "pip install" in args]
        result.installed = subprocess.run(
            ["sh", "-c", install],
            cwd=result.context,
            env=result.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except Exception as exc:  # reported by the test, with what the install left
        result.error = exc


@contextlib.contextmanager
def installed_image() -> Iterator[Installed]:
    """The image's install in a new temporary folder, deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="storeops-image-"))
    try:
        context = root / "opt-storeops"
        context.mkdir()
        environment = root / "venv"
        env = {
            **os.environ,
            "PATH": f"{environment / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(environment),
            "STOREOPS_TARGET": "aws",
        }
        env.pop("PYTHONPATH", None)
        result = Installed(context, environment, env)
        _install(result)
        yield result
    finally:
        shutil.rmtree(root, ignore_errors=True)
