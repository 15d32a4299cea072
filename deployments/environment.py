"""Make the target ready for a flow: on `local`, start the emulator and deploy the stack if needed."""

from __future__ import annotations

from dataclasses import dataclass

from deployments.localaws import LocalAws
from deployments.stack import deploy
from storeops.aws import AwsClients, StackResources
from storeops.exceptions import StackError
from storeops.settings import Settings


@dataclass(frozen=True)
class Environment:
    """What a flow needs: settings, the client factory and the stack's resource names."""

    settings: Settings
    clients: AwsClients
    resources: StackResources


def prepare(settings: Settings) -> Environment:
    """Clients and resources for ``settings``; a new local user never has to set anything up."""
    clients = AwsClients.from_settings(settings)
    if settings.is_local:
        LocalAws(settings).start()  # no-op when it already runs
        try:
            resources = StackResources.load(clients, settings.stack_name)
        except StackError:
            deploy(settings, clients, only_if_missing=True)  # several flows may find it missing at once
            resources = StackResources.load(clients, settings.stack_name)
    else:
        clients.check_credentials()
        resources = StackResources.load(clients, settings.stack_name)
    clients.configure_awswrangler()
    return Environment(settings, clients, resources)
