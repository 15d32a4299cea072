"""The planning Lambda's handler (placeholder until the planning issue lands)."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import pydantic

    return {"ok": True, "pydantic": pydantic.VERSION}
