"""Run a project query (``sql/<name>.sql``) on an in-memory DuckDB over pandas frames, as the emulator runs it.

The emulator (ministack, ``deployments/emulator_fixes.py``) executes the Athena SQL text unchanged on DuckDB
after replacing each Glue table reference by a relation over the table's files; the ``:name`` values never
reach it as parameters: awswrangler renders them client-side into literals (``_process_sql_params``, the
``presto`` engine: strings quoted with ``'`` doubled, floats as ``f"{value:f}"``) before
``StartQueryExecution``. Here the tables are pandas frames registered on the connection under the query's
slot names (``{daily_table}`` reads the frame given as ``daily_table``; a day-partitioned table needs its
``dt`` column) and each ``:name`` token outside string literals, quoted identifiers and comments becomes the
DuckDB prepared-statement parameter ``$name``, its value bound by DuckDB (never formatted into the text).

Floats are bound exactly, whereas awswrangler sends six decimals: a value that six decimals cannot hold
(``1/3``) would give Athena another result, so it is warned about.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from storeops.sql import load_query, validate_identifier

# a string literal, a quoted identifier, a comment, or a parameter (awswrangler's: `:name`, not `::type`)
_TOKENS = re.compile(
    r"(?P<string>'(?:[^']|'')*')"
    r'|(?P<quoted>"(?:[^"]|"")*")'
    r"|(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?<!:):(?P<name>[A-Za-z0-9_]+)(?![A-Za-z0-9_])",
    re.DOTALL,
)


def bind_parameters(sql: str) -> tuple[str, list[str]]:
    """``sql`` with its ``:name`` parameters as DuckDB's ``$name``, and the names in order of first use."""
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            return match.group(0)
        if name not in names:
            names.append(name)
        return f"${name}"

    return _TOKENS.sub(replace, sql), names


def _checked(name: str, value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if float(f"{value:f}") != value:
            warnings.warn(
                f"parameter {name}={value!r} has more than six decimals: awswrangler sends Athena {value:f}",
                stacklevel=3,
            )
        return value
    raise TypeError(f"parameter {name}: {type(value).__name__} is not bound here (str, int, float, bool or None)")


def run_sql(
    sql: str,
    tables: Mapping[str, pd.DataFrame],
    params: Mapping[str, Any] | None = None,
    connection: Any = None,
) -> pd.DataFrame:
    """Run ``sql`` (its ``:name`` parameters bound from ``params``) over ``tables`` (name -> frame) on
    ``connection`` (a new in-memory DuckDB by default; the frames are unregistered afterwards)."""
    import duckdb

    text, names = bind_parameters(sql)
    values = dict(params or {})
    missing = [n for n in names if n not in values]
    if missing:
        raise KeyError(f"the query needs parameters {', '.join(missing)}")
    own = connection is None
    con = duckdb.connect(":memory:") if own else connection
    try:
        for name, frame in tables.items():
            con.register(validate_identifier(name), frame)
        result = con.execute(text, {n: _checked(n, values[n]) for n in names})
        return result.df()
    finally:
        if own:
            con.close()
        else:
            for name in tables:
                con.unregister(name)


def run_query(
    name: str,
    tables: Mapping[str, pd.DataFrame],
    params: Mapping[str, Any] | None = None,
    connection: Any = None,
) -> pd.DataFrame:
    """The project query ``sql/<name>.sql`` (``storeops.sql.load_query``) with each identifier slot filled by
    its own name and read from ``tables[slot]`` (e.g. ``daily_table``, ``products_table``)."""
    sql = load_query(name, **{slot: slot for slot in tables})
    return run_sql(sql, tables, params, connection)
