"""What a flow runs against: the settings, the AWS client factory and the stack's resource names.

A flow only *loads* its environment; it never starts an emulator or deploys a stack. Setting the
environment up is one explicit step before (``deployments/environment.py::set_up``), which every
CLI, the demo and ``python -m deployments.prefect_local up`` take; scheduled runs find it set up.
"""

from __future__ import annotations

from dataclasses import dataclass

from storeops.aws import AwsClients, StackResources
from storeops.exceptions import StackError
from storeops.settings import Settings, load_settings

SET_UP = "`python -m deployments.environment` (or any flow CLI, e.g. `python -m flows.plan --dry-run`)"


@dataclass(frozen=True)
class Environment:
    """What a flow needs: settings, the client factory and the stack's resource names."""

    settings: Settings
    clients: AwsClients
    resources: StackResources


def load_environment(settings: Settings | None = None) -> Environment:
    """The clients and the stack of ``settings`` (default: from the environment); a one-line error naming the
    set-up step if the stack is missing or incomplete."""
    settings = settings or load_settings()
    clients = AwsClients.from_settings(settings)
    if not settings.is_local:
        clients.check_credentials()
    try:
        resources = StackResources.load(clients, settings.stack_name)
    except StackError as exc:
        raise StackError(exc.message, hint=f"set the environment up with {SET_UP}") from None
    clients.configure_awswrangler()
    return Environment(settings, clients, resources)
