"""The dispatch request (schema version 1): what the planner asks the trucks to deliver."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from storeops.contracts.reading import CATEGORY_MAX_LENGTH, ID_PATTERN, NAME_MAX_LENGTH

ShortageKind = Literal["out_of_stock", "below_reorder_point", "at_risk"]
SHORTAGE_ID_PATTERN = r"^sh-[0-9a-f]{32}$"


def shortage_id(store_id: str, product_id: str, reading_event_id: str) -> str:
    """Deterministic: the same shortage (store, product, reading) always gets the same id."""
    digest = hashlib.sha256(f"{store_id}|{product_id}|{reading_event_id}".encode()).hexdigest()
    return f"sh-{digest[:32]}"


class DispatchRequest(BaseModel):
    """A dispatch request message on the queue (schema version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    shortage_id: str = Field(pattern=SHORTAGE_ID_PATTERN)
    plan_id: str = Field(min_length=1, max_length=128)
    planned_at: AwareDatetime
    store_id: str = Field(pattern=ID_PATTERN)
    product_id: str = Field(pattern=ID_PATTERN)
    product_name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    category: str = Field(min_length=1, max_length=CATEGORY_MAX_LENGTH)
    kind: ShortageKind
    priority: int = Field(ge=1, le=3)
    quantity: int = Field(gt=0, le=1_000_000)
    case_pack: int = Field(ge=1)
    on_hand: int = Field(ge=0)
    reorder_point: int = Field(ge=0)
    target_stock: int = Field(ge=1)
    hours_of_cover: float | None = Field(None, ge=0)
    reading_event_id: str
    observed_at: str
