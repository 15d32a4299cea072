"""The one place that documents and fixes known bugs of the pinned emulator (ministack 1.5.33).

These fixes run inside the emulator process only (see ``deployments.emulator_server``);
production code uses awswrangler exactly as on AWS.

Bug 1, Athena result location: ``StartQueryExecution`` reports the result at
``<OutputLocation><id>.csv`` (no ``/`` when the location has no trailing slash, which is how
awswrangler passes it) but ``_save_query_results`` writes it to
``<reported location>/<id>.csv``. ``wr.athena.read_sql_query(ctas_approach=False)`` then
fails with ``NoFilesFound``. The fix reports ``<location>/<id>.csv`` and writes exactly there.

``tests/integration/test_emulator.py`` fails loudly when the pinned version changes, when the
buggy code is gone (the fix is no longer needed) or when it can no longer be installed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

PINNED_MINISTACK = "1.5.33"
# The expression in ministack's _start_query_execution that builds the wrong location.
BUGGY_RESULT_LOCATION = 'f"{output_location}{query_id}.csv"'


class EmulatorFixOutdated(RuntimeError):
    """The emulator changed: a fix no longer applies or is no longer needed."""


def athena_result_location_bug_present() -> bool:
    """True while ministack's Athena still builds the result location the buggy way."""
    from ministack.services import athena

    source = inspect.getsource(athena._start_query_execution)
    return BUGGY_RESULT_LOCATION in source and hasattr(athena, "_save_query_results")


def install_athena_result_location_fix() -> None:
    """Wrap ministack's ``_save_query_results`` so the reported and written keys agree."""
    from ministack.services import athena

    installed = version("ministack")
    if installed != PINNED_MINISTACK:
        raise EmulatorFixOutdated(
            f"ministack {installed} is not the pinned {PINNED_MINISTACK}: re-check the fixes in "
            f"{__name__} and update the pin"
        )
    if not athena_result_location_bug_present():
        raise EmulatorFixOutdated("ministack's Athena result-location bug is gone: remove this fix")
    original: Callable[[str], Awaitable[Any]] = athena._save_query_results
    if getattr(original, "_storeops_fixed", False):
        return

    async def save_query_results_fixed(query_id: str) -> Any:
        execution = athena._executions.get(query_id)
        if not execution:
            return await original(query_id)
        reported: str = execution["ResultConfiguration"]["OutputLocation"]
        name = f"{query_id}.csv"
        folder = reported[: -len(name)].rstrip("/") if reported.endswith(name) else reported.rstrip("/")
        # The original writes <location>/<id>.csv: hand it the folder, then report the file.
        execution["ResultConfiguration"]["OutputLocation"] = folder
        try:
            return await original(query_id)
        finally:
            execution["ResultConfiguration"]["OutputLocation"] = f"{folder}/{name}"

    save_query_results_fixed._storeops_fixed = True  # type: ignore[attr-defined]
    athena._save_query_results = save_query_results_fixed


def install_all() -> None:
    """Install every fix; raises ``EmulatorFixOutdated`` if one no longer applies."""
    install_athena_result_location_fix()
