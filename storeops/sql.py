"""Load SQL from ``sql/`` by name, substituting only validated identifiers and shared fragments.

Values are never formatted into SQL: they are bound as awswrangler ``:name`` parameters.
A ``{name}`` slot on a line of its own is filled by ``sql/fragments/<name>.sql`` when that file
exists (SQL the queries share, such as the planning window's predicate; fragments may use
fragments), otherwise by a validated identifier.
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


SLOT = re.compile(r"^(?P<indent>[ \t]*)\{(?P<name>[a-z_]+)\}(?P<tail>,?)[ \t]*$", re.MULTILINE)


@cache
def _read(relative: str) -> str:
    if not re.match(r"^(fragments/)?[a-z_]+$", relative):
        raise ValueError(f"not a query name: {relative!r}")
    return (project_root() / "sql" / f"{relative}.sql").read_text()


def _fragment(match: re.Match[str]) -> str:
    path = project_root() / "sql" / "fragments" / f"{match['name']}.sql"
    if not path.exists():
        return match.group(0)
    text = SLOT.sub(_fragment, _read(f"fragments/{match['name']}"))  # fragments may use fragments
    lines = [line for line in text.splitlines() if not line.startswith("--")]
    lines[-1] += match["tail"]  # a slot followed by a comma: more columns follow
    return "\n".join(match["indent"] + line if line else line for line in lines)


def load_query(name: str, **identifiers: str) -> str:
    """The query ``sql/<name>.sql`` with its fragments inlined and its identifier slots filled by validated names."""
    text = SLOT.sub(_fragment, _read(name))
    for slot, value in identifiers.items():
        text = text.replace("{" + slot + "}", validate_identifier(value))
    leftover = re.search(r"\{[a-z_]+\}", text)
    if leftover:
        raise ValueError(f"query {name} needs identifier {leftover.group(0)}")
    return text
