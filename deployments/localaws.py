"""The embedded local AWS: the pinned ministack as a background process on 127.0.0.1.

    python -m deployments.localaws start|stop|status|reset [--port P] [--json]

State (persisted S3 data and service state), the PID file and the log live in
``Settings.local_home`` (default ``.localaws/`` in the project, git-ignored). The process
starts with the fixes of ``deployments.emulator_fixes`` installed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import asdict, dataclass
from typing import Literal

import psutil
from pydantic import Field
from pydantic_settings import CliPositionalArg, SettingsConfigDict

from deployments import processes
from flows.cli import CliOptions
from storeops.cli import emit_json, run_cli
from storeops.exceptions import EmulatorError
from storeops.settings import LOOPBACK, Settings, load_settings

SERVER_MODULE = "deployments.emulator_server"


@dataclass(frozen=True)
class EmulatorStatus:
    """What ``status`` reports."""

    running: bool
    pid: int | None
    endpoint: str
    home: str
    log: str


class LocalAws:
    """Start, stop, check and reset one emulator process for one settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.local_home
        self.port = settings.local_port
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self.pid_file = self.home / "ministack.pid"
        self.log_file = self.home / "ministack.log"

    def pid(self) -> int | None:
        """The PID of the emulator this home started, if that process still runs (and is the emulator)."""
        try:
            pid = int(json.loads(self.pid_file.read_text())["pid"])
            ours = processes.process_alive(pid) and SERVER_MODULE in psutil.Process(pid).cmdline()
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            return None
        return pid if ours else None

    @property
    def health_url(self) -> str:
        return f"{self.endpoint}/_ministack/health"

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when the emulator answers its health endpoint."""
        return processes.http_ok(self.health_url, timeout)

    def status(self) -> EmulatorStatus:
        pid = self.pid()
        running = pid is not None and self.healthy()
        return EmulatorStatus(running, pid, self.endpoint, str(self.home), str(self.log_file))

    def start(self, timeout: float = 30.0, *, tethered: bool = False) -> EmulatorStatus:
        """Start the emulator unless it runs already; wait until it is healthy. ``tethered``: it exits
        when this process does, however this process dies (a benchmark's or a test session's emulator).
        Starts take turns (threads and processes alike): one emulator is started, the others find it."""
        with processes.home_lock(self.home, "emulator"):
            process = None if self.pid() is not None else self._spawn(tethered)
            if processes.wait_started(self.health_url, process, lambda: self.pid() is not None, timeout):
                return self.status()
            if process is not None:
                exit_code = process.poll()
                processes.stop_processes(processes.process_tree(process.pid))
                self.pid_file.unlink(missing_ok=True)
                if exit_code is not None:
                    raise EmulatorError(
                        f"the emulator exited at start with code {exit_code}: {self._last_log_line()}",
                        hint=f"see {self.log_file}; is the `local` extra installed (pip install -e '.[local]')?",
                    )
            raise EmulatorError(
                f"the emulator did not answer on {self.endpoint} within {timeout:.0f} s",
                hint=f"see {self.log_file}, then `python -m deployments.localaws stop` and start again",
            )

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the emulator and its Lambda workers (SIGTERM, then SIGKILL); True if one was running."""
        with processes.home_lock(self.home, "emulator"):
            pid = self.pid()
            if pid is not None:
                processes.stop_processes(processes.process_tree(pid), timeout=timeout)
            self.pid_file.unlink(missing_ok=True)
            return pid is not None

    def reset(self) -> None:
        """Wipe every service's state: milliseconds when idle, but 15 s was seen on a loaded machine after a big run."""
        try:
            processes.http_post(f"{self.endpoint}/_ministack/reset", b"", timeout=60)
        except OSError as exc:
            raise EmulatorError(
                f"cannot reset the emulator at {self.endpoint}: {exc}",
                hint="start it with `python -m deployments.localaws start`",
            ) from None

    def _spawn(self, tethered: bool) -> subprocess.Popen[bytes]:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((LOOPBACK, self.port)) == 0:
                raise EmulatorError(
                    f"port {self.port} on {LOOPBACK} is in use by another process",
                    hint="stop that process, or choose another port with STOREOPS_LOCAL_PORT (or --port)",
                )
        for directory in (self.home, self.home / "state", self.home / "s3"):
            directory.mkdir(parents=True, exist_ok=True)
        process = processes.start_module([SERVER_MODULE], self._server_environment(), self.log_file, tethered=tethered)
        self.pid_file.write_text(json.dumps({"pid": process.pid, "port": self.port}))
        return process

    def _server_environment(self) -> dict[str, str]:
        # Handlers inherit this environment: keep the user's real AWS settings out of it.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STOREOPS_"))}
        return env | {
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": LOOPBACK,
            "IOT_MTLS_ENABLED": "0",
            "PERSIST_STATE": "1",
            "S3_PERSIST": "1",
            "STATE_DIR": str(self.home / "state"),
            "S3_DATA_DIR": str(self.home / "s3"),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": self.settings.region,
            "PYTHONUNBUFFERED": "1",
            "TZ": "UTC",  # Athena's DuckDB renders timestamps in the process time zone
        }

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"


class LocalAwsOptions(CliOptions):
    """Run the embedded local AWS emulator (ministack) on 127.0.0.1."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.localaws")

    action: CliPositionalArg[Literal["start", "stop", "status", "reset"]] = Field(
        description="start or stop it; status: exit 1 when it is not running; reset: wipe every service's state"
    )
    port: int | None = Field(
        None, ge=1024, le=65535, description="The emulator's port (default STOREOPS_LOCAL_PORT, else 4566)."
    )


def main(argv: list[str] | None = None) -> int:
    args = LocalAwsOptions.parse_or_exit(argv)
    emulator = LocalAws(load_settings(local_port=args.port))
    if args.action == "start":
        was_running = emulator.pid() is not None
        status = emulator.start()
        message = "already running" if was_running else "started"
        print(f"emulator {message}: {status.endpoint} (PID {status.pid}, log {status.log})")
    elif args.action == "stop":
        print("emulator stopped" if emulator.stop() else "emulator was not running")
    elif args.action == "reset":
        emulator.reset()
        print(f"emulator state wiped at {emulator.endpoint}")
    status = emulator.status()
    if args.action == "status":
        state = f"running (PID {status.pid})" if status.running else "stopped"
        print(f"emulator {state}: {status.endpoint}, home {status.home}")
    if args.json_output:
        emit_json({"action": args.action, **asdict(status)})
    return 0 if args.action != "status" or status.running else 1


if __name__ == "__main__":
    run_cli(main)
