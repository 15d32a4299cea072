"""What Prefect does not do for a server on its own: deploy ``prefect.yaml`` only when it changed, apply
``automations.yaml`` by diff, and keep one truck run. ``prefect_local up`` runs these against its server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from storeops.settings import project_root

WORK_POOL = "storeops"
TRUCK_DEPLOYMENT = "trucks/truck-dispatch"
AUTOMATIONS_FILE = "automations.yaml"


def pool_deployments(pool: str = WORK_POOL) -> list[dict[str, Any]]:
    """The deployments ``prefect.yaml`` declares on work pool ``pool`` (the file holds a set per pool)."""
    import yaml

    declared = yaml.safe_load((project_root() / "prefect.yaml").read_text())["deployments"]
    return [d for d in declared if d["work_pool"]["name"] == pool]


@contextlib.contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client for the server at ``api_url``."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def deployment_digest() -> str:
    """What a deploy would send: prefect.yaml and the parameter schema of each entrypoint's flow."""
    import yaml
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    text = (project_root() / "prefect.yaml").read_text()
    schemas = {
        d["entrypoint"]: parameter_schema(load_flow_from_entrypoint(str(project_root() / d["entrypoint"]))).model_dump()
        for d in yaml.safe_load(text)["deployments"]
    }
    return hashlib.sha256(json.dumps([text, schemas], sort_keys=True, default=str).encode()).hexdigest()


def deploy_if_changed(api_url: str, record: Path, prefect: Callable[..., subprocess.CompletedProcess[str]]) -> bool:
    """Deploy ``prefect.yaml``'s process set with ``prefect(*args, check=...)`` (the ``prefect`` CLI against this
    server) unless ``record`` says this server has it as it is; True if it deployed. Not every time: a deploy
    recreates the triggers, which forget the windows they watch (a dead truck run would stay dead)."""
    digest = deployment_digest()
    with contextlib.suppress(OSError, ValueError):
        if json.loads(record.read_text()).get("prefect.yaml") == digest:
            with prefect_client(api_url) as client:
                if {d["name"] for d in pool_deployments()} <= {x.name for x in client.read_deployments()}:
                    return False
    if prefect("work-pool", "inspect", WORK_POOL, check=False).returncode != 0:
        prefect("work-pool", "create", WORK_POOL, "--type", "process")
    # The process set by name: `--all` would also deploy the ECS set, whose pool this server lacks.
    prefect("deploy", *[arg for d in pool_deployments() for arg in ("--name", d["name"])], "--no-prompt")
    record.write_text(json.dumps({"prefect.yaml": digest}))
    return True


def automation_definition(automation: Any) -> Any:
    """An automation as declared, without the ids the server assigns. Python values, not JSON: a trigger's sets
    dump in an order that differs between processes (string hashing is seeded), which would read as a change."""

    def without_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_ids(v) for k, v in value.items() if k not in {"id", "created", "updated"}}
        return [without_ids(v) for v in value] if isinstance(value, list) else value

    fields = {"name", "description", "enabled", "trigger", "actions", "actions_on_trigger", "actions_on_resolve"}
    return without_ids(automation.model_dump(mode="python", include=fields))


def apply_automations(api_url: str) -> dict[str, str]:
    """Create, or update by name only when it changed (an update resets its open windows), each automation of
    ``automations.yaml``; what happened to each: ``created``, ``updated`` or ``unchanged``."""
    import yaml
    from prefect.events.schemas.automations import AutomationCore

    applied: dict[str, str] = {}
    with prefect_client(api_url) as client:
        for data in yaml.safe_load((project_root() / AUTOMATIONS_FILE).read_text())["automations"]:
            automation = AutomationCore.model_validate(data)
            existing = client.read_automations_by_name(automation.name)
            for duplicate in existing[1:]:
                client.delete_automation(duplicate.id)
            if not existing:
                client.create_automation(automation)
                applied[automation.name] = "created"
            elif automation_definition(existing[0]) != automation_definition(automation):
                client.update_automation(existing[0].id, automation)
                applied[automation.name] = "updated"
            else:
                applied[automation.name] = "unchanged"
    return applied


def ensure_truck_run(api_url: str, orphaned: Callable[[], bool] = lambda: False) -> str:
    """Create a truck run unless one is scheduled, waiting or running; says which. When every live run is Running
    and ``orphaned()`` (after a deploy, whose triggers forgot their heartbeat window, and with no flow-run process:
    a zombie no trigger replaces), a new run is created, and waits for the slot the zombie automation frees."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    live = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    with prefect_client(api_url) as client:
        deployment = client.read_deployment_by_name(TRUCK_DEPLOYMENT)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=live))),
        )
        replacing = bool(runs) and all(r.state_type == StateType.RUNNING for r in runs) and orphaned()
        if runs and not replacing:
            return f"already there: {runs[0].name} ({runs[0].state_name})"
        run = client.create_flow_run_from_deployment(deployment.id)
        return f"created: {run.name}" + (f" (replacing {runs[0].name}, whose process is gone)" if replacing else "")
