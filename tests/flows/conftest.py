"""One Prefect test harness per session (fast settings from the team notes) and the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import LocalStack, emulator, local_stack  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(
            updates={
                "flows.heartbeat_frequency": None,
                "server.services.task_run_recorder.enabled": False,
            }
        ),
        prefect_test_harness(server_startup_timeout=60),
    ):
        yield


@pytest.fixture
def flow_env(prefect_harness: None, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:  # noqa: F811
    """Flows build their settings from the environment: point it at the test emulator."""
    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    return local_stack
