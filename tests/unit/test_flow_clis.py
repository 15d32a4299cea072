"""Every flow's CLI is generated from its signature: exactly its parameters, with the same defaults and limits."""

from __future__ import annotations

import importlib
import inspect
import json
import typing
from typing import Any

import pytest

from flows.cli import CLI_ONLY, BadInput, FlowCli, flow_parameters
from tests.conftest import run_cli
from tests.unit.test_layout import FLOW_MODULES, module_name

MODULES = [module_name(p) for p in FLOW_MODULES]


def cli_of(module: str) -> FlowCli:
    cli = importlib.import_module(module).CLI
    assert isinstance(cli, FlowCli)
    assert cli.prog == f"python -m {module}"
    return cli


def limits(annotation: Any) -> list[Any]:
    return [m for arg in typing.get_args(annotation)[1:] for m in getattr(arg, "metadata", [])]


@pytest.mark.parametrize("module", MODULES)
def test_the_cli_offers_exactly_the_flows_parameters(module: str) -> None:
    cli = cli_of(module)
    parser, _, model = cli.parser()
    options = {o for action in parser._actions for o in action.option_strings if o.startswith("--")} - {"--help"}
    parameters = flow_parameters(cli.flow)
    expected = {"--" + cli.names.get(name, name).replace("_", "-") for name, _, _ in parameters}
    expected |= {"--" + name.replace("_", "-") for name in [*cli.extras, *CLI_ONLY]}
    assert options == expected
    for name, annotation, default in parameters:
        field = model.model_fields[name]
        assert field.default == default, name
        assert field.metadata == limits(annotation) or not limits(annotation), name
        if limits(annotation):
            assert field.description, f"{module}: {name} has no help"


@pytest.mark.parametrize("module", MODULES)
def test_no_options_parse_to_the_flows_defaults(module: str) -> None:
    cli = cli_of(module)
    if module == "flows.scenario":
        return  # its default start is fixed; the check is about now: covered by the flow tests
    parameters, as_json = cli.parse([])
    defaults = {name: default for name, _, default in flow_parameters(cli.flow)}
    assert {k: v for k, v in parameters.items() if k in defaults} == defaults
    assert as_json is False


@pytest.mark.parametrize(
    ("module", "args"),
    [("flows.plan", ["--lead-time-hours", "0", "--json"]), ("flows.scenario", ["--seed", "0", "--days", "1"])],
)
def test_zero_is_accepted_where_the_flow_accepts_it(module: str, args: list[str]) -> None:
    parameters, _ = cli_of(module).parse(args)
    assert 0 in parameters.values()


@pytest.mark.parametrize(
    ("module", "args", "needle"),
    [
        ("flows.plan", ["--lookback-hours", "745"], "--lookback-hours=745"),
        ("flows.plan", ["--as-of", "2026-01-01T00:00:00"], "time zone"),
        ("flows.generate", ["--stores", "0"], "at least 1"),
        ("flows.scenario", ["--stores", "10001"], "at most 10000"),
        ("flows.trucks", ["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line(module: str, args: list[str], needle: str) -> None:
    with pytest.raises(BadInput) as caught:
        cli_of(module).parse(args)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"python -m {module}: error:")
    assert needle in line


@pytest.mark.parametrize("module", MODULES)
def test_help_names_every_option(module: str) -> None:
    cli = cli_of(module)
    parser, _, _ = cli.parser()
    text = parser.format_help()  # what `--help` prints (the command itself: the test below)
    assert text.startswith(f"usage: python -m {module}")
    for name, _, _ in flow_parameters(cli.flow):
        assert "--" + cli.names.get(name, name).replace("_", "-") in text


def test_help_as_a_user_runs_it() -> None:
    result = run_cli(["-m", "flows.plan", "--help"])
    assert result.returncode == 0, result.stderr
    assert "--lookback-hours" in result.stdout
    assert "--store" in result.stdout


def test_a_bad_value_exits_2_with_one_line_before_anything_starts() -> None:
    result = run_cli(["-m", "flows.scenario", "--seed", "-1"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "--seed" in result.stderr


def test_the_scenario_parameters_json_round_trip() -> None:
    """The Run form's schema carries each parameter's description (the Annotated alias's)."""
    from flows.scenario import scenario

    schema = scenario.parameters.model_dump()
    assert schema["properties"]["stores"]["description"]
    assert schema["properties"]["stores"]["maximum"] == 10_000
    json.dumps(schema)
    assert inspect.signature(scenario.fn).parameters["seed"].default == 7
