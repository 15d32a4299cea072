"""How a flow fails on a known error: one line in the run log and the run's state, no traceback."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import get_run_logger
from prefect.states import Failed

from storeops.exceptions import StoreOpsError

P = ParamSpec("P")
R = TypeVar("R")


def fail_in_one_line(body: Callable[P, R]) -> Callable[P, R]:
    """Wrap a flow's body (under ``@flow``): a ``StoreOpsError`` ends the run Failed with its
    one-line message (cause and fix) instead of a traceback; a caller of the flow still gets the
    exception. Anything else fails as usual, traceback included: that is a bug to read."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return body(*args, **kwargs)
        except StoreOpsError as exc:
            get_run_logger().error("%s", exc.one_line())
            failed: Any = Failed(message=exc.one_line(), data=exc)
            return failed  # Prefect takes a returned state as the run's final state

    # Prefect builds the run's parameter model from the signature; resolve the annotations here,
    # where the body's module is known (they are strings under `from __future__ import annotations`).
    run.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    run.__annotations__ = typing.get_type_hints(body, include_extras=True)
    run.__doc__ = with_parameter_docs(body.__doc__ or "", run.__annotations__)
    return run


def with_parameter_docs(doc: str, hints: dict[str, Any]) -> str:
    """``doc`` with an ``Args:`` section made of each parameter's ``Field(description=...)``: Prefect 3.9 builds
    the Run form's descriptions from the docstring (griffe), not from ``Field``, so the alias stays the one
    definition and the docstring is generated from it."""
    lines = [
        f"    {name}: {description}"
        for name, hint in hints.items()
        if name != "return"
        for description in [next((getattr(m, "description", None) for m in typing.get_args(hint)[1:]), None)]
        if description
    ]
    return f"{inspect.cleandoc(doc)}\n\nArgs:\n" + "\n".join(lines) if lines else doc
