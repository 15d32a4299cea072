"""One emulator per test session, reset before every test that asks for the stack."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments import stack
from deployments.lambda_package import LambdaPackage, LambdaPlatform, build_package
from deployments.localaws import LocalAws
from deployments.processes import free_port
from deployments.stack import deploy
from storeops.aws import AwsClients, StackResources
from storeops.settings import Settings, load_settings


@dataclass
class LocalStack:
    settings: Settings
    clients: AwsClients
    resources: StackResources

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing a CLI at this emulator."""
        return {
            "STOREOPS_LOCAL_PORT": str(self.settings.local_port),
            "STOREOPS_LOCAL_HOME": str(self.settings.local_home),
            "STOREOPS_TARGET": "local",
        }


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    home: Path = tmp_path_factory.mktemp("localaws")
    settings = load_settings(local_port=free_port(), local_home=home)
    local = LocalAws(settings)
    # A SIGTERM (e.g. from `timeout`) ends the session like Ctrl-C, so this teardown stops the emulator.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    local.start(tethered=True)  # gone with the session even when pytest is killed
    try:
        yield local
    finally:
        local.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture
def emulator_settings(emulator: LocalAws) -> Settings:
    return emulator.settings


@pytest.fixture
def local_stack(emulator: LocalAws) -> LocalStack:
    """A freshly reset emulator with the stack deployed."""
    emulator.reset()
    settings = emulator.settings
    clients = AwsClients.from_settings(settings)
    # The tests' readings sit at fixed hours (2026-11-20); the emulator expires nothing (its CloudFormation ignores
    # lifecycle rules), so the stack keeps raw readings for the template's longest retention and the rollup's
    # retention guard (tests/unit/test_rollup.py) does not refuse them as the wall clock moves on.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stack, "build_package", _package_once)
        deploy(settings, clients, overrides={"RawReadingsRetentionDays": "3650"})
    clients.configure_awswrangler()
    return LocalStack(settings, clients, StackResources.load(clients, settings.stack_name))


_packages: dict[tuple[Path, LambdaPlatform, Path | None], LambdaPackage] = {}


def _package_once(build_dir: Path, target: LambdaPlatform, root: Path | None = None) -> LambdaPackage:
    """The planning Lambda's zip for this fixture's deploys: built by the session's first one, then reused (the
    sources do not change during a session; compressing it was half of each deploy). Every other deploy, the
    tests' own and the CLIs', builds it as a user's would (tests/integration/test_lambda_package.py checks that)."""
    key = (build_dir, target, root)
    if key not in _packages or not _packages[key].path.exists():
        _packages[key] = build_package(build_dir, target, root)
    return _packages[key]
