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


# First, in this order: work stealing (CI runs `-n 2 --dist worksteal`, each process with its own emulator and
# Prefect harness) takes tests from the back of a process's queue, so a process's first tests stay together. The
# image's install test (its process waits out minutes of pip while the other runs tests), then the self-healing
# module (one local Prefect stack for the module: split between the processes, it would run twice at once).
RUN_FIRST = ("tests/integration/test_image_install.py", "tests/flows/test_self_healing.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def order(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=order)  # stable: the order otherwise stays
