"""A local Prefect server with the project's deployments and a worker, in one command.

    python -m deployments.prefect_local up [--port 4200] [--database-url URL] [--no-worker]
    python -m deployments.prefect_local status|down

``up`` starts ``prefect server start`` on 127.0.0.1 (host and port set through
PREFECT_SERVER_API_HOST/PORT so the UI calls the right API), creates the ``storeops`` process
work pool, deploys ``prefect.yaml`` and starts a worker. PostgreSQL is used when you give its
URL (``--database-url`` or STOREOPS_PREFECT_DATABASE_URL, e.g.
``postgresql+asyncpg://user:pass@127.0.0.1:5432/prefect``); SQLite otherwise. PIDs and logs
live in ``.localaws/prefect/``; ``down`` stops what ``up`` started, by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deployments.processes import http_ok, process_alive, signal_group, wait_gone
from storeops.cli import emit_json, run_cli
from storeops.exceptions import EmulatorError
from storeops.settings import LOOPBACK, load_settings, project_root

WORK_POOL = "storeops"


class LocalPrefect:
    def __init__(
        self, home: Path, port: int, database_url: str | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.port = port
        self.database_url = database_url
        self.extra_env = extra_env or {}
        self.api_url = f"http://{LOOPBACK}:{port}/api"
        self.pid_file = home / "pids.json"

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home / "home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_API_HOST": LOOPBACK,
            "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        if self.database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.database_url
        return {**env, **self.extra_env}

    def pids(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.pid_file.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def healthy(self) -> bool:
        return http_ok(f"{self.api_url}/health")

    def _spawn(self, name: str, command: list[str]) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=project_root(),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pids = self.pids()
        pids[name] = process.pid
        self.pid_file.write_text(json.dumps(pids))
        return process.pid

    def prefect(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=project_root(),
            env=self.environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            raise EmulatorError(f"`prefect {' '.join(args)}` failed: {last[0][:300]}", hint=f"see {self.home}")
        return result

    def start_server(self, timeout: float = 90.0) -> None:
        if self.healthy():
            return
        self._spawn("server", [sys.executable, "-m", "prefect", "server", "start"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return
            time.sleep(0.5)
        raise EmulatorError(
            f"the Prefect server did not answer on {self.api_url} within {timeout:.0f} s",
            hint=f"see {self.home / 'server.log'}; is port {self.port} free?",
        )

    def deploy(self) -> None:
        if self.prefect("work-pool", "inspect", WORK_POOL, check=False).returncode != 0:
            self.prefect("work-pool", "create", WORK_POOL, "--type", "process")
        self.prefect("deploy", "--all", "--no-prompt")

    def start_worker(self) -> int:
        return self._spawn("worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL])

    def stop(self) -> list[str]:
        stopped = []
        for name in ("worker", "server"):
            pid = self.pids().get(name)
            if pid is None or not process_alive(pid):
                continue
            signal_group(pid, signal.SIGTERM)
            if not wait_gone(pid, 15):
                signal_group(pid, signal.SIGTERM)  # a worker exits on the second SIGTERM
                if not wait_gone(pid, 10):
                    signal_group(pid, signal.SIGKILL)
            stopped.append(name)
        self.pid_file.unlink(missing_ok=True)
        return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.prefect_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("STOREOPS_PREFECT_PORT", "4200")))
    parser.add_argument("--database-url", default=os.environ.get("STOREOPS_PREFECT_DATABASE_URL"))
    parser.add_argument("--no-worker", action="store_true", help="deploy but do not start a worker")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    local = LocalPrefect(settings.local_home / "prefect", args.port, args.database_url)
    if args.action == "up":
        print(f"starting the Prefect server ({'PostgreSQL' if args.database_url else 'SQLite'})...", flush=True)
        local.start_server()
        print("creating the work pool and deploying prefect.yaml...", flush=True)
        local.deploy()
        worker = None if args.no_worker else local.start_worker()
        print(f"Prefect UI: http://{LOOPBACK}:{args.port}  (API {local.api_url})")
        print(f"worker: {'not started' if worker is None else f'PID {worker}'}; logs in {local.home}")
        print(f"use it from a shell: export PREFECT_API_URL={local.api_url}")
        payload: dict[str, object] = {
            "ui": f"http://{LOOPBACK}:{args.port}",
            "api": local.api_url,
            "pids": local.pids(),
        }
    elif args.action == "down":
        stopped = local.stop()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        payload = {"stopped": stopped}
    else:
        healthy = local.healthy()
        print(f"Prefect server {'up' if healthy else 'down'} at {local.api_url}; processes {local.pids()}")
        payload = {"healthy": healthy, "api": local.api_url, "pids": local.pids()}
    if args.json:
        emit_json(payload)
    return 0


if __name__ == "__main__":
    run_cli(main)
