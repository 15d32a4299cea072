"""Setting the environment up, the one step before a flow runs: on `local`, start the emulator; deploy the
stack if it is missing (``set_up``). Every flow CLI (``deployments/cli.py``), the demo and
``python -m deployments.prefect_local up`` take it; the flows themselves only load what it made
(``tasks/environment.py::load_environment``), so scheduled runs skip it.

    python -m deployments.environment [--json]

A scenario runs on a fresh stack of its own per policy (``set_up_scenario``), made by whoever starts it
(its CLI, the benchmarks, the demo, the ``scenario`` deployment's hook in ``deployments/scenario_flow.py``).
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from deployments.localaws import LocalAws
from deployments.stack import delete, deploy
from flows.cli import CliOptions
from storeops.aws import AwsClients, StackResources
from storeops.cli import emit_json, run_cli
from storeops.exceptions import StackError
from storeops.settings import Settings, load_settings
from tasks.environment import Environment, load_environment
from tasks.scenario import scenario_settings

__all__ = ["Environment", "prepare", "set_up", "set_up_scenario"]


def set_up(settings: Settings) -> None:
    """Make ``settings``' target ready: on `local` the emulator runs; the stack exists (deployed if missing;
    several processes may find it missing at once). On `aws`, credentials are checked, nothing deployed."""
    clients = AwsClients.from_settings(settings)
    if not settings.is_local:
        clients.check_credentials()
        return
    LocalAws(settings).start()  # no-op when it already runs
    try:
        StackResources.load(clients, settings.stack_name)
    except StackError:
        deploy(settings, clients, only_if_missing=True)


def prepare(settings: Settings) -> Environment:
    """``set_up`` then ``load_environment``: for callers that set up and run in one go (benchmarks, tests)."""
    set_up(settings)
    return load_environment(settings)


def set_up_scenario(settings: Settings, policy: str) -> Settings:
    """A new, empty stack for a policy's scenario, ``<stack>-<suffix>`` (an earlier one of the name is deleted);
    the scenario's settings."""
    scenario = scenario_settings(settings, policy)
    if scenario.is_local:
        LocalAws(scenario).start()  # no-op when it already runs
    delete(scenario, AwsClients.from_settings(scenario))
    set_up(scenario)
    return scenario


class EnvironmentOptions(CliOptions):
    """Set the environment up: on the local target start the emulator, and deploy the stack if it is missing.
    Every flow CLI does this first; scheduled runs expect it done."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.environment")


def main(argv: list[str] | None = None) -> int:
    args = EnvironmentOptions.parse_or_exit(argv)
    settings = load_settings()
    set_up(settings)
    print(f"stack {settings.stack_name} ({settings.target}) is ready")
    if args.json_output:
        emit_json({"stack": settings.stack_name, "target": settings.target})
    return 0


if __name__ == "__main__":
    run_cli(main)
