"""The image's install, in a thread: ``tests/integration/test_image_install.py`` starts it and waits for it, first
in its process (tests/conftest.py), while the other process runs tests. Installing the project and its dependencies
into a fresh virtualenv takes about two and a half minutes on 2 cores, mostly unpacking and byte-compiling.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
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


_started: dict[str, tuple[threading.Thread, Installed]] = {}


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
    except BaseException as exc:  # reported by the test that waits for it
        result.error = exc


def start() -> None:
    """Start the install once per session (a no-op when it runs already)."""
    if "install" in _started:
        return
    root = Path(tempfile.mkdtemp(prefix="storeops-image-"))
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
    thread = threading.Thread(target=_install, args=(result,), name="image-install", daemon=True)
    thread.start()
    _started["install"] = (thread, result)


def wait() -> Installed:
    """The install's result, once it has finished (started here unless already started)."""
    start()
    thread, result = _started["install"]
    thread.join(TIMEOUT_SECONDS + 60)
    assert not thread.is_alive(), f"the image's install did not finish in {TIMEOUT_SECONDS} s"
    return result


def remove() -> None:
    """Delete the install's files once the session is done with them."""
    if "install" in _started:
        thread, result = _started["install"]
        if not thread.is_alive():
            shutil.rmtree(result.context.parent, ignore_errors=True)
