"""Every error the domain raises, in one place.

``StoreOpsError.hint`` is the fix a user should try; CLIs print ``message (hint)`` on one
line and exit with ``exit_code``.
"""

from __future__ import annotations

from pydantic import ValidationError

MAX_SHOWN_INPUT = 60  # characters of a rejected value repeated in an error line


class StoreOpsError(Exception):
    """Base class: a failure with a one-line cause and a suggested fix."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.one_line()

    def one_line(self) -> str:
        """The cause and the fix on one line, as CLIs print it."""
        text = self.message.replace("\n", " ")
        return f"{text} (fix: {self.hint})" if self.hint else text


class ConfigurationError(StoreOpsError):
    """Settings, credentials or the environment are wrong: a usage error."""

    exit_code = 2


class EmulatorError(StoreOpsError):
    """The embedded local AWS could not be started, reached or stopped."""

    exit_code = 2


class StackError(StoreOpsError):
    """The CloudFormation stack is missing, failed, or could not be deployed."""

    exit_code = 2


class ValidationFailed(StoreOpsError):
    """Input (an event, a CLI value, a message) failed validation."""

    exit_code = 2


class DeliveryError(StoreOpsError):
    """Records could not be delivered after bounded retries; ``lost`` counts them."""

    def __init__(self, message: str, lost: int, hint: str = "") -> None:
        super().__init__(message, hint)
        self.lost = lost


class NotQueryable(StoreOpsError):
    """Data was sent but Athena could not read all of it before the deadline."""


class QueryFailed(StoreOpsError):
    """An Athena query failed; the message names its execution id."""

    def __init__(self, message: str, query_execution_id: str | None = None, hint: str = "") -> None:
        super().__init__(message, hint)
        self.query_execution_id = query_execution_id


def first_validation_error(exc: ValidationError, what: str = "value") -> str:
    """The first problem pydantic found, on one line: ``<field>=<input>: <why>``."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or what
    shown = repr(first.get("input"))
    if len(shown) > MAX_SHOWN_INPUT:
        shown = shown[: MAX_SHOWN_INPUT - 3] + "..."
    return f"{field}={shown}: {first['msg']}"


def first_validation_field(exc: ValidationError) -> str:
    """The dotted name of the first field pydantic rejected ('' for a whole-model error)."""
    return ".".join(str(part) for part in exc.errors()[0]["loc"])
