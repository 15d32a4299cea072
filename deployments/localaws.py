"""The embedded local AWS: the pinned ministack as a background process on 127.0.0.1.

    python -m deployments.localaws start|stop|status|reset [--port P] [--json]

State (persisted S3 data and service state), the PID file and the log live in
``Settings.local_home`` (default ``.localaws/`` in the project, git-ignored). The process
starts with the fixes of ``deployments.emulator_fixes`` installed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from deployments.processes import http_ok, process_alive, signal_group, wait_gone
from storeops.cli import emit_json, run_cli
from storeops.exceptions import EmulatorError
from storeops.settings import LOOPBACK, Settings, load_settings, project_root

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

    # -- queries --------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The PID of the emulator this home started, if that process still runs."""
        try:
            record = json.loads(self.pid_file.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not process_alive(pid) or not _is_our_server(pid):
            return None
        return pid

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when the emulator answers its health endpoint."""
        return http_ok(f"{self.endpoint}/_ministack/health", timeout)

    def status(self) -> EmulatorStatus:
        pid = self.pid()
        return EmulatorStatus(
            running=pid is not None and self.healthy(),
            pid=pid,
            endpoint=self.endpoint,
            home=str(self.home),
            log=str(self.log_file),
        )

    # -- actions --------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> EmulatorStatus:
        """Start the emulator unless it runs already; wait until it is healthy."""
        if self.pid() is not None:
            if self._wait_healthy(timeout):
                return self.status()
            raise EmulatorError(
                f"the emulator (PID {self.pid()}) runs but does not answer on {self.endpoint}",
                hint=f"see {self.log_file}, then `python -m deployments.localaws stop` and start again",
            )
        if _port_in_use(self.port):
            raise EmulatorError(
                f"port {self.port} on {LOOPBACK} is in use by another process",
                hint="stop that process, or choose another port with STOREOPS_LOCAL_PORT (or --port)",
            )
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "state").mkdir(exist_ok=True)
        (self.home / "s3").mkdir(exist_ok=True)
        log = self.log_file.open("ab")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE],
                cwd=project_root(),
                env=self._server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its Lambda workers too
            )
        finally:
            log.close()
        self.pid_file.write_text(json.dumps({"pid": process.pid, "port": self.port}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise EmulatorError(
                    f"the emulator exited at start with code {process.returncode}: {self._last_log_line()}",
                    hint=f"see {self.log_file}; is the `local` extra installed (pip install -e '.[local]')?",
                )
            if self.healthy(timeout=0.5):
                return self.status()
            time.sleep(0.05)
        self.stop()
        raise EmulatorError(f"the emulator did not become healthy within {timeout:.0f} s", hint=f"see {self.log_file}")

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the emulator with SIGTERM (its whole process group); True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        signal_group(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def reset(self) -> None:
        """Wipe every service's state (about 1 ms)."""
        request = urllib.request.Request(f"{self.endpoint}/_ministack/reset", method="POST", data=b"")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise EmulatorError(
                f"cannot reset the emulator at {self.endpoint}: {exc}",
                hint="start it with `python -m deployments.localaws start`",
            ) from None

    # -- internals ------------------------------------------------------------------------
    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy(timeout=0.5):
                return True
            time.sleep(0.05)
        return False

    def _server_environment(self) -> dict[str, str]:
        # Handlers inherit this environment: keep the user's real AWS settings out of it.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STOREOPS_"))}
        env.update(
            GATEWAY_PORT=str(self.port),
            BIND_HOST=LOOPBACK,
            IOT_MTLS_ENABLED="0",
            PERSIST_STATE="1",
            S3_PERSIST="1",
            STATE_DIR=str(self.home / "state"),
            S3_DATA_DIR=str(self.home / "s3"),
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",  # noqa: S106
            AWS_DEFAULT_REGION=self.settings.region,
            PYTHONUNBUFFERED="1",
            TZ="UTC",  # Athena's DuckDB renders timestamps in the process time zone
        )
        return env

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"


def _is_our_server(pid: int) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # no procfs: trust the PID file
        return True
    return SERVER_MODULE in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.localaws",
        description="Run the embedded local AWS emulator (ministack) on 127.0.0.1.",
    )
    parser.add_argument("action", choices=["start", "stop", "status", "reset"])
    parser.add_argument("--port", type=int, help="emulator port (default: STOREOPS_LOCAL_PORT or 4566)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    settings = load_settings(local_port=args.port)
    emulator = LocalAws(settings)
    if args.action == "start":
        was_running = emulator.pid() is not None
        status = emulator.start()
        message = "already running" if was_running else "started"
        print(f"emulator {message}: {status.endpoint} (PID {status.pid}, log {status.log})")
    elif args.action == "stop":
        stopped = emulator.stop()
        print("emulator stopped" if stopped else "emulator was not running")
        status = emulator.status()
    elif args.action == "reset":
        emulator.reset()
        print(f"emulator state wiped at {emulator.endpoint}")
        status = emulator.status()
    else:
        status = emulator.status()
        state = f"running (PID {status.pid})" if status.running else "stopped"
        print(f"emulator {state}: {status.endpoint}, home {status.home}")
    if args.json:
        emit_json({"action": args.action, **asdict(status)})
    return 0 if args.action != "status" or status.running else 1


if __name__ == "__main__":
    run_cli(main)
