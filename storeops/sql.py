"""Load SQL from ``sql/`` by name, substituting only validated identifiers.

Values are never formatted into SQL: they are bound as awswrangler ``:name`` parameters.
"""

from __future__ import annotations

import re
from functools import cache

from storeops.settings import project_root

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


def validate_identifier(name: str) -> str:
    """A Glue/Athena table or database name, or ValueError."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"not a valid table or database name: {name!r}")
    return name


@cache
def _read(name: str) -> str:
    if not re.match(r"^[a-z_]+$", name):
        raise ValueError(f"not a query name: {name!r}")
    return (project_root() / "sql" / f"{name}.sql").read_text()


def load_query(name: str, **identifiers: str) -> str:
    """The query ``sql/<name>.sql`` with its ``{identifier}`` slots filled by validated names."""
    text = _read(name)
    for slot, value in identifiers.items():
        text = text.replace("{" + slot + "}", validate_identifier(value))
    leftover = re.search(r"\{[a-z_]+\}", text)
    if leftover:
        raise ValueError(f"query {name} needs identifier {leftover.group(0)}")
    return text
