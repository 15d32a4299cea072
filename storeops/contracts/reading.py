"""The inventory reading (schema version 3) and its rules, stated once.

A reading holds what a store's own systems know: the stock as recorded, the units sold and
written off (expired) since the previous reading, the hours that covers, the shelf price and
whether the product is on promotion. Never what only a simulator could know (true demand rates,
demand an empty shelf turned away, an ordering policy).

``READING_RULES`` is the one statement of what makes a reading's numbers valid. Both paths
apply it: ``InventoryReading`` (one reading, e.g. a test or a consumer) and
``validate_batch`` (a whole tick of readings as numpy arrays, the producer's hot path).
Each rule is an expression that works on scalars and on arrays alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 3
MAX_UNITS = 999_999
MAX_PERIOD_HOURS = 24 * 7  # a reading's sales may cover at most a week
MAX_CASE_PACK = 1_000
ID_PATTERN = r"^[A-Z][0-9]{3,9}$"
NAME_MAX_LENGTH = 64
CATEGORY_MAX_LENGTH = 32
EVENT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
MAX_PRICE = 10_000.0
NUMERIC_FIELDS = ("on_hand", "units_sold", "units_expired", "period_hours", "case_pack", "price")


@dataclass(frozen=True)
class Rule:
    """A named rule over a reading's numbers; ``violated`` takes scalars or equal-length arrays."""

    reason: str
    message: str
    violated: Callable[[Mapping[str, Any]], Any]


READING_RULES: tuple[Rule, ...] = (
    Rule("negative_on_hand", "on_hand must not be negative", lambda r: r["on_hand"] < 0),
    Rule("on_hand_too_large", f"on_hand must be at most {MAX_UNITS}", lambda r: r["on_hand"] > MAX_UNITS),
    Rule("negative_units_sold", "units_sold must not be negative", lambda r: r["units_sold"] < 0),
    Rule("units_sold_too_large", f"units_sold must be at most {MAX_UNITS}", lambda r: r["units_sold"] > MAX_UNITS),
    Rule("negative_units_expired", "units_expired must not be negative", lambda r: r["units_expired"] < 0),
    Rule(
        "units_expired_too_large",
        f"units_expired must be at most {MAX_UNITS}",
        lambda r: r["units_expired"] > MAX_UNITS,
    ),
    Rule(
        "period_out_of_range",
        f"period_hours must be above 0 and at most {MAX_PERIOD_HOURS}",
        lambda r: (r["period_hours"] <= 0) | (r["period_hours"] > MAX_PERIOD_HOURS),
    ),
    Rule(
        "case_pack_out_of_range",
        f"case_pack must be between 1 and {MAX_CASE_PACK}",
        lambda r: (r["case_pack"] < 1) | (r["case_pack"] > MAX_CASE_PACK),
    ),
    Rule(
        "price_out_of_range",
        f"price must be above 0 and at most {MAX_PRICE:,.0f}",
        lambda r: (r["price"] <= 0) | (r["price"] > MAX_PRICE),
    ),
)


def first_violation(values: Mapping[str, Any]) -> Rule | None:
    """The first rule one reading's numbers break, or None."""
    for rule in READING_RULES:
        if bool(rule.violated(values)):
            return rule
    return None


class InventoryReading(BaseModel):
    """One store-product stock reading, as it lands in the lake (one JSON object per line)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(pattern=EVENT_ID_PATTERN, description="UUID4 of this reading.")
    store_id: str = Field(pattern=ID_PATTERN)
    product_id: str = Field(pattern=ID_PATTERN)
    product_name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    category: str = Field(min_length=1, max_length=CATEGORY_MAX_LENGTH)
    case_pack: int = Field(description="Units per case; orders are whole cases.")
    on_hand: int = Field(description="Units on the shelf as the store's stock record has them.")
    units_sold: int = Field(description="Units sold since the previous reading.")
    units_expired: int = Field(description="Units written off since the previous reading: past their shelf life.")
    period_hours: float = Field(description="Hours since the previous reading: the time units_sold covers.")
    price: float = Field(description="The shelf price (GBP), after any promotion.")
    on_promotion: bool = Field(description="Whether the product is on promotion (the promotion calendar's).")
    observed_at: AwareDatetime
    schema_version: Literal[3] = 3

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _rules(self) -> InventoryReading:
        broken = first_violation({name: getattr(self, name) for name in NUMERIC_FIELDS})
        if broken is not None:
            raise ValueError(f"{broken.reason}: {broken.message}")
        return self


@dataclass(frozen=True)
class ValidationReport:
    """Which readings passed, and how many failed for which first reason."""

    valid: np.ndarray  # bool mask over the flattened (S*P) readings
    rejected: dict[str, int]

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


def validate_batch(columns: Mapping[str, Any], identity_ok: np.ndarray | None = None) -> ValidationReport:
    """Apply ``READING_RULES`` to every reading of a tick at once; count each reading's first failed rule.

    ``columns`` maps each of ``NUMERIC_FIELDS`` to an array over the readings, a scalar the whole tick
    shares, or (``price``) an array over the products, the same in every store;
    ``identity_ok`` (optional) marks readings whose ids and names pass ``identity_fields_valid``.
    """
    size = max(np.size(columns[name]) for name in NUMERIC_FIELDS)
    checks: list[tuple[str, np.ndarray]] = []
    if identity_ok is not None:
        checks.append(("invalid_store_or_product", ~identity_ok))
    checks += [(rule.reason, _per_reading(rule.violated(columns), size)) for rule in READING_RULES]
    valid = np.ones(size, dtype=bool)
    rejected: dict[str, int] = {}
    for reason, failed in checks:
        newly = failed & valid
        count = int(newly.sum())
        if count:
            rejected[reason] = count
            valid &= ~newly
    return ValidationReport(valid=valid, rejected=rejected)


def _per_reading(values: Any, size: int) -> np.ndarray:
    """A rule's result for every reading: a scalar or a per-reading array as it is; a per-product array
    (chain-wide prices) repeated for every store of the store-major rows."""
    array = np.asarray(values)
    if array.size in (1, size):
        return np.broadcast_to(array.reshape(-1) if array.size == size else array, (size,))
    if array.ndim == 1 and size % array.size == 0:
        return np.tile(array, size // array.size)
    raise ValueError(f"a rule's result of {array.size} values does not fit {size} readings")


def identity_fields_valid(
    store_ids: Sequence[str], product_ids: Sequence[str], names: Sequence[str], categories: Sequence[str]
) -> np.ndarray:
    """Per flattened (store, product) pair: do its ids, name and category fit the schema?"""
    pattern = re.compile(ID_PATTERN)
    stores_ok = np.array([bool(pattern.match(s)) for s in store_ids], dtype=bool)
    products_ok = np.array(
        [
            bool(pattern.match(p)) and 0 < len(n) <= NAME_MAX_LENGTH and 0 < len(c) <= CATEGORY_MAX_LENGTH
            for p, n, c in zip(product_ids, names, categories, strict=True)
        ],
        dtype=bool,
    )
    return np.asarray((stores_ok[:, None] & products_ok[None, :]).ravel())
