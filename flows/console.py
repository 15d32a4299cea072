"""Console behaviour shared by the flow CLIs."""

from __future__ import annotations

import logging

from storeops.exceptions import StoreOpsError


class _WithoutKnownTracebacks(logging.Formatter):
    """Formats like ``inner`` but leaves out tracebacks of our own one-line errors."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], StoreOpsError):
            saved = record.exc_info, record.exc_text
            record.exc_info, record.exc_text = None, None
            try:
                return self.inner.format(record)
            finally:
                record.exc_info, record.exc_text = saved
        return self.inner.format(record)


def quiet_expected_tracebacks() -> None:
    """On the console, show known failures as their one-line message; the Prefect UI keeps the traceback."""
    from prefect.logging.handlers import PrefectConsoleHandler

    seen: set[int] = set()
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", ""):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler) and id(handler) not in seen:
                seen.add(id(handler))
                handler.setFormatter(_WithoutKnownTracebacks(handler.formatter or logging.Formatter()))
