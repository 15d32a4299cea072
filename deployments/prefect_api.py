"""The Prefect API a flow CLI records its run in.

``PREFECT_API_URL`` when it is set; else the local server of ``python -m deployments.prefect_local up`` when it
answers (fast, and the run shows in its UI). Otherwise a temporary server for this CLI alone, as Prefect would
start one, except that it cannot outlive the CLI, however the CLI dies (``deployments.prefect_local.temporary_server``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from deployments.prefect_local import running_api_url, temporary_server


@contextlib.contextmanager
def prefect_api(local_home: Path | None = None) -> Iterator[str]:
    """Run the block's flows against ``PREFECT_API_URL``, the local server ``prefect_local up`` runs
    under ``local_home``, or a temporary server that dies with this CLI. Runs are tagged ``cli``."""
    from prefect import tags
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with contextlib.ExitStack() as stack:
        api_url = PREFECT_API_URL.value()
        if not api_url:
            api_url = running_api_url(local_home) if local_home else None
            if api_url:
                print(
                    f"recording this run in the local Prefect server, {api_url.removesuffix('/api')}", file=sys.stderr
                )
            api_url = api_url or stack.enter_context(temporary_server())
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: api_url}))
            stack.callback(_drain_prefect_workers)  # runs before the server stops and the settings go
        stack.enter_context(tags("storeops", "cli"))
        yield str(api_url)


def _drain_prefect_workers() -> None:
    """Send the run's last logs and events before the server goes (as Prefect's test harness does)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(RuntimeError):  # never started
        APILogWorker.instance().drain()
    EventsWorker.drain_all(timeout=10)
