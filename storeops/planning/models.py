"""Planning's input (the Lambda event), its window, and where it reads and writes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from storeops.athena import SCANNED_BYTES_LABELS, QueryTarget, ScannedBytesSource
from storeops.clock import format_timestamp
from storeops.contracts.reading import ID_PATTERN
from storeops.exceptions import ConfigurationError, ValidationFailed, first_validation_error
from storeops.sql import validate_identifier

CLOCK_SKEW = timedelta(minutes=5)
PARTITION_SLACK = timedelta(hours=1)


# The limits of a plan's parameters, shared by the Lambda event and the plan flow's signature
# (whose JSON schema is the Prefect Run form, enforced by the deployment).
LookbackHours = Annotated[float, Field(gt=0, le=24 * 31, description="Window of readings and sales, in hours.")]
LeadTimeHours = Annotated[
    float, Field(ge=0, le=24 * 14, description="A product with fewer hours of cover than this is at risk.")
]
MaxMessages = Annotated[int, Field(ge=0, le=100_000, description="At most this many dispatch requests, by priority.")]
MAX_PLAN_STORES = 1000


class PlanRequest(BaseModel):
    """The planning event; every field optional and validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: AwareDatetime | None = Field(None, description="Planning time (default: now); not in the future.")
    lookback_hours: LookbackHours = 24.0
    lead_time_hours: LeadTimeHours = 24.0
    stores: tuple[str, ...] = Field((), max_length=MAX_PLAN_STORES, description="Restrict to these store ids.")
    dry_run: bool = Field(False, description="Compute shortages, send nothing, record nothing.")
    max_messages: MaxMessages = 10_000
    policy: Literal["storeops", "workshop"] = Field(
        "storeops",
        description="storeops: shortages not already requested or on their way; workshop: the original "
        "workshop's rule (every pair at or below its reorder point, every run, nothing remembered).",
    )

    @field_validator("stores")
    @classmethod
    def _store_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        bad = [s for s in value if not re.match(ID_PATTERN, s)]
        if bad:
            raise ValueError(f"store ids look like S0001, got {', '.join(bad[:5])}")
        return tuple(dict.fromkeys(value))

    @classmethod
    def from_event(cls, event: Mapping[str, Any] | None) -> PlanRequest:
        try:
            return cls.model_validate(dict(event or {}))
        except ValidationError as exc:
            raise ValidationFailed(f"invalid event field {first_validation_error(exc, 'event')}") from None


@dataclass(frozen=True)
class PlanWindow:
    """The resolved window: its bounds, its partitions, and the query's parameters."""

    as_of: datetime
    window_start: datetime
    lookback_hours: float
    lead_time_hours: float
    stores: tuple[str, ...]
    ledger_days: int = 3

    @classmethod
    def resolve(cls, request: PlanRequest, now: datetime) -> PlanWindow:
        as_of = (request.as_of or now).astimezone(UTC)
        if as_of > now + CLOCK_SKEW:
            raise ValidationFailed(
                f"as_of {format_timestamp(as_of)} is in the future (now is {format_timestamp(now)})",
                hint="omit as_of to plan for now, or give a past time",
            )
        start = as_of - timedelta(hours=request.lookback_hours)
        return cls(as_of, start, request.lookback_hours, request.lead_time_hours, request.stores)

    @property
    def partitions(self) -> list[tuple[str, str]]:
        """Every (dt, hour) partition that can hold a reading of the window, oldest first.

        One hour wider than the window on each side: Firehose names an object's partition by the
        arrival of its first record, so a reading near an hour boundary can sit in the neighbouring
        hour (buffered up to a minute, or delivered late). The exact ``observed_at`` bounds decide.
        """
        hour = self.window_start.replace(minute=0, second=0, microsecond=0) - PARTITION_SLACK
        out = []
        while hour <= self.as_of + PARTITION_SLACK:
            out.append((f"{hour:%Y-%m-%d}", f"{hour:%H}"))
            hour += timedelta(hours=1)
        return out

    def query_parameters(self) -> dict[str, Any]:
        first, last = self.partitions[0], self.partitions[-1]
        ledger_start = self.as_of - timedelta(days=max(self.ledger_days, math.ceil(self.lookback_hours / 24) + 1))
        return {
            "as_of": format_timestamp(self.as_of),
            "window_start": format_timestamp(self.window_start),
            "start_dt": first[0],
            "start_hour": first[1],
            "end_dt": last[0],
            "end_hour": last[1],
            "lead_time_hours": float(self.lead_time_hours),
            "store_filter": "," + ",".join(self.stores) + "," if self.stores else "",
            "ledger_start_dt": f"{ledger_start:%Y-%m-%d}",
        }


@dataclass(frozen=True)
class PlanningTargets:
    """Where planning reads and writes; in the Lambda, from the environment the stack sets."""

    database: str
    inventory_table: str
    ledger_table: str
    workgroup: str
    queue_url: str
    bucket: str
    request_ttl_hours: float = 6.0
    scanned_bytes_source: ScannedBytesSource = "athena"

    ENV = {
        "database": "STOREOPS_GLUE_DATABASE",
        "inventory_table": "STOREOPS_INVENTORY_TABLE",
        "ledger_table": "STOREOPS_LEDGER_TABLE",
        "workgroup": "STOREOPS_ATHENA_WORKGROUP",
        "queue_url": "STOREOPS_DISPATCH_QUEUE_URL",
        "bucket": "STOREOPS_DATA_LAKE_BUCKET",
    }

    def __post_init__(self) -> None:
        for name in (self.database, self.inventory_table, self.ledger_table):
            validate_identifier(name)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PlanningTargets:
        missing = [v for v in cls.ENV.values() if not environ.get(v)]
        if missing:
            raise ConfigurationError(
                f"the planning function lacks environment variables {', '.join(missing)}",
                hint="deploy the stack (`python -m deployments.stack deploy`)",
            )
        ttl = float(environ.get("STOREOPS_REQUEST_TTL_HOURS", "6"))
        source = environ.get("STOREOPS_SCANNED_BYTES_SOURCE", "athena")
        if source not in SCANNED_BYTES_LABELS:
            raise ConfigurationError(
                f"STOREOPS_SCANNED_BYTES_SOURCE={source!r} is not one of {', '.join(SCANNED_BYTES_LABELS)}",
                hint="deploy the stack (`python -m deployments.stack deploy`)",
            )
        return cls(
            **{k: environ[v] for k, v in cls.ENV.items()},
            request_ttl_hours=ttl,
            scanned_bytes_source=cast(ScannedBytesSource, source),
        )

    @property
    def query_target(self) -> QueryTarget:
        """Where the planning queries run, and the tables they read."""
        return QueryTarget(
            database=self.database,
            workgroup=self.workgroup,
            tables={"inventory_table": self.inventory_table, "ledger_table": self.ledger_table},
        )
