"""Every ``deployments`` command's options are a pydantic model (``flows.cli.CliOptions``): ``--help`` works, bad
input exits 2 with one line naming the problem, and ``--json`` prints one JSON object as the last line."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from flows.cli import CliOptions

# module -> (its program name, an action it needs first, if any)
COMMANDS = {
    "deployments.cost": ("python -m deployments.cost", []),
    "deployments.demo": ("python -m flows.demo", []),
    "deployments.environment": ("python -m deployments.environment", []),
    "deployments.template_scan": ("python -m deployments.template_scan", []),
    "deployments.stack": ("python -m deployments.stack", ["outputs"]),
    "deployments.flows_stack": ("python -m deployments.flows_stack", ["outputs"]),
    "deployments.localaws": ("python -m deployments.localaws", ["status"]),
    "deployments.prefect_local": ("python -m deployments.prefect_local", ["status"]),
}


def main_of(module: str) -> Callable[[list[str]], int]:
    main: Callable[[list[str]], int] = importlib.import_module(module).main
    return main


@pytest.mark.parametrize("module", COMMANDS)
def test_help_names_the_program_and_json(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    prog, _ = COMMANDS[module]
    with pytest.raises(SystemExit) as exited:
        main_of(module)(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog}")
    assert "--json" in out


@pytest.mark.parametrize("module", COMMANDS)
def test_each_command_declares_its_options_once(module: str) -> None:
    models = [
        value
        for value in vars(importlib.import_module(module)).values()
        if isinstance(value, type) and issubclass(value, CliOptions) and value is not CliOptions
    ]
    assert len(models) == 1, models
    assert models[0].model_config.get("cli_prog_name") == COMMANDS[module][0]


BAD_INPUT = [
    *[(module, [*action, "--bogus"], "unrecognized arguments: --bogus") for module, (_, action) in COMMANDS.items()],
    ("deployments.cost", ["--months", "0"], "--months=0: must be at least 1"),
    ("deployments.demo", ["--days", "61"], "--days=61: must be at most 60"),
    ("deployments.stack", [], "the following arguments are required: {deploy,verify,outputs,delete}"),
    ("deployments.stack", ["explode"], "invalid choice: 'explode'"),
    ("deployments.stack", ["delete"], "add --yes to confirm"),
    ("deployments.stack", ["deploy", "--target", "gcp"], "--target=gcp: Input should be 'local' or 'aws'"),
    ("deployments.stack", ["deploy", "--parameter", "novalue"], "--parameter 'novalue': expected KEY=VALUE"),
    ("deployments.flows_stack", [], "the following arguments are required"),
    ("deployments.flows_stack", ["outputs", "--image", "newest"], "apply to deploy only"),
    ("deployments.flows_stack", ["outputs", "--output", "x.json"], "--output applies to pool-template only"),
    ("deployments.flows_stack", ["deploy", "--subnets", "vpc-1"], "expected subnet ids"),
    ("deployments.flows_stack", ["deploy", "--prefect-api-url", "ftp://x"], "expected an http(s) URL"),
    ("deployments.localaws", ["explode"], "invalid choice: 'explode' (choose from 'start', 'stop', 'status', 'reset')"),
    ("deployments.localaws", ["status", "--port", "http"], "--port=http: Input should be a valid integer"),
    ("deployments.prefect_local", [], "the following arguments are required: {up,down,status}"),
    ("deployments.prefect_local", ["up", "--port", "80"], "--port=80: must be at least 1024"),
]


@pytest.mark.parametrize(("module", "argv", "needle"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line(
    module: str, argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main_of(module)(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"{COMMANDS[module][0]}: error: ")
    assert needle in err


def _no_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deployments.environment.set_up", lambda settings: None)


def _no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.template_scan import ScanResult

    monkeypatch.setattr("deployments.template_scan.scan_all", lambda tools: {"template.yaml": ScanResult(passed=3)})


def _outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("deployments.stack", "deployments.flows_stack"):
        monkeypatch.setattr(f"{module}.stack_outputs", lambda clients, name: {"LakeBucket": "lake"})
        monkeypatch.setattr(f"{module}.AwsClients.from_settings", classmethod(lambda cls, settings: object()))
    monkeypatch.setattr("deployments.stack._ensure_emulator", lambda settings, start: None)


# module -> (argv, what stands in for the environment, a key of the JSON object)
JSON = {
    "deployments.stack": (["outputs"], _outputs, "outputs"),
    "deployments.localaws": (["status", "--port", "4999"], lambda monkeypatch: None, "running"),
    "deployments.prefect_local": (["status", "--port", "4999"], lambda monkeypatch: None, "healthy"),
    "deployments.flows_stack": (["outputs"], _outputs, "outputs"),
    "deployments.environment": ([], _no_set_up, "stack"),
    "deployments.template_scan": ([], _no_scan, "templates"),
}


@pytest.mark.parametrize("module", JSON)
def test_json_is_one_object_on_the_last_line(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, stand_in, key = JSON[module]
    stand_in(monkeypatch)
    assert main_of(module)([*argv, "--json"]) in (0, 1)
    payload: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert key in payload
