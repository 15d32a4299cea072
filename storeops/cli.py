"""What every command-line entry point shares: one-line errors, exit codes, ``--json`` output.

Usage errors exit 2 (argparse's convention), domain errors exit with their ``exit_code``,
Ctrl-C exits 130. With ``--json`` the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn

from storeops.clock import parse_timestamp
from storeops.exceptions import StoreOpsError


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage error is one line, ``PROG: error: REASON; see `PROG --help```, and exit code 2
    (argparse's own prints its usage block first)."""

    def usage_error(self, message: str) -> str:
        """argparse's ``message`` and where to read more."""
        return f"{message}; see `{self.prog} --help`"

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {self.usage_error(message)}\n")


def _whole_number_at_least(minimum: int, rule: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


positive_int = _whole_number_at_least(1, "at least 1")
"""argparse type: an integer >= 1."""
non_negative_int = _whole_number_at_least(0, "0 or more")
"""argparse type: an integer >= 0."""


def iso_time(text: str) -> datetime:
    """argparse type: an ISO-8601 time with a time zone (``2026-11-26T12:00:00Z``)."""
    try:
        return parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time with a time zone, e.g. 2026-11-26T12:00:00Z, got {text!r}"
        ) from None


def emit_json(payload: Mapping[str, Any]) -> None:
    """Print one JSON object as the last stdout line."""
    sys.stdout.flush()
    print(json.dumps(payload, default=str, sort_keys=True), flush=True)


def run_cli(main: Callable[[], int | None]) -> None:
    """Run ``main`` and exit with its code; turn known errors into one line on stderr."""
    try:
        code = main() or 0
    except StoreOpsError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        code = exc.exit_code
    except BrokenPipeError:  # e.g. `... | head`: the reader left, nothing to report
        sys.stderr.close()
        code = 0
    except KeyboardInterrupt:
        print("interrupted: stopped cleanly, nothing left half-done", file=sys.stderr)
        code = 130
    raise SystemExit(code)


def print_summary(title: str, rows: list[tuple[str, Any]]) -> None:
    """A two-column summary table on stdout."""
    width = max((len(label) for label, _ in rows), default=0)
    print(title)
    print("-" * max(len(title), width + 14))
    for label, value in rows:
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        print(f"  {label:<{width}}  {shown}")
