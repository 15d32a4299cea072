"""The one settings model of the project.

Built once at each entry point (a CLI, a flow, the Lambda handler) and passed down; never
read at import time. Every field can be set by an environment variable ``STOREOPS_<FIELD>``
(for example ``STOREOPS_TARGET=aws``). Resource names are not settings: they come from the
CloudFormation stack outputs (see ``storeops.aws.StackResources``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storeops.exceptions import ConfigurationError, first_validation_error, first_validation_field
from storeops.faults import FaultPlan

ENV_PREFIX = "STOREOPS_"
LOOPBACK = "127.0.0.1"


def project_root() -> Path:
    """The repository root (the folder holding ``sql/`` and ``deployments/``)."""
    return Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Where the system runs and how it talks to AWS."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    target: Literal["local", "aws"] = Field(
        "local", description="`local`: the embedded emulator on loopback; `aws`: real AWS."
    )
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region.")
    stack_name: str = Field(
        "storeops",
        # <stack>-artifacts-<12-digit account>-<region> must fit S3's 63 characters
        pattern=r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$",
        description="CloudFormation stack name (2-24 characters, lowercase): it prefixes bucket names.",
    )
    aws_profile: str | None = Field(None, description="Named AWS profile for `aws` (default chain if unset).")
    local_port: int = Field(4566, ge=1024, le=65535, description="Port of the embedded emulator.")
    local_home: Path = Field(
        default_factory=lambda: project_root() / ".localaws",
        description="Folder holding the emulator's PID, log, state and build cache (git-ignored).",
    )
    pandas_layer_arn: str | None = Field(
        None, description="AWS SDK for pandas layer ARN (aws target; default: looked up in SSM)."
    )
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open a connection to AWS.")
    read_timeout: float = Field(70.0, gt=0, description="Seconds to wait for an AWS response.")
    max_attempts: int = Field(6, ge=1, le=20, description="botocore standard-mode attempts per call.")
    fault_injection: str | None = Field(
        None,
        description="Fail a share of AWS calls on purpose (tests, benchmarks, drills), e.g. `*=0.05`; "
        "see storeops.faults. Off by default; only the client factory reads it.",
    )

    @field_validator("local_home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("fault_injection")
    @classmethod
    def _fault_spec(cls, value: str | None) -> str | None:
        if value:
            FaultPlan.parse(value)  # FaultSpecError is a ValueError: reported in one line
        return value or None

    @property
    def endpoint_url(self) -> str | None:
        """The emulator's URL for `local`; None (AWS's own endpoints) for `aws`."""
        return f"http://{LOOPBACK}:{self.local_port}" if self.target == "local" else None

    @property
    def is_local(self) -> bool:
        return self.target == "local"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus explicit overrides, or fail in one line."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        env = f"{ENV_PREFIX}{(first_validation_field(exc) or 'settings').upper()}"
        raise ConfigurationError(
            f"invalid setting {first_validation_error(exc, 'settings')}",
            hint=f"set {env} to a valid value (see the README's configuration reference)",
        ) from None
