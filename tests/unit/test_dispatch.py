"""A window's requests as routes (volume, windows, splitting, carrying), message validation and SQS retry backoff
(pure, no network)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from storeops.calendar import opening_hours
from storeops.contracts.dispatch_order import order_body, pack_orders
from storeops.contracts.dispatch_request import DispatchRequest
from storeops.contracts.samples import sample_request
from storeops.costs import CostParameters
from storeops.directory import DEPOTS, StoreLocation
from storeops.dispatch.fleet import Fleet, delivery_window
from storeops.dispatch.loading import (
    DEFAULT_CASE_LITRES,
    Loader,
    Routing,
    WindowRoutes,
    deliveries,
    route_window,
    window_stall_iterations,
)
from storeops.dispatch.messages import Received, parse_request, split_message
from storeops.dispatch.vrp import SolverBudget, UnservedReason
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


FLEET = Fleet()
LITRES = {"P0001": 12.0, "P0002": 60.0, "P0003": 60.0, "P0004": 60.0}  # litres a case of 6 (sample_request's case pack)


def loader(fleet: Fleet = FLEET) -> Loader:
    return Loader(fleet, LITRES)


def route(
    reqs: list[DispatchRequest], fleet: Fleet = FLEET, routing: Routing = "solver", departure: datetime = T0
) -> WindowRoutes:
    return route_window(reqs, stores(), loader(fleet), CostParameters(), departure, routing, routing_seconds=1.0)


def shortages(routes: WindowRoutes) -> list[str]:
    served = [r.shortage_id for t in routes.trucks for s in t.stops for r in s.delivery.requests]
    left = [r.shortage_id for u in routes.unserved for r in u.delivery.requests]
    return sorted(served + left)


def test_every_request_is_on_exactly_one_truck_within_capacity_windows_and_hours() -> None:
    reqs = [
        request(s, f"P{p:04d}", q)
        for s, p, q in [
            ("S0001", 1, 60),
            ("S0001", 2, 30),
            ("S0002", 1, 48),
            ("S0003", 1, 18),
            ("S0004", 1, 90),
            ("S0002", 2, 66),
            ("S0003", 2, 12),
        ]
    ]
    routes = route(reqs)
    assert shortages(routes) == sorted(r.shortage_id for r in reqs)
    assert not routes.unserved
    for truck in routes.trucks:
        assert truck.route.cages <= FLEET.capacity_cages
        assert truck.route.hours <= FLEET.route_limit_hours
        assert {stores()[s.delivery.stop.store_id].region for s in truck.stops} == {truck.region}
        for stop in truck.stops:
            assert stop.delivery.stop.window_opens <= stop.visit.unloading_starts <= stop.delivery.stop.window_closes
    assert len(routes.trucks) == 2  # one per depot: everything fits one truck each


def test_a_stops_cages_are_its_cases_volume_over_a_cages_rounded_up() -> None:
    # S0001: 10 cases x 12 L + 5 cases x 60 L = 420 L: one cage (700 L); S0002: 13 cases of 60 L = 780 L: two
    reqs = [request("S0001", "P0001", 60), request("S0001", "P0002", 30), request("S0002", "P0002", 78)]
    (delivery_1, delivery_2) = deliveries(reqs, stores(), loader(), T0)
    assert (delivery_1.stop.store_id, delivery_1.stop.cages, delivery_1.stop.units) == ("S0001", 1, 90)
    assert (delivery_2.stop.store_id, delivery_2.stop.cages) == ("S0002", 2)
    assert loader().litres(request("S0001", "P0009", 7)) == 2 * DEFAULT_CASE_LITRES  # not in the master: default


def test_a_store_larger_than_a_truck_goes_in_truck_sized_deliveries() -> None:
    fleet = Fleet(capacity_cages=2)  # 1,400 L a truck
    # three requests of 10 cases of 60 L (600 L each): 1,800 L, more than a truck
    reqs = [request("S0001", f"P{p:04d}", 60) for p in (2, 3, 4)]
    routes = route(reqs, fleet)
    assert shortages(routes) == sorted(r.shortage_id for r in reqs)
    parts = sorted((s.delivery.stop.reference, s.delivery.stop.cages) for t in routes.trucks for s in t.stops)
    assert parts == [("1", 2), ("2", 1)]
    assert all(t.route.cages <= 2 for t in routes.trucks)


def test_a_request_larger_than_a_truck_is_refused_before_it_is_claimed() -> None:
    big = request("S0001", "P0002", 6 * 600)  # 600 cases of 60 L: 52 cages
    assert "split the order" in (loader().too_big(big) or "")
    parsed, reason = parse_request(big.model_dump_json(), stores(), loader())
    assert parsed is None
    assert "52 roll cages" in reason


def test_a_truck_per_request_for_the_workshops_dispatch() -> None:
    reqs = [request("S0001", "P0001", 6), request("S0001", "P0002", 6), request("S0002", "P0001", 12)]
    alone = route(reqs, routing="one_per_request")
    assert len(alone.trucks) == 3
    assert sorted(len(t.stops) for t in alone.trucks) == [1, 1, 1]
    assert len(route(reqs).trucks) == 1  # the same requests, consolidated


def test_an_evening_order_is_delivered_in_the_next_mornings_window() -> None:
    evening = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 22:30 BST: the superstores close at 22:00
    routes = route([request("S0001", "P0001", 6)], departure=evening)
    ((stop,),) = [t.stops for t in routes.trucks]
    opens, closes = stop.delivery.stop.window_opens, stop.delivery.stop.window_closes
    assert (opens, closes) == (datetime(2026, 6, 2, 3, 0, tzinfo=UTC), datetime(2026, 6, 2, 21, 0, tzinfo=UTC))
    assert opens <= stop.visit.unloading_starts <= closes
    assert routes.trucks[0].route.departs > evening  # the truck leaves when it needs to, not at once


def test_a_day_the_store_is_closed_is_skipped() -> None:
    opens, _ = delivery_window("superstore", datetime(2026, 12, 24, 23, 0, tzinfo=UTC), FLEET)
    boxing_day = opening_hours("superstore", date(2026, 12, 26)).opens  # GMT: local is UTC
    assert opens == datetime(2026, 12, 26, boxing_day - 3, 0, tzinfo=UTC)  # not on Christmas Day


def test_what_no_truck_can_take_is_reported_unserved_never_lost() -> None:
    fleet = Fleet(trucks_at_depot={"north": 0})
    reqs = [request("S0001", "P0001", 6), request("S0004", "P0001", 6)]
    routes = route(reqs, fleet)
    assert shortages(routes) == sorted(r.shortage_id for r in reqs)
    ((unserved,),) = [routes.unserved]
    assert (unserved.delivery.stop.store_id, unserved.reason) == ("S0001", UnservedReason.FLEET_EXHAUSTED)


def test_routing_is_deterministic() -> None:
    reqs = [request(s, f"P{p:04d}", 6 * p) for s in ("S0001", "S0002", "S0003") for p in (1, 2)]
    a, b = route(reqs), route(list(reversed(reqs)))

    def plan(routes: WindowRoutes) -> list[list[str]]:
        return [[r.shortage_id for s in t.stops for r in s.delivery.requests] for t in routes.trucks]

    assert plan(a) == plan(b)


def test_a_windows_search_stops_sooner_on_a_small_depot_never_later_than_a_slots() -> None:
    assert [window_stall_iterations(parts) for parts in (0, 1, 40, 100, 200, 5_000)] == [200, 200, 200, 500, 1000, 1000]
    assert window_stall_iterations(10_000) == SolverBudget().stall_iterations


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"shortage_id": "x"}), "schema"),
        (None, "unknown store S0099"),
        ("big", "more than a truck's 45"),
    ],
)
def test_invalid_messages_get_a_reason(body: str | None, needle: str) -> None:
    if body is None:
        body = request("S0099", "P0001", 5).model_dump_json()
    elif body == "big":
        body = request("S0001", "P0002", 6 * 600).model_dump_json()
    parsed, reason = parse_request(body, stores(), loader())
    assert parsed is None
    assert needle in reason


def test_a_valid_message_parses() -> None:
    original = request("S0001", "P0001", 12)
    parsed, reason = parse_request(original.model_dump_json(), stores(), loader())
    assert parsed == original
    assert reason == ""


class FlakySqs:
    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.calls: list[list[str]] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([e["ReceiptHandle"] for e in Entries])
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
    outcome = batcher.delete("q", [f"h{i}" for i in range(12)])
    assert sqs.calls[0] == [f"h{i}" for i in range(10)]
    assert sqs.calls[1:4] == [["h0"], ["h0"], ["h0"]]
    assert sorted(outcome.succeeded) == list(range(12))  # positions in the caller's list
    assert outcome.failed == {}
    assert sleeps == [0.1, 0.2, 0.25]  # 0.5 * min(0.5, 0.2 * 2**n)


def test_sqs_batches_give_up_after_the_bound_and_say_why() -> None:
    sqs = FlakySqs(fail_times=100)
    outcome = SqsBatcher(sqs, retry=RetryPolicy(max_attempts=3, sleep=lambda _: None)).delete("q", ["ha", "hb"])
    assert outcome.failed == {0: "InternalError: "}
    assert outcome.succeeded == [1]
    assert len(sqs.calls) == 3


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
    assert parse_request(item.body, stores(), loader())[1].startswith("dispatch order:")
    items = split_message(Received("m2", "h2", order_body(['{"a":1}', '{"b":2}']), receive_count=3, generation=1))
    assert [(i.message_id, i.sqs_message_id, i.receive_count, i.generation) for i in items] == [
        ("m2#0", "m2", 3, 1),
        ("m2#1", "m2", 3, 1),
    ]


def test_sqs_batches_stay_within_256_kib_per_call() -> None:
    entries = [{"Id": f"e{i}", "MessageBody": "x" * 100_000} for i in range(7)]
    entries += [{"Id": f"s{i}", "MessageBody": "y"} for i in range(25)]
    groups = batch_groups(entries)
    assert [p for g in groups for p in g] == list(range(len(entries)))
    assert all(len(g) <= 10 and sum(entry_bytes(entries[p]) for p in g) <= 262_144 for g in groups)
    assert [len(g) for g in groups][:4] == [2, 2, 2, 10]


def test_a_store_the_directory_gets_wrong_is_refused_in_one_line_not_a_crash() -> None:
    bad = {**stores(), "S0001": StoreLocation("S0001", "nowhere", 53.5, -2.2), "S0002": replace_format("S0002")}
    for store in ("S0001", "S0002"):
        parsed, reason = parse_request(request(store, "P0001", 6).model_dump_json(), bad, loader())
        assert parsed is None
        assert "fix the directory" in reason
        assert "\n" not in reason


def replace_format(store_id: str) -> StoreLocation:
    where = stores()[store_id]
    return StoreLocation(store_id, where.region, where.lat, where.lon, "hypermarket")


def test_a_far_stores_order_comes_in_deliveries_one_truck_can_unload_within_the_hours() -> None:
    north = DEPOTS["north"]
    far = {"S0009": StoreLocation("S0009", "north", north[0] + 1.3, north[1])}  # ~188 road km: ~3.8 h each way
    reqs = [
        sample_request("S0009", "P0002", 60, target_stock=61, planned_at=T0, reading_event_id=f"e{i}")
        for i in range(31)
    ]  # 31 x 600 L: 27 cages; 44 min left at the store: 20 for the stop, 1.5 a cage, so 15 cages a truck
    routes = route_window(reqs, far, loader(), CostParameters(), T0, routing_seconds=1.0)
    assert shortages(routes) == sorted(r.shortage_id for r in reqs)
    assert not routes.unserved  # several smaller deliveries, each within the route limit
    assert len(routes.trucks) > 1
    assert all(t.route.hours <= FLEET.route_limit_hours for t in routes.trucks)


def test_a_departure_with_fractions_of_a_second_never_unloads_before_the_window() -> None:
    evening = datetime(2026, 6, 1, 21, 30, 0, 500_000, tzinfo=UTC)
    routes = route([request("S0001", "P0001", 6)], departure=evening)
    ((stop,),) = [t.stops for t in routes.trucks]
    assert stop.visit.unloading_starts >= stop.delivery.stop.window_opens
