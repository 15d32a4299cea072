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
# Every test outside tests/unit shares the session's emulator and Prefect harness: under pytest-xdist (CI runs
# `-n 2 --dist loadgroup`) they run in one process, in order, while the unit tests run in the other.
SHARED_SERVERS_GROUP = "emulator-and-prefect"
_image_install_selected: bool | None = None  # whether this session runs IMAGE_INSTALL_TEST (read once)


# Last in their group: they hold their deployed timing (a truck run back within 2 minutes) best once the unit
# tests beside them are done.
RUN_LAST = ("tests/flows/test_self_healing.py",)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (it suffixes each node id with its group)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.nodeid.startswith("tests/unit/"):
            item.add_marker(pytest.mark.xdist_group(SHARED_SERVERS_GROUP))
    items.sort(key=lambda item: item.nodeid.startswith(RUN_LAST))  # stable: the order otherwise stays


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the image's install (minutes of pip) beside the suite, in the process that will run its test: at
    the first test of that process's group (a no-op afterwards)."""
    global _image_install_selected
    if item.nodeid.startswith("tests/unit/"):
        return
    if _image_install_selected is None:  # the session's items as run: after -k and the like deselected some
        _image_install_selected = any(other.nodeid.startswith(IMAGE_INSTALL_TEST) for other in item.session.items)
    if _image_install_selected:
        from tests import image_install

        image_install.start()
