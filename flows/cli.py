"""Each flow's command line, generated from the flow's signature: ``python -m flows.<module> --help``.

The options are the flow's parameters (``lookback_hours`` -> ``--lookback-hours``; a ``bool`` is a
flag), with the types, limits, defaults and help of the signature's ``Annotated`` aliases
(``storeops/parameters.py``). Parsing is pydantic-settings' CLI support (``CliSettingsSource``,
argparse underneath): the values go through the same pydantic validation as the flow's own
``validate_parameters``, so the CLI can neither refuse what the flow accepts nor accept what it
refuses, and it adds no dependency (pydantic-settings already loads ``storeops.settings``; cyclopts
and typer would be a second validation layer beside pydantic's). What every CLI adds lives here once:
``--json`` (one JSON object as the last stdout line), exit code 2 with a one-line reason on bad input,
and the result as a ``rich`` table built from the rows the flow's Prefect artifact shows. The ``deployments``
commands declare their options by hand on the same base, ``CliOptions``, and get the same parsing.

A flow module declares ``CLI = FlowCli(...)`` and ends with::

    if __name__ == "__main__":
        from deployments.cli import run  # sets up the environment first: the one import of deployments
        run(CLI)
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import AliasChoices, BaseModel, Field, ValidationError, create_model
from pydantic_settings import BaseSettings, CliApp, CliSettingsSource, SettingsConfigDict, SettingsError

from storeops.cli import OneLineArgumentParser
from storeops.exceptions import StoreOpsError

Rows = list[dict[str, Any]]
CLI_ONLY = ("json",)  # options every CLI has that are not flow parameters


class CliOptions(BaseSettings):
    """A command's options, read from the command line only (no environment, no files).

    A generated flow CLI's model derives from it, and so does each ``deployments`` command's, declared by
    hand: its fields are the options (``CliPositionalArg[Literal[...]]`` for an action), ``cli_prog_name``
    the program, the class docstring ``--help``'s description; a ``model_validator`` raising ``ValueError``
    checks options together. ``--json`` is every command's.
    """

    model_config = SettingsConfigDict(
        cli_kebab_case=True,
        cli_implicit_flags="toggle",  # `--dry-run`, not `--dry-run true`
        cli_exit_on_error=False,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        extra="forbid",
    )

    json_output: bool = Field(
        False, validation_alias=AliasChoices("json"), description="Print one JSON object as the last line."
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, *_: Any, **__: Any) -> tuple[Any, ...]:
        return (init_settings,)

    @classmethod
    def parser(
        cls, prog: str | None = None, description: str | None = None
    ) -> tuple[argparse.ArgumentParser, CliSettingsSource[Any]]:
        """The argparse parser pydantic-settings builds from the fields, with readable placeholders."""
        prog = prog or str(cls.model_config.get("cli_prog_name"))
        parser = _OneLineParser(prog=prog, description=cls.__doc__ if description is None else description)
        source: CliSettingsSource[Any] = CliSettingsSource(cls, root_parser=parser)
        for action in parser._actions:
            info = cls.model_fields.get(action.dest)
            choices = typing.get_args(info.annotation) if info and not action.option_strings else ()
            extra = info.json_schema_extra if info else None
            if choices and all(isinstance(c, str) for c in choices):  # an action: argparse names the choices
                action.choices, action.metavar = choices, "{" + ",".join(choices) + "}"
            elif isinstance(extra, dict) and "metavar" in extra:  # Field(json_schema_extra={"metavar": ...})
                action.metavar = str(extra["metavar"])
            if isinstance(action.help, str):
                action.help = action.help.replace(" (default: None)", "")  # no default: its help says what it means
            if isinstance(action.metavar, str) and "{" not in action.metavar:
                action.metavar = _METAVARS.get(action.metavar, action.metavar.upper())
        for actions in (parser._actions, *(group._group_actions for group in parser._action_groups)):
            actions.sort(key=lambda action: action.option_strings == ["--json"])  # --json last, as before
        return parser, source

    @classmethod
    def parse(
        cls,
        argv: Sequence[str] | None = None,
        prog: str | None = None,
        description: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> Self:
        """The options in ``argv`` (default ``sys.argv[1:]``); ``BadInput`` (one line) if they are not valid."""
        parser, source = cls.parser(prog, description)
        args = list(sys.argv[1:] if argv is None else argv)
        try:
            return CliApp.run(cls, cli_args=args, cli_settings_source=source)
        except ValidationError as exc:
            raise BadInput(parser.prog, one_line(exc, cls, names)) from None
        except SettingsError as exc:
            raise BadInput(parser.prog, str(exc).removeprefix("error parsing CLI: ")) from None

    @classmethod
    def parse_or_exit(cls, argv: Sequence[str] | None = None) -> Self:
        """``parse``, but bad input prints its one line and exits 2 (a command's ``main``)."""
        try:
            return cls.parse(argv)
        except BadInput as exc:
            print(str(exc), file=sys.stderr)
            raise SystemExit(2) from None


@dataclass(frozen=True)
class Table:
    """What a CLI prints: a title and rows (the same dicts a Prefect table artifact takes)."""

    title: str
    rows: Rows


@dataclass(frozen=True)
class FlowCli:
    """A flow's command line: everything but the options, which come from the flow's signature.

    ``tables`` turns the flow's result into what is printed; ``check`` runs the flow's own input checks
    before the environment is set up (the flow runs them again); ``names`` respells an option
    (``{"stores": "store"}``: ``--store S0001 --store S0002``); ``extras`` are CLI-only options
    (``{name: (annotation, Field(...))}``) that ``to_parameters`` folds into the flow's parameters;
    ``exit_code`` maps a result to the exit code (default 0); ``to_json`` what ``--json`` prints (default the result).
    """

    flow: Any  # a prefect Flow; its ``fn`` carries the signature
    prog: str
    tables: Callable[[dict[str, Any]], Sequence[Table]]
    check: Callable[..., object] | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    extras: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)  # (annotation, Field(...))
    to_parameters: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    exit_code: Callable[[dict[str, Any]], int] | None = None
    to_json: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def description(self) -> str:
        return str(self.flow.description or "")

    def model(self) -> type[CliOptions]:
        """The pydantic-settings model of the options: the flow's parameters, the extras and ``--json``."""
        fields: dict[str, Any] = {}
        for name, annotation, default in flow_parameters(self.flow):
            spelled = self.names.get(name)
            alias = {"validation_alias": AliasChoices(spelled)} if spelled else {}
            fields[name] = (annotation, Field(default, **alias))  # type: ignore[call-overload]
        for name, (annotation, info) in self.extras.items():
            fields[name] = (annotation, info)
        return create_model(f"{self.flow.name}_cli", __base__=CliOptions, **fields)

    def parser(self) -> tuple[argparse.ArgumentParser, CliSettingsSource[Any], type[CliOptions]]:
        model = self.model()
        return *model.parser(self.prog, self.description), model

    def parse(self, argv: Sequence[str] | None = None) -> tuple[dict[str, Any], bool]:
        """The flow's parameters from ``argv`` and whether ``--json`` was given; ``BadInput`` (one line) if not."""
        values = self.model().parse(argv, self.prog, self.description, self.names).model_dump()
        as_json = bool(values.pop("json_output"))
        try:
            parameters = self.to_parameters(values) if self.to_parameters else values
            if self.check:
                self.check(**parameters)
        except StoreOpsError as exc:
            raise BadInput(self.prog, exc.one_line()) from None
        return parameters, as_json


class BadInput(Exception):
    """A command line the flow would refuse: one line, exit code 2 (argparse's convention)."""

    def __init__(self, prog: str, reason: str) -> None:
        super().__init__(f"{prog}: error: {reason}")


class _OneLineParser(OneLineArgumentParser):
    """A usage error is ``BadInput`` (the caller prints it and exits 2), in the same one line."""

    def error(self, message: str) -> typing.NoReturn:
        raise BadInput(self.prog, self.usage_error(message))


_METAVARS = {
    "AwareDatetime": "TIME",
    "datetime": "TIME",
    "date": "DAY",
    "list[str]": "ID",
    "str": "TEXT",
    "int": "N",
    "float": "X",
}


def flow_parameters(flow: Any) -> list[tuple[str, Any, Any]]:
    """``(name, annotation with its limits, default)`` of each parameter of ``flow``'s signature."""
    hints = typing.get_type_hints(flow.fn, include_extras=True)
    return [
        (name, hints[name], parameter.default)
        for name, parameter in inspect.signature(flow.fn).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def flow_defaults(flow: Any) -> dict[str, Any]:
    """The defaults of ``flow``'s signature (what a run gets for a parameter it was not given)."""
    return {name: default for name, _, default in flow_parameters(flow) if default is not inspect.Parameter.empty}


def option(name: str, names: Mapping[str, str] | None = None) -> str:
    return "--" + (names or {}).get(name, name).replace("_", "-")


def _limits(model: type[BaseModel], name: str) -> dict[str, Any]:
    info = model.model_fields.get(name)
    limits: dict[str, Any] = {}
    for item in info.metadata if info else []:
        for bound in ("ge", "gt", "le", "lt"):
            if getattr(item, bound, None) is not None:
                limits[bound] = getattr(item, bound)
    return limits


def one_line(exc: ValidationError, model: type[BaseModel], names: Mapping[str, str] | None = None) -> str:
    """The first problem pydantic found, as ``--option=value: why`` (limits and formats spelled out)."""
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "value_error" and not name:  # a model_validator's check of options together
        return str(first["ctx"]["error"])
    shown = f"{option(name, names)}={first.get('input')}" if name else "the options"
    kind, limits = first["type"], _limits(model, name)
    low = f"at least {limits['ge']}" if "ge" in limits else f"more than {limits['gt']}" if "gt" in limits else ""
    high = f"at most {limits['le']}" if "le" in limits else f"less than {limits['lt']}" if "lt" in limits else ""
    span = f" ({limits.get('ge', limits.get('gt'))} to {limits.get('le', limits.get('lt'))})" if low and high else ""
    if kind in ("greater_than_equal", "greater_than"):
        why = f"must be {low}{span}"
    elif kind in ("less_than_equal", "less_than"):
        why = f"must be {high}{span}"
    elif kind == "timezone_aware":
        why = "needs a time zone, e.g. 2026-11-26T12:00:00Z"
    elif kind.startswith("datetime_"):
        why = "expected a time like 2026-11-26T12:00:00Z"
    elif kind.startswith("date_"):
        why = "expected a day like 2026-11-28"
    elif kind == "value_error":
        why = str(first["ctx"]["error"])
    elif kind == "string_pattern_mismatch":
        info = model.model_fields.get(name)
        why = f"not in the expected form: {info.description if info else first['msg']}"
    else:
        why = re.sub(r"\s+", " ", str(first["msg"]))
    return f"{shown}: {why}"
