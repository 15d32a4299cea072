"""Consolidation, routing, message validation and SQS retry backoff (pure, no network)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from storeops.contracts.dispatch_order import order_body, pack_orders
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.contracts.samples import sample_request
from storeops.directory import DEPOTS, StoreLocation
from storeops.dispatch.messages import Received, parse_request, split_message
from storeops.dispatch.routing import (
    FleetPolicy,
    Stop,
    consolidate,
    haversine_km,
    lower_bound_trucks,
    nearest_neighbour_route,
)
from storeops.retry import RetryPolicy
from storeops.sqs import SqsBatcher, batch_groups, entry_bytes

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def request(store: str, product: str, quantity: int) -> DispatchRequest:
    return sample_request(store, product, quantity, target_stock=quantity + 1, planned_at=T0)


def stores() -> dict[str, StoreLocation]:
    north, south = DEPOTS["north"], DEPOTS["south"]
    return {
        "S0001": StoreLocation("S0001", "north", north[0] + 0.10, north[1]),
        "S0002": StoreLocation("S0002", "north", north[0] + 0.20, north[1]),
        "S0003": StoreLocation("S0003", "north", north[0] + 0.05, north[1]),
        "S0004": StoreLocation("S0004", "south", south[0], south[1] + 0.1),
    }


def test_every_request_is_loaded_exactly_once_within_limits() -> None:
    policy = FleetPolicy(capacity_units=100, max_stops=2)
    reqs = [
        request(s, f"P{p:04d}", q)
        for s, p, q in [
            ("S0001", 1, 60),
            ("S0001", 2, 30),
            ("S0002", 1, 50),
            ("S0003", 1, 20),
            ("S0004", 1, 90),
            ("S0002", 2, 70),
            ("S0003", 2, 10),
        ]
    ]
    loads = consolidate(reqs, stores(), policy, T0, "load-w1")
    ids = [i for load in loads for i in load.shortage_ids]
    assert sorted(ids) == sorted(r.shortage_id for r in reqs)
    for load in loads:
        assert load.units <= 100
        assert len(load.stops) <= 2
        assert {stores()[s.store_id].region for s in load.stops} == {load.region}
    assert [load.load_id for load in loads] == [f"load-w1-{n:03d}" for n in range(1, len(loads) + 1)]
    assert len(loads) >= lower_bound_trucks(reqs, policy) == math.ceil(330 / 100)


def test_first_fit_decreasing_reaches_the_lower_bound_on_an_easy_case() -> None:
    policy = FleetPolicy(capacity_units=100, max_stops=10)
    reqs = [
        request("S0001", "P0001", 70),
        request("S0002", "P0001", 30),
        request("S0003", "P0001", 60),
        request("S0003", "P0002", 0 + 40),
    ]
    loads = consolidate(reqs, stores(), policy, T0, "l")
    assert len(loads) == lower_bound_trucks(reqs, policy) == 2


def test_a_store_larger_than_a_truck_is_split_over_trucks() -> None:
    policy = FleetPolicy(capacity_units=100, max_stops=4)
    reqs = [request("S0001", f"P{p:04d}", q) for p, q in enumerate([60, 40, 60, 40], start=1)]
    loads = consolidate(reqs, stores(), policy, T0, "l")
    assert [load.units for load in loads] == [100, 100]  # 200 units for one store: two full trucks
    assert all(load.stops[0].store_id == "S0001" for load in loads)


def test_route_is_nearest_neighbour_from_the_depot_with_increasing_etas() -> None:
    policy = FleetPolicy(capacity_units=1000, max_stops=5, speed_kmh=60, minutes_per_stop=10)
    reqs = [request("S0002", "P0001", 5), request("S0001", "P0001", 5), request("S0003", "P0001", 5)]
    (load,) = consolidate(reqs, stores(), policy, T0, "l")
    assert [s.store_id for s in load.stops] == ["S0003", "S0001", "S0002"]  # 0.05, 0.10, 0.20 degrees north
    etas = [s.eta for s in load.stops]
    assert etas == sorted(etas)
    assert etas[0] is not None
    assert etas[0] > T0
    first_leg = haversine_km(DEPOTS["north"], (stores()["S0003"].lat, stores()["S0003"].lon))
    assert (etas[0] - T0).total_seconds() == pytest.approx(first_leg / 60 * 3600, rel=1e-6)
    assert load.distance_km == pytest.approx(
        haversine_km(DEPOTS["north"], (stores()["S0002"].lat, DEPOTS["north"][1])), rel=1e-3
    )


def test_nearest_neighbour_on_no_stops() -> None:
    assert nearest_neighbour_route((0.0, 0.0), [], {}) == ([], 0.0)
    assert Stop("S1").units == 0


def test_consolidation_is_deterministic() -> None:
    policy = FleetPolicy(capacity_units=80, max_stops=2)
    reqs = [request(s, f"P{p:04d}", 10 * p) for s in ("S0001", "S0002", "S0003") for p in (1, 2, 3)]
    a = consolidate(reqs, stores(), policy, T0, "x")
    b = consolidate(list(reversed(reqs)), stores(), policy, T0, "x")
    assert [(load.load_id, load.shortage_ids) for load in a] == [(load.load_id, load.shortage_ids) for load in b]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"shortage_id": "x"}), "schema"),
        (None, "unknown store S0099"),
        ("big", "exceeds a truck's capacity"),
    ],
)
def test_invalid_messages_get_a_reason(body: str | None, needle: str) -> None:
    policy = FleetPolicy(capacity_units=50)
    if body is None:
        body = request("S0099", "P0001", 5).model_dump_json()
    elif body == "big":
        body = request("S0001", "P0001", 51).model_dump_json()
    parsed, reason = parse_request(body, stores(), policy)
    assert parsed is None
    assert needle in reason


def test_a_valid_message_parses() -> None:
    original = request("S0001", "P0001", 12)
    parsed, reason = parse_request(original.model_dump_json(), stores(), FleetPolicy())
    assert parsed == original
    assert reason == ""


class FlakySqs:
    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.calls: list[list[str]] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([e["Id"] for e in Entries])
        if self.fail_times:
            self.fail_times -= 1
            return {
                "Successful": [{"Id": e["Id"]} for e in Entries[1:]],
                "Failed": [{"Id": Entries[0]["Id"], "Code": "InternalError", "SenderFault": False}],
            }
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_sqs_batches_retry_only_failed_entries_with_bounded_jittered_backoff() -> None:
    sleeps: list[float] = []
    sqs = FlakySqs(fail_times=3)
    retry = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=0.5, sleep=sleeps.append, jitter=lambda: 0.5)
    batcher = SqsBatcher(sqs, retry=retry)
    outcome = batcher.delete("q", [(f"e{i}", f"h{i}") for i in range(12)])
    assert sqs.calls[0] == [f"e{i}" for i in range(10)]
    assert sqs.calls[1:4] == [["e0"], ["e0"], ["e0"]]
    assert sorted(outcome.succeeded) == sorted(f"e{i}" for i in range(12))
    assert outcome.failed == {}
    assert sleeps == [0.1, 0.2, 0.25]  # 0.5 * min(0.5, 0.2 * 2**n)


def test_sqs_batches_give_up_after_the_bound_and_say_why() -> None:
    sqs = FlakySqs(fail_times=100)
    outcome = SqsBatcher(sqs, retry=RetryPolicy(max_attempts=3, sleep=lambda _: None)).delete(
        "q", [("a", "h"), ("b", "h")]
    )
    assert outcome.failed == {"a": "InternalError: "}
    assert outcome.succeeded == ["b"]
    assert len(sqs.calls) == 3


def test_without_consolidation_every_request_gets_its_own_truck() -> None:
    policy = FleetPolicy(consolidate=False)
    reqs = [request("S0001", "P0001", 6), request("S0001", "P0002", 6), request("S0002", "P0001", 12)]
    loads = consolidate(reqs, stores(), policy, T0, "w")
    assert len(loads) == 3
    assert sorted(len(load.shortage_ids) for load in loads) == [1, 1, 1]
    assert len(consolidate(reqs, stores(), FleetPolicy(), T0, "w")) == 1  # the same requests, consolidated


def test_orders_pack_a_stores_requests_in_priority_order_within_the_size_limit() -> None:
    reqs = [request("S0001", f"P{p:04d}", 6) for p in range(1, 40)] + [request("S0002", "P0001", 6)]
    bodies = [(r.store_id, r.model_dump_json()) for r in reqs]
    orders = pack_orders(bodies, max_bytes=4_000)
    assert all(len(body.encode()) <= 4_000 for body, _ in orders)
    assert sum(count for _, count in orders) == len(reqs)
    unpacked = []
    for body, count in orders:
        items = split_message(Received("m1", "h1", body))
        assert len(items) == count
        stores_in_order = {DispatchRequest.model_validate_json(i.body).store_id for i in items}
        assert len(stores_in_order) == 1  # one store per order
        unpacked += [DispatchRequest.model_validate_json(i.body) for i in items]
    assert unpacked == reqs  # nothing lost, nothing changed, order kept
    assert orders[-1] == (reqs[-1].model_dump_json(), 1)  # a lone request travels as itself


def test_split_keeps_malformed_orders_whole_for_the_dead_letter_queue() -> None:
    malformed = '{"schema_version": 1, "message_type": "dispatch_order", "requests": "x"}'
    (item,) = split_message(Received("m1", "h1", malformed))
    assert item.body == malformed
    assert parse_request(item.body, stores(), FleetPolicy())[1].startswith("dispatch order:")
    items = split_message(Received("m2", "h2", order_body(['{"a":1}', '{"b":2}']), receive_count=3, generation=1))
    assert [(i.message_id, i.sqs_message_id, i.receive_count, i.generation) for i in items] == [
        ("m2#0", "m2", 3, 1),
        ("m2#1", "m2", 3, 1),
    ]


def test_sqs_batches_stay_within_256_kib_per_call() -> None:
    entries = [{"Id": f"e{i}", "MessageBody": "x" * 100_000} for i in range(7)]
    entries += [{"Id": f"s{i}", "MessageBody": "y"} for i in range(25)]
    groups = batch_groups(entries)
    assert [e["Id"] for g in groups for e in g] == [e["Id"] for e in entries]
    assert all(len(g) <= 10 and sum(entry_bytes(e) for e in g) <= 262_144 for g in groups)
    assert [len(g) for g in groups][:4] == [2, 2, 2, 10]
