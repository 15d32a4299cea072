"""Synthetic, valid-by-construction dispatch requests for benchmarks and tests (production never uses these)."""

from __future__ import annotations

from datetime import UTC, datetime

from storeops.clock import format_timestamp
from storeops.contracts.dispatch_request import DispatchRequest, ShortageKind, shortage_id

PRIORITY = {"out_of_stock": 1, "below_reorder_point": 2, "at_risk": 3}


def sample_request(
    store_id: str,
    product_id: str,
    quantity: int,
    *,
    reading_event_id: str | None = None,
    kind: ShortageKind = "below_reorder_point",
    target_stock: int = 60,
    plan_id: str = "sample",
    planned_at: datetime | None = None,
    observed_at: str | None = None,
) -> DispatchRequest:
    """A request for ``quantity`` units of a product at a store (6 per case, milk, dairy)."""
    event = reading_event_id or f"e-{store_id}-{product_id}"
    planned = planned_at or datetime.now(UTC)
    return DispatchRequest(
        shortage_id=shortage_id(store_id, product_id, event),
        plan_id=plan_id,
        planned_at=planned,
        store_id=store_id,
        product_id=product_id,
        product_name="Milk",
        category="dairy",
        kind=kind,
        priority=PRIORITY[kind],
        quantity=quantity,
        case_pack=6,
        on_hand=0 if kind == "out_of_stock" else 1,
        reorder_point=5,
        target_stock=target_stock,
        hours_of_cover=None,
        reading_event_id=event,
        observed_at=observed_at or format_timestamp(planned),
    )


def sample_requests(run: str, count: int, stores: int = 200, products: int = 100) -> list[DispatchRequest]:
    """``count`` distinct requests spread over ``stores`` stores (S0001...) and ``products`` products."""
    now = datetime.now(UTC)
    return [
        sample_request(
            f"S{i % stores + 1:04d}",
            f"P{i // stores % products + 1:04d}",
            6 * (1 + i % 8),
            reading_event_id=f"{run}-{i}",
            plan_id=run,
            planned_at=now,
        )
        for i in range(count)
    ]
