"""Running a flow from its command line (``flows/cli.py`` generates the options): parse, set the environment
up (``deployments/environment.py::set_up``), run the flow against the Prefect API
(``deployments/prefect_api.py``), print its tables (rich) and, with ``--json``, its result.

Outside ``flows/`` because it sets the environment up: a flow module imports it only under
``if __name__ == "__main__":`` (``tests/unit/test_layout.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from deployments.environment import set_up
from deployments.prefect_api import prefect_api
from flows.cli import BadInput, FlowCli, Table
from flows.console import quiet_expected_tracebacks
from storeops.cli import emit_json, run_cli
from storeops.settings import Settings, load_settings


def print_tables(tables: Sequence[Table]) -> None:
    """Each table with rich (wide enough off a terminal that a pipe or a test sees whole cells)."""
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(soft_wrap=True) if sys.stdout.isatty() else Console(width=200, soft_wrap=True)
    for table in tables:
        shown = RichTable(title=table.title, title_justify="left")
        columns = list(table.rows[0]) if table.rows else ["(nothing)"]
        for column in columns:
            shown.add_column(column, overflow="fold")
        for row in table.rows:
            shown.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        console.print(shown)


def run(
    cli: FlowCli, argv: list[str] | None = None, set_up_step: Callable[[Settings, dict[str, Any]], object] | None = None
) -> None:
    """``python -m flows.<module>``: exit 2 with one line on bad input, else set up, run, print, exit."""

    def main() -> int:
        try:
            parameters, as_json = cli.parse(argv)
        except BadInput as exc:
            print(str(exc), file=sys.stderr)
            return 2
        settings = load_settings()  # fail on bad settings before anything starts
        if set_up_step:
            set_up_step(settings, parameters)
        else:
            set_up(settings)
        quiet_expected_tracebacks()
        with prefect_api(settings.local_home):
            result = cli.flow(**parameters)
        print_tables(cli.tables(result))
        if as_json:
            emit_json(cli.to_json(result) if cli.to_json else result)
        return cli.exit_code(result) if cli.exit_code else 0

    run_cli(main)
