"""A local Prefect server with the project's deployments and a worker, in one command.

    python -m deployments.prefect_local up [--port 4200] [--database-url URL] [--no-worker]
    python -m deployments.prefect_local status|down

``up`` runs Prefect's ``prefect server start --background`` on 127.0.0.1 (host and port set through
PREFECT_SERVER_API_HOST/PORT so the UI calls the right API; Prefect keeps the server's PID in
``$PREFECT_HOME/server.pid``), creates the ``storeops`` process work pool, deploys ``prefect.yaml``'s
deployments on it if they changed, applies ``automations.yaml``, deploys the AWS stack (so the first scheduled
runs find it), starts a worker and makes sure one truck run exists. Running it again changes nothing that runs.
PostgreSQL is used when you give its URL (``--database-url`` or STOREOPS_PREFECT_DATABASE_URL, e.g.
``postgresql+asyncpg://user:pass@127.0.0.1:5432/prefect``); SQLite otherwise. ``down`` stops the flow runs,
the worker, then the server (``prefect server stop``); ``status`` is ``prefect server status``. Everything lives
in ``.localaws/prefect/`` (the worker's log; Prefect's ``--background`` discards the server's output). While
the server is up, the flow CLIs record their runs in it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from deployments.environment import prepare
from deployments.processes import (
    free_port,
    http_ok,
    http_post,
    process_alive,
    process_tree,
    start_module,
    stop_processes,
    wait_healthy,
)
from storeops.cli import emit_json, run_cli
from storeops.exceptions import EmulatorError
from storeops.settings import LOOPBACK, load_settings, project_root

WORK_POOL = "storeops"
TRUCK_DEPLOYMENT = "trucks/truck-dispatch"
AUTOMATIONS_FILE = "automations.yaml"
# Leases of deployment concurrency slots on disk, not in the server's memory: a run that keeps
# going while the server restarts keeps its slot, and a dead run's lease still expires.
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
# SQLite: wait for a lock up to 60 s instead of failing the request with "database is locked".
SQLITE_LOCK_WAIT_SECONDS = "60"
SLOT_RETRY_SECONDS = 5
WORKER_POLL_SECONDS = 5
# Every process `up` starts, and the flow runs its worker starts (each in a session of its own,
# and alive after their worker dies), carry this variable set to the server's home.
OWNER_VARIABLE = "STOREOPS_PREFECT_LOCAL_HOME"


def api_post(api_url: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """POST JSON to a Prefect server's REST API (e.g. ``/flow_runs/filter``); the decoded answer.
    An HTTP error status raises ``urllib.error.HTTPError``."""
    return json.loads(http_post(f"{api_url}{path}", json.dumps(body or {}).encode(), timeout))


def local_prefect_home(local_home: Path) -> Path:
    """Where ``up`` keeps the server's address, database and PID, and the worker's PID and log."""
    return local_home / "prefect"


def running_api_url(local_home: Path) -> str | None:
    """The API of the local server ``up`` started under ``local_home``, if it answers; else None."""
    try:
        api_url = str(json.loads((local_prefect_home(local_home) / "server.json").read_text())["api_url"])
    except (OSError, ValueError, KeyError):
        return None
    return api_url if http_ok(f"{api_url}/health") else None


@contextlib.contextmanager
def temporary_server(prefect_home: Path | None = None, timeout: float = 90.0) -> Iterator[str]:
    """A Prefect server for this process alone, its API URL: ``prefect server start`` as Prefect runs its own
    temporary server (no UI, the services an ephemeral server runs), except that it exits with this process
    however this process dies, SIGKILL included (``deployments.tethered``), where Prefect's is left running.
    The first start on a new PREFECT_HOME runs the database migrations (about 13 s)."""
    port = free_port()
    api_url = f"http://{LOOPBACK}:{port}/api"
    server_env = {"PREFECT_SERVER_API_HOST": LOOPBACK, "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_ENABLED": "0"}
    server_env |= {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if prefect_home is not None:
        prefect_home.mkdir(parents=True, exist_ok=True)  # else the server cannot create its database
        server_env["PREFECT_HOME"] = str(prefect_home)
    server = start_module(["prefect", "server", "start"], {**os.environ, **server_env}, tethered=True)
    try:
        if not wait_healthy(f"{api_url}/health", lambda: server.poll() is None, timeout):
            exited = "exited at start" if server.poll() is not None else f"did not answer within {timeout:.0f} s"
            raise EmulatorError(
                f"the temporary Prefect server {exited} (exit code {server.poll()})",
                hint="run `python -m deployments.prefect_local up`, or set PREFECT_API_URL to a running server",
            )
        yield api_url
    finally:
        stop_processes(process_tree(server.pid), timeout=10)
        server.wait()


def pool_deployments(pool: str = WORK_POOL) -> list[dict[str, Any]]:
    """The deployments ``prefect.yaml`` declares on work pool ``pool`` (the file holds a set per pool)."""
    import yaml

    declared = yaml.safe_load((project_root() / "prefect.yaml").read_text())["deployments"]
    return [d for d in declared if d["work_pool"]["name"] == pool]


def _deployment_digest() -> str:
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


def _definition(automation: Any) -> Any:
    """An automation as declared: its fields without the ids the server assigns.

    Python values, not JSON: a trigger's ``expect``/``after``/``for_each`` are sets, whose JSON
    order differs between processes (string hashing is seeded per process), so two dumps of the
    same automation compare unequal as JSON, and an update would reset its open windows.
    """

    def without_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_ids(v) for k, v in value.items() if k not in {"id", "created", "updated"}}
        if isinstance(value, list):
            return [without_ids(v) for v in value]
        return value

    fields = {"name", "description", "enabled", "trigger", "actions", "actions_on_trigger", "actions_on_resolve"}
    return without_ids(automation.model_dump(mode="python", include=fields))


class LocalPrefect:
    def __init__(
        self, home: Path, port: int, database_url: str | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.port = port
        self.database_url = database_url
        self.extra_env = extra_env or {}
        self.api_url = f"http://{LOOPBACK}:{port}/api"
        self.server_file = home / "server.json"
        self.server_pid_file = home / "home" / "server.pid"  # Prefect's, in PREFECT_HOME
        self.worker_pid_file = home / "worker.pid"

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home / "home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_API_HOST": LOOPBACK,
            "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
            # A replacement truck run that finds its slot still held (the zombie's crash lands a moment
            # later) tries again after 5 s rather than up to 30 s; the worker polls every 5 s, not 10.
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": str(SLOT_RETRY_SECONDS),
            "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_POLL_SECONDS),
            OWNER_VARIABLE: str(self.home),  # marks the processes `down` stops, flow runs included
        }
        if self.database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
        else:
            env["PREFECT_SERVER_DATABASE_TIMEOUT"] = SQLITE_LOCK_WAIT_SECONDS
        return {**env, **self.extra_env}

    def pids(self) -> dict[str, int]:
        """What the server's (Prefect's) and the worker's PID files say; a PID may be stale."""
        pids = {}
        for name, pid_file in (("server", self.server_pid_file), ("worker", self.worker_pid_file)):
            with contextlib.suppress(OSError, ValueError):
                pids[name] = int(pid_file.read_text())
        return pids

    def healthy(self) -> bool:
        return http_ok(f"{self.api_url}/health")

    def prefect(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``prefect ARGS`` against this server, in a session of its own (a Ctrl-C in the terminal that ran
        ``up`` does not reach the server that ``prefect server start --background`` leaves behind)."""
        result = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=project_root(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            start_new_session=True,
        )
        if check and result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            raise EmulatorError(f"`prefect {' '.join(args)}` failed: {last[0][:300]}", hint=f"see {self.home}")
        return result

    def start_server(self, timeout: float = 90.0) -> None:
        """``prefect server start --background`` unless this server runs; wait until it answers."""
        if not self.healthy() and not self._ours(self.pids().get("server")):
            self.server_pid_file.parent.mkdir(parents=True, exist_ok=True)  # PREFECT_HOME
            self.server_pid_file.unlink(missing_ok=True)  # stale: Prefect would refuse to start
            self.prefect("server", "start", "--background")
        if not wait_healthy(f"{self.api_url}/health", lambda: self._ours(self.pids().get("server")), timeout):
            raise EmulatorError(
                f"the Prefect server did not answer on {self.api_url} within {timeout:.0f} s",
                hint=f"is port {self.port} free? `PREFECT_HOME={self.home / 'home'} prefect server start "
                f"--port {self.port}` shows its errors in the foreground",
            )
        self.server_file.write_text(json.dumps({"api_url": self.api_url, "port": self.port}))

    def deploy(self) -> bool:
        """Deploy ``prefect.yaml`` unless this server already has it as it is; True if it deployed.

        Not every time: a deploy recreates the deployments' triggers, which forgets the open
        windows they watch (a truck run that died just before a restart would never be replaced).
        """
        digest = _deployment_digest()
        deployed = self.home / "deployed.json"
        with contextlib.suppress(OSError, ValueError):
            if json.loads(deployed.read_text()).get("prefect.yaml") == digest and self._has_deployments():
                return False
        if self.prefect("work-pool", "inspect", WORK_POOL, check=False).returncode != 0:
            self.prefect("work-pool", "create", WORK_POOL, "--type", "process")
        # The process set by name: `--all` would also deploy the ECS set, whose pool this server lacks.
        names = [arg for d in pool_deployments() for arg in ("--name", d["name"])]
        self.prefect("deploy", *names, "--no-prompt")
        deployed.write_text(json.dumps({"prefect.yaml": digest}))
        return True

    def _has_deployments(self) -> bool:
        with self._client() as client:
            present = {deployment.name for deployment in client.read_deployments()}
        return {d["name"] for d in pool_deployments()} <= present

    def apply_automations(self) -> dict[str, str]:
        """Create or update (by name) the automations in ``automations.yaml``; what happened to
        each, by name: ``created``, ``updated`` or ``unchanged``."""
        import yaml
        from prefect.events.schemas.automations import AutomationCore

        declared = yaml.safe_load((project_root() / AUTOMATIONS_FILE).read_text())["automations"]
        applied: dict[str, str] = {}
        with self._client() as client:
            for data in declared:
                automation = AutomationCore.model_validate(data)
                existing = client.read_automations_by_name(automation.name)
                for duplicate in existing[1:]:
                    client.delete_automation(duplicate.id)
                if not existing:
                    client.create_automation(automation)
                    applied[automation.name] = "created"
                elif _definition(existing[0]) != _definition(automation):
                    # Only when it changed: an update resets the automation's open windows, so a
                    # run that died before this `up` would never be found a zombie.
                    client.update_automation(existing[0].id, automation)
                    applied[automation.name] = "updated"
                else:
                    applied[automation.name] = "unchanged"
        return applied

    def ensure_truck_run(self, redeployed: bool = False) -> str:
        """Create a truck run unless one is scheduled, waiting or running; says which.

        After a deploy (which recreates the triggers and forgets the heartbeat window they kept),
        a run that is Running with no flow-run process of this server is a zombie no trigger will
        replace: a new run is created; it waits for the slot the zombie automation frees.
        """
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        live = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
        with self._client() as client:
            deployment = client.read_deployment_by_name(TRUCK_DEPLOYMENT)
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=live))),
            )
            orphaned = (
                redeployed
                and bool(runs)
                and all(r.state_type == StateType.RUNNING for r in runs)
                and not self.flow_run_processes()
            )
            if runs and not orphaned:
                return f"already there: {runs[0].name} ({runs[0].state_name})"
            run = client.create_flow_run_from_deployment(deployment.id)
            return f"created: {run.name}" + (f" (replacing {runs[0].name}, whose process is gone)" if orphaned else "")

    @contextlib.contextmanager
    def _client(self) -> Iterator[Any]:
        """A synchronous Prefect client for this server's API."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            yield client

    def _ours(self, pid: int | None) -> bool:
        """``pid`` runs and was started for this server (a PID file may name a process that reused the PID)."""
        try:
            return (
                pid is not None
                and process_alive(pid)
                and psutil.Process(pid).environ().get(OWNER_VARIABLE) == str(self.home)
            )
        except psutil.Error:
            return False

    def start_worker(self) -> int:
        """A ``prefect worker start`` on the pool, in the background (Prefect has no ``--background`` for it)."""
        running = self.pids().get("worker")
        if running is not None and self._ours(running):
            return running
        self.home.mkdir(parents=True, exist_ok=True)
        worker = start_module(
            ["prefect", "worker", "start", "--pool", WORK_POOL], self.environment(), self.home / "worker.log"
        )
        self.worker_pid_file.write_text(str(worker.pid))
        return worker.pid

    def flow_run_processes(self) -> list[int]:
        """PIDs of the flow runs started by this server's workers (found by OWNER_VARIABLE)."""
        known = {*self.pids().values(), os.getpid()}
        return [
            process.pid
            for process in psutil.process_iter(["cmdline"])
            if process.pid not in known
            and "prefect.engine" in " ".join(process.info["cmdline"] or ())
            and self._ours(process.pid)
        ]

    def stop(self) -> list[str]:
        """Stop the worker from taking runs, then the flow runs, then the worker and the server; only
        processes started for this server (a PID file may be stale). What it stopped."""
        worker = self.pids().get("worker")
        worker = worker if self._ours(worker) else None
        if worker is not None:
            with contextlib.suppress(psutil.Error):
                psutil.Process(worker).terminate()  # the first SIGTERM: it stops polling for runs
        runs = self._stop_flow_runs(worker)
        stopped = [f"{runs} flow run process(es)"] if runs else []
        if worker is not None:
            stop_processes(process_tree(worker), terms=2, timeout=10)  # it exits on its second SIGTERM
            stopped.append("worker")
        if self._stop_server():
            stopped.append("server")
        self.worker_pid_file.unlink(missing_ok=True)
        self.server_file.unlink(missing_ok=True)
        return stopped

    def _stop_flow_runs(self, worker: int | None) -> int:
        """SIGTERM this server's flow runs (they finish their window, in parallel), SIGKILL what is left
        after 30 s; again for a run the worker started meanwhile. How many there were."""
        stopped: set[int] = set()
        for _ in range(5):
            runs = [pid for pid in self.flow_run_processes() if pid != worker]
            if not runs:
                break
            stop_processes([process for pid in runs for process in process_tree(pid)], timeout=30)
            stopped.update(runs)
        return len(stopped)

    def _stop_server(self) -> bool:
        """``prefect server stop`` if Prefect's PID file names this server (else it would signal a stranger
        that reused the PID: the stale file goes); SIGKILL if it has not exited within 15 s."""
        pid = self.pids().get("server")
        if pid is None or not self._ours(pid):
            self.server_pid_file.unlink(missing_ok=True)
            return False
        server = process_tree(pid)
        self.prefect("server", "stop")
        stop_processes(psutil.wait_procs(server, timeout=15)[1], terms=0)
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.prefect_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("STOREOPS_PREFECT_PORT", "4200")))
    parser.add_argument("--database-url", default=os.environ.get("STOREOPS_PREFECT_DATABASE_URL"))
    parser.add_argument("--no-worker", action="store_true", help="deploy but do not start a worker")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    local = LocalPrefect(local_prefect_home(settings.local_home), args.port, args.database_url)
    if args.action == "up":
        print(f"starting the Prefect server ({'PostgreSQL' if args.database_url else 'SQLite'})...", flush=True)
        local.start_server()
        print("deploying prefect.yaml (when this server does not have it as it is)...", flush=True)
        deployed = local.deploy()
        print(f"deployments: {'deployed' if deployed else 'unchanged'}", flush=True)
        automations = local.apply_automations()
        print(f"automations: {', '.join(f'{name} ({what})' for name, what in automations.items())}", flush=True)
        print(f"deploying stack {settings.stack_name} ({settings.target}) if it is missing...", flush=True)
        prepare(settings)  # before the worker, so the first scheduled runs find the stack
        worker = None if args.no_worker else local.start_worker()
        truck_run = "not started (no worker)" if worker is None else local.ensure_truck_run(redeployed=deployed)
        print(f"Prefect UI: http://{LOOPBACK}:{args.port}  (API {local.api_url})")
        print(f"worker: {'not started' if worker is None else f'PID {worker}'}; logs in {local.home}")
        print(f"truck run: {truck_run}")
        print("flow CLIs (python -m flows.plan, ...) record their runs here while it is up")
        payload: dict[str, object] = {
            "ui": f"http://{LOOPBACK}:{args.port}",
            "api": local.api_url,
            "pids": local.pids(),
            "deployed": deployed,
            "automations": automations,
            "truck_run": truck_run,
        }
    elif args.action == "down":
        stopped = local.stop()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        payload = {"stopped": stopped}
    else:
        healthy = local.prefect("server", "status", check=False).returncode == 0
        print(f"Prefect server {'up' if healthy else 'down'} at {local.api_url}; processes {local.pids()}")
        payload = {"healthy": healthy, "api": local.api_url, "pids": local.pids()}
    if args.json:
        emit_json(payload)
    return 0


if __name__ == "__main__":
    run_cli(main)
