"""A local Prefect server with the project's deployments and a worker, in one command.

``up`` runs ``prefect server start`` in the background on 127.0.0.1, its log in ``server.log`` and its PID where
``--background`` keeps it (``$PREFECT_HOME/server.pid``), so that ``prefect server stop`` and ``status`` work,
creates the ``storeops`` process work pool, deploys ``prefect.yaml``'s deployments on it if they changed, applies
``automations.yaml``, deploys the AWS stack (so the first scheduled runs find it), starts a worker and makes sure
one truck run exists; again, it changes nothing that runs. PostgreSQL when given its URL (``--database-url`` or
STOREOPS_PREFECT_DATABASE_URL, e.g. ``postgresql+asyncpg://user:pass@127.0.0.1:5432/prefect``), else SQLite.
``down`` stops the flow runs, the worker, then the server (``prefect server stop``); ``status`` is
``prefect server status``. Everything lives in ``.localaws/prefect/``. While it is up, the flow CLIs record their
runs in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import psutil
from pydantic import Field
from pydantic_settings import CliPositionalArg, SettingsConfigDict

from deployments import prefect_setup, processes
from deployments.environment import prepare
from deployments.prefect_setup import WORK_POOL
from flows.cli import CliOptions
from storeops.cli import emit_json, run_cli
from storeops.exceptions import EmulatorError
from storeops.settings import LOOPBACK, Settings, load_settings, project_root

# Slot leases on disk: a run that outlives a server restart keeps its slot, and a dead run's lease still expires.
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
SQLITE_LOCK_WAIT_SECONDS = "60"  # wait for a lock rather than fail with "database is locked"
SLOT_RETRY_SECONDS = 5
WORKER_POLL_SECONDS = 5
# Set to the server's home in every process `up` starts and in the flow runs its worker starts: what `down` stops.
OWNER_VARIABLE = "STOREOPS_PREFECT_LOCAL_HOME"


def api_post(api_url: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """POST to a Prefect server's REST API (e.g. ``/flow_runs/filter``); the decoded answer."""
    return json.loads(processes.http_post(f"{api_url}{path}", json.dumps(body or {}).encode(), timeout))


def local_prefect_home(local_home: Path) -> Path:
    """Where ``up`` keeps the server's address, database and PID, and the worker's PID and log."""
    return local_home / "prefect"


def running_api_url(local_home: Path) -> str | None:
    """The API of the local server ``up`` started under ``local_home``, if it answers."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        api_url = str(json.loads((local_prefect_home(local_home) / "server.json").read_text())["api_url"])
        return api_url if processes.http_ok(f"{api_url}/health") else None
    return None


@contextlib.contextmanager
def temporary_server(prefect_home: Path | None = None, timeout: float = 90.0) -> Iterator[str]:
    """A Prefect server for this process alone, as Prefect starts its temporary one, but tethered: it exits with
    this process however it dies, SIGKILL included. Its API URL. A new PREFECT_HOME first migrates (about 13 s)."""
    port = processes.free_port()
    env = {"PREFECT_SERVER_API_HOST": LOOPBACK, "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_ENABLED": "0"}
    env |= {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if prefect_home is not None:
        prefect_home.mkdir(parents=True, exist_ok=True)  # else the server cannot create its database
        env["PREFECT_HOME"] = str(prefect_home)
    server = processes.start_module(["prefect", "server", "start"], {**os.environ, **env}, tethered=True)
    try:
        if not processes.wait_healthy(f"http://{LOOPBACK}:{port}/api/health", lambda: server.poll() is None, timeout):
            exited = "exited at start" if server.poll() is not None else f"did not answer within {timeout:.0f} s"
            raise EmulatorError(
                f"the temporary Prefect server {exited} (exit code {server.poll()})",
                hint="run `python -m deployments.prefect_local up`, or set PREFECT_API_URL to a running server",
            )
        yield f"http://{LOOPBACK}:{port}/api"
    finally:
        processes.stop_processes(processes.process_tree(server.pid), timeout=10)
        server.wait()


class LocalPrefect:
    """The server, worker and flow runs ``up`` starts under ``home``; it only ever signals its own processes."""

    def __init__(self, home: Path, port: int, database_url: str | None = None) -> None:
        self.home, self.port, self.database_url = home, port, database_url
        self.api_url = f"http://{LOOPBACK}:{port}/api"
        self.server_file = home / "server.json"
        self.server_pid_file = home / "home" / "server.pid"  # Prefect's, in PREFECT_HOME
        self.worker_pid_file = home / "worker.pid"
        self.server_log = home / "server.log"

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home / "home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_API_HOST": LOOPBACK,
            "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
            # A replacement truck run that finds its slot still held (the zombie's crash lands a moment later)
            # tries again after 5 s rather than up to 30 s; the worker polls every 5 s, not 10.
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": str(SLOT_RETRY_SECONDS),
            "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_POLL_SECONDS),
            OWNER_VARIABLE: str(self.home),
        }
        if self.database_url:
            return env | {"PREFECT_SERVER_DATABASE_CONNECTION_URL": self.database_url}
        return env | {"PREFECT_SERVER_DATABASE_TIMEOUT": SQLITE_LOCK_WAIT_SECONDS}

    def pids(self) -> dict[str, int]:
        """What the server's (Prefect's) and the worker's PID files say; a PID may be stale."""
        pids = {}
        for name, pid_file in (("server", self.server_pid_file), ("worker", self.worker_pid_file)):
            with contextlib.suppress(OSError, ValueError):
                pids[name] = int(pid_file.read_text())
        return pids

    def healthy(self) -> bool:
        return processes.http_ok(f"{self.api_url}/health")

    def prefect(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``prefect ARGS`` against this server, in a session of its own (a Ctrl-C in ``up``'s terminal does not
        reach what it leaves running)."""
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
        """Prefect's ``prefect server start`` in the background unless this server runs; wait until it answers.
        Not ``--background``: that gives the server pipes nobody reads, so its log (a crash's traceback too) is lost.
        Its PID goes where ``--background`` puts it, so ``prefect server stop`` and ``status`` work as usual."""
        server = None
        if not self.healthy() and not self._ours(self.pids().get("server")):
            self.server_pid_file.parent.mkdir(parents=True, exist_ok=True)
            env = self.environment() | {"PYTHONFAULTHANDLER": "1"}  # a native crash leaves its stack in the log
            server = processes.start_module(["prefect", "server", "start"], env, self.server_log)
            self.server_pid_file.write_text(str(server.pid))

        running = lambda: self._ours(self.pids().get("server"))  # noqa: E731
        if not processes.wait_started(f"{self.api_url}/health", server, running, timeout):
            raise EmulatorError(
                f"the Prefect server did not answer on {self.api_url} within {timeout:.0f} s",
                hint=f"is port {self.port} free? see {self.server_log}",
            )
        self.server_file.write_text(json.dumps({"api_url": self.api_url, "port": self.port}))

    def _ours(self, pid: int | None) -> bool:
        """``pid`` runs and was started for this server (a PID file may name a process that reused the PID)."""
        with contextlib.suppress(psutil.Error):
            return (
                pid is not None
                and processes.process_alive(pid)
                and psutil.Process(pid).environ().get(OWNER_VARIABLE) == str(self.home)
            )
        return False

    def start_worker(self) -> int:
        """``prefect worker start`` on the pool, in the background (Prefect has no ``--background`` for it)."""
        running = self.pids().get("worker")
        if running is not None and self._ours(running):
            return running
        self.home.mkdir(parents=True, exist_ok=True)
        worker = processes.start_module(
            ["prefect", "worker", "start", "--pool", WORK_POOL], self.environment(), self.home / "worker.log"
        )
        self.worker_pid_file.write_text(str(worker.pid))
        return worker.pid

    def flow_run_processes(self) -> list[int]:
        """PIDs of the flow runs started by this server's workers."""
        known = {*self.pids().values(), os.getpid()}
        return [
            process.pid
            for process in psutil.process_iter(["cmdline"])
            if process.pid not in known
            and "prefect.engine" in " ".join(process.info["cmdline"] or ())
            and self._ours(process.pid)
        ]

    def stop(self) -> list[str]:
        """Stop the worker taking runs (its first SIGTERM), the flow runs (SIGTERM: they finish their window; SIGKILL
        after 30 s), the worker (its second SIGTERM), then the server; only processes started for this server."""
        pids = {name: pid for name, pid in self.pids().items() if self._ours(pid)}
        with contextlib.suppress(psutil.Error, KeyError):
            psutil.Process(pids["worker"]).terminate()
        runs: set[int] = set()
        for _ in range(5):  # again for a run the worker started meanwhile
            if not (new := [pid for pid in self.flow_run_processes() if pid != pids.get("worker")]):
                break
            processes.stop_processes([process for pid in new for process in processes.process_tree(pid)], timeout=30)
            runs.update(new)
        stopped = [f"{len(runs)} flow run process(es)"] if runs else []
        if "worker" in pids:
            processes.stop_processes(processes.process_tree(pids["worker"]), terms=2, timeout=10)  # exits on its 2nd
            stopped.append("worker")
        if "server" in pids:
            self._stop_server(pids["server"])
            stopped.append("server")
        for path in (self.worker_pid_file, self.server_pid_file, self.server_file):
            path.unlink(missing_ok=True)
        return stopped

    def _stop_server(self, pid: int) -> None:
        """Prefect's own ``prefect server stop`` (its PID file names this server: ``_ours`` checked it), then
        SIGKILL for whatever of the server's tree has not exited within 15 s."""
        server = processes.process_tree(pid)
        self.prefect("server", "stop", check=False)
        processes.stop_processes(psutil.wait_procs(server, timeout=15)[1], terms=0)


class PrefectLocalOptions(CliOptions):
    """A local Prefect server with the project's deployments, automations, a worker and one truck run."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.prefect_local")

    action: CliPositionalArg[Literal["up", "down", "status"]] = Field(
        description="up: start (or keep) it all; down: stop it all; status: `prefect server status`"
    )
    port: int | None = Field(
        None, ge=1024, le=65535, description="The server's port (default STOREOPS_PREFECT_PORT, else 4200)."
    )
    database_url: str | None = Field(
        None,
        description="The server's PostgreSQL database (default STOREOPS_PREFECT_DATABASE_URL, else SQLite).",
        json_schema_extra={"metavar": "URL"},
    )
    no_worker: bool = Field(False, description="Deploy but do not start a worker.")


def up(local: LocalPrefect, settings: Settings, worker: bool = True) -> dict[str, object]:
    """Start (or keep) the server, deploy and apply what changed, the stack, a worker and one truck run."""
    print(f"starting the Prefect server ({'PostgreSQL' if local.database_url else 'SQLite'})...", flush=True)
    local.start_server()
    print("deploying prefect.yaml (when this server does not have it as it is)...", flush=True)
    deployed = prefect_setup.deploy_if_changed(local.api_url, local.home / "deployed.json", local.prefect)
    print(f"deployments: {'deployed' if deployed else 'unchanged'}", flush=True)
    automations = prefect_setup.apply_automations(local.api_url)
    print(f"automations: {', '.join(f'{name} ({what})' for name, what in automations.items())}", flush=True)
    print(f"deploying stack {settings.stack_name} ({settings.target}) if it is missing...", flush=True)
    prepare(settings)  # before the worker, so the first scheduled runs find the stack
    worker_pid = local.start_worker() if worker else None
    truck_run = "not started (no worker)"
    if worker_pid is not None:
        # After a deploy (its triggers forgot their heartbeat window), a Running run with no process is a zombie.
        truck_run = prefect_setup.ensure_truck_run(local.api_url, lambda: deployed and not local.flow_run_processes())
    print(f"Prefect UI: http://{LOOPBACK}:{local.port}  (API {local.api_url})")
    print(f"worker: {'not started' if worker_pid is None else f'PID {worker_pid}'}; logs in {local.home}")
    print(f"truck run: {truck_run}")
    print("flow CLIs (python -m flows.plan, ...) record their runs here while it is up")
    payload: dict[str, object] = {"ui": f"http://{LOOPBACK}:{local.port}", "api": local.api_url}
    return payload | {"pids": local.pids(), "deployed": deployed, "automations": automations, "truck_run": truck_run}


def main(argv: list[str] | None = None) -> int:
    args = PrefectLocalOptions.parse_or_exit(argv)
    settings = load_settings()
    port = args.port or int(os.environ.get("STOREOPS_PREFECT_PORT", "4200"))
    database_url = args.database_url or os.environ.get("STOREOPS_PREFECT_DATABASE_URL")
    local = LocalPrefect(local_prefect_home(settings.local_home), port, database_url)
    if args.action == "up":
        payload = up(local, settings, worker=not args.no_worker)
    elif args.action == "down":
        stopped = local.stop()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        payload = {"stopped": stopped}
    else:
        healthy = local.prefect("server", "status", check=False).returncode == 0
        print(f"Prefect server {'up' if healthy else 'down'} at {local.api_url}; processes {local.pids()}")
        payload = {"healthy": healthy, "api": local.api_url, "pids": local.pids()}
    if args.json_output:
        emit_json(payload)
    return 0


if __name__ == "__main__":
    run_cli(main)
