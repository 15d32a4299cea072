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


@pytest.fixture(scope="session")
def cli_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One PREFECT_HOME for every CLI subprocess (the first pays for the database migrations)."""
    return str(tmp_path_factory.mktemp("prefect-home"))


@pytest.fixture
def cli_env(flow_env: LocalStack, cli_prefect_home: str) -> dict[str, str]:
    """Environment for running a flow CLI as a subprocess against the test emulator."""
    return {**flow_env.env, "PREFECT_HOME": cli_prefect_home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
