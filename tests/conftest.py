"""Shared test helpers. Tiers: tests/unit (no network), tests/integration (the emulator),
tests/flows (Prefect flows on one session harness, plus the emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns a result (not None, False or empty); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        empty = isinstance(value, list | dict | str | tuple) and not value
        if value is not None and value is not False and not empty:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ...`` like a user would, with extra environment variables."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the image's install (minutes of pip) beside the suite when its test will run."""
    if any(item.nodeid.startswith("tests/integration/test_image_install.py") for item in session.items):
        from tests import image_install

        image_install.start()
