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
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parents[1]

# How far the property tests search. The suite as CI runs it (`python -m pytest`, `make test`) runs every count in
# full; the fast loop (`make test-fast`) sets STOREOPS_TEST_PROFILE=fast and runs a quarter of each (at least 5).
# Only how many examples or schedules: every assertion is the same in both.
PROFILE_SHARES = {"full": 1.0, "fast": 0.25}
PROFILE = os.environ.get("STOREOPS_TEST_PROFILE", "full")
if PROFILE == "fast":  # a test without its own max_examples: 25 instead of 100 (full: hypothesis's own profile)
    hypothesis_settings.register_profile("storeops-fast", max_examples=25)
    hypothesis_settings.load_profile("storeops-fast")


def examples(full: int) -> int:
    """How many examples (or schedules) a property test runs: ``full`` in CI, a quarter in the fast loop."""
    return full if PROFILE == "full" else max(5, round(full * PROFILE_SHARES[PROFILE]))


def pytest_configure(config: pytest.Config) -> None:
    if PROFILE not in PROFILE_SHARES:
        raise pytest.UsageError(f"STOREOPS_TEST_PROFILE={PROFILE!r}: use one of {', '.join(PROFILE_SHARES)}")


def pytest_report_header(config: pytest.Config) -> str:
    if PROFILE == "full":
        return "property tests: full profile (every example, as CI runs them)"
    return f"property tests: {PROFILE} profile ({PROFILE_SHARES[PROFILE]:.0%} of the examples; CI runs them all)"


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


IMAGE_INSTALL_TEST = "tests/integration/test_image_install.py"
# Last: they hold their deployed timing (a truck run back within 2 minutes) best once the rest is done or nearly.
RUN_LAST = ("tests/flows/test_self_healing.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The self-healing tests last; under pytest-xdist (CI runs `-n 2 --dist worksteal`: each process has its own
    emulator and Prefect harness) the image's install test first, so one process waits out the install (minutes
    of pip) while the other runs tests."""
    parallel = "PYTEST_XDIST_WORKER" in os.environ

    def order(item: pytest.Item) -> int:
        if item.nodeid.startswith(RUN_LAST):
            return 2
        return 0 if parallel and item.nodeid.startswith(IMAGE_INSTALL_TEST) else 1

    items.sort(key=order)  # stable: the order otherwise stays


def pytest_collection_finish(session: pytest.Session) -> None:
    """In one process (`-n 0`), start the image's install in a thread beside the suite; its test waits for it."""
    if "PYTEST_XDIST_WORKER" not in os.environ and any(i.nodeid.startswith(IMAGE_INSTALL_TEST) for i in session.items):
        from tests import image_install

        image_install.start()
