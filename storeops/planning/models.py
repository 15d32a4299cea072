"""Planning's input (the Lambda event), its window, and where it reads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from storeops.athena import SCANNED_BYTES_LABELS, QueryTarget, ScannedBytesSource
from storeops.aws import StackResources
from storeops.calendar import local_date
from storeops.clock import format_timestamp, hour_floor
from storeops.contracts.reading import ID_PATTERN
from storeops.exceptions import ConfigurationError, ValidationFailed, first_validation_error
from storeops.parameters import (  # the plan's parameters, shared with the plan flow's signature (the Run form)
    EXTRA_STOP_COST,
    LEAD_TIME_HOURS,
    LOOKBACK_HOURS,
    MAX_PLAN_STORES,
    REVIEW_HOURS,
    SAFETY_FACTOR,
    DryRun,
    ExtraStopCost,
    LeadTimeHours,
    LookbackHours,
    MaxRequests,
    ReviewHours,
    SafetyFactor,
)
from storeops.sql import validate_identifier

CLOCK_SKEW = timedelta(minutes=5)
PARTITION_SLACK = timedelta(hours=1)
# A reading sits in the partition of its object's first record, which arrived at most Firehose's buffer
# interval (60 s deployed, 900 s at most) before it: so partition p holds readings observed before p + 1 h + this.
ARRIVAL_SPILL = timedelta(minutes=15)


# The plain rule's constants (sql/shortages.md): the protection interval's demand at the trailing rate doubled
# (the rate averages nights in; shoppers buy in opening hours), two days of sales on top of the reorder point,
# promoted days taken at twice the trailing rate.
SAFETY_MARGIN = 1.0
CYCLE_HOURS = 48.0
PROMO_FACTOR = 2.0
WORKSHOP_THRESHOLD = 0.3  # the workshop rule alerts at or below this share of the shelf
# The forecast-driven planner reads only each pair's latest reading (its sales history is in the forecast):
# a window of at most this many hours (at the deployed 1-minute cadence every pair reports each minute; a pair
# silent for longer is planned when it reports again), whatever lookback_hours (the plain rule's window) says.
STATE_LOOKBACK_HOURS = 1.0
# The ledger's days a plan reads: open requests, the last arrival and the lead times trucks achieved.
LEDGER_DAYS = 3


class PlanRequest(BaseModel):
    """The planning event; every field optional and validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: AwareDatetime | None = Field(None, description="Planning time (default: now); not in the future.")
    lookback_hours: LookbackHours = LOOKBACK_HOURS
    lead_time_hours: LeadTimeHours = LEAD_TIME_HOURS
    review_hours: ReviewHours = REVIEW_HOURS
    stores: tuple[str, ...] = Field((), max_length=MAX_PLAN_STORES, description="Restrict to these store ids.")
    dry_run: DryRun = False
    max_requests: MaxRequests = None
    extra_stop_cost: ExtraStopCost = EXTRA_STOP_COST
    safety_factor: SafetyFactor = SAFETY_FACTOR
    policy: Literal["storeops", "plain", "workshop"] = Field(
        "storeops",
        description="storeops: this planner (the day's forecast, delivery slots, order-up-to levels at the cost "
        "parameters' critical ratio; the plain rule until a forecast exists), nothing asked twice; plain: the "
        "previous release's rule (sql/shortages.md); workshop: the original workshop's rule (every pair at or "
        "below a share of its shelf, every run, nothing remembered).",
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


def partition_of(moment: datetime) -> tuple[str, str]:
    """The ``(dt, hour)`` partition values of ``moment``'s hour."""
    return f"{moment:%Y-%m-%d}", f"{moment:%H}"


@dataclass(frozen=True)
class PlanWindow:
    """The resolved window ``[window_start, as_of]``: its bounds, its partitions, and the query's parameters.

    ``window_start`` is ``as_of - lookback`` aligned down to its hour, so the window is made of whole
    observed hours and the part of ``as_of``'s hour up to ``as_of``.
    ``rollup_until`` is the rollup's watermark for this window (``storeops.planning.rollup``): the raw
    partitions before it are read from the hourly rollup (a row per pair and observed hour, kept from
    the window's first hour on), the partitions from it on raw (readings in ``[window_start, as_of]``).
    Partitions are Firehose's (by arrival), so each reading is read once, from one side or the other.
    Without a rollup every partition is read raw.
    """

    as_of: datetime
    window_start: datetime
    lookback_hours: float
    lead_time_hours: float
    stores: tuple[str, ...]
    review_hours: float = 1.0
    ledger_days: int = LEDGER_DAYS
    rollup_until: datetime | None = None

    @classmethod
    def resolve(cls, request: PlanRequest, now: datetime) -> PlanWindow:
        as_of = (request.as_of or now).astimezone(UTC)
        if as_of > now + CLOCK_SKEW:
            raise ValidationFailed(
                f"as_of {format_timestamp(as_of)} is in the future (now is {format_timestamp(now)})",
                hint="omit as_of to plan for now, or give a past time",
            )
        start = hour_floor(as_of - timedelta(hours=request.lookback_hours))
        return cls(as_of, start, request.lookback_hours, request.lead_time_hours, request.stores, request.review_hours)

    def latest_state_only(self) -> PlanWindow:
        """This window shortened to ``STATE_LOOKBACK_HOURS`` (the forecast planner needs the latest readings only)."""
        hours = min(self.lookback_hours, STATE_LOOKBACK_HOURS)
        return replace(self, lookback_hours=hours, window_start=hour_floor(self.as_of - timedelta(hours=hours)))

    @property
    def first_partition(self) -> datetime:
        """The oldest partition that can hold a reading of the window (the hour before its first)."""
        return self.window_start - PARTITION_SLACK

    @property
    def rollup_cap(self) -> datetime:
        """The latest watermark: partitions before it hold no reading observed after ``as_of``."""
        return max(self.first_partition, hour_floor(self.as_of - ARRIVAL_SPILL))

    @property
    def raw_start(self) -> datetime:
        """The first partition read raw (the rollup's watermark, else the window's first partition)."""
        return self.rollup_until or self.first_partition

    def reading_rollup_until(self, watermark: datetime) -> PlanWindow:
        """This window, reading the rollup for the partitions before ``watermark`` (a whole hour between the
        window's first partition and ``rollup_cap``)."""
        watermark = watermark.astimezone(UTC)
        if watermark != hour_floor(watermark) or not self.first_partition <= watermark <= self.rollup_cap:
            raise ValueError(
                f"rollup watermark {format_timestamp(watermark)} is not a whole hour in "
                f"[{format_timestamp(self.first_partition)}, {format_timestamp(self.rollup_cap)}]"
            )
        return replace(self, rollup_until=watermark)

    @property
    def partitions(self) -> list[tuple[str, str]]:
        """Every (dt, hour) partition that can hold a reading of the window, oldest first.

        One hour wider than the window on each side: Firehose names an object's partition by the
        arrival of its first record, so a reading near an hour boundary can sit in the neighbouring
        hour (buffered up to a minute, or delivered late). The exact ``observed_at`` bounds decide.
        """
        return self._hours(self.window_start - PARTITION_SLACK, self.as_of + PARTITION_SLACK)

    @property
    def raw_partitions(self) -> list[tuple[str, str]]:
        """The raw partitions the window reads: from the watermark to the hour after ``as_of``."""
        return self._hours(self.raw_start, self.as_of + PARTITION_SLACK)

    @property
    def rollup_partitions(self) -> list[tuple[str, str]]:
        """The rollup's partitions the window reads (those before the watermark), oldest first."""
        return self._hours(self.first_partition, self.raw_start - timedelta(hours=1))

    @staticmethod
    def _hours(first: datetime, last: datetime) -> list[tuple[str, str]]:
        hour, out = hour_floor(first), []
        while hour <= last:
            out.append(partition_of(hour))
            hour += timedelta(hours=1)
        return out

    def query_parameters(self) -> dict[str, Any]:
        first, last = self.partitions[0], self.partitions[-1]
        raw_first = partition_of(self.raw_start)
        # The rollup's partitions; an empty range (last before first) when the window reads none.
        rollup_first = partition_of(self.first_partition)
        rollup_last = partition_of(self.raw_start - timedelta(hours=1))
        ledger_start = self.as_of - timedelta(days=self.ledger_days)
        today = local_date(self.as_of)  # the promotion plan's days are the stores' local days
        return {
            "as_of": format_timestamp(self.as_of),
            "window_start": format_timestamp(self.window_start),
            "start_dt": first[0],
            "start_hour": first[1],
            "end_dt": last[0],
            "end_hour": last[1],
            "window_start_hour": f"{self.window_start:%Y-%m-%dT%H}",
            "raw_start_dt": raw_first[0],
            "raw_start_hour": raw_first[1],
            "rollup_start_dt": rollup_first[0],
            "rollup_start_hour": rollup_first[1],
            "rollup_end_dt": rollup_last[0],
            "rollup_end_hour": rollup_last[1],
            "default_lead_time_hours": float(self.lead_time_hours),
            "review_hours": float(self.review_hours),
            "safety_margin": SAFETY_MARGIN,
            "cycle_hours": CYCLE_HOURS,
            "promo_factor": PROMO_FACTOR,
            "workshop_threshold": WORKSHOP_THRESHOLD,
            "promo_first_date": today.isoformat(),
            "promo_last_date": (today + timedelta(days=1)).isoformat(),
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
    rollup_table: str = "inventory_hourly"  # the template's names; the Lambda gets them from the stack
    planogram_table: str = "planogram"
    promotions_table: str = "promotions"
    products_table: str = "products"
    daily_table: str = "inventory_daily"
    forecast_table: str = "demand_forecast"
    request_ttl_hours: float = 6.0
    scanned_bytes_source: ScannedBytesSource = "athena"

    ENV = {
        "database": "STOREOPS_GLUE_DATABASE",
        "inventory_table": "STOREOPS_INVENTORY_TABLE",
        "ledger_table": "STOREOPS_LEDGER_TABLE",
        "rollup_table": "STOREOPS_ROLLUP_TABLE",
        "planogram_table": "STOREOPS_PLANOGRAM_TABLE",
        "promotions_table": "STOREOPS_PROMOTIONS_TABLE",
        "products_table": "STOREOPS_PRODUCTS_TABLE",
        "daily_table": "STOREOPS_DAILY_TABLE",
        "forecast_table": "STOREOPS_FORECAST_TABLE",
        "workgroup": "STOREOPS_ATHENA_WORKGROUP",
        "queue_url": "STOREOPS_DISPATCH_QUEUE_URL",
        "bucket": "STOREOPS_DATA_LAKE_BUCKET",
    }

    def __post_init__(self) -> None:
        for name in (
            self.database,
            self.inventory_table,
            self.ledger_table,
            self.rollup_table,
            self.planogram_table,
            self.promotions_table,
            self.products_table,
            self.daily_table,
            self.forecast_table,
        ):
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

    @classmethod
    def from_stack(cls, resources: StackResources) -> PlanningTargets:
        """The same names from the stack's outputs (the flows that read or write planning's tables)."""
        return cls(
            database=resources.glue_database,
            inventory_table=resources.inventory_table,
            ledger_table=resources.ledger_table,
            workgroup=resources.athena_workgroup,
            queue_url=resources.dispatch_queue_url,
            bucket=resources.data_lake_bucket,
            rollup_table=resources.rollup_table,
            planogram_table=resources.planogram_table,
            promotions_table=resources.promotions_table,
            products_table=resources.products_table,
            daily_table=resources.daily_table,
            forecast_table=resources.forecast_table,
        )

    @property
    def query_target(self) -> QueryTarget:
        """Where the planning queries run, and the tables they read."""
        return QueryTarget(
            database=self.database,
            workgroup=self.workgroup,
            tables={
                "inventory_table": self.inventory_table,
                "ledger_table": self.ledger_table,
                "rollup_table": self.rollup_table,
                "planogram_table": self.planogram_table,
                "promotions_table": self.promotions_table,
                "products_table": self.products_table,
                "daily_table": self.daily_table,
                "forecast_table": self.forecast_table,
            },
        )
