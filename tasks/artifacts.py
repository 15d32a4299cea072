"""How numbers read in Prefect artifacts: thousands separated, a few decimals, units kept by the caller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def figure(value: Any, decimals: int = 2) -> Any:
    """``1234567`` -> ``"1,234,567"``; ``0.123456`` -> ``"0.12"``; anything else as it is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return value


def figures(row: dict[str, Any]) -> dict[str, Any]:
    """A table row with each number formatted by ``figure``."""
    return {key: figure(value) for key, value in row.items()}


def utc_stamp(moment: datetime | None = None) -> str:
    """``2026-11-27 16:40:05 UTC``: when an artifact that is republished was last updated."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
