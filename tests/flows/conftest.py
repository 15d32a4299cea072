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
    """Environment for running a flow CLI as a subprocess against the test emulator, its run recorded in the
    session's Prefect server (``PREFECT_API_URL``, as a user who set it). Without it a CLI starts a temporary
    server of its own (5-8 s each): ``cli_env_own_server``, the demo's and the killed-CLI tests cover that."""
    from prefect.settings import PREFECT_API_URL

    env = {**flow_env.env, "PREFECT_HOME": cli_prefect_home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return env | {"PREFECT_API_URL": str(PREFECT_API_URL.value())}


@pytest.fixture
def cli_env_own_server(cli_env: dict[str, str]) -> dict[str, str]:
    """``cli_env`` without ``PREFECT_API_URL``: the CLI starts its temporary Prefect server, as with no setup."""
    return {key: value for key, value in cli_env.items() if key != "PREFECT_API_URL"}
