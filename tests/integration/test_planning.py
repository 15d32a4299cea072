"""Planning on the emulator: the SQL agrees with an independent pandas computation, edge cases,
the ledger's exclusions, the Lambda, and bad input."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from storeops.clock import format_timestamp, hour_floor
from storeops.contracts.dispatch_order import is_order, order_requests
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.exceptions import QueryFailed, StackError, ValidationFailed
from storeops.ledger import LedgerRow, requests_key, window_record_key, write_rows
from storeops.planning.forecast import FORECAST_MARKERS, FORECAST_PREFIX, HORIZON_DAYS, write_forecast
from storeops.planning.models import PlanningTargets, PlanRequest, PlanWindow
from storeops.planning.service import plan_shortages
from storeops.stores.backfill import backfill
from storeops.stores.catalog import build_catalog
from storeops.stores.reference import PROMOTIONS_KEY, planogram_key, publish, publish_reference, read_parquet
from storeops.stores.simulation import advance, initial_state
from storeops.stores.state import SimulationConfig, SimulationStore
from storeops.stores.truth import truth_lines, write_truth
from tests.integration.conftest import LocalStack
from tests.planning_reference import reference_shortages

pytestmark = pytest.mark.integration


def targets_for(stack: LocalStack, **overrides: str) -> PlanningTargets:
    res = stack.resources
    values = {
        "database": res.glue_database,
        "inventory_table": res.inventory_table,
        "ledger_table": res.ledger_table,
        "workgroup": res.athena_workgroup,
        "queue_url": res.dispatch_queue_url,
        "bucket": res.data_lake_bucket,
        "rollup_table": res.rollup_table,
        "planogram_table": res.planogram_table,
        "promotions_table": res.promotions_table,
        "products_table": res.products_table,
        "daily_table": res.daily_table,
        "forecast_table": res.forecast_table,
    }
    return PlanningTargets(**{**values, **overrides})


def lake_readings(stack: LocalStack) -> pd.DataFrame:
    """Every reading in the lake, read straight from S3 (no SQL)."""
    s3 = stack.clients.client("s3")
    frames = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.resources.data_lake_bucket, Prefix="inventory/"
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=stack.resources.data_lake_bucket, Key=obj["Key"])["Body"].read()
            frames.append(
                pd.read_json(
                    io.BytesIO(gzip.decompress(body)), lines=True, dtype={"observed_at": str}, convert_dates=False
                )
            )
    return pd.concat(frames, ignore_index=True)


READING_DEFAULTS = {
    "product_name": "Milk",
    "category": "dairy",
    "case_pack": 12,
    "units_sold": 0,
    "units_expired": 0,
    "period_hours": 1.0,
    "price": 1.2,
    "on_promotion": False,
    "schema_version": 3,
}


def put_planogram(stack: LocalStack, rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """Shelf capacities for some pairs (the planogram table); the others have no limit."""
    frame = pd.DataFrame(rows, columns=["store_id", "product_id", "shelf_capacity"]).astype({"shelf_capacity": "int32"})
    publish(stack.clients.client("s3"), stack.resources.data_lake_bucket, planogram_key(0), frame)
    return frame


def complete(rows: list[dict]) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), **READING_DEFAULTS, **row} for row in rows]


def put_readings(stack: LocalStack, rows: list[dict], delivered_at: datetime | None = None) -> list[dict]:
    """Write hand-made readings into the partitions of their observed_at (or of ``delivered_at``, as
    Firehose names them by arrival); returns them completed."""
    by_partition: dict[str, list[str]] = {}
    completed = complete(rows)
    for full in completed:
        moment = delivered_at or datetime.fromisoformat(full["observed_at"].replace("Z", "+00:00"))
        key = f"inventory/dt={moment:%Y-%m-%d}/hour={moment:%H}/test-{uuid.uuid4().hex}.json.gz"
        by_partition.setdefault(key, []).append(json.dumps(full))
    for key, lines in by_partition.items():
        stack.clients.client("s3").put_object(
            Bucket=stack.resources.data_lake_bucket, Key=key, Body=gzip.compress(("\n".join(lines) + "\n").encode())
        )
    return completed


def comparable(frame: pd.DataFrame) -> list[tuple]:
    return [
        (r["store_id"], r["product_id"], r["kind"], int(r["on_hand"]), int(r["quantity"]))
        for r in frame.to_dict("records")
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_matches_an_independent_pandas_computation(local_stack: LocalStack, seed: int) -> None:
    now = datetime.now(UTC)
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    simulation, _ = backfill(build_catalog(25, 12, seed), s3, bucket, 2, end=now, restock_hour=None)
    publish_reference(s3, bucket, simulation)  # the planogram and the promotion plan the rule reads
    planogram = read_parquet(s3, bucket, planogram_key(0))
    promotions = read_parquet(s3, bucket, "reference/promotions/promotions.parquet")
    request = PlanRequest(lookback_hours=24, lead_time_hours=30, review_hours=4, dry_run=True, policy="plain")
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=now)
    expected = reference_shortages(
        lake_readings(local_stack), now, 24, 30, review_hours=4, planogram=planogram, promotions=promotions
    )
    assert len(expected) > 10
    assert len(set(expected["kind"])) == 2
    assert comparable(result.shortages) == comparable(expected)
    assert result.shortages["hours_of_cover"].round(6).fillna(-1).tolist() == pytest.approx(
        expected["hours_of_cover"].astype(float).round(6).fillna(-1).tolist()
    )
    assert result.shortages["reorder_point"].tolist() == expected["reorder_point"].tolist()
    assert result.shortages["target_stock"].tolist() == expected["target_stock"].tolist()
    assert result.shortages["shortage_id"].is_unique
    pairs = zip(planogram["store_id"], planogram["product_id"], strict=True)
    on_shelf = dict(zip(pairs, planogram["shelf_capacity"], strict=True))
    for row in result.shortages.to_dict("records"):
        assert row["on_hand"] + row["quantity"] <= on_shelf[row["store_id"], row["product_id"]]  # it fits


AS_OF = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # a window crossing midnight


def edge_rows() -> list[dict]:
    t = lambda **kw: format_timestamp(AS_OF - timedelta(**kw))  # noqa: E731
    return [
        # A: two readings at the same instant: the larger event_id wins (deterministic)
        {
            "store_id": "S0001",
            "product_id": "P0001",
            "observed_at": t(minutes=30),
            "on_hand": 50,
            "event_id": "00000000-0000-4000-8000-00000000000a",
        },
        {
            "store_id": "S0001",
            "product_id": "P0001",
            "observed_at": t(minutes=30),
            "on_hand": 0,
            "event_id": "00000000-0000-4000-8000-00000000000b",
        },
        # B: in-window readings are fine (the window starts at 22:00: 3 h before as_of, aligned down to the
        # hour); one after as_of is outside
        {"store_id": "S0001", "product_id": "P0002", "observed_at": t(hours=3), "on_hand": 0},
        {"store_id": "S0001", "product_id": "P0002", "observed_at": t(hours=2, minutes=30), "on_hand": 40},
        {
            "store_id": "S0001",
            "product_id": "P0002",
            "observed_at": format_timestamp(AS_OF + timedelta(milliseconds=1)),
            "on_hand": 0,
        },
        # C: no sales at all, three on the shelf: above the one-unit minimum, nothing to order
        {"store_id": "S0002", "product_id": "P0001", "observed_at": t(hours=1), "on_hand": 3},
        # D: 12 units sold over the 3 h its readings cover (before and after midnight): 4 an hour
        {
            "store_id": "S0002",
            "product_id": "P0002",
            "observed_at": t(hours=2),
            "on_hand": 26,
            "units_sold": 6,
            "period_hours": 1.0,
        },
        {
            "store_id": "S0002",
            "product_id": "P0002",
            "observed_at": t(minutes=10),
            "on_hand": 20,
            "units_sold": 6,
            "period_hours": 2.0,
        },
    ]


def test_edge_cases(local_stack: LocalStack) -> None:
    written = put_readings(local_stack, edge_rows())
    shelves = put_planogram(local_stack, [("S0002", "P0002", 100)])
    request = PlanRequest(as_of=AS_OF, lookback_hours=3, lead_time_hours=24, dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=AS_OF + timedelta(hours=1))
    rows = {(r["store_id"], r["product_id"]): r for r in result.shortages.to_dict("records")}
    assert set(rows) == {("S0001", "P0001"), ("S0002", "P0002")}
    empty, selling = rows["S0001", "P0001"], rows["S0002", "P0002"]
    assert empty["kind"] == "out_of_stock"  # the later event id of two readings at one instant wins
    assert (empty["reorder_point"], empty["target_stock"], empty["quantity"]) == (1, 13, 24)  # no sales: a case on top
    assert pd.isna(empty["hours_of_cover"])
    assert selling["kind"] == "below_reorder_point"
    assert selling["sales_per_hour"] == pytest.approx(4.0)
    assert selling["hours_of_cover"] == pytest.approx(5.0)
    assert selling["reorder_point"] == 200  # 4 an hour x (1 h review + 24 h lead time) x (1 + 1.0 margin)
    assert selling["target_stock"] == 100  # the shelf holds 100
    assert selling["quantity"] == 72  # six cases: a seventh would not fit
    assert result.shortages["kind"].tolist() == ["out_of_stock", "below_reorder_point"]
    expected = reference_shortages(pd.DataFrame(written), AS_OF, 3, 24, planogram=shelves)
    assert comparable(result.shortages) == comparable(expected)


def test_a_promoted_product_is_planned_at_twice_its_rate(local_stack: LocalStack) -> None:
    written = put_readings(local_stack, edge_rows())
    today = f"{AS_OF:%Y-%m-%d}"
    promotions = pd.DataFrame(
        {"product_id": ["P0002"], "start_date": [today], "end_date": [today], "discount_pct": [25]}
    ).astype({"discount_pct": "int32"})
    publish(local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket, PROMOTIONS_KEY, promotions)
    request = PlanRequest(as_of=AS_OF, lookback_hours=3, lead_time_hours=24, dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=AS_OF + timedelta(hours=1))
    selling = result.shortages.set_index(["store_id", "product_id"]).loc[("S0002", "P0002")]
    assert selling["reorder_point"] == 400  # twice the rate on a promoted day
    expected = reference_shortages(pd.DataFrame(written), AS_OF, 3, 24, promotions=promotions)
    assert comparable(result.shortages) == comparable(expected)


def test_the_lead_time_is_what_the_trucks_achieved(local_stack: LocalStack) -> None:
    written = put_readings(local_stack, edge_rows())
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    asked = AS_OF - timedelta(hours=20)
    rows = [
        LedgerRow(
            record_type="request",
            shortage_id="sh-" + "1" * 32,
            store_id="S0002",
            product_id="P0001",  # another pair of the store: its delivery took 6 hours
            quantity=12,
            recorded_at=format_timestamp(asked),
            open_until=format_timestamp(asked + timedelta(hours=6)),
        ),
        LedgerRow(
            record_type="dispatch",
            shortage_id="sh-" + "1" * 32,
            store_id="S0002",
            product_id="P0001",
            quantity=12,
            recorded_at=format_timestamp(asked + timedelta(hours=1)),
            load_id="L9",
            truck_id="T9",
            stop_number=1,
            eta=format_timestamp(asked + timedelta(hours=6)),
        ),
    ]
    write_rows(s3, bucket, f"dispatch-ledger/dt={asked:%Y-%m-%d}/requests-test.json", rows[:1])
    write_rows(s3, bucket, window_record_key(asked, "w9"), rows[1:])
    request = PlanRequest(as_of=AS_OF, lookback_hours=3, lead_time_hours=24, dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=AS_OF + timedelta(hours=1))
    selling = result.shortages.set_index(["store_id", "product_id"]).loc[("S0002", "P0002")]
    assert selling["reorder_point"] == 56  # 4 an hour x (1 h review + 6 h achieved, not the 24 h default) x 2
    ledger = pd.DataFrame([r.model_dump() for r in rows])
    expected = reference_shortages(pd.DataFrame(written), AS_OF, 3, 24, ledger)
    assert comparable(result.shortages) == comparable(expected)


def test_readings_in_the_neighbouring_hours_partition_are_not_pruned_away(local_stack: LocalStack) -> None:
    as_of = datetime(2026, 11, 20, 1, 59, 59, tzinfo=UTC)  # in the past: the next hour exists
    start = hour_floor(as_of - timedelta(hours=3))  # 22:00:00: the window starts at an hour
    # observed just after the window starts, in an object whose first record arrived in the hour before
    early = put_readings(
        local_stack,
        [
            {
                "store_id": "S0001",
                "product_id": "P0001",
                "observed_at": format_timestamp(start + timedelta(seconds=5)),
                "on_hand": 0,
            }
        ],
        delivered_at=start - timedelta(minutes=59),
    )
    # observed a second before as_of, delivered into the next hour's partition
    late = put_readings(
        local_stack,
        [
            {
                "store_id": "S0002",
                "product_id": "P0001",
                "observed_at": format_timestamp(as_of - timedelta(seconds=1)),
                "on_hand": 0,
            }
        ],
        delivered_at=as_of + timedelta(seconds=2),
    )
    request = PlanRequest(as_of=as_of, lookback_hours=3, dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=as_of + timedelta(hours=2))
    found = set(zip(result.shortages["store_id"], result.shortages["product_id"], strict=True))
    assert found == {("S0001", "P0001"), ("S0002", "P0001")}
    assert comparable(result.shortages) == comparable(reference_shortages(pd.DataFrame(early + late), as_of, 3, 24))


def test_the_sales_rate_divides_by_the_hours_the_readings_cover(local_stack: LocalStack) -> None:
    t = lambda h: format_timestamp(AS_OF - timedelta(hours=h))  # noqa: E731
    # three hours of history only (6 units an hour), under a 24-hour window: 6 an hour, not 18 / 24
    rows = [
        {
            "store_id": "S0001",
            "product_id": "P0001",
            "observed_at": t(h),
            "on_hand": 60 + 6 * h,
            "units_sold": 6,
            "period_hours": 1.0,
        }
        for h in (2, 1, 0)
    ]
    put_readings(local_stack, rows)
    request = PlanRequest(as_of=AS_OF, lookback_hours=24, lead_time_hours=12, dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=AS_OF)
    (row,) = result.shortages.to_dict("records")
    assert row["sales_per_hour"] == pytest.approx(6.0)
    assert row["hours_of_cover"] == pytest.approx(10.0)
    assert row["kind"] == "below_reorder_point"  # 60 on the shelf, reorder point 6 x 13 h x 2 = 156


def test_a_store_with_no_readings_is_named(local_stack: LocalStack) -> None:
    put_readings(local_stack, edge_rows())
    request = PlanRequest(as_of=AS_OF, lookback_hours=3, stores=("S0002", "S0003"), dry_run=True)
    with pytest.raises(ValidationFailed, match="S0003"):
        plan_shortages(local_stack.clients, targets_for(local_stack), request, now=AS_OF)
    only = PlanRequest(as_of=AS_OF, lookback_hours=3, stores=("S0002",), dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), only, now=AS_OF)
    assert set(result.shortages["store_id"]) == {"S0002"}


def drain(stack: LocalStack) -> list[dict]:
    """The dispatch requests on the queue (an order message carries a store's requests)."""
    sqs = stack.clients.client("sqs")
    bodies = []
    while messages := sqs.receive_message(
        QueueUrl=stack.resources.dispatch_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        for m in messages:
            body = json.loads(m["Body"])
            bodies += order_requests(body) or [] if is_order(body) else [body]
            sqs.delete_message(QueueUrl=stack.resources.dispatch_queue_url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_planning_twice_never_requests_the_same_goods_twice(local_stack: LocalStack) -> None:
    put_readings(local_stack, edge_rows())
    targets = targets_for(local_stack)
    request = PlanRequest(as_of=AS_OF, lookback_hours=3)
    first = plan_shortages(local_stack.clients, targets, request, now=AS_OF)
    assert first.requests_sent == 2
    assert first.sqs_messages == 2  # one order per store
    sent = drain(local_stack)
    assert {m["store_id"] + m["product_id"] for m in sent} == {"S0001P0001", "S0002P0002"}
    for message in sent:
        DispatchRequest.model_validate(message)
    # new readings arrive, the pairs are still short: planning again sends nothing
    put_readings(
        local_stack,
        [
            {
                "store_id": "S0001",
                "product_id": "P0001",
                "observed_at": format_timestamp(AS_OF - timedelta(minutes=5)),
                "on_hand": 0,
            }
        ],
    )
    second = plan_shortages(local_stack.clients, targets, request, now=AS_OF + timedelta(minutes=1))
    assert second.requests_sent == 0
    assert second.shortages.empty


def test_a_dispatch_stays_open_until_a_reading_after_its_arrival(local_stack: LocalStack) -> None:
    put_readings(local_stack, edge_rows())
    targets = targets_for(local_stack)
    eta = AS_OF + timedelta(hours=2)
    row = LedgerRow(
        record_type="dispatch",
        shortage_id="sh-" + "0" * 32,
        store_id="S0001",
        product_id="P0001",
        quantity=60,
        recorded_at=format_timestamp(AS_OF),
        load_id="L1",
        truck_id="T1",
        stop_number=1,
        eta=format_timestamp(eta),
    )
    write_rows(local_stack.clients.client("s3"), targets.bucket, window_record_key(AS_OF, "L1"), [row])
    later = AS_OF + timedelta(hours=4)
    request = PlanRequest(as_of=later, lookback_hours=6, dry_run=True)
    put_readings(
        local_stack,
        [
            {
                "store_id": "S0001",
                "product_id": "P0001",
                "on_hand": 0,
                "observed_at": format_timestamp(eta - timedelta(minutes=5)),
            }
        ],
    )
    before = plan_shortages(local_stack.clients, targets, request, now=later)
    assert ("S0001", "P0001") not in set(zip(before.shortages["store_id"], before.shortages["product_id"], strict=True))
    put_readings(
        local_stack,
        [
            {
                "store_id": "S0001",
                "product_id": "P0001",
                "on_hand": 1,
                "observed_at": format_timestamp(eta + timedelta(minutes=5)),
            }
        ],
    )
    after = plan_shortages(local_stack.clients, targets, request, now=later)
    assert ("S0001", "P0001") in set(zip(after.shortages["store_id"], after.shortages["product_id"], strict=True))


def test_the_lambda_plans_and_sends(local_stack: LocalStack) -> None:
    put_readings(local_stack, edge_rows())
    response = local_stack.clients.client("lambda").invoke(
        FunctionName=local_stack.resources.planning_function,
        Payload=json.dumps({"as_of": AS_OF.isoformat(), "lookback_hours": 3}).encode(),
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    assert payload["requests_sent"] == 2
    assert payload["shortages_by_kind"] == {"below_reorder_point": 1, "out_of_stock": 1}
    assert payload["query_execution_id"]
    assert len(drain(local_stack)) == 2


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({"lookback_hours": -1}, "lookback_hours"),
        ({"as_of": "2999-01-01T00:00:00Z"}, "in the future"),
        ({"stores": ["not a store"]}, "stores"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_event_is_a_clear_error_and_sends_nothing(local_stack: LocalStack, event: dict, needle: str) -> None:
    put_readings(local_stack, edge_rows())
    response = local_stack.clients.client("lambda").invoke(
        FunctionName=local_stack.resources.planning_function, Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert response.get("FunctionError")
    assert needle in payload["errorMessage"]
    assert drain(local_stack) == []


def test_a_missing_table_names_the_failed_query(local_stack: LocalStack) -> None:
    with pytest.raises(QueryFailed) as info:
        plan_shortages(
            local_stack.clients,
            targets_for(local_stack, inventory_table="no_such_table"),
            PlanRequest(dry_run=True),
            now=datetime.now(UTC),
        )
    assert info.value.query_execution_id
    assert info.value.query_execution_id in info.value.one_line()


def test_a_missing_workgroup_is_a_stack_error(local_stack: LocalStack) -> None:
    with pytest.raises(StackError, match="workgroup"):
        plan_shortages(
            local_stack.clients,
            targets_for(local_stack, workgroup="nope"),
            PlanRequest(dry_run=True),
            now=datetime.now(UTC),
        )


def test_the_bytes_scanned_are_the_selected_partitions_objects_once(local_stack: LocalStack) -> None:
    """The emulator reports what Athena bills (the objects under the selected partitions), and the
    planning query reads each table once: its bytes are those objects' sizes, not twice them."""
    inside = [{"store_id": "S0001", "product_id": "P0001", "observed_at": format_timestamp(AS_OF), "on_hand": 0}]
    outside = [
        {"store_id": "S0001", "product_id": "P0001", "observed_at": format_timestamp(AS_OF - timedelta(hours=h))}
        for h in (30, 50)  # older than the window and its partition slack
    ]
    put_readings(local_stack, inside + outside)
    old = LedgerRow(
        record_type="request",
        shortage_id="sh-old",
        store_id="S0001",
        product_id="P0001",
        quantity=12,
        recorded_at="2026-10-01T00:00:00.000Z",
        open_until="2026-10-01T06:00:00.000Z",
    )
    bucket = local_stack.resources.data_lake_bucket
    write_rows(local_stack.clients.client("s3"), bucket, "dispatch-ledger/dt=2026-10-01/old.json", [old])
    request = PlanRequest(as_of=AS_OF, lookback_hours=3, dry_run=True)
    targets = targets_for(local_stack, scanned_bytes_source="s3-estimate")
    result = plan_shortages(local_stack.clients, targets, request, now=AS_OF)
    assert len(result.shortages) == 1
    window = PlanWindow.resolve(request, AS_OF)
    selected = {f"inventory/dt={dt}/hour={hour}/" for dt, hour in window.partitions}
    s3 = local_stack.clients.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    expected = sum(o["Size"] for o in listed if any(o["Key"].startswith(p) for p in selected))
    assert expected > 0
    assert result.query_bytes == [expected]  # the old ledger day and the old readings are not read
    assert result.bytes_scanned_source == "s3-estimate"
    payload = result.to_payload()
    assert payload["bytes_scanned_label"].startswith("bytes scanned (estimate")


def test_a_plan_is_the_same_whatever_only_the_simulator_knows(local_stack: LocalStack) -> None:
    """The planner reads what a retailer's systems hold; the simulator's state, true rates and record of lost
    demand can change completely and the plan does not."""
    now = datetime.now(UTC)
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    catalog = build_catalog(12, 10, 4)
    simulation, _ = backfill(catalog, s3, bucket, 1, end=now, restock_hour=None)
    publish_reference(s3, bucket, simulation)
    simulation_store = SimulationStore(s3, bucket)
    config = SimulationConfig(12, 10, 4)
    state = simulation.load(0)
    s3.put_object(Bucket=bucket, Key=config.chunk_key(0), Body=state.to_bytes())
    write_truth(s3, bucket, now, "truth-a", truth_lines(catalog, state, advance(state, 1.0), None))

    def plan() -> list[tuple]:
        response = local_stack.clients.client("lambda").invoke(
            FunctionName=local_stack.resources.planning_function,
            Payload=json.dumps({"as_of": now.isoformat(), "lookback_hours": 24, "dry_run": True}).encode(),
        )
        payload = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, payload
        return [(r["shortage_id"], r["kind"], r["quantity"], r["reorder_point"]) for r in payload["shortages"]]

    before = plan()
    assert before
    # everything only the simulator knows, changed: its state, the true rates behind it, the demand it lost
    other = build_catalog(12, 10, 5)  # other rates, dispersions, purchase sizes, promotion lifts
    # its clock at a weekday's opening hours, so the empty shelf loses demand whatever time the test runs at
    other_state = initial_state(other, datetime(2026, 11, 18, 10, 0, tzinfo=UTC))
    other_state.on_hand[:] = 0
    other_bytes = other_state.to_bytes()
    s3.put_object(Bucket=bucket, Key=config.chunk_key(0), Body=other_bytes)
    s3.put_object(Bucket=bucket, Key="simulator/rates.json", Body=json.dumps(other.products["rate"].tolist()).encode())
    tick = advance(other_state, 5.0)  # an empty shelf: every unit of demand lost
    write_truth(s3, bucket, now, "truth-a", truth_lines(other, other_state, tick, tick.units_demanded))
    assert int(tick.units_lost.sum()) > 0
    assert plan() == before
    assert simulation_store.get(config.chunk_key(0))[0] == other_bytes  # it really changed


SLOT_AS_OF = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # the regular slot's plan (04:00 local, GMT)


def put_forecast(stack: LocalStack, day: datetime, rows: list[tuple[str, str, float]]) -> None:
    """A forecast of ``day`` as the forecast flow writes it: (store, product, units a day), flat over the day."""
    frame = pd.DataFrame(
        {
            "store_id": [r[0] for r in rows],
            "product_id": [r[1] for r in rows],
            "category": "dairy",
            "case_pack": 12,
            "method": "smooth",
            "level": [r[2] for r in rows],
            "dispersion": 1.5,
            "elasticity": 3.0,
            **{f"mean_d{d}": [r[2] for r in rows] for d in range(HORIZON_DAYS)},
            **{f"discount_d{d}": 0 for d in range(HORIZON_DAYS)},
            **{f"share_h{h:02d}": 1 / 24 for h in range(24)},
            "base_days": 28,
            "history_days": 28,
        }
    )
    write_forecast(stack.clients, targets_for(stack), day.date(), [frame], day, source="test")


def forget_forecasts(stack: LocalStack) -> None:
    """Delete every forecast of the shared test stack (a forecast changes what later plans of its days do)."""
    s3, bucket = stack.clients.client("s3"), stack.resources.data_lake_bucket
    for prefix in (FORECAST_MARKERS, FORECAST_PREFIX):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture
def forecasts_forgotten(local_stack: LocalStack) -> Iterator[LocalStack]:
    forget_forecasts(local_stack)
    yield local_stack
    forget_forecasts(local_stack)


def test_the_forecast_planner_orders_at_the_slot_and_never_what_is_requested_or_on_its_way(
    forecasts_forgotten: LocalStack,
) -> None:
    local_stack = forecasts_forgotten
    t = format_timestamp(SLOT_AS_OF - timedelta(minutes=20))
    put_readings(
        local_stack,
        [
            {"store_id": "S0001", "product_id": p, "observed_at": t, "on_hand": 2, "units_sold": 1}
            for p in ("P0001", "P0002", "P0003")
        ],
    )
    put_planogram(local_stack, [("S0001", p, 96) for p in ("P0001", "P0002", "P0003")])
    put_forecast(local_stack, SLOT_AS_OF, [("S0001", p, 24.0) for p in ("P0001", "P0002", "P0003")])
    s3, bucket = local_stack.clients.client("s3"), local_stack.resources.data_lake_bucket
    request_row = LedgerRow(
        record_type="request",
        shortage_id="sh-" + "1" * 32,
        store_id="S0001",
        product_id="P0002",
        quantity=24,
        recorded_at=format_timestamp(SLOT_AS_OF - timedelta(hours=1)),
        open_until=format_timestamp(SLOT_AS_OF + timedelta(hours=5)),
    )
    write_rows(s3, bucket, requests_key(SLOT_AS_OF, "earlier"), [request_row])
    dispatch_row = LedgerRow(
        record_type="dispatch",
        shortage_id="sh-" + "2" * 32,
        store_id="S0001",
        product_id="P0003",
        quantity=24,
        recorded_at=format_timestamp(SLOT_AS_OF - timedelta(hours=2)),
        load_id="L9",
        truck_id="T9",
        stop_number=1,
        eta=format_timestamp(SLOT_AS_OF + timedelta(hours=1)),
    )
    write_rows(s3, bucket, window_record_key(SLOT_AS_OF, "L9"), [dispatch_row])
    request = PlanRequest(as_of=SLOT_AS_OF, lookback_hours=6, review_hours=4, dry_run=True)
    result = plan_shortages(local_stack.clients, targets_for(local_stack), request, now=SLOT_AS_OF)
    assert result.method == "forecast"
    assert result.forecast_day == SLOT_AS_OF.date().isoformat()
    assert result.regular_orders
    (row,) = result.shortages.to_dict("records")  # P0002 is requested, P0003 on its way: never twice
    assert row["product_id"] == "P0001"
    # a day and the lead time of a pair selling 24 a day, in whole cases of 12, within the shelf
    assert row["quantity"] % 12 == 0
    assert 24 <= row["quantity"] + row["on_hand"] <= 96
    assert row["target_stock"] >= 24


def test_without_a_forecast_the_planner_says_so_and_plans_with_the_plain_rule(forecasts_forgotten: LocalStack) -> None:
    local_stack = forecasts_forgotten
    put_readings(local_stack, edge_rows())
    result = plan_shortages(
        local_stack.clients, targets_for(local_stack), PlanRequest(as_of=AS_OF, lookback_hours=3), now=AS_OF
    )
    assert result.method == "plain"
    assert result.forecast_day is None
    assert result.requests_sent == 2
